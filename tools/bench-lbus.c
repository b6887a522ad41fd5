/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: the lbus runs of the flow and latency scenarios, through the
 * public API (lbus.h) and a private lbusd.
 *
 * Flow: the subscribers connect and subscribe to one topic with the block
 * policy (lossless), and say ready only once lbus_subscribe() has returned,
 * i.e. the broker has confirmed; only then are the publishers forked. At go
 * each publisher calls lbus_publish() in a tight loop, with LBUS_MORE (the
 * library gathers 64 KiB per write) or, for the unbatched scenario,
 * without (each message written at once, as by a program that runs no
 * loop), then flushes and waits for lbus_sync(). Each subscriber counts
 * end to end, checks size and per-publisher order of every payload, adds
 * any drop the broker reports (msg->missed), and stops the clock itself
 * when its count is complete. The broker's CPU time is read before go and
 * after the last process exited.
 *
 * Latency: a responder owns a name and answers every call with the request's
 * bytes; the caller makes one blocking lbus_call() at a time and records
 * each round trip; when done it raises the shared stop flag so the
 * responder leaves its run loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "lbus.h"

#define FLOW_TOPIC "bench/flow"
#define ECHO_NAME "bench.echo"
#define RUN_SLICE_MS 100
#define CALL_TIMEOUT_MS 10000
#define MIN_CPU_S 0.03 /* broker CPU time worth reporting */

struct flow_sub {
	struct bench_child *c;
	struct bench_order *o;
	uint64_t expected;
	bool done;
};

static int lbus_fail(struct bench_child *c, int err, const char *what)
{
	return bench_child_fail(c, err, what, lbus_strerror(err));
}

/* Milliseconds left until the child's deadline (at least 1). */
static int ms_left(const struct bench_child *c)
{
	uint64_t now = bench_now_ns();

	return now >= c->deadline_ns ? 1 : (int)((c->deadline_ns - now) / 1000000u) + 1;
}

static void publish_progress(struct flow_sub *st, int order)
{
	__atomic_store_n(&st->c->slot->progress, st->o->received, order);
	__atomic_store_n(&st->c->slot->disorder, st->o->disorder, order);
}

static void on_flow_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct flow_sub *st = userdata;

	bench_order_check(st->o, msg->data, msg->len);
	st->o->disorder += msg->missed;
	if (st->o->received % BENCH_PROGRESS_EVERY == 0)
		publish_progress(st, __ATOMIC_RELAXED);
	if (st->o->received >= st->expected && !st->done) {
		__atomic_store_n(&st->c->slot->t_end_ns, bench_now_ns(), __ATOMIC_RELEASE);
		st->done = true;
		lbus_break(bus);
	}
}

static int subscribe_and_run(struct bench_child *c, lbus *bus, struct flow_sub *st)
{
	struct lbus_sub_opts opts = LBUS_SUB_OPTS_INIT;
	int r;

	opts.policy = LBUS_POLICY_BLOCK;
	r = lbus_subscribe(bus, FLOW_TOPIC, on_flow_msg, st, &opts, NULL);
	if (r < 0)
		return lbus_fail(c, r, "lbus_subscribe");
	bench_child_ready(c);
	while (!st->done && !bench_child_should_stop(c)) {
		r = lbus_run(bus, RUN_SLICE_MS);
		if (r < 0)
			return lbus_fail(c, r, "subscriber lbus_run");
	}
	return 0;
}

static int lbus_subscriber(struct bench_child *c)
{
	const struct bench_flow *f = c->args;
	struct flow_sub st = {.c = c, .expected = f->per_publisher * f->publishers};
	lbus *bus = NULL;
	int r;

	st.o = calloc(1, sizeof(*st.o));
	if (!st.o)
		return bench_child_fail(c, -ENOMEM, "subscriber", strerror(ENOMEM));
	st.o->size = f->size;
	r = lbus_connect(&bus, f->sock);
	if (r < 0)
		r = lbus_fail(c, r, "subscriber lbus_connect");
	else
		r = subscribe_and_run(c, bus, &st);
	if (!st.done)
		__atomic_store_n(&c->slot->t_end_ns, bench_now_ns(), __ATOMIC_RELEASE);
	publish_progress(&st, __ATOMIC_RELEASE);
	lbus_close(bus);
	free(st.o);
	return r;
}

