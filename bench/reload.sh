#!/usr/bin/env bash
# bench/reload.sh - hot restart under load: baton vs HAProxy (master-worker
# seamless reload) vs nginx (stream proxy, nginx -s reload), in one run.
#
# Same approach as bench/run.sh: 127.0.0.1 only, ports picked free at run
# time, every load bounded in time, every process started here stopped on
# exit.  See bench/README.md ("bench/reload.sh") for what each figure means.
# Tunables (environment):
#   BATON=path          baton binary (default: build $BUILD_DIR/baton)
#   BUILD_DIR=dir       build directory (default: $ROOT/build-bench)
#   SKIP_BUILD=1        do not (re)build baton
#   RELOADS=20          reloads for the upgrade-latency figure (per proxy)
#   DURATION=10         seconds per wrk run (steady, and with reloads)
#   WRK_ROUNDS=3        steady/reloading wrk pairs per proxy (alternating; median ratio)
#   RELOAD_EVERY=1      seconds between reloads during the loaded runs
#   CONNS=64            keep-alive wrk connections
#   CLOSE_CONNS=16      connections of the second wrk (Connection: close); 0 = none
#   SERIES_DURATION=25  seconds of the time-series run (reloads from t=SERIES_STEADY)
#   SERIES_STEADY=5     seconds of steady load before the first reload in that run
#   BUCKET=0.5          time-series bucket, seconds
#   PLOT=file.png       where the PNG goes (default: $ROOT/docs/reload-throughput.png; PLOT= for none)
#   PIN=1               pin each proxy (master and workers) to CPU PROXY_CPU (0) and
#                       nginx, wrk and the Python clients to CLIENT_CPU (1), so that
#                       old and new workers cannot use more CPU than one worker
#   BATON_NEXT=path     a second baton binary for the binary-upgrade runs (default:
#                       baton-next of the build directory, built unless SKIP_BUILD=1;
#                       no such runs if there is none)
#   KEEP=1              keep the temp dir (configs, raw outputs, logs)
#   STRICT=1            exit 1 when a target is missed
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

RELOADS=${RELOADS:-20}
DURATION=${DURATION:-10}
WRK_ROUNDS=${WRK_ROUNDS:-3}
RELOAD_EVERY=${RELOAD_EVERY:-1}
CONNS=${CONNS:-64}
CLOSE_CONNS=${CLOSE_CONNS:-16}
SERIES_DURATION=${SERIES_DURATION:-25}
SERIES_STEADY=${SERIES_STEADY:-5}
BUCKET=${BUCKET:-0.5}
PLOT=${PLOT-$ROOT/docs/reload-throughput.png}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
PIN=${PIN:-0}
PROXY_CPU=${PROXY_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}

BENCH_TAG=reload
. "$HERE/lib.sh"
stream_module() {
    local f
    for f in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}
bench_need_common
stream_module >/dev/null || NEED+=(libnginx-mod-stream)
if [ -n "$PLOT" ]; then bench_need gnuplot gnuplot-nox; fi
bench_install
NGX_STREAM_SO=$(stream_module) || die "no ngx_stream_module.so (package libnginx-mod-stream)"
bench_build_baton
if [ -z "${BATON_NEXT:-}" ]; then
    BATON_NEXT="$(dirname "$BATON")/tests/baton-next"
    if [ "${SKIP_BUILD:-0}" != 1 ] && [ -f "$(dirname "$BATON")/CMakeCache.txt" ]; then
        cmake --build "$(dirname "$BATON")" --target baton-next -j2 >&2 || true
    fi
fi
[ -x "$BATON_NEXT" ] || { log "no $BATON_NEXT: no binary-upgrade runs"; BATON_NEXT=''; }

PX=() CL=()
if [ "$PIN" = 1 ]; then
    PX=(taskset -c "$PROXY_CPU") CL=(taskset -c "$CLIENT_CPU")
fi

bench_tmpdir baton-reload
fcalc() { awk "BEGIN { printf \"%.6f\", $* }"; }     # for epoch seconds
nchildren() { children_of "$1" | wc -l; }
wait_one_worker() {                  # master: until old generations have gone (10 s max)
    local _
    for _ in $(seq 100); do [ "$(nchildren "$1")" -le 1 ] && return 0; sleep 0.1; done
    log "note: master $1 still has $(nchildren "$1") children"
}

