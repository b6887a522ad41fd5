/* SPDX-License-Identifier: MIT */
/*
 * How the lbus tool prints delivered messages (sub, listen) and the pieces
 * monitor shares: sender labels, presence events decoded, payloads made
 * safe for a human-readable line.
 *
 * Formats: plain is the payload exactly as it arrived (binary included)
 * followed by "\n", so `lbus sub t > file` round-trips text; -v prefixes the
 * topic (sub) or the sender (listen) and a space; --json writes one object
 * per line. A presence event ($lbus/client/..., $lbus/name/...) carries a
 * protobuf payload, which is shown decoded, led by what happened:
 * "connected id=7 pid=123 uid=1000 command=foo", "disconnected ...",
 * "name taken name=player id=7 ...", "name released ..." in the text formats
 * (so that the events tell apart without -v), a "presence" member in JSON.
 *
 * Everything goes to stdout's buffer; cli-loop.c decides when it is flushed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum cli_format cli_watch_format(const struct cli_watch_opts *o, enum cli_format verbose_fmt)
{
	if (o->json)
		return CLI_FMT_JSON;
	return o->verbose ? verbose_fmt : CLI_FMT_PLAIN;
}

void cli_print_sender(FILE *f, const struct lbus_sender *s)
{
	fprintf(f, "%" PRIu64, s->id);
	if (s->name && *s->name)
		fprintf(f, "(%s)", s->name);
}

void cli_json_sender(FILE *f, const struct lbus_sender *s)
{
	fprintf(f, "{\"id\":%" PRIu64 ",\"name\":", s->id);
	cli_json_cstring(f, s->name);
	fprintf(f, ",\"pid\":%ld,\"uid\":%lu,\"gid\":%lu}", (long)s->pid, (unsigned long)s->uid,
		(unsigned long)s->gid);
}

/* Is data text that fits on one line as is: valid UTF-8 without control
 * characters? */
static bool printable_text(const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return cli_utf8_valid(data, len);
}

void cli_print_text_payload(FILE *f, const void *data, size_t len)
{
	if (printable_text(data, len)) {
		if (len) /* data may be NULL then */
			fwrite_unlocked(data, 1, len, f);
	} else if (cli_utf8_valid(data, len)) {
		cli_json_string(f, data, len);
	} else {
		fprintf(f, "<%zu bytes> base64:", len);
		cli_json_base64(f, data, len);
	}
}

/* Decode a presence payload; NULL when topic is not a presence topic or the
 * payload is not an event. Free the result with lbus_presence_free(). */
static struct lbus_presence *presence_decode(const char *topic, const void *data, size_t len)
{
	struct lbus_msg msg = {.kind = LBUS_MSG_PUBLISH, .topic = topic, .data = data, .len = len};
	struct lbus_presence *p = NULL;

	if (!topic || topic[0] != '$' || strncmp(topic, "$lbus/", 6) != 0)
		return NULL; /* the first test keeps ordinary topics cheap */
	if (lbus_presence_decode(&msg, &p) < 0)
		return NULL;
	return p;
}

static bool is_name_event(const char *topic)
{
	return strncmp(topic, "$lbus/name/", 11) == 0;
}

/* The words that lead a presence event's text: what happened. topic is
 * one of the four presence topics (lbus_presence_decode() accepted it). */
static const char *presence_event_word(const char *topic)
{
	if (strcmp(topic, LBUS_TOPIC_CLIENT_CONNECTED) == 0)
		return "connected";
	if (strcmp(topic, LBUS_TOPIC_CLIENT_DISCONNECTED) == 0)
		return "disconnected";
	if (strcmp(topic, LBUS_TOPIC_NAME_TAKEN) == 0)
		return "name taken";
	return "name released";
}

