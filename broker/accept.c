/* SPDX-License-Identifier: MIT */
/*
 * Admission (see accept.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "broker.h"
#include "clock.h"
#include "peer.h"

#define ACCEPT_BATCH 64		/* connections accepted per wakeup */
#define ACCEPT_DENIAL_MAX 256	/* room for the packed denial frame */
#define ACCEPT_SHED_LOG_MS 1000 /* log refused connections at most this often */

/* Refuse a connection from another uid: one Error frame, then close. */
static void accept_deny(struct broker *b, int fd, const struct ucred *cr)
{
	Lbus__Error err = LBUS__ERROR__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	uint8_t buf[ACCEPT_DENIAL_MAX];

	err.code = LBUS__ERROR_CODE__ERR_DENIED;
	err.reason = "permission denied: this bus admits only its owner's uid";
	err.fatal = true;
	f.kind_case = LBUS__FRAME__KIND_ERROR;
	f.error = &err;
	if (lbus_frame_packed_size(&f) <= sizeof(buf) &&
	    send(fd, buf, lbus_frame_pack(&f, buf), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_msg(&b->log, LOG_DEBUG, "could not send denial: %s", strerror(errno));
	log_msg(&b->log, LOG_WARNING, "denied connection from pid %d uid %u", (int)cr->pid,
		(unsigned)cr->uid);
	close(fd);
}

static void accept_one(struct broker *b, int fd)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		log_msg(&b->log, LOG_WARNING, "SO_PEERCRED failed: %s", strerror(errno));
		close(fd);
		return;
	}
	if (cr.uid != b->uid) {
		accept_deny(b, fd, &cr);
		return;
	}
	peer_new(b, fd, cr.pid, cr.uid, cr.gid);
}

/* EMFILE/ENFILE: accept with the spare fd and close at once, so the pending
 * connection does not keep the listener readable (no busy loop). */
static void accept_shed(struct broker *b)
{
	int fd;

	if (b->reserve_fd < 0)
		return;
	close(b->reserve_fd);
	fd = accept4(b->listener.fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	b->shed_count++;
	if (clock_now_ms() - b->shed_logged_ms >= ACCEPT_SHED_LOG_MS) {
		b->shed_logged_ms = clock_now_ms();
		log_msg(&b->log, LOG_WARNING, "out of file descriptors: refused %llu connection(s) so far",
			(unsigned long long)b->shed_count);
	}
}

void accept_pending(struct broker *b)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(b->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			accept_one(b, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			accept_shed(b);
			if (b->reserve_fd < 0)
				return;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_msg(&b->log, LOG_WARNING, "accept: %s", strerror(errno));
		return;
	}
}