# ---------------------------------------------------------------- backend: nginx
NGX_PORT=$(free_port)
mkdir -p "$T/nginx/www" "$T/nginx/logs"
printf 'ok\n' >"$T/nginx/www/small.txt"
chmod -R a+rX "$T/nginx"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 16000; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$NGX_PORT backlog=4096;
        root $T/nginx/www;
        location = /small { return 200 "ok\n"; }
    }
}
EOF
"${CL[@]}" nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/logs/error.log" \
    >"$T/nginx/stdout.log" 2>&1 &
STARTED=("$!" "${STARTED[@]}")
MASTERS+=("$!")
wait_url "http://127.0.0.1:$NGX_PORT/small" || die "nginx did not come up: $(cat "$T/nginx/logs/error.log")"

# ---------------------------------------------------------------- HAProxy, master-worker
HAP_PORT=$(free_port)
cat >"$T/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
    pidfile $T/haproxy.pid
    stats socket $T/haproxy.sock mode 600 level admin expose-fd listeners
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend fe
    bind 127.0.0.1:$HAP_PORT
    default_backend be
backend be
    server s1 127.0.0.1:$NGX_PORT
EOF
# -W: master-worker; -db: stay in the foreground.  SIGUSR2 to the master
# re-executes it, and the new worker takes the listeners from the old one
# over the stats socket (-x, added by the master itself because of
# "expose-fd listeners"): the standard seamless reload.
"${PX[@]}" haproxy -W -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
HAP_MASTER=$!
STARTED=("$HAP_MASTER" "${STARTED[@]}")
MASTERS+=("$HAP_MASTER")
wait_url "http://127.0.0.1:$HAP_PORT/small" || die "haproxy did not come up: $(cat "$T/haproxy.log")"

# ---------------------------------------------------------------- nginx, stream proxy
NPX_PORT=$(free_port)
mkdir -p "$T/nproxy/logs"
cat >"$T/nproxy/nginx.conf" <<EOF
load_module $NGX_STREAM_SO;
worker_processes 1;
daemon off;
master_process on;
pid $T/nproxy/nginx.pid;
error_log $T/nproxy/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 16000; }
stream {
    server {
        listen 127.0.0.1:$NPX_PORT backlog=4096;
        proxy_pass 127.0.0.1:$NGX_PORT;
    }
}
EOF
"${PX[@]}" nginx -p "$T/nproxy/" -c "$T/nproxy/nginx.conf" -e "$T/nproxy/logs/error.log" \
    >"$T/nproxy/stdout.log" 2>&1 &
NPX_MASTER=$!
STARTED=("$NPX_MASTER" "${STARTED[@]}")
MASTERS+=("$NPX_MASTER")
wait_url "http://127.0.0.1:$NPX_PORT/small" || die "nginx stream proxy did not come up: $(cat "$T/nproxy/logs/error.log")"

# ---------------------------------------------------------------- baton
BATON_PORT=$(free_port)
cat >"$T/baton.ini" <<EOF
[global]
threads = 1
control = $T/baton.sock
log_level = info
access_log = off
drain_timeout = 30s
[listener web]
bind = 127.0.0.1:$BATON_PORT
backend = app
backlog = 4096
idle_timeout = 5m
[backend app]
server = a 127.0.0.1:$NGX_PORT
EOF
# baton runs from a copy, so that binary upgrades can replace the file
mkdir -p "$T/bin"
cp "$BATON" "$T/bin/baton"
"${PX[@]}" "$T/bin/baton" -c "$T/baton.ini" >"$T/baton.log" 2>&1 &
BATON_MASTER=$!
STARTED=("$BATON_MASTER" "${STARTED[@]}")
MASTERS+=("$BATON_MASTER")
wait_url "http://127.0.0.1:$BATON_PORT/small" || die "baton does not relay: $(cat "$T/baton.log")"

