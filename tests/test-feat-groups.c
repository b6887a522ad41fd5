/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of queue groups (issue 3), through liblbus and `lbus sub
 * -g`, against a real lbusd on a private socket.
 *
 * Asserted, as a user would see it:
 *  - 4 members of one group, 10,000 messages from one publisher: every
 *    message reaches exactly one member, in publish order per member, no
 *    drops reported, and every member gets within 10% of the even share;
 *  - a subscriber of the same topic outside the group gets all 10,000;
 *  - members joining and leaving (unsubscribe) while traffic is queued: still
 *    every message exactly once; the leaver gets nothing published after it
 *    left, the joiner nothing published before it joined; the members
 *    present share the last batch evenly;
 *  - two `lbus sub -g` processes split 200 messages between them, each
 *    exactly once, while a plain `lbus sub` prints all 200;
 *  - max_msgs: a member with max_msgs 3 gets 3, the other the rest, and the
 *    library has forgotten the exhausted subscription;
 *  - `lbus sub -g` members that stop (-n 50, SIGINT or -t mid-traffic) lose
 *    nothing queued to them: the two members' outputs add up to all 20000
 *    messages, each exactly once.
 *
 * Messages carry their sequence number as the payload, so loss, duplication
 * and reordering are all visible. Every wait is bounded (lbt_ms()).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N_MSGS 10000
#define MAX_MEMBERS 8

/* ---- collecting deliveries ------------------------------------------------- */

/* What one subscription received. seen (shared by a group's members) counts
 * deliveries per sequence number. */
struct member {
	lbus *bus;
	uint64_t sub_id;
	int count;
	int first, last; /* sequence numbers, -1 before the first */
	bool out_of_order;
	uint64_t missed;
	int bad_payload;
	int count_in[3]; /* per batch of the join/leave test */
	int *seen;
};

static int batch_size = N_MSGS;

static void on_seq(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct member *m = userdata;
	char buf[16];
	if (msg->len == 0 || msg->len >= sizeof(buf)) {
		m->bad_payload++;
		return;
	}
	memcpy(buf, msg->data, msg->len);
	buf[msg->len] = '\0';
	char *end;
	long seq = strtol(buf, &end, 10);
	if (*end || seq < 0 || seq >= N_MSGS) {
		m->bad_payload++;
		return;
	}
	if (m->last >= 0 && seq <= m->last)
		m->out_of_order = true;
	if (m->first < 0)
		m->first = (int)seq;
	m->last = (int)seq;
	m->count++;
	m->missed += msg->missed;
	if (seq / batch_size < 3)
		m->count_in[seq / batch_size]++;
	if (m->seen)
		m->seen[seq]++;
}

static void member_join(struct member *m, const struct lbt_broker *b, const char *pattern, const char *group,
			int *seen)
{
	memset(m, 0, sizeof(*m));
	m->first = m->last = -1;
	m->seen = seen;
	assert_int_equal(lbt_connect(b, &m->bus), 0);
	struct lbus_sub_opts o = {
	    .size = sizeof(struct lbus_sub_opts), .group = group, .policy = LBUS_POLICY_DROP};
	assert_int_equal(lbus_subscribe(m->bus, pattern, on_seq, m, &o, &m->sub_id), 0);
	assert_true(m->sub_id > 0);
}

struct pump_goal {
	struct member *members;
	int n;
	int want_total; /* sum of counts over members[0..n) */
};

static bool goal_reached(void *arg)
{
	struct pump_goal *g = arg;
	int total = 0;
	for (int i = 0; i < g->n; i++)
		total += g->members[i].count;
	return total >= g->want_total;
}

/* Dispatch every member's connection until the goal or timeout_ms. */
static int pump_members(struct member *ms, int n, int timeout_ms, bool (*done)(void *), void *arg)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	while (!done(arg)) {
		if (lbt_now_ms() >= end)
			return -ETIMEDOUT;
		struct pollfd pfd[MAX_MEMBERS];
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){.fd = lbus_fd(ms[i].bus), .events = lbus_events(ms[i].bus)};
		poll(pfd, (nfds_t)n, 20);
		for (int i = 0; i < n; i++) {
			int r = lbus_dispatch(ms[i].bus);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void publish_range(lbus *pub, const char *topic, int from, int to)
{
	for (int i = from; i < to; i++) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(lbus_publish(pub, topic, buf, (size_t)n, 0), 0);
	}
	assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0);
}

