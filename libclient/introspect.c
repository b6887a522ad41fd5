/* SPDX-License-Identifier: MIT */
/*
 * Introspection: list clients, broker statistics, presence events.
 *
 * The answers (ClientList, Stats) and presence payloads (ClientEvent,
 * NameEvent) are decoded with protobuf-c, then copied into the public
 * structs of lbus.h inside ONE allocation, so that a single free releases
 * everything: each result is laid out by a size pass (*_size) and a fill
 * pass (*_fill) that take pieces of the block in the same order through
 * struct blk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client-internal.h"

/* ---- one-allocation builder ------------------------------------------------- */

/* Every piece of the block starts at a multiple of this (uint64_t fields). */
#define BLK_ALIGNMENT 8u
#define BLK_ALIGN(n) (((n) + BLK_ALIGNMENT - 1) & ~(size_t)(BLK_ALIGNMENT - 1))

struct blk {
	char *base;
	size_t off;
};

static void *blk_take(struct blk *b, size_t size)
{
	void *p = b->base + b->off;
	b->off += BLK_ALIGN(size);
	return p;
}

static const char *blk_str(struct blk *b, const char *s)
{
	s = s ? s : "";
	size_t n = strlen(s) + 1;
	char *p = blk_take(b, n);
	memcpy(p, s, n);
	return p;
}

static size_t str_size(const char *s)
{
	return BLK_ALIGN((s ? strlen(s) : 0) + 1);
}

