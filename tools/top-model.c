/* SPDX-License-Identifier: MIT */
/*
 * lbus top's model: rates, sorting and the text of each line (see
 * top-model.h). The columns are one table (name for -s, title, width,
 * alignment), so the titles, the rows and the sort keys cannot disagree.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top-model.h"

struct top_column {
	const char *name;  /* sort key name (-s) */
	const char *title; /* column title */
	unsigned width;	   /* 0: the rest of the line (last column) */
	bool left;	   /* left-aligned text */
};

static const struct top_column columns[TOP_KEY_COUNT] = {
    [TOP_KEY_ID] = {"id", "ID", 6, false},
    [TOP_KEY_PID] = {"pid", "PID", 7, false},
    [TOP_KEY_UID] = {"uid", "UID", 6, false},
    [TOP_KEY_COMMAND] = {"command", "COMMAND", 15, true},
    [TOP_KEY_IN] = {"in", "IN/s", 7, false},
    [TOP_KEY_OUT] = {"out", "OUT/s", 7, false},
    [TOP_KEY_BYTES_IN] = {"bytes_in", "BIN/s", 7, false},
    [TOP_KEY_BYTES_OUT] = {"bytes_out", "BOUT/s", 7, false},
    [TOP_KEY_QUEUE] = {"queue", "QUEUE", 6, false},
    [TOP_KEY_QMAX] = {"qmax", "QMAX", 6, false},
    [TOP_KEY_DROPS] = {"drops", "DROPS", 6, false},
    [TOP_KEY_BLOCKED] = {"blocked", "BLOCKED", 7, false},
    [TOP_KEY_NAMES] = {"names", "NAMES", 0, true},
};

const char *top_key_name(enum top_key key)
{
	return key < TOP_KEY_COUNT ? columns[key].name : "?";
}

int top_key_parse(const char *name)
{
	for (int k = 0; k < TOP_KEY_COUNT; k++)
		if (name && strcmp(columns[k].name, name) == 0)
			return k;
	return -1;
}

enum top_key top_key_next(enum top_key key)
{
	return (enum top_key)((key + 1) % TOP_KEY_COUNT);
}

void top_model_init(struct top_model *m, enum top_key sort)
{
	memset(m, 0, sizeof(*m));
	m->sort = sort;
}

void top_model_deinit(struct top_model *m)
{
	free(m->rows);
	free(m->prev);
	top_model_init(m, m->sort);
}

/* ---- rates ----------------------------------------------------------------- */

static double rate(uint64_t now, uint64_t before, int64_t dt_ms)
{
	if (dt_ms <= 0 || now < before)
		return 0;
	return (double)(now - before) * 1000.0 / (double)dt_ms;
}

static int cmp_prev_id(const void *a, const void *b)
{
	uint64_t x = ((const struct top_prev *)a)->id, y = ((const struct top_prev *)b)->id;

	return x < y ? -1 : x > y;
}

/* The client's counters in the previous sample; zeros when it was not there. */
static struct lbus_counters prev_counters(const struct top_model *m, uint64_t id)
{
	struct top_prev key = {.id = id};
	const struct top_prev *p =
	    m->n_prev ? bsearch(&key, m->prev, m->n_prev, sizeof(*m->prev), cmp_prev_id) : NULL;

	return p ? p->counters : (struct lbus_counters){0};
}

static void row_rates(struct top_row *r, const struct lbus_counters *before, int64_t dt_ms)
{
	const struct lbus_counters *c = &r->info->counters;

	r->in = rate(c->msgs_in, before->msgs_in, dt_ms);
	r->out = rate(c->msgs_out, before->msgs_out, dt_ms);
	r->bytes_in = rate(c->bytes_in, before->bytes_in, dt_ms);
	r->bytes_out = rate(c->bytes_out, before->bytes_out, dt_ms);
	r->drops = rate(c->dropped, before->dropped, dt_ms);
}

