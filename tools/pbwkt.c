/* SPDX-License-Identifier: MIT */
/*
 * The special JSON forms of some well-known types (pbjson.h):
 *
 *   google.protobuf.Timestamp   "2026-12-05T08:00:00.250Z" (RFC 3339, UTC;
 *                               an offset such as +01:00 is accepted)
 *   google.protobuf.Duration    "-1.500s"
 *   google.protobuf.*Value      the wrapped value itself (Int64Value: "5")
 *   google.protobuf.FieldMask   "a.fooBar,b" (paths in lowerCamelCase)
 *
 * Fractions of a second come with 0, 3, 6 or 9 digits, as protobuf writes
 * them. Struct, Value, ListValue and Any keep their plain message form.
 *
 * Both directions go through the plain JSON of the message, so the walkers
 * stay unaware of them: after decoding, pbj_wkt_to_json() replaces the
 * plain object ({"seconds":"5","nanos":7}) with the special form; before
 * encoding, pbj_wkt_from_json() turns the special form into the plain one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pbjson.h"

#define WKT_PREFIX "google.protobuf."
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of Timestamp */
#define TS_MIN (-62135596800LL)
#define TS_MAX 253402300799LL
#define DURATION_MAX 315576000000LL

enum wkt { WKT_NONE, WKT_TIMESTAMP, WKT_DURATION, WKT_WRAPPER, WKT_FIELD_MASK };

static enum wkt wkt_of(const struct pbs_message *m)
{
	static const char *const wrappers[] = {"DoubleValue", "FloatValue",  "Int64Value",
					       "UInt64Value", "Int32Value",  "UInt32Value",
					       "BoolValue",   "StringValue", "BytesValue"};
	const char *name = m->full_name;

	if (strncmp(name, WKT_PREFIX, strlen(WKT_PREFIX)) != 0)
		return WKT_NONE;
	name += strlen(WKT_PREFIX);
	if (strcmp(name, "Timestamp") == 0)
		return WKT_TIMESTAMP;
	if (strcmp(name, "Duration") == 0)
		return WKT_DURATION;
	if (strcmp(name, "FieldMask") == 0)
		return WKT_FIELD_MASK;
	for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++)
		if (strcmp(name, wrappers[i]) == 0 && pbs_message_field(m, 1))
			return WKT_WRAPPER;
	return WKT_NONE;
}

static int wkt_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int wkt_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- to JSON ----------------------------------------------------------------- */

static int64_t member_int(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	return json_object_is_type(v, json_type_string) ? strtoll(json_object_get_string(v), NULL, 10)
							: json_object_get_int64(v);
}

/* Append ".fff", ".ffffff" or ".fffffffff" for nanos (0 <= nanos < 1e9). */
static void fraction(char *buf, size_t len, int32_t nanos)
{
	size_t n = strlen(buf);

	if (nanos == 0)
		return;
	if (nanos % 1000000 == 0)
		snprintf(buf + n, len - n, ".%03" PRId32, nanos / 1000000);
	else if (nanos % 1000 == 0)
		snprintf(buf + n, len - n, ".%06" PRId32, nanos / 1000);
	else
		snprintf(buf + n, len - n, ".%09" PRId32, nanos);
}

static int timestamp_text(struct json_object *obj, char *buf, size_t len, char *err, size_t errlen)
{
	int64_t secs = member_int(obj, "seconds"), nanos = member_int(obj, "nanos");
	time_t t;
	struct tm tm;

	if (secs < TS_MIN || secs > TS_MAX || nanos < 0 || nanos > 999999999)
		return wkt_fail(err, errlen,
				"Timestamp out of range (seconds %" PRId64 ", nanos %" PRId64 ")", secs,
				nanos);
	t = (time_t)secs;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
	fraction(buf, len, (int32_t)nanos);
	strncat(buf, "Z", len - strlen(buf) - 1);
	return 0;
}

