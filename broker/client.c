/* SPDX-License-Identifier: MIT */
/*
 * Client connections (see client.h): accept and credentials, reading and
 * framing, writing, epoll interest, deadlines, protocol errors, close.
 *
 * Reading: an idle client owns no input buffer. When it becomes readable it
 * borrows the broker's one scratch buffer (256 KiB), reads one chunk, and
 * every complete frame in it is dispatched before we return to epoll; that
 * one chunk is the per-wakeup fairness bound. What is left (a partial frame,
 * or frames a blocked publisher could not hand on yet) is copied to a buffer
 * of the client's own, sized to it, and the scratch buffer always goes back
 * to the broker, so a connection storm costs one read buffer, not one per
 * client. Only a frame bigger than the scratch buffer is read into the
 * client's own buffer, which grows as the frame's bytes arrive (not to the
 * length it announces) and is freed once the frame is consumed.
 *
 * Writing: queued output is written at the end of the loop turn (the broker's
 * flush list), so a burst of deliveries to a client goes out in one sendmsg;
 * EPOLLOUT is armed only when the socket did not take everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "callreply.h"
#include "client.h"
#include "dispatch.h"
#include "introspect.h"
#include "lbus-limits.h"
#include "subscription.h"

#define CLIENT_READ_CHUNK (256u * 1024u)
#define CLIENT_RBUF_SMALL 4096u
#define CLIENT_READ_MIN 4096u /* least free room offered to read() */
#define CLIENT_ACCEPT_BATCH 64

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void client_set_deadline(struct client *c, int64_t when_ms)
{
	c->deadline_ms = when_ms;
	if (when_ms && !list_linked(&c->deadline_link))
		list_add_tail(&c->broker->deadlines, &c->deadline_link);
	else if (!when_ms)
		list_del(&c->deadline_link);
}

/* Refuse a connection before its hello: one fatal Error frame (code,
 * reason), then close. */
