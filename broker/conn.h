/* SPDX-License-Identifier: MIT */
/*
 * The transport: one connected socket, below the bus.
 *
 * Where the layers meet. broker/ has two layers for a connection:
 *  - conn.c/conn.h (this file): the transport. A socket, its input buffer
 *    and framing (4-byte length, max_frame), its out queue (outq.h), its
 *    epoll registration, write-blocked state, deadline, byte counters. It
 *    knows nothing about what a frame means and never calls into the bus:
 *    it reports events to its owner through struct conn_ops ("a frame
 *    arrived", "bytes were written", "the deadline passed", "the socket is
 *    gone", "bad framing"), and a full queue is a result the caller handles
 *    (conn_queue_full, conn_make_room), not a callback.
 *  - peer.c/peer.h and everything that includes peer.h: the bus. A struct
 *    peer embeds its struct conn and holds the bus state (identity,
 *    subscriptions, names, calls, flow-control waits, route cache, monitor).
 * conn.c includes neither broker.h nor peer.h; the files above it (peer,
 * dispatch, router, callreply, ...) use conn_* functions, never its fields'
 * invariants.
 *
 * Reading: an idle connection owns no input buffer. When it becomes readable
 * it borrows the loop's one scratch buffer (CONN_READ_CHUNK) and reads one
 * chunk. What is left after reporting its frames (a partial frame, frames
 * the owner kept: CONN_KEEP, frames past the turn's budget, below) is copied
 * to a buffer of the connection's own, sized to it, and the scratch buffer
 * goes back to the loop, so a connection storm costs one read buffer, not
 * one per connection.
 * Only a frame bigger than the scratch buffer, once a quarter of a chunk of
 * it arrived, is read into the connection's own buffer, which grows as the
 * frame's bytes arrive (not to the length it announces) and is freed once
 * the frame is consumed. (Its first bytes go through the scratch buffer too,
 * so a frame trickling in a byte at a time never costs a chunk-sized
 * buffer per byte.)
 *
 * Input held across connections is bounded: the loop counts the bytes of
 * every connection's own buffer (loop->held) against max_held
 * (partial_frames_max). A connection whose partial frame would take more
 * is reported (ops->bad_frame, -ENOBUFS) before its buffer grows; the
 * others keep what they hold. Frames kept by a paused owner (CONN_KEEP)
 * are counted but never refused: they were read already.
 *
 * Fair turns: one connection reports at most CONN_FRAMES_PER_TURN frames per
 * loop turn (fair round-robin, as Redis and NATS do: a burst of cheap frames
 * cannot hold the loop while others wait). A conn with input left over is
 * "backlogged": it goes on the loop's backlog list with its EPOLLIN off (so
 * it holds at most the chunk it read), because no epoll event will come for
 * bytes already read; conn_loop_run_backlog() gives it its next turn, and
 * the owner's loop must not sleep while the list is not empty
 * (conn_loop_busy). Every path that reports frames (readable, resumed,
 * backlogged) spends the same budget, so a conn is on the list at most once.
 *
 * Descriptors: reads use recvmsg(); the descriptors a read brings (at most
 * one sender's batch: the kernel ends a read after the bytes they came
 * with) are queued as a struct conn_fds with the stream range of that
 * read. A frame announces its count (Frame.fds); while its handler runs
 * the owner claims them (conn_frame_fds), which succeeds only if the oldest
 * pending batch has exactly that count and arrived in the read that brought
 * the frame's first byte, so descriptors never attach to another frame,
 * however reads coalesce. A batch no frame claims by the end of the frames
 * its read covered is reported (ops->bad_fds): a sender of descriptors
 * outside a frame's first byte is a protocol error. More than
 * LBUS_MAX_FDS_PER_FRAME at once (the kernel truncates) is one too.
 *
 * Pausing: the owner may pause input (conn_pause_input: a publisher waits for
 * a full queue); its EPOLLIN is off and buffered frames stay. conn_resume_input
 * puts it on the loop's ready list; conn_loop_run_ready() reports its buffered
 * frames again at the end of the turn.
 *
 * Writing: queued output is written at the end of the loop turn (the flush
 * list), so a burst of deliveries to a connection goes out in one sendmsg;
 * EPOLLOUT is armed only when the socket did not take everything.
 *
 * Life cycle: conn_init registers the fd; conn_close (any time, also from
 * inside the owner's frame handler) unregisters and closes it, after which
 * every function here ignores the connection; conn_deinit frees its buffers.
 * Errors: 0 or -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fdset.h"
#include "frame.h"
#include "list.h"
#include "msgbuf.h"
#include "outq.h"

/* Bytes read per wakeup: the size of the loop's one scratch read buffer. */
#define CONN_READ_CHUNK (256u * 1024u)

/* Frames one conn reports per loop turn (see "Fair turns" above). 64 kept a
 * bystander at 1.1 ms under a flood of cheap requests but cut 64-byte
 * fan-out to a quarter (a turn ends with a write to every subscriber);
 * 1024: bystander 4 ms, fan-out 9 M deliveries/s (lbus-bench, 2 cores). */
