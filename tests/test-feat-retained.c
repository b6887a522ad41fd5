/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of retained messages (issue 3), through liblbus and the
 * lbus CLI against a real lbusd on a private socket. (The broker's retained
 * store itself has unit tests in test-retained.c.)
 *
 * Asserted, as a user would see it:
 *  - a retained publish reaches a later subscriber first, flagged retained,
 *    with exact and wildcard ('+', '#') patterns; only the last per topic;
 *  - a plain publish is delivered live but does not replace the retained
 *    message; live messages come after the retained ones, not flagged;
 *  - an empty retained payload clears the topic (and is still delivered to
 *    the current subscribers); the retained message outlives its publisher;
 *  - the store is bounded (retained_max in a -c config file): a retain that
 *    does not fit is refused with -ENOSPC (`lbus pub -r` exits 1) yet
 *    delivered live, and fits again once space is cleared;
 *  - `lbus pub -r` then `lbus sub` (exact and wildcard) prints it; `--json`
 *    shows "retained": true for it and not for a live one; after
 *    `lbus pub -r TOPIC ''` a new `lbus sub -t 1` gets nothing (status 4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_GOT 16

/* The captured output of a child, "" when it printed nothing. */
static const char *txt(const char *s)
{
	return s ? s : "";
}

/* ---- collecting deliveries ------------------------------------------------- */

struct got_msg {
	char topic[64];
	char payload[640];
	size_t len;
	bool retained;
	bool retain; /* flagged LBUS_RETAIN by its publisher */
};

struct inbox {
	struct got_msg msgs[MAX_GOT];
	int n;
	int overflow;
};

static void on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct inbox *in = userdata;
	if (in->n >= MAX_GOT || msg->len >= sizeof(in->msgs[0].payload)) {
		in->overflow++;
		return;
	}
	struct got_msg *g = &in->msgs[in->n++];
	snprintf(g->topic, sizeof(g->topic), "%s", msg->topic);
	if (msg->len)
		memcpy(g->payload, msg->data, msg->len);
	g->payload[msg->len] = '\0';
	g->len = msg->len;
	g->retained = msg->retained;
	g->retain = msg->retain;
}

/* A new connection subscribed to pattern; every retained message it gets is
 * dispatched (and collected in *in) when this returns. */
static lbus *subscribe_new(const struct lbt_broker *b, const char *pattern, struct inbox *in)
{
	lbus *bus;
	memset(in, 0, sizeof(*in));
	assert_int_equal(lbt_connect(b, &bus), 0);
	assert_true(lbus_subscribe(bus, pattern, on_msg, in, NULL, NULL) == 0);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
	return bus;
}

static void assert_got(const struct inbox *in, int i, const char *topic, const char *payload, bool retained)
{
	assert_true(i >= 0 && i < in->n);
	assert_string_equal(in->msgs[i].topic, topic);
	assert_string_equal(in->msgs[i].payload, payload);
	assert_int_equal(in->msgs[i].retained, retained);
}

/* Index of the message on topic, or -1. */
static int find_topic(const struct inbox *in, const char *topic)
{
	for (int i = 0; i < in->n; i++)
		if (strcmp(in->msgs[i].topic, topic) == 0)
			return i;
	return -1;
}

static void publish(lbus *bus, const char *topic, const char *payload, unsigned flags)
{
	assert_int_equal(lbus_publish(bus, topic, payload, strlen(payload), flags), 0);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
}

/* ---- fixture (lbt_setup_config, lbt_teardown: harness.h) ----------------------- */

/* A broker whose retained store holds at most 2000 bytes: one message of
 * 600 bytes, not two (retained_max counts the heap bytes the store really
 * takes: such a message takes about 1 KiB with its share of the index). */
static int setup_small_store(void **state)
{
	return lbt_setup_config(state, "retained_max = 2000\n");
}

/* ---- library ------------------------------------------------------------------ */

static void test_retained_exact_wildcard_last(void **state)
{
	struct lbt_broker *b = *state;
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);
	publish(pub, "ret/a/1", "one", LBUS_RETAIN);
	publish(pub, "ret/a/1", "one-b", LBUS_RETAIN);
	publish(pub, "ret/b/2", "two", LBUS_RETAIN);
	publish(pub, "ret/c/3", "plain", 0);

	struct inbox exact, plus, all;
	lbus *s1 = subscribe_new(b, "ret/a/1", &exact);
	assert_int_equal(exact.n, 1);
	assert_got(&exact, 0, "ret/a/1", "one-b", true);

	lbus *s2 = subscribe_new(b, "ret/+/2", &plus);
	assert_int_equal(plus.n, 1);
	assert_got(&plus, 0, "ret/b/2", "two", true);

	lbus *s3 = subscribe_new(b, "ret/#", &all);
	assert_int_equal(all.n, 2);
	assert_got(&all, find_topic(&all, "ret/a/1"), "ret/a/1", "one-b", true);
	assert_got(&all, find_topic(&all, "ret/b/2"), "ret/b/2", "two", true);

	/* A live publish comes after them, not flagged, and does not replace
	 * the retained one. */
	publish(pub, "ret/a/1", "live", 0);
	assert_int_equal(lbus_sync(s3, lbt_ms(5000)), 0);
	assert_int_equal(all.n, 3);
	assert_got(&all, 2, "ret/a/1", "live", false);
	struct inbox again;
	lbus *s4 = subscribe_new(b, "ret/a/+", &again);
	assert_int_equal(again.n, 1);
	assert_got(&again, 0, "ret/a/1", "one-b", true);

	/* Nothing arrived twice on the earlier subscriptions. */
	assert_int_equal(lbus_sync(s1, lbt_ms(5000)), 0);
	assert_int_equal(exact.n, 2);
	assert_got(&exact, 1, "ret/a/1", "live", false);
	assert_int_equal(lbus_sync(s2, lbt_ms(5000)), 0);
	assert_int_equal(plus.n, 1);

	lbus_close(s1);
	lbus_close(s2);
	lbus_close(s3);
	lbus_close(s4);
	lbus_close(pub);
}

