/* SPDX-License-Identifier: MIT */
/*
 * `lbus top` against a real lbusd, as a user sees it.
 *
 * In a real terminal: the view runs in a detached tmux session (its own
 * server socket in the broker's temporary directory), the test types keys
 * with `tmux send-keys` and reads the screen with `tmux capture-pane -p`.
 * A generator thread publishes at a known rate (RATE msgs/s, paced by the
 * clock, as "ratepub") to a subscriber that reads everything ("ratesub");
 * within 2 s of the first screen, ratepub's row must show about RATE
 * messages in per second (sorted first, by IN/s); `s` sorts by OUT/s, which
 * puts ratesub first; a taller window shows more rows, a narrower one cuts
 * them; `q` ends top with status 0. When the broker goes away the view
 * says so, and it shows the new broker once one listens again. Skipped
 * (with the reason) only when tmux cannot run.
 *
 * Not on a terminal: `lbus top -n 2` prints two plain snapshots (no escape
 * sequences) whose rows show the same rates, in the order -s asks for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define RATE 200 /* messages per second from ratepub */
#define RATE_MIN (RATE * 8 / 10)
#define RATE_MAX (RATE * 12 / 10)
#define IDLE_CLIENTS 12

static const char *txt(const char *s)
{
	return s ? s : "";
}

/* ---- a publisher at a known rate and its subscriber ----------------------------- */

struct rategen {
	lbus *pub, *sub;
	pthread_t thread;
	atomic_bool stop;
	atomic_int err;
	uint64_t received;
};

static void on_rate_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	((struct rategen *)userdata)->received++;
}

/* Publish so that RATE * elapsed messages are out at any time; read them. */
static void *rategen_main(void *arg)
{
	struct rategen *g = arg;
	int64_t t0 = lbt_now_ms();
	uint64_t sent = 0;

	while (!atomic_load(&g->stop)) {
		uint64_t due = (uint64_t)(lbt_now_ms() - t0) * RATE / 1000;
		int r = 0;

		while (sent < due && r == 0) {
			r = lbus_publish(g->pub, "rate/x", "0123456789", 10, 0);
			sent++;
		}
		if (r == 0)
			r = lbus_flush(g->pub, 1000);
		if (r == 0)
			r = lbus_dispatch(g->sub) < 0 ? -EIO : 0;
		if (r) {
			atomic_store(&g->err, r);
			break;
		}
		usleep(2000);
	}
	return NULL;
}

static void rategen_start(struct rategen *g, const struct lbt_broker *b)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(lbt_connect(b, &g->pub), 0);
	assert_int_equal(lbt_connect(b, &g->sub), 0);
	assert_int_equal(lbus_name_take(g->pub, "ratepub"), 0);
	assert_int_equal(lbus_name_take(g->sub, "ratesub"), 0);
	assert_int_equal(lbus_subscribe(g->sub, "rate/#", on_rate_msg, g, NULL, NULL), 0);
	assert_int_equal(pthread_create(&g->thread, NULL, rategen_main, g), 0);
}

static void rategen_stop(struct rategen *g)
{
	atomic_store(&g->stop, true);
	pthread_join(g->thread, NULL);
	assert_int_equal(atomic_load(&g->err), 0);
	assert_true(g->received > 0);
	lbus_close(g->pub);
	lbus_close(g->sub);
}

/* ---- reading the view ----------------------------------------------------------- */

/* The whitespace-separated fields of the row whose last field is name:
 * ID PID UID COMMAND IN/s OUT/s BIN/s BOUT/s QUEUE QMAX DROPS BLOCKED NAMES.
 * Returns how many were found (0 when there is no such row). */
static int row_fields(const char *screen, const char *name, char fields[13][32])
{
	const char *line = screen;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char copy[512], *save, *tok;
		int n = 0;

		snprintf(copy, sizeof(copy), "%.*s", (int)len, line);
		for (tok = strtok_r(copy, " ", &save); tok && n < 13; tok = strtok_r(NULL, " ", &save))
			snprintf(fields[n++], 32, "%s", tok);
		if (n == 13 && strcmp(fields[12], name) == 0)
			return n;
		line = end ? end + 1 : NULL;
	}
	return 0;
}

/* IN/s (col 4) or OUT/s (col 5) of the row of name; -1 when absent. */
static double row_rate(const char *screen, const char *name, int col)
{
	char f[13][32];

	if (!row_fields(screen, name, f))
		return -1;
	return strtod(f[col], NULL);
}

