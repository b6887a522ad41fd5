/* SPDX-License-Identifier: MIT */
/*
 * A bus peer: one client of the bus, on top of its transport.
 *
 * Where the layers meet: struct peer embeds a struct conn (conn.h), the
 * transport, which knows sockets, bytes, frames and queues and nothing else.
 * Everything a frame means lives from here up: the peer's identity
 * (credentials, id, command), its state in the protocol (hello, ready), its
 * subscriptions, names, calls, monitor, route cache and cached Sender, the
 * flow-control waits between peers (blocked_on / waiters) and the message
 * counters. The transport reports its events to peer.c through
 * peer_conn_ops; peer.c turns them into bus actions (dispatch a frame, wake
 * the peers waiting on a drained queue, time out a hello, close).
 *
 * Life cycle: peer_new() (accept.c, after the credentials check) creates it
 * in PEER_HELLO; hello makes it PEER_READY; peer_close() (any time, also
 * from inside one of its own handlers) releases its names, subscriptions and
 * calls, wakes the peers waiting on it, closes the transport and moves the
 * struct to the broker's graveyard, where peer_free() frees it at the end of
 * the loop turn. After close, state is PEER_CLOSED and the bus ignores it.
 *
 * Flow control between peers: a peer whose next frame needs room in a full
 * queue waits (peer_wait_on): its input is paused and it is linked on the
 * target's waiters; when the target's queue drains below half of max_queue,
 * its waiters resume and their kept frame is handled again.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "calls.h"
#include "conn.h"
#include "list.h"
#include "names.h"

struct broker;
struct monitor;
struct route;

enum peer_state {
	PEER_HELLO,  /* connected, hello not yet received */
	PEER_READY,  /* welcomed */
	PEER_CLOSED, /* closed, waiting in the graveyard */
};

/* A frame handler could not proceed now: the frame stays buffered and is
 * handled again once the peer's wait ends (peer_wait_on). Positive. */
#define PEER_BLOCKED CONN_KEEP

/* Length of a peer's command name, NUL included (like /proc/PID/comm). */
#define PEER_COMM_MAX 16

struct peer_counters {
	uint64_t msgs_in, msgs_out, dropped, errors;
};

struct peer {
	struct conn conn; /* the transport */
	struct broker *broker;
	uint64_t id; /* unique for the broker's life, from 1 */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	enum peer_state state;
	uint64_t connected_at_ms; /* CLOCK_REALTIME */
	char comm[PEER_COMM_MAX]; /* /proc/PID/comm at connect, "" if unknown */
	struct list link;	  /* broker->peers, or broker->graveyard */

	struct list subs;	/* struct sub.peer_link, in subscription order */
	struct hashtab sub_ids; /* struct sub.id_node, by sub id (sub_find) */
	uint32_t nsubs;
	bool drops_pending; /* some subscription has an unreported drop count */
	struct name_owner names;
	uint8_t *sender; /* cached encoded Sender body */
	size_t sender_len;

	struct peer *blocked_on; /* peer whose full queue stops our input */
	struct list wait_link;	 /* in blocked_on->waiters */
	struct list waiters;	 /* peers blocked on our queue */

	struct route *route;	 /* the last route it published on (route.h) */
	struct calls_peer calls; /* pending calls made and answered */
	struct monitor *monitor; /* set once the peer asked to monitor */

	struct fdacct *fdacct;	 /* descriptors it has in the broker (fdset.h) */
	struct fdset *frame_fds; /* the frame being handled carries these
				  * (borrowed; fdset_ref() to keep), or NULL */

	struct peer_counters ctr; /* moved with the broker's: peer_count_* (broker.h) */
	/* NULL: trusted (the broker's uid or root), no rule is ever consulted;
	 * else the identity the access rules judge (access.h), owned. */
	struct policy_id *foreign;
};

static inline struct peer *peer_of(struct conn *c)
{
	return container_of(c, struct peer, conn);
}

/* The transport's events, handled by the bus (the broker's conn_loop ops). */
extern const struct conn_ops peer_conn_ops;

/* A new peer in PEER_HELLO on the accepted fd, with these credentials; NULL
 * when it could not be set up (logged; the fd is closed). */
struct peer *peer_new(struct broker *b, int fd, pid_t pid, uid_t uid, gid_t gid);
/* Close the peer (safe from inside handlers; freed later). */
void peer_close(struct peer *c, const char *why);
/* Free a closed peer (graveyard only). */
void peer_free(struct peer *c);

/* Stop handling c's input until `target`'s queue drains below half, or
 * (recheck_ms > 0, monotonic) until then at the latest: a stall_ms
 * subscription of target may start dropping by that time (router.c). */
void peer_wait_on(struct peer *c, struct peer *target, int64_t recheck_ms);
/* Resume every peer waiting on c's queue now, whatever it holds: what made
 * them wait may be gone (a block subscription of c removed, expired or
 * replaced). Each handles its kept frame again at the end of the turn and
 * waits again if it still must. */
void peer_wake_waiters(struct peer *c);
/* c's first name changed: rebuild its cached encoded Sender. */
void peer_sender_changed(struct peer *c);
