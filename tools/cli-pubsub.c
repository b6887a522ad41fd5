/* SPDX-License-Identifier: MIT */
/*
 * lbus pub and lbus sub.
 *
 * pub sends one payload (the MESSAGE argument, a file, or all of stdin) -n
 * times, or with -l every line of stdin (or of -f FILE) as its own message.
 * Lines are cut out of large read() blocks with memchr(), so `seq 1000000 |
 * lbus pub t -l` costs a few hundred system calls, and the library batches
 * the frames. Before exiting, pub waits for the broker to have processed
 * everything (lbus_sync), so an error the broker reports later (denied,
 * retained store full) still sets the exit status, and nothing is lost.
 *
 * sub subscribes to every PATTERN and prints messages through cli-output.c
 * from the loop of cli-loop.c until -n messages, the -t time limit, a
 * signal or the end of stdout.
 *
 * Nothing routed to it is lost when it stops (a queue-group member's share
 * is nobody else's): with one PATTERN, -n N is also the subscription's
 * max_msgs, so the broker itself stops after N and routes the group's next
 * messages to the other members. Whenever else it stops (-t, SIGINT,
 * SIGTERM, -n counted across several PATTERNs) it leaves gracefully: it
 * unsubscribes and keeps printing what the broker had already queued to it
 * until the broker confirms (frames arrive in order, so nothing for those
 * subscriptions follows the Ok), waiting at most SUB_LEAVE_MS. Those
 * messages count for the exit status. Past -n, only a group member prints
 * them (outside a group they were copies nobody misses).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PUB_READ_BLOCK (256 * 1024)
/* How long sub waits for the broker to confirm its unsubscribes. */
#define SUB_LEAVE_MS 2000

struct pub_opts {
	bool lines, retain;
	const char *file;
	const char *encode; /* --encode FILE.desc:pkg.Type */
	bool fd;	    /* --fd: send the open file (stdin or -f) itself */
	uint64_t count;
};

struct pub_state {
	lbus *bus;
	const char *topic;
	const struct pub_opts *opts;
	struct cli_pb *pb;  /* --encode, else NULL */
	const char *source; /* where the payloads come from, for errors */
	uint64_t line;	    /* -l: the number of the current line */
	int status;	    /* first error the broker reported later, else 0 */
};

static int pub_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct pub_opts *o = data;

	switch (opt) {
	case 'l':
		o->lines = true;
		return 0;
	case 'r':
		o->retain = true;
		return 0;
	case 'f':
		o->file = arg;
		return 0;
	case 'E':
		o->encode = arg;
		return 0;
	case 'D':
		o->fd = true;
		return 0;
	default: /* 'n' */
		return cli_parse_count(cli, arg, &o->count);
	}
}

/* Errors the broker reports after the fact: print the first, keep its
 * status. */
static void pub_on_error(lbus *bus, int err, const char *what, void *userdata)
{
	struct pub_state *st = userdata;

	if (st->status)
		return;
	st->status = cli_status_of(err);
	if (st->status == CLI_USAGE)
		st->status = CLI_REFUSED;
	if (what && *what)
		fprintf(stderr, "lbus: publish to %s: %s (%s)\n", st->topic, lbus_strerror(err), what);
	else
		fprintf(stderr, "lbus: publish to %s: %s\n", st->topic, lbus_strerror(err));
}

/* With --encode: replace the JSON text at *data with its encoding. 0 or an
 * exit status (printed). */
static int pub_encode(struct pub_state *st, const void **data, size_t *len)
{
	char label[512];

	if (st->opts->lines)
		snprintf(label, sizeof(label), "%s, line %" PRIu64, st->source, st->line);
	else
		snprintf(label, sizeof(label), "%s", st->source);
	return cli_pb_encode(st->pb, label, *data, *len, data, len);
}

/* Publish one payload opts->count times, all but the last with LBUS_MORE
 * (gathered into one write), and the last too when more_follows (another
 * line of the same read). 0 or an exit status (printed). */
static int pub_payload(struct pub_state *st, const void *data, size_t len, bool more_follows)
{
	unsigned flags = st->opts->retain ? LBUS_RETAIN : 0;
	int r;

	st->line++;
	if (st->pb && (r = pub_encode(st, &data, &len)) != 0)
		return r;

	for (uint64_t i = 0; i < st->opts->count; i++) {
		bool more = more_follows || i + 1 < st->opts->count;

		r = lbus_publish(st->bus, st->topic, data, len, flags | (more ? LBUS_MORE : 0));
		if (r < 0)
			return cli_fail(r, "publish to %s", st->topic);
	}
	return 0;
}

