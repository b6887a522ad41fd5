/* SPDX-License-Identifier: MIT */
/*
 * Test harness for lbus-bridge (on top of harness.h): a real mosquitto on
 * free loopback ports, a plain listener and a TLS one whose certificate
 * (for 127.0.0.1 and localhost) is signed by a test CA made with openssl,
 * with persistence (sessions survive its restart); and lbus-bridge
 * processes with generated configurations.
 *
 * Programs come from the environment (tests/meson.build): MOSQUITTO,
 * OPENSSL, LBUS_BRIDGE. Conventions as in harness.h.
 */
#pragma once

#include <stdbool.h>

#include "harness.h"

struct lbt_mosquitto {
	struct lbt_broker files; /* tracked temporary dir: ca.pem, other-ca.pem (a
				  * CA that signed nothing here), server cert,
				  * mosquitto.conf, persistence, bridge configs */
	struct lbt_proc proc;	 /* mosquitto, pid 0 while stopped */
	int port, tls_port;
	char conf[PATH_MAX];
};

/* Are mosquitto, openssl and lbus-bridge there? If not, says so on stderr
 * (the test then skips). */
bool lbt_mosquitto_available(void);

/* Make the dir, certificates and config, and start mosquitto. 0 or -errno. */
int lbt_mosquitto_setup(struct lbt_mosquitto *m);
/* Start (again, same ports and persistence) and wait until both listeners
 * accept. 0 or -errno. */
int lbt_mosquitto_start(struct lbt_mosquitto *m);
/* SIGTERM: mosquitto saves its sessions and exits. 0 or -errno. */
int lbt_mosquitto_stop(struct lbt_mosquitto *m);
/* Stop it if running, remove the dir. */
void lbt_mosquitto_cleanup(struct lbt_mosquitto *m);

/* $LBUS_BRIDGE. */
const char *lbt_bridge_path(void);

/*
 * Start lbus-bridge for bus with client id name and the config lines
 * config (routes and keys); tls_ca NULL for the plain listener, else a CA
 * file in m->files.dir for the TLS one. 0 or -errno.
 */
int lbt_bridge_start(struct lbt_proc *p, const struct lbt_mosquitto *m, const struct lbt_broker *bus,
		     const char *name, const char *config, const char *tls_ca);
/* SIGTERM the bridge and reap it: 0 when it exited 0, else prints its log. */
int lbt_bridge_stop(struct lbt_proc *p);

/* The status JSON of the bridge that owns name on bus (malloc'ed), or NULL. */
char *lbt_bridge_status(const struct lbt_broker *bus, const char *name);
/* A number of it: "key":N (key may be "forwarded\":{\"out"), or -1. */
long long lbt_bridge_status_num(const struct lbt_broker *bus, const char *name, const char *key);
/* Wait (up to 15 s) until it reports "connected":want. */
bool lbt_bridge_wait_connected(const struct lbt_broker *bus, const char *name, bool want);
