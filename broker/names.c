/* SPDX-License-Identifier: MIT */
/*
 * Name registry (see names.h): separate chaining with FNV-1a hashes, doubled
 * at a load factor of 1. Owners hold few names, so their lists are plain
 * singly linked lists walked to append or unlink.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

#define NAMES_INITIAL_BUCKETS 64u

static uint32_t name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

int names_init(struct names *n)
{
	n->nbuckets = NAMES_INITIAL_BUCKETS;
	n->count = 0;
	n->buckets = calloc(n->nbuckets, sizeof(*n->buckets));
	return n->buckets ? 0 : -ENOMEM;
}

void names_deinit(struct names *n)
{
	for (size_t i = 0; i < n->nbuckets; i++) {
		while (n->buckets[i]) {
			struct name_entry *e = n->buckets[i];
			n->buckets[i] = e->hnext;
			free(e);
		}
	}
	free(n->buckets);
	n->buckets = NULL;
	n->nbuckets = n->count = 0;
}

static struct name_entry **find_slot(const struct names *n, const char *name, size_t len, uint32_t h)
{
	struct name_entry **p = &n->buckets[h & (n->nbuckets - 1)];

	for (; *p; p = &(*p)->hnext)
		if ((*p)->hash == h && (*p)->len == len && !memcmp((*p)->name, name, len))
			return p;
	return p;
}

static void grow(struct names *n)
{
	size_t nb = n->nbuckets * 2;
	struct name_entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < n->nbuckets; i++) {
		while (n->buckets[i]) {
			struct name_entry *e = n->buckets[i];
			n->buckets[i] = e->hnext;
			e->hnext = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = nb;
}

struct name_owner *names_lookup(const struct names *n, const char *name, size_t len)
{
	struct name_entry *e = *find_slot(n, name, len, name_hash(name, len));

	return e ? e->owner : NULL;
}

static void owner_append(struct name_owner *o, struct name_entry *e)
{
	struct name_entry **p = &o->first;

	while (*p)
		p = &(*p)->onext;
	*p = e;
	e->onext = NULL;
	o->count++;
}

static void owner_unlink(struct name_owner *o, struct name_entry *e)
{
	struct name_entry **p = &o->first;

	while (*p != e)
		p = &(*p)->onext;
	*p = e->onext;
	o->count--;
}

int names_take(struct names *n, struct name_owner *o, const char *name, size_t len)
{
	uint32_t h = name_hash(name, len);
	struct name_entry **slot = find_slot(n, name, len, h);
	struct name_entry *e = *slot;

	if (e)
		return e->owner == o ? 1 : -EADDRINUSE;
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	e->hash = h;
	e->len = (uint32_t)len;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	e->owner = o;
	e->hnext = NULL;
	*slot = e;
	owner_append(o, e);
	if (++n->count > n->nbuckets)
		grow(n);
	return 0;
}

static void entry_remove(struct names *n, struct name_entry **slot)
{
	struct name_entry *e = *slot;

	*slot = e->hnext;
	owner_unlink(e->owner, e);
	n->count--;
	free(e);
}

int names_release(struct names *n, struct name_owner *o, const char *name, size_t len)
{
	struct name_entry **slot = find_slot(n, name, len, name_hash(name, len));

	if (!*slot || (*slot)->owner != o)
		return -EPERM;
	entry_remove(n, slot);
	return 0;
}

void names_release_all(struct names *n, struct name_owner *o, names_released_fn fn, void *ctx)
{
	while (o->first) {
		struct name_entry *e = o->first;

		if (fn)
			fn(e->name, e->len, ctx);
		entry_remove(n, find_slot(n, e->name, e->len, e->hash));
	}
}
