/* SPDX-License-Identifier: MIT */
/*
 * Per-uid connection counts and the connection limits (see connlimits.h). A
 * counter is freed when its uid's last connection closes, so the table holds
 * at most one entry per uid that is connected now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "connlimits.h"
#include "list.h"

struct uid_count {
	struct hashtab_node node;
	uid_t uid;
	uint32_t n;
};

void uid_limits_init(struct uid_limits *l)
{
	hashtab_init(&l->per_uid);
}

static int free_count(struct hashtab_node *n, void *ud)
{
	struct uid_limits *l = ud;

	hashtab_remove(&l->per_uid, n);
	free(container_of(n, struct uid_count, node));
	return 0;
}

void uid_limits_deinit(struct uid_limits *l)
{
	hashtab_foreach(&l->per_uid, free_count, l);
	hashtab_deinit(&l->per_uid);
}

static struct uid_count *find(const struct uid_limits *l, uid_t uid)
{
	uint64_t h = hashtab_hash_u64(uid);

	for (struct hashtab_node *n = hashtab_first(&l->per_uid, h); n; n = hashtab_next(n, h))
		if (container_of(n, struct uid_count, node)->uid == uid)
			return container_of(n, struct uid_count, node);
	return NULL;
}

uint32_t uid_limits_count(const struct uid_limits *l, uid_t uid)
{
	const struct uid_count *c = find(l, uid);

	return c ? c->n : 0;
}

enum limit_refusal uid_limits_admit(const struct uid_limits *l, const struct config *cfg, uint64_t clients,
				    uid_t uid, char *why, size_t whylen)
{
	if (clients >= cfg->max_clients) {
		snprintf(why, whylen, "broker limit reached: %llu clients connected (max_clients = %u)",
			 (unsigned long long)clients, cfg->max_clients);
		return LIMIT_MAX_CLIENTS;
	}
	if (uid_limits_count(l, uid) >= cfg->max_clients_per_uid) {
		snprintf(why, whylen,
			 "broker limit reached: uid %u has %u clients connected (max_clients_per_uid = %u)",
			 (unsigned)uid, uid_limits_count(l, uid), cfg->max_clients_per_uid);
		return LIMIT_MAX_CLIENTS_PER_UID;
	}
	return LIMIT_OK;
}

int uid_limits_add(struct uid_limits *l, uid_t uid)
{
	struct uid_count *c = find(l, uid);

	if (c) {
		c->n++;
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->uid = uid;
	c->n = 1;
	if (hashtab_insert(&l->per_uid, &c->node, hashtab_hash_u64(uid)) < 0) {
		free(c);
		return -ENOMEM;
	}
	return 0;
}

void uid_limits_del(struct uid_limits *l, uid_t uid)
{
	struct uid_count *c = find(l, uid);

	if (!c)
		return;
	if (--c->n == 0) {
		hashtab_remove(&l->per_uid, &c->node);
		free(c);
	}
}
