/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the public API's conventions (lbus.h, issue 8), as a
 * program written against lbus.h alone meets them, with a real lbusd on a
 * private socket:
 *  - sending: a publish outside callbacks is written before it returns (no
 *    loop needed); LBUS_MORE gathers until the publish buffer
 *    (lbus_connect_opts.publish_buffer) fills or a publish without it; what
 *    a callback publishes is written by the end of that same dispatch;
 *  - loss is reported: with the broker killed, a publish fails with
 *    -ECONNRESET (never -EPIPE), lbus_unsent() counts what was buffered and
 *    lbus_close() returns the error; lbus_close() never waits (a stopped
 *    broker with a full socket: -EAGAIN at once);
 *  - the connection's timeout bounds lbus_subscribe(), lbus_name_take() and
 *    lbus_send() against a stopped broker, and their _async twins complete
 *    with -ETIMEDOUT; with a running broker the twins report the broker's
 *    verdict;
 *  - calls: lbus_call_cancel() keeps the callback from ever running; a
 *    timeout of 0 fails at once without sending; the responder sees the
 *    caller's timeout (and "no limit" as about 49 days) in msg->deadline_ms;
 *  - lbus_run() returns 1 after lbus_break(), 0 on timeout;
 *  - option structs: size 0 is refused, a smaller size (an older lbus.h)
 *    hides the fields past it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* A connection with its own timeout and publish buffer. */
static lbus *connect_with(const struct lbt_broker *b, int timeout_ms, size_t publish_buffer)
{
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;
	lbus *bus = NULL;

	o.timeout_ms = timeout_ms;
	o.publish_buffer = publish_buffer;
	o.memfd_threshold = 0; /* payloads in-band: these tests fill the socket */
	assert_int_equal(lbus_connect_with(&bus, b->sock, &o), 0);
	return bus;
}

/* ---- collecting ------------------------------------------------------------- */

struct count {
	int n;
	char last[64];
};

static void on_count(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct count *c = userdata;

	c->n++;
	snprintf(c->last, sizeof(c->last), "%.*s", (int)msg->len, (const char *)msg->data);
}

/* Dispatch bus until c->n reaches want or lbt_ms(5000) pass. */
static void run_until_count(lbus *bus, const struct count *c, int want)
{
	int64_t end = lbt_now_ms() + lbt_ms(5000);

	while (c->n < want && lbt_now_ms() < end)
		assert_true(lbus_run(bus, 10) >= 0);
	assert_int_equal(c->n, want);
}

/* ---- sending ----------------------------------------------------------------- */

/* The publisher never dispatches, flushes nor closes: the message still
 * arrives, because lbus_publish() wrote it. */
static void test_publish_without_loop_is_sent(void **state)
{
	struct lbt_broker *b = *state;
	lbus *sub = NULL, *pub = NULL;
	struct count c = {0};

	assert_int_equal(lbt_connect(b, &sub), 0);
	assert_int_equal(lbt_connect(b, &pub), 0);
	assert_int_equal(lbus_subscribe(sub, "api/noloop", on_count, &c, NULL, NULL), 0);
	assert_int_equal(lbus_publish(pub, "api/noloop", "one", 3, 0), 0);
	assert_int_equal(lbus_unsent(pub), 0);
	run_until_count(sub, &c, 1);
	assert_string_equal(c.last, "one");
	assert_int_equal(lbus_close(pub), 0);
	assert_int_equal(lbus_close(sub), 0);
}

/* LBUS_MORE gathers; the publish buffer's size bounds what is gathered; the
 * next publish without it (or lbus_flush()) writes everything, in order. */
