/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the broker's whole input path, in-process. One input is
 * the bytes of up to four connections of a bare broker (brokertest.h:
 * socketpair ends adopted with broker_adopt_fd(), turns run by the target),
 * so every frame goes through the real read, framing, decoding, dispatch,
 * routing, flow control and output code, with no process and no sleep.
 *
 * Input: a first byte of settings, then operations.
 *   byte 0:  bits 0-1  connections - 1;
 *            bit 2     small socket buffers (queues fill, flow control);
 *            bit 3     small limits (max_frame, max_queue, retained_max);
 *            bits 4-7  connection i starts with a valid Hello (else it
 *                      starts in its hello state, the input says hello).
 *   then, repeated: an op byte (bits 0-1: connection, bits 2-4: what), a
 *   length byte n, and for some ops n bytes:
 *     0    n raw bytes as they are (headers, partial frames, garbage);
 *     1, 6, 7  a frame: n bytes of body, its 4-byte header added;
 *     2    a frame whose body length is 256 * n + the next byte, bytes
 *          taken from the input (zeros past its end);
 *     3    hang up the connection and open a new one (with a Hello);
 *     4    stop / resume reading the connection (a stalled subscriber);
 *     5    run n % 8 + 1 more loop turns.
 * After every op the target runs a loop turn and reads what the broker
 * sent to the connections that read. Checks: every frame the broker sends
 * decodes with protobuf-c; the broker settles (no endless busy loop); once
 * every connection is closed, the broker holds no client, no subscription,
 * no name and no pending call. ASan and UBSan see the rest.
 *
 * Built with -Dfuzzing=true it is a libFuzzer target
 * (fuzz-inproc-libfuzzer); fuzz-replay.c runs its corpus,
 * tests/corpus/fuzz-inproc/, in the normal suite.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "brokertest.h"
#include "lbus-limits.h"
#include "fuzz-check.h"

#define FI_CONNS 4
#define FI_READ_CHUNK 65536u

struct fi_conn {
	struct bt_client c;
	bool open;
	bool stalled; /* not read: the broker's queue for it fills */
};

struct fi_input {
	const uint8_t *p, *end;
};

static const uint8_t *cur_data;
static size_t cur_size;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failed(int line, const char *what)
{
	fprintf(stderr, "fuzz-inproc.c:%d: check failed: %s\ninput (%zu bytes):", line, what, cur_size);
	for (size_t i = 0; i < cur_size && i < 4096; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n  ", cur_data[i]);
	fputc('\n', stderr);
	abort();
}

static unsigned next_byte(struct fi_input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

/* Read everything the broker sent to c; every frame must decode. */
static void drain(struct fi_conn *fc)
{
	struct bt_client *c = &fc->c;

	while (fc->open && !fc->stalled && !c->eof) {
		const uint8_t *body;
		uint32_t len;
		ssize_t n;
		int ret;

		while ((ret = lbus_frame_next(&c->in, UINT32_MAX, &body, &len, NULL)) > 0) {
			Lbus__Frame *f = lbus__frame__unpack(NULL, len, body);

			CHECK(f != NULL);
			lbus__frame__free_unpacked(f, NULL);
		}
		CHECK(ret == 0);
		if (lbus_rbuf_reserve(&c->in, FI_READ_CHUNK) < 0)
			abort();
		n = recv(c->fd, lbus_rbuf_tail(&c->in), lbus_rbuf_avail(&c->in), MSG_DONTWAIT);
		if (n > 0)
			lbus_rbuf_advance(&c->in, (size_t)n);
		else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			c->eof = true;
		else
			break;
	}
}

static void turn(struct bt_broker *t, struct fi_conn *conns, size_t n)
{
	CHECK(bt_turn(t, 0) >= 0);
	for (size_t i = 0; i < n; i++)
		drain(&conns[i]);
}

static void open_conn(struct bt_broker *t, struct fi_conn *fc, bool hello)
{
	int ret = hello ? bt_connect(t, &fc->c) : bt_adopt(t, &fc->c);

	CHECK(ret == 0);
	fc->open = true;
	fc->stalled = false;
}

static void close_conn(struct fi_conn *fc)
{
	if (!fc->open)
		return;
	bt_close(&fc->c);
	fc->open = false;
}

/* Queue a frame of len body bytes taken from the input (zeros past its end). */
static void send_frame(struct fi_conn *fc, struct fi_input *in, size_t len)
{
	size_t have = (size_t)(in->end - in->p);
	uint8_t *buf = calloc(1, LBUS_FRAME_HEADER + len);

	if (!buf)
		abort();
	lbus_frame_put_len(buf, (uint32_t)len);
	memcpy(buf + LBUS_FRAME_HEADER, in->p, have < len ? have : len);
	in->p += have < len ? have : len;
	if (fc->open)
		bt_send_bytes(&fc->c, buf, LBUS_FRAME_HEADER + len);
	free(buf);
}

static void run_op(struct bt_broker *t, struct fi_conn *conns, size_t nconn, struct fi_input *in)
{
	unsigned op = next_byte(in), n = next_byte(in);
	struct fi_conn *fc = &conns[(op & 3) % nconn];
	size_t have = (size_t)(in->end - in->p);

	switch ((op >> 2) & 7) {
	case 0:
		if (fc->open)
			bt_send_bytes(&fc->c, in->p, have < n ? have : n);
		in->p += have < n ? have : n;
		break;
	case 2:
		send_frame(fc, in, (size_t)n * 256 + next_byte(in));
		break;
	case 3:
		close_conn(fc);
		open_conn(t, fc, true);
		break;
	case 4:
		fc->stalled = !fc->stalled;
		break;
	case 5:
		for (unsigned i = 0; i < n % 8 + 1; i++)
			turn(t, conns, nconn);
		break;
	default:
		send_frame(fc, in, n);
		break;
	}
	turn(t, conns, nconn);
}

static void set_limits(struct bt_broker *t, unsigned settings)
{
	if (settings & 4)
		t->sndbuf = 4096;
	if (settings & 8) {
		t->b.cfg.max_frame = LBUS_MIN_MAX_FRAME;
		t->b.cfg.max_queue = 4096;
		t->b.cfg.retained_max = 512;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fi_input in = {data, data + size};
	struct fi_conn conns[FI_CONNS];
	struct bt_broker t;
	unsigned settings = next_byte(&in);
	size_t nconn = (settings & 3) + 1;

	cur_data = data;
	cur_size = size;
	memset(conns, 0, sizeof(conns));
	if (bt_start(&t) < 0)
		abort();
	set_limits(&t, settings);
	for (size_t i = 0; i < nconn; i++)
		open_conn(&t, &conns[i], settings & (16u << i));
	while (in.p < in.end)
		run_op(&t, conns, nconn, &in);
	for (size_t i = 0; i < nconn; i++)
		conns[i].stalled = false;
	CHECK(bt_settle(&t) == 0);
	for (size_t i = 0; i < nconn; i++)
		drain(&conns[i]);
	for (size_t i = 0; i < nconn; i++)
		close_conn(&conns[i]);
	CHECK(bt_settle(&t) == 0);
	CHECK(list_empty(&t.b.peers));
	CHECK(t.b.subs.count == 0);
	CHECK(names_count(&t.b.names) == 0);
	CHECK(t.b.calls.heap_len == 0);
	bt_stop(&t);
	return 0;
}
