/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge's log lines and their limiter (see bridge-log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bridge-log.h"

static bool under_systemd(void)
{
	const char *js = getenv("JOURNAL_STREAM"), *inv = getenv("INVOCATION_ID");

	return (js && *js) || (inv && *inv);
}

void blog(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (under_systemd())
		n = snprintf(line, sizeof(line), "<%d>", prio);
	else
		n = snprintf(line, sizeof(line), "lbus-bridge: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

bool blog_allow(struct blog_limit *l, int64_t now_ms, const char *what)
{
	if (now_ms - l->window_start_ms >= 1000) {
		l->window_start_ms = now_ms;
		l->lines = 0;
	}
	if (l->lines >= BLOG_BURST) {
		l->suppressed++;
		return false;
	}
	l->lines++;
	if (l->suppressed) {
		blog(LOG_WARNING, "%s: %llu similar lines suppressed", what,
		     (unsigned long long)l->suppressed);
		l->suppressed = 0;
	}
	return true;
}

void blog_flush(struct blog_limit *l, int64_t now_ms, const char *what)
{
	if (l->suppressed && now_ms - l->window_start_ms >= 1000) {
		blog(LOG_WARNING, "%s: %llu similar lines suppressed", what,
		     (unsigned long long)l->suppressed);
		l->suppressed = 0;
		l->window_start_ms = now_ms;
		l->lines = 1;
	}
}
