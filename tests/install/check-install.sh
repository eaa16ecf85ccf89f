#!/usr/bin/env bash
# check-install.sh BUILD_DIR SOURCE_DIR - install into a scratch prefix;
# check the service files (systemd-analyze verify on the unit, the user and
# directories made by systemd-sysusers and systemd-tmpfiles in a scratch
# root, the example configuration and policy through --check-config); then
# build a program outside the tree against the installed SDK, twice: with
# pkg-config and with find_package(ztb). Then run both.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ztb-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in sbin/ztb-broker sbin/ztb-authz bin/ztbctl include/ztb/ztb.h include/ztb/error.h \
         include/ztb/agent.h include/ztb/verifier.h include/ztb/resource.h include/ztb/export.h \
         lib/libztb.so lib/libztb.a lib/pkgconfig/ztb.pc lib/cmake/ztb/ztbConfig.cmake \
         share/man/man8/ztb-broker.8 share/man/man8/ztb-authz.8 share/man/man1/ztbctl.1; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
# the sidecar runs from where it is installed (libztb linked in) and explains itself
"$prefix/sbin/ztb-authz" --help | grep -q "^usage: ztb-authz " || {
    echo "install: ztb-authz --help did not print its usage" >&2
    exit 1
}
# the service: unit, user, directories, example configuration and policy
for f in lib/systemd/system/ztb-broker.service lib/sysusers.d/ztb.conf lib/tmpfiles.d/ztb.conf \
         etc/ztb/ztb-broker.conf etc/ztb/policy.json; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
unit=$prefix/lib/systemd/system/ztb-broker.service
grep -q "^ExecStart=$prefix/sbin/ztb-broker --config $prefix/etc/ztb/ztb-broker.conf$" "$unit" || {
    echo "install: the unit does not start the installed broker with its configuration" >&2
    exit 1
}
# clean: no warning at all (its man pages are found under the prefix)
verify=$(MANPATH=$prefix/share/man systemd-analyze verify "$unit" 2>&1) || {
    echo "install: systemd-analyze verify failed: $verify" >&2
    exit 1
}
[ -z "$verify" ] || { echo "install: systemd-analyze verify: $verify" >&2; exit 1; }
# the user and directories, made in a scratch root as systemd would at boot
root=$work/root
mkdir -p "$root/etc"
systemd-sysusers --root="$root" - <"$prefix/lib/sysusers.d/ztb.conf" >/dev/null 2>&1
grep -q "^ztb:x:[0-9]*:[0-9]*:ztb credential broker:/var/lib/ztb:" "$root/etc/passwd"
systemd-tmpfiles --root="$root" --create - <"$prefix/lib/tmpfiles.d/ztb.conf"
uid=$(awk -F: '$1 == "ztb" {print $3}' "$root/etc/passwd")
[ "$(stat -c '%u %a' "$root/var/lib/ztb")" = "$uid 700" ] || {
    echo "install: tmpfiles.d made /var/lib/ztb as $(stat -c '%u %a' "$root/var/lib/ztb")" >&2
    exit 1
}
# the example configuration and the sample policy load; what is not there
# yet (the state directory, keys) is named
rc=0
"$prefix/sbin/ztb-broker" --config "$prefix/etc/ztb/ztb-broker.conf" --state-dir "$work/nostate" \
    --check-config >"$work/check.txt" 2>&1 || rc=$?
grep -q "^ok   config: " "$work/check.txt" && grep -q "^ok   policy: " "$work/check.txt" &&
    grep -q "^FAIL state_dir: $work/nostate: " "$work/check.txt" && [ "$rc" = 1 ] || {
    echo "install: --check-config on the example configuration (status $rc):" >&2
    cat "$work/check.txt" >&2
    exit 1
}
# a second install keeps an operator's configuration
echo "# edited" >>"$prefix/etc/ztb/ztb-broker.conf"
cmake --install "$build" --prefix "$prefix" >>"$work/install.log"
grep -q "^# edited$" "$prefix/etc/ztb/ztb-broker.conf" || {
    echo "install: a second install overwrote /etc/ztb/ztb-broker.conf" >&2
    exit 1
}

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
# shellcheck disable=SC2046
cc -Wall -Werror "$src/examples/mcp-tool-server/main.c" \
    $(pkg-config --cflags --libs ztb libmicrohttpd jansson) -lpthread -o "$work/pc-mcp"
for ex in agent gateway mcp-tool-server; do
    cmake -S "$src/examples/$ex" -B "$work/cm-$ex" -DCMAKE_PREFIX_PATH="$prefix" >>"$work/cm.log"
    cmake --build "$work/cm-$ex" >>"$work/cm.log"
done
for bin in "$work/pc-agent" "$work/pc-gateway" "$work/pc-mcp" "$work/cm-agent/ztb-agent-example" \
           "$work/cm-gateway/ztb-gateway-example" \
           "$work/cm-mcp-tool-server/ztb-mcp-tool-server-example"; do
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
echo "install: ok (prefix layout, service files, exported symbols, pkg-config and find_package builds of" \
     "sdk-version, agent and gateway; static link)"
