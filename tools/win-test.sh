#!/usr/bin/env bash
# Cross-builds baton's Windows side with mingw-w64 (docs/windows.md) and runs
# its tests under Wine: installs and builds the dependencies if missing
# (tools/win-deps.sh), configures with cmake/mingw-w64.cmake, builds with
# -Werror, runs ctest in a Wine session of its own, then ends that session.
# Usage: tools/win-test.sh [BUILD_DIR]   (default build/win64)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build/win64}
start=$SECONDS

deps=$("$root/tools/win-deps.sh" | tail -1)
[ -f "$deps/.done" ] || { echo "baton-win: no dependency prefix" >&2; exit 1; }

echo "== baton: windows build (mingw-w64, deps in $deps) =="
# A new dependency prefix (a version changed) invalidates what CMake found
# and cached in the old one: configure afresh.
stamp="$dir/baton-win-deps"
if [ "$(cat "$stamp" 2>/dev/null)" != "$deps" ]; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
fi
"$root/tools/build.sh" "$dir" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64.cmake" \
    -DBATON_WIN_DEPS="$deps" -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "$deps" >"$stamp"

# A Wine session of our own, started before ctest and without its pipes:
# the first wine call of a session starts services (services.exe,
# winedevice.exe...) that would inherit ctest's stdout and keep it open, so
# that ctest never returns.
echo "== baton: windows tests (Wine) =="
export WINEPREFIX="$dir/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
stop_wine() { wineserver -k </dev/null >/dev/null 2>&1 || true; }
trap stop_wine EXIT
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$WINEPREFIX"
    wineboot -i </dev/null >/dev/null 2>&1
fi
# rc 2 when a server (e.g. wineboot's) is already up
wineserver -p </dev/null >/dev/null 2>&1 || true
wine cmd /c exit </dev/null >/dev/null 2>&1

status=0
(cd "$dir" && ctest --output-on-failure --timeout 120) || status=1
echo "baton-win: windows stage took $((SECONDS - start)) s"
exit $status
