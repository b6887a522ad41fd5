/* SPDX-License-Identifier: MIT */
/*
 * lbus metrics --listen [ADDR:]PORT: serve the bus's metrics over HTTP at
 * /metrics for a Prometheus scrape, so that the broker itself never speaks
 * HTTP. Each scrape asks the broker for its stats and client list (as
 * `lbus stats --openmetrics` does) over one connection kept open between
 * scrapes and made again when the broker restarted; while the broker
 * cannot be reached a scrape gets 503.
 *
 * The listener is loopback (127.0.0.1) unless ADDR says otherwise; port 0
 * picks a free one. The address actually bound is printed on stdout
 * ("listening on http://127.0.0.1:9464/metrics"). Requests are answered
 * one at a time, each within a few seconds at most (http.h): GET and HEAD
 * of /metrics (any query), 404 for other paths, 405 for other methods.
 * OpenMetrics is served unless the Accept field asks for text/plain and
 * not for OpenMetrics (old scrapers): then the Prometheus 0.0.4 text.
 *
 * -t SECS stops after SECS seconds; SIGINT and SIGTERM stop it too (0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "http.h"
#include "openmetrics.h"

/* How long one client may take to send its request, and to read the answer. */
#define METRICS_IO_TIMEOUT_MS 3000
/* How long to read what a client still sends after its answer (so that
 * closing does not reset the connection before it has read the answer). */
#define METRICS_LINGER_MS 500

struct metrics_opts {
	const char *listen; /* [ADDR:]PORT */
	int64_t timeout_ms; /* -t, -1: none */
};

struct metrics_server {
	const struct cli *cli;
	lbus *bus; /* NULL while the broker is unreachable */
	int fd;	   /* listening socket */
};

static int metrics_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct metrics_opts *o = data;

	if (opt == 'l') {
		o->listen = arg;
		return 0;
	}
	return cli_parse_secs(cli, arg, &o->timeout_ms) ? CLI_USAGE : 0;
}

/* Split "[ADDR:]PORT" ("[::1]:9464" for IPv6) into host and port (in buf).
 * 0 or -EINVAL. */
static int split_listen(const char *arg, char *buf, size_t size, const char **host, const char **port)
{
	char *colon;

	if (snprintf(buf, size, "%s", arg) >= (int)size)
		return -EINVAL;
	colon = strrchr(buf, ':');
	if (!colon) {
		*host = "127.0.0.1";
		*port = buf;
	} else {
		*colon = '\0';
		*host = buf;
		*port = colon + 1;
		if (buf[0] == '[' && colon > buf && colon[-1] == ']') {
			colon[-1] = '\0';
			*host = buf + 1;
		}
	}
	return **host && **port && strspn(*port, "0123456789") == strlen(*port) ? 0 : -EINVAL;
}

/* Bind and listen on [ADDR:]PORT; print the address. The socket, or an
 * exit status (after printing why) as a negative number. */
static int metrics_listen(const struct cli *cli, const char *arg)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai, *a;
	const char *host, *port;
	char buf[300];
	int fd = -1, err = 0, one = 1;

	if (split_listen(arg, buf, sizeof(buf), &host, &port) < 0)
		return -cli_usage_error(cli, "--listen: expected [ADDR:]PORT, not '%s'", arg);
	err = getaddrinfo(host, port, &hints, &ai);
	if (err) {
		fprintf(stderr, "lbus: metrics: cannot resolve %s: %s\n", arg, gai_strerror(err));
		return -CLI_REFUSED;
	}
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 16) < 0) {
			err = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		fprintf(stderr, "lbus: metrics: cannot listen on %s: %s\n", arg, strerror(err));
		return -CLI_REFUSED;
	}
	return fd;
}

/* Print "listening on http://ADDR:PORT/metrics" for the bound socket. */
static void print_address(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	printf(ss.ss_family == AF_INET6 ? "listening on http://[%s]:%s/metrics\n"
					: "listening on http://%s:%s/metrics\n",
	       host, port);
}

/* ---- one scrape ------------------------------------------------------------ */

/* One sample of the bus; connects again once when the connection is gone. */
static int metrics_sample(struct metrics_server *s, struct lbus_stats **stats, struct lbus_client_list **list)
{
	int r = s->bus ? cli_bus_sample(s->bus, stats, list) : -ENOTCONN;

	if (r >= 0 || r == -ENOMEM)
		return r;
	lbus_close(s->bus);
	s->bus = NULL;
	r = lbus_connect(&s->bus, s->cli->socket);
	if (r < 0) {
		s->bus = NULL;
		return r;
	}
	return cli_bus_sample(s->bus, stats, list);
}

/* The format the Accept field asks for: OpenMetrics unless only the
 * Prometheus text is acceptable. */
static enum metrics_format metrics_negotiate(const char *accept)
{
	if (strstr(accept, "application/openmetrics-text") || !strstr(accept, "text/plain"))
		return METRICS_OPENMETRICS;
	return METRICS_PROMETHEUS;
}

