#!/usr/bin/env bash
# ztbctl_is_a_client.sh - ztbctl links no broker code (docs/ARCHITECTURE.md:
# "ztbctl is a client").
#
#   tests/link/ztbctl_is_a_client.sh BUILD_DIR
#
# Two checks: the link line of ztbctl names no broker library, and no
# global symbol that libztb_broker.a defines is defined in the ztbctl
# binary (so no broker object came in by another road either). Exit 0 when
# both hold; 1 with the offending library or symbols otherwise.
set -euo pipefail
build=${1:?usage: ztbctl_is_a_client.sh BUILD_DIR}
link="$build/cli/CMakeFiles/ztbctl.dir/link.txt"
ctl="$build/bin/ztbctl"
broker="$build/lib/libztb_broker.a"
for f in "$link" "$ctl" "$broker"; do
    [ -e "$f" ] || { echo "missing $f (build first)" >&2; exit 1; }
done

fail=0
if tr ' ' '\n' <"$link" | grep -E 'ztb_broker|/broker/' >&2; then
    echo "ztbctl's link line names broker code (above)" >&2
    fail=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm --defined-only "$broker" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TDBR]$/ {print $3}' |
    sort -u >"$tmp/broker"
nm --defined-only "$ctl" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/ctl"
comm -12 "$tmp/broker" "$tmp/ctl" >"$tmp/both"
if [ -s "$tmp/both" ]; then
    echo "ztbctl defines $(wc -l <"$tmp/both") symbols of the broker's library, e.g.:" >&2
    head -20 "$tmp/both" >&2
    fail=1
fi
[ "$fail" = 0 ] && echo "ztbctl links no broker code ($(wc -l <"$tmp/broker") broker symbols checked)"
exit "$fail"
