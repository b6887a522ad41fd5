/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/topic.c: which topics, patterns, names and groups are
 * valid, and which pattern matches which topic. One table of pattern/topic
 * cases is the specification (DESIGN.md "Topics", PROTOCOL.md "Topics and
 * patterns"): `+` is exactly one level, `#` as last level is zero or more,
 * levels may be empty, and `$` topics are not matched by a pattern that
 * starts with a wildcard.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lbus-limits.h"
#include "topic.h"

struct match_case {
	const char *pattern;
	const char *topic;
	bool match;
};

static const struct match_case match_cases[] = {
    /* exact */
    {"a", "a", true},
    {"a", "b", false},
    {"a/b/c", "a/b/c", true},
    {"a/b/c", "a/b", false},
    {"a/b", "a/b/c", false},
    {"abc", "ab", false},
    {"ab", "abc", false},
    {"a/b", "a/bc", false},
    /* + is exactly one level */
    {"+", "a", true},
    {"+", "a/b", false},
    {"a/+", "a/b", true},
    {"a/+", "a", false},
    {"a/+", "a/b/c", false},
    {"a/+/c", "a/b/c", true},
    {"a/+/c", "a/b/d", false},
    {"+/b", "a/b", true},
    {"+/+", "a/b", true},
    {"+/+", "a", false},
    {"+/+", "a/b/c", false},
    /* empty levels are levels */
    {"+", "/", false},
    {"+/+", "/", true},
    {"/+", "/a", true},
    {"+/a", "/a", true},
    {"a/+", "a/", true},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"a//b", "a/b", false},
    {"a/b", "a//b", false},
    {"/", "/", true},
    {"a/", "a", false},
    {"a", "a/", false},
    /* # is zero or more levels, last only */
    {"#", "a", true},
    {"#", "a/b/c", true},
    {"#", "/", true},
    {"a/#", "a", true},
    {"a/#", "a/b", true},
    {"a/#", "a/b/c/d", true},
    {"a/#", "ab", false},
    {"a/#", "b/a", false},
    {"a/#", "a/", true},
    {"a/b/#", "a", false},
    {"a/b/#", "a/b", true},
    {"+/#", "a", true},
    {"+/#", "a/b/c", true},
    {"a/+/#", "a", false},
    {"a/+/#", "a/b", true},
    {"/#", "/a", true},
    {"/#", "a", false},
    /* $ topics: not matched by a pattern starting with a wildcard */
    {"#", "$lbus/client/connected", false},
    {"+/client/connected", "$lbus/client/connected", false},
    {"+/#", "$lbus/x", false},
    {"+", "$x", false},
    {"$lbus/#", "$lbus/client/connected", true},
    {"$lbus/+/connected", "$lbus/client/connected", true},
    {"$lbus/client/connected", "$lbus/client/connected", true},
    {"$lbus/#", "$lbus", true},
    {"a/#", "a/$b", true},
    {"+/+", "a/$b", true},
    {"#", "a$", true},
    /* UTF-8 */
    {"caf\xc3\xa9/+", "caf\xc3\xa9/t", true},
    {"caf\xc3\xa9/+", "cafe/t", false},
    {"\xe2\x82\xac", "\xe2\x82\xac", true},
};

