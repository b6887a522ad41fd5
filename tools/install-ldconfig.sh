#!/bin/sh
# SPDX-License-Identifier: MIT
# Run by `meson install` (meson.add_install_script) with the library
# directory as $1. After an install to the real root, the dynamic linker's
# cache does not know liblbus.so.0 yet, so `lbus` (and any program built
# against lbus.pc) would fail to start until `ldconfig` runs: run it, as
# `make install` of most libraries does. Not for a staged install
# (DESTDIR: a package's postinst runs ldconfig) and not as an ordinary
# user (who cannot; then say what to do instead).
set -eu
libdir=$1

[ -z "${DESTDIR:-}" ] || exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "lbus: not root, ldconfig not run: if programs cannot find liblbus.so.0," \
		"run 'ldconfig' as root, or set LD_LIBRARY_PATH=$libdir" >&2
	exit 0
fi
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
if [ ! -x "$ldconfig" ]; then
	echo "lbus: ldconfig not found: run it to make liblbus.so.0 known" >&2
	exit 0
fi
"$ldconfig"
if ! "$ldconfig" -p | grep -q "liblbus\.so\.0 .*=> $libdir/"; then
	echo "lbus: $libdir is not in the dynamic linker's search path: add it to" \
		"/etc/ld.so.conf.d/lbus.conf and run ldconfig, or set LD_LIBRARY_PATH=$libdir" >&2
fi
