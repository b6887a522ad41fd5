/* SPDX-License-Identifier: MIT */
/*
 * What every command of the lbus tool shares: option parsing on top of
 * getopt_long (per-command option tables, options before or after the
 * positional arguments, also with POSIXLY_CORRECT set, "--" ends them), the one-line error messages and the
 * mapping from library errors to the exit statuses of DESIGN.md, connecting,
 * number parsing, and reading payloads from arguments, files or stdin.
 *
 * Exit statuses: 1 when the broker refused (no such name, no responders,
 * denied, name taken, responder gone, limits), 2 for usage errors
 * (including an invalid topic, pattern or name, which the library rejects
 * with -EINVAL before sending), 3 when the broker cannot be reached or the
 * connection is lost, 4 on a timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lbus: %s: ", cli->cmd ? cli->cmd : "usage");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cli->cmd)
		fprintf(stderr, " (see 'lbus %s --help')\n", cli->cmd);
	else
		fputs(" (see 'lbus --help')\n", stderr);
	return CLI_USAGE;
}

int cli_bad_option(const struct cli *cli, int c, const char *elem, const struct option *longopts)
{
	bool is_long = elem[0] == '-' && elem[1] == '-';
	const char *near = c == '?' && is_long ? cli_suggest_option(elem, longopts) : NULL;

	if (!is_long && optopt) /* within a cluster (-xv), name the letter */
		return cli_usage_error(
		    cli, c == ':' ? "option '-%c' needs an argument" : "unknown option '-%c'", optopt);
	if (c == ':')
		return cli_usage_error(cli, "option '%s' needs an argument", elem);
	if (near)
		return cli_usage_error(cli, "unknown option '%s', did you mean '--%s'?", elem, near);
	return cli_usage_error(cli, "unknown option '%s'", elem);
}

/*
 * getopt_long in RETURN_IN_ORDER mode (optstring starts with '-'): options
 * are parsed where they stand, positional arguments come back as 1, whatever
 * POSIXLY_CORRECT says. We collect the positional arguments (and what follows
 * "--") and move them, in order, to the end of argv, where the callers expect
 * them. argv[argc] stays NULL.
 */
bool cli_parse_options(struct cli *cli, int argc, char **argv, const char *shortopts,
		       const struct option *longopts, cli_opt_fn fn, void *opts, int *first_arg, int *status)
{
	char **pos = calloc((size_t)argc + 1, sizeof(*pos));
	char all[64];
	int c, npos = 0, at;
	bool ok = false;

	if (!pos) {
		*status = cli_fail(-ENOMEM, "parse options");
		return false;
	}
	snprintf(all, sizeof(all), "-:%sS:h", shortopts);
	opterr = 0;
	optind = 0; /* full re-initialisation (GNU getopt) */
	for (;;) {
		at = optind ? optind : 1; /* the element this call looks at */
		c = getopt_long(argc, argv, all, longopts, NULL);
		if (c == -1) {
			ok = true;
			break;
		}
		if (c == 1) {
			pos[npos++] = optarg;
		} else if (c == 'S') {
			cli->socket = optarg;
		} else if (c == 'R') {
			cli->no_reconnect = true;
		} else if (c == 'h') {
			cli_print_help(stdout, cli->cmd);
			*status = CLI_OK;
			break;
		} else if (c == '?' || c == ':') {
			*status = cli_bad_option(cli, c, at < argc ? argv[at] : "", longopts);
			break;
		} else if ((*status = fn(cli, c, optarg, opts)) != 0) {
			break;
		}
	}
	if (ok) {
		while (optind < argc) /* after "--" */
			pos[npos++] = argv[optind++];
		*first_arg = argc - npos;
		memcpy(argv + *first_arg, pos, (size_t)npos * sizeof(*pos));
	}
	free(pos);
	return ok;
}

int cli_status_of(int err)
{
	switch (-err) {
	case ETIMEDOUT:
		return CLI_TIMEOUT;
	case EINVAL:
		return CLI_USAGE;
	case ECONNRESET:
	case EPIPE:
	case ENOTCONN:
		return CLI_NO_BROKER;
	default:
		return CLI_REFUSED;
	}
}

static int cli_vfail(const char *reason, int err, const char *what_fmt, va_list ap)
{
	fputs("lbus: ", stderr);
	vfprintf(stderr, what_fmt, ap);
	if (reason)
		fprintf(stderr, ": %s (%s)\n", lbus_strerror(err), reason);
	else
		fprintf(stderr, ": %s\n", lbus_strerror(err));
	return cli_status_of(err);
}

int cli_fail(int err, const char *what_fmt, ...)
{
	va_list ap;
	int status;

	va_start(ap, what_fmt);
	status = cli_vfail(NULL, err, what_fmt, ap);
	va_end(ap);
	return status;
}

int cli_fail_bus(const lbus *bus, int err, const char *what_fmt, ...)
{
	va_list ap;
	int status;

	va_start(ap, what_fmt);
	status = cli_vfail(lbus_request_reason(bus), err, what_fmt, ap);
	va_end(ap);
	return status;
}

/* The path lbus_connect() uses for NULL, for the error message only (the
 * resolution order of DESIGN.md, "Socket path"). */
