#!/usr/bin/env bash
# bench/tls.sh - TLS termination: baton vs HAProxy, in one run on one machine.
#
# Both proxies (one thread each) terminate TLS 1.3 in front of the same
# plain-HTTP nginx, on two listeners each: one with an ECDSA P-256
# certificate, one with an RSA-2048 certificate.  Same approach as
# bench/run.sh: 127.0.0.1 only, ports picked free at run time, every load
# bounded in time, every process started here stopped on exit.  See
# bench/README.md ("bench/tls.sh") for what each figure means.
# Tunables (environment):
#   BATON=path          baton binary (default: build $BUILD_DIR/baton)
#   BUILD_DIR=dir       build directory (default: $ROOT/build-bench)
#   SKIP_BUILD=1        do not (re)build baton
#   ROUNDS=2            wrk rounds per figure (interleaved haproxy/baton)
#   STIME=5             seconds per openssl s_time batch (handshake figures)
#   SPROCS=8            s_time processes run at once
#   HS_DURATION=5       seconds per wrk Connection: close run
#   CLOSE_ROUNDS=4      wrk Connection: close rounds per listener, HAProxy and baton
#                       swapping places every round; the ratio is the median of the
#                       rounds' own ratios (the host's speed drifts between rounds)
#   KA_DURATION=8       seconds per keep-alive wrk run
#   CONNS=64            wrk connections
#   BULK_RUNS=6         64 MiB downloads per proxy (interleaved)
#   IDLE_CONNS=10000    idle TLS connections held open for the RSS figure
#   KEEP=1              keep the temp dir
#   STRICT=1            exit 1 when a ratio misses its target
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

ROUNDS=${ROUNDS:-2}
CLOSE_ROUNDS=${CLOSE_ROUNDS:-4}
HS_DURATION=${HS_DURATION:-5}
STIME=${STIME:-5}
SPROCS=${SPROCS:-8}
KA_DURATION=${KA_DURATION:-8}
CONNS=${CONNS:-64}
BULK_RUNS=${BULK_RUNS:-6}
IDLE_CONNS=${IDLE_CONNS:-10000}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
BIG_BYTES=$((64 * 1024 * 1024))

BENCH_TAG=tls
. "$HERE/lib.sh"
bench_need_common
bench_need openssl openssl
bench_install
bench_build_baton
bench_raise_fds
bench_tmpdir baton-tls

# ---------------------------------------------------------------- certificates
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$T/ec.key" -out "$T/ec.crt" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$T/rsa.key" -out "$T/rsa.crt" 2>/dev/null
cat "$T/ec.crt" "$T/ec.key" >"$T/ec.pem"
cat "$T/rsa.crt" "$T/rsa.key" >"$T/rsa.pem"

# ---------------------------------------------------------------- backend: nginx
NGX_PORT=$(free_port)
NGX_NOFILE=$((IDLE_CONNS + 1000))
[ "$nofile" != unlimited ] && [ "$nofile" -lt "$NGX_NOFILE" ] && NGX_NOFILE=$nofile
mkdir -p "$T/nginx/www" "$T/nginx/logs"
dd if=/dev/zero of="$T/nginx/www/big" bs=1M count=64 status=none
chmod -R a+rX "$T/nginx"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
worker_rlimit_nofile $NGX_NOFILE;
events { worker_connections $((NGX_NOFILE - 100)); }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_header_timeout 300s;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGX_PORT backlog=4096;
        root $T/nginx/www;
        location = /small { return 200 "ok\n"; }
        location = /big { }
    }
}
EOF
nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/logs/error.log" \
    >"$T/nginx/stdout.log" 2>&1 &
STARTED=("$!" "${STARTED[@]}")
wait_url "http://127.0.0.1:$NGX_PORT/small" || die "nginx did not come up: $(cat "$T/nginx/logs/error.log")"

