/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for every decoder in proto/: bad input must never crash,
 * overread, loop forever or decode to something inconsistent.
 *
 * LLVMFuzzerTestOneInput() takes one input and runs it through
 *  - lbus_frame_next() over an lbus_rbuf fed in pieces of input-derived
 *    sizes, checking every frame against the input bytes it came from;
 *  - lbus_wire_frame_scan() on the input and on every frame found, then the
 *    decoder of the kind found (publish, send, call, deliver), held against
 *    protobuf-c where both accept the bytes, and re-encoded with proto/wire-encode.c
 *    and decoded again to the same values;
 *  - every message decoder and lbus_pb_next() loops (the inline fast path in
 *    lockstep with lbus_pb_next_slow(), one level into nested messages);
 *  - every decoding table of wire.c: the in-order pass against the general
 *    loop, and the result field by field against protobuf-c's unpacking;
 *  - lbus_topic_validate/pattern_validate/topic_match and the name rules on
 *    slices of the input, matching held against a naive reference;
 *  - lbus__frame__unpack() of protobuf-c, then pack and unpack again.
 * Decoders always run on exact-size heap copies, so ASan sees any overread.
 *
 * Built with -DLBUS_LIBFUZZER (by hand, with clang -fsanitize=fuzzer) the file
 * is a libFuzzer target and a failed check aborts. Otherwise main() is a
 * cmocka test (suite fuzz) that runs the seed corpus of fuzz-mutate.c, then
 * a deterministic run of mutations ($LBUS_FUZZ_SEED, $LBUS_FUZZ_ITERATIONS
 * override the seed and the count; the run also stops after a time budget).
 * A failed check prints the input in hex and fails the test.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbus.pb-c.h"
#include "frame.h"
#include "lbus-limits.h"
#include "pbwire.h"
#include "topic.h"
#include "wire.h"

#ifndef LBUS_LIBFUZZER
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "fuzz-mutate.h"
#endif

#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- checks ---------------------------------------------------------------------- */

/* What the checks got to see: printed after a run, so a corpus that stopped
 * reaching a decoder shows. */
static struct {
	unsigned long frames, scanned, publish_rt, deliver_rt, pbc_agree, matches, tables_pbc;
} seen;

/* The input of the run in progress, printed when a check fails. */
static const uint8_t *cur_input;
static size_t cur_len;