/* Answer GET/HEAD /metrics. */
static void metrics_scrape(struct metrics_server *s, int fd, const struct http_request *req, int64_t deadline)
{
	enum metrics_format fmt = metrics_negotiate(req->accept);
	bool head = strcmp(req->method, "HEAD") == 0;
	struct lbus_client_list *list;
	struct lbus_stats *stats;
	char *body = NULL, msg[200];
	size_t len = 0;
	FILE *f;
	int r = metrics_sample(s, &stats, &list);

	if (r < 0) {
		len = (size_t)snprintf(msg, sizeof(msg), "cannot reach the broker: %s\n", lbus_strerror(r));
		http_respond(fd, 503, "text/plain; charset=utf-8", NULL, msg, len, head, deadline);
		return;
	}
	f = open_memstream(&body, &len);
	if (f) {
		metrics_write(f, fmt, &stats->broker, list);
		if (fclose(f) != 0) {
			free(body);
			body = NULL;
		}
	}
	lbus_stats_free(stats);
	lbus_client_list_free(list);
	if (body)
		http_respond(fd, 200, metrics_content_type(fmt), NULL, body, len, head, deadline);
	else
		http_respond(fd, 500, NULL, NULL, "", 0, head, deadline);
	free(body);
}

/* Read, answer and close one connection. */
static void metrics_serve_one(struct metrics_server *s, int fd)
{
	int64_t deadline = http_now_ms() + METRICS_IO_TIMEOUT_MS;
	char head[HTTP_HEAD_MAX + 1];
	struct http_request req;
	ssize_t n = http_read_head(fd, head, sizeof(head), deadline);
	int status;

	if (n == -ECONNRESET || (n < 0 && n != -ETIMEDOUT && n != -EMSGSIZE)) {
		close(fd);
		return;
	}
	status = n == -ETIMEDOUT ? 408 : n == -EMSGSIZE ? 431 : http_parse_request(head, &req);
	if (!status && req.has_body)
		status = 413;
	if (!status && strcmp(req.method, "GET") != 0 && strcmp(req.method, "HEAD") != 0)
		status = 405;
	if (!status && strcmp(req.path, "/metrics") != 0)
		status = 404;
	deadline = http_now_ms() + METRICS_IO_TIMEOUT_MS;
	if (status == 0) {
		metrics_scrape(s, fd, &req, deadline);
	} else {
		const char *text = http_reason(status);
		bool head_only = status == 404 && strcmp(req.method, "HEAD") == 0;

		http_respond(fd, status, "text/plain; charset=utf-8",
			     status == 405 ? "Allow: GET, HEAD\r\n" : NULL, text, strlen(text), head_only,
			     deadline);
	}
	http_close(fd, http_now_ms() + METRICS_LINGER_MS);
}

/* Accept and serve connections until deadline_ms (-1: none) or a signal. */
static int metrics_loop(struct metrics_server *s, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd fds[2] = {{.fd = s->fd, .events = POLLIN},
					{.fd = cli_loop_signal_fd(), .events = POLLIN}};
		int64_t left = deadline_ms < 0 ? -1 : deadline_ms - cli_now_ms();
		int conn;

		if (deadline_ms >= 0 && left <= 0)
			return CLI_OK;
		if (poll(fds, 2, left > 24 * 3600 * 1000 ? 24 * 3600 * 1000 : (int)left) < 0 &&
		    errno != EINTR)
			return cli_fail(-errno, "poll");
		if (fds[1].revents)
			return CLI_OK;
		if (!(fds[0].revents & POLLIN))
			continue;
		conn = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (conn >= 0)
			metrics_serve_one(s, conn);
	}
}

int cli_metrics(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
						 {"timeout", required_argument, NULL, 't'},
						 CLI_COMMON_LONGOPTS,
						 {0}};
	struct metrics_opts o = {.timeout_ms = -1};
	struct metrics_server s = {.cli = cli, .fd = -1};
	int status, first;

	if (!cli_parse_options(cli, argc, argv, "l:t:", longopts, metrics_option, &o, &first, &status))
		return status;
	if (first < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[first]);
	if (!o.listen)
		return cli_usage_error(cli, "missing --listen [ADDR:]PORT");
	status = cli_loop_signals();
	if (status)
		return status;
	status = cli_connect(cli, &s.bus);
	if (status)
		return status;
	s.fd = metrics_listen(cli, o.listen);
	if (s.fd < 0) {
		lbus_close(s.bus);
		return -s.fd;
	}
	print_address(s.fd);
	status = cli_flush_stdout();
	status = status < 0 ? cli_loop_failure(status)
			    : metrics_loop(&s, o.timeout_ms < 0 ? -1 : cli_now_ms() + o.timeout_ms);
	close(s.fd);
	lbus_close(s.bus);
	return status;
}
