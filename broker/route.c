/* SPDX-License-Identifier: MIT */
/*
 * The route cache (see route.h): a hash table by topic plus a FIFO for
 * eviction. A route is built from one trie match, its plain subscriptions
 * first and its grouped ones after, each part in trie order.
 */
#include <errno.h>
#include <stdlib.h>

#include "route.h"
#include "subscription.h"
#include "topic.h"
#include "trie.h"

#define ROUTE_COLLECT_MIN 16 /* first size of the array a trie match fills */

void routes_init(struct routes *rs)
{
	hashtab_init(&rs->by_topic);
	list_init(&rs->fifo);
}

void route_unref(struct route *r)
{
	if (r && --r->refs == 0) {
		free(r->plain);
		free(r);
	}
}

/* Take r out of the cache; it is stale from now on. */
static void routes_drop(struct routes *rs, struct route *r)
{
	hashtab_remove(&rs->by_topic, &r->node);
	list_del(&r->link);
	r->stale = true;
	route_unref(r);
}

void routes_deinit(struct routes *rs)
{
	while (!list_empty(&rs->fifo))
		routes_drop(rs, container_of(rs->fifo.next, struct route, link));
	hashtab_deinit(&rs->by_topic);
}

void routes_invalidate(struct routes *rs, const char *pattern, size_t len)
{
	struct list *l, *tmp;

	list_for_each_safe(l, tmp, &rs->fifo)
	{
		struct route *r = container_of(l, struct route, link);

		if (lbus_topic_match(pattern, len, r->topic, r->topic_len))
			routes_drop(rs, r);
	}
}

/* What a trie match collects. */
struct collected {
	struct sub **subs;
	size_t n, cap, ngrouped;
	bool oom;
};

static void collect(struct trie_entry *e, void *ctx)
{
	struct collected *c = ctx;
	struct sub *s = sub_from_entry(e);

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : ROUTE_COLLECT_MIN;
		struct sub **subs = realloc(c->subs, cap * sizeof(*subs));

		if (!subs) {
			c->oom = true;
			return;
		}
		c->subs = subs;
		c->cap = cap;
	}
	c->subs[c->n++] = s;
	if (s->member.group)
		c->ngrouped++;
}

/* A new route (one reference) for topic from the trie, or NULL on ENOMEM. */
static struct route *route_build(const struct trie *t, const char *topic, size_t len)
{
	struct collected c = {0};
	struct route *r = NULL;
	size_t ip = 0, ig;

	trie_match(t, topic, len, collect, &c);
	if (!c.oom)
		r = calloc(1, sizeof(*r) + len + 1);
	if (!r || (c.n && !(r->plain = malloc(c.n * sizeof(*r->plain))))) {
		free(r);
		free(c.subs);
		return NULL;
	}
	r->refs = 1;
	r->nplain = c.n - c.ngrouped;
	r->ngrouped = c.ngrouped;
	r->grouped = r->plain ? r->plain + r->nplain : NULL;
	ig = r->nplain;
	for (size_t i = 0; i < c.n; i++) {
		if (c.subs[i]->member.group)
			r->plain[ig++] = c.subs[i];
		else
			r->plain[ip++] = c.subs[i];
	}
	free(c.subs);
	memcpy(r->topic, topic, len);
	r->topic_len = len;
	return r;
}

struct route *routes_get(struct routes *rs, const struct trie *t, const char *topic, size_t len)
{
	uint64_t h = hashtab_hash_bytes(topic, len);
	struct route *r;

	for (struct hashtab_node *n = hashtab_first(&rs->by_topic, h); n; n = hashtab_next(n, h)) {
		r = container_of(n, struct route, node);
		if (r->topic_len == len && memcmp(r->topic, topic, len) == 0) {
			r->refs++;
			return r;
		}
	}
	r = route_build(t, topic, len);
	if (!r)
		return NULL;
	if (rs->by_topic.count >= ROUTES_MAX)
		routes_drop(rs, container_of(rs->fifo.next, struct route, link));
	if (hashtab_insert(&rs->by_topic, &r->node, h) < 0) {
		route_unref(r);
		return NULL; /* uncached, it could not be invalidated */
	}
	list_add_tail(&rs->fifo, &r->link);
	r->refs++; /* the cache's */
	return r;
}
