/* SPDX-License-Identifier: MIT */
/*
 * lbus serve NAME -- COMMAND [ARG...]: own NAME and answer every call by
 * running COMMAND (posix_spawnp, no shell) with the request on its stdin and
 * replying with everything it wrote to stdout.
 *
 * Calls are answered one at a time, in arrival order, but never by blocking
 * the bus: calls are queued (payload copied) as they arrive, and the running
 * child's pipes and its pidfd are polled by the same loop (cli-loop.c hooks)
 * that dispatches the bus (where pidfds are missing, the exit status is
 * collected once stdout is closed). So the connection keeps being served (pings,
 * further calls, the broker's flow control) while a slow command runs, and
 * a large request or reply cannot deadlock the pipes. A request is answered
 * once the command has closed its stdout and exited: with its output when it
 * exited with status 0, else with an error reply (lbus_reply_error: "command
 * exited with status N", "command killed by signal N"), and likewise for a
 * command that cannot be started ("cannot run COMMAND: why") and for output
 * too large for a reply ("reply too large"); the caller fails at once
 * (-EREMOTEIO) instead of taking a failure for an answer or waiting for its
 * timeout. A queued call whose caller's deadline (lbus_msg.deadline_ms) has
 * passed before its turn is skipped, not run: nobody waits for its answer.
 *
 * When serve ends (signal, -t, -n) while a command runs, the command's
 * process group gets SIGTERM and, if the command has not exited after
 * SERVE_KILL_GRACE_MS, SIGKILL.
 *
 * Messages sent to NAME with `lbus send` (not calls) are ignored, with a
 * warning. With -T (--topic), NAME is a topic pattern instead: serve
 * subscribes to it as a responder (lbus_sub_opts.responder) and answers the
 * calls to matching topics; publishes on them are ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* How long a command may take to exit after SIGTERM before SIGKILL. */
#define SERVE_KILL_GRACE_MS 1500

/* A call waiting for its turn. */
struct serve_req {
	struct serve_req *next;
	uint64_t token;
	int64_t deadline_ms; /* lbus_msg.deadline_ms: the caller gives up then */
	size_t len;
	char data[];
};

/* The command answering the current call. */
struct serve_child {
	struct serve_req *req; /* NULL when idle */
	pid_t pid;
	int in_fd, out_fd, pidfd; /* -1 once closed */
	size_t written;		  /* bytes of req->data written to in_fd */
	struct cli_buf out;	  /* what the command wrote so far */
	bool exited;
	int wstatus;
};

