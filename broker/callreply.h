/* SPDX-License-Identifier: MIT */
/*
 * Request/reply in the broker (see the design comment in callreply.c):
 * the Call and Reply handlers of the dispatch table, and the hooks the
 * client and the event loop call.
 */
#pragma once

#include <stdint.h>

struct broker;
struct peer;
struct lbus_wire_frame;

int callreply_handle_call(struct peer *c, const struct lbus_wire_frame *f);
int callreply_handle_reply(struct peer *c, const struct lbus_wire_frame *f);

/* c is closing: forget the calls it made; fail the calls it was answering
 * (ERR_RESPONDER_GONE to each caller, at once). */
void callreply_peer_closed(struct peer *c);
/* Fail every call whose deadline is <= now_ms with ERR_TIMEOUT. */
void callreply_expire(struct broker *b, int64_t now_ms);
/* Milliseconds until the next call deadline (0 if passed), -1 if none. */
int callreply_timeout_ms(const struct broker *b, int64_t now_ms);
