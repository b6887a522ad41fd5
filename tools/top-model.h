/* SPDX-License-Identifier: MIT */
/*
 * The model behind `lbus top`: rates from two samples of the broker's
 * counters, the sort order of the rows, and the text of every line of the
 * view (shared by the full-screen view and the plain snapshots).
 *
 * A sample is what the broker answers to a stats request (the bus totals)
 * and a list request (one struct lbus_client_info per client, with its
 * counters, queue depth and high-water mark, and the client it is blocked
 * on). top_model_update() turns it into rows: each row points into the
 * caller's list (keep it until the next update) and carries the client's
 * rates per second since the previous sample; the model copies the few
 * counters it needs to remember, so the caller frees the previous list as
 * soon as the update returns. A client absent from the previous sample
 * counts from zero (it connected during the interval); a broker that is
 * younger than the previous one plus the interval was restarted, and that
 * sample has no rates.
 *
 * Pure functions of their arguments: no I/O, no clock, no library calls, so
 * tests/test-top-model.c drives them with hand-made samples.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lbus.h"

/* The columns, in display order; each is also a sort key (-s NAME). */
enum top_key {
	TOP_KEY_ID,
	TOP_KEY_PID,
	TOP_KEY_UID,
	TOP_KEY_COMMAND,
	TOP_KEY_IN,	  /* messages in (published, sent, called) per second */
	TOP_KEY_OUT,	  /* messages out (deliveries to it) per second */
	TOP_KEY_BYTES_IN, /* bytes per second */
	TOP_KEY_BYTES_OUT,
	TOP_KEY_QUEUE,	 /* bytes queued for it in the broker now */
	TOP_KEY_QMAX,	 /* the most it ever had queued */
	TOP_KEY_DROPS,	 /* deliveries dropped (drop policy), in total */
	TOP_KEY_BLOCKED, /* the client whose full queue holds its input */
	TOP_KEY_NAMES,
	TOP_KEY_COUNT,
};

#define TOP_KEY_DEFAULT TOP_KEY_IN

/* The key's name ("in", "bytes_out", ...): what -s accepts. */
const char *top_key_name(enum top_key key);
/* The key called name, or -1 when there is none. */
int top_key_parse(const char *name);
/* The key after key in display order (wrapping): what `s` selects. */
enum top_key top_key_next(enum top_key key);

/* One client and its rates per second. */
struct top_row {
	const struct lbus_client_info *info; /* in the caller's list */
	double in, out, bytes_in, bytes_out, drops;
};

/* The bus as a whole. Rates are 0 while has_rates is false. */
struct top_totals {
	struct lbus_broker_stats broker;   /* the latest sample */
	double msgs_in, deliveries, drops; /* per second */
	double cpu_percent;		   /* of one CPU, over the interval */
};

/* The counters of one client in the previous sample. */
struct top_prev {
	uint64_t id;
	struct lbus_counters counters;
};

struct top_model {
	enum top_key sort;
	bool has_rates; /* the latest sample had a predecessor */
	struct top_totals totals;
	struct top_row *rows; /* n_rows, in sort order */
	size_t n_rows;
	/* the previous sample: */
	struct top_prev *prev; /* n_prev, sorted by id */
	size_t n_prev;
	struct lbus_broker_stats prev_broker;
	int64_t prev_ms;
	bool has_prev;
};

void top_model_init(struct top_model *m, enum top_key sort);
/* Free the model's arrays (not the caller's list). */
void top_model_deinit(struct top_model *m);

/*
 * Take the sample (broker from a stats answer, list from a list answer)
 * taken at now_ms (a monotonic clock): compute the rows and their rates
 * against the previous sample, and sort them. list must stay valid until
 * the next update or deinit. 0, or -ENOMEM (the model keeps the previous
 * sample then).
 */
int top_model_update(struct top_model *m, const struct lbus_broker_stats *broker,
		     const struct lbus_client_list *list, int64_t now_ms);

/* Is now (sampled dt_ms after before) the answer of another broker, one
 * that started after before was taken? */
bool top_broker_restarted(const struct lbus_broker_stats *before, const struct lbus_broker_stats *now,
			  int64_t dt_ms);

/* Sort the rows by key: numbers and rates descending, ids, names and
 * commands ascending; ties by id. */
void top_model_sort(struct top_model *m, enum top_key key);

/* ---- the text of the view ------------------------------------------------ */

/* Lines of the summary at the top of the view. */
#define TOP_SUMMARY_LINES 2

/* Write summary line `line` (0 .. TOP_SUMMARY_LINES-1) into buf. */
void top_format_summary(const struct top_model *m, int line, char *buf, size_t size);
/* Write the column titles into buf. */
void top_format_titles(char *buf, size_t size);
/* Where the title of column key starts in the titles line, and its width. */
void top_title_span(enum top_key key, size_t *start, size_t *width);
/* Write row r into buf (the names, last, as long as buf allows). */
void top_format_row(const struct top_row *r, char *buf, size_t size);

/* Write v for a narrow column: "0", "0.5", "200", "12.3K", "4.5M", "1.2G";
 * with base 1024 for bytes. */
void top_format_number(double v, unsigned base, char *buf, size_t size);
