/* SPDX-License-Identifier: MIT */
/*
 * The broker's event loop and life cycle (see broker.h).
 *
 * One thread, one epoll set, level-triggered. epoll data points either at a
 * connection (struct conn, conn.h) or at one of two broker-owned sentinels
 * (the listener and the signalfd). A loop turn:
 *   1. epoll_wait; timeout: 0 when resumed publishers are ready or a conn
 *      has input past its last turn's budget (conn.h, "Fair turns"; also
 *      when broker_turn's caller asked for more);
 *      BROKER_STOP_POLL_MS while stopping; else the sooner of the sweep
 *      period (BROKER_SWEEP_MS, while any conn has a deadline) and the
 *      next call deadline; infinite when there is neither;
 *   2. give the conns backlogged by earlier turns their next turn
 *      (conn_loop_run_backlog; their EPOLLIN is off, so none is served
 *      twice in a turn), then handle the events: accept (accept.c),
 *      signals, connection input and output (conn.c, which reports frames
 *      to the peers, peer.c);
 *   3. fail the calls whose deadline passed;
 *   4. end the turn: publish presence events, re-process the input of
 *      publishers that were resumed (ready list), write the output queued
 *      during the turn (flush list), repeated until nothing new is raised;
 *      free the expired subscriptions and the peers closed during the turn
 *      (graveyard), so a peer can be closed from anywhere, including its
 *      own handlers;
 *   5. once the earliest recheck time of a waiting publisher (stall_ms) has
 *      come, wake the publishers whose time it is, exactly (the loop's
 *      timeout includes it); and at most once per BROKER_SWEEP_MS, report
 *      the conns whose deadline passed (hello, partial frame; only conns on
 *      the deadline list are looked at); after either, end the turn again;
 *   6. write the summaries of rate-limited log lines whose window ended
 *      (log.h; the loop's timeout includes the next one).
 *
 * Signals arrive through a signalfd: SIGTERM/SIGINT start the shutdown: stop
 * accepting (the socket is removed) and reading, then keep turning the loop,
 * waking at least every BROKER_STOP_POLL_MS, until every out queue is
 * written or shutdown_timeout (2 s by default) has passed, whichever comes
 * first; what is still queued then is dropped when broker_deinit() closes
 * the peers.
 * SIGHUP reloads the configuration. SIGPIPE is ignored; writes also use
 * MSG_NOSIGNAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "access.h"
#include "broker.h"
#include "callreply.h"
#include "accept.h"
#include "clock.h"
#include "peer.h"
#include "notify.h"
#include "lbus-limits.h"
#include "subscription.h"

#define BROKER_EVENTS 64
#define BROKER_SWEEP_MS 1000

#define BROKER_STOP_POLL_MS 100
#define BROKER_ERR_MAX 512 /* room for a configuration error message */

static int broker_epoll_add(struct broker *b, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int broker_signals_init(struct broker *b)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	b->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return b->sigfd < 0 ? -errno : 0;
}

static int broker_state_init(struct broker *b)
{
	list_init(&b->peers);
	list_init(&b->graveyard);
	list_init(&b->expired_subs);
	b->next_peer_id = 1;
	msgpool_init(&b->pool);
	conn_loop_init(&b->conns, -1, &b->pool, &peer_conn_ops);
	groups_init(&b->groups);
	retained_init(&b->retained, LBUS_DEFAULT_RETAINED_MAX);
	calls_init(&b->calls);
	monitors_init(&b->monitors);
	presence_init(&b->presence);
	names_init(&b->names);
	routes_init(&b->routes);
	uid_limits_init(&b->uid_limits);
	if (trie_init(&b->subs) < 0 || router_init(&b->router, &b->pool) < 0)
		return -ENOMEM;
	return 0;
}

/* Hand the limits of b->cfg to the modules that keep a copy. The bound on
 * partial frames is never below what one frame of max_frame bytes needs
 * while it arrives (its buffer grows by doubling: twice the frame), or
 * max_frame would be a promise the broker cannot keep. */
void broker_apply_config(struct broker *b)
{
	uint64_t one_frame = 2 * ((uint64_t)b->cfg.max_frame + LBUS_FRAME_HEADER);

	retained_set_max(&b->retained, b->cfg.retained_max);
	b->conns.max_queue = b->cfg.max_queue;
	b->conns.max_held = b->cfg.partial_frames_max > one_frame ? b->cfg.partial_frames_max : one_frame;
	b->conns.frame_timeout_ms = b->cfg.frame_timeout_ms;
}

