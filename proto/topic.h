/* SPDX-License-Identifier: MIT */
/*
 * Topics, patterns, names and group names: validation and matching, shared by
 * broker and library so both accept exactly the same strings.
 *
 * Topic: 1..LBUS_MAX_TOPIC_LEN bytes of UTF-8 without NUL, '+' or '#';
 * levels are separated by '/' and may be empty ("a//b", "/a", "a/"); at
 * most LBUS_MAX_TOPIC_LEVELS of them (lbus_topic_within_limits).
 * Pattern: like a topic, but a level may be exactly "+" (one level) or, as the
 * last level, exactly "#" (zero or more levels: "a/#" matches "a" and "a/b/c").
 * A topic starting with '$' is the broker's own: a pattern whose first level
 * is a wildcard does not match it.
 * Name: 1..LBUS_MAX_NAME_LEN bytes of [A-Za-z0-9._:@-], not starting with
 * '-' or '.'. Groups follow the same rule.
 *
 * Validators return 0 or -EINVAL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

int lbus_topic_validate(const char *topic, size_t len);
/* Is a topic or pattern within the limits of length (LBUS_MAX_TOPIC_LEN)
 * and depth (LBUS_MAX_TOPIC_LEVELS)? The validators check it too; the
 * broker asks it first to name the limit in its refusal. */
bool lbus_topic_within_limits(const char *s, size_t len);
int lbus_pattern_validate(const char *pattern, size_t len);
int lbus_name_validate(const char *name, size_t len);
int lbus_group_validate(const char *group, size_t len);
/* true when topic starts with '$' (reserved for the broker). */
bool lbus_topic_is_reserved(const char *topic, size_t len);
/* Does a valid pattern match a valid topic? */
bool lbus_topic_match(const char *pattern, size_t plen, const char *topic, size_t tlen);
/* true when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool lbus_utf8_valid(const char *s, size_t len);
