/* SPDX-License-Identifier: MIT */
/*
 * Publish, subscriptions and deliveries: the hot path.
 *
 * lbus_publish() encodes the frame with wire.h straight into the output
 * buffer (no allocation, no protobuf-c; the last valid topic is cached so a
 * publish loop does not validate the same topic again) and hands it to
 * io_out_commit(): written at once outside callbacks, gathered inside them
 * or with LBUS_MORE. lbus_subscribe() waits for the broker's Ok within the
 * connection's timeout; lbus_subscribe_async() registers the same request
 * with a completion (req.c) and forgets the subscription if it fails. Subscriptions live
 * in a hash map keyed by the client-chosen sub_id, so a delivery finds its
 * callback in O(1). A Deliver is decoded with the allocation-free decoders of wire.h;
 * the topic (or name) and the sender's name are copied into stack buffers
 * to NUL-terminate them (the protocol bounds both), and the payload is handed
 * to the callback where it lies in the receive buffer.
 *
 * Drop notices (Dropped{sub_id, count}) go to the lbus_on_dropped() handler
 * at once if one is set; otherwise they add to the subscription's missed
 * count, reported in msg->missed of its next delivery and then reset.
 *
 * Routing of a delivery: a call goes to its responder subscription's
 * callback (sub_id of a subscription made with opts->responder), else to
 * the lbus_on_call() handler; a call nobody here handles (a name owner
 * without a call handler, e.g. `lbus listen`) is answered at once with
 * ERR_NO_RESPONDERS, so its caller fails fast instead of timing out.
 * Publishes go to their subscription's callback and sends to the
 * lbus_on_message() handler. Deliveries for a subscription already
 * cancelled are ignored; a call to it goes to the lbus_on_call() handler,
 * or is refused without one.
 *
 * Unsubscribing waits for the broker's Ok; deliveries that arrive meanwhile
 * were queued before the broker processed it and still run the callback
 * (nothing routed to a queue-group member is lost), except when a callback
 * of that same subscription cancels it (bus->running records which
 * subscription callbacks are on the stack): then they are discarded.
 *
 * A subscription with max_msgs counts its deliveries down; the broker
 * removes it after the last one, so the library forgets it once that
 * callback has returned (lbus_unsubscribe() then answers -ENOENT without
 * asking the broker). If an unsubscribe is waiting meanwhile, it is left to
 * free it, and succeeds although the broker no longer knew the sub_id.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client-internal.h"
#include "lbus-limits.h"
#include "wire.h"
#include "topic.h"

/* Validate a topic for publishing; the last valid one is remembered, so a
 * loop publishing on one topic validates it once. */
static int publish_topic_check(struct lbus *bus, const char *topic, size_t tlen)
{
	if (bus->pub_topic && tlen == bus->pub_topic_len && !memcmp(topic, bus->pub_topic, tlen))
		return 0;
	if (lbus_topic_validate(topic, tlen) < 0)
		return -EINVAL;
	if (lbus_topic_is_reserved(topic, tlen))
		return -EACCES;
	char *copy = malloc(tlen + 1);
	if (copy) {
		memcpy(copy, topic, tlen + 1);
		free(bus->pub_topic);
		bus->pub_topic = copy;
		bus->pub_topic_len = tlen;
	}
	return 0;
}

static int publish_frame(lbus *bus, const char *topic, const void *data, size_t len, unsigned flags);

int lbus_publish(lbus *bus, const char *topic, const void *data, size_t len, unsigned flags)
{
	if (memfd_wants(bus, len)) /* through io_out_frame(), which offloads it */
		return lbus_publish_fds(bus, topic, data, len, flags, NULL, 0);
	if (!topic || (!data && len) || (flags & ~(LBUS_RETAIN | LBUS_MORE)))
		return -EINVAL;
	size_t tlen = strlen(topic);
	int r = publish_topic_check(bus, topic, tlen);
	if (r < 0)
		return r;
	if (bus->dead && rc_recoverable(bus))
		rc_lost(bus);
	if (bus->dead)
		return bus->dead;
	bool retain = flags & LBUS_RETAIN;
	size_t size = lbus_wire_publish_frame_size(tlen, len, retain, 0);
	if (size - LBUS_FRAME_HEADER > bus->max_frame)
		return -EMSGSIZE;
	uint8_t *p = io_out_reserve(bus, size);
	if (!p)
		return -ENOMEM;
	lbus_wire_publish_frame_encode(p, topic, tlen, data, len, retain, 0);
	return io_out_commit(bus, size, flags & LBUS_MORE);
}

