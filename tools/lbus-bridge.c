/* SPDX-License-Identifier: MIT */
/*
 * lbus-bridge — joins the local bus to an MQTT broker.
 *
 *     lbus-bridge -c FILE
 *
 * This file holds main(), the options, and the glue of one poll loop over
 * the two sides: bridge-local.c (the bus, reconnecting), bridge-mqtt.c
 * (libmosquitto, reconnecting) and between them bridge-core.c, which decides
 * what crosses and counts it. Messages from the bus wait in the core's
 * queue and are handed to MQTT in order while it is up (at most
 * BMQTT_MAX_INFLIGHT unacknowledged); messages from MQTT are published on
 * the bus at once. The bridge owns a name on the bus that answers
 * "status" calls with JSON, and keeps its MQTT link state as a retained
 * message on lbus/bridge/NAME/state.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge-core.h"
#include "bridge-local.h"
#include "bridge-mqtt.h"

#define EXIT_FLUSH_MS 2000

static const char usage[] = "Usage: lbus-bridge -c FILE [OPTION...]\n"
			    "Join the local lbus bus to an MQTT broker: `out` routes forward topics of\n"
			    "the bus to the broker, `in` routes the broker's topics to the bus.\n\n"
			    "  -c, --config FILE  the configuration (required), `key = value` lines and\n"
			    "                     route lines:\n"
			    "                       out PATTERN [qos N] [local-prefix P] [remote-prefix P]\n"
			    "                       in PATTERN [qos N] [local-prefix P] [remote-prefix P]\n"
			    "  -S, --socket PATH  the bus socket (overrides `socket` in FILE)\n"
			    "  -h, --help         this text\n"
			    "      --version      print the version\n\n"
			    "Keys: host, port, client_id, username, password_file, tls_ca, tls_cert,\n"
			    "tls_key, keepalive, clean_session, mqtt_version (3.1.1 or 5), socket,\n"
			    "queue_max_msgs, queue_max_bytes, name (default lbus.bridge).\n\n"
			    "The bridge never sends back what it published itself, reconnects to both\n"
			    "sides with backoff, and keeps outgoing messages while MQTT is down, up to\n"
			    "the queue bounds (the excess is counted and logged as dropped).\n"
			    "`lbus call NAME status` answers with JSON: connected, lbus_connected,\n"
			    "queued, queued_bytes, inflight, forwarded {out, in}, dropped {out, in},\n"
			    "skipped, duplicates, mqtt_connects, lbus_connects. The MQTT link state\n"
			    "(connected, disconnected, stopped) is kept retained on\n"
			    "lbus/bridge/NAME/state.\n\n"
			    "Exit status: 0 after SIGTERM/SIGINT, 1 when the bus refuses the\n"
			    "configuration, 2 for a usage or configuration error.\n";

struct bridge {
	struct bridge_config cfg;
	struct bridge_core core;
	struct blocal local;
	struct bmqtt mqtt;
	char state_topic[320];
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void publish_state(struct bridge *b, const char *state)
{
	blocal_publish(&b->local, b->state_topic, state, strlen(state), true);
}

/* Hand pending messages to MQTT, in order, while it takes them; pause
 * reading the bus while the queue is full and MQTT is up (the bus then
 * holds the publishers back), so nothing is dropped while MQTT keeps up. */
static void pump(struct bridge *b)
{
	struct bq_entry *e;
	bool full;

	while (b->mqtt.up && b->core.q.inflight < BMQTT_MAX_INFLIGHT && (e = bqueue_next(&b->core.q))) {
		int mid = 0, r = bmqtt_publish(&b->mqtt, e->topic, e->data, e->len, e->qos, e->retain, &mid);

		if (r == -ENOTCONN)
			break;
		if (r < 0) {
			blog(LOG_WARNING, "cannot forward message on '%.200s': %s", e->topic, strerror(-r));
			b->core.n.dropped_out++;
			e->qos = 0; /* leaves the queue now, counted as dropped, not forwarded */
			bqueue_handed(&b->core.q, e, 0);
			continue;
		}
		bridge_core_handed(&b->core, e, mid);
	}
	full = b->core.q.msgs >= b->core.q.max_msgs || b->core.q.bytes >= b->core.q.max_bytes;
	blocal_pause(&b->local, full && b->mqtt.up);
}