static void check_failed(int line, const char *what)
{
	fprintf(stderr, "fuzz-decode.c:%d: check failed: %s\n", line, what);
	fprintf(stderr, "input (%zu bytes):", cur_len);
	for (size_t i = 0; i < cur_len && i < 4096; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n  ", cur_input[i]);
	fputc('\n', stderr);
#ifdef LBUS_LIBFUZZER
	abort();
#else
	fail_msg("fuzz-decode.c:%d: %s", line, what);
#endif
}

/* [p, p+n) lies inside [base, base+len) (an empty slice may be NULL). */
static bool inside(const void *p, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *q = p;
	if (n == 0 && !q)
		return true;
	return q >= base && q <= base + len && n <= (size_t)(base + len - q);
}

/* An exact-size heap copy (at least one byte allocated), for ASan. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* A protobuf-c string field equals len bytes at s (which may hold NULs). */
static bool pb_string_is(const char *pb, const char *s, size_t len)
{
	return pb && (len == 0 || memcmp(pb, s, len) == 0) && pb[len] == '\0';
}

/* ---- protobuf wire reader -------------------------------------------------------- */

/* Iterate the fields of [p, p+n) with the inline reader and the slow one in
 * lockstep: same results, progress every step, fields inside the input.
 * Recurses into LEN fields down to depth. */
static void check_pb_fields(const uint8_t *p, size_t n, int depth)
{
	struct lbus_pb_reader a, b;
	struct lbus_pb_field fa, fb;
	int ra, rb;

	lbus_pb_reader_init(&a, p, n);
	lbus_pb_reader_init(&b, p, n);
	for (;;) {
		const uint8_t *before = a.p;
		ra = lbus_pb_next(&a, &fa);
		rb = lbus_pb_next_slow(&b, &fb);
		CHECK(ra == rb);
		CHECK(ra == 1 || ra == 0 || ra == -EPROTO);
		if (ra <= 0)
			break;
		CHECK(a.p == b.p && a.p > before && a.p <= p + n);
		CHECK(fa.num == fb.num && fa.type == fb.type && fa.u == fb.u);
		CHECK(fa.data == fb.data && fa.len == fb.len);
		CHECK(fa.num >= 1 && fa.num <= 0x1fffffff);
		CHECK(fa.type == LBUS_PB_VARINT || fa.type == LBUS_PB_I64 || fa.type == LBUS_PB_LEN ||
		      fa.type == LBUS_PB_I32);
		if (fa.type == LBUS_PB_LEN) {
			CHECK(inside(fa.data, fa.len, p, n) && fa.data + fa.len == a.p);
			if (depth > 0)
				check_pb_fields(fa.data, fa.len, depth - 1);
		}
	}
}

/* Varints at the first positions: inline and slow readers agree, and a
 * value read re-encodes (canonically, so never longer) and reads back. */
static void check_varints(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && i < 32; i++) {
		uint64_t v1 = 0, v2 = 0, v3 = 0;
		size_t n1 = lbus_pb_get_varint(p + i, p + n, &v1);
		size_t n2 = lbus_pb_get_varint_slow(p + i, p + n, &v2);
		CHECK(n1 == n2 && n1 <= 10 && n1 <= n - i);
		if (!n1)
			continue;
		CHECK(v1 == v2);
		uint8_t enc[10];
		size_t ne = lbus_pb_put_varint(enc, v1);
		CHECK(ne == lbus_pb_varint_len(v1) && ne <= n1);
		CHECK(lbus_pb_get_varint(enc, enc + ne, &v3) == ne && v3 == v1);
	}
}

/* ---- message decoders ------------------------------------------------------------ */

static void check_topic_matches(const char *topic, size_t len);

static void check_publish_roundtrip(const struct lbus_wire_publish *p, uint32_t req_id)
{
	size_t size = lbus_wire_publish_frame_size(p->topic_len, p->payload_len, p->retain, req_id);
	uint8_t *buf = malloc(size);
	struct lbus_wire_frame f;
	struct lbus_wire_publish q;

	if (!buf)
		abort();
	CHECK(lbus_wire_publish_frame_encode(buf, p->topic, p->topic_len, p->payload, p->payload_len,
					     p->retain, req_id) == size);
	CHECK(lbus_frame_get_len(buf) == size - LBUS_FRAME_HEADER);
	CHECK(lbus_wire_frame_scan(buf + 4, size - 4, &f) == 0);
	CHECK(f.kind == LBUS_K_PUBLISH && f.req_id == req_id && f.fds == 0);
	CHECK(lbus_wire_publish_decode(f.body, f.body_len, &q) == 0);
	CHECK(same_bytes(q.topic, q.topic_len, p->topic, p->topic_len));
	CHECK(same_bytes(q.payload, q.payload_len, p->payload, p->payload_len));
	CHECK(q.retain == p->retain);
	free(buf);
}

static void check_publish(const uint8_t *body, size_t len, uint32_t req_id, bool roundtrip)
{
	struct lbus_wire_publish p;
	int r = lbus_wire_publish_decode(body, len, &p);

	CHECK(r == 0 || r == -EPROTO);
	if (r < 0)
		return;
	CHECK(inside(p.topic, p.topic_len, body, len) && inside(p.payload, p.payload_len, body, len));
	if (!roundtrip)
		return;
	check_publish_roundtrip(&p, req_id);
	seen.publish_rt++;
	check_topic_matches(p.topic, p.topic_len);
	Lbus__Publish *pb = lbus__publish__unpack(NULL, len, body);
	if (pb) {
		CHECK(pb_string_is(pb->topic, p.topic, p.topic_len));
		CHECK(same_bytes(pb->payload.data, pb->payload.len, p.payload, p.payload_len));
		CHECK(pb->retain == p.retain);
		lbus__publish__free_unpacked(pb, NULL);
	}
}

