/* SPDX-License-Identifier: MIT */
/*
 * Allocation-free codecs for the messages on the hot path, built on
 * pbwire.h, plus helpers to pack any generated Lbus__Frame with its length.
 *
 * The broker never decodes a payload: it scans the Frame to find the kind,
 * scans a Publish/Send/Call for the routing fields, and forwards the original
 * message bytes inside a Deliver. A Deliver is written as a small per-recipient
 * header (length, Deliver tag, sub_id, retained) followed by a body shared by
 * every recipient (message, sender, call token), encoded once.
 *
 * All decoders return 0 or -EPROTO, and point into the input (no copies,
 * strings are NOT NUL-terminated). Unknown fields are skipped.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lbus.pb-c.h"

/* Frame.kind field numbers, as in lbus.proto. */
enum lbus_kind {
	LBUS_K_NONE = 0,
	LBUS_K_HELLO = 1,
	LBUS_K_WELCOME = 2,
	LBUS_K_ERROR = 3,
	LBUS_K_PING = 4,
	LBUS_K_PONG = 5,
	LBUS_K_SUBSCRIBE = 6,
	LBUS_K_UNSUBSCRIBE = 7,
	LBUS_K_PUBLISH = 8,
	LBUS_K_DELIVER = 9,
	LBUS_K_TAKE_NAME = 10,
	LBUS_K_RELEASE_NAME = 11,
	LBUS_K_SEND = 12,
	LBUS_K_OK = 13,
	LBUS_K_CALL = 14,
	LBUS_K_REPLY = 15,
	LBUS_K_RESULT = 16,
	LBUS_K_DROPPED = 17,
	LBUS_K_QUERY_NAME = 18,
	LBUS_K_LIST = 19,
	LBUS_K_CLIENT_LIST = 20,
	LBUS_K_STATS = 21,
	LBUS_K_STATS_REPLY = 22,
	LBUS_K_MONITOR = 23,
	LBUS_K_MONITOR_EVENT = 24,
	LBUS_K_MAX = 24,
};

#define LBUS_F_REQ_ID 100u
#define LBUS_F_FDS 101u

/* Deliver field numbers of the three message kinds it can carry. */
enum lbus_deliver_what {
	LBUS_D_PUBLISH = 2,
	LBUS_D_SEND = 3,
	LBUS_D_CALL = 4,
};

/* Name of a kind for error messages and logs ("publish"), "unknown" if none. */
const char *lbus_kind_name(uint32_t kind);

struct lbus_wire_frame {
	uint32_t kind;         /* LBUS_K_*, LBUS_K_NONE if no kind field */
	const uint8_t *body;   /* the kind's encoded message */
	size_t body_len;
	uint32_t req_id;
	uint32_t fds;
};
/* Scan a frame body. -EPROTO if malformed or more than one kind is set. */
int lbus_wire_frame_scan(const uint8_t *frame, size_t len, struct lbus_wire_frame *out);

struct lbus_wire_publish {
	const char *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	bool retain;
};
int lbus_wire_publish_decode(const uint8_t *body, size_t len, struct lbus_wire_publish *out);

struct lbus_wire_send {
	const char *name;
	size_t name_len;
	const uint8_t *payload;
	size_t payload_len;
};
int lbus_wire_send_decode(const uint8_t *body, size_t len, struct lbus_wire_send *out);

struct lbus_wire_call {
	const char *target;
	size_t target_len;
	const uint8_t *payload;
	size_t payload_len;
	uint64_t call_id;
	uint32_t timeout_ms;
};
int lbus_wire_call_decode(const uint8_t *body, size_t len, struct lbus_wire_call *out);

struct lbus_wire_sender {
	uint64_t id;
	const char *name; /* may be NULL when name_len == 0 */
	size_t name_len;
	uint32_t pid, uid, gid;
};
int lbus_wire_sender_decode(const uint8_t *body, size_t len, struct lbus_wire_sender *out);
/* Encoded size of a Sender message body, and its encoding (returns bytes). */
size_t lbus_wire_sender_size(const struct lbus_wire_sender *s);
size_t lbus_wire_sender_encode(uint8_t *out, const struct lbus_wire_sender *s);

struct lbus_wire_deliver {
	uint64_t sub_id;
	uint32_t what;             /* LBUS_D_*, 0 if none */
	const uint8_t *msg;        /* the embedded Publish/Send/Call body */
	size_t msg_len;
	struct lbus_wire_sender sender;
	uint64_t call_token;
	bool retained;
};
int lbus_wire_deliver_decode(const uint8_t *body, size_t len, struct lbus_wire_deliver *out);

/* Upper bound of lbus_wire_deliver_header() output. */
#define LBUS_WIRE_DELIVER_HDR_MAX 32u
/*
 * Per-recipient start of a Deliver frame whose shared body (from
 * lbus_wire_deliver_body_encode) is body_len bytes: frame length, Frame tag 9
 * and length, sub_id, retained. Returns the header's byte count; the frame is
 * header followed by body.
 */
size_t lbus_wire_deliver_header(uint8_t *out, uint64_t sub_id, bool retained, size_t body_len);
/* The byte count lbus_wire_deliver_header() will write for these values. */
size_t lbus_wire_deliver_header_size(uint64_t sub_id, bool retained, size_t body_len);
/* Size and encoding of a Deliver's shared body: the message (what, msg), the
 * encoded Sender body and the call token (0 = none). */
size_t lbus_wire_deliver_body_size(size_t msg_len, size_t sender_len, uint64_t call_token);
size_t lbus_wire_deliver_body_encode(uint8_t *out, uint32_t what, const uint8_t *msg, size_t msg_len,
				     const uint8_t *sender, size_t sender_len, uint64_t call_token);

/* Complete Publish frame (length header included): size and encoding. */
size_t lbus_wire_publish_frame_size(size_t topic_len, size_t payload_len, bool retain, uint32_t req_id);
size_t lbus_wire_publish_frame_encode(uint8_t *out, const char *topic, size_t topic_len, const void *payload,
				      size_t payload_len, bool retain, uint32_t req_id);

/* Any generated frame: size with the 4-byte header, and packing (returns the
 * bytes written, header included). */
size_t lbus_frame_packed_size(const Lbus__Frame *f);
size_t lbus_frame_pack(const Lbus__Frame *f, uint8_t *out);
