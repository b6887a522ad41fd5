/* SPDX-License-Identifier: MIT */
/*
 * `lbus stats --openmetrics` / `--prometheus` and `lbus metrics --listen`
 * against a real lbusd, checked by parsers and clients nobody here wrote:
 *  - the OpenMetrics text is parsed by python3-prometheus-client's strict
 *    OpenMetrics parser (through /usr/bin/python3), which prints every
 *    sample back decoded, so the test asserts values and label values (a
 *    command named we"ird\cmd round-trips through the escaping);
 *  - the Prometheus 0.0.4 text passes `promtool check metrics` (parse and
 *    lint) with nothing to say;
 *  - lbus metrics is scraped with curl: status line, Content-Type, a body
 *    the parser accepts, content negotiation, 404/405, HEAD, a client that
 *    sends nothing (408 after the deadline, and others are served), an
 *    oversized head (431), a broker that goes away (503) and comes back.
 * Each validator that is missing is reported and its part skipped (tools/
 * deps.sh installs the parser; promtool comes with Debian's prometheus
 * package, which deps.sh leaves out as it runs a server); the test is
 * skipped only when neither can run. Both validators are first shown
 * to reject a broken document, so a silent validator cannot pass the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define PYTHON "/usr/bin/python3"
#define PROMTOOL "/usr/bin/promtool"
#define CURL "/usr/bin/curl"

/* Parse stdin strictly as OpenMetrics; print "name labels-json value" for
 * every sample. */
static const char om_parser[] =
    "import json, sys\n"
    "from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"
    "for f in text_string_to_metric_families(sys.stdin.read()):\n"
    "    for s in f.samples:\n"
    "        print(s.name, json.dumps(s.labels, sort_keys=True), format(s.value, '.17g'))\n";

static const char *txt(const char *s)
{
	return s ? s : "";
}

static bool have_python_parser(void)
{
	const char *argv[] = {PYTHON, "-c", "import prometheus_client.openmetrics.parser", NULL};
	struct lbt_proc p;
	bool ok = access(PYTHON, X_OK) == 0 && lbt_runv(argv, NULL, 0, 10000, &p) == 0 && p.exit_code == 0;

	if (access(PYTHON, X_OK) == 0)
		lbt_proc_free(&p);
	if (!ok)
		fprintf(stderr,
			"NOTE: %s with prometheus_client is missing: OpenMetrics parser check skipped\n",
			PYTHON);
	return ok;
}

static bool have_promtool(void)
{
	bool ok = access(PROMTOOL, X_OK) == 0;

	if (!ok)
		fprintf(stderr, "NOTE: %s is missing: promtool check skipped\n", PROMTOOL);
	return ok;
}

/* Run the OpenMetrics parser on text; its output (malloc'd) or NULL when
 * it refused the text (its error printed). */
static char *om_parse(const char *text)
{
	const char *argv[] = {PYTHON, "-c", om_parser, NULL};
	struct lbt_proc p;
	char *out = NULL;

	assert_int_equal(lbt_runv(argv, text, strlen(text), 20000, &p), 0);
	if (p.exit_code == 0)
		out = strdup(txt(p.out));
	else
		fprintf(stderr, "OpenMetrics parser refused the text: %s\n", txt(p.err));
	lbt_proc_free(&p);
	return out;
}

/* promtool check metrics < text: its exit status; its output in *out. */
static int promtool_check(const char *text, char **out)
{
	const char *argv[] = {PROMTOOL, "check", "metrics", NULL};
	struct lbt_proc p;
	int status;

	assert_int_equal(lbt_runv(argv, text, strlen(text), 20000, &p), 0);
	status = p.exit_code;
	if (out)
		*out = strdup(txt(p.out));
	if (status != 0)
		fprintf(stderr, "promtool check metrics: status %d: %s%s\n", status, txt(p.out), txt(p.err));
	lbt_proc_free(&p);
	return status;
}

