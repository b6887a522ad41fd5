/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the monitor (issue 3): lbus_monitor() and
 * `lbus monitor [PATTERN]` against a real lbusd on a private socket.
 *
 * A known exchange is made — a publish with two subscribers, a publish with
 * none, a send to a name, a call answered by a responder, a call nobody can
 * answer, a send to a name nobody owns — and the monitor must show each of
 * them exactly, with its sender (client id, pid) and its receivers (client ids), calls and replies linked
 * by one call id. A monitor with a pattern sees only the publishes that
 * match it, and no sends. `lbus monitor --json` prints the same facts: the
 * payload, the topic or name, the sender's id and the receivers' ids. A send
 * to a name nobody owns shows as an error naming the target, like a call
 * nobody can answer; in text too ("error mon.nobody #0 from 0 to 7: ...").
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
#include <unistd.h>

#include "harness.h"

#define MAX_EV 64
#define MAX_RCV 8

/* ---- recording monitor events ------------------------------------------------ */

struct mon_ev {
	enum lbus_monitor_kind kind;
	uint64_t sender_id;
	pid_t sender_pid;
	uint64_t receivers[MAX_RCV];
	size_t n_receivers;
	char topic[64], name[64], data[64];
	uint64_t call_id;
	int error;
};

struct mon_log {
	struct mon_ev ev[MAX_EV];
	int n;
};

static void on_monitor(lbus *bus, const struct lbus_monitor_event *e, void *userdata)
{
	struct mon_log *log = userdata;
	if (log->n >= MAX_EV)
		return;
	struct mon_ev *m = &log->ev[log->n++];
	memset(m, 0, sizeof(*m));
	m->kind = e->kind;
	m->sender_id = e->sender.id;
	m->sender_pid = e->sender.pid;
	m->n_receivers = e->n_receivers;
	for (size_t i = 0; i < e->n_receivers && i < MAX_RCV; i++)
		m->receivers[i] = e->receivers[i];
	snprintf(m->topic, sizeof(m->topic), "%s", e->topic ? e->topic : "");
	snprintf(m->name, sizeof(m->name), "%s", e->name ? e->name : "");
	snprintf(m->data, sizeof(m->data), "%.*s", (int)(e->len < 63 ? e->len : 63),
		 e->len ? (const char *)e->data : "");
	m->call_id = e->call_id;
	m->error = e->error;
}

/* The first event of kind whose payload is data, or NULL. */
static const struct mon_ev *find_ev(const struct mon_log *log, enum lbus_monitor_kind kind, const char *data)
{
	for (int i = 0; i < log->n; i++)
		if (log->ev[i].kind == kind && strcmp(log->ev[i].data, data) == 0)
			return &log->ev[i];
	return NULL;
}

/* Dispatch the monitor until it has recorded that event. */
static const struct mon_ev *await_ev(lbus *mon, struct mon_log *log, enum lbus_monitor_kind kind,
				     const char *data)
{
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	const struct mon_ev *e;
	while (!(e = find_ev(log, kind, data)) && lbt_now_ms() < end)
		if (lbus_run(mon, 20) < 0)
			break;
	if (!e)
		fprintf(stderr, "monitor: no event of kind %d with payload \"%s\" among %d\n", kind, data,
			log->n);
	return e;
}

static bool has_receivers(const struct mon_ev *e, size_t n, const uint64_t *ids)
{
	if (e->n_receivers != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t k = 0; k < e->n_receivers && k < MAX_RCV; k++)
			found |= e->receivers[k] == ids[i];
		if (!found)
			return false;
	}
	return true;
}

/* ---- a responder answering "pong" from a thread ------------------------------- */

struct responder {
	lbus *bus;
	pthread_t thread;
	atomic_bool stop;
};

static void answer_pong(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	if (msg->kind == LBUS_MSG_CALL)
		lbus_reply(bus, msg->reply_token, "pong", 4);
}

