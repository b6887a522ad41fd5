/* SPDX-License-Identifier: MIT */
/*
 * JSON -> protobuf binary (pbjson.h).
 *
 * The JSON object of a message is first matched against the schema: every
 * key must name a field (by JSON name or proto name, not both), at most one
 * member of a oneof may be set, null means "not set". The fields are then
 * written in number order. A nested message is encoded into a buffer of its
 * own and copied after its length; messages are small next to the copy's
 * cost, and this keeps the writer one pass.
 *
 * Numbers are read from json-c's parse: integers keep their 64 bits (json-c
 * reads up to UINT64_MAX), doubles must be integral for integer fields, and
 * strings are parsed here with the same checks. Errors name the field path
 * ("demo.Reading.celsius").
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"

struct enc {
	char *err;
	size_t errlen;
	int depth;
};

static int encode_message(struct enc *e, const struct pbs_message *m, struct json_object *obj,
			  struct pbj_buf *out);
static int encode_fields(struct enc *e, const struct pbs_message *m, struct json_object *obj,
			 struct pbj_buf *out);

static int enc_fail(struct enc *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int enc_fail(struct enc *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err, e->errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- the buffer ------------------------------------------------------------ */

void pbj_buf_free(struct pbj_buf *b)
{
	free(b->data);
	*b = (struct pbj_buf){0};
}

static int buf_reserve(struct pbj_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 64;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	if (!(p = realloc(b->data, cap)))
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static int put_bytes(struct pbj_buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static int put_varint(struct pbj_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return put_bytes(b, tmp, n);
}

static int put_le(struct pbj_buf *b, uint64_t v, int n)
{
	uint8_t tmp[8];

	for (int i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	return put_bytes(b, tmp, (size_t)n);
}

static int put_tag(struct pbj_buf *b, const struct pbs_field *f, enum pbs_wire wire)
{
	return put_varint(b, (uint64_t)(uint32_t)f->number << 3 | wire);
}

/* Write tag, length and the bytes of sub. */
static int put_len(struct pbj_buf *b, const struct pbs_field *f, const void *p, size_t n)
{
	if (put_tag(b, f, PBS_WIRE_LEN) < 0 || put_varint(b, n) < 0 || put_bytes(b, p, n) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- numbers ---------------------------------------------------------------- */

/* An integer read from JSON: sign and magnitude. */
struct num {
	bool neg;
	uint64_t mag;
};

static int int_from_string(const char *s, struct num *n)
{
	char *end;

	if (!*s || strchr(s, ' ') || strchr(s, '\t'))
		return -EINVAL;
	errno = 0;
	n->neg = s[0] == '-';
	if (n->neg) {
		long long v = strtoll(s, &end, 10);
		n->mag = (uint64_t)0 - (uint64_t)v;
	} else {
		n->mag = strtoull(s, &end, 10);
	}
	return errno || *end ? -EINVAL : 0;
}

static int int_from_json(struct json_object *v, struct num *n)
{
	switch (json_object_get_type(v)) {
	case json_type_int: {
		int64_t i = json_object_get_int64(v);
		n->neg = i < 0;
		n->mag = n->neg ? (uint64_t)0 - (uint64_t)i : json_object_get_uint64(v);
		return 0;
	}
	case json_type_double: {
		double d = json_object_get_double(v);
		if (!isfinite(d) || d != trunc(d) || fabs(d) >= 18446744073709551616.0)
			return -EINVAL;
		n->neg = d < 0;
		n->mag = (uint64_t)fabs(d);
		return n->neg && n->mag > (uint64_t)1 << 63 ? -EINVAL : 0;
	}
	case json_type_string:
		return int_from_string(json_object_get_string(v), n);
	default:
		return -EINVAL;
	}
}

/* Is n within the range of a (signed?) integer of bits bits? */
static bool int_fits(const struct num *n, bool is_signed, int bits)
{
	uint64_t max = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;

	if (!is_signed)
		return !n->neg || n->mag == 0 ? n->mag <= max : false;
	max >>= 1;
	return n->neg ? n->mag <= max + 1 : n->mag <= max;
}

static int64_t num_signed(const struct num *n)
{
	return n->neg ? (int64_t)((uint64_t)0 - n->mag) : (int64_t)n->mag;
}

static int float_from_json(struct json_object *v, double *out)
{
	const char *s;
	char *end;

	if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) {
		*out = json_object_get_double(v);
		if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) == INT64_MAX)
			*out = (double)json_object_get_uint64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "Infinity") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Infinity") == 0)
		*out = -INFINITY;
	else if (!*s || strchr(s, ' ') || (*out = strtod(s, &end), *end) || isnan(*out) || isinf(*out))
		return -EINVAL;
	return 0;
}

static int zigzag_ok(bool is64, int64_t v, uint64_t *out)
{
	*out = is64 ? ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)
		    : (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)((int32_t)v >> 31));
	return 0;
}

