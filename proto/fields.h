/* SPDX-License-Identifier: MIT */
/*
 * The numbers of lbus.proto that hand-written code needs at compile time,
 * each tied to the generated code, so that lbus.proto stays the one source:
 *
 *  - Frame kinds (enum lbus_kind) ARE protoc-c's oneof case enum
 *    (LBUS__FRAME__KIND_*): nothing is copied.
 *  - Field numbers of plain fields exist in the generated code only inside
 *    the descriptors (lbus__publish__descriptor.fields[i].id), which are not
 *    constant expressions. They are written once, below, one line per field
 *    (message, field name, number), and tests/test-fields.c checks every line
 *    of LBUS_WIRE_FIELDS against protoc-c's descriptor of that message (by
 *    name, so a renumbered or renamed field fails the build's tests). The
 *    same list makes the enum, so no constant escapes the check.
 *
 * Why a checked list rather than a header generated at build time: the
 * constants stay readable in the source tree (grep finds them, the fast
 * paths can _Static_assert on them), the build needs no second .proto
 * parser or host-run generator, and the descriptors protoc-c generated
 * from lbus.proto remain the reference the test compares against.
 *
 * Naming: LBUS_F_<MESSAGE>_<FIELD>, the message and field as in lbus.proto.
 */
#pragma once

#include "lbus.pb-c.h"

/* X(MESSAGE, message, FIELD, field, number): lbus__<message>__descriptor has
 * a field named "<field>" numbered <number>. */
#define LBUS_WIRE_FIELDS(X)                                                                                  \
	X(FRAME, frame, REQ_ID, req_id, 100)                                                                 \
	X(FRAME, frame, FDS, fds, 101)                                                                       \
	X(OK, ok, REQUEST, request, 1)                                                                       \
	X(OK, ok, OWNER, owner, 2)                                                                           \
	X(PING, ping, TOKEN, token, 1)                                                                       \
	X(PONG, pong, TOKEN, token, 1)                                                                       \
	X(PUBLISH, publish, TOPIC, topic, 1)                                                                 \
	X(PUBLISH, publish, PAYLOAD, payload, 2)                                                             \
	X(PUBLISH, publish, RETAIN, retain, 3)                                                               \
	X(PUBLISH, publish, PAYLOAD_MEMFD, payload_memfd, 4)                                                 \
	X(SEND, send, NAME, name, 1)                                                                         \
	X(SEND, send, PAYLOAD, payload, 2)                                                                   \
	X(SEND, send, PAYLOAD_MEMFD, payload_memfd, 3)                                                       \
	X(CALL, call, TARGET, target, 1)                                                                     \
	X(CALL, call, PAYLOAD, payload, 2)                                                                   \
	X(CALL, call, CALL_ID, call_id, 3)                                                                   \
	X(CALL, call, TIMEOUT_MS, timeout_ms, 4)                                                             \
	X(CALL, call, PAYLOAD_MEMFD, payload_memfd, 5)                                                       \
	X(SENDER, sender, ID, id, 1)                                                                         \
	X(SENDER, sender, NAME, name, 2)                                                                     \
	X(SENDER, sender, PID, pid, 3)                                                                       \
	X(SENDER, sender, UID, uid, 4)                                                                       \
	X(SENDER, sender, GID, gid, 5)                                                                       \
	X(DELIVER, deliver, SUB_ID, sub_id, 1)                                                               \
	X(DELIVER, deliver, PUBLISH, publish, 2)                                                             \
	X(DELIVER, deliver, SEND, send, 3)                                                                   \
	X(DELIVER, deliver, CALL, call, 4)                                                                   \
	X(DELIVER, deliver, SENDER, sender, 5)                                                               \
	X(DELIVER, deliver, CALL_TOKEN, call_token, 6)                                                       \
	X(DELIVER, deliver, RETAINED, retained, 7)                                                           \
	X(REPLY, reply, CALL_TOKEN, call_token, 1)                                                           \
	X(REPLY, reply, PAYLOAD, payload, 2)                                                                 \
	X(REPLY, reply, ERROR, error, 3)                                                                     \
	X(REPLY, reply, REASON, reason, 4)                                                                   \
	X(REPLY, reply, PAYLOAD_MEMFD, payload_memfd, 5)                                                     \
	X(CALL_RESULT, call_result, CALL_ID, call_id, 1)                                                     \
	X(CALL_RESULT, call_result, PAYLOAD, payload, 2)                                                     \
	X(CALL_RESULT, call_result, ERROR, error, 3)                                                         \
	X(CALL_RESULT, call_result, REASON, reason, 4)                                                       \
	X(CALL_RESULT, call_result, SENDER, sender, 5)                                                       \
	X(CALL_RESULT, call_result, PAYLOAD_MEMFD, payload_memfd, 6)                                         \
	X(DROPPED, dropped, SUB_ID, sub_id, 1)                                                               \
	X(DROPPED, dropped, COUNT, count, 2)                                                                 \
	X(MONITOR_EVENT, monitor_event, KIND, kind, 1)                                                       \
	X(MONITOR_EVENT, monitor_event, SENDER, sender, 2)                                                   \
	X(MONITOR_EVENT, monitor_event, RECEIVERS, receivers, 3)                                             \
	X(MONITOR_EVENT, monitor_event, TOPIC, topic, 4)                                                     \
	X(MONITOR_EVENT, monitor_event, NAME, name, 5)                                                       \
	X(MONITOR_EVENT, monitor_event, PAYLOAD, payload, 6)                                                 \
	X(MONITOR_EVENT, monitor_event, CALL_ID, call_id, 7)                                                 \
	X(MONITOR_EVENT, monitor_event, RETAIN, retain, 8)                                                   \
	X(MONITOR_EVENT, monitor_event, ERROR, error, 9)                                                     \
	X(MONITOR_EVENT, monitor_event, FDS, fds, 10)                                                        \
	X(MONITOR_EVENT, monitor_event, MEMFD_SIZE, memfd_size, 11)

