/* SPDX-License-Identifier: MIT */
/*
 * Session frames: hello (version check, limits, welcome) and ping/pong.
 */
#include "broker.h"
#include "client.h"
#include "dispatch.h"
#include "lbus-limits.h"
#include "pbwire.h"

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

/* Ping and Pong share the layout { uint64 token = 1; }. */
static int read_token(const struct lbus_wire_frame *f, uint64_t *token)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field fld;
	int ret;

	*token = 0;
	lbus_pb_reader_init(&r, f->body, f->body_len);
	while ((ret = lbus_pb_next(&r, &fld)) > 0)
		if (fld.num == 1 && fld.type == LBUS_PB_VARINT)
			*token = fld.u;
	return ret;
}

int session_handle_ping(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__Pong pong = LBUS__PONG__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	if (read_token(f, &pong.token) < 0)
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

	if (read_token(f, &token) < 0)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable pong");
	return 0;
}