static int enum_value(struct enc *e, const struct pbs_field *f, struct json_object *v, uint64_t *out)
{
	struct num n;
	int32_t number;

	if (json_object_is_type(v, json_type_string) &&
	    pbs_enum_number(f->enm, json_object_get_string(v), &number) == 0) {
		*out = (uint64_t)(int64_t)number;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string) && int_from_json(v, &n) == 0 &&
	    int_fits(&n, true, 32)) {
		*out = (uint64_t)num_signed(&n);
		return 0;
	}
	return enc_fail(e, -EINVAL, "%s: %s is not a value of enum %s", f->name,
			json_object_to_json_string(v), f->enm->full_name);
}

static int float_value(struct enc *e, const struct pbs_field *f, struct json_object *v, uint64_t *out)
{
	double d;

	if (float_from_json(v, &d) < 0)
		return enc_fail(e, -EINVAL, "%s: %s is not a number", f->name, json_object_to_json_string(v));
	if (f->type == PBS_DOUBLE) {
		memcpy(out, &d, sizeof(d));
		return 0;
	}
	if (isfinite(d) && isinf((float)d)) /* 3.4028235e+38 rounds to FLT_MAX */
		return enc_fail(e, -EINVAL, "%s: %s is out of the range of a float", f->name,
				json_object_to_json_string(v));
	float x = (float)d;
	uint32_t bits;
	memcpy(&bits, &x, sizeof(bits));
	*out = bits;
	return 0;
}

/* The wire value (varint or fixed bits) of a numeric field from v. */
static int number_value(struct enc *e, const struct pbs_field *f, struct json_object *v, uint64_t *out)
{
	bool is_signed = f->type == PBS_INT32 || f->type == PBS_SINT32 || f->type == PBS_SFIXED32 ||
			 f->type == PBS_INT64 || f->type == PBS_SINT64 || f->type == PBS_SFIXED64;
	int bits = pbs_type_wire(f->type) == PBS_WIRE_I32 || f->type == PBS_INT32 || f->type == PBS_SINT32 ||
			   f->type == PBS_UINT32
		       ? 32
		       : 64;
	struct num n;

	if (f->type == PBS_DOUBLE || f->type == PBS_FLOAT)
		return float_value(e, f, v, out);
	if (f->type == PBS_ENUM)
		return enum_value(e, f, v, out);
	if (f->type == PBS_BOOL) {
		if (!json_object_is_type(v, json_type_boolean))
			return enc_fail(e, -EINVAL, "%s: %s is not true or false", f->name,
					json_object_to_json_string(v));
		*out = json_object_get_boolean(v);
		return 0;
	}
	if (int_from_json(v, &n) < 0 || !int_fits(&n, is_signed, bits))
		return enc_fail(e, -EINVAL, "%s: %s is not a %s%d integer", f->name,
				json_object_to_json_string(v), is_signed ? "" : "non-negative ", bits);
	if (f->type == PBS_SINT32 || f->type == PBS_SINT64)
		return zigzag_ok(bits == 64, num_signed(&n), out);
	*out = is_signed ? (uint64_t)num_signed(&n) : n.mag;
	if (bits == 32 && pbs_type_wire(f->type) == PBS_WIRE_I32)
		*out &= 0xffffffffu;
	return 0;
}

static int put_number(struct pbj_buf *b, enum pbs_wire wire, uint64_t v)
{
	if (wire == PBS_WIRE_I64)
		return put_le(b, v, 8);
	if (wire == PBS_WIRE_I32)
		return put_le(b, v, 4);
	return put_varint(b, v);
}

/* ---- fields ------------------------------------------------------------------ */

/* Write one value of f (a singular field, or one element of a repeated
 * one). always: also when it is zero. */
static int encode_value(struct enc *e, const struct pbs_field *f, struct json_object *v, bool always,
			struct pbj_buf *out)
{
	enum pbs_wire wire = pbs_type_wire(f->type);
	uint64_t x;
	int r;

	if (f->type == PBS_GROUP)
		return enc_fail(e, -EINVAL, "%s: groups are not supported", f->name);
	if (f->type == PBS_MESSAGE) {
		struct pbj_buf sub = {0};
		if (++e->depth > PBJ_MAX_DEPTH)
			return enc_fail(e, -EINVAL, "%s: messages nested more than %d deep", f->name,
					PBJ_MAX_DEPTH);
		r = encode_message(e, f->msg, v, &sub);
		e->depth--;
		if (r == 0 && put_len(out, f, sub.data, sub.len) < 0)
			r = enc_fail(e, -ENOMEM, "out of memory");
		pbj_buf_free(&sub);
		return r;
	}
	if (f->type == PBS_STRING || f->type == PBS_BYTES) {
		const char *s = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);
		uint8_t *bytes = NULL;

