/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of request/reply (issue 3), through liblbus and the lbus
 * CLI against a real lbusd on a private socket.
 *
 * What a user would notice, and what is asserted here:
 *  - many asynchronous calls in flight on one connection, answered by the
 *    responder in reverse order, each completing once with its own reply;
 *  - a blocking lbus_call() to a name and to a topic subscriber, the reply
 *    carrying the responder's identity; calls to a topic with two
 *    subscribers reach exactly one of them each;
 *  - nobody to answer: -ESRCH at once (not after the timeout), and
 *    `lbus call` exits 1 saying so;
 *  - a responder killed (SIGKILL) with calls pending: each caller gets
 *    -ECONNABORTED at once, and a waiting `lbus call` exits 1 at once;
 *  - a responder that never answers: -ETIMEDOUT after the caller's timeout,
 *    `lbus call -t 1` exits 4;
 *  - `lbus serve NAME -- tr a-z A-Z` answers `lbus call NAME hello` with
 *    HELLO.
 *  - only call handlers take calls: with `lbus sub '#'` running, a call to
 *    nobody still fails at once; a topic call goes to the responder
 *    subscription, never to a plain subscriber; a call to `lbus listen
 *    NAME` fails at once (and listen keeps printing sends);
 *  - a responder's failure: lbus_reply_error() gives the caller -EREMOTEIO
 *    and the reason; `lbus serve` with a failing command, a command that
 *    cannot run, or a reply too large makes `lbus call` exit 1 at once with
 *    the reason; serve skips queued calls whose caller gave up, and kills
 *    (SIGKILL) a command that ignores SIGTERM when it is stopped;
 *  - `lbus serve -T PATTERN` answers calls to matching topics.
 *
 * Responders that must answer while the test thread blocks in lbus_call()
 * run on their own connection in a thread (struct responder); the responder
 * that is killed is a forked child process. Every wait is bounded and scaled
 * by lbt_ms() for valgrind runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MAX_PENDING 64
#define N_ASYNC 16 /* calls in flight at once in the out-of-order test */

/* The captured output of a child, "" when it printed nothing. */
static const char *txt(const char *s)
{
	return s ? s : "";
}

/* ---- helpers --------------------------------------------------------------- */

static bool bytes_eq(const void *data, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(data, s, len) == 0;
}

/* Poll n handles and dispatch them until done(arg) or timeout_ms. Returns 0,
 * -ETIMEDOUT, or a dispatch error. */
