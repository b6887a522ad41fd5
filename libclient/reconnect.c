/* SPDX-License-Identifier: MIT */
/*
 * Reconnect mode (lbus_connect_opts.reconnect; lbus.h "Reconnecting"),
 * like NATS's and ubus's clients.
 *
 * A loss the mode recovers from (rc_recoverable: -ECONNRESET) is handled in
 * two steps. rc_lost() runs no callback: it discards the output not
 * written (counted as lost), drops the partial input, puts a descriptor
 * that never becomes ready (an eventfd nobody writes) under the number of
 * lbus_fd() with dup3(), and schedules the first attempt. rc_tick(), from
 * every io_work(), then fails pending requests and calls with -ECONNRESET
 * and tells the application (LBUS_DISCONNECTED).
 *
 * Attempts never block: a Unix socket connect() answers at once. When due
 * (exponential backoff from min_ms to max_ms, each pause a random 50-100%
 * of the step), rc_attempt() opens a socket (with lbus_connect()'s trust
 * checks), dup3()s it under the same number, and buffers, in this order:
 * the Hello, a TakeName per owned name, a Subscribe per subscription (same
 * sub_id and options), the Monitor request, then the publishes kept while
 * disconnected. The broker handles frames in order, so the subscriptions
 * exist before those publishes are routed. Their answers are asynchronous
 * requests (req.c) completed by replay_done(), which reports a refusal to
 * the error handler and forgets that name or subscription. The Welcome
 * ends the hello (LBUS_RECONNECTED); a hello that fails or takes longer
 * than the connection's timeout is one more failed attempt.
 *
 * While the link is not up, io.c keeps publishes (io_out_commit: up to
 * `buffer` bytes, then -ENOBUFS) and refuses other frames (-ENOTCONN).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client-internal.h"
#include "lbus-limits.h"

void rc_init(struct lbus *bus, const struct lbus_connect_opts *opts, const char *path)
{
	struct rc_state *rc = &bus->rc;
	rc->enabled = opts->reconnect;
	rc->min_ms = opts->reconnect_min_ms > 0 ? opts->reconnect_min_ms : LBUS_DEFAULT_RECONNECT_MIN_MS;
	rc->max_ms = opts->reconnect_max_ms > 0 ? opts->reconnect_max_ms : LBUS_DEFAULT_RECONNECT_MAX_MS;
	if (rc->max_ms < rc->min_ms)
		rc->max_ms = rc->min_ms;
	rc->buffer = opts->reconnect_buffer ? opts->reconnect_buffer : LBUS_DEFAULT_RECONNECT_BUFFER;
	rc->rng = (uint64_t)io_now_ms() * 0x9E3779B97F4A7C15u ^ (uint64_t)getpid() ^ (uintptr_t)bus;
	snprintf(rc->path, sizeof(rc->path), "%s", path);
}

void rc_deinit(struct lbus *bus)
{
	for (size_t i = 0; i < bus->rc.n_names; i++)
		free(bus->rc.names[i]);
	free(bus->rc.names);
	free(bus->rc.monitor);
}

void lbus_on_connection(lbus *bus, lbus_connection_fn fn, void *userdata)
{
	bus->rc.fn = fn;
	bus->rc.ud = userdata;
}

static void rc_event(struct lbus *bus, enum lbus_connection_event ev, int err)
{
	if (bus->rc.fn)
		bus->rc.fn(bus, ev, err, bus->rc.ud);
}

bool rc_recoverable(const struct lbus *bus)
{
	return bus->rc.enabled && bus->dead == -ECONNRESET;
}

/* ---- what to restore ------------------------------------------------------ */

static ssize_t name_index(const struct lbus *bus, const char *name)
{
	for (size_t i = 0; i < bus->rc.n_names; i++)
		if (!strcmp(bus->rc.names[i], name))
			return (ssize_t)i;
	return -1;
}

void rc_name_add(struct lbus *bus, const char *name)
{
	struct rc_state *rc = &bus->rc;
	if (!rc->enabled || name_index(bus, name) >= 0)
		return;
	if (rc->n_names == rc->cap_names) {
		size_t cap = rc->cap_names ? 2 * rc->cap_names : 4;
		char **p = realloc(rc->names, cap * sizeof(*p));
		if (!p)
			return;
		rc->names = p;
		rc->cap_names = cap;
	}
	char *copy = strdup(name);
	if (copy)
		rc->names[rc->n_names++] = copy;
}

void rc_name_del(struct lbus *bus, const char *name)
{
	ssize_t i = name_index(bus, name);
	if (i < 0)
		return;
	free(bus->rc.names[i]);
	bus->rc.names[i] = bus->rc.names[--bus->rc.n_names];
}

