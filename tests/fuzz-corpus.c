/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the libFuzzer targets: `fuzz-corpus DIR` fills
 * DIR/<target>/ with seed-* files (the committed tests/corpus/ is its
 * output; run it again after a change of the protocol, then commit). Inputs
 * that once crashed a target are kept beside them as crash-* files, by hand.
 *
 *   fuzz-decode  every seed frame of fuzz-mutate.c, one per file;
 *   fuzz-inproc  client frames spread over connections in fuzz-inproc.c's
 *                op format, a publish/subscribe/call exchange, and the same
 *                with small limits, a stalled reader and a hang-up;
 *   fuzz-client  broker frames answering what fuzz-client.c's library asks
 *                (subscriptions 1 and 2, call 1), plus every broker seed;
 *   fuzz-topic   patterns and topics, one per line;
 *   fuzz-config  configuration files: keys, units, rules, errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-mutate.h"
#include "frame.h"
#include "lbus-limits.h"
#include "lbus.pb-c.h"

static const char *out_dir;

static void write_seed(const char *target, const char *name, const void *p, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- fuzz-inproc: ops ------------------------------------------------------------ */

/* Op "frame" (fuzz-inproc.c): 1 for a body under 256 bytes, else 2. */
static void op_frame(struct fz_buf *b, unsigned conn, const uint8_t *body, size_t len)
{
	uint8_t op[3];

	if (len < 256) {
		op[0] = (uint8_t)(conn | 1u << 2);
		op[1] = (uint8_t)len;
		fz_buf_append(b, op, 2);
	} else {
		op[0] = (uint8_t)(conn | 2u << 2);
		op[1] = (uint8_t)(len >> 8);
		op[2] = (uint8_t)len;
		fz_buf_append(b, op, 3);
	}
	fz_buf_append(b, body, len);
}

static void op_pack(struct fz_buf *b, unsigned conn, const Lbus__Frame *f)
{
	uint8_t buf[1024];
	size_t len = lbus__frame__pack(f, buf);

	op_frame(b, conn, buf, len);
}

static void op_plain(struct fz_buf *b, unsigned conn, unsigned what, unsigned n)
{
	uint8_t op[2] = {(uint8_t)(conn | what << 2), (uint8_t)n};

	fz_buf_append(b, op, 2);
}

/* Subscribe on 1, take a name on 2, publish/send/call from 0, reply on 2. */
static void inproc_exchange(struct fz_buf *b, unsigned settings)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Subscribe s = LBUS__SUBSCRIBE__INIT;
	Lbus__NameRequest name = LBUS__NAME_REQUEST__INIT;
	Lbus__Publish pub = LBUS__PUBLISH__INIT;
	Lbus__Call call = LBUS__CALL__INIT;
	Lbus__Reply reply = LBUS__REPLY__INIT;
	uint8_t u = (uint8_t)settings;

	fz_buf_append(b, &u, 1);
	s.sub_id = 1;
	s.pattern = "a/#";
	s.policy = LBUS__POLICY__POLICY_BLOCK;
	f.kind_case = LBUS__FRAME__KIND_SUBSCRIBE;
	f.subscribe = &s;
	f.req_id = 1;
	op_pack(b, 1, &f);
	op_plain(b, 1, 4, 0); /* subscriber 1 stops reading */
	name.name = "svc";
	f.kind_case = LBUS__FRAME__KIND_TAKE_NAME;
	f.take_name = &name;
	op_pack(b, 2, &f);
	pub.topic = "a/b";
	pub.payload = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
	pub.retain = true;
	f.kind_case = LBUS__FRAME__KIND_PUBLISH;
	f.publish = &pub;
	f.req_id = 2;
	for (int i = 0; i < 4; i++)
		op_pack(b, 0, &f);
	call.target = "svc";
	call.call_id = 1;
	call.payload = (ProtobufCBinaryData){1, (uint8_t *)"q"};
	f.kind_case = LBUS__FRAME__KIND_CALL;
	f.call = &call;
	op_pack(b, 0, &f);
	reply.call_token = 1;
	reply.payload = (ProtobufCBinaryData){1, (uint8_t *)"r"};
	f.kind_case = LBUS__FRAME__KIND_REPLY;
	f.reply = &reply;
	f.req_id = 0;
	op_pack(b, 2, &f);
	op_plain(b, 1, 4, 0); /* reads again */
	op_plain(b, 2, 3, 0); /* hangs up, reconnects */
	op_plain(b, 0, 5, 7);
}

