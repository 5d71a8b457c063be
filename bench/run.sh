#!/usr/bin/env bash
# bench/run.sh - baton vs HAProxy vs direct-to-backend, in one run on one machine.
#
# Everything listens on 127.0.0.1 on ports picked free at run time; every
# load is bounded in time; every process started here is stopped on exit.
# See bench/README.md for what each figure means.  Tunables (environment):
#   BATON=path        baton binary (default: build $ROOT/build-bench/baton)
#   SKIP_BUILD=1      do not (re)build baton
#   DURATION=10       seconds per keep-alive wrk run
#   CLOSE_DURATION=5  seconds per Connection: close wrk run
#   ROUNDS=3          keep-alive runs per target (interleaved, HAProxy and baton swapping
#                     places every round; the ratio is the median of the rounds' ratios)
#   CLOSE_ROUNDS=6    Connection: close runs per target, interleaved with HAProxy's and
#                     baton's order swapped every round; the new-connection ratio is the
#                     median of the per-round ratios (the host's speed drifts between rounds)
#   CONNS=64          wrk connections
#   BULK_RUNS=12      64 MiB downloads per target (interleaved)
#   IDLE_CONNS=10000  idle connections held open for the RSS figure
#   BUFFER_SIZE=16k   baton's [global] buffer_size
#   SPLICE=on|off     baton's [global] splice (default: not written, baton's default)
#   BUSY_POLL=50us    baton's [global] busy_poll (default: not written, off)
#   HAPROXY_SPLICE=1  add "option splice-auto" to HAProxy (default: HAProxy's default, no splice)
#   DEFER_ACCEPT=1s   baton's [listener] defer_accept (default: not written, off)
#   KEEP=1            keep the temp dir (configs, raw wrk output, logs)
#   STRICT=1          exit 1 when a ratio misses its target
#   WORK_DURATION=5   seconds of each Connection: close run of the work-per-connection step
#   WORK_ONLY=1       only the work-per-connection step (system calls, sleeps, CPU per
#                     new connection of each proxy's worker); a quick check of a change
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

DURATION=${DURATION:-10}
CLOSE_DURATION=${CLOSE_DURATION:-5}
ROUNDS=${ROUNDS:-3}
CLOSE_ROUNDS=${CLOSE_ROUNDS:-6}
CONNS=${CONNS:-64}
BULK_RUNS=${BULK_RUNS:-12}
IDLE_CONNS=${IDLE_CONNS:-10000}
BUFFER_SIZE=${BUFFER_SIZE:-16k}
SPLICE=${SPLICE:-}
BUSY_POLL=${BUSY_POLL:-}
HAPROXY_SPLICE=${HAPROXY_SPLICE:-0}
DEFER_ACCEPT=${DEFER_ACCEPT:-}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
WORK_DURATION=${WORK_DURATION:-5}
WORK_ONLY=${WORK_ONLY:-0}
BIG_BYTES=$((64 * 1024 * 1024))

BENCH_TAG=bench
. "$HERE/lib.sh"
bench_need_common
bench_install
bench_build_baton
bench_raise_fds
bench_tmpdir baton-bench

# ---------------------------------------------------------------- backend: nginx
NGX_PORT=$(free_port)
NGX_NOFILE=$((IDLE_CONNS + 1000))
[ "$nofile" != unlimited ] && [ "$nofile" -lt "$NGX_NOFILE" ] && NGX_NOFILE=$nofile
mkdir -p "$T/nginx/www" "$T/nginx/logs"
dd if=/dev/zero of="$T/nginx/www/big" bs=1M count=64 status=none
printf 'ok\n' >"$T/nginx/www/small.txt"
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
HAP_PORT=$(free_port)
# HAProxy refuses to start when 2 * maxconn + its reserve exceeds ulimit -n.
HAP_MAXCONN=$((IDLE_CONNS + 50))
cat >"$T/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $HAP_MAXCONN
defaults
    mode tcp
    maxconn $HAP_MAXCONN
    timeout connect 5s
    timeout client 5m
    timeout server 5m
$([ "$HAPROXY_SPLICE" = 1 ] && echo '    option splice-auto')
frontend fe
    bind 127.0.0.1:$HAP_PORT
    default_backend be
