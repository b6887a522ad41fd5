/* SPDX-License-Identifier: MIT */
/*
 * The lbus command line as a shell user sees it, against a real lbusd:
 * pub (argument, stdin, -l, -f, -n, ''), sub (-n, -t, -v, --json, several
 * patterns), send/listen, --help/--version, options after positionals, and
 * the exit statuses of DESIGN.md (0 ok, 1 refused, 2 usage, 3 no broker,
 * 4 timeout) with their one-line "lbus: ..." messages on stderr.
 *
 * A long-running `lbus sub` is made ready with lbt_sub_ready() (probe
 * messages until it prints one, then a marker); what the test publishes
 * afterwards is compared byte for byte with what follows the marker. A
 * `sub -n N` is fed numbered messages until it exits, and its output must be
 * exactly N consecutive ones.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct lbt_broker broker;

/* The children of the running test. File-level, so that a failed assertion
 * (which jumps out of the test) still lets teardown_procs() reap them and
 * free their buffers. */
struct sub {
	struct lbt_proc p;
	long start; /* stdout offset after the readiness marker */
};
static struct lbt_proc g_r, g_p, g_l;
static struct sub g_s;

static int teardown_procs(void **state)
{
	unsetenv("POSIXLY_CORRECT"); /* in case a failed test left it set */
	lbt_proc_free(&g_r);
	lbt_proc_free(&g_p);
	lbt_proc_free(&g_l);
	lbt_proc_free(&g_s.p);
	return 0;
}

static int fds_at_start;

static int setup_broker(void **state)
{
	fds_at_start = lbt_fd_count();
	return lbt_broker_start(&broker, NULL);
}

/* Stop the broker; every pipe to every child must be closed by now. */
static int stop_broker(void **state)
{
	int fds = lbt_fd_count();
	if (fds != fds_at_start)
		fprintf(stderr, "descriptor leak: %d open at start, %d at the end\n", fds_at_start, fds);
	return lbt_broker_stop(&broker) < 0 || fds != fds_at_start ? -1 : 0;
}

#define RUN_MS lbt_ms(10000)

/* Run the CLI to completion with stdin (may be NULL) and check its status. */
static void cli_expect(int status, const char *in, const char *const *args, struct lbt_proc *res)
{
	assert_int_equal(lbt_cli_runv(&broker, in, in ? strlen(in) : 0, RUN_MS, res, args), 0);
	if (res->exit_code != status)
		fail_msg("lbus %s %s: status %d, want %d; stderr: %s", args[0], args[1] ? args[1] : "",
			 res->exit_code, status, res->err ? res->err : "");
}

/* Run, expect status 0 and no output at all. */
static void cli_ok_quiet(const char *in, const char *const *args)
{
	cli_expect(0, in, args, &g_r);
	assert_int_equal(g_r.out_len, 0);
	assert_int_equal(g_r.err_len, 0);
	lbt_proc_free(&g_r);
}

/* stderr is exactly one line "lbus: <what failed>: <why>". */
static void assert_one_error_line(const struct lbt_proc *r)
{
	assert_true(r->err_len > 7);
	if (memcmp(r->err, "lbus: ", 6) || r->err[r->err_len - 1] != '\n' ||
	    memchr(r->err, '\n', r->err_len - 1) || !strstr(r->err + 6, ": "))
		fail_msg("not one 'lbus: what: why' line: '%s'", r->err);
}

/* A ready `lbus sub ARGS...` whose first pattern receives on probe_topic. */
static void sub_start(struct sub *s, const char *probe_topic, const char *const *args)
{
	assert_int_equal(lbt_cli_spawnv(&s->p, &broker, args), 0);
	s->start = lbt_sub_ready(&broker, &s->p, probe_topic, lbt_ms(10000));
	assert_true(s->start > 0);
}

/* The sub's output after the marker becomes exactly want[0..len). */
static void sub_expect(struct sub *s, const void *want, size_t len)
{
	int r = lbt_proc_read_bytes(&s->p, (size_t)s->start + len, lbt_ms(10000));
	size_t got = s->p.out_len - (size_t)s->start;
	if (r < 0 || got != len || memcmp(s->p.out + s->start, want, len)) {
		fail_msg("sub output: %zu bytes '%.*s', want %zu bytes '%.*s'", got,
			 (int)(got > 200 ? 200 : got), s->p.out + s->start, len, (int)(len > 200 ? 200 : len),
			 (const char *)want);
	}
}

