/* SPDX-License-Identifier: MIT */
/*
 * Decoding the messages that are not left to protobuf-c (see wire.h): one
 * table per message, read by pbwire.h's decoder, and the frame scanner in
 * front of them all. A table lists its fields in the order our encoders
 * write them (wire-encode.c), which is the order the decoder's in-order
 * pass expects (the Deliver table has the per-recipient sub_id and retained
 * first, then the shared body); LBUS_PB_IN_ORDER_FN compiles that pass for
 * each table, so the fast path costs what the hand-written one did.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "pbwire.h"
#include "wire.h"

const char *lbus_kind_name(uint32_t kind)
{
	const ProtobufCFieldDescriptor *f = NULL;

	if (kind >= 1 && kind <= LBUS_K_MAX)
		f = protobuf_c_message_descriptor_get_field(&lbus__frame__descriptor, (unsigned)kind);
	return f ? f->name : "unknown";
}

/* ---- the tables ------------------------------------------------------------------ */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(T, num, ptr, len)                                                                              \
	{                                                                                                    \
		(num), (num), LBUS_PB_S_BYTES, offsetof(T, ptr), offsetof(T, len), 0, NULL                   \
	}
#define SCALAR(T, num, store, v)                                                                             \
	{                                                                                                    \
		(num), (num), (store), offsetof(T, v), 0, 0, NULL                                            \
	}
#define ONEOF(T, first, last, c, ptr, len)                                                                   \
	{                                                                                                    \
		(first), (last), LBUS_PB_S_ONEOF, offsetof(T, ptr), offsetof(T, len), offsetof(T, c), NULL   \
	}
#define MSG(T, num, v, sub)                                                                                  \
	{                                                                                                    \
		(num), (num), LBUS_PB_S_MSG, offsetof(T, v), 0, 0, &(sub)                                    \
	}
#define DESC(T, proto, fields, in_order)                                                                     \
	{                                                                                                    \
		&(proto), sizeof(T), ARRAY_LEN(fields), (fields), (in_order)                                 \
	}

static bool frame_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc frame_fields[] = {
    ONEOF(struct lbus_wire_frame, 1, LBUS_K_MAX, kind, body, body_len),
    SCALAR(struct lbus_wire_frame, LBUS_F_FRAME_REQ_ID, LBUS_PB_S_U32, req_id),
    SCALAR(struct lbus_wire_frame, LBUS_F_FRAME_FDS, LBUS_PB_S_U32, fds),
};
const struct lbus_pb_msg_desc lbus_wire_frame_desc =
    DESC(struct lbus_wire_frame, lbus__frame__descriptor, frame_fields, frame_in_order);
LBUS_PB_IN_ORDER_FN(frame_in_order, lbus_wire_frame_desc)

static bool publish_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc publish_fields[] = {
    BYTES(struct lbus_wire_publish, LBUS_F_PUBLISH_TOPIC, topic, topic_len),
    BYTES(struct lbus_wire_publish, LBUS_F_PUBLISH_PAYLOAD, payload, payload_len),
    SCALAR(struct lbus_wire_publish, LBUS_F_PUBLISH_RETAIN, LBUS_PB_S_BOOL, retain),
    SCALAR(struct lbus_wire_publish, LBUS_F_PUBLISH_PAYLOAD_MEMFD, LBUS_PB_S_BOOL, payload_memfd),
};
const struct lbus_pb_msg_desc lbus_wire_publish_desc =
    DESC(struct lbus_wire_publish, lbus__publish__descriptor, publish_fields, publish_in_order);
LBUS_PB_IN_ORDER_FN(publish_in_order, lbus_wire_publish_desc)

static bool send_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc send_fields[] = {
    BYTES(struct lbus_wire_send, LBUS_F_SEND_NAME, name, name_len),
    BYTES(struct lbus_wire_send, LBUS_F_SEND_PAYLOAD, payload, payload_len),
    SCALAR(struct lbus_wire_send, LBUS_F_SEND_PAYLOAD_MEMFD, LBUS_PB_S_BOOL, payload_memfd),
};
const struct lbus_pb_msg_desc lbus_wire_send_desc =
    DESC(struct lbus_wire_send, lbus__send__descriptor, send_fields, send_in_order);
LBUS_PB_IN_ORDER_FN(send_in_order, lbus_wire_send_desc)

