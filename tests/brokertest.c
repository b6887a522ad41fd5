/* SPDX-License-Identifier: MIT */
/*
 * In-process broker for unit tests (see brokertest.h): socketpair()
 * connections adopted by a bare broker, loop turns driven by the test.
 *
 * Waiting is turn-driven: bt_recv() alternates between reading the test's
 * end and running one turn (1 ms epoll timeout, so timers such as call
 * deadlines still fire), until a frame is there or BT_WAIT_MS passed. The
 * test clients' unwritten output is written at the start of every turn, so a
 * client the broker stopped reading keeps its frames, in order, until the
 * broker reads again.
 */
#include "brokertest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lbus-limits.h"

#define BT_READ_CHUNK 65536u

static int64_t bt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bt_start(struct bt_broker *t)
{
	struct broker_options opts = {.bare = true};
	int ret;

	memset(t, 0, sizeof(*t));
	ret = broker_init(&t->b, &opts);
	if (ret < 0) {
		fprintf(stderr, "brokertest: broker_init: %s\n", strerror(-ret));
		broker_deinit(&t->b);
	}
	return ret;
}

static void bt_forget(struct bt_client *c)
{
	for (size_t i = 0; i < BT_MAX_CLIENTS; i++)
		if (c->t->clients[i] == c)
			c->t->clients[i] = NULL;
}

static void bt_release(struct bt_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	lbus_rbuf_deinit(&c->in);
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	bt_forget(c);
}

void bt_stop(struct bt_broker *t)
{
	for (size_t i = 0; i < BT_MAX_CLIENTS; i++)
		if (t->clients[i])
			bt_release(t->clients[i]);
	broker_deinit(&t->b);
}

int bt_adopt(struct bt_broker *t, struct bt_client *c)
{
	int sv[2];
	int64_t id;
	size_t slot;

	memset(c, 0, sizeof(*c));
	c->t = t;
	c->fd = -1;
	lbus_rbuf_init(&c->in);
	for (slot = 0; slot < BT_MAX_CLIENTS && t->clients[slot]; slot++)
		;
	if (slot == BT_MAX_CLIENTS) {
		fprintf(stderr, "brokertest: more than %d clients\n", BT_MAX_CLIENTS);
		return -EMFILE;
	}
	broker_apply_config(&t->b); /* the test may have changed t->b.cfg */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (t->sndbuf && setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &t->sndbuf, sizeof(t->sndbuf)) < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	id = broker_adopt_fd(&t->b, sv[1]);
	if (id < 0) {
		fprintf(stderr, "brokertest: broker_adopt_fd: %s\n", strerror((int)-id));
		close(sv[0]);
		return (int)id;
	}
	c->fd = sv[0];
	c->id = (uint64_t)id;
	t->clients[slot] = c;
	return 0;
}

int bt_connect(struct bt_broker *t, struct bt_client *c)
{
	Lbus__Hello hello = LBUS__HELLO__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Frame *w;
	int ret = bt_adopt(t, c);

	if (ret < 0)
		return ret;
	hello.version = LBUS_PROTOCOL_VERSION;
	f.kind_case = LBUS__FRAME__KIND_HELLO;
	f.hello = &hello;
	ret = bt_send(c, &f);
	if (ret < 0)
		return ret;
	w = bt_expect(c, LBUS__FRAME__KIND_WELCOME);
	if (!w)
		return -EPROTO;
	if (w->welcome->client_id != c->id) {
		fprintf(stderr, "brokertest: welcome names client %llu, adopted as %llu\n",
			(unsigned long long)w->welcome->client_id, (unsigned long long)c->id);
		ret = -EPROTO;
	}
	lbus__frame__free_unpacked(w, NULL);
	return ret;
}

void bt_close(struct bt_client *c)
{
	struct bt_broker *t = c->t;

	bt_release(c);
	bt_settle(t);
}

/* Write as much of c's pending output as the socket takes. Returns the bytes
 * written (0 when none could be), or -errno. */
static ssize_t bt_write_pending(struct bt_client *c)
{
	ssize_t n;

	if (!c->out_len || c->fd < 0)
		return 0;
	n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	memmove(c->out, c->out + n, c->out_len - (size_t)n);
	c->out_len -= (size_t)n;
	return n;
}

/* Write every client's pending output; true when any byte was written. */
static bool bt_write_all(struct bt_broker *t)
{
	bool wrote = false;

	for (size_t i = 0; i < BT_MAX_CLIENTS; i++)
		if (t->clients[i] && bt_write_pending(t->clients[i]) > 0)
			wrote = true;
	return wrote;
}

int bt_turn(struct bt_broker *t, int timeout_ms)
{
	bt_write_all(t);
	return broker_turn(&t->b, timeout_ms);
}

