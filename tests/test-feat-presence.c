/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of presence (issue 3): the broker's events on
 * $lbus/client/connected, $lbus/client/disconnected, $lbus/name/taken and
 * $lbus/name/released, decoded with lbus_presence_decode() and shown by the
 * CLI, and `lbus wait NAME`.
 *
 * Asserted, as a user would see it:
 *  - a library connection and a child `lbus listen` process each produce
 *    connected / taken / released / disconnected events carrying the right
 *    client id, name, pid, uid and command, connected before taken; the
 *    disconnect event lists the names held when the client left; patterns
 *    that start with a wildcard ('#', '+/client/#') never see them;
 *  - `lbus sub '$lbus/#' -v` prints those events decoded (the child's pid in
 *    decimal and its name appear in the text); without -v each line still
 *    says which event it is ("connected id=...", "name taken name=...",
 *    "name released name=...", "disconnected id=...");
 *  - `lbus wait NAME` returns 0 at once when NAME is already owned, returns 0
 *    as soon as NAME is taken while it waits (and not before), and returns 4
 *    after -t SECS when nobody takes it.
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
#include <unistd.h>

#include "harness.h"

#define MAX_EVENTS 64

/* ---- collecting presence events --------------------------------------------- */

struct event {
	char topic[64];
	uint64_t id;
	char name0[64];	 /* names[0] */
	char names[256]; /* all names, each followed by ',' */
	pid_t pid;
	uid_t uid;
	char command[32];
	uint64_t sender_id;
	int decode_err;
};

struct watcher {
	lbus *bus;
	struct event ev[MAX_EVENTS];
	int n;
};

static void on_presence(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct watcher *w = userdata;
	if (w->n >= MAX_EVENTS)
		return;
	struct event *e = &w->ev[w->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->topic, sizeof(e->topic), "%s", msg->topic);
	e->sender_id = msg->sender.id;
	struct lbus_presence *p = NULL;
	e->decode_err = lbus_presence_decode(msg, &p);
	if (e->decode_err < 0)
		return;
	e->id = p->id;
	e->pid = p->pid;
	e->uid = p->uid;
	snprintf(e->command, sizeof(e->command), "%s", p->command ? p->command : "");
	if (p->n_names > 0)
		snprintf(e->name0, sizeof(e->name0), "%s", p->names[0]);
	for (size_t i = 0; i < p->n_names; i++) {
		size_t used = strlen(e->names);
		snprintf(e->names + used, sizeof(e->names) - used, "%s,", p->names[i]);
	}
	lbus_presence_free(p);
}

static void count_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	(*(int *)userdata)++;
}

static void watcher_start(struct watcher *w, const struct lbt_broker *b)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(lbt_connect(b, &w->bus), 0);
	assert_true(lbus_subscribe(w->bus, "$lbus/#", on_presence, w, NULL, NULL) == 0);
}

/* Index of the first event on topic about client id (and name, if not NULL),
 * or -1. */
static int find_event(const struct watcher *w, const char *topic, uint64_t id, const char *name)
{
	for (int i = 0; i < w->n; i++)
		if (strcmp(w->ev[i].topic, topic) == 0 && w->ev[i].id == id &&
		    (!name || strcmp(w->ev[i].name0, name) == 0))
			return i;
	return -1;
}

/* Dispatch the watcher until that event arrives. Returns its index or -1. */
static int await_event(struct watcher *w, const char *topic, uint64_t id, const char *name)
{
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	int i;
	while ((i = find_event(w, topic, id, name)) < 0 && lbt_now_ms() < end)
		if (lbus_run(w->bus, 20) < 0)
			break;
	if (i < 0)
		fprintf(stderr, "no %s event for client %llu (%s) among %d events\n", topic,
			(unsigned long long)id, name ? name : "-", w->n);
	return i;
}

