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
#include <stdlib.h>

#include "cli.h"

#define CALL_DEFAULT_TIMEOUT_MS 30000

struct call_opts {
	const char *file;
	int64_t timeout_ms;
	const char *encode, *decode; /* FILE.desc:pkg.Type */
	struct cli_pb *request, *reply;
};

static int call_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct call_opts *o = data;

	switch (opt) {
	case 'f':
		o->file = arg;
		return 0;
	case 'E':
		o->encode = arg;
		return 0;
	case 'D':
		o->decode = arg;
		return 0;
	default:
		return cli_parse_secs(cli, arg, &o->timeout_ms); /* 't' */
	}
}

/* Write the reply's payload and, unless it ends with one, a newline; with
 * --decode, its JSON (status 1 when it does not decode). */
static int print_reply(const struct lbus_reply *reply, const struct cli_pb *pb, const char *target)
{
	const char *p = reply->data;
	char *json;
	int r;

	if (pb) {
		if (cli_pb_decode(cli_pb_type_for(pb, NULL), target, reply->data, reply->len, &json) < 0)
			return CLI_REFUSED;
		puts(json);
		free(json);
	} else if (reply->len == 0) {
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

/* Read the request (encode it with --encode), call target, print the reply. */
static int call_run(lbus *bus, const struct call_opts *o, const char *target, const char *message)
{
	struct lbus_reply *reply = NULL;
	struct cli_buf b;
	const void *data;
	size_t len;
	int status, r;

	status = cli_payload(message, o->file, &b, &data, &len);
	if (status == 0 && o->request)
		status = cli_pb_encode(o->request,
				       message	 ? "MESSAGE"
				       : o->file ? o->file
						 : "stdin",
				       data, len, &data, &len);
	if (status == 0) {
		r = lbus_call(bus, target, data, len, (int)o->timeout_ms, &reply);
		if (r == -EREMOTEIO && reply && reply->error)
			status = responder_failed(target, reply->error);
		else
			status = r < 0 ? cli_fail_bus(bus, r, "call %s", target)
				       : print_reply(reply, o->reply, target);
	}
	lbus_reply_free(reply);
	cli_buf_free(&b);
	return status;
}

int cli_call(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"timeout", required_argument, NULL, 't'},
	    {"encode", required_argument, NULL, 'E'},
	    {"decode", required_argument, NULL, 'D'},
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	struct call_opts o = {.timeout_ms = CALL_DEFAULT_TIMEOUT_MS};
	lbus *bus;
	int first, status;

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
	if ((status = cli_pb_open(cli, o.encode, NULL, &o.request)) == 0 &&
	    (status = cli_pb_open(cli, o.decode, NULL, &o.reply)) == 0 &&
	    (status = cli_connect(cli, &bus)) == 0) {
		status = call_run(bus, &o, argv[first], argc - first == 2 ? argv[first + 1] : NULL);
		lbus_close(bus);
	}
	cli_pb_free(o.request);
	cli_pb_free(o.reply);
	return status;
}
