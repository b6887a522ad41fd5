/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of routing (broker/router.c, subscription.c, dispatch.c,
 * client.c) through an in-process broker (brokertest.h): socketpair clients,
 * turns driven by the test, assertions on the frames a client reads.
 *
 *  - exact topics, `+` (one level) and `#` (zero or more levels, `a/#`
 *    matches `a`): each matching subscription gets one Deliver with its own
 *    sub_id, the others nothing; the Publish arrives byte for byte;
 *  - `$` topics: a pattern starting with `+` or `#` never matches them,
 *    `$lbus/#` does; a client cannot publish to one (ERR_DENIED);
 *  - retained messages reach a new subscription right after its Ok, before
 *    any live message, marked retained; group members get none;
 *  - the sender identity is the broker's observation of the publisher (id,
 *    first owned name, pid, uid, gid), whatever the client sends;
 *  - unsubscribe ends deliveries; messages from one publisher arrive in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "brokertest.h"

/* Expect a Deliver of a publish on sub_id with topic and payload. */
static void expect_publish(struct bt_client *c, uint64_t sub_id, const char *topic, const char *payload,
			   bool retained)
{
	Lbus__Frame *f = bt_expect(c, LBUS__FRAME__KIND_DELIVER);

	assert_non_null(f);
	assert_int_equal(f->deliver->sub_id, sub_id);
	assert_non_null(f->deliver->publish);
	assert_string_equal(f->deliver->publish->topic, topic);
	assert_true(bt_bytes_eq(f->deliver->publish->payload, payload));
	assert_int_equal(f->deliver->retained, retained);
	assert_null(f->deliver->call);
	lbus__frame__free_unpacked(f, NULL);
}

static void test_exact_and_wildcards(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, exact, plus, hash, all, other, deep;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &exact), 0);
	assert_int_equal(bt_connect(&t, &plus), 0);
	assert_int_equal(bt_connect(&t, &hash), 0);
	assert_int_equal(bt_connect(&t, &all), 0);
	assert_int_equal(bt_connect(&t, &other), 0);
	assert_int_equal(bt_connect(&t, &deep), 0);
	assert_int_equal(bt_sub(&exact, 11, "a/b"), 0);
	assert_int_equal(bt_sub(&plus, 12, "a/+"), 0);
	assert_int_equal(bt_sub(&hash, 13, "a/#"), 0);
	assert_int_equal(bt_sub(&all, 14, "#"), 0);
	assert_int_equal(bt_sub(&other, 15, "+/c"), 0);
	assert_int_equal(bt_sub(&deep, 16, "a/+/c"), 0);

	assert_int_equal(bt_publish(&pub, "a/b", "one", false), 0);
	expect_publish(&exact, 11, "a/b", "one", false);
	expect_publish(&plus, 12, "a/b", "one", false);
	expect_publish(&hash, 13, "a/b", "one", false);
	expect_publish(&all, 14, "a/b", "one", false);
	assert_true(bt_nothing(&other));
	assert_true(bt_nothing(&deep));

	/* `a/#` matches its parent level too; `+` never matches two levels */
	assert_int_equal(bt_publish(&pub, "a", "two", false), 0);
	expect_publish(&hash, 13, "a", "two", false);
	expect_publish(&all, 14, "a", "two", false);
	assert_int_equal(bt_publish(&pub, "a/b/c", "three", false), 0);
	expect_publish(&hash, 13, "a/b/c", "three", false);
	expect_publish(&all, 14, "a/b/c", "three", false);
	expect_publish(&deep, 16, "a/b/c", "three", false);
	assert_int_equal(bt_publish(&pub, "x/c", "four", false), 0);
	expect_publish(&all, 14, "x/c", "four", false);
	expect_publish(&other, 15, "x/c", "four", false);
	assert_true(bt_nothing(&exact));
	assert_true(bt_nothing(&plus));
	assert_true(bt_nothing(&hash));
	assert_true(bt_nothing(&deep));
	assert_true(bt_nothing(&pub)); /* no req_id: no Ok */
	bt_stop(&t);
}