static void test_match_table(void **state)
{
	int failures = 0;
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		assert_int_equal(lbus_pattern_validate(c->pattern, strlen(c->pattern)), 0);
		assert_int_equal(lbus_topic_validate(c->topic, strlen(c->topic)), 0);
		bool m = lbus_topic_match(c->pattern, strlen(c->pattern), c->topic, strlen(c->topic));
		if (m != c->match) {
			fprintf(stderr, "pattern '%s' topic '%s': got %s, want %s\n", c->pattern, c->topic,
				m ? "match" : "no match", c->match ? "match" : "no match");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* A pattern without wildcards matches exactly the same topic. */
static void test_match_is_exact_without_wildcards(void **state)
{
	static const char *const topics[] = {"a", "a/b", "a//b", "/a", "a/", "/", "x/y/z", "$sys"};
	for (size_t i = 0; i < 8; i++)
		for (size_t j = 0; j < 8; j++)
			assert_int_equal(
			    lbus_topic_match(topics[i], strlen(topics[i]), topics[j], strlen(topics[j])),
			    i == j);
}

/* Lengths are honoured: bytes after len are not part of the string. */
static void test_match_uses_lengths(void **state)
{
	assert_true(lbus_topic_match("a/b-one", 3, "a/b-two", 3));
	assert_false(lbus_topic_match("a/b", 3, "a/bc", 4));
	assert_true(lbus_topic_match("a/#garbage", 3, "a/x/y", 5));
	assert_int_equal(lbus_topic_validate("a/b+", 3), 0);
	assert_int_equal(lbus_pattern_validate("a/#/b", 3), 0);
}

static const char *const invalid_topics[] = {
    "a+",
    "+",
    "a/+",
    "#",
    "a/#",
    "a/b#",
    "\xff",
    "caf\xc3",
    "\xc0\xaf",		/* overlong '/' */
    "\xed\xa0\x80",	/* surrogate */
    "\xf4\x90\x80\x80", /* above U+10FFFF */
    "\xe0\x80\xaf",	/* overlong */
};

static const char *const valid_topics[] = {
    "a",
    "a/b/c",
    "/",
    "//",
    "a//b",
    "/a",
    "a/",
    "$lbus/x",
    "a b",
    "caf\xc3\xa9",
    "\xf0\x9f\x98\x80",
    "\xef\xbf\xbf",
    "a$b",
    "-",
    ".",
};

static void test_topic_validation(void **state)
{
	for (size_t i = 0; i < sizeof(invalid_topics) / sizeof(invalid_topics[0]); i++)
		if (lbus_topic_validate(invalid_topics[i], strlen(invalid_topics[i])) != -EINVAL)
			fail_msg("topic '%s' accepted", invalid_topics[i]);
	for (size_t i = 0; i < sizeof(valid_topics) / sizeof(valid_topics[0]); i++)
		if (lbus_topic_validate(valid_topics[i], strlen(valid_topics[i])) != 0)
			fail_msg("topic '%s' refused", valid_topics[i]);
	assert_int_equal(lbus_topic_validate("", 0), -EINVAL);
	assert_int_equal(lbus_topic_validate(NULL, 0), -EINVAL);
	assert_int_equal(lbus_topic_validate("a\0b", 3), -EINVAL); /* embedded NUL */
}

static void test_topic_length_limit(void **state)
{
	char *t = malloc(LBUS_MAX_TOPIC_LEN + 2);
	assert_non_null(t);
	memset(t, 'a', LBUS_MAX_TOPIC_LEN + 1);
	t[LBUS_MAX_TOPIC_LEN + 1] = '\0';
	assert_int_equal(lbus_topic_validate(t, LBUS_MAX_TOPIC_LEN), 0);
	assert_int_equal(lbus_pattern_validate(t, LBUS_MAX_TOPIC_LEN), 0);
	assert_int_equal(lbus_topic_validate(t, LBUS_MAX_TOPIC_LEN + 1), -EINVAL);
	assert_int_equal(lbus_pattern_validate(t, LBUS_MAX_TOPIC_LEN + 1), -EINVAL);
	free(t);
}

/* "a/a/.../a" with n levels, in a static buffer. */
static const char *levels(size_t n)
{
	static char buf[LBUS_MAX_TOPIC_LEVELS * 4];

	assert_true(2 * n <= sizeof(buf));
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = 'a';
		buf[2 * i + 1] = '/';
	}
	buf[2 * n - 1] = '\0';
	return buf;
}

static void test_topic_depth_limit(void **state)
{
	const char *t = levels(LBUS_MAX_TOPIC_LEVELS);

	assert_int_equal(lbus_topic_validate(t, strlen(t)), 0);
	assert_int_equal(lbus_pattern_validate(t, strlen(t)), 0);
	assert_true(lbus_topic_within_limits(t, strlen(t)));
	t = levels(LBUS_MAX_TOPIC_LEVELS + 1);
	assert_int_equal(lbus_topic_validate(t, strlen(t)), -EINVAL);
	assert_int_equal(lbus_pattern_validate(t, strlen(t)), -EINVAL);
	assert_false(lbus_topic_within_limits(t, strlen(t)));
	/* empty levels count: 32 slashes are 33 levels */
	char slashes[LBUS_MAX_TOPIC_LEVELS + 1];
	memset(slashes, '/', sizeof(slashes));
	assert_int_equal(lbus_topic_validate(slashes, LBUS_MAX_TOPIC_LEVELS - 1), 0);
	assert_int_equal(lbus_topic_validate(slashes, LBUS_MAX_TOPIC_LEVELS), -EINVAL);
	assert_int_equal(lbus_pattern_validate("+/+/#", 5), 0);
	(void)state;
}

static void test_pattern_validation(void **state)
{
	static const char *const valid[] = {
	    "#",  "+",	"a/#",	"+/+",	   "+/#", "a/+/c", "/#",
	    "/+", "+/", "a//+", "$lbus/#", "a/b", "//",	   "caf\xc3\xa9/+",
	};
	static const char *const invalid[] = {
	    "#/a",  "a/#/b", "##", "++",     "a+",     "+a",  "a/b+",
	    "a/#b", "a/b#",  "#a", "a/+b/c", "\xff/#", "#/#", "+#",
	};
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		if (lbus_pattern_validate(valid[i], strlen(valid[i])) != 0)
			fail_msg("pattern '%s' refused", valid[i]);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		if (lbus_pattern_validate(invalid[i], strlen(invalid[i])) != -EINVAL)
			fail_msg("pattern '%s' accepted", invalid[i]);
	assert_int_equal(lbus_pattern_validate("", 0), -EINVAL);
	assert_int_equal(lbus_pattern_validate("a\0b", 3), -EINVAL);
}

static void test_name_validation(void **state)
{
	static const char *const valid[] = {
	    "player", "org.example.Player", "a", "A-b_c:d@e.f", "0", "x-", "x.", "_x", "@x", ":x",
	};
	static const char *const invalid[] = {
	    "-x", ".x", "a b", "a/b", "a+b", "a#b", "caf\xc3\xa9", "$x", "a,b", "a\tb", "*",
	};
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		if (lbus_name_validate(valid[i], strlen(valid[i])) != 0)
			fail_msg("name '%s' refused", valid[i]);
		if (lbus_group_validate(valid[i], strlen(valid[i])) != 0)
			fail_msg("group '%s' refused", valid[i]);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		if (lbus_name_validate(invalid[i], strlen(invalid[i])) != -EINVAL)
			fail_msg("name '%s' accepted", invalid[i]);
		if (lbus_group_validate(invalid[i], strlen(invalid[i])) != -EINVAL)
			fail_msg("group '%s' accepted", invalid[i]);
	}
	assert_int_equal(lbus_name_validate("", 0), -EINVAL);
	assert_int_equal(lbus_name_validate("a\0", 2), -EINVAL);

	char n[LBUS_MAX_NAME_LEN + 2];
	memset(n, 'n', sizeof(n));
	assert_int_equal(lbus_name_validate(n, LBUS_MAX_NAME_LEN), 0);
	assert_int_equal(lbus_name_validate(n, LBUS_MAX_NAME_LEN + 1), -EINVAL);
	assert_int_equal(lbus_group_validate(n, LBUS_MAX_GROUP_LEN), 0);
	assert_int_equal(lbus_group_validate(n, LBUS_MAX_GROUP_LEN + 1), -EINVAL);
}

