/* SPDX-License-Identifier: MIT */
/*
 * Access rules (see policy.h). A rule is who, verbs, allow/deny and an
 * optional pattern; the list is scanned from the last rule to the first and
 * the first match decides, which is "the last matching rule decides".
 *
 * Subscribing asks more than one topic: may the pattern match some topic
 * the peer may subscribe to? Scanning from the last rule, an allow whose
 * pattern overlaps the subscription answers yes, a deny whose pattern covers
 * it answers no (every topic of it is denied here or by a later deny that
 * we passed); rules that only overlap partially are passed. Deliveries are
 * still checked topic by topic (route.c), so a subscription admitted here
 * never receives a topic it may not subscribe to.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "topic.h"

enum policy_who { WHO_USER, WHO_GROUP, WHO_EVERYONE };

struct policy_rule {
	bool allow;
	enum policy_who who;
	unsigned id; /* uid or gid */
	unsigned verbs;
	char *pattern; /* NULL: everything */
};

struct policy {
	struct policy_rule *rules;
	size_t n, cap;
};

static const char *const verb_names[] = {"connect", "publish", "subscribe", "own",
					 "send",    "call",    "monitor",   "introspect"};

#define N_VERBS (sizeof(verb_names) / sizeof(verb_names[0]))
#define TOPIC_VERBS (POLICY_PUBLISH | POLICY_SUBSCRIBE)
#define NAME_VERBS (POLICY_OWN | POLICY_SEND)

struct policy *policy_new(void)
{
	return calloc(1, sizeof(struct policy));
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->rules[i].pattern);
	free(p->rules);
	free(p);
}

size_t policy_count(const struct policy *p)
{
	return p ? p->n : 0;
}

const char *policy_verb_name(enum policy_verb verb)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (verb == 1u << i)
			return verb_names[i];
	return "?";
}

/* ---- parsing ------------------------------------------------------------ */

/* The next whitespace-separated word of *s (NUL-terminated in place). */
static char *next_word(char **s)
{
	char *w = *s, *e;

	while (isspace((unsigned char)*w))
		w++;
	if (!*w)
		return NULL;
	for (e = w; *e && !isspace((unsigned char)*e); e++)
		;
	if (*e)
		*e++ = '\0';
	*s = e;
	return w;
}

static bool parse_number(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 0xfffffffeul)
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_who(struct policy_rule *r, char **s, char *why, size_t whylen)
{
	char *kind = next_word(s), *name;

	if (kind && !strcmp(kind, "everyone")) {
		r->who = WHO_EVERYONE;
		return 0;
	}
	if (!kind || (strcmp(kind, "user") && strcmp(kind, "group"))) {
		snprintf(why, whylen, "expected 'user', 'group' or 'everyone' after allow/deny, got '%.40s'",
			 kind ? kind : "");
		return -EINVAL;
	}
	r->who = kind[0] == 'u' ? WHO_USER : WHO_GROUP;
	name = next_word(s);
	if (!name) {
		snprintf(why, whylen, "expected a %s name or id after '%s'", kind, kind);
		return -EINVAL;
	}
	if (parse_number(name, &r->id))
		return 0;
	if (r->who == WHO_USER) {
		struct passwd *pw = getpwnam(name);
		if (pw) {
			r->id = pw->pw_uid;
			return 0;
		}
	} else {
		struct group *gr = getgrnam(name);
		if (gr) {
			r->id = gr->gr_gid;
			return 0;
		}
	}
	snprintf(why, whylen, "unknown %s '%.40s'", kind, name);
	return -EINVAL;
}

