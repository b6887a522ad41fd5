/* SPDX-License-Identifier: MIT */
/*
 * File descriptors through the broker, on raw connections (the exact bytes
 * and SCM_RIGHTS we choose): publish to several subscribers, frames whose
 * reads coalesce, send, call and reply, retained, queue groups, drop and
 * block subscribers, receivers that die, and hostile senders (descriptors
 * without or outside their frame's first byte, too many, where none are
 * allowed, past the per-client limit). Every test ends by counting the
 * broker's open descriptors (/proc/PID/fd): none may leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define FD_LIMIT_CONFIG "max_fds_per_client = 12\nmax_queue = 4096\n"

static struct lbt_broker broker;
static int base_fds; /* the broker's descriptors with no client */

static int setup(void **state)
{
	(void)state;
	if (lbt_broker_start_config(&broker, FD_LIMIT_CONFIG) < 0 ||
	    lbt_pubsub_roundtrip(&broker, "warm/up") < 0)
		return -1;
	/* Settled: what the broker holds with no client (after one came and went). */
	lbt_sleep_ms(lbt_ms(100));
	base_fds = lbt_broker_fd_count(&broker);
	return base_fds > 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return lbt_broker_stop(&broker);
}

/* Every client is gone: the broker holds what it held at start. */
static void expect_no_leak(void)
{
	int have = lbt_broker_wait_fds(&broker, base_fds, lbt_ms(5000));

	if (have != base_fds)
		fail_msg("broker holds %d descriptors, %d at start", have, base_fds);
}

static int client(void)
{
	int fd = lbt_raw_connect(&broker);

	assert_true(fd >= 0);
	assert_int_equal(lbt_raw_hello(fd, NULL), 0);
	return fd;
}

/* A sealed memfd holding text. */
static int memfd_with(const char *text)
{
	int fd = memfd_create("lbus-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	return fd;
}

/* fd holds exactly text (read at offset 0). */
static void expect_content(int fd, const char *text)
{
	char buf[256] = {0};
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	assert_int_equal(n, (ssize_t)strlen(text));
	assert_string_equal(buf, text);
}

static void expect_ok(int fd, uint32_t req_id)
{
	Lbus__Frame *f;

	assert_int_equal(lbt_raw_read_frame(fd, lbt_ms(5000), &f), 0);
	if (f->kind_case != LBUS__FRAME__KIND_OK)
		fail_msg("want ok for request %u, got kind %d (error %d)", req_id, (int)f->kind_case,
			 f->kind_case == LBUS__FRAME__KIND_ERROR ? (int)f->error->code : 0);
	assert_int_equal(f->req_id, req_id);
	lbus__frame__free_unpacked(f, NULL);
}

static void subscribe(int fd, uint64_t sub_id, const char *pattern, const char *group, Lbus__Policy policy)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;

	s.sub_id = sub_id;
	s.pattern = (char *)pattern;
	s.group = (char *)(group ? group : "");
	s.policy = policy;
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &s;
	f.req_id = 77;
	assert_int_equal(lbt_raw_send_frame(fd, &f), 0);
	expect_ok(fd, 77);
}

/* Publish payload with fds[0..n) attached (Frame.fds = announced). */
static void publish_fds(int fd, const char *topic, const char *payload, bool retain, const int *fds, size_t n,
			uint32_t announced)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Publish p = LBUS__PUBLISH__INIT;

	p.topic = (char *)topic;
	p.payload.data = (uint8_t *)payload;
	p.payload.len = strlen(payload);
	p.retain = retain;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &p;
	f.fds = announced;
	assert_int_equal(lbt_raw_send_frame_fds(fd, &f, fds, n, 0, 0), 0);
}

/* Read the next frame (a Deliver or Result); its descriptors into fds. */
static Lbus__Frame *read_with_fds(int fd, int *fds, size_t *n)
{
	Lbus__Frame *f;

	assert_int_equal(lbt_raw_read_frame_fds(fd, lbt_ms(5000), &f, fds, 16, n), 0);
	if (f->fds != *n)
		fail_msg("frame announces %u descriptors, %zu came with it", f->fds, *n);
	return f;
}