static void test_more_gathers_until_buffer_or_plain_publish(void **state)
{
	struct lbt_broker *b = *state;
	lbus *sub = NULL, *pub = connect_with(b, LBUS_DEFAULT_TIMEOUT_MS, 1000);
	struct count c = {0};
	char payload[200];

	memset(payload, 'm', sizeof(payload));
	assert_int_equal(lbt_connect(b, &sub), 0);
	assert_int_equal(lbus_subscribe(sub, "api/more", on_count, &c, NULL, NULL), 0);
	assert_int_equal(lbus_publish(pub, "api/more", payload, sizeof(payload), LBUS_MORE), 0);
	assert_int_equal(lbus_publish(pub, "api/more", payload, sizeof(payload), LBUS_MORE), 0);
	assert_int_equal(lbus_unsent(pub), 2); /* 2 x ~215 bytes < 1000: gathered */
	for (int i = 0; i < 8; i++)
		assert_int_equal(lbus_publish(pub, "api/more", payload, sizeof(payload), LBUS_MORE), 0);
	assert_true(lbus_unsent(pub) < 5); /* the 1000-byte buffer was written */
	assert_int_equal(lbus_publish(pub, "api/more", "last", 4, 0), 0);
	assert_int_equal(lbus_unsent(pub), 0);
	run_until_count(sub, &c, 11);
	assert_string_equal(c.last, "last");
	assert_int_equal(lbus_publish(pub, "api/more", "flushed", 7, LBUS_MORE), 0);
	assert_int_equal(lbus_unsent(pub), 1);
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	assert_int_equal(lbus_unsent(pub), 0);
	run_until_count(sub, &c, 12);
	assert_int_equal(lbus_publish(pub, "api/more", "x", 1, 0x80), -EINVAL);
	lbus_close(pub);
	lbus_close(sub);
}

struct echo {
	int handled;
};

static void on_echo(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct echo *e = userdata;

	e->handled++;
	assert_int_equal(lbus_publish(bus, "api/echo/out", msg->data, msg->len, 0), 0);
	assert_int_equal(lbus_unsent(bus), 1); /* gathered inside the callback */
}

/* What a callback publishes is written by the end of the same
 * lbus_dispatch(), not at the next one. */
static void test_callback_publish_written_by_same_dispatch(void **state)
{
	struct lbt_broker *b = *state;
	lbus *echoer = NULL, *peer = NULL;
	struct echo e = {0};
	struct count c = {0};

	assert_int_equal(lbt_connect(b, &echoer), 0);
	assert_int_equal(lbt_connect(b, &peer), 0);
	assert_int_equal(lbus_subscribe(echoer, "api/echo/in", on_echo, &e, NULL, NULL), 0);
	assert_int_equal(lbus_subscribe(peer, "api/echo/out", on_count, &c, NULL, NULL), 0);
	assert_int_equal(lbus_publish(peer, "api/echo/in", "ping", 4, 0), 0);
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	while (!e.handled && lbt_now_ms() < end) {
		assert_true(lbus_dispatch(echoer) >= 0);
		if (!e.handled)
			lbt_sleep_ms(5);
	}
	assert_int_equal(e.handled, 1);
	assert_int_equal(lbus_unsent(echoer), 0);
	run_until_count(peer, &c, 1); /* the echoer dispatches no more */
	assert_string_equal(c.last, "ping");
	lbus_close(peer);
	lbus_close(echoer);
}

/* ---- loss is reported --------------------------------------------------------- */

static void test_broker_death_is_reported(void **state)
{
	struct lbt_broker *b = *state;
	lbus *pub = NULL;

	assert_int_equal(lbt_connect(b, &pub), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(lbus_publish(pub, "api/death", "x", 1, LBUS_MORE), 0);
	assert_int_equal(lbus_unsent(pub), 3);
	lbt_broker_kill(b);
	/* The write finds the connection gone: -ECONNRESET, the one code. */
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), -ECONNRESET);
	assert_int_equal(lbus_unsent(pub), 3);
	assert_int_equal(lbus_publish(pub, "api/death", "y", 1, 0), -ECONNRESET);
	assert_int_equal(lbus_dispatch(pub), -ECONNRESET);
	assert_int_equal(lbus_close(pub), -ECONNRESET);
}

/* Nothing lost, the connection lost all the same: lbus_close() says 0. */
static void test_close_after_loss_without_unsent(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus = NULL;

	assert_int_equal(lbt_connect(b, &bus), 0);
	assert_int_equal(lbus_publish(bus, "api/gone", "x", 1, 0), 0);
	lbt_broker_kill(b);
	int r;
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	while ((r = lbus_run(bus, 50)) == 0 && lbt_now_ms() < end)
		;
	assert_int_equal(r, -ECONNRESET);
	assert_int_equal(lbus_unsent(bus), 0);
	assert_int_equal(lbus_close(bus), 0);
}