static void test_reserved(void **state)
{
	assert_true(lbus_topic_is_reserved("$lbus/x", 7));
	assert_true(lbus_topic_is_reserved("$", 1));
	assert_false(lbus_topic_is_reserved("a/$", 3));
	assert_false(lbus_topic_is_reserved("", 0));
	assert_false(lbus_topic_is_reserved("$x", 0));
}

static void test_utf8(void **state)
{
	struct {
		const char *s;
		bool valid;
	} cases[] = {
	    {"", true},
	    {"ascii", true},
	    {"\xc2\x80", true},		 /* U+0080 */
	    {"\xdf\xbf", true},		 /* U+07FF */
	    {"\xe0\xa0\x80", true},	 /* U+0800 */
	    {"\xed\x9f\xbf", true},	 /* U+D7FF */
	    {"\xee\x80\x80", true},	 /* U+E000 */
	    {"\xf0\x90\x80\x80", true},	 /* U+10000 */
	    {"\xf4\x8f\xbf\xbf", true},	 /* U+10FFFF */
	    {"\x80", false},		 /* lone continuation */
	    {"\xc1\xbf", false},	 /* overlong */
	    {"\xc2", false},		 /* truncated */
	    {"\xe2\x82", false},	 /* truncated */
	    {"\xf0\x9f\x98", false},	 /* truncated */
	    {"\xe2\x28\xa1", false},	 /* bad continuation */
	    {"\xed\xbf\xbf", false},	 /* surrogate U+DFFF */
	    {"\xf0\x8f\xbf\xbf", false}, /* overlong 4-byte */
	    {"\xf5\x80\x80\x80", false},
	    {"\xfe", false},
	    {"\xff", false},
	    {"a\xc3\xa9"
	     "b\xc3",
	     false}, /* valid then truncated at the end */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (lbus_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].valid)
			fail_msg("utf8 case %zu: want %s", i, cases[i].valid ? "valid" : "invalid");
	/* A multi-byte character cut by len is invalid. */
	assert_false(lbus_utf8_valid("\xc3\xa9", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match_table),
	    cmocka_unit_test(test_match_is_exact_without_wildcards),
	    cmocka_unit_test(test_match_uses_lengths),
	    cmocka_unit_test(test_topic_validation),
	    cmocka_unit_test(test_topic_length_limit),
	    cmocka_unit_test(test_topic_depth_limit),
	    cmocka_unit_test(test_pattern_validation),
	    cmocka_unit_test(test_name_validation),
	    cmocka_unit_test(test_reserved),
	    cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
