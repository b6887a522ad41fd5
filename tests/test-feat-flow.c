/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of flow control (issue 4, "A test proves both"), against
 * a real lbusd started with a small outgoing queue (max_queue = 64 KiB in a
 * -c config file) so that a few MiB of traffic overflow it quickly.
 *
 * Asserted, as a user would see it:
 *  - block: a subscriber that stops reading makes the broker stop reading
 *    its publisher (the publisher cannot finish while the subscriber's queue
 *    sits full at about max_queue, never much more), unrelated clients keep
 *    working meanwhile, and once the subscriber reads — slowly — it gets
 *    every message, in order, with nothing reported missed; the same with
 *    `lbus sub --policy block` fed by `lbus pub -l`;
 *  - drop: a stalled subscriber gets fewer messages, but each delivery's
 *    missed count is exactly the gap in sequence numbers before it, and
 *    received + missed = published (checked with a final marker published
 *    once its queue has room); a fast subscriber on the same topic receives
 *    everything meanwhile; the broker's dropped counter agrees; the same with
 *    `lbus sub --policy drop`, whose stderr warnings add up, and with
 *    `--json`, whose "missed" members add up and agree with them;
 *  - sends to a name always block: a stalled owner stalls its sender, then
 *    receives every message in order;
 *  - a queue group skips a member whose queue is full: the other member
 *    takes its share, every message is delivered exactly once, none dropped;
 *  - `lbus sub` (block by default) that is suspended holds a flood up only
 *    for its --stall time; then the broker drops for it, and once resumed it
 *    warns of exactly what it missed;
 *  - a publisher whose own connection breaks while the broker handles its
 *    publish to a full block queue (it subscribes to its own topic and stops
 *    reading) is closed cleanly: the stalled subscriber then drains and the
 *    broker serves everyone (under ASan/valgrind: no use after free).
 *
 * Every message carries its sequence number in its first 8 bytes. Waits are
 * bounded and scaled with lbt_ms() for valgrind runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define MAX_QUEUE 65536
#define MSG_SIZE 1024
#define N_MSGS 3000   /* about 3 MiB: 45 times the queue */
#define FAST_BATCH 32 /* well under MAX_QUEUE per batch for the fast subscriber */

/* The captured output of a child, "" when it printed nothing. */
static const char *txt(const char *s)
{
	return s ? s : "";
}

/* ---- messages with sequence numbers ---------------------------------------------- */

static void make_msg(char *buf, int seq)
{
	memset(buf, 'x', MSG_SIZE);
	char head[16];
	snprintf(head, sizeof(head), "%08d", seq);
	memcpy(buf, head, 8);
}

static void publish_seq(lbus *bus, const char *topic, int seq)
{
	char buf[MSG_SIZE];
	make_msg(buf, seq);
	assert_int_equal(lbus_publish(bus, topic, buf, MSG_SIZE, 0), 0);
}

/* What a subscriber saw. Each delivery must be `size` bytes starting with
 * its sequence number in `digits` digits, and follow the previous one by
 * exactly 1 + its missed count. */
struct seqsub {
	size_t size;
	int digits;
	int count;
	int last;	 /* sequence number, -1 before the first */
	uint64_t missed; /* sum of msg->missed */
	int bad_gaps;	 /* deliveries where seq != last + 1 + missed */
	int bad_payloads;
	int delay_us; /* sleep per message: a deliberately slow reader */
};

static void seqsub_init(struct seqsub *s, size_t size, int digits, int delay_us)
{
	memset(s, 0, sizeof(*s));
	s->size = size;
	s->digits = digits;
	s->last = -1;
	s->delay_us = delay_us;
}

static void on_seq(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct seqsub *s = userdata;
	char head[9];
	if (msg->len != s->size) {
		s->bad_payloads++;
		return;
	}
	memcpy(head, msg->data, (size_t)s->digits);
	head[s->digits] = '\0';
	int seq = atoi(head);
	if ((uint64_t)seq != (uint64_t)(s->last + 1) + msg->missed)
		s->bad_gaps++;
	s->missed += msg->missed;
	s->last = seq;
	s->count++;
	if (s->delay_us)
		usleep((useconds_t)s->delay_us);
}

/* ---- broker introspection helpers ----------------------------------------------- */

/* Bytes the broker has queued for the client with this id (or, id 0, this
 * pid). -ENOENT if no such client. */
static long long queued_bytes(lbus *q, uint64_t id, pid_t pid)
{
	struct lbus_client_list *l = NULL;
	int r = lbus_client_list_get(q, lbt_ms(5000), &l);
	if (r < 0) {
		fprintf(stderr, "lbus_client_list_get: %s\n", lbus_strerror(r));
		return r;
	}
	long long out = -ENOENT;
	for (size_t i = 0; i < l->n_clients; i++)
		if (id ? l->clients[i].id == id : l->clients[i].pid == pid)
			out = (long long)l->clients[i].queued_bytes;
	lbus_client_list_free(l);
	return out;
}

/* Wait until the broker's queue for that client holds at least min bytes;
 * returns the last reading (or -errno, -ETIMEDOUT). */
static long long await_queue_full(lbus *q, uint64_t id, pid_t pid, long long min)
{
	int64_t end = lbt_now_ms() + lbt_ms(10000);
	long long v = -ETIMEDOUT;
	while (lbt_now_ms() < end) {
		v = queued_bytes(q, id, pid);
		if (v < 0 || v >= min)
			return v;
		usleep(10000);
	}
	fprintf(stderr, "queue of client %llu/pid %d stayed at %lld bytes\n", (unsigned long long)id,
		(int)pid, v);
	return -ETIMEDOUT;
}

