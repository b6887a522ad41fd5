/* SPDX-License-Identifier: MIT */
/*
 * Private header of liblbus (not installed). The library is split by concern,
 * like ubus's libubus-io.c/-req.c/-sub.c:
 *
 *   client.c      connect (options), hello/welcome, close, small accessors,
 *                 strerror
 *   io.c          output buffer (written at once outside callbacks, gathered
 *                 inside them and with LBUS_MORE), reading into the rbuf,
 *                 the frame dispatch table, the one dispatch core (io_work,
 *                 io_wait) that lbus_dispatch(), lbus_run() and every
 *                 blocking call run
 *   map.c         u64 -> pointer hash map (subscriptions, calls)
 *   sub.c         publish, subscriptions and deliveries (the hot path)
 *   req.c         pending requests matched by req_id: Ok/Error/Pong and the
 *                 answers of list/stats, asynchronous requests (the _async
 *                 twins) with deadlines, asynchronous errors, ping/sync
 *   call.c        calls (async + blocking) with deadlines, cancel, replies
 *   names.c       take/release/query names, send to a name
 *   introspect.c  list clients, stats, presence decoding
 *   fds.c         file descriptors with frames: attachments to output,
 *                 batches of input, lbus_msg_take_fd()
 *   memfd.c       payloads offloaded to sealed memfds
 *   monitor.c     monitor mode
 *   reconnect.c   reconnect mode: backoff, the stable fd, re-taking names
 *                 and re-subscribing, the publishes kept meanwhile
 *
 * Internal names carry their file's prefix (client_, io_, idmap_, sub_,
 * req_, call_/calls_, names_, monitor_); lbus_ is for what lbus.h declares
 * (and proto/'s shared library code).
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

#include <sys/socket.h>

#include "frame.h"
#include "lbus-limits.h"
#include "lbus.h"
#include "lbus.pb-c.h"
#include "wire.h"

/* Read chunk: the receive buffer always offers at least this much room. */
#define IO_IN_CHUNK (256u * 1024u)
/* Reads per lbus_dispatch() while the socket keeps filling the buffer. */
#define IO_READ_BUDGET 16

/* ---- map.c: open-addressing hash map, u64 key (non-zero) -> pointer ------ */

struct idmap {
	struct idmap_slot *slots;
	size_t cap; /* power of two, 0 when empty */
	size_t count;
};

struct idmap_slot {
	uint64_t key; /* 0 = free */
	void *value;
};

void idmap_init(struct idmap *m);
void idmap_deinit(struct idmap *m);
/* Insert or replace. 0 or -ENOMEM. */
int idmap_put(struct idmap *m, uint64_t key, void *value);
void *idmap_get(const struct idmap *m, uint64_t key);
/* Remove and return the value, NULL if absent. */
void *idmap_del(struct idmap *m, uint64_t key);

/* ---- the handle ----------------------------------------------------------- */

struct sub {
	uint64_t id;
	lbus_msg_fn fn;
	void *userdata;
	uint64_t missed; /* Dropped counts not yet reported */
	bool cancelling; /* lbus_unsubscribe() waits for the broker */
	bool discard;	 /* ... and was called from this subscription's callback */
	bool responder;	 /* answers calls (lbus_sub_opts.responder) */
	uint64_t left;	 /* max_msgs: deliveries still to come; 0 = unlimited */
	bool expired;	 /* had its last delivery while cancelling */
	uint64_t shed;	 /* deliveries the library dropped (input bound), to
			  * report to the lbus_on_dropped() handler */
	/* reconnect mode only (else NULL): what to subscribe again */
	char *pattern;
	char *group;
	bool block;
	uint32_t stall_ms;
};

/* Free a subscription and what it keeps for reconnecting. */
void sub_free(struct sub *s);

/* A subscription callback on the stack (innermost first). */
struct sub_running {
	uint64_t sub_id;
	const struct sub_running *up;
};

/* A request waiting for its answer: a blocking one lives on the waiter's
 * stack (fn NULL); an asynchronous one is allocated and completed by
 * running fn once. */
