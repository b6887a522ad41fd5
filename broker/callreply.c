/* SPDX-License-Identifier: MIT */
/*
 * Request/reply in the broker: the Call and Reply handlers and the ways a
 * call ends without a reply. The table of pending calls is calls.c.
 *
 * A call (PROTOCOL.md, "Request / reply"):
 *  1. resolve the target: a name first; else, if it is a valid topic, one
 *     of the responder subscriptions (Subscribe.responder) matching it,
 *     round-robin (queue groups do not matter: a call always has exactly
 *     one responder; plain subscriptions never get calls); else, at once,
 *     CallResult{ERR_NO_RESPONDERS} (ERR_INVALID for a target that is
 *     neither a name nor a topic, ERR_DENIED for a '$' topic);
 *  2. flow control as for a send (block): when the responder's queue cannot
 *     take the call, the caller waits (PEER_BLOCKED) and is re-run later;
 *  0. a caller may have at most max_pending_calls_per_client calls pending
 *     (ERR_LIMIT), and their call_ids must differ (ERR_INVALID): the
 *     CallResult names the call by call_id alone;
 *  3. remember token -> (caller, call_id, responder, deadline) and queue
 *     Deliver{sub_id, call, sender, call_token} to the responder; its body
 *     is the Call exactly as the caller sent it.
 * A Reply whose token is pending and addressed to the replying client
 * becomes CallResult{call_id, payload, sender: responder} for the caller,
 * or, when the Reply carries an error (the responder failed, or takes no
 * calls), CallResult{call_id, error, reason, sender}
 * (again with block flow control, this time for the responder); any other
 * token is ignored, the caller already got its answer. A responder that
 * disconnects fails its calls with ERR_RESPONDER_GONE; a deadline that
 * passes fails the call with ERR_TIMEOUT (callreply_expire, driven by the
 * event loop's timeout).
 *
 * CallResult frames are encoded by proto/ (lbus_wire_result_frame_encode):
 * the reply payload is copied once, into a pooled buffer, and nothing else
 * is allocated.
 */
#include <errno.h>
#include <string.h>

#include "access.h"
#include "broker.h"
#include "clock.h"
#include "callreply.h"
#include "answer.h"
#include "peer.h"
#include "refusal.h"
#include "deliver.h"
#include "dispatch.h"
#include "monitor.h"
#include "lbus-limits.h"
#include "wire.h"
#include "topic.h"
#include "subscription.h"

/* The complete CallResult frame in a new buffer, with fds when r->fds,
 * or NULL on ENOMEM. */
static struct msgbuf *result_encode(struct broker *b, const struct lbus_wire_result *r, struct fdset *fds)
{
	struct msgbuf *m = msgbuf_new(&b->pool, lbus_wire_result_frame_size(r));

	if (!m)
		return NULL;
	m->len = (uint32_t)lbus_wire_result_frame_encode(m->data, r);
	if (r->fds)
		m->fds = fdset_ref(fds);
	return m;
}

/* Queue r (with fds when r->fds) to the caller, whatever its queue holds
 * (errors are small, and a reply's room was checked by the caller of
 * this). 0 or -ENOMEM. */
static int result_queue_fds(struct peer *caller, const struct lbus_wire_result *r, struct fdset *fds)
{
	struct msgbuf *m = result_encode(caller->broker, r, fds);

	if (!m || conn_queue(&caller->conn, m, NULL, 0) < 0)
		return -ENOMEM;
	peer_count_out(caller);
	if (r->error)
		peer_count_error(caller);
	return 0;
}

static int result_queue(struct peer *caller, const struct lbus_wire_result *r)
{
	return result_queue_fds(caller, r, NULL);
}

/* Set r's error and reason from a refusal code or a failure (-errno). */
static void result_set_error(struct lbus_wire_result *r, int code)
{
	struct refusal failure;
	const struct refusal *why;

	if (code > 0) {
		why = refusal_get(code);
	} else {
		failure = refusal_of_failure(code);
		why = &failure;
	}
	r->error = why->errcode;
	r->reason = why->reason;
	r->reason_len = strlen(r->reason);
}

/* Tell monitors that a call (token 0: never routed) failed for caller. */
static void monitor_call_error(struct broker *b, struct peer *caller, uint64_t token, uint32_t code,
			       const struct lbus_wire_call *call)
{
	struct lbus_wire_monitor_event ev = {
	    .kind = LBUS__MONITOR_KIND__MON_ERROR, .call_token = token, .error = code};

	if (!b->monitors.count)
		return;
	ev.receivers = &caller->id;
	ev.nreceivers = 1;
	if (call) {
		ev.name = call->target;
		ev.name_len = call->target_len;
	}
	monitor_emit(b, &ev);
}

