#!/bin/sh
# SPDX-License-Identifier: MIT
# Build lbus and run every test: the normal build (warnings are errors), the
# ASan+UBSan build, and the integration tests with lbusd under valgrind
# (a leak or memory error in the broker fails the run).
set -eu

cd "$(dirname "$0")/.."
sh tools/deps.sh

step() { printf '\n=== %s\n' "$*"; }

step "build (werror)"
[ -f build-check/build.ninja ] || meson setup build-check -Dwerror=true >/dev/null
meson compile -C build-check
step "tests"
meson test -C build-check --print-errorlogs

step "build with ASan+UBSan"
[ -f build-asan/build.ninja ] ||
	meson setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-asan
step "tests under ASan+UBSan"
meson test -C build-asan --print-errorlogs

step "integration tests with lbusd under valgrind"
meson test -C build-check --setup valgrind --suite integration --print-errorlogs

step "all tests passed"
