/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the broker's subscription trie: literal levels, '+', '#'
 * (including "a/#" matching "a" and "#" alone), empty levels, the '$' rule,
 * several entries on one node, removal with pruning, and a cross-check of
 * every pattern x topic pair against lbus_topic_match().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"
#include "trie.h"

struct tentry {
	struct trie_entry te;
	int idx;
};

static const char *const patterns[] = {
    "a/b/c",	  "a/+/c", "a/#", "#",	"+",	   "+/+",     "a/b",
    "a",	  "a//b",  "/a",  "a/", "+/b/#",   "$lbus/#", "$lbus/client/+",
    "+/client/#", "a/+",   "",	  "/",	"a/b/c/#", "+/+/+",
};
static const char *const topics[] = {
    "a",
    "a/b",
    "a/b/c",
    "a/x/c",
    "a/b/c/d",
    "b",
    "a//b",
    "/a",
    "a/",
    "x/b/y",
    "$lbus/client/connected",
    "$lbus",
    "/",
    "",
    "z/client/q",
};
#define NP (sizeof(patterns) / sizeof(patterns[0]))
#define NT (sizeof(topics) / sizeof(topics[0]))

static void mark(struct trie_entry *e, void *ctx)
{
	int *hits = ctx;

	hits[container_of(e, struct tentry, te)->idx]++;
}

static void check_all(struct trie *t, const bool *present)
{
	for (size_t ti = 0; ti < NT; ti++) {
		int hits[NP] = {0};
		size_t tlen = strlen(topics[ti]);

		if (lbus_topic_validate(topics[ti], tlen) < 0)
			continue;
		trie_match(t, topics[ti], tlen, mark, hits);
		for (size_t pi = 0; pi < NP; pi++) {
			bool want = present[pi] &&
				    lbus_pattern_validate(patterns[pi], strlen(patterns[pi])) == 0 &&
				    lbus_topic_match(patterns[pi], strlen(patterns[pi]), topics[ti], tlen);
			if (hits[pi] != (want ? 1 : 0))
				fail_msg("pattern '%s' topic '%s': %d hits, want %d", patterns[pi],
					 topics[ti], hits[pi], want);
		}
	}
}

static void test_cross_check(void **state)
{
	struct tentry e[NP];
	bool present[NP];
	struct trie t;

	(void)state;
	assert_int_equal(trie_init(&t), 0);
	for (size_t i = 0; i < NP; i++) {
		e[i].idx = (int)i;
		present[i] = lbus_pattern_validate(patterns[i], strlen(patterns[i])) == 0;
		if (present[i])
			assert_int_equal(trie_add(&t, patterns[i], strlen(patterns[i]), &e[i].te), 0);
	}
	check_all(&t, present);
	/* remove every other one, check, then the rest */
	for (size_t i = 0; i < NP; i += 2) {
		if (present[i])
			trie_remove(&t, &e[i].te);
		present[i] = false;
	}
	check_all(&t, present);
	for (size_t i = 1; i < NP; i += 2) {
		if (present[i])
			trie_remove(&t, &e[i].te);
		present[i] = false;
	}
	check_all(&t, present);
	assert_int_equal(t.count, 0);
	trie_deinit(&t);
}

/* The reverse index (a trie of topics, matched by a pattern, as the
 * retained store uses it) agrees with lbus_topic_match on the same table. */
static void test_pattern_over_topics(void **state)
{
	struct tentry e[NT];
	struct trie t;

	(void)state;
	assert_int_equal(trie_init(&t), 0);
	for (size_t i = 0; i < NT; i++) {
		e[i].idx = (int)i;
		if (lbus_topic_validate(topics[i], strlen(topics[i])) == 0)
			assert_int_equal(trie_add(&t, topics[i], strlen(topics[i]), &e[i].te), 0);
	}
	for (size_t pi = 0; pi < NP; pi++) {
		int hits[NT] = {0};
		size_t plen = strlen(patterns[pi]);

		if (lbus_pattern_validate(patterns[pi], plen) < 0)
			continue;
		trie_match_pattern(&t, patterns[pi], plen, mark, hits);
		for (size_t ti = 0; ti < NT; ti++) {
			size_t tlen = strlen(topics[ti]);
			bool want = lbus_topic_validate(topics[ti], tlen) == 0 &&
				    lbus_topic_match(patterns[pi], plen, topics[ti], tlen);
			if (hits[ti] != (want ? 1 : 0))
				fail_msg("pattern '%s' over topic '%s': %d hits, want %d", patterns[pi],
					 topics[ti], hits[ti], want);
		}
	}
	for (size_t i = 0; i < NT; i++)
		if (lbus_topic_validate(topics[i], strlen(topics[i])) == 0)
			trie_remove(&t, &e[i].te);
	assert_int_equal(t.count, 0);
	trie_deinit(&t);
}

static void test_specific_cases(void **state)
{
	struct tentry e[4];
	struct trie t;
	int hits[4];

	(void)state;
	assert_int_equal(trie_init(&t), 0);
	for (int i = 0; i < 4; i++)
		e[i].idx = i;
	assert_int_equal(trie_add(&t, "a/#", 3, &e[0].te), 0);
	assert_int_equal(trie_add(&t, "#", 1, &e[1].te), 0);
	assert_int_equal(trie_add(&t, "$lbus/#", 7, &e[2].te), 0);
	assert_int_equal(trie_add(&t, "a/#", 3, &e[3].te), 0); /* two entries, one node */

	memset(hits, 0, sizeof(hits));
	trie_match(&t, "a", 1, mark, hits);
	assert_int_equal(hits[0], 1);
	assert_int_equal(hits[1], 1);
	assert_int_equal(hits[2], 0);
	assert_int_equal(hits[3], 1);

	memset(hits, 0, sizeof(hits));
	trie_match(&t, "$lbus/client/connected", 22, mark, hits);
	assert_int_equal(hits[1], 0); /* '#' does not match '$' topics */
	assert_int_equal(hits[2], 1);

	trie_remove(&t, &e[0].te);
	assert_int_equal(t.count, 3);
	trie_remove(&t, &e[0].te); /* second removal is a no-op */
	memset(hits, 0, sizeof(hits));
	trie_match(&t, "a/b", 3, mark, hits);
	assert_int_equal(hits[0], 0);
	assert_int_equal(hits[3], 1);
	trie_remove(&t, &e[3].te);
	trie_remove(&t, &e[1].te);
	trie_remove(&t, &e[2].te);
	assert_int_equal(t.count, 0);
	trie_deinit(&t);
}

static void test_many_literals(void **state)
{
	static struct tentry e[1000];
	struct trie t;
	char pat[32];
	int hits[1000];

	(void)state;
	assert_int_equal(trie_init(&t), 0);
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(pat, sizeof(pat), "dev/%d/temp", (i * 7919) % 1000);
		e[i].idx = i;
		assert_int_equal(trie_add(&t, pat, (size_t)n, &e[i].te), 0);
	}
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(pat, sizeof(pat), "dev/%d/temp", (i * 7919) % 1000);
		memset(hits, 0, sizeof(hits));
		trie_match(&t, pat, (size_t)n, mark, hits);
		assert_int_equal(hits[i], 1);
		for (int j = 0; j < 1000; j++)
			if (j != i)
				assert_int_equal(hits[j], 0);
	}
	for (int i = 0; i < 1000; i++)
		trie_remove(&t, &e[i].te);
	assert_int_equal(t.count, 0);
	trie_deinit(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cross_check),
	    cmocka_unit_test(test_pattern_over_topics),
	    cmocka_unit_test(test_specific_cases),
	    cmocka_unit_test(test_many_literals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