/* After the goal: one more round trip per member, so a duplicate or a stray
 * late delivery would be counted before the assertions. */
static void settle(struct member *ms, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(lbus_sync(ms[i].bus, lbt_ms(5000)), 0);
}

static void assert_member_clean(const struct member *m)
{
	assert_false(m->out_of_order);
	assert_int_equal(m->missed, 0);
	assert_int_equal(m->bad_payload, 0);
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_group_even_and_exactly_once(void **state)
{
	struct lbt_broker *b = *state;
	static int seen[N_MSGS];
	memset(seen, 0, sizeof(seen));
	batch_size = N_MSGS;

	/* members[0..3]: the group; members[4]: a plain subscriber. */
	struct member ms[5];
	for (int i = 0; i < 4; i++)
		member_join(&ms[i], b, "grp/even", "workers", seen);
	member_join(&ms[4], b, "grp/even", NULL, NULL);

	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);
	for (int k = 0; k < N_MSGS; k += 1000) {
		publish_range(pub, "grp/even", k, k + 1000);
		struct pump_goal g = {ms, 5, 2 * (k + 1000)};
		assert_int_equal(pump_members(ms, 5, lbt_ms(10000), goal_reached, &g), 0);
	}
	settle(ms, 5);

	int group_total = 0;
	for (int i = 0; i < 4; i++) {
		assert_member_clean(&ms[i]);
		group_total += ms[i].count;
		/* Within 10% of the even share of 2,500. */
		assert_in_range(ms[i].count, 2250, 2750);
	}
	assert_int_equal(group_total, N_MSGS);
	for (int s = 0; s < N_MSGS; s++)
		assert_int_equal(seen[s], 1);

	assert_member_clean(&ms[4]);
	assert_int_equal(ms[4].count, N_MSGS);
	assert_int_equal(ms[4].first, 0);
	assert_int_equal(ms[4].last, N_MSGS - 1);

	for (int i = 0; i < 5; i++)
		lbus_close(ms[i].bus);
	lbus_close(pub);
}

static void test_group_join_and_leave_during_traffic(void **state)
{
	struct lbt_broker *b = *state;
	static int seen[N_MSGS];
	memset(seen, 0, sizeof(seen));
	enum { BATCH = 2000 };
	batch_size = BATCH;

	/* ms[0..2] start in the group, ms[3] joins later, ms[4] is outside. */
	struct member ms[5];
	for (int i = 0; i < 3; i++)
		member_join(&ms[i], b, "grp/churn", "churn", seen);
	member_join(&ms[4], b, "grp/churn", NULL, NULL);
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);

	/* Batch 0 is queued, unread, when ms[3] joins ... */
	publish_range(pub, "grp/churn", 0, BATCH);
	member_join(&ms[3], b, "grp/+", "churn", seen);
	/* ... and batch 1 when ms[0] leaves; its unsubscribe dispatches what
	 * was queued to it before. */
	publish_range(pub, "grp/churn", BATCH, 2 * BATCH);
	assert_int_equal(lbus_unsubscribe(ms[0].bus, ms[0].sub_id), 0);
	int leaver_count = ms[0].count;
	publish_range(pub, "grp/churn", 2 * BATCH, 3 * BATCH);

	struct pump_goal g = {ms, 5, 2 * 3 * BATCH};
	int r = pump_members(ms, 5, lbt_ms(10000), goal_reached, &g);
	if (r < 0)
		for (int i = 0; i < 5; i++)
			fprintf(stderr, "member %d: %d messages (%d, %d, %d per batch), %llu missed\n", i,
				ms[i].count, ms[i].count_in[0], ms[i].count_in[1], ms[i].count_in[2],
				(unsigned long long)ms[i].missed);
	assert_int_equal(r, 0);
	settle(ms, 5);

	for (int s = 0; s < 3 * BATCH; s++)
		assert_int_equal(seen[s], 1);
	for (int i = 0; i < 5; i++)
		assert_member_clean(&ms[i]);
	assert_int_equal(ms[4].count, 3 * BATCH);

	/* The leaver got nothing after it left, the joiner nothing before. */
	assert_int_equal(ms[0].count, leaver_count);
	assert_int_equal(ms[0].count_in[2], 0);
	assert_true(ms[0].count_in[0] > 0);
	assert_int_equal(ms[3].count_in[0], 0);
	assert_true(ms[3].count_in[1] > 0);
	/* Batch 2 was shared evenly by the three members present. */
	for (int i = 1; i < 4; i++)
		assert_in_range(ms[i].count_in[2], 600, 734);

	for (int i = 0; i < 5; i++)
		lbus_close(ms[i].bus);
	lbus_close(pub);
}

