/* SPDX-License-Identifier: MIT */
/*
 * Subscription index: a trie of topic levels. Each node has its literal
 * children in an array sorted by level (binary search), plus at most one
 * '+' child and one '#' child; subscriptions hang at the node their pattern
 * ends on. Matching a topic walks its levels once, following the literal,
 * '+' and '#' branches, so a publish costs O(levels x wildcard branches), not
 * O(subscriptions). The `$` rule: at the root, '+' and '#' are not followed
 * for a topic that starts with '$'.
 *
 * Subscriptions embed a struct trie_entry; the trie never owns them. Match
 * results are cached per topic by route.c, which the subscription module
 * tells about every add and remove.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "list.h"

struct trie_node;

struct trie_entry {
	struct list link;	/* in the node's entry list */
	struct trie_node *node; /* NULL when not in a trie */
};

struct trie {
	struct trie_node *root;
	size_t count; /* entries */
	size_t bytes; /* heap bytes of the nodes and their arrays (memcost.h) */
};

int trie_init(struct trie *t);
/* Free the nodes; entries still present are just unlinked. */
void trie_deinit(struct trie *t);
/* Add e under a valid pattern. 0 or -ENOMEM. */
int trie_add(struct trie *t, const char *pattern, size_t len, struct trie_entry *e);
/* Remove e (no-op if not added) and prune nodes left empty. */
void trie_remove(struct trie *t, struct trie_entry *e);

typedef void (*trie_match_fn)(struct trie_entry *e, void *ctx);
/* Call fn for every entry whose pattern matches the valid topic. Each entry
 * is reported once. fn must not modify the trie. */
void trie_match(const struct trie *t, const char *topic, size_t len, trie_match_fn fn, void *ctx);

/* The reverse, for a trie of topics (entries added under patterns without
 * wildcards, as the retained store does): call fn for every entry whose
 * topic the valid pattern matches (lbus_topic_match's rules, '$' included).
 * Costs the nodes the pattern reaches: what matches, plus the siblings a
 * '+' passes over, never the whole trie for a narrow pattern. */
void trie_match_pattern(const struct trie *t, const char *pattern, size_t len, trie_match_fn fn, void *ctx);
