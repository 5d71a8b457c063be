# bench/lib.sh - shared by run.sh, tls.sh, reload.sh and tls_burst_rss.sh (sourced, not run).
# Before sourcing, a script sets BENCH_TAG (log prefix), ROOT, KEEP and, for
# the descriptor limit, IDLE_CONNS.

log() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
NEED=()
bench_need() {                       # command package: install package if command is missing
    command -v "$1" >/dev/null 2>&1 || NEED+=("$2")
}
bench_install() {                    # installs what bench_need collected (Debian packages)
    local p
    [ ${#NEED[@]} -eq 0 ] && return 0
    log "installing: ${NEED[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${NEED[@]}" >&2; then
        apt-get update -q >&2
        if ! apt-get install -y -q --no-install-recommends "${NEED[@]}" >&2; then
            # nginx-light is gone in newer releases; plain nginx will do.
            for p in "${!NEED[@]}"; do [ "${NEED[p]}" = nginx-light ] && NEED[p]=nginx; done
            apt-get install -y -q --no-install-recommends "${NEED[@]}" >&2
        fi
    fi
}
bench_need_common() {
    bench_need wrk wrk
    bench_need haproxy haproxy
    bench_need nginx nginx-light
    bench_need curl curl
    bench_need python3 python3
    bench_need ss iproute2
    bench_need perf linux-perf
}

bench_build_baton() {                # sets BATON (unless given); builds it unless SKIP_BUILD=1
    local dir=${BUILD_DIR:-$ROOT/build-bench}
    if [ -z "${BATON:-}" ]; then
        BATON="$dir/baton"
        if [ "${SKIP_BUILD:-0}" != 1 ]; then
            log "building baton (Release) in $dir"
            if [ ! -f "$dir/CMakeCache.txt" ]; then
                cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release >&2
            fi
            cmake --build "$dir" --target baton -j2 >&2
        fi
    fi
    [ -x "$BATON" ] || die "no baton binary at $BATON"
}

bench_raise_fds() {                  # room for IDLE_CONNS proxied connections; sets nofile
    # Each proxied idle connection costs the proxy two descriptors.
    local want_fds=$((2 * IDLE_CONNS + 200))
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
        ulimit -Hn "$want_fds" 2>/dev/null || true
        ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    fi
    nofile=$(ulimit -n)
    if [ "$nofile" != unlimited ] && [ "$nofile" -lt "$want_fds" ]; then
        # (raising the hard limit needs CAP_SYS_RESOURCE, which a container may lack)
        IDLE_CONNS=$(((nofile - 200) / 2 / 100 * 100))
        log "ulimit -n is $nofile (hard limit): idle connections reduced to $IDLE_CONNS"
    fi
}

# ---------------------------------------------------------------- process bookkeeping
STARTED=()                           # pids to stop on exit, in order
MASTERS=()                           # their children are stopped too

stop_pid() {                         # SIGTERM, wait up to 5 s, then SIGKILL
    local p=$1 _
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}
children_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'; }
cleanup() {
    local rc=$? p kids=()
    set +e
    trap - EXIT INT TERM
    for p in "${MASTERS[@]}"; do mapfile -t -O "${#kids[@]}" kids < <(children_of "$p"); done
    for p in "${STARTED[@]}"; do stop_pid "$p"; done
    for p in "${kids[@]}"; do stop_pid "$p"; done
    wait 2>/dev/null
    if [ "$KEEP" = 1 ]; then log "raw files kept in $T"; else rm -rf "$T"; fi
    exit "$rc"
}
bench_tmpdir() {                     # prefix: sets T and the exit cleanup
    T=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$T"                   # nginx workers run as nobody
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_start_baton() {                # runs $BATON -c $T/baton.ini until its worker is active;
                                     # sets BATON_MASTER, BATON_WORKER, BATON_STATUS (-s status)
    local _
    "$BATON" -c "$T/baton.ini" >"$T/baton.log" 2>&1 &
    BATON_MASTER=$!
    STARTED=("$BATON_MASTER" "${STARTED[@]}")
    BATON_WORKER='' BATON_STATUS=''
    for _ in $(seq 100); do
        BATON_STATUS=$("$BATON" -s status -c "$T/baton.ini" 2>/dev/null || true)
        BATON_WORKER=$(sed -n 's/^worker generation=[0-9]* pid=\([0-9]*\) state=active.*/\1/p' \
            <<<"$BATON_STATUS" | head -1)
        [ -n "$BATON_WORKER" ] && break
        kill -0 "$BATON_MASTER" 2>/dev/null || die "baton exited: $(cat "$T/baton.log")"
        sleep 0.1
    done
    [ -n "$BATON_WORKER" ] || die "baton status gave no worker: $BATON_STATUS"
    STARTED+=("$BATON_WORKER")            # stopped by the master; this is a fallback
}

# ---------------------------------------------------------------- measuring
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_url() {                         # http or https url, up to 10 s
    local _
    for _ in $(seq 100); do
        curl -ks -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}
proc_ticks() {                       # utime+stime (clock ticks) summed over pids
    local p sum=0 t
    for p in "$@"; do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")
        sum=$((sum + t))
    done
    echo "$sum"
}
proc_ticks_split() {                 # "utime stime" (clock ticks) summed over pids
    local p u=0 s=0 a b
    for p in "$@"; do
        read -r a b < <(awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$p/stat")
        u=$((u + a)) s=$((s + b))
    done
    echo "$u $s"
}
machine_ticks() {                    # busy clock ticks of all CPUs (user nice system irq softirq steal)
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
proc_rss_kb() {                      # VmRSS summed over pids
    local p sum=0 t
    for p in "$@"; do
        t=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")
        sum=$((sum + t))
    done
    echo "$sum"
}
proc_vcsw() {                        # voluntary context switches (sleeps), summed over all threads of pids
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/^voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
# bench_count_syscalls PIDS OUT CMD...: runs CMD while perf counts the system
# calls of every thread of PIDS (comma-separated); writes "name count" lines
# (non-zero only) to OUT.  The tracepoints cost the counted processes CPU, so
# take CPU figures from a run without them.
bench_count_syscalls() {
    local pids=$1 out=$2
    shift 2
    perf stat -x, -o "$out.raw" -e 'syscalls:sys_enter_*' -p "$pids" -- "$@" ||
        die "perf stat failed: $(tail -3 "$out.raw" 2>/dev/null)"
    awk -F, '$1 ~ /^[0-9]+$/ && $1 > 0 { sub(/^syscalls:sys_enter_/, "", $3); print $3, $1 }' \
        "$out.raw" >"$out"
}
established_to() {                   # established sockets whose peer port is $1
    ss -Htn state established "( dport = :$1 )" | wc -l
}
calc() { awk "BEGIN { printf \"%s\", $* }"; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'; }
median() { # numbers as arguments
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
HZ=$(getconf CLK_TCK)
