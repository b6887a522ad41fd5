/* SPDX-License-Identifier: MIT */
/*
 * lbus-bench: measure lbus against the raw AF_UNIX socket, in one run.
 *
 * Scenarios, in this order (--scenario NAME selects one):
 *   throughput  1 publisher -> 1 subscriber, 64 B and 1 KiB   msgs/s
 *               (the publisher gathers with LBUS_MORE)
 *   unbatched   the same at 64 B, every publish written at once msgs/s
 *               (no LBUS_MORE: a program that never runs a loop)
 *   fanout      1 publisher -> K subscribers (K = 8)          deliveries/s
 *   fanin       K publishers -> 1 subscriber                  msgs/s
 *   latency     request/reply, one call at a time             p50/p99/p99.9 us
 *   clients     C idle clients with one subscription each     broker KiB/client
 *   held        names taken, subscriptions added, with 1x,    us/request
 *               10x, 100x as many already held (N = --count)  (and vs 1x)
 *   large       1 MiB and 64 MiB, 1 -> 1 and 1 -> K, lbus with  MiB/s, broker
 *               memfd offload and in-band (max_frame raised)  RSS growth
 * For every scenario but clients and held the raw baseline runs first (same frames,
 * no broker), then the lbus run on a private lbusd started for that run
 * alone; each lbus figure is printed with its ratio to the baseline
 * (lbus/raw: above 1 is better for rates, worse for latency) and, for
 * the flows, the broker's CPU seconds per million delivered messages
 * (cpu_s/M), and the same for all publisher and all subscriber processes
 * together (pub/sub cpu/M: where the client library's time goes).
 *
 * Output: a table, or with --json one object per line and figure. Exit
 * status 0 when every run completed with nothing lost, 1 when a run failed
 * or lost messages, 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

volatile sig_atomic_t bench_interrupted;

#define DEFAULT_PEERS 8
#define DEFAULT_CLIENTS 10000
#define DEFAULT_TIME_LIMIT_S 60
#define MAX_SIZE (4u << 20)
#define NOFILE_SPARE 256 /* descriptors beyond one per client */
#define DEFAULT_HELD 1000u
#define MAX_HELD 10000u /* 101 x this stays under the broker's limit range */

#define MIB (1024.0 * 1024.0)

struct bench_opts {
	const char *scenario; /* NULL: all */
	uint64_t count;	      /* 0: each scenario's default */
	uint64_t large_count; /* large: messages per run; 0: its defaults */
	size_t size;
	bool size_set;
	unsigned peers;
	unsigned clients;
	unsigned time_limit_s;
	bool json;
	const char *lbusd;
};

struct bench_run {
	struct bench_opts opts;
	struct bench_broker broker;
	char dir[4096];
	unsigned failures;
};

/* ---- output --------------------------------------------------------------- */

/* Published (times the subscribers) but not received. */
static uint64_t lost_of(const struct bench_result *r)
{
	return r->sent > r->received ? r->sent - r->received : 0;
}

static bool is_flow(const struct bench_result *r)
{
	return strcmp(r->scenario, "latency") != 0 && strcmp(r->scenario, "clients") != 0 &&
	       strcmp(r->scenario, "held") != 0;
}

/* Figures without a message size. */
static bool sizeless(const struct bench_result *r)
{
	return strcmp(r->scenario, "clients") == 0 || strcmp(r->scenario, "held") == 0;
}

/* CPU seconds per million delivered messages. */
static double per_million(const struct bench_result *r, double cpu_s)
{
	return r->received ? cpu_s / ((double)r->received / 1e6) : 0;
}

