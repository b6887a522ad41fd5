/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the out queue's byte chunks (outq_append): small frames
 * copied back to back into one queue-owned chunk, interleaved in order with
 * referenced bodies, appended to while a partial write is pending, chunks
 * growing with the queue and returning to the pool, their unused room
 * bounded whatever the mix of shared and copied frames; and the Deliver header
 * size the broker reserves before writing the header in place.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "msgbuf.h"
#include "outq.h"
#include "wire.h"

static void append(struct outq *q, struct msgpool *p, const char *s)
{
	uint8_t *dst = outq_append(q, p, strlen(s));

	assert_non_null(dst);
	memcpy(dst, s, strlen(s));
}

/* Read exactly len bytes from fd (blocking socket) and compare. */
static void expect_bytes(int fd, const char *want, size_t len)
{
	char buf[4096];
	size_t got = 0;

	assert_true(len <= sizeof(buf));
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, want, len);
}

static void test_small_frames_share_one_chunk(void **state)
{
	struct msgpool p;
	struct outq q;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	msgpool_init(&p);
	outq_init(&q);
	append(&q, &p, "one,");
	append(&q, &p, "two,");
	append(&q, &p, "three");
	assert_int_equal(q.count, 1);
	assert_int_equal(q.bytes, 13);
	assert_int_equal(p.live, 1);
	assert_int_equal(outq_write(&q, sv[0]), 13);
	assert_true(outq_empty(&q));
	assert_null(q.tail);
	assert_int_equal(p.live, 0);
	expect_bytes(sv[1], "one,two,three", 13);
	outq_deinit(&q);
	msgpool_deinit(&p);
	close(sv[0]);
	close(sv[1]);
}

static void test_chunks_and_references_keep_order(void **state)
{
	struct msgpool p;
	struct outq q;
	struct msgbuf *m;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	msgpool_init(&p);
	outq_init(&q);
	append(&q, &p, "a");
	m = msgbuf_new(&p, 4);
	assert_non_null(m);
	memcpy(m->data, "BODY", 4);
	m->len = 4;
	assert_int_equal(outq_push(&q, m, "h", 1), 0);
	assert_null(q.tail); /* a reference closes the chunk */
	append(&q, &p, "z");
	assert_int_equal(q.count, 3);
	assert_int_equal(q.bytes, 7);
	assert_int_equal(outq_write(&q, sv[0]), 7);
	expect_bytes(sv[1], "ahBODYz", 7);
	assert_int_equal(p.live, 0);
	outq_deinit(&q);
	msgpool_deinit(&p);
	close(sv[0]);
	close(sv[1]);
}

static void test_append_after_partial_write(void **state)
{
	struct msgpool p;
	struct outq q;

	(void)state;
	msgpool_init(&p);
	outq_init(&q);
	append(&q, &p, "abcdef");
	outq_consume(&q, 4); /* the socket took part of the chunk */
	assert_int_equal(q.count, 1);
	assert_non_null(q.tail);
	append(&q, &p, "gh");
	assert_int_equal(q.count, 1);
	assert_int_equal(q.bytes, 4);
	outq_consume(&q, 4);
	assert_true(outq_empty(&q));
	assert_null(q.tail);
	assert_int_equal(p.live, 0);
	outq_deinit(&q);
	msgpool_deinit(&p);
}

static void test_chunks_grow_with_the_queue(void **state)
{
	struct msgpool p;
	struct outq q;
	uint8_t *dst;
	size_t total = 0;

	(void)state;
	msgpool_init(&p);
	outq_init(&q);
	for (int i = 0; i < 10000; i++) {
		dst = outq_append(&q, &p, 100);
		assert_non_null(dst);
		memset(dst, 'x', 100);
		total += 100;
	}
	assert_int_equal(q.bytes, total);
	assert_true(q.count < 40); /* ~1 MB in chunks of up to 64 KiB */
	assert_true(q.tail->cap == OUTQ_CHUNK_MAX);
	outq_deinit(&q);
	assert_int_equal(p.live, 0);
	msgpool_deinit(&p);
}

/* A deep queue of alternating shared bodies and small copied frames (a
 * subscriber that stopped reading): the chunks' memory stays below the bytes
 * queued, instead of a big chunk opened for every small frame. */
static void test_chunk_room_bounded_when_mixed(void **state)
{
	struct msgpool p;
	struct outq q;
	struct msgbuf *m;
	size_t chunk_mem = 0;

	(void)state;
	msgpool_init(&p);
	outq_init(&q);
	for (int i = 0; i < 2000; i++) {
		m = msgbuf_new(&p, 520);
		assert_non_null(m);
		memset(m->data, 'B', 520);
		m->len = 520;
		assert_int_equal(outq_push(&q, m, "h", 1), 0);
		memset(outq_append(&q, &p, 40), 's', 40);
	}
	assert_int_equal(q.bytes, 2000 * (1 + 520 + 40));
	for (uint32_t i = 0; i < q.count; i++) {
		const struct outq_entry *e = &q.ring[(q.head + i) & (q.cap - 1)];
		if (e->hlen == 0)
			chunk_mem += e->buf->cap;
	}
	assert_int_equal(chunk_mem, 2000 * OUTQ_CHUNK_MIN);
	assert_true(chunk_mem < q.bytes);
	outq_deinit(&q);
	assert_int_equal(p.live, 0);
	msgpool_deinit(&p);
}

static void test_write_to_closed_peer(void **state)
{
	struct msgpool p;
	struct outq q;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	msgpool_init(&p);
	outq_init(&q);
	close(sv[1]);
	append(&q, &p, "lost");
	assert_int_equal(outq_write(&q, sv[0]), -EPIPE);
	outq_deinit(&q);
	assert_int_equal(p.live, 0);
	msgpool_deinit(&p);
	close(sv[0]);
}

static void test_deliver_header_size(void **state)
{
	static const uint64_t subs[] = {0, 1, 127, 128, 300000, UINT64_MAX};
	static const size_t lens[] = {0, 1, 100, 117, 118, 127, 128, 16370, 16384, 1u << 21};
	uint8_t hdr[LBUS_WIRE_DELIVER_HDR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++)
			for (int r = 0; r < 2; r++)
				for (uint32_t fds = 0; fds <= 16; fds += 16)
					assert_int_equal(
					    lbus_wire_deliver_header_size(subs[i], r, lens[j], fds),
					    lbus_wire_deliver_header(hdr, subs[i], r, lens[j], fds));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_frames_share_one_chunk),
	    cmocka_unit_test(test_chunks_and_references_keep_order),
	    cmocka_unit_test(test_append_after_partial_write),
	    cmocka_unit_test(test_chunks_grow_with_the_queue),
	    cmocka_unit_test(test_chunk_room_bounded_when_mixed),
	    cmocka_unit_test(test_write_to_closed_peer),
	    cmocka_unit_test(test_deliver_header_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
