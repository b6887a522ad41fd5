/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of lbus-bridge (`meson test -C build --benchmark bench-bridge
 * --verbose`): 64-byte QoS 1 messages from bus A through two bridges and a
 * local mosquitto to bus B, messages/s for a burst and the p50 latency of
 * one message at a time, next to mosquitto's own clients on the same broker
 * (mosquitto_pub | mosquitto_sub for the burst, two libmosquitto clients for
 * the latency). No assertion on the figures; they are printed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mosquitto.h>

#include "harness-mqtt.h"

struct world {
	struct lbt_mosquitto mq;
	struct lbt_broker a, b;
	struct lbt_proc bridge_a, bridge_b;
};

static struct world w;

static int setup(void **state)
{
	*state = NULL;
	if (!lbt_mosquitto_available())
		return 0;
	if (lbt_mosquitto_setup(&w.mq) || lbt_broker_start(&w.a, NULL) || lbt_broker_start(&w.b, NULL) ||
	    lbt_bridge_start(&w.bridge_a, &w.mq, &w.a, "bench-bridge-a",
			     "out sensors/# qos 1 remote-prefix site1/\n", NULL) ||
	    lbt_bridge_start(&w.bridge_b, &w.mq, &w.b, "bench-bridge-b",
			     "in site1/sensors/# qos 1 local-prefix a/\n", NULL) ||
	    !lbt_bridge_wait_connected(&w.a, "lbus.bridge", true) ||
	    !lbt_bridge_wait_connected(&w.b, "lbus.bridge", true))
		return -1;
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	if (!*state)
		return 0;
	int ra = lbt_bridge_stop(&w.bridge_a), rb = lbt_bridge_stop(&w.bridge_b);
	lbt_proc_free(&w.bridge_a);
	lbt_proc_free(&w.bridge_b);
	lbt_mosquitto_cleanup(&w.mq);
	lbt_broker_stop(&w.a);
	lbt_broker_stop(&w.b);
	return ra || rb ? -1 : 0;
}

struct inbox {
	long n;
};

static void on_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	((struct inbox *)ud)->n++;
}

static lbus *subscribe(const struct lbt_broker *bus, const char *pattern, lbus_msg_fn fn, void *ud)
{
	lbus *c;
	struct lbus_sub_opts o = LBUS_SUB_OPTS_INIT;

	o.policy = LBUS_POLICY_BLOCK;

	assert_int_equal(lbt_connect(bus, &c), 0);
	assert_int_equal(lbus_subscribe(c, pattern, fn, ud, &o, NULL), 0);
	assert_int_equal(lbus_sync(c, lbt_ms(5000)), 0);
	return c;
}

static bool wait_count(lbus *c, struct inbox *in, long n, int timeout_ms)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(timeout_ms);

	while (in->n < n && lbt_now_ms() < deadline)
		if (lbus_run(c, 20) < 0)
			return false;
	return in->n >= n;
}

static void mqtt_run(struct mosquitto *m, int ms)
{
	int64_t end = lbt_now_ms() + ms;

	while (lbt_now_ms() < end)
		mosquitto_loop(m, 20, 10);
}

#define BENCH_N 20000
#define BENCH_LAT 1000

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct lat {
	int64_t sent_us, got_us;
	long n;
};

static void on_lat(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct lat *l = ud;
	l->got_us = now_us();
	l->n++;
	lbus_break(bus);
}

static void mqtt_lat(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	struct lat *l = ud;
	l->got_us = now_us();
	l->n++;
}

/* A -> mosquitto -> B: messages/s for n 64-byte QoS 1 messages. */
static double bench_bridge_rate(void)
{
	static struct inbox got;
	static char p[64];
	lbus *pub, *sub = subscribe(&w.b, "a/site1/sensors/bench", on_msg, &got);

	memset(&got, 0, sizeof(got));
	memset(p, 'x', sizeof(p));
	assert_int_equal(lbt_connect(&w.a, &pub), 0);
	int64_t t0 = now_us();
	for (long i = 0; i < BENCH_N; i++) {
		assert_int_equal(lbus_publish(pub, "sensors/bench", p, sizeof(p), LBUS_MORE), 0);
		if (i % 256 == 0)
			lbus_run(sub, 0);
	}
	assert_int_equal(lbus_flush(pub, lbt_ms(30000)), 0);
	assert_true(wait_count(sub, &got, BENCH_N, 60000));
	double rate = BENCH_N / ((now_us() - t0) / 1e6);
	lbus_close(pub);
	lbus_close(sub);
	return rate;
}

static int64_t bench_bridge_p50(void)
{
	static int64_t us[BENCH_LAT];
	struct lat l = {0};
	lbus *pub, *sub;
	struct lbus_sub_opts o = LBUS_SUB_OPTS_INIT;

	o.policy = LBUS_POLICY_BLOCK;
	char p[64];

	memset(p, 'y', sizeof(p));
	assert_int_equal(lbt_connect(&w.b, &sub), 0);
	assert_int_equal(lbus_subscribe(sub, "a/site1/sensors/lat", on_lat, &l, &o, NULL), 0);
	assert_int_equal(lbt_connect(&w.a, &pub), 0);
	for (int i = 0; i < BENCH_LAT; i++) {
		long want = l.n + 1;
		l.sent_us = now_us();
		assert_int_equal(lbus_publish(pub, "sensors/lat", p, sizeof(p), 0), 0);
		assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
		int64_t deadline = lbt_now_ms() + lbt_ms(5000);
		while (l.n < want && lbt_now_ms() < deadline)
			assert_true(lbus_run(sub, 100) >= 0); /* 1 after on_lat()'s break */
		if (l.n < want) {
			char *sa = lbt_bridge_status(&w.a, "lbus.bridge"),
			     *sb = lbt_bridge_status(&w.b, "lbus.bridge");
			fail_msg("message %d lost: A %s B %s", i, sa, sb);
		}
		us[i] = l.got_us - l.sent_us;
	}
	qsort(us, BENCH_LAT, sizeof(us[0]), cmp_i64);
	lbus_close(pub);
	lbus_close(sub);
	return us[BENCH_LAT / 2];
}

