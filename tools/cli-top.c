/* SPDX-License-Identifier: MIT */
/*
 * lbus top: a live view of the bus, one row per client, refreshed every
 * -d SECS. Each refresh asks the broker for its stats and its client list
 * (the requests lbus stats and lbus list make: nothing is added to the
 * broker's routing path); top-model.c turns two such samples into rates,
 * sorts the rows and formats every line.
 *
 * On a terminal (stdin and stdout both ttys, and a TERM that terminfo
 * knows) it is a full-screen view drawn with ncurses; otherwise it prints
 * one plain snapshot per interval (the first after one interval, so that it
 * has rates), for scripts: `lbus top -n 3 > file`.
 *
 * Why ncurses rather than hand-written ANSI sequences: the view must work
 * on whatever terminal the user has (terminfo knows its capabilities, the
 * alternate screen, how to hide the cursor), redraw only what changed (so a
 * refresh over a slow ssh link is a few bytes, and the screen never
 * flickers), and follow resizes: ncurses catches SIGWINCH and reports
 * KEY_RESIZE with the new LINES/COLS. Doing that by hand means a terminal
 * database of our own, or assuming a VT100 and repainting everything. The
 * cost is one library that every Debian system already has (libncursesw6),
 * linked by the lbus tool only, never by liblbus or lbusd.
 *
 * When the broker goes away, the full-screen view says so and connects
 * again at each refresh (the rates start afresh with the new broker); the
 * snapshots connect again too, but end with status 3 when that fails, as
 * scripts expect of a lost broker.
 *
 * Keys: s (next sort column), S (previous), q or Q (quit with status 0);
 * SIGINT and SIGTERM also end it with 0. The loop polls stdin and the
 * signal self-pipe with the time left until the next refresh; a SIGWINCH
 * interrupts that poll, and getch() then returns KEY_RESIZE.
 */
#include <curses.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "top-model.h"

#define TOP_MIN_INTERVAL_MS 100
#define TOP_LINE_MAX 1024
#define TOP_TITLES_ROW (TOP_SUMMARY_LINES + 1)

struct top {
	const struct cli *cli;
	lbus *bus;	 /* NULL while the broker is unreachable (full screen) */
	char error[160]; /* why the last refresh failed, "" when it did not */
	struct top_model model;
	struct lbus_client_list *list; /* the rows point into it */
	int64_t interval_ms;
	uint64_t count;	  /* -n: refreshes with rates before exiting; 0 = forever */
	uint64_t updates; /* refreshes with rates so far */
};

struct top_opts {
	int64_t interval_ms;
	uint64_t count;
	enum top_key sort;
};

static int top_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct top_opts *o = data;
	int key;

	switch (opt) {
	case 'd':
		if (cli_parse_secs(cli, arg, &o->interval_ms))
			return CLI_USAGE;
		if (o->interval_ms < TOP_MIN_INTERVAL_MS)
			return cli_usage_error(cli, "-d: the interval must be at least 0.1 s");
		return 0;
	case 'n':
		return cli_parse_count(cli, arg, &o->count);
	case 's':
		key = top_key_parse(arg);
		if (key < 0)
			return cli_usage_error(cli,
					       "-s: unknown column '%s' (id, pid, uid, command, in, out, "
					       "bytes_in, bytes_out, queue, qmax, drops, blocked, names)",
					       arg);
		o->sort = (enum top_key)key;
		return 0;
	}
	return 0;
}

/* One sample; when the connection is gone, connect again once. */
static int top_sample(struct top *t, struct lbus_stats **stats, struct lbus_client_list **list)
{
	int r = t->bus ? cli_bus_sample(t->bus, stats, list) : -ENOTCONN;

	if (r >= 0 || r == -ENOMEM)
		return r;
	lbus_close(t->bus);
	t->bus = NULL;
	r = lbus_connect(&t->bus, t->cli->socket);
	if (r < 0) {
		t->bus = NULL;
		return r;
	}
	return cli_bus_sample(t->bus, stats, list);
}

/* Take a new sample into the model. 0 or a negative errno (also in
 * t->error). */
static int top_refresh(struct top *t)
{
	struct lbus_client_list *list;
	struct lbus_stats *stats;
	int r = top_sample(t, &stats, &list);

	if (r < 0) {
		snprintf(t->error, sizeof(t->error),
			 "cannot reach the broker: %s; trying again every interval", lbus_strerror(r));
		return r;
	}
	t->error[0] = '\0';
	r = top_model_update(&t->model, &stats->broker, list, cli_now_ms());
	lbus_stats_free(stats);
	if (r < 0) {
		lbus_client_list_free(list);
		return r;
	}
	lbus_client_list_free(t->list);
	t->list = list;
	if (t->model.has_rates)
		t->updates++;
	return 0;
}

static bool top_done(const struct top *t)
{
	return t->count && t->updates >= t->count;
}

/* Wait for the signal pipe, and for stdin when keys is true, until
 * deadline_ms. 1: a signal came; 0 otherwise (time, a key, a resize). */
static int top_wait(int64_t deadline_ms, bool keys)
{
	struct pollfd fds[2] = {{.fd = cli_loop_signal_fd(), .events = POLLIN},
				{.fd = STDIN_FILENO, .events = POLLIN}};
	int64_t left = deadline_ms - cli_now_ms();

	if (left < 0)
		left = 0;
	if (poll(fds, keys ? 2 : 1, (int)left) > 0 && fds[0].revents)
		return 1;
	return 0;
}

