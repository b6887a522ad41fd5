/* SPDX-License-Identifier: MIT */
/*
 * How the broker answers a peer: Ok, a non-fatal Error naming the request,
 * or a fatal Error for a protocol violation (logged once, then the peer is
 * closed), and any other generated frame. These are the only places where
 * the bus packs a control frame for one peer.
 * Errors: 0 or -ENOMEM (nothing queued).
 */
#pragma once

#include <stdint.h>

#include "wire.h"

struct peer;

/* Pack and queue any generated frame (small ones are copied into the
 * queue's chunk). 0 (also when c is closed) or -ENOMEM. */
int answer_frame(struct peer *c, const Lbus__Frame *f);
/* Queue Ok{request, owner} for the frame f (echoes its req_id). */
int answer_ok(struct peer *c, const struct lbus_wire_frame *f, uint64_t owner);
/* Queue a non-fatal Error naming the request f (kind and req_id). */
int answer_error(struct peer *c, const struct lbus_wire_frame *f, uint32_t code, const char *reason);
/* Queue the Error for a refusal code or a failure (-errno), as refusal.h
 * maps it. */
int answer_refusal(struct peer *c, const struct lbus_wire_frame *f, int code);
/* The same with a reason of the caller's (one naming the limit reached, say)
 * instead of the table's. */
int answer_refusal_why(struct peer *c, const struct lbus_wire_frame *f, int code, const char *why);
/*
 * Protocol violation: log once (id, pid, uid, reason), send a fatal Error
 * (request/req_id from f if not NULL), close. Returns -EPROTO.
 */
int answer_fatal(struct peer *c, const struct lbus_wire_frame *f, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