#define CONN_FRAMES_PER_TURN 1024u

/* conn_ops.frame: keep this frame buffered and stop reading (positive). */
#define CONN_KEEP 1

struct conn;

/* What the transport reports to its owner. Every callback may close c. */
struct conn_ops {
	/* A complete frame body (len bytes after the length header). Returns 0
	 * (consumed), CONN_KEEP (report it again after conn_resume_input; the
	 * owner paused input), or -errno (the owner closed c). */
	int (*frame)(struct conn *c, const uint8_t *body, uint32_t len);
	/* Bad framing: -EMSGSIZE (length above max_frame, `len` is it),
	 * -EPROTO (a zero-length frame) or -ENOBUFS (its partial frame would
	 * pass the loop's max_held; `len` is the frame's length). The owner
	 * ends the connection. */
	void (*bad_frame)(struct conn *c, int err, uint32_t len);
	/* Descriptors came that no frame claimed where they arrived
	 * (-EBADMSG), or more than LBUS_MAX_FDS_PER_FRAME at once (-E2BIG):
	 * they are closed; the owner ends the connection. */
	void (*bad_fds)(struct conn *c, int err);
	/* The socket took bytes (or had nothing to take): outq shrank. */
	void (*wrote)(struct conn *c);
	/* c's deadline (conn_set_deadline) passed. */
	void (*deadline)(struct conn *c);
	/* The other end hung up (err 0: end of file; -ECONNRESET: hung up
	 * while input was stopped) or the socket failed (-errno): the owner
	 * closes c. Bytes of a partial frame may still be in c->rbuf. */
	void (*gone)(struct conn *c, int err);
};

/* What all connections of one event loop share. */
struct conn_loop {
	int epfd;
	const struct conn_ops *ops;
	struct msgpool *pool;	   /* out-queue chunks */
	struct lbus_rbuf scratch;  /* read buffer lent to whichever conn reads */
	struct list flush;	   /* conns with output to try writing now */
	struct list ready;	   /* conns whose input was resumed */
	struct list backlog;	   /* conns with input past their turn's budget */
	struct list deadlines;	   /* conns with a deadline set */
	size_t max_queue;	   /* out-queue limit, bytes */
	size_t held;		   /* bytes of every conn's own input buffer */
	size_t max_held;	   /* bound on held (partial_frames_max) */
	uint32_t frame_timeout_ms; /* a partial frame must complete in this */
	int64_t recheck_ms;	   /* earliest deadline of a paused conn, 0: none
				    * (exact, unlike the coarse sweep of the rest) */
	bool stopping;		   /* shutting down: no conn reads any more */
	uint64_t bytes_in, bytes_out;
	uint64_t fds_in, fds_out; /* descriptors received, sent */
};

/* A batch of received descriptors, waiting for the frame that claims it. */
struct conn_fds {
	struct conn_fds *next;
	struct fdset *set;	       /* one reference */
	uint64_t read_start, read_end; /* stream offsets of the read that brought it */
};

struct conn {
	struct conn_loop *loop;
	int fd;		       /* -1 once closed */
	uint32_t events;       /* epoll events registered */
	bool registered;       /* fd is in the epoll set */
	bool peer_hup;	       /* other end hung up while we were not reading */
	bool input_paused;     /* the owner paused input (conn_pause_input) */
	bool frame_deadlines;  /* a partial frame gets frame_timeout_ms */
	bool write_blocked;    /* socket was full: EPOLLOUT armed */
	bool rbuf_scratch;     /* rbuf is the loop's scratch, lent for one read */
	bool backlogged;       /* on loop->backlog: input off until its next turn */
	uint32_t max_frame;    /* longest frame body accepted */
	struct lbus_rbuf rbuf; /* unprocessed input; empty (no memory) when idle */
	size_t rbuf_need;      /* bytes the pending partial frame needs, 0 if none */
	size_t held;	       /* rbuf's bytes counted in loop->held (own buffer) */
	struct outq outq;
	struct list flush_link;	   /* loop->flush */
	struct list ready_link;	   /* loop->ready */
	struct list backlog_link;  /* loop->backlog */
	struct list deadline_link; /* loop->deadlines */
	int64_t deadline_ms;	   /* monotonic; 0 for none */
	int64_t progress_ms;	   /* last write the socket took, or when output
				    * last started waiting (monotonic) */
	uint64_t bytes_in, bytes_out;
	uint64_t in_pos;	   /* stream offset of rbuf's first byte */
	uint64_t frame_pos;	   /* stream offset of the frame being reported */
	struct conn_fds *fds_head; /* received descriptors, oldest first */
	struct conn_fds **fds_tail;
	uint32_t fds_pending; /* descriptors in that list */
	bool fds_claimed;     /* the frame being reported took fds_head */
	uint64_t fds_in;      /* descriptors received */
};