#define LBUS_WIRE_FIELD_ENUM(M, m, F, f, num) LBUS_F_##M##_##F = num,
enum lbus_field { LBUS_WIRE_FIELDS(LBUS_WIRE_FIELD_ENUM) };
#undef LBUS_WIRE_FIELD_ENUM

/* Frame.kind: the oneof's field numbers, as protoc-c generates them. */
enum lbus_kind {
	LBUS_K_NONE = LBUS__FRAME__KIND__NOT_SET,
	LBUS_K_HELLO = LBUS__FRAME__KIND_HELLO,
	LBUS_K_WELCOME = LBUS__FRAME__KIND_WELCOME,
	LBUS_K_ERROR = LBUS__FRAME__KIND_ERROR,
	LBUS_K_PING = LBUS__FRAME__KIND_PING,
	LBUS_K_PONG = LBUS__FRAME__KIND_PONG,
	LBUS_K_SUBSCRIBE = LBUS__FRAME__KIND_SUBSCRIBE,
	LBUS_K_UNSUBSCRIBE = LBUS__FRAME__KIND_UNSUBSCRIBE,
	LBUS_K_PUBLISH = LBUS__FRAME__KIND_PUBLISH,
	LBUS_K_DELIVER = LBUS__FRAME__KIND_DELIVER,
	LBUS_K_TAKE_NAME = LBUS__FRAME__KIND_TAKE_NAME,
	LBUS_K_RELEASE_NAME = LBUS__FRAME__KIND_RELEASE_NAME,
	LBUS_K_SEND = LBUS__FRAME__KIND_SEND,
	LBUS_K_OK = LBUS__FRAME__KIND_OK,
	LBUS_K_CALL = LBUS__FRAME__KIND_CALL,
	LBUS_K_REPLY = LBUS__FRAME__KIND_REPLY,
	LBUS_K_RESULT = LBUS__FRAME__KIND_RESULT,
	LBUS_K_DROPPED = LBUS__FRAME__KIND_DROPPED,
	LBUS_K_QUERY_NAME = LBUS__FRAME__KIND_QUERY_NAME,
	LBUS_K_LIST = LBUS__FRAME__KIND_LIST,
	LBUS_K_CLIENT_LIST = LBUS__FRAME__KIND_CLIENT_LIST,
	LBUS_K_STATS = LBUS__FRAME__KIND_STATS,
	LBUS_K_STATS_REPLY = LBUS__FRAME__KIND_STATS_REPLY,
	LBUS_K_MONITOR = LBUS__FRAME__KIND_MONITOR,
	LBUS_K_MONITOR_EVENT = LBUS__FRAME__KIND_MONITOR_EVENT,
	/* The highest kind (test-fields checks that no oneof member is above it
	 * and that 1..LBUS_K_MAX are all members). */
	LBUS_K_MAX = LBUS__FRAME__KIND_MONITOR_EVENT,
};

/* What the hand-written fast paths of wire.c and wire-encode.c rely on: the
 * frame scanner takes a one-byte kind tag without its general loop. */
_Static_assert(LBUS_K_PUBLISH < 16 && LBUS_K_DELIVER < 16, "the hot kinds have one-byte tags");
_Static_assert((int)LBUS_F_FRAME_REQ_ID > (int)LBUS_K_MAX && (int)LBUS_F_FRAME_FDS > (int)LBUS_K_MAX,
	       "req_id and fds are outside the kind oneof");
