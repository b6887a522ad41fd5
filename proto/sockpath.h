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

/* Writes the path into out. Returns 0, or -ENAMETOOLONG when it does not fit
 * in out or in a sockaddr_un. */
int lbus_socket_path_resolve(const char *explicit_path, char *out, size_t size);
