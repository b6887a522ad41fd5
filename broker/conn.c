/* SPDX-License-Identifier: MIT */
/*
 * The transport (see conn.h): epoll interest, reading and framing with the
 * loop's scratch buffer, writing the out queue, deadlines, pausing input.
 * Every event goes up through conn_loop.ops; nothing here knows the bus.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "lbus-limits.h"

#define CONN_RBUF_SMALL 4096u /* an own buffer shrinks to this when drained */
#define CONN_READ_MIN 4096u   /* least free room offered to read() */

void conn_loop_init(struct conn_loop *l, int epfd, struct msgpool *pool, const struct conn_ops *ops)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epfd;
	l->pool = pool;
	l->ops = ops;
	lbus_rbuf_init(&l->scratch);
	list_init(&l->flush);
	list_init(&l->ready);
	list_init(&l->backlog);
	list_init(&l->deadlines);
}

void conn_loop_deinit(struct conn_loop *l)
{
	lbus_rbuf_deinit(&l->scratch);
}

int conn_init(struct conn *c, struct conn_loop *l, int fd, uint32_t max_frame)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	memset(c, 0, sizeof(*c));
	c->loop = l;
	c->fd = fd;
	c->max_frame = max_frame;
	c->progress_ms = clock_now_ms();
	lbus_rbuf_init(&c->rbuf);
	outq_init(&c->outq);
	list_init(&c->flush_link);
	list_init(&c->ready_link);
	list_init(&c->backlog_link);
	list_init(&c->deadline_link);
	c->fds_tail = &c->fds_head;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		c->fd = -1;
		return -errno;
	}
	c->events = EPOLLIN;
	c->registered = true;
	return 0;
}

void conn_set_deadline(struct conn *c, int64_t when_ms)
{
	c->deadline_ms = when_ms;
	if (when_ms && !list_linked(&c->deadline_link))
		list_add_tail(&c->loop->deadlines, &c->deadline_link);
	else if (!when_ms)
		list_del(&c->deadline_link);
}

void conn_update_events(struct conn *c)
{
	struct conn_loop *l = c->loop;
	bool want_in = !c->input_paused && !c->backlogged && !l->stopping;
	uint32_t ev = (want_in ? EPOLLIN : 0) | (c->write_blocked ? EPOLLOUT : 0);
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (conn_closed(c))
		return;
	if (c->peer_hup && !ev) {
		/* EPOLLHUP is reported even with no events: park the fd. */
		if (c->registered && epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL) == 0)
			c->registered = false;
		return;
	}
	if (c->registered && ev == c->events)
		return;
	if (epoll_ctl(l->epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0) {
		c->events = ev;
		c->registered = true;
	}
}

void conn_pause_input(struct conn *c, int64_t recheck_ms)
{
	struct conn_loop *l = c->loop;

	c->input_paused = true;
	conn_set_deadline(c, recheck_ms);
	if (recheck_ms && (!l->recheck_ms || recheck_ms < l->recheck_ms))
		l->recheck_ms = recheck_ms;
	conn_update_events(c);
}

void conn_resume_input(struct conn *c)
{
	c->input_paused = false;
	conn_set_deadline(c, 0);
	if (!list_linked(&c->ready_link))
		list_add_tail(&c->loop->ready, &c->ready_link);
}

/* ---- queueing and writing ------------------------------------------------ */

bool conn_make_room_slow(struct conn *c, size_t need)
{
	conn_write_now(c);
	return conn_closed(c) || !conn_queue_full(c, need);
}

/* Output starts waiting for c: its stall clock (progress_ms) starts now, not
 * at its last write, however long it has been idle. */
static void conn_output_starts(struct conn *c)
{
	if (outq_empty(&c->outq))
		c->progress_ms = clock_now_ms();
}

static void conn_schedule_write(struct conn *c)
{
	if (!c->write_blocked && !list_linked(&c->flush_link))
		list_add_tail(&c->loop->flush, &c->flush_link);
}

