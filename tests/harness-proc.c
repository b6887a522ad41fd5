/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness, part 2: child processes (the lbus CLI, a second
 * lbusd) with pipes on stdin, stdout and stderr.
 *
 * One pump (poll on the three pipes) serves every wait: it appends whatever
 * the child wrote to p->out / p->err and feeds pending stdin, so a child that
 * writes a lot while the test feeds it never deadlocks. Every wait has a
 * deadline; lbt_proc_wait() kills the child by PID when it passes.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (*len + n + 1 > nc)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static void child_exec(const char *const *argv, int in[2], int out[2], int err[2])
{
	dup2(in[0], 0);
	dup2(out[1], 1);
	dup2(err[1], 2);
	close_range(3, ~0u, 0);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execv(argv[0], (char *const *)argv);
	dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int lbt_proc_spawn(struct lbt_proc *p, const char *const *argv)
{
	int in[2], out[2], err[2];
	signal(SIGPIPE, SIG_IGN);
	memset(p, 0, sizeof(*p));
	p->in_fd = p->out_fd = p->err_fd = -1;
	p->exit_code = -1;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;
		close(in[0]);
		close(in[1]);
		return -e;
	}
	pid_t pid = fork();
	if (pid == 0)
		child_exec(argv, in, out, err);
	int e = errno;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	p->in_fd = in[1];
	p->out_fd = out[0];
	p->err_fd = err[0];
	if (pid < 0) {
		lbt_proc_free(p);
		return -e;
	}
	p->pid = pid;
	fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	/* out and err are "" (not NULL) even when the child prints nothing */
	if (buf_append(&p->out, &p->out_len, &p->out_cap, "", 0) < 0 ||
	    buf_append(&p->err, &p->err_len, &p->err_cap, "", 0) < 0)
		return -ENOMEM;
	return 0;
}

static int build_cli_argv(const char **argv, size_t max, const struct lbt_broker *b, const char *const *args)
{
	size_t n = 0;
	argv[n++] = lbt_cli_path();
	if (b) {
		argv[n++] = "-S";
		argv[n++] = b->sock;
	}
	for (size_t i = 0; args[i]; i++) {
		if (n + 1 >= max)
			return -E2BIG;
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return 0;
}

int lbt_cli_spawnv(struct lbt_proc *p, const struct lbt_broker *b, const char *const *args)
{
	const char *argv[64];
	int r = build_cli_argv(argv, 64, b, args);
	return r < 0 ? r : lbt_proc_spawn(p, argv);
}

/* Collect the NULL-terminated varargs after arg into args[max]. */
#define COLLECT_ARGS(args, max, arg)                                                                         \
	do {                                                                                                 \
		va_list ap;                                                                                  \
		size_t n_ = 0;                                                                               \
		va_start(ap, arg);                                                                           \
		for (const char *a_ = arg; a_ && n_ + 1 < (max); a_ = va_arg(ap, const char *))              \
			(args)[n_++] = a_;                                                                   \
		(args)[n_] = NULL;                                                                           \
		va_end(ap);                                                                                  \
	} while (0)

int lbt_cli_spawn(struct lbt_proc *p, const struct lbt_broker *b, const char *arg, ...)
{
	const char *args[60];
	COLLECT_ARGS(args, 60, arg);
	return lbt_cli_spawnv(p, b, args);
}

/* Read what one pipe has; EOF closes it. */
static void drain(int *fd, char **buf, size_t *len, size_t *cap)
{
	char tmp[65536];
	ssize_t n = read(*fd, tmp, sizeof(tmp));
	if (n > 0)
		buf_append(buf, len, cap, tmp, (size_t)n);
	else if (n == 0 || (errno != EINTR && errno != EAGAIN))
		close_fd(fd);
}

/*
 * One round: wait up to timeout_ms for any pipe, read what arrived, write as
 * much of *in as the pipe takes. Returns 0, or -EPIPE when stdin is closed
 * while input is pending.
 */
static int pump(struct lbt_proc *p, int timeout_ms, const uint8_t **in, size_t *in_len)
{
	struct pollfd pf[3] = {
	    {.fd = p->out_fd, .events = POLLIN},
	    {.fd = p->err_fd, .events = POLLIN},
	    {.fd = (in && *in_len) ? p->in_fd : -1, .events = POLLOUT},
	};
	if (poll(pf, 3, timeout_ms) < 0)
		return errno == EINTR ? 0 : -errno;
	if (pf[0].revents)
		drain(&p->out_fd, &p->out, &p->out_len, &p->out_cap);
	if (pf[1].revents)
		drain(&p->err_fd, &p->err, &p->err_len, &p->err_cap);
	if (pf[2].revents & (POLLERR | POLLHUP)) {
		close_fd(&p->in_fd);
		return -EPIPE;
	}
	if (pf[2].revents & POLLOUT) {
		ssize_t n = write(p->in_fd, *in, *in_len);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			close_fd(&p->in_fd);
			return -EPIPE;
		}
		if (n > 0) {
			*in += n;
			*in_len -= (size_t)n;
		}
	}
	return 0;
}

static int left_ms(int64_t deadline)
{
	int64_t l = deadline - lbt_now_ms();
	return l > 0 ? (int)l : 0;
}

int lbt_proc_write(struct lbt_proc *p, const void *data, size_t len, int timeout_ms)
{
	const uint8_t *in = data;
	int64_t deadline = lbt_now_ms() + timeout_ms;
	while (len) {
		if (p->in_fd < 0)
			return -EPIPE;
		if (lbt_now_ms() > deadline)
			return -ETIMEDOUT;
		int r = pump(p, left_ms(deadline), &in, &len);
		if (r < 0)
			return r;
	}
	return 0;
}