int broker_config_init(struct broker *b, const struct broker_options *opts, char *err, size_t errlen)
{
	int ret;

	config_defaults(&b->cfg);
	b->config_path = opts->config_path;
	b->config_optional = false;
	if (!b->config_path && config_default_path(b->config_buf, sizeof(b->config_buf)) == 0) {
		b->config_path = b->config_buf;
		b->config_optional = true;
	}
	if (!b->config_path)
		return 0;
	ret = config_load(&b->cfg, b->config_path, err, errlen);
	if (ret == -ENOENT && b->config_optional) {
		b->config_path = NULL; /* no default file: the defaults */
		ret = 0;
	}
	return ret;
}

int broker_init(struct broker *b, const struct broker_options *opts)
{
	char err[BROKER_ERR_MAX];
	int ret;

	memset(b, 0, sizeof(*b));
	b->epfd = b->sigfd = b->reserve_fd = b->listener.fd = -1;
	log_init(&b->log, opts->verbose);
	ret = broker_state_init(b);
	if (ret < 0)
		return ret;
	ret = broker_config_init(b, opts, err, sizeof(err));
	if (ret < 0) {
		log_msg(&b->log, LOG_ERR, "%s", err);
		return ret;
	}
	if (b->config_path)
		log_msg(&b->log, LOG_INFO, "configuration read from %s", b->config_path);
	b->uid = geteuid();
	b->started_ms = (uint64_t)clock_now_ms();
	b->last_sweep_ms = clock_now_ms();
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0)
		return -errno;
	b->conns.epfd = b->epfd;
	broker_apply_config(b);
	if (opts->bare)
		return 0;
	ret = broker_signals_init(b);
	if (ret < 0)
		return ret;
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = listener_open(&b->listener, opts->socket_path, b->cfg.socket_mode, &b->log);
	if (ret < 0)
		return ret;
	if (policy_admits_others(b->cfg.policy, b->uid))
		listener_share(&b->listener, &b->log);
	if ((ret = broker_epoll_add(b, b->listener.fd, &b->listener)) < 0 ||
	    (ret = broker_epoll_add(b, b->sigfd, &b->sigfd)) < 0)
		return ret;
	return 0;
}

static void broker_reload(struct broker *b)
{
	struct config cfg;
	char err[BROKER_ERR_MAX];
	int ret;

	if (!b->config_path && b->config_optional)
		b->config_path = b->config_buf; /* the default file may exist by now */
	if (!b->config_path) {
		log_msg(&b->log, LOG_INFO, "SIGHUP: no configuration file to reload");
		return;
	}
	notify_send("RELOADING=1");
	config_defaults(&cfg);
	ret = config_load(&cfg, b->config_path, err, sizeof(err));
	if (ret == -ENOENT && b->config_optional) {
		log_msg(&b->log, LOG_INFO, "SIGHUP: %s does not exist; keeping the current configuration",
			b->config_path);
		b->config_path = NULL;
	} else if (ret < 0) {
		log_msg(&b->log, LOG_ERR, "reload failed, keeping the current configuration: %s", err);
	} else {
		if (cfg.socket_mode != b->cfg.socket_mode)
			log_msg(&b->log, LOG_NOTICE, "socket_mode changes take effect at the next start");
		cfg.socket_mode = b->cfg.socket_mode;
		config_free(&b->cfg);
		b->cfg = cfg;
		broker_apply_config(b);
		access_reloaded(b);
		if (policy_admits_others(b->cfg.policy, b->uid))
			listener_share(&b->listener, &b->log);
		log_msg(&b->log, LOG_INFO, "configuration reloaded from %s", b->config_path);
	}
	notify_send("READY=1");
}

static void broker_stop(struct broker *b)
{
	struct list *l;

	if (b->stopping)
		return;
	log_msg(&b->log, LOG_INFO, "shutting down");
	notify_send("STOPPING=1");
	b->stopping = true;
	b->stop_deadline_ms = clock_now_ms() + b->cfg.shutdown_timeout_ms;
	listener_close(&b->listener);
	conn_loop_stop(&b->conns);
	for (l = b->peers.next; l != &b->peers; l = l->next)
		conn_update_events(&container_of(l, struct peer, link)->conn);
}

