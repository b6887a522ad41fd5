/* SPDX-License-Identifier: MIT */
/*
 * The broker's counters as metrics for monitoring systems: `lbus stats
 * --openmetrics` / `--prometheus` and `lbus metrics` (HTTP) print them with
 * metrics_write().
 *
 * Two exposition formats, one set of metrics:
 *  - OpenMetrics 1.0 text (application/openmetrics-text; version=1.0.0):
 *    a counter family `lbus_messages_in` has samples
 *    `lbus_messages_in_total`, the client identity is an `info` family,
 *    and the document ends with `# EOF`. What Prometheus scrapes by
 *    preference.
 *  - The Prometheus text format 0.0.4 (text/plain; version=0.0.4): HELP and
 *    TYPE name the sample itself (`lbus_messages_in_total`), the identity is
 *    a gauge `lbus_client_info` of value 1, no `# EOF`. What node_exporter's
 *    textfile collector and `promtool check metrics` read.
 *
 * Bus-wide metrics have no labels (`lbus_clients`, `lbus_bus_messages_in_total`,
 * ...); per-client ones carry {client="ID",command="COMM"} (the id and
 * command columns of `lbus top`), and `lbus_client_info` adds pid, uid and
 * names for joins. Label values are escaped (\\, \", \n); commands and
 * names are ASCII by the broker's rules, so the output is valid UTF-8.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "lbus.h"

enum metrics_format {
	METRICS_OPENMETRICS, /* OpenMetrics 1.0 */
	METRICS_PROMETHEUS,  /* Prometheus text 0.0.4 */
};

/* The Content-Type of a format, for HTTP. */
const char *metrics_content_type(enum metrics_format fmt);

/* Write the exposition of broker (from a stats answer) and list (from a
 * list answer) to f. */
void metrics_write(FILE *f, enum metrics_format fmt, const struct lbus_broker_stats *broker,
		   const struct lbus_client_list *list);

/* Write s as the contents of a quoted label value (escaping \, " and
 * newline; NULL as ""). */
void metrics_label_value(FILE *f, const char *s);
