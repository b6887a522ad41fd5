/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of introspection (issue 3): lbus_client_list_get(),
 * lbus_stats_get(), `lbus list [--json]` and `lbus stats [--json]` against a
 * real lbusd on a private socket.
 *
 * The test builds a known situation — client A owns "intro.a" and holds two
 * subscriptions (one plain with drop, one in group "g1" with block), client
 * B subscribes to "intro/#", A publishes 5 messages and B 2 — and asserts
 * that what the broker reports matches it exactly: ids, names, pid, uid,
 * command, subscriptions (pattern, group, policy), per-client and broker
 * message counters, connected clients, queued bytes once drained. The JSON
 * output of the CLI is parsed (a small parser below) and checked the same
 * way, so a wrong number or a missing field fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* The captured output of a child, "" when it printed nothing. */
static const char *txt(const char *s)
{
	return s ? s : "";
}

/* ---- a minimal JSON reader ---------------------------------------------------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	double num;
	bool b;
	char *s;	   /* J_STR */
	struct jv **items; /* J_ARR, J_OBJ values */
	char **keys;	   /* J_OBJ */
	size_t n;
};

static struct jv *jparse_value(const char **p, int depth);

static void jskip(const char **p)
{
	while (isspace((unsigned char)**p))
		(*p)++;
}

