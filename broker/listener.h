/* SPDX-License-Identifier: MIT */
/*
 * The listening socket: resolved path (proto/sockpath.h), private directory
 * (an existing one must be ours or root's, not writable by others unless
 * sticky), refusal when a live broker answers or the probe fails other than
 * with ECONNREFUSED, stale socket replacement, bind under a
 * umask that makes the socket exactly socket_mode from the first moment; or
 * the socket systemd passed us (LISTEN_FDS), which we neither bind nor unlink.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <sys/un.h>

#include "log.h"

struct listener {
	int fd;		/* non-blocking, close-on-exec; -1 when closed */
	bool activated; /* came from systemd: do not unlink */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * Open the listening socket. Returns 0, -EADDRINUSE when a live broker
 * answers on the path, or another -errno; failures are logged with the path.
 */
int listener_open(struct listener *l, const char *explicit_path, mode_t mode, const struct logger *log);
/*
 * The access rules admit other users: make the socket reachable for them
 * (ours: add group and other read/write to its mode, search to its directory
 * when ours, and log it; systemd's: warn when its mode keeps them out,
 * naming SocketMode= in lbusd.socket). Problems are logged, never fatal.
 */
void listener_share(const struct listener *l, const struct logger *log);
/* Close the socket and remove the file (unless socket-activated). */
void listener_close(struct listener *l);
