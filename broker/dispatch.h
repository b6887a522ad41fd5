/* SPDX-License-Identifier: MIT */
/*
 * Frame dispatch: frame, check, dispatch, through one table indexed by
 * Frame.kind. Each entry names the handler and whether it is allowed before
 * hello. To add a request kind: write its handler in its own file, declare
 * it below, and add one line to the table in dispatch.c.
 *
 * Handler contract: called with a scanned frame (f->kind, f->body, f->req_id)
 * of a welcomed client (except hello). Return (refusal.h):
 *  - 0 when handled (answer queued with answer_ok/answer_frame as needed);
 *  - PEER_BLOCKED to be called again with the same frame later (after
 *    peer_wait_on);
 *  - a refusal code (<MODULE>_E_*): dispatch_frame answers the Error;
 *  - -errno: a failure (dispatch_frame answers ERR_INTERNAL), or the result
 *    of answer_fatal() for a protocol violation (the peer is closed).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct peer;

typedef int (*frame_handler_fn)(struct peer *c, const struct lbus_wire_frame *f);

/* Scan, check and dispatch one frame body. Returns as a handler does. */
int dispatch_frame(struct peer *c, const uint8_t *frame, size_t len);

/* session.c */
int session_handle_hello(struct peer *c, const struct lbus_wire_frame *f);
int session_handle_ping(struct peer *c, const struct lbus_wire_frame *f);
int session_handle_pong(struct peer *c, const struct lbus_wire_frame *f);
/* subscription.c */
int sub_handle_subscribe(struct peer *c, const struct lbus_wire_frame *f);
int sub_handle_unsubscribe(struct peer *c, const struct lbus_wire_frame *f);
/* router.c */
int router_handle_publish(struct peer *c, const struct lbus_wire_frame *f);
int router_handle_send(struct peer *c, const struct lbus_wire_frame *f);
/* callreply.c */
int callreply_handle_call(struct peer *c, const struct lbus_wire_frame *f);
int callreply_handle_reply(struct peer *c, const struct lbus_wire_frame *f);
/* introspect.c */
int introspect_handle_list(struct peer *c, const struct lbus_wire_frame *f);
int introspect_handle_stats(struct peer *c, const struct lbus_wire_frame *f);
/* monitor.c */
int monitor_handle_request(struct peer *c, const struct lbus_wire_frame *f);
/* naming.c */
int naming_handle_take(struct peer *c, const struct lbus_wire_frame *f);
int naming_handle_release(struct peer *c, const struct lbus_wire_frame *f);
int naming_handle_query(struct peer *c, const struct lbus_wire_frame *f);
