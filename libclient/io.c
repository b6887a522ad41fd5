/* SPDX-License-Identifier: MIT */
/*
 * The I/O core of liblbus: one output buffer, one receive buffer, and one
 * dispatch core that every entry point runs.
 *
 * Output. Frames are encoded straight into bus->out (publish uses the
 * allocation-free encoder of wire.h). A frame sent outside a dispatch turn
 * (bus->dispatching == 0) without LBUS_MORE is written at once, with
 * everything gathered before it, so a program needs no loop to publish.
 * Inside a dispatch turn (callbacks) and with LBUS_MORE, frames are
 * gathered until bus->out_batch bytes (lbus_connect_opts.publish_buffer,
 * 64 KiB by default) are pending, and io_work() writes what callbacks sent
 * at the end of its turn: a tight loop with LBUS_MORE costs one send() per
 * 64 KiB. When the kernel buffer is full, a sender waits in poll() until
 * the socket is writable (at most the connection's timeout), but keeps
 * reading what the broker sends into bus->in meanwhile (without running
 * callbacks): two clients publishing at each other therefore cannot
 * deadlock on full socket buffers.
 *
 * Lost output. bus->out_mark is the start of the first frame not completely
 * written, so io_out_frames() can count, by walking the frame headers, the
 * messages still buffered; when the connection fails they are added to
 * bus->out_lost (lbus_unsent(), lbus_close()). A failed write is -ECONNRESET
 * like a failed read: one code for a lost connection.
 *
 * Input. recv() reads IO_IN_CHUNK (256 KiB) or more at a time into the
 * rbuf of frame.h; io_process() then handles every complete frame through a
 * table indexed by Frame.kind. A read that fills the offered room is followed
 * by another (up to IO_READ_BUDGET per turn), so a backlog is drained
 * without a poll() per chunk.
 *
 * Dispatch core. io_work() writes, handles buffered frames, reads, expires
 * calls and writes again, all without blocking. lbus_dispatch() is one
 * io_work(); lbus_run() and io_wait() (used by every blocking call,
 * so there is no second frame reader) alternate io_work() and poll() until
 * their condition holds. Callbacks therefore run inside blocking calls too.
 *
 * Buffer pinning: see client-internal.h. While a frame handler is on the
 * stack, in_room() never moves or overwrites that frame's bytes; it copies
 * the unconsumed bytes into a fresh buffer and retires the old one, freed
 * when the outermost handler returns.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "client-internal.h"
#include "lbus-limits.h"

/* Output buffers larger than this are released once empty. */
#define OUT_KEEP_MAX (1024u * 1024u)
/* First size of the output buffer: room for two batches, growing from
 * there when the publish buffer is large. */
#define OUT_FIRST_CAP(batch) ((batch) < OUT_KEEP_MAX / 2 ? 2 * (batch) : OUT_KEEP_MAX)
/* Receive buffers larger than this are shrunk once empty. */
#define IN_KEEP_MAX (4u * IO_IN_CHUNK)
/* Deliveries carry a few hundred bytes around the publisher's frame. */
#define IN_FRAME_SLACK (64u * 1024u)
#define IO_MS_PER_S 1000
#define IO_NS_PER_MS 1000000

int64_t io_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * IO_MS_PER_S + ts.tv_nsec / IO_NS_PER_MS;
}

int64_t io_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : io_now_ms() + timeout_ms;
}

void io_fail(struct lbus *bus, int err)
{
	if (!bus->dead)
		bus->dead = err < 0 ? err : -ECONNRESET;
}

/* ---- output --------------------------------------------------------------- */

/* Move out_mark past the frames written completely. */
static void out_mark_advance(struct lbus *bus)
{
	while (bus->out_head - bus->out_mark >= LBUS_FRAME_HEADER) {
		size_t end = bus->out_mark + LBUS_FRAME_HEADER + lbus_frame_get_len(bus->out + bus->out_mark);
		if (end > bus->out_head)
			break;
		bus->out_mark = end;
	}
}

size_t io_out_frames(const struct lbus *bus)
{
	size_t n = 0;
	for (size_t at = bus->out_mark; at < bus->out_tail;) {
		size_t end = at + LBUS_FRAME_HEADER + lbus_frame_get_len(bus->out + at);
		if (end > bus->out_head)
			n++;
		at = end;
	}
	return n;
}

