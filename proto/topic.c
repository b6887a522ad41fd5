/* SPDX-License-Identifier: MIT */
/*
 * Topic, pattern and name rules (see topic.h). Matching walks pattern and
 * topic level by level without allocating; the broker's trie implements the
 * same rules for many patterns at once, and the unit tests hold both to the
 * same table of cases.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lbus-limits.h"
#include "topic.h"

bool lbus_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool lbus_topic_within_limits(const char *s, size_t len)
{
	size_t levels = 1;
	const char *p, *end;

	if (len > LBUS_MAX_TOPIC_LEN)
		return false;
	if (len == 0)
		return true; /* s may be NULL: nothing to look at (empty is for the validators) */
	p = s;
	end = s + len;
	while ((p = memchr(p, '/', (size_t)(end - p))) != NULL) {
		if (++levels > LBUS_MAX_TOPIC_LEVELS)
			return false;
		p++;
	}
	return true;
}

int lbus_topic_validate(const char *topic, size_t len)
{
	if (!topic || len == 0 || !lbus_topic_within_limits(topic, len))
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (topic[i] == '\0' || topic[i] == '+' || topic[i] == '#')
			return -EINVAL;
	return lbus_utf8_valid(topic, len) ? 0 : -EINVAL;
}

int lbus_pattern_validate(const char *pattern, size_t len)
{
	if (!pattern || len == 0 || !lbus_topic_within_limits(pattern, len))
		return -EINVAL;
	size_t level = 0; /* start of the current level */
	for (size_t i = 0; i <= len; i++) {
		if (i < len && pattern[i] != '/') {
			if (pattern[i] == '\0')
				return -EINVAL;
			continue;
		}
		/* level is pattern[level, i) */
		size_t n = i - level;
		for (size_t k = level; k < i; k++) {
			char c = pattern[k];
			if ((c == '+' || c == '#') && n != 1)
				return -EINVAL;
			if (c == '#' && i != len)
				return -EINVAL; /* '#' only as the last level */
		}
		level = i + 1;
	}
	return lbus_utf8_valid(pattern, len) ? 0 : -EINVAL;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == ':' || c == '@' || c == '-';
}

int lbus_name_validate(const char *name, size_t len)
{
	if (!name || len == 0 || len > LBUS_MAX_NAME_LEN)
		return -EINVAL;
	if (name[0] == '-' || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!name_char(name[i]))
			return -EINVAL;
	return 0;
}

int lbus_group_validate(const char *group, size_t len)
{
	if (len > LBUS_MAX_GROUP_LEN)
		return -EINVAL;
	return lbus_name_validate(group, len);
}

bool lbus_topic_is_reserved(const char *topic, size_t len)
{
	return len > 0 && topic[0] == '$';
}

/* Length of the level starting at s[0] (up to '/' or end). */
static size_t level_len(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	return slash ? (size_t)(slash - s) : len;
}

bool lbus_topic_match(const char *pattern, size_t plen, const char *topic, size_t tlen)
{
	size_t pi = 0, ti = 0;

	if (lbus_topic_is_reserved(topic, tlen) && plen > 0 && (pattern[0] == '+' || pattern[0] == '#') &&
	    (plen == 1 || pattern[1] == '/'))
		return false;
	for (;;) {
		size_t pl = level_len(pattern + pi, plen - pi);
		if (pl == 1 && pattern[pi] == '#')
			return true; /* matches the rest, zero or more levels */
		size_t tl = level_len(topic + ti, tlen - ti);
		if (!(pl == 1 && pattern[pi] == '+') &&
		    (pl != tl || memcmp(pattern + pi, topic + ti, pl) != 0))
			return false;
		pi += pl + 1;
		ti += tl + 1;
		if (pi > plen && ti > tlen)
			return true;
		if (pi > plen)
			return false;
		if (ti > tlen) {
			/* topic ended; pattern continues: matches only if the rest is "#" */
			return plen - pi == 1 && pattern[pi] == '#';
		}
	}
}
