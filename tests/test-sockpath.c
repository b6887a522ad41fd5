/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/sockpath.c: where broker and clients look for the bus,
 * first match wins: explicit path, $LBUS_SOCKET, $XDG_RUNTIME_DIR/lbus/
 * bus.sock, /tmp/lbus-$UID/bus.sock. Empty values count as unset; a path
 * that does not fit a sockaddr_un is refused rather than truncated.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sockpath.h"

static void resolve_src(const char *explicit_path, const char *want, enum lbus_sockpath_source want_src)
{
	char out[sizeof(((struct sockaddr_un *)0)->sun_path)];
	enum lbus_sockpath_source src = 0;
	memset(out, 'z', sizeof(out));
	assert_int_equal(lbus_socket_path_resolve(explicit_path, out, sizeof(out), &src), 0);
	assert_string_equal(out, want);
	assert_int_equal(src, want_src);
	assert_int_equal(lbus_socket_path_resolve(explicit_path, out, sizeof(out), NULL), 0);
	assert_string_equal(out, want);
}

static void resolve_ok(const char *explicit_path, const char *want)
{
	char out[sizeof(((struct sockaddr_un *)0)->sun_path)];
	memset(out, 'z', sizeof(out));
	assert_int_equal(lbus_socket_path_resolve(explicit_path, out, sizeof(out), NULL), 0);
	assert_string_equal(out, want);
}

/* Which rule gave the path: the client distrusts only the /tmp fallback. */
static void test_resolution_source(void **state)
{
	char want[64];
	snprintf(want, sizeof(want), "/tmp/lbus-%u/bus.sock", (unsigned)getuid());
	setenv("LBUS_SOCKET", "/env/lbus.sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
	resolve_src("/x.sock", "/x.sock", LBUS_SOCKPATH_EXPLICIT);
	resolve_src(NULL, "/env/lbus.sock", LBUS_SOCKPATH_ENV);
	unsetenv("LBUS_SOCKET");
	resolve_src("", "/run/user/42/lbus/bus.sock", LBUS_SOCKPATH_XDG);
	unsetenv("XDG_RUNTIME_DIR");
	resolve_src(NULL, want, LBUS_SOCKPATH_FALLBACK);
	resolve_src(want, want, LBUS_SOCKPATH_EXPLICIT); /* the same path, given: trusted */
}

static void test_resolution_order(void **state)
{
	setenv("LBUS_SOCKET", "/env/lbus.sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
	resolve_ok("/explicit/bus.sock", "/explicit/bus.sock");
	resolve_ok(NULL, "/env/lbus.sock");
	resolve_ok("", "/env/lbus.sock"); /* empty explicit = not given */

	unsetenv("LBUS_SOCKET");
	resolve_ok(NULL, "/run/user/42/lbus/bus.sock");
	setenv("LBUS_SOCKET", "", 1); /* empty = unset */
	resolve_ok(NULL, "/run/user/42/lbus/bus.sock");

	unsetenv("XDG_RUNTIME_DIR");
	char want[64];
	snprintf(want, sizeof(want), "/tmp/lbus-%u/bus.sock", (unsigned)getuid());
	resolve_ok(NULL, want);
	setenv("XDG_RUNTIME_DIR", "", 1);
	resolve_ok(NULL, want);
	resolve_ok("rel.sock", "rel.sock");
	unsetenv("LBUS_SOCKET");
	unsetenv("XDG_RUNTIME_DIR");
}

static void test_too_long(void **state)
{
	char big[300];
	memset(big, 'x', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	char out[512];
	/* Fits in out but not in a sockaddr_un. */
	assert_int_equal(lbus_socket_path_resolve(big, out, sizeof(out), NULL), -ENAMETOOLONG);
	/* The longest path a sockaddr_un takes (with its NUL) is accepted. */
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	big[max] = '\0';
	assert_int_equal(lbus_socket_path_resolve(big, out, sizeof(out), NULL), 0);
	assert_int_equal(strlen(out), max);
	/* Does not fit in a small out buffer. */
	assert_int_equal(lbus_socket_path_resolve("/a/b/c/d", out, 5, NULL), -ENAMETOOLONG);

	setenv("XDG_RUNTIME_DIR", big, 1); /* + "/lbus/bus.sock" is too long */
	unsetenv("LBUS_SOCKET");
	assert_int_equal(lbus_socket_path_resolve(NULL, out, sizeof(out), NULL), -ENAMETOOLONG);
	unsetenv("XDG_RUNTIME_DIR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolution_order),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_resolution_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