static void client_refuse(struct broker *b, int fd, uint32_t code, const char *reason)
{
	Lbus__Error err = LBUS__ERROR__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	uint8_t buf[512];

	err.code = code;
	err.reason = (char *)reason;
	err.fatal = true;
	f.kind_case = LBUS__FRAME__KIND_ERROR;
	f.error = &err;
	if (lbus_frame_packed_size(&f) <= sizeof(buf) &&
	    send(fd, buf, lbus_frame_pack(&f, buf), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_msg(&b->log, LOG_DEBUG, "could not send the refusal: %s", strerror(errno));
	close(fd);
}

/* Log a refused connection, at most one line a second (a client retrying in
 * a loop must not flood the log); the lines skipped are counted in the next. */
static void client_log_refusal(struct broker *b, const struct ucred *cr, const char *why)
{
	int64_t now = broker_now_ms();

	if (b->refusal_logged_ms && now - b->refusal_logged_ms < 1000) {
		b->refusals_unlogged++;
		return;
	}
	log_msg(&b->log, LOG_WARNING,
		"refused connection from pid %d uid %u: %s (and %llu more since the last report)",
		(int)cr->pid, (unsigned)cr->uid, why, (unsigned long long)b->refusals_unlogged);
	b->refusal_logged_ms = now;
	b->refusals_unlogged = 0;
}

/* May this peer connect? true, or false after refusing it (logged, counted). */
static bool client_admit(struct broker *b, int fd, const struct ucred *cr)
{
	static const char denied[] = "permission denied: this bus admits only its owner's uid";
	char why[200];
	enum limit_refusal lim;

	if (cr->uid != b->uid) {
		client_log_refusal(b, cr, denied);
		client_refuse(b, fd, LBUS__ERROR_CODE__ERR_DENIED, denied);
		return false;
	}
	lim = uid_limits_admit(&b->uid_limits, &b->cfg, b->ctr.clients, cr->uid, why, sizeof(why));
	if (lim == LIMIT_OK)
		return true;
	if (lim == LIMIT_MAX_CLIENTS)
		b->ctr.refused_max_clients++;
	else
		b->ctr.refused_max_clients_per_uid++;
	client_log_refusal(b, cr, why);
	client_refuse(b, fd, LBUS__ERROR_CODE__ERR_LIMIT, why);
	return false;
}

static void client_new(struct broker *b, int fd)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct epoll_event ev = { .events = EPOLLIN };
	struct client *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		log_msg(&b->log, LOG_WARNING, "SO_PEERCRED failed: %s", strerror(errno));
		close(fd);
		return;
	}
	if (!client_admit(b, fd, &cr))
		return;
	c = calloc(1, sizeof(*c));
	if (!c || uid_limits_add(&b->uid_limits, cr.uid) < 0) {
		free(c);
		log_msg(&b->log, LOG_ERR, "out of memory accepting a client");
		close(fd);
		return;
	}
	c->broker = b;
	c->fd = fd;
	c->state = CLIENT_HELLO;
	c->id = b->next_client_id++;
	c->pid = cr.pid;
	c->uid = cr.uid;
	c->gid = cr.gid;
	c->max_frame = b->cfg.max_frame;
	c->connected_at_ms = realtime_ms();
	c->progress_ms = broker_now_ms();
	lbus_rbuf_init(&c->rbuf);
	outq_init(&c->outq);
	list_init(&c->flush_link);
	list_init(&c->ready_link);
	list_init(&c->deadline_link);
	list_init(&c->wait_link);
	list_init(&c->waiters);
	list_init(&c->subs);
	name_owner_init(&c->names);
	ev.data.ptr = c;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_msg(&b->log, LOG_ERR, "epoll_ctl: %s", strerror(errno));
		uid_limits_del(&b->uid_limits, cr.uid);
		close(fd);
		free(c);
		return;
	}
	c->events = EPOLLIN;
	c->registered = true;
	list_add_tail(&b->clients, &c->link);
	client_set_deadline(c, broker_now_ms() + b->cfg.hello_timeout_ms);
	client_sender_changed(c);
	calls_peer_init(&c->calls);
	introspect_read_comm(c);
	b->ctr.clients++;
	b->ctr.clients_total++;
	log_msg(&b->log, LOG_DEBUG, "client %llu connected (pid %d uid %u)", (unsigned long long)c->id, (int)c->pid,
		(unsigned)c->uid);
}

/* EMFILE/ENFILE: accept with the spare fd and close at once, so the pending
 * connection does not keep the listener readable (no busy loop). */
