/* SPDX-License-Identifier: MIT */
/*
 * The retained store: for each topic, the last message published on it with
 * retain set, kept as a reference to the shared Deliver body that the router
 * built for the live delivery (the Publish bytes as the publisher sent them
 * plus the encoded Sender, see lbus_wire_deliver_body_encode). Serving a new
 * subscription is then one outq_push() of a per-recipient header (sub_id,
 * retained = true) and another reference: nothing is copied or re-encoded.
 *
 * Semantics (PROTOCOL.md, "Retained"):
 *  - a retained publish with a payload replaces the topic's message
 *    (retained_put); with an empty payload it deletes it (retained_clear);
 *  - the store holds at most max_bytes, counted as the heap bytes it really
 *    takes (memcost.h): each message's struct and topic, its body (copied
 *    to a buffer of its exact size when the shared one has spare room, so
 *    the store never pins a pool buffer's rounding), the nodes of the
 *    topic trie and the hash table's bucket array. A retain that would pass
 *    the bound fails with -ENOSPC and leaves the store unchanged (the
 *    broker still delivers the message and answers ERR_LIMIT). Lowering
 *    the bound evicts nothing: it only refuses new retains until enough
 *    topics are cleared. An empty store frees its index (bytes 0).
 *
 * Lookups by topic are O(1) (hash table); a subscription without wildcards
 * is one lookup; one with wildcards walks a topic trie of the store's own
 * and costs what the pattern reaches (plus sorting the k matches back into
 * the order the topics were first stored), never the whole store. Nothing here is on the hot path: the broker
 * calls in only for publishes flagged retain and for new subscriptions while
 * the store is not empty.
 *
 * Ownership: the store holds one reference on each body (its own copy, or
 * the router's buffer when that has no spare room); retained_deinit()
 * drops them (call it before the msgpool goes away).
 * Errors: 0 or -errno (-ENOMEM, -ENOSPC). Nothing here logs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hashtab.h"
#include "memcost.h"
#include "msgbuf.h"
#include "trie.h"

struct retained_msg {
	struct hashtab_node node;	  /* keyed by topic */
	struct retained_msg *prev, *next; /* in first-stored order */
	struct trie_entry entry;	  /* in the store's topic trie */
	uint64_t seq;			  /* first-stored order */
	struct msgbuf *body;		  /* Deliver body, one reference */
	size_t topic_len;
	char topic[]; /* not NUL-terminated */
};

struct retained_store {
	struct hashtab by_topic;
	struct retained_msg *first, *last;
	struct trie topics; /* index for wildcard lookups; root made on first use */
	uint64_t next_seq;
	size_t count;	  /* messages stored */
	size_t msg_bytes; /* sum of retained_msg_size() */
	size_t bytes;	  /* msg_bytes + retained_index_bytes(): what the store takes */
	size_t max_bytes; /* bound on bytes */
};

/* An empty store bounded by max_bytes (config retained_max). */
void retained_init(struct retained_store *s, size_t max_bytes);
/* Drop every message. The store is empty and reusable afterwards. */
void retained_deinit(struct retained_store *s);
/* Change the bound (SIGHUP reload); stored messages are kept. */
void retained_set_max(struct retained_store *s, size_t max_bytes);

/*
 * Keep body (a Deliver body: field 2 = the Publish, field 5 = the Sender) as
 * topic's retained message, replacing any. Takes its own reference on
 * success. Returns 0, -ENOSPC (over the bound; store unchanged) or -ENOMEM.
 */
int retained_put(struct retained_store *s, const char *topic, size_t topic_len, struct msgbuf *body);
/* Delete topic's retained message; deleting nothing is fine. */
void retained_clear(struct retained_store *s, const char *topic, size_t topic_len);

/* The message retained on topic, or NULL. */
const struct retained_msg *retained_find(const struct retained_store *s, const char *topic, size_t topic_len);

/*
 * Call fn for every message whose topic matches the valid pattern (the rules
 * of lbus_topic_match, '$' included), in first-stored order. fn must not
 * change the store. Stops at the first negative value fn returns and returns
 * it; else returns the number of messages visited.
 */
int retained_foreach_match(const struct retained_store *s, const char *pattern, size_t pattern_len,
			   int (*fn)(const struct retained_msg *m, void *ud), void *ud);

/* Heap bytes of a body kept by the store (exact size, memcost.h). */
static inline size_t retained_body_size(const struct msgbuf *body)
{
	return memcost(sizeof(*body) + body->len);
}

/* Heap bytes a message takes: its struct and topic, and its body. */
static inline size_t retained_msg_size(const struct retained_msg *m)
{
	return memcost(sizeof(*m) + m->topic_len) + retained_body_size(m->body);
}

/* Heap bytes of the store's indexes (topic trie, bucket array). */
static inline size_t retained_index_bytes(const struct retained_store *s)
{
	return s->topics.bytes + hashtab_bytes(&s->by_topic);
}
