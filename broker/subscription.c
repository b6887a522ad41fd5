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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "answer.h"
#include "peer.h"
#include "refusal.h"
#include "deliver.h"
#include "dispatch.h"
#include "topic.h"
#include "subscription.h"
#include "access.h"

struct sub *sub_find(const struct peer *c, uint64_t id)
{
	uint64_t h = hashtab_hash_u64(id);

	for (struct hashtab_node *n = hashtab_first(&c->sub_ids, h); n; n = hashtab_next(n, h)) {
		struct sub *s = container_of(n, struct sub, id_node);

		if (s->id == id)
			return s;
	}
	return NULL;
}

/* s leaves its peer's lists (it is no longer found by id). */
static void sub_unlink(struct sub *s)
{
	hashtab_remove(&s->peer->sub_ids, &s->id_node);
	list_del(&s->peer_link);
	s->peer->nsubs--;
}

/* Take s out of the trie and its group; the routes of the topics it
 * matched are stale (a subscription that is not indexed is a no-op). The
 * publishers waiting on a block subscription's client resume at once: this
 * one may be what held them (they wait again if another still does). */
static void sub_unindex(struct broker *b, struct sub *s)
{
	if (!s->te.node)
		return;
	trie_remove(&b->subs, &s->te);
	groups_leave(&b->groups, &s->member);
	routes_invalidate(&b->routes, s->pattern, s->pattern_len);
	if (s->policy == LBUS__POLICY__POLICY_BLOCK)
		peer_wake_waiters(s->peer);
}

void sub_remove(struct sub *s)
{
	struct broker *b = s->peer->broker;

	sub_unindex(b, s);
	sub_unlink(s);
	free(s);
}

void sub_remove_all(struct peer *c)
{
	struct list *l;

	for (l = c->subs.next; l != &c->subs; l = l->next) {
		struct sub *s = container_of(l, struct sub, peer_link);
		sub_unindex(c->broker, s);
	}
}

void sub_free_all(struct peer *c)
{
	while (!list_empty(&c->subs))
		sub_remove(container_of(c->subs.next, struct sub, peer_link));
	hashtab_deinit(&c->sub_ids);
}

void sub_expire(struct sub *s)
{
	struct peer *c = s->peer;
	struct broker *b = c->broker;

	sub_unindex(b, s);
	sub_unlink(s);
	s->expired = true;
	list_add_tail(&b->expired_subs, &s->peer_link);
	log_msg(&b->log, LOG_DEBUG, "client %llu subscription %llu expired after %llu messages",
		(unsigned long long)c->id, (unsigned long long)s->id, (unsigned long long)s->max_msgs);
}

void sub_free_expired(struct broker *b)
{
	while (!list_empty(&b->expired_subs)) {
		struct sub *s = container_of(b->expired_subs.next, struct sub, peer_link);

		list_del(&s->peer_link);
		free(s);
	}
}

/* Queue one retained message to a new subscription (Deliver.retained set). */
static int sub_deliver_retained(const struct retained_msg *m, void *ud)
{
	struct sub *s = ud;

	if (s->peer->foreign && !access_may_receive(s->peer, m->topic, m->topic_len))
		return 0;
	deliver_retained(s->peer->broker, s, m->body);
	return 0;
}

/* Why a Subscribe is refused (SUB_E_*), or 0 when it is acceptable. */
static int sub_check(const struct peer *c, const Lbus__Subscribe *m)
{
	size_t plen = strlen(m->pattern), glen = strlen(m->group);

	if (m->sub_id == 0)
		return SUB_E_ZERO_ID;
	if (sub_find(c, m->sub_id))
		return SUB_E_ID_IN_USE;
	if (!lbus_topic_within_limits(m->pattern, plen))
		return TOPIC_E_TOO_LONG;
	if (lbus_pattern_validate(m->pattern, plen) < 0)
		return SUB_E_INVALID_PATTERN;
	if (glen && lbus_group_validate(m->group, glen) < 0)
		return SUB_E_INVALID_GROUP;
	if (m->policy != LBUS__POLICY__POLICY_DROP && m->policy != LBUS__POLICY__POLICY_BLOCK)
		return SUB_E_UNKNOWN_POLICY;
	return 0;
}

