/* SPDX-License-Identifier: MIT */
/*
 * Cached routes: for one topic, the subscriptions it matches, computed once
 * from the trie and then shared, immutable, by every publish on that topic
 * (NATS's SublistResult, server/sublist.go). A route keeps its plain
 * subscriptions (each gets every message) apart from its grouped ones (one
 * member of each queue group gets a message: router.c picks it per message
 * into a scratch list of its own, never into the route).
 *
 * A route never changes. A subscription added or removed whose pattern
 * matches a cached topic makes that topic's route stale and drops it from
 * the cache (routes_invalidate, per topic: a subscribe elsewhere costs
 * nothing); whoever still holds a reference sees `stale` and looks again.
 * So a fresh route's subscription pointers are all live and indexed; a
 * stale one is never routed on. The cache keeps at most ROUTES_MAX topics;
 * past that the oldest is dropped (and made stale likewise).
 *
 * Ownership: the cache holds one reference to each cached route, and each
 * holder (a publisher's last route, peer->route) one more; the last
 * route_unref frees it. Errors: NULL on ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hashtab.h"
#include "list.h"

struct sub;
struct trie;

/* Topics the cache remembers at most. */
#define ROUTES_MAX 1024u

struct route {
	struct hashtab_node node; /* routes.by_topic, while cached */
	struct list link;	  /* routes.fifo, while cached */
	uint32_t refs;
	bool stale; /* never route on it: look again */
	size_t nplain, ngrouped;
	struct sub **plain;   /* nplain, in trie order */
	struct sub **grouped; /* ngrouped, in trie order (points into plain's array) */
	size_t topic_len;
	char topic[]; /* NUL-terminated */
};

struct routes {
	struct hashtab by_topic;
	struct list fifo; /* oldest first */
};

void routes_init(struct routes *rs);
/* Drop every cached route (holders keep theirs, stale). */
void routes_deinit(struct routes *rs);

/* Is r a fresh route for exactly this topic? */
static inline bool route_is_for(const struct route *r, const char *topic, size_t len)
{
	return r && !r->stale && r->topic_len == len && memcmp(r->topic, topic, len) == 0;
}

/* The route of a valid topic: cached, or computed from the trie t and
 * cached. A new reference for the caller, or NULL on ENOMEM. */
struct route *routes_get(struct routes *rs, const struct trie *t, const char *topic, size_t len);
void route_unref(struct route *r);
/* A subscription with this pattern was added or removed: the routes of the
 * cached topics it matches are stale. */
void routes_invalidate(struct routes *rs, const char *pattern, size_t len);