int conn_queue(struct conn *c, struct msgbuf *buf, const void *hdr, size_t hlen)
{
	int ret;

	if (conn_closed(c)) {
		msgbuf_unref(buf);
		return 0;
	}
	conn_output_starts(c);
	ret = outq_push(&c->outq, buf, hdr, hlen);
	if (ret < 0)
		return ret;
	conn_schedule_write(c);
	return 0;
}

uint8_t *conn_queue_reserve(struct conn *c, size_t len)
{
	uint8_t *p;

	if (conn_closed(c))
		return NULL;
	conn_output_starts(c);
	p = outq_append(&c->outq, c->loop->pool, len);
	if (p)
		conn_schedule_write(c);
	return p;
}

/* Write what the socket takes; -errno when the connection is broken. */
static int conn_write(struct conn *c)
{
	uint64_t fds_sent = c->outq.fds_sent;
	ssize_t n;
	bool blocked;

	n = outq_write(&c->outq, c->fd);
	c->loop->fds_out += c->outq.fds_sent - fds_sent;
	if (n < 0)
		return (int)n;
	if (n > 0)
		c->progress_ms = clock_now_ms();
	c->bytes_out += (uint64_t)n;
	c->loop->bytes_out += (uint64_t)n;
	blocked = !outq_empty(&c->outq);
	if (blocked != c->write_blocked) {
		c->write_blocked = blocked;
		conn_update_events(c);
	}
	c->loop->ops->wrote(c);
	return 0;
}

void conn_flush(struct conn *c)
{
	int r;

	list_del(&c->flush_link);
	if (conn_closed(c))
		return;
	r = conn_write(c);
	if (r < 0)
		c->loop->ops->gone(c, r);
}

void conn_write_now(struct conn *c)
{
	if (conn_closed(c))
		return;
	if (conn_write(c) < 0 && !list_linked(&c->flush_link))
		list_add_tail(&c->loop->flush, &c->flush_link);
}

void conn_write_last(struct conn *c)
{
	if (!conn_closed(c))
		outq_write(&c->outq, c->fd);
}

/* ---- the input buffer ---------------------------------------------------- */

/* Count c's own input buffer in the loop's total (after any change). */
static void conn_rbuf_account(struct conn *c)
{
	size_t now = c->rbuf_scratch ? 0 : c->rbuf.cap;

	c->loop->held = c->loop->held - c->held + now;
	c->held = now;
}

/* Would c's own buffer at capacity `cap` pass the loop's bound? */
static bool conn_rbuf_over(const struct conn *c, size_t cap)
{
	const struct conn_loop *l = c->loop;

	return cap > c->held && l->max_held && cap - c->held > l->max_held - l->held;
}

/* Hand the scratch buffer back to the loop, dropping what it holds (freed
 * if the loop made another meanwhile, after a failed settle). */
static void conn_rbuf_return(struct conn *c)
{
	struct conn_loop *l = c->loop;

	if (l->scratch.data) {
		lbus_rbuf_deinit(&c->rbuf);
	} else {
		l->scratch = c->rbuf;
		l->scratch.start = l->scratch.end = 0;
		lbus_rbuf_init(&c->rbuf);
	}
	c->rbuf_scratch = false;
}

/*
 * After processing: the scratch buffer goes back to the loop, what is left
 * in it is copied to a buffer of the conn's own, sized to it. An own buffer
 * (a big frame) is freed or shrunk once it is (nearly) consumed. 0, or
 * -ENOBUFS: a partial frame left would pass the loop's max_held (nothing
 * changed; the caller reports it).
 */
