/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the retained store (broker/retained.c): replace, delete on
 * an empty payload, the byte bound in heap bytes (refusal leaves the store
 * unchanged; an empty store takes nothing),
 * wildcard and exact iteration in first-stored order, the '$' rule, and that
 * the stored body decodes as the Deliver the subscriber will receive.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"
#include "retained.h"

static struct msgpool pool;

static const uint8_t sender_bytes[] = {0x08, 0x07, 0x18, 0x2a}; /* id 7, pid 42 */

/* A Deliver body (as the router builds it) for a retained publish. */
static struct msgbuf *make_body(const char *topic, const char *payload)
{
	uint8_t frame[600];
	size_t n =
	    lbus_wire_publish_frame_encode(frame, topic, strlen(topic), payload, strlen(payload), true, 0);
	struct lbus_wire_frame f;

	assert_int_equal(lbus_wire_frame_scan(frame + 4, n - 4, &f), 0);
	assert_int_equal(f.kind, LBUS_K_PUBLISH);
	size_t size = lbus_wire_deliver_body_size(f.body_len, sizeof(sender_bytes), 0);
	struct msgbuf *b = msgbuf_new(&pool, size);
	assert_non_null(b);
	b->len = (uint32_t)lbus_wire_deliver_body_encode(b->data, LBUS_D_PUBLISH, f.body, f.body_len,
							 sender_bytes, sizeof(sender_bytes), 0);
	assert_int_equal(b->len, size);
	return b;
}

/* What the router does for a publish flagged retain. */
static int put(struct retained_store *s, const char *topic, const char *payload)
{
	if (!*payload) {
		retained_clear(s, topic, strlen(topic));
		return 0;
	}
	struct msgbuf *b = make_body(topic, payload);
	int ret = retained_put(s, topic, strlen(topic), b);
	msgbuf_unref(b);
	return ret;
}

/* Payload of the stored message, decoded from its Deliver body. */
static void payload_of(const struct retained_msg *m, char *out, size_t size)
{
	struct lbus_wire_deliver d;
	struct lbus_wire_publish p;

	assert_int_equal(lbus_wire_deliver_decode(m->body->data, m->body->len, &d), 0);
	assert_int_equal(d.what, LBUS_D_PUBLISH);
	assert_int_equal(d.sender.id, 7);
	assert_int_equal(d.sender.pid, 42);
	assert_int_equal(lbus_wire_publish_decode(d.msg, d.msg_len, &p), 0);
	assert_true(p.retain);
	assert_true(p.payload_len < size);
	memcpy(out, p.payload, p.payload_len);
	out[p.payload_len] = '\0';
}

static void test_replace_and_delete(void **state)
{
	struct retained_store s;
	char buf[64];

	retained_init(&s, 1 << 20);
	assert_int_equal(put(&s, "a/b", "one"), 0);
	assert_int_equal(put(&s, "a/b", "two"), 0);
	assert_int_equal(s.count, 1);
	const struct retained_msg *m = retained_find(&s, "a/b", 3);
	assert_non_null(m);
	payload_of(m, buf, sizeof(buf));
	assert_string_equal(buf, "two");
	assert_int_equal(s.bytes, retained_msg_size(m) + retained_index_bytes(&s));
	assert_true(retained_index_bytes(&s) > 0);

	assert_int_equal(put(&s, "a/b", ""), 0);
	assert_null(retained_find(&s, "a/b", 3));
	assert_int_equal(s.count, 0);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(put(&s, "nothing/here", ""), 0); /* deleting nothing is fine */
	retained_deinit(&s);
}

static void test_bound(void **state)
{
	struct retained_store s;
	char buf[64];

	retained_init(&s, 0);
	assert_int_equal(put(&s, "t", "x"), -ENOSPC);
	assert_int_equal(s.count, 0);

	retained_set_max(&s, 1 << 20);
	assert_int_equal(put(&s, "t", "x"), 0);
	size_t one = s.bytes;
	retained_set_max(&s, one * 2);
	assert_int_equal(put(&s, "u", "y"), 0);
	assert_true(s.bytes < one * 2);		      /* the first paid for the index too */
	retained_set_max(&s, s.bytes);		      /* full: room for two, as they are */
	assert_int_equal(put(&s, "v", "z"), -ENOSPC); /* third does not fit */
	assert_int_equal(s.count, 2);
	assert_int_equal(put(&s, "u", "much longer payload"), -ENOSPC);
	payload_of(retained_find(&s, "u", 1), buf, sizeof(buf));
	assert_string_equal(buf, "y");		/* refused replacement leaves the old one */
	assert_int_equal(put(&s, "u", "w"), 0); /* same size replacement fits */
	assert_int_equal(put(&s, "t", ""), 0);
	assert_int_equal(put(&s, "v", "z"), 0); /* room again after a delete */

	retained_set_max(&s, 1); /* lowering evicts nothing */
	assert_int_equal(s.count, 2);
	assert_int_equal(put(&s, "u", "q"), -ENOSPC);
	retained_deinit(&s);
}

