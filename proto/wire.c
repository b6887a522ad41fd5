/* SPDX-License-Identifier: MIT */
/*
 * Allocation-free codecs for the hot messages (see wire.h).
 *
 * A Deliver frame on the wire, as the broker writes it:
 *
 *   [len:4][0x4a deliver_len][0x08 sub_id][0x38 01]   per recipient (header)
 *   [0x12|0x1a|0x22 msg_len msg...][0x2a sender_len sender...][0x30 token]
 *                                                     shared body
 *
 * Field order does not matter to protobuf decoders, so the per-recipient
 * fields (1 and 7) go first and the body is reused verbatim.
 */
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "lbus-limits.h"
#include "pbwire.h"
#include "wire.h"

static const char *const kind_names[LBUS_K_MAX + 1] = {
	[LBUS_K_NONE] = "unknown",
	[LBUS_K_HELLO] = "hello",
	[LBUS_K_WELCOME] = "welcome",
	[LBUS_K_ERROR] = "error",
	[LBUS_K_PING] = "ping",
	[LBUS_K_PONG] = "pong",
	[LBUS_K_SUBSCRIBE] = "subscribe",
	[LBUS_K_UNSUBSCRIBE] = "unsubscribe",
	[LBUS_K_PUBLISH] = "publish",
	[LBUS_K_DELIVER] = "deliver",
	[LBUS_K_TAKE_NAME] = "take_name",
	[LBUS_K_RELEASE_NAME] = "release_name",
	[LBUS_K_SEND] = "send",
	[LBUS_K_OK] = "ok",
	[LBUS_K_CALL] = "call",
	[LBUS_K_REPLY] = "reply",
	[LBUS_K_RESULT] = "result",
	[LBUS_K_DROPPED] = "dropped",
	[LBUS_K_QUERY_NAME] = "query_name",
	[LBUS_K_LIST] = "list",
	[LBUS_K_CLIENT_LIST] = "client_list",
	[LBUS_K_STATS] = "stats",
	[LBUS_K_STATS_REPLY] = "stats_reply",
	[LBUS_K_MONITOR] = "monitor",
	[LBUS_K_MONITOR_EVENT] = "monitor_event",
};

const char *lbus_kind_name(uint32_t kind)
{
	return kind <= LBUS_K_MAX ? kind_names[kind] : kind_names[LBUS_K_NONE];
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
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	size_t first;
	int ret;

	memset(out, 0, sizeof(*out));
	first = scan_first_kind(frame, len, out);
	if (first == len && first)
		return 0;
	lbus_pb_reader_init(&r, frame + first, len - first);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		if (f.num >= 1 && f.num <= LBUS_K_MAX) {
			if (f.type != LBUS_PB_LEN || out->kind)
				return -EPROTO;
			out->kind = f.num;
			out->body = f.data;
			out->body_len = f.len;
		} else if (f.num == LBUS_F_REQ_ID || f.num == LBUS_F_FDS) {
			if (f.type != LBUS_PB_VARINT)
				return -EPROTO;
			if (f.num == LBUS_F_REQ_ID)
				out->req_id = (uint32_t)f.u;
			else
				out->fds = (uint32_t)f.u;
		}
	}
	return ret;
}

/* A LEN field of a known message: the wire type must be LEN. */
#define EXPECT_LEN(f)                                                                                                 \
	do {                                                                                                          \
		if ((f).type != LBUS_PB_LEN)                                                                          \
			return -EPROTO;                                                                               \
	} while (0)
#define EXPECT_VARINT(f)                                                                                              \
	do {                                                                                                          \
		if ((f).type != LBUS_PB_VARINT)                                                                       \
			return -EPROTO;                                                                               \
	} while (0)

/* A LEN field with a one-byte tag at *p: advance past it; false if absent
 * or truncated. */
static bool take_len_field(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **data,
			   size_t *len)
{
	uint64_t v;
	size_t n;

	if (*p >= end || **p != tag)
		return false;
	n = lbus_pb_get_varint(*p + 1, end, &v);
	if (!n || v > (uint64_t)(end - *p - 1 - (ptrdiff_t)n))
		return false;
	*data = *p + 1 + n;
	*len = (size_t)v;
	*p = *data + v;
	return true;
}