		if (!json_object_is_type(v, json_type_string))
			return enc_fail(e, -EINVAL, "%s: %s is not a string", f->name,
					json_object_to_json_string(v));
		if (f->type == PBS_BYTES && pbj_base64_decode(s, n, &bytes, &n) < 0)
			return enc_fail(e, -EINVAL, "%s: %s is not base64", f->name,
					json_object_to_json_string(v));
		r = always || n ? put_len(out, f, bytes ? (void *)bytes : s, n) : 0;
		free(bytes);
		return r < 0 ? enc_fail(e, -ENOMEM, "out of memory") : 0;
	}
	if ((r = number_value(e, f, v, &x)) < 0)
		return r;
	if (!always && x == 0)
		return 0;
	if (put_tag(out, f, wire) < 0 || put_number(out, wire, x) < 0)
		return enc_fail(e, -ENOMEM, "out of memory");
	return 0;
}

static int encode_packed(struct enc *e, const struct pbs_field *f, struct json_object *arr,
			 struct pbj_buf *out)
{
	size_t n = json_object_array_length(arr);
	struct pbj_buf sub = {0};
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		uint64_t x;

		if ((r = number_value(e, f, json_object_array_get_idx(arr, i), &x)) == 0 &&
		    put_number(&sub, pbs_type_wire(f->type), x) < 0)
			r = enc_fail(e, -ENOMEM, "out of memory");
	}
	if (r == 0 && n > 0 && put_len(out, f, sub.data, sub.len) < 0)
		r = enc_fail(e, -ENOMEM, "out of memory");
	pbj_buf_free(&sub);
	return r;
}

static int encode_repeated(struct enc *e, const struct pbs_field *f, struct json_object *arr,
			   struct pbj_buf *out)
{
	if (!json_object_is_type(arr, json_type_array))
		return enc_fail(e, -EINVAL, "%s: repeated field wants an array", f->name);
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (!json_object_array_get_idx(arr, i))
			return enc_fail(e, -EINVAL, "%s: null in a repeated field", f->name);
	if (f->packed)
		return encode_packed(e, f, arr, out);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		int r = encode_value(e, f, json_object_array_get_idx(arr, i), true, out);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The JSON value of a map key given as a string: a boolean for bool keys,
 * else the string (integers are parsed from strings anyway). New reference. */
static struct json_object *map_key_json(const struct pbs_field *key, const char *s)
{
	if (key->type != PBS_BOOL)
		return json_object_new_string(s);
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
		return json_object_new_boolean(s[0] == 't');
	return json_object_new_string(s); /* refused by encode_value */
}

static int encode_map(struct enc *e, const struct pbs_field *f, struct json_object *obj, struct pbj_buf *out)
{
	const struct pbs_field *kf = pbs_message_field(f->msg, 1), *vf = pbs_message_field(f->msg, 2);
	int r = 0;

	if (!json_object_is_type(obj, json_type_object))
		return enc_fail(e, -EINVAL, "%s: map field wants an object", f->name);
	if (!kf || !vf)
		return enc_fail(e, -EINVAL, "%s: map entry %s lacks key or value", f->name,
				f->msg->full_name);
	json_object_object_foreach(obj, key, value)
	{
		struct json_object *k = map_key_json(kf, key);
		struct pbj_buf entry = {0};

		if (!value)
			r = enc_fail(e, -EINVAL, "%s: null map value for key \"%s\"", f->name, key);
		if (r == 0)
			r = encode_value(e, kf, k, true, &entry);
		if (r == 0)
			r = encode_value(e, vf, value, true, &entry);
		if (r == 0 && put_len(out, f, entry.data, entry.len) < 0)
			r = enc_fail(e, -ENOMEM, "out of memory");
		json_object_put(k);
		pbj_buf_free(&entry);
		if (r < 0)
			return r;
	}
	return 0;
}

static int encode_field(struct enc *e, const struct pbs_field *f, struct json_object *v, struct pbj_buf *out)
{
	if (f->repeated && f->msg && f->msg->map_entry)
		return encode_map(e, f, v, out);
	if (f->repeated)
		return encode_repeated(e, f, v, out);
	return encode_value(e, f, v, f->presence, out);
}

/* ---- messages ------------------------------------------------------------------ */

/* Match the keys of obj to the fields of m: vals[i] is the value of field i
 * (NULL: absent or null). */
static int match_fields(struct enc *e, const struct pbs_message *m, struct json_object *obj,
			struct json_object **vals, bool *seen)
{
	json_object_object_foreach(obj, key, value)
	{
		const struct pbs_field *f = pbs_message_field_named(m, key, strlen(key));
		size_t i;

		if (!f)
			return enc_fail(e, -EINVAL, "%s has no field \"%s\"", m->full_name, key);
		i = (size_t)(f - m->fields);
		if (seen[i])
			return enc_fail(e, -EINVAL, "%s: field %s given twice", m->full_name, f->name);
		seen[i] = true;
		vals[i] = value;
	}
	for (size_t i = 0; i < m->n_fields; i++)
		for (size_t j = i + 1; vals[i] && j < m->n_fields; j++)
			if (vals[j] && m->fields[i].oneof >= 0 && m->fields[i].oneof == m->fields[j].oneof)
				return enc_fail(e, -EINVAL, "%s: %s and %s are in the same oneof",
						m->full_name, m->fields[i].name, m->fields[j].name);
	return 0;
}

static int encode_message(struct enc *e, const struct pbs_message *m, struct json_object *obj,
			  struct pbj_buf *out)
{
	struct json_object *plain;
	int r;