void conn_loop_init(struct conn_loop *l, int epfd, struct msgpool *pool, const struct conn_ops *ops);
/* Free the scratch buffer (every conn must be closed). */
void conn_loop_deinit(struct conn_loop *l);
/* Report the buffered frames of the conns whose input was resumed. */
void conn_loop_run_ready(struct conn_loop *l);
/* Give each backlogged conn its next turn (CONN_FRAMES_PER_TURN more frames;
 * one with input still left stays backlogged for the turn after). Returns
 * how many conns were served. While stopping, the backlog is dropped. */
unsigned conn_loop_run_backlog(struct conn_loop *l);
/* Has the loop work that no epoll event will announce (resumed or
 * backlogged input)? Then its next epoll_wait must not sleep. */
static inline bool conn_loop_busy(const struct conn_loop *l)
{
	return !list_empty(&l->ready) || !list_empty(&l->backlog);
}
/* Write every conn on the flush list (conn_flush). */
void conn_loop_flush(struct conn_loop *l);
/* ops->deadline for every conn whose deadline is <= now_ms. */
void conn_loop_sweep(struct conn_loop *l, int64_t now_ms);
/* The same for the paused conns alone (their deadline is their owner's
 * recheck time, which must not wait for the next sweep); the loop calls
 * it once now_ms reaches l->recheck_ms, which it recomputes. */
void conn_loop_sweep_paused(struct conn_loop *l, int64_t now_ms);
/* Stop reading on every conn from now on (conns update as they are met;
 * the caller calls conn_update_events for each). */
static inline void conn_loop_stop(struct conn_loop *l)
{
	l->stopping = true;
}

/* Set up c on the connected, non-blocking fd and register it with EPOLLIN.
 * 0 or -errno (then nothing to undo; the fd stays the caller's). */
int conn_init(struct conn *c, struct conn_loop *l, int fd, uint32_t max_frame);
/* Unregister and close the socket; queued output is dropped. */
void conn_close(struct conn *c);
/* Free the buffers of a closed conn. */
void conn_deinit(struct conn *c);
static inline bool conn_closed(const struct conn *c)
{
	return c->fd < 0;
}

/* Handle epoll events for c. */
void conn_on_events(struct conn *c, uint32_t events);
/* Recompute and apply c's epoll events. */
void conn_update_events(struct conn *c);
/* Set (when_ms > 0, monotonic) or clear (0) c's deadline. */
void conn_set_deadline(struct conn *c, int64_t when_ms);
/* Stop reading c; recheck_ms > 0: its deadline (ops->deadline then). */
void conn_pause_input(struct conn *c, int64_t recheck_ms);
/* Read c again: its buffered frames are reported at the end of the turn. */
void conn_resume_input(struct conn *c);

/* Is c's queue too full to take `add` more bytes? (An empty queue takes
 * any.) Queued descriptors count OUTQ_FD_COST each. */
static inline bool conn_queue_full(const struct conn *c, size_t add)
{
	return c->outq.bytes > 0 && c->outq.bytes + c->outq.fd_cost + add > c->loop->max_queue;
}

/*
 * From inside ops->frame: the n descriptors (n > 0) sent with the first
 * byte of the frame being reported, borrowed (fdset_ref() to keep them past
 * the handler; the transport closes them once the frame is consumed).
 * -EBADMSG when the oldest pending batch did not arrive with this frame's
 * first byte or holds another count.
 */
int conn_frame_fds(struct conn *c, uint32_t n, struct fdset **out);

/* conn_make_room() once the queue was found full. */
bool conn_make_room_slow(struct conn *c, size_t need);
/*
 * Can c take `need` more bytes? A full queue is written now (the socket may
 * take it); still full: false. A closed conn, or one whose socket fails
 * while written, takes anything (it drops it). Inline: the delivery path
 * asks for every block-policy target.
 */
static inline bool conn_make_room(struct conn *c, size_t need)
{
	return c->fd < 0 || !conn_queue_full(c, need) || conn_make_room_slow(c, need);
}
/*
 * Queue raw frame bytes: hdr (<= OUTQ_HDR_MAX bytes, copied) then buf's
 * bytes; takes over the reference to buf. Schedules the write. 0 (also when
 * c is closed: dropped) or -ENOMEM.
 */
int conn_queue(struct conn *c, struct msgbuf *buf, const void *hdr, size_t hlen);
/*
 * Reserve len bytes at the end of c's queue for a small frame the caller
 * writes there at once (see outq.h). Schedules the write. NULL on ENOMEM or
 * when c is closed.
 */
uint8_t *conn_queue_reserve(struct conn *c, size_t len);

/* Try to write c's queue now; ops->gone on a write error. For the end of
 * the loop turn and epoll events, never from inside a frame handler. */
void conn_flush(struct conn *c);
/*
 * Try to write c's queue now, from inside a frame handler: a write error
 * does not report c gone here; c stays on the flush list, whose end-of-turn
 * conn_flush() meets the error again.
 */
void conn_write_now(struct conn *c);
/* Write what the socket takes at once, ignoring errors (before closing). */
void conn_write_last(struct conn *c);