/*
 * Fast path for the layout every encoder writes (topic, payload if any,
 * retain 1 if set, nothing else). false: some other layout, decode it with
 * the generic loop.
 */
static bool publish_decode_fast(const uint8_t *body, size_t len, struct lbus_wire_publish *out)
{
	const uint8_t *p = body, *end = body + len, *data;

	if (!take_len_field(&p, end, 0x0a, &data, &out->topic_len))
		return false;
	out->topic = (const char *)data;
	if (take_len_field(&p, end, 0x12, &out->payload, &out->payload_len) && p == end)
		return true;
	if (end - p == 2 && p[0] == 0x18 && p[1] == 1) {
		out->retain = true;
		return true;
	}
	return p == end;
}

int lbus_wire_publish_decode(const uint8_t *body, size_t len, struct lbus_wire_publish *out)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	int ret;

	memset(out, 0, sizeof(*out));
	if (publish_decode_fast(body, len, out))
		return 0;
	memset(out, 0, sizeof(*out));
	lbus_pb_reader_init(&r, body, len);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		switch (f.num) {
		case 1:
			EXPECT_LEN(f);
			out->topic = (const char *)f.data;
			out->topic_len = f.len;
			break;
		case 2:
			EXPECT_LEN(f);
			out->payload = f.data;
			out->payload_len = f.len;
			break;
		case 3:
			EXPECT_VARINT(f);
			out->retain = f.u != 0;
			break;
		}
	}
	return ret;
}

int lbus_wire_send_decode(const uint8_t *body, size_t len, struct lbus_wire_send *out)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	int ret;

	memset(out, 0, sizeof(*out));
	lbus_pb_reader_init(&r, body, len);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		if (f.num == 1 || f.num == 2)
			EXPECT_LEN(f);
		if (f.num == 1) {
			out->name = (const char *)f.data;
			out->name_len = f.len;
		} else if (f.num == 2) {
			out->payload = f.data;
			out->payload_len = f.len;
		}
	}
	return ret;
}

int lbus_wire_call_decode(const uint8_t *body, size_t len, struct lbus_wire_call *out)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	int ret;

	memset(out, 0, sizeof(*out));
	lbus_pb_reader_init(&r, body, len);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		switch (f.num) {
		case 1:
			EXPECT_LEN(f);
			out->target = (const char *)f.data;
			out->target_len = f.len;
			break;
		case 2:
			EXPECT_LEN(f);
			out->payload = f.data;
			out->payload_len = f.len;
			break;
		case 3:
			EXPECT_VARINT(f);
			out->call_id = f.u;
			break;
		case 4:
			EXPECT_VARINT(f);
			out->timeout_ms = (uint32_t)f.u;
			break;
		}
	}
	return ret;
}

/*
 * Fast paths for the layouts the broker writes: fields in ascending wire
 * order, each at most once, one-byte tags. opt_varint()/opt_len() take the
 * field if it comes next: 1 taken, 0 absent, -1 malformed. A decoder that
 * meets anything else falls back to its generic loop, which accepts every
 * valid encoding, so both give the same result for any input.
 */
static int opt_varint(const uint8_t **p, const uint8_t *end, uint8_t tag, uint64_t *v)
{
	size_t n;

	if (*p >= end || **p != tag)
		return 0;
	n = lbus_pb_get_varint(*p + 1, end, v);
	if (!n)
		return -1;
	*p += 1 + n;
	return 1;
}

static int opt_len(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **data, size_t *len)
{
	return take_len_field(p, end, tag, data, len) ? 1 : (*p < end && **p == tag ? -1 : 0);
}