void lbt_proc_close_stdin(struct lbt_proc *p)
{
	close_fd(&p->in_fd);
}

/* Pump until done(p, arg) is true. 0, -ETIMEDOUT, or -EPIPE at stdout EOF. */
static int pump_until(struct lbt_proc *p, bool (*done)(struct lbt_proc *, const void *), const void *arg,
		      int timeout_ms)
{
	int64_t deadline = lbt_now_ms() + timeout_ms;
	for (;;) {
		if (done(p, arg))
			return 0;
		if (p->out_fd < 0)
			return -EPIPE;
		if (lbt_now_ms() >= deadline)
			return -ETIMEDOUT;
		pump(p, left_ms(deadline), NULL, NULL);
	}
}

struct find_arg {
	const char *needle;
	size_t from;
	long at;
};

static bool found_needle(struct lbt_proc *p, const void *arg)
{
	struct find_arg *f = (struct find_arg *)arg;
	if (f->from > p->out_len || !p->out)
		return false;
	const char *m = memmem(p->out + f->from, p->out_len - f->from, f->needle, strlen(f->needle));
	if (m)
		f->at = m - p->out;
	return m != NULL;
}

long lbt_proc_read_until(struct lbt_proc *p, const char *needle, size_t from, int timeout_ms)
{
	struct find_arg f = {needle, from, -1};
	int r = pump_until(p, found_needle, &f, timeout_ms);
	return r < 0 ? r : f.at;
}

static bool have_bytes(struct lbt_proc *p, const void *arg)
{
	return p->out_len >= *(const size_t *)arg;
}

int lbt_proc_read_bytes(struct lbt_proc *p, size_t n, int timeout_ms)
{
	return pump_until(p, have_bytes, &n, timeout_ms);
}

static bool have_lines(struct lbt_proc *p, const void *arg)
{
	size_t lines = 0;
	for (size_t i = 0; i < p->out_len; i++)
		lines += p->out[i] == '\n';
	return lines >= *(const size_t *)arg;
}

int lbt_proc_read_lines(struct lbt_proc *p, size_t n, int timeout_ms)
{
	return pump_until(p, have_lines, &n, timeout_ms);
}

static void set_exit(struct lbt_proc *p, int st)
{
	p->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	p->pid = 0;
}

bool lbt_proc_exited(struct lbt_proc *p)
{
	if (!p->pid)
		return true;
	pump(p, 0, NULL, NULL);
	int st;
	if (waitpid(p->pid, &st, WNOHANG) == p->pid)
		set_exit(p, st);
	return p->pid == 0;
}

void lbt_proc_signal(struct lbt_proc *p, int sig)
{
	if (p->pid)
		kill(p->pid, sig);
}

int lbt_proc_wait(struct lbt_proc *p, int timeout_ms)
{
	int64_t deadline = lbt_now_ms() + timeout_ms;
	close_fd(&p->in_fd);
	while ((p->out_fd >= 0 || p->err_fd >= 0) && lbt_now_ms() < deadline)
		pump(p, left_ms(deadline), NULL, NULL);
	while (p->pid && !lbt_proc_exited(p) && lbt_now_ms() < deadline) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	if (!p->pid)
		return 0;
	p->timed_out = true;
	kill(p->pid, SIGKILL);
	int st;
	if (waitpid(p->pid, &st, 0) == p->pid)
		set_exit(p, st);
	while (p->out_fd >= 0 || p->err_fd >= 0)
		pump(p, 100, NULL, NULL);
	return -ETIMEDOUT;
}

void lbt_proc_free(struct lbt_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	p->pid = 0;
	/* A memset-zeroed struct has fds 0 that were never ours: skip them. */
	if (p->out || p->err || p->in_fd || p->out_fd || p->err_fd) {
		close_fd(&p->in_fd);
		close_fd(&p->out_fd);
		close_fd(&p->err_fd);
	}
	free(p->out);
	free(p->err);
	p->out = p->err = NULL;
	p->out_len = p->err_len = p->out_cap = p->err_cap = 0;
}

int lbt_runv(const char *const *argv, const void *stdin_data, size_t stdin_len, int timeout_ms,
	     struct lbt_proc *res)
{
	int r = lbt_proc_spawn(res, argv);
	if (r < 0)
		return r;
	int64_t deadline = lbt_now_ms() + timeout_ms;
	if (stdin_len)
		lbt_proc_write(res, stdin_data, stdin_len, timeout_ms);
	r = lbt_proc_wait(res, left_ms(deadline));
	if (r < 0)
		fprintf(stderr, "harness: %s did not finish within %d ms (killed)\n", argv[0], timeout_ms);
	return r;
}

int lbt_cli_runv(const struct lbt_broker *b, const void *stdin_data, size_t stdin_len, int timeout_ms,
		 struct lbt_proc *res, const char *const *args)
{
	const char *argv[64];
	int r = build_cli_argv(argv, 64, b, args);
	if (r < 0)
		return r;
	return lbt_runv(argv, stdin_data, stdin_len, timeout_ms, res);
}

int lbt_cli_run(const struct lbt_broker *b, const void *stdin_data, size_t stdin_len, int timeout_ms,
		struct lbt_proc *res, const char *arg, ...)
{
	const char *args[60];
	COLLECT_ARGS(args, 60, arg);
	return lbt_cli_runv(b, stdin_data, stdin_len, timeout_ms, res, args);
}
