/* SPDX-License-Identifier: MIT */
/*
 * Calls (request/reply).
 *
 * Every call, asynchronous or blocking, is a struct call with a
 * caller-chosen call_id, kept in a hash map (to match CallResult frames) and
 * in a binary min-heap ordered by deadline (so lbus_timeout() is O(1) and
 * expiry O(log n) per call). The dispatch core expires calls whose deadline
 * passed with -ETIMEDOUT; a lost connection completes all of them with
 * -ECONNRESET. Each call's callback runs exactly once, unless
 * lbus_call_cancel() removes the call first (a late CallResult or Error for
 * it then finds nothing and is dropped); the call is removed from both
 * tables before its callback runs, so callbacks may start calls.
 *
 * Timeouts (lbus.h): < 0 is no limit, a deadline of INT64_MAX here and
 * CALL_WIRE_NO_LIMIT in Call.timeout_ms; 0 fails at once without sending
 * (Call.timeout_ms 0 means the broker's default on the wire, so the library
 * never sends it); > 0 is sent as it is, so the library, the broker and the
 * responder (msg->deadline_ms) agree.
 *
 * lbus_call() is lbus_call_async() with an internal callback that copies the
 * reply, plus a wait in the dispatch core until that callback ran.
 *
 * The Call frame also carries a req_id: if the broker refuses it with an
 * Error frame instead of a CallResult, calls_error() completes it.
 *
 * lbus_reply() encodes Reply{call_token, payload} into the output buffer;
 * lbus_reply_error() Reply{call_token, error: ERR_RESPONDER_FAILED,
 * reason}, which the caller gets as -EREMOTEIO with the reason in
 * lbus_reply.error. call_reply_refuse() answers a call that reached this
 * client without a handler for it with ERR_NO_RESPONDERS (-ESRCH for the
 * caller), so the caller fails at once instead of timing out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-internal.h"
#include "errcode.h"
#include "lbus-limits.h"
#include "topic.h"

/* Call.timeout_ms for a call without limit: the largest value, about 49.7
 * days (proto/PROTOCOL.md). */
#define CALL_WIRE_NO_LIMIT UINT32_MAX
/* Deadline of a call without limit. */
#define CALL_NO_DEADLINE INT64_MAX
/* First size of the deadline heap (doubled as it fills). */
#define CALL_HEAP_MIN_CAP 16
/* Room for the words around the target in a refusal's reason. */
#define CALL_REFUSE_TEXT 64

struct call {
	uint64_t id;
	uint32_t req_id;
	int64_t deadline;
	size_t heap_idx;
	lbus_reply_fn fn;
	void *userdata;
};

/* ---- deadline heap ---------------------------------------------------------- */

static void heap_set(struct lbus *bus, size_t i, struct call *c)
{
	bus->heap[i] = c;
	c->heap_idx = i;
}

static void heap_up(struct lbus *bus, size_t i)
{
	struct call *c = bus->heap[i];
	while (i > 0 && bus->heap[(i - 1) / 2]->deadline > c->deadline) {
		heap_set(bus, i, bus->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(bus, i, c);
}

static void heap_down(struct lbus *bus, size_t i)
{
	struct call *c = bus->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= bus->heap_len)
			break;
		if (child + 1 < bus->heap_len && bus->heap[child + 1]->deadline < bus->heap[child]->deadline)
			child++;
		if (bus->heap[child]->deadline >= c->deadline)
			break;
		heap_set(bus, i, bus->heap[child]);
		i = child;
	}
	heap_set(bus, i, c);
}

