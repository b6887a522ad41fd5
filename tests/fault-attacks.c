/* SPDX-License-Identifier: MIT */
/*
 * Fault suite (suite fault, in the default run): each attack a hostile
 * same-user client can make (issue 7), against a real lbusd, while a
 * bystander measures its round trip and the test samples the broker's RSS.
 *
 * The bystander is a liblbus client in its own thread that publishes to a
 * topic it subscribes to and waits for the delivery, again and again (one
 * round trip every 2 ms at most), recording each round trip. Every test
 * first measures the bystander alone on the same broker (the baseline: what
 * this machine, with its load, gives), then for FAULT_ATTACK_MS while the
 * attack runs. The figures are printed: round trips, median, 99th
 * percentile and worst, and the broker's RSS before, at its highest during
 * the attack, and after.
 *
 * Bounds, and why:
 *  - the bystander's median round trip under attack stays below
 *    FAULT_MEDIAN_MS plus twice the baseline's median: the issue's "within a
 *    few milliseconds", with the machine's own noise added (a loaded CI
 *    box's scheduler alone costs milliseconds);
 *  - at most 1% of its round trips (at least one) take longer than
 *    FAULT_SLOW_MS: a broker that serves the others between one client's
 *    requests never makes them wait that long, while one scheduler hiccup
 *    of a loaded machine (seen: 0.9 s once, with a load average of 11 on
 *    2 cores) must not fail the test;
 *  - no round trip takes longer than FAULT_FREEZE_MS: the "stalls the
 *    broker for seconds" of the issue;
 *  - at least FAULT_MIN_TRIPS round trips complete: the bystander is served
 *    all along, not once at the end;
 *  - the broker's RSS grows by at most the limit the attack can fill (its
 *    configured queue or retained bytes, stated per attack) plus
 *    FAULT_RSS_SLACK_KIB for allocator overhead and per-connection state;
 *  - afterwards the broker still answers (lbt_pubsub_roundtrip) and its
 *    descriptors are back to where they were.
 * Under ASan (the sanitized build) the RSS says nothing (freed blocks wait
 * in quarantine) and every allocation is slow (a slowloris byte reallocates
 * a partial frame's buffer: hundreds of ms there), so only the median, the
 * freeze bound and the broker's health are checked; the figures still print.
 * Attacks: slowloris (partial frames on many connections, fed a byte at a
 * time, and filled up to their last byte), wildcard
 * subscribes over many retained topics, name and subscription floods, a
 * publish flood to a subscriber that never reads, garbage, connect churn.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "frame.h"
#include "lbus-limits.h"

#define FAULT_ATTACK_MS 2000
#define FAULT_BASELINE_MS 300
#define FAULT_MEDIAN_MS 5
#define FAULT_SLOW_MS 100
#define FAULT_FREEZE_MS 2000
#define FAULT_MIN_TRIPS 20
#define FAULT_RSS_SLACK_KIB (8 * 1024)
#define FAULT_MAX_SAMPLES 100000
#define BYSTANDER_TOPIC "fault/bystander"

#ifdef __SANITIZE_ADDRESS__
#define FAULT_UNDER_ASAN true
#else
#define FAULT_UNDER_ASAN false
#endif

/* ---- the bystander ---------------------------------------------------------- */

struct bystander {
	const struct lbt_broker *b;
	pthread_t thread;
	_Atomic bool stop;
	_Atomic int failed; /* an lbus call failed: its errno */
	uint64_t got;	    /* sequence number of the last delivery */
	/* round trips in microseconds; the test swaps `recording` between runs */
	int64_t *samples;
	_Atomic size_t n;
};

static void bystander_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct bystander *by = ud;
	char text[32] = "";

	(void)bus;
	memcpy(text, m->data, m->len < sizeof(text) - 1 ? m->len : sizeof(text) - 1);
	by->got = strtoull(text, NULL, 10);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *bystander_thread(void *arg)
{
	struct bystander *by = arg;
	uint64_t seq = 0;
	lbus *bus;
	int ret = lbt_connect(by->b, &bus);

	if (ret == 0)
		ret = lbus_subscribe(bus, BYSTANDER_TOPIC, bystander_msg, by, NULL, NULL);
	while (ret >= 0 && !by->stop) {
		char text[32];
		int len = snprintf(text, sizeof(text), "%llu", (unsigned long long)++seq);
		int64_t t0 = now_us();

		ret = lbus_publish(bus, BYSTANDER_TOPIC, text, (size_t)len, 0);
		while (ret >= 0 && by->got != seq && now_us() - t0 < 10000000)
			ret = lbus_run(bus, 1) < 0 ? -EIO : 0;
		if (ret >= 0 && by->n < FAULT_MAX_SAMPLES)
			by->samples[by->n++] = now_us() - t0;
		lbt_sleep_ms(2);
	}
	if (ret < 0)
		by->failed = ret;
	if (bus)
		lbus_close(bus);
	return NULL;
}

