/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of lbus-bridge against real brokers, no mocks: one
 * mosquitto started here on free loopback ports (a plain listener and a TLS
 * one with a CA and server certificate made here with openssl), two lbusd
 * (buses A and B) and two bridges: A's over TLS, B's in plain TCP.
 *
 *   bridge A: out sensors/# qos 1 remote-prefix site1/
 *             in cmd/site1/# qos 1 local-prefix remote/
 *             out shared/# qos 1 / in shared/# qos 1   (overlapping trees)
 *             out $lbus/client/# qos 0                 (not MQTT topics)
 *   bridge B: in site1/sensors/# qos 1 local-prefix a/
 *             out cmd/# qos 1 / out shared/# / in shared/#
 *   bridge C (on bus B, MQTT 3.1.1, queue_max_msgs 10): out drop/#
 *   bridge D (on bus B, started by its test): TLS trusting another CA
 *
 * Proven: A -> B with the mapping, in order, exactly once for QoS 1 across a
 * mosquitto restart in the middle (publishing also while it is down);
 * B -> A commands byte for byte; retained both ways; no loop with
 * overlapping routes (counted on both buses and on MQTT); topics MQTT
 * refuses are reported and skipped; a full queue while MQTT is down drops,
 * counts and logs the excess; a wrong CA is refused; bus A restarted under
 * the bridge (what arrives meanwhile is counted as dropped), and again while
 * MQTT keeps publishing to it (every message counted once, forwarded or
 * dropped; all after the reconnect arrive, in order, exactly once), and
 * with its name taken meanwhile (the bridge waits for it, then forwards);
 * the status call and state topic; config errors name FILE:LINE.

 * (harness-mqtt.c starts mosquitto and the bridges; bench-bridge.c measures.)
 *
 * Skipped (with a message) when mosquitto or openssl is not installed;
 * tools/deps.sh installs both.
 */
#include <errno.h>
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
	struct lbt_broker a, b; /* the two buses */
	struct lbt_proc bridge_a, bridge_b, bridge_c;
};

static struct world w;

static char *status(const struct lbt_broker *bus)
{
	return lbt_bridge_status(bus, "lbus.bridge");
}

static long long status_num(const struct lbt_broker *bus, const char *key)
{
	return lbt_bridge_status_num(bus, "lbus.bridge", key);
}

static bool wait_connected(const struct lbt_broker *bus, bool want)
{
	return lbt_bridge_wait_connected(bus, "lbus.bridge", want);
}

static int setup(void **state)
{
	*state = NULL;
	if (!lbt_mosquitto_available())
		return 0;
	if (lbt_mosquitto_setup(&w.mq) || lbt_broker_start(&w.a, NULL) || lbt_broker_start(&w.b, NULL))
		return -1;
	if (lbt_bridge_start(&w.bridge_a, &w.mq, &w.a, "test-bridge-a",
			     "out sensors/# qos 1 remote-prefix site1/\n"
			     "in cmd/site1/# qos 1 local-prefix remote/\n"
			     "out shared/# qos 1\nin shared/# qos 1\n"
			     "out $lbus/client/# qos 0\n",
			     "ca.pem") ||
	    lbt_bridge_start(&w.bridge_b, &w.mq, &w.b, "test-bridge-b",
			     "in site1/sensors/# qos 1 local-prefix a/\n"
			     "out cmd/# qos 1\nout shared/# qos 1\nin shared/# qos 1\n",
			     NULL) ||
	    lbt_bridge_start(&w.bridge_c, &w.mq, &w.b, "test-bridge-c",
			     "mqtt_version = 3.1.1\nname = lbus.bridge.c\nqueue_max_msgs = 10\n"
			     "out drop/# qos 1 remote-prefix c/\n",
			     NULL))
		return -1;
	if (!wait_connected(&w.a, true) || !wait_connected(&w.b, true) ||
	    !lbt_bridge_wait_connected(&w.b, "lbus.bridge.c", true)) {
		lbt_proc_exited(&w.bridge_a);
		lbt_proc_exited(&w.bridge_b);
		fprintf(stderr, "bridges did not connect:\nA: %s\nB: %s\n", w.bridge_a.err, w.bridge_b.err);
		return -1;
	}
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	if (!*state)
		return 0;
	int ra = lbt_bridge_stop(&w.bridge_a), rb = lbt_bridge_stop(&w.bridge_b),
	    rc = lbt_bridge_stop(&w.bridge_c);
	lbt_proc_free(&w.bridge_a);
	lbt_proc_free(&w.bridge_b);
	lbt_proc_free(&w.bridge_c);
	lbt_mosquitto_cleanup(&w.mq);
	lbt_broker_stop(&w.a);
	lbt_broker_stop(&w.b);
	return ra || rb || rc ? -1 : 0;
}