static int publish_all(struct bench_child *c, lbus *bus, const struct bench_flow *f, unsigned who)
{
	uint8_t *payload = calloc(1, f->size + 1);
	unsigned flags = f->unbatched ? 0 : LBUS_MORE;
	uint64_t seq;
	int r = 0;

	if (!payload)
		return bench_child_fail(c, -ENOMEM, "publisher", strerror(ENOMEM));
	for (seq = 0; seq < f->per_publisher; seq++) {
		bench_stamp(payload, f->size, seq, who);
		r = lbus_publish(bus, FLOW_TOPIC, payload, f->size, flags);
		if (r < 0)
			break;
		__atomic_store_n(&c->slot->progress, seq + 1, __ATOMIC_RELAXED);
		if (seq % BENCH_PROGRESS_EVERY == 0 && bench_child_should_stop(c))
			break;
	}
	free(payload);
	__atomic_store_n(&c->slot->progress, seq, __ATOMIC_RELEASE);
	if (r < 0)
		return lbus_fail(c, r, "lbus_publish");
	r = lbus_flush(bus, ms_left(c));
	if (r == 0)
		r = lbus_sync(bus, ms_left(c));
	/* running out of time is reported by the subscribers' count */
	return r < 0 && r != -ETIMEDOUT ? lbus_fail(c, r, "publisher flush/sync") : 0;
}

static int lbus_publisher(struct bench_child *c)
{
	const struct bench_flow *f = c->args;
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;
	lbus *bus = NULL;
	int r;

	if (f->inband)
		o.memfd_threshold = 0;
	r = lbus_connect_with(&bus, f->sock, &o);
	if (r < 0)
		return lbus_fail(c, r, "publisher lbus_connect");
	bench_child_ready(c);
	r = bench_child_wait_go(c);
	if (r == 0)
		r = publish_all(c, bus, f, c->index - f->subscribers);
	lbus_close(bus);
	return r == -ETIMEDOUT ? 0 : r;
}

static int spawn_flow(struct bench_group *g, const struct bench_flow *f, struct bench_result *res)
{
	int r = 0;

	for (unsigned s = 0; s < f->subscribers && r == 0; s++)
		r = bench_group_spawn(g, lbus_subscriber, (void *)f, "lbus-sub");
	if (r == 0)
		r = bench_group_wait_ready(g, res); /* subscribed */
	for (unsigned p = 0; p < f->publishers && r == 0; p++)
		r = bench_group_spawn(g, lbus_publisher, (void *)f, "lbus-pub");
	if (r == 0)
		r = bench_group_wait_ready(g, res); /* connected */
	return r;
}

int bench_lbus_flow(const struct bench_flow *f, pid_t broker, struct bench_result *res)
{
	struct bench_group g;
	double cpu0 = 0, cpu1 = 0;
	int r;

	if (f->publishers + f->subscribers > BENCH_MAX_PROCS)
		return res->err = -E2BIG;
	r = bench_group_init(&g, f->time_limit_s);
	if (r == 0)
		r = spawn_flow(&g, f, res);
	if (r == 0) {
		uint64_t rss0 = 0, hwm = 0;
		bool rss = bench_proc_rss_kib(broker, &rss0) == 0;

		bench_proc_cpu_s(broker, &cpu0);
		bench_group_go(&g);
		r = bench_group_finish(&g);
		bench_flow_collect(f, &g, res);
		if (rss && bench_proc_hwm_kib(broker, &hwm) == 0)
			res->rss_growth_kib = hwm > rss0 ? (double)(hwm - rss0) : 0;
		/* /proc counts in clock ticks: below a few, the figure is noise */
		if (bench_proc_cpu_s(broker, &cpu1) == 0 && cpu1 - cpu0 >= MIN_CPU_S)
			res->broker_cpu_s = cpu1 - cpu0;
	}
	return bench_group_conclude(&g, r, res);
}

/* ---- latency ------------------------------------------------------------- */

