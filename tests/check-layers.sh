#!/bin/sh
# SPDX-License-Identifier: MIT
# The layers point one way, and the tree says so (STYLE.md, "Layers"):
#   proto/      includes only proto/ (and its generated lbus.pb-c.h);
#   broker/     includes broker/ and proto/, never libclient/;
#   libclient/  includes libclient/ and proto/, never broker/;
#   tools/      includes only the public lbus.h, tools/' own headers and
#               descriptor.pb-c.h (generated from Google's descriptor.proto);
#   tests/      includes tests/, proto/, broker/, tools/ (the unit tests of
#               the CLI's pure parts: top's model, the HTTP responder, the
#               protobuf walker) and lbus.h, never libclient/'s private
#               headers;
#   inside broker/, the transport (conn, outq, msgbuf, fdset, clock, list) includes
#               only itself and proto/, never a header of the bus above it.
# Wire knowledge stays in proto/: broker/ and libclient/ call its codecs
# (wire.h) and never the field-level protobuf primitives of pbwire.h.
# One include style: a quoted include is a bare file name found through the
# include roots (no "dir/file.h"), and no header of broker/ or libclient/
# shadows one of proto/ (lbus-version.h is generated from
# proto/lbus-version.h.in). Usage: check-layers.sh SOURCE_ROOT
set -eu
root=$1
fail=0

headers() { # the header names of the directories given
	for d in "$@"; do
		[ -d "$root/$d" ] && find "$root/$d" -maxdepth 1 -name '*.h' -exec basename {} \;
	done
	return 0
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# check DIR ALLOWED...: every quoted include in DIR names an allowed header
# (one awk pass over the directory's files)
check() {
	dir=$1
	shift
	printf '%s\n' "$@" >"$tmp"
	set -- "$root/$dir"/*.[ch]
	[ -e "$1" ] || return 0
	awk -v dir="$dir" '
		NR == FNR { ok[$0] = 1; next }
		/^[ \t]*#[ \t]*include[ \t]*"/ {
			inc = $0
			sub(/^[^"]*"/, "", inc)
			sub(/".*/, "", inc)
			n = split(FILENAME, parts, "/")
			where = dir "/" parts[n] ":" FNR
			if (inc ~ /\//)
				printf "check-layers: %s: \"%s\": use the bare name, found through the include roots\n", where, inc
			else if (!(inc in ok))
				printf "check-layers: %s: \"%s\" is not visible from %s/\n", where, inc, dir
		}
	' "$tmp" "$@"
}

proto_h="$(headers proto) lbus.pb-c.h lbus-version.h" # and the generated ones

# The transport's files include only each other and proto/ (conn.h: it
# reports events up through struct conn_ops, never by calling the bus).
transport() {
	allowed=$(printf '%s\n' conn.h outq.h msgbuf.h fdset.h clock.h list.h $proto_h)
	for f in conn.c conn.h outq.c outq.h msgbuf.c msgbuf.h fdset.c fdset.h clock.c clock.h list.h; do
		[ -e "$root/broker/$f" ] || continue
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$root/broker/$f" | while IFS= read -r inc; do
			printf '%s\n' "$allowed" | grep -qxF "$inc" ||
				echo "check-layers: broker/$f: \"$inc\": the transport includes no header of the bus"
		done
	done
}

out=$(
	check proto $proto_h
	check broker $proto_h $(headers broker)
	check libclient $proto_h $(headers libclient libclient/include)
	check tools lbus.h descriptor.pb-c.h $(headers tools)
	check tests $proto_h $(headers broker tests tools) lbus.h descriptor.pb-c.h
	transport
)
if [ -n "$out" ]; then
	printf '%s\n' "$out" >&2
	fail=1
fi

wire=$(grep -n 'lbus_pb_\|LBUS_PB_\|"pbwire\.h"' "$root"/broker/*.[ch] "$root"/libclient/*.[ch] || true)
if [ -n "$wire" ]; then
	printf '%s\n' "$wire" | sed 's|^'"$root"'/||; s|^|check-layers: field-level protobuf outside proto/ (use a codec of wire.h): |' >&2
	fail=1
fi

for h in $(headers broker libclient libclient/include); do
	if printf '%s\n' $proto_h | grep -qxF "$h"; then
		echo "check-layers: $h exists in proto/ and in broker/ or libclient/: one would shadow the other" >&2
		fail=1
	fi
done

[ "$fail" -eq 0 ] && echo "check-layers: proto <- broker, proto <- libclient <- tools: every include follows the layers"
exit "$fail"
