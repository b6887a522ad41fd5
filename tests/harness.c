/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness, part 1: the broker's lifecycle and small
 * resource helpers. Child processes live in harness-proc.c, raw protocol
 * connections in harness-raw.c, liblbus readiness probes in harness-probe.c;
 * harness.h documents the whole API.
 *
 * The broker runs in a fresh mkdtemp() directory with its stdout/stderr in
 * dir/lbusd.log, so a failing test can print what the broker said.
 *
 * Readiness is the broker's word, not a guess: lbusd speaks systemd's notify
 * protocol (broker/notify.c), so the harness binds a datagram socket in the
 * broker's directory, passes its path as NOTIFY_SOCKET and waits for
 * "READY=1", which lbusd sends once it listens. It waits on that socket and
 * on a pidfd of the child together, so a broker that exits early is seen at
 * once; there is no fallback: a broker that never says READY=1 fails the
 * start. ($LBUSD_WRAPPER keeps working: valgrind passes the environment on.)
 * Stop means SIGTERM then a bounded wait, checking the contract: exit status
 * 0 and the socket file removed.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t lbt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Does every directory above path let others through? */
static bool dirs_open_to_others(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	while ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		if (stat(dir, &st) < 0 || !(st.st_mode & S_IXOTH)) {
			fprintf(stderr,
				"skipped: %s is closed to other users (mode %o), so a client of another "
				"uid cannot run the programs under test\n",
				dir, (unsigned)(st.st_mode & 07777));
			return false;
		}
	}
	return true;
}

bool lbt_tree_open_to_others(void)
{
	return dirs_open_to_others(lbt_lbusd_path()) && dirs_open_to_others(lbt_cli_path());
}

int lbt_ms(int ms)
{
	const char *w = getenv("LBUSD_WRAPPER");
	return (w && *w) ? ms * 10 : ms;
}

static const char *required_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "harness: $%s is not set (run the tests with meson test)\n", name);
		abort();
	}
	return v;
}

const char *lbt_lbusd_path(void)
{
	return required_env("LBUSD");
}
const char *lbt_cli_path(void)
{
	return required_env("LBUS_CLI");
}

void lbt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Remove dir and everything below it (the tests create only small trees). */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		unlink(dir);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/*
 * Brokers not stopped yet. A failed cmocka assertion jumps out of a test
 * without reaching lbt_broker_stop(); at exit, whatever is left is killed and
 * its directory removed. (Children also get PR_SET_PDEATHSIG, for the case
 * where the test process itself dies.)
 */
#define MAX_LIVE 32
static struct {
	pid_t pid;
	char dir[PATH_MAX];
} live[MAX_LIVE];

static void cleanup_live(void)
{
	for (size_t i = 0; i < MAX_LIVE; i++) {
		if (live[i].pid > 0) {
			kill(live[i].pid, SIGKILL);
			waitpid(live[i].pid, NULL, 0);
		}
		if (live[i].dir[0])
			remove_tree(live[i].dir);
		live[i].pid = 0;
		live[i].dir[0] = '\0';
	}
}

/* Record dir as live, with its broker's pid (0: none running now). */
static void track(const char *dir, pid_t pid)
{
	static bool registered;
	if (!registered) {
		atexit(cleanup_live);
		registered = true;
	}
	size_t free_slot = MAX_LIVE;
	for (size_t i = 0; i < MAX_LIVE; i++) {
		if (live[i].dir[0] && !strcmp(live[i].dir, dir)) {
			live[i].pid = pid;
			return;
		}
		if (!live[i].dir[0] && free_slot == MAX_LIVE)
			free_slot = i;
	}
	if (free_slot < MAX_LIVE) {
		snprintf(live[free_slot].dir, PATH_MAX, "%s", dir);
		live[free_slot].pid = pid;
	}
}

/* Forget dir (removed, its broker reaped). */
static void untrack(const char *dir)
{
	for (size_t i = 0; i < MAX_LIVE; i++)
		if (live[i].dir[0] && !strcmp(live[i].dir, dir)) {
			live[i].pid = 0;
			live[i].dir[0] = '\0';
		}
}

