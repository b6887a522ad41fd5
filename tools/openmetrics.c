/* SPDX-License-Identifier: MIT */
/*
 * The metrics of the bus in OpenMetrics 1.0 or Prometheus 0.0.4 text (see
 * openmetrics.h). Each metric is a row of a table (name, type, help, value),
 * so the two formats differ only in how a family's HELP/TYPE lines and
 * the end of the document are written.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "openmetrics.h"

const char *metrics_content_type(enum metrics_format fmt)
{
	return fmt == METRICS_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
					  : "text/plain; version=0.0.4; charset=utf-8";
}

void metrics_label_value(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

enum metric_type { COUNTER, GAUGE, INFO };

/* One metric family: its name without the _total/_info suffix. */
struct metric {
	const char *name;
	enum metric_type type;
	const char *help;
};

/* The suffix of the family's samples. */
static const char *sample_suffix(enum metric_type type)
{
	return type == COUNTER ? "_total" : type == INFO ? "_info" : "";
}

/* HELP and TYPE of a family. OpenMetrics names the family; the 0.0.4
 * format names the samples, and has no info type (a gauge of 1 instead). */
static void family(FILE *f, enum metrics_format fmt, const struct metric *m)
{
	static const char *const types[] = {[COUNTER] = "counter", [GAUGE] = "gauge", [INFO] = "info"};
	const char *suffix = fmt == METRICS_PROMETHEUS ? sample_suffix(m->type) : "";
	const char *type = fmt == METRICS_PROMETHEUS && m->type == INFO ? "gauge" : types[m->type];

	fprintf(f, "# HELP %s%s %s\n# TYPE %s%s %s\n", m->name, suffix, m->help, m->name, suffix, type);
}

/* v / div with exact decimals (div 1, 1000 or 1000000). */
static void value(FILE *f, uint64_t v, unsigned div)
{
	if (div == 1)
		fprintf(f, " %" PRIu64 "\n", v);
	else
		fprintf(f, " %" PRIu64 ".%0*" PRIu64 "\n", v / div, div == 1000 ? 3 : 6, v % div);
}

/* ---- the bus ------------------------------------------------------------------ */

struct bus_metric {
	struct metric m;
	uint64_t v;
	unsigned div; /* v is in 1/div of the unit */
};

/* What each limit of lbusd.conf refused: one family, labelled by limit. */
static void write_refused(FILE *f, enum metrics_format fmt, const struct lbus_broker_stats *b)
{
	static const struct metric refused = {
	    "lbus_refused", COUNTER, "Connections and requests refused by a limit of lbusd.conf, by limit."};
	const struct {
		const char *limit;
		uint64_t v;
	} rows[] = {
	    {"max_clients", b->refused_max_clients},
	    {"max_clients_per_uid", b->refused_max_clients_per_uid},
	    {"max_names_per_client", b->refused_max_names},
	    {"max_subscriptions_per_client", b->refused_max_subscriptions},
	};

	family(f, fmt, &refused);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		fprintf(f, "lbus_refused_total{limit=\"%s\"}", rows[i].limit);
		value(f, rows[i].v, 1);
	}
}

static void write_bus(FILE *f, enum metrics_format fmt, const struct lbus_broker_stats *b)
{
	const struct bus_metric rows[] = {
	    {{"lbus_clients", GAUGE, "Clients connected now."}, b->clients, 1},
	    {{"lbus_connections", COUNTER, "Connections accepted since the broker started."},
	     b->clients_total,
	     1},
	    {{"lbus_uptime_seconds", GAUGE, "Time since the broker started."}, b->uptime_ms, 1000},
	    {{"lbus_bus_messages_in", COUNTER, "Messages published, sent and called by all clients."},
	     b->counters.msgs_in,
	     1},
	    {{"lbus_bus_messages_out", COUNTER, "Deliveries queued to all clients."},
	     b->counters.msgs_out,
	     1},
	    {{"lbus_bus_bytes_in", COUNTER, "Bytes received from all clients."}, b->counters.bytes_in, 1},
	    {{"lbus_bus_bytes_out", COUNTER, "Bytes written to all clients."}, b->counters.bytes_out, 1},
	    {{"lbus_bus_messages_dropped", COUNTER,
	      "Deliveries not queued because a queue was full (drop policy)."},
	     b->counters.dropped,
	     1},
	    {{"lbus_bus_errors", COUNTER, "Error frames sent to clients."}, b->counters.errors, 1},
	    {{"lbus_retained_messages", GAUGE, "Retained messages stored."}, b->retained, 1},
	    {{"lbus_retained_bytes", GAUGE, "Bytes of the retained messages stored."}, b->retained_bytes, 1},
	    {{"lbus_subscriptions", GAUGE, "Subscriptions of all clients."}, b->subscriptions, 1},
	    {{"lbus_names", GAUGE, "Names owned by clients."}, b->names, 1},
	    {{"lbus_calls_pending", GAUGE, "Calls waiting for a reply."}, b->calls_pending, 1},
	    {{"lbus_broker_resident_memory_bytes", GAUGE, "Resident memory of the broker."}, b->rss_bytes, 1},
	};
	const struct metric cpu = {"lbus_broker_cpu_seconds", COUNTER, "CPU time of the broker, by mode."};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		family(f, fmt, &rows[i].m);
		fprintf(f, "%s%s", rows[i].m.name, sample_suffix(rows[i].m.type));
		value(f, rows[i].v, rows[i].div);
	}
	family(f, fmt, &cpu);
	fputs("lbus_broker_cpu_seconds_total{mode=\"user\"}", f);
	value(f, b->cpu_user_us, 1000000);
	fputs("lbus_broker_cpu_seconds_total{mode=\"system\"}", f);
	value(f, b->cpu_system_us, 1000000);
	write_refused(f, fmt, b);
}

