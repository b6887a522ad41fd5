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
#include "conn.h"
#include "groups.h"
#include "connlimits.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "msgbuf.h"
#include "monitor.h"
#include "names.h"
#include "peer.h"
#include "presence.h"
#include "frame.h"
#include "retained.h"
#include "route.h"
#include "router.h"
#include "trie.h"

struct broker_options {
	const char *socket_path; /* -S, NULL for the default */
	const char *config_path; /* -c, NULL for the default file (if it exists) */
	bool verbose;		 /* -v */
	bool bare;		 /* no listener, no signal handling: connections
				  * come from broker_adopt_fd() (in-process tests) */
};

/* Counters of the whole broker (byte counters: conns). */
struct broker_counters {
	struct peer_counters msgs; /* every peer's, summed (peer_count_*) */
	uint64_t clients, clients_total;
	/* connections and requests refused by a limit (connlimits.h) */
	uint64_t refused_max_clients, refused_max_clients_per_uid, refused_max_names,
	    refused_max_subscriptions;
	/* access rules (access.h): operations refused, deliveries withheld */
	uint64_t denied, filtered;
	/* file descriptors: held now (fdset.h), refused by a limit */
	uint64_t fds_held, fds_refused;
};

struct broker {
	struct config cfg;
	const char *config_path; /* the file read (config_buf or -c), NULL for none */
	bool config_optional;	 /* the default file: its absence is no error */
	char config_buf[4096];
	struct logger log;
	int epfd;
	int sigfd;
	int reserve_fd;		/* spare fd for accepting (and closing) under EMFILE */
	uint64_t shed_count;	/* connections refused for lack of fds */
	int64_t shed_logged_ms; /* last time that was logged (at most 1/s) */
	struct listener listener;
	uid_t uid;		      /* the only uid admitted */
	struct uid_limits uid_limits; /* live connections per uid */

	struct conn_loop conns;	  /* the transport's shared state (conn.h) */
	struct list peers;	  /* struct peer.link, all live peers */
	struct list graveyard;	  /* closed peers, freed at the end of the turn */
	struct list expired_subs; /* struct sub.peer_link: reached max_msgs, freed at the end of the turn */
	uint64_t next_peer_id;

	struct msgpool pool;  /* shared message bodies */
	struct trie subs;     /* subscription index */
	struct names names;   /* name registry */
	struct routes routes; /* cached routes by topic */
	struct router router; /* routing scratch state */
	struct groups groups; /* queue groups */
	struct retained_store retained;
	struct calls calls; /* pending request/reply calls */
	struct monitors monitors;
	struct presence presence; /* $lbus/... events waiting for the end of the turn */

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
/* Push b->cfg into the modules that keep a copy of a setting (retained
 * store, connections); done after loading or reloading the file, and by
 * in-process tests that change b->cfg. */
void broker_apply_config(struct broker *b);
/* Set up everything (socket, signals, epoll). 0 or -errno (logged). */
int broker_init(struct broker *b, const struct broker_options *opts);
/* Run until SIGTERM/SIGINT; returns 0 after a clean shutdown, -errno on failure. */
int broker_run(struct broker *b);
/* Release everything, close all peers, remove the socket. */
void broker_deinit(struct broker *b);

/* Message counters: per peer and for the broker, always moved together
 * (inline: they are on the delivery path; here because they touch the
 * broker). */
static inline void peer_count_in(struct peer *c)
{
	c->ctr.msgs_in++;
	c->broker->ctr.msgs.msgs_in++;
}

static inline void peer_count_out(struct peer *c)
{
	c->ctr.msgs_out++;
	c->broker->ctr.msgs.msgs_out++;
}

static inline void peer_count_error(struct peer *c)
{
	c->ctr.errors++;
	c->broker->ctr.msgs.errors++;
}

static inline void peer_count_drop(struct peer *c)
{
	c->ctr.dropped++;
	c->broker->ctr.msgs.dropped++;
}

/*
 * In-process use (tests/brokertest.h): take over fd, a connected AF_UNIX
 * stream socket (a socketpair() end), as if accepted from the listener;
 * credentials come from its SO_PEERCRED. Returns the new connection's id
 * (> 0), or -errno; fd is closed on failure.
 */
int64_t broker_adopt_fd(struct broker *b, int fd);
/*
 * One loop turn: wait up to timeout_ms (-1: no limit) for events, handle
 * them, then the end-of-turn work (resume, flush, expire, free); it does
 * not wait while input is pending that no event announces (conn.h, "Fair
 * turns"). Returns the number of events handled plus the backlogged conns
 * served, or -errno when epoll_wait failed (the end-of-turn work still
 * ran). broker_run() is these turns until shutdown.
 */
int broker_turn(struct broker *b, int timeout_ms);

/* Monotonic milliseconds. */
int64_t broker_now_ms(void);
