/* SPDX-License-Identifier: MIT */
/*
 * Name requests: take_name, release_name, query_name (see PROTOCOL.md,
 * "Names and sends"). The registry itself is names.c; this file validates,
 * answers, and refreshes the client's cached Sender when its first name
 * changes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "access.h"
#include "answer.h"
#include "peer.h"
#include "refusal.h"
#include "dispatch.h"
#include "topic.h"

/* Unpack a NameRequest and validate the name: 0 (*out set), NAME_E_INVALID
 * or the result of answer_fatal(). */
static int name_request(struct peer *c, const struct lbus_wire_frame *f, Lbus__NameRequest **out)
{
	Lbus__NameRequest *m = lbus__name_request__unpack(NULL, f->body_len, f->body);

	if (!m)
		return answer_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable %s",
				    lbus_kind_name(f->kind));
	if (lbus_name_validate(m->name, strlen(m->name)) < 0) {
		lbus__name_request__free_unpacked(m, NULL);
		return NAME_E_INVALID;
	}
	*out = m;
	return 0;
}

/* c owns max_names_per_client names already: refuse one more (counted),
 * the reason naming the limit. 0 or -ENOMEM. */
static int naming_refuse_limit(struct peer *c, const struct lbus_wire_frame *f)
{
	char why[160];

	c->broker->ctr.refused_max_names++;
	snprintf(why, sizeof(why),
		 "broker limit reached: this connection owns %u names (max_names_per_client = %u)",
		 c->names.count, c->broker->cfg.max_names_per_client);
	return answer_refusal_why(c, f, NAME_E_LIMIT, why);
}

int naming_handle_take(struct peer *c, const struct lbus_wire_frame *f)
{
	struct broker *b = c->broker;
	Lbus__NameRequest *m;
	int ret = name_request(c, f, &m);

	if (ret)
		return ret;
	if (c->foreign && access_denied(c, f, POLICY_OWN, POLICY_NAME, m->name, strlen(m->name), &ret)) {
		lbus__name_request__free_unpacked(m, NULL);
		return ret;
	}
	if (c->names.count >= b->cfg.max_names_per_client &&
	    names_lookup(&b->names, m->name, strlen(m->name)) != &c->names) {
		lbus__name_request__free_unpacked(m, NULL);
		return naming_refuse_limit(c, f);
	}
	ret = names_take(&b->names, &c->names, m->name, strlen(m->name));
	if (ret == 0) {
		presence_name(b, c, m->name, strlen(m->name), true);
		log_msg(&b->log, LOG_DEBUG, "client %llu took name %s", (unsigned long long)c->id, m->name);
		if (c->names.count == 1)
			peer_sender_changed(c);
	}
	lbus__name_request__free_unpacked(m, NULL);
	if (ret == 0 || ret == NAMES_ALREADY_OURS)
		return answer_ok(c, f, 0);
	return ret;
}

int naming_handle_release(struct peer *c, const struct lbus_wire_frame *f)
{
	struct name_entry *first = name_owner_first(&c->names);
	Lbus__NameRequest *m;
	int ret = name_request(c, f, &m);

	if (ret)
		return ret;
	ret = names_release(&c->broker->names, &c->names, m->name, strlen(m->name));
	if (ret == 0)
		presence_name(c->broker, c, m->name, strlen(m->name), false);
	lbus__name_request__free_unpacked(m, NULL);
	if (ret)
		return ret;
	if (name_owner_first(&c->names) != first)
		peer_sender_changed(c);
	return answer_ok(c, f, 0);
}

int naming_handle_query(struct peer *c, const struct lbus_wire_frame *f)
{
	Lbus__NameRequest *m;
	struct name_owner *o;
	int ret = name_request(c, f, &m);

	if (ret)
		return ret;
	o = names_lookup(&c->broker->names, m->name, strlen(m->name));
	lbus__name_request__free_unpacked(m, NULL);
	if (!o)
		return NAME_E_NO_SUCH_NAME;
	return answer_ok(c, f, container_of(o, struct peer, names)->id);
}
