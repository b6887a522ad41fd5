/* SPDX-License-Identifier: MIT */
/*
 * Routing and flow control: the data path of lbusd.
 *
 * The layers
 * ----------
 * Transport (knows bytes and frames, never the bus):
 *   conn.c      socket, input buffer and framing, out queue, epoll, deadlines
 *   outq.c      a connection's out queue;  msgbuf.c  shared bodies
 *   clock.c     monotonic time
 * Bus (knows what frames mean):
 *   accept.c    admission: credentials, then a peer
 *   peer.c      a peer on top of its conn: the transport's events, waits
 *   dispatch.c  the frame table -> session, naming, subscription, router,
 *               callreply, introspect, monitor handlers
 *   answer.c    Ok / Error / fatal answers to a peer; refusal.c maps the
 *               refusal codes of every module to the wire, once
 *   router.c    (this file) publish and send, flow control;
 *   route.c     cached routes per topic;  deliver.c  one recipient
 * broker.c drives both: epoll, signals, the end of each loop turn.
 *
 * The path of a publish
 * ---------------------
 * 1. A readable publisher's conn borrows the loop's one 256 KiB scratch
 *    buffer and reads one chunk (conn.c). Every complete frame in it is
 *    reported to the peer (peer.c -> dispatch.c) before the loop returns to
 *    epoll; one chunk per wakeup keeps clients fair. What is left (a partial
 *    frame) is copied to a buffer of the conn's own, sized to it, and the
 *    scratch goes back: however many clients read in a turn, there is one
 *    read buffer.
 * 2. lbus_wire_frame_scan() finds the kind and req_id without allocating
 *    (the usual layout, kind first, is taken without the generic field
 *    loop); dispatch.c calls router_handle_publish(), which decodes the
 *    Publish with lbus_wire_publish_decode() (one pass over the layout every
 *    encoder writes; pointers into the buffer, no copy). The publisher keeps
 *    the route of the last topic it published on; when the topic differs or
 *    the route went stale, the topic is checked and its route taken from
 *    the broker's route cache (route.c: the trie's match for that topic,
 *    plain and grouped subscriptions apart, immutable, made stale only by a
 *    subscribe or unsubscribe whose pattern matches that topic). When the
 *    route has grouped subscriptions, router_pick_groups() picks one member
 *    per group into a scratch list (groups.c: round-robin, skipping full
 *    queues); the route itself is never written.
 * 3. Flow control first, so a message is routed all-or-nothing: if any
 *    block-policy target (or, for a send, the name's owner) cannot take the
 *    message even after trying to write its queue now, the publisher waits:
 *    the frame is put back in its input buffer, its EPOLLIN is switched off
 *    and it is linked on the target's waiter list (peer_wait_on()).
 * 4. The Deliver body is encoded ONCE: the publish bytes exactly as received
 *    plus the publisher's cached encoded Sender (rebuilt only when its names
 *    change). A small body (<= OUTQ_COPY_MAX, 512 B) that nothing keeps is
 *    encoded into the router's scratch body; a large or retained one into a
 *    pooled, reference-counted msgbuf. No payload is decoded, and nothing is
 *    allocated per message.
 * 5. Per target, lbus_wire_deliver_header() writes the small per-recipient
 *    header (frame length, Deliver tag, sub_id). For a small body the header
 *    is written in place at the end of the target's out-queue chunk and the
 *    body copied right behind it (outq.h): a burst of small deliveries is one
 *    contiguous byte run, so a sendmsg() carries thousands of messages in a
 *    few large iovecs instead of two tiny ones per message (the kernel's
 *    per-segment cost dominated). A body up to 2 KiB is copied too when the
 *    message has one recipient (OUTQ_COPY_ALONE_MAX): its buffer is then
 *    reused at once. A larger body is shared: the queue entry holds the header
 *    inline and a reference to the body, so fan-out copies it to no one.
 *    Drop-policy targets whose queue is full are only counted; the count is
 *    queued as Dropped{sub_id, count} right before the next delivery on that
 *    subscription, or as soon as the subscriber's queue has drained
 *    completely (deliver_flush_dropped()), so nothing is lost silently and a
 *    subscriber learns of drops at the end of a burst too (deliver.c). A publish flagged retain also
 *    hands a reference to the body to the retained store (retained.c); when
 *    monitors exist, one MonitorEvent naming the clients that got the message
 *    is queued to them (monitor.c). Groups, retain and monitors cost one test
 *    each when unused. Small control frames (Ok, Error, Dropped) are packed
 *    straight into the chunk as well.
 *    The broker's own messages (presence) take this same path, with one
 *    difference: the broker never waits, a full block subscriber drops them.
 * 6. Clients that received output are on the broker's flush list; at the end
 *    of the loop turn each is written with one sendmsg() of up to IOV_MAX
 *    iovecs (repeated while the socket takes it); EPOLLOUT is armed only for
 *    what the socket did not take. A request/reply round trip thus costs the
 *    broker one read, one sendmsg and one epoll_wait per direction.
 *
 * Flow control and memory bounds
 * ------------------------------
 * A client's queue may exceed max_queue by at most one message (a message is
 * refused only when the queue is non-empty and would pass the limit), plus
 * small control frames. When a queue with waiters drains below half of
 * max_queue, its waiters go to the broker's ready list; the loop re-processes
 * their buffered frames and turns their EPOLLIN back on. A blocked publisher
 * holds at most one read chunk (or one frame, if larger), in a buffer of its
 * own sized to what is left. Copied deliveries cost a queue their bytes plus
 * the free room of its last chunk (chunks grow with the queue's depth, from
 * 256 B to 64 KiB, and go back to the pool once written). A client that
 * disconnects wakes its waiters (they re-route without it) and leaves the
 * waiter list it was on. Unrelated clients never wait: a publisher waits only
 * for the queues its own next message needs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "access.h"
#include "answer.h"
#include "clock.h"
#include "deliver.h"
#include "dispatch.h"
#include "lbus-limits.h"
#include "monitor.h"
#include "peer.h"
#include "refusal.h"
#include "route.h"
#include "subscription.h"
#include "topic.h"

#define ROUTER_SUBS_MIN 64 /* first size of the scratch arrays */