int lbus_publish_fds(lbus *bus, const char *topic, const void *data, size_t len, unsigned flags,
		     const int *fds, size_t nfds)
{
	if (!nfds && !memfd_wants(bus, len))
		return lbus_publish(bus, topic, data, len, flags);
	int r = io_attach_prepare(bus, fds, nfds);
	if (r < 0)
		return r;
	r = publish_frame(bus, topic, data, len, flags);
	io_attach_cancel(bus); /* left over when the frame was not queued */
	return r;
}

/* A publish through io_out_frame(), with the prepared descriptors. */
static int publish_frame(lbus *bus, const char *topic, const void *data, size_t len, unsigned flags)
{
	Lbus__Publish p = LBUS__PUBLISH__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	if (!topic || (!data && len) || (flags & ~(LBUS_RETAIN | LBUS_MORE)))
		return -EINVAL;
	int r = publish_topic_check(bus, topic, strlen(topic));
	if (r < 0)
		return r;
	p.topic = (char *)topic;
	p.payload.data = (uint8_t *)data;
	p.payload.len = len;
	p.retain = flags & LBUS_RETAIN;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &p;
	return io_out_frame(bus, &f);
}

/* The caller's options, reading only what its size covers (a program built
 * against an older lbus.h passes a smaller struct); NULL: the defaults. */
static int sub_opts_read(const struct lbus_sub_opts *in, struct lbus_sub_opts *out)
{
	struct lbus_sub_opts defaults = LBUS_SUB_OPTS_INIT;
	*out = defaults;
	if (!in)
		return 0;
	if (in->size < sizeof(in->size))
		return -EINVAL;
	memcpy(out, in, in->size < sizeof(*out) ? in->size : sizeof(*out));
	return 0;
}

static int sub_check(const char *pattern, const struct lbus_sub_opts *opts)
{
	if (!pattern || lbus_pattern_validate(pattern, strlen(pattern)) < 0)
		return -EINVAL;
	if (opts->group && *opts->group && lbus_group_validate(opts->group, strlen(opts->group)) < 0)
		return -EINVAL;
	if (opts->policy != LBUS_POLICY_DROP && opts->policy != LBUS_POLICY_BLOCK)
		return -EINVAL;
	return 0;
}

/* Register a new subscription and encode its Subscribe request into *f
 * (pointing at *sub). 0 or -errno. */
static int sub_start(struct lbus *bus, const char *pattern, lbus_msg_fn fn, void *userdata,
		     const struct lbus_sub_opts *opts, Lbus__Subscribe *sub, Lbus__Frame *f)
{
	if (!fn || sub_check(pattern, opts) < 0)
		return -EINVAL;
	if (bus->dead)
		return bus->dead;
	struct sub *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->id = ++bus->next_sub_id;
	s->fn = fn;
	s->userdata = userdata;
	s->responder = opts->responder;
	s->left = opts->max_msgs;
	s->block = opts->policy == LBUS_POLICY_BLOCK;
	s->stall_ms = s->block ? opts->stall_ms : 0;
	if (bus->rc.enabled) { /* to subscribe again after a reconnection */
		s->pattern = strdup(pattern);
		s->group = strdup(opts->group ? opts->group : "");
	}
	int r = -ENOMEM;
	if (!bus->rc.enabled || (s->pattern && s->group))
		r = idmap_put(&bus->subs, s->id, s);
	if (r < 0) {
		sub_free(s);
		return r;
	}
	sub->sub_id = s->id;
	sub->pattern = (char *)pattern;
	sub->group = (char *)(opts->group ? opts->group : "");
	sub->policy =
	    opts->policy == LBUS_POLICY_BLOCK ? LBUS__POLICY__POLICY_BLOCK : LBUS__POLICY__POLICY_DROP;
	sub->responder = s->responder;
	sub->max_msgs = opts->max_msgs;
	sub->stall_ms = opts->policy == LBUS_POLICY_BLOCK ? opts->stall_ms : 0;
	f->kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f->subscribe = sub;
	return 0;
}

