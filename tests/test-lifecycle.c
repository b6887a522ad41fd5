/* SPDX-License-Identifier: MIT */
/*
 * The broker's life as a user sees it: where its socket appears and with
 * which permissions (also when found through $LBUS_SOCKET or
 * $XDG_RUNTIME_DIR), what happens when a second broker, a stale socket or a
 * user's file is in the way, a socket directory that others control, a
 * socket another user's broker holds, clean exit on SIGTERM/SIGINT (flushing what is
 * queued), many clients, running out of descriptors without spinning, and a
 * subscriber that dies (SIGKILL) in the middle of a flood without harming
 * anybody else.
 *
 * Every test starts its own lbusd in a fresh temporary directory
 * (tests/harness.h) and stops it, checking exit status 0 and that the socket
 * file is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode;
}

/* Socket 0600 in a directory the broker creates with 0700, even when the
 * broker is started with a permissive umask. */
static void test_socket_and_dir_modes(void **state)
{
	struct lbt_broker b;
	struct lbt_broker_opts o = {.sock_name = "lbus/bus.sock"};
	mode_t old = umask(0);
	int r = lbt_broker_start_opts(&b, &o);
	umask(old);
	assert_int_equal(r, 0);

	char dir[PATH_MAX];
	assert_int_equal(lbt_path(dir, b.dir, "lbus"), 0);
	mode_t dm = mode_of(dir), sm = mode_of(b.sock);
	assert_true(S_ISDIR(dm));
	assert_int_equal(dm & 07777, 0700);
	assert_true(S_ISSOCK(sm));
	assert_int_equal(sm & 07777, 0600);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "modes"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* An existing directory is the user's: the broker puts its socket there
 * without changing the directory's mode (think `lbusd -S ./bus.sock`, or
 * root running `lbusd -S /tmp/bus.sock`). */
