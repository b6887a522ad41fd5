/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the access rules (broker/policy.c): the grammar and its
 * errors, the last matching rule deciding, users and groups (also
 * supplementary), topic and name patterns, and the subscribe question (can
 * a pattern match some topic the peer may subscribe to?).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "policy.h"

#define S(x) x, strlen(x)

static char why[256];

/* A policy of the given rule lines ("allow ..." / "deny ..."). */
static struct policy *rules(const char *const *lines)
{
	struct policy *p = policy_new();

	assert_non_null(p);
	for (; *lines; lines++) {
		bool allow = !strncmp(*lines, "allow ", 6);
		int r = policy_add(p, allow, *lines + (allow ? 6 : 5), why, sizeof(why));
		if (r)
			fail_msg("rule '%s': %s", *lines, why);
	}
	return p;
}

static int add_error(const char *rest)
{
	struct policy *p = policy_new();
	int r = policy_add(p, true, rest, why, sizeof(why));

	assert_int_equal(policy_count(p), r == 0 ? 1 : 0);
	policy_free(p);
	return r;
}

static void test_parse_errors(void **state)
{
	(void)state;
	assert_int_equal(add_error("everyone connect"), 0);
	assert_int_equal(add_error("user 4242 publish,subscribe a/+/c/#"), 0);
	assert_int_equal(add_error("user root all"), 0);
	assert_int_equal(add_error("group 0 own org.example.*"), 0);
	assert_int_equal(add_error("everyone call org.example.svc"), 0);
	assert_int_equal(add_error("everyone call jobs/+"), 0);
	assert_int_equal(add_error("user no-such-user-lbus connect"), -EINVAL);
	assert_non_null(strstr(why, "unknown user 'no-such-user-lbus'"));
	assert_int_equal(add_error("group no-such-group-lbus connect"), -EINVAL);
	assert_non_null(strstr(why, "unknown group"));
	assert_int_equal(add_error("user 4242 publish,shout"), -EINVAL);
	assert_non_null(strstr(why, "unknown verb 'shout'"));
	assert_int_equal(add_error("user 4242 publish a/#/b"), -EINVAL);
	assert_non_null(strstr(why, "invalid topic pattern"));
	assert_int_equal(add_error("user 4242 own a/b"), -EINVAL);
	assert_non_null(strstr(why, "invalid name pattern"));
	assert_int_equal(add_error("user 4242 connect,publish a/b"), 0);
	assert_int_equal(add_error("user 4242 all a/#/b"), -EINVAL);
	assert_non_null(strstr(why, "invalid pattern"));
	assert_int_equal(add_error("user 4242 publish a b"), -EINVAL);
	assert_int_equal(add_error("someone connect"), -EINVAL);
	assert_int_equal(add_error("user"), -EINVAL);
	assert_int_equal(add_error("user 4242"), -EINVAL);
}

static const struct policy_id alice = {.uid = 4242, .gid = 4242};

static void test_last_match_decides(void **state)
{
	static const char *const lines[] = {
	    "allow user 4242 connect,publish sensors/#",
	    "deny user 4242 publish sensors/private/#",
	    "allow user 4242 publish sensors/private/open",
	    NULL,
	};
	struct policy *p = rules(lines);
	const char *pat = NULL;

	(void)state;
	assert_true(policy_allows(p, &alice, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));
	assert_true(policy_allows(p, &alice, POLICY_PUBLISH, POLICY_TOPIC, S("sensors/a"), NULL));
	assert_true(policy_allows(p, &alice, POLICY_PUBLISH, POLICY_TOPIC, S("sensors"), NULL));
	assert_false(policy_allows(p, &alice, POLICY_PUBLISH, POLICY_TOPIC, S("sensors/private/x"), &pat));
	assert_string_equal(pat, "sensors/private/#");
	assert_true(policy_allows(p, &alice, POLICY_PUBLISH, POLICY_TOPIC, S("sensors/private/open"), NULL));
	/* no rule matches: denied, no pattern */
	assert_false(policy_allows(p, &alice, POLICY_PUBLISH, POLICY_TOPIC, S("other"), &pat));
	assert_string_equal(pat, "");
	assert_false(policy_allows(p, &alice, POLICY_SUBSCRIBE, POLICY_TOPIC, S("sensors/a"), NULL));
	/* another uid is not alice */
	struct policy_id bob = {.uid = 4343, .gid = 4343};
	assert_false(policy_allows(p, &bob, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));
	/* no rules at all: nothing */
	assert_false(policy_allows(NULL, &alice, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));
	policy_free(p);
}