/* The queue high-water mark and blocked_on the broker reports for client id
 * (asserted present). */
static void queue_gauges(lbus *q, uint64_t id, uint64_t *qmax, uint64_t *blocked_on)
{
	struct lbus_client_list *l = NULL;
	bool found = false;

	assert_int_equal(lbus_client_list_get(q, lbt_ms(5000), &l), 0);
	for (size_t i = 0; i < l->n_clients; i++) {
		if (l->clients[i].id == id) {
			*qmax = l->clients[i].queued_bytes_max;
			*blocked_on = l->clients[i].blocked_on;
			found = true;
		}
	}
	lbus_client_list_free(l);
	assert_true(found);
}

/* Wait until the broker reports client id blocked on client target (0:
 * not blocked). */
static bool await_blocked_on(lbus *q, uint64_t id, uint64_t target)
{
	int64_t end = lbt_now_ms() + lbt_ms(10000);
	uint64_t qmax, on = UINT64_MAX;

	while (lbt_now_ms() < end) {
		queue_gauges(q, id, &qmax, &on);
		if (on == target)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "client %llu is blocked on %llu, not %llu\n", (unsigned long long)id,
		(unsigned long long)on, (unsigned long long)target);
	return false;
}

static uint64_t dropped_for(lbus *q, uint64_t id)
{
	struct lbus_stats *st = NULL;
	assert_int_equal(lbus_stats_get(q, lbt_ms(5000), &st), 0);
	uint64_t d = UINT64_MAX;
	for (size_t i = 0; i < st->n_clients; i++)
		if (st->clients[i].id == id)
			d = st->clients[i].counters.dropped;
	lbus_stats_free(st);
	return d;
}

/* max_queue announced in the broker's Welcome. */
static uint64_t welcome_max_queue(const struct lbt_broker *b)
{
	int fd = lbt_raw_connect(b);
	assert_true(fd >= 0);
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Hello h = LBUS__HELLO__INIT;
	h.version = 1;
	f.kind_case = LBUS__FRAME__KIND_HELLO;
	f.hello = &h;
	assert_int_equal(lbt_raw_send_frame(fd, &f), 0);
	Lbus__Frame *w = NULL;
	assert_int_equal(lbt_raw_read_frame(fd, lbt_ms(5000), &w), 0);
	assert_int_equal(w->kind_case, LBUS__FRAME__KIND_WELCOME);
	uint64_t mq = w->welcome->max_queue;
	lbus__frame__free_unpacked(w, NULL);
	close(fd);
	return mq;
}

/* Small numbered messages, counted in order. */
static void on_small(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	int *next = userdata;
	char want[16];
	int n = snprintf(want, sizeof(want), "u-%d", *next);
	if (msg->len == (size_t)n && memcmp(msg->data, want, (size_t)n) == 0)
		(*next)++;
}

/* Unrelated clients still work: 100 small messages from u1 to u2 on another
 * topic, in order, and a name taken, within a short time. */
static void assert_unrelated_clients_work(const struct lbt_broker *b)
{
	lbus *u1, *u2;
	int next = 0;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbt_connect(b, &u1), 0);
	assert_int_equal(lbt_connect(b, &u2), 0);
	assert_true(lbus_subscribe(u2, "unrelated/t", on_small, &next, NULL, NULL) == 0);
	for (int i = 0; i < 100; i++) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "u-%d", i);
		assert_int_equal(lbus_publish(u1, "unrelated/t", buf, (size_t)n, 0), 0);
	}
	assert_int_equal(lbus_sync(u1, lbt_ms(2000)), 0);
	int64_t end = lbt_now_ms() + lbt_ms(2000);
	while (next < 100 && lbt_now_ms() < end)
		lbus_run(u2, 10);
	assert_int_equal(next, 100);
	assert_int_equal(lbus_name_take(u2, "unrelated.name"), 0);
	assert_true(lbt_now_ms() - t0 < lbt_ms(3000));
	lbus_close(u1);
	lbus_close(u2);
}

/* ---- a publisher thread (it will be blocked by the broker) ------------------------ */

struct publisher {
	lbus *bus;
	const char *target; /* topic, or name when to_name */
	bool to_name;	    /* lbus_send (LBUS_NOWAIT) instead of lbus_publish */
	int n;
	pthread_t thread;
	atomic_bool done; /* everything published and synced */
	int result;
};

static void *publisher_main(void *arg)
{
	struct publisher *p = arg;
	char buf[MSG_SIZE];
	p->result = 0;
	for (int i = 0; i < p->n && p->result == 0; i++) {
		make_msg(buf, i);
		if (p->to_name)
			p->result = lbus_send(p->bus, p->target, buf, MSG_SIZE, LBUS_NOWAIT);
		else
			p->result = lbus_publish(p->bus, p->target, buf, MSG_SIZE, 0);
	}
	if (p->result == 0)
		p->result = lbus_sync(p->bus, lbt_ms(60000));
	atomic_store(&p->done, true);
	return NULL;
}

static void publisher_start(struct publisher *p, const struct lbt_broker *b, const char *target, bool to_name)
{
	memset(p, 0, sizeof(*p));
	p->target = target;
	p->to_name = to_name;
	p->n = N_MSGS;
	assert_int_equal(lbt_connect(b, &p->bus), 0);
	assert_int_equal(pthread_create(&p->thread, NULL, publisher_main, p), 0);
}

/* ---- fixture: a broker with a 64 KiB queue (harness.h: lbt_setup_config) ------------ */

