#!/usr/bin/env bash
# Installs what is missing, builds baton twice (plain, and with
# AddressSanitizer + UBSan) and runs the whole test suite against each, then
# a 2-minute soak (bench/soak.sh) against the plain build, then fuzzes the
# parsers (tools/fuzz.sh, clang + libFuzzer) for BATON_FUZZ_SECONDS per
# target (default 60; 0 only replays the corpora), then cross-builds the
# Windows side and runs its tests under Wine (tools/win-test.sh,
# docs/windows.md; BATON_WINDOWS=0 skips it).
# Exits non-zero on any failure.  SOAK_SECONDS=N changes the soak's length;
# SOAK_SECONDS=0 skips it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/deps.sh"

jobs=$(nproc)
status=0
run_suite() {
    local name=$1 dir=$2; shift 2
    echo "== baton: $name build =="
    "$root/tools/build.sh" "$dir" "$@"
    echo "== baton: $name tests =="
    # The integration tests open thousands of sockets.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900) || status=1
}

run_suite release "$root/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite asan "$root/build/asan" -DCMAKE_BUILD_TYPE=Debug -DBATON_SANITIZE=ON

soak_seconds=${SOAK_SECONDS:-120}
if [ "$soak_seconds" != 0 ]; then
    echo "== baton: soak, release build, $soak_seconds s =="
    SOAK_SECONDS=$soak_seconds BATON="$root/build/release/baton" \
        BATON_NEXT="$root/build/release/tests/baton-next" "$root/bench/soak.sh" || status=1
fi

echo "== baton: fuzzing =="
"$root/tools/fuzz.sh" "${BATON_FUZZ_SECONDS:-60}" || status=1

if [ "${BATON_WINDOWS:-1}" != 0 ]; then
    echo "== baton: windows (mingw-w64 cross-build, tests under Wine) =="
    "$root/tools/win-test.sh" || status=1
fi

if [ $status -ne 0 ]; then
    echo "baton: some tests failed" >&2
fi
exit $status