/* The names (last field) of the first row after the titles line. */
static void first_row_name(const char *screen, char *out, size_t size)
{
	const char *titles = strstr(screen, " NAMES");
	const char *row = titles ? strchr(titles, '\n') : NULL;
	const char *end, *last;

	out[0] = '\0';
	if (!row)
		return;
	row++;
	end = strchr(row, '\n');
	if (!end)
		end = row + strlen(row);
	while (end > row && end[-1] == ' ')
		end--;
	for (last = end; last > row && last[-1] != ' '; last--)
		;
	snprintf(out, size, "%.*s", (int)(end - last), last);
}

/* Rows on screen: lines whose first field is a number. */
static int count_rows(const char *screen)
{
	int n = 0;

	for (const char *line = screen; line && *line;) {
		const char *p = line;

		while (*p == ' ')
			p++;
		if (*p >= '0' && *p <= '9')
			n++;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return n;
}

/* ---- tmux ------------------------------------------------------------------------ */

struct term {
	char tmux[64];
	char sock[PATH_MAX];
	char status[PATH_MAX]; /* where the shell writes top's exit status */
};

/* Run tmux -S sock ARGS...; its output in *out (malloc'd, may be NULL).
 * Returns its exit status or -errno. */
static int tmux(const struct term *t, char **out, const char *arg, ...)
{
	const char *argv[16] = {t->tmux, "-f", "/dev/null", "-S", t->sock};
	struct lbt_proc p;
	size_t n = 5;
	va_list ap;
	int r;

	va_start(ap, arg);
	for (const char *a = arg; a && n < 15; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	r = lbt_runv(argv, NULL, 0, 10000, &p);
	if (r == 0)
		r = p.exit_code;
	if (r != 0)
		fprintf(stderr, "tmux %s: status %d: %s\n", arg, r, txt(p.err));
	if (out)
		*out = p.out ? strdup(p.out) : strdup("");
	lbt_proc_free(&p);
	return r;
}

static char *capture(const struct term *t)
{
	char *screen = NULL;

	tmux(t, &screen, "capture-pane", "-p", "-t", "top", NULL);
	return screen;
}

/* Why tmux cannot run here, or NULL when it can. */
static const char *tmux_unusable(struct term *t)
{
	static const char *const paths[] = {"/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"};
	const char *argv[] = {NULL, "-V", NULL};
	struct lbt_proc p;
	int ok = 0;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !t->tmux[0]; i++)
		if (access(paths[i], X_OK) == 0)
			snprintf(t->tmux, sizeof(t->tmux), "%s", paths[i]);
	if (!t->tmux[0])
		return "tmux is not installed (tools/deps.sh installs it)";
	argv[0] = t->tmux;
	if (lbt_runv(argv, NULL, 0, 5000, &p) == 0 && p.exit_code == 0)
		ok = 1;
	lbt_proc_free(&p);
	return ok ? NULL : "tmux -V fails";
}

/* Start `lbus top ARGS` in a detached tmux session of width x height. */
static void term_start(struct term *t, const struct lbt_broker *b, int width, int height, const char *args)
{
	char cmd[3 * PATH_MAX], w[16], h[16];

	assert_int_equal(lbt_path(t->sock, b->dir, "tmux.sock"), 0);
	assert_int_equal(lbt_path(t->status, b->dir, "top.status"), 0);
	snprintf(cmd, sizeof(cmd), "'%s' -S '%s' top %s; echo $? > '%s'; sleep 30", lbt_cli_path(), b->sock,
		 args, t->status);
	snprintf(w, sizeof(w), "%d", width);
	snprintf(h, sizeof(h), "%d", height);
	assert_int_equal(tmux(t, NULL, "new-session", "-d", "-s", "top", "-x", w, "-y", h, cmd, NULL), 0);
}

static void term_stop(struct term *t)
{
	tmux(t, NULL, "kill-server", NULL);
}

/* Wait until the screen shows needle; returns the screen (malloc'd) or
 * NULL, after printing the last screen. */
static char *await_screen(const struct term *t, const char *needle, int timeout_ms)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	char *screen = NULL;

	do {
		free(screen);
		screen = capture(t);
		if (screen && strstr(screen, needle))
			return screen;
		lbt_sleep_ms(50);
	} while (lbt_now_ms() < end);
	fprintf(stderr, "screen without '%s':\n%s\n", needle, txt(screen));
	free(screen);
	return NULL;
}

/* Wait until name's row shows a rate in [RATE_MIN, RATE_MAX] in column col;
 * true if it did within timeout_ms. */
