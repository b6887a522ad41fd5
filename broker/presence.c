/* SPDX-License-Identifier: MIT */
/*
 * Presence events (see presence.h): a FIFO of encoded payloads, each with
 * its (static) topic, published with router_publish_internal() at the end
 * of the loop turn. A failure to allocate an event is logged and the event
 * is lost: presence is a courtesy, never a reason to fail a client.
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "lbus-limits.h"
#include "peer.h"
#include "presence.h"
#include "router.h"

#define TOPIC_CONNECTED "$lbus/client/connected"
#define TOPIC_DISCONNECTED "$lbus/client/disconnected"
#define TOPIC_TAKEN "$lbus/name/taken"
#define TOPIC_RELEASED "$lbus/name/released"

struct presence_event {
	struct presence_event *next;
	const char *topic;
	size_t len;
	uint8_t payload[];
};

void presence_init(struct presence *p)
{
	p->first = NULL;
	p->tail = &p->first;
}

void presence_deinit(struct presence *p)
{
	while (p->first) {
		struct presence_event *e = p->first;
		p->first = e->next;
		free(e);
	}
	presence_init(p);
}

/* A new event with room for len payload bytes, appended to the queue. */
static struct presence_event *presence_append(struct broker *b, const char *topic, size_t len)
{
	struct presence_event *e = malloc(sizeof(*e) + len);

	if (!e) {
		log_msg(&b->log, LOG_WARNING, "out of memory: %s event lost", topic);
		return NULL;
	}
	e->next = NULL;
	e->topic = topic;
	e->len = len;
	*b->presence.tail = e;
	b->presence.tail = &e->next;
	return e;
}

#define PRESENCE_STACK_NAMES 8

void presence_client(struct broker *b, const struct peer *c, bool connected)
{
	Lbus__ClientEvent ev = LBUS__CLIENT_EVENT__INIT;
	char *stack[PRESENCE_STACK_NAMES];
	char **names = stack;
	size_t cap = PRESENCE_STACK_NAMES, i = 0;
	struct presence_event *e;

	if (c->names.count > cap && (names = malloc(c->names.count * sizeof(*names))))
		cap = c->names.count;
	if (!names)
		names = stack; /* out of memory: list the first names only */
	for (struct name_entry *n = name_owner_first(&c->names); n && i < cap;
	     n = name_owner_next(&c->names, n))
		names[i++] = n->name;
	ev.id = c->id;
	ev.n_names = i;
	ev.names = names;
	ev.pid = (uint32_t)c->pid;
	ev.uid = c->uid;
	ev.gid = c->gid;
	ev.command = (char *)c->comm;
	e = presence_append(b, connected ? TOPIC_CONNECTED : TOPIC_DISCONNECTED,
			    lbus__client_event__get_packed_size(&ev));
	if (e)
		lbus__client_event__pack(&ev, e->payload);
	if (names != stack)
		free(names);
}

void presence_name(struct broker *b, const struct peer *c, const char *name, size_t len, bool taken)
{
	Lbus__NameEvent ev = LBUS__NAME_EVENT__INIT;
	char buf[LBUS_MAX_NAME_LEN + 1];
	struct presence_event *e;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1; /* names are validated: never cut */
	memcpy(buf, name, len);
	buf[len] = '\0';
	ev.name = buf;
	ev.owner = c->id;
	ev.pid = (uint32_t)c->pid;
	ev.uid = c->uid;
	e = presence_append(b, taken ? TOPIC_TAKEN : TOPIC_RELEASED, lbus__name_event__get_packed_size(&ev));
	if (e)
		lbus__name_event__pack(&ev, e->payload);
}

void presence_flush(struct broker *b)
{
	struct presence *p = &b->presence;

	while (p->first) {
		struct presence_event *e = p->first;

		p->first = e->next;
		if (!p->first)
			p->tail = &p->first;
		if (router_publish_internal(b, e->topic, strlen(e->topic), e->payload, e->len) < 0)
			log_msg(&b->log, LOG_WARNING, "out of memory: %s event lost", e->topic);
		free(e);
	}
}
