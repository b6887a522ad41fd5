/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz suite (fuzz-decode.c, fuzz-broker.c): a seeded PRNG,
 * a growable byte buffer, a corpus of valid seed frames (one or more of
 * every Frame kind, built with the generated protobuf-c code and with the
 * allocation-free encoders of proto/wire.h), and a mutator in the manner of
 * libFuzzer's: bit flips, interesting bytes, truncations, insertions,
 * deletions, splices with other seeds, length-field edits (the 4-byte frame
 * header and protobuf varint lengths) and random bytes.
 *
 * Everything is deterministic for a given seed, so a failure reported with
 * its seed and round is reproduced by running the test again. Allocation
 * failures abort: this is test code, and a fuzz run without memory has
 * nothing useful left to say.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- PRNG (xorshift64*) ---------------------------------------------------- */

struct fz_rng {
	uint64_t s;
};

void fz_rng_init(struct fz_rng *r, uint64_t seed);
uint64_t fz_rng_next(struct fz_rng *r);
/* Uniform-enough value in 0..n-1; n must be > 0. */
size_t fz_rng_below(struct fz_rng *r, size_t n);

/* The seed a test uses: $LBUS_FUZZ_SEED (decimal or 0x-hex) if set, else def. */
uint64_t fz_seed_from_env(uint64_t def);

/* ---- byte buffer ------------------------------------------------------------- */

struct fz_buf {
	uint8_t *data;
	size_t len, cap;
};

void fz_buf_append(struct fz_buf *b, const void *p, size_t n);
/* Insert n bytes at offset at (at <= len). */
void fz_buf_insert(struct fz_buf *b, size_t at, const void *p, size_t n);
/* Remove n bytes at offset at (at + n <= len). */
void fz_buf_erase(struct fz_buf *b, size_t at, size_t n);
void fz_buf_free(struct fz_buf *b);

/* ---- seed corpus ------------------------------------------------------------- */

struct fz_seed {
	uint32_t kind; /* Frame.kind of the frame, LBUS_K_NONE for a kind-less one */
	bool client;   /* a frame a well-behaved client sends after its hello */
	uint8_t *data; /* complete frame: 4-byte length header, then the body */
	size_t len;
};

struct fz_seeds {
	struct fz_seed *v;
	size_t n;
};

/* Build the corpus: every kind 1..LBUS_K_MAX at least once, with every
 * field set, plus encoder variants and a few odd but valid frames. */
void fz_seeds_build(struct fz_seeds *s);
void fz_seeds_free(struct fz_seeds *s);
/* A random seed; client_only picks among the client request kinds. */
const struct fz_seed *fz_seed_pick(struct fz_rng *r, const struct fz_seeds *s, bool client_only);

/* ---- mutation ------------------------------------------------------------------ */

/* Apply 1..4 random mutations to b (other seeds are splice material). */
void fz_mutate(struct fz_rng *r, struct fz_buf *b, const struct fz_seeds *s);

/* Print "what (n bytes): hex..." to stderr, at most 4096 bytes of it. */
void fz_hexdump(const char *what, const uint8_t *p, size_t n);
