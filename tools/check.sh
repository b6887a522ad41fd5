#!/bin/sh
# SPDX-License-Identifier: MIT
# Build lbus and run every test: the normal build (warnings are errors), the
# ASan+UBSan build, the integration tests with lbusd under valgrind
# (a leak or memory error in the broker fails the run), and, when clang is
# there, each libFuzzer target for a bounded time (a crash fails the run; the
# input is left in build-fuzz/ as crash-*: fix it and add it to
# tests/corpus/<target>/ as a regression test of the normal suite).
# LBUS_FUZZ_SECONDS (default 12) is each target's time.
set -eu

cd "$(dirname "$0")/.."
sh tools/deps.sh

started=$(date +%s)
step() { printf '\n=== %s (at %ss)\n' "$*" "$(($(date +%s) - started))"; }

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
meson test -C build-asan --no-suite bench --print-errorlogs

step "integration tests with lbusd under valgrind"
meson test -C build-check --setup valgrind --suite integration --suite bench --print-errorlogs

fuzz_targets="fuzz-decode fuzz-inproc fuzz-topic fuzz-config fuzz-client"
if command -v clang >/dev/null 2>&1; then
	step "libFuzzer targets (clang, ASan+UBSan), ${LBUS_FUZZ_SECONDS:-12} s each"
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dwerror=true -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	for t in $fuzz_targets; do
		meson compile -C build-fuzz "$t-libfuzzer" >/dev/null
	done
	for t in $fuzz_targets; do
		work=build-fuzz/corpus-$t # what the runs found: kept, the next run starts there
		mkdir -p "$work"
		build-fuzz/tests/$t-libfuzzer -max_total_time="${LBUS_FUZZ_SECONDS:-12}" -print_final_stats=1 \
			-artifact_prefix="build-fuzz/crash-$t-" "$work" "tests/corpus/$t" >build-fuzz/$t.log 2>&1 || {
			tail -n 40 "build-fuzz/$t.log"
			echo "$t: crashed (see build-fuzz/$t.log and build-fuzz/crash-$t-*)"
			exit 1
		}
		echo "$t: $(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/$t.log") runs, no crash"
	done
else
	step "clang not found: libFuzzer targets skipped (their corpora ran in the suite 'fuzz')"
fi

step "all tests passed"