struct req {
	struct req *next;
	uint32_t id;   /* Frame.req_id (or Ping token) */
	uint32_t want; /* LBUS_K_OK, _CLIENT_LIST, _STATS_REPLY or _PONG */
	bool done;
	int err;	/* 0 or -errno from an Error frame */
	uint64_t owner; /* Ok.owner (query_name) */
	uint8_t *body;	/* copy of a CLIENT_LIST/STATS_REPLY body (malloc) */
	size_t body_len;
	lbus_done_fn fn; /* asynchronous: the user's completion */
	void *userdata;
	int64_t deadline; /* asynchronous: -1 for none */
	uint64_t sub_id;  /* asynchronous subscribe: forgotten if it fails */
};

struct call;

/* The state of the link in reconnect mode (reconnect.c). */
enum rc_link {
	RC_UP = 0, /* connected and welcomed (always, without reconnect mode) */
	RC_DOWN,   /* lost: waiting for the next attempt */
	RC_HELLO   /* a new socket: hello and the replay sent, no Welcome yet */
};

struct rc_state {
	bool enabled;
	bool replaying; /* the replay frames are being buffered */
	bool notify;	/* the loss is still to be reported (io_work) */
	int notify_err;
	enum rc_link link;
	int min_ms, max_ms;
	size_t buffer;	  /* lbus_connect_opts.reconnect_buffer */
	unsigned attempt; /* failed attempts since the last welcome */
	int64_t due;	  /* DOWN: next attempt; HELLO: give up (-1: never) */
	uint64_t rng;
	char path[108]; /* the resolved socket path */
	lbus_connection_fn fn;
	void *ud;
	char **names; /* names owned, to take again */
	size_t n_names, cap_names;
	char *monitor; /* monitor pattern ("" = all), NULL: not a monitor */
};

/* Descriptors of one frame (fds.c). */
struct io_fds {
	int fds[LBUS_MAX_FDS_PER_FRAME];
	uint32_t n;
};
/* Output: descriptors to send with the frame starting at stream offset at. */
struct io_attach {
	struct io_attach *next;
	uint64_t at;
	int fds[LBUS_MAX_FDS_PER_FRAME];
	uint32_t n;
};
/* Input: descriptors one read brought, with that read's stream range. */
struct io_batch {
	struct io_batch *next;
	uint64_t read_start, read_end;
	int fds[LBUS_MAX_FDS_PER_FRAME];
	uint32_t n;
};
/* Room for one frame's SCM_RIGHTS, aligned for struct cmsghdr. */
union io_cmsg {
	char buf[CMSG_SPACE(LBUS_MAX_FDS_PER_FRAME * sizeof(int))];
	struct cmsghdr align;
};

struct io_retired {
	struct io_retired *next;
	uint8_t *data;
};

struct lbus {
	int fd;
	int dead; /* 0, or -errno once the connection is lost/broken */
	bool welcomed;
	bool brk;	/* lbus_break() */
	bool lost_done; /* pending work failed after the loss */
	uint64_t client_id;
	uint32_t max_frame;
	int timeout_ms; /* the connection's timeout (lbus_connect_opts) */

	/* output: pending bytes are data[head..tail); out_mark <= head is the
	 * start of the first frame not completely written */
	uint8_t *out;
	size_t out_cap, out_head, out_tail, out_mark;
	size_t out_batch;			      /* lbus_connect_opts.publish_buffer */
	unsigned dispatching;			      /* io_work() on the stack: sends are gathered */
	uint64_t out_lost;			      /* frames lost with the connection */
	uint64_t out_pos;			      /* bytes written since connect: out_head's offset */
	struct io_attach *attach_head, **attach_tail; /* fds.c */
	int attach_fds[LBUS_MAX_FDS_PER_FRAME];	      /* for the next frame committed */
	uint32_t attach_n;

	/* input */
	struct lbus_rbuf in;
	unsigned frame_depth;			   /* frame handlers on the stack */
	const uint8_t *pin_data;		   /* buffer holding frames being handled */
	size_t pin_end;				   /* ... up to this offset in it */
	struct io_retired *retired;		   /* old input buffers, see above */
	size_t in_bound;			   /* lbus_connect_opts.input_buffer */
	bool any_broker_uid;			   /* lbus_connect_opts.any_broker_uid */
	bool shed_pending;			   /* some sub has shed > 0 */
	size_t memfd_threshold;			   /* lbus_connect_opts; 0: no offload */
	bool memfd_keep_fd;			   /* lbus_connect_opts: hand the payload's memfd too */
	uint64_t in_pos;			   /* stream offset of in.start */
	struct io_batch *batch_head, **batch_tail; /* received descriptors */
	struct io_fds *frame_fds;		   /* the handled frame's, or NULL */

