/* SPDX-License-Identifier: MIT */
/*
 * lbus — the command line of the lbus message bus.
 *
 *     lbus [-S PATH] COMMAND [OPTION...] [ARG...]
 *
 * This file holds main(): the global options (-S/--socket, --help,
 * --version), the command table and every help text. The commands live in
 * cli-*.c and use only the public client library, lbus.h. The exit statuses
 * and the output formats are the "Command line contract" of DESIGN.md.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"

struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary; /* one line for the overview */
	const char *help;    /* the command's --help */
};

#define WATCH_OPTS(what)                                                                                     \
	"  -n, --count N     exit after N messages\n"                                                        \
	"  -t, --timeout SECS  exit after SECS seconds (may be fractional)\n"                                \
	"  -v, --verbose     prefix each line with the " what " and a space\n"                               \
	"      --json        one JSON object per line: topic, kind, payload (or\n"                           \
	"                    payload_base64 when not UTF-8), sender {id, name, pid,\n"                       \
	"                    uid, gid}, and retained, missed, presence when they apply\n" DECODE_OPTS        \
	    RECONNECT_OPT

/* The option of the commands that run until stopped (sub, listen, serve,
 * monitor). */
#define RECONNECT_OPT                                                                                        \
	"      --no-reconnect  exit (status 3) when the connection to the broker is\n"                       \
	"                    lost; by default the command reconnects (a broker\n"                            \
	"                    restart), saying so on stderr when the connection is lost\n"                    \
	"                    and when it is back (messages may have been missed)\n"

/* The protobuf options of sub, listen and monitor. */
#define DECODE_OPTS                                                                                          \
	"      --decode FILE.desc:pkg.Type  print each payload as one line of JSON\n"                        \
	"                    (protobuf's JSON mapping) of message type pkg.Type, from\n"                     \
	"                    the descriptor set FILE.desc (see PROTOBUF PAYLOADS in\n"                       \
	"                    lbus(1)); with --json, in a \"message\" member instead of\n"                    \
	"                    \"payload\". A payload that does not decode is reported\n"                      \
	"                    on stderr, and counts for -n\n"                                                 \
	"      --decode-map MAP  the type per topic: MAP has lines PATTERN = pkg.Type\n"                     \
	"                    (the first matching line wins; '#' starts a comment line),\n"                   \
	"                    with --decode FILE.desc (its :pkg.Type, if any, for the\n"                      \
	"                    topics no line matches; others are printed as they are)\n"