/* small queue: flow control shows up fast */
static int setup(void **state)
{
	return lbt_setup_config(state, "max_queue = 65536\n");
}

/* A broker with a 4 KiB queue: the queues of the self-subscribing test fill
 * with a few frames, so their order in the broker decides nothing. */
static int setup_tiny(void **state)
{
	return lbt_setup_config(state, "max_queue = 4096\n");
}

/* ---- block -------------------------------------------------------------------------- */

static void test_block_slow_subscriber_gets_everything(void **state)
{
	struct lbt_broker *b = *state;
	assert_int_equal(welcome_max_queue(b), MAX_QUEUE);
	lbus *sub, *q;
	assert_int_equal(lbt_connect(b, &sub), 0);
	assert_int_equal(lbt_connect(b, &q), 0);
	struct seqsub s;
	seqsub_init(&s, MSG_SIZE, 8, 100);
	struct lbus_sub_opts block = {.size = sizeof(struct lbus_sub_opts), .policy = LBUS_POLICY_BLOCK};
	assert_true(lbus_subscribe(sub, "flow/block", on_seq, &s, &block, NULL) == 0);

	static struct publisher p;
	publisher_start(&p, b, "flow/block", false);

	/* The subscriber does not read: its queue fills up and stays bounded. */
	long long full = await_queue_full(q, lbus_client_id(sub), 0, MAX_QUEUE / 2);
	assert_true(full >= MAX_QUEUE / 2);
	assert_unrelated_clients_work(b);
	long long still = queued_bytes(q, lbus_client_id(sub), 0);
	assert_true(still <= MAX_QUEUE + 2 * MSG_SIZE);
	assert_false(atomic_load(&p.done));
	assert_int_equal(s.count, 0);
	/* Introspection shows who holds whom, and the queue's high-water mark. */
	assert_true(await_blocked_on(q, lbus_client_id(p.bus), lbus_client_id(sub)));
	uint64_t qmax, on;
	queue_gauges(q, lbus_client_id(sub), &qmax, &on);
	assert_true(qmax >= (uint64_t)still && qmax <= MAX_QUEUE + 2 * MSG_SIZE);
	assert_int_equal(on, 0);

	/* Now read, slowly: everything arrives, in order. */
	int64_t end = lbt_now_ms() + lbt_ms(30000);
	while (s.count < N_MSGS && lbt_now_ms() < end)
		assert_true(lbus_run(sub, 10) >= 0);
	pthread_join(p.thread, NULL);
	assert_int_equal(p.result, 0);
	assert_true(atomic_load(&p.done));
	assert_int_equal(lbus_sync(sub, lbt_ms(5000)), 0);
	assert_int_equal(s.count, N_MSGS);
	assert_int_equal(s.last, N_MSGS - 1);
	assert_int_equal(s.missed, 0);
	assert_int_equal(s.bad_gaps, 0);
	assert_int_equal(s.bad_payloads, 0);
	assert_int_equal(dropped_for(q, lbus_client_id(sub)), 0);
	/* Drained: nobody is held any more; the high-water mark stays. */
	uint64_t qmax_after;
	assert_true(await_blocked_on(q, lbus_client_id(p.bus), 0));
	queue_gauges(q, lbus_client_id(sub), &qmax_after, &on);
	assert_true(qmax_after >= qmax);
	assert_int_equal(queued_bytes(q, lbus_client_id(sub), 0), 0);

	lbus_close(p.bus);
	lbus_close(sub);
	lbus_close(q);
}

/* ---- drop --------------------------------------------------------------------------- */

static void test_drop_reports_every_missed_message(void **state)
{
	struct lbt_broker *b = *state;
	lbus *pub, *slow, *fast, *q;
	assert_int_equal(lbt_connect(b, &pub), 0);
	assert_int_equal(lbt_connect(b, &slow), 0);
	assert_int_equal(lbt_connect(b, &fast), 0);
	assert_int_equal(lbt_connect(b, &q), 0);
	struct seqsub s, f;
	seqsub_init(&s, MSG_SIZE, 8, 0);
	seqsub_init(&f, MSG_SIZE, 8, 0);
	assert_true(lbus_subscribe(slow, "flow/drop", on_seq, &s, NULL, NULL) == 0);
	struct lbus_sub_opts drop = {.size = sizeof(struct lbus_sub_opts), .policy = LBUS_POLICY_DROP};
	assert_true(lbus_subscribe(fast, "flow/drop", on_seq, &f, &drop, NULL) == 0);

	/* slow never reads meanwhile; fast reads after every small batch. */
	for (int i = 0; i < N_MSGS; i += FAST_BATCH) {
		for (int k = i; k < i + FAST_BATCH && k < N_MSGS; k++)
			publish_seq(pub, "flow/drop", k);
		assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
		assert_int_equal(lbus_sync(fast, lbt_ms(5000)), 0);
	}
	assert_int_equal(f.count, N_MSGS);
	assert_int_equal(f.missed, 0);
	assert_int_equal(f.bad_gaps, 0);
	long long held = queued_bytes(q, lbus_client_id(slow), 0);
	assert_true(held >= 0 && held <= MAX_QUEUE + 2 * MSG_SIZE);

	/* slow reads what was kept; then markers until one gets through, so
	 * the count of the last drops is reported too. */
	assert_int_equal(lbus_sync(slow, lbt_ms(10000)), 0);
	assert_true(s.count < N_MSGS);
	int seq = N_MSGS;
	while (s.last < N_MSGS && seq < N_MSGS + 10) {
		publish_seq(pub, "flow/drop", seq++);
		assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
		assert_int_equal(lbus_sync(slow, lbt_ms(5000)), 0);
		assert_int_equal(lbus_sync(fast, lbt_ms(5000)), 0);
	}
	assert_true(s.last >= N_MSGS);
	assert_int_equal(s.bad_gaps, 0);
	assert_int_equal(s.bad_payloads, 0);
	assert_true(s.missed > 0);
	assert_int_equal((uint64_t)s.count + s.missed, (uint64_t)s.last + 1);
	assert_int_equal(f.count, seq);
	assert_int_equal(dropped_for(q, lbus_client_id(slow)), s.missed);
	assert_int_equal(dropped_for(q, lbus_client_id(fast)), 0);

	lbus_close(pub);
	lbus_close(slow);
	lbus_close(fast);
	lbus_close(q);
}