/* ---- the CLI ------------------------------------------------------------------ */

/* How many lines of p's stdout start with prefix; marks each "m-NNN" line's
 * number in hits (if not NULL). */
static int count_lines(const struct lbt_proc *p, const char *prefix, int *hits, int n_hits)
{
	int count = 0;
	const char *s = p->out;
	while (s && *s) {
		const char *nl = strchr(s, '\n');
		if (!nl)
			break;
		if (strncmp(s, prefix, strlen(prefix)) == 0) {
			count++;
			int v = atoi(s + strlen(prefix));
			if (hits && v >= 0 && v < n_hits)
				hits[v]++;
		}
		s = nl + 1;
	}
	return count;
}

/* Publish probes until one shows up in p's stdout: p is subscribed. */
static int probe_until_seen(lbus *pub, const char *topic, struct lbt_proc *p, int timeout_ms)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	while (lbt_now_ms() < end) {
		if (lbus_publish(pub, topic, "probe", 5, 0) < 0 || lbus_sync(pub, lbt_ms(5000)) < 0)
			return -EIO;
		if (lbt_proc_read_until(p, "probe\n", 0, 100) >= 0)
			return 0;
	}
	return -ETIMEDOUT;
}

static void test_cli_sub_group(void **state)
{
	struct lbt_broker *b = *state;
	enum { N = 200 };
	struct lbt_proc plain, g1, g2;
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);

	assert_int_equal(lbt_cli_spawn(&plain, b, "sub", "grp/cli", NULL), 0);
	assert_true(lbt_sub_ready(b, &plain, "grp/cli", lbt_ms(10000)) >= 0);
	assert_int_equal(lbt_cli_spawn(&g1, b, "sub", "-g", "clig", "grp/cli", NULL), 0);
	assert_true(lbt_sub_ready(b, &g1, "grp/cli", lbt_ms(10000)) >= 0);
	/* Options after the pattern work as well. */
	assert_int_equal(lbt_cli_spawn(&g2, b, "sub", "grp/cli", "-g", "clig", NULL), 0);
	assert_int_equal(probe_until_seen(pub, "grp/cli", &g2, lbt_ms(10000)), 0);

	for (int i = 0; i < N; i++) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "m-%d", i);
		assert_int_equal(lbus_publish(pub, "grp/cli", buf, (size_t)n, 0), 0);
	}
	assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0);

	int64_t end = lbt_now_ms() + lbt_ms(10000);
	while (lbt_now_ms() < end && count_lines(&g1, "m-", NULL, 0) + count_lines(&g2, "m-", NULL, 0) < N) {
		lbt_proc_read_bytes(&g1, g1.out_len + 1, 20);
		lbt_proc_read_bytes(&g2, g2.out_len + 1, 20);
	}
	assert_true(lbt_proc_read_until(&plain, "m-199\n", 0, lbt_ms(5000)) >= 0);
	/* Let a duplicate (if any) arrive before counting. */
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	lbt_proc_read_bytes(&g1, g1.out_len + 1, 100);
	lbt_proc_read_bytes(&g2, g2.out_len + 1, 100);

	int hits[N] = {0};
	int c1 = count_lines(&g1, "m-", hits, N);
	int c2 = count_lines(&g2, "m-", hits, N);
	assert_int_equal(c1 + c2, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(hits[i], 1);
	assert_in_range(c1, 90, 110);
	assert_in_range(c2, 90, 110);
	assert_int_equal(count_lines(&plain, "m-", NULL, 0), N);

	lbt_proc_free(&plain);
	lbt_proc_free(&g1);
	lbt_proc_free(&g2);
	lbus_close(pub);
}