static int conn_rbuf_settle(struct conn *c)
{
	size_t len = lbus_rbuf_len(&c->rbuf);
	struct lbus_rbuf own;

	if (!c->rbuf_scratch) {
		if (len == 0)
			lbus_rbuf_deinit(&c->rbuf);
		else
			lbus_rbuf_shrink(&c->rbuf, CONN_RBUF_SMALL);
		conn_rbuf_account(c);
		return 0;
	}
	lbus_rbuf_init(&own);
	if (len) {
		if (!c->input_paused && !c->backlogged && conn_rbuf_over(c, lbus_rbuf_reserve_cap(&own, len)))
			return -ENOBUFS;
		if (lbus_rbuf_reserve(&own, len) < 0)
			return 0; /* keep the scratch; the next reader makes another */
		memcpy(own.data, c->rbuf.data + c->rbuf.start, len);
		own.end = len;
	}
	conn_rbuf_return(c);
	c->rbuf = own;
	conn_rbuf_account(c);
	return 0;
}

/* c's partial frame would pass the loop's bound: its owner ends it. */
static void conn_report_over(struct conn *c)
{
	uint32_t len = 0;

	if (lbus_rbuf_len(&c->rbuf) >= LBUS_FRAME_HEADER)
		len = lbus_frame_get_len(c->rbuf.data + c->rbuf.start);
	c->loop->ops->bad_frame(c, -ENOBUFS, len);
}

/*
 * Read into the loop's scratch buffer (allocated on first use), with the
 * conn's pending bytes moved in front, unless the pending frame is bigger
 * than the scratch buffer: then the conn reads into its own.
 */
static void conn_rbuf_borrow(struct conn *c)
{
	struct conn_loop *l = c->loop;
	size_t len = lbus_rbuf_len(&c->rbuf);
	struct lbus_rbuf s;

	/* a big frame reads into its own buffer once it holds a good part of
	 * a chunk; before that (a slow sender's first bytes) the scratch
	 * buffer takes them, so a byte that trickles in costs a copy of what
	 * is held, not a chunk-sized buffer grown and shrunk again */
	if (len + CONN_READ_MIN > CONN_READ_CHUNK ||
	    (c->rbuf_need > CONN_READ_CHUNK && len >= CONN_READ_CHUNK / 4))
		return;
	if (!l->scratch.data && lbus_rbuf_reserve(&l->scratch, CONN_READ_CHUNK) < 0)
		return;
	s = l->scratch;
	s.start = 0;
	s.end = len;
	if (len)
		memcpy(s.data, c->rbuf.data + c->rbuf.start, len);
	lbus_rbuf_deinit(&c->rbuf);
	c->rbuf = s;
	c->rbuf_scratch = true;
	lbus_rbuf_init(&l->scratch);
	conn_rbuf_account(c);
}

/* Put the frame whose body starts at body back in front of the buffer. */
static void conn_unget(struct conn *c, const uint8_t *body, uint32_t len)
{
	size_t start = (size_t)(body - c->rbuf.data) - LBUS_FRAME_HEADER;

	if (c->rbuf.start == 0 && c->rbuf.end == 0)
		c->rbuf.end = start + LBUS_FRAME_HEADER + len;
	c->rbuf.start = start;
}

static void conn_update_frame_deadline(struct conn *c, bool progressed)
{
	if (!c->frame_deadlines || c->input_paused)
		return; /* a paused conn's deadline is its owner's recheck time */
	if (lbus_rbuf_len(&c->rbuf) == 0)
		conn_set_deadline(c, 0);
	else if (progressed || !c->deadline_ms)
		conn_set_deadline(c, clock_now_ms() + c->loop->frame_timeout_ms);
}

/* ---- received descriptors ------------------------------------------------ */

/* Room for one read's SCM_RIGHTS: one more than a frame may carry, so that
 * a sender of too many is told, not silently truncated to the limit. */
union conn_cmsg {
	char buf[CMSG_SPACE((LBUS_MAX_FDS_PER_FRAME + 1) * sizeof(int))];
	struct cmsghdr align;
};

static void conn_fds_pop(struct conn *c)
{
	struct conn_fds *b = c->fds_head;

	c->fds_head = b->next;
	if (!c->fds_head)
		c->fds_tail = &c->fds_head;
	c->fds_pending -= b->set->n;
	fdset_unref(b->set);
	free(b);
}

