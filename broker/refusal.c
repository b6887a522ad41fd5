/* SPDX-License-Identifier: MIT */
/*
 * The one map from the broker's refusal codes to the wire (see refusal.h).
 */
#include <errno.h>
#include <string.h>

#include "lbus.pb-c.h"
#include "lbus-limits.h"
#include "refusal.h"

_Static_assert(LBUS_MAX_TOPIC_LEN == 4096 && LBUS_MAX_TOPIC_LEVELS == 32,
	       "the TOPIC_E_TOO_LONG reason states these limits");

#define R(code, err, text) [(code)-REFUSAL_FIRST] = {LBUS__ERROR_CODE__##err, text}

static const struct refusal refusals[REFUSAL_END - REFUSAL_FIRST] = {
    R(TOPIC_E_INVALID, ERR_INVALID, "invalid topic"),
    R(TOPIC_E_TOO_LONG, ERR_INVALID,
      "invalid: topic or pattern longer than 4096 bytes or deeper than 32 levels"),
    R(FRAME_E_UNKNOWN_NESTED, ERR_INVALID, "invalid: unknown fields inside a nested message"),
    R(FRAME_E_NUL_IN_STRING, ERR_INVALID, "invalid: a string holds a NUL byte"),
    R(FRAME_E_FDS_NOT_ALLOWED, ERR_INVALID,
      "file descriptors are allowed only with publish, send, call and reply"),
    R(FRAME_E_FDS_LIMIT, ERR_LIMIT,
      "too many file descriptors or memfd bytes in flight (max_fds_per_client, memfd_budget)"),
    R(TOPIC_E_RESERVED, ERR_DENIED, "topics starting with $ are reserved"),
    R(NAME_E_INVALID, ERR_INVALID, "invalid name"),
    R(NAME_E_NO_SUCH_NAME, ERR_NO_SUCH_NAME, "no such name"),
    R(NAME_E_TAKEN, ERR_NAME_TAKEN, "name already taken"),
    R(NAME_E_NOT_OWNER, ERR_NOT_OWNER, "not the owner of that name"),
    R(NAME_E_LIMIT, ERR_LIMIT, "broker limit reached: max_names_per_client"),
    R(ROUTER_E_TOO_LARGE, ERR_INVALID, "message too large for the receiver"),
    R(ROUTER_E_RETAINED_FULL, ERR_LIMIT, "retained store full (retained_max): delivered, not retained"),
    R(SUB_E_ZERO_ID, ERR_INVALID, "sub_id must not be 0"),
    R(SUB_E_ID_IN_USE, ERR_INVALID, "sub_id already in use on this connection"),
    R(SUB_E_INVALID_PATTERN, ERR_INVALID, "invalid pattern"),
    R(SUB_E_INVALID_GROUP, ERR_INVALID, "invalid group name"),
    R(SUB_E_UNKNOWN_POLICY, ERR_INVALID, "unknown policy"),
    R(SUB_E_NO_SUCH_ID, ERR_INVALID, "no such sub_id"),
    R(SUB_E_LIMIT, ERR_LIMIT, "broker limit reached: max_subscriptions_per_client"),
    R(INTROSPECT_E_TOO_LARGE, ERR_LIMIT, "answer larger than max_frame"),
    R(CALL_E_INVALID, ERR_INVALID, "invalid call: target or call_id"),
    R(CALL_E_DUPLICATE_ID, ERR_INVALID, "invalid call: call_id already pending on this connection"),
    R(CALL_E_LIMIT, ERR_LIMIT, "broker limit reached: max_pending_calls_per_client"),
    R(CALL_E_NO_RESPONDERS, ERR_NO_RESPONDERS, "no responders"),
    R(CALL_E_TOO_LARGE, ERR_INVALID, "call too large for the responder"),
    R(CALL_E_REPLY_TOO_LARGE, ERR_LIMIT, "reply larger than the caller's max_frame"),
    R(CALL_E_RESPONDER_GONE, ERR_RESPONDER_GONE, "the responder disconnected before replying"),
    R(CALL_E_TIMEOUT, ERR_TIMEOUT, "no reply before the call's deadline"),
    R(CALL_E_RESPONDER_FAILED, ERR_RESPONDER_FAILED, "the responder failed"),
    R(ACCESS_E_DENIED, ERR_DENIED, "denied by the access rules"),
};

const struct refusal *refusal_get(int code)
{
	static const struct refusal unknown = {LBUS__ERROR_CODE__ERR_INTERNAL, "internal error"};

	if (code < REFUSAL_FIRST || code >= REFUSAL_END || !refusals[code - REFUSAL_FIRST].reason)
		return &unknown;
	return &refusals[code - REFUSAL_FIRST];
}

struct refusal refusal_of_failure(int err)
{
	struct refusal r = {LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory"};

	if (err != -ENOMEM)
		r.reason = strerror(err < 0 ? -err : err);
	return r;
}
