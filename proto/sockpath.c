/* SPDX-License-Identifier: MIT */
/*
 * Socket path resolution (see sockpath.h), shared so that the broker and
 * every client agree on where the bus is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockpath.h"

static int put_path(char *out, size_t size, int n)
{
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int lbus_socket_path_resolve(const char *explicit_path, char *out, size_t size,
			     enum lbus_sockpath_source *source)
{
	enum lbus_sockpath_source unused;
	const char *env;

	if (!source)
		source = &unused;
	*source = LBUS_SOCKPATH_EXPLICIT;
	if (explicit_path && *explicit_path)
		return put_path(out, size, snprintf(out, size, "%s", explicit_path));
	*source = LBUS_SOCKPATH_ENV;
	env = getenv("LBUS_SOCKET");
	if (env && *env)
		return put_path(out, size, snprintf(out, size, "%s", env));
	*source = LBUS_SOCKPATH_XDG;
	env = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		return put_path(out, size, snprintf(out, size, "%s/lbus/bus.sock", env));
	*source = LBUS_SOCKPATH_FALLBACK;
	return put_path(out, size, snprintf(out, size, "/tmp/lbus-%u/bus.sock", (unsigned)getuid()));
}
