/* SPDX-License-Identifier: MIT */
/*
 * A small intrusive hash table: the caller embeds a struct hashtab_node in its
 * own object, computes the 64-bit hash of its key, and compares keys itself
 * while walking one bucket's chain. Used for the retained store (topic),
 * queue groups (group name) and pending calls (token).
 *
 * The table owns no objects: removing a node never frees it. Buckets are a
 * power of two, grown (doubling) when the load passes 1; the table never
 * shrinks. An empty table allocates nothing.
 *
 * Walk a bucket (container_of is in list.h):
 *
 *     for (struct hashtab_node *n = hashtab_first(t, h); n; n = hashtab_next(n, h))
 *             if (key_equals(container_of(n, ...), key)) ...
 *
 * Errors: hashtab_insert returns 0 or -ENOMEM (then nothing changed).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct hashtab_node {
	struct hashtab_node *next;
	uint64_t hash;
};

struct hashtab {
	struct hashtab_node **buckets;
	size_t mask;  /* bucket count - 1; meaningless while buckets == NULL */
	size_t count; /* nodes in the table */
};

/* An empty table (no allocation). */
void hashtab_init(struct hashtab *t);
/* Free the bucket array; the nodes are the caller's. The table is empty and
 * reusable afterwards. */
void hashtab_deinit(struct hashtab *t);
/* Add n under hash (duplicates are the caller's business). */
int hashtab_insert(struct hashtab *t, struct hashtab_node *n, uint64_t hash);
/* Unlink n, which must be in t. */
void hashtab_remove(struct hashtab *t, struct hashtab_node *n);
/* First node whose hash equals hash, or NULL; then hashtab_next(). */
struct hashtab_node *hashtab_first(const struct hashtab *t, uint64_t hash);
struct hashtab_node *hashtab_next(const struct hashtab_node *n, uint64_t hash);

/* Visit every node (in bucket order); fn may remove (and free) the node it
 * is given, nothing else. Stops at and returns the first negative value fn
 * returns, else 0. */
int hashtab_foreach(struct hashtab *t, int (*fn)(struct hashtab_node *n, void *ud), void *ud);

/* Heap bytes of t's bucket array (memcost.h), now and after one more
 * hashtab_insert() (which may grow it). */
size_t hashtab_bytes(const struct hashtab *t);
size_t hashtab_bytes_after_insert(const struct hashtab *t);

/* FNV-1a of len bytes, for string keys. */
uint64_t hashtab_hash_bytes(const void *data, size_t len);
/* A well-mixed hash of an integer key. */
uint64_t hashtab_hash_u64(uint64_t key);
