/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648) for the bytes fields of the JSON mapping (pbjson.h):
 * written in the standard alphabet with padding, as protobuf writes it;
 * read in either alphabet, padding optional, as protobuf reads it.
 */
#include <errno.h>
#include <stdlib.h>

#include "pbjson.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pbj_base64_encode(const void *data, size_t len)
{
	const uint8_t *p = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i = 0;

	if (!out)
		return NULL;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i > 0) {
		uint32_t v = (uint32_t)p[i] << 16 | (len - i > 1 ? (uint32_t)p[i + 1] << 8 : 0);

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = len - i > 1 ? alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* The 6-bit value of c in either alphabet, or -1. */
static int sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int pbj_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	uint32_t acc = 0;
	size_t n = 0, bits = 0;

	while (len > 0 && text[len - 1] == '=' && len % 4 != 1)
		len--; /* padding: at most two, only at the end */
	if (len % 4 == 1)
		return -EINVAL;
	if (!(buf = malloc(len * 3 / 4 + 1)))
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = sextet(text[i]);

		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	*out = buf;
	*out_len = n;
	return 0;
}
