/* SPDX-License-Identifier: MIT */
/*
 * Requests that wait for an answer, matched by Frame.req_id.
 *
 * A blocking function puts a struct req on its own stack, registers it
 * (req_begin gives it a fresh req_id), sends its frame with that
 * req_id and waits in the dispatch core (io_wait) until the answer
 * handler marks it done: Ok, Error, ClientList or Stats with the same req_id,
 * or Pong with the same token for lbus_sync(). Nested blocking calls from
 * callbacks simply register more requests; the list is short.
 *
 * An asynchronous request (lbus_subscribe_async(), lbus_name_take_async(),
 * lbus_send_async()) is the same struct allocated, with the user's
 * completion and a deadline (the connection's timeout): the answer, the
 * deadline (req_expire(), from the dispatch core) or the loss of the
 * connection unlinks it, frees it and runs the completion once.
 *
 * An Error that answers no waiting request is asynchronous (a publish, a send
 * with LBUS_NOWAIT, a reply): it goes to the lbus_on_error() handler and is
 * kept for lbus_last_error(). A fatal Error also breaks the connection with
 * its errno (e.g. -EPROTONOSUPPORT for a version mismatch).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client-internal.h"
#include "errcode.h"
#include "wire.h"

uint32_t req_next_id(struct lbus *bus)
{
	if (++bus->next_req_id == 0)
		bus->next_req_id = 1;
	return bus->next_req_id;
}

void req_begin(struct lbus *bus, struct req *req, uint32_t want)
{
	req->id = req_next_id(bus);
	req->want = want;
	req->next = bus->reqs;
	bus->reqs = req;
}

static void req_unlink(struct lbus *bus, struct req *req)
{
	for (struct req **p = &bus->reqs; *p; p = &(*p)->next) {
		if (*p == req) {
			*p = req->next;
			return;
		}
	}
}

/* The waiting request with this id expecting an answer of kind want. */
static struct req *req_find(struct lbus *bus, uint32_t id, uint32_t want)
{
	for (struct req *r = bus->reqs; r; r = r->next)
		if (r->id == id && !r->done && (!want || r->want == want))
			return r;
	return NULL;
}

int req_wait(struct lbus *bus, struct req *req, int64_t deadline)
{
	int r = io_wait(bus, &req->done, deadline);
	req_unlink(bus, req);
	if (r == 0)
		r = req->err;
	if (r < 0) {
		free(req->body);
		req->body = NULL;
	}
	return r;
}

int req_call(struct lbus *bus, struct req *req, uint32_t want, Lbus__Frame *f, int64_t deadline)
{
	req_begin(bus, req, want);
	f->req_id = req->id;
	int r = io_out_frame(bus, f);
	if (r < 0) {
		req_unlink(bus, req);
		return r;
	}
	return req_wait(bus, req, deadline);
}

int req_simple(struct lbus *bus, Lbus__Frame *f, uint64_t *owner)
{
	struct req req = {0};
	int r = req_call(bus, &req, LBUS_K_OK, f, io_deadline(bus->timeout_ms));
	if (r == 0 && owner)
		*owner = req.owner;
	return r;
}

/* An asynchronous request is answered (or failed): unlink, free, complete. */
static void req_async_complete(struct lbus *bus, struct req *req, int err)
{
	lbus_done_fn fn = req->fn;
	void *userdata = req->userdata;
	req_unlink(bus, req);
	if (err < 0 && req->sub_id)
		sub_forget(bus, req->sub_id);
	free(req);
	fn(bus, err, userdata);
}

/* The answer for req arrived (err 0 or the Error frame's errno). */
static void req_answered(struct lbus *bus, struct req *req, int err)
{
	if (req->fn) {
		req_async_complete(bus, req, err);
		return;
	}
	req->err = err;
	req->done = true;
}

int req_async(struct lbus *bus, Lbus__Frame *f, uint64_t sub_id, lbus_done_fn fn, void *userdata)
{
	if (bus->dead)
		return bus->dead;
	struct req *req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->fn = fn;
	req->userdata = userdata;
	req->sub_id = sub_id;
	req->deadline = io_deadline(bus->timeout_ms);
	req_begin(bus, req, LBUS_K_OK);
	f->req_id = req->id;
	int r = io_out_frame(bus, f);
	if (r < 0 && r != -ETIMEDOUT) { /* on -ETIMEDOUT it stays buffered */
		req_unlink(bus, req);
		free(req);
	}
	return r == -ETIMEDOUT ? 0 : r;
}

int req_timeout(const struct lbus *bus, int64_t now)
{
	int64_t first = -1;
	for (const struct req *r = bus->reqs; r; r = r->next)
		if (r->fn && r->deadline >= 0 && (first < 0 || r->deadline < first))
			first = r->deadline;
	if (first < 0)
		return -1;
	return first <= now ? 0 : first - now > INT32_MAX ? INT32_MAX : (int)(first - now);
}