/* The next Deliver's payload and the content of its one memfd, or no fd. */
static void expect_delivery(int fd, const char *payload, const char *fd_text)
{
	int fds[16];
	size_t n;
	Lbus__Frame *f = read_with_fds(fd, fds, &n);

	assert_int_equal(f->kind_case, LBUS__FRAME__KIND_DELIVER);
	assert_int_equal(f->deliver->publish->payload.len, strlen(payload));
	assert_memory_equal(f->deliver->publish->payload.data, payload, strlen(payload));
	assert_int_equal(n, fd_text ? 1 : 0);
	if (fd_text) {
		expect_content(fds[0], fd_text);
		close(fds[0]);
	}
	lbus__frame__free_unpacked(f, NULL);
}

static void expect_fatal(int fd, Lbus__ErrorCode code)
{
	struct lbt_error e;

	assert_int_equal(lbt_raw_expect_close(fd, lbt_ms(5000), &e), 0);
	if (!e.seen || e.code != (uint32_t)code || !e.fatal)
		fail_msg("want fatal error %d, got %s code %u fatal %d", code, e.seen ? "error" : "no error",
			 e.code, e.fatal);
	close(fd);
}

/* ---- delivery ---------------------------------------------------------------------- */

/* Two descriptors reach each of three subscribers, as their own copies of
 * the same files; the broker keeps none once all is delivered. */
static void test_publish_fanout(void **state)
{
	int subs[3], pub = client(), fds[2], got[16], pipefd[2];
	size_t n;
	struct stat a, b;

	for (int i = 0; i < 3; i++) {
		subs[i] = client();
		subscribe(subs[i], 1, "fd/+", NULL, LBUS__POLICY__POLICY_BLOCK);
	}
	fds[0] = memfd_with("shared bytes");
	assert_int_equal(pipe(pipefd), 0);
	fds[1] = pipefd[1];
	publish_fds(pub, "fd/x", "two", false, fds, 2, 2);
	close(fds[0]);
	close(fds[1]);
	for (int i = 0; i < 3; i++) {
		Lbus__Frame *f = read_with_fds(subs[i], got, &n);

		assert_int_equal(f->kind_case, LBUS__FRAME__KIND_DELIVER);
		assert_int_equal(n, 2);
		expect_content(got[0], "shared bytes");
		assert_int_equal(write(got[1], "p", 1), 1); /* the pipe's write end */
		assert_int_equal(fstat(got[1], &a), 0);
		assert_int_equal(fstat(pipefd[0], &b), 0);
		assert_true(a.st_ino == b.st_ino);
		close(got[0]);
		close(got[1]);
		lbus__frame__free_unpacked(f, NULL);
	}
	char buf[8];
	assert_int_equal(read(pipefd[0], buf, sizeof(buf)), 3);
	close(pipefd[0]);
	close(pub);
	for (int i = 0; i < 3; i++)
		close(subs[i]);
	expect_no_leak();
}

/*
 * Frames written back to back, some with descriptors, which the broker
 * reads in one go: each descriptor reaches the subscriber with its own
 * frame, never a neighbour (also when the frame with descriptors is the
 * first of a sendmsg that carries more frames).
 */
static void test_coalesced_reads(void **state)
{
	int sub = client(), pub = client();

	subscribe(sub, 1, "co/#", NULL, LBUS__POLICY__POLICY_BLOCK);
	for (int round = 0; round < 20; round++) {
		int a = memfd_with("A"), c = memfd_with("C");

		publish_fds(pub, "co/1", "plain-1", false, NULL, 0, 0);
		publish_fds(pub, "co/2", "with-a", false, &a, 1, 1);
		publish_fds(pub, "co/3", "plain-3", false, NULL, 0, 0);
		publish_fds(pub, "co/4", "with-c", false, &c, 1, 1);
		publish_fds(pub, "co/5", "plain-5", false, NULL, 0, 0);
		close(a);
		close(c);
		expect_delivery(sub, "plain-1", NULL);
		expect_delivery(sub, "with-a", "A");
		expect_delivery(sub, "plain-3", NULL);
		expect_delivery(sub, "with-c", "C");
		expect_delivery(sub, "plain-5", NULL);
	}
	close(pub);
	close(sub);
	expect_no_leak();
}