/* Publish every complete line in b, keep the unfinished rest at its start.
 * 0 or an exit status. */
static int pub_complete_lines(struct pub_state *st, struct cli_buf *b)
{
	char *p = b->data, *end = b->data + b->len;
	char *nl = memchr(p, '\n', (size_t)(end - p));
	int r;

	while (nl) {
		char *next = memchr(nl + 1, '\n', (size_t)(end - nl - 1));

		if ((r = pub_payload(st, p, (size_t)(nl - p), next != NULL)) != 0)
			return r;
		p = nl + 1;
		nl = next;
	}
	b->len = (size_t)(end - p);
	memmove(b->data, p, b->len);
	return 0;
}

/* -l: every line of fd is one message (without its newline); a last line
 * without a newline counts too. 0 or an exit status. */
static int pub_lines(struct pub_state *st, int fd, const char *source)
{
	struct cli_buf b = {0};
	int r = 0;

	for (;;) {
		ssize_t n;

		if (cli_buf_reserve(&b, PUB_READ_BLOCK) < 0) {
			r = cli_fail(-ENOMEM, "read %s", source);
			break;
		}
		n = read(fd, b.data + b.len, b.cap - b.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_fail(-errno, "read %s", source);
			r = CLI_REFUSED;
			break;
		}
		if (n == 0) {
			if (b.len > 0)
				r = pub_payload(st, b.data, b.len, false);
			break;
		}
		b.len += (size_t)n;
		if ((r = pub_complete_lines(st, &b)) != 0)
			break;
	}
	cli_buf_free(&b);
	return r;
}

/* --fd: publish the open file itself (stdin, or -f FILE), count times,
 * with an empty payload; receivers read it (lbus sub --save-fds). */