/* Same, for an event about a process instead of a client id. */
static int await_pid_event(struct watcher *w, const char *topic, pid_t pid)
{
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	while (lbt_now_ms() < end) {
		for (int i = 0; i < w->n; i++)
			if (strcmp(w->ev[i].topic, topic) == 0 && w->ev[i].pid == pid)
				return i;
		if (lbus_run(w->bus, 20) < 0)
			break;
	}
	fprintf(stderr, "no %s event for pid %d among %d events\n", topic, (int)pid, w->n);
	return -1;
}

static void assert_event_identity(const struct event *e, uint64_t id, pid_t pid)
{
	assert_int_equal(e->decode_err, 0);
	assert_int_equal(e->sender_id, 0); /* from the broker itself */
	assert_int_equal(e->id, id);
	assert_int_equal(e->pid, pid);
	assert_int_equal(e->uid, getuid());
}

static void self_comm(char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = fopen("/proc/self/comm", "r");
	if (f) {
		if (fgets(buf, (int)size, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

/* ---- library ------------------------------------------------------------------ */

static void test_presence_library_client(void **state)
{
	struct lbt_broker *b = *state;
	struct watcher w;
	watcher_start(&w, b);
	char comm[32];
	self_comm(comm, sizeof(comm));
	/* Patterns starting with a wildcard never see the broker's topics. */
	lbus *wild;
	int wild_got = 0;
	assert_int_equal(lbt_connect(b, &wild), 0);
	assert_true(lbus_subscribe(wild, "#", count_msg, &wild_got, NULL, NULL) == 0);
	assert_true(lbus_subscribe(wild, "+/client/#", count_msg, &wild_got, NULL, NULL) == 0);

	lbus *c;
	assert_int_equal(lbt_connect(b, &c), 0);
	uint64_t id = lbus_client_id(c);
	int i = await_event(&w, LBUS_TOPIC_CLIENT_CONNECTED, id, NULL);
	assert_true(i >= 0);
	assert_event_identity(&w.ev[i], id, getpid());
	assert_string_equal(w.ev[i].command, comm);
	assert_string_equal(w.ev[i].names, "");

	assert_int_equal(lbus_name_take(c, "pres.a"), 0);
	i = await_event(&w, LBUS_TOPIC_NAME_TAKEN, id, "pres.a");
	assert_true(i >= 0);
	assert_event_identity(&w.ev[i], id, getpid());
	assert_string_equal(w.ev[i].names, "pres.a,");

	assert_int_equal(lbus_name_release(c, "pres.a"), 0);
	i = await_event(&w, LBUS_TOPIC_NAME_RELEASED, id, "pres.a");
	assert_true(i >= 0);
	assert_event_identity(&w.ev[i], id, getpid());

	/* Taking a name twice is one event; a refused take is none. */
	assert_int_equal(lbus_name_take(c, "pres.b"), 0);
	assert_int_equal(lbus_name_take(c, "pres.b"), 0);
	assert_int_equal(lbus_name_take(w.bus, "pres.b"), -EADDRINUSE);
	assert_true(await_event(&w, LBUS_TOPIC_NAME_TAKEN, id, "pres.b") >= 0);

	/* Leaving releases the name and says which names it held. */
	lbus_close(c);
	int rel = await_event(&w, LBUS_TOPIC_NAME_RELEASED, id, "pres.b");
	int dis = await_event(&w, LBUS_TOPIC_CLIENT_DISCONNECTED, id, NULL);
	assert_true(rel >= 0 && dis >= 0);
	assert_event_identity(&w.ev[dis], id, getpid());
	assert_non_null(strstr(w.ev[dis].names, "pres.b,"));
	assert_int_equal(lbus_sync(w.bus, lbt_ms(5000)), 0);
	int taken_b = 0;
	for (int k = 0; k < w.n; k++)
		taken_b +=
		    strcmp(w.ev[k].topic, LBUS_TOPIC_NAME_TAKEN) == 0 && strcmp(w.ev[k].name0, "pres.b") == 0;
	assert_int_equal(taken_b, 1);
	assert_int_equal(lbus_sync(wild, lbt_ms(5000)), 0);
	assert_int_equal(wild_got, 0);
	lbus_close(wild);
	lbus_close(w.bus);
}

static void test_presence_child_process(void **state)
{
	struct lbt_broker *b = *state;
	struct watcher w;
	watcher_start(&w, b);

	struct lbt_proc listen;
	assert_int_equal(lbt_cli_spawn(&listen, b, "listen", "pres.cli", NULL), 0);
	int con = await_pid_event(&w, LBUS_TOPIC_CLIENT_CONNECTED, listen.pid);
	assert_true(con >= 0);
	uint64_t id = w.ev[con].id;
	assert_true(id != 0 && id != lbus_client_id(w.bus));
	assert_event_identity(&w.ev[con], id, listen.pid);
	assert_string_equal(w.ev[con].command, "lbus");
	int tak = await_event(&w, LBUS_TOPIC_NAME_TAKEN, id, "pres.cli");
	assert_true(tak > con);
	assert_event_identity(&w.ev[tak], id, listen.pid);

	pid_t pid = listen.pid;
	lbt_proc_signal(&listen, SIGTERM);
	lbt_proc_wait(&listen, lbt_ms(5000));
	int rel = await_event(&w, LBUS_TOPIC_NAME_RELEASED, id, "pres.cli");
	int dis = await_event(&w, LBUS_TOPIC_CLIENT_DISCONNECTED, id, NULL);
	assert_true(rel > tak && dis > tak);
	assert_event_identity(&w.ev[rel], id, pid);
	assert_event_identity(&w.ev[dis], id, pid);
	lbt_proc_free(&listen);
	lbus_close(w.bus);
}

/* A spawned `lbus sub '$lbus/#'` is ready once it prints the connection of
 * a probe client; returns the stdout offset after what it printed so far. */
static size_t presence_sub_ready(const struct lbt_broker *b, struct lbt_proc *sub)
{
	int64_t end = lbt_now_ms() + lbt_ms(10000);
	while (sub->out_len == 0 && lbt_now_ms() < end) {
		lbus *probe;
		assert_int_equal(lbt_connect(b, &probe), 0);
		lbus_close(probe);
		lbt_proc_read_bytes(sub, 1, 100);
	}
	assert_true(sub->out_len > 0);
	return sub->out_len;
}

/* ---- CLI --------------------------------------------------------------------- */

static void test_cli_sub_shows_presence_decoded(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc sub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "-v", "$lbus/#", NULL), 0);
	size_t from = presence_sub_ready(b, &sub);

	struct lbt_proc listen;
	assert_int_equal(lbt_cli_spawn(&listen, b, "listen", "pres.shown", NULL), 0);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)listen.pid);
	long at = lbt_proc_read_until(&sub, "$lbus/name/taken", from, lbt_ms(5000));
	assert_true(at >= 0);
	/* The line of the taken event names the name and the pid, in text. */
	assert_true(lbt_proc_read_until(&sub, "\n", (size_t)at, lbt_ms(5000)) >= 0);
	const char *line = sub.out + at;
	const char *nl = strchr(line, '\n');
	char text[512];
	snprintf(text, sizeof(text), "%.*s", (int)(nl - line), line);
	assert_non_null(strstr(text, "pres.shown"));
	assert_non_null(strstr(text, pid));
	assert_non_null(strstr(sub.out + from, "$lbus/client/connected"));

	lbt_proc_signal(&listen, SIGTERM);
	lbt_proc_wait(&listen, lbt_ms(5000));
	assert_true(lbt_proc_read_until(&sub, "$lbus/name/released", from, lbt_ms(5000)) >= 0);
	assert_true(lbt_proc_read_until(&sub, "$lbus/client/disconnected", from, lbt_ms(5000)) >= 0);
	lbt_proc_free(&listen);
	lbt_proc_free(&sub);
}

