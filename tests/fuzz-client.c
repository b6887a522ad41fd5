/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: liblbus's input path, with the input as what a hostile
 * broker sends. A thread of the target plays the broker on a socket in a
 * private directory: it accepts the library's connection, writes the bytes
 * of the input, shuts its side for writing and reads (discards) what the
 * library sends until it hangs up. The library connects with
 * lbus_connect_with(), subscribes (async, a plain and a responder
 * subscription), starts an async call, and dispatches until the connection
 * fails: which it must, cleanly, at the end of the bytes. Its callbacks read
 * every byte and string they are given (ASan sees a bad pointer or length)
 * and answer calls.
 *
 * Input: a first byte of settings, then the broker's bytes.
 *   bit 0  no valid Welcome first: the bytes answer the hello themselves;
 *   bit 1  framed: the bytes are [2-byte big-endian length][body] pieces,
 *          each sent with its 4-byte frame header (else sent as they are);
 *   bit 2  the first delivery's callback makes a blocking call
 *          (lbus_sync), which reads more input inside the callback;
 *   bit 3  subscribe with the blocking lbus_subscribe() (the bytes must
 *          answer it, or it times out).
 * The checks are that nothing crashes, overreads, leaks or hangs, and that
 * lbus_dispatch() ends with an error once the broker's side is closed.
 *
 * Built with -Dfuzzing=true it is a libFuzzer target (fuzz-client-libfuzzer);
 * fuzz-replay.c runs its corpus, tests/corpus/fuzz-client/, in the normal
 * suite.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lbus.h"
#include "lbus.pb-c.h"
#include "frame.h"
#include "lbus-limits.h"

#define FC_TIMEOUT_MS 100
#define FC_MAX_TURNS 2000

/* The broker thread's side: what to send for the connection in progress. */
static struct {
	pthread_t thread;
	int listen_fd;
	char dir[64], path[96];
	sem_t go, done;
	const uint8_t *data;
	size_t size;
	unsigned settings;
} srv;

static struct {
	lbus *bus;
	unsigned settings;
	bool synced;  /* the blocking call in a callback was made */
	uint64_t sum; /* of every byte seen, so no read is optimised away */
} cli;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the library hung up first: fine */
		b += w;
		n -= (size_t)w;
	}
}

static void send_welcome(int fd)
{
	Lbus__Welcome w = LBUS__WELCOME__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	uint8_t buf[256];
	size_t len;

	w.version = LBUS_PROTOCOL_VERSION;
	w.client_id = 7;
	w.max_frame = LBUS_DEFAULT_MAX_FRAME;
	w.max_queue = LBUS_DEFAULT_MAX_QUEUE;
	w.broker = "lbusd fuzz";
	f.kind_case = LBUS__FRAME__KIND_WELCOME;
	f.welcome = &w;
	len = lbus__frame__pack(&f, buf + LBUS_FRAME_HEADER);
	lbus_frame_put_len(buf, (uint32_t)len);
	write_all(fd, buf, LBUS_FRAME_HEADER + len);
}

/* The framed pieces of the input, each with its frame header. */
static void send_framed(int fd, const uint8_t *p, size_t n)
{
	while (n >= 2) {
		size_t len = (size_t)p[0] << 8 | p[1];
		uint8_t hdr[LBUS_FRAME_HEADER];

		p += 2;
		n -= 2;
		if (len > n)
			len = n;
		lbus_frame_put_len(hdr, (uint32_t)len);
		write_all(fd, hdr, sizeof(hdr));
		write_all(fd, p, len);
		p += len;
		n -= len;
	}
}

static void serve_one(int fd)
{
	char sink[4096];

	if (!(srv.settings & 1))
		send_welcome(fd);
	if (srv.settings & 2)
		send_framed(fd, srv.data, srv.size);
	else
		write_all(fd, srv.data, srv.size);
	shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), 0) > 0)
		;
	close(fd);
}

static void *broker_thread(void *arg)
{
	(void)arg;
	for (;;) {
		sem_wait(&srv.go);
		int fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			abort();
		serve_one(fd);
		sem_post(&srv.done);
	}
	return NULL;
}