static int pump_until(lbus *const *v, int n, int timeout_ms, bool (*done)(void *), void *arg)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	while (!done(arg)) {
		int64_t left = end - lbt_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd[8];
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){.fd = lbus_fd(v[i]), .events = lbus_events(v[i])};
		poll(pfd, (nfds_t)n, left < 20 ? (int)left : 20);
		for (int i = 0; i < n; i++) {
			int r = lbus_dispatch(v[i]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Wait until somebody owns name (e.g. a spawned `lbus serve`). */
static int wait_name_owned(lbus *bus, const char *name, int timeout_ms)
{
	int64_t end = lbt_now_ms() + timeout_ms;
	while (lbt_now_ms() < end) {
		int r = lbus_name_query(bus, name, NULL);
		if (r != 0)
			return r < 0 ? r : 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

/* ---- a responder thread ---------------------------------------------------- */

enum responder_mode {
	RESP_UPPER,   /* reply at once with the request upper-cased */
	RESP_REVERSE, /* collect `batch` calls, then reply "re:<req>" last first */
	RESP_SILENT,  /* never reply */
	RESP_FAIL,    /* lbus_reply_error(FAIL_REASON) */
};

#define FAIL_REASON "out of cheese"

struct responder {
	lbus *bus;
	pthread_t thread;
	atomic_bool stop;
	enum responder_mode mode;
	size_t batch;
	uint64_t tokens[MAX_PENDING];
	char *requests[MAX_PENDING];
	size_t n_pending;
	atomic_int calls_seen;
};

static void reply_upper(lbus *bus, const struct lbus_msg *msg)
{
	char buf[256];
	size_t n = msg->len < sizeof(buf) ? msg->len : sizeof(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)toupper(((const unsigned char *)msg->data)[i]);
	lbus_reply(bus, msg->reply_token, buf, n);
}

static void reply_collected_in_reverse(struct responder *r)
{
	for (size_t i = r->n_pending; i-- > 0;) {
		char buf[300];
		int n = snprintf(buf, sizeof(buf), "re:%s", r->requests[i]);
		lbus_reply(r->bus, r->tokens[i], buf, (size_t)n);
		free(r->requests[i]);
	}
	r->n_pending = 0;
}

static void responder_on_call(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	struct responder *r = userdata;
	atomic_fetch_add(&r->calls_seen, 1);
	if (msg->kind != LBUS_MSG_CALL || msg->reply_token == 0)
		return;
	switch (r->mode) {
	case RESP_UPPER:
		reply_upper(bus, msg);
		break;
	case RESP_REVERSE:
		if (r->n_pending < MAX_PENDING) {
			r->tokens[r->n_pending] = msg->reply_token;
			r->requests[r->n_pending] = strndup(msg->data, msg->len);
			r->n_pending++;
		}
		if (r->n_pending == r->batch)
			reply_collected_in_reverse(r);
		break;
	case RESP_SILENT:
		break;
	case RESP_FAIL:
		lbus_reply_error(bus, msg->reply_token, FAIL_REASON);
		break;
	}
}

static void *responder_main(void *arg)
{
	struct responder *r = arg;
	while (!atomic_load(&r->stop))
		if (lbus_run(r->bus, 20) < 0)
			break;
	return NULL;
}

/* Connect, own name (if not NULL) and/or subscribe to topic (if not NULL),
 * answer calls in mode from a thread of its own. */
static void responder_start(struct responder *r, const struct lbt_broker *b, const char *name,
			    const char *topic, enum responder_mode mode)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->batch = N_ASYNC;
	assert_int_equal(lbt_connect(b, &r->bus), 0);
	lbus_on_call(r->bus, responder_on_call, r);
	if (name)
		assert_int_equal(lbus_name_take(r->bus, name), 0);
	if (topic) {
		/* A responder subscription: its callback takes the calls. */
		const struct lbus_sub_opts opts = {.size = sizeof(struct lbus_sub_opts), .responder = true};
		assert_true(lbus_subscribe(r->bus, topic, responder_on_call, r, &opts, NULL) == 0);
	}
	assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(struct responder *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	for (size_t i = 0; i < r->n_pending; i++)
		free(r->requests[i]);
	lbus_close(r->bus);
}

/* ---- asynchronous calls answered out of order ------------------------------ */

struct async_calls {
	int completed;
	int err[N_ASYNC];
	char *reply[N_ASYNC];
	int times_called[N_ASYNC];
	int order[N_ASYNC]; /* index of the call that completed k-th */
	uint64_t responder_id[N_ASYNC];
};

struct async_slot {
	struct async_calls *calls;
	int index;
};

static void on_async_reply(lbus *bus, int err, const struct lbus_reply *reply, void *userdata)
{
	struct async_slot *slot = userdata;
	struct async_calls *c = slot->calls;
	int i = slot->index;
	c->times_called[i]++;
	c->err[i] = err;
	if (err == 0) {
		c->reply[i] = strndup(reply->data, reply->len);
		c->responder_id[i] = reply->sender.id;
	}
	if (c->completed < N_ASYNC)
		c->order[c->completed] = i;
	c->completed++;
}

static bool all_async_done(void *arg)
{
	return ((struct async_calls *)arg)->completed >= N_ASYNC;
}

static void test_async_calls_out_of_order(void **state)
{
	struct lbt_broker *b = *state;
	struct responder r;
	responder_start(&r, b, "calls.reverse", NULL, RESP_REVERSE);
	uint64_t responder_id = lbus_client_id(r.bus);

	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);
	struct async_calls calls = {0};
	struct async_slot slots[N_ASYNC];
	for (int i = 0; i < N_ASYNC; i++) {
		char req[32];
		int n = snprintf(req, sizeof(req), "req-%d", i);
		slots[i] = (struct async_slot){&calls, i};
		assert_true(lbus_call_async(caller, "calls.reverse", req, (size_t)n, lbt_ms(10000),
					    on_async_reply, &slots[i], NULL) == 0);
	}
	assert_int_equal(pump_until(&caller, 1, lbt_ms(10000), all_async_done, &calls), 0);
	/* A little more dispatching: no call may complete twice. */
	lbus_run(caller, 50);

	assert_int_equal(calls.completed, N_ASYNC);
	for (int i = 0; i < N_ASYNC; i++) {
		char want[32];
		snprintf(want, sizeof(want), "re:req-%d", i);
		assert_int_equal(calls.times_called[i], 1);
		assert_int_equal(calls.err[i], 0);
		assert_string_equal(calls.reply[i], want);
		assert_int_equal(calls.responder_id[i], responder_id);
		/* The responder answered the last request first. */
		assert_int_equal(calls.order[i], N_ASYNC - 1 - i);
		free(calls.reply[i]);
	}
	lbus_close(caller);
	responder_stop(&r);
}

/* ---- blocking calls ---------------------------------------------------------- */

static void test_blocking_call_to_name(void **state)
{
	struct lbt_broker *b = *state;
	struct responder r;
	responder_start(&r, b, "calls.upper", NULL, RESP_UPPER);

	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);
	for (int i = 0; i < 3; i++) {
		struct lbus_reply *reply = NULL;
		char req[32], want[32];
		int n = snprintf(req, sizeof(req), "hello %d", i);
		snprintf(want, sizeof(want), "HELLO %d", i);
		assert_int_equal(lbus_call(caller, "calls.upper", req, (size_t)n, lbt_ms(5000), &reply), 0);
		assert_non_null(reply);
		assert_true(bytes_eq(reply->data, reply->len, want));
		assert_int_equal(reply->sender.id, lbus_client_id(r.bus));
		assert_int_equal(reply->sender.pid, getpid());
		assert_int_equal(reply->sender.uid, getuid());
		assert_string_equal(reply->sender.name, "calls.upper");
		lbus_reply_free(reply);
	}
	assert_int_equal(atomic_load(&r.calls_seen), 3);
	lbus_close(caller);
	responder_stop(&r);
}

static void test_call_to_topic_subscriber(void **state)
{
	struct lbt_broker *b = *state;
	struct responder r1, r2;
	responder_start(&r1, b, NULL, "svc/upper", RESP_UPPER);
	responder_start(&r2, b, NULL, "svc/+", RESP_UPPER);

	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);
	for (int i = 0; i < 10; i++) {
		struct lbus_reply *reply = NULL;
		assert_int_equal(lbus_call(caller, "svc/upper", "abc", 3, lbt_ms(5000), &reply), 0);
		assert_true(bytes_eq(reply->data, reply->len, "ABC"));
		assert_true(reply->sender.id == lbus_client_id(r1.bus) ||
			    reply->sender.id == lbus_client_id(r2.bus));
		lbus_reply_free(reply);
	}
	/* Each call went to exactly one responder, and both took a share. */
	int seen1 = atomic_load(&r1.calls_seen), seen2 = atomic_load(&r2.calls_seen);
	assert_int_equal(seen1 + seen2, 10);
	assert_true(seen1 > 0 && seen2 > 0);

	/* The CLI reaches a topic responder the same way. */
	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(5000), &p, "call", "svc/upper", "xyz", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_true(strcmp(txt(p.out), "XYZ\n") == 0 || strcmp(txt(p.out), "XYZ") == 0);
	lbt_proc_free(&p);

	lbus_close(caller);
	responder_stop(&r1);
	responder_stop(&r2);
}

/* ---- no responders ------------------------------------------------------------- */

static void test_no_responders(void **state)
{
	struct lbt_broker *b = *state;
	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);

	struct lbus_reply *reply = NULL;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbus_call(caller, "calls.nobody", "x", 1, lbt_ms(10000), &reply), -ESRCH);
	assert_null(reply);
	/* A topic nobody subscribes to is the same. */
	assert_int_equal(lbus_call(caller, "nobody/listens", "x", 1, lbt_ms(10000), &reply), -ESRCH);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));

	t0 = lbt_now_ms();
	struct lbt_proc p;
	assert_int_equal(
	    lbt_cli_run(b, NULL, 0, lbt_ms(15000), &p, "call", "calls.nobody", "hi", "-t", "10", NULL), 0);
	assert_int_equal(p.exit_code, 1);
	assert_true(lbt_now_ms() - t0 < lbt_ms(3000));
	assert_string_equal(txt(p.out), "");
	assert_non_null(strstr(txt(p.err), "no responders"));
	lbt_proc_free(&p);
	lbus_close(caller);
}