static void test_existing_dir_mode_untouched(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(chmod(b.dir, 0750), 0);
	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	assert_int_equal(mode_of(b.dir) & 07777, 0750);
	assert_int_equal(mode_of(b.sock) & 07777, 0600);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* A second lbusd on the same path exits non-zero with a message naming the
 * problem; the first keeps its socket and keeps working. */
static void test_second_broker_refused(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	const char *argv[] = {lbt_lbusd_path(), "-S", b.sock, NULL};
	struct lbt_proc p;
	assert_int_equal(lbt_runv(argv, NULL, 0, lbt_ms(5000), &p), 0);
	assert_int_not_equal(p.exit_code, 0);
	assert_true(p.exit_code < 128); /* a clean refusal, not a crash */
	assert_true(p.err_len > 0);
	fprintf(stderr, "second broker said: %s", p.err);
	assert_non_null(strstr(p.err, b.sock));
	lbt_proc_free(&p);

	assert_true(S_ISSOCK(mode_of(b.sock)));
	assert_int_equal(lbt_pubsub_roundtrip(&b, "still/first"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* Run "lbusd -S path" to completion; as uid/gid 65534 (through setpriv)
 * when as_nobody. *p must be freed with lbt_proc_free(). */
static void run_lbusd(const char *path, bool as_nobody, struct lbt_proc *p)
{
	const char *plain[] = {lbt_lbusd_path(), "-S", path, NULL};
	const char *nobody[] = {"/usr/bin/setpriv",
				"--reuid=65534",
				"--regid=65534",
				"--clear-groups",
				lbt_lbusd_path(),
				"-S",
				path,
				NULL};
	assert_int_equal(lbt_runv(as_nobody ? nobody : plain, NULL, 0, lbt_ms(5000), p), 0);
	fprintf(stderr, "lbusd said: %s", p->err);
}

static bool can_switch_uid(void)
{
	if (geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0)
		return lbt_tree_open_to_others();
	fprintf(stderr, "skipped: needs root and /usr/bin/setpriv to run lbusd as uid 65534\n");
	return false;
}

/* lbusd on b's directory must refuse to start, naming the directory and
 * saying why (why_text), and create no socket there. */
static void expect_dir_refused(const struct lbt_broker *b, const char *why_text)
{
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, b->dir, "bus.sock"), 0);
	struct lbt_proc p;
	run_lbusd(path, false, &p);
	assert_true(p.exit_code > 0 && p.exit_code < 128);
	assert_non_null(strstr(p.err, b->dir));
	assert_non_null(strstr(p.err, why_text));
	lbt_proc_free(&p);
	struct stat st;
	assert_int_equal(lstat(path, &st), -1);
}

/* The directory of the socket must be trustworthy: a directory writable by
 * others without the sticky bit is refused (anybody could swap the socket),
 * while a sticky one (like /tmp) is fine. */
static void test_writable_dir_refused(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(chmod(b.dir, 0777), 0);
	expect_dir_refused(&b, "refusing");

	assert_int_equal(chmod(b.dir, 01777), 0); /* sticky: accepted */
	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "sticky/dir"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* A directory that another user owns (say, one pre-created as /tmp/lbus-0)
 * is refused: its owner could replace the socket. Needs root to chown. */
static void test_foreign_dir_refused(void **state)
{
	if (!can_switch_uid())
		skip();
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(chown(b.dir, 65534, 65534), 0);
	assert_int_equal(chmod(b.dir, 0755), 0);
	expect_dir_refused(&b, "65534");
	lbt_broker_kill(&b); /* removes the directory */
}

/* A socket we cannot connect to for another reason than "nobody listens"
 * (here EACCES: root's broker, 0600, probed by uid 65534 in a sticky
 * directory) is not stale: the second broker refuses to start, says why,
 * and leaves the live socket and its broker alone. */
static void test_unreachable_socket_not_replaced(void **state)
{
	if (!can_switch_uid())
		skip();
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	assert_int_equal(chmod(b.dir, 01777), 0);
	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	struct stat before, after;
	assert_int_equal(lstat(b.sock, &before), 0);

	struct lbt_proc p;
	run_lbusd(b.sock, true, &p);
	assert_true(p.exit_code > 0 && p.exit_code < 128);
	assert_non_null(strstr(p.err, b.sock));
	assert_non_null(strstr(p.err, "Permission denied"));
	assert_null(strstr(p.err, "stale"));
	lbt_proc_free(&p);

	assert_int_equal(lstat(b.sock, &after), 0);
	assert_true(S_ISSOCK(after.st_mode));
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_uid, 0);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "still/first"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* A bad value in the config file: the broker refuses to start and says
 * which values are valid, not only that this one is not. */
static void test_config_bad_value_says_range(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	char cfg[PATH_MAX], path[PATH_MAX];
	static const char text[] = "# limits\nmax_frame = 1000\n";
	assert_int_equal(lbt_write_file(b.dir, "lbusd.conf", text, sizeof(text) - 1, cfg), 0);
	assert_int_equal(lbt_path(path, b.dir, "bus.sock"), 0);
	const char *argv[] = {lbt_lbusd_path(), "-S", path, "-c", cfg, NULL};
	struct lbt_proc p;
	assert_int_equal(lbt_runv(argv, NULL, 0, lbt_ms(5000), &p), 0);
	fprintf(stderr, "lbusd said: %s", p.err);
	assert_true(p.exit_code > 0 && p.exit_code < 128);
	assert_non_null(strstr(p.err, ":2: "));
	assert_non_null(strstr(p.err, "max_frame"));
	assert_non_null(strstr(p.err, "4096"));
	assert_non_null(strstr(p.err, "1073741824"));
	lbt_proc_free(&p);
	lbt_broker_kill(&b); /* removes the directory */
}

/* The child of test_fallback_path_foreign_broker, in a mount namespace of
 * its own with a fresh tmpfs on /tmp (the real /tmp is never touched).
 * Returns its exit code: 0 passed, 77 cannot set up the namespace (skip),
 * else the step that failed. */
/* Read all of path into a new buffer (*len bytes); NULL on failure. */
static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		*len = 0;
		while (*len < (size_t)st.st_size) {
			ssize_t n = read(fd, buf + *len, (size_t)st.st_size - *len);
			if (n <= 0)
				break;
			*len += (size_t)n;
		}
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

static int fallback_child(void)
{
	static const char dir[] = "/tmp/lbus-0", sock[] = "/tmp/lbus-0/bus.sock", exe[] = "/tmp/lbusd";
	struct lbt_proc p = {0};
	struct stat st;
	lbus *bus = NULL;
	size_t exe_len = 0;
	char *exe_data = slurp(lbt_lbusd_path(), &exe_len);
	int code = 0, r, fd;

	/* The broker may be built under /tmp, which the private tmpfs hides:
	 * run a copy of it from there. */
	if (!exe_data)
		return 1;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("lbt-tmp", "/tmp", "tmpfs", 0, "mode=1777") < 0)
		return 77;
	fd = open(exe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (fd < 0 || write(fd, exe_data, exe_len) != (ssize_t)exe_len || close(fd) < 0)
		return 1;
	free(exe_data);
	/* An attacker (uid 65534) got to /tmp/lbus-0 first and runs a broker. */
	if (mkdir(dir, 0755) < 0 || chown(dir, 65534, 65534) < 0)
		return 2;
	const char *argv[] = {
	    "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "-S", sock, NULL};
	if (lbt_proc_spawn(&p, argv) < 0)
		return 3;
	for (int64_t until = lbt_now_ms() + lbt_ms(5000); lstat(sock, &st) < 0 && lbt_now_ms() < until;)
		lbt_sleep_ms(10);
	unsetenv("LBUS_SOCKET");
	unsetenv("XDG_RUNTIME_DIR");
	r = lbus_connect(&bus, NULL); /* resolves to the fallback */
	if (r != -EPERM) {
		fprintf(stderr, "lbus_connect(NULL) at the fallback: %d (%s), want -EPERM\n", r,
			lbus_strerror(r));
		code = 4;
	}
	lbus_close(bus);
	bus = NULL;
	/* Given explicitly, the path is checked the same way (issue 7); */
	r = lbus_connect(&bus, sock);
	if (code == 0 && r != -EPERM) {
		fprintf(stderr, "lbus_connect(explicit): %d (%s), want -EPERM\n", r, lbus_strerror(r));
		code = 6;
	}
	lbus_close(bus);
	bus = NULL;
	/* trusted only with the opt-out (a system bus): then the broker itself
	 * answers (and admits root, whom no broker may lock out: lbusd.conf(5)). */
	struct lbus_connect_opts any = LBUS_CONNECT_OPTS_INIT;
	any.any_broker_uid = true;
	r = lbus_connect_with(&bus, sock, &any);
	if (code == 0 && r != 0) {
		fprintf(stderr,
			"lbus_connect(explicit, any_broker_uid): %d (%s), want 0 (root is admitted)\n", r,
			lbus_strerror(r));
		code = 5;
	}
	lbus_close(bus);
	lbt_proc_free(&p); /* kills the broker */
	return code;
}

/* A client that resolved the default path to its last fallback,
 * /tmp/lbus-$UID/bus.sock (a directory anybody could create first), refuses
 * a broker running as another user (-EPERM) before sending anything; so
 * does one given the path explicitly, unless it opts out with
 * lbus_connect_opts.any_broker_uid. Needs root (another uid, a private
 * mount namespace). */
static void test_fallback_path_foreign_broker(void **state)
{
	if (!can_switch_uid())
		skip();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fallback_child());
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "skipped: cannot make a private /tmp (mount namespace)\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Leave a socket file behind with nobody listening, as a crashed broker does. */
static void make_stale_socket(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	close(fd);
	assert_true(S_ISSOCK(mode_of(path)));
}

static void test_stale_socket_replaced(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, b.dir, "bus.sock"), 0);
	make_stale_socket(path);

	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "stale/replaced"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* Something that is not a socket at the path is the user's file: the broker
 * refuses to start and leaves it alone. */
static void test_regular_file_not_replaced(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	char path[PATH_MAX];
	assert_int_equal(lbt_write_file(b.dir, "bus.sock", "precious", 8, path), 0);
	const char *argv[] = {lbt_lbusd_path(), "-S", path, NULL};
	struct lbt_proc p;
	assert_int_equal(lbt_runv(argv, NULL, 0, lbt_ms(5000), &p), 0);
	assert_true(p.exit_code > 0 && p.exit_code < 128);
	assert_non_null(strstr(p.err, path));
	lbt_proc_free(&p);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 8);
	lbt_broker_kill(&b); /* removes the directory */
}

/* After a SIGKILLed broker, a new broker takes over its stale socket. */
static void test_restart_after_crash(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	kill(b.pid, SIGKILL);
	assert_int_equal(lbt_broker_wait_exit(&b, lbt_ms(5000)), 128 + SIGKILL);
	assert_true(S_ISSOCK(mode_of(b.sock))); /* left behind by the crash */

	struct lbt_broker_opts o = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "after/crash"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void on_nothing(lbus *bus, const struct lbus_msg *m, void *ud) {}

static void on_count(lbus *bus, const struct lbus_msg *m, void *ud)
{
	++*(int *)ud;
}

/* SIGTERM and SIGINT: exit 0 and the socket file removed, also with
 * clients connected. */
static void stop_with_signal(int sig)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *bus;
	assert_int_equal(lbt_connect(&b, &bus), 0);
	assert_true(lbus_subscribe(bus, "x/#", on_nothing, NULL, NULL, NULL) == 0);
	kill(b.pid, sig);
	assert_int_equal(lbt_broker_wait_exit(&b, lbt_ms(10000)), 0);
	struct stat st;
	assert_int_equal(lstat(b.sock, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* The client notices the broker is gone instead of hanging. */
	int r = lbus_run(bus, lbt_ms(5000));
	assert_true(r < 0);
	lbus_close(bus);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

static void test_sigterm_clean_exit(void **state)
{
	stop_with_signal(SIGTERM);
}

/* SIGTERM flushes what is queued: a subscriber that had not read yet still
 * receives every message published before the signal, then the end. */
static void test_sigterm_flushes_queues(void **state)
{
	enum { N = 20000 };
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *sub, *pub;
	int got = 0;
	assert_int_equal(lbt_connect(&b, &sub), 0);
	assert_int_equal(lbt_connect(&b, &pub), 0);
	assert_true(lbus_subscribe(sub, "drain", on_count, &got, NULL, NULL) == 0);
	char payload[100];
	memset(payload, 'd', sizeof(payload));
	for (int i = 0; i < N; i++)
		assert_int_equal(lbus_publish(pub, "drain", payload, sizeof(payload), 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(10000)), 0); /* all 2 MB queued for sub */
	lbus_close(pub);
	kill(b.pid, SIGTERM);
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	int r = 0;
	while (r == 0 && lbt_now_ms() < deadline)
		r = lbus_run(sub, 100); /* until the broker hangs up */
	assert_true(r < 0);
	assert_int_equal(got, N);
	lbus_close(sub);
	assert_int_equal(lbt_broker_wait_exit(&b, lbt_ms(10000)), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}
static void test_sigint_clean_exit(void **state)
{
	stop_with_signal(SIGINT);
}

/* Socket path from $LBUS_SOCKET, then $XDG_RUNTIME_DIR/lbus/bus.sock, for the
 * broker and for the CLI alike (no -S anywhere). */
static void test_socket_from_environment(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, b.dir, "env.sock"), 0);
	setenv("LBUS_SOCKET", path, 1);
	setenv("XDG_RUNTIME_DIR", "/nonexistent-lbt", 1);
	struct lbt_broker_opts o = {.sock_name = "env.sock", .no_socket_arg = true, .reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);

	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(NULL, NULL, 0, lbt_ms(5000), &p, "pub", "env/t", "x", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	lbt_proc_free(&p);
	assert_int_equal(lbt_broker_stop(&b), 0);

	/* Now XDG_RUNTIME_DIR: the broker creates $XDG_RUNTIME_DIR/lbus/. */
	assert_int_equal(lbt_broker_make_dir(&b), 0);
	unsetenv("LBUS_SOCKET");
	setenv("XDG_RUNTIME_DIR", b.dir, 1);
	o.sock_name = "lbus/bus.sock";
	assert_int_equal(lbt_broker_start_opts(&b, &o), 0);
	assert_int_equal(mode_of(b.sock) & 07777, 0600);
	assert_int_equal(lbt_cli_run(NULL, NULL, 0, lbt_ms(5000), &p, "pub", "xdg/t", "x", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	lbt_proc_free(&p);
	assert_int_equal(lbt_broker_stop(&b), 0);
	unsetenv("XDG_RUNTIME_DIR");
}

/* ---- many clients, and more than the broker may open ------------------------- */

/* Two hundred clients at once all receive a publish; once they are gone the
 * broker holds no descriptor for them. */
static void test_many_clients(void **state)
{
	enum { N = 200 };
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	int fds = lbt_broker_fd_count(&b);
	lbus *c[N];
	int got[N];
	memset(got, 0, sizeof(got));
	for (int i = 0; i < N; i++) {
		assert_int_equal(lbt_connect(&b, &c[i]), 0);
		assert_true(lbus_subscribe(c[i], "all", on_count, &got[i], NULL, NULL) == 0);
	}
	/* (fds may still count the socket lbusd sent READY=1 with.) */
	int now = lbt_broker_fd_count(&b);
	if (now < N + 3)
		fail_msg("broker has %d descriptors for %d clients", now, N);
	lbus *pub;
	assert_int_equal(lbt_connect(&b, &pub), 0);
	assert_int_equal(lbus_publish(pub, "all", "hi", 2, 0), 0);
	assert_int_equal(lbus_sync(pub, lbt_ms(5000)), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(lbus_sync(c[i], lbt_ms(5000)), 0);
		assert_int_equal(got[i], 1);
		lbus_close(c[i]);
	}
	lbus_close(pub);
	assert_true(lbt_broker_wait_fds(&b, fds, lbt_ms(5000)) <= fds);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* CPU time (user + system, clock ticks) the process has used. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* after the command name */
	assert_non_null(p);
	unsigned long ut, st;
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
	return (long)(ut + st);
}

/* Out of descriptors (EMFILE on accept): the broker does not spin, and it
 * serves again once descriptors are free. */
static void test_emfile_no_busy_loop(void **state)
{
	const char *w = getenv("LBUSD_WRAPPER");
	if (w && *w)
		skip(); /* valgrind needs descriptors of its own */
	struct rlimit old, low = {.rlim_cur = 40, .rlim_max = 0};
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0); /* inherited by lbusd */
	struct lbt_broker b;
	int r = lbt_broker_start(&b, NULL);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(r, 0);

	enum { N = 80 };
	int fd[N];
	for (int i = 0; i < N; i++) {
		fd[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		assert_true(fd[i] >= 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		memcpy(sa.sun_path, b.sock, strlen(b.sock) + 1);
		connect(fd[i], (struct sockaddr *)&sa, sizeof(sa)); /* may fail once the backlog is full */
	}
	/* The broker reaches its limit (a descriptor may be held in reserve). */
	int64_t until = lbt_now_ms() + lbt_ms(5000);
	while (lbt_broker_fd_count(&b) < 38 && lbt_now_ms() < until)
		lbt_sleep_ms(5);
	assert_true(lbt_broker_fd_count(&b) >= 38);
	long t0 = cpu_ticks(b.pid);
	int64_t m0 = lbt_now_ms();
	lbt_sleep_ms(500); /* measuring idleness: nothing to wait for */
	long used = cpu_ticks(b.pid) - t0;
	long wall = (long)(lbt_now_ms() - m0);
	fprintf(stderr, "broker used %ld ticks of CPU in %ld ms at EMFILE\n", used, wall);
	assert_true(used * 1000 / sysconf(_SC_CLK_TCK) < wall / 5); /* under 20% of a core */
	for (int i = 0; i < N; i++)
		close(fd[i]);
	int64_t deadline = lbt_now_ms() + lbt_ms(5000);
	while (lbt_pubsub_roundtrip(&b, "after/emfile") != 0 && lbt_now_ms() < deadline)
		lbt_sleep_ms(50);
	assert_int_equal(lbt_pubsub_roundtrip(&b, "after/emfile"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

/* ---- a subscriber killed while a publisher floods ---------------------------- */

#define FLOOD_N 100000
#define FLOOD_SIZE 200

struct flood {
	const struct lbt_broker *b;
	int result;
};

static void *flood_publisher(void *arg)
{
	struct flood *f = arg;
	lbus *bus;
	f->result = lbt_connect(f->b, &bus);
	if (f->result < 0)
		return NULL;
	uint8_t payload[FLOOD_SIZE];
	memset(payload, 'p', sizeof(payload));
	for (uint32_t i = 0; i < FLOOD_N && f->result == 0; i++) {
		memcpy(payload, &i, sizeof(i));
		f->result = lbus_publish(bus, "flood", payload, sizeof(payload), 0);
	}
	if (f->result == 0)
		f->result = lbus_flush(bus, lbt_ms(60000));
	if (f->result == 0)
		f->result = lbus_sync(bus, lbt_ms(60000));
	lbus_close(bus);
	return NULL;
}

struct counter {
	uint32_t next;
	uint32_t bad;
};

static void on_flood(lbus *bus, const struct lbus_msg *m, void *ud)
{
	struct counter *c = ud;
	uint32_t seq = UINT32_MAX;
	if (m->len == FLOOD_SIZE)
		memcpy(&seq, m->data, sizeof(seq));
	if (seq != c->next || m->missed)
		c->bad++;
	c->next++;
}

/* A child that subscribes with the block policy and then never reads. */
static pid_t start_stuck_subscriber(const struct lbt_broker *b)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lbus *bus;
		struct lbus_sub_opts so = {.size = sizeof(struct lbus_sub_opts), .policy = LBUS_POLICY_BLOCK};
		if (lbus_connect(&bus, b->sock) < 0 ||
		    lbus_subscribe(bus, "flood", on_flood, NULL, &so, NULL) < 0)
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
	char c;
	assert_int_equal(poll(&pf, 1, lbt_ms(5000)), 1);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	return pid;
}

static void test_subscriber_killed_during_flood(void **state)
{
	struct lbt_broker b;
	assert_int_equal(lbt_broker_start(&b, NULL), 0);
	lbus *sub;
	struct counter c = {0};
	struct lbus_sub_opts so = {.size = sizeof(struct lbus_sub_opts), .policy = LBUS_POLICY_BLOCK};
	assert_int_equal(lbt_connect(&b, &sub), 0);
	assert_true(lbus_subscribe(sub, "flood", on_flood, &c, &so, NULL) == 0);
	pid_t stuck = start_stuck_subscriber(&b);

	struct flood f = {.b = &b};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flood_publisher, &f), 0);

	/* Kill the stuck subscriber once the flow has stalled on it (no progress
	 * for 300 ms: its queue is full and the block policy holds the publisher
	 * back), or, should it never stall, once 90% has arrived. */
	int64_t deadline = lbt_now_ms() + lbt_ms(60000), last_progress = lbt_now_ms();
	uint32_t seen = 0;
	bool killed = false;
	while (c.next < FLOOD_N && lbt_now_ms() < deadline) {
		assert_int_equal(lbus_run(sub, 20), 0);
		if (c.next != seen) {
			seen = c.next;
			last_progress = lbt_now_ms();
		}
		bool stalled = lbt_now_ms() - last_progress > lbt_ms(300);
		if (!killed && (stalled || c.next >= FLOOD_N / 10 * 9)) {
			fprintf(stderr, "killing the stuck subscriber after %u deliveries (%s)\n", c.next,
				stalled ? "the flow stalled" : "90% arrived");
			kill(stuck, SIGKILL);
			assert_int_equal(waitpid(stuck, NULL, 0), stuck);
			killed = true;
		}
	}
	if (!killed) {
		kill(stuck, SIGKILL);
		waitpid(stuck, NULL, 0);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(f.result, 0);
	assert_int_equal(c.next, FLOOD_N);
	assert_int_equal(c.bad, 0);
	lbus_close(sub);

	assert_int_equal(lbt_pubsub_roundtrip(&b, "after/flood"), 0);
	assert_int_equal(lbt_broker_stop(&b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_socket_and_dir_modes),
	    cmocka_unit_test(test_existing_dir_mode_untouched),
	    cmocka_unit_test(test_second_broker_refused),
	    cmocka_unit_test(test_stale_socket_replaced),
	    cmocka_unit_test(test_writable_dir_refused),
	    cmocka_unit_test(test_foreign_dir_refused),
	    cmocka_unit_test(test_unreachable_socket_not_replaced),
	    cmocka_unit_test(test_fallback_path_foreign_broker),
	    cmocka_unit_test(test_regular_file_not_replaced),
	    cmocka_unit_test(test_config_bad_value_says_range),
	    cmocka_unit_test(test_restart_after_crash),
	    cmocka_unit_test(test_sigterm_clean_exit),
	    cmocka_unit_test(test_sigint_clean_exit),
	    cmocka_unit_test(test_sigterm_flushes_queues),
	    cmocka_unit_test(test_socket_from_environment),
	    cmocka_unit_test(test_many_clients),
	    cmocka_unit_test(test_emfile_no_busy_loop),
	    cmocka_unit_test(test_subscriber_killed_during_flood),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
