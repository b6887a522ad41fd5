/* SPDX-License-Identifier: MIT */
/*
 * Topic trie (see trie.h).
 *
 * Level positions: a topic of length len is split at '/'; `pos` is the start
 * of the next level, and pos > len means every level has been consumed (so
 * "a/" has the two levels "a" and ""). A '#' child matches at any point,
 * including when no level is left ("a/#" matches "a").
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "memcost.h"
#include "trie.h"

#define TRIE_KIDS_MIN 2 /* first size of a node's literal children array */

struct trie_node {
	struct trie_node *parent;
	struct trie_node **kids; /* literal children sorted by level */
	uint32_t nkids, capkids;
	struct trie_node *plus, *hash;
	struct list entries;
	uint32_t level_len;
	char level[];
};

/* Heap bytes of a node with a level of len bytes, and of a kids array. */
static size_t node_cost(size_t len)
{
	return memcost(sizeof(struct trie_node) + len);
}

static size_t kids_cost(uint32_t cap)
{
	return memcost(cap * sizeof(struct trie_node *));
}

static struct trie_node *node_new(struct trie *t, struct trie_node *parent, const char *level, size_t len)
{
	struct trie_node *n = calloc(1, sizeof(*n) + len);

	if (!n)
		return NULL;
	t->bytes += node_cost(len);
	n->parent = parent;
	list_init(&n->entries);
	n->level_len = (uint32_t)len;
	memcpy(n->level, level, len);
	return n;
}

static void node_free(struct trie_node *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	node_free(n->plus);
	node_free(n->hash);
	while (!list_empty(&n->entries)) {
		struct trie_entry *e = container_of(n->entries.next, struct trie_entry, link);
		list_del(&e->link);
		e->node = NULL;
	}
	free(n->kids);
	free(n);
}

int trie_init(struct trie *t)
{
	t->count = 0;
	t->bytes = 0;
	t->root = node_new(t, NULL, "", 0);
	return t->root ? 0 : -ENOMEM;
}

void trie_deinit(struct trie *t)
{
	node_free(t->root);
	t->root = NULL;
	t->bytes = 0;
}

static int level_cmp(const char *a, size_t alen, const struct trie_node *n)
{
	size_t min = alen < n->level_len ? alen : n->level_len;
	int c = memcmp(a, n->level, min);

	if (c)
		return c;
	return alen < n->level_len ? -1 : alen > n->level_len;
}

/* Index of the child with this level, or -(insertion point) - 1. */
static long kid_find(const struct trie_node *n, const char *level, size_t len)
{
	long lo = 0, hi = (long)n->nkids - 1;

	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		int c = level_cmp(level, len, n->kids[mid]);
		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -lo - 1;
}

static struct trie_node *kid_get_or_add(struct trie *t, struct trie_node *n, const char *level, size_t len)
{
	long i = kid_find(n, level, len);
	struct trie_node *k;

	if (i >= 0)
		return n->kids[i];
	i = -i - 1;
	if (n->nkids == n->capkids) {
		uint32_t cap = n->capkids ? n->capkids * 2 : TRIE_KIDS_MIN;
		struct trie_node **kids = realloc(n->kids, cap * sizeof(*kids));
		if (!kids)
			return NULL;
		t->bytes += kids_cost(cap) - kids_cost(n->capkids);
		n->kids = kids;
		n->capkids = cap;
	}
	k = node_new(t, n, level, len);
	if (!k)
		return NULL;
	memmove(&n->kids[i + 1], &n->kids[i], (n->nkids - (size_t)i) * sizeof(*n->kids));
	n->kids[i] = k;
	n->nkids++;
	return k;
}

static struct trie_node *child_for_level(struct trie *t, struct trie_node *n, const char *level, size_t len)
{
	struct trie_node **slot;

	if (len == 1 && (level[0] == '+' || level[0] == '#')) {
		slot = level[0] == '+' ? &n->plus : &n->hash;
		if (!*slot)
			*slot = node_new(t, n, level, 1);
		return *slot;
	}
	return kid_get_or_add(t, n, level, len);
}

static bool node_unused(const struct trie_node *n)
{
	return n->parent && !n->nkids && !n->plus && !n->hash && list_empty(&n->entries);
}

static void node_detach(struct trie *t, struct trie_node *n)
{
	struct trie_node *p = n->parent;

	if (p->plus == n) {
		p->plus = NULL;
	} else if (p->hash == n) {
		p->hash = NULL;
	} else {
		long i = kid_find(p, n->level, n->level_len);
		memmove(&p->kids[i], &p->kids[i + 1], (p->nkids - (size_t)i - 1) * sizeof(*p->kids));
		p->nkids--;
		if (!p->nkids) {
			t->bytes -= kids_cost(p->capkids);
			free(p->kids);
			p->kids = NULL;
			p->capkids = 0;
		}
	}
}

