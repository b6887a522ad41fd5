/* SPDX-License-Identifier: MIT */
/*
 * Framing: a frame is a little-endian uint32 length L followed by L bytes.
 *
 * struct lbus_rbuf is a growable receive buffer. Read into its free tail
 * (lbus_rbuf_tail, lbus_rbuf_advance), then take every complete frame out of
 * it with lbus_frame_next() before reading again: this is how both the broker
 * and the library handle any fragmentation, byte-by-byte or many frames per
 * read. Frame pointers stay valid until the next reserve/compact.
 *
 * Errors: functions return 0 or a positive count on success, -errno on
 * failure (-ENOMEM, -EMSGSIZE, -EPROTO). Nothing here logs or exits.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct lbus_rbuf {
	uint8_t *data;
	size_t cap;   /* allocated bytes */
	size_t start; /* first unconsumed byte */
	size_t end;   /* one past the last received byte */
};

/* Initialise an empty buffer (no allocation). */
void lbus_rbuf_init(struct lbus_rbuf *b);
/* Free the storage; the buffer is empty and reusable afterwards. */
void lbus_rbuf_deinit(struct lbus_rbuf *b);
/* Bytes received but not consumed yet. */
static inline size_t lbus_rbuf_len(const struct lbus_rbuf *b)
{
	return b->end - b->start;
}
/*
 * Make room for at least min_free bytes after end: moves unconsumed bytes to
 * the front, grows (doubling) if needed. Returns 0 or -ENOMEM.
 */
int lbus_rbuf_reserve(struct lbus_rbuf *b, size_t min_free);
/* The capacity b would have after lbus_rbuf_reserve(b, min_free) (its
 * current one when that would not grow it; SIZE_MAX when it cannot). */
size_t lbus_rbuf_reserve_cap(const struct lbus_rbuf *b, size_t min_free);
/* Free tail for reading into, and its size. */
static inline uint8_t *lbus_rbuf_tail(struct lbus_rbuf *b)
{
	return b->data + b->end;
}
static inline size_t lbus_rbuf_avail(const struct lbus_rbuf *b)
{
	return b->cap - b->end;
}
/* Record n bytes written into the tail. */
static inline void lbus_rbuf_advance(struct lbus_rbuf *b, size_t n)
{
	b->end += n;
}
/*
 * Shrink the storage back to `keep` bytes when it is empty or holds few bytes
 * (after a burst of large frames), so idle connections stay small.
 */
void lbus_rbuf_shrink(struct lbus_rbuf *b, size_t keep);

/*
 * Take the next complete frame. On 1, *body and *len point to the frame body
 * (without the 4-byte length) inside the buffer and it is consumed.
 * Returns 0 when more bytes are needed (then *need, if not NULL, is the total
 * buffered size the frame needs, header included), -EMSGSIZE when the length
 * exceeds max_frame, -EPROTO for a zero length.
 */
int lbus_frame_next(struct lbus_rbuf *b, uint32_t max_frame, const uint8_t **body, uint32_t *len,
		    size_t *need);

/* Write the 4-byte little-endian length header. */
static inline void lbus_frame_put_len(uint8_t out[4], uint32_t len)
{
	out[0] = (uint8_t)len;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 24);
}

static inline uint32_t lbus_frame_get_len(const uint8_t in[4])
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}