/* ---- responder killed mid-call ----------------------------------------------- */

static void dying_on_call(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	int fd = *(int *)userdata;
	if (write(fd, "c", 1) != 1)
		_exit(4);
}

/* The child: own name, tell the parent ('n'), then report each call ('c')
 * and never answer. */
static void dying_child(const struct lbt_broker *b, const char *name, int fd)
{
	lbus *bus;
	if (lbt_connect(b, &bus) < 0 || lbus_name_take(bus, name) < 0)
		_exit(2);
	lbus_on_call(bus, dying_on_call, &fd);
	if (write(fd, "n", 1) != 1)
		_exit(3);
	lbus_run(bus, 60000);
	_exit(0);
}

struct pipe_count {
	int fd;
	int seen;
};

static bool pipe_has_n_calls(void *arg)
{
	struct pipe_count *pc = arg;
	char c;
	struct pollfd pfd = {.fd = pc->fd, .events = POLLIN};
	while (poll(&pfd, 1, 0) == 1 && read(pc->fd, &c, 1) == 1)
		if (c == 'c')
			pc->seen++;
	return pc->seen >= 4;
}

/* Fork a dying_child owning name; returns the read end of its report pipe
 * once the name is taken. */
static int fork_dying_child(const struct lbt_broker *b, const char *name, pid_t *pid)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		close(fds[0]);
		dying_child(b, name, fds[1]);
	}
	close(fds[1]);
	struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
	char c = 0;
	assert_int_equal(poll(&pfd, 1, lbt_ms(10000)), 1);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, 'n');
	return fds[0];
}