/* A send to a name, and a call whose reply carries a descriptor back. */
static void test_send_call_reply(void **state)
{
	int svc = client(), caller = client(), fds[16], m;
	size_t n;
	Lbus__Frame f = LBUS__FRAME__INIT, *in;
	Lbus__NameRequest nr = LBUS__NAME_REQUEST__INIT;
	Lbus__Send snd = LBUS__SEND__INIT;
	Lbus__Call call = LBUS__CALL__INIT;
	Lbus__Reply rep = LBUS__REPLY__INIT;

	nr.name = "fd.svc";
	f.kind_case = LBUS__FRAME__KIND_TAKE_NAME;
	f.take_name = &nr;
	f.req_id = 5;
	assert_int_equal(lbt_raw_send_frame(svc, &f), 0);
	expect_ok(svc, 5);

	snd.name = "fd.svc";
	snd.payload.data = (uint8_t *)"s";
	snd.payload.len = 1;
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_SEND;
	f.send = &snd;
	f.fds = 1;
	m = memfd_with("sent");
	assert_int_equal(lbt_raw_send_frame_fds(caller, &f, &m, 1, 0, 0), 0);
	close(m);
	in = read_with_fds(svc, fds, &n);
	assert_non_null(in->deliver->send);
	assert_int_equal(n, 1);
	expect_content(fds[0], "sent");
	close(fds[0]);
	lbus__frame__free_unpacked(in, NULL);

	call.target = "fd.svc";
	call.call_id = 9;
	call.timeout_ms = 5000;
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_CALL;
	f.call = &call;
	f.fds = 1;
	m = memfd_with("request");
	assert_int_equal(lbt_raw_send_frame_fds(caller, &f, &m, 1, 0, 0), 0);
	close(m);
	in = read_with_fds(svc, fds, &n);
	assert_non_null(in->deliver->call);
	assert_int_equal(n, 1);
	expect_content(fds[0], "request");
	close(fds[0]);
	rep.call_token = in->deliver->call_token;
	lbus__frame__free_unpacked(in, NULL);

	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_REPLY;
	f.reply = &rep;
	f.fds = 1;
	m = memfd_with("answer");
	assert_int_equal(lbt_raw_send_frame_fds(svc, &f, &m, 1, 0, 0), 0);
	close(m);
	in = read_with_fds(caller, fds, &n);
	assert_int_equal(in->kind_case, LBUS__FRAME__KIND_RESULT);
	assert_int_equal(in->result->call_id, 9);
	assert_int_equal(n, 1);
	expect_content(fds[0], "answer");
	close(fds[0]);
	lbus__frame__free_unpacked(in, NULL);
	close(svc);
	close(caller);
	expect_no_leak();
}

/* A retained message keeps its descriptor for later subscribers; clearing
 * it closes the broker's copy. */
static void test_retained(void **state)
{
	int pub = client(), m = memfd_with("kept");

	publish_fds(pub, "ret/fd", "", true, &m, 1, 1);
	close(m);
	assert_int_equal(lbt_raw_sync(pub, 1, lbt_ms(5000), NULL), 0);
	assert_int_equal(lbt_broker_fd_count(&broker), base_fds + 2); /* pub's socket, the memfd */
	for (int i = 0; i < 2; i++) {
		int sub = client(), fds[16];
		size_t n;
		Lbus__Frame *f;

		subscribe(sub, 3, "ret/#", NULL, LBUS__POLICY__POLICY_DROP);
		f = read_with_fds(sub, fds, &n);
		assert_true(f->deliver->retained);
		assert_int_equal(n, 1);
		expect_content(fds[0], "kept");
		close(fds[0]);
		lbus__frame__free_unpacked(f, NULL);
		close(sub);
	}
	publish_fds(pub, "ret/fd", "", true, NULL, 0, 0); /* clears it */
	close(pub);
	expect_no_leak();
}