/* Answer a call that cannot be routed (a refusal code, or a failure), at
 * once, with a CallResult. 0 or -ENOMEM. */
static int call_refuse(struct peer *c, const struct lbus_wire_frame *f, const struct lbus_wire_call *call,
		       int code)
{
	struct lbus_wire_result r = {.call_id = call->call_id, .req_id = f->req_id};
	int ret;

	result_set_error(&r, code);
	ret = result_queue(c, &r);
	monitor_call_error(c->broker, c, 0, r.error, call);
	return ret;
}

/* Is the foreign caller c refused this call by the access rules? Judged as
 * the target resolved (routed: to a name when sub is NULL, else to a
 * topic) or, when nobody answers it, both ways it could be meant, so that
 * a refused caller learns nothing of who is there. true: answered with a
 * CallResult{ERR_DENIED} naming the rule, *ret set (0 or -ENOMEM). */
static bool call_denied(struct peer *c, const struct lbus_wire_frame *f, const struct lbus_wire_call *call,
			bool routed, const struct sub *sub, int *ret)
{
	struct lbus_wire_result r = {.call_id = call->call_id, .req_id = f->req_id};
	bool as_name = routed ? !sub : lbus_name_validate(call->target, call->target_len) == 0;
	bool as_topic = routed ? sub != NULL : lbus_topic_validate(call->target, call->target_len) == 0;
	char why[ACCESS_REASON_MAX];

	if (!access_call_denied(c, as_name, as_topic, call->target, call->target_len, why, sizeof(why)))
		return false;
	result_set_error(&r, ACCESS_E_DENIED);
	r.reason = why;
	r.reason_len = strlen(why);
	*ret = result_queue(c, &r);
	return true;
}

/* ---- call --------------------------------------------------------------------- */

/* Keep only the responder subscriptions among the router's targets (in
 * order); plain subscribers never see calls. Returns how many remain. */
static size_t call_keep_responders(struct router *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		if (r->subs[i]->responder)
			r->subs[n++] = r->subs[i];
	r->n = n;
	return n;
}

/* Pick the responder: 0, a refusal (CALL_E_*, TOPIC_E_RESERVED) or -ENOMEM. */
static int call_resolve(struct broker *b, const struct lbus_wire_call *call, struct peer **to,
			struct sub **sub)
{
	bool is_name = lbus_name_validate(call->target, call->target_len) == 0;
	bool is_topic = lbus_topic_validate(call->target, call->target_len) == 0;
	struct name_owner *o;
	size_t n;

	int ret;

	if (call->call_id == 0 || (!is_name && !is_topic))
		return CALL_E_INVALID;
	if (is_name && (o = names_lookup(&b->names, call->target, call->target_len))) {
		*to = container_of(o, struct peer, names);
		*sub = NULL;
		return 0;
	}
	if (!is_topic)
		return CALL_E_NO_RESPONDERS;
	if (lbus_topic_is_reserved(call->target, call->target_len))
		return TOPIC_E_RESERVED;
	ret = router_targets(b, call->target, call->target_len);
	if (ret < 0)
		return ret;
	n = call_keep_responders(&b->router);
	if (n == 0)
		return CALL_E_NO_RESPONDERS;
	*sub = b->router.subs[calls_pick(&b->calls, n)];
	*to = (*sub)->peer;
	return 0;
}

/* Queue the call to its responder under a new token. 0 or -ENOMEM. */
static int call_route(struct peer *c, const struct lbus_wire_frame *f, const struct lbus_wire_call *call,
		      struct peer *to, struct sub *sub)
{
	struct broker *b = c->broker;
	uint32_t timeout = call->timeout_ms ? call->timeout_ms : LBUS_DEFAULT_CALL_TIMEOUT_MS;
	struct msgbuf *body;
	struct call *pc;

