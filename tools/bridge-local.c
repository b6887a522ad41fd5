/* SPDX-License-Identifier: MIT */
/*
 * The local side of lbus-bridge on liblbus's reconnect mode (see
 * bridge-local.h): the first connection and its setup, the checks of each
 * restore, and the accounting of what a lost connection took with it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge-local.h"
#include "bridge-log.h"

#define STALL_MS 2000

static const char *bus_path(const struct blocal *l)
{
	return l->cfg->socket ? l->cfg->socket : "the default socket";
}

int blocal_init(struct blocal *l, const struct bridge_config *cfg, const struct blocal_ops *ops, void *ud)
{
	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	l->ops = ops;
	l->ud = ud;
	l->backoff_ms = LBUS_DEFAULT_RECONNECT_MIN_MS;
	l->seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	l->subs = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof(*l->subs));
	if (!l->subs)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (cfg->routes[i].dir == BRIDGE_OUT)
			l->subs[l->n_subs++] = (struct blocal_sub){l, &cfg->routes[i]};
	return 0;
}

void blocal_free(struct blocal *l)
{
	if (l->up && lbus_unsent(l->bus))
		lbus_flush(l->bus, 1000);
	lbus_close(l->bus);
	free(l->subs);
	memset(l, 0, sizeof(*l));
}

/* ---- the library's callbacks ------------------------------------------------ */

static void on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct blocal_sub *s = userdata;

	s->l->ops->on_publish(s->l->ud, s->r, msg, blocal_own(s->l, &msg->sender));
}

static void on_call(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct blocal *l = userdata;

	l->ops->on_call(l->ud, bus, msg);
}

static void on_dropped(lbus *bus, uint64_t sub_id, uint64_t count, void *userdata)
{
	struct blocal *l = userdata;

	l->ops->on_dropped(l->ud, count);
}

/* Messages lost with the connection since the last report. */
static uint64_t take_lost(struct blocal *l)
{
	size_t unsent = lbus_unsent(l->bus);
	uint64_t lost = unsent > l->lost_base ? unsent - l->lost_base : 0;

	l->lost_base = unsent;
	return lost;
}

static void link_up(struct blocal *l)
{
	l->up = true;
	l->failing = false;
	l->backoff_ms = LBUS_DEFAULT_RECONNECT_MIN_MS;
	l->lost_base = lbus_unsent(l->bus); /* what failed hellos left is no message of ours */
	blog(LOG_NOTICE, "connected to the bus at %s as '%s' (client %llu)", bus_path(l), l->cfg->name,
	     (unsigned long long)l->own_id);
	l->ops->on_state(l->ud, true, 0);
}

/* The answer to the bridge's own take of its name after a reconnect: the
 * last of the restore. -ECONNRESET: lost again meanwhile (the library tries
 * again, and so does the next LBUS_RECONNECTED). */
static void name_restored(lbus *bus, int err, void *userdata)
{
	struct blocal *l = userdata;

	if (err == -ECONNRESET || !l->restoring)
		return;
	l->restoring = false;
	if (err < 0 && !l->reset)
		blog(LOG_ERR, "cannot own the name '%s' on the bus again: %s", l->cfg->name,
		     lbus_strerror(err));
	if (err < 0 || l->reset) {
		l->reset = true;
		return;
	}
	link_up(l);
}

/* While restoring, an error is the library's replay failing (a name or a
 * route the new bus refuses; the bridge publishes nothing meanwhile). */
static void on_error(lbus *bus, int err, const char *what, void *userdata)
{
	struct blocal *l = userdata;

	if (!l->restoring)
		return;
	blog(LOG_ERR, "%s: %s", what, lbus_strerror(err));
	l->reset = true;
}

static void on_connection(lbus *bus, enum lbus_connection_event ev, int err, void *userdata)
{
	struct blocal *l = userdata;
	int r;

	if (ev == LBUS_DISCONNECTED) {
		blog(LOG_WARNING, "lost the bus at %s: %s; reconnecting", bus_path(l), lbus_strerror(err));
		l->up = false;
		l->restoring = false;
		l->ops->on_state(l->ud, false, take_lost(l));
	} else if (ev == LBUS_RECONNECTED) {
		l->own_id = lbus_client_id(bus);
		l->restoring = true;
		r = lbus_name_take_async(bus, l->cfg->name, name_restored, l);
		if (r < 0) {
			blog(LOG_ERR, "cannot own the name '%s' on the bus again: %s", l->cfg->name,
			     lbus_strerror(r));
			l->restoring = false;
			l->reset = true;
		}
	}
}

/* ---- the first connection ------------------------------------------------------- */

/* How the bus sees this process: pid and uid of our own client entry. */
static void learn_self(struct blocal *l)
{
	struct lbus_client_list *list = NULL;

	l->own_pid = 0;
	if (lbus_client_list_get(l->bus, 2000, &list) < 0)
		return;
	for (size_t i = 0; i < list->n_clients; i++)
		if (list->clients[i].id == l->own_id) {
			l->own_pid = list->clients[i].pid;
			l->own_uid = list->clients[i].uid;
		}
	lbus_client_list_free(list);
}

/* Take the name and subscribe the routes (the library restores both after
 * a reconnect). 0, or a negative errno; -EINVAL means the bus refuses the
 * configuration (fatal). */