struct seen {
	char topics[16][32];
	int n;
	int stop_after;
};

static int collect(const struct retained_msg *m, void *ud)
{
	struct seen *seen = ud;
	if (seen->stop_after && seen->n == seen->stop_after)
		return -ECANCELED;
	assert_true(seen->n < 16);
	memcpy(seen->topics[seen->n], m->topic, m->topic_len);
	seen->topics[seen->n][m->topic_len] = '\0';
	seen->n++;
	return 0;
}

static int match(struct retained_store *s, const char *pattern, struct seen *seen)
{
	memset(seen, 0, sizeof(*seen));
	return retained_foreach_match(s, pattern, strlen(pattern), collect, seen);
}

static void test_match(void **state)
{
	struct retained_store s;
	struct seen seen;

	retained_init(&s, 1 << 20);
	assert_int_equal(match(&s, "#", &seen), 0);
	assert_int_equal(put(&s, "sensors/kitchen/temp", "21"), 0);
	assert_int_equal(put(&s, "sensors/hall/temp", "19"), 0);
	assert_int_equal(put(&s, "sensors/hall/hum", "40"), 0);
	assert_int_equal(put(&s, "other", "o"), 0);
	assert_int_equal(put(&s, "sensors/kitchen/temp", "22"), 0); /* keeps its place */

	assert_int_equal(match(&s, "sensors/+/temp", &seen), 2);
	assert_string_equal(seen.topics[0], "sensors/kitchen/temp");
	assert_string_equal(seen.topics[1], "sensors/hall/temp");
	assert_int_equal(match(&s, "sensors/#", &seen), 3);
	assert_int_equal(match(&s, "#", &seen), 4);
	assert_string_equal(seen.topics[3], "other");
	assert_int_equal(match(&s, "sensors/hall/hum", &seen), 1);
	assert_string_equal(seen.topics[0], "sensors/hall/hum");
	assert_int_equal(match(&s, "sensors/hall", &seen), 0);

	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 1;
	assert_int_equal(retained_foreach_match(&s, "#", 1, collect, &seen), -ECANCELED);
	retained_deinit(&s);
}

static void test_reserved_topics(void **state)
{
	struct retained_store s;
	struct seen seen;

	retained_init(&s, 1 << 20);
	assert_int_equal(put(&s, "$lbus/x", "1"), 0);
	assert_int_equal(put(&s, "a", "2"), 0);
	assert_int_equal(match(&s, "#", &seen), 1);
	assert_string_equal(seen.topics[0], "a");
	assert_int_equal(match(&s, "$lbus/#", &seen), 1);
	assert_string_equal(seen.topics[0], "$lbus/x");
	retained_deinit(&s);
}

static int count_one(const struct retained_msg *m, void *ud)
{
	return 0;
}

static void test_many(void **state)
{
	struct retained_store s;
	char topic[32];

	retained_init(&s, 64u << 20);
	for (int i = 0; i < 5000; i++) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		assert_int_equal(put(&s, topic, "v"), 0);
	}
	assert_int_equal(s.count, 5000);
	for (int i = 0; i < 5000; i += 2) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		assert_int_equal(put(&s, topic, ""), 0);
	}
	assert_int_equal(s.count, 2500);
	assert_null(retained_find(&s, "t/0", 3));
	assert_non_null(retained_find(&s, "t/4999", 6));
	assert_int_equal(retained_foreach_match(&s, "t/+", 3, count_one, NULL), 2500);
	retained_deinit(&s);
	assert_int_equal(s.count, 0);
	assert_int_equal(s.bytes, 0);
}

static int setup(void **state)
{
	msgpool_init(&pool);
	return 0;
}

/* Every body must be back in the pool: the store leaks no reference. */
static int teardown(void **state)
{
	assert_int_equal(pool.live, 0);
	msgpool_deinit(&pool);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replace_and_delete),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_reserved_topics),
	    cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
