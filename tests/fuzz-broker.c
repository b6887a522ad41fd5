/* SPDX-License-Identifier: MIT */
/*
 * Fuzzing a real lbusd end to end: mutated frames from raw connections must
 * never crash it, hang it, leak, corrupt other connections, or end a
 * connection without saying why.
 *
 * Every round opens a raw connection and sends one of (round % 4):
 *  - frames:   a valid hello, then 1..4 seed frames, most mutated: the
 *              whole body, or only the message inside (kind, lengths and
 *              req_id rebuilt), with every length header recomputed;
 *  - stream:   a valid hello, then 1..4 client frames mutated as one byte
 *              stream (headers included);
 *  - no hello: a hello and client frames mutated as one stream, from the
 *              first byte;
 *  - cut:      a valid hello, then valid client frames cut at a random
 *              point, then a hang-up.
 * Bytes go out in random-sized pieces. In the first three modes a frame the
 * stream leaves unfinished is padded with zeros (up to 64 KiB; longer: hang
 * up instead), then a Ping follows. The broker must then either answer the
 * Pong, having sent no fatal Error, or close the connection with a fatal
 * Error as its very last frame (PROTOCOL.md "Errors"). After a hang-up it
 * must close within the deadline, and a cut stream of valid frames must get
 * no fatal Error at all. No frame from the broker may be undecodable.
 *
 * Meanwhile a liblbus publisher/subscriber pair, connected from start to
 * end on a topic no seed can reach, exchanges one message per round: each
 * must arrive, in order. The whole sequence of rounds runs twice; after
 * each pass the broker's descriptors are back where they were, and the
 * second pass must not grow its RSS beyond a small bound. At the end it
 * stops cleanly (exit 0; under the valgrind setup that also means no
 * leak). Deterministic: $LBUS_FUZZ_SEED and $LBUS_FUZZ_ROUNDS override the
 * seed and the round count; a failure prints seed, round, mode and the bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fuzz-mutate.h"
#include "harness.h"
#include "frame.h"
#include "lbus-limits.h"
#include "pbwire.h"
#include "wire.h"

#define DEFAULT_SEED 0xb20ce5u
#define DEFAULT_ROUNDS 300
#define PAD_MAX (64u * 1024u)
#define PING_TOKEN 0x0f22b20c00000000ull
#define BYSTANDER_TOPIC "zz-bystander-7f3a/seq"

enum mode { MODE_FRAMES, MODE_STREAM, MODE_NO_HELLO, MODE_CUT, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = {"frames", "stream", "no-hello", "cut"};

/* How a round ended. */
enum outcome { OUT_PONG, OUT_FATAL, OUT_HANGUP, OUT_COUNT };

static struct lbt_broker broker;
static struct fz_seeds seeds;
static uint64_t seed;

/* ---- the bystanders -------------------------------------------------------------- */

static lbus *by_pub, *by_sub;
static struct {
	uint32_t published, received, bad;
} by;

static void on_bystander(lbus *bus, const struct lbus_msg *m, void *ud)
{
	uint32_t seq = UINT32_MAX;
	if (m->len == sizeof(seq))
		memcpy(&seq, m->data, sizeof(seq));
	by.bad += seq != by.received || m->missed || m->kind != LBUS_MSG_PUBLISH ||
		  strcmp(m->topic, BYSTANDER_TOPIC) != 0;
	by.received++;
}

/* Start a broker; an ASan-built one with a small quarantine, so that freed
 * memory is reused as in a normal build and RSS means something. */
static int start_broker(void)
{
	const char *asan = getenv("ASAN_OPTIONS");
	char *saved = asan ? strdup(asan) : NULL, opts[512];
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=1", asan ? asan : "", asan && *asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	int r = lbt_broker_start(&broker, NULL);
	if (saved)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved);
	return r;
}

