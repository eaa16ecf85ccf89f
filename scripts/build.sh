#!/usr/bin/env bash
# build.sh - install what is missing, then build ztb.
#
#   scripts/build.sh          default build in build/ (-O2 -g -Wall -Wextra -Werror)
#   scripts/build.sh --asan   ASan+UBSan build with clang (and libFuzzer) in build-asan/
#   scripts/build.sh --tsan   ThreadSanitizer build with clang in build-tsan/: only
#                             what its test run needs (target tsan-tests: the unit
#                             tests, the integration tests labelled tsan, the broker
#                             and ztbctl)
#
# Binaries land in build/bin/ (ztb-broker, ztbctl, ztb-bench-*).
# Set ZTB_SKIP_DEPS=1 to skip the package check.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    --asan | --tsan | "") ;;
    *)
        echo "usage: scripts/build.sh [--asan|--tsan]" >&2
        exit 2
        ;;
esac
# the docs' check (tests/docs/doc_commands.py): arguments parsed, nothing run
[ "${ZTB_PARSE_ONLY:-0}" = 1 ] && exit 0

if [ "${ZTB_SKIP_DEPS:-0}" != 1 ]; then
    scripts/install-deps.sh
fi

jobs=$(nproc 2>/dev/null || echo 2)
target=()
case "${1:-}" in
    --asan)
        dir=build-asan
        CC=clang cmake -S . -B "$dir" -DZTB_SANITIZE=ON >/dev/null
        ;;
    --tsan)
        dir=build-tsan
        CC=clang cmake -S . -B "$dir" -DZTB_TSAN=ON >/dev/null
        target=(--target tsan-tests)
        ;;
    *)
        dir=build
        cmake -S . -B "$dir" >/dev/null
        ;;
esac
echo "build: compiling in $dir/ with $jobs jobs"
cmake --build "$dir" -j "$jobs" "${target[@]}" -- --no-print-directory >"$dir/build.log" 2>&1 || {
    grep -E "error|Error" "$dir/build.log" | head -40 >&2
    echo "build: FAILED (full log: $dir/build.log)" >&2
    exit 1
}
echo "build: ok in ${SECONDS} s ($dir/bin: $(ls "$dir/bin" 2>/dev/null | tr '\n' ' '))"
