#!/bin/sh
# SPDX-License-Identifier: MIT
# README.md's "30-second tour", extracted from README.md and run as a script
# (in a temporary directory, on a temporary socket): it must not race (the
# broker and the names are waited for), it must make the files it uses, and
# each command must do what its comment says. Only the last command, the
# endless `lbus monitor`, is given a time limit. (What the background
# `lbus sub 'sensors/#'` prints is not asserted: the tour has no command that
# waits until a subscription is in place, so its first message may come too
# early for it when the tour runs at script speed.)
# Usage: test-tour.sh SOURCE_ROOT BINDIR... (directories of lbusd and lbus)
set -eu
src=$1
shift
for d; do PATH=$(cd "$d" && pwd):$PATH; done
export PATH
tmp=$(mktemp -d)
tour=""
cleanup() {
	# The tour runs in a session of its own: its process group holds its
	# background jobs (lbusd, listen, serve, sub), ended here by its id.
	[ -z "$tour" ] || kill -TERM "-$tour" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export LBUS_SOCKET="$tmp/bus.sock"

awk '/^## A 30-second tour/ { sect = 1; next }
     sect && /^```sh$/ { code = 1; next }
     code && /^```$/ { exit }
     code { print }' "$src/README.md" >"$tmp/tour.sh"
[ -s "$tmp/tour.sh" ] || { echo "FAIL: no tour in README.md"; exit 1; }
grep -qx 'lbus monitor .*' "$tmp/tour.sh" || { echo "FAIL: the tour no longer ends with lbus monitor"; exit 1; }
sed -i 's/^lbus monitor /lbus monitor -t 1 /' "$tmp/tour.sh"

cd "$tmp"
status=0
setsid sh -e "$tmp/tour.sh" >"$tmp/out" 2>"$tmp/err" &
tour=$!
wait "$tour" || status=$?
echo "--- stdout"; cat "$tmp/out"
echo "--- stderr"; cat "$tmp/err"
fail=0
[ "$status" -eq 0 ] || { echo "FAIL: the tour stopped with status $status"; fail=1; }
for want in open HELLO HI; do
	grep -qx "$want" "$tmp/out" || { echo "FAIL: the tour did not print '$want'"; fail=1; }
done
grep -q "play" "$tmp/out" || { echo "FAIL: lbus listen player did not print 'play'"; fail=1; }
exit $fail
