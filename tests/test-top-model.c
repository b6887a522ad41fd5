/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lbus top's model (tools/top-model.c): rates from two
 * hand-made samples (also for a client that appeared, one that left, and a
 * broker that restarted), the broker's CPU percentage, every sort key's
 * order and tie-break, the sort cycle, and the text of numbers, titles,
 * rows and summary lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "top-model.h"

/* ---- hand-made samples ----------------------------------------------------- */

#define MAX_CLIENTS 8

struct sample {
	struct lbus_broker_stats broker;
	struct lbus_client_info clients[MAX_CLIENTS];
	struct lbus_client_list list;
};

static const char *const pub_names[] = {"zeta.pub"};
static const char *const sub_names[] = {"alpha.sub", "beta"};

static void sample_init(struct sample *s, uint64_t uptime_ms)
{
	memset(s, 0, sizeof(*s));
	s->broker.uptime_ms = uptime_ms;
	s->list.clients = s->clients;
}

/* Add a client with these counters; returns it for more settings. */
static struct lbus_client_info *add(struct sample *s, uint64_t id, const char *command, uint64_t in,
				    uint64_t out)
{
	struct lbus_client_info *c = &s->clients[s->list.n_clients++];

	c->id = id;
	c->pid = (pid_t)(1000 + id);
	c->uid = 1000;
	c->command = command;
	c->counters.msgs_in = in;
	c->counters.msgs_out = out;
	c->counters.bytes_in = in * 100;
	c->counters.bytes_out = out * 10;
	return c;
}

static const struct top_row *row_of(const struct top_model *m, uint64_t id)
{
	for (size_t i = 0; i < m->n_rows; i++)
		if (m->rows[i].info->id == id)
			return &m->rows[i];
	return NULL;
}