static void conn_fds_clear(struct conn *c)
{
	while (c->fds_head)
		conn_fds_pop(c);
	c->fds_claimed = false;
}

/* Queue the descriptors of one read (closed on ENOMEM, then false). */
static bool conn_fds_add(struct conn *c, const int *fds, uint32_t n, uint64_t start, uint64_t end)
{
	struct conn_fds *b = malloc(sizeof(*b));
	struct fdset *set = fdset_new(fds, n);

	if (!b || !set) {
		free(b);
		if (set)
			fdset_unref(set);
		return false;
	}
	b->next = NULL;
	b->set = set;
	b->read_start = start;
	b->read_end = end;
	*c->fds_tail = b;
	c->fds_tail = &b->next;
	c->fds_pending += n;
	c->fds_in += n;
	c->loop->fds_in += n;
	return true;
}

/* Collect the SCM_RIGHTS descriptors of a recvmsg() that read [start, end).
 * 0, or -E2BIG (truncated: too many) / -ENOMEM, the descriptors closed. */
static int conn_fds_collect(struct conn *c, struct msghdr *mh, uint64_t start, uint64_t end)
{
	int ret = (mh->msg_flags & MSG_CTRUNC) ? -E2BIG : 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		const int *fds = (const int *)(void *)CMSG_DATA(cm);
		uint32_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (uint32_t)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (ret == 0 && n > LBUS_MAX_FDS_PER_FRAME)
			ret = -E2BIG;
		if (ret < 0) {
			for (uint32_t i = 0; i < n; i++)
				close(fds[i]);
		} else if (n && !conn_fds_add(c, fds, n, start, end)) {
			ret = -ENOMEM;
		}
	}
	return ret;
}

int conn_frame_fds(struct conn *c, uint32_t n, struct fdset **out)
{
	const struct conn_fds *b = c->fds_head;

	if (!b || b->set->n != n || b->read_start > c->frame_pos || b->read_end <= c->frame_pos)
		return -EBADMSG;
	c->fds_claimed = true;
	*out = b->set;
	return 0;
}

/* After the frame ending at in_pos was consumed: drop the batch it claimed;
 * one that no frame can claim any more is a protocol error (false). */
static bool conn_fds_after_frame(struct conn *c)
{
	if (c->fds_claimed) {
		c->fds_claimed = false;
		conn_fds_pop(c);
	}
	if (c->fds_head && c->fds_head->read_end <= c->in_pos) {
		c->loop->ops->bad_fds(c, -EBADMSG);
		return false;
	}
	return true;
}

/*
 * Once every complete frame was reported: only the pending partial frame,
 * at in_pos, can still claim descriptors, so at most one batch may wait,
 * the one whose read brought that frame's first byte. This also bounds what
 * a sender can make the broker hold to one frame's worth.
 */
static bool conn_fds_settled(struct conn *c)
{
	const struct conn_fds *b = c->fds_head;

	if (!b || c->input_paused)
		return true;
	if (!b->next && b->read_start <= c->in_pos && c->in_pos < b->read_end)
		return true;
	c->loop->ops->bad_fds(c, -EBADMSG);
	return false;
}

/* Report the complete frames in the input buffer, at most
 * CONN_FRAMES_PER_TURN (*budget_spent when they were not all reported);
 * false when c closed. */
