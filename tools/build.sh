#!/usr/bin/env bash
# Configures and builds baton into a build directory.
# Usage: tools/build.sh BUILD_DIR [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$1; shift
cmake -S "$root" -B "$dir" -DBATON_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
