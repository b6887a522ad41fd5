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
 *     take the call, the caller waits (CLIENT_BLOCKED) and is re-run later;
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

#include "broker.h"
#include "callreply.h"
#include "client.h"
#include "dispatch.h"
#include "monitor.h"
#include "lbus-limits.h"
#include "wire.h"
#include "topic.h"
#include "subscription.h"

/* The complete CallResult frame in a new buffer, or NULL on ENOMEM. */
static struct msgbuf *result_encode(struct broker *b, const struct lbus_wire_result *r)
{
	struct msgbuf *m = msgbuf_new(&b->pool, lbus_wire_result_frame_size(r));

	if (m)
		m->len = (uint32_t)lbus_wire_result_frame_encode(m->data, r);
	return m;
}

/* Queue r to the caller, whatever its queue holds (errors are small, and a
 * reply's room was checked by the caller of this). 0 or -ENOMEM. */
static int result_queue(struct client *caller, const struct lbus_wire_result *r)
{
	struct msgbuf *m = result_encode(caller->broker, r);

	if (!m || client_queue(caller, m, NULL, 0) < 0)
		return -ENOMEM;
	caller->ctr.msgs_out++;
	caller->broker->ctr.msgs_out++;
	if (r->error) {
		caller->ctr.errors++;
		caller->broker->ctr.errors++;
	}
	return 0;
}

static const char *error_reason(uint32_t code)
{
	switch (code) {
	case LBUS__ERROR_CODE__ERR_NO_RESPONDERS:
		return "no responders";
	case LBUS__ERROR_CODE__ERR_RESPONDER_GONE:
		return "the responder disconnected before replying";
	case LBUS__ERROR_CODE__ERR_TIMEOUT:
		return "no reply before the call's deadline";
	case LBUS__ERROR_CODE__ERR_DENIED:
		return "topics starting with $ are reserved";
	case LBUS__ERROR_CODE__ERR_INVALID:
		return "invalid call: target or call_id";
	case LBUS__ERROR_CODE__ERR_RESPONDER_FAILED:
		return "the responder failed";
	default:
		return "out of memory";
	}
}

/* Set r's error and its reason (a NUL-terminated string; NULL: the usual). */
static void result_set_error(struct lbus_wire_result *r, uint32_t code, const char *reason)
{
	r->error = code;
	r->reason = reason ? reason : error_reason(code);
	r->reason_len = strlen(r->reason);
}

