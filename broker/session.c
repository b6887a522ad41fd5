/* SPDX-License-Identifier: MIT */
/*
 * Session frames: hello (version check, limits, welcome) and ping/pong.
 */
#include "broker.h"
#include "client.h"
#include "dispatch.h"
#include "lbus-limits.h"
#include "wire.h"

int session_handle_hello(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__Welcome w = LBUS__WELCOME__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;
	Lbus__Hello *h;
	uint32_t version, want;

	if (c->state != CLIENT_HELLO)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "second hello");
	h = lbus__hello__unpack(NULL, f->body_len, f->body);
	if (!h)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable hello");
	version = h->version;
	want = h->max_frame;
	lbus__hello__free_unpacked(h, NULL);
	if (version != LBUS_PROTOCOL_VERSION)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_VERSION, "unsupported protocol version %u (broker speaks %u)",
				    version, LBUS_PROTOCOL_VERSION);
	if (want && want < c->max_frame)
		c->max_frame = want < LBUS_MIN_MAX_FRAME ? LBUS_MIN_MAX_FRAME : want;
	w.version = LBUS_PROTOCOL_VERSION;
	w.client_id = c->id;
	w.max_frame = c->max_frame;
	w.max_queue = c->broker->cfg.max_queue;
	w.broker = "lbusd " LBUS_VERSION_STRING;
	out.kind_case = LBUS__FRAME__KIND_WELCOME;
	out.welcome = &w;
	out.req_id = f->req_id;
	c->state = CLIENT_READY;
	client_set_deadline(c, 0);
	presence_client(c->broker, c, true);
	return client_queue_frame(c, &out) < 0 ? client_fatal(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory")
						: 0;
}

int session_handle_ping(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__Pong pong = LBUS__PONG__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	if (lbus_wire_ping_decode(f->body, f->body_len, &pong.token) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable ping");
	out.kind_case = LBUS__FRAME__KIND_PONG;
	out.pong = &pong;
	out.req_id = f->req_id;
	if (client_queue_frame(c, &out) < 0)
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory");
	return 0;
}

int session_handle_pong(struct client *c, const struct lbus_wire_frame *f)
{
	uint64_t token;

	if (lbus_wire_pong_decode(f->body, f->body_len, &token) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable pong");
	return 0;
}
