/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the pending-call table (broker/calls.c): unique tokens,
 * lookup and removal, a disconnecting responder failing exactly its calls, a
 * disconnecting caller dropping its own, calls to oneself, expiry in
 * deadline order against a brute-force model, and round-robin picking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "calls.h"

struct ended {
	uint64_t call_ids[64];
	int n;
};

static void record(struct call *call, void *ud)
{
	struct ended *e = ud;
	assert_true(e->n < 64);
	e->call_ids[e->n++] = call->call_id;
}

static struct call *add(struct calls *c, struct calls_peer *caller, uint64_t id, struct calls_peer *resp,
			uint64_t deadline)
{
	struct call *call = NULL;
	assert_int_equal(calls_add(c, caller, id, resp, deadline, &call), 0);
	assert_non_null(call);
	return call;
}

static void test_tokens_and_find(void **state)
{
	struct calls c;
	struct calls_peer a, b;

	calls_init(&c);
	calls_peer_init(&a);
	calls_peer_init(&b);
	assert_int_equal(calls_next_deadline(&c), UINT64_MAX);
	struct call *x = add(&c, &a, 1, &b, 100);
	struct call *y = add(&c, &a, 2, &b, 50);
	assert_int_not_equal(x->token, 0);
	assert_int_not_equal(x->token, y->token);
	assert_ptr_equal(calls_find(&c, x->token), x);
	assert_ptr_equal(calls_find(&c, y->token), y);
	assert_null(calls_find(&c, 0));
	assert_int_equal(calls_pending(&c), 2);
	assert_int_equal(calls_next_deadline(&c), 50);

	uint64_t ytok = y->token;
	calls_remove(&c, y); /* replied */
	assert_null(calls_find(&c, ytok));
	assert_int_equal(calls_next_deadline(&c), 100);
	struct call *z = add(&c, &b, 3, &a, 10);
	assert_true(z->token > ytok); /* tokens are never reused */
	calls_deinit(&c);
	assert_true(list_empty(&a.as_caller));
	assert_true(list_empty(&b.as_responder));
}

static void test_responder_gone(void **state)
{
	struct calls c;
	struct calls_peer a, b, r1, r2;
	struct ended ended = {0};

	calls_init(&c);
	calls_peer_init(&a);
	calls_peer_init(&b);
	calls_peer_init(&r1);
	calls_peer_init(&r2);
	add(&c, &a, 1, &r1, 100);
	add(&c, &b, 2, &r2, 100);
	add(&c, &b, 3, &r1, 100);
	struct call *keep = add(&c, &a, 4, &r2, 100);

	calls_drop_responder(&c, &r1, record, &ended);
	assert_int_equal(ended.n, 2);
	assert_int_equal(ended.call_ids[0], 1);
	assert_int_equal(ended.call_ids[1], 3);
	assert_int_equal(calls_pending(&c), 2);
	assert_ptr_equal(calls_find(&c, keep->token), keep);

	calls_drop_caller(&c, &b); /* b leaves: its call 2 is forgotten */
	assert_int_equal(calls_pending(&c), 1);
	ended.n = 0;
	calls_drop_responder(&c, &r2, record, &ended);
	assert_int_equal(ended.n, 1);
	assert_int_equal(ended.call_ids[0], 4);
	assert_int_equal(calls_pending(&c), 0);
	calls_deinit(&c);
}

static void test_call_to_self(void **state)
{
	struct calls c;
	struct calls_peer a, other;
	struct ended ended = {0};

	calls_init(&c);
	calls_peer_init(&a);
	calls_peer_init(&other);
	add(&c, &a, 1, &a, 100);
	add(&c, &other, 2, &a, 100);
	calls_drop_caller(&c, &a);
	calls_drop_responder(&c, &a, record, &ended);
	assert_int_equal(ended.n, 1); /* only the other caller is told */
	assert_int_equal(ended.call_ids[0], 2);
	assert_int_equal(calls_pending(&c), 0);
	calls_deinit(&c);
}

static void test_expire_order(void **state)
{
	struct calls c;
	struct calls_peer a, b;
	struct ended ended = {0};
	const uint64_t deadlines[] = {50, 10, 30, 10, 70, 20, 60, 40};
	const int n = (int)(sizeof(deadlines) / sizeof(deadlines[0]));

	calls_init(&c);
	calls_peer_init(&a);
	calls_peer_init(&b);
	for (int i = 0; i < n; i++)
		add(&c, &a, (uint64_t)i + 1, &b, deadlines[i]);
	assert_int_equal(calls_expire(&c, 9, record, &ended), 0);
	assert_int_equal(calls_expire(&c, 30, record, &ended), 4);
	assert_int_equal(ended.n, 4);
	for (int i = 1; i < ended.n; i++)
		assert_true(deadlines[ended.call_ids[i - 1] - 1] <= deadlines[ended.call_ids[i] - 1]);
	assert_int_equal(calls_next_deadline(&c), 40);
	assert_int_equal(calls_expire(&c, 1000, NULL, NULL), 4);
	assert_int_equal(calls_next_deadline(&c), UINT64_MAX);
	assert_true(list_empty(&a.as_caller));
	calls_deinit(&c);
}

/* Random adds/removes/expiries checked against a plain array model. */
static void test_heap_model(void **state)
{
	enum { N = 2000 };
	struct calls c;
	struct calls_peer a, b;
	struct call *live[N];
	int nlive = 0;

	calls_init(&c);
	calls_peer_init(&a);
	calls_peer_init(&b);
	srand(1);
	uint64_t now = 0;
	for (int step = 0; step < 20000; step++) {
		int op = rand() % 4;
		if ((op <= 1 || nlive == 0) && nlive < N) {
			live[nlive++] =
			    add(&c, &a, (uint64_t)step + 1, &b, now + 1 + (uint64_t)(rand() % 1000));
		} else if (op == 2) {
			int i = rand() % nlive;
			calls_remove(&c, live[i]);
			live[i] = live[--nlive];
		} else {
			now += (uint64_t)(rand() % 50);
			int k = 0, gone = 0;
			for (int i = 0; i < nlive; i++) {
				if (live[i]->deadline_ms > now)
					live[k++] = live[i];
				else
					gone++;
			}
			nlive = k;
			assert_int_equal(calls_expire(&c, now, NULL, NULL), gone);
		}
		uint64_t min = UINT64_MAX;
		for (int i = 0; i < nlive; i++)
			if (live[i]->deadline_ms < min)
				min = live[i]->deadline_ms;
		assert_int_equal(calls_next_deadline(&c), min);
		assert_int_equal(calls_pending(&c), nlive);
	}
	calls_deinit(&c);
}

static void test_pick(void **state)
{
	struct calls c;
	int hits[3] = {0};

	calls_init(&c);
	for (int i = 0; i < 300; i++)
		hits[calls_pick(&c, 3)]++;
	assert_int_equal(hits[0], 100);
	assert_int_equal(hits[1], 100);
	assert_int_equal(hits[2], 100);
	assert_int_equal(calls_pick(&c, 1), 0);
	calls_deinit(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tokens_and_find), cmocka_unit_test(test_responder_gone),
	    cmocka_unit_test(test_call_to_self),    cmocka_unit_test(test_expire_order),
	    cmocka_unit_test(test_heap_model),	    cmocka_unit_test(test_pick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
