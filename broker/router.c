/* SPDX-License-Identifier: MIT */
/*
 * Routing and flow control: the data path of lbusd.
 *
 * The path of a publish
 * ---------------------
 * 1. A readable publisher borrows the broker's one 256 KiB scratch buffer
 *    and reads one chunk (client.c). Every complete frame in it is handled
 *    before the loop returns to epoll; one chunk per wakeup keeps clients
 *    fair. What is left (a partial frame) is copied to a buffer of the
 *    client's own, sized to it, and the scratch goes back: however many
 *    clients read in a turn, there is one read buffer.
 * 2. lbus_wire_frame_scan() finds the kind and req_id without allocating
 *    (the usual layout, kind first, is taken without the generic field
 *    loop); dispatch.c calls router_handle_publish(), which decodes the
 *    Publish with lbus_wire_publish_decode() (one pass over the layout every
 *    encoder writes; pointers into the buffer, no copy), checks the topic,
 *    and asks the trie for the matching subscriptions (router_targets(),
 *    cached per publisher); when queue groups exist, router_pick_groups()
 *    then keeps one member per group (groups.c: round-robin, skipping full
 *    queues).
 * 3. Flow control first, so a message is routed all-or-nothing: if any
 *    block-policy target (or, for a send, the name's owner) cannot take the
 *    message even after trying to write its queue now, the publisher waits:
 *    the frame is put back in its input buffer, its EPOLLIN is switched off
 *    and it is linked on the target's waiter list (client_wait_on()).
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
 *    completely (router_flush_dropped()), so nothing is lost silently and a subscriber
 *    learns of drops at the end of a burst too. A publish flagged retain also
 *    hands a reference to the body to the retained store (retained.c); when
 *    monitors exist, one MonitorEvent naming the clients that got the message
 *    is queued to them (monitor.c). Groups, retain and monitors cost one test
 *    each when unused. Small control frames (Ok, Error, Dropped) are packed
 *    straight into the chunk as well.
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
#include "client.h"
#include "dispatch.h"
#include "monitor.h"
#include "lbus-limits.h"
#include "topic.h"
#include "subscription.h"

int router_init(struct router *r, struct msgpool *pool)
{
	r->n = 0;
	r->cap = 64;
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
	free(r->recv);
	r->recv = NULL;
	r->nrecv = r->caprecv = 0;
}

/* Remember that client id got the message (for monitors); a failure to grow
 * only shortens the list. */