static void *responder_main(void *arg)
{
	struct responder *r = arg;
	while (!atomic_load(&r->stop))
		if (lbus_run(r->bus, 20) < 0)
			break;
	return NULL;
}

static void responder_start(struct responder *r, const struct lbt_broker *b, const char *name)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(lbt_connect(b, &r->bus), 0);
	lbus_on_call(r->bus, answer_pong, NULL);
	assert_int_equal(lbus_name_take(r->bus, name), 0);
	assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(struct responder *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	lbus_close(r->bus);
}

/* ---- the exchange under observation --------------------------------------------- */

struct cast {
	lbus *a, *s, *s2;   /* sender; two subscribers (s owns mon.s) */
	struct responder r; /* owns mon.r */
	int got;
};

static void count(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	(*(int *)userdata)++;
}

static void cast_start(struct cast *c, const struct lbt_broker *b)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(lbt_connect(b, &c->a), 0);
	assert_int_equal(lbt_connect(b, &c->s), 0);
	assert_int_equal(lbt_connect(b, &c->s2), 0);
	assert_true(lbus_subscribe(c->s, "mon/t", count, &c->got, NULL, NULL) == 0);
	assert_true(lbus_subscribe(c->s2, "mon/+", count, &c->got, NULL, NULL) == 0);
	assert_int_equal(lbus_name_take(c->s, "mon.s"), 0);
	lbus_on_message(c->s, count, &c->got);
	responder_start(&c->r, b, "mon.r");
}

/* Publish p1 (2 receivers) and p0 (none), send s1, call ping/pong, call
 * nobody. */
static void cast_play(struct cast *c)
{
	assert_int_equal(lbus_publish(c->a, "mon/t", "p1", 2, 0), 0);
	assert_int_equal(lbus_publish(c->a, "mon/none/here", "p0", 2, 0), 0);
	assert_int_equal(lbus_send(c->a, "mon.s", "s1", 2, 0), 0);
	struct lbus_reply *reply = NULL;
	assert_int_equal(lbus_call(c->a, "mon.r", "ping", 4, lbt_ms(5000), &reply), 0);
	assert_int_equal(reply->len, 4);
	lbus_reply_free(reply);
	assert_int_equal(lbus_call(c->a, "mon.nobody", "lost", 4, lbt_ms(5000), &reply), -ESRCH);
	assert_int_equal(lbus_send(c->a, "mon.nobody", "nosend", 6, 0), -ENXIO);
	assert_int_equal(lbus_sync(c->a, lbt_ms(5000)), 0);
}

static void cast_stop(struct cast *c)
{
	responder_stop(&c->r);
	lbus_close(c->a);
	lbus_close(c->s);
	lbus_close(c->s2);
}

/* ---- library ------------------------------------------------------------------ */

