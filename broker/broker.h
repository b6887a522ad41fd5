/* SPDX-License-Identifier: MIT */
/*
 * The broker: all state of lbusd in one struct (no globals), the event loop
 * and its life cycle. See the design essay at the top of router.c for the
 * data path and flow control.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "calls.h"
#include "config.h"
#include "groups.h"
#include "connlimits.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "msgbuf.h"
#include "monitor.h"
#include "names.h"
#include "presence.h"
#include "frame.h"
#include "retained.h"
#include "router.h"
#include "trie.h"

struct broker_options {
	const char *socket_path; /* -S, NULL for the default */
	const char *config_path; /* -c, NULL for the default file (if it exists) */
	bool verbose;            /* -v */
};

struct broker_counters {
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out, dropped, errors;
	uint64_t clients, clients_total;
	/* connections and requests refused by a limit (connlimits.h) */
	uint64_t refused_max_clients, refused_max_clients_per_uid, refused_max_names, refused_max_subscriptions;
};

struct broker {
	struct config cfg;
	const char *config_path; /* the file read (config_buf or -c), NULL for none */
	bool config_optional;    /* the default file: its absence is no error */
	char config_buf[4096];
	struct logger log;
	int epfd;
	int sigfd;
	int reserve_fd;          /* spare fd for accepting (and closing) under EMFILE */
	uint64_t shed_count;     /* connections refused for lack of fds */
	int64_t shed_logged_ms;  /* last time that was logged (at most 1/s) */
	struct listener listener;
	uid_t uid;               /* the only uid admitted */
	int64_t refusal_logged_ms; /* last refused connection logged (at most 1/s) */
	uint64_t refusals_unlogged; /* refused since then, not logged one by one */
	struct uid_limits uid_limits; /* live connections per uid */

	struct list clients;     /* struct client.link, all live clients */
	struct list flush;       /* clients with output to try writing now */
	struct list ready;       /* unblocked publishers with buffered input */
	struct list deadlines;   /* clients with a hello/frame deadline */
	struct list graveyard;   /* closed clients, freed at the end of the turn */
	struct list expired_subs; /* struct sub.client_link: reached max_msgs, freed at the end of the turn */
	uint64_t next_client_id;

	struct msgpool pool;     /* shared message bodies */
	struct trie subs;        /* subscription index */
	struct names names;      /* name registry */
	struct router router;    /* routing scratch state */
	struct groups groups;    /* queue groups */
	struct retained_store retained;
	struct calls calls;      /* pending request/reply calls */
	struct monitors monitors;
	struct presence presence; /* $lbus/... events waiting for the end of the turn */
	struct lbus_rbuf scratch; /* read buffer lent to whichever client reads (client.c) */

	struct broker_counters ctr;
	uint64_t started_ms;
	int64_t last_sweep_ms;
	bool stopping;
	bool done;
	int64_t stop_deadline_ms;
};

/*
 * Find and read the configuration into b->cfg: opts->config_path, else the
 * default file when it exists (config.h). 0, or -errno with err set to a
 * "file:line: why" message. broker_init() calls it; lbusd --check-config
 * calls it alone on a zeroed broker.
 */
int broker_config_init(struct broker *b, const struct broker_options *opts, char *err, size_t errlen);
/* Set up everything (socket, signals, epoll). 0 or -errno (logged). */
int broker_init(struct broker *b, const struct broker_options *opts);
/* Run until SIGTERM/SIGINT; returns 0 after a clean shutdown, -errno on failure. */
int broker_run(struct broker *b);
/* Release everything, close all clients, remove the socket. */
void broker_deinit(struct broker *b);

/* Monotonic milliseconds. */
int64_t broker_now_ms(void);
