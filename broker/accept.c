/* SPDX-License-Identifier: MIT */
/*
 * Admission (see accept.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "access.h"
#include "broker.h"
#include "clock.h"
#include "peer.h"

#define ACCEPT_BATCH 64		  /* connections accepted per wakeup */
#define ACCEPT_REFUSAL_MAX 512	  /* room for the packed refusal frame */
#define ACCEPT_WHY_MAX 200	  /* room for a limit refusal's reason */
#define ACCEPT_LOG_PERIOD_MS 1000 /* log fd shortage at most this often */

/* Refuse a connection before its hello: one fatal Error frame (code,
 * reason), then close. */
static void accept_refuse(struct broker *b, int fd, uint32_t code, const char *reason)
{
	Lbus__Error err = LBUS__ERROR__INIT;
	Lbus__Frame f = LBUS__FRAME__INIT;
	uint8_t buf[ACCEPT_REFUSAL_MAX];

	err.code = code;
	err.reason = (char *)reason;
	err.fatal = true;
	f.kind_case = LBUS__FRAME__KIND_ERROR;
	f.error = &err;
	if (lbus_frame_packed_size(&f) <= sizeof(buf) &&
	    send(fd, buf, lbus_frame_pack(&f, buf), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_msg(&b->log, LOG_DEBUG, "could not send the refusal: %s", strerror(errno));
	close(fd);
}

/* Log a refused connection (rate-limited: a client retrying in a loop must
 * not flood the log; the lines skipped are counted in a summary, log.h). */
static void accept_log_refusal(struct broker *b, const struct ucred *cr, const char *why)
{
	log_limited(&b->log, LOG_FLOOD_REFUSED, LOG_WARNING, "refused connection from pid %d uid %u: %s",
		    (int)cr->pid, (unsigned)cr->uid, why);
}

/* May this peer connect? true (*id: NULL when trusted, else its identity
 * for the access rules), or false after refusing it (logged, counted). */
static bool accept_admit(struct broker *b, int fd, const struct ucred *cr, struct policy_id **id)
{
	static const char denied[] =
	    "permission denied: this bus admits only its owner's uid and the users its access rules allow";
	char why[ACCEPT_WHY_MAX];
	enum limit_refusal lim;

	*id = NULL;
	if (!access_trusted(b, cr->uid)) {
		*id = access_id_read(fd, cr);
		if (!*id) {
			log_msg(&b->log, LOG_WARNING, "out of memory for a new connection's identity");
			close(fd);
			return false;
		}
		if (!access_may_connect(b, *id)) {
			access_id_free(*id);
			accept_log_refusal(b, cr, denied);
			accept_refuse(b, fd, LBUS__ERROR_CODE__ERR_DENIED, denied);
			return false;
		}
	}
	lim = uid_limits_admit(&b->uid_limits, &b->cfg, b->ctr.clients, cr->uid, why, sizeof(why));
	if (lim == LIMIT_OK)
		return true;
	if (lim == LIMIT_MAX_CLIENTS)
		b->ctr.refused_max_clients++;
	else
		b->ctr.refused_max_clients_per_uid++;
	accept_log_refusal(b, cr, why);
	accept_refuse(b, fd, LBUS__ERROR_CODE__ERR_LIMIT, why);
	access_id_free(*id);
	return false;
}

/* The new peer's id, or -ECONNREFUSED (refused or failed: fd closed). */
static int64_t accept_one(struct broker *b, int fd)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct policy_id *id;
	struct peer *p;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		log_msg(&b->log, LOG_WARNING, "SO_PEERCRED failed: %s", strerror(errno));
		close(fd);
		return -ECONNREFUSED;
	}
	if (!accept_admit(b, fd, &cr, &id))
		return -ECONNREFUSED;
	p = peer_new(b, fd, cr.pid, cr.uid, cr.gid);
	if (!p) {
		access_id_free(id);
		return -ECONNREFUSED;
	}
	p->foreign = id;
	return (int64_t)p->id;
}

int64_t accept_adopt(struct broker *b, int fd)
{
	return accept_one(b, fd);
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
	if (clock_now_ms() - b->shed_logged_ms >= ACCEPT_LOG_PERIOD_MS) {
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