static void totals_rates(struct top_totals *t, const struct lbus_broker_stats *before, int64_t dt_ms)
{
	const struct lbus_broker_stats *b = &t->broker;
	double cpu_us =
	    rate(b->cpu_user_us + b->cpu_system_us, before->cpu_user_us + before->cpu_system_us, dt_ms);

	t->msgs_in = rate(b->counters.msgs_in, before->counters.msgs_in, dt_ms);
	t->deliveries = rate(b->counters.msgs_out, before->counters.msgs_out, dt_ms);
	t->drops = rate(b->counters.dropped, before->counters.dropped, dt_ms);
	t->cpu_percent = cpu_us / 1e6 * 100.0; /* CPU-microseconds per second */
}

bool top_broker_restarted(const struct lbus_broker_stats *before, const struct lbus_broker_stats *now,
			  int64_t dt_ms)
{
	/* The same broker never gets younger, and has aged by dt_ms, give or
	 * take the time its answers took: allow a second, or a quarter of
	 * the interval. */
	uint64_t slack = dt_ms / 4 > 1000 ? (uint64_t)dt_ms / 4 : 1000;
	uint64_t expected = before->uptime_ms + (dt_ms > 0 ? (uint64_t)dt_ms : 0);

	return now->uptime_ms < before->uptime_ms || now->uptime_ms + slack < expected;
}

int top_model_update(struct top_model *m, const struct lbus_broker_stats *broker,
		     const struct lbus_client_list *list, int64_t now_ms)
{
	size_t n = list->n_clients;
	struct top_row *rows = calloc(n + 1, sizeof(*rows));
	struct top_prev *prev = calloc(n + 1, sizeof(*prev));
	int64_t dt_ms = now_ms - m->prev_ms;
	bool rates = m->has_prev && !top_broker_restarted(&m->prev_broker, broker, dt_ms);

	if (!rows || !prev) {
		free(rows);
		free(prev);
		return -ENOMEM;
	}
	memset(&m->totals, 0, sizeof(m->totals));
	m->totals.broker = *broker;
	if (rates)
		totals_rates(&m->totals, &m->prev_broker, dt_ms);
	for (size_t i = 0; i < n; i++) {
		struct lbus_counters before = prev_counters(m, list->clients[i].id);

		rows[i].info = &list->clients[i];
		if (rates)
			row_rates(&rows[i], &before, dt_ms);
		prev[i] = (struct top_prev){list->clients[i].id, list->clients[i].counters};
	}
	qsort(prev, n, sizeof(*prev), cmp_prev_id);
	free(m->rows);
	free(m->prev);
	m->rows = rows;
	m->n_rows = n;
	m->prev = prev;
	m->n_prev = n;
	m->prev_broker = *broker;
	m->prev_ms = now_ms;
	m->has_prev = true;
	m->has_rates = rates;
	top_model_sort(m, m->sort);
	return 0;
}

/* ---- sorting ---------------------------------------------------------------- */