# ---------------------------------------------------------------- HAProxy
HAP_EC=$(free_port)
HAP_RSA=$(free_port)
HAP_MAXCONN=$((IDLE_CONNS + 50))
cat >"$T/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $HAP_MAXCONN
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode tcp
    maxconn $HAP_MAXCONN
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend fe_ec
    bind 127.0.0.1:$HAP_EC ssl crt $T/ec.pem
    default_backend be
frontend fe_rsa
    bind 127.0.0.1:$HAP_RSA ssl crt $T/rsa.pem
    default_backend be
backend be
    server s1 127.0.0.1:$NGX_PORT
EOF
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
HAP_PID=$!
STARTED=("$HAP_PID" "${STARTED[@]}")
wait_url "https://127.0.0.1:$HAP_EC/small" || die "haproxy did not come up: $(cat "$T/haproxy.log")"

# ---------------------------------------------------------------- baton
BAT_EC=$(free_port)
BAT_RSA=$(free_port)
cat >"$T/baton.ini" <<EOF
[global]
threads = 1
control = $T/baton.sock
log_level = warn
access_log = off
max_connections = 100000
[listener web_ec]
bind = 127.0.0.1:$BAT_EC
backend = app
backlog = 4096
idle_timeout = 5m
tls = on
tls_cert = $T/ec.crt
tls_key = $T/ec.key
[listener web_rsa]
bind = 127.0.0.1:$BAT_RSA
backend = app
backlog = 4096
idle_timeout = 5m
tls = on
tls_cert = $T/rsa.crt
tls_key = $T/rsa.key
[backend app]
server = a 127.0.0.1:$NGX_PORT
EOF
bench_start_baton
wait_url "https://127.0.0.1:$BAT_EC/small" || die "baton does not relay: $(cat "$T/baton.log")"
wait_url "https://127.0.0.1:$BAT_RSA/small" || die "baton does not relay (rsa): $(cat "$T/baton.log")"

TARGETS=(haproxy baton)
declare -A PORT=([haproxy-ec]=$HAP_EC [haproxy-rsa]=$HAP_RSA [baton-ec]=$BAT_EC [baton-rsa]=$BAT_RSA)
declare -A PIDS=([haproxy]="$HAP_PID" [baton]="$BATON_MASTER $BATON_WORKER")
log "nginx :$NGX_PORT  haproxy :$HAP_EC/:$HAP_RSA (pid $HAP_PID)  baton :$BAT_EC/:$BAT_RSA (master $BATON_MASTER, worker $BATON_WORKER)"
for k in "${!PORT[@]}"; do
    v=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:${PORT[$k]}" 2>/dev/null |
        awk '/^New, / { print $2, $NF } /Peer signature type/ { print $NF }' | paste -sd' ')
    log "$k: $v"
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 5. idle TLS connections (first, on fresh proxies)
declare -A IDLE_KB IDLE_BASE_KB IDLE_N IDLE_UP
for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    set -- ${PIDS[$t]}
    base=$(proc_rss_kb "$@")
    log "$t: opening $IDLE_CONNS idle TLS connections (ECDSA listener)"
    python3 "$HERE/idle_tls_conns.py" 127.0.0.1 "${PORT[$t-ec]}" "$IDLE_CONNS" 120 >"$T/idle-$t.out" &
    cpid=$!
    STARTED=("$cpid" "${STARTED[@]}")
    for _ in $(seq 1200); do grep -q connected "$T/idle-$t.out" && break; sleep 0.1; done
    n=$(awk '/connected/ { print $2 }' "$T/idle-$t.out")
    [ -n "$n" ] && [ "$n" -gt 0 ] || die "$t: idle client did not connect"
    # until the proxy has a server connection for each (or the count stops growing for 3 s)
    last=-1 same=0
    for _ in $(seq 300); do
        up=$(established_to "$NGX_PORT")
        [ "$up" -ge "$n" ] && break
        if [ "$up" = "$last" ]; then same=$((same + 1)); [ "$same" -ge 30 ] && break; else same=0; fi
        last=$up
        sleep 0.1
    done
    sleep 1
    up=$(established_to "$NGX_PORT")
    after=$(proc_rss_kb "$@")
    stop_pid "$cpid"
    wait "$cpid" 2>/dev/null || true
    for _ in $(seq 300); do [ "$(established_to "$NGX_PORT")" -lt 10 ] && break; sleep 0.1; done
    IDLE_BASE_KB[$t]=$base IDLE_N[$t]=$n IDLE_UP[$t]=$up
    IDLE_KB[$t]=$(calc "($after - $base) / $n")
    log "$t: $(cat "$T/idle-$t.out"), $up to backend; RSS ${base} -> ${after} kB = ${IDLE_KB[$t]} kB/conn"
