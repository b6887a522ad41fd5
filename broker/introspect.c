/* SPDX-License-Identifier: MIT */
/*
 * Introspection requests: list (ClientList) and stats (Stats), answered
 * with the request's req_id echoed. These are rare, so they use the
 * generated protobuf-c structs, filled with pointers into the broker's own
 * state (names, patterns, group names, comm are all NUL-terminated already)
 * and packed once; the arrays live for the duration of the call only.
 *
 * The broker's own resources (resident memory, CPU time) are read from
 * /proc/self/statm and getrusage() when a stats request is answered, and
 * per-client gauges (queue high-water mark, the client a blocked one waits
 * on) are read from state the broker keeps anyway: answering costs the
 * asker, never the routing path.
 *
 * Every live connection is listed, in connection order, including the one
 * asking and any that has not finished its hello yet. An answer larger than
 * the asker's max_frame is refused with ERR_LIMIT instead of being cut.
 * Both reveal other users' pids and commands: a client of another user
 * needs the introspect verb (access.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "access.h"
#include "broker.h"
#include "clock.h"
#include "answer.h"
#include "peer.h"
#include "refusal.h"
#include "dispatch.h"
#include "introspect.h"
#include "lbus-limits.h"
#include "subscription.h"

#define INTROSPECT_PROC_PATH_MAX 64 /* "/proc/PID/comm" */

/* Arrays behind one ClientList or Stats answer. */
struct answer {
	size_t nclients, nnames, nsubs;
	Lbus__ClientInfo *infos, **info_ptrs;
	Lbus__ClientStats *stats, **stats_ptrs;
	Lbus__ClientCounters *ctrs;
	char **names;
	Lbus__SubscriptionInfo *subs, **sub_ptrs;
};

static void answer_free(struct answer *a)
{
	free(a->infos);
	free(a->info_ptrs);
	free(a->stats);
	free(a->stats_ptrs);
	free(a->ctrs);
	free(a->names);
	free(a->subs);
	free(a->sub_ptrs);
}

/* Count clients (and, for a list, their names and subscriptions) and
 * allocate the arrays. 0 or -ENOMEM. */
static int answer_alloc(struct broker *b, struct answer *a, bool list)
{
	const struct list *l;

	memset(a, 0, sizeof(*a));
	for (l = b->peers.next; l != &b->peers; l = l->next) {
		const struct peer *c = container_of(l, struct peer, link);
		a->nclients++;
		a->nnames += c->names.count;
		a->nsubs += c->nsubs;
	}
	a->ctrs = calloc(a->nclients + 1, sizeof(*a->ctrs));
	if (list) {
		a->infos = calloc(a->nclients + 1, sizeof(*a->infos));
		a->info_ptrs = calloc(a->nclients + 1, sizeof(*a->info_ptrs));
		a->names = calloc(a->nnames + 1, sizeof(*a->names));
		a->subs = calloc(a->nsubs + 1, sizeof(*a->subs));
		a->sub_ptrs = calloc(a->nsubs + 1, sizeof(*a->sub_ptrs));
		if (!a->infos || !a->info_ptrs || !a->names || !a->subs || !a->sub_ptrs)
			goto fail;
	} else {
		a->stats = calloc(a->nclients + 1, sizeof(*a->stats));
		a->stats_ptrs = calloc(a->nclients + 1, sizeof(*a->stats_ptrs));
		if (!a->stats || !a->stats_ptrs)
			goto fail;
	}
	if (!a->ctrs)
		goto fail;
	return 0;
fail:
	answer_free(a);
	return -ENOMEM;
}

static void fill_counters(Lbus__ClientCounters *out, const struct peer *c)
{
	lbus__client_counters__init(out);
	out->msgs_in = c->ctr.msgs_in;
	out->msgs_out = c->ctr.msgs_out;
	out->bytes_in = c->conn.bytes_in;
	out->bytes_out = c->conn.bytes_out;
	out->dropped = c->ctr.dropped;
	out->errors = c->ctr.errors;
}

