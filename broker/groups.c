/* SPDX-License-Identifier: MIT */
/*
 * Queue groups (see groups.h). A round is identified by a number, so
 * starting one is O(1): a group whose `round` is stale has not been offered
 * anything yet for this message, and its first offer links it into the
 * round's list of groups. Nothing is allocated per message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "list.h"
#include "topic.h"

void groups_init(struct groups *gs)
{
	hashtab_init(&gs->by_name);
	gs->round = 0;
	gs->offered = NULL;
}

static int group_free_node(struct hashtab_node *n, void *ud)
{
	struct groups *gs = ud;
	hashtab_remove(&gs->by_name, n);
	free(container_of(n, struct group, node));
	return 0;
}

void groups_deinit(struct groups *gs)
{
	hashtab_foreach(&gs->by_name, group_free_node, gs);
	hashtab_deinit(&gs->by_name);
	groups_init(gs);
}

static struct group *group_lookup(struct groups *gs, const char *name, size_t len, uint64_t hash)
{
	for (struct hashtab_node *n = hashtab_first(&gs->by_name, hash); n; n = hashtab_next(n, hash)) {
		struct group *g = container_of(n, struct group, node);
		if (g->name_len == len && memcmp(g->name, name, len) == 0)
			return g;
	}
	return NULL;
}

static struct group *group_new(struct groups *gs, const char *name, size_t len, uint64_t hash)
{
	struct group *g = calloc(1, sizeof(*g) + len + 1);

	if (!g)
		return NULL;
	if (hashtab_insert(&gs->by_name, &g->node, hash) < 0) {
		free(g);
		return NULL;
	}
	g->round = gs->round;
	g->name_len = len;
	memcpy(g->name, name, len);
	return g;
}

int groups_join(struct groups *gs, struct group_member *m, const char *name, size_t len)
{
	uint64_t hash;
	struct group *g;

	if (lbus_group_validate(name, len) < 0)
		return -EINVAL;
	hash = hashtab_hash_bytes(name, len);
	g = group_lookup(gs, name, len, hash);
	if (!g) {
		g = group_new(gs, name, len, hash);
		if (!g)
			return -ENOMEM;
	}
	g->members++;
	m->group = g;
	m->last_served = 0;
	return 0;
}

/* Take g off the current round's list (it is losing its last member). */
static void group_unoffer(struct groups *gs, struct group *g)
{
	for (struct group **p = &gs->offered; *p; p = &(*p)->next_offered) {
		if (*p == g) {
			*p = g->next_offered;
			return;
		}
	}
}

void groups_leave(struct groups *gs, struct group_member *m)
{
	struct group *g = m->group;

	if (!g)
		return;
	m->group = NULL;
	if (g->best == m)
		g->best = NULL; /* leaving mid-round: the group has no winner */
	if (--g->members > 0)
		return;
	if (g->round == gs->round)
		group_unoffer(gs, g);
	hashtab_remove(&gs->by_name, &g->node);
	free(g);
}

void groups_begin(struct groups *gs)
{
	gs->round++;
	gs->offered = NULL;
}

/* Does candidate (full, queued, last_served) beat the group's best? */
static bool group_better(const struct group *g, const struct group_member *m, bool full, size_t queued)
{
	if (!g->best)
		return true;
	if (full != g->best_full)
		return !full;
	if (full && queued != g->best_queued)
		return queued < g->best_queued;
	return m->last_served < g->best->last_served;
}

void groups_offer(struct groups *gs, struct group_member *m, bool full, size_t queued)
{
	struct group *g = m->group;

	if (g->round != gs->round) {
		g->round = gs->round;
		g->best = NULL;
		g->next_offered = gs->offered;
		gs->offered = g;
	}
	if (group_better(g, m, full, queued)) {
		g->best = m;
		g->best_full = full;
		g->best_queued = queued;
	}
}

struct group_member *groups_next_winner(struct groups *gs)
{
	while (gs->offered) {
		struct group *g = gs->offered;
		struct group_member *m = g->best;

		gs->offered = g->next_offered;
		g->best = NULL;
		if (m) {
			m->last_served = ++g->seq;
			return m;
		}
	}
	return NULL;
}
