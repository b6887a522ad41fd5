/* SPDX-License-Identifier: MIT */
/*
 * The encoders of proto/ (see wire.h), every field number from fields.h.
 *
 * A Deliver frame on the wire, as the broker writes it:
 *
 *   [len:4][0x4a deliver_len][0x08 sub_id][0x38 01]   per recipient (header)
 *   [0x12|0x1a|0x22 msg_len msg...][0x2a sender_len sender...][0x30 token]
 *                                                     shared body
 *
 * Field order does not matter to protobuf decoders, so the per-recipient
 * fields (sub_id and retained) go first and the body is reused verbatim.
 * Proto3 leaves out zero scalars and empty strings; the message fields
 * (Deliver's message and sender, Publish's topic) are written even when
 * empty, since their presence is what they say.
 */
#include <string.h>

#include "frame.h"
#include "lbus-limits.h"
#include "pbwire.h"
#include "wire.h"

/* The per-recipient header: frame length, Deliver tag and length, sub_id
 * (tag and varint), retained (two bytes). */
_Static_assert(LBUS_F_DELIVER_SUB_ID < 16 && LBUS_K_DELIVER < 16, "one-byte tags in the Deliver header");
_Static_assert(LBUS_FRAME_HEADER + 1 + 5 + 1 + 10 + 2 <= LBUS_WIRE_DELIVER_HDR_MAX,
	       "LBUS_WIRE_DELIVER_HDR_MAX");

/* A LEN field proto3 leaves out when empty. */
static size_t opt_len_field_size(uint32_t num, size_t len)
{
	return len ? lbus_pb_len_field_size(num, len) : 0;
}

size_t lbus_wire_sender_size(const struct lbus_wire_sender *s)
{
	return lbus_pb_varint_field_size(LBUS_F_SENDER_ID, s->id) +
	       opt_len_field_size(LBUS_F_SENDER_NAME, s->name_len) +
	       lbus_pb_varint_field_size(LBUS_F_SENDER_PID, s->pid) +
	       lbus_pb_varint_field_size(LBUS_F_SENDER_UID, s->uid) +
	       lbus_pb_varint_field_size(LBUS_F_SENDER_GID, s->gid);
}

size_t lbus_wire_sender_encode(uint8_t *out, const struct lbus_wire_sender *s)
{
	size_t n = lbus_pb_put_varint_field(out, LBUS_F_SENDER_ID, s->id);
	n += lbus_pb_put_bytes(out + n, LBUS_F_SENDER_NAME, s->name, s->name_len, true);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_SENDER_PID, s->pid);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_SENDER_UID, s->uid);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_SENDER_GID, s->gid);
	return n;
}

size_t lbus_wire_deliver_header(uint8_t *out, uint64_t sub_id, bool retained, size_t body_len, uint32_t fds)
{
	size_t deliver_len = lbus_pb_varint_field_size(LBUS_F_DELIVER_SUB_ID, sub_id) +
			     lbus_pb_varint_field_size(LBUS_F_DELIVER_RETAINED, retained) + body_len;
	size_t frame_len = lbus_pb_varint_field_size(LBUS_F_FRAME_FDS, fds) +
			   lbus_pb_len_field_size(LBUS_K_DELIVER, deliver_len);
	size_t n = LBUS_FRAME_HEADER;

	lbus_frame_put_len(out, (uint32_t)frame_len);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_FRAME_FDS, fds); /* Frame.fds first */
	n += lbus_pb_put_len_header(out + n, LBUS_K_DELIVER, deliver_len);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_DELIVER_SUB_ID, sub_id);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_DELIVER_RETAINED, retained ? 1 : 0);
	return n;
}

size_t lbus_wire_deliver_header_size(uint64_t sub_id, bool retained, size_t body_len, uint32_t fds)
{
	size_t fields = lbus_pb_varint_field_size(LBUS_F_DELIVER_SUB_ID, sub_id) +
			lbus_pb_varint_field_size(LBUS_F_DELIVER_RETAINED, retained);

	return LBUS_FRAME_HEADER + lbus_pb_varint_field_size(LBUS_F_FRAME_FDS, fds) +
	       lbus_pb_tag_len(LBUS_K_DELIVER) + lbus_pb_varint_len(fields + body_len) + fields;
}

size_t lbus_wire_deliver_body_size(size_t msg_len, size_t sender_len, uint64_t call_token)
{
	return lbus_pb_len_field_size(LBUS_F_DELIVER_PUBLISH, msg_len) +
	       lbus_pb_len_field_size(LBUS_F_DELIVER_SENDER, sender_len) +
	       lbus_pb_varint_field_size(LBUS_F_DELIVER_CALL_TOKEN, call_token);
}

