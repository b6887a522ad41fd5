/* SPDX-License-Identifier: MIT */
/*
 * "Did you mean": the candidate closest to a mistyped word, by edit distance
 * (Levenshtein: insertions, deletions, substitutions, and a swap of two
 * neighbours counted as one, the commonest typo). A suggestion is made only
 * when the distance is small for the word's length, so a word that is
 * nothing like any candidate gets no misleading hint.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define SUGGEST_MAX_LEN 64

/* Optimal string alignment distance between a and b (both shorter than
 * SUGGEST_MAX_LEN; longer words are never close). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];

	if (la >= SUGGEST_MAX_LEN || lb >= SUGGEST_MAX_LEN)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *cli_suggest(const char *word, const char *const *cands, size_t n)
{
	size_t len = strlen(word), limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	size_t best_d = SIZE_MAX;
	const char *best = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t d;

		if (!cands[i])
			continue;
		d = edit_distance(word, cands[i]);
		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

const char *cli_suggest_option(const char *elem, const struct option *longopts)
{
	const char *names[64];
	char word[SUGGEST_MAX_LEN];
	size_t n = 0;

	if (strncmp(elem, "--", 2) != 0 || !longopts)
		return NULL;
	snprintf(word, sizeof(word), "%.*s", (int)strcspn(elem + 2, "="), elem + 2); /* --tiemout=5 */
	for (; longopts[n].name && n < 64; n++)
		names[n] = longopts[n].name;
	return cli_suggest(word, names, n);
}