/* ---- figures ---------------------------------------------------------------------- */

struct rtt {
	size_t n, slow; /* slow: over FAULT_SLOW_MS */
	double median_ms, p99_ms, max_ms;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static struct rtt rtt_of(int64_t *v, size_t n)
{
	struct rtt r = {.n = n};

	if (!n)
		return r;
	qsort(v, n, sizeof(*v), cmp_i64);
	r.median_ms = (double)v[n / 2] / 1000.0;
	r.p99_ms = (double)v[(n * 99) / 100] / 1000.0;
	r.max_ms = (double)v[n - 1] / 1000.0;
	for (size_t i = 0; i < n; i++)
		r.slow += v[i] > FAULT_SLOW_MS * 1000;
	return r;
}

/* ---- a run: baseline, then the attack ------------------------------------------------- */

struct fault_run {
	const char *attack;
	struct lbt_broker *b;
	struct bystander by;
	struct rtt base;
	long rss_before, rss_max;
	int fds_before;
	int64_t end_ms;
};

static void fault_begin(struct fault_run *r, struct lbt_broker *b, const char *attack)
{
	memset(r, 0, sizeof(*r));
	r->attack = attack;
	r->b = b;
	r->by.b = b;
	r->by.samples = calloc(FAULT_MAX_SAMPLES, sizeof(int64_t));
	assert_non_null(r->by.samples);
	assert_int_equal(pthread_create(&r->by.thread, NULL, bystander_thread, &r->by), 0);
	lbt_sleep_ms(FAULT_BASELINE_MS);
	size_t n = r->by.n;
	int64_t *copy = malloc((n ? n : 1) * sizeof(int64_t));
	assert_non_null(copy);
	memcpy(copy, r->by.samples, n * sizeof(int64_t));
	r->base = rtt_of(copy, n);
	free(copy);
	r->by.n = 0; /* the attack's samples from here (a trip in flight may count twice: harmless) */
	r->rss_before = r->rss_max = lbt_broker_rss_kib(b);
	r->fds_before = lbt_broker_fd_count(b);
	assert_true(r->rss_before > 0);
	r->end_ms = lbt_now_ms() + FAULT_ATTACK_MS;
}

/* Sample the RSS; false once the attack's time is over. */
static bool fault_running(struct fault_run *r)
{
	long rss = lbt_broker_rss_kib(r->b);

	assert_true(rss > 0); /* the broker is alive */
	if (rss > r->rss_max)
		r->rss_max = rss;
	return lbt_now_ms() < r->end_ms;
}

/*
 * The attack is over (its connections closed): stop the bystander, print
 * the figures, check the bounds. rss_limit_kib: what the attack may make the
 * broker hold by its limits.
 */
static void fault_end(struct fault_run *r, const char *volume, long rss_limit_kib)
{
	r->by.stop = true;
	assert_int_equal(pthread_join(r->by.thread, NULL), 0);
	struct rtt a = rtt_of(r->by.samples, r->by.n);
	long rss_after = lbt_broker_rss_kib(r->b);
	double median_bound = FAULT_MEDIAN_MS + 2 * r->base.median_ms;
	size_t slow_bound = a.n / 100 > 1 ? a.n / 100 : 1;

	printf("fault %-18s %s\n", r->attack, volume);
	printf("fault %-18s bystander: baseline %zu trips median %.2f p99 %.2f max %.2f ms; "
	       "attack %zu trips median %.2f p99 %.2f max %.2f ms, %zu over %d ms "
	       "(bounds: median %.1f, %zu over %d, max %d)\n",
	       r->attack, r->base.n, r->base.median_ms, r->base.p99_ms, r->base.max_ms, a.n, a.median_ms,
	       a.p99_ms, a.max_ms, a.slow, FAULT_SLOW_MS, median_bound, slow_bound, FAULT_SLOW_MS,
	       FAULT_FREEZE_MS);
	printf("fault %-18s broker RSS: before %ld KiB, max %ld KiB (+%ld, bound +%ld), after %ld KiB\n",
	       r->attack, r->rss_before, r->rss_max, r->rss_max - r->rss_before,
	       rss_limit_kib + FAULT_RSS_SLACK_KIB, rss_after);
	fflush(stdout);
	free(r->by.samples);
	assert_int_equal(r->by.failed, 0);
	assert_true(a.median_ms <= median_bound);
	assert_true(a.max_ms <= FAULT_FREEZE_MS);
	if (FAULT_UNDER_ASAN) {
		printf("fault %-18s under ASan: trips, slow trips and RSS not checked\n", r->attack);
	} else {
		assert_true(a.n >= FAULT_MIN_TRIPS);
		assert_true(a.slow <= slow_bound);
		assert_true(r->rss_max - r->rss_before <= rss_limit_kib + FAULT_RSS_SLACK_KIB);
	}
	assert_int_equal(lbt_pubsub_roundtrip(r->b, "fault/after"), 0);
	assert_true(lbt_broker_wait_fds(r->b, r->fds_before, lbt_ms(5000)) <= r->fds_before);
}

/* ---- raw attackers ---------------------------------------------------------------- */

/* A connection past its hello, non-blocking from then on. */
static int attacker(const struct lbt_broker *b)
{
	int fd = lbt_raw_connect(b);

	assert_true(fd >= 0);
	assert_int_equal(lbt_raw_hello(fd, NULL), 0);
	return fd;
}

/* Append f, framed, to buf (at *len, cap bytes). */
static void frame_into(uint8_t *buf, size_t cap, size_t *len, const Lbus__Frame *f)
{
	size_t n = lbus__frame__get_packed_size(f);

	assert_true(*len + LBUS_FRAME_HEADER + n <= cap);
	lbus_frame_put_len(buf + *len, (uint32_t)n);
	lbus__frame__pack(f, buf + *len + LBUS_FRAME_HEADER);
	*len += LBUS_FRAME_HEADER + n;
}

/* Write what the socket takes now; the bytes written (never blocks). */
static size_t push(int fd, const uint8_t *p, size_t len)
{
	ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	return n > 0 ? (size_t)n : 0;
}

/* Read and discard what is there (never blocks). */
static void discard(int fd)
{
	char sink[65536];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* ---- the attacks ------------------------------------------------------------------- */

#define SLOW_CONNS 200

/* Slowloris: many connections, each with a frame started (a header that
 * announces 1 MiB) and fed one byte per round. The broker holds what came
 * of each partial frame: bounded by the bytes sent, not by the announced
 * length. Seen on main with every allocation filled (meson's
 * MALLOC_PERTURB_, ASan): one stall of the whole broker, 0.3-1.9 s, as the
 * first bytes arrive; such a frame's buffer is reserved at CONN_READ_CHUNK
 * doubled (512 KiB) and shrunk back after each read (conn_read,
 * conn_rbuf_settle). With plain malloc the fresh pages are not touched and
 * nothing shows: the test runs so (tests/meson.build). */
static void test_slowloris(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	int fds[SLOW_CONNS];
	uint8_t hdr[LBUS_FRAME_HEADER];
	size_t bytes = 0;
	char volume[128];

	fault_begin(&r, b, "slowloris");
	lbus_frame_put_len(hdr, 1u << 20);
	for (size_t i = 0; i < SLOW_CONNS; i++) {
		fds[i] = attacker(b);
		bytes += push(fds[i], hdr, sizeof(hdr));
	}
	while (fault_running(&r)) {
		for (size_t i = 0; i < SLOW_CONNS; i++)
			bytes += push(fds[i], (const uint8_t *)"\x0a", 1);
		lbt_sleep_ms(20);
	}
	close_all(fds, SLOW_CONNS);
	snprintf(volume, sizeof(volume), "%d connections, %zu bytes of partial frames announcing 1 MiB each",
		 SLOW_CONNS, bytes);
	fault_end(&r, volume, 0);
}

#define HELD_CONNS 32
#define HELD_FRAME (1u << 20) /* the fault setup's max_frame */

/*
 * Partial frames held: HELD_CONNS connections each send all of a max_frame
 * frame but its last byte, and stop. Memory: on main each connection may
 * hold one partial frame of up to max_frame, so the bound is HELD_CONNS x
 * max_frame (32 MiB here); issue 7 asks for a global cap on partial frames
 * across connections, which will bring this bound down to that cap.
 */
static void test_partial_frames_held(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	int fds[HELD_CONNS];
	size_t sent[HELD_CONNS] = {0}, total = 0, len = LBUS_FRAME_HEADER + HELD_FRAME - 1;
	uint8_t *frame = calloc(1, len);
	char volume[128];

	assert_non_null(frame);
	lbus_frame_put_len(frame, HELD_FRAME);
	fault_begin(&r, b, "partial-frames");
	for (size_t i = 0; i < HELD_CONNS; i++)
		fds[i] = attacker(b);
	while (fault_running(&r)) {
		for (size_t i = 0; i < HELD_CONNS; i++) {
			size_t n = push(fds[i], frame + sent[i], len - sent[i]);

			sent[i] += n;
			total += n;
		}
		lbt_sleep_ms(5);
	}
	close_all(fds, HELD_CONNS);
	free(frame);
	snprintf(volume, sizeof(volume), "%d connections, %zu bytes of frames of 1 MiB less their last byte",
		 HELD_CONNS, total);
	fault_end(&r, volume, HELD_CONNS * (HELD_FRAME / 1024));
}

#define RETAINED_TOPICS 20000
#define WILDCARD_SUBS 200

/*
 * Wildcard subscribes over many retained topics: RETAINED_TOPICS retained
 * messages, then one connection subscribes "#" WILDCARD_SUBS times and never
 * reads: each subscribe matches every retained message. Memory: the
 * retained store (already there before the baseline) and the attacker's
 * queue, max_queue (1 MiB here). Seen on main: worst round trip 20-160 ms
 * (the retained lookup goes through the topic trie; what does not fit the
 * queue is dropped).
 */
static void test_wildcard_subscribes_over_retained(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	lbus *setup;
	size_t cap = WILDCARD_SUBS * 64, len = 0, off = 0;
	uint8_t *buf = malloc(cap);
	char volume[160];

	assert_non_null(buf);
	assert_int_equal(lbt_connect(b, &setup), 0);
	for (int i = 0; i < RETAINED_TOPICS; i++) {
		char topic[64];

		snprintf(topic, sizeof(topic), "ret/%d/%d", i % 100, i);
		assert_int_equal(lbus_publish(setup, topic, "retained-payload-32-bytes-long..", 32,
					      LBUS_RETAIN | LBUS_MORE),
				 0);
	}
	assert_int_equal(lbus_flush(setup, lbt_ms(10000)), 0);
	assert_int_equal(lbus_sync(setup, lbt_ms(10000)), 0);
	lbus_close(setup);
	for (uint64_t i = 1; i <= WILDCARD_SUBS; i++) {
		Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
		Lbus__Frame f = LBUS__FRAME__INIT;

		s.sub_id = i;
		s.pattern = "#";
		f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
		f.subscribe = &s;
		f.req_id = (uint32_t)i;
		frame_into(buf, cap, &len, &f);
	}
	fault_begin(&r, b, "wildcard-retained");
	int fd = attacker(b);
	while (fault_running(&r)) {
		off += push(fd, buf + off, len - off);
		lbt_sleep_ms(10);
	}
	close(fd);
	snprintf(volume, sizeof(volume), "%d retained topics, %zu of %d subscribes to # sent (%zu bytes)",
		 RETAINED_TOPICS, off * WILDCARD_SUBS / len, WILDCARD_SUBS, off);
	free(buf);
	fault_end(&r, volume, 1024);
}

#define FLOOD_NAMES 1000
#define FLOOD_SUBS 10000

/* Names and subscriptions: one connection takes FLOOD_NAMES names and
 * FLOOD_SUBS subscriptions (within the default limits), reading its Oks.
 * Memory: the registry and the trie hold what the limits allow, a few
 * hundred bytes each: bound 4 MiB. Seen on main: one round trip of 150-220
 * ms (a whole socket buffer of requests handled in one turn, with per-client
 * checks that grow with what it holds); the bounds tighten once work per
 * client per turn is bounded and those checks are O(1) (issue 7). */
static void test_name_and_subscription_flood(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	size_t cap = (FLOOD_NAMES + FLOOD_SUBS) * 64, len = 0, off = 0;
	uint8_t *buf = malloc(cap);
	char volume[160];

	assert_non_null(buf);
	for (int i = 0; i < FLOOD_NAMES + FLOOD_SUBS; i++) {
		Lbus__Frame f = LBUS__FRAME__INIT;
		Lbus__NameRequest n = LBUS__NAME_REQUEST__INIT;
		Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
		char text[64];

		f.req_id = (uint32_t)i + 1;
		if (i < FLOOD_NAMES) {
			snprintf(text, sizeof(text), "flood.name.%d", i);
			n.name = text;
			f.kind_case = LBUS__FRAME__KIND_TAKE_NAME;
			f.take_name = &n;
		} else {
			snprintf(text, sizeof(text), "flood/%d/+/#", i);
			s.sub_id = (uint64_t)i;
			s.pattern = text;
			f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
			f.subscribe = &s;
		}
		frame_into(buf, cap, &len, &f);
	}
	fault_begin(&r, b, "names-subs");
	int fd = attacker(b);
	while (fault_running(&r)) {
		off += push(fd, buf + off, len - off);
		discard(fd);
		lbt_sleep_ms(1);
	}
	close(fd);
	snprintf(volume, sizeof(volume), "%d names + %d subscriptions requested, %zu of %zu bytes sent",
		 FLOOD_NAMES, FLOOD_SUBS, off, len);
	free(buf);
	fault_end(&r, volume, 4096);
}

/* Publish flood: one connection publishes 1 KiB messages as fast as the
 * broker reads them, to a subscriber that never reads (drop policy). Memory:
 * that subscriber's queue, max_queue (1 MiB here). */
static void test_publish_flood(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	uint8_t frame[1200], payload[1024];
	Lbus__Publish p = LBUS__PUBLISH__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	size_t len = 0, pos = 0;
	uint64_t frames = 0;
	lbus *stalled;
	char volume[128];

	memset(payload, 'p', sizeof(payload));
	p.topic = "flood/pub";
	p.payload = (ProtobufCBinaryData){sizeof(payload), payload};
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &p;
	frame_into(frame, sizeof(frame), &len, &f);
	assert_int_equal(lbt_connect(b, &stalled), 0);
	assert_int_equal(lbus_subscribe(stalled, "flood/#", bystander_msg, NULL, NULL, NULL), 0);
	fault_begin(&r, b, "publish-flood");
	int fd = attacker(b);
	while (fault_running(&r)) {
		for (int i = 0; i < 256; i++) {
			size_t n = push(fd, frame + pos, len - pos);

			if (!n)
				break;
			pos += n;
			if (pos == len) {
				pos = 0;
				frames++;
			}
		}
		lbt_sleep_ms(1);
	}
	close(fd);
	lbus_close(stalled);
	snprintf(volume, sizeof(volume), "%llu publishes of 1 KiB to a subscriber that never reads",
		 (unsigned long long)frames);
	fault_end(&r, volume, 1024);
}

/* Garbage: connections that send 4 KiB of random bytes, after a hello or
 * instead of one, as one complete frame (a random body) or as a random
 * stream; the broker ends most of them at once (an undecodable frame, a
 * length over max_frame), the test hangs up on the others. A new one as soon
 * as one ends. Memory: a read buffer per connection, a few at a time. */
static void test_garbage(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	uint8_t junk[4096];
	uint32_t seed = 1;
	unsigned conns = 0, ended = 0;
	char volume[128];

	fault_begin(&r, b, "garbage");
	while (fault_running(&r)) {
		int fd = lbt_raw_connect(b);

		assert_true(fd >= 0);
		if (conns % 2)
			assert_int_equal(lbt_raw_hello(fd, NULL), 0);
		lbt_fill_random(junk, sizeof(junk), seed++);
		if (conns % 4 < 2)
			lbus_frame_put_len(junk, sizeof(junk) - LBUS_FRAME_HEADER);
		push(fd, junk, sizeof(junk));
		if (lbt_raw_expect_close(fd, lbt_ms(200), NULL) == 0)
			ended++;
		close(fd);
		conns++;
	}
	snprintf(volume, sizeof(volume), "%u connections of 4 KiB of random bytes, %u ended by the broker",
		 conns, ended);
	fault_end(&r, volume, 0);
	assert_true(ended * 2 >= conns);
}

/* Connect churn: connect, hello, hang up, as fast as one client can. */
static void test_connect_churn(void **state)
{
	struct lbt_broker *b = *state;
	struct fault_run r;
	unsigned conns = 0;
	char volume[64];

	fault_begin(&r, b, "connect-churn");
	while (fault_running(&r)) {
		for (int i = 0; i < 20; i++) {
			int fd = attacker(b);

			close(fd);
			conns++;
		}
	}
	snprintf(volume, sizeof(volume), "%u connections opened and closed", conns);
	fault_end(&r, volume, 0);
}

static int setup(void **state)
{
	return lbt_setup_config(state, "max_queue = 1048576\nmax_frame = 1048576\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slowloris, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_partial_frames_held, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_wildcard_subscribes_over_retained, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_name_and_subscription_flood, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_publish_flood, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_connect_churn, setup, lbt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
