#!/usr/bin/env bash
# bench/tls_burst_rss.sh - memory of a burst of half-open TLS handshakes,
# and how much of it comes back: baton vs HAProxy, in one run.
#
# Each proxy (one thread) terminates TLS on one listener (ECDSA P-256).
# bench/half_open_tls.py opens BURST connections that each send a
# ClientHello and never finish the handshake, holds them, then closes them
# all.  The figure is the proxy's RSS (baton: the worker) every second for
# 10 s after the close, against its idle RSS: the target is at most 2x idle
# 10 s after the burst.  127.0.0.1 only, ports picked free at run time,
# every phase bounded in time, every process started here stopped on exit.
# See bench/README.md ("bench/tls_burst_rss.sh").  Tunables (environment):
#   BATON=path          baton binary (default: build $BUILD_DIR/baton)
#   BUILD_DIR=dir       build directory (default: $ROOT/build-bench)
#   SKIP_BUILD=1        do not (re)build baton
#   BURST=10000         half-open connections (lowered to fit ulimit -n: HAProxy
#                       wants 2 descriptors per connection)
#   MODE=hello          what each connection sends: hello, or mix (a whole
#                       ClientHello, its first 100 bytes, nothing, in turn)
#   KEEP=1              keep the temp dir
#   STRICT=1            exit 1 when baton misses the target
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

IDLE_CONNS=${BURST:-10000}   # the name bench_raise_fds works with
MODE=${MODE:-hello}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
AFTER=10                      # seconds sampled after the burst
TARGET=2                      # RSS 10 s after the burst / idle RSS, at most

BENCH_TAG=tls-burst
. "$HERE/lib.sh"
bench_need haproxy haproxy
bench_need python3 python3
bench_need openssl openssl
bench_install
bench_build_baton
bench_raise_fds
BURST=$IDLE_CONNS
# HAProxy reserves two descriptors per connection (client and server side,
# plus 214 of its own) and will not start with maxconn beyond what the
# limit allows; both proxies get the same burst.
if [ "$nofile" != unlimited ] && [ $((2 * (BURST + 50) + 214)) -gt "$nofile" ]; then
    BURST=$(((nofile - 314) / 2 / 100 * 100))
    log "ulimit -n is $nofile: burst reduced to $BURST connections (HAProxy's descriptor needs)"
fi
bench_tmpdir baton-tls-burst

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$T/ec.key" -out "$T/ec.crt" 2>/dev/null
cat "$T/ec.crt" "$T/ec.key" >"$T/ec.pem"
BACKEND=$(free_port)          # nothing listens: no handshake ever completes here but the warm-up

