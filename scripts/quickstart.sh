#!/usr/bin/env bash
# quickstart.sh - install what is missing, build, and run the ztb demo end to end:
#
#   1. a key store, an agent CA and a policy (examples/policy/quickstart.json)
#   2. ztb-broker with its own private Redis
#   3. an operator registers the agent billing-bot (ztbctl) and gets a join token
#   4. a gateway guarding POST /refunds/<id> with libztb's verifier
#   5. the agent enrolls (its key never leaves it), asks for a token for one
#      action and calls the gateway with it: accepted
#   6. the same single-use token again: refused by the gateway
#   7. an action outside the policy (a refund of 5000): refused by the broker
#   8. a refund above the agent's autonomous limit (200): the broker holds it for a
#      human; the operator approves it with ztbctl and the agent gets its token
#   9. a revocation: the agent's tokens, sessions and identity are revoked; a token it already holds
#      is refused by the gateway at once
#
#   scripts/quickstart.sh          run the demo, then stop everything
#   scripts/quickstart.sh --keep   leave broker and gateway running afterwards
#
# Everything lives under run/quickstart/; nothing is installed system-wide
# beyond the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=0
case "${1:-}" in
    --keep) keep=1 ;;
    "") ;;
    -h | --help)
        sed -n '17,18s/^#   //p' "$0"
        exit 0
        ;;
    *)
        echo "usage: scripts/quickstart.sh [--keep]" >&2
        exit 2
        ;;
esac
[ $# -le 1 ] || { echo "usage: scripts/quickstart.sh [--keep]" >&2; exit 2; }
# the docs' check (tests/docs/doc_commands.py): arguments parsed, nothing run
[ "${ZTB_PARSE_ONLY:-0}" = 1 ] && exit 0

scripts/build.sh
bin=$root/build/bin
demo=$root/run/quickstart
rm -rf "$demo"
mkdir -p "$demo"
chmod 0711 "$root/run" "$demo"
state=$demo/state

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

user_args=()
if [ "$(id -u)" -eq 0 ]; then
    user_args=(--user nobody)   # the broker refuses to keep root
    # the broker's state must be reachable by that user once it drops root
    if ! runuser -u nobody -- test -x "$demo" 2>/dev/null; then
        s=$(mktemp -d /tmp/ztb-quickstart.XXXXXX)
        chmod 0711 "$s"
        state=$s/state
    fi
fi
mkdir -p "$state"
chmod 0700 "$state"
keys=$state/keys

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}
if [ "$keep" = 0 ]; then
    trap cleanup EXIT
fi

wait_for_file() { # file pid what
    for _ in $(seq 1 500); do
        [ -s "$1" ] && return 0
        if ! kill -0 "$2" 2>/dev/null; then
            echo "quickstart: $3 exited at start:" >&2
            cat "$demo/$3.log" >&2 || true
            exit 1
        fi
        sleep 0.02
    done
    echo "quickstart: $3 did not start" >&2
    exit 1
}

step "1. Key store, agent CA (trust domain ztb.local) and policy"
"$bin/ztbctl" keys --dir "$keys" init | sed 's/^/    /'
"$bin/ztbctl" ca --dir "$keys" init --trust-domain ztb.local | sed 's/^/    /'
cp examples/policy/quickstart.json "$demo/policy.json"
chmod 0644 "$demo/policy.json"
"$bin/ztbctl" policy check "$demo/policy.json" | head -3 | sed 's/^/    /'
if [ "$(id -u)" -eq 0 ]; then
    # the install step: the state tree is the service user's (a broker started
    # as root changes no owner below its state directory; docs/broker.md)
    chown -hR nobody: "$state"
fi

step "2. ztb-broker with a private Redis ($state/redis)"
"$bin/ztb-broker" --state-dir "$state" --listen 127.0.0.1:0 --ready-file "$demo/port" \
    --policy "$demo/policy.json" --trust-domain ztb.local --log-format text \
    "${user_args[@]}" >"$demo/broker.log" 2>&1 &
pids+=($!)
wait_for_file "$demo/port" "${pids[-1]}" broker
broker=http://127.0.0.1:$(cat "$demo/port")
export ZTB_ADMIN_SOCKET=$state/admin.sock
note "listening on $broker; admin socket $ZTB_ADMIN_SOCKET"
note "readyz: $(curl -fsS "$broker/readyz")"