static void check_send(const uint8_t *body, size_t len, bool compare)
{
	struct lbus_wire_send s;
	int r = lbus_wire_send_decode(body, len, &s);

	CHECK(r == 0 || r == -EPROTO);
	if (r < 0)
		return;
	CHECK(inside(s.name, s.name_len, body, len) && inside(s.payload, s.payload_len, body, len));
	Lbus__Send *pb = compare ? lbus__send__unpack(NULL, len, body) : NULL;
	if (pb) {
		CHECK(pb_string_is(pb->name, s.name, s.name_len));
		CHECK(same_bytes(pb->payload.data, pb->payload.len, s.payload, s.payload_len));
		lbus__send__free_unpacked(pb, NULL);
	}
}

static void check_call(const uint8_t *body, size_t len, bool compare)
{
	struct lbus_wire_call c;
	int r = lbus_wire_call_decode(body, len, &c);

	CHECK(r == 0 || r == -EPROTO);
	if (r < 0)
		return;
	CHECK(inside(c.target, c.target_len, body, len) && inside(c.payload, c.payload_len, body, len));
	Lbus__Call *pb = compare ? lbus__call__unpack(NULL, len, body) : NULL;
	if (pb) {
		CHECK(pb_string_is(pb->target, c.target, c.target_len));
		CHECK(same_bytes(pb->payload.data, pb->payload.len, c.payload, c.payload_len));
		CHECK(pb->call_id == c.call_id && pb->timeout_ms == c.timeout_ms);
		lbus__call__free_unpacked(pb, NULL);
	}
}

static bool same_sender(const struct lbus_wire_sender *a, const struct lbus_wire_sender *b)
{
	return a->id == b->id && a->pid == b->pid && a->uid == b->uid && a->gid == b->gid &&
	       same_bytes(a->name, a->name_len, b->name, b->name_len);
}

/* Re-encode a decoded Deliver the way the broker does (per-recipient header
 * plus shared body) and decode it again. */
static void check_deliver_roundtrip(const struct lbus_wire_deliver *d)
{
	size_t slen = lbus_wire_sender_size(&d->sender);
	size_t blen = lbus_wire_deliver_body_size(d->msg_len, slen, d->call_token);
	size_t hlen = lbus_wire_deliver_header_size(d->sub_id, d->retained, blen, 0);
	uint8_t *sender = malloc(slen ? slen : 1), *frame = malloc(hlen + blen);
	struct lbus_wire_sender s2;
	struct lbus_wire_frame f;
	struct lbus_wire_deliver e;

	if (!sender || !frame)
		abort();
	CHECK(lbus_wire_sender_encode(sender, &d->sender) == slen);
	CHECK(lbus_pb_decode(&lbus_wire_sender_desc, sender, slen, &s2) == 0 && same_sender(&s2, &d->sender));
	CHECK(hlen <= LBUS_WIRE_DELIVER_HDR_MAX);
	CHECK(lbus_wire_deliver_header(frame, d->sub_id, d->retained, blen, 0) == hlen);
	CHECK(lbus_wire_deliver_body_encode(frame + hlen, d->what, d->msg, d->msg_len, sender, slen,
					    d->call_token) == blen);
	CHECK(lbus_frame_get_len(frame) == hlen + blen - LBUS_FRAME_HEADER);
	CHECK(lbus_wire_frame_scan(frame + 4, hlen + blen - 4, &f) == 0 && f.kind == LBUS_K_DELIVER);
	CHECK(lbus_wire_deliver_decode(f.body, f.body_len, &e) == 0);
	CHECK(e.sub_id == d->sub_id && e.what == d->what && e.call_token == d->call_token);
	CHECK(e.retained == d->retained && same_sender(&e.sender, &d->sender));
	CHECK(same_bytes(e.msg, e.msg_len, d->msg, d->msg_len));
	free(sender);
	free(frame);
}

/* How often field num occurs at the top level of a valid message. */
static unsigned field_count(const uint8_t *p, size_t n, uint32_t num)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	unsigned count = 0;

	lbus_pb_reader_init(&r, p, n);
	while (lbus_pb_next(&r, &f) > 0)
		count += f.num == num;
	return count;
}

