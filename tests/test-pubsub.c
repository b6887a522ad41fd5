/* SPDX-License-Identifier: MIT */
/*
 * Publish/subscribe and names through liblbus against a real lbusd: what a
 * program linking the library sees. Payloads, topics, counts and order are
 * checked exactly; "nothing else arrived" is checked after a settle (both
 * sides sync with the broker: every delivery queued before the subscriber's
 * pong has been dispatched when its lbus_sync returns), never after a sleep.
 *
 * One broker serves the whole file (group setup/teardown); every test uses
 * its own topics and names and closes its connections.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct lbt_broker broker;

static int setup_broker(void **state)
{
	return lbt_broker_start(&broker, NULL);
}
static int stop_broker(void **state)
{
	return lbt_broker_stop(&broker);
}

/* ---- collecting messages ----------------------------------------------------- */

#define MAX_GOT 64

struct got_msg {
	enum lbus_msg_kind kind;
	char topic[128];
	char data[256];
	size_t len;
	uint64_t sub_id, missed;
	struct lbus_sender sender;
	char sender_name[64];
};

struct inbox {
	size_t n;
	size_t want; /* lbus_break() once n reaches it */
	struct got_msg m[MAX_GOT];
};

static void on_msg(lbus *bus, const struct lbus_msg *msg, void *ud)
{
	struct inbox *in = ud;
	if (in->n < MAX_GOT) {
		struct got_msg *g = &in->m[in->n];
		g->kind = msg->kind;
		snprintf(g->topic, sizeof(g->topic), "%s", msg->topic);
		g->len = msg->len;
		if (msg->len) /* data may be NULL for an empty payload */
			memcpy(g->data, msg->data, msg->len < sizeof(g->data) ? msg->len : sizeof(g->data));
		g->sub_id = msg->sub_id;
		g->missed = msg->missed;
		g->sender = msg->sender;
		snprintf(g->sender_name, sizeof(g->sender_name), "%s",
			 msg->sender.name ? msg->sender.name : "");
	}
	in->n++;
	if (in->want && in->n >= in->want)
		lbus_break(bus);
}

/* Dispatch bus until the inbox holds want messages (or the deadline). */
static void run_until(lbus *bus, struct inbox *in, size_t want)
{
	in->want = want;
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (in->n < want && lbt_now_ms() < deadline) {
		/* 1: on_msg called lbus_break() at want; 0: timed out */
		int r = lbus_run(bus, (int)(deadline - lbt_now_ms()));
		assert_int_equal(r, in->n >= want ? 1 : 0);
	}
	in->want = 0;
	assert_int_equal(in->n, want);
}

/* Every frame pub sent is processed, and everything the broker queued for
 * sub before that has been dispatched. */
static void settle(lbus *pub, lbus *sub)
{
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	assert_int_equal(lbus_sync(sub, lbt_ms(5000)), 0);
}

static lbus *connect_ok(void)
{
	lbus *bus;
	assert_int_equal(lbt_connect(&broker, &bus), 0);
	return bus;
}

/* Publish and write it out (publishing only buffers). */
static void publish_str(lbus *bus, const char *topic, const char *s)
{
	assert_int_equal(lbus_publish(bus, topic, s, strlen(s), 0), 0);
	assert_int_equal(lbus_flush(bus, lbt_ms(5000)), 0);
}

static void assert_got(const struct got_msg *g, const char *topic, const char *data)
{
	assert_int_equal(g->kind, LBUS_MSG_PUBLISH);
	assert_string_equal(g->topic, topic);
	assert_int_equal(g->len, strlen(data));
	assert_memory_equal(g->data, data, g->len);
}

/* ---- publish / subscribe ------------------------------------------------------- */

static void test_publish_reaches_subscriber(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox in = {0};
	uint64_t id = 0;
	assert_int_equal(lbus_subscribe(sub, "basic/t", on_msg, &in, NULL, &id), 0);
	assert_true(id > 0);
	publish_str(pub, "basic/t", "hello");
	run_until(sub, &in, 1);
	assert_got(&in.m[0], "basic/t", "hello");
	assert_true(in.m[0].sub_id == id);
	assert_int_equal(in.m[0].missed, 0);
	/* Sender identity as the broker saw it. */
	assert_true(in.m[0].sender.id == lbus_client_id(pub));
	assert_true(lbus_client_id(pub) != lbus_client_id(sub));
	assert_int_equal(in.m[0].sender.pid, getpid());
	assert_int_equal(in.m[0].sender.uid, getuid());
	assert_int_equal(in.m[0].sender.gid, getgid());
	assert_string_equal(in.m[0].sender_name, "");
	settle(pub, sub);
	assert_int_equal(in.n, 1);
	lbus_close(pub);
	lbus_close(sub);
}

