#!/bin/sh
# SPDX-License-Identifier: MIT
# One format for every C file: the repository's .clang-format, as
# `clang-format -i` writes it (STYLE.md). A file that differs fails the test
# and is named, with the fix. Skipped (exit 77) when clang-format is missing;
# tools/deps.sh installs it. Usage: check-format.sh SOURCE_ROOT
set -eu

cd "$1"
command -v clang-format >/dev/null 2>&1 || { echo "clang-format not installed: skipped"; exit 77; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find proto broker libclient tools tests -name '*.[ch]')
# one run over all files; its warnings name each file and line that differs
if ! out=$(clang-format --dry-run --Werror $files 2>&1); then
	bad=$(printf '%s\n' "$out" | sed -n 's/^\([^: ]*\.[ch]\):[0-9]*:[0-9]*: error:.*/\1/p' | sort -u | tr '\n' ' ')
	echo "not formatted with .clang-format: $bad"
	echo "fix: clang-format -i $bad"
	exit 1
fi
echo "every C file is formatted"