done

# ---------------------------------------------------------------- wrk helpers
# run_wrk OUT TARGET KEY SECONDS [wrk args...] -> sets W_REQ W_RPS W_TICKS W_ERR
run_wrk() {
    local out=$1 t=$2 k=$3 d=$4 t0 t1
    shift 4
    # shellcheck disable=SC2086
    t0=$(proc_ticks ${PIDS[$t]})
    timeout $((d + 30)) wrk -t1 -c"$CONNS" -d"${d}s" "$@" \
        "https://127.0.0.1:${PORT[$t-$k]}/small" >"$out" 2>&1 || true
    # shellcheck disable=SC2086
    t1=$(proc_ticks ${PIDS[$t]})
    W_REQ=$(awk '/requests in/ { print $1 }' "$out")
    W_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    W_ERR=$(awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print } /Non-2xx/ { print "non-2xx " $NF }' "$out" | paste -sd' ')
    W_TICKS=$((t1 - t0))
    [ -n "$W_REQ" ] && [ -n "$W_RPS" ] || die "wrk failed for $t-$k: $(cat "$out")"
}
us_per() { # ticks count -> microseconds of CPU per unit
    if [ "$2" -gt 0 ]; then calc "$1 * 1e6 / $HZ / $2"; else echo 0; fi
}

for t in "${TARGETS[@]}"; do
    timeout 10 wrk -t1 -c"$CONNS" -d1s "https://127.0.0.1:${PORT[$t-ec]}/small" >/dev/null 2>&1 || true  # warm-up
done

# ---------------------------------------------------------------- 1+2. handshakes: parallel openssl s_time
# SPROCS s_time processes at once, each running connections one after the
# other (connect, handshake, GET /small, close) for STIME s.  -new: a new
# SSL object each time, so every handshake is full.  -reuse: the session of
# the first connection is offered again each time (resumed, TLS 1.3 PSK from
# the session ticket).  The GET (-www) matters for -reuse: a TLS 1.3 ticket
# arrives after the handshake and s_time only has it if it read something.
# s_time prints one character per connection, 'r' for a resumed session.
# Rate = all processes' connections / wall-clock time of the batch.
resumed_share() { # s_time outputs -> resumed connections / all
    cat "$@" | awk '/^[*rt123]+$/ { n += length($0); r += gsub(/r/, "") } END { printf "%.3f", n ? r / n : 0 }'
}
# pstime TARGET KEY MODE TAG -> P_RATE P_N P_TICKS P_SHARE
pstime() {
    local t=$1 k=$2 mode=$3 tag=$4 i a b t0 t1 pids=()
    # shellcheck disable=SC2086
    t0=$(proc_ticks ${PIDS[$t]})
    a=$(date +%s.%N)
    for i in $(seq "$SPROCS"); do
        timeout $((STIME + 30)) openssl s_time -connect "127.0.0.1:${PORT[$t-$k]}" "-$mode" -www /small \
            -time "$STIME" >"$T/stime-$tag-$t-$k-$i.txt" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    b=$(date +%s.%N)
    # shellcheck disable=SC2086
    t1=$(proc_ticks ${PIDS[$t]})
    P_N=$(cat "$T/stime-$tag-$t-$k-"*.txt | awk '/connections in [0-9.]+ real seconds/ { n += $1 } END { print n + 0 }')
    P_RATE=$(calc "$P_N / ($b - $a)")
    P_TICKS=$((t1 - t0))
    P_SHARE=$(resumed_share "$T/stime-$tag-$t-$k-"*.txt)
    [ "$P_N" -gt 0 ] || die "s_time -$mode via $t-$k made no connection: $(cat "$T/stime-$tag-$t-$k-1.txt")"
}
declare -A HS_RPS HS_N HS_TICKS HS_SHARE RE_RPS RE_N RE_TICKS RE_SHARE ERRS
for t in "${TARGETS[@]}"; do
    ERRS[$t]='' RE_RPS[$t]='' RE_N[$t]=0 RE_TICKS[$t]=0 RE_SHARE[$t]=''
    for k in ec rsa; do HS_RPS[$t-$k]='' HS_N[$t-$k]=0 HS_TICKS[$t-$k]=0 HS_SHARE[$t-$k]=''; done
