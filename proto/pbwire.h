/* SPDX-License-Identifier: MIT */
/*
 * Minimal protobuf wire-format reader and writer under the codecs of
 * wire.h: the hot path (publish, send, call, deliver), where the generated
 * protobuf-c code would allocate per message, and the few small messages
 * read field by field. Everything else uses lbus.pb-c.h. Only proto/ (and
 * tests) use this header: broker/ and libclient/ call wire.h's codecs
 * (check-layers.sh). Unit tests prove that what these write, protoc-c
 * decodes, and the reverse.
 *
 * Reader: iterate fields with lbus_pb_next(); unknown fields are returned
 * like any other and the caller skips them, so newer peers stay compatible.
 *
 * Decoder: a message is described once by a table (struct lbus_pb_msg_desc:
 * field number, how to store it, where in the caller's struct), in the
 * spirit of Wayland's signature-driven marshalling, and lbus_pb_decode()
 * decodes any such message: first along the table's order (the layout our
 * encoders write, one-byte tags, each field at most once: a straight pass
 * with no search), else with the general loop, which accepts every valid
 * encoding (any order, repeats: the last wins, as in protobuf-c). Both give
 * the same result for any input (fuzz-decode checks it). Every table names
 * the protoc-c descriptor of its message; tests/test-fields.c checks each
 * entry's number and wire type against it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
	LBUS_PB_VARINT = 0,
	LBUS_PB_I64 = 1,
	LBUS_PB_LEN = 2,
	LBUS_PB_I32 = 5,
};

struct lbus_pb_reader {
	const uint8_t *p;
	const uint8_t *end;
};

struct lbus_pb_field {
	uint32_t num;	     /* field number */
	uint32_t type;	     /* LBUS_PB_* wire type */
	uint64_t u;	     /* VARINT, I64, I32 value */
	const uint8_t *data; /* LEN: bytes */
	size_t len;	     /* LEN: byte count */
};

static inline void lbus_pb_reader_init(struct lbus_pb_reader *r, const uint8_t *data, size_t len)
{
	r->p = data;
	r->end = data + len;
}

/* The general cases of lbus_pb_get_varint() and lbus_pb_next(). */
size_t lbus_pb_get_varint_slow(const uint8_t *p, const uint8_t *end, uint64_t *v);
int lbus_pb_next_slow(struct lbus_pb_reader *r, struct lbus_pb_field *f);

/* Read a varint; returns bytes consumed, 0 if invalid or truncated. Inline
 * for the one-byte case (tags, small lengths and values). */
static inline size_t lbus_pb_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	if (p < end && !(*p & 0x80)) {
		*v = *p;
		return 1;
	}
	return lbus_pb_get_varint_slow(p, end, v);
}

/*
 * Read the next field. Returns 1 and fills *f, 0 at the end of the input,
 * -EPROTO when the bytes are not valid protobuf (bad varint, truncated
 * field, field number 0, groups). Inline for a one-byte tag followed by a
 * one-byte varint or length: most fields of the hot messages.
 */
static inline int lbus_pb_next(struct lbus_pb_reader *r, struct lbus_pb_field *f)
{
	if (r->end - r->p >= 2 && r->p[0] >= 8 && r->p[0] < 0x80 && r->p[1] < 0x80) {
		uint8_t key = r->p[0], b = r->p[1];
		if ((key & 7) == LBUS_PB_VARINT) {
			f->num = key >> 3;
			f->type = LBUS_PB_VARINT;
			f->u = b;
			f->data = NULL;
			f->len = 0;
			r->p += 2;
			return 1;
		}
		if ((key & 7) == LBUS_PB_LEN && b <= r->end - r->p - 2) {
			f->num = key >> 3;
			f->type = LBUS_PB_LEN;
			f->u = 0;
			f->data = r->p + 2;
			f->len = b;
			r->p += 2 + (size_t)b;
			return 1;
		}
	}
	return lbus_pb_next_slow(r, f);
}