backend be
    server s1 127.0.0.1:$NGX_PORT
EOF
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
HAP_PID=$!
STARTED=("$HAP_PID" "${STARTED[@]}")
wait_url "http://127.0.0.1:$HAP_PORT/small" || die "haproxy did not come up: $(cat "$T/haproxy.log")"

# ---------------------------------------------------------------- baton
cat >"$T/baton.ini" <<EOF
[global]
threads = 1
control = $T/baton.sock
log_level = warn
access_log = off
max_connections = 100000
buffer_size = $BUFFER_SIZE
$([ -n "$SPLICE" ] && echo "splice = $SPLICE")
$([ -n "$BUSY_POLL" ] && echo "busy_poll = $BUSY_POLL")
[listener web]
bind = 127.0.0.1:0
backend = app
idle_timeout = 5m
$([ -n "$DEFER_ACCEPT" ] && echo "defer_accept = $DEFER_ACCEPT")
[backend app]
server = a 127.0.0.1:$NGX_PORT
EOF
bench_start_baton
# (the master binds before it starts the worker, so the listener is in the status)
BATON_PORT=$(sed -n 's/^listener name=web address=127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$BATON_STATUS" | head -1)
[ -n "$BATON_PORT" ] || die "baton status gave no port: $BATON_STATUS"
wait_url "http://127.0.0.1:$BATON_PORT/small" || die "baton does not relay: $(cat "$T/baton.log")"

TARGETS=(direct haproxy baton)
declare -A PORT=([direct]=$NGX_PORT [haproxy]=$HAP_PORT [baton]=$BATON_PORT)
declare -A PIDS=([direct]='' [haproxy]="$HAP_PID" [baton]="$BATON_MASTER $BATON_WORKER")

log "nginx :$NGX_PORT  haproxy :$HAP_PORT (pid $HAP_PID)  baton :$BATON_PORT (master $BATON_MASTER, worker $BATON_WORKER)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- work per new connection
# Counts that do not depend on a quiet machine: system calls by name,
# voluntary context switches (sleeps, nearly all in epoll_wait) and CPU of
# the process that proxies (HAProxy's, baton's worker), per connection of a
# Connection: close load.  CPU and sleeps come from a run without tracing,
# the system calls from a second run under perf.
declare -A WK_REQ WK_TICKS WK_UTICKS WK_VCSW WK_SREQ
WORK_TARGETS=(haproxy baton)
declare -A WORK_PIDS=([haproxy]="$HAP_PID" [baton]="$BATON_WORKER")
work_step() {
    local t u0 s0 u1 s1 v0 v1
    for t in "${WORK_TARGETS[@]}"; do
        log "work per connection: $t (${WORK_DURATION}s, then ${WORK_DURATION}s under perf)"
        read -r u0 s0 < <(proc_ticks_split "${WORK_PIDS[$t]}")
        v0=$(proc_vcsw "${WORK_PIDS[$t]}")
        timeout $((WORK_DURATION + 30)) wrk -t1 -c"$CONNS" -d"${WORK_DURATION}s" -H 'Connection: close' \
            "http://127.0.0.1:${PORT[$t]}/small" >"$T/work-$t.txt" 2>&1 || true
        read -r u1 s1 < <(proc_ticks_split "${WORK_PIDS[$t]}")
        v1=$(proc_vcsw "${WORK_PIDS[$t]}")
        WK_REQ[$t]=$(awk '/requests in/ { print $1 }' "$T/work-$t.txt")
        [ -n "${WK_REQ[$t]}" ] || die "wrk failed for $t: $(cat "$T/work-$t.txt")"
        WK_TICKS[$t]=$((u1 + s1 - u0 - s0)) WK_UTICKS[$t]=$((u1 - u0)) WK_VCSW[$t]=$((v1 - v0))
        bench_count_syscalls "${WORK_PIDS[$t]}" "$T/syscalls-$t.txt" \
            timeout $((WORK_DURATION + 30)) wrk -t1 -c"$CONNS" -d"${WORK_DURATION}s" -H 'Connection: close' \
            "http://127.0.0.1:${PORT[$t]}/small" >"$T/work-perf-$t.txt" 2>&1
        WK_SREQ[$t]=$(awk '/requests in/ { print $1 }' "$T/work-perf-$t.txt")
        [ -n "${WK_SREQ[$t]}" ] || die "wrk failed for $t: $(cat "$T/work-perf-$t.txt")"
    done
}
work_report() {
    local t name
    echo "work per new connection (wrk -c$CONNS Connection: close, ${WORK_DURATION}s per figure; HAProxy's process, baton's worker):"
    printf '  %-26s %10s %10s %8s\n' '' haproxy baton ratio
    printf '  %-26s %10s %10s\n' connections "${WK_REQ[haproxy]}" "${WK_REQ[baton]}"
    for name in 'CPU us (user+sys)' 'CPU us user' 'sleeps (voluntary cs)'; do
        declare -A v=()
        for t in "${WORK_TARGETS[@]}"; do
            case $name in
                'CPU us (user+sys)') v[$t]=$(calc "${WK_TICKS[$t]} * 1e6 / $HZ / ${WK_REQ[$t]}") ;;
                'CPU us user') v[$t]=$(calc "${WK_UTICKS[$t]} * 1e6 / $HZ / ${WK_REQ[$t]}") ;;
                *) v[$t]=$(calc "${WK_VCSW[$t]} / ${WK_REQ[$t]}") ;;
            esac
        done
        printf '  %-26s %10.3f %10.3f %8s\n' "$name" "${v[haproxy]}" "${v[baton]}" \
            "$(awk -v a="${v[baton]}" -v b="${v[haproxy]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
    done
    echo "  system calls per connection (perf stat, syscalls:sys_enter_*; ${WK_SREQ[haproxy]} and ${WK_SREQ[baton]} connections):"
    for name in $(cat "$T/syscalls-haproxy.txt" "$T/syscalls-baton.txt" | awk '{ print $1 }' | sort -u); do
        printf '  %-26s %10.3f %10.3f\n' "$name" \
            "$(awk -v n="$name" -v r="${WK_SREQ[haproxy]}" '$1 == n { c = $2 } END { print c / r }' "$T/syscalls-haproxy.txt")" \
            "$(awk -v n="$name" -v r="${WK_SREQ[baton]}" '$1 == n { c = $2 } END { print c / r }' "$T/syscalls-baton.txt")"
    done | awk '$2 >= 0.005 || $3 >= 0.005'
    printf '  %-26s %10.3f %10.3f\n' total \
        "$(awk -v r="${WK_SREQ[haproxy]}" '{ c += $2 } END { print c / r }' "$T/syscalls-haproxy.txt")" \
        "$(awk -v r="${WK_SREQ[baton]}" '{ c += $2 } END { print c / r }' "$T/syscalls-baton.txt")"
}
if [ "$WORK_ONLY" = 1 ]; then
    for t in "${WORK_TARGETS[@]}"; do
        timeout 10 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$t]}/small" >/dev/null 2>&1 || true  # warm-up
    done
    work_step
    work_report | tee "$T/report.txt"
    exit 0
