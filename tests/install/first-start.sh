#!/usr/bin/env bash
# first-start.sh BUILD_DIR SOURCE_DIR - run docs/broker.md's "First start"
# word for word, as root, as on a fresh Debian 12: the blocks marked
# `<!-- ztb-test: first-start-setup -->` (install into /usr, the user and
# directories, keys, CA, policy, TLS, --check-config), `first-start-run` (the
# broker in the foreground, here in the background) and `first-start-check`
# (/readyz over TLS by the issuer's name, `ztbctl agent add`); then the
# runbook blocks of docs/operators.md that act on a running broker
# (`<!-- ztb-test: ops-... -->`); then Ctrl-C (SIGINT) stops the broker,
# which must exit 0. Last, the installed unit's ExecStart line runs as its
# User= with the installed example configuration and must answer /readyz:
# systemd is not PID 1 here, so `systemctl enable --now` itself is not run.
#
# The machine is not changed: everything runs in new mount, network and PID
# namespaces (unshare), with overlays over /etc, /usr, /var and /run whose
# upper layers live on a tmpfs; the system user ztb, the install into
# /usr, the state in /var/lib/ztb and the port 8443 exist only there, and
# every process started is gone when the namespace's first process exits
# (--kill-child: also when ctest kills the test at its timeout).
# Needs root (CI is root); fails, not skips, without it.
set -euo pipefail