int bt_settle(struct bt_broker *t)
{
	int64_t deadline = bt_now_ms() + BT_WAIT_MS;

	while (bt_now_ms() < deadline) {
		bool wrote = bt_write_all(t);
		int n = broker_turn(&t->b, 0);

		if (n < 0)
			return n;
		if (n == 0 && !wrote)
			return 0;
	}
	fprintf(stderr, "brokertest: the broker did not settle within %d ms\n", BT_WAIT_MS);
	return -ETIMEDOUT;
}

/* Room for len more bytes of output; NULL on ENOMEM. */
static uint8_t *bt_out_reserve(struct bt_client *c, size_t len)
{
	size_t need = c->out_len + len;

	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *out;

		while (cap < need)
			cap *= 2;
		out = realloc(c->out, cap);
		if (!out)
			return NULL;
		c->out = out;
		c->out_cap = cap;
	}
	return c->out + c->out_len;
}

int bt_send(struct bt_client *c, const Lbus__Frame *f)
{
	size_t len = lbus__frame__get_packed_size(f);
	uint8_t *p;

	if (c->fd < 0)
		return -EBADF;
	p = bt_out_reserve(c, LBUS_FRAME_HEADER + len);
	if (!p)
		return -ENOMEM;
	lbus_frame_put_len(p, (uint32_t)len);
	lbus__frame__pack(f, p + LBUS_FRAME_HEADER);
	c->out_len += LBUS_FRAME_HEADER + len;
	return bt_write_pending(c) < 0 ? -EPIPE : 0;
}

int bt_send_bytes(struct bt_client *c, const void *data, size_t len)
{
	uint8_t *p;

	if (c->fd < 0)
		return -EBADF;
	if (len == 0)
		return 0; /* nothing to queue (and no buffer yet: NULL + 0) */
	p = bt_out_reserve(c, len);
	if (!p)
		return -ENOMEM;
	memcpy(p, data, len);
	c->out_len += len;
	return bt_write_pending(c) < 0 ? -EPIPE : 0;
}

/* Take one complete frame out of c->in: 1 (and *out), 0 for none, -EPROTO. */
static int bt_take_frame(struct bt_client *c, Lbus__Frame **out)
{
	const uint8_t *body;
	uint32_t len;
	int ret = lbus_frame_next(&c->in, UINT32_MAX, &body, &len, NULL);

	if (ret <= 0)
		return ret == 0 ? 0 : -EPROTO;
	*out = lbus__frame__unpack(NULL, len, body);
	if (!*out) {
		fprintf(stderr, "brokertest: client %llu got an undecodable frame (%u bytes)\n",
			(unsigned long long)c->id, len);
		return -EPROTO;
	}
	return 1;
}