struct big_check {
	const uint8_t *want;
	size_t len;
	int ok, seen;
};

static void on_big(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct big_check *c = ud;
	c->seen++;
	c->ok += m->len == c->len && !memcmp(m->data, c->want, c->len);
	lbus_break(bus);
}

static void test_binary_empty_and_large_payloads(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox in = {0};
	assert_true(lbus_subscribe(sub, "bin", on_msg, &in, NULL, NULL) == 0);
	static const char bin[] = {0, 1, 2, '\n', (char)0xff, 0};
	assert_int_equal(lbus_publish(pub, "bin", bin, sizeof(bin), 0), 0);
	assert_int_equal(lbus_publish(pub, "bin", "", 0, 0), 0);
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	run_until(sub, &in, 2);
	assert_int_equal(in.m[0].len, sizeof(bin));
	assert_memory_equal(in.m[0].data, bin, sizeof(bin));
	assert_int_equal(in.m[1].len, 0);
	lbus_close(sub);

	/* 1 MiB arrives intact, checked inside the callback. */
	sub = connect_ok();
	size_t big = 1u << 20;
	uint8_t *data = malloc(big);
	lbt_fill_random(data, big, 7);
	struct big_check bc = {data, big, 0, 0};
	assert_true(lbus_subscribe(sub, "big", on_big, &bc, NULL, NULL) == 0);
	assert_int_equal(lbus_publish(pub, "big", data, big, 0), 0);
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (!bc.seen && lbt_now_ms() < deadline) {
		int r = lbus_run(sub, lbt_ms(5000));
		assert_int_equal(r, bc.seen ? 1 : 0); /* on_big breaks */
	}
	assert_int_equal(bc.seen, 1);
	assert_int_equal(bc.ok, 1);
	free(data);
	lbus_close(pub);
	lbus_close(sub);
}

struct wild_case {
	const char *pattern;
	const char *expect; /* topics it must receive, in order, space-separated */
};

static void test_wildcards(void **state)
{
	static const char *const topics[] = {"w/a", "w/a/b", "w/b/t", "w", "x/a/t", "w//t", "$w/a"};
	static const struct wild_case cases[] = {
	    {"w/+", "w/a"},
	    {"w/#", "w/a w/a/b w/b/t w w//t"},
	    {"w/+/t", "w/b/t w//t"},
	    {"+/+/t", "w/b/t x/a/t w//t"},
	    {"#", "w/a w/a/b w/b/t w x/a/t w//t"},
	    {"$w/#", "$w/a"},
	    {"w", "w"},
	};
	lbus *pub = connect_ok();
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		lbus *sub = connect_ok();
		struct inbox in = {0};
		assert_true(lbus_subscribe(sub, cases[c].pattern, on_msg, &in, NULL, NULL) == 0);
		for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
			if (topics[t][0] != '$')
				publish_str(pub, topics[t], topics[t]);
		settle(pub, sub);
		char got[256] = "";
		for (size_t i = 0; i < in.n && i < MAX_GOT; i++) {
			assert_string_equal(in.m[i].topic, in.m[i].data); /* payload = its topic */
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
				 in.m[i].topic);
		}
		/* $ topics cannot be published by clients: "$w/#" gets nothing. */
		const char *want = strcmp(cases[c].pattern, "$w/#") ? cases[c].expect : "";
		if (strcmp(got, want))
			fail_msg("pattern %s: got '%s', want '%s'", cases[c].pattern, got, want);
		lbus_close(sub);
	}
	lbus_close(pub);
}