static void check_deliver(const uint8_t *body, size_t len, bool roundtrip)
{
	struct lbus_wire_deliver d;
	int r = lbus_wire_deliver_decode(body, len, &d);

	CHECK(r == 0 || r == -EPROTO);
	if (r < 0)
		return;
	CHECK(d.what == 0 || d.what == LBUS_D_PUBLISH || d.what == LBUS_D_SEND || d.what == LBUS_D_CALL);
	CHECK(inside(d.msg, d.msg_len, body, len) && inside(d.sender.name, d.sender.name_len, body, len));
	CHECK(d.what != 0 || (d.msg == NULL && d.msg_len == 0));
	if (!roundtrip)
		return;
	if (d.what) {
		check_deliver_roundtrip(&d);
		seen.deliver_rt++;
	}
	Lbus__Deliver *pb = lbus__deliver__unpack(NULL, len, body);
	if (pb) {
		CHECK(pb->sub_id == d.sub_id && pb->call_token == d.call_token && pb->retained == d.retained);
		/* A Sender sent twice: protobuf-c merges the two (as the protobuf
		 * spec says), wire.c keeps the last. Compared only when single. */
		if (pb->sender && field_count(body, len, 5) == 1)
			CHECK(pb->sender->id == d.sender.id && pb->sender->pid == d.sender.pid &&
			      pb_string_is(pb->sender->name, d.sender.name, d.sender.name_len));
		lbus__deliver__free_unpacked(pb, NULL);
	}
}

static void check_sender(const uint8_t *body, size_t len)
{
	struct lbus_wire_sender s;
	int r = lbus_pb_decode(&lbus_wire_sender_desc, body, len, &s);

	CHECK(r == 0 || r == -EPROTO);
	if (r == 0)
		CHECK(inside(s.name, s.name_len, body, len));
}

/* ---- every decoding table: in-order pass, general loop, protobuf-c ---------------- */

/* Room for any struct a table decodes into. */
union decoded {
	uint64_t align;
	void *ptr;
	unsigned char b[256];
};

static void check_entry_pbc(const struct lbus_pb_field_desc *d, const unsigned char *ours,
			    const ProtobufCMessage *pb, const uint8_t *p, size_t n);

/* Our decoding of every field of a message equals protobuf-c's. Nested
 * messages are compared when they occur once (protobuf-c merges repeats,
 * we keep the last); p is NULL below the top level. */
static void check_msg_pbc(const struct lbus_pb_msg_desc *m, const unsigned char *ours,
			  const ProtobufCMessage *pb, const uint8_t *p, size_t n)
{
	CHECK(pb->descriptor == m->proto);
	for (size_t i = 0; i < m->n; i++)
		check_entry_pbc(&m->fields[i], ours, pb, p, n);
}

static void check_entry_pbc(const struct lbus_pb_field_desc *d, const unsigned char *ours,
			    const ProtobufCMessage *pb, const uint8_t *p, size_t n)
{
	const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(pb->descriptor, d->num);
	const unsigned char *theirs = (const unsigned char *)pb + fd->offset;
	const uint8_t *data;
	size_t len;
	uint64_t a, b;
	uint32_t a32, b32, what;
	bool flag;
	int pbool;
	const ProtobufCMessage *sub;

	switch (d->store) {
	case LBUS_PB_S_BYTES:
		memcpy(&data, ours + d->off, sizeof(data));
		memcpy(&len, ours + d->len_off, sizeof(len));
		if (fd->type == PROTOBUF_C_TYPE_STRING) {
			const char *str;
			memcpy(&str, theirs, sizeof(str));
			CHECK(pb_string_is(str, (const char *)data, len));
		} else {
			ProtobufCBinaryData bin;
			memcpy(&bin, theirs, sizeof(bin));
			CHECK(same_bytes(bin.data, bin.len, data, len));
		}
		break;
	case LBUS_PB_S_U64:
		memcpy(&a, ours + d->off, sizeof(a));
		memcpy(&b, theirs, sizeof(b));
		CHECK(a == b);
		break;
	case LBUS_PB_S_U32:
		memcpy(&a32, ours + d->off, sizeof(a32));
		memcpy(&b32, theirs, sizeof(b32));
		CHECK(a32 == b32);
		break;
	case LBUS_PB_S_BOOL:
		memcpy(&flag, ours + d->off, sizeof(flag));
		memcpy(&pbool, theirs, sizeof(pbool));
		CHECK(flag == (pbool != 0));
		break;
	case LBUS_PB_S_MSG:
		memcpy(&sub, theirs, sizeof(sub));
		if (p && field_count(p, n, d->num) == 0)
			CHECK(sub == NULL);
		if (p && field_count(p, n, d->num) == 1) {
			CHECK(sub != NULL);
			check_msg_pbc(d->sub, ours + d->off, sub, NULL, 0);
		}
		break;
	case LBUS_PB_S_ONEOF:
		memcpy(&sub, theirs, sizeof(sub));
		memcpy(&what, ours + d->case_off, sizeof(what));
		CHECK((sub != NULL) == (what == d->num));
		break;
	}
}

