/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the HTTP/1.1 responder of lbus metrics (tools/http.c) over
 * socketpairs: request heads read whole, in pieces, too large, or never
 * sent (the deadline holds); request lines and fields parsed or refused
 * with the right status; a response's exact bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

/* A connected pair; fds[0] (the server side) non-blocking. */
static void pair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

static void send_str(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void test_read_head(void **state)
{
	char buf[HTTP_HEAD_MAX + 1];
	int fds[2];

	pair(fds);
	send_str(fds[1], "GET /metrics HTTP/1.1\r\nHost: x\r\n");
	send_str(fds[1], "\r\n");
	assert_int_equal(http_read_head(fds[0], buf, sizeof(buf), http_now_ms() + 1000),
			 (ssize_t)strlen("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
	close(fds[0]);
	close(fds[1]);
}

static void test_read_head_deadline(void **state)
{
	char buf[HTTP_HEAD_MAX + 1];
	int fds[2];
	int64_t t0;

	pair(fds);
	send_str(fds[1], "GET /metrics HTTP/1.1\r\n"); /* and nothing more */
	t0 = http_now_ms();
	assert_int_equal(http_read_head(fds[0], buf, sizeof(buf), t0 + 200), -ETIMEDOUT);
	assert_true(http_now_ms() - t0 >= 190);
	assert_true(http_now_ms() - t0 < 2000);
	close(fds[1]); /* the client gives up */
	assert_int_equal(http_read_head(fds[0], buf, sizeof(buf), http_now_ms() + 200), -ECONNRESET);
	close(fds[0]);
}

static void test_read_head_too_large(void **state)
{
	char buf[HTTP_HEAD_MAX + 1], line[1001];
	int fds[2];

	pair(fds);
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	send_str(fds[1], "GET /metrics HTTP/1.1\r\n");
	for (int i = 0; i < 9; i++) {
		send_str(fds[1], "X-Pad: ");
		send_str(fds[1], line);
		send_str(fds[1], "\r\n");
	}
	assert_int_equal(http_read_head(fds[0], buf, sizeof(buf), http_now_ms() + 1000), -EMSGSIZE);
	close(fds[0]);
	close(fds[1]);
}

static int parse(const char *head, struct http_request *req)
{
	return http_parse_request(head, req);
}

static void test_parse(void **state)
{
	struct http_request r;

	assert_int_equal(
	    parse("GET /metrics HTTP/1.1\r\nHost: h\r\nAccept:  text/plain;version=0.0.4 \r\n\r\n", &r), 0);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/metrics");
	assert_string_equal(r.accept, "text/plain;version=0.0.4");
	assert_false(r.has_body);

	assert_int_equal(parse("HEAD /metrics?name[]=x HTTP/1.0\r\n\r\n", &r), 0);
	assert_string_equal(r.method, "HEAD");
	assert_string_equal(r.path, "/metrics");
	assert_string_equal(r.accept, "");

	assert_int_equal(parse("POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &r), 0);
	assert_false(r.has_body);
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\nHOST: h\r\ncontent-length: 12\r\n\r\n", &r), 0);
	assert_true(r.has_body);
	assert_int_equal(parse("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n", &r), 0);
	assert_true(r.has_body);
}

static void test_parse_refusals(void **state)
{
	struct http_request r;

	assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n", &r), 505);
	assert_int_equal(parse("GET /metrics HTTP/1.9\r\n\r\n", &r), 505);
	assert_int_equal(parse("GET /metrics\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /met rics HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("G(T /metrics HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), 400);
	assert_int_equal(parse("GET /m\x01 HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("", &r), 400);
	/* HTTP/1.1 needs exactly one Host (1.0 none) */
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
}

static void test_respond(void **state)
{
	char buf[1024];
	int fds[2];
	ssize_t n;

	pair(fds);
	assert_int_equal(http_respond(fds[0], 404, "text/plain", "Allow: GET\r\n", "Not Found", 9, false,
				      http_now_ms() + 1000),
			 0);
	http_close(fds[0], http_now_ms() + 100); /* the peer is still open: the deadline ends it */
	n = read(fds[1], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_true(strncmp(buf, "HTTP/1.1 404 Not Found\r\nDate: ", 30) == 0);
	assert_non_null(strstr(buf, " GMT\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
				    "Connection: close\r\nAllow: GET\r\n\r\nNot Found"));
	assert_int_equal(read(fds[1], buf, sizeof(buf)), 0); /* closed */
	close(fds[1]);

	pair(fds);
	assert_int_equal(http_respond(fds[0], 200, "a/b", NULL, "body", 4, true, http_now_ms() + 1000), 0);
	close(fds[0]);
	n = read(fds[1], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	assert_non_null(strstr(buf, "Content-Length: 4\r\nConnection: close\r\n\r\n"));
	assert_null(strstr(buf, "body")); /* HEAD: no body */
	close(fds[1]);
}

static void test_reasons(void **state)
{
	assert_string_equal(http_reason(200), "OK");
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(408), "Request Timeout");
	assert_string_equal(http_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_reason(503), "Service Unavailable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_head),
	    cmocka_unit_test(test_read_head_deadline),
	    cmocka_unit_test(test_read_head_too_large),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_respond),
	    cmocka_unit_test(test_reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