static int pub_fd(struct pub_state *st)
{
	const struct pub_opts *o = st->opts;
	int fd = STDIN_FILENO, r = 0;

	if (o->file && (fd = open(o->file, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_fail(-errno, "open %s", o->file);
		return CLI_REFUSED;
	}
	for (uint64_t i = 0; i < o->count && r == 0; i++) {
		int e = lbus_publish_fds(st->bus, st->topic, "", 0, o->retain ? LBUS_RETAIN : 0, &fd, 1);
		if (e < 0)
			r = cli_fail(e, "publish to %s", st->topic);
	}
	if (o->file)
		close(fd);
	return r;
}

static int pub_run(struct pub_state *st, const char *message)
{
	const struct pub_opts *o = st->opts;
	struct cli_buf b;
	const void *data;
	size_t len;
	int fd = STDIN_FILENO, r;

	st->source = message ? "MESSAGE" : o->file ? o->file : "stdin";
	if (o->fd)
		return pub_fd(st);
	if (!o->lines) {
		if ((r = cli_payload(message, o->file, &b, &data, &len)) != 0)
			return r;
		r = pub_payload(st, data, len, false);
		cli_buf_free(&b);
		return r;
	}
	if (o->file && (fd = open(o->file, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_fail(-errno, "open %s", o->file);
		return CLI_REFUSED;
	}
	r = pub_lines(st, fd, o->file ? o->file : "stdin");
	if (o->file)
		close(fd);
	return r;
}

int cli_pub(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"lines", no_argument, NULL, 'l'},
	    {"retain", no_argument, NULL, 'r'},
	    {"file", required_argument, NULL, 'f'},
	    {"count", required_argument, NULL, 'n'},
	    {"encode", required_argument, NULL, 'E'},
	    {"fd", no_argument, NULL, 'D'},
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	struct pub_opts o = {.count = 1};
	struct pub_state st = {.opts = &o};
	int first, status, r;

	if (!cli_parse_options(cli, argc, argv, "lrf:n:", longopts, pub_option, &o, &first, &status))
		return status;
	if (argc - first < 1)
		return cli_usage_error(cli, "missing TOPIC");
	if (argc - first > 2)
		return cli_usage_error(cli, "too many arguments (quote a MESSAGE with spaces)");
	if (argc - first == 2 && (o.lines || o.file || o.fd))
		return cli_usage_error(cli, "a MESSAGE argument excludes -l, -f and --fd");
	if (o.fd && (o.lines || o.encode))
		return cli_usage_error(cli, "--fd excludes -l and --encode");
	st.topic = argv[first];
	if ((status = cli_pb_open(cli, o.encode, NULL, &st.pb)) != 0)
		return status;
	if ((status = cli_connect(cli, &st.bus)) == 0) {
		lbus_on_error(st.bus, pub_on_error, &st);
		status = pub_run(&st, argc - first == 2 ? argv[first + 1] : NULL);
		if (status == 0 && (r = lbus_sync(st.bus, -1)) < 0)
			status = cli_fail(r, "publish to %s", st.topic);
		if (status == 0)
			status = st.status;
		lbus_close(st.bus);
	}
	cli_pb_free(st.pb);
	return status;
}

/* ---- sub ---------------------------------------------------------------- */

struct sub_opts {
	struct cli_watch_opts watch;
	struct lbus_sub_opts sub;
	enum cli_format fmt;
	const char *save_fds; /* --save-fds DIR */
};

/* Default --stall when stdout is a terminal: how long a sub that reads
 * nothing (suspended with Ctrl-Z, or a terminal that stopped) may hold up
 * its publishers before it drops (and warns) instead. Into a pipe or a file
 * it blocks for as long as it takes, like any pipe writer: the broker sees
 * only socket reads, and a sub that writes a big batch to a slow pipe
 * reads nothing meanwhile, which would look the same as a stall. */
#define SUB_STALL_TTY_MS 2000

struct sub_one;

struct sub_state {
	const struct sub_opts *opts;
	struct cli_loop loop;
	uint64_t received;
	struct sub_one *ones; /* one per pattern */
	int n;
	bool done; /* -n reached outside a group: print nothing more */
};

/* What each subscription's callback needs: the shared state and its
 * pattern, for the drop warning. */
struct sub_one {
	struct sub_state *st;
	const char *pattern;
	uint64_t id;
	uint64_t missed; /* dropped since its last message (warned already) */
};

static int sub_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct sub_opts *o = data;

	switch (opt) {
	case 'g':
		o->sub.group = arg;
		return 0;
	case 'P': /* --policy */
		if (strcmp(arg, "drop") == 0)
			o->sub.policy = LBUS_POLICY_DROP;
		else if (strcmp(arg, "block") == 0)
			o->sub.policy = LBUS_POLICY_BLOCK;
		else
			return cli_usage_error(cli, "invalid policy '%s' (want drop or block)", arg);
		return 0;
	case 'F': /* --save-fds */
		o->save_fds = arg;
		return 0;
	case 'T': { /* --stall */
		int64_t ms;
		int r = cli_parse_secs(cli, arg, &ms);
		if (r == 0)
			o->sub.stall_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
		return r;
	}
	default:
		return cli_watch_option(cli, opt, arg, &o->watch);
	}
}

/* Copy what fd holds (from its start when it has one) to path. 0 or -errno. */
static int sub_copy_fd(int fd, const char *path)
{
	char buf[64 * 1024];
	off_t off = 0;
	bool seekable = true;
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r = 0;

	if (out < 0)
		return -errno;
	for (;;) {
		ssize_t n = seekable ? pread(fd, buf, sizeof(buf), off) : read(fd, buf, sizeof(buf));

		if (n < 0 && errno == ESPIPE && seekable) {
			seekable = false; /* a pipe or socket: read it as it comes */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		off += n;
		for (ssize_t w, done = 0; done < n; done += w) {
			w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR) {
				w = 0;
			} else if (w < 0) {
				r = -errno;
				break;
			}
		}
		if (r < 0)
			break;
	}
	if (close(out) < 0 && r == 0)
		r = -errno;
	return r;
}

/* --save-fds DIR: each descriptor of message number seq into DIR/SEQ-I. */
static void sub_save_fds(const struct sub_state *st, const struct lbus_msg *msg, uint64_t seq)
{
	for (size_t i = 0; i < msg->nfds; i++) {
		char path[PATH_MAX];
		int r;

		snprintf(path, sizeof(path), "%s/%" PRIu64 "-%zu", st->opts->save_fds, seq, i);
		if ((r = sub_copy_fd(msg->fds[i], path)) < 0)
			fprintf(stderr, "lbus: save %s: %s\n", path, strerror(-r));
	}
}

static void sub_on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct sub_one *one = userdata;
	struct sub_state *st = one->st;

	if (st->done)
		return;
	if (st->opts->save_fds)
		sub_save_fds(st, msg, st->received + 1);
	cli_print_msg_missed(st->opts->fmt, msg, one->missed, st->opts->watch.pb);
	one->missed = 0;
	if (++st->received == st->opts->watch.count) {
		cli_loop_stop(&st->loop);
		st->done = !st->opts->sub.group;
	}
}

/*
 * Leave gracefully (see the top comment): cancel every subscription, printing
 * what arrives meanwhile, within SUB_LEAVE_MS in all. Returns the loop end to
 * report: end itself, or a negative errno when stdout or the connection
 * failed meanwhile. A subscription already gone (max_msgs reached) is
 * skipped by the library without a round trip.
 */
static int sub_leave(lbus *bus, const struct sub_state *st, int end)
{
	int64_t deadline = cli_now_ms() + SUB_LEAVE_MS;

	for (int i = 0; i < st->n; i++) {
		int64_t left = deadline - cli_now_ms();
		int r = lbus_unsubscribe_timeout(bus, st->ones[i].id, left > 0 ? (int)left : 0);

		if (r == -ETIMEDOUT)
			break;
		if (r < 0 && r != -ENOENT)
			return r;
	}
	int out = cli_flush_stdout();
	return out < 0 ? out : end;
}

/* A drop notice: warn at once, even when no message follows it; the next
 * message of that subscription carries the count (--json: "missed"). */
static void sub_on_dropped(lbus *bus, uint64_t sub_id, uint64_t count, void *userdata)
{
	struct sub_state *st = userdata;

	for (int i = 0; i < st->n; i++) {
		if (st->ones[i].id == sub_id) {
			fprintf(stderr, "lbus: warning: %" PRIu64 " messages dropped on %s\n", count,
				st->ones[i].pattern);
			st->ones[i].missed += count;
		}
	}
}

static int sub_run(lbus *bus, struct sub_state *st, char **patterns, int n)
{
	struct sub_one *ones = calloc((size_t)n, sizeof(*ones));
	struct lbus_sub_opts sub = st->opts->sub;
	int status = CLI_OK, end;

	if (!ones)
		return cli_fail(-ENOMEM, "subscribe");
	if (n == 1)
		sub.max_msgs = st->opts->watch.count; /* the broker stops after N itself */
	cli_loop_init(&st->loop, bus, st->opts->watch.timeout_ms);
	st->ones = ones;
	st->n = n;
	lbus_on_dropped(bus, sub_on_dropped, st);
	for (int i = 0; i < n && status == CLI_OK; i++) {
		ones[i] = (struct sub_one){.st = st, .pattern = patterns[i]};
		int r = lbus_subscribe(bus, patterns[i], sub_on_msg, &ones[i], &sub, &ones[i].id);
		if (r < 0)
			status = cli_fail_bus(bus, r, "subscribe to %s", patterns[i]);
	}
	if (status == CLI_OK) {
		end = cli_loop_run(&st->loop);
		if (end >= 0)
			end = sub_leave(bus, st, end);
		status = cli_watch_status(end, &st->opts->watch, st->received, true);
	} else {
		cli_flush_stdout();
	}
	lbus_close(bus);
	free(ones);
	return status;
}

int cli_sub(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_WATCH_LONGOPTS,
	    {"group", required_argument, NULL, 'g'},
	    {"policy", required_argument, NULL, 'P'},
	    {"stall", required_argument, NULL, 'T'},
	    {"save-fds", required_argument, NULL, 'F'},
	    CLI_RECONNECT_LONGOPT,
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	/* Lossless by default, like a pipe: a shell pipeline (seq 1000000 | lbus
	 * pub t -l, lbus sub t -n 1000000) gets every message however fast the
	 * burst; in a terminal, a sub suspended for SUB_STALL_TTY_MS stops
	 * holding up the publishers. --policy drop never slows them at all. */
	struct sub_opts o = {.sub = {.size = sizeof(struct lbus_sub_opts),
				     .policy = LBUS_POLICY_BLOCK,
				     .stall_ms = isatty(STDOUT_FILENO) ? SUB_STALL_TTY_MS : 0}};
	struct sub_state st = {.opts = &o};
	lbus *bus;
	int first, status;

	cli_watch_init(&o.watch);
	if (!cli_parse_options(cli, argc, argv, CLI_WATCH_SHORTOPTS "g:", longopts, sub_option, &o, &first,
			       &status))
		return status;
	o.fmt = cli_watch_format(&o.watch, CLI_FMT_TOPIC);
	if (argc - first < 1)
		return cli_usage_error(cli, "missing PATTERN");
	if ((status = cli_watch_ready(cli, &o.watch)) != 0)
		return status;
	if ((status = cli_loop_signals()) == 0 && (status = cli_connect_long(cli, &bus)) == 0)
		status = sub_run(bus, &st, argv + first, argc - first);
	cli_watch_deinit(&o.watch);
	return status;
}