fi

# ---------------------------------------------------------------- 4. idle connections
# Run first, on freshly started proxies.
declare -A IDLE_KB IDLE_BASE_KB
for t in haproxy baton; do
    # shellcheck disable=SC2086
    set -- ${PIDS[$t]}
    base=$(proc_rss_kb "$@")
    log "$t: opening $IDLE_CONNS idle connections"
    python3 "$HERE/idle_conns.py" 127.0.0.1 "${PORT[$t]}" "$IDLE_CONNS" 90 >"$T/idle-$t.out" &
    cpid=$!
    STARTED=("$cpid" "${STARTED[@]}")
    for _ in $(seq 600); do grep -q connected "$T/idle-$t.out" && break; sleep 0.1; done
    n=$(awk '/connected/ { print $2 }' "$T/idle-$t.out")
    [ -n "$n" ] && [ "$n" -gt 0 ] || die "$t: idle client did not connect"
    # wait until the proxy has a server connection for each of them
    for _ in $(seq 300); do [ "$(established_to "$NGX_PORT")" -ge "$n" ] && break; sleep 0.1; done
    up=$(established_to "$NGX_PORT")
    sleep 1
    after=$(proc_rss_kb "$@")
    stop_pid "$cpid"
    wait "$cpid" 2>/dev/null || true
    for _ in $(seq 300); do [ "$(established_to "$NGX_PORT")" -lt 10 ] && break; sleep 0.1; done
    IDLE_BASE_KB[$t]=$base
    IDLE_KB[$t]=$(calc "($after - $base) / $n")
    log "$t: $(cat "$T/idle-$t.out"), $up to backend; RSS ${base} -> ${after} kB = ${IDLE_KB[$t]} kB/conn"
