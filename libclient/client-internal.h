/* SPDX-License-Identifier: MIT */
/*
 * Private header of liblbus (not installed). The library is split by concern,
 * like ubus's libubus-io.c/-req.c/-sub.c:
 *
 *   client.c      connect, hello/welcome, close, small accessors, strerror
 *   io.c          output buffer and batched writes, reading into the rbuf,
 *                 the frame dispatch table, the one dispatch core (io_work,
 *                 io_wait) that lbus_dispatch(), lbus_run() and every
 *                 blocking call run
 *   map.c         u64 -> pointer hash map (subscriptions, calls)
 *   sub.c         publish, subscriptions and deliveries (the hot path)
 *   req.c         pending requests matched by req_id: Ok/Error/Pong and the
 *                 answers of list/stats, asynchronous errors, ping/sync
 *   call.c        calls (async + blocking) with deadlines, replies
 *   names.c       take/release/query names, send to a name
 *   introspect.c  list clients, stats, presence decoding
 *   monitor.c     monitor mode
 *
 * Error convention (proto/errcode.h): internal functions return 0 (or a
 * count) on success and -errno on failure; the public API the same.
 *
 * Re-entrancy: user callbacks run from io_work() while a frame's body (which
 * points into bus->in) is live on the stack, and a callback may call a
 * blocking function that reads more input. While a frame is being handled
 * its bytes in the receive buffer are pinned (pin_data, pin_end): io.c never
 * moves or overwrites them; when it needs room it swaps in a fresh buffer
 * and retires the old one until the outermost frame handler returns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "lbus.h"
#include "lbus.pb-c.h"
#include "wire.h"

/* Publish batching: write when this much output is buffered. */
#define LBUS_OUT_BATCH (64u * 1024u)
/* Read chunk: the receive buffer always offers at least this much room. */
#define LBUS_IN_CHUNK (256u * 1024u)
/* Reads per lbus_dispatch() while the socket keeps filling the buffer. */
#define LBUS_READ_BUDGET 16
/* Waits used by connect/close and by list/stats without a timeout. */
#define LBUS_CONNECT_TIMEOUT_MS 5000
#define LBUS_CLOSE_FLUSH_MS 5000
#define LBUS_QUERY_TIMEOUT_MS 5000

/* ---- map.c: open-addressing hash map, u64 key (non-zero) -> pointer ----- */

struct lbus_map {
	struct lbus_map_slot *slots;
	size_t cap;   /* power of two, 0 when empty */
	size_t count;
};

struct lbus_map_slot {
	uint64_t key; /* 0 = free */
	void *value;
};

void lbus_map_init(struct lbus_map *m);
void lbus_map_deinit(struct lbus_map *m);
/* Insert or replace. 0 or -ENOMEM. */
int lbus_map_put(struct lbus_map *m, uint64_t key, void *value);
void *lbus_map_get(const struct lbus_map *m, uint64_t key);
/* Remove and return the value, NULL if absent. */
void *lbus_map_del(struct lbus_map *m, uint64_t key);

/* ---- the handle ----------------------------------------------------------- */

struct lbus_sub {
	uint64_t id;
	lbus_msg_fn fn;
	void *userdata;
	uint64_t missed; /* Dropped counts not yet reported */
	bool cancelling; /* lbus_unsubscribe() waits for the broker */
	bool discard;    /* ... and was called from this subscription's callback */
	bool responder;  /* answers calls (lbus_sub_opts.responder) */
	uint64_t left;   /* max_msgs: deliveries still to come; 0 = unlimited */
	bool expired;    /* had its last delivery while cancelling */
};

/* A subscription callback on the stack (innermost first). */
struct lbus_running {
	uint64_t sub_id;
	const struct lbus_running *up;
};

/* A blocking request waiting for its answer; lives on the waiter's stack. */
struct lbus_req {
	struct lbus_req *next;
	uint32_t id;     /* Frame.req_id (or Ping token) */
	uint32_t want;   /* LBUS_K_OK, _CLIENT_LIST, _STATS_REPLY or _PONG */
	bool done;
	int err;         /* 0 or -errno from an Error frame */
	uint64_t owner;  /* Ok.owner (query_name) */
	uint8_t *body;   /* copy of a CLIENT_LIST/STATS_REPLY body (malloc) */
	size_t body_len;
};

struct lbus_call;

struct lbus_retired {
	struct lbus_retired *next;
	uint8_t *data;
};

struct lbus {
	int fd;
	int dead;          /* 0, or -errno once the connection is lost/broken */
	bool welcomed;
	bool brk;          /* lbus_break() */
	bool lost_done;    /* pending work failed after the loss */
	uint64_t client_id;
	uint32_t max_frame;

	/* output: pending bytes are data[head..tail) */
	uint8_t *out;
	size_t out_cap, out_head, out_tail;

	/* input */
	struct lbus_rbuf in;
	unsigned frame_depth;          /* frame handlers on the stack */
	const uint8_t *pin_data;       /* buffer holding frames being handled */
	size_t pin_end;                /* ... up to this offset in it */
	struct lbus_retired *retired;  /* old input buffers, see above */

	/* publish: the last topic that passed validation (sub.c) */
	char *pub_topic;
	size_t pub_topic_len;

	/* subscriptions */
	struct lbus_map subs;
	const struct lbus_running *running;
	uint64_t next_sub_id;

	/* requests (req.c) */
	struct lbus_req *reqs;
	uint32_t next_req_id;