static struct sub *sub_new(struct peer *c, const Lbus__Subscribe *m)
{
	size_t plen = strlen(m->pattern);
	struct sub *s = calloc(1, sizeof(*s) + plen + 1);

	if (!s)
		return NULL;
	if (m->group[0] && groups_join(&c->broker->groups, &s->member, m->group, strlen(m->group)) < 0) {
		free(s);
		return NULL;
	}
	s->peer = c;
	s->id = m->sub_id;
	s->policy = (uint32_t)m->policy;
	s->max_msgs = m->max_msgs;
	s->stall_ms = m->policy == LBUS__POLICY__POLICY_BLOCK ? m->stall_ms : 0;
	s->responder = m->responder;
	s->pattern_len = plen;
	memcpy(s->pattern, m->pattern, plen + 1);
	if (hashtab_insert(&c->sub_ids, &s->id_node, hashtab_hash_u64(s->id)) < 0) {
		groups_leave(&c->broker->groups, &s->member);
		free(s);
		return NULL;
	}
	if (trie_add(&c->broker->subs, s->pattern, plen, &s->te) < 0) {
		hashtab_remove(&c->sub_ids, &s->id_node);
		groups_leave(&c->broker->groups, &s->member);
		free(s);
		return NULL;
	}
	routes_invalidate(&c->broker->routes, s->pattern, s->pattern_len);
	list_add_tail(&c->subs, &s->peer_link);
	c->nsubs++;
	return s;
}

/* c holds max_subscriptions_per_client already: refuse one more (counted),
 * the reason naming the limit. 0 or -ENOMEM. */
static int sub_refuse_limit(struct peer *c, const struct lbus_wire_frame *f)
{
	char why[160];

	c->broker->ctr.refused_max_subscriptions++;
	snprintf(why, sizeof(why),
		 "broker limit reached: this connection holds %u subscriptions (max_subscriptions_per_client "
		 "= %u)",
		 c->nsubs, c->broker->cfg.max_subscriptions_per_client);
	return answer_refusal_why(c, f, SUB_E_LIMIT, why);
}

int sub_handle_subscribe(struct peer *c, const struct lbus_wire_frame *f)
{
	Lbus__Subscribe *m = lbus__subscribe__unpack(NULL, f->body_len, f->body);
	struct sub *s;
	int ret;

	if (!m)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable subscribe");
	ret = sub_check(c, m);
	if (ret == 0 && c->foreign && access_subscribe_denied(c, f, m->pattern, strlen(m->pattern), &ret)) {
		lbus__subscribe__free_unpacked(m, NULL);
		return ret; /* answered */
	}
	if (ret) {
		lbus__subscribe__free_unpacked(m, NULL);
		return ret;
	}
	if (c->nsubs >= c->broker->cfg.max_subscriptions_per_client) {
		lbus__subscribe__free_unpacked(m, NULL);
		return sub_refuse_limit(c, f);
	}
	s = sub_new(c, m);
	lbus__subscribe__free_unpacked(m, NULL);
	if (!s)
		return -ENOMEM;
	log_msg(&c->broker->log, LOG_DEBUG, "client %llu subscribed %llu to %s%s", (unsigned long long)c->id,
		(unsigned long long)s->id, s->pattern, s->responder ? " (responder)" : "");
	ret = answer_ok(c, f, 0);
	if (ret < 0)
		return ret;
	if (!s->member.group && c->broker->retained.count)
		retained_foreach_match(&c->broker->retained, s->pattern, s->pattern_len, sub_deliver_retained,
				       s);
	return 0;
}

int sub_handle_unsubscribe(struct peer *c, const struct lbus_wire_frame *f)
{
	Lbus__Unsubscribe *m = lbus__unsubscribe__unpack(NULL, f->body_len, f->body);
	struct sub *s;

	if (!m)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable unsubscribe");
	s = sub_find(c, m->sub_id);
	lbus__unsubscribe__free_unpacked(m, NULL);
	if (!s)
		return SUB_E_NO_SUCH_ID;
	sub_remove(s);
	return answer_ok(c, f, 0);
}
