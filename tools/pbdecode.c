/* SPDX-License-Identifier: MIT */
/*
 * Protobuf binary -> JSON (pbjson.h): a table-driven walker.
 *
 * A message is read in two steps. scan() checks the framing of every field
 * (varints of at most 10 bytes, lengths inside the buffer, groups closed)
 * and records one occurrence per field in wire order; the occurrences are
 * then sorted by field number (stable, by wire position), so each field of
 * the schema finds all of its occurrences side by side and the fields come
 * out in number order, as MessageToJson prints them. That is where the
 * parsing rules live: last wins, packed or not, merge of singular messages
 * (their occurrences are decoded as one concatenated buffer, which is what
 * merging means in protobuf), the last member of a oneof, the last entry of
 * a map key (json_object_object_add replaces).
 *
 * Errors name the field ("demo.Reading.celsius (#2)") and the byte offset
 * in the whole payload.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbjson.h"

/* One field as found on the wire. */
struct occ {
	uint32_t number;
	uint8_t wire;
	uint32_t seq;	  /* position in the wire order */
	uint64_t v;	  /* VARINT, I32, I64: the value */
	const uint8_t *p; /* LEN: the bytes; groups: their contents */
	size_t n;
};

struct dec {
	const uint8_t *base; /* the whole payload, for offsets in errors */
	char *err;
	size_t errlen;
	int depth;
};

static int dec_message(struct dec *d, const struct pbs_message *m, const uint8_t *p, size_t n, bool map_entry,
		       struct json_object **out);

static int dec_fail(struct dec *d, const uint8_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dec_fail(struct dec *d, const uint8_t *at, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(d->err, d->errlen, "at byte %zu: ", (size_t)(at - d->base));

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < d->errlen)
		vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static int dec_nomem(struct dec *d)
{
	snprintf(d->err, d->errlen, "out of memory");
	return -ENOMEM;
}

/* ---- the wire: varints, fixed values, fields ----------------------------- */

/* Read a varint at *p (before end). 0 or -EBADMSG. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EBADMSG; /* more than 10 bytes */
}