/*
 * Every table on the same bytes: the in-order pass, where it takes the
 * input, gives what the general loop gives; lbus_pb_decode() gives what the
 * general loop gives; and where protobuf-c also accepts the bytes, every
 * field equals its. (Frame's table only for the first two: its oneof is
 * compared in check_frame_protobuf_c.)
 */
static void check_tables(const uint8_t *p, size_t n)
{
	for (const struct lbus_pb_msg_desc *const *mp = lbus_wire_descs; *mp; mp++) {
		const struct lbus_pb_msg_desc *m = *mp;
		union decoded fast, loop, dec;

		CHECK(m->size <= sizeof(fast.b));
		memset(fast.b, 0, m->size);
		memset(loop.b, 0, m->size);
		bool in_order = lbus_pb_decode_in_order(m, p, n, fast.b);
		int r = lbus_pb_decode_fields(m, p, n, loop.b);
		CHECK(r == 0 || r == -EPROTO);
		if (in_order)
			CHECK(r == 0 && memcmp(fast.b, loop.b, m->size) == 0);
		CHECK(lbus_pb_decode(m, p, n, dec.b) == r);
		if (r < 0)
			continue;
		CHECK(memcmp(dec.b, loop.b, m->size) == 0);
		if (m == &lbus_wire_frame_desc)
			continue;
		ProtobufCMessage *pb = protobuf_c_message_unpack(m->proto, NULL, n, p);
		if (pb) {
			check_msg_pbc(m, dec.b, pb, p, n);
			seen.tables_pbc++;
			protobuf_c_message_free_unpacked(pb, NULL);
		}
	}
}

/* Every message decoder on the same bytes, whatever they are meant to be. */
static void check_all_decoders(const uint8_t *p, size_t n)
{
	check_publish(p, n, 0, false);
	check_send(p, n, false);
	check_call(p, n, false);
	check_sender(p, n);
	check_deliver(p, n, false);
	check_tables(p, n);
	check_pb_fields(p, n, 2);
	check_varints(p, n);
}

/* ---- frames ---------------------------------------------------------------------- */

/* The kind's own decoder, compared with protobuf-c and round-tripped. */
static void check_kind_body(uint32_t kind, const uint8_t *body, size_t len, uint32_t req_id)
{
	uint8_t *copy = dup_exact(body, len);

	switch (kind) {
	case LBUS_K_PUBLISH:
		check_publish(copy, len, req_id, true);
		break;
	case LBUS_K_SEND:
		check_send(copy, len, true);
		break;
	case LBUS_K_CALL:
		check_call(copy, len, true);
		break;
	case LBUS_K_DELIVER:
		check_deliver(copy, len, true);
		break;
	}
	check_tables(copy, len);
	free(copy);
}

/* protobuf-c's view of a frame body: where both decoders accept it, they
 * agree; what protobuf-c unpacks, it packs and unpacks again. */