TARGETS=(baton haproxy nginx)
declare -A PORT=([baton]=$BATON_PORT [haproxy]=$HAP_PORT [nginx]=$NPX_PORT)
declare -A MASTER=([baton]=$BATON_MASTER [haproxy]=$HAP_MASTER [nginx]=$NPX_MASTER)
log "backend nginx :$NGX_PORT; baton :$BATON_PORT (master $BATON_MASTER), haproxy :$HAP_PORT (master $HAP_MASTER), nginx stream :$NPX_PORT (master $NPX_MASTER)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# One reload of target $1, the way its operators do it (baton-upgrade: the
# other binary installed at the master's path by rename, then a reload).
UPGRADES=0
do_reload() {
    case $1 in
        baton) "$BATON" -s reload -c "$T/baton.ini" >>"$T/reload-out-baton.txt" 2>&1 ;;
        baton-upgrade)
            UPGRADES=$((UPGRADES + 1))
            cp "$([ $((UPGRADES % 2)) = 1 ] && echo "$BATON_NEXT" || echo "$BATON")" "$T/bin/.baton.new"
            mv -f "$T/bin/.baton.new" "$T/bin/baton"
            "$BATON" -s reload -c "$T/baton.ini" >>"$T/reload-out-baton-upgrade.txt" 2>&1 ;;
        haproxy) kill -USR2 "$HAP_MASTER" ;;
        nginx) nginx -p "$T/nproxy/" -c "$T/nproxy/nginx.conf" -s reload 2>>"$T/reload-out-nginx.txt" ;;
    esac
}
reload_cmd() {                       # the same, as argv for reload_probe.py
    case $1 in
        baton) echo -- "$BATON" -s reload -c "$T/baton.ini" ;;
        haproxy) echo --signal USR2 ;;
        nginx) echo -- nginx -p "$T/nproxy/" -c "$T/nproxy/nginx.conf" -s reload ;;
    esac
}
# reload_loop TARGET START_EPOCH FIRST_OFFSET COUNT MARKS: one reload every
# RELOAD_EVERY s from START+FIRST_OFFSET; MARKS gets "offset_s took_ms rc".
reload_loop() {
    local t=$1 start=$2 off=$3 n=$4 marks=$5 i d t0 t1 rc
    : >"$marks"
    for ((i = 0; i < n; i++)); do
        d=$(fcalc "$start + $off + $i * $RELOAD_EVERY - $(date +%s.%N)")
        awk -v d="$d" 'BEGIN { exit !(d > 0) }' && sleep "$d"
        t0=$(date +%s.%N)
        rc=0
        do_reload "$t" || rc=$?
        t1=$(date +%s.%N)
        printf '%s %s %s\n' "$(fcalc "$t0 - $start")" "$(fmt "$(fcalc "($t1 - $t0) * 1000")" %.1f)" "$rc" >>"$marks"
    done
}

# ---------------------------------------------------------------- a. upgrade latency
declare -A LAT_CMD LAT_SPAWN LAT_SERVE
for t in "${TARGETS[@]}"; do
    log "$t: upgrade latency over $RELOADS reloads"
    # shellcheck disable=SC2046
    "${CL[@]}" python3 "$HERE/reload_probe.py" --port "${PORT[$t]}" --master "${MASTER[$t]}" \
        --count "$RELOADS" --gap 0.3 $(reload_cmd "$t") >"$T/latency-$t.txt" 2>"$T/latency-$t.err" \
        || die "$t: latency probe failed: $(cat "$T/latency-$t.err")"
    read -r _ _ LAT_CMD[$t] _ LAT_SPAWN[$t] _ LAT_SERVE[$t] < <(grep '^median' "$T/latency-$t.txt")
    wait_one_worker "${MASTER[$t]}"
