/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge's forwarding decisions and counters (see bridge-core.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge-core.h"
#include "cli.h"

void bridge_core_init(struct bridge_core *c, const struct bridge_config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	bqueue_init(&c->q, cfg->queue_max_msgs, cfg->queue_max_bytes);
}

void bridge_core_free(struct bridge_core *c)
{
	bqueue_clear(&c->q);
}

static enum bridge_verdict skip(struct bridge_core *c, int64_t now_ms, const char *dir, const char *topic,
				const char *why)
{
	c->n.skipped++;
	if (blog_allow(&c->lim_skip, now_ms, "skipped topics"))
		blog(LOG_WARNING, "skipped %s message on '%.200s': %s", dir, topic, why);
	return BRIDGE_SKIP_TOPIC;
}

enum bridge_verdict bridge_core_from_local(struct bridge_core *c, const struct bridge_route *r,
					   const char *topic, const void *data, size_t len, bool retain,
					   bool own, int64_t now_ms)
{
	const char *why;
	long tl;
	int err;

	if (own) {
		c->n.own++;
		return BRIDGE_SKIP_OWN;
	}
	tl = btopic_map(topic, r->local_prefix, r->remote_prefix, c->topic, sizeof(c->topic));
	if (tl < 0)
		return skip(c, now_ms, "outgoing", topic,
			    tl == -ENOENT ? "outside the route's local-prefix" : "too long for MQTT");
	if (btopic_name_check(c->topic, (size_t)tl, &why))
		return skip(c, now_ms, "outgoing", c->topic, why);
	err = bqueue_push(&c->q, c->topic, data, len, r->qos, retain);
	if (err == 0)
		return BRIDGE_QUEUED;
	c->n.dropped_out++;
	if (blog_allow(&c->lim_drop, now_ms, "dropped messages"))
		blog(LOG_WARNING,
		     "queue full (%llu messages, %llu bytes) while MQTT is %s: dropped message on '%.200s'",
		     (unsigned long long)c->q.msgs, (unsigned long long)c->q.bytes,
		     c->mqtt_up ? "up" : "down", topic);
	return BRIDGE_DROPPED;
}

void bridge_core_local_dropped(struct bridge_core *c, uint64_t count, int64_t now_ms)
{
	c->n.dropped_out += count;
	if (blog_allow(&c->lim_drop, now_ms, "dropped messages"))
		blog(LOG_WARNING, "the bus dropped %llu messages for the bridge (it read too slowly)",
		     (unsigned long long)count);
}

static const struct bridge_route *in_route(const struct bridge_core *c, const char *topic)
{
	for (size_t i = 0; i < c->cfg->n_routes; i++) {
		const struct bridge_route *r = &c->cfg->routes[i];

		if (r->dir == BRIDGE_IN && btopic_match(r->remote_pattern, topic))
			return r;
	}
	return NULL;
}

enum bridge_verdict bridge_core_from_remote(struct bridge_core *c, int mid, int qos, const char *topic,
					    const void *data, size_t len, bool retain, int64_t now_ms)
{
	const struct bridge_route *r = in_route(c, topic);

	if (!r)
		return skip(c, now_ms, "incoming", topic,
			    "no in route matches (a subscription of an older session?)");
	if (qos > 0 && bdedup_check(&c->dedup, mid, bdedup_hash(topic, data, len, retain))) {
		c->n.duplicates++;
		return BRIDGE_SKIP_DUP;
	}
	if (btopic_map(topic, r->remote_prefix, r->local_prefix, c->topic, sizeof(c->topic)) < 0)
		return skip(c, now_ms, "incoming", topic, "outside the route's remote-prefix, or too long");
	return BRIDGE_FORWARD;
}

void bridge_core_in_done(struct bridge_core *c, int err, int64_t now_ms)
{
	if (err == 0) {
		c->n.forwarded_in++;
	} else if (err == -EINVAL || err == -EACCES) {
		skip(c, now_ms, "incoming", c->topic,
		     err == -EACCES ? "the bus reserves '$' topics" : "the bus refuses this topic");
	} else {
		c->n.dropped_in++;
		if (blog_allow(&c->lim_in, now_ms, "dropped incoming messages"))
			blog(LOG_WARNING, "dropped incoming message on '%.200s': %s", c->topic,
			     err == -ENOTCONN ? "the bus is not connected" : lbus_strerror(err));
	}
}

void bridge_core_handed(struct bridge_core *c, struct bq_entry *e, int mid)
{
	if (e->qos == 0)
		c->n.forwarded_out++;
	bqueue_handed(&c->q, e, mid);
}

void bridge_core_acked(struct bridge_core *c, int mid)
{
	if (bqueue_acked(&c->q, mid) >= 0)
		c->n.forwarded_out++;
}

void bridge_core_mqtt_connected(struct bridge_core *c, bool session_present)
{
	c->n.mqtt_connects++;
	bdedup_connected(&c->dedup, session_present);
}

void bridge_core_tick(struct bridge_core *c, int64_t now_ms)
{
	blog_flush(&c->lim_drop, now_ms, "dropped messages");
	blog_flush(&c->lim_skip, now_ms, "skipped topics");
	blog_flush(&c->lim_in, now_ms, "dropped incoming messages");
}

static void json_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, ",\"%s\":%llu", key, (unsigned long long)v);
}

int bridge_core_status_json(const struct bridge_core *c, char **out, size_t *len)
{
	const struct bridge_counters *n = &c->n;
	FILE *f = open_memstream(out, len);

	if (!f)
		return -ENOMEM;
	fputs("{\"name\":", f);
	cli_json_cstring(f, c->cfg->name);
	fputs(",\"client_id\":", f);
	cli_json_cstring(f, c->cfg->client_id);
	fprintf(f, ",\"broker\":");
	cli_json_cstring(f, c->cfg->host);
	fprintf(f, ",\"port\":%d,\"connected\":%s,\"lbus_connected\":%s", c->cfg->port,
		c->mqtt_up ? "true" : "false", c->local_up ? "true" : "false");
	json_u64(f, "queued", c->q.msgs);
	json_u64(f, "queued_bytes", c->q.bytes);
	json_u64(f, "inflight", c->q.inflight);
	fprintf(f, ",\"forwarded\":{\"out\":%llu,\"in\":%llu}", (unsigned long long)n->forwarded_out,
		(unsigned long long)n->forwarded_in);
	fprintf(f, ",\"dropped\":{\"out\":%llu,\"in\":%llu}", (unsigned long long)n->dropped_out,
		(unsigned long long)n->dropped_in);
	json_u64(f, "skipped", n->skipped);
	json_u64(f, "duplicates", n->duplicates);
	json_u64(f, "mqtt_connects", n->mqtt_connects);
	json_u64(f, "lbus_connects", n->local_connects);
	fputs("}", f);
	return fclose(f) == 0 ? 0 : -ENOMEM;
}
