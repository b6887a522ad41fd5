/* SPDX-License-Identifier: MIT */
/*
 * The outgoing queue of lbus-bridge and its receive-side duplicate filter,
 * apart from any I/O.
 *
 * Every message bound for MQTT enters the queue (FIFO) and stays until the
 * broker has it: a QoS 0 message until libmosquitto accepted it, a QoS 1/2
 * message until its PUBACK (PUBCOMP) arrives. Entries are "pending" (not yet
 * handed to libmosquitto) or "in flight" (handed, waiting for the ack under
 * their message id); pending ones are handed in order, only while MQTT is
 * up, so what was published while it was down follows what was in flight
 * (which libmosquitto resends itself after a reconnect). The bound
 * (messages, and bytes of topic + payload) counts both kinds; a message that
 * would exceed it is refused, and the caller counts and logs it as dropped.
 *
 * The duplicate filter: a QoS 1 message whose PUBACK was lost when the
 * connection broke is sent again by the broker after the reconnect, with the
 * same message id, if the session was kept. While the first messages after
 * such a reconnect repeat (id and content) one of the last ones received,
 * they are duplicates; the first one that does not ends the check.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bq_entry {
	struct bq_entry *next;
	int mid; /* in flight: libmosquitto's message id; 0 while pending */
	int qos;
	bool retain;
	size_t len;  /* payload bytes, at data */
	char *topic; /* NUL-terminated, after the payload in data */
	unsigned char data[];
};

struct bqueue {
	struct bq_entry *head, *tail;
	struct bq_entry *pending; /* first entry not yet handed, NULL if none */
	uint64_t msgs, bytes;	  /* all entries */
	uint64_t inflight;	  /* entries handed and not yet acked */
	uint64_t max_msgs, max_bytes;
};

void bqueue_init(struct bqueue *q, uint64_t max_msgs, uint64_t max_bytes);
/* Free every entry. */
void bqueue_clear(struct bqueue *q);

/* Append a copy of the message. 0, -ENOBUFS when it would exceed the bound
 * (nothing changes), -ENOMEM. */
int bqueue_push(struct bqueue *q, const char *topic, const void *data, size_t len, int qos, bool retain);

/* The oldest pending entry, or NULL. */
static inline struct bq_entry *bqueue_next(const struct bqueue *q)
{
	return q->pending;
}

/* The pending entry e = bqueue_next() was handed to MQTT under mid: a QoS 0
 * entry is freed (done), another one waits in flight for bqueue_acked(). */
void bqueue_handed(struct bqueue *q, struct bq_entry *e, int mid);

/* The broker acknowledged mid: free that in-flight entry. Returns its
 * payload length (>= 0), or -ENOENT for an unknown mid. */
long bqueue_acked(struct bqueue *q, int mid);

#define BDEDUP_WINDOW 1024 /* >= the MQTT receive maximum (BMQTT_MAX_INFLIGHT) */

struct bdedup {
	struct {
		int mid;
		uint64_t hash;
	} seen[BDEDUP_WINDOW];
	unsigned n, pos;
	bool checking; /* a session-keeping reconnect happened, no new message yet */
};

/* Hash of a message's content (topic, payload, retain). */
uint64_t bdedup_hash(const char *topic, const void *data, size_t len, bool retain);
/* A connection was (re)established; session_present as in its CONNACK. A
 * new session forgets what was seen (its ids start afresh). */
void bdedup_connected(struct bdedup *d, bool session_present);
/* A QoS > 0 message arrived: true when it is a redelivery of one already
 * received (drop it), else remember it and return false. */
bool bdedup_check(struct bdedup *d, int mid, uint64_t hash);