static void prune(struct trie *t, struct trie_node *n)
{
	while (node_unused(n)) {
		struct trie_node *p = n->parent;
		node_detach(t, n);
		t->bytes -= node_cost(n->level_len);
		free(n);
		n = p;
	}
}

int trie_add(struct trie *t, const char *pattern, size_t len, struct trie_entry *e)
{
	struct trie_node *n = t->root;
	size_t pos = 0;

	while (pos <= len) {
		const char *slash = memchr(pattern + pos, '/', len - pos);
		size_t end = slash ? (size_t)(slash - pattern) : len;
		struct trie_node *k = child_for_level(t, n, pattern + pos, end - pos);

		if (!k) {
			prune(t, n);
			return -ENOMEM;
		}
		n = k;
		pos = end + 1;
	}
	list_add_tail(&n->entries, &e->link);
	e->node = n;
	t->count++;
	return 0;
}

void trie_remove(struct trie *t, struct trie_entry *e)
{
	struct trie_node *n = e->node;

	if (!n)
		return;
	list_del(&e->link);
	e->node = NULL;
	t->count--;
	prune(t, n);
}

static void emit(const struct trie_node *n, trie_match_fn fn, void *ctx)
{
	struct list *l;

	for (l = n->entries.next; l != &n->entries; l = l->next)
		fn(container_of(l, struct trie_entry, link), ctx);
}

static void match_node(const struct trie_node *n, const char *topic, size_t pos, size_t len, bool wild_ok,
		       trie_match_fn fn, void *ctx)
{
	const char *slash;
	size_t end;
	long i;

	if (n->hash && wild_ok)
		emit(n->hash, fn, ctx);
	if (pos > len) {
		emit(n, fn, ctx);
		return;
	}
	slash = memchr(topic + pos, '/', len - pos);
	end = slash ? (size_t)(slash - topic) : len;
	if (n->nkids) {
		i = kid_find(n, topic + pos, end - pos);
		if (i >= 0)
			match_node(n->kids[i], topic, end + 1, len, true, fn, ctx);
	}
	if (n->plus && wild_ok)
		match_node(n->plus, topic, end + 1, len, true, fn, ctx);
}

void trie_match(const struct trie *t, const char *topic, size_t len, trie_match_fn fn, void *ctx)
{
	match_node(t->root, topic, 0, len, !(len > 0 && topic[0] == '$'), fn, ctx);
}

/* ---- a trie of topics, matched by a pattern (the retained store's index) ---- */

/* fn for every entry at n and below; at the root, not below a '$' level. */
static void emit_subtree(const struct trie_node *n, bool at_root, trie_match_fn fn, void *ctx)
{
	emit(n, fn, ctx);
	for (uint32_t i = 0; i < n->nkids; i++)
		if (!(at_root && n->kids[i]->level_len && n->kids[i]->level[0] == '$'))
			emit_subtree(n->kids[i], false, fn, ctx);
	if (n->plus)
		emit_subtree(n->plus, false, fn, ctx);
	if (n->hash)
		emit_subtree(n->hash, false, fn, ctx);
}

static void pattern_node(const struct trie_node *n, const char *pattern, size_t pos, size_t len, bool at_root,
			 trie_match_fn fn, void *ctx)
{
	const char *slash;
	size_t end;
	long i;

	if (pos > len) {
		emit(n, fn, ctx);
		return;
	}
	slash = memchr(pattern + pos, '/', len - pos);
	end = slash ? (size_t)(slash - pattern) : len;
	if (end - pos == 1 && pattern[pos] == '#') {
		/* the rest, zero levels or more: n itself ("a/#" matches "a") and below */
		emit_subtree(n, at_root, fn, ctx);
		return;
	}
	if (end - pos == 1 && pattern[pos] == '+') {
		for (uint32_t k = 0; k < n->nkids; k++)
			if (!(at_root && n->kids[k]->level_len && n->kids[k]->level[0] == '$'))
				pattern_node(n->kids[k], pattern, end + 1, len, false, fn, ctx);
		return;
	}
	i = n->nkids ? kid_find(n, pattern + pos, end - pos) : -1;
	if (i >= 0)
		pattern_node(n->kids[i], pattern, end + 1, len, false, fn, ctx);
}

void trie_match_pattern(const struct trie *t, const char *pattern, size_t len, trie_match_fn fn, void *ctx)
{
	pattern_node(t->root, pattern, 0, len, true, fn, ctx);
}