/* Bytes a varint takes. */
static inline size_t lbus_pb_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Write a varint; returns bytes written (at most 10). */
static inline size_t lbus_pb_put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static inline size_t lbus_pb_tag_len(uint32_t num)
{
	return lbus_pb_varint_len((uint64_t)num << 3);
}

static inline size_t lbus_pb_put_tag(uint8_t *out, uint32_t num, uint32_t type)
{
	return lbus_pb_put_varint(out, (uint64_t)num << 3 | type);
}

/* Size of a LEN field with a body of len bytes (tag + length + body). */
static inline size_t lbus_pb_len_field_size(uint32_t num, size_t len)
{
	return lbus_pb_tag_len(num) + lbus_pb_varint_len(len) + len;
}

/* Size of a VARINT field; 0 when v == 0 (proto3 omits defaults). */
static inline size_t lbus_pb_varint_field_size(uint32_t num, uint64_t v)
{
	return v ? lbus_pb_tag_len(num) + lbus_pb_varint_len(v) : 0;
}

/* Write tag + length + body; returns bytes written. Writes nothing for len 0
 * when skip_empty is true (proto3 default). */
size_t lbus_pb_put_bytes(uint8_t *out, uint32_t num, const void *data, size_t len, bool skip_empty);
/* Write tag + length header of a LEN field whose body follows. */
size_t lbus_pb_put_len_header(uint8_t *out, uint32_t num, size_t len);
/* Write a VARINT field unless v == 0; returns bytes written. */
size_t lbus_pb_put_varint_field(uint8_t *out, uint32_t num, uint64_t v);

/* ---- table-driven decoding ---------------------------------------------------- */

struct ProtobufCMessageDescriptor;

/* How a field is stored into the caller's struct (and the wire type it must
 * have: LEN for BYTES, MSG, ONEOF; VARINT for the others). */
enum lbus_pb_store {
	LBUS_PB_S_BYTES, /* const uint8_t * (or const char *) at off, size_t at len_off */
	LBUS_PB_S_U64,	 /* uint64_t at off */
	LBUS_PB_S_U32,	 /* uint32_t at off (the low 32 bits, as protobuf-c) */
	LBUS_PB_S_BOOL,	 /* bool at off (value != 0) */
	LBUS_PB_S_MSG,	 /* a nested message decoded with sub into the struct at off */
	/* One member of a oneof: bytes as BYTES, and its field number into the
	 * uint32_t at case_off; a second member of the same oneof is -EPROTO. */
	LBUS_PB_S_ONEOF,
};

struct lbus_pb_field_desc {
	uint32_t num;  /* field number */
	uint32_t last; /* ONEOF: the last number of a range of members; else num */
	uint8_t store; /* enum lbus_pb_store */
	uint16_t off;
	uint16_t len_off;
	uint16_t case_off;
	const struct lbus_pb_msg_desc *sub; /* MSG */
};

struct lbus_pb_msg_desc {
	const struct ProtobufCMessageDescriptor *proto; /* the generated descriptor */
	size_t size;					/* of the caller's struct */
	size_t n;
	const struct lbus_pb_field_desc *fields; /* in the order our encoders write */
	/* The in-order pass compiled for this table (LBUS_PB_IN_ORDER_FN). */
	bool (*in_order)(const uint8_t *p, size_t len, void *out);
};

/* Decode a message into out (a struct of m->size bytes, zeroed first).
 * Pointers point into the input (strings are not NUL-terminated); unknown
 * fields are skipped. 0, or -EPROTO: not valid protobuf, or a known field
 * with the wrong wire type. */
int lbus_pb_decode(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out);
/* The pass along the table's order alone: true when the input has that
 * layout (out, zeroed by the caller, then holds the result), false
 * otherwise (out is garbage).
 * lbus_pb_decode() uses it first; tests hold it against the general loop. */
