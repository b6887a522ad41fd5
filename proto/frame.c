/* SPDX-License-Identifier: MIT */
/*
 * Receive buffer and frame extraction (see frame.h). The buffer is linear:
 * bytes are consumed from `start`, received at `end`; reserve() slides the
 * unconsumed bytes to the front before growing, so a connection that reads
 * frames as fast as they come never reallocates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "lbus-limits.h"

void lbus_rbuf_init(struct lbus_rbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void lbus_rbuf_deinit(struct lbus_rbuf *b)
{
	free(b->data);
	lbus_rbuf_init(b);
}

size_t lbus_rbuf_reserve_cap(const struct lbus_rbuf *b, size_t min_free)
{
	size_t used = b->end - b->start;
	size_t cap = b->cap ? b->cap : 4096;

	if (b->cap - b->end >= min_free || b->cap - used >= min_free)
		return b->cap;
	while (cap - used < min_free) {
		if (cap > SIZE_MAX / 2)
			return SIZE_MAX;
		cap *= 2;
	}
	return cap;
}

int lbus_rbuf_reserve(struct lbus_rbuf *b, size_t min_free)
{
	size_t used = b->end - b->start;

	if (b->cap - b->end >= min_free)
		return 0;
	if (b->start > 0) {
		if (used)
			memmove(b->data, b->data + b->start, used);
		b->start = 0;
		b->end = used;
		if (b->cap - b->end >= min_free)
			return 0;
	}
	size_t cap = lbus_rbuf_reserve_cap(b, min_free);
	if (cap == SIZE_MAX)
		return -ENOMEM;
	uint8_t *data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

void lbus_rbuf_shrink(struct lbus_rbuf *b, size_t keep)
{
	size_t used = b->end - b->start;

	if (b->cap <= keep || used > keep / 2)
		return;
	if (used == 0) {
		free(b->data);
		lbus_rbuf_init(b);
		return;
	}
	memmove(b->data, b->data + b->start, used);
	b->start = 0;
	b->end = used;
	uint8_t *data = realloc(b->data, keep);
	if (data) {
		b->data = data;
		b->cap = keep;
	}
}

int lbus_frame_next(struct lbus_rbuf *b, uint32_t max_frame, const uint8_t **body, uint32_t *len,
		    size_t *need)
{
	size_t avail = b->end - b->start;

	if (avail < LBUS_FRAME_HEADER) {
		if (need)
			*need = LBUS_FRAME_HEADER;
		return 0;
	}
	const uint8_t *p = b->data + b->start;
	uint32_t l = lbus_frame_get_len(p);
	if (l == 0)
		return -EPROTO;
	if (l > max_frame)
		return -EMSGSIZE;
	if (avail - LBUS_FRAME_HEADER < l) {
		if (need)
			*need = (size_t)l + LBUS_FRAME_HEADER;
		return 0;
	}
	*body = p + LBUS_FRAME_HEADER;
	*len = l;
	b->start += (size_t)l + LBUS_FRAME_HEADER;
	if (b->start == b->end)
		b->start = b->end = 0;
	return 1;
}
