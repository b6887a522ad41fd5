/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge configuration parser (see bridge-config.h). One line at a
 * time: a route line (`out`/`in`) or a `key = value`. Every failure writes
 * its reason into a struct why; bridge_config_load() adds FILE:LINE. The
 * checks that need the whole file (a route exists, cert and key together,
 * defaults that depend on other keys) run at the end.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge-config.h"
#include "bridge-topic.h"

struct why {
	char text[200];
};

struct parse {
	struct bridge_config *cfg;
	const char *dir; /* the config file's directory, for relative paths */
	unsigned line;
	struct why why;
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why.text, sizeof(p->why.text), fmt, ap);
	va_end(ap);
	return -EINVAL;
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

/* Replace *slot with a copy of s (NULL stays NULL). 0 or -ENOMEM. */
static int set_str(char **slot, const char *s)
{
	char *c = s ? strdup(s) : NULL;

	if (s && !c)
		return -ENOMEM;
	free(*slot);
	*slot = c;
	return 0;
}

static int parse_u64(struct parse *p, const char *key, const char *v, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = (*v && *v != '-') ? strtoull(v, &end, 10) : 0;
	if (!*v || *v == '-' || errno || *end || n < min || n > max)
		return fail(p, "invalid value '%.40s' for %s (want an integer from %llu to %llu)", v, key,
			    (unsigned long long)min, (unsigned long long)max);
	*out = n;
	return 0;
}

static int parse_bool(struct parse *p, const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return fail(p, "invalid value '%.40s' for %s (want true or false)", v, key);
	return 0;
}

/* A file name, made relative to the config file's directory. */
static int set_path(struct parse *p, char **slot, const char *v)
{
	char buf[4096];

	if (!*v)
		return fail(p, "empty file name");
	if (v[0] == '/' || !p->dir)
		return set_str(slot, v);
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", p->dir, v) >= sizeof(buf))
		return fail(p, "file name too long");
	return set_str(slot, buf);
}

/* The first line of file, without its newline: the MQTT password. */
static int read_password(struct parse *p, const char *file)
{
	char line[1024];
	FILE *f = fopen(file, "re");
	int r = 0;

	if (!f)
		return fail(p, "password_file %s: %s", file, strerror(errno));
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!line[0])
		r = fail(p, "password_file %s: empty", file);
	else if (set_str(&p->cfg->password, line))
		r = -ENOMEM;
	explicit_bzero(line, sizeof(line));
	return r;
}

static int set_int_key(struct parse *p, const char *key, const char *val)
{
	struct bridge_config *c = p->cfg;
	uint64_t n;

	if (!strcmp(key, "port")) {
		if (parse_u64(p, key, val, 1, 65535, &n))
			return -EINVAL;
		c->port = (int)n;
	} else if (!strcmp(key, "keepalive")) {
		if (parse_u64(p, key, val, 5, 65535, &n))
			return -EINVAL;
		c->keepalive = (int)n;
	} else if (!strcmp(key, "queue_max_msgs")) {
		if (parse_u64(p, key, val, 0, UINT64_MAX / 4, &c->queue_max_msgs))
			return -EINVAL;
	} else if (!strcmp(key, "queue_max_bytes")) {
		if (parse_u64(p, key, val, 0, UINT64_MAX / 4, &c->queue_max_bytes))
			return -EINVAL;
	} else {
		return 1;
	}
	return 0;
}

/* lbus's rule for names (proto/topic.h): [A-Za-z0-9._:@-], not starting
 * with '-' or '.', at most 255 bytes. */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n > 255 || s[0] == '-' || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._:@-", *s))
			return false;
	return true;
}

static char **str_slot(struct bridge_config *c, const char *key)
{
	switch (key[0]) {
	case 'h':
		return &c->host;
	case 'c':
		return &c->client_id;
	case 'u':
		return &c->username;
	case 's':
		return &c->socket;
	default:
		return &c->name;
	}
}