static bool conn_report_frames(struct conn *c, bool *progressed, bool *budget_spent)
{
	const struct conn_ops *ops = c->loop->ops;
	const uint8_t *body;
	uint32_t len;
	unsigned budget = CONN_FRAMES_PER_TURN;
	int r;

	while (!conn_closed(c) && !c->input_paused) {
		size_t need = 0;

		if (budget-- == 0) {
			*budget_spent = lbus_rbuf_len(&c->rbuf) >= LBUS_FRAME_HEADER;
			break;
		}

		r = lbus_frame_next(&c->rbuf, c->max_frame, &body, &len, &need);
		if (r == 0) {
			c->rbuf_need = need;
			break;
		}
		if (r < 0) {
			ops->bad_frame(c, r == -EMSGSIZE ? -EMSGSIZE : -EPROTO,
				       lbus_frame_get_len(c->rbuf.data + c->rbuf.start));
			return false;
		}
		c->frame_pos = c->in_pos;
		c->fds_claimed = false;
		r = ops->frame(c, body, len);
		if (r == CONN_KEEP) {
			c->fds_claimed = false;
			conn_unget(c, body, len);
			break;
		}
		if (r < 0)
			return false;
		*progressed = true;
		c->in_pos += len + LBUS_FRAME_HEADER;
		c->bytes_in += len + LBUS_FRAME_HEADER;
		c->loop->bytes_in += len + LBUS_FRAME_HEADER;
		if (!conn_fds_after_frame(c))
			return false;
	}
	/* frames left past the budget may still claim their batches */
	return !conn_closed(c) && (*budget_spent || conn_fds_settled(c));
}

/* c has input left past its turn's budget: it waits on the backlog with its
 * EPOLLIN off (no event will announce bytes already read). */
static void conn_backlog(struct conn *c)
{
	c->backlogged = true;
	if (!list_linked(&c->backlog_link))
		list_add_tail(&c->loop->backlog, &c->backlog_link);
	conn_update_events(c);
}

static void conn_process(struct conn *c)
{
	bool progressed = false, budget_spent = false;

	if (!conn_report_frames(c, &progressed, &budget_spent))
		return;
	conn_update_frame_deadline(c, progressed);
	/* frames left past the budget were read already: like a paused conn's,
	 * they are counted against max_held but never refused */
	if (budget_spent)
		c->backlogged = true;
	if (conn_rbuf_settle(c) < 0) {
		conn_report_over(c);
		return;
	}
	if (budget_spent)
		conn_backlog(c);
}

/* recvmsg() up to avail bytes into the buffer's tail, and the descriptors
 * that came with them; bytes read, 0 at EOF, or -errno. */