static uint64_t read_le(const uint8_t *p, int n)
{
	uint64_t x = 0;

	for (int i = n - 1; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

static const char *wire_name(unsigned wire)
{
	static const char *const names[] = {"varint",	   "64-bit",	"length-delimited",
					    "start-group", "end-group", "32-bit"};
	return wire < 6 ? names[wire] : "invalid";
}

/* Skip the contents of a group whose start tag for number was just read;
 * *p ends after its end tag. 0 or an error. */
static int skip_group(struct dec *d, const uint8_t **p, const uint8_t *end, uint32_t number, int depth);

/* Read the value of one field with wire type wire at *p into o. */
static int read_value(struct dec *d, const uint8_t **p, const uint8_t *end, struct occ *o, int depth)
{
	const uint8_t *at = *p;
	uint64_t len;

	switch (o->wire) {
	case PBS_WIRE_VARINT:
		if (read_varint(p, end, &o->v) < 0)
			return dec_fail(d, at, "field #%" PRIu32 ": truncated or overlong varint", o->number);
		return 0;
	case PBS_WIRE_I64:
	case PBS_WIRE_I32: {
		int n = o->wire == PBS_WIRE_I64 ? 8 : 4;
		if (end - *p < n)
			return dec_fail(d, at, "field #%" PRIu32 ": truncated %d-byte value", o->number, n);
		o->v = read_le(*p, n);
		*p += n;
		return 0;
	}
	case PBS_WIRE_LEN:
		if (read_varint(p, end, &len) < 0 || len > (uint64_t)(end - *p))
			return dec_fail(d, at, "field #%" PRIu32 ": length past the end of the message",
					o->number);
		o->p = *p;
		o->n = (size_t)len;
		*p += len;
		return 0;
	case PBS_WIRE_SGROUP:
		o->p = *p;
		if (skip_group(d, p, end, o->number, depth) < 0)
			return -EBADMSG;
		o->n = (size_t)(*p - o->p);
		return 0;
	default:
		return dec_fail(d, at, "field #%" PRIu32 ": %s wire type %u", o->number,
				o->wire == PBS_WIRE_EGROUP ? "unexpected end-group" : "invalid", o->wire);
	}
}

/* Read a tag at *p. 0 or an error. */
static int read_tag(struct dec *d, const uint8_t **p, const uint8_t *end, struct occ *o)
{
	const uint8_t *at = *p;
	uint64_t tag;

	if (read_varint(p, end, &tag) < 0)
		return dec_fail(d, at, "truncated field tag");
	if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
		return dec_fail(d, at, "invalid field number %" PRIu64, tag >> 3);
	o->number = (uint32_t)(tag >> 3);
	o->wire = (uint8_t)(tag & 7);
	return 0;
}

static int skip_group(struct dec *d, const uint8_t **p, const uint8_t *end, uint32_t number, int depth)
{
	if (depth >= PBJ_MAX_DEPTH)
		return dec_fail(d, *p, "groups nested more than %d deep", PBJ_MAX_DEPTH);
	while (*p < end) {
		struct occ o = {0};
		const uint8_t *at = *p;

		if (read_tag(d, p, end, &o) < 0)
			return -EBADMSG;
		if (o.wire == PBS_WIRE_EGROUP) {
			if (o.number != number)
				return dec_fail(d, at, "end-group #%" PRIu32 " closes group #%" PRIu32,
						o.number, number);
			return 0;
		}
		if (read_value(d, p, end, &o, depth + 1) < 0)
			return -EBADMSG;
	}
	return dec_fail(d, *p, "group #%" PRIu32 " not closed", number);
}

static int by_number_then_seq(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;

	if (x->number != y->number)
		return x->number < y->number ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Read every field of the n bytes at p into *occs (allocated, sorted by
 * number then wire order), *n_occs of them. */
static int scan(struct dec *d, const uint8_t *p, size_t n, struct occ **occs, size_t *n_occs)
{
	const uint8_t *end = p + n;
	struct occ *v = NULL;
	size_t k = 0, cap = 0;

	while (p < end) {
		if (k == cap) {
			struct occ *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!nv) {
				free(v);
				return dec_nomem(d);
			}
			v = nv;
		}
		v[k] = (struct occ){.seq = (uint32_t)k};
		if (read_tag(d, &p, end, &v[k]) < 0 || read_value(d, &p, end, &v[k], d->depth) < 0) {
			free(v);
			return -EBADMSG;
		}
		k++;
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), by_number_then_seq);
	*occs = v;
	*n_occs = k;
	return 0;
}

/* ---- values --------------------------------------------------------------- */

/* A float or double as MessageToJson writes it: the shortest decimal that
 * reads back to the same value (for a float, with at least 6 significant
 * digits, like protobuf's ToShortestFloat), or "NaN", "Infinity",
 * "-Infinity". */
static struct json_object *float_json(double x, bool single)
{
	char buf[40];

	if (isnan(x))
		return json_object_new_string("NaN");
	if (isinf(x))
		return json_object_new_string(x > 0 ? "Infinity" : "-Infinity");
	for (int prec = single ? 6 : 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, x);
		if (single ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x)
			break;
	}
	if (!strpbrk(buf, ".e")) /* "1.0", as Python writes it; "-0.0" is not the integer 0 */
		strcat(buf, ".0");
	return json_object_new_double_s(x, buf);
}

static struct json_object *u64_string(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_object_new_string(buf);
}

static struct json_object *i64_string(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_object_new_string(buf);
}

static int64_t zigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static struct json_object *enum_json(const struct pbs_field *f, int32_t v)
{
	const char *name = pbs_enum_name(f->enm, v);

	return name ? json_object_new_string(name) : json_object_new_int(v);
}

/* The JSON of a numeric value (varint or fixed) of field f. */
static struct json_object *number_json(const struct pbs_field *f, uint64_t v)
{
	switch (f->type) {
	case PBS_DOUBLE: {
		double x;
		memcpy(&x, &v, sizeof(x));
		return float_json(x, false);
	}
	case PBS_FLOAT: {
		uint32_t bits = (uint32_t)v;
		float x;
		memcpy(&x, &bits, sizeof(x));
		return float_json(x, true);
	}
	case PBS_INT64:
	case PBS_SFIXED64:
		return i64_string((int64_t)v);
	case PBS_SINT64:
		return i64_string(zigzag(v));
	case PBS_UINT64:
	case PBS_FIXED64:
		return u64_string(v);
	case PBS_SINT32:
		return json_object_new_int((int32_t)zigzag((uint32_t)v));
	case PBS_UINT32:
	case PBS_FIXED32:
		return json_object_new_int64((uint32_t)v);
	case PBS_BOOL:
		return json_object_new_boolean(v != 0);
	case PBS_ENUM:
		return enum_json(f, (int32_t)v);
	default: /* INT32, SFIXED32 */
		return json_object_new_int((int32_t)v);
	}
}

