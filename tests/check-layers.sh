#!/bin/sh
# SPDX-License-Identifier: MIT
# The layers point one way, and the tree says so (STYLE.md, "Layers"):
#   proto/      includes only proto/ (and its generated lbus.pb-c.h);
#   broker/     includes broker/ and proto/, never libclient/;
#   libclient/  includes libclient/ and proto/, never broker/;
#   tools/      includes only the public lbus.h and tools/' own headers;
#   tests/      includes tests/, proto/, broker/, tools/ and lbus.h, never
#               libclient/'s private headers.
# One include style: a quoted include is a bare file name found through the
# include roots (no "dir/file.h"), and no header of broker/ or libclient/
# shadows one of proto/. Usage: check-layers.sh SOURCE_ROOT
set -eu
root=$1
fail=0

headers() { # the header names of the directories given
	for d in "$@"; do
		[ -d "$root/$d" ] && find "$root/$d" -maxdepth 1 -name '*.h' -exec basename {} \;
	done
	return 0
}

# check DIR ALLOWED...: every quoted include in DIR names an allowed header
check() {
	dir=$1
	shift
	allowed=" $* " # membership is a shell pattern match: no process per include
	for f in "$root/$dir"/*.c "$root/$dir"/*.h; do
		[ -e "$f" ] || continue
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
			inc=${line#*\"}
			inc=${inc%%\"*}
			case $inc in
			*/*)
				echo "check-layers: $dir/${f##*/}:${line%%:*}: \"$inc\": use the bare name, found through the include roots"
				continue
				;;
			esac
			case $allowed in
			*" $inc "*) ;;
			*) echo "check-layers: $dir/${f##*/}:${line%%:*}: \"$inc\" is not visible from $dir/" ;;
			esac
		done
	done
}

proto_h="$(headers proto) lbus.pb-c.h"
out=$(
	check proto $proto_h
	check broker $proto_h $(headers broker)
	check libclient $proto_h $(headers libclient libclient/include)
	check tools lbus.h $(headers tools)
	check tests $proto_h $(headers broker tests tools) lbus.h
)
if [ -n "$out" ]; then
	printf '%s\n' "$out" >&2
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