static void check_frame_protobuf_c(const uint8_t *p, size_t n, int scan, const struct lbus_wire_frame *f)
{
	Lbus__Frame *pb = lbus__frame__unpack(NULL, n, p);

	if (!pb)
		return;
	if (scan == 0) {
		CHECK((uint32_t)pb->kind_case == f->kind && pb->req_id == f->req_id && pb->fds == f->fds);
		seen.pbc_agree++;
	}
	size_t size = lbus__frame__get_packed_size(pb);
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	CHECK(lbus__frame__pack(pb, buf) == size);
	/* protobuf-c keeps an unknown field 0 it read from a non-canonical tag
	 * (0x81 0x00) and writes it back canonically (0x01), which it refuses:
	 * its quirk, not ours, so a failed second unpack is not checked. */
	Lbus__Frame *again = lbus__frame__unpack(NULL, size, buf);
	if (again) {
		CHECK(again->kind_case == pb->kind_case && again->req_id == pb->req_id);
		lbus__frame__free_unpacked(again, NULL);
	}
	lbus__frame__free_unpacked(pb, NULL);
	free(buf);
}

/* One frame body (without its length header), an exact-size copy. */
static void check_frame_body(const uint8_t *p, size_t n)
{
	struct lbus_wire_frame f;
	int r = lbus_wire_frame_scan(p, n, &f);

	CHECK(r == 0 || r == -EPROTO);
	if (r == 0) {
		seen.scanned++;
		CHECK(f.kind <= LBUS_K_MAX && lbus_kind_name(f.kind) != NULL);
		if (f.kind)
			CHECK(inside(f.body, f.body_len, p, n));
		else
			CHECK(f.body == NULL && f.body_len == 0);
		if (f.kind)
			check_kind_body(f.kind, f.body, f.body_len, f.req_id);
	}
	check_frame_protobuf_c(p, n, r, &f);
}

/* FNV-1a, to derive the piece sizes from the input itself. */
static uint64_t input_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Take every complete frame out of rb; checks each against the input at
 * offset *taken. Returns false once the stream is broken (as the broker
 * would close the connection). */
static bool drain_frames(struct lbus_rbuf *rb, uint32_t max, const uint8_t *data, size_t fed, size_t *taken)
{
	for (;;) {
		const uint8_t *body = NULL;
		uint32_t len = 0;
		size_t need = 0;
		uint32_t hdr = fed - *taken >= 4 ? lbus_frame_get_len(data + *taken) : 0;

		CHECK(lbus_rbuf_len(rb) == fed - *taken);
		int r = lbus_frame_next(rb, max, &body, &len, &need);
		if (r < 0) {
			CHECK(fed - *taken >= 4);
			CHECK(r == (hdr == 0 ? -EPROTO : -EMSGSIZE) && (hdr == 0 || hdr > max));
			return false;
		}
		if (r == 0) {
			CHECK(need > fed - *taken && need >= 4);
			CHECK(fed - *taken < 4 || need == (size_t)hdr + 4);
			return true;
		}
		CHECK(r == 1 && len > 0 && len <= max && len == hdr);
		CHECK(inside(body, len, rb->data, rb->cap));
		CHECK(*taken + 4 + len <= fed && memcmp(body, data + *taken + 4, len) == 0);
		*taken += 4 + (size_t)len;
		seen.frames++;
		CHECK(lbus_rbuf_len(rb) == fed - *taken);
		uint8_t *copy = dup_exact(body, len);
		check_frame_body(copy, len);
		free(copy);
	}
}

/* The input as a byte stream, fed to an rbuf in pieces of 1..64 bytes. */
static void check_stream(const uint8_t *data, size_t size)
{
	static const uint32_t max_frames[] = {16, LBUS_MIN_MAX_FRAME, LBUS_DEFAULT_MAX_FRAME};
	uint64_t h = input_hash(data, size);
	uint32_t max = max_frames[h % 3];
	struct lbus_rbuf rb;
	size_t fed = 0, taken = 0;

	lbus_rbuf_init(&rb);
	while (fed < size) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		size_t piece = 1 + (size_t)(h >> 33) % 64;
		if (piece > size - fed)
			piece = size - fed;
		CHECK(lbus_rbuf_reserve(&rb, piece) == 0 && lbus_rbuf_avail(&rb) >= piece);
		memcpy(lbus_rbuf_tail(&rb), data + fed, piece);
		lbus_rbuf_advance(&rb, piece);
		fed += piece;
		if (!drain_frames(&rb, max, data, fed, &taken))
			break;
		if ((h >> 20) % 4 == 0) {
			size_t before = lbus_rbuf_len(&rb);
			lbus_rbuf_shrink(&rb, 64);
			CHECK(lbus_rbuf_len(&rb) == before);
		}
	}
	lbus_rbuf_deinit(&rb);
}