static int setup(void **state)
{
	fz_seeds_build(&seeds);
	if (start_broker() < 0 || lbt_connect(&broker, &by_pub) < 0 || lbt_connect(&broker, &by_sub) < 0)
		return -1;
	return lbus_subscribe(by_sub, "zz-bystander-7f3a/#", on_bystander, NULL, NULL, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	fz_seeds_free(&seeds);
	lbus_close(by_pub);
	lbus_close(by_sub);
	lbt_broker_kill(&broker); /* only after a failure: the test stops it */
	return 0;
}

/* ---- building a round's bytes ---------------------------------------------------- */

struct round {
	int n;
	enum mode mode;
	struct fz_buf bytes;
	bool hello;    /* do a valid hello first */
	bool ping;     /* bytes end with our Ping: expect its Pong or a fatal close */
	bool no_fatal; /* valid frames only: a fatal Error is a failure */
};

static void append_frame(struct fz_buf *b, const uint8_t *body, size_t len)
{
	uint8_t hdr[4];
	lbus_frame_put_len(hdr, (uint32_t)len);
	fz_buf_append(b, hdr, sizeof(hdr));
	fz_buf_append(b, body, len);
}

static const struct fz_seed *hello_seed(void)
{
	for (size_t i = 0; i < seeds.n; i++)
		if (seeds.v[i].kind == LBUS_K_HELLO)
			return &seeds.v[i];
	fail_msg("no hello in the seed corpus");
	return NULL;
}

/* A frame body around a mutated copy of the seed's message (kind and
 * req_id kept), so the frame decodes and the handler sees the mutation. */
static void mutate_message(struct fz_rng *r, const struct fz_seed *s, struct fz_buf *body)
{
	struct lbus_wire_frame f;
	struct fz_buf msg = {0};
	uint8_t hdr[16];

	if (lbus_wire_frame_scan(s->data + 4, s->len - 4, &f) < 0 || !f.kind)
		fail_msg("seed of kind %u does not scan", s->kind);
	fz_buf_append(&msg, f.body, f.body_len);
	fz_mutate(r, &msg, &seeds);
	fz_buf_append(body, hdr, lbus_pb_put_len_header(hdr, f.kind, msg.len));
	fz_buf_append(body, msg.data, msg.len);
	fz_buf_append(body, hdr, lbus_pb_put_varint_field(hdr, LBUS_F_FRAME_REQ_ID, f.req_id));
	fz_buf_free(&msg);
}

/* 1..4 frames, mostly client requests (any kind one time in eight), each
 * left valid (1 in 4), mutated as a whole body (1 in 4) or with only its
 * message mutated (1 in 2), so that many reach the request handlers. */
static void build_frames(struct fz_rng *r, struct fz_buf *out)
{
	struct fz_buf body = {0};
	for (size_t n = 1 + fz_rng_below(r, 4); n > 0; n--) {
		const struct fz_seed *s = fz_seed_pick(r, &seeds, fz_rng_below(r, 8) != 0);
		size_t how = fz_rng_below(r, 4);
		body.len = 0;
		if (how < 2 || s->kind == LBUS_K_NONE) {
			fz_buf_append(&body, s->data + 4, s->len - 4);
			if (how == 1)
				fz_mutate(r, &body, &seeds);
		} else {
			mutate_message(r, s, &body);
		}
		append_frame(out, body.data, body.len);
	}
	fz_buf_free(&body);
}

static void build_client_frames(struct fz_rng *r, struct fz_buf *out, size_t max)
{
	for (size_t n = 1 + fz_rng_below(r, max); n > 0; n--) {
		const struct fz_seed *s = fz_seed_pick(r, &seeds, true);
		fz_buf_append(out, s->data, s->len);
	}
}

/* Where the broker will be after reading b (its default max_frame): returns
 * the bytes missing from an unfinished last frame, 0 if none (or if the
 * stream is broken before). */
static size_t missing_bytes(const struct fz_buf *b)
{
	struct lbus_rbuf rb = {.data = b->data, .cap = b->len, .start = 0, .end = b->len};
	const uint8_t *body;
	uint32_t len;
	size_t need = 0;
	int r;

	while ((r = lbus_frame_next(&rb, LBUS_DEFAULT_MAX_FRAME, &body, &len, &need)) > 0)
		;
	return r == 0 && lbus_rbuf_len(&rb) ? need - lbus_rbuf_len(&rb) : 0;
}

static void append_ping(struct fz_buf *b, int round)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Ping p = LBUS__PING__INIT;
	uint8_t buf[64];
	p.token = PING_TOKEN | (uint64_t)round;
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &p;
	fz_buf_append(b, buf, lbus_frame_pack(&f, buf));
}

