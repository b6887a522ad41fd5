/* SPDX-License-Identifier: MIT */
/*
 * Frame dispatch: frame, check, dispatch, through one table indexed by
 * Frame.kind. Each entry names the handler and whether it is allowed before
 * hello. To add a request kind: write its handler in its own file, declare
 * it below, and add one line to the table in dispatch.c.
 *
 * Handler contract: called with a scanned frame (f->kind, f->body, f->req_id)
 * of a welcomed client (except hello). Return 0 when handled (answer queued
 * with client_send_ok/client_send_error/client_queue_frame as needed),
 * CLIENT_BLOCKED to be called again with the same frame later (after
 * client_wait_on), or the result of client_fatal() for a protocol violation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct client;

typedef int (*frame_handler_fn)(struct client *c, const struct lbus_wire_frame *f);

/* Scan, check and dispatch one frame body. Returns as a handler does. */
int dispatch_frame(struct client *c, const uint8_t *frame, size_t len);

/* session.c */
int session_handle_hello(struct client *c, const struct lbus_wire_frame *f);
int session_handle_ping(struct client *c, const struct lbus_wire_frame *f);
int session_handle_pong(struct client *c, const struct lbus_wire_frame *f);
/* subscription.c */
int sub_handle_subscribe(struct client *c, const struct lbus_wire_frame *f);
int sub_handle_unsubscribe(struct client *c, const struct lbus_wire_frame *f);
/* router.c */
int router_handle_publish(struct client *c, const struct lbus_wire_frame *f);
int router_handle_send(struct client *c, const struct lbus_wire_frame *f);
/* callreply.c */
int callreply_handle_call(struct client *c, const struct lbus_wire_frame *f);
int callreply_handle_reply(struct client *c, const struct lbus_wire_frame *f);
/* introspect.c */
int introspect_handle_list(struct client *c, const struct lbus_wire_frame *f);
int introspect_handle_stats(struct client *c, const struct lbus_wire_frame *f);
/* monitor.c */
int monitor_handle_request(struct client *c, const struct lbus_wire_frame *f);
/* naming.c */
int naming_handle_take(struct client *c, const struct lbus_wire_frame *f);
int naming_handle_release(struct client *c, const struct lbus_wire_frame *f);
int naming_handle_query(struct client *c, const struct lbus_wire_frame *f);