static bool await_rate(const struct term *t, const char *name, int col, int timeout_ms)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	char *screen = NULL;
	double v;

	do {
		free(screen);
		screen = capture(t);
		v = row_rate(txt(screen), name, col);
		if (v >= RATE_MIN && v <= RATE_MAX) {
			free(screen);
			return true;
		}
		lbt_sleep_ms(50);
	} while (lbt_now_ms() < end);
	fprintf(stderr, "%s's rate stayed at %g; screen:\n%s\n", name, v, txt(screen));
	free(screen);
	return false;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 64);

	if (f && s && !fgets(s, 64, f))
		s[0] = '\0';
	if (f)
		fclose(f);
	return s;
}

/* ---- tests --------------------------------------------------------------------------- */

/* The tmux server of the running test, killed by teardown if a failed
 * assertion skipped term_stop(). */
static struct term g_term;

static void test_top_in_terminal(void **state)
{
	struct lbt_broker *b = *state;
	struct term t = {0};
	const char *why = tmux_unusable(&t);
	lbus *idle[IDLE_CLIENTS];
	struct rategen g;
	char first[64], *screen, *status;

	if (why) {
		fprintf(stderr, "SKIP: lbus top in a terminal: %s\n", why);
		skip();
	}
	for (int i = 0; i < IDLE_CLIENTS; i++)
		assert_int_equal(lbt_connect(b, &idle[i]), 0);
	rategen_start(&g, b);
	term_start(&t, b, 200, 12, "-d 0.5");
	g_term = t;

	/* The publisher shows up in its row, first, within 2 s. */
	screen = await_screen(&t, "lbus top - up", lbt_ms(5000));
	assert_non_null(screen);
	free(screen);
	assert_true(await_rate(&t, "ratepub", 4, lbt_ms(2000)));
	screen = capture(&t);
	assert_non_null(strstr(screen, "sort: in"));
	first_row_name(screen, first, sizeof(first));
	assert_string_equal(first, "ratepub");
	/* 12 lines: 4 of header, 8 rows of the 15 clients */
	assert_int_equal(count_rows(screen), 8);
	free(screen);

	/* s: sorted by messages out, the subscriber comes first. */
	assert_int_equal(tmux(&t, NULL, "send-keys", "-t", "top", "s", NULL), 0);
	screen = await_screen(&t, "sort: out", lbt_ms(2000));
	assert_non_null(screen);
	free(screen);
	assert_true(await_rate(&t, "ratesub", 5, lbt_ms(2000)));
	screen = capture(&t);
	first_row_name(screen, first, sizeof(first));
	assert_string_equal(first, "ratesub");
	free(screen);

	/* A taller window shows every client; a narrower one cuts the rows. */
	assert_int_equal(tmux(&t, NULL, "resize-window", "-t", "top", "-x", "200", "-y", "30", NULL), 0);
	int64_t end = lbt_now_ms() + lbt_ms(2000);
	int rows = 0;
	while ((rows = count_rows(screen = capture(&t))) < IDLE_CLIENTS + 3 && lbt_now_ms() < end) {
		free(screen);
		lbt_sleep_ms(50);
	}
	assert_true(rows >= IDLE_CLIENTS + 3); /* idle ones, ratepub, ratesub, top */
	free(screen);
	assert_int_equal(tmux(&t, NULL, "resize-window", "-t", "top", "-x", "60", "-y", "30", NULL), 0);
	/* (while tmux and top resize, a capture may catch lines drawn for the
	 * old width and wrapped: wait for the redrawn screen) */
	end = lbt_now_ms() + lbt_ms(2000);
	while ((strstr(screen = capture(&t), "NAMES") || count_rows(screen) != rows) && lbt_now_ms() < end) {
		free(screen);
		lbt_sleep_ms(50);
	}
	assert_null(strstr(screen, "NAMES"));
	assert_non_null(strstr(screen, "    ID     PID    UID COMMAND            IN/s   OUT/s  "));
	assert_int_equal(count_rows(screen), rows); /* cut, not wrapped */
	free(screen);

	/* q: top ends with status 0. */
	assert_int_equal(tmux(&t, NULL, "send-keys", "-t", "top", "q", NULL), 0);
	end = lbt_now_ms() + lbt_ms(2000);
	while (access(t.status, F_OK) != 0 && lbt_now_ms() < end)
		lbt_sleep_ms(20);
	lbt_sleep_ms(20); /* the shell's echo is complete */
	status = read_file(t.status);
	assert_non_null(status);
	assert_string_equal(status, "0\n");
	free(status);
	term_stop(&t);
	memset(&g_term, 0, sizeof(g_term));
	rategen_stop(&g);
	for (int i = 0; i < IDLE_CLIENTS; i++)
		lbus_close(idle[i]);
}