/* Each message of a queue group goes to one member, descriptors with it. */
static void test_groups(void **state)
{
	int members[2] = {client(), client()}, pub = client(), total = 0;

	for (int i = 0; i < 2; i++)
		subscribe(members[i], 4, "grp/t", "workers", LBUS__POLICY__POLICY_BLOCK);
	for (int i = 0; i < 4; i++) {
		int m = memfd_with("job");

		publish_fds(pub, "grp/t", "job", false, &m, 1, 1);
		close(m);
	}
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 2; k++) { /* round-robin: two each */
			expect_delivery(members[i], "job", "job");
			total++;
		}
		assert_int_equal(lbt_raw_sync(members[i], 2, lbt_ms(5000), NULL), 0);
	}
	assert_int_equal(total, 4);
	close(pub);
	close(members[0]);
	close(members[1]);
	expect_no_leak();
}

/* ---- flow control and dying receivers -------------------------------------------- */

/* A drop subscriber that never reads: its queue fills (each descriptor
 * counts against max_queue), the rest are dropped and closed at once. */
static void test_drop_subscriber_holds_few(void **state)
{
	int sub = client(), pub = client();

	subscribe(sub, 1, "drop/t", NULL, LBUS__POLICY__POLICY_DROP);
	for (int i = 0; i < 200; i++) {
		int m = memfd_with("x");

		publish_fds(pub, "drop/t", "x", false, &m, 1, 1);
		close(m);
		if (i % 4 == 3) /* at most 12 in flight per client (FD_LIMIT_CONFIG) */
			assert_int_equal(lbt_raw_sync(pub, (uint64_t)i, lbt_ms(5000), NULL), 0);
	}
	/* The 4 KiB queue (1 KiB per descriptor) holds a few. */
	assert_true(lbt_broker_fd_count(&broker) <= base_fds + 2 + 8);
	close(sub);
	assert_int_equal(lbt_raw_sync(pub, 999, lbt_ms(5000), NULL), 0);
	close(pub);
	expect_no_leak();
}

/* A block subscriber that reads nothing stops the publisher; when it dies,
 * what was queued to it and what waited in the publisher's input is closed. */
static void test_block_then_receiver_dies(void **state)
{
	int sub = client(), pub = client(), sent = 0;

	subscribe(sub, 1, "blk/t", NULL, LBUS__POLICY__POLICY_BLOCK);
	for (int i = 0; i < 64; i++) {
		int m = memfd_with("y");
		Lbus__Frame f = LBUS__FRAME__INIT;
		Lbus__Publish p = LBUS__PUBLISH__INIT;

		p.topic = "blk/t";
		f.kind_case = LBUS__FRAME__KIND_PUBLISH;
		f.publish = &p;
		f.fds = 1;
		if (lbt_raw_send_frame_fds(pub, &f, &m, 1, 0, 0) == 0)
			sent++;
		close(m);
	}
	assert_true(sent > 0);
	lbt_sleep_ms(100);
	close(sub); /* dies with its queue full */
	assert_int_equal(lbt_raw_sync(pub, 1, lbt_ms(10000), NULL), 0);
	close(pub);
	expect_no_leak();
}

/* ---- hostile senders ----------------------------------------------------------------- */

static Lbus__Frame publish_frame(Lbus__Publish *p, const char *topic, uint32_t fds)
{
	Lbus__Frame f = LBUS__FRAME__INIT;

	*p = (Lbus__Publish)LBUS__PUBLISH__INIT;
	p->topic = (char *)topic;
	p->payload.data = (uint8_t *)"0123456789abcdef0123456789abcdef";
	p->payload.len = 32;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = p;
	f.fds = fds;
	return f;
}