	if ((r = pbj_wkt_from_json(m, obj, &plain, e->err, e->errlen)) < 0)
		return r;
	if (r == 0)
		return encode_fields(e, m, obj, out);
	r = encode_fields(e, m, plain, out);
	json_object_put(plain);
	return r;
}

/* Encode obj, the plain JSON object of a message of type m. */
static int encode_fields(struct enc *e, const struct pbs_message *m, struct json_object *obj,
			 struct pbj_buf *out)
{
	struct json_object **vals;
	bool *seen;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return enc_fail(e, -EINVAL, "%s wants a JSON object, not %s", m->full_name,
				obj ? json_type_to_name(json_object_get_type(obj)) : "null");
	vals = calloc(m->n_fields + 1, sizeof(*vals));
	seen = calloc(m->n_fields + 1, sizeof(*seen));
	r = vals && seen ? match_fields(e, m, obj, vals, seen) : enc_fail(e, -ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < m->n_fields; i++)
		if (vals[i])
			r = encode_field(e, &m->fields[i], vals[i], out);
	free(vals);
	free(seen);
	return r;
}

int pbj_encode(const struct pbs_message *m, struct json_object *in, struct pbj_buf *out, char *err,
	       size_t errlen)
{
	struct enc e = {.err = err, .errlen = errlen};
	size_t len = out->len;
	int r = encode_message(&e, m, in, out);

	if (r < 0)
		out->len = len;
	return r;
}

/* The value of the 4 hex digits at s, or -1. */
static long hex4(const char *s)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = s[i], d = c >= '0' && c <= '9'			   ? c - '0'
				  : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
									   : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/*
 * json-c 0.16 (Debian 12) turns some escaped surrogate pairs into U+FFFD
 * ("\ud876\udc00" among others). Write every escaped pair as the UTF-8 of
 * its code point before json-c reads the text. This is no JSON parser:
 * outside strings a backslash is invalid anyway, and inside them it always
 * starts a two-character escape, so copying the other escapes as they are
 * keeps the text's meaning. Returns an allocated copy (free it) and its
 * length, or NULL when out of memory.
 */
static char *join_surrogates(const char *text, size_t len, size_t *out_len)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		long hi, lo;

		if (text[i] != '\\' || i + 1 >= len) {
			*o++ = text[i++];
			continue;
		}
		if (text[i + 1] == 'u' && len - i >= 12 && (hi = hex4(text + i + 2)) >= 0xd800 &&
		    hi <= 0xdbff && text[i + 6] == '\\' && text[i + 7] == 'u' &&
		    (lo = hex4(text + i + 8)) >= 0xdc00 && lo <= 0xdfff) {
			long cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);

			*o++ = (char)(0xf0 | cp >> 18);
			*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
			*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
			*o++ = (char)(0x80 | (cp & 0x3f));
			i += 12;
			continue;
		}
		*o++ = text[i++]; /* the backslash and the character it escapes */
		*o++ = text[i++];
	}
	*out_len = (size_t)(o - out);
	return out;
}

static bool only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

int pbj_encode_text(const struct pbs_message *m, const char *text, size_t len, struct pbj_buf *out, char *err,
		    size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	char *joined = tok ? join_surrogates(text, len, &len) : NULL;
	struct json_object *obj;
	size_t end;
	int r;

	if (!tok || !joined) {
		json_tokener_free(tok);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	text = joined;
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (!obj && json_tokener_get_error(tok) == json_tokener_continue)
		obj = json_tokener_parse_ex(tok, "", -1); /* a lone number ends at the end */
	end = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(err, errlen, "invalid JSON at byte %zu: %s", end,
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		r = -EBADMSG;
	} else if (!only_space(text + end, len - end)) {
		snprintf(err, errlen, "invalid JSON: text after the value at byte %zu", end);
		r = -EBADMSG;
	} else {
		r = pbj_encode(m, obj, out, err, errlen);
	}
	json_object_put(obj);
	json_tokener_free(tok);
	free(joined);
	return r;
}