static bool call_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc call_fields[] = {
    BYTES(struct lbus_wire_call, LBUS_F_CALL_TARGET, target, target_len),
    BYTES(struct lbus_wire_call, LBUS_F_CALL_PAYLOAD, payload, payload_len),
    SCALAR(struct lbus_wire_call, LBUS_F_CALL_CALL_ID, LBUS_PB_S_U64, call_id),
    SCALAR(struct lbus_wire_call, LBUS_F_CALL_TIMEOUT_MS, LBUS_PB_S_U32, timeout_ms),
    SCALAR(struct lbus_wire_call, LBUS_F_CALL_PAYLOAD_MEMFD, LBUS_PB_S_BOOL, payload_memfd),
};
const struct lbus_pb_msg_desc lbus_wire_call_desc =
    DESC(struct lbus_wire_call, lbus__call__descriptor, call_fields, call_in_order);
LBUS_PB_IN_ORDER_FN(call_in_order, lbus_wire_call_desc)

static bool sender_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc sender_fields[] = {
    SCALAR(struct lbus_wire_sender, LBUS_F_SENDER_ID, LBUS_PB_S_U64, id),
    BYTES(struct lbus_wire_sender, LBUS_F_SENDER_NAME, name, name_len),
    SCALAR(struct lbus_wire_sender, LBUS_F_SENDER_PID, LBUS_PB_S_U32, pid),
    SCALAR(struct lbus_wire_sender, LBUS_F_SENDER_UID, LBUS_PB_S_U32, uid),
    SCALAR(struct lbus_wire_sender, LBUS_F_SENDER_GID, LBUS_PB_S_U32, gid),
};
const struct lbus_pb_msg_desc lbus_wire_sender_desc =
    DESC(struct lbus_wire_sender, lbus__sender__descriptor, sender_fields, sender_in_order);
LBUS_PB_IN_ORDER_FN(sender_in_order, lbus_wire_sender_desc)

/* Deliver's publish, send and call are not a oneof in lbus.proto, but at
 * most one may be set: the decoder treats them as one. */
static bool deliver_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc deliver_fields[] = {
    SCALAR(struct lbus_wire_deliver, LBUS_F_DELIVER_SUB_ID, LBUS_PB_S_U64, sub_id),
    SCALAR(struct lbus_wire_deliver, LBUS_F_DELIVER_RETAINED, LBUS_PB_S_BOOL, retained),
    ONEOF(struct lbus_wire_deliver, LBUS_F_DELIVER_PUBLISH, LBUS_F_DELIVER_PUBLISH, what, msg, msg_len),
    ONEOF(struct lbus_wire_deliver, LBUS_F_DELIVER_SEND, LBUS_F_DELIVER_SEND, what, msg, msg_len),
    ONEOF(struct lbus_wire_deliver, LBUS_F_DELIVER_CALL, LBUS_F_DELIVER_CALL, what, msg, msg_len),
    MSG(struct lbus_wire_deliver, LBUS_F_DELIVER_SENDER, sender, lbus_wire_sender_desc),
    SCALAR(struct lbus_wire_deliver, LBUS_F_DELIVER_CALL_TOKEN, LBUS_PB_S_U64, call_token),
};
const struct lbus_pb_msg_desc lbus_wire_deliver_desc =
    DESC(struct lbus_wire_deliver, lbus__deliver__descriptor, deliver_fields, deliver_in_order);
LBUS_PB_IN_ORDER_FN(deliver_in_order, lbus_wire_deliver_desc)

static bool reply_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc reply_fields[] = {
    SCALAR(struct lbus_wire_reply, LBUS_F_REPLY_CALL_TOKEN, LBUS_PB_S_U64, call_token),
    BYTES(struct lbus_wire_reply, LBUS_F_REPLY_PAYLOAD, payload, payload_len),
    SCALAR(struct lbus_wire_reply, LBUS_F_REPLY_ERROR, LBUS_PB_S_U32, error),
    BYTES(struct lbus_wire_reply, LBUS_F_REPLY_REASON, reason, reason_len),
    SCALAR(struct lbus_wire_reply, LBUS_F_REPLY_PAYLOAD_MEMFD, LBUS_PB_S_BOOL, payload_memfd),
};
const struct lbus_pb_msg_desc lbus_wire_reply_desc =
    DESC(struct lbus_wire_reply, lbus__reply__descriptor, reply_fields, reply_in_order);
LBUS_PB_IN_ORDER_FN(reply_in_order, lbus_wire_reply_desc)

