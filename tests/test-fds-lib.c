/* SPDX-License-Identifier: MIT */
/*
 * File descriptors through liblbus: lbus_publish_fds(), lbus_send_fds(),
 * lbus_call_fds() and lbus_reply_fds(); struct lbus_msg.fds with
 * lbus_msg_take_fd(); a retained message's descriptor; a drop-policy
 * subscriber that misses messages. The library closes every descriptor a
 * callback does not take, so this process's and the broker's descriptor
 * counts come back to where they were.
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
#include <dirent.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct lbt_broker broker;
static int broker_base;

static int setup(void **state)
{
	(void)state;
	if (lbt_broker_start(&broker, NULL) < 0 || lbt_pubsub_roundtrip(&broker, "warm/up") < 0)
		return -1;
	lbt_sleep_ms(lbt_ms(100));
	broker_base = lbt_broker_fd_count(&broker);
	return broker_base > 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return lbt_broker_stop(&broker);
}

static int memfd_with(const char *text)
{
	int fd = memfd_create("lbus-lib-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void expect_content(int fd, const char *text)
{
	char buf[128] = {0};

	assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), (ssize_t)strlen(text));
	assert_string_equal(buf, text);
}

static void expect_no_leak(int self_base)
{
	assert_int_equal(lbt_broker_wait_fds(&broker, broker_base, lbt_ms(5000)), broker_base);
	assert_int_equal(lbt_fd_count(), self_base);
}

/* Dispatch bus until *count reaches n (5 s at most). */
static void run_until(lbus *bus, const int *count, int n)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);

	while (*count < n && lbt_now_ms() < deadline)
		assert_true(lbus_run(bus, 20) >= 0);
	assert_true(*count >= n);
}

struct seen {
	int msgs;
	int fds;
	int kept; /* a descriptor taken with lbus_msg_take_fd(), or -1 */
	bool take;
	char text[64];
};

static void on_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct seen *s = ud;

	(void)bus;
	s->msgs++;
	s->fds += (int)m->nfds;
	if (m->nfds) {
		ssize_t n = pread(m->fds[0], s->text, sizeof(s->text) - 1, 0);
		s->text[n > 0 ? n : 0] = 0;
	}
	if (s->take && m->nfds) {
		s->kept = lbus_msg_take_fd(m, 0);
		assert_true(s->kept >= 0);
		assert_int_equal(lbus_msg_take_fd(m, 0), -EBADF);
	}
}

/* Two subscribers: one keeps the descriptor (it stays open after the
 * callback), the other does not (the library closes it). */