static void test_several_subscribers(void **state)
{
	enum { SUBS = 4, MSGS = 20 };
	lbus *pub = connect_ok(), *subs[SUBS];
	struct inbox in[SUBS];
	memset(in, 0, sizeof(in));
	for (int i = 0; i < SUBS; i++) {
		subs[i] = connect_ok();
		assert_true(
		    lbus_subscribe(subs[i], i % 2 ? "fan/#" : "fan/out", on_msg, &in[i], NULL, NULL) == 0);
	}
	for (int k = 0; k < MSGS; k++) {
		char s[16];
		snprintf(s, sizeof(s), "m%d", k);
		publish_str(pub, "fan/out", s);
	}
	for (int i = 0; i < SUBS; i++) {
		run_until(subs[i], &in[i], MSGS);
		for (int k = 0; k < MSGS; k++) {
			char s[16];
			snprintf(s, sizeof(s), "m%d", k);
			assert_got(&in[i].m[k], "fan/out", s);
		}
		settle(pub, subs[i]);
		assert_int_equal(in[i].n, MSGS);
		lbus_close(subs[i]);
	}
	lbus_close(pub);
}

/* Two matching subscriptions on one connection: one delivery each, each
 * carrying its own subscription id. */
static void test_overlapping_subscriptions(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox a = {0}, b = {0};
	uint64_t ida = 0, idb = 0;
	assert_int_equal(lbus_subscribe(sub, "ov/x", on_msg, &a, NULL, &ida), 0);
	assert_int_equal(lbus_subscribe(sub, "ov/#", on_msg, &b, NULL, &idb), 0);
	assert_true(ida > 0 && idb > 0 && ida != idb);
	publish_str(pub, "ov/x", "1");
	publish_str(pub, "ov/y", "2");
	settle(pub, sub);
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 2);
	assert_true(a.m[0].sub_id == ida);
	assert_true(b.m[0].sub_id == idb);
	assert_got(&b.m[1], "ov/y", "2");
	lbus_close(pub);
	lbus_close(sub);
}

