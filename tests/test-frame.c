/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/frame.c: the receive buffer and frame extraction that
 * broker and library both use. The property that matters to users is that
 * any fragmentation of the byte stream yields exactly the frames that were
 * sent, in order, and that a bad length is reported instead of being waited
 * for. A reader loop like the broker's (reserve, read into the tail, advance,
 * take all complete frames) is driven with chunks of every size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "lbus-limits.h"

/* A stream of n frames; frame i has length lens[i] and body bytes
 * (i * 31 + k) & 0xff. */
struct stream {
	uint8_t *bytes;
	size_t len;
};

static uint8_t body_byte(size_t frame, size_t k)
{
	return (uint8_t)((frame * 31 + k) & 0xff);
}

static struct stream make_stream(const uint32_t *lens, size_t n)
{
	struct stream s = {0};
	for (size_t i = 0; i < n; i++)
		s.len += 4 + lens[i];
	s.bytes = malloc(s.len);
	assert_non_null(s.bytes);
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		lbus_frame_put_len(s.bytes + at, lens[i]);
		at += 4;
		for (uint32_t k = 0; k < lens[i]; k++)
			s.bytes[at++] = body_byte(i, k);
	}
	return s;
}

/* Feed the stream in chunks of `chunk` bytes through a reader loop and check
 * that exactly the n frames come out, intact and in order. */
static void feed_in_chunks(const uint32_t *lens, size_t n, size_t chunk)
{
	struct stream s = make_stream(lens, n);
	struct lbus_rbuf b;
	lbus_rbuf_init(&b);
	size_t fed = 0, got = 0;
	while (fed < s.len) {
		size_t c = s.len - fed < chunk ? s.len - fed : chunk;
		assert_int_equal(lbus_rbuf_reserve(&b, c), 0);
		assert_true(lbus_rbuf_avail(&b) >= c);
		memcpy(lbus_rbuf_tail(&b), s.bytes + fed, c);
		lbus_rbuf_advance(&b, c);
		fed += c;
		const uint8_t *body;
		uint32_t len;
		int r;
		while ((r = lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL)) == 1) {
			assert_true(got < n);
			assert_int_equal(len, lens[got]);
			for (uint32_t k = 0; k < len; k++)
				assert_int_equal(body[k], body_byte(got, k));
			got++;
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(got, n);
	assert_int_equal(lbus_rbuf_len(&b), 0);
	lbus_rbuf_deinit(&b);
	free(s.bytes);
}

static const uint32_t mixed[] = {1, 2, 3, 4, 5, 100, 4095, 4096, 4097, 1, 70000, 7, 3};
#define N_MIXED (sizeof(mixed) / sizeof(mixed[0]))

static void test_byte_by_byte(void **state)
{
	feed_in_chunks(mixed, N_MIXED, 1);
}

static void test_all_in_one_read(void **state)
{
	feed_in_chunks(mixed, N_MIXED, 1u << 20);
}

static void test_every_chunk_size(void **state)
{
	static const uint32_t small[] = {1, 9, 2, 30, 5, 4, 3, 17};
	for (size_t chunk = 1; chunk <= 100; chunk++)
		feed_in_chunks(small, sizeof(small) / sizeof(small[0]), chunk);
	for (size_t chunk = 4090; chunk <= 4100; chunk++)
		feed_in_chunks(mixed, N_MIXED, chunk);
}

static void test_many_small_frames_in_one_read(void **state)
{
	uint32_t lens[1000];
	for (size_t i = 0; i < 1000; i++)
		lens[i] = 1 + (uint32_t)(i % 13);
	feed_in_chunks(lens, 1000, 1u << 20);
	feed_in_chunks(lens, 1000, 7);
}

/* Put raw bytes into a fresh buffer. */
static void load(struct lbus_rbuf *b, const void *data, size_t n)
{
	lbus_rbuf_init(b);
	assert_int_equal(lbus_rbuf_reserve(b, n), 0);
	memcpy(lbus_rbuf_tail(b), data, n);
	lbus_rbuf_advance(b, n);
}

static void test_need_reports_missing_bytes(void **state)
{
	struct lbus_rbuf b;
	uint8_t bytes[4 + 10];
	lbus_frame_put_len(bytes, 10);
	memset(bytes + 4, 'x', 10);
	const uint8_t *body;
	uint32_t len;
	size_t need = 0;

	load(&b, bytes, 2);
	assert_int_equal(lbus_frame_next(&b, 100, &body, &len, &need), 0);
	assert_int_equal(need, 4);
	lbus_rbuf_deinit(&b);

	load(&b, bytes, 9);
	assert_int_equal(lbus_frame_next(&b, 100, &body, &len, &need), 0);
	assert_int_equal(need, 14);
	assert_int_equal(lbus_rbuf_len(&b), 9); /* nothing consumed */
	assert_int_equal(lbus_frame_next(&b, 100, &body, &len, NULL), 0);
	lbus_rbuf_deinit(&b);

	load(&b, bytes, 14);
	assert_int_equal(lbus_frame_next(&b, 100, &body, &len, &need), 1);
	assert_int_equal(len, 10);
	assert_memory_equal(body, "xxxxxxxxxx", 10);
	lbus_rbuf_deinit(&b);
}

static void test_zero_length_is_protocol_error(void **state)
{
	struct lbus_rbuf b;
	static const uint8_t zero[4] = {0, 0, 0, 0};
	const uint8_t *body;
	uint32_t len;
	load(&b, zero, 4);
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), -EPROTO);
	lbus_rbuf_deinit(&b);

	/* Also after a good frame in the same read. */
	static const uint8_t good_then_zero[] = {1, 0, 0, 0, 'a', 0, 0, 0, 0};
	load(&b, good_then_zero, sizeof(good_then_zero));
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), 1);
	assert_int_equal(len, 1);
	assert_int_equal(body[0], 'a');
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), -EPROTO);
	lbus_rbuf_deinit(&b);
}

