/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness, part 3: raw AF_UNIX connections to the broker,
 * for tests that must send exactly the bytes they choose (bad input) or look
 * at exactly the frames the broker sends.
 *
 * Frames are packed and unpacked with the generated protobuf-c code only,
 * never with proto/wire.c or wire-encode.c, so these helpers stay an independent reference
 * for the broker's behaviour. Every read has a deadline (poll).
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Frames larger than this are refused by the reader (a broken length). */
#define RAW_READ_MAX (64u * 1024u * 1024u)

int lbt_raw_connect(const struct lbt_broker *b)
{
	int fd = lbt_unix_connect(b->sock);
	if (fd < 0) {
		fprintf(stderr, "harness: connect %s: %s\n", b->sock, strerror(-fd));
		lbt_broker_alive(b);
	}
	return fd;
}

int lbt_raw_send_bytes(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int lbt_raw_send_frame(int fd, const Lbus__Frame *f)
{
	size_t len = lbus__frame__get_packed_size(f);
	uint8_t *buf = malloc(len + 4);
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)len;
	buf[1] = (uint8_t)(len >> 8);
	buf[2] = (uint8_t)(len >> 16);
	buf[3] = (uint8_t)(len >> 24);
	lbus__frame__pack(f, buf + 4);
	int r = lbt_raw_send_bytes(fd, buf, len + 4);
	free(buf);
	return r;
}

/* sendmsg() all of data[0..len) with fds on its first byte. 0 or -errno. */
static int send_with_fds(int fd, const uint8_t *data, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(64 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > 64)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf.buf, 0, sizeof(cbuf.buf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return lbt_raw_send_bytes(fd, data + n, len - (size_t)n);
}

int lbt_raw_send_frame_fds(int fd, const Lbus__Frame *f, const int *fds, size_t nfds, size_t split,
			   int pause_ms)
{
	size_t len = lbus__frame__get_packed_size(f) + 4;
	uint8_t *buf = malloc(len);
	int r;

	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)(len - 4);
	buf[1] = (uint8_t)((len - 4) >> 8);
	buf[2] = (uint8_t)((len - 4) >> 16);
	buf[3] = (uint8_t)((len - 4) >> 24);
	lbus__frame__pack(f, buf + 4);
	if (split == 0 || split >= len) {
		r = send_with_fds(fd, buf, len, fds, nfds);
	} else {
		r = lbt_raw_send_bytes(fd, buf, split);
		if (r == 0) {
			lbt_sleep_ms(pause_ms);
			r = send_with_fds(fd, buf + split, len - split, fds, nfds);
		}
	}
	free(buf);
	return r;
}

/* Receive into buf, collecting SCM_RIGHTS descriptors into fds (up to max,
 * *nfds counting them; the rest closed) when fds is not NULL. */
static ssize_t recv_fds(int fd, uint8_t *buf, size_t n, int *fds, size_t max, size_t *nfds)
{
	union {
		char buf[CMSG_SPACE(253 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = buf, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t got;

	if (!fds)
		return recv(fd, buf, n, 0);
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	got = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (got < 0)
		return got;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const int *in = (const int *)(void *)CMSG_DATA(cm);
		for (size_t i = 0; i < k; i++) {
			if (*nfds < max)
				fds[(*nfds)++] = in[i];
			else
				close(in[i]);
		}
	}
	return got;
}

/* Read exactly n bytes before deadline. 0, -ETIMEDOUT, -ECONNRESET (EOF). */
static int read_exact_fds(int fd, uint8_t *buf, size_t n, int64_t deadline, int *fds, size_t max,
			  size_t *nfds);

static int read_exact(int fd, uint8_t *buf, size_t n, int64_t deadline)
{
	return read_exact_fds(fd, buf, n, deadline, NULL, 0, NULL);
}

static int read_exact_fds(int fd, uint8_t *buf, size_t n, int64_t deadline, int *fds, size_t max,
			  size_t *nfds)
{
	while (n) {
		int64_t left = deadline - lbt_now_ms();
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, left > 0 ? (int)left : 0);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0)
			continue;
		ssize_t got = recv_fds(fd, buf, n, fds, max, nfds);
		if (got == 0)
			return -ECONNRESET;
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET || errno == EPIPE ? -ECONNRESET : -errno;
		}
		buf += got;
		n -= (size_t)got;
	}
	return 0;
}