static void inproc_seeds(const struct fz_seeds *s)
{
	struct fz_buf b = {0};
	char name[32];
	unsigned n = 0;

	for (size_t i = 0; i < s->n; i += 4, n++) {
		uint8_t settings = (uint8_t)(0xf0 | (n & 3) | (n & 1 ? 4 : 0) | (n & 2 ? 8 : 0));

		b.len = 0;
		fz_buf_append(&b, &settings, 1);
		for (size_t j = i; j < i + 4 && j < s->n; j++)
			if (s->v[j].client)
				op_frame(&b, (unsigned)j & 3, s->v[j].data + LBUS_FRAME_HEADER,
					 s->v[j].len - LBUS_FRAME_HEADER);
		snprintf(name, sizeof(name), "frames-%02u", n);
		write_seed("fuzz-inproc", name, b.data, b.len);
	}
	b.len = 0;
	inproc_exchange(&b, 0xf2);
	write_seed("fuzz-inproc", "exchange", b.data, b.len);
	b.len = 0;
	inproc_exchange(&b, 0xfe);
	write_seed("fuzz-inproc", "exchange-small", b.data, b.len);
	/* no hello yet: the input says it, in two raw pieces */
	b.len = 0;
	fz_buf_append(&b, "\x00", 1);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == 1 && s->v[i].len > 6) {
			op_plain(&b, 0, 0, 5);
			fz_buf_append(&b, s->v[i].data, 5);
			op_plain(&b, 0, 0, (unsigned)s->v[i].len - 5);
			fz_buf_append(&b, s->v[i].data + 5, s->v[i].len - 5);
			break;
		}
	write_seed("fuzz-inproc", "hello-split", b.data, b.len);
	fz_buf_free(&b);
}

/* ---- fuzz-client: a broker's answers ------------------------------------------ */

static void piece(struct fz_buf *b, const Lbus__Frame *f)
{
	uint8_t buf[1024];
	size_t len = lbus__frame__pack(f, buf);
	uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};

	fz_buf_append(b, hdr, 2);
	fz_buf_append(b, buf, len);
}

static void client_answers(struct fz_buf *b)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Ok ok = LBUS__OK__INIT;
	Lbus__Deliver d = LBUS__DELIVER__INIT;
	Lbus__Publish pub = LBUS__PUBLISH__INIT;
	Lbus__Call call = LBUS__CALL__INIT;
	Lbus__Sender snd = LBUS__SENDER__INIT;
	Lbus__CallResult res = LBUS__CALL_RESULT__INIT;
	Lbus__Dropped drop = LBUS__DROPPED__INIT;

	f.kind_case = LBUS__FRAME__KIND_OK;
	f.ok = &ok;
	ok.request = LBUS__FRAME__KIND_SUBSCRIBE;
	for (uint32_t id = 1; id <= 3; id++) {
		f.req_id = id;
		piece(b, &f);
	}
	f.req_id = 0;
	snd.id = 9;
	snd.name = "peer";
	pub.topic = "x/y";
	pub.payload = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
	d.sub_id = 1;
	d.publish = &pub;
	d.sender = &snd;
	f.kind_case = LBUS__FRAME__KIND_DELIVER;
	f.deliver = &d;
	piece(b, &f);
	call.target = "svc/a";
	call.call_id = 5;
	call.payload = (ProtobufCBinaryData){1, (uint8_t *)"q"};
	d.sub_id = 2;
	d.publish = NULL;
	d.call = &call;
	d.call_token = 44;
	piece(b, &f);
	res.call_id = 1;
	res.payload = (ProtobufCBinaryData){2, (uint8_t *)"ok"};
	res.sender = &snd;
	f.kind_case = LBUS__FRAME__KIND_RESULT;
	f.result = &res;
	piece(b, &f);
	drop.sub_id = 1;
	drop.count = 3;
	f.kind_case = LBUS__FRAME__KIND_DROPPED;
	f.dropped = &drop;
	piece(b, &f);
}

