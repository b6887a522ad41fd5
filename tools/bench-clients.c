/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: the clients scenario. C idle clients, each connected through
 * its own lbus handle with one subscription to its own topic
 * (bench/idle/<n>), spread over several processes because one process can
 * hold only so many descriptors (at most CLIENTS_PER_PROC each, fewer if
 * RLIMIT_NOFILE is lower). The broker's VmRSS is read before any of them
 * connects and again once all say ready; the difference divided by the
 * clients reached is the broker's memory per client.
 *
 * The count is capped by the descriptor limit the broker inherits (the
 * parent raised its soft limit to the hard one before starting it); a cap
 * or a process running out of descriptors is reported as a lower count,
 * any other connect or subscribe failure fails the run.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "lbus.h"

#define CLIENTS_PER_PROC 1000
#define FD_RESERVE 64	       /* descriptors kept free in every process */
#define SETTLE_NS 300000000ull /* let the broker finish before reading RSS */

struct clients_run {
	const struct bench_clients *c;
	unsigned per_proc;
	unsigned procs;
};

static void on_idle_msg(lbus *bus, const struct lbus_msg *msg, void *userdata) {}

static unsigned share_of(const struct clients_run *cr, unsigned index)
{
	unsigned first = index * cr->per_proc;
	unsigned left = cr->c->clients - first;

	return left < cr->per_proc ? left : cr->per_proc;
}

/* Connect and subscribe one client; -EMFILE/-ENFILE mean "no more here". */
static int connect_one(lbus **bus, const char *sock, unsigned global)
{
	char topic[64];
	int r;

	r = lbus_connect(bus, sock);
	if (r < 0)
		return r;
	snprintf(topic, sizeof(topic), "bench/idle/%u", global);
	r = lbus_subscribe(*bus, topic, on_idle_msg, NULL, NULL, NULL);
	if (r < 0) {
		lbus_close(*bus);
		*bus = NULL;
		return r;
	}
	return 0;
}

static void idle_until_stop(struct bench_child *c)
{
	while (!bench_child_should_stop(c))
		poll(NULL, 0, 50);
}

static int idle_clients(struct bench_child *c)
{
	struct clients_run *cr = c->args;
	unsigned n = share_of(cr, c->index), made = 0;
	lbus **buses = calloc(n ? n : 1, sizeof(*buses));
	int r = 0;

	if (!buses)
		return bench_child_fail(c, -ENOMEM, "clients", strerror(ENOMEM));
	for (; made < n && r == 0; made++) {
		r = connect_one(&buses[made], cr->c->sock, c->index * cr->per_proc + made);
		if (r < 0)
			break;
		__atomic_store_n(&c->slot->count, made + 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&c->slot->count, made, __ATOMIC_RELEASE);
	if (r == -EMFILE || r == -ENFILE)
		snprintf(c->slot->why, sizeof(c->slot->why), "out of descriptors after %u clients", made);
	else if (r < 0)
		bench_child_fail(c, r, "idle client connect/subscribe", lbus_strerror(r));
	if (r == 0 || r == -EMFILE || r == -ENFILE) {
		bench_child_ready(c);
		idle_until_stop(c);
		r = 0;
	}
	for (unsigned i = 0; i < made; i++)
		lbus_close(buses[i]);
	free(buses);
	return r;
}

/* How many clients the descriptor limits allow, and how to spread them. */
static void plan(struct clients_run *cr, unsigned *capped)
{
	struct rlimit rl = {0};
	uint64_t limit;

	getrlimit(RLIMIT_NOFILE, &rl);
	limit = rl.rlim_cur > FD_RESERVE ? rl.rlim_cur - FD_RESERVE : 1;
	cr->per_proc = limit < CLIENTS_PER_PROC ? (unsigned)limit : CLIENTS_PER_PROC;
	*capped = cr->c->clients;
	if (*capped > limit) /* the broker holds one descriptor per client */
		*capped = (unsigned)limit;
	if (*capped > (uint64_t)cr->per_proc * BENCH_MAX_PROCS)
		*capped = cr->per_proc * BENCH_MAX_PROCS;
	cr->procs = (*capped + cr->per_proc - 1) / cr->per_proc;
}

static void settle(void)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = SETTLE_NS};

	nanosleep(&ts, NULL);
}

static void collect(const struct clients_run *cr, const struct bench_group *g, struct bench_result *res)
{
	res->clients = 0;
	for (unsigned i = 0; i < cr->procs; i++) {
		const struct bench_slot *s = &g->shared->slot[i];

		res->clients += (unsigned)__atomic_load_n(&s->count, __ATOMIC_ACQUIRE);
		if (s->why[0] && !res->why[0])
			snprintf(res->why, sizeof(res->why), "%s", s->why);
	}
}

int bench_lbus_clients(const struct bench_clients *c, struct bench_result *res)
{
	struct bench_clients capped_c = *c;
	struct clients_run cr = {.c = &capped_c};
	uint64_t before = 0, after = 0;
	struct bench_group g;
	int r;

	plan(&cr, &capped_c.clients);
	r = bench_group_init(&g, c->time_limit_s);
	settle();
	if (r == 0)
		r = bench_proc_rss_kib(c->broker_pid, &before);
	for (unsigned i = 0; i < cr.procs && r == 0; i++)
		r = bench_group_spawn(&g, idle_clients, &cr, "lbus-idle");
	if (r == 0)
		r = bench_group_wait_ready(&g, res);
	if (r == 0) {
		settle();
		r = bench_proc_rss_kib(c->broker_pid, &after);
	}
	collect(&cr, &g, res);
	if (r == 0 && res->clients > 0)
		res->rss_per_client_kib = ((double)after - (double)before) / res->clients;
	bench_group_stop(&g);
	if (r == 0)
		r = bench_group_finish(&g);
	return bench_group_conclude(&g, r, res);
}
