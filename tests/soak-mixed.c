/* SPDX-License-Identifier: MIT */
/*
 * Soak (suite soak, not in the default run: `meson test -C build --suite
 * soak`): mixed traffic through a real lbusd for LBUS_SOAK_SECONDS (default
 * 60), with a broker restart in the middle, and every message accounted for.
 *
 * Clients, each a liblbus handle in its own thread, all in reconnect mode:
 *   publishers  SOAK_PUBS, each ~SOAK_RATE messages/s of 40..200 bytes on
 *               soak/<p>, payload "<epoch> <p> <seq>" (seq grows for the
 *               publisher's whole life);
 *   subscribers on soak/#: a fast drop one; a block one that reads a bit
 *               slowly (the publishers wait for it); a drop one that stalls
 *               (stops reading) 1 s in 3; a block one with stall_ms that
 *               stalls 1 s in 4 (blocks the publishers, then drops);
 *   churn       plain clients that connect, subscribe, read a little and
 *               hang up, several per second (not accounted: they come and go).
 * The broker runs with a small max_queue, so the stalls drop for real.
 *
 * Epochs: 0 (the first half), 1 (the restart: SIGTERM, a new broker on the
 * same socket, the clients reconnect and re-subscribe while the publishers
 * go on into their reconnect buffer), 2 (the second half). Between epochs
 * the publishers pause and the subscribers drain. For epochs 0 and 2 every
 * subscriber must have: delivered + reported dropped == published, exactly
 * (drops come from lbus_on_dropped()). Epoch 1 is a restart: liblbus says
 * messages may be missed then (LBUS_RECONNECTED), so there only delivered +
 * dropped <= published holds, and the figures are printed. At all times,
 * per subscriber and publisher, sequence numbers only grow (no duplicate,
 * no reordering, across the restart too).
 *
 * RSS flat: the broker's RSS is sampled every second; in each broker's life
 * the last sample may exceed the one after warm-up (a fifth of the epoch)
 * by at most SOAK_RSS_GROWTH_KIB (not checked under ASan, whose quarantine
 * holds freed blocks). Figures are printed as the run goes.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define SOAK_PUBS 3
#define SOAK_SUBS 4
#define SOAK_RATE 800 /* messages/s per publisher */
#define SOAK_EPOCHS 3
#define SOAK_DRAIN_MS 20000
#define SOAK_RSS_GROWTH_KIB 4096
#define SOAK_CONFIG "max_queue = 65536\nshutdown_timeout = 500ms\n"

enum phase { PH_RUN, PH_PAUSE, PH_STOP };

struct soak {
	struct lbt_broker b;
	_Atomic int phase;
	_Atomic int epoch;
	int seconds;
};

struct pub_stats {
	_Atomic uint64_t published[SOAK_EPOCHS]; /* lbus_publish() returned 0 */
	_Atomic uint64_t refused;		 /* -ENOBUFS, -ECONNRESET, ... */
	_Atomic int reconnected;
	_Atomic int paused; /* has seen PH_PAUSE: publishes no more */
};

struct sub_stats {
	_Atomic uint64_t delivered[SOAK_EPOCHS];
	_Atomic uint64_t dropped[SOAK_EPOCHS];
	_Atomic uint64_t disorder; /* a seq not above the last one of its publisher */
	_Atomic int reconnected;
	_Atomic int synced; /* re-subscribed, confirmed by a round trip */
	uint64_t last_seq[SOAK_PUBS];
};

struct sub_kind {
	const char *what;
	enum lbus_policy policy;
	uint32_t stall_ms;
	int stall_every_ms; /* 0: never stalls */
	bool slow;
};

static const struct sub_kind sub_kinds[SOAK_SUBS] = {
    {"drop", LBUS_POLICY_DROP, 0, 0, false},
    {"block-slow", LBUS_POLICY_BLOCK, 0, 0, true},
    {"drop-stalled", LBUS_POLICY_DROP, 0, 3000, false},
    {"block-stall_ms", LBUS_POLICY_BLOCK, 200, 4000, false},
};

static struct soak soak;
static struct pub_stats pubs[SOAK_PUBS];
static struct sub_stats subs[SOAK_SUBS];
static _Atomic uint64_t churn_connects;

