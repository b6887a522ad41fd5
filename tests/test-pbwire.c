/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/pbwire.c, the protobuf wire-format primitives of the
 * hot path: varints at their edges, the field iterator over every wire type,
 * and its refusal of truncated or invalid input (which a hostile client can
 * send, so it must never read past the end or accept garbage).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pbwire.h"

static const uint64_t edge_values[] = {
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x3fff,
    0x4000,
    0x1fffff,
    0x200000,
    0xffffffffu,
    0x100000000ull,
    0x7fffffffffffffffull,
    0x8000000000000000ull,
    UINT64_MAX,
};

static void test_varint_roundtrip_edges(void **state)
{
	static const size_t expected_len[] = {1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 9, 10, 10};
	for (size_t i = 0; i < sizeof(edge_values) / sizeof(edge_values[0]); i++) {
		uint8_t buf[16];
		memset(buf, 0xaa, sizeof(buf));
		size_t n = lbus_pb_put_varint(buf, edge_values[i]);
		assert_int_equal(n, expected_len[i]);
		assert_int_equal(lbus_pb_varint_len(edge_values[i]), n);
		assert_int_equal(buf[n], 0xaa); /* wrote nothing beyond */
		uint64_t v = 12345;
		assert_int_equal(lbus_pb_get_varint(buf, buf + n, &v), n);
		assert_true(v == edge_values[i]);
		/* One byte short: truncated. */
		assert_int_equal(lbus_pb_get_varint(buf, buf + n - 1, &v), 0);
	}
}

static void test_varint_known_encodings(void **state)
{
	uint8_t buf[10];
	assert_int_equal(lbus_pb_put_varint(buf, 300), 2);
	assert_int_equal(buf[0], 0xac);
	assert_int_equal(buf[1], 0x02);
	assert_int_equal(lbus_pb_put_varint(buf, UINT64_MAX), 10);
	assert_int_equal(buf[9], 0x01);
}

static void test_varint_invalid(void **state)
{
	uint64_t v;
	/* 11 bytes with continuation bits: longer than any 64-bit varint. */
	static const uint8_t too_long[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					     0x80, 0x80, 0x80, 0x80, 0x00};
	assert_int_equal(lbus_pb_get_varint(too_long, too_long + sizeof(too_long), &v), 0);
	/* 10th byte carrying more than the 64th bit. */
	static const uint8_t overflow[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
	assert_int_equal(lbus_pb_get_varint(overflow, overflow + 10, &v), 0);
	/* Empty input. */
	assert_int_equal(lbus_pb_get_varint(overflow, overflow, &v), 0);
	/* Non-minimal encodings are valid protobuf. */
	static const uint8_t padded[3] = {0x81, 0x80, 0x00};
	assert_int_equal(lbus_pb_get_varint(padded, padded + 3, &v), 3);
	assert_true(v == 1);
}

/* A message with one field of every wire type plus an unknown field. */
static void test_iterate_all_wire_types(void **state)
{
	uint8_t buf[128];
	size_t n = 0;
	n += lbus_pb_put_varint_field(buf + n, 1, 150);
	n += lbus_pb_put_bytes(buf + n, 2, "hello", 5, true);
	n += lbus_pb_put_tag(buf + n, 3, LBUS_PB_I64);
	static const uint8_t i64[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	memcpy(buf + n, i64, 8);
	n += 8;
	n += lbus_pb_put_tag(buf + n, 4, LBUS_PB_I32);
	static const uint8_t i32[4] = {9, 8, 7, 6};
	memcpy(buf + n, i32, 4);
	n += 4;
	n += lbus_pb_put_varint_field(buf + n, 100000, 7); /* a big field number */
	n += lbus_pb_put_bytes(buf + n, 5, "", 0, false);  /* explicit empty */

	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	lbus_pb_reader_init(&r, buf, n);
	assert_int_equal(lbus_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 1);
	assert_int_equal(f.type, LBUS_PB_VARINT);
	assert_int_equal(f.u, 150);
	assert_int_equal(lbus_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 2);
	assert_int_equal(f.type, LBUS_PB_LEN);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.data, "hello", 5);
	assert_int_equal(lbus_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 3);
	assert_int_equal(f.type, LBUS_PB_I64);
	assert_true(f.u == 0x0807060504030201ull);
	assert_int_equal(lbus_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 4);
	assert_int_equal(f.type, LBUS_PB_I32);
	assert_int_equal(f.u, 0x06070809u);
	assert_int_equal(lbus_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 100000);
	assert_int_equal(f.u, 7);
	assert_int_equal(lbus_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 5);
	assert_int_equal(f.len, 0);
	assert_int_equal(lbus_pb_next(&r, &f), 0);
	assert_int_equal(lbus_pb_next(&r, &f), 0); /* stays at the end */
}

static void test_empty_input_has_no_fields(void **state)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	lbus_pb_reader_init(&r, (const uint8_t *)"", 0);
	assert_int_equal(lbus_pb_next(&r, &f), 0);
}