static int set_str_key(struct parse *p, const char *key, const char *val)
{
	struct bridge_config *c = p->cfg;

	if (!strcmp(key, "host") || !strcmp(key, "client_id") || !strcmp(key, "username") ||
	    !strcmp(key, "socket") || !strcmp(key, "name")) {
		if (!*val)
			return fail(p, "empty value for %s", key);
		if (!strcmp(key, "client_id") && strlen(val) > 65535)
			return fail(p, "client_id too long");
		if (!strcmp(key, "name") && !name_valid(val))
			return fail(p, "invalid name '%.60s' (want letters, digits and ._:@-)", val);
		return set_str(str_slot(c, key), val);
	}
	if (!strcmp(key, "password_file")) {
		char *file = NULL;
		int r = set_path(p, &file, val);

		if (!r)
			r = read_password(p, file);
		free(file);
		return r;
	}
	if (!strcmp(key, "tls_ca"))
		return set_path(p, &c->tls_ca, val);
	if (!strcmp(key, "tls_cert"))
		return set_path(p, &c->tls_cert, val);
	if (!strcmp(key, "tls_key"))
		return set_path(p, &c->tls_key, val);
	return 1;
}

static int set_key(struct parse *p, const char *key, const char *val)
{
	int r = set_int_key(p, key, val);

	if (r <= 0)
		return r;
	r = set_str_key(p, key, val);
	if (r <= 0)
		return r;
	if (!strcmp(key, "clean_session"))
		return parse_bool(p, key, val, &p->cfg->clean_session);
	if (!strcmp(key, "mqtt_version")) {
		if (!strcmp(val, "3.1.1") || !strcmp(val, "311"))
			p->cfg->mqtt_version = BRIDGE_MQTT_311;
		else if (!strcmp(val, "5"))
			p->cfg->mqtt_version = BRIDGE_MQTT_5;
		else
			return fail(p, "invalid value '%.40s' for mqtt_version (want 3.1.1 or 5)", val);
		return 0;
	}
	return fail(p, "unknown key '%.60s'", key);
}

/* The options of a route line after its pattern: qos, local-prefix,
 * remote-prefix, each once. */
static int route_options(struct parse *p, struct bridge_route *r, char **save)
{
	char *w;
	bool seen_qos = false;

	while ((w = strtok_r(NULL, " \t", save)) && w[0] != '#') {
		char *v = strtok_r(NULL, " \t", save);
		const char *why;
		char **slot = !strcmp(w, "local-prefix")    ? &r->local_prefix
			      : !strcmp(w, "remote-prefix") ? &r->remote_prefix
							    : NULL;

		if (!slot && strcmp(w, "qos"))
			return fail(p, "unknown word '%.40s' (want qos, local-prefix or remote-prefix)", w);
		if (!v)
			return fail(p, "%s needs a value", w);
		if (!slot) {
			if (seen_qos)
				return fail(p, "qos given twice");
			if (strlen(v) != 1 || v[0] < '0' || v[0] > '2')
				return fail(p, "invalid qos '%.20s' (want 0, 1 or 2)", v);
			seen_qos = true;
			r->qos = v[0] - '0';
			continue;
		}
		if (*slot)
			return fail(p, "%s given twice", w);
		if (btopic_prefix_check(v, &why))
			return fail(p, "invalid %s '%.60s': %s", w, v, why);
		if (set_str(slot, v))
			return -ENOMEM;
	}
	return 0;
}