/* ---- clients ----------------------------------------------------------------- */

static void on_conn(lbus *bus, enum lbus_connection_event ev, int err, void *ud)
{
	_Atomic int *reconnected = ud;

	(void)bus;
	(void)err;
	if (ev == LBUS_RECONNECTED)
		(*reconnected)++;
}

static lbus *connect_soak(_Atomic int *reconnected)
{
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;
	lbus *bus = NULL;

	o.reconnect = true;
	o.reconnect_min_ms = 20;
	o.reconnect_max_ms = 300;
	o.timeout_ms = lbt_ms(10000);
	if (lbus_connect_with(&bus, soak.b.sock, &o) < 0)
		return NULL;
	lbus_on_connection(bus, on_conn, (void *)reconnected);
	return bus;
}

static void *pub_thread(void *arg)
{
	size_t p = (size_t)arg;
	lbus *bus = connect_soak(&pubs[p].reconnected);
	char topic[32], msg[256];
	uint64_t seq = 0;

	if (!bus)
		return (void *)"connect";
	snprintf(topic, sizeof(topic), "soak/%zu", p);
	while (soak.phase != PH_STOP) {
		if (soak.phase == PH_PAUSE) {
			pubs[p].paused = 1;
			lbus_run(bus, 5);
			continue;
		}
		pubs[p].paused = 0;
		for (int i = 0; i < SOAK_RATE / 100; i++) {
			int e = soak.epoch;
			int n = snprintf(msg, sizeof(msg), "%d %zu %llu ", e, p, (unsigned long long)++seq);
			size_t len = 40 + (seq * 37) % 160;

			memset(msg + n, 'x', len - (size_t)n);
			if (lbus_publish(bus, topic, msg, len, 0) == 0)
				pubs[p].published[e]++;
			else
				pubs[p].refused++;
		}
		lbus_run(bus, 10);
	}
	lbus_close(bus);
	return NULL;
}

static void sub_on_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct sub_stats *s = ud;
	char text[64] = "";
	unsigned long long seq = 0;
	int e = -1;
	size_t p = SOAK_PUBS;

	(void)bus;
	memcpy(text, m->data, m->len < sizeof(text) - 1 ? m->len : sizeof(text) - 1);
	if (sscanf(text, "%d %zu %llu", &e, &p, &seq) != 3 || e < 0 || e >= SOAK_EPOCHS || p >= SOAK_PUBS) {
		s->disorder++;
		return;
	}
	if (seq <= s->last_seq[p])
		s->disorder++;
	s->last_seq[p] = seq;
	s->delivered[e]++;
}

static void sub_on_dropped(lbus *bus, uint64_t sub_id, uint64_t count, void *ud)
{
	struct sub_stats *s = ud;

	(void)bus;
	(void)sub_id;
	s->dropped[soak.epoch] += count;
}

static void *sub_thread(void *arg)
{
	size_t i = (size_t)arg;
	const struct sub_kind *k = &sub_kinds[i];
	struct sub_stats *s = &subs[i];
	struct lbus_sub_opts o = LBUS_SUB_OPTS_INIT;
	lbus *bus = connect_soak(&s->reconnected);
	int64_t next_stall = lbt_now_ms() + k->stall_every_ms;
	int synced_for = 0;

	if (!bus)
		return (void *)"connect";
	o.policy = k->policy;
	o.stall_ms = k->stall_ms;
	lbus_on_dropped(bus, sub_on_dropped, s);
	if (lbus_subscribe(bus, "soak/#", sub_on_msg, s, &o, NULL) < 0) {
		lbus_close(bus);
		return (void *)"subscribe";
	}
	s->synced = 1;
	while (soak.phase != PH_STOP) {
		if (s->reconnected > synced_for && lbus_sync(bus, lbt_ms(5000)) == 0)
			s->synced = ++synced_for + 1;
		if (k->stall_every_ms && soak.phase == PH_RUN && lbt_now_ms() >= next_stall) {
			lbt_sleep_ms(1000); /* stalled: reads nothing */
			next_stall = lbt_now_ms() + k->stall_every_ms;
		}
		if (lbus_run(bus, k->slow ? 1 : 10) < 0)
			break;
		if (k->slow)
			lbt_sleep_ms(1);
	}
	lbus_close(bus);
	return NULL;
}