done

# ---------------------------------------------------------------- wrk helpers
to_ms() {                             # wrk latency "1.23ms" / "456.00us" / "1.02s" / "2.00m"
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
        else if (v ~ /m$/) { sub(/m$/, "", v); print v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
        else print v }'
}
# run_wrk TAG TARGET SECONDS [wrk args...] -> sets W_REQ W_RPS W_P99 W_TICKS W_UTICKS W_ERR
run_wrk() {
    local tag=$1 t=$2 d=$3 out u0=0 s0=0 u1=0 s1=0
    shift 3
    out="$T/wrk-$tag-$t.txt"
    # shellcheck disable=SC2086
    [ -n "${PIDS[$t]}" ] && read -r u0 s0 < <(proc_ticks_split ${PIDS[$t]})
    timeout $((d + 30)) wrk -t1 -c"$CONNS" -d"${d}s" --latency "$@" \
        "http://127.0.0.1:${PORT[$t]}/small" >"$out" 2>&1 || true
    # shellcheck disable=SC2086
    [ -n "${PIDS[$t]}" ] && read -r u1 s1 < <(proc_ticks_split ${PIDS[$t]})
    W_REQ=$(awk '/requests in/ { print $1 }' "$out")
    W_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    W_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    W_ERR=$(awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print } /Non-2xx/ { print "non-2xx " $NF }' "$out" | paste -sd' ')
    W_TICKS=$((u1 + s1 - u0 - s0)) W_UTICKS=$((u1 - u0))
    [ -n "$W_REQ" ] && [ -n "$W_RPS" ] || die "wrk failed for $t: $(cat "$out")"
}

# ---------------------------------------------------------------- 1+5. keep-alive
declare -A KA_REQ KA_RPS KA_P99 KA_TICKS KA_UTICKS KA_ERR CL_REQ CL_RPS CL_TICKS CL_ERR
for t in "${TARGETS[@]}"; do
    KA_REQ[$t]=0 KA_RPS[$t]='' KA_P99[$t]='' KA_TICKS[$t]=0 KA_UTICKS[$t]=0 KA_ERR[$t]=''
    CL_REQ[$t]=0 CL_RPS[$t]='' CL_TICKS[$t]=0 CL_ERR[$t]=''
    timeout 10 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$t]}/small" >/dev/null 2>&1 || true  # warm-up
done
# A round's order: HAProxy and baton swap places every round, so that the
# host's drift within a round favours neither; each round gives a ratio.
round_order() { if [ $(($1 % 2)) -eq 0 ]; then echo direct baton haproxy; else echo direct haproxy baton; fi; }
KA_PAIRS=''
for r in $(seq "$ROUNDS"); do
    declare -A round_rps=()
    for t in $(round_order "$r"); do
        log "keep-alive round $r/$ROUNDS: $t (${DURATION}s)"
        run_wrk "ka$r" "$t" "$DURATION"
        KA_REQ[$t]=$((KA_REQ[$t] + W_REQ))
        KA_TICKS[$t]=$((KA_TICKS[$t] + W_TICKS))
        KA_UTICKS[$t]=$((KA_UTICKS[$t] + W_UTICKS))
        KA_RPS[$t]+="$W_RPS "
        KA_P99[$t]+="$W_P99 "
        round_rps[$t]=$W_RPS
        [ -n "$W_ERR" ] && KA_ERR[$t]+="[r$r: $W_ERR] "
    done
    KA_PAIRS+="$(calc "${round_rps[baton]} / ${round_rps[haproxy]}") "
done