struct serve_state {
	const char *name;
	char **argv;	    /* the command */
	uint64_t count;	    /* -n: exit after this many answers, 0 none */
	int64_t timeout_ms; /* -t, -1 none */
	bool topic;	    /* -T: name is a topic pattern to answer calls on */
	uint64_t answered;
	struct serve_req *head, **tail;
	struct serve_child child;
	struct cli_loop loop;
	lbus *bus;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Start argv with stdin and stdout on the given descriptors, the signals
 * this process handles or ignores back at their defaults, in a process
 * group of its own (so child_kill() reaches what it starts, too). 0 or
 * -errno. */
static int spawn_command(char **argv, int in_fd, int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t def;
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	posix_spawnattr_init(&attr);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setpgroup(&attr, 0); /* its own group: stopped as a whole */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	r = -posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return r;
}

/* Spawn the command with pipes on its stdin and stdout (our ends
 * non-blocking). 0 or -errno. */
static int child_spawn(struct serve_state *st)
{
	struct serve_child *c = &st->child;
	int in[2], out[2], r;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		r = -errno;
		close(in[0]);
		close(in[1]);
		return r;
	}
	r = spawn_command(st->argv, in[0], out[1], &c->pid);
	close(in[0]);
	close(out[1]);
	c->in_fd = in[1];
	c->out_fd = out[0];
	if (r < 0) {
		close_fd(&c->in_fd);
		close_fd(&c->out_fd);
		return r;
	}
	/* Without pidfds (old kernels, valgrind) the exit is collected with a
	 * blocking waitpid() once the command has closed its stdout. */
	c->pidfd = pidfd_open(c->pid, 0);
	fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Forget the current call and count it as answered. */
static void answered(struct serve_state *st)
{
	struct serve_child *c = &st->child;

	free(c->req);
	c->req = NULL;
	c->out.len = 0;
	if (++st->answered == st->count)
		cli_loop_stop(&st->loop);
}

/* Answer the current call with a failure: reason, also warned on stderr. */
static void answer_error(struct serve_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answer_error(struct serve_state *st, const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	fprintf(stderr, "lbus: warning: serve %s: %s\n", st->name, reason);
	r = lbus_reply_error(st->bus, st->child.req->token, reason);
	if (r < 0)
		fprintf(stderr, "lbus: warning: serve %s: reply: %s\n", st->name, lbus_strerror(r));
	answered(st);
}

/* Answer the current call with data (too large for a reply: an error). */
static void answer(struct serve_state *st, const void *data, size_t len)
{
	int r = lbus_reply(st->bus, st->child.req->token, data, len);

	if (r == -EMSGSIZE) {
		answer_error(st, "reply too large (%zu bytes, the broker's limit is %zu)", len,
			     lbus_max_frame(st->bus));
		return;
	}
	if (r < 0)
		fprintf(stderr, "lbus: warning: serve %s: reply: %s\n", st->name, lbus_strerror(r));
	answered(st);
}

/* Answer the current call for a command that ended with wstatus. */
static void answer_status(struct serve_state *st, int wstatus)
{
	struct serve_child *c = &st->child;

	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0)
		answer_error(st, "command exited with status %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		answer_error(st, "command killed by signal %d", WTERMSIG(wstatus));
	else
		answer(st, c->out.data ? c->out.data : "", c->out.len);
}

/* Take the next queued call, skipping those whose caller stopped waiting.
 * NULL when none is left. */
static struct serve_req *next_req(struct serve_state *st)
{
	struct serve_req *req;

	while ((req = st->head)) {
		st->head = req->next;
		if (!st->head)
			st->tail = &st->head;
		if (!req->deadline_ms || cli_now_ms() < req->deadline_ms)
			return req;
		fprintf(stderr, "lbus: warning: serve %s: skipping a call whose caller stopped waiting\n",
			st->name);
		free(req);
	}
	return NULL;
}

/* Start the next queued call, if idle. Calls whose command cannot start are
 * answered with an error at once. */
static void start_next(struct serve_state *st)
{
	struct serve_child *c = &st->child;

	while (!c->req && !st->loop.stop && (c->req = next_req(st))) {
		int r;

		c->written = 0;
		c->exited = false;
		r = child_spawn(st);
		if (r == 0)
			return;
		answer_error(st, "cannot run %s: %s", st->argv[0], strerror(-r));
	}
}

static void serve_on_call(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct serve_state *st = userdata;
	struct serve_req *req = malloc(sizeof(*req) + msg->len);

	if (!req) {
		fprintf(stderr, "lbus: warning: serve %s: dropping a call: %s\n", st->name, strerror(ENOMEM));
		return;
	}
	*req =
	    (struct serve_req){.token = msg->reply_token, .deadline_ms = msg->deadline_ms, .len = msg->len};
	if (msg->len) /* data may be NULL then */
		memcpy(req->data, msg->data, msg->len);
	*st->tail = req;
	st->tail = &req->next;
	start_next(st);
}

static void serve_on_message(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct serve_state *st = userdata;

	fputs("lbus: warning: serve: ignoring a message (not a call) from ", stderr);
	cli_print_sender(stderr, &msg->sender);
	fprintf(stderr, " to %s\n", st->name);
}

/* -T: the responder subscription's callback. Publishes on the pattern are
 * not calls: ignored, quietly (a topic may be busy). */
static void serve_on_topic(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	if (msg->kind == LBUS_MSG_CALL)
		serve_on_call(bus, msg, userdata);
}

/* ---- the loop hooks: feed the child, collect its output and status ------- */

static size_t serve_prepare(void *userdata, struct pollfd *fds, size_t max)
{
	struct serve_state *st = userdata;
	struct serve_child *c = &st->child;

	if (!c->req)
		return 0;
	fds[0] = (struct pollfd){.fd = c->in_fd, .events = POLLOUT};
	fds[1] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
	fds[2] = (struct pollfd){.fd = c->pidfd, .events = POLLIN};
	return 3; /* poll() ignores the negative (closed) ones */
}

static void child_write(struct serve_child *c)
{
	ssize_t n = write(c->in_fd, c->req->data + c->written, c->req->len - c->written);

	if (n > 0)
		c->written += (size_t)n;
	if ((n < 0 && errno != EAGAIN && errno != EINTR) || c->written == c->req->len)
		close_fd(&c->in_fd); /* done, or the command does not read (EPIPE) */
}

/* Read what the command wrote. 0 or an exit status. */
static int child_read(struct serve_state *st)
{
	struct serve_child *c = &st->child;
	ssize_t n;

	if (cli_buf_reserve(&c->out, 65536) < 0)
		return cli_fail(-ENOMEM, "serve %s", st->name);
	n = read(c->out_fd, c->out.data + c->out.len, c->out.cap - c->out.len);
	if (n > 0)
		c->out.len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		close_fd(&c->out_fd);
	return 0;
}

static int serve_ready(void *userdata, const struct pollfd *fds, size_t n)
{
	struct serve_state *st = userdata;
	struct serve_child *c = &st->child;
	int r;

	if (fds[0].revents && c->in_fd >= 0)
		child_write(c);
	if (fds[1].revents && c->out_fd >= 0 && (r = child_read(st)) != 0)
		return r;
	if (fds[2].revents && c->pidfd >= 0) {
		waitpid(c->pid, &c->wstatus, 0);
		c->exited = true;
		close_fd(&c->pidfd);
	}
	if (!c->exited && c->pidfd < 0 && c->out_fd < 0) {
		waitpid(c->pid, &c->wstatus, 0);
		c->exited = true;
	}
	if (c->exited && c->out_fd < 0) {
		close_fd(&c->in_fd);
		answer_status(st, c->wstatus);
		start_next(st);
	}
	return 0;
}

/* Wait up to ms for the command to exit (reaping it). true once reaped. */
static bool child_reap_within(struct serve_child *c, int ms)
{
	int64_t end = cli_now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(c->pid, NULL, WNOHANG);

		if (r == c->pid || (r < 0 && errno != EINTR))
			return true;
		if (cli_now_ms() >= end)
			return false;
		if (c->pidfd >= 0) {
			struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
			int64_t left = end - cli_now_ms();

			poll(&pfd, 1, left > 0 ? (int)left : 0);
		} else {
			usleep(10000);
		}
	}
}

/* Does a member of process group pgid live (or a zombie leader wait)? */
static bool group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

/*
 * Stop what a command left running when serve ends: its whole process
 * group gets SIGTERM, then SIGKILL if any of it is still there after
 * SERVE_KILL_GRACE_MS. The group, not only the command: the command may
 * have exited while something it started still runs (its pgid cannot be
 * reused while any member lives).
 */
static void child_kill(struct serve_child *c)
{
	int64_t end = cli_now_ms() + SERVE_KILL_GRACE_MS;

	if (!c->req)
		return;
	kill(-c->pid, SIGTERM);
	if (!c->exited)
		c->exited = child_reap_within(c, SERVE_KILL_GRACE_MS);
	while (group_alive(c->pid) && cli_now_ms() < end)
		usleep(10000);
	if (group_alive(c->pid))
		kill(-c->pid, SIGKILL);
	if (!c->exited)
		waitpid(c->pid, NULL, 0);
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	close_fd(&c->pidfd);
	free(c->req);
	c->req = NULL;
}

static void free_queue(struct serve_state *st)
{
	while (st->head) {
		struct serve_req *next = st->head->next;

		free(st->head);
		st->head = next;
	}
}

static int serve_option(struct cli *cli, int opt, const char *arg, void *data)
{
	struct serve_state *st = data;

	if (opt == 'n')
		return cli_parse_count(cli, arg, &st->count);
	if (opt == 'T') {
		st->topic = true;
		return 0;
	}
	return cli_parse_secs(cli, arg, &st->timeout_ms); /* 't' */
}

static int serve_run(struct serve_state *st)
{
	const struct cli_loop_hooks hooks = {serve_prepare, serve_ready, st};
	int r;

	cli_loop_init(&st->loop, st->bus, st->timeout_ms);
	st->loop.hooks = &hooks;
	lbus_on_call(st->bus, serve_on_call, st);
	lbus_on_message(st->bus, serve_on_message, st);
	if (st->topic) {
		struct lbus_sub_opts opts = LBUS_SUB_OPTS_INIT;

		opts.responder = true;
		opts.policy = LBUS_POLICY_BLOCK;
		r = lbus_subscribe(st->bus, st->name, serve_on_topic, st, &opts, NULL);
		if (r < 0)
			return cli_fail_bus(st->bus, r, "subscribe to %s", st->name);
	} else if ((r = lbus_name_take(st->bus, st->name)) < 0) {
		return cli_fail_bus(st->bus, r, "take name %s", st->name);
	}
	r = cli_loop_run(&st->loop);
	if (r == CLI_LOOP_HOOK)
		return st->loop.status;
	return r < 0 ? cli_loop_failure(r) : CLI_OK;
}

int cli_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 't'},
	    {"topic", no_argument, NULL, 'T'},
	    CLI_RECONNECT_LONGOPT,
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	struct serve_state st = {.timeout_ms = -1};
	int first, status;

	st.tail = &st.head;
	st.child = (struct serve_child){.in_fd = -1, .out_fd = -1, .pidfd = -1};
	if (!cli_parse_options(cli, argc, argv, "n:t:T", longopts, serve_option, &st, &first, &status))
		return status;
	if (argc - first < 2)
		return cli_usage_error(cli, "%s", argc - first < 1 ? "missing NAME" : "missing COMMAND");
	st.name = argv[first];
	st.argv = argv + first + 1;
	if ((status = cli_loop_signals()) != 0)
		return status;
	if ((status = cli_connect_long(cli, &st.bus)) != 0)
		return status;
	status = serve_run(&st);
	child_kill(&st.child);
	free_queue(&st);
	cli_buf_free(&st.child.out);
	lbus_close(st.bus);
	return status;
}