/* ---- members that stop: nothing queued to them is lost ----------------------- */

/* Wait until the broker counts want subscriptions in all. 0 or -ETIMEDOUT. */
static int wait_subscriptions(lbus *q, uint64_t want, int timeout_ms)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	for (;;) {
		struct lbus_stats *st;
		if (lbus_stats_get(q, lbt_ms(5000), &st) < 0)
			return -EIO;
		uint64_t n = st->broker.subscriptions;
		lbus_stats_free(st);
		if (n == want)
			return 0;
		if (lbt_now_ms() >= end)
			return -ETIMEDOUT;
		lbt_sleep_ms(10);
	}
}

/* Publish "m-FROM pad" .. "m-(TO-1) pad" on topic and flush. The 200 bytes
 * of padding make a member's share of 10000 messages larger than its
 * socket's buffer, so most of it waits in the broker's queue. */
static void publish_lines(lbus *pub, const char *topic, int from, int to)
{
	for (int i = from; i < to; i++) {
		char buf[256];
		int n = snprintf(buf, sizeof(buf), "m-%d %0200d", i, 0);
		assert_int_equal(lbus_publish(pub, topic, buf, (size_t)n, 0), 0);
	}
	assert_int_equal(lbus_flush(pub, lbt_ms(10000)), 0);
}

/* Read stay's output until the two members printed want "m-" lines between
 * them (gone has exited), then stop stay with SIGINT. Asserts every message
 * exactly once. */
static void assert_shared_exactly_once(struct lbt_proc *stay, struct lbt_proc *gone, int want)
{
	int64_t end = lbt_now_ms() + lbt_ms(10000);
	while (lbt_now_ms() < end &&
	       count_lines(stay, "m-", NULL, 0) + count_lines(gone, "m-", NULL, 0) < want)
		lbt_proc_read_bytes(stay, stay->out_len + 1, 50);
	lbt_proc_signal(stay, SIGINT);
	assert_int_equal(lbt_proc_wait(stay, lbt_ms(5000)), 0);
	assert_int_equal(stay->exit_code, 0);
	int *hits = calloc((size_t)want, sizeof(*hits));
	assert_non_null(hits);
	int total = count_lines(stay, "m-", hits, want) + count_lines(gone, "m-", hits, want);
	assert_int_equal(total, want);
	for (int i = 0; i < want; i++)
		assert_int_equal(hits[i], 1);
	free(hits);
}

/* `lbus sub -g w -n 50` next to a member that stays: 20000 messages, the
 * -n member prints 50 and exits, the other prints the other 19950 (before,
 * what the broker had queued to the -n member beyond 50 was lost). */
static void test_cli_group_member_count_loses_nothing(void **state)
{
	struct lbt_broker *b = *state;
	enum { N = 20000 };
	struct lbt_proc stay, counted;
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);

	assert_int_equal(lbt_cli_spawn(&stay, b, "sub", "jobs", "-g", "w", NULL), 0);
	assert_true(lbt_sub_ready(b, &stay, "jobs", lbt_ms(10000)) >= 0);
	assert_int_equal(lbt_cli_spawn(&counted, b, "sub", "jobs", "-g", "w", "-n", "50", NULL), 0);
	assert_int_equal(wait_subscriptions(pub, 2, lbt_ms(10000)), 0);

	publish_lines(pub, "jobs", 0, N);
	assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0);
	assert_int_equal(lbt_proc_wait(&counted, lbt_ms(10000)), 0);
	assert_int_equal(counted.exit_code, 0);
	assert_int_equal(count_lines(&counted, "m-", NULL, 0), 50);
	assert_shared_exactly_once(&stay, &counted, N);

	lbt_proc_free(&stay);
	lbt_proc_free(&counted);
	lbus_close(pub);
}

/*
 * A member that stops while messages are queued to it and more are being
 * published (SIGINT, or its -t time limit): it prints what was queued to it
 * before it leaves, the other member gets the rest. SIGSTOP first makes sure
 * its queue is full when it notices that it must stop.
 */