static void sub_expect_str(struct sub *s, const char *want)
{
	sub_expect(s, want, strlen(want));
}

static void sub_stop(struct sub *s)
{
	lbt_proc_signal(&s->p, SIGTERM);
	lbt_proc_wait(&s->p, lbt_ms(5000));
	lbt_proc_free(&s->p);
}

/* ---- pub ------------------------------------------------------------------------ */

static void test_pub_argument_stdin_and_empty(void **state)
{
	sub_start(&g_s, "cli/pub", (const char *const[]){"sub", "cli/pub", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/pub", "hello world", NULL});
	/* Without MESSAGE, all of stdin is one message. */
	cli_ok_quiet("line1\nline2\n", (const char *const[]){"pub", "cli/pub", NULL});
	/* An empty MESSAGE is an empty message; stdin is not read. */
	cli_ok_quiet("not this", (const char *const[]){"pub", "cli/pub", "", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/pub", "end", NULL});
	sub_expect_str(&g_s, "hello world\nline1\nline2\n\n\nend\n");
	sub_stop(&g_s);
}

static void test_pub_lines_and_count(void **state)
{
	sub_start(&g_s, "cli/lines", (const char *const[]){"sub", "cli/lines", NULL});
	cli_ok_quiet("a\nbb\nccc", (const char *const[]){"pub", "cli/lines", "-l", NULL});
	cli_ok_quiet("x\ny\n", (const char *const[]){"pub", "-l", "cli/lines", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/lines", "rep", "-n", "3", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "-n", "2", "cli/lines", "twice", NULL});
	sub_expect_str(&g_s, "a\nbb\nccc\nx\ny\nrep\nrep\nrep\ntwice\ntwice\n");
	sub_stop(&g_s);
}

/* Ten thousand lines through `pub -l` arrive complete and in order. */
static void test_pub_many_lines_in_order(void **state)
{
	enum { LINES = 10000 };
	size_t cap = LINES * 8;
	char *in = malloc(cap), *want = malloc(cap);
	size_t n = 0;
	for (int i = 0; i < LINES; i++)
		n += (size_t)snprintf(in + n, cap - n, "%d\n", i);
	memcpy(want, in, n + 1);
	sub_start(&g_s, "cli/many", (const char *const[]){"sub", "cli/many", NULL});
	cli_ok_quiet(in, (const char *const[]){"pub", "cli/many", "-l", NULL});
	sub_expect(&g_s, want, n);
	sub_stop(&g_s);
	free(in);
	free(want);
}

/* The pipeline, at full speed with the CLI's defaults: a burst far
 * larger than the broker's 8 MiB queue (500,000 lines, ~16 MB of
 * deliveries), read by a consumer that pauses, reaches `lbus sub` complete
 * and in order, since lbus sub is lossless by default (block), like a pipe. */
static void test_pipeline_burst_lossless(void **state)
{
	enum { LINES = 500000 };
	size_t cap = LINES * 8;
	char *in = malloc(cap);
	size_t n = 0;
	for (int i = 0; i < LINES; i++)
		n += (size_t)snprintf(in + n, cap - n, "%d\n", i);
	char path[PATH_MAX];
	struct lbt_proc pub;
	assert_int_equal(lbt_write_file(broker.dir, "lines.txt", in, n, path), 0);
	sub_start(&g_s, "cli/burst", (const char *const[]){"sub", "cli/burst", NULL});
	/* The reader of the sub's output pauses for a second mid-burst (a
	 * stalled pipe): the publisher waits meanwhile, and nothing is lost. */
	assert_int_equal(
	    lbt_cli_spawnv(&pub, &broker, (const char *const[]){"pub", "cli/burst", "-l", "-f", path, NULL}),
	    0);
	lbt_proc_read_bytes(&g_s.p, (size_t)g_s.start + n / 4, lbt_ms(10000));
	lbt_sleep_ms(1000);
	sub_expect(&g_s, in, n);
	assert_int_equal(lbt_proc_wait(&pub, RUN_MS), 0);
	assert_int_equal(pub.exit_code, 0);
	assert_null(strstr(g_s.p.err ? g_s.p.err : "", "dropped"));
	lbt_proc_free(&pub);
	sub_stop(&g_s);
	free(in);
}

/* A 300 KB binary payload (NULs, newlines, invalid UTF-8) arrives intact,
 * from a file (-f) and from stdin. */
static void test_pub_file_binary_intact(void **state)
{
	size_t size = 300 * 1024;
	uint8_t *data = malloc(size);
	lbt_fill_random(data, size, 300);
	data[0] = 0;
	data[1] = '\n';
	char path[PATH_MAX];
	assert_int_equal(lbt_write_file(broker.dir, "payload.bin", data, size, path), 0);
	sub_start(&g_s, "cli/file", (const char *const[]){"sub", "cli/file", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/file", "-f", path, NULL});
	/* The same bytes through stdin. */
	assert_int_equal(lbt_cli_run(&broker, data, size, RUN_MS, &g_r, "pub", "cli/file", NULL), 0);
	assert_int_equal(g_r.exit_code, 0);
	lbt_proc_free(&g_r);
	uint8_t *want = malloc(2 * (size + 1));
	for (int i = 0; i < 2; i++) {
		memcpy(want + i * (size + 1), data, size);
		want[i * (size + 1) + size] = '\n'; /* sub prints the payload and a newline */
	}
	sub_expect(&g_s, want, 2 * (size + 1));
	free(want);
	sub_stop(&g_s);
	unlink(path);
	free(data);
}

/* ---- sub ------------------------------------------------------------------------ */

/* Publish "m<i>" for i = 0, 1, ... until p exits (bounded). */
static void feed_until_exit(struct lbt_proc *p, const char *topic)
{
	lbus *bus;
	assert_int_equal(lbt_connect(&broker, &bus), 0);
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	for (int i = 0; !lbt_proc_exited(p) && lbt_now_ms() < deadline; i++) {
		char m[16];
		snprintf(m, sizeof(m), "m%d", i);
		assert_int_equal(lbus_publish(bus, topic, m, strlen(m), 0), 0);
		assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
	}
	lbus_close(bus);
	assert_int_equal(lbt_proc_wait(p, lbt_ms(5000)), 0);
}

/* The output is exactly n lines "m<k>", "m<k+1>", ... */
static void assert_consecutive(const struct lbt_proc *p, int n, const char *prefix)
{
	int first = -1;
	const char *at = p->out;
	for (int i = 0; i < n; i++) {
		size_t pl = strlen(prefix);
		assert_memory_equal(at, prefix, pl);
		int k;
		assert_int_equal(sscanf(at + pl, "m%d", &k), 1);
		if (first < 0)
			first = k;
		assert_int_equal(k, first + i);
		at = strchr(at, '\n');
		assert_non_null(at);
		at++;
	}
	assert_int_equal(at - p->out, p->out_len);
}

static void test_sub_count_exits(void **state)
{
	/* Option after the positional argument. */
	assert_int_equal(lbt_cli_spawn(&g_p, &broker, "sub", "cli/count", "-n", "3", NULL), 0);
	feed_until_exit(&g_p, "cli/count");
	assert_int_equal(g_p.exit_code, 0);
	assert_consecutive(&g_p, 3, "");
	assert_int_equal(g_p.err_len, 0);
	lbt_proc_free(&g_p);

	/* -v: "TOPIC PAYLOAD" lines; option before the positional. */
	assert_int_equal(lbt_cli_spawn(&g_p, &broker, "sub", "-v", "-n", "2", "cli/+/v", NULL), 0);
	feed_until_exit(&g_p, "cli/x/v");
	assert_int_equal(g_p.exit_code, 0);
	assert_consecutive(&g_p, 2, "cli/x/v ");
	lbt_proc_free(&g_p);
}

static void test_sub_timeout_statuses(void **state)
{
	/* Nothing arrives: status 4, no output. */
	int64_t t0 = lbt_now_ms();
	cli_expect(4, NULL, (const char *const[]){"sub", "cli/silent", "-t", "1", NULL}, &g_r);
	assert_true(lbt_now_ms() - t0 >= 900);
	assert_int_equal(g_r.out_len, 0);
	lbt_proc_free(&g_r);

	/* Something arrives: 0 at the time limit. */
	assert_int_equal(lbt_cli_spawn(&g_p, &broker, "sub", "cli/some", "-t", "2", NULL), 0);
	assert_true(lbt_sub_ready(&broker, &g_p, "cli/some", lbt_ms(10000)) > 0);
	assert_int_equal(lbt_proc_wait(&g_p, lbt_ms(10000)), 0);
	assert_int_equal(g_p.exit_code, 0);
	lbt_proc_free(&g_p);

	/* Fewer than -n arrived before -t: 4, and what did arrive was printed. */
	assert_int_equal(lbt_cli_spawn(&g_p, &broker, "sub", "cli/few", "-n", "1000", "-t", "2", NULL), 0);
	assert_true(lbt_sub_ready(&broker, &g_p, "cli/few", lbt_ms(10000)) > 0);
	assert_int_equal(lbt_proc_wait(&g_p, lbt_ms(10000)), 0);
	assert_int_equal(g_p.exit_code, 4);
	assert_non_null(strstr(g_p.out, "lbt-ready\n"));
	lbt_proc_free(&g_p);
}

static void test_sub_several_patterns_verbose(void **state)
{
	sub_start(&g_s, "cli/p1", (const char *const[]){"sub", "-v", "cli/p1", "cli/p2/+", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/p2/x", "two", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/p3", "not-me", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/p1", "one", NULL});
	sub_expect_str(&g_s, "cli/p2/x two\ncli/p1 one\n");
	sub_stop(&g_s);
}

/* Remove the blanks outside JSON strings, so checks do not depend on
 * formatting. */
static void squeeze_json(char *s)
{
	bool in_str = false;
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '"' && (r == s || r[-1] != '\\'))
			in_str = !in_str;
		if (in_str || (*r != ' ' && *r != '\t'))
			*w++ = *r;
	}
	*w = '\0';
}

static void test_sub_json(void **state)
{
	sub_start(&g_s, "cli/json", (const char *const[]){"sub", "--json", "cli/json", NULL});
	lbus *bus;
	assert_int_equal(lbt_connect(&broker, &bus), 0);
	assert_int_equal(lbus_name_take(bus, "org.test.Json"), 0);
	assert_int_equal(lbus_publish(bus, "cli/json", "hi \"there\"", 10, 0), 0);
	assert_int_equal(lbus_publish(bus, "cli/json", "\xff\x00\x01", 3, 0), 0);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
	long e1 = lbt_proc_read_until(&g_s.p, "\n", (size_t)g_s.start, lbt_ms(5000));
	assert_true(e1 >= 0);
	long e2 = lbt_proc_read_until(&g_s.p, "\n", (size_t)e1 + 1, lbt_ms(5000));
	assert_true(e2 >= 0);
	char *rest = strndup(g_s.p.out + g_s.start, (size_t)(e1 - g_s.start));
	char *line2 = strndup(g_s.p.out + e1 + 1, (size_t)(e2 - e1 - 1));
	squeeze_json(rest);
	squeeze_json(line2);

	char want[128];
	assert_int_equal(rest[0], '{');
	assert_non_null(strstr(rest, "\"topic\":\"cli/json\""));
	assert_non_null(strstr(rest, "\"payload\":\"hi \\\"there\\\"\""));
	assert_non_null(strstr(rest, "\"sender\":{"));
	snprintf(want, sizeof(want), "\"pid\":%d", (int)getpid());
	assert_non_null(strstr(rest, want));
	snprintf(want, sizeof(want), "\"uid\":%d", (int)getuid());
	assert_non_null(strstr(rest, want));
	snprintf(want, sizeof(want), "\"id\":%llu", (unsigned long long)lbus_client_id(bus));
	assert_non_null(strstr(rest, want));
	assert_non_null(strstr(rest, "\"name\":\"org.test.Json\""));
	/* Not UTF-8: base64 instead of a string. */
	assert_non_null(strstr(line2, "\"payload_base64\":\"/wAB\""));
	assert_null(strstr(line2, "\"payload\":"));
	free(rest);
	free(line2);
	lbus_close(bus);
	sub_stop(&g_s);
}

/* ---- send / listen ------------------------------------------------------------ */

static void test_send_listen(void **state)
{
	assert_int_equal(lbt_cli_spawn(&g_l, &broker, "listen", "org.test.Cli", NULL), 0);
	long start = lbt_listen_ready(&broker, &g_l, "org.test.Cli", lbt_ms(10000));
	assert_true(start > 0);
	cli_ok_quiet(NULL, (const char *const[]){"send", "org.test.Cli", "hello", NULL});
	cli_ok_quiet("from stdin", (const char *const[]){"send", "org.test.Cli", NULL});
	assert_int_equal(lbt_proc_read_bytes(&g_l, (size_t)start + 17, lbt_ms(5000)), 0);
	assert_string_equal(g_l.out + start, "hello\nfrom stdin\n");

	/* The name is taken: a second listener is refused with status 1. */
	cli_expect(1, NULL, (const char *const[]){"listen", "org.test.Cli", "-t", "1", NULL}, &g_r);
	assert_one_error_line(&g_r);
	lbt_proc_free(&g_r);

	/* listen -n 2 ends after two messages (the probe and "bye"). */
	lbt_proc_signal(&g_l, SIGTERM);
	lbt_proc_wait(&g_l, lbt_ms(5000));
	lbt_proc_free(&g_l);
	assert_int_equal(lbt_cli_spawn(&g_l, &broker, "listen", "org.test.Once", "-n", "2", NULL), 0);
	assert_true(lbt_listen_ready(&broker, &g_l, "org.test.Once", lbt_ms(10000)) > 0);
	cli_ok_quiet(NULL, (const char *const[]){"send", "org.test.Once", "bye", NULL});
	assert_int_equal(lbt_proc_wait(&g_l, lbt_ms(5000)), 0);
	assert_int_equal(g_l.exit_code, 0);
	assert_string_equal(g_l.out, "lbt-probe\nbye\n");
	lbt_proc_free(&g_l);
}

/* ---- exit statuses and messages ------------------------------------------------ */

static void test_refused_is_1(void **state)
{
	cli_expect(1, NULL, (const char *const[]){"send", "org.test.Nobody", "x", NULL}, &g_r);
	assert_one_error_line(&g_r);
	assert_int_equal(g_r.out_len, 0);
	lbt_proc_free(&g_r);
}

static void test_usage_is_2(void **state)
{
	const char *const *const usages[] = {
	    (const char *const[]){"no-such-command", NULL},
	    (const char *const[]){"pub", NULL},
	    (const char *const[]){"pub", "t", "x", "--no-such-option", NULL},
	    (const char *const[]){"sub", NULL},
	    (const char *const[]){"sub", "t", "-n", "abc", NULL},
	    (const char *const[]){"sub", "t", "-n", NULL},
	    (const char *const[]){"send", NULL},
	    (const char *const[]){"pub", "a/+", "x", NULL},
	    (const char *const[]){"sub", "a/#/b", "-t", "1", NULL},
	};
	for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
		cli_expect(2, NULL, usages[i], &g_r);
		assert_one_error_line(&g_r);
		assert_int_equal(g_r.out_len, 0);
		lbt_proc_free(&g_r);
	}
}

static void test_no_broker_is_3(void **state)
{
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, broker.dir, "nobody-here.sock"), 0);
	static const char *const cmds[][4] = {
	    {"pub", "t", "x", NULL},	      {"sub", "t", NULL},
	    {"send", "n", "x", NULL},	      {"top", "-n", "1", NULL},
	    {"stats", "--openmetrics", NULL}, {"metrics", "--listen", "0", NULL}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[8] = {"-S", path};
		memcpy(args + 2, cmds[i], sizeof(cmds[i]));
		assert_int_equal(lbt_cli_runv(NULL, NULL, 0, RUN_MS, &g_r, args), 0);
		assert_int_equal(g_r.exit_code, 3);
		assert_one_error_line(&g_r);
		assert_non_null(strstr(g_r.err, path));
		lbt_proc_free(&g_r);
	}
}

static void test_help_and_version(void **state)
{
	static const char *const cmds[] = {"pub",  "sub",  "send",  "listen", "call",	 "serve",
					   "wait", "list", "stats", "top",    "metrics", "monitor"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char want[64];
		snprintf(want, sizeof(want), "Usage: lbus %s", cmds[i]);
		cli_expect(0, NULL, (const char *const[]){cmds[i], "--help", NULL}, &g_r);
		if (!strstr(g_r.out, want) || !strstr(g_r.out, "--help"))
			fail_msg("lbus %s --help: no '%s' in '%s'", cmds[i], want, g_r.out);
		assert_int_equal(g_r.err_len, 0);
		lbt_proc_free(&g_r);
		/* The overview lists it too. */
		cli_expect(0, NULL, (const char *const[]){"--help", NULL}, &g_r);
		assert_non_null(strstr(g_r.out, cmds[i]));
		lbt_proc_free(&g_r);
	}
	cli_expect(0, NULL, (const char *const[]){"--help", NULL}, &g_r);
	assert_non_null(strstr(g_r.out, "Usage"));
	lbt_proc_free(&g_r);
	cli_expect(0, NULL, (const char *const[]){"--version", NULL}, &g_r);
	assert_non_null(strstr(g_r.out, "0.1.0"));
	lbt_proc_free(&g_r);
}

/* An unknown option inside a cluster is named by its letter, not by a
 * neighbouring argument or the program's path; status 2. */
static void test_unknown_option_in_cluster(void **state)
{
	static const struct {
		const char *args[5];
		bool global; /* run without -S, so the option comes first */
		const char *want;
	} cases[] = {
	    {{"sub", "cli/cluster", "-xv", NULL}, false, "unknown option '-x'"},
	    {{"sub", "cli/cluster", "-vx", NULL}, false, "unknown option '-x'"},
	    {{"pub", "-zl", "cli/cluster", NULL}, false, "unknown option '-z'"},
	    {{"-Zq", "pub", "cli/cluster", NULL}, true, "unknown option '-Z'"},
	    {{"sub", "cli/cluster", "-vn", NULL}, false, "option '-n' needs an argument"},
	    {{"sub", "cli/cluster", "--bogus", NULL}, false, "unknown option '--bogus'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct lbt_broker *b = cases[i].global ? NULL : &broker;
		assert_int_equal(lbt_cli_runv(b, NULL, 0, RUN_MS, &g_r, cases[i].args), 0);
		if (g_r.exit_code != 2 || !strstr(g_r.err, cases[i].want))
			fail_msg("lbus %s %s %s: status %d, stderr '%s'; want 2 and \"%s\"", cases[i].args[0],
				 cases[i].args[1], cases[i].args[2] ? cases[i].args[2] : "", g_r.exit_code,
				 g_r.err, cases[i].want);
		assert_one_error_line(&g_r);
		assert_int_equal(g_r.out_len, 0);
		lbt_proc_free(&g_r);
	}
}

/* Options after positionals work also when POSIXLY_CORRECT is set (GNU
 * getopt would stop at the first positional), and "--" still ends them. */
static void test_options_after_args_posixly_correct(void **state)
{
	setenv("POSIXLY_CORRECT", "1", 1); /* inherited by the children */
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/posix", "kept", "-r", NULL});
	cli_ok_quiet(NULL, (const char *const[]){"pub", "cli/posix-dash", "-r", "--", "-n", NULL});
	cli_expect(0, NULL, (const char *const[]){"sub", "cli/posix", "-n", "1", "-t", "5", NULL}, &g_r);
	assert_string_equal(g_r.out, "kept\n");
	lbt_proc_free(&g_r);
	cli_expect(0, NULL, (const char *const[]){"sub", "cli/posix-dash", "-n", "1", "-t", "5", NULL}, &g_r);
	assert_string_equal(g_r.out, "-n\n");
	lbt_proc_free(&g_r);
	/* -t after the pattern: a time limit, not a pattern; nothing arrives. */
	cli_expect(4, NULL, (const char *const[]){"sub", "cli/posix-none", "-n", "1", "-t", "0.2", NULL},
		   &g_r);
	assert_int_equal(g_r.out_len, 0);
	lbt_proc_free(&g_r);
	unsetenv("POSIXLY_CORRECT");
	cli_ok_quiet(NULL, (const char *const[]){"pub", "-r", "cli/posix", "", NULL}); /* clear */
	cli_ok_quiet(NULL, (const char *const[]){"pub", "-r", "cli/posix-dash", "", NULL});
}

/* A file that cannot be read: a one-line error naming it, no publish, and
 * status 1 ("another failure", as `lbus pub --help` says): the command line
 * itself is well-formed, so it is not a usage error (2). */
static void test_pub_missing_file(void **state)
{
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, broker.dir, "no-such-file"), 0);
	assert_int_equal(lbt_cli_run(&broker, NULL, 0, RUN_MS, &g_r, "pub", "cli/nofile", "-f", path, NULL),
			 0);
	assert_int_equal(g_r.exit_code, 1);
	assert_one_error_line(&g_r);
	assert_non_null(strstr(g_r.err, path));
	lbt_proc_free(&g_r);
}

/* The broker goes away under a running `sub` and `listen`: they end (no
 * hang) with status 3 (cannot reach the broker) and a one-line message. */
static void test_broker_gone(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	/* reconnecting is the default now (tests/test-reconnect.c) */
	assert_int_equal(lbt_cli_spawn(&g_s.p, &b, "sub", "gone/t", "--no-reconnect", NULL), 0);
	assert_true(lbt_sub_ready(&b, &g_s.p, "gone/t", lbt_ms(10000)) > 0);
	assert_int_equal(lbt_cli_spawn(&g_l, &b, "listen", "org.test.Gone", "--no-reconnect", NULL), 0);
	assert_true(lbt_listen_ready(&b, &g_l, "org.test.Gone", lbt_ms(10000)) > 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
	struct lbt_proc *procs[] = {&g_s.p, &g_l};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(lbt_proc_wait(procs[i], lbt_ms(5000)), 0);
		assert_int_equal(procs[i]->exit_code, 3);
		assert_one_error_line(procs[i]);
		lbt_proc_free(procs[i]);
	}
}

/* -S may also come after the command and its arguments. */
static void test_socket_option_anywhere(void **state)
{
	sub_start(&g_s, "cli/anywhere", (const char *const[]){"sub", "cli/anywhere", NULL});
	const char *args[] = {"pub", "cli/anywhere", "late-S", "-S", broker.sock, NULL};
	assert_int_equal(lbt_cli_runv(NULL, NULL, 0, RUN_MS, &g_r, args), 0);
	assert_int_equal(g_r.exit_code, 0);
	lbt_proc_free(&g_r);
	sub_expect_str(&g_s, "late-S\n");
	sub_stop(&g_s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_pub_argument_stdin_and_empty, teardown_procs),
	    cmocka_unit_test_teardown(test_pub_lines_and_count, teardown_procs),
	    cmocka_unit_test_teardown(test_pub_many_lines_in_order, teardown_procs),
	    cmocka_unit_test_teardown(test_pipeline_burst_lossless, teardown_procs),
	    cmocka_unit_test_teardown(test_pub_file_binary_intact, teardown_procs),
	    cmocka_unit_test_teardown(test_sub_count_exits, teardown_procs),
	    cmocka_unit_test_teardown(test_sub_timeout_statuses, teardown_procs),
	    cmocka_unit_test_teardown(test_sub_several_patterns_verbose, teardown_procs),
	    cmocka_unit_test_teardown(test_sub_json, teardown_procs),
	    cmocka_unit_test_teardown(test_send_listen, teardown_procs),
	    cmocka_unit_test_teardown(test_refused_is_1, teardown_procs),
	    cmocka_unit_test_teardown(test_usage_is_2, teardown_procs),
	    cmocka_unit_test_teardown(test_no_broker_is_3, teardown_procs),
	    cmocka_unit_test_teardown(test_help_and_version, teardown_procs),
	    cmocka_unit_test_teardown(test_socket_option_anywhere, teardown_procs),
	    cmocka_unit_test_teardown(test_unknown_option_in_cluster, teardown_procs),
	    cmocka_unit_test_teardown(test_options_after_args_posixly_correct, teardown_procs),
	    cmocka_unit_test_teardown(test_pub_missing_file, teardown_procs),
	    cmocka_unit_test_teardown(test_broker_gone, teardown_procs),
	};
	return cmocka_run_group_tests(tests, setup_broker, stop_broker);
}
