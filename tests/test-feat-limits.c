/* SPDX-License-Identifier: MIT */
/*
 * The limits of a shared broker and its configuration file (issue 9), each
 * tested with the abuse it exists for, against a real lbusd:
 *  - max_clients: one connection more gets a clear refusal (-ENOSPC and the
 *    broker's reason through liblbus; exit 1 and the reason from the CLI),
 *    the connected clients keep working, and a freed slot is usable again;
 *    a client retrying in a loop is refused each time, counted each time,
 *    and logged at most once a second;
 *  - max_clients_per_uid: the same, per user id;
 *  - max_names_per_client, max_subscriptions_per_client: one more is an
 *    error (-ENOSPC), the connection stays usable, what it holds keeps
 *    working, and releasing one makes room;
 *  - every refusal is counted in lbus stats (liblbus and --json);
 *  - shutdown_timeout bounds the flush on SIGTERM when a client never reads;
 *  - SIGHUP applies new limits; a file with an error keeps the old ones;
 *  - the default file $XDG_CONFIG_HOME/lbus/lbusd.conf is read when it
 *    exists, its absence is no error, an absent -c file is;
 *  - lbusd --check-config: exit 0 and the effective settings for a valid
 *    file, exit 1 naming file:line and the valid range otherwise; an
 *    allow/deny line is a rule, not a "key = value" syntax error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static const char *txt(const char *s)
{
	return s ? s : "";
}

/* The broker's counters, asked through bus. */
static struct lbus_broker_stats stats_via(lbus *bus)
{
	struct lbus_broker_stats out;
	struct lbus_stats *s;

	assert_int_equal(lbus_stats_get(bus, lbt_ms(5000), &s), 0);
	out = s->broker;
	lbus_stats_free(s);
	return out;
}

/* The broker's log holds needle. */
static void assert_log_says(const struct lbt_broker *b, const char *needle)
{
	char *log = lbt_broker_log(b);

	assert_non_null(log);
	if (!strstr(log, needle))
		fprintf(stderr, "broker log lacks '%s':\n%s", needle, log);
	assert_non_null(strstr(log, needle));
	free(log);
}

/* Wait until exactly n clients are connected (a connection closed just
 * before may still be counted). bus is one of them. */
static void wait_clients(lbus *bus, uint64_t n)
{
	struct lbus_stats *s;
	uint64_t now = 0;

	for (int64_t t0 = lbt_now_ms(); lbt_now_ms() - t0 < lbt_ms(5000); lbt_sleep_ms(10)) {
		assert_int_equal(lbus_stats_get(bus, lbt_ms(5000), &s), 0);
		now = s->broker.clients;
		lbus_stats_free(s);
		if (now == n)
			return;
	}
	fprintf(stderr, "%llu clients connected, want %llu\n", (unsigned long long)now,
		(unsigned long long)n);
	fail();
}

/* Lines of the broker's log that hold needle. */
static int count_in_log(const struct lbt_broker *b, const char *needle)
{
	char *log = lbt_broker_log(b);
	int n = 0;

	assert_non_null(log);
	for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(log);
	return n;
}

#define N_FLOOD 100

struct inbox {
	int n;
	char last[32];
};

static void on_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct inbox *in = ud;

	in->n++;
	snprintf(in->last, sizeof(in->last), "%.*s", (int)m->len, (const char *)m->data);
}

/* pub publishes payload on topic; sub (subscribed to it into *in) gets it. */
static void assert_delivers(lbus *pub, lbus *sub, const char *topic, const char *payload, struct inbox *in)
{
	int before = in->n;

	assert_int_equal(lbus_publish(pub, topic, payload, strlen(payload), 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	for (int64_t t0 = lbt_now_ms(); in->n == before && lbt_now_ms() - t0 < lbt_ms(5000);)
		assert_true(lbus_run(sub, 50) >= 0);
	assert_int_equal(in->n, before + 1);
	assert_string_equal(in->last, payload);
}

/* One connection too many: -ENOSPC from liblbus with the broker's reason
 * naming key, and exit 1 with that reason from the CLI. */
static void assert_connection_refused(const struct lbt_broker *b, const char *key)
{
	char reason[512];
	struct lbt_proc p;
	lbus *bus = NULL;

	assert_int_equal(lbus_connect_reason(&bus, b->sock, reason, sizeof(reason)), -ENOSPC);
	assert_null(bus);
	fprintf(stderr, "refused: %s\n", reason);
	assert_non_null(strstr(reason, key));
	assert_non_null(strstr(reason, "limit"));

	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "pub", "t", "x", NULL), 0);
	fprintf(stderr, "lbus pub said: %s", txt(p.err));
	assert_int_equal(p.exit_code, 1);
	assert_non_null(strstr(txt(p.err), "refused"));
	assert_non_null(strstr(txt(p.err), key));
	lbt_proc_free(&p);
}

