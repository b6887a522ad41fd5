/* SPDX-License-Identifier: MIT */
/*
 * An in-process broker for unit tests of broker/ (STYLE.md item 12).
 *
 * The broker is a struct broker made with broker_init(.bare = true): no
 * listener, no signal handling. A test client is one end of a socketpair();
 * the other end is handed to the broker with broker_adopt_fd(), exactly as if
 * it had been accepted. Nothing runs unless the test asks: every helper that
 * waits drives the broker's loop with broker_turn() itself. So a test sends
 * frames on its end, runs turns until a frame arrives on another end, and
 * asserts on what a client would see on its socket; no process, no thread,
 * no sleeping.
 *
 * Test clients behave like real non-blocking clients: bt_send() queues the
 * packed frame in the client's own output buffer and writes what the socket
 * takes; whatever it does not take (the broker stopped reading: flow control)
 * is written by later turns, in order. Frames are built with the generated
 * protobuf-c code (lbus.pb-c.h); received frames are unpacked with it.
 *
 * Conventions as in harness.h: functions return 0 (or a count) on success and
 * -errno on failure, with a one-line diagnostic on stderr; nothing here calls
 * cmocka; every wait is bounded (BT_WAIT_MS). A received frame is the caller's
 * to free with lbus__frame__free_unpacked(f, NULL).
 *
 *     struct bt_broker t;
 *     struct bt_client pub, sub;
 *     assert_int_equal(bt_start(&t), 0);
 *     assert_int_equal(bt_connect(&t, &pub), 0);
 *     assert_int_equal(bt_connect(&t, &sub), 0);
 *     assert_int_equal(bt_sub(&sub, 1, "a/+"), 0);
 *     assert_int_equal(bt_publish(&pub, "a/b", "hi", false), 0);
 *     Lbus__Frame *f = bt_expect(&sub, LBUS__FRAME__KIND_DELIVER);
 *     ...
 *     lbus__frame__free_unpacked(f, NULL);
 *     bt_stop(&t);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "frame.h"
#include "lbus.pb-c.h"

/* Longest any helper waits for something to arrive. */
#define BT_WAIT_MS 5000
/* Test clients one broker can have (bt_client structs are the test's). */
#define BT_MAX_CLIENTS 32

struct bt_client;

struct bt_broker {
	struct broker b;
	/* SO_SNDBUF of the broker's end of connections made from now on, in
	 * bytes (the kernel doubles it and applies its minimum); 0: default.
	 * A small one makes a client that does not read fill its queue fast. */
	int sndbuf;
	struct bt_client *clients[BT_MAX_CLIENTS]; /* connected, for bt_turn() */
};

struct bt_client {
	struct bt_broker *t;
	int fd;		     /* the test's end, non-blocking; -1 once closed */
	uint64_t id;	     /* the connection's id in the broker */
	struct lbus_rbuf in; /* bytes read, not yet returned as frames */
	uint8_t *out;	     /* packed frames the socket has not taken yet */
	size_t out_len, out_cap;
	bool eof; /* the broker closed the connection */
};

/* Make the broker (compiled-in defaults; tests may change t->b.cfg before
 * connecting). 0 or -errno. */
int bt_start(struct bt_broker *t);
/* Close every connection on both sides and free the broker. */
void bt_stop(struct bt_broker *t);

/* A socketpair() connection adopted by the broker, no hello sent (the client
 * is in its hello state). 0 or -errno. */
int bt_adopt(struct bt_broker *t, struct bt_client *c);
/* bt_adopt, then Hello{version 1} and its Welcome (c->id checked against it). */
int bt_connect(struct bt_broker *t, struct bt_client *c);
/* Close the test's end, then let the broker see it (bt_settle). */
void bt_close(struct bt_client *c);

/* One loop turn: write the clients' pending output, then broker_turn() with
 * timeout_ms. The number of events the broker handled, or -errno. */
int bt_turn(struct bt_broker *t, int timeout_ms);
/* Run turns until one has nothing to do (no event, no client output
 * written): everything sent so far has been handled and every reaction
 * written to the sockets. 0, or -ETIMEDOUT after BT_WAIT_MS. */
int bt_settle(struct bt_broker *t);

/* Pack f and send it (see the top: queued, written as the socket takes it).
 * 0 or -errno. */
int bt_send(struct bt_client *c, const Lbus__Frame *f);
/* Queue raw bytes (a malformed frame, a partial one) the same way. */
int bt_send_bytes(struct bt_client *c, const void *data, size_t len);
/*
 * The broker must end c's connection: read frames until EOF, and the last one
 * must be a fatal Error with the given code (Lbus__ErrorCode). 0, or -EPROTO
 * (another error, none, not fatal) or -ETIMEDOUT (still open).
 */
int bt_expect_fatal(struct bt_client *c, int code);
/*
 * The next frame the broker sent to c, running turns until one arrives.
 * On 0, *out is new (free it). -ETIMEDOUT after BT_WAIT_MS, -ECONNRESET when
 * the broker closed the connection, -EPROTO for an undecodable frame.
 */
int bt_recv(struct bt_client *c, Lbus__Frame **out);
/* bt_recv, and the frame must be of kind `kind` (Lbus__Frame__KindCase);
 * NULL (with a diagnostic) otherwise. */
Lbus__Frame *bt_expect(struct bt_client *c, int kind);
/* Settle, then: has nothing arrived for c? Prints what did arrive (and
 * discards it) when something did. */
bool bt_nothing(struct bt_client *c);

/* ---- requests: build the frame, send it; the _ok ones also expect Ok ---------- */

/* Subscribe with everything s holds (sub_id, pattern, policy, ...), req_id 1,
 * and expect Ok as the next frame. 0, or -EPROTO when something else came. */
int bt_subscribe(struct bt_client *c, const Lbus__Subscribe *s);
/* Subscribe sub_id to pattern with the defaults (drop policy). */
int bt_sub(struct bt_client *c, uint64_t sub_id, const char *pattern);
/* Publish a NUL-terminated payload (no req_id: no Ok). */
int bt_publish(struct bt_client *c, const char *topic, const char *payload, bool retain);
/* Take a name and expect Ok. */
int bt_take_name(struct bt_client *c, const char *name);
/* Call target (a name or a topic) with call_id; timeout_ms 0: the default. */
int bt_call(struct bt_client *c, const char *target, uint64_t call_id, const char *payload,
	    uint32_t timeout_ms);
/* Reply to the call with this token. */
int bt_reply(struct bt_client *c, uint64_t call_token, const char *payload);
/* Send Ping{token}. */
int bt_ping(struct bt_client *c, uint64_t token);

/* ---- reading frames -------------------------------------------------------------- */

/* Does a payload (ProtobufCBinaryData) hold exactly the string s? */
bool bt_bytes_eq(ProtobufCBinaryData d, const char *s);