/* The JSON of a length-delimited value of a string, bytes or message field. */
static int len_json(struct dec *d, const struct pbs_field *f, const uint8_t *p, size_t n,
		    struct json_object **out)
{
	if (f->type == PBS_MESSAGE) {
		int r;
		if (++d->depth > PBJ_MAX_DEPTH)
			return dec_fail(d, p, "messages nested more than %d deep", PBJ_MAX_DEPTH);
		r = dec_message(d, f->msg, p, n, f->msg->map_entry, out);
		d->depth--;
		return r;
	}
	if (f->type == PBS_STRING) {
		if (!cli_utf8_valid(p, n))
			return dec_fail(d, p, "string field %s is not valid UTF-8", f->name);
		*out = json_object_new_string_len((const char *)p, (int)n);
	} else {
		char *b64 = pbj_base64_encode(p, n);
		*out = b64 ? json_object_new_string(b64) : NULL;
		free(b64);
	}
	return *out ? 0 : dec_nomem(d);
}

/* ---- fields --------------------------------------------------------------- */

/* Check the wire type of an occurrence of f. */
static int check_wire(struct dec *d, const struct pbs_field *f, const struct occ *o)
{
	enum pbs_wire want = pbs_type_wire(f->type);

	if (f->type == PBS_GROUP)
		return dec_fail(d, o->p, "field %s (#%" PRId32 ") is a group, which is not supported",
				f->name, f->number);
	if (o->wire == want || (o->wire == PBS_WIRE_LEN && f->repeated && want != PBS_WIRE_LEN))
		return 0;
	return dec_fail(d, o->p ? o->p : d->base,
			"field %s (#%" PRId32 ") has %s wire type, its type wants %s", f->name, f->number,
			wire_name(o->wire), wire_name(want));
}

/* Append the values of a packed occurrence to arr. */
static int add_packed(struct dec *d, const struct pbs_field *f, const struct occ *o, struct json_object *arr)
{
	enum pbs_wire wire = pbs_type_wire(f->type);
	const uint8_t *p = o->p, *end = o->p + o->n;

	while (p < end) {
		struct occ one = {.number = o->number, .wire = wire};

		if (read_value(d, &p, end, &one, d->depth) < 0)
			return -EBADMSG;
		if (json_object_array_add(arr, number_json(f, one.v)) < 0)
			return dec_nomem(d);
	}
	return 0;
}

/* The JSON of one non-packed occurrence of f. */
static int occ_json(struct dec *d, const struct pbs_field *f, const struct occ *o, struct json_object **out)
{
	if (o->wire == PBS_WIRE_LEN)
		return len_json(d, f, o->p, o->n, out);
	*out = number_json(f, o->v);
	return *out ? 0 : dec_nomem(d);
}

static int repeated_json(struct dec *d, const struct pbs_field *f, const struct occ *o, size_t n,
			 struct json_object **out)
{
	struct json_object *arr = json_object_new_array();
	int r = arr ? 0 : dec_nomem(d);

	for (size_t i = 0; i < n && r == 0; i++) {
		struct json_object *v;

		if (o[i].wire == PBS_WIRE_LEN && f->type != PBS_STRING && f->type != PBS_BYTES &&
		    f->type != PBS_MESSAGE)
			r = add_packed(d, f, &o[i], arr);
		else if ((r = occ_json(d, f, &o[i], &v)) == 0 && json_object_array_add(arr, v) < 0)
			r = dec_nomem(d);
	}
	if (r == 0 && json_object_array_length(arr) == 0) {
		json_object_put(arr);
		arr = NULL; /* only empty packed runs: nothing to print */
	}
	if (r < 0)
		json_object_put(arr);
	*out = r < 0 ? NULL : arr;
	return r;
}

/*
 * Maps. JSON keys may hold any string, NUL included, while json-c's keys
 * are C strings: the map object is keyed by each key's escaped JSON text
 * (which has no NUL, and is unique per key, so a later entry still replaces
 * an earlier one) and prints those keys as they are.
 */
static int print_map(struct json_object *map, struct printbuf *pb, int level, int flags)
{
	bool first = true;

	printbuf_strappend(pb, "{");
	json_object_object_foreach(map, key, value)
	{
		const char *text = json_object_to_json_string_ext(value, flags);

		if (!first)
			printbuf_strappend(pb, ",");
		first = false;
		printbuf_strappend(pb, "\"");
		printbuf_memappend(pb, key, (int)strlen(key));
		printbuf_strappend(pb, "\":");
		printbuf_memappend(pb, text, (int)strlen(text));
	}
	printbuf_strappend(pb, "}");
	return 0;
}

