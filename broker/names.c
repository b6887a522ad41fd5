/* SPDX-License-Identifier: MIT */
/*
 * Name registry (see names.h) on broker/hashtab; each owner's names on a
 * doubly linked list (list.h), so taking and releasing cost O(1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

void names_init(struct names *n)
{
	hashtab_init(&n->table);
}

/* hashtab_foreach callback: free one entry. */
static int entry_free(struct hashtab_node *node, void *ud)
{
	(void)ud;
	free(container_of(node, struct name_entry, node));
	return 0;
}

void names_deinit(struct names *n)
{
	hashtab_foreach(&n->table, entry_free, NULL);
	hashtab_deinit(&n->table);
}

static struct name_entry *find(const struct names *n, const char *name, size_t len, uint64_t h)
{
	for (struct hashtab_node *node = hashtab_first(&n->table, h); node; node = hashtab_next(node, h)) {
		struct name_entry *e = container_of(node, struct name_entry, node);

		if (e->len == len && !memcmp(e->name, name, len))
			return e;
	}
	return NULL;
}

struct name_owner *names_lookup(const struct names *n, const char *name, size_t len)
{
	struct name_entry *e = find(n, name, len, hashtab_hash_bytes(name, len));

	return e ? e->owner : NULL;
}

static void owner_append(struct name_owner *o, struct name_entry *e)
{
	list_add_tail(&o->names, &e->olink);
	o->count++;
}

static void owner_unlink(struct name_owner *o, struct name_entry *e)
{
	list_del(&e->olink);
	o->count--;
}

int names_take(struct names *n, struct name_owner *o, const char *name, size_t len)
{
	uint64_t h = hashtab_hash_bytes(name, len);
	struct name_entry *e = find(n, name, len, h);

	if (e)
		return e->owner == o ? NAMES_ALREADY_OURS : NAME_E_TAKEN;
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	e->len = (uint32_t)len;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	e->owner = o;
	if (hashtab_insert(&n->table, &e->node, h) < 0) {
		free(e);
		return -ENOMEM;
	}
	owner_append(o, e);
	return 0;
}

static void entry_remove(struct names *n, struct name_entry *e)
{
	hashtab_remove(&n->table, &e->node);
	owner_unlink(e->owner, e);
	free(e);
}

int names_release(struct names *n, struct name_owner *o, const char *name, size_t len)
{
	struct name_entry *e = find(n, name, len, hashtab_hash_bytes(name, len));

	if (!e || e->owner != o)
		return NAME_E_NOT_OWNER;
	entry_remove(n, e);
	return 0;
}

void names_release_all(struct names *n, struct name_owner *o, names_released_fn fn, void *ctx)
{
	struct name_entry *e;

	while ((e = name_owner_first(o))) {
		if (fn)
			fn(e->name, e->len, ctx);
		entry_remove(n, e);
	}
}
