/* SPDX-License-Identifier: MIT */
/*
 * Protobuf payloads on the command line: --decode, --decode-map, --encode.
 *
 *   --decode FILE.desc:pkg.Type   every payload is a pkg.Type
 *   --decode FILE.desc --decode-map MAP
 *                                 the type depends on the topic, per MAP:
 *       # a comment (a line whose first non-blank character is '#')
 *       sensors/# = demo.Reading
 *       cmd/+/set = demo.Command
 *   (both: MAP first, pkg.Type for the topics no line matches)
 *   --encode FILE.desc:pkg.Type   the payload given is JSON, sent encoded
 *
 * FILE.desc is a descriptor set (protoc --include_imports
 * --descriptor_set_out=FILE.desc). In FILE:TYPE the type follows the last
 * ':'. MAP lines are PATTERN = TYPE, split at the last '=' and trimmed; the
 * first line whose pattern matches the topic (or, for sends and calls to a
 * name, the name) wins. Presence events ($lbus/...) keep their own display,
 * and a topic no rule matches is printed as without --decode.
 *
 * Well-known types: see pbwkt.c for which get their special JSON forms.
 *
 * Why a table-driven walker over descriptors rather than libprotobuf's
 * dynamic messages: that is C++ (the project is C11, and its broker and
 * library must not depend on C++), and the walker is a few hundred lines
 * that protobuf-c's generated descriptor.proto code feeds (pbschema.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbjson.h"

struct pb_rule {
	char *pattern;
	const struct pbs_message *type;
};

struct cli_pb {
	struct pbs_pool *pool;
	const struct pbs_message *type; /* FILE:TYPE, or NULL */
	struct pb_rule *rules;		/* --decode-map */
	size_t n_rules;
	struct pbj_buf encoded; /* cli_pb_encode()'s result */
};

void cli_pb_free(struct cli_pb *pb)
{
	if (!pb)
		return;
	for (size_t i = 0; i < pb->n_rules; i++)
		free(pb->rules[i].pattern);
	free(pb->rules);
	pbj_buf_free(&pb->encoded);
	pbs_pool_free(pb->pool);
	free(pb);
}

/* ---- topic patterns ----------------------------------------------------- */

/* Is pattern a valid topic pattern: '+' a whole level, '#' only as the last? */
static bool pattern_valid(const char *p)
{
	if (!*p)
		return false;
	for (const char *level = p;; level++) {
		size_t n = strcspn(level, "/");

		if ((memchr(level, '+', n) || memchr(level, '#', n)) && n != 1)
			return false;
		if (level[0] == '#' && level[n] != '\0')
			return false;
		level += n;
		if (!*level)
			return true;
	}
}

/* Does topic match pattern ('+' one level, a last '#' zero or more)? */
static bool pattern_match(const char *pattern, const char *topic)
{
	for (;;) {
		size_t pn = strcspn(pattern, "/"), tn = strcspn(topic, "/");

		if (pn == 1 && pattern[0] == '#')
			return true;
		if (!(pn == 1 && pattern[0] == '+') && (pn != tn || memcmp(pattern, topic, pn) != 0))
			return false;
		pattern += pn;
		topic += tn;
		if (!*pattern || !*topic)
			return !*topic && (!*pattern || strcmp(pattern, "/#") == 0);
		pattern++;
		topic++;
	}
}

/* ---- loading ------------------------------------------------------------- */

static int load_pool(const struct cli *cli, struct cli_pb *pb, const char *path)
{
	char err[512];

	if (pbs_pool_load(path, &pb->pool, err, sizeof(err)) < 0)
		return cli_usage_error(cli, "%s", err);
	return 0;
}

static int find_type(const struct cli *cli, const struct cli_pb *pb, const char *name,
		     const struct pbs_message **out)
{
	if (!(*out = pbs_pool_message(pb->pool, name)))
		return cli_usage_error(cli, "no message type %s in the descriptor set", name);
	if ((*out)->map_entry)
		return cli_usage_error(cli, "%s is a map entry, not a message type", name);
	return 0;
}

/* Split "FILE:TYPE" at the last ':' into pb->pool and *type (type may be
 * NULL when !need_type and there is no ':'). */
