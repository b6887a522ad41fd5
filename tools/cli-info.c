/* SPDX-License-Identifier: MIT */
/*
 * lbus list and lbus stats: the broker's introspection answers, printed as
 * aligned tables for people or, with --json, as one JSON document for
 * programs:
 *
 *   {"clients":[{"id","names","pid","uid","gid","command","subscriptions":
 *     [{"sub_id","pattern","group","policy","responder"}],"queued_bytes",
 *     "queued_bytes_max","blocked_on","monitor","connected_at_ms","counters":{...}}]}
 *   {"broker":{"msgs_in",...,"calls_pending","refused_max_clients",...,
 *    "rss_bytes","cpu_user_us","cpu_system_us"},
 *    "clients":[{"id","msgs_in",...,"errors","queued_bytes","queued_bytes_max","blocked_on"}]}
 *
 * With --openmetrics (or --prometheus), stats prints the same counters in
 * the OpenMetrics (or Prometheus 0.0.4) text format instead: openmetrics.c.
 *
 * A table is built as rows of cells first (strings), so every column gets
 * the width of its widest cell.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "openmetrics.h"

#define TABLE_MAX_COLS 10
/* How long list and stats wait for the broker's answer. */
#define INFO_TIMEOUT_MS 5000

/* Rows of formatted cells; row 0 is the header. */
struct table {
	size_t n_cols, n_rows, cap_rows;
	char **cells; /* n_rows * n_cols, row-major */
	bool failed;  /* out of memory at some point */
};

/* Append an empty row and return its cells (fill them with table_cell()),
 * or NULL when out of memory. */
static char **table_row(struct table *t)
{
	if (t->n_rows == t->cap_rows) {
		size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
		char **cells = reallocarray(t->cells, cap * t->n_cols, sizeof(*cells));

		if (!cells) {
			t->failed = true;
			return NULL;
		}
		t->cells = cells;
		t->cap_rows = cap;
	}
	memset(t->cells + t->n_rows * t->n_cols, 0, t->n_cols * sizeof(*t->cells));
	return t->cells + t->n_rows++ * t->n_cols;
}

static void table_cell(struct table *t, char **row, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void table_cell(struct table *t, char **row, size_t col, const char *fmt, ...)
{
	va_list ap;

	if (!row)
		return;
	va_start(ap, fmt);
	if (vasprintf(&row[col], fmt, ap) < 0) {
		row[col] = NULL;
		t->failed = true;
	}
	va_end(ap);
}

/* Print the table with columns padded to their widest cell, and free it. */
static void table_print_free(struct table *t)
{
	size_t width[TABLE_MAX_COLS] = {0};

	for (size_t i = 0; i < t->n_rows * t->n_cols; i++) {
		size_t len = t->cells[i] ? strlen(t->cells[i]) : 0;

		if (len > width[i % t->n_cols])
			width[i % t->n_cols] = len;
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++) {
			const char *cell = t->cells[r * t->n_cols + c];

			if (c + 1 < t->n_cols)
				printf("%-*s  ", (int)width[c], cell ? cell : "");
			else
				printf("%s\n", cell ? cell : "");
		}
	}
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* Write "a,b,c" (or "-" when empty) into a new string. */
static char *join_names(const struct lbus_client_info *c)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < c->n_names; i++)
		fprintf(f, "%s%s", i ? "," : "", c->names[i]);
	if (c->n_names == 0)
		fputs("-", f);
	fclose(f);
	return s;
}

/* Write "pattern[@group][!block][!responder],..." (and "(monitor)") into a
 * new string. */
static char *join_subs(const struct lbus_client_info *c)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < c->n_subs; i++) {
		const struct lbus_sub_info *sub = &c->subs[i];

		fprintf(f, "%s%s", i ? "," : "", sub->pattern);
		if (sub->group && *sub->group)
			fprintf(f, "@%s", sub->group);
		if (sub->policy == LBUS_POLICY_BLOCK)
			fputs("!block", f);
		if (sub->responder)
			fputs("!responder", f);
	}
	if (c->monitor)
		fprintf(f, "%s(monitor)", c->n_subs ? "," : "");
	else if (c->n_subs == 0)
		fputs("-", f);
	fclose(f);
	return s;
}