/* ---- topics, patterns, names ----------------------------------------------------- */

/* Naive matcher: split both into levels, compare level by level. */
static bool ref_match(const char *pat, size_t plen, const char *top, size_t tlen)
{
	size_t pi = 0, ti = 0;

	if (top[0] == '$' && (pat[0] == '+' || pat[0] == '#') && (plen == 1 || pat[1] == '/'))
		return false;
	for (;;) {
		size_t pe = pi, te = ti;
		while (pe < plen && pat[pe] != '/')
			pe++;
		if (pe - pi == 1 && pat[pi] == '#')
			return true;
		if (ti > tlen)
			return false; /* the topic has no level left */
		while (te < tlen && top[te] != '/')
			te++;
		if (!(pe - pi == 1 && pat[pi] == '+') && !same_bytes(pat + pi, pe - pi, top + ti, te - ti))
			return false;
		pi = pe + 1;
		ti = te + 1;
		if (pi > plen)
			return ti > tlen;
	}
}

static bool ref_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > LBUS_MAX_NAME_LEN || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-", s[i]) ||
		    !s[i])
			return false;
	return true;
}

static void check_string_rules(const char *s, size_t n)
{
	int t = lbus_topic_validate(s, n), p = lbus_pattern_validate(s, n);

	CHECK((t == 0 || t == -EINVAL) && (p == 0 || p == -EINVAL));
	if (t == 0) {
		CHECK(p == 0 && lbus_utf8_valid(s, n));
		CHECK(lbus_topic_match(s, n, s, n));
	}
	CHECK((lbus_name_validate(s, n) == 0) == ref_name_ok(s, n));
	CHECK((lbus_group_validate(s, n) == 0) == ref_name_ok(s, n));
	CHECK(lbus_topic_is_reserved(s, n) == (n > 0 && s[0] == '$'));
}

/* A decoded topic (an exact copy of it) against a few patterns. */
static void check_topic_matches(const char *topic, size_t len)
{
	static const char *const patterns[] = {"#",	   "+",	      "fuzz/#", "fuzz/+/#", "+/+/+",
					       "fuzz/a/b", "$lbus/#", "+/a/#",	"fuzz/+"};
	char *t = (char *)dup_exact((const uint8_t *)topic, len);

	check_string_rules(t, len);
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]) && lbus_topic_validate(t, len) == 0;
	     i++) {
		size_t plen = strlen(patterns[i]);
		CHECK(lbus_topic_match(patterns[i], plen, t, len) == ref_match(patterns[i], plen, t, len));
		seen.matches++;
	}
	free(t);
}

/* The input split in two: a pattern and a topic. */
static void check_topics(const uint8_t *data, size_t size)
{
	size_t cut = size ? data[0] % (size + 1) : 0;
	char *pat = (char *)dup_exact(data, cut), *top = (char *)dup_exact(data + cut, size - cut);
	size_t plen = cut, tlen = size - cut;

	check_string_rules(pat, plen);
	check_string_rules(top, tlen);
	if (lbus_pattern_validate(pat, plen) == 0 && lbus_topic_validate(top, tlen) == 0) {
		CHECK(lbus_topic_match(pat, plen, top, tlen) == ref_match(pat, plen, top, tlen));
		seen.matches++;
	}
	free(pat);
	free(top);
}