static int setup_bus(struct blocal *l)
{
	struct lbus_sub_opts opts = LBUS_SUB_OPTS_INIT;
	int r;

	opts.policy = LBUS_POLICY_BLOCK;
	opts.stall_ms = STALL_MS;

	l->own_id = lbus_client_id(l->bus);
	learn_self(l);
	lbus_on_call(l->bus, on_call, l);
	lbus_on_dropped(l->bus, on_dropped, l);
	lbus_on_error(l->bus, on_error, l);
	lbus_on_connection(l->bus, on_connection, l);
	r = lbus_name_take(l->bus, l->cfg->name);
	if (r < 0) {
		blog(LOG_ERR, "cannot own the name '%s' on the bus: %s", l->cfg->name, lbus_strerror(r));
		return r;
	}
	for (size_t i = 0; i < l->n_subs; i++) {
		r = lbus_subscribe(l->bus, l->subs[i].r->local_pattern, on_msg, &l->subs[i], &opts, NULL);
		if (r < 0) {
			blog(LOG_ERR, "out route of line %u: cannot subscribe '%s' on the bus: %s",
			     l->subs[i].r->line, l->subs[i].r->local_pattern, lbus_strerror(r));
			return r;
		}
	}
	return 0;
}

/* A delay around ms, +-25%. */
static int jitter(struct blocal *l, int ms)
{
	return ms * 3 / 4 + (int)((unsigned)rand_r(&l->seed) % (unsigned)(ms / 2 + 1));
}

static void schedule_retry(struct blocal *l, int64_t now_ms)
{
	l->retry_at_ms = now_ms + jitter(l, l->backoff_ms);
	l->backoff_ms = l->backoff_ms * 2 > LBUS_DEFAULT_RECONNECT_MAX_MS ? LBUS_DEFAULT_RECONNECT_MAX_MS
									  : l->backoff_ms * 2;
}

static void try_connect(struct blocal *l, int64_t now_ms)
{
	struct lbus_connect_opts opts = LBUS_CONNECT_OPTS_INIT;
	int r;

	opts.reconnect = true;
	r = lbus_connect_with(&l->bus, l->cfg->socket, &opts);
	if (r == 0)
		r = setup_bus(l);
	if (r < 0) {
		lbus_close(l->bus);
		l->bus = NULL;
		if (r == -EINVAL) {
			l->fatal = true;
			return;
		}
		if (!l->failing)
			blog(LOG_WARNING, "cannot reach the bus at %s: %s; retrying", bus_path(l),
			     lbus_strerror(r));
		l->failing = true;
		schedule_retry(l, now_ms);
		return;
	}
	link_up(l);
}

/* Close the handle (a restore failed, or an error the library does not
 * recover from) and connect anew as at start. */
static void reset(struct blocal *l, int64_t now_ms)
{
	bool was_up = l->up;
	uint64_t lost = take_lost(l);

	lbus_close(l->bus);
	l->bus = NULL;
	l->up = l->restoring = l->reset = false;
	l->failing = true;
	schedule_retry(l, now_ms);
	if (was_up || lost)
		l->ops->on_state(l->ud, false, lost);
}

/* ---- poll integration ------------------------------------------------------------- */

int blocal_fd(const struct blocal *l)
{
	return l->bus ? lbus_fd(l->bus) : -1;
}

/* Pausing holds a bus that is up; while the link is down there is nothing
 * to read, and the library's attempts must run. */
static bool holding(const struct blocal *l)
{
	return l->paused && l->up;
}

short blocal_events(const struct blocal *l)
{
	short ev;

	if (!l->bus)
		return 0;
	ev = lbus_events(l->bus);
	return holding(l) ? (short)(ev & ~POLLIN) : ev;
}

int blocal_timeout(const struct blocal *l, int64_t now_ms)
{
	if (!l->bus)
		return l->retry_at_ms > now_ms ? (int)(l->retry_at_ms - now_ms) : 0;
	return holding(l) ? -1 : lbus_timeout(l->bus);
}

void blocal_handle(struct blocal *l, short revents, int64_t now_ms)
{
	int r = 0;

	if (l->fatal)
		return;
	if (!l->bus) {
		if (now_ms >= l->retry_at_ms)
			try_connect(l, now_ms);
		return;
	}
	/* A hung-up socket is dispatched even while held, so that the library
	 * notices the loss (and poll() does not spin on it). */
	if (holding(l) && !(revents & (POLLERR | POLLHUP))) {
		if (revents & POLLOUT)
			lbus_flush(l->bus, 0); /* a failure shows at the next dispatch */
	} else {
		r = lbus_dispatch(l->bus);
	}
	if (r < 0)
		blog(LOG_WARNING, "lost the bus at %s: %s; reconnecting", bus_path(l), lbus_strerror(r));
	if (r < 0 || l->reset)
		reset(l, now_ms);
}

void blocal_pause(struct blocal *l, bool pause)
{
	if (pause && !l->paused && l->bus)
		lbus_break(l->bus); /* the rest waits in the library until resumed */
	l->paused = pause;
}

int blocal_publish(struct blocal *l, const char *topic, const void *data, size_t len, bool retain)
{
	int r;

	if (!l->up)
		return -ENOTCONN;
	r = lbus_publish(l->bus, topic, data, len, LBUS_MORE | (retain ? LBUS_RETAIN : 0));
	if (r != -ECONNRESET)
		return r;
	l->up = false; /* keep nothing in the library until the restore is confirmed */
	return 0;
}

bool blocal_own(const struct blocal *l, const struct lbus_sender *s)
{
	if (l->bus && s->id == l->own_id)
		return true;
	return l->own_pid != 0 && s->pid == l->own_pid && s->uid == l->own_uid;
}
