/* SPDX-License-Identifier: MIT */
/*
 * Delivery to one recipient (see deliver.h): the Deliver header written per
 * recipient in front of the shared body (copied into the recipient's queue
 * when small, referenced when large), the drop policy and its counting, and
 * the Dropped notices queued before the next delivery on a subscription.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "broker.h"
#include "clock.h"
#include "deliver.h"
#include "peer.h"
#include "subscription.h"

#define DELIVER_RECV_MIN 64 /* first size of the receivers list */

/* When a block subscription with stall_ms starts dropping (its client has
 * taken nothing since progress_ms); 0 for a plain block one (never). */
int64_t deliver_stall_at(const struct sub *s)
{
	return s->stall_ms ? s->peer->conn.progress_ms + s->stall_ms : 0;
}

/* Does s lose a message that its client's full queue cannot take? With
 * drop, always; with block only once the client has stalled (stall_ms). */
bool deliver_drops_when_full(const struct sub *s)
{
	return s->policy == LBUS__POLICY__POLICY_DROP ||
	       (s->stall_ms && clock_now_ms() >= deliver_stall_at(s));
}

static void queue_dropped(struct peer *to, struct sub *s)
{
	Lbus__Dropped d = LBUS__DROPPED__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	d.sub_id = s->id;
	d.count = s->dropped;
	f.kind_case = LBUS__FRAME__KIND_DROPPED;
	f.dropped = &d;
	if (answer_frame(to, &f) == 0)
		s->dropped = 0;
}

static void count_drop(struct peer *to, struct sub *s)
{
	if (s) {
		s->dropped++;
		s->dropped_total++;
	}
	peer_count_drop(to);
	to->drops_pending = true;
}

void deliver_flush_dropped(struct peer *c)
{
	struct list *l;

	c->drops_pending = false;
	for (l = c->subs.next; l != &c->subs; l = l->next) {
		struct sub *s = container_of(l, struct sub, peer_link);
		if (s->dropped)
			queue_dropped(c, s);
	}
}

/*
 * Copy the body into the recipient's queue, or share it? Small bodies are
 * always copied; a body up to OUTQ_COPY_ALONE_MAX too when nobody else gets
 * it (its buffer is then reused at once, and the queue holds only bytes).
 */
static bool copy_body(const struct msgbuf *body, unsigned flags)
{
	size_t len = body->len;

	if (body->fds)
		return false; /* an entry of its own: its descriptors go with its first byte */
	return len <= OUTQ_COPY_MAX || ((flags & DELIVER_ALONE) && len <= OUTQ_COPY_ALONE_MAX);
}

/* Queue a Deliver of body for sub_id, its header hlen bytes: copied right
 * after the header into the queue's chunk, or referenced. 0 or -ENOMEM. */
static int queue_deliver(struct peer *to, uint64_t sub_id, struct msgbuf *body, size_t hlen, unsigned flags)
{
	bool retained = flags & DELIVER_RETAINED;
	uint8_t hdr[OUTQ_HDR_MAX], *p;

	if (!copy_body(body, flags)) {
		lbus_wire_deliver_header(hdr, sub_id, retained, body->len, msgbuf_nfds(body));
		return conn_queue(&to->conn, msgbuf_ref(body), hdr, hlen);
	}
	p = conn_queue_reserve(&to->conn, hlen + body->len);
	if (!p)
		return -ENOMEM;
	lbus_wire_deliver_header(p, sub_id, retained, body->len, 0);
	memcpy(p + hlen, body->data, body->len);
	return 0;
}

bool deliver_to(struct broker *b, struct peer *to, struct sub *s, struct msgbuf *body, unsigned flags)
{
	uint64_t sub_id = s ? s->id : 0;
	size_t hlen;

	if (to->state != PEER_READY || (s && s->expired))
		return false;
	hlen = lbus_wire_deliver_header_size(sub_id, flags & DELIVER_RETAINED, body->len, msgbuf_nfds(body));
	if (!deliver_fits(to, body->len)) {
		count_drop(to, s);
		return false;
	}
	if (s && conn_queue_full(&to->conn, hlen + body->len + msgbuf_nfds(body) * OUTQ_FD_COST) &&
	    (deliver_drops_when_full(s) || (flags & DELIVER_NEVER_WAIT))) {
		count_drop(to, s);
		return false;
	}
	if (s && s->dropped)
		queue_dropped(to, s);
	if (queue_deliver(to, sub_id, body, hlen, flags) < 0) {
		count_drop(to, s);
		return false;
	}
	peer_count_out(to);
	if (s && s->max_msgs && ++s->delivered == s->max_msgs)
		sub_expire(s); /* its last one: route the next message without it */
	return true;
}

bool deliver_one(struct broker *b, struct peer *to, struct sub *s, struct msgbuf *body)
{
	return deliver_to(b, to, s, body, DELIVER_ALONE);
}

void deliver_retained(struct broker *b, struct sub *s, struct msgbuf *body)
{
	deliver_to(b, s->peer, s, body, DELIVER_RETAINED | DELIVER_ALONE);
}

/* Remember that client id got the message (for monitors); a failure to grow
 * only shortens the list. */
static void note_receiver(struct router *r, uint64_t id)
{
	if (r->nrecv == r->caprecv) {
		size_t cap = r->caprecv ? 2 * r->caprecv : DELIVER_RECV_MIN;
		uint64_t *recv = realloc(r->recv, cap * sizeof(*recv));
		if (!recv)
			return;
		r->recv = recv;
		r->caprecv = cap;
	}
	r->recv[r->nrecv++] = id;
}

void deliver_many(struct broker *b, struct sub *const *subs, size_t n, struct msgbuf *body, unsigned flags)
{
	if (!b->monitors.count) {
		for (size_t i = 0; i < n; i++)
			deliver_to(b, subs[i]->peer, subs[i], body, flags);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (deliver_to(b, subs[i]->peer, subs[i], body, flags))
			note_receiver(&b->router, subs[i]->peer->id);
}