static void build_round(struct fz_rng *r, struct round *rd)
{
	rd->mode = (enum mode)(rd->n % MODE_COUNT);
	rd->hello = rd->mode != MODE_NO_HELLO;
	rd->no_fatal = rd->mode == MODE_CUT;
	rd->bytes.len = 0;
	switch (rd->mode) {
	case MODE_FRAMES:
		build_frames(r, &rd->bytes);
		break;
	case MODE_STREAM:
		build_client_frames(r, &rd->bytes, 4);
		fz_mutate(r, &rd->bytes, &seeds);
		break;
	case MODE_NO_HELLO:
		fz_buf_append(&rd->bytes, hello_seed()->data, hello_seed()->len);
		build_client_frames(r, &rd->bytes, 3);
		fz_mutate(r, &rd->bytes, &seeds);
		break;
	default:
		build_client_frames(r, &rd->bytes, 4);
		rd->bytes.len = fz_rng_below(r, rd->bytes.len);
		rd->ping = false;
		return;
	}
	/* Pad until no frame is left unfinished: completing a cut header
	 * reveals how long its body is. */
	static const uint8_t zeros[4096];
	size_t missing, padded = 0;
	while ((missing = missing_bytes(&rd->bytes)) > 0 && padded + missing <= PAD_MAX) {
		size_t n = missing > sizeof(zeros) ? sizeof(zeros) : missing;
		fz_buf_append(&rd->bytes, zeros, n);
		padded += n;
	}
	rd->ping = missing == 0;
	if (rd->ping)
		append_ping(&rd->bytes, rd->n);
}

/* ---- running a round ------------------------------------------------------------- */

static void round_failed(const struct round *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void round_failed(const struct round *rd, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fuzz-broker: seed 0x%llx round %d mode %s%s: %s\n", (unsigned long long)seed, rd->n,
		mode_names[rd->mode], rd->hello ? " (after a valid hello)" : "", why);
	fz_hexdump("bytes sent", rd->bytes.data, rd->bytes.len);
	lbt_broker_alive(&broker);
	fail_msg("round %d (%s): %s", rd->n, mode_names[rd->mode], why);
}

/* Send in random pieces; stop quietly once the broker has closed. */
static void send_pieces(struct fz_rng *r, int fd, const struct fz_buf *b)
{
	for (size_t at = 0; at < b->len;) {
		size_t n = 1 + fz_rng_below(r, 512);
		if (n > b->len - at)
			n = b->len - at;
		if (lbt_raw_send_bytes(fd, b->data + at, n) < 0)
			return;
		at += n;
	}
}

/* Read until our Pong or the close; check the fatal-Error rule on the way. */
static enum outcome read_answers(const struct round *rd, int fd)
{
	bool last_fatal = false;
	for (;;) {
		Lbus__Frame *f;
		int r = lbt_raw_read_frame(fd, lbt_ms(5000), &f);
		if (r == -ECONNRESET) {
			if (rd->ping && !last_fatal)
				round_failed(rd, "the broker closed the connection without a fatal Error");
			return rd->ping ? OUT_FATAL : OUT_HANGUP;
		}
		if (r == -ETIMEDOUT)
			round_failed(rd, "no %s within %d ms", rd->ping ? "Pong and no close" : "close",
				     lbt_ms(5000));
		if (r < 0)
			round_failed(rd, "unreadable frame from the broker: %s", strerror(-r));
		if (last_fatal)
			round_failed(rd, "frame kind %d after a fatal Error", (int)f->kind_case);
		last_fatal = f->kind_case == LBUS__FRAME__KIND_ERROR && f->error->fatal;
		if (last_fatal && rd->no_fatal)
			round_failed(rd, "fatal Error %d (%s) for valid frames", (int)f->error->code,
				     f->error->reason);
		bool pong = f->kind_case == LBUS__FRAME__KIND_PONG &&
			    f->pong->token == (PING_TOKEN | (uint64_t)rd->n);
		lbus__frame__free_unpacked(f, NULL);
		if (pong && rd->ping)
			return OUT_PONG;
	}
}

