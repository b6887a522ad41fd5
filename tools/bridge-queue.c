/* SPDX-License-Identifier: MIT */
/*
 * Outgoing queue and duplicate filter of lbus-bridge (see bridge-queue.h).
 * The queue is a singly linked FIFO: entries leave from the front, except an
 * in-flight one acked out of order (QoS 2), found by a walk over the
 * in-flight entries at the front.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge-queue.h"

void bqueue_init(struct bqueue *q, uint64_t max_msgs, uint64_t max_bytes)
{
	memset(q, 0, sizeof(*q));
	q->max_msgs = max_msgs;
	q->max_bytes = max_bytes;
}

static uint64_t entry_bytes(const struct bq_entry *e)
{
	return e->len + strlen(e->topic);
}

void bqueue_clear(struct bqueue *q)
{
	struct bq_entry *e = q->head, *next;

	for (; e; e = next) {
		next = e->next;
		free(e);
	}
	bqueue_init(q, q->max_msgs, q->max_bytes);
}

int bqueue_push(struct bqueue *q, const char *topic, const void *data, size_t len, int qos, bool retain)
{
	size_t tl = strlen(topic);
	struct bq_entry *e;

	if (q->msgs + 1 > q->max_msgs || q->bytes + len + tl > q->max_bytes)
		return -ENOBUFS;
	e = malloc(sizeof(*e) + len + tl + 1);
	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->mid = 0;
	e->qos = qos;
	e->retain = retain;
	e->len = len;
	if (len)
		memcpy(e->data, data, len);
	e->topic = (char *)e->data + len;
	memcpy(e->topic, topic, tl + 1);
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	if (!q->pending)
		q->pending = e;
	q->msgs++;
	q->bytes += len + tl;
	return 0;
}

/* Unlink e (prev its predecessor, NULL for the head) and free it. */
static void unlink_entry(struct bqueue *q, struct bq_entry *prev, struct bq_entry *e)
{
	if (prev)
		prev->next = e->next;
	else
		q->head = e->next;
	if (q->tail == e)
		q->tail = prev;
	if (q->pending == e)
		q->pending = e->next;
	q->msgs--;
	q->bytes -= entry_bytes(e);
	free(e);
}

void bqueue_handed(struct bqueue *q, struct bq_entry *e, int mid)
{
	struct bq_entry *prev = NULL;

	q->pending = e->next;
	if (e->qos > 0) {
		e->mid = mid;
		q->inflight++;
		return;
	}
	if (q->head != e)
		for (prev = q->head; prev->next != e; prev = prev->next)
			;
	unlink_entry(q, prev, e);
}

long bqueue_acked(struct bqueue *q, int mid)
{
	struct bq_entry *prev = NULL;

	for (struct bq_entry *e = q->head; e && e != q->pending; prev = e, e = e->next) {
		if (e->mid != mid || e->qos == 0)
			continue;
		long len = (long)e->len;
		q->inflight--;
		unlink_entry(q, prev, e);
		return len;
	}
	return -ENOENT;
}

uint64_t bdedup_hash(const char *topic, const void *data, size_t len, bool retain)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (const char *t = topic; *t; t++)
		h = (h ^ (unsigned char)*t) * 0x100000001b3ull;
	h = (h ^ 0xffu) * 0x100000001b3ull; /* topic/payload boundary */
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (h ^ (retain ? 1u : 2u)) * 0x100000001b3ull;
}

void bdedup_connected(struct bdedup *d, bool session_present)
{
	if (!session_present) {
		d->n = 0;
		d->pos = 0;
	}
	d->checking = session_present && d->n > 0;
}

bool bdedup_check(struct bdedup *d, int mid, uint64_t hash)
{
	if (d->checking) {
		for (unsigned i = 0; i < d->n; i++)
			if (d->seen[i].mid == mid && d->seen[i].hash == hash)
				return true;
		d->checking = false;
	}
	d->seen[d->pos].mid = mid;
	d->seen[d->pos].hash = hash;
	d->pos = (d->pos + 1) % BDEDUP_WINDOW;
	if (d->n < BDEDUP_WINDOW)
		d->n++;
	return false;
}