void sub_free(struct sub *s)
{
	if (!s)
		return;
	free(s->pattern);
	free(s->group);
	free(s);
}

void sub_forget(struct lbus *bus, uint64_t sub_id)
{
	sub_free(idmap_del(&bus->subs, sub_id));
}

int lbus_subscribe(lbus *bus, const char *pattern, lbus_msg_fn fn, void *userdata,
		   const struct lbus_sub_opts *in_opts, uint64_t *sub_id)
{
	struct lbus_sub_opts opts;
	Lbus__Subscribe sub = LBUS__SUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	int r = sub_opts_read(in_opts, &opts);
	if (r == 0)
		r = sub_start(bus, pattern, fn, userdata, &opts, &sub, &f);
	if (r < 0)
		return r;
	r = req_simple(bus, &f, NULL);
	if (r < 0) {
		/* A callback may already have cancelled it while we waited. */
		sub_forget(bus, sub.sub_id);
		return r;
	}
	if (sub_id)
		*sub_id = sub.sub_id;
	return 0;
}

int lbus_subscribe_async(lbus *bus, const char *pattern, lbus_msg_fn fn, void *userdata,
			 const struct lbus_sub_opts *in_opts, uint64_t *sub_id, lbus_done_fn done,
			 void *done_userdata)
{
	struct lbus_sub_opts opts;
	Lbus__Subscribe sub = LBUS__SUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	if (!done)
		return -EINVAL;
	int r = sub_opts_read(in_opts, &opts);
	if (r == 0)
		r = sub_start(bus, pattern, fn, userdata, &opts, &sub, &f);
	if (r < 0)
		return r;
	r = req_async(bus, &f, sub.sub_id, done, done_userdata);
	if (r < 0) {
		sub_forget(bus, sub.sub_id);
		return r;
	}
	if (sub_id)
		*sub_id = sub.sub_id;
	return 0;
}

int lbus_unsubscribe(lbus *bus, uint64_t sub_id)
{
	return lbus_unsubscribe_timeout(bus, sub_id, bus->timeout_ms);
}

int lbus_unsubscribe_timeout(lbus *bus, uint64_t sub_id, int timeout_ms)
{
	struct sub *s = idmap_get(&bus->subs, sub_id);
	if (!s || s->cancelling)
		return -ENOENT;
	/* Deliveries queued to it before the broker processes the unsubscribe
	 * still arrive (and run the callback) until the Ok: in a queue group
	 * nobody else receives them. Unless its own callback is cancelling it:
	 * then it has had its last message. */
	s->cancelling = true;
	for (const struct sub_running *r = bus->running; r; r = r->up)
		if (r->sub_id == s->id)
			s->discard = true;
	Lbus__Unsubscribe unsub = LBUS__UNSUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	unsub.sub_id = sub_id;
	f.kind_case = LBUS__FRAME__KIND_UNSUBSCRIBE;
	f.unsubscribe = &unsub;
	struct req req = {0};
	int r = req_call(bus, &req, LBUS_K_OK, &f, io_deadline(timeout_ms));
	s = idmap_del(&bus->subs, sub_id);
	if (r == -EINVAL && s && s->expired)
		r = 0; /* the broker removed it after its last message meanwhile */
	sub_free(s);
	return r == -EINVAL ? -ENOENT : r;
}

void sub_deinit_all(struct lbus *bus)
{
	for (size_t i = 0; i < bus->subs.cap; i++)
		if (bus->subs.slots[i].key)
			sub_free(bus->subs.slots[i].value);
	idmap_deinit(&bus->subs);
	free(bus->pub_topic);
	bus->pub_topic = NULL;
}

