/* SPDX-License-Identifier: MIT */
/*
 * Pending calls: the broker's side of request/reply.
 *
 * When a client calls, the broker picks a responder, assigns a call token
 * (unique for the broker's life, never 0) and remembers
 *     token -> (caller, caller's call_id, responder, deadline)
 * until the responder replies, the deadline passes, or either side leaves.
 * A call is in four indexes at once, so that every event costs only the
 * calls it concerns:
 *  - a hash table by token (a Reply finds its call in O(1));
 *  - a hash table by (caller, call_id): a caller's pending call ids are
 *    unique, checked in O(1) (calls_find_id);
 *  - the caller's and the responder's lists (struct calls_peer, embedded in
 *    the client): a responder that disconnects fails exactly its own calls
 *    with ERR_RESPONDER_GONE, a caller that disconnects drops its own;
 *  - a binary min-heap by deadline: the event loop sleeps until
 *    calls_next_deadline() and calls_expire() fails what is overdue with
 *    ERR_TIMEOUT.
 *
 * A client may call itself (caller == responder). On disconnect, call
 * calls_drop_caller() first, then calls_drop_responder(), so such a call is
 * dropped silently instead of "failed" towards a client that is going away.
 *
 * Ownership: the table owns struct call (calls_add allocates, every removal
 * frees); peers own nothing and must be dropped before they are freed.
 * Errors: 0 or -errno (-ENOMEM). Nothing here logs or sends: the callbacks
 * do the sending, in the broker.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hashtab.h"
#include "list.h"

/* Embedded in each client. */
struct calls_peer {
	struct list as_caller;	  /* struct call.caller_link */
	struct list as_responder; /* struct call.responder_link */
	uint32_t ncalls;	  /* pending calls made (as_caller's length) */
};

struct call {
	struct hashtab_node node;    /* by token */
	struct hashtab_node id_node; /* by (caller, call_id) */
	struct list caller_link;
	struct list responder_link;
	struct calls_peer *caller;
	struct calls_peer *responder;
	uint64_t token;	      /* broker-assigned, in Deliver.call_token */
	uint64_t call_id;     /* the caller's Call.call_id, for its CallResult */
	uint64_t deadline_ms; /* CLOCK_MONOTONIC milliseconds */
	size_t heap_idx;      /* position in the deadline heap */
};

struct calls {
	struct hashtab by_token;
	struct hashtab by_caller_id; /* a caller's call_ids are unique while pending */
	struct call **heap;	     /* min-heap by deadline_ms */
	size_t heap_len, heap_cap;
	uint64_t last_token;
	uint64_t rr; /* round-robin cursor for calls to a topic */
};

/* Called for a call that ends without a reply, just before it is freed.
 * It may queue frames but must not add or remove calls (a client that fails
 * meanwhile is closed later, by the event loop). */
typedef void (*calls_fn)(struct call *call, void *ud);

void calls_init(struct calls *c);
/* Free every pending call (silently). */
void calls_deinit(struct calls *c);
void calls_peer_init(struct calls_peer *p);

static inline size_t calls_pending(const struct calls *c)
{
	return c->heap_len;
}

/*
 * Remember a call routed from caller to responder; *out (if not NULL) gets
 * the new call, whose token goes into the responder's Deliver. 0 or -ENOMEM.
 */
int calls_add(struct calls *c, struct calls_peer *caller, uint64_t call_id, struct calls_peer *responder,
	      uint64_t deadline_ms, struct call **out);
/* The pending call with this token, or NULL (unknown, answered, expired). */
struct call *calls_find(const struct calls *c, uint64_t token);
/* caller's pending call with this call_id, or NULL. */
struct call *calls_find_id(const struct calls *c, const struct calls_peer *caller, uint64_t call_id);
/* Forget a call (after its reply was routed) and free it. */
void calls_remove(struct calls *c, struct call *call);

/* p is going away: forget the calls it made, without telling anyone. */
void calls_drop_caller(struct calls *c, struct calls_peer *p);
/* p is going away: fn (may be NULL) for each call it was answering (to send
 * ERR_RESPONDER_GONE to the caller), then forget them. */
void calls_drop_responder(struct calls *c, struct calls_peer *p, calls_fn fn, void *ud);

/* Earliest deadline pending, UINT64_MAX when there is none. */
uint64_t calls_next_deadline(const struct calls *c);
/* fn (may be NULL) for every call whose deadline is <= now_ms, earliest
 * first, then forget it. Returns how many expired. */
size_t calls_expire(struct calls *c, uint64_t now_ms, calls_fn fn, void *ud);

/* Round-robin choice among n > 0 candidates responding to calls to a topic:
 * successive calls get 0, 1, ..., n-1, 0, ... when n stays the same. */
size_t calls_pick(struct calls *c, size_t n);
