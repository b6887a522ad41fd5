/* SPDX-License-Identifier: MIT */
/*
 * Internal interface of the lbus command line tool.
 *
 * The tool is a thin layer over the public client library (lbus.h): lbus.c
 * holds main(), the global options and the command table with every help
 * text; each cli-*.c file implements a group of commands or one shared
 * concern (options and errors, the event loop, message output, JSON).
 *
 * Conventions: a command function returns the process exit status
 * (enum cli_status) and prints its own error line first. Helpers that can
 * fail in an expected way return 0 or a negative errno and leave the
 * message to their caller, unless their comment says they print it.
 */
#pragma once

#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lbus.h"

/* Exit statuses of the command line contract (DESIGN.md). */
enum cli_status {
	CLI_OK = 0,	   /* success */
	CLI_REFUSED = 1,   /* the broker refused, or another failure */
	CLI_USAGE = 2,	   /* usage error */
	CLI_NO_BROKER = 3, /* cannot reach the broker */
	CLI_TIMEOUT = 4,   /* timed out */
};

/* State shared by every command: the global options. */
struct cli {
	const char *socket; /* -S PATH, NULL for the default */
	const char *cmd;    /* the command's name, for messages */
	bool no_reconnect;  /* --no-reconnect (sub, listen, serve, monitor) */
};

/* ---- commands (one function each; argv[0] is the command name) -------- */

int cli_pub(struct cli *cli, int argc, char **argv);
int cli_sub(struct cli *cli, int argc, char **argv);
int cli_send(struct cli *cli, int argc, char **argv);
int cli_listen(struct cli *cli, int argc, char **argv);
int cli_wait(struct cli *cli, int argc, char **argv);
int cli_call(struct cli *cli, int argc, char **argv);
int cli_serve(struct cli *cli, int argc, char **argv);
int cli_list(struct cli *cli, int argc, char **argv);
int cli_stats(struct cli *cli, int argc, char **argv);
int cli_monitor(struct cli *cli, int argc, char **argv);
int cli_top(struct cli *cli, int argc, char **argv);
int cli_metrics(struct cli *cli, int argc, char **argv);

/* cli-info.c: one sample of the bus, as lbus top and the metrics use it:
 * the broker's counters (*stats) and every client (*list). On 0 the
 * caller frees both (lbus_stats_free(), lbus_client_list_free()); on a
 * negative errno neither is set. */
int cli_bus_sample(lbus *bus, struct lbus_stats **stats, struct lbus_client_list **list);

/* lbus.c: print the help text of command cmd (or of the tool when NULL or
 * unknown) to f. */
void cli_print_help(FILE *f, const char *cmd);

/* ---- cli-suggest.c: "did you mean" ------------------------------------- */

/* The candidate (of n, NULLs skipped) closest to word by edit distance, or
 * NULL when none is close enough to be a likely typo. */
const char *cli_suggest(const char *word, const char *const *cands, size_t n);
/* The same for a long option elem ("--tiemout", "--tiemout=5") among
 * longopts (names without "--"); NULL for a short option. */
const char *cli_suggest_option(const char *elem, const struct option *longopts);

/* ---- cli-common.c: options, errors, connecting, reading input ---------- */

/* The long options every command accepts; end each command's table with
 * CLI_COMMON_LONGOPTS, { 0 }. */
/* clang-format off */
#define CLI_COMMON_LONGOPTS { "socket", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' }
/* --no-reconnect, for the commands that run until stopped (handled by
 * cli_parse_options like -S). */
#define CLI_RECONNECT_LONGOPT { "no-reconnect", no_argument, NULL, 'R' }
/* clang-format on */

/* Handles one command-specific option: returns 0, or an exit status (after
 * printing why) to stop. */
typedef int (*cli_opt_fn)(struct cli *cli, int opt, const char *arg, void *opts);

/*
 * Parse the options of a command with getopt_long (options and positional
 * arguments in any order, whatever POSIXLY_CORRECT says; "--" ends the
 * options). The positional arguments are moved, in order, to the end of argv. shortopts lists the
 * command's own options; -S/--socket and -h/--help are added. On true,
 * argv[*first_arg .. argc-1] are the positional arguments. On false the
 * command must return *status (0 after --help, 2 after a usage error).
 */
bool cli_parse_options(struct cli *cli, int argc, char **argv, const char *shortopts,
		       const struct option *longopts, cli_opt_fn fn, void *opts, int *first_arg, int *status);

