/* SPDX-License-Identifier: MIT */
/*
 * Monitors: connections that asked (MonitorRequest) to see the traffic the
 * broker routes. For every routed publish, send, call, reply and call error
 * the router describes what happened in a struct lbus_wire_monitor_event
 * (wire.h; its pointers are borrowed for the duration of the call); if any
 * monitor wants it, the event is encoded ONCE as a complete MonitorEvent
 * frame in a shared msgbuf and queued to each monitor that wants it.
 *
 * Filter: a monitor sees the publishes whose topic matches its pattern
 * (lbus_topic_match; "" means "#", so "$lbus/..." only with an explicit "$"
 * pattern); with "" or "#" it also sees every send, call, reply and call
 * error; with another pattern nothing else. The monitor events themselves
 * are not traffic: they are never monitored.
 *
 * Monitors never slow the bus down: an event for a monitor whose queue is
 * full is not queued, and counted in the client's and the broker's dropped
 * counters (drop policy, without Dropped frames: they name a subscription,
 * which a monitor does not have).
 * When no monitor is registered the router skips all of this with one test
 * of monitors->count.
 *
 * Ownership: a struct monitor belongs to its client (client->monitor) and
 * is on the broker's list while registered.
 * Errors (refusal.h): 0, SUB_E_INVALID_PATTERN, or -ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fdset.h"
#include "list.h"
#include "wire.h"

struct broker;
struct peer;
struct lbus_wire_frame;
struct lbus_wire_monitor_event;

struct monitor {
	struct list link; /* in monitors.list */
	struct peer *peer;
	bool everything; /* pattern "" or "#": sends, calls, replies too */
	size_t pattern_len;
	char pattern[]; /* NUL-terminated; "#" when the request had "" */
};

struct monitors {
	struct list list;
	size_t count;
};

void monitors_init(struct monitors *ms);

/* A monitor for client with pattern ("" = everything; else validated). */
int monitor_new(struct peer *peer, const char *pattern, size_t len, struct monitor **out);
/* Unregister (if registered) and free. NULL is accepted. */
void monitor_free(struct monitors *ms, struct monitor *m);
void monitors_add(struct monitors *ms, struct monitor *m);

/* Does m want to see ev? */
bool monitor_wants(const struct monitor *m, const struct lbus_wire_monitor_event *ev);

/*
 * The complete MonitorEvent frame (length header included) for ev, at most
 * max_frame bytes after the header: when it would not fit, receivers are
 * left out first, then the payload is cut short (if even that is too big, a
 * topic near max_frame, the size says so and the caller skips the event).
 * Returns the frame's size;
 * monitor_event_encode writes exactly that many bytes.
 */
size_t monitor_event_size(const struct lbus_wire_monitor_event *ev, uint32_t max_frame);
size_t monitor_event_encode(uint8_t *out, const struct lbus_wire_monitor_event *ev, uint32_t max_frame);

/* MonitorRequest (dispatch table): validate, register (a second request
 * replaces the pattern), answer Ok. */
int monitor_handle_request(struct peer *c, const struct lbus_wire_frame *f);
/* Queue ev to every monitor that wants it; call only when
 * b->monitors.count != 0. */
void monitor_emit(struct broker *b, const struct lbus_wire_monitor_event *ev);
/* Note in ev the descriptors a message carries (fds may be NULL): their
 * count and memfd bytes, never the descriptors themselves. */
static inline void monitor_note_fds(struct lbus_wire_monitor_event *ev, const struct fdset *fds)
{
	ev->fds = fds ? fds->n : 0;
	ev->memfd_size = fds ? fds->memfd_bytes : 0;
}