	if (calls_add(&b->calls, &c->calls, call->call_id, &to->calls, (uint64_t)clock_now_ms() + timeout,
		      &pc) < 0)
		return -ENOMEM;
	body = msgbuf_new(&b->pool, lbus_wire_deliver_body_size(f->body_len, c->sender_len, pc->token));
	if (!body) {
		calls_remove(&b->calls, pc);
		return -ENOMEM;
	}
	body->len = (uint32_t)lbus_wire_deliver_body_encode(body->data, LBUS_D_CALL, f->body, f->body_len,
							    c->sender, c->sender_len, pc->token);
	if (c->frame_fds)
		body->fds = fdset_ref(c->frame_fds);
	if (!deliver_one(b, to, sub, body)) { /* fits, has room: out of memory */
		msgbuf_unref(body);
		calls_remove(&b->calls, pc);
		return -ENOMEM;
	}
	msgbuf_unref(body);
	if (b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
		    .kind = LBUS__MONITOR_KIND__MON_CALL,
		    .sender = c->sender,
		    .sender_len = c->sender_len,
		    .receivers = &to->id,
		    .nreceivers = 1,
		    .payload = call->payload,
		    .payload_len = call->payload_len,
		    .call_token = pc->token,
		};
		if (sub) {
			ev.topic = call->target;
			ev.topic_len = call->target_len;
		} else {
			ev.name = call->target;
			ev.name_len = call->target_len;
		}
		monitor_note_fds(&ev, c->frame_fds);
		monitor_emit(b, &ev);
	}
	return 0;
}

/* May c make this call now? 0, CALL_E_DUPLICATE_ID (its call_id is
 * pending) or CALL_E_LIMIT (max_pending_calls_per_client). */
static int call_admit(struct peer *c, const struct lbus_wire_call *call)
{
	struct broker *b = c->broker;

	if (call->call_id && calls_find_id(&b->calls, &c->calls, call->call_id))
		return CALL_E_DUPLICATE_ID;
	if (c->calls.ncalls >= b->cfg.max_pending_calls_per_client)
		return CALL_E_LIMIT;
	return 0;
}

int callreply_handle_call(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_call call;
	struct peer *to;
	struct sub *sub = NULL;
	size_t need;
	int ret;

	if (lbus_wire_call_decode(f->body, f->body_len, &call) < 0)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable call");
	ret = call_admit(c, &call);
	if (ret)
		return call_refuse(c, f, &call, ret);
	/* Upper bound of the Deliver: header + body with the longest token. */
	need = OUTQ_HDR_MAX + lbus_wire_deliver_body_size(f->body_len, c->sender_len, UINT64_MAX);
	for (;;) {
		ret = call_resolve(b, &call, &to, &sub);
		if (c->foreign && (ret == 0 || ret == CALL_E_NO_RESPONDERS) &&
		    call_denied(c, f, &call, ret == 0, sub, &ret))
			return ret;
		if (ret)
			return call_refuse(c, f, &call, ret);
		if (!deliver_fits(to, need - OUTQ_HDR_MAX))
			return call_refuse(c, f, &call, CALL_E_TOO_LARGE);
		if (!conn_make_room(&to->conn, need + (c->frame_fds ? c->frame_fds->n * OUTQ_FD_COST : 0))) {
			peer_wait_on(c, to, 0);
			return PEER_BLOCKED;
		}
		if (to->state != PEER_CLOSED)
			break;
		/* it went away while its queue was written: resolve again */
	}
	peer_count_in(c);
	ret = call_route(c, f, &call, to, sub);
	return ret ? call_refuse(c, f, &call, ret) : 0;
}

/* ---- reply --------------------------------------------------------------------- */

/* The responder's error as the caller sees it: 0 (none),
 * CALL_E_NO_RESPONDERS (a client that takes no calls) or, for any other
 * ErrorCode, CALL_E_RESPONDER_FAILED (it cannot pose as the broker). */
static int reply_refusal(uint32_t error)
{
	if (error == LBUS__ERROR_CODE__ERR_NONE)
		return 0;
	if (error == LBUS__ERROR_CODE__ERR_NO_RESPONDERS)
		return CALL_E_NO_RESPONDERS;
	return CALL_E_RESPONDER_FAILED;
}

/* Fill r (call_id and sender already set) from the responder's Reply; the
 * responder's reason, if it gave one, replaces the usual text. */
static void result_from_reply(struct lbus_wire_result *r, const struct lbus_wire_reply *in)
{
	int code = reply_refusal(in->error);

	if (!code) {
		r->payload = in->payload;
		r->payload_len = in->payload_len;
		return;
	}
	result_set_error(r, code);
	if (in->reason_len) {
		r->reason = in->reason;
		r->reason_len = in->reason_len;
	}
}

