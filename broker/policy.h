/* SPDX-License-Identifier: MIT */
/*
 * Access rules (lbusd.conf(5), ACCESS RULES): who other than the broker's
 * own uid and root may do what.
 *
 *   allow WHO VERBS [PATTERN]
 *   deny  WHO VERBS [PATTERN]
 *
 * WHO is `user NAME|UID`, `group NAME|GID` or `everyone`; VERBS a comma list
 * of the policy_verb names below (or `all`); PATTERN a topic pattern (+/#)
 * for publish, subscribe and call to a topic, an exact name or a prefix
 * ending in `*` for own, send and call to a name. No PATTERN: everything.
 * The last rule that matches an operation decides; no match denies.
 *
 * The rules are a list kept in parse order; an identity is the kernel's
 * view of a peer at accept (uid, gid, supplementary groups). Trusted peers
 * (the broker's uid, root) never reach this module: callers check
 * peer->trusted first, so the broker's own traffic pays nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

enum policy_verb {
	POLICY_CONNECT = 1u << 0,
	POLICY_PUBLISH = 1u << 1,
	POLICY_SUBSCRIBE = 1u << 2,
	POLICY_OWN = 1u << 3,
	POLICY_SEND = 1u << 4,
	POLICY_CALL = 1u << 5,
	POLICY_MONITOR = 1u << 6,
	POLICY_INTROSPECT = 1u << 7,
	POLICY_ALL = (1u << 8) - 1,
};

/* What the verb checks an object against. */
enum policy_object {
	POLICY_NONE,  /* connect, monitor, introspect */
	POLICY_TOPIC, /* a topic (publish, call to a topic) */
	POLICY_NAME,  /* a name (own, send, call to a name) */
};

/* A peer as the kernel saw it at accept. */
struct policy_id {
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t *groups; /* supplementary groups (SO_PEERGROUPS), owned */
};

struct policy;

/* An empty rule list (denies everything), or NULL without memory. */
struct policy *policy_new(void);
void policy_free(struct policy *p);
/* Number of rules. */
size_t policy_count(const struct policy *p);

/*
 * Parse one rule; allow tells allow from deny, rest is the text after the
 * first word. Users and groups are resolved now (getpwnam/getgrnam).
 * 0, -EINVAL with why filled in, or -ENOMEM.
 */
int policy_add(struct policy *p, bool allow, const char *rest, char *why, size_t whylen);

/*
 * May id do verb (one bit) on object[0..len) (NULL, 0 for POLICY_NONE)? When not,
 * *pattern (if not NULL) is the pattern of the deciding deny rule, or "" when
 * no rule matched.
 */
bool policy_allows(const struct policy *p, const struct policy_id *id, enum policy_verb verb,
		   enum policy_object kind, const char *object, size_t len, const char **pattern);

/* Can the subscription pattern match some topic id may subscribe to? When
 * not, *pattern as for policy_allows(). */
bool policy_may_subscribe(const struct policy *p, const struct policy_id *id, const char *sub,
			  const char **pattern);

/* Do the rules admit anybody besides self and root: is there an allow rule
 * of connect for another user, a group, or everyone? (Whether someone
 * ends up admitted is decided at connect; this says that the socket must
 * let them reach the broker.) */
bool policy_admits_others(const struct policy *p, uid_t self);

/* The name of one verb bit ("publish"). */
const char *policy_verb_name(enum policy_verb verb);

/* Print the rules as configuration lines (uids and gids resolved). */
void policy_print(const struct policy *p, FILE *out);

/* Two pure helpers on valid topic patterns, exposed for the tests: does some
 * topic match both? does every topic matching inner match outer? */
bool policy_patterns_overlap(const char *a, const char *b);
bool policy_pattern_covers(const char *outer, const char *inner);
