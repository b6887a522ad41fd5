#!/bin/sh
# SPDX-License-Identifier: MIT
# The shared library exports exactly the functions lbus.h declares with
# LBUS_API: nothing internal leaks (proto/, libclient internals), nothing
# declared is missing. Usage: check-exports.sh LIBLBUS.so lbus.h
set -eu
lib=$1 header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWwDdBbRr]$/ {print $3}' | grep -v '^_' | sort -u >"$tmp/exported"
tr '\n' ' ' <"$header" | grep -o 'LBUS_API[^;{]*(' | grep -o 'lbus_[a-z0-9_]*($' | tr -d '(' | sort -u >"$tmp/declared"
if ! [ -s "$tmp/declared" ]; then
	echo "check-exports: no LBUS_API declarations found in $header" >&2
	exit 1
fi
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "check-exports: exported (<) and declared (>) symbols differ:" >&2
	diff "$tmp/exported" "$tmp/declared" >&2 || true
	exit 1
fi
echo "check-exports: $(wc -l <"$tmp/declared") symbols, all declared in lbus.h, nothing else exported"
