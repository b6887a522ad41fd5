/* SPDX-License-Identifier: MIT */
/*
 * A client's outgoing queue: a ring of entries, each a small per-recipient
 * header (copied inline, e.g. a Deliver's length and sub_id) followed by a
 * msgbuf. The msgbuf is either
 *  - a reference to a shared body (a large message, encoded once for all its
 *    recipients: outq_push()), or
 *  - a byte chunk owned by this queue alone, into which small frames are
 *    copied back to back (outq_append()): a burst of small deliveries is a
 *    few large iovecs instead of two tiny ones per message. Only the last
 *    entry's chunk (`tail`) is still appended to. Each chunk that fills is
 *    followed by one twice its size (OUTQ_CHUNK_MIN .. OUTQ_CHUNK_MAX), so
 *    a client that gets one message a turn does not pin a big buffer, and
 *    no chunk's unused room outweighs what it holds.
 * outq_write() gathers as many entries as fit into one sendmsg() iovec array
 * (IOV_MAX) and repeats until the socket is full or the queue empty, keeping
 * a partial write's offset in the head entry. `bytes` is what is still to be
 * written: the flow-control measure; `bytes_max` its high-water mark since
 * the queue was initialised (one compare-and-store per queued entry, for
 * introspection).
 *
 * A body with file descriptors (msgbuf.fds) is always a referenced entry
 * of its own, and outq_write() starts a sendmsg() at its first byte and
 * attaches the descriptors there (SCM_RIGHTS): they reach the recipient
 * with that frame's first byte and no other. Each descriptor counts
 * OUTQ_FD_COST bytes against the queue limit (fd_cost), whatever the size
 * of the file behind it, so a flood of descriptors fills a queue too.
 *
 * An empty queue owns no memory, so idle clients cost nothing here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "msgbuf.h"
#include "wire.h"

#define OUTQ_HDR_MAX LBUS_WIRE_DELIVER_HDR_MAX
/* Bodies up to this size are copied into the queue's chunk, not referenced;
 * up to OUTQ_COPY_ALONE_MAX when the queue is the message's only recipient. */
#define OUTQ_COPY_MAX 512u
#define OUTQ_COPY_ALONE_MAX 2048u
#define OUTQ_CHUNK_MIN 256u
#define OUTQ_CHUNK_MAX (64u * 1024u)
/* What one queued file descriptor counts against the queue limit. */
#define OUTQ_FD_COST 1024u

struct outq_entry {
	struct msgbuf *buf; /* body (one reference owned by the entry); may be NULL */
	uint32_t off;	    /* bytes of hdr+body already written */
	uint8_t hlen;
	uint8_t hdr[OUTQ_HDR_MAX];
};

struct outq {
	struct outq_entry *ring;
	uint32_t cap;	     /* power of two, 0 when ring is NULL */
	uint32_t head;	     /* index of the first entry */
	uint32_t count;	     /* entries queued */
	size_t bytes;	     /* bytes still to write */
	size_t bytes_max;    /* the most `bytes` has been */
	size_t fd_cost;	     /* OUTQ_FD_COST per descriptor queued */
	uint64_t fds_sent;   /* descriptors written (attached to a frame) */
	struct msgbuf *tail; /* last entry's chunk while open for appending, or NULL */
};

void outq_init(struct outq *q);
/* Release every entry's reference and the ring. */
void outq_deinit(struct outq *q);

static inline bool outq_empty(const struct outq *q)
{
	return q->count == 0;
}

/*
 * Queue hdr (hlen <= OUTQ_HDR_MAX bytes, copied) followed by buf's bytes.
 * Takes over the caller's reference to buf (also on failure). 0 or -ENOMEM.
 */
int outq_push(struct outq *q, struct msgbuf *buf, const void *hdr, size_t hlen);

/*
 * Reserve len bytes at the end of the queue, in the open chunk or in a new
 * one from pool (len <= OUTQ_CHUNK_MAX), for the caller to fill before the
 * next outq call. Returns where to write them, or NULL on ENOMEM.
 */
uint8_t *outq_append(struct outq *q, struct msgpool *pool, size_t len);

/*
 * Write as much as the socket takes, descriptors with their frames. Returns
 * the bytes written (>= 0; 0 when the socket was full) or -errno when the
 * connection is broken.
 */
ssize_t outq_write(struct outq *q, int fd);

/* Drop written bytes from the head (used by outq_write; exposed for tests). */
void outq_consume(struct outq *q, size_t n);
