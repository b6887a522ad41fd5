/* SPDX-License-Identifier: MIT */
/*
 * No quadratic paths (issue 7) through an in-process broker (brokertest.h):
 * taking a name and adding a subscription cost the same whether the client
 * holds few or many (names: a hash table and a doubly linked owner list;
 * subscription ids: a per-client hash table).
 *
 * A client sends BATCH requests back to back and reads their BATCH Oks,
 * once while holding BATCH items and once while holding FEW_X times more;
 * the slower batch may take at most MAX_RATIO times the faster one (best
 * of TRIES, against scheduling noise). With the linear scans this replaced,
 * the ratio was about the holding ratio (tens). Patterns spread over two
 * levels (256 siblings at most), so the trie's sibling array stays small.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "brokertest.h"

#define BATCH 1000
#define FEW_X 40 /* the many level holds this many batches */
#define TRIES 3
#define MAX_RATIO 4.0

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Send request i: take name n<i>, or subscribe sub id i+1 to h/<i/256>/<i%256>. */
static void send_request(struct bt_client *c, bool subs, int i)
{
	Lbus__NameRequest n = LBUS__NAME_REQUEST__INIT;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	char item[64];

	f.req_id = (uint32_t)i + 1;
	if (subs) {
		snprintf(item, sizeof(item), "h/%d/%d", i / 256, i % 256);
		s.sub_id = (uint64_t)i + 1;
		s.pattern = item;
		f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
		f.subscribe = &s;
	} else {
		snprintf(item, sizeof(item), "n%d", i);
		n.name = item;
		f.kind_case = LBUS__FRAME__KIND_TAKE_NAME;
		f.take_name = &n;
	}
	assert_int_equal(bt_send(c, &f), 0);
}

/* Requests [from, from + BATCH), all answered Ok; microseconds taken. */
static int64_t batch(struct bt_client *c, bool subs, int from)
{
	int64_t t0 = now_us();

	for (int i = from; i < from + BATCH; i++)
		send_request(c, subs, i);
	for (int i = from; i < from + BATCH; i++) {
		Lbus__Frame *f = bt_expect(c, LBUS__FRAME__KIND_OK);

		assert_non_null(f);
		assert_int_equal(f->req_id, (uint32_t)i + 1);
		lbus__frame__free_unpacked(f, NULL);
	}
	return now_us() - t0;
}

static void check_flat(bool subs)
{
	struct bt_broker t;
	struct bt_client c;
	int64_t few = INT64_MAX, many = INT64_MAX;
	int next = 0;

	assert_int_equal(bt_start(&t), 0);
	t.b.cfg.max_names_per_client = (FEW_X + TRIES + 1) * BATCH;
	t.b.cfg.max_subscriptions_per_client = (FEW_X + TRIES + 1) * BATCH;
	assert_int_equal(bt_connect(&t, &c), 0);
	batch(&c, subs, next); /* holds BATCH */
	next += BATCH;
	for (int k = 0; k < TRIES; k++) {
		int64_t us = batch(&c, subs, next);

		few = us < few ? us : few;
		next += BATCH;
	}
	while (next < FEW_X * BATCH) {
		batch(&c, subs, next);
		next += BATCH;
	}
	for (int k = 0; k < TRIES; k++) {
		int64_t us = batch(&c, subs, next);

		many = us < many ? us : many;
		next += BATCH;
	}
	fprintf(stderr, "%s: %d requests in %lld us holding %d, in %lld us holding %d\n",
		subs ? "subscribe" : "take name", BATCH, (long long)few, BATCH, (long long)many,
		FEW_X * BATCH);
	assert_true((double)many <= MAX_RATIO * (double)few);
	bt_stop(&t);
}

static void test_take_name_flat(void **state)
{
	(void)state;
	check_flat(false);
}

static void test_subscribe_flat(void **state)
{
	(void)state;
	check_flat(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_name_flat),
	    cmocka_unit_test(test_subscribe_flat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