# ---------------------------------------------------------------- 3. new connections
CL_PAIRS=''
for r in $(seq "$CLOSE_ROUNDS"); do
    declare -A round_rps=()
    for t in $(round_order "$r"); do
        log "connection-close round $r/$CLOSE_ROUNDS: $t (${CLOSE_DURATION}s)"
        run_wrk "close$r" "$t" "$CLOSE_DURATION" -H 'Connection: close'
        CL_REQ[$t]=$((CL_REQ[$t] + W_REQ))
        CL_TICKS[$t]=$((CL_TICKS[$t] + W_TICKS))
        CL_RPS[$t]+="$W_RPS "
        round_rps[$t]=$W_RPS
        [ -n "$W_ERR" ] && CL_ERR[$t]+="[r$r: $W_ERR] "
    done
    CL_PAIRS+="$(calc "${round_rps[baton]} / ${round_rps[haproxy]}") "
done

work_step

# ---------------------------------------------------------------- 2. bulk 64 MiB
declare -A BULK_MBS BULK_TICKS BULK_BYTES BULK_MTICKS BULK_SECS
for t in "${TARGETS[@]}"; do
    : >"$T/bulk-$t.txt"; BULK_TICKS[$t]=0; BULK_BYTES[$t]=0; BULK_MTICKS[$t]=0; BULK_SECS[$t]=0
done
log "bulk: $BULK_RUNS x 64 MiB per target"
for _ in $(seq "$BULK_RUNS"); do
    for t in "${TARGETS[@]}"; do
        t0=0 t1=0
        # shellcheck disable=SC2086
        [ -n "${PIDS[$t]}" ] && t0=$(proc_ticks ${PIDS[$t]})
        m0=$(machine_ticks) w0=$(date +%s.%N)
        res=$(curl -s -o /dev/null --max-time 60 -w '%{size_download} %{time_total}' \
            "http://127.0.0.1:${PORT[$t]}/big") || die "bulk download via $t failed"
        m1=$(machine_ticks) w1=$(date +%s.%N)
        # shellcheck disable=SC2086
        [ -n "${PIDS[$t]}" ] && t1=$(proc_ticks ${PIDS[$t]})
        BULK_MTICKS[$t]=$((BULK_MTICKS[$t] + m1 - m0))
        BULK_SECS[$t]=$(calc "${BULK_SECS[$t]} + $w1 - $w0")
        read -r size secs <<<"$res"
        [ "$size" = "$BIG_BYTES" ] || die "bulk via $t: got $size bytes, want $BIG_BYTES"
        calc "$size / $secs / 1e6" >>"$T/bulk-$t.txt"; echo >>"$T/bulk-$t.txt"
        BULK_TICKS[$t]=$((BULK_TICKS[$t] + t1 - t0))
        BULK_BYTES[$t]=$((BULK_BYTES[$t] + size))
    done
done
for t in "${TARGETS[@]}"; do
    # median of the per-download rates
    # shellcheck disable=SC2046
    BULK_MBS[$t]=$(median $(cat "$T/bulk-$t.txt"))
done

# ---------------------------------------------------------------- report
# Rates and p99: median over the rounds (per-round values kept for the report).
declare -A KA_RPS_ALL KA_P99_ALL CL_RPS_ALL
for t in "${TARGETS[@]}"; do
    KA_RPS_ALL[$t]=${KA_RPS[$t]} KA_P99_ALL[$t]=${KA_P99[$t]} CL_RPS_ALL[$t]=${CL_RPS[$t]}
    # shellcheck disable=SC2086
    KA_RPS[$t]=$(median ${KA_RPS[$t]})
    # shellcheck disable=SC2086
    KA_P99[$t]=$(median ${KA_P99[$t]})
    # shellcheck disable=SC2086
    CL_RPS[$t]=$(median ${CL_RPS[$t]})
done
us_per() { # ticks count -> microseconds of CPU per unit
    if [ "$2" -gt 0 ]; then calc "$1 * 1e6 / $HZ / $2"; else echo 0; fi
}
dash_or() { [ "$1" = direct ] && echo '-' || fmt "$2" "$3"; }

