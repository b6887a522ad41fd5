/* SPDX-License-Identifier: MIT */
/*
 * One hostile local client against a real lbusd (issue 7), each attack with
 * the figure it must stay within:
 *  - the retained store counts the heap bytes it really takes: filled to
 *    retained_max with small messages (the worst case: the index and the
 *    per-message structures outweigh the payloads) until a retain is
 *    refused (-ENOSPC), the broker's RSS grows by at most retained_max
 *    plus RETAINED_SLACK_KIB, and lbus stats shows retained_bytes within
 *    retained_max;
 *  - partial frames held across all connections are capped
 *    (partial_frames_max): many slow senders, each holding an unfinished
 *    frame, get the connections whose frame would pass the cap closed with
 *    ERR_LIMIT, while those within it and a bystander are served (its
 *    round trip stays within BYSTANDER_MS) and the broker's RSS stays within
 *    the cap plus a small constant; once they are gone, a big frame fits
 *    again;
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

#include "frame.h"
#include "harness.h"

#define N_FLOOD 400

#define RETAINED_MAX (16 * 1024 * 1024)
#define RETAINED_BATCH 1000
#define RETAINED_SLACK_KIB (4 * 1024) /* pool caches, read buffer, heap slack */

#define PARTIAL_MAX (1024 * 1024) /* partial_frames_max of the test broker */
#define N_SLOW 64		  /* slow senders */
#define SLOW_CHUNK (16 * 1024)	  /* bytes each sends per round */
#define SLOW_ROUNDS 4
#define BYSTANDER_MS 50 /* a bystander's round trip, at most, under attack */
#define RSS_SLACK_KIB (8 * 1024)

/* Does the broker's RSS say anything? Not under ASan (its quarantine keeps
 * freed blocks) nor behind a wrapper such as valgrind. */
static bool rss_meaningful(void)
{
#ifdef __SANITIZE_ADDRESS__
	return false;
#else
	const char *w = getenv("LBUSD_WRAPPER");
	return !w || !*w;
#endif
}

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

static void on_error(lbus *bus, int err, const char *what, void *userdata)
{
	(void)bus;
	(void)what;
	*(int *)userdata = err;
}

/* Fill a broker with retained_max = RETAINED_MAX with messages of
 * payload_len bytes on topics "r/<i>/<j>" until one is refused; check and
 * print the broker's RSS growth against the bound. */
static void fill_retained(size_t payload_len)
{
	char config[64], topic[64];
	struct lbt_broker b;
	struct lbus_stats *st;
	lbus *pub;
	char *payload = malloc(payload_len);
	int err = 0;
	unsigned long n = 0;
	long base, rss;

	assert_non_null(payload);
	memset(payload, 'p', payload_len);
	snprintf(config, sizeof(config), "retained_max = %d\n", RETAINED_MAX);
	assert_int_equal(lbt_broker_start_config(&b, config), 0);
	assert_int_equal(lbt_connect(&b, &pub), 0);
	lbus_on_error(pub, on_error, &err);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	base = lbt_broker_rss_kib(&b);
	while (!err) {
		for (int i = 0; i < RETAINED_BATCH; i++, n++) {
			snprintf(topic, sizeof(topic), "r/%lu/%lu", n / 100, n % 100);
			assert_int_equal(lbus_publish(pub, topic, payload, payload_len, LBUS_RETAIN), 0);
		}
		assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0);
		assert_true(n < 10u * 1000u * 1000u);
	}
	assert_int_equal(err, -ENOSPC);
	rss = lbt_broker_rss_kib(&b);
	assert_int_equal(lbus_stats_get(pub, lbt_ms(5000), &st), 0);
	fprintf(
	    stderr,
	    "retained_max %d KiB, %zu-byte payloads: %llu messages kept (%llu bytes counted); broker RSS %ld "
	    "KiB -> %ld KiB, grew %ld KiB (%.2f x retained_max)\n",
	    RETAINED_MAX / 1024, payload_len, (unsigned long long)st->broker.retained,
	    (unsigned long long)st->broker.retained_bytes, base, rss, rss - base,
	    (double)(rss - base) * 1024 / RETAINED_MAX);
	assert_true(st->broker.retained_bytes <= RETAINED_MAX);
	assert_true(st->broker.retained_bytes > RETAINED_MAX - RETAINED_MAX / 64); /* it was full */
	if (rss_meaningful())
		assert_true(rss - base <= RETAINED_MAX / 1024 + RETAINED_SLACK_KIB);
	lbus_stats_free(st);
	lbus_close(pub);
	free(payload);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_retained_rss_small(void **state)
{
	(void)state;
	fill_retained(16);
}

static void test_retained_rss_large(void **state)
{
	(void)state;
	fill_retained(3000);
}

/* One round trip of the bystander (Ping/Pong), in ms. */
static int64_t bystander_rtt(int fd, uint64_t token)
{
	int64_t t0 = lbt_now_ms();
	struct lbt_error e = {0};

	assert_int_equal(lbt_raw_sync(fd, token, lbt_ms(5000), &e), 0);
	assert_false(e.seen);
	return lbt_now_ms() - t0;
}

