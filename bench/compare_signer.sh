#!/bin/sh
# compare_signer.sh - the cost of the signer process, measured in one run:
# ztb-bench-issue against ztb-broker (keys in the signer process) and against
# ztb-bench-broker-inproc (the benchmark-only baseline that signs in its HTTP
# process), alternating, PAIRS pairs (the order flips every pair so a drift
# in the machine's load does not favour one side). Prints each run's figures
# and then `name: value` lines: the medians of each side and of the per-pair
# ratios (signer / inproc). Extra arguments go to every ztb-bench-issue run.
#
#   bench/compare_signer.sh [BIN_DIR] [PAIRS] [ztb-bench-issue options...]
#   bench/compare_signer.sh build/bin 3 --rounds 3 --seconds 3 --warmup 2 --openssl-seconds 1
set -eu
BIN=${1:-build/bin}
PAIRS=${2:-3}
[ $# -ge 1 ] && shift
[ $# -ge 1 ] && shift
OUT=$(mktemp -d "${TMPDIR:-/tmp}/ztb-compare.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

run() { # run SIDE PAIR [extra]
    side=$1 pair=$2
    shift 2
    "$BIN/ztb-bench-issue" "$@" >"$OUT/$side.$pair" 2>"$OUT/$side.$pair.err" || {
        cat "$OUT/$side.$pair.err" >&2
        exit 1
    }
    tps=$(sed -n 's/^tokens_per_s: //p' "$OUT/$side.$pair")
    cpu=$(sed -n 's/^broker_cpu_us_per_token: //p' "$OUT/$side.$pair")
    err=$(sed -n 's/^errors: //p' "$OUT/$side.$pair")
    echo "pair $pair $side: tokens_per_s $tps broker_cpu_us_per_token $cpu errors $err load $(cut -d' ' -f1 /proc/loadavg)" >&2
}

p=1
while [ "$p" -le "$PAIRS" ]; do
    if [ $((p % 2)) -eq 1 ]; then
        run inproc "$p" --inproc-signing "$@"
        run signer "$p" "$@"
    else
        run signer "$p" "$@"
        run inproc "$p" --inproc-signing "$@"
    fi
    p=$((p + 1))
done

# medians: of each side's tokens/s and CPU per token, and of the pair ratios
for p in $(seq 1 "$PAIRS"); do
    a=$(sed -n 's/^tokens_per_s: //p' "$OUT/inproc.$p")
    b=$(sed -n 's/^tokens_per_s: //p' "$OUT/signer.$p")
    ca=$(sed -n 's/^broker_cpu_us_per_token: //p' "$OUT/inproc.$p")
    cb=$(sed -n 's/^broker_cpu_us_per_token: //p' "$OUT/signer.$p")
    echo "$a $b $ca $cb"
done | awk '
function median(v, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{ n++; a[n] = $1; b[n] = $2; ca[n] = $3; cb[n] = $4; r[n] = $2 / $1
  printf "pair_%d_ratio: %.3f\n", n, r[n] }
END {
    printf "pairs: %d\n", n
    printf "inproc_tokens_per_s: %.0f\n", median(a, n)
    printf "signer_tokens_per_s: %.0f\n", median(b, n)
    printf "inproc_broker_cpu_us_per_token: %.1f\n", median(ca, n)
    printf "signer_broker_cpu_us_per_token: %.1f\n", median(cb, n)
    printf "signer_vs_inproc_ratio: %.3f\n", median(r, n)
}'