/* Fill info for c, taking its names and subscriptions from the arrays at
 * *name_i and *sub_i. */
static void fill_info(struct answer *a, size_t i, const struct peer *c, size_t *name_i, size_t *sub_i)
{
	Lbus__ClientInfo *info = &a->infos[i];
	const struct list *l;

	lbus__client_info__init(info);
	info->id = c->id;
	info->pid = (uint32_t)c->pid;
	info->uid = c->uid;
	info->gid = c->gid;
	info->command = (char *)c->comm;
	info->queued_bytes = c->conn.outq.bytes;
	info->queued_bytes_max = c->conn.outq.bytes_max;
	info->blocked_on = c->blocked_on ? c->blocked_on->id : 0;
	info->monitor = c->monitor != NULL;
	info->connected_at_ms = c->connected_at_ms;
	fill_counters(&a->ctrs[i], c);
	info->counters = &a->ctrs[i];
	info->names = &a->names[*name_i];
	for (const struct name_entry *n = name_owner_first(&c->names); n; n = name_owner_next(&c->names, n))
		a->names[(*name_i)++] = (char *)n->name;
	info->n_names = (size_t)(&a->names[*name_i] - info->names);
	info->subscriptions = &a->sub_ptrs[*sub_i];
	for (l = c->subs.next; l != &c->subs; l = l->next) {
		const struct sub *s = container_of(l, struct sub, peer_link);
		Lbus__SubscriptionInfo *si = &a->subs[*sub_i];

		lbus__subscription_info__init(si);
		si->sub_id = s->id;
		si->pattern = (char *)s->pattern;
		si->group = s->member.group ? s->member.group->name : (char *)"";
		si->policy = (Lbus__Policy)s->policy;
		si->responder = s->responder;
		a->sub_ptrs[(*sub_i)++] = si;
	}
	info->n_subscriptions = (size_t)(&a->sub_ptrs[*sub_i] - info->subscriptions);
	a->info_ptrs[i] = info;
}

/* Pack and queue the answer: 0, INTROSPECT_E_TOO_LARGE when it exceeds c's
 * max_frame, or -ENOMEM. */
static int answer_queue(struct peer *c, const struct lbus_wire_frame *f, Lbus__Frame *out)
{
	out->req_id = f->req_id;
	if (lbus_frame_packed_size(out) - LBUS_FRAME_HEADER > c->conn.max_frame)
		return INTROSPECT_E_TOO_LARGE;
	return answer_frame(c, out);
}

int introspect_handle_list(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	Lbus__ClientList cl = LBUS__CLIENT_LIST__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;
	struct answer a;
	size_t i = 0, name_i = 0, sub_i = 0;
	int ret;

	if (c->foreign && access_denied(c, f, POLICY_INTROSPECT, POLICY_NONE, NULL, 0, &ret))
		return ret; /* others' pids and commands: only with introspect */
	if (answer_alloc(b, &a, true) < 0)
		return -ENOMEM;
	for (const struct list *l = b->peers.next; l != &b->peers; l = l->next)
		fill_info(&a, i++, container_of(l, struct peer, link), &name_i, &sub_i);
	cl.n_clients = a.nclients;
	cl.clients = a.info_ptrs;
	out.kind_case = LBUS__FRAME__KIND_CLIENT_LIST;
	out.client_list = &cl;
	ret = answer_queue(c, f, &out);
	answer_free(&a);
	return ret;
}

/* The broker's resident set in bytes (second field of /proc/self/statm, in
 * pages), 0 if unknown. */
