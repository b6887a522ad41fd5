/* SPDX-License-Identifier: MIT */
/*
 * Out queue (see outq.h). The ring doubles when full. When the queue empties
 * the ring is freed if it is minimal (an idle client that got a few answers
 * keeps nothing) or large (a burst to a slow client does not pin memory);
 * mid-sized rings of steadily busy clients are kept to avoid regrowing them
 * on every turn.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fdset.h"
#include "lbus-limits.h"
#include "outq.h"

#define OUTQ_MIN_CAP 16u
#define OUTQ_KEEP_CAP 256u
#define OUTQ_IOV (IOV_MAX < 1024 ? IOV_MAX : 1024)

/* Room for the SCM_RIGHTS of one frame, aligned for struct cmsghdr. */
union outq_cmsg {
	char buf[CMSG_SPACE(LBUS_MAX_FDS_PER_FRAME * sizeof(int))];
	struct cmsghdr align;
};

void outq_init(struct outq *q)
{
	memset(q, 0, sizeof(*q));
}

static bool entry_has_fds(const struct outq_entry *e)
{
	return e->buf && e->buf->fds && e->buf->fds->n;
}

void outq_deinit(struct outq *q)
{
	while (q->count) {
		msgbuf_unref(q->ring[q->head].buf);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	free(q->ring);
	outq_init(q);
}

static int outq_grow(struct outq *q)
{
	uint32_t cap = q->cap ? q->cap * 2 : OUTQ_MIN_CAP;
	struct outq_entry *ring = malloc((size_t)cap * sizeof(*ring));

	if (!ring)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->count; i++)
		ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
	free(q->ring);
	q->ring = ring;
	q->cap = cap;
	q->head = 0;
	return 0;
}

static size_t entry_fd_cost(const struct outq_entry *e)
{
	return e->buf && e->buf->fds ? (size_t)e->buf->fds->n * OUTQ_FD_COST : 0;
}

int outq_push(struct outq *q, struct msgbuf *buf, const void *hdr, size_t hlen)
{
	struct outq_entry *e;

	if (q->count == q->cap && outq_grow(q) < 0) {
		msgbuf_unref(buf);
		return -ENOMEM;
	}
	e = &q->ring[(q->head + q->count) & (q->cap - 1)];
	q->tail = NULL;
	e->buf = buf;
	e->off = 0;
	e->hlen = (uint8_t)hlen;
	if (hlen)
		memcpy(e->hdr, hdr, hlen);
	q->count++;
	q->bytes += hlen + (buf ? buf->len : 0);
	q->fd_cost += entry_fd_cost(e);
	if (q->bytes > q->bytes_max)
		q->bytes_max = q->bytes;
	return 0;
}

/*
 * Open a chunk for at least len bytes. A chunk that filled up is followed by
 * one twice its size (up to OUTQ_CHUNK_MAX), so a burst of small frames
 * soon travels in large chunks; after a referenced entry closed the chunk,
 * or once the queue drained, sizes start again at OUTQ_CHUNK_MIN. A chunk's
 * unused room is thus bounded by its own filled part (or OUTQ_CHUNK_MIN),
 * whatever the mix of shared and copied messages: the queue's memory stays
 * within a small factor of the bytes it counts against max_queue.
 */
static struct msgbuf *outq_open_chunk(struct outq *q, struct msgpool *pool, size_t len)
{
	size_t size = q->tail ? 2 * (size_t)q->tail->cap : OUTQ_CHUNK_MIN;
	struct msgbuf *m;

	if (size > OUTQ_CHUNK_MAX)
		size = OUTQ_CHUNK_MAX;
	m = msgbuf_new(pool, size < len ? len : size);
	if (!m || outq_push(q, m, NULL, 0) < 0)
		return NULL;
	q->tail = m;
	return m;
}

uint8_t *outq_append(struct outq *q, struct msgpool *pool, size_t len)
{
	struct msgbuf *t = q->tail;
	uint8_t *p;

	if (!t || t->cap - t->len < len) {
		t = outq_open_chunk(q, pool, len);
		if (!t)
			return NULL;
	}
	p = t->data + t->len;
	t->len += (uint32_t)len;
	q->bytes += len;
	if (q->bytes > q->bytes_max)
		q->bytes_max = q->bytes;
	return p;
}

static size_t entry_len(const struct outq_entry *e)
{
	return e->hlen + (e->buf ? e->buf->len : 0);
}

void outq_consume(struct outq *q, size_t n)
{
	q->bytes -= n;
	while (n && q->count) {
		struct outq_entry *e = &q->ring[q->head];
		size_t left = entry_len(e) - e->off;

		if (n < left) {
			e->off += (uint32_t)n;
			return;
		}
		n -= left;
		q->fd_cost -= entry_fd_cost(e);
		if (e->buf == q->tail)
			q->tail = NULL;
		msgbuf_unref(e->buf);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	if (q->count == 0 && (q->cap <= OUTQ_MIN_CAP || q->cap > OUTQ_KEEP_CAP)) {
		free(q->ring);
		q->ring = NULL;
		q->cap = 0;
		q->head = 0;
	}
}

/* Fill iov from the queue; returns the number of iovecs and total bytes. */
static int outq_fill_iov(const struct outq *q, struct iovec *iov, size_t *total)
{
	int n = 0;

	*total = 0;
	for (uint32_t i = 0; i < q->count && n + 2 <= OUTQ_IOV; i++) {
		const struct outq_entry *e = &q->ring[(q->head + i) & (q->cap - 1)];
		size_t off = e->off;

		if (i > 0 && entry_has_fds(e))
			break; /* its descriptors go with its first byte */

		if (off < e->hlen) {
			iov[n].iov_base = (void *)(e->hdr + off);
			iov[n++].iov_len = e->hlen - off;
			*total += e->hlen - off;
			off = 0;
		} else {
			off -= e->hlen;
		}
		if (e->buf && e->buf->len > off) {
			iov[n].iov_base = e->buf->data + off;
			iov[n++].iov_len = e->buf->len - off;
			*total += e->buf->len - off;
		}
	}
	return n;
}

/* The head entry's descriptors, when none of its bytes went out yet, as
 * SCM_RIGHTS control data in mh (cbuf holds it); the count attached. */
static uint32_t outq_attach_fds(const struct outq *q, struct msghdr *mh, union outq_cmsg *cbuf)
{
	const struct outq_entry *e = &q->ring[q->head];
	const struct fdset *s = e->buf ? e->buf->fds : NULL;
	struct cmsghdr *cm;

	if (e->off || !s || !s->n)
		return 0;
	memset(cbuf->buf, 0, CMSG_SPACE(s->n * sizeof(int))); /* the padding too */
	mh->msg_control = cbuf->buf;
	mh->msg_controllen = CMSG_SPACE(s->n * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(s->n * sizeof(int));
	memcpy(CMSG_DATA(cm), s->fds, s->n * sizeof(int));
	return s->n;
}

ssize_t outq_write(struct outq *q, int fd)
{
	struct iovec iov[OUTQ_IOV];
	union outq_cmsg cbuf;
	size_t written = 0, total;

	while (q->count) {
		struct msghdr mh = {.msg_iov = iov};
		uint32_t nfds;
		ssize_t n;

		mh.msg_iovlen = (size_t)outq_fill_iov(q, iov, &total);
		nfds = outq_attach_fds(q, &mh, &cbuf);
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		if (n > 0)
			q->fds_sent += nfds;
		outq_consume(q, (size_t)n);
		written += (size_t)n;
		if ((size_t)n < total)
			break;
	}
	return (ssize_t)written;
}
