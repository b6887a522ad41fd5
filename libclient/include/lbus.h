/* SPDX-License-Identifier: MIT */
/*
 * liblbus — the C client library of lbus, a local message bus.
 *
 *     lbus *bus;
 *     int r = lbus_connect(&bus, NULL);            (default socket path)
 *     if (r < 0) { fprintf(stderr, "%s\n", lbus_strerror(r)); return 1; }
 *     lbus_subscribe(bus, "sensors/+/temp", on_msg, NULL, NULL, NULL);
 *     lbus_publish(bus, "sensors/kitchen/temp", "21.5", 4, 0);  (sent now)
 *     lbus_run(bus, -1);                           (dispatch until error)
 *     lbus_close(bus);
 *
 * Language: this header needs C99 (<stdbool.h>, <stdint.h>) or C++; the
 * build tests it alone with -std=c99 -pedantic and as C++.
 *
 * Names: public functions are lbus_<object>_<verb> or lbus_<verb>; what the
 * library allocates for you is released by the matching _free function.
 * Ids (client, subscription, call, reply token) are uint64_t, never 0.
 *
 * Timeouts: every function that may wait takes (or, without a timeout
 * argument, uses the connection's) timeout in milliseconds, always meaning:
 *   < 0  no limit;
 *   0    do not wait: do what can be done at once, then -ETIMEDOUT if that
 *        was not everything;
 *   > 0  wait at most that long, then -ETIMEDOUT.
 * The connection's timeout (struct lbus_connect_opts.timeout_ms, default
 * LBUS_DEFAULT_TIMEOUT_MS) bounds the hello, the requests the broker answers
 * (lbus_subscribe(), lbus_name_take(), lbus_send(), lbus_monitor(), ...) and
 * a publish waiting for room in the socket, so a stopped broker cannot hang
 * a program. A request that timed out may still take effect in the broker.
 *
 * Errors: every function that can fail returns a negative errno value
 * (0 or a positive value on success); lbus_strerror() explains it, including
 * the bus-specific meanings:
 *   -ENXIO          no such name (send to a name nobody owns)
 *   -EADDRINUSE     name already taken
 *   -EPERM          not the owner of that name; from lbus_connect(): the
 *                   broker at the /tmp fallback runs as another user
 *   -EACCES         permission denied by the broker (a '$' topic, or an
 *                   operation its access rules refuse a client of another
 *                   user; for a publish, lbus_on_error() gets the reason)
 *   -ESRCH          no responders (call)
 *   -ECONNABORTED   the responder disconnected before replying
 *   -EREMOTEIO      the responder failed (lbus_reply_error(); the reason is
 *                   in struct lbus_reply.error)
 *   -ETIMEDOUT      timed out
 *   -EMSGSIZE       message larger than the broker's maximum frame
 *   -EINVAL         invalid topic, pattern, name or argument
 *   -EPROTO         protocol error
 *   -ENOSPC         a broker limit was reached (e.g. retained store full)
 *   -ENOTCONN       reconnect mode: disconnected, reconnecting (see
 *                   "Reconnecting")
 *   -ENOBUFS        reconnect mode: the buffer for publishes while
 *                   disconnected is full
 *   -ECONNRESET     the connection to the broker is lost (the broker closed
 *                   it or died); the one code for that, also when a write
 *                   found it closed. A connection the broker ended with a
 *                   fatal error reports that error instead (e.g. -EACCES).
 *
 * Sending: outside callbacks, every function that sends something (publish,
 * send, reply, call) has written it to the socket when it returns (waiting,
 * while the socket is full, at most the connection's timeout): a program
 * needs no loop to publish. Inside callbacks (during lbus_dispatch(),
 * lbus_run() or a blocking call), and for publishes with LBUS_MORE, frames
 * are gathered in the output buffer and written together at the end of the
 * dispatch turn, when the buffer holds lbus_connect_opts.publish_buffer
 * bytes, or on lbus_flush(). Nothing written is lost silently: a message
 * still buffered when the connection fails is counted by lbus_unsent() and
 * reported by lbus_close() and lbus_flush(). (Only lbus_sync() proves that
 * the broker has processed what was written.)
 *
 * Threads: an lbus handle is not thread-safe; use it from one thread at a
 * time. Callbacks run inside lbus_dispatch(), lbus_run() and the blocking
 * calls (which wait by dispatching, so other callbacks may run meanwhile),
 * and lbus_close() completes pending asynchronous calls and requests.
 * Callbacks may call any lbus function on the same handle, except
 * lbus_close(); to stop, call lbus_break().
 *
 * Pointers handed to callbacks (struct lbus_msg and everything it points to)
 * are valid only during the callback.
 *
 * Option structs start with their size: initialise them with their _INIT
 * macro (which sets size and the defaults), then set fields. The library
 * reads only the fields the caller's size covers, so a program built
 * against an older lbus.h keeps working with a newer library.
 */
#ifndef LBUS_H
#define LBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lbus-version.h" /* LBUS_VERSION_MAJOR, _MINOR, _PATCH, _STRING */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LBUS_BUILDING_LIBRARY)
#define LBUS_API __attribute__((visibility("default")))
#else
#define LBUS_API
#endif

/* An open connection to the broker. Opaque. */
typedef struct lbus lbus;

/* Identity of a message's sender, as the broker observed it. id 0 is the
 * broker itself (presence events). */
