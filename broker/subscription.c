/* SPDX-License-Identifier: MIT */
/*
 * Subscribe and unsubscribe (see subscription.h). These are control frames,
 * so they use the generated protobuf-c unpacker. A sub_id must be non-zero
 * and unused on the connection; the pattern and the optional group are
 * validated with the same functions the library uses. Right after the Ok, a
 * new subscription outside queue groups receives the retained messages its
 * pattern matches, before any live message (the broker is single-threaded:
 * nothing can be routed in between). A subscription with max_msgs expires
 * by itself after that many deliveries (retained ones and calls included):
 * see sub_expire() in subscription.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "client.h"
#include "dispatch.h"
#include "topic.h"
#include "subscription.h"

struct sub *sub_find(const struct client *c, uint64_t id)
{
	struct list *l;

	for (l = c->subs.next; l != &c->subs; l = l->next) {
		struct sub *s = container_of(l, struct sub, client_link);
		if (s->id == id)
			return s;
	}
	return NULL;
}

void sub_remove(struct sub *s)
{
	struct broker *b = s->client->broker;

	trie_remove(&b->subs, &s->te);
	groups_leave(&b->groups, &s->member);
	list_del(&s->client_link);
	s->client->nsubs--;
	free(s);
}

void sub_remove_all(struct client *c)
{
	struct list *l;

	for (l = c->subs.next; l != &c->subs; l = l->next) {
		struct sub *s = container_of(l, struct sub, client_link);
		trie_remove(&c->broker->subs, &s->te);
		groups_leave(&c->broker->groups, &s->member);
	}
}

void sub_free_all(struct client *c)
{
	while (!list_empty(&c->subs))
		sub_remove(container_of(c->subs.next, struct sub, client_link));
}

void sub_expire(struct sub *s)
{
	struct client *c = s->client;
	struct broker *b = c->broker;

	trie_remove(&b->subs, &s->te);
	groups_leave(&b->groups, &s->member);
	list_del(&s->client_link);
	c->nsubs--;
	s->expired = true;
	list_add_tail(&b->expired_subs, &s->client_link);
	log_msg(&b->log, LOG_DEBUG, "client %llu subscription %llu expired after %llu messages",
		(unsigned long long)c->id, (unsigned long long)s->id, (unsigned long long)s->max_msgs);
}

void sub_free_expired(struct broker *b)
{
	while (!list_empty(&b->expired_subs)) {
		struct sub *s = container_of(b->expired_subs.next, struct sub, client_link);

		list_del(&s->client_link);
		free(s);
	}
}

/* Queue one retained message to a new subscription (Deliver.retained set). */
static int sub_deliver_retained(const struct retained_msg *m, void *ud)
{
	struct sub *s = ud;

	router_deliver_retained(s->client->broker, s, m->body);
	return 0;
}

/* Why a Subscribe is refused, or NULL when it is acceptable. */
static const char *sub_check(const struct client *c, const Lbus__Subscribe *m)
{
	size_t plen = strlen(m->pattern), glen = strlen(m->group);

	if (m->sub_id == 0)
		return "sub_id must not be 0";
	if (sub_find(c, m->sub_id))
		return "sub_id already in use on this connection";
	if (lbus_pattern_validate(m->pattern, plen) < 0)
		return "invalid pattern";
	if (glen && lbus_group_validate(m->group, glen) < 0)
		return "invalid group name";
	if (m->policy != LBUS__POLICY__POLICY_DROP && m->policy != LBUS__POLICY__POLICY_BLOCK)
		return "unknown policy";
	return NULL;
}

static struct sub *sub_new(struct client *c, const Lbus__Subscribe *m)
{
	size_t plen = strlen(m->pattern);
	struct sub *s = calloc(1, sizeof(*s) + plen + 1);

	if (!s)
		return NULL;
	if (m->group[0] && groups_join(&c->broker->groups, &s->member, m->group, strlen(m->group)) < 0) {
		free(s);
		return NULL;
	}
	s->client = c;
	s->id = m->sub_id;
	s->policy = (uint32_t)m->policy;
	s->max_msgs = m->max_msgs;
	s->stall_ms = m->policy == LBUS__POLICY__POLICY_BLOCK ? m->stall_ms : 0;
	s->responder = m->responder;
	s->pattern_len = plen;
	memcpy(s->pattern, m->pattern, plen + 1);
	if (trie_add(&c->broker->subs, s->pattern, plen, &s->te) < 0) {
		groups_leave(&c->broker->groups, &s->member);
		free(s);
		return NULL;
	}
	list_add_tail(&c->subs, &s->client_link);
	c->nsubs++;
	return s;
}

/* c holds max_subscriptions_per_client already: refuse one more (counted). */
static int sub_refuse_limit(struct client *c, const struct lbus_wire_frame *f)
{
	char why[160];

	c->broker->ctr.refused_max_subscriptions++;
	snprintf(why, sizeof(why),
		 "broker limit reached: this connection holds %u subscriptions (max_subscriptions_per_client = %u)",
		 c->nsubs, c->broker->cfg.max_subscriptions_per_client);
	client_send_error(c, f, LBUS__ERROR_CODE__ERR_LIMIT, why);
	return 0;
}

int sub_handle_subscribe(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__Subscribe *m = lbus__subscribe__unpack(NULL, f->body_len, f->body);
	const char *why;
	struct sub *s;

	if (!m)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable subscribe");
	why = sub_check(c, m);
	if (why) {
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_INVALID, why);
		lbus__subscribe__free_unpacked(m, NULL);
		return 0;
	}
	if (c->nsubs >= c->broker->cfg.max_subscriptions_per_client) {
		lbus__subscribe__free_unpacked(m, NULL);
		return sub_refuse_limit(c, f);
	}
	s = sub_new(c, m);
	lbus__subscribe__free_unpacked(m, NULL);
	if (!s) {
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory");
		return 0;
	}
	log_msg(&c->broker->log, LOG_DEBUG, "client %llu subscribed %llu to %s%s", (unsigned long long)c->id,
		(unsigned long long)s->id, s->pattern, s->responder ? " (responder)" : "");
	client_send_ok(c, f, 0);
	if (!s->member.group && c->broker->retained.count)
		retained_foreach_match(&c->broker->retained, s->pattern, s->pattern_len, sub_deliver_retained, s);
	return 0;
}

int sub_handle_unsubscribe(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__Unsubscribe *m = lbus__unsubscribe__unpack(NULL, f->body_len, f->body);
	struct sub *s;

	if (!m)
		return client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable unsubscribe");
	s = sub_find(c, m->sub_id);
	lbus__unsubscribe__free_unpacked(m, NULL);
	if (!s) {
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_INVALID, "no such sub_id");
		return 0;
	}
	sub_remove(s);
	client_send_ok(c, f, 0);
	return 0;
}