static void client_seeds(const struct fz_seeds *s)
{
	struct fz_buf b = {0};
	char name[32];
	uint8_t settings;

	for (unsigned mode = 0; mode < 4; mode++) {
		b.len = 0;
		settings = (uint8_t)(2 | (mode & 1 ? 4 : 0) | (mode & 2 ? 8 : 0));
		fz_buf_append(&b, &settings, 1);
		client_answers(&b);
		snprintf(name, sizeof(name), "answers-%u", mode);
		write_seed("fuzz-client", name, b.data, b.len);
	}
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].client)
			continue;
		b.len = 0;
		settings = s->v[i].kind == 2 ? 1 : 0; /* a Welcome: as the first frame */
		fz_buf_append(&b, &settings, 1);
		fz_buf_append(&b, s->v[i].data, s->v[i].len);
		snprintf(name, sizeof(name), "frame-%02zu", i);
		write_seed("fuzz-client", name, b.data, b.len);
	}
	fz_buf_free(&b);
}

/* ---- text corpora ---------------------------------------------------------------- */

static void text_seeds(void)
{
	static const char *const topics[][2] = {
	    {"levels", "a/b/c\na/+/c\na/#\n#\n+\na/b\na\n/a\na/\na//b\n+/+\n+//+"},
	    {"dollar", "$lbus/clients/1\n$lbus/#\n#\n+/clients/+\n$x\n$\n+"},
	    {"invalid", "a/+b\na/#/b\na#\n\nx\x00y\n\xc3\x28\n\xe2\x82\xac/+"},
	};
	static const char *const configs[][2] = {
	    {"keys", "# comment\nmax_frame = 65536\nmax_queue = 1048576\nhello_timeout_ms = 2s\n"
		     "frame_timeout_ms = 500ms\nretained_max = 0\nsocket_mode = 0600\nmax_clients = 10\n"
		     "max_clients_per_uid = 5\nmax_names_per_client = 3\n"
		     "max_subscriptions_per_client = 7\nshutdown_timeout_ms = 100\n"},
	    {"rules", "allow user 1000 connect,publish,subscribe sensors/#\n"
		      "deny user 1000 publish sensors/private/#  # a comment\n"
		      "allow group 100 connect,own org.example.*\nallow everyone call svc\n"
		      "deny everyone all\nallow user root monitor,introspect\n"},
	    {"errors", "max_frame = 1\nnope = 3\n= 4\nmax_queue\n"},
	};

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		write_seed("fuzz-topic", topics[i][0], topics[i][1], strlen(topics[i][1]));
	/* with a NUL inside a pattern */
	write_seed("fuzz-topic", "nul", "a/b\na\0/b\n+/b", 12);
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
		write_seed("fuzz-config", configs[i][0], configs[i][1], strlen(configs[i][1]));
}

int main(int argc, char **argv)
{
	struct fz_seeds s;
	char name[32];

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz-corpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	fz_seeds_build(&s);
	for (size_t i = 0; i < s.n; i++) {
		snprintf(name, sizeof(name), "%02zu-kind-%u", i, s.v[i].kind);
		write_seed("fuzz-decode", name, s.v[i].data, s.v[i].len);
	}
	inproc_seeds(&s);
	client_seeds(&s);
	text_seeds();
	fz_seeds_free(&s);
	return 0;
}
