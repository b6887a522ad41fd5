/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the broker's out queue and message buffer pool: pushing
 * header + shared body entries, partial writes over a socketpair, reference
 * release when entries are written or the queue is torn down, byte
 * accounting, and a full socket.
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

static struct msgbuf *body(struct msgpool *p, const char *s)
{
	struct msgbuf *m = msgbuf_new(p, strlen(s));

	assert_non_null(m);
	memcpy(m->data, s, strlen(s));
	m->len = (uint32_t)strlen(s);
	return m;
}

static void test_pool_recycles(void **state)
{
	struct msgpool p;
	struct msgbuf *a, *b;

	(void)state;
	msgpool_init(&p);
	a = msgbuf_new(&p, 100);
	assert_non_null(a);
	assert_true(a->cap >= 100);
	assert_int_equal(p.live, 1);
	msgbuf_unref(a);
	assert_int_equal(p.live, 0);
	b = msgbuf_new(&p, 90);
	assert_ptr_equal(a, b); /* same class, from the free list */
	msgbuf_unref(b);
	b = msgbuf_new(&p, 1u << 20); /* unpooled size */
	assert_non_null(b);
	msgbuf_unref(b);
	msgpool_deinit(&p);
}

static void test_shared_body_refcount(void **state)
{
	struct msgpool p;
	struct outq q1, q2;
	struct msgbuf *m;

	(void)state;
	msgpool_init(&p);
	outq_init(&q1);
	outq_init(&q2);
	m = body(&p, "shared");
	assert_int_equal(outq_push(&q1, msgbuf_ref(m), "h1", 2), 0);
	assert_int_equal(outq_push(&q2, msgbuf_ref(m), "hdr2", 4), 0);
	msgbuf_unref(m);
	assert_int_equal(m->refs, 2);
	assert_int_equal(q1.bytes, 8);
	assert_int_equal(q2.bytes, 10);
	outq_consume(&q1, 8);
	assert_true(outq_empty(&q1));
	assert_int_equal(q1.bytes, 0);
	assert_int_equal(m->refs, 1);
	outq_deinit(&q2);
	assert_int_equal(p.live, 0);
	msgpool_deinit(&p);
}

/* bytes_max is the most bytes ever waiting, through pushes, appends and
 * writes; draining does not lower it. */
static void test_high_water_mark(void **state)
{
	struct msgpool p;
	struct outq q;
	uint8_t *w;

	(void)state;
	msgpool_init(&p);
	outq_init(&q);
	assert_int_equal(q.bytes_max, 0);
	assert_int_equal(outq_push(&q, body(&p, "abcdef"), "12", 2), 0);
	assert_int_equal(q.bytes_max, 8);
	outq_consume(&q, 5);
	assert_int_equal(q.bytes, 3);
	assert_int_equal(q.bytes_max, 8);
	w = outq_append(&q, &p, 4); /* 7 waiting: below the mark */
	assert_non_null(w);
	memcpy(w, "wxyz", 4);
	assert_int_equal(q.bytes_max, 8);
	w = outq_append(&q, &p, 10); /* 17: a new mark */
	assert_non_null(w);
	memset(w, 'k', 10);
	assert_int_equal(q.bytes, 17);
	assert_int_equal(q.bytes_max, 17);
	outq_consume(&q, 17);
	assert_true(outq_empty(&q));
	assert_int_equal(q.bytes_max, 17);
	outq_deinit(&q);
	msgpool_deinit(&p);
}

static void test_partial_consume(void **state)
{
	struct msgpool p;
	struct outq q;

	(void)state;
	msgpool_init(&p);
	outq_init(&q);
	assert_int_equal(outq_push(&q, body(&p, "abcdef"), "12", 2), 0);
	assert_int_equal(outq_push(&q, body(&p, "xyz"), NULL, 0), 0);
	outq_consume(&q, 1); /* inside the header */
	assert_int_equal(q.count, 2);
	outq_consume(&q, 4); /* inside the body */
	assert_int_equal(q.bytes, 6);
	outq_consume(&q, 3); /* rest of the first entry */
	assert_int_equal(q.count, 1);
	assert_int_equal(p.live, 1);
	outq_deinit(&q);
	assert_int_equal(p.live, 0);
	msgpool_deinit(&p);
}

static void test_write_socketpair(void **state)
{
	struct msgpool p;
	struct outq q;
	int sv[2];
	char buf[64];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	msgpool_init(&p);
	outq_init(&q);
	for (int i = 0; i < 100; i++)
		assert_int_equal(outq_push(&q, body(&p, "body"), "H", 1), 0);
	assert_int_equal(q.count, 100);
	assert_int_equal(outq_write(&q, sv[0]), 500);
	assert_true(outq_empty(&q));
	assert_int_equal(p.live, 0);
	assert_int_equal(read(sv[1], buf, 10), 10);
	assert_memory_equal(buf, "HbodyHbody", 10);
	close(sv[0]);
	close(sv[1]);
	outq_deinit(&q);
	msgpool_deinit(&p);
}

static void test_write_full_socket_and_resume(void **state)
{
	struct msgpool p;
	struct outq q;
	int sv[2], sz = 4096;
	size_t total = 0, got = 0;
	char buf[65536];
	ssize_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	msgpool_init(&p);
	outq_init(&q);
	for (int i = 0; i < 2000; i++) {
		struct msgbuf *m = msgbuf_new(&p, 1000);
		memset(m->data, 'a' + i % 26, 1000);
		m->len = 1000;
		assert_int_equal(outq_push(&q, m, "0123", 4), 0);
		total += 1004;
	}
	n = outq_write(&q, sv[0]);
	assert_true(n > 0 && (size_t)n < total);
	assert_int_equal(q.bytes, total - (size_t)n);
	assert_int_equal(outq_write(&q, sv[0]), 0); /* still full: nothing, no error */
	while (!outq_empty(&q)) {
		while ((n = read(sv[1], buf, sizeof(buf))) > 0)
			got += (size_t)n;
		assert_true(outq_write(&q, sv[0]) >= 0);
	}
	while ((n = read(sv[1], buf, sizeof(buf))) > 0)
		got += (size_t)n;
	assert_int_equal(got, total);
	assert_int_equal(p.live, 0);
	close(sv[1]);
	assert_int_equal(outq_push(&q, body(&p, "x"), NULL, 0), 0);
	assert_int_equal(outq_write(&q, sv[0]), -EPIPE);
	close(sv[0]);
	outq_deinit(&q);
	msgpool_deinit(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_recycles),    cmocka_unit_test(test_shared_body_refcount),
	    cmocka_unit_test(test_partial_consume),  cmocka_unit_test(test_high_water_mark),
	    cmocka_unit_test(test_write_socketpair), cmocka_unit_test(test_write_full_socket_and_resume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
