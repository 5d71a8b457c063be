#!/usr/bin/env bash
# bench/handoff.sh - how long a reload takes to move 10,000 live connections
# off the old worker: from `baton -s reload` to the old worker's exit.
# TLS=1: the same with TLS 1.3 connections that baton terminates (target:
# the old worker gone < 500 ms after the reload, every stream intact).
#
# 127.0.0.1 only, ports picked at run time, every wait bounded, everything
# started here stopped on exit.  See bench/README.md ("bench/handoff.sh").
# Tunables (environment):
#   CONNS=10000       live connections (lowered to fit the descriptor limit)
#   BUSY=1000         of which echo streams that keep sending, every byte checked
#   PROCS=4           client processes (each holds CONNS/PROCS sockets)
#   INTERVAL=0.1      seconds between a busy stream's writes (1..MSG bytes each)
#   MSG=256
#   SETTLE=3          seconds the streams run on after the old worker exited
#   HANDOFF=          live or drain: written as [global] handoff (unset: no key,
#                     baton's default, which is live)
#   DRAIN_TIMEOUT=2s  baton's drain_timeout
#   THREADS=1         baton's threads
#   TLS=0             1: clients speak TLS 1.3 to a `tls = on` listener (an
#                     ECDSA P-256 certificate made here; Python ssl clients)
#   BATON=path, BUILD_DIR=dir, SKIP_BUILD=1, KEEP=1 (as in run.sh)
#   STRICT=1          exit 1 when a stream broke even in drain mode
#   PERF=file         record a system-wide profile (perf record -a -g) from just
#                     before the reload until the old worker exited, into file
#   PERF_OPTS="-g"    what perf records (e.g. "-e sched:sched_switch" for a
#                     timeline of which process ran when)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

CONNS=${CONNS:-10000}
BUSY=${BUSY:-1000}
PROCS=${PROCS:-4}
INTERVAL=${INTERVAL:-0.1}
MSG=${MSG:-256}
SETTLE=${SETTLE:-3}
HANDOFF=${HANDOFF:-}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-2s}
THREADS=${THREADS:-1}
KEEP=${KEEP:-0}
TLS=${TLS:-0}
STRICT=${STRICT:-0}

BENCH_TAG=handoff
. "$HERE/lib.sh"
bench_need python3 python3
[ "$TLS" = 1 ] && bench_need openssl openssl
PERF=${PERF:-}
[ -n "$PERF" ] && bench_need perf linux-perf
bench_install
bench_build_baton
IDLE_CONNS=$CONNS
bench_raise_fds                      # baton's worker holds two descriptors per connection
CONNS=$IDLE_CONNS
[ "$BUSY" -le "$CONNS" ] || BUSY=$CONNS
bench_tmpdir baton-handoff
fcalc() { awk "BEGIN { printf \"%.6f\", $* }"; }
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
wait_file() {                        # file seconds what
    local _
    for _ in $(seq $(($2 * 20))); do [ -s "$1" ] && return 0; sleep 0.05; done
    die "no $3 within $2 s"
}

# ---------------------------------------------------------------- backend + baton
python3 "$HERE/handoff_load.py" server --port-file "$T/srv.port" --interval "$INTERVAL" \
    --msg "$MSG" 2>"$T/server.err" &