/* Tell monitors about a reply (an error reply is a MON_ERROR). */
static void monitor_reply(struct peer *c, struct peer *caller, uint64_t token,
			  const struct lbus_wire_result *r)
{
	struct lbus_wire_monitor_event ev = {
	    .kind = r->error ? LBUS__MONITOR_KIND__MON_ERROR : LBUS__MONITOR_KIND__MON_REPLY,
	    .sender = c->sender,
	    .sender_len = c->sender_len,
	    .receivers = &caller->id,
	    .nreceivers = 1,
	    .payload = r->error ? (const uint8_t *)r->reason : r->payload,
	    .payload_len = r->error ? r->reason_len : r->payload_len,
	    .call_token = token,
	    .error = r->error,
	};

	if (r->fds)
		monitor_note_fds(&ev, c->frame_fds);
	monitor_emit(c->broker, &ev);
}

int callreply_handle_reply(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_result r = {.sender = c->sender, .sender_len = c->sender_len};
	struct lbus_wire_reply in;
	struct peer *caller;
	struct call *pc;
	int ret;

	if (lbus_wire_reply_decode(f->body, f->body_len, &in) < 0)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable reply");
	pc = calls_find(&b->calls, in.call_token);
	if (!pc || pc->responder != &c->calls)
		return 0; /* answered, expired, or not this client's: ignored */
	caller = container_of(pc->caller, struct peer, calls);
	r.call_id = pc->call_id;
	result_from_reply(&r, &in);
	if (!r.error && c->frame_fds) {
		r.fds = c->frame_fds->n;
		r.payload_memfd = in.payload_memfd;
	}
	if (lbus_wire_result_frame_size(&r) - LBUS_FRAME_HEADER > caller->conn.max_frame) {
		r.payload_len = 0;
		r.sender_len = 0;
		r.fds = 0;
		r.payload_memfd = false;
		result_set_error(&r, CALL_E_REPLY_TOO_LARGE);
	}
	if (!conn_make_room(&caller->conn, lbus_wire_result_frame_size(&r) + r.fds * OUTQ_FD_COST)) {
		peer_wait_on(c, caller, 0);
		return PEER_BLOCKED;
	}
	if (caller->state == PEER_CLOSED)
		return 0; /* its calls were dropped with it */
	peer_count_in(c);
	ret = result_queue_fds(caller, &r, c->frame_fds);
	if (ret < 0) {
		r.payload_len = 0;
		r.fds = 0;
		r.payload_memfd = false;
		result_set_error(&r, ret);
		ret = result_queue(caller, &r);
	}
	if (b->monitors.count)
		monitor_reply(c, caller, in.call_token, &r);
	calls_remove(&b->calls, pc);
	if (ret < 0) /* the caller cannot even be told: it would wait forever */
		peer_close(caller, "out of memory");
	return 0;
}

/* ---- calls that end without a reply ---------------------------------------------- */

/* calls_fn: tell the caller its call failed with the refusal code in *ud
 * (out of memory: the caller's call library times out; no calls may be
 * removed from here, so the caller cannot be closed). */
static void call_fail(struct call *pc, void *ud)
{
	int code = *(const int *)ud;
	struct peer *caller = container_of(pc->caller, struct peer, calls);
	struct lbus_wire_result r = {.call_id = pc->call_id};

	if (caller->state == PEER_CLOSED)
		return;
	result_set_error(&r, code);
	result_queue(caller, &r);
	monitor_call_error(caller->broker, caller, pc->token, r.error, NULL);
}

void callreply_peer_closed(struct peer *c)
{
	int code = CALL_E_RESPONDER_GONE;

	calls_drop_caller(&c->broker->calls, &c->calls);
	calls_drop_responder(&c->broker->calls, &c->calls, call_fail, &code);
}

void callreply_expire(struct broker *b, int64_t now_ms)
{
	int code = CALL_E_TIMEOUT;

	if (calls_pending(&b->calls))
		calls_expire(&b->calls, (uint64_t)now_ms, call_fail, &code);
}

int callreply_timeout_ms(const struct broker *b, int64_t now_ms)
{
	uint64_t next = calls_next_deadline(&b->calls);

	if (next == UINT64_MAX)
		return -1;
	if (next <= (uint64_t)now_ms)
		return 0;
	return next - (uint64_t)now_ms > INT32_MAX ? INT32_MAX : (int)(next - (uint64_t)now_ms);
}