static void test_unsubscribe(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox in = {0}, other = {0};
	uint64_t id = 0;
	assert_int_equal(lbus_subscribe(sub, "uns/t", on_msg, &in, NULL, &id), 0);
	assert_true(id > 0);
	assert_true(lbus_subscribe(sub, "uns/#", on_msg, &other, NULL, NULL) == 0);
	publish_str(pub, "uns/t", "before");
	run_until(sub, &in, 1);
	assert_int_equal(lbus_unsubscribe(sub, id), 0);
	publish_str(pub, "uns/t", "after");
	settle(pub, sub);
	assert_int_equal(in.n, 1);
	assert_got(&in.m[0], "uns/t", "before");
	assert_int_equal(other.n, 2); /* the other subscription is untouched */
	assert_got(&other.m[1], "uns/t", "after");
	assert_int_equal(lbus_unsubscribe(sub, id), -ENOENT);
	assert_int_equal(lbus_unsubscribe(sub, 999999), -ENOENT);

	/* Deliveries already on their way when unsubscribe is called: whatever
	 * ran before it returned, no callback runs after. */
	struct inbox late = {0};
	uint64_t lid = 0;
	assert_int_equal(lbus_subscribe(sub, "uns/late", on_msg, &late, NULL, &lid), 0);
	assert_true(lid > 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(lbus_publish(pub, "uns/late", "z", 1, 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0); /* all queued to sub */
	assert_int_equal(lbus_unsubscribe(sub, lid), 0);
	size_t at_return = late.n;
	assert_int_equal(lbus_sync(sub, lbt_ms(5000)), 0);
	assert_int_equal(late.n, at_return);
	/* Subscribing again works. */
	assert_true(lbus_subscribe(sub, "uns/t", on_msg, &in, NULL, NULL) == 0);
	publish_str(pub, "uns/t", "again");
	run_until(sub, &in, 2);
	assert_got(&in.m[1], "uns/t", "again");
	lbus_close(pub);
	lbus_close(sub);
}

/* A callback may publish and unsubscribe on its own handle. */
struct reentrant {
	uint64_t id;
	int calls;
	int unsub_result;
};

static void on_reentrant(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct reentrant *r = ud;
	r->calls++;
	char echo[32];
	snprintf(echo, sizeof(echo), "echo-%.*s", (int)m->len, (const char *)m->data);
	lbus_publish(bus, "re/out", echo, strlen(echo), 0);
	if (r->calls == 3)
		r->unsub_result = lbus_unsubscribe(bus, r->id);
}

static void test_callback_reentrancy(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct reentrant re = {0, 0, 1};
	struct inbox echoes = {0};
	assert_true(lbus_subscribe(pub, "re/out", on_msg, &echoes, NULL, NULL) == 0);
	assert_int_equal(lbus_subscribe(sub, "re/in", on_reentrant, &re, NULL, &re.id), 0);
	assert_true(re.id > 0);
	for (int i = 0; i < 5; i++) {
		char m[8];
		snprintf(m, sizeof(m), "%d", i);
		publish_str(pub, "re/in", m);
	}
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (re.calls < 3 && lbt_now_ms() < deadline)
		assert_int_equal(lbus_run(sub, 20), 0);
	settle(pub, sub);
	assert_int_equal(lbus_flush(sub, lbt_ms(5000)), 0);
	assert_int_equal(re.calls, 3);
	assert_int_equal(re.unsub_result, 0);
	run_until(pub, &echoes, 3);
	assert_got(&echoes.m[0], "re/out", "echo-0");
	assert_got(&echoes.m[2], "re/out", "echo-2");
	lbus_close(pub);
	lbus_close(sub);
}

/* Closing right after a burst of publishes still delivers all of it. */
static void test_close_flushes_buffered_publishes(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox in = {0};
	assert_true(lbus_subscribe(sub, "flush/t", on_msg, &in, NULL, NULL) == 0);
	for (int i = 0; i < MAX_GOT; i++) {
		char m[8];
		snprintf(m, sizeof(m), "%d", i);
		assert_int_equal(lbus_publish(pub, "flush/t", m, strlen(m), 0), 0);
	}
	lbus_close(pub);
	run_until(sub, &in, MAX_GOT);
	assert_got(&in.m[MAX_GOT - 1], "flush/t", "63");
	lbus_close(sub);
}

/* The broker's limit is announced and enforced before anything is sent
 * (payloads in-band: memfd offload off); offloaded, the same payload goes. */
static void test_max_frame(void **state)
{
	struct lbus_connect_opts o = LBUS_CONNECT_OPTS_INIT;
	lbus *bus, *offload = connect_ok();
	o.memfd_threshold = 0;
	assert_int_equal(lbus_connect_with(&bus, broker.sock, &o), 0);
	assert_int_equal(lbus_max_frame(bus), 8u * 1024 * 1024);
	size_t big = lbus_max_frame(bus);
	char *data = calloc(1, big);
	assert_int_equal(lbus_publish(bus, "max/t", data, big, 0), -EMSGSIZE);
	assert_int_equal(lbus_send(bus, "max.name", data, big, 0), -EMSGSIZE);
	assert_int_equal(lbus_publish(offload, "max/t", data, big, 0), 0);
	free(data);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
	assert_int_equal(lbus_last_error(bus, NULL), 0);
	assert_int_equal(lbus_sync(offload, lbt_ms(5000)), 0);
	assert_int_equal(lbus_last_error(offload, NULL), 0);
	lbus_close(bus);
	lbus_close(offload);
}

/* ---- ordering -------------------------------------------------------------- */

#define ORDER_N 100000

struct order {
	uint32_t next, bad, missed;
};

static void on_ordered(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct order *o = ud;
	uint32_t seq = UINT32_MAX;
	if (m->len == sizeof(seq))
		memcpy(&seq, m->data, sizeof(seq));
	o->bad += seq != o->next;
	o->missed += (uint32_t)m->missed;
	o->next++;
}

static void test_order_of_100k_messages(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct order o = {0};
	assert_true(lbus_subscribe(sub, "order", on_ordered, &o, NULL, NULL) == 0);
	for (uint32_t i = 0; i < ORDER_N; i++) {
		assert_int_equal(lbus_publish(pub, "order", &i, sizeof(i), 0), 0);
		if (i % 5000 == 4999) {
			assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
			assert_true(lbus_dispatch(sub) >= 0);
		}
	}
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	int64_t deadline = lbt_now_ms() + lbt_ms(30000);
	while (o.next < ORDER_N && lbt_now_ms() < deadline)
		assert_int_equal(lbus_run(sub, 50), 0);
	settle(pub, sub);
	assert_int_equal(o.next, ORDER_N);
	assert_int_equal(o.bad, 0);
	assert_int_equal(o.missed, 0);
	lbus_close(pub);
	lbus_close(sub);
}

/* ---- sender identity --------------------------------------------------------- */

/* A child process that publishes "child" on ident once told to go (a byte on
 * the pipe). Forked before the parent connects, so it holds no handle of
 * the parent's. */
static pid_t start_child_publisher(int *go_fd)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(pfd[1]);
		char c;
		lbus *bus = NULL;
		int ok = read(pfd[0], &c, 1) == 1 && lbus_connect(&bus, broker.sock) == 0 &&
			 lbus_publish(bus, "ident", "child", 5, 0) == 0 && lbus_sync(bus, 5000) == 0;
		lbus_close(bus);
		_exit(ok ? 0 : 1);
	}
	close(pfd[0]);
	*go_fd = pfd[1];
	return child;
}