	/* calls (call.c): map by call_id and a min-heap by deadline */
	struct lbus_map calls;
	struct lbus_call **heap;
	size_t heap_len, heap_cap;
	uint64_t next_call_id;

	/* handlers */
	lbus_msg_fn msg_fn;
	void *msg_ud;
	lbus_msg_fn call_fn;
	void *call_ud;
	lbus_error_fn err_fn;
	void *err_ud;
	lbus_dropped_fn dropped_fn;
	void *dropped_ud;
	lbus_monitor_fn mon_fn;
	void *mon_ud;

	/* asynchronous errors without a handler */
	int last_err;
	char *last_reason;
	uint64_t n_errors;
};

/* ---- io.c ------------------------------------------------------------------ */

/* Monotonic clock in milliseconds. */
int64_t lbus__now_ms(void);
/* Absolute deadline for a relative timeout (< 0: none, returns -1). */
int64_t lbus__deadline(int timeout_ms);
/* Bytes of output not written yet. */
static inline size_t lbus__out_pending(const struct lbus *bus) { return bus->out_tail - bus->out_head; }
/* Room for n more output bytes; NULL on -ENOMEM. Commit with out_commit. */
uint8_t *lbus__out_reserve(struct lbus *bus, size_t n);
/* Make n reserved bytes part of the output; writes in a batch once
 * LBUS_OUT_BATCH bytes are pending, blocking (while still reading input, but
 * without running callbacks) until the kernel takes them. 0 or -errno. */
int lbus__out_commit(struct lbus *bus, size_t n);
/* Encode a generated frame into the output and commit it. -EMSGSIZE when it
 * exceeds the broker's max frame. */
int lbus__out_frame(struct lbus *bus, const Lbus__Frame *f);
/* Write buffered output until at most `keep` bytes remain, waiting at most
 * until deadline (-1: none). 0, -ETIMEDOUT or -errno. */
int lbus__out_drain(struct lbus *bus, size_t keep, int64_t deadline);
/* Record a lost/broken connection (first error wins). */
void lbus__io_fail(struct lbus *bus, int err);
/* Is a complete frame buffered and waiting for dispatch? */
bool lbus__in_ready(const struct lbus *bus);
/* Run the dispatch core until *done, the deadline (-1: none) or an error.
 * 0, -ETIMEDOUT, or the connection's error. */
int lbus__io_wait(struct lbus *bus, const bool *done, int64_t deadline);
/* Release the I/O buffers (close). */
void lbus__io_deinit(struct lbus *bus);

/* Run a user callback: marks the handle as inside a callback. */
#define LBUS_CALLBACK(bus, call) \
	do { \
		(bus)->frame_depth++; \
		call; \
		(bus)->frame_depth--; \
	} while (0)

/* ---- frame handlers: (bus, decoded frame) -> 0 or -EPROTO ------------------ */

int lbus__on_welcome(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_deliver(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_dropped(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_ok(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_error(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_ping(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_pong(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_answer(struct lbus *bus, const struct lbus_wire_frame *f);
int lbus__on_result(struct lbus *bus, const struct lbus_wire_frame *f);
/* Answer a call nobody here handles with ERR_NO_RESPONDERS, so its caller
 * fails at once (msg->topic names the target). */
void lbus__reply_refuse(struct lbus *bus, const struct lbus_msg *msg);
int lbus__on_monitor_event(struct lbus *bus, const struct lbus_wire_frame *f);

/* ---- req.c ----------------------------------------------------------------- */

/* A fresh non-zero req_id. */
uint32_t lbus__req_id(struct lbus *bus);
/* Register req (zeroed by the caller's initialiser) waiting for `want` and
 * give it a fresh id. */
void lbus__req_begin(struct lbus *bus, struct lbus_req *req, uint32_t want);
/* Flush, wait for the answer (deadline -1: none) and unregister. Returns the
 * Error frame's errno, -ETIMEDOUT, or the connection's error; req->body is
 * freed by the caller on success. */
int lbus__req_wait(struct lbus *bus, struct lbus_req *req, int64_t deadline);
/* Register req waiting for `want`, send f with its req_id and wait (see
 * lbus__req_wait). */
int lbus__req_call(struct lbus *bus, struct lbus_req *req, uint32_t want, Lbus__Frame *f, int64_t deadline);
/* lbus__req_call for an Ok/Error answer without a deadline. On success
 * *owner (if not NULL) is Ok.owner. */
int lbus__req_simple(struct lbus *bus, Lbus__Frame *f, uint64_t *owner);
/* Report an asynchronous error to the handler or keep it as the last one. */
void lbus__async_error(struct lbus *bus, int err, const char *what);
/* Fail every waiting request with err (connection lost). */
void lbus__req_fail_all(struct lbus *bus, int err);

/* ---- call.c ---------------------------------------------------------------- */

/* Milliseconds to the nearest call deadline, -1 for none. */
int lbus__calls_timeout(const struct lbus *bus, int64_t now);
/* Complete every call whose deadline passed with -ETIMEDOUT. */
void lbus__calls_expire(struct lbus *bus);
/* Complete every call with err (connection lost or closed). */
void lbus__calls_fail_all(struct lbus *bus, int err);
/* An Error frame answering a Call frame (matched by its req_id): true when a
 * call took it. */
bool lbus__calls_error(struct lbus *bus, uint32_t req_id, int err);
void lbus__calls_deinit(struct lbus *bus);

/* ---- sub.c ----------------------------------------------------------------- */

void lbus__pubsub_deinit(struct lbus *bus);