static void test_over_max_is_reported_from_the_header(void **state)
{
	struct lbus_rbuf b;
	uint8_t hdr[4];
	const uint8_t *body;
	uint32_t len;

	/* Only the header has arrived: the verdict must not wait for the body. */
	lbus_frame_put_len(hdr, LBUS_DEFAULT_MAX_FRAME + 1);
	load(&b, hdr, 4);
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), -EMSGSIZE);
	lbus_rbuf_deinit(&b);

	lbus_frame_put_len(hdr, 0xffffffffu);
	load(&b, hdr, 4);
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), -EMSGSIZE);
	lbus_rbuf_deinit(&b);

	/* Exactly max is fine (waits for the body). */
	lbus_frame_put_len(hdr, 4096);
	load(&b, hdr, 4);
	size_t need = 0;
	assert_int_equal(lbus_frame_next(&b, 4096, &body, &len, &need), 0);
	assert_int_equal(need, 4100);
	assert_int_equal(lbus_frame_next(&b, 4095, &body, &len, NULL), -EMSGSIZE);
	lbus_rbuf_deinit(&b);
}

static void test_length_is_little_endian(void **state)
{
	uint8_t out[4];
	lbus_frame_put_len(out, 0x01020304u);
	assert_int_equal(out[0], 4);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[2], 2);
	assert_int_equal(out[3], 1);
	assert_int_equal(lbus_frame_get_len(out), 0x01020304u);
	static const uint8_t max[4] = {0xff, 0xff, 0xff, 0xff};
	assert_int_equal(lbus_frame_get_len(max), 0xffffffffu);
}

/* A large frame grows the buffer; shrink gives the memory back once it is
 * consumed, and the buffer keeps working afterwards. */