static void churn_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	(void)bus;
	(void)m;
	(void)ud;
}

static void *churn_thread(void *arg)
{
	(void)arg;
	while (soak.phase != PH_STOP) {
		lbus *bus;

		if (lbus_connect(&bus, soak.b.sock) < 0) {
			lbt_sleep_ms(50);
			continue;
		}
		churn_connects++;
		if (lbus_subscribe(bus, "soak/#", churn_msg, NULL, NULL, NULL) == 0)
			lbus_run(bus, 100);
		lbus_close(bus);
		lbt_sleep_ms(100);
	}
	return NULL;
}

/* ---- the run ------------------------------------------------------------------- */

static uint64_t published_in(int e)
{
	uint64_t n = 0;

	for (size_t p = 0; p < SOAK_PUBS; p++)
		n += pubs[p].published[e];
	return n;
}

/* Run for ms, sampling the broker's RSS each second; returns the RSS after
 * warm-up (a fifth of ms) in *warm and the last sample in *last. */
static void run_sampling(int ms, long *warm, long *last)
{
	int64_t start = lbt_now_ms(), end = start + ms;

	*warm = -1;
	while (lbt_now_ms() < end) {
		lbt_sleep_ms(1000);
		*last = lbt_broker_rss_kib(&soak.b);
		assert_true(*last > 0);
		if (*warm < 0 && lbt_now_ms() - start >= ms / 5)
			*warm = *last;
	}
	if (*warm < 0)
		*warm = *last;
}

/* Pause the publishers, wait until every subscriber has accounted for every
 * message of epoch e (or, for the restart epoch, until nothing moves). */
static void drain(int e, bool exact)
{
	int64_t end = lbt_now_ms() + lbt_ms(SOAK_DRAIN_MS);
	uint64_t before = 0;

	soak.phase = PH_PAUSE;
	for (size_t p = 0; p < SOAK_PUBS; p++)
		while (!pubs[p].paused && lbt_now_ms() < end)
			lbt_sleep_ms(5);
	for (;;) {
		uint64_t moved = 0;
		bool done = true;

		for (size_t i = 0; i < SOAK_SUBS; i++) {
			moved += subs[i].delivered[e] + subs[i].dropped[e];
			if (subs[i].delivered[e] + subs[i].dropped[e] < published_in(e))
				done = false;
		}
		if ((exact && done) || lbt_now_ms() >= end)
			break;
		if (!exact && moved == before && moved > 0)
			break;
		before = moved;
		lbt_sleep_ms(exact ? 50 : 500);
	}
	lbt_sleep_ms(200); /* a late duplicate would show */
}

static void report_epoch(int e, bool exact)
{
	uint64_t published = published_in(e);

	printf("soak: epoch %d: published %llu\n", e, (unsigned long long)published);
	for (size_t i = 0; i < SOAK_SUBS; i++) {
		uint64_t d = subs[i].delivered[e], x = subs[i].dropped[e];

		printf("soak:   %-15s delivered %llu + dropped %llu = %llu%s\n", sub_kinds[i].what,
		       (unsigned long long)d, (unsigned long long)x, (unsigned long long)(d + x),
		       d + x == published ? ""
		       : exact		  ? "  MISMATCH"
					  : "  (restart: may be missed)");
	}
	fflush(stdout);
	for (size_t i = 0; i < SOAK_SUBS; i++) {
		if (exact)
			assert_int_equal(subs[i].delivered[e] + subs[i].dropped[e], published);
		else
			assert_true(subs[i].delivered[e] + subs[i].dropped[e] <= published);
		assert_int_equal(subs[i].disorder, 0);
	}
}

static void check_rss(const char *when, long warm, long last)
{
	printf("soak: broker RSS %s: %ld KiB after warm-up, %ld KiB at the end (growth %ld KiB, bound %d)\n",
	       when, warm, last, last - warm, SOAK_RSS_GROWTH_KIB);
	fflush(stdout);
#ifndef __SANITIZE_ADDRESS__ /* ASan keeps freed blocks in quarantine: RSS says nothing */
	assert_true(last - warm <= SOAK_RSS_GROWTH_KIB);
#endif
}

