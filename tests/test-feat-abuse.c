/* SPDX-License-Identifier: MIT */
/*
 * One hostile local client against a real lbusd (issue 7), each attack with
 * the figure it must stay within:
 *  - logs cannot be flooded: hundreds of connections closed for a protocol
 *    error, and hundreds refused by max_clients, cost the log a line or
 *    two a second per kind; every event is still accounted for (the lines
 *    written plus the "N more ... suppressed" summaries equal the attempts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define N_FLOOD 400

/* Lines of the broker's log that hold needle. */
static int log_lines_with(const char *log, const char *needle)
{
	int n = 0;

	for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Sum of N over the log's "N more <what> suppressed" lines. */
static unsigned long long suppressed_sum(const char *log, const char *what)
{
	char needle[128];
	unsigned long long sum = 0;

	snprintf(needle, sizeof(needle), " more %s suppressed", what);
	for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
		const char *q = p;
		while (q > log && q[-1] >= '0' && q[-1] <= '9')
			q--;
		sum += strtoull(q, NULL, 10);
	}
	return sum;
}

static int count_lines(const char *log)
{
	int n = 0;

	for (const char *p = log; *p; p++)
		n += *p == '\n';
	return n;
}

/* Wait until the log holds a summary for `what` (the window after the
 * flood ends) and the counts add up to attempts; returns the log. */
static char *wait_accounted(const struct lbt_broker *b, const char *line, const char *what, int attempts)
{
	for (int64_t t0 = lbt_now_ms(); lbt_now_ms() - t0 < lbt_ms(5000); lbt_sleep_ms(50)) {
		char *log = lbt_broker_log(b);

		assert_non_null(log);
		if (log_lines_with(log, line) + (long long)suppressed_sum(log, what) >= attempts)
			return log;
		free(log);
	}
	return lbt_broker_log(b);
}

static void test_log_flood_protocol_errors(void **state)
{
	(void)state;
	struct lbt_broker b;
	static const uint8_t zero_frame[4] = {0};
	int64_t t0;

	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	t0 = lbt_now_ms();
	for (int i = 0; i < N_FLOOD; i++) {
		int fd = lbt_raw_connect(&b);
		struct lbt_error e;

		assert_true(fd >= 0);
		assert_int_equal(lbt_raw_send_bytes(fd, zero_frame, sizeof(zero_frame)), 0);
		assert_int_equal(lbt_raw_expect_close(fd, lbt_ms(5000), &e), 0);
		assert_true(e.seen && e.fatal);
		close(fd);
	}
	int64_t secs = (lbt_now_ms() - t0) / 1000 + 1;
	char *log = wait_accounted(&b, "zero-length frame", "client errors", N_FLOOD);
	int written = log_lines_with(log, "zero-length frame");
	unsigned long long suppressed = suppressed_sum(log, "client errors");
	int summaries = log_lines_with(log, "more client errors suppressed");
	fprintf(stderr,
		"%d protocol errors in %lld s: %d lines written, %d summaries, %llu suppressed; %d log lines "
		"in all\n",
		N_FLOOD, (long long)secs, written, summaries, suppressed, count_lines(log));
	assert_int_equal(written + (long long)suppressed, N_FLOOD);
	assert_true(written >= 1 && written <= secs + 1);
	assert_true(summaries >= 1 && summaries <= secs + 1);
	free(log);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "after/flood"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_log_flood_refusals(void **state)
{
	(void)state;
	struct lbt_broker b;
	lbus *hold;
	int64_t t0;

	assert_int_equal(lbt_broker_start_config(&b, "max_clients = 1\n"), 0);
	assert_int_equal(lbt_connect(&b, &hold), 0);
	t0 = lbt_now_ms();
	for (int i = 0; i < N_FLOOD; i++) {
		int fd = lbt_raw_connect(&b);
		struct lbt_error e;

		assert_true(fd >= 0);
		assert_int_equal(lbt_raw_expect_close(fd, lbt_ms(5000), &e), 0);
		assert_int_equal(e.code, LBUS__ERROR_CODE__ERR_LIMIT);
		close(fd);
	}
	int64_t secs = (lbt_now_ms() - t0) / 1000 + 1;
	char *log = wait_accounted(&b, "refused connection", "connection refusals", N_FLOOD);
	int written = log_lines_with(log, "refused connection");
	unsigned long long suppressed = suppressed_sum(log, "connection refusals");
	fprintf(stderr,
		"%d refused connections in %lld s: %d lines written, %llu suppressed; %d log lines in all\n",
		N_FLOOD, (long long)secs, written, suppressed, count_lines(log));
	assert_int_equal(written + (long long)suppressed, N_FLOOD);
	assert_true(written >= 1 && written <= secs + 1);
	free(log);
	lbus_close(hold);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_flood_protocol_errors),
	    cmocka_unit_test(test_log_flood_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