	/* publish: the last topic that passed validation (sub.c) */
	char *pub_topic;
	size_t pub_topic_len;

	/* subscriptions */
	struct idmap subs;
	const struct sub_running *running;
	uint64_t next_sub_id;

	/* requests (req.c) */
	struct req *reqs;
	uint32_t next_req_id;

	/* calls (call.c): map by call_id and a min-heap by deadline */
	struct idmap calls;
	struct call **heap;
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

	/* reconnect mode (reconnect.c) */
	struct rc_state rc;

	/* asynchronous errors without a handler */
	int last_err;
	char *last_reason;
	uint64_t n_errors;
	char *request_reason; /* the broker's reason for the last refused request */
};

/* ---- io.c ------------------------------------------------------------------ */

/* Monotonic clock in milliseconds. */
int64_t io_now_ms(void);
/* Absolute deadline for a timeout (lbus.h "Timeouts"; < 0: none, -1). */
int64_t io_deadline(int timeout_ms);
/* Bytes of output not written yet. */
static inline size_t io_out_pending(const struct lbus *bus)
{
	return bus->out_tail - bus->out_head;
}
/* Frames of output not completely written yet. */
size_t io_out_frames(const struct lbus *bus);
/* Room for n more output bytes; NULL on -ENOMEM. Commit with io_out_commit. */
uint8_t *io_out_reserve(struct lbus *bus, size_t n);
/* Make n reserved bytes (one frame) part of the output and send it (lbus.h,
 * "Sending"): inside a dispatch turn or with `more`, it is gathered until
 * out_batch bytes are pending; otherwise everything pending is written now.
 * Waits (reading input, running no callbacks) at most the connection's
 * timeout while the socket is full. 0, -ETIMEDOUT (the frame stays
 * buffered) or -errno. */
int io_out_commit(struct lbus *bus, size_t n, bool more);
/* Encode a generated frame into the output and commit it. -EMSGSIZE when it
 * exceeds the broker's max frame. */
int io_out_frame(struct lbus *bus, const Lbus__Frame *f);
/* Write buffered output until at most `keep` bytes remain, waiting at most
 * until deadline (-1: none). 0, -ETIMEDOUT or -errno. */
int io_out_drain(struct lbus *bus, size_t keep, int64_t deadline);
/* Record a lost/broken connection (first error wins). */
void io_fail(struct lbus *bus, int err);
/* Is a complete frame buffered and waiting for dispatch? */
bool io_in_ready(const struct lbus *bus);
/* Run the dispatch core until *done, the deadline (-1: none) or an error.
 * 0, -ETIMEDOUT, or the connection's error. */
int io_wait(struct lbus *bus, const bool *done, int64_t deadline);
/* Release the I/O buffers (close). */
void io_deinit(struct lbus *bus);

/* ---- fds.c ------------------------------------------------------------------ */
/* Close the non-negative fds[0..n), setting them to -1. */
void io_fds_close(int *fds, size_t n);
/* Duplicate fds for the next frame committed (io_out_commit attaches them).
 * 0, -EINVAL (more than LBUS_MAX_FDS_PER_FRAME), -EOPNOTSUPP (reconnect
 * mode) or -errno. */
int io_attach_prepare(struct lbus *bus, const int *fds, size_t nfds);
/* Close the prepared duplicates (the frame was not queued). */
void io_attach_cancel(struct lbus *bus);
/* The frame of frame_size bytes that ends the pending output takes the
 * prepared descriptors. 0 or -ENOMEM (closed). */
int io_attach_commit(struct lbus *bus, size_t frame_size);
/* Close every attachment (the output was discarded). */
void io_attach_clear(struct lbus *bus);
/* For a sendmsg() of len pending bytes at out_pos: attach the head's
 * descriptors when it starts there, and return how many bytes to send so
 * that the next attachment starts a sendmsg() of its own. */
