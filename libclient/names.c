/* SPDX-License-Identifier: MIT */
/*
 * Names: take, release and query a unique name, and send a message to the
 * owner of a name. Each is one request answered by Ok or Error (req.c);
 * lbus_send() with LBUS_NOWAIT only buffers its frame like a publish, and a
 * failure then reaches the error handler.
 */
#include <errno.h>
#include <string.h>

#include "client-internal.h"
#include "topic.h"

static int name_check(const char *name)
{
	return name && lbus_name_validate(name, strlen(name)) == 0 ? 0 : -EINVAL;
}

/* One NameRequest of the given kind, waiting for Ok/Error. */
static int name_request(struct lbus *bus, Lbus__Frame__KindCase kind, const char *name, uint64_t *owner)
{
	if (name_check(name) < 0)
		return -EINVAL;
	Lbus__NameRequest req = LBUS__NAME_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	req.name = (char *)name;
	f.kind_case = kind;
	switch (kind) {
	case LBUS__FRAME__KIND_TAKE_NAME:
		f.take_name = &req;
		break;
	case LBUS__FRAME__KIND_RELEASE_NAME:
		f.release_name = &req;
		break;
	default:
		f.query_name = &req;
		break;
	}
	return lbus__req_simple(bus, &f, owner);
}

int lbus_name_take(lbus *bus, const char *name)
{
	return name_request(bus, LBUS__FRAME__KIND_TAKE_NAME, name, NULL);
}

int lbus_name_release(lbus *bus, const char *name)
{
	return name_request(bus, LBUS__FRAME__KIND_RELEASE_NAME, name, NULL);
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

int lbus_send(lbus *bus, const char *name, const void *data, size_t len, unsigned flags)
{
	if (name_check(name) < 0 || (!data && len) || (flags & ~LBUS_NOWAIT))
		return -EINVAL;
	Lbus__Send send = LBUS__SEND__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	send.name = (char *)name;
	send.payload.data = (uint8_t *)data;
	send.payload.len = len;
	f.kind_case = LBUS__FRAME__KIND_SEND;
	f.send = &send;
	if (flags & LBUS_NOWAIT)
		return lbus__out_frame(bus, &f);
	return lbus__req_simple(bus, &f, NULL);
}
