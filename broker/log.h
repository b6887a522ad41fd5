/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr. When systemd runs the broker
 * ($JOURNAL_STREAM or $INVOCATION_ID set) each line starts with a "<N>"
 * priority prefix that journald understands; otherwise with "lbusd: ".
 * Debug lines are written only when enabled (-v). The logger is a value held
 * by the broker, not a global.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

struct logger {
	bool prefix_priority; /* "<N>" prefixes for journald */
	bool debug;	      /* LOG_DEBUG lines enabled */
};

/* Decide the prefix style from the environment. */
void log_init(struct logger *l, bool debug);
/* Write one line (no trailing newline needed) at a syslog priority. */
void log_msg(const struct logger *l, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
