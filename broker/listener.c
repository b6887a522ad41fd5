/* SPDX-License-Identifier: MIT */
/*
 * Listening socket set-up (see listener.h).
 *
 * Order matters: the directory is made private first (created 0700 if only
 * its last component is missing; an existing one is the user's choice and
 * its mode left as it is: the socket itself is socket_mode, 0600 by default, and peers are checked),
 * but an existing directory must be safe to trust: not a symbolic link
 * (checked with lstat: whoever owns a link can re-point it, e.g. from
 * /tmp/lbus-$UID to a directory of their own later), owned by us or root,
 * and not writable by others unless sticky (like /tmp); otherwise whoever
 * controls it could replace our socket and receive our clients' traffic.
 * Then an existing socket file is probed with connect(): a live broker means
 * refuse; only ECONNREFUSED (nobody listening) means a stale file that we
 * replace; any other error (EACCES: a broker we may not talk to, EAGAIN: a
 * busy one, ...) means refuse and leave the file alone. bind() runs under
 * umask(~mode & 0777) so the socket never exists with wider permissions.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listener.h"
#include "sockpath.h"

#define SD_LISTEN_FDS_START 3 /* the first fd systemd passes (sd_listen_fds(3)) */

static int socket_activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID");
	const char *fds = getenv("LISTEN_FDS");

	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid() || strtol(fds, NULL, 10) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return SD_LISTEN_FDS_START;
}

static int ensure_private_dir(const char *sock_path, mode_t mode, const struct logger *log)
{
	char buf[sizeof(((struct listener *)0)->path)];
	struct stat st;
	const char *dir;

	snprintf(buf, sizeof(buf), "%s", sock_path);
	dir = dirname(buf);
	if (lstat(dir, &st) < 0) {
		if (errno != ENOENT || mkdir(dir, 0700) < 0) {
			int err = -errno;
			log_msg(log, LOG_ERR, "cannot create directory %s: %s", dir, strerror(-err));
			return err;
		}
		return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		log_msg(log, LOG_ERR,
			"directory %s is a symbolic link; refusing to use it (whoever owns the link can "
			"re-point it): give the directory it points to",
			dir);
		return -ELOOP;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_msg(log, LOG_ERR, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		log_msg(
		    log, LOG_ERR,
		    "directory %s is owned by uid %u, neither this user (%u) nor root; refusing to use it",
		    dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
		log_msg(log, LOG_ERR,
			"directory %s is writable by group or others and not sticky; refusing to use it",
			dir);
		return -EPERM;
	}
	if (st.st_mode & 077)
		log_msg(log, LOG_NOTICE, "directory %s is open to others; the socket is %04o (socket_mode)",
			dir, (unsigned)mode);
	return 0;
}

/* 0 when the path is free (or was a stale socket, now removed). */
static int check_existing(const char *path, const struct logger *log)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret, err;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_msg(log, LOG_ERR, "%s exists and is not a socket; refusing to replace it", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	if (ret == 0) {
		log_msg(log, LOG_ERR, "another broker is already running on %s", path);
		return -EADDRINUSE;
	}
	if (err == ENOENT) /* removed meanwhile */
		return 0;
	if (err != ECONNREFUSED) {
		log_msg(log, LOG_ERR,
			"cannot tell whether a broker is running on %s (connect: %s); refusing to replace it",
			path, strerror(err));
		return -err;
	}
	log_msg(log, LOG_NOTICE, "removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int bind_and_listen(struct listener *l, mode_t mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, ret = 0;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
	old = umask(~mode & 0777);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ret = -errno;
	umask(old);
	if (ret == 0 && listen(fd, SOMAXCONN) < 0) {
		ret = -errno;
		unlink(l->path);
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	l->fd = fd;
	return 0;
}

int listener_open(struct listener *l, const char *explicit_path, mode_t mode, const struct logger *log)
{
	int ret, fd;

	l->fd = -1;
	l->activated = false;
	ret = lbus_socket_path_resolve(explicit_path, l->path, sizeof(l->path), NULL);
	if (ret < 0) {
		log_msg(log, LOG_ERR, "socket path too long");
		return ret;
	}
	fd = socket_activated_fd();
	if (fd >= 0) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		l->fd = fd;
		l->activated = true;
		log_msg(log, LOG_INFO, "using socket passed by systemd (fd %d)", SD_LISTEN_FDS_START);
		return 0;
	}
	ret = ensure_private_dir(l->path, mode, log);
	if (ret == 0)
		ret = check_existing(l->path, log);
	if (ret == 0) {
		ret = bind_and_listen(l, mode);
		if (ret < 0)
			log_msg(log, LOG_ERR, "cannot listen on %s: %s", l->path, strerror(-ret));
		else if (mode & 077)
			log_msg(
			    log, LOG_NOTICE,
			    "socket %s is %04o (socket_mode): others may open it; the broker still admits "
			    "only its own uid",
			    l->path, (unsigned)mode);
	}
	return ret;
}

void listener_close(struct listener *l)
{
	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	if (!l->activated)
		unlink(l->path);
}