static void test_responder_killed_mid_call(void **state)
{
	struct lbt_broker *b = *state;
	pid_t pid;
	int fd = fork_dying_child(b, "calls.dying", &pid);

	/* Two callers, two calls each, all pending at the responder. */
	lbus *callers[2];
	struct async_calls calls = {0};
	struct async_slot slots[4];
	for (int k = 0; k < 2; k++)
		assert_int_equal(lbt_connect(b, &callers[k]), 0);
	for (int i = 0; i < 4; i++) {
		slots[i] = (struct async_slot){&calls, i};
		assert_true(lbus_call_async(callers[i % 2], "calls.dying", "q", 1, lbt_ms(20000),
					    on_async_reply, &slots[i], NULL) == 0);
	}
	struct pipe_count pc = {.fd = fd};
	assert_int_equal(pump_until(callers, 2, lbt_ms(10000), pipe_has_n_calls, &pc), 0);
	assert_int_equal(calls.completed, 0);

	int64_t t0 = lbt_now_ms();
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	while (calls.completed < 4 && lbt_now_ms() - t0 < lbt_ms(10000))
		for (int k = 0; k < 2; k++)
			lbus_run(callers[k], 10);
	assert_int_equal(calls.completed, 4);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(calls.times_called[i], 1);
		assert_int_equal(calls.err[i], -ECONNABORTED);
	}
	/* The name is free again: a new call has no responder. */
	struct lbus_reply *reply = NULL;
	assert_int_equal(lbus_call(callers[0], "calls.dying", "q", 1, lbt_ms(5000), &reply), -ESRCH);
	close(fd);
	lbus_close(callers[0]);
	lbus_close(callers[1]);
}

static void test_cli_call_responder_killed(void **state)
{
	struct lbt_broker *b = *state;
	pid_t pid;
	int fd = fork_dying_child(b, "calls.dying.cli", &pid);
	struct lbt_proc call;
	assert_int_equal(lbt_cli_spawn(&call, b, "call", "calls.dying.cli", "q", "-t", "30", NULL), 0);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c = 0;
	assert_int_equal(poll(&pfd, 1, lbt_ms(10000)), 1);
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, 'c');

	int64_t t0 = lbt_now_ms();
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(lbt_proc_wait(&call, lbt_ms(10000)), 0);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
	assert_int_equal(call.exit_code, 1);
	assert_string_equal(txt(call.out), "");
	assert_non_null(strstr(txt(call.err), "responder"));
	lbt_proc_free(&call);
	close(fd);
}

/* ---- timeouts ------------------------------------------------------------------ */

