#!/bin/sh
# SPDX-License-Identifier: MIT
# `meson install --destdir` into a temporary directory, as a packager would:
# every file is where it belongs (programs, liblbus.so with its soname
# links, lbus.h, lbus.pc, the user units, lbus.proto, the man pages when
# scdoc was found, the bash completion); then README.md's "library in ten
# lines" program, extracted from README.md itself so the README cannot
# drift, is compiled against the installed lbus.pc and run against the
# installed lbusd on a temporary socket, and must receive its own message
# and stop by itself.
#
# Usage: test-install.sh MESON BUILD_ROOT SOURCE_ROOT PREFIX BINDIR LIBDIR
#        INCLUDEDIR DATADIR MANDIR UNITDIR COMPLETIONDIR HAVE_SCDOC VERSION
#        SANITIZE (Meson's b_sanitize: the program is built with the same
#        sanitizers as the library it links, which they require)
set -eu
meson=$1 build=$2 src=$3 prefix=$4 bindir=$5 libdir=$6 includedir=$7
datadir=$8 mandir=$9
shift 9
unitdir=$1 compdir=$2 have_scdoc=$3 version=$4 sanitize=$5
san_flags=""
[ "$sanitize" = none ] || san_flags="-fsanitize=$sanitize"

abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
bindir=$(abs "$bindir") libdir=$(abs "$libdir") includedir=$(abs "$includedir")
datadir=$(abs "$datadir") mandir=$(abs "$mandir") unitdir=$(abs "$unitdir") compdir=$(abs "$compdir")

tmp=$(mktemp -d)
bpid=""
cleanup() {
	[ -z "$bpid" ] || kill "$bpid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
dest=$tmp/dest
fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}
has() { # has FILE...: each exists (a symlink counts)
	for f; do
		if [ -e "$dest$f" ] || [ -L "$dest$f" ]; then echo "ok: $f"; else bad "$f not installed"; fi
	done
}

"$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet

has "$bindir/lbus" "$bindir/lbusd" "$bindir/lbus-bench"
has "$libdir/liblbus.so" "$libdir/liblbus.so.0" "$libdir/liblbus.so.$version"
[ "$(readlink "$dest$libdir/liblbus.so")" = liblbus.so.0 ] || bad "liblbus.so does not point to liblbus.so.0"
[ "$(readlink "$dest$libdir/liblbus.so.0")" = "liblbus.so.$version" ] || bad "liblbus.so.0 does not point to liblbus.so.$version"
readelf -d "$dest$libdir/liblbus.so.$version" | grep -q 'SONAME.*\[liblbus\.so\.0\]' || bad "soname is not liblbus.so.0"
has "$includedir/lbus.h" "$libdir/pkgconfig/lbus.pc"
grep -q '^Requires.private:.*libprotobuf-c' "$dest$libdir/pkgconfig/lbus.pc" || bad "lbus.pc lacks Requires.private: libprotobuf-c"
has "$unitdir/lbusd.socket" "$unitdir/lbusd.service"
grep -q "^ExecStart=$bindir/lbusd\$" "$dest$unitdir/lbusd.service" || bad "lbusd.service does not start $bindir/lbusd"
has "$datadir/lbus/lbus.proto" "$compdir/lbus" "$datadir/doc/lbus/LICENSE"
if [ "$have_scdoc" = true ]; then
	has "$mandir/man1/lbus.1" "$mandir/man8/lbusd.8" "$mandir/man5/lbusd.conf.5" "$mandir/man3/liblbus.3"
	grep -q '^\.TH "lbusd.conf" "5"' "$dest$mandir/man5/lbusd.conf.5" || bad "lbusd.conf.5 is not a man page"
else
	echo "scdoc not found at configure time: man pages not checked"
fi
if [ -e "$dest$bindir/lbus-bridge" ]; then # built with libmosquitto (-Dmqtt)
	has "$unitdir/lbus-bridge.service"
	grep -q "^ExecStart=$bindir/lbus-bridge -c " "$dest$unitdir/lbus-bridge.service" ||
		bad "lbus-bridge.service does not start $bindir/lbus-bridge"
	[ "$have_scdoc" = true ] && has "$mandir/man1/lbus-bridge.1"
	LD_LIBRARY_PATH=$dest$libdir "$dest$bindir/lbus-bridge" --version | grep -qx "lbus-bridge $version" ||
		bad "lbus-bridge --version is not $version"
fi
"$dest$bindir/lbusd" --version | grep -qx "lbusd $version" || bad "lbusd --version is not $version"
LD_LIBRARY_PATH=$dest$libdir "$dest$bindir/lbus" --version | grep -qx "lbus $version" || bad "lbus --version is not $version"

# README.md's program: the first ```c block after "## The library in ten lines".
awk '/^## The library in ten lines/ { sect = 1; next }
     sect && /^```c$/ { code = 1; next }
     code && /^```$/ { exit }
     code { print }' "$src/README.md" >"$tmp/demo.c"
[ -s "$tmp/demo.c" ] || { bad "no C program found in README.md"; exit 1; }
lines=$(grep -c . "$tmp/demo.c")
echo "README program: $lines non-blank lines"

export PKG_CONFIG_PATH="$dest$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
# shellcheck disable=SC2046 # pkg-config's words are meant to split
cc -Wall -Werror $san_flags -o "$tmp/demo" "$tmp/demo.c" $(pkg-config --cflags --libs lbus) || {
	bad "README program does not compile against the installed lbus.pc"
	exit 1
}
pkg-config --print-requires-private lbus | grep -q libprotobuf-c || bad "pkg-config sees no libprotobuf-c"

export LBUS_SOCKET="$tmp/bus.sock" LD_LIBRARY_PATH="$dest$libdir"
"$dest$bindir/lbusd" 2>"$tmp/lbusd.log" &
bpid=$!
"$dest$bindir/lbus" wait -t 10 || { bad "the installed lbusd never answered"; cat "$tmp/lbusd.log"; exit 1; }
status=0
timeout 20 "$tmp/demo" >"$tmp/out" 2>&1 || status=$?
cat "$tmp/out"
[ "$status" -eq 0 ] || bad "README program exited $status (124: it did not stop by itself)"
grep -q '^sensors/kitchen/temp from pid [0-9]*: 21\.5$' "$tmp/out" || bad "README program did not receive its message"
exit $fail
