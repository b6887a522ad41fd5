/* SPDX-License-Identifier: MIT */
/*
 * Seeds and mutations for the fuzz suite (see fuzz-mutate.h).
 *
 * The corpus holds frames as a client or the broker really sends them:
 * protobuf-c packs one frame of every kind with all of its fields set (so
 * every decoder has something to chew on), and proto/wire-encode.c adds its own
 * encodings of Publish and Deliver (field order and layout differ from
 * protobuf-c's, which exercises the decoders' fast paths). Topics use the
 * "fuzz/" prefix and names "fuzz.*", so nothing mutated from them can reach
 * a bystander on another prefix.
 */
#include "fuzz-mutate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbus.pb-c.h"
#include "frame.h"
#include "lbus-limits.h"
#include "wire.h"

/* ---- PRNG ------------------------------------------------------------------------ */

void fz_rng_init(struct fz_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t fz_rng_next(struct fz_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

size_t fz_rng_below(struct fz_rng *r, size_t n)
{
	return (size_t)(fz_rng_next(r) % n);
}

uint64_t fz_seed_from_env(uint64_t def)
{
	const char *e = getenv("LBUS_FUZZ_SEED");
	return e && *e ? strtoull(e, NULL, 0) : def;
}

/* ---- buffer ---------------------------------------------------------------------- */

static void buf_grow(struct fz_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	uint8_t *d = realloc(b->data, cap);
	if (!d)
		abort();
	b->data = d;
	b->cap = cap;
}

void fz_buf_append(struct fz_buf *b, const void *p, size_t n)
{
	fz_buf_insert(b, b->len, p, n);
}

void fz_buf_insert(struct fz_buf *b, size_t at, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_grow(b, n);
	memmove(b->data + at + n, b->data + at, b->len - at);
	memcpy(b->data + at, p, n);
	b->len += n;
}

void fz_buf_erase(struct fz_buf *b, size_t at, size_t n)
{
	if (n == 0)
		return;
	memmove(b->data + at, b->data + at + n, b->len - at - n);
	b->len -= n;
}

void fz_buf_free(struct fz_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void fz_hexdump(const char *what, const uint8_t *p, size_t n)
{
	size_t shown = n > 4096 ? 4096 : n;

	fprintf(stderr, "%s (%zu bytes%s):", what, n, shown < n ? ", first 4096" : "");
	for (size_t i = 0; i < shown; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n  ", p[i]);
	fputc('\n', stderr);
}

/* ---- seeds ----------------------------------------------------------------------- */

static void seeds_add(struct fz_seeds *s, uint32_t kind, bool client, const uint8_t *data, size_t len)
{
	struct fz_seed *v = realloc(s->v, (s->n + 1) * sizeof(*v));
	uint8_t *copy = malloc(len);
	if (!v || !copy)
		abort();
	memcpy(copy, data, len);
	s->v = v;
	s->v[s->n++] = (struct fz_seed){.kind = kind, .client = client, .data = copy, .len = len};
}

static void seeds_add_frame(struct fz_seeds *s, const Lbus__Frame *f, bool client)
{
	uint8_t *buf = malloc(lbus_frame_packed_size(f));
	if (!buf)
		abort();
	seeds_add(s, (uint32_t)f->kind_case, client, buf, lbus_frame_pack(f, buf));
	free(buf);
}

/* Every message a frame can carry, with every field set. */
struct all_msgs {
	Lbus__Hello hello;
	Lbus__Welcome welcome;
	Lbus__Error error;
	Lbus__Ping ping;
	Lbus__Pong pong;
	Lbus__Subscribe subscribe;
	Lbus__Unsubscribe unsubscribe;
	Lbus__Publish publish;
	Lbus__Deliver deliver;
	Lbus__NameRequest name;
	Lbus__Send send;
	Lbus__Ok ok;
	Lbus__Call call;
	Lbus__Reply reply;
	Lbus__CallResult result;
	Lbus__Dropped dropped;
	Lbus__ListRequest list;
	Lbus__ClientList client_list;
	Lbus__StatsRequest stats;
	Lbus__Stats stats_reply;
	Lbus__MonitorRequest monitor;
	Lbus__MonitorEvent monitor_event;
	Lbus__Sender sender;
	Lbus__ClientInfo info;
	Lbus__SubscriptionInfo sub_info;
	Lbus__ClientCounters counters;
	Lbus__BrokerCounters broker_counters;
	Lbus__ClientStats client_stats;
	Lbus__SubscriptionInfo *subs[1];
	Lbus__ClientInfo *infos[1];
	Lbus__ClientStats *cstats[1];
};

/* What clients send. */
static void requests_init(struct all_msgs *m)
{
	m->hello = (Lbus__Hello)LBUS__HELLO__INIT;
	m->hello.version = LBUS_PROTOCOL_VERSION;
	m->ping = (Lbus__Ping)LBUS__PING__INIT;
	m->ping.token = 0x1234;
	m->pong = (Lbus__Pong)LBUS__PONG__INIT;
	m->pong.token = 0x1234;
	m->subscribe = (Lbus__Subscribe)LBUS__SUBSCRIBE__INIT;
	m->subscribe =
	    (Lbus__Subscribe){m->subscribe.base, 5, "fuzz/+/#", "fuzz.group", LBUS__POLICY__POLICY_BLOCK};
	m->unsubscribe = (Lbus__Unsubscribe)LBUS__UNSUBSCRIBE__INIT;
	m->unsubscribe.sub_id = 5;
	m->publish = (Lbus__Publish)LBUS__PUBLISH__INIT;
	m->publish = (Lbus__Publish){m->publish.base, "fuzz/a/b", {5, (uint8_t *)"hello"}, true};
	m->name = (Lbus__NameRequest)LBUS__NAME_REQUEST__INIT;
	m->name.name = "fuzz.name";
	m->send = (Lbus__Send)LBUS__SEND__INIT;
	m->send = (Lbus__Send){m->send.base, "fuzz.name", {3, (uint8_t *)"abc"}};
	m->call = (Lbus__Call)LBUS__CALL__INIT;
	m->call = (Lbus__Call){m->call.base, "fuzz.name", {4, (uint8_t *)"ping"}, 77, 250};
	m->reply = (Lbus__Reply)LBUS__REPLY__INIT;
	m->reply = (Lbus__Reply){m->reply.base, 99, {4, (uint8_t *)"pong"}};
	m->list = (Lbus__ListRequest)LBUS__LIST_REQUEST__INIT;
	m->stats = (Lbus__StatsRequest)LBUS__STATS_REQUEST__INIT;
	m->monitor = (Lbus__MonitorRequest)LBUS__MONITOR_REQUEST__INIT;
	m->monitor.pattern = "fuzz/#";
}

/* What the broker sends (requests_init first: a Deliver carries a Publish). */
static void answers_init(struct all_msgs *m)
{
	static uint64_t receivers[] = {3, 70000, 1ull << 40};

	m->welcome = (Lbus__Welcome)LBUS__WELCOME__INIT;
	m->welcome = (Lbus__Welcome){m->welcome.base, 1, 7, LBUS_DEFAULT_MAX_FRAME, LBUS_DEFAULT_MAX_QUEUE,
				     "lbusd 0.1.0"};
	m->error = (Lbus__Error)LBUS__ERROR__INIT;
	m->error = (Lbus__Error){m->error.base, LBUS__ERROR_CODE__ERR_INVALID, "invalid topic", 8, true};
	m->sender = (Lbus__Sender)LBUS__SENDER__INIT;
	m->sender = (Lbus__Sender){m->sender.base, 42, "fuzz.a", 1234, 1000, 1000};
	m->deliver = (Lbus__Deliver)LBUS__DELIVER__INIT;
	m->deliver.sub_id = 5;
	m->deliver.publish = &m->publish;
	m->deliver.sender = &m->sender;
	m->deliver.call_token = 99;
	m->deliver.retained = true;
	m->ok = (Lbus__Ok)LBUS__OK__INIT;
	m->ok = (Lbus__Ok){m->ok.base, 6, 42};
	m->result = (Lbus__CallResult)LBUS__CALL_RESULT__INIT;
	m->result = (Lbus__CallResult){
	    m->result.base, 77,	       {4, (uint8_t *)"pong"}, LBUS__ERROR_CODE__ERR_TIMEOUT,
	    "timed out",    &m->sender};
	m->dropped = (Lbus__Dropped)LBUS__DROPPED__INIT;
	m->dropped = (Lbus__Dropped){m->dropped.base, 5, 300};
	m->monitor_event = (Lbus__MonitorEvent)LBUS__MONITOR_EVENT__INIT;
	m->monitor_event = (Lbus__MonitorEvent){m->monitor_event.base,
						LBUS__MONITOR_KIND__MON_CALL,
						&m->sender,
						3,
						receivers,
						"fuzz/a",
						"fuzz.name",
						{2, (uint8_t *)"hi"},
						99,
						true,
						LBUS__ERROR_CODE__ERR_TIMEOUT};
}

/* The answers to list and stats. */
static void introspection_init(struct all_msgs *m)
{
	static char *names[] = {"fuzz.a", "fuzz.b"};

	m->counters = (Lbus__ClientCounters)LBUS__CLIENT_COUNTERS__INIT;
	m->counters = (Lbus__ClientCounters){m->counters.base, 1, 2, 300, 400, 5, 6};
	m->sub_info = (Lbus__SubscriptionInfo)LBUS__SUBSCRIPTION_INFO__INIT;
	m->sub_info =
	    (Lbus__SubscriptionInfo){m->sub_info.base, 5, "fuzz/#", "fuzz.g", LBUS__POLICY__POLICY_BLOCK};
	m->subs[0] = &m->sub_info;
	m->info = (Lbus__ClientInfo)LBUS__CLIENT_INFO__INIT;
	m->info = (Lbus__ClientInfo){m->info.base, 7, 2,       names, 1234,	    1000, 1000,
				     "fuzzer",	   1, m->subs, 512,   &m->counters, true, 1700000000000ull};
	m->infos[0] = &m->info;
	m->client_list = (Lbus__ClientList)LBUS__CLIENT_LIST__INIT;
	m->client_list.n_clients = 1;
	m->client_list.clients = m->infos;
	m->broker_counters = (Lbus__BrokerCounters)LBUS__BROKER_COUNTERS__INIT;
	m->broker_counters =
	    (Lbus__BrokerCounters){m->broker_counters.base, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
	m->client_stats = (Lbus__ClientStats)LBUS__CLIENT_STATS__INIT;
	m->client_stats = (Lbus__ClientStats){m->client_stats.base, 7, &m->counters, 512};
	m->cstats[0] = &m->client_stats;
	m->stats_reply = (Lbus__Stats)LBUS__STATS__INIT;
	m->stats_reply = (Lbus__Stats){m->stats_reply.base, &m->broker_counters, 1, m->cstats};
}

/* Point f's oneof at the message of kind k. */
static void frame_set(Lbus__Frame *f, struct all_msgs *m, uint32_t k)
{
	void *const by_kind[LBUS_K_MAX + 1] = {
	    [LBUS_K_HELLO] = &m->hello,
	    [LBUS_K_WELCOME] = &m->welcome,
	    [LBUS_K_ERROR] = &m->error,
	    [LBUS_K_PING] = &m->ping,
	    [LBUS_K_PONG] = &m->pong,
	    [LBUS_K_SUBSCRIBE] = &m->subscribe,
	    [LBUS_K_UNSUBSCRIBE] = &m->unsubscribe,
	    [LBUS_K_PUBLISH] = &m->publish,
	    [LBUS_K_DELIVER] = &m->deliver,
	    [LBUS_K_TAKE_NAME] = &m->name,
	    [LBUS_K_RELEASE_NAME] = &m->name,
	    [LBUS_K_SEND] = &m->send,
	    [LBUS_K_OK] = &m->ok,
	    [LBUS_K_CALL] = &m->call,
	    [LBUS_K_REPLY] = &m->reply,
	    [LBUS_K_RESULT] = &m->result,
	    [LBUS_K_DROPPED] = &m->dropped,
	    [LBUS_K_QUERY_NAME] = &m->name,
	    [LBUS_K_LIST] = &m->list,
	    [LBUS_K_CLIENT_LIST] = &m->client_list,
	    [LBUS_K_STATS] = &m->stats,
	    [LBUS_K_STATS_REPLY] = &m->stats_reply,
	    [LBUS_K_MONITOR] = &m->monitor,
	    [LBUS_K_MONITOR_EVENT] = &m->monitor_event,
	};
	f->kind_case = (Lbus__Frame__KindCase)k;
	/* Every member of the oneof is a message pointer at the same place. */
	f->hello = by_kind[k];
}

static bool kind_is_client_request(uint32_t k)
{
	switch (k) {
	case LBUS_K_PING:
	case LBUS_K_PONG:
	case LBUS_K_SUBSCRIBE:
	case LBUS_K_UNSUBSCRIBE:
	case LBUS_K_PUBLISH:
	case LBUS_K_TAKE_NAME:
	case LBUS_K_RELEASE_NAME:
	case LBUS_K_SEND:
	case LBUS_K_CALL:
	case LBUS_K_REPLY:
	case LBUS_K_QUERY_NAME:
	case LBUS_K_LIST:
	case LBUS_K_STATS:
	case LBUS_K_MONITOR:
		return true;
	default:
		return false;
	}
}

/* Frames written by proto/wire-encode.c: publishes and the three kinds of Deliver. */
static void seeds_add_wire(struct fz_seeds *s)
{
	static const struct lbus_wire_sender snd = {
	    .id = 42, .name = "fuzz.a", .name_len = 6, .pid = 1234, .uid = 1000, .gid = 1000};
	static const uint8_t call[] = {0x0a, 0x06, 'f', 'u', 'z', 'z', '/', 'c', 0x12, 0x01, 'x', 0x18, 0x4d};
	uint8_t buf[256], sender[64], body[192];
	size_t n;

	n = lbus_wire_publish_frame_encode(buf, "fuzz/a/b", 8, "payload", 7, false, 0);
	seeds_add(s, LBUS_K_PUBLISH, true, buf, n);
	n = lbus_wire_publish_frame_encode(buf, "fuzz/r", 6, "kept", 4, true, 300);
	seeds_add(s, LBUS_K_PUBLISH, true, buf, n);
	n = lbus_wire_publish_frame_encode(buf, "fuzz/e", 6, "", 0, false, 1);
	seeds_add(s, LBUS_K_PUBLISH, true, buf, n);

	size_t slen = lbus_wire_sender_encode(sender, &snd);
	for (uint32_t what = LBUS_D_PUBLISH; what <= LBUS_D_CALL; what++) {
		size_t blen = lbus_wire_deliver_body_encode(body, what, call, sizeof(call), sender, slen,
							    what == LBUS_D_CALL ? 99 : 0);
		n = lbus_wire_deliver_header(buf, what == LBUS_D_SEND ? 0 : 5, what == LBUS_D_PUBLISH, blen,
					     0);
		memcpy(buf + n, body, blen);
		seeds_add(s, LBUS_K_DELIVER, false, buf, n + blen);
	}
}

void fz_seeds_build(struct fz_seeds *s)
{
	struct all_msgs m;
	Lbus__Frame f;

	memset(s, 0, sizeof(*s));
	requests_init(&m);
	answers_init(&m);
	introspection_init(&m);
	for (uint32_t k = 1; k <= LBUS_K_MAX; k++) {
		f = (Lbus__Frame)LBUS__FRAME__INIT;
		frame_set(&f, &m, k);
		f.req_id = k * 3;
		seeds_add_frame(s, &f, kind_is_client_request(k));
	}
	/* Deliveries of a send and of a call, as protobuf-c writes them. */
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	frame_set(&f, &m, LBUS_K_DELIVER);
	m.deliver.publish = NULL;
	m.deliver.send = &m.send;
	seeds_add_frame(s, &f, false);
	m.deliver.send = NULL;
	m.deliver.call = &m.call;
	seeds_add_frame(s, &f, false);
	/* A call to a topic, a hello with a small max_frame, a frame with only
	 * req_id and fds (no kind). */
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	frame_set(&f, &m, LBUS_K_CALL);
	m.call.target = "fuzz/svc";
	seeds_add_frame(s, &f, true);
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	frame_set(&f, &m, LBUS_K_HELLO);
	m.hello.max_frame = LBUS_MIN_MAX_FRAME;
	seeds_add_frame(s, &f, false);
	f = (Lbus__Frame)LBUS__FRAME__INIT;
	f.req_id = 9;
	f.fds = 1;
	seeds_add_frame(s, &f, false);
	seeds_add_wire(s);
}

void fz_seeds_free(struct fz_seeds *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].data);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

const struct fz_seed *fz_seed_pick(struct fz_rng *r, const struct fz_seeds *s, bool client_only)
{
	for (;;) {
		const struct fz_seed *seed = &s->v[fz_rng_below(r, s->n)];
		if (!client_only || seed->client)
			return seed;
	}
}

/* ---- mutations ------------------------------------------------------------------- */

static const uint8_t interesting_bytes[] = {0x00, 0x01, 0x02, 0x07, 0x08, 0x0a, 0x12, 0x7f,
					    0x80, 0x81, 0xfe, 0xff, '+',  '#',	'/',  '$'};

/* A frame length worth trying in the 4-byte header. */
static uint32_t interesting_len(struct fz_rng *r, size_t buf_len)
{
	const uint32_t lens[] = {0,
				 1,
				 3,
				 4,
				 (uint32_t)buf_len - 5,
				 (uint32_t)buf_len - 4,
				 (uint32_t)buf_len - 3,
				 (uint32_t)buf_len + 60,
				 LBUS_MIN_MAX_FRAME,
				 LBUS_MIN_MAX_FRAME + 1,
				 LBUS_DEFAULT_MAX_FRAME,
				 LBUS_DEFAULT_MAX_FRAME + 1,
				 0x7fffffffu,
				 0xffffffffu};
	return fz_rng_below(r, 4) ? lens[fz_rng_below(r, sizeof(lens) / sizeof(lens[0]))]
				  : (uint32_t)fz_rng_next(r);
}

/* Edit a byte as if it were a varint length: nudge it, or make it a
 * continuation byte so the varint swallows what follows. */
static void edit_varint(struct fz_rng *r, struct fz_buf *b, size_t at)
{
	switch (fz_rng_below(r, 4)) {
	case 0:
		b->data[at] += (uint8_t)(1 + fz_rng_below(r, 3));
		break;
	case 1:
		b->data[at] -= (uint8_t)(1 + fz_rng_below(r, 3));
		break;
	case 2:
		b->data[at] |= 0x80;
		break;
	default: {
		static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
		fz_buf_insert(b, at, huge, 1 + fz_rng_below(r, sizeof(huge)));
	}
	}
}

static void mutate_once(struct fz_rng *r, struct fz_buf *b, const struct fz_seeds *s)
{
	uint8_t rnd[16];
	size_t at = b->len ? fz_rng_below(r, b->len) : 0;

	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)fz_rng_next(r);
	switch (fz_rng_below(r, 11)) {
	case 0: /* bit flip */
		if (b->len)
			b->data[at] ^= (uint8_t)(1u << fz_rng_below(r, 8));
		break;
	case 1: /* interesting byte */
		if (b->len)
			b->data[at] = interesting_bytes[fz_rng_below(r, sizeof(interesting_bytes))];
		break;
	case 2: /* truncate */
		b->len = at;
		break;
	case 3: /* insert random bytes */
		fz_buf_insert(b, at, rnd, 1 + fz_rng_below(r, 8));
		break;
	case 4: /* delete a range */
		if (b->len)
			fz_buf_erase(b, at, 1 + fz_rng_below(r, b->len - at));
		break;
	case 5: { /* splice: our head, another seed's tail */
		const struct fz_seed *o = fz_seed_pick(r, s, false);
		size_t from = fz_rng_below(r, o->len);
		b->len = at;
		fz_buf_append(b, o->data + from, o->len - from);
		break;
	}
	case 6: /* the frame header's length */
		if (b->len >= 4)
			lbus_frame_put_len(b->data, interesting_len(r, b->len));
		break;
	case 7: /* a protobuf length or varint */
		if (b->len > 4)
			edit_varint(r, b, 4 + fz_rng_below(r, b->len - 4));
		break;
	case 8: /* duplicate a range */
		if (b->len) {
			size_t n = 1 + fz_rng_below(r, b->len - at > 32 ? 32 : b->len - at);
			uint8_t copy[32];
			memcpy(copy, b->data + at, n);
			fz_buf_insert(b, fz_rng_below(r, b->len + 1), copy, n);
		}
		break;
	case 9: /* overwrite with random bytes */
		for (size_t i = 0; i < sizeof(rnd) && at + i < b->len; i++)
			b->data[at + i] = rnd[i];
		break;
	default: { /* append a whole seed */
		const struct fz_seed *o = fz_seed_pick(r, s, false);
		fz_buf_append(b, o->data, o->len);
	}
	}
}

void fz_mutate(struct fz_rng *r, struct fz_buf *b, const struct fz_seeds *s)
{
	size_t n = 1 + fz_rng_below(r, 4);

	for (size_t i = 0; i < n; i++)
		mutate_once(r, b, s);
}