#define SKIP_WITHOUT_BROKERS()                                                                               \
	do {                                                                                                 \
		if (!*state)                                                                                 \
			skip();                                                                              \
	} while (0)

/* ---- receiving on a bus ------------------------------------------------------------ */

struct inbox {
	char topic[128];
	long n;	   /* messages */
	long bad;  /* out of order, or with the wrong payload */
	long next; /* next sequence number expected */
	bool retained, retain;
	uint64_t sender_pid;
	char last[256];
	size_t last_len;
	unsigned char big[200000];
	size_t big_len;
};

static void on_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct inbox *in = ud;

	in->n++;
	snprintf(in->topic, sizeof(in->topic), "%s", m->topic);
	in->retained = m->retained;
	in->retain = m->retain;
	in->sender_pid = (uint64_t)m->sender.pid;
	in->last_len = m->len < sizeof(in->last) ? m->len : sizeof(in->last);
	memcpy(in->last, m->data, in->last_len);
	if (m->len > sizeof(in->last) && m->len <= sizeof(in->big)) {
		memcpy(in->big, m->data, m->len);
		in->big_len = m->len;
	}
}

/* Payloads "%06ld": count and check the sequence. */
static void on_seq(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct inbox *in = ud;
	char want[16];

	snprintf(want, sizeof(want), "%06ld", in->next);
	if (m->len != 6 || memcmp(m->data, want, 6))
		in->bad++;
	in->next = strtol((const char *)m->data, NULL, 10) + 1;
	in->n++;
}

static lbus *subscribe(const struct lbt_broker *bus, const char *pattern, lbus_msg_fn fn, struct inbox *in)
{
	lbus *c;
	struct lbus_sub_opts o = LBUS_SUB_OPTS_INIT;

	o.policy = LBUS_POLICY_BLOCK;

	assert_int_equal(lbt_connect(bus, &c), 0);
	assert_int_equal(lbus_subscribe(c, pattern, fn, in, &o, NULL), 0);
	assert_int_equal(lbus_sync(c, lbt_ms(5000)), 0);
	return c;
}

/* Dispatch c until in->n >= n or timeout_ms. */
static bool wait_count(lbus *c, struct inbox *in, long n, int timeout_ms)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(timeout_ms);

	while (in->n < n && lbt_now_ms() < deadline)
		if (lbus_run(c, 20) < 0)
			return false;
	return in->n >= n;
}

/* ---- the tests ------------------------------------------------------------------------ */

#define SEQ_TOTAL 3000

static void publish_seq(lbus *pub, long from, long to)
{
	char p[16];

	for (long i = from; i < to; i++) {
		snprintf(p, sizeof(p), "%06ld", i);
		assert_int_equal(lbus_publish(pub, "sensors/seq", p, 6, LBUS_MORE), 0);
	}
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
}

