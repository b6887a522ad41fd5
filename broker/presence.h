/* SPDX-License-Identifier: MIT */
/*
 * Presence: the broker's own publishes (sender id 0) on
 *     $lbus/client/connected     ClientEvent  (a client completed its hello)
 *     $lbus/client/disconnected  ClientEvent  (a welcomed client left; the
 *                                             names it held when it left)
 *     $lbus/name/taken           NameEvent
 *     $lbus/name/released        NameEvent    (also for each name of a
 *                                             client that disconnects)
 *
 * Events are encoded (protobuf-c) when they happen, because the client's
 * state changes right after, but published at the end of the loop turn
 * (presence_flush), in the order they happened. Deferring makes them safe
 * to raise from anywhere, including from inside a routing pass (a client
 * closed while its queue is flushed), which publishing at once would
 * corrupt: routing uses the broker's one scratch target list.
 *
 * Ownership: queued events are owned by struct presence and freed when
 * flushed or by presence_deinit().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct broker;
struct peer;
struct presence_event;

struct presence {
	struct presence_event *first;
	struct presence_event **tail;
};

void presence_init(struct presence *p);
/* Drop the events not yet published. */
void presence_deinit(struct presence *p);
static inline bool presence_pending(const struct presence *p)
{
	return p->first != NULL;
}

/* Queue $lbus/client/connected or .../disconnected for c (its names now). */
void presence_client(struct broker *b, const struct peer *c, bool connected);
/* Queue $lbus/name/taken or .../released for c's name. */
void presence_name(struct broker *b, const struct peer *c, const char *name, size_t len, bool taken);
/* Publish the queued events, oldest first. */
void presence_flush(struct broker *b);