if [ "${1:-}" != "--inside" ]; then
    build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
    if [ "$(id -u)" -ne 0 ]; then
        echo "first-start: must run as root: it follows docs/broker.md as root would (a system user," >&2
        echo "first-start: cmake --install --prefix /usr), inside private namespaces and overlays" >&2
        echo "first-start: that leave this machine unchanged. Run: sudo ctest -R integration/first_start" >&2
        exit 1
    fi
    work=$(mktemp -d /tmp/ztb-first-start.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    rc=0
    unshare --mount --net --pid --fork --kill-child --mount-proc \
        "$0" --inside "$build" "$src" "$work" || rc=$?
    exit "$rc"
fi

build=$2 src=$3 work=$4
log=$work/log
t0=$(date +%s%N)
fail() {
    echo "first-start: $*" >&2
    for f in "$log"/*; do
        [ -s "$f" ] && { echo "--- $(basename "$f")" >&2; tail -n 40 "$f" >&2; }
    done
    exit 1
}
mkdir -p "$log"

# the private view: nothing written below leaves the namespace
mount --make-rprivate /
# the upper layers on a tmpfs: /tmp may itself be an overlay (a
# container's root), which cannot be an upper layer
mkdir -p "$work/ov"
mount -t tmpfs ztb-first-start-ov "$work/ov"
for d in /etc /usr /var /run; do
    n=$(basename "$d")
    mkdir -p "$work/ov/$n/upper" "$work/ov/$n/work"
    mount -t overlay "ztb-first-start-$n" \
        -o "lowerdir=$d,upperdir=$work/ov/$n/upper,workdir=$work/ov/$n/work" "$d"
done
ip link set lo up
# as on a fresh machine: none of it there before
rm -rf /etc/ztb /var/lib/ztb /run/ztb
if getent passwd ztb >/dev/null; then
    userdel ztb 2>/dev/null || fail "a user ztb exists and cannot be removed in the private /etc"
fi
getent group ztb >/dev/null && groupdel ztb

# the blocks, extracted from the markdown as they stand
blocks=$work/blocks
mkdir -p "$blocks"
for name in first-start-setup first-start-run first-start-check ops-check-config ops-rotate \
    ops-incident ops-audit ops-backup ops-roles-groups ops-roles-config ops-roles-check; do
    /usr/bin/python3 "$src/tests/docs/doc_commands.py" extract "$src" "$name" >"$blocks/$name.sh" ||
        fail "no block marked ztb-test: $name in the docs"
done
# the docs run in the repository's top directory, after scripts/build.sh:
# `build` is this test's build tree
mkdir -p "$work/top"
ln -s "$build" "$work/top/build"
cd "$work/top"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
run_block() { # name
    bash -euo pipefail "$blocks/$1.sh" >"$log/$1.out" 2>&1 || fail "docs block $1 failed (status $?)"
    echo "first-start: block $1 ran (at $(ms) ms)"
}

run_block first-start-setup
[ -x /usr/sbin/ztb-broker ] && [ -x /usr/bin/ztbctl ] || fail "the install put no binaries in /usr"
[ "$(stat -c '%U %a' /var/lib/ztb)" = "ztb 700" ] || fail "/var/lib/ztb is not ztb's, 0700"
grep -q '^ok   keys: ' "$log/first-start-setup.out" || fail "--check-config did not find the keys"
if grep -q '^FAIL' "$log/first-start-setup.out"; then fail "--check-config found problems"; fi

bash -euo pipefail "$blocks/first-start-run.sh" >"$log/broker.log" 2>&1 &
broker=$!
for _ in $(seq 1 400); do
    curl -fsS --cacert /etc/ztb/tls.crt --resolve broker.example.org:8443:127.0.0.1 \
        https://broker.example.org:8443/readyz >/dev/null 2>&1 && break
    kill -0 "$broker" 2>/dev/null || fail "the broker of first-start-run exited"
    sleep 0.02
done
run_block first-start-check
grep -q '"status": *"ready"' "$log/first-start-check.out" || fail "/readyz did not say ready"
grep -q 'ztbj_' "$log/first-start-check.out" || fail "ztbctl agent add printed no join token"

# docs/operators.md's runbooks against this broker
run_block ops-check-config
run_block ops-rotate
run_block ops-incident
run_block ops-audit
run_block ops-backup

# Ctrl-C: the foreground broker drains and exits 0. bash started it as a
# background job with SIGINT ignored, so the signal goes to the broker
# itself, as a terminal's Ctrl-C would
bpid=$(pgrep -P "$broker" -x ztb-broker || true)
[ -n "$bpid" ] || bpid=$broker
kill -INT "$bpid"
rc=0
wait "$broker" || rc=$?
[ "$rc" = 0 ] || fail "the broker exited with status $rc after Ctrl-C"

# operators' and analysts' sockets (docs/operators.md), in the configuration
# the service below starts with
run_block ops-roles-groups
run_block ops-roles-config

# the service: the installed unit's ExecStart line, as its User= and Group=
# (with its supplementary groups), with the example configuration (loopback,
# port 8443) and the sockets above; /run/ztb made as the unit's
# RuntimeDirectory=ztb (mode 0755, owned by User=) would be
unit=/usr/lib/systemd/system/ztb-broker.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
[ "$exec_start" = "/usr/sbin/ztb-broker --config /etc/ztb/ztb-broker.conf" ] ||
    fail "the unit starts '$exec_start'"
grep -q '^RuntimeDirectory=ztb$' "$unit" && grep -q '^RuntimeDirectoryMode=0755$' "$unit" ||
    fail "the unit no longer makes /run/ztb 0755"
install -d -o "$user" -g "$user" -m 0755 /run/ztb
# shellcheck disable=SC2086 # the unit's words, as systemd splits them
setpriv --reuid "$user" --regid "$user" --init-groups $exec_start >"$log/service.log" 2>&1 &
svc=$!
ready=0
for _ in $(seq 1 400); do
    if curl -fsS http://127.0.0.1:8443/readyz >"$log/service-readyz.out" 2>&1; then
        ready=1
        break
    fi
    kill -0 "$svc" 2>/dev/null || fail "the unit's ExecStart exited"
    sleep 0.02
done
[ "$ready" = 1 ] || fail "the unit's ExecStart did not become ready"
[ "$(stat -c '%G %a' /run/ztb/admin.sock)" = "ztb-admin 660" ] ||
    fail "/run/ztb/admin.sock is $(stat -c '%G %a' /run/ztb/admin.sock), not ztb-admin 660"
[ "$(stat -c '%G %a' /run/ztb/admin-ro.sock)" = "ztb-soc 660" ] ||
    fail "/run/ztb/admin-ro.sock is $(stat -c '%G %a' /run/ztb/admin-ro.sock), not ztb-soc 660"
run_block ops-roles-check
grep -q '^billing-bot' "$log/ops-roles-check.out" || fail "the read-only socket listed no agent"
grep -q 'read-only role' "$log/ops-roles-check.out" || fail "the read-only socket did not refuse a quarantine"
grep -q '"event":"admin.readonly_refused"' /var/lib/ztb/audit/audit.log ||
    fail "no admin.readonly_refused record in the audit log"
kill -TERM "$svc"
rc=0
wait "$svc" || rc=$?
[ "$rc" = 0 ] || fail "the service exited with status $rc after SIGTERM"
[ -z "${ZTB_FIRST_START_SHOW:-}" ] || cat "$log"/*.out
echo "first-start: ok ($(ms) ms)"