/* ---- sends and queue groups ---------------------------------------------------------- */

static void test_send_to_stalled_owner_blocks(void **state)
{
	struct lbt_broker *b = *state;
	lbus *owner, *q;
	assert_int_equal(lbt_connect(b, &owner), 0);
	assert_int_equal(lbt_connect(b, &q), 0);
	assert_int_equal(lbus_name_take(owner, "flow.owner"), 0);
	struct seqsub s;
	seqsub_init(&s, MSG_SIZE, 8, 50);
	lbus_on_message(owner, on_seq, &s);

	/* Sends always block: the sender waits while the owner does not read. */
	static struct publisher p;
	publisher_start(&p, b, "flow.owner", true);
	assert_true(await_queue_full(q, lbus_client_id(owner), 0, MAX_QUEUE / 2) >= MAX_QUEUE / 2);
	assert_unrelated_clients_work(b);
	assert_false(atomic_load(&p.done));

	int64_t end = lbt_now_ms() + lbt_ms(30000);
	while (s.count < N_MSGS && lbt_now_ms() < end)
		assert_true(lbus_run(owner, 10) >= 0);
	pthread_join(p.thread, NULL);
	assert_int_equal(p.result, 0);
	assert_int_equal(s.count, N_MSGS);
	assert_int_equal(s.last, N_MSGS - 1);
	assert_int_equal(s.missed, 0);
	assert_int_equal(s.bad_gaps, 0);
	assert_int_equal(s.bad_payloads, 0);
	lbus_close(p.bus);
	lbus_close(owner);
	lbus_close(q);
}

/* Members of one group share a counter of deliveries per sequence number. */
struct group_member {
	struct seqsub s;
	int *seen;
};

static void on_group_seq(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct group_member *m = userdata;
	on_seq(bus, msg, &m->s);
	if (msg->len == MSG_SIZE && m->s.last >= 0 && m->s.last < N_MSGS)
		m->seen[m->s.last]++;
}

static void test_group_skips_stalled_member(void **state)
{
	struct lbt_broker *b = *state;
	static int seen[N_MSGS];
	memset(seen, 0, sizeof(seen));
	lbus *pub, *stalled, *worker;
	assert_int_equal(lbt_connect(b, &pub), 0);
	assert_int_equal(lbt_connect(b, &stalled), 0);
	assert_int_equal(lbt_connect(b, &worker), 0);
	struct group_member ms = {.seen = seen}, mw = {.seen = seen};
	seqsub_init(&ms.s, MSG_SIZE, 8, 0);
	seqsub_init(&mw.s, MSG_SIZE, 8, 0);
	struct lbus_sub_opts group = {.size = sizeof(struct lbus_sub_opts), .group = "flowg"};
	assert_true(lbus_subscribe(stalled, "flow/group", on_group_seq, &ms, &group, NULL) == 0);
	assert_true(lbus_subscribe(worker, "flow/group", on_group_seq, &mw, &group, NULL) == 0);

	/* One member stops reading: its share goes to the other, none lost. */
	for (int i = 0; i < N_MSGS; i += FAST_BATCH) {
		for (int k = i; k < i + FAST_BATCH && k < N_MSGS; k++)
			publish_seq(pub, "flow/group", k);
		assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
		assert_int_equal(lbus_sync(worker, lbt_ms(5000)), 0);
	}
	assert_int_equal(lbus_sync(stalled, lbt_ms(10000)), 0);
	assert_int_equal(ms.s.count + mw.s.count, N_MSGS);
	for (int i = 0; i < N_MSGS; i++)
		assert_int_equal(seen[i], 1);
	assert_true(ms.s.count > 0);
	assert_true(ms.s.count < N_MSGS / 2); /* less than its even share */
	assert_int_equal(ms.s.missed + mw.s.missed, 0);
	assert_int_equal(ms.s.bad_payloads + mw.s.bad_payloads, 0);
	lbus_close(pub);
	lbus_close(stalled);
	lbus_close(worker);
}

/* ---- the CLI ------------------------------------------------------------------------ */

#define CLI_LINES 10000
#define CLI_LINE_LEN 200 /* 6 digits, filler, newline: 2 MB in all */

static void cli_line(char *buf, int seq)
{
	memset(buf, 'y', CLI_LINE_LEN);
	char head[16];
	snprintf(head, sizeof(head), "%06d", seq);
	memcpy(buf, head, 6);
	buf[CLI_LINE_LEN - 1] = '\n';
}

/* Check that text holds lines "NNNNNNyyy..." in increasing order, starting
 * after `from`; returns how many, or -1 on a malformed or out-of-order line.
 * *last gets the last sequence number seen. */