static void test_sender_name_and_child_pid(void **state)
{
	int go;
	pid_t child = start_child_publisher(&go);
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox in = {0};
	assert_true(lbus_subscribe(sub, "ident", on_msg, &in, NULL, NULL) == 0);
	assert_int_equal(lbus_name_take(pub, "org.test.Publisher"), 0);
	publish_str(pub, "ident", "named");
	run_until(sub, &in, 1);
	assert_string_equal(in.m[0].sender_name, "org.test.Publisher");
	assert_true(in.m[0].sender.id == lbus_client_id(pub));

	/* Another process: the broker reports its pid, not ours. */
	assert_int_equal(write(go, "g", 1), 1);
	close(go);
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	run_until(sub, &in, 2);
	assert_got(&in.m[1], "ident", "child");
	assert_int_equal(in.m[1].sender.pid, child);
	assert_int_equal(in.m[1].sender.uid, getuid());
	assert_string_equal(in.m[1].sender_name, "");
	lbus_close(pub);
	lbus_close(sub);
}

/* ---- names ------------------------------------------------------------------- */

static void test_names_take_release(void **state)
{
	lbus *a = connect_ok(), *b = connect_ok();
	assert_int_equal(lbus_name_take(a, "svc.one"), 0);
	assert_int_equal(lbus_name_take(a, "svc.one"), 0); /* again: no-op */
	assert_int_equal(lbus_name_take(b, "svc.one"), -EADDRINUSE);
	assert_int_equal(lbus_name_release(b, "svc.one"), -EPERM);
	uint64_t owner = 0;
	assert_int_equal(lbus_name_query(b, "svc.one", &owner), 1);
	assert_true(owner == lbus_client_id(a));
	assert_int_equal(lbus_name_release(a, "svc.one"), 0);
	assert_int_equal(lbus_name_query(b, "svc.one", NULL), 0);
	assert_int_equal(lbus_name_take(b, "svc.one"), 0);
	/* Several names per client. */
	assert_int_equal(lbus_name_take(a, "svc.two"), 0);
	assert_int_equal(lbus_name_take(a, "svc.three"), 0);
	assert_int_equal(lbus_name_take(b, "svc.two"), -EADDRINUSE);
	/* Invalid names are refused by the library. */
	assert_int_equal(lbus_name_take(a, ""), -EINVAL);
	assert_int_equal(lbus_name_take(a, "-x"), -EINVAL);
	assert_int_equal(lbus_name_take(a, "a/b"), -EINVAL);
	lbus_close(a);
	lbus_close(b);
}

static void test_names_released_on_disconnect(void **state)
{
	lbus *a = connect_ok(), *b = connect_ok();
	assert_int_equal(lbus_name_take(a, "svc.gone"), 0);
	assert_int_equal(lbus_name_take(a, "svc.gone2"), 0);
	lbus_close(a);
	/* The broker notices the hang-up asynchronously: poll, bounded. */
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	int r;
	while ((r = lbus_name_take(b, "svc.gone")) == -EADDRINUSE && lbt_now_ms() < deadline)
		lbus_run(b, 5);
	assert_int_equal(r, 0);
	assert_int_equal(lbus_name_take(b, "svc.gone2"), 0);
	lbus_close(b);
}

struct err_seen {
	int err, n;
};

static void on_err(lbus *bus, int err, const char *what, void *ud)
{
	struct err_seen *e = ud;
	e->err = err;
	e->n++;
}