done
for r in $(seq "$ROUNDS"); do
    for k in ec rsa; do
        for t in "${TARGETS[@]}"; do
            log "full handshakes round $r/$ROUNDS: $t $k ($SPROCS x s_time -new, ${STIME}s)"
            pstime "$t" "$k" new "new$r"
            HS_RPS[$t-$k]+="$P_RATE " HS_SHARE[$t-$k]+="$P_SHARE "
            HS_N[$t-$k]=$((HS_N[$t-$k] + P_N)) HS_TICKS[$t-$k]=$((HS_TICKS[$t-$k] + P_TICKS))
        done
    done
    for t in "${TARGETS[@]}"; do
        log "resumed handshakes round $r/$ROUNDS: $t ec ($SPROCS x s_time -reuse, ${STIME}s)"
        pstime "$t" ec reuse "reuse$r"
        RE_RPS[$t]+="$P_RATE " RE_SHARE[$t]+="$P_SHARE "
        RE_N[$t]=$((RE_N[$t] + P_N)) RE_TICKS[$t]=$((RE_TICKS[$t] + P_TICKS))
    done
done

# ---------------------------------------------------------------- 1b. wrk -H 'Connection: close' over https
# A new TCP+TLS connection per request, but NOT all full handshakes: wrk
# SSL_clear()s and reuses its SSL object, which keeps the session, so it
# offers the previous connection's session and about half resume (baton's
# access log shows resumed=1 on ~50%).  Reported as "new connections/s".
declare -A CL_RPS CL_REQ CL_TICKS CL_ALL CL_PAIRS
for t in "${TARGETS[@]}"; do
    for k in ec rsa; do CL_ALL[$t-$k]='' CL_REQ[$t-$k]=0 CL_TICKS[$t-$k]=0 CL_PAIRS[$k]=''; done
done
for r in $(seq "$CLOSE_ROUNDS"); do
    order=("${TARGETS[@]}")
    [ $((r % 2)) -eq 0 ] && order=(baton haproxy)
    for k in ec rsa; do
        declare -A round_rps=()
        for t in "${order[@]}"; do
            log "wrk Connection: close round $r/$CLOSE_ROUNDS: $t $k (${HS_DURATION}s)"
            run_wrk "$T/wrk-close$r-$t-$k.txt" "$t" "$k" "$HS_DURATION" -H 'Connection: close'
            CL_ALL[$t-$k]+="$W_RPS " round_rps[$t]=$W_RPS
            CL_REQ[$t-$k]=$((CL_REQ[$t-$k] + W_REQ)) CL_TICKS[$t-$k]=$((CL_TICKS[$t-$k] + W_TICKS))
            [ -n "$W_ERR" ] && ERRS[$t]+="[close $k r$r: $W_ERR] "
        done
        CL_PAIRS[$k]+="$(calc "${round_rps[baton]} / ${round_rps[haproxy]}") "
    done
done
for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    for k in ec rsa; do CL_RPS[$t-$k]=$(median ${CL_ALL[$t-$k]}); done
done

