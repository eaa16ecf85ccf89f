#!/usr/bin/env bash
# check-install.sh BUILD_DIR SOURCE_DIR - install into a scratch prefix;
# check the service files (systemd-analyze verify on the unit, the user and
# directories made by systemd-sysusers and systemd-tmpfiles in a scratch
# root, the example configuration and policy through --check-config); then
# check that libztb.so and libztb.a export only ztb_ symbols (nm); build a
# program outside the tree against the installed SDK with pkg-config (only
# ztb.pc in sight) and with find_package(ztb), each shared and static, and
# run them.
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

# libztb.so and libztb.a export only ztb_ symbols: in the archive every
# internal global (http_client_new, ...) is local after the build's ld -r
# and objcopy --localize-hidden
bad=$(nm -D --defined-only "$prefix/lib/libztb.so" | awk '$2 ~ /[A-Z]/ {print $3}' | grep -v '^ztb_' || true)
if [ -n "$bad" ]; then
    echo "libztb.so exports non-ztb symbols:" >&2
    echo "$bad" | head >&2
    exit 1
fi
nm -g --defined-only "$prefix/lib/libztb.a" >"$work/archive.nm"
grep -q " T ztb_verify$" "$work/archive.nm" || {
    echo "install: nm lists no ztb_verify in libztb.a (the symbol check would prove nothing)" >&2
    exit 1
}
bad=$(awk 'NF == 3 && $2 ~ /[A-Z]/ {print $3}' "$work/archive.nm" | grep -v '^ztb_' || true)
if [ -n "$bad" ]; then
    echo "libztb.a exports $(echo "$bad" | wc -l) non-ztb symbols:" >&2
    echo "$bad" | head >&2
    exit 1
fi

# pkg-config: with only ztb.pc in sight (no jansson, hiredis, libcurl or
# OpenSSL module), a program using libztb.so compiles and links; the
# flags name the SDK alone
# and the same ones: what a program may call does not depend on how it links
nm -D --defined-only "$prefix/lib/libztb.so" | awk '$2 ~ /[A-Z]/ {print $3}' | sort >"$work/so.syms"
awk 'NF == 3 && $2 ~ /[A-Z]/ {print $3}' "$work/archive.nm" | sort >"$work/a.syms"
cmp -s "$work/so.syms" "$work/a.syms" || {
    echo "install: libztb.so and libztb.a export different symbols:" >&2
    diff "$work/so.syms" "$work/a.syms" | head >&2
    exit 1
}

export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig PKG_CONFIG_PATH=
# (the .pc is relocatable: its paths are relative to itself, so compare
# them resolved)
flags() { # "-Ifoo -Lbar -lztb" with each path resolved
    local f out=()
    for f in "$@"; do
        case $f in
            -I* | -L*) out+=("${f:0:2}$(realpath -m "${f:2}")") ;;
            *) out+=("$f") ;;
        esac
    done
    echo "${out[*]}"
}
# shellcheck disable=SC2046
[ "$(flags $(pkg-config --cflags ztb))" = "-I$(realpath "$prefix/include")" ] || {
    echo "install: pkg-config --cflags ztb is not clean: $(pkg-config --cflags ztb)" >&2
    exit 1
}
# shellcheck disable=SC2046
[ "$(flags $(pkg-config --libs ztb))" = "-L$(realpath "$prefix/lib") -lztb" ] || {
    echo "install: pkg-config --libs ztb: $(pkg-config --libs ztb)" >&2
    exit 1
}
ver=$(pkg-config --modversion ztb)
# shellcheck disable=SC2046
cc -Wall -Werror "$src/examples/sdk-version/main.c" $(pkg-config --cflags --libs ztb) \
    -o "$work/pc-example"
LD_LIBRARY_PATH=$prefix/lib "$work/pc-example" >"$work/pc-example.out"
grep -q "^libztb $ver: signature does not verify$" "$work/pc-example.out" &&
    grep -q "^compiled against $ver ($ver)$" "$work/pc-example.out" || {
    echo "install: the pkg-config build of sdk-version printed:" >&2
    cat "$work/pc-example.out" >&2
    exit 1
}
# static: libztb.a and Libs.private, as docs/agents.md shows it
private="-lcurl -lhiredis -ljansson -lssl -lcrypto -lpthread"
got=$(pkg-config --static --libs-only-l ztb)
[ "${got% }" = "-lztb $private" ] || {
    echo "install: Libs.private is not what docs/agents.md says: $got" >&2
    exit 1
}
# shellcheck disable=SC2046
cc -Wall -Werror "$src/examples/sdk-version/main.c" $(pkg-config --cflags ztb) \
    "$(pkg-config --variable=libdir ztb)/libztb.a" \
    -lcurl -lhiredis -ljansson -lssl -lcrypto -lpthread -o "$work/pc-static"
"$work/pc-static" | grep -q "^libztb $ver: "
if readelf -d "$work/pc-static" | grep -q "libztb"; then
    echo "install: the static build still needs libztb.so" >&2
    exit 1
fi
# a program's own global of the same name as one of libztb's internals
# links with libztb.a and keeps its own
cat >"$work/clash.c" <<'CLASH'
#include <stdio.h>
#include <ztb/ztb.h>
int http_client_new(void) { return 42; }
int main(void) {
    /* pulls in the verifier, which creates an HTTP client of libztb's own */
    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier_config_free(c);
    printf("%d %s\n", http_client_new(), ztb_version());
    return 0;
}
CLASH
# shellcheck disable=SC2046
cc -Wall "$work/clash.c" $(pkg-config --cflags ztb) "$prefix/lib/libztb.a" \
    $(pkg-config --static --libs-only-l ztb | sed 's/-lztb //') -o "$work/clash" 2>"$work/clash.log" || {
    echo "install: a program defining http_client_new does not link with libztb.a:" >&2
    cat "$work/clash.log" >&2
    exit 1
}
"$work/clash" | grep -q "^42 $ver$"
unset PKG_CONFIG_LIBDIR

# find_package, shared: needs no pkg-config module of libztb's dependencies
PKG_CONFIG_LIBDIR=$work/nothing cmake -S "$src/examples/sdk-version" -B "$work/cm" \
    -DCMAKE_PREFIX_PATH="$prefix" >"$work/cm.log"
cmake --build "$work/cm" >>"$work/cm.log"
LD_LIBRARY_PATH=$prefix/lib "$work/cm/sdk-version" | grep -q "^libztb $ver: "
# find_package, static (ztb::ztb_static)
PKG_CONFIG_LIBDIR=$work/nothing cmake -S "$src/examples/sdk-version" -B "$work/cm-static" \
    -DCMAKE_PREFIX_PATH="$prefix" -DZTB_LINK_STATIC=ON >"$work/cm.log"
cmake --build "$work/cm-static" >>"$work/cm.log"
"$work/cm-static/sdk-version" | grep -q "^libztb $ver: "
if readelf -d "$work/cm-static/sdk-version" | grep -q "libztb"; then
    echo "install: the find_package static build still needs libztb.so" >&2
    exit 1
fi
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

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
echo "install: ok (prefix layout, service files, exported symbols of libztb.so and libztb.a," \
     "pkg-config and find_package builds of sdk-version, shared and static; agent and gateway)"
