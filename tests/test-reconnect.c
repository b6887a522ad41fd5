/* SPDX-License-Identifier: MIT */
/*
 * Clients that survive a broker restart (issue 7): liblbus's reconnect mode
 * (lbus_connect_opts.reconnect) and the long-running commands of the CLI.
 *
 * Each test starts a real lbusd on a temporary socket (tests/harness.h),
 * stops it (SIGTERM, or SIGKILL for a crash) and starts a new one on the
 * same path (reuse_dir). The library must tell the application both ways,
 * take its names and subscriptions again (same sub ids), deliver what was
 * published while it was down up to its bound and refuse the rest with
 * -ENOBUFS, and fail pending calls at once; without the option nothing
 * changes. The CLI's sub and listen keep running with one line on stderr
 * each way; --no-reconnect and a first connect that fails exit 3.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define RC_WAIT_MS 10000

/* ---- helpers ------------------------------------------------------------------ */

struct conn_log {
	int down, connecting, up;
	int last_err;
};

static void on_conn(lbus *bus, enum lbus_connection_event ev, int err, void *ud)
{
	struct conn_log *log = ud;
	if (ev == LBUS_DISCONNECTED) {
		log->down++;
		log->last_err = err;
	} else if (ev == LBUS_CONNECTING) {
		log->connecting++;
	} else {
		log->up++;
	}
}

struct inbox {
	int n;
	uint64_t sub_id;
	int last_index; /* payload "N" of the buffered publishes, -1 before */
	bool in_order;
};

static void on_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct inbox *in = ud;
	char text[32] = "";
	memcpy(text, m->data, m->len < sizeof(text) - 1 ? m->len : sizeof(text) - 1);
	int index = atoi(text);
	if (index <= in->last_index)
		in->in_order = false;
	in->last_index = index;
	in->n++;
	in->sub_id = m->sub_id;
}

static lbus *connect_rc(const struct lbt_broker *b, size_t buffer, struct conn_log *log)
{
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;
	o.reconnect = true;
	o.reconnect_min_ms = 20;
	o.reconnect_max_ms = 200;
	if (buffer)
		o.reconnect_buffer = buffer;
	lbus *bus;
	assert_int_equal(lbus_connect_with(&bus, b->sock, &o), 0);
	lbus_on_connection(bus, on_conn, log);
	return bus;
}

/* Stop the broker with sig, keeping its directory (and socket path). */
static void broker_down(struct lbt_broker *b, int sig)
{
	kill(b->pid, sig);
	int st = lbt_broker_wait_exit(b, lbt_ms(5000));
	assert_int_equal(st, sig == SIGKILL ? 128 + SIGKILL : 0);
}

static void broker_up(struct lbt_broker *b)
{
	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(b, &o), 0);
}

/* Dispatch until *counter reaches want (fails after RC_WAIT_MS). */
static void run_until(lbus *bus, const int *counter, int want)
{
	int64_t end = lbt_now_ms() + lbt_ms(RC_WAIT_MS);
	while (*counter < want && lbt_now_ms() < end)
		assert_true(lbus_run(bus, 20) >= 0);
	assert_true(*counter >= want);
}

/* ---- the library ------------------------------------------------------------------ */

/* Restart: both callbacks, the same fd number, the name owned again, the
 * subscription (same id) delivering again, requests refused meanwhile. */