static int heap_push(struct lbus *bus, struct call *c)
{
	if (bus->heap_len == bus->heap_cap) {
		size_t cap = bus->heap_cap ? bus->heap_cap * 2 : CALL_HEAP_MIN_CAP;
		struct call **h = realloc(bus->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		bus->heap = h;
		bus->heap_cap = cap;
	}
	heap_set(bus, bus->heap_len++, c);
	heap_up(bus, c->heap_idx);
	return 0;
}

static void heap_remove(struct lbus *bus, struct call *c)
{
	size_t i = c->heap_idx;
	struct call *last = bus->heap[--bus->heap_len];
	if (last == c)
		return;
	heap_set(bus, i, last);
	heap_down(bus, i);
	heap_up(bus, last->heap_idx);
}

/* ---- completion ------------------------------------------------------------- */

/* Remove c from both tables, free it and run its callback. */
static void call_complete(struct lbus *bus, struct call *c, int err, const struct lbus_reply *reply)
{
	lbus_reply_fn fn = c->fn;
	void *userdata = c->userdata;
	idmap_del(&bus->calls, c->id);
	heap_remove(bus, c);
	free(c);
	fn(bus, err, err && err != -EREMOTEIO ? NULL : reply, userdata);
}

int calls_timeout(const struct lbus *bus, int64_t now)
{
	if (!bus->heap_len || bus->heap[0]->deadline == CALL_NO_DEADLINE)
		return -1;
	int64_t left = bus->heap[0]->deadline - now;
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

void calls_expire(struct lbus *bus)
{
	if (!bus->heap_len)
		return;
	int64_t now = io_now_ms();
	while (bus->heap_len && bus->heap[0]->deadline <= now)
		call_complete(bus, bus->heap[0], -ETIMEDOUT, NULL);
}

void calls_fail_all(struct lbus *bus, int err)
{
	while (bus->heap_len)
		call_complete(bus, bus->heap[0], err, NULL);
}

bool calls_error(struct lbus *bus, uint32_t req_id, int err)
{
	if (!req_id)
		return false;
	for (size_t i = 0; i < bus->heap_len; i++) {
		if (bus->heap[i]->req_id == req_id) {
			call_complete(bus, bus->heap[i], err, NULL);
			return true;
		}
	}
	return false;
}

void calls_deinit(struct lbus *bus)
{
	for (size_t i = 0; i < bus->heap_len; i++)
		free(bus->heap[i]);
	free(bus->heap);
	bus->heap = NULL;
	bus->heap_len = bus->heap_cap = 0;
	idmap_deinit(&bus->calls);
}

int call_on_result(struct lbus *bus, const struct lbus_wire_frame *f)
{
	Lbus__CallResult *res = lbus__call_result__unpack(NULL, f->body_len, f->body);
	if (!res)
		return -EPROTO;
	struct call *c = idmap_get(&bus->calls, res->call_id);
	if (c) {
		const Lbus__Sender *s = res->sender;
		struct lbus_reply reply = {
		    .data = res->payload.data ? (const void *)res->payload.data : "",
		    .len = res->payload.len,
		    .sender =
			{
			    .id = s ? s->id : 0,
			    .name = s && s->name ? s->name : "",
			    .pid = s ? (pid_t)s->pid : 0,
			    .uid = s ? (uid_t)s->uid : 0,
			    .gid = s ? (gid_t)s->gid : 0,
			},
		};
		if (bus->frame_fds && bus->frame_fds->n) {
			reply.fds = bus->frame_fds->fds;
			reply.nfds = bus->frame_fds->n;
		}
		int err = lbus_errcode_to_errno(res->error);
		bool memfd = res->payload_memfd && !err;
		if (memfd && sub_memfd_payload(bus, &reply.data, &reply.len, &reply.fds, &reply.nfds) < 0) {
			err = -EBADMSG;
			memfd = false;
		}
		if (err == -EREMOTEIO)
			reply.error = res->reason && *res->reason ? res->reason : lbus_strerror(err);
		call_complete(bus, c, err, &reply);
		if (memfd)
			memfd_unmap(reply.data, reply.len);
	}
	lbus__call_result__free_unpacked(res, NULL);
	return c ? 1 : 0;
}

/* ---- starting calls ------------------------------------------------------------ */

static int call_target_check(const char *target)
{
	if (!target)
		return -EINVAL;
	size_t len = strlen(target);
	if (lbus_name_validate(target, len) == 0 || lbus_topic_validate(target, len) == 0)
		return 0;
	return -EINVAL;
}

static int call_send(struct lbus *bus, const struct call *c, const char *target, const void *data, size_t len,
		     int timeout_ms)
{
	Lbus__Call call = LBUS__CALL__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	call.target = (char *)target;
	call.payload.data = (uint8_t *)data;
	call.payload.len = len;
	call.call_id = c->id;
	call.timeout_ms = timeout_ms < 0 ? CALL_WIRE_NO_LIMIT : (uint32_t)timeout_ms;
	f.kind_case = LBUS__FRAME__KIND_CALL;
	f.call = &call;
	f.req_id = c->req_id;
	int r = io_out_frame(bus, &f);
	return r == -ETIMEDOUT ? 0 : r; /* still buffered: the deadline applies */
}

int lbus_call_async(lbus *bus, const char *target, const void *data, size_t len, int timeout_ms,
		    lbus_reply_fn fn, void *userdata, uint64_t *call_id)
{
	if (call_target_check(target) < 0 || !fn || (!data && len))
		return -EINVAL;
	if (bus->dead)
		return bus->dead;
	if (timeout_ms == 0)
		return -ETIMEDOUT;
	struct call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->id = ++bus->next_call_id;
	c->req_id = req_next_id(bus);
	c->deadline = timeout_ms < 0 ? CALL_NO_DEADLINE : io_now_ms() + timeout_ms;
	c->fn = fn;
	c->userdata = userdata;
	int r = idmap_put(&bus->calls, c->id, c);
	if (r == 0 && (r = heap_push(bus, c)) < 0)
		idmap_del(&bus->calls, c->id);
	if (r == 0 && (r = call_send(bus, c, target, data, len, timeout_ms)) < 0) {
		idmap_del(&bus->calls, c->id);
		heap_remove(bus, c);
	}
	if (r < 0) {
		free(c);
		return r;
	}
	if (call_id)
		*call_id = c->id;
	return 0;
}

int lbus_call_cancel(lbus *bus, uint64_t call_id)
{
	struct call *c = idmap_del(&bus->calls, call_id);
	if (!c)
		return -ENOENT;
	heap_remove(bus, c);
	free(c);
	return 0;
}

/* ---- blocking calls ------------------------------------------------------------ */

struct call_wait {
	bool done;
	int err;
	struct lbus_reply *reply;
};

/* A reply and its bytes in one allocation (freed by lbus_reply_free). */
static struct lbus_reply *reply_copy(const struct lbus_reply *r)
{
	size_t nlen = strlen(r->sender.name), elen = r->error ? strlen(r->error) + 1 : 0;
	size_t fdlen = r->nfds * sizeof(int);
	struct lbus_reply *c = malloc(sizeof(*c) + fdlen + r->len + nlen + 1 + elen);
	if (!c)
		return NULL;
	int *fds = (int *)(void *)(c + 1); /* first: aligned for int */
	uint8_t *data = (uint8_t *)fds + fdlen;
	for (size_t i = 0; i < r->nfds; i++)
		fds[i] = lbus_reply_take_fd(r, i); /* moved into the copy */
	char *name = (char *)data + r->len;
	if (r->len)
		memcpy(data, r->data, r->len);
	memcpy(name, r->sender.name, nlen + 1);
	*c = *r;
	c->fds = r->nfds ? fds : NULL;
	c->data = data;
	c->sender.name = name;
	if (r->error)
		c->error = memcpy(name + nlen + 1, r->error, elen);
	return c;
}

static void call_wait_done(lbus *bus, int err, const struct lbus_reply *reply, void *userdata)
{
	struct call_wait *w = userdata;
	w->done = true;
	w->err = err;
	if (reply && !(w->reply = reply_copy(reply)))
		w->err = -ENOMEM;
}

int lbus_call(lbus *bus, const char *target, const void *data, size_t len, int timeout_ms,
	      struct lbus_reply **reply)
{
	struct call_wait w = {0};
	uint64_t id;
	if (!reply)
		return -EINVAL;
	*reply = NULL;
	int r = lbus_call_async(bus, target, data, len, timeout_ms, call_wait_done, &w, &id);
	if (r < 0)
		return r;
	r = io_wait(bus, &w.done, -1);
	if (!w.done) {
		/* The wait failed without completing the call: forget it, since
		 * its callback points at this stack frame. */
		lbus_call_cancel(bus, id);
		return r < 0 ? r : -EIO;
	}
	*reply = w.reply;
	return w.err;
}

void lbus_reply_free(struct lbus_reply *reply)
{
	if (reply)
		for (size_t i = 0; i < reply->nfds; i++) {
			int fd = lbus_reply_take_fd(reply, i);
			if (fd >= 0)
				close(fd);
		}
	free(reply);
}

/* Reply{call_token, payload} or, with code != ERR_NONE, Reply{call_token,
 * error, reason}, into the output buffer. */
static int reply_send(struct lbus *bus, uint64_t token, const void *data, size_t len, uint32_t code,
		      const char *reason)
{
	if (!token || (!data && len))
		return -EINVAL;
	Lbus__Reply rep = LBUS__REPLY__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	rep.call_token = token;
	rep.payload.data = (uint8_t *)data;
	rep.payload.len = len;
	rep.error = (Lbus__ErrorCode)code;
	rep.reason = (char *)(reason ? reason : "");
	f.kind_case = LBUS__FRAME__KIND_REPLY;
	f.reply = &rep;
	return io_out_frame(bus, &f);
}

int lbus_reply_fds(lbus *bus, uint64_t reply_token, const void *data, size_t len, const int *fds, size_t nfds)
{
	int r = io_attach_prepare(bus, fds, nfds);
	if (r < 0)
		return r;
	r = reply_send(bus, reply_token, data, len, LBUS__ERROR_CODE__ERR_NONE, NULL);
	io_attach_cancel(bus); /* left over when the frame was not queued */
	return r;
}

int lbus_call_fds(lbus *bus, const char *target, const void *data, size_t len, int timeout_ms, const int *fds,
		  size_t nfds, struct lbus_reply **reply)
{
	if (!reply)
		return -EINVAL;
	*reply = NULL;
	int r = io_attach_prepare(bus, fds, nfds);
	if (r < 0)
		return r;
	r = lbus_call(bus, target, data, len, timeout_ms, reply);
	io_attach_cancel(bus);
	return r;
}

int lbus_reply(lbus *bus, uint64_t reply_token, const void *data, size_t len)
{
	return reply_send(bus, reply_token, data, len, LBUS__ERROR_CODE__ERR_NONE, NULL);
}

int lbus_reply_error(lbus *bus, uint64_t reply_token, const char *reason)
{
	return reply_send(bus, reply_token, NULL, 0, LBUS__ERROR_CODE__ERR_RESPONDER_FAILED, reason);
}

void call_reply_refuse(struct lbus *bus, const struct lbus_msg *msg)
{
	char reason[LBUS_MAX_TOPIC_LEN + CALL_REFUSE_TEXT];
	if (msg->sub_id)
		snprintf(reason, sizeof(reason), "the subscriber of %s does not answer calls", msg->topic);
	else
		snprintf(reason, sizeof(reason), "the owner of %s does not answer calls", msg->topic);
	reply_send(bus, msg->reply_token, NULL, 0, LBUS__ERROR_CODE__ERR_NO_RESPONDERS, reason);
}
