/* SPDX-License-Identifier: MIT */
/*
 * Pending-call table (see calls.h): a hash table by token, two intrusive
 * lists per peer and a binary min-heap by deadline whose entries know their
 * own index, so any call can be removed from the heap in O(log n).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "calls.h"

#define CALLS_HEAP_MIN 16 /* first size of the deadline heap */

void calls_init(struct calls *c)
{
	hashtab_init(&c->by_token);
	hashtab_init(&c->by_caller_id);
	c->heap = NULL;
	c->heap_len = c->heap_cap = 0;
	c->last_token = 0;
	c->rr = 0;
}

void calls_deinit(struct calls *c)
{
	for (size_t i = 0; i < c->heap_len; i++) {
		list_del(&c->heap[i]->caller_link);
		list_del(&c->heap[i]->responder_link);
		free(c->heap[i]);
	}
	free(c->heap);
	hashtab_deinit(&c->by_token);
	hashtab_deinit(&c->by_caller_id);
	calls_init(c);
}

void calls_peer_init(struct calls_peer *p)
{
	list_init(&p->as_caller);
	list_init(&p->as_responder);
	p->ncalls = 0;
}

/* ---- deadline heap ------------------------------------------------------- */

static void heap_set(struct calls *c, size_t i, struct call *call)
{
	c->heap[i] = call;
	call->heap_idx = i;
}

static void heap_up(struct calls *c, size_t i)
{
	struct call *call = c->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (c->heap[parent]->deadline_ms <= call->deadline_ms)
			break;
		heap_set(c, i, c->heap[parent]);
		i = parent;
	}
	heap_set(c, i, call);
}

static void heap_down(struct calls *c, size_t i)
{
	struct call *call = c->heap[i];

	for (;;) {
		size_t kid = 2 * i + 1;
		if (kid >= c->heap_len)
			break;
		if (kid + 1 < c->heap_len && c->heap[kid + 1]->deadline_ms < c->heap[kid]->deadline_ms)
			kid++;
		if (call->deadline_ms <= c->heap[kid]->deadline_ms)
			break;
		heap_set(c, i, c->heap[kid]);
		i = kid;
	}
	heap_set(c, i, call);
}

static int heap_push(struct calls *c, struct call *call)
{
	if (c->heap_len == c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap * 2 : CALLS_HEAP_MIN;
		struct call **heap = realloc(c->heap, cap * sizeof(*heap));
		if (!heap)
			return -ENOMEM;
		c->heap = heap;
		c->heap_cap = cap;
	}
	c->heap[c->heap_len++] = call;
	heap_up(c, c->heap_len - 1);
	return 0;
}

static void heap_remove(struct calls *c, struct call *call)
{
	size_t i = call->heap_idx;
	struct call *last = c->heap[--c->heap_len];

	if (last == call)
		return;
	heap_set(c, i, last);
	if (i > 0 && c->heap[(i - 1) / 2]->deadline_ms > last->deadline_ms)
		heap_up(c, i);
	else
		heap_down(c, i);
}

/* ---- the table ------------------------------------------------------------ */

static uint64_t caller_id_hash(const struct calls_peer *caller, uint64_t call_id)
{
	return hashtab_hash_u64(call_id ^ hashtab_hash_u64((uint64_t)(uintptr_t)caller));
}

int calls_add(struct calls *c, struct calls_peer *caller, uint64_t call_id, struct calls_peer *responder,
	      uint64_t deadline_ms, struct call **out)
{
	struct call *call = calloc(1, sizeof(*call));
	int ret;

	if (!call)
		return -ENOMEM;
	call->token = c->last_token + 1;
	call->caller = caller;
	call->responder = responder;
	call->call_id = call_id;
	call->deadline_ms = deadline_ms;
	ret = heap_push(c, call);
	if (ret < 0)
		goto fail;
	ret = hashtab_insert(&c->by_token, &call->node, hashtab_hash_u64(call->token));
	if (ret < 0) {
		heap_remove(c, call);
		goto fail;
	}
	ret = hashtab_insert(&c->by_caller_id, &call->id_node, caller_id_hash(caller, call_id));
	if (ret < 0) {
		hashtab_remove(&c->by_token, &call->node);
		heap_remove(c, call);
		goto fail;
	}
	caller->ncalls++;
	c->last_token = call->token;
	list_add_tail(&caller->as_caller, &call->caller_link);
	list_add_tail(&responder->as_responder, &call->responder_link);
	if (out)
		*out = call;
	return 0;
fail:
	free(call);
	return ret;
}

struct call *calls_find(const struct calls *c, uint64_t token)
{
	uint64_t hash = hashtab_hash_u64(token);

	for (struct hashtab_node *n = hashtab_first(&c->by_token, hash); n; n = hashtab_next(n, hash)) {
		struct call *call = container_of(n, struct call, node);
		if (call->token == token)
			return call;
	}
	return NULL;
}

struct call *calls_find_id(const struct calls *c, const struct calls_peer *caller, uint64_t call_id)
{
	uint64_t hash = caller_id_hash(caller, call_id);

	for (struct hashtab_node *n = hashtab_first(&c->by_caller_id, hash); n; n = hashtab_next(n, hash)) {
		struct call *call = container_of(n, struct call, id_node);
		if (call->caller == caller && call->call_id == call_id)
			return call;
	}
	return NULL;
}

void calls_remove(struct calls *c, struct call *call)
{
	hashtab_remove(&c->by_token, &call->node);
	hashtab_remove(&c->by_caller_id, &call->id_node);
	call->caller->ncalls--;
	heap_remove(c, call);
	list_del(&call->caller_link);
	list_del(&call->responder_link);
	free(call);
}

void calls_drop_caller(struct calls *c, struct calls_peer *p)
{
	while (!list_empty(&p->as_caller))
		calls_remove(c, container_of(p->as_caller.next, struct call, caller_link));
}

void calls_drop_responder(struct calls *c, struct calls_peer *p, calls_fn fn, void *ud)
{
	while (!list_empty(&p->as_responder)) {
		struct call *call = container_of(p->as_responder.next, struct call, responder_link);
		if (fn)
			fn(call, ud);
		calls_remove(c, call);
	}
}

uint64_t calls_next_deadline(const struct calls *c)
{
	return c->heap_len ? c->heap[0]->deadline_ms : UINT64_MAX;
}

size_t calls_expire(struct calls *c, uint64_t now_ms, calls_fn fn, void *ud)
{
	size_t n = 0;

	while (c->heap_len && c->heap[0]->deadline_ms <= now_ms) {
		struct call *call = c->heap[0];
		if (fn)
			fn(call, ud);
		calls_remove(c, call);
		n++;
	}
	return n;
}

size_t calls_pick(struct calls *c, size_t n)
{
	return (size_t)(c->rr++ % n);
}