/* Both validators refuse a broken document (an unescaped quote). */
static void assert_validators_can_fail(bool python, bool promtool)
{
	static const char broken[] = "# TYPE x gauge\nx{a=\"b\"c\"} 1\n# EOF\n";
	char *out = NULL;

	if (python) {
		out = om_parse(broken);
		assert_null(out);
	}
	if (promtool) {
		assert_int_not_equal(promtool_check(broken, &out), 0);
		free(out);
	}
}

/* stdout of `lbus ARGS...` (malloc'd); the status must be 0. */
static char *cli_out(const struct lbt_broker *b, const char *arg, ...)
{
	const char *args[8];
	struct lbt_proc p;
	size_t n = 0;
	va_list ap;
	char *out;

	va_start(ap, arg);
	for (const char *a = arg; a && n < 7; a = va_arg(ap, const char *))
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	assert_int_equal(lbt_cli_runv(b, NULL, 0, lbt_ms(10000), &p, args), 0);
	if (p.exit_code != 0)
		fprintf(stderr, "lbus %s: status %d: %s\n", arg, p.exit_code, txt(p.err));
	assert_int_equal(p.exit_code, 0);
	out = strdup(txt(p.out));
	lbt_proc_free(&p);
	return out;
}

/* ---- a known bus: a publisher, a subscriber, a client with an odd command ---- */

struct scene {
	lbus *pub, *sub;
	struct lbt_proc odd; /* `we"ird\cmd listen m.weird` */
	int received;
};

#define SCENE_MSGS 7

static void on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	if (++((struct scene *)userdata)->received == SCENE_MSGS)
		lbus_break(bus); /* lbus_run() returns now, not at its timeout */
}

static void scene_build(struct scene *s, const struct lbt_broker *b)
{
	char link[PATH_MAX];

	memset(s, 0, sizeof(*s));
	assert_int_equal(lbt_path(link, b->dir, "we\"ird\\cmd"), 0);
	assert_int_equal(symlink(lbt_cli_path(), link), 0);
	const char *argv[] = {link, "-S", b->sock, "listen", "m.weird", NULL};
	assert_int_equal(lbt_proc_spawn(&s->odd, argv), 0);
	assert_true(lbt_listen_ready(b, &s->odd, "m.weird", lbt_ms(10000)) >= 0);

	assert_int_equal(lbt_connect(b, &s->pub), 0);
	assert_int_equal(lbt_connect(b, &s->sub), 0);
	assert_int_equal(lbus_name_take(s->pub, "m.pub"), 0);
	assert_int_equal(lbus_subscribe(s->sub, "m/#", on_msg, s, NULL, NULL), 0);
	for (int i = 0; i < SCENE_MSGS; i++)
		assert_int_equal(lbus_publish(s->pub, "m/t", "0123456789", 10, 0), 0);
	assert_int_equal(lbus_sync(s->pub, lbt_ms(5000)), 0);
	while (s->received < SCENE_MSGS)
		assert_true(lbus_run(s->sub, lbt_ms(5000)) >= 0);
}

static void scene_free(struct scene *s)
{
	lbus_close(s->pub);
	lbus_close(s->sub);
	lbt_proc_free(&s->odd);
}

