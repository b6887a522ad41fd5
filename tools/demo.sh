#!/bin/sh
# SPDX-License-Identifier: MIT
# Build lbus, start lbusd on the default socket (unless one already runs
# there) and show a publish reaching a subscriber. The broker keeps running
# afterwards; the script prints how to stop it.
set -eu

cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

lbusd=build/broker/lbusd
lbus=build/tools/lbus

if $lbus list >/dev/null 2>&1; then
	echo "demo: a broker already runs on the default socket; using it"
else
	log=$(mktemp "${TMPDIR:-/tmp}/lbusd.XXXXXX")
	nohup "$lbusd" >"$log" 2>&1 &
	pid=$!
	i=0
	until $lbus list >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 50 ] || ! kill -0 $pid 2>/dev/null; then
			echo "demo: lbusd did not start:" >&2
			cat "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "demo: started lbusd (pid $pid), log in $log"
fi

echo "demo: subscribing to 'demo/#' and publishing two messages"
$lbus sub 'demo/#' -v -n 2 -t 5 &
sub=$!
i=0
until $lbus list 2>/dev/null | grep -q 'demo/#'; do
	i=$((i + 1))
	[ $i -le 50 ] || { echo "demo: subscriber did not start" >&2; exit 1; }
	sleep 0.1
done
$lbus pub demo/greeting "hello from lbus"
printf '{"temp": 21.5}' | $lbus pub demo/kitchen/temp
wait $sub
echo "demo: clients on the bus now:"
$lbus list
echo "demo: lbusd keeps running on the default socket; try:"
echo "  $lbus sub 'demo/#' -v        # in one terminal"
echo "  $lbus pub demo/x hi          # in another"
if [ -n "${pid:-}" ]; then
	echo "  kill $pid                   # to stop the broker"
fi