static void test_fds_not_announced(void **state)
{
	int c = client(), m = memfd_with("z");
	Lbus__Publish p;
	Lbus__Frame f = publish_frame(&p, "bad/t", 0);

	assert_int_equal(lbt_raw_send_frame_fds(c, &f, &m, 1, 0, 0), 0);
	close(m);
	expect_fatal(c, LBUS__ERROR_CODE__ERR_PROTOCOL);
	expect_no_leak();
}

static void test_too_many_fds(void **state)
{
	int c = client(), fds[17];
	Lbus__Publish p;
	Lbus__Frame f = publish_frame(&p, "bad/t", 17);

	for (int i = 0; i < 17; i++)
		fds[i] = memfd_with("z");
	assert_int_equal(lbt_raw_send_frame_fds(c, &f, fds, 17, 0, 0), 0);
	for (int i = 0; i < 17; i++)
		close(fds[i]);
	expect_fatal(c, LBUS__ERROR_CODE__ERR_LIMIT);
	expect_no_leak();
}

/* The descriptors come with a later chunk of the frame, not its first
 * byte (the broker has read the first chunk by then). */
static void test_fds_on_later_chunk(void **state)
{
	int c = client(), m = memfd_with("z");
	Lbus__Publish p;
	Lbus__Frame f = publish_frame(&p, "bad/t", 1);

	assert_int_equal(lbt_raw_send_frame_fds(c, &f, &m, 1, 10, lbt_ms(200)), 0);
	close(m);
	expect_fatal(c, LBUS__ERROR_CODE__ERR_PROTOCOL);
	expect_no_leak();
}

/* Descriptors sent with a frame that does not announce them, and announced
 * by the next one, which the broker reads later: not that frame's. */
static void test_fds_with_previous_frame(void **state)
{
	int c = client(), m = memfd_with("z");
	Lbus__Publish p1, p2;
	Lbus__Frame f1 = publish_frame(&p1, "bad/t", 0), f2 = publish_frame(&p2, "bad/t", 1);

	assert_int_equal(lbt_raw_send_frame_fds(c, &f1, &m, 1, 0, 0), 0);
	close(m);
	lbt_sleep_ms(lbt_ms(200));
	lbt_raw_send_frame(c, &f2); /* may find the connection closed already */
	expect_fatal(c, LBUS__ERROR_CODE__ERR_PROTOCOL);
	expect_no_leak();
}

/* Announced but never sent. */
static void test_fds_missing(void **state)
{
	int c = client();
	Lbus__Publish p;
	Lbus__Frame f = publish_frame(&p, "bad/t", 2);

	assert_int_equal(lbt_raw_send_frame(c, &f), 0);
	expect_fatal(c, LBUS__ERROR_CODE__ERR_PROTOCOL);
	expect_no_leak();
}

/* Descriptors with a kind that takes none, and past max_fds_per_client:
 * refused (the descriptors closed), the connection stays usable. */
static void test_refusals_keep_connection(void **state)
{
	int c = client(), fds[8];
	struct lbt_error e = {0};
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
	Lbus__Publish p;

	s.sub_id = 1;
	s.pattern = "x/#";
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &s;
	f.fds = 1;
	fds[0] = memfd_with("z");
	assert_int_equal(lbt_raw_send_frame_fds(c, &f, fds, 1, 0, 0), 0);
	close(fds[0]);
	assert_int_equal(lbt_raw_sync(c, 1, lbt_ms(5000), &e), 0);
	assert_true(e.seen && !e.fatal);
	assert_int_equal(e.code, LBUS__ERROR_CODE__ERR_INVALID);

	/* Eight held (a retained message), eight more would exceed 12. */
	f = publish_frame(&p, "lim/a", 8);
	p.retain = true;
	for (int i = 0; i < 8; i++)
		fds[i] = memfd_with("z");
	assert_int_equal(lbt_raw_send_frame_fds(c, &f, fds, 8, 0, 0), 0);
	e = (struct lbt_error){0};
	assert_int_equal(lbt_raw_sync(c, 3, lbt_ms(5000), &e), 0);
	assert_false(e.seen);
	p.topic = "lim/b";
	assert_int_equal(lbt_raw_send_frame_fds(c, &f, fds, 8, 0, 0), 0);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	e = (struct lbt_error){0};
	assert_int_equal(lbt_raw_sync(c, 2, lbt_ms(5000), &e), 0);
	assert_true(e.seen && !e.fatal);
	assert_int_equal(e.code, LBUS__ERROR_CODE__ERR_LIMIT);
	p.topic = "lim/a"; /* clear the retained one */
	f = publish_frame(&p, "lim/a", 0);
	p.retain = true;
	p.payload.len = 0;
	assert_int_equal(lbt_raw_send_frame(c, &f), 0);
	close(c);
	expect_no_leak();
}

