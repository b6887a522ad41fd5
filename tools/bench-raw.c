/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: the raw baseline. The same traffic as the lbus runs, with no
 * broker: processes connected directly by AF_UNIX SOCK_STREAM socketpairs,
 * carrying the same frames (4-byte little-endian length + payload of the
 * same size, stamped the same way).
 *
 * Flow (throughput, fanout, fanin): one socketpair per publisher/subscriber
 * pair. A publisher appends frames to a 64 KiB batch and writes each full
 * batch to every subscriber socket it has (fan-out writes the same batch K
 * times), as the library batches publishes. A subscriber reads 256 KiB at a
 * time and walks every complete frame in the chunk (poll over its sockets
 * when it has several, for fan-in); a frame cut by the chunk's end moves to
 * the front and is completed by the next read.
 *
 * Latency: ping-pong of one frame at a time between two processes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"

/* The socketpairs of a flow: pair[p * S + s], [0] publisher's end, [1]
 * subscriber's end. */
struct raw_flow {
	const struct bench_flow *f;
	int (*pair)[2];
	unsigned n_pairs;
};

/* A receive buffer: bytes [start, end) are unconsumed. */
struct raw_rx {
	uint8_t *buf;
	size_t cap, start, end;
};

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes; -ECONNRESET at EOF, -ETIMEDOUT when the child
 * should stop (the socket has a receive timeout so this is noticed). */
