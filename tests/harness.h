/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness: a real lbusd on a private temporary socket, the
 * lbus CLI as a child process, and raw AF_UNIX connections that speak (or
 * deliberately break) the wire protocol.
 *
 * Programs are found through the environment, set by tests/meson.build:
 *   LBUSD          the broker
 *   LBUS_CLI       the lbus command line tool
 *   LBUSD_WRAPPER  optional words put before lbusd (e.g. "valgrind -q
 *                  --error-exitcode=99"); timeouts are then scaled up
 *                  (see lbt_ms()).
 *
 * Files: harness.c (broker lifecycle, resources), harness-proc.c (child
 * processes), harness-raw.c (raw protocol), harness-probe.c (readiness
 * probes through liblbus). Tests link all four (tests/meson.build).
 *
 * Cleanup: brokers still running when the test process exits (a failed
 * assertion skipped lbt_broker_stop()) are killed and their directories
 * removed at exit; every child also dies with the test process
 * (PR_SET_PDEATHSIG). Children inherit no descriptor but stdin/out/err.
 *
 * Conventions: functions return 0 (or a count/fd) on success and -errno on
 * failure; they print a one-line diagnostic to stderr when something
 * unexpected happens, so a failing cmocka assertion on their return value
 * has its explanation right above it. Nothing here calls cmocka. Every wait is
 * bounded; every child is killed by PID if it outlives its deadline. SIGPIPE
 * is ignored in the test process once any helper has run.
 *
 * Typical use:
 *
 *     struct lbt_broker b;
 *     assert_int_equal(lbt_broker_start(&b, NULL), 0);
 *     struct lbt_proc r;
 *     assert_int_equal(lbt_cli_run(&b, NULL, 0, 5000, &r, "pub", "t", "x", NULL), 0);
 *     assert_int_equal(r.exit_code, 0);
 *     lbt_proc_free(&r);
 *     assert_int_equal(lbt_broker_stop(&b), 0);
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lbus.h"
#include "lbus.pb-c.h"

/* ---- timing ---------------------------------------------------------------- */

/* ms scaled for slow runs: x10 when LBUSD_WRAPPER is set (valgrind), else x1.
 * Use it for every deadline that waits on the broker. */
int lbt_ms(int ms);

/* Can a process of another uid run the programs under test? Every directory
 * above $LBUSD and $LBUS_CLI must let others through (o+x): a tree cloned
 * into `mktemp -d` (mode 0700) does not. Says why on stderr when not; tests
 * that switch uid skip then. */
bool lbt_tree_open_to_others(void);
/* Monotonic clock in milliseconds. */
int64_t lbt_now_ms(void);
/* Sleep; only for polling a condition that has no notification. */
void lbt_sleep_ms(int ms);

/* ---- the broker -------------------------------------------------------------- */

struct lbt_broker {
	char dir[PATH_MAX];  /* private temporary directory (mkdtemp), removed by stop */
	char sock[PATH_MAX]; /* socket path inside dir */
	char log[PATH_MAX];  /* dir/lbusd.log: the broker's stdout and stderr */
	pid_t pid;	     /* broker process (the wrapper's pid when wrapped), 0 if none */
};

struct lbt_broker_opts {
	/* Socket path relative to the temporary dir; NULL: "bus.sock". May
	 * name directories that do not exist yet ("run/lbus/bus.sock"): the
	 * broker must create them. */
	const char *sock_name;
	/* Extra arguments after "-S PATH", NULL-terminated; NULL for none. */
	const char *const *extra_args;
	/* Do not pass -S: the test sets LBUS_SOCKET/XDG_RUNTIME_DIR so the broker
	 * resolves b->sock by itself. */
	bool no_socket_arg;
	/* Reuse b->dir (already created by an earlier start whose broker is gone)
	 * instead of creating a new one. */
	bool reuse_dir;
};

/* Zero *b and create its fresh temporary directory (under $TMPDIR or /tmp),
 * for tests that prepare files before lbt_broker_start_opts(.reuse_dir). The
 * directory is removed by stop/kill, or at exit if the test fails first. */
int lbt_broker_make_dir(struct lbt_broker *b);

/*
 * Create a fresh temporary directory, start lbusd (behind $LBUSD_WRAPPER if
 * set) with "-S dir/bus.sock" plus extra_args (NULL-terminated, may be NULL),
 * and wait (up to lbt_ms(10000)) until it says READY=1 on the NOTIFY_SOCKET
 * the harness gives it (dir/notify.sock, removed once ready). Returns 0, or
 * -errno (-ECHILD: the broker exited first; -ETIMEDOUT: it never said
 * READY=1; its log is printed to stderr, the process killed and the dir
 * removed).
 */
int lbt_broker_start(struct lbt_broker *b, const char *const *extra_args);
int lbt_broker_start_opts(struct lbt_broker *b, const struct lbt_broker_opts *o);
/* The same with "-c dir/lbusd.conf", a file holding config (lbusd's
 * "key = value" lines). */
int lbt_broker_start_config(struct lbt_broker *b, const char *config);

/*
 * SIGTERM the broker and wait (bounded) for it. Returns 0 when it exited with
 * status 0 and removed its socket file; otherwise prints why and the broker
 * log and returns -ECHILD (bad status), -EEXIST (socket left behind) or
 * -ETIMEDOUT (had to SIGKILL it). Removes the temporary dir in every case.
 */
int lbt_broker_stop(struct lbt_broker *b);

/* SIGKILL the broker and reap it, then remove the dir. For crash tests and
 * cleanup after a failure. Accepts a broker that is already gone. */
void lbt_broker_kill(struct lbt_broker *b);

/*
 * Wait up to timeout_ms for the broker to exit by itself (no signal sent).
 * Returns its exit code (0..255, 128+signal), or -ETIMEDOUT (still running).
 * After this, b->pid is 0 and stop/kill only remove the dir.
 */
int lbt_broker_wait_exit(struct lbt_broker *b, int timeout_ms);

/* Resident set size of the broker in KiB (VmRSS of /proc/PID/status), or -errno. */
long lbt_broker_rss_kib(const struct lbt_broker *b);

/* Number of open file descriptors of the broker (/proc/PID/fd), or -errno. */
int lbt_broker_fd_count(const struct lbt_broker *b);
/* Wait up to timeout_ms until the broker has at most n open descriptors
 * (connections are closed asynchronously). Returns the last count seen.
 * A count taken right after start may still include the socket lbusd sent
 * READY=1 with (closed right after): compare with <=. */
int lbt_broker_wait_fds(const struct lbt_broker *b, int n, int timeout_ms);

/* Is the broker still running? When it has died (a crash, a sanitizer
 * abort), print that and its log, once, and return false. The connect
 * helpers call it when a connection fails, so the first failing assertion
 * comes with the reason. */
bool lbt_broker_alive(const struct lbt_broker *b);

/* The broker log so far, NUL-terminated, malloc'ed (caller frees), or NULL. */
char *lbt_broker_log(const struct lbt_broker *b);

/* Connect a liblbus handle to the broker: lbus_connect(out, b->sock). */
int lbt_connect(const struct lbt_broker *b, lbus **out);

/*
 * Prove the broker works end to end: two fresh liblbus connections, one
 * subscribes to topic, the other publishes "roundtrip" on it; 0 when it
 * arrives intact within lbt_ms(5000), else -errno (-ETIMEDOUT, -EBADMSG for a
 * wrong payload, or the failing call's error).
 */
int lbt_pubsub_roundtrip(const struct lbt_broker *b, const char *topic);

/* Path of the broker binary ($LBUSD) and the CLI ($LBUS_CLI); abort with a
 * message when unset (the test cannot run). */
const char *lbt_lbusd_path(void);
const char *lbt_cli_path(void);

/* ---- cmocka fixtures ---------------------------------------------------------- */

/*
 * For cmocka_unit_test_setup_teardown(): lbt_setup() starts a broker with the
 * defaults (lbt_broker_start) and makes *state the struct lbt_broker *;
 * lbt_teardown() stops it (lbt_broker_stop) and fails (-1) when the stop
 * broke the contract; a broker the test ended itself with lbt_broker_kill()
 * is no failure (stop finds no process and no directory). A test file that needs a configuration writes a
 * one-line setup calling lbt_setup_config(state, "max_queue = 4096\n").
 * The struct is allocated per test and freed by the teardown. Returns 0 or -1.
 */
int lbt_setup(void **state);
int lbt_setup_config(void **state, const char *config);
int lbt_teardown(void **state);

/* ---- child processes ------------------------------------------------------- */

/* A child process with pipes to its stdin, stdout and stderr. Output is
 * accumulated in out/err (always NUL-terminated after out_len/err_len). */
struct lbt_proc {
	pid_t pid;	    /* 0 once reaped */
	int in_fd;	    /* write end of the child's stdin, -1 when closed */
	int out_fd, err_fd; /* read ends, -1 at EOF */
	char *out;
	size_t out_len, out_cap;
	char *err;
	size_t err_len, err_cap;
	int exit_code;	/* -1 while running; exit status, or 128+signal */
	bool timed_out; /* lbt_proc_wait had to kill it */
};

/* Start argv[0] (a path) with argv; NULL-terminated. Returns 0 or -errno. */
int lbt_proc_spawn(struct lbt_proc *p, const char *const *argv);

/* Start "$LBUS_CLI -S b->sock ARGS..." (NULL-terminated varargs). b may be
 * NULL: then no -S is passed. */
int lbt_cli_spawn(struct lbt_proc *p, const struct lbt_broker *b, const char *arg, ...)
    __attribute__((sentinel));
/* The same with an argument vector (NULL-terminated). */
int lbt_cli_spawnv(struct lbt_proc *p, const struct lbt_broker *b, const char *const *args);

/* Write all of data to the child's stdin, reading its output meanwhile so it
 * cannot deadlock. Returns 0, -EPIPE if the child closed its stdin, or
 * -ETIMEDOUT. */
int lbt_proc_write(struct lbt_proc *p, const void *data, size_t len, int timeout_ms);
/* Close the child's stdin (EOF for it). */
void lbt_proc_close_stdin(struct lbt_proc *p);

/* Read the child's output until its stdout contains needle (searched from
 * byte offset `from`). Returns the offset of the match (>= 0), -ETIMEDOUT, or
 * -EPIPE when stdout reached EOF without it. */
long lbt_proc_read_until(struct lbt_proc *p, const char *needle, size_t from, int timeout_ms);
/* Read until stdout holds at least n bytes. Returns 0, -ETIMEDOUT or -EPIPE. */
int lbt_proc_read_bytes(struct lbt_proc *p, size_t n, int timeout_ms);
/* Read until stdout holds at least n newline characters. Returns 0,
 * -ETIMEDOUT or -EPIPE. */
int lbt_proc_read_lines(struct lbt_proc *p, size_t n, int timeout_ms);

/* Has the child exited? Reads pending output, reaps it if it has. */
bool lbt_proc_exited(struct lbt_proc *p);

/*
 * Close stdin, read all output until EOF and reap the
 * child, killing it (SIGKILL) if it is not done within timeout_ms. Returns 0
 * (see p->exit_code) or -ETIMEDOUT (killed; p->timed_out set).
 */
int lbt_proc_wait(struct lbt_proc *p, int timeout_ms);

/* Send sig to the child (if still running). */
void lbt_proc_signal(struct lbt_proc *p, int sig);

/* Kill (if still running) and reap the child, close pipes, free buffers.
 * Safe on a zeroed or already freed struct. */
void lbt_proc_free(struct lbt_proc *p);

/*
 * Run "$LBUS_CLI -S b->sock ARGS..." to completion: feed it stdin_data (NULL:
 * empty stdin), capture stdout/stderr, kill it after timeout_ms. *res must be
 * freed with lbt_proc_free(). Returns 0 (see res->exit_code) or -errno
 * (spawn failed, or -ETIMEDOUT: it was killed).
 */
int lbt_cli_run(const struct lbt_broker *b, const void *stdin_data, size_t stdin_len, int timeout_ms,
		struct lbt_proc *res, const char *arg, ...) __attribute__((sentinel));
int lbt_cli_runv(const struct lbt_broker *b, const void *stdin_data, size_t stdin_len, int timeout_ms,
		 struct lbt_proc *res, const char *const *args);
/* The same for any program: argv[0] is a path. */
int lbt_runv(const char *const *argv, const void *stdin_data, size_t stdin_len, int timeout_ms,
	     struct lbt_proc *res);

/*
 * Make sure a spawned `lbus sub` (or any subscriber printing payloads) is
 * subscribed to topic: publish "lbt-probe" on topic through a private liblbus
 * connection until it appears in p's stdout, then publish "lbt-ready" and
 * wait for it. Returns the stdout offset just after the line holding
 * "lbt-ready" (everything the test publishes afterwards comes after it), or
 * -errno. The sub must print payloads and not be limited by -n.
 */
long lbt_sub_ready(const struct lbt_broker *b, struct lbt_proc *p, const char *topic, int timeout_ms);

/*
 * Make sure a spawned `lbus listen NAME` owns name: send "lbt-probe" to name
 * through a private liblbus connection until the send succeeds (not -ENXIO),
 * then wait until the probe appears in p's stdout. Returns the stdout offset
 * just after the probe's line, or -errno.
 */
long lbt_listen_ready(const struct lbt_broker *b, struct lbt_proc *p, const char *name, int timeout_ms);

/* ---- raw protocol ---------------------------------------------------------------- */

/* A plain AF_UNIX stream connection to the broker (no hello). Returns fd or -errno. */
int lbt_raw_connect(const struct lbt_broker *b);
/* Write all bytes (MSG_NOSIGNAL). Returns 0 or -errno (-EPIPE, -ECONNRESET...). */
int lbt_raw_send_bytes(int fd, const void *data, size_t len);
/* Pack f with protobuf-c behind its 4-byte little-endian length and send it. */
int lbt_raw_send_frame(int fd, const Lbus__Frame *f);
/*
 * Read one frame within timeout_ms and unpack it with protobuf-c. On 0, *out
 * is new: free it with lbus__frame__free_unpacked(*out, NULL). Returns
 * -ETIMEDOUT, -ECONNRESET (EOF or reset by the broker), -EPROTO (undecodable)
 * or -EMSGSIZE (length over 64 MiB).
 */
int lbt_raw_read_frame(int fd, int timeout_ms, Lbus__Frame **out);
/*
 * Send the frame's bytes [0, split) in one sendmsg() with fds[0..nfds)
 * attached (SCM_RIGHTS), and the rest (split < the frame's size) after
 * pause_ms; split 0: the whole frame in one. The caller keeps its fds.
 */
int lbt_raw_send_frame_fds(int fd, const Lbus__Frame *f, const int *fds, size_t nfds, size_t fds_at,
			   int pause_ms);
/*
 * lbt_raw_read_frame(), also collecting the descriptors that came with the
 * frame's first bytes (at most max) into fds (*nfds of them; the caller
 * closes them). Descriptors beyond max are closed.
 */
int lbt_raw_read_frame_fds(int fd, int timeout_ms, Lbus__Frame **out, int *fds, size_t max, size_t *nfds);
/* Send Hello{version 1} and read the Welcome. On 0, *client_id (if not NULL)
 * is the id the broker assigned. -EPROTO if the answer is not a Welcome. */
int lbt_raw_hello(int fd, uint64_t *client_id);
/*
 * Read frames until the broker closes the connection (EOF or reset), within
 * timeout_ms. If err is not NULL, *err gets a copy of the first Error frame
 * seen (code, fatal) or stays zeroed. Returns 0 once closed, -ETIMEDOUT if
 * still open.
 */
struct lbt_error {
	bool seen;
	uint32_t code; /* Lbus__ErrorCode */
	bool fatal;
	uint32_t request;
};
int lbt_raw_expect_close(int fd, int timeout_ms, struct lbt_error *err);
/* Send Ping{token} and read frames until the matching Pong; any Error frame
 * seen meanwhile goes to *err (if not NULL). Returns 0, -ETIMEDOUT, -ECONNRESET. */
int lbt_raw_sync(int fd, uint64_t token, int timeout_ms, struct lbt_error *err);

/* ---- resources ------------------------------------------------------------------- */

/* out (PATH_MAX bytes) = dir/name. 0, or -ENAMETOOLONG. */
int lbt_path(char *out, const char *dir, const char *name);
/* A plain AF_UNIX stream connection to path. Returns fd or -errno. */
int lbt_unix_connect(const char *path);

/* Number of open file descriptors of this process (/proc/self/fd), or -errno. */
int lbt_fd_count(void);
/* Fill buf with n pseudo-random bytes from seed (deterministic). */
void lbt_fill_random(void *buf, size_t n, uint32_t seed);
/* Write data to dir/name; the full path goes to path_out (PATH_MAX). 0 or -errno. */
int lbt_write_file(const char *dir, const char *name, const void *data, size_t len, char *path_out);
