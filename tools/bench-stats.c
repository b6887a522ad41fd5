/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: measuring helpers. The monotonic clock (shared by all the
 * processes of a run, so a subscriber's end time and the parent's go time
 * compare directly), nearest-rank percentiles of latency samples, the
 * per-process figures the kernel keeps in /proc (VmRSS from status,
 * utime+stime from stat), the payload stamps that let receivers check order
 * and loss, and the file-descriptor limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least permille/1000 of all at
 * or below it. */
static double rank_us(const uint64_t *sorted, size_t n, unsigned permille)
{
	size_t rank = (n * permille + 999) / 1000;

	if (rank < 1)
		rank = 1;
	return (double)sorted[rank - 1] / 1000.0;
}

void bench_percentiles(uint64_t *ns, size_t n, double *p50, double *p99, double *p999)
{
	if (n == 0) {
		*p50 = *p99 = *p999 = 0;
		return;
	}
	qsort(ns, n, sizeof(*ns), cmp_u64);
	*p50 = rank_us(ns, n, 500);
	*p99 = rank_us(ns, n, 990);
	*p999 = rank_us(ns, n, 999);
}

/* Read a small /proc file into buf (NUL-terminated). */
static int read_proc(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* The KiB of a "Key:" line of /proc/PID/status. */
static int proc_status_kib(pid_t pid, const char *key, uint64_t *kib)
{
	char buf[4096];
	const char *line;
	int r;

	r = read_proc(pid, "status", buf, sizeof(buf));
	if (r < 0)
		return r;
	line = strstr(buf, key);
	if (!line)
		return -ENODATA;
	*kib = strtoull(line + strlen(key), NULL, 10);
	return 0;
}

int bench_proc_hwm_kib(pid_t pid, uint64_t *kib)
{
	return proc_status_kib(pid, "\nVmHWM:", kib);
}

int bench_proc_rss_kib(pid_t pid, uint64_t *kib)
{
	char buf[4096];
	const char *line;
	int r;

	r = read_proc(pid, "status", buf, sizeof(buf));
	if (r < 0)
		return r;
	line = strstr(buf, "\nVmRSS:");
	if (!line)
		return -ENODATA;
	*kib = strtoull(line + strlen("\nVmRSS:"), NULL, 10);
	return 0;
}

/* utime and stime are fields 14 and 15; the command name (field 2) may
 * contain spaces and parentheses, so count from the last ')'. */
int bench_proc_cpu_s(pid_t pid, double *seconds)
{
	char buf[1024];
	unsigned long long utime, stime;
	const char *p;
	int r;

	r = read_proc(pid, "stat", buf, sizeof(buf));
	if (r < 0)
		return r;
	p = strrchr(buf, ')');
	if (!p)
		return -ENODATA;
	/* after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
	 * cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
		return -ENODATA;
	*seconds = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

uint64_t bench_raise_nofile(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_max < want) { /* only privileged processes may raise it */
		struct rlimit more = {.rlim_cur = want, .rlim_max = want};

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return want;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

void bench_stamp(uint8_t *payload, size_t size, uint64_t seq, unsigned publisher)
{
	uint32_t pub = publisher;

	if (size < 12)
		return;
	memcpy(payload, &seq, 8);
	memcpy(payload + 8, &pub, 4);
}

/* Count one arrival; a wrong size or a sequence number other than the next
 * expected from that publisher counts as disorder (then resynchronise). */
void bench_order_check(struct bench_order *o, const uint8_t *payload, size_t len)
{
	uint64_t seq;
	uint32_t pub;

	o->received++;
	if (len != o->size) {
		o->disorder++;
		return;
	}
	if (len < 12)
		return; /* too small to carry a stamp */
	memcpy(&seq, payload, 8);
	memcpy(&pub, payload + 8, 4);
	if (pub >= BENCH_MAX_PROCS) {
		o->disorder++;
		return;
	}
	if (seq != o->next[pub])
		o->disorder++;
	o->next[pub] = seq + 1;
}