/* SIGTERM the broker and start a new one on the same socket, while the
 * publishers go on (into their reconnect buffers). */
static void restart_broker(void)
{
	char conf[PATH_MAX];
	const char *args[] = {"-c", conf, NULL};
	struct lbt_broker_opts o = {.extra_args = args, .reuse_dir = true};
	int64_t t0;

	assert_int_equal(lbt_path(conf, soak.b.dir, "lbusd.conf"), 0);
	kill(soak.b.pid, SIGTERM);
	assert_int_equal(lbt_broker_wait_exit(&soak.b, lbt_ms(10000)), 0);
	lbt_sleep_ms(300); /* the clients find it gone and retry meanwhile */
	assert_int_equal(lbt_broker_start_opts(&soak.b, &o), 0);
	t0 = lbt_now_ms();
	for (bool all = false; !all && lbt_now_ms() - t0 < lbt_ms(SOAK_DRAIN_MS);) {
		all = true;
		for (size_t p = 0; p < SOAK_PUBS; p++)
			all = all && pubs[p].reconnected >= 1;
		for (size_t i = 0; i < SOAK_SUBS; i++)
			all = all && subs[i].synced >= 2;
		if (!all)
			lbt_sleep_ms(20);
	}
	printf("soak: restart: every client back and re-subscribed %lld ms after the new broker was ready\n",
	       (long long)(lbt_now_ms() - t0));
	for (size_t p = 0; p < SOAK_PUBS; p++)
		assert_true(pubs[p].reconnected >= 1);
	for (size_t i = 0; i < SOAK_SUBS; i++)
		assert_true(subs[i].synced >= 2);
}

static void test_soak_mixed(void **state)
{
	pthread_t pt[SOAK_PUBS], st[SOAK_SUBS], ct;
	long warm, last;
	int half_ms;
	void *ret;

	(void)state;
	assert_int_equal(lbt_broker_start_config(&soak.b, SOAK_CONFIG), 0);
	half_ms = soak.seconds * 1000 / 2;
	printf("soak: %d s, %d publishers at ~%d msg/s, subscribers:", soak.seconds, SOAK_PUBS, SOAK_RATE);
	for (size_t i = 0; i < SOAK_SUBS; i++)
		printf(" %s", sub_kinds[i].what);
	printf(", churn; broker %s", SOAK_CONFIG);
	fflush(stdout);
	for (size_t i = 0; i < SOAK_SUBS; i++)
		assert_int_equal(pthread_create(&st[i], NULL, sub_thread, (void *)i), 0);
	for (size_t i = 0; i < SOAK_SUBS; i++)
		while (!subs[i].synced)
			lbt_sleep_ms(10);
	for (size_t p = 0; p < SOAK_PUBS; p++)
		assert_int_equal(pthread_create(&pt[p], NULL, pub_thread, (void *)p), 0);
	assert_int_equal(pthread_create(&ct, NULL, churn_thread, NULL), 0);

	run_sampling(half_ms, &warm, &last);
	drain(0, true);
	report_epoch(0, true);
	check_rss("before the restart", warm, last);

	soak.epoch = 1;
	soak.phase = PH_RUN;
	restart_broker();
	drain(1, false);
	report_epoch(1, false);

	soak.epoch = 2;
	soak.phase = PH_RUN;
	run_sampling(half_ms, &warm, &last);
	drain(2, true);
	report_epoch(2, true);
	check_rss("after the restart", warm, last);

	soak.phase = PH_STOP;
	for (size_t p = 0; p < SOAK_PUBS; p++) {
		assert_int_equal(pthread_join(pt[p], &ret), 0);
		assert_null(ret);
		printf("soak: publisher %zu: refused %llu (restart)\n", p,
		       (unsigned long long)pubs[p].refused);
	}
	for (size_t i = 0; i < SOAK_SUBS; i++) {
		assert_int_equal(pthread_join(st[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(pthread_join(ct, NULL), 0);
	printf("soak: churn: %llu connections\n", (unsigned long long)churn_connects);
	assert_int_equal(lbt_broker_stop(&soak.b), 0);
}

int main(void)
{
	const char *s = getenv("LBUS_SOAK_SECONDS");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_soak_mixed),
	};

	soak.seconds = s && atoi(s) > 0 ? atoi(s) : 60;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