struct lbus_sender {
	uint64_t id;	  /* client id, unique for the broker's lifetime */
	const char *name; /* the sender's first owned name, "" if none */
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/* What a delivered message is. */
enum lbus_msg_kind {
	LBUS_MSG_PUBLISH = 0, /* published on a topic you subscribed to */
	LBUS_MSG_SEND = 1,    /* sent to a name you own */
	LBUS_MSG_CALL = 2     /* a request: answer it with lbus_reply() or
			       * lbus_reply_error() */
};

/* A delivered message. Valid only during the callback. */
struct lbus_msg {
	enum lbus_msg_kind kind;
	const char *topic; /* PUBLISH: the topic; CALL to a topic: the topic;
			    * SEND and CALL to a name: the name (NUL-terminated) */
	const void *data;  /* payload, len bytes (not NUL-terminated; never NULL) */
	size_t len;
	struct lbus_sender sender;
	uint64_t sub_id;      /* the subscription that matched, 0 for names */
	uint64_t missed;      /* messages dropped on this subscription just
			       * before this one (drop policy); usually 0,
			       * always 0 with an lbus_on_dropped() handler */
	bool retained;	      /* came from the retained store on subscribe */
	bool retain;	      /* PUBLISH: the publisher flagged it
			       * LBUS_RETAIN (as published: also true for
			       * a live delivery, and for every retained
			       * one); a bridge or recorder copies it */
	uint64_t reply_token; /* CALL: pass to lbus_reply(); 0 otherwise */
	int64_t deadline_ms;  /* CALL: when the caller stops waiting, on the
			       * CLOCK_MONOTONIC clock in milliseconds (the
			       * time of receipt plus the call's timeout, so
			       * a little late, never early; about 49 days
			       * away for a call without limit): work for a
			       * call whose deadline passed is wasted; 0
			       * otherwise */
	const int *fds;	      /* file descriptors sent with the message
			       * (lbus_publish_fds() ...), nfds of them, or
			       * NULL. The library closes them when the
			       * callback returns, except those the callback
			       * took with lbus_msg_take_fd(). They share the
			       * sender's open file (one offset: use pread()
			       * or mmap()). */
	size_t nfds;
};

/*
 * Take descriptor i of msg->fds (from inside the callback): the caller owns
 * the returned descriptor (close it) and the library no longer closes it.
 * -EINVAL (no such index) or -EBADF (taken already).
 */
LBUS_API int lbus_msg_take_fd(const struct lbus_msg *msg, size_t i);

typedef void (*lbus_msg_fn)(lbus *bus, const struct lbus_msg *msg, void *userdata);

/* Completion of an asynchronous request (lbus_subscribe_async(),
 * lbus_name_take_async(), lbus_send_async()): err is 0 or a negative errno,
 * as the blocking twin would have returned. */
typedef void (*lbus_done_fn)(lbus *bus, int err, void *userdata);

/* ---- connecting --------------------------------------------------------- */

/* Default of lbus_connect_opts.timeout_ms. */
#define LBUS_DEFAULT_TIMEOUT_MS 30000
/* Default of lbus_connect_opts.publish_buffer (64 KiB). */
#define LBUS_DEFAULT_PUBLISH_BUFFER 65536u

struct lbus_connect_opts {
	size_t size;	       /* sizeof(struct lbus_connect_opts) */
	int timeout_ms;	       /* the connection's timeout (see "Timeouts"
				* above), also for the hello */
	size_t publish_buffer; /* bytes of output gathered (inside callbacks,
				* with LBUS_MORE) before a write; also the
				* most a publish leaves buffered before it
				* waits for the socket. 0: the default */
	/* Reconnect mode (see "Reconnecting" below); off by default. */
	bool reconnect;		 /* survive a lost broker: retry, re-take names,
				  * re-subscribe */
	int reconnect_min_ms;	 /* first pause between attempts (<= 0: the
				  * default); doubled after each failure ... */
	int reconnect_max_ms;	 /* ... up to this (<= 0: the default), each
				  * pause with jitter: a random 50-100% of it */
	size_t reconnect_buffer; /* bytes of publishes (and sends with
				  * LBUS_NOWAIT) kept while disconnected and
				  * sent once reconnected; past it they fail
				  * with -ENOBUFS. 0: the default */
	size_t input_buffer;	 /* the most input the library keeps while a
				  * publish (or another send) waits for room
				  * in the socket and reads meanwhile to avoid
				  * a deadlock: past it, the publishes waiting
				  * there for a subscription (the oldest) are
				  * dropped and reported like the broker's
				  * drops (lbus_on_dropped(), msg->missed).
				  * Never less than the broker's maximum frame
				  * plus 256 KiB. 0: the default */
	bool any_broker_uid;	 /* trust a broker of any user: for a system
				  * bus run by a dedicated user. false (the
				  * default): the broker must run as this
				  * process's effective user or root, or
				  * lbus_connect() fails with -EPERM */
	/* Large payloads at memory speed (see lbus_publish_fds()): a publish,
	 * send, call or reply payload of at least memfd_threshold bytes is
	 * written into a sealed memfd that travels instead of the bytes, so
	 * its size is bounded by memory, not by the broker's max_frame. 0:
	 * never (in reconnect mode, never either). Receivers map it and see
	 * ordinary data/len. */
	size_t memfd_threshold;
	bool memfd_keep_fd; /* a received memfd payload also stays in
			     * msg->fds[0] (take it with lbus_msg_take_fd()) */
};

/* Default of lbus_connect_opts.memfd_threshold (64 KiB). */
#define LBUS_DEFAULT_MEMFD_THRESHOLD (64u * 1024u)

/* Default of lbus_connect_opts.input_buffer (16 MiB). */
#define LBUS_DEFAULT_INPUT_BUFFER (16u * 1024u * 1024u)

/* Defaults of the reconnect fields of struct lbus_connect_opts. */
#define LBUS_DEFAULT_RECONNECT_MIN_MS 100
#define LBUS_DEFAULT_RECONNECT_MAX_MS 5000
#define LBUS_DEFAULT_RECONNECT_BUFFER (1024u * 1024u)

#define LBUS_CONNECT_OPTS_INIT                                                                               \
	{                                                                                                    \
		sizeof(struct lbus_connect_opts), LBUS_DEFAULT_TIMEOUT_MS, LBUS_DEFAULT_PUBLISH_BUFFER,      \
		    false, LBUS_DEFAULT_RECONNECT_MIN_MS, LBUS_DEFAULT_RECONNECT_MAX_MS,                     \
		    LBUS_DEFAULT_RECONNECT_BUFFER, LBUS_DEFAULT_INPUT_BUFFER, false,                         \
		    LBUS_DEFAULT_MEMFD_THRESHOLD, false                                                      \
	}

/*
 * Connect to the broker and complete the hello. path NULL or "" resolves the
 * default: $LBUS_SOCKET, then $XDG_RUNTIME_DIR/lbus/bus.sock, then
 * /tmp/lbus-$UID/bus.sock. On success *out owns a new handle; free it with
 * lbus_close(). Returns 0, -ENOENT/-ECONNREFUSED when no broker listens,
 * -EACCES when the broker refuses this user, -ENOSPC when a broker limit
 * (max_clients, max_clients_per_uid) refuses the connection (the broker's
 * reason: lbus_connect_reason()), -EPERM when the process listening on the
 * socket runs as neither this process's effective user nor root, whatever
 * gave the path (explicit, $LBUS_SOCKET or a default: anybody may have
 * created the socket first; checked with SO_PEERCRED before anything is
 * sent; lbus_connect_opts.any_broker_uid lifts it for a system bus),
 * -ELOOP when the socket's directory is a symbolic link (its owner could
 * re-point it; lbusd never listens in one), -EPROTONOSUPPORT on a version mismatch, -ETIMEDOUT if
 * the broker does not answer the hello within the connection's timeout,
 * -EPROTO if what answers is not an lbus broker, or another negative errno.
 * lbus_connect() uses LBUS_CONNECT_OPTS_INIT's defaults.
 */
LBUS_API int lbus_connect(lbus **out, const char *path);

/* lbus_connect() with options; opts NULL means the defaults. -EINVAL when
 * opts->size is 0 (not initialised with LBUS_CONNECT_OPTS_INIT). */
LBUS_API int lbus_connect_with(lbus **out, const char *path, const struct lbus_connect_opts *opts);

/*
 * lbus_connect(), and when the broker refuses the connection (-EACCES: this
 * user is not admitted; -ENOSPC: a limit such as max_clients is reached),
 * its reason, as it sent it, is copied into reason (size bytes, always
 * NUL-terminated when size > 0, "" when no reason came). reason may be NULL.
 */
LBUS_API int lbus_connect_reason(lbus **out, const char *path, char *reason, size_t size);

/*
 * Close the connection and free the handle. It does not wait: what is still
 * buffered is written if the socket takes it at once (lbus_flush() first to
 * wait for it). Asynchronous calls and requests still pending complete here
 * with -ECONNRESET (their callbacks run, and every lbus function they call
 * on the handle fails). Returns 0 when every message was written, or, when
 * some were not (lbus_unsent() before closing says how many): the
 * connection's error (-ECONNRESET when it was lost) or -EAGAIN (the socket
 * was full). Accepts NULL (returns 0).
 */
LBUS_API int lbus_close(lbus *bus);

/*
 * Reconnecting. With lbus_connect_opts.reconnect, a lost connection (the
 * broker closed it, died or restarted: -ECONNRESET) does not end the
 * handle. At once, pending calls and requests fail with -ECONNRESET (none
 * hangs), and the connection callback runs with LBUS_DISCONNECTED. Then
 * the library connects again to the same path, with exponential backoff
 * and jitter (reconnect_min_ms doubling up to reconnect_max_ms), without
 * ever blocking: the attempts run inside lbus_dispatch(), lbus_run() and
 * the blocking calls, and lbus_timeout() says when the next one is due, so
 * a program must keep dispatching (a program that only publishes: call
 * lbus_dispatch() now and then, or lbus_run(bus, 0)). Once the broker has
 * welcomed the new connection, the library takes the handle's names again,
 * re-subscribes every subscription with its options and the same sub ids
 * (max_msgs: what is left of it), restores monitor mode, then sends what
 * was published meanwhile, and the callback runs with LBUS_RECONNECTED:
 * messages published while disconnected may have been missed, and the
 * client id (lbus_client_id()) is new. A name another client took
 * meanwhile, or a subscription the new broker refuses, is reported to the
 * error handler (lbus_on_error()) and forgotten.
 *
 * While disconnected: lbus_publish() (and lbus_send() with LBUS_NOWAIT)
 * keep the frame, up to reconnect_buffer bytes in all, then fail with
 * -ENOBUFS; the publish that finds the connection lost fails with
 * -ECONNRESET (it and the messages not yet written are counted by
 * lbus_unsent()). Everything else that needs the broker (requests, calls,
 * replies, lbus_sync(), lbus_flush() with output pending) fails at once
 * with -ENOTCONN. Errors that are not a lost connection (e.g. -EPROTO,
 * -EACCES, a new broker of another protocol version) still end the handle.
 *
 * The descriptor: lbus_fd() keeps its number for the handle's life (while
 * disconnected it is a descriptor that never becomes ready; lbus_timeout()
 * covers the next attempt), so poll() and select() loops need no change.
 * The file behind the number changes, though: an epoll loop must register
 * lbus_fd() again (EPOLL_CTL_ADD; the old registration vanished with the
 * old socket) when the callback runs with LBUS_CONNECTING, which announces
 * a new socket whose hello is under way.
 */
enum lbus_connection_event {
	LBUS_DISCONNECTED = 0, /* connection lost; err says why */
	LBUS_CONNECTING = 1,   /* a new socket is in place (epoll: re-add lbus_fd()) */
	LBUS_RECONNECTED = 2   /* welcomed again, names and subscriptions
				* re-sent: messages may have been missed */
};
typedef void (*lbus_connection_fn)(lbus *bus, enum lbus_connection_event ev, int err, void *userdata);

/* Be told when the connection is lost and restored (reconnect mode only).
 * Replaces the previous handler; fn NULL removes it. */
LBUS_API void lbus_on_connection(lbus *bus, lbus_connection_fn fn, void *userdata);

/* The client id the broker assigned to this connection. */
LBUS_API uint64_t lbus_client_id(const lbus *bus);

/* Largest payload-carrying frame the broker accepts (bytes of the encoded
 * frame); payloads must be somewhat smaller than this. */
LBUS_API size_t lbus_max_frame(const lbus *bus);

/* Messages (frames: publishes, sends, replies, requests) not written to the
 * socket yet; once the connection is lost, the number lost with it. */
LBUS_API size_t lbus_unsent(const lbus *bus);

/* Text for a negative errno returned by this library. Never NULL. */
LBUS_API const char *lbus_strerror(int err);

/* Version of the library, e.g. "0.1.0": LBUS_VERSION_STRING of the lbus.h
 * it was built with. */
LBUS_API const char *lbus_version(void);

/* ---- names --------------------------------------------------------------- */

/* Own a unique name (e.g. "player" or "org.example.Player"). Waits for the
 * broker's answer (the connection's timeout). Returns 0, -EADDRINUSE if
 * another client owns it, -EINVAL for an invalid name, -ETIMEDOUT. Owning it
 * again is a no-op returning 0. */
LBUS_API int lbus_name_take(lbus *bus, const char *name);

/* lbus_name_take() without waiting: done (not NULL) runs once, from
 * dispatch, with its result. Returns 0 or a negative errno (then done is
 * never called). */
LBUS_API int lbus_name_take_async(lbus *bus, const char *name, lbus_done_fn done, void *userdata);

/* Give up a name. Waits for the broker (the connection's timeout). 0 or
 * -EPERM if you do not own it. Names are also released when the connection
 * closes. */
LBUS_API int lbus_name_release(lbus *bus, const char *name);

/* Does anybody own name? Waits for the broker (the connection's timeout).
 * Returns 1 and sets *owner (if not NULL) to the owner's client id, 0 if
 * nobody owns it, or a negative errno. */
LBUS_API int lbus_name_query(lbus *bus, const char *name, uint64_t *owner);

/* ---- publish / subscribe ------------------------------------------------- */

/* Flags for lbus_publish(). */
#define LBUS_RETAIN                                                                                          \
	0x1u /* keep as the topic's retained message; an empty                                               \
	      * payload clears it */
#define LBUS_MORE                                                                                            \
	0x4u /* more publishes follow at once: gather this one                                               \
	      * in the output buffer (written when the buffer is                                             \
	      * full, by the next publish without LBUS_MORE, or                                              \
	      * lbus_flush()); for tight publish loops */

/*
 * Publish len bytes of data on topic. Outside callbacks and without
 * LBUS_MORE, the frame (with anything gathered before it) is written before
 * this returns; inside callbacks, or with LBUS_MORE, it is gathered (see
 * "Sending" above). It waits only while the socket is full, at most the
 * connection's timeout, reading what the broker sends meanwhile (so two
 * clients publishing at each other cannot deadlock) but running no
 * callbacks: that input waits for the next dispatch. Returns 0, -EINVAL for
 * an invalid topic or unknown flags, -EACCES for a reserved ('$') topic,
 * -EMSGSIZE when the frame would exceed the broker's maximum, -ETIMEDOUT
 * when the broker took nothing for the connection's timeout (the message
 * then stays buffered: the next write sends it, lbus_close() reports it
 * lost), or the connection's error once it is lost. Errors the broker
 * reports later (denied, retained store full) go to the error handler
 * (lbus_on_error).
 */
LBUS_API int lbus_publish(lbus *bus, const char *topic, const void *data, size_t len, unsigned flags);

/*
 * File descriptors with a message (publish, send, call, reply): up to
 * LBUS_MAX_FDS (16) descriptors travel with the message (SCM_RIGHTS); each
 * receiver gets its own copies in struct lbus_msg.fds (struct
 * lbus_reply.fds for a reply). The caller keeps its descriptors: the
 * library sends duplicates, so they may be closed as soon as the call
 * returns. nfds 0 is the plain call. -EINVAL (more than 16), -EOPNOTSUPP
 * (reconnect mode), else as the plain call; the broker refuses more than
 * max_fds_per_client descriptors in flight per client (-ENOSPC, see
 * lbusd.conf(5)). The receivers share the open file description: read a
 * file with pread() or mmap(), not read().
 */
#define LBUS_MAX_FDS 16
LBUS_API int lbus_publish_fds(lbus *bus, const char *topic, const void *data, size_t len, unsigned flags,
			      const int *fds, size_t nfds);

/* What to do when this subscriber's queue in the broker is full. */
enum lbus_policy {
	LBUS_POLICY_DROP = 0, /* drop new messages and report how many (msg->missed) */
	LBUS_POLICY_BLOCK = 1 /* lossless: the broker pauses the publishers */
};

struct lbus_sub_opts {
	size_t size;		 /* sizeof(struct lbus_sub_opts) */
	const char *group;	 /* queue group name, NULL for none */
	enum lbus_policy policy; /* default LBUS_POLICY_DROP */
	bool responder;		 /* also answer calls to matching topics: the
				  * broker routes a call to one responder
				  * subscription, and fn receives it with
				  * msg->kind == LBUS_MSG_CALL. Plain
				  * subscriptions never receive calls. */
	uint64_t max_msgs;	 /* > 0: the broker delivers at most this many
				  * messages (retained ones and calls
				  * included), then removes the subscription
				  * by itself; in a queue group the following
				  * messages go to the other members. The
				  * library forgets it once the last one's
				  * callback has returned (lbus_unsubscribe()
				  * then returns -ENOENT, harmlessly).
				  * 0: unlimited */
	uint32_t stall_ms;	 /* LBUS_POLICY_BLOCK only, > 0: once this
				  * client has read nothing from its socket
				  * for stall_ms while its queue is full
				  * (suspended, or busy elsewhere: a client
				  * that reads a big batch and then works on
				  * it for longer looks the same), the
				  * subscription drops with notices (see
				  * lbus_on_dropped()) instead of stalling
				  * the publishers, until the client reads
				  * again. 0: block for as long as it takes */
};

/* Defaults: no group, drop policy, not a responder, unlimited, no stall. */
#define LBUS_SUB_OPTS_INIT                                                                                   \
	{                                                                                                    \
		sizeof(struct lbus_sub_opts), NULL, LBUS_POLICY_DROP, false, 0, 0                            \
	}

/*
 * Subscribe to a topic pattern ('+' one level, '#' as last level: any
 * number). fn (not NULL) is called for every matching message, retained
 * ones first (these may already arrive while lbus_subscribe() waits).
 * opts may be NULL (the defaults). Waits for the broker's confirmation (the
 * connection's timeout). Returns 0 and sets *sub_id (if not NULL) to the
 * subscription id, -EINVAL for an invalid pattern, group, policy or opts
 * (size 0), -ETIMEDOUT (the library then forgets the subscription), or a
 * negative errno.
 */
LBUS_API int lbus_subscribe(lbus *bus, const char *pattern, lbus_msg_fn fn, void *userdata,
			    const struct lbus_sub_opts *opts, uint64_t *sub_id);

/* lbus_subscribe() without waiting: sets *sub_id (if not NULL) at once, and
 * done (not NULL) runs once, from dispatch, with the broker's verdict;
 * deliveries may start before it. On an error the subscription is gone
 * before done runs. Returns 0 or a negative errno (then done is never
 * called). */
LBUS_API int lbus_subscribe_async(lbus *bus, const char *pattern, lbus_msg_fn fn, void *userdata,
				  const struct lbus_sub_opts *opts, uint64_t *sub_id, lbus_done_fn done,
				  void *done_userdata);

/* Cancel a subscription. Waits for the broker's confirmation (the
 * connection's timeout); messages the broker queued to it before still
 * reach fn while this waits (nothing routed to it, e.g. in a queue group, is
 * lost), unless this is called from a callback of the same subscription:
 * then they are discarded. No callback for it runs after this returns.
 * Returns 0 or -ENOENT for an unknown id (or one already being cancelled).
 * On -ETIMEDOUT the subscription is forgotten all the same: no callback for
 * it runs any more (what the broker still delivers to it is discarded). */
LBUS_API int lbus_unsubscribe(lbus *bus, uint64_t sub_id);

/* lbus_unsubscribe() with its own timeout instead of the connection's. */
LBUS_API int lbus_unsubscribe_timeout(lbus *bus, uint64_t sub_id, int timeout_ms);

/* ---- messages to names --------------------------------------------------- */

/* Flags for lbus_send(). */
#define LBUS_NOWAIT                                                                                          \
	0x2u /* do not wait for the broker's verdict; a failure                                              \
	      * goes to the error handler */

/*
 * Send len bytes to the owner of name. By default waits for the broker's
 * verdict (the connection's timeout): 0 when queued to the owner, -ENXIO
 * when nobody owns the name, -EINVAL for an invalid name or unknown flags,
 * -ETIMEDOUT. With LBUS_NOWAIT it only sends the frame, like lbus_publish().
 */
LBUS_API int lbus_send(lbus *bus, const char *name, const void *data, size_t len, unsigned flags);
/* lbus_send() with descriptors (see lbus_publish_fds()). */
LBUS_API int lbus_send_fds(lbus *bus, const char *name, const void *data, size_t len, unsigned flags,
			   const int *fds, size_t nfds);

/* lbus_send() without waiting, but with the verdict: done (not NULL) runs
 * once, from dispatch, with what lbus_send() would have returned. Returns 0
 * or a negative errno (then done is never called). */
LBUS_API int lbus_send_async(lbus *bus, const char *name, const void *data, size_t len, lbus_done_fn done,
			     void *userdata);

/* Receive what is sent (lbus_send) to names this client owns. Calls never
 * arrive here (see lbus_on_call()). Replaces the previous handler; fn NULL
 * removes it. */
LBUS_API void lbus_on_message(lbus *bus, lbus_msg_fn fn, void *userdata);

/*
 * Drop notices. With the drop policy, the broker tells a subscriber how many
 * messages it did not queue for a subscription (its queue was full), in
 * order: before the subscription's next delivery, or as soon as the queue
 * has drained. With a handler set, fn runs as soon as a notice arrives
 * (count > 0 messages were lost on sub_id, between the deliveries before and
 * after this call), so even the end of a burst is reported without waiting
 * for another message; without one, the count is reported in msg->missed
 * of the subscription's next delivery. Replaces the previous handler; fn
 * NULL removes it.
 */
typedef void (*lbus_dropped_fn)(lbus *bus, uint64_t sub_id, uint64_t count, void *userdata);
LBUS_API void lbus_on_dropped(lbus *bus, lbus_dropped_fn fn, void *userdata);

/* ---- request / reply ----------------------------------------------------- */

/* A reply. Valid only until lbus_reply_free(). */
struct lbus_reply {
	const void *data;
	size_t len;
	struct lbus_sender sender; /* the responder */
	const char *error;	   /* NULL for a reply; for a call that failed
				    * with -EREMOTEIO, the responder's reason
				    * (one line; data is then empty) */
	const int *fds;		   /* descriptors sent with the reply
				    * (lbus_reply_fds()), nfds of them: owned
				    * by the reply, closed by lbus_reply_free()
				    * (or, in an lbus_call_async() callback,
				    * when it returns) unless taken with
				    * lbus_reply_take_fd() */
	size_t nfds;
};

/* Take descriptor i of reply->fds: the caller owns it (see lbus_msg_take_fd()). */
LBUS_API int lbus_reply_take_fd(const struct lbus_reply *reply, size_t i);

/*
 * Call target (a name, or else a topic with a responder subscription) with a
 * request and wait up to timeout_ms for the reply (< 0: no limit; 0: fails
 * with -ETIMEDOUT at once, sending nothing). The broker and the responder
 * get the same timeout (msg->deadline_ms). On 0, *reply is a new reply to
 * free with lbus_reply_free(). Returns -ESRCH when nobody can answer (at
 * once, not after the timeout: also when the name's owner handles no
 * calls), -ECONNABORTED when the responder disconnected, -EREMOTEIO when
 * the responder answered with lbus_reply_error(): then *reply is set too,
 * and (*reply)->error holds its reason; free it as well. -ETIMEDOUT,
 * -EINVAL when target is neither a valid name nor a valid topic (or the
 * broker refuses the call), -ENOSPC when this connection already has the
 * broker's max_pending_calls_per_client calls pending (a call stays
 * pending in the broker until it is answered or its timeout passes, even
 * once cancelled here). On other errors *reply is NULL, so calling
 * lbus_reply_free(*reply) after any return is always right.
 */
LBUS_API int lbus_call(lbus *bus, const char *target, const void *data, size_t len, int timeout_ms,
		       struct lbus_reply **reply);

/* Free a reply from lbus_call(). Accepts NULL. */
LBUS_API void lbus_reply_free(struct lbus_reply *reply);
/* lbus_call() with descriptors (see lbus_publish_fds()). */
LBUS_API int lbus_call_fds(lbus *bus, const char *target, const void *data, size_t len, int timeout_ms,
			   const int *fds, size_t nfds, struct lbus_reply **reply);

/* Completion of an asynchronous call: err is 0 and reply valid (only during
 * the callback), or err < 0 and reply NULL, except for -EREMOTEIO (the
 * responder failed): then reply->error is its reason. */
typedef void (*lbus_reply_fn)(lbus *bus, int err, const struct lbus_reply *reply, void *userdata);

/*
 * Start a call and return at once; fn runs exactly once, from dispatch, with
 * the reply or the error (including -ETIMEDOUT after timeout_ms, with the
 * meaning of lbus_call(), and -ECONNRESET if the connection is lost),
 * unless the call is cancelled first. Many calls may be in flight. Returns
 * 0 and sets *call_id (if not NULL), or a negative errno (then fn is never
 * called).
 */
LBUS_API int lbus_call_async(lbus *bus, const char *target, const void *data, size_t len, int timeout_ms,
			     lbus_reply_fn fn, void *userdata, uint64_t *call_id);

/* Cancel an asynchronous call: its fn is not called, now or later (a reply
 * that still arrives is discarded; the responder is not told). Returns 0, or
 * -ENOENT when no such call is pending (it completed already: fn has run or
 * is running). */
LBUS_API int lbus_call_cancel(lbus *bus, uint64_t call_id);

/* Receive calls (requests) addressed to names you own. Calls to a topic go
 * to the callback of the responder subscription they matched
 * (lbus_sub_opts.responder), or here if that subscription is gone. A call
 * that arrives with no handler for it (a name owner without a call handler)
 * is answered by the library at once with "no responders" (-ESRCH for the
 * caller), so nobody waits for a reply that cannot come. Replaces the
 * previous handler; fn NULL removes it. */
LBUS_API void lbus_on_call(lbus *bus, lbus_msg_fn fn, void *userdata);

/* Answer a call (msg->reply_token), now or later, once. Sent like a
 * publish (gathered inside callbacks, written at once outside them).
 * Returns 0, -EINVAL for token 0, -EMSGSIZE when the reply does not fit the
 * broker's maximum frame (answer with lbus_reply_error() then). */
LBUS_API int lbus_reply(lbus *bus, uint64_t reply_token, const void *data, size_t len);
/* lbus_reply() with descriptors (see lbus_publish_fds()). */
LBUS_API int lbus_reply_fds(lbus *bus, uint64_t reply_token, const void *data, size_t len, const int *fds,
			    size_t nfds);

/* Answer a call with a failure instead of a reply: the caller's lbus_call()
 * returns -EREMOTEIO with reason (one human-readable line, NULL for none;
 * copied) in its struct lbus_reply.error. Sent like lbus_reply().
 * Returns 0, -EINVAL for token 0, -EMSGSIZE for an overlong reason. */
LBUS_API int lbus_reply_error(lbus *bus, uint64_t reply_token, const char *reason);

/* ---- errors reported later ----------------------------------------------- */

/* Called when the broker reports a failure of a request that did not wait for
 * it (publish, send with LBUS_NOWAIT, reply): err is a negative errno and
 * what the broker's reason. Without a handler, such errors are counted and
 * the last one is kept for lbus_last_error(). */
typedef void (*lbus_error_fn)(lbus *bus, int err, const char *what, void *userdata);
LBUS_API void lbus_on_error(lbus *bus, lbus_error_fn fn, void *userdata);

/* The last asynchronous error (0 if none) and its reason (may be NULL). */
LBUS_API int lbus_last_error(const lbus *bus, const char **reason);

/*
 * The broker's reason for the most recent request it refused that a function
 * waited for (lbus_client_list_get() or lbus_stats_get() returning -EPERM, a
 * call refused by the access rules, a subscribe past a limit, ...), e.g.
 * "introspect denied: no rule allows it"; NULL when none came. Owned by bus:
 * valid until the next refusal or lbus_close(). Print it next to
 * lbus_strerror() of the error code.
 */
LBUS_API const char *lbus_request_reason(const lbus *bus);

/* ---- event loop integration ---------------------------------------------- */

/* The connection's file descriptor, to poll in your own loop. */
LBUS_API int lbus_fd(const lbus *bus);

/* The poll events to wait for now: POLLIN, plus POLLOUT while buffered output
 * remains. */
LBUS_API short lbus_events(const lbus *bus);

/* Milliseconds until the library needs lbus_dispatch() for a timer (call
 * and request timeouts), or -1 for none. 0 when complete frames already
 * wait in the library's buffer (read while a publish waited for the socket,
 * or left by lbus_break()): the fd may not become readable for them, so
 * call lbus_dispatch() without waiting. */
LBUS_API int lbus_timeout(const lbus *bus);

/*
 * Do all the work possible without blocking: write buffered output, read
 * what has arrived, run callbacks, expire calls, then write what the
 * callbacks sent (what a callback publishes, sends or replies is written at
 * the end of this same call, not at the next one; only what the socket
 * does not take at once waits, for POLLOUT). Returns the number of
 * messages handled (>= 0), or a negative errno when the connection is lost
 * (-ECONNRESET) or broken (e.g. -EPROTO, or the errno of the broker's fatal
 * error); after that only lbus_close() is useful. A lbus_break() from a
 * callback ends it early; the rest waits for the next call.
 */
LBUS_API int lbus_dispatch(lbus *bus);

/*
 * Simple blocking loop: poll and dispatch until timeout_ms passes (< 0: no
 * limit; 0: dispatch once), lbus_break() is called, or an error. Returns 1
 * after lbus_break(), 0 on timeout, a negative errno on error.
 */
LBUS_API int lbus_run(lbus *bus, int timeout_ms);

/* Make the current lbus_run() (or lbus_dispatch()) return after the running
 * callback; messages already received wait for the next dispatch. Called
 * while no lbus_run() is active (e.g. from a callback run inside a blocking
 * call), it makes the next lbus_run() return at once. */
LBUS_API void lbus_break(lbus *bus);

/* Write all buffered output, waiting at most timeout_ms (see "Timeouts").
 * Returns 0, -ETIMEDOUT (lbus_unsent() messages remain), or the
 * connection's error (then lbus_unsent() were lost). */
LBUS_API int lbus_flush(lbus *bus, int timeout_ms);

/* Round trip to the broker: returns once every frame sent before has been
 * processed by the broker (and errors for them reported), or -ETIMEDOUT. */
LBUS_API int lbus_sync(lbus *bus, int timeout_ms);

/* ---- monitor ------------------------------------------------------------- */

enum lbus_monitor_kind {
	LBUS_MON_PUBLISH = 0,
	LBUS_MON_SEND = 1,
	LBUS_MON_CALL = 2,
	LBUS_MON_REPLY = 3,
	LBUS_MON_ERROR = 4 /* a call failed, or a send was refused (name: its
			    * target): error holds the negative errno */
};

struct lbus_monitor_event {
	enum lbus_monitor_kind kind;
	struct lbus_sender sender;
	const uint64_t *receivers; /* client ids the message was queued to */
	size_t n_receivers;
	const char *topic; /* PUBLISH and calls to a topic, else "" */
	const char *name;  /* SEND and calls to a name (also an ERROR for a
			    * call refused before routing: the target as
			    * given, name or topic), else "" */
	const void *data;  /* the payload; ERROR: the responder's reason, if any */
	size_t len;
	uint64_t call_id; /* CALL/REPLY/ERROR: correlation (broker's token) */
	bool retain;
	int error;	     /* ERROR: negative errno */
	uint32_t nfds;	     /* file descriptors the message carried (only
			      * counted: a monitor never gets them) */
	uint64_t memfd_size; /* total size of the sealed memfds among them (a
			      * payload offloaded to a memfd: its size) */
};

typedef void (*lbus_monitor_fn)(lbus *bus, const struct lbus_monitor_event *ev, void *userdata);

/* Turn this connection into a monitor: from now on fn receives a copy of all
 * traffic whose topic matches pattern (NULL or "": everything, including
 * sends, calls and replies). Waits for the broker's confirmation (the connection's timeout). Returns 0,
 * -EINVAL for an invalid pattern or fn NULL, or a negative errno. The event
 * and everything it points to are valid only during the callback. */
LBUS_API int lbus_monitor(lbus *bus, const char *pattern, lbus_monitor_fn fn, void *userdata);

/* ---- introspection ------------------------------------------------------- */

struct lbus_sub_info {
	uint64_t sub_id;
	const char *pattern;
	const char *group; /* "" if none */
	enum lbus_policy policy;
	bool responder; /* answers calls to matching topics */
};

struct lbus_counters {
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out, dropped, errors;
};

struct lbus_client_info {
	uint64_t id;
	const char *const *names;
	size_t n_names;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	const char *command; /* from /proc/PID/comm, "" if unknown */
	const struct lbus_sub_info *subs;
	size_t n_subs;
	uint64_t queued_bytes;
	struct lbus_counters counters;
	bool monitor;
	uint64_t connected_at_ms;  /* Unix time in milliseconds */
	uint64_t queued_bytes_max; /* high-water mark of queued_bytes since
				    * the client connected */
	uint64_t blocked_on;	   /* id of the client whose full queue holds
				    * this one's input (its own id: it does
				    * not read what it asked for); 0: none */
};

struct lbus_client_list {
	const struct lbus_client_info *clients;
	size_t n_clients;
};

/* Ask the broker for every connected client, waiting at most timeout_ms
 * (see "Timeouts"). On 0, *out is a new list to free with
 * lbus_client_list_free(). */
LBUS_API int lbus_client_list_get(lbus *bus, int timeout_ms, struct lbus_client_list **out);
LBUS_API void lbus_client_list_free(struct lbus_client_list *list);

struct lbus_broker_stats {
	struct lbus_counters counters;
	uint64_t clients, clients_total, uptime_ms;
	uint64_t retained, retained_bytes, subscriptions, names, calls_pending;
	/* refused by a limit of lbusd.conf(5): connections (max_clients,
	 * max_clients_per_uid), names, subscriptions */
	uint64_t refused_max_clients, refused_max_clients_per_uid, refused_max_names,
	    refused_max_subscriptions;
	uint64_t rss_bytes;		     /* the broker's resident memory */
	uint64_t cpu_user_us, cpu_system_us; /* the broker's CPU time so far
					      * (user, kernel), microseconds */
	/* access rules (lbusd.conf(5)): operations of other users refused, and
	 * deliveries withheld from subscribers that may not receive the topic */
	uint64_t denied, filtered;
	/* file descriptors: received with frames, sent with deliveries, held
	 * now, refused by max_fds_per_client or memfd_budget */
	uint64_t fds_in, fds_out, fds_held, fds_refused;
};

struct lbus_client_stats {
	uint64_t id;
	struct lbus_counters counters;
	uint64_t queued_bytes;
	uint64_t queued_bytes_max; /* as in struct lbus_client_info */
	uint64_t blocked_on;	   /* as in struct lbus_client_info */
	uint64_t fds_held;	   /* descriptors it sent that the broker holds */
	uint64_t memfd_bytes_held; /* sizes of the sealed memfds among them */
	uint64_t fds_in, fds_out;  /* descriptors from it, to it */
};

struct lbus_stats {
	struct lbus_broker_stats broker;
	const struct lbus_client_stats *clients;
	size_t n_clients;
};

/* Ask the broker for its counters, waiting at most timeout_ms (see
 * "Timeouts"). On 0, *out is new; free it with lbus_stats_free(). */
LBUS_API int lbus_stats_get(lbus *bus, int timeout_ms, struct lbus_stats **out);
LBUS_API void lbus_stats_free(struct lbus_stats *stats);

/* ---- presence ------------------------------------------------------------ */

/* Topics on which the broker publishes presence events. Their payloads are
 * encoded lbus.ClientEvent / lbus.NameEvent messages (see proto/lbus.proto);
 * lbus_presence_decode() reads them. */
#define LBUS_TOPIC_CLIENT_CONNECTED "$lbus/client/connected"
#define LBUS_TOPIC_CLIENT_DISCONNECTED "$lbus/client/disconnected"
#define LBUS_TOPIC_NAME_TAKEN "$lbus/name/taken"
#define LBUS_TOPIC_NAME_RELEASED "$lbus/name/released"

/* A decoded presence event. For name events, names[0] is the name, id its
 * owner, gid 0 and command "". */
struct lbus_presence {
	uint64_t id;
	const char *const *names;
	size_t n_names;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	const char *command;
};

/* Decode the payload of a message on a $lbus/client/... or $lbus/name/...
 * topic. On 0, *out is new; free it with lbus_presence_free(). -EPROTO if
 * the payload is not such an event. */
LBUS_API int lbus_presence_decode(const struct lbus_msg *msg, struct lbus_presence **out);
LBUS_API void lbus_presence_free(struct lbus_presence *p);

#ifdef __cplusplus
}
#endif

#endif /* LBUS_H */
