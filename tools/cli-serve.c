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
 * once the command has closed its stdout and exited; a non-zero status or a
 * signal still answers with the output, and warns on stderr. A command that
 * cannot be started answers with an empty reply and a warning.
 *
 * Messages sent to NAME with `lbus send` (not calls) are ignored, with a
 * warning.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* A call waiting for its turn. */
struct serve_req {
	struct serve_req *next;
	uint64_t token;
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

/* Start argv with stdin and stdout on the given descriptors and the signals
 * this process handles or ignores back at their defaults. 0 or -errno. */
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
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
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

/* Warn about a command that did not end well. */
static void warn_status(const struct serve_state *st, int wstatus)
{
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0)
		fprintf(stderr, "lbus: warning: serve %s: %s exited with status %d\n", st->name, st->argv[0],
			WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		fprintf(stderr, "lbus: warning: serve %s: %s killed by signal %d\n", st->name, st->argv[0],
			WTERMSIG(wstatus));
}

/* Answer the current call with data, forget it, count it. */
static void answer(struct serve_state *st, const void *data, size_t len)
{
	struct serve_child *c = &st->child;
	int r = lbus_reply(st->bus, c->req->token, data, len);

	if (r < 0)
		fprintf(stderr, "lbus: warning: serve %s: reply: %s\n", st->name, lbus_strerror(r));
	free(c->req);
	c->req = NULL;
	c->out.len = 0;
	if (++st->answered == st->count)
		cli_loop_stop(&st->loop);
}

/* Start the next queued call, if idle. Calls whose command cannot start are
 * answered empty at once. */
static void start_next(struct serve_state *st)
{
	struct serve_child *c = &st->child;

	while (!c->req && st->head && !st->loop.stop) {
		int r;

		c->req = st->head;
		st->head = c->req->next;
		if (!st->head)
			st->tail = &st->head;
		c->written = 0;
		c->exited = false;
		r = child_spawn(st);
		if (r == 0)
			return;
		fprintf(stderr, "lbus: warning: serve %s: cannot run %s: %s\n", st->name, st->argv[0],
			strerror(-r));
		answer(st, "", 0);
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
	*req = (struct serve_req){.token = msg->reply_token, .len = msg->len};
	if (msg->len) /* data may be NULL then */
		memcpy(req->data, msg->data, msg->len);
	*st->tail = req;
	st->tail = &req->next;
	start_next(st);
}

static void serve_on_message(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct serve_state *st = userdata;

	if (msg->kind == LBUS_MSG_CALL) {
		serve_on_call(bus, msg, userdata);
		return;
	}
	fputs("lbus: warning: serve: ignoring a message (not a call) from ", stderr);
	cli_print_sender(stderr, &msg->sender);
	fprintf(stderr, " to %s\n", st->name);
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
		warn_status(st, c->wstatus);
		answer(st, c->out.data ? c->out.data : "", c->out.len);
		start_next(st);
	}
	return 0;
}

/* Stop a command still running when serve ends. */
static void child_kill(struct serve_child *c)
{
	if (!c->req)
		return;
	if (!c->exited) {
		kill(c->pid, SIGTERM);
		waitpid(c->pid, NULL, 0);
	}
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
	if ((r = lbus_name_take(st->bus, st->name)) < 0)
		return cli_fail(r, "take name %s", st->name);
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
	    CLI_COMMON_LONGOPTS,
	    {0},
	};
	struct serve_state st = {.timeout_ms = -1};
	int first, status;

	st.tail = &st.head;
	st.child = (struct serve_child){.in_fd = -1, .out_fd = -1, .pidfd = -1};
	if (!cli_parse_options(cli, argc, argv, "n:t:", longopts, serve_option, &st, &first, &status))
		return status;
	if (argc - first < 2)
		return cli_usage_error(cli, "%s", argc - first < 1 ? "missing NAME" : "missing COMMAND");
	st.name = argv[first];
	st.argv = argv + first + 1;
	if ((status = cli_loop_signals()) != 0)
		return status;
	if ((status = cli_connect(cli, &st.bus)) != 0)
		return status;
	status = serve_run(&st);
	child_kill(&st.child);
	free_queue(&st);
	cli_buf_free(&st.child.out);
	lbus_close(st.bus);
	return status;
}
