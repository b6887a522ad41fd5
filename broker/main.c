/* SPDX-License-Identifier: MIT */
/*
 * lbusd: command line only. Everything else is in the lbusbroker library.
 * Exit status: 0 clean shutdown, 1 failure to start or run, 2 usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"
#include "lbus-limits.h"

static void usage(FILE *out)
{
	fputs("Usage: lbusd [-S PATH] [-c CONFIG] [-v]\n"
	      "Run the lbus message broker in the foreground.\n\n"
	      "  -S, --socket PATH   listen on PATH (default: $LBUS_SOCKET,\n"
	      "                      $XDG_RUNTIME_DIR/lbus/bus.sock, /tmp/lbus-$UID/bus.sock)\n"
	      "  -c, --config FILE   read limits from FILE (key = value lines)\n"
	      "  -v, --verbose       log debug lines\n"
	      "  -h, --help          show this help\n"
	      "  -V, --version       show the version\n",
	      out);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' }, { "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },      { NULL, 0, NULL, 0 },
	};
	struct broker_options opts = { 0 };
	struct broker b;
	int c, ret;

	while ((c = getopt_long(argc, argv, "S:c:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			opts.socket_path = optarg;
			break;
		case 'c':
			opts.config_path = optarg;
			break;
		case 'v':
			opts.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("lbusd " LBUS_VERSION_STRING);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lbusd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	ret = broker_init(&b, &opts);
	if (ret == 0)
		ret = broker_run(&b);
	broker_deinit(&b);
	return ret < 0 ? 1 : 0;
}
