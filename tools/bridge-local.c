/* SPDX-License-Identifier: MIT */
/*
 * The local side of lbus-bridge with its own reconnect loop (see
 * bridge-local.h; to be replaced by liblbus's reconnect mode when it lands).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge-local.h"
#include "bridge-log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
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
	l->backoff_ms = BACKOFF_MIN_MS;
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
	if (l->bus && lbus_unsent(l->bus))
		lbus_flush(l->bus, 1000);
	lbus_close(l->bus);
	free(l->subs);
	memset(l, 0, sizeof(*l));
}

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

/* Take the name and subscribe the routes. 0, or a negative errno; -EINVAL
 * means the bus refuses the configuration (fatal). */
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
	l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void try_connect(struct blocal *l, int64_t now_ms)
{
	int r = lbus_connect(&l->bus, l->cfg->socket);

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
	blog(LOG_NOTICE, "connected to the bus at %s as '%s' (client %llu)", bus_path(l), l->cfg->name,
	     (unsigned long long)l->own_id);
	l->failing = false;
	l->backoff_ms = BACKOFF_MIN_MS;
	l->ops->on_state(l->ud, true, 0);
}

static void lost(struct blocal *l, int err, int64_t now_ms)
{
	uint64_t unsent = lbus_unsent(l->bus);

	blog(LOG_WARNING, "lost the bus at %s: %s; reconnecting", bus_path(l), lbus_strerror(err));
	lbus_close(l->bus);
	l->bus = NULL;
	l->failing = true;
	l->ops->on_state(l->ud, false, unsent);
	schedule_retry(l, now_ms);
}

int blocal_fd(const struct blocal *l)
{
	return l->bus ? lbus_fd(l->bus) : -1;
}

short blocal_events(const struct blocal *l)
{
	short ev;

	if (!l->bus)
		return 0;
	ev = lbus_events(l->bus);
	return l->paused ? (short)(ev & ~POLLIN) : ev;
}

int blocal_timeout(const struct blocal *l, int64_t now_ms)
{
	if (!l->bus)
		return l->retry_at_ms > now_ms ? (int)(l->retry_at_ms - now_ms) : 0;
	return l->paused ? -1 : lbus_timeout(l->bus);
}

void blocal_handle(struct blocal *l, short revents, int64_t now_ms)
{
	int r;

	if (l->fatal)
		return;
	if (!l->bus) {
		if (now_ms >= l->retry_at_ms)
			try_connect(l, now_ms);
		return;
	}
	if (l->paused)
		r = (revents & POLLOUT) ? lbus_flush(l->bus, 0) : 0;
	else
		r = lbus_dispatch(l->bus);
	if (r == -ETIMEDOUT)
		r = 0;
	if (r < 0 || (revents & (POLLERR | POLLHUP)))
		lost(l, r < 0 ? r : -ECONNRESET, now_ms);
}

void blocal_pause(struct blocal *l, bool pause)
{
	if (pause && !l->paused && l->bus)
		lbus_break(l->bus); /* the rest waits in the library until resumed */
	l->paused = pause;
}

int blocal_publish(struct blocal *l, const char *topic, const void *data, size_t len, bool retain)
{
	if (!l->bus)
		return -ENOTCONN;
	return lbus_publish(l->bus, topic, data, len, LBUS_MORE | (retain ? LBUS_RETAIN : 0));
}

bool blocal_own(const struct blocal *l, const struct lbus_sender *s)
{
	if (l->bus && s->id == l->own_id)
		return true;
	return l->own_pid != 0 && s->pid == l->own_pid && s->uid == l->own_uid;
}