static void test_exactly_once_in_order_across_mosquitto_restart(void **state)
{
	SKIP_WITHOUT_BROKERS();
	static struct inbox got, st;
	lbus *pub, *sub = subscribe(&w.b, "a/site1/sensors/seq", on_seq, &got);
	long long out0 = status_num(&w.a, "forwarded\":{\"out");

	assert_int_equal(lbt_connect(&w.a, &pub), 0);
	publish_seq(pub, 0, 1000);
	assert_true(wait_count(sub, &got, 300, 10000)); /* traffic flows through mosquitto... */
	assert_int_equal(lbt_mosquitto_stop(&w.mq), 0); /* ...when it stops */
	assert_true(wait_connected(&w.a, false));
	lbus *state_sub = subscribe(&w.a, "lbus/bridge/lbus.bridge/state", on_msg, &st);
	assert_int_equal(st.n, 1); /* retained */
	assert_memory_equal(st.last, "disconnected", 12);
	publish_seq(pub, 1000, 2000); /* kept by bridge A meanwhile */
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (status_num(&w.a, "queued") < 1000 && lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	assert_true(status_num(&w.a, "queued") >= 1000);
	/* Bridge C (MQTT 3.1.1) keeps 10 messages at most: 40 more dropped,
	 * counted and logged. */
	lbus *pc;
	assert_int_equal(lbt_connect(&w.b, &pc), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(lbus_publish(pc, "drop/x", "d", 1, 0), 0);
	assert_int_equal(lbus_sync(pc, lbt_ms(5000)), 0);
	deadline = lbt_now_ms() + lbt_ms(5000);
	while (lbt_bridge_status_num(&w.b, "lbus.bridge.c", "dropped\":{\"out") < 40 &&
	       lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	assert_int_equal(lbt_bridge_status_num(&w.b, "lbus.bridge.c", "dropped\":{\"out"), 40);
	assert_int_equal(lbt_bridge_status_num(&w.b, "lbus.bridge.c", "queued"), 10);
	long long c_out0 = lbt_bridge_status_num(&w.b, "lbus.bridge.c", "forwarded\":{\"out");
	lbus_close(pc);
	assert_int_equal(lbt_mosquitto_start(&w.mq), 0);
	publish_seq(pub, 2000, SEQ_TOTAL);
	assert_true(wait_count(sub, &got, SEQ_TOTAL, 30000));
	assert_true(wait_count(state_sub, &st, 2, 5000));
	assert_memory_equal(st.last, "connected", 9);
	/* Nothing more arrives: exactly once. */
	lbt_sleep_ms(300);
	assert_int_equal(lbus_run(sub, 100), 0);
	assert_int_equal(got.n, SEQ_TOTAL);
	assert_int_equal(got.bad, 0);
	assert_int_equal(got.next, SEQ_TOTAL);
	assert_int_equal(status_num(&w.a, "forwarded\":{\"out") - out0, SEQ_TOTAL);
	assert_int_equal(status_num(&w.a, "dropped\":{\"out"), 0);
	assert_int_equal(status_num(&w.a, "queued"), 0);
	assert_true(status_num(&w.a, "mqtt_connects") >= 2);
	deadline = lbt_now_ms() + lbt_ms(10000);
	while (lbt_bridge_status_num(&w.b, "lbus.bridge.c", "queued") != 0 && lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	assert_int_equal(lbt_bridge_status_num(&w.b, "lbus.bridge.c", "forwarded\":{\"out") - c_out0, 10);
	lbt_proc_exited(&w.bridge_c);
	assert_non_null(strstr(w.bridge_c.err, "queue full (10 messages"));
	char *sb = status(&w.b);
	fprintf(stderr, "bridge B after the restart: %s\n", sb ? sb : "?");
	free(sb);
	lbus_close(state_sub);
	lbus_close(pub);
	lbus_close(sub);
}

/* B -> A: commands, byte for byte (all 256 byte values, a large payload). */
static void test_remote_commands_byte_for_byte(void **state)
{
	SKIP_WITHOUT_BROKERS();
	static struct inbox got;
	static unsigned char bin[256], big[150000];
	lbus *pub, *sub = subscribe(&w.a, "remote/cmd/site1/#", on_msg, &got);

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	lbt_fill_random(big, sizeof(big), 7);
	assert_int_equal(lbt_connect(&w.b, &pub), 0);
	assert_int_equal(lbus_publish(pub, "cmd/site1/reboot", bin, sizeof(bin), 0), 0);
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	assert_true(wait_count(sub, &got, 1, 10000));
	assert_string_equal(got.topic, "remote/cmd/site1/reboot");
	assert_int_equal(got.last_len, sizeof(bin));
	assert_memory_equal(got.last, bin, sizeof(bin));
	assert_int_equal(got.sender_pid, (uint64_t)w.bridge_a.pid); /* published by bridge A */
	assert_int_equal(lbus_publish(pub, "cmd/site1/firmware", big, sizeof(big), 0), 0);
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	assert_true(wait_count(sub, &got, 2, 10000));
	assert_int_equal(got.big_len, sizeof(big));
	assert_memory_equal(got.big, big, sizeof(big));
	/* An empty payload crosses too (not retained: MQTT allows it). */
	assert_int_equal(lbus_publish(pub, "cmd/site1/ping", "", 0, 0), 0);
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	assert_true(wait_count(sub, &got, 3, 10000));
	assert_int_equal(got.last_len, 0);
	lbus_close(pub);
	lbus_close(sub);
}

/* A new subscriber on the bus gets topic's retained message (payload want)
 * within the deadline. */
static bool retained_arrives(const struct lbt_broker *bus, const char *topic, const char *want)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);

	while (lbt_now_ms() < deadline) {
		static struct inbox in;
		memset(&in, 0, sizeof(in));
		lbus *c = subscribe(bus, topic, on_msg, &in);
		lbus_close(c);
		if (in.n == 1 && in.retained && in.retain && in.last_len == strlen(want) &&
		    !memcmp(in.last, want, in.last_len))
			return true;
		lbt_sleep_ms(50);
	}
	return false;
}

/* Retained both ways: A's retained publish is retained on B (through MQTT's
 * retained store), B's retained command is retained on A. */
static void test_retained_both_ways(void **state)
{
	SKIP_WITHOUT_BROKERS();
	lbus *pa, *pb;

	assert_int_equal(lbt_connect(&w.a, &pa), 0);
	assert_int_equal(lbt_connect(&w.b, &pb), 0);
	assert_int_equal(lbus_publish(pa, "sensors/door", "open", 4, LBUS_RETAIN), 0);
	assert_int_equal(lbus_publish(pb, "cmd/site1/mode", "eco", 3, LBUS_RETAIN), 0);
	assert_int_equal(lbus_sync(pa, lbt_ms(5000)), 0);
	assert_int_equal(lbus_sync(pb, lbt_ms(5000)), 0);
	assert_true(retained_arrives(&w.b, "a/site1/sensors/door", "open"));
	assert_true(retained_arrives(&w.a, "remote/cmd/site1/mode", "eco"));
	/* A plain message does not replace it. */
	assert_int_equal(lbus_publish(pa, "sensors/door", "draught", 7, 0), 0);
	assert_int_equal(lbus_sync(pa, lbt_ms(5000)), 0);
	lbt_sleep_ms(200);
	assert_true(retained_arrives(&w.b, "a/site1/sensors/door", "open"));
	lbus_close(pa);
	lbus_close(pb);
}

/* An MQTT client of the test's own, counting what mosquitto carries. */
static void mqtt_count(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	(*(long *)ud)++;
}

static void mqtt_run(struct mosquitto *m, int ms)
{
	int64_t end = lbt_now_ms() + ms;

	while (lbt_now_ms() < end)
		mosquitto_loop(m, 20, 10);
}

/* Overlapping in/out trees on both bridges: every message is seen once per
 * bus and once on MQTT, however long we wait. */
static void test_no_loop_with_overlapping_routes(void **state)
{
	SKIP_WITHOUT_BROKERS();
	static struct inbox ga, gb;
	long on_mqtt = 0;
	struct mosquitto *m = mosquitto_new(NULL, true, &on_mqtt);

	assert_non_null(m);
	mosquitto_message_callback_set(m, mqtt_count);
	assert_int_equal(mosquitto_connect(m, "127.0.0.1", w.mq.port, 30), MOSQ_ERR_SUCCESS);
	assert_int_equal(mosquitto_subscribe(m, NULL, "shared/#", 1), MOSQ_ERR_SUCCESS);
	mqtt_run(m, 200);
	lbus *sa = subscribe(&w.a, "shared/#", on_msg, &ga), *sb = subscribe(&w.b, "shared/#", on_msg, &gb);
	lbus *pa;
	assert_int_equal(lbt_connect(&w.a, &pa), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(lbus_publish(pa, "shared/x", "ping", 4, 0), 0);
	assert_int_equal(lbus_flush(pa, lbt_ms(5000)), 0);
	assert_true(wait_count(sb, &gb, 20, 10000));
	mqtt_run(m, 500);
	assert_int_equal(lbus_run(sa, 100), 0);
	assert_int_equal(lbus_run(sb, 100), 0);
	assert_int_equal(ga.n, 20); /* the originals, no echo */
	assert_int_equal(gb.n, 20);
	assert_int_equal(on_mqtt, 20);
	/* And the other way. */
	lbus *pb;
	assert_int_equal(lbt_connect(&w.b, &pb), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(lbus_publish(pb, "shared/y", "pong", 4, 0), 0);
	assert_int_equal(lbus_flush(pb, lbt_ms(5000)), 0);
	assert_true(wait_count(sa, &ga, 40, 10000));
	mqtt_run(m, 500);
	assert_int_equal(lbus_run(sa, 100), 0);
	assert_int_equal(lbus_run(sb, 100), 0);
	assert_int_equal(ga.n, 40);
	assert_int_equal(gb.n, 40);
	assert_int_equal(on_mqtt, 40);
	lbus_close(pa);
	lbus_close(pb);
	lbus_close(sa);
	lbus_close(sb);
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
}

/* bridge A forwards $lbus/client/#: such topics are not MQTT's to take, so
 * each is reported and skipped. */
static void test_topics_outside_mqtt_rules_skipped(void **state)
{
	SKIP_WITHOUT_BROKERS();
	long long before = status_num(&w.a, "skipped");
	lbus *c;

	assert_true(before >= 0);
	assert_int_equal(lbt_connect(&w.a, &c), 0); /* publishes $lbus/client/connected */
	lbus_close(c);
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (status_num(&w.a, "skipped") < before + 1 && lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	assert_true(status_num(&w.a, "skipped") >= before + 1);
	lbt_proc_exited(&w.bridge_a);
	assert_non_null(strstr(w.bridge_a.err, "skipped outgoing message on '$lbus/client/"));
}

/* Bus A restarts under bridge A: it reconnects, owns its name again, and
 * traffic resumes both ways. */
static void test_local_bus_restart(void **state)
{
	SKIP_WITHOUT_BROKERS();
	static struct inbox ga, gb;
	struct lbt_broker_opts o = {.reuse_dir = true};

	kill(w.a.pid, SIGTERM);
	assert_int_equal(lbt_broker_wait_exit(&w.a, lbt_ms(10000)), 0);
	/* A command for bus A while it is down: dropped, and said so. */
	lbus *early;
	assert_int_equal(lbt_connect(&w.b, &early), 0);
	assert_int_equal(lbus_publish(early, "cmd/site1/while-down", "lost", 4, 0), 0);
	assert_int_equal(lbus_sync(early, lbt_ms(5000)), 0);
	lbus_close(early);
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	while (lbt_now_ms() < deadline &&
	       !(lbt_proc_exited(&w.bridge_a),
		 strstr(w.bridge_a.err, "cmd/site1/while-down': the bus is not connected")))
		lbt_sleep_ms(20);
	assert_non_null(strstr(w.bridge_a.err, "dropped incoming message on 'remote/cmd/site1/while-down'"));
	assert_int_equal(lbt_broker_start_opts(&w.a, &o), 0);
	deadline = lbt_now_ms() + lbt_ms(10000);
	while (status_num(&w.a, "lbus_connects") < 2 && lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	assert_int_equal(status_num(&w.a, "lbus_connects"), 2);
	assert_int_equal(status_num(&w.a, "dropped\":{\"out\":0,\"in"), 1);

	lbus *sb = subscribe(&w.b, "a/site1/sensors/again", on_msg, &gb);
	lbus *sa = subscribe(&w.a, "remote/cmd/site1/again", on_msg, &ga);
	lbus *pa, *pb;
	assert_int_equal(lbt_connect(&w.a, &pa), 0);
	assert_int_equal(lbt_connect(&w.b, &pb), 0);
	assert_int_equal(lbus_publish(pa, "sensors/again", "up", 2, 0), 0);
	assert_int_equal(lbus_publish(pb, "cmd/site1/again", "go", 2, 0), 0);
	assert_int_equal(lbus_flush(pa, lbt_ms(5000)), 0);
	assert_int_equal(lbus_flush(pb, lbt_ms(5000)), 0);
	assert_true(wait_count(sb, &gb, 1, 10000));
	assert_true(wait_count(sa, &ga, 1, 10000));
	assert_memory_equal(ga.last, "go", 2);
	lbt_proc_exited(&w.bridge_a);
	assert_non_null(strstr(w.bridge_a.err, "lost the bus at"));
	assert_non_null(strstr(strstr(w.bridge_a.err, "lost the bus at"), "connected to the bus at"));
	lbus_close(pa);
	lbus_close(pb);
	lbus_close(sa);
	lbus_close(sb);
}

/* An MQTT client of the test's own publishing "%06ld" payloads on topic
 * with QoS 1, returning once mosquitto acknowledged them all. */
static void on_puback(struct mosquitto *m, void *ud, int mid)
{
	(*(long *)ud)++;
}

static void mqtt_publish_seq(struct mosquitto *m, long *acked, const char *topic, long from, long to)
{
	char p[16];
	long want = *acked + (to - from);
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);

	for (long i = from; i < to; i++) {
		snprintf(p, sizeof(p), "%06ld", i);
		assert_int_equal(mosquitto_publish(m, NULL, topic, 6, p, 1, false), MOSQ_ERR_SUCCESS);
		if (i % 20 == 19)
			mosquitto_loop(m, 0, 10);
	}
	while (*acked < want && lbt_now_ms() < deadline)
		mosquitto_loop(m, 20, 10);
	assert_int_equal(*acked, want);
}

/* Bridge A's forwarded.in and dropped.in, from one status answer. */
static bool in_counts(long long *fwd, long long *drop)
{
	char *st = status(&w.a), *f = st ? strstr(st, "\"forwarded\":{") : NULL,
	     *d = st ? strstr(st, "\"dropped\":{") : NULL;
	long long out;
	bool ok = f && d && sscanf(f, "\"forwarded\":{\"out\":%lld,\"in\":%lld", &out, fwd) == 2 &&
		  sscanf(d, "\"dropped\":{\"out\":%lld,\"in\":%lld", &out, drop) == 2;

	free(st);
	return ok;
}

/* Wait until bridge A accounted for n incoming messages since fwd0/drop0
 * (forwarded or dropped); true when exactly n, never more. */
static bool in_accounted(long long fwd0, long long drop0, long long n)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	long long fwd = 0, drop = 0;

	while (lbt_now_ms() < deadline) {
		if (in_counts(&fwd, &drop) && fwd - fwd0 + drop - drop0 >= n)
			break;
		lbt_sleep_ms(20);
	}
	if (fwd - fwd0 + drop - drop0 != n)
		fprintf(stderr, "bridge A accounted for %lld incoming messages, not %lld\n",
			fwd - fwd0 + drop - drop0, n);
	return fwd - fwd0 + drop - drop0 == n;
}

/* Bus A restarts while MQTT keeps publishing to it (cmd/site1/stream, QoS 1):
 * what comes while it is down is counted as dropped, not lost silently nor
 * counted twice, and once bridge A has reconnected (through liblbus's
 * reconnect mode) everything published arrives, in order, exactly once. */
static void test_local_bus_restart_while_mqtt_publishes(void **state)
{
	SKIP_WITHOUT_BROKERS();
	static struct inbox got;
	struct lbt_broker_opts o = {.reuse_dir = true};
	long acked = 0;
	struct mosquitto *m = mosquitto_new(NULL, true, NULL);
	const char *topic = "cmd/site1/stream";

	assert_non_null(m);
	mosquitto_user_data_set(m, &acked);
	mosquitto_publish_callback_set(m, on_puback);
	assert_int_equal(mosquitto_connect(m, "127.0.0.1", w.mq.port, 30), MOSQ_ERR_SUCCESS);
	long long connects = status_num(&w.a, "lbus_connects"), in0, d0, in1, d1;
	assert_true(connects >= 1);
	assert_true(in_counts(&in0, &d0));

	mqtt_publish_seq(m, &acked, topic, 0, 200); /* bus A up */
	assert_true(in_accounted(in0, d0, 200));
	kill(w.a.pid, SIGTERM);
	mqtt_publish_seq(m, &acked, topic, 200, 400); /* while it stops */
	assert_int_equal(lbt_broker_wait_exit(&w.a, lbt_ms(10000)), 0);
	mqtt_publish_seq(m, &acked, topic, 400, 600); /* while it is down */
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	while (lbt_now_ms() < deadline &&
	       !(lbt_proc_exited(&w.bridge_a),
		 strstr(w.bridge_a.err, "dropped incoming message on 'remote/cmd/site1/stream'")))
		mosquitto_loop(m, 20, 10);
	assert_non_null(strstr(w.bridge_a.err, "dropped incoming message on 'remote/cmd/site1/stream'"));
	assert_int_equal(lbt_broker_start_opts(&w.a, &o), 0);
	mqtt_publish_seq(m, &acked, topic, 600, 800); /* while bridge A reconnects */
	deadline = lbt_now_ms() + lbt_ms(10000);
	while (status_num(&w.a, "lbus_connects") < connects + 1 && lbt_now_ms() < deadline)
		mosquitto_loop(m, 20, 10);
	assert_int_equal(status_num(&w.a, "lbus_connects"), connects + 1);
	assert_true(in_accounted(in0, d0, 800));
	assert_true(in_counts(&in1, &d1));
	assert_true(d1 - d0 >= 1); /* at least what came while bus A was down */

	lbus *sub = subscribe(&w.a, "remote/cmd/site1/stream", on_seq, &got);
	got.next = 800;
	mqtt_publish_seq(m, &acked, topic, 800, 1800); /* after the reconnect */
	assert_true(wait_count(sub, &got, 1000, 20000));
	lbt_sleep_ms(300);
	assert_int_equal(lbus_run(sub, 100), 0);
	assert_int_equal(got.n, 1000);
	assert_int_equal(got.bad, 0);
	assert_int_equal(got.next, 1800);
	assert_true(in_accounted(in0, d0, 1800));
	lbt_proc_exited(&w.bridge_a);
	const char *lost = strstr(w.bridge_a.err, "lost the bus at");
	assert_non_null(lost);
	while (strstr(lost + 1, "lost the bus at"))
		lost = strstr(lost + 1, "lost the bus at");
	assert_non_null(strstr(lost, "connected to the bus at"));
	lbus_close(sub);
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
}

/* Wait (up to 15 s) until bridge A's log has text, after the first `after`
 * characters. */
static bool bridge_a_logged(size_t after, const char *text)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(15000);

	do {
		lbt_proc_exited(&w.bridge_a);
		if (strlen(w.bridge_a.err) > after && strstr(w.bridge_a.err + after, text))
			return true;
		lbt_sleep_ms(20);
	} while (lbt_now_ms() < deadline);
	return false;
}

/* Wait until bridge A answers with lbus_connects n. */
static bool wait_lbus_connects(long long n)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(15000);

	while (status_num(&w.a, "lbus_connects") < n && lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	return status_num(&w.a, "lbus_connects") == n;
}

/* Bus A restarts and another client takes the bridge's name before bridge A
 * is back: the restore fails, bridge A says so and connects anew until the
 * name is free, then owns it and forwards again. (Bus A stays down 3 s, so
 * that bridge A's next attempt is a while off; when bridge A is back first
 * anyway, the round is repeated.) */
static void test_local_bus_restart_name_taken(void **state)
{
	SKIP_WITHOUT_BROKERS();
	static struct inbox gb;
	struct lbt_broker_opts o = {.reuse_dir = true};
	lbus *squat = NULL;
	long long connects = status_num(&w.a, "lbus_connects");
	size_t log_at = 0;

	for (int round = 0; round < 3 && !squat; round++) {
		lbt_proc_exited(&w.bridge_a);
		log_at = strlen(w.bridge_a.err);
		kill(w.a.pid, SIGTERM);
		assert_int_equal(lbt_broker_wait_exit(&w.a, lbt_ms(10000)), 0);
		lbt_sleep_ms(3000);
		assert_int_equal(lbt_broker_start_opts(&w.a, &o), 0);
		assert_int_equal(lbt_connect(&w.a, &squat), 0);
		if (lbus_name_take(squat, "lbus.bridge") == 0)
			break;
		lbus_close(squat);
		squat = NULL;
		assert_true(wait_lbus_connects(++connects));
	}
	assert_non_null(squat);
	assert_true(bridge_a_logged(log_at, "taking name lbus.bridge again failed: name already taken"));
	lbt_sleep_ms(300);
	assert_int_equal(lbus_run(squat, 10), 0); /* still ours */
	lbus_close(squat);
	assert_true(wait_lbus_connects(connects + 1));
	assert_true(bridge_a_logged(log_at, "connected to the bus at"));

	lbus *sb = subscribe(&w.b, "a/site1/sensors/named", on_msg, &gb), *pa;
	assert_int_equal(lbt_connect(&w.a, &pa), 0);
	assert_int_equal(lbus_publish(pa, "sensors/named", "again", 5, 0), 0);
	assert_int_equal(lbus_flush(pa, lbt_ms(5000)), 0);
	assert_true(wait_count(sb, &gb, 1, 10000));
	assert_memory_equal(gb.last, "again", 5);
	lbus_close(pa);
	lbus_close(sb);
}

/* TLS verifies the broker: a bridge that trusts another CA never connects,
 * says why, and keeps its messages. */
static void test_tls_wrong_ca_refused(void **state)
{
	SKIP_WITHOUT_BROKERS();
	struct lbt_proc d;

	assert_int_equal(lbt_bridge_start(&d, &w.mq, &w.b, "test-bridge-d",
					  "name = lbus.bridge.d\nout tls/# qos 1\n", "other-ca.pem"),
			 0);
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	while (!strstr(d.err ? d.err : "", "cannot connect to the MQTT broker") && lbt_now_ms() < deadline) {
		lbt_proc_exited(&d);
		lbt_sleep_ms(20);
	}
	if (!strstr(d.err, "cannot connect to the MQTT broker"))
		fail_msg("bridge D said: %s", d.err);
	assert_non_null(strstr(d.err, "TLS"));
	assert_true(lbt_bridge_wait_connected(&w.b, "lbus.bridge.d", false));
	lbus *p;
	assert_int_equal(lbt_connect(&w.b, &p), 0);
	assert_int_equal(lbus_publish(p, "tls/x", "kept", 4, 0), 0);
	assert_int_equal(lbus_sync(p, lbt_ms(5000)), 0);
	lbus_close(p);
	deadline = lbt_now_ms() + lbt_ms(5000);
	while (lbt_bridge_status_num(&w.b, "lbus.bridge.d", "queued") != 1 && lbt_now_ms() < deadline)
		lbt_sleep_ms(20);
	assert_int_equal(lbt_bridge_status_num(&w.b, "lbus.bridge.d", "queued"), 1);
	lbt_proc_signal(&d, SIGTERM);
	assert_int_equal(lbt_proc_wait(&d, lbt_ms(10000)), 0);
	assert_int_equal(d.exit_code, 0);
	assert_non_null(strstr(d.err, "exiting with 1 messages not acknowledged"));
	lbt_proc_free(&d);
}

/* `lbus call lbus.bridge status` from the command line. */
static void test_status_from_cli(void **state)
{
	SKIP_WITHOUT_BROKERS();
	struct lbt_proc r;

	assert_int_equal(lbt_cli_run(&w.b, NULL, 0, lbt_ms(5000), &r, "call", "lbus.bridge", "status", NULL),
			 0);
	assert_int_equal(r.exit_code, 0);
	assert_non_null(strstr(r.out, "\"client_id\":\"test-bridge-b\""));
	assert_non_null(strstr(r.out, "\"connected\":true"));
	assert_non_null(strstr(r.out, "\"forwarded\":{\"out\":"));
	lbt_proc_free(&r);
	assert_int_equal(lbt_cli_run(&w.b, NULL, 0, lbt_ms(5000), &r, "call", "lbus.bridge", "reboot", NULL),
			 0);
	assert_int_equal(r.exit_code, 1);
	assert_non_null(strstr(r.err, "unknown request"));
	lbt_proc_free(&r);
}

/* Configuration errors name FILE:LINE and exit 2; --help exits 0. */
static void test_config_error_exit(void **state)
{
	const char *bridge = lbt_bridge_path();
	struct lbt_broker dir;
	char path[PATH_MAX];
	struct lbt_proc r;

	assert_int_equal(lbt_broker_make_dir(&dir), 0);
	assert_int_equal(lbt_write_file(dir.dir, "bad.conf", "out a/#\nhots = x\n", 17, path), 0);
	const char *bad[] = {bridge, "-c", path, NULL};
	assert_int_equal(lbt_runv(bad, NULL, 0, lbt_ms(5000), &r), 0);
	assert_int_equal(r.exit_code, 2);
	assert_non_null(strstr(r.err, "bad.conf:2: unknown key 'hots'"));
	lbt_proc_free(&r);
	const char *help[] = {bridge, "--help", NULL};
	assert_int_equal(lbt_runv(help, NULL, 0, lbt_ms(5000), &r), 0);
	assert_int_equal(r.exit_code, 0);
	assert_non_null(strstr(r.out, "Usage: lbus-bridge -c FILE"));
	lbt_proc_free(&r);
	const char *none[] = {bridge, NULL};
	assert_int_equal(lbt_runv(none, NULL, 0, lbt_ms(5000), &r), 0);
	assert_int_equal(r.exit_code, 2);
	lbt_proc_free(&r);
	lbt_broker_kill(&dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exactly_once_in_order_across_mosquitto_restart),
	    cmocka_unit_test(test_remote_commands_byte_for_byte),
	    cmocka_unit_test(test_retained_both_ways),
	    cmocka_unit_test(test_no_loop_with_overlapping_routes),
	    cmocka_unit_test(test_topics_outside_mqtt_rules_skipped),
	    cmocka_unit_test(test_local_bus_restart),
	    cmocka_unit_test(test_local_bus_restart_while_mqtt_publishes),
	    cmocka_unit_test(test_local_bus_restart_name_taken),
	    cmocka_unit_test(test_tls_wrong_ca_refused),
	    cmocka_unit_test(test_status_from_cli),
	    cmocka_unit_test(test_config_error_exit),
	};
	mosquitto_lib_init();
	int r = cmocka_run_group_tests(tests, setup, teardown);
	mosquitto_lib_cleanup();
	return r;
}
