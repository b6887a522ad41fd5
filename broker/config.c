/* SPDX-License-Identifier: MIT */
/*
 * Config file parser (see config.h). One table row per key: its name, type,
 * valid range, default and help. Parsing, range messages, defaults and the
 * listing of --check-config all read the table, so a new key is one row (and
 * a field of struct config). Parsing goes into a copy that replaces the
 * caller's config only when the whole file is valid, so a bad reload leaves
 * the running limits in place.
 *
 * A line is a comment, blank, `key = value`, or an access rule (first word
 * `allow` or `deny`, no `=` needed): rules go to config_parse_rule().
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lbus-limits.h"
#include "policy.h"

enum config_type {
	CONFIG_UINT,  /* decimal integer */
	CONFIG_OCTAL, /* octal permission bits, e.g. 0660 */
	CONFIG_MS,    /* milliseconds: 1500, 1500ms or 2s */
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset; /* of a uint32_t or uint64_t in struct config */
	size_t size;
	uint64_t min, max, def;
	const char *help;
};

#define KEY(field, type, min, max, def, help)                                                                \
	{                                                                                                    \
#field, type, offsetof(struct config, field), sizeof(((struct config *)0)->field), min, max, \
		    def, help                                                                                \
	}
#define KEY_NAMED(name, field, type, min, max, def, help)                                                    \
	{                                                                                                    \
		name, type, offsetof(struct config, field), sizeof(((struct config *)0)->field), min, max,   \
		    def, help                                                                                \
	}

#define MAX_COUNT 1048576u
#define MAX_MS 86400000u

static const struct config_key keys[] = {
    KEY(max_frame, CONFIG_UINT, LBUS_MIN_MAX_FRAME, 1u << 30, LBUS_DEFAULT_MAX_FRAME,
	"largest frame a client may send, in bytes (applies to new connections)"),
    KEY(max_queue, CONFIG_UINT, 4096, UINT64_MAX / 4, LBUS_DEFAULT_MAX_QUEUE,
	"bytes queued for one client before its subscriptions' policy (drop or block) applies"),
    KEY(hello_timeout_ms, CONFIG_UINT, 1, MAX_MS, LBUS_HELLO_TIMEOUT_MS,
	"a new connection must complete its hello within this many milliseconds"),
    KEY(frame_timeout_ms, CONFIG_UINT, 1, MAX_MS, LBUS_FRAME_TIMEOUT_MS,
	"a frame, once started, must be complete within this many milliseconds"),
    KEY(retained_max, CONFIG_UINT, 0, UINT64_MAX / 4, LBUS_DEFAULT_RETAINED_MAX,
	"memory the retained messages may take, in bytes really used (index and allocator overhead included; "
	"0: retain nothing)"),
    KEY(partial_frames_max, CONFIG_UINT, LBUS_MIN_MAX_FRAME, UINT64_MAX / 4, LBUS_DEFAULT_PARTIAL_FRAMES_MAX,
	"bytes of unfinished frames all connections together may hold; a connection whose frame would pass "
	"it is closed with a 'limit' error (never less than twice max_frame)"),
    KEY(socket_mode, CONFIG_OCTAL, 0, 0777, 0600,
	"permission bits of the socket file lbusd binds (read at start only)"),
    KEY(max_clients, CONFIG_UINT, 1, MAX_COUNT, LBUS_DEFAULT_MAX_CLIENTS,
	"connections at once; one more is refused with a 'limit' error"),
    KEY(max_clients_per_uid, CONFIG_UINT, 1, MAX_COUNT, LBUS_DEFAULT_MAX_CLIENTS,
	"connections at once of one user id; set it below max_clients when other users may connect"),
    KEY(max_names_per_client, CONFIG_UINT, 1, MAX_COUNT, LBUS_DEFAULT_MAX_NAMES,
	"names one connection may own"),
    KEY(max_subscriptions_per_client, CONFIG_UINT, 1, MAX_COUNT, LBUS_DEFAULT_MAX_SUBSCRIPTIONS,
	"subscriptions one connection may hold"),
    KEY(max_pending_calls_per_client, CONFIG_UINT, 1, MAX_COUNT, LBUS_DEFAULT_MAX_PENDING_CALLS,
	"calls one connection may have waiting for a reply at once"),
    KEY(max_fds_per_client, CONFIG_UINT, 0, MAX_COUNT, LBUS_DEFAULT_MAX_FDS_PER_CLIENT,
	"file descriptors one client may have in the broker at once (sent, not yet delivered); 0: none"),
    KEY(memfd_budget, CONFIG_UINT, 0, UINT64_MAX / 4, LBUS_DEFAULT_MEMFD_BUDGET,
	"bytes of sealed memfds one client may have in the broker at once"),
    KEY_NAMED("shutdown_timeout", shutdown_timeout_ms, CONFIG_MS, 0, 600000, LBUS_DEFAULT_SHUTDOWN_TIMEOUT_MS,
	      "on SIGTERM/SIGINT, wait at most this long for queued output to reach the clients"),
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static void key_store(struct config *cfg, const struct config_key *k, uint64_t v)
{
	char *p = (char *)cfg + k->offset;

	if (k->size == sizeof(uint32_t)) {
		uint32_t v32 = (uint32_t)v;
		memcpy(p, &v32, sizeof(v32));
	} else {
		memcpy(p, &v, sizeof(v));
	}
}

static uint64_t key_load(const struct config *cfg, const struct config_key *k)
{
	const char *p = (const char *)cfg + k->offset;
	uint32_t v32;
	uint64_t v;

	if (k->size == sizeof(uint32_t)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v, p, sizeof(v));
	return v;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_KEYS; i++)
		key_store(cfg, &keys[i], keys[i].def);
}

