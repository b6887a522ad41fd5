/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of flow control (broker/router.c, client.c) through an
 * in-process broker (brokertest.h). The subscriber's socket buffer in the
 * broker is made small and max_queue 4 KiB, so a subscriber that does not
 * read fills its queue within a few dozen messages.
 *
 *  - drop: a full queue drops; the publisher never waits; once the
 *    subscriber reads, it gets the messages in order, each gap announced by
 *    Dropped{sub_id, count} with exactly the number it missed, before the
 *    next delivery (the publisher's frames are handled over several loop
 *    turns, conn.h "Fair turns", so the queue may empty and fill again:
 *    several Dropped); a marker published once every message is accounted
 *    for (the last Dropped comes when the queue is empty) arrives;
 *  - block: the publisher's input is paused (its Ping gets no Pong) while
 *    an unrelated client is served; when the subscriber drains, the
 *    publisher resumes and every message arrives, in order, none dropped;
 *    a blocking subscriber that disconnects releases the publisher too;
 *  - a publisher waiting on a block subscriber resumes at once (well
 *    within WAKE_MS, not when the queue drains) when that subscriber
 *    unsubscribes, or changes its policy (a drop subscription replaces the
 *    block one), or disconnects;
 *  - stall_ms: a block subscription whose client takes nothing for stall_ms
 *    stops holding the publisher back (at that time, within WAKE_MS) and
 *    drops from then on (counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "brokertest.h"

#define N_MSGS 400
#define PAYLOAD_LEN 100
#define STALL_MS 300
#define WAKE_MS 100 /* "at once", with room for a loaded machine */

static void start(struct bt_broker *t)
{
	assert_int_equal(bt_start(t), 0);
	t->sndbuf = 4096;
	t->b.cfg.max_queue = 4096;
}

static void payload_of(char *buf, int seq)
{
	snprintf(buf, PAYLOAD_LEN + 1, "%08d", seq);
	memset(buf + 8, 'x', PAYLOAD_LEN - 8);
	buf[PAYLOAD_LEN] = '\0';
}

static void publish_seq(struct bt_client *pub, const char *topic, int from, int to)
{
	char buf[PAYLOAD_LEN + 1];

	for (int i = from; i < to; i++) {
		payload_of(buf, i);
		assert_int_equal(bt_publish(pub, topic, buf, false), 0);
	}
}

static void subscribe(struct bt_client *c, uint64_t sub_id, const char *pattern, Lbus__Policy policy,
		      uint32_t stall_ms)
{
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;

	s.sub_id = sub_id;
	s.pattern = (char *)pattern;
	s.policy = policy;
	s.stall_ms = stall_ms;
	assert_int_equal(bt_subscribe(c, &s), 0);
}

static void expect_pong(struct bt_client *c, uint64_t token)
{
	Lbus__Frame *f = bt_expect(c, LBUS__FRAME__KIND_PONG);

	assert_non_null(f);
	assert_int_equal(f->pong->token, token);
	lbus__frame__free_unpacked(f, NULL);
}

/* What a subscriber has read so far (read_frame). */
struct seqread {
	uint64_t sub_id;
	int want;	       /* the next sequence number, drops aside */
	uint64_t pending_drop; /* reported dropped since the last delivery */
	uint64_t dropped;      /* every Dropped count */
};

/*
 * Read sub's next frame: deliveries must be in order; a gap is allowed only
 * right after a Dropped whose count it equals. Returns the delivered
 * sequence number, or -1 for a Dropped.
 */
static int read_frame(struct bt_client *sub, struct seqread *r)
{
	char buf[PAYLOAD_LEN + 1];
	Lbus__Frame *f;
	int seq;

	assert_int_equal(bt_recv(sub, &f), 0);
	if (f->kind_case == LBUS__FRAME__KIND_DROPPED) {
		assert_int_equal(f->dropped->sub_id, r->sub_id);
		assert_true(f->dropped->count > 0);
		r->pending_drop += f->dropped->count;
		r->dropped += f->dropped->count;
		lbus__frame__free_unpacked(f, NULL);
		return -1;
	}
	assert_int_equal(f->kind_case, LBUS__FRAME__KIND_DELIVER);
	assert_int_equal(f->deliver->sub_id, r->sub_id);
	seq = atoi((const char *)f->deliver->publish->payload.data);
	assert_int_equal(seq, r->want + (int)r->pending_drop);
	payload_of(buf, seq);
	assert_true(bt_bytes_eq(f->deliver->publish->payload, buf));
	lbus__frame__free_unpacked(f, NULL);
	r->want = seq + 1;
	r->pending_drop = 0;
	return seq;
}

/* Read sub's frames from `first` until `last` arrives. Returns the total
 * count of Dropped notices. */
static uint64_t read_until(struct bt_client *sub, uint64_t sub_id, int first, int last)
{
	struct seqread r = {.sub_id = sub_id, .want = first};

	while (read_frame(sub, &r) != last)
		;
	return r.dropped;
}

/*
 * The publisher's messages [0, n) were all handled, some dropped for sub:
 * read until each was delivered or reported dropped (the last Dropped comes
 * once sub's queue is empty), then publish the marker n, which now has room,
 * and read until it arrives. Returns the total count of Dropped notices.
 */
static uint64_t read_with_marker(struct bt_client *sub, uint64_t sub_id, struct bt_client *pub,
				 const char *topic, int n)
{
	struct seqread r = {.sub_id = sub_id};

	while (r.want + (int)r.pending_drop < n)
		read_frame(sub, &r);
	publish_seq(pub, topic, n, n + 1);
	while (read_frame(sub, &r) != n)
		;
	return r.dropped;
}

static void test_drop_reports_missed_count(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub;

	start(&t);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	subscribe(&sub, 3, "d", LBUS__POLICY__POLICY_DROP, 0);

	publish_seq(&pub, "d", 0, N_MSGS);
	assert_int_equal(bt_ping(&pub, 1), 0);
	expect_pong(&pub, 1); /* the publisher never waited */

	uint64_t dropped = read_with_marker(&sub, 3, &pub, "d", N_MSGS);
	assert_true(dropped > 0);
	assert_true(dropped < N_MSGS);
	assert_true(bt_nothing(&sub));
	bt_stop(&t);
}

static void test_block_pauses_publisher(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub, other;

	start(&t);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	assert_int_equal(bt_connect(&t, &other), 0);
	subscribe(&sub, 5, "b", LBUS__POLICY__POLICY_BLOCK, 0);

	publish_seq(&pub, "b", 0, N_MSGS);
	assert_int_equal(bt_ping(&pub, 2), 0);
	assert_true(bt_nothing(&pub)); /* paused: the Ping waits behind the publishes */
	assert_int_equal(bt_ping(&other, 3), 0);
	expect_pong(&other, 3); /* unrelated clients are served meanwhile */

	assert_int_equal(read_until(&sub, 5, 0, N_MSGS - 1), 0); /* every message, none dropped */
	expect_pong(&pub, 2);
	assert_true(bt_nothing(&sub));
	bt_stop(&t);
}

static void test_block_subscriber_leaves(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, stuck, reader;

	start(&t);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &stuck), 0);
	assert_int_equal(bt_connect(&t, &reader), 0);
	subscribe(&stuck, 1, "l", LBUS__POLICY__POLICY_BLOCK, 0);
	subscribe(&reader, 2, "l", LBUS__POLICY__POLICY_BLOCK, 0);

	publish_seq(&pub, "l", 0, N_MSGS);
	assert_int_equal(bt_ping(&pub, 4), 0);
	assert_true(bt_nothing(&pub));
	bt_close(&stuck); /* the publisher re-routes without it */
	assert_int_equal(read_until(&reader, 2, 0, N_MSGS - 1), 0);
	expect_pong(&pub, 4);
	bt_stop(&t);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_stall_ms_stops_blocking(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub;
	int64_t t0;

	start(&t);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	subscribe(&sub, 8, "s", LBUS__POLICY__POLICY_BLOCK, STALL_MS);

	t0 = now_ms();
	publish_seq(&pub, "s", 0, N_MSGS);
	assert_int_equal(bt_ping(&pub, 6), 0);
	assert_true(bt_nothing(&pub)); /* waits at first, like block */
	expect_pong(&pub, 6);	       /* then the stall releases it */
	assert_true(now_ms() - t0 >= STALL_MS);
	/* at once, not at the next coarse sweep of deadlines (1 s) */
	fprintf(stderr, "publisher resumed %lld ms after the stall began (stall_ms %d)\n",
		(long long)(now_ms() - t0), STALL_MS);
	assert_true(now_ms() - t0 < STALL_MS + WAKE_MS);

	uint64_t dropped = read_with_marker(&sub, 8, &pub, "s", N_MSGS);
	assert_true(dropped > 0);
	bt_stop(&t);
}

