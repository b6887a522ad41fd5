/* SPDX-License-Identifier: MIT */
/*
 * Name registry: a hash map name -> owner (broker/hashtab), each name owned
 * by at most one owner. An owner (embedded in the peer as struct name_owner)
 * keeps its names in the order it took them; the first is the Sender.name
 * of its messages. Names are validated by the caller (lbus_name_validate).
 *
 * Every operation costs O(1) whatever the owner holds: the registry is a
 * hash table and an owner's list is doubly linked (append, unlink).
 *
 * Ownership: the registry owns struct name_entry (names_take allocates,
 * every release frees). Results follow refusal.h: 0, a refusal code
 * (NAME_E_*), or -ENOMEM.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hashtab.h"
#include "list.h"
#include "refusal.h"

/* names_take: the name was already the caller's (not a refusal). */
#define NAMES_ALREADY_OURS 1

struct name_entry {
	struct hashtab_node node; /* in names.table, by name */
	struct list olink;	  /* owner's list, in taking order */
	struct name_owner *owner;
	uint32_t len;
	char name[]; /* NUL-terminated */
};

struct name_owner {
	struct list names; /* struct name_entry.olink */
	uint32_t count;
};

struct names {
	struct hashtab table;
};

void names_init(struct names *n);
/* Free all entries (owners' lists become dangling: release owners first). */
void names_deinit(struct names *n);
static inline size_t names_count(const struct names *n)
{
	return n->table.count;
}
static inline void name_owner_init(struct name_owner *o)
{
	list_init(&o->names);
	o->count = 0;
}
/* o's first name (the Sender.name of its messages), or NULL. */
static inline struct name_entry *name_owner_first(const struct name_owner *o)
{
	return list_empty(&o->names) ? NULL : container_of(o->names.next, struct name_entry, olink);
}
/* The name o took after e, or NULL. */
static inline struct name_entry *name_owner_next(const struct name_owner *o, const struct name_entry *e)
{
	return e->olink.next == &o->names ? NULL : container_of(e->olink.next, struct name_entry, olink);
}

/* 0 taken, NAMES_ALREADY_OURS, NAME_E_TAKEN (another owner's), -ENOMEM. */
int names_take(struct names *n, struct name_owner *o, const char *name, size_t len);
/* 0 released, NAME_E_NOT_OWNER when o does not own it (nobody or someone else). */
int names_release(struct names *n, struct name_owner *o, const char *name, size_t len);
/* The owner of name, or NULL. */
struct name_owner *names_lookup(const struct names *n, const char *name, size_t len);

/* Called for each name released by names_release_all, before it is freed. */
typedef void (*names_released_fn)(const char *name, size_t len, void *ctx);
/* Release every name of o, in taking order; fn may be NULL. */
void names_release_all(struct names *n, struct name_owner *o, names_released_fn fn, void *ctx);
