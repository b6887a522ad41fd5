/* SPDX-License-Identifier: MIT */
/*
 * Retained store (see retained.h). A message is one small allocation (the
 * struct and its topic) plus a reference to the shared body. Messages are
 * in a hash table by topic and in a list in first-stored order (a
 * replacement keeps its place), which gives wildcard subscribers a stable
 * order and lets retained_deinit free everything without the table.
 *
 * Every size counted is a heap size (memcost.h), and the trie counts its
 * own nodes (trie.bytes): a new topic is indexed first, and taken out
 * again when what its nodes added passes the bound.
 *
 * Wildcard lookups go through a topic trie of their own (trie.h,
 * trie_match_pattern): a pattern visits the nodes it reaches, not every
 * message, and the matches are put back in first-stored order by their
 * sequence number (O(k log k) in the k matches). The trie's root is made
 * by the first message, so retained_init() cannot fail.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fdset.h"
#include "list.h"
#include "topic.h"
#include "retained.h"

void retained_init(struct retained_store *s, size_t max_bytes)
{
	hashtab_init(&s->by_topic);
	s->first = s->last = NULL;
	s->topics.root = NULL;
	s->topics.count = 0;
	s->topics.bytes = 0;
	s->next_seq = 0;
	s->count = 0;
	s->msg_bytes = 0;
	s->bytes = 0;
	s->max_bytes = max_bytes;
}

void retained_deinit(struct retained_store *s)
{
	struct retained_msg *m = s->first;

	if (s->topics.root)
		trie_deinit(&s->topics); /* unlinks the entries: before they are freed */
	while (m) {
		struct retained_msg *next = m->next;
		msgbuf_unref(m->body);
		free(m);
		m = next;
	}
	hashtab_deinit(&s->by_topic);
	retained_init(s, s->max_bytes);
}

void retained_set_max(struct retained_store *s, size_t max_bytes)
{
	s->max_bytes = max_bytes;
}

static struct retained_msg *retained_lookup(const struct retained_store *s, const char *topic, size_t len,
					    uint64_t hash)
{
	for (struct hashtab_node *n = hashtab_first(&s->by_topic, hash); n; n = hashtab_next(n, hash)) {
		struct retained_msg *m = container_of(n, struct retained_msg, node);
		if (m->topic_len == len && memcmp(m->topic, topic, len) == 0)
			return m;
	}
	return NULL;
}

const struct retained_msg *retained_find(const struct retained_store *s, const char *topic, size_t topic_len)
{
	return retained_lookup(s, topic, topic_len, hashtab_hash_bytes(topic, topic_len));
}

static void retained_unlink(struct retained_store *s, struct retained_msg *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		s->first = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		s->last = m->prev;
}

static void retained_recount(struct retained_store *s)
{
	s->bytes = s->msg_bytes + retained_index_bytes(s);
}

void retained_clear(struct retained_store *s, const char *topic, size_t topic_len)
{
	struct retained_msg *m = retained_lookup(s, topic, topic_len, hashtab_hash_bytes(topic, topic_len));

	if (!m)
		return;
	hashtab_remove(&s->by_topic, &m->node);
	trie_remove(&s->topics, &m->entry);
	retained_unlink(s, m);
	s->count--;
	s->msg_bytes -= retained_msg_size(m);
	msgbuf_unref(m->body);
	free(m);
	if (s->count == 0) { /* an empty store takes nothing */
		trie_deinit(&s->topics);
		hashtab_deinit(&s->by_topic);
	}
	retained_recount(s);
}

/* The body to keep: body itself (a new reference) when it has no spare
 * room, else a copy of its exact size that shares its descriptors; NULL on
 * ENOMEM. */
static struct msgbuf *retained_keep_body(struct msgbuf *body)
{
	struct msgbuf *copy;

	if (body->cap == body->len)
		return msgbuf_ref(body);
	copy = msgbuf_new_exact(body->pool, body->len);
	if (!copy)
		return NULL;
	memcpy(copy->data, body->data, body->len);
	copy->len = body->len;
	if (body->fds)
		copy->fds = fdset_ref(body->fds);
	return copy;
}

/* Would the store, changed by `add` bytes and freed of `drop` bytes, pass
 * its bound? */
static bool retained_over(const struct retained_store *s, size_t add, size_t drop)
{
	size_t kept = s->bytes - drop;

	return add > s->max_bytes || kept > s->max_bytes - add;
}

/* Index a new message for topic in the trie, unless the store would then
 * pass its bound (the trie's growth is known only once added): 0, -ENOSPC
 * or -ENOMEM, the store unchanged on failure. `need` is what the message
 * and the bucket array add besides. */
static int retained_index(struct retained_store *s, const char *topic, size_t topic_len, size_t need,
			  struct retained_msg *m)
{
	size_t trie_before = s->topics.bytes;
	int ret;

