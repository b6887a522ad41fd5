/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of monitors (broker/monitor.c): the filter (publishes by
 * pattern with the '$' rule, other kinds only for "" and "#"), and the
 * hand-written MonitorEvent frame encoder, checked by decoding with the
 * protoc-c generated code, including the trimming to max_frame.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lbus.pb-c.h"
#include "monitor.h"
#include "refusal.h"
#include "frame.h"
#include "wire.h"

static struct monitor *mon(const char *pattern)
{
	struct monitor *m = NULL;
	assert_int_equal(monitor_new(NULL, pattern, strlen(pattern), &m), 0);
	return m;
}

static struct lbus_wire_monitor_event publish_ev(const char *topic)
{
	struct lbus_wire_monitor_event ev = {
	    .kind = LBUS__MONITOR_KIND__MON_PUBLISH, .topic = topic, .topic_len = strlen(topic)};
	return ev;
}

static void test_filter(void **state)
{
	struct monitors ms;
	struct monitor *all = mon(""), *hash = mon("#"), *some = mon("a/+");
	struct lbus_wire_monitor_event send = {
	    .kind = LBUS__MONITOR_KIND__MON_SEND, .name = "svc", .name_len = 3};
	struct lbus_wire_monitor_event ab = publish_ev("a/b"), c = publish_ev("c");
	struct lbus_wire_monitor_event pres = publish_ev("$lbus/client/connected");
	struct monitor *bad = NULL;

	monitors_init(&ms);
	monitors_add(&ms, all);
	monitors_add(&ms, hash);
	assert_int_equal(ms.count, 2);
	assert_true(monitor_wants(all, &send));
	assert_true(monitor_wants(hash, &send));
	assert_false(monitor_wants(some, &send));
	assert_true(monitor_wants(all, &ab));
	assert_true(monitor_wants(some, &ab));
	assert_false(monitor_wants(some, &c));
	assert_false(monitor_wants(all, &pres)); /* '$' needs an explicit pattern */
	struct monitor *dollar = mon("$lbus/#");
	assert_true(monitor_wants(dollar, &pres));
	assert_false(monitor_wants(dollar, &send));
	assert_int_equal(monitor_new(NULL, "a/#/b", 5, &bad), SUB_E_INVALID_PATTERN);

	monitor_free(&ms, all);
	monitor_free(&ms, hash);
	assert_int_equal(ms.count, 0);
	monitor_free(&ms, some); /* never registered */
	monitor_free(&ms, dollar);
	monitor_free(&ms, NULL);
}

/* Encode with max_frame and decode the frame with protoc-c. */
static Lbus__Frame *roundtrip(const struct lbus_wire_monitor_event *ev, uint32_t max_frame)
{
	size_t size = monitor_event_size(ev, max_frame);
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(monitor_event_encode(buf, ev, max_frame), size);
	assert_int_equal(lbus_frame_get_len(buf), size - 4);
	assert_true(size - 4 <= max_frame);
	Lbus__Frame *f = lbus__frame__unpack(NULL, size - 4, buf + 4);
	free(buf);
	assert_non_null(f);
	assert_int_equal(f->kind_case, LBUS__FRAME__KIND_MONITOR_EVENT);
	return f;
}

