/* SPDX-License-Identifier: MIT */
/*
 * The access rules at work in the broker: who is trusted, the identity of
 * the others (read once, at accept), and the checks of their operations.
 *
 * A peer of the broker's own uid or root is trusted: peer->foreign is NULL
 * and no rule is ever consulted for it (every check below is behind an
 * `if (c->foreign)`), so the broker's own traffic pays one pointer test.
 * Every other peer carries its identity (uid, gid, supplementary groups
 * from SO_PEERGROUPS) and is judged by the rules of b->cfg.policy as they
 * are at each operation, so a reload applies to its next one.
 *
 * A refused operation is answered with an Error ERR_DENIED (a call: a
 * CallResult ERR_DENIED) whose reason names the operation, its object and
 * the pattern of the rule that refused it; the peer's error count grows,
 * monitors see a MON_ERROR event, and the connection stays usable.
 *
 * What each verb guards: connect (accept.c), publish (router.c), subscribe
 * and every delivery (subscription.c, route.c: filtered per route, so the
 * cost is paid when a route is built, not per message), own (naming.c),
 * send (router.c), call (callreply.c: as the target resolves), monitor
 * (monitor.c: the request, and each event shown to a foreign monitor),
 * introspect (introspect.c: list and stats; here: the broker's own '$'
 * topics, whose presence events carry other users' pids and commands).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "policy.h"
#include "wire.h"

struct broker;
struct peer;

/* The broker's own uid and root may do everything. */
bool access_trusted(const struct broker *b, uid_t uid);

/* The identity of the peer on fd (its credentials cr and its supplementary
 * groups), or NULL without memory. */
struct policy_id *access_id_read(int fd, const struct ucred *cr);
void access_id_free(struct policy_id *id);

/* May the foreign identity id connect? */
bool access_may_connect(const struct broker *b, const struct policy_id *id);

/*
 * Is the foreign peer c refused verb on object[0..len) (kind as in
 * policy.h)? false: go on. true: c was answered (the request f refused);
 * the handler returns *ret (0, or -ENOMEM).
 */
bool access_denied(struct peer *c, const struct lbus_wire_frame *f, enum policy_verb verb,
		   enum policy_object kind, const char *object, size_t len, int *ret);

/* Subscribing: is the pattern[0..len) refused because it can match no topic
 * c may subscribe to? As access_denied(). */
bool access_subscribe_denied(struct peer *c, const struct lbus_wire_frame *f, const char *pattern, size_t len,
			     int *ret);

/* May the foreign peer c receive a message on topic[0..len)? The broker's
 * own topics ('$': presence events) need introspect, others subscribe. */
bool access_may_receive(const struct peer *c, const char *topic, size_t len);

/* The longest reason of a refusal (Error.reason, CallResult.reason). */
#define ACCESS_REASON_MAX 512

/*
 * Is the foreign peer c refused a call to target[0..len), tried as a name
 * (as_name) and as a topic (as_topic)? Allowed when either way is. When
 * refused, the refusal is counted and shown to monitors, and why (size
 * bytes) gets the reason; the caller answers with a CallResult.
 */
bool access_call_denied(struct peer *c, bool as_name, bool as_topic, const char *target, size_t len,
			char *why, size_t size);

/*
 * May the foreign monitor m see ev? Only what m could receive itself:
 * publishes (and calls to a topic) on topics it may subscribe to, sends and
 * calls to names it may own, and replies and errors addressed to it.
 */
bool access_may_monitor(const struct peer *m, const struct lbus_wire_monitor_event *ev);

/* The rules were reloaded: every cached route is dropped (the next publish
 * filters anew) and the subscriptions of foreign peers the new rules forbid
 * are dropped, each with a notice to its peer (PROTOCOL.md, Errors). */
void access_reloaded(struct broker *b);