step "3. The operator registers the agent billing-bot"
join=$("$bin/ztbctl" --json agent add billing-bot | sed -n 's/.*"join_token": "\([^"]*\)".*/\1/p')
[ -n "$join" ] || { echo "quickstart: no join token" >&2; exit 1; }
note "one-time join token: ${join:0:12}... (shown once, stored only as a hash)"

step "4. A gateway guarding POST /refunds/<id> (audience payments) with libztb"
"$bin/ztb-gateway-example" --issuer "$broker" --audience payments \
    --jwks-url "$broker/.well-known/jwks.json" --redis "unix://$state/redis/redis.sock" \
    --listen 127.0.0.1:0 >"$demo/gateway.out" 2>"$demo/gateway.log" &
pids+=($!)
wait_for_file "$demo/gateway.out" "${pids[-1]}" gateway
gateway=$(sed -n 's/^gateway: listening on //p' "$demo/gateway.out")
note "gateway on $gateway"

agent() {
    "$bin/ztb-agent-example" --broker "$broker" --name billing-bot \
        --credential-file "$demo/billing-bot.pem" "$@"
}

step "5. The agent enrolls, then asks for a token to refund order 1234 (amount 40)"
ZTB_JOIN_TOKEN=$join agent 2>&1 | sed 's/^/    /'
note "its private key stays in $demo/billing-bot.pem (mode $(stat -c %a "$demo/billing-bot.pem"))"
tok=$(agent --audience payments --action payments:refund --resource orders/1234 \
    --details '{"amount": 40}')
note "token: ${tok:0:40}... ($(printf %s "$tok" | wc -c) bytes, one action, 60 s)"
note "gateway says: $(curl -sS -X POST -H "Authorization: Bearer $tok" "$gateway/refunds/1234")"

step "6. The same single-use token a second time"
note "gateway says: $(curl -sS -X POST -H "Authorization: Bearer $tok" "$gateway/refunds/1234")"

step "7. An action outside the policy: a refund of 5000"
if agent --audience payments --action payments:refund --resource orders/1234 \
        --details '{"amount": 5000}' >/dev/null 2>"$demo/denied.txt"; then
    echo "quickstart: the broker issued an out-of-policy token" >&2
    exit 1
fi
sed 's/^/    /' "$demo/denied.txt"

step "8. A refund of 200: above billing-bot's autonomous limit, a human approves it"
approver=${SUDO_USER:-$(id -un)}
"$bin/ztbctl" approvers add finance "$approver" | sed 's/^/    /'
rc=0
agent --audience payments --action payments:refund --resource orders/555 \
    --details '{"amount": 200}' >/dev/null 2>"$demo/pending.txt" || rc=$?
[ "$rc" = 3 ] || { echo "quickstart: the refund did not wait for approval" >&2; cat "$demo/pending.txt" >&2; exit 1; }
sed 's/^/    /' "$demo/pending.txt"
approval=$(sed -n 's/.*approval \(apr_[A-Za-z0-9_-]*\) pending.*/\1/p' "$demo/pending.txt")
"$bin/ztbctl" approvals list | sed 's/^/    /'
"$bin/ztbctl" approvals approve "$approval" | sed 's/^/    /'
agent --audience payments --action payments:refund --resource orders/555 \
    --details '{"amount": 200}' --approval-wait 30 --call "$gateway/refunds/555" 2>&1 | sed 's/^/    /'

step "9. Revocation: an operator revokes billing-bot (its tokens, sessions and identity)"
held=$(agent --audience payments --action payments:refund --resource orders/77 \
    --details '{"amount": 10}')
"$bin/ztbctl" revoke agent billing-bot --reason "quickstart demo" | sed 's/^/    /'
note "gateway, for a token issued before: $(curl -sS -X POST \
    -H "Authorization: Bearer $held" "$gateway/refunds/77")"

step "Audit log: $state/audit/audit.log"
"$bin/ztbctl" audit verify "$state/audit/audit.log" | sed 's/^/    /'
grep -o '"event":"[a-z_.]*"' "$state/audit/audit.log" | sort | uniq -c | sed 's/^/    /'

if [ "$keep" = 1 ]; then
    echo
    echo "Broker ($broker) and gateway ($gateway) keep running: kill ${pids[*]}"
else
    step "Stopping (SIGTERM drains requests; the broker stops its Redis)"
    cleanup
    trap - EXIT
    echo "quickstart: done"
fi
