/* SPDX-License-Identifier: MIT */
/*
 * The forwarding core of lbus-bridge: every decision about a message that
 * crosses, apart from any I/O, so the unit tests drive it directly.
 *
 * From the bus (an `out` route matched): a message the bridge published
 * itself is never sent back (that is what prevents loops, whatever the
 * routes overlap); its topic is mapped (local-prefix -> remote-prefix) and
 * checked against MQTT's rules (else reported and skipped), then queued
 * (bridge-queue.h) or, past the bound, counted and logged as dropped.
 * From MQTT: the first `in` route whose remote pattern matches maps the
 * topic (remote-prefix -> local-prefix); a redelivered duplicate is dropped
 * (counted). The I/O side reports what became of each message, so the
 * counters (the status JSON) add up: forwarded + dropped + skipped.
 *
 * Logging goes through bridge-log.h, rate-limited per kind of event.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge-config.h"
#include "bridge-log.h"
#include "bridge-queue.h"
#include "bridge-topic.h"

struct bridge_counters {
	uint64_t forwarded_out; /* acknowledged by the MQTT broker (QoS 0: handed over) */
	uint64_t forwarded_in;	/* published on the bus */
	uint64_t dropped_out;	/* refused by the full queue */
	uint64_t dropped_in;	/* the bus was unreachable or refused it */
	uint64_t skipped;	/* a topic the other side does not accept */
	uint64_t duplicates;	/* MQTT redeliveries not forwarded twice */
	uint64_t own;		/* the bridge's own messages, not sent back */
	uint64_t mqtt_connects, local_connects;
};

struct bridge_core {
	const struct bridge_config *cfg;
	struct bqueue q;
	struct bdedup dedup;
	struct bridge_counters n;
	struct blog_limit lim_drop, lim_skip, lim_in;
	bool mqtt_up, local_up;
	char topic[BRIDGE_MQTT_MAX_TOPIC + 1]; /* the mapped topic */
};

enum bridge_verdict {
	BRIDGE_FORWARD = 0, /* from MQTT: publish core->topic on the bus */
	BRIDGE_QUEUED,	    /* from the bus: queued for MQTT */
	BRIDGE_SKIP_OWN,    /* the bridge's own message */
	BRIDGE_SKIP_TOPIC,  /* topic outside the other side's rules (logged) */
	BRIDGE_SKIP_DUP,    /* a redelivery already forwarded */
	BRIDGE_DROPPED,	    /* the queue is full (logged) */
};

void bridge_core_init(struct bridge_core *c, const struct bridge_config *cfg);
void bridge_core_free(struct bridge_core *c);

/* A message from the bus matched out route r; own: the bridge sent it. */
enum bridge_verdict bridge_core_from_local(struct bridge_core *c, const struct bridge_route *r,
					   const char *topic, const void *data, size_t len, bool retain,
					   bool own, int64_t now_ms);

/* The bus reported count messages lost on an out subscription. */
void bridge_core_local_dropped(struct bridge_core *c, uint64_t count, int64_t now_ms);

/* A message from MQTT (mid 0 for QoS 0). BRIDGE_FORWARD: publish it on the
 * bus as c->topic with the given retain, then report bridge_core_in_done(). */
enum bridge_verdict bridge_core_from_remote(struct bridge_core *c, int mid, int qos, const char *topic,
					    const void *data, size_t len, bool retain, int64_t now_ms);

/* What publishing c->topic on the bus gave: 0, -ENOTCONN (bus down),
 * -EINVAL/-EACCES (the bus refuses the topic) or another negative errno. */
void bridge_core_in_done(struct bridge_core *c, int err, int64_t now_ms);

/* The pending entry e was handed to MQTT under mid / the broker acked mid. */
void bridge_core_handed(struct bridge_core *c, struct bq_entry *e, int mid);
void bridge_core_acked(struct bridge_core *c, int mid);

/* A new MQTT connection is up (session_present from its CONNACK). */
void bridge_core_mqtt_connected(struct bridge_core *c, bool session_present);

/* Log the summaries of suppressed lines that are due. */
void bridge_core_tick(struct bridge_core *c, int64_t now_ms);

/*
 * The status as one JSON object (see lbus-bridge --help): *out is malloc'ed,
 * NUL-terminated, *len its length. 0 or -ENOMEM.
 */
int bridge_core_status_json(const struct bridge_core *c, char **out, size_t *len);