char *lbt_broker_log(const struct lbt_broker *b)
{
	int fd = open(b->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static void dump_log(const struct lbt_broker *b)
{
	char *log = lbt_broker_log(b);
	fprintf(stderr, "---- lbusd log (%s) ----\n%s---- end of lbusd log ----\n", b->log, log ? log : "");
	free(log);
}

/* Split $LBUSD_WRAPPER into words (at most max-1), NULL-terminated. The
 * words point into a copy that the caller frees via *storage. */
static size_t wrapper_words(const char **words, size_t max, char **storage)
{
	const char *w = getenv("LBUSD_WRAPPER");
	size_t n = 0;
	*storage = NULL;
	if (w && *w) {
		*storage = strdup(w);
		char *save = NULL;
		for (char *t = strtok_r(*storage, " \t", &save); t && n + 1 < max;
		     t = strtok_r(NULL, " \t", &save))
			words[n++] = t;
	}
	words[n] = NULL;
	return n;
}

static void exec_broker(const struct lbt_broker *b, const struct lbt_broker_opts *o, char *const *envp)
{
	const char *argv[64];
	char *storage;
	size_t n = wrapper_words(argv, 32, &storage);
	argv[n++] = lbt_lbusd_path();
	if (!o->no_socket_arg) {
		argv[n++] = "-S";
		argv[n++] = b->sock;
	}
	for (size_t i = 0; o->extra_args && o->extra_args[i] && n < 63; i++)
		argv[n++] = o->extra_args[i];
	argv[n] = NULL;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int in = open("/dev/null", O_RDONLY);
	int log = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (in < 0 || log < 0)
		_exit(127);
	dup2(in, 0);
	dup2(log, 1);
	dup2(log, 2);
	close_range(3, ~0u, 0); /* nothing of the test's leaks into the broker */
	execvpe(argv[0], (char *const *)argv, envp);
	dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* The readiness socket: an AF_UNIX datagram socket bound at path (in the
 * broker's directory). Returns its fd or -errno. */
static int notify_open(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The environment of the broker: ours with NOTIFY_SOCKET=path. Built before
 * fork() (the child of a threaded test may not allocate). NULL on ENOMEM;
 * free the array and its last-but-one string (ours) with env_free(). */
static char **env_with_notify(const char *path)
{
	extern char **environ;
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	char *ours = malloc(strlen("NOTIFY_SOCKET=") + strlen(path) + 1);
	if (!env || !ours) {
		free(env);
		free(ours);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			env[k++] = environ[i];
	sprintf(ours, "NOTIFY_SOCKET=%s", path);
	env[k] = ours;
	return env;
}

static void env_free(char **env)
{
	size_t n = 0;
	if (!env)
		return;
	while (env[n])
		n++;
	free(env[n - 1]);
	free(env);
}

/* Did a datagram on the notify socket say READY=1? Reads them all. */
static bool notify_ready(int nfd)
{
	char msg[512];
	ssize_t n;
	bool ready = false;
	while ((n = recv(nfd, msg, sizeof(msg) - 1, 0)) >= 0) {
		msg[n] = '\0';
		for (char *save = NULL, *l = strtok_r(msg, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			if (!strcmp(l, "READY=1"))
				ready = true;
	}
	return ready;
}

/* Wait for READY=1 on nfd, or for the broker to exit, within lbt_ms(10000). */
static int wait_ready(struct lbt_broker *b, int nfd)
{
	int64_t deadline = lbt_now_ms() + lbt_ms(10000);
	int pidfd = pidfd_open(b->pid, 0); /* -1 on old kernels: then exits are seen every 20 ms */
	int ret = -ETIMEDOUT;
	for (;;) {
		if (notify_ready(nfd)) {
			ret = 0;
			break;
		}
		int st;
		if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
			fprintf(stderr, "harness: lbusd exited before it was ready (status 0x%x)\n", st);
			b->pid = 0;
			ret = -ECHILD;
			break;
		}
		int64_t left = deadline - lbt_now_ms();
		if (left <= 0)
			break;
		struct pollfd pf[2] = {{.fd = nfd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
		poll(pf, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? (int)left : (left < 20 ? (int)left : 20));
	}
	if (pidfd >= 0)
		close(pidfd);
	if (ret == -ETIMEDOUT)
		fprintf(stderr, "harness: lbusd did not send READY=1 within %d ms\n", lbt_ms(10000));
	return ret;
}

int lbt_broker_make_dir(struct lbt_broker *b)
{
	memset(b, 0, sizeof(*b));
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(b->dir, sizeof(b->dir), "%s/lbt-XXXXXX", tmp);
	if (!mkdtemp(b->dir)) {
		int e = errno;
		fprintf(stderr, "harness: mkdtemp %s: %s\n", b->dir, strerror(e));
		return -e;
	}
	track(b->dir, 0);
	return 0;
}

int lbt_broker_start_opts(struct lbt_broker *b, const struct lbt_broker_opts *o)
{
	signal(SIGPIPE, SIG_IGN);
	lbt_lbusd_path(); /* abort here, not in the child, when unset */
	if (!o->reuse_dir) {
		int r = lbt_broker_make_dir(b);
		if (r < 0)
			return r;
	}
	b->pid = 0;
	if (lbt_path(b->sock, b->dir, o->sock_name ? o->sock_name : "bus.sock") < 0 ||
	    lbt_path(b->log, b->dir, "lbusd.log") < 0)
		return -ENAMETOOLONG;

	char notify[PATH_MAX];
	if (lbt_path(notify, b->dir, "notify.sock") < 0)
		return -ENAMETOOLONG;
	unlink(notify); /* left by an earlier start in a reused dir */
	int nfd = notify_open(notify);
	char **env = nfd >= 0 ? env_with_notify(notify) : NULL;
	if (!env) {
		int e = nfd < 0 ? nfd : -ENOMEM;
		fprintf(stderr, "harness: readiness socket %s: %s\n", notify, strerror(-e));
		if (nfd >= 0)
			close(nfd);
		return e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(nfd);
		env_free(env);
		remove_tree(b->dir);
		return -e;
	}
	if (pid == 0)
		exec_broker(b, o, env);
	env_free(env);
	b->pid = pid;
	track(b->dir, pid);
	int r = wait_ready(b, nfd);
	close(nfd);
	unlink(notify); /* later notifications (STOPPING=1) go nowhere */
	if (r < 0) {
		dump_log(b);
		lbt_broker_kill(b);
	}
	return r;
}

int lbt_broker_start_config(struct lbt_broker *b, const char *config)
{
	char conf[PATH_MAX];
	int r = lbt_broker_make_dir(b);

	if (r < 0)
		return r;
	r = lbt_write_file(b->dir, "lbusd.conf", config, strlen(config), conf);
	if (r < 0)
		return r;
	const char *args[] = {"-c", conf, NULL};
	struct lbt_broker_opts o = {.extra_args = args, .reuse_dir = true};
	return lbt_broker_start_opts(b, &o);
}

int lbt_broker_start(struct lbt_broker *b, const char *const *extra_args)
{
	struct lbt_broker_opts o = {.extra_args = extra_args};
	return lbt_broker_start_opts(b, &o);
}

/* Start a broker for a cmocka test: config NULL for the defaults. */
static int setup_broker(void **state, const char *config)
{
	struct lbt_broker *b = calloc(1, sizeof(*b));
	if (!b)
		return -1;
	if ((config ? lbt_broker_start_config(b, config) : lbt_broker_start(b, NULL)) != 0) {
		free(b);
		return -1;
	}
	*state = b;
	return 0;
}

int lbt_setup(void **state)
{
	return setup_broker(state, NULL);
}

int lbt_setup_config(void **state, const char *config)
{
	return setup_broker(state, config);
}

int lbt_teardown(void **state)
{
	struct lbt_broker *b = *state;
	int ret = lbt_broker_stop(b);
	free(b);
	*state = NULL;
	return ret == 0 ? 0 : -1;
}

/* Reap pid within timeout_ms. Returns the exit code (128+sig if signalled)
 * or -ETIMEDOUT. */
static int reap(pid_t pid, int timeout_ms)
{
	int64_t deadline = lbt_now_ms() + timeout_ms;
	int delay = 1;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -errno;
		if (lbt_now_ms() >= deadline)
			return -ETIMEDOUT;
		lbt_sleep_ms(delay);
		if (delay < 20)
			delay *= 2;
	}
}

int lbt_broker_wait_exit(struct lbt_broker *b, int timeout_ms)
{
	if (!b->pid)
		return -ECHILD;
	int code = reap(b->pid, timeout_ms);
	if (code >= 0) {
		b->pid = 0;
		track(b->dir, 0);
	}
	return code;
}

/*
 * Descriptors the broker left open at exit, as valgrind --track-fds=yes
 * reports them in its log ("Open file descriptor N: ..."), not counting
 * those it inherited (stdio, a socket-activation listener): every one it
 * opened itself must be closed by a clean exit, or it leaked one.
 */
static int leaked_fds_in_log(const struct lbt_broker *b)
{
	char *log = lbt_broker_log(b);
	int n = 0;

	for (char *p = log; p && (p = strstr(p, "Open file descriptor ")) != NULL;) {
		char *next = strchr(p, '\n'), *end;

		if (!next) {
			n++;
			break;
		}
		p = next + 1;
		end = strchrnul(p, '\n');
		if (!memmem(p, (size_t)(end - p), "<inherited from parent>", 23))
			n++;
	}
	free(log);
	return n;
}

int lbt_broker_stop(struct lbt_broker *b)
{
	int ret = 0;
	if (b->pid) {
		kill(b->pid, SIGTERM);
		int code = reap(b->pid, lbt_ms(10000));
		if (code == -ETIMEDOUT) {
			fprintf(stderr, "harness: lbusd did not exit within %d ms of SIGTERM\n",
				lbt_ms(10000));
			kill(b->pid, SIGKILL);
			reap(b->pid, 5000);
			ret = -ETIMEDOUT;
		} else if (code != 0) {
			fprintf(stderr, "harness: lbusd exited with status %d after SIGTERM (want 0)\n",
				code);
			ret = -ECHILD;
		}
		b->pid = 0;
	}
	struct stat st;
	if (ret == 0 && lstat(b->sock, &st) == 0) {
		fprintf(stderr, "harness: lbusd left its socket %s behind\n", b->sock);
		ret = -EEXIST;
	}
	int leaked = ret == 0 ? leaked_fds_in_log(b) : 0;
	if (leaked > 0) {
		fprintf(stderr, "harness: lbusd left %d descriptors open at exit (valgrind --track-fds)\n",
			leaked);
		ret = -EBADF;
	}
	if (ret < 0)
		dump_log(b);
	if (b->dir[0]) {
		remove_tree(b->dir);
		untrack(b->dir);
	}
	b->dir[0] = '\0';
	return ret;
}

void lbt_broker_kill(struct lbt_broker *b)
{
	if (b->pid) {
		kill(b->pid, SIGKILL);
		reap(b->pid, 5000);
		b->pid = 0;
	}
	if (b->dir[0]) {
		remove_tree(b->dir);
		untrack(b->dir);
	}
	b->dir[0] = '\0';
}

long lbt_broker_rss_kib(const struct lbt_broker *b)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)b->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[256];
	long kib = -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

bool lbt_broker_alive(const struct lbt_broker *b)
{
	static pid_t reported;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)b->pid);
	FILE *f = b->pid ? fopen(path, "re") : NULL;
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *close_paren = strrchr(buf, ')');
	bool alive = close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z';
	if (!alive && b->pid && reported != b->pid) {
		reported = b->pid;
		fprintf(stderr, "harness: lbusd (pid %d) has died\n", (int)b->pid);
		dump_log(b);
	}
	return alive;
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int lbt_broker_fd_count(const struct lbt_broker *b)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)b->pid);
	return count_dir(path);
}

int lbt_broker_wait_fds(const struct lbt_broker *b, int n, int timeout_ms)
{
	int64_t deadline = lbt_now_ms() + timeout_ms;
	int have;
	while ((have = lbt_broker_fd_count(b)) > n && lbt_now_ms() < deadline)
		lbt_sleep_ms(2);
	return have;
}

int lbt_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

int lbt_unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int lbt_fd_count(void)
{
	int n = count_dir("/proc/self/fd");
	return n < 0 ? n : n - 1; /* the directory stream's own fd */
}

void lbt_fill_random(void *buf, size_t n, uint32_t seed)
{
	uint8_t *p = buf;
	uint32_t x = seed ? seed : 0x9e3779b9u;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

int lbt_write_file(const char *dir, const char *name, const void *data, size_t len, char *path_out)
{
	if (lbt_path(path_out, dir, name) < 0)
		return -ENAMETOOLONG;
	int fd = open(path_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	const uint8_t *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
	return 0;
}
