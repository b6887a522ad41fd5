/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the connection's first steps and of framing errors
 * (broker/session.c, dispatch.c, client.c) through an in-process broker
 * (brokertest.h):
 *
 *  - Hello gets a Welcome with the connection's id, the protocol version,
 *    the agreed max_frame (the client's smaller wish, not below the
 *    minimum), max_queue and the broker's name; the req_id is echoed;
 *  - Ping gets Pong with its token and req_id, any number of times;
 *  - anything but Hello first, a second Hello, a wrong version, a length of
 *    0 or over max_frame, an undecodable body: a fatal Error with the right
 *    code, then the connection is closed; other clients are unaffected;
 *  - no Hello within hello_timeout_ms: ERR_TIMEOUT, closed;
 *  - a frame split across many writes is put together.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "brokertest.h"
#include "lbus-limits.h"

static void send_hello(struct bt_client *c, uint32_t version, uint32_t max_frame, uint32_t req_id)
{
	Lbus__Hello h = LBUS__HELLO__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	h.version = version;
	h.max_frame = max_frame;
	f.kind_case = LBUS__FRAME__KIND_HELLO;
	f.hello = &h;
	f.req_id = req_id;
	assert_int_equal(bt_send(c, &f), 0);
}

static void test_welcome(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client a, b;

	assert_int_equal(bt_start(&t), 0);
	t.b.cfg.max_queue = 123456;
	assert_int_equal(bt_adopt(&t, &a), 0);
	assert_int_equal(bt_adopt(&t, &b), 0);
	assert_int_not_equal(a.id, b.id);

	send_hello(&a, LBUS_PROTOCOL_VERSION, 100000, 77);
	Lbus__Frame *f = bt_expect(&a, LBUS__FRAME__KIND_WELCOME);
	assert_non_null(f);
	assert_int_equal(f->req_id, 77);
	assert_int_equal(f->welcome->version, LBUS_PROTOCOL_VERSION);
	assert_int_equal(f->welcome->client_id, a.id);
	assert_int_equal(f->welcome->max_frame, 100000);
	assert_int_equal(f->welcome->max_queue, 123456);
	assert_string_equal(f->welcome->broker, "lbusd " LBUS_VERSION_STRING);
	lbus__frame__free_unpacked(f, NULL);

	/* a wish below the minimum gets the minimum; 0 gets the default */
	send_hello(&b, LBUS_PROTOCOL_VERSION, 10, 0);
	f = bt_expect(&b, LBUS__FRAME__KIND_WELCOME);
	assert_non_null(f);
	assert_int_equal(f->welcome->max_frame, LBUS_MIN_MAX_FRAME);
	lbus__frame__free_unpacked(f, NULL);
	struct bt_client c;
	assert_int_equal(bt_adopt(&t, &c), 0);
	send_hello(&c, LBUS_PROTOCOL_VERSION, 0, 0);
	f = bt_expect(&c, LBUS__FRAME__KIND_WELCOME);
	assert_non_null(f);
	assert_int_equal(f->welcome->max_frame, t.b.cfg.max_frame);
	lbus__frame__free_unpacked(f, NULL);
	bt_stop(&t);
}

static void test_ping_pong(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client a;
	Lbus__Ping p = LBUS__PING__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &a), 0);
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &p;
	for (uint64_t i = 1; i <= 3; i++) {
		p.token = i * 1000;
		f.req_id = (uint32_t)i;
		assert_int_equal(bt_send(&a, &f), 0);
	}
	for (uint64_t i = 1; i <= 3; i++) {
		Lbus__Frame *r = bt_expect(&a, LBUS__FRAME__KIND_PONG);
		assert_non_null(r);
		assert_int_equal(r->pong->token, i * 1000);
		assert_int_equal(r->req_id, i);
		lbus__frame__free_unpacked(r, NULL);
	}
	bt_stop(&t);
}

