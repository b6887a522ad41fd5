/* SPDX-License-Identifier: MIT */
/*
 * The local side of lbus-bridge: one connection to the bus that subscribes
 * the `out` routes, owns the bridge's status name, and comes back by itself
 * when the bus goes away.
 *
 * Coming back is liblbus's reconnect mode (lbus.h "Reconnecting"): the
 * library retries with backoff and jitter (100 ms doubling to 5 s), takes
 * the name again and re-subscribes every route. This module adds what the
 * bridge needs on top, and logs one line each way:
 * - The first connection: the library reconnects a handle it has, so until
 *   the bus has been reached once (and after a reset, below) this module
 *   retries lbus_connect_with() itself, with the same backoff.
 * - The restore is checked: once reconnected, the bridge takes its name
 *   again itself (an owner may take its own name again; the broker answers
 *   in order, so that answer comes after the library's replay). Until it
 *   is answered the link is not up. A name another client took meanwhile,
 *   or a route the new bus refuses, resets the connection: the handle is
 *   closed and the bridge connects anew as at start (a bus that refuses a
 *   route pattern is then fatal, as at start).
 * - Nothing is kept for a bus that is not up: blocal_publish() refuses
 *   (-ENOTCONN) from the moment a publish finds the connection lost until
 *   the restore is confirmed, so the library's reconnect buffer stays
 *   unused and every message it lost with a connection is reported
 *   (on_state()'s unsent, from lbus_unsent()).
 *
 * Own messages: the bus stamps every delivery with its sender. A delivery is
 * the bridge's own when its sender is this connection, or this process
 * (pid and uid as the bus sees them, learnt from the bus at connect), so a
 * retained message the bridge published before a reconnect is recognised too.
 *
 * Flow: out subscriptions use the block policy with a 2 s stall bound, so
 * while the bridge keeps up nothing is lost; blocal_pause() stops reading
 * (the bus then holds the publishers back) while the outgoing queue is full.
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bridge-config.h"
#include "lbus.h"

struct blocal_ops {
	/* A delivery on out route r; own: the bridge itself sent it. */
	void (*on_publish)(void *ud, const struct bridge_route *r, const struct lbus_msg *msg, bool own);
	/* The bus dropped count messages of an out subscription. */
	void (*on_dropped)(void *ud, uint64_t count);
	/* A call to the bridge's name; answer it on bus. */
	void (*on_call)(void *ud, lbus *bus, const struct lbus_msg *msg);
	/* The connection is up (subscribed, name owned) or went down; unsent:
	 * the messages for the bus that went down with it. */
	void (*on_state)(void *ud, bool up, uint64_t unsent);
};

struct blocal_sub {
	struct blocal *l;
	const struct bridge_route *r;
};

struct blocal {
	const struct bridge_config *cfg;
	const struct blocal_ops *ops;
	void *ud;
	lbus *bus;	 /* NULL until connected (reconnect mode from then on) */
	uint64_t own_id; /* this connection's client id */
	pid_t own_pid;	 /* this process as the bus sees it, 0 if unknown */
	uid_t own_uid;
	struct blocal_sub *subs; /* one per out route */
	size_t n_subs;
	size_t lost_base;    /* lbus_unsent() already reported as lost */
	int64_t retry_at_ms; /* while bus is NULL: the next attempt */
	int backoff_ms;
	bool up;	/* name owned, routes subscribed: publishing allowed */
	bool restoring; /* reconnected: the bridge's own name take is pending */
	bool reset;	/* the restore failed: close and connect anew */
	bool paused;
	bool failing; /* the failure of this outage was logged */
	bool fatal;   /* the bus refused the configuration: give up */
	unsigned seed;
};

/* Set up (no connection yet: the first attempt happens in blocal_handle()).
 * 0 or -ENOMEM. */
int blocal_init(struct blocal *l, const struct bridge_config *cfg, const struct blocal_ops *ops, void *ud);
/* Close the connection and free. */
void blocal_free(struct blocal *l);

/* Poll integration: the fd (-1 before the first connection; while the
 * library reconnects, a descriptor that never becomes ready), its events,
 * and the time in ms until blocal_handle() must run anyway (-1: none). */
int blocal_fd(const struct blocal *l);
short blocal_events(const struct blocal *l);
int blocal_timeout(const struct blocal *l, int64_t now_ms);
/* Do the work due: connect when it is time, dispatch what arrived (and
 * with it the library's reconnect attempts). */
void blocal_handle(struct blocal *l, short revents, int64_t now_ms);

/* Stop (true) or resume reading the bus. */
void blocal_pause(struct blocal *l, bool pause);

/* Publish on the bus, gathered (LBUS_MORE) and written by the poll loop
 * (blocal_events() asks for POLLOUT): 0, -ENOTCONN while not up, or
 * lbus_publish()'s error. A publish that finds the connection lost gives 0:
 * it is counted by lbus_unsent(), so among the unsent that on_state()
 * reports when the loss is dispatched. */
int blocal_publish(struct blocal *l, const char *topic, const void *data, size_t len, bool retain);

/* Did the bridge itself send this (see the top comment)? */
bool blocal_own(const struct blocal *l, const struct lbus_sender *s);
