/* SPDX-License-Identifier: MIT */
/*
 * Protocol constants and default limits shared by lbusd and liblbus.
 * The broker may be configured with other values; it announces the ones in
 * force in Welcome.
 */
#pragma once

#include "lbus-version.h" /* generated: LBUS_VERSION_STRING */

#define LBUS_PROTOCOL_VERSION 1u

/* Largest frame body (the bytes after the 4-byte length), default. */
#define LBUS_DEFAULT_MAX_FRAME (8u * 1024u * 1024u)
/* Smallest max_frame a broker may be configured with. */
#define LBUS_MIN_MAX_FRAME 4096u
/* Bytes the broker queues for one client before its policy applies. */
#define LBUS_DEFAULT_MAX_QUEUE (8u * 1024u * 1024u)
/* Total bytes of retained messages the broker keeps. */
#define LBUS_DEFAULT_RETAINED_MAX (64u * 1024u * 1024u)

/* Bytes of unfinished frames the broker holds for all connections. */
#define LBUS_DEFAULT_PARTIAL_FRAMES_MAX (64u * 1024u * 1024u)

/* Connections at once, in all and (default) per uid. */
#define LBUS_DEFAULT_MAX_CLIENTS 16384u
/* Names one connection may own. */
#define LBUS_DEFAULT_MAX_NAMES 1024u
/* Subscriptions one connection may hold. */
#define LBUS_DEFAULT_MAX_SUBSCRIPTIONS 16384u
/* Calls one connection may have pending (waiting for their reply). */
#define LBUS_DEFAULT_MAX_PENDING_CALLS 4096u
/* On SIGTERM, the broker waits at most this long for queued output. */
#define LBUS_DEFAULT_SHUTDOWN_TIMEOUT_MS 2000u

/* A client must finish its hello within this time. */
#define LBUS_HELLO_TIMEOUT_MS 5000
/* A started frame must be complete within this time. */
#define LBUS_FRAME_TIMEOUT_MS 30000
/* Default deadline of a call (CLI and broker). */
#define LBUS_DEFAULT_CALL_TIMEOUT_MS 30000

/* Topic and pattern length in bytes, excluding any terminator. */
#define LBUS_MAX_TOPIC_LEN 4096u
/* Levels of a topic or pattern ("a/b/c" has 3): each costs the broker a
 * trie node, so depth is bounded like length. */
#define LBUS_MAX_TOPIC_LEVELS 32u
/* Name length in bytes. */
#define LBUS_MAX_NAME_LEN 255u
/* Queue group name length in bytes. */
#define LBUS_MAX_GROUP_LEN 255u

/* File descriptors one frame may carry (SCM_RIGHTS with its first byte). */
#define LBUS_MAX_FDS_PER_FRAME 16u
/* Descriptors, and bytes of sealed memfds, one client may have in the
 * broker at once (received, not yet delivered to everyone), default. */
#define LBUS_DEFAULT_MAX_FDS_PER_CLIENT 256u
#define LBUS_DEFAULT_MEMFD_BUDGET (1024ull * 1024u * 1024u)
/* Payloads at least this long travel as a sealed memfd (library default). */
#define LBUS_DEFAULT_MEMFD_THRESHOLD (64u * 1024u)

/* Length of the frame header (little-endian uint32). */
#define LBUS_FRAME_HEADER 4u