static void member_leaves_mid_traffic(const struct lbt_broker *b, bool by_timeout)
{
	enum { N = 20000 };
	struct lbt_proc stay, stopped;
	char secs[16];
	int limit_ms = lbt_ms(2000);
	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);

	assert_int_equal(lbt_cli_spawn(&stay, b, "sub", "jobs", "-g", "w", NULL), 0);
	assert_true(lbt_sub_ready(b, &stay, "jobs", lbt_ms(10000)) >= 0);
	snprintf(secs, sizeof(secs), "%d", by_timeout ? limit_ms / 1000 : 3600);
	int64_t started = lbt_now_ms();
	assert_int_equal(lbt_cli_spawn(&stopped, b, "sub", "-g", "w", "jobs", "-t", secs, NULL), 0);
	assert_int_equal(wait_subscriptions(pub, 2, lbt_ms(10000)), 0);

	lbt_proc_signal(&stopped, SIGSTOP);
	assert_true(lbt_now_ms() - started < limit_ms); /* else it timed out before the test began */
	publish_lines(pub, "jobs", 0, N / 2);
	assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0);
	if (by_timeout)
		lbt_sleep_ms((int)(started + limit_ms + 100 - lbt_now_ms()));
	else
		lbt_proc_signal(&stopped, SIGINT);
	lbt_proc_signal(&stopped, SIGCONT);
	for (int i = N / 2; i < N; i += 1000) {
		/* Read it meanwhile: it must not block on a full pipe while it leaves. */
		publish_lines(pub, "jobs", i, i + 1000);
		lbt_proc_read_bytes(&stopped, stopped.out_len + 1, 5);
		lbt_proc_read_bytes(&stay, stay.out_len + 1, 5);
	}
	assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0);
	assert_int_equal(lbt_proc_wait(&stopped, lbt_ms(10000)), 0);
	assert_int_equal(stopped.exit_code, 0);
	assert_true(count_lines(&stopped, "m-", NULL, 0) >= N / 4);
	assert_shared_exactly_once(&stay, &stopped, N);

	lbt_proc_free(&stay);
	lbt_proc_free(&stopped);
	lbus_close(pub);
}

static void test_cli_group_member_sigint_loses_nothing(void **state)
{
	member_leaves_mid_traffic(*state, false);
}

static void test_cli_group_member_timeout_loses_nothing(void **state)
{
	member_leaves_mid_traffic(*state, true);
}

/* lbus_sub_opts.max_msgs: the broker delivers 3, then removes the
 * subscription (the group's next messages go to the other member), and the
 * library has forgotten it. */
static void test_group_max_msgs_hands_over(void **state)
{
	struct lbt_broker *b = *state;
	int seen[N_MSGS] = {0};
	struct member ms[2];
	lbus *pub;
	member_join(&ms[0], b, "grp/max", "gmax", seen);
	memset(&ms[1], 0, sizeof(ms[1]));
	assert_int_equal(lbt_connect(b, &ms[1].bus), 0);
	ms[1].first = ms[1].last = -1;
	ms[1].seen = seen;
	struct lbus_sub_opts o = {.size = sizeof(struct lbus_sub_opts), .group = "gmax", .max_msgs = 3};
	assert_int_equal(lbus_subscribe(ms[1].bus, "grp/max", on_seq, &ms[1], &o, &ms[1].sub_id), 0);
	assert_true(ms[1].sub_id > 0);
	assert_int_equal(lbt_connect(b, &pub), 0);

	publish_range(pub, "grp/max", 0, 100);
	struct pump_goal g = {.members = ms, .n = 2, .want_total = 100};
	assert_int_equal(pump_members(ms, 2, lbt_ms(10000), goal_reached, &g), 0);
	assert_int_equal(ms[1].count, 3);
	assert_int_equal(ms[0].count, 97);
	for (int i = 0; i < 100; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(lbus_unsubscribe(ms[1].bus, ms[1].sub_id), -ENOENT);
	assert_int_equal(wait_subscriptions(pub, 1, lbt_ms(5000)), 0);
	lbus_close(ms[0].bus);
	lbus_close(ms[1].bus);
	lbus_close(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_group_even_and_exactly_once, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_group_join_and_leave_during_traffic, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_group, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_group_max_msgs_hands_over, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_group_member_count_loses_nothing, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_group_member_sigint_loses_nothing, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_group_member_timeout_loses_nothing, lbt_setup,
					    lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