/* Read what is there: bytes read (> 0), 0 for none, -ECONNRESET at EOF. */
static ssize_t bt_read(struct bt_client *c)
{
	ssize_t n;

	if (c->eof || c->fd < 0)
		return -ECONNRESET;
	if (lbus_rbuf_reserve(&c->in, BT_READ_CHUNK) < 0)
		return -ENOMEM;
	n = recv(c->fd, lbus_rbuf_tail(&c->in), lbus_rbuf_avail(&c->in), MSG_DONTWAIT);
	if (n > 0) {
		lbus_rbuf_advance(&c->in, (size_t)n);
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	c->eof = true;
	return -ECONNRESET;
}

int bt_recv(struct bt_client *c, Lbus__Frame **out)
{
	int64_t deadline = bt_now_ms() + BT_WAIT_MS;

	for (;;) {
		int ret = bt_take_frame(c, out);
		ssize_t n;

		if (ret != 0)
			return ret > 0 ? 0 : ret;
		n = bt_read(c);
		if (n > 0)
			continue;
		if (n < 0)
			return (int)n;
		if (bt_now_ms() >= deadline) {
			fprintf(stderr, "brokertest: nothing arrived for client %llu within %d ms\n",
				(unsigned long long)c->id, BT_WAIT_MS);
			return -ETIMEDOUT;
		}
		ret = bt_turn(c->t, 1);
		if (ret < 0)
			return ret;
	}
}

static const char *bt_kind_name(int kind)
{
	const ProtobufCFieldDescriptor *d =
	    protobuf_c_message_descriptor_get_field(&lbus__frame__descriptor, (unsigned)kind);

	return d ? d->name : "nothing";
}

Lbus__Frame *bt_expect(struct bt_client *c, int kind)
{
	Lbus__Frame *f;
	int ret = bt_recv(c, &f);

	if (ret < 0) {
		fprintf(stderr, "brokertest: client %llu expected %s: %s\n", (unsigned long long)c->id,
			bt_kind_name(kind), strerror(-ret));
		return NULL;
	}
	if ((int)f->kind_case != kind) {
		fprintf(stderr, "brokertest: client %llu expected %s, got %s", (unsigned long long)c->id,
			bt_kind_name(kind), bt_kind_name((int)f->kind_case));
		if (f->kind_case == LBUS__FRAME__KIND_ERROR)
			fprintf(stderr, " (code %d: %s)", f->error->code, f->error->reason);
		fputc('\n', stderr);
		lbus__frame__free_unpacked(f, NULL);
		return NULL;
	}
	return f;
}

int bt_expect_fatal(struct bt_client *c, int code)
{
	Lbus__Frame *f, *last = NULL;
	int ret;

	while ((ret = bt_recv(c, &f)) == 0) {
		if (last)
			lbus__frame__free_unpacked(last, NULL);
		last = f;
	}
	if (ret == -ECONNRESET) {
		if (!last || last->kind_case != LBUS__FRAME__KIND_ERROR || !last->error->fatal ||
		    (int)last->error->code != code) {
			fprintf(stderr,
				"brokertest: client %llu closed without a fatal error %d (last: %s)\n",
				(unsigned long long)c->id, code,
				last ? bt_kind_name((int)last->kind_case) : "none");
			ret = -EPROTO;
		} else {
			ret = 0;
		}
	}
	if (last)
		lbus__frame__free_unpacked(last, NULL);
	return ret;
}

bool bt_nothing(struct bt_client *c)
{
	Lbus__Frame *f;
	bool none = true;
	int ret;

	if (bt_settle(c->t) < 0)
		return false;
	while (bt_read(c) > 0)
		;
	while ((ret = bt_take_frame(c, &f)) > 0) {
		fprintf(stderr, "brokertest: client %llu got an unexpected %s\n", (unsigned long long)c->id,
			bt_kind_name((int)f->kind_case));
		lbus__frame__free_unpacked(f, NULL);
		none = false;
	}
	return none && ret == 0;
}

/* ---- requests ---------------------------------------------------------------- */

/* Expect Ok answering the request kind `request`. */
static int bt_expect_ok(struct bt_client *c, int request)
{
	Lbus__Frame *f = bt_expect(c, LBUS__FRAME__KIND_OK);
	int ret = 0;

	if (!f)
		return -EPROTO;
	if ((int)f->ok->request != request) {
		fprintf(stderr, "brokertest: Ok answers %s, not %s\n", bt_kind_name((int)f->ok->request),
			bt_kind_name(request));
		ret = -EPROTO;
	}
	lbus__frame__free_unpacked(f, NULL);
	return ret;
}

int bt_subscribe(struct bt_client *c, const Lbus__Subscribe *s)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	int ret;

	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = (Lbus__Subscribe *)s;
	f.req_id = 1;
	ret = bt_send(c, &f);
	return ret < 0 ? ret : bt_expect_ok(c, LBUS__FRAME__KIND_SUBSCRIBE);
}

int bt_sub(struct bt_client *c, uint64_t sub_id, const char *pattern)
{
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;

	s.sub_id = sub_id;
	s.pattern = (char *)pattern;
	return bt_subscribe(c, &s);
}

static ProtobufCBinaryData bt_bytes(const char *s)
{
	return (ProtobufCBinaryData){.len = s ? strlen(s) : 0, .data = (uint8_t *)s};
}

int bt_publish(struct bt_client *c, const char *topic, const char *payload, bool retain)
{
	Lbus__Publish p = LBUS__PUBLISH__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	p.topic = (char *)topic;
	p.payload = bt_bytes(payload);
	p.retain = retain;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &p;
	return bt_send(c, &f);
}

int bt_take_name(struct bt_client *c, const char *name)
{
	Lbus__NameRequest n = LBUS__NAME_REQUEST__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	int ret;

	n.name = (char *)name;
	f.kind_case = LBUS__FRAME__KIND_TAKE_NAME;
	f.take_name = &n;
	f.req_id = 1;
	ret = bt_send(c, &f);
	return ret < 0 ? ret : bt_expect_ok(c, LBUS__FRAME__KIND_TAKE_NAME);
}

int bt_call(struct bt_client *c, const char *target, uint64_t call_id, const char *payload,
	    uint32_t timeout_ms)
{
	Lbus__Call call = LBUS__CALL__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	call.target = (char *)target;
	call.payload = bt_bytes(payload);
	call.call_id = call_id;
	call.timeout_ms = timeout_ms;
	f.kind_case = LBUS__FRAME__KIND_CALL;
	f.call = &call;
	return bt_send(c, &f);
}

int bt_reply(struct bt_client *c, uint64_t call_token, const char *payload)
{
	Lbus__Reply r = LBUS__REPLY__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	r.call_token = call_token;
	r.payload = bt_bytes(payload);
	f.kind_case = LBUS__FRAME__KIND_REPLY;
	f.reply = &r;
	return bt_send(c, &f);
}

int bt_ping(struct bt_client *c, uint64_t token)
{
	Lbus__Ping p = LBUS__PING__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;

	p.token = token;
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &p;
	return bt_send(c, &f);
}

bool bt_bytes_eq(ProtobufCBinaryData d, const char *s)
{
	size_t n = strlen(s);

	return d.len == n && (n == 0 || memcmp(d.data, s, n) == 0);
}