	if (!s->topics.root && trie_init(&s->topics) < 0)
		return -ENOMEM;
	ret = trie_add(&s->topics, topic, topic_len, &m->entry);
	if (ret == 0 && retained_over(s, need + (s->topics.bytes - trie_before), 0)) {
		trie_remove(&s->topics, &m->entry);
		ret = -ENOSPC;
	}
	if (ret < 0 && s->count == 0)
		trie_deinit(&s->topics);
	return ret;
}

static int retained_add(struct retained_store *s, const char *topic, size_t topic_len, uint64_t hash,
			struct msgbuf *body)
{
	size_t size = memcost(sizeof(struct retained_msg) + topic_len) + retained_body_size(body);
	size_t need = size + hashtab_bytes_after_insert(&s->by_topic) - hashtab_bytes(&s->by_topic);
	struct retained_msg *m;
	int ret;

	if (retained_over(s, need, 0))
		return -ENOSPC;
	m = malloc(sizeof(*m) + topic_len);
	if (!m)
		return -ENOMEM;
	ret = retained_index(s, topic, topic_len, need, m);
	if (ret == 0 && !(m->body = retained_keep_body(body))) {
		trie_remove(&s->topics, &m->entry);
		ret = -ENOMEM;
	}
	if (ret == 0 && (ret = hashtab_insert(&s->by_topic, &m->node, hash)) < 0) {
		trie_remove(&s->topics, &m->entry);
		msgbuf_unref(m->body);
	}
	if (ret < 0) {
		if (s->count == 0)
			trie_deinit(&s->topics);
		free(m);
		return ret;
	}
	memcpy(m->topic, topic, topic_len);
	m->topic_len = topic_len;
	m->seq = s->next_seq++;
	m->prev = s->last;
	m->next = NULL;
	if (s->last)
		s->last->next = m;
	else
		s->first = m;
	s->last = m;
	s->count++;
	s->msg_bytes += size;
	retained_recount(s);
	return 0;
}

int retained_put(struct retained_store *s, const char *topic, size_t topic_len, struct msgbuf *body)
{
	uint64_t hash = hashtab_hash_bytes(topic, topic_len);
	struct retained_msg *old = retained_lookup(s, topic, topic_len, hash);
	struct msgbuf *kept;

	if (!old)
		return retained_add(s, topic, topic_len, hash, body);
	/* Same topic: swap the body in place, the entry keeps its position. */
	if (retained_over(s, retained_body_size(body), retained_body_size(old->body)))
		return -ENOSPC;
	kept = retained_keep_body(body);
	if (!kept)
		return -ENOMEM;
	s->msg_bytes = s->msg_bytes - retained_body_size(old->body) + retained_body_size(kept);
	msgbuf_unref(old->body);
	old->body = kept;
	retained_recount(s);
	return 0;
}

static bool pattern_has_wildcard(const char *pattern, size_t len)
{
	return memchr(pattern, '+', len) || memchr(pattern, '#', len);
}

/* The matches of a wildcard pattern, gathered from the trie. */
struct matches {
	const struct retained_msg **v;
	size_t n, cap;
	bool failed; /* out of memory */
};

static void matches_add(struct trie_entry *e, void *ctx)
{
	struct matches *ms = ctx;

	if (ms->failed)
		return;
	if (ms->n == ms->cap) {
		size_t cap = ms->cap ? ms->cap * 2 : 16;
		const struct retained_msg **v = realloc(ms->v, cap * sizeof(*v));
		if (!v) {
			ms->failed = true;
			return;
		}
		ms->v = v;
		ms->cap = cap;
	}
	ms->v[ms->n++] = container_of(e, struct retained_msg, entry);
}

static int by_seq(const void *a, const void *b)
{
	const struct retained_msg *x = *(const struct retained_msg *const *)a;
	const struct retained_msg *y = *(const struct retained_msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int retained_foreach_wild(const struct retained_store *s, const char *pattern, size_t pattern_len,
				 int (*fn)(const struct retained_msg *m, void *ud), void *ud)
{
	struct matches ms = {0};
	int ret = 0;

	trie_match_pattern(&s->topics, pattern, pattern_len, matches_add, &ms);
	if (ms.failed) {
		free(ms.v);
		return -ENOMEM;
	}
	if (ms.n > 1)
		qsort(ms.v, ms.n, sizeof(*ms.v), by_seq);
	for (size_t i = 0; i < ms.n && ret >= 0; i++)
		ret = fn(ms.v[i], ud);
	free(ms.v);
	return ret < 0 ? ret : (int)ms.n;
}

int retained_foreach_match(const struct retained_store *s, const char *pattern, size_t pattern_len,
			   int (*fn)(const struct retained_msg *m, void *ud), void *ud)
{
	int ret;

	if (s->count == 0)
		return 0;
	if (!pattern_has_wildcard(pattern, pattern_len)) {
		const struct retained_msg *m = retained_find(s, pattern, pattern_len);
		if (!m)
			return 0;
		ret = fn(m, ud);
		return ret < 0 ? ret : 1;
	}
	return retained_foreach_wild(s, pattern, pattern_len, fn, ud);
}
