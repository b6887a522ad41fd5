/* SPDX-License-Identifier: MIT */
/*
 * Retained store (see retained.h). A message is one small allocation (the
 * struct and its topic) plus a reference to the shared body. Messages are
 * in a hash table by topic and in a list in first-stored order (a
 * replacement keeps its place), which gives wildcard subscribers a stable
 * order and lets retained_deinit free everything without the table.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "topic.h"
#include "retained.h"

void retained_init(struct retained_store *s, size_t max_bytes)
{
	hashtab_init(&s->by_topic);
	s->first = s->last = NULL;
	s->count = 0;
	s->bytes = 0;
	s->max_bytes = max_bytes;
}

void retained_deinit(struct retained_store *s)
{
	struct retained_msg *m = s->first;

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

void retained_clear(struct retained_store *s, const char *topic, size_t topic_len)
{
	struct retained_msg *m = retained_lookup(s, topic, topic_len, hashtab_hash_bytes(topic, topic_len));

	if (!m)
		return;
	hashtab_remove(&s->by_topic, &m->node);
	retained_unlink(s, m);
	s->count--;
	s->bytes -= retained_msg_size(m);
	msgbuf_unref(m->body);
	free(m);
}

static int retained_add(struct retained_store *s, const char *topic, size_t topic_len, uint64_t hash,
			struct msgbuf *body)
{
	struct retained_msg *m = malloc(sizeof(*m) + topic_len);
	int ret;

	if (!m)
		return -ENOMEM;
	ret = hashtab_insert(&s->by_topic, &m->node, hash);
	if (ret < 0) {
		free(m);
		return ret;
	}
	memcpy(m->topic, topic, topic_len);
	m->topic_len = topic_len;
	m->body = msgbuf_ref(body);
	m->prev = s->last;
	m->next = NULL;
	if (s->last)
		s->last->next = m;
	else
		s->first = m;
	s->last = m;
	s->count++;
	s->bytes += retained_msg_size(m);
	return 0;
}

int retained_put(struct retained_store *s, const char *topic, size_t topic_len, struct msgbuf *body)
{
	uint64_t hash = hashtab_hash_bytes(topic, topic_len);
	struct retained_msg *old = retained_lookup(s, topic, topic_len, hash);
	size_t size = topic_len + body->len;
	size_t kept = s->bytes - (old ? retained_msg_size(old) : 0);

	if (size > s->max_bytes || kept > s->max_bytes - size)
		return -ENOSPC;
	if (!old)
		return retained_add(s, topic, topic_len, hash, body);
	/* Same topic: swap the body in place, the entry keeps its position. */
	s->bytes = kept + size;
	msgbuf_ref(body);
	msgbuf_unref(old->body);
	old->body = body;
	return 0;
}

static bool pattern_has_wildcard(const char *pattern, size_t len)
{
	return memchr(pattern, '+', len) || memchr(pattern, '#', len);
}

int retained_foreach_match(const struct retained_store *s, const char *pattern, size_t pattern_len,
			   int (*fn)(const struct retained_msg *m, void *ud), void *ud)
{
	int visited = 0, ret;

	if (s->count == 0)
		return 0;
	if (!pattern_has_wildcard(pattern, pattern_len)) {
		const struct retained_msg *m = retained_find(s, pattern, pattern_len);
		if (!m)
			return 0;
		ret = fn(m, ud);
		return ret < 0 ? ret : 1;
	}
	for (const struct retained_msg *m = s->first; m; m = m->next) {
		if (!lbus_topic_match(pattern, pattern_len, m->topic, m->topic_len))
			continue;
		ret = fn(m, ud);
		if (ret < 0)
			return ret;
		visited++;
	}
	return visited;
}