void rc_monitor_set(struct lbus *bus, const char *pattern)
{
	if (!bus->rc.enabled)
		return;
	free(bus->rc.monitor);
	bus->rc.monitor = strdup(pattern ? pattern : "");
}

struct take_wrap {
	lbus_done_fn fn;
	void *userdata;
	char name[];
};

static void take_done(lbus *bus, int err, void *userdata)
{
	struct take_wrap *w = userdata;
	if (err == 0)
		rc_name_add(bus, w->name);
	lbus_done_fn fn = w->fn;
	void *ud = w->userdata;
	free(w);
	fn(bus, err, ud);
}

int rc_take_async(struct lbus *bus, Lbus__Frame *f, const char *name, lbus_done_fn fn, void *userdata)
{
	if (!bus->rc.enabled)
		return req_async(bus, f, 0, fn, userdata);
	size_t len = strlen(name);
	struct take_wrap *w = malloc(sizeof(*w) + len + 1);
	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->userdata = userdata;
	memcpy(w->name, name, len + 1);
	int r = req_async(bus, f, 0, take_done, w);
	if (r < 0)
		free(w);
	return r;
}

/* ---- the replay ------------------------------------------------------------ */

/* What one replayed request restores, for its completion. */
struct replay {
	uint64_t sub_id; /* a subscription, else a name or the monitor */
	bool monitor;
	char what[]; /* the name or pattern */
};

static void replay_done(lbus *bus, int err, void *userdata)
{
	struct replay *rp = userdata;
	if (err < 0 && err != -ECONNRESET) {
		char text[LBUS_MAX_TOPIC_LEN + 64];
		if (rp->sub_id) {
			snprintf(text, sizeof(text), "reconnected: subscribing to %s again failed", rp->what);
			sub_free(idmap_del(&bus->subs, rp->sub_id));
		} else if (rp->monitor) {
			snprintf(text, sizeof(text), "reconnected: monitoring again failed");
		} else {
			snprintf(text, sizeof(text), "reconnected: taking name %s again failed", rp->what);
			rc_name_del(bus, rp->what);
		}
		req_async_error(bus, err, text);
	}
	free(rp);
}

/* Buffer f as a request answered by replay_done. */
static void replay_send(struct lbus *bus, Lbus__Frame *f, uint64_t sub_id, bool monitor, const char *what)
{
	size_t len = strlen(what);
	struct replay *rp = malloc(sizeof(*rp) + len + 1);
	if (!rp)
		return;
	rp->sub_id = sub_id;
	rp->monitor = monitor;
	memcpy(rp->what, what, len + 1);
	if (req_async(bus, f, 0, replay_done, rp) < 0)
		free(rp);
}

static void replay_names(struct lbus *bus)
{
	for (size_t i = 0; i < bus->rc.n_names; i++) {
		Lbus__NameRequest req = LBUS__NAME_REQUEST__INIT;
		Lbus__Frame f = LBUS__FRAME__INIT;
		req.name = bus->rc.names[i];
		f.kind_case = LBUS__FRAME__KIND_TAKE_NAME;
		f.take_name = &req;
		replay_send(bus, &f, 0, false, req.name);
	}
}

static void replay_sub(struct lbus *bus, const struct sub *s)
{
	Lbus__Subscribe sub = LBUS__SUBSCRIBE__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	sub.sub_id = s->id;
	sub.pattern = s->pattern;
	sub.group = s->group ? s->group : "";
	sub.policy = s->block ? LBUS__POLICY__POLICY_BLOCK : LBUS__POLICY__POLICY_DROP;
	sub.responder = s->responder;
	sub.max_msgs = s->left;
	sub.stall_ms = s->stall_ms;
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &sub;
	replay_send(bus, &f, s->id, false, s->pattern);
}

static void replay_subs(struct lbus *bus)
{
	for (size_t i = 0; i < bus->subs.cap; i++) {
		const struct sub *s = bus->subs.slots[i].value;
		if (bus->subs.slots[i].key && s->pattern && !s->cancelling)
			replay_sub(bus, s);
	}
}

static void replay_monitor(struct lbus *bus)
{
	if (!bus->rc.monitor)
		return;
	Lbus__MonitorRequest mr = LBUS__MONITOR_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	mr.pattern = bus->rc.monitor;
	f.kind_case = LBUS__FRAME__KIND_MONITOR;
	f.monitor = &mr;
	replay_send(bus, &f, 0, true, mr.pattern);
}