static void list_table(const struct lbus_client_list *list, struct table *t)
{
	char **row = table_row(t);
	static const char *const head[] = {"ID", "NAMES", "PID", "UID", "COMMAND", "SUBSCRIPTIONS", "QUEUED"};

	for (size_t c = 0; c < 7; c++)
		table_cell(t, row, c, "%s", head[c]);
	for (size_t i = 0; i < list->n_clients; i++) {
		const struct lbus_client_info *c = &list->clients[i];

		row = table_row(t);
		if (!row)
			return;
		table_cell(t, row, 0, "%" PRIu64, c->id);
		row[1] = join_names(c);
		table_cell(t, row, 2, "%ld", (long)c->pid);
		table_cell(t, row, 3, "%lu", (unsigned long)c->uid);
		table_cell(t, row, 4, "%s", c->command && *c->command ? c->command : "-");
		row[5] = join_subs(c);
		table_cell(t, row, 6, "%" PRIu64, c->queued_bytes);
	}
}

static void json_counters(const struct lbus_counters *c)
{
	printf("\"msgs_in\":%" PRIu64 ",\"msgs_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64
	       ",\"bytes_out\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"errors\":%" PRIu64,
	       c->msgs_in, c->msgs_out, c->bytes_in, c->bytes_out, c->dropped, c->errors);
}

static void json_subs(const struct lbus_client_info *c)
{
	putchar('[');
	for (size_t i = 0; i < c->n_subs; i++) {
		const struct lbus_sub_info *sub = &c->subs[i];

		printf("%s{\"sub_id\":%" PRIu64 ",\"pattern\":", i ? "," : "", sub->sub_id);
		cli_json_cstring(stdout, sub->pattern);
		fputs(",\"group\":", stdout);
		cli_json_cstring(stdout, sub->group);
		printf(",\"policy\":\"%s\",\"responder\":%s}",
		       sub->policy == LBUS_POLICY_BLOCK ? "block" : "drop",
		       sub->responder ? "true" : "false");
	}
	putchar(']');
}

static void list_json(const struct lbus_client_list *list)
{
	fputs("{\"clients\":[", stdout);
	for (size_t i = 0; i < list->n_clients; i++) {
		const struct lbus_client_info *c = &list->clients[i];

		printf("%s{\"id\":%" PRIu64 ",\"names\":", i ? "," : "", c->id);
		cli_json_string_array(stdout, c->names, c->n_names);
		printf(",\"pid\":%ld,\"uid\":%lu,\"gid\":%lu,\"command\":", (long)c->pid,
		       (unsigned long)c->uid, (unsigned long)c->gid);
		cli_json_cstring(stdout, c->command);
		fputs(",\"subscriptions\":", stdout);
		json_subs(c);
		printf(",\"queued_bytes\":%" PRIu64 ",\"queued_bytes_max\":%" PRIu64
		       ",\"blocked_on\":%" PRIu64 ",\"monitor\":%s,\"connected_at_ms\":%" PRIu64
		       ",\"counters\":{",
		       c->queued_bytes, c->queued_bytes_max, c->blocked_on, c->monitor ? "true" : "false",
		       c->connected_at_ms);
		json_counters(&c->counters);
		fputs("}}", stdout);
	}
	fputs("]}\n", stdout);
}

/* How list and stats print their answer. */
enum info_format { INFO_TABLE, INFO_JSON, INFO_OPENMETRICS, INFO_PROMETHEUS };

/* Parse --json ('j'), --openmetrics ('o') or --prometheus ('P'); they
 * exclude each other. */
static int format_option(struct cli *cli, int opt, const char *arg, void *data)
{
	enum info_format *fmt = data;
	enum info_format want = opt == 'j' ? INFO_JSON : opt == 'o' ? INFO_OPENMETRICS : INFO_PROMETHEUS;

	if (*fmt != INFO_TABLE && *fmt != want)
		return cli_usage_error(cli, "--json, --openmetrics and --prometheus exclude each other");
	*fmt = want;
	return 0;
}

/* Parse the options (no positional arguments) and connect. true to go on;
 * false: return *status. */
static bool info_start(struct cli *cli, int argc, char **argv, const struct option *longopts,
		       enum info_format *fmt, lbus **bus, int *status)
{
	int first;

	if (!cli_parse_options(cli, argc, argv, "", longopts, format_option, fmt, &first, status))
		return false;
	if (first < argc) {
		*status = cli_usage_error(cli, "unexpected argument '%s'", argv[first]);
		return false;
	}
	*status = cli_connect(cli, bus);
	return *status == 0;
}