static void test_call_timeout(void **state)
{
	struct lbt_broker *b = *state;
	struct responder r;
	responder_start(&r, b, "calls.silent", NULL, RESP_SILENT);

	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);
	struct lbus_reply *reply = NULL;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbus_call(caller, "calls.silent", "x", 1, 300, &reply), -ETIMEDOUT);
	int64_t took = lbt_now_ms() - t0;
	assert_null(reply);
	assert_true(took >= 290);
	assert_true(took < lbt_ms(3000));

	/* Asynchronous: the callback reports the timeout exactly once. */
	struct async_calls calls = {0};
	struct async_slot slot = {&calls, 0};
	t0 = lbt_now_ms();
	assert_true(lbus_call_async(caller, "calls.silent", "y", 1, 200, on_async_reply, &slot, NULL) == 0);
	while (calls.completed < 1 && lbt_now_ms() - t0 < lbt_ms(3000))
		assert_true(lbus_run(caller, 10) >= 0);
	assert_true(lbt_now_ms() - t0 >= 190);
	lbus_run(caller, 50); /* a second completion would show up here */
	assert_int_equal(calls.times_called[0], 1);
	assert_int_equal(calls.err[0], -ETIMEDOUT);

	/* The connection is still fine afterwards. */
	assert_int_equal(lbus_sync(caller, lbt_ms(5000)), 0);

	t0 = lbt_now_ms();
	struct lbt_proc p;
	assert_int_equal(
	    lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "call", "calls.silent", "hi", "-t", "1", NULL), 0);
	took = lbt_now_ms() - t0;
	assert_int_equal(p.exit_code, 4);
	assert_string_equal(txt(p.out), "");
	/* "timed out", not strerror()'s "Connection timed out". */
	assert_non_null(strstr(txt(p.err), "lbus: call calls.silent: timed out"));
	assert_null(strstr(txt(p.err), "Connection"));
	assert_true(took >= 900);
	assert_true(took < lbt_ms(5000));
	lbt_proc_free(&p);

	lbus_close(caller);
	responder_stop(&r);
}

/* ---- lbus serve ---------------------------------------------------------------- */

static void test_cli_serve_and_call(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc serve;
	assert_int_equal(lbt_cli_spawn(&serve, b, "serve", "calls.tr", "--", "tr", "a-z", "A-Z", NULL), 0);
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	assert_int_equal(wait_name_owned(bus, "calls.tr", lbt_ms(10000)), 0);

	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "call", "calls.tr", "hello", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_true(strcmp(txt(p.out), "HELLO\n") == 0 || strcmp(txt(p.out), "HELLO") == 0);
	lbt_proc_free(&p);

	/* Every request runs the command again; the library sees the same. */
	struct lbus_reply *reply = NULL;
	assert_int_equal(lbus_call(bus, "calls.tr", "second one\n", 11, lbt_ms(10000), &reply), 0);
	assert_true(bytes_eq(reply->data, reply->len, "SECOND ONE\n"));
	lbus_reply_free(reply);

	/* A request from stdin, MESSAGE absent. */
	assert_int_equal(lbt_cli_run(b, "from stdin", 10, lbt_ms(10000), &p, "call", "calls.tr", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_non_null(strstr(txt(p.out), "FROM STDIN"));
	lbt_proc_free(&p);

	assert_false(lbt_proc_exited(&serve));
	lbt_proc_signal(&serve, SIGTERM);
	lbt_proc_wait(&serve, lbt_ms(5000));
	lbt_proc_free(&serve);
	lbus_close(bus);
}

/* ---- only call handlers take calls ------------------------------------------- */

static void test_cli_sub_all_is_no_responder(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc sub;
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "#", NULL), 0);
	assert_true(lbt_sub_ready(b, &sub, "calls/probe", lbt_ms(10000)) > 0);

	/* A name nobody owns, and a topic only a plain subscriber matches. */
	const char *targets[] = {"calls.nobody", "calls/probe"};
	for (size_t i = 0; i < 2; i++) {
		struct lbt_proc p;
		int64_t t0 = lbt_now_ms();
		assert_int_equal(
		    lbt_cli_run(b, NULL, 0, lbt_ms(15000), &p, "call", targets[i], "hi", "-t", "5", NULL), 0);
		assert_int_equal(p.exit_code, 1);
		assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
		assert_non_null(strstr(txt(p.err), "no responders"));
		lbt_proc_free(&p);
	}
	assert_false(lbt_proc_exited(&sub));
	lbt_proc_free(&sub);
}

