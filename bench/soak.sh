#!/usr/bin/env bash
# bench/soak.sh - baton under mixed plain/TLS/passthrough traffic while it is
# reloaded every few seconds, upgraded to another binary every minute and has
# its worker killed now and then; fails on any failed request (other than
# those a kill cut), on descriptor or memory growth, or on an unexpected
# outcome.  The driver is bench/soak.py (what is checked: see there and
# bench/README.md).  127.0.0.1 only, ports picked at run time, bounded in time.
#
# Tunables (environment):
#   SOAK_SECONDS=1800   how long the load runs (CI: 120)
#   BATON=path          baton binary; BATON_NEXT=path the second binary
#                       (default: build both into $BUILD_DIR)
#   BUILD_DIR=dir       build directory (default: $ROOT/build-bench)
#   SKIP_BUILD=1        do not (re)build
#   RELOAD_EVERY=3 UPGRADE_EVERY=60 KILL_EVERY=45   seconds between actions
#   CLIENTS=2           client threads per listener
#   KEEP=1              keep the temp dir (config, baton's log)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

SOAK_SECONDS=${SOAK_SECONDS:-1800}
RELOAD_EVERY=${RELOAD_EVERY:-3}
UPGRADE_EVERY=${UPGRADE_EVERY:-60}
KILL_EVERY=${KILL_EVERY:-45}
CLIENTS=${CLIENTS:-2}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
KEEP=${KEEP:-0}
IDLE_CONNS=0                         # for lib.sh

BENCH_TAG=soak
. "$HERE/lib.sh"
bench_need python3 python3
bench_need openssl openssl
bench_install

if [ -z "${BATON:-}" ] || [ -z "${BATON_NEXT:-}" ]; then
    BATON=$BUILD_DIR/baton BATON_NEXT=$BUILD_DIR/tests/baton-next
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "building baton and baton-next (Release) in $BUILD_DIR"
        [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >&2
        cmake --build "$BUILD_DIR" --target baton baton-next -j2 >&2
    fi
fi
[ -x "$BATON" ] || die "no baton binary at $BATON"
[ -x "$BATON_NEXT" ] || die "no baton-next binary at $BATON_NEXT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_tmpdir baton-soak
log "soak of $SOAK_SECONDS s: reload every $RELOAD_EVERY s, upgrade every $UPGRADE_EVERY s, kill every $KILL_EVERY s"
python3 "$HERE/soak.py" --baton "$BATON" --baton-next "$BATON_NEXT" --dir "$T" \
    --seconds "$SOAK_SECONDS" --reload-every "$RELOAD_EVERY" \
    --upgrade-every "$UPGRADE_EVERY" --kill-every "$KILL_EVERY" --clients "$CLIENTS" &
STARTED+=("$!")
MASTERS+=("$!")
rc=0
wait "$!" || rc=$?
[ "$rc" -eq 0 ] || log "soak failed (status $rc); baton's log: $T/baton.stderr.log${KEEP:+ (KEEP=1 keeps it)}"
exit "$rc"