static void test_one_delivery_per_subscription(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	assert_int_equal(bt_sub(&sub, 1, "k/+"), 0);
	assert_int_equal(bt_sub(&sub, 2, "k/v"), 0);
	assert_int_equal(bt_publish(&pub, "k/v", "x", false), 0);
	for (int i = 0; i < 2; i++) {
		Lbus__Frame *f = bt_expect(&sub, LBUS__FRAME__KIND_DELIVER);

		assert_non_null(f);
		assert_true(f->deliver->sub_id == 1 || f->deliver->sub_id == 2);
		lbus__frame__free_unpacked(f, NULL);
	}
	assert_true(bt_nothing(&sub));
	bt_stop(&t);
}

static void test_publisher_order_and_unsubscribe(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub;
	Lbus__Unsubscribe u = LBUS__UNSUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	char payload[16];

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	assert_int_equal(bt_sub(&sub, 7, "seq"), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(payload, sizeof(payload), "%d", i);
		assert_int_equal(bt_publish(&pub, "seq", payload, false), 0);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(payload, sizeof(payload), "%d", i);
		expect_publish(&sub, 7, "seq", payload, false);
	}
	u.sub_id = 7;
	f.kind_case = LBUS__FRAME__KIND_UNSUBSCRIBE;
	f.unsubscribe = &u;
	f.req_id = 9;
	assert_int_equal(bt_send(&sub, &f), 0);
	Lbus__Frame *ok = bt_expect(&sub, LBUS__FRAME__KIND_OK);
	assert_non_null(ok);
	assert_int_equal(ok->req_id, 9);
	lbus__frame__free_unpacked(ok, NULL);
	assert_int_equal(bt_publish(&pub, "seq", "late", false), 0);
	assert_true(bt_nothing(&sub));
	bt_stop(&t);
}

static void test_dollar_topics(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, wild, plus, lbus, late;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &wild), 0);
	assert_int_equal(bt_connect(&t, &plus), 0);
	assert_int_equal(bt_connect(&t, &lbus), 0);
	assert_int_equal(bt_sub(&wild, 1, "#"), 0);
	assert_int_equal(bt_sub(&plus, 2, "+/client/connected"), 0);
	assert_int_equal(bt_sub(&lbus, 3, "$lbus/#"), 0);

	/* a client connecting: the broker publishes $lbus/client/connected */
	assert_int_equal(bt_connect(&t, &late), 0);
	Lbus__Frame *f = bt_expect(&lbus, LBUS__FRAME__KIND_DELIVER);
	assert_non_null(f);
	assert_int_equal(f->deliver->sub_id, 3);
	assert_string_equal(f->deliver->publish->topic, "$lbus/client/connected");
	assert_int_equal(f->deliver->sender->id, 0); /* the broker's own */
	lbus__frame__free_unpacked(f, NULL);
	assert_true(bt_nothing(&wild));
	assert_true(bt_nothing(&plus));

	/* clients may not publish there */
	Lbus__Publish p = LBUS__PUBLISH__INIT;
	Lbus__Frame pf = LBUS__FRAME__INIT;
	p.topic = "$lbus/client/connected";
	pf.kind_case = LBUS__FRAME__KIND_PUBLISH;
	pf.publish = &p;
	pf.req_id = 5;
	assert_int_equal(bt_send(&pub, &pf), 0);
	f = bt_expect(&pub, LBUS__FRAME__KIND_ERROR);
	assert_non_null(f);
	assert_int_equal(f->error->code, LBUS__ERROR_CODE__ERR_DENIED);
	assert_false(f->error->fatal);
	assert_int_equal(f->req_id, 5);
	lbus__frame__free_unpacked(f, NULL);
	assert_true(bt_nothing(&lbus));
	assert_true(bt_nothing(&wild));

	/* the connection is still usable */
	assert_int_equal(bt_publish(&pub, "x", "y", false), 0);
	expect_publish(&wild, 1, "x", "y", false);
	bt_stop(&t);
}

