#!/usr/bin/env bash
# lint.sh - static checks on the C sources.
#
#   scripts/lint.sh format      clang-format --dry-run -Werror on every .c/.h
#   scripts/lint.sh cppcheck    cppcheck (warning, performance, portability)
#   scripts/lint.sh tidy BUILD  clang-tidy with .clang-tidy, using BUILD's compile_commands.json
#   scripts/lint.sh all BUILD   all three
#
# Run by ctest in the default build (label lint).
set -euo pipefail
cd "$(dirname "$0")/.."

sources() {
    find common wire broker authz pki policy audit sdk cli bench examples tests -name '*.[ch]' -not -path '*/corpus/*' 2>/dev/null | sort
}
# Code whose every file the compiler sees through compile_commands.json.
tidy_sources() {
    find common wire broker authz pki policy audit sdk/src cli -name '*.c' 2>/dev/null | sort
}

do_format() {
    # shellcheck disable=SC2046
    clang-format --dry-run -Werror $(sources)
    echo "lint: format ok ($(sources | wc -l) files)"
}

do_cppcheck() {
    # shellcheck disable=SC2046
    cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
        --error-exitcode=1 -I. -Isdk/include --suppress=missingIncludeSystem \
        $(sources)
    echo "lint: cppcheck ok"
}

do_tidy() {
    local build=${1:-build}
    [ -f "$build/compile_commands.json" ] || { echo "lint: no $build/compile_commands.json" >&2; exit 1; }
    # collect first, judge after: a pipeline's status would hide the findings
    local out
    out=$(tidy_sources | xargs -P 2 -n 4 clang-tidy -p "$build" --quiet 2>&1 || true)
    if grep -qE "(warning|error):" <<<"$out"; then
        grep -E "(warning|error):" <<<"$out" | sort -u >&2
        echo "lint: clang-tidy found problems" >&2
        exit 1
    fi
    echo "lint: clang-tidy ok"
}

case "${1:-all}" in
    format) do_format ;;
    cppcheck) do_cppcheck ;;
    tidy) do_tidy "${2:-build}" ;;
    all) do_format; do_cppcheck; do_tidy "${2:-build}" ;;
    *) echo "usage: scripts/lint.sh [format|cppcheck|tidy BUILD|all BUILD]" >&2; exit 2 ;;
esac