/* The text of the first line of p's stdout, from offset from, that starts
 * with prefix (copied into buf), or NULL. */
static const char *find_line(const struct lbt_proc *p, size_t from, const char *prefix, char *buf, size_t cap)
{
	const char *s = p->out + from;
	while (*s) {
		const char *nl = strchr(s, '\n');
		if (!nl)
			return NULL;
		if (strncmp(s, prefix, strlen(prefix)) == 0) {
			snprintf(buf, cap, "%.*s", (int)(nl - s), s);
			return buf;
		}
		s = nl + 1;
	}
	return NULL;
}

/* Without -v the four events still tell apart: each line says what
 * happened, then the decoded fields. */
static void test_cli_sub_tells_presence_events_apart(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc sub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "$lbus/#", NULL), 0);
	size_t from = presence_sub_ready(b, &sub);

	lbus *c;
	assert_int_equal(lbt_connect(b, &c), 0);
	unsigned long long id = (unsigned long long)lbus_client_id(c);
	assert_int_equal(lbus_name_take(c, "pres.apart"), 0);
	assert_int_equal(lbus_name_release(c, "pres.apart"), 0);
	lbus_close(c);
	/* Each event is found by its own prefix, which names this client (the
	 * probes' events may come in between). */
	char want[4][96], buf[512];
	snprintf(want[0], sizeof(want[0]), "connected id=%llu ", id);
	snprintf(want[1], sizeof(want[1]), "name taken name=pres.apart id=%llu ", id);
	snprintf(want[2], sizeof(want[2]), "name released name=pres.apart id=%llu ", id);
	snprintf(want[3], sizeof(want[3]), "disconnected id=%llu ", id);
	long at = lbt_proc_read_until(&sub, want[3], from, lbt_ms(5000));
	assert_true(at >= 0);
	assert_true(lbt_proc_read_until(&sub, "\n", (size_t)at, lbt_ms(5000)) >= 0);
	for (int i = 0; i < 4; i++)
		assert_non_null(find_line(&sub, from, want[i], buf, sizeof(buf)));
	lbt_proc_free(&sub);
}