static void test_topic_call_skips_plain_subscriber(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc sub; /* a plain subscriber that cannot answer */
	assert_int_equal(lbt_cli_spawn(&sub, b, "sub", "svc/pick", NULL), 0);
	long start = lbt_sub_ready(b, &sub, "svc/pick", lbt_ms(10000));
	assert_true(start > 0);
	struct responder r;
	responder_start(&r, b, NULL, "svc/pick", RESP_UPPER);

	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);
	for (int i = 0; i < 20; i++) {
		struct lbus_reply *reply = NULL;
		assert_int_equal(lbus_call(caller, "svc/pick", "abc", 3, lbt_ms(1000), &reply), 0);
		assert_true(bytes_eq(reply->data, reply->len, "ABC"));
		assert_int_equal(reply->sender.id, lbus_client_id(r.bus));
		lbus_reply_free(reply);
	}
	assert_int_equal(atomic_load(&r.calls_seen), 20);
	/* list tells the two subscriptions apart. */
	struct lbus_client_list *list = NULL;
	int flagged = 0, plain = 0;
	assert_int_equal(lbus_client_list_get(caller, lbt_ms(5000), &list), 0);
	for (size_t i = 0; i < list->n_clients; i++)
		for (size_t k = 0; k < list->clients[i].n_subs; k++)
			if (strcmp(list->clients[i].subs[k].pattern, "svc/pick") == 0)
				*(list->clients[i].subs[k].responder ? &flagged : &plain) += 1;
	lbus_client_list_free(list);
	assert_int_equal(flagged, 1);
	assert_int_equal(plain, 1);
	/* The plain subscriber printed no call. */
	assert_int_equal(lbt_sub_ready(b, &sub, "svc/pick", lbt_ms(10000)) > 0, 1);
	assert_null(strstr(sub.out + start, "abc"));
	lbus_close(caller);
	responder_stop(&r);
	lbt_proc_free(&sub);
}

static void test_cli_listen_refuses_calls(void **state)
{
	struct lbt_broker *b = *state;
	struct lbt_proc listen;
	assert_int_equal(lbt_cli_spawn(&listen, b, "listen", "calls.listen", NULL), 0);
	long start = lbt_listen_ready(b, &listen, "calls.listen", lbt_ms(10000));
	assert_true(start > 0);

	struct lbt_proc p;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(
	    lbt_cli_run(b, NULL, 0, lbt_ms(15000), &p, "call", "calls.listen", "hi", "-t", "5", NULL), 0);
	assert_int_equal(p.exit_code, 1);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
	assert_string_equal(txt(p.out), "");
	lbt_proc_free(&p);

	/* listen still prints what is sent to it, and printed no call. */
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "send", "calls.listen", "a-send", NULL),
			 0);
	assert_int_equal(p.exit_code, 0);
	lbt_proc_free(&p);
	assert_true(lbt_proc_read_until(&listen, "a-send", (size_t)start, lbt_ms(5000)) >= 0);
	assert_null(strstr(listen.out + start, "hi"));
	lbt_proc_free(&listen);
}

/* ---- a responder's failure ------------------------------------------------------ */

static void test_reply_error_through_library(void **state)
{
	struct lbt_broker *b = *state;
	struct responder r;
	responder_start(&r, b, "calls.fail", NULL, RESP_FAIL);
	lbus *caller;
	assert_int_equal(lbt_connect(b, &caller), 0);

	struct lbus_reply *reply = NULL;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbus_call(caller, "calls.fail", "x", 1, lbt_ms(5000), &reply), -EREMOTEIO);
	assert_true(lbt_now_ms() - t0 < lbt_ms(2000));
	assert_non_null(reply);
	assert_string_equal(reply->error, FAIL_REASON);
	assert_int_equal(reply->len, 0);
	assert_int_equal(reply->sender.id, lbus_client_id(r.bus));
	lbus_reply_free(reply);
	assert_string_equal(lbus_strerror(-EREMOTEIO), "the responder failed");

	/* A successful reply has no error. */
	responder_stop(&r);
	responder_start(&r, b, "calls.fail", NULL, RESP_UPPER);
	assert_int_equal(lbus_call(caller, "calls.fail", "x", 1, lbt_ms(5000), &reply), 0);
	assert_null(reply->error);
	lbus_reply_free(reply);
	lbus_close(caller);
	responder_stop(&r);
}

/* Start `lbus serve NAME -- sh -c SCRIPT` and wait until it owns NAME. */
static void serve_sh(struct lbt_proc *serve, const struct lbt_broker *b, lbus *bus, const char *name,
		     const char *script)
{
	assert_int_equal(lbt_cli_spawn(serve, b, "serve", name, "--", "/bin/sh", "-c", script, NULL), 0);
	assert_int_equal(wait_name_owned(bus, name, lbt_ms(10000)), 0);
}

