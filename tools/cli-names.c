/* SPDX-License-Identifier: MIT */
/*
 * The commands about names: lbus send, lbus listen and lbus wait.
 *
 * send waits for the broker's verdict, so "nobody owns NAME" is an error
 * with status 1, never a silent drop. listen owns NAME and prints what
 * arrives through cli-output.c (-v prefixes the sender). wait avoids the
 * race between asking and watching: it subscribes to $lbus/name/taken
 * first, then asks whether NAME is owned already, then waits for the event.
 * Without NAME, wait returns as soon as a broker answers on the socket
 * (`lbusd & lbus wait -t 5`): it connects again every 20 ms while nobody
 * listens there.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"

static int send_option(struct cli *cli, int opt, const char *arg, void *data)
{
	const char **file = data;

	*file = arg; /* 'f' */
	return 0;
}

int cli_send(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	const char *file = NULL, *name;
	struct cli_buf b;
	const void *data;
	size_t len;
	lbus *bus;
	int first, status, r;

	if (!cli_parse_options(cli, argc, argv, "f:", longopts, send_option, &file, &first, &status))
		return status;
	if (argc - first < 1)
		return cli_usage_error(cli, "missing NAME");
	if (argc - first > 2)
		return cli_usage_error(cli, "too many arguments (quote a MESSAGE with spaces)");
	if (argc - first == 2 && file)
		return cli_usage_error(cli, "a MESSAGE argument excludes -f");
	name = argv[first];
	if ((status = cli_connect(cli, &bus)) != 0)
		return status;
	status = cli_payload(argc - first == 2 ? argv[first + 1] : NULL, file, &b, &data, &len);
	if (status == 0 && (r = lbus_send(bus, name, data, len, 0)) < 0)
		status = cli_fail_bus(bus, r, "send to %s", name);
	cli_buf_free(&b);
	lbus_close(bus);
	return status;
}

/* ---- listen ------------------------------------------------------------- */

struct listen_state {
	struct cli_watch_opts opts;
	enum cli_format fmt;
	struct cli_loop loop;
	uint64_t received;
};

static int listen_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct listen_state *st = data;

	return cli_watch_option(cli, opt, arg, &st->opts);
}

static void listen_on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct listen_state *st = userdata;

	if (st->loop.stop)
		return;
	cli_print_msg(st->fmt, msg, NULL, st->opts.pb);
	if (++st->received == st->opts.count)
		cli_loop_stop(&st->loop);
}

int cli_listen(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_WATCH_LONGOPTS, CLI_RECONNECT_LONGOPT, CLI_COMMON_LONGOPTS, {0}};
	struct listen_state st = {0};
	lbus *bus;
	int first, status, r;

	cli_watch_init(&st.opts);
	if (!cli_parse_options(cli, argc, argv, CLI_WATCH_SHORTOPTS, longopts, listen_option, &st, &first,
			       &status))
		return status;
	if (argc - first != 1)
		return cli_usage_error(cli, "%s", argc - first < 1 ? "missing NAME" : "too many arguments");
	st.fmt = cli_watch_format(&st.opts, CLI_FMT_SENDER);
	if ((status = cli_watch_ready(cli, &st.opts)) != 0)
		return status;
	if ((status = cli_loop_signals()) == 0 && (status = cli_connect_long(cli, &bus)) == 0) {
		cli_loop_init(&st.loop, bus, st.opts.timeout_ms);
		lbus_on_message(bus, listen_on_msg, &st);
		if ((r = lbus_name_take(bus, argv[first])) < 0)
			status = cli_fail_bus(bus, r, "take name %s", argv[first]);
		else
			status = cli_watch_run(&st.loop, &st.opts, &st.received, false);
		lbus_close(bus);
	}
	cli_watch_deinit(&st.opts);
	return status;
}

/* ---- wait --------------------------------------------------------------- */

/* Pause between attempts while no broker listens (lbus wait without NAME). */
#define WAIT_BROKER_RETRY_MS 20

struct wait_state {
	const char *name;
	int64_t timeout_ms;
	struct cli_loop loop;
};

static int wait_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct wait_state *st = data;

	return cli_parse_secs(cli, arg, &st->timeout_ms); /* 't' */
}

static void wait_on_taken(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct wait_state *st = userdata;
	struct lbus_presence *p;

	if (lbus_presence_decode(msg, &p) < 0)
		return;
	if (p->n_names > 0 && strcmp(p->names[0], st->name) == 0)
		cli_loop_stop(&st->loop);
	lbus_presence_free(p);
}

/* Watch, ask, then wait. Returns the exit status. */
static int wait_run(lbus *bus, struct wait_state *st)
{
	int r;

	cli_loop_init(&st->loop, bus, st->timeout_ms);
	r = lbus_subscribe(bus, LBUS_TOPIC_NAME_TAKEN, wait_on_taken, st, NULL, NULL);
	if (r < 0)
		return cli_fail_bus(bus, r, "subscribe to %s", LBUS_TOPIC_NAME_TAKEN);
	r = lbus_name_query(bus, st->name, NULL);
	if (r < 0)
		return cli_fail_bus(bus, r, "query name %s", st->name);
	if (r == 1)
		return CLI_OK;
	r = cli_loop_run(&st->loop);
	if (r < 0)
		return cli_loop_failure(r);
	return r == CLI_LOOP_DONE ? CLI_OK : CLI_TIMEOUT;
}

/* Is err what connecting gives before a broker listens on the path? */
static bool no_broker_yet(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || err == -ENOTDIR;
}

/* lbus wait without NAME: connect until a broker answers (or the broker
 * refuses, or the time runs out). Returns the exit status. */
static int wait_broker(struct cli *cli, int64_t timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : cli_now_ms() + timeout_ms;
	char reason[512];
	lbus *bus;
	int r;

	for (;;) {
		r = lbus_connect_reason(&bus, cli->socket, reason, sizeof(reason));
		if (r == 0) {
			lbus_close(bus);
			return CLI_OK;
		}
		if (!no_broker_yet(r) || reason[0])
			return cli_connect(cli, &bus); /* says why, with the right status */
		if (deadline >= 0 && cli_now_ms() >= deadline) {
			fprintf(stderr, "lbus: wait: no broker answered within the time limit (%s)\n",
				lbus_strerror(r));
			return CLI_TIMEOUT;
		}
		poll(NULL, 0, WAIT_BROKER_RETRY_MS);
	}
}

int cli_wait(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	struct wait_state st = {.timeout_ms = -1};
	lbus *bus;
	int first, status;

	if (!cli_parse_options(cli, argc, argv, "t:", longopts, wait_option, &st, &first, &status))
		return status;
	if (argc - first > 1)
		return cli_usage_error(cli, "too many arguments");
	if (argc - first == 0)
		return wait_broker(cli, st.timeout_ms);
	st.name = argv[first];
	if ((status = cli_loop_signals()) != 0)
		return status;
	if ((status = cli_connect(cli, &bus)) != 0)
		return status;
	status = wait_run(bus, &st);
	lbus_close(bus);
	return status;
}
