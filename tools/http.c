/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 responder of lbus metrics (see http.h): reading a bounded
 * request head with a deadline, parsing its request line and the few header
 * fields that matter, and writing a response with a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

int64_t http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or deadline_ms. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left = deadline_ms - http_now_ms();
	int r;

	if (left <= 0)
		return -ETIMEDOUT;
	r = poll(&p, 1, (int)left);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

ssize_t http_read_head(int fd, char *buf, size_t size, int64_t deadline_ms)
{
	size_t len = 0, max = size - 1 < HTTP_HEAD_MAX ? size - 1 : HTTP_HEAD_MAX;

	for (;;) {
		ssize_t n = recv(fd, buf + len, max - len, 0);
		char *end;

		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			end = strstr(buf, "\r\n\r\n");
			if (end)
				return (ssize_t)(end + 4 - buf);
			if (len == max)
				return -EMSGSIZE;
			continue;
		}
		n = wait_fd(fd, POLLIN, deadline_ms);
		if (n < 0)
			return n;
	}
}

/* Is s a token (RFC 9110 tchar+)? */
static bool is_token(const char *s, size_t len)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') || (s[i] && strchr(extra, s[i]))))
			return false;
	return true;
}

/* Parse "METHOD SP TARGET SP HTTP/1.x" (len bytes). 0 or a status. */
static int parse_request_line(const char *line, size_t len, struct http_request *req)
{
	const char *sp1 = memchr(line, ' ', len), *sp2, *query;
	size_t mlen, tlen;

	if (!sp1)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	if (!sp2)
		return 400;
	mlen = (size_t)(sp1 - line);
	tlen = (size_t)(sp2 - sp1 - 1);
	if (!is_token(line, mlen) || mlen >= sizeof(req->method) || tlen == 0)
		return 400;
	if ((size_t)(line + len - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return strncmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return 505;
	memcpy(req->method, line, mlen);
	req->method[mlen] = '\0';
	req->minor = sp2[8] - '0';
	query = memchr(sp1 + 1, '?', tlen);
	if (query)
		tlen = (size_t)(query - sp1 - 1);
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= ' ' || (unsigned char)sp1[1 + i] >= 0x7f)
			return 400;
	if (tlen >= sizeof(req->path))
		tlen = sizeof(req->path) - 1; /* long paths are no resource of ours: 404 */
	memcpy(req->path, sp1 + 1, tlen);
	req->path[tlen] = '\0';
	return 0;
}

/* Take note of one header field line "Name: value" (len bytes). 0 or 400. */
static int parse_field(const char *line, size_t len, struct http_request *req)
{
	const char *colon = memchr(line, ':', len);
	const char *v, *end = line + len;

	if (!colon || !is_token(line, (size_t)(colon - line)))
		return 400; /* also a field name followed by white space */
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (colon - line == 4 && strncasecmp(line, "host", 4) == 0)
		req->hosts++;
	else if (colon - line == 6 && strncasecmp(line, "accept", 6) == 0)
		snprintf(req->accept, sizeof(req->accept), "%.*s", (int)(end - v), v);
	else if (colon - line == 14 && strncasecmp(line, "content-length", 14) == 0)
		req->has_body = req->has_body || strspn(v, "0") != (size_t)(end - v);
	else if (colon - line == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
		req->has_body = true;
	return 0;
}

int http_parse_request(const char *head, struct http_request *req)
{
	const char *line = head, *eol;
	int r;

	memset(req, 0, sizeof(*req));
	eol = strstr(line, "\r\n");
	if (!eol)
		return 400;
	r = parse_request_line(line, (size_t)(eol - line), req);
	if (r)
		return r;
	for (line = eol + 2; (eol = strstr(line, "\r\n")) && eol != line; line = eol + 2) {
		r = parse_field(line, (size_t)(eol - line), req);
		if (r)
			return r;
	}
	if (!eol || (req->minor == 1 && req->hosts != 1))
		return 400;
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	}
	return "Error";
}

/* Write all of data before deadline_ms. 0 or a negative errno. */
static int write_all(int fd, const char *data, size_t len, int64_t deadline_ms)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		n = wait_fd(fd, POLLOUT, deadline_ms);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

int http_respond(int fd, int status, const char *content_type, const char *extra, const void *body,
		 size_t len, bool head_only, int64_t deadline_ms)
{
	char head[1024], date[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%sContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
		     status, http_reason(status), date, content_type ? "Content-Type: " : "",
		     content_type ? content_type : "", content_type ? "\r\n" : "", len, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EOVERFLOW;
	n = write_all(fd, head, (size_t)n, deadline_ms);
	if (n < 0 || head_only)
		return n;
	return write_all(fd, body, len, deadline_ms);
}

void http_close(int fd, int64_t deadline_ms)
{
	char sink[1024];

	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = recv(fd, sink, sizeof(sink), 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (n < 0 && wait_fd(fd, POLLIN, deadline_ms) < 0)
			break;
	}
	close(fd);
}
