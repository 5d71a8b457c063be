#!/usr/bin/env bash
# Builds the baton binary of an earlier commit (the previous release, for
# cross-version upgrade tests) from this repository's history, into DIR.
# Reuses DIR when it already holds that commit's binary.
# Usage: tools/build-previous.sh DIR [REV]   (REV defaults to tests/previous-release)
# Prints the path of the built binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
rev=${2:-$(sed -n 's/^commit=//p' "$root/tests/previous-release")}
if ! git -C "$root" cat-file -e "$rev^{commit}" 2>/dev/null; then
    echo "build-previous: commit $rev is not in this clone (a shallow clone? fetch the history)" >&2
    exit 3
fi
bin="$dir/build/baton"
if [ -x "$bin" ] && [ "$(cat "$dir/commit" 2>/dev/null)" = "$rev" ]; then
    echo "$bin"
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/src"
git -C "$root" archive "$rev" | tar -x -C "$dir/src"
cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    >"$dir/cmake.log" 2>&1 || { cat "$dir/cmake.log" >&2; exit 1; }
cmake --build "$dir/build" --target baton -j"$(nproc)" >"$dir/build.log" 2>&1 ||
    { tail -50 "$dir/build.log" >&2; exit 1; }
echo "$rev" > "$dir/commit"
echo "$bin"