int router_init(struct router *r, struct msgpool *pool)
{
	r->n = 0;
	r->cap = ROUTER_SUBS_MIN;
	r->oom = false;
	r->subs = malloc(r->cap * sizeof(*r->subs));
	r->small = msgbuf_new(pool, OUTQ_COPY_MAX);
	return r->subs && r->small ? 0 : -ENOMEM;
}

void router_deinit(struct router *r)
{
	msgbuf_unref(r->small);
	r->small = NULL;
	free(r->subs);
	r->subs = NULL;
	r->n = r->cap = 0;
	free(r->winners);
	r->winners = NULL;
	r->nwinners = r->capwinners = 0;
	free(r->recv);
	r->recv = NULL;
	r->nrecv = r->caprecv = 0;
}

static void collect(struct trie_entry *e, void *ctx)
{
	struct router *r = ctx;

	if (r->n == r->cap) {
		struct sub **subs = realloc(r->subs, 2 * r->cap * sizeof(*subs));
		if (!subs) {
			r->oom = true;
			return;
		}
		r->subs = subs;
		r->cap *= 2;
	}
	r->subs[r->n++] = sub_from_entry(e);
}

int router_targets(struct broker *b, const char *topic, size_t len)
{
	struct router *r = &b->router;

	r->n = 0;
	r->oom = false;
	trie_match(&b->subs, topic, len, collect, r);
	return r->oom ? -ENOMEM : 0;
}

/* How a full group member ranks against the others that are full (lower
 * wins): by the bytes it has queued, except that one which would lose the
 * message (drop policy, or a stalled block one) comes after every one that
 * would only make the publisher wait. */
static size_t group_rank(const struct sub *s, bool full)
{
	return full && deliver_drops_when_full(s) ? SIZE_MAX : s->peer->conn.outq.bytes;
}

/* Pick the member of each queue group of rt (which has grouped
 * subscriptions) that gets a message of frame_len bytes into
 * b->router.winners (the route is not touched). 0 or -ENOMEM. */
static int router_pick_winners(struct broker *b, const struct route *rt, size_t frame_len)
{
	struct router *r = &b->router;
	struct group_member *w;

	if (rt->ngrouped > r->capwinners) {
		struct sub **winners = realloc(r->winners, rt->ngrouped * sizeof(*winners));

		if (!winners)
			return -ENOMEM;
		r->winners = winners;
		r->capwinners = rt->ngrouped;
	}
	groups_begin(&b->groups);
	for (size_t i = 0; i < rt->ngrouped; i++) {
		struct sub *s = rt->grouped[i];
		bool full = conn_queue_full(&s->peer->conn, frame_len);

		groups_offer(&b->groups, &s->member, full, group_rank(s, full));
	}
	while ((w = groups_next_winner(&b->groups)))
		r->winners[r->nwinners++] = container_of(w, struct sub, member);
	return 0;
}

