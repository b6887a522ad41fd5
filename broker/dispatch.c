/* SPDX-License-Identifier: MIT */
/*
 * The dispatch table (see dispatch.h) and the checks every frame passes
 * before its handler runs: well-formed Frame, a kind,
 * hello first, a kind a client may send, strings without NUL bytes in the
 * bodies protobuf-c decodes (its strings are C strings: "a\0b" would be
 * read as "a"), no unknown fields in those bodies (protobuf-c would copy
 * each one while unpacking, tens of bytes for a field of two: they are
 * dropped first, dispatch_known_fields), and the sender's own out queue not
 * over its limit (a client that floods requests without reading the answers
 * waits for its own queue, like a blocked publisher, so memory stays bounded).
 * A frame that announces descriptors (Frame.fds) claims them from the
 * transport (conn_frame_fds: they came with its first byte, or the sender
 * broke the protocol) and charges them to the sender's account; only the
 * kinds marked `fds` accept them, the others are refused with the
 * descriptors closed. The handler finds them in c->frame_fds.
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
#include "lbus-limits.h"

struct frame_handler {
	frame_handler_fn fn;
	bool before_hello; /* allowed as the first frame */
	bool c_strings;	   /* decoded by protobuf-c: strings checked for NUL */
	bool fds;	   /* may carry file descriptors */
};

static const struct frame_handler handlers[LBUS_K_MAX + 1] = {
    [LBUS_K_HELLO] = {session_handle_hello, true, true},
    [LBUS_K_PING] = {session_handle_ping, false},
    [LBUS_K_PONG] = {session_handle_pong, false},
    [LBUS_K_SUBSCRIBE] = {sub_handle_subscribe, false, true},
    [LBUS_K_UNSUBSCRIBE] = {sub_handle_unsubscribe, false, true},
    [LBUS_K_PUBLISH] = {router_handle_publish, false, false, true},
    [LBUS_K_TAKE_NAME] = {naming_handle_take, false, true},
    [LBUS_K_RELEASE_NAME] = {naming_handle_release, false, true},
    [LBUS_K_SEND] = {router_handle_send, false, false, true},
    [LBUS_K_QUERY_NAME] = {naming_handle_query, false, true},
    [LBUS_K_CALL] = {callreply_handle_call, false, false, true},
    [LBUS_K_REPLY] = {callreply_handle_reply, false, false, true},
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

/*
 * Claim the frame's descriptors into c->frame_fds: a fatal error when they
 * did not come with its first byte; a refusal (1 then, *refusal set) when
 * the kind takes none or the sender's account is full. 0 when claimed.
 */
static int dispatch_claim_fds(struct peer *c, const struct lbus_wire_frame *f, bool allowed, int *refusal)
{
	const struct config *cfg = &c->broker->cfg;
	const struct fdacct *a = c->fdacct;
	struct fdset *set;

	if (f->fds > LBUS_MAX_FDS_PER_FRAME)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_LIMIT,
				    "more than %u file descriptors with one frame", LBUS_MAX_FDS_PER_FRAME);
	if (conn_frame_fds(&c->conn, f->fds, &set) < 0)
		return answer_fatal(
		    c, f, LBUS__ERROR_CODE__ERR_PROTOCOL,
		    "frame announces %u file descriptors that did not come with its first byte", f->fds);
	if (!allowed) {
		*refusal = FRAME_E_FDS_NOT_ALLOWED;
		return 1;
	}
	if (!set->acct && (a->fds + set->n > cfg->max_fds_per_client ||
			   a->memfd_bytes + set->memfd_bytes > cfg->memfd_budget)) {
		c->broker->ctr.fds_refused += set->n;
		*refusal = FRAME_E_FDS_LIMIT;
		return 1;
	}
	fdset_charge(set, c->fdacct);
	c->frame_fds = set;
	return 0;
}

int dispatch_frame(struct peer *c, const uint8_t *frame, size_t len)
{
	int r, refusal = 0;
	const struct frame_handler *h;
	struct lbus_wire_frame f;

	if (lbus_wire_frame_scan(frame, len, &f) < 0)
		return answer_fatal(c, NULL, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable frame");
	if (f.kind == LBUS_K_NONE)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_PROTOCOL, "frame without a known kind");
	h = &handlers[f.kind];
	if (c->state == PEER_HELLO && !h->before_hello)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_PROTOCOL, "expected hello, got %s",
				    lbus_kind_name(f.kind));
	if (!h->fn)
		return answer_fatal(c, &f, LBUS__ERROR_CODE__ERR_PROTOCOL, "unexpected %s frame",
				    lbus_kind_name(f.kind));
	c->frame_fds = NULL;
	if (f.fds && (r = dispatch_claim_fds(c, &f, h->fds, &refusal)) != 0)
		return r < 0 ? r : dispatch_answer(c, &f, refusal);
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
