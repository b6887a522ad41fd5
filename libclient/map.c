/* SPDX-License-Identifier: MIT */
/*
 * A small open-addressing hash map from a non-zero u64 key to a pointer, used
 * to find a subscription by sub_id on every delivery and a pending call by
 * call_id on every result. Linear probing with a multiplicative hash; the
 * table is at most half full; deletion shifts the following cluster back
 * (no tombstones), so lookups stay short however many ids come and go.
 */
#include <errno.h>
#include <stdlib.h>

#include "client-internal.h"

#define MAP_MIN_CAP 16u
/* Fibonacci hashing: 2^64 divided by the golden ratio. */
#define MAP_HASH_MUL 0x9e3779b97f4a7c15ull

static size_t map_slot(const struct idmap *m, uint64_t key)
{
	return (size_t)((key * MAP_HASH_MUL) >> 32) & (m->cap - 1);
}

void idmap_init(struct idmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

void idmap_deinit(struct idmap *m)
{
	free(m->slots);
	idmap_init(m);
}

static void map_insert_fresh(struct idmap *m, uint64_t key, void *value)
{
	size_t i = map_slot(m, key);
	while (m->slots[i].key)
		i = (i + 1) & (m->cap - 1);
	m->slots[i].key = key;
	m->slots[i].value = value;
	m->count++;
}

static int map_grow(struct idmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : MAP_MIN_CAP;
	struct idmap_slot *old = m->slots;
	size_t ocap = m->cap;
	struct idmap_slot *slots = calloc(ncap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	m->slots = slots;
	m->cap = ncap;
	m->count = 0;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key)
			map_insert_fresh(m, old[i].key, old[i].value);
	free(old);
	return 0;
}

static struct idmap_slot *map_find(const struct idmap *m, uint64_t key)
{
	if (!m->cap || !key)
		return NULL;
	for (size_t i = map_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].key == key)
			return &m->slots[i];
		if (!m->slots[i].key)
			return NULL;
	}
}

int idmap_put(struct idmap *m, uint64_t key, void *value)
{
	struct idmap_slot *s = map_find(m, key);
	if (s) {
		s->value = value;
		return 0;
	}
	if ((m->count + 1) * 2 > m->cap) {
		int r = map_grow(m);
		if (r < 0)
			return r;
	}
	map_insert_fresh(m, key, value);
	return 0;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	struct idmap_slot *s = map_find(m, key);
	return s ? s->value : NULL;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
	struct idmap_slot *s = map_find(m, key);
	if (!s)
		return NULL;
	void *value = s->value;
	size_t mask = m->cap - 1;
	size_t hole = (size_t)(s - m->slots);
	/* Backward-shift: move later members of the cluster into the hole when
	 * their home slot is not between the hole and their position. */
	for (size_t i = (hole + 1) & mask; m->slots[i].key; i = (i + 1) & mask) {
		size_t home = map_slot(m, m->slots[i].key);
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			m->slots[hole] = m->slots[i];
			hole = i;
		}
	}
	m->slots[hole].key = 0;
	m->slots[hole].value = NULL;
	m->count--;
	return value;
}
