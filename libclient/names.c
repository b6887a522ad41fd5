/* SPDX-License-Identifier: MIT */
/*
 * Names: take, release and query a unique name, and send a message to the
 * owner of a name. Each is one request answered by Ok or Error (req.c),
 * waited for within the connection's timeout, or, for the _async twins,
 * completed by a callback; lbus_send() with LBUS_NOWAIT only sends its
 * frame like a publish, and a failure then reaches the error handler.
 */
#include <errno.h>
#include <string.h>

#include "client-internal.h"
#include "topic.h"

static int name_check(const char *name)
{
	return name && lbus_name_validate(name, strlen(name)) == 0 ? 0 : -EINVAL;
}

/* Encode a NameRequest of the given kind into *f (pointing at *req). */
static int name_frame(Lbus__Frame__KindCase kind, const char *name, Lbus__NameRequest *req, Lbus__Frame *f)
{
	if (name_check(name) < 0)
		return -EINVAL;
	req->name = (char *)name;
	f->kind_case = kind;
	switch (kind) {
	case LBUS__FRAME__KIND_TAKE_NAME:
		f->take_name = req;
		break;
	case LBUS__FRAME__KIND_RELEASE_NAME:
		f->release_name = req;
		break;
	default:
		f->query_name = req;
		break;
	}
	return 0;
}

/* One NameRequest of the given kind, waiting for Ok/Error. */
static int name_request(struct lbus *bus, Lbus__Frame__KindCase kind, const char *name, uint64_t *owner)
{
	Lbus__NameRequest req = LBUS__NAME_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	int r = name_frame(kind, name, &req, &f);
	return r < 0 ? r : req_simple(bus, &f, owner);
}

int lbus_name_take(lbus *bus, const char *name)
{
	int r = name_request(bus, LBUS__FRAME__KIND_TAKE_NAME, name, NULL);
	if (r == 0)
		rc_name_add(bus, name); /* to take again after a reconnection */
	return r;
}

int lbus_name_take_async(lbus *bus, const char *name, lbus_done_fn done, void *userdata)
{
	Lbus__NameRequest req = LBUS__NAME_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	int r = name_frame(LBUS__FRAME__KIND_TAKE_NAME, name, &req, &f);
	if (r == 0 && !done)
		r = -EINVAL;
	return r < 0 ? r : rc_take_async(bus, &f, name, done, userdata);
}

int lbus_name_release(lbus *bus, const char *name)
{
	int r = name_request(bus, LBUS__FRAME__KIND_RELEASE_NAME, name, NULL);
	if (r == 0 || r == -EPERM)
		rc_name_del(bus, name);
	return r;
}

int lbus_name_query(lbus *bus, const char *name, uint64_t *owner)
{
	uint64_t id = 0;
	int r = name_request(bus, LBUS__FRAME__KIND_QUERY_NAME, name, &id);
	if (r == -ENXIO)
		return 0;
	if (r < 0)
		return r;
	if (owner)
		*owner = id;
	return 1;
}

/* Encode a Send into *f (pointing at *send). */
static int send_frame(const char *name, const void *data, size_t len, Lbus__Send *send, Lbus__Frame *f)
{
	if (name_check(name) < 0 || (!data && len))
		return -EINVAL;
	send->name = (char *)name;
	send->payload.data = (uint8_t *)data;
	send->payload.len = len;
	f->kind_case = LBUS__FRAME__KIND_SEND;
	f->send = send;
	return 0;
}

int lbus_send(lbus *bus, const char *name, const void *data, size_t len, unsigned flags)
{
	Lbus__Send send = LBUS__SEND__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	int r = flags & ~LBUS_NOWAIT ? -EINVAL : send_frame(name, data, len, &send, &f);
	if (r < 0)
		return r;
	if (flags & LBUS_NOWAIT)
		return io_out_frame(bus, &f);
	return req_simple(bus, &f, NULL);
}

int lbus_send_fds(lbus *bus, const char *name, const void *data, size_t len, unsigned flags, const int *fds,
		  size_t nfds)
{
	int r = io_attach_prepare(bus, fds, nfds);
	if (r < 0)
		return r;
	r = lbus_send(bus, name, data, len, flags);
	io_attach_cancel(bus); /* left over when the frame was not queued */
	return r;
}

int lbus_send_async(lbus *bus, const char *name, const void *data, size_t len, lbus_done_fn done,
		    void *userdata)
{
	Lbus__Send send = LBUS__SEND__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	int r = done ? send_frame(name, data, len, &send, &f) : -EINVAL;
	return r < 0 ? r : req_async(bus, &f, 0, done, userdata);
}
