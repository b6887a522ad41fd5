/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of request/reply bookkeeping (broker/callreply.c, calls.c)
 * through an in-process broker (brokertest.h):
 *
 *  - a call to a name reaches its owner (sub_id 0) with the caller's
 *    identity and a token; the reply reaches the caller only, with its
 *    call_id and the responder's identity;
 *  - a call to a topic reaches a responder subscription, never a plain one;
 *    calls to a topic with two responders alternate between them;
 *  - nobody to answer: ERR_NO_RESPONDERS at once; `$` targets ERR_DENIED;
 *    call_id 0 ERR_INVALID;
 *  - a responder that disconnects with calls pending: every caller gets
 *    ERR_RESPONDER_GONE in the same turn, not at its timeout;
 *  - a call whose deadline passes gets ERR_TIMEOUT, and the late reply is
 *    ignored;
 *  - call ids are the caller's: one reused after its call ended gets the
 *    call its own token and result, and a reply to an answered token is
 *    ignored; one used by two calls at once is refused (ERR_INVALID) for
 *    the second, at once, and the first is answered as usual;
 *  - max_pending_calls_per_client: one call more than the limit is refused
 *    with ERR_LIMIT at once; once a call ended there is room again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "brokertest.h"

/* Expect a call delivered to resp; returns its token. */
static uint64_t expect_call(struct bt_client *resp, uint64_t sub_id, const struct bt_client *caller,
			    const char *target, uint64_t call_id, const char *payload)
{
	Lbus__Frame *f = bt_expect(resp, LBUS__FRAME__KIND_DELIVER);
	uint64_t token;

	assert_non_null(f);
	assert_int_equal(f->deliver->sub_id, sub_id);
	assert_non_null(f->deliver->call);
	assert_null(f->deliver->publish);
	assert_string_equal(f->deliver->call->target, target);
	assert_int_equal(f->deliver->call->call_id, call_id);
	assert_true(bt_bytes_eq(f->deliver->call->payload, payload));
	assert_int_equal(f->deliver->sender->id, caller->id);
	assert_int_equal(f->deliver->sender->pid, getpid());
	token = f->deliver->call_token;
	assert_int_not_equal(token, 0);
	lbus__frame__free_unpacked(f, NULL);
	return token;
}

/* Expect a CallResult for call_id: the payload from `from`, or error. */
static void expect_result(struct bt_client *caller, uint64_t call_id, const char *payload,
			  const struct bt_client *from, Lbus__ErrorCode error)
{
	Lbus__Frame *f = bt_expect(caller, LBUS__FRAME__KIND_RESULT);

	assert_non_null(f);
	assert_int_equal(f->result->call_id, call_id);
	assert_int_equal(f->result->error, error);
	if (payload)
		assert_true(bt_bytes_eq(f->result->payload, payload));
	if (from) {
		assert_non_null(f->result->sender);
		assert_int_equal(f->result->sender->id, from->id);
	}
	lbus__frame__free_unpacked(f, NULL);
}

static void test_call_name_reply_to_caller_only(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client caller, resp, bystander, mon;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &caller), 0);
	assert_int_equal(bt_connect(&t, &resp), 0);
	assert_int_equal(bt_connect(&t, &bystander), 0);
	assert_int_equal(bt_connect(&t, &mon), 0);
	assert_int_equal(bt_take_name(&resp, "svc"), 0);
	assert_int_equal(bt_sub(&bystander, 1, "#"), 0);
	assert_int_equal(bt_sub(&bystander, 2, "svc"), 0);

	assert_int_equal(bt_call(&caller, "svc", 41, "ping", 0), 0);
	uint64_t token = expect_call(&resp, 0, &caller, "svc", 41, "ping");
	assert_int_equal(bt_reply(&resp, token, "pong"), 0);
	expect_result(&caller, 41, "pong", &resp, LBUS__ERROR_CODE__ERR_NONE);
	assert_true(bt_nothing(&bystander));
	assert_true(bt_nothing(&resp));
	assert_true(bt_nothing(&mon));
	assert_true(bt_nothing(&caller));
	bt_stop(&t);
}