# ---------------------------------------------------------------- 3. keep-alive requests over TLS
declare -A KA_RPS KA_REQ KA_TICKS
for t in "${TARGETS[@]}"; do KA_RPS[$t]='' KA_REQ[$t]=0 KA_TICKS[$t]=0; done
for r in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        log "keep-alive round $r/$ROUNDS: $t (${KA_DURATION}s)"
        run_wrk "$T/wrk-ka$r-$t.txt" "$t" ec "$KA_DURATION"
        KA_RPS[$t]+="$W_RPS "
        KA_REQ[$t]=$((KA_REQ[$t] + W_REQ))
        KA_TICKS[$t]=$((KA_TICKS[$t] + W_TICKS))
        [ -n "$W_ERR" ] && ERRS[$t]+="[ka r$r: $W_ERR] "
    done
done

# ---------------------------------------------------------------- 4. bulk 64 MiB over TLS
declare -A BULK_MBS BULK_TICKS BULK_BYTES
for t in "${TARGETS[@]}"; do : >"$T/bulk-$t.txt"; BULK_TICKS[$t]=0; BULK_BYTES[$t]=0; done
log "bulk: $BULK_RUNS x 64 MiB per proxy over TLS (ECDSA listener)"
for _ in $(seq "$BULK_RUNS"); do
    for t in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        t0=$(proc_ticks ${PIDS[$t]})
        res=$(curl -ks -o /dev/null --max-time 60 -w '%{size_download} %{time_total}' \
            "https://127.0.0.1:${PORT[$t-ec]}/big") || die "bulk download via $t failed"
        # shellcheck disable=SC2086
        t1=$(proc_ticks ${PIDS[$t]})
        read -r size secs <<<"$res"
        [ "$size" = "$BIG_BYTES" ] || die "bulk via $t: got $size bytes, want $BIG_BYTES"
        calc "$size / $secs / 1e6" >>"$T/bulk-$t.txt"; echo >>"$T/bulk-$t.txt"
        BULK_TICKS[$t]=$((BULK_TICKS[$t] + t1 - t0))
        BULK_BYTES[$t]=$((BULK_BYTES[$t] + size))
    done
done
for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2046
    BULK_MBS[$t]=$(median $(cat "$T/bulk-$t.txt"))
done

# ---------------------------------------------------------------- report
declare -A KA_ALL HS_ALL RE_ALL
for t in "${TARGETS[@]}"; do
    KA_ALL[$t]=${KA_RPS[$t]} RE_ALL[$t]=${RE_RPS[$t]}
    # shellcheck disable=SC2086
    KA_RPS[$t]=$(median ${KA_RPS[$t]})
    # shellcheck disable=SC2086
    RE_RPS[$t]=$(median ${RE_RPS[$t]})
    for k in ec rsa; do
        HS_ALL[$t-$k]=${HS_RPS[$t-$k]}
        # shellcheck disable=SC2086
        HS_RPS[$t-$k]=$(median ${HS_RPS[$t-$k]})
    done
