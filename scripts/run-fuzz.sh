#!/usr/bin/env bash
# run-fuzz.sh BINARY CORPUS_DIR SECONDS - run one libFuzzer target for a few
# seconds over a scratch copy of its seed corpus (the tree stays clean). New
# inputs it finds stay in the scratch copy; a crash fails the test and leaves
# the reproducer (crash-*) in the scratch directory, whose path is printed.
set -euo pipefail
bin=$1 corpus=$2 secs=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/ztb-fuzz.XXXXXX")
mkdir -p "$work/corpus"
cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
if "$bin" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 corpus 2>fuzz.log; then
    grep -E "stat::number_of_executed_units|Done" fuzz.log | tail -2
    rm -rf "$work"
else
    tail -40 fuzz.log
    echo "fuzz target failed; reproducer and log kept in $work" >&2
    exit 1
fi