/* The group members of rt that get this message, into b->router.winners
 * (none when rt has no groups: the common case costs one test). */
static inline int router_pick_groups(struct broker *b, const struct route *rt, size_t frame_len)
{
	b->router.nwinners = 0;
	return rt->ngrouped ? router_pick_winners(b, rt, frame_len) : 0;
}

/* The first block-policy target among subs[0..n) whose queue cannot take
 * frame_len more bytes even after trying to write it now, and that has not
 * stalled (stall_ms); *recheck_ms: when it may have. NULL if none. */
static struct peer *block_target_in(struct sub *const *subs, size_t n, size_t frame_len, int64_t *recheck_ms)
{
	for (size_t i = 0; i < n; i++) {
		struct sub *s = subs[i];

		if (s->policy != LBUS__POLICY__POLICY_BLOCK || conn_make_room(&s->peer->conn, frame_len))
			continue;
		if (!s->stall_ms || clock_now_ms() < deliver_stall_at(s)) {
			*recheck_ms = deliver_stall_at(s);
			return s->peer;
		}
	}
	return NULL;
}

/* The peer whose full queue makes the publisher of a message of frame_len
 * bytes on rt (groups picked) wait, or NULL; *recheck_ms (monotonic, 0 for
 * none) is when the waiting publisher looks again (a stall_ms target). */
static struct peer *router_block_target(struct broker *b, const struct route *rt, size_t frame_len,
					int64_t *recheck_ms)
{
	struct peer *full;

	*recheck_ms = 0;
	full = block_target_in(rt->plain, rt->nplain, frame_len, recheck_ms);
	if (!full && b->router.nwinners)
		full = block_target_in(b->router.winners, b->router.nwinners, frame_len, recheck_ms);
	return full;
}

/* Queue body to rt's plain targets and the picked group members; when
 * monitors exist, note who got it in b->router.recv. */
static void router_deliver(struct broker *b, const struct route *rt, struct msgbuf *body, unsigned flags)
{
	struct router *r = &b->router;

	if (rt->nplain + r->nwinners == 1)
		flags |= DELIVER_ALONE;
	r->nrecv = 0;
	deliver_many(b, rt->plain, rt->nplain, body, flags);
	if (r->nwinners)
		deliver_many(b, r->winners, r->nwinners, body, flags);
}

/* One MonitorEvent for a routed publish (c NULL: the broker's own). */
static void monitor_publish(struct broker *b, const struct peer *c, const struct lbus_wire_publish *p)
{
	struct lbus_wire_monitor_event ev = {
	    .kind = LBUS__MONITOR_KIND__MON_PUBLISH,
	    .sender = c ? c->sender : NULL,
	    .sender_len = c ? c->sender_len : 0,
	    .receivers = b->router.recv,
	    .nreceivers = b->router.nrecv,
	    .topic = p->topic,
	    .topic_len = p->topic_len,
	    .payload = p->payload,
	    .payload_len = p->payload_len,
	    .retain = p->retain,
	};

	monitor_note_fds(&ev, c ? c->frame_fds : NULL);
	monitor_emit(b, &ev);
}

/*
 * A buffer for a Deliver body of size bytes, one reference for the caller.
 * Small bodies that nothing will keep (kept: the retained store takes a
 * reference) use the router's scratch body: recipients copy small bodies, so
 * no reference outlives the message and no buffer is taken from the pool.
 * NULL on ENOMEM.
 */
static struct msgbuf *body_buffer(struct broker *b, size_t size, bool kept)
{
	struct msgbuf *small = b->router.small;

	if (!kept && size <= OUTQ_COPY_MAX && small->refs == 1)
		return msgbuf_ref(small);
	return msgbuf_new(&b->pool, size);
}

/* Encode the shared Deliver body (from NULL: the broker's message, no
 * sender), with the descriptors of from's frame; NULL on ENOMEM. */
