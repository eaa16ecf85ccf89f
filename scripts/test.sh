#!/usr/bin/env bash
# test.sh - install what is missing, build, and run the whole test suite twice:
# in the default build and in the ASan+UBSan build (clang, with the fuzz
# targets running as real libFuzzer for a few seconds each).
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --quick    default build only
#   scripts/test.sh -L unit    pass ctest options (label unit, integration, fuzz, lint)
#
# The last line is the total over both builds: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
ctest_args=()
for a in "$@"; do
    case "$a" in
        --quick) quick=1 ;;
        *) ctest_args+=("$a") ;;
    esac
done

scripts/install-deps.sh
export ZTB_SKIP_DEPS=1

passed=0
failed=0
run_suite() {
    local dir=$1
    local log="$dir/ctest.log"
    echo "== $2: ctest in $dir/"
    set +e
    (cd "$dir" && ctest -j 2 --output-on-failure --timeout 600 "${ctest_args[@]}") 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    local line
    line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1 || true)
    if [ -z "$line" ]; then
        echo "test: $2: ctest printed no summary" >&2
        failed=$((failed + 1))
        return
    fi
    local nfail ntotal
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    ntotal=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + ntotal - nfail))
    failed=$((failed + nfail))
    if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
        failed=$((failed + 1))
    fi
}

scripts/build.sh
run_suite build "default build"
if [ "$quick" = 0 ]; then
    scripts/build.sh --asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_suite build-asan "ASan+UBSan build"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