size_t io_attach_limit(const struct lbus *bus, size_t len, struct msghdr *mh, union io_cmsg *cbuf);
/* After out_pos advanced: close the head's descriptors once sent. */
void io_attach_sent(struct lbus *bus);
/* Queue the descriptors of a recvmsg() that read [start, end). 0 or -EPROTO
 * (truncated, too many: closed). */
int io_batch_collect(struct lbus *bus, struct msghdr *mh, uint64_t start, uint64_t end);
/* The n descriptors of the frame at frame_pos into out (n 0: none).
 * -EPROTO when they did not come with its first byte. */
int io_batch_claim(struct lbus *bus, uint64_t frame_pos, uint32_t n, struct io_fds *out);
/* Close batches no frame can claim any more (read before in_pos). */
void io_batch_drop_stale(struct lbus *bus);
void io_batch_clear(struct lbus *bus);

/* ---- memfd.c ---------------------------------------------------------------- */
/* Room for a copy of the message whose payload is offloaded. */
union memfd_msg {
	Lbus__Publish publish;
	Lbus__Send send;
	Lbus__Call call;
	Lbus__Reply reply;
};
/* Would a payload of len bytes be offloaded now? */
bool memfd_wants(const struct lbus *bus, size_t len);
/* If g's payload is to be offloaded: a sealed memfd with it becomes the
 * first prepared descriptor, g's message (copied into copy) gets an empty
 * payload and payload_memfd. 0 or -errno. */
int memfd_offload_frame(struct lbus *bus, Lbus__Frame *g, union memfd_msg *copy);
/* Check that fd is a memfd sealed against change and map it read-only:
 * *data, *len. 0, -EBADMSG (not sealed) or -errno. */
int memfd_map(int fd, const void **data, size_t *len);
void memfd_unmap(const void *data, size_t len);
/* A received memfd payload (the first of *fds): mapped into *data, *len;
 * it leaves *fds unless memfd_keep_fd. -EBADMSG (reported) when it is not
 * a sealed memfd. Unmap with memfd_unmap() after the callback. */
int sub_memfd_payload(struct lbus *bus, const void **data, size_t *len, const int **fds, size_t *nfds);

/* ---- client.c ------------------------------------------------------------- */

/* Open a socket to path (non-blocking connect until deadline, the trust
 * checks of lbus_connect(): the directory is no symbolic link, the broker
 * runs as our effective user or root unless any_uid). The fd or -errno. */
int client_socket_open(const char *path, bool any_uid, int64_t deadline);
/* Buffer the Hello frame. */
int client_send_hello(struct lbus *bus);

/* ---- reconnect.c ----------------------------------------------------------- */

/* Set up reconnect mode from the options (path resolved). */
void rc_init(struct lbus *bus, const struct lbus_connect_opts *opts, const char *path);
void rc_deinit(struct lbus *bus);
/* Reconnect mode and not connected: publishes are kept, requests refused. */
static inline bool rc_down(const struct lbus *bus)
{
	return bus->rc.link != RC_UP;
}
/* The connection's error is one reconnect mode recovers from. */
bool rc_recoverable(const struct lbus *bus);
/* The connection is lost (bus->dead recoverable): switch to RC_DOWN without
 * running callbacks (reported by rc_tick). */
void rc_lost(struct lbus *bus);
/* From io_work(): report a loss, attempt a connection when due, give up a
 * hello that takes too long. */
void rc_tick(struct lbus *bus);
/* Milliseconds to the next reconnect event, -1 for none. */
int rc_timeout(const struct lbus *bus, int64_t now);
/* A Welcome arrived. */
void rc_on_welcome(struct lbus *bus);
/* Remember what to restore: a name taken or released, a monitor. */
void rc_name_add(struct lbus *bus, const char *name);
void rc_name_del(struct lbus *bus, const char *name);
void rc_monitor_set(struct lbus *bus, const char *pattern);
/* lbus_name_take_async()'s completion that remembers the name. */
int rc_take_async(struct lbus *bus, Lbus__Frame *f, const char *name, lbus_done_fn fn, void *userdata);

/* ---- frame handlers: (bus, decoded frame) -> 0 or -EPROTO ------------------ */