# tls_ready PORT: one full handshake (retried up to 10 s), then close
tls_ready() {
    local _
    for _ in $(seq 100); do
        timeout 5 openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null \
            >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

start_haproxy() {                    # sets PORT PID
    PORT=$(free_port)
    cat >"$T/haproxy.cfg" <<EOT
global
    nbthread 1
    maxconn $((BURST + 50))
defaults
    mode tcp
    maxconn $((BURST + 50))
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend fe
    bind 127.0.0.1:$PORT ssl crt $T/ec.pem
    default_backend be
backend be
    server s1 127.0.0.1:$BACKEND
EOT
    haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
    PID=$!
    STARTED=("$PID" "${STARTED[@]}")
    tls_ready "$PORT" || die "haproxy did not come up: $(cat "$T/haproxy.log")"
}

start_baton() {                      # sets PORT PID (the worker)
    PORT=$(free_port)
    cat >"$T/baton.ini" <<EOT
[global]
threads = 1
control = $T/baton.sock
log_level = error
access_log = off
max_connections = $((BURST + 100))
[listener web]
bind = 127.0.0.1:$PORT
backend = app
backlog = 4096
tls = on
tls_cert = $T/ec.crt
tls_key = $T/ec.key
tls_handshake_timeout = 5m
[backend app]
server = a 127.0.0.1:$BACKEND
EOT
    bench_start_baton
    PID=$BATON_WORKER
    tls_ready "$PORT" || die "baton does not handshake: $(cat "$T/baton.log")"
}

# burst NAME: IDLE PEAK OPEN RSS_1..RSS_AFTER for the proxy started last
declare -A IDLE PEAK OPENED SERIES
burst() {
    local t=$1 cpid line
    sleep 1                          # the warm-up connection is gone
    IDLE[$t]=$(proc_rss_kb "$PID")
    log "$t: idle RSS ${IDLE[$t]} kB; opening $BURST half-open TLS connections ($MODE)"
    python3 "$HERE/half_open_tls.py" 127.0.0.1 "$PORT" "$BURST" 300 "$MODE" >"$T/burst-$t.out" &
    cpid=$!
    STARTED=("$cpid" "${STARTED[@]}")
    for _ in $(seq 1500); do grep -q '^opened' "$T/burst-$t.out" && break; sleep 0.1; done
    line=$(grep '^opened' "$T/burst-$t.out") || die "$t: the burst client did not finish opening"
    OPENED[$t]=$line
    sleep 1                          # the last ClientHellos are answered
    PEAK[$t]=$(proc_rss_kb "$PID")
    log "$t: $line; RSS ${PEAK[$t]} kB; closing them"
    kill -TERM "$cpid"
    wait "$cpid" 2>/dev/null || true
    grep -q '^closed' "$T/burst-$t.out" || die "$t: the burst client did not close its connections"
    SERIES[$t]=''
    for _ in $(seq "$AFTER"); do
        sleep 1
        SERIES[$t]+="$(proc_rss_kb "$PID") "
    done
    log "$t: RSS after the close, one per second: ${SERIES[$t]}"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
start_haproxy
burst haproxy
stop_pid "$PID"
start_baton
burst baton
stop_pid "$BATON_MASTER"

report() {
    local t rev last ratio verdict
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$ROOT" diff --quiet HEAD -- proxy conf handoff 2>/dev/null || rev="$rev+dirty"
    echo "baton TLS burst memory benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
    echo "versions: baton $rev ($BATON), $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3), $(openssl version | cut -d' ' -f1-2), $(ldd --version | head -1 | awk '{ print "glibc " $NF }')"
    echo "settings: $BURST half-open TLS 1.3 connections ($MODE), ECDSA P-256, one thread each; load avg before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    printf '| %-7s | %9s | %10s | %8s | %15s | %8s | %-12s |\n' proxy 'idle RSS' 'peak RSS' \
        'KiB/conn' "RSS ${AFTER} s after" ratio target
    echo '|:--------|----------:|-----------:|---------:|----------------:|---------:|:-------------|'
    for t in haproxy baton; do
        # shellcheck disable=SC2086
        set -- ${SERIES[$t]}
        last=${!#}
        ratio=$(calc "$last / ${IDLE[$t]}")
        verdict=$(awk -v r="$ratio" -v g="$TARGET" 'BEGIN { print r <= g ? "PASS" : "FAIL" }')
        printf '| %-7s | %5.1f MiB | %6.1f MiB | %8.1f | %11.1f MiB | %7.2fx | %-12s |\n' "$t" \
            "$(calc "${IDLE[$t]} / 1024")" "$(calc "${PEAK[$t]} / 1024")" \
            "$(calc "(${PEAK[$t]} - ${IDLE[$t]}) / $BURST")" \
            "$(calc "$last / 1024")" "$ratio" "$verdict (<= ${TARGET}x)"
    done
    echo
    for t in haproxy baton; do
        # shellcheck disable=SC2086
        printf '  %-7s RSS 1..%s s after the close (MiB): %s\n' "$t" "$AFTER" \
            "$(for v in ${SERIES[$t]}; do printf '%.1f ' "$(calc "$v / 1024")"; done | sed 's/ $//')"
    done
    echo
    for t in haproxy baton; do echo "  $t burst client: ${OPENED[$t]}"; done
    echo "RSS: VmRSS of HAProxy's process / baton's worker, idle = after one full handshake."
    echo "KiB/conn: (peak - idle) / connections."
}
report | tee "$T/report.txt"
log "done"
if [ "$STRICT" = 1 ] && grep -q '^| baton .*FAIL' "$T/report.txt"; then exit 1; fi
exit 0