/* Assert the parsed samples hold "NAME LABELS VALUE" (a line of om_parse). */
static void assert_sample(const char *samples, const char *fmt, ...)
{
	char want[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	if (!strstr(samples, want))
		fprintf(stderr, "no sample '%s' in:\n%s\n", want, txt(samples));
	assert_non_null(strstr(samples, want));
}

static void assert_scene_samples(const char *samples, const struct scene *s, uint64_t odd_id)
{
	assert_sample(samples,
		      "lbus_messages_in_total {\"client\": \"%" PRIu64
		      "\", \"command\": \"test-metrics\"} 7\n",
		      lbus_client_id(s->pub));
	assert_sample(samples,
		      "lbus_messages_out_total {\"client\": \"%" PRIu64
		      "\", \"command\": \"test-metrics\"} 7\n",
		      lbus_client_id(s->sub));
	assert_sample(samples,
		      "lbus_bytes_in_total {\"client\": \"%" PRIu64 "\", \"command\": \"test-metrics\"} ",
		      lbus_client_id(s->pub));
	assert_sample(samples,
		      "lbus_client_info {\"client\": \"%" PRIu64
		      "\", \"command\": \"we\\\"ird\\\\cmd\", \"monitor\": "
		      "\"false\", \"names\": \"m.weird\", \"pid\": \"%d\", \"uid\": \"%u\"} 1\n",
		      odd_id, (int)s->odd.pid, (unsigned)getuid());
	assert_sample(samples,
		      "lbus_client_info {\"client\": \"%" PRIu64 "\", \"command\": \"test-metrics\", "
		      "\"monitor\": \"false\", \"names\": \"m.pub\", ",
		      lbus_client_id(s->pub));
	assert_sample(samples, "lbus_bus_messages_in_total {} ");
	assert_sample(samples, "lbus_clients {} ");
	assert_sample(samples, "lbus_broker_cpu_seconds_total {\"mode\": \"user\"} ");
	assert_sample(samples, "lbus_broker_resident_memory_bytes {} ");
	assert_sample(samples, "lbus_refused_total {\"limit\": \"max_clients\"} 0\n");
	assert_sample(samples, "lbus_refused_total {\"limit\": \"max_subscriptions_per_client\"} 0\n");
	assert_sample(samples,
		      "lbus_queued_bytes_max {\"client\": \"%" PRIu64 "\", \"command\": \"test-metrics\"} ",
		      lbus_client_id(s->sub));
	assert_sample(samples,
		      "lbus_blocked_on {\"client\": \"%" PRIu64 "\", \"command\": \"test-metrics\"} 0\n",
		      lbus_client_id(s->pub));
}

/* The id of the client with this pid. */
static uint64_t client_of_pid(lbus *bus, pid_t pid)
{
	struct lbus_client_list *l = NULL;
	uint64_t id = 0;

	assert_int_equal(lbus_client_list_get(bus, lbt_ms(5000), &l), 0);
	for (size_t i = 0; i < l->n_clients; i++)
		if (l->clients[i].pid == pid)
			id = l->clients[i].id;
	lbus_client_list_free(l);
	assert_true(id != 0);
	return id;
}

/* ---- stats --openmetrics / --prometheus ----------------------------------------- */

static void test_stats_openmetrics(void **state)
{
	struct lbt_broker *b = *state;
	bool python = have_python_parser(), promtool = have_promtool();
	struct scene s;
	char *text, *samples, *lint = NULL;

	if (!python && !promtool) {
		fprintf(stderr, "SKIP: neither promtool nor python3-prometheus-client is installed\n");
		skip();
	}
	assert_validators_can_fail(python, promtool);
	scene_build(&s, b);
	uint64_t odd_id = client_of_pid(s.pub, s.odd.pid);

	text = cli_out(b, "stats", "--openmetrics", NULL);
	assert_non_null(strstr(text, "# TYPE lbus_messages_in counter\n"));
	assert_non_null(strstr(text, ",command=\"we\\\"ird\\\\cmd\""));
	assert_int_equal(strcmp(text + strlen(text) - 6, "# EOF\n"), 0);
	if (python) {
		samples = om_parse(text);
		assert_non_null(samples);
		assert_scene_samples(samples, &s, odd_id);
		free(samples);
	}
	free(text);

	if (promtool) {
		text = cli_out(b, "stats", "--prometheus", NULL);
		assert_non_null(strstr(text, "# TYPE lbus_messages_in_total counter\n"));
		assert_non_null(strstr(text, "# TYPE lbus_client_info gauge\n"));
		assert_null(strstr(text, "# EOF"));
		assert_int_equal(promtool_check(text, &lint), 0);
		assert_string_equal(lint, ""); /* no lint problem either */
		free(lint);
		free(text);
	}
	scene_free(&s);
}

static void test_stats_format_usage(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc p;

	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "stats", "--json", "--openmetrics", NULL),
			 0);
	assert_int_equal(p.exit_code, 2);
	assert_non_null(strstr(txt(p.err), "exclude each other"));
	lbt_proc_free(&p);
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "list", "--openmetrics", NULL), 0);
	assert_int_equal(p.exit_code, 2);
	lbt_proc_free(&p);
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "metrics", NULL), 0);
	assert_int_equal(p.exit_code, 2);
	assert_non_null(strstr(txt(p.err), "missing --listen"));
	lbt_proc_free(&p);
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "metrics", "--listen", "x:y", NULL), 0);
	assert_int_equal(p.exit_code, 2);
	lbt_proc_free(&p);
}

