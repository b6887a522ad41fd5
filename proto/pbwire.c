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
