/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: a group of forked client processes for one run.
 *
 * The parent creates a group (a shared anonymous mapping of result slots
 * and two pipes), forks the children, waits until each has written one
 * byte on the ready pipe ('R' ready, 'E' failed), then closes the write
 * end of the go pipe: every child blocked reading it sees EOF at the same
 * moment, and the parent notes that time as the start of the clock. So
 * subscribers are subscribed before any publisher starts, and nobody polls.
 *
 * Each run has a time limit. At the deadline the parent raises the shared
 * stop flag (children that check it wind up and report what they got),
 * waits a short grace period, then kills what is left; the slots keep the
 * progress the children had published, so a run that overran still
 * reports its partial figures. Children die with the parent
 * (PR_SET_PDEATHSIG) and get the default SIGINT/SIGTERM actions back.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define GRACE_NS 2000000000ull /* after the stop flag, before SIGKILL */
#define POLL_SLICE_MS 5

int bench_group_init(struct bench_group *g, unsigned time_limit_s)
{
	memset(g, 0, sizeof(*g));
	g->ready[0] = g->ready[1] = g->go[0] = g->go[1] = -1;
	g->shared = mmap(NULL, sizeof(*g->shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g->shared == MAP_FAILED) {
		g->shared = NULL;
		return -errno;
	}
	if (pipe2(g->ready, O_CLOEXEC) < 0 || pipe2(g->go, O_CLOEXEC) < 0)
		return -errno;
	g->deadline_ns = bench_now_ns() + (uint64_t)time_limit_s * 1000000000u;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static double own_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static _Noreturn void child_main(struct bench_group *g, bench_child_fn fn, void *args, const char *name,
				 unsigned index, pid_t parent)
{
	struct bench_child c = {
	    .index = index,
	    .shared = g->shared,
	    .slot = &g->shared->slot[index],
	    .ready_fd = g->ready[1],
	    .go_fd = g->go[0],
	    .deadline_ns = g->deadline_ns,
	    .args = args,
	};
	int r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	prctl(PR_SET_NAME, name); /* for ps, top and perf */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	close(g->ready[0]);
	close(g->go[1]);
	r = fn(&c);
	if (r < 0 && !c.reported) {
		c.reported = true;
		if (write(c.ready_fd, "E", 1) < 0)
			r = -errno;
	}
	c.slot->cpu_s = own_cpu_s();
	__atomic_store_n(&c.slot->done, 1, __ATOMIC_RELEASE);
	_exit(r < 0 ? 1 : 0);
}

int bench_group_spawn(struct bench_group *g, bench_child_fn fn, void *args, const char *name)
{
	pid_t parent = getpid(), pid;

	if (g->n >= BENCH_MAX_PROCS)
		return -E2BIG;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_main(g, fn, args, name, g->n, parent);
	g->pid[g->n++] = pid;
	return 0;
}

/* Reap children that have exited; block: wait for each. Returns how many
 * are still running. */
static unsigned reap(struct bench_group *g, bool block)
{
	unsigned running = 0;

	for (unsigned i = 0; i < g->n; i++) {
		if (g->reaped[i])
			continue;
		if (waitpid(g->pid[i], &g->status[i], block ? 0 : WNOHANG) == g->pid[i])
			g->reaped[i] = true;
		else
			running++;
	}
	return running;
}

/* A child that died before saying ready or failed (a crash). */
static int died_early(struct bench_group *g, struct bench_result *res)
{
	reap(g, false);
	for (unsigned i = 0; i < g->n; i++) {
		if (g->reaped[i] && (!WIFEXITED(g->status[i]) || WEXITSTATUS(g->status[i]) != 0)) {
			if (!bench_group_errors(g, res)) {
				res->err = -ECHILD;
				snprintf(res->why, sizeof(res->why),
					 "client process %u died before it was ready", i);
			}
			return res->err;
		}
	}
	return 0;
}

static int read_ready_bytes(struct bench_group *g, struct bench_result *res)
{
	char buf[BENCH_MAX_PROCS];
	ssize_t n = read(g->ready[0], buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != 'R') {
			if (!bench_group_errors(g, res)) {
				res->err = -EIO;
				snprintf(res->why, sizeof(res->why), "a client process failed to start");
			}
			return res->err;
		}
		g->n_ready++;
	}
	return 0;
}

int bench_group_wait_ready(struct bench_group *g, struct bench_result *res)
{
	uint64_t limit = bench_now_ns() + (uint64_t)BENCH_READY_TIMEOUT_S * 1000000000u;
	struct pollfd pfd = {.fd = g->ready[0], .events = POLLIN};
	int r;

	while (g->n_ready < g->n) {
		if (bench_interrupted)
			return res->err = -EINTR;
		if (bench_now_ns() > limit || bench_now_ns() > g->deadline_ns) {
			snprintf(res->why, sizeof(res->why), "client processes not ready after %d s",
				 BENCH_READY_TIMEOUT_S);
			return res->err = -ETIMEDOUT;
		}
		r = poll(&pfd, 1, 100);
		if (r > 0)
			r = read_ready_bytes(g, res);
		else
			r = died_early(g, res);
		if (r < 0)
			return r;
	}
	return 0;
}

void bench_group_go(struct bench_group *g)
{
	g->go_ns = bench_now_ns();
	close(g->go[1]);
	g->go[1] = -1;
}

void bench_group_stop(struct bench_group *g)
{
	__atomic_store_n(&g->shared->stop, 1, __ATOMIC_RELEASE);
}

static void kill_running(struct bench_group *g)
{
	for (unsigned i = 0; i < g->n; i++)
		if (!g->reaped[i])
			kill(g->pid[i], SIGKILL);
	reap(g, true);
}

int bench_group_finish(struct bench_group *g)
{
	uint64_t kill_at = g->deadline_ns + GRACE_NS;
	bool stopped = false;

	while (reap(g, false) > 0) {
		if (bench_interrupted) {
			kill_running(g);
			return -EINTR;
		}
		if (!stopped && bench_now_ns() > g->deadline_ns) {
			bench_group_stop(g);
			stopped = true;
		}
		if (bench_now_ns() > kill_at) {
			kill_running(g);
			return -ETIMEDOUT;
		}
		sleep_ms(POLL_SLICE_MS);
	}
	return stopped ? -ETIMEDOUT : 0;
}

void bench_group_deinit(struct bench_group *g)
{
	if (g->n)
		kill_running(g);
	for (int i = 0; i < 2; i++) {
		if (g->ready[i] >= 0)
			close(g->ready[i]);
		if (g->go[i] >= 0)
			close(g->go[i]);
	}
	if (g->shared)
		munmap(g->shared, sizeof(*g->shared));
	g->shared = NULL;
	g->n = 0;
}

int bench_group_errors(const struct bench_group *g, struct bench_result *res)
{
	for (unsigned i = 0; i < g->n; i++) {
		const struct bench_slot *s = &g->shared->slot[i];

		if (s->err) {
			res->err = s->err;
			snprintf(res->why, sizeof(res->why), "%s", s->why);
			return res->err;
		}
	}
	for (unsigned i = 0; i < g->n; i++) {
		if (g->reaped[i] && WIFSIGNALED(g->status[i]) &&
		    !__atomic_load_n(&g->shared->slot[i].done, __ATOMIC_ACQUIRE)) {
			res->err = -ECHILD;
			snprintf(res->why, sizeof(res->why), "client process %u killed by signal %d", i,
				 WTERMSIG(g->status[i]));
			return res->err;
		}
	}
	return 0;
}

void bench_child_ready(struct bench_child *c)
{
	if (c->reported)
		return;
	c->reported = true;
	if (write(c->ready_fd, "R", 1) < 0)
		c->reported = false;
}

int bench_child_wait_go(struct bench_child *c)
{
	struct pollfd pfd = {.fd = c->go_fd, .events = POLLIN};
	uint64_t now;
	char b;
	int r;

	for (;;) {
		now = bench_now_ns();
		if (now >= c->deadline_ns)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)((c->deadline_ns - now) / 1000000u) + 1);
		if (r > 0)
			return read(c->go_fd, &b, 1) < 0 ? -errno : 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int bench_child_fail(struct bench_child *c, int err, const char *what, const char *why)
{
	snprintf(c->slot->why, sizeof(c->slot->why), "%s: %s", what, why);
	__atomic_store_n(&c->slot->err, err, __ATOMIC_RELEASE);
	return err;
}

bool bench_child_should_stop(const struct bench_child *c)
{
	return __atomic_load_n(&c->shared->stop, __ATOMIC_ACQUIRE) || bench_now_ns() >= c->deadline_ns;
}

void bench_flow_collect(const struct bench_flow *f, const struct bench_group *g, struct bench_result *res)
{
	uint64_t end = 0;

	res->expected = f->per_publisher * f->publishers * f->subscribers;
	res->received = res->disorder = 0;
	res->sub_cpu_s = 0;
	for (unsigned i = 0; i < f->subscribers; i++) {
		const struct bench_slot *s = &g->shared->slot[i];
		uint64_t t = __atomic_load_n(&s->t_end_ns, __ATOMIC_ACQUIRE);

		res->received += __atomic_load_n(&s->progress, __ATOMIC_ACQUIRE);
		res->sub_cpu_s += s->cpu_s;
		res->disorder += __atomic_load_n(&s->disorder, __ATOMIC_ACQUIRE);
		if (!t)
			t = bench_now_ns();
		if (t > end)
			end = t;
	}
	res->sent = 0;
	res->pub_cpu_s = 0;
	for (unsigned i = f->subscribers; i < f->subscribers + f->publishers; i++) {
		res->sent += __atomic_load_n(&g->shared->slot[i].progress, __ATOMIC_ACQUIRE) * f->subscribers;
		res->pub_cpu_s += g->shared->slot[i].cpu_s;
	}
	res->seconds = end > g->go_ns ? (double)(end - g->go_ns) / 1e9 : 0;
	res->rate = res->seconds > 0 ? (double)res->received / res->seconds : 0;
}

void bench_latency_collect(const struct bench_latency *l, const struct bench_group *g,
			   struct bench_result *res)
{
	const struct bench_slot *s = &g->shared->slot[1];

	res->expected = l->count;
	res->received = __atomic_load_n(&s->progress, __ATOMIC_ACQUIRE);
	res->p50_us = s->p50_us;
	res->p99_us = s->p99_us;
	res->p999_us = s->p999_us;
}

int bench_group_conclude(struct bench_group *g, int r, struct bench_result *res)
{
	/* Overrunning the time limit (the group's, or a child's own deadline)
	 * is not a failure by itself: the partial figures are reported, with
	 * what is missing. */
	res->timed_out = r == -ETIMEDOUT || (r == 0 && res->received < res->expected);
	if (r == -EINTR) {
		res->err = r;
		snprintf(res->why, sizeof(res->why), "interrupted");
	} else if (bench_group_errors(g, res) == 0 && r < 0 && r != -ETIMEDOUT && !res->err) {
		res->err = r;
		snprintf(res->why, sizeof(res->why), "%s", strerror(-r));
	}
	if (res->err)
		res->timed_out = false; /* the failure says it all */
	bench_group_deinit(g);
	return res->err;
}