/* Expect a call to topic svc/a on sub_id; returns its token, *call_id. */
static uint64_t expect_topic_call(struct bt_client *resp, uint64_t sub_id, const struct bt_client *caller,
				  uint64_t *call_id)
{
	Lbus__Frame *f = bt_expect(resp, LBUS__FRAME__KIND_DELIVER);
	uint64_t token;

	assert_non_null(f);
	assert_int_equal(f->deliver->sub_id, sub_id);
	assert_non_null(f->deliver->call);
	assert_string_equal(f->deliver->call->target, "svc/a");
	assert_int_equal(f->deliver->sender->id, caller->id);
	*call_id = f->deliver->call->call_id;
	token = f->deliver->call_token;
	lbus__frame__free_unpacked(f, NULL);
	return token;
}

static void test_call_topic_responders(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client caller, r1, r2, plain;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &caller), 0);
	assert_int_equal(bt_connect(&t, &r1), 0);
	assert_int_equal(bt_connect(&t, &r2), 0);
	assert_int_equal(bt_connect(&t, &plain), 0);
	s.pattern = "svc/+";
	s.responder = true;
	s.sub_id = 21;
	assert_int_equal(bt_subscribe(&r1, &s), 0);
	s.sub_id = 22;
	assert_int_equal(bt_subscribe(&r2, &s), 0);
	assert_int_equal(bt_sub(&plain, 23, "svc/+"), 0);

	/* two calls: one to each responder (round-robin), none to plain */
	assert_int_equal(bt_call(&caller, "svc/a", 1, "x", 0), 0);
	assert_int_equal(bt_call(&caller, "svc/a", 2, "x", 0), 0);
	uint64_t id1, id2;
	uint64_t tok1 = expect_topic_call(&r1, 21, &caller, &id1);
	uint64_t tok2 = expect_topic_call(&r2, 22, &caller, &id2);
	assert_true((id1 == 1 && id2 == 2) || (id1 == 2 && id2 == 1));
	assert_int_not_equal(tok1, tok2);
	assert_true(bt_nothing(&r1));
	assert_true(bt_nothing(&r2));
	assert_true(bt_nothing(&plain));

	/* the answers go back by token, in the order they are given */
	assert_int_equal(bt_reply(&r2, tok2, "from r2"), 0);
	expect_result(&caller, id2, "from r2", &r2, LBUS__ERROR_CODE__ERR_NONE);
	assert_int_equal(bt_reply(&r1, tok1, "from r1"), 0);
	expect_result(&caller, id1, "from r1", &r1, LBUS__ERROR_CODE__ERR_NONE);
	assert_true(bt_nothing(&plain));
	bt_stop(&t);
}

static void test_refused_at_once(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client caller, plain;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &caller), 0);
	assert_int_equal(bt_connect(&t, &plain), 0);
	assert_int_equal(bt_sub(&plain, 1, "#"), 0); /* plain subscribers take no calls */

	assert_int_equal(bt_call(&caller, "nobody", 1, "x", 60000), 0);
	expect_result(&caller, 1, NULL, NULL, LBUS__ERROR_CODE__ERR_NO_RESPONDERS);
	assert_int_equal(bt_call(&caller, "a/topic", 2, "x", 60000), 0);
	expect_result(&caller, 2, NULL, NULL, LBUS__ERROR_CODE__ERR_NO_RESPONDERS);
	assert_int_equal(bt_call(&caller, "$lbus/x", 3, "x", 0), 0);
	expect_result(&caller, 3, NULL, NULL, LBUS__ERROR_CODE__ERR_DENIED);
	assert_int_equal(bt_call(&caller, "svc", 0, "x", 0), 0);
	expect_result(&caller, 0, NULL, NULL, LBUS__ERROR_CODE__ERR_INVALID);
	assert_true(bt_nothing(&plain));
	assert_int_equal(calls_pending(&t.b.calls), 0);
	bt_stop(&t);
}