/* ---- the entry point ------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = dup_exact(data, size);

	cur_input = copy;
	cur_len = size;
	check_stream(copy, size);
	check_frame_body(copy, size);
	check_all_decoders(copy, size);
	if (size > 4)
		check_all_decoders(copy + 4, size - 4);
	check_topics(copy, size);
	free(copy);
	return 0;
}

#ifndef LBUS_LIBFUZZER
/* ---- the deterministic run (cmocka) ---------------------------------------------- */

#define DEFAULT_SEED 0x1b05f022u
#define DEFAULT_ITERATIONS 200000
#define TIME_BUDGET_S 8.0

static struct fz_seeds seeds;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every seed decodes as the kind it was built as, whole and as a stream of
 * all of them, and passes every check. */
static void test_seed_corpus(void **state)
{
	struct fz_buf all = {0};
	uint32_t kinds = 0;

	for (size_t i = 0; i < seeds.n; i++) {
		const struct fz_seed *s = &seeds.v[i];
		struct lbus_wire_frame f;
		assert_int_equal(lbus_frame_get_len(s->data), s->len - 4);
		assert_int_equal(lbus_wire_frame_scan(s->data + 4, s->len - 4, &f), 0);
		assert_int_equal(f.kind, s->kind);
		kinds |= 1u << f.kind;
		LLVMFuzzerTestOneInput(s->data, s->len);
		fz_buf_append(&all, s->data, s->len);
	}
	assert_int_equal(kinds | 1u, (2u << LBUS_K_MAX) - 1); /* every kind 1..24 */
	LLVMFuzzerTestOneInput(all.data, all.len);
	fz_buf_free(&all);
}

/* Seeds (or runs of a few seeds) mutated, through the entry point. */
static void test_mutations(void **state)
{
	uint64_t seed = fz_seed_from_env(DEFAULT_SEED);
	const char *it = getenv("LBUS_FUZZ_ITERATIONS");
	long iterations = it && *it ? strtol(it, NULL, 0) : DEFAULT_ITERATIONS, i;
	struct fz_rng r;
	struct fz_buf b = {0};
	double t0 = now_s();

	fprintf(stderr, "fuzz-decode: seed 0x%llx (LBUS_FUZZ_SEED), %ld iterations\n",
		(unsigned long long)seed, iterations);
	fz_rng_init(&r, seed);
	for (i = 0; i < iterations; i++) {
		if (i % 1024 == 0 && now_s() - t0 > TIME_BUDGET_S)
			break;
		b.len = 0;
		for (size_t n = fz_rng_below(&r, 8) ? 1 : 2 + fz_rng_below(&r, 3); n > 0; n--) {
			const struct fz_seed *s = fz_seed_pick(&r, &seeds, false);
			fz_buf_append(&b, s->data, s->len);
		}
		fz_mutate(&r, &b, &seeds);
		LLVMFuzzerTestOneInput(b.data, b.len);
	}
	fprintf(stderr, "fuzz-decode: %ld inputs in %.2f s\n", i, now_s() - t0);
	fprintf(stderr,
		"fuzz-decode: %lu frames taken from streams, %lu frame scans ok, %lu agreed with "
		"protobuf-c, %lu publish and %lu deliver round trips, %lu matches compared, %lu table "
		"decodings agreed with protobuf-c\n",
		seen.frames, seen.scanned, seen.pbc_agree, seen.publish_rt, seen.deliver_rt, seen.matches,
		seen.tables_pbc);
	assert_true(seen.frames > 0 && seen.publish_rt > 0 && seen.deliver_rt > 0 && seen.matches > 0 &&
		    seen.tables_pbc > 0);
	fz_buf_free(&b);
}

/* Plain random bytes of every small length. */
static void test_random_bytes(void **state)
{
	struct fz_rng r;
	uint8_t buf[300];

	fz_rng_init(&r, fz_seed_from_env(DEFAULT_SEED) ^ 0x5555);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		for (int k = 0; k < 20; k++) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)fz_rng_next(&r);
			LLVMFuzzerTestOneInput(buf, len);
		}
	}
}

static int setup(void **state)
{
	fz_seeds_build(&seeds);
	return 0;
}

static int teardown(void **state)
{
	fz_seeds_free(&seeds);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed_corpus),
	    cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
#endif