/* ---- the clients ---------------------------------------------------------------- */

enum client_value { C_IN, C_OUT, C_BYTES_IN, C_BYTES_OUT, C_DROPPED, C_ERRORS, C_QUEUED, C_QMAX, C_BLOCKED };

static const struct metric client_metrics[] = {
    [C_IN] = {"lbus_messages_in", COUNTER, "Messages published, sent and called by the client."},
    [C_OUT] = {"lbus_messages_out", COUNTER, "Deliveries queued to the client."},
    [C_BYTES_IN] = {"lbus_bytes_in", COUNTER, "Bytes received from the client."},
    [C_BYTES_OUT] = {"lbus_bytes_out", COUNTER, "Bytes written to the client."},
    [C_DROPPED] = {"lbus_messages_dropped", COUNTER,
		   "Deliveries to the client not queued because its queue was full (drop policy)."},
    [C_ERRORS] = {"lbus_errors", COUNTER, "Error frames sent to the client."},
    [C_QUEUED] = {"lbus_queued_bytes", GAUGE, "Bytes queued for the client in the broker now."},
    [C_QMAX] = {"lbus_queued_bytes_max", GAUGE, "The most bytes ever queued for the client."},
    [C_BLOCKED] = {"lbus_blocked_on", GAUGE,
		   "Id of the client whose full queue holds this client's input; 0 when none."},
};

static uint64_t client_value(const struct lbus_client_info *c, enum client_value v)
{
	switch (v) {
	case C_IN:
		return c->counters.msgs_in;
	case C_OUT:
		return c->counters.msgs_out;
	case C_BYTES_IN:
		return c->counters.bytes_in;
	case C_BYTES_OUT:
		return c->counters.bytes_out;
	case C_DROPPED:
		return c->counters.dropped;
	case C_ERRORS:
		return c->counters.errors;
	case C_QUEUED:
		return c->queued_bytes;
	case C_QMAX:
		return c->queued_bytes_max;
	case C_BLOCKED:
		return c->blocked_on;
	}
	return 0;
}

/* {client="ID",command="COMM" (without the closing brace). */
static void client_labels(FILE *f, const struct lbus_client_info *c)
{
	fprintf(f, "{client=\"%" PRIu64 "\",command=\"", c->id);
	metrics_label_value(f, c->command);
	fputc('"', f);
}

static void write_client_info(FILE *f, enum metrics_format fmt, const struct lbus_client_list *list)
{
	static const struct metric info = {"lbus_client", INFO,
					   "Who each client is: pid, uid and owned names."};

	family(f, fmt, &info);
	for (size_t i = 0; i < list->n_clients; i++) {
		const struct lbus_client_info *c = &list->clients[i];

		fputs("lbus_client_info", f);
		client_labels(f, c);
		fprintf(f, ",pid=\"%ld\",uid=\"%lu\",names=\"", (long)c->pid, (unsigned long)c->uid);
		for (size_t n = 0; n < c->n_names; n++) {
			if (n)
				fputc(',', f);
			metrics_label_value(f, c->names[n]);
		}
		fprintf(f, "\",monitor=\"%s\"} 1\n", c->monitor ? "true" : "false");
	}
}

static void write_clients(FILE *f, enum metrics_format fmt, const struct lbus_client_list *list)
{
	write_client_info(f, fmt, list);
	for (size_t m = 0; m < sizeof(client_metrics) / sizeof(client_metrics[0]); m++) {
		family(f, fmt, &client_metrics[m]);
		for (size_t i = 0; i < list->n_clients; i++) {
			fprintf(f, "%s%s", client_metrics[m].name, sample_suffix(client_metrics[m].type));
			client_labels(f, &list->clients[i]);
			fputc('}', f);
			value(f, client_value(&list->clients[i], (enum client_value)m), 1);
		}
	}
}

void metrics_write(FILE *f, enum metrics_format fmt, const struct lbus_broker_stats *broker,
		   const struct lbus_client_list *list)
{
	write_bus(f, fmt, broker);
	write_clients(f, fmt, list);
	if (fmt == METRICS_OPENMETRICS)
		fputs("# EOF\n", f);
}