/* The view says when the broker is gone, and shows the new one. */
static void test_top_follows_broker_restart(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_broker_opts again = {.reuse_dir = true};
	struct term t = {0};
	const char *why = tmux_unusable(&t);
	char *screen, *status;

	if (why) {
		fprintf(stderr, "SKIP: lbus top in a terminal: %s\n", why);
		skip();
	}
	term_start(&t, b, 150, 10, "-d 0.3");
	g_term = t;
	screen = await_screen(&t, "lbus top - up", lbt_ms(5000));
	assert_non_null(screen);
	free(screen);
	assert_int_equal(kill(b->pid, SIGTERM), 0);
	assert_int_equal(lbt_broker_wait_exit(b, lbt_ms(10000)), 0);
	screen = await_screen(&t, "cannot reach the broker", lbt_ms(3000));
	assert_non_null(screen);
	assert_non_null(strstr(screen, "lbus top - up")); /* the last figures stay */
	free(screen);
	assert_int_equal(lbt_broker_start_opts(b, &again), 0);
	int64_t end = lbt_now_ms() + lbt_ms(3000);
	while (strstr(screen = capture(&t), "cannot reach") && lbt_now_ms() < end) {
		free(screen);
		lbt_sleep_ms(50);
	}
	assert_null(strstr(screen, "cannot reach"));
	assert_non_null(strstr(screen, "lbus top - up 00:00:0"));
	free(screen);
	assert_int_equal(tmux(&t, NULL, "send-keys", "-t", "top", "q", NULL), 0);
	end = lbt_now_ms() + lbt_ms(2000);
	while (access(t.status, F_OK) != 0 && lbt_now_ms() < end)
		lbt_sleep_ms(20);
	lbt_sleep_ms(20);
	status = read_file(t.status);
	assert_string_equal(status, "0\n");
	free(status);
	term_stop(&t);
	memset(&g_term, 0, sizeof(g_term));
}

/* The snapshots of `lbus top ARGS -n 2 -d 0.5` with stdout a pipe. */
static char *plain_top(const struct lbt_broker *b, const char *sort)
{
	struct lbt_proc p;
	char *out;

	assert_int_equal(
	    lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "top", "-n", "2", "-d", "0.5", "-s", sort, NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_string_equal(txt(p.err), "");
	out = strdup(txt(p.out));
	lbt_proc_free(&p);
	return out;
}

static void test_top_plain_snapshots(void **state)
{
	struct lbt_broker *b = *state;
	struct rategen g;
	char first[64], *out, *last;
	int n = 0;

	rategen_start(&g, b);
	lbt_sleep_ms(300); /* the generator runs at its rate */
	out = plain_top(b, "in");
	assert_null(strchr(out, '\033'));
	for (const char *p = out; (p = strstr(p, "lbus top - up")); p++)
		n++;
	assert_int_equal(n, 2);
	last = strstr(strstr(out, "lbus top - up") + 1, "lbus top - up");
	assert_non_null(strstr(last, "sort: in"));
	double in = row_rate(last, "ratepub", 4);
	if (in < RATE_MIN || in > RATE_MAX)
		fprintf(stderr, "ratepub at %g msgs/s in:\n%s\n", in, out);
	assert_true(in >= RATE_MIN && in <= RATE_MAX);
	first_row_name(last, first, sizeof(first));
	assert_string_equal(first, "ratepub");
	free(out);

	out = plain_top(b, "out");
	last = strstr(strstr(out, "lbus top - up") + 1, "lbus top - up");
	double o = row_rate(last, "ratesub", 5);
	assert_true(o >= RATE_MIN && o <= RATE_MAX);
	first_row_name(last, first, sizeof(first));
	assert_string_equal(first, "ratesub");
	free(out);
	rategen_stop(&g);
}

static void test_top_usage(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc p;

	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "top", "-s", "bogus", NULL), 0);
	assert_int_equal(p.exit_code, 2);
	assert_non_null(strstr(txt(p.err), "lbus: top: -s: unknown column 'bogus'"));
	lbt_proc_free(&p);
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "top", "-d", "0.01", NULL), 0);
	assert_int_equal(p.exit_code, 2);
	lbt_proc_free(&p);
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "top", "--help", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_non_null(strstr(txt(p.out), "Usage: lbus top"));
	lbt_proc_free(&p);
}

static int setup(void **state)
{
	static struct lbt_broker b;

	if (lbt_broker_start(&b, NULL) != 0)
		return -1;
	*state = &b;
	return 0;
}

static int teardown(void **state)
{
	if (g_term.sock[0])
		term_stop(&g_term);
	memset(&g_term, 0, sizeof(g_term));
	return lbt_broker_stop(*state) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_top_in_terminal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_follows_broker_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_plain_snapshots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_usage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