/* ---- the local side's events ---------------------------------------------- */

static void local_publish(void *ud, const struct bridge_route *r, const struct lbus_msg *msg, bool own)
{
	struct bridge *b = ud;

	bridge_core_from_local(&b->core, r, msg->topic, msg->data, msg->len, msg->retain, own, now_ms());
	if (b->mqtt.up)
		pump(b);
}

static void local_dropped(void *ud, uint64_t count)
{
	struct bridge *b = ud;

	bridge_core_local_dropped(&b->core, count, now_ms());
}

static void local_call(void *ud, lbus *bus, const struct lbus_msg *msg)
{
	struct bridge *b = ud;
	char *json = NULL;
	size_t len = 0;

	if (msg->len && !(msg->len == 6 && !memcmp(msg->data, "status", 6))) {
		lbus_reply_error(bus, msg->reply_token, "unknown request (lbus-bridge answers: status)");
		return;
	}
	if (bridge_core_status_json(&b->core, &json, &len) < 0) {
		lbus_reply_error(bus, msg->reply_token, "out of memory");
		return;
	}
	lbus_reply(bus, msg->reply_token, json, len);
	free(json);
}

static void local_state(void *ud, bool up, uint64_t unsent)
{
	struct bridge *b = ud;

	b->core.local_up = up;
	if (unsent) {
		b->core.n.forwarded_in -= unsent < b->core.n.forwarded_in ? unsent : b->core.n.forwarded_in;
		b->core.n.dropped_in += unsent;
		blog(LOG_WARNING, "%llu messages for the bus were lost with the connection",
		     (unsigned long long)unsent);
	}
	if (!up)
		return;
	b->core.n.local_connects++;
	publish_state(b, b->mqtt.up ? "connected" : "disconnected");
}

/* ---- the MQTT side's events ------------------------------------------------- */

static void mqtt_up(void *ud, bool session_present)
{
	struct bridge *b = ud;

	b->core.mqtt_up = true;
	bridge_core_mqtt_connected(&b->core, session_present);
	publish_state(b, "connected");
	pump(b);
}

static void mqtt_down(void *ud)
{
	struct bridge *b = ud;

	b->core.mqtt_up = false;
	publish_state(b, "disconnected");
	blocal_pause(&b->local, false);
}

static void mqtt_message(void *ud, int mid, int qos, const char *topic, const void *data, size_t len,
			 bool retain)
{
	struct bridge *b = ud;
	int64_t now = now_ms();

	if (bridge_core_from_remote(&b->core, mid, qos, topic, data, len, retain, now) != BRIDGE_FORWARD)
		return;
	bridge_core_in_done(&b->core, blocal_publish(&b->local, b->core.topic, data, len, retain), now);
}

static void mqtt_acked(void *ud, int mid, bool ok)
{
	struct bridge *b = ud;

	if (ok) {
		bridge_core_acked(&b->core, mid);
	} else if (bqueue_acked(&b->core.q, mid) >= 0) {
		b->core.n.dropped_out++;
	}
	pump(b);
}

static const struct blocal_ops local_ops = {
    .on_publish = local_publish,
    .on_dropped = local_dropped,
    .on_call = local_call,
    .on_state = local_state,
};

static const struct bmqtt_ops mqtt_ops = {
    .on_up = mqtt_up,
    .on_down = mqtt_down,
    .on_message = mqtt_message,
    .on_acked = mqtt_acked,
};

/* ---- the loop ------------------------------------------------------------- */

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* One turn: poll both sides (with signals unblocked only while waiting), then
 * let each do its work. */