uint8_t *io_out_reserve(struct lbus *bus, size_t n)
{
	if (bus->out_cap - bus->out_tail >= n)
		return bus->out + bus->out_tail;
	if (bus->out_head) {
		/* Keep a partly written frame whole, for io_out_frames(). */
		out_mark_advance(bus);
		size_t keep = bus->out_tail - bus->out_mark;
		memmove(bus->out, bus->out + bus->out_mark, keep);
		bus->out_head -= bus->out_mark;
		bus->out_mark = 0;
		bus->out_tail = keep;
		if (bus->out_cap - keep >= n)
			return bus->out + bus->out_tail;
	}
	size_t cap = bus->out_cap ? bus->out_cap : OUT_FIRST_CAP(bus->out_batch);
	while (cap - bus->out_tail < n)
		cap *= 2;
	uint8_t *p = realloc(bus->out, cap);
	if (!p)
		return NULL;
	bus->out = p;
	bus->out_cap = cap;
	return bus->out + bus->out_tail;
}

/* Write what the kernel takes now. 0 (also when some remains) or -errno;
 * a peer that is gone is -ECONNRESET (send() says EPIPE). */
static int out_write(struct lbus *bus)
{
	while (io_out_pending(bus)) {
		union io_cmsg cbuf;
		struct iovec iov = {.iov_base = bus->out + bus->out_head};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

		/* a frame with descriptors starts a sendmsg() of its own */
		iov.iov_len = io_attach_limit(bus, io_out_pending(bus), &mh, &cbuf);
		ssize_t n = sendmsg(bus->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			bus->out_head += (size_t)n;
			bus->out_pos += (uint64_t)n;
			io_attach_sent(bus);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return n < 0 && errno != EPIPE ? -errno : -ECONNRESET;
	}
	bus->out_head = bus->out_tail = bus->out_mark = 0;
	if (bus->out_cap > OUT_KEEP_MAX) {
		free(bus->out);
		bus->out = NULL;
		bus->out_cap = 0;
	}
	return 0;
}

/* The connection is gone: what is still buffered is lost; count it. */
static void out_discard(struct lbus *bus)
{
	bus->out_lost += io_out_frames(bus);
	bus->out_head = bus->out_tail = bus->out_mark = 0;
	io_attach_clear(bus);
}

static int in_fill(struct lbus *bus, bool *full);

/* Write, recording a failure as the connection's error. The broker may have
 * explained why it closed (a fatal Error, e.g. access denied) just before:
 * buffer what it sent, so the next dispatch reports that error instead of
 * -ECONNRESET. */
static void out_write_or_fail(struct lbus *bus)
{
	if (bus->dead || bus->rc.link == RC_DOWN)
		return;
	int r = out_write(bus);
	if (r < 0) {
		io_fail(bus, r);
		out_discard(bus);
		bool full;
		while (in_fill(bus, &full) > 0)
			;
	}
}

/* ---- input ----------------------------------------------------------------- */

static uint32_t in_max_frame(const struct lbus *bus)
{
	uint32_t m = bus->max_frame > LBUS_DEFAULT_MAX_FRAME ? bus->max_frame : LBUS_DEFAULT_MAX_FRAME;
	return m + IN_FRAME_SLACK;
}

static void in_release_retired(struct lbus *bus)
{
	while (bus->retired) {
		struct io_retired *r = bus->retired;
		bus->retired = r->next;
		free(r->data);
		free(r);
	}
}

/* Ensure `want` free bytes after the buffered input without touching the
 * bytes of frames being handled (the pin). lbus_frame_next() rewinds an
 * emptied buffer to offset 0, so pinned bytes may lie beyond `end`: the tail
 * is usable only past the pin, and the buffer is never moved while pinned.
 * 0 or -ENOMEM. */
static int in_room(struct lbus *bus, size_t want)
{
	bool pinned = bus->frame_depth && bus->pin_data == bus->in.data;
	if (!pinned) {
		if (lbus_rbuf_avail(&bus->in) >= want)
			return 0;
		return lbus_rbuf_reserve(&bus->in, want);
	}
	if (bus->in.end >= bus->pin_end && lbus_rbuf_avail(&bus->in) >= want)
		return 0;
	size_t len = lbus_rbuf_len(&bus->in);
	struct io_retired *old = malloc(sizeof(*old));
	struct lbus_rbuf fresh;
	lbus_rbuf_init(&fresh);
	if (!old || lbus_rbuf_reserve(&fresh, len + want) < 0) {
		free(old);
		return -ENOMEM;
	}
	if (len)
		memcpy(fresh.data, bus->in.data + bus->in.start, len);
	fresh.end = len;
	old->data = bus->in.data;
	old->next = bus->retired;
	bus->retired = old;
	bus->in = fresh;
	return 0;
}

/* Bytes to offer to the next read: a chunk, or what the partial frame at the
 * head of the buffer still needs. */
static size_t in_want(const struct lbus *bus)
{
	size_t buffered = lbus_rbuf_len(&bus->in);
	if (buffered < LBUS_FRAME_HEADER)
		return IO_IN_CHUNK;
	size_t frame = LBUS_FRAME_HEADER + (size_t)lbus_frame_get_len(bus->in.data + bus->in.start);
	if (frame <= buffered || frame > (size_t)in_max_frame(bus) + LBUS_FRAME_HEADER)
		return IO_IN_CHUNK;
	return frame - buffered > IO_IN_CHUNK ? frame - buffered : IO_IN_CHUNK;
}

/* Read once. Returns bytes read (> 0), 0 when nothing is available, or
 * -errno (-ECONNRESET at end of stream). *full: the read filled the room. */
static int in_fill(struct lbus *bus, bool *full)
{
	*full = false;
	if (bus->rc.link == RC_DOWN)
		return 0; /* lbus_fd() is parked (reconnect.c) */
	int r = in_room(bus, in_want(bus));
	if (r < 0)
		return r;
	size_t avail = lbus_rbuf_avail(&bus->in);
	if (avail > INT_MAX)
		avail = INT_MAX;
	for (;;) {
		union {
			char buf[CMSG_SPACE((LBUS_MAX_FDS_PER_FRAME + 1) * sizeof(int))];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = {.iov_base = lbus_rbuf_tail(&bus->in), .iov_len = avail};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf.buf,
				    .msg_controllen = sizeof(cbuf.buf)};
		uint64_t start = bus->in_pos + lbus_rbuf_len(&bus->in);
		ssize_t n = recvmsg(bus->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n > 0) {
			lbus_rbuf_advance(&bus->in, (size_t)n);
			*full = (size_t)n == avail;
			r = io_batch_collect(bus, &mh, start, start + (uint64_t)n);
			return r < 0 ? r : (int)n;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
}

bool io_in_ready(const struct lbus *bus)
{
	size_t buffered = lbus_rbuf_len(&bus->in);
	if (buffered < LBUS_FRAME_HEADER)
		return false;
	return buffered - LBUS_FRAME_HEADER >= lbus_frame_get_len(bus->in.data + bus->in.start);
}

typedef int (*frame_fn)(struct lbus *bus, const struct lbus_wire_frame *f);

/* What the client does with each frame kind the broker sends; other kinds
 * are ignored (forward compatibility). */
static const frame_fn frame_table[LBUS_K_MAX + 1] = {
    [LBUS_K_WELCOME] = client_on_welcome,
    [LBUS_K_ERROR] = req_on_error,
    [LBUS_K_PING] = req_on_ping,
    [LBUS_K_PONG] = req_on_pong,
    [LBUS_K_DELIVER] = sub_on_deliver,
    [LBUS_K_OK] = req_on_ok,
    [LBUS_K_RESULT] = call_on_result,
    [LBUS_K_DROPPED] = sub_on_dropped,
    [LBUS_K_CLIENT_LIST] = req_on_answer,
    [LBUS_K_STATS_REPLY] = req_on_answer,
    [LBUS_K_MONITOR_EVENT] = monitor_on_event,
};

static int io_handle_kind(struct lbus *bus, const struct lbus_wire_frame *fp, const uint8_t *body,
			  uint32_t len);

/* Scan and handle one frame body, which started at stream offset pos.
 * Returns messages handled (0/1) or -EPROTO. */
static int io_handle(struct lbus *bus, const uint8_t *body, uint32_t len, uint64_t pos)
{
	struct lbus_wire_frame f;
	struct io_fds fds;
	if (lbus_wire_frame_scan(body, len, &f) < 0)
		return -EPROTO;
	if (f.fds > LBUS_MAX_FDS_PER_FRAME || io_batch_claim(bus, pos, f.fds, &fds) < 0)
		return -EPROTO;
	struct io_fds *saved_fds = bus->frame_fds;
	bus->frame_fds = &fds;
	int r = io_handle_kind(bus, &f, body, len);
	bus->frame_fds = saved_fds;
	io_fds_close(fds.fds, fds.n); /* what the handler did not take */
	io_batch_drop_stale(bus);
	return r;
}

/* io_handle() for f, its descriptors in bus->frame_fds. */
static int io_handle_kind(struct lbus *bus, const struct lbus_wire_frame *fp, const uint8_t *body,
			  uint32_t len)
{
	const struct lbus_wire_frame f = *fp;
	if (!bus->welcomed && f.kind != LBUS_K_WELCOME && f.kind != LBUS_K_ERROR)
		return -EPROTO;
	if (f.kind > LBUS_K_MAX || !frame_table[f.kind])
		return 0;
	/* Pin the frame: it ends at frame_end in the current buffer. */
	const uint8_t *saved_data = bus->pin_data;
	size_t saved_end = bus->pin_end;
	size_t frame_end = (size_t)(body + len - bus->in.data);
	if (bus->pin_data != bus->in.data) {
		bus->pin_data = bus->in.data;
		bus->pin_end = frame_end;
	} else if (bus->pin_end < frame_end) {
		bus->pin_end = frame_end;
	}
	bus->frame_depth++;
	int r = frame_table[f.kind](bus, &f);
	bus->frame_depth--;
	bus->pin_data = saved_data;
	bus->pin_end = saved_end;
	if (!bus->frame_depth)
		in_release_retired(bus);
	return r;
}

/* Handle every complete buffered frame (stopping at lbus_break() when
 * stop_on_break). Returns the number of messages handled. A malformed
 * frame breaks the connection (-EPROTO) and discards the input. */
static int io_process(struct lbus *bus, bool stop_on_break)
{
	int handled = 0;
	while (!(stop_on_break && bus->brk)) {
		const uint8_t *body;
		uint32_t len;
		uint64_t pos = bus->in_pos;
		int r = lbus_frame_next(&bus->in, in_max_frame(bus), &body, &len, NULL);
		if (r == 0)
			break;
		if (r > 0) {
			bus->in_pos += LBUS_FRAME_HEADER + len;
			r = io_handle(bus, body, len, pos);
		}
		if (r < 0) {
			io_fail(bus, -EPROTO);
			bus->in_pos += lbus_rbuf_len(&bus->in);
			bus->in.start = bus->in.end;
			io_batch_clear(bus);
			break;
		}
		handled += r;
	}
	if (!bus->frame_depth && !lbus_rbuf_len(&bus->in) && bus->in.cap > IN_KEEP_MAX)
		lbus_rbuf_shrink(&bus->in, IO_IN_CHUNK);
	return handled;
}

/* After the connection is lost: fail whatever still waits, once. */
static void io_lost(struct lbus *bus)
{
	bus->lost_done = true;
	out_discard(bus);
	req_fail_all(bus, bus->dead);
	calls_fail_all(bus, -ECONNRESET);
}

/* All the work possible without blocking; reads only when try_read. What
 * callbacks send meanwhile is gathered (bus->dispatching) and written at
 * the end. */
static int io_work(struct lbus *bus, bool try_read, bool stop_on_break)
{
	bus->dispatching++;
	rc_tick(bus);
	out_write_or_fail(bus);
	int handled = io_process(bus, stop_on_break);
	for (int i = 0; try_read && !bus->dead && i < IO_READ_BUDGET; i++) {
		if (stop_on_break && bus->brk)
			break;
		bool full;
		int n = in_fill(bus, &full);
		if (n < 0)
			io_fail(bus, n);
		handled += io_process(bus, stop_on_break);
		if (n <= 0 || !full)
			break;
	}
	if (bus->shed_pending && !io_in_ready(bus))
		sub_report_shed(bus); /* after the deliveries kept */
	calls_expire(bus);
	req_expire(bus);
	rc_tick(bus);
	if (bus->dead && !bus->lost_done)
		io_lost(bus);
	out_write_or_fail(bus);
	bus->dispatching--;
	return handled;
}

/* Milliseconds from now to deadline for poll(): -1 when there is none. */
static int ms_until(int64_t now, int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline > now ? deadline - now : 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* poll() timeout for a wait until deadline (-1: none), honouring call
 * deadlines and buffered input. */
static int io_poll_timeout(const struct lbus *bus, int64_t now, int64_t deadline)
{
	int t = lbus_timeout(bus);
	int left = ms_until(now, deadline);
	if (left >= 0 && (t < 0 || left < t))
		t = left;
	return t;
}

/* Wait for the socket. *readable: input (or hang-up) is there to read. */
static int io_poll(struct lbus *bus, int timeout, bool *readable)
{
	struct pollfd p = {.fd = bus->fd, .events = lbus_events(bus)};
	*readable = false;
	int r = poll(&p, 1, timeout);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	*readable = (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
	return 0;
}

/* The most input kept while a send waits (lbus_connect_opts.input_buffer,
 * at least one largest frame and a read). */
static size_t in_bound(const struct lbus *bus)
{
	size_t floor = (size_t)in_max_frame(bus) + LBUS_FRAME_HEADER + IO_IN_CHUNK;
	return bus->in_bound > floor ? bus->in_bound : floor;
}

/* The input passed its bound while a send waits: drop the publish
 * deliveries buffered (the oldest input, so a drop notice before the next
 * delivery is in order), keeping every other frame. Only the unconsumed
 * bytes [start, end) move, never a pinned frame. */
static void in_shed(struct lbus *bus)
{
	uint8_t *d = bus->in.data;
	size_t at = bus->in.start, to = at, max = (size_t)in_max_frame(bus) + LBUS_FRAME_HEADER;
	while (bus->in.end - at >= LBUS_FRAME_HEADER) {
		size_t len = LBUS_FRAME_HEADER + (size_t)lbus_frame_get_len(d + at);
		if (len > max || len > bus->in.end - at)
			break;
		if (!sub_shed(bus, d + at + LBUS_FRAME_HEADER, (uint32_t)(len - LBUS_FRAME_HEADER))) {
			if (to != at)
				memmove(d + to, d + at, len);
			to += len;
		}
		at += len;
	}
	size_t rest = bus->in.end - at;
	if (rest && to != at)
		memmove(d + to, d + at, rest);
	bus->in.end = to + rest;
}

int io_out_drain(struct lbus *bus, size_t keep, int64_t deadline)
{
	if (rc_down(bus))
		return io_out_pending(bus) > keep ? -ENOTCONN : 0;
	for (;;) {
		if (bus->dead)
			return bus->dead;
		out_write_or_fail(bus);
		if (bus->dead)
			return bus->dead;
		if (io_out_pending(bus) <= keep)
			return 0;
		int64_t now = io_now_ms();
		if (deadline >= 0 && now >= deadline)
			return -ETIMEDOUT;
		bool readable;
		int r = io_poll(bus, ms_until(now, deadline), &readable);
		if (r < 0)
			return r;
		if (readable) {
			bool full;
			int n = in_fill(bus, &full);
			if (n < 0)
				io_fail(bus, n);
			if (lbus_rbuf_len(&bus->in) > in_bound(bus))
				in_shed(bus);
		}
	}
}

int io_out_commit(struct lbus *bus, size_t n, bool more)
{
	if (rc_down(bus)) { /* kept for the reconnection (reconnect.c) */
		if (!bus->rc.replaying && io_out_pending(bus) + n > bus->rc.buffer)
			return -ENOBUFS;
		bus->out_tail += n;
		return 0;
	}
	bus->out_tail += n;
	if (bus->attach_n && io_attach_commit(bus, n) < 0) {
		bus->out_tail -= n; /* not queued */
		return -ENOMEM;
	}
	if (bus->dispatching || more) {
		if (io_out_pending(bus) < bus->out_batch)
			return 0;
		return io_out_drain(bus, bus->out_batch - 1, io_deadline(bus->timeout_ms));
	}
	return io_out_drain(bus, 0, io_deadline(bus->timeout_ms));
}

/* Reconnect mode while not connected: only what does not wait for the
 * broker (a send with LBUS_NOWAIT) is kept; the replay passes. */
static bool out_refused(const struct lbus *bus, const Lbus__Frame *f)
{
	if (!rc_down(bus) || bus->rc.replaying)
		return false;
	return f->kind_case != LBUS__FRAME__KIND_SEND || f->req_id;
}

int io_out_frame(struct lbus *bus, const Lbus__Frame *f)
{
	if (bus->dead && rc_recoverable(bus))
		rc_lost(bus);
	if (bus->dead)
		return bus->dead;
	if (out_refused(bus, f))
		return -ENOTCONN;
	Lbus__Frame g = *f;
	union memfd_msg copy;
	int r = memfd_offload_frame(bus, &g, &copy);
	if (r < 0)
		return r;
	g.fds = bus->attach_n; /* the descriptors prepared for it (fds.c) */
	size_t size = lbus_frame_packed_size(&g);
	if (size - LBUS_FRAME_HEADER > bus->max_frame)
		return -EMSGSIZE;
	uint8_t *p = io_out_reserve(bus, size);
	if (!p)
		return -ENOMEM;
	lbus_frame_pack(&g, p);
	return io_out_commit(bus, size, false);
}

int io_wait(struct lbus *bus, const bool *done, int64_t deadline)
{
	bool readable = false;
	for (;;) {
		io_work(bus, readable, false);
		if (*done)
			return 0;
		if (bus->dead)
			return bus->dead;
		int64_t now = io_now_ms();
		if (deadline >= 0 && now >= deadline)
			return -ETIMEDOUT;
		int r = io_poll(bus, io_poll_timeout(bus, now, deadline), &readable);
		if (r < 0)
			return r;
	}
}

void io_deinit(struct lbus *bus)
{
	free(bus->out);
	bus->out = NULL;
	bus->out_cap = bus->out_head = bus->out_tail = 0;
	lbus_rbuf_deinit(&bus->in);
	in_release_retired(bus);
	io_attach_clear(bus);
	io_batch_clear(bus);
}

/* ---- public event-loop API -------------------------------------------------- */

int lbus_fd(const lbus *bus)
{
	return bus->fd;
}

short lbus_events(const lbus *bus)
{
	if (bus->rc.link == RC_DOWN)
		return POLLIN;
	return (short)(POLLIN | (io_out_pending(bus) ? POLLOUT : 0));
}

int lbus_timeout(const lbus *bus)
{
	if (io_in_ready(bus))
		return 0;
	int64_t now = io_now_ms();
	int t = calls_timeout(bus, now);
	int timers[] = {req_timeout(bus, now), rc_timeout(bus, now)};
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++)
		if (timers[i] >= 0 && (t < 0 || timers[i] < t))
			t = timers[i];
	return t;
}

int lbus_dispatch(lbus *bus)
{
	if (bus->dead && bus->lost_done)
		return bus->dead;
	int n = io_work(bus, true, true);
	bus->brk = false;
	return bus->dead ? bus->dead : n;
}

int lbus_run(lbus *bus, int timeout_ms)
{
	int64_t deadline = io_deadline(timeout_ms);
	bool readable = true;
	for (;;) {
		io_work(bus, readable, true);
		if (bus->brk) {
			bus->brk = false;
			return 1;
		}
		if (bus->dead)
			return bus->dead;
		int64_t now = io_now_ms();
		if (deadline >= 0 && now >= deadline)
			return 0;
		int r = io_poll(bus, io_poll_timeout(bus, now, deadline), &readable);
		if (r < 0)
			return r;
	}
}

void lbus_break(lbus *bus)
{
	bus->brk = true;
}

int lbus_flush(lbus *bus, int timeout_ms)
{
	return io_out_drain(bus, 0, io_deadline(timeout_ms));
}

size_t lbus_unsent(const lbus *bus)
{
	return bus->out_lost + io_out_frames(bus);
}
