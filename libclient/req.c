/* SPDX-License-Identifier: MIT */
/*
 * Requests that wait for an answer, matched by Frame.req_id.
 *
 * A blocking function puts a struct lbus_req on its own stack, registers it
 * (lbus__req_begin gives it a fresh req_id), sends its frame with that
 * req_id and waits in the dispatch core (lbus__io_wait) until the answer
 * handler marks it done: Ok, Error, ClientList or Stats with the same req_id,
 * or Pong with the same token for lbus_sync(). Nested blocking calls from
 * callbacks simply register more requests; the list is short.
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

uint32_t lbus__req_id(struct lbus *bus)
{
	if (++bus->next_req_id == 0)
		bus->next_req_id = 1;
	return bus->next_req_id;
}

void lbus__req_begin(struct lbus *bus, struct lbus_req *req, uint32_t want)
{
	req->id = lbus__req_id(bus);
	req->want = want;
	req->next = bus->reqs;
	bus->reqs = req;
}

static void req_unlink(struct lbus *bus, struct lbus_req *req)
{
	for (struct lbus_req **p = &bus->reqs; *p; p = &(*p)->next) {
		if (*p == req) {
			*p = req->next;
			return;
		}
	}
}

/* The waiting request with this id expecting an answer of kind want. */
static struct lbus_req *req_find(struct lbus *bus, uint32_t id, uint32_t want)
{
	for (struct lbus_req *r = bus->reqs; r; r = r->next)
		if (r->id == id && !r->done && (!want || r->want == want))
			return r;
	return NULL;
}

int lbus__req_wait(struct lbus *bus, struct lbus_req *req, int64_t deadline)
{
	int r = lbus__io_wait(bus, &req->done, deadline);
	req_unlink(bus, req);
	if (r == 0)
		r = req->err;
	if (r < 0) {
		free(req->body);
		req->body = NULL;
	}
	return r;
}

int lbus__req_call(struct lbus *bus, struct lbus_req *req, uint32_t want, Lbus__Frame *f, int64_t deadline)
{
	lbus__req_begin(bus, req, want);
	f->req_id = req->id;
	int r = lbus__out_frame(bus, f);
	if (r < 0) {
		req_unlink(bus, req);
		return r;
	}
	return lbus__req_wait(bus, req, deadline);
}

int lbus__req_simple(struct lbus *bus, Lbus__Frame *f, uint64_t *owner)
{
	struct lbus_req req = { 0 };
	int r = lbus__req_call(bus, &req, LBUS_K_OK, f, -1);
	if (r == 0 && owner)
		*owner = req.owner;
	return r;
}

void lbus__req_fail_all(struct lbus *bus, int err)
{
	for (struct lbus_req *r = bus->reqs; r; r = r->next) {
		if (!r->done) {
			r->done = true;
			r->err = err;
		}
	}
}

void lbus__async_error(struct lbus *bus, int err, const char *what)
{
	char *copy = what ? strdup(what) : NULL;
	bus->n_errors++;
	bus->last_err = err;
	free(bus->last_reason);
	bus->last_reason = copy;
	if (bus->err_fn)
		bus->err_fn(bus, err, what ? what : "", bus->err_ud);
}

int lbus__on_ok(struct lbus *bus, const struct lbus_wire_frame *f)
{
	struct lbus_wire_ok ok;
	if (lbus_wire_ok_decode(f->body, f->body_len, &ok) < 0)
		return -EPROTO;
	struct lbus_req *req = f->req_id ? req_find(bus, f->req_id, LBUS_K_OK) : NULL;
	if (req) {
		req->owner = ok.owner;
		req->done = true;
	}
	return 0;
}

int lbus__on_error(struct lbus *bus, const struct lbus_wire_frame *f)
{
	Lbus__Error *e = lbus__error__unpack(NULL, f->body_len, f->body);
	if (!e)
		return -EPROTO;
	int err = lbus_errcode_to_errno(e->code);
	if (!err)
		err = -EIO;
	struct lbus_req *req = f->req_id ? req_find(bus, f->req_id, 0) : NULL;
	if (req) {
		req->err = err;
		req->done = true;
	} else if (!(e->request == LBUS_K_CALL && lbus__calls_error(bus, f->req_id, err))) {
		lbus__async_error(bus, err, e->reason);
	}
	if (e->fatal)
		bus->dead = err;
	lbus__error__free_unpacked(e, NULL);
	return 0;
}

int lbus__on_ping(struct lbus *bus, const struct lbus_wire_frame *f)
{
	Lbus__Pong pong = LBUS__PONG__INIT;
	Lbus__Frame out = LBUS__FRAME__INIT;
	if (lbus_wire_ping_decode(f->body, f->body_len, &pong.token) < 0)
		return -EPROTO;
	out.kind_case = LBUS__FRAME__KIND_PONG;
	out.pong = &pong;
	int r = lbus__out_frame(bus, &out);
	if (r < 0)
		lbus__io_fail(bus, r);
	return 0;
}

int lbus__on_pong(struct lbus *bus, const struct lbus_wire_frame *f)
{
	uint64_t token;
	if (lbus_wire_pong_decode(f->body, f->body_len, &token) < 0)
		return -EPROTO;
	struct lbus_req *req = token <= UINT32_MAX ? req_find(bus, (uint32_t)token, LBUS_K_PONG) : NULL;
	if (req)
		req->done = true;
	return 0;
}

int lbus__on_answer(struct lbus *bus, const struct lbus_wire_frame *f)
{
	struct lbus_req *req = f->req_id ? req_find(bus, f->req_id, f->kind) : NULL;
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
	int64_t deadline = lbus__deadline(timeout_ms);
	struct lbus_req req = { 0 };
	Lbus__Ping ping = LBUS__PING__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	lbus__req_begin(bus, &req, LBUS_K_PONG);
	ping.token = req.id;
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &ping;
	int r = lbus__out_frame(bus, &f);
	if (r < 0) {
		req_unlink(bus, &req);
		return r;
	}
	return lbus__req_wait(bus, &req, deadline);
}