int client_on_welcome(struct lbus *bus, const struct lbus_wire_frame *f);
int sub_on_deliver(struct lbus *bus, const struct lbus_wire_frame *f);
int sub_on_dropped(struct lbus *bus, const struct lbus_wire_frame *f);
int req_on_ok(struct lbus *bus, const struct lbus_wire_frame *f);
int req_on_error(struct lbus *bus, const struct lbus_wire_frame *f);
int req_on_ping(struct lbus *bus, const struct lbus_wire_frame *f);
int req_on_pong(struct lbus *bus, const struct lbus_wire_frame *f);
int req_on_answer(struct lbus *bus, const struct lbus_wire_frame *f);
int call_on_result(struct lbus *bus, const struct lbus_wire_frame *f);
/* Answer a call nobody here handles with ERR_NO_RESPONDERS, so its caller
 * fails at once (msg->topic names the target). */
void call_reply_refuse(struct lbus *bus, const struct lbus_msg *msg);
int monitor_on_event(struct lbus *bus, const struct lbus_wire_frame *f);

/* ---- req.c ----------------------------------------------------------------- */

/* A fresh non-zero req_id. */
uint32_t req_next_id(struct lbus *bus);
/* Register req (zeroed by the caller's initialiser) waiting for `want` and
 * give it a fresh id. */
void req_begin(struct lbus *bus, struct req *req, uint32_t want);
/* Flush, wait for the answer (deadline -1: none) and unregister. Returns the
 * Error frame's errno, -ETIMEDOUT, or the connection's error; req->body is
 * freed by the caller on success. */
int req_wait(struct lbus *bus, struct req *req, int64_t deadline);
/* Register req waiting for `want`, send f with its req_id and wait (see
 * req_wait). */
int req_call(struct lbus *bus, struct req *req, uint32_t want, Lbus__Frame *f, int64_t deadline);
/* req_call for an Ok/Error answer within the connection's timeout. On
 * success *owner (if not NULL) is Ok.owner. */
int req_simple(struct lbus *bus, Lbus__Frame *f, uint64_t *owner);
/* Send f as an asynchronous request answered by Ok/Error: fn runs once with
 * the result (within the connection's timeout). sub_id: a subscription to
 * forget if it fails (0: none). 0 or -errno (then fn never runs). */
int req_async(struct lbus *bus, Lbus__Frame *f, uint64_t sub_id, lbus_done_fn fn, void *userdata);
/* Milliseconds to the nearest asynchronous request deadline, -1 for none. */
int req_timeout(const struct lbus *bus, int64_t now);
/* Complete every asynchronous request whose deadline passed (-ETIMEDOUT). */
void req_expire(struct lbus *bus);
/* Report an asynchronous error to the handler or keep it as the last one. */
void req_async_error(struct lbus *bus, int err, const char *what);
/* Fail every waiting request with err (connection lost or closed). */
void req_fail_all(struct lbus *bus, int err);

/* ---- call.c ---------------------------------------------------------------- */

/* Milliseconds to the nearest call deadline, -1 for none. */
int calls_timeout(const struct lbus *bus, int64_t now);
/* Complete every call whose deadline passed with -ETIMEDOUT. */
void calls_expire(struct lbus *bus);
/* Complete every call with err (connection lost or closed). */
void calls_fail_all(struct lbus *bus, int err);
/* An Error frame answering a Call frame (matched by its req_id): true when a
 * call took it. */
bool calls_error(struct lbus *bus, uint32_t req_id, int err);
void calls_deinit(struct lbus *bus);

/* ---- sub.c ----------------------------------------------------------------- */

/* Input over its bound while a send waits (io.c): is this buffered frame a
 * publish delivery to drop? If so it is counted as dropped for its
 * subscription (s->missed, or s->shed for the handler). */
bool sub_shed(struct lbus *bus, const uint8_t *body, uint32_t len);
/* Report every subscription's shed count to the lbus_on_dropped() handler. */
void sub_report_shed(struct lbus *bus);
/* Forget a subscription (a failed asynchronous subscribe). */
void sub_forget(struct lbus *bus, uint64_t sub_id);
void sub_deinit_all(struct lbus *bus);