/* A stopped broker and a full socket: lbus_close() does not wait. */
static void test_close_does_not_block(void **state)
{
	struct lbt_broker *b = *state;
	const int t = lbt_ms(300);
	lbus *pub = connect_with(b, t, 64u << 20);
	static char chunk[64 * 1024];

	kill(b->pid, SIGSTOP);
	for (int i = 0; i < 128; i++) /* 8 MiB: more than the socket holds */
		assert_int_equal(lbus_publish(pub, "api/full", chunk, sizeof(chunk), LBUS_MORE), 0);
	assert_int_equal(lbus_flush(pub, 0), -ETIMEDOUT);
	assert_true(lbus_unsent(pub) > 0);
	/* Without LBUS_MORE, publish waits at most the connection's timeout. */
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbus_publish(pub, "api/full", "z", 1, 0), -ETIMEDOUT);
	assert_true(lbt_now_ms() - t0 >= t - 10);
	t0 = lbt_now_ms();
	assert_int_equal(lbus_close(pub), -EAGAIN);
	assert_true(lbt_now_ms() - t0 < lbt_ms(200));
	kill(b->pid, SIGCONT);
	assert_int_equal(lbt_pubsub_roundtrip(b, "api/after-full"), 0);
}

/* ---- timeouts against a stopped broker -------------------------------------------- */

struct done {
	int calls;
	int err;
};

static void on_done(lbus *bus, int err, void *userdata)
{
	struct done *d = userdata;

	d->calls++;
	d->err = err;
}

/* Dispatch until d has completed or lbt_ms(5000) pass. */
static void run_until_done(lbus *bus, const struct done *d)
{
	int64_t end = lbt_now_ms() + lbt_ms(5000);

	while (!d->calls && lbt_now_ms() < end)
		assert_true(lbus_run(bus, 10) >= 0);
	assert_int_equal(d->calls, 1);
}

static void on_nothing(lbus *bus, const struct lbus_msg *msg, void *userdata) {}

