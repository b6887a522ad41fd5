/* SPDX-License-Identifier: MIT */
/*
 * The dispatch table (see dispatch.h) and the checks every frame passes
 * before its handler runs: well-formed Frame, no file descriptors, a kind,
 * hello first, a kind a client may send, strings without NUL bytes in the
 * bodies protobuf-c decodes (its strings are C strings: "a\0b" would be
 * read as "a"), no unknown fields in those bodies (protobuf-c would copy
 * each one while unpacking, tens of bytes for a field of two: they are
 * dropped first, dispatch_known_fields), and the sender's own out queue not
 * over its limit (a client that floods requests without reading the answers
 * waits for its own queue, like a blocked publisher, so memory stays bounded).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "answer.h"
#include "broker.h"
#include "refusal.h"
#include "answer.h"
#include "peer.h"
#include "dispatch.h"

struct frame_handler {
	frame_handler_fn fn;
	bool before_hello; /* allowed as the first frame */
	bool c_strings;	   /* decoded by protobuf-c: strings checked for NUL */
};

static const struct frame_handler handlers[LBUS_K_MAX + 1] = {
    [LBUS_K_HELLO] = {session_handle_hello, true, true},
    [LBUS_K_PING] = {session_handle_ping, false},
    [LBUS_K_PONG] = {session_handle_pong, false},
    [LBUS_K_SUBSCRIBE] = {sub_handle_subscribe, false, true},
    [LBUS_K_UNSUBSCRIBE] = {sub_handle_unsubscribe, false, true},
    [LBUS_K_PUBLISH] = {router_handle_publish, false},
    [LBUS_K_TAKE_NAME] = {naming_handle_take, false, true},
    [LBUS_K_RELEASE_NAME] = {naming_handle_release, false, true},
    [LBUS_K_SEND] = {router_handle_send, false},
    [LBUS_K_QUERY_NAME] = {naming_handle_query, false, true},
    [LBUS_K_CALL] = {callreply_handle_call, false},
    [LBUS_K_REPLY] = {callreply_handle_reply, false},
    [LBUS_K_LIST] = {introspect_handle_list, false, true},
    [LBUS_K_STATS] = {introspect_handle_stats, false, true},
    [LBUS_K_MONITOR] = {monitor_handle_request, false, true},
};

_Static_assert(REFUSAL_FIRST > PEER_BLOCKED, "refusal codes and PEER_BLOCKED must differ");

/*
 * Answer what a handler returned (refusal.h): 0 and PEER_BLOCKED pass; a
 * refusal becomes an Error naming the request; a failure (-errno) of a peer
 * still open becomes ERR_INTERNAL. A peer that cannot even be told is closed.
 */
static int dispatch_answer(struct peer *c, const struct lbus_wire_frame *f, int r)
{
	if (r == 0 || r == PEER_BLOCKED)
		return r;
	if (c->state == PEER_CLOSED)
		return r < 0 ? r : -EPIPE;
	if (answer_refusal(c, f, r) == 0)
		return 0;
	log_msg(&c->broker->log, LOG_WARNING, "client %llu: out of memory for its answer; disconnecting",
		(unsigned long long)c->id);
	peer_close(c, "out of memory");
	return -ENOMEM;
}

/* Run h on a copy of f's body without the unknown fields (forward
 * compatible: a newer client's extra fields are ignored, as before, but
 * never reach protobuf-c). The copy lives while the handler runs. */
static int dispatch_known_fields(struct peer *c, struct lbus_wire_frame *f, const struct frame_handler *h)
{
	uint8_t *known = malloc(f->body_len ? f->body_len : 1);
	int ret;

	if (!known)
		return dispatch_answer(c, f, -ENOMEM);
	f->body_len = lbus_wire_drop_unknown_fields(f->kind, f->body, f->body_len, known);
	f->body = known;
	if (lbus_wire_has_unknown_fields(f->kind, f->body, f->body_len))
		ret = dispatch_answer(c, f, FRAME_E_UNKNOWN_NESTED);
	else
		ret = dispatch_answer(c, f, h->fn(c, f));
	free(known);
	return ret;
}

int dispatch_frame(struct peer *c, const uint8_t *frame, size_t len)
{
	const struct frame_handler *h;
	struct lbus_wire_frame f;

	if (lbus_wire_frame_scan(frame, len, &f) < 0)
		return answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable frame");
	if (f.fds)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_INVALID,
				    "file descriptors are not supported");
	if (f.kind == LBUS_K_NONE)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_PROTOCOL, "frame without a known kind");
	h = &handlers[f.kind];
	if (c->state == PEER_HELLO && !h->before_hello)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_PROTOCOL, "expected hello, got %s",
				    lbus_kind_name(f.kind));
	if (!h->fn)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_PROTOCOL, "unexpected %s frame",
				    lbus_kind_name(f.kind));
	if (h->c_strings && !lbus_wire_strings_exact(f.kind, f.body, f.body_len))
		return dispatch_answer(c, &f, FRAME_E_NUL_IN_STRING);
	if (c->state == PEER_READY && c->conn.outq.bytes > c->broker->cfg.max_queue) {
		peer_wait_on(c, c, 0);
		return PEER_BLOCKED;
	}
	if (h->c_strings && lbus_wire_has_unknown_fields(f.kind, f.body, f.body_len))
		return dispatch_known_fields(c, &f, h);
	return dispatch_answer(c, &f, h->fn(c, &f));
}