static void test_cli_wait(void **state)
{
	struct lbt_broker *b = *state;
	lbus *owner;
	assert_int_equal(lbt_connect(b, &owner), 0);

	/* Owned already: returns at once. */
	assert_int_equal(lbus_name_take(owner, "wait.before"), 0);
	struct lbt_proc p;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "wait", "wait.before", "-t", "5", NULL),
			 0);
	assert_int_equal(p.exit_code, 0);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
	lbt_proc_free(&p);

	/* Taken while it waits: returns as soon as that happens, not before. */
	struct watcher w;
	watcher_start(&w, b);
	struct lbt_proc waiter;
	assert_int_equal(lbt_cli_spawn(&waiter, b, "wait", "wait.later", "-t", "20", NULL), 0);
	assert_true(await_pid_event(&w, LBUS_TOPIC_CLIENT_CONNECTED, waiter.pid) >= 0);
	lbus_run(w.bus, 200); /* give it time to start listening; correctness does not depend on it */
	assert_false(lbt_proc_exited(&waiter));
	t0 = lbt_now_ms();
	assert_int_equal(lbus_name_take(owner, "wait.later"), 0);
	assert_int_equal(lbt_proc_wait(&waiter, lbt_ms(5000)), 0);
	assert_int_equal(waiter.exit_code, 0);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
	lbt_proc_free(&waiter);

	/* Nobody takes it: status 4 after the time limit. */
	t0 = lbt_now_ms();
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "wait", "wait.never", "-t", "1", NULL),
			 0);
	assert_int_equal(p.exit_code, 4);
	int64_t took = lbt_now_ms() - t0;
	assert_true(took >= 900 && took < lbt_ms(5000));
	lbt_proc_free(&p);

	lbus_close(w.bus);
	lbus_close(owner);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_presence_library_client, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_presence_child_process, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_shows_presence_decoded, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_tells_presence_events_apart, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_wait, lbt_setup, lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