/* `lbus call NAME` must fail with status 1, within 2 s, saying want. */
static void expect_call_fails_fast(const struct lbt_broker *b, const char *name, const char *want)
{
	struct lbt_proc p;
	int64_t t0 = lbt_now_ms();
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(30000), &p, "call", name, "hi", "-t", "20", NULL), 0);
	assert_int_equal(p.exit_code, 1);
	assert_true(lbt_now_ms() - t0 < lbt_ms(5000));
	assert_string_equal(txt(p.out), "");
	assert_non_null(strstr(txt(p.err), "responder failed"));
	assert_non_null(strstr(txt(p.err), want));
	lbt_proc_free(&p);
}

static void test_cli_serve_failing_command(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	struct lbt_proc serve;
	serve_sh(&serve, b, bus, "calls.exit3", "cat >/dev/null; echo partial; exit 3");
	expect_call_fails_fast(b, "calls.exit3", "status 3");
	lbt_proc_free(&serve);

	serve_sh(&serve, b, bus, "calls.killed", "kill -9 $$");
	expect_call_fails_fast(b, "calls.killed", "signal 9");
	lbt_proc_free(&serve);

	assert_int_equal(lbt_cli_spawn(&serve, b, "serve", "calls.norun", "--", "/nonexistent/cmd", NULL), 0);
	assert_int_equal(wait_name_owned(bus, "calls.norun", lbt_ms(10000)), 0);
	expect_call_fails_fast(b, "calls.norun", "cannot run /nonexistent/cmd");
	lbt_proc_free(&serve);
	lbus_close(bus);
}

static void test_cli_serve_reply_too_large(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	struct lbt_proc serve;
	/* More than the broker's 8 MiB frame. */
	serve_sh(&serve, b, bus, "calls.big", "head -c 9000000 /dev/zero");
	expect_call_fails_fast(b, "calls.big", "reply too large");
	lbt_proc_free(&serve);
	lbus_close(bus);
}

