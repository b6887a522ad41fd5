/* SPDX-License-Identifier: MIT */
/*
 * A small, strict HTTP/1.1 responder for `lbus metrics`: one request per
 * connection, answered and closed (`Connection: close`), which is all a
 * Prometheus scrape needs. Every read and write has a deadline, the request
 * head is bounded, and nothing here blocks: a client that sends nothing, or
 * reads nothing, costs its deadline and no more.
 *
 * Requests are parsed per RFC 9112: request-line `METHOD SP TARGET SP
 * HTTP/1.x` then header fields up to an empty line; a request with a body
 * (Content-Length other than 0, or Transfer-Encoding) is refused, as no
 * resource here takes one; so is an HTTP/1.1 request without exactly one
 * Host field (RFC 9112, 3.2).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest request head accepted (request line and header fields). */
#define HTTP_HEAD_MAX 8192

struct http_request {
	char method[16];
	char path[256];	  /* the target without its query ("/metrics") */
	char accept[512]; /* the Accept field, "" when absent */
	bool has_body;	  /* Content-Length > 0 or Transfer-Encoding */
	int minor;	  /* HTTP/1.minor */
	int hosts;	  /* Host fields seen */
};

/*
 * Read a request head from the non-blocking socket fd into buf (size >
 * HTTP_HEAD_MAX) until the empty line that ends it, waiting at most until
 * deadline_ms (http_now_ms()). Returns its length (NUL-terminated in
 * buf), -ETIMEDOUT, -EMSGSIZE (no end within HTTP_HEAD_MAX bytes),
 * -ECONNRESET (the client closed first) or another negative errno.
 */
ssize_t http_read_head(int fd, char *buf, size_t size, int64_t deadline_ms);

/* Parse a request head (NUL-terminated). Returns 0, or the status to
 * answer with: 400 (malformed, or Host missing or repeated in HTTP/1.1),
 * 505 (not HTTP/1.x). */
int http_parse_request(const char *head, struct http_request *req);

/*
 * Write a complete response: status line, Date, Content-Type (if not NULL),
 * Content-Length, Connection: close, extra (NULL, or header lines each
 * ending in "\r\n"), then body unless head_only (a HEAD request). Returns 0,
 * -ETIMEDOUT, or a negative errno.
 */
int http_respond(int fd, int status, const char *content_type, const char *extra, const void *body,
		 size_t len, bool head_only, int64_t deadline_ms);

/* End the connection gracefully: shut down our side, read and discard
 * what the client still sends until it closes (or deadline_ms), close fd. */
void http_close(int fd, int64_t deadline_ms);

/* The clock of the deadlines: CLOCK_MONOTONIC in milliseconds. */
int64_t http_now_ms(void);

/* The reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);