/* NUL-terminated copy of a wire string into dst[cap]; -EPROTO if too long. */
static int copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return -EPROTO;
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* Decode the message a Deliver carries into msg (topic copied into topic). */
static int deliver_decode_msg(const struct lbus_wire_deliver *d, struct lbus_msg *msg, char *topic,
			      size_t cap, bool *memfd)
{
	const char *s;
	size_t slen;
	*memfd = false;
	if (d->what == LBUS_D_PUBLISH) {
		struct lbus_wire_publish p;
		if (lbus_wire_publish_decode(d->msg, d->msg_len, &p) < 0)
			return -EPROTO;
		msg->kind = LBUS_MSG_PUBLISH;
		s = p.topic, slen = p.topic_len;
		msg->data = p.payload, msg->len = p.payload_len;
		msg->retain = p.retain;
		*memfd = p.payload_memfd;
	} else if (d->what == LBUS_D_SEND) {
		struct lbus_wire_send sd;
		if (lbus_wire_send_decode(d->msg, d->msg_len, &sd) < 0)
			return -EPROTO;
		msg->kind = LBUS_MSG_SEND;
		s = sd.name, slen = sd.name_len;
		msg->data = sd.payload, msg->len = sd.payload_len;
		*memfd = sd.payload_memfd;
	} else {
		struct lbus_wire_call c;
		if (lbus_wire_call_decode(d->msg, d->msg_len, &c) < 0)
			return -EPROTO;
		msg->kind = LBUS_MSG_CALL;
		msg->reply_token = d->call_token;
		msg->deadline_ms = io_now_ms() + (c.timeout_ms ? c.timeout_ms : LBUS_DEFAULT_CALL_TIMEOUT_MS);
		s = c.target, slen = c.target_len;
		msg->data = c.payload, msg->len = c.payload_len;
		*memfd = c.payload_memfd;
	}
	if (!msg->data)
		msg->data = ""; /* an empty payload: never NULL, so memcpy(dst, data, 0) is fine */
	return copy_str(topic, cap, s, slen);
}

/* Run a subscription's callback, recording on the stack that it runs. */
static void deliver_to_sub(struct lbus *bus, struct sub *s, const struct lbus_msg *msg)
{
	struct sub_running running = {.sub_id = s->id, .up = bus->running};
	bus->running = &running;
	s->fn(bus, msg, s->userdata);
	bus->running = running.up;
}

/* s (with max_msgs) is receiving its last message: the broker has removed
 * it. Returns true when the caller must free it after the callback. */
static bool sub_last(struct sub *s)
{
	if (!s || !s->left || --s->left)
		return false;
	s->expired = true;
	if (s->cancelling)
		return false; /* lbus_unsubscribe() frees it */
	s->cancelling = true; /* from now on lbus_unsubscribe() says -ENOENT */
	return true;
}

/* Hand a call to its handler: a responder subscription's callback, else the
 * lbus_on_call() handler; nobody: answer it with an error at once. */
static void deliver_call(struct lbus *bus, struct sub *s, struct lbus_msg *msg)
{
	if (s && s->responder && !s->discard)
		deliver_to_sub(bus, s, msg);
	else if (bus->call_fn)
		bus->call_fn(bus, msg, bus->call_ud);
	else
		call_reply_refuse(bus, msg);
}

bool sub_shed(struct lbus *bus, const uint8_t *body, uint32_t len)
{
	struct lbus_wire_frame f;
	struct lbus_wire_deliver d;
	if (lbus_wire_frame_scan(body, len, &f) < 0 || f.kind != LBUS_K_DELIVER ||
	    lbus_wire_deliver_decode(f.body, f.body_len, &d) < 0 || d.what != LBUS_D_PUBLISH || !d.sub_id)
		return false;
	struct sub *s = idmap_get(&bus->subs, d.sub_id);
	if (!s || s->left)
		return false; /* max_msgs counts deliveries: keep them */
	if (bus->dropped_fn) {
		s->shed++;
		bus->shed_pending = true;
	} else {
		s->missed++;
	}
	return true;
}