/* ---- lbus metrics over HTTP ---------------------------------------------------------- */

static struct lbt_proc g_server;

/* Start `lbus metrics --listen LISTEN`; returns the port it reports. */
static int server_start(const struct lbt_broker *b, const char *listen, const char *want_host)
{
	char want[64];
	const char *line;
	int port;

	assert_int_equal(lbt_cli_spawn(&g_server, b, "metrics", "--listen", listen, "-t", "120", NULL), 0);
	assert_true(lbt_proc_read_until(&g_server, "/metrics\n", 0, lbt_ms(10000)) >= 0);
	snprintf(want, sizeof(want), "listening on http://%s:", want_host);
	line = strstr(txt(g_server.out), want);
	assert_non_null(line);
	port = atoi(line + strlen(want));
	assert_true(port > 0 && port < 65536);
	return port;
}

/* Run curl -sS -i --max-time 10 ARGS... URL(path); its output (malloc'd). */
static char *curl(int port, const char *path, const char *const *args)
{
	const char *argv[16] = {CURL, "-sS", "-i", "--max-time", "10"};
	char url[128];
	struct lbt_proc p;
	size_t n = 5;
	char *out;

	for (; args && *args && n < 14; args++)
		argv[n++] = *args;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	argv[n++] = url;
	argv[n] = NULL;
	assert_int_equal(lbt_runv(argv, NULL, 0, 20000, &p), 0);
	if (p.exit_code != 0)
		fprintf(stderr, "curl %s: status %d: %s\n", url, p.exit_code, txt(p.err));
	assert_int_equal(p.exit_code, 0);
	out = strdup(txt(p.out));
	lbt_proc_free(&p);
	return out;
}

static const char *body_of(const char *response)
{
	const char *sep = strstr(response, "\r\n\r\n");

	assert_non_null(sep);
	return sep + 4;
}

