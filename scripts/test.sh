#!/usr/bin/env bash
# test.sh - install what is missing, build, and run the test suite in three
# builds:
#   build/       default (gcc -Werror): the whole suite, lint included
#   build-asan/  ASan+UBSan (clang): the whole suite, the fuzz targets running
#                as real libFuzzer for a few seconds each
#   build-tsan/  ThreadSanitizer (clang): the unit tests and the integration
#                tests labelled tsan (see below)
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --quick    default build only
#   scripts/test.sh -L unit    pass ctest options (label unit, integration, fuzz,
#                              lint, tsan); in the TSan build they narrow its own
#                              choice (ctest runs what matches every -L)
#
# Why the TSan build runs a subset: TSan slows code 5-15x and the whole CI
# run must stay under 15 minutes on 2 cores (clean runs as CI does them took
# 844 to 890 s on one 2-core machine and 440 s on a faster one, 2026-12-04:
# builds about 130, 160, 105 s there and 45, 45, 28 s here; ctest about
# 230-267 s default, where clang-tidy is the long pole, 165 s ASan and 62 s
# TSan there, 167, 114 and 44 s here; each phase prints its time).
# A data race needs two threads touching the same memory, so the TSan build
# runs what has threads: every unit test but ztbctl's (NO_TSAN in
# cli/CMakeLists.txt: ztbctl starts no threads) (they are quick, and several start
# threads against the real code: the script cache in test_store, the audit
# writer, detectors, the SDK's feed and caches) and the integration tests
# labelled tsan (ztb_add_integration_test(... TSAN ...) in tests/CMakeLists.txt):
# the ones that drive the broker's HTTP worker threads concurrently, the
# signal and detector threads, the key refresher under rotation, and the SDK
# verifier with its revocation-feed thread. The other integration tests are
# request/response checks whose threads those already start and stop.
# Measured on the 2-core machine: the TSan build (only its target
# tsan-tests) takes about 150 CPU-seconds (2 to 3 minutes on 2 cores), its
# test run about 60 seconds; about 3.5 minutes added in all.
# Races in third-party libraries only are suppressed, with a reason per line,
# in tests/tsan.supp.
#
# The last line is the total over all builds: "N passed, N failed".
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
# the docs' check (tests/docs/doc_commands.py): arguments parsed, nothing run
[ "${ZTB_PARSE_ONLY:-0}" = 1 ] && exit 0

scripts/install-deps.sh
export ZTB_SKIP_DEPS=1

# Test-only dependencies that were missing at configure time (the build
# writes missing-test-deps.txt): the tests that need them are not built.
# Said loudly after each build and again before the total.
missing_notes=""
note_missing() {
    local f="$1/missing-test-deps.txt"
    if [ -s "$f" ]; then
        echo "!!!!!!!! $1: test-only dependencies missing, some tests NOT BUILT:" >&2
        sed 's/^/!!!!!!!!   /' "$f" >&2
        missing_notes+="$1: $(tr '\n' ';' <"$f")"$'\n'
    fi
}

passed=0
failed=0
# run_suite DIR TITLE N [extra ctest options]: N integration tests at once
run_suite() {
    local dir=$1 title=$2 slots=$3
    shift 3
    local log="$dir/ctest.log" spec="$PWD/$dir/ctest-resources.json"
    local t0=$SECONDS
    echo "== $title: ctest in $dir/"
    # the resource the integration tests take a slot of (cmake/ZtbTargets.cmake)
    printf '{"version": {"major": 1, "minor": 0}, "local": [{"integration": [{"id": "0", "slots": %d}]}]}\n' \
        "$slots" >"$spec"
    set +e
    # -j 3 on 2 cores: many tests spend their time waiting (timeouts,
    # sleeps, a Redis starting). The default build runs its integration tests
    # one at a time: clang-tidy keeps both cores busy beside them, and more at
    # once was slower (208-216 s against 200 s). The sanitizer builds run
    # several at once: ASan took 225 s one at a time, 175 s three at a time.
    (cd "$dir" && ctest -j 3 --resource-spec-file "$spec" --output-on-failure --timeout 600 \
        "${ctest_args[@]}" "$@") 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    echo "== $title: $((SECONDS - t0)) s"
    local line
    line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1 || true)
    if [ -z "$line" ]; then
        echo "test: $title: ctest printed no summary" >&2
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
note_missing build
run_suite build "default build" 1
if [ "$quick" = 0 ]; then
    scripts/build.sh --asan
    note_missing build-asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_suite build-asan "ASan+UBSan build" 3

    scripts/build.sh --tsan
    note_missing build-tsan
    # halt_on_error: a race stops the process that has it (a broker started by
    # an integration test too), so the test fails even if it never looks at
    # the broker's exit status; the report is in the test's or broker's log.
    # only these are built there (target tsan-tests)
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
        run_suite build-tsan "ThreadSanitizer build (unit + tsan)" 2 -L '^(unit|tsan)$'
fi

if [ -n "$missing_notes" ]; then
    echo "!!!!!!!! some tests were NOT BUILT (test-only dependencies missing; scripts/install-deps.sh installs them):" >&2
    printf '%s' "$missing_notes" | sed 's/^/!!!!!!!!   /' >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