static int parse_verbs(struct policy_rule *r, char **s, char *why, size_t whylen)
{
	char *list = next_word(s), *save = NULL, *v;

	if (!list) {
		snprintf(why, whylen,
			 "expected a comma list of verbs (connect, publish, subscribe, own, "
			 "send, call, monitor, introspect, all)");
		return -EINVAL;
	}
	for (v = strtok_r(list, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
		size_t i;
		if (!strcmp(v, "all")) {
			r->verbs |= POLICY_ALL;
			continue;
		}
		for (i = 0; i < N_VERBS && strcmp(v, verb_names[i]); i++)
			;
		if (i == N_VERBS) {
			snprintf(why, whylen,
				 "unknown verb '%.40s' (want connect, publish, subscribe, own, send, call, "
				 "monitor, introspect or all)",
				 v);
			return -EINVAL;
		}
		r->verbs |= 1u << i;
	}
	if (!r->verbs) {
		snprintf(why, whylen, "empty verb list");
		return -EINVAL;
	}
	return 0;
}

/* A name pattern: an exact name, `prefix*`, or `*`. */
static bool name_pattern_valid(const char *pat)
{
	size_t len = strlen(pat);

	if (len && pat[len - 1] == '*')
		len--;
	return len == 0 || lbus_name_validate(pat, len) == 0;
}

static bool topic_pattern_valid(const char *pat)
{
	return lbus_pattern_validate(pat, strlen(pat)) == 0;
}

/* A pattern applies to the verbs that take an object (connect, monitor and
 * introspect in the same rule ignore it); it must suit each of them. */
static int check_pattern(const struct policy_rule *r, const char *pat, char *why, size_t whylen)
{
	unsigned v = r->verbs;
	bool topic = topic_pattern_valid(pat), name = name_pattern_valid(pat);

	if (v == POLICY_ALL || !(v & (TOPIC_VERBS | NAME_VERBS))) {
		if (topic || name)
			return 0;
		snprintf(why, whylen, "invalid pattern '%.60s' (want a topic pattern or a name)", pat);
		return -EINVAL;
	}
	if ((v & TOPIC_VERBS) && !topic) {
		snprintf(why, whylen, "invalid topic pattern '%.60s'", pat);
		return -EINVAL;
	}
	if ((v & NAME_VERBS) && !name) {
		snprintf(why, whylen, "invalid name pattern '%.60s' (want a name or a prefix ending in *)",
			 pat);
		return -EINVAL;
	}
	return 0;
}

int policy_add(struct policy *p, bool allow, const char *rest, char *why, size_t whylen)
{
	struct policy_rule r = {.allow = allow};
	char *copy = strdup(rest), *s = copy, *pat, *extra;
	int ret;

	if (!copy)
		return -ENOMEM;
	if ((ret = parse_who(&r, &s, why, whylen)) < 0 || (ret = parse_verbs(&r, &s, why, whylen)) < 0)
		goto out;
	pat = next_word(&s);
	extra = next_word(&s);
	ret = -EINVAL;
	if (extra) {
		snprintf(why, whylen, "unexpected '%.40s' after the pattern", extra);
		goto out;
	}
	if (pat && check_pattern(&r, pat, why, whylen) < 0)
		goto out;
	ret = -ENOMEM;
	if (pat && !(r.pattern = strdup(pat)))
		goto out;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct policy_rule *rules = realloc(p->rules, cap * sizeof(*rules));
		if (!rules) {
			free(r.pattern);
			goto out;
		}
		p->rules = rules;
		p->cap = cap;
	}
	p->rules[p->n++] = r;
	ret = 0;
out:
	free(copy);
	return ret;
}

/* ---- evaluation --------------------------------------------------------- */

static bool who_matches(const struct policy_rule *r, const struct policy_id *id)
{
	if (r->who == WHO_EVERYONE)
		return true;
	if (r->who == WHO_USER)
		return id->uid == r->id;
	if (id->gid == r->id)
		return true;
	for (size_t i = 0; i < id->ngroups; i++)
		if (id->groups[i] == r->id)
			return true;
	return false;
}

static bool name_matches(const char *pat, const char *name, size_t nlen)
{
	size_t len = strlen(pat);

	if (len && pat[len - 1] == '*')
		return nlen >= len - 1 && !memcmp(pat, name, len - 1);
	return nlen == len && !memcmp(pat, name, len);
}

static bool object_matches(const char *pat, enum policy_object kind, const char *object, size_t len)
{
	if (!pat)
		return true;
	if (kind == POLICY_TOPIC)
		return topic_pattern_valid(pat) && lbus_topic_match(pat, strlen(pat), object, len);
	if (kind == POLICY_NAME)
		return name_pattern_valid(pat) && name_matches(pat, object, len);
	return true;
}

bool policy_allows(const struct policy *p, const struct policy_id *id, enum policy_verb verb,
		   enum policy_object kind, const char *object, size_t len, const char **pattern)
{
	for (size_t i = p ? p->n : 0; i-- > 0;) {
		const struct policy_rule *r = &p->rules[i];
		if (!(r->verbs & verb) || !who_matches(r, id) ||
		    !object_matches(r->pattern, kind, object, len))
			continue;
		if (!r->allow && pattern)
			*pattern = r->pattern ? r->pattern : "";
		return r->allow;
	}
	if (pattern)
		*pattern = "";
	return false;
}