static void test_monitor_sees_all_traffic(void **state)
{
	struct lbt_broker *b = *state;
	struct cast c;
	cast_start(&c, b);
	lbus *mon;
	static struct mon_log log;
	memset(&log, 0, sizeof(log));
	assert_int_equal(lbt_connect(b, &mon), 0);
	assert_int_equal(lbus_monitor(mon, NULL, on_monitor, &log), 0);

	cast_play(&c);
	uint64_t a = lbus_client_id(c.a), s = lbus_client_id(c.s), s2 = lbus_client_id(c.s2);
	uint64_t r = lbus_client_id(c.r.bus);

	const struct mon_ev *e = await_ev(mon, &log, LBUS_MON_PUBLISH, "p1");
	assert_non_null(e);
	assert_int_equal(e->sender_id, a);
	assert_int_equal(e->sender_pid, getpid());
	assert_string_equal(e->topic, "mon/t");
	assert_true(has_receivers(e, 2, (uint64_t[]){s, s2}));

	e = await_ev(mon, &log, LBUS_MON_PUBLISH, "p0");
	assert_non_null(e);
	assert_string_equal(e->topic, "mon/none/here");
	assert_int_equal(e->n_receivers, 0);

	e = await_ev(mon, &log, LBUS_MON_SEND, "s1");
	assert_non_null(e);
	assert_int_equal(e->sender_id, a);
	assert_string_equal(e->name, "mon.s");
	assert_true(has_receivers(e, 1, &s));

	const struct mon_ev *call = await_ev(mon, &log, LBUS_MON_CALL, "ping");
	assert_non_null(call);
	assert_int_equal(call->sender_id, a);
	assert_string_equal(call->name, "mon.r");
	assert_true(has_receivers(call, 1, &r));
	assert_true(call->call_id != 0);

	const struct mon_ev *reply = await_ev(mon, &log, LBUS_MON_REPLY, "pong");
	assert_non_null(reply);
	assert_int_equal(reply->sender_id, r);
	assert_true(has_receivers(reply, 1, &a));
	assert_int_equal(reply->call_id, call->call_id);
	assert_true(reply > call);

	/* A call nobody could answer shows as an error. */
	bool error_seen = false;
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	while (!error_seen && lbt_now_ms() < end) {
		for (int i = 0; i < log.n; i++)
			error_seen |= log.ev[i].kind == LBUS_MON_ERROR && log.ev[i].error == -ESRCH;
		if (!error_seen)
			lbus_run(mon, 20);
	}
	assert_true(error_seen);

	/* So does a send to a name nobody owns: from the broker to the sender,
	 * naming the target. */
	e = NULL;
	end = lbt_now_ms() + lbt_ms(5000);
	while (!e && lbt_now_ms() < end) {
		for (int i = 0; i < log.n; i++)
			if (log.ev[i].kind == LBUS_MON_ERROR && log.ev[i].error == -ENXIO)
				e = &log.ev[i];
		if (!e)
			lbus_run(mon, 20);
	}
	assert_non_null(e);
	assert_string_equal(e->name, "mon.nobody");
	assert_int_equal(e->sender_id, 0);
	assert_true(has_receivers(e, 1, &a));

	/* Every message was seen once, and the monitor got no deliveries. */
	assert_int_equal(lbus_sync(mon, lbt_ms(5000)), 0);
	int p1 = 0;
	for (int i = 0; i < log.n; i++)
		p1 += log.ev[i].kind == LBUS_MON_PUBLISH && strcmp(log.ev[i].data, "p1") == 0;
	assert_int_equal(p1, 1);
	lbus_close(mon);
	cast_stop(&c);
}

static void test_monitor_pattern_filters(void **state)
{
	struct lbt_broker *b = *state;
	struct cast c;
	cast_start(&c, b);
	lbus *mon;
	static struct mon_log log;
	memset(&log, 0, sizeof(log));
	assert_int_equal(lbt_connect(b, &mon), 0);
	assert_int_equal(lbus_monitor(mon, "mon/a/#", on_monitor, &log), 0);

	assert_int_equal(lbus_publish(c.a, "mon/b/x", "bx", 2, 0), 0);
	assert_int_equal(lbus_send(c.a, "mon.s", "sx", 2, 0), 0);
	assert_int_equal(lbus_publish(c.a, "mon/a/x", "ax", 2, 0), 0);
	assert_int_equal(lbus_publish(c.a, "mon/a", "a0", 2, 0), 0);
	assert_int_equal(lbus_sync(c.a, lbt_ms(5000)), 0);

	assert_non_null(await_ev(mon, &log, LBUS_MON_PUBLISH, "ax"));
	assert_non_null(await_ev(mon, &log, LBUS_MON_PUBLISH, "a0"));
	assert_int_equal(lbus_sync(mon, lbt_ms(5000)), 0);
	assert_int_equal(log.n, 2);
	lbus_close(mon);
	cast_stop(&c);
}

/* ---- CLI ---------------------------------------------------------------------- */