static void default_path(char *out, size_t size)
{
	const char *env = getenv("LBUS_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(out, size, "%s", env);
	else if (xdg && *xdg)
		snprintf(out, size, "%s/lbus/bus.sock", xdg);
	else
		snprintf(out, size, "/tmp/lbus-%u/bus.sock", (unsigned)getuid());
}

int cli_connect(const struct cli *cli, lbus **bus)
{
	char path[4200], reason[512];
	int r = lbus_connect_reason(bus, cli->socket, reason, sizeof(reason));

	if (r >= 0)
		return 0;
	if (cli->socket && *cli->socket)
		snprintf(path, sizeof(path), "%s", cli->socket);
	else
		default_path(path, sizeof(path));
	if (reason[0]) { /* the broker answered, and refused: show its reason */
		fprintf(stderr, "lbus: the broker on %s refused the connection: %s\n", path, reason);
		return CLI_REFUSED;
	}
	if (r == -EPERM) /* the /tmp fallback, served by another user */
		fprintf(stderr, "lbus: cannot connect to %s: the broker there runs as another user\n", path);
	else
		fprintf(stderr, "lbus: cannot connect to %s: %s\n", path, lbus_strerror(r));
	return r == -EACCES || r == -ENOSPC ? CLI_REFUSED : CLI_NO_BROKER; /* refused without a reason */
}

/* The two lines a long-running command prints across a broker restart. */
static void on_connection(lbus *bus, enum lbus_connection_event ev, int err, void *userdata)
{
	(void)bus, (void)userdata, (void)err;
	fflush(stdout); /* what came before the loss first */
	if (ev == LBUS_DISCONNECTED)
		fprintf(stderr, "lbus: connection lost, reconnecting\n");
	else if (ev == LBUS_RECONNECTED)
		fprintf(stderr, "lbus: reconnected (messages may have been missed)\n");
}

int cli_connect_long(const struct cli *cli, lbus **bus)
{
	struct lbus_connect_opts opts = LBUS_CONNECT_OPTS_INIT;

	if (cli->no_reconnect)
		return cli_connect(cli, bus);
	opts.reconnect = true;
	if (lbus_connect_with(bus, cli->socket, &opts) < 0)
		return cli_connect(cli, bus); /* says why (with the broker's reason) */
	lbus_on_connection(*bus, on_connection, NULL);
	return 0;
}

int cli_parse_count(const struct cli *cli, const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v == 0)
		return cli_usage_error(cli, "invalid count '%s' (want an integer >= 1)", arg);
	*out = v;
	return 0;
}

int cli_parse_secs(const struct cli *cli, const char *arg, int64_t *ms_out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0 && v <= 1e9)) /* also NaN */
		return cli_usage_error(cli, "invalid time '%s' (want seconds >= 0, e.g. 2.5)", arg);
	*ms_out = (int64_t)(v * 1000.0 + 0.999); /* round up to whole ms */
	return 0;
}

void cli_watch_init(struct cli_watch_opts *o)
{
	*o = (struct cli_watch_opts){.timeout_ms = -1};
}

int cli_watch_option(struct cli *cli, int opt, const char *arg, struct cli_watch_opts *o)
{
	switch (opt) {
	case 'n':
		return cli_parse_count(cli, arg, &o->count);
	case 't':
		return cli_parse_secs(cli, arg, &o->timeout_ms);
	case 'v':
		o->verbose = true;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case 'D':
		o->decode = arg;
		return 0;
	case 'M':
		o->decode_map = arg;
		return 0;
	default:
		return cli_usage_error(cli, "unexpected option");
	}
}

int cli_watch_ready(const struct cli *cli, struct cli_watch_opts *o)
{
	return cli_pb_open(cli, o->decode, o->decode_map, &o->pb);
}

void cli_watch_deinit(struct cli_watch_opts *o)
{
	cli_pb_free(o->pb);
	o->pb = NULL;
}

int cli_watch_run(struct cli_loop *loop, const struct cli_watch_opts *o, const uint64_t *count,
		  bool zero_is_timeout)
{
	int end = cli_loop_run(loop);

	return cli_watch_status(end, o, *count, zero_is_timeout); /* the callbacks counted while it ran */
}

int cli_watch_status(int end, const struct cli_watch_opts *o, uint64_t received, bool zero_is_timeout)
{
	if (end < 0)
		return cli_loop_failure(end);
	if (end != CLI_LOOP_TIMEOUT)
		return CLI_OK;
	if (o->count)
		return received < o->count ? CLI_TIMEOUT : CLI_OK;
	return received == 0 && zero_is_timeout ? CLI_TIMEOUT : CLI_OK;
}

int cli_buf_reserve(struct cli_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->cap - b->len >= more)
		return 0;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void cli_buf_free(struct cli_buf *b)
{
	free(b->data);
	*b = (struct cli_buf){0};
}

int cli_buf_read_fd(struct cli_buf *b, int fd)
{
	for (;;) {
		ssize_t n;
		int r = cli_buf_reserve(b, 65536);

		if (r < 0)
			return r;
		n = read(fd, b->data + b->len, b->cap - b->len);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b->len += (size_t)n;
	}
}

int cli_payload(const char *message, const char *file, struct cli_buf *b, const void **data, size_t *len)
{
	int fd = STDIN_FILENO;
	int r;

	*b = (struct cli_buf){0};
	if (message) {
		*data = message;
		*len = strlen(message);
		return 0;
	}
	if (file) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_fail(-errno, "open %s", file);
			return CLI_REFUSED;
		}
	}
	r = cli_buf_read_fd(b, fd);
	if (file)
		close(fd);
	if (r < 0) {
		cli_buf_free(b);
		cli_fail(r, "read %s", file ? file : "stdin");
		return CLI_REFUSED;
	}
	*data = b->data ? b->data : "";
	*len = b->len;
	return 0;
}

int64_t cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
