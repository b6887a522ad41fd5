/* SPDX-License-Identifier: MIT */
/*
 * Fair turns (conn.h, "Fair turns") through an in-process broker
 * (brokertest.h): one connection that floods the broker cannot hold its loop.
 *
 *  - a flooder writes FLOOD_MSGS publishes (a few hundred KiB sit in its
 *    socket; each publish fans out to SINKS subscribers that never read);
 *    after its first turn, a bystander pings: the Pong comes back after at
 *    most two turns' budget of the flooder's frames (without fair turns, the
 *    flooder's whole read chunk, thousands of frames, went first). The
 *    bystander's round trip and the flood frames handled meanwhile are
 *    printed;
 *  - no frame is stranded: once the flooder has written everything and gone
 *    quiet, the frames it left past its budget (already read: no epoll event
 *    will announce them) are all handled, and broker_turn() does not sleep
 *    its timeout while they wait, even when asked for a long one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "brokertest.h"
#include "conn.h"

#define FLOOD_MSGS 20000
#define SINKS 8

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct flood {
	struct bt_broker t;
	struct bt_client flooder, bystander, sinks[SINKS];
};

/* A broker with SINKS drop subscribers on flood/# that never read, and a
 * flooder whose FLOOD_MSGS publishes are queued (the socket holds what it
 * takes; bt_turn writes the rest as the broker reads). */
static void flood_start(struct flood *f)
{
	assert_int_equal(bt_start(&f->t), 0);
	for (int i = 0; i < SINKS; i++) {
		assert_int_equal(bt_connect(&f->t, &f->sinks[i]), 0);
		assert_int_equal(bt_sub(&f->sinks[i], 1, "flood/#"), 0);
	}
	assert_int_equal(bt_connect(&f->t, &f->bystander), 0);
	assert_int_equal(bt_connect(&f->t, &f->flooder), 0);
	assert_int_equal(bt_settle(&f->t), 0);
	for (int i = 0; i < FLOOD_MSGS; i++)
		assert_int_equal(bt_publish(&f->flooder, "flood/x", "0123456789abcdef", false), 0);
}

/* Publishes handled so far (the flooder's: nobody else publishes). */
static uint64_t flood_handled(const struct flood *f)
{
	return f->t.b.ctr.msgs.msgs_in;
}

static void test_bystander_served_during_flood(void **state)
{
	struct flood *f = test_malloc(sizeof(*f));
	Lbus__Frame *pong;
	uint64_t before, during;
	int64_t t0, rtt_us;

	(void)state;
	flood_start(f);
	assert_true(bt_turn(&f->t, 0) > 0); /* the flooder's first turn */
	before = flood_handled(f);
	assert_true(before > 0);

	t0 = now_us();
	assert_int_equal(bt_ping(&f->bystander, 7), 0);
	pong = bt_expect(&f->bystander, LBUS__FRAME__KIND_PONG);
	rtt_us = now_us() - t0;
	assert_non_null(pong);
	assert_int_equal(pong->pong->token, 7);
	lbus__frame__free_unpacked(pong, NULL);
	during = flood_handled(f);
	fprintf(stderr,
		"bystander round trip under flood: %lld us; flood frames handled: %llu before the ping, %llu "
		"until the pong\n",
		(long long)rtt_us, (unsigned long long)before, (unsigned long long)during);
	assert_true(before <= CONN_FRAMES_PER_TURN);
	assert_true(during <= 2 * CONN_FRAMES_PER_TURN);

	assert_int_equal(bt_settle(&f->t), 0);
	assert_int_equal(flood_handled(f), FLOOD_MSGS);
	bt_stop(&f->t);
	test_free(f);
}

static void test_no_frame_stranded(void **state)
{
	struct flood *f = test_malloc(sizeof(*f));
	int64_t t0 = now_us();
	int turns = 0;

	(void)state;
	flood_start(f);
	/* long timeouts: a turn that slept one would take seconds */
	while (flood_handled(f) < FLOOD_MSGS && now_us() - t0 < 5 * 1000000) {
		assert_true(bt_turn(&f->t, 2000) >= 0);
		turns++;
	}
	fprintf(stderr, "%d publishes handled in %d turns, %lld ms\n", FLOOD_MSGS, turns,
		(long long)(now_us() - t0) / 1000);
	assert_int_equal(flood_handled(f), FLOOD_MSGS);
	assert_true(turns >= FLOOD_MSGS / (int)CONN_FRAMES_PER_TURN);
	assert_true(now_us() - t0 < 2000 * 1000);
	bt_stop(&f->t);
	test_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bystander_served_during_flood),
	    cmocka_unit_test(test_no_frame_stranded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