/* The line of text containing needle, copied into out; false if none. */
static bool line_with(const char *text, const char *needle, char *out, size_t size)
{
	const char *m = strstr(text, needle);
	if (!m)
		return false;
	const char *start = m;
	while (start > text && start[-1] != '\n')
		start--;
	const char *end = strchr(m, '\n');
	size_t len = end ? (size_t)(end - start) : strlen(start);
	snprintf(out, size, "%.*s", (int)len, start);
	return true;
}

/* The number after "key": following the first "within": in a JSON line
 * (within NULL: from the start). -1 if absent. */
static long long json_num_after(const char *line, const char *within, const char *key)
{
	const char *p = line;
	if (within) {
		p = strstr(p, within);
		if (!p)
			return -1;
	}
	char quoted[64];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	p = strstr(p, quoted);
	if (!p)
		return -1;
	p += strlen(quoted);
	while (isspace((unsigned char)*p) || *p == ':')
		p++;
	return isdigit((unsigned char)*p) ? strtoll(p, NULL, 10) : -1;
}

/* Does the "receivers" array of a JSON line hold exactly the ids given? */
static bool json_receivers_are(const char *line, size_t n, const uint64_t *ids)
{
	const char *p = strstr(line, "\"receivers\"");
	if (!p || !(p = strchr(p, '[')))
		return false;
	size_t count = 0;
	p++;
	while (*p && *p != ']') {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			return false;
		bool listed = false;
		for (size_t i = 0; i < n; i++)
			listed |= ids[i] == v;
		if (!listed)
			return false;
		count++;
		p = end;
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
	}
	return count == n;
}

/* Make sure a spawned monitor is active: publish on topic until it prints. */
static void monitor_ready(const struct lbt_broker *b, struct lbt_proc *p, const char *topic)
{
	lbus *probe;
	assert_int_equal(lbt_connect(b, &probe), 0);
	int64_t end = lbt_now_ms() + lbt_ms(10000);
	bool seen = false;
	while (!seen && lbt_now_ms() < end) {
		assert_int_equal(lbus_publish(probe, topic, "probe", 5, 0), 0);
		assert_int_equal(lbus_sync(probe, lbt_ms(5000)), 0);
		seen = lbt_proc_read_until(p, "probe", 0, 100) >= 0;
	}
	lbus_close(probe);
	assert_true(seen);
}

static void test_cli_monitor_json(void **state)
{
	struct lbt_broker *b = *state;
	struct cast c;
	cast_start(&c, b);
	struct lbt_proc mon;
	assert_int_equal(lbt_cli_spawn(&mon, b, "monitor", "--json", NULL), 0);
	monitor_ready(b, &mon, "mon/probe");

	cast_play(&c);
	uint64_t a = lbus_client_id(c.a), s = lbus_client_id(c.s), s2 = lbus_client_id(c.s2);
	uint64_t r = lbus_client_id(c.r.bus);
	assert_true(lbt_proc_read_until(&mon, "\"pong\"", 0, lbt_ms(5000)) >= 0);
	assert_true(lbt_proc_read_until(&mon, "\n", mon.out_len - 1, lbt_ms(5000)) >= 0);

	char line[1024];
	assert_true(line_with(mon.out, "\"p1\"", line, sizeof(line)));
	assert_non_null(strstr(line, "\"mon/t\""));
	assert_int_equal(json_num_after(line, "\"sender\"", "id"), (long long)a);
	assert_int_equal(json_num_after(line, "\"sender\"", "pid"), (long long)getpid());
	assert_true(json_receivers_are(line, 2, (uint64_t[]){s, s2}));

	assert_true(line_with(mon.out, "\"s1\"", line, sizeof(line)));
	assert_non_null(strstr(line, "\"mon.s\""));
	assert_int_equal(json_num_after(line, "\"sender\"", "id"), (long long)a);
	assert_true(json_receivers_are(line, 1, &s));

	assert_true(line_with(mon.out, "\"ping\"", line, sizeof(line)));
	assert_non_null(strstr(line, "\"mon.r\""));
	assert_int_equal(json_num_after(line, "\"sender\"", "id"), (long long)a);
	assert_true(json_receivers_are(line, 1, &r));

	assert_true(line_with(mon.out, "\"pong\"", line, sizeof(line)));
	assert_int_equal(json_num_after(line, "\"sender\"", "id"), (long long)r);
	assert_true(json_receivers_are(line, 1, &a));

	lbt_proc_signal(&mon, SIGTERM);
	lbt_proc_wait(&mon, lbt_ms(5000));
	lbt_proc_free(&mon);
	cast_stop(&c);
}

