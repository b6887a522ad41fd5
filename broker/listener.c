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
 *
 * Sharing (listener_share): when the access rules admit other users, a
 * socket we bound is opened to them (0066 added; its directory, when ours,
 * gets search permission 0011, never read), which is safe because every
 * peer is judged by the rules at connect; a socket systemd passed keeps the
 * unit's mode, and we warn when that mode keeps the admitted users out.
 * Either way a directory above that others cannot search is named.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listener.h"
#include "sockpath.h"

#define SD_LISTEN_FDS_START 3	    /* the first fd systemd passes (sd_listen_fds(3)) */
#define LISTENER_SHARED_SOCKET 0066 /* read and write for group and others: connect() */
#define LISTENER_SHARED_DIR 0011    /* search (not list) for group and others */

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
			log_msg(log, LOG_NOTICE,
				"socket %s is %04o (socket_mode): others may open it; the broker admits only "
				"its own uid, root and whom the access rules allow",
				l->path, (unsigned)mode);
	}
	return ret;
}

/* ---- sharing with other users ------------------------------------------------ */

/* Into out, the first directory on the way to path (path itself excluded)
 * that others may not search; false when there is none. */
static bool closed_ancestor(const char *path, char *out, size_t size, mode_t *mode)
{
	struct stat st;

	snprintf(out, size, "%s", path);
	for (char *p = out + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (stat(out, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			*mode = st.st_mode & 07777;
			return true;
		}
		*p = '/';
	}
	return false;
}

/* Warn about a directory on the way to path that keeps other users out;
 * fix says how. */
static void warn_closed_ancestor(const char *path, const char *fix, const struct logger *log)
{
	char dir[PATH_MAX];
	mode_t mode;

	if (closed_ancestor(path, dir, sizeof(dir), &mode))
		log_msg(log, LOG_WARNING,
			"access rules admit other users, but directory %s is %04o: they cannot reach the "
			"socket %s through it (%s)",
			dir, (unsigned)mode, path, fix);
}

/* Add bits to the mode of path (a socket, or a directory when ours only);
 * the new mode, or 0 when nothing changed (or could not be changed:
 * logged). */
static mode_t add_mode(const char *path, mode_t bits, bool only_ours, const struct logger *log)
{
	struct stat st;
	mode_t mode;

	if (stat(path, &st) < 0 || (only_ours && st.st_uid != geteuid()) || (st.st_mode & bits) == bits)
		return 0;
	mode = (st.st_mode & 07777) | bits;
	if (chmod(path, mode) == 0)
		return mode;
	log_msg(log, LOG_WARNING, "cannot open %s to other users: %s", path, strerror(errno));
	return 0;
}

/* Our own socket: open it (and search its directory, when ours) to group
 * and others, and say so. */
static void share_bound(const struct listener *l, const struct logger *log)
{
	char buf[sizeof(l->path)], what[2 * sizeof(l->path) + 64] = "";
	const char *dir;
	mode_t sock, dmode;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", l->path);
	dir = dirname(buf);
	sock = add_mode(l->path, LISTENER_SHARED_SOCKET, false, log);
	dmode = add_mode(dir, LISTENER_SHARED_DIR, true, log);
	if (sock)
		n = snprintf(what, sizeof(what), "socket %s %04o", l->path, (unsigned)sock);
	if (dmode)
		snprintf(what + n, sizeof(what) - (size_t)n, "%sdirectory %s %04o", n ? ", " : "", dir,
			 (unsigned)dmode);
	if (*what)
		log_msg(log, LOG_NOTICE,
			"access rules admit other users: made %s so that they can reach the broker "
			"(the rules decide what they may do)",
			what);
	warn_closed_ancestor(l->path, "make it searchable: chmod o+x, or choose another socket path", log);
}

/* A socket from systemd: its mode is the unit's; warn when it keeps the
 * admitted users out. */
static void share_activated(const struct listener *l, const struct logger *log)
{
	struct sockaddr_un sa = {0};
	socklen_t len = sizeof(sa) - 1; /* keeps a NUL at the end */
	struct stat st;

	if (getsockname(l->fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_path[0] == '\0' ||
	    stat(sa.sun_path, &st) < 0)
		return; /* abstract or unnamed: no file mode to check */
	if ((st.st_mode & LISTENER_SHARED_SOCKET) != LISTENER_SHARED_SOCKET)
		log_msg(log, LOG_WARNING,
			"access rules admit other users, but the socket %s passed by systemd is %04o: "
			"they cannot connect; set SocketMode=0666 in lbusd.socket "
			"(systemctl --user edit lbusd.socket) and restart the socket unit",
			sa.sun_path, (unsigned)(st.st_mode & 07777));
	warn_closed_ancestor(
	    sa.sun_path, "DirectoryMode=0711 in lbusd.socket for a directory systemd creates, else chmod o+x",
	    log);
}

void listener_share(const struct listener *l, const struct logger *log)
{
	if (l->fd < 0)
		return;
	if (l->activated)
		share_activated(l, log);
	else
		share_bound(l, log);
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