static struct msgbuf *encode_body(struct broker *b, uint32_t what, const uint8_t *msg, size_t msg_len,
				  const struct peer *from, bool kept)
{
	const uint8_t *sender = from ? from->sender : NULL;
	size_t sender_len = from ? from->sender_len : 0;
	struct fdset *fds = from ? from->frame_fds : NULL;
	struct msgbuf *m = body_buffer(b, lbus_wire_deliver_body_size(msg_len, sender_len, 0), kept || fds);

	if (!m)
		return NULL;
	m->len = (uint32_t)lbus_wire_deliver_body_encode(m->data, what, msg, msg_len, sender, sender_len, 0);
	if (fds)
		m->fds = fdset_ref(fds);
	return m;
}

/* What a message's descriptors count against a recipient's queue. */
static size_t fds_cost(const struct peer *from)
{
	return from->frame_fds ? (size_t)from->frame_fds->n * OUTQ_FD_COST : 0;
}

void router_cache_free(struct peer *c)
{
	route_unref(c->route);
	c->route = NULL;
}

/* Keep (body) or clear (NULL) the topic's retained message. 0,
 * ROUTER_E_RETAINED_FULL or -ENOMEM. */
static int router_retain(struct broker *b, const struct lbus_wire_publish *p, struct msgbuf *body)
{
	int ret;

	if (!body) {
		retained_clear(&b->retained, p->topic, p->topic_len);
		return 0;
	}
	ret = retained_put(&b->retained, p->topic, p->topic_len, body);
	return ret == -ENOSPC ? ROUTER_E_RETAINED_FULL : ret;
}

/*
 * The one delivery path of a publish, from a peer or the broker (from NULL):
 * deliver msg (the Publish as received) to rt's targets, groups picked,
 * apply its retain flag, tell monitors. 0, ROUTER_E_RETAINED_FULL
 * (delivered, not retained) or -ENOMEM.
 */
static int router_publish(struct broker *b, struct peer *from, const struct route *rt, const uint8_t *msg,
			  size_t msg_len, const struct lbus_wire_publish *p, unsigned flags)
{
	bool keep = p->retain && (p->payload_len || (from && from->frame_fds));
	struct msgbuf *body = NULL;
	int ret = 0;

	b->router.nrecv = 0;
	b->ctr.filtered += rt->nfiltered;
	if (rt->nplain || b->router.nwinners || keep) {
		body = encode_body(b, LBUS_D_PUBLISH, msg, msg_len, from, keep);
		if (!body)
			return -ENOMEM;
		router_deliver(b, rt, body, flags);
	}
	if (p->retain)
		ret = router_retain(b, p, keep ? body : NULL);
	msgbuf_unref(body);
	if (b->monitors.count)
		monitor_publish(b, from, p);
	return ret;
}

/* Make c->route the route of p's topic (validated here). 0, a refusal
 * (TOPIC_E_*) or -ENOMEM. */
static int router_lookup(struct peer *c, const struct lbus_wire_publish *p)
{
	struct broker *b = c->broker;
	struct route *rt;

	if (!lbus_topic_within_limits(p->topic, p->topic_len))
		return TOPIC_E_TOO_LONG;
	if (lbus_topic_validate(p->topic, p->topic_len) < 0)
		return TOPIC_E_INVALID;
	if (lbus_topic_is_reserved(p->topic, p->topic_len))
		return TOPIC_E_RESERVED;
	rt = routes_get(&b->routes, &b->subs, p->topic, p->topic_len);
	if (!rt)
		return -ENOMEM;
	route_unref(c->route);
	c->route = rt;
	return 0;
}

int router_handle_publish(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_publish p;
	struct peer *full;
	int64_t recheck_ms;
	size_t frame_len;
	int ret;

	if (lbus_wire_publish_decode(f->body, f->body_len, &p) < 0)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable publish");
	if (!route_is_for(c->route, p.topic, p.topic_len) && (ret = router_lookup(c, &p)))
		return ret;
	if (c->foreign && access_denied(c, f, POLICY_PUBLISH, POLICY_TOPIC, p.topic, p.topic_len, &ret))
		return ret;
	frame_len = lbus_wire_deliver_body_size(f->body_len, c->sender_len, 0) + OUTQ_HDR_MAX + fds_cost(c);
	ret = router_pick_groups(b, c->route, frame_len);
	if (ret < 0)
		return ret;
	full = router_block_target(b, c->route, frame_len, &recheck_ms);
	if (full) {
		peer_wait_on(c, full, recheck_ms);
		return PEER_BLOCKED;
	}
	peer_count_in(c);
	ret = router_publish(b, c, c->route, f->body, f->body_len, &p, 0);
	if (ret == 0 && f->req_id)
		ret = answer_ok(c, f, 0);
	return ret;
}