static size_t strv_size(char **v, size_t n)
{
	size_t size = BLK_ALIGN(n * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		size += str_size(v[i]);
	return size;
}

static const char *const *blk_strv(struct blk *b, char **v, size_t n)
{
	const char **out = blk_take(b, n * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		out[i] = blk_str(b, v[i]);
	return out;
}

static void counters_copy(struct lbus_counters *out, const Lbus__ClientCounters *in)
{
	if (!in) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = (struct lbus_counters){in->msgs_in,   in->msgs_out, in->bytes_in,
				      in->bytes_out, in->dropped,  in->errors};
}

/* Send a list/stats request and wait for its answer's body (malloc'd). */
static int query(struct lbus *bus, Lbus__Frame *f, uint32_t want, int timeout_ms, struct req *req)
{
	return req_call(bus, req, want, f, io_deadline(timeout_ms));
}

/* ---- list ------------------------------------------------------------------------ */

static size_t client_size(const Lbus__ClientInfo *c)
{
	size_t size = strv_size(c->names, c->n_names) + str_size(c->command);
	size += BLK_ALIGN(c->n_subscriptions * sizeof(struct lbus_sub_info));
	for (size_t i = 0; i < c->n_subscriptions; i++)
		size += str_size(c->subscriptions[i]->pattern) + str_size(c->subscriptions[i]->group);
	return size;
}

static void client_fill(struct blk *b, struct lbus_client_info *out, const Lbus__ClientInfo *c)
{
	out->id = c->id;
	out->names = blk_strv(b, c->names, c->n_names);
	out->n_names = c->n_names;
	out->pid = (pid_t)c->pid;
	out->uid = (uid_t)c->uid;
	out->gid = (gid_t)c->gid;
	out->command = blk_str(b, c->command);
	struct lbus_sub_info *subs = blk_take(b, c->n_subscriptions * sizeof(*subs));
	for (size_t i = 0; i < c->n_subscriptions; i++) {
		const Lbus__SubscriptionInfo *s = c->subscriptions[i];
		subs[i].sub_id = s->sub_id;
		subs[i].pattern = blk_str(b, s->pattern);
		subs[i].group = blk_str(b, s->group);
		subs[i].policy =
		    s->policy == LBUS__POLICY__POLICY_BLOCK ? LBUS_POLICY_BLOCK : LBUS_POLICY_DROP;
		subs[i].responder = s->responder;
	}
	out->subs = subs;
	out->n_subs = c->n_subscriptions;
	out->queued_bytes = c->queued_bytes;
	counters_copy(&out->counters, c->counters);
	out->monitor = c->monitor;
	out->connected_at_ms = c->connected_at_ms;
	out->queued_bytes_max = c->queued_bytes_max;
	out->blocked_on = c->blocked_on;
}

static struct lbus_client_list *client_list_build(const Lbus__ClientList *in)
{
	size_t size = BLK_ALIGN(sizeof(struct lbus_client_list)) +
		      BLK_ALIGN(in->n_clients * sizeof(struct lbus_client_info));
	for (size_t i = 0; i < in->n_clients; i++)
		size += client_size(in->clients[i]);
	struct blk b = {.base = calloc(1, size)};
	if (!b.base)
		return NULL;
	struct lbus_client_list *list = blk_take(&b, sizeof(*list));
	struct lbus_client_info *clients = blk_take(&b, in->n_clients * sizeof(*clients));
	for (size_t i = 0; i < in->n_clients; i++)
		client_fill(&b, &clients[i], in->clients[i]);
	list->clients = clients;
	list->n_clients = in->n_clients;
	return list;
}

int lbus_client_list_get(lbus *bus, int timeout_ms, struct lbus_client_list **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	Lbus__ListRequest lr = LBUS__LIST_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_LIST;
	f.list = &lr;
	struct req req = {0};
	int r = query(bus, &f, LBUS_K_CLIENT_LIST, timeout_ms, &req);
	if (r < 0)
		return r;
	Lbus__ClientList *cl = lbus__client_list__unpack(NULL, req.body_len, req.body);
	free(req.body);
	if (!cl)
		return -EPROTO;
	*out = client_list_build(cl);
	lbus__client_list__free_unpacked(cl, NULL);
	return *out ? 0 : -ENOMEM;
}

void lbus_client_list_free(struct lbus_client_list *list)
{
	free(list);
}

/* ---- stats ------------------------------------------------------------------------ */

static void broker_stats_copy(struct lbus_broker_stats *out, const Lbus__BrokerCounters *in)
{
	if (!in)
		return;
	out->counters = (struct lbus_counters){in->msgs_in,   in->msgs_out, in->bytes_in,
					       in->bytes_out, in->dropped,  in->errors};
	out->clients = in->clients;
	out->clients_total = in->clients_total;
	out->uptime_ms = in->uptime_ms;
	out->retained = in->retained;
	out->retained_bytes = in->retained_bytes;
	out->subscriptions = in->subscriptions;
	out->names = in->names;
	out->calls_pending = in->calls_pending;
	out->refused_max_clients = in->refused_max_clients;
	out->refused_max_clients_per_uid = in->refused_max_clients_per_uid;
	out->refused_max_names = in->refused_max_names;
	out->refused_max_subscriptions = in->refused_max_subscriptions;
	out->rss_bytes = in->rss_bytes;
	out->cpu_user_us = in->cpu_user_us;
	out->cpu_system_us = in->cpu_system_us;
	out->denied = in->denied;
	out->filtered = in->filtered;
	out->fds_in = in->fds_in;
	out->fds_out = in->fds_out;
	out->fds_held = in->fds_held;
	out->fds_refused = in->fds_refused;
}

static struct lbus_stats *stats_build(const Lbus__Stats *in)
{
	size_t size = BLK_ALIGN(sizeof(struct lbus_stats)) +
		      BLK_ALIGN(in->n_clients * sizeof(struct lbus_client_stats));
	struct blk b = {.base = calloc(1, size)};
	if (!b.base)
		return NULL;
	struct lbus_stats *st = blk_take(&b, sizeof(*st));
	struct lbus_client_stats *clients = blk_take(&b, in->n_clients * sizeof(*clients));
	broker_stats_copy(&st->broker, in->broker);
	for (size_t i = 0; i < in->n_clients; i++) {
		const Lbus__ClientStats *c = in->clients[i];
		clients[i].id = c->id;
		counters_copy(&clients[i].counters, c->counters);
		clients[i].queued_bytes = c->queued_bytes;
		clients[i].queued_bytes_max = c->queued_bytes_max;
		clients[i].blocked_on = c->blocked_on;
		clients[i].fds_held = c->fds_held;
		clients[i].memfd_bytes_held = c->memfd_bytes_held;
		clients[i].fds_in = c->fds_in;
		clients[i].fds_out = c->fds_out;
	}
	st->clients = clients;
	st->n_clients = in->n_clients;
	return st;
}

int lbus_stats_get(lbus *bus, int timeout_ms, struct lbus_stats **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	Lbus__StatsRequest sr = LBUS__STATS_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	f.kind_case = LBUS__FRAME__KIND_STATS;
	f.stats = &sr;
	struct req req = {0};
	int r = query(bus, &f, LBUS_K_STATS_REPLY, timeout_ms, &req);
	if (r < 0)
		return r;
	Lbus__Stats *s = lbus__stats__unpack(NULL, req.body_len, req.body);
	free(req.body);
	if (!s)
		return -EPROTO;
	*out = stats_build(s);
	lbus__stats__free_unpacked(s, NULL);
	return *out ? 0 : -ENOMEM;
}

void lbus_stats_free(struct lbus_stats *stats)
{
	free(stats);
}

/* ---- presence ---------------------------------------------------------------------- */

static struct lbus_presence *presence_build(uint64_t id, char **names, size_t n_names, uint32_t pid,
					    uint32_t uid, uint32_t gid, const char *command)
{
	size_t size = BLK_ALIGN(sizeof(struct lbus_presence)) + strv_size(names, n_names) + str_size(command);
	struct blk b = {.base = calloc(1, size)};
	if (!b.base)
		return NULL;
	struct lbus_presence *p = blk_take(&b, sizeof(*p));
	p->id = id;
	p->names = blk_strv(&b, names, n_names);
	p->n_names = n_names;
	p->pid = (pid_t)pid;
	p->uid = (uid_t)uid;
	p->gid = (gid_t)gid;
	p->command = blk_str(&b, command);
	return p;
}

static int presence_client(const struct lbus_msg *msg, struct lbus_presence **out)
{
	Lbus__ClientEvent *e = lbus__client_event__unpack(NULL, msg->len, msg->data);
	if (!e)
		return -EPROTO;
	*out = presence_build(e->id, e->names, e->n_names, e->pid, e->uid, e->gid, e->command);
	lbus__client_event__free_unpacked(e, NULL);
	return *out ? 0 : -ENOMEM;
}

static int presence_name(const struct lbus_msg *msg, struct lbus_presence **out)
{
	Lbus__NameEvent *e = lbus__name_event__unpack(NULL, msg->len, msg->data);
	if (!e)
		return -EPROTO;
	char *names[1] = {e->name};
	*out = presence_build(e->owner, names, 1, e->pid, e->uid, 0, "");
	lbus__name_event__free_unpacked(e, NULL);
	return *out ? 0 : -ENOMEM;
}

int lbus_presence_decode(const struct lbus_msg *msg, struct lbus_presence **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!msg || !msg->topic || (!msg->data && msg->len))
		return -EINVAL;
	if (!strcmp(msg->topic, LBUS_TOPIC_CLIENT_CONNECTED) ||
	    !strcmp(msg->topic, LBUS_TOPIC_CLIENT_DISCONNECTED))
		return presence_client(msg, out);
	if (!strcmp(msg->topic, LBUS_TOPIC_NAME_TAKEN) || !strcmp(msg->topic, LBUS_TOPIC_NAME_RELEASED))
		return presence_name(msg, out);
	return -EPROTO;
}

void lbus_presence_free(struct lbus_presence *p)
{
	free(p);
}