/* Flush stdout; the exit status. */
static int info_finish(bool out_of_memory)
{
	int r = cli_flush_stdout();

	if (r < 0)
		return cli_loop_failure(r);
	return out_of_memory ? cli_fail(-ENOMEM, "print the table") : CLI_OK;
}

int cli_list(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, CLI_COMMON_LONGOPTS, {0}};
	struct lbus_client_list *list;
	struct table t = {.n_cols = 7};
	enum info_format fmt = INFO_TABLE;
	lbus *bus;
	int status, r;

	if (!info_start(cli, argc, argv, longopts, &fmt, &bus, &status))
		return status;
	r = lbus_client_list_get(bus, INFO_TIMEOUT_MS, &list);
	if (r < 0)
		status = cli_fail_bus(bus, r, "list clients");
	lbus_close(bus);
	if (r < 0)
		return status;
	if (fmt == INFO_JSON) {
		list_json(list);
	} else {
		list_table(list, &t);
		table_print_free(&t);
	}
	lbus_client_list_free(list);
	return info_finish(t.failed);
}

/* ---- stats -------------------------------------------------------------- */

static void stats_text(const struct lbus_stats *s, struct table *t)
{
	const struct lbus_broker_stats *b = &s->broker;
	static const char *const head[] = {"ID",      "MSGS_IN", "MSGS_OUT", "BYTES_IN",   "BYTES_OUT",
					   "DROPPED", "ERRORS",	 "QUEUED",   "QUEUED_MAX", "BLOCKED_ON"};
	char **row = table_row(t);

	printf("uptime %.1f s; clients %" PRIu64 " (%" PRIu64 " since start); subscriptions %" PRIu64
	       "; names %" PRIu64 "\n",
	       (double)b->uptime_ms / 1000.0, b->clients, b->clients_total, b->subscriptions, b->names);
	printf("retained %" PRIu64 " (%" PRIu64 " bytes); calls pending %" PRIu64 "\n", b->retained,
	       b->retained_bytes, b->calls_pending);
	printf("broker resident memory %" PRIu64 " bytes; CPU %.2f s user, %.2f s system\n", b->rss_bytes,
	       (double)b->cpu_user_us / 1e6, (double)b->cpu_system_us / 1e6);
	printf("messages in %" PRIu64 ", out %" PRIu64 "; bytes in %" PRIu64 ", out %" PRIu64
	       "; dropped %" PRIu64 "; errors %" PRIu64 "\n",
	       b->counters.msgs_in, b->counters.msgs_out, b->counters.bytes_in, b->counters.bytes_out,
	       b->counters.dropped, b->counters.errors);
	printf("refused by limits: max_clients %" PRIu64 ", max_clients_per_uid %" PRIu64
	       ", max_names_per_client %" PRIu64 ", max_subscriptions_per_client %" PRIu64 "\n",
	       b->refused_max_clients, b->refused_max_clients_per_uid, b->refused_max_names,
	       b->refused_max_subscriptions);
	printf("access rules: denied %" PRIu64 ", deliveries filtered %" PRIu64 "\n", b->denied, b->filtered);
	printf("file descriptors: in %" PRIu64 ", out %" PRIu64 ", held %" PRIu64 ", refused %" PRIu64 "\n\n",
	       b->fds_in, b->fds_out, b->fds_held, b->fds_refused);
	for (size_t c = 0; c < 10; c++)
		table_cell(t, row, c, "%s", head[c]);
	for (size_t i = 0; i < s->n_clients; i++) {
		const struct lbus_client_stats *c = &s->clients[i];
		const uint64_t v[] = {c->id,
				      c->counters.msgs_in,
				      c->counters.msgs_out,
				      c->counters.bytes_in,
				      c->counters.bytes_out,
				      c->counters.dropped,
				      c->counters.errors,
				      c->queued_bytes,
				      c->queued_bytes_max,
				      c->blocked_on};

		row = table_row(t);
		for (size_t col = 0; col < 10; col++)
			table_cell(t, row, col, "%" PRIu64, v[col]);
	}
}

