/* SPDX-License-Identifier: MIT */
/*
 * Routing: from a publish or send to the set of recipients, with flow
 * control (drop / block) and one shared encoded body. See the design essay
 * at the top of router.c.
 *
 * Entry points:
 *  - router_handle_publish() / router_handle_send() (dispatch table);
 *  - router_publish_internal() publishes a broker message (sender id 0),
 *    e.g. presence events on $lbus/..., through the same path as a client's
 *    publish, except that the broker never waits: a block subscriber with a
 *    full queue gets it counted as dropped;
 *  - router_targets() computes every subscription a topic matches into
 *    b->router.subs, for calls (which pick one responder themselves);
 * Delivery to each recipient is deliver.c.
 * Publishes route on cached, immutable routes (route.h); the group member
 * that gets a message is picked per message into b->router.winners.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct msgbuf;
struct msgpool;
struct peer;
struct sub;

struct router {
	struct sub **subs; /* router_targets(): every match, for a call */
	size_t n, cap;
	bool oom;	      /* growing subs failed during the last match */
	struct sub **winners; /* the group members picked for the message */
	size_t nwinners, capwinners;
	uint64_t *recv;	       /* ids of the peers the message was queued to, */
	size_t nrecv, caprecv; /* collected only while monitors exist */
	struct msgbuf *small;  /* scratch for small bodies (OUTQ_COPY_MAX), see router.c */
};

/* 0 or -ENOMEM; pool must outlive router_deinit(). */
int router_init(struct router *r, struct msgpool *pool);
void router_deinit(struct router *r);

/* Fill b->router.subs with the live subscriptions whose pattern matches the
 * (valid) topic, in trie order. 0 or -ENOMEM. */
int router_targets(struct broker *b, const char *topic, size_t len);

/* Release c's last route (peer_free). */
void router_cache_free(struct peer *c);

/*
 * Publish a broker-generated message (sender id 0) to a valid topic. Block
 * subscribers with a full queue get it counted as dropped: the broker never
 * waits. 0 or -ENOMEM.
 */
int router_publish_internal(struct broker *b, const char *topic, size_t topic_len, const void *payload,
			    size_t payload_len);