bool lbus_pb_decode_in_order(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out);
/* The general loop alone, on top of what out already holds (no zeroing):
 * for a caller that took the first fields itself. */
int lbus_pb_decode_fields(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out);

/*
 * The in-order pass, inline: given a table the compiler can see (a static
 * const lbus_pb_msg_desc), it unrolls the loop and folds every number,
 * offset and store kind, so the pass compiles to the code one would write
 * by hand for that message. LBUS_PB_IN_ORDER_FN(fn, desc) defines it as a
 * function for desc.in_order; LBUS_PB_DECODE_INLINE is lbus_pb_decode()
 * for such a table, with the zeroing of a known size inline too.
 *
 * lbus_pb_take_in_order_(): 1 the field came next and was taken, 0 it is
 * not next, -1 the pass cannot decide (malformed, a second oneof member, a
 * nested message not in order): the general loop will.
 */
static inline __attribute__((always_inline)) int
lbus_pb_take_in_order_(const struct lbus_pb_field_desc *d, const uint8_t **pp, const uint8_t *end, void *out)
{
	const uint8_t *p = *pp;
	char *o = (char *)out;
	uint64_t v;
	size_t n;
	bool is_len = d->store == LBUS_PB_S_BYTES || d->store == LBUS_PB_S_MSG || d->store == LBUS_PB_S_ONEOF;

	if (d->num >= 16 || p >= end ||
	    *p != (uint8_t)(d->num << 3 | (is_len ? LBUS_PB_LEN : LBUS_PB_VARINT)))
		return 0;
	n = lbus_pb_get_varint(p + 1, end, &v);
	if (!n)
		return -1;
	p += 1 + n;
	if (is_len && v > (uint64_t)(end - p))
		return -1;
	switch (d->store) {
	case LBUS_PB_S_ONEOF: {
		uint32_t c;
		memcpy(&c, o + d->case_off, sizeof(c));
		if (c)
			return -1;
		c = d->num;
		memcpy(o + d->case_off, &c, sizeof(c));
	}
		/* fall through */
	case LBUS_PB_S_BYTES: {
		size_t len = (size_t)v;
		memcpy(o + d->off, &p, sizeof(p));
		memcpy(o + d->len_off, &len, sizeof(len));
		p += len;
		break;
	}
	case LBUS_PB_S_MSG:
		memset(o + d->off, 0, d->sub->size);
		if (!d->sub->in_order(p, (size_t)v, o + d->off))
			return -1;
		p += v;
		break;
	case LBUS_PB_S_U64:
		memcpy(o + d->off, &v, sizeof(v));
		break;
	case LBUS_PB_S_U32: {
		uint32_t u = (uint32_t)v;
		memcpy(o + d->off, &u, sizeof(u));
		break;
	}
	default: { /* LBUS_PB_S_BOOL */
		bool b = v != 0;
		memcpy(o + d->off, &b, sizeof(b));
		break;
	}
	}
	*pp = p;
	return 1;
}

static inline __attribute__((always_inline)) bool
lbus_pb_in_order_inline(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out)
{
	const uint8_t *end = p + len;

#pragma GCC unroll 16
	for (size_t i = 0; i < m->n; i++)
		if (lbus_pb_take_in_order_(&m->fields[i], &p, end, out) < 0)
			return false;
	return p == end;
}

#define LBUS_PB_IN_ORDER_FN(fn, desc)                                                                        \
	static bool fn(const uint8_t *p, size_t len, void *out)                                              \
	{                                                                                                    \
		return lbus_pb_in_order_inline(&(desc), p, len, out);                                        \
	}

static inline __attribute__((always_inline)) int
lbus_pb_decode_inline(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out)
{
	memset(out, 0, m->size);
	if (lbus_pb_in_order_inline(m, p, len, out))
		return 0;
	memset(out, 0, m->size);
	return lbus_pb_decode_fields(m, p, len, out);
}