static int read_full(struct bench_child *c, int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if (bench_child_should_stop(c))
				return -ETIMEDOUT;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void set_recv_timeout(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* In a child: close every socket of the flow but the ones it uses. */
static void keep_own_ends(const struct raw_flow *rf, bool publisher, unsigned who)
{
	unsigned S = rf->f->subscribers;

	for (unsigned i = 0; i < rf->n_pairs; i++) {
		bool mine_pub = publisher && i / S == who;
		bool mine_sub = !publisher && i % S == who;

		if (!mine_pub)
			close(rf->pair[i][0]);
		if (!mine_sub)
			close(rf->pair[i][1]);
	}
}

static int write_batch(const int *fds, unsigned n, const uint8_t *buf, size_t len)
{
	for (unsigned i = 0; i < n; i++) {
		int r = write_all(fds[i], buf, len);

		if (r < 0)
			return r;
	}
	return 0;
}

static int raw_publish_loop(struct bench_child *c, const int *fds, unsigned n, unsigned who)
{
	const struct bench_flow *f = ((struct raw_flow *)c->args)->f;
	size_t cap = f->size + 4 > BENCH_BATCH_BYTES ? f->size + 4 : BENCH_BATCH_BYTES;
	uint8_t *batch = malloc(cap), *payload = calloc(1, f->size + 1);
	size_t used = 0;
	int r = 0;

	if (!batch || !payload) {
		r = -ENOMEM;
		goto out;
	}
	/* progress: the frames written so far */
	for (uint64_t seq = 0; seq < f->per_publisher && r == 0; seq++) {
		if (used + 4 + f->size > cap) {
			r = write_batch(fds, n, batch, used);
			used = 0;
			if (r == 0)
				__atomic_store_n(&c->slot->progress, seq, __ATOMIC_RELAXED);
		}
		bench_stamp(payload, f->size, seq, who);
		put_le32(batch + used, (uint32_t)f->size);
		memcpy(batch + used + 4, payload, f->size);
		used += 4 + f->size;
	}
	if (r == 0 && used)
		r = write_batch(fds, n, batch, used);
	if (r == 0)
		__atomic_store_n(&c->slot->progress, f->per_publisher, __ATOMIC_RELEASE);
out:
	free(batch);
	free(payload);
	return r;
}

static int raw_publisher(struct bench_child *c)
{
	struct raw_flow *rf = c->args;
	unsigned S = rf->f->subscribers, who = c->index - S;
	int fds[BENCH_MAX_PROCS];
	int r;

	keep_own_ends(rf, true, who);
	for (unsigned s = 0; s < S; s++)
		fds[s] = rf->pair[who * S + s][0];
	bench_child_ready(c);
	r = bench_child_wait_go(c);
	if (r == 0)
		r = raw_publish_loop(c, fds, S, who);
	if ((r == -EPIPE || r == -ECONNRESET || r == -ETIMEDOUT) && bench_child_should_stop(c))
		r = 0; /* the subscribers gave up at the time limit: they report it */
	for (unsigned s = 0; s < S; s++)
		close(fds[s]);
	return r < 0 ? bench_child_fail(c, r, "raw publisher", strerror(-r)) : 0;
}

/* Walk every complete frame in the buffer, then move a partial one to the
 * front. */
static void rx_walk(struct raw_rx *rx, struct bench_order *o)
{
	while (rx->end - rx->start >= 4) {
		uint32_t len = get_le32(rx->buf + rx->start);

		if (rx->end - rx->start < 4 + (size_t)len)
			break;
		bench_order_check(o, rx->buf + rx->start + 4, len);
		rx->start += 4 + (size_t)len;
	}
	memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
	rx->end -= rx->start;
	rx->start = 0;
}

/* One read into rx; 1 if data came, 0 at EOF, -EAGAIN on the receive
 * timeout, or -errno. */
static int rx_read(struct raw_rx *rx, int fd, struct bench_order *o)
{
	ssize_t n = read(fd, rx->buf + rx->end, rx->cap - rx->end);

	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	rx->end += (size_t)n;
	rx_walk(rx, o);
	return 1;
}

static int rx_init(struct raw_rx *rx, size_t frame)
{
	rx->cap = frame + 4 > BENCH_RECV_BYTES ? 2 * (frame + 4) : BENCH_RECV_BYTES;
	rx->start = rx->end = 0;
	rx->buf = malloc(rx->cap);
	return rx->buf ? 0 : -ENOMEM;
}

/* Read from whichever of the fds is readable (poll if there are several). */
static int rx_round(struct raw_rx *rx, int *fds, unsigned n, unsigned *open_fds, struct bench_order *o)
{
	struct pollfd pfd[BENCH_MAX_PROCS];
	int r;

	if (n == 1)
		return rx_read(&rx[0], fds[0], o);
	for (unsigned i = 0; i < n; i++)
		pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	r = poll(pfd, n, 100);
	if (r <= 0)
		return r < 0 && errno != EINTR ? -errno : -EAGAIN;
	for (unsigned i = 0; i < n; i++) {
		if (!(pfd[i].revents & (POLLIN | POLLHUP)) || fds[i] < 0)
			continue;
		r = rx_read(&rx[i], fds[i], o);
		if (r == 0) { /* that publisher is done; poll ignores fd -1 */
			(*open_fds)--;
			close(fds[i]);
			fds[i] = -1;
		}
		if (r < 0 && r != -EAGAIN)
			return r;
	}
	return 1;
}

static int raw_subscribe_loop(struct bench_child *c, struct raw_rx *rx, int *fds, unsigned n)
{
	const struct bench_flow *f = ((struct raw_flow *)c->args)->f;
	uint64_t expected = f->per_publisher * f->publishers;
	struct bench_order *o = calloc(1, sizeof(*o));
	unsigned open_fds = n;
	int r = 0;

	if (!o)
		return -ENOMEM;
	o->size = f->size;
	while (o->received < expected && open_fds > 0) {
		r = rx_round(rx, fds, n, &open_fds, o);
		if (r == 0 && n == 1)
			break; /* EOF from the only publisher */
		if (r < 0 && r != -EAGAIN)
			break;
		r = 0;
		__atomic_store_n(&c->slot->progress, o->received, __ATOMIC_RELAXED);
		__atomic_store_n(&c->slot->disorder, o->disorder, __ATOMIC_RELAXED);
		if (bench_child_should_stop(c))
			break;
	}
	__atomic_store_n(&c->slot->t_end_ns, bench_now_ns(), __ATOMIC_RELEASE);
	__atomic_store_n(&c->slot->progress, o->received, __ATOMIC_RELEASE);
	__atomic_store_n(&c->slot->disorder, o->disorder, __ATOMIC_RELEASE);
	free(o);
	return r;
}

static int raw_subscriber(struct bench_child *c)
{
	struct raw_flow *rf = c->args;
	unsigned S = rf->f->subscribers, P = rf->f->publishers, who = c->index;
	struct raw_rx rx[BENCH_MAX_PROCS] = {0};
	int fds[BENCH_MAX_PROCS];
	int r = 0;

	keep_own_ends(rf, false, who);
	for (unsigned p = 0; p < P && r == 0; p++) {
		fds[p] = rf->pair[p * S + who][1];
		set_recv_timeout(fds[p], 100);
		r = rx_init(&rx[p], rf->f->size);
	}
	if (r == 0) {
		bench_child_ready(c);
		r = raw_subscribe_loop(c, rx, fds, P);
	}
	for (unsigned p = 0; p < P; p++)
		free(rx[p].buf);
	return r < 0 ? bench_child_fail(c, r, "raw subscriber", strerror(-r)) : 0;
}

static int raw_flow_spawn(struct bench_group *g, struct raw_flow *rf)
{
	int r = 0;

	for (unsigned s = 0; s < rf->f->subscribers && r == 0; s++)
		r = bench_group_spawn(g, raw_subscriber, rf, "raw-sub");
	for (unsigned p = 0; p < rf->f->publishers && r == 0; p++)
		r = bench_group_spawn(g, raw_publisher, rf, "raw-pub");
	return r;
}

static void close_pairs(struct raw_flow *rf)
{
	for (unsigned i = 0; i < rf->n_pairs; i++) {
		close(rf->pair[i][0]);
		close(rf->pair[i][1]);
	}
	rf->n_pairs = 0;
}

int bench_raw_flow(const struct bench_flow *f, struct bench_result *res)
{
	struct raw_flow rf = {.f = f};
	struct bench_group g;
	int r;

	if (f->publishers + f->subscribers > BENCH_MAX_PROCS)
		return res->err = -E2BIG;
	rf.pair = calloc((size_t)f->publishers * f->subscribers, sizeof(*rf.pair));
	if (!rf.pair)
		return res->err = -ENOMEM;
	r = bench_group_init(&g, f->time_limit_s);
	for (unsigned i = 0; r == 0 && i < f->publishers * f->subscribers; i++, rf.n_pairs++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rf.pair[i]) < 0)
			r = -errno;
	if (r == 0)
		r = raw_flow_spawn(&g, &rf);
	close_pairs(&rf);
	if (r == 0)
		r = bench_group_wait_ready(&g, res);
	if (r == 0) {
		bench_group_go(&g);
		r = bench_group_finish(&g);
		bench_flow_collect(f, &g, res);
	}
	bench_group_conclude(&g, r, res);
	free(rf.pair);
	return res->err;
}

/* ---- latency ------------------------------------------------------------- */

struct raw_latency {
	const struct bench_latency *l;
	int sv[2]; /* [0] the pinger's end, [1] the ponger's */
};

static int raw_ponger(struct bench_child *c)
{
	struct raw_latency *rl = c->args;
	int fd = rl->sv[1];
	uint8_t *frame = NULL, *grown;
	uint8_t hdr[4];
	uint32_t len;
	int r;

	close(rl->sv[0]);
	set_recv_timeout(fd, 100);
	bench_child_ready(c);
	for (;;) {
		r = read_full(c, fd, hdr, 4);
		if (r < 0)
			break;
		len = get_le32(hdr);
		grown = realloc(frame, 4 + (size_t)len);
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		frame = grown;
		memcpy(frame, hdr, 4);
		r = read_full(c, fd, frame + 4, len);
		if (r == 0)
			r = write_all(fd, frame, 4 + (size_t)len);
		if (r < 0)
			break;
	}
	free(frame);
	close(fd);
	return r == -ECONNRESET || r == -ETIMEDOUT ? 0 : bench_child_fail(c, r, "raw ponger", strerror(-r));
}

/* One round trip of the frame; its duration in *ns. */
static int ping_once(struct bench_child *c, int fd, uint8_t *frame, size_t len, uint64_t *ns)
{
	uint64_t t0 = bench_now_ns();
	int r = write_all(fd, frame, len);

	if (r == 0)
		r = read_full(c, fd, frame, len);
	*ns = bench_now_ns() - t0;
	return r;
}

static int raw_ping_loop(struct bench_child *c, int fd, uint64_t *samples)
{
	const struct bench_latency *l = ((struct raw_latency *)c->args)->l;
	uint64_t warmup = bench_latency_warmup(l->count);
	uint8_t *frame = calloc(1, 4 + l->size);
	uint64_t ns, done = 0;
	int r = 0;

	if (!frame)
		return -ENOMEM;
	put_le32(frame, (uint32_t)l->size);
	for (uint64_t i = 0; i < warmup && r == 0; i++)
		r = ping_once(c, fd, frame, 4 + l->size, &ns);
	while (done < l->count && r == 0 && !bench_child_should_stop(c)) {
		r = ping_once(c, fd, frame, 4 + l->size, &ns);
		if (r < 0)
			break;
		samples[done++] = ns;
		if (done % 256 == 0)
			__atomic_store_n(&c->slot->progress, done, __ATOMIC_RELAXED);
	}
	free(frame);
	__atomic_store_n(&c->slot->progress, done, __ATOMIC_RELEASE);
	return r;
}

static int raw_pinger(struct bench_child *c)
{
	struct raw_latency *rl = c->args;
	uint64_t *samples = calloc(rl->l->count ? rl->l->count : 1, sizeof(*samples));
	struct bench_slot *s = c->slot;
	int r;

	close(rl->sv[1]);
	if (!samples)
		return bench_child_fail(c, -ENOMEM, "raw pinger", strerror(ENOMEM));
	set_recv_timeout(rl->sv[0], 100);
	bench_child_ready(c);
	r = bench_child_wait_go(c);
	if (r == 0)
		r = raw_ping_loop(c, rl->sv[0], samples);
	if (r == -ETIMEDOUT)
		r = 0; /* the time limit: the count of samples tells */
	bench_percentiles(samples, s->progress, &s->p50_us, &s->p99_us, &s->p999_us);
	free(samples);
	close(rl->sv[0]);
	return r < 0 ? bench_child_fail(c, r, "raw pinger", strerror(-r)) : 0;
}

int bench_raw_latency(const struct bench_latency *l, struct bench_result *res)
{
	struct raw_latency rl = {.l = l, .sv = {-1, -1}};
	struct bench_group g;
	int r;

	r = bench_group_init(&g, l->time_limit_s);
	if (r == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rl.sv) < 0)
		r = -errno;
	if (r == 0)
		r = bench_group_spawn(&g, raw_ponger, &rl, "raw-pong");
	if (r == 0)
		r = bench_group_spawn(&g, raw_pinger, &rl, "raw-ping");
	close(rl.sv[0]);
	close(rl.sv[1]);
	if (r == 0)
		r = bench_group_wait_ready(&g, res);
	if (r == 0) {
		bench_group_go(&g);
		r = bench_group_finish(&g);
		bench_latency_collect(l, &g, res);
	}
	return bench_group_conclude(&g, r, res);
}
