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
 * under a live subscription (dropped, with a notice). The default deny of
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
#include <sys/stat.h>
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
		return true;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_subtree), cmocka_unit_test(test_deny_inside_allow),
	    cmocka_unit_test(test_own_patterns),    cmocka_unit_test(test_group_rule),
	    cmocka_unit_test(test_reload_tightens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
