/* SPDX-License-Identifier: MIT */
/*
 * Answers to a peer (see answer.h): Ok, Error, fatal Error, packed with the
 * generated protobuf-c code (they are small and rare next to deliveries).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "answer.h"
#include "broker.h"
#include "peer.h"
#include "refusal.h"

/* Longest reason text of a fatal Error, NUL included. */
#define ANSWER_REASON_MAX 256

int answer_frame(struct peer *c, const Lbus__Frame *f)
{
	size_t size = lbus_frame_packed_size(f);
	struct msgbuf *m;
	uint8_t *p;

	if (c->state == PEER_CLOSED)
		return 0;
	if (size <= OUTQ_COPY_MAX) {
		p = conn_queue_reserve(&c->conn, size);
		if (!p)
			return -ENOMEM;
		lbus_frame_pack(f, p);
		return 0;
	}
	m = msgbuf_new(&c->broker->pool, size);
	if (!m)
		return -ENOMEM;
	m->len = (uint32_t)lbus_frame_pack(f, m->data);
	return conn_queue(&c->conn, m, NULL, 0);
}

int answer_ok(struct peer *c, const struct lbus_wire_frame *f, uint64_t owner)
{
	Lbus__Ok ok = LBUS__OK__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	ok.request = f->kind;
	ok.owner = owner;
	out.kind_case = LBUS__FRAME__KIND_OK;
	out.ok = &ok;
	out.req_id = f->req_id;
	return answer_frame(c, &out);
}

static int answer_queue_error(struct peer *c, const struct lbus_wire_frame *f, uint32_t code,
			      const char *reason, bool fatal)
{
	Lbus__Error err = LBUS__ERROR__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	err.code = (Lbus__ErrorCode)code;
	err.reason = (char *)reason;
	err.request = f ? f->kind : 0;
	err.fatal = fatal;
	out.kind_case = LBUS__FRAME__KIND_ERROR;
	out.error = &err;
	out.req_id = f ? f->req_id : 0;
	peer_count_error(c);
	return answer_frame(c, &out);
}

int answer_error(struct peer *c, const struct lbus_wire_frame *f, uint32_t code, const char *reason)
{
	log_msg(&c->broker->log, LOG_DEBUG, "client %llu: %s refused: %s", (unsigned long long)c->id,
		lbus_kind_name(f->kind), reason);
	return answer_queue_error(c, f, code, reason, false);
}

int answer_refusal(struct peer *c, const struct lbus_wire_frame *f, int code)
{
	struct refusal failure;
	const struct refusal *why;

	if (code > 0) {
		why = refusal_get(code);
	} else {
		failure = refusal_of_failure(code);
		why = &failure;
	}
	return answer_error(c, f, why->errcode, why->reason);
}

int answer_refusal_why(struct peer *c, const struct lbus_wire_frame *f, int code, const char *why)
{
	return answer_error(c, f, refusal_get(code)->errcode, why);
}

int answer_fatal(struct peer *c, const struct lbus_wire_frame *f, uint32_t code, const char *fmt, ...)
{
	char reason[ANSWER_REASON_MAX];
	va_list ap;

	if (c->state == PEER_CLOSED)
		return -EPROTO;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_limited(&c->broker->log, LOG_FLOOD_CLIENT, LOG_WARNING,
		    "client %llu (pid %d uid %u): %s; disconnecting", (unsigned long long)c->id, (int)c->pid,
		    (unsigned)c->uid, reason);
	if (answer_queue_error(c, f, code, reason, true) == 0)
		conn_write_last(&c->conn);
	peer_close(c, reason);
	return -EPROTO;
}