STARTED=("$!" "${STARTED[@]}")
wait_file "$T/srv.port" 10 "backend port"
PORT=$(free_port)
CLIENT_TLS=()
if [ "$TLS" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -keyout "$T/ec.key" -out "$T/ec.crt" 2>"$T/openssl.err" || die "openssl: $(cat "$T/openssl.err")"
    CLIENT_TLS=(--tls)
fi
{
    echo "[global]"
    echo "threads = $THREADS"
    echo "control = $T/baton.sock"
    echo "log_level = info"
    echo "access_log = off"
    echo "drain_timeout = $DRAIN_TIMEOUT"
    [ -n "$HANDOFF" ] && echo "handoff = $HANDOFF"
    [ -n "${BUSY_POLL:-}" ] && echo "busy_poll = $BUSY_POLL"
    echo "[listener web]"
    echo "bind = 127.0.0.1:$PORT"
    echo "backend = app"
    if [ "$TLS" = 1 ]; then
        echo "tls = on"
        echo "tls_cert = $T/ec.crt"
        echo "tls_key = $T/ec.key"
    fi
    echo "[backend app]"
    echo "server = s1 127.0.0.1:$(cat "$T/srv.port")"
} >"$T/baton.ini"
bench_start_baton
OLD=$BATON_WORKER

# ---------------------------------------------------------------- connections
kind=$([ "$TLS" = 1 ] && echo "TLS 1.3 " || true)
log "opening $CONNS ${kind}connections ($BUSY busy) from $PROCS client processes"
CLIENTS=()
for i in $(seq 0 $((PROCS - 1))); do
    n=$(((CONNS * (i + 1)) / PROCS - (CONNS * i) / PROCS))
    b=$(((BUSY * (i + 1)) / PROCS - (BUSY * i) / PROCS))
    python3 "$HERE/handoff_load.py" client "${CLIENT_TLS[@]}" --port "$PORT" --conns "$n" --busy "$b" \
        --base $((i * 1000000)) --interval "$INTERVAL" --msg "$MSG" \
        --ready-file "$T/ready.$i" --stop-file "$T/stop" --result-file "$T/result.$i" \
        2>"$T/client.$i.err" &
    CLIENTS+=("$!")
    STARTED+=("$!")
done
for i in $(seq 0 $((PROCS - 1))); do
    for _ in $(seq 2400); do
        [ -s "$T/ready.$i" ] && break
        kill -0 "${CLIENTS[i]}" 2>/dev/null || die "client $i failed: $(cat "$T/client.$i.err")"
        sleep 0.05
    done
    [ -s "$T/ready.$i" ] || die "client $i not ready within 120 s"
done
for _ in $(seq 300); do
    held=$("$BATON" -s status -c "$T/baton.ini" | sed -n "s/^worker .*pid=$OLD .*connections=\([0-9]*\).*/\1/p")
    [ "${held:-0}" -ge "$CONNS" ] && break
    sleep 0.1
done
[ "${held:-0}" -ge "$CONNS" ] || die "the worker holds ${held:-0} of $CONNS connections"
log "worker $OLD holds $held connections; reloading"

# ---------------------------------------------------------------- the reload
# One watcher process polls (a fork per poll would take the CPU the
# workers need for the handoff itself).
python3 "$HERE/handoff_watch.py" "$OLD" 120 >"$T/watch.out" 2>"$T/watch.err" &
WATCH=$!
STARTED=("$WATCH" "${STARTED[@]}")
if [ -n "$PERF" ]; then
    # shellcheck disable=SC2086
    perf record -q -a ${PERF_OPTS:--g} -o "$PERF" >"$T/perf.out" 2>&1 &
    PERFPID=$!
    STARTED=("$PERFPID" "${STARTED[@]}")
    sleep 0.5                        # perf has opened its buffers
fi
sleep 0.2                            # the watcher is polling
t0=$(date +%s.%N)
"$BATON" -s reload -c "$T/baton.ini" >"$T/reload.out" 2>&1 || die "reload failed: $(cat "$T/reload.out")"
t1=$(date +%s.%N)
wait "$WATCH" || die "$(cat "$T/watch.err")"
read -r t2 <"$T/watch.out"
if [ -n "$PERF" ]; then
    kill -INT "$PERFPID" 2>/dev/null || true
    wait "$PERFPID" 2>/dev/null || true
    log "profile in $PERF (perf report -i $PERF --sort comm,pid,sym)"
fi
sleep "$SETTLE"                      # the streams go on through the new worker
touch "$T/stop"
rc_all=0
for i in $(seq 0 $((PROCS - 1))); do
    wait "${CLIENTS[i]}" || rc_all=1
done

# ---------------------------------------------------------------- report
read -r bfail ifail echo_bytes < <(python3 - "$T" "$PROCS" <<'PY'
import json, sys
t, n = sys.argv[1], int(sys.argv[2])
bf = idf = eb = 0
for i in range(n):
    try:
        r = json.load(open("%s/result.%d" % (t, i)))
    except (OSError, ValueError):
        bf, idf = bf + 10**9, idf + 10**9
        continue
    bf += r["busy_failed"]; idf += r["idle_failed"]; eb += r["echo_bytes"]
print(bf, idf, eb)
PY
)
mode=${HANDOFF:-"(no handoff key: baton's default, live)"}
echo "baton handoff benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) CPUs, kernel $(uname -r); baton $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($BATON)"
echo "settings: $CONNS ${kind}connections ($BUSY busy, a write of 1..$MSG bytes every ${INTERVAL}s each) from $PROCS processes; handoff $mode; drain_timeout $DRAIN_TIMEOUT; threads $THREADS; ulimit -n $nofile"
printf '  reload command returned      %8.1f ms\n' "$(calc "($t1 - $t0) * 1000")"
printf '  old worker %-7s exited     %8.1f ms after the reload command\n' "$OLD" "$(calc "($t2 - $t0) * 1000")"
printf '  per connection               %8.1f us\n' "$(calc "($t2 - $t0) * 1000000 / $CONNS")"
# baton's own figures: the master's log (reload received -> old worker
# reaped) and each side's handoff line (wall time and loop CPU of its links).
python3 - "$T/baton.log" "$OLD" "$CONNS" <<'PY' || true
import datetime, re, sys
log, old, conns = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = t1 = None
cpu = {}
def ts(line):
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
for line in open(log):
    if t0 is None and "control socket: reload from" in line:
        t0 = ts(line)
    elif t0 is not None and t1 is None and re.search(r"worker %s generation \d+ exited" % old, line):
        t1 = ts(line)
    m = re.search(r"handoff: \d+ connection\(s\) (moved|adopted) .* in (\d+) ms, CPU (\d+) ms$", line)
    if m:
        cpu[m.group(1)] = (int(m.group(2)), int(m.group(3)))
if t0 is not None and t1 is not None:
    print("  master: reload received -> old worker reaped %8.1f ms (%.1f us per connection)"
          % ((t1 - t0) * 1000, (t1 - t0) * 1e6 / conns))
if "moved" in cpu and "adopted" in cpu:
    g, t = cpu["moved"][1], cpu["adopted"][1]
    print("  CPU (baton): giver %d ms, taker %d ms: %.1f us per connection, both workers"
          % (g, t, (g + t) * 1000.0 / conns))
PY
grep -h 'handoff: ' "$T/baton.log" | sed 's/^/  baton: /' || echo "  (no 'handoff:' line in baton's log)"
echo "  busy streams intact: $((BUSY - bfail))/$BUSY ($(calc "$echo_bytes / 1048576") MiB echoed and checked); idle connections intact: $((CONNS - BUSY - ifail))/$((CONNS - BUSY))"
for i in $(seq 0 $((PROCS - 1))); do
    python3 -c 'import json,sys; [print("  broken:", f) for f in json.load(open(sys.argv[1]))["failures"][:3]]' "$T/result.$i" 2>/dev/null || true
done | head -6
if [ "$TLS" = 1 ]; then
    exit_ms=$(calc "($t2 - $t0) * 1000")
    moved=$(sed -n 's/.*handoff: \([0-9]*\) connection(s) moved to generation.*/\1/p' "$T/baton.log" | tail -1)
    intact=$((CONNS - bfail - ifail))
    ok=$(awk -v ms="$exit_ms" -v m="${moved:-0}" -v n="$CONNS" -v i="$intact" \
        'BEGIN { print (ms < 500 && m == n && i == n) ? "met" : "missed" }')
    printf '  %d live TLS 1.3 connections: old worker gone %.1f ms after the reload, %s of them moved, %d intact (target < 500 ms, all moved and intact: %s)\n' \
        "$CONNS" "$exit_ms" "${moved:-0}" "$intact" "$ok"
    [ "${moved:-0}" = "$CONNS" ] ||
        echo "  (TLS connections that did not move drained in the old worker and were cut at drain_timeout $DRAIN_TIMEOUT)"
fi
if [ "$rc_all" != 0 ]; then
    if [ "$HANDOFF" = drain ]; then
        echo "  (drain mode: the old worker cut its connections at drain_timeout, as expected)"
        [ "$STRICT" = 1 ] && exit 1
    else
        exit 1
    fi
fi
exit 0
