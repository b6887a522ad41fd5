/* SPDX-License-Identifier: MIT */
/*
 * Monitors (see monitor.h): the filter, the fitting of an event into a
 * monitor's max_frame (the encoding itself is proto/'s
 * lbus_wire_monitor_event_frame_encode: the sender is copied as the already
 * encoded Sender body, the receivers are one packed repeated field, nothing
 * is allocated besides the caller's output buffer). Then the broker side:
 * the MonitorRequest handler and monitor_emit(), which encodes an event once
 * for all monitors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "broker.h"
#include "answer.h"
#include "peer.h"
#include "refusal.h"
#include "dispatch.h"
#include "lbus.pb-c.h"
#include "monitor.h"
#include "frame.h"
#include "lbus-limits.h"
#include "topic.h"
#include "wire.h"

void monitors_init(struct monitors *ms)
{
	list_init(&ms->list);
	ms->count = 0;
}

int monitor_new(struct peer *peer, const char *pattern, size_t len, struct monitor **out)
{
	struct monitor *m;

	if (len == 0) {
		pattern = "#"; /* everything: "#" plus sends, calls and replies */
		len = 1;
	}
	if (!lbus_topic_within_limits(pattern, len))
		return TOPIC_E_TOO_LONG;
	if (lbus_pattern_validate(pattern, len) < 0)
		return SUB_E_INVALID_PATTERN;
	m = calloc(1, sizeof(*m) + len + 1);
	if (!m)
		return -ENOMEM;
	list_init(&m->link);
	m->peer = peer;
	m->everything = len == 1 && pattern[0] == '#';
	m->pattern_len = len;
	memcpy(m->pattern, pattern, len);
	*out = m;
	return 0;
}

void monitors_add(struct monitors *ms, struct monitor *m)
{
	list_add_tail(&ms->list, &m->link);
	ms->count++;
}

void monitor_free(struct monitors *ms, struct monitor *m)
{
	if (!m)
		return;
	if (list_linked(&m->link)) {
		list_del(&m->link);
		ms->count--;
	}
	free(m);
}

bool monitor_wants(const struct monitor *m, const struct lbus_wire_monitor_event *ev)
{
	if (ev->kind != LBUS__MONITOR_KIND__MON_PUBLISH)
		return m->everything;
	return lbus_topic_match(m->pattern, m->pattern_len, ev->topic, ev->topic_len);
}

/* ---- encoding -------------------------------------------------------------- */

/* Size of the frame without its length header. */
static size_t frame_body_size(const struct lbus_wire_monitor_event *ev)
{
	return lbus_wire_monitor_event_frame_size(ev) - LBUS_FRAME_HEADER;
}

/* A copy of ev trimmed so that its frame body is at most max_frame bytes. */
static struct lbus_wire_monitor_event event_fit(const struct lbus_wire_monitor_event *ev, uint32_t max_frame)
{
	struct lbus_wire_monitor_event e = *ev;
	size_t size = frame_body_size(&e);

	if (size <= max_frame)
		return e;
	e.nreceivers = 0;
	while ((size = frame_body_size(&e)) > max_frame && e.payload_len > 0) {
		size_t excess = size - max_frame;
		e.payload_len = excess < e.payload_len ? e.payload_len - excess : 0;
	}
	return e;
}

size_t monitor_event_size(const struct lbus_wire_monitor_event *ev, uint32_t max_frame)
{
	struct lbus_wire_monitor_event e = event_fit(ev, max_frame);
	return LBUS_FRAME_HEADER + frame_body_size(&e);
}

size_t monitor_event_encode(uint8_t *out, const struct lbus_wire_monitor_event *ev, uint32_t max_frame)
{
	struct lbus_wire_monitor_event e = event_fit(ev, max_frame);

	return lbus_wire_monitor_event_frame_encode(out, &e);
}

/* ---- the broker side ---------------------------------------------------------- */

int monitor_handle_request(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	Lbus__MonitorRequest *req = lbus__monitor_request__unpack(NULL, f->body_len, f->body);
	struct monitor *m = NULL;
	int ret;

	if (!req)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable monitor request");
	if (c->foreign && access_denied(c, f, POLICY_MONITOR, POLICY_NONE, NULL, 0, &ret)) {
		lbus__monitor_request__free_unpacked(req, NULL);
		return ret; /* answered */
	}
	ret = monitor_new(c, req->pattern, strlen(req->pattern), &m);
	lbus__monitor_request__free_unpacked(req, NULL);
	if (ret)
		return ret;
	monitor_free(&b->monitors, c->monitor);
	c->monitor = m;
	monitors_add(&b->monitors, m);
	log_msg(&b->log, LOG_DEBUG, "client %llu monitors %s", (unsigned long long)c->id, m->pattern);
	return answer_ok(c, f, 0);
}

static bool monitor_active_wants(const struct monitor *m, const struct lbus_wire_monitor_event *ev)
{
	return m->peer->state == PEER_READY && monitor_wants(m, ev) &&
	       (!m->peer->foreign || access_may_monitor(m->peer, ev));
}

void monitor_emit(struct broker *b, const struct lbus_wire_monitor_event *ev)
{
	uint32_t max_frame = UINT32_MAX;
	struct msgbuf *buf;
	struct list *l;
	size_t size;

	for (l = b->monitors.list.next; l != &b->monitors.list; l = l->next) {
		struct monitor *m = container_of(l, struct monitor, link);
		if (monitor_active_wants(m, ev) && m->peer->conn.max_frame < max_frame)
			max_frame = m->peer->conn.max_frame;
	}
	if (max_frame == UINT32_MAX)
		return;
	size = monitor_event_size(ev, max_frame);
	buf = size - LBUS_FRAME_HEADER <= max_frame ? msgbuf_new(&b->pool, size) : NULL;
	if (buf)
		buf->len = (uint32_t)monitor_event_encode(buf->data, ev, max_frame);
	for (l = b->monitors.list.next; l != &b->monitors.list; l = l->next) {
		struct monitor *m = container_of(l, struct monitor, link);

		if (!monitor_active_wants(m, ev))
			continue;
		if (!buf || conn_queue_full(&m->peer->conn, size) ||
		    conn_queue(&m->peer->conn, msgbuf_ref(buf), NULL, 0) < 0)
			peer_count_drop(m->peer);
	}
	msgbuf_unref(buf);
}
