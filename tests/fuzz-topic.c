/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: topic and pattern validation and matching, in the
 * library (proto/topic.c) and in the broker's trie (broker/trie.c), held
 * against each other and against a naive recursive matcher.
 *
 * The input is split at '\n' into strings (at most FT_MAX of them, NULs kept
 * inside: a string with a NUL must be invalid). Every string is validated as
 * topic, pattern, name and group (a valid topic is a valid pattern, valid
 * strings are UTF-8 without NUL). The valid patterns go into one trie, the
 * valid topics (as the retained store does) into another; then for every
 * valid topic trie_match() must report exactly the patterns that
 * lbus_topic_match() says match it, and for every valid pattern
 * trie_match_pattern() exactly the topics it matches, each once; and
 * lbus_topic_match() must agree with the naive matcher on every pair.
 *
 * Built with -Dfuzzing=true it is a libFuzzer target (fuzz-topic-libfuzzer);
 * fuzz-replay.c runs its corpus, tests/corpus/fuzz-topic/, in the normal
 * suite. A failed check prints the pair and aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "trie.h"
#include "fuzz-check.h"

#define FT_MAX 24

struct ft_str {
	char *s; /* exact-size heap copy, so ASan sees an overread */
	size_t len;
	bool topic, pattern;
	struct trie_entry e;
	unsigned hits; /* times reported by the trie walk in progress */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct ft_str *cur_a, *cur_b;

static void print_str(const char *what, const struct ft_str *s)
{
	if (!s)
		return;
	fprintf(stderr, "  %s (%zu bytes): ", what, s->len);
	for (size_t i = 0; i < s->len && i < 512; i++)
		fprintf(stderr, "%02x", (unsigned char)s->s[i]);
	fputc('\n', stderr);
}

static void check_failed(int line, const char *what)
{
	fprintf(stderr, "fuzz-topic.c:%d: check failed: %s\n", line, what);
	print_str("a", cur_a);
	print_str("b", cur_b);
	abort();
}

/* Naive matcher, by recursion over levels: [p, pe) against [t, te). */
static bool naive_levels(const char *p, const char *pe, const char *t, const char *te)
{
	const char *pl = memchr(p, '/', (size_t)(pe - p)), *tl;
	size_t plen = pl ? (size_t)(pl - p) : (size_t)(pe - p);

	if (plen == 1 && p[0] == '#')
		return true; /* zero or more levels */
	if (!t)
		return false; /* no topic level left for this pattern level */
	tl = memchr(t, '/', (size_t)(te - t));
	size_t tlen = tl ? (size_t)(tl - t) : (size_t)(te - t);
	if (!(plen == 1 && p[0] == '+') && (plen != tlen || memcmp(p, t, plen) != 0))
		return false;
	if (!pl)
		return !tl;
	/* next pattern level; the topic has one more level only past a '/' */
	return naive_levels(pl + 1, pe, tl ? tl + 1 : NULL, te);
}

static bool naive_match(const struct ft_str *p, const struct ft_str *t)
{
	bool wild_first = (p->s[0] == '+' || p->s[0] == '#') && (p->len == 1 || p->s[1] == '/');

	if (t->s[0] == '$' && wild_first)
		return false;
	return naive_levels(p->s, p->s + p->len, t->s, t->s + t->len);
}

static void check_rules(const struct ft_str *s)
{
	int n = lbus_name_validate(s->s, s->len), g = lbus_group_validate(s->s, s->len);
	bool has_nul = memchr(s->s, 0, s->len) != NULL;

	CHECK(n == 0 || n == -EINVAL);
	CHECK(g == n);
	if (s->topic)
		CHECK(s->pattern && lbus_topic_match(s->s, s->len, s->s, s->len));
	if (s->pattern)
		CHECK(!has_nul && lbus_utf8_valid(s->s, s->len) && s->len > 0);
	if (n == 0)
		CHECK(!has_nul && s->topic);
}

static void count_hit(struct trie_entry *e, void *ctx)
{
	struct ft_str *s = (struct ft_str *)((char *)e - offsetof(struct ft_str, e));

	(void)ctx;
	s->hits++;
}

static void clear_hits(struct ft_str *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i].hits = 0;
}

/* Split the input into strings; returns how many. */
static size_t split(const uint8_t *data, size_t size, struct ft_str *v)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= size && n < FT_MAX; i++) {
		if (i < size && data[i] != '\n')
			continue;
		v[n].len = i - start;
		v[n].s = malloc(v[n].len ? v[n].len : 1);
		if (!v[n].s)
			abort();
		memcpy(v[n].s, data + start, v[n].len);
		v[n].topic = lbus_topic_validate(v[n].s, v[n].len) == 0;
		v[n].pattern = lbus_pattern_validate(v[n].s, v[n].len) == 0;
		n++;
		start = i + 1;
	}
	return n;
}

/* Both tries against lbus_topic_match(), and that against the naive one. */
static void check_matching(struct ft_str *pats, struct ft_str *tops, size_t n, struct trie *pt,
			   struct trie *tt)
{
	for (size_t i = 0; i < n; i++) {
		if (!tops[i].topic)
			continue;
		clear_hits(pats, n);
		trie_match(pt, tops[i].s, tops[i].len, count_hit, NULL);
		for (size_t j = 0; j < n; j++) {
			if (!pats[j].pattern)
				continue;
			bool m = lbus_topic_match(pats[j].s, pats[j].len, tops[i].s, tops[i].len);
			cur_a = &pats[j];
			cur_b = &tops[i];
			CHECK(m == naive_match(&pats[j], &tops[i]));
			CHECK(pats[j].hits == (m ? 1u : 0u));
		}
	}
	for (size_t j = 0; j < n; j++) {
		if (!pats[j].pattern)
			continue;
		clear_hits(tops, n);
		trie_match_pattern(tt, pats[j].s, pats[j].len, count_hit, NULL);
		for (size_t i = 0; i < n; i++) {
			if (!tops[i].topic)
				continue;
			cur_a = &pats[j];
			cur_b = &tops[i];
			CHECK(tops[i].hits ==
			      (lbus_topic_match(pats[j].s, pats[j].len, tops[i].s, tops[i].len) ? 1u : 0u));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ft_str pats[FT_MAX], tops[FT_MAX];
	struct trie pt, tt;
	size_t n = split(data, size, pats);

	if (trie_init(&pt) < 0 || trie_init(&tt) < 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		tops[i] = pats[i];
		tops[i].s = malloc(pats[i].len ? pats[i].len : 1);
		if (!tops[i].s)
			abort();
		memcpy(tops[i].s, pats[i].s, pats[i].len);
		cur_a = &pats[i];
		cur_b = NULL;
		check_rules(&pats[i]);
		if (pats[i].pattern && trie_add(&pt, pats[i].s, pats[i].len, &pats[i].e) < 0)
			abort();
		if (tops[i].topic && trie_add(&tt, tops[i].s, tops[i].len, &tops[i].e) < 0)
			abort();
	}
	check_matching(pats, tops, n, &pt, &tt);
	for (size_t i = 0; i < n; i++) {
		if (pats[i].pattern)
			trie_remove(&pt, &pats[i].e);
		if (tops[i].topic)
			trie_remove(&tt, &tops[i].e);
		free(pats[i].s);
		free(tops[i].s);
	}
	CHECK(pt.count == 0 && tt.count == 0);
	trie_deinit(&pt);
	trie_deinit(&tt);
	cur_a = cur_b = NULL;
	return 0;
}