/* The escaped JSON text of a map key (without quotes), allocated. */
static char *map_key_text(struct json_object *key)
{
	const char *s = json_object_get_string(key); /* "5", "true" for the others */
	int len =
	    json_object_is_type(key, json_type_string) ? json_object_get_string_len(key) : (int)strlen(s);
	struct json_object *str = json_object_new_string_len(s, len);
	const char *text = str ? json_object_to_json_string_ext(str, JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	char *out = text ? strndup(text + 1, strlen(text) - 2) : NULL;

	json_object_put(str);
	return out;
}

/* A map: each occurrence is an entry message {key, value}. */
static int map_json(struct dec *d, const struct pbs_field *f, const struct occ *o, size_t n,
		    struct json_object **out)
{
	struct json_object *map = json_object_new_object();
	int r = map ? 0 : dec_nomem(d);

	for (size_t i = 0; i < n && r == 0; i++) {
		struct json_object *entry, *key, *value;

		if ((r = len_json(d, f, o[i].p, o[i].n, &entry)) < 0)
			break;
		json_object_object_get_ex(entry, "key", &key);
		json_object_object_get_ex(entry, "value", &value);
		char *text = map_key_text(key);
		if (!text || json_object_object_add(map, text, json_object_get(value)) < 0)
			r = dec_nomem(d);
		free(text);
		json_object_put(entry);
	}
	if (r == 0)
		json_object_set_serializer(map, print_map, NULL, NULL);
	if (r < 0)
		json_object_put(map);
	*out = r < 0 ? NULL : map;
	return r;
}

/* A singular message: its occurrences merge, which is decoding their
 * concatenation. */
static int merged_json(struct dec *d, const struct pbs_field *f, const struct occ *o, size_t n,
		       struct json_object **out)
{
	size_t total = 0, at = 0;
	uint8_t *buf;
	int r;

	if (n == 1)
		return len_json(d, f, o->p, o->n, out);
	for (size_t i = 0; i < n; i++)
		total += o[i].n;
	if (!(buf = malloc(total ? total : 1)))
		return dec_nomem(d);
	for (size_t i = 0; i < n; i++) {
		memcpy(buf + at, o[i].p, o[i].n);
		at += o[i].n;
	}
	/* errors would give offsets in buf: name the first occurrence instead */
	struct dec sub = {.base = buf, .err = d->err, .errlen = d->errlen, .depth = d->depth};
	r = len_json(&sub, f, buf, total, out);
	free(buf);
	if (r == -EBADMSG)
		return dec_fail(d, o->p, "in the merged occurrences of %s: %s", f->name, d->err);
	return r;
}

/* Is the singular value of occurrence o the zero of its type? */
static bool is_zero(const struct occ *o)
{
	return o->wire == PBS_WIRE_LEN ? o->n == 0 : o->v == 0;
}

/* The JSON value of field f from its occurrences o[0..n-1] (n >= 1), or
 * NULL in *out when nothing is to be printed. */
static int field_json(struct dec *d, const struct pbs_field *f, const struct occ *o, size_t n, bool defaults,
		      struct json_object **out)
{
	const struct occ *last = &o[n - 1];

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		int r = check_wire(d, f, &o[i]);
		if (r < 0)
			return r;
	}
	if (f->repeated && f->msg && f->msg->map_entry)
		return map_json(d, f, o, n, out);
	if (f->repeated)
		return repeated_json(d, f, o, n, out);
	if (f->type == PBS_MESSAGE)
		return merged_json(d, f, o, n, out);
	if (!f->presence && !defaults && is_zero(last))
		return 0;
	return occ_json(d, f, last, out);
}

/* A map entry's missing key or value: the default value of its type. */
static struct json_object *default_json(struct dec *d, const struct pbs_field *f)
{
	struct json_object *v = NULL;
	static const uint8_t none[1];

	if (f->type == PBS_MESSAGE || f->type == PBS_STRING || f->type == PBS_BYTES)
		len_json(d, f, none, 0, &v);
	else
		v = number_json(f, 0);
	return v;
}

/* ---- oneofs ----------------------------------------------------------------- */

/* For each real oneof of m: the occurrences of its members before the last
 * occurrence of another member do not count (setting a member clears the
 * others). Sets cut[k] to the sequence number that those of member field
 * winner[k] must exceed. */
