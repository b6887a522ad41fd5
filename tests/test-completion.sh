#!/bin/sh
# SPDX-License-Identifier: MIT
# The bash completion of lbus (tools/lbus.bash-completion), sourced in bash
# as bash-completion would: a command prefix, an alias, an option of a
# command, a --policy value, and a name and a topic pattern taken live from
# a real lbusd on a temporary socket.
# Usage: test-completion.sh COMPLETION_FILE LBUS LBUSD
set -eu
completion=$1 lbus=$2 lbusd=$3
command -v bash >/dev/null || { echo "bash not found: skipped"; exit 77; }
dir=$(mktemp -d)
bpid="" lpid="" spid=""
cleanup() {
	for p in $lpid $spid $bpid; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
sock=$dir/bus.sock

$lbusd -S "$sock" 2>"$dir/lbusd.log" &
bpid=$!
$lbus -S "$sock" wait -t 10
$lbus -S "$sock" listen compl.live.name >/dev/null &
lpid=$!
$lbus -S "$sock" sub 'compl/live/#' >/dev/null &
spid=$!
$lbus -S "$sock" wait compl.live.name -t 10
i=0
until $lbus -S "$sock" list --json | grep -q '"compl/live/#"'; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "the subscription never showed in lbus list"; exit 1; }
	sleep 0.05
done

# complete WORDS...: the completions of the last word, one per line.
complete_words() {
	bash --norc --noprofile -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_lbus
		printf "%s\n" "${COMPREPLY[@]}"' bash "$completion" "$@"
}

fail=0
# expect WANT WORDS...: WANT is among the completions of WORDS.
expect() {
	want=$1
	shift
	got=$(complete_words "$@")
	if printf '%s\n' "$got" | grep -qxF -- "$want"; then
		echo "ok: '$*' -> $want"
	else
		echo "FAIL: '$*' should offer '$want'; got: $(echo $got)"
		fail=1
	fi
}
# refuse UNWANTED WORDS...: UNWANTED is not among them.
refuse() {
	unwanted=$1
	shift
	if complete_words "$@" | grep -qxF -- "$unwanted"; then
		echo "FAIL: '$*' should not offer '$unwanted'"
		fail=1
	fi
}

expect subscribe "$lbus" subs
expect sub "$lbus" su
expect stats "$lbus" -S "$sock" st
refuse pub "$lbus" su
expect --timeout "$lbus" sub t --time
expect --policy "$lbus" sub t --pol
expect --retain "$lbus" pub t --re
expect --socket "$lbus" --so
expect drop "$lbus" sub t --policy d
expect compl.live.name "$lbus" -S "$sock" send compl.
expect compl.live.name "$lbus" -S "$sock" call compl.l
expect 'compl/live/#' "$lbus" -S "$sock" sub compl/
expect compl/live/ "$lbus" -S "$sock" pub comp
refuse compl.live.name "$lbus" -S "$sock" send compl.live.name x
exit $fail