/* The first asynchronous request whose deadline passed, or NULL. */
static struct req *req_expired(const struct lbus *bus, int64_t now)
{
	for (struct req *r = bus->reqs; r; r = r->next)
		if (r->fn && r->deadline >= 0 && r->deadline <= now)
			return r;
	return NULL;
}

void req_expire(struct lbus *bus)
{
	if (!bus->reqs)
		return;
	int64_t now = io_now_ms();
	struct req *r;
	while ((r = req_expired(bus, now)))
		req_async_complete(bus, r, -ETIMEDOUT);
}

/* The first asynchronous request, or NULL. */
static struct req *req_first_async(const struct lbus *bus)
{
	for (struct req *r = bus->reqs; r; r = r->next)
		if (r->fn)
			return r;
	return NULL;
}

void req_fail_all(struct lbus *bus, int err)
{
	struct req *r;
	for (r = bus->reqs; r; r = r->next) {
		if (!r->fn && !r->done) {
			r->done = true;
			r->err = err;
		}
	}
	while ((r = req_first_async(bus)))
		req_async_complete(bus, r, err);
}

void req_async_error(struct lbus *bus, int err, const char *what)
{
	char *copy = what ? strdup(what) : NULL;
	bus->n_errors++;
	bus->last_err = err;
	free(bus->last_reason);
	bus->last_reason = copy;
	if (bus->err_fn)
		bus->err_fn(bus, err, what ? what : "", bus->err_ud);
}

int req_on_ok(struct lbus *bus, const struct lbus_wire_frame *f)
{
	struct lbus_wire_ok ok;
	if (lbus_wire_ok_decode(f->body, f->body_len, &ok) < 0)
		return -EPROTO;
	struct req *req = f->req_id ? req_find(bus, f->req_id, LBUS_K_OK) : NULL;
	if (req) {
		req->owner = ok.owner;
		req_answered(bus, req, 0);
	}
	return 0;
}

/* Keep the reason of an Error that answered a waiting request or call. */
static void req_note_reason(struct lbus *bus, const char *reason)
{
	char *copy = reason && *reason ? strdup(reason) : NULL;

	free(bus->request_reason);
	bus->request_reason = copy;
}

int req_on_error(struct lbus *bus, const struct lbus_wire_frame *f)
{
	Lbus__Error *e = lbus__error__unpack(NULL, f->body_len, f->body);
	if (!e)
		return -EPROTO;
	int err = lbus_errcode_to_errno(e->code);
	if (!err)
		err = -EIO;
	struct req *req = f->req_id ? req_find(bus, f->req_id, 0) : NULL;
	if (req) {
		req_note_reason(bus, e->reason);
		req_answered(bus, req, err);
	} else if (e->request == LBUS_K_CALL) {
		req_note_reason(bus, e->reason);
		calls_error(bus, f->req_id, err); /* none: cancelled or timed out */
	} else
		req_async_error(bus, err, e->reason);
	if (e->fatal)
		bus->dead = err;
	lbus__error__free_unpacked(e, NULL);
	return 0;
}

int req_on_ping(struct lbus *bus, const struct lbus_wire_frame *f)
{
	Lbus__Pong pong = LBUS__PONG__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;
	if (lbus_wire_ping_decode(f->body, f->body_len, &pong.token) < 0)
		return -EPROTO;
	out.kind_case = LBUS__FRAME__KIND_PONG;
	out.pong = &pong;
	int r = io_out_frame(bus, &out);
	if (r < 0)
		io_fail(bus, r);
	return 0;
}

int req_on_pong(struct lbus *bus, const struct lbus_wire_frame *f)
{
	uint64_t token;
	if (lbus_wire_pong_decode(f->body, f->body_len, &token) < 0)
		return -EPROTO;
	struct req *req = token <= UINT32_MAX ? req_find(bus, (uint32_t)token, LBUS_K_PONG) : NULL;
	if (req)
		req->done = true;
	return 0;
}

int req_on_answer(struct lbus *bus, const struct lbus_wire_frame *f)
{
	struct req *req = f->req_id ? req_find(bus, f->req_id, f->kind) : NULL;
	if (!req)
		return 0;
	req->body = malloc(f->body_len ? f->body_len : 1);
	if (!req->body) {
		req->err = -ENOMEM;
	} else {
		if (f->body_len)
			memcpy(req->body, f->body, f->body_len);
		req->body_len = f->body_len;
	}
	req->done = true;
	return 0;
}

int lbus_sync(lbus *bus, int timeout_ms)
{
	int64_t deadline = io_deadline(timeout_ms);
	if (bus->dead)
		return bus->dead;
	struct req req = {0};
	Lbus__Ping ping = LBUS__PING__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	req_begin(bus, &req, LBUS_K_PONG);
	ping.token = req.id;
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &ping;
	int r = io_out_frame(bus, &f);
	if (r < 0) {
		req_unlink(bus, &req);
		return r;
	}
	return req_wait(bus, &req, deadline);
}
