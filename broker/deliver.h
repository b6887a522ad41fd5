/* SPDX-License-Identifier: MIT */
/*
 * Delivery to one recipient: queue a Deliver (the small per-recipient
 * header, then the body encoded once for all recipients) to a peer, or,
 * when its queue is full and its subscription loses messages rather than
 * make the publisher wait, count the drop and tell it (Dropped{sub_id,
 * count}) right before its next delivery on that subscription, or as soon
 * as its queue has drained (deliver_flush_dropped). Nothing is lost
 * silently. See the design essay atop router.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"

struct broker;
struct msgbuf;
struct peer;
struct sub;

/*
 * A Deliver wraps the publisher's message with the sender and sub_id, so it
 * may exceed the recipient's max_frame by at most this much (PROTOCOL.md);
 * bigger ones are not sent (counted as dropped).
 */
#define DELIVER_SLACK 1024u

/* How a body is delivered (deliver_to flags). */
enum deliver_flags {
	DELIVER_RETAINED = 1,	/* a retained message for a new subscription */
	DELIVER_ALONE = 2,	/* the message's only recipient */
	DELIVER_NEVER_WAIT = 4, /* the broker's own message: a full block
				 * subscriber drops it too */
};

/*
 * Queue a Deliver of body to `to` for subscription s (NULL: a send to a
 * name, sub_id 0). false when not queued: the peer is not ready or s has
 * expired, or the message was dropped (counted): too large for `to`, a full
 * queue that s drops on (deliver_drops_when_full, or DELIVER_NEVER_WAIT),
 * out of memory. A full queue of a subscription that does not drop takes
 * it anyway (the caller checked for room first). Takes no reference.
 */
bool deliver_to(struct broker *b, struct peer *to, struct sub *s, struct msgbuf *body, unsigned flags);
/* deliver_to with the message's one recipient. */
bool deliver_one(struct broker *b, struct peer *to, struct sub *s, struct msgbuf *body);
/* A retained message to a new subscription (Deliver.retained set). */
void deliver_retained(struct broker *b, struct sub *s, struct msgbuf *body);

/* deliver_to for each of subs[0..n) (their own peers); when monitors
 * exist, the ids of the peers that got it are appended to b->router.recv. */
void deliver_many(struct broker *b, struct sub *const *subs, size_t n, struct msgbuf *body, unsigned flags);

/* Does a Deliver with this shared body length fit what `to` accepts? */
static inline bool deliver_fits(const struct peer *to, size_t body_len)
{
	return body_len + OUTQ_HDR_MAX <= (size_t)to->conn.max_frame + DELIVER_SLACK;
}
/* When block subscription s starts dropping: its peer has taken nothing
 * since progress_ms for stall_ms (monotonic); 0 when it has no stall_ms. */
int64_t deliver_stall_at(const struct sub *s);
/* Does s lose a message its peer's full queue cannot take? With drop,
 * always; with block only once the peer has stalled (stall_ms). */
bool deliver_drops_when_full(const struct sub *s);
/* Queue the pending Dropped notices of c's subscriptions (its queue drained). */
void deliver_flush_dropped(struct peer *c);
