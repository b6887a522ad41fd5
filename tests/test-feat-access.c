/* SPDX-License-Identifier: MIT */
/*
 * Access rules with real processes of other uids (lbusd.conf(5), ACCESS
 * RULES). The broker runs as root (the tests' uid); children switch to
 * made-up ids (4242, group 4243 as a supplementary group) with
 * setgroups/setgid/setuid and use liblbus or the lbus CLI. Needs root:
 * skipped with a message otherwise. Each child returns 0, or the number of
 * the check that failed (printed to stderr).
 *
 * Covered: a subtree allowed to publish and refused elsewhere (CLI exit 1
 * with the reason); a deny inside an allow for subscribing, and deliveries
 * of topics the child may not receive filtered out; own patterns; a group
 * rule through a supplementary group; a reload that tightens the rules
 * under a live subscription (dropped, with a notice); call to names,
 * prefixes and topic patterns; monitor (the verb, and only the traffic the
 * monitor could receive itself); introspect (list, stats, presence); the
 * socket made reachable when the rules admit others, and the warning under
 * socket activation. The default deny of
 * another uid with an open socket mode is test-badinput's
 * test_other_uid_denied.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "lbus.h"

#define ALICE 4242
#define ALICE_GROUP 4243 /* a supplementary group of alice */
#define BOB 4244

#define CHECK(n, cond)                                                                                       \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "child check %d failed: %s\n", n, #cond);                            \
			return n;                                                                            \
		}                                                                                            \
	} while (0)

static bool need_root(void)
{
	if (geteuid() == 0)
		return lbt_tree_open_to_others();
	fprintf(stderr, "skipped: needs root to run clients as other uids\n");
	return false;
}

/* A broker (as root) reading these rules, its directory and socket open to
 * other uids. */
static void start_with_rules(struct lbt_broker *b, const char *rules)
{
	char conf[PATH_MAX], text[2048];

	snprintf(text, sizeof(text), "socket_mode = 0666\n%s", rules);
	assert_int_equal(lbt_broker_make_dir(b), 0);
	assert_int_equal(chmod(b->dir, 0755), 0);
	assert_int_equal(lbt_write_file(b->dir, "lbusd.conf", text, strlen(text), conf), 0);
	const char *args[] = {"-c", conf, NULL};
	struct lbt_broker_opts o = {.extra_args = args, .reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(b, &o), 0);
	assert_int_equal(chmod(b->dir, 0755), 0);
}

/* Run fn(b, arg) in a child of uid/gid with the supplementary groups;
 * returns its exit status. */
static pid_t spawn_as(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		      int (*fn)(const struct lbt_broker *, void *), const struct lbt_broker *b, void *arg)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(ngroups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(100);
		_exit(fn(b, arg));
	}
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static int run_as(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		  int (*fn)(const struct lbt_broker *, void *), const struct lbt_broker *b, void *arg)
{
	return wait_status(spawn_as(uid, gid, groups, ngroups, fn, b, arg));
}

/* `lbus pub TOPIC x` as the child: its exit status, stderr checked for
 * `want` (NULL: nothing). */
static int cli_pub(const struct lbt_broker *b, const char *topic, const char *want)
{
	struct lbt_proc p;
	int code;

	if (lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "pub", topic, "x", NULL) < 0)
		return -1;
	code = p.exit_code;
	if (want && (!p.err || !strstr(p.err, want))) {
		fprintf(stderr, "lbus pub %s: stderr '%s', want '%s'\n", topic, p.err ? p.err : "", want);
		code = -2;
	}
	lbt_proc_free(&p);
	return code;
}

/* ---- publish on a subtree ---------------------------------------------- */

static void on_error_keep(lbus *bus, int err, const char *what, void *ud)
{
	(void)bus;
	if (err == -EACCES && what)
		snprintf(ud, 256, "%s", what);
}

static void on_nothing(lbus *bus, const struct lbus_msg *m, void *ud)
{
	(void)bus;
	(void)m;
	(void)ud;
}