/* msg->retain tells what the publisher flagged, live or from the store: a
 * bridge needs it to forward a live retained publish as retained. */
static void test_retain_flag_as_published(void **state)
{
	struct lbt_broker *b = *state;
	lbus *pub;
	struct inbox live;
	assert_int_equal(lbt_connect(b, &pub), 0);
	lbus *sub = subscribe_new(b, "flag/#", &live);
	publish(pub, "flag/r", "kept", LBUS_RETAIN);
	publish(pub, "flag/p", "plain", 0);
	assert_int_equal(lbus_sync(sub, lbt_ms(5000)), 0);
	assert_int_equal(live.n, 2);
	assert_got(&live, 0, "flag/r", "kept", false);
	assert_true(live.msgs[0].retain);
	assert_got(&live, 1, "flag/p", "plain", false);
	assert_false(live.msgs[1].retain);

	struct inbox later;
	lbus *sub2 = subscribe_new(b, "flag/#", &later);
	assert_int_equal(later.n, 1);
	assert_got(&later, 0, "flag/r", "kept", true);
	assert_true(later.msgs[0].retain);
	lbus_close(sub2);
	lbus_close(sub);
	lbus_close(pub);
}

static void test_retained_clear_and_outlive_publisher(void **state)
{
	struct lbt_broker *b = *state;
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);
	publish(pub, "clr/keep", "kept", LBUS_RETAIN);
	publish(pub, "clr/gone", "soon gone", LBUS_RETAIN);

	struct inbox live;
	lbus *s1 = subscribe_new(b, "clr/#", &live);
	assert_int_equal(live.n, 2);

	/* Clearing is still delivered to the current subscribers ... */
	publish(pub, "clr/gone", "", LBUS_RETAIN);
	assert_int_equal(lbus_sync(s1, lbt_ms(5000)), 0);
	assert_int_equal(live.n, 3);
	assert_got(&live, 2, "clr/gone", "", false);

	/* ... and the publisher may leave: what is retained stays. */
	lbus_close(pub);
	struct inbox later;
	lbus *s2 = subscribe_new(b, "clr/#", &later);
	assert_int_equal(later.n, 1);
	assert_got(&later, 0, "clr/keep", "kept", true);
	struct inbox cleared;
	lbus *s3 = subscribe_new(b, "clr/gone", &cleared);
	assert_int_equal(cleared.n, 0);

	/* A bare '#' sees it too (and no broker '$' topics). */
	struct inbox every;
	lbus *s4 = subscribe_new(b, "#", &every);
	assert_int_equal(every.n, 1);
	assert_got(&every, 0, "clr/keep", "kept", true);

	lbus_close(s1);
	lbus_close(s2);
	lbus_close(s3);
	lbus_close(s4);
}

/* ---- CLI --------------------------------------------------------------------- */

/* Run the CLI to completion and check its exit status; returns the result
 * (free with lbt_proc_free). */
static struct lbt_proc run_ok(const struct lbt_broker *b, int want_status, const char *const *args)
{
	struct lbt_proc p;
	assert_int_equal(lbt_cli_runv(b, NULL, 0, lbt_ms(10000), &p, args), 0);
	if (p.exit_code != want_status)
		fprintf(stderr, "lbus %s %s: status %d, stderr: %s\n", args[0], args[1], p.exit_code,
			txt(p.err));
	assert_int_equal(p.exit_code, want_status);
	return p;
}

/* Is key followed by `: true` in the JSON text line? */
static bool json_key_true(const char *line, const char *key)
{
	char quoted[64];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	const char *k = strstr(line, quoted);
	if (!k)
		return false;
	k += strlen(quoted);
	while (isspace((unsigned char)*k))
		k++;
	if (*k++ != ':')
		return false;
	while (isspace((unsigned char)*k))
		k++;
	return strncmp(k, "true", 4) == 0;
}

/* ---- the store's bound, library and CLI ---------------------------------------- */

