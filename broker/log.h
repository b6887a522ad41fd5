/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr. When systemd runs the broker
 * ($JOURNAL_STREAM or $INVOCATION_ID set) each line starts with a "<N>"
 * priority prefix that journald understands; otherwise with "lbusd: ".
 * Debug lines are written only when enabled (-v). The logger is a value held
 * by the broker, not a global.
 *
 * Lines a client can cause at will (a refused connection, a connection
 * closed for what it sent) go through log_limited(): per kind, at most
 * LOG_FLOOD_BURST lines per LOG_FLOOD_WINDOW_MS are written; the rest are
 * counted, and one summary line ("N more ... suppressed") follows when the
 * window ends (log_flood_flush(), which the event loop calls, waking for
 * it: log_flood_next_ms()). So a flood of bad connections costs the log a
 * few lines a second, and no event goes unaccounted.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include <stdint.h>

/* The kinds of lines log_limited() bounds, each on its own. */
enum log_flood {
	LOG_FLOOD_REFUSED, /* connections refused (access rules, limits) */
	LOG_FLOOD_CLIENT,  /* connections closed for what they sent or failed to send */
	LOG_FLOOD_KINDS
};

/* Lines of one kind per window, and the window. */
#define LOG_FLOOD_BURST 1
#define LOG_FLOOD_WINDOW_MS 1000

struct log_flood_window {
	int64_t start_ms;    /* monotonic; 0: no window open */
	uint32_t lines;	     /* written in this window */
	uint64_t suppressed; /* not written in this window */
};

struct logger {
	bool prefix_priority; /* "<N>" prefixes for journald */
	bool debug;	      /* LOG_DEBUG lines enabled */
	struct log_flood_window flood[LOG_FLOOD_KINDS];
};

/* Decide the prefix style from the environment. */
void log_init(struct logger *l, bool debug);
/* Write one line (no trailing newline needed) at a syslog priority. */
void log_msg(const struct logger *l, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* log_msg, unless LOG_FLOOD_BURST lines of this kind were written in the
 * current window: then counted for the summary instead. */
void log_limited(struct logger *l, enum log_flood kind, int prio, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Write the summary of every window that has ended with lines suppressed,
 * and close it. */
void log_flood_flush(struct logger *l, int64_t now_ms);
/* When the next summary is due (monotonic ms), 0 when none is. */
int64_t log_flood_next_ms(const struct logger *l);
