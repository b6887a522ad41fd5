/* SPDX-License-Identifier: MIT */
/*
 * lbus call: one request, one reply.
 *
 * The request is the MESSAGE argument, -f FILE or all of stdin. The reply's
 * payload is written as is, followed by a newline unless it already ends
 * with one (so both `echo`-style and raw responders read well in a shell).
 * "No responders", "responder gone" and a responder's failure
 * (lbus_reply_error: "lbus: call TARGET: responder failed: REASON") come
 * back at once as status 1; the time limit (-t, default 30 s) as status 4.
 */
#include <errno.h>
#include <limits.h>

#include "cli.h"

#define CALL_DEFAULT_TIMEOUT_MS 30000

struct call_opts {
	const char *file;
	int64_t timeout_ms;
};

static int call_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct call_opts *o = data;

	if (opt == 'f') {
		o->file = arg;
		return 0;
	}
	return cli_parse_secs(cli, arg, &o->timeout_ms); /* 't' */
}

/* Write the reply's payload and, unless it ends with one, a newline. */
static int print_reply(const struct lbus_reply *reply)
{
	const char *p = reply->data;
	int r;

	if (reply->len == 0) {
		putchar('\n');
	} else {
		fwrite(reply->data, 1, reply->len, stdout);
		if (p[reply->len - 1] != '\n')
			putchar('\n');
	}
	r = cli_flush_stdout();
	return r < 0 ? cli_loop_failure(r) : CLI_OK;
}

/* The responder answered with lbus_reply_error(): say why, status 1. */
static int responder_failed(const char *target, const char *reason)
{
	fprintf(stderr, "lbus: call %s: responder failed: %s\n", target, reason);
	return CLI_REFUSED;
}

int cli_call(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"timeout", required_argument, NULL, 't'},
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	struct call_opts o = {.timeout_ms = CALL_DEFAULT_TIMEOUT_MS};
	struct lbus_reply *reply = NULL;
	struct cli_buf b;
	const void *data;
	size_t len;
	lbus *bus;
	int first, status, r;

	if (!cli_parse_options(cli, argc, argv, "f:t:", longopts, call_option, &o, &first, &status))
		return status;
	if (argc - first < 1)
		return cli_usage_error(cli, "missing TARGET");
	if (argc - first > 2)
		return cli_usage_error(cli, "too many arguments (quote a MESSAGE with spaces)");
	if (argc - first == 2 && o.file)
		return cli_usage_error(cli, "a MESSAGE argument excludes -f");
	if (o.timeout_ms > INT_MAX)
		o.timeout_ms = INT_MAX;
	if ((status = cli_connect(cli, &bus)) != 0)
		return status;
	status = cli_payload(argc - first == 2 ? argv[first + 1] : NULL, o.file, &b, &data, &len);
	if (status == 0) {
		r = lbus_call(bus, argv[first], data, len, (int)o.timeout_ms, &reply);
		if (r == -EREMOTEIO && reply && reply->error)
			status = responder_failed(argv[first], reply->error);
		else
			status = r < 0 ? cli_fail(r, "call %s", argv[first]) : print_reply(reply);
	}
	lbus_reply_free(reply);
	cli_buf_free(&b);
	lbus_close(bus);
	return status;
}