static int publish_child(const struct lbt_broker *b, void *arg)
{
	(void)arg;
	CHECK(1, cli_pub(b, "shared/temp", NULL) == 0);
	CHECK(2, cli_pub(b, "private/temp", "denied: publish 'private/temp' (no rule allows it)") == 1);
	CHECK(3, cli_pub(b, "shared/secret/x",
			 "denied: publish 'shared/secret/x' by the rule on 'shared/secret/#'") == 1);
	/* The refusal reaches the error handler; the connection stays usable. */
	lbus *bus = NULL;
	char what[256] = "";
	CHECK(4, lbus_connect(&bus, b->sock) == 0);
	lbus_on_error(bus, on_error_keep, what);
	CHECK(5, lbus_publish(bus, "private/x", "x", 1, 0) == 0 && lbus_sync(bus, lbt_ms(5000)) == 0);
	CHECK(6, strstr(what, "denied: publish 'private/x'") != NULL);
	what[0] = '\0';
	CHECK(7, lbus_publish(bus, "shared/y", "x", 1, 0) == 0 && lbus_sync(bus, lbt_ms(5000)) == 0);
	CHECK(8, what[0] == '\0');
	/* Nothing was allowed to subscribe. */
	CHECK(9, lbus_subscribe(bus, "shared/#", on_nothing, NULL, NULL, NULL) == -EACCES);
	lbus_close(bus);
	return 0;
}

static void on_count(lbus *bus, const struct lbus_msg *m, void *ud)
{
	(void)bus;
	(void)m;
	(*(int *)ud)++;
}

static void test_publish_subtree(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	start_with_rules(&b, "allow user 4242 connect,publish shared/#\n"
			     "deny user 4242 publish shared/secret/#\n");
	lbus *owner = NULL;
	int seen = 0;
	assert_int_equal(lbus_connect(&owner, b.sock), 0);
	assert_int_equal(lbus_subscribe(owner, "#", on_count, &seen, NULL, NULL), 0);
	assert_int_equal(run_as(ALICE, ALICE, NULL, 0, publish_child, &b, NULL), 0);
	/* Two publishes were allowed: shared/temp and shared/y. */
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); seen < 2 && lbt_now_ms() < until;)
		lbus_run(owner, 50);
	lbus_run(owner, 100);
	assert_int_equal(seen, 2);
	lbus_close(owner);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- subscribe: deny inside allow, deliveries filtered -------------------- */

struct sub_ctx {
	int ready[2]; /* child -> parent: subscribed */
	int private_seen, public_seen;
	bool end;
};

static void on_sensor(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct sub_ctx *x = ud;

	if (strstr(m->topic, "private"))
		x->private_seen++;
	else if (!strcmp(m->topic, "sensors/end"))
		x->end = true, lbus_break(bus);
	else
		x->public_seen++;
}

static int subscribe_child(const struct lbt_broker *b, void *arg)
{
	struct sub_ctx *x = arg;
	lbus *bus = NULL;

	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, lbus_subscribe(bus, "sensors/private/#", on_sensor, x, NULL, NULL) == -EACCES);
	CHECK(3, lbus_subscribe(bus, "other/#", on_sensor, x, NULL, NULL) == -EACCES);
	CHECK(4, lbus_subscribe(bus, "sensors/#", on_sensor, x, NULL, NULL) == 0);
	CHECK(5, write(x->ready[1], "s", 1) == 1);
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); !x->end && lbt_now_ms() < until;)
		lbus_run(bus, 50);
	CHECK(6, x->end);
	CHECK(7, x->private_seen == 0);
	CHECK(8, x->public_seen == 2);
	lbus_close(bus);
	return 0;
}

