/* SPDX-License-Identifier: MIT */
/*
 * Session frames: hello (version check, limits, welcome) and ping/pong.
 */
#include "broker.h"
#include "answer.h"
#include "peer.h"
#include "dispatch.h"
#include "lbus-limits.h"
#include "wire.h"

int session_handle_hello(struct peer *c, const struct lbus_wire_frame *f)
{
	Lbus__Welcome w = LBUS__WELCOME__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;
	Lbus__Hello *h;
	uint32_t version, want;

	if (c->state != PEER_HELLO)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "second hello");
	h = lbus__hello__unpack(NULL, f->body_len, f->body);
	if (!h)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable hello");
	version = h->version;
	want = h->max_frame;
	lbus__hello__free_unpacked(h, NULL);
	if (version != LBUS_PROTOCOL_VERSION)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_VERSION,
				    "unsupported protocol version %u (broker speaks %u)", version,
				    LBUS_PROTOCOL_VERSION);
	if (want && want < c->conn.max_frame)
		c->conn.max_frame = want < LBUS_MIN_MAX_FRAME ? LBUS_MIN_MAX_FRAME : want;
	w.version = LBUS_PROTOCOL_VERSION;
	w.client_id = c->id;
	w.max_frame = c->conn.max_frame;
	w.max_queue = c->broker->cfg.max_queue;
	w.broker = "lbusd " LBUS_VERSION_STRING;
	out.kind_case = LBUS__FRAME__KIND_WELCOME;
	out.welcome = &w;
	out.req_id = f->req_id;
	c->state = PEER_READY;
	c->conn.frame_deadlines = true;
	conn_set_deadline(&c->conn, 0);
	presence_client(c->broker, c, true);
	return answer_frame(c, &out) < 0 ? answer_fatal(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory")
					 : 0;
}

int session_handle_ping(struct peer *c, const struct lbus_wire_frame *f)
{
	Lbus__Pong pong = LBUS__PONG__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	if (lbus_wire_ping_decode(f->body, f->body_len, &pong.token) < 0)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable ping");
	out.kind_case = LBUS__FRAME__KIND_PONG;
	out.pong = &pong;
	out.req_id = f->req_id;
	return answer_frame(c, &out);
}

int session_handle_pong(struct peer *c, const struct lbus_wire_frame *f)
{
	uint64_t token;

	if (lbus_wire_pong_decode(f->body, f->body_len, &token) < 0)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable pong");
	return 0;
}
