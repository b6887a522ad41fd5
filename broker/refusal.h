/* SPDX-License-Identifier: MIT */
/*
 * The broker's error convention (proto/errcode.h states it for all of lbus):
 *  - 0 is success;
 *  - a negative errno is a failure: of the system (-ENOMEM), or of the
 *    connection (-EPROTO: answer_fatal() closed it);
 *  - a small positive code, named <MODULE>_E_<WHAT> below, is an expected
 *    refusal: the request was well-formed and the broker is fine, but it
 *    cannot be honoured (a name taken, an invalid topic, no responder).
 * Functions return one int that is one of these; nothing below the answer
 * returns a wire ErrorCode. The wire appears in ONE place: refusal_get()
 * maps each refusal code to its ErrorCode and the reason the peer reads,
 * and refusal_of_failure() does the same for a negative errno that a peer
 * is told about (ERR_INTERNAL).
 *
 * Frame handlers (dispatch.h) return such a code; dispatch_frame() answers
 * a refusal with an Error naming the request, a failure with ERR_INTERNAL.
 * Call refusals become a CallResult instead (callreply.c), from the same map.
 */
#pragma once

#include <stdint.h>

/* Refusal codes start above PEER_BLOCKED (peer.h), the other positive
 * result of a handler. Codes shared by modules are named for the first. */
enum refusal_code {
	REFUSAL_FIRST = 16,
	/* topics and names (router, callreply, naming) */
	TOPIC_E_INVALID = REFUSAL_FIRST, /* invalid topic */
	TOPIC_E_TOO_LONG,		 /* topic or pattern past its length or depth limit */
	FRAME_E_NUL_IN_STRING,		 /* a string field holds a NUL byte */
	FRAME_E_UNKNOWN_NESTED,		 /* unknown fields inside a nested control message */
	FRAME_E_FDS_NOT_ALLOWED,	 /* descriptors with a kind that takes none */
	FRAME_E_FDS_LIMIT,		 /* max_fds_per_client or memfd_budget reached */
	TOPIC_E_RESERVED,		 /* a '$' topic from a client */
	NAME_E_INVALID,			 /* invalid name */
	NAME_E_NO_SUCH_NAME,		 /* nobody owns it */
	NAME_E_TAKEN,			 /* owned by another peer */
	NAME_E_NOT_OWNER,		 /* release of a name not ours */
	NAME_E_LIMIT,			 /* max_names_per_client reached */
	/* router: publish and send */
	ROUTER_E_TOO_LARGE,	/* a send larger than the receiver takes */
	ROUTER_E_RETAINED_FULL, /* delivered, not retained (retained_max) */
	/* subscription and monitor */
	SUB_E_ZERO_ID,
	SUB_E_ID_IN_USE,
	SUB_E_INVALID_PATTERN,
	SUB_E_INVALID_GROUP,
	SUB_E_UNKNOWN_POLICY,
	SUB_E_NO_SUCH_ID,
	SUB_E_LIMIT, /* max_subscriptions_per_client reached */
	/* introspection */
	INTROSPECT_E_TOO_LARGE, /* answer larger than the asker's max_frame */
	/* calls (answered with a CallResult) */
	CALL_E_INVALID,	     /* call_id 0, or target neither name nor topic */
	CALL_E_DUPLICATE_ID, /* the caller has a call with this call_id pending */
	CALL_E_LIMIT,	     /* max_pending_calls_per_client reached */
	CALL_E_NO_RESPONDERS,
	CALL_E_TOO_LARGE,	/* larger than the responder takes */
	CALL_E_REPLY_TOO_LARGE, /* the reply is larger than the caller takes */
	CALL_E_RESPONDER_GONE,
	CALL_E_TIMEOUT,
	CALL_E_RESPONDER_FAILED,
	/* access rules (access.c; the reason names operation and rule) */
	ACCESS_E_DENIED,
	REFUSAL_END
};

/* What the peer is told. */
struct refusal {
	uint32_t errcode;   /* the wire's ErrorCode */
	const char *reason; /* NUL-terminated, static */
};

/* The answer for a refusal code (REFUSAL_FIRST <= code < REFUSAL_END). */
const struct refusal *refusal_get(int code);
/* The answer for a failure told to a peer: ERR_INTERNAL and the reason
 * ("out of memory" for -ENOMEM). */
struct refusal refusal_of_failure(int err);
