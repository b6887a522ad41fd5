/* SPDX-License-Identifier: MIT */
/*
 * The access rules at work (see access.h): identity at accept, checks per
 * operation of foreign peers, refusals answered with ERR_DENIED.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "answer.h"
#include "broker.h"
#include "lbus-limits.h"
#include "monitor.h"
#include "peer.h"
#include "refusal.h"
#include "route.h"
#include "subscription.h"
#include "topic.h"

#define ACCESS_GROUPS_MAX 65536 /* NGROUPS_MAX of Linux */

bool access_trusted(const struct broker *b, uid_t uid)
{
	return uid == b->uid || uid == 0;
}

/* The supplementary groups of the peer on fd into id (none when the kernel
 * cannot tell: SO_PEERGROUPS is Linux 4.13+). 0 or -ENOMEM. */
static int access_read_groups(int fd, struct policy_id *id)
{
	socklen_t len = 16 * sizeof(gid_t);

	for (;;) {
		gid_t *g = realloc(id->groups, len);
		if (!g)
			return -ENOMEM;
		id->groups = g;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			id->ngroups = len / sizeof(gid_t);
			return 0;
		}
		if (errno != ERANGE || len > ACCESS_GROUPS_MAX * sizeof(gid_t)) {
			id->ngroups = 0;
			return 0;
		}
	}
}

struct policy_id *access_id_read(int fd, const struct ucred *cr)
{
	struct policy_id *id = calloc(1, sizeof(*id));

	if (!id)
		return NULL;
	id->uid = cr->uid;
	id->gid = cr->gid;
	if (access_read_groups(fd, id) < 0) {
		access_id_free(id);
		return NULL;
	}
	return id;
}

void access_id_free(struct policy_id *id)
{
	if (!id)
		return;
	free(id->groups);
	free(id);
}

bool access_may_connect(const struct broker *b, const struct policy_id *id)
{
	return policy_allows(b->cfg.policy, id, POLICY_CONNECT, POLICY_NONE, NULL, 0, NULL);
}

/* The reason of a refusal of verb on object[0..len) (NULL, 0 for none)
 * decided by the rule on pattern ("" when no rule matched) into why. */
static void access_reason(char *why, size_t size, enum policy_verb verb, const char *object, size_t len,
			  const char *pattern)
{
	int n = len > 200 ? 200 : (int)len;
	const char *cut = (size_t)n < len ? "..." : "";

	if (*pattern && object)
		snprintf(why, size, "denied: %s '%.*s'%s by the rule on '%s'", policy_verb_name(verb), n,
			 object, cut, pattern);
	else if (*pattern)
		snprintf(why, size, "denied: %s by the rule on '%s'", policy_verb_name(verb), pattern);
	else if (object)
		snprintf(why, size, "denied: %s '%.*s'%s (no rule allows it)", policy_verb_name(verb), n,
			 object, cut);
	else
		snprintf(why, size, "denied: %s (no rule allows it)", policy_verb_name(verb));
}

/* Count a refusal to c and show it to monitors (a MON_ERROR event naming
 * the refused object). */
static void access_count_refusal(struct peer *c, enum policy_object kind, const char *object, size_t len)
{
	struct broker *b = c->broker;

	b->ctr.denied++;
	if (b->monitors.count) {
		struct lbus_wire_monitor_event ev = {
		    .kind = LBUS__MONITOR_KIND__MON_ERROR,
		    .receivers = &c->id,
		    .nreceivers = 1,
		    .error = LBUS__ERROR_CODE__ERR_DENIED,
		};
		if (kind == POLICY_NAME) {
			ev.name = object;
			ev.name_len = len;
		} else if (kind == POLICY_TOPIC) {
			ev.topic = object;
			ev.topic_len = len;
		}
		monitor_emit(b, &ev);
	}
}

/* Answer the refusal of verb on object: Error ERR_DENIED naming both and
 * the pattern of the deciding rule; counted, shown to monitors. */
static int access_refuse(struct peer *c, const struct lbus_wire_frame *f, enum policy_verb verb,
			 enum policy_object kind, const char *object, size_t len, const char *pattern)
{
	char why[ACCESS_REASON_MAX];

	access_reason(why, sizeof(why), verb, object, len, pattern);
	access_count_refusal(c, kind, object, len);
	return answer_refusal_why(c, f, ACCESS_E_DENIED, why);
}

bool access_denied(struct peer *c, const struct lbus_wire_frame *f, enum policy_verb verb,
		   enum policy_object kind, const char *object, size_t len, int *ret)
{
	const char *pattern;

	if (policy_allows(c->broker->cfg.policy, c->foreign, verb, kind, object, len, &pattern))
		return false;
	*ret = access_refuse(c, f, verb, kind, object, len, pattern);
	return true;
}

/* May the foreign id subscribe to sub (NUL-terminated)? The broker's own
 * topics ('$': presence events) need introspect instead of subscribe; *verb
 * says which was asked, *rule as for policy_allows(). */
