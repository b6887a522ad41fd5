/* SPDX-License-Identifier: MIT */
/*
 * lbusd: command line only. Everything else is in the lbusbroker library.
 * Exit status: 0 clean shutdown (or a valid configuration with
 * --check-config), 1 failure to start or run (or an invalid configuration),
 * 2 usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"
#include "lbus-limits.h"

#define EXIT_USAGE 2 /* exit status for a usage error */
enum { OPT_CHECK_CONFIG = 0x100 };

static void usage(FILE *out)
{
	fputs("Usage: lbusd [-S PATH] [-c CONFIG] [-v]\n"
	      "       lbusd --check-config [-c CONFIG]\n"
	      "Run the lbus message broker in the foreground.\n\n"
	      "  -S, --socket PATH   listen on PATH (default: $LBUS_SOCKET,\n"
	      "                      $XDG_RUNTIME_DIR/lbus/bus.sock, /tmp/lbus-$UID/bus.sock)\n"
	      "  -c, --config FILE   read the configuration from FILE (default:\n"
	      "                      $XDG_CONFIG_HOME/lbus/lbusd.conf, else\n"
	      "                      ~/.config/lbus/lbusd.conf, when it exists)\n"
	      "      --check-config  check the configuration, print the effective\n"
	      "                      settings and exit: 0 valid, 1 invalid\n"
	      "  -v, --verbose       log debug lines\n"
	      "  -h, --help          show this help\n"
	      "  -V, --version       show the version\n\n"
	      "See lbusd(8) and lbusd.conf(5).\n",
	      out);
}

/* lbusd --check-config: like `nginx -t`. */
static int check_config(const struct broker_options *opts)
{
	static struct broker b; /* large; only its configuration part is used */
	char err[512];

	if (broker_config_init(&b, opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "lbusd: %s\n", err);
		fputs("lbusd: configuration check failed\n", stderr);
		return 1;
	}
	if (b.config_path)
		printf("# lbusd %s: effective settings, from %s\n", LBUS_VERSION_STRING, b.config_path);
	else
		printf("# lbusd %s: effective settings (no configuration file: the defaults)\n",
		       LBUS_VERSION_STRING);
	config_print(&b.cfg, stdout);
	fprintf(stderr, "lbusd: configuration %s%s is valid\n", b.config_path ? "file " : "",
		b.config_path ? b.config_path : "(defaults)");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 'S'},
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct broker_options opts = {0};
	bool check = false;
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
		case OPT_CHECK_CONFIG:
			check = true;
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
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lbusd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (check)
		return check_config(&opts);
	ret = broker_init(&b, &opts);
	if (ret == 0)
		ret = broker_run(&b);
	broker_deinit(&b);
	return ret < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
