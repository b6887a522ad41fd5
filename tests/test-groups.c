/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue groups (broker/groups.c): exact round-robin with a
 * stable membership, one winner per group per message, full members
 * skipped, least-loaded when all are full, members joining and leaving
 * between messages and during a round, group life cycle and name checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "groups.h"
#include "list.h"

struct member {
	struct group_member gm;
	bool full;
	size_t queued;
	int got;
};

static int join(struct groups *gs, struct member *m, const char *name)
{
	memset(m, 0, sizeof(*m));
	return groups_join(gs, &m->gm, name, strlen(name));
}

/* Route one message matched by members[0..n); returns winners. */
static int route(struct groups *gs, struct member **members, int n)
{
	struct group_member *w;
	int winners = 0;

	groups_begin(gs);
	for (int i = 0; i < n; i++)
		groups_offer(gs, &members[i]->gm, members[i]->full, members[i]->queued);
	while ((w = groups_next_winner(gs))) {
		container_of(w, struct member, gm)->got++;
		winners++;
	}
	return winners;
}

static void test_round_robin(void **state)
{
	struct groups gs;
	struct member m[4];
	struct member *all[4] = {&m[0], &m[1], &m[2], &m[3]};

	groups_init(&gs);
	for (int i = 0; i < 4; i++)
		assert_int_equal(join(&gs, &m[i], "workers"), 0);
	assert_int_equal(groups_count(&gs), 1);
	for (int k = 0; k < 10000; k++) {
		assert_int_equal(route(&gs, all, 4), 1);
		/* exact rotation: after every full turn, all are equal */
		if (k % 4 == 3)
			for (int i = 0; i < 4; i++)
				assert_int_equal(m[i].got, (k + 1) / 4);
	}
	for (int i = 0; i < 4; i++)
		groups_leave(&gs, &m[i].gm);
	assert_int_equal(groups_count(&gs), 0);
	groups_deinit(&gs);
}

static void test_two_groups(void **state)
{
	struct groups gs;
	struct member a1, a2, b1;
	struct member *all[3] = {&a1, &b1, &a2};

	groups_init(&gs);
	assert_int_equal(join(&gs, &a1, "a"), 0);
	assert_int_equal(join(&gs, &a2, "a"), 0);
	assert_int_equal(join(&gs, &b1, "b"), 0);
	assert_int_equal(groups_count(&gs), 2);
	for (int k = 0; k < 100; k++)
		assert_int_equal(route(&gs, all, 3), 2); /* one per group */
	assert_int_equal(a1.got, 50);
	assert_int_equal(a2.got, 50);
	assert_int_equal(b1.got, 100);
	/* a message only a2's pattern matches goes to a2 */
	struct member *only_a2[1] = {&a2};
	assert_int_equal(route(&gs, only_a2, 1), 1);
	assert_int_equal(a2.got, 51);
	/* then a1 is the least recently served */
	assert_int_equal(route(&gs, all, 3), 2);
	assert_int_equal(a1.got, 51);
	groups_deinit(&gs);
}

static void test_full_members(void **state)
{
	struct groups gs;
	struct member m[3];
	struct member *all[3] = {&m[0], &m[1], &m[2]};

	groups_init(&gs);
	for (int i = 0; i < 3; i++)
		assert_int_equal(join(&gs, &m[i], "g"), 0);
	m[1].full = true;
	for (int k = 0; k < 100; k++)
		route(&gs, all, 3);
	assert_int_equal(m[1].got, 0);
	assert_int_equal(m[0].got, 50);
	assert_int_equal(m[2].got, 50);
	/* drained: it is the least recently served and catches up first */
	m[1].full = false;
	route(&gs, all, 3);
	assert_int_equal(m[1].got, 1);

	/* all full: the least loaded wins */
	for (int i = 0; i < 3; i++)
		m[i].full = true;
	m[0].queued = 300;
	m[1].queued = 100;
	m[2].queued = 200;
	route(&gs, all, 3);
	assert_int_equal(m[1].got, 2);
	groups_deinit(&gs);
}

static void test_join_leave(void **state)
{
	struct groups gs;
	struct member m[3];
	struct member *all[3] = {&m[0], &m[1], &m[2]};

	groups_init(&gs);
	assert_int_equal(join(&gs, &m[0], "g"), 0);
	assert_int_equal(join(&gs, &m[1], "g"), 0);
	for (int k = 0; k < 10; k++)
		route(&gs, all, 2);
	assert_int_equal(join(&gs, &m[2], "g"), 0); /* newcomer is served next */
	route(&gs, all, 3);
	assert_int_equal(m[2].got, 1);
	for (int k = 0; k < 9; k++)
		route(&gs, all, 3);
	assert_int_equal(m[0].got + m[1].got + m[2].got, 20);
	assert_int_equal(m[2].got, 4);

	groups_leave(&gs, &m[0].gm);
	groups_leave(&gs, &m[0].gm); /* twice is a no-op */
	struct member *rest[2] = {&m[1], &m[2]};
	for (int k = 0; k < 10; k++)
		assert_int_equal(route(&gs, rest, 2), 1);
	assert_int_equal(groups_count(&gs), 1);

	/* the last member leaves during a round: the group goes away safely */
	groups_leave(&gs, &m[1].gm);
	groups_begin(&gs);
	groups_offer(&gs, &m[2].gm, false, 0);
	groups_leave(&gs, &m[2].gm);
	assert_null(groups_next_winner(&gs));
	assert_int_equal(groups_count(&gs), 0);
	groups_deinit(&gs);
}

static void test_names(void **state)
{
	struct groups gs;
	struct member m;

	groups_init(&gs);
	assert_int_equal(join(&gs, &m, "-bad"), -EINVAL);
	assert_null(m.gm.group);
	assert_int_equal(join(&gs, &m, "a/b"), -EINVAL);
	assert_int_equal(join(&gs, &m, "ok.group:1"), 0);
	assert_string_equal(m.gm.group->name, "ok.group:1");
	groups_deinit(&gs); /* frees groups that still have members */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_robin),	 cmocka_unit_test(test_two_groups),
	    cmocka_unit_test(test_full_members), cmocka_unit_test(test_join_leave),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