/* The text lines of errors name their target: the call nobody answered and
 * the sends to names nobody owns (from the library and from `lbus send`). */
static void test_cli_monitor_errors_name_target(void **state)
{
	struct lbt_broker *b = *state;
	struct cast c;
	cast_start(&c, b);
	struct lbt_proc mon, send;
	assert_int_equal(lbt_cli_spawn(&mon, b, "monitor", NULL), 0);
	monitor_ready(b, &mon, "mon/probe");

	cast_play(&c);
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &send, "send", "mon.cli.nobody", "z", NULL),
			 0);
	assert_int_equal(send.exit_code, 1);
	lbt_proc_free(&send);
	assert_true(lbt_proc_read_until(&mon, "error mon.cli.nobody ", 0, lbt_ms(5000)) >= 0);
	assert_true(lbt_proc_read_until(&mon, "\n", mon.out_len - 1, lbt_ms(5000)) >= 0);

	char want[256], line[1024];
	unsigned long long a = (unsigned long long)lbus_client_id(c.a);
	snprintf(want, sizeof(want), "error mon.nobody #0 from 0 to %llu: %s\n", a, lbus_strerror(-ESRCH));
	assert_non_null(strstr(mon.out, want));
	snprintf(want, sizeof(want), "error mon.nobody #0 from 0 to %llu: %s\n", a, lbus_strerror(-ENXIO));
	assert_non_null(strstr(mon.out, want));
	assert_true(line_with(mon.out, "error mon.cli.nobody ", line, sizeof(line)));
	assert_non_null(strstr(line, lbus_strerror(-ENXIO)));

	lbt_proc_signal(&mon, SIGTERM);
	lbt_proc_wait(&mon, lbt_ms(5000));
	lbt_proc_free(&mon);
	cast_stop(&c);
}

static void test_cli_monitor_pattern(void **state)
{
	struct lbt_broker *b = *state;
	struct cast c;
	cast_start(&c, b);
	struct lbt_proc mon;
	assert_int_equal(lbt_cli_spawn(&mon, b, "monitor", "mon/a/#", NULL), 0);
	monitor_ready(b, &mon, "mon/a/probe");

	assert_int_equal(lbus_publish(c.a, "mon/b/x", "bx-payload", 10, 0), 0);
	assert_int_equal(lbus_send(c.a, "mon.s", "sx-payload", 10, 0), 0);
	assert_int_equal(lbus_publish(c.a, "mon/a/x", "ax-payload", 10, 0), 0);
	assert_int_equal(lbus_sync(c.a, lbt_ms(5000)), 0);
	assert_true(lbt_proc_read_until(&mon, "ax-payload", 0, lbt_ms(5000)) >= 0);
	assert_null(strstr(mon.out, "bx-payload"));
	assert_null(strstr(mon.out, "sx-payload"));

	lbt_proc_signal(&mon, SIGTERM);
	lbt_proc_wait(&mon, lbt_ms(5000));
	lbt_proc_free(&mon);
	cast_stop(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_monitor_sees_all_traffic, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_monitor_pattern_filters, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_monitor_json, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_monitor_errors_name_target, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_monitor_pattern, lbt_setup, lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