/* Lines in dir/name, or -1 if it cannot be read. */
static int count_lines(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (lbt_path(path, dir, name) < 0)
		return -1;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_cli_serve_skips_expired_calls(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	char script[PATH_MAX + 64];
	snprintf(script, sizeof(script), "echo ran >> '%s/runs'; sleep 1; echo done", b->dir);
	struct lbt_proc serve;
	serve_sh(&serve, b, bus, "calls.slow", script);

	/* The first call runs for 1 s; the second gives up after 300 ms while
	 * queued behind it, so serve must not run it. */
	struct async_calls calls = {0};
	struct async_slot slots[2] = {{&calls, 0}, {&calls, 1}};
	assert_true(
	    lbus_call_async(bus, "calls.slow", "a", 1, lbt_ms(10000), on_async_reply, &slots[0], NULL) == 0);
	assert_true(lbus_call_async(bus, "calls.slow", "b", 1, 300, on_async_reply, &slots[1], NULL) == 0);
	int64_t t0 = lbt_now_ms();
	while (calls.times_called[0] == 0 && lbt_now_ms() - t0 < lbt_ms(10000))
		assert_true(lbus_run(bus, 10) >= 0);
	assert_int_equal(calls.err[0], 0);
	assert_int_equal(calls.err[1], -ETIMEDOUT);
	free(calls.reply[0]);
	lbus_run(bus, 300); /* a second run would have started by now */
	assert_int_equal(count_lines(b->dir, "runs"), 1);
	assert_false(lbt_proc_exited(&serve));
	lbt_proc_free(&serve);
	lbus_close(bus);
}

static void test_cli_serve_kills_stubborn_command(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	char script[PATH_MAX + 64];
	snprintf(script, sizeof(script), "trap '' TERM; echo x > '%s/started'; sleep 30", b->dir);
	struct lbt_proc serve;
	serve_sh(&serve, b, bus, "calls.stubborn", script);
	struct async_calls calls = {0};
	struct async_slot slot = {&calls, 0};
	assert_true(
	    lbus_call_async(bus, "calls.stubborn", "a", 1, lbt_ms(20000), on_async_reply, &slot, NULL) == 0);
	int64_t t0 = lbt_now_ms();
	while (count_lines(b->dir, "started") < 1 && lbt_now_ms() - t0 < lbt_ms(10000))
		assert_true(lbus_run(bus, 10) >= 0);
	assert_int_equal(count_lines(b->dir, "started"), 1);

	t0 = lbt_now_ms();
	lbt_proc_signal(&serve, SIGTERM);
	assert_int_equal(lbt_proc_wait(&serve, lbt_ms(8000)), 0);
	assert_false(serve.timed_out);
	assert_true(lbt_now_ms() - t0 < lbt_ms(4000));
	assert_int_equal(serve.exit_code, 0);
	/* The caller learns at once that its responder is gone. */
	while (calls.completed < 1 && lbt_now_ms() - t0 < lbt_ms(5000))
		assert_true(lbus_run(bus, 10) >= 0);
	assert_int_equal(calls.err[0], -ECONNABORTED);
	lbt_proc_free(&serve);
	lbus_close(bus);
}

/* Is pid gone (or a zombie nobody reaped yet)? */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* The command exits on SIGTERM but leaves behind a process of its group
 * that ignores it: serve's SIGKILL reaches that one too. */
static void test_cli_serve_kills_what_the_command_left(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	char script[2 * PATH_MAX + 128];
	snprintf(script, sizeof(script),
		 "(trap '' TERM; exec sleep 30) & echo $! > '%s/left'; echo x > '%s/started'; wait", b->dir,
		 b->dir);
	struct lbt_proc serve;
	serve_sh(&serve, b, bus, "calls.leaver", script);
	struct async_calls calls = {0};
	struct async_slot slot = {&calls, 0};
	assert_true(
	    lbus_call_async(bus, "calls.leaver", "a", 1, lbt_ms(20000), on_async_reply, &slot, NULL) == 0);
	int64_t t0 = lbt_now_ms();
	while (count_lines(b->dir, "started") < 1 && lbt_now_ms() - t0 < lbt_ms(10000))
		assert_true(lbus_run(bus, 10) >= 0);
	assert_int_equal(count_lines(b->dir, "started"), 1);
	char path[PATH_MAX];
	assert_int_equal(lbt_path(path, b->dir, "left"), 0);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int left = 0;
	assert_int_equal(fscanf(f, "%d", &left), 1);
	fclose(f);
	assert_true(left > 0);
	assert_false(process_gone(left));

	lbt_proc_signal(&serve, SIGTERM);
	assert_int_equal(lbt_proc_wait(&serve, lbt_ms(8000)), 0);
	assert_int_equal(serve.exit_code, 0);
	t0 = lbt_now_ms();
	while (!process_gone(left) && lbt_now_ms() - t0 < lbt_ms(3000))
		lbt_sleep_ms(20);
	bool gone = process_gone(left);
	if (!gone)
		kill(left, SIGKILL);
	assert_true(gone);
	lbt_proc_free(&serve);
	lbus_close(bus);
}

static void test_cli_serve_topic(void **state)
{
	struct lbt_broker *b = *state;
	lbus *bus;
	assert_int_equal(lbt_connect(b, &bus), 0);
	struct lbt_proc serve;
	assert_int_equal(
	    lbt_cli_spawn(&serve, b, "serve", "-T", "svc/serve/+", "--", "tr", "a-z", "A-Z", NULL), 0);
	/* Ready once a call stops finding no responder. */
	struct lbus_reply *reply = NULL;
	int r = -ESRCH;
	for (int64_t t0 = lbt_now_ms(); r == -ESRCH && lbt_now_ms() - t0 < lbt_ms(10000);)
		if ((r = lbus_call(bus, "svc/serve/a", "ready", 5, lbt_ms(5000), &reply)) == -ESRCH)
			lbt_sleep_ms(10);
	assert_int_equal(r, 0);
	assert_true(bytes_eq(reply->data, reply->len, "READY"));
	lbus_reply_free(reply);
	/* A publish on the pattern is no call: ignored. */
	assert_int_equal(lbus_publish(bus, "svc/serve/a", "pub", 3, 0), 0);
	struct lbt_proc p;
	assert_int_equal(lbt_cli_run(b, NULL, 0, lbt_ms(10000), &p, "call", "svc/serve/b", "hello", NULL), 0);
	assert_int_equal(p.exit_code, 0);
	assert_string_equal(txt(p.out), "HELLO\n");
	lbt_proc_free(&p);
	assert_false(lbt_proc_exited(&serve));
	lbt_proc_free(&serve);
	lbus_close(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_async_calls_out_of_order, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_blocking_call_to_name, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_call_to_topic_subscriber, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_no_responders, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_responder_killed_mid_call, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_call_responder_killed, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_call_timeout, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_and_call, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_sub_all_is_no_responder, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_topic_call_skips_plain_subscriber, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_listen_refuses_calls, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_reply_error_through_library, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_failing_command, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_reply_too_large, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_skips_expired_calls, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_kills_stubborn_command, lbt_setup, lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_kills_what_the_command_left, lbt_setup,
					    lbt_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_serve_topic, lbt_setup, lbt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