static void test_requests_time_out_against_stopped_broker(void **state)
{
	struct lbt_broker *b = *state;
	const int t = lbt_ms(300);
	lbus *bus = connect_with(b, t, 0);
	struct done d[3] = {{0}};
	uint64_t sub_id = 0;

	kill(b->pid, SIGSTOP);
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbus_subscribe(bus, "api/stopped", on_nothing, NULL, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(lbus_name_take(bus, "api.stopped"), -ETIMEDOUT);
	assert_int_equal(lbus_send(bus, "api.stopped", "x", 1, 0), -ETIMEDOUT);
	assert_true(lbt_now_ms() - t0 >= 3 * (t - 10));
	assert_true(lbt_now_ms() - t0 < 3 * t + lbt_ms(1000));

	assert_int_equal(
	    lbus_subscribe_async(bus, "api/stopped", on_nothing, NULL, NULL, &sub_id, on_done, &d[0]), 0);
	assert_true(sub_id > 0);
	assert_int_equal(lbus_name_take_async(bus, "api.stopped", on_done, &d[1]), 0);
	assert_int_equal(lbus_send_async(bus, "api.stopped", "x", 1, on_done, &d[2]), 0);
	assert_int_equal(d[0].calls + d[1].calls + d[2].calls, 0); /* only from dispatch */
	assert_true(lbus_timeout(bus) >= 0 && lbus_timeout(bus) <= t);
	for (int i = 0; i < 3; i++) {
		run_until_done(bus, &d[i]);
		assert_int_equal(d[i].err, -ETIMEDOUT);
	}
	assert_int_equal(lbus_unsubscribe(bus, sub_id), -ENOENT); /* forgotten */
	kill(b->pid, SIGCONT);
	lbus_close(bus);
}

static void test_async_twins_report_the_verdict(void **state)
{
	struct lbt_broker *b = *state;
	lbus *a = NULL, *other = NULL;
	struct done d[5] = {{0}};
	struct count c = {0};
	uint64_t sub_id = 0;

	assert_int_equal(lbt_connect(b, &a), 0);
	assert_int_equal(lbt_connect(b, &other), 0);
	assert_int_equal(lbus_subscribe_async(a, "api/twin", on_count, &c, NULL, &sub_id, on_done, &d[0]), 0);
	assert_int_equal(lbus_name_take_async(a, "api.twin", on_done, &d[1]), 0);
	run_until_done(a, &d[0]);
	run_until_done(a, &d[1]);
	assert_int_equal(d[0].err, 0);
	assert_int_equal(d[1].err, 0);
	assert_int_equal(lbus_name_take_async(other, "api.twin", on_done, &d[2]), 0);
	assert_int_equal(lbus_send_async(other, "api.nobody", "x", 1, on_done, &d[3]), 0);
	assert_int_equal(lbus_send_async(other, "api.twin", "x", 1, on_done, &d[4]), 0);
	for (int i = 2; i < 5; i++)
		run_until_done(other, &d[i]);
	assert_int_equal(d[2].err, -EADDRINUSE);
	assert_int_equal(d[3].err, -ENXIO);
	assert_int_equal(d[4].err, 0);
	/* A subscription confirmed asynchronously delivers. */
	assert_int_equal(lbus_publish(other, "api/twin", "hi", 2, 0), 0);
	run_until_count(a, &c, 1);
	assert_int_equal(lbus_unsubscribe(a, sub_id), 0);
	/* A refused one is gone before its completion runs. */
	struct done bad = {0};
	assert_int_equal(lbus_send_async(a, "-bad name", "x", 1, on_done, &bad), -EINVAL);
	assert_int_equal(lbus_subscribe_async(a, "api/twin", on_count, &c, NULL, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(bad.calls, 0);
	/* Pending completions run, once, when the handle closes. */
	struct done pending = {0};
	assert_int_equal(lbus_send_async(other, "api.twin", "x", 1, on_done, &pending), 0);
	lbus_close(other);
	assert_int_equal(pending.calls, 1);
	assert_true(pending.err == 0 || pending.err == -ECONNRESET);
	lbus_close(a);
}

/* ---- calls -------------------------------------------------------------------------- */

struct silent {
	int calls;
	int64_t deadline_ms, received_ms;
};

/* Owns a name, takes calls and never answers them. */
static void on_silent_call(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct silent *s = userdata;

	s->calls++;
	s->deadline_ms = msg->deadline_ms;
	s->received_ms = lbt_now_ms();
}

struct reply_slot {
	int calls;
	int err;
};

static void on_reply(lbus *bus, int err, const struct lbus_reply *reply, void *userdata)
{
	struct reply_slot *s = userdata;

	s->calls++;
	s->err = err;
}

/* Dispatch both until the responder has seen n calls. */
static void run_until_calls(lbus *caller, lbus *responder, const struct silent *s, int n)
{
	int64_t end = lbt_now_ms() + lbt_ms(5000);

	while (s->calls < n && lbt_now_ms() < end) {
		assert_true(lbus_run(responder, 5) >= 0);
		assert_true(lbus_dispatch(caller) >= 0);
	}
	assert_int_equal(s->calls, n);
}

static void test_call_cancel_and_timeouts(void **state)
{
	struct lbt_broker *b = *state;
	lbus *caller = NULL, *responder = NULL;
	struct silent s = {0};
	struct reply_slot slot = {0}, slot2 = {0};
	uint64_t id = 0, id2 = 0;

	assert_int_equal(lbt_connect(b, &caller), 0);
	assert_int_equal(lbt_connect(b, &responder), 0);
	assert_int_equal(lbus_name_take(responder, "api.silent"), 0);
	lbus_on_call(responder, on_silent_call, &s);

	/* Cancelled: its callback never runs, not even at its deadline. */
	const int t = lbt_ms(300);
	assert_int_equal(lbus_call_async(caller, "api.silent", "a", 1, t, on_reply, &slot, &id), 0);
	assert_true(id > 0);
	run_until_calls(caller, responder, &s, 1);
	assert_int_equal(lbus_call_cancel(caller, id), 0);
	assert_int_equal(lbus_call_cancel(caller, id), -ENOENT);
	assert_int_equal(lbus_timeout(caller), -1); /* no timer left */
	assert_int_equal(lbus_run(caller, t + 100), 0);
	assert_int_equal(slot.calls, 0);
	/* The responder saw the caller's timeout (from its receipt). */
	assert_true(s.deadline_ms >= s.received_ms + t - 50);
	assert_true(s.deadline_ms <= s.received_ms + t);

	/* Completed: too late to cancel. */
	assert_int_equal(lbus_call_async(caller, "api.silent", "b", 1, 50, on_reply, &slot2, &id2), 0);
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	while (!slot2.calls && lbt_now_ms() < end)
		assert_true(lbus_run(caller, 10) >= 0);
	assert_int_equal(slot2.err, -ETIMEDOUT);
	assert_int_equal(lbus_call_cancel(caller, id2), -ENOENT);
	run_until_calls(caller, responder, &s, 2);

	/* 0: fails at once, sends nothing. */
	struct lbus_reply dummy, *reply = &dummy;
	assert_int_equal(lbus_call(caller, "api.silent", "c", 1, 0, &reply), -ETIMEDOUT);
	assert_null(reply);
	assert_int_equal(lbus_call_async(caller, "api.silent", "c", 1, 0, on_reply, &slot, NULL), -ETIMEDOUT);
	assert_int_equal(lbus_sync(caller, lbt_ms(5000)), 0);
	assert_int_equal(lbus_run(responder, 100), 0);
	assert_int_equal(s.calls, 2);

	/* < 0: no limit, which the responder sees as a deadline ~49 days away. */
	assert_int_equal(lbus_call_async(caller, "api.silent", "d", 1, -1, on_reply, &slot, &id), 0);
	run_until_calls(caller, responder, &s, 3);
	assert_true(s.deadline_ms - s.received_ms > (int64_t)49 * 24 * 3600 * 1000);
	assert_int_equal(lbus_timeout(caller), -1);
	assert_int_equal(lbus_call_cancel(caller, id), 0);
	assert_int_equal(slot.calls, 0);
	lbus_close(caller);
	lbus_close(responder);
}

/* ---- the run loop, errors, option structs ----------------------------------------------- */

static void on_break(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	lbus_break(bus);
}

static void test_run_tells_break_from_timeout(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus = NULL;

	assert_int_equal(lbt_connect(b, &bus), 0);
	assert_int_equal(lbus_run(bus, 0), 0);
	assert_int_equal(lbus_run(bus, 20), 0);
	assert_int_equal(lbus_subscribe(bus, "api/brk", on_break, NULL, NULL, NULL), 0);
	assert_int_equal(lbus_publish(bus, "api/brk", "x", 1, 0), 0);
	assert_int_equal(lbus_run(bus, lbt_ms(5000)), 1);
	lbus_break(bus); /* outside a run: the next one returns at once */
	assert_int_equal(lbus_run(bus, -1), 1);
	lbus_close(bus);
}

static void test_option_structs_carry_their_size(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus = NULL, *caller = NULL;
	struct lbus_connect_opts copts = LBUS_CONNECT_OPTS_INIT;
	struct lbus_sub_opts opts = LBUS_SUB_OPTS_INIT;
	struct lbus_reply *reply = NULL;

	copts.size = 0;
	assert_int_equal(lbus_connect_with(&bus, b->sock, &copts), -EINVAL);
	assert_null(bus);
	assert_int_equal(lbus_connect_with(&bus, b->sock, NULL), 0);
	assert_int_equal(lbt_connect(b, &caller), 0);
	opts.size = 0;
	assert_int_equal(lbus_subscribe(bus, "api/size", on_nothing, NULL, &opts, NULL), -EINVAL);
	/* An older lbus.h whose struct ended before responder: not a responder. */
	opts.size = offsetof(struct lbus_sub_opts, responder);
	opts.responder = true;
	assert_int_equal(lbus_subscribe(bus, "api/size/old", on_nothing, NULL, &opts, NULL), 0);
	assert_int_equal(lbus_call(caller, "api/size/old", "q", 1, lbt_ms(5000), &reply), -ESRCH);
	lbus_reply_free(reply);
	lbus_close(caller);
	lbus_close(bus);
}

static void test_strerror_and_version(void **state)
{
	char version[32];

	/* -EPERM has two meanings; the text names both. */
	assert_non_null(strstr(lbus_strerror(-EPERM), "owner"));
	assert_non_null(strstr(lbus_strerror(-EPERM), "another user"));
	assert_string_equal(lbus_strerror(-ECONNRESET), lbus_strerror(ECONNRESET));
	snprintf(version, sizeof(version), "%d.%d.%d", LBUS_VERSION_MAJOR, LBUS_VERSION_MINOR,
		 LBUS_VERSION_PATCH);
	assert_string_equal(version, LBUS_VERSION_STRING);
	assert_string_equal(lbus_version(), LBUS_VERSION_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_publish_without_loop_is_sent, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_more_gathers_until_buffer_or_plain_publish, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_callback_publish_written_by_same_dispatch, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_broker_death_is_reported, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_close_after_loss_without_unsent, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_close_does_not_block, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_requests_time_out_against_stopped_broker, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_async_twins_report_the_verdict, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_call_cancel_and_timeouts, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_run_tells_break_from_timeout, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_option_structs_carry_their_size, lbt_setup, lbt_teardown),
	    cmocka_unit_test(test_strerror_and_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
