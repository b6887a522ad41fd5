/* SPDX-License-Identifier: MIT */
/*
 * stderr logger (see log.h). Each line is formatted into one buffer and
 * written with a single write(2), so lines from a crashing broker or a
 * concurrent shell never interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 1024 /* longest line, newline included; longer ones are cut */

void log_init(struct logger *l, bool debug)
{
	const char *js = getenv("JOURNAL_STREAM");
	const char *inv = getenv("INVOCATION_ID");

	l->prefix_priority = (js && *js) || (inv && *inv);
	l->debug = debug;
}

void log_msg(const struct logger *l, int prio, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	int n;

	if (prio >= LOG_DEBUG && !l->debug)
		return;
	if (l->prefix_priority)
		n = snprintf(line, sizeof(line), "<%d>", prio);
	else
		n = snprintf(line, sizeof(line), "lbusd: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