static double ratio_of(const struct bench_result *r, const struct bench_result *raw)
{
	if (!raw || raw->err)
		return 0;
	if (is_flow(r))
		return raw->rate > 0 ? r->rate / raw->rate : 0;
	return raw->p50_us > 0 ? r->p50_us / raw->p50_us : 0;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_figures(const struct bench_result *r)
{
	const char *key = strcmp(r->scenario, "fanout") == 0 ? "deliveries_per_s" : "msgs_per_s";

	if (strcmp(r->scenario, "large") == 0) {
		printf(",\"subscribers\":%u", r->peers);
		if (r->subject == BENCH_LBUS)
			printf(",\"offload\":%s", r->inband ? "false" : "true");
		printf(",\"mib_per_s\":%.1f,\"deliveries_per_s\":%.1f", r->rate * (double)r->size / MIB,
		       r->rate);
		if (r->rss_growth_kib >= 0)
			printf(",\"broker_rss_growth_kib\":%.0f", r->rss_growth_kib);
	} else if (strcmp(r->scenario, "clients") == 0) {
		printf(",\"clients\":%u,\"rss_per_client_kib\":%.3f", r->clients, r->rss_per_client_kib);
	} else if (strcmp(r->scenario, "held") == 0) {
		printf(",\"item\":\"%s\",\"held\":%llu,\"us_per_op\":%.3f,\"vs_1x\":%.3f", r->item,
		       (unsigned long long)r->held, r->us_per_op, r->vs_first);
	} else if (strcmp(r->scenario, "latency") == 0) {
		printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f", r->p50_us, r->p99_us, r->p999_us);
	} else {
		if (strcmp(r->scenario, "fanout") == 0)
			printf(",\"subscribers\":%u", r->peers);
		else if (strcmp(r->scenario, "fanin") == 0)
			printf(",\"publishers\":%u", r->peers);
		printf(",\"%s\":%.0f", key, r->rate);
	}
}

static void print_json(const struct bench_result *r, const struct bench_result *raw)
{
	printf("{\"scenario\":\"%s\"", r->scenario);
	if (!sizeless(r))
		printf(",\"size\":%zu", r->size);
	printf(",\"subject\":\"%s\"", r->subject == BENCH_RAW ? "raw" : "lbus");
	if (r->err) {
		printf(",\"error\":");
		json_string(r->why);
		printf("}\n");
		return;
	}
	json_figures(r);
	if (r->subject == BENCH_LBUS && is_flow(r)) {
		printf(",\"lost\":%llu", (unsigned long long)lost_of(r));
		if (r->broker_cpu_s >= 0)
			printf(",\"cpu_s_per_million\":%.3f", per_million(r, r->broker_cpu_s));
		else
			printf(",\"cpu_s_per_million\":null");
	}
	if (is_flow(r))
		printf(",\"pub_cpu_s_per_million\":%.3f,\"sub_cpu_s_per_million\":%.3f",
		       per_million(r, r->pub_cpu_s), per_million(r, r->sub_cpu_s));
	if (r->subject == BENCH_LBUS && raw)
		printf(",\"ratio\":%.3f", ratio_of(r, raw));
	if (r->timed_out)
		printf(",\"timed_out\":true");
	printf("}\n");
}

static void figure_text(const struct bench_result *r, char *buf, size_t len)
{
	if (r->err)
		snprintf(buf, len, "FAILED: %s", r->why);
	else if (strcmp(r->scenario, "clients") == 0)
		snprintf(buf, len, "%.2f KiB/client (%u clients)", r->rss_per_client_kib, r->clients);
	else if (strcmp(r->scenario, "held") == 0)
		snprintf(buf, len, "%s: %.2f us/op, %llu held", r->item, r->us_per_op,
			 (unsigned long long)r->held);
	else if (strcmp(r->scenario, "latency") == 0)
		snprintf(buf, len, "p50 %.1f us  p99 %.1f us  p99.9 %.1f us", r->p50_us, r->p99_us,
			 r->p999_us);
	else if (strcmp(r->scenario, "large") == 0 && r->subject == BENCH_LBUS)
		snprintf(buf, len, "%.0f MiB/s (1->%u, %s, RSS +%.0f KiB)", r->rate * (double)r->size / MIB,
			 r->peers, r->inband ? "in-band" : "memfd", r->rss_growth_kib);
	else if (strcmp(r->scenario, "large") == 0)
		snprintf(buf, len, "%.0f MiB/s (1->%u)", r->rate * (double)r->size / MIB, r->peers);
	else if (strcmp(r->scenario, "fanout") == 0)
		snprintf(buf, len, "%.3f M deliveries/s (%u subs)", r->rate / 1e6, r->peers);
	else if (strcmp(r->scenario, "fanin") == 0)
		snprintf(buf, len, "%.3f M msgs/s (%u pubs)", r->rate / 1e6, r->peers);
	else
		snprintf(buf, len, "%.3f M msgs/s", r->rate / 1e6);
}

static void print_row(const struct bench_result *r, const struct bench_result *raw)
{
	char size[16] = "-", figure[200], ratio[32] = "-", lost[24] = "-", cpu[24] = "-", clients[48] = "-";

	figure_text(r, figure, sizeof(figure));
	if (!sizeless(r))
		snprintf(size, sizeof(size), "%zu", r->size);
	if (!r->err && strcmp(r->scenario, "held") == 0)
		snprintf(ratio, sizeof(ratio), "%.2fx 1x", r->vs_first);
	if (!r->err && r->subject == BENCH_LBUS && raw && !raw->err)
		snprintf(ratio, sizeof(ratio), "%s%.2fx raw", is_flow(r) ? "" : "p50 ", ratio_of(r, raw));
	if (!r->err && is_flow(r))
		snprintf(lost, sizeof(lost), "%llu", (unsigned long long)lost_of(r));
	if (!r->err && r->subject == BENCH_LBUS && is_flow(r) && r->broker_cpu_s >= 0)
		snprintf(cpu, sizeof(cpu), "%.3f", per_million(r, r->broker_cpu_s));
	if (!r->err && is_flow(r))
		snprintf(clients, sizeof(clients), "%.3f/%.3f", per_million(r, r->pub_cpu_s),
			 per_million(r, r->sub_cpu_s));
	printf("%-10s %7s %-7s %-44s %-14s %6s %9s %13s%s\n", r->scenario, size,
	       r->subject == BENCH_RAW ? "raw" : "lbus", figure, ratio, lost, cpu, clients,
	       r->timed_out ? "  (time limit)" : "");
}

static void print_header(const struct bench_opts *o)
{
	if (o->json)
		return;
	printf("%-10s %7s %-7s %-44s %-14s %6s %9s %13s\n", "scenario", "size", "subject", "figure", "ratio",
	       "lost", "cpu_s/M", "pub/sub cpu/M");
}

/* A run failed if it reported an error, lost or reordered messages, or did
 * not finish all its round trips / clients (then say so on stderr). */
static bool run_failed(const struct bench_result *r)
{
	if (r->err)
		return true;
	if (strcmp(r->scenario, "clients") == 0)
		return r->clients == 0;
	if (strcmp(r->scenario, "held") == 0)
		return false;
	return lost_of(r) > 0 || r->disorder > 0 || r->received < r->expected;
}

static void report(struct bench_run *run, const struct bench_result *r, const struct bench_result *raw)
{
	if (run->opts.json)
		print_json(r, raw);
	else
		print_row(r, raw);
	fflush(stdout);
	if (run_failed(r)) {
		run->failures++;
		if (!r->err && r->disorder)
			fprintf(stderr,
				"lbus-bench: %s %zu %s: %llu messages out of order, wrong size or dropped\n",
				r->scenario, r->size, r->subject == BENCH_RAW ? "raw" : "lbus",
				(unsigned long long)r->disorder);
	}
	if (!r->err && r->timed_out)
		fprintf(stderr, "lbus-bench: %s %zu %s: time limit (%u s) reached with %llu of %llu done\n",
			r->scenario, r->size, r->subject == BENCH_RAW ? "raw" : "lbus",
			run->opts.time_limit_s, (unsigned long long)r->received,
			(unsigned long long)r->expected);
	if (!r->err && r->why[0])
		fprintf(stderr, "lbus-bench: %s: %s\n", r->scenario, r->why);
}

/* ---- runs ----------------------------------------------------------------- */

/* Defaults sized so that the whole default run takes well under a minute on
 * two cores, each lbus run lasting about a second or more. */
#define COUNT_64B 20000000u
#define COUNT_UNBATCHED 2000000u /* one send() each: fewer */
#define COUNT_1KIB 4000000u
#define COUNT_FANOUT 4000000u /* messages; deliveries are K times more */
#define COUNT_FANIN 20000000u /* in all, split over the publishers */
#define COUNT_LATENCY 100000u
#define COUNT_LARGE_1M 200u /* large: messages of 1 MiB */
#define COUNT_LARGE_64M 6u  /* ... and of 64 MiB */
/* large, in-band: the broker's max_frame, above the biggest payload */
#define LARGE_MAX_FRAME (128u * 1024u * 1024u)

static void result_init(struct bench_result *r, const char *scenario, enum bench_subject subject, size_t size,
			unsigned peers)
{
	memset(r, 0, sizeof(*r));
	r->scenario = scenario;
	r->subject = subject;
	r->size = size;
	r->peers = peers;
	r->broker_cpu_s = -1;
	r->rss_growth_kib = -1;
}

/* Default message count for a throughput run of this payload size. */
static uint64_t throughput_count(const struct bench_opts *o, size_t size)
{
	uint64_t n;

	if (o->count)
		return o->count;
	if (size <= 64)
		return COUNT_64B;
	n = (uint64_t)COUNT_1KIB * 1024 / size;
	return n < 1000 ? 1000 : n > COUNT_64B ? COUNT_64B : n;
}

/* After an lbus run: the broker must have survived it; stop it. */
static void broker_finish(struct bench_run *run, struct bench_result *res)
{
	bool alive = bench_broker_alive(&run->broker);
	int r = bench_broker_stop(&run->broker);

	if (!alive && !res->err) {
		res->err = -ECHILD;
		snprintf(res->why, sizeof(res->why), "lbusd died during the run (see its log)");
	} else if (alive && r < 0) {
		fprintf(stderr, "lbus-bench: %s: lbusd did not exit cleanly on SIGTERM\n", res->scenario);
	}
}

static void flow_pair(struct bench_run *run, struct bench_flow *f, unsigned peers)
{
	struct bench_result raw, lb;

	result_init(&raw, f->scenario, BENCH_RAW, f->size, peers);
	bench_raw_flow(f, &raw);
	report(run, &raw, NULL);
	if (bench_interrupted)
		return;
	result_init(&lb, f->scenario, BENCH_LBUS, f->size, peers);
	if (bench_broker_start(&run->broker, run->dir, &lb) == 0) {
		f->sock = run->broker.sock;
		bench_lbus_flow(f, run->broker.pid, &lb);
		broker_finish(run, &lb);
	}
	report(run, &lb, &raw);
}

static void scenario_throughput(struct bench_run *run)
{
	const struct bench_opts *o = &run->opts;
	size_t sizes[2] = {64, 1024};
	unsigned n = 2;

	if (o->size_set) {
		sizes[0] = o->size;
		n = 1;
	}
	for (unsigned i = 0; i < n && !bench_interrupted; i++) {
		struct bench_flow f = {
		    .scenario = "throughput",
		    .publishers = 1,
		    .subscribers = 1,
		    .per_publisher = throughput_count(o, sizes[i]),
		    .size = sizes[i],
		    .time_limit_s = o->time_limit_s,
		};

		flow_pair(run, &f, 1);
	}
}

/* A publisher that publishes without LBUS_MORE and never runs a loop: each
 * lbus_publish() writes its message at once. The raw baseline is the
 * throughput one (batched writes), so the ratio shows what a write per
 * message costs. */
static void scenario_unbatched(struct bench_run *run)
{
	const struct bench_opts *o = &run->opts;
	struct bench_flow f = {
	    .scenario = "unbatched",
	    .unbatched = true,
	    .publishers = 1,
	    .subscribers = 1,
	    .per_publisher = o->count ? o->count : COUNT_UNBATCHED,
	    .size = o->size_set ? o->size : 64,
	    .time_limit_s = o->time_limit_s,
	};

	flow_pair(run, &f, 1);
}

static void scenario_fanout(struct bench_run *run)
{
	const struct bench_opts *o = &run->opts;
	struct bench_flow f = {
	    .scenario = "fanout",
	    .publishers = 1,
	    .subscribers = o->peers,
	    .per_publisher = o->count ? o->count : COUNT_FANOUT,
	    .size = o->size_set ? o->size : 64,
	    .time_limit_s = o->time_limit_s,
	};

	flow_pair(run, &f, o->peers);
}

static void scenario_fanin(struct bench_run *run)
{
	const struct bench_opts *o = &run->opts;
	uint64_t total = o->count ? o->count : COUNT_FANIN;
	struct bench_flow f = {
	    .scenario = "fanin",
	    .publishers = o->peers,
	    .subscribers = 1,
	    .per_publisher = total / o->peers ? total / o->peers : 1,
	    .size = o->size_set ? o->size : 64,
	    .time_limit_s = o->time_limit_s,
	};

	flow_pair(run, &f, o->peers);
}

/*
 * large: 1 MiB and 64 MiB payloads, 1->1 and 1->K, through lbus with memfd
 * offload (the default) and in-band (threshold 0; the broker's max_frame
 * raised to take them), against the raw baseline. Figures in MiB/s at the
 * subscribers, and the broker's peak RSS growth during the run.
 */
static void scenario_large(struct bench_run *run)
{
	const struct bench_opts *o = &run->opts;
	size_t sizes[2] = {1u << 20, 64u << 20};
	unsigned peers[2] = {1, o->peers}, nsizes = o->size_set ? 1 : 2;
	char conf[4200];
	FILE *fp;

	if (o->size_set)
		sizes[0] = o->size;
	snprintf(conf, sizeof(conf), "%s/large.conf", run->dir);
	fp = fopen(conf, "w");
	if (!fp) {
		fprintf(stderr, "lbus-bench: large: cannot write %s\n", conf);
		run->failures++;
		return;
	}
	fprintf(fp, "max_frame = %u\n", LARGE_MAX_FRAME);
	fclose(fp);
	for (unsigned s = 0; s < nsizes && !bench_interrupted; s++)
		for (unsigned p = 0; p < 2 && !bench_interrupted; p++) {
			struct bench_flow f = {
			    .scenario = "large",
			    .publishers = 1,
			    .subscribers = peers[p],
			    .per_publisher = o->large_count	       ? o->large_count
					     : sizes[s] >= (32u << 20) ? COUNT_LARGE_64M
								       : COUNT_LARGE_1M,
			    .size = sizes[s],
			    .time_limit_s = o->time_limit_s,
			};
			struct bench_result raw, lb;

			result_init(&raw, "large", BENCH_RAW, f.size, f.subscribers);
			bench_raw_flow(&f, &raw);
			report(run, &raw, NULL);
			for (int inband = 0; inband < 2 && !bench_interrupted; inband++) {
				f.inband = inband;
				result_init(&lb, "large", BENCH_LBUS, f.size, f.subscribers);
				lb.inband = inband;
				run->broker.config = conf;
				if (bench_broker_start(&run->broker, run->dir, &lb) == 0) {
					f.sock = run->broker.sock;
					bench_lbus_flow(&f, run->broker.pid, &lb);
					broker_finish(run, &lb);
				}
				run->broker.config = NULL;
				report(run, &lb, &raw);
			}
		}
}

static void scenario_latency(struct bench_run *run)
{
	const struct bench_opts *o = &run->opts;
	struct bench_latency l = {
	    .count = o->count ? o->count : COUNT_LATENCY,
	    .size = o->size_set ? o->size : 64,
	    .time_limit_s = o->time_limit_s,
	};
	struct bench_result raw, lb;

	result_init(&raw, "latency", BENCH_RAW, l.size, 1);
	bench_raw_latency(&l, &raw);
	report(run, &raw, NULL);
	if (bench_interrupted)
		return;
	result_init(&lb, "latency", BENCH_LBUS, l.size, 1);
	if (bench_broker_start(&run->broker, run->dir, &lb) == 0) {
		l.sock = run->broker.sock;
		bench_lbus_latency(&l, &lb);
		broker_finish(run, &lb);
	}
	report(run, &lb, &raw);
}

static void scenario_clients(struct bench_run *run)
{
	struct bench_clients c = {.clients = run->opts.clients, .time_limit_s = run->opts.time_limit_s};
	struct bench_result lb;

	result_init(&lb, "clients", BENCH_LBUS, 0, 0);
	if (bench_broker_start(&run->broker, run->dir, &lb) == 0) {
		c.sock = run->broker.sock;
		c.broker_pid = run->broker.pid;
		bench_lbus_clients(&c, &lb);
		broker_finish(run, &lb);
	}
	if (!lb.err && lb.clients < c.clients && !lb.why[0])
		snprintf(lb.why, sizeof(lb.why), "only %u of %u clients connected", lb.clients, c.clients);
	report(run, &lb, NULL);
}

static void held_report(const struct bench_result *r, void *ud)
{
	report(ud, r, NULL);
}

/* Names, then subscriptions, each on a fresh broker whose per-client limits
 * hold 100 x N + N items. */
static void scenario_held(struct bench_run *run)
{
	struct bench_held h = {.base = run->opts.count ? run->opts.count : DEFAULT_HELD};
	char conf[4200];
	FILE *f;

	h.ops = h.base;
	snprintf(conf, sizeof(conf), "%s/held.conf", run->dir);
	for (int subs = 0; subs < 2 && !bench_interrupted; subs++) {
		struct bench_result res;

		memset(&res, 0, sizeof(res));
		res.scenario = "held";
		res.subject = BENCH_LBUS;
		res.item = subs ? "subscriptions" : "names";
		if (h.base > MAX_HELD) {
			res.err = -EINVAL;
			snprintf(res.why, sizeof(res.why), "--count is at most %u for held", MAX_HELD);
		} else if (!(f = fopen(conf, "w"))) {
			res.err = -errno;
			snprintf(res.why, sizeof(res.why), "cannot write held.conf: %s", strerror(errno));
		} else {
			fprintf(f, "max_names_per_client = %llu\nmax_subscriptions_per_client = %llu\n",
				(unsigned long long)(101 * h.base), (unsigned long long)(101 * h.base));
			fclose(f);
			run->broker.config = conf;
			if (bench_broker_start(&run->broker, run->dir, &res) == 0) {
				h.sock = run->broker.sock;
				bench_lbus_held(&h, subs, held_report, run, &res);
				broker_finish(run, &res);
			}
			run->broker.config = NULL;
		}
		if (res.err)
			report(run, &res, NULL);
	}
}

static const struct scenario {
	const char *name;
	void (*run)(struct bench_run *run);
} scenarios[] = {
    {"throughput", scenario_throughput},
    {"unbatched", scenario_unbatched},
    {"fanout", scenario_fanout},
    {"fanin", scenario_fanin},
    {"latency", scenario_latency},
    {"clients", scenario_clients},
    {"held", scenario_held},
    {"large", scenario_large},
};

/* ---- options and main ------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: lbus-bench [OPTION]...\n"
		"Measure lbus (a private lbusd and liblbus clients) against the raw AF_UNIX\n"
		"socket with the same frames and no broker, in one run.\n"
		"\n"
		"Scenarios: throughput (1 -> 1, 64 B and 1 KiB, publishing with LBUS_MORE),\n"
		"unbatched (1 -> 1, 64 B, every publish written at once: no loop, no\n"
		"LBUS_MORE), fanout (1 -> K), fanin (K -> 1), latency (request/reply round\n"
		"trips), clients (idle clients with one subscription each: broker RSS per\n"
		"client), held (names taken and subscriptions added while the client holds\n"
		"N, 10 N and 100 N of them: microseconds per request, and the ratio to N),\n"
		"large (1 MiB and 64 MiB, 1 -> 1 and 1 -> K, lbus with sealed-memfd\n"
		"offload and in-band: MiB/s at the subscribers, broker RSS growth).\n"
		"\n"
		"  --scenario NAME   run only this scenario (default: all)\n"
		"  --count N         messages per run (latency: round trips; fanin: in all;\n"
		"                    held: N, at most %u)\n"
		"                    default: %u at 64 B, %u at 1 KiB, unbatched %u,\n"
		"                    fanout %u, fanin %u, latency %u, held %u\n"
		"  --large-count N   messages per large run (default %u at 1 MiB, %u at 64 MiB)\n"
		"  --size S          payload bytes (default: 64 and 1024 for throughput, 64 else)\n"
		"  --subscribers K   fanout subscribers and fanin publishers (default %u)\n"
		"  --clients C       idle clients (default %u; capped by RLIMIT_NOFILE)\n"
		"  --time-limit SECS each run stops after this and reports what it got (default %u)\n"
		"  --json            one JSON object per line and figure\n"
		"  --lbusd PATH      the broker to start (default: $LBUSD, the build tree, PATH)\n"
		"  --help            this text\n"
		"\n"
		"Ratios are lbus/raw: for rates above 1 is better, for latency below 1.\n"
		"cpu_s/M: the broker's CPU seconds per million delivered messages;\n"
		"pub/sub cpu/M: the same for all publisher / all subscriber processes.\n"
		"Exit status: 0 all runs complete with nothing lost, 1 a run failed or lost\n"
		"messages, 2 usage error.\n",
		MAX_HELD, COUNT_64B, COUNT_1KIB, COUNT_UNBATCHED, COUNT_FANOUT, COUNT_FANIN, COUNT_LATENCY,
		DEFAULT_HELD, COUNT_LARGE_1M, COUNT_LARGE_64M, DEFAULT_PEERS, DEFAULT_CLIENTS,
		DEFAULT_TIME_LIMIT_S);
}

static int parse_number(const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
		fprintf(stderr, "lbus-bench: %s: expected a number from %llu to %llu, got '%s'\n", opt,
			(unsigned long long)min, (unsigned long long)max, arg);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static bool known_scenario(const char *name)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return true;
	return false;
}

static int parse_one(int opt, const char *arg, struct bench_opts *o)
{
	uint64_t v = 0;
	int r = 0;

	switch (opt) {
	case 's':
		o->scenario = arg;
		if (!known_scenario(arg)) {
			fprintf(stderr, "lbus-bench: unknown scenario '%s'\n", arg);
			r = -EINVAL;
		}
		break;
	case 'n':
		r = parse_number("--count", arg, 1, UINT64_MAX / BENCH_MAX_PROCS, &o->count);
		break;
	case 'l':
		r = parse_number("--large-count", arg, 1, UINT64_MAX / BENCH_MAX_PROCS, &o->large_count);
		break;
	case 'z':
		r = parse_number("--size", arg, 0, MAX_SIZE, &v);
		o->size = v;
		o->size_set = true;
		break;
	case 'k':
		r = parse_number("--subscribers", arg, 1, BENCH_MAX_PROCS - 1, &v);
		o->peers = (unsigned)v;
		break;
	case 'c':
		r = parse_number("--clients", arg, 1, 1000000, &v);
		o->clients = (unsigned)v;
		break;
	case 't':
		r = parse_number("--time-limit", arg, 1, 86400, &v);
		o->time_limit_s = (unsigned)v;
		break;
	case 'j':
		o->json = true;
		break;
	case 'L':
		o->lbusd = arg;
		break;
	default:
		r = -EINVAL;
	}
	return r;
}

/* Returns 0 to run, 1 after --help, -EINVAL on a usage error. */
static int parse_options(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
	    {"scenario", required_argument, NULL, 's'},
	    {"count", required_argument, NULL, 'n'},
	    {"large-count", required_argument, NULL, 'l'},
	    {"size", required_argument, NULL, 'z'},
	    {"subscribers", required_argument, NULL, 'k'},
	    {"clients", required_argument, NULL, 'c'},
	    {"time-limit", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"lbusd", required_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	*o = (struct bench_opts){
	    .peers = DEFAULT_PEERS, .clients = DEFAULT_CLIENTS, .time_limit_s = DEFAULT_TIME_LIMIT_S};
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (parse_one(opt, optarg, o) < 0) {
			fprintf(stderr, "Try 'lbus-bench --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lbus-bench: unexpected argument '%s'\nTry 'lbus-bench --help'.\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static void on_signal(int sig)
{
	bench_interrupted = 1;
}

static void install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits see EINTR */

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int make_private_dir(struct bench_run *run)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(run->dir, sizeof(run->dir), "%s/lbus-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(run->dir)) {
		fprintf(stderr, "lbus-bench: cannot create a directory in %s: %s\n",
			tmp && *tmp ? tmp : "/tmp", strerror(errno));
		return -errno;
	}
	return 0;
}

static void remove_private_dir(struct bench_run *run)
{
	char path[4200];

	bench_broker_stop(&run->broker);
	snprintf(path, sizeof(path), "%s/bus.sock", run->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lbusd.log", run->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/held.conf", run->dir);
	unlink(path);
	rmdir(run->dir);
}

int main(int argc, char **argv)
{
	struct bench_run run;
	int r;

	memset(&run, 0, sizeof(run));
	r = parse_options(argc, argv, &run.opts);
	if (r)
		return r > 0 ? 0 : 2;
	if (bench_broker_find(&run.broker, run.opts.lbusd) < 0) {
		fprintf(stderr, "lbus-bench: cannot find lbusd (%s); use --lbusd PATH or $LBUSD\n",
			run.opts.lbusd ? run.opts.lbusd : "not built next to lbus-bench, not in PATH");
		return 1;
	}
	install_signals();
	bench_raise_nofile((uint64_t)run.opts.clients + NOFILE_SPARE);
	if (make_private_dir(&run) < 0)
		return 1;
	print_header(&run.opts);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]) && !bench_interrupted; i++)
		if (!run.opts.scenario || strcmp(run.opts.scenario, scenarios[i].name) == 0)
			scenarios[i].run(&run);
	remove_private_dir(&run);
	if (bench_interrupted) {
		fprintf(stderr, "lbus-bench: interrupted\n");
		return 1;
	}
	return run.failures ? 1 : 0;
}