static int load_spec(const struct cli *cli, struct cli_pb *pb, const char *spec, bool need_type)
{
	const char *colon = strrchr(spec, ':');
	char *path;
	int r;

	if (!colon && need_type)
		return cli_usage_error(cli, "'%s': want FILE.desc:pkg.Type", spec);
	if (colon && !colon[1])
		return cli_usage_error(cli, "'%s': the type after ':' is missing", spec);
	if (!(path = strndup(spec, colon ? (size_t)(colon - spec) : strlen(spec))))
		return cli_fail(-ENOMEM, "load %s", spec);
	r = load_pool(cli, pb, path);
	free(path);
	if (r == 0 && colon)
		r = find_type(cli, pb, colon + 1, &pb->type);
	return r;
}

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* One line of a mapping file: a comment, blank, or PATTERN = TYPE. */
static int map_line(const struct cli *cli, struct cli_pb *pb, const char *file, int lineno, char *line)
{
	char *eq = strrchr(line, '='), *pattern, *type;
	struct pb_rule *rules;

	line = trim(line);
	if (!*line || *line == '#')
		return 0;
	if (!eq)
		return cli_usage_error(cli, "%s:%d: want PATTERN = TYPE", file, lineno);
	*eq = '\0';
	pattern = trim(line);
	type = trim(eq + 1);
	if (!pattern_valid(pattern))
		return cli_usage_error(cli, "%s:%d: invalid topic pattern '%s'", file, lineno, pattern);
	if (!(rules = realloc(pb->rules, (pb->n_rules + 1) * sizeof(*rules))))
		return cli_fail(-ENOMEM, "read %s", file);
	pb->rules = rules;
	rules[pb->n_rules] = (struct pb_rule){0};
	if (find_type(cli, pb, type, &rules[pb->n_rules].type) != 0) {
		fprintf(stderr, "lbus: (in %s:%d)\n", file, lineno);
		return CLI_USAGE;
	}
	if (!(rules[pb->n_rules].pattern = strdup(pattern)))
		return cli_fail(-ENOMEM, "read %s", file);
	pb->n_rules++;
	return 0;
}

static int load_map(const struct cli *cli, struct cli_pb *pb, const char *file)
{
	FILE *f = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, r = 0;

	if (!f)
		return cli_usage_error(cli, "cannot open %s: %s", file, strerror(errno));
	while (r == 0 && getline(&line, &cap, f) > 0)
		r = map_line(cli, pb, file, ++lineno, line);
	free(line);
	fclose(f);
	if (r == 0 && pb->n_rules == 0 && !pb->type)
		r = cli_usage_error(cli, "%s maps no topic to a type", file);
	return r;
}

int cli_pb_open(const struct cli *cli, const char *spec, const char *map_file, struct cli_pb **out)
{
	struct cli_pb *pb;
	int r;

	*out = NULL;
	if (!spec && !map_file)
		return 0;
	if (!spec)
		return cli_usage_error(cli, "--decode-map needs --decode FILE.desc");
	if (!(pb = calloc(1, sizeof(*pb))))
		return cli_fail(-ENOMEM, "load %s", spec);
	r = load_spec(cli, pb, spec, !map_file);
	if (r == 0 && map_file)
		r = load_map(cli, pb, map_file);
	if (r != 0) {
		cli_pb_free(pb);
		return r;
	}
	*out = pb;
	return 0;
}

/* ---- decoding and encoding -------------------------------------------- */

const struct pbs_message *cli_pb_type_for(const struct cli_pb *pb, const char *topic)
{
	if (!pb)
		return NULL;
	if (topic && strncmp(topic, "$lbus/", 6) == 0)
		return NULL; /* presence events: decoded by cli-output.c */
	for (size_t i = 0; topic && i < pb->n_rules; i++)
		if (pattern_match(pb->rules[i].pattern, topic))
			return pb->rules[i].type;
	return pb->type;
}

int cli_pb_decode(const struct pbs_message *type, const char *label, const void *data, size_t len,
		  char **json)
{
	struct json_object *obj;
	char err[512];

	if (pbj_decode(type, data, len, &obj, err, sizeof(err)) < 0) {
		fprintf(stderr, "lbus: %s: cannot decode %s: %s\n", label, type->full_name, err);
		return -EBADMSG;
	}
	*json = strdup(pbj_json_text(obj));
	json_object_put(obj);
	if (!*json) {
		fprintf(stderr, "lbus: %s: cannot decode %s: out of memory\n", label, type->full_name);
		return -ENOMEM;
	}
	return 0;
}

int cli_pb_encode(struct cli_pb *pb, const char *label, const void *text, size_t len, const void **data,
		  size_t *out_len)
{
	char err[512];

	pb->encoded.len = 0;
	if (pbj_encode_text(pb->type, text, len, &pb->encoded, err, sizeof(err)) < 0) {
		fprintf(stderr, "lbus: %s: cannot encode %s: %s\n", label, pb->type->full_name, err);
		return CLI_REFUSED;
	}
	*data = pb->encoded.data ? pb->encoded.data : (const void *)"";
	*out_len = pb->encoded.len;
	return 0;
}
