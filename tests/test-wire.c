/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/wire.c and wire-encode.c, the allocation-free codecs,
 * held against the reference: the code protoc-c generates from lbus.proto.
 * What wire.c encodes, lbus__frame__unpack must decode to the same values;
 * what lbus__frame__pack encodes, wire.c must decode; unknown fields are
 * skipped; malformed input is -EPROTO, never a crash or an overread (the
 * decoders run on exact-size heap copies so ASan would see one).
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
#include "frame.h"
#include "pbwire.h"
#include "wire.h"

/* Check the 4-byte header against the buffer and unpack the frame body with
 * protoc-c. */
static Lbus__Frame *unpack_frame(const uint8_t *buf, size_t n)
{
	assert_true(n >= 4);
	assert_int_equal(lbus_frame_get_len(buf), n - 4);
	Lbus__Frame *f = lbus__frame__unpack(NULL, n - 4, buf + 4);
	assert_non_null(f);
	return f;
}

static void check_publish_frame(const char *topic, size_t plen, bool retain, uint32_t req_id)
{
	uint8_t *payload = malloc(plen ? plen : 1);
	for (size_t i = 0; i < plen; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	size_t size = lbus_wire_publish_frame_size(strlen(topic), plen, retain, req_id);
	uint8_t *buf = malloc(size + 16);
	memset(buf, 0xee, size + 16);
	size_t n = lbus_wire_publish_frame_encode(buf, topic, strlen(topic), payload, plen, retain, req_id);
	assert_int_equal(n, size);
	assert_int_equal(buf[size], 0xee); /* nothing written past the size */

	Lbus__Frame *f = unpack_frame(buf, n);
	assert_int_equal(f->kind_case, LBUS__FRAME__KIND_PUBLISH);
	assert_string_equal(f->publish->topic, topic);
	assert_int_equal(f->publish->payload.len, plen);
	if (plen)
		assert_memory_equal(f->publish->payload.data, payload, plen);
	assert_int_equal(f->publish->retain, retain);
	assert_int_equal(f->req_id, req_id);
	assert_int_equal(f->fds, 0);
	lbus__frame__free_unpacked(f, NULL);

	/* And our own decoder reads back the same. */
	struct lbus_wire_frame wf;
	assert_int_equal(lbus_wire_frame_scan(buf + 4, n - 4, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_PUBLISH);
	assert_int_equal(wf.req_id, req_id);
	struct lbus_wire_publish p;
	assert_int_equal(lbus_wire_publish_decode(wf.body, wf.body_len, &p), 0);
	assert_int_equal(p.topic_len, strlen(topic));
	assert_memory_equal(p.topic, topic, p.topic_len);
	assert_int_equal(p.payload_len, plen);
	if (plen)
		assert_memory_equal(p.payload, payload, plen);
	assert_int_equal(p.retain, retain);
	free(buf);
	free(payload);
}

static void test_publish_encode_decodes_with_protoc(void **state)
{
	check_publish_frame("t", 1, false, 0);
	check_publish_frame("sensors/kitchen/temp", 4, true, 7);
	check_publish_frame("empty/payload", 0, false, 0);
	check_publish_frame("empty/retained", 0, true, 0xffffffffu);
	check_publish_frame("a", 127, false, 0);
	check_publish_frame("a", 128, false, 1);
	check_publish_frame("a", 300 * 1024, false, 0); /* 3-byte length varints */
	char topic[200];
	memset(topic, 'x', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = '\0';
	check_publish_frame(topic, 16384, true, 128);
}

/* Pack a generated frame, return a heap copy of exactly the frame body. */
static uint8_t *pack_body(const Lbus__Frame *f, size_t *len)
{
	*len = lbus__frame__get_packed_size(f);
	uint8_t *b = malloc(*len ? *len : 1);
	assert_int_equal(lbus__frame__pack(f, b), *len);
	return b;
}

static void test_protoc_publish_send_call_decode(void **state)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Publish pub = LBUS__PUBLISH__INIT;
	pub.topic = "a/b";
	pub.payload.data = (uint8_t *)"\0\1\2";
	pub.payload.len = 3;
	pub.retain = true;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &pub;
	f.req_id = 99;
	size_t len;
	uint8_t *b = pack_body(&f, &len);
	struct lbus_wire_frame wf;
	assert_int_equal(lbus_wire_frame_scan(b, len, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_PUBLISH);
	assert_int_equal(wf.req_id, 99);
	struct lbus_wire_publish p;
	assert_int_equal(lbus_wire_publish_decode(wf.body, wf.body_len, &p), 0);
	assert_int_equal(p.topic_len, 3);
	assert_memory_equal(p.topic, "a/b", 3);
	assert_int_equal(p.payload_len, 3);
	assert_memory_equal(p.payload, "\0\1\2", 3);
	assert_true(p.retain);
	free(b);

	Lbus__Send snd = LBUS__SEND__INIT;
	snd.name = "player";
	snd.payload.data = (uint8_t *)"play";
	snd.payload.len = 4;
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_SEND;
	f.send = &snd;
	b = pack_body(&f, &len);
	assert_int_equal(lbus_wire_frame_scan(b, len, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_SEND);
	assert_int_equal(wf.req_id, 0);
	struct lbus_wire_send s;
	assert_int_equal(lbus_wire_send_decode(wf.body, wf.body_len, &s), 0);
	assert_int_equal(s.name_len, 6);
	assert_memory_equal(s.name, "player", 6);
	assert_int_equal(s.payload_len, 4);
	assert_memory_equal(s.payload, "play", 4);
	free(b);

	Lbus__Call call = LBUS__CALL__INIT;
	call.target = "svc";
	call.payload.data = (uint8_t *)"q";
	call.payload.len = 1;
	call.call_id = 0x123456789abcull;
	call.timeout_ms = 2500;
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_CALL;
	f.call = &call;
	f.fds = 2;
	b = pack_body(&f, &len);
	assert_int_equal(lbus_wire_frame_scan(b, len, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_CALL);
	assert_int_equal(wf.fds, 2);
	struct lbus_wire_call c;
	assert_int_equal(lbus_wire_call_decode(wf.body, wf.body_len, &c), 0);
	assert_int_equal(c.target_len, 3);
	assert_memory_equal(c.target, "svc", 3);
	assert_int_equal(c.payload_len, 1);
	assert_true(c.call_id == 0x123456789abcull);
	assert_int_equal(c.timeout_ms, 2500);
	free(b);
}

/* An empty publish (no payload, empty topic in proto3 terms) scans fine:
 * validation of the topic is the caller's business. */
static void test_empty_messages(void **state)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Publish pub = LBUS__PUBLISH__INIT;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &pub;
	size_t len;
	uint8_t *b = pack_body(&f, &len);
	struct lbus_wire_frame wf;
	assert_int_equal(lbus_wire_frame_scan(b, len, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_PUBLISH);
	assert_int_equal(wf.body_len, 0);
	struct lbus_wire_publish p;
	assert_int_equal(lbus_wire_publish_decode(wf.body, wf.body_len, &p), 0);
	assert_int_equal(p.topic_len, 0);
	assert_int_equal(p.payload_len, 0);
	free(b);

	/* A frame without any kind scans to LBUS_K_NONE. */
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.req_id = 5;
	b = pack_body(&f, &len);
	assert_int_equal(lbus_wire_frame_scan(b, len, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_NONE);
	assert_int_equal(wf.req_id, 5);
	free(b);
}

/* Build a Deliver the broker's way: header (per recipient) + shared body. */
static size_t build_deliver(uint8_t *out, uint64_t sub_id, bool retained, uint32_t what, const uint8_t *msg,
			    size_t msg_len, const struct lbus_wire_sender *snd, uint64_t token)
{
	uint8_t sender[64];
	size_t slen = lbus_wire_sender_encode(sender, snd);
	assert_int_equal(slen, lbus_wire_sender_size(snd));
	size_t blen = lbus_wire_deliver_body_size(msg_len, slen, token);
	uint8_t *body = malloc(blen);
	assert_int_equal(lbus_wire_deliver_body_encode(body, what, msg, msg_len, sender, slen, token), blen);
	/* A retained variant also carries descriptors (Frame.fds in front). */
	size_t h = lbus_wire_deliver_header(out, sub_id, retained, blen, retained ? 16 : 0);
	assert_true(h <= LBUS_WIRE_DELIVER_HDR_MAX);
	memcpy(out + h, body, blen);
	free(body);
	return h + blen;
}

static void test_deliver_publish_decodes_with_protoc(void **state)
{
	/* The embedded message is the publisher's Publish, byte for byte. */
	Lbus__Publish pub = LBUS__PUBLISH__INIT;
	pub.topic = "x/y";
	pub.payload.data = (uint8_t *)"hello";
	pub.payload.len = 5;
	size_t mlen = lbus__publish__get_packed_size(&pub);
	uint8_t msg[64];
	lbus__publish__pack(&pub, msg);

	struct lbus_wire_sender snd = {
	    .id = 42, .name = "org.ex", .name_len = 6, .pid = 4242, .uid = 1000, .gid = 100};
	static const struct {
		uint64_t sub_id;
		bool retained;
	} variants[] = {{1, false}, {0, false}, {300, true}, {UINT64_MAX, true}};
	for (size_t i = 0; i < 4; i++) {
		uint8_t out[256];
		size_t n = build_deliver(out, variants[i].sub_id, variants[i].retained, LBUS_D_PUBLISH, msg,
					 mlen, &snd, 0);
		Lbus__Frame *f = unpack_frame(out, n);
		assert_int_equal(f->kind_case, LBUS__FRAME__KIND_DELIVER);
		assert_int_equal(f->fds, variants[i].retained ? 16 : 0);
		Lbus__Deliver *d = f->deliver;
		assert_true(d->sub_id == variants[i].sub_id);
		assert_int_equal(d->retained, variants[i].retained);
		assert_non_null(d->publish);
		assert_null(d->send);
		assert_null(d->call);
		assert_string_equal(d->publish->topic, "x/y");
		assert_int_equal(d->publish->payload.len, 5);
		assert_memory_equal(d->publish->payload.data, "hello", 5);
		assert_non_null(d->sender);
		assert_int_equal(d->sender->id, 42);
		assert_string_equal(d->sender->name, "org.ex");
		assert_int_equal(d->sender->pid, 4242);
		assert_int_equal(d->sender->uid, 1000);
		assert_int_equal(d->sender->gid, 100);
		assert_int_equal(d->call_token, 0);
		lbus__frame__free_unpacked(f, NULL);
	}
}

static void test_deliver_send_and_call_decode_with_protoc(void **state)
{
	Lbus__Send snd_msg = LBUS__SEND__INIT;
	snd_msg.name = "svc";
	snd_msg.payload.data = (uint8_t *)"";
	snd_msg.payload.len = 0;
	uint8_t msg[64];
	size_t mlen = lbus__send__pack(&snd_msg, msg);
	struct lbus_wire_sender anon = {.id = 7, .pid = 1, .uid = 0, .gid = 0}; /* no name, uid 0 */
	uint8_t out[256];
	size_t n = build_deliver(out, 0, false, LBUS_D_SEND, msg, mlen, &anon, 0);
	Lbus__Frame *f = unpack_frame(out, n);
	assert_int_equal(f->kind_case, LBUS__FRAME__KIND_DELIVER);
	assert_non_null(f->deliver->send);
	assert_string_equal(f->deliver->send->name, "svc");
	assert_int_equal(f->deliver->send->payload.len, 0);
	assert_string_equal(f->deliver->sender->name, "");
	assert_int_equal(f->deliver->sender->id, 7);
	assert_int_equal(f->deliver->sender->uid, 0);
	lbus__frame__free_unpacked(f, NULL);

	Lbus__Call call = LBUS__CALL__INIT;
	call.target = "svc";
	call.call_id = 5;
	mlen = lbus__call__pack(&call, msg);
	n = build_deliver(out, 3, false, LBUS_D_CALL, msg, mlen, &anon, 0xdeadbeefcafeull);
	f = unpack_frame(out, n);
	assert_non_null(f->deliver->call);
	assert_string_equal(f->deliver->call->target, "svc");
	assert_int_equal(f->deliver->call->call_id, 5);
	assert_true(f->deliver->call_token == 0xdeadbeefcafeull);
	assert_int_equal(f->deliver->sub_id, 3);
	lbus__frame__free_unpacked(f, NULL);
}

static void test_deliver_protoc_to_wire_decode(void **state)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Deliver d = LBUS__DELIVER__INIT;
	Lbus__Publish pub = LBUS__PUBLISH__INIT;
	Lbus__Sender snd = LBUS__SENDER__INIT;
	pub.topic = "t";
	pub.payload.data = (uint8_t *)"xyz";
	pub.payload.len = 3;
	snd.id = 9;
	snd.name = "n";
	snd.pid = 123;
	snd.uid = 456;
	snd.gid = 789;
	d.sub_id = 11;
	d.publish = &pub;
	d.sender = &snd;
	d.call_token = 77;
	d.retained = true;
	f.kind_case = LBUS__FRAME__KIND_DELIVER;
	f.deliver = &d;
	size_t len;
	uint8_t *b = pack_body(&f, &len);
	struct lbus_wire_frame wf;
	assert_int_equal(lbus_wire_frame_scan(b, len, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_DELIVER);
	struct lbus_wire_deliver wd;
	assert_int_equal(lbus_wire_deliver_decode(wf.body, wf.body_len, &wd), 0);
	assert_int_equal(wd.sub_id, 11);
	assert_int_equal(wd.what, LBUS_D_PUBLISH);
	assert_true(wd.retained);
	assert_int_equal(wd.call_token, 77);
	assert_int_equal(wd.sender.id, 9);
	assert_int_equal(wd.sender.name_len, 1);
	assert_memory_equal(wd.sender.name, "n", 1);
	assert_int_equal(wd.sender.pid, 123);
	assert_int_equal(wd.sender.uid, 456);
	assert_int_equal(wd.sender.gid, 789);
	struct lbus_wire_publish p;
	assert_int_equal(lbus_wire_publish_decode(wd.msg, wd.msg_len, &p), 0);
	assert_int_equal(p.topic_len, 1);
	assert_memory_equal(p.payload, "xyz", 3);
	free(b);
}

/* Append an unknown varint field and an unknown LEN field to bytes. */
static size_t add_unknown_fields(uint8_t *out)
{
	size_t n = lbus_pb_put_varint_field(out, 50, 12345);
	n += lbus_pb_put_bytes(out + n, 51, "future", 6, false);
	n += lbus_pb_put_tag(out + n, 52, LBUS_PB_I32);
	memset(out + n, 0, 4);
	return n + 4;
}

/* What the broker writes decodes back through lbus_wire_deliver_decode()
 * (its fast path), for every optional field present or absent: sub_id 0
 * (a send), retained, a call token, a sender that is root (uid 0, an
 * absent field) or the broker itself (id 0, no name). */
static void test_deliver_wire_roundtrip(void **state)
{
	static const struct lbus_wire_sender senders[] = {
	    {.id = 42, .name = "org.ex", .name_len = 6, .pid = 4242, .uid = 1000, .gid = 100},
	    {.id = 7, .pid = 1, .uid = 0, .gid = 0},
	    {0},
	};
	static const struct {
		uint64_t sub_id, token;
		bool retained;
		uint32_t what;
	} v[] = {{1, 0, false, LBUS_D_PUBLISH},
		 {0, 0, false, LBUS_D_SEND},
		 {300, 0, true, LBUS_D_PUBLISH},
		 {5, UINT64_MAX, false, LBUS_D_CALL},
		 {UINT64_MAX, 128, true, LBUS_D_CALL}};
	static const uint8_t msg[] = "\x0a\x03x/y\x12\x02hi";

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (size_t j = 0; j < sizeof(senders) / sizeof(senders[0]); j++) {
			uint8_t out[256];
			struct lbus_wire_frame wf;
			struct lbus_wire_deliver d;
			size_t n = build_deliver(out, v[i].sub_id, v[i].retained, v[i].what, msg,
						 sizeof(msg) - 1, &senders[j], v[i].token);

			assert_int_equal(lbus_wire_frame_scan(out + 4, n - 4, &wf), 0);
			assert_int_equal(wf.kind, LBUS_K_DELIVER);
			assert_int_equal(lbus_wire_deliver_decode(wf.body, wf.body_len, &d), 0);
			assert_true(d.sub_id == v[i].sub_id);
			assert_true(d.call_token == v[i].token);
			assert_int_equal(d.retained, v[i].retained);
			assert_int_equal(d.what, v[i].what);
			assert_int_equal(d.msg_len, sizeof(msg) - 1);
			assert_memory_equal(d.msg, msg, sizeof(msg) - 1);
			assert_true(d.sender.id == senders[j].id);
			assert_int_equal(d.sender.name_len, senders[j].name_len);
			if (d.sender.name_len)
				assert_memory_equal(d.sender.name, senders[j].name, d.sender.name_len);
			assert_int_equal(d.sender.pid, senders[j].pid);
			assert_int_equal(d.sender.uid, senders[j].uid);
			assert_int_equal(d.sender.gid, senders[j].gid);
		}
}

static void test_unknown_fields_are_skipped(void **state)
{
	/* A Publish with unknown fields before and after the known ones. */
	uint8_t body[128];
	size_t n = add_unknown_fields(body);
	n += lbus_pb_put_bytes(body + n, 1, "a/b", 3, false);
	n += add_unknown_fields(body + n);
	n += lbus_pb_put_bytes(body + n, 2, "pl", 2, false);
	struct lbus_wire_publish p;
	assert_int_equal(lbus_wire_publish_decode(body, n, &p), 0);
	assert_int_equal(p.topic_len, 3);
	assert_int_equal(p.payload_len, 2);

	/* A frame with an unknown field besides its kind. */
	uint8_t frame[256];
	size_t fn = add_unknown_fields(frame);
	fn += lbus_pb_put_bytes(frame + fn, LBUS_K_PUBLISH, body, n, false);
	fn += lbus_pb_put_varint_field(frame + fn, LBUS_F_FRAME_REQ_ID, 3);
	struct lbus_wire_frame wf;
	assert_int_equal(lbus_wire_frame_scan(frame, fn, &wf), 0);
	assert_int_equal(wf.kind, LBUS_K_PUBLISH);
	assert_int_equal(wf.body_len, n);
	assert_int_equal(wf.req_id, 3);
	/* protoc-c agrees. */
	Lbus__Frame *f = lbus__frame__unpack(NULL, fn, frame);
	assert_non_null(f);
	assert_string_equal(f->publish->topic, "a/b");
	lbus__frame__free_unpacked(f, NULL);

	/* Sender and Deliver too. */
	uint8_t snd[64];
	size_t sn = add_unknown_fields(snd);
	sn += lbus_pb_put_varint_field(snd + sn, 3, 77);
	struct lbus_wire_sender s;
	assert_int_equal(lbus_pb_decode(&lbus_wire_sender_desc, snd, sn, &s), 0);
	assert_int_equal(s.pid, 77);
	uint8_t del[256];
	size_t dn = add_unknown_fields(del);
	dn += lbus_pb_put_bytes(del + dn, LBUS_D_PUBLISH, body, n, false);
	dn += lbus_pb_put_bytes(del + dn, 5, snd, sn, false);
	struct lbus_wire_deliver d;
	assert_int_equal(lbus_wire_deliver_decode(del, dn, &d), 0);
	assert_int_equal(d.what, LBUS_D_PUBLISH);
	assert_int_equal(d.sender.pid, 77);
}

/* Run a decoder on an exact-size heap copy. */
typedef int (*decode_fn)(const uint8_t *, size_t, void *);

static int decode_copy(decode_fn fn, const uint8_t *bytes, size_t n)
{
	uint8_t *copy = test_malloc(n ? n : 1);
	memcpy(copy, bytes, n);
	union {
		struct lbus_wire_frame f;
		struct lbus_wire_publish p;
		struct lbus_wire_deliver d;
	} out;
	int r = fn(copy, n, &out);
	test_free(copy);
	return r;
}

static int scan_fn(const uint8_t *b, size_t n, void *o)
{
	return lbus_wire_frame_scan(b, n, o);
}
static int publish_fn(const uint8_t *b, size_t n, void *o)
{
	return lbus_wire_publish_decode(b, n, o);
}
static int deliver_fn(const uint8_t *b, size_t n, void *o)
{
	return lbus_wire_deliver_decode(b, n, o);
}

static void test_malformed_is_eproto(void **state)
{
	uint8_t b[64];
	size_t n;
	/* Two kinds in one frame. */
	n = lbus_pb_put_bytes(b, LBUS_K_PUBLISH, "", 0, false);
	n += lbus_pb_put_bytes(b + n, LBUS_K_SEND, "", 0, false);
	assert_int_equal(decode_copy(scan_fn, b, n), -EPROTO);
	/* A kind field that is not length-delimited. */
	n = lbus_pb_put_varint_field(b, LBUS_K_PUBLISH, 1);
	assert_int_equal(decode_copy(scan_fn, b, n), -EPROTO);
	/* req_id as a LEN field. */
	n = lbus_pb_put_bytes(b, LBUS_F_FRAME_REQ_ID, "x", 1, false);
	assert_int_equal(decode_copy(scan_fn, b, n), -EPROTO);
	/* Garbage. */
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	assert_int_equal(decode_copy(scan_fn, garbage, sizeof(garbage)), -EPROTO);
	/* A truncated kind body. */
	n = lbus_pb_put_len_header(b, LBUS_K_PUBLISH, 10);
	memset(b + n, 0, 5);
	assert_int_equal(decode_copy(scan_fn, b, n + 5), -EPROTO);
	/* Publish topic as a varint; payload truncated. */
	n = lbus_pb_put_varint_field(b, 1, 5);
	assert_int_equal(decode_copy(publish_fn, b, n), -EPROTO);
	n = lbus_pb_put_len_header(b, 2, 3);
	assert_int_equal(decode_copy(publish_fn, b, n + 2), -EPROTO);
	/* Deliver with two messages, or a broken sender. */
	n = lbus_pb_put_bytes(b, LBUS_D_PUBLISH, "", 0, false);
	n += lbus_pb_put_bytes(b + n, LBUS_D_SEND, "", 0, false);
	assert_int_equal(decode_copy(deliver_fn, b, n), -EPROTO);
	n = lbus_pb_put_bytes(b, 5, "\x08", 1, false); /* sender.id without its value */
	assert_int_equal(decode_copy(deliver_fn, b, n), -EPROTO);
}

/* Every prefix of a valid publish frame body is either valid or -EPROTO. */
static void test_every_truncation_of_a_frame(void **state)
{
	uint8_t buf[128];
	size_t n = lbus_wire_publish_frame_encode(buf, "some/topic", 10, "payload", 7, true, 300);
	for (size_t cut = 0; cut < n - 4; cut++) {
		int r = decode_copy(scan_fn, buf + 4, cut);
		assert_true(r == 0 || r == -EPROTO);
	}
}

static void test_frame_pack_helper(void **state)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Ping ping = LBUS__PING__INIT;
	ping.token = 1234;
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &ping;
	size_t size = lbus_frame_packed_size(&f);
	uint8_t buf[64];
	assert_int_equal(lbus_frame_pack(&f, buf), size);
	Lbus__Frame *g = unpack_frame(buf, size);
	assert_int_equal(g->kind_case, LBUS__FRAME__KIND_PING);
	assert_int_equal(g->ping->token, 1234);
	lbus__frame__free_unpacked(g, NULL);
}

static void test_kind_names(void **state)
{
	assert_string_equal(lbus_kind_name(LBUS_K_PUBLISH), "publish");
	assert_string_equal(lbus_kind_name(LBUS_K_HELLO), "hello");
	assert_string_equal(lbus_kind_name(LBUS_K_MONITOR_EVENT), "monitor_event");
	assert_string_equal(lbus_kind_name(0), "unknown");
	assert_string_equal(lbus_kind_name(25), "unknown");
	assert_string_equal(lbus_kind_name(UINT32_MAX), "unknown");
	/* The enum matches the generated oneof field numbers. */
	assert_int_equal(LBUS_K_PUBLISH, LBUS__FRAME__KIND_PUBLISH);
	assert_int_equal(LBUS_K_DELIVER, LBUS__FRAME__KIND_DELIVER);
	assert_int_equal(LBUS_K_MONITOR_EVENT, LBUS__FRAME__KIND_MONITOR_EVENT);
	assert_int_equal(LBUS_K_QUERY_NAME, LBUS__FRAME__KIND_QUERY_NAME);
}

/* What our encoders write takes the in-order pass of the decoder (the fast
 * path the benchmarks measure), not only the general loop. */
static void test_encoders_take_the_in_order_pass(void **state)
{
	static const struct lbus_wire_sender snd = {
	    .id = 300, .name = "svc", .name_len = 3, .pid = 70000, .uid = 1000, .gid = 100};
	uint8_t buf[256];
	struct lbus_wire_frame wf;
	struct lbus_wire_publish p = {0};
	struct lbus_wire_deliver d = {0};
	struct lbus_wire_sender s = {0};

	for (int retain = 0; retain < 2; retain++) {
		size_t n = lbus_wire_publish_frame_encode(buf, "a/b", 3, "xy", retain ? 0 : 2, retain, 0);
		assert_int_equal(lbus_wire_frame_scan(buf + 4, n - 4, &wf), 0);
		memset(&p, 0, sizeof(p));
		assert_true(lbus_pb_decode_in_order(&lbus_wire_publish_desc, wf.body, wf.body_len, &p));
		assert_int_equal(p.retain, retain);
		assert_int_equal(p.topic_len, 3);
	}
	static const uint8_t call[] = {0x0a, 0x01, 't', 0x18, 0x05}; /* Call{target "t", call_id 5} */
	size_t n = build_deliver(buf, 7, true, LBUS_D_CALL, call, sizeof(call), &snd, 99);
	assert_int_equal(lbus_wire_frame_scan(buf + 4, n - 4, &wf), 0);
	assert_true(lbus_pb_decode_in_order(&lbus_wire_deliver_desc, wf.body, wf.body_len, &d));
	assert_int_equal(d.what, LBUS_D_CALL);
	assert_int_equal(d.sub_id, 7);
	assert_true(d.retained);
	assert_int_equal(d.call_token, 99);
	assert_int_equal(d.sender.pid, 70000);
	n = lbus_wire_sender_encode(buf, &snd);
	assert_true(lbus_pb_decode_in_order(&lbus_wire_sender_desc, buf, n, &s));
	assert_int_equal(s.gid, 100);
}

/* Reply, Ok, Dropped, Ping and Pong, packed by protoc-c, decoded by wire.c. */
static void test_small_messages_decode(void **state)
{
	uint8_t buf[128];
	Lbus__Reply rp = LBUS__REPLY__INIT;
	struct lbus_wire_reply r;

	rp.call_token = 1ull << 40;
	rp.payload.data = (uint8_t *)"answer";
	rp.payload.len = 6;
	rp.error = LBUS__ERROR_CODE__ERR_RESPONDER_FAILED;
	rp.reason = "broken";
	size_t n = lbus__reply__pack(&rp, buf);
	assert_int_equal(lbus_wire_reply_decode(buf, n, &r), 0);
	assert_true(r.call_token == 1ull << 40 && r.error == LBUS__ERROR_CODE__ERR_RESPONDER_FAILED);
	assert_true(r.payload_len == 6 && memcmp(r.payload, "answer", 6) == 0);
	assert_true(r.reason_len == 6 && memcmp(r.reason, "broken", 6) == 0);

	Lbus__Ok ok = LBUS__OK__INIT;
	struct lbus_wire_ok o;
	ok.request = LBUS_K_QUERY_NAME;
	ok.owner = 12345678901ull;
	n = lbus__ok__pack(&ok, buf);
	assert_int_equal(lbus_wire_ok_decode(buf, n, &o), 0);
	assert_true(o.request == LBUS_K_QUERY_NAME && o.owner == 12345678901ull);

	Lbus__Dropped dr = LBUS__DROPPED__INIT;
	struct lbus_wire_dropped dd;
	dr.sub_id = 3;
	dr.count = 1000;
	n = lbus__dropped__pack(&dr, buf);
	assert_int_equal(lbus_wire_dropped_decode(buf, n, &dd), 0);
	assert_true(dd.sub_id == 3 && dd.count == 1000);

	Lbus__Ping ping = LBUS__PING__INIT;
	uint64_t token = 0;
	ping.token = UINT64_MAX;
	n = lbus__ping__pack(&ping, buf);
	assert_int_equal(lbus_wire_ping_decode(buf, n, &token), 0);
	assert_true(token == UINT64_MAX);
	assert_int_equal(lbus_wire_pong_decode(buf, n, &token), 0); /* the same layout */
	assert_true(token == UINT64_MAX);
	assert_int_equal(lbus_wire_pong_decode(buf, 0, &token), 0);
	assert_true(token == 0);
}

/* A known field of the wrong wire type is -EPROTO in every decoder (as in
 * protobuf-c); the same number as an unknown field of another message is not. */
static void test_wrong_wire_type_is_eproto(void **state)
{
	uint8_t b[16];
	size_t n = lbus_pb_put_bytes(b, LBUS_F_PING_TOKEN, "x", 1, false);
	uint64_t token;
	struct lbus_wire_ok o;
	struct lbus_wire_dropped d;
	struct lbus_wire_reply r;

	assert_int_equal(lbus_wire_ping_decode(b, n, &token), -EPROTO);
	assert_int_equal(lbus_wire_ok_decode(b, n, &o), -EPROTO);
	assert_int_equal(lbus_wire_dropped_decode(b, n, &d), -EPROTO);
	assert_int_equal(lbus_wire_reply_decode(b, n, &r), -EPROTO);
	assert_null(lbus__ping__unpack(NULL, n, b));
	n = lbus_pb_put_varint_field(b, LBUS_F_REPLY_PAYLOAD, 5);
	assert_int_equal(lbus_wire_reply_decode(b, n, &r), -EPROTO);
	assert_int_equal(lbus_wire_ping_decode(b, n, &token), 0); /* field 2: unknown to Ping */
}

/* CallResult frames as the broker writes them decode with protoc-c. */
static void test_result_frame_decodes_with_protoc(void **state)
{
	static const struct lbus_wire_sender snd = {.id = 9, .name = "responder", .name_len = 9, .pid = 1};
	uint8_t sender[64], buf[256];
	size_t slen = lbus_wire_sender_encode(sender, &snd);
	struct lbus_wire_result full = {.call_id = 77,
					.payload = (const uint8_t *)"reply",
					.payload_len = 5,
					.sender = sender,
					.sender_len = slen,
					.req_id = 500};
	struct lbus_wire_result err = {
	    .call_id = 78, .error = LBUS__ERROR_CODE__ERR_TIMEOUT, .reason = "late", .reason_len = 4};

	size_t n = lbus_wire_result_frame_encode(buf, &full);
	assert_int_equal(n, lbus_wire_result_frame_size(&full));
	Lbus__Frame *f = unpack_frame(buf, n);
	assert_int_equal(f->kind_case, LBUS__FRAME__KIND_RESULT);
	assert_int_equal(f->req_id, 500);
	assert_int_equal(f->result->call_id, 77);
	assert_int_equal(f->result->error, 0);
	assert_memory_equal(f->result->payload.data, "reply", 5);
	assert_non_null(f->result->sender);
	assert_string_equal(f->result->sender->name, "responder");
	lbus__frame__free_unpacked(f, NULL);

	n = lbus_wire_result_frame_encode(buf, &err);
	assert_int_equal(n, lbus_wire_result_frame_size(&err));
	f = unpack_frame(buf, n);
	assert_int_equal(f->req_id, 0);
	assert_int_equal(f->result->call_id, 78);
	assert_int_equal(f->result->error, LBUS__ERROR_CODE__ERR_TIMEOUT);
	assert_string_equal(f->result->reason, "late");
	assert_int_equal(f->result->payload.len, 0);
	assert_null(f->result->sender);
	lbus__frame__free_unpacked(f, NULL);
}

/* Unknown fields of a control body are found and dropped; known ones stay,
 * in order, and bytes that are not protobuf stay for the decoder. */
static void test_unknown_fields_dropped(void **state)
{
	(void)state;
	/* Unsubscribe{sub_id 5}, field 99 (varint), sub_id 7 again, field 3 (LEN "xy") */
	static const uint8_t body[] = {0x08, 0x05, 0x98, 0x06, 0x01, 0x08, 0x07, 0x1a, 0x02, 'x', 'y'};
	static const uint8_t known[] = {0x08, 0x05, 0x08, 0x07};
	static const uint8_t clean[] = {0x08, 0x05};
	static const uint8_t bad_tail[] = {0x08, 0x05, 0x98}; /* truncated tag */
	uint8_t out[sizeof(body)];
	size_t n;

	assert_true(lbus_wire_has_unknown_fields(LBUS_K_UNSUBSCRIBE, body, sizeof(body)));
	assert_false(lbus_wire_has_unknown_fields(LBUS_K_UNSUBSCRIBE, clean, sizeof(clean)));
	n = lbus_wire_drop_unknown_fields(LBUS_K_UNSUBSCRIBE, body, sizeof(body), out);
	assert_int_equal(n, sizeof(known));
	assert_memory_equal(out, known, n);
	assert_false(lbus_wire_has_unknown_fields(LBUS_K_UNSUBSCRIBE, out, n));
	Lbus__Unsubscribe *u = lbus__unsubscribe__unpack(NULL, n, out);
	assert_non_null(u);
	assert_int_equal(u->sub_id, 7); /* the last one wins, as before */
	assert_int_equal(u->base.n_unknown_fields, 0);
	lbus__unsubscribe__free_unpacked(u, NULL);
	n = lbus_wire_drop_unknown_fields(LBUS_K_UNSUBSCRIBE, bad_tail, sizeof(bad_tail), out);
	assert_int_equal(n, sizeof(bad_tail));
	assert_memory_equal(out, bad_tail, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_encode_decodes_with_protoc),
	    cmocka_unit_test(test_protoc_publish_send_call_decode),
	    cmocka_unit_test(test_empty_messages),
	    cmocka_unit_test(test_deliver_publish_decodes_with_protoc),
	    cmocka_unit_test(test_deliver_send_and_call_decode_with_protoc),
	    cmocka_unit_test(test_deliver_protoc_to_wire_decode),
	    cmocka_unit_test(test_deliver_wire_roundtrip),
	    cmocka_unit_test(test_unknown_fields_are_skipped),
	    cmocka_unit_test(test_malformed_is_eproto),
	    cmocka_unit_test(test_every_truncation_of_a_frame),
	    cmocka_unit_test(test_frame_pack_helper),
	    cmocka_unit_test(test_kind_names),
	    cmocka_unit_test(test_encoders_take_the_in_order_pass),
	    cmocka_unit_test(test_small_messages_decode),
	    cmocka_unit_test(test_wrong_wire_type_is_eproto),
	    cmocka_unit_test(test_result_frame_decodes_with_protoc),
	    cmocka_unit_test(test_unknown_fields_dropped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
