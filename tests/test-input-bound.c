/* SPDX-License-Identifier: MIT */
/*
 * liblbus's memory is bounded too (issue 7): while lbus_publish() waits for
 * room in the socket it keeps reading what the broker sends (so two
 * clients publishing at each other cannot deadlock), and that input must
 * stay under lbus_connect_opts.input_buffer, the overflow reported as
 * drops (lbus_on_dropped()), not kept.
 *
 * The client under test runs in a child process (its RSS is measured
 * alone): it subscribes to a topic a thread of the parent floods, then
 * publishes to a topic whose only subscriber blocks and never reads, so
 * the broker pauses it and its publish waits, reading the flood, for the
 * connection's timeout. Its peak RSS must stay within the input bound (and
 * the buffers' doubling) and drops must be reported.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define FLOOD_PAYLOAD (16 * 1024)
#define STUCK_PAYLOAD (64 * 1024)
#define WAIT_MS 3000

struct flood {
	const struct lbt_broker *b;
	volatile bool stop;
	uint64_t sent;
};

static void *flood_run(void *arg)
{
	struct flood *fl = arg;
	static char payload[FLOOD_PAYLOAD];
	lbus *bus;
	if (lbt_connect(fl->b, &bus) < 0)
		return NULL;
	while (!fl->stop)
		if (lbus_publish(bus, "flood/x", payload, sizeof(payload), LBUS_MORE) == 0)
			fl->sent++;
	lbus_close(bus);
	return NULL;
}

/* VmRSS or VmHWM of this process in KiB. */
static long self_kib(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key) + 1);
	fclose(f);
	return v;
}

static void on_flood(lbus *bus, const struct lbus_msg *m, void *ud)
{
	++*(uint64_t *)ud;
}

static void on_dropped(lbus *bus, uint64_t sub_id, uint64_t count, void *ud)
{
	*(uint64_t *)ud += count;
}

struct child_report {
	long base_kib, peak_kib;
	uint64_t received, dropped;
	int publish_err;
};

/* The client under test (in the child): returns its report. */
static struct child_report child_run(const struct lbt_broker *b, int ready_fd)
{
	struct child_report rep = {0};
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;
	static char payload[STUCK_PAYLOAD];
	lbus *bus;
	o.timeout_ms = WAIT_MS;
	o.input_buffer = 1;    /* the floor: the broker's largest frame + 256 KiB */
	o.memfd_threshold = 0; /* its 64 KiB publishes fill the socket in-band */
	if (lbus_connect_with(&bus, b->sock, &o) < 0 ||
	    lbus_subscribe(bus, "flood/#", on_flood, &rep.received, NULL, NULL) < 0)
		_exit(90);
	lbus_on_dropped(bus, on_dropped, &rep.dropped);
	rep.base_kib = self_kib("VmRSS:");
	if (write(ready_fd, "r", 1) != 1)
		_exit(91);
	int64_t end = lbt_now_ms() + WAIT_MS + 1000;
	while (lbt_now_ms() < end &&
	       (rep.publish_err = lbus_publish(bus, "stuck/x", payload, sizeof(payload), 0)) == 0)
		;
	rep.peak_kib = self_kib("VmHWM:");
	lbus_run(bus, 300); /* the drop notices */
	lbus_close(bus);
	return rep;
}

static void test_input_bounded_while_publish_waits(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *stuck;
	struct lbus_sub_opts so = LBUS_SUB_OPTS_INIT;
	so.policy = LBUS_POLICY_BLOCK;
	assert_int_equal(lbt_connect(&b, &stuck), 0);
	assert_int_equal(lbus_subscribe(stuck, "stuck/#", on_flood, NULL, &so, NULL), 0);

	int ready[2], result[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(result), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct child_report rep = child_run(&b, ready[1]);
		_exit(write(result[1], &rep, sizeof(rep)) == sizeof(rep) ? 0 : 92);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	struct flood fl = {.b = &b};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flood_run, &fl), 0);
	struct child_report rep;
	ssize_t n = read(result[0], &rep, sizeof(rep));
	fl.stop = true;
	pthread_join(th, NULL);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(n, (ssize_t)sizeof(rep));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	long bound_kib = (8 * 1024 + 64 + 256); /* LBUS_DEFAULT_MAX_FRAME + slack + a read */
	long grew = rep.peak_kib - rep.base_kib;
	fprintf(stderr,
		"input bound %ld KiB: the client's RSS grew %ld KiB (base %ld, peak %ld) while its publish "
		"waited; "
		"flood %llu x 16 KiB sent, %llu received, %llu reported dropped; publish ended with %d\n",
		bound_kib, grew, rep.base_kib, rep.peak_kib, (unsigned long long)fl.sent,
		(unsigned long long)rep.received, (unsigned long long)rep.dropped, rep.publish_err);
	assert_int_equal(rep.publish_err, -ETIMEDOUT); /* it did wait */
	assert_true(rep.dropped > 0);
	/* the receive buffer may double once past the bound; the rest is small.
	 * ASan keeps freed blocks in quarantine, so RSS says nothing there. */
#ifndef __SANITIZE_ADDRESS__
	assert_true(grew < 2 * bound_kib + 4096);
#endif
	lbus_close(stuck);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_input_bounded_while_publish_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
