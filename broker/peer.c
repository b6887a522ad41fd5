/* SPDX-License-Identifier: MIT */
/*
 * Bus peers (see peer.h): creation, the handlers of the transport's events
 * (peer_conn_ops), flow-control waits between peers, the cached Sender,
 * counters, close and free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "answer.h"
#include "broker.h"
#include "callreply.h"
#include "clock.h"
#include "deliver.h"
#include "dispatch.h"
#include "introspect.h"
#include "lbus-limits.h"
#include "peer.h"
#include "access.h"
#include "subscription.h"

/* Waiters resume when the queue they wait on is below max_queue / this. */
#define PEER_RESUME_DIVISOR 2

struct peer *peer_new(struct broker *b, int fd, pid_t pid, uid_t uid, gid_t gid)
{
	struct peer *c = calloc(1, sizeof(*c));
	int ret;

	if (c && !(c->fdacct = fdacct_new(&b->ctr.fds_held))) {
		free(c);
		c = NULL;
	}
	if (!c || uid_limits_add(&b->uid_limits, uid) < 0) {
		if (c)
			fdacct_unref(c->fdacct);
		free(c);
		log_msg(&b->log, LOG_ERR, "out of memory accepting a client");
		close(fd);
		return NULL;
	}
	ret = conn_init(&c->conn, &b->conns, fd, b->cfg.max_frame);
	if (ret < 0) {
		log_msg(&b->log, LOG_ERR, "epoll_ctl: %s", strerror(-ret));
		uid_limits_del(&b->uid_limits, uid);
		close(fd);
		fdacct_unref(c->fdacct);
		free(c);
		return NULL;
	}
	c->broker = b;
	c->state = PEER_HELLO;
	c->id = b->next_peer_id++;
	c->pid = pid;
	c->uid = uid;
	c->gid = gid;
	c->connected_at_ms = clock_realtime_ms();
	list_init(&c->wait_link);
	list_init(&c->waiters);
	list_init(&c->subs);
	hashtab_init(&c->sub_ids);
	name_owner_init(&c->names);
	calls_peer_init(&c->calls);
	list_add_tail(&b->peers, &c->link);
	conn_set_deadline(&c->conn, clock_now_ms() + b->cfg.hello_timeout_ms);
	peer_sender_changed(c);
	introspect_read_comm(c);
	b->ctr.clients++;
	b->ctr.clients_total++;
	log_msg(&b->log, LOG_DEBUG, "client %llu connected (pid %d uid %u)", (unsigned long long)c->id,
		(int)c->pid, (unsigned)c->uid);
	return c;
}

/* ---- flow-control waits ---------------------------------------------------- */

/* Stop c waiting: its kept frame is handled again at the end of the turn. */
static void peer_wake(struct peer *c)
{
	list_del(&c->wait_link);
	c->blocked_on = NULL;
	conn_resume_input(&c->conn);
}

void peer_wake_waiters(struct peer *c)
{
	struct list *l, *tmp;

	list_for_each_safe(l, tmp, &c->waiters) peer_wake(container_of(l, struct peer, wait_link));
}

void peer_wait_on(struct peer *c, struct peer *target, int64_t recheck_ms)
{
	c->blocked_on = target;
	list_add_tail(&target->waiters, &c->wait_link);
	conn_pause_input(&c->conn, recheck_ms);
}

void peer_sender_changed(struct peer *c)
{
	struct lbus_wire_sender s = {.id = c->id, .pid = (uint32_t)c->pid, .uid = c->uid, .gid = c->gid};
	const struct name_entry *first = name_owner_first(&c->names);
	uint8_t *enc;

	if (first) {
		s.name = first->name;
		s.name_len = first->len;
	}
	enc = malloc(lbus_wire_sender_size(&s) + 1);
	if (!enc)
		return; /* keep the previous encoding */
	free(c->sender);
	c->sender = enc;
	c->sender_len = lbus_wire_sender_encode(enc, &s);
}

/* ---- what the transport reports ---------------------------------------------- */

static int peer_on_frame(struct conn *conn, const uint8_t *body, uint32_t len)
{
	return dispatch_frame(peer_of(conn), body, len);
}

static void peer_on_bad_fds(struct conn *conn, int err)
{
	struct peer *c = peer_of(conn);

	if (err == -E2BIG)
		answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_LIMIT,
			     "more than %u file descriptors with one frame", LBUS_MAX_FDS_PER_FRAME);
	else
		answer_fatal(
		    c, NULL, LBUS__ERROR_CODE__ERR_PROTOCOL,
		    "file descriptors not sent with the first byte of the frame that announces them");
}

