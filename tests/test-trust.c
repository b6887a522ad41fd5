/* SPDX-License-Identifier: MIT */
/*
 * Whom broker and client trust with the socket (issue 7), as a user sees it:
 *  - the socket's directory may not be a symbolic link (whoever owns the
 *    link can re-point it): lbusd refuses to start in one, saying so, and
 *    creates nothing; a client refuses to connect through one (-ELOOP, with
 *    a text that says why), even to a live broker;
 *  - a client talks only to a broker running as its own user or root,
 *    whatever gave the path (explicit, $LBUS_SOCKET): an impostor listening
 *    as uid IMPOSTOR_UID gets -EPERM and not one byte; with
 *    lbus_connect_opts.any_broker_uid (a system bus) the check is lifted
 *    and the client's hello reaches it. Needs root to switch uid.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define IMPOSTOR_UID 4242
#define IMPOSTOR_CONNS 3 /* explicit, $LBUS_SOCKET, explicit with any_broker_uid */

static void test_symlinked_dir_refused_by_broker(void **state)
{
	struct lbt_broker b;
	char real[PATH_MAX], link[PATH_MAX], sock[PATH_MAX], inside[PATH_MAX];
	struct lbt_proc p;
	struct stat st;

	(void)state;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(lbt_path(real, b.dir, "real"), 0);
	assert_int_equal(lbt_path(link, b.dir, "link"), 0);
	assert_int_equal(lbt_path(sock, link, "bus.sock"), 0);
	assert_int_equal(lbt_path(inside, real, "bus.sock"), 0);
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, link), 0);

	const char *argv[] = {lbt_lbusd_path(), "-S", sock, NULL};
	assert_int_equal(lbt_runv(argv, NULL, 0, lbt_ms(5000), &p), 0);
	fprintf(stderr, "lbusd said: %s", p.err);
	assert_true(p.exit_code > 0 && p.exit_code < 128);
	assert_non_null(strstr(p.err, link));
	assert_non_null(strstr(p.err, "symbolic link"));
	lbt_proc_free(&p);
	assert_int_equal(lstat(inside, &st), -1);
	unlink(link);
	rmdir(real);
	lbt_broker_kill(&b); /* removes the directory */
}

static void test_symlinked_dir_refused_by_client(void **state)
{
	struct lbt_broker b, other;
	char link[PATH_MAX], sock[PATH_MAX];
	lbus *bus = NULL;

	(void)state;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	assert_int_equal(lbt_broker_make_dir(&other), 0);
	assert_int_equal(lbt_path(link, other.dir, "link"), 0);
	assert_int_equal(lbt_path(sock, link, "bus.sock"), 0);
	assert_int_equal(symlink(b.dir, link), 0);

	assert_int_equal(lbus_connect(&bus, sock), -ELOOP);
	assert_null(bus);
	assert_non_null(strstr(lbus_strerror(-ELOOP), "symbolic link"));
	assert_int_equal(lbus_connect(&bus, b.sock), 0); /* the real path works */
	lbus_close(bus);

	unlink(link);
	lbt_broker_kill(&other);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* The impostor (in a child, as IMPOSTOR_UID): listen on sock, accept
 * IMPOSTOR_CONNS connections, read what each sends within 500 ms, write
 * the byte counts to out. */
static _Noreturn void impostor(const char *sock, int ready, int out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint32_t got[IMPOSTOR_CONNS] = {0};
	int fd;

	if (setgid(IMPOSTOR_UID) < 0 || setuid(IMPOSTOR_UID) < 0)
		_exit(2);
	if (strlen(sock) >= sizeof(sa.sun_path))
		_exit(3);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		_exit(3);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	for (int i = 0; i < IMPOSTOR_CONNS; i++) {
		int c = accept(fd, NULL, NULL);
		struct pollfd pfd = {.fd = c, .events = POLLIN};
		char buf[256];
		ssize_t n;

		while (c >= 0 && poll(&pfd, 1, 500) == 1 && (n = read(c, buf, sizeof(buf))) > 0)
			got[i] += (uint32_t)n;
		if (c >= 0)
			close(c);
	}
	_exit(write(out, got, sizeof(got)) == (ssize_t)sizeof(got) ? 0 : 5);
}

static void test_impostor_of_another_uid_refused(void **state)
{
	struct lbt_broker b;
	char sock[PATH_MAX], c;
	int ready[2], out[2], status;
	uint32_t got[IMPOSTOR_CONNS];
	struct lbus_connect_opts any = LBUS_CONNECT_OPTS_INIT;
	lbus *bus = NULL;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root to run an impostor as uid %d\n", IMPOSTOR_UID);
		skip();
	}
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(chown(b.dir, IMPOSTOR_UID, IMPOSTOR_UID), 0);
	assert_int_equal(lbt_path(sock, b.dir, "bus.sock"), 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(out), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		impostor(sock, ready[1], out[1]);
	close(ready[1]);
	close(out[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);

	/* explicit path, then $LBUS_SOCKET: refused before anything is sent */
	assert_int_equal(lbus_connect(&bus, sock), -EPERM);
	setenv("LBUS_SOCKET", sock, 1);
	assert_int_equal(lbus_connect(&bus, NULL), -EPERM);
	unsetenv("LBUS_SOCKET");
	assert_null(bus);
	/* opted out (a system bus): the hello goes out; the impostor never
	 * answers it */
	any.timeout_ms = 300;
	any.any_broker_uid = true;
	assert_int_equal(lbus_connect_with(&bus, sock, &any), -ETIMEDOUT);

	assert_int_equal(read(out[0], got, sizeof(got)), (ssize_t)sizeof(got));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1], 0);
	assert_true(got[2] > 0);
	close(ready[0]);
	close(out[0]);
	lbt_broker_kill(&b); /* removes the directory */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_symlinked_dir_refused_by_broker),
	    cmocka_unit_test(test_symlinked_dir_refused_by_client),
	    cmocka_unit_test(test_impostor_of_another_uid_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