done
# baton's own view: "reload: ... starting generation N" -> "worker P generation N ready"
baton_log_ms() {
    awk '
    function ms(ts,   a, h) { split(substr(ts, 12, 12), a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
    /reload: configuration .* accepted, starting generation/ { s[$NF] = ms($1) }
    / generation [0-9]+ ready$/ { g = $(NF - 1); if (g in s) { printf "%d %.0f\n", g, ms($1) - s[g]; delete s[g] } }
    ' "$T/baton.log"
}
baton_log_ms >"$T/latency-baton-log.txt"
LAT_LOG_BATON=$(median $(head -n "$RELOADS" "$T/latency-baton-log.txt" | awk '{ print $2 }'))

# ---------------------------------------------------------------- b. wrk, steady vs reloading
# run_pair TAG TARGET RELOAD(0/1/upgrade): keep-alive wrk (-c CONNS) and, at the same
# time, a Connection: close wrk (-c CLOSE_CONNS), DURATION seconds.
declare -A KA_RPS KA_ERR CL_RPS CL_ERR NRELOAD RELOAD_FAIL
wrk_errs() {                         # wrk output -> total socket errors + non-2xx
    awk '/Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i }
         /Non-2xx/ { n += $NF } END { print n + 0 }' "$1"
}
wrk_errs_text() {
    awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print } /Non-2xx/ { print "non-2xx " $NF }' "$1" | paste -sd' '
}
run_pair() {
    local tag=$1 t=$2 rl=$3 start kap clp=''
    "${CL[@]}" timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
        "http://127.0.0.1:${PORT[$t]}/small" >"$T/wrk-$tag-ka-$t.txt" 2>&1 &
    kap=$!
    if [ "$CLOSE_CONNS" -gt 0 ]; then
        "${CL[@]}" timeout $((DURATION + 30)) wrk -t1 -c"$CLOSE_CONNS" -d"${DURATION}s" -H 'Connection: close' \
            "http://127.0.0.1:${PORT[$t]}/small" >"$T/wrk-$tag-cl-$t.txt" 2>&1 &
        clp=$!
    fi
    start=$(date +%s.%N)
    if [ "$rl" != 0 ]; then
        # reloads at 0.5, 1.5, ... s: DURATION / RELOAD_EVERY of them
        reload_loop "$t$([ "$rl" = upgrade ] && echo -upgrade)" "$start" 0.5 \
            "$(calc "int(($DURATION - 0.5) / $RELOAD_EVERY) + 1")" "$T/marks-$tag-$t.txt"
    fi
    wait "$kap" || true
    [ -n "$clp" ] && { wait "$clp" || true; }
    grep -q '^Requests/sec' "$T/wrk-$tag-ka-$t.txt" || die "wrk failed for $t: $(cat "$T/wrk-$tag-ka-$t.txt")"
}
for t in "${TARGETS[@]}"; do
    "${CL[@]}" timeout 10 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$t]}/small" >/dev/null 2>&1 || true  # warm-up