/* Refuse a send to a valid name: an Error for the sender and, for monitors,
 * a MON_ERROR event naming the target, from the broker to the sender (no
 * payload: in an error event the payload is a responder's reason). */
static int send_refuse(struct peer *c, const struct lbus_wire_frame *f, const struct lbus_wire_send *s,
		       int code)
{
	struct broker *b = c->broker;
	int ret = answer_refusal(c, f, code);

	if (b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
		    .kind = LBUS__MONITOR_KIND__MON_ERROR,
		    .receivers = &c->id,
		    .nreceivers = 1,
		    .name = s->name,
		    .name_len = s->name_len,
		    .error = refusal_get(code)->errcode,
		};
		monitor_emit(b, &ev);
	}
	return ret;
}

int router_handle_send(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_send s;
	struct name_owner *o;
	struct peer *to;
	struct msgbuf *body;
	size_t body_len;
	int ret;

	if (lbus_wire_send_decode(f->body, f->body_len, &s) < 0)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable send");
	if (lbus_name_validate(s.name, s.name_len) < 0)
		return NAME_E_INVALID;
	if (c->foreign && access_denied(c, f, POLICY_SEND, POLICY_NAME, s.name, s.name_len, &ret))
		return ret;
	o = names_lookup(&b->names, s.name, s.name_len);
	if (!o)
		return send_refuse(c, f, &s, NAME_E_NO_SUCH_NAME);
	to = container_of(o, struct peer, names);
	body_len = lbus_wire_deliver_body_size(f->body_len, c->sender_len, 0);
	if (!deliver_fits(to, body_len))
		return send_refuse(c, f, &s, ROUTER_E_TOO_LARGE);
	if (!conn_make_room(&to->conn, body_len + OUTQ_HDR_MAX + fds_cost(c))) {
		peer_wait_on(c, to, 0);
		return PEER_BLOCKED;
	}
	peer_count_in(c);
	body = encode_body(b, LBUS_D_SEND, f->body, f->body_len, c, false);
	if (!body)
		return -ENOMEM;
	if (deliver_one(b, to, NULL, body) && b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
		    .kind = LBUS__MONITOR_KIND__MON_SEND,
		    .sender = c->sender,
		    .sender_len = c->sender_len,
		    .receivers = &to->id,
		    .nreceivers = 1,
		    .name = s.name,
		    .name_len = s.name_len,
		    .payload = s.payload,
		    .payload_len = s.payload_len,
		};
		monitor_note_fds(&ev, c->frame_fds);
		monitor_emit(b, &ev);
	}
	msgbuf_unref(body);
	return f->req_id ? answer_ok(c, f, 0) : 0;
}

int router_publish_internal(struct broker *b, const char *topic, size_t topic_len, const void *payload,
			    size_t payload_len)
{
	struct lbus_wire_publish p = {
	    .topic = topic, .topic_len = topic_len, .payload = payload, .payload_len = payload_len};
	size_t frame_size = lbus_wire_publish_frame_size(topic_len, payload_len, false, 0);
	struct msgbuf *pub = msgbuf_new(&b->pool, frame_size);
	struct lbus_wire_frame f;
	struct route *rt = NULL;
	int ret = -ENOMEM;

	if (!pub)
		return -ENOMEM;
	pub->len = (uint32_t)lbus_wire_publish_frame_encode(pub->data, topic, topic_len, payload, payload_len,
							    false, 0);
	if (lbus_wire_frame_scan(pub->data + LBUS_FRAME_HEADER, pub->len - LBUS_FRAME_HEADER, &f) == 0)
		rt = routes_get(&b->routes, &b->subs, topic, topic_len);
	if (rt) {
		ret = router_pick_groups(b, rt, lbus_wire_deliver_body_size(f.body_len, 0, 0) + OUTQ_HDR_MAX);
		if (ret == 0)
			ret = router_publish(b, NULL, rt, f.body, f.body_len, &p, DELIVER_NEVER_WAIT);
	}
	route_unref(rt);
	msgbuf_unref(pub);
	return ret;
}