static void test_publish_fds(void **state)
{
	int self = lbt_fd_count();
	lbus *pub, *a, *b;
	struct seen sa = {.kept = -1, .take = true}, sb = {.kept = -1};

	assert_int_equal(lbt_connect(&broker, &pub), 0);
	assert_int_equal(lbt_connect(&broker, &a), 0);
	assert_int_equal(lbt_connect(&broker, &b), 0);
	assert_int_equal(lbus_subscribe(a, "lib/+", on_msg, &sa, NULL, NULL), 0);
	assert_int_equal(lbus_subscribe(b, "lib/+", on_msg, &sb, NULL, NULL), 0);
	int m = memfd_with("library");
	assert_int_equal(lbus_publish_fds(pub, "lib/t", "p", 1, 0, &m, 1), 0);
	close(m); /* the library sent its own duplicate */
	assert_int_equal(lbus_publish(pub, "lib/t", "plain", 5, 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	run_until(a, &sa.msgs, 2);
	run_until(b, &sb.msgs, 2);
	assert_int_equal(sa.fds, 1);
	assert_int_equal(sb.fds, 1);
	assert_string_equal(sa.text, "library");
	assert_string_equal(sb.text, "library");
	expect_content(sa.kept, "library");
	close(sa.kept);
	lbus_close(pub);
	lbus_close(a);
	lbus_close(b);
	expect_no_leak(self);
}

/* A send to a name carries its descriptor; so do a call and its reply. */
static void on_send(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct seen *s = ud;

	on_msg(bus, m, ud);
	(void)s;
}

static void on_call(lbus *bus, const struct lbus_msg *m, void *ud)
{
	(void)ud;
	if (m->len > 100000) { /* a large request (offloaded): echo it (offloaded too) */
		lbus_reply(bus, m->reply_token, m->data, m->len);
		return;
	}
	int r = memfd_with("reply");
	if (m->nfds != 1)
		_exit(5);
	lbus_reply_fds(bus, m->reply_token, "r", 1, &r, 1);
	close(r);
}

static void test_send_call_reply(void **state)
{
	int self = lbt_fd_count(), ready[2];
	lbus *owner, *caller;
	struct seen s = {.kept = -1};
	pid_t pid;

	assert_int_equal(lbt_connect(&broker, &owner), 0);
	assert_int_equal(lbt_connect(&broker, &caller), 0);
	assert_int_equal(lbus_name_take(owner, "lib.owner"), 0);
	lbus_on_message(owner, on_send, &s);
	int m = memfd_with("to a name");
	assert_int_equal(lbus_send_fds(caller, "lib.owner", "s", 1, 0, &m, 1), 0);
	close(m);
	run_until(owner, &s.msgs, 1);
	assert_int_equal(s.fds, 1);
	assert_string_equal(s.text, "to a name");
	lbus_close(owner);

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lbus *r;

		close(ready[0]);
		if (lbt_connect(&broker, &r) < 0 || lbus_name_take(r, "lib.svc") < 0)
			_exit(2);
		lbus_on_call(r, on_call, NULL);
		if (write(ready[1], "y", 1) != 1)
			_exit(3);
		lbus_run(r, lbt_ms(10000));
		_exit(0);
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	struct lbus_reply *rep;
	m = memfd_with("request");
	assert_int_equal(lbus_call_fds(caller, "lib.svc", "q", 1, lbt_ms(5000), &m, 1, &rep), 0);
	close(m);
	assert_int_equal(rep->nfds, 1);
	expect_content(rep->fds[0], "reply");
	lbus_reply_free(rep); /* closes it */

	/* 300 KiB each way: offloaded to sealed memfds both ways. */
	size_t big = 300 * 1024;
	uint8_t *req = malloc(big);
	assert_non_null(req);
	lbt_fill_random(req, big, 7);
	assert_int_equal(lbus_call(caller, "lib.svc", req, big, lbt_ms(5000), &rep), 0);
	assert_int_equal(rep->len, big);
	assert_memory_equal(rep->data, req, big);
	assert_int_equal(rep->nfds, 0);
	lbus_reply_free(rep);
	free(req);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	lbus_close(caller);
	expect_no_leak(self);
}

/* A retained message's descriptor reaches a later subscriber. */
static void test_retained(void **state)
{
	int self = lbt_fd_count();
	lbus *pub, *sub;
	struct seen s = {.kept = -1};

	assert_int_equal(lbt_connect(&broker, &pub), 0);
	int m = memfd_with("retained");
	assert_int_equal(lbus_publish_fds(pub, "lib/ret", "", 0, LBUS_RETAIN, &m, 1), 0);
	close(m);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	assert_int_equal(lbt_connect(&broker, &sub), 0);
	assert_int_equal(lbus_subscribe(sub, "lib/ret", on_msg, &s, NULL, NULL), 0);
	run_until(sub, &s.msgs, 1);
	assert_int_equal(s.fds, 1);
	assert_string_equal(s.text, "retained");
	assert_int_equal(lbus_publish(pub, "lib/ret", "", 0, LBUS_RETAIN), 0); /* clear */
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	lbus_close(pub);
	lbus_close(sub);
	expect_no_leak(self);
}

/* A drop-policy subscriber that reads nothing for a while misses messages;
 * those it misses never reach it, those it gets are closed after its
 * callback: nothing leaks on either side. */
static void test_drop_subscriber(void **state)
{
	int self = lbt_fd_count();
	lbus *pub, *sub;
	struct seen s = {.kept = -1};

	assert_int_equal(lbt_connect(&broker, &pub), 0);
	assert_int_equal(lbt_connect(&broker, &sub), 0);
	assert_int_equal(lbus_subscribe(sub, "lib/drop", on_msg, &s, NULL, NULL), 0);
	int m = memfd_with("d");
	for (int i = 0; i < 300; i++) {
		int r = lbus_publish_fds(pub, "lib/drop", "d", 1, 0, &m, 1);
		assert_true(r == 0 || r == -ENOSPC); /* max_fds_per_client */
		if (i % 50 == 49)
			lbus_sync(pub, lbt_ms(5000));
	}
	close(m);
	lbus_sync(pub, lbt_ms(5000));
	lbus_run(sub, lbt_ms(300));
	assert_true(s.msgs > 0);
	assert_int_equal(s.fds, s.msgs);
	lbus_close(pub);
	lbus_close(sub);
	expect_no_leak(self);
}

/* ---- memfd offload ----------------------------------------------------------------- */

struct big_seen {
	int msgs;
	size_t len;
	bool same;
	size_t nfds;
	const uint8_t *want;
};

static void on_big(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct big_seen *s = ud;

	(void)bus;
	s->msgs++;
	s->len = m->len;
	s->nfds = m->nfds;
	s->same = s->want && m->len && memcmp(m->data, s->want, m->len) == 0;
}

static uint64_t broker_fds_in(lbus *bus)
{
	struct lbus_stats *st;
	uint64_t n;

	assert_int_equal(lbus_stats_get(bus, lbt_ms(5000), &st), 0);
	n = st->broker.fds_in;
	lbus_stats_free(st);
	return n;
}

/*
 * A payload above the threshold travels as a sealed memfd (one descriptor
 * through the broker), even one larger than the broker's max_frame; the
 * subscriber sees ordinary data. Threshold 0: in-band, as before.
 */
static void test_offload(void **state)
{
	int self = lbt_fd_count();
	size_t big = 12u * 1024 * 1024; /* above the default max_frame (8 MiB) */
	uint8_t *data = malloc(big);
	lbus *pub, *sub, *inband;
	struct big_seen s = {.want = data};
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;

	assert_non_null(data);
	lbt_fill_random(data, big, 3);
	assert_int_equal(lbt_connect(&broker, &pub), 0);
	assert_int_equal(lbt_connect(&broker, &sub), 0);
	assert_int_equal(lbus_subscribe(sub, "big/t", on_big, &s, NULL, NULL), 0);
	uint64_t in0 = broker_fds_in(pub);
	assert_int_equal(lbus_publish(pub, "big/t", data, big, 0), 0);
	run_until(sub, &s.msgs, 1);
	assert_int_equal(s.len, big);
	assert_true(s.same);
	assert_int_equal(s.nfds, 0);
	assert_int_equal(broker_fds_in(pub), in0 + 1);

	o.memfd_threshold = 0;
	assert_int_equal(lbus_connect_with(&inband, broker.sock, &o), 0);
	assert_int_equal(lbus_publish(inband, "big/t", data, 100000, 0), 0);
	run_until(sub, &s.msgs, 2);
	assert_int_equal(s.len, 100000);
	assert_true(s.same);
	assert_int_equal(broker_fds_in(pub), in0 + 1); /* no descriptor this time */
	assert_int_equal(lbus_publish(inband, "big/t", data, big, 0), -EMSGSIZE);
	lbus_close(inband);
	lbus_close(pub);
	lbus_close(sub);
	free(data);
	expect_no_leak(self);
}

/* memfd_keep_fd: the payload's memfd also comes in msg->fds[0]. */
static void test_offload_keep_fd(void **state)
{
	int self = lbt_fd_count();
	size_t big = 70000;
	uint8_t *data = calloc(1, big);
	lbus *pub, *sub;
	struct big_seen s = {.want = data};
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;

	assert_non_null(data);
	data[0] = 1;
	o.memfd_keep_fd = true;
	assert_int_equal(lbt_connect(&broker, &pub), 0);
	assert_int_equal(lbus_connect_with(&sub, broker.sock, &o), 0);
	assert_int_equal(lbus_subscribe(sub, "keep/t", on_big, &s, NULL, NULL), 0);
	assert_int_equal(lbus_publish(pub, "keep/t", data, big, 0), 0);
	run_until(sub, &s.msgs, 1);
	assert_int_equal(s.len, big);
	assert_true(s.same);
	assert_int_equal(s.nfds, 1);
	lbus_close(pub);
	lbus_close(sub);
	free(data);
	expect_no_leak(self);
}

/* A memfd payload that is not sealed against every change is a bad
 * message: not delivered, reported as -EBADMSG. */
static void test_unsealed_memfd_refused(void **state)
{
	int self = lbt_fd_count();
	lbus *sub;
	struct big_seen s = {0};
	static const unsigned seals[] = {0, F_SEAL_WRITE, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_SEAL};

	assert_int_equal(lbt_connect(&broker, &sub), 0);
	assert_int_equal(lbus_subscribe(sub, "evil/t", on_big, &s, NULL, NULL), 0);
	int raw = lbt_raw_connect(&broker);
	assert_true(raw >= 0);
	assert_int_equal(lbt_raw_hello(raw, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		int m = memfd_create("evil", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		Lbus__Frame f = LBUS__FRAME__INIT;
		Lbus__Publish p = LBUS__PUBLISH__INIT;

		assert_int_equal(write(m, "evil", 4), 4);
		if (seals[i])
			assert_int_equal(fcntl(m, F_ADD_SEALS, seals[i]), 0);
		p.topic = "evil/t";
		p.payload_memfd = true;
		f.kind_case = LBUS__FRAME__KIND_PUBLISH;
		f.publish = &p;
		f.fds = 1;
		assert_int_equal(lbt_raw_send_frame_fds(raw, &f, &m, 1, 0, 0), 0);
		close(m);
	}
	assert_int_equal(lbt_raw_sync(raw, 1, lbt_ms(5000), NULL), 0);
	assert_int_equal(lbus_sync(sub, lbt_ms(5000)), 0);
	lbus_run(sub, 50);
	assert_int_equal(s.msgs, 0);
	assert_int_equal(lbus_last_error(sub, NULL), -EBADMSG);
	close(raw);
	lbus_close(sub);
	expect_no_leak(self);
}

/* ---- the CLI ------------------------------------------------------------------------ */

/*
 * lbus pub -f of a 1 MiB file goes through a memfd (the monitor shows it:
 * fds=1 memfd=SIZE) and lbus sub prints the bytes as always; lbus pub --fd
 * sends the open file, lbus sub --save-fds writes what it holds.
 */
static void test_cli(void **state)
{
	size_t big = 1024 * 1024;
	char *data = malloc(big), bigpath[PATH_MAX], small[PATH_MAX], saved[PATH_MAX];
	struct lbt_proc sub = {0}, mon = {0}, pub = {0};

	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(lbt_write_file(broker.dir, "big.txt", data, big, bigpath), 0);
	assert_int_equal(lbt_write_file(broker.dir, "small.txt", "in the file", 11, small), 0);
	assert_int_equal(lbt_path(saved, broker.dir, "saved"), 0);
	assert_int_equal(mkdir(saved, 0700), 0);

	assert_int_equal(lbt_cli_spawn(&mon, &broker, "monitor", "cli/#", NULL), 0);
	assert_int_equal(lbt_cli_spawn(&sub, &broker, "sub", "cli/t", "--save-fds", saved, NULL), 0);
	long at = lbt_sub_ready(&broker, &sub, "cli/t", lbt_ms(5000));
	assert_true(at >= 0);
	assert_int_equal(
	    lbt_cli_run(&broker, NULL, 0, lbt_ms(10000), &pub, "pub", "cli/t", "-f", bigpath, NULL), 0);
	assert_int_equal(pub.exit_code, 0);
	lbt_proc_free(&pub);
	assert_int_equal(lbt_proc_read_bytes(&sub, (size_t)at + big + 1, lbt_ms(10000)), 0);
	assert_memory_equal(sub.out + at, data, big);
	assert_int_equal(sub.out[at + (long)big], '\n');
	char want[64];
	snprintf(want, sizeof(want), "fds=1 memfd=%zu", big);
	assert_true(lbt_proc_read_until(&mon, want, 0, lbt_ms(5000)) >= 0);

	assert_int_equal(
	    lbt_cli_run(&broker, NULL, 0, lbt_ms(10000), &pub, "pub", "--fd", "cli/t", "-f", small, NULL), 0);
	assert_int_equal(pub.exit_code, 0);
	lbt_proc_free(&pub);
	assert_true(lbt_proc_read_until(&mon, "fds=1 from", 0, lbt_ms(5000)) >= 0);
	/* sub printed an empty payload: one more newline */
	assert_int_equal(lbt_proc_read_bytes(&sub, (size_t)at + big + 2, lbt_ms(5000)), 0);
	/* the only message with a descriptor: one file, DIR/N-0 */
	char path[2 * PATH_MAX], got[32] = {0};
	DIR *d = opendir(saved);
	struct dirent *e;
	int files = 0;
	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			files++;
			assert_non_null(strstr(e->d_name, "-0"));
			snprintf(path, sizeof(path), "%s/%s", saved, e->d_name);
		}
	closedir(d);
	assert_int_equal(files, 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got)), 11);
	assert_string_equal(got, "in the file");
	close(fd);
	lbt_proc_free(&sub);
	lbt_proc_free(&mon);
	free(data);
}

static void test_too_many(void **state)
{
	lbus *bus;
	int fds[17];

	assert_int_equal(lbt_connect(&broker, &bus), 0);
	for (int i = 0; i < 17; i++)
		fds[i] = 0;
	assert_int_equal(lbus_publish_fds(bus, "lib/x", "", 0, 0, fds, 17), -EINVAL);
	lbus_close(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_fds),
	    cmocka_unit_test(test_send_call_reply),
	    cmocka_unit_test(test_retained),
	    cmocka_unit_test(test_drop_subscriber),
	    cmocka_unit_test(test_too_many),
	    cmocka_unit_test(test_offload),
	    cmocka_unit_test(test_offload_keep_fd),
	    cmocka_unit_test(test_unsealed_memfd_refused),
	    cmocka_unit_test(test_cli),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