static bool access_sub_allowed(const struct policy *p, const struct policy_id *id, const char *sub,
			       enum policy_verb *verb, const char **rule)
{
	if (lbus_topic_is_reserved(sub, strlen(sub))) {
		*verb = POLICY_INTROSPECT;
		return policy_allows(p, id, POLICY_INTROSPECT, POLICY_NONE, NULL, 0, rule);
	}
	*verb = POLICY_SUBSCRIBE;
	return policy_may_subscribe(p, id, sub, rule);
}

bool access_subscribe_denied(struct peer *c, const struct lbus_wire_frame *f, const char *pattern, size_t len,
			     int *ret)
{
	char sub[LBUS_MAX_TOPIC_LEN + 1];
	enum policy_verb verb;
	const char *rule;

	if (len > LBUS_MAX_TOPIC_LEN)
		len = LBUS_MAX_TOPIC_LEN; /* invalid: the subscription refuses it */
	memcpy(sub, pattern, len);
	sub[len] = '\0';
	if (access_sub_allowed(c->broker->cfg.policy, c->foreign, sub, &verb, &rule))
		return false;
	*ret = access_refuse(c, f, verb, POLICY_TOPIC, pattern, len, rule);
	return true;
}

bool access_may_receive(const struct peer *c, const char *topic, size_t len)
{
	if (lbus_topic_is_reserved(topic, len))
		return policy_allows(c->broker->cfg.policy, c->foreign, POLICY_INTROSPECT, POLICY_NONE, NULL,
				     0, NULL);
	return policy_allows(c->broker->cfg.policy, c->foreign, POLICY_SUBSCRIBE, POLICY_TOPIC, topic, len,
			     NULL);
}

/* May the foreign c call target[0..len) as a name (name) or as a topic? */
static bool access_may_call(const struct peer *c, bool name, const char *target, size_t len,
			    const char **rule)
{
	return policy_allows(c->broker->cfg.policy, c->foreign, POLICY_CALL,
			     name ? POLICY_NAME : POLICY_TOPIC, target, len, rule);
}

bool access_call_denied(struct peer *c, bool as_name, bool as_topic, const char *target, size_t len,
			char *why, size_t size)
{
	const char *rule = "", *name_rule = "";

	if (as_name && access_may_call(c, true, target, len, &name_rule))
		return false;
	if (as_topic && access_may_call(c, false, target, len, &rule))
		return false;
	access_reason(why, size, POLICY_CALL, target, len, *rule ? rule : name_rule);
	access_count_refusal(c, as_name && !as_topic ? POLICY_NAME : POLICY_TOPIC, target, len);
	return true;
}

bool access_may_monitor(const struct peer *m, const struct lbus_wire_monitor_event *ev)
{
	switch (ev->kind) {
	case LBUS__MONITOR_KIND__MON_PUBLISH:
		return access_may_receive(m, ev->topic, ev->topic_len);
	case LBUS__MONITOR_KIND__MON_SEND:
	case LBUS__MONITOR_KIND__MON_CALL:
		if (ev->topic)
			return access_may_receive(m, ev->topic, ev->topic_len);
		return policy_allows(m->broker->cfg.policy, m->foreign, POLICY_OWN, POLICY_NAME, ev->name,
				     ev->name_len, NULL);
	default: /* replies and errors: only its own */
		for (size_t i = 0; i < ev->nreceivers; i++)
			if (ev->receivers[i] == m->id)
				return true;
		return false;
	}
}

/* The rules changed: drop c's subscriptions that can no longer match a
 * topic it may subscribe to, each with a notice (an Error ERR_DENIED for
 * the Subscribe kind, req_id 0, naming the subscription). */
static void access_recheck_subs(struct peer *c)
{
	static const struct lbus_wire_frame subscribe = {.kind = LBUS_K_SUBSCRIBE};
	struct list *l, *tmp;
	char why[ACCESS_REASON_MAX];
	enum policy_verb verb;
	const char *rule;

	list_for_each_safe(l, tmp, &c->subs)
	{
		struct sub *s = container_of(l, struct sub, peer_link);

		if (access_sub_allowed(c->broker->cfg.policy, c->foreign, s->pattern, &verb, &rule))
			continue;
		snprintf(why, sizeof(why),
			 "denied: subscription %llu to '%.200s' dropped: the access rules changed%s%s",
			 (unsigned long long)s->id, s->pattern, *rule ? " (rule on " : "", *rule ? rule : "");
		if (*rule)
			strncat(why, ")", sizeof(why) - strlen(why) - 1);
		log_msg(&c->broker->log, LOG_INFO, "client %llu: %s", (unsigned long long)c->id, why);
		sub_remove(s);
		c->broker->ctr.denied++;
		if (answer_refusal_why(c, &subscribe, ACCESS_E_DENIED, why) < 0)
			peer_close(c, "out of memory");
	}
}

void access_reloaded(struct broker *b)
{
	struct list *l, *tmp;

	routes_drop_all(&b->routes);
	list_for_each_safe(l, tmp, &b->peers)
	{
		struct peer *c = container_of(l, struct peer, link);

		if (c->foreign && c->state != PEER_CLOSED)
			access_recheck_subs(c);
	}
}
