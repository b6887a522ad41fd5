/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the configuration file (broker/config.c): the compiled-in
 * defaults, every key with its bounds (octal for socket_mode, units for
 * shutdown_timeout), comments and
 * blank lines, and that any error (unknown key, bad value, no '=', missing
 * file) names file:line and leaves the caller's configuration untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "lbus-limits.h"

/* Write text to a new temporary file; its path goes to path (64 bytes). */
static void write_conf(char *path, const char *text)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(path, 64, "%s/lbus-conf-XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Load text over the defaults: the return value; err gets the message. */
static int load(struct config *cfg, const char *text, char *err, size_t errlen)
{
	char path[64];

	config_defaults(cfg);
	write_conf(path, text);
	int ret = config_load(cfg, path, err, errlen);
	unlink(path);
	config_free(cfg); /* the rules are test-policy's; the keys stay */
	return ret;
}

/* cfg holds exactly the compiled-in defaults. */
static void assert_defaults(const struct config *cfg)
{
	assert_int_equal(cfg->max_frame, LBUS_DEFAULT_MAX_FRAME);
	assert_int_equal(cfg->max_queue, LBUS_DEFAULT_MAX_QUEUE);
	assert_int_equal(cfg->hello_timeout_ms, LBUS_HELLO_TIMEOUT_MS);
	assert_int_equal(cfg->frame_timeout_ms, LBUS_FRAME_TIMEOUT_MS);
	assert_int_equal(cfg->retained_max, LBUS_DEFAULT_RETAINED_MAX);
	assert_int_equal(cfg->socket_mode, 0600);
	assert_int_equal(cfg->max_clients, LBUS_DEFAULT_MAX_CLIENTS);
	assert_int_equal(cfg->max_clients_per_uid, LBUS_DEFAULT_MAX_CLIENTS);
	assert_int_equal(cfg->max_names_per_client, LBUS_DEFAULT_MAX_NAMES);
	assert_int_equal(cfg->max_subscriptions_per_client, LBUS_DEFAULT_MAX_SUBSCRIPTIONS);
	assert_int_equal(cfg->shutdown_timeout_ms, LBUS_DEFAULT_SHUTDOWN_TIMEOUT_MS);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config cfg;

	config_defaults(&cfg);
	assert_defaults(&cfg);
}

static void test_every_key(void **state)
{
	(void)state;
	struct config cfg;
	char err[256] = "";

	assert_int_equal(load(&cfg,
			      "# a comment\n"
			      "\n"
			      "max_frame = 65536\n"
			      "  max_queue=8192   # trailing comment\n"
			      "hello_timeout_ms = 250\n"
			      "frame_timeout_ms = 1000\n"
			      "retained_max = 0\n"
			      "socket_mode = 0660\n"
			      "max_clients = 10\n"
			      "max_clients_per_uid = 5\n"
			      "max_names_per_client = 3\n"
			      "max_subscriptions_per_client = 7\n"
			      "shutdown_timeout = 2s\n",
			      err, sizeof(err)),
			 0);
	assert_int_equal(cfg.max_frame, 65536);
	assert_int_equal(cfg.max_queue, 8192);
	assert_int_equal(cfg.hello_timeout_ms, 250);
	assert_int_equal(cfg.frame_timeout_ms, 1000);
	assert_int_equal(cfg.retained_max, 0);
	assert_int_equal(cfg.socket_mode, 0660);
	assert_int_equal(cfg.max_clients, 10);
	assert_int_equal(cfg.max_clients_per_uid, 5);
	assert_int_equal(cfg.max_names_per_client, 3);
	assert_int_equal(cfg.max_subscriptions_per_client, 7);
	assert_int_equal(cfg.shutdown_timeout_ms, 2000);

	/* milliseconds: bare, with ms or with s */
	assert_int_equal(load(&cfg, "shutdown_timeout = 1500\n", err, sizeof(err)), 0);
	assert_int_equal(cfg.shutdown_timeout_ms, 1500);
	assert_int_equal(load(&cfg, "shutdown_timeout = 250ms\n", err, sizeof(err)), 0);
	assert_int_equal(cfg.shutdown_timeout_ms, 250);
}

/* The load must fail with -EINVAL, err naming line `line` and holding `want`,
 * and cfg must still be the defaults. */
static void expect_refused(const char *text, unsigned line, const char *want)
{
	struct config cfg;
	char err[256] = "", at[32];

	assert_int_equal(load(&cfg, text, err, sizeof(err)), -EINVAL);
	assert_defaults(&cfg);
	snprintf(at, sizeof(at), ":%u: ", line);
	if (!strstr(err, at) || !strstr(err, want))
		fail_msg("error '%s' should hold '%s' and '%s'", err, at, want);
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refused("max_queue = 8192\nmax_frame = 1000\n", 2, "want an integer from 4096 to 1073741824");
	expect_refused("max_frame = 1073741825\n", 1, "max_frame");
	expect_refused("max_queue = 4095\n", 1, "max_queue");
	expect_refused("hello_timeout_ms = 0\n", 1, "hello_timeout_ms");
	expect_refused("frame_timeout_ms = 86400001\n", 1, "frame_timeout_ms");
	expect_refused("retained_max = -1\n", 1, "retained_max");
	expect_refused("max_queue = 12abc\n", 1, "invalid value '12abc'");
	expect_refused("max_queue =\n", 1, "invalid value ''");
	expect_refused("socket_mode = 0800\n", 1, "want octal");
	expect_refused("socket_mode = 01777\n", 1, "want octal");
	expect_refused("shutdown_timeout = 601s\n", 1, "milliseconds");
	expect_refused("shutdown_timeout = 5m\n", 1, "invalid value '5m'");
	expect_refused("max_clients = 0\n", 1, "max_clients");
	expect_refused("\n# ok\nmax_quue = 1\n", 3, "unknown key 'max_quue'");
	expect_refused("max_queue 8192\n", 1, "expected 'key = value'");
}

static void test_missing_file(void **state)
{
	(void)state;
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, "/nonexistent/lbusd.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/lbusd.conf"));
	assert_defaults(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_key),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