static void test_send_to_name(void **state)
{
	lbus *owner = connect_ok(), *sender = connect_ok();
	struct inbox in = {0};
	assert_int_equal(lbus_name_take(owner, "org.test.Sink"), 0);
	lbus_on_message(owner, on_msg, &in);
	assert_int_equal(lbus_send(sender, "org.test.Sink", "ping", 4, 0), 0);
	assert_int_equal(lbus_send(sender, "org.test.Sink", "", 0, 0), 0);
	run_until(owner, &in, 2);
	assert_int_equal(in.m[0].kind, LBUS_MSG_SEND);
	assert_string_equal(in.m[0].topic, "org.test.Sink");
	assert_int_equal(in.m[0].len, 4);
	assert_memory_equal(in.m[0].data, "ping", 4);
	assert_int_equal(in.m[0].sub_id, 0);
	assert_true(in.m[0].sender.id == lbus_client_id(sender));
	assert_int_equal(in.m[0].sender.pid, getpid());
	assert_int_equal(in.m[1].len, 0);

	/* Nobody owns it: an immediate error, never a silent drop. */
	assert_int_equal(lbus_send(sender, "org.test.Nobody", "x", 1, 0), -ENXIO);
	assert_int_equal(lbus_send(sender, "bad name", "x", 1, 0), -EINVAL);

	/* Without waiting, the error reaches the error handler. */
	struct err_seen es = {0, 0};
	lbus_on_error(sender, on_err, &es);
	assert_int_equal(lbus_send(sender, "org.test.Nobody", "x", 1, LBUS_NOWAIT), 0);
	assert_int_equal(lbus_sync(sender, lbt_ms(5000)), 0);
	assert_int_equal(es.n, 1);
	assert_int_equal(es.err, -ENXIO);
	/* The connection is still fine. */
	assert_int_equal(lbus_send(sender, "org.test.Sink", "still", 5, 0), 0);
	run_until(owner, &in, 3);
	assert_memory_equal(in.m[2].data, "still", 5);
	lbus_close(owner);
	lbus_close(sender);
}

/* ---- invalid input to the library ---------------------------------------------- */

static void test_invalid_topics_rejected_locally(void **state)
{
	lbus *bus = connect_ok();
	struct inbox in = {0};
	static const char *const bad_topics[] = {"", "a/+", "a/#", "#", "+", "a+b", "\xff"};
	for (size_t i = 0; i < sizeof(bad_topics) / sizeof(bad_topics[0]); i++)
		assert_int_equal(lbus_publish(bus, bad_topics[i], "x", 1, 0), -EINVAL);
	static const char *const bad_patterns[] = {"", "a/#/b", "a#", "+a", "##", "\xc3"};
	for (size_t i = 0; i < sizeof(bad_patterns) / sizeof(bad_patterns[0]); i++)
		assert_int_equal(lbus_subscribe(bus, bad_patterns[i], on_msg, &in, NULL, NULL), -EINVAL);
	assert_int_equal(lbus_publish(bus, "$lbus/client/connected", "x", 1, 0), -EACCES);
	/* Topic length: 4096 bytes is the limit. */
	char *longest = malloc(4098);
	memset(longest, 't', 4097);
	longest[4097] = '\0';
	assert_int_equal(lbus_publish(bus, longest, "x", 1, 0), -EINVAL);
	assert_int_equal(lbus_subscribe(bus, longest, on_msg, &in, NULL, NULL), -EINVAL);
	longest[4096] = '\0';
	assert_int_equal(lbus_publish(bus, longest, "x", 1, 0), 0);
	free(longest);
	struct lbus_sub_opts bad_group = {.size = sizeof(struct lbus_sub_opts), .group = "-bad"};
	assert_int_equal(lbus_subscribe(bus, "ok", on_msg, &in, &bad_group, NULL), -EINVAL);
	/* Nothing was sent that the broker refused: no late errors. */
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
	assert_int_equal(lbus_last_error(bus, NULL), 0);
	lbus_close(bus);
	assert_int_equal(lbt_pubsub_roundtrip(&broker, "after/invalid"), 0);
}