/* A raw TCP connection to 127.0.0.1:port. */
static int tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Read until EOF (or timeout_ms); what arrived, malloc'd. */
static char *read_to_eof(int fd, int timeout_ms)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);
	int64_t end = lbt_now_ms() + timeout_ms;

	assert_non_null(buf);
	while (len < cap && lbt_now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, (int)(end - lbt_now_ms())) <= 0)
			break;
		n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static void test_metrics_http(void **state)
{
	struct lbt_broker *b = *state;
	bool python = have_python_parser(), promtool = have_promtool();
	char *r, *lint = NULL;
	struct scene s;
	int port, fd;

	if (access(CURL, X_OK) != 0) {
		fprintf(stderr, "SKIP: %s is missing (tools/deps.sh installs it)\n", CURL);
		skip();
	}
	scene_build(&s, b);
	uint64_t odd_id = client_of_pid(s.pub, s.odd.pid);
	port = server_start(b, "127.0.0.1:0", "127.0.0.1");

	/* A scrape: OpenMetrics, parsed. */
	r = curl(port, "/metrics", NULL);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(
	    strstr(r, "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
	assert_int_equal(strcmp(r + strlen(r) - 6, "# EOF\n"), 0);
	if (python) {
		char *samples = om_parse(body_of(r));
		assert_non_null(samples);
		assert_scene_samples(samples, &s, odd_id);
		free(samples);
	}
	free(r);

	/* What Prometheus asks for gets OpenMetrics; text/plain alone, 0.0.4. */
	const char *const prom_accept[] = {
	    "-H",
	    "Accept: application/openmetrics-text;version=1.0.0,application/"
	    "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
	    NULL};
	r = curl(port, "/metrics?x=1", prom_accept);
	assert_non_null(
	    strstr(r, "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
	free(r);
	const char *const text_accept[] = {"-H", "Accept: text/plain;version=0.0.4", NULL};
	r = curl(port, "/metrics", text_accept);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	if (promtool) {
		assert_int_equal(promtool_check(body_of(r), &lint), 0);
		assert_string_equal(lint, "");
		free(lint);
	}
	free(r);

	/* Elsewhere: 404; another method: 405. */
	r = curl(port, "/", NULL);
	assert_true(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
	free(r);
	const char *const post[] = {"-X", "POST", NULL};
	r = curl(port, "/metrics", post);
	assert_true(strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
	assert_non_null(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
	free(r);

	/* HEAD: the headers of GET, no body. */
	fd = tcp_connect(port);
	assert_int_equal(lbt_raw_send_bytes(fd, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 35), 0);
	r = read_to_eof(fd, lbt_ms(5000));
	close(fd);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(r, "\r\nContent-Length: "));
	assert_string_equal(body_of(r), "");
	free(r);

	/* A client that sends nothing holds the server 3 s at most: the next
	 * scrape is served, and the silent one gets 408 and is closed. */
	int silent = tcp_connect(port);
	int64_t t0 = lbt_now_ms();
	r = curl(port, "/metrics", NULL);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_true(lbt_now_ms() - t0 < 6000);
	free(r);
	r = read_to_eof(silent, lbt_ms(5000));
	close(silent);
	assert_true(strncmp(r, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
	free(r);

	/* An oversized request head: 431. */
	fd = tcp_connect(port);
	char big[12000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
	assert_int_equal(lbt_raw_send_bytes(fd, big, sizeof(big)), 0);
	r = read_to_eof(fd, lbt_ms(5000));
	close(fd);
	assert_true(strncmp(r, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
	free(r);

	/* The broker goes away: 503; it comes back: served again. */
	scene_free(&s);
	assert_int_equal(kill(b->pid, SIGTERM), 0);
	assert_int_equal(lbt_broker_wait_exit(b, lbt_ms(10000)), 0);
	r = curl(port, "/metrics", NULL);
	assert_true(strncmp(r, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
	free(r);
	struct lbt_broker_opts again = {.reuse_dir = true};
	assert_int_equal(lbt_broker_start_opts(b, &again), 0);
	r = curl(port, "/metrics", NULL);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(r, "\nlbus_connections_total "));
	free(r);

	/* SIGTERM: a clean end. */
	lbt_proc_signal(&g_server, SIGTERM);
	assert_int_equal(lbt_proc_wait(&g_server, lbt_ms(5000)), 0);
	assert_int_equal(g_server.exit_code, 0);
	lbt_proc_free(&g_server);
}

/* A port the test picked free, given without an address: loopback. */
static void test_metrics_chosen_port(void **state)
{
	struct lbt_broker *b = *state;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char arg[16];
	char *r;

	if (access(CURL, X_OK) != 0) {
		fprintf(stderr, "SKIP: %s is missing (tools/deps.sh installs it)\n", CURL);
		skip();
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(arg, sizeof(arg), "%d", ntohs(sa.sin_port));
	assert_int_equal(server_start(b, arg, "127.0.0.1"), ntohs(sa.sin_port));
	r = curl(ntohs(sa.sin_port), "/metrics", NULL);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(r);
	lbt_proc_signal(&g_server, SIGTERM);
	assert_int_equal(lbt_proc_wait(&g_server, lbt_ms(5000)), 0);
	assert_int_equal(g_server.exit_code, 0);
	lbt_proc_free(&g_server);
}

static int setup(void **state)
{
	static struct lbt_broker b;

	if (lbt_broker_start(&b, NULL) != 0)
		return -1;
	*state = &b;
	return 0;
}

static int teardown(void **state)
{
	lbt_proc_free(&g_server);
	return lbt_broker_stop(*state) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stats_openmetrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats_format_usage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics_http, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics_chosen_port, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