static int cmp_num(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static const char *first_name(const struct lbus_client_info *c)
{
	return c->n_names ? c->names[0] : NULL;
}

/* < 0 when a comes first. */
static int cmp_rows(const void *pa, const void *pb, void *pkey)
{
	const struct top_row *a = pa, *b = pb;
	const struct lbus_client_info *x = a->info, *y = b->info;
	int r = 0;

	switch (*(const enum top_key *)pkey) {
	case TOP_KEY_ID:
		break;
	case TOP_KEY_PID:
		r = cmp_num(x->pid, y->pid);
		break;
	case TOP_KEY_UID:
		r = cmp_num(x->uid, y->uid);
		break;
	case TOP_KEY_COMMAND:
		r = cmp_str(x->command, y->command);
		break;
	case TOP_KEY_IN:
		r = cmp_num(b->in, a->in);
		break;
	case TOP_KEY_OUT:
		r = cmp_num(b->out, a->out);
		break;
	case TOP_KEY_BYTES_IN:
		r = cmp_num(b->bytes_in, a->bytes_in);
		break;
	case TOP_KEY_BYTES_OUT:
		r = cmp_num(b->bytes_out, a->bytes_out);
		break;
	case TOP_KEY_QUEUE:
		r = cmp_num(y->queued_bytes, x->queued_bytes);
		break;
	case TOP_KEY_QMAX:
		r = cmp_num(y->queued_bytes_max, x->queued_bytes_max);
		break;
	case TOP_KEY_DROPS:
		r = cmp_num(y->counters.dropped, x->counters.dropped);
		break;
	case TOP_KEY_BLOCKED:
		r = cmp_num(y->blocked_on, x->blocked_on);
		break;
	case TOP_KEY_NAMES:
		/* clients without names last */
		r = !first_name(x) - !first_name(y);
		if (!r)
			r = cmp_str(first_name(x), first_name(y));
		break;
	case TOP_KEY_COUNT:
		break;
	}
	return r ? r : cmp_num(x->id, y->id);
}

void top_model_sort(struct top_model *m, enum top_key key)
{
	m->sort = key < TOP_KEY_COUNT ? key : TOP_KEY_DEFAULT;
	qsort_r(m->rows, m->n_rows, sizeof(*m->rows), cmp_rows, &m->sort);
}

/* ---- text ----------------------------------------------------------------------- */

void top_format_number(double v, unsigned base, char *buf, size_t size)
{
	static const char units[] = "KMGTP";
	size_t u = 0;

	if (v == 0) {
		snprintf(buf, size, "0");
		return;
	}
	if (v < 10) {
		snprintf(buf, size, "%.1f", v);
		return;
	}
	if (v < 10000) {
		snprintf(buf, size, "%.0f", v);
		return;
	}
	v /= base;
	while (v >= 1000 && u + 1 < sizeof(units) - 1) {
		v /= base;
		u++;
	}
	snprintf(buf, size, v < 100 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* Append s to buf at *len (bounded by size, always NUL-terminated). */
static void put(char *buf, size_t size, size_t *len, const char *s)
{
	int n = snprintf(buf + *len, size - *len, "%s", s);

	if (n > 0)
		*len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

/* Append cell s padded (or cut) to column key's width, and a space. */
static void put_cell(char *buf, size_t size, size_t *len, enum top_key key, const char *s)
{
	const struct top_column *c = &columns[key];
	char cell[64];

	if (c->width == 0) {
		put(buf, size, len, s);
		return;
	}
	snprintf(cell, sizeof(cell), c->left ? "%-*.*s " : "%*.*s ", (int)c->width, (int)c->width, s);
	put(buf, size, len, cell);
}

void top_format_titles(char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int k = 0; k < TOP_KEY_COUNT; k++)
		put_cell(buf, size, &len, (enum top_key)k, columns[k].title);
}

void top_title_span(enum top_key key, size_t *start, size_t *width)
{
	size_t at = 0;

	for (int k = 0; k < (int)key && k < TOP_KEY_COUNT; k++)
		at += columns[k].width + 1;
	*start = at;
	*width = key < TOP_KEY_COUNT && columns[key].width ? columns[key].width : strlen("NAMES");
}

static void put_names(char *buf, size_t size, size_t *len, const struct lbus_client_info *c)
{
	if (c->monitor)
		put(buf, size, len, "(monitor) ");
	for (size_t i = 0; i < c->n_names; i++) {
		if (i)
			put(buf, size, len, ",");
		put(buf, size, len, c->names[i]);
	}
	if (c->n_names == 0 && !c->monitor)
		put(buf, size, len, "-");
}

void top_format_row(const struct top_row *r, char *buf, size_t size)
{
	const struct lbus_client_info *c = r->info;
	const double nums[] = {r->in, r->out, r->bytes_in, r->bytes_out};
	const unsigned bases[] = {1000, 1000, 1024, 1024};
	char cell[32];
	size_t len = 0;

	buf[0] = '\0';
	snprintf(cell, sizeof(cell), "%" PRIu64, c->id);
	put_cell(buf, size, &len, TOP_KEY_ID, cell);
	snprintf(cell, sizeof(cell), "%ld", (long)c->pid);
	put_cell(buf, size, &len, TOP_KEY_PID, cell);
	snprintf(cell, sizeof(cell), "%lu", (unsigned long)c->uid);
	put_cell(buf, size, &len, TOP_KEY_UID, cell);
	put_cell(buf, size, &len, TOP_KEY_COMMAND, c->command && *c->command ? c->command : "-");
	for (int i = 0; i < 4; i++) {
		top_format_number(nums[i], bases[i], cell, sizeof(cell));
		put_cell(buf, size, &len, (enum top_key)(TOP_KEY_IN + i), cell);
	}
	top_format_number((double)c->queued_bytes, 1024, cell, sizeof(cell));
	put_cell(buf, size, &len, TOP_KEY_QUEUE, cell);
	top_format_number((double)c->queued_bytes_max, 1024, cell, sizeof(cell));
	put_cell(buf, size, &len, TOP_KEY_QMAX, cell);
	top_format_number((double)c->counters.dropped, 1000, cell, sizeof(cell));
	put_cell(buf, size, &len, TOP_KEY_DROPS, cell);
	if (c->blocked_on)
		snprintf(cell, sizeof(cell), "%" PRIu64, c->blocked_on);
	else
		snprintf(cell, sizeof(cell), "-");
	put_cell(buf, size, &len, TOP_KEY_BLOCKED, cell);
	put_names(buf, size, &len, c);
}

/* "3d 04:05:06" or "04:05:06". */
static void format_uptime(uint64_t ms, char *buf, size_t size)
{
	uint64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, size, "%" PRIu64 "d %02u:%02u:%02u", s / 86400, (unsigned)(s % 86400 / 3600),
			 (unsigned)(s % 3600 / 60), (unsigned)(s % 60));
	else
		snprintf(buf, size, "%02u:%02u:%02u", (unsigned)(s / 3600), (unsigned)(s % 3600 / 60),
			 (unsigned)(s % 60));
}

/* A rate, or "-" before there is one. */
static void format_rate(const struct top_model *m, double v, char *buf, size_t size)
{
	if (m->has_rates)
		top_format_number(v, 1000, buf, size);
	else
		snprintf(buf, size, "-");
}

void top_format_summary(const struct top_model *m, int line, char *buf, size_t size)
{
	const struct top_totals *t = &m->totals;
	const struct lbus_broker_stats *b = &t->broker;
	char up[32], in[16], out[16], drops[16], kept[16], rss[16], cpu[16];

	if (line == 0) {
		format_uptime(b->uptime_ms, up, sizeof(up));
		format_rate(m, t->msgs_in, in, sizeof(in));
		format_rate(m, t->deliveries, out, sizeof(out));
		format_rate(m, t->drops, drops, sizeof(drops));
		snprintf(buf, size,
			 "lbus top - up %s, clients %" PRIu64 ", msgs/s %s, deliveries/s %s, drops/s %s", up,
			 b->clients, in, out, drops);
		return;
	}
	top_format_number((double)b->retained_bytes, 1024, kept, sizeof(kept));
	top_format_number((double)b->rss_bytes, 1024, rss, sizeof(rss));
	if (m->has_rates)
		snprintf(cpu, sizeof(cpu), "%.1f%%", t->cpu_percent);
	else
		snprintf(cpu, sizeof(cpu), "-");
	snprintf(buf, size,
		 "retained %" PRIu64 " (%s bytes), subscriptions %" PRIu64 ", names %" PRIu64
		 ", broker rss %s cpu %s, sort: %s",
		 b->retained, kept, b->subscriptions, b->names, rss, cpu, top_key_name(m->sort));
}