/* Report s's shed deliveries (older than anything still buffered for it). */
static void shed_report(struct lbus *bus, struct sub *s)
{
	uint64_t n = s->shed;
	s->shed = 0;
	if (n && bus->dropped_fn)
		bus->dropped_fn(bus, s->id, n, bus->dropped_ud);
	else
		s->missed += n;
}

void sub_report_shed(struct lbus *bus)
{
	bus->shed_pending = false;
	for (size_t i = 0; i < bus->subs.cap; i++) {
		struct sub *s = bus->subs.slots[i].value;
		if (bus->subs.slots[i].key && s->shed)
			shed_report(bus, s);
	}
}

/* Hand a decoded message to whoever receives it (see the top comment). */
static void deliver_route(struct lbus *bus, struct lbus_msg *msg)
{
	struct sub *s = msg->sub_id ? idmap_get(&bus->subs, msg->sub_id) : NULL;
	if (s && s->shed)
		shed_report(bus, s);
	bool last = sub_last(s);
	if (s) {
		msg->missed = s->missed;
		s->missed = 0;
	}
	if (msg->kind == LBUS_MSG_CALL)
		deliver_call(bus, s, msg);
	else if (s && !s->discard)
		deliver_to_sub(bus, s, msg);
	else if (!msg->sub_id && bus->msg_fn)
		bus->msg_fn(bus, msg, bus->msg_ud);
	if (last)
		sub_free(idmap_del(&bus->subs, msg->sub_id));
}

int sub_memfd_payload(struct lbus *bus, const void **data, size_t *len, const int **fds, size_t *nfds)
{
	if (!*nfds || memfd_map((*fds)[0], data, len) < 0) {
		req_async_error(bus, -EBADMSG, "a message's payload is not in a sealed memfd: not delivered");
		return -EBADMSG;
	}
	if (!bus->memfd_keep_fd) { /* the payload's memfd is the library's */
		(*fds)++;
		if (!--*nfds)
			*fds = NULL;
	}
	return 0;
}

int sub_on_deliver(struct lbus *bus, const struct lbus_wire_frame *f)
{
	struct lbus_wire_deliver d;
	char topic[LBUS_MAX_TOPIC_LEN + 1];
	char name[LBUS_MAX_NAME_LEN + 1];
	if (lbus_wire_deliver_decode(f->body, f->body_len, &d) < 0)
		return -EPROTO;
	if (d.what != LBUS_D_PUBLISH && d.what != LBUS_D_SEND && d.what != LBUS_D_CALL)
		return 0;
	struct lbus_msg msg = {
	    .topic = topic,
	    .sub_id = d.sub_id,
	    .retained = d.retained,
	    .sender =
		{
		    .id = d.sender.id,
		    .name = name,
		    .pid = (pid_t)d.sender.pid,
		    .uid = (uid_t)d.sender.uid,
		    .gid = (gid_t)d.sender.gid,
		},
	};
	bool memfd;
	if (deliver_decode_msg(&d, &msg, topic, sizeof(topic), &memfd) < 0 ||
	    copy_str(name, sizeof(name), d.sender.name, d.sender.name_len) < 0)
		return -EPROTO;
	if (bus->frame_fds && bus->frame_fds->n) {
		msg.fds = bus->frame_fds->fds;
		msg.nfds = bus->frame_fds->n;
	}
	if (memfd && sub_memfd_payload(bus, &msg.data, &msg.len, &msg.fds, &msg.nfds) < 0)
		return 0; /* refused: reported, its descriptors closed */
	deliver_route(bus, &msg);
	if (memfd)
		memfd_unmap(msg.data, msg.len);
	return 1;
}

int sub_on_dropped(struct lbus *bus, const struct lbus_wire_frame *f)
{
	struct lbus_wire_dropped d;
	if (lbus_wire_dropped_decode(f->body, f->body_len, &d) < 0)
		return -EPROTO;
	uint64_t sub_id = d.sub_id, count = d.count;
	struct sub *s = idmap_get(&bus->subs, sub_id);
	if (!s || !count)
		return 0;
	if (bus->dropped_fn)
		bus->dropped_fn(bus, sub_id, count, bus->dropped_ud);
	else
		s->missed += count;
	return 0;
}