int lbt_raw_read_frame(int fd, int timeout_ms, Lbus__Frame **out)
{
	return lbt_raw_read_frame_fds(fd, timeout_ms, out, NULL, 0, NULL);
}

int lbt_raw_read_frame_fds(int fd, int timeout_ms, Lbus__Frame **out, int *fds, size_t max, size_t *nfds)
{
	int64_t deadline = lbt_now_ms() + timeout_ms;
	uint8_t hdr[4];
	*out = NULL;
	if (nfds)
		*nfds = 0;
	int r = read_exact_fds(fd, hdr, 4, deadline, fds, max, nfds);
	if (r < 0)
		return r;
	uint32_t len =
	    (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (len > RAW_READ_MAX)
		return -EMSGSIZE;
	uint8_t *body = malloc(len ? len : 1);
	if (!body)
		return -ENOMEM;
	r = read_exact(fd, body, len, deadline);
	if (r == 0) {
		*out = lbus__frame__unpack(NULL, len, body);
		if (!*out)
			r = -EPROTO;
	}
	free(body);
	return r;
}

int lbt_raw_hello(int fd, uint64_t *client_id)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Hello h = LBUS__HELLO__INIT;
	h.version = 1;
	f.kind_case = LBUS__FRAME__KIND_HELLO;
	f.hello = &h;
	int r = lbt_raw_send_frame(fd, &f);
	if (r < 0)
		return r;
	Lbus__Frame *in;
	r = lbt_raw_read_frame(fd, lbt_ms(5000), &in);
	if (r < 0) {
		fprintf(stderr, "harness: no welcome: %s\n", strerror(-r));
		return r;
	}
	if (in->kind_case != LBUS__FRAME__KIND_WELCOME) {
		fprintf(stderr, "harness: hello answered by frame kind %d, not welcome\n",
			(int)in->kind_case);
		r = -EPROTO;
	} else if (client_id) {
		*client_id = in->welcome->client_id;
	}
	lbus__frame__free_unpacked(in, NULL);
	return r;
}

static void note_error(const Lbus__Frame *f, struct lbt_error *err)
{
	if (!err || err->seen || f->kind_case != LBUS__FRAME__KIND_ERROR)
		return;
	err->seen = true;
	err->code = (uint32_t)f->error->code;
	err->fatal = f->error->fatal;
	err->request = f->error->request;
}

int lbt_raw_expect_close(int fd, int timeout_ms, struct lbt_error *err)
{
	int64_t deadline = lbt_now_ms() + timeout_ms;
	if (err)
		memset(err, 0, sizeof(*err));
	for (;;) {
		Lbus__Frame *f;
		int64_t left = deadline - lbt_now_ms();
		int r = lbt_raw_read_frame(fd, left > 0 ? (int)left : 0, &f);
		if (r == -ECONNRESET)
			return 0;
		if (r == -ETIMEDOUT)
			return r;
		if (r < 0) /* undecodable bytes from the broker: keep reading to EOF */
			continue;
		note_error(f, err);
		lbus__frame__free_unpacked(f, NULL);
	}
}

int lbt_raw_sync(int fd, uint64_t token, int timeout_ms, struct lbt_error *err)
{
	Lbus__Frame f = LBUS__FRAME__INIT;
	Lbus__Ping ping = LBUS__PING__INIT;
	ping.token = token;
	f.kind_case = LBUS__FRAME__KIND_PING;
	f.ping = &ping;
	int r = lbt_raw_send_frame(fd, &f);
	if (r < 0)
		return r;
	int64_t deadline = lbt_now_ms() + timeout_ms;
	for (;;) {
		Lbus__Frame *in;
		int64_t left = deadline - lbt_now_ms();
		r = lbt_raw_read_frame(fd, left > 0 ? (int)left : 0, &in);
		if (r < 0)
			return r;
		note_error(in, err);
		bool done = in->kind_case == LBUS__FRAME__KIND_PONG && in->pong->token == token;
		lbus__frame__free_unpacked(in, NULL);
		if (done)
			return 0;
	}
}
