/* SPDX-License-Identifier: MIT */
/*
 * MQTT topic rules and route mapping (see bridge-topic.h). Plain string
 * work; the UTF-8 check is the lbus tool's own (cli-json.c).
 */
#include <errno.h>
#include <string.h>

#include "bridge-topic.h"
#include "cli.h"

static int bad(const char **why, const char *reason)
{
	*why = reason;
	return -EINVAL;
}

/* The checks shared by names, filters and prefixes: UTF-8, no NUL. */
static int text_check(const char *s, size_t len, const char **why)
{
	if (len > BRIDGE_MQTT_MAX_TOPIC)
		return bad(why, "longer than 65535 bytes");
	if (memchr(s, '\0', len))
		return bad(why, "contains a NUL byte");
	if (!cli_utf8_valid(s, len))
		return bad(why, "not valid UTF-8");
	return 0;
}

int btopic_name_check(const char *topic, size_t len, const char **why)
{
	if (len == 0)
		return bad(why, "empty");
	if (text_check(topic, len, why))
		return -EINVAL;
	if (memchr(topic, '+', len) || memchr(topic, '#', len))
		return bad(why, "contains a wildcard ('+' or '#')");
	if (topic[0] == '$')
		return bad(why, "starts with '$' (reserved for brokers)");
	return 0;
}

int btopic_prefix_check(const char *prefix, const char **why)
{
	size_t len = strlen(prefix);

	if (text_check(prefix, len, why))
		return -EINVAL;
	if (strpbrk(prefix, "+#"))
		return bad(why, "a prefix may not contain '+' or '#'");
	return 0;
}

int btopic_filter_check(const char *filter, const char **why)
{
	size_t len = strlen(filter);

	if (len == 0)
		return bad(why, "empty pattern");
	if (text_check(filter, len, why))
		return -EINVAL;
	for (const char *lvl = filter;;) {
		const char *end = strchr(lvl, '/');
		size_t n = end ? (size_t)(end - lvl) : strlen(lvl);

		if (memchr(lvl, '+', n) && n != 1)
			return bad(why, "'+' must be a whole level");
		if (memchr(lvl, '#', n) && (n != 1 || end))
			return bad(why, "'#' must be the whole last level");
		if (!end)
			return 0;
		lvl = end + 1;
	}
}

bool btopic_match(const char *filter, const char *topic)
{
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		const char *fe = strchr(filter, '/'), *te = strchr(topic, '/');
		size_t fn = fe ? (size_t)(fe - filter) : strlen(filter);
		size_t tn = te ? (size_t)(te - topic) : strlen(topic);

		if (fn == 1 && filter[0] == '#')
			return true;
		if (!(fn == 1 && filter[0] == '+') && (fn != tn || memcmp(filter, topic, fn)))
			return false;
		if (!fe || !te) /* one ended: a match if both did, or "a/#" for "a" */
			return !fe && !te ? true : (fe && !te && !strcmp(fe + 1, "#"));
		filter = fe + 1;
		topic = te + 1;
	}
}

long btopic_map(const char *topic, const char *from_prefix, const char *to_prefix, char *out, size_t cap)
{
	size_t fl = strlen(from_prefix), tl = strlen(to_prefix), rest;

	if (strncmp(topic, from_prefix, fl))
		return -ENOENT;
	rest = strlen(topic + fl);
	if (tl + rest + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, to_prefix, tl);
	memcpy(out + tl, topic + fl, rest + 1);
	return (long)(tl + rest);
}
