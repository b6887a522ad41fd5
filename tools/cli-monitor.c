/* SPDX-License-Identifier: MIT */
/*
 * lbus monitor [PATTERN]: print every message the broker routes, one line
 * per event, in the spirit of dbus-monitor:
 *
 *   publish sensors/a from 7(player) to 3,5: 21.5
 *   publish $lbus/client/connected from 0 to 4: connected id=9 pid=123 uid=1000 command=lbus
 *   send player from 9 to 7: pause
 *   call player #12 from 9 to 7: status?
 *   reply #12 from 7 to 9: playing
 *   error upper #0 from 0 to 9: no responders
 *   error #14 from 7(upper) to 9: the responder failed: command exited with status 3
 *   error nobody #0 from 0 to 9: no such name      (a refused send)
 *
 * A publish flagged retain shows "retain" after its topic; a message with
 * file descriptors shows "fds=N" (and "memfd=BYTES" for sealed memfds,
 * e.g. a payload offloaded to one). -v adds the
 * sender's pid and uid; --json writes one object per event with kind,
 * topic, name, call_id, retain, sender, receivers, the payload (or
 * payload_base64), error and, for presence events, presence.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "cli.h"

struct monitor_state {
	struct cli_watch_opts opts;
	struct cli_loop loop;
	uint64_t seen;
};

static const char *const kind_names[] = {
    [LBUS_MON_PUBLISH] = "publish", [LBUS_MON_SEND] = "send",	[LBUS_MON_CALL] = "call",
    [LBUS_MON_REPLY] = "reply",	    [LBUS_MON_ERROR] = "error",
};

static const char *kind_name(enum lbus_monitor_kind kind)
{
	if ((size_t)kind < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

/* The topic or name the event is about ("" for replies, and for errors of
 * calls that had been routed: the broker does not say). */
static const char *event_target(const struct lbus_monitor_event *ev)
{
	if (ev->kind == LBUS_MON_REPLY)
		return "";
	return ev->name && *ev->name ? ev->name : ev->topic ? ev->topic : "";
}

/* The decoded payload of ev (--decode) into *json, NULL when it has no
 * type: errors carry a reason, not a message; replies have no topic and get
 * the FILE:TYPE type. False when it has one and does not decode (reported). */
static bool decode_event(const struct cli_pb *pb, const struct lbus_monitor_event *ev, char **json)
{
	const char *target = event_target(ev);
	const struct pbs_message *type;
	char label[64];

	*json = NULL;
	if (!pb || ev->kind == LBUS_MON_ERROR)
		return true;
	type = cli_pb_type_for(pb, *target ? target : NULL);
	if (!type)
		return true;
	if (ev->kind == LBUS_MON_REPLY)
		snprintf(label, sizeof(label), "reply #%" PRIu64, ev->call_id);
	return cli_pb_decode(type, *target ? target : label, ev->data, ev->len, json) == 0;
}

static void print_text(const struct lbus_monitor_event *ev, bool verbose, const char *json)
{
	const char *target = event_target(ev);

	fputs(kind_name(ev->kind), stdout);
	if (*target)
		printf(" %s", target);
	if (ev->kind == LBUS_MON_CALL || ev->kind == LBUS_MON_REPLY || ev->kind == LBUS_MON_ERROR)
		printf(" #%" PRIu64, ev->call_id);
	if (ev->retain)
		fputs(" retain", stdout);
	if (ev->nfds)
		printf(" fds=%" PRIu32, ev->nfds);
	if (ev->memfd_size)
		printf(" memfd=%" PRIu64, ev->memfd_size);
	fputs(" from ", stdout);
	cli_print_sender(stdout, &ev->sender);
	if (verbose)
		printf(" pid=%ld uid=%lu", (long)ev->sender.pid, (unsigned long)ev->sender.uid);
	fputs(" to ", stdout);
	for (size_t i = 0; i < ev->n_receivers; i++)
		printf("%s%" PRIu64, i ? "," : "", ev->receivers[i]);
	if (ev->n_receivers == 0)
		putchar('-');
	fputs(": ", stdout);
	if (ev->kind == LBUS_MON_ERROR) {
		fputs(lbus_strerror(ev->error), stdout);
		if (ev->len) { /* a responder's error reply: its reason */
			fputs(": ", stdout);
			cli_print_text_payload(stdout, ev->data, ev->len);
		}
	} else if (json) {
		fputs(json, stdout);
	} else if (!cli_print_presence_text(stdout, ev->topic, ev->data, ev->len)) {
		cli_print_text_payload(stdout, ev->data, ev->len);
	}
	putchar('\n');
}