static void test_deny_inside_allow(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	struct sub_ctx x = {0};
	char c;
	start_with_rules(&b, "allow user 4242 connect,subscribe sensors/#\n"
			     "deny user 4242 subscribe sensors/private/#\n");
	assert_int_equal(pipe(x.ready), 0);
	pid_t pid = spawn_as(ALICE, ALICE, NULL, 0, subscribe_child, &b, &x);
	assert_int_equal(read(x.ready[0], &c, 1), 1);
	lbus *owner = NULL;
	assert_int_equal(lbus_connect(&owner, b.sock), 0);
	assert_int_equal(lbus_publish(owner, "sensors/a", "1", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "sensors/private/x", "2", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "sensors/private/x", "2", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "sensors/b", "3", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "sensors/end", "4", 1, 0), 0);
	assert_int_equal(lbus_sync(owner, lbt_ms(5000)), 0);
	assert_int_equal(wait_status(pid), 0);
	/* The withheld deliveries are counted. */
	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &p, "stats", "--json", NULL), 0);
	assert_non_null(strstr(p.out, "\"filtered\":2"));
	lbt_proc_free(&p);
	lbus_close(owner);
	close(x.ready[0]);
	close(x.ready[1]);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- own: names and prefixes -------------------------------------------- */

static int own_child(const struct lbt_broker *b, void *arg)
{
	lbus *bus = NULL;

	(void)arg;
	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, lbus_name_take(bus, "org.example.svc") == 0);
	CHECK(3, lbus_name_take(bus, "org.example.admin") == -EACCES);
	CHECK(4, lbus_name_take(bus, "org.other") == -EACCES);
	CHECK(5, lbus_send(bus, "org.other", "x", 1, 0) == -EACCES);
	lbus_close(bus);
	return 0;
}