/* Tell monitors that a call (token 0: never routed) failed for caller. */
static void monitor_call_error(struct broker *b, struct client *caller, uint64_t token, uint32_t code,
			       const struct lbus_wire_call *call)
{
	struct lbus_wire_monitor_event ev = { .kind = LBUS__MONITOR_KIND__MON_ERROR, .call_token = token,
					      .error = code };

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

/* Answer a call that cannot be routed, at once (reason NULL: the usual). */
static int call_refuse(struct client *c, const struct lbus_wire_frame *f, const struct lbus_wire_call *call,
		       uint32_t code, const char *reason)
{
	struct lbus_wire_result r = { .call_id = call->call_id, .req_id = f->req_id };

	result_set_error(&r, code, reason);

	result_queue(c, &r);
	monitor_call_error(c->broker, c, 0, code, call);
	return 0;
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

/* Pick the responder: 0, or the ErrorCode to refuse the call with. */
static uint32_t call_resolve(struct broker *b, const struct lbus_wire_call *call, struct client **to,
			     struct sub **sub)
{
	bool is_name = lbus_name_validate(call->target, call->target_len) == 0;
	bool is_topic = lbus_topic_validate(call->target, call->target_len) == 0;
	struct name_owner *o;
	size_t n;

	if (call->call_id == 0 || (!is_name && !is_topic))
		return LBUS__ERROR_CODE__ERR_INVALID;
	if (is_name && (o = names_lookup(&b->names, call->target, call->target_len))) {
		*to = container_of(o, struct client, names);
		*sub = NULL;
		return 0;
	}
	if (!is_topic)
		return LBUS__ERROR_CODE__ERR_NO_RESPONDERS;
	if (lbus_topic_is_reserved(call->target, call->target_len))
		return LBUS__ERROR_CODE__ERR_DENIED;
	if (router_targets(b, call->target, call->target_len) < 0)
		return LBUS__ERROR_CODE__ERR_INTERNAL;
	n = call_keep_responders(&b->router);
	if (n == 0)
		return LBUS__ERROR_CODE__ERR_NO_RESPONDERS;
	*sub = b->router.subs[calls_pick(&b->calls, n)];
	*to = (*sub)->client;
	return 0;
}

/* Queue the call to its responder under a new token. 0, or an ErrorCode. */
static uint32_t call_route(struct client *c, const struct lbus_wire_frame *f, const struct lbus_wire_call *call,
			   struct client *to, struct sub *sub)
{
	struct broker *b = c->broker;
	uint32_t timeout = call->timeout_ms ? call->timeout_ms : LBUS_DEFAULT_CALL_TIMEOUT_MS;
	struct msgbuf *body;
	struct call *pc;

	if (calls_add(&b->calls, &c->calls, call->call_id, &to->calls, (uint64_t)broker_now_ms() + timeout, &pc) < 0)
		return LBUS__ERROR_CODE__ERR_INTERNAL;
	body = msgbuf_new(&b->pool, lbus_wire_deliver_body_size(f->body_len, c->sender_len, pc->token));
	if (!body) {
		calls_remove(&b->calls, pc);
		return LBUS__ERROR_CODE__ERR_INTERNAL;
	}
	body->len = (uint32_t)lbus_wire_deliver_body_encode(body->data, LBUS_D_CALL, f->body, f->body_len, c->sender,
							    c->sender_len, pc->token);
	if (!router_deliver_one(b, to, sub, body)) {
		msgbuf_unref(body);
		calls_remove(&b->calls, pc);
		return LBUS__ERROR_CODE__ERR_INTERNAL;
	}
	msgbuf_unref(body);
	if (b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
			.kind = LBUS__MONITOR_KIND__MON_CALL, .sender = c->sender, .sender_len = c->sender_len,
			.receivers = &to->id, .nreceivers = 1, .payload = call->payload,
			.payload_len = call->payload_len, .call_token = pc->token,
		};
		if (sub) {
			ev.topic = call->target;
			ev.topic_len = call->target_len;
		} else {
			ev.name = call->target;
			ev.name_len = call->target_len;
		}
		monitor_emit(b, &ev);
	}
	return 0;
}

int callreply_handle_call(struct client *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_call call;
	struct client *to;
	struct sub *sub;
	uint32_t code;
	size_t need;

	if (lbus_wire_call_decode(f->body, f->body_len, &call) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable call");
	/* Upper bound of the Deliver: header + body with the longest token. */
	need = OUTQ_HDR_MAX + lbus_wire_deliver_body_size(f->body_len, c->sender_len, UINT64_MAX);
	for (;;) {
		code = call_resolve(b, &call, &to, &sub);
		if (code)
			return call_refuse(c, f, &call, code, NULL);
		if (!router_fits(to, need - OUTQ_HDR_MAX))
			return call_refuse(c, f, &call, LBUS__ERROR_CODE__ERR_INVALID, "call too large for the responder");
		if (!client_queue_full(to, need))
			break;
		client_write_now(to);
		if (to->state == CLIENT_CLOSED)
			continue; /* it went away: resolve again */
		if (client_queue_full(to, need)) {
			client_wait_on(c, to, 0);
			return CLIENT_BLOCKED;
		}
		break;
	}
	c->ctr.msgs_in++;
	b->ctr.msgs_in++;
	code = call_route(c, f, &call, to, sub);
	return code ? call_refuse(c, f, &call, code, NULL) : 0;
}

/* ---- reply --------------------------------------------------------------------- */

/* The responder's error as the caller sees it: ERR_NO_RESPONDERS (a client
 * that takes no calls) and ERR_RESPONDER_FAILED pass; any other code is the
 * responder's failure too (it cannot pose as the broker). */
static uint32_t reply_error_code(uint32_t error)
{
	if (error == LBUS__ERROR_CODE__ERR_NONE || error == LBUS__ERROR_CODE__ERR_NO_RESPONDERS)
		return error;
	return LBUS__ERROR_CODE__ERR_RESPONDER_FAILED;
}

/* Fill r (call_id and sender already set) from the responder's Reply. */
static void result_from_reply(struct lbus_wire_result *r, const struct lbus_wire_reply *in)
{
	r->error = reply_error_code(in->error);
	if (!r->error) {
		r->payload = in->payload;
		r->payload_len = in->payload_len;
	} else if (in->reason_len) {
		r->reason = in->reason;
		r->reason_len = in->reason_len;
	} else {
		result_set_error(r, r->error, NULL);
	}
}

/* Tell monitors about a reply (an error reply is a MON_ERROR). */
static void monitor_reply(struct client *c, struct client *caller, uint64_t token,
			  const struct lbus_wire_result *r)
{
	struct lbus_wire_monitor_event ev = {
		.kind = r->error ? LBUS__MONITOR_KIND__MON_ERROR : LBUS__MONITOR_KIND__MON_REPLY,
		.sender = c->sender, .sender_len = c->sender_len, .receivers = &caller->id, .nreceivers = 1,
		.payload = r->error ? (const uint8_t *)r->reason : r->payload,
		.payload_len = r->error ? r->reason_len : r->payload_len, .call_token = token, .error = r->error,
	};

	monitor_emit(c->broker, &ev);
}

int callreply_handle_reply(struct client *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	struct lbus_wire_result r = { .sender = c->sender, .sender_len = c->sender_len };
	struct lbus_wire_reply in;
	struct client *caller;
	struct call *pc;

	if (lbus_wire_reply_decode(f->body, f->body_len, &in) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable reply");
	pc = calls_find(&b->calls, in.call_token);
	if (!pc || pc->responder != &c->calls)
		return 0; /* answered, expired, or not this client's: ignored */
	caller = container_of(pc->caller, struct client, calls);
	r.call_id = pc->call_id;
	result_from_reply(&r, &in);
	if (lbus_wire_result_frame_size(&r) - LBUS_FRAME_HEADER > caller->max_frame) {
		r.payload_len = 0;
		r.sender_len = 0;
		result_set_error(&r, LBUS__ERROR_CODE__ERR_LIMIT, "reply larger than the caller's max_frame");
	}
	if (client_queue_full(caller, lbus_wire_result_frame_size(&r))) {
		client_write_now(caller);
		if (caller->state != CLIENT_CLOSED &&
		    client_queue_full(caller, lbus_wire_result_frame_size(&r))) {
			client_wait_on(c, caller, 0);
			return CLIENT_BLOCKED;
		}
		if (caller->state == CLIENT_CLOSED)
			return 0; /* its calls were dropped with it */
	}
	c->ctr.msgs_in++;
	b->ctr.msgs_in++;
	if (result_queue(caller, &r) < 0) {
		r.payload_len = 0;
		result_set_error(&r, LBUS__ERROR_CODE__ERR_INTERNAL, NULL);
		result_queue(caller, &r);
	}
	if (b->monitors.count)
		monitor_reply(c, caller, in.call_token, &r);
	calls_remove(&b->calls, pc);
	return 0;
}

/* ---- calls that end without a reply ---------------------------------------------- */

/* calls_fn: tell the caller its call failed with the code in *ud. */
static void call_fail(struct call *pc, void *ud)
{
	uint32_t code = *(const uint32_t *)ud;
	struct client *caller = container_of(pc->caller, struct client, calls);
	struct lbus_wire_result r = { .call_id = pc->call_id };

	if (caller->state == CLIENT_CLOSED)
		return;
	result_set_error(&r, code, NULL);
	result_queue(caller, &r);
	monitor_call_error(caller->broker, caller, pc->token, code, NULL);
}

void callreply_client_closed(struct client *c)
{
	uint32_t code = LBUS__ERROR_CODE__ERR_RESPONDER_GONE;

	calls_drop_caller(&c->broker->calls, &c->calls);
	calls_drop_responder(&c->broker->calls, &c->calls, call_fail, &code);
}

void callreply_expire(struct broker *b, int64_t now_ms)
{
	uint32_t code = LBUS__ERROR_CODE__ERR_TIMEOUT;

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