static void print_json(const struct lbus_monitor_event *ev, const char *json)
{
	printf("{\"kind\":\"%s\",\"topic\":", kind_name(ev->kind));
	cli_json_cstring(stdout, ev->topic);
	fputs(",\"name\":", stdout);
	cli_json_cstring(stdout, ev->name);
	printf(",\"call_id\":%" PRIu64 ",\"retain\":%s,\"fds\":%" PRIu32 ",\"memfd_size\":%" PRIu64
	       ",\"sender\":",
	       ev->call_id, ev->retain ? "true" : "false", ev->nfds, ev->memfd_size);
	cli_json_sender(stdout, &ev->sender);
	fputs(",\"receivers\":[", stdout);
	for (size_t i = 0; i < ev->n_receivers; i++)
		printf("%s%" PRIu64, i ? "," : "", ev->receivers[i]);
	fputs("],", stdout);
	if (json)
		printf("\"message\":%s", json);
	else
		cli_json_payload(stdout, ev->data, ev->len);
	if (ev->kind == LBUS_MON_ERROR) {
		fputs(",\"error\":", stdout);
		cli_json_cstring(stdout, lbus_strerror(ev->error));
	}
	cli_print_presence_json(stdout, ev->topic, ev->data, ev->len);
	fputs("}\n", stdout);
}

static void monitor_on_event(lbus *bus, const struct lbus_monitor_event *ev, void *userdata)
{
	struct monitor_state *st = userdata;

	char *json;

	if (st->loop.stop)
		return;
	if (decode_event(st->opts.pb, ev, &json)) {
		if (st->opts.json)
			print_json(ev, json);
		else
			print_text(ev, st->opts.verbose, json);
		free(json);
	}
	if (++st->seen == st->opts.count)
		cli_loop_stop(&st->loop);
}

static int monitor_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct monitor_state *st = data;

	return cli_watch_option(cli, opt, arg, &st->opts);
}

int cli_monitor(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_WATCH_LONGOPTS, CLI_RECONNECT_LONGOPT, CLI_COMMON_LONGOPTS, {0}};
	struct monitor_state st = {0};
	const char *pattern;
	lbus *bus;
	int first, status, r;

	cli_watch_init(&st.opts);
	if (!cli_parse_options(cli, argc, argv, CLI_WATCH_SHORTOPTS, longopts, monitor_option, &st, &first,
			       &status))
		return status;
	if (argc - first > 1)
		return cli_usage_error(cli, "too many arguments (one PATTERN at most)");
	pattern = argc - first == 1 ? argv[first] : NULL;
	if ((status = cli_watch_ready(cli, &st.opts)) != 0)
		return status;
	if ((status = cli_loop_signals()) == 0 && (status = cli_connect_long(cli, &bus)) == 0) {
		cli_loop_init(&st.loop, bus, st.opts.timeout_ms);
		if ((r = lbus_monitor(bus, pattern, monitor_on_event, &st)) < 0)
			status = cli_fail_bus(bus, r, "monitor %s", pattern ? pattern : "#");
		else
			status = cli_watch_run(&st.loop, &st.opts, &st.seen, false);
		lbus_close(bus);
	}
	cli_watch_deinit(&st.opts);
	return status;
}
