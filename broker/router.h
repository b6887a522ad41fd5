/* SPDX-License-Identifier: MIT */
/*
 * Routing: from a publish or send to the set of recipients, with flow
 * control (drop / block) and one shared encoded body. See the design essay
 * at the top of router.c.
 *
 * Entry points:
 *  - router_targets() computes every subscription a topic matches into
 *    b->router.subs (calls pick one of them themselves). For publishes its
 *    result is cached per publisher (route cache, valid while the trie
 *    generation is unchanged), so per-message choices run AFTER it, on
 *    b->router: router_pick_groups() keeps one member per queue group,
 *    before router_block_target().
 *  - router_deliver() queues one shared body to the computed targets and,
 *    when monitors exist, notes who got it in b->router.recv.
 *  - router_publish_internal() publishes a broker message (sender id 0),
 *    e.g. presence events on $lbus/...
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct peer;
struct msgbuf;
struct sub;

/*
 * A Deliver wraps the publisher's message with the sender and sub_id, so it
 * may exceed the recipient's max_frame by at most this much (PROTOCOL.md);
 * bigger ones are not sent (counted as dropped).
 */
#define ROUTER_DELIVER_SLACK 1024u
/* Longest topic the per-publisher route cache remembers. */
#define ROUTE_CACHE_TOPIC_MAX 200u

struct router {
	struct sub **subs; /* targets of the message being routed */
	size_t n, cap;
	bool oom;          /* growing subs failed during the last match */
	uint64_t *recv;    /* ids of the clients router_deliver queued to, */
	size_t nrecv, caprecv; /* collected only while monitors exist */
	struct msgbuf *small; /* scratch for small bodies (OUTQ_COPY_MAX), see router.c */
};

/* 0 or -ENOMEM; pool must outlive router_deinit(). */
int router_init(struct router *r, struct msgpool *pool);
void router_deinit(struct router *r);

/* Fill b->router.subs with the live subscriptions whose pattern matches the
 * (valid) topic, in trie order. 0 or -ENOMEM. */
int router_targets(struct broker *b, const char *topic, size_t len);

/* Queue groups: keep one member of each group among the targets (the
 * message is frame_len bytes); a no-op when no group exists. */
void router_pick_groups(struct broker *b, size_t frame_len);

/*
 * The first block-policy target whose queue cannot take `frame_len` more
 * bytes even after trying to write it now, or NULL. A target whose
 * subscription has a stall_ms and whose client has taken nothing for that
 * long does not block (deliver() drops for it); one that may stall later
 * sets *recheck_ms (monotonic) to when the waiting publisher looks again,
 * else 0.
 */
struct peer *router_block_target(struct broker *b, size_t frame_len, int64_t *recheck_ms);

/*
 * Queue a Deliver with the shared body to every target in b->router: drop
 * policy targets with a full queue are counted instead (Dropped notice
 * before their next delivery); block targets are queued regardless (the
 * caller checked router_block_target first). Takes no reference from body.
 */
void router_deliver(struct broker *b, struct msgbuf *body);
/*
 * Queue a Deliver to one client (sub NULL: a send to a name, sub_id 0).
 * true when queued; false when not (client not ready, counted as dropped).
 */
bool router_deliver_one(struct broker *b, struct peer *to, struct sub *sub, struct msgbuf *body);
/* Queue a retained message to a new subscription (Deliver.retained set);
 * a full queue counts it as dropped (drop policy) or takes it anyway. */
void router_deliver_retained(struct broker *b, struct sub *sub, struct msgbuf *body);

/* Free c's route cache (peer_free). */
void router_cache_free(struct peer *c);
/* Does a Deliver with this shared body length fit what `to` accepts? */
bool router_fits(const struct peer *to, size_t body_len);
/* Queue the pending Dropped notices of c's subscriptions (its queue drained). */
void router_flush_dropped(struct peer *c);

/*
 * Publish a broker-generated message (sender id 0) to a valid topic. Block
 * subscribers with a full queue get it counted as dropped: the broker never
 * waits. 0 or -ENOMEM.
 */
int router_publish_internal(struct broker *b, const char *topic, size_t topic_len, const void *payload,
			    size_t payload_len);