static void on_error(lbus *bus, int err, const char *what, void *userdata)
{
	*(int *)userdata = err;
}

static void test_retained_store_is_bounded(void **state)
{
	struct lbt_broker *b = *state;
	char big[601];
	memset(big, 'b', 600);
	big[600] = '\0';
	lbus *pub;
	int err = 0;
	assert_int_equal(lbt_connect(b, &pub), 0);
	lbus_on_error(pub, on_error, &err);
	struct inbox live;
	lbus *s1 = subscribe_new(b, "big/#", &live);

	publish(pub, "big/a", big, LBUS_RETAIN);
	assert_int_equal(err, 0);
	/* Does not fit: refused as retained (-ENOSPC), still delivered live. */
	publish(pub, "big/b", big, LBUS_RETAIN);
	assert_int_equal(err, -ENOSPC);
	assert_int_equal(lbus_sync(s1, lbt_ms(5000)), 0);
	assert_int_equal(live.n, 2);
	assert_got(&live, 1, "big/b", big, false);

	struct inbox later;
	lbus *s2 = subscribe_new(b, "big/#", &later);
	assert_int_equal(later.n, 1);
	assert_got(&later, 0, "big/a", big, true);

	/* The CLI says so with status 1; once there is room it works. */
	struct lbt_proc p;
	p = run_ok(b, 1, (const char *const[]){"pub", "-r", "big/c", big, NULL});
	assert_true(p.err_len > 0);
	lbt_proc_free(&p);
	publish(pub, "big/a", "", LBUS_RETAIN);
	p = run_ok(b, 0, (const char *const[]){"pub", "-r", "big/c", big, NULL});
	lbt_proc_free(&p);
	struct inbox last;
	lbus *s3 = subscribe_new(b, "big/#", &last);
	assert_int_equal(last.n, 1);
	assert_got(&last, 0, "big/c", big, true);

	lbus_close(s1);
	lbus_close(s2);
	lbus_close(s3);
	lbus_close(pub);
}

static void test_cli_pub_retain_then_sub(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc p;

	p = run_ok(b, 0, (const char *const[]){"pub", "-r", "cli/r/x", "hello", NULL});
	lbt_proc_free(&p);
	p = run_ok(b, 0, (const char *const[]){"pub", "cli/r/y", "-r", "first", NULL});
	lbt_proc_free(&p);
	p = run_ok(b, 0, (const char *const[]){"pub", "cli/r/y", "-r", "world", NULL});
	lbt_proc_free(&p);

	p = run_ok(b, 0, (const char *const[]){"sub", "cli/r/x", "-n", "1", "-t", "5", NULL});
	assert_string_equal(txt(p.out), "hello\n");
	lbt_proc_free(&p);

	/* Wildcards: both topics, only the last message of cli/r/y. */
	p = run_ok(b, 0, (const char *const[]){"sub", "cli/r/#", "-t", "1", NULL});
	assert_true(strcmp(txt(p.out), "hello\nworld\n") == 0 || strcmp(txt(p.out), "world\nhello\n") == 0);
	lbt_proc_free(&p);
	p = run_ok(b, 0, (const char *const[]){"sub", "cli/+/y", "-n", "1", "-t", "5", NULL});
	assert_string_equal(txt(p.out), "world\n");
	lbt_proc_free(&p);
}

static void test_cli_retained_json_and_clear(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc p;
	p = run_ok(b, 0, (const char *const[]){"pub", "-r", "cli/j", "kept", NULL});
	lbt_proc_free(&p);

	/* The retained message first, flagged; then a live one, not flagged. */
	struct lbt_proc sub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "cli/j", "--json", "-n", "2", NULL), 0);
	assert_int_equal(lbt_proc_read_lines(&sub, 1, lbt_ms(5000)), 0);
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);
	publish(pub, "cli/j", "live", 0);
	assert_int_equal(lbt_proc_wait(&sub, lbt_ms(5000)), 0);
	assert_int_equal(sub.exit_code, 0);
	char *second = strchr(sub.out, '\n');
	assert_non_null(second);
	*second++ = '\0';
	assert_non_null(strstr(sub.out, "\"kept\""));
	assert_non_null(strstr(sub.out, "\"cli/j\""));
	assert_true(json_key_true(sub.out, "retained"));
	assert_non_null(strstr(second, "\"live\""));
	assert_false(json_key_true(second, "retained"));
	lbt_proc_free(&sub);

	/* An empty retained payload clears it: a new subscriber gets nothing. */
	p = run_ok(b, 0, (const char *const[]){"pub", "-r", "cli/j", "", NULL});
	lbt_proc_free(&p);
	p = run_ok(b, 4, (const char *const[]){"sub", "cli/j", "-t", "1", NULL});
	assert_string_equal(txt(p.out), "");
	lbt_proc_free(&p);
	lbus_close(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_retained_exact_wildcard_last, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_retain_flag_as_published, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_retained_clear_and_outlive_publisher, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_retained_store_is_bounded, setup_small_store, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_pub_retain_then_sub, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_retained_json_and_clear, lbt_setup, lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
