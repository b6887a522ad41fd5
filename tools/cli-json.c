/* SPDX-License-Identifier: MIT */
/*
 * The small pieces of JSON the lbus tool writes: quoted strings with
 * escapes, base64 for payloads that are not text, and a strict UTF-8
 * validator that decides between the two (RFC 8259: JSON text is UTF-8, so
 * a payload goes out as "payload" only when it is valid UTF-8).
 *
 * Everything writes to a stdio stream with the unlocked GNU functions: the
 * tool is single-threaded and `sub --json` may print a million lines.
 */
#include <string.h>

#include "cli.h"

/* Length of the UTF-8 sequence starting with byte c (0 if c cannot start
 * one); sets [*lo, *hi] to the range of valid second bytes, which rules out
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef) {
		if (c == 0xe0)
			*lo = 0xa0; /* no overlong */
		else if (c == 0xed)
			*hi = 0x9f; /* no surrogates */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (c == 0xf0)
			*lo = 0x90; /* no overlong */
		else if (c == 0xf4)
			*hi = 0x8f; /* not above U+10FFFF */
		return 4;
	}
	return 0;
}

bool cli_utf8_valid(const void *data, size_t len)
{
	const unsigned char *p = data, *end = p + len;

	while (p < end) {
		unsigned char lo, hi;
		size_t n;

		if (*p < 0x80) {
			p++;
			continue;
		}
		n = utf8_lead(*p, &lo, &hi);
		if (n == 0 || (size_t)(end - p) < n || p[1] < lo || p[1] > hi)
			return false;
		for (size_t i = 2; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

/* Does byte c need an escape inside a JSON string? */
static inline bool needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

static void write_escape(FILE *f, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	putc_unlocked('\\', f);
	switch (c) {
	case '"':
	case '\\':
		putc_unlocked(c, f);
		return;
	case '\n':
		putc_unlocked('n', f);
		return;
	case '\r':
		putc_unlocked('r', f);
		return;
	case '\t':
		putc_unlocked('t', f);
		return;
	case '\b':
		putc_unlocked('b', f);
		return;
	case '\f':
		putc_unlocked('f', f);
		return;
	default:
		fputs_unlocked("u00", f);
		putc_unlocked(hex[c >> 4], f);
		putc_unlocked(hex[c & 15], f);
	}
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
	size_t start = 0;

	putc_unlocked('"', f);
	for (size_t i = 0; i < len; i++) {
		if (!needs_escape((unsigned char)s[i]))
			continue;
		fwrite_unlocked(s + start, 1, i - start, f);
		write_escape(f, (unsigned char)s[i]);
		start = i + 1;
	}
	if (len > start) /* s may be NULL when len is 0 */
		fwrite_unlocked(s + start, 1, len - start, f);
	putc_unlocked('"', f);
}

void cli_json_cstring(FILE *f, const char *s)
{
	if (!s)
		s = "";
	cli_json_string(f, s, strlen(s));
}

void cli_json_base64(FILE *f, const void *data, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t i = 0;

	putc_unlocked('"', f);
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		putc_unlocked(alphabet[v >> 18], f);
		putc_unlocked(alphabet[(v >> 12) & 63], f);
		putc_unlocked(alphabet[(v >> 6) & 63], f);
		putc_unlocked(alphabet[v & 63], f);
	}
	if (len - i > 0) {
		uint32_t v = (uint32_t)p[i] << 16 | (len - i > 1 ? (uint32_t)p[i + 1] << 8 : 0);

		putc_unlocked(alphabet[v >> 18], f);
		putc_unlocked(alphabet[(v >> 12) & 63], f);
		putc_unlocked(len - i > 1 ? alphabet[(v >> 6) & 63] : '=', f);
		putc_unlocked('=', f);
	}
	putc_unlocked('"', f);
}

void cli_json_payload(FILE *f, const void *data, size_t len)
{
	if (cli_utf8_valid(data, len)) {
		fputs_unlocked("\"payload\":", f);
		cli_json_string(f, data, len);
	} else {
		fputs_unlocked("\"payload_base64\":", f);
		cli_json_base64(f, data, len);
	}
}

void cli_json_string_array(FILE *f, const char *const *v, size_t n)
{
	putc_unlocked('[', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			putc_unlocked(',', f);
		cli_json_cstring(f, v[i]);
	}
	putc_unlocked(']', f);
}
