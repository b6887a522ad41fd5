/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the broker's route cache (broker/route.c): a route splits
 * plain from grouped subscriptions in trie order, is shared by every lookup
 * of its topic, goes stale only when a subscription whose pattern matches
 * its topic comes or goes (a subscribe elsewhere leaves it alone), and the
 * oldest route is dropped, stale, when the cache is full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"
#include "subscription.h"
#include "trie.h"

#define S(x) x, strlen(x)

/* A subscription indexed under pattern; grouped: in a (fake) queue group. */
static struct sub *sub_make(struct trie *t, const char *pattern, bool grouped)
{
	static struct group fake_group;
	size_t len = strlen(pattern);
	struct sub *s = calloc(1, sizeof(*s) + len + 1);

	assert_non_null(s);
	memcpy(s->pattern, pattern, len);
	s->pattern_len = len;
	if (grouped)
		s->member.group = &fake_group;
	assert_int_equal(trie_add(t, s->pattern, len, &s->te), 0);
	return s;
}

static void sub_drop(struct trie *t, struct routes *rs, struct sub *s)
{
	trie_remove(t, &s->te);
	routes_invalidate(rs, s->pattern, s->pattern_len);
	free(s);
}

static void test_split_and_share(void **state)
{
	struct trie t;
	struct routes rs;
	struct sub *a, *g1, *b, *g2, *other;
	struct route *r, *again;

	(void)state;
	assert_int_equal(trie_init(&t), 0);
	routes_init(&rs);
	a = sub_make(&t, "x/y", false);
	g1 = sub_make(&t, "x/+", true);
	b = sub_make(&t, "#", false);
	g2 = sub_make(&t, "x/#", true);
	other = sub_make(&t, "z", false);

	r = routes_get(&rs, &t, S("x/y"));
	assert_non_null(r);
	assert_true(route_is_for(r, S("x/y")));
	assert_false(route_is_for(r, S("x/z")));
	assert_int_equal(r->nplain, 2);
	assert_int_equal(r->ngrouped, 2);
	for (size_t i = 0; i < r->nplain; i++)
		assert_null(r->plain[i]->member.group);
	for (size_t i = 0; i < r->ngrouped; i++)
		assert_non_null(r->grouped[i]->member.group);
	again = routes_get(&rs, &t, S("x/y"));
	assert_ptr_equal(again, r); /* shared, not recomputed */
	route_unref(again);

	/* A subscription that does not match x/y leaves its route alone. */
	sub_drop(&t, &rs, other);
	assert_false(r->stale);
	other = sub_make(&t, "q/+", false);
	routes_invalidate(&rs, S("q/+"));
	assert_false(r->stale);

	/* One that matches makes it stale; the next lookup sees the change. */
	sub_drop(&t, &rs, g1);
	assert_true(r->stale);
	assert_false(route_is_for(r, S("x/y")));
	route_unref(r);
	r = routes_get(&rs, &t, S("x/y"));
	assert_int_equal(r->nplain, 2);
	assert_int_equal(r->ngrouped, 1);
	assert_ptr_equal(r->grouped[0], g2);
	route_unref(r);

	sub_drop(&t, &rs, a);
	sub_drop(&t, &rs, b);
	sub_drop(&t, &rs, g2);
	sub_drop(&t, &rs, other);
	routes_deinit(&rs);
	trie_deinit(&t);
}

static void test_eviction(void **state)
{
	struct trie t;
	struct routes rs;
	struct route *first;
	char topic[32];

	(void)state;
	assert_int_equal(trie_init(&t), 0);
	routes_init(&rs);
	first = routes_get(&rs, &t, S("t/0"));
	assert_non_null(first);
	for (unsigned i = 1; i < ROUTES_MAX; i++) {
		snprintf(topic, sizeof(topic), "t/%u", i);
		route_unref(routes_get(&rs, &t, S(topic)));
	}
	assert_false(first->stale);
	assert_int_equal(rs.by_topic.count, ROUTES_MAX);
	route_unref(routes_get(&rs, &t, S("t/new")));
	assert_int_equal(rs.by_topic.count, ROUTES_MAX);
	assert_true(first->stale); /* dropped, so it can never be routed on */
	route_unref(first);
	routes_deinit(&rs);
	trie_deinit(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_and_share),
	    cmocka_unit_test(test_eviction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