static bool ok_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc ok_fields[] = {
    SCALAR(struct lbus_wire_ok, LBUS_F_OK_REQUEST, LBUS_PB_S_U32, request),
    SCALAR(struct lbus_wire_ok, LBUS_F_OK_OWNER, LBUS_PB_S_U64, owner),
};
const struct lbus_pb_msg_desc lbus_wire_ok_desc =
    DESC(struct lbus_wire_ok, lbus__ok__descriptor, ok_fields, ok_in_order);
LBUS_PB_IN_ORDER_FN(ok_in_order, lbus_wire_ok_desc)

static bool dropped_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc dropped_fields[] = {
    SCALAR(struct lbus_wire_dropped, LBUS_F_DROPPED_SUB_ID, LBUS_PB_S_U64, sub_id),
    SCALAR(struct lbus_wire_dropped, LBUS_F_DROPPED_COUNT, LBUS_PB_S_U64, count),
};
const struct lbus_pb_msg_desc lbus_wire_dropped_desc =
    DESC(struct lbus_wire_dropped, lbus__dropped__descriptor, dropped_fields, dropped_in_order);
LBUS_PB_IN_ORDER_FN(dropped_in_order, lbus_wire_dropped_desc)

/* Ping and Pong: { uint64 token = 1; } */
struct token {
	uint64_t token;
};

static bool ping_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc ping_fields[] = {
    SCALAR(struct token, LBUS_F_PING_TOKEN, LBUS_PB_S_U64, token),
};
const struct lbus_pb_msg_desc lbus_wire_ping_desc =
    DESC(struct token, lbus__ping__descriptor, ping_fields, ping_in_order);
LBUS_PB_IN_ORDER_FN(ping_in_order, lbus_wire_ping_desc)

static bool pong_in_order(const uint8_t *p, size_t len, void *out);
static const struct lbus_pb_field_desc pong_fields[] = {
    SCALAR(struct token, LBUS_F_PONG_TOKEN, LBUS_PB_S_U64, token),
};
const struct lbus_pb_msg_desc lbus_wire_pong_desc =
    DESC(struct token, lbus__pong__descriptor, pong_fields, pong_in_order);
LBUS_PB_IN_ORDER_FN(pong_in_order, lbus_wire_pong_desc)

const struct lbus_pb_msg_desc *const lbus_wire_descs[] = {
    &lbus_wire_frame_desc,   &lbus_wire_publish_desc, &lbus_wire_send_desc,  &lbus_wire_call_desc,
    &lbus_wire_sender_desc,  &lbus_wire_deliver_desc, &lbus_wire_reply_desc, &lbus_wire_ok_desc,
    &lbus_wire_dropped_desc, &lbus_wire_ping_desc,    &lbus_wire_pong_desc,  NULL,
};

/* ---- frames ---------------------------------------------------------------------- */

/* The schema of the message a frame of this kind carries, or NULL. */
static const ProtobufCMessageDescriptor *kind_descriptor(uint32_t kind)
{
	const ProtobufCFieldDescriptor *fd = NULL;

	if (kind >= 1 && kind <= LBUS_K_MAX)
		fd = protobuf_c_message_descriptor_get_field(&lbus__frame__descriptor, (unsigned)kind);
	return fd && fd->type == PROTOBUF_C_TYPE_MESSAGE ? fd->descriptor : NULL;
}

/* Nesting the check follows at most; lbus.proto nests two deep. */
#define STRINGS_MAX_DEPTH 8

static bool strings_exact(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;

	lbus_pb_reader_init(&r, p, len);
	while (lbus_pb_next(&r, &f) > 0) {
		const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, f.num);

		if (!fd || f.type != LBUS_PB_LEN)
			continue;
		if (fd->type == PROTOBUF_C_TYPE_STRING && memchr(f.data, 0, f.len))
			return false;
		if (fd->type == PROTOBUF_C_TYPE_MESSAGE && depth < STRINGS_MAX_DEPTH &&
		    !strings_exact(fd->descriptor, f.data, f.len, depth + 1))
			return false;
	}
	return true;
}

bool lbus_wire_strings_exact(uint32_t kind, const uint8_t *body, size_t len)
{
	const ProtobufCMessageDescriptor *d = kind_descriptor(kind);

	return !d || strings_exact(d, body, len, 0);
}

static bool has_unknown(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;

	lbus_pb_reader_init(&r, p, len);
	while (lbus_pb_next(&r, &f) > 0) {
		const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, f.num);

		if (!fd)
			return true;
		if (fd->type == PROTOBUF_C_TYPE_MESSAGE && f.type == LBUS_PB_LEN &&
		    depth < STRINGS_MAX_DEPTH && has_unknown(fd->descriptor, f.data, f.len, depth + 1))
			return true;
	}
	return false;
}

