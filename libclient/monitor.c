/* SPDX-License-Identifier: MIT */
/*
 * Monitor mode: lbus_monitor() sends MonitorRequest{pattern} and waits for
 * the broker's Ok; from then on every MonitorEvent frame is decoded
 * (protobuf-c, monitors are not the hot path) into a struct
 * lbus_monitor_event that points into the decoded message, valid during the
 * callback only.
 */
#include <errno.h>
#include <string.h>

#include "client-internal.h"
#include "errcode.h"
#include "topic.h"

int lbus_monitor(lbus *bus, const char *pattern, lbus_monitor_fn fn, void *userdata)
{
	if (!fn)
		return -EINVAL;
	if (pattern && *pattern && lbus_pattern_validate(pattern, strlen(pattern)) < 0)
		return -EINVAL;
	lbus_monitor_fn old_fn = bus->mon_fn;
	void *old_ud = bus->mon_ud;
	bus->mon_fn = fn;
	bus->mon_ud = userdata;
	Lbus__MonitorRequest mr = LBUS__MONITOR_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	mr.pattern = (char *)(pattern ? pattern : "");
	f.kind_case = LBUS__FRAME__KIND_MONITOR;
	f.monitor = &mr;
	int r = req_simple(bus, &f, NULL);
	if (r < 0) {
		bus->mon_fn = old_fn;
		bus->mon_ud = old_ud;
	} else {
		rc_monitor_set(bus, pattern); /* to restore after a reconnection */
	}
	return r;
}

static enum lbus_monitor_kind monitor_kind(Lbus__MonitorKind k)
{
	switch (k) {
	case LBUS__MONITOR_KIND__MON_SEND:
		return LBUS_MON_SEND;
	case LBUS__MONITOR_KIND__MON_CALL:
		return LBUS_MON_CALL;
	case LBUS__MONITOR_KIND__MON_REPLY:
		return LBUS_MON_REPLY;
	case LBUS__MONITOR_KIND__MON_ERROR:
		return LBUS_MON_ERROR;
	default:
		return LBUS_MON_PUBLISH;
	}
}

int monitor_on_event(struct lbus *bus, const struct lbus_wire_frame *f)
{
	Lbus__MonitorEvent *e = lbus__monitor_event__unpack(NULL, f->body_len, f->body);
	if (!e)
		return -EPROTO;
	const Lbus__Sender *s = e->sender;
	struct lbus_monitor_event ev = {
	    .kind = monitor_kind(e->kind),
	    .sender =
		{
		    .id = s ? s->id : 0,
		    .name = s && s->name ? s->name : "",
		    .pid = s ? (pid_t)s->pid : 0,
		    .uid = s ? (uid_t)s->uid : 0,
		    .gid = s ? (gid_t)s->gid : 0,
		},
	    .receivers = e->receivers,
	    .n_receivers = e->n_receivers,
	    .topic = e->topic ? e->topic : "",
	    .name = e->name ? e->name : "",
	    .data = e->payload.data ? (const void *)e->payload.data : "",
	    .len = e->payload.len,
	    .call_id = e->call_id,
	    .retain = e->retain,
	    .error = lbus_errcode_to_errno(e->error),
	    .nfds = e->fds,
	    .memfd_size = e->memfd_size,
	};
	if (bus->mon_fn)
		bus->mon_fn(bus, &ev, bus->mon_ud);
	lbus__monitor_event__free_unpacked(e, NULL);
	return 1;
}