static void test_fatal_errors(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client bystander, c;
	static const uint8_t zero_len[4] = {0, 0, 0, 0};
	static const uint8_t garbage[] = {5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff};

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &bystander), 0);

	assert_int_equal(bt_adopt(&t, &c), 0); /* a ping before hello */
	assert_int_equal(bt_ping(&c, 1), 0);
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_PROTOCOL), 0);
	bt_close(&c);

	assert_int_equal(bt_adopt(&t, &c), 0);
	send_hello(&c, LBUS_PROTOCOL_VERSION + 1, 0, 0);
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_VERSION), 0);
	bt_close(&c);

	assert_int_equal(bt_connect(&t, &c), 0);
	send_hello(&c, LBUS_PROTOCOL_VERSION, 0, 0);
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_PROTOCOL), 0);
	bt_close(&c);

	assert_int_equal(bt_connect(&t, &c), 0);
	assert_int_equal(bt_send_bytes(&c, zero_len, sizeof(zero_len)), 0);
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_PROTOCOL), 0);
	bt_close(&c);

	assert_int_equal(bt_connect(&t, &c), 0);
	uint8_t big[4];
	lbus_frame_put_len(big, t.b.cfg.max_frame + 1);
	assert_int_equal(bt_send_bytes(&c, big, sizeof(big)), 0);
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_TOO_BIG), 0);
	bt_close(&c);

	assert_int_equal(bt_connect(&t, &c), 0);
	assert_int_equal(bt_send_bytes(&c, garbage, sizeof(garbage)), 0);
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_PROTOCOL), 0);
	bt_close(&c);

	/* every one of them is gone from the broker; the bystander works */
	assert_int_equal(t.b.ctr.clients, 1);
	assert_int_equal(bt_ping(&bystander, 9), 0);
	Lbus__Frame *r = bt_expect(&bystander, LBUS__FRAME__KIND_PONG);
	assert_non_null(r);
	lbus__frame__free_unpacked(r, NULL);
	bt_stop(&t);
}

static void test_hello_timeout(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client c, ok;

	assert_int_equal(bt_start(&t), 0);
	t.b.cfg.hello_timeout_ms = 50;
	assert_int_equal(bt_adopt(&t, &c), 0);
	assert_int_equal(bt_connect(&t, &ok), 0); /* in time */
	assert_int_equal(bt_expect_fatal(&c, LBUS__ERROR_CODE__ERR_TIMEOUT), 0);
	bt_close(&c);
	assert_true(bt_nothing(&ok));
	assert_int_equal(t.b.ctr.clients, 1);
	bt_stop(&t);
}

static void test_fragmented_frame(void **state)
{
	(void)state;
	struct bt_broker t;
	struct bt_client pub, sub;
	Lbus__Publish p = LBUS__PUBLISH__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	uint8_t buf[256];

	assert_int_equal(bt_start(&t), 0);
	assert_int_equal(bt_connect(&t, &pub), 0);
	assert_int_equal(bt_connect(&t, &sub), 0);
	assert_int_equal(bt_sub(&sub, 1, "frag"), 0);
	p.topic = "frag";
	p.payload = (ProtobufCBinaryData){.len = 5, .data = (uint8_t *)"bytes"};
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &p;
	size_t len = lbus__frame__get_packed_size(&f);
	lbus_frame_put_len(buf, (uint32_t)len);
	lbus__frame__pack(&f, buf + 4);
	for (size_t i = 0; i < len + 4; i++) { /* one byte per turn */
		assert_int_equal(bt_send_bytes(&pub, buf + i, 1), 0);
		assert_int_equal(bt_settle(&t), 0);
	}
	Lbus__Frame *d = bt_expect(&sub, LBUS__FRAME__KIND_DELIVER);
	assert_non_null(d);
	assert_string_equal(d->deliver->publish->topic, "frag");
	assert_true(bt_bytes_eq(d->deliver->publish->payload, "bytes"));
	lbus__frame__free_unpacked(d, NULL);
	bt_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_welcome),	     cmocka_unit_test(test_ping_pong),
	    cmocka_unit_test(test_fatal_errors),     cmocka_unit_test(test_hello_timeout),
	    cmocka_unit_test(test_fragmented_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
