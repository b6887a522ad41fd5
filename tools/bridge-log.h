/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge's log: one line per event on stderr, "lbus-bridge: ..." or,
 * under systemd (JOURNAL_STREAM or INVOCATION_ID set), with a "<N>" priority
 * prefix for the journal, like lbusd. Each line is one write(2).
 *
 * A limiter keeps a repeated event (a full queue, a skipped topic) from
 * flooding the log: at most BLOG_BURST lines per second for it, then one
 * "N more suppressed" line when it is allowed to speak again.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

void blog(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define BLOG_BURST 5

struct blog_limit {
	int64_t window_start_ms;
	unsigned lines;	     /* lines written in the current window */
	uint64_t suppressed; /* events not logged since the last line */
};

/* May an event counted now (monotonic ms) be logged? When it may and
 * earlier ones were suppressed, this logs "(N similar lines suppressed)" with
 * what (e.g. "skipped topics") first. */
bool blog_allow(struct blog_limit *l, int64_t now_ms, const char *what);
/* Log the "suppressed" line now if events are waiting for it and their
 * window has passed (call it from a periodic timer). */
void blog_flush(struct blog_limit *l, int64_t now_ms, const char *what);