/* mosquitto_sub -C N | mosquitto_pub -l: the same broker, its own clients. */
static double bench_mosquitto_rate(void)
{
	const char *mosquitto_sub = getenv("MOSQUITTO_SUB"), *mosquitto_pub = getenv("MOSQUITTO_PUB");
	mosquitto_sub = mosquitto_sub ? mosquitto_sub : "";
	mosquitto_pub = mosquitto_pub ? mosquitto_pub : "";
	char port[16], n[16], line[66];
	struct lbt_proc sub = {0}, pub = {0};
	snprintf(port, sizeof(port), "%d", w.mq.port);
	snprintf(n, sizeof(n), "%d", BENCH_N);
	const char *sargv[] = {mosquitto_sub, "-h", "127.0.0.1", "-p", port, "-q",
			       "1",	      "-t", "base/rate", "-C", n,    NULL};
	const char *pargv[] = {mosquitto_pub, "-h", "127.0.0.1", "-p", port, "-q",
			       "1",	      "-t", "base/rate", "-l", NULL};
	size_t len = (size_t)BENCH_N * 65;
	if (!*mosquitto_sub || !*mosquitto_pub)
		skip(); /* mosquitto-clients is not installed */
	char *input = malloc(len);

	memset(line, 'z', 64);
	line[64] = '\n';
	for (long i = 0; i < BENCH_N; i++)
		memcpy(input + i * 65, line, 65);
	assert_int_equal(lbt_proc_spawn(&sub, sargv), 0);
	lbt_sleep_ms(300); /* subscribed */
	int64_t t0 = now_us();
	assert_int_equal(lbt_proc_spawn(&pub, pargv), 0);
	assert_int_equal(lbt_proc_write(&pub, input, len, lbt_ms(60000)), 0);
	assert_int_equal(lbt_proc_read_lines(&sub, BENCH_N, lbt_ms(60000)), 0);
	double rate = BENCH_N / ((now_us() - t0) / 1e6);
	lbt_proc_wait(&pub, lbt_ms(5000));
	lbt_proc_free(&pub);
	lbt_proc_free(&sub);
	free(input);
	return rate;
}

/* Round trip of one 64-byte QoS 1 message between two libmosquitto
 * clients on the same broker (what mosquitto_pub/sub do, without the
 * process start). */
static int64_t bench_mosquitto_p50(void)
{
	static int64_t us[BENCH_LAT];
	struct lat l = {0};
	struct mosquitto *s = mosquitto_new(NULL, true, &l), *p = mosquitto_new(NULL, true, NULL);
	char payload[64];

	memset(payload, 'w', sizeof(payload));
	mosquitto_message_callback_set(s, mqtt_lat);
	assert_int_equal(mosquitto_connect(s, "127.0.0.1", w.mq.port, 30), 0);
	assert_int_equal(mosquitto_connect(p, "127.0.0.1", w.mq.port, 30), 0);
	assert_int_equal(mosquitto_subscribe(s, NULL, "base/lat", 1), 0);
	mqtt_run(s, 200);
	for (int i = 0; i < BENCH_LAT; i++) {
		long want = l.n + 1;
		l.sent_us = now_us();
		assert_int_equal(mosquitto_publish(p, NULL, "base/lat", 64, payload, 1, false), 0);
		while (l.n < want) {
			mosquitto_loop(s, 1, 1);
			mosquitto_loop(p, 0, 1);
		}
		us[i] = l.got_us - l.sent_us;
	}
	qsort(us, BENCH_LAT, sizeof(us[0]), cmp_i64);
	mosquitto_destroy(s);
	mosquitto_destroy(p);
	return us[BENCH_LAT / 2];
}

static void bench_bridge(void **state)
{
	if (!*state)
		skip();
	double br = bench_bridge_rate();
	double mr = bench_mosquitto_rate();
	int64_t bl = bench_bridge_p50();
	int64_t ml = bench_mosquitto_p50();

	printf(
	    "bench: 64 B QoS 1, %d messages: lbus A -> bridge -> mosquitto -> bridge -> lbus B %.0f msgs/s, "
	    "mosquitto_pub | mosquitto_sub %.0f msgs/s\n",
	    BENCH_N, br, mr);
	printf(
	    "bench: one 64 B QoS 1 message end to end, p50 of %d: bridged %lld us, mosquitto clients alone "
	    "%lld us\n",
	    BENCH_LAT, (long long)bl, (long long)ml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bench_bridge),
	};
	mosquitto_lib_init();
	int r = cmocka_run_group_tests(tests, setup, teardown);
	mosquitto_lib_cleanup();
	return r;
}
