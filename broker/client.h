/* SPDX-License-Identifier: MIT */
/*
 * One client connection: credentials, framing of its input, its out queue,
 * its subscriptions and names, flow-control links, counters.
 *
 * Life cycle: client_accept() creates it in CLIENT_HELLO; hello makes it
 * CLIENT_READY; client_close() (any time, also from inside one of its own
 * handlers) releases its names and subscriptions, wakes publishers waiting
 * on it, closes the fd and moves the struct to the broker's graveyard, where
 * it is freed at the end of the loop turn. After close, state is
 * CLIENT_CLOSED and every function here ignores it.
 *
 * Handler return convention (dispatch.h): 0 handled; CLIENT_BLOCKED the frame
 * could not be handled now and stays in the input buffer; -errno the
 * connection was closed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "calls.h"
#include "list.h"
#include "names.h"
#include "outq.h"
#include "frame.h"
#include "wire.h"

struct broker;
struct route_cache;

enum client_state {
	CLIENT_HELLO,  /* connected, hello not yet received */
	CLIENT_READY,  /* welcomed */
	CLIENT_CLOSED, /* closed, waiting in the graveyard */
};

/* A handler could not proceed: input stays buffered (positive, not an error). */
#define CLIENT_BLOCKED 1

struct client_counters {
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out, dropped, errors;
};

struct client {
	struct broker *broker;
	int fd;
	enum client_state state;
	uint32_t events;        /* epoll events registered */
	bool registered;        /* fd is in the epoll set */
	bool peer_hup;          /* peer hung up while we were not reading */
	uint64_t id;            /* unique for the broker's life, from 1 */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint32_t max_frame;     /* agreed in hello/welcome */
	uint64_t connected_at_ms; /* CLOCK_REALTIME */

	struct lbus_rbuf rbuf;  /* unprocessed input; empty (no memory) when idle */
	size_t rbuf_need;       /* bytes the pending partial frame needs, 0 if none */
	struct outq outq;
	bool rbuf_scratch;      /* rbuf is the broker's scratch, lent for one read */
	bool write_blocked;     /* socket was full: EPOLLOUT armed */
	bool drops_pending;     /* some subscription has an unreported drop count */

	struct list link;          /* broker->clients */
	struct list flush_link;    /* broker->flush */
	struct list ready_link;    /* broker->ready */
	struct list deadline_link; /* broker->deadlines */
	int64_t deadline_ms;       /* hello or frame deadline, or when a waiting
				    * publisher re-checks a stalled target (monotonic) */
	int64_t progress_ms;       /* last write that the socket took, or when
				    * output last started waiting (monotonic) */

	struct list subs;       /* struct sub.client_link, in subscription order */
	uint32_t nsubs;
	struct name_owner names;
	uint8_t *sender;        /* cached encoded Sender body */
	size_t sender_len;

	struct client *blocked_on; /* client whose full queue stops our input */
	struct list wait_link;     /* in blocked_on->waiters */
	struct list waiters;       /* clients blocked on our queue */

	struct route_cache *route_cache; /* router.c: last topic's targets */
	struct calls_peer calls;   /* pending calls made and answered */
	struct monitor *monitor;   /* set once the client asked to monitor */
	char comm[16];             /* /proc/PID/comm at connect, "" if unknown */

	struct client_counters ctr;
};

/* Accept every pending connection on the listener (bounded per call). */
void client_accept_all(struct broker *b);
/* Handle epoll events for c. */
void client_on_events(struct client *c, uint32_t events);
/* Process c's buffered input again (after it was unblocked). */
void client_resume(struct client *c);
/* Close the connection (safe from inside handlers; freed later). */
void client_close(struct client *c, const char *why);
/* Free a closed client (graveyard only). */
void client_free(struct client *c);

/* Set (when_ms > 0, monotonic) or clear (0) c's hello/frame deadline. */
void client_set_deadline(struct client *c, int64_t when_ms);
/* Try to write c's queue now; closes c on a write error. For the end of
 * the loop turn and epoll events, never from inside a frame handler. */
void client_flush(struct client *c);
/*
 * Try to write c's queue now, from inside a frame handler (c may be the
 * client whose frame is being handled, or one the handler holds pointers
 * to): a write error does not close c here; c stays on the flush list,
 * whose end-of-turn client_flush() meets the error again and closes it.
 */
void client_write_now(struct client *c);
/* Recompute and apply c's epoll events (input paused while blocked/stopping). */
void client_update_events(struct client *c);

/* Is c's queue too full to take `add` more bytes? (An empty queue takes any.) */
bool client_queue_full(const struct client *c, size_t add);
/*
 * Queue raw frame bytes: hdr (<= OUTQ_HDR_MAX bytes, copied) then buf's
 * bytes; takes over the reference to buf. Schedules the write. 0 or -ENOMEM.
 */
int client_queue(struct client *c, struct msgbuf *buf, const void *hdr, size_t hlen);
/*
 * Reserve len bytes at the end of c's queue for a small frame the caller
 * writes there at once (copied into the queue's chunk, see outq.h).
 * Schedules the write. NULL on ENOMEM or when c is closed.
 */
uint8_t *client_queue_reserve(struct client *c, size_t len);
/* Pack and queue any generated frame (small ones are copied into the
 * queue's chunk). 0 or -ENOMEM. */
int client_queue_frame(struct client *c, const Lbus__Frame *f);
/* Queue Ok{request, owner} for the frame f (echoes its req_id). */
int client_send_ok(struct client *c, const struct lbus_wire_frame *f, uint64_t owner);
/* Queue a non-fatal Error naming the request f (kind and req_id). */
int client_send_error(struct client *c, const struct lbus_wire_frame *f, uint32_t code, const char *reason);
/*
 * Protocol violation: log once (id, pid, uid, reason), send a fatal Error
 * (request/req_id from f if not NULL), close. Returns -EPROTO.
 */
int client_fatal(struct client *c, const struct lbus_wire_frame *f, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Stop processing c's input until `target`'s queue drains below half, or
 * (recheck_ms > 0, monotonic) until then at the latest: a stall_ms
 * subscription of target may start dropping by that time (router.c). */
void client_wait_on(struct client *c, struct client *target, int64_t recheck_ms);
/* c was waiting (client_wait_on) and its recheck time came: it goes back
 * to the ready list, to route its pending frame again. */
void client_wait_recheck(struct client *c);
/* Encoded Sender of c (cached; rebuilt by client_sender_changed). */
void client_sender_changed(struct client *c);
