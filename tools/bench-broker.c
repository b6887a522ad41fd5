/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: the private broker. lbusd is found (in this order) from
 * --lbusd, $LBUSD, the build tree (<dir of this executable>/../broker/lbusd),
 * the install directory (<dir of this executable>/lbusd), then PATH. Each
 * lbus run starts its own lbusd on <private dir>/bus.sock, so no run sees
 * the memory, queues or counters another run left behind, and stops it
 * afterwards with SIGTERM (SIGKILL if it does not exit within a few
 * seconds). The broker's stderr goes to <private dir>/lbusd.log; when it
 * fails to start, the last line of that log says why. It dies with
 * lbus-bench (PR_SET_PDEATHSIG), even if lbus-bench is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define START_TIMEOUT_NS 5000000000ull
#define STOP_TIMEOUT_NS 5000000000ull

static void sleep_10ms(void)
{
	struct timespec ts = {.tv_nsec = 10000000};

	nanosleep(&ts, NULL);
}

static bool executable_at(char *out, size_t len, const char *path)
{
	if (access(path, X_OK) != 0 || strlen(path) >= len)
		return false;
	memcpy(out, path, strlen(path) + 1);
	return true;
}

static bool find_next_to_self(char *out, size_t len)
{
	char self[PATH_MAX], cand[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	snprintf(cand, sizeof(cand), "%s/../broker/lbusd", self);
	if (executable_at(out, len, cand))
		return true;
	snprintf(cand, sizeof(cand), "%s/lbusd", self);
	return executable_at(out, len, cand);
}

static bool find_in_path(char *out, size_t len)
{
	const char *path = getenv("PATH");
	char cand[PATH_MAX + 8];

	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(cand, sizeof(cand), "%.*s/lbusd", (int)n, path);
		if (n && executable_at(out, len, cand))
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

int bench_broker_find(struct bench_broker *b, const char *opt)
{
	const char *env = getenv("LBUSD");

	memset(b, 0, sizeof(*b));
	if (opt)
		return executable_at(b->exe, sizeof(b->exe), opt) ? 0 : -ENOENT;
	if (env && *env)
		return executable_at(b->exe, sizeof(b->exe), env) ? 0 : -ENOENT;
	if (find_next_to_self(b->exe, sizeof(b->exe)) || find_in_path(b->exe, sizeof(b->exe)))
		return 0;
	return -ENOENT;
}

static _Noreturn void exec_broker(const struct bench_broker *b, int log_fd)
{
	int null_fd = open("/dev/null", O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (null_fd >= 0)
		dup2(null_fd, 0);
	dup2(log_fd, 1);
	dup2(log_fd, 2);
	/* -c /dev/null: the defaults, whatever the user's lbusd.conf says, so
	 * figures compare across machines and runs. */
	execl(b->exe, "lbusd", "-S", b->sock, "-c", b->config ? b->config : "/dev/null", (char *)NULL);
	dprintf(2, "lbus-bench: cannot run %s: %s\n", b->exe, strerror(errno));
	_exit(127);
}

/* The last line of the broker's log, for an error message. */
static void log_tail(const struct bench_broker *b, char *out, size_t len)
{
	char buf[1024] = "";
	int fd = open(b->log, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n = 0;
	char *line;

	if (fd >= 0) {
		size = lseek(fd, 0, SEEK_END);
		n = pread(fd, buf, sizeof(buf) - 1,
			  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	line = strrchr(buf, '\n');
	snprintf(out, len, "%s", line ? line + 1 : buf);
}

static bool accepts(const char *sock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		close(fd);
		return false;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int wait_accepting(struct bench_broker *b, struct bench_result *res)
{
	uint64_t limit = bench_now_ns() + START_TIMEOUT_NS;
	char tail[128];

	while (!accepts(b->sock)) {
		bool alive = bench_broker_alive(b);

		if (alive && bench_now_ns() <= limit && !bench_interrupted) {
			sleep_10ms();
			continue;
		}
		log_tail(b, tail, sizeof(tail));
		res->err = bench_interrupted ? -EINTR : alive ? -ETIMEDOUT : -ECHILD;
		snprintf(res->why, sizeof(res->why), "lbusd %s: %.100s",
			 alive ? "did not accept connections within 5 s" : "exited at start",
			 *tail ? tail : "(nothing in its log)");
		bench_broker_stop(b);
		return res->err;
	}
	return 0;
}

int bench_broker_start(struct bench_broker *b, const char *dir, struct bench_result *res)
{
	int log_fd;

	snprintf(b->sock, sizeof(b->sock), "%s/bus.sock", dir);
	snprintf(b->log, sizeof(b->log), "%s/lbusd.log", dir);
	if (strlen(b->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		res->err = -ENAMETOOLONG;
		snprintf(res->why, sizeof(res->why),
			 "socket path too long (set TMPDIR to a shorter directory)");
		return res->err;
	}
	log_fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		res->err = -errno;
		snprintf(res->why, sizeof(res->why), "cannot create lbusd.log: %s", strerror(errno));
		return res->err;
	}
	fflush(NULL);
	b->pid = fork();
	if (b->pid == 0)
		exec_broker(b, log_fd);
	close(log_fd);
	if (b->pid < 0) {
		res->err = -errno;
		b->pid = 0;
		snprintf(res->why, sizeof(res->why), "fork: %s", strerror(-res->err));
		return res->err;
	}
	return wait_accepting(b, res);
}

bool bench_broker_alive(struct bench_broker *b)
{
	int status;

	if (b->pid <= 0)
		return false;
	if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
		b->pid = -1;
		return false;
	}
	return true;
}

int bench_broker_stop(struct bench_broker *b)
{
	uint64_t limit = bench_now_ns() + STOP_TIMEOUT_NS;
	int status = 0;

	if (b->pid <= 0) { /* never started (0) or already gone (-1) */
		status = b->pid;
		b->pid = 0;
		return status < 0 ? -ECHILD : 0;
	}
	kill(b->pid, SIGTERM);
	while (waitpid(b->pid, &status, WNOHANG) == 0) {
		if (bench_now_ns() > limit) {
			kill(b->pid, SIGKILL);
			waitpid(b->pid, &status, 0);
			break;
		}
		sleep_10ms();
	}
	b->pid = 0;
	unlink(b->sock);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}