static void test_max_clients(void **state)
{
	struct lbt_broker b;
	lbus *c[4];
	struct inbox in = {0};

	assert_int_equal(lbt_broker_start_config(&b, "max_clients = 4\n"), 0);
	assert_int_equal(lbt_connect(&b, &c[0]), 0);
	wait_clients(c[0], 1);
	for (int i = 1; i < 4; i++)
		assert_int_equal(lbt_connect(&b, &c[i]), 0);
	assert_true(lbus_subscribe(c[1], "lim/#", on_msg, &in, NULL, NULL) == 0);

	int64_t t_first = lbt_now_ms();
	assert_connection_refused(&b, "max_clients = 4");
	/* The four connected clients are unaffected. */
	assert_delivers(c[0], c[1], "lim/a", "still-here", &in);
	/* A client retrying in a loop: each attempt refused with a fatal
	 * ERR_LIMIT, each counted, but the log is not flooded. */
	for (int i = 0; i < N_FLOOD; i++) {
		struct lbt_error e;
		int fd = lbt_raw_connect(&b);

		assert_true(fd >= 0);
		assert_int_equal(lbt_raw_expect_close(fd, lbt_ms(5000), &e), 0);
		assert_true(e.seen && e.fatal);
		assert_int_equal(e.code, LBUS__ERROR_CODE__ERR_LIMIT);
		close(fd);
	}
	assert_delivers(c[0], c[1], "lim/a", "after-flood", &in);
	int64_t secs = (lbt_now_ms() - t_first) / 1000;
	int lines = count_in_log(&b, "refused connection");
	fprintf(stderr, "%d refusals in %lld s: %d log lines\n", N_FLOOD + 2, (long long)secs + 1, lines);
	assert_true(lines >= 1 && lines <= 2 + secs);
	/* A freed slot is usable again, and the refusals were counted. */
	lbus_close(c[3]);
	wait_clients(c[0], 3);
	struct lbus_broker_stats s = stats_via(c[0]);
	assert_int_equal(s.refused_max_clients, 2 + N_FLOOD);
	assert_int_equal(s.refused_max_clients_per_uid, 0);
	assert_int_equal(lbt_connect(&b, &c[3]), 0);
	assert_delivers(c[3], c[1], "lim/b", "new-one", &in);
	assert_log_says(&b, "max_clients = 4");
	for (int i = 0; i < 4; i++)
		lbus_close(c[i]);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_max_clients_per_uid(void **state)
{
	struct lbt_broker b;
	lbus *c[3];
	struct inbox in = {0};

	assert_int_equal(lbt_broker_start_config(&b, "max_clients = 100\nmax_clients_per_uid = 3\n"), 0);
	assert_int_equal(lbt_connect(&b, &c[0]), 0);
	wait_clients(c[0], 1);
	for (int i = 1; i < 3; i++)
		assert_int_equal(lbt_connect(&b, &c[i]), 0);
	assert_true(lbus_subscribe(c[2], "uid/#", on_msg, &in, NULL, NULL) == 0);
	assert_connection_refused(&b, "max_clients_per_uid = 3");
	assert_delivers(c[1], c[2], "uid/a", "unaffected", &in);
	struct lbus_broker_stats s = stats_via(c[0]);
	assert_int_equal(s.refused_max_clients_per_uid, 2);
	assert_int_equal(s.refused_max_clients, 0);
	for (int i = 0; i < 3; i++)
		lbus_close(c[i]);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_max_names_per_client(void **state)
{
	struct lbt_broker b;
	lbus *bus, *other;

	assert_int_equal(lbt_broker_start_config(&b, "max_names_per_client = 2\n"), 0);
	assert_int_equal(lbt_connect(&b, &bus), 0);
	assert_int_equal(lbt_connect(&b, &other), 0);
	assert_int_equal(lbus_name_take(bus, "n.one"), 0);
	assert_int_equal(lbus_name_take(bus, "n.two"), 0);
	assert_int_equal(lbus_name_take(bus, "n.three"), -ENOSPC);
	assert_int_equal(lbus_name_take(bus, "n.four"), -ENOSPC);
	assert_int_equal(lbus_name_take(bus, "n.two"), 0); /* owned already: no new name */
	/* The connection is still usable, its names still reach it, another
	 * client has its own allowance, and releasing one makes room. */
	assert_int_equal(lbus_send(other, "n.one", "hi", 2, 0), 0);
	assert_int_equal(lbus_name_take(other, "n.three"), 0);
	assert_int_equal(lbus_name_release(bus, "n.one"), 0);
	assert_int_equal(lbus_name_take(bus, "n.five"), 0);
	struct lbus_broker_stats s = stats_via(other);
	assert_int_equal(s.refused_max_names, 2);

	/* The CLI: exit 1, the limit named as a limit. */
	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &p, "listen", "n.cli", "-t", "0.1", NULL), 0);
	assert_int_equal(p.exit_code, 0); /* a fresh connection: its own allowance */
	lbt_proc_free(&p);
	lbus_close(bus);
	lbus_close(other);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_max_subscriptions_per_client(void **state)
{
	struct lbt_broker b;
	struct inbox in = {0};
	uint64_t id[3] = {0};
	lbus *bus, *pub;

	assert_int_equal(lbt_broker_start_config(&b, "max_subscriptions_per_client = 3\n"), 0);
	assert_int_equal(lbt_connect(&b, &bus), 0);
	assert_int_equal(lbt_connect(&b, &pub), 0);
	assert_int_equal(lbus_subscribe(bus, "s/a", on_msg, &in, NULL, &id[0]), 0);
	assert_int_equal(lbus_subscribe(bus, "s/b", on_msg, &in, NULL, &id[1]), 0);
	assert_int_equal(lbus_subscribe(bus, "s/c", on_msg, &in, NULL, &id[2]), 0);
	for (int i = 0; i < 3; i++)
		assert_true(id[i] > 0);
	assert_int_equal(lbus_subscribe(bus, "s/d", on_msg, &in, NULL, NULL), -ENOSPC);
	assert_delivers(pub, bus, "s/c", "held", &in);
	assert_int_equal(lbus_unsubscribe(bus, id[0]), 0);
	assert_true(lbus_subscribe(bus, "s/d", on_msg, &in, NULL, NULL) == 0);
	assert_delivers(pub, bus, "s/d", "room", &in);
	struct lbus_broker_stats s = stats_via(pub);
	assert_int_equal(s.refused_max_subscriptions, 1);

	/* The CLI: three patterns fit, four are refused with status 1. */
	struct lbt_proc p;
	assert_int_equal(
	    lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &p, "sub", "x/1", "x/2", "x/3", "x/4", "-t", "2", NULL),
	    0);
	fprintf(stderr, "lbus sub said: %s", txt(p.err));
	assert_int_equal(p.exit_code, 1);
	assert_non_null(strstr(txt(p.err), "limit"));
	lbt_proc_free(&p);
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &p, "stats", "--json", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_non_null(strstr(txt(p.out), "\"refused_max_subscriptions\":2"));
	lbt_proc_free(&p);
	lbus_close(bus);
	lbus_close(pub);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* SIGTERM with output queued for a client that never reads: the broker
 * exits after shutdown_timeout (not the 2 s default), status 0. */
static void test_shutdown_timeout(void **state)
{
	static char chunk[16384];
	struct lbt_broker b;
	lbus *stuck, *pub;

	assert_int_equal(lbt_broker_start_config(&b, "shutdown_timeout = 300ms\nmax_queue = 65536\n"), 0);
	assert_int_equal(lbt_connect(&b, &stuck), 0);
	assert_int_equal(lbt_connect(&b, &pub), 0);
	assert_true(lbus_subscribe(stuck, "flood", on_msg, NULL, NULL, NULL) == 0);
	/* stuck never reads: its socket and then its queue fill up. */
	for (int i = 0; i < 200; i++)
		assert_int_equal(lbus_publish(pub, "flood", chunk, sizeof(chunk), 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	lbus_close(pub);

	int64_t t0 = lbt_now_ms();
	assert_int_equal(kill(b.pid, SIGTERM), 0);
	int code = lbt_broker_wait_exit(&b, lbt_ms(10000));
	int64_t took = lbt_now_ms() - t0;
	fprintf(stderr, "broker exited %d after %lld ms\n", code, (long long)took);
	assert_int_equal(code, 0);
	assert_true(took >= 250);
	if (!getenv("LBUSD_WRAPPER"))
		assert_true(took < 1500);
	lbus_close(stuck);
	lbt_broker_kill(&b);
}

/* SIGHUP applies new limits to what comes next; a bad file keeps them. */
static void test_limits_reload(void **state)
{
	struct lbt_broker b;
	char conf[PATH_MAX];
	lbus *bus;

	assert_int_equal(lbt_broker_start_config(&b, "max_subscriptions_per_client = 3\n"), 0);
	assert_int_equal(lbt_connect(&b, &bus), 0);
	assert_true(lbus_subscribe(bus, "r/1", on_msg, NULL, NULL, NULL) == 0);
	static const char tighter[] = "max_subscriptions_per_client = 1\n";
	assert_int_equal(lbt_write_file(b.dir, "lbusd.conf", tighter, strlen(tighter), conf), 0);
	assert_int_equal(kill(b.pid, SIGHUP), 0);
	for (int64_t t0 = lbt_now_ms();
	     !count_in_log(&b, "configuration reloaded") && lbt_now_ms() - t0 < lbt_ms(5000);)
		lbt_sleep_ms(10);
	assert_int_equal(count_in_log(&b, "configuration reloaded"), 1);
	assert_int_equal(lbus_subscribe(bus, "r/2", on_msg, NULL, NULL, NULL), -ENOSPC);

	static const char bad[] = "max_subscriptions_per_client = 5\nmax_clients = many\n";
	assert_int_equal(lbt_write_file(b.dir, "lbusd.conf", bad, strlen(bad), conf), 0);
	assert_int_equal(kill(b.pid, SIGHUP), 0);
	for (int64_t t0 = lbt_now_ms();
	     !count_in_log(&b, "reload failed") && lbt_now_ms() - t0 < lbt_ms(5000);)
		lbt_sleep_ms(10);
	assert_log_says(&b, "lbusd.conf:2: invalid value 'many' for max_clients");
	assert_int_equal(lbus_subscribe(bus, "r/3", on_msg, NULL, NULL, NULL), -ENOSPC); /* still 1 */
	lbus_close(bus);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- the configuration file ------------------------------------------------- */

/* Run lbusd with args (NULL-terminated, after the program), to completion. */
static void run_lbusd(struct lbt_proc *p, const char *a0, const char *a1, const char *a2, const char *a3)
{
	const char *argv[] = {lbt_lbusd_path(), a0, a1, a2, a3, NULL};

	assert_int_equal(lbt_runv(argv, NULL, 0, lbt_ms(5000), p), 0);
}

static void test_default_config_file(void **state)
{
	struct lbt_broker b;
	char xdg[PATH_MAX], dir[PATH_MAX], conf[PATH_MAX];
	const char *saved = getenv("XDG_CONFIG_HOME");
	char *old = saved ? strdup(saved) : NULL;
	lbus *bus;

	/* Absent: no error (every other test runs so). */
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_path(xdg, b.dir, "xdg"), 0);
	assert_int_equal(lbt_path(dir, xdg, "lbus"), 0);
	assert_int_equal(mkdir(xdg, 0700), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	static const char text[] = "max_names_per_client = 1\n";
	assert_int_equal(lbt_write_file(dir, "lbusd.conf", text, strlen(text), conf), 0);
	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	assert_int_equal(lbt_connect(&b, &bus), 0);
	assert_int_equal(lbus_name_take(bus, "d.one"), 0);
	assert_int_equal(lbus_name_take(bus, "d.two"), -ENOSPC);
	lbus_close(bus);
	assert_log_says(&b, conf);

	/* lbusd --check-config reads the same file. */
	struct lbt_proc p;
	run_lbusd(&p, "--check-config", NULL, NULL, NULL);
	assert_int_equal(p.exit_code, 0);
	assert_non_null(strstr(txt(p.out), conf));
	assert_non_null(strstr(txt(p.out), "\nmax_names_per_client = 1\n"));
	lbt_proc_free(&p);
	/* -c overrides it. */
	run_lbusd(&p, "--check-config", "-c", "/dev/null", NULL);
	assert_int_equal(p.exit_code, 0);
	assert_non_null(strstr(txt(p.out), "\nmax_names_per_client = 1024\n"));
	lbt_proc_free(&p);
	assert_int_equal(lbt_broker_stop(&b), 0);

	/* An absent -c file is an error that names it. */
	run_lbusd(&p, "-c", "/nonexistent/lbusd.conf", "-S", "/nonexistent/bus.sock");
	assert_int_equal(p.exit_code, 1);
	assert_non_null(strstr(txt(p.err), "/nonexistent/lbusd.conf"));
	lbt_proc_free(&p);
	if (old)
		setenv("XDG_CONFIG_HOME", old, 1);
	else
		unsetenv("XDG_CONFIG_HOME");
	free(old);
}

/* --check-config on text: the exit code; out/err captured in *p. */
static int check_config(struct lbt_proc *p, const char *text, char *conf)
{
	struct lbt_broker b;

	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_write_file(b.dir, "lbusd.conf", text, strlen(text), conf), 0);
	run_lbusd(p, "--check-config", "-c", conf, NULL);
	lbt_broker_kill(&b);
	fprintf(stderr, "--check-config: %d, %s", p->exit_code, txt(p->err));
	return p->exit_code;
}

static void test_check_config(void **state)
{
	char conf[PATH_MAX], where[PATH_MAX + 8];
	struct lbt_proc p;

	assert_int_equal(check_config(&p,
				      "# a shared bus\nmax_clients = 7\nmax_clients_per_uid = 2\n"
				      "shutdown_timeout = 3s\nsocket_mode = 0660\n",
				      conf),
			 0);
	assert_non_null(strstr(txt(p.out), "\nmax_clients = 7\n"));
	assert_non_null(strstr(txt(p.out), "\nmax_clients_per_uid = 2\n"));
	assert_non_null(strstr(txt(p.out), "\nshutdown_timeout = 3000ms\n"));
	assert_non_null(strstr(txt(p.out), "\nsocket_mode = 0660\n"));
	assert_non_null(strstr(txt(p.out), "\nmax_subscriptions_per_client = 16384\n"));
	assert_non_null(strstr(txt(p.err), "valid"));
	lbt_proc_free(&p);

	/* A value out of range: file:line and the valid range. */
	assert_int_equal(check_config(&p, "max_clients = 3\n\nmax_clients = 0\n", conf), 1);
	snprintf(where, sizeof(where), "%s:3:", conf);
	assert_non_null(strstr(txt(p.err), where));
	assert_non_null(strstr(txt(p.err), "max_clients"));
	assert_non_null(strstr(txt(p.err), "from 1 to 1048576"));
	lbt_proc_free(&p);
	assert_int_equal(check_config(&p, "shutdown_timeout = 2 minutes\n", conf), 1);
	assert_non_null(strstr(txt(p.err), ":1:"));
	assert_non_null(strstr(txt(p.err), "600000"));
	lbt_proc_free(&p);
	/* An unknown key, a line that is neither a key nor a rule. */
	assert_int_equal(check_config(&p, "max_client = 3\n", conf), 1);
	assert_non_null(strstr(txt(p.err), "unknown key 'max_client'"));
	lbt_proc_free(&p);
	assert_int_equal(check_config(&p, "max_clients 3\n", conf), 1);
	assert_non_null(strstr(txt(p.err), "expected 'key = value' or an allow/deny rule"));
	lbt_proc_free(&p);
	/* A rule line is parsed as a rule (this broker admits no other user
	 * yet, and says so rather than ignoring it). */
	assert_int_equal(check_config(&p, "max_clients = 3\nallow user nobody connect\n", conf), 1);
	snprintf(where, sizeof(where), "%s:2:", conf);
	assert_non_null(strstr(txt(p.err), where));
	assert_non_null(strstr(txt(p.err), "'allow' rules"));
	lbt_proc_free(&p);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_clients),
		cmocka_unit_test(test_max_clients_per_uid),
		cmocka_unit_test(test_max_names_per_client),
		cmocka_unit_test(test_max_subscriptions_per_client),
		cmocka_unit_test(test_shutdown_timeout),
		cmocka_unit_test(test_limits_reload),
		cmocka_unit_test(test_default_config_file),
		cmocka_unit_test(test_check_config),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