bool lbus_wire_has_unknown_fields(uint32_t kind, const uint8_t *body, size_t len)
{
	const ProtobufCMessageDescriptor *d = kind_descriptor(kind);

	return d && has_unknown(d, body, len, 0);
}

size_t lbus_wire_drop_unknown_fields(uint32_t kind, const uint8_t *body, size_t len, uint8_t *out)
{
	const ProtobufCMessageDescriptor *d = kind_descriptor(kind);
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	const uint8_t *at = body;
	size_t n = 0;

	if (!d) {
		memcpy(out, body, len);
		return len;
	}
	lbus_pb_reader_init(&r, body, len);
	while (lbus_pb_next(&r, &f) > 0) {
		if (protobuf_c_message_descriptor_get_field(d, f.num)) {
			memcpy(out + n, at, (size_t)(r.p - at));
			n += (size_t)(r.p - at);
		}
		at = r.p;
	}
	/* not valid protobuf from here: keep the rest for the decoder to refuse */
	memcpy(out + n, at, (size_t)(body + len - at));
	return n + (size_t)(body + len - at);
}

/*
 * Fast path: a frame almost always starts with its kind as a one-byte LEN
 * tag (kinds 1..15). Take it without the generic loop; the loop then checks
 * the rest (req_id, a second kind) exactly as for any other layout.
 * Returns the bytes taken (0: not this layout, the loop does it all).
 */
static size_t scan_first_kind(const uint8_t *frame, size_t len, struct lbus_wire_frame *out)
{
	uint64_t body_len;
	size_t n;

	if (len < 2 || (frame[0] & 7) != LBUS_PB_LEN || frame[0] >> 3 == 0 || frame[0] & 0x80)
		return 0;
	n = lbus_pb_get_varint(frame + 1, frame + len, &body_len);
	if (!n || body_len > len - 1 - n)
		return 0;
	out->kind = frame[0] >> 3;
	out->body = frame + 1 + n;
	out->body_len = (size_t)body_len;
	return 1 + n + (size_t)body_len;
}

int lbus_wire_frame_scan(const uint8_t *frame, size_t len, struct lbus_wire_frame *out)
{
	size_t first;

	memset(out, 0, sizeof(*out));
	first = scan_first_kind(frame, len, out);
	if (first == len && first)
		return 0;
	return lbus_pb_decode_fields(&lbus_wire_frame_desc, frame + first, len - first, out);
}

/* ---- messages -------------------------------------------------------------------- */

int lbus_wire_publish_decode(const uint8_t *body, size_t len, struct lbus_wire_publish *out)
{
	return lbus_pb_decode_inline(&lbus_wire_publish_desc, body, len, out);
}

int lbus_wire_send_decode(const uint8_t *body, size_t len, struct lbus_wire_send *out)
{
	return lbus_pb_decode_inline(&lbus_wire_send_desc, body, len, out);
}

int lbus_wire_call_decode(const uint8_t *body, size_t len, struct lbus_wire_call *out)
{
	return lbus_pb_decode_inline(&lbus_wire_call_desc, body, len, out);
}

int lbus_wire_deliver_decode(const uint8_t *body, size_t len, struct lbus_wire_deliver *out)
{
	return lbus_pb_decode_inline(&lbus_wire_deliver_desc, body, len, out);
}

int lbus_wire_reply_decode(const uint8_t *body, size_t len, struct lbus_wire_reply *out)
{
	return lbus_pb_decode_inline(&lbus_wire_reply_desc, body, len, out);
}

int lbus_wire_ok_decode(const uint8_t *body, size_t len, struct lbus_wire_ok *out)
{
	return lbus_pb_decode_inline(&lbus_wire_ok_desc, body, len, out);
}

int lbus_wire_dropped_decode(const uint8_t *body, size_t len, struct lbus_wire_dropped *out)
{
	return lbus_pb_decode_inline(&lbus_wire_dropped_desc, body, len, out);
}

int lbus_wire_ping_decode(const uint8_t *body, size_t len, uint64_t *token)
{
	struct token t;
	int ret = lbus_pb_decode_inline(&lbus_wire_ping_desc, body, len, &t);

	*token = t.token;
	return ret;
}

int lbus_wire_pong_decode(const uint8_t *body, size_t len, uint64_t *token)
{
	struct token t;
	int ret = lbus_pb_decode_inline(&lbus_wire_pong_desc, body, len, &t);

	*token = t.token;
	return ret;
}
