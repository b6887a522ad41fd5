/* SPDX-License-Identifier: MIT */
/*
 * File descriptors with frames (PROTOCOL.md, "File descriptors").
 *
 * Output: a frame sent with descriptors gets an attachment (struct
 * io_attach) at its absolute position in the output stream (out_pos counts
 * the bytes written); out_write() in io.c starts a sendmsg() there and
 * passes them with SCM_RIGHTS, so they travel with the frame's first byte.
 * The library sends its own duplicates (taken when the frame is queued, so
 * the caller may close its descriptors at once) and closes them once sent,
 * or when the connection is lost.
 *
 * Input: in_fill() reads with recvmsg(); each read's descriptors become a
 * batch with the stream range of that read. A frame announcing Frame.fds
 * takes the oldest batch when it came with the frame's first byte (the
 * broker sends them so), else the connection is broken (-EPROTO). While
 * its handler runs, the frame's descriptors are bus->frame_fds; a callback
 * keeps one with lbus_msg_take_fd() / lbus_reply_take_fd(), and the library
 * closes the others when the handler returns. Batches no frame can claim
 * any more are closed.
 *
 * Not in reconnect mode: frames kept while disconnected are replayed behind
 * a new hello, away from the positions their descriptors were recorded at,
 * so the _fds calls refuse (-EOPNOTSUPP) there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-internal.h"

void io_fds_close(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* ---- output ----------------------------------------------------------------- */

int io_attach_prepare(struct lbus *bus, const int *fds, size_t nfds)
{
	if (nfds > LBUS_MAX_FDS_PER_FRAME || (nfds && !fds))
		return -EINVAL;
	if (bus->rc.enabled)
		return -EOPNOTSUPP;
	bus->attach_n = 0;
	for (size_t i = 0; i < nfds; i++) {
		int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);

		if (d < 0) {
			int err = -errno;
			io_attach_cancel(bus);
			return err;
		}
		bus->attach_fds[bus->attach_n++] = d;
	}
	return 0;
}

void io_attach_cancel(struct lbus *bus)
{
	io_fds_close(bus->attach_fds, bus->attach_n);
	bus->attach_n = 0;
}

int io_attach_commit(struct lbus *bus, size_t frame_size)
{
	struct io_attach *a;

	if (!bus->attach_n)
		return 0;
	a = malloc(sizeof(*a));
	if (!a) {
		io_attach_cancel(bus);
		return -ENOMEM;
	}
	/* The frame starts where the pending output ends, before it is added. */
	a->at = bus->out_pos + io_out_pending(bus) - frame_size;
	a->n = bus->attach_n;
	memcpy(a->fds, bus->attach_fds, a->n * sizeof(int));
	a->next = NULL;
	*bus->attach_tail = a;
	bus->attach_tail = &a->next;
	bus->attach_n = 0;
	return 0;
}

void io_attach_clear(struct lbus *bus)
{
	while (bus->attach_head) {
		struct io_attach *a = bus->attach_head;

		bus->attach_head = a->next;
		io_fds_close(a->fds, a->n);
		free(a);
	}
	bus->attach_tail = &bus->attach_head;
	io_attach_cancel(bus);
}

size_t io_attach_limit(const struct lbus *bus, size_t len, struct msghdr *mh, union io_cmsg *cbuf)
{
	const struct io_attach *a = bus->attach_head;
	struct cmsghdr *cm;

	if (!a)
		return len;
	if (a->at > bus->out_pos) /* stop right before the frame with descriptors */
		return a->at - bus->out_pos < len ? (size_t)(a->at - bus->out_pos) : len;
	memset(cbuf->buf, 0, CMSG_SPACE(a->n * sizeof(int))); /* the padding too */
	mh->msg_control = cbuf->buf;
	mh->msg_controllen = CMSG_SPACE(a->n * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(a->n * sizeof(int));
	memcpy(CMSG_DATA(cm), a->fds, a->n * sizeof(int));
	if (a->next && a->next->at - bus->out_pos < len)
		return (size_t)(a->next->at - bus->out_pos);
	return len;
}

void io_attach_sent(struct lbus *bus)
{
	struct io_attach *a = bus->attach_head;

	if (!a || a->at >= bus->out_pos)
		return; /* the first byte at a->at has not gone yet */
	bus->attach_head = a->next;
	if (!bus->attach_head)
		bus->attach_tail = &bus->attach_head;
	io_fds_close(a->fds, a->n);
	free(a);
}

/* ---- input ------------------------------------------------------------------ */

int io_batch_collect(struct lbus *bus, struct msghdr *mh, uint64_t start, uint64_t end)
{
	int ret = (mh->msg_flags & MSG_CTRUNC) ? -EPROTO : 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		int *fds = (int *)(void *)CMSG_DATA(cm);
		size_t n;
		struct io_batch *b;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		b = ret == 0 && n <= LBUS_MAX_FDS_PER_FRAME ? malloc(sizeof(*b)) : NULL;
		if (!b) {
			io_fds_close(fds, n);
			ret = -EPROTO;
			continue;
		}
		memcpy(b->fds, fds, n * sizeof(int));
		b->n = (uint32_t)n;
		b->read_start = start;
		b->read_end = end;
		b->next = NULL;
		*bus->batch_tail = b;
		bus->batch_tail = &b->next;
	}
	return ret;
}

static void batch_pop(struct lbus *bus, bool close_fds)
{
	struct io_batch *b = bus->batch_head;

	bus->batch_head = b->next;
	if (!bus->batch_head)
		bus->batch_tail = &bus->batch_head;
	if (close_fds)
		io_fds_close(b->fds, b->n);
	free(b);
}

int io_batch_claim(struct lbus *bus, uint64_t frame_pos, uint32_t n, struct io_fds *out)
{
	const struct io_batch *b = bus->batch_head;

	out->n = 0;
	if (!n)
		return 0;
	if (!b || b->n != n || b->read_start > frame_pos || b->read_end <= frame_pos)
		return -EPROTO;
	memcpy(out->fds, b->fds, n * sizeof(int));
	out->n = n;
	batch_pop(bus, false);
	return 0;
}

void io_batch_drop_stale(struct lbus *bus)
{
	while (bus->batch_head && bus->batch_head->read_end <= bus->in_pos)
		batch_pop(bus, true);
}

void io_batch_clear(struct lbus *bus)
{
	while (bus->batch_head)
		batch_pop(bus, true);
}

/* ---- taking descriptors --------------------------------------------------------- */

/* The slot behind a const view the library handed out (its own array). */
static int take_slot(const int *fds, size_t n, size_t i)
{
	int *slot, fd;

	if (!fds || i >= n)
		return -EINVAL;
	slot = (int *)(uintptr_t)&fds[i];
	fd = *slot;
	if (fd < 0)
		return -EBADF;
	*slot = -1;
	return fd;
}

int lbus_msg_take_fd(const struct lbus_msg *msg, size_t i)
{
	return msg ? take_slot(msg->fds, msg->nfds, i) : -EINVAL;
}

int lbus_reply_take_fd(const struct lbus_reply *reply, size_t i)
{
	return reply ? take_slot(reply->fds, reply->nfds, i) : -EINVAL;
}
