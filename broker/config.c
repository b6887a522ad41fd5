/* SPDX-License-Identifier: MIT */
/*
 * Config file parser (see config.h). Parsing goes into a copy that replaces
 * the caller's config only when the whole file is valid, so a bad reload
 * leaves the running limits in place.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lbus-limits.h"

void config_defaults(struct config *cfg)
{
	cfg->max_frame = LBUS_DEFAULT_MAX_FRAME;
	cfg->max_queue = LBUS_DEFAULT_MAX_QUEUE;
	cfg->hello_timeout_ms = LBUS_HELLO_TIMEOUT_MS;
	cfg->frame_timeout_ms = LBUS_FRAME_TIMEOUT_MS;
	cfg->retained_max = LBUS_DEFAULT_RETAINED_MAX;
	cfg->socket_mode = 0600;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_u64(const char *v, int base, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (!*v || *v == '-')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, base);
	if (errno || *end || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

/* Text of a rejection, sized for config_load()'s message. */
struct why {
	char text[160];
};

/* Parse val for key as an integer in [min, max] (base 8 or 10). 0, or
 * -EINVAL with why saying what the valid values are. */
static int get_u64(const char *key, const char *val, int base, uint64_t min, uint64_t max, uint64_t *out,
		   struct why *why)
{
	if (parse_u64(val, base, min, max, out) == 0)
		return 0;
	if (base == 8)
		snprintf(why->text, sizeof(why->text), "invalid value '%.40s' for %s (want octal %#llo to %#llo)", val,
			 key, (unsigned long long)min, (unsigned long long)max);
	else
		snprintf(why->text, sizeof(why->text), "invalid value '%.40s' for %s (want an integer from %llu to %llu)",
			 val, key, (unsigned long long)min, (unsigned long long)max);
	return -EINVAL;
}

/* Apply one key = value to cfg; -EINVAL with why set on failure. */
static int config_set(struct config *cfg, const char *key, const char *val, struct why *why)
{
	uint64_t n;

	if (!strcmp(key, "max_frame")) {
		if (get_u64(key, val, 10, LBUS_MIN_MAX_FRAME, 1u << 30, &n, why))
			return -EINVAL;
		cfg->max_frame = (uint32_t)n;
	} else if (!strcmp(key, "max_queue")) {
		if (get_u64(key, val, 10, 4096, UINT64_MAX / 4, &n, why))
			return -EINVAL;
		cfg->max_queue = n;
	} else if (!strcmp(key, "hello_timeout_ms") || !strcmp(key, "frame_timeout_ms")) {
		if (get_u64(key, val, 10, 1, 86400000, &n, why))
			return -EINVAL;
		if (key[0] == 'h')
			cfg->hello_timeout_ms = (uint32_t)n;
		else
			cfg->frame_timeout_ms = (uint32_t)n;
	} else if (!strcmp(key, "retained_max")) {
		if (get_u64(key, val, 10, 0, UINT64_MAX / 4, &n, why))
			return -EINVAL;
		cfg->retained_max = n;
	} else if (!strcmp(key, "socket_mode")) {
		if (get_u64(key, val, 8, 0, 0777, &n, why))
			return -EINVAL;
		cfg->socket_mode = (mode_t)n;
	} else {
		snprintf(why->text, sizeof(why->text), "unknown key '%s'", key);
		return -EINVAL;
	}
	return 0;
}

static int config_parse_line(struct config *cfg, char *line, struct why *why)
{
	char *eq, *key, *val, *hash = strchr(line, '#');

	if (hash)
		*hash = '\0';
	key = trim(line);
	if (!*key)
		return 0;
	eq = strchr(key, '=');
	if (!eq) {
		snprintf(why->text, sizeof(why->text), "expected key = value");
		return -EINVAL;
	}
	*eq = '\0';
	val = trim(eq + 1);
	key = trim(key);
	return config_set(cfg, key, val, why);
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config tmp = *cfg;
	char line[1024];
	unsigned lineno = 0;
	struct why why = {{0}};
	int ret = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		ret = config_parse_line(&tmp, line, &why);
		if (ret < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why.text);
			break;
		}
	}
	fclose(f);
	if (ret == 0)
		*cfg = tmp;
	return ret;
}