static void on_echo_call(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	lbus_reply(bus, msg->reply_token, msg->data, msg->len);
}

static int lbus_responder(struct bench_child *c)
{
	const struct bench_latency *l = c->args;
	lbus *bus = NULL;
	int r;

	r = lbus_connect(&bus, l->sock);
	if (r < 0)
		return lbus_fail(c, r, "responder lbus_connect");
	r = lbus_name_take(bus, ECHO_NAME);
	if (r < 0) {
		lbus_close(bus);
		return lbus_fail(c, r, "responder lbus_name_take");
	}
	lbus_on_call(bus, on_echo_call, NULL);
	bench_child_ready(c);
	while (r >= 0 && !bench_child_should_stop(c))
		r = lbus_run(bus, RUN_SLICE_MS);
	lbus_close(bus);
	return r < 0 ? lbus_fail(c, r, "responder lbus_run") : 0;
}

static int call_once(lbus *bus, const struct bench_latency *l, const void *payload, uint64_t *ns)
{
	struct lbus_reply *reply = NULL;
	uint64_t t0 = bench_now_ns();
	int r = lbus_call(bus, ECHO_NAME, payload, l->size, CALL_TIMEOUT_MS, &reply);

	*ns = bench_now_ns() - t0;
	if (r == 0 && reply->len != l->size)
		r = -EBADMSG;
	lbus_reply_free(reply);
	return r;
}

static int call_loop(struct bench_child *c, lbus *bus, uint64_t *samples)
{
	const struct bench_latency *l = c->args;
	uint64_t warmup = bench_latency_warmup(l->count);
	uint8_t *payload = calloc(1, l->size + 1);
	uint64_t ns, done = 0;
	int r = 0;

	if (!payload)
		return -ENOMEM;
	for (uint64_t i = 0; i < warmup && r == 0; i++)
		r = call_once(bus, l, payload, &ns);
	while (done < l->count && r == 0 && !bench_child_should_stop(c)) {
		r = call_once(bus, l, payload, &ns);
		if (r < 0)
			break;
		samples[done++] = ns;
		if (done % 256 == 0)
			__atomic_store_n(&c->slot->progress, done, __ATOMIC_RELAXED);
	}
	free(payload);
	__atomic_store_n(&c->slot->progress, done, __ATOMIC_RELEASE);
	return r;
}

static int lbus_caller(struct bench_child *c)
{
	const struct bench_latency *l = c->args;
	uint64_t *samples = calloc(l->count ? l->count : 1, sizeof(*samples));
	struct bench_slot *s = c->slot;
	lbus *bus = NULL;
	int r;

	if (!samples)
		return bench_child_fail(c, -ENOMEM, "caller", strerror(ENOMEM));
	r = lbus_connect(&bus, l->sock);
	if (r < 0) {
		free(samples);
		return lbus_fail(c, r, "caller lbus_connect");
	}
	bench_child_ready(c);
	r = bench_child_wait_go(c);
	if (r == 0)
		r = call_loop(c, bus, samples);
	if (samples)
		bench_percentiles(samples, s->progress, &s->p50_us, &s->p99_us, &s->p999_us);
	__atomic_store_n(&c->shared->stop, 1, __ATOMIC_RELEASE); /* the responder may go */
	free(samples);
	lbus_close(bus);
	return r < 0 ? lbus_fail(c, r, "lbus_call") : 0;
}

int bench_lbus_latency(const struct bench_latency *l, struct bench_result *res)
{
	struct bench_group g;
	int r;

	r = bench_group_init(&g, l->time_limit_s);
	if (r == 0)
		r = bench_group_spawn(&g, lbus_responder, (void *)l, "lbus-responder");
	if (r == 0)
		r = bench_group_wait_ready(&g, res); /* the name is owned */
	if (r == 0)
		r = bench_group_spawn(&g, lbus_caller, (void *)l, "lbus-caller");
	if (r == 0)
		r = bench_group_wait_ready(&g, res);
	if (r == 0) {
		bench_group_go(&g);
		r = bench_group_finish(&g);
		bench_latency_collect(l, &g, res);
	}
	return bench_group_conclude(&g, r, res);
}