static void assert_order(const struct top_model *m, const uint64_t *ids, size_t n)
{
	assert_int_equal(m->n_rows, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(m->rows[i].info->id, ids[i]);
}

/* ---- keys -------------------------------------------------------------------------- */

static void test_keys(void **state)
{
	for (int k = 0; k < TOP_KEY_COUNT; k++) {
		assert_int_equal(top_key_parse(top_key_name((enum top_key)k)), k);
		assert_int_equal(top_key_next((enum top_key)k), (k + 1) % TOP_KEY_COUNT);
	}
	assert_int_equal(top_key_parse("in"), TOP_KEY_IN);
	assert_int_equal(top_key_parse("bytes_out"), TOP_KEY_BYTES_OUT);
	assert_int_equal(top_key_parse("IN"), -1);
	assert_int_equal(top_key_parse(""), -1);
	assert_int_equal(top_key_parse(NULL), -1);
	assert_int_equal(TOP_KEY_DEFAULT, TOP_KEY_IN);
	assert_int_equal(top_key_next(TOP_KEY_IN), TOP_KEY_OUT);
}

/* ---- rates -------------------------------------------------------------------------- */

static void test_first_sample_has_no_rates(void **state)
{
	struct top_model m;
	struct sample s;

	sample_init(&s, 5000);
	add(&s, 1, "pub", 100, 0);
	s.broker.counters.msgs_in = 100;
	top_model_init(&m, TOP_KEY_DEFAULT);
	assert_int_equal(top_model_update(&m, &s.broker, &s.list, 10000), 0);
	assert_false(m.has_rates);
	assert_int_equal(m.n_rows, 1);
	assert_true(m.rows[0].in == 0);
	assert_true(m.totals.msgs_in == 0);
	assert_int_equal(m.totals.broker.counters.msgs_in, 100);
	top_model_deinit(&m);
}

static void test_rates_between_samples(void **state)
{
	struct top_model m;
	struct sample a, b;

	sample_init(&a, 5000);
	add(&a, 1, "pub", 100, 0);
	add(&a, 2, "sub", 0, 100);
	add(&a, 3, "gone", 7, 7);
	a.broker.counters = (struct lbus_counters){.msgs_in = 107, .msgs_out = 107, .dropped = 4};
	a.broker.cpu_user_us = 1000000;
	a.broker.cpu_system_us = 500000;
	top_model_init(&m, TOP_KEY_DEFAULT);
	assert_int_equal(top_model_update(&m, &a.broker, &a.list, 10000), 0);

	/* 500 ms later: pub published 100 more, sub received them, a new
	 * client published 10 (counted from zero), client 3 left. */
	sample_init(&b, 5500);
	add(&b, 1, "pub", 200, 0)->counters.dropped = 0;
	add(&b, 2, "sub", 0, 200)->counters.dropped = 6;
	add(&b, 4, "new", 10, 0);
	b.broker.counters = (struct lbus_counters){.msgs_in = 217, .msgs_out = 207, .dropped = 10};
	b.broker.cpu_user_us = 1100000;
	b.broker.cpu_system_us = 550000; /* 150 ms of CPU in 500 ms */
	assert_int_equal(top_model_update(&m, &b.broker, &b.list, 10500), 0);

	assert_true(m.has_rates);
	assert_int_equal(m.n_rows, 3);
	assert_null(row_of(&m, 3));
	const struct top_row *pub = row_of(&m, 1), *sub = row_of(&m, 2), *nw = row_of(&m, 4);
	assert_non_null(pub);
	assert_non_null(sub);
	assert_non_null(nw);
	assert_true(pub->in == 200.0);
	assert_true(pub->out == 0.0);
	assert_true(pub->bytes_in == 20000.0);
	assert_true(sub->out == 200.0);
	assert_true(sub->bytes_out == 2000.0);
	assert_true(sub->drops == 12.0);
	assert_true(nw->in == 20.0);
	assert_true(m.totals.msgs_in == 220.0);
	assert_true(m.totals.deliveries == 200.0);
	assert_true(m.totals.drops == 12.0);
	assert_true(m.totals.cpu_percent > 29.999 && m.totals.cpu_percent < 30.001);

	/* Default sort: messages in per second, descending. */
	const uint64_t order[] = {1, 4, 2};
	assert_order(&m, order, 3);
	top_model_deinit(&m);
}

static void test_broker_restart_resets_rates(void **state)
{
	struct top_model m;
	struct sample a, b;

	sample_init(&a, 90000);
	add(&a, 1, "pub", 1000, 0);
	a.broker.counters.msgs_in = 1000;
	top_model_init(&m, TOP_KEY_DEFAULT);
	assert_int_equal(top_model_update(&m, &a.broker, &a.list, 1000), 0);
	sample_init(&b, 200); /* a new broker: counters start again */
	add(&b, 1, "pub", 3, 0);
	b.broker.counters.msgs_in = 3;
	assert_int_equal(top_model_update(&m, &b.broker, &b.list, 2000), 0);
	assert_false(m.has_rates);
	assert_true(m.rows[0].in == 0);
	assert_true(m.totals.msgs_in == 0);
	/* the next sample has rates again, from the new broker's counters */
	sample_init(&a, 1200);
	add(&a, 1, "pub", 53, 0);
	a.broker.counters.msgs_in = 53;
	assert_int_equal(top_model_update(&m, &a.broker, &a.list, 3000), 0);
	assert_true(m.has_rates);
	assert_true(m.rows[0].in == 50.0);
	assert_true(m.totals.msgs_in == 50.0);
	top_model_deinit(&m);
}

/* With a long interval, a restarted broker may be older than the previous
 * one was: it is still younger than that one would be now. */
static void test_restart_within_a_long_interval(void **state)
{
	struct lbus_broker_stats before = {.uptime_ms = 10000}, now = {.uptime_ms = 50000};

	assert_true(top_broker_restarted(&before, &now, 60000));
	now.uptime_ms = 70000;
	assert_false(top_broker_restarted(&before, &now, 60000));
	now.uptime_ms = 69000; /* the answers took a while */
	assert_false(top_broker_restarted(&before, &now, 60000));
	now.uptime_ms = 10900; /* a short interval, a slow answer */
	assert_false(top_broker_restarted(&before, &now, 1000));
	now.uptime_ms = 9999;
	assert_true(top_broker_restarted(&before, &now, 0));
}

/* ---- sorting ------------------------------------------------------------------------ */

static void test_sort_keys(void **state)
{
	struct top_model m;
	struct sample a, b;

	sample_init(&a, 1000);
	add(&a, 5, "bbb", 0, 0);
	add(&a, 2, "aaa", 0, 0);
	add(&a, 9, "ccc", 0, 0);
	top_model_init(&m, TOP_KEY_ID);
	assert_int_equal(top_model_update(&m, &a.broker, &a.list, 0), 0);

	sample_init(&b, 2000);
	struct lbus_client_info *c5 = add(&b, 5, "bbb", 10, 30);
	struct lbus_client_info *c2 = add(&b, 2, "aaa", 20, 30);
	struct lbus_client_info *c9 = add(&b, 9, "ccc", 10, 5);
	c5->queued_bytes = 300;
	c2->queued_bytes = 100;
	c9->queued_bytes = 200;
	c5->queued_bytes_max = 1;
	c2->queued_bytes_max = 3;
	c9->queued_bytes_max = 2;
	c9->counters.dropped = 8;
	c5->blocked_on = 9;
	c5->names = pub_names;
	c5->n_names = 1;
	c2->names = sub_names;
	c2->n_names = 2;
	c9->uid = 0;
	assert_int_equal(top_model_update(&m, &b.broker, &b.list, 1000), 0);

	const uint64_t by_id[] = {2, 5, 9};
	assert_order(&m, by_id, 3);
	top_model_sort(&m, TOP_KEY_IN); /* 20, then 10 and 10: ties by id */
	const uint64_t by_in[] = {2, 5, 9};
	assert_order(&m, by_in, 3);
	top_model_sort(&m, TOP_KEY_OUT); /* 30, 30, 5 */
	const uint64_t by_out[] = {2, 5, 9};
	assert_order(&m, by_out, 3);
	top_model_sort(&m, TOP_KEY_BYTES_IN); /* 2000, 1000, 1000 */
	assert_order(&m, by_in, 3);
	top_model_sort(&m, TOP_KEY_QUEUE);
	const uint64_t by_queue[] = {5, 9, 2};
	assert_order(&m, by_queue, 3);
	top_model_sort(&m, TOP_KEY_QMAX);
	const uint64_t by_qmax[] = {2, 9, 5};
	assert_order(&m, by_qmax, 3);
	top_model_sort(&m, TOP_KEY_DROPS);
	const uint64_t by_drops[] = {9, 2, 5};
	assert_order(&m, by_drops, 3);
	top_model_sort(&m, TOP_KEY_BLOCKED);
	const uint64_t by_blocked[] = {5, 2, 9};
	assert_order(&m, by_blocked, 3);
	top_model_sort(&m, TOP_KEY_COMMAND);
	const uint64_t by_command[] = {2, 5, 9};
	assert_order(&m, by_command, 3);
	top_model_sort(&m, TOP_KEY_NAMES); /* alpha.sub, zeta.pub, then unnamed */
	const uint64_t by_names[] = {2, 5, 9};
	assert_order(&m, by_names, 3);
	top_model_sort(&m, TOP_KEY_UID);
	const uint64_t by_uid[] = {9, 2, 5};
	assert_order(&m, by_uid, 3);
	top_model_sort(&m, TOP_KEY_PID);
	assert_order(&m, by_id, 3);
	assert_int_equal(m.sort, TOP_KEY_PID);

	/* The order survives the next update. */
	top_model_sort(&m, TOP_KEY_QUEUE);
	assert_int_equal(top_model_update(&m, &b.broker, &b.list, 2000), 0);
	assert_order(&m, by_queue, 3);
	top_model_deinit(&m);
}

/* ---- text ---------------------------------------------------------------------------- */

static void assert_number(double v, unsigned base, const char *want)
{
	char buf[16];

	top_format_number(v, base, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_format_number(void **state)
{
	assert_number(0, 1000, "0");
	assert_number(0.5, 1000, "0.5");
	assert_number(2, 1000, "2.0");
	assert_number(200, 1000, "200");
	assert_number(9999, 1000, "9999");
	assert_number(12345, 1000, "12.3K");
	assert_number(123456, 1000, "123K");
	assert_number(4.5e6, 1000, "4.5M");
	assert_number(1536.0 * 1024, 1024, "1.5M");
	assert_number(3.0 * 1024 * 1024 * 1024, 1024, "3.0G");
}

static void test_format_lines(void **state)
{
	struct top_model m;
	struct sample a, b;
	char titles[512], line[512];
	size_t start, width;

	top_format_titles(titles, sizeof(titles));
	assert_non_null(strstr(titles, "ID"));
	assert_non_null(strstr(titles, "COMMAND"));
	assert_non_null(strstr(titles, "NAMES"));
	top_title_span(TOP_KEY_IN, &start, &width);
	assert_int_equal(strstr(titles, "IN/s") + strlen("IN/s") - titles, start + width);
	top_title_span(TOP_KEY_NAMES, &start, &width);
	assert_int_equal(strstr(titles, "NAMES") - titles, start);

	sample_init(&a, 1000);
	add(&a, 7, "sensor", 0, 0);
	top_model_init(&m, TOP_KEY_DEFAULT);
	assert_int_equal(top_model_update(&m, &a.broker, &a.list, 0), 0);
	top_format_summary(&m, 0, line, sizeof(line));
	assert_non_null(strstr(line, "msgs/s -, deliveries/s -, drops/s -"));

	sample_init(&b, 3723000 + 1000);
	struct lbus_client_info *c = add(&b, 7, "sensor", 200, 0);
	c->names = sub_names;
	c->n_names = 2;
	c->queued_bytes = 2048;
	c->queued_bytes_max = 65536;
	c->blocked_on = 3;
	b.broker.clients = 4;
	b.broker.counters.msgs_in = 200;
	b.broker.counters.msgs_out = 400;
	b.broker.retained = 2;
	b.broker.retained_bytes = 1536;
	b.broker.rss_bytes = 3 * 1024 * 1024;
	b.broker.cpu_user_us = 20000;
	assert_int_equal(top_model_update(&m, &b.broker, &b.list, 1000), 0);

	top_format_summary(&m, 0, line, sizeof(line));
	assert_string_equal(line,
			    "lbus top - up 01:02:04, clients 4, msgs/s 200, deliveries/s 400, drops/s 0");
	top_format_summary(&m, 1, line, sizeof(line));
	assert_string_equal(line,
			    "retained 2 (1536 bytes), subscriptions 0, names 0, broker rss 3.0M cpu 2.0%, "
			    "sort: in");
	top_format_row(&m.rows[0], line, sizeof(line));
	assert_string_equal(line,
			    "     7    1007   1000 sensor              200       0   19.5K       0   2048  "
			    "64.0K      0       3 alpha.sub,beta");
	/* a row cut short by a small buffer stays a string */
	top_format_row(&m.rows[0], line, 12);
	assert_int_equal(strlen(line), 11);
	top_model_deinit(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_first_sample_has_no_rates),
	    cmocka_unit_test(test_rates_between_samples),
	    cmocka_unit_test(test_broker_restart_resets_rates),
	    cmocka_unit_test(test_restart_within_a_long_interval),
	    cmocka_unit_test(test_sort_keys),
	    cmocka_unit_test(test_format_number),
	    cmocka_unit_test(test_format_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
