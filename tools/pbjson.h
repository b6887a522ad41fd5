/* SPDX-License-Identifier: MIT */
/*
 * Protobuf binary <-> JSON in the canonical proto3 JSON mapping, driven by
 * the tables of pbschema.h (no generated code per message type).
 *
 * pbj_decode() walks the wire format and builds a json-c tree the way
 * protobuf's MessageToJson prints a message: lowerCamelCase JSON names,
 * fields in number order, fields without presence omitted when zero, enums
 * by name (by number when unknown), 64-bit integers as strings, bytes as
 * base64, NaN and infinities as strings, maps as objects with string keys.
 * The parsing rules are protobuf's: the last value of a singular field
 * wins, repeated scalars may come packed or not, the occurrences of a
 * singular message merge, a oneof keeps its member that came last, a map
 * keeps the last entry of a key, unknown fields are skipped. Stricter than
 * protobuf's parsers on purpose: a known field with the wrong wire type is
 * an error (they keep it as an unknown field; here it almost always means
 * the wrong message type was chosen), and so is a string that is not UTF-8
 * (JSON cannot carry it). Groups (proto2) are skipped when unknown and an
 * error when declared. Well-known types get their special JSON forms where
 * pbwkt.c has them (Timestamp, Duration, the wrappers, FieldMask); the
 * others (Struct, Value, ListValue, Any) are printed as the plain messages
 * they are.
 *
 * pbj_encode() is the reverse, accepting what json_format.Parse accepts for
 * the mapping: JSON names or proto names, enum names or numbers, 64-bit
 * integers as strings or numbers, integral values written as 1.0 or "1",
 * floats as numbers or "NaN"/"Infinity"/"-Infinity", bytes as base64 (the
 * standard or URL-safe alphabet, padding optional), null as "not set". It
 * writes fields in number order, repeated scalars packed where the schema
 * says so, and skips zero values of fields without presence, as protobuf's
 * own serializers do.
 *
 * Errors: 0, or -EBADMSG (malformed input), -EINVAL (input that does not
 * fit the type) or -ENOMEM, with a one-line reason in err.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pbschema.h"

/* Messages nest at most this deep (protobuf's default recursion limit). */
#define PBJ_MAX_DEPTH 100

/* Decode len bytes of message type m into a new JSON object, *out (release
 * with json_object_put). */
int pbj_decode(const struct pbs_message *m, const void *data, size_t len, struct json_object **out, char *err,
	       size_t errlen);

/* The text of a decoded tree on one line (owned by obj). */
const char *pbj_json_text(struct json_object *obj);

/* A growable byte buffer for encoded messages. */
struct pbj_buf {
	uint8_t *data;
	size_t len, cap;
};

void pbj_buf_free(struct pbj_buf *b);

/* Append the encoding of the JSON object in to out (which may hold bytes
 * already; on error out->len is unchanged). */
int pbj_encode(const struct pbs_message *m, struct json_object *in, struct pbj_buf *out, char *err,
	       size_t errlen);

/* Parse len bytes of JSON text (one value, whitespace around it allowed)
 * and encode it as pbj_encode() does. */
int pbj_encode_text(const struct pbs_message *m, const char *text, size_t len, struct pbj_buf *out, char *err,
		    size_t errlen);

/* ---- well-known types (pbwkt.c) ---- */

/* When m is a well-known type with a special JSON form, replace *obj (its
 * plain JSON, which this releases) with that form. 0, or -EBADMSG for values
 * out of range (a Timestamp after the year 9999), -ENOMEM; why in err. */
int pbj_wkt_to_json(const struct pbs_message *m, struct json_object **obj, char *err, size_t errlen);

/* When in is the special JSON form of well-known type m, set *plain to the
 * plain form (a new reference) and return 1; return 0 when in is to be
 * encoded as it is; -EINVAL (why in err) when it is not a valid form. */
int pbj_wkt_from_json(const struct pbs_message *m, struct json_object *in, struct json_object **plain,
		      char *err, size_t errlen);

/* ---- base64 (RFC 4648) ---- */

/* The standard base64 of data with padding, NUL-terminated, allocated (free
 * it), or NULL when out of memory. */
char *pbj_base64_encode(const void *data, size_t len);

/* Decode base64 text in the standard or URL-safe alphabet, padding optional,
 * into a new buffer *out of *out_len bytes (free it). 0, -EINVAL or -ENOMEM. */
int pbj_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);