static void broker_on_signal(struct broker *b)
{
	struct signalfd_siginfo si;

	while (read(b->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			broker_reload(b);
		else
			broker_stop(b);
	}
}

/* Steps 3, 4 and 6 of the loop turn. */
static void broker_end_turn(struct broker *b)
{
	do {
		presence_flush(b);
		conn_loop_run_ready(&b->conns);
		conn_loop_flush(&b->conns);
	} while (presence_pending(&b->presence) ||
		 !list_empty(&b->conns.ready)); /* raised by peers closed meanwhile */
	sub_free_expired(b);
	while (!list_empty(&b->graveyard))
		peer_free(container_of(b->graveyard.next, struct peer, link));
}

static bool broker_all_flushed(const struct broker *b)
{
	const struct list *l;

	for (l = b->peers.next; l != &b->peers; l = l->next)
		if (!outq_empty(&container_of(l, struct peer, link)->conn.outq))
			return false;
	return true;
}

/* The sooner of timeout t (ms, -1: none) and monotonic time `when` (0: none). */
static int broker_timeout_until(int t, int64_t when)
{
	int64_t r;

	if (!when)
		return t;
	r = when - clock_now_ms();
	r = r < 0 ? 0 : r;
	return t < 0 || r < t ? (int)r : t;
}

static int broker_timeout(const struct broker *b)
{
	int t, calls;

	if (conn_loop_busy(&b->conns))
		return 0;
	if (b->stopping)
		return BROKER_STOP_POLL_MS;
	t = list_empty(&b->conns.deadlines) ? -1 : BROKER_SWEEP_MS;
	t = broker_timeout_until(t, b->conns.recheck_ms);
	t = broker_timeout_until(t, log_flood_next_ms(&b->log));
	if (calls_pending(&b->calls)) {
		calls = callreply_timeout_ms(b, clock_now_ms());
		if (t < 0 || calls < t)
			t = calls;
	}
	return t;
}

int broker_turn(struct broker *b, int timeout_ms)
{
	struct epoll_event ev[BROKER_EVENTS];
	int n, ret;
	unsigned served;
	int64_t now;

	if (conn_loop_busy(&b->conns))
		timeout_ms = 0; /* work is waiting that no event announces */
	n = epoll_wait(b->epfd, ev, BROKER_EVENTS, timeout_ms);
	ret = n < 0 ? -errno : n;

	served = conn_loop_run_backlog(&b->conns);
	if (ret >= 0)
		ret += (int)served;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &b->listener)
			accept_pending(b);
		else if (ev[i].data.ptr == &b->sigfd)
			broker_on_signal(b);
		else
			conn_on_events(ev[i].data.ptr, ev[i].events);
	}
	if (calls_pending(&b->calls))
		callreply_expire(b, clock_now_ms());
	broker_end_turn(b);
	now = clock_now_ms();
	if (b->conns.recheck_ms && now >= b->conns.recheck_ms) {
		conn_loop_sweep_paused(&b->conns, now);
		broker_end_turn(b);
	}
	log_flood_flush(&b->log, now);
	if (now - b->last_sweep_ms >= BROKER_SWEEP_MS && !list_empty(&b->conns.deadlines)) {
		b->last_sweep_ms = now;
		conn_loop_sweep(&b->conns, now);
		broker_end_turn(b);
	}
	if (b->stopping && (broker_all_flushed(b) || now >= b->stop_deadline_ms))
		b->done = true;
	return ret;
}

int64_t broker_adopt_fd(struct broker *b, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return accept_adopt(b, fd);
}

int broker_run(struct broker *b)
{
	if (!b->listener.activated)
		log_msg(&b->log, LOG_INFO, "listening on %s", b->listener.path);
	notify_send("READY=1");
	while (!b->done)
		broker_turn(b, broker_timeout(b));
	return 0;
}

void broker_deinit(struct broker *b)
{
	while (!list_empty(&b->peers))
		peer_close(container_of(b->peers.next, struct peer, link), "broker exiting");
	broker_end_turn(b);
	listener_close(&b->listener);
	if (b->reserve_fd >= 0)
		close(b->reserve_fd);
	if (b->sigfd >= 0)
		close(b->sigfd);
	if (b->epfd >= 0)
		close(b->epfd);
	presence_deinit(&b->presence);
	uid_limits_deinit(&b->uid_limits);
	calls_deinit(&b->calls);
	retained_deinit(&b->retained);
	groups_deinit(&b->groups);
	routes_deinit(&b->routes);
	router_deinit(&b->router);
	names_deinit(&b->names);
	trie_deinit(&b->subs);
	conn_loop_deinit(&b->conns);
	msgpool_deinit(&b->pool);
	config_free(&b->cfg);
}