static void test_responder_gone_fails_each_caller(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client c1, c2, resp, other;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &c1), 0);
	assert_int_equal(bt_connect(&t, &c2), 0);
	assert_int_equal(bt_connect(&t, &resp), 0);
	assert_int_equal(bt_connect(&t, &other), 0);
	assert_int_equal(bt_take_name(&resp, "svc"), 0);
	assert_int_equal(bt_take_name(&other, "other"), 0);

	assert_int_equal(bt_call(&c1, "svc", 7, "a", 60000), 0);
	assert_int_equal(bt_call(&c1, "svc", 8, "b", 60000), 0);
	assert_int_equal(bt_call(&c2, "svc", 7, "c", 60000), 0);
	assert_int_equal(bt_call(&c2, "other", 9, "d", 60000), 0); /* not the leaving one */
	expect_call(&resp, 0, &c1, "svc", 7, "a");
	expect_call(&resp, 0, &c1, "svc", 8, "b");
	expect_call(&resp, 0, &c2, "svc", 7, "c");
	uint64_t keep = expect_call(&other, 0, &c2, "other", 9, "d");

	bt_close(&resp); /* one settle: the errors are there now, not at 60 s */
	expect_result(&c1, 7, NULL, NULL, LBUS__ERROR_CODE__ERR_RESPONDER_GONE);
	expect_result(&c1, 8, NULL, NULL, LBUS__ERROR_CODE__ERR_RESPONDER_GONE);
	expect_result(&c2, 7, NULL, NULL, LBUS__ERROR_CODE__ERR_RESPONDER_GONE);
	assert_true(bt_nothing(&c2));
	assert_int_equal(calls_pending(&t.b.calls), 1);

	assert_int_equal(bt_reply(&other, keep, "still here"), 0);
	expect_result(&c2, 9, "still here", &other, LBUS__ERROR_CODE__ERR_NONE);
	assert_true(bt_nothing(&c1));
	bt_stop(&t);
}

static void test_timeout_then_late_reply_ignored(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client caller, resp;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &caller), 0);
	assert_int_equal(bt_connect(&t, &resp), 0);
	assert_int_equal(bt_take_name(&resp, "slow"), 0);
	assert_int_equal(bt_call(&caller, "slow", 5, "x", 50), 0);
	uint64_t token = expect_call(&resp, 0, &caller, "slow", 5, "x");
	expect_result(&caller, 5, NULL, NULL, LBUS__ERROR_CODE__ERR_TIMEOUT);
	assert_int_equal(bt_reply(&resp, token, "too late"), 0);
	assert_true(bt_nothing(&caller));
	assert_true(bt_nothing(&resp));
	bt_stop(&t);
}