static int count_seq_lines(const char *text, size_t from, bool strictly_consecutive, int *last)
{
	int n = 0;
	*last = -1;
	const char *p = text + from;
	const char *nl;
	while ((nl = strchr(p, '\n'))) {
		if (nl - p != CLI_LINE_LEN - 1 || !isdigit((unsigned char)p[0]))
			return -1;
		int seq = atoi(p);
		if (seq <= *last || (strictly_consecutive && seq != *last + 1))
			return -1;
		*last = seq;
		n++;
		p = nl + 1;
	}
	return n;
}

static void test_cli_sub_policy_block(void **state)
{
	struct lbt_broker *b = *state;
	char path[PATH_MAX];
	size_t size = (size_t)CLI_LINES * CLI_LINE_LEN;
	char *data = malloc(size);
	for (int i = 0; i < CLI_LINES; i++)
		cli_line(data + (size_t)i * CLI_LINE_LEN, i);
	assert_int_equal(lbt_write_file(b->dir, "lines.txt", data, size, path), 0);

	struct lbt_proc sub, pub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "flow/cli-block", "--policy", "block", NULL), 0);
	long from = lbt_sub_ready(b, &sub, "flow/cli-block", lbt_ms(10000));
	assert_true(from >= 0);
	const char *argv[] = {
	    "/bin/sh", "-c", "exec \"$0\" -S \"$1\" pub flow/cli-block -l < \"$2\"", lbt_cli_path(), b->sock,
	    path,      NULL};
	assert_int_equal(lbt_proc_spawn(&pub, argv), 0);

	/* We do not read the subscriber's output: it stalls, so does the
	 * publisher, and the rest of the bus does not notice. */
	lbus *q;
	assert_int_equal(lbt_connect(b, &q), 0);
	assert_true(await_queue_full(q, 0, sub.pid, MAX_QUEUE / 2) >= MAX_QUEUE / 2);
	assert_unrelated_clients_work(b);
	assert_false(lbt_proc_exited(&pub));

	/* Read it all: every line, in order, nothing missed. */
	char last_line[16];
	snprintf(last_line, sizeof(last_line), "%06d", CLI_LINES - 1);
	assert_true(lbt_proc_read_until(&sub, last_line, (size_t)from, lbt_ms(30000)) >= 0);
	assert_int_equal(lbt_proc_read_bytes(&sub, (size_t)from + size, lbt_ms(5000)), 0);
	assert_int_equal(lbt_proc_wait(&pub, lbt_ms(10000)), 0);
	assert_int_equal(pub.exit_code, 0);
	int last;
	assert_int_equal(count_seq_lines(sub.out, (size_t)from, true, &last), CLI_LINES);
	assert_int_equal(memcmp(sub.out + from, data, size), 0);
	assert_null(strstr(txt(sub.err), "miss"));

	lbt_proc_free(&pub);
	lbt_proc_free(&sub);
	lbus_close(q);
	free(data);
}

/* Sum of the first number on each stderr line that reports drops. */
static uint64_t missed_in_warnings(const char *err)
{
	uint64_t sum = 0;
	const char *line = err;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[512];
		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		if (strcasestr(buf, "miss") || strcasestr(buf, "drop")) {
			const char *d = buf;
			while (*d && !isdigit((unsigned char)*d))
				d++;
			sum += strtoull(d, NULL, 10);
		}
		line = nl ? nl + 1 : NULL;
	}
	return sum;
}

/* Read the `lbus sub` of CLI_LINES published lines (its output starting at
 * from) until its printed lines plus the drops its warnings report add up
 * to CLI_LINES (within 10 s), and assert that they do. Returns the drops. */
static uint64_t await_all_accounted(struct lbt_proc *sub, long from)
{
	int64_t until = lbt_now_ms() + lbt_ms(10000);
	int seen, last;
	uint64_t warned;
	do {
		lbt_proc_read_bytes(sub, sub->out_len + 1, 20);
		seen = count_seq_lines(sub->out, (size_t)from, false, &last);
		warned = missed_in_warnings(txt(sub->err));
	} while ((uint64_t)seen + warned != CLI_LINES && lbt_now_ms() < until);
	if ((uint64_t)seen + warned != CLI_LINES)
		fprintf(stderr, "printed %d, warned %llu:\n%s\n", seen, (unsigned long long)warned,
			txt(sub->err));
	assert_int_equal((uint64_t)seen + warned, CLI_LINES);
	return warned;
}

