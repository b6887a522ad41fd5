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
#include "client.h"
#include "dispatch.h"
#include "topic.h"

/* Unpack a NameRequest and validate the name; NULL after answering. */
static Lbus__NameRequest *name_request(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__NameRequest *m = lbus__name_request__unpack(NULL, f->body_len, f->body);

	if (!m) {
		client_fatal(c, f, LBUS__ERROR_CODE__ERR_PROTOCOL, "undecodable %s", lbus_kind_name(f->kind));
		return NULL;
	}
	if (lbus_name_validate(m->name, strlen(m->name)) < 0) {
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_INVALID, "invalid name");
		lbus__name_request__free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

/* c owns max_names_per_client names already: refuse one more (counted). */
static int naming_refuse_limit(struct client *c, const struct lbus_wire_frame *f)
{
	char why[160];

	c->broker->ctr.refused_max_names++;
	snprintf(why, sizeof(why), "broker limit reached: this connection owns %u names (max_names_per_client = %u)",
		 c->names.count, c->broker->cfg.max_names_per_client);
	client_send_error(c, f, LBUS__ERROR_CODE__ERR_LIMIT, why);
	return 0;
}

int naming_handle_take(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__NameRequest *m = name_request(c, f);
	struct broker *b = c->broker;
	int ret;

	if (!m)
		return c->state == CLIENT_CLOSED ? -EPROTO : 0;
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
			client_sender_changed(c);
	}
	lbus__name_request__free_unpacked(m, NULL);
	if (ret == -EADDRINUSE)
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_NAME_TAKEN, "name already taken");
	else if (ret < 0)
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_INTERNAL, "out of memory");
	else
		client_send_ok(c, f, 0);
	return 0;
}

int naming_handle_release(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__NameRequest *m = name_request(c, f);
	struct name_entry *first = c->names.first;
	int ret;

	if (!m)
		return c->state == CLIENT_CLOSED ? -EPROTO : 0;
	ret = names_release(&c->broker->names, &c->names, m->name, strlen(m->name));
	if (ret == 0)
		presence_name(c->broker, c, m->name, strlen(m->name), false);
	lbus__name_request__free_unpacked(m, NULL);
	if (ret < 0) {
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_NOT_OWNER, "not the owner of that name");
		return 0;
	}
	if (c->names.first != first)
		client_sender_changed(c);
	client_send_ok(c, f, 0);
	return 0;
}

int naming_handle_query(struct client *c, const struct lbus_wire_frame *f)
{
	Lbus__NameRequest *m = name_request(c, f);
	struct name_owner *o;

	if (!m)
		return c->state == CLIENT_CLOSED ? -EPROTO : 0;
	o = names_lookup(&c->broker->names, m->name, strlen(m->name));
	lbus__name_request__free_unpacked(m, NULL);
	if (!o)
		client_send_error(c, f, LBUS__ERROR_CODE__ERR_NO_SUCH_NAME, "no such name");
	else
		client_send_ok(c, f, container_of(o, struct client, names)->id);
	return 0;
}