static bool sender_decode_fast(const uint8_t *p, const uint8_t *end, struct lbus_wire_sender *out)
{
	const uint8_t *name;
	uint64_t v;
	int r;

	if ((r = opt_varint(&p, end, 0x08, &v)) < 0)
		return false;
	if (r)
		out->id = v;
	if ((r = opt_len(&p, end, 0x12, &name, &out->name_len)) < 0)
		return false;
	if (r)
		out->name = (const char *)name;
	if ((r = opt_varint(&p, end, 0x18, &v)) < 0)
		return false;
	if (r)
		out->pid = (uint32_t)v;
	if ((r = opt_varint(&p, end, 0x20, &v)) < 0)
		return false;
	if (r)
		out->uid = (uint32_t)v;
	if ((r = opt_varint(&p, end, 0x28, &v)) < 0)
		return false;
	if (r)
		out->gid = (uint32_t)v;
	return p == end;
}

int lbus_wire_sender_decode(const uint8_t *body, size_t len, struct lbus_wire_sender *out)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	int ret;

	memset(out, 0, sizeof(*out));
	if (sender_decode_fast(body, body + len, out))
		return 0;
	memset(out, 0, sizeof(*out));
	lbus_pb_reader_init(&r, body, len);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		if (f.num == 2) {
			EXPECT_LEN(f);
			out->name = (const char *)f.data;
			out->name_len = f.len;
			continue;
		}
		if (f.num >= 1 && f.num <= 5)
			EXPECT_VARINT(f);
		switch (f.num) {
		case 1:
			out->id = f.u;
			break;
		case 3:
			out->pid = (uint32_t)f.u;
			break;
		case 4:
			out->uid = (uint32_t)f.u;
			break;
		case 5:
			out->gid = (uint32_t)f.u;
			break;
		}
	}
	return ret;
}

size_t lbus_wire_sender_size(const struct lbus_wire_sender *s)
{
	return lbus_pb_varint_field_size(1, s->id) + (s->name_len ? lbus_pb_len_field_size(2, s->name_len) : 0) +
	       lbus_pb_varint_field_size(3, s->pid) + lbus_pb_varint_field_size(4, s->uid) +
	       lbus_pb_varint_field_size(5, s->gid);
}

size_t lbus_wire_sender_encode(uint8_t *out, const struct lbus_wire_sender *s)
{
	size_t n = lbus_pb_put_varint_field(out, 1, s->id);
	n += lbus_pb_put_bytes(out + n, 2, s->name, s->name_len, true);
	n += lbus_pb_put_varint_field(out + n, 3, s->pid);
	n += lbus_pb_put_varint_field(out + n, 4, s->uid);
	n += lbus_pb_put_varint_field(out + n, 5, s->gid);
	return n;
}

/* sub_id, retained (the per-recipient header), then the shared body: the
 * message, the sender, the call token. */
static bool deliver_decode_fast(const uint8_t *p, const uint8_t *end, struct lbus_wire_deliver *out)
{
	const uint8_t *sender;
	size_t sender_len;
	uint64_t v;
	int r;

	if (opt_varint(&p, end, 0x08, &out->sub_id) < 0)
		return false;
	if ((r = opt_varint(&p, end, 0x38, &v)) < 0)
		return false;
	out->retained = r && v;
	if (p >= end || (*p != 0x12 && *p != 0x1a && *p != 0x22))
		return false;
	out->what = *p >> 3;
	if (opt_len(&p, end, *p, &out->msg, &out->msg_len) <= 0)
		return false;
	if ((r = opt_len(&p, end, 0x2a, &sender, &sender_len)) < 0)
		return false;
	if (r && !sender_decode_fast(sender, sender + sender_len, &out->sender))
		return false;
	if (opt_varint(&p, end, 0x30, &out->call_token) < 0)
		return false;
	return p == end;
}

int lbus_wire_deliver_decode(const uint8_t *body, size_t len, struct lbus_wire_deliver *out)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	int ret;

	memset(out, 0, sizeof(*out));
	if (deliver_decode_fast(body, body + len, out))
		return 0;
	memset(out, 0, sizeof(*out));
	lbus_pb_reader_init(&r, body, len);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		switch (f.num) {
		case 1:
			EXPECT_VARINT(f);
			out->sub_id = f.u;
			break;
		case LBUS_D_PUBLISH:
		case LBUS_D_SEND:
		case LBUS_D_CALL:
			EXPECT_LEN(f);
			if (out->what)
				return -EPROTO;
			out->what = f.num;
			out->msg = f.data;
			out->msg_len = f.len;
			break;
		case 5:
			EXPECT_LEN(f);
			ret = lbus_wire_sender_decode(f.data, f.len, &out->sender);
			if (ret < 0)
				return ret;
			break;
		case 6:
			EXPECT_VARINT(f);
			out->call_token = f.u;
			break;
		case 7:
			EXPECT_VARINT(f);
			out->retained = f.u != 0;
			break;
		}
	}
	return ret;
}