/* Buffer the Hello and the replay ahead of the publishes kept meanwhile. */
static int replay_buffer(struct lbus *bus)
{
	size_t kept = io_out_pending(bus);
	uint8_t *held = NULL;
	if (kept && !(held = malloc(kept)))
		return -ENOMEM;
	if (kept)
		memcpy(held, bus->out + bus->out_head, kept);
	bus->out_head = bus->out_tail = bus->out_mark = 0;
	bus->rc.replaying = true;
	int r = client_send_hello(bus);
	if (r == 0) {
		replay_names(bus);
		replay_subs(bus);
		replay_monitor(bus);
	}
	bus->rc.replaying = false;
	uint8_t *p = kept ? io_out_reserve(bus, kept) : NULL;
	if (p) {
		memcpy(p, held, kept);
		bus->out_tail += kept;
	} else if (kept) {
		r = -ENOMEM;
	}
	free(held);
	return r;
}

/* ---- the link ---------------------------------------------------------------- */

/* Pause before the next attempt: the backoff step with jitter. */
static int64_t backoff_ms(struct rc_state *rc)
{
	int64_t step = rc->min_ms;
	for (unsigned i = 0; i < rc->attempt && step < rc->max_ms; i++)
		step *= 2;
	if (step > rc->max_ms)
		step = rc->max_ms;
	rc->attempt++;
	rc->rng ^= rc->rng << 13;
	rc->rng ^= rc->rng >> 7;
	rc->rng ^= rc->rng << 17;
	return step / 2 + (int64_t)(rc->rng % (uint64_t)(step / 2 + 1));
}

/* Put a descriptor that never becomes ready under bus->fd's number. */
static void fd_park(struct lbus *bus)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return; /* keep the dead socket: it polls as hung up, no worse */
	dup3(efd, bus->fd, O_CLOEXEC);
	close(efd);
}

/* Drop the current socket (or attempt) and wait for the next attempt. */
static void rc_down_now(struct lbus *bus)
{
	struct rc_state *rc = &bus->rc;
	bus->out_lost += io_out_frames(bus);
	bus->out_head = bus->out_tail = bus->out_mark = 0;
	bus->in.start = bus->in.end;
	bus->welcomed = false;
	fd_park(bus);
	if (rc->link == RC_HELLO)
		req_fail_all(bus, -ECONNRESET); /* only the replay's requests */
	rc->link = RC_DOWN;
	rc->due = io_now_ms() + backoff_ms(rc);
}

void rc_lost(struct lbus *bus)
{
	struct rc_state *rc = &bus->rc;
	if (rc->link == RC_UP) {
		rc->notify = true;
		rc->notify_err = bus->dead;
		rc->attempt = 0;
	}
	bus->dead = 0;
	bus->lost_done = false;
	rc_down_now(bus);
}

static void rc_attempt(struct lbus *bus)
{
	struct rc_state *rc = &bus->rc;
	int fd = client_socket_open(rc->path, bus->any_broker_uid, io_now_ms());
	if (fd < 0) {
		rc->due = io_now_ms() + backoff_ms(rc);
		return;
	}
	dup3(fd, bus->fd, O_CLOEXEC);
	close(fd);
	rc->link = RC_HELLO;
	rc->due = io_deadline(bus->timeout_ms);
	if (replay_buffer(bus) < 0) {
		rc_down_now(bus);
		return;
	}
	rc_event(bus, LBUS_CONNECTING, 0);
}

void rc_tick(struct lbus *bus)
{
	struct rc_state *rc = &bus->rc;
	if (!rc->enabled)
		return;
	if (bus->dead && !bus->lost_done && rc_recoverable(bus))
		rc_lost(bus);
	if (rc->notify) {
		rc->notify = false;
		req_fail_all(bus, -ECONNRESET);
		calls_fail_all(bus, -ECONNRESET);
		rc_event(bus, LBUS_DISCONNECTED, rc->notify_err);
	}
	if (rc->link == RC_UP || rc->due < 0 || io_now_ms() < rc->due)
		return;
	if (rc->link == RC_DOWN)
		rc_attempt(bus);
	else
		rc_down_now(bus); /* the hello took longer than the timeout */
}

int rc_timeout(const struct lbus *bus, int64_t now)
{
	const struct rc_state *rc = &bus->rc;
	if (rc->notify || (bus->dead && !bus->lost_done && rc_recoverable(bus)))
		return 0;
	if (rc->link == RC_UP || rc->due < 0)
		return -1;
	return rc->due > now ? (int)(rc->due - now) : 0;
}

void rc_on_welcome(struct lbus *bus)
{
	if (bus->rc.link != RC_HELLO)
		return;
	bus->rc.link = RC_UP;
	bus->rc.attempt = 0;
	rc_event(bus, LBUS_RECONNECTED, 0);
}