static void test_groups_and_everyone(void **state)
{
	static const char *const lines[] = {
	    "allow group 4243 connect",
	    "allow everyone introspect",
	    "deny user 4242 introspect",
	    NULL,
	};
	struct policy *p = rules(lines);
	gid_t supp[] = {100, 4243};
	struct policy_id member = {.uid = 5000, .gid = 5000, .ngroups = 2, .groups = supp};
	struct policy_id primary = {.uid = 5001, .gid = 4243};
	struct policy_id outsider = {.uid = 5002, .gid = 5002, .ngroups = 1, .groups = supp};

	(void)state;
	assert_true(policy_allows(p, &member, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));
	assert_true(policy_allows(p, &primary, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));
	assert_false(policy_allows(p, &outsider, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));
	assert_true(policy_allows(p, &outsider, POLICY_INTROSPECT, POLICY_NONE, NULL, 0, NULL));
	assert_false(policy_allows(p, &alice, POLICY_INTROSPECT, POLICY_NONE, NULL, 0, NULL));
	policy_free(p);
}

static void test_names(void **state)
{
	static const char *const lines[] = {
	    "allow user 4242 own,send,call org.example.*",
	    "deny user 4242 own org.example.admin",
	    "allow user 4242 call jobs/+",
	    NULL,
	};
	struct policy *p = rules(lines);
	const char *pat;

	(void)state;
	assert_true(policy_allows(p, &alice, POLICY_OWN, POLICY_NAME, S("org.example.svc"), NULL));
	assert_false(policy_allows(p, &alice, POLICY_OWN, POLICY_NAME, S("org.example.admin"), &pat));
	assert_string_equal(pat, "org.example.admin");
	assert_true(policy_allows(p, &alice, POLICY_SEND, POLICY_NAME, S("org.example.admin"), NULL));
	assert_false(policy_allows(p, &alice, POLICY_OWN, POLICY_NAME, S("org.other"), NULL));
	assert_true(policy_allows(p, &alice, POLICY_CALL, POLICY_NAME, S("org.example.x"), NULL));
	assert_true(policy_allows(p, &alice, POLICY_CALL, POLICY_TOPIC, S("jobs/1"), NULL));
	assert_false(policy_allows(p, &alice, POLICY_CALL, POLICY_TOPIC, S("jobs/1/2"), NULL));
	/* a name pattern is no topic pattern: org.example.* matches no topic */
	assert_false(policy_allows(p, &alice, POLICY_CALL, POLICY_TOPIC, S("org.example.x"), NULL));
	policy_free(p);
}

/* Does the socket have to let others in? Only an allow of connect for
 * somebody besides the broker's own uid (1000 here) and root. */
static void test_admits_others(void **state)
{
	static const char *const own[] = {"allow user 1000 all", "allow user 0 connect",
					  "allow user 4242 publish x/#", "deny everyone connect", NULL};
	static const char *const user[] = {"allow user 4242 connect", NULL};
	static const char *const group[] = {"allow group 4243 all", NULL};
	static const char *const everyone[] = {"allow everyone connect,subscribe", NULL};
	const char *const *admitting[] = {user, group, everyone};
	struct policy *p = rules(own);

	(void)state;
	assert_false(policy_admits_others(NULL, 1000));
	assert_false(policy_admits_others(p, 1000));
	assert_true(policy_admits_others(p, 2000)); /* "user 1000" is another user then */
	policy_free(p);
	for (size_t i = 0; i < sizeof(admitting) / sizeof(admitting[0]); i++) {
		p = rules(admitting[i]);
		assert_true(policy_admits_others(p, 1000));
		policy_free(p);
	}
}