static uint64_t self_rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	if (n != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t timeval_us(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void fill_broker_resources(Lbus__BrokerCounters *bc)
{
	struct rusage ru;

	bc->rss_bytes = self_rss_bytes();
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		bc->cpu_user_us = timeval_us(ru.ru_utime);
		bc->cpu_system_us = timeval_us(ru.ru_stime);
	}
}

static void fill_broker_counters(struct broker *b, Lbus__BrokerCounters *bc)
{
	bc->msgs_in = b->ctr.msgs.msgs_in;
	bc->msgs_out = b->ctr.msgs.msgs_out;
	bc->bytes_in = b->conns.bytes_in;
	bc->bytes_out = b->conns.bytes_out;
	bc->dropped = b->ctr.msgs.dropped;
	bc->errors = b->ctr.msgs.errors;
	bc->clients = b->ctr.clients;
	bc->clients_total = b->ctr.clients_total;
	bc->uptime_ms = (uint64_t)clock_now_ms() - b->started_ms;
	bc->retained = b->retained.count;
	bc->retained_bytes = b->retained.bytes;
	bc->subscriptions = b->subs.count;
	bc->names = names_count(&b->names);
	bc->calls_pending = calls_pending(&b->calls);
	bc->refused_max_clients = b->ctr.refused_max_clients;
	bc->refused_max_clients_per_uid = b->ctr.refused_max_clients_per_uid;
	bc->refused_max_names = b->ctr.refused_max_names;
	bc->refused_max_subscriptions = b->ctr.refused_max_subscriptions;
	fill_broker_resources(bc);
	bc->denied = b->ctr.denied;
	bc->filtered = b->ctr.filtered;
	bc->fds_in = b->conns.fds_in;
	bc->fds_out = b->conns.fds_out;
	bc->fds_held = b->ctr.fds_held;
	bc->fds_refused = b->ctr.fds_refused;
}

int introspect_handle_stats(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	Lbus__Stats st = LBUS__STATS__INIT;
	Lbus__BrokerCounters bc = LBUS__BROKER_COUNTERS__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;
	struct answer a;
	size_t i = 0;
	int ret;

	if (c->foreign && access_denied(c, f, POLICY_INTROSPECT, POLICY_NONE, NULL, 0, &ret))
		return ret; /* others' pids and commands: only with introspect */
	if (answer_alloc(b, &a, false) < 0)
		return -ENOMEM;
	for (const struct list *l = b->peers.next; l != &b->peers; l = l->next, i++) {
		const struct peer *cl = container_of(l, struct peer, link);

		lbus__client_stats__init(&a.stats[i]);
		a.stats[i].id = cl->id;
		a.stats[i].queued_bytes = cl->conn.outq.bytes;
		a.stats[i].queued_bytes_max = cl->conn.outq.bytes_max;
		a.stats[i].blocked_on = cl->blocked_on ? cl->blocked_on->id : 0;
		a.stats[i].fds_held = cl->fdacct->fds;
		a.stats[i].memfd_bytes_held = cl->fdacct->memfd_bytes;
		a.stats[i].fds_in = cl->conn.fds_in;
		a.stats[i].fds_out = cl->conn.outq.fds_sent;
		fill_counters(&a.ctrs[i], cl);
		a.stats[i].counters = &a.ctrs[i];
		a.stats_ptrs[i] = &a.stats[i];
	}
	fill_broker_counters(b, &bc);
	st.broker = &bc;
	st.n_clients = a.nclients;
	st.clients = a.stats_ptrs;
	out.kind_case = LBUS__FRAME__KIND_STATS_REPLY;
	out.stats_reply = &st;
	ret = answer_queue(c, f, &out);
	answer_free(&a);
	return ret;
}

void introspect_read_comm(struct peer *c)
{
	char path[INTROSPECT_PROC_PATH_MAX];
	ssize_t n;
	int fd;

	c->comm[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, c->comm, sizeof(c->comm) - 1);
	close(fd);
	if (n <= 0) {
		c->comm[0] = '\0';
		return;
	}
	if (c->comm[n - 1] == '\n')
		n--;
	c->comm[n] = '\0';
	for (ssize_t i = 0; i < n; i++) /* keep the string fields valid UTF-8 */
		if ((unsigned char)c->comm[i] < 0x20 || (unsigned char)c->comm[i] > 0x7e)
			c->comm[i] = '?';
}