/* Topic pattern levels: the end of the level at s, and the next level (NULL
 * after the last). */
static const char *level_next(const char *s, size_t *len)
{
	const char *e = strchr(s, '/');

	*len = e ? (size_t)(e - s) : strlen(s);
	return e ? e + 1 : NULL;
}

static bool is_hash(const char *s)
{
	return s && s[0] == '#' && s[1] == '\0';
}

static bool is_plus(const char *s, size_t len)
{
	return len == 1 && s[0] == '+';
}

bool policy_patterns_overlap(const char *a, const char *b)
{
	for (;;) {
		size_t la, lb;
		const char *na, *nb;

		if (is_hash(a) || is_hash(b))
			return true;
		na = level_next(a, &la);
		nb = level_next(b, &lb);
		if (!is_plus(a, la) && !is_plus(b, lb) && (la != lb || memcmp(a, b, la)))
			return false;
		if (!na || !nb)
			return (!na && !nb) || is_hash(na) || is_hash(nb);
		a = na;
		b = nb;
	}
}

bool policy_pattern_covers(const char *outer, const char *inner)
{
	for (;;) {
		size_t lo, li;
		const char *no, *ni;

		if (is_hash(outer))
			return true;
		if (is_hash(inner))
			return false;
		no = level_next(outer, &lo);
		ni = level_next(inner, &li);
		if (!is_plus(outer, lo) && (is_plus(inner, li) || lo != li || memcmp(outer, inner, lo)))
			return false;
		if (!no || !ni)
			return (!no && !ni) || (!ni && is_hash(no));
		outer = no;
		inner = ni;
	}
}

bool policy_may_subscribe(const struct policy *p, const struct policy_id *id, const char *sub,
			  const char **pattern)
{
	for (size_t i = p ? p->n : 0; i-- > 0;) {
		const struct policy_rule *r = &p->rules[i];
		if (!(r->verbs & POLICY_SUBSCRIBE) || !who_matches(r, id))
			continue;
		if (r->allow && (!r->pattern || policy_patterns_overlap(r->pattern, sub)))
			return true;
		if (!r->allow && (!r->pattern || policy_pattern_covers(r->pattern, sub))) {
			if (pattern)
				*pattern = r->pattern ? r->pattern : "";
			return false;
		}
	}
	if (pattern)
		*pattern = "";
	return false;
}

bool policy_admits_others(const struct policy *p, uid_t self)
{
	for (size_t i = 0; i < policy_count(p); i++) {
		const struct policy_rule *r = &p->rules[i];

		if (r->allow && (r->verbs & POLICY_CONNECT) &&
		    (r->who != WHO_USER || (r->id != self && r->id != 0)))
			return true;
	}
	return false;
}

/* ---- listing ------------------------------------------------------------ */

/* "user 4242" / "group 4243" / "everyone"; *name is the account's name
 * when the system knows it. */
static void print_who(const struct policy_rule *r, FILE *out, const char **name)
{
	*name = NULL;
	if (r->who == WHO_EVERYONE) {
		fputs("everyone", out);
	} else if (r->who == WHO_USER) {
		struct passwd *pw = getpwuid(r->id);
		fprintf(out, "user %u", r->id);
		*name = pw ? pw->pw_name : NULL;
	} else {
		struct group *gr = getgrgid(r->id);
		fprintf(out, "group %u", r->id);
		*name = gr ? gr->gr_name : NULL;
	}
}

void policy_print(const struct policy *p, FILE *out)
{
	fprintf(out,
		"\n# access rules (%zu; the last matching rule decides, no match denies;\n"
		"# the broker's own user and root may do everything)\n",
		policy_count(p));
	for (size_t i = 0; i < policy_count(p); i++) {
		const struct policy_rule *r = &p->rules[i];
		const char *sep = "", *name;

		fprintf(out, "%s ", r->allow ? "allow" : "deny ");
		print_who(r, out, &name);
		fputc(' ', out);
		if (r->verbs == POLICY_ALL) {
			fputs("all", out);
		} else {
			for (size_t v = 0; v < N_VERBS; v++)
				if (r->verbs & (1u << v)) {
					fprintf(out, "%s%s", sep, verb_names[v]);
					sep = ",";
				}
		}
		if (r->pattern)
			fprintf(out, " %s", r->pattern);
		if (name)
			fprintf(out, " # %s", name);
		fputc('\n', out);
	}
}