static void client_shed(struct broker *b)
{
	int fd;

	if (b->reserve_fd < 0)
		return;
	close(b->reserve_fd);
	fd = accept4(b->listener.fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	b->shed_count++;
	if (broker_now_ms() - b->shed_logged_ms >= 1000) {
		b->shed_logged_ms = broker_now_ms();
		log_msg(&b->log, LOG_WARNING, "out of file descriptors: refused %llu connection(s) so far",
			(unsigned long long)b->shed_count);
	}
}

void client_accept_all(struct broker *b)
{
	for (int i = 0; i < CLIENT_ACCEPT_BATCH; i++) {
		int fd = accept4(b->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			client_new(b, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			client_shed(b);
			if (b->reserve_fd < 0)
				return;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_msg(&b->log, LOG_WARNING, "accept: %s", strerror(errno));
		return;
	}
}

void client_update_events(struct client *c)
{
	struct broker *b = c->broker;
	bool want_in = !c->blocked_on && !b->stopping;
	uint32_t ev = (want_in ? EPOLLIN : 0) | (c->write_blocked ? EPOLLOUT : 0);
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (c->state == CLIENT_CLOSED)
		return;
	if (c->peer_hup && !ev) {
		/* EPOLLHUP is reported even with no events: park the fd. */
		if (c->registered && epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL) == 0)
			c->registered = false;
		return;
	}
	if (c->registered && ev == c->events)
		return;
	if (epoll_ctl(b->epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0) {
		c->events = ev;
		c->registered = true;
	}
}

bool client_queue_full(const struct client *c, size_t add)
{
	return c->outq.bytes > 0 && c->outq.bytes + add > c->broker->cfg.max_queue;
}

/* Output starts waiting for c: its stall clock (progress_ms) starts now, not
 * at its last write, however long it has been idle. */
static void client_output_starts(struct client *c)
{
	if (outq_empty(&c->outq))
		c->progress_ms = broker_now_ms();
}

int client_queue(struct client *c, struct msgbuf *buf, const void *hdr, size_t hlen)
{
	int ret;

	if (c->state == CLIENT_CLOSED) {
		msgbuf_unref(buf);
		return 0;
	}
	client_output_starts(c);
	ret = outq_push(&c->outq, buf, hdr, hlen);
	if (ret < 0)
		return ret;
	if (!c->write_blocked && !list_linked(&c->flush_link))
		list_add_tail(&c->broker->flush, &c->flush_link);
	return 0;
}

uint8_t *client_queue_reserve(struct client *c, size_t len)
{
	uint8_t *p;

	if (c->state == CLIENT_CLOSED)
		return NULL;
	client_output_starts(c);
	p = outq_append(&c->outq, &c->broker->pool, len);
	if (p && !c->write_blocked && !list_linked(&c->flush_link))
		list_add_tail(&c->broker->flush, &c->flush_link);
	return p;
}

int client_queue_frame(struct client *c, const Lbus__Frame *f)
{
	size_t size = lbus_frame_packed_size(f);
	struct msgbuf *m;
	uint8_t *p;

	if (c->state == CLIENT_CLOSED)
		return 0;
	if (size <= OUTQ_COPY_MAX) {
		p = client_queue_reserve(c, size);
		if (!p)
			return -ENOMEM;
		lbus_frame_pack(f, p);
		return 0;
	}
	m = msgbuf_new(&c->broker->pool, size);
	if (!m)
		return -ENOMEM;
	m->len = (uint32_t)lbus_frame_pack(f, m->data);
	return client_queue(c, m, NULL, 0);
}

int client_send_ok(struct client *c, const struct lbus_wire_frame *f, uint64_t owner)
{
	Lbus__Ok ok = LBUS__OK__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	ok.request = f->kind;
	ok.owner = owner;
	out.kind_case = LBUS__FRAME__KIND_OK;
	out.ok = &ok;
	out.req_id = f->req_id;
	return client_queue_frame(c, &out);
}

static int client_queue_error(struct client *c, const struct lbus_wire_frame *f, uint32_t code, const char *reason,
			      bool fatal)
{
	Lbus__Error err = LBUS__ERROR__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;

	err.code = (Lbus__ErrorCode)code;
	err.reason = (char *)reason;
	err.request = f ? f->kind : 0;
	err.fatal = fatal;
	out.kind_case = LBUS__FRAME__KIND_ERROR;
	out.error = &err;
	out.req_id = f ? f->req_id : 0;
	c->ctr.errors++;
	c->broker->ctr.errors++;
	return client_queue_frame(c, &out);
}

int client_send_error(struct client *c, const struct lbus_wire_frame *f, uint32_t code, const char *reason)
{
	log_msg(&c->broker->log, LOG_DEBUG, "client %llu: %s refused: %s", (unsigned long long)c->id,
		lbus_kind_name(f->kind), reason);
	return client_queue_error(c, f, code, reason, false);
}

int client_fatal(struct client *c, const struct lbus_wire_frame *f, uint32_t code, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	if (c->state == CLIENT_CLOSED)
		return -EPROTO;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_msg(&c->broker->log, LOG_WARNING, "client %llu (pid %d uid %u): %s; disconnecting",
		(unsigned long long)c->id, (int)c->pid, (unsigned)c->uid, reason);
	if (client_queue_error(c, f, code, reason, true) == 0)
		outq_write(&c->outq, c->fd);
	client_close(c, reason);
	return -EPROTO;
}

/* Stop c waiting: it goes to the ready list (client_resume()). */
static void client_wake(struct client *c)
{
	list_del(&c->wait_link);
	c->blocked_on = NULL;
	client_set_deadline(c, 0);
	if (!list_linked(&c->ready_link))
		list_add_tail(&c->broker->ready, &c->ready_link);
}

static void client_wake_waiters(struct client *c)
{
	struct list *l, *tmp;

	list_for_each_safe(l, tmp, &c->waiters)
		client_wake(container_of(l, struct client, wait_link));
}

void client_wait_on(struct client *c, struct client *target, int64_t recheck_ms)
{
	c->blocked_on = target;
	list_add_tail(&target->waiters, &c->wait_link);
	client_set_deadline(c, recheck_ms);
	client_update_events(c);
}

void client_wait_recheck(struct client *c)
{
	if (c->blocked_on)
		client_wake(c);
}

/* Write what the socket takes; -errno when the connection is broken. */
static int client_write(struct client *c)
{
	ssize_t n;
	bool blocked;

	n = outq_write(&c->outq, c->fd);
	if (n < 0)
		return (int)n;
	if (n > 0)
		c->progress_ms = broker_now_ms();
	c->ctr.bytes_out += (uint64_t)n;
	c->broker->ctr.bytes_out += (uint64_t)n;
	blocked = !outq_empty(&c->outq);
	if (blocked != c->write_blocked) {
		c->write_blocked = blocked;
		client_update_events(c);
	}
	if (!blocked && c->drops_pending)
		router_flush_dropped(c); /* queued, flushed later in this turn */
	if (!list_empty(&c->waiters) && c->outq.bytes < c->broker->cfg.max_queue / 2)
		client_wake_waiters(c);
	return 0;
}

void client_flush(struct client *c)
{
	int r;

	list_del(&c->flush_link);
	if (c->state == CLIENT_CLOSED)
		return;
	r = client_write(c);
	if (r < 0)
		client_close(c, strerror(-r));
}

void client_write_now(struct client *c)
{
	if (c->state == CLIENT_CLOSED)
		return;
	if (client_write(c) < 0 && !list_linked(&c->flush_link))
		list_add_tail(&c->broker->flush, &c->flush_link);
}

void client_sender_changed(struct client *c)
{
	struct lbus_wire_sender s = { .id = c->id, .pid = (uint32_t)c->pid, .uid = c->uid, .gid = c->gid };
	uint8_t *enc;

	if (c->names.first) {
		s.name = c->names.first->name;
		s.name_len = c->names.first->len;
	}
	enc = malloc(lbus_wire_sender_size(&s) + 1);
	if (!enc)
		return; /* keep the previous encoding */
	free(c->sender);
	c->sender = enc;
	c->sender_len = lbus_wire_sender_encode(enc, &s);
}

/* Hand the scratch buffer back to the broker, dropping what it holds (freed
 * if the broker made another meanwhile, after a failed settle). */
static void client_rbuf_return(struct client *c)
{
	struct broker *b = c->broker;

	if (b->scratch.data) {
		lbus_rbuf_deinit(&c->rbuf);
	} else {
		b->scratch = c->rbuf;
		b->scratch.start = b->scratch.end = 0;
		lbus_rbuf_init(&c->rbuf);
	}
	c->rbuf_scratch = false;
}

/*
 * After processing: the scratch buffer goes back to the broker, what is left
 * in it (a partial frame, or frames a blocked publisher could not hand on
 * yet) is copied to a buffer of the client's own, sized to it. An own buffer
 * (a big frame) is freed or shrunk once it is (nearly) consumed.
 */
static void client_rbuf_settle(struct client *c)
{
	size_t len = lbus_rbuf_len(&c->rbuf);
	struct lbus_rbuf own;

	if (!c->rbuf_scratch) {
		if (len == 0)
			lbus_rbuf_deinit(&c->rbuf);
		else
			lbus_rbuf_shrink(&c->rbuf, CLIENT_RBUF_SMALL);
		return;
	}
	lbus_rbuf_init(&own);
	if (len) {
		if (lbus_rbuf_reserve(&own, len) < 0)
			return; /* keep the scratch; the next reader makes another */
		memcpy(own.data, c->rbuf.data + c->rbuf.start, len);
		own.end = len;
	}
	client_rbuf_return(c);
	c->rbuf = own;
}

/*
 * Read into the broker's scratch buffer (allocated on first use), with the
 * client's pending bytes moved in front, unless the pending frame is bigger
 * than the scratch buffer: then the client reads into its own.
 */
static void client_rbuf_borrow(struct client *c)
{
	struct broker *b = c->broker;
	size_t len = lbus_rbuf_len(&c->rbuf);
	struct lbus_rbuf s;

	if (c->rbuf_need > CLIENT_READ_CHUNK || len + CLIENT_READ_MIN > CLIENT_READ_CHUNK)
		return;
	if (!b->scratch.data && lbus_rbuf_reserve(&b->scratch, CLIENT_READ_CHUNK) < 0)
		return;
	s = b->scratch;
	s.start = 0;
	s.end = len;
	if (len)
		memcpy(s.data, c->rbuf.data + c->rbuf.start, len);
	lbus_rbuf_deinit(&c->rbuf);
	c->rbuf = s;
	c->rbuf_scratch = true;
	lbus_rbuf_init(&b->scratch);
}

/* Put the frame whose body starts at body back in front of the buffer. */
static void client_unget(struct client *c, const uint8_t *body, uint32_t len)
{
	size_t start = (size_t)(body - c->rbuf.data) - LBUS_FRAME_HEADER;

	if (c->rbuf.start == 0 && c->rbuf.end == 0)
		c->rbuf.end = start + LBUS_FRAME_HEADER + len;
	c->rbuf.start = start;
}

static void client_update_frame_deadline(struct client *c, bool progressed)
{
	if (c->state != CLIENT_READY)
		return;
	if (c->blocked_on)
		return; /* its deadline is the wait's recheck time, if any */
	if (lbus_rbuf_len(&c->rbuf) == 0)
		client_set_deadline(c, 0);
	else if (progressed || !c->deadline_ms)
		client_set_deadline(c, broker_now_ms() + c->broker->cfg.frame_timeout_ms);
}

/* Dispatch every complete frame in the input buffer. */
static void client_process(struct client *c)
{
	bool progressed = false;
	const uint8_t *body;
	uint32_t len;
	int r;

	while (c->state != CLIENT_CLOSED && !c->blocked_on) {
		size_t need = 0;

		r = lbus_frame_next(&c->rbuf, c->max_frame, &body, &len, &need);
		if (r == 0) {
			c->rbuf_need = need;
			break;
		}
		if (r == -EMSGSIZE) {
			client_fatal(c, NULL, LBUS__ERROR_CODE__ERR_TOO_BIG, "frame length %u exceeds max_frame %u",
				     lbus_frame_get_len(c->rbuf.data + c->rbuf.start), c->max_frame);
			return;
		}
		if (r < 0) {
			client_fatal(c, NULL, LBUS__ERROR_CODE__ERR_PROTOCOL, "zero-length frame");
			return;
		}
		r = dispatch_frame(c, body, len);
		if (r == CLIENT_BLOCKED) {
			client_unget(c, body, len);
			break;
		}
		if (r < 0)
			return;
		progressed = true;
		c->ctr.bytes_in += len + LBUS_FRAME_HEADER;
		c->broker->ctr.bytes_in += len + LBUS_FRAME_HEADER;
	}
	if (c->state == CLIENT_CLOSED)
		return;
	client_update_frame_deadline(c, progressed);
	client_rbuf_settle(c);
}

/*
 * Read one chunk; returns bytes read, 0 at EOF, -errno (-EAGAIN: nothing).
 * A big pending frame's buffer grows as its bytes arrive (at most doubling
 * per read), not to the length it announced, which costs nothing to send.
 */
static ssize_t client_read(struct client *c)
{
	size_t len, min_free = CLIENT_READ_MIN, avail;
	ssize_t n;

	client_rbuf_borrow(c);
	len = lbus_rbuf_len(&c->rbuf);
	if (c->rbuf_need > len + min_free) {
		min_free = c->rbuf_need - len;
		if (min_free > len && min_free > CLIENT_READ_CHUNK)
			min_free = len > CLIENT_READ_CHUNK ? len : CLIENT_READ_CHUNK;
	}
	if (lbus_rbuf_reserve(&c->rbuf, min_free) < 0)
		return -ENOMEM;
	avail = lbus_rbuf_avail(&c->rbuf);
	if (avail > CLIENT_READ_CHUNK && avail > min_free)
		avail = min_free > CLIENT_READ_CHUNK ? min_free : CLIENT_READ_CHUNK;
	do
		n = read(c->fd, lbus_rbuf_tail(&c->rbuf), avail);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	lbus_rbuf_advance(&c->rbuf, (size_t)n);
	return n;
}

static void client_on_readable(struct client *c)
{
	ssize_t n = client_read(c);

	if (n == -EAGAIN || n == -EWOULDBLOCK) {
		client_rbuf_settle(c);
		return;
	}
	if (n < 0) {
		client_close(c, strerror((int)-n));
		return;
	}
	if (n == 0) {
		if (lbus_rbuf_len(&c->rbuf))
			log_msg(&c->broker->log, LOG_INFO, "client %llu (pid %d uid %u): hung up inside a frame",
				(unsigned long long)c->id, (int)c->pid, (unsigned)c->uid);
		client_close(c, "end of file");
		return;
	}
	client_process(c);
}

void client_on_events(struct client *c, uint32_t events)
{
	if (c->state == CLIENT_CLOSED)
		return;
	if (events & EPOLLOUT) {
		client_flush(c);
		if (c->state == CLIENT_CLOSED)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	if (c->blocked_on || c->broker->stopping) {
		if (events & (EPOLLHUP | EPOLLERR)) {
			if (c->broker->stopping)
				client_close(c, "hung up");
			else
				c->peer_hup = true;
			client_update_events(c);
		}
		return;
	}
	client_on_readable(c);
}

void client_resume(struct client *c)
{
	list_del(&c->ready_link);
	if (c->state == CLIENT_CLOSED || c->blocked_on)
		return;
	client_process(c);
	client_update_events(c);
}

/* names_released_fn of a closing client: $lbus/name/released. */
static void client_name_released(const char *name, size_t len, void *ctx)
{
	const struct client *c = ctx;

	presence_name(c->broker, c, name, len, false);
}

void client_close(struct client *c, const char *why)
{
	struct broker *b = c->broker;
	bool welcomed = c->state == CLIENT_READY;

	if (c->state == CLIENT_CLOSED)
		return;
	log_msg(&b->log, LOG_DEBUG, "client %llu (pid %d) disconnected: %s", (unsigned long long)c->id, (int)c->pid,
		why);
	if (c->registered)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = CLIENT_CLOSED;
	if (c->rbuf_scratch)
		client_rbuf_return(c);
	list_del(&c->flush_link);
	list_del(&c->ready_link);
	list_del(&c->deadline_link);
	if (c->blocked_on) {
		list_del(&c->wait_link);
		c->blocked_on = NULL;
	}
	client_wake_waiters(c);
	/* Release what others can see; memory is freed in client_free(). */
	callreply_client_closed(c);
	monitor_free(&b->monitors, c->monitor);
	c->monitor = NULL;
	if (welcomed)
		presence_client(b, c, false);
	sub_remove_all(c);
	names_release_all(&b->names, &c->names, welcomed ? client_name_released : NULL, c);
	b->ctr.clients--;
	uid_limits_del(&b->uid_limits, c->uid);
	list_del(&c->link);
	list_add_tail(&b->graveyard, &c->link);
}

void client_free(struct client *c)
{
	list_del(&c->link);
	sub_free_all(c);
	outq_deinit(&c->outq);
	lbus_rbuf_deinit(&c->rbuf);
	router_cache_free(c);
	free(c->sender);
	free(c);
}