static void test_own_patterns(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	start_with_rules(&b, "allow user 4242 connect,own,send org.example.*\n"
			     "deny user 4242 own org.example.admin\n");
	assert_int_equal(run_as(ALICE, ALICE, NULL, 0, own_child, &b, NULL), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- a group rule through a supplementary group ------------------------------ */

static int group_member_child(const struct lbt_broker *b, void *arg)
{
	(void)arg;
	CHECK(1, cli_pub(b, "g/x", NULL) == 0);
	return 0;
}

static int outsider_child(const struct lbt_broker *b, void *arg)
{
	(void)arg;
	CHECK(1, cli_pub(b, "g/x", "permission denied") == 1);
	return 0;
}

static void test_group_rule(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	gid_t supp[] = {ALICE_GROUP};
	start_with_rules(&b, "allow group 4243 connect,publish g/#\n");
	assert_int_equal(run_as(ALICE, ALICE, supp, 1, group_member_child, &b, NULL), 0);
	assert_int_equal(run_as(BOB, BOB, NULL, 0, outsider_child, &b, NULL), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- reload tightens the rules under a live subscription --------------------- */

struct reload_ctx {
	int ready[2], go[2];
	int msgs;
	bool notice;
};

static void on_reload_msg(lbus *bus, const struct lbus_msg *m, void *ud)
{
	(void)bus;
	(void)m;
	((struct reload_ctx *)ud)->msgs++;
}

static void on_notice(lbus *bus, int err, const char *what, void *ud)
{
	struct reload_ctx *x = ud;

	if (err == -EACCES && what && strstr(what, "dropped"))
		x->notice = true;
	lbus_break(bus);
}

static int reload_child(const struct lbt_broker *b, void *arg)
{
	struct reload_ctx *x = arg;
	lbus *bus = NULL;

	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	lbus_on_error(bus, on_notice, x);
	CHECK(2, lbus_subscribe(bus, "sensors/#", on_reload_msg, x, NULL, NULL) == 0);
	CHECK(3, write(x->ready[1], "s", 1) == 1);
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); !x->notice && lbt_now_ms() < until;)
		lbus_run(bus, 50);
	CHECK(4, x->notice);
	CHECK(5, write(x->ready[1], "n", 1) == 1);
	char c;
	CHECK(6, read(x->go[0], &c, 1) == 1); /* the owner published */
	lbus_run(bus, 200);
	CHECK(7, x->msgs == 0);
	/* The connection still works: the new rules allow other/#. */
	CHECK(8, lbus_subscribe(bus, "other/#", on_reload_msg, x, NULL, NULL) == 0);
	lbus_close(bus);
	return 0;
}

static void test_reload_tightens(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	struct reload_ctx x = {0};
	char c, conf[PATH_MAX];
	static const char tighter[] = "socket_mode = 0666\nallow user 4242 connect,subscribe other/#\n";
	start_with_rules(&b, "allow user 4242 connect,subscribe sensors/#\n");
	assert_int_equal(pipe(x.ready), 0);
	assert_int_equal(pipe(x.go), 0);
	pid_t pid = spawn_as(ALICE, ALICE, NULL, 0, reload_child, &b, &x);
	assert_int_equal(read(x.ready[0], &c, 1), 1);
	assert_int_equal(lbt_write_file(b.dir, "lbusd.conf", tighter, strlen(tighter), conf), 0);
	assert_int_equal(kill(b.pid, SIGHUP), 0);
	assert_int_equal(read(x.ready[0], &c, 1), 1); /* the notice arrived */
	lbus *owner = NULL;
	assert_int_equal(lbus_connect(&owner, b.sock), 0);
	assert_int_equal(lbus_publish(owner, "sensors/a", "1", 1, 0), 0);
	assert_int_equal(lbus_sync(owner, lbt_ms(5000)), 0);
	assert_int_equal(write(x.go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);
	lbus_close(owner);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- call: names, prefixes and topic patterns -------------------------------- */

static void on_call_ok(lbus *bus, const struct lbus_msg *m, void *ud)
{
	(void)ud;
	if (m->kind == LBUS_MSG_CALL && m->reply_token)
		lbus_reply(bus, m->reply_token, "ok", 2);
}

/* A responder of the broker's own uid, in a child process: it owns the names
 * and answers calls to the topics given (NULL-terminated, "=" separates the
 * names from the topics), until SIGTERM. Returns its pid once it is ready. */
static pid_t responder_spawn(const struct lbt_broker *b, const char *const *what)
{
	int ready[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct lbus_sub_opts opts = {.size = sizeof(struct lbus_sub_opts), .responder = true};
		bool topics = false;
		lbus *bus = NULL;

		if (lbus_connect(&bus, b->sock) < 0)
			_exit(1);
		lbus_on_call(bus, on_call_ok, NULL);
		for (; *what; what++) {
			if (!strcmp(*what, "="))
				topics = true;
			else if (topics ? lbus_subscribe(bus, *what, on_call_ok, NULL, &opts, NULL) < 0
					: lbus_name_take(bus, *what) < 0)
				_exit(2);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		for (;;)
			if (lbus_run(bus, 1000) < 0)
				_exit(4);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	return pid;
}

static void responder_stop(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* lbus_call as the child: the error, and the reply checked on success. */
static int call_as(lbus *bus, const char *target)
{
	struct lbus_reply *reply = NULL;
	int r = lbus_call(bus, target, "x", 1, lbt_ms(5000), &reply);

	if (r == 0 && (reply->len != 2 || memcmp(reply->data, "ok", 2)))
		r = -EBADMSG;
	lbus_reply_free(reply);
	return r;
}

static int call_child(const struct lbt_broker *b, void *arg)
{
	lbus *bus = NULL;
	struct lbt_proc p;

	(void)arg;
	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, call_as(bus, "org.example.svc") == 0);
	CHECK(3, call_as(bus, "org.example.admin") == -EACCES); /* deny inside the prefix */
	CHECK(4, call_as(bus, "org.other") == -EACCES);
	CHECK(5, call_as(bus, "sensors/a/get") == 0);
	CHECK(6, call_as(bus, "sensors/a/set") == -EACCES);
	CHECK(7, call_as(bus, "private/get") == -EACCES);
	/* Allowed but unanswered: no responders; refused: denied, whether or
	 * not somebody would answer. */
	CHECK(8, call_as(bus, "org.example.gone") == -ESRCH);
	CHECK(9, call_as(bus, "nobody.here") == -EACCES);
	/* Still usable after the refusals. */
	CHECK(10, call_as(bus, "org.example.svc") == 0);
	lbus_close(bus);
	CHECK(11, lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "call", "org.other", "x", NULL) == 0);
	CHECK(12, p.exit_code == 1);
	lbt_proc_free(&p);
	return 0;
}

static void test_call_patterns(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	struct lbt_proc p;
	static const char *const serves[] = {"org.example.svc", "org.example.admin", "org.other", "=",
					     "sensors/#",	"private/#",	     NULL};
	start_with_rules(&b, "allow user 4242 connect,call org.example.*\n"
			     "deny  user 4242 call org.example.admin\n"
			     "allow user 4242 call sensors/+/get\n");
	pid_t resp = responder_spawn(&b, serves);
	assert_int_equal(run_as(ALICE, ALICE, NULL, 0, call_child, &b, NULL), 0);
	/* Each refusal was counted: five from liblbus, one from the CLI. */
	assert_int_equal(lbt_cli_run(&b, NULL, 0, lbt_ms(5000), &p, "stats", "--json", NULL), 0);
	assert_non_null(strstr(p.out, "\"denied\":6,"));
	lbt_proc_free(&p);
	responder_stop(resp);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- monitor: the verb, and only what the monitor could receive --------------- */

struct mon_ctx {
	int ready[2];
	char seen[1024]; /* "kind:topic-or-name " for every event */
	bool end;
};

static void on_monitor_event(lbus *bus, const struct lbus_monitor_event *ev, void *ud)
{
	struct mon_ctx *x = ud;
	size_t n = strlen(x->seen);

	snprintf(x->seen + n, sizeof(x->seen) - n, "%d:%s%s ", (int)ev->kind, ev->topic, ev->name);
	if (!strcmp(ev->topic, "sensors/end")) {
		x->end = true;
		lbus_break(bus);
	}
}

static int monitor_child(const struct lbt_broker *b, void *arg)
{
	struct mon_ctx *x = arg;
	lbus *bus = NULL;
	char pub[64], send[64];

	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, lbus_monitor(bus, "", on_monitor_event, x) == 0);
	CHECK(3, write(x->ready[1], "m", 1) == 1);
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); !x->end && lbt_now_ms() < until;)
		lbus_run(bus, 50);
	CHECK(4, x->end);
	snprintf(pub, sizeof(pub), "%d:sensors/a ", (int)LBUS_MON_PUBLISH);
	snprintf(send, sizeof(send), "%d:org.example.svc ", (int)LBUS_MON_SEND);
	CHECK(5, strstr(x->seen, pub) != NULL);
	CHECK(6, strstr(x->seen, send) != NULL);
	CHECK(7, strstr(x->seen, "sensors/private") == NULL); /* deny inside allow */
	CHECK(8, strstr(x->seen, "other/") == NULL);	      /* never allowed */
	CHECK(9, strstr(x->seen, "org.secret") == NULL);      /* a name it may not own */
	lbus_close(bus);
	return 0;
}

static int no_monitor_child(const struct lbt_broker *b, void *arg)
{
	lbus *bus = NULL;

	(void)arg;
	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, lbus_monitor(bus, "", on_monitor_event, NULL) == -EACCES);
	CHECK(3, lbus_sync(bus, lbt_ms(5000)) == 0); /* still usable */
	lbus_close(bus);
	return 0;
}

static void test_monitor_visibility(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	struct mon_ctx x = {0};
	char c;
	start_with_rules(&b, "allow user 4242 connect,monitor,subscribe sensors/#\n"
			     "deny  user 4242 subscribe sensors/private/#\n"
			     "allow user 4242 own org.example.*\n"
			     "allow user 4244 connect,subscribe\n");
	assert_int_equal(run_as(BOB, BOB, NULL, 0, no_monitor_child, &b, NULL), 0);
	assert_int_equal(pipe(x.ready), 0);
	pid_t pid = spawn_as(ALICE, ALICE, NULL, 0, monitor_child, &b, &x);
	assert_int_equal(read(x.ready[0], &c, 1), 1);
	lbus *owner = NULL;
	assert_int_equal(lbus_connect(&owner, b.sock), 0);
	assert_int_equal(lbus_name_take(owner, "org.example.svc"), 0);
	assert_int_equal(lbus_name_take(owner, "org.secret"), 0);
	assert_int_equal(lbus_publish(owner, "sensors/a", "1", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "sensors/private/x", "2", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "other/y", "3", 1, 0), 0);
	assert_int_equal(lbus_send(owner, "org.secret", "4", 1, 0), 0);
	assert_int_equal(lbus_send(owner, "org.example.svc", "5", 1, 0), 0);
	assert_int_equal(lbus_publish(owner, "sensors/end", "6", 1, 0), 0);
	assert_int_equal(lbus_sync(owner, lbt_ms(5000)), 0);
	assert_int_equal(wait_status(pid), 0);
	lbus_close(owner);
	close(x.ready[0]);
	close(x.ready[1]);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- introspect: list, stats and presence ---------------------------------------- */

struct presence_ctx {
	int ready[2];
	bool connected; /* a $lbus/client/connected event arrived */
};

static void on_presence(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct presence_ctx *x = ud;

	if (!strcmp(m->topic, "$lbus/client/connected")) {
		x->connected = true;
		lbus_break(bus);
	}
}

/* Without introspect: list, stats and presence refused, the rest usable. */
static int no_introspect_child(const struct lbt_broker *b, void *arg)
{
	struct lbus_client_list *list = NULL;
	struct lbus_stats *stats = NULL;
	lbus *bus = NULL;
	struct lbt_proc p;

	(void)arg;
	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, lbus_client_list_get(bus, lbt_ms(5000), &list) == -EACCES);
	/* the broker's reason reaches the caller of a blocking request */
	CHECK(8, lbus_request_reason(bus) && strstr(lbus_request_reason(bus), "denied: introspect"));
	CHECK(3, lbus_stats_get(bus, lbt_ms(5000), &stats) == -EACCES);
	/* subscribe without a pattern allows every topic, not the broker's own */
	CHECK(4, lbus_subscribe(bus, "$lbus/client/#", on_nothing, NULL, NULL, NULL) == -EACCES);
	CHECK(5, lbus_subscribe(bus, "#", on_nothing, NULL, NULL, NULL) == 0);
	lbus_close(bus);
	CHECK(6, lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "list", NULL) == 0);
	CHECK(7, p.exit_code == 1);
	CHECK(9, p.err && strstr(p.err, "(denied: introspect (no rule allows it))"));
	lbt_proc_free(&p);
	return 0;
}

static int introspect_child(const struct lbt_broker *b, void *arg)
{
	struct presence_ctx *x = arg;
	struct lbus_client_list *list = NULL;
	lbus *bus = NULL;

	CHECK(1, lbus_connect(&bus, b->sock) == 0);
	CHECK(2, lbus_client_list_get(bus, lbt_ms(5000), &list) == 0);
	lbus_client_list_free(list);
	CHECK(3, lbus_subscribe(bus, "$lbus/client/#", on_presence, x, NULL, NULL) == 0);
	CHECK(4, write(x->ready[1], "p", 1) == 1);
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); !x->connected && lbt_now_ms() < until;)
		lbus_run(bus, 50);
	CHECK(5, x->connected);
	lbus_close(bus);
	return 0;
}

