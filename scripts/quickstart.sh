#!/usr/bin/env bash
# quickstart.sh - install what is missing, build, and run the ztb demo:
# a broker with its own private Redis, checked healthy and ready.
#
#   scripts/quickstart.sh          run the demo, then stop everything
#   scripts/quickstart.sh --keep   leave the broker running afterwards
#
# Everything lives under run/quickstart/ (state, logs); nothing is installed
# system-wide beyond the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=0
[ "${1:-}" = "--keep" ] && keep=1

scripts/build.sh
bin=$root/build/bin
demo=$root/run/quickstart
state=$demo/state
rm -rf "$demo"
mkdir -p "$demo"
chmod 0711 "$root/run" "$demo"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

user_args=()
if [ "$(id -u)" -eq 0 ]; then
    user_args=(--user nobody)   # the broker refuses to keep root
    # the broker's state must be reachable by that user once it drops root
    if ! runuser -u nobody -- test -x "$demo" 2>/dev/null; then
        state=$(mktemp -d /tmp/ztb-quickstart.XXXXXX)
        chmod 0711 "$state"
        state=$state/state
    fi
fi

step "Starting ztb-broker (private Redis in $state/redis)"
"$bin/ztb-broker" --state-dir "$state" --listen 127.0.0.1:0 \
    --ready-file "$demo/port" --log-format text "${user_args[@]}" \
    >"$demo/broker.log" 2>&1 &
broker_pid=$!
stop_broker() {
    if kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid"
        wait "$broker_pid" || true
    fi
}
if [ "$keep" = 0 ]; then
    trap stop_broker EXIT
fi

for _ in $(seq 1 500); do
    [ -s "$demo/port" ] && break
    if ! kill -0 "$broker_pid" 2>/dev/null; then
        cat "$demo/broker.log" >&2
        echo "quickstart: the broker exited at start (log above)" >&2
        exit 1
    fi
    sleep 0.02
done
port=$(cat "$demo/port")
url=http://127.0.0.1:$port
echo "broker pid $broker_pid listening on $url; admin socket $state/admin.sock"

step "Health: GET $url/healthz"
curl -fsS "$url/healthz"; echo
step "Readiness (Redis reachable): GET $url/readyz"
curl -fsS "$url/readyz"; echo

step "Broker log"
cat "$demo/broker.log"

if [ "$keep" = 1 ]; then
    echo
    echo "The broker keeps running (pid $broker_pid). Stop it with: kill $broker_pid"
else
    step "Stopping the broker (SIGTERM drains requests and stops its Redis)"
    stop_broker
    trap - EXIT
    echo "quickstart: done"
fi