static int route_join(struct bridge_route *r)
{
	if ((!r->local_prefix && set_str(&r->local_prefix, "")) ||
	    (!r->remote_prefix && set_str(&r->remote_prefix, "")))
		return -ENOMEM;
	if (asprintf(&r->local_pattern, "%s%s", r->local_prefix, r->pattern) < 0) {
		r->local_pattern = NULL;
		return -ENOMEM;
	}
	if (asprintf(&r->remote_pattern, "%s%s", r->remote_prefix, r->pattern) < 0) {
		r->remote_pattern = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void route_free(struct bridge_route *r)
{
	free(r->pattern);
	free(r->local_prefix);
	free(r->remote_prefix);
	free(r->local_pattern);
	free(r->remote_pattern);
}

/* `out|in PATTERN [options]`; line is modified. */
static int parse_route(struct parse *p, enum bridge_dir dir, char *rest)
{
	struct bridge_config *c = p->cfg;
	struct bridge_route r = {.dir = dir, .line = p->line}, *v;
	char *save = NULL, *pat = strtok_r(rest, " \t", &save);
	const char *why;
	int ret;

	if (!pat)
		return fail(p, "%s needs a topic pattern", dir == BRIDGE_OUT ? "out" : "in");
	if (btopic_filter_check(pat, &why))
		return fail(p, "invalid pattern '%.60s': %s", pat, why);
	if (set_str(&r.pattern, pat))
		return -ENOMEM;
	ret = route_options(p, &r, &save);
	if (!ret)
		ret = route_join(&r);
	if (!ret && !(v = realloc(c->routes, (c->n_routes + 1) * sizeof(*v))))
		ret = -ENOMEM;
	if (ret) {
		route_free(&r);
		return ret;
	}
	c->routes = v;
	c->routes[c->n_routes++] = r;
	return 0;
}

/* Cut a `#` comment that follows a blank (or starts the line). */
static void cut_comment(char *s)
{
	for (char *h = strchr(s, '#'); h; h = strchr(h + 1, '#'))
		if (h == s || isspace((unsigned char)h[-1])) {
			*h = '\0';
			return;
		}
}

static int parse_line(struct parse *p, char *line)
{
	char *s = trim(line), *eq;
	size_t wl = strcspn(s, " \t=");

	if (!*s || *s == '#')
		return 0;
	if ((wl == 3 && !strncmp(s, "out", 3)) || (wl == 2 && !strncmp(s, "in", 2))) {
		char *after = s + wl;

		while (*after == ' ' || *after == '\t')
			after++;
		if (*after != '=')
			return parse_route(p, wl == 3 ? BRIDGE_OUT : BRIDGE_IN, s + wl);
	}
	cut_comment(s);
	eq = strchr(s, '=');
	if (!eq)
		return fail(p, "expected key = value, or an out/in line");
	*eq = '\0';
	return set_key(p, trim(s), trim(eq + 1));
}

/* Checks and defaults that need the whole file. */
static int finish(struct parse *p)
{
	struct bridge_config *c = p->cfg;
	char host[256];

	if (c->n_routes == 0)
		return fail(p, "no out or in line: nothing to bridge");
	if (!c->tls_cert != !c->tls_key)
		return fail(p, "tls_cert and tls_key go together");
	if ((c->tls_cert || c->tls_key) && !c->tls_ca)
		return fail(p, "tls_cert and tls_key need tls_ca");
	if (c->password && !c->username)
		return fail(p, "password_file needs username");
	if (!c->host && set_str(&c->host, "localhost"))
		return -ENOMEM;
	if (!c->port)
		c->port = c->tls_ca ? 8883 : 1883;
	if (!c->name && set_str(&c->name, BRIDGE_DEFAULT_NAME))
		return -ENOMEM;
	if (!c->client_id) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "unknown");
		host[sizeof(host) - 1] = '\0';
		if (asprintf(&c->client_id, "lbus-bridge-%s", host) < 0) {
			c->client_id = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static void defaults(struct bridge_config *c)
{
	memset(c, 0, sizeof(*c));
	c->keepalive = 60;
	c->mqtt_version = BRIDGE_MQTT_5;
	c->queue_max_msgs = BRIDGE_DEFAULT_QUEUE_MSGS;
	c->queue_max_bytes = BRIDGE_DEFAULT_QUEUE_BYTES;
}

static int parse_file(struct parse *p, FILE *f)
{
	char line[4096];
	int r;

	while (fgets(line, sizeof(line), f)) {
		p->line++;
		if (!strchr(line, '\n') && !feof(f))
			return fail(p, "line longer than %zu bytes", sizeof(line) - 2);
		r = parse_line(p, line);
		if (r)
			return r;
	}
	p->line = 0;
	return finish(p);
}

int bridge_config_load(struct bridge_config *cfg, const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
	struct parse p = {.cfg = cfg};
	FILE *f = fopen(path, "re");
	int r;

	defaults(cfg);
	if (slash)
		*slash = '\0';
	p.dir = slash ? (dir[0] ? dir : "/") : NULL;
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	} else {
		r = parse_file(&p, f);
		fclose(f);
		if (r == -ENOMEM)
			snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		else if (r && p.line)
			snprintf(err, errlen, "%s:%u: %s", path, p.line, p.why.text);
		else if (r)
			snprintf(err, errlen, "%s: %s", path, p.why.text);
	}
	free(dir);
	if (r)
		bridge_config_free(cfg);
	return r;
}

void bridge_config_free(struct bridge_config *cfg)
{
	if (cfg->password)
		explicit_bzero(cfg->password, strlen(cfg->password));
	free(cfg->host);
	free(cfg->client_id);
	free(cfg->username);
	free(cfg->password);
	free(cfg->tls_ca);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->socket);
	free(cfg->name);
	for (size_t i = 0; i < cfg->n_routes; i++)
		route_free(&cfg->routes[i]);
	free(cfg->routes);
	memset(cfg, 0, sizeof(*cfg));
}
