/* SPDX-License-Identifier: MIT */
/*
 * stderr logger (see log.h). Each line is formatted into one buffer and
 * written with a single write(2), so lines from a crashing broker or a
 * concurrent shell never interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* What a summary calls each kind's lines. */
static const char *const flood_what[LOG_FLOOD_KINDS] = {
    [LOG_FLOOD_REFUSED] = "connection refusals",
    [LOG_FLOOD_CLIENT] = "client errors",
};

#define LOG_LINE_MAX 1024 /* longest line, newline included; longer ones are cut */

void log_init(struct logger *l, bool debug)
{
	const char *js = getenv("JOURNAL_STREAM");
	const char *inv = getenv("INVOCATION_ID");

	memset(l, 0, sizeof(*l));
	l->prefix_priority = (js && *js) || (inv && *inv);
	l->debug = debug;
}

static void log_vmsg(const struct logger *l, int prio, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n;

	if (prio >= LOG_DEBUG && !l->debug)
		return;
	if (l->prefix_priority)
		n = snprintf(line, sizeof(line), "<%d>", prio);
	else
		n = snprintf(line, sizeof(line), "lbusd: ");
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void log_msg(const struct logger *l, int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(l, prio, fmt, ap);
	va_end(ap);
}

/* Close kind's window: its summary, if lines were suppressed. */
static void log_flood_close(struct logger *l, enum log_flood kind, int64_t now_ms)
{
	struct log_flood_window *w = &l->flood[kind];

	if (w->suppressed)
		log_msg(l, LOG_WARNING, "%llu more %s suppressed in the last %lld ms",
			(unsigned long long)w->suppressed, flood_what[kind],
			(long long)(now_ms - w->start_ms));
	memset(w, 0, sizeof(*w));
}

void log_limited(struct logger *l, enum log_flood kind, int prio, const char *fmt, ...)
{
	struct log_flood_window *w = &l->flood[kind];
	int64_t now = clock_now_ms();
	va_list ap;

	if (w->start_ms && now - w->start_ms >= LOG_FLOOD_WINDOW_MS)
		log_flood_close(l, kind, now);
	if (!w->start_ms)
		w->start_ms = now;
	if (w->lines >= LOG_FLOOD_BURST) {
		w->suppressed++;
		return;
	}
	w->lines++;
	va_start(ap, fmt);
	log_vmsg(l, prio, fmt, ap);
	va_end(ap);
}

void log_flood_flush(struct logger *l, int64_t now_ms)
{
	for (int k = 0; k < LOG_FLOOD_KINDS; k++)
		if (l->flood[k].start_ms && now_ms - l->flood[k].start_ms >= LOG_FLOOD_WINDOW_MS)
			log_flood_close(l, (enum log_flood)k, now_ms);
}

int64_t log_flood_next_ms(const struct logger *l)
{
	int64_t next = 0;

	for (int k = 0; k < LOG_FLOOD_KINDS; k++) {
		const struct log_flood_window *w = &l->flood[k];
		int64_t end = w->start_ms + LOG_FLOOD_WINDOW_MS;

		if (w->suppressed && (!next || end < next))
			next = end;
	}
	return next;
}