static const struct cli_command commands[] = {
    {"pub", cli_pub, "publish a message on a topic",
     "Usage: lbus pub TOPIC [MESSAGE] [OPTION...]\n"
     "Publish MESSAGE on TOPIC; without MESSAGE, all of stdin is one message.\n"
     "An empty MESSAGE ('') is an empty message.\n\n"
     "  -l, --lines       each line of stdin (or of -f FILE) is one message,\n"
     "                    without its newline\n"
     "  -f, --file FILE   the payload is the contents of FILE (binary-safe)\n"
     "  -n, --count N     publish it N times (each line, with -l)\n"
     "  -r, --retain      keep it as the topic's retained message (an empty\n"
     "                    payload clears it)\n"
     "      --encode FILE.desc:pkg.Type  the payload (each line, with -l) is JSON\n"
     "                    in protobuf's JSON mapping: publish it encoded as message\n"
     "                    type pkg.Type of the descriptor set FILE.desc\n"
     "      --fd          send the open file itself (stdin, or -f FILE) as a file\n"
     "                    descriptor, with an empty payload (lbus sub --save-fds)\n\n"
     "Payloads of 64 KiB or more travel as a sealed memfd, not as bytes, and\n"
     "may be larger than the broker's maximum frame.\n"
     "Status 1 when FILE (or stdin) cannot be read; nothing is published.\n"
     "With --encode, status 1 when the JSON does not fit the type (the lines\n"
     "before it are published).\n"},
    {"sub", cli_sub, "print the messages published on topic patterns",
     "Usage: lbus sub PATTERN... [OPTION...]\n"
     "Print the payload of every message on the PATTERNs, then a newline.\n"
     "'+' matches one level, '#' (last) any number; $lbus/... presence events\n"
     "are shown decoded.\n\n" WATCH_OPTS(
	 "topic") "  -g, --group GROUP join queue group GROUP (members share the messages)\n"
		  "      --policy block|drop  when this subscriber lags: make the publishers\n"
		  "                    wait, losing nothing, like a pipe (default); or drop\n"
		  "                    messages and warn how many, never slowing anyone\n"
		  "      --stall SECS  block: once sub has read nothing from the bus for\n"
		  "                    SECS (it is suspended, or blocked writing its output),\n"
		  "                    drop and warn instead of holding up the publishers;\n"
		  "                    0: wait for as long as it takes (default: 2 when\n"
		  "                    stdout is a terminal, else 0, as for any pipe)\n"
		  "      --save-fds DIR  write what each file descriptor a message carries\n"
		  "                    holds to DIR/N-I (message N, descriptor I)\n\n"
		  "With -t, the status is 0 if a message arrived (all N with -n), else 4.\n"
		  "With one PATTERN, the broker itself stops after the -n messages. Whenever\n"
		  "else sub stops (-t, SIGINT, SIGTERM), it unsubscribes and still prints\n"
		  "what the broker had already routed to it (waiting at most 2 s), so a\n"
		  "queue-group member that leaves loses none of its share; those count\n"
		  "for the status. Past -n (several PATTERNs) only a group member prints them.\n"},
    {"send", cli_send, "send a message to the owner of a name",
     "Usage: lbus send NAME [MESSAGE] [OPTION...]\n"
     "Send MESSAGE (without it, all of stdin) to the client that owns NAME.\n"
     "Status 1 when nobody owns NAME.\n\n"
     "  -f, --file FILE   the payload is the contents of FILE\n"},
    {"listen", cli_listen, "own a name and print what is sent to it",
     "Usage: lbus listen NAME [OPTION...]\n"
     "Own NAME and print every message sent to it (status 1 if NAME is taken).\n"
     "Calls to NAME are refused at once (the caller gets \"no responders\");\n"
     "use lbus serve to answer them.\n\n" WATCH_OPTS(
	 "sender (ID or ID(NAME))") "\nWith -t, the time limit is a normal end (status 0; 4 if fewer than "
				    "-n\n"
				    "messages arrived).\n"},
    {"call", cli_call, "call a name or topic and print the reply",
     "Usage: lbus call TARGET [MESSAGE] [OPTION...]\n"
     "Send a request to TARGET (a name, or else a topic a responder subscribes\n"
     "to) with MESSAGE (without it, all of stdin) and print the reply's payload,\n"
     "followed by a newline unless it already ends with one.\n"
     "Status 1 when nobody answers, the responder went away or reported a\n"
     "failure (\"responder failed: REASON\"), 4 on timeout.\n\n"
     "  -f, --file FILE   the request is the contents of FILE\n"
     "  -t, --timeout SECS  wait at most SECS seconds (default 30)\n"
     "      --encode FILE.desc:pkg.Type  the request is JSON: send it encoded as\n"
     "                    protobuf message type pkg.Type (descriptor set FILE.desc)\n"
     "      --decode FILE.desc:pkg.Type  print the reply as one line of JSON of\n"
     "                    message type pkg.Type (status 1 if it does not decode)\n"},
    {"serve", cli_serve, "own a name and answer calls by running a command",
     "Usage: lbus serve NAME [OPTION...] -- COMMAND [ARG...]\n"
     "Own NAME; for each call, run COMMAND (no shell) with the request on its\n"
     "stdin and reply with its stdout. Calls are answered one at a time, in\n"
     "order, while the bus keeps being served. A command that fails (non-zero\n"
     "status, killed, cannot run) or whose output is too large for a reply\n"
     "answers with an error: the caller fails at once with the reason, and a\n"
     "warning goes to stderr. Calls whose caller stopped waiting before their\n"
     "turn are skipped. On SIGINT/SIGTERM a running command gets SIGTERM, then\n"
     "SIGKILL after 1.5 s. Plain messages sent to NAME (lbus send) are\n"
     "ignored, with a warning.\n\n"
     "  -n, --count N     exit after answering N calls\n"
     "  -t, --timeout SECS  exit after SECS seconds (status 0)\n"
     "  -T, --topic       NAME is a topic pattern: answer the calls to matching\n"
     "                    topics (as a responder subscription) instead of owning\n"
     "                    a name; publishes on them are ignored\n" RECONNECT_OPT},
    {"wait", cli_wait, "wait until a name is owned, or until a broker answers",
     "Usage: lbus wait [NAME] [OPTION...]\n"
     "Return as soon as somebody owns NAME (at once if somebody does).\n"
     "Without NAME, return as soon as a broker answers on the socket, e.g.\n"
     "after starting one: lbusd & lbus wait -t 5\n\n"
     "  -t, --timeout SECS  give up after SECS seconds (status 4)\n"},
    {"list", cli_list, "list the clients, their names and subscriptions",
     "Usage: lbus list [--json]\n"
     "Show every connected client: id, names, pid, uid, command,\n"
     "subscriptions (pattern[@group][!block][!responder]) and queued bytes.\n\n"
     "      --json        one JSON document {\"clients\": [...]}\n"},
    {"stats", cli_stats, "show the broker's and clients' counters",
     "Usage: lbus stats [--json | --openmetrics | --prometheus]\n"
     "Show the broker's counters (also its resident memory and CPU time) and\n"
     "each client's, with its queue's high-water mark (QUEUED_MAX) and the\n"
     "client whose full queue holds its input (BLOCKED_ON, 0: none).\n\n"
     "      --json        one JSON document {\"broker\": {...}, \"clients\": [...]}\n"
     "      --openmetrics the same as metrics in the OpenMetrics text format:\n"
     "                    lbus_clients, lbus_bus_messages_in_total, ...; per client\n"
     "                    lbus_messages_in_total{client=\"ID\",command=\"COMM\"},\n"
     "                    lbus_queued_bytes, ... and lbus_client_info (pid, uid,\n"
     "                    names); see lbus metrics to serve them over HTTP\n"
     "      --prometheus  the same in the Prometheus text format 0.0.4 (for\n"
     "                    node_exporter's textfile collector)\n"},
    {"top", cli_top, "show the clients' traffic live, like top",
     "Usage: lbus top [OPTION...]\n"
     "A live view of the bus, refreshed every second: the bus totals (clients,\n"
     "msgs/s in, deliveries/s, drops/s, retained, broker memory and CPU), then\n"
     "one row per client: ID, PID, UID, COMMAND, messages in and out per second\n"
     "(IN/s, OUT/s), bytes in and out per second (BIN/s, BOUT/s), bytes queued\n"
     "for it now (QUEUE) and at most so far (QMAX), messages dropped for it\n"
     "(DROPS), the client whose full queue holds its input (BLOCKED) and its\n"
     "NAMES. Keys: s sorts by the next column, S by the previous, q quits.\n"
     "When stdout is not a terminal, prints a plain snapshot every interval\n"
     "instead (the first after one interval).\n\n"
     "  -d, --delay SECS  refresh every SECS seconds (default 1, at least 0.1)\n"
     "  -n, --count N     exit after N refreshes\n"
     "  -s, --sort COLUMN sort by COLUMN: id, pid, uid, command, in (default),\n"
     "                    out, bytes_in, bytes_out, queue, qmax, drops, blocked,\n"
     "                    names (rates and sizes descending)\n"},
    {"metrics", cli_metrics, "serve the counters over HTTP for Prometheus",
     "Usage: lbus metrics --listen [ADDR:]PORT [OPTION...]\n"
     "Serve what 'lbus stats --openmetrics' prints at http://ADDR:PORT/metrics,\n"
     "read from the broker at each request (Prometheus scrapes it). ADDR is\n"
     "127.0.0.1 unless given ('[::1]:PORT' for IPv6, '0.0.0.0:PORT' for every\n"
     "interface); PORT 0 picks a free port. Prints the address it listens on.\n"
     "The answer is OpenMetrics, or the Prometheus text format 0.0.4 when the\n"
     "request's Accept field asks for text/plain and not for OpenMetrics.\n"
     "Other paths get 404; a client that does not send its request within 3 s\n"
     "gets 408. While the broker is down, requests get 503.\n\n"
     "  -l, --listen [ADDR:]PORT  where to listen (required)\n"
     "  -t, --timeout SECS  exit after SECS seconds (status 0)\n"},
    {"monitor", cli_monitor, "print all traffic on the bus",
     "Usage: lbus monitor [PATTERN] [OPTION...]\n"
     "Print every message the broker routes, one line each, e.g.\n"
     "  publish sensors/a from 7(player) to 3,5: 21.5\n"
     "With PATTERN only publishes on matching topics; without it (or with '#')\n"
     "also sends to names, calls, replies, call errors and refused sends (the\n"
     "target named). Presence events are\n"
     "shown decoded: watch them with PATTERN '$lbus/#'.\n\n"
     "  -n, --count N     exit after N events\n"
     "  -t, --timeout SECS  exit after SECS seconds (status 0)\n"
     "  -v, --verbose     also show the sender's pid and uid\n"
     "      --json        one JSON object per event\n" DECODE_OPTS
     "                    (replies, which have no topic, get the pkg.Type given\n"
     "                    to --decode; errors are never decoded)\n" RECONNECT_OPT},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Other names of commands, as mosquitto_pub/sub and nats users type them. */
static const struct {
	const char *alias, *name;
} aliases[] = {
    {"publish", "pub"},
    {"subscribe", "sub"},
    {"request", "call"},
};

#define N_ALIASES (sizeof(aliases) / sizeof(aliases[0]))

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; name && i < N_ALIASES; i++)
		if (strcmp(aliases[i].alias, name) == 0)
			name = aliases[i].name;
	for (size_t i = 0; name && i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* "unknown command", with the closest command or alias when it looks like
 * a typo of one. */
static int unknown_command(struct cli *cli, const char *name)
{
	const char *cands[N_COMMANDS + N_ALIASES + 1];
	const char *near;
	size_t n = 0;

	for (size_t i = 0; i < N_COMMANDS; i++)
		cands[n++] = commands[i].name;
	for (size_t i = 0; i < N_ALIASES; i++)
		cands[n++] = aliases[i].alias;
	cands[n++] = "help";
	near = cli_suggest(name, cands, n);
	cli->cmd = NULL;
	if (near)
		return cli_usage_error(cli, "unknown command '%s', did you mean '%s'?", name, near);
	return cli_usage_error(cli, "unknown command '%s'", name);
}

static void print_overview(FILE *f)
{
	fputs("Usage: lbus [-S PATH] COMMAND [OPTION...] [ARG...]\n"
	      "Talk to the lbus message bus.\n\nCommands:\n",
	      f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("  help     show the help of a command\n\nAliases:", f);
	for (size_t i = 0; i < N_ALIASES; i++)
		fprintf(f, "%s %s = %s", i ? "," : "", aliases[i].alias, aliases[i].name);
	fputs("\n\n"
	      "Options (before or after the command):\n"
	      "  -S, --socket PATH  the broker's socket (default: $LBUS_SOCKET, else\n"
	      "                     $XDG_RUNTIME_DIR/lbus/bus.sock, else /tmp/lbus-$UID/bus.sock)\n"
	      "  -h, --help         show help (of a command: lbus COMMAND --help)\n"
	      "  -V, --version      show the version\n\n"
	      "Exit status: 0 success, 1 the broker refused (no such name, no responders,\n"
	      "denied, name taken, responder gone, a limit, the connection itself) or\n"
	      "another failure, 2 usage error, 3 cannot reach the broker, 4 timeout.\n"
	      "See lbus(1).\n",
	      f);
}

void cli_print_help(FILE *f, const char *cmd)
{
	const struct cli_command *c = find_command(cmd);

	if (!c) {
		print_overview(f);
		return;
	}
	fputs(c->help, f);
	fputs("  -S, --socket PATH the broker's socket\n"
	      "  -h, --help        show this help\n",
	      f);
}

/* lbus help [COMMAND] */
static int help_command(struct cli *cli, int argc, char **argv)
{
	if (argc > 1 && !find_command(argv[1]))
		return unknown_command(cli, argv[1]);
	cli_print_help(stdout, argc > 1 ? argv[1] : NULL);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct cli cli = {0};
	const struct cli_command *cmd;
	int c;

	signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE: a quiet end */
	opterr = 0;
	for (;;) {
		int at = optind; /* the element getopt looks at (optind starts at 1) */

		if ((c = getopt_long(argc, argv, "+:S:hV", longopts, NULL)) == -1)
			break;
		if (c == 'S') {
			cli.socket = optarg;
		} else if (c == 'h') {
			print_overview(stdout);
			return CLI_OK;
		} else if (c == 'V') {
			printf("lbus %s\n", lbus_version());
			return CLI_OK;
		} else {
			return cli_bad_option(&cli, c, at < argc ? argv[at] : "", longopts);
		}
	}
	if (optind >= argc)
		return cli_usage_error(&cli, "missing COMMAND");
	if (strcmp(argv[optind], "help") == 0)
		return help_command(&cli, argc - optind, argv + optind);
	cmd = find_command(argv[optind]);
	if (!cmd)
		return unknown_command(&cli, argv[optind]);
	cli.cmd = cmd->name;
	return cmd->run(&cli, argc - optind, argv + optind);
}
