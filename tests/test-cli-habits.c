/* SPDX-License-Identifier: MIT */
/*
 * What a new user of the lbus CLI meets first (issue 9):
 *  - `lbus wait` without NAME returns as soon as a broker answers, so
 *    `lbusd & lbus wait -t 5 && lbus ...` does not race; with no broker it
 *    times out with status 4;
 *  - `lbus publish`, `subscribe` and `request` are pub, sub and call;
 *  - a mistyped command or long option gets "did you mean", status 2, and a
 *    word like nothing gets no misleading hint;
 *  - `lbus --version` and `lbusd --version` print the same version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *txt(const char *s)
{
	return s ? s : "";
}

static void test_wait_for_broker(void **state)
{
	struct lbt_broker b;
	struct lbt_proc w;

	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_path(b.sock, b.dir, "bus.sock"), 0);
	assert_int_equal(lbt_cli_spawn(&w, &b, "wait", "-t", "10", NULL), 0);
	lbt_sleep_ms(300);
	assert_false(lbt_proc_exited(&w)); /* nobody listens yet */
	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbt_proc_wait(&w, lbt_ms(5000)), 0);
	fprintf(stderr, "wait returned %d, %lld ms after the broker: %s", w.exit_code,
		(long long)(lbt_now_ms() - t0), txt(w.err));
	assert_int_equal(w.exit_code, 0);
	lbt_proc_free(&w);
	/* With a broker already there: at once. */
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &w, "wait", "-t", "1", NULL), 0);
	assert_int_equal(w.exit_code, 0);
	lbt_proc_free(&w);
	assert_int_equal(lbt_broker_stop(&b), 0);

	/* No broker at all: status 4 after the time limit. */
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_path(b.sock, b.dir, "bus.sock"), 0);
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &w, "wait", "-t", "0.3", NULL), 0);
	assert_int_equal(w.exit_code, 4);
	assert_non_null(strstr(txt(w.err), "no broker answered"));
	lbt_proc_free(&w);
	lbt_broker_kill(&b);
}

static void test_aliases(void **state)
{
	struct lbt_broker b;
	struct lbt_proc sub, r;

	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	assert_int_equal(lbt_cli_spawn(&sub, &b, "subscribe", "al/t", NULL), 0);
	assert_true(lbt_sub_ready(&b, &sub, "al/t", lbt_ms(5000)) >= 0);
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &r, "publish", "al/t", "via-alias", NULL), 0);
	assert_int_equal(r.exit_code, 0);
	lbt_proc_free(&r);
	assert_true(lbt_proc_read_until(&sub, "via-alias\n", 0, lbt_ms(5000)) >= 0);
	lbt_proc_free(&sub);

	struct lbt_proc srv;
	assert_int_equal(lbt_cli_spawn(&srv, &b, "serve", "al.upper", "--", "tr", "a-z", "A-Z", NULL), 0);
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &r, "wait", "al.upper", "-t", "5", NULL), 0);
	assert_int_equal(r.exit_code, 0);
	lbt_proc_free(&r);
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &r, "request", "al.upper", "hello", NULL), 0);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(txt(r.out), "HELLO\n");
	lbt_proc_free(&r);
	lbt_proc_free(&srv);

	assert_int_equal(lbt_cli_run(NULL, NULL, 0, lbt_ms(5000), &r, "publish", "--help", NULL), 0);
	assert_int_equal(r.exit_code, 0);
	assert_non_null(strstr(txt(r.out), "Usage: lbus pub"));
	lbt_proc_free(&r);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* lbus ARGS... fails with status 2 and stderr holding want (NULL: no "did
 * you mean" at all). */
static void assert_usage(const char *want, const char *a0, const char *a1, const char *a2)
{
	struct lbt_proc r;
	const char *args[] = {a0, a1, a2, NULL};

	assert_int_equal(lbt_cli_runv(NULL, NULL, 0, lbt_ms(5000), &r, args), 0);
	fprintf(stderr, "lbus %s: %s", a0, txt(r.err));
	assert_int_equal(r.exit_code, 2);
	if (want)
		assert_non_null(strstr(txt(r.err), want));
	else
		assert_null(strstr(txt(r.err), "did you mean"));
	lbt_proc_free(&r);
}

static void test_did_you_mean(void **state)
{
	assert_usage("unknown command 'sbu', did you mean 'sub'?", "sbu", "t", NULL);
	assert_usage("did you mean 'publish'?", "pubish", "t", NULL);
	assert_usage("did you mean 'monitor'?", "moniter", NULL, NULL);
	assert_usage(NULL, "frobnicate", NULL, NULL);
	assert_usage("unknown option '--tiemout', did you mean '--timeout'?", "sub", "t", "--tiemout");
	assert_usage("did you mean '--count'?", "sub", "t", "--cuont=3");
	assert_usage("did you mean '--socket'?", "--sokcet", "x", NULL);
	assert_usage(NULL, "sub", "t", "--zzzzzzzz");
	assert_usage("did you mean 'stats'?", "help", "stast", NULL);
}

static void test_versions(void **state)
{
	struct lbt_proc a, d;
	const char *lbusd[] = {lbt_lbusd_path(), "--version", NULL};

	assert_int_equal(lbt_cli_run(NULL, NULL, 0, lbt_ms(5000), &a, "--version", NULL), 0);
	assert_int_equal(lbt_runv(lbusd, NULL, 0, lbt_ms(5000), &d), 0);
	assert_int_equal(a.exit_code, 0);
	assert_int_equal(d.exit_code, 0);
	assert_true(strncmp(txt(a.out), "lbus ", 5) == 0);
	assert_true(strncmp(txt(d.out), "lbusd ", 6) == 0);
	assert_string_equal(txt(a.out) + 5, txt(d.out) + 6);
	assert_string_equal(txt(d.out), "lbusd " LBUS_TEST_VERSION "\n");
	lbt_proc_free(&a);
	lbt_proc_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wait_for_broker),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_did_you_mean),
	    cmocka_unit_test(test_versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
