#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages lbus needs to build and test, if any is missing.
# Used by tools/demo.sh and tools/check.sh; safe to run again.
# libjson-c-dev: the lbus CLI parses JSON for --encode. libprotobuf-dev: only
# its descriptor.proto, compiled with protoc-c (no C++ is built or linked).
# protobuf-compiler (protoc) makes the tests' descriptor set, and
# python3-protobuf is their oracle of the JSON mapping.
# The tests of lbus top and the metrics use tmux, curl and the OpenMetrics
# parser of python3-prometheus-client; they also run `promtool check metrics`
# when it is installed (Debian package prometheus, not installed here: it
# also enables and starts a Prometheus server). libmosquitto-dev builds
# lbus-bridge; mosquitto (broker and clients) and openssl serve its tests.
# clang-format checks that every C file keeps the one format (test 'format').
# clang and libclang-rt-dev (libFuzzer's runtime) build the fuzz targets that
# tools/check.sh runs (meson -Dfuzzing=true).
set -eu

pkgs="gcc g++ pkg-config meson ninja-build protobuf-c-compiler libprotobuf-c-dev libcmocka-dev valgrind
	scdoc bash-completion libjson-c-dev libprotobuf-dev protobuf-compiler python3-protobuf
	libncurses-dev tmux curl python3-prometheus-client
	libmosquitto-dev mosquitto mosquitto-clients openssl clang-format clang libclang-rt-dev"
missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