report() {
    local t rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$ROOT" diff --quiet HEAD -- proxy conf handoff 2>/dev/null || rev="$rev+dirty"
    echo "baton benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
    echo "versions: baton $rev ($BATON), $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
    echo "settings: wrk -t1 -c$CONNS, keep-alive ${DURATION}s x $ROUNDS, close ${CLOSE_DURATION}s x $CLOSE_ROUNDS, bulk $BULK_RUNS x 64 MiB, idle $IDLE_CONNS conns, baton buffer_size=$BUFFER_SIZE splice=${SPLICE:-default} busy_poll=${BUSY_POLL:-off} defer_accept=${DEFER_ACCEPT:-off}, haproxy splice-auto=$HAPROXY_SPLICE; load avg before: $LOAD_BEFORE"
    echo
    printf '| %-7s | %12s | %8s | %10s | %9s | %10s | %11s | %10s | %9s | %9s |\n' \
        target 'ka req/s' 'p99 ms' 'new conn/s' 'bulk MB/s' 'CPU us/req' 'CPU us/conn' 'CPU ms/GiB' 'idle KB/c' 'base RSS'
    echo '|:--------|-------------:|---------:|-----------:|----------:|-----------:|------------:|-----------:|----------:|----------:|'
    for t in "${TARGETS[@]}"; do
        printf '| %-7s | %12s | %8s | %10s | %9s | %10s | %11s | %10s | %9s | %9s |\n' "$t" \
            "$(fmt "${KA_RPS[$t]}" %.0f)" "$(fmt "${KA_P99[$t]}" %.2f)" "$(fmt "${CL_RPS[$t]}" %.0f)" \
            "$(fmt "${BULK_MBS[$t]}" %.0f)" \
            "$(dash_or "$t" "$(us_per "${KA_TICKS[$t]}" "${KA_REQ[$t]}")" %.2f)" \
            "$(dash_or "$t" "$(us_per "${CL_TICKS[$t]}" "${CL_REQ[$t]}")" %.2f)" \
            "$(dash_or "$t" "$(calc "${BULK_TICKS[$t]} * 1000 / $HZ / (${BULK_BYTES[$t]} / 1073741824)")" %.0f)" \
            "$([ "$t" = direct ] && echo - || fmt "${IDLE_KB[$t]}" %.2f)" \
            "$([ "$t" = direct ] && echo - || echo "$(fmt "$(calc "${IDLE_BASE_KB[$t]} / 1024")" %.1f) MiB")"
    done
    echo
    for t in "${TARGETS[@]}"; do
        [ -n "${KA_ERR[$t]}${CL_ERR[$t]}" ] && echo "wrk errors $t: keep-alive ${KA_ERR[$t]:-none}; close ${CL_ERR[$t]:-none}"
    done
    echo "per round:"
    for t in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        printf '  %-7s  ka req/s [%s]  p99 ms [%s]  new conn/s [%s]\n' "$t" \
            "$(printf '%.0f ' ${KA_RPS_ALL[$t]} | sed 's/ $//')" "$(printf '%.2f ' ${KA_P99_ALL[$t]} | sed 's/ $//')" \
            "$(printf '%.0f ' ${CL_RPS_ALL[$t]} | sed 's/ $//')"
    done
    echo "req/s, p99, conn/s: median of the rounds; bulk MB/s (10^6 B/s): median of the downloads."
    echo "CPU columns: utime+stime of the proxy's processes (baton: master+worker) over the run, / requests, connections or GiB moved."
    echo
    local cpu_b cpu_h
    cpu_b=$(us_per "${KA_TICKS[baton]}" "${KA_REQ[baton]}")
    cpu_h=$(us_per "${KA_TICKS[haproxy]}" "${KA_REQ[haproxy]}")
    ratio() { # label value op target
        local ok
        ok=$(awk -v v="$2" -v o="$3" -v g="$4" 'BEGIN { print ((o == "<=" && v <= g) || (o == ">=" && v >= g)) ? "PASS" : "MISS" }')
        printf '  %-44s %6.3f   (target %s %s: %s)\n' "$1" "$2" "$3" "$4" "$ok"
    }
    local ucpu_b ucpu_h gib_b gib_h
    ucpu_b=$(us_per "${KA_UTICKS[baton]}" "${KA_REQ[baton]}")
    ucpu_h=$(us_per "${KA_UTICKS[haproxy]}" "${KA_REQ[haproxy]}")
    gib_b=$(calc "${BULK_MTICKS[baton]} / (${BULK_BYTES[baton]} / 1073741824)")
    gib_h=$(calc "${BULK_MTICKS[haproxy]} / (${BULK_BYTES[haproxy]} / 1073741824)")
    echo "ratios and targets (issue 12; baton / HAProxy nbthread 1, this run):"
    # shellcheck disable=SC2086
    ratio "new conn/s            baton/HAProxy" "$(median $CL_PAIRS)" '>=' 1.05
    printf '  %-44s %s\n' "  (median of the rounds' ratios; each round:" "$(printf '%.3f ' $CL_PAIRS | sed 's/ $//'))"
    # shellcheck disable=SC2086
    ratio "keep-alive req/s      baton/HAProxy" "$(median $KA_PAIRS)" '>=' 1.0
    printf '  %-44s %s\n' "  (median of the rounds' ratios; each round:" "$(printf '%.3f ' $KA_PAIRS | sed 's/ $//'))"
    ratio "CPU per request       baton/HAProxy" "$(calc "$cpu_b / $cpu_h")" '<=' 0.93
    ratio "user CPU per request  baton/HAProxy" "$(calc "$ucpu_b / $ucpu_h")" '<=' 0.6
    printf '  %-44s user %.2f + kernel %.2f us (baton), user %.2f + kernel %.2f us (HAProxy)\n' \
        "  CPU per request split" \
        "$ucpu_b" "$(us_per "$((KA_TICKS[baton] - KA_UTICKS[baton]))" "${KA_REQ[baton]}")" \
        "$ucpu_h" "$(us_per "$((KA_TICKS[haproxy] - KA_UTICKS[haproxy]))" "${KA_REQ[haproxy]}")"
    printf '  %-44s %6.3f   (baton kernel time alone / HAProxy total: the ratio if baton'"'"'s own code cost nothing)\n' \
        "  floor" "$(calc "($(us_per "$((KA_TICKS[baton] - KA_UTICKS[baton]))" "${KA_REQ[baton]}")) / $cpu_h")"
    ratio "bulk MB/s             baton/HAProxy" "$(calc "${BULK_MBS[baton]} / ${BULK_MBS[haproxy]}")" '>=' 1.3
    ratio "machine CPU per GiB   baton/HAProxy" "$(calc "$gib_b / $gib_h")" '<=' 0.85
    ratio "KB per idle conn      baton/HAProxy" "$(calc "${IDLE_KB[baton]} / (${IDLE_KB[haproxy]} > 0 ? ${IDLE_KB[haproxy]} : 1e-9)")" '<=' 1.0
    echo "  (new TLS connections/s, >= 1.05x HAProxy: bench/tls.sh)"
    echo "for comparison:"
    printf '  %-44s %6.3f\n' "bulk MB/s             baton/direct" "$(calc "${BULK_MBS[baton]} / ${BULK_MBS[direct]}")"
    printf '  %-44s %6.3f\n' "bulk MB/s             HAProxy/direct" "$(calc "${BULK_MBS[haproxy]} / ${BULK_MBS[direct]}")"
    echo "  bulk, whole machine (all processes, /proc/stat) per target: CPU ms per GiB, and CPUs busy while downloading:"
    for t in "${TARGETS[@]}"; do
        printf '    %-8s %6.0f ms/GiB   %4.2f of %d CPUs busy\n' "$t" \
            "$(calc "${BULK_MTICKS[$t]} * 1000 / $HZ / (${BULK_BYTES[$t]} / 1073741824)")" \
            "$(calc "${BULK_MTICKS[$t]} / $HZ / ${BULK_SECS[$t]}")" "$(nproc)"
    done
    printf '  %-44s %6.3f\n' "p99 latency           baton/HAProxy" "$(calc "${KA_P99[baton]} / ${KA_P99[haproxy]}")"
    echo
    work_report
}
report | tee "$T/report.txt"
log "done"
if [ "$STRICT" = 1 ] && grep -q "MISS)" "$T/report.txt"; then exit 1; fi
exit 0
