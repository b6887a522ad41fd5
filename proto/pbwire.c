/* SPDX-License-Identifier: MIT */
/*
 * Protobuf wire-format primitives (see pbwire.h): a field iterator that
 * validates as it goes, and writers for the few field shapes the hot path
 * needs.
 */
#include <errno.h>
#include <string.h>

#include "pbwire.h"

size_t lbus_pb_get_varint_slow(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (size_t i = 0; i < 10; i++) {
		if (p + i >= end)
			return 0;
		uint8_t byte = p[i];
		if (i == 9 && byte > 1)
			return 0; /* more than 64 bits */
		r |= (uint64_t)(byte & 0x7f) << (7 * i);
		if (!(byte & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

int lbus_pb_next_slow(struct lbus_pb_reader *r, struct lbus_pb_field *f)
{
	uint64_t key, v;
	size_t n;

	if (r->p >= r->end)
		return 0;
	n = lbus_pb_get_varint(r->p, r->end, &key);
	if (!n || key >> 3 == 0 || key >> 3 > 0x1fffffff)
		return -EPROTO;
	r->p += n;
	f->num = (uint32_t)(key >> 3);
	f->type = (uint32_t)(key & 7);
	f->u = 0;
	f->data = NULL;
	f->len = 0;
	switch (f->type) {
	case LBUS_PB_VARINT:
		n = lbus_pb_get_varint(r->p, r->end, &f->u);
		if (!n)
			return -EPROTO;
		r->p += n;
		return 1;
	case LBUS_PB_I64:
		if (r->end - r->p < 8)
			return -EPROTO;
		memcpy(&f->u, r->p, 8); /* little-endian hosts only (x86, arm) */
		r->p += 8;
		return 1;
	case LBUS_PB_I32: {
		uint32_t u32;
		if (r->end - r->p < 4)
			return -EPROTO;
		memcpy(&u32, r->p, 4);
		f->u = u32;
		r->p += 4;
		return 1;
	}
	case LBUS_PB_LEN:
		n = lbus_pb_get_varint(r->p, r->end, &v);
		if (!n)
			return -EPROTO;
		r->p += n;
		if (v > (uint64_t)(r->end - r->p))
			return -EPROTO;
		f->data = r->p;
		f->len = (size_t)v;
		r->p += v;
		return 1;
	default:
		return -EPROTO; /* groups (3, 4) and reserved types */
	}
}

size_t lbus_pb_put_len_header(uint8_t *out, uint32_t num, size_t len)
{
	size_t n = lbus_pb_put_tag(out, num, LBUS_PB_LEN);
	return n + lbus_pb_put_varint(out + n, len);
}

size_t lbus_pb_put_bytes(uint8_t *out, uint32_t num, const void *data, size_t len, bool skip_empty)
{
	if (len == 0 && skip_empty)
		return 0;
	size_t n = lbus_pb_put_len_header(out, num, len);
	if (len)
		memcpy(out + n, data, len);
	return n + len;
}

size_t lbus_pb_put_varint_field(uint8_t *out, uint32_t num, uint64_t v)
{
	if (v == 0)
		return 0;
	size_t n = lbus_pb_put_tag(out, num, LBUS_PB_VARINT);
	return n + lbus_pb_put_varint(out + n, v);
}

/* ---- table-driven decoding ------------------------------------------------------ */

static void put_ptr(void *out, uint16_t off, const void *v)
{
	memcpy((char *)out + off, &v, sizeof(v));
}
static void put_size(void *out, uint16_t off, size_t v)
{
	memcpy((char *)out + off, &v, sizeof(v));
}
static void put_u64(void *out, uint16_t off, uint64_t v)
{
	memcpy((char *)out + off, &v, sizeof(v));
}
static void put_bool(void *out, uint16_t off, bool v)
{
	memcpy((char *)out + off, &v, sizeof(v));
}

static void put_u32(void *out, uint16_t off, uint32_t v)
{
	memcpy((char *)out + off, &v, sizeof(v));
}

static uint32_t get_u32(const void *out, uint16_t off)
{
	uint32_t v;
	memcpy(&v, (const char *)out + off, sizeof(v));
	return v;
}

static uint32_t wire_type_of(uint8_t store)
{
	bool len = store == LBUS_PB_S_BYTES || store == LBUS_PB_S_MSG || store == LBUS_PB_S_ONEOF;

	return len ? LBUS_PB_LEN : LBUS_PB_VARINT;
}

/* Store field f as d says. 0, or -EPROTO (wrong wire type, a second member
 * of a oneof, a bad nested message). */
static int field_store(const struct lbus_pb_field_desc *d, const struct lbus_pb_field *f, void *out)
{
	if (f->type != wire_type_of(d->store))
		return -EPROTO;
	switch (d->store) {
	case LBUS_PB_S_ONEOF:
		if (get_u32(out, d->case_off))
			return -EPROTO;
		put_u32(out, d->case_off, f->num);
		/* fall through */
	case LBUS_PB_S_BYTES:
		put_ptr(out, d->off, f->data);
		put_size(out, d->len_off, f->len);
		return 0;
	case LBUS_PB_S_U64:
		put_u64(out, d->off, f->u);
		return 0;
	case LBUS_PB_S_U32:
		put_u32(out, d->off, (uint32_t)f->u);
		return 0;
	case LBUS_PB_S_BOOL:
		put_bool(out, d->off, f->u != 0);
		return 0;
	default: /* LBUS_PB_S_MSG */
		return lbus_pb_decode(d->sub, f->data, f->len, (char *)out + d->off);
	}
}

static const struct lbus_pb_field_desc *field_find(const struct lbus_pb_msg_desc *m, uint32_t num)
{
	for (size_t i = 0; i < m->n; i++)
		if (num >= m->fields[i].num && num <= m->fields[i].last)
			return &m->fields[i];
	return NULL;
}

int lbus_pb_decode_fields(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out)
{
	struct lbus_pb_reader r;
	struct lbus_pb_field f;
	int ret;

	lbus_pb_reader_init(&r, p, len);
	while ((ret = lbus_pb_next(&r, &f)) > 0) {
		const struct lbus_pb_field_desc *d = field_find(m, f.num);
		if (d && (ret = field_store(d, &f, out)) < 0)
			return ret;
	}
	return ret;
}

bool lbus_pb_decode_in_order(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out)
{
	return m->in_order(p, len, out);
}

int lbus_pb_decode(const struct lbus_pb_msg_desc *m, const uint8_t *p, size_t len, void *out)
{
	memset(out, 0, m->size);
	if (m->in_order(p, len, out))
		return 0;
	memset(out, 0, m->size);
	return lbus_pb_decode_fields(m, p, len, out);
}