bool cli_print_presence_text(FILE *f, const char *topic, const void *data, size_t len)
{
	struct lbus_presence *p = presence_decode(topic, data, len);

	if (!p)
		return false;
	fprintf(f, "%s ", presence_event_word(topic));
	if (is_name_event(topic) && p->n_names > 0) {
		fprintf(f, "name=%s ", p->names[0]);
	} else if (p->n_names > 0) {
		fputs("names=", f);
		for (size_t i = 0; i < p->n_names; i++)
			fprintf(f, "%s%s", i ? "," : "", p->names[i]);
		putc(' ', f);
	}
	fprintf(f, "id=%" PRIu64 " pid=%ld uid=%lu", p->id, (long)p->pid, (unsigned long)p->uid);
	if (p->command && *p->command)
		fprintf(f, " command=%s", p->command);
	lbus_presence_free(p);
	return true;
}

bool cli_print_presence_json(FILE *f, const char *topic, const void *data, size_t len)
{
	struct lbus_presence *p = presence_decode(topic, data, len);

	if (!p)
		return false;
	fprintf(f, ",\"presence\":{\"id\":%" PRIu64 ",", p->id);
	if (is_name_event(topic)) {
		fputs("\"name\":", f);
		cli_json_cstring(f, p->n_names > 0 ? p->names[0] : "");
	} else {
		fputs("\"names\":", f);
		cli_json_string_array(f, p->names, p->n_names);
	}
	fprintf(f, ",\"pid\":%ld,\"uid\":%lu,\"gid\":%lu,\"command\":", (long)p->pid, (unsigned long)p->uid,
		(unsigned long)p->gid);
	cli_json_cstring(f, p->command);
	putc('}', f);
	lbus_presence_free(p);
	return true;
}

static const char *kind_name(enum lbus_msg_kind kind)
{
	switch (kind) {
	case LBUS_MSG_SEND:
		return "send";
	case LBUS_MSG_CALL:
		return "call";
	default:
		return "publish";
	}
}

/* json: the decoded payload (--decode), or NULL for the payload itself. */
static void print_json(const struct lbus_msg *msg, uint64_t missed, const char *json)
{
	fputs_unlocked("{\"topic\":", stdout);
	cli_json_cstring(stdout, msg->topic);
	fprintf(stdout, ",\"kind\":\"%s\",", kind_name(msg->kind));
	if (json)
		fprintf(stdout, "\"message\":%s", json);
	else
		cli_json_payload(stdout, msg->data, msg->len);
	fputs_unlocked(",\"sender\":", stdout);
	cli_json_sender(stdout, &msg->sender);
	if (msg->retained)
		fputs_unlocked(",\"retained\":true", stdout);
	if (missed)
		fprintf(stdout, ",\"missed\":%" PRIu64, missed);
	cli_print_presence_json(stdout, msg->topic, msg->data, msg->len);
	fputs_unlocked("}\n", stdout);
}

void cli_print_msg(enum cli_format fmt, const struct lbus_msg *msg, const char *pattern,
		   const struct cli_pb *pb)
{
	if (msg->missed)
		fprintf(stderr, "lbus: warning: %" PRIu64 " messages dropped on %s\n", msg->missed,
			pattern ? pattern : msg->topic);
	cli_print_msg_missed(fmt, msg, msg->missed, pb);
}

void cli_print_msg_missed(enum cli_format fmt, const struct lbus_msg *msg, uint64_t missed,
			  const struct cli_pb *pb)
{
	const struct pbs_message *type = cli_pb_type_for(pb, msg->topic);
	char *json = NULL;

	if (type && cli_pb_decode(type, msg->topic, msg->data, msg->len, &json) < 0)
		return;
	if (fmt == CLI_FMT_JSON) {
		print_json(msg, missed, json);
		free(json);
		return;
	}
	if (fmt == CLI_FMT_TOPIC) {
		fputs_unlocked(msg->topic, stdout);
		putc_unlocked(' ', stdout);
	} else if (fmt == CLI_FMT_SENDER) {
		cli_print_sender(stdout, &msg->sender);
		putc_unlocked(' ', stdout);
	}
	if (json)
		fputs_unlocked(json, stdout);
	else if (!cli_print_presence_text(stdout, msg->topic, msg->data, msg->len) && msg->len)
		fwrite_unlocked(msg->data, 1, msg->len, stdout);
	putc_unlocked('\n', stdout);
	free(json);
}