size_t lbus_wire_deliver_body_encode(uint8_t *out, uint32_t what, const uint8_t *msg, size_t msg_len,
				     const uint8_t *sender, size_t sender_len, uint64_t call_token)
{
	size_t n = lbus_pb_put_bytes(out, what, msg, msg_len, false);
	n += lbus_pb_put_bytes(out + n, LBUS_F_DELIVER_SENDER, sender, sender_len, false);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_DELIVER_CALL_TOKEN, call_token);
	return n;
}

static size_t publish_body_size(size_t topic_len, size_t payload_len, bool retain)
{
	return lbus_pb_len_field_size(LBUS_F_PUBLISH_TOPIC, topic_len) +
	       opt_len_field_size(LBUS_F_PUBLISH_PAYLOAD, payload_len) +
	       lbus_pb_varint_field_size(LBUS_F_PUBLISH_RETAIN, retain);
}

size_t lbus_wire_publish_frame_size(size_t topic_len, size_t payload_len, bool retain, uint32_t req_id)
{
	size_t body = publish_body_size(topic_len, payload_len, retain);
	return LBUS_FRAME_HEADER + lbus_pb_len_field_size(LBUS_K_PUBLISH, body) +
	       lbus_pb_varint_field_size(LBUS_F_FRAME_REQ_ID, req_id);
}

size_t lbus_wire_publish_frame_encode(uint8_t *out, const char *topic, size_t topic_len, const void *payload,
				      size_t payload_len, bool retain, uint32_t req_id)
{
	size_t body = publish_body_size(topic_len, payload_len, retain);
	size_t frame_len = lbus_pb_len_field_size(LBUS_K_PUBLISH, body) +
			   lbus_pb_varint_field_size(LBUS_F_FRAME_REQ_ID, req_id);
	size_t n = LBUS_FRAME_HEADER;

	lbus_frame_put_len(out, (uint32_t)frame_len);
	n += lbus_pb_put_len_header(out + n, LBUS_K_PUBLISH, body);
	n += lbus_pb_put_bytes(out + n, LBUS_F_PUBLISH_TOPIC, topic, topic_len, false);
	n += lbus_pb_put_bytes(out + n, LBUS_F_PUBLISH_PAYLOAD, payload, payload_len, true);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_PUBLISH_RETAIN, retain ? 1 : 0);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_FRAME_REQ_ID, req_id);
	return n;
}

/* ---- CallResult ------------------------------------------------------------------ */

static size_t result_body_size(const struct lbus_wire_result *r)
{
	return lbus_pb_varint_field_size(LBUS_F_CALL_RESULT_CALL_ID, r->call_id) +
	       opt_len_field_size(LBUS_F_CALL_RESULT_PAYLOAD, r->payload_len) +
	       lbus_pb_varint_field_size(LBUS_F_CALL_RESULT_ERROR, r->error) +
	       opt_len_field_size(LBUS_F_CALL_RESULT_REASON, r->reason_len) +
	       opt_len_field_size(LBUS_F_CALL_RESULT_SENDER, r->sender_len) +
	       lbus_pb_varint_field_size(LBUS_F_CALL_RESULT_PAYLOAD_MEMFD, r->payload_memfd);
}

size_t lbus_wire_result_frame_size(const struct lbus_wire_result *r)
{
	return LBUS_FRAME_HEADER + lbus_pb_len_field_size(LBUS_K_RESULT, result_body_size(r)) +
	       lbus_pb_varint_field_size(LBUS_F_FRAME_REQ_ID, r->req_id) +
	       lbus_pb_varint_field_size(LBUS_F_FRAME_FDS, r->fds);
}

size_t lbus_wire_result_frame_encode(uint8_t *out, const struct lbus_wire_result *r)
{
	size_t n = LBUS_FRAME_HEADER;

	lbus_frame_put_len(out, (uint32_t)(lbus_wire_result_frame_size(r) - LBUS_FRAME_HEADER));
	n += lbus_pb_put_len_header(out + n, LBUS_K_RESULT, result_body_size(r));
	n += lbus_pb_put_varint_field(out + n, LBUS_F_CALL_RESULT_CALL_ID, r->call_id);
	n += lbus_pb_put_bytes(out + n, LBUS_F_CALL_RESULT_PAYLOAD, r->payload, r->payload_len, true);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_CALL_RESULT_ERROR, r->error);
	n += lbus_pb_put_bytes(out + n, LBUS_F_CALL_RESULT_REASON, r->reason, r->reason_len, true);
	n += lbus_pb_put_bytes(out + n, LBUS_F_CALL_RESULT_SENDER, r->sender, r->sender_len, true);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_CALL_RESULT_PAYLOAD_MEMFD, r->payload_memfd);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_FRAME_REQ_ID, r->req_id);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_FRAME_FDS, r->fds);
	return n;
}