static void test_retained_first(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub, member;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	assert_int_equal(bt_connect(&t, &member), 0);
	assert_int_equal(bt_publish(&pub, "r/1", "old", true), 0);
	assert_int_equal(bt_publish(&pub, "r/1", "kept", true), 0); /* replaces "old" */
	assert_int_equal(bt_publish(&pub, "r/2", "two", true), 0);
	assert_int_equal(bt_publish(&pub, "q/1", "other", true), 0);
	assert_int_equal(bt_settle(&t), 0);

	/* the retained messages come right after the Ok, before a live
	 * publish made at once */
	s.sub_id = 4;
	s.pattern = "r/+";
	assert_int_equal(bt_subscribe(&sub, &s), 0);
	assert_int_equal(bt_publish(&pub, "r/1", "live", false), 0);
	Lbus__Frame *f[2];
	for (int i = 0; i < 2; i++) {
		f[i] = bt_expect(&sub, LBUS__FRAME__KIND_DELIVER);
		assert_non_null(f[i]);
		assert_true(f[i]->deliver->retained);
		assert_int_equal(f[i]->deliver->sub_id, 4);
	}
	assert_true((!strcmp(f[0]->deliver->publish->topic, "r/1") &&
		     bt_bytes_eq(f[0]->deliver->publish->payload, "kept") &&
		     !strcmp(f[1]->deliver->publish->topic, "r/2")) ||
		    (!strcmp(f[1]->deliver->publish->topic, "r/1") &&
		     bt_bytes_eq(f[1]->deliver->publish->payload, "kept") &&
		     !strcmp(f[0]->deliver->publish->topic, "r/2")));
	lbus__frame__free_unpacked(f[0], NULL);
	lbus__frame__free_unpacked(f[1], NULL);
	expect_publish(&sub, 4, "r/1", "live", false);

	/* a queue group member gets no retained messages */
	s.sub_id = 5;
	s.group = "g";
	assert_int_equal(bt_subscribe(&member, &s), 0);
	assert_true(bt_nothing(&member));

	/* an empty retained payload clears the topic */
	assert_int_equal(bt_publish(&pub, "r/2", "", true), 0);
	expect_publish(&sub, 4, "r/2", "", false);
	s.sub_id = 6;
	s.group = "";
	assert_int_equal(bt_subscribe(&sub, &s), 0);
	expect_publish(&sub, 6, "r/1", "kept", true);
	assert_true(bt_nothing(&sub));
	bt_stop(&t);
}

static void expect_sender(struct bt_client *sub, const struct bt_client *from, const char *name)
{
	Lbus__Frame *f = bt_expect(sub, LBUS__FRAME__KIND_DELIVER);

	assert_non_null(f);
	assert_non_null(f->deliver->sender);
	assert_int_equal(f->deliver->sender->id, from->id);
	assert_string_equal(f->deliver->sender->name, name);
	assert_int_equal(f->deliver->sender->pid, getpid());
	assert_int_equal(f->deliver->sender->uid, getuid());
	assert_int_equal(f->deliver->sender->gid, getgid());
	lbus__frame__free_unpacked(f, NULL);
}

static void test_sender_identity(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	assert_int_not_equal(pub.id, sub.id);
	assert_int_equal(bt_sub(&sub, 1, "id"), 0);
	assert_int_equal(bt_publish(&pub, "id", "anon", false), 0);
	expect_sender(&sub, &pub, "");

	/* the first owned name is the sender's name, from now on */
	assert_int_equal(bt_take_name(&pub, "alpha"), 0);
	assert_int_equal(bt_take_name(&pub, "beta"), 0);
	assert_int_equal(bt_publish(&pub, "id", "named", false), 0);
	expect_sender(&sub, &pub, "alpha");
	bt_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_and_wildcards),
	    cmocka_unit_test(test_one_delivery_per_subscription),
	    cmocka_unit_test(test_publisher_order_and_unsubscribe),
	    cmocka_unit_test(test_dollar_topics),
	    cmocka_unit_test(test_retained_first),
	    cmocka_unit_test(test_sender_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
