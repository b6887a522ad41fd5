/* SPDX-License-Identifier: MIT */
/*
 * Socket path resolution, identical for broker and clients; first match wins:
 *  1. explicit (-S PATH / --socket PATH / library option), if not NULL/empty;
 *  2. $LBUS_SOCKET, if set and not empty;
 *  3. $XDG_RUNTIME_DIR/lbus/bus.sock, if XDG_RUNTIME_DIR is set and not empty;
 *  4. /tmp/lbus-$UID/bus.sock.
 */
#pragma once

#include <stddef.h>

/* Which rule of the resolution order produced the path. (Whatever the
 * rule, a client trusts only a broker of its own user or root, unless told
 * otherwise: libclient/client.c.) */
enum lbus_sockpath_source {
	LBUS_SOCKPATH_EXPLICIT = 1,
	LBUS_SOCKPATH_ENV,	/* $LBUS_SOCKET */
	LBUS_SOCKPATH_XDG,	/* $XDG_RUNTIME_DIR/lbus/bus.sock */
	LBUS_SOCKPATH_FALLBACK, /* /tmp/lbus-$UID/bus.sock */
};

/* Writes the path into out and, when source is not NULL, which rule gave it
 * into *source. Returns 0, or -ENAMETOOLONG when it does not fit in out or in
 * a sockaddr_un. */
int lbus_socket_path_resolve(const char *explicit_path, char *out, size_t size,
			     enum lbus_sockpath_source *source);