static void test_call_id_reuse(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client caller, resp;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &caller), 0);
	assert_int_equal(bt_connect(&t, &resp), 0);
	assert_int_equal(bt_take_name(&resp, "svc"), 0);

	/* reused after the first call ended: a new token; the old one is dead */
	assert_int_equal(bt_call(&caller, "svc", 3, "one", 0), 0);
	uint64_t t1 = expect_call(&resp, 0, &caller, "svc", 3, "one");
	assert_int_equal(bt_reply(&resp, t1, "r1"), 0);
	expect_result(&caller, 3, "r1", &resp, LBUS__ERROR_CODE__ERR_NONE);
	assert_int_equal(bt_call(&caller, "svc", 3, "two", 0), 0);
	uint64_t t2 = expect_call(&resp, 0, &caller, "svc", 3, "two");
	assert_int_not_equal(t1, t2);
	assert_int_equal(bt_reply(&resp, t1, "stale"), 0);
	assert_true(bt_nothing(&caller));
	assert_int_equal(bt_reply(&resp, t2, "r2"), 0);
	expect_result(&caller, 3, "r2", &resp, LBUS__ERROR_CODE__ERR_NONE);

	/* the same id twice at once: the second is refused, the first goes on */
	assert_int_equal(bt_call(&caller, "svc", 4, "a", 0), 0);
	assert_int_equal(bt_call(&caller, "svc", 4, "b", 0), 0);
	uint64_t ta = expect_call(&resp, 0, &caller, "svc", 4, "a");
	expect_result(&caller, 4, NULL, NULL, LBUS__ERROR_CODE__ERR_INVALID);
	assert_true(bt_nothing(&resp));
	assert_int_equal(calls_pending(&t.b.calls), 1);
	assert_int_equal(bt_reply(&resp, ta, "ra"), 0);
	expect_result(&caller, 4, "ra", &resp, LBUS__ERROR_CODE__ERR_NONE);
	assert_int_equal(bt_reply(&resp, ta, "again"), 0); /* answered: ignored */
	assert_true(bt_nothing(&caller));
	/* another caller may use the same id meanwhile */
	struct bt_client other;
	assert_int_equal(bt_connect(&t, &other), 0);
	assert_int_equal(bt_call(&caller, "svc", 5, "c", 0), 0);
	uint64_t tc = expect_call(&resp, 0, &caller, "svc", 5, "c");
	assert_int_equal(bt_call(&other, "svc", 5, "d", 0), 0);
	uint64_t td = expect_call(&resp, 0, &other, "svc", 5, "d");
	assert_int_equal(bt_reply(&resp, td, "rd"), 0);
	assert_int_equal(bt_reply(&resp, tc, "rc"), 0);
	expect_result(&other, 5, "rd", &resp, LBUS__ERROR_CODE__ERR_NONE);
	expect_result(&caller, 5, "rc", &resp, LBUS__ERROR_CODE__ERR_NONE);
	assert_int_equal(calls_pending(&t.b.calls), 0);
	bt_stop(&t);
}

static void test_pending_calls_limit(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client caller, resp;
	uint64_t tokens[3];

	assert_int_equal(bt_start(&t), 0);
	t.b.cfg.max_pending_calls_per_client = 3;
	assert_int_equal(bt_connect(&t, &caller), 0);
	assert_int_equal(bt_connect(&t, &resp), 0);
	assert_int_equal(bt_take_name(&resp, "svc"), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(bt_call(&caller, "svc", id, "x", 0), 0);
		tokens[id - 1] = expect_call(&resp, 0, &caller, "svc", id, "x");
	}
	/* the fourth is refused at once; the responder never sees it */
	assert_int_equal(bt_call(&caller, "svc", 4, "x", 0), 0);
	Lbus__Frame *f = bt_expect(&caller, LBUS__FRAME__KIND_RESULT);
	assert_non_null(f);
	assert_int_equal(f->result->call_id, 4);
	assert_int_equal(f->result->error, LBUS__ERROR_CODE__ERR_LIMIT);
	assert_non_null(strstr(f->result->reason, "max_pending_calls_per_client"));
	lbus__frame__free_unpacked(f, NULL);
	assert_true(bt_nothing(&resp));
	/* the responder is not limited by the calls it answers; one answered
	 * call makes room for the next */
	assert_int_equal(bt_reply(&resp, tokens[1], "r"), 0);
	expect_result(&caller, 2, "r", &resp, LBUS__ERROR_CODE__ERR_NONE);
	assert_int_equal(bt_call(&caller, "svc", 5, "y", 0), 0);
	expect_call(&resp, 0, &caller, "svc", 5, "y");
	assert_int_equal(calls_pending(&t.b.calls), 3);
	assert_int_equal(t.b.calls.by_caller_id.count, 3);
	bt_close(&caller);
	assert_int_equal(calls_pending(&t.b.calls), 0);
	bt_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_call_name_reply_to_caller_only),
	    cmocka_unit_test(test_call_topic_responders),
	    cmocka_unit_test(test_refused_at_once),
	    cmocka_unit_test(test_responder_gone_fails_each_caller),
	    cmocka_unit_test(test_timeout_then_late_reply_ignored),
	    cmocka_unit_test(test_call_id_reuse),
	    cmocka_unit_test(test_pending_calls_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
