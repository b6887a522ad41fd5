/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench internals, shared by its files:
 *
 *   lbus-bench.c    options, the order of the runs, the table and JSON output
 *   bench-proc.c    a group of forked client processes: shared result slots,
 *                   the ready/go handshake, the time limit
 *   bench-broker.c  finding, starting and stopping a private lbusd
 *   bench-raw.c     the raw AF_UNIX baseline (no broker)
 *   bench-lbus.c    the same scenarios through liblbus and lbusd
 *   bench-clients.c many idle lbus clients: broker RSS per client
 *   bench-held.c    request cost against items held (names, subscriptions)
 *   bench-stats.c   clock, percentiles, /proc readers
 *
 * Every run (one scenario, one size, one subject) forks its own processes,
 * so publishers, subscribers and the broker use the cores as real clients
 * would. Children report through a shared anonymous mapping (struct
 * bench_slot), which the parent reads even after killing a child that
 * overran the time limit.
 *
 * Errors: functions return 0 or -errno, as in the rest of lbus.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_PROCS 128	  /* children per group */
#define BENCH_BATCH_BYTES 65536	  /* raw sender: bytes per write */
#define BENCH_RECV_BYTES 262144	  /* raw receiver: bytes per read */
#define BENCH_PROGRESS_EVERY 4096 /* publish progress to the slot this often */
#define BENCH_READY_TIMEOUT_S 20  /* children must be ready within this */

/* Set by SIGINT/SIGTERM in the parent; every wait loop checks it. */
extern volatile sig_atomic_t bench_interrupted;

/* ---- results ------------------------------------------------------------ */

enum bench_subject { BENCH_RAW, BENCH_LBUS };

/* One figure: one scenario, one size, one subject. */
struct bench_result {
	const char *scenario;
	enum bench_subject subject;
	size_t size;	     /* payload bytes, 0 for clients */
	unsigned peers;	     /* fanout: subscribers, fanin: publishers */
	uint64_t expected;   /* messages (deliveries) that should arrive */
	uint64_t sent;	     /* deliveries owed for what was published */
	uint64_t received;   /* messages (deliveries) that arrived */
	uint64_t disorder;   /* out of order, wrong size, or reported missed */
	double seconds;	     /* from go to the last arrival */
	double rate;	     /* received / seconds */
	double broker_cpu_s; /* < 0: not measured */
	double pub_cpu_s;    /* all publishers' CPU time, whole process */
	double sub_cpu_s;    /* all subscribers' CPU time, whole process */
	double p50_us, p99_us, p999_us;
	unsigned clients; /* clients reached */
	double rss_per_client_kib;
	const char *item;      /* held: "names" or "subscriptions" */
	uint64_t held;	       /* held: items the client held when timed */
	double us_per_op;      /* held: microseconds per request */
	double vs_first;       /* held: us_per_op / the 1x level's */
	double rss_growth_kib; /* large: the broker's peak RSS over its RSS at go; < 0: none */
	bool inband;	       /* large: payloads in the frames, not offloaded */
	int err;	       /* 0, or why the run failed */
	bool timed_out;
	char why[160]; /* what failed, when err != 0 */
};

/* ---- process groups (bench-proc.c) ----------------------------------------
 * A slot is written by one child and read by the parent; slots do not share
 * cache lines, so children updating their own never slow each other. */
struct __attribute__((aligned(64))) bench_slot {
	uint64_t progress; /* messages published/received so far */
	uint64_t disorder; /* see struct bench_result */
	uint64_t t_end_ns; /* when the last message arrived (receivers) */
	uint64_t count;	   /* clients: connections made */
	double p50_us, p99_us, p999_us;
	double cpu_s; /* the child's own CPU time (user + system) */
	int32_t err;  /* 0 or -errno */
	int32_t done; /* 1 when the child finished its work */
	char why[96];
};

struct bench_shared {
	int32_t stop; /* set by the parent: children should wind up */
	struct bench_slot slot[BENCH_MAX_PROCS];
};

struct bench_child;
/* Body of a child process; returns 0 or -errno (also recorded in the slot). */
typedef int (*bench_child_fn)(struct bench_child *c);

struct bench_child {
	unsigned index; /* this child's slot */
	struct bench_shared *shared;
	struct bench_slot *slot;
	int ready_fd;	      /* bench_child_ready() writes here */
	int go_fd;	      /* EOF at go */
	uint64_t deadline_ns; /* give up at this CLOCK_MONOTONIC time */
	bool reported;	      /* ready (or failure) already sent */
	void *args;	      /* the scenario's own */
};

struct bench_group {
	struct bench_shared *shared;
	pid_t pid[BENCH_MAX_PROCS];
	int status[BENCH_MAX_PROCS]; /* wait status once reaped */
	bool reaped[BENCH_MAX_PROCS];
	unsigned n;
	unsigned n_ready;
	int ready[2]; /* children -> parent, one byte each */
	int go[2];    /* parent closes go[1] to start */
	uint64_t deadline_ns;
	uint64_t go_ns;
};

int bench_group_init(struct bench_group *g, unsigned time_limit_s);
/* Fork a child running fn(args) in the next slot, its process named name
 * (at most 15 characters). Returns 0 or -errno. */
int bench_group_spawn(struct bench_group *g, bench_child_fn fn, void *args, const char *name);
/* Wait until every spawned child reported ready; -EIO when one failed. */
int bench_group_wait_ready(struct bench_group *g, struct bench_result *res);
/* Release the children waiting in bench_child_wait_go(); records go_ns. */
void bench_group_go(struct bench_group *g);
/* Wait for all children to exit; at the deadline ask them to stop, then
 * kill them. Returns 0, -ETIMEDOUT or -EINTR. */
