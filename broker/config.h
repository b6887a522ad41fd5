/* SPDX-License-Identifier: MIT */
/*
 * Broker configuration: compiled-in defaults (proto/lbus-limits.h),
 * overridden by an optional file of `key = value` lines (-c FILE). Blank
 * lines and `#` comments are ignored; an unknown key or a bad value is an
 * error naming file:line (and, for a value, the valid range), so a typo
 * never goes unnoticed. SIGHUP reloads the
 * file; limits apply to what happens after the reload (max_frame to new
 * connections, socket_mode only at start).
 *
 * Keys: max_frame, max_queue, hello_timeout_ms, frame_timeout_ms,
 * retained_max, socket_mode (octal, e.g. 0600).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct config {
	uint32_t max_frame;        /* largest frame body accepted */
	uint64_t max_queue;        /* bytes queued per client before its policy applies */
	uint32_t hello_timeout_ms; /* hello must arrive within this */
	uint32_t frame_timeout_ms; /* a started frame must complete within this */
	uint64_t retained_max;     /* total bytes of retained messages */
	mode_t socket_mode;        /* permission bits of the socket file */
};

void config_defaults(struct config *cfg);
/*
 * Read path into *cfg (which should hold the defaults). On failure returns
 * -errno (-EINVAL for syntax/values) and writes a "file:line: why" message
 * into err; *cfg is left unchanged then.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