/* Every proper prefix of a valid message either ends at a field boundary
 * (fewer fields) or is -EPROTO; it never reads past the prefix. */
static void test_every_truncation(void **state)
{
	uint8_t buf[64];
	size_t n = 0;
	n += lbus_pb_put_varint_field(buf + n, 1, 0x123456789ull);
	n += lbus_pb_put_bytes(buf + n, 2, "payload!", 8, true);
	n += lbus_pb_put_tag(buf + n, 3, LBUS_PB_I64);
	memset(buf + n, 0x11, 8);
	n += 8;
	n += lbus_pb_put_tag(buf + n, 4, LBUS_PB_I32);
	memset(buf + n, 0x22, 4);
	n += 4;
	/* Field boundaries: offsets where a prefix is a complete message. */
	size_t b1 = 1 + lbus_pb_varint_len(0x123456789ull), b2 = b1 + 2 + 8, b3 = b2 + 9;
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *copy = test_malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
		memcpy(copy, buf, cut);
		struct lbus_pb_reader r;
		struct lbus_pb_field f;
		lbus_pb_reader_init(&r, copy, cut);
		int ret, fields = 0;
		while ((ret = lbus_pb_next(&r, &f)) == 1)
			fields++;
		bool boundary = cut == 0 || cut == b1 || cut == b2 || cut == b3;
		if (boundary)
			assert_int_equal(ret, 0);
		else
			assert_int_equal(ret, -EPROTO);
		test_free(copy);
	}
}

static void test_invalid_keys(void **state)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	/* Field number 0. */
	static const uint8_t zero_field[] = {0x00, 0x01};
	lbus_pb_reader_init(&r, zero_field, sizeof(zero_field));
	assert_int_equal(lbus_pb_next(&r, &f), -EPROTO);
	/* Group start (3) and end (4), reserved types 6 and 7. */
	for (uint8_t t = 3; t <= 7; t++) {
		if (t == 5)
			continue;
		uint8_t bad[2] = {(uint8_t)(1 << 3 | t), 0};
		lbus_pb_reader_init(&r, bad, sizeof(bad));
		assert_int_equal(lbus_pb_next(&r, &f), -EPROTO);
	}
	/* Field number above 2^29-1. */
	uint8_t big[8];
	size_t n = lbus_pb_put_varint(big, (uint64_t)0x20000000 << 3);
	big[n++] = 0;
	lbus_pb_reader_init(&r, big, n);
	assert_int_equal(lbus_pb_next(&r, &f), -EPROTO);
	/* A LEN field whose length exceeds the input by one. */
	static const uint8_t long_len[] = {0x12, 0x03, 'a', 'b'};
	lbus_pb_reader_init(&r, long_len, sizeof(long_len));
	assert_int_equal(lbus_pb_next(&r, &f), -EPROTO);
	/* A LEN field with a huge length (must not wrap a pointer). */
	uint8_t huge[16] = {0x12};
	n = 1 + lbus_pb_put_varint(huge + 1, UINT64_MAX);
	lbus_pb_reader_init(&r, huge, n);
	assert_int_equal(lbus_pb_next(&r, &f), -EPROTO);
}

static void test_writers(void **state)
{
	uint8_t buf[32];
	/* Zero varints and empty bytes are omitted (proto3 defaults)... */
	assert_int_equal(lbus_pb_put_varint_field(buf, 1, 0), 0);
	assert_int_equal(lbus_pb_put_bytes(buf, 2, "", 0, true), 0);
	assert_int_equal(lbus_pb_varint_field_size(1, 0), 0);
	/* ...unless asked for. */
	assert_int_equal(lbus_pb_put_bytes(buf, 2, "", 0, false), 2);
	assert_int_equal(buf[0], 0x12);
	assert_int_equal(buf[1], 0x00);
	/* Sizes agree with what is written. */
	assert_int_equal(lbus_pb_put_varint_field(buf, 100, 300), lbus_pb_varint_field_size(100, 300));
	assert_int_equal(buf[0], 0xa0); /* (100 << 3) = 800 = 0xa0 0x06 */
	assert_int_equal(buf[1], 0x06);
	assert_int_equal(lbus_pb_put_bytes(buf, 16, "abc", 3, true), lbus_pb_len_field_size(16, 3));
	assert_int_equal(lbus_pb_tag_len(15), 1);
	assert_int_equal(lbus_pb_tag_len(16), 2);
	assert_int_equal(lbus_pb_put_len_header(buf, 2, 200), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_varint_roundtrip_edges),
	    cmocka_unit_test(test_varint_known_encodings),
	    cmocka_unit_test(test_varint_invalid),
	    cmocka_unit_test(test_iterate_all_wire_types),
	    cmocka_unit_test(test_empty_input_has_no_fields),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_invalid_keys),
	    cmocka_unit_test(test_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