static ssize_t conn_recv(struct conn *c, size_t avail)
{
	struct iovec iov = {.iov_base = lbus_rbuf_tail(&c->rbuf), .iov_len = avail};
	union conn_cmsg cbuf;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	uint64_t start = c->in_pos + lbus_rbuf_len(&c->rbuf);
	ssize_t n;
	int r;

	do {
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r = conn_fds_collect(c, &mh, start, start + (uint64_t)n);
	lbus_rbuf_advance(&c->rbuf, (size_t)n);
	if (r < 0)
		return r;
	return n;
}

/*
 * Read one chunk; returns bytes read, 0 at EOF, -errno (-EAGAIN: nothing).
 * A big pending frame's buffer grows as its bytes arrive (at most doubling
 * per read), not to the length it announced, which costs nothing to send.
 */
static ssize_t conn_read(struct conn *c)
{
	size_t len, min_free = CONN_READ_MIN, avail;

	conn_rbuf_borrow(c);
	if (c->rbuf_scratch) /* it has room for at least CONN_READ_MIN */
		return conn_recv(c, lbus_rbuf_avail(&c->rbuf));
	len = lbus_rbuf_len(&c->rbuf);
	if (c->rbuf_need > len + min_free) {
		min_free = c->rbuf_need - len;
		if (min_free > len && min_free > CONN_READ_CHUNK)
			min_free = len > CONN_READ_CHUNK ? len : CONN_READ_CHUNK;
	}
	if (!c->rbuf_scratch && conn_rbuf_over(c, lbus_rbuf_reserve_cap(&c->rbuf, min_free)))
		return -ENOBUFS;
	if (lbus_rbuf_reserve(&c->rbuf, min_free) < 0)
		return -ENOMEM;
	conn_rbuf_account(c);
	avail = lbus_rbuf_avail(&c->rbuf);
	if (avail > CONN_READ_CHUNK && avail > min_free)
		avail = min_free > CONN_READ_CHUNK ? min_free : CONN_READ_CHUNK;
	return conn_recv(c, avail);
}

static void conn_on_readable(struct conn *c)
{
	ssize_t n = conn_read(c);

	if (n == -EAGAIN || n == -EWOULDBLOCK) {
		if (conn_rbuf_settle(c) < 0)
			conn_report_over(c);
		return;
	}
	if (n == -ENOBUFS) {
		conn_report_over(c);
		return;
	}
	if (n == -E2BIG) {
		c->loop->ops->bad_fds(c, -E2BIG);
		return;
	}
	if (n <= 0) {
		c->loop->ops->gone(c, (int)n);
		return;
	}
	conn_process(c);
}

void conn_on_events(struct conn *c, uint32_t events)
{
	if (conn_closed(c))
		return;
	if (events & EPOLLOUT) {
		conn_flush(c);
		if (conn_closed(c))
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	if (c->input_paused || c->backlogged || c->loop->stopping) {
		if (events & (EPOLLHUP | EPOLLERR)) {
			if (c->loop->stopping)
				c->loop->ops->gone(c, -ECONNRESET);
			else
				c->peer_hup = true;
			conn_update_events(c);
		}
		return;
	}
	conn_on_readable(c);
}

/* ---- the loop's lists ---------------------------------------------------- */

void conn_loop_run_ready(struct conn_loop *l)
{
	while (!list_empty(&l->ready)) {
		struct conn *c = container_of(l->ready.next, struct conn, ready_link);

		list_del(&c->ready_link);
		if (conn_closed(c) || c->input_paused)
			continue;
		conn_process(c);
		conn_update_events(c);
	}
}

unsigned conn_loop_run_backlog(struct conn_loop *l)
{
	struct list turn;
	unsigned served = 0;

	if (list_empty(&l->backlog))
		return 0;
	/* this turn's conns: those with input left again rejoin l->backlog */
	list_init(&turn);
	list_splice_tail(&turn, &l->backlog);
	while (!list_empty(&turn)) {
		struct conn *c = container_of(turn.next, struct conn, backlog_link);

		list_del(&c->backlog_link);
		c->backlogged = false;
		if (conn_closed(c) || l->stopping)
			continue;
		if (!c->input_paused) {
			conn_process(c);
			served++;
		}
		conn_update_events(c);
	}
	return served;
}

void conn_loop_flush(struct conn_loop *l)
{
	while (!list_empty(&l->flush))
		conn_flush(container_of(l->flush.next, struct conn, flush_link));
}

void conn_loop_sweep(struct conn_loop *l, int64_t now_ms)
{
	struct list *e, *tmp;

	list_for_each_safe(e, tmp, &l->deadlines)
	{
		struct conn *c = container_of(e, struct conn, deadline_link);

		if (c->deadline_ms <= now_ms)
			l->ops->deadline(c);
	}
}

void conn_loop_sweep_paused(struct conn_loop *l, int64_t now_ms)
{
	struct list *e, *tmp;

	l->recheck_ms = 0;
	list_for_each_safe(e, tmp, &l->deadlines)
	{
		struct conn *c = container_of(e, struct conn, deadline_link);

		if (!c->input_paused)
			continue;
		if (c->deadline_ms <= now_ms)
			l->ops->deadline(c);
		else if (!l->recheck_ms || c->deadline_ms < l->recheck_ms)
			l->recheck_ms = c->deadline_ms;
	}
}

void conn_close(struct conn *c)
{
	if (conn_closed(c))
		return;
	if (c->registered)
		epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (c->rbuf_scratch)
		conn_rbuf_return(c);
	conn_fds_clear(c);
	list_del(&c->flush_link);
	list_del(&c->ready_link);
	list_del(&c->backlog_link);
	c->backlogged = false;
	list_del(&c->deadline_link);
}

void conn_deinit(struct conn *c)
{
	conn_fds_clear(c);
	outq_deinit(&c->outq);
	lbus_rbuf_deinit(&c->rbuf);
	conn_rbuf_account(c);
}