/* A monitor sees how many descriptors a message carried and the size of
 * its memfds, never the descriptors. */
static void test_monitor_sees_count(void **state)
{
	int mon = client(), pub = client(), m = memfd_with("12345"), fds[16];
	size_t n;
	Lbus__Frame f = LBUS__FRAME__INIT, *in;
	Lbus__MonitorRequest mr = LBUS__MONITOR_REQUEST__INIT;

	mr.pattern = "mon/#";
	f.kind_case = LBUS__FRAME__KIND_MONITOR;
	f.monitor = &mr;
	f.req_id = 8;
	assert_int_equal(lbt_raw_send_frame(mon, &f), 0);
	expect_ok(mon, 8);
	publish_fds(pub, "mon/t", "m", false, &m, 1, 1);
	close(m);
	in = read_with_fds(mon, fds, &n);
	assert_int_equal(in->kind_case, LBUS__FRAME__KIND_MONITOR_EVENT);
	assert_int_equal(n, 0);
	assert_int_equal(in->monitor_event->fds, 1);
	assert_int_equal(in->monitor_event->memfd_size, 5);
	lbus__frame__free_unpacked(in, NULL);
	close(mon);
	close(pub);
	expect_no_leak();
}

/* stats counts descriptors in, out and held. */
static void test_stats(void **state)
{
	lbus *bus;
	struct lbus_stats *st;
	int sub = client(), pub = client(), m = memfd_with("s");

	subscribe(sub, 1, "st/t", NULL, LBUS__POLICY__POLICY_BLOCK);
	assert_int_equal(lbt_connect(&broker, &bus), 0);
	assert_int_equal(lbus_stats_get(bus, lbt_ms(5000), &st), 0);
	uint64_t in0 = st->broker.fds_in, out0 = st->broker.fds_out;
	lbus_stats_free(st);
	publish_fds(pub, "st/t", "s", false, &m, 1, 1);
	close(m);
	expect_delivery(sub, "s", "s");
	assert_int_equal(lbus_stats_get(bus, lbt_ms(5000), &st), 0);
	assert_int_equal(st->broker.fds_in, in0 + 1);
	assert_int_equal(st->broker.fds_out, out0 + 1);
	assert_int_equal(st->broker.fds_held, 0);
	lbus_stats_free(st);
	lbus_close(bus);
	close(sub);
	close(pub);
	expect_no_leak();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_fanout),
	    cmocka_unit_test(test_coalesced_reads),
	    cmocka_unit_test(test_send_call_reply),
	    cmocka_unit_test(test_retained),
	    cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_drop_subscriber_holds_few),
	    cmocka_unit_test(test_block_then_receiver_dies),
	    cmocka_unit_test(test_fds_not_announced),
	    cmocka_unit_test(test_too_many_fds),
	    cmocka_unit_test(test_fds_on_later_chunk),
	    cmocka_unit_test(test_fds_with_previous_frame),
	    cmocka_unit_test(test_fds_missing),
	    cmocka_unit_test(test_refusals_keep_connection),
	    cmocka_unit_test(test_monitor_sees_count),
	    cmocka_unit_test(test_stats),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
