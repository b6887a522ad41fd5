/* SPDX-License-Identifier: MIT */
/*
 * The codecs the broker and the library do not leave to protobuf-c
 * (lbus.pb-c.h): allocation-free decoders and encoders for the messages on
 * the hot path and the few small ones read or written field by field, built
 * on pbwire.h, plus helpers to pack any generated Lbus__Frame with its
 * length.
 *
 * The broker never decodes a payload: it scans the Frame to find the kind,
 * scans a Publish/Send/Call for the routing fields, and forwards the original
 * message bytes inside a Deliver. A Deliver is written as a small per-recipient
 * header (length, Deliver tag, sub_id, retained) followed by a body shared by
 * every recipient (message, sender, call token), encoded once.
 *
 * Every message is described once, by a table in wire.c (pbwire.h's
 * struct lbus_pb_msg_desc, its numbers from fields.h), and decoded by
 * lbus_pb_decode(); the functions below are its typed entry points. The
 * encoders (wire-encode.c) write the same numbers. Nothing outside proto/
 * writes or reads a field number.
 *
 * All decoders return 0 or -EPROTO, and point into the input (no copies,
 * strings are NOT NUL-terminated). Unknown fields are skipped; a known
 * field of the wrong wire type is -EPROTO, as in protobuf-c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fields.h"
#include "lbus.pb-c.h"
#include "pbwire.h"

/* Deliver field numbers of the three message kinds it can carry. */
enum lbus_deliver_what {
	LBUS_D_PUBLISH = LBUS_F_DELIVER_PUBLISH,
	LBUS_D_SEND = LBUS_F_DELIVER_SEND,
	LBUS_D_CALL = LBUS_F_DELIVER_CALL,
};

/* Name of a kind for error messages and logs ("publish"), "unknown" if none. */
const char *lbus_kind_name(uint32_t kind);

struct lbus_wire_frame {
	uint32_t kind;	     /* LBUS_K_*, LBUS_K_NONE if no kind field */
	const uint8_t *body; /* the kind's encoded message */
	size_t body_len;
	uint32_t req_id;
	uint32_t fds;
};
/* Scan a frame body. -EPROTO if malformed or more than one kind is set. */
int lbus_wire_frame_scan(const uint8_t *frame, size_t len, struct lbus_wire_frame *out);

/* Whether every string field of a frame's body (of the message its kind
 * names, nested messages included) is free of NUL bytes. The broker checks
 * this before it hands a body to protobuf-c, whose strings are C strings: a
 * name "a\0b" would otherwise be read as "a". Bodies that are not valid
 * protobuf pass (the decoder refuses them). */
bool lbus_wire_strings_exact(uint32_t kind, const uint8_t *body, size_t len);

/* Whether a frame's body (of the message its kind names, nested messages
 * included) holds fields lbus.proto does not define. protobuf-c would keep
 * a copy of each one (tens of bytes per field of one or two bytes) while
 * the message is unpacked: the broker drops them before it unpacks. */
bool lbus_wire_has_unknown_fields(uint32_t kind, const uint8_t *body, size_t len);
/* Copy body to out (room for len bytes) without its unknown top-level
 * fields; returns the bytes written. Bytes that are not valid protobuf are
 * copied as they are (the decoder refuses them); unknown fields inside a
 * nested message stay. */
size_t lbus_wire_drop_unknown_fields(uint32_t kind, const uint8_t *body, size_t len, uint8_t *out);

struct lbus_wire_publish {
	const char *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	bool retain;
	bool payload_memfd; /* the payload is the first descriptor (a sealed memfd) */
};
int lbus_wire_publish_decode(const uint8_t *body, size_t len, struct lbus_wire_publish *out);

struct lbus_wire_send {
	const char *name;
	size_t name_len;
	const uint8_t *payload;
	size_t payload_len;
	bool payload_memfd;
};
int lbus_wire_send_decode(const uint8_t *body, size_t len, struct lbus_wire_send *out);

struct lbus_wire_call {
	const char *target;
	size_t target_len;
	const uint8_t *payload;
	size_t payload_len;
	uint64_t call_id;
	uint32_t timeout_ms;
	bool payload_memfd;
};
int lbus_wire_call_decode(const uint8_t *body, size_t len, struct lbus_wire_call *out);

struct lbus_wire_sender {
	uint64_t id;
	const char *name; /* may be NULL when name_len == 0 */
	size_t name_len;
	uint32_t pid, uid, gid;
};
/* Encoded size of a Sender message body, and its encoding (returns bytes). */
size_t lbus_wire_sender_size(const struct lbus_wire_sender *s);
size_t lbus_wire_sender_encode(uint8_t *out, const struct lbus_wire_sender *s);

struct lbus_wire_deliver {
	uint64_t sub_id;
	uint32_t what;	    /* LBUS_D_*, 0 if none */
	const uint8_t *msg; /* the embedded Publish/Send/Call body */
	size_t msg_len;
	struct lbus_wire_sender sender;
	uint64_t call_token;
	bool retained;
};
int lbus_wire_deliver_decode(const uint8_t *body, size_t len, struct lbus_wire_deliver *out);

struct lbus_wire_reply {
	uint64_t call_token;
	const uint8_t *payload;
	size_t payload_len;
	uint32_t error;	    /* ErrorCode */
	const char *reason; /* not NUL-terminated */
	size_t reason_len;
	bool payload_memfd;
};
int lbus_wire_reply_decode(const uint8_t *body, size_t len, struct lbus_wire_reply *out);