static void oneof_cuts(const struct pbs_message *m, const struct occ *occs, size_t n, int64_t *cut,
		       const struct pbs_field **winner, size_t n_oneofs)
{
	int64_t *last = cut; /* first pass: the last occurrence of any member */

	for (size_t k = 0; k < n_oneofs; k++) {
		last[k] = -1;
		winner[k] = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pbs_field *f = pbs_message_field(m, (int32_t)occs[i].number);
		if (f && f->oneof >= 0 && (size_t)f->oneof < n_oneofs &&
		    (int64_t)occs[i].seq > last[f->oneof]) {
			last[f->oneof] = occs[i].seq;
			winner[f->oneof] = f;
		}
	}
	for (size_t k = 0; k < n_oneofs; k++)
		cut[k] = -1;
	for (size_t i = 0; i < n; i++) {
		const struct pbs_field *f = pbs_message_field(m, (int32_t)occs[i].number);
		if (f && f->oneof >= 0 && (size_t)f->oneof < n_oneofs && winner[f->oneof] != f &&
		    (int64_t)occs[i].seq > cut[f->oneof])
			cut[f->oneof] = occs[i].seq;
	}
}

/* Narrow [*o, *o + *n) to the occurrences of f that count. False when none
 * does (another member of its oneof came last). */
static bool oneof_filter(const struct pbs_field *f, const int64_t *cut, const struct pbs_field *const *winner,
			 size_t n_oneofs, const struct occ **o, size_t *n)
{
	if (f->oneof < 0 || (size_t)f->oneof >= n_oneofs)
		return true;
	if (winner[f->oneof] != f)
		return false;
	while (*n > 0 && (int64_t)(*o)->seq < cut[f->oneof]) {
		(*o)++;
		(*n)--;
	}
	return *n > 0;
}

/* ---- messages ----------------------------------------------------------------- */

static int add_fields(struct dec *d, const struct pbs_message *m, const struct occ *occs, size_t n_occs,
		      bool map_entry, struct json_object *obj)
{
	size_t n_oneofs = m->desc->n_oneof_decl, i = 0;
	int64_t cut[n_oneofs + 1];
	const struct pbs_field *winner[n_oneofs + 1];

	oneof_cuts(m, occs, n_occs, cut, winner, n_oneofs);
	for (size_t k = 0; k < m->n_fields; k++) {
		const struct pbs_field *f = &m->fields[k];
		const struct occ *o;
		struct json_object *v = NULL;
		size_t n = 0;
		int r;

		while (i < n_occs && occs[i].number < (uint32_t)f->number)
			i++; /* unknown fields */
		for (o = &occs[i]; i < n_occs && occs[i].number == (uint32_t)f->number; i++)
			n++;
		if (n == 0 || !oneof_filter(f, cut, winner, n_oneofs, &o, &n)) {
			if (map_entry && !(v = default_json(d, f)))
				return dec_nomem(d);
		} else if ((r = field_json(d, f, o, n, map_entry, &v)) < 0) {
			return r;
		}
		if (v && json_object_object_add(obj, map_entry ? f->name : f->json_name, v) < 0)
			return dec_nomem(d);
	}
	return 0;
}

/* Decode the n bytes at p as message m into a new object. map_entry: print
 * the key and value under their proto names, defaults included. */
static int dec_message(struct dec *d, const struct pbs_message *m, const uint8_t *p, size_t n, bool map_entry,
		       struct json_object **out)
{
	struct occ *occs = NULL;
	size_t n_occs = 0;
	struct json_object *obj;
	char why[256];
	int r;

	*out = NULL;
	if ((r = scan(d, p, n, &occs, &n_occs)) < 0)
		return r;
	if (!(obj = json_object_new_object())) {
		free(occs);
		return dec_nomem(d);
	}
	r = add_fields(d, m, occs, n_occs, map_entry, obj);
	free(occs);
	if (r == 0 && !map_entry && (r = pbj_wkt_to_json(m, &obj, why, sizeof(why))) == -EBADMSG)
		r = dec_fail(d, p, "%s", why);
	if (r < 0) {
		json_object_put(obj);
		return r;
	}
	*out = obj;
	return 0;
}

int pbj_decode(const struct pbs_message *m, const void *data, size_t len, struct json_object **out, char *err,
	       size_t errlen)
{
	static const uint8_t none[1];
	struct dec d = {.base = len ? data : none, .err = err, .errlen = errlen};

	return dec_message(&d, m, d.base, len, false, out);
}

const char *pbj_json_text(struct json_object *obj)
{
	return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}