static void test_grow_then_shrink(void **state)
{
	struct lbus_rbuf b;
	lbus_rbuf_init(&b);
	const uint32_t big = 1u << 20;
	assert_int_equal(lbus_rbuf_reserve(&b, 4 + big), 0);
	assert_true(b.cap >= 4 + big);
	lbus_frame_put_len(lbus_rbuf_tail(&b), big);
	memset(lbus_rbuf_tail(&b) + 4, 'B', big);
	lbus_rbuf_advance(&b, 4 + big);
	const uint8_t *body;
	uint32_t len;
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), 1);
	assert_int_equal(len, big);
	assert_int_equal(body[big - 1], 'B');

	lbus_rbuf_shrink(&b, 4096);
	assert_true(b.cap <= 4096);
	assert_int_equal(lbus_rbuf_len(&b), 0);

	/* Still usable. */
	static const uint8_t one[] = {2, 0, 0, 0, 'h', 'i'};
	assert_int_equal(lbus_rbuf_reserve(&b, sizeof(one)), 0);
	memcpy(lbus_rbuf_tail(&b), one, sizeof(one));
	lbus_rbuf_advance(&b, sizeof(one));
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), 1);
	assert_memory_equal(body, "hi", 2);
	lbus_rbuf_deinit(&b);
}

/* Shrinking keeps a partial frame that is still buffered. */
static void test_shrink_keeps_unconsumed_bytes(void **state)
{
	struct lbus_rbuf b;
	lbus_rbuf_init(&b);
	assert_int_equal(lbus_rbuf_reserve(&b, 1u << 16), 0);
	static const uint8_t partial[] = {5, 0, 0, 0, 'a', 'b'};
	memcpy(lbus_rbuf_tail(&b), partial, sizeof(partial));
	lbus_rbuf_advance(&b, sizeof(partial));
	lbus_rbuf_shrink(&b, 4096);
	assert_int_equal(lbus_rbuf_len(&b), sizeof(partial));
	assert_int_equal(lbus_rbuf_reserve(&b, 3), 0);
	memcpy(lbus_rbuf_tail(&b), "cde", 3);
	lbus_rbuf_advance(&b, 3);
	const uint8_t *body;
	uint32_t len;
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(body, "abcde", 5);
	lbus_rbuf_deinit(&b);
}

/* Reserving moves unconsumed bytes to the front instead of growing when that
 * makes enough room. */
static void test_reserve_compacts_before_growing(void **state)
{
	struct lbus_rbuf b;
	lbus_rbuf_init(&b);
	assert_int_equal(lbus_rbuf_reserve(&b, 100), 0);
	size_t cap = b.cap;
	/* Fill with one complete frame and the start of a second. */
	size_t fill = cap;
	memset(lbus_rbuf_tail(&b), 0, fill);
	lbus_frame_put_len(lbus_rbuf_tail(&b), (uint32_t)(fill - 4 - 6));
	lbus_frame_put_len(lbus_rbuf_tail(&b) + fill - 6, 2);
	lbus_rbuf_advance(&b, fill);
	const uint8_t *body;
	uint32_t len;
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), 1);
	assert_int_equal(lbus_rbuf_len(&b), 6);
	assert_int_equal(lbus_rbuf_reserve(&b, cap - 6), 0);
	assert_int_equal(b.cap, cap);
	assert_int_equal(lbus_rbuf_len(&b), 6);
	assert_int_equal(lbus_frame_next(&b, LBUS_DEFAULT_MAX_FRAME, &body, &len, NULL), 1);
	assert_int_equal(len, 2);
	lbus_rbuf_deinit(&b);
}

static void test_deinit_is_reusable(void **state)
{
	struct lbus_rbuf b;
	lbus_rbuf_init(&b);
	lbus_rbuf_deinit(&b); /* never allocated */
	assert_int_equal(lbus_rbuf_len(&b), 0);
	assert_int_equal(lbus_rbuf_reserve(&b, 10), 0);
	lbus_rbuf_deinit(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_byte_by_byte),
	    cmocka_unit_test(test_all_in_one_read),
	    cmocka_unit_test(test_every_chunk_size),
	    cmocka_unit_test(test_many_small_frames_in_one_read),
	    cmocka_unit_test(test_need_reports_missing_bytes),
	    cmocka_unit_test(test_zero_length_is_protocol_error),
	    cmocka_unit_test(test_over_max_is_reported_from_the_header),
	    cmocka_unit_test(test_length_is_little_endian),
	    cmocka_unit_test(test_grow_then_shrink),
	    cmocka_unit_test(test_shrink_keeps_unconsumed_bytes),
	    cmocka_unit_test(test_reserve_compacts_before_growing),
	    cmocka_unit_test(test_deinit_is_reusable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
