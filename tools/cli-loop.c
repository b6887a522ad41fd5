/* SPDX-License-Identifier: MIT */
/*
 * The event loop of the commands that wait (sub, listen, monitor, wait,
 * serve): our own poll() over lbus_fd()/lbus_events()/lbus_timeout() and
 * lbus_dispatch(), rather than lbus_run(), so that the tool controls when
 * stdout is flushed and can watch more descriptors.
 *
 * Output policy: stdout is fully buffered with a large buffer; the loop
 * flushes it each time it is about to wait for more input. A burst of
 * messages is therefore written in large blocks, yet every message reaches a
 * pipe reader as soon as the burst ends (`lbus sub t | grep x`).
 *
 * Signals: SIGINT and SIGTERM write a byte to a non-blocking self-pipe that
 * the loop polls, so a signal arriving at any moment ends the loop cleanly
 * (output flushed, connection closed), and blocking library calls are never
 * left with signals blocked. SIGPIPE is ignored (by main()): a closed stdout
 * shows up as EPIPE, which the commands treat as a quiet, successful end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CLI_LOOP_MAX_FDS 8

/* stdout's buffer (glibc ignores the size given with a NULL buffer). */
static char stdout_buffer[128 * 1024];

/* The self-pipe: written by the signal handler, polled by the loop. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(signal_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a signal is already pending. */
	}
	errno = saved;
}

int cli_loop_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		cli_fail(-errno, "pipe");
		return CLI_REFUSED;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, stdout_buffer, _IOFBF, sizeof(stdout_buffer));
	return 0;
}

int cli_loop_signal_fd(void)
{
	return signal_pipe[0];
}

void cli_loop_init(struct cli_loop *loop, lbus *bus, int64_t timeout_ms)
{
	*loop = (struct cli_loop){
	    .bus = bus,
	    .deadline_ms = timeout_ms < 0 ? -1 : cli_now_ms() + timeout_ms,
	};
}

void cli_loop_stop(struct cli_loop *loop)
{
	loop->stop = true;
}

/* The last write error of stdout (a negative errno), for cli_loop_failure(). */
static int stdout_err;

/* The error of a stdout that has its error flag set: -EPIPE when the
 * reader is gone (a pipe without readers polls as POLLERR), else -err. */
static int stdout_error(int err)
{
	struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};

	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
		return -EPIPE;
	return stdout_err = -err;
}

int cli_flush_stdout(void)
{
	if (ferror(stdout))
		return stdout_error(EIO); /* failed earlier: its errno is gone */
	if (fflush(stdout) == 0)
		return 0;
	return errno == EPIPE ? -EPIPE : stdout_error(errno ? errno : EIO);
}

/* The poll timeout: the sooner of the library's timer and our deadline. */
static int poll_timeout(const struct cli_loop *loop)
{
	int lib = lbus_timeout(loop->bus);
	int64_t left;

	if (loop->deadline_ms < 0)
		return lib;
	left = loop->deadline_ms - cli_now_ms();
	if (left < 0)
		left = 0;
	if (left > 24 * 3600 * 1000)
		left = 24 * 3600 * 1000;
	return lib >= 0 && lib < left ? lib : (int)left;
}

/* Wait for the bus, the signal pipe and the hooks' descriptors; then let
 * the hooks handle theirs. Returns 0 to go on or an enum cli_loop_end / a
 * negative errno to end the loop with. */
static int wait_once(struct cli_loop *loop)
{
	struct pollfd fds[2 + CLI_LOOP_MAX_FDS] = {
	    {.fd = lbus_fd(loop->bus), .events = lbus_events(loop->bus)},
	    {.fd = signal_pipe[0], .events = POLLIN},
	};
	size_t n = 0;

	if (loop->hooks)
		n = loop->hooks->prepare(loop->hooks->userdata, fds + 2, CLI_LOOP_MAX_FDS);
	if (poll(fds, 2 + n, poll_timeout(loop)) < 0) {
		if (errno == EINTR)
			return 0;
		return -errno;
	}
	if (fds[1].revents)
		return CLI_LOOP_SIGNAL;
	if (loop->hooks && n) {
		loop->status = loop->hooks->ready(loop->hooks->userdata, fds + 2, n);
		if (loop->status)
			return CLI_LOOP_HOOK;
	}
	return 0;
}

int cli_loop_run(struct cli_loop *loop)
{
	for (;;) {
		int r = lbus_dispatch(loop->bus);
		int out = cli_flush_stdout(); /* also what came before an error */

		if (r < 0)
			return r;
		if (out < 0)
			return out;
		if (loop->stop)
			return CLI_LOOP_DONE;
		if (loop->deadline_ms >= 0 && cli_now_ms() >= loop->deadline_ms)
			return CLI_LOOP_TIMEOUT;
		r = wait_once(loop);
		if (r != 0)
			return r;
	}
}

int cli_loop_failure(int r)
{
	if (r == -EPIPE)
		return CLI_OK;
	if (r == stdout_err) {
		fprintf(stderr, "lbus: write to stdout: %s\n", strerror(-r));
		return CLI_REFUSED;
	}
	fprintf(stderr, "lbus: connection to the broker: %s\n", lbus_strerror(r));
	return CLI_NO_BROKER;
}
