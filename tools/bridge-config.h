/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge configuration: `key = value` lines in the style of lbusd.conf,
 * plus `out` and `in` lines that mirror Mosquitto's bridge `topic` lines:
 *
 *     host = mqtt.example.org
 *     out sensors/# qos 1 remote-prefix site1/
 *     in cmd/site1/# qos 1 local-prefix remote/
 *
 * A route line is `out|in PATTERN [qos 0|1|2] [local-prefix P]
 * [remote-prefix P]`. The pattern is written without the prefixes: on the
 * local bus it is local-prefix + PATTERN, on the MQTT broker remote-prefix +
 * PATTERN, and a topic keeps its part after the prefix when it crosses.
 * `out` subscribes on the bus and publishes to MQTT; `in` subscribes on MQTT
 * and publishes on the bus.
 *
 * Comments: a line whose first non-blank character is `#`, and in a
 * `key = value` line a `#` after a blank. In a route line, a word starting
 * with `#` after the pattern starts a comment (the pattern itself may be `#`).
 * Relative file names (password_file, tls_*) are relative to the directory of
 * the configuration file. Errors are "FILE:LINE: why".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bridge_dir {
	BRIDGE_OUT = 0, /* local bus -> MQTT */
	BRIDGE_IN = 1,	/* MQTT -> local bus */
};

struct bridge_route {
	enum bridge_dir dir;
	int qos;	      /* 0, 1 or 2 */
	char *pattern;	      /* as written, without prefixes */
	char *local_prefix;   /* "" when none */
	char *remote_prefix;  /* "" when none */
	char *local_pattern;  /* local_prefix + pattern (out: subscribed on the bus) */
	char *remote_pattern; /* remote_prefix + pattern (in: subscribed on MQTT) */
	unsigned line;	      /* where it was configured */
};

#define BRIDGE_MQTT_311 4 /* protocol levels, as MQTT numbers them */
#define BRIDGE_MQTT_5 5

struct bridge_config {
	char *host;	 /* default "localhost" */
	int port;	 /* default 1883, 8883 with tls_ca */
	char *client_id; /* default "lbus-bridge-HOSTNAME" */
	char *username;	 /* NULL: none */
	char *password;	 /* first line of password_file, NULL: none */
	char *tls_ca;	 /* CA file: TLS on when set */
	char *tls_cert;	 /* client certificate and key (both or neither) */
	char *tls_key;
	int keepalive;		  /* seconds, default 60 */
	bool clean_session;	  /* default false: the broker keeps our session */
	int mqtt_version;	  /* BRIDGE_MQTT_311 or BRIDGE_MQTT_5 (default) */
	char *socket;		  /* the local bus; NULL: the default path */
	uint64_t queue_max_msgs;  /* outgoing messages kept while MQTT is down */
	uint64_t queue_max_bytes; /* and their payload + topic bytes */
	char *name;		  /* the status name on the bus, "lbus.bridge" */
	struct bridge_route *routes;
	size_t n_routes;
};

#define BRIDGE_DEFAULT_NAME "lbus.bridge"
#define BRIDGE_DEFAULT_QUEUE_MSGS 100000u
#define BRIDGE_DEFAULT_QUEUE_BYTES (64u << 20)

/*
 * Read path into *cfg (zeroed by the caller). On failure returns -errno
 * (-EINVAL for syntax and values) and writes "FILE:LINE: why" (or "FILE:
 * why") into err; *cfg is then freed. The caller frees a loaded config with
 * bridge_config_free().
 */
int bridge_config_load(struct bridge_config *cfg, const char *path, char *err, size_t errlen);
void bridge_config_free(struct bridge_config *cfg);
