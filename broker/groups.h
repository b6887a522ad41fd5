/* SPDX-License-Identifier: MIT */
/*
 * Queue groups: subscriptions that name the same non-empty group share the
 * messages they match; each message goes to exactly one member of each
 * group. Membership is by group name across the whole broker, so members
 * with different patterns share what both match.
 *
 * Choosing the member. Each member remembers when it was last served (the
 * group's delivery sequence number at that time). Among the members that
 * match a message:
 *  1. those whose queue has room beat those whose queue is full;
 *  2. among those with room, the least recently served wins (a new member
 *     counts as never served, so it gets the next message): with a stable
 *     membership this is exact round-robin, and a member that had no room
 *     catches up first once it drains;
 *  3. when every candidate is full, the least loaded (fewest queued bytes)
 *     wins and its own policy applies (drop: counted and reported to it;
 *     block: the publisher waits).
 * Ties go to the member offered first.
 *
 * Use from the router, per routed message, with no allocation:
 *
 *     groups_begin(gs);
 *     for each matching subscription s:
 *             if (s->member.group) groups_offer(gs, &s->member, full, queued);
 *             else deliver(s);
 *     while ((m = groups_next_winner(gs))) deliver(container_of(m, ...));
 *
 * A member that leaves while it has messages queued keeps them: its queue
 * is the client's, untouched by group changes. Leaving is allowed during a
 * round (a client closed while the winners are delivered): a group whose
 * chosen member left gets no winner for that message.
 *
 * Ownership: groups are created by the first join and freed by the last
 * leave; members are embedded in subscriptions (struct group_member).
 * Errors: groups_join returns 0, -EINVAL (invalid group name) or -ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashtab.h"

struct group;

/* Embedded in a subscription; zero-initialised means "no group". */
struct group_member {
	struct group *group;
	uint64_t last_served; /* group->seq when it last won; 0 = never */
};

struct group {
	struct hashtab_node node; /* by name */
	uint32_t members;
	uint64_t seq; /* messages given to members so far */
	/* state of the current round (see groups_begin) */
	uint64_t round;
	struct group *next_offered;
	struct group_member *best;
	bool best_full;
	size_t best_queued;
	size_t name_len;
	char name[]; /* NUL-terminated */
};

struct groups {
	struct hashtab by_name;
	uint64_t round;
	struct group *offered; /* groups offered a member this round */
};

void groups_init(struct groups *gs);
/* Free the groups; their members must have left (or be freed with them). */
void groups_deinit(struct groups *gs);
static inline size_t groups_count(const struct groups *gs)
{
	return gs->by_name.count;
}

/* Put m (not in a group) into the group called name (validated here). */
int groups_join(struct groups *gs, struct group_member *m, const char *name, size_t len);
/* Take m out of its group (no-op when it has none). */
void groups_leave(struct groups *gs, struct group_member *m);

/* Start choosing recipients for a new message. */
void groups_begin(struct groups *gs);
/* A member matches the message; full: its queue has no room for it;
 * queued: bytes its client has queued. */
void groups_offer(struct groups *gs, struct group_member *m, bool full, size_t queued);
/* The chosen member of the next group offered this round (marked served),
 * or NULL when every group has had its winner. */
struct group_member *groups_next_winner(struct groups *gs);