static void stats_json(const struct lbus_stats *s)
{
	const struct lbus_broker_stats *b = &s->broker;

	fputs("{\"broker\":{", stdout);
	json_counters(&b->counters);
	printf(",\"clients\":%" PRIu64 ",\"clients_total\":%" PRIu64 ",\"uptime_ms\":%" PRIu64
	       ",\"retained\":%" PRIu64 ",\"retained_bytes\":%" PRIu64 ",\"subscriptions\":%" PRIu64
	       ",\"names\":%" PRIu64 ",\"calls_pending\":%" PRIu64,
	       b->clients, b->clients_total, b->uptime_ms, b->retained, b->retained_bytes, b->subscriptions,
	       b->names, b->calls_pending);
	printf(",\"refused_max_clients\":%" PRIu64 ",\"refused_max_clients_per_uid\":%" PRIu64
	       ",\"refused_max_names\":%" PRIu64 ",\"refused_max_subscriptions\":%" PRIu64,
	       b->refused_max_clients, b->refused_max_clients_per_uid, b->refused_max_names,
	       b->refused_max_subscriptions);
	printf(",\"rss_bytes\":%" PRIu64 ",\"cpu_user_us\":%" PRIu64 ",\"cpu_system_us\":%" PRIu64
	       ",\"denied\":%" PRIu64 ",\"filtered\":%" PRIu64,
	       b->rss_bytes, b->cpu_user_us, b->cpu_system_us, b->denied, b->filtered);
	printf(",\"fds_in\":%" PRIu64 ",\"fds_out\":%" PRIu64 ",\"fds_held\":%" PRIu64
	       ",\"fds_refused\":%" PRIu64 "},\"clients\":[",
	       b->fds_in, b->fds_out, b->fds_held, b->fds_refused);
	for (size_t i = 0; i < s->n_clients; i++) {
		const struct lbus_client_stats *c = &s->clients[i];

		printf("%s{\"id\":%" PRIu64 ",", i ? "," : "", c->id);
		json_counters(&c->counters);
		printf(",\"queued_bytes\":%" PRIu64 ",\"queued_bytes_max\":%" PRIu64
		       ",\"blocked_on\":%" PRIu64 ",\"fds_held\":%" PRIu64 ",\"memfd_bytes_held\":%" PRIu64
		       ",\"fds_in\":%" PRIu64 ",\"fds_out\":%" PRIu64 "}",
		       c->queued_bytes, c->queued_bytes_max, c->blocked_on, c->fds_held, c->memfd_bytes_held,
		       c->fds_in, c->fds_out);
	}
	fputs("]}\n", stdout);
}

int cli_bus_sample(lbus *bus, struct lbus_stats **stats, struct lbus_client_list **list)
{
	int r = lbus_stats_get(bus, INFO_TIMEOUT_MS, stats);

	if (r < 0)
		return r;
	r = lbus_client_list_get(bus, INFO_TIMEOUT_MS, list);
	if (r < 0) {
		lbus_stats_free(*stats);
		*stats = NULL;
	}
	return r;
}

/* stats --openmetrics / --prometheus. */
static int stats_metrics(lbus *bus, enum metrics_format mf)
{
	struct lbus_client_list *list;
	struct lbus_stats *stats;
	int r = cli_bus_sample(bus, &stats, &list), status = 0;

	if (r < 0)
		status = cli_fail_bus(bus, r, "get stats");
	lbus_close(bus);
	if (r < 0)
		return status;
	metrics_write(stdout, mf, &stats->broker, list);
	lbus_stats_free(stats);
	lbus_client_list_free(list);
	return info_finish(false);
}

int cli_stats(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
						 {"openmetrics", no_argument, NULL, 'o'},
						 {"prometheus", no_argument, NULL, 'P'},
						 CLI_COMMON_LONGOPTS,
						 {0}};
	struct lbus_stats *stats;
	struct table t = {.n_cols = 10};
	enum info_format fmt = INFO_TABLE;
	lbus *bus;
	int status, r;

	if (!info_start(cli, argc, argv, longopts, &fmt, &bus, &status))
		return status;
	if (fmt == INFO_OPENMETRICS || fmt == INFO_PROMETHEUS)
		return stats_metrics(bus, fmt == INFO_OPENMETRICS ? METRICS_OPENMETRICS : METRICS_PROMETHEUS);
	r = lbus_stats_get(bus, INFO_TIMEOUT_MS, &stats);
	if (r < 0)
		status = cli_fail_bus(bus, r, "get stats");
	lbus_close(bus);
	if (r < 0)
		return status;
	if (fmt == INFO_JSON) {
		stats_json(stats);
	} else {
		stats_text(stats, &t);
		table_print_free(&t);
	}
	lbus_stats_free(stats);
	return info_finish(t.failed);
}