/* Send a control frame without waiting for its answer (the client's queue
 * is full: the answer waits behind the deliveries). */
static void send_unsubscribe(struct bt_client *c, uint64_t sub_id)
{
	Lbus__Unsubscribe u = LBUS__UNSUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	u.sub_id = sub_id;
	f.kind_case = LBUS__FRAME__KIND_UNSUBSCRIBE;
	f.unsubscribe = &u;
	assert_int_equal(bt_send(c, &f), 0);
}

static void send_subscribe(struct bt_client *c, uint64_t sub_id, const char *pattern, Lbus__Policy policy)
{
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	s.sub_id = sub_id;
	s.pattern = (char *)pattern;
	s.policy = policy;
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &s;
	assert_int_equal(bt_send(c, &f), 0);
}

enum leave_how { LEAVE_UNSUBSCRIBE, LEAVE_TO_DROP, LEAVE_DISCONNECT };

/* pub waits on stuck (block, never reads); stuck stops being a reason to
 * wait in the way `how` says; pub's Ping must be answered within WAKE_MS. */
static void waiter_resumes(enum leave_how how)
{
	struct bt_broker t;
	struct bt_client pub, stuck;
	int64_t t0, waited;

	start(&t);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &stuck), 0);
	subscribe(&stuck, 1, "w", LBUS__POLICY__POLICY_BLOCK, 0);
	publish_seq(&pub, "w", 0, N_MSGS);
	assert_int_equal(bt_ping(&pub, 9), 0);
	assert_true(bt_nothing(&pub)); /* waiting on stuck's full queue */

	t0 = now_ms();
	if (how == LEAVE_UNSUBSCRIBE) {
		send_unsubscribe(&stuck, 1);
	} else if (how == LEAVE_TO_DROP) {
		send_subscribe(&stuck, 2, "w", LBUS__POLICY__POLICY_DROP);
		send_unsubscribe(&stuck, 1);
	} else {
		bt_close(&stuck);
	}
	expect_pong(&pub, 9);
	waited = now_ms() - t0;
	fprintf(stderr, "publisher resumed %lld ms after the subscriber left (how %d)\n", (long long)waited,
		(int)how);
	assert_true(waited < WAKE_MS);
	assert_true(bt_nothing(&pub));
	bt_stop(&t);
}

static void test_waiter_resumes_on_unsubscribe(void **state)
{
	(void)state;
	waiter_resumes(LEAVE_UNSUBSCRIBE);
}

static void test_waiter_resumes_on_policy_change(void **state)
{
	(void)state;
	waiter_resumes(LEAVE_TO_DROP);
}

static void test_waiter_resumes_on_disconnect(void **state)
{
	(void)state;
	waiter_resumes(LEAVE_DISCONNECT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_drop_reports_missed_count),
	    cmocka_unit_test(test_block_pauses_publisher),
	    cmocka_unit_test(test_block_subscriber_leaves),
	    cmocka_unit_test(test_stall_ms_stops_blocking),
	    cmocka_unit_test(test_waiter_resumes_on_unsubscribe),
	    cmocka_unit_test(test_waiter_resumes_on_policy_change),
	    cmocka_unit_test(test_waiter_resumes_on_disconnect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
