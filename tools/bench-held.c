/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench's "held" scenario: does a request cost more when the client
 * already holds many items? (Every per-client operation of the broker must
 * be O(1) or O(log n) in what the client holds.)
 *
 * One client, in this process, on a private broker whose per-client limits
 * are raised above what it will hold. For each item kind (names, then
 * subscriptions) it fills up to base, 10 x base and 100 x base items held;
 * at each level the next `ops` requests are timed: sent back to back
 * (the _async calls) HELD_WINDOW at a time, each window confirmed by one
 * lbus_sync(), so the figure is what one request costs the broker and the
 * library, not a round trip. The
 * items stay held (the levels build on each other); a fresh broker serves
 * each kind.
 *
 * Each figure: microseconds per request at that level, and its ratio to the
 * 1x level's (about 1 when the cost does not grow with what is held).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "lbus.h"

#define HELD_LEVELS 3
#define HELD_SYNC_MS 60000
#define HELD_ITEM_LEN 64
/* Requests in flight at once: the library matches each answer by walking
 * its pending requests, so the window stays small (what is timed is the
 * broker's cost against what is held, not the library's against what is
 * pending). */
#define HELD_WINDOW 64

static const unsigned held_factor[HELD_LEVELS] = {1, 10, 100};

struct held_state {
	uint64_t done, failed;
	int first_err;
};

static void held_done(lbus *bus, int err, void *userdata)
{
	struct held_state *st = userdata;

	(void)bus;
	st->done++;
	if (err) {
		st->failed++;
		if (!st->first_err)
			st->first_err = err;
	}
}

static void held_on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	(void)bus;
	(void)msg;
	(void)userdata;
}

/* Send request number i of this kind (without waiting). */
static int held_send(lbus *bus, bool subs, uint64_t i, struct held_state *st)
{
	char item[HELD_ITEM_LEN];

	if (subs) {
		/* siblings of one trie level: the widest a client can make it */
		snprintf(item, sizeof(item), "held/%llu", (unsigned long long)i);
		return lbus_subscribe_async(bus, item, held_on_msg, NULL, NULL, NULL, held_done, st);
	}
	snprintf(item, sizeof(item), "held.%llu", (unsigned long long)i);
	return lbus_name_take_async(bus, item, held_done, st);
}

/* Requests [from, to), HELD_WINDOW at a time, each window confirmed by one
 * lbus_sync(): every answer is in. */
static int held_batch(lbus *bus, bool subs, uint64_t from, uint64_t to, struct held_state *st)
{
	int r = 0;

	for (uint64_t i = from; i < to && r == 0; i++) {
		r = held_send(bus, subs, i, st);
		if (r == 0 && ((i + 1 - from) % HELD_WINDOW == 0 || i + 1 == to))
			r = lbus_sync(bus, HELD_SYNC_MS);
	}
	if (r < 0)
		return r;
	return st->failed ? st->first_err : 0;
}

/* One kind on a fresh connection: fill, time, report each level. */
static int held_kind(const struct bench_held *h, bool subs, bench_held_report_fn report, void *ud)
{
	struct held_state st = {0};
	struct bench_result res;
	double first_us = 0;
	uint64_t held = 0;
	lbus *bus;
	int r = lbus_connect(&bus, h->sock);

	if (r < 0)
		return r;
	for (unsigned l = 0; l < HELD_LEVELS && !bench_interrupted; l++) {
		uint64_t level = h->base * held_factor[l], t0;

		r = held_batch(bus, subs, held, level, &st);
		if (r < 0)
			break;
		held = level;
		t0 = bench_now_ns();
		r = held_batch(bus, subs, held, held + h->ops, &st);
		if (r < 0)
			break;
		memset(&res, 0, sizeof(res));
		res.scenario = "held";
		res.subject = BENCH_LBUS;
		res.item = subs ? "subscriptions" : "names";
		res.held = held;
		res.us_per_op = (double)(bench_now_ns() - t0) / 1e3 / (double)h->ops;
		if (l == 0)
			first_us = res.us_per_op;
		res.vs_first = first_us > 0 ? res.us_per_op / first_us : 0;
		held += h->ops;
		report(&res, ud);
	}
	lbus_close(bus);
	return r;
}

int bench_lbus_held(const struct bench_held *h, bool subs, bench_held_report_fn report, void *ud,
		    struct bench_result *res)
{
	int r = held_kind(h, subs, report, ud);

	if (r < 0) {
		res->err = r;
		snprintf(res->why, sizeof(res->why), "%s: %s", subs ? "subscribe" : "take name",
			 lbus_strerror(r));
	}
	return r;
}
