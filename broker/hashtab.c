/* SPDX-License-Identifier: MIT */
/*
 * Intrusive chained hash table (see hashtab.h). Each node keeps its full
 * hash, so growing never looks at keys and a chain walk compares keys only
 * when the hashes are equal.
 */
#include <errno.h>
#include <stdlib.h>

#include "hashtab.h"
#include "memcost.h"

#define HASHTAB_MIN_BUCKETS 16u

void hashtab_init(struct hashtab *t)
{
	t->buckets = NULL;
	t->mask = 0;
	t->count = 0;
}

void hashtab_deinit(struct hashtab *t)
{
	free(t->buckets);
	hashtab_init(t);
}

static int hashtab_grow(struct hashtab *t)
{
	size_t old_n = t->buckets ? t->mask + 1 : 0;
	size_t n = old_n ? old_n * 2 : HASHTAB_MIN_BUCKETS;
	struct hashtab_node **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < old_n; i++) {
		struct hashtab_node *node = t->buckets[i];
		while (node) {
			struct hashtab_node *next = node->next;
			size_t k = node->hash & (n - 1);
			node->next = b[k];
			b[k] = node;
			node = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->mask = n - 1;
	return 0;
}

size_t hashtab_bytes(const struct hashtab *t)
{
	return t->buckets ? memcost((t->mask + 1) * sizeof(*t->buckets)) : 0;
}

size_t hashtab_bytes_after_insert(const struct hashtab *t)
{
	if (!t->buckets)
		return memcost(HASHTAB_MIN_BUCKETS * sizeof(*t->buckets));
	if (t->count >= t->mask + 1)
		return memcost(2 * (t->mask + 1) * sizeof(*t->buckets));
	return hashtab_bytes(t);
}

int hashtab_insert(struct hashtab *t, struct hashtab_node *n, uint64_t hash)
{
	if (!t->buckets || t->count >= t->mask + 1) {
		int ret = hashtab_grow(t);
		/* A full table still works, only slower: fail only when empty. */
		if (ret < 0 && !t->buckets)
			return ret;
	}
	struct hashtab_node **head = &t->buckets[hash & t->mask];
	n->hash = hash;
	n->next = *head;
	*head = n;
	t->count++;
	return 0;
}

void hashtab_remove(struct hashtab *t, struct hashtab_node *n)
{
	struct hashtab_node **p = &t->buckets[n->hash & t->mask];

	while (*p != n)
		p = &(*p)->next;
	*p = n->next;
	n->next = NULL;
	t->count--;
}

struct hashtab_node *hashtab_first(const struct hashtab *t, uint64_t hash)
{
	if (!t->buckets)
		return NULL;
	struct hashtab_node *n = t->buckets[hash & t->mask];
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

struct hashtab_node *hashtab_next(const struct hashtab_node *n, uint64_t hash)
{
	struct hashtab_node *next = n->next;
	while (next && next->hash != hash)
		next = next->next;
	return next;
}

int hashtab_foreach(struct hashtab *t, int (*fn)(struct hashtab_node *n, void *ud), void *ud)
{
	if (!t->buckets)
		return 0;
	for (size_t i = 0; i <= t->mask; i++) {
		for (struct hashtab_node *n = t->buckets[i]; n;) {
			struct hashtab_node *next = n->next;
			int ret = fn(n, ud);
			if (ret < 0)
				return ret;
			n = next;
		}
	}
	return 0;
}

uint64_t hashtab_hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t hashtab_hash_u64(uint64_t key)
{
	/* splitmix64 finaliser */
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebull;
	key ^= key >> 31;
	return key;
}
