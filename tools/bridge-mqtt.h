/* SPDX-License-Identifier: MIT */
/*
 * The MQTT side of lbus-bridge, over libmosquitto, driven from the bridge's
 * own poll loop (no libmosquitto thread): connect, subscribe the `in`
 * routes, publish, and reconnect with exponential backoff and jitter
 * (250 ms doubling to 30 s, +-25%) whenever the connection is lost or
 * refused, logging one line when it goes down and one when it is back.
 *
 * Sessions: with clean_session = false (the default) the broker keeps the
 * bridge's subscriptions and queues QoS 1/2 messages for it while it is away
 * (MQTT 5: session expiry "never"), and libmosquitto resends the bridge's
 * unacknowledged messages after a reconnect. MQTT 5 subscriptions are
 * no-local (the broker never echoes the bridge's own publishes) and
 * retain-as-published (a live retained message stays retained). MQTT 5
 * connects are blocking (libmosquitto takes CONNECT properties only there);
 * 3.1.1 connects are asynchronous.
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge-config.h"

struct mosquitto;

struct bmqtt_ops {
	/* The broker accepted the connection; the `in` routes are subscribed. */
	void (*on_up)(void *ud, bool session_present);
	/* The connection is gone (after on_up). */
	void (*on_down)(void *ud);
	/* A message arrived (mid 0 for QoS 0). */
	void (*on_message)(void *ud, int mid, int qos, const char *topic, const void *data, size_t len,
			   bool retain);
	/* The broker acknowledged the QoS 1/2 message mid; ok false when it
	 * refused it (MQTT 5 reason code >= 0x80, e.g. not authorised). */
	void (*on_acked)(void *ud, int mid, bool ok);
};

#define BMQTT_MAX_INFLIGHT 1000

struct bmqtt {
	const struct bridge_config *cfg;
	const struct bmqtt_ops *ops;
	void *ud;
	struct mosquitto *mosq;
	bool up;	 /* CONNACK accepted, not lost since */
	bool pending_up; /* on_up not yet reported (reported outside callbacks) */
	bool session_present;
	bool failing; /* the failure of this outage was logged */
	bool stopping;
	int64_t retry_at_ms;
	int backoff_ms;
	unsigned seed;
};

/* Create the client with the configuration's identity, credentials and TLS.
 * No connection yet. 0, or -errno with a message in err. */
int bmqtt_init(struct bmqtt *m, const struct bridge_config *cfg, const struct bmqtt_ops *ops, void *ud,
	       char *err, size_t errlen);
void bmqtt_free(struct bmqtt *m);

/* Poll integration, as for bridge-local.h. */
int bmqtt_fd(const struct bmqtt *m);
short bmqtt_events(const struct bmqtt *m);
int bmqtt_timeout(const struct bmqtt *m, int64_t now_ms);
void bmqtt_handle(struct bmqtt *m, short revents, int64_t now_ms);

/* Publish; *mid gets the message id. 0, or -ENOTCONN / -EINVAL / -EMSGSIZE /
 * -ENOMEM. */
int bmqtt_publish(struct bmqtt *m, const char *topic, const void *data, size_t len, int qos, bool retain,
		  int *mid);

/* Send DISCONNECT (at exit) and stop reconnecting. */
void bmqtt_stop(struct bmqtt *m);
