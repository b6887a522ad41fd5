/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lbus-bridge's forwarding core, apart from any I/O
 * (tools/bridge-*.c): the configuration parser and its FILE:LINE errors,
 * MQTT's topic rules and the route mapping, the bounded outgoing queue
 * (order, acks, drops), the duplicate filter, loop prevention, and the
 * status JSON.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge-config.h"
#include "bridge-core.h"
#include "bridge-queue.h"
#include "bridge-topic.h"

static char tmpdir[64];

static int make_dir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lbus-bridge-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name; the path goes to path (256 bytes). */
static void write_file(const char *name, const char *text, char *path)
{
	snprintf(path, 256, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Load text as a config: the return value, *err the message. */
static int load(const char *text, struct bridge_config *cfg, char *err, size_t errlen)
{
	char path[256];

	write_file("bridge.conf", text, path);
	memset(cfg, 0, sizeof(*cfg));
	return bridge_config_load(cfg, path, err, errlen);
}

/* ---- configuration ---------------------------------------------------------- */

static void test_config_full(void **state)
{
	struct bridge_config c;
	char err[512] = "", path[256];

	write_file("pw", "s3cret\n", path);
	assert_int_equal(load("# a comment\n"
			      "host = mqtt.example.org   # trailing comment\n"
			      "port = 8884\n"
			      "client_id = site1\n"
			      "username = bob\n"
			      "password_file = pw\n"
			      "tls_ca = ca.pem\n"
			      "tls_cert = /etc/c.pem\n"
			      "tls_key = k.pem\n"
			      "keepalive = 30\n"
			      "clean_session = true\n"
			      "mqtt_version = 3.1.1\n"
			      "socket = /run/bus.sock\n"
			      "queue_max_msgs = 10\n"
			      "queue_max_bytes = 1000\n"
			      "name = org.example.Bridge\n"
			      "\n"
			      "out sensors/# qos 1 remote-prefix site1/   # comment after the route\n"
			      "in cmd/site1/# qos 2 local-prefix remote/\n"
			      "  out # \n"
			      "in a/+/b local-prefix l/ remote-prefix r/\n",
			      &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.host, "mqtt.example.org");
	assert_int_equal(c.port, 8884);
	assert_string_equal(c.client_id, "site1");
	assert_string_equal(c.username, "bob");
	assert_string_equal(c.password, "s3cret");
	assert_true(strstr(c.tls_ca, tmpdir) == c.tls_ca); /* relative to the file */
	assert_string_equal(c.tls_cert, "/etc/c.pem");
	assert_int_equal(c.keepalive, 30);
	assert_true(c.clean_session);
	assert_int_equal(c.mqtt_version, BRIDGE_MQTT_311);
	assert_string_equal(c.socket, "/run/bus.sock");
	assert_int_equal(c.queue_max_msgs, 10);
	assert_int_equal(c.queue_max_bytes, 1000);
	assert_string_equal(c.name, "org.example.Bridge");
	assert_int_equal(c.n_routes, 4);
	assert_int_equal(c.routes[0].dir, BRIDGE_OUT);
	assert_int_equal(c.routes[0].qos, 1);
	assert_string_equal(c.routes[0].local_pattern, "sensors/#");
	assert_string_equal(c.routes[0].remote_pattern, "site1/sensors/#");
	assert_int_equal(c.routes[1].dir, BRIDGE_IN);
	assert_int_equal(c.routes[1].qos, 2);
	assert_string_equal(c.routes[1].local_pattern, "remote/cmd/site1/#");
	assert_string_equal(c.routes[1].remote_pattern, "cmd/site1/#");
	assert_string_equal(c.routes[2].pattern, "#");
	assert_int_equal(c.routes[2].qos, 0);
	assert_int_equal(c.routes[2].line, 20);
	assert_string_equal(c.routes[3].local_pattern, "l/a/+/b");
	assert_string_equal(c.routes[3].remote_pattern, "r/a/+/b");
	bridge_config_free(&c);
}

static void test_config_defaults(void **state)
{
	struct bridge_config c;
	char err[512] = "";

	assert_int_equal(load("out a/#\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.host, "localhost");
	assert_int_equal(c.port, 1883);
	assert_true(strncmp(c.client_id, "lbus-bridge-", 12) == 0);
	assert_int_equal(c.keepalive, 60);
	assert_false(c.clean_session);
	assert_int_equal(c.mqtt_version, BRIDGE_MQTT_5);
	assert_null(c.socket);
	assert_string_equal(c.name, "lbus.bridge");
	assert_int_equal(c.queue_max_msgs, BRIDGE_DEFAULT_QUEUE_MSGS);
	bridge_config_free(&c);
	assert_int_equal(load("tls_ca = /ca.pem\nin x\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 8883);
	bridge_config_free(&c);
}

/* Each bad line gives "FILE:LINE: why" with the right line. */
static void test_config_errors(void **state)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *why;
	} cases[] = {
	    {"out a\nport = 0\n", 2, "invalid value '0' for port"},
	    {"out a\n\nport = x\n", 3, "invalid value 'x' for port"},
	    {"colour = blue\n", 1, "unknown key 'colour'"},
	    {"out a\njust words\n", 2, "expected key = value"},
	    {"out a/#/b\n", 1, "'#' must be the whole last level"},
	    {"in a+\n", 1, "'+' must be a whole level"},
	    {"out\n", 1, "needs a topic pattern"},
	    {"out a qos 3\n", 1, "invalid qos '3'"},
	    {"out a qos 1 qos 1\n", 1, "qos given twice"},
	    {"out a local-prefix\n", 1, "local-prefix needs a value"},
	    {"out a remote-prefix x/+/\n", 1, "may not contain '+' or '#'"},
	    {"out a colour red\n", 1, "unknown word 'colour'"},
	    {"out a\nclean_session = maybe\n", 2, "want true or false"},
	    {"out a\nmqtt_version = 4\n", 2, "want 3.1.1 or 5"},
	    {"out a\nname = -bad\n", 2, "invalid name"},
	    {"out a\npassword_file = nope\n", 2, "password_file"},
	    {"out a\nkeepalive = 2\n", 2, "from 5 to 65535"},
	    {"out a\nhost =\n", 2, "empty value for host"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bridge_config c;
		char err[512] = "", want[300];

		assert_int_equal(load(cases[i].text, &c, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "%s/bridge.conf:%u: ", tmpdir, cases[i].line);
		if (strncmp(err, want, strlen(want)) || !strstr(err, cases[i].why))
			fail_msg("case %zu: got '%s', want '%s...%s'", i, err, want, cases[i].why);
		assert_null(c.routes); /* freed */
	}
}

/* Errors about the whole file name the file, without a line. */
static void test_config_file_errors(void **state)
{
	struct bridge_config c = {0};
	char err[512] = "", want[300];

	assert_int_equal(load("# nothing\n", &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/bridge.conf: no out or in line", tmpdir);
	assert_true(strstr(err, want) == err);
	assert_int_equal(load("out a\ntls_ca = ca\ntls_cert = c\n", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tls_cert and tls_key go together"));
	assert_int_equal(bridge_config_load(&c, "/nonexistent/b.conf", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/b.conf: No such file or directory");
}

/* ---- topics ------------------------------------------------------------------- */

static void test_topic_rules(void **state)
{
	const char *why;

	assert_int_equal(btopic_name_check("a/b", 3, &why), 0);
	assert_int_equal(btopic_name_check("a//b/", 5, &why), 0);
	assert_int_equal(btopic_name_check("a/+/b", 5, &why), -EINVAL);
	assert_int_equal(btopic_name_check("a/#", 3, &why), -EINVAL);
	assert_int_equal(btopic_name_check("a\0b", 3, &why), -EINVAL);
	assert_non_null(strstr(why, "NUL"));
	assert_int_equal(btopic_name_check("$lbus/x", 7, &why), -EINVAL);
	assert_non_null(strstr(why, "'$'"));
	assert_int_equal(btopic_name_check("\xff", 1, &why), -EINVAL);
	assert_int_equal(btopic_name_check("", 0, &why), -EINVAL);
	assert_int_equal(btopic_filter_check("a/+/#", &why), 0);
	assert_int_equal(btopic_filter_check("#", &why), 0);
	assert_int_equal(btopic_filter_check("a#", &why), -EINVAL);
	assert_int_equal(btopic_filter_check("a/#/b", &why), -EINVAL);
	assert_int_equal(btopic_prefix_check("", &why), 0);
	assert_int_equal(btopic_prefix_check("x/#", &why), -EINVAL);
}

static void test_topic_match_and_map(void **state)
{
	char out[16];

	assert_true(btopic_match("a/+/c", "a/b/c"));
	assert_false(btopic_match("a/+/c", "a/b/c/d"));
	assert_true(btopic_match("a/#", "a"));
	assert_true(btopic_match("a/#", "a/b/c"));
	assert_true(btopic_match("#", "x/y"));
	assert_false(btopic_match("#", "$SYS/x"));
	assert_false(btopic_match("+/x", "$SYS/x"));
	assert_true(btopic_match("$SYS/#", "$SYS/x"));
	assert_false(btopic_match("a/b", "a/bc"));
	assert_true(btopic_match("a//b", "a//b"));

	assert_int_equal(btopic_map("sensors/t", "", "site1/", out, sizeof(out)), 15);
	assert_string_equal(out, "site1/sensors/t");
	assert_int_equal(btopic_map("remote/cmd/x", "remote/", "", out, sizeof(out)), 5);
	assert_string_equal(out, "cmd/x");
	assert_int_equal(btopic_map("other/x", "remote/", "", out, sizeof(out)), -ENOENT);
	assert_int_equal(btopic_map("sensors/temp", "", "site1/", out, sizeof(out)), -ENAMETOOLONG);
}

/* ---- queue -------------------------------------------------------------------- */

static void test_queue_order_ack_bound(void **state)
{
	struct bqueue q;

	bqueue_init(&q, 3, 1000);
	assert_int_equal(bqueue_push(&q, "t/1", "a", 1, 1, false), 0);
	assert_int_equal(bqueue_push(&q, "t/2", "bb", 2, 0, true), 0);
	assert_int_equal(bqueue_push(&q, "t/3", "ccc", 3, 1, false), 0);
	assert_int_equal(bqueue_push(&q, "t/4", "d", 1, 1, false), -ENOBUFS); /* 3 messages */
	assert_int_equal(q.msgs, 3);
	assert_int_equal(q.bytes, 6 + 9);

	struct bq_entry *e = bqueue_next(&q);
	assert_string_equal(e->topic, "t/1");
	bqueue_handed(&q, e, 7);
	e = bqueue_next(&q);
	assert_string_equal(e->topic, "t/2");
	assert_true(e->retain);
	bqueue_handed(&q, e, 0); /* QoS 0: done at once */
	assert_int_equal(q.msgs, 2);
	e = bqueue_next(&q);
	assert_string_equal(e->topic, "t/3");
	bqueue_handed(&q, e, 8);
	assert_null(bqueue_next(&q));
	assert_int_equal(q.inflight, 2);

	/* Acks out of order (QoS 2 may), unknown ids refused. */
	assert_int_equal(bqueue_acked(&q, 8), 3);
	assert_int_equal(bqueue_acked(&q, 8), -ENOENT);
	assert_int_equal(bqueue_acked(&q, 99), -ENOENT);
	assert_int_equal(bqueue_push(&q, "t/5", "e", 1, 1, false), 0);
	assert_int_equal(bqueue_acked(&q, 7), 1);
	assert_int_equal(q.msgs, 1);
	assert_int_equal(q.inflight, 0);
	assert_string_equal(bqueue_next(&q)->topic, "t/5");
	bqueue_clear(&q);
	assert_int_equal(q.msgs, 0);

	/* The byte bound counts topic + payload. */
	bqueue_init(&q, 100, 10);
	assert_int_equal(bqueue_push(&q, "t", "123456789", 9, 1, false), 0);
	assert_int_equal(bqueue_push(&q, "t", "", 0, 1, false), -ENOBUFS);
	bqueue_clear(&q);
}

static void test_dedup(void **state)
{
	struct bdedup d = {0};
	uint64_t h1 = bdedup_hash("t", "1", 1, false), h2 = bdedup_hash("t", "2", 1, false);

	assert_true(h1 != h2);
	assert_true(bdedup_hash("t", "1", 1, true) != h1);
	bdedup_connected(&d, false);
	assert_false(bdedup_check(&d, 1, h1));
	assert_false(bdedup_check(&d, 1, h1)); /* no reconnect: not a redelivery */
	assert_false(bdedup_check(&d, 2, h2));
	/* Session resumed: the broker resends 2 (its ack was lost), then new. */
	bdedup_connected(&d, true);
	assert_true(bdedup_check(&d, 2, h2));
	assert_false(bdedup_check(&d, 3, h1));
	assert_false(bdedup_check(&d, 2, h2)); /* the check ended with the first new one */
	/* A new session forgets. */
	bdedup_connected(&d, false);
	assert_false(bdedup_check(&d, 3, h1));
}

/* ---- the core ------------------------------------------------------------------- */

static void test_core_forwarding(void **state)
{
	struct bridge_config c;
	struct bridge_core core;
	char err[512];

	assert_int_equal(load("queue_max_msgs = 2\n"
			      "out sensors/# qos 1 remote-prefix site1/\n"
			      "out $lbus/client/# qos 0\n"
			      "in cmd/# qos 1 local-prefix remote/\n",
			      &c, err, sizeof(err)),
			 0);
	bridge_core_init(&core, &c);

	/* The bridge's own messages never go back. */
	assert_int_equal(bridge_core_from_local(&core, &c.routes[0], "sensors/a", "x", 1, false, true, 0),
			 BRIDGE_SKIP_OWN);
	assert_int_equal(core.q.msgs, 0);
	assert_int_equal(bridge_core_from_local(&core, &c.routes[0], "sensors/a", "x", 1, true, false, 0),
			 BRIDGE_QUEUED);
	assert_string_equal(bqueue_next(&core.q)->topic, "site1/sensors/a");
	assert_true(bqueue_next(&core.q)->retain);
	/* A '$' topic is skipped and counted. */
	assert_int_equal(
	    bridge_core_from_local(&core, &c.routes[1], "$lbus/client/connected", "", 0, false, false, 0),
	    BRIDGE_SKIP_TOPIC);
	assert_int_equal(core.n.skipped, 1);
	/* Past the bound: dropped and counted. */
	assert_int_equal(bridge_core_from_local(&core, &c.routes[0], "sensors/b", "y", 1, false, false, 0),
			 BRIDGE_QUEUED);
	assert_int_equal(bridge_core_from_local(&core, &c.routes[0], "sensors/c", "z", 1, false, false, 0),
			 BRIDGE_DROPPED);
	assert_int_equal(core.n.dropped_out, 1);
	/* Handed and acked: forwarded. */
	struct bq_entry *e = bqueue_next(&core.q);
	bridge_core_handed(&core, e, 5);
	assert_int_equal(core.n.forwarded_out, 0);
	bridge_core_acked(&core, 5);
	assert_int_equal(core.n.forwarded_out, 1);

	/* From MQTT: mapped, duplicates after a resumed session filtered. */
	bridge_core_mqtt_connected(&core, false);
	assert_int_equal(bridge_core_from_remote(&core, 1, 1, "cmd/reboot", "now", 3, false, 0),
			 BRIDGE_FORWARD);
	assert_string_equal(core.topic, "remote/cmd/reboot");
	bridge_core_in_done(&core, 0, 0);
	bridge_core_mqtt_connected(&core, true);
	assert_int_equal(bridge_core_from_remote(&core, 1, 1, "cmd/reboot", "now", 3, false, 0),
			 BRIDGE_SKIP_DUP);
	assert_int_equal(core.n.duplicates, 1);
	assert_int_equal(bridge_core_from_remote(&core, 0, 0, "other/x", "", 0, false, 0), BRIDGE_SKIP_TOPIC);
	assert_int_equal(bridge_core_from_remote(&core, 2, 1, "cmd/x", "", 0, false, 0), BRIDGE_FORWARD);
	bridge_core_in_done(&core, -ENOTCONN, 0);
	assert_int_equal(core.n.dropped_in, 1);
	bridge_core_in_done(&core, -EACCES, 0);
	assert_int_equal(core.n.skipped, 3);

	char *json = NULL;
	size_t len = 0;
	core.mqtt_up = true;
	assert_int_equal(bridge_core_status_json(&core, &json, &len), 0);
	assert_int_equal(strlen(json), len);
	assert_non_null(strstr(json, "\"connected\":true"));
	assert_non_null(strstr(json, "\"lbus_connected\":false"));
	assert_non_null(strstr(json, "\"queued\":1,"));
	assert_non_null(strstr(json, "\"forwarded\":{\"out\":1,\"in\":1}"));
	assert_non_null(strstr(json, "\"dropped\":{\"out\":1,\"in\":1}"));
	assert_non_null(strstr(json, "\"duplicates\":1"));
	free(json);
	bridge_core_free(&core);
	bridge_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_full),		  cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_config_errors),	  cmocka_unit_test(test_config_file_errors),
	    cmocka_unit_test(test_topic_rules),		  cmocka_unit_test(test_topic_match_and_map),
	    cmocka_unit_test(test_queue_order_ack_bound), cmocka_unit_test(test_dedup),
	    cmocka_unit_test(test_core_forwarding),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