static enum outcome run_round(struct fz_rng *r, struct round *rd)
{
	int fd = lbt_raw_connect(&broker);
	if (fd < 0)
		round_failed(rd, "cannot connect: %s", strerror(-fd));
	if (rd->hello && lbt_raw_hello(fd, NULL) < 0)
		round_failed(rd, "valid hello refused");
	send_pieces(r, fd, &rd->bytes);
	if (!rd->ping)
		shutdown(fd, SHUT_WR);
	enum outcome o = read_answers(rd, fd);
	close(fd);
	return o;
}

/* One bystander message per round: queued before the round, checked after. */
static void bystander_publish(void)
{
	uint32_t seq = by.published++;
	assert_int_equal(lbus_publish(by_pub, BYSTANDER_TOPIC, &seq, sizeof(seq), 0), 0);
	assert_int_equal(lbus_flush(by_pub, lbt_ms(5000)), 0);
}

static void bystander_check(const struct round *rd)
{
	if (lbus_sync(by_pub, lbt_ms(5000)) < 0 || lbus_sync(by_sub, lbt_ms(5000)) < 0)
		round_failed(rd, "the bystanders lost the broker");
	if (by.received != by.published || by.bad)
		round_failed(rd, "bystander got %u of %u messages, %u wrong", by.received, by.published,
			     by.bad);
}

/* ---- the test -------------------------------------------------------------------- */

/* One pass: every round of the seed's sequence, counted by mode and outcome. */
static void run_pass(int rounds, int counts[MODE_COUNT][OUT_COUNT])
{
	struct round rd = {0};
	struct fz_rng r;

	fz_rng_init(&r, seed);
	for (rd.n = 0; rd.n < rounds; rd.n++) {
		build_round(&r, &rd);
		bystander_publish();
		enum outcome o = run_round(&r, &rd);
		bystander_check(&rd);
		counts[rd.mode][o]++;
	}
	fz_buf_free(&rd.bytes);
}

/*
 * The same pass twice. The first one takes the broker's allocator to its
 * high-water mark (a frame that announces 8 MiB makes the broker reserve
 * them, and glibc keeps such memory once freed); replaying the very same
 * input must then not grow the broker's RSS beyond a small bound.
 */
static void test_mutated_traffic(void **state)
{
	const char *e = getenv("LBUS_FUZZ_ROUNDS");
	int rounds = e && *e ? atoi(e) : DEFAULT_ROUNDS, counts[MODE_COUNT][OUT_COUNT] = {{0}};
	int64_t t0 = lbt_now_ms();

	seed = fz_seed_from_env(DEFAULT_SEED);
	fprintf(stderr, "fuzz-broker: seed 0x%llx (LBUS_FUZZ_SEED), %d rounds (LBUS_FUZZ_ROUNDS), twice\n",
		(unsigned long long)seed, rounds);
	int fds = lbt_broker_fd_count(&broker);
	assert_true(fds > 0);
	run_pass(rounds, counts);
	assert_true(lbt_broker_wait_fds(&broker, fds, lbt_ms(5000)) <= fds);
	long rss0 = lbt_broker_rss_kib(&broker);
	run_pass(rounds, counts);
	assert_true(lbt_broker_wait_fds(&broker, fds, lbt_ms(5000)) <= fds);
	long rss1 = lbt_broker_rss_kib(&broker);

	fprintf(stderr, "fuzz-broker: %d rounds in %lld ms\n", 2 * rounds, (long long)(lbt_now_ms() - t0));
	for (int m = 0; m < MODE_COUNT; m++)
		fprintf(stderr, "  %-8s: %3d answered the ping, %3d closed with a fatal Error, %3d hung up\n",
			mode_names[m], counts[m][OUT_PONG], counts[m][OUT_FATAL], counts[m][OUT_HANGUP]);
	const char *w = getenv("LBUSD_WRAPPER");
	long bound = (w && *w) ? 32 * 1024 : 2 * 1024;
	fprintf(stderr, "fuzz-broker: broker RSS %ld KiB after the first pass, %ld KiB after the second\n",
		rss0, rss1);
	assert_true(rss0 > 0 && rss1 - rss0 <= bound);
	assert_int_equal(lbt_pubsub_roundtrip(&broker, "after/fuzz"), 0);
	lbus_close(by_pub);
	lbus_close(by_sub);
	by_pub = by_sub = NULL;
	assert_int_equal(lbt_broker_stop(&broker), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mutated_traffic),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