static int duration_text(struct json_object *obj, char *buf, size_t len, char *err, size_t errlen)
{
	int64_t secs = member_int(obj, "seconds"), nanos = member_int(obj, "nanos");

	if (secs < -DURATION_MAX || secs > DURATION_MAX || nanos < -999999999 || nanos > 999999999 ||
	    (secs > 0 && nanos < 0) || (secs < 0 && nanos > 0))
		return wkt_fail(err, errlen, "Duration out of range (seconds %" PRId64 ", nanos %" PRId64 ")",
				secs, nanos);
	snprintf(buf, len, "%s%" PRId64, secs < 0 || nanos < 0 ? "-" : "", secs < 0 ? -secs : secs);
	fraction(buf, len, (int32_t)(nanos < 0 ? -nanos : nanos));
	strncat(buf, "s", len - strlen(buf) - 1);
	return 0;
}

/* "foo_bar.baz" -> "fooBar.baz" */
static void camel_path(const char *path, char *out, size_t len)
{
	size_t n = 0;
	bool upper = false;

	for (; *path && n + 1 < len; path++) {
		if (*path == '_') {
			upper = true;
			continue;
		}
		out[n++] = upper && *path >= 'a' && *path <= 'z' ? (char)(*path - 'a' + 'A') : *path;
		upper = false;
	}
	out[n] = '\0';
}

static struct json_object *field_mask_json(struct json_object *obj)
{
	struct json_object *paths, *s;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (json_object_object_get_ex(obj, "paths", &paths))
		for (size_t i = 0; i < json_object_array_length(paths); i++) {
			const char *p = json_object_get_string(json_object_array_get_idx(paths, i));
			char buf[strlen(p) + 1];

			camel_path(p, buf, sizeof(buf));
			fprintf(f, "%s%s", i ? "," : "", buf);
		}
	fclose(f);
	s = text ? json_object_new_string(text) : NULL;
	free(text);
	return s;
}

/* A wrapper's value: its "value" member, or the zero of its type. */
static struct json_object *wrapper_json(const struct pbs_message *m, struct json_object *obj)
{
	const struct pbs_field *f = pbs_message_field(m, 1);
	struct json_object *v;

	if (json_object_object_get_ex(obj, f->json_name, &v))
		return json_object_get(v);
	switch (f->type) {
	case PBS_STRING:
	case PBS_BYTES:
		return json_object_new_string("");
	case PBS_BOOL:
		return json_object_new_boolean(0);
	case PBS_INT64:
	case PBS_UINT64:
		return json_object_new_string("0");
	case PBS_DOUBLE:
	case PBS_FLOAT:
		return json_object_new_double_s(0, "0.0");
	default:
		return json_object_new_int(0);
	}
}