static void turn(struct bridge *b, const sigset_t *waitmask, int cap_ms)
{
	struct pollfd fds[2] = {
	    {.fd = blocal_fd(&b->local), .events = blocal_events(&b->local)},
	    {.fd = bmqtt_fd(&b->mqtt), .events = bmqtt_events(&b->mqtt)},
	};
	int64_t now = now_ms();
	int timeout = min_timeout(blocal_timeout(&b->local, now), bmqtt_timeout(&b->mqtt, now));
	struct timespec ts;

	timeout = min_timeout(timeout, cap_ms);
	ts.tv_sec = timeout / 1000;
	ts.tv_nsec = (long)(timeout % 1000) * 1000000;
	if (ppoll(fds, 2, &ts, waitmask) < 0) {
		fds[0].revents = 0;
		fds[1].revents = 0;
	}
	now = now_ms();
	bmqtt_handle(&b->mqtt, fds[1].revents, now);
	blocal_handle(&b->local, fds[0].revents, now);
	pump(b);
	bridge_core_tick(&b->core, now);
}

/* At exit: give in-flight messages a moment to be acknowledged, then say
 * what is lost, leave a "stopped" state and disconnect. */
static void finish(struct bridge *b, const sigset_t *waitmask)
{
	int64_t deadline = now_ms() + EXIT_FLUSH_MS;

	blocal_pause(&b->local, true);
	while (b->mqtt.up && b->core.q.msgs && now_ms() < deadline)
		turn(b, waitmask, 100);
	if (b->core.q.msgs)
		blog(LOG_WARNING, "exiting with %llu messages not acknowledged by the MQTT broker",
		     (unsigned long long)b->core.q.msgs);
	publish_state(b, "stopped");
	bmqtt_stop(&b->mqtt);
}

static int run(struct bridge *b)
{
	sigset_t block, waitmask;
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stop_signal && !b->local.fatal)
		turn(b, &waitmask, -1);
	if (b->local.fatal)
		return 1;
	blog(LOG_NOTICE, "stopping (%s)", strsignal(stop_signal));
	finish(b, &waitmask);
	return 0;
}

/* ---- options ---------------------------------------------------------------- */

static int parse_args(int argc, char **argv, const char **config, const char **socket)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+c:S:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*config = optarg;
			break;
		case 'S':
			*socket = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("lbus-bridge %s\n", lbus_version());
			return 0;
		default:
			fputs("Try 'lbus-bridge --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lbus-bridge: unexpected argument '%s'\nTry 'lbus-bridge --help'.\n",
			argv[optind]);
		return 2;
	}
	if (!*config) {
		fputs("lbus-bridge: -c FILE is required\nTry 'lbus-bridge --help'.\n", stderr);
		return 2;
	}
	return -1;
}

static int setup(struct bridge *b, const char *config, const char *socket)
{
	char err[512];

	if (bridge_config_load(&b->cfg, config, err, sizeof(err)) < 0) {
		fprintf(stderr, "lbus-bridge: %s\n", err);
		return 2;
	}
	if (socket) {
		free(b->cfg.socket);
		b->cfg.socket = strdup(socket);
		if (!b->cfg.socket)
			return 1;
	}
	snprintf(b->state_topic, sizeof(b->state_topic), "lbus/bridge/%s/state", b->cfg.name);
	bridge_core_init(&b->core, &b->cfg);
	if (blocal_init(&b->local, &b->cfg, &local_ops, b) < 0 ||
	    bmqtt_init(&b->mqtt, &b->cfg, &mqtt_ops, b, err, sizeof(err)) < 0) {
		fprintf(stderr, "lbus-bridge: %s\n", b->local.subs ? err : strerror(ENOMEM));
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *socket = NULL;
	struct bridge *b;
	int status = parse_args(argc, argv, &config, &socket);

	if (status >= 0)
		return status;
	b = calloc(1, sizeof(*b));
	if (!b)
		return 1;
	status = setup(b, config, socket);
	if (status < 0)
		status = run(b);
	bmqtt_free(&b->mqtt);
	blocal_free(&b->local);
	bridge_core_free(&b->core);
	bridge_config_free(&b->cfg);
	free(b);
	return status;
}