/* Has the broker closed fd (after an Error, which must be ERR_LIMIT)? */
static bool closed_for_limit(int fd)
{
	struct lbt_error e = {0};

	if (lbt_raw_expect_close(fd, 0, &e) != 0)
		return false;
	assert_true(e.seen && e.fatal);
	assert_int_equal(e.code, LBUS__ERROR_CODE__ERR_LIMIT);
	return true;
}

static void test_partial_frames_capped(void **state)
{
	(void)state;
	char config[128];
	struct lbt_broker b;
	static uint8_t chunk[SLOW_CHUNK];
	int fds[N_SLOW], by, open_now = N_SLOW, refused = 0;
	int64_t rtt, rtt_max = 0;
	long base, rss, rss_max = 0;
	uint64_t token = 1;

	/* max_frame well under half the bound, which it would raise otherwise */
	snprintf(config, sizeof(config), "partial_frames_max = %d\nmax_frame = %d\n", PARTIAL_MAX,
		 PARTIAL_MAX / 4);
	assert_int_equal(lbt_broker_start_config(&b, config), 0);
	by = lbt_raw_connect(&b);
	assert_true(by >= 0);
	assert_int_equal(lbt_raw_hello(by, NULL), 0);
	base = lbt_broker_rss_kib(&b);
	for (int i = 0; i < N_SLOW; i++) {
		uint8_t hdr[4];

		fds[i] = lbt_raw_connect(&b);
		assert_true(fds[i] >= 0);
		assert_int_equal(lbt_raw_hello(fds[i], NULL), 0);
		lbus_frame_put_len(hdr, 200 * 1024); /* announced; never sent in full */
		assert_int_equal(lbt_raw_send_bytes(fds[i], hdr, sizeof(hdr)), 0);
	}
	for (int round = 0; round < SLOW_ROUNDS; round++) {
		for (int i = 0; i < N_SLOW; i++) {
			if (fds[i] < 0)
				continue;
			int sent = lbt_raw_send_bytes(fds[i], chunk, sizeof(chunk));

			if (closed_for_limit(fds[i])) {
				close(fds[i]);
				fds[i] = -1;
				open_now--;
				refused++;
			} else {
				assert_int_equal(sent, 0);
			}
			if (i % 8 == 0) {
				rtt = bystander_rtt(by, token++);
				rtt_max = rtt > rtt_max ? rtt : rtt_max;
			}
		}
		lbt_sleep_ms(20);
		rss = lbt_broker_rss_kib(&b);
		rss_max = rss > rss_max ? rss : rss_max;
	}
	/* those left are within the cap, and still served */
	for (int i = 0; i < N_SLOW; i++)
		if (fds[i] >= 0 && closed_for_limit(fds[i])) {
			close(fds[i]);
			fds[i] = -1;
			open_now--;
			refused++;
		}
	fprintf(
	    stderr,
	    "%d slow senders x %d rounds of %d KiB, partial_frames_max %d KiB: %d refused (ERR_LIMIT), %d "
	    "holding; bystander round trip max %lld ms; broker RSS %ld KiB at start, %ld KiB at most\n",
	    N_SLOW, SLOW_ROUNDS, SLOW_CHUNK / 1024, PARTIAL_MAX / 1024, refused, open_now, (long long)rtt_max,
	    base, rss_max);
	assert_true(refused > 0);
	assert_true(open_now > 0);
	assert_true(open_now * SLOW_CHUNK <= PARTIAL_MAX);
	assert_true(rtt_max <= lbt_ms(BYSTANDER_MS));
	if (rss_meaningful())
		assert_true(rss_max - base <= PARTIAL_MAX / 1024 + RSS_SLACK_KIB);
	for (int i = 0; i < N_SLOW; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* their buffers are released: a frame near max_frame fits again */
	int big = lbt_raw_connect(&b);
	assert_true(big >= 0);
	assert_int_equal(lbt_raw_hello(big, NULL), 0);
	lbt_sleep_ms(50);
	{
		Lbus__Publish p = LBUS__PUBLISH__INIT;
		Lbus__Frame f = LBUS__FRAME__INIT;
		static uint8_t payload[PARTIAL_MAX / 4 - 256];

		p.topic = "big";
		p.payload.data = payload;
		p.payload.len = sizeof(payload);
		f.kind_case = LBUS__FRAME__KIND_PUBLISH;
		f.publish = &p;
		assert_int_equal(lbt_raw_send_frame(big, &f), 0);
		assert_int_equal(lbt_raw_sync(big, 99, lbt_ms(5000), NULL), 0);
	}
	close(big);
	close(by);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retained_rss_small),	  cmocka_unit_test(test_retained_rss_large),
	    cmocka_unit_test(test_partial_frames_capped), cmocka_unit_test(test_log_flood_protocol_errors),
	    cmocka_unit_test(test_log_flood_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