static void test_introspect(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	struct presence_ctx x = {0};
	char c;
	start_with_rules(&b, "allow user 4244 connect,subscribe\n"
			     "allow user 4242 connect,introspect\n");
	assert_int_equal(run_as(BOB, BOB, NULL, 0, no_introspect_child, &b, NULL), 0);
	assert_int_equal(pipe(x.ready), 0);
	pid_t pid = spawn_as(ALICE, ALICE, NULL, 0, introspect_child, &b, &x);
	assert_int_equal(read(x.ready[0], &c, 1), 1);
	lbus *owner = NULL;
	assert_int_equal(lbus_connect(&owner, b.sock), 0); /* raises $lbus/client/connected */
	assert_int_equal(wait_status(pid), 0);
	lbus_close(owner);
	close(x.ready[0]);
	close(x.ready[1]);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- the socket lets the admitted users reach the broker ---------------------------- */

static int reach_child(const struct lbt_broker *b, void *arg)
{
	(void)arg;
	CHECK(1, cli_pub(b, "x/1", NULL) == 0);
	return 0;
}

/* Start a broker with the rules file as is: default socket_mode, the test
 * directory private (0700, as mkdtemp made it). */
static void start_private(struct lbt_broker *b, const char *rules)
{
	char conf[PATH_MAX];

	assert_int_equal(lbt_broker_make_dir(b), 0);
	assert_int_equal(lbt_write_file(b->dir, "lbusd.conf", rules, strlen(rules), conf), 0);
	const char *args[] = {"-c", conf, NULL};
	struct lbt_broker_opts o = {.extra_args = args, .reuse_dir = true, .sock_name = "run/bus.sock"};
	assert_int_equal(lbt_broker_start_opts(b, &o), 0);
}

static void test_socket_reachable(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	struct stat st;
	char dir[PATH_MAX];

	/* Rules that admit nobody else: the socket stays private. */
	start_private(&b, "allow user 0 all\ndeny everyone connect\n");
	assert_int_equal(stat(b.sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char *log = lbt_broker_log(&b);
	assert_null(strstr(log, "admit other users"));
	free(log);
	assert_int_equal(lbt_broker_stop(&b), 0);

	/* Rules that admit user 4242: socket and its directory opened, logged. */
	start_private(&b, "allow user 4242 connect,publish x/#\n");
	assert_int_equal(chmod(b.dir, 0711), 0); /* the test's own directory */
	assert_int_equal(stat(b.sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0666);
	assert_int_equal(lbt_path(dir, b.dir, "run"), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0711);
	log = lbt_broker_log(&b);
	assert_non_null(strstr(log, "access rules admit other users: made socket "));
	free(log);
	assert_int_equal(run_as(ALICE, ALICE, NULL, 0, reach_child, &b, NULL), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* Under socket activation the mode is the unit's: a warning naming
 * SocketMode= when it keeps the admitted users out. */
static void test_activation_warns(void **state)
{
	(void)state;
	if (!need_root())
		skip();
	struct lbt_broker b;
	char conf[PATH_MAX], sock[PATH_MAX];
	static const char rules[] = "allow user 4242 connect,publish x/#\n";
	int fd;

	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_write_file(b.dir, "lbusd.conf", rules, strlen(rules), conf), 0);
	assert_int_equal(lbt_path(sock, b.dir, "act.sock"), 0);
	assert_int_equal(lbt_path(b.log, b.dir, "lbusd.log"), 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	mode_t old = umask(0177); /* 0600, as SocketMode=0600 makes it */
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	umask(old);
	assert_int_equal(listen(fd, 8), 0);
	b.pid = fork();
	assert_true(b.pid >= 0);
	if (b.pid == 0) {
		char pid[32];
		int out = open(b.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out < 0 || dup2(fd, 3) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(100);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDS", "1", 1);
		unsetenv("NOTIFY_SOCKET");
		execl(lbt_lbusd_path(), "lbusd", "-c", conf, (char *)NULL);
		_exit(101);
	}
	close(fd);
	char *log = NULL;
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); lbt_now_ms() < until; lbt_sleep_ms(20)) {
		free(log);
		log = lbt_broker_log(&b);
		if (log && strstr(log, "SocketMode="))
			break;
	}
	assert_non_null(log);
	assert_non_null(strstr(log, "passed by systemd is 0600: they cannot connect; set SocketMode=0666 in "
				    "lbusd.socket"));
	free(log);
	assert_int_equal(unlink(sock), 0); /* ours: the broker leaves it */
	assert_int_equal(lbt_broker_stop(&b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_subtree),    cmocka_unit_test(test_deny_inside_allow),
	    cmocka_unit_test(test_own_patterns),       cmocka_unit_test(test_group_rule),
	    cmocka_unit_test(test_reload_tightens),    cmocka_unit_test(test_call_patterns),
	    cmocka_unit_test(test_monitor_visibility), cmocka_unit_test(test_introspect),
	    cmocka_unit_test(test_socket_reachable),   cmocka_unit_test(test_activation_warns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