static void test_encode(void **state)
{
	struct lbus_wire_sender s = {
	    .id = 9, .name = "svc", .name_len = 3, .pid = 100, .uid = 1000, .gid = 1000};
	uint8_t sender[64];
	size_t sender_len = lbus_wire_sender_encode(sender, &s);
	const uint64_t receivers[] = {1, 300, 70000, 1ull << 40};
	struct lbus_wire_monitor_event ev = {
	    .kind = LBUS__MONITOR_KIND__MON_CALL,
	    .sender = sender,
	    .sender_len = sender_len,
	    .receivers = receivers,
	    .nreceivers = 4,
	    .name = "svc",
	    .name_len = 3,
	    .payload = (const uint8_t *)"hello",
	    .payload_len = 5,
	    .call_token = 77,
	    .error = 0,
	};

	Lbus__Frame *f = roundtrip(&ev, 1 << 20);
	Lbus__MonitorEvent *m = f->monitor_event;
	assert_int_equal(m->kind, LBUS__MONITOR_KIND__MON_CALL);
	assert_non_null(m->sender);
	assert_int_equal(m->sender->id, 9);
	assert_string_equal(m->sender->name, "svc");
	assert_int_equal(m->sender->pid, 100);
	assert_int_equal(m->n_receivers, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(m->receivers[i], receivers[i]);
	assert_string_equal(m->name, "svc");
	assert_string_equal(m->topic, "");
	assert_int_equal(m->payload.len, 5);
	assert_memory_equal(m->payload.data, "hello", 5);
	assert_int_equal(m->call_id, 77);
	assert_false(m->retain);
	lbus__frame__free_unpacked(f, NULL);

	struct lbus_wire_monitor_event err = {.kind = LBUS__MONITOR_KIND__MON_ERROR,
					      .call_token = 5,
					      .error = LBUS__ERROR_CODE__ERR_RESPONDER_GONE};
	f = roundtrip(&err, 1 << 20);
	assert_int_equal(f->monitor_event->kind, LBUS__MONITOR_KIND__MON_ERROR);
	assert_int_equal(f->monitor_event->error, LBUS__ERROR_CODE__ERR_RESPONDER_GONE);
	assert_null(f->monitor_event->sender);
	lbus__frame__free_unpacked(f, NULL);

	struct lbus_wire_monitor_event pub = publish_ev("a/b");
	pub.retain = true;
	pub.kind = LBUS__MONITOR_KIND__MON_PUBLISH;
	f = roundtrip(&pub, 1 << 20);
	assert_int_equal(f->monitor_event->kind, LBUS__MONITOR_KIND__MON_PUBLISH);
	assert_string_equal(f->monitor_event->topic, "a/b");
	assert_true(f->monitor_event->retain);
	lbus__frame__free_unpacked(f, NULL);
}

static void test_trim(void **state)
{
	enum { PAYLOAD = 10000, NRECV = 3000 };
	uint8_t *payload = malloc(PAYLOAD);
	uint64_t *receivers = malloc(NRECV * sizeof(*receivers));
	assert_non_null(payload);
	assert_non_null(receivers);
	memset(payload, 'x', PAYLOAD);
	for (int i = 0; i < NRECV; i++)
		receivers[i] = 100000 + (uint64_t)i;
	struct lbus_wire_monitor_event ev = publish_ev("big/topic");
	ev.payload = payload;
	ev.payload_len = PAYLOAD;
	ev.receivers = receivers;
	ev.nreceivers = NRECV;

	/* fits: everything kept */
	Lbus__Frame *f = roundtrip(&ev, 1 << 20);
	assert_int_equal(f->monitor_event->n_receivers, NRECV);
	assert_int_equal(f->monitor_event->payload.len, PAYLOAD);
	lbus__frame__free_unpacked(f, NULL);
	/* receivers dropped first */
	f = roundtrip(&ev, PAYLOAD + 100);
	assert_int_equal(f->monitor_event->n_receivers, 0);
	assert_int_equal(f->monitor_event->payload.len, PAYLOAD);
	lbus__frame__free_unpacked(f, NULL);
	/* then the payload is cut */
	for (uint32_t max = 4096; max < 4200; max++) {
		f = roundtrip(&ev, max);
		assert_true(f->monitor_event->payload.len < PAYLOAD);
		assert_true(f->monitor_event->payload.len > 4000);
		assert_string_equal(f->monitor_event->topic, "big/topic");
		lbus__frame__free_unpacked(f, NULL);
	}
	free(payload);
	free(receivers);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_filter),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_trim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
