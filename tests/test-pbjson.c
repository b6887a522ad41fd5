/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the protobuf <-> JSON walker of the lbus CLI (tools/pbschema.c,
 * pbdecode.c, pbencode.c) on the test schema tests/data/pbtest.proto, whose
 * descriptor set meson makes with protoc (LBUS_PBTEST_DESC). The payloads are
 * written by hand, byte by byte, to reach what protobuf's own serializers never
 * write: unpacked data for packed fields and the reverse, repeated singular
 * fields, split messages, oneof members overriding each other, duplicate map
 * keys, unknown fields and groups, and every kind of malformed input. The
 * oracle test (pbjson-oracle.py) covers what python3-protobuf writes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbjson.h"

static struct pbs_pool *pool;
static char err[512];

static int load_pool(void **state)
{
	const char *path = getenv("LBUS_PBTEST_DESC");

	if (!path || pbs_pool_load(path, &pool, err, sizeof(err)) < 0) {
		fprintf(stderr, "cannot load LBUS_PBTEST_DESC: %s\n", path ? err : "not set");
		return -1;
	}
	return 0;
}

static int free_pool(void **state)
{
	pbs_pool_free(pool);
	return 0;
}

static const struct pbs_message *type(const char *name)
{
	const struct pbs_message *m = pbs_pool_message(pool, name);

	assert_non_null(m);
	return m;
}

/* Decode and compare the JSON text with expected (NULL: must fail with an
 * error containing why). */
static void expect_decode(const char *type_name, const void *data, size_t len, const char *expected,
			  const char *why)
{
	struct json_object *obj = NULL;
	int r = pbj_decode(type(type_name), data, len, &obj, err, sizeof(err));

	if (!expected) {
		if (r == 0)
			fail_msg("decoded to %s, want an error about '%s'", pbj_json_text(obj), why);
		assert_int_equal(r, -EBADMSG);
		if (!strstr(err, why))
			fail_msg("error '%s' does not say '%s'", err, why);
		assert_null(obj);
		return;
	}
	if (r < 0)
		fail_msg("decode failed: %s", err);
	assert_string_equal(pbj_json_text(obj), expected);
	json_object_put(obj);
}

#define DECODES(type, bytes, expected)                                                                       \
	do {                                                                                                 \
		static const uint8_t b_[] = bytes;                                                           \
		expect_decode(type, b_, sizeof(b_), expected, NULL);                                         \
	} while (0)
#define REFUSES(type, bytes, why)                                                                            \
	do {                                                                                                 \
		static const uint8_t b_[] = bytes;                                                           \
		expect_decode(type, b_, sizeof(b_), NULL, why);                                              \
	} while (0)
#define B(...)                                                                                               \
	{                                                                                                    \
		__VA_ARGS__                                                                                  \
	}

/* ---- decoding: the parsing rules ----------------------------------------- */

static void test_empty_and_zero(void **state)
{
	expect_decode("lbustest.All", "", 0, "{}", NULL);
	/* proto3 implicit presence: zeros on the wire are not printed */
	DECODES("lbustest.Scalars", B(0x18, 0x00, 0x72, 0x00, 0x68, 0x00), "{}");
	/* proto3 optional, and proto2: a zero that is set is printed */
	DECODES("lbustest.All", B(0xb8, 0x01, 0x00), "{\"maybe\":0}");
	DECODES("lbustest2.Legacy", B(0x08, 0x00, 0x12, 0x00, 0x20, 0x00),
		"{\"zero\":0,\"empty\":\"\",\"flag\":false}");
	/* a message field that is present but empty */
	DECODES("lbustest.All", B(0x62, 0x00), "{\"inner\":{}}");
}

