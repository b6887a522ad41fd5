/* SPDX-License-Identifier: MIT */
/*
 * What an allocation really costs: the bytes a store that is bounded "in
 * bytes the broker really uses" (the retained store, retained.h) counts for
 * each of its malloc() calls. The estimate follows glibc's allocator on a
 * 64-bit system: a chunk is the request plus an 8-byte header rounded up to
 * 16 bytes, at least 32; a request at or above the mmap threshold (128 KiB
 * by default) gets whole pages plus a 16-byte header. Other allocators are
 * within a few bytes of this per block, which the stores' limits absorb.
 */
#pragma once

#include <stddef.h>

#define MEMCOST_MIN_CHUNK 32u
#define MEMCOST_HEADER 8u
#define MEMCOST_ALIGN 16u
#define MEMCOST_MMAP_THRESHOLD (128u * 1024u)
#define MEMCOST_PAGE 4096u

/* Heap bytes malloc(n) takes (0 for n == 0: nothing is allocated). */
static inline size_t memcost(size_t n)
{
	size_t chunk;

	if (n == 0)
		return 0;
	if (n >= MEMCOST_MMAP_THRESHOLD)
		return (n + 2 * MEMCOST_HEADER + MEMCOST_PAGE - 1) / MEMCOST_PAGE * MEMCOST_PAGE;
	chunk = (n + MEMCOST_HEADER + MEMCOST_ALIGN - 1) & ~(size_t)(MEMCOST_ALIGN - 1);
	return chunk < MEMCOST_MIN_CHUNK ? MEMCOST_MIN_CHUNK : chunk;
}
