#!/usr/bin/env bash
# check-install.sh BUILD_DIR SOURCE_DIR - install into a scratch prefix and
# build a program outside the tree against the installed SDK, twice: with
# pkg-config and with find_package(ztb). Then run both.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ztb-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in sbin/ztb-broker bin/ztbctl include/ztb/ztb.h include/ztb/error.h \
         include/ztb/agent.h include/ztb/verifier.h include/ztb/export.h \
         lib/libztb.so lib/libztb.a lib/pkgconfig/ztb.pc lib/cmake/ztb/ztbConfig.cmake \
         share/man/man8/ztb-broker.8 share/man/man1/ztbctl.1; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
# the shared library exports only ztb_ symbols
bad=$(nm -D --defined-only "$prefix/lib/libztb.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^ztb_' || true)
if [ -n "$bad" ]; then
    echo "libztb.so exports non-ztb symbols:" >&2
    echo "$bad" | head >&2
    exit 1
fi

# pkg-config
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc "$src/examples/sdk-version/main.c" $(pkg-config --cflags --libs ztb) -o "$work/pc-example"
LD_LIBRARY_PATH=$prefix/lib "$work/pc-example" | grep -q "^libztb [0-9]*\.[0-9]*\.[0-9]*: signature does not verify$"

# find_package
cmake -S "$src/examples/sdk-version" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cm.log"
cmake --build "$work/cm" >>"$work/cm.log"
LD_LIBRARY_PATH=$prefix/lib "$work/cm/sdk-version" | grep -q "^libztb "

# the agent and gateway examples, both ways; each runs and prints its usage
# shellcheck disable=SC2046
cc -Wall -Werror "$src/examples/agent/main.c" $(pkg-config --cflags --libs ztb libcurl) \
    -o "$work/pc-agent"
# shellcheck disable=SC2046
cc -Wall -Werror "$src/examples/gateway/main.c" $(pkg-config --cflags --libs ztb libmicrohttpd) \
    -lpthread -o "$work/pc-gateway"
for ex in agent gateway; do
    cmake -S "$src/examples/$ex" -B "$work/cm-$ex" -DCMAKE_PREFIX_PATH="$prefix" >>"$work/cm.log"
    cmake --build "$work/cm-$ex" >>"$work/cm.log"
done
for bin in "$work/pc-agent" "$work/pc-gateway" "$work/cm-agent/ztb-agent-example" \
           "$work/cm-gateway/ztb-gateway-example"; do
    rc=0
    LD_LIBRARY_PATH=$prefix/lib "$bin" >/dev/null 2>"$work/usage.txt" || rc=$?
    [ "$rc" = 2 ] && grep -q "^usage: " "$work/usage.txt" || {
        echo "install: $bin did not run (status $rc)" >&2
        cat "$work/usage.txt" >&2
        exit 1
    }
done
# libztb.a holds everything of ztb it needs; its dependencies are those ztb.pc names
deps=$(pkg-config --print-requires-private ztb | awk '{print $1}' | tr '\n' ' ')
# shellcheck disable=SC2046,SC2086
cc "$src/examples/sdk-version/main.c" $(pkg-config --cflags ztb) "$prefix/lib/libztb.a" \
    $(pkg-config --libs $deps) -lpthread -o "$work/static-example"
"$work/static-example" | grep -q "^libztb "
echo "install: ok (prefix layout, exported symbols, pkg-config and find_package builds of" \
     "sdk-version, agent and gateway; static link)"