int bench_group_finish(struct bench_group *g);
/* Tell running children to wind up (shared stop flag). */
void bench_group_stop(struct bench_group *g);
/* Kill what still runs, free everything. */
void bench_group_deinit(struct bench_group *g);
/* End of a run whose last step returned r: record the failure (a child's
 * own reason first), deinit the group. Returns res->err. */
int bench_group_conclude(struct bench_group *g, int r, struct bench_result *res);
/* First child error into res (err, why); 0 if none. */
int bench_group_errors(const struct bench_group *g, struct bench_result *res);

/* In a child: report ready (ok) or failure; then wait for go (0 at go,
 * -ETIMEDOUT at the deadline). */
void bench_child_ready(struct bench_child *c);
int bench_child_wait_go(struct bench_child *c);
/* In a child: record a failure ("what: why") in the slot and return err. */
int bench_child_fail(struct bench_child *c, int err, const char *what, const char *why);
bool bench_child_should_stop(const struct bench_child *c);

/* ---- broker (bench-broker.c) ------------------------------------------- */

struct bench_broker {
	char exe[4096];	    /* lbusd to run */
	char sock[4200];    /* socket path inside the private directory */
	char log[4200];	    /* its stderr */
	const char *config; /* -c file for the next start; NULL: /dev/null */
	pid_t pid;
};

/* Resolve lbusd: opt, $LBUSD, next to this executable, PATH. */
int bench_broker_find(struct bench_broker *b, const char *opt);
/* Start it on dir/bus.sock and wait until it accepts. */
int bench_broker_start(struct bench_broker *b, const char *dir, struct bench_result *res);
/* Is it still running? */
bool bench_broker_alive(struct bench_broker *b);
/* SIGTERM, wait, SIGKILL if needed, reap. Returns 0 if it exited cleanly. */
int bench_broker_stop(struct bench_broker *b);

/* ---- runs -------------------------------------------------------------- */

/* A flow: P publishers -> S subscribers (throughput 1->1, fanout 1->K,
 * fanin K->1); each publisher sends per_publisher messages of size bytes. */
struct bench_flow {
	const char *scenario;
	bool unbatched; /* lbus publishers: no LBUS_MORE, each publish written at once */
	unsigned publishers, subscribers;
	uint64_t per_publisher;
	size_t size;
	unsigned time_limit_s;
	const char *sock; /* lbus only */
	bool inband;	  /* lbus publishers: memfd offload off (threshold 0) */
};

struct bench_latency {
	uint64_t count; /* measured round trips (after a warm-up) */
	size_t size;
	unsigned time_limit_s;
	const char *sock; /* lbus only */
};

struct bench_clients {
	unsigned clients;
	unsigned time_limit_s;
	const char *sock;
	pid_t broker_pid;
};

/* The held scenario: levels of base, 10 x base, 100 x base items held, ops
 * requests timed at each (bench-held.c). */
struct bench_held {
	uint64_t base, ops;
	const char *sock;
};

/* Called with each level's figure. */
typedef void (*bench_held_report_fn)(const struct bench_result *r, void *ud);

int bench_raw_flow(const struct bench_flow *f, struct bench_result *res);
int bench_raw_latency(const struct bench_latency *l, struct bench_result *res);
int bench_lbus_flow(const struct bench_flow *f, pid_t broker, struct bench_result *res);
int bench_lbus_latency(const struct bench_latency *l, struct bench_result *res);
int bench_lbus_clients(const struct bench_clients *c, struct bench_result *res);
/* Names (subs false) or subscriptions: report each level; a failure is
 * recorded in res (err, why) and returned. */
int bench_lbus_held(const struct bench_held *h, bool subs, bench_held_report_fn report, void *ud,
		    struct bench_result *res);

/* Shared by the flow runs (bench-proc.c): fill res from the slots after the
 * run; the subscribers are the group's first f->subscribers children. */
void bench_flow_collect(const struct bench_flow *f, const struct bench_group *g, struct bench_result *res);

/* Unmeasured round trips before the measured ones: a tenth, at most 1000. */
static inline uint64_t bench_latency_warmup(uint64_t count)
{
	return count / 10 < 1000 ? count / 10 : 1000;
}

/* Latency runs (bench-proc.c): the measuring child is the group's second
 * (index 1); fill res from its slot. */
void bench_latency_collect(const struct bench_latency *l, const struct bench_group *g,
			   struct bench_result *res);

/* Payload stamping shared by raw and lbus senders/receivers: bytes 0..7 the
 * publisher's sequence number, 8..11 the publisher's index (when the
 * payload has at least 12 bytes; smaller ones are only counted). */
struct bench_order {
	uint64_t next[BENCH_MAX_PROCS]; /* next expected sequence per publisher */
	size_t size;
	uint64_t received;
	uint64_t disorder;
};
void bench_stamp(uint8_t *payload, size_t size, uint64_t seq, unsigned publisher);
void bench_order_check(struct bench_order *o, const uint8_t *payload, size_t len);

/* ---- stats (bench-stats.c) ---------------------------------------------- */

uint64_t bench_now_ns(void);
/* Sorts samples (nanoseconds) in place; percentiles in microseconds. */
void bench_percentiles(uint64_t *ns, size_t n, double *p50, double *p99, double *p999);
int bench_proc_rss_kib(pid_t pid, uint64_t *kib);
/* Its peak resident memory so far (VmHWM), KiB. 0 or -errno. */
int bench_proc_hwm_kib(pid_t pid, uint64_t *kib);
int bench_proc_cpu_s(pid_t pid, double *seconds);
/* Raise RLIMIT_NOFILE to want (possible only with privilege), else the soft
 * limit to the hard one; returns the new soft limit. */
uint64_t bench_raise_nofile(uint64_t want);
