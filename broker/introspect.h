/* SPDX-License-Identifier: MIT */
/*
 * Introspection (see introspect.c): the list and stats handlers of the
 * dispatch table, and the one-time read of a client's command name.
 */
#pragma once

struct peer;
struct lbus_wire_frame;

int introspect_handle_list(struct peer *c, const struct lbus_wire_frame *f);
int introspect_handle_stats(struct peer *c, const struct lbus_wire_frame *f);
/* Fill c->comm from /proc/PID/comm ("" when unreadable; non-printable
 * bytes become '?'). Called once, at connect. */
void introspect_read_comm(struct peer *c);