size_t lbus_wire_deliver_header(uint8_t *out, uint64_t sub_id, bool retained, size_t body_len)
{
	size_t deliver_len = lbus_pb_varint_field_size(1, sub_id) + (retained ? 2 : 0) + body_len;
	size_t frame_len = lbus_pb_len_field_size(LBUS_K_DELIVER, deliver_len);
	size_t n = LBUS_FRAME_HEADER;

	lbus_frame_put_len(out, (uint32_t)frame_len);
	n += lbus_pb_put_len_header(out + n, LBUS_K_DELIVER, deliver_len);
	n += lbus_pb_put_varint_field(out + n, 1, sub_id);
	n += lbus_pb_put_varint_field(out + n, 7, retained ? 1 : 0);
	return n;
}

size_t lbus_wire_deliver_header_size(uint64_t sub_id, bool retained, size_t body_len)
{
	size_t fields = lbus_pb_varint_field_size(1, sub_id) + (retained ? 2 : 0);

	return LBUS_FRAME_HEADER + lbus_pb_tag_len(LBUS_K_DELIVER) + lbus_pb_varint_len(fields + body_len) +
	       fields;
}

size_t lbus_wire_deliver_body_size(size_t msg_len, size_t sender_len, uint64_t call_token)
{
	return lbus_pb_len_field_size(LBUS_D_PUBLISH, msg_len) + lbus_pb_len_field_size(5, sender_len) +
	       lbus_pb_varint_field_size(6, call_token);
}

size_t lbus_wire_deliver_body_encode(uint8_t *out, uint32_t what, const uint8_t *msg, size_t msg_len,
				     const uint8_t *sender, size_t sender_len, uint64_t call_token)
{
	size_t n = lbus_pb_put_bytes(out, what, msg, msg_len, false);
	n += lbus_pb_put_bytes(out + n, 5, sender, sender_len, false);
	n += lbus_pb_put_varint_field(out + n, 6, call_token);
	return n;
}

static size_t publish_body_size(size_t topic_len, size_t payload_len, bool retain)
{
	return lbus_pb_len_field_size(1, topic_len) + (payload_len ? lbus_pb_len_field_size(2, payload_len) : 0) +
	       (retain ? 2 : 0);
}

size_t lbus_wire_publish_frame_size(size_t topic_len, size_t payload_len, bool retain, uint32_t req_id)
{
	size_t body = publish_body_size(topic_len, payload_len, retain);
	return LBUS_FRAME_HEADER + lbus_pb_len_field_size(LBUS_K_PUBLISH, body) +
	       lbus_pb_varint_field_size(LBUS_F_REQ_ID, req_id);
}

size_t lbus_wire_publish_frame_encode(uint8_t *out, const char *topic, size_t topic_len, const void *payload,
				      size_t payload_len, bool retain, uint32_t req_id)
{
	size_t body = publish_body_size(topic_len, payload_len, retain);
	size_t frame_len = lbus_pb_len_field_size(LBUS_K_PUBLISH, body) +
			   lbus_pb_varint_field_size(LBUS_F_REQ_ID, req_id);
	size_t n = LBUS_FRAME_HEADER;

	lbus_frame_put_len(out, (uint32_t)frame_len);
	n += lbus_pb_put_len_header(out + n, LBUS_K_PUBLISH, body);
	n += lbus_pb_put_bytes(out + n, 1, topic, topic_len, false);
	n += lbus_pb_put_bytes(out + n, 2, payload, payload_len, true);
	n += lbus_pb_put_varint_field(out + n, 3, retain ? 1 : 0);
	n += lbus_pb_put_varint_field(out + n, LBUS_F_REQ_ID, req_id);
	return n;
}

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