static void test_pattern_algebra(void **state)
{
	(void)state;
	assert_true(policy_patterns_overlap("a/#", "a"));
	assert_true(policy_patterns_overlap("a/+", "+/b"));
	assert_true(policy_patterns_overlap("#", "x/y"));
	assert_false(policy_patterns_overlap("a/b", "a/c"));
	assert_false(policy_patterns_overlap("a/+", "a"));
	assert_false(policy_patterns_overlap("a/+/c", "a/b"));
	assert_true(policy_patterns_overlap("a//b", "a/+/b"));
	assert_true(policy_pattern_covers("a/#", "a/b/#"));
	assert_true(policy_pattern_covers("a/#", "a"));
	assert_true(policy_pattern_covers("a/+", "a/b"));
	assert_false(policy_pattern_covers("a/b", "a/+"));
	assert_false(policy_pattern_covers("a/b/#", "a/#"));
	assert_false(policy_pattern_covers("a/+", "a/b/c"));
	assert_true(policy_pattern_covers("+/+", "x/y"));
}

static void test_may_subscribe(void **state)
{
	static const char *const lines[] = {
	    "allow user 4242 subscribe sensors/#",
	    "deny user 4242 subscribe sensors/private/#",
	    NULL,
	};
	struct policy *p = rules(lines);
	const char *pat;

	(void)state;
	assert_true(policy_may_subscribe(p, &alice, "sensors/#", NULL));
	assert_true(policy_may_subscribe(p, &alice, "#", NULL));
	assert_true(policy_may_subscribe(p, &alice, "sensors/+/t", NULL));
	assert_false(policy_may_subscribe(p, &alice, "sensors/private/#", &pat));
	assert_string_equal(pat, "sensors/private/#");
	assert_false(policy_may_subscribe(p, &alice, "sensors/private/x", NULL));
	assert_false(policy_may_subscribe(p, &alice, "other/#", &pat));
	assert_string_equal(pat, "");
	/* the filter still holds topic by topic */
	assert_false(policy_allows(p, &alice, POLICY_SUBSCRIBE, POLICY_TOPIC, S("sensors/private/x"), NULL));
	assert_true(policy_allows(p, &alice, POLICY_SUBSCRIBE, POLICY_TOPIC, S("sensors/x"), NULL));
	policy_free(p);
}

/* Rules in a file: '#' inside a pattern is no comment; errors name
 * file:line and keep the old configuration. */
static void test_config_file(void **state)
{
	char path[] = "/tmp/test-policy-XXXXXX";
	int fd = mkstemp(path);
	struct config cfg;
	char err[512];
	static const char good[] = "# rules\nallow user 4242 connect,subscribe sensors/# # a comment\n"
				   "deny everyone subscribe #\nmax_clients = 7\n";
	static const char bad[] = "allow user 4242 connect\nallow user 4242 jump\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(policy_count(cfg.policy), 2);
	assert_int_equal(cfg.max_clients, 7);
	/* "subscribe #" is everything: the deny wins over the allow */
	assert_false(policy_allows(cfg.policy, &alice, POLICY_SUBSCRIBE, POLICY_TOPIC, S("sensors/a"), NULL));
	assert_true(policy_allows(cfg.policy, &alice, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL));

	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, bad, strlen(bad), 0), (ssize_t)strlen(bad));
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: unknown verb 'jump'"));
	assert_non_null(strstr(err, path));
	assert_int_equal(policy_count(cfg.policy), 2); /* kept */

	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	config_print(&cfg, out);
	fclose(out);
	assert_non_null(strstr(text, "allow user 4242 connect,subscribe sensors/#"));
	assert_non_null(strstr(text, "deny  everyone subscribe\n"));
	free(text);
	config_free(&cfg);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_errors),	cmocka_unit_test(test_last_match_decides),
	    cmocka_unit_test(test_groups_and_everyone), cmocka_unit_test(test_names),
	    cmocka_unit_test(test_pattern_algebra),	cmocka_unit_test(test_may_subscribe),
	    cmocka_unit_test(test_config_file),		cmocka_unit_test(test_admits_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