static void note_receiver(struct router *r, uint64_t id)
{
	if (r->nrecv == r->caprecv) {
		size_t cap = r->caprecv ? 2 * r->caprecv : 64;
		uint64_t *recv = realloc(r->recv, cap * sizeof(*recv));
		if (!recv)
			return;
		r->recv = recv;
		r->caprecv = cap;
	}
	r->recv[r->nrecv++] = id;
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

/* When a block subscription with stall_ms starts dropping (its client has
 * taken nothing since progress_ms); 0 for a plain block one (never). */
static int64_t stall_at(const struct sub *s)
{
	return s->stall_ms ? s->client->progress_ms + s->stall_ms : 0;
}

/* Does s lose a message that its client's full queue cannot take? With
 * drop, always; with block only once the client has stalled (stall_ms). */
static bool sub_drops_when_full(const struct sub *s)
{
	return s->policy == LBUS__POLICY__POLICY_DROP || (s->stall_ms && broker_now_ms() >= stall_at(s));
}

/* How a full group member ranks against the others that are full (lower
 * wins): by the bytes it has queued, except that one which would lose the
 * message (drop policy, or a stalled block one) comes after every one that
 * would only make the publisher wait. */
static size_t group_rank(const struct sub *s, bool full)
{
	return full && sub_drops_when_full(s) ? SIZE_MAX : s->client->outq.bytes;
}

void router_pick_groups(struct broker *b, size_t frame_len)
{
	struct router *r = &b->router;
	struct group_member *w;
	size_t k = 0;

	if (!groups_count(&b->groups))
		return;
	groups_begin(&b->groups);
	for (size_t i = 0; i < r->n; i++) {
		struct sub *s = r->subs[i];
		bool full = s->member.group && client_queue_full(s->client, frame_len);

		if (!s->member.group)
			r->subs[k++] = s;
		else
			groups_offer(&b->groups, &s->member, full, group_rank(s, full));
	}
	while ((w = groups_next_winner(&b->groups)))
		r->subs[k++] = container_of(w, struct sub, member);
	r->n = k;
}

struct client *router_block_target(struct broker *b, size_t frame_len, int64_t *recheck_ms)
{
	*recheck_ms = 0;
	for (size_t i = 0; i < b->router.n; i++) {
		struct sub *s = b->router.subs[i];
		struct client *to = s->client;

		if (s->policy != LBUS__POLICY__POLICY_BLOCK || to->state == CLIENT_CLOSED ||
		    !client_queue_full(to, frame_len))
			continue;
		client_write_now(to);
		if (to->state == CLIENT_CLOSED || !client_queue_full(to, frame_len))
			continue;
		if (!s->stall_ms || broker_now_ms() < stall_at(s)) {
			*recheck_ms = stall_at(s);
			return to;
		}
	}
	return NULL;
}


bool router_fits(const struct client *to, size_t body_len)
{
	return body_len + OUTQ_HDR_MAX <= (size_t)to->max_frame + ROUTER_DELIVER_SLACK;
}

static void queue_dropped(struct client *to, struct sub *s)
{
	Lbus__Dropped d = LBUS__DROPPED__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	d.sub_id = s->id;
	d.count = s->dropped;
	f.kind_case = LBUS__FRAME__KIND_DROPPED;
	f.dropped = &d;
	if (client_queue_frame(to, &f) == 0)
		s->dropped = 0;
}

static void count_drop(struct broker *b, struct client *to, struct sub *s)
{
	if (s) {
		s->dropped++;
		s->dropped_total++;
	}
	to->ctr.dropped++;
	to->drops_pending = true;
	b->ctr.dropped++;
}

void router_flush_dropped(struct client *c)
{
	struct list *l;

	c->drops_pending = false;
	for (l = c->subs.next; l != &c->subs; l = l->next) {
		struct sub *s = container_of(l, struct sub, client_link);
		if (s->dropped)
			queue_dropped(c, s);
	}
}

/* How a body is delivered. */
enum deliver_flags {
	DELIVER_RETAINED = 1, /* a retained message for a new subscription */
	DELIVER_ALONE = 2,    /* the message's only recipient */
};

/*
 * Copy the body into the recipient's queue, or share it? Small bodies are
 * always copied; a body up to OUTQ_COPY_ALONE_MAX too when nobody else gets
 * it (its buffer is then reused at once, and the queue holds only bytes).
 */
static bool copy_body(size_t len, unsigned flags)
{
	return len <= OUTQ_COPY_MAX || ((flags & DELIVER_ALONE) && len <= OUTQ_COPY_ALONE_MAX);
}

/* Queue a Deliver of body for sub_id, its header hlen bytes: copied right
 * after the header into the queue's chunk, or referenced. 0 or -ENOMEM. */
static int queue_deliver(struct client *to, uint64_t sub_id, struct msgbuf *body, size_t hlen, unsigned flags)
{
	bool retained = flags & DELIVER_RETAINED;
	uint8_t hdr[OUTQ_HDR_MAX], *p;

	if (!copy_body(body->len, flags)) {
		lbus_wire_deliver_header(hdr, sub_id, retained, body->len);
		return client_queue(to, msgbuf_ref(body), hdr, hlen);
	}
	p = client_queue_reserve(to, hlen + body->len);
	if (!p)
		return -ENOMEM;
	lbus_wire_deliver_header(p, sub_id, retained, body->len);
	memcpy(p + hlen, body->data, body->len);
	return 0;
}

static bool deliver(struct broker *b, struct client *to, struct sub *s, struct msgbuf *body, unsigned flags)
{
	uint64_t sub_id = s ? s->id : 0;
	size_t hlen;

	if (to->state != CLIENT_READY || (s && s->expired))
		return false;
	hlen = lbus_wire_deliver_header_size(sub_id, flags & DELIVER_RETAINED, body->len);
	if (!router_fits(to, body->len)) {
		count_drop(b, to, s);
		return false;
	}
	if (s && client_queue_full(to, hlen + body->len) && sub_drops_when_full(s)) {
		count_drop(b, to, s);
		return false;
	}
	if (s && s->dropped)
		queue_dropped(to, s);
	if (queue_deliver(to, sub_id, body, hlen, flags) < 0) {
		count_drop(b, to, s);
		return false;
	}
	to->ctr.msgs_out++;
	b->ctr.msgs_out++;
	if (s && s->max_msgs && ++s->delivered == s->max_msgs)
		sub_expire(s); /* its last one: route the next message without it */
	return true;
}

bool router_deliver_one(struct broker *b, struct client *to, struct sub *s, struct msgbuf *body)
{
	return deliver(b, to, s, body, DELIVER_ALONE);
}

void router_deliver_retained(struct broker *b, struct sub *s, struct msgbuf *body)
{
	deliver(b, s->client, s, body, DELIVER_RETAINED | DELIVER_ALONE);
}

void router_deliver(struct broker *b, struct msgbuf *body)
{
	struct router *r = &b->router;
	unsigned flags = r->n == 1 ? DELIVER_ALONE : 0;

	r->nrecv = 0;
	if (!b->monitors.count) {
		for (size_t i = 0; i < r->n; i++)
			deliver(b, r->subs[i]->client, r->subs[i], body, flags);
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		if (deliver(b, r->subs[i]->client, r->subs[i], body, flags))
			note_receiver(r, r->subs[i]->client->id);
}

/* One MonitorEvent for a routed publish (c NULL: the broker's own). */
static void monitor_publish(struct broker *b, const struct client *c, const struct lbus_wire_publish *p)
{
	struct lbus_wire_monitor_event ev = {
		.kind = LBUS__MONITOR_KIND__MON_PUBLISH, .sender = c ? c->sender : NULL,
		.sender_len = c ? c->sender_len : 0, .receivers = b->router.recv, .nreceivers = b->router.nrecv,
		.topic = p->topic, .topic_len = p->topic_len, .payload = p->payload,
		.payload_len = p->payload_len, .retain = p->retain,
	};

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

/* Encode the shared Deliver body; NULL on ENOMEM. */
static struct msgbuf *encode_body(struct broker *b, uint32_t what, const uint8_t *msg, size_t msg_len,
				  const uint8_t *sender, size_t sender_len, bool kept)
{
	struct msgbuf *m = body_buffer(b, lbus_wire_deliver_body_size(msg_len, sender_len, 0), kept);

	if (m)
		m->len = (uint32_t)lbus_wire_deliver_body_encode(m->data, what, msg, msg_len, sender, sender_len, 0);
	return m;
}

/*
 * Per-publisher route cache: publishers usually repeat one topic, so the
 * last valid topic and its targets are kept and reused while the trie's
 * generation is unchanged (any subscribe, unsubscribe or disconnect bumps
 * it, so cached pointers never outlive their subscriptions).
 */
struct route_cache {
	uint64_t gen;
	size_t n, cap;
	struct sub **subs;
	size_t topic_len;
	char topic[ROUTE_CACHE_TOPIC_MAX];
};

/* On a hit, load the cached targets into b->router and return true. */
static bool route_cache_get(struct client *c, const char *topic, size_t len)
{
	struct route_cache *rc = c->route_cache;
	struct router *r = &c->broker->router;

	if (!rc || rc->gen != c->broker->subs.gen || rc->topic_len != len || memcmp(rc->topic, topic, len) ||
	    rc->n > r->cap)
		return false;
	if (rc->n)
		memcpy(r->subs, rc->subs, rc->n * sizeof(*r->subs));
	r->n = rc->n;
	return true;
}

/* Remember b->router's targets for this (valid, unreserved) topic. */
static void route_cache_put(struct client *c, const char *topic, size_t len)
{
	struct router *r = &c->broker->router;
	struct route_cache *rc = c->route_cache;

	if (len > ROUTE_CACHE_TOPIC_MAX)
		return;
	if (!rc && !(rc = c->route_cache = calloc(1, sizeof(*rc))))
		return;
	rc->gen = 0;
	if (r->n > rc->cap) {
		struct sub **subs = realloc(rc->subs, r->n * sizeof(*subs));
		if (!subs)
			return;
		rc->subs = subs;
		rc->cap = r->n;
	}
	if (r->n)
		memcpy(rc->subs, r->subs, r->n * sizeof(*rc->subs));
	rc->n = r->n;
	memcpy(rc->topic, topic, len);
	rc->topic_len = len;
	rc->gen = c->broker->subs.gen;
}

void router_cache_free(struct client *c)
{
	if (c->route_cache) {
		free(c->route_cache->subs);
		free(c->route_cache);
		c->route_cache = NULL;
	}
}

static void count_in(struct client *c)
{
	c->ctr.msgs_in++;
	c->broker->ctr.msgs_in++;
}

/* Keep (body) or clear (NULL) the topic's retained message. 0 or an
 * ErrorCode for the publisher. */
static uint32_t router_retain(struct broker *b, const struct lbus_wire_publish *p, struct msgbuf *body)
{
	int ret;

	if (!body) {
		retained_clear(&b->retained, p->topic, p->topic_len);
		return 0;
	}
	ret = retained_put(&b->retained, p->topic, p->topic_len, body);
	if (ret == -ENOSPC)
		return LBUS__ERROR_CODE__ERR_LIMIT;
	return ret < 0 ? LBUS__ERROR_CODE__ERR_INTERNAL : 0;
}

/* Deliver a publish to b->router's targets and apply its retain flag. 0 or
 * an ErrorCode for the publisher (ERR_LIMIT: delivered, not retained). */
static uint32_t router_publish(struct client *c, const struct lbus_wire_frame *f, const struct lbus_wire_publish *p)
{
	struct broker *b = c->broker;
	bool keep = p->retain && p->payload_len;
	struct msgbuf *body = NULL;
	uint32_t code = 0;

	b->router.nrecv = 0;
	if (b->router.n || keep) {
		body = encode_body(b, LBUS_D_PUBLISH, f->body, f->body_len, c->sender, c->sender_len, keep);
		if (!body)
			return LBUS__ERROR_CODE__ERR_INTERNAL;
		router_deliver(b, body);
	}
	if (p->retain)
		code = router_retain(b, p, keep ? body : NULL);
	msgbuf_unref(body);
	if (b->monitors.count)
		monitor_publish(b, c, p);
	return code;
}

int router_handle_publish(struct client *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_publish p;
	struct client *full;
	int64_t recheck_ms;
	size_t body_len;
	uint32_t code;

	if (lbus_wire_publish_decode(f->body, f->body_len, &p) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable publish");
	if (!route_cache_get(c, p.topic, p.topic_len)) {
		if (lbus_topic_validate(p.topic, p.topic_len) < 0)
			return client_send_error(c, f, LBUS__ERROR_CODE__ERR_INVALID, "invalid topic"), 0;
		if (lbus_topic_is_reserved(p.topic, p.topic_len))
			return client_send_error(c, f, LBUS__ERROR_CODE__ERR_DENIED,
						 "topics starting with $ are reserved"),
			       0;
		if (router_targets(b, p.topic, p.topic_len) < 0)
			return client_send_error(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory"), 0;
		route_cache_put(c, p.topic, p.topic_len);
	}
	body_len = lbus_wire_deliver_body_size(f->body_len, c->sender_len, 0);
	router_pick_groups(b, body_len + OUTQ_HDR_MAX);
	full = router_block_target(b, body_len + OUTQ_HDR_MAX, &recheck_ms);
	if (full) {
		client_wait_on(c, full, recheck_ms);
		return CLIENT_BLOCKED;
	}
	count_in(c);
	code = router_publish(c, f, &p);
	if (code == LBUS__ERROR_CODE__ERR_LIMIT)
		client_send_error(c, f, code, "retained store full (retained_max): delivered, not retained");
	else if (code)
		client_send_error(c, f, code, "out of memory");
	else if (f->req_id)
		client_send_ok(c, f, 0);
	return 0;
}

/* Refuse a send to a valid name: an Error for the sender and, for monitors,
 * a MON_ERROR event naming the target, from the broker to the sender (no
 * payload: in an error event the payload is a responder's reason). */
static int send_refuse(struct client *c, const struct lbus_wire_frame *f, const struct lbus_wire_send *s,
		       uint32_t code, const char *reason)
{
	struct broker *b = c->broker;

	client_send_error(c, f, code, reason);
	if (b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
			.kind = LBUS__MONITOR_KIND__MON_ERROR, .receivers = &c->id, .nreceivers = 1,
			.name = s->name, .name_len = s->name_len, .error = code,
		};
		monitor_emit(b, &ev);
	}
	return 0;
}

int router_handle_send(struct client *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_send s;
	struct name_owner *o;
	struct client *to;
	struct msgbuf *body;
	size_t body_len;

	if (lbus_wire_send_decode(f->body, f->body_len, &s) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable send");
	if (lbus_name_validate(s.name, s.name_len) < 0)
		return client_send_error(c, f, LBUS__ERROR_CODE__ERR_INVALID, "invalid name"), 0;
	o = names_lookup(&b->names, s.name, s.name_len);
	if (!o)
		return send_refuse(c, f, &s, LBUS__ERROR_CODE__ERR_NO_SUCH_NAME, "no such name");
	to = container_of(o, struct client, names);
	body_len = lbus_wire_deliver_body_size(f->body_len, c->sender_len, 0);
	if (!router_fits(to, body_len))
		return send_refuse(c, f, &s, LBUS__ERROR_CODE__ERR_INVALID, "message too large for the receiver");
	if (client_queue_full(to, body_len + OUTQ_HDR_MAX)) {
		client_write_now(to);
		if (to->state != CLIENT_CLOSED && client_queue_full(to, body_len + OUTQ_HDR_MAX)) {
			client_wait_on(c, to, 0);
			return CLIENT_BLOCKED;
		}
	}
	count_in(c);
	body = encode_body(b, LBUS_D_SEND, f->body, f->body_len, c->sender, c->sender_len, false);
	if (!body)
		return client_send_error(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory"), 0;
	if (router_deliver_one(b, to, NULL, body) && b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
			.kind = LBUS__MONITOR_KIND__MON_SEND, .sender = c->sender, .sender_len = c->sender_len,
			.receivers = &to->id, .nreceivers = 1, .name = s.name, .name_len = s.name_len,
			.payload = s.payload, .payload_len = s.payload_len,
		};
		monitor_emit(b, &ev);
	}
	msgbuf_unref(body);
	if (f->req_id)
		client_send_ok(c, f, 0);
	return 0;
}

int router_publish_internal(struct broker *b, const char *topic, size_t topic_len, const void *payload,
			    size_t payload_len)
{
	size_t frame_size = lbus_wire_publish_frame_size(topic_len, payload_len, false, 0);
	struct msgbuf *pub = msgbuf_new(&b->pool, frame_size), *body = NULL;
	struct lbus_wire_frame f;
	int ret = -ENOMEM;

	if (!pub)
		return -ENOMEM;
	pub->len = (uint32_t)lbus_wire_publish_frame_encode(pub->data, topic, topic_len, payload, payload_len, false, 0);
	if (lbus_wire_frame_scan(pub->data + LBUS_FRAME_HEADER, pub->len - LBUS_FRAME_HEADER, &f) == 0 &&
	    router_targets(b, topic, topic_len) == 0) {
		body = encode_body(b, LBUS_D_PUBLISH, f.body, f.body_len, NULL, 0, false);
		ret = body ? 0 : -ENOMEM;
	}
	if (body) {
		router_pick_groups(b, body->len + OUTQ_HDR_MAX);
		b->router.nrecv = 0;
		for (size_t i = 0; i < b->router.n; i++) {
			struct sub *s = b->router.subs[i];
			if (s->policy == LBUS__POLICY__POLICY_BLOCK && client_queue_full(s->client, body->len + OUTQ_HDR_MAX))
				count_drop(b, s->client, s);
			else if (deliver(b, s->client, s, body, 0) && b->monitors.count)
				note_receiver(&b->router, s->client->id);
		}
		if (b->monitors.count) {
			struct lbus_wire_publish p = { .topic = topic, .topic_len = topic_len, .payload = payload,
						       .payload_len = payload_len };
			monitor_publish(b, NULL, &p);
		}
	}
	msgbuf_unref(body);
	msgbuf_unref(pub);
	return ret;
}
