/* SPDX-License-Identifier: MIT */
/*
 * lbus.h on its own: this file includes nothing else, and the build
 * compiles it (syntax only) as strict C99 and as C++ (tests/meson.build,
 * header-c99 and header-c++). It uses the option structs' initialisers and
 * the version macros, which must compile in both languages.
 */
#include "lbus.h"

#if !defined(LBUS_VERSION_MAJOR) || !defined(LBUS_VERSION_MINOR) || !defined(LBUS_VERSION_PATCH)
#error "lbus.h must provide LBUS_VERSION_MAJOR, _MINOR and _PATCH"
#endif

int header_alone(lbus *bus);

int header_alone(lbus *bus)
{
	struct lbus_connect_opts copts = LBUS_CONNECT_OPTS_INIT;
	struct lbus_sub_opts opts = LBUS_SUB_OPTS_INIT;
	const char *version = LBUS_VERSION_STRING;

	opts.policy = LBUS_POLICY_BLOCK;
	(void)copts;
	(void)version;
	return lbus_subscribe(bus, "a/+", (lbus_msg_fn)0, (void *)0, &opts, (uint64_t *)0);
}