done
# Steady and reloading runs alternate, WRK_ROUNDS pairs per target, so that
# drift on the machine hits both phases alike; a round's ratio compares the
# two runs of one pair, and the figure is the median over the rounds.
for r in $(seq "$WRK_ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        phases=(steady reload)
        [ "$t" = baton ] && [ -n "$BATON_NEXT" ] && phases+=(upgrade)
        for phase in "${phases[@]}"; do
            log "$t: wrk ${DURATION}s, $phase (round $r/$WRK_ROUNDS)"
            run_pair "$phase$r" "$t" "$(case $phase in reload) echo 1 ;; upgrade) echo upgrade ;; *) echo 0 ;; esac)"
            wait_one_worker "${MASTER[$t]}"
        done
    done
done
wrk_p99() {                          # wrk --latency output -> 99th percentile in ms
    awk '$1 == "99%" { v = $2; if (v ~ /us$/) x = v / 1000; else if (v ~ /ms$/) x = v + 0;
         else if (v ~ /m$/) x = v * 60000; else x = v * 1000; print x }' "$1"
}
declare -A KA_RATIO CL_RATIO KA_RATIOS KA_P99
for t in "${TARGETS[@]}"; do
    : >"$T/marks-reload-$t.txt"
    ka_ratios='' cl_ratios=''
    for phase in steady reload; do KA_RPS[$phase-$t]='' CL_RPS[$phase-$t]='' KA_ERR[$phase-$t]=0 CL_ERR[$phase-$t]=0; done
    for r in $(seq "$WRK_ROUNDS"); do
        declare -A ka=() cl=()
        for phase in steady reload; do
            ka[$phase]=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk-$phase$r-ka-$t.txt")
            KA_RPS[$phase-$t]+="${ka[$phase]} "
            KA_P99[$phase-$t]+="$(wrk_p99 "$T/wrk-$phase$r-ka-$t.txt") "
            KA_ERR[$phase-$t]=$((KA_ERR[$phase-$t] + $(wrk_errs "$T/wrk-$phase$r-ka-$t.txt")))
            cl[$phase]=0
            if [ "$CLOSE_CONNS" -gt 0 ]; then
                cl[$phase]=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk-$phase$r-cl-$t.txt")
                CL_ERR[$phase-$t]=$((CL_ERR[$phase-$t] + $(wrk_errs "$T/wrk-$phase$r-cl-$t.txt")))
            fi
            CL_RPS[$phase-$t]+="${cl[$phase]} "
        done
        ka_ratios+="$(calc "${ka[reload]} / ${ka[steady]}") "
        cl_ratios+="$(calc "(${cl[steady]} > 0) ? ${cl[reload]} / ${cl[steady]} : 0") "
        cat "$T/marks-reload$r-$t.txt" >>"$T/marks-reload-$t.txt"
    done
    KA_RATIOS[$t]=$ka_ratios
    # shellcheck disable=SC2086
    KA_RATIO[$t]=$(median $ka_ratios) CL_RATIO[$t]=$(median $cl_ratios)
    for phase in steady reload; do
        # shellcheck disable=SC2086
        KA_RPS[$phase-$t]=$(median ${KA_RPS[$phase-$t]}) CL_RPS[$phase-$t]=$(median ${CL_RPS[$phase-$t]})
        # shellcheck disable=SC2086
        KA_P99[$phase-$t]=$(median ${KA_P99[$phase-$t]})
    done
    NRELOAD[$t]=$(wc -l <"$T/marks-reload-$t.txt")
    RELOAD_FAIL[$t]=$(awk '$3 != 0' "$T/marks-reload-$t.txt" | wc -l)
done
# baton under binary upgrades: each round's upgrading run against its steady run
UP_RPS='' UP_P99='' UP_RATIO='' UP_ERR=0 UP_N=0 UP_FAIL=0
if [ -n "$BATON_NEXT" ]; then
    up_ratios='' up_rps='' up_p99=''
    : >"$T/marks-upgrade-baton.txt"
    for r in $(seq "$WRK_ROUNDS"); do
        s=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk-steady$r-ka-baton.txt")
        u=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk-upgrade$r-ka-baton.txt")
        up_ratios+="$(calc "$u / $s") " up_rps+="$u "
        up_p99+="$(wrk_p99 "$T/wrk-upgrade$r-ka-baton.txt") "
        UP_ERR=$((UP_ERR + $(wrk_errs "$T/wrk-upgrade$r-ka-baton.txt")))
        cat "$T/marks-upgrade$r-baton.txt" >>"$T/marks-upgrade-baton.txt"
    done
    # shellcheck disable=SC2086
    UP_RATIO=$(median $up_ratios) UP_RPS=$(median $up_rps) UP_P99=$(median $up_p99)
    UP_N=$(wc -l <"$T/marks-upgrade-baton.txt")
    UP_FAIL=$(awk '$3 != 0' "$T/marks-upgrade-baton.txt" | wc -l)
fi