static void test_connect_failure(void **state)
{
	lbus *bus = NULL;
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, broker.dir, "no-such.sock"), 0);
	int r = lbus_connect(&bus, path);
	assert_true(r == -ENOENT || r == -ECONNREFUSED);
	assert_non_null(lbus_strerror(r));
	lbus_close(NULL); /* accepted */
	/* Bus-specific errors are explained in bus terms. */
	assert_string_equal(lbus_strerror(-ENXIO), "no such name");
	assert_string_equal(lbus_strerror(-EADDRINUSE), "name already taken");
	assert_true(strlen(lbus_strerror(-EINVAL)) > 0);
	assert_true(strlen(lbus_strerror(-123456)) > 0);
}

/* ---- event loop integration -------------------------------------------------- */

static void test_poll_and_dispatch(void **state)
{
	lbus *sub = connect_ok(), *pub = connect_ok();
	struct inbox in = {0};
	assert_true(lbus_subscribe(sub, "loop", on_msg, &in, NULL, NULL) == 0);
	for (int i = 0; i < 3; i++)
		publish_str(pub, "loop", "e");
	assert_int_equal(lbus_flush(pub, lbt_ms(5000)), 0);
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	int handled = 0;
	while (in.n < 3 && lbt_now_ms() < deadline) {
		struct pollfd pf = {.fd = lbus_fd(sub), .events = lbus_events(sub)};
		assert_true(pf.fd >= 0);
		assert_true(pf.events & POLLIN);
		int timeout = lbus_timeout(sub);
		assert_true(poll(&pf, 1, timeout < 0 || timeout > 100 ? 100 : timeout) >= 0);
		int r = lbus_dispatch(sub);
		assert_true(r >= 0);
		handled += r;
	}
	assert_int_equal(in.n, 3);
	assert_int_equal(handled, 3);
	lbus_close(pub);
	lbus_close(sub);
}

/* lbus_run() with nothing to do returns 0 after about its timeout. */
static void test_run_timeout(void **state)
{
	lbus *bus = connect_ok();
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbus_run(bus, 150), 0);
	int64_t took = lbt_now_ms() - t0;
	assert_true(took >= 140);
	assert_true(took < 150 + lbt_ms(1000));
	lbus_close(bus);
}

/* lbus_connect(NULL) finds the bus through $LBUS_SOCKET. */
static void test_connect_default_path(void **state)
{
	setenv("LBUS_SOCKET", broker.sock, 1);
	lbus *bus = NULL;
	int r = lbus_connect(&bus, NULL);
	unsetenv("LBUS_SOCKET");
	assert_int_equal(r, 0);
	assert_true(lbus_client_id(bus) > 0);
	lbus_close(bus);
}

/* Connecting and closing many times leaks no descriptor in the client. */
static void test_no_fd_leak(void **state)
{
	int before = lbt_fd_count();
	assert_true(before > 0);
	for (int i = 0; i < 30; i++) {
		lbus *bus = connect_ok();
		struct inbox in = {0};
		assert_true(lbus_subscribe(bus, "leak", on_msg, &in, NULL, NULL) == 0);
		publish_str(bus, "leak", "x");
		run_until(bus, &in, 1);
		lbus_close(bus);
	}
	assert_int_equal(lbt_fd_count(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_reaches_subscriber),
	    cmocka_unit_test(test_binary_empty_and_large_payloads),
	    cmocka_unit_test(test_wildcards),
	    cmocka_unit_test(test_several_subscribers),
	    cmocka_unit_test(test_overlapping_subscriptions),
	    cmocka_unit_test(test_unsubscribe),
	    cmocka_unit_test(test_callback_reentrancy),
	    cmocka_unit_test(test_close_flushes_buffered_publishes),
	    cmocka_unit_test(test_max_frame),
	    cmocka_unit_test(test_order_of_100k_messages),
	    cmocka_unit_test(test_sender_name_and_child_pid),
	    cmocka_unit_test(test_names_take_release),
	    cmocka_unit_test(test_names_released_on_disconnect),
	    cmocka_unit_test(test_send_to_name),
	    cmocka_unit_test(test_invalid_topics_rejected_locally),
	    cmocka_unit_test(test_connect_failure),
	    cmocka_unit_test(test_poll_and_dispatch),
	    cmocka_unit_test(test_run_timeout),
	    cmocka_unit_test(test_connect_default_path),
	    cmocka_unit_test(test_no_fd_leak),
	};
	return cmocka_run_group_tests(tests, setup_broker, stop_broker);
}