static void test_scalars(void **state)
{
	/* int32 -1 as a 10-byte varint; int64 -2; uint64 max; sint32 -3; bool */
	DECODES("lbustest.Scalars",
		B(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x20, 0xfe, 0xff, 0xff,
		  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		  0xff, 0xff, 0x01, 0x38, 0x05, 0x68, 0x02),
		"{\"fInt32\":-1,\"fInt64\":\"-2\",\"fUint64\":\"18446744073709551615\",\"fSint32\":-3,"
		"\"fBool\":true}");
	/* fixed32 max, sfixed64 min, uint32 from a varint wider than 32 bits */
	DECODES("lbustest.Scalars",
		B(0x28, 0x80, 0x80, 0x80, 0x80, 0x10, 0x4d, 0xff, 0xff, 0xff, 0xff, 0x61, 0, 0, 0, 0, 0, 0, 0,
		  0x80),
		"{\"fUint32\":0,\"fFixed32\":4294967295,\"fSfixed64\":\"-9223372036854775808\"}");
	/* float 0.1, double -0.0, NaN, -Infinity */
	DECODES("lbustest.Scalars", B(0x15, 0xcd, 0xcc, 0xcc, 0x3d, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x80),
		"{\"fDouble\":-0.0,\"fFloat\":0.1}");
	DECODES("lbustest.All", B(0x22, 0x10, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0, 0, 0, 0, 0, 0, 0xf0, 0xff),
		"{\"packedDouble\":[\"NaN\",\"-Infinity\"]}");
	/* enums: by name, unknown by number, negative */
	DECODES("lbustest.Scalars", B(0x80, 0x01, 0x02), "{\"fColor\":\"GREEN\"}");
	DECODES("lbustest.Scalars", B(0x80, 0x01, 0x4d), "{\"fColor\":77}");
	DECODES("lbustest.Scalars", B(0x80, 0x01, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"{\"fColor\":\"NEGATIVE\"}");
	/* strings with escapes, bytes as base64 */
	DECODES("lbustest.Scalars",
		B(0x72, 0x07, '"', '\\', '/', 0x01, 0xc3, 0xa9, '\n', 0x7a, 0x02, 0xfb, 0xff),
		"{\"fString\":\"\\\"\\\\/\\u0001é\\n\",\"fBytes\":\"+/8=\"}");
}

static void test_last_wins_and_merge(void **state)
{
	/* a singular scalar given twice: the last one */
	DECODES("lbustest.Scalars", B(0x18, 0x01, 0x18, 0x02), "{\"fInt32\":2}");
	/* a singular message given twice: merged */
	DECODES("lbustest.All", B(0x62, 0x02, 0x08, 0x01, 0x62, 0x03, 0x12, 0x01, 'x'),
		"{\"inner\":{\"id\":1,\"label\":\"x\"}}");
	/* a oneof: the member that came last */
	DECODES("lbustest.All", B(0xa2, 0x01, 0x01, 'a', 0xa8, 0x01, 0x07), "{\"choiceNumber\":\"7\"}");
	DECODES("lbustest.All", B(0xa8, 0x01, 0x07, 0xa2, 0x01, 0x01, 'a'), "{\"choiceText\":\"a\"}");
	/* a message member set, cleared by another member, set again: only the last part */
	DECODES("lbustest.All",
		B(0xb2, 0x01, 0x02, 0x08, 0x01, 0xa8, 0x01, 0x07, 0xb2, 0x01, 0x03, 0x12, 0x01, 'y'),
		"{\"choiceInner\":{\"label\":\"y\"}}");
}

static void test_packed_and_unpacked(void **state)
{
	/* packed field sent unpacked, then packed: both kinds append in order */
	DECODES("lbustest.All", B(0x10, 0x01, 0x12, 0x02, 0x02, 0x03, 0x10, 0x04),
		"{\"packedInt32\":[1,2,3,4]}");
	/* unpacked field sent packed */
	DECODES("lbustest.All", B(0x1a, 0x03, 0x05, 0x06, 0x7f), "{\"unpackedInt32\":[5,6,127]}");
	/* an empty packed run prints nothing */
	DECODES("lbustest.All", B(0x12, 0x00), "{}");
	/* packed fixed32 and bools */
	DECODES("lbustest.All", B(0x32, 0x04, 0x01, 0, 0, 0, 0x3a, 0x02, 0x01, 0x00),
		"{\"packedFixed32\":[1],\"packedBool\":[true,false]}");
	/* a truncated value inside a packed run */
	REFUSES("lbustest.All", B(0x32, 0x03, 0x01, 0, 0), "truncated 4-byte value");
}

static void test_maps(void **state)
{
	/* the same key twice: the last entry; an entry without value: the default */
	DECODES("lbustest.All",
		B(0x6a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x01, 0x6a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x02, 0x6a,
		  0x03, 0x0a, 0x01, 'b'),
		"{\"byName\":{\"a\":2,\"b\":0}}");
	/* keys of other types as strings; a missing key is the default; a
	 * missing message value is {} */
	DECODES("lbustest.All", B(0x72, 0x04, 0x08, 0x7f, 0x12, 0x00, 0x7a, 0x02, 0x12, 0x00),
		"{\"byInt32\":{\"127\":\"\"},\"byInt64\":{\"0\":{}}}");
	DECODES("lbustest.All", B(0x8a, 0x01, 0x04, 0x08, 0x01, 0x10, 0x01, 0x92, 0x01, 0x02, 0x08, 0x03),
		"{\"byBool\":{\"true\":\"RED\"},\"bySint32\":{\"-2\":\"\"}}");
	/* a string key with a NUL and a quote stays whole */
	DECODES("lbustest.All", B(0x6a, 0x07, 0x0a, 0x03, 'a', 0x00, '"', 0x10, 0x01),
		"{\"byName\":{\"a\\u0000\\\"\":1}}");
}

static void test_unknown_fields(void **state)
{
	/* unknown numbers of every wire type, a group with a nested group, are skipped */
	DECODES("lbustest.Inner",
		B(0xc0, 0x3e, 0x01, 0xc9, 0x3e, 1, 2, 3, 4, 5, 6, 7, 8, 0xd2, 0x3e, 0x01, 'x', 0xdd, 0x3e, 1,
		  2, 3, 4, 0xe3, 0x3e, 0x08, 0x01, 0xeb, 0x3e, 0xec, 0x3e, 0xe4, 0x3e, 0x08, 0x09),
		"{\"id\":9}");
	/* other names: the json_name option, a proto2 message from another file */
	DECODES("lbustest.All", B(0xc0, 0x01, 0x05, 0xca, 0x01, 0x04, 0x18, 0x01, 0x18, 0x02),
		"{\"customName\":5,\"legacy\":{\"nums\":[1,2]}}");
}

static void test_malformed(void **state)
{
	REFUSES("lbustest.Scalars", B(0x18, 0x80), "truncated or overlong varint");
	REFUSES("lbustest.Scalars", B(0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
		"overlong varint");
	REFUSES("lbustest.Scalars", B(0x72, 0x05, 'a'), "length past the end");
	REFUSES("lbustest.Scalars", B(0x09, 1, 2, 3), "truncated 8-byte value");
	REFUSES("lbustest.Scalars", B(0x1e, 0x00), "invalid wire type 6");
	REFUSES("lbustest.Scalars", B(0x00, 0x01), "invalid field number 0");
	REFUSES("lbustest.Scalars", B(0x0c), "unexpected end-group");
	REFUSES("lbustest.Scalars", B(0xfb, 0x3e, 0x08, 0x01), "not closed");
	REFUSES("lbustest.Scalars", B(0xfb, 0x3e, 0x0c), "closes group");
	REFUSES("lbustest.Scalars", B(0x80), "truncated field tag");
	/* a known field with the wrong wire type */
	REFUSES("lbustest.Scalars", B(0x72, 0x01, 'x', 0x1a, 0x01, 0x00),
		"field f_int32 (#3) has length-delimited wire type, its type wants varint");
	REFUSES("lbustest.Scalars", B(0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x18, 0x01, 0x10, 0x01),
		"field f_float (#2) has varint wire type, its type wants 32-bit");
	/* strings must be UTF-8: lone continuation, overlong, surrogate */
	REFUSES("lbustest.Scalars", B(0x72, 0x01, 0x80), "not valid UTF-8");
	REFUSES("lbustest.Scalars", B(0x72, 0x02, 0xc0, 0x80), "not valid UTF-8");
	REFUSES("lbustest.Scalars", B(0x72, 0x03, 0xed, 0xa0, 0x80), "not valid UTF-8");
	/* errors inside a nested message name the offset in the whole payload */
	REFUSES("lbustest.All", B(0x62, 0x02, 0x12, 0x05), "at byte 3: field #2: length past the end");
}

static void test_depth_limit(void **state)
{
	/* Inner { child { child ... } } PBJ_MAX_DEPTH + 1 deep, written from the
	 * innermost level outwards, backwards from the end of buf */
	static uint8_t buf[1024];
	size_t start = sizeof(buf), outer = 0;
	struct json_object *obj = NULL;

	for (int i = 0; i < PBJ_MAX_DEPTH + 1; i++) {
		size_t len = sizeof(buf) - start;

		outer = start;
		if (len >= 128)
			buf[--start] = (uint8_t)(len >> 7);
		buf[--start] = (uint8_t)(len < 128 ? len : 0x80 | (len & 0x7f));
		buf[--start] = 0x1a; /* field 3 (child), length-delimited */
	}
	assert_int_equal(
	    pbj_decode(type("lbustest.Inner"), buf + start, sizeof(buf) - start, &obj, err, sizeof(err)),
	    -EBADMSG);
	assert_non_null(strstr(err, "nested more than"));
	/* one level less decodes */
	assert_int_equal(
	    pbj_decode(type("lbustest.Inner"), buf + outer, sizeof(buf) - outer, &obj, err, sizeof(err)), 0);
	json_object_put(obj);
}

/* ---- encoding ----------------------------------------------------------- */

/* Encode json as type_name; compare the bytes with want (want NULL: must fail
 * with an error containing why). */
static void expect_encode(const char *type_name, const char *json, const uint8_t *want, size_t want_len,
			  const char *why)
{
	struct pbj_buf out = {0};
	int r = pbj_encode_text(type(type_name), json, strlen(json), &out, err, sizeof(err));

	if (!want) {
		if (r == 0)
			fail_msg("%s encoded, want an error about '%s'", json, why);
		if (!strstr(err, why))
			fail_msg("%s: error '%s' does not say '%s'", json, err, why);
		assert_int_equal(out.len, 0);
	} else {
		if (r < 0)
			fail_msg("%s: %s", json, err);
		assert_int_equal(out.len, want_len);
		assert_memory_equal(out.data, want, want_len);
	}
	pbj_buf_free(&out);
}

#define ENCODES(type, json, bytes)                                                                           \
	do {                                                                                                 \
		static const uint8_t b_[] = bytes;                                                           \
		expect_encode(type, json, b_, sizeof(b_), NULL);                                             \
	} while (0)
#define ENCODE_FAILS(type, json, why) expect_encode(type, json, NULL, 0, why)

static void test_encode_forms(void **state)
{
	expect_encode("lbustest.All", " {} \n", (const uint8_t *)"", 0, NULL);
	/* json names and proto names; int64 as string or number; 1.0 and "1" for an int */
	ENCODES("lbustest.Scalars",
		"{\"fInt32\": 1.0, \"f_int64\": \"-2\", \"fUint64\": 18446744073709551615}",
		B(0x18, 0x01, 0x20, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x30, 0xff,
		  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
	ENCODES("lbustest.Scalars", "{\"fSint32\": \"-3\", \"fSint64\": -1, \"fSfixed32\": -1}",
		B(0x38, 0x05, 0x40, 0x01, 0x5d, 0xff, 0xff, 0xff, 0xff));
	/* enums by name or number; bytes in either base64 alphabet, padding optional */
	ENCODES("lbustest.Scalars", "{\"fColor\": \"RED\", \"fBytes\": \"-_8\"}",
		B(0x7a, 0x02, 0xfb, 0xff, 0x80, 0x01, 0x01));
	ENCODES("lbustest.Scalars", "{\"f_color\": -5}",
		B(0x80, 0x01, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
	/* floats: strings for the specials, FLT_MAX as MessageToJson writes it */
	ENCODES("lbustest.Scalars", "{\"fFloat\": \"-Infinity\", \"fDouble\": \"NaN\"}",
		B(0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0x15, 0, 0, 0x80, 0xff));
	ENCODES("lbustest.Scalars", "{\"fFloat\": 3.4028235e+38}", B(0x15, 0xff, 0xff, 0x7f, 0x7f));
	/* zeros of fields without presence are not written; with presence they are */
	ENCODES("lbustest.All", "{\"scalars\": {\"fInt32\": 0, \"fString\": \"\"}, \"maybe\": 0}",
		B(0x0a, 0x00, 0xb8, 0x01, 0x00));
	ENCODES("lbustest2.Legacy", "{\"zero\": 0, \"flag\": false}", B(0x08, 0x00, 0x20, 0x00));
	/* null is "not set" */
	ENCODES("lbustest.All", "{\"inner\": null, \"customName\": 3}", B(0xc0, 0x01, 0x03));
	/* escaped surrogate pairs, which json-c 0.16 alone gets wrong for some */
	ENCODES("lbustest.Scalars", "{\"fString\": \"\\ud876\\udc00\\u00e9\"}",
		B(0x72, 0x06, 0xf0, 0xad, 0xa0, 0x80, 0xc3, 0xa9));
}

static void test_encode_repeated_and_maps(void **state)
{
	/* proto3 repeated scalars packed; [packed = false] and proto2 unpacked */
	ENCODES("lbustest.All", "{\"packedInt32\": [1, 2], \"unpackedInt32\": [3, 4]}",
		B(0x12, 0x02, 0x01, 0x02, 0x18, 0x03, 0x18, 0x04));
	ENCODES("lbustest2.Legacy", "{\"nums\": [1, 2], \"packedNums\": [3]}",
		B(0x18, 0x01, 0x18, 0x02, 0x32, 0x01, 0x03));
	ENCODES("lbustest.All", "{\"packedInt32\": []}", B());
	/* maps: keys from strings, both key and value written */
	ENCODES("lbustest.All", "{\"byBool\": {\"true\": \"RED\"}, \"bySint32\": {\"-1\": \"\"}}",
		B(0x8a, 0x01, 0x04, 0x08, 0x01, 0x10, 0x01, 0x92, 0x01, 0x04, 0x08, 0x01, 0x12, 0x00));
	ENCODES("lbustest.All", "{\"inners\": [{\"id\": 1}, {}]}", B(0x5a, 0x02, 0x08, 0x01, 0x5a, 0x00));
}

static void test_encode_errors(void **state)
{
	ENCODE_FAILS("lbustest.All", "{\"nope\": 1}", "lbustest.All has no field \"nope\"");
	ENCODE_FAILS("lbustest.All", "{\"customName\": 1, \"renamed\": 2}", "given twice");
	ENCODE_FAILS("lbustest.All", "{\"choiceText\": \"a\", \"choiceNumber\": 1}", "same oneof");
	ENCODE_FAILS("lbustest.Scalars", "{\"fInt32\": 2147483648}", "not a 32 integer");
	ENCODE_FAILS("lbustest.Scalars", "{\"fInt32\": -2147483649}", "not a 32 integer");
	ENCODE_FAILS("lbustest.Scalars", "{\"fUint32\": -1}", "not a non-negative 32 integer");
	ENCODE_FAILS("lbustest.Scalars", "{\"fUint64\": \"-1\"}", "not a non-negative 64 integer");
	ENCODE_FAILS("lbustest.Scalars", "{\"fInt64\": 1.5}", "not a 64 integer");
	ENCODE_FAILS("lbustest.Scalars", "{\"fInt64\": \"1 \"}", "not a 64 integer");
	ENCODE_FAILS("lbustest.Scalars", "{\"fBool\": \"true\"}", "not true or false");
	ENCODE_FAILS("lbustest.Scalars", "{\"fString\": 5}", "not a string");
	ENCODE_FAILS("lbustest.Scalars", "{\"fBytes\": \"a$==\"}", "not base64");
	ENCODE_FAILS("lbustest.Scalars", "{\"fFloat\": 1e39}", "out of the range of a float");
	ENCODE_FAILS("lbustest.Scalars", "{\"fDouble\": \"fast\"}", "not a number");
	ENCODE_FAILS("lbustest.Scalars", "{\"fColor\": \"PURPLE\"}", "not a value of enum lbustest.Color");
	ENCODE_FAILS("lbustest.All", "{\"packedInt32\": [1, null]}", "null in a repeated field");
	ENCODE_FAILS("lbustest.All", "{\"packedInt32\": 1}", "wants an array");
	ENCODE_FAILS("lbustest.All", "{\"byName\": []}", "wants an object");
	ENCODE_FAILS("lbustest.All", "{\"byBool\": {\"yes\": 1}}", "not true or false");
	ENCODE_FAILS("lbustest.All", "{\"inner\": 5}", "lbustest.Inner wants a JSON object, not int");
	ENCODE_FAILS("lbustest.All", "[]", "lbustest.All wants a JSON object, not array");
	ENCODE_FAILS("lbustest.All", "{\"inner\": {\"id\": 1}", "invalid JSON");
	ENCODE_FAILS("lbustest.All", "{} x", "text after the value");
	ENCODE_FAILS("lbustest.All", "", "invalid JSON");
}

/* Timestamp, Duration, the wrappers and FieldMask in their JSON forms (pbwkt.c). */
static void test_well_known_types(void **state)
{
	DECODES("lbustest.Stamped", B(0x0a, 0x04, 0x08, 0x05, 0x10, 0x07),
		"{\"at\":\"1970-01-01T00:00:05.000000007Z\"}");
	/* before 1970, milliseconds; an empty duration */
	DECODES("lbustest.Stamped",
		B(0x0a, 0x0f, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0xc0,
		  0x84, 0x3d, 0x1a, 0x00),
		"{\"at\":\"1969-12-31T23:59:59.001Z\",\"took\":\"0s\"}");
	/* a negative duration */
	DECODES("lbustest.Stamped",
		B(0x1a, 0x11, 0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0xe0,
		  0xe3, 0xfe, 0xff, 0x0f),
		"{\"took\":\"-2.000020s\"}");
	/* wrappers: the value itself, the zero when empty */
	DECODES("lbustest.Stamped",
		B(0x22, 0x02, 0x08, 0x05, 0x2a, 0x00, 0x32, 0x03, 0x0a, 0x01, 'x', 0x42, 0x00),
		"{\"i64\":\"5\",\"u32\":0,\"text\":\"x\",\"flag\":false}");
	/* a field mask */
	DECODES("lbustest.Stamped", B(0x5a, 0x0b, 0x0a, 0x05, 'a', '_', 'b', '.', 'c', 0x0a, 0x02, 'x', 'y'),
		"{\"mask\":\"aB.c,xy\"}");
	/* out of range */
	REFUSES("lbustest.Stamped", B(0x0a, 0x06, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"Timestamp out of range");
	REFUSES("lbustest.Stamped",
		B(0x1a, 0x0d, 0x08, 0x01, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"Duration out of range"); /* signs differ */

	ENCODES("lbustest.Stamped", "{\"at\": \"1970-01-01T01:00:05.5+01:00\", \"took\": \"-1.5s\"}",
		B(0x0a, 0x08, 0x08, 0x05, 0x10, 0x80, 0xca, 0xb5, 0xee, 0x01, 0x1a, 0x16, 0x08, 0xff, 0xff,
		  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0x80, 0xb6, 0xca, 0x91, 0xfe, 0xff,
		  0xff, 0xff, 0xff, 0x01));
	ENCODES("lbustest.Stamped", "{\"i64\": \"5\", \"flag\": false, \"mask\": \"aB.c,xy\"}",
		B(0x22, 0x02, 0x08, 0x05, 0x42, 0x00, 0x5a, 0x0b, 0x0a, 0x05, 'a', '_', 'b', '.', 'c', 0x0a,
		  0x02, 'x', 'y'));
	/* the plain form of a Timestamp is accepted too */
	ENCODES("lbustest.Stamped", "{\"at\": {\"seconds\": 5}}", B(0x0a, 0x02, 0x08, 0x05));
	ENCODE_FAILS("lbustest.Stamped", "{\"at\": \"1970-01-01 00:00:00Z\"}",
		     "not a valid google.protobuf.Timestamp");
	ENCODE_FAILS("lbustest.Stamped", "{\"at\": \"10000-01-01T00:00:00Z\"}",
		     "not a valid google.protobuf.Timestamp");
	ENCODE_FAILS("lbustest.Stamped", "{\"took\": \"5\"}", "not a valid google.protobuf.Duration");
	ENCODE_FAILS("lbustest.Stamped", "{\"took\": 5}", "google.protobuf.Duration wants a string");
	ENCODE_FAILS("lbustest.Stamped", "{\"u32\": -1}", "not a non-negative 32 integer");
}

/* Whatever decodes re-encodes to a message that decodes the same. */
static void test_round_trip(void **state)
{
	static const char *const samples[] = {
	    "{\"scalars\":{\"fDouble\":1.5,\"fFloat\":0.1,\"fInt64\":\"-5\",\"fUint64\":"
	    "\"18446744073709551615\","
	    "\"fString\":\"h\\u00e9\",\"fBytes\":\"AQID\",\"fColor\":\"NEGATIVE\"},\"packedInt32\":[1,-2,3],"
	    "\"byName\":{\"a\":1},\"byInt64\":{\"-3\":{\"label\":\"x\"}},\"choiceInner\":{\"id\":3},"
	    "\"maybe\":0,"
	    "\"customName\":7,\"legacy\":{\"zero\":0,\"nums\":[1,2]},\"floats\":[\"NaN\",\"Infinity\",-0.0,"
	    "1e+10]}",
	    "{\"inners\":[{\"id\":1,\"child\":{\"child\":{}}}],\"byFixed64\":{\"18446744073709551615\":-1.5}"
	    "}",
	};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct pbj_buf out = {0};
		struct json_object *obj, *want = json_tokener_parse(samples[i]);

		assert_int_equal(pbj_encode_text(type("lbustest.All"), samples[i], strlen(samples[i]), &out,
						 err, sizeof(err)),
				 0);
		assert_int_equal(pbj_decode(type("lbustest.All"), out.data, out.len, &obj, err, sizeof(err)),
				 0);
		assert_string_equal(pbj_json_text(obj), pbj_json_text(want));
		json_object_put(obj);
		json_object_put(want);
		pbj_buf_free(&out);
	}
}

/* ---- the schema and base64 ------------------------------------------------ */

static void test_schema(void **state)
{
	const struct pbs_message *all = type(".lbustest.All");
	struct pbs_pool *p;

	assert_null(pbs_pool_message(pool, "lbustest.Nope"));
	assert_true(pbs_pool_message(pool, "lbustest.All.ByNameEntry")->map_entry);
	assert_string_equal(pbs_message_field_named(all, "customName", 10)->name, "renamed");
	assert_string_equal(pbs_message_field_named(all, "renamed", 7)->json_name, "customName");
	assert_true(pbs_message_field(all, 2)->packed);
	assert_false(pbs_message_field(all, 3)->packed);
	assert_int_equal(pbs_message_field(all, 21)->oneof, 0);
	assert_int_equal(pbs_message_field(all, 23)->oneof, -1); /* proto3 optional: a synthetic oneof */
	assert_true(pbs_message_field(all, 23)->presence);
	assert_false(pbs_message_field(all, 24)->presence);
	assert_int_equal(pbs_pool_parse("\xff\xff", 2, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a protobuf descriptor set"));
	assert_int_equal(pbs_pool_load("/nonexistent.desc", &p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent.desc"));
}

static void test_base64(void **state)
{
	static const struct {
		const char *raw, *b64;
	} v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = pbj_base64_encode(v[i].raw, strlen(v[i].raw));
		uint8_t *out;
		size_t n;

		assert_string_equal(s, v[i].b64);
		assert_int_equal(pbj_base64_decode(s, strlen(s), &out, &n), 0);
		assert_int_equal(n, strlen(v[i].raw));
		assert_memory_equal(out, v[i].raw, n);
		free(out);
		free(s);
	}
	uint8_t *out;
	size_t n;
	assert_int_equal(pbj_base64_decode("Z", 1, &out, &n), -EINVAL);
	assert_int_equal(pbj_base64_decode("Zm9v=Yg", 7, &out, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_and_zero),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_last_wins_and_merge),
	    cmocka_unit_test(test_packed_and_unpacked),
	    cmocka_unit_test(test_maps),
	    cmocka_unit_test(test_unknown_fields),
	    cmocka_unit_test(test_well_known_types),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_encode_forms),
	    cmocka_unit_test(test_encode_repeated_and_maps),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_schema),
	    cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, load_pool, free_pool);
}