static void test_reconnect_restores(void **state)
{
	struct lbt_broker b;
	struct conn_log log = {0};
	struct inbox in = {.last_index = -1, .in_order = true};
	uint64_t sid, owner = 0;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *bus = connect_rc(&b, 0, &log);
	assert_int_equal(lbus_subscribe(bus, "r/#", on_msg, &in, NULL, &sid), 0);
	assert_int_equal(lbus_name_take(bus, "svc.r"), 0);
	int fd = lbus_fd(bus);

	broker_down(&b, SIGTERM);
	run_until(bus, &log.down, 1);
	assert_int_equal(log.last_err, -ECONNRESET);
	assert_int_equal(lbus_name_take(bus, "other.r"), -ENOTCONN);
	assert_int_equal(lbus_sync(bus, 100), -ENOTCONN);
	assert_int_equal(log.up, 0);

	broker_up(&b);
	run_until(bus, &log.up, 1);
	assert_true(log.connecting >= 1);
	assert_int_equal(log.down, 1);
	assert_int_equal(lbus_fd(bus), fd);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);

	lbus *other;
	assert_int_equal(lbt_connect(&b, &other), 0);
	assert_int_equal(lbus_name_query(other, "svc.r", &owner), 1);
	assert_int_equal(owner, lbus_client_id(bus));
	assert_int_equal(lbus_name_take(other, "svc.r"), -EADDRINUSE);
	assert_int_equal(lbus_publish(other, "r/x", "1", 1, 0), 0);
	run_until(bus, &in.n, 1);
	assert_int_equal(in.sub_id, sid);
	assert_int_equal(lbus_publish(bus, "r/self", "2", 1, 0), 0);
	run_until(bus, &in.n, 2);
	assert_true(in.in_order);

	lbus_close(other);
	assert_int_equal(lbus_close(bus), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* Publishes while the broker is down are kept up to the bound, then
 * refused with -ENOBUFS; once reconnected they are delivered in order,
 * after the re-subscription (so this client's own subscription gets them). */
static void test_publishes_kept_while_down(void **state)
{
	enum { BUFFER = 4096, PAYLOAD = 100 };
	struct lbt_broker b;
	struct conn_log log = {0};
	struct inbox in = {.last_index = -1, .in_order = true};
	char payload[PAYLOAD];
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *bus = connect_rc(&b, BUFFER, &log);
	assert_int_equal(lbus_subscribe(bus, "q/#", on_msg, &in, NULL, NULL), 0);

	broker_down(&b, SIGKILL);
	run_until(bus, &log.down, 1);
	int n = 0, r;
	for (;;) {
		memset(payload, ' ', sizeof(payload));
		snprintf(payload, sizeof(payload), "%d", n);
		if ((r = lbus_publish(bus, "q/kept", payload, sizeof(payload), 0)) != 0)
			break;
		n++;
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(n >= 20);		    /* about 4096 / 120 */
	assert_true(n * PAYLOAD <= BUFFER); /* the bound holds */
	assert_int_equal(lbus_unsent(bus), (size_t)n);

	broker_up(&b);
	run_until(bus, &log.up, 1);
	run_until(bus, &in.n, n);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
	assert_true(lbus_run(bus, 50) >= 0);
	assert_int_equal(in.n, n);
	assert_true(in.in_order);
	assert_int_equal(in.last_index, n - 1);
	assert_int_equal(lbus_unsent(bus), 0);
	assert_int_equal(lbus_close(bus), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

struct call_result {
	bool done;
	int err;
};

static void on_reply(lbus *bus, int err, const struct lbus_reply *reply, void *ud)
{
	struct call_result *res = ud;
	res->done = true;
	res->err = err;
}

static void on_call_ignore(lbus *bus, const struct lbus_msg *m, void *ud) {}

/* Calls pending when the broker dies fail with -ECONNRESET at once: an
 * asynchronous one and a blocking one without a time limit. */
static void test_pending_calls_fail(void **state)
{
	struct lbt_broker b;
	struct conn_log log = {0};
	struct call_result res = {0};
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *resp;
	assert_int_equal(lbt_connect(&b, &resp), 0);
	lbus_on_call(resp, on_call_ignore, NULL);
	assert_int_equal(lbus_name_take(resp, "slow.r"), 0);
	lbus *bus = connect_rc(&b, 0, &log);
	assert_int_equal(lbus_call_async(bus, "slow.r", "a", 1, -1, on_reply, &res, NULL), 0);

	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)b.pid);
	const char *argv[] = {"/bin/sh", "-c", "sleep 0.3; kill -KILL $0", pid, NULL};
	struct lbt_proc killer;
	assert_int_equal(lbt_proc_spawn(&killer, argv), 0);
	struct lbus_reply *reply = NULL;
	int64_t t0 = lbt_now_ms();
	int r = lbus_call(bus, "slow.r", "b", 1, -1, &reply);
	int64_t took = lbt_now_ms() - t0;
	assert_int_equal(r, -ECONNRESET);
	assert_null(reply);
	assert_true(took < lbt_ms(3000));
	assert_true(res.done);
	assert_int_equal(res.err, -ECONNRESET);
	assert_int_equal(log.down, 1);
	fprintf(stderr, "blocking call failed %lld ms after it started (broker killed at ~300 ms)\n",
		(long long)took);
	assert_int_equal(lbt_proc_wait(&killer, lbt_ms(5000)), 0);
	lbt_proc_free(&killer);
	assert_int_equal(lbt_broker_wait_exit(&b, lbt_ms(5000)), 128 + SIGKILL);

	broker_up(&b);
	run_until(bus, &log.up, 1);
	lbus_close(resp);
	assert_int_equal(lbus_close(bus), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* Without the option a lost connection still ends the handle, also once a
 * new broker listens. */
static void test_without_option_unchanged(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *bus;
	assert_int_equal(lbt_connect(&b, &bus), 0);
	broker_down(&b, SIGTERM);
	assert_int_equal(lbus_run(bus, lbt_ms(5000)), -ECONNRESET);
	broker_up(&b);
	assert_int_equal(lbus_dispatch(bus), -ECONNRESET);
	assert_int_equal(lbus_publish(bus, "t", "x", 1, 0), -ECONNRESET);
	lbus_close(bus);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- the CLI ---------------------------------------------------------------------- */

/* Read p's output until its stderr holds needle. */
static bool stderr_has(struct lbt_proc *p, const char *needle)
{
	int64_t end = lbt_now_ms() + lbt_ms(RC_WAIT_MS);
	while (!(p->err && strstr(p->err, needle)) && lbt_now_ms() < end) {
		if (lbt_proc_exited(p))
			break;
		lbt_sleep_ms(20);
	}
	return p->err && strstr(p->err, needle);
}

static void test_cli_sub_survives_restart(void **state)
{
	struct lbt_broker b;
	struct lbt_proc p;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	assert_int_equal(lbt_cli_spawn(&p, &b, "sub", "c/t", NULL), 0);
	assert_true(lbt_sub_ready(&b, &p, "c/t", lbt_ms(RC_WAIT_MS)) >= 0);

	broker_down(&b, SIGTERM);
	assert_true(stderr_has(&p, "lbus: connection lost, reconnecting\n"));
	broker_up(&b);
	assert_true(stderr_has(&p, "lbus: reconnected (messages may have been missed)\n"));
	long off = lbt_sub_ready(&b, &p, "c/t", lbt_ms(RC_WAIT_MS));
	assert_true(off >= 0);
	lbus *pub;
	assert_int_equal(lbt_connect(&b, &pub), 0);
	assert_int_equal(lbus_publish(pub, "c/t", "after-restart", 13, 0), 0);
	assert_true(lbt_proc_read_until(&p, "after-restart\n", (size_t)off, lbt_ms(RC_WAIT_MS)) >= 0);
	lbus_close(pub);

	lbt_proc_signal(&p, SIGTERM);
	assert_int_equal(lbt_proc_wait(&p, lbt_ms(5000)), 0);
	assert_int_equal(p.exit_code, 0);
	/* one line each way, nothing else */
	assert_string_equal(p.err, "lbus: connection lost, reconnecting\n"
				   "lbus: reconnected (messages may have been missed)\n");
	lbt_proc_free(&p);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* listen owns its name again after the restart. */
static void test_cli_listen_survives_restart(void **state)
{
	struct lbt_broker b;
	struct lbt_proc p;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	assert_int_equal(lbt_cli_spawn(&p, &b, "listen", "cli.rc", NULL), 0);
	assert_true(lbt_listen_ready(&b, &p, "cli.rc", lbt_ms(RC_WAIT_MS)) >= 0);
	broker_down(&b, SIGKILL);
	broker_up(&b);
	assert_true(stderr_has(&p, "lbus: reconnected"));
	assert_true(lbt_listen_ready(&b, &p, "cli.rc", lbt_ms(RC_WAIT_MS)) >= 0);
	lbt_proc_signal(&p, SIGTERM);
	assert_int_equal(lbt_proc_wait(&p, lbt_ms(5000)), 0);
	assert_int_equal(p.exit_code, 0);
	lbt_proc_free(&p);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_cli_no_reconnect_exits_3(void **state)
{
	struct lbt_broker b;
	struct lbt_proc p;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	assert_int_equal(lbt_cli_spawn(&p, &b, "sub", "c/t", "--no-reconnect", NULL), 0);
	assert_true(lbt_sub_ready(&b, &p, "c/t", lbt_ms(RC_WAIT_MS)) >= 0);
	broker_down(&b, SIGTERM);
	assert_int_equal(lbt_proc_wait(&p, lbt_ms(5000)), 0);
	assert_int_equal(p.exit_code, 3);
	assert_null(strstr(p.err, "reconnecting"));
	lbt_proc_free(&p);
	broker_up(&b);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* No broker at all: every long-running command exits 3 at once. */
static void test_cli_first_connect_fails(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_path(b.sock, b.dir, "bus.sock"), 0);
	const char *cmds[][4] = {
	    {"sub", "x", NULL},
	    {"listen", "x", NULL},
	    {"monitor", NULL},
	    {"serve", "x", "--", "true"},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[6] = {0};
		for (size_t j = 0; j < 4 && cmds[i][j]; j++)
			args[j] = cmds[i][j];
		struct lbt_proc res;
		int64_t t0 = lbt_now_ms();
		assert_int_equal(lbt_cli_runv(&b, NULL, 0, lbt_ms(5000), &res, args), 0);
		assert_int_equal(res.exit_code, 3);
		assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
		lbt_proc_free(&res);
	}
	lbt_broker_kill(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reconnect_restores),
	    cmocka_unit_test(test_publishes_kept_while_down),
	    cmocka_unit_test(test_pending_calls_fail),
	    cmocka_unit_test(test_without_option_unchanged),
	    cmocka_unit_test(test_cli_sub_survives_restart),
	    cmocka_unit_test(test_cli_listen_survives_restart),
	    cmocka_unit_test(test_cli_no_reconnect_exits_3),
	    cmocka_unit_test(test_cli_first_connect_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