int pbj_wkt_to_json(const struct pbs_message *m, struct json_object **obj, char *err, size_t errlen)
{
	enum wkt kind = wkt_of(m);
	struct json_object *special = NULL;
	char buf[64];
	int r = 0;

	switch (kind) {
	case WKT_NONE:
		return 0;
	case WKT_TIMESTAMP:
		if ((r = timestamp_text(*obj, buf, sizeof(buf), err, errlen)) == 0)
			special = json_object_new_string(buf);
		break;
	case WKT_DURATION:
		if ((r = duration_text(*obj, buf, sizeof(buf), err, errlen)) == 0)
			special = json_object_new_string(buf);
		break;
	case WKT_FIELD_MASK:
		special = field_mask_json(*obj);
		break;
	case WKT_WRAPPER:
		special = wrapper_json(m, *obj);
		break;
	}
	if (r < 0)
		return -EBADMSG;
	if (!special) {
		wkt_fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_object_put(*obj);
	*obj = special;
	return 0;
}

/* ---- from JSON --------------------------------------------------------------- */

/* Parse ".fffffffff" (1 to 9 digits) at *s into nanos. */
static int parse_fraction(const char **s, int32_t *nanos)
{
	int digits = 0;

	*nanos = 0;
	if (**s != '.')
		return 0;
	for ((*s)++; **s >= '0' && **s <= '9'; (*s)++, digits++)
		if (digits < 9)
			*nanos = *nanos * 10 + (**s - '0');
	if (digits == 0 || digits > 9)
		return -EINVAL;
	for (; digits < 9; digits++)
		*nanos *= 10;
	return 0;
}

static int parse_timestamp(const char *s, int64_t *secs, int32_t *nanos)
{
	struct tm tm = {0};
	int n = 0, oh = 0, om = 0;
	char sign;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -EINVAL;
	s += n;
	if (parse_fraction(&s, nanos) < 0)
		return -EINVAL;
	if (*s == 'Z') {
		s++;
	} else if ((*s == '+' || *s == '-') && sscanf(s, "%c%2d:%2d%n", &sign, &oh, &om, &n) == 3 && n == 6) {
		s += n;
		if (sign == '-') {
			oh = -oh;
			om = -om;
		}
	} else {
		return -EINVAL;
	}
	if (*s || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 59)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*secs = (int64_t)timegm(&tm) - (oh * 3600 + om * 60);
	return *secs < TS_MIN || *secs > TS_MAX ? -EINVAL : 0;
}

static int parse_duration(const char *s, int64_t *secs, int32_t *nanos)
{
	bool neg = *s == '-';
	char *end;

	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*secs = strtoll(s, &end, 10);
	s = end;
	if (errno || parse_fraction(&s, nanos) < 0 || strcmp(s, "s") != 0 || *secs > DURATION_MAX)
		return -EINVAL;
	if (neg) {
		*secs = -*secs;
		*nanos = -*nanos;
	}
	return 0;
}

/* {"seconds": "S", "nanos": N} */
static struct json_object *seconds_nanos(int64_t secs, int32_t nanos)
{
	struct json_object *o = json_object_new_object();
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, secs);
	json_object_object_add(o, "seconds", json_object_new_string(buf));
	json_object_object_add(o, "nanos", json_object_new_int(nanos));
	return o;
}

/* "fooBar.baz,x" -> {"paths": ["foo_bar.baz", "x"]} */
static struct json_object *field_mask_plain(const char *s)
{
	struct json_object *o = json_object_new_object(), *paths = json_object_new_array();
	char *path = malloc(2 * strlen(s) + 1), *p = path;

	if (!o || !paths || !path) {
		json_object_put(o);
		json_object_put(paths);
		free(path);
		return NULL;
	}
	for (;; s++) {
		if (*s == ',' || !*s) {
			*p = '\0';
			if (p > path || *s)
				json_object_array_add(paths, json_object_new_string(path));
			p = path;
			if (!*s)
				break;
			continue;
		}
		if (*s >= 'A' && *s <= 'Z') {
			*p++ = '_';
			*p++ = (char)(*s - 'A' + 'a');
		} else {
			*p++ = *s;
		}
	}
	free(path);
	json_object_object_add(o, "paths", paths);
	return o;
}

int pbj_wkt_from_json(const struct pbs_message *m, struct json_object *in, struct json_object **plain,
		      char *err, size_t errlen)
{
	enum wkt kind = wkt_of(m);
	const char *s = json_object_get_string(in);
	int64_t secs;
	int32_t nanos;

	*plain = NULL;
	if (kind == WKT_NONE || (kind != WKT_WRAPPER && json_object_is_type(in, json_type_object)))
		return 0; /* the plain form is accepted too */
	if (kind == WKT_WRAPPER) {
		*plain = json_object_new_object();
		json_object_object_add(*plain, pbs_message_field(m, 1)->json_name, json_object_get(in));
		return 1;
	}
	if (!json_object_is_type(in, json_type_string))
		return wkt_fail(err, errlen, "%s wants a string", m->full_name);
	if (kind == WKT_FIELD_MASK) {
		*plain = field_mask_plain(s);
		return *plain ? 1 : wkt_fail(err, errlen, "out of memory");
	}
	if (kind == WKT_TIMESTAMP ? parse_timestamp(s, &secs, &nanos) : parse_duration(s, &secs, &nanos))
		return wkt_fail(err, errlen, "\"%s\" is not a valid %s", s, m->full_name);
	*plain = seconds_nanos(secs, nanos);
	return 1;
}