# ---------------------------------------------------------------- c. time series (Python client)
declare -A S_STEADY S_RELOAD S_MIN S_ERR S_NREL
for t in "${TARGETS[@]}"; do
    log "$t: time series, ${SERIES_DURATION}s, reloads from t=${SERIES_STEADY}s"
    start=$(fcalc "$(date +%s.%N) + 1")
    "${CL[@]}" python3 "$HERE/reload_load.py" --port "${PORT[$t]}" --start "$start" --duration "$SERIES_DURATION" \
        --ka "$CONNS" --close "$CLOSE_CONNS" --bucket "$BUCKET" >"$T/series-$t.txt" &
    lp=$!
    reload_loop "$t" "$start" "$SERIES_STEADY" \
        "$(calc "int(($SERIES_DURATION - $SERIES_STEADY - 0.5) / $RELOAD_EVERY) + 1")" "$T/marks-series-$t.txt"
    wait "$lp" || die "$t: load generator failed"
    S_NREL[$t]=$(wc -l <"$T/marks-series-$t.txt")
    # steady: buckets in [1, SERIES_STEADY); during: [SERIES_STEADY, end)
    read -r S_STEADY[$t] S_RELOAD[$t] S_MIN[$t] S_ERR[$t] < <(awk -v b="$BUCKET" -v s="$SERIES_STEADY" '
        $1 == "total" { err = $4 + $5 + $6 + $7 + $8; next }
        { r = ($2 + $3) / b
          if ($1 >= 1 && $1 < s) { ss += r; ns++ }
          else if ($1 >= s) { rs += r; nr++; if (min == "" || r < min) min = r } }
        END { printf "%.0f %.0f %.0f %d\n", ss / ns, rs / nr, min, err }' "$T/series-$t.txt")
    wait_one_worker "${MASTER[$t]}"
done

if [ -n "$PLOT" ]; then
    log "plotting $PLOT"
    gp="$T/plot.gp"
    {
        echo "set terminal pngcairo size 1100,900 font ',10'"
        echo "set output '$PLOT'"
        echo "set multiplot layout 3,1 title 'requests/s through each proxy, ${BUCKET}s buckets (Python client: $CONNS keep-alive + $CLOSE_CONNS Connection: close connections); reloads from t=${SERIES_STEADY}s, one every ${RELOAD_EVERY}s (dashed)'"
        echo "set grid ytics"
        echo "set xrange [0:$SERIES_DURATION]"
        echo "set yrange [0:*]"
        echo "set y2range [0:1<*]"
        echo "set offsets 0, 0, graph 0.18, 0"
        echo "set ytics nomirror"
        echo "set y2tics"
        echo "set y2label 'errors / bucket'"
        echo "set ylabel 'requests/s'"
        echo "set key top left horizontal font ',9'"
        for t in "${TARGETS[@]}"; do
            echo "unset arrow"
            awk '{ printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb \"#999999\"\n", $1, $1 }' \
                "$T/marks-series-$t.txt"
            [ "$t" = nginx ] && echo "set xlabel 'seconds'"
            echo "set title '$t (${S_NREL[$t]} reloads, ${S_ERR[$t]} errors)'"
            echo "plot '< grep -v total $T/series-$t.txt' using (\$1 + $BUCKET / 2):((\$2 + \$3) / $BUCKET) with lines lw 2 lc rgb '#1f77b4' title 'all', \\"
            echo "     '' using (\$1 + $BUCKET / 2):(\$3 / $BUCKET) with lines lw 1 lc rgb '#2ca02c' title 'Connection: close only', \\"
            echo "     '' using (\$1 + $BUCKET / 2):(\$4 + \$5 + \$6 + \$7 + \$8) axes x1y2 with impulses lw 3 lc rgb '#d62728' title 'errors'"
        done
        echo "unset multiplot"
    } >"$gp"
    gnuplot "$gp" || log "gnuplot failed (see $gp)"
fi

# ---------------------------------------------------------------- report
ratio_line() { # label value op target
    local ok
    ok=$(awk -v v="$2" -v o="$3" -v g="$4" 'BEGIN { print ((o == "<=" && v <= g) || (o == ">=" && v >= g) || (o == "<" && v < g) || (o == "==" && v == g)) ? "met" : "MISSED" }')
    printf '  %-52s %8s   (target %s %s: %s)\n' "$1" "$2" "$3" "$4" "$ok"
}
report() {
    local t rev ph
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$ROOT" diff --quiet HEAD -- proxy conf handoff 2>/dev/null || rev="$rev+dirty"
    echo "baton reload benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
    echo "versions: baton $rev ($BATON), $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
    echo "settings: $RELOADS reloads for latency; wrk -c$CONNS keep-alive + wrk -c$CLOSE_CONNS Connection: close, ${DURATION}s, one reload every ${RELOAD_EVERY}s; series ${SERIES_DURATION}s; $([ "$PIN" = 1 ] && echo "pinned: proxies on CPU $PROXY_CPU, clients and nginx on CPU $CLIENT_CPU" || echo "not pinned"); load avg before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "a. upgrade latency, median of $RELOADS reloads (ms after the reload was issued)"
    printf '| %-7s | %11s | %13s | %16s | %13s |\n' target 'cmd returns' 'new pid seen' 'new pid serving' 'baton log'
    echo '|:--------|------------:|--------------:|----------------:|--------------:|'
    for t in "${TARGETS[@]}"; do
        printf '| %-7s | %11s | %13s | %16s | %13s |\n' "$t" \
            "$([ "$t" = haproxy ] && echo '- (signal)' || fmt "${LAT_CMD[$t]}" %.1f)" \
            "$(fmt "${LAT_SPAWN[$t]}" %.1f)" "$(fmt "${LAT_SERVE[$t]}" %.1f)" \
            "$([ "$t" = baton ] && fmt "$LAT_LOG_BATON" %.0f || echo -)"
    done
    echo
    echo "b. wrk, ${DURATION}s steady vs ${DURATION}s with a reload every ${RELOAD_EVERY}s, $WRK_ROUNDS alternating rounds (errors = socket errors + non-2xx)"
    printf '| %-7s | %7s | %9s | %9s | %6s | %9s | %9s | %6s | %10s | %10s | %11s |\n' target reloads \
        'ka steady' 'ka reload' 'ratio' 'cl steady' 'cl reload' 'ratio' 'err steady' 'err reload' 'err/reload'
    echo '|:--------|--------:|----------:|----------:|-------:|----------:|----------:|-------:|-----------:|-----------:|------------:|'
    for t in "${TARGETS[@]}"; do
        local es er
        es=$((KA_ERR[steady-$t] + CL_ERR[steady-$t]))
        er=$((KA_ERR[reload-$t] + CL_ERR[reload-$t]))
        printf '| %-7s | %7s | %9.0f | %9.0f | %6.3f | %9.0f | %9.0f | %6.3f | %10s | %10s | %11.2f |\n' "$t" \
            "${NRELOAD[$t]}$([ "${RELOAD_FAIL[$t]}" -gt 0 ] && echo "(${RELOAD_FAIL[$t]}!)")" \
            "${KA_RPS[steady-$t]}" "${KA_RPS[reload-$t]}" "${KA_RATIO[$t]}" \
            "${CL_RPS[steady-$t]}" "${CL_RPS[reload-$t]}" "${CL_RATIO[$t]}" \
            "$es" "$er" "$(calc "$er / ${NRELOAD[$t]}")"
    done
    echo "  req/s: median of $WRK_ROUNDS runs; ratio: median of the $WRK_ROUNDS rounds' reloading/steady ratios"
    echo "  keep-alive p99 latency (wrk --latency, median of the runs), ms:"
    for t in "${TARGETS[@]}"; do
        printf '    %-7s steady %8.2f   reloading %8.2f' "$t" "${KA_P99[steady-$t]}" "${KA_P99[reload-$t]}"
        [ "$t" = baton ] && [ -n "$BATON_NEXT" ] && printf '   upgrading %8.2f' "$UP_P99"
        echo
    done
    if [ -n "$BATON_NEXT" ]; then
        echo "  baton under binary upgrades ($UP_N upgrades$([ "$UP_FAIL" -gt 0 ] && echo ", $UP_FAIL failed"), baton and baton-next alternating at the master's path): keep-alive $(fmt "$UP_RPS" %.0f) req/s, ratio to steady $(fmt "$UP_RATIO" %.3f), p99 $(fmt "$UP_P99" %.2f) ms vs $(fmt "${KA_P99[steady-baton]}" %.2f) ms steady, $UP_ERR errors"
    fi
    for t in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        echo "  $t keep-alive ratio per round: $(printf '%.3f ' ${KA_RATIOS[$t]})"
        for r in $(seq "$WRK_ROUNDS"); do
            for ph in steady reload; do
                local e1 e2
                e1=$(wrk_errs_text "$T/wrk-$ph$r-ka-$t.txt")
                e2=$([ "$CLOSE_CONNS" -gt 0 ] && wrk_errs_text "$T/wrk-$ph$r-cl-$t.txt" || true)
                [ -n "$e1$e2" ] && echo "  wrk errors $t $ph round $r: keep-alive [${e1:-none}] close [${e2:-none}]"
            done
        done
    done
    echo
    echo "c. Python client time series (${BUCKET}s buckets; steady = t in [1, $SERIES_STEADY) s, reloading = t >= $SERIES_STEADY s)"
    printf '| %-7s | %7s | %12s | %15s | %6s | %20s | %6s |\n' target reloads 'steady req/s' 'reloading req/s' ratio 'worst bucket req/s' errors
    echo '|:--------|--------:|-------------:|----------------:|-------:|---------------------:|-------:|'
    for t in "${TARGETS[@]}"; do
        printf '| %-7s | %7s | %12s | %15s | %6.3f | %20s | %6s |\n' "$t" "${S_NREL[$t]}" "${S_STEADY[$t]}" "${S_RELOAD[$t]}" \
            "$(calc "${S_RELOAD[$t]} / ${S_STEADY[$t]}")" "${S_MIN[$t]} ($(fmt "$(calc "${S_MIN[$t]} / ${S_STEADY[$t]}")" %.2f)x)" "${S_ERR[$t]}"
    done
    echo
    echo "targets (baton):"
    ratio_line "upgrade latency, new worker serving, median ms" "$(fmt "${LAT_SERVE[baton]}" %.1f)" '<' 50
    ratio_line "baton -s reload returns, median ms" "$(fmt "${LAT_CMD[baton]}" %.1f)" '<' 50
    ratio_line "keep-alive req/s reloading/steady (wrk)" "$(fmt "${KA_RATIO[baton]}" %.3f)" '>=' 0.95
    if [ -n "$BATON_NEXT" ]; then
        ratio_line "keep-alive req/s upgrading/steady (wrk)" "$(fmt "$UP_RATIO" %.3f)" '>=' 0.95
        printf '  %-52s %8s   (no target yet)\n' "keep-alive p99 upgrading/steady (wrk)" "$(fmt "$(calc "$UP_P99 / ${KA_P99[steady-baton]}")" %.2f)"
        ratio_line "errors during upgrades (wrk keep-alive)" "$UP_ERR" '==' 0
    fi
    [ "$CLOSE_CONNS" -gt 0 ] &&
        ratio_line "close req/s reloading/steady (wrk)" "$(fmt "${CL_RATIO[baton]}" %.3f)" '>=' 0.95
    ratio_line "req/s reloading/steady (Python series)" "$(fmt "$(calc "${S_RELOAD[baton]} / ${S_STEADY[baton]}")" %.3f)" '>=' 0.95
    ratio_line "errors during reloads (wrk + series)" "$((KA_ERR[reload-baton] + CL_ERR[reload-baton] + S_ERR[baton]))" '==' 0
    echo "  (peers: haproxy $((KA_ERR[reload-haproxy] + CL_ERR[reload-haproxy] + S_ERR[haproxy])), nginx $((KA_ERR[reload-nginx] + CL_ERR[reload-nginx] + S_ERR[nginx])) errors during reloads)"
    [ "${RELOAD_FAIL[baton]}" -gt 0 ] && echo "  baton: ${RELOAD_FAIL[baton]} reload command(s) failed: $(sort "$T/reload-out-baton.txt" | uniq -c | grep -v reloaded | head -3)"
    echo "  baton reload command time during the wrk run: median $(median $(awk '{ print $2 }' "$T/marks-reload-baton.txt")) ms, max $(sort -g -k2 "$T/marks-reload-baton.txt" | tail -1 | awk '{ print $2 }') ms"
    [ -n "$PLOT" ] && echo "plot: $PLOT"
    return 0
}
report | tee "$T/report.txt"
grep -E ' (warn|error): ' "$T/baton.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/  baton log: /' >&2 || true
log "done"
if [ "$STRICT" = 1 ] && grep -q MISSED "$T/report.txt"; then exit 1; fi
exit 0