/* Report an option getopt_long() rejected (c is '?' or ':'); elem is the
 * argument it was looking at ("-xv", "--bogus"). Names the option itself
 * ("-x", "--bogus"), and the closest of longopts when it looks like a typo
 * of one ("did you mean '--timeout'?"). Returns CLI_USAGE. */
int cli_bad_option(const struct cli *cli, int c, const char *elem, const struct option *longopts);

/* Print "lbus: CMD: <message>" and a hint to --help; returns CLI_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The exit status for a negative errno from the library. */
int cli_status_of(int err);

/* Print "lbus: <what>: <lbus_strerror(err)>" and return cli_status_of(err). */
int cli_fail(int err, const char *what_fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_fail for a request on bus, followed by the broker's reason when it gave
 * one (lbus_request_reason(): "lbus: list clients: Permission denied
 * (introspect denied: ...)"). */
int cli_fail_bus(const lbus *bus, int err, const char *what_fmt, ...) __attribute__((format(printf, 3, 4)));

/* Connect to the broker (cli->socket or the default path). On failure prints
 * why and returns CLI_REFUSED when the broker refused the connection (its
 * reason shown: another user, a limit), else CLI_NO_BROKER. */
int cli_connect(const struct cli *cli, lbus **bus);
/* cli_connect() for the commands that run until stopped (sub, listen,
 * serve, monitor): unless --no-reconnect, in the library's reconnect mode,
 * saying on stderr when the connection is lost and when it is back. A
 * first connection that fails is reported like cli_connect() does. */
int cli_connect_long(const struct cli *cli, lbus **bus);

/* Parse "-n N" (an integer >= 1); prints a usage error and returns CLI_USAGE
 * when invalid, else 0. */
int cli_parse_count(const struct cli *cli, const char *arg, uint64_t *out);

/* Parse "-t SECS" (a decimal number of seconds >= 0, e.g. 2.5) into
 * milliseconds; prints a usage error and returns CLI_USAGE when invalid. */
int cli_parse_secs(const struct cli *cli, const char *arg, int64_t *ms_out);

struct cli_pb;

/* The options of the commands that print messages (sub, listen, monitor):
 * -n N, -t SECS, -v, --json (option character 'j'), --decode SPEC ('D'),
 * --decode-map FILE ('M'). */
struct cli_watch_opts {
	uint64_t count;	    /* 0: no limit */
	int64_t timeout_ms; /* -1: none */
	bool verbose, json;
	const char *decode, *decode_map; /* as given */
	struct cli_pb *pb;		 /* loaded by cli_watch_ready(), or NULL */
};

#define CLI_WATCH_SHORTOPTS "n:t:v"
/* clang-format off */
#define CLI_WATCH_LONGOPTS \
	{ "count", required_argument, NULL, 'n' }, { "timeout", required_argument, NULL, 't' }, \
	{ "verbose", no_argument, NULL, 'v' }, { "json", no_argument, NULL, 'j' }, \
	{ "decode", required_argument, NULL, 'D' }, { "decode-map", required_argument, NULL, 'M' }
/* clang-format on */

/* Initialise o to its defaults (no limits, plain output). */
void cli_watch_init(struct cli_watch_opts *o);

/* Handle one of -n, -t, -v, --json, --decode, --decode-map: 0 or CLI_USAGE
 * (printed). */
int cli_watch_option(struct cli *cli, int opt, const char *arg, struct cli_watch_opts *o);

/* After the options: load what --decode names into o->pb. 0 or an exit
 * status (printed). */
int cli_watch_ready(const struct cli *cli, struct cli_watch_opts *o);

/* Free what cli_watch_ready() loaded. */
void cli_watch_deinit(struct cli_watch_opts *o);

/* A growable byte buffer. */
struct cli_buf {
	char *data;
	size_t len, cap;
};

/* Make room for at least more bytes after len. 0 or -ENOMEM. */
int cli_buf_reserve(struct cli_buf *b, size_t more);
void cli_buf_free(struct cli_buf *b);

/* Append everything readable from fd until end of file. 0 or -errno. */
int cli_buf_read_fd(struct cli_buf *b, int fd);

/*
 * The payload of send/call/pub: the MESSAGE argument when present (even
 * empty), else the contents of file (when not NULL), else all of stdin.
 * Points *data at it; *b holds what was read (free with cli_buf_free).
 * Prints the error and returns an exit status on failure, else 0.
 */
int cli_payload(const char *message, const char *file, struct cli_buf *b, const void **data, size_t *len);

/* Monotonic clock in milliseconds. */
int64_t cli_now_ms(void);

/* ---- cli-loop.c: the event loop of the commands that wait -------------- */

/* Why cli_loop_run() returned. */
enum cli_loop_end {
	CLI_LOOP_DONE = 0,    /* a callback called cli_loop_stop() */
	CLI_LOOP_TIMEOUT = 1, /* the deadline passed */
	CLI_LOOP_SIGNAL = 2,  /* SIGINT or SIGTERM */
	CLI_LOOP_HOOK = 3,    /* a hook stopped the loop with loop->status */
};

/* Extra descriptors to watch besides the bus (serve's child process). */
struct cli_loop_hooks {
	/* Fill up to max pollfds; return how many. */
	size_t (*prepare)(void *userdata, struct pollfd *fds, size_t max);
	/* Handle the revents of the n pollfds prepare() filled. 0 or an exit
	 * status (> 0) to stop the loop with. */
	int (*ready)(void *userdata, const struct pollfd *fds, size_t n);
	void *userdata;
};

struct cli_loop {
	lbus *bus;
	int64_t deadline_ms;		    /* cli_now_ms() value, or -1 for none */
	const struct cli_loop_hooks *hooks; /* NULL for none */
	bool stop;			    /* set by cli_loop_stop() */
	int status;			    /* exit status a hook asked for */
};

/* Install the SIGINT/SIGTERM handlers that make cli_loop_run() return
 * CLI_LOOP_SIGNAL, and give stdout a large buffer (fully buffered). Prints
 * and returns an exit status on failure, else 0. */
int cli_loop_signals(void);

/* The read end of the signal self-pipe (readable once SIGINT or SIGTERM
 * came), for commands that poll by themselves; -1 before cli_loop_signals(). */
int cli_loop_signal_fd(void);

/* Initialise loop for bus; timeout_ms < 0 means no deadline. */
void cli_loop_init(struct cli_loop *loop, lbus *bus, int64_t timeout_ms);

/* Ask cli_loop_run() to return CLI_LOOP_DONE after the current dispatch. */
void cli_loop_stop(struct cli_loop *loop);

/*
 * Dispatch the bus until stopped, the deadline, a signal, a hook or an
 * error. Flushes stdout each time before waiting. Returns an enum
 * cli_loop_end, or a negative errno: -EPIPE when stdout was closed by its
 * reader, another errno when the connection is lost or poll fails.
 */
int cli_loop_run(struct cli_loop *loop);

/*
 * Exit status for a negative cli_loop_run() result, printing the error
 * first: stdout closed (EPIPE) is a quiet 0, a lost connection
 * "lbus: connection to the broker: <why>" and 3.
 */
int cli_loop_failure(int r);

/*
 * (cli-common.c) Run loop with cli_loop_run() for a command that prints
 * what it receives and counts it in *count; return the exit status: the
 * loop's failure, or at the time limit 4 when fewer than -n arrived, or
 * (without -n) when none arrived and zero_is_timeout; else 0.
 */
int cli_watch_run(struct cli_loop *loop, const struct cli_watch_opts *o, const uint64_t *count,
		  bool zero_is_timeout);
/* The exit status cli_watch_run() gives for cli_loop_run()'s result end when
 * received messages were counted (for commands that do more after the loop). */
int cli_watch_status(int end, const struct cli_watch_opts *o, uint64_t received, bool zero_is_timeout);

/* Flush stdout. 0, -EPIPE when the reader went away, or the write's negative
 * errno (-ENOSPC...; -EIO for one that happened earlier, while stdout's
 * buffer filled). Prints nothing. */
int cli_flush_stdout(void);

/* ---- cli-output.c: printing delivered messages ------------------------- */

enum cli_format {
	CLI_FMT_PLAIN = 0, /* the payload and a newline */
	CLI_FMT_TOPIC,	   /* -v on sub: "TOPIC payload" */
	CLI_FMT_SENDER,	   /* -v on listen: "SENDER payload" */
	CLI_FMT_JSON,	   /* --json: one object per line */
};

/* The format that -v (meaning verbose_fmt) and --json select. */
enum cli_format cli_watch_format(const struct cli_watch_opts *o, enum cli_format verbose_fmt);

/* Print one delivered message to stdout in format fmt. Presence events
 * ($lbus/...) are shown decoded. Warns on stderr when msg->missed > 0;
 * pattern names the subscription in that warning. With pb (--decode), a
 * payload whose topic has a type is printed as its JSON (in JSON format, as
 * a "message" member instead of "payload"); one that does not decode is
 * reported on stderr and nothing goes to stdout. */
void cli_print_msg(enum cli_format fmt, const struct lbus_msg *msg, const char *pattern,
		   const struct cli_pb *pb);
/* cli_print_msg without the warning, missed (not msg->missed) the messages
 * dropped just before this one: the JSON "missed" member when > 0. For a
 * caller that warned of them already (an lbus_on_dropped handler). */
void cli_print_msg_missed(enum cli_format fmt, const struct lbus_msg *msg, uint64_t missed,
			  const struct cli_pb *pb);

/* Write "ID" or "ID(NAME)" for a sender. */
void cli_print_sender(FILE *f, const struct lbus_sender *s);

/* Write a payload for a human-readable line: as is when it is printable
 * UTF-8 text, else quoted with escapes, else as "<N bytes> base64:...". */
void cli_print_text_payload(FILE *f, const void *data, size_t len);

/* If topic is a presence topic and data decodes, write its fields
 * ("id=7 pid=123 uid=1000 command=foo", or "name=x id=7 ..." for name
 * events) and return true; else write nothing and return false. */
bool cli_print_presence_text(FILE *f, const char *topic, const void *data, size_t len);

/* Same, as a JSON member: ,"presence":{...}. */
bool cli_print_presence_json(FILE *f, const char *topic, const void *data, size_t len);

/* Write the JSON object of a sender: {"id":..,"name":..,"pid":..,"uid":..,"gid":..}. */
void cli_json_sender(FILE *f, const struct lbus_sender *s);

/* ---- cli-json.c: JSON strings and base64 -------------------------------- */

/* Is data valid UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF)? */
bool cli_utf8_valid(const void *data, size_t len);

/* Write len bytes of s as a quoted JSON string (s must be valid UTF-8). */
void cli_json_string(FILE *f, const char *s, size_t len);

/* Write a NUL-terminated string (NULL as "") as a quoted JSON string. */
void cli_json_cstring(FILE *f, const char *s);

/* Write data as a quoted base64 string (RFC 4648, with padding). */
void cli_json_base64(FILE *f, const void *data, size_t len);

/* Write the member "payload":"..." when data is valid UTF-8, else
 * "payload_base64":"...". */
void cli_json_payload(FILE *f, const void *data, size_t len);

/* Write a quoted JSON array of strings. */
void cli_json_string_array(FILE *f, const char *const *v, size_t n);

/* ---- cli-proto.c: protobuf payloads (--decode, --decode-map, --encode) -- */

struct pbs_message;

/*
 * Load spec ("FILE.desc:pkg.Type", or "FILE.desc" with a map_file) and the
 * mapping file map_file (may be NULL) into *out; both NULL leaves *out NULL.
 * Prints the error and returns CLI_USAGE (or 1 out of memory), else 0.
 */
int cli_pb_open(const struct cli *cli, const char *spec, const char *map_file, struct cli_pb **out);

void cli_pb_free(struct cli_pb *pb);

/* The message type of payloads on topic (or to the name topic): the first
 * matching map line, else the FILE:TYPE type; NULL for none, for presence
 * events and when pb is NULL. A NULL topic (a reply) gets the FILE:TYPE type. */
const struct pbs_message *cli_pb_type_for(const struct cli_pb *pb, const char *topic);

/* Decode a payload of type as one line of JSON into *json (allocated, free
 * it). On failure prints "lbus: LABEL: cannot decode TYPE: why" and returns
 * a negative errno. */
int cli_pb_decode(const struct pbs_message *type, const char *label, const void *data, size_t len,
		  char **json);

/* Encode len bytes of JSON text as the FILE:TYPE type of pb; *data, *out_len
 * stay valid until the next call. On failure prints "lbus: LABEL: cannot
 * encode TYPE: why" and returns CLI_REFUSED, else 0. */
int cli_pb_encode(struct cli_pb *pb, const char *label, const void *text, size_t len, const void **data,
		  size_t *out_len);