done
ratio_line() { # label value op target
    local ok
    ok=$(awk -v v="$2" -v o="$3" -v g="$4" 'BEGIN { print ((o == "<=" && v <= g) || (o == ">=" && v >= g)) ? "met" : "MISSED" }')
    printf '  %-46s %6.3f   (target %s %s: %s)\n' "$1" "$2" "$3" "$4" "$ok"
}
cmp_line() { printf '  %-46s %6.3f   (for comparison)\n' "$1" "$2"; }
pct() { fmt "$(calc "$(median "$@") * 100")" %.0f; }
report() {
    local t rev k
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$ROOT" diff --quiet HEAD -- proxy conf handoff 2>/dev/null || rev="$rev+dirty"
    echo "baton TLS benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
    echo "versions: baton $rev ($BATON), $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3), $(openssl version | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
    echo "settings: TLS 1.3 (X25519); handshakes: $SPROCS x openssl s_time ${STIME}s x $ROUNDS rounds; wrk -t1 -c$CONNS: close ${HS_DURATION}s x $CLOSE_ROUNDS, keep-alive ${KA_DURATION}s x $ROUNDS; bulk $BULK_RUNS x 64 MiB; idle ${IDLE_N[baton]} conns; load avg before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "handshakes (connections/s; CPU = proxy CPU per connection)"
    printf '| %-7s | %11s | %9s | %9s | %9s | %11s | %9s | %14s | %9s | %14s | %9s |\n' \
        proxy 'ECDSA full/s' 'CPU us' 'RSA full/s' 'CPU us' 'resumed/s' 'CPU us' 'wrk close ECDSA' 'CPU us' 'wrk close RSA' 'CPU us'
    echo '|:--------|------------:|----------:|----------:|----------:|------------:|----------:|---------------:|----------:|---------------:|----------:|'
    for t in "${TARGETS[@]}"; do
        printf '| %-7s | %11.0f | %9.0f | %10.0f | %9.0f | %11.0f | %9.0f | %15.0f | %9.0f | %14.0f | %9.0f |\n' "$t" \
            "${HS_RPS[$t-ec]}" "$(us_per "${HS_TICKS[$t-ec]}" "${HS_N[$t-ec]}")" \
            "${HS_RPS[$t-rsa]}" "$(us_per "${HS_TICKS[$t-rsa]}" "${HS_N[$t-rsa]}")" \
            "${RE_RPS[$t]}" "$(us_per "${RE_TICKS[$t]}" "${RE_N[$t]}")" \
            "${CL_RPS[$t-ec]}" "$(us_per "${CL_TICKS[$t-ec]}" "${CL_REQ[$t-ec]}")" \
            "${CL_RPS[$t-rsa]}" "$(us_per "${CL_TICKS[$t-rsa]}" "${CL_REQ[$t-rsa]}")"
    done
    echo
    echo "data (ECDSA listener) and idle memory"
    printf '| %-7s | %9s | %10s | %9s | %10s | %14s | %9s |\n' proxy 'ka req/s' 'CPU us/req' 'bulk MB/s' 'CPU ms/GiB' 'idle KB/conn' 'base RSS'
    echo '|:--------|----------:|-----------:|----------:|-----------:|---------------:|----------:|'
    for t in "${TARGETS[@]}"; do
        printf '| %-7s | %9.0f | %10.2f | %9.0f | %10.0f | %14.2f | %5.1f MiB |\n' "$t" \
            "${KA_RPS[$t]}" "$(us_per "${KA_TICKS[$t]}" "${KA_REQ[$t]}")" \
            "${BULK_MBS[$t]}" "$(calc "${BULK_TICKS[$t]} * 1000 / $HZ / (${BULK_BYTES[$t]} / 1073741824)")" \
            "${IDLE_KB[$t]}" "$(calc "${IDLE_BASE_KB[$t]} / 1024")"
    done
    echo
    for t in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        echo "  $t: resumed share: -new $(pct ${HS_SHARE[$t-ec]})%/$(pct ${HS_SHARE[$t-rsa]})% (ECDSA/RSA), -reuse $(pct ${RE_SHARE[$t]})%;" \
            "idle: ${IDLE_N[$t]} TLS connections, ${IDLE_UP[$t]} server connections; $(cat "$T/idle-$t.out")"
        [ -n "${ERRS[$t]}" ] && echo "  wrk errors $t: ${ERRS[$t]}"
    done
    echo "per round:"
    for t in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        printf '  %-7s  ECDSA full/s [%s]  RSA full/s [%s]  resumed/s [%s]  ka req/s [%s]  close ECDSA [%s]  close RSA [%s]\n' "$t" \
            "$(printf '%.0f ' ${HS_ALL[$t-ec]} | sed 's/ $//')" "$(printf '%.0f ' ${HS_ALL[$t-rsa]} | sed 's/ $//')" \
            "$(printf '%.0f ' ${RE_ALL[$t]} | sed 's/ $//')" "$(printf '%.0f ' ${KA_ALL[$t]} | sed 's/ $//')" \
            "$(printf '%.0f ' ${CL_ALL[$t-ec]} | sed 's/ $//')" "$(printf '%.0f ' ${CL_ALL[$t-rsa]} | sed 's/ $//')"
    done
    echo "full/s, resumed/s: $SPROCS parallel openssl s_time -new/-reuse -www /small, connections per wall-clock second, median of rounds;"
    echo "wrk close: wrk -H 'Connection: close' https (new TCP+TLS connection per request, ~half of them resumed by wrk), median of the rounds;"
    echo "CPU columns: utime+stime of the proxy's processes (baton: master+worker) / connections, requests or GiB."
    echo
    echo "ratios baton/HAProxy:"
    ratio_line "full handshakes/s ECDSA P-256" "$(calc "${HS_RPS[baton-ec]} / ${HS_RPS[haproxy-ec]}")" '>=' 1.0
    ratio_line "full handshakes/s RSA-2048" "$(calc "${HS_RPS[baton-rsa]} / ${HS_RPS[haproxy-rsa]}")" '>=' 1.0
    ratio_line "resumed handshakes/s" "$(calc "${RE_RPS[baton]} / ${RE_RPS[haproxy]}")" '>=' 1.0
    # shellcheck disable=SC2086
    ratio_line "new TLS conn/s (wrk close) ECDSA" "$(median ${CL_PAIRS[ec]})" '>=' 1.05
    # shellcheck disable=SC2086
    ratio_line "new TLS conn/s (wrk close) RSA" "$(median ${CL_PAIRS[rsa]})" '>=' 1.05
    # shellcheck disable=SC2086
    printf '    (medians of the rounds'"'"' ratios; each round: ECDSA %s, RSA %s)\n' \
        "$(printf '%.3f ' ${CL_PAIRS[ec]} | sed 's/ $//')" "$(printf '%.3f ' ${CL_PAIRS[rsa]} | sed 's/ $//')"
    ratio_line "keep-alive req/s over TLS" "$(calc "${KA_RPS[baton]} / ${KA_RPS[haproxy]}")" '>=' 1.0
    ratio_line "bulk MB/s over TLS" "$(calc "${BULK_MBS[baton]} / ${BULK_MBS[haproxy]}")" '>=' 1.0
    ratio_line "KB per idle TLS connection" "$(calc "${IDLE_KB[baton]} / (${IDLE_KB[haproxy]} > 0 ? ${IDLE_KB[haproxy]} : 1e-9)")" '<=' 0.5
    ratio_line "base RSS" "$(calc "${IDLE_BASE_KB[baton]} / ${IDLE_BASE_KB[haproxy]}")" '<=' 1.0
    cmp_line "CPU per full ECDSA handshake" "$(calc "$(us_per "${HS_TICKS[baton-ec]}" "${HS_N[baton-ec]}") / $(us_per "${HS_TICKS[haproxy-ec]}" "${HS_N[haproxy-ec]}")")"
    cmp_line "CPU per full RSA handshake" "$(calc "$(us_per "${HS_TICKS[baton-rsa]}" "${HS_N[baton-rsa]}") / $(us_per "${HS_TICKS[haproxy-rsa]}" "${HS_N[haproxy-rsa]}")")"
    cmp_line "CPU per resumed handshake" "$(calc "$(us_per "${RE_TICKS[baton]}" "${RE_N[baton]}") / $(us_per "${RE_TICKS[haproxy]}" "${RE_N[haproxy]}")")"
    cmp_line "CPU per keep-alive request" "$(calc "$(us_per "${KA_TICKS[baton]}" "${KA_REQ[baton]}") / $(us_per "${KA_TICKS[haproxy]}" "${KA_REQ[haproxy]}")")"
    cmp_line "CPU per GiB" "$(calc "${BULK_TICKS[baton]} / ${BULK_BYTES[baton]} / (${BULK_TICKS[haproxy]} / ${BULK_BYTES[haproxy]})")"
}
report | tee "$T/report.txt"
log "done"
if [ "$STRICT" = 1 ] && grep -q MISSED "$T/report.txt"; then exit 1; fi
exit 0