static void server_start(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(srv.dir, sizeof(srv.dir), "/tmp/lbus-fuzz-client-XXXXXX");
	if (!mkdtemp(srv.dir))
		abort();
	snprintf(srv.path, sizeof(srv.path), "%s/bus", srv.dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", srv.path);
	srv.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(srv.listen_fd, 4) < 0)
		abort();
	sem_init(&srv.go, 0, 0);
	sem_init(&srv.done, 0, 0);
	if (pthread_create(&srv.thread, NULL, broker_thread, NULL) != 0)
		abort();
}

static void server_stop(void)
{
	unlink(srv.path);
	rmdir(srv.dir);
}

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		cli.sum += b[i];
}

static void touch_sender(const struct lbus_sender *s)
{
	touch(s->name, strlen(s->name));
	cli.sum += s->id + (uint64_t)s->pid;
}

static void on_msg(lbus *bus, const struct lbus_msg *msg, void *userdata)
{
	(void)userdata;
	touch(msg->data, msg->len);
	if (msg->topic)
		touch(msg->topic, strlen(msg->topic));
	touch_sender(&msg->sender);
	if (msg->kind == LBUS_MSG_CALL)
		lbus_reply(bus, msg->reply_token, "r", 1);
	if ((cli.settings & 4) && !cli.synced) {
		cli.synced = true;
		lbus_sync(bus, FC_TIMEOUT_MS);
	}
}

static void on_done(lbus *bus, int err, void *userdata)
{
	(void)bus;
	(void)userdata;
	cli.sum += (uint64_t)-err;
}

static void on_reply(lbus *bus, int err, const struct lbus_reply *reply, void *userdata)
{
	(void)bus;
	(void)userdata;
	(void)err;
	if (reply) {
		touch(reply->data, reply->len);
		if (reply->error)
			touch(reply->error, strlen(reply->error));
	}
}

static void on_dropped(lbus *bus, uint64_t sub_id, uint64_t count, void *userdata)
{
	(void)bus;
	(void)userdata;
	cli.sum += sub_id + count;
}

static void on_error(lbus *bus, int err, const char *what, void *userdata)
{
	(void)bus;
	(void)userdata;
	(void)err;
	if (what)
		touch(what, strlen(what));
}

/* What a typical client asks for, so the bytes have something to answer. */
static void client_requests(lbus *bus)
{
	struct lbus_sub_opts resp = {.size = sizeof(resp), .responder = true};

	lbus_on_message(bus, on_msg, NULL);
	lbus_on_call(bus, on_msg, NULL);
	lbus_on_dropped(bus, on_dropped, NULL);
	lbus_on_error(bus, on_error, NULL);
	if (cli.settings & 8)
		lbus_subscribe(bus, "#", on_msg, NULL, NULL, NULL);
	else
		lbus_subscribe_async(bus, "#", on_msg, NULL, NULL, NULL, on_done, NULL);
	lbus_subscribe_async(bus, "svc/+", on_msg, NULL, &resp, NULL, on_done, NULL);
	lbus_call_async(bus, "svc.name", "q", 1, FC_TIMEOUT_MS, on_reply, NULL, NULL);
}

/* Dispatch until the connection fails (it must: the broker's side ends). */
static void client_run(lbus *bus)
{
	int ret = 0;

	for (int i = 0; i < FC_MAX_TURNS && ret >= 0; i++) {
		struct pollfd pfd = {.fd = lbus_fd(bus), .events = lbus_events(bus)};

		poll(&pfd, 1, FC_TIMEOUT_MS);
		ret = lbus_dispatch(bus);
	}
	if (ret >= 0) {
		fprintf(stderr, "fuzz-client: the library still dispatches after the broker hung up\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lbus_connect_opts opts = {.size = sizeof(opts), .timeout_ms = FC_TIMEOUT_MS};
	lbus *bus = NULL;

	if (!srv.dir[0]) {
		server_start();
		atexit(server_stop);
	}
	srv.settings = size ? data[0] : 0;
	srv.data = size ? data + 1 : data;
	srv.size = size ? size - 1 : 0;
	memset(&cli, 0, sizeof(cli));
	cli.settings = srv.settings;
	sem_post(&srv.go);
	if (lbus_connect_with(&bus, srv.path, &opts) == 0) {
		cli.bus = bus;
		client_requests(bus);
		client_run(bus);
		lbus_close(bus);
	}
	sem_wait(&srv.done);
	return 0;
}
