/* SPDX-License-Identifier: MIT */
/*
 * Broker configuration: compiled-in defaults, overridden by an optional file
 * of `key = value` lines. The file is `-c FILE`, else
 * $XDG_CONFIG_HOME/lbus/lbusd.conf (else ~/.config/lbus/lbusd.conf) when it
 * exists. Blank lines and `#` comments are ignored; an unknown key or a bad
 * value is an error naming file:line (and, for a value, the valid range), so
 * a typo never goes unnoticed. SIGHUP reloads the file; limits apply to what
 * happens after the reload (max_frame to new connections, socket_mode only
 * at start).
 *
 * Every key is one row of the table in config.c (name, type, range,
 * default, help): parsing, range errors, --check-config's listing and the
 * documentation (doc/lbusd.conf.5.scd) follow that table.
 *
 * Lines that start with the word `allow` or `deny` are access rules
 * (`allow|deny WHO VERBS [PATTERN]`, lbusd.conf(5)), not keys; they are
 * handed to the rule parser (config_parse_rule() in config.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct policy;

struct config {
	uint32_t max_frame;	      /* largest frame body accepted */
	uint64_t max_queue;	      /* bytes queued per client before its policy applies */
	uint32_t hello_timeout_ms;    /* hello must arrive within this */
	uint32_t frame_timeout_ms;    /* a started frame must complete within this */
	uint64_t retained_max;	      /* total bytes of retained messages */
	uint64_t partial_frames_max;  /* input buffered by all connections, bytes */
	uint32_t socket_mode;	      /* permission bits of the socket file */
	uint32_t max_clients;	      /* connections at once */
	uint32_t max_clients_per_uid; /* connections at once of one uid */
	uint32_t max_names_per_client;
	uint32_t max_subscriptions_per_client;
	uint32_t max_pending_calls_per_client; /* calls one client waits on at once */
	uint32_t max_fds_per_client;	       /* descriptors a client may have in the broker */
	uint64_t memfd_budget;		       /* bytes of sealed memfds a client may have in it */
	uint32_t shutdown_timeout_ms;	       /* bound of the flush on SIGTERM/SIGINT */
	struct policy *policy;		       /* the access rules (policy.h), owned; NULL: none */
};

/* Every key at its default. */
void config_defaults(struct config *cfg);

/*
 * Read path into *cfg (which should hold the defaults). On failure returns
 * -errno (-EINVAL for syntax/values) and writes a "file:line: why" message
 * into err; *cfg is left unchanged then. On success the file's rules
 * replace cfg->policy (the old one is freed).
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * The default file: $XDG_CONFIG_HOME/lbus/lbusd.conf, else
 * $HOME/.config/lbus/lbusd.conf. 0, or -ENOENT when neither variable is set
 * (-ENAMETOOLONG when the path does not fit).
 */
int config_default_path(char *out, size_t size);

/* Free what cfg owns (its rules). */
void config_free(struct config *cfg);

/* Print the effective settings as a valid configuration file: each key
 * after a comment with its help, valid values and default; then the rules. */
void config_print(const struct config *cfg, FILE *out);
