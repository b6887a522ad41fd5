/* SPDX-License-Identifier: MIT */
/*
 * Subscriptions: one per (client, sub_id), indexed in the broker's topic
 * trie and listed on their client in subscription order.
 *
 * Life cycle: created by sub_handle_subscribe; sub_remove() takes it out of
 * the trie, its queue group and the client's list and frees it. When a
 * client closes, sub_remove_all() only takes its subscriptions out of the
 * trie and their groups (a routing
 * pass in progress may still hold pointers to them); sub_free_all() frees
 * them with the client at the end of the loop turn. A subscription that
 * reached its max_msgs is expired by sub_expire(): taken out of the trie, its
 * group and the client's list at once (so the next message is routed without
 * it), and moved to broker->expired_subs, freed by sub_free_expired() at the
 * end of the loop turn (routing passes, like a call being routed, may still
 * hold a pointer to it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "groups.h"
#include "hashtab.h"
#include "list.h"
#include "trie.h"

struct broker;
struct peer;

struct sub {
	struct trie_entry te; /* in broker->subs */
	struct peer *peer;
	struct list peer_link;	     /* in peer->subs */
	struct hashtab_node id_node; /* in peer->sub_ids while live */
	uint64_t id;		     /* client-chosen sub_id */
	uint32_t policy;	     /* LBUS__POLICY__POLICY_DROP / _BLOCK */
	uint32_t stall_ms;	     /* block: drop once the client stalled this long; 0 never */
	bool responder;		     /* answers calls to matching topics (Subscribe.responder) */
	uint64_t dropped;	     /* not queued since the last delivery: next Dropped count */
	uint64_t dropped_total;
	uint64_t max_msgs;	    /* Subscribe.max_msgs: expire after this many deliveries; 0 = never */
	uint64_t delivered;	    /* deliveries queued on it (counted only when max_msgs != 0) */
	bool expired;		    /* reached max_msgs: unindexed, on broker->expired_subs */
	struct group_member member; /* queue group; member.group NULL for none */
	size_t pattern_len;
	char pattern[]; /* NUL-terminated */
};

static inline struct sub *sub_from_entry(struct trie_entry *e)
{
	return container_of(e, struct sub, te);
}

/* Find c's subscription with this id, or NULL (O(1): a hash table). */
struct sub *sub_find(const struct peer *c, uint64_t id);
/* Unindex and free one subscription. */
void sub_remove(struct sub *s);
/* Unindex every subscription of a closing client (memory stays). */
void sub_remove_all(struct peer *c);
/* Free every subscription of a closed client. */
void sub_free_all(struct peer *c);
/* s has had its last message (max_msgs): unindex it, move it to the broker's
 * expired list (see above). */
void sub_expire(struct sub *s);
/* Free the expired subscriptions (end of the loop turn). */
void sub_free_expired(struct broker *b);