/* ---- plain snapshots ------------------------------------------------------- */

static void top_print_snapshot(const struct top *t)
{
	char line[TOP_LINE_MAX];

	for (int i = 0; i < TOP_SUMMARY_LINES; i++) {
		top_format_summary(&t->model, i, line, sizeof(line));
		printf("%s\n", line);
	}
	top_format_titles(line, sizeof(line));
	printf("\n%s\n", line);
	for (size_t i = 0; i < t->model.n_rows; i++) {
		top_format_row(&t->model.rows[i], line, sizeof(line));
		printf("%s\n", line);
	}
	putchar('\n');
}

static int top_run_plain(struct top *t)
{
	int64_t next = cli_now_ms() + t->interval_ms;
	int r;

	while (!top_done(t)) {
		if (top_wait(next, false))
			return CLI_OK;
		next += t->interval_ms;
		r = top_refresh(t);
		if (r < 0)
			return cli_loop_failure(r);
		top_print_snapshot(t);
		r = cli_flush_stdout();
		if (r < 0)
			return cli_loop_failure(r);
	}
	return CLI_OK;
}

/* ---- the full-screen view ----------------------------------------------------- */

static void top_draw(const struct top *t)
{
	char line[TOP_LINE_MAX];
	size_t start, width;
	int y = 0;

	erase();
	for (int i = 0; i < TOP_SUMMARY_LINES; i++) {
		top_format_summary(&t->model, i, line, sizeof(line));
		if (i == TOP_SUMMARY_LINES - 1)
			strncat(line, "  (s: sort, q: quit)", sizeof(line) - strlen(line) - 1);
		mvaddnstr(y++, 0, line, COLS);
	}
	if (t->error[0]) {
		attron(A_BOLD);
		mvaddnstr(y, 0, t->error, COLS);
		attroff(A_BOLD);
	}
	top_format_titles(line, sizeof(line));
	attron(A_REVERSE);
	mvprintw(TOP_TITLES_ROW, 0, "%-*.*s", COLS, COLS, line);
	attroff(A_REVERSE);
	top_title_span(t->model.sort, &start, &width);
	if ((int)start < COLS)
		mvchgat(TOP_TITLES_ROW, (int)start, (int)width, A_BOLD, 0, NULL);
	y = TOP_TITLES_ROW + 1;
	for (size_t i = 0; i < t->model.n_rows && y < LINES; i++) {
		top_format_row(&t->model.rows[i], line, sizeof(line));
		mvaddnstr(y++, 0, line, COLS);
	}
	refresh();
}

/* Handle the keys typed so far. true when the user asked to quit. */
static bool top_keys(struct top *t)
{
	int ch;

	while ((ch = getch()) != ERR) {
		if (ch == 'q' || ch == 'Q')
			return true;
		if (ch == 's')
			top_model_sort(&t->model, top_key_next(t->model.sort));
		else if (ch == 'S')
			top_model_sort(&t->model,
				       (enum top_key)((t->model.sort + TOP_KEY_COUNT - 1) % TOP_KEY_COUNT));
	}
	return false;
}

/* Start the full-screen view; NULL when the terminal is unknown (TERM unset
 * or without a terminfo entry): then top prints plain snapshots. */
static SCREEN *top_screen_start(void)
{
	SCREEN *screen = newterm(NULL, stdout, stdin);

	if (!screen)
		return NULL;
	cbreak();
	noecho();
	nodelay(stdscr, TRUE);
	keypad(stdscr, TRUE);
	curs_set(0);
	return screen;
}

static int top_run_screen(struct top *t, SCREEN *screen)
{
	int64_t next = cli_now_ms() + t->interval_ms;

	top_draw(t);
	while (!top_done(t)) {
		if (top_wait(next, true))
			break;
		if (top_keys(t))
			break;
		if (cli_now_ms() >= next) {
			next += t->interval_ms;
			if (next < cli_now_ms())
				next = cli_now_ms() + t->interval_ms;
			top_refresh(t); /* a failure shows on screen */
		}
		top_draw(t); /* also after a key or a resize */
	}
	endwin();
	delscreen(screen);
	return CLI_OK;
}

int cli_top(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"delay", required_argument, NULL, 'd'},
						 {"count", required_argument, NULL, 'n'},
						 {"sort", required_argument, NULL, 's'},
						 CLI_COMMON_LONGOPTS,
						 {0}};
	struct top_opts o = {.interval_ms = 1000, .sort = TOP_KEY_DEFAULT};
	struct top t = {0};
	SCREEN *screen;
	int status, first, r;

	if (!cli_parse_options(cli, argc, argv, "d:n:s:", longopts, top_option, &o, &first, &status))
		return status;
	if (first < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[first]);
	status = cli_loop_signals();
	if (status)
		return status;
	status = cli_connect(cli, &t.bus);
	if (status)
		return status;
	t.cli = cli;
	t.interval_ms = o.interval_ms;
	t.count = o.count;
	top_model_init(&t.model, o.sort);
	r = top_refresh(&t);
	if (r < 0)
		status = cli_loop_failure(r);
	else if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && (screen = top_screen_start()))
		status = top_run_screen(&t, screen);
	else
		status = top_run_plain(&t);
	top_model_deinit(&t.model);
	lbus_client_list_free(t.list);
	lbus_close(t.bus);
	return status;
}