struct lbus_wire_ok {
	uint32_t request; /* the kind answered */
	uint64_t owner;	  /* query_name */
};
int lbus_wire_ok_decode(const uint8_t *body, size_t len, struct lbus_wire_ok *out);

struct lbus_wire_dropped {
	uint64_t sub_id;
	uint64_t count;
};
int lbus_wire_dropped_decode(const uint8_t *body, size_t len, struct lbus_wire_dropped *out);

/* Ping and Pong: their token. */
int lbus_wire_ping_decode(const uint8_t *body, size_t len, uint64_t *token);
int lbus_wire_pong_decode(const uint8_t *body, size_t len, uint64_t *token);

/* The table of each message above, for tests (test-fields, fuzz-decode). */
extern const struct lbus_pb_msg_desc lbus_wire_frame_desc, lbus_wire_publish_desc, lbus_wire_send_desc,
    lbus_wire_call_desc, lbus_wire_sender_desc, lbus_wire_deliver_desc, lbus_wire_reply_desc,
    lbus_wire_ok_desc, lbus_wire_dropped_desc, lbus_wire_ping_desc, lbus_wire_pong_desc;
/* All of them, NULL-terminated. */
extern const struct lbus_pb_msg_desc *const lbus_wire_descs[];

/* ---- encoders (wire-encode.c) ------------------------------------------------ */

/* Upper bound of lbus_wire_deliver_header() output. */
#define LBUS_WIRE_DELIVER_HDR_MAX 32u
/*
 * Per-recipient start of a Deliver frame whose shared body (from
 * lbus_wire_deliver_body_encode) is body_len bytes: frame length, Frame tag 9
 * and length, sub_id, retained. Returns the header's byte count; the frame is
 * header followed by body.
 */
size_t lbus_wire_deliver_header(uint8_t *out, uint64_t sub_id, bool retained, size_t body_len, uint32_t fds);
/* The byte count lbus_wire_deliver_header() will write for these values. */
size_t lbus_wire_deliver_header_size(uint64_t sub_id, bool retained, size_t body_len, uint32_t fds);
/* Size and encoding of a Deliver's shared body: the message (what, msg), the
 * encoded Sender body and the call token (0 = none). */
size_t lbus_wire_deliver_body_size(size_t msg_len, size_t sender_len, uint64_t call_token);
size_t lbus_wire_deliver_body_encode(uint8_t *out, uint32_t what, const uint8_t *msg, size_t msg_len,
				     const uint8_t *sender, size_t sender_len, uint64_t call_token);

/* Complete Publish frame (length header included): size and encoding. */
size_t lbus_wire_publish_frame_size(size_t topic_len, size_t payload_len, bool retain, uint32_t req_id);
size_t lbus_wire_publish_frame_encode(uint8_t *out, const char *topic, size_t topic_len, const void *payload,
				      size_t payload_len, bool retain, uint32_t req_id);

/* A CallResult frame as the broker writes it; every pointer may be NULL
 * when its length is 0 (then the field is left out). */
struct lbus_wire_result {
	uint64_t call_id;
	const uint8_t *payload;
	size_t payload_len;
	uint32_t error;	    /* ErrorCode */
	const char *reason; /* reason_len bytes, not NUL-terminated */
	size_t reason_len;
	const uint8_t *sender; /* the encoded Sender body */
	size_t sender_len;
	uint32_t req_id;
	uint32_t fds;	    /* descriptors sent with the frame (Frame.fds) */
	bool payload_memfd; /* the payload is the first of them */
};
/* Complete CallResult frame (length header included): size and encoding. */
size_t lbus_wire_result_frame_size(const struct lbus_wire_result *r);
size_t lbus_wire_result_frame_encode(uint8_t *out, const struct lbus_wire_result *r);

/* A MonitorEvent; pointers are borrowed, may be NULL when their length is 0. */
struct lbus_wire_monitor_event {
	uint32_t kind;	       /* LBUS__MONITOR_KIND__MON_* */
	const uint8_t *sender; /* encoded Sender body */
	size_t sender_len;
	const uint64_t *receivers; /* client ids the message was queued to */
	size_t nreceivers;
	const char *topic; /* publish, call to a topic */
	size_t topic_len;
	const char *name; /* send, call to a name */
	size_t name_len;
	const uint8_t *payload;
	size_t payload_len;
	uint64_t call_token; /* MonitorEvent.call_id */
	bool retain;
	uint32_t error;	     /* MON_ERROR: the ErrorCode */
	uint32_t fds;	     /* descriptors the message carried */
	uint64_t memfd_size; /* sizes of the sealed memfds among them */
};
/* Complete MonitorEvent frame (length header included): size and encoding. */
size_t lbus_wire_monitor_event_frame_size(const struct lbus_wire_monitor_event *ev);
size_t lbus_wire_monitor_event_frame_encode(uint8_t *out, const struct lbus_wire_monitor_event *ev);

/* Any generated frame: size with the 4-byte header, and packing (returns the
 * bytes written, header included). */
size_t lbus_frame_packed_size(const Lbus__Frame *f);
size_t lbus_frame_pack(const Lbus__Frame *f, uint8_t *out);