static const struct config_key *key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
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

/* Text of a rejection, sized for config_load()'s message. */
struct why {
	char text[200];
};

/* The valid values of k, e.g. "an integer from 1 to 100". */
static void key_range(const struct config_key *k, char *out, size_t size)
{
	if (k->type == CONFIG_OCTAL)
		snprintf(out, size, "octal %#llo to %#llo", (unsigned long long)k->min,
			 (unsigned long long)k->max);
	else if (k->type == CONFIG_MS)
		snprintf(out, size, "%llu to %llu milliseconds (or with a unit: 2s, 500ms)",
			 (unsigned long long)k->min, (unsigned long long)k->max);
	else
		snprintf(out, size, "an integer from %llu to %llu", (unsigned long long)k->min,
			 (unsigned long long)k->max);
}

/* Parse v as k's type; 0 or -EINVAL (range not checked). */
static int parse_value(const struct config_key *k, const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, k->type == CONFIG_OCTAL ? 8 : 10);
	if (errno)
		return -EINVAL;
	if (k->type == CONFIG_MS && !strcmp(end, "s")) {
		if (n > UINT64_MAX / 1000)
			return -EINVAL;
		n *= 1000;
		end++;
	} else if (k->type == CONFIG_MS && !strcmp(end, "ms")) {
		end += 2;
	}
	if (*end)
		return -EINVAL;
	*out = n;
	return 0;
}

/* Apply one key = value to cfg; -EINVAL with why set on failure. */
static int config_set(struct config *cfg, const char *name, const char *val, struct why *why)
{
	const struct config_key *k = key_find(name);
	char range[96];
	uint64_t n;

	if (!k) {
		snprintf(why->text, sizeof(why->text),
			 "unknown key '%.60s' (lbusd --check-config lists the keys)", name);
		return -EINVAL;
	}
	if (parse_value(k, val, &n) < 0 || n < k->min || n > k->max) {
		key_range(k, range, sizeof(range));
		snprintf(why->text, sizeof(why->text), "invalid value '%.40s' for %s (want %s)", val, k->name,
			 range);
		return -EINVAL;
	}
	key_store(cfg, k, n);
	return 0;
}

/*
 * An access rule line (`allow|deny WHO VERBS [PATTERN]`, lbusd.conf(5)),
 * added to the rules being read (policy.h).
 */
static int config_parse_rule(struct config *cfg, const char *verb, const char *rest, struct why *why)
{
	return policy_add(cfg->policy, verb[0] == 'a', rest, why->text, sizeof(why->text));
}

/* Where a rule's comment starts: a '#' at the start of a word (a topic
 * pattern such as sensors/# keeps its '#'; a lone # means everything, as no
 * pattern does). */
static char *rule_comment(char *line)
{
	for (char *p = line; (p = strchr(p, '#')); p++)
		if (p == line || isspace((unsigned char)p[-1]))
			return p;
	return NULL;
}

/* The first word of line if it is "allow" or "deny" followed by a space. */
static const char *rule_verb(const char *line)
{
	static const char *const verbs[] = {"allow", "deny"};

	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(verbs[i]);
		if (!strncmp(line, verbs[i], n) && isspace((unsigned char)line[n]))
			return verbs[i];
	}
	return NULL;
}

static int config_parse_line(struct config *cfg, char *line, struct why *why)
{
	char *eq, *key, *val, *hash;
	const char *verb;

	key = trim(line);
	verb = rule_verb(key);
	if (verb) {
		if ((hash = rule_comment(key)))
			*hash = '\0';
		return config_parse_rule(cfg, verb, trim(key + strlen(verb)), why);
	}
	if ((hash = strchr(key, '#')))
		*hash = '\0';
	key = trim(key);
	if (!*key)
		return 0;
	eq = strchr(key, '=');
	if (!eq) {
		snprintf(why->text, sizeof(why->text), "expected 'key = value' or an allow/deny rule");
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
	tmp.policy = policy_new(); /* the file's rules replace the old ones */
	if (!tmp.policy) {
		fclose(f);
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %zu bytes", path, lineno,
				 sizeof(line) - 2);
			ret = -EINVAL;
			break;
		}
		ret = config_parse_line(&tmp, line, &why);
		if (ret < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why.text);
			break;
		}
	}
	fclose(f);
	if (ret < 0) {
		policy_free(tmp.policy);
		return ret;
	}
	policy_free(cfg->policy);
	*cfg = tmp;
	return 0;
}

int config_default_path(char *out, size_t size)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg && *xdg == '/')
		n = snprintf(out, size, "%s/lbus/lbusd.conf", xdg);
	else if (home && *home)
		n = snprintf(out, size, "%s/.config/lbus/lbusd.conf", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* v as k's type writes it in a file. */
static void key_format(const struct config_key *k, uint64_t v, char *out, size_t size)
{
	if (k->type == CONFIG_OCTAL)
		snprintf(out, size, "%04llo", (unsigned long long)v);
	else if (k->type == CONFIG_MS)
		snprintf(out, size, "%llums", (unsigned long long)v);
	else
		snprintf(out, size, "%llu", (unsigned long long)v);
}

void config_print(const struct config *cfg, FILE *out)
{
	char range[96], value[32], def[32];

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &keys[i];
		uint64_t v = key_load(cfg, k);

		key_range(k, range, sizeof(range));
		key_format(k, v, value, sizeof(value));
		key_format(k, k->def, def, sizeof(def));
		fprintf(out, "\n# %s\n# valid: %s; default: %s\n%s = %s\n", k->help, range, def, k->name,
			value);
	}
	policy_print(cfg->policy, out);
}

void config_free(struct config *cfg)
{
	policy_free(cfg->policy);
	cfg->policy = NULL;
}