static void test_cli_sub_drop_warns(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc sub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "flow/cli-drop", "--policy", "drop", NULL), 0);
	long from = lbt_sub_ready(b, &sub, "flow/cli-drop", lbt_ms(10000));
	assert_true(from >= 0);

	lbus *pub, *fast, *q;
	assert_int_equal(lbt_connect(b, &pub), 0);
	assert_int_equal(lbt_connect(b, &fast), 0);
	assert_int_equal(lbt_connect(b, &q), 0);
	struct seqsub f;
	seqsub_init(&f, CLI_LINE_LEN - 1, 6, 0);
	assert_true(lbus_subscribe(fast, "flow/cli-drop", on_seq, &f, NULL, NULL) == 0);

	/* Lines of CLI_LINE_LEN - 1 bytes (the CLI adds the newline). */
	for (int i = 0; i < CLI_LINES; i += FAST_BATCH) {
		for (int k = i; k < i + FAST_BATCH && k < CLI_LINES; k++) {
			char line[CLI_LINE_LEN];
			cli_line(line, k);
			assert_int_equal(lbus_publish(pub, "flow/cli-drop", line, CLI_LINE_LEN - 1, 0), 0);
		}
		assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
		assert_int_equal(lbus_sync(fast, lbt_ms(5000)), 0);
	}
	assert_int_equal(f.count, CLI_LINES);
	assert_int_equal(f.missed, 0);
	assert_int_equal(f.bad_gaps, 0);

	/* Drain the subscriber until the broker holds nothing for it. */
	int64_t end = lbt_now_ms() + lbt_ms(20000);
	long long held;
	do {
		lbt_proc_read_bytes(&sub, sub.out_len + 1, 20);
		held = queued_bytes(q, 0, sub.pid);
	} while (held != 0 && lbt_now_ms() < end);
	assert_int_equal(held, 0);

	/* Every drop is reported without waiting for a further message: once
	 * the broker holds nothing for the subscriber, its printed lines plus
	 * its warnings add up to what was published. */
	await_all_accounted(&sub, from);

	/* A marker that is sure to be queued shows where its output ends. */
	assert_int_equal(lbus_publish(pub, "flow/cli-drop", "END", 3, 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	long at = lbt_proc_read_until(&sub, "END\n", (size_t)from, lbt_ms(10000));
	assert_true(at >= 0);
	lbt_proc_signal(&sub, SIGTERM);
	lbt_proc_wait(&sub, lbt_ms(5000));

	sub.out[at] = '\0';
	int last;
	int lines = count_seq_lines(sub.out, (size_t)from, false, &last);
	assert_true(lines > 0);
	assert_true(lines < CLI_LINES);
	uint64_t missed = missed_in_warnings(txt(sub.err));
	if ((uint64_t)lines + missed != CLI_LINES)
		fprintf(stderr, "received %d, warnings say %llu missed:\n%s\n", lines,
			(unsigned long long)missed, txt(sub.err));
	assert_int_equal((uint64_t)lines + missed, CLI_LINES);

	lbt_proc_free(&sub);
	lbus_close(pub);
	lbus_close(fast);
	lbus_close(q);
}

/* In `lbus sub --json` output from offset from, up to the line holding
 * "END": the lines of the topic before it (*lines) and the sum of the
 * "missed" members, END's included (the drops just before it). */
static uint64_t json_missed(const char *out, size_t from, const char *topic, int *lines)
{
	char key[128];
	uint64_t sum = 0;

	snprintf(key, sizeof(key), "{\"topic\":\"%s\"", topic);
	*lines = 0;
	for (const char *l = out + from; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char buf[1024];

		snprintf(buf, sizeof(buf), "%.*s", (int)len, l);
		if (!strncmp(buf, key, strlen(key))) {
			const char *m = strstr(buf, "\"missed\":");
			bool last = strstr(buf, "\"payload\":\"END\"") != NULL;

			if (m)
				sum += strtoull(m + strlen("\"missed\":"), NULL, 10);
			if (last)
				break;
			(*lines)++;
		}
		l = nl ? nl + 1 : NULL;
	}
	return sum;
}

/* `lbus sub --json --policy drop`, suspended (SIGSTOP) through a flood:
 * once resumed, its "missed" members add up to what it did not print
 * (lines + missed = published) and agree with its stderr warnings. */
static void test_cli_sub_json_missed(void **state)
{
	struct lbt_broker *b = *state;
	const char *topic = "flow/json-drop";
	struct lbt_proc sub;
	lbus *pub, *q;
	int lines;

	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", topic, "--policy", "drop", "--json", NULL), 0);
	long from = lbt_sub_ready(b, &sub, topic, lbt_ms(10000));
	assert_true(from >= 0);
	assert_int_equal(lbt_connect(b, &pub), 0);
	assert_int_equal(lbt_connect(b, &q), 0);

	lbt_proc_signal(&sub, SIGSTOP);
	for (int i = 0; i < N_MSGS; i++) {
		char line[CLI_LINE_LEN];

		cli_line(line, i);
		assert_int_equal(lbus_publish(pub, topic, line, CLI_LINE_LEN - 1, 0), 0);
	}
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	lbt_proc_signal(&sub, SIGCONT);

	/* Drained: the broker holds nothing more for it (its Dropped included). */
	int64_t end = lbt_now_ms() + lbt_ms(20000);
	long long held;
	do {
		lbt_proc_read_bytes(&sub, sub.out_len + 1, 20);
		held = queued_bytes(q, 0, sub.pid);
	} while (held != 0 && lbt_now_ms() < end);
	assert_int_equal(held, 0);
	assert_int_equal(lbus_publish(pub, topic, "END", 3, 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	assert_true(lbt_proc_read_until(&sub, "\"payload\":\"END\"", (size_t)from, lbt_ms(10000)) >= 0);
	lbt_proc_signal(&sub, SIGTERM);
	lbt_proc_wait(&sub, lbt_ms(5000));

	uint64_t missed = json_missed(sub.out, (size_t)from, topic, &lines);
	if ((uint64_t)lines + missed != N_MSGS)
		fprintf(stderr, "printed %d, json missed %llu:\n%s\n", lines, (unsigned long long)missed,
			txt(sub.err));
	assert_true(missed > 0);
	assert_int_equal((uint64_t)lines + missed, N_MSGS);
	assert_int_equal(missed_in_warnings(txt(sub.err)), missed);

	lbt_proc_free(&sub);
	lbus_close(pub);
	lbus_close(q);
}

/* `lbus sub` blocks by default, but only while it reads: suspended
 * (SIGSTOP), it holds up a flood for about its --stall time, then the broker
 * drops for it instead, and once resumed it warns of every message it
 * missed: printed lines + warned drops = published. */
static void test_cli_sub_stall_bound(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc sub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "flow/stall", "--stall", "0.3", NULL), 0);
	long from = lbt_sub_ready(b, &sub, "flow/stall", lbt_ms(10000));
	assert_true(from >= 0);
	lbt_proc_signal(&sub, SIGSTOP);

	lbus *pub;
	assert_int_equal(lbt_connect(b, &pub), 0);
	int64_t t0 = lbt_now_ms();
	for (int i = 0; i < CLI_LINES; i++) {
		char line[CLI_LINE_LEN];
		cli_line(line, i);
		assert_int_equal(lbus_publish(pub, "flow/stall", line, CLI_LINE_LEN - 1, 0), 0);
	}
	assert_int_equal(lbus_sync(pub, lbt_ms(20000)), 0);
	/* 2 MB through a 64 KiB queue: plain block would hold the publisher
	 * until the sub reads again; here it is through in a few seconds. */
	assert_true(lbt_now_ms() - t0 < lbt_ms(8000));

	lbt_proc_signal(&sub, SIGCONT);
	assert_true(await_all_accounted(&sub, from) > 0);
	lbt_proc_signal(&sub, SIGTERM);
	lbt_proc_wait(&sub, lbt_ms(5000));
	lbt_proc_free(&sub);
	lbus_close(pub);
}

/* ---- stall_ms: only a client that stopped reading is dropped for ------------------- */

static void on_count(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	(*(int *)userdata)++;
}

static void on_dropped_count(lbus *bus, uint64_t sub_id, uint64_t count, void *userdata)
{
	*(uint64_t *)userdata += count;
}

/* A client idle for longer than its stall_ms that then gets a burst (here
 * the retained messages replayed on subscribe, 3 times its queue) has not
 * stalled: its stall clock starts when output starts waiting for it. */
static void test_stall_clock_starts_with_output(void **state)
{
	struct lbt_broker *b = *state;
	lbus *pub, *sub;
	char topic[64], payload[1000];
	int got = 0;
	uint64_t dropped = 0;

	assert_int_equal(lbt_connect(b, &pub), 0);
	memset(payload, 'r', sizeof(payload));
	for (int i = 0; i < 200; i++) {
		snprintf(topic, sizeof(topic), "flow/retained/%d", i);
		assert_int_equal(lbus_publish(pub, topic, payload, sizeof(payload), LBUS_RETAIN), 0);
	}
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	assert_int_equal(lbt_connect(b, &sub), 0);
	lbus_on_dropped(sub, on_dropped_count, &dropped);
	lbt_sleep_ms(1000); /* idle, well past stall_ms */
	struct lbus_sub_opts o = {
	    .size = sizeof(struct lbus_sub_opts), .policy = LBUS_POLICY_BLOCK, .stall_ms = 300};
	assert_true(lbus_subscribe(sub, "flow/retained/#", on_count, &got, &o, NULL) == 0);
	for (int64_t t0 = lbt_now_ms(); got + (int)dropped < 200 && lbt_now_ms() - t0 < lbt_ms(5000);)
		assert_true(lbus_run(sub, 20) >= 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(got, 200);
	lbus_close(sub);
	lbus_close(pub);
}

static size_t count_newlines(const char *s, size_t from, size_t len)
{
	size_t n = 0;
	for (size_t i = from; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* A queue group with a suspended member (block, --stall) and a slow one
 * (plain block): once both queues are full, the publisher waits for the
 * slow one instead of dropping for the suspended one, so the group loses
 * nothing. */
static void test_group_prefers_waiting_to_dropping(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc stuck, slow;
	assert_int_equal(lbt_cli_spawn(&slow, b, "sub", "flow/gstall", "-g", "gs", "--stall", "0", NULL), 0);
	assert_true(lbt_sub_ready(b, &slow, "flow/gstall", lbt_ms(10000)) >= 0); /* alone in the group */
	assert_int_equal(lbt_cli_spawn(&stuck, b, "sub", "flow/gstall", "-g", "gs", "--stall", "0.3", NULL),
			 0);
	/* Probe until the group shares with the new member too. */
	lbus *probe;
	assert_int_equal(lbt_connect(b, &probe), 0);
	for (int64_t t0 = lbt_now_ms();
	     !strstr(txt(stuck.out), "probe") && lbt_now_ms() - t0 < lbt_ms(10000);) {
		assert_int_equal(lbus_publish(probe, "flow/gstall", "probe", 5, 0), 0);
		assert_int_equal(lbus_sync(probe, lbt_ms(5000)), 0);
		lbt_proc_read_bytes(&stuck, stuck.out_len + 1, 50);
	}
	assert_non_null(strstr(txt(stuck.out), "probe"));
	lbus_close(probe);
	lbt_proc_read_bytes(&slow, slow.out_len + (1u << 20), 200); /* the probes that went to it */
	long from_slow = (long)slow.out_len, from_stuck = (long)stuck.out_len;
	lbt_proc_signal(&stuck, SIGSTOP);

	struct publisher p;
	publisher_start(&p, b, "flow/gstall", false);
	/* The slow member's output is read in small steps: its queue is full
	 * most of the time. */
	for (int64_t t0 = lbt_now_ms(); !atomic_load(&p.done) && lbt_now_ms() - t0 < lbt_ms(60000);)
		lbt_proc_read_bytes(&slow, slow.out_len + 4096, 20);
	assert_true(atomic_load(&p.done));
	assert_int_equal(pthread_join(p.thread, NULL), 0);
	assert_int_equal(p.result, 0);
	lbt_proc_signal(&stuck, SIGCONT);

	size_t total = 0;
	for (int64_t t0 = lbt_now_ms(); lbt_now_ms() - t0 < lbt_ms(10000);) {
		lbt_proc_read_bytes(&slow, slow.out_len + 1, 20);
		lbt_proc_read_bytes(&stuck, stuck.out_len + 1, 20);
		total = count_newlines(slow.out, (size_t)from_slow, slow.out_len) +
			count_newlines(stuck.out, (size_t)from_stuck, stuck.out_len);
		if (total >= N_MSGS)
			break;
	}
	assert_null(strstr(txt(stuck.err), "dropped"));
	assert_int_equal(total, N_MSGS);
	lbt_proc_signal(&stuck, SIGTERM);
	lbt_proc_signal(&slow, SIGTERM);
	lbt_proc_wait(&stuck, lbt_ms(5000));
	lbt_proc_wait(&slow, lbt_ms(5000));
	lbt_proc_free(&stuck);
	lbt_proc_free(&slow);
	lbus_close(p.bus);
}

/* ---- a connection that breaks inside its own frame handler ------------------------- */

static void raw_subscribe_block(int fd, const char *pattern)
{
	Lbus__Frame f = LBUS__FRAME__INIT, *in = NULL;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;

	s.sub_id = 1;
	s.pattern = (char *)pattern;
	s.policy = LBUS__POLICY__POLICY_BLOCK;
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &s;
	f.req_id = 7;
	assert_int_equal(lbt_raw_send_frame(fd, &f), 0);
	assert_int_equal(lbt_raw_read_frame(fd, lbt_ms(5000), &in), 0);
	assert_int_equal(in->kind_case, LBUS__FRAME__KIND_OK);
	lbus__frame__free_unpacked(in, NULL);
}

static void raw_publish(int fd, const char *topic, size_t len)
{
	static uint8_t payload[MSG_SIZE];
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Publish p = LBUS__PUBLISH__INIT;

	p.topic = (char *)topic;
	p.payload.data = payload;
	p.payload.len = len;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &p;
	assert_int_equal(lbt_raw_send_frame(fd, &f), 0);
}

/* Publish on fd (non-blocking) until the broker stops reading it. */
static void flood_until_blocked(int fd, const char *topic)
{
	uint8_t frame[64 * 1024];
	size_t len = 0, off = 0;
	int64_t idle_since = lbt_now_ms();

	for (int i = 0; len + 300 < sizeof(frame); i++) {
		uint8_t *p = frame + len + 4;
		size_t tl = strlen(topic), n = 0;
		p[n++] = 0x42; /* Frame.publish (8), LEN */
		p[n++] = 0;    /* patched below: < 128 */
		p[n++] = 0x0a;
		p[n++] = (uint8_t)tl;
		memcpy(p + n, topic, tl);
		n += tl;
		p[n++] = 0x12;
		p[n++] = 100;
		memset(p + n, 'x', 100);
		n += 100;
		p[1] = (uint8_t)(n - 2);
		frame[len] = (uint8_t)n;
		frame[len + 1] = frame[len + 2] = frame[len + 3] = 0;
		len += 4 + n;
	}
	while (lbt_now_ms() - idle_since < lbt_ms(500)) {
		ssize_t n = send(fd, frame + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off = (off + (size_t)n) % len;
			idle_since = lbt_now_ms();
		} else {
			lbt_sleep_ms(10);
		}
	}
}

static void test_publisher_broken_inside_its_publish(void **state)
{
	struct lbt_broker *b = *state;
	int self_sub = lbt_raw_connect(b), stalled = lbt_raw_connect(b), flood = lbt_raw_connect(b);
	char buf[65536];
	size_t got = 0;

	assert_true(self_sub >= 0 && stalled >= 0 && flood >= 0);
	assert_int_equal(lbt_raw_hello(self_sub, NULL), 0);
	assert_int_equal(lbt_raw_hello(stalled, NULL), 0);
	assert_int_equal(lbt_raw_hello(flood, NULL), 0);
	raw_subscribe_block(self_sub, "loop/t");
	raw_subscribe_block(stalled, "loop/t");
	flood_until_blocked(flood, "loop/t"); /* both block queues are full now */

	/* The broker's next write to self_sub fails, while it handles
	 * self_sub's own publish to the full queues (bigger than the flood's
	 * messages, so it cannot squeeze in). */
	assert_int_equal(shutdown(self_sub, SHUT_RD), 0);
	raw_publish(self_sub, "loop/t", MSG_SIZE);
	lbt_sleep_ms(300);
	assert_true(lbt_broker_alive(b));

	/* The stalled subscriber drains: the flood resumes and ends. */
	for (int64_t t0 = lbt_now_ms(); lbt_now_ms() - t0 < lbt_ms(2000);) {
		ssize_t n = recv(stalled, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			break;
		else
			lbt_sleep_ms(5);
	}
	assert_true(got > 4096);
	assert_true(lbt_broker_alive(b));
	assert_int_equal(lbt_pubsub_roundtrip(b, "after/break"), 0);
	close(self_sub);
	close(stalled);
	close(flood);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_block_slow_subscriber_gets_everything, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_drop_reports_every_missed_message, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_send_to_stalled_owner_blocks, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_group_skips_stalled_member, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_policy_block, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_drop_warns, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_json_missed, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_stall_bound, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_stall_clock_starts_with_output, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_group_prefers_waiting_to_dropping, setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_publisher_broken_inside_its_publish, setup_tiny,
					    lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