/* ---- MonitorEvent ---------------------------------------------------------------- */

/* Bytes of the packed receivers (one varint each). */
static size_t receivers_len(const struct lbus_wire_monitor_event *ev)
{
	size_t n = 0;
	for (size_t i = 0; i < ev->nreceivers; i++)
		n += lbus_pb_varint_len(ev->receivers[i]);
	return n;
}

static size_t event_body_size(const struct lbus_wire_monitor_event *ev)
{
	return lbus_pb_varint_field_size(LBUS_F_MONITOR_EVENT_KIND, ev->kind) +
	       opt_len_field_size(LBUS_F_MONITOR_EVENT_SENDER, ev->sender_len) +
	       opt_len_field_size(LBUS_F_MONITOR_EVENT_RECEIVERS, receivers_len(ev)) +
	       opt_len_field_size(LBUS_F_MONITOR_EVENT_TOPIC, ev->topic_len) +
	       opt_len_field_size(LBUS_F_MONITOR_EVENT_NAME, ev->name_len) +
	       opt_len_field_size(LBUS_F_MONITOR_EVENT_PAYLOAD, ev->payload_len) +
	       lbus_pb_varint_field_size(LBUS_F_MONITOR_EVENT_CALL_ID, ev->call_token) +
	       lbus_pb_varint_field_size(LBUS_F_MONITOR_EVENT_RETAIN, ev->retain ? 1 : 0) +
	       lbus_pb_varint_field_size(LBUS_F_MONITOR_EVENT_ERROR, ev->error) +
	       lbus_pb_varint_field_size(LBUS_F_MONITOR_EVENT_FDS, ev->fds) +
	       lbus_pb_varint_field_size(LBUS_F_MONITOR_EVENT_MEMFD_SIZE, ev->memfd_size);
}

size_t lbus_wire_monitor_event_frame_size(const struct lbus_wire_monitor_event *ev)
{
	return LBUS_FRAME_HEADER + lbus_pb_len_field_size(LBUS_K_MONITOR_EVENT, event_body_size(ev));
}

size_t lbus_wire_monitor_event_frame_encode(uint8_t *out, const struct lbus_wire_monitor_event *ev)
{
	size_t body = event_body_size(ev), rlen = receivers_len(ev);
	size_t n = LBUS_FRAME_HEADER;

	lbus_frame_put_len(out, (uint32_t)lbus_pb_len_field_size(LBUS_K_MONITOR_EVENT, body));
	n += lbus_pb_put_len_header(out + n, LBUS_K_MONITOR_EVENT, body);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_MONITOR_EVENT_KIND, ev->kind);
	n += lbus_pb_put_bytes(out + n, LBUS_F_MONITOR_EVENT_SENDER, ev->sender, ev->sender_len, true);
	if (rlen) {
		n += lbus_pb_put_len_header(out + n, LBUS_F_MONITOR_EVENT_RECEIVERS, rlen);
		for (size_t i = 0; i < ev->nreceivers; i++)
			n += lbus_pb_put_varint(out + n, ev->receivers[i]);
	}
	n += lbus_pb_put_bytes(out + n, LBUS_F_MONITOR_EVENT_TOPIC, ev->topic, ev->topic_len, true);
	n += lbus_pb_put_bytes(out + n, LBUS_F_MONITOR_EVENT_NAME, ev->name, ev->name_len, true);
	n += lbus_pb_put_bytes(out + n, LBUS_F_MONITOR_EVENT_PAYLOAD, ev->payload, ev->payload_len, true);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_MONITOR_EVENT_CALL_ID, ev->call_token);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_MONITOR_EVENT_RETAIN, ev->retain ? 1 : 0);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_MONITOR_EVENT_ERROR, ev->error);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_MONITOR_EVENT_FDS, ev->fds);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_MONITOR_EVENT_MEMFD_SIZE, ev->memfd_size);
	return n;
}

/* ---- any generated frame ------------------------------------------------------- */

size_t lbus_frame_packed_size(const Lbus__Frame *f)
{
	return LBUS_FRAME_HEADER + lbus__frame__get_packed_size(f);
}

size_t lbus_frame_pack(const Lbus__Frame *f, uint8_t *out)
{
	size_t len = lbus__frame__pack(f, out + LBUS_FRAME_HEADER);
	lbus_frame_put_len(out, (uint32_t)len);
	return LBUS_FRAME_HEADER + len;
}