static void jfree(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jfree(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

/* A string literal; escapes other than \uXXXX are decoded, \u as '?'. */
static char *jparse_string(const char **p)
{
	if (**p != '"')
		return NULL;
	(*p)++;
	size_t cap = 16, len = 0;
	char *out = malloc(cap);
	while (**p && **p != '"') {
		char c = *(*p)++;
		if (c == '\\') {
			c = *(*p)++;
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
			else if (c == 'u') {
				for (int i = 0; i < 4 && **p; i++)
					(*p)++;
				c = '?';
			} else if (c == 'r')
				c = '\r';
			else if (c == 'b' || c == 'f')
				c = ' ';
		}
		if (len + 2 > cap)
			out = realloc(out, cap *= 2);
		out[len++] = c;
	}
	if (**p != '"') {
		free(out);
		return NULL;
	}
	(*p)++;
	out[len] = '\0';
	return out;
}

static void jappend(struct jv *v, char *key, struct jv *item)
{
	v->items = realloc(v->items, (v->n + 1) * sizeof(*v->items));
	if (v->t == J_OBJ)
		v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
	v->items[v->n] = item;
	if (v->t == J_OBJ)
		v->keys[v->n] = key;
	v->n++;
}

/* Array or object body after the opening bracket. */
static struct jv *jparse_container(const char **p, int depth, enum jtype t)
{
	struct jv *v = calloc(1, sizeof(*v));
	v->t = t;
	char close = t == J_OBJ ? '}' : ']';
	jskip(p);
	if (**p == close) {
		(*p)++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		jskip(p);
		if (t == J_OBJ) {
			key = jparse_string(p);
			jskip(p);
			if (!key || *(*p)++ != ':') {
				free(key);
				jfree(v);
				return NULL;
			}
		}
		struct jv *item = jparse_value(p, depth + 1);
		if (!item) {
			free(key);
			jfree(v);
			return NULL;
		}
		jappend(v, key, item);
		jskip(p);
		char c = *(*p)++;
		if (c == close)
			return v;
		if (c != ',') {
			jfree(v);
			return NULL;
		}
	}
}

static struct jv *jparse_value(const char **p, int depth)
{
	if (depth > 32)
		return NULL;
	jskip(p);
	if (**p == '{' || **p == '[') {
		enum jtype t = **p == '{' ? J_OBJ : J_ARR;
		(*p)++;
		return jparse_container(p, depth, t);
	}
	struct jv *v = calloc(1, sizeof(*v));
	if (**p == '"') {
		v->t = J_STR;
		v->s = jparse_string(p);
		if (!v->s) {
			free(v);
			return NULL;
		}
	} else if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
		v->t = J_BOOL;
		v->b = **p == 't';
		*p += v->b ? 4 : 5;
	} else if (strncmp(*p, "null", 4) == 0) {
		v->t = J_NULL;
		*p += 4;
	} else {
		char *end;
		v->t = J_NUM;
		v->num = strtod(*p, &end);
		if (end == *p) {
			free(v);
			return NULL;
		}
		*p = end;
	}
	return v;
}

/* Parse one JSON document (trailing whitespace allowed). NULL if invalid. */
static struct jv *jparse(const char *text)
{
	const char *p = text;
	struct jv *v = jparse_value(&p, 0);
	jskip(&p);
	if (v && *p) {
		jfree(v);
		return NULL;
	}
	return v;
}

static struct jv *jget(const struct jv *obj, const char *key)
{
	if (!obj || obj->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

/* A counter of a client or broker object: at top level or under "counters".
 * -1 if absent or not a number. */
static double jcounter(const struct jv *obj, const char *key)
{
	const struct jv *v = jget(obj, key);
	if (!v)
		v = jget(jget(obj, "counters"), key);
	return v && v->t == J_NUM ? v->num : -1;
}

/* The element of array arr whose key is the number want, or NULL. */
static struct jv *jfind_by_num(const struct jv *arr, const char *key, double want)
{
	if (!arr || arr->t != J_ARR)
		return NULL;
	for (size_t i = 0; i < arr->n; i++) {
		const struct jv *v = jget(arr->items[i], key);
		if (v && v->t == J_NUM && v->num == want)
			return arr->items[i];
	}
	return NULL;
}

static const char *jstr(const struct jv *obj, const char *key)
{
	const struct jv *v = jget(obj, key);
	return v && v->t == J_STR ? v->s : NULL;
}

/* ---- the situation under test ------------------------------------------------ */

struct scene {
	lbus *a, *b, *query;
	uint64_t a_id, b_id;
	int delivered_a, delivered_b;
};

static void count_delivery(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	(*(int *)userdata)++;
}

static void publish_n(lbus *bus, const char *topic, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(lbus_publish(bus, topic, "12345", 5, 0), 0);
	assert_int_equal(lbus_sync(bus, lbt_ms(5000)), 0);
}

/* A: name intro.a, subs intro/x (drop) and intro/+/y (group g1, block), 5
 * publishes on intro/x. B: sub intro/# and 2 publishes on intro/a/y. All
 * deliveries dispatched. */
static void scene_build(struct scene *s, const struct lbt_broker *b)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(lbt_connect(b, &s->a), 0);
	assert_int_equal(lbt_connect(b, &s->b), 0);
	assert_int_equal(lbt_connect(b, &s->query), 0);
	s->a_id = lbus_client_id(s->a);
	s->b_id = lbus_client_id(s->b);
	assert_int_equal(lbus_name_take(s->a, "intro.a"), 0);
	assert_true(lbus_subscribe(s->a, "intro/x", count_delivery, &s->delivered_a, NULL, NULL) == 0);
	struct lbus_sub_opts grouped = {
	    .size = sizeof(struct lbus_sub_opts), .group = "g1", .policy = LBUS_POLICY_BLOCK};
	assert_true(lbus_subscribe(s->a, "intro/+/y", count_delivery, &s->delivered_a, &grouped, NULL) == 0);
	assert_true(lbus_subscribe(s->b, "intro/#", count_delivery, &s->delivered_b, NULL, NULL) == 0);

	publish_n(s->a, "intro/x", 5);
	publish_n(s->b, "intro/a/y", 2);
	assert_int_equal(lbus_sync(s->a, lbt_ms(5000)), 0);
	assert_int_equal(lbus_sync(s->b, lbt_ms(5000)), 0);
	/* A: 5 on intro/x + 2 on intro/+/y; B: all 7 on intro/#. */
	assert_int_equal(s->delivered_a, 7);
	assert_int_equal(s->delivered_b, 7);
}

static void scene_free(struct scene *s)
{
	lbus_close(s->a);
	lbus_close(s->b);
	lbus_close(s->query);
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

static const struct lbus_client_info *find_client(const struct lbus_client_list *l, uint64_t id)
{
	for (size_t i = 0; i < l->n_clients; i++)
		if (l->clients[i].id == id)
			return &l->clients[i];
	return NULL;
}

static const struct lbus_sub_info *find_sub(const struct lbus_client_info *c, const char *pattern)
{
	for (size_t i = 0; i < c->n_subs; i++)
		if (strcmp(c->subs[i].pattern, pattern) == 0)
			return &c->subs[i];
	return NULL;
}

static void test_list_clients_library(void **state)
{
	struct scene s;
	scene_build(&s, *state);
	char comm[32];
	self_comm(comm, sizeof(comm));
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;

	struct lbus_client_list *l = NULL;
	assert_int_equal(lbus_client_list_get(s.query, lbt_ms(5000), &l), 0);
	assert_int_equal(l->n_clients, 3);
	assert_non_null(find_client(l, lbus_client_id(s.query)));

	const struct lbus_client_info *a = find_client(l, s.a_id);
	assert_non_null(a);
	assert_int_equal(a->n_names, 1);
	assert_string_equal(a->names[0], "intro.a");
	assert_int_equal(a->pid, getpid());
	assert_int_equal(a->uid, getuid());
	assert_int_equal(a->gid, getgid());
	assert_string_equal(a->command, comm);
	assert_false(a->monitor);
	assert_true(a->connected_at_ms <= now_ms + 1000 && a->connected_at_ms + 60000 >= now_ms);
	assert_int_equal(a->n_subs, 2);
	const struct lbus_sub_info *x = find_sub(a, "intro/x");
	const struct lbus_sub_info *y = find_sub(a, "intro/+/y");
	assert_non_null(x);
	assert_non_null(y);
	assert_string_equal(x->group, "");
	assert_int_equal(x->policy, LBUS_POLICY_DROP);
	assert_string_equal(y->group, "g1");
	assert_int_equal(y->policy, LBUS_POLICY_BLOCK);
	assert_true(x->sub_id != y->sub_id);
	assert_int_equal(a->counters.msgs_in, 5);
	assert_int_equal(a->counters.msgs_out, 7);
	assert_int_equal(a->queued_bytes, 0);
	assert_true(a->queued_bytes_max > 0); /* its welcome and deliveries waited there */
	assert_true(a->queued_bytes_max < 64 * 1024);
	assert_int_equal(a->blocked_on, 0);

	const struct lbus_client_info *b = find_client(l, s.b_id);
	assert_non_null(b);
	assert_int_equal(b->n_names, 0);
	assert_int_equal(b->n_subs, 1);
	assert_string_equal(b->subs[0].pattern, "intro/#");
	assert_int_equal(b->counters.msgs_in, 2);
	assert_int_equal(b->counters.msgs_out, 7);
	assert_int_equal(b->counters.dropped, 0);
	assert_int_equal(b->queued_bytes, 0);
	lbus_client_list_free(l);

	/* A client that left is no longer listed. */
	lbus_close(s.b);
	s.b = NULL;
	assert_int_equal(lbus_sync(s.query, lbt_ms(5000)), 0);
	int64_t end = lbt_now_ms() + lbt_ms(5000);
	bool gone = false;
	size_t n = 0;
	while (!gone && lbt_now_ms() < end) {
		assert_int_equal(lbus_client_list_get(s.query, lbt_ms(5000), &l), 0);
		n = l->n_clients;
		gone = find_client(l, s.b_id) == NULL;
		lbus_client_list_free(l);
	}
	assert_true(gone);
	assert_int_equal(n, 2);
	scene_free(&s);
}

static void test_stats_library(void **state)
{
	struct scene s;
	scene_build(&s, *state);
	struct lbus_stats *st = NULL;
	assert_int_equal(lbus_stats_get(s.query, lbt_ms(5000), &st), 0);

	assert_int_equal(st->broker.clients, 3);
	assert_true(st->broker.clients_total >= 3);
	assert_int_equal(st->broker.counters.msgs_in, 7);
	assert_int_equal(st->broker.counters.msgs_out, 14);
	assert_true(st->broker.counters.bytes_in >= 7 * 5);
	assert_true(st->broker.counters.bytes_out >= 14 * 5);
	assert_int_equal(st->broker.counters.dropped, 0);
	assert_int_equal(st->broker.subscriptions, 3);
	assert_int_equal(st->broker.names, 1);
	assert_int_equal(st->broker.calls_pending, 0);
	assert_int_equal(st->broker.retained, 0);

	assert_int_equal(st->n_clients, 3);
	const struct lbus_client_stats *a = NULL, *b = NULL;
	for (size_t i = 0; i < st->n_clients; i++) {
		if (st->clients[i].id == s.a_id)
			a = &st->clients[i];
		if (st->clients[i].id == s.b_id)
			b = &st->clients[i];
	}
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->counters.msgs_in, 5);
	assert_int_equal(a->counters.msgs_out, 7);
	assert_int_equal(b->counters.msgs_in, 2);
	assert_int_equal(b->counters.msgs_out, 7);
	assert_true(a->queued_bytes_max > 0);
	assert_int_equal(a->blocked_on, 0);
	assert_int_equal(b->blocked_on, 0);

	/* The broker's own resources: its resident memory as /proc tells it,
	 * and some CPU time, which only grows. */
	long rss_kib = lbt_broker_rss_kib(*state);
	assert_true(rss_kib > 0);
	assert_true(st->broker.rss_bytes >= (uint64_t)rss_kib * 1024 / 2);
	assert_true(st->broker.rss_bytes <= (uint64_t)rss_kib * 1024 * 2);
	uint64_t cpu = st->broker.cpu_user_us + st->broker.cpu_system_us;
	assert_true(cpu > 0);
	assert_true(cpu <= st->broker.uptime_ms * 1000 * 64);
	lbus_stats_free(st);

	/* A retained message and an uptime that moves. */
	assert_int_equal(lbus_publish(s.a, "intro/kept", "k", 1, LBUS_RETAIN), 0);
	assert_int_equal(lbus_sync(s.a, lbt_ms(5000)), 0);
	struct lbus_stats *st2 = NULL;
	assert_int_equal(lbus_stats_get(s.query, lbt_ms(5000), &st2), 0);
	assert_int_equal(st2->broker.retained, 1);
	assert_int_equal(st2->broker.counters.msgs_in, 8);
	assert_true(st2->broker.cpu_user_us + st2->broker.cpu_system_us >= cpu);
	lbus_stats_free(st2);
	scene_free(&s);
}

/* ---- CLI ---------------------------------------------------------------------- */

static struct jv *run_json(const struct lbt_broker *b, const char *cmd)
{
	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, cmd, "--json", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	struct jv *doc = jparse(txt(p.out));
	if (!doc)
		fprintf(stderr, "lbus %s --json printed invalid JSON:\n%s\n", cmd, txt(p.out));
	lbt_proc_free(&p);
	assert_non_null(doc);
	return doc;
}

/* The subscription with pattern in a client's "subscriptions" array. */
static const struct jv *json_sub(const struct jv *client, const char *pattern)
{
	const struct jv *subs = jget(client, "subscriptions");
	assert_non_null(subs);
	assert_int_equal(subs->t, J_ARR);
	for (size_t i = 0; i < subs->n; i++) {
		const char *p = jstr(subs->items[i], "pattern");
		if (p && strcmp(p, pattern) == 0)
			return subs->items[i];
	}
	return NULL;
}

static bool json_policy_is(const struct jv *sub, const char *name, int value)
{
	const struct jv *v = jget(sub, "policy");
	if (!v)
		return value == LBUS_POLICY_DROP;
	return (v->t == J_STR && strcmp(v->s, name) == 0) || (v->t == J_NUM && v->num == value);
}

static bool json_group_is(const struct jv *sub, const char *group)
{
	const struct jv *v = jget(sub, "group");
	if (!v || v->t == J_NULL)
		return group[0] == '\0';
	return v->t == J_STR && strcmp(v->s, group) == 0;
}

static void test_cli_list_json(void **state)
{
	struct lbt_broker *b = *state;
	struct scene s;
	scene_build(&s, b);
	char comm[32];
	self_comm(comm, sizeof(comm));

	struct jv *doc = run_json(b, "list");
	const struct jv *clients = jget(doc, "clients");
	assert_non_null(clients);
	assert_int_equal(clients->t, J_ARR);
	/* A, B, the query connection and the lbus list process itself. */
	assert_int_equal(clients->n, 4);
	size_t cli_entries = 0;
	for (size_t i = 0; i < clients->n; i++) {
		const char *cmd = jstr(clients->items[i], "command");
		cli_entries += cmd && strcmp(cmd, "lbus") == 0;
	}
	assert_int_equal(cli_entries, 1);

	const struct jv *a = jfind_by_num(clients, "id", (double)s.a_id);
	assert_non_null(a);
	const struct jv *names = jget(a, "names");
	assert_non_null(names);
	assert_int_equal(names->t, J_ARR);
	assert_int_equal(names->n, 1);
	assert_int_equal(names->items[0]->t, J_STR);
	assert_string_equal(names->items[0]->s, "intro.a");
	assert_true(jcounter(a, "pid") == getpid());
	assert_true(jcounter(a, "uid") == getuid());
	assert_string_equal(jstr(a, "command"), comm);
	assert_true(jcounter(a, "queued_bytes") == 0);
	assert_true(jcounter(a, "queued_bytes_max") > 0);
	assert_true(jcounter(a, "blocked_on") == 0);
	const struct jv *x = json_sub(a, "intro/x");
	const struct jv *y = json_sub(a, "intro/+/y");
	assert_non_null(x);
	assert_non_null(y);
	assert_true(json_group_is(x, ""));
	assert_true(json_policy_is(x, "drop", LBUS_POLICY_DROP));
	assert_true(json_group_is(y, "g1"));
	assert_true(json_policy_is(y, "block", LBUS_POLICY_BLOCK));

	const struct jv *bj = jfind_by_num(clients, "id", (double)s.b_id);
	assert_non_null(bj);
	assert_non_null(json_sub(bj, "intro/#"));
	jfree(doc);

	/* The plain listing shows the same things as text. */
	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "list", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_non_null(strstr(txt(p.out), "intro.a"));
	assert_non_null(strstr(txt(p.out), "intro/+/y"));
	assert_non_null(strstr(txt(p.out), "g1"));
	assert_non_null(strstr(txt(p.out), "intro/#"));
	lbt_proc_free(&p);
	scene_free(&s);
}

static void test_cli_stats_json(void **state)
{
	struct lbt_broker *b = *state;
	struct scene s;
	scene_build(&s, b);

	struct jv *doc = run_json(b, "stats");
	const struct jv *broker = jget(doc, "broker");
	assert_non_null(broker);
	assert_true(jcounter(broker, "msgs_in") == 7);
	assert_true(jcounter(broker, "msgs_out") == 14);
	assert_true(jcounter(broker, "dropped") == 0);
	assert_true(jcounter(broker, "clients") == 4);
	assert_true(jcounter(broker, "uptime_ms") >= 0);
	assert_true(jcounter(broker, "rss_bytes") > 0);
	assert_true(jcounter(broker, "cpu_user_us") >= 0);
	assert_true(jcounter(broker, "cpu_system_us") >= 0);
	assert_true(jcounter(broker, "cpu_user_us") + jcounter(broker, "cpu_system_us") > 0);
	const struct jv *clients = jget(doc, "clients");
	assert_non_null(clients);
	const struct jv *a = jfind_by_num(clients, "id", (double)s.a_id);
	const struct jv *bj = jfind_by_num(clients, "id", (double)s.b_id);
	assert_non_null(a);
	assert_non_null(bj);
	assert_true(jcounter(a, "msgs_in") == 5);
	assert_true(jcounter(a, "msgs_out") == 7);
	assert_true(jcounter(bj, "msgs_in") == 2);
	assert_true(jcounter(bj, "msgs_out") == 7);
	assert_true(jcounter(a, "queued_bytes_max") > 0);
	assert_true(jcounter(a, "blocked_on") == 0);
	jfree(doc);

	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "stats", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_true(p.out_len > 0);
	lbt_proc_free(&p);
	scene_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_list_clients_library, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_stats_library, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_list_json, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_stats_json, lbt_setup, lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