static void peer_on_bad_frame(struct conn *conn, int err, uint32_t len)
{
	struct peer *c = peer_of(conn);

	if (err == -EMSGSIZE)
		answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_TOO_BIG, "frame length %u exceeds max_frame %u",
			     len, conn->max_frame);
	else if (err == -ENOBUFS)
		answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_LIMIT,
			     "broker limit reached: the unfinished frames of all connections would pass "
			     "partial_frames_max (%llu bytes) with this one's (length %u)",
			     (unsigned long long)c->broker->cfg.partial_frames_max, len);
	else
		answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_PROTOCOL, "zero-length frame");
}

/* The queue shrank: report pending drops once it is empty, and wake the
 * peers waiting on it once it is below half of max_queue. */
static void peer_on_wrote(struct conn *conn)
{
	struct peer *c = peer_of(conn);

	if (outq_empty(&conn->outq) && c->drops_pending)
		deliver_flush_dropped(c); /* queued, flushed later in this turn */
	if (!list_empty(&c->waiters) && conn->outq.bytes < c->broker->cfg.max_queue / PEER_RESUME_DIVISOR)
		peer_wake_waiters(c);
}

/* The deadline passed: a waiting publisher re-checks its target (stall_ms);
 * otherwise the hello or the pending frame took too long. */
static void peer_on_deadline(struct conn *conn)
{
	struct peer *c = peer_of(conn);
	const struct config *cfg = &c->broker->cfg;

	if (c->blocked_on)
		peer_wake(c);
	else if (c->state == PEER_HELLO)
		answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_TIMEOUT, "no hello within %u ms",
			     cfg->hello_timeout_ms);
	else
		answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_TIMEOUT, "frame incomplete after %u ms",
			     cfg->frame_timeout_ms);
}

static void peer_on_gone(struct conn *conn, int err)
{
	struct peer *c = peer_of(conn);

	if (!err && lbus_rbuf_len(&conn->rbuf))
		log_limited(&c->broker->log, LOG_FLOOD_CLIENT, LOG_INFO,
			    "client %llu (pid %d uid %u): hung up inside a frame", (unsigned long long)c->id,
			    (int)c->pid, (unsigned)c->uid);
	peer_close(c, err ? strerror(-err) : "end of file");
}

const struct conn_ops peer_conn_ops = {
    .frame = peer_on_frame,
    .bad_frame = peer_on_bad_frame,
    .bad_fds = peer_on_bad_fds,
    .wrote = peer_on_wrote,
    .deadline = peer_on_deadline,
    .gone = peer_on_gone,
};

/* ---- close and free ------------------------------------------------------------ */

/* names_released_fn of a closing peer: $lbus/name/released. */
static void peer_name_released(const char *name, size_t len, void *ctx)
{
	const struct peer *c = ctx;

	presence_name(c->broker, c, name, len, false);
}

void peer_close(struct peer *c, const char *why)
{
	struct broker *b = c->broker;
	bool welcomed = c->state == PEER_READY;

	if (c->state == PEER_CLOSED)
		return;
	log_msg(&b->log, LOG_DEBUG, "client %llu (pid %d) disconnected: %s", (unsigned long long)c->id,
		(int)c->pid, why);
	conn_close(&c->conn);
	c->state = PEER_CLOSED;
	if (c->blocked_on) {
		list_del(&c->wait_link);
		c->blocked_on = NULL;
	}
	peer_wake_waiters(c);
	/* Release what others can see; memory is freed in peer_free(). */
	callreply_peer_closed(c);
	monitor_free(&b->monitors, c->monitor);
	c->monitor = NULL;
	if (welcomed)
		presence_client(b, c, false);
	sub_remove_all(c);
	names_release_all(&b->names, &c->names, welcomed ? peer_name_released : NULL, c);
	b->ctr.clients--;
	uid_limits_del(&b->uid_limits, c->uid);
	list_del(&c->link);
	list_add_tail(&b->graveyard, &c->link);
}

void peer_free(struct peer *c)
{
	list_del(&c->link);
	sub_free_all(c);
	conn_deinit(&c->conn);
	router_cache_free(c);
	free(c->sender);
	access_id_free(c->foreign);
	fdacct_unref(c->fdacct);
	free(c);
}
