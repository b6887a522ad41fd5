/* SPDX-License-Identifier: MIT */
/*
 * Reference-counted message buffers with a per-broker pool.
 *
 * One encoded frame body is shared by every recipient of a message: each
 * recipient's out queue holds a reference. Buffers come in power-of-two
 * size classes (128 B .. 64 KiB) kept on free lists, so the steady state of
 * the data path allocates nothing; bigger buffers go straight to malloc.
 *
 * Ownership: msgbuf_new() returns a buffer with one reference owned by the
 * caller; every msgbuf_ref() must be paired with a msgbuf_unref(); the last
 * unref returns the buffer to its pool (which must outlive it).
 *
 * A body may carry file descriptors (fds, fdset.h): the buffer owns one
 * reference to the set, dropped with its last reference, so whoever holds
 * the body (queues, the retained store) holds its descriptors.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define MSGPOOL_MIN_SHIFT 7u
#define MSGPOOL_CLASSES 10u /* 128 B .. 64 KiB */

struct fdset;
struct msgpool;

struct msgbuf {
	uint32_t refs;
	uint32_t len; /* bytes used in data */
	uint32_t cap; /* bytes available in data */
	uint32_t cls; /* size class, MSGPOOL_CLASSES for unpooled */
	struct msgpool *pool;
	struct msgbuf *next_free;
	struct fdset *fds; /* descriptors sent with the body, or NULL (owned) */
	uint8_t data[];
};

struct msgpool {
	struct msgbuf *free[MSGPOOL_CLASSES];
	uint32_t nfree[MSGPOOL_CLASSES];
	size_t live; /* buffers handed out and not yet released */
};

void msgpool_init(struct msgpool *p);
/* Free every cached buffer. Buffers still referenced are not touched. */
void msgpool_deinit(struct msgpool *p);

/* A buffer with room for size bytes, len 0, one reference. NULL on ENOMEM. */
struct msgbuf *msgbuf_new(struct msgpool *p, size_t size);

static inline struct msgbuf *msgbuf_ref(struct msgbuf *m)
{
	m->refs++;
	return m;
}

/* A buffer of exactly size bytes, outside the pool's size classes (its last
 * unref frees it): for a body kept long, which should not hold a class
 * buffer's spare room. len 0, one reference; NULL on ENOMEM. */
struct msgbuf *msgbuf_new_exact(struct msgpool *p, size_t size);

/* Descriptors the body carries. */
uint32_t msgbuf_nfds(const struct msgbuf *m);

/* Drop one reference; the last one recycles the buffer. NULL is accepted. */
void msgbuf_unref(struct msgbuf *m);
