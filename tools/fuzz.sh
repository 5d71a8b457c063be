#!/usr/bin/env bash
# Fuzzes baton's parsers (tests/fuzz, docs/fuzzing.md): installs clang and
# libFuzzer if missing, builds the libFuzzer targets with ASan+UBSan into
# build/fuzz, runs each on a temporary copy of its checked-in corpus for a
# bounded time (as many at once as there are cores), then measures the line
# coverage the grown corpora reach (build/fuzz-cov, llvm-cov).
# Exits non-zero if any target crashed, hung or leaked, printing the
# reproducer; the checkout is never written to.
#
# Usage: tools/fuzz.sh [SECONDS-PER-TARGET [TARGET...]]
#   SECONDS  default 60; 0 only replays the corpora and measures coverage
#   TARGET   default: every directory of tests/fuzz/corpus
# Environment:
#   BATON_FUZZ_WORK=DIR  work in DIR and keep it (grown corpora, logs,
#                        crash files) instead of a temporary directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for d in "$root"/tests/fuzz/corpus/*/; do
        targets+=("$(basename "$d")")
    done
fi
case $secs in
    '' | *[!0-9]*) echo "usage: tools/fuzz.sh [SECONDS-PER-TARGET [TARGET...]]" >&2; exit 2 ;;
esac
for t in "${targets[@]}"; do
    if [ ! -d "$root/tests/fuzz/corpus/$t" ]; then
        echo "baton fuzz: no target '$t' (no tests/fuzz/corpus/$t)" >&2
        exit 2
    fi
done

# clang, libFuzzer (its runtime package is named after clang's major
# version: libclang-rt-14-dev on Debian 12), llvm-profdata and llvm-cov.
"$root/tools/deps.sh" clang llvm
"$root/tools/deps.sh" "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"

# Sources whose line coverage each target reports.
sources_of() {
    case $1 in
        conf) echo conf/conf.c conf/parse.c ;;
        wire) echo handoff/wire.c ;;
        message) echo handoff/message.c handoff/wire.c ;;
        channel) echo handoff/channel.c ;;
        clienthello) echo proxy/clienthello.c ;;
        proxyproto) echo proxy/proxyproto.c ;;
        ctl_command) echo proxy/ctl_command.c ;;
        conn) echo handoff/conn_msg.c handoff/codec.c ;;
        tlsrec) echo proxy/tls_record.c proxy/tls_post.c proxy/tls_keys.c ;;
        *) echo "baton fuzz: no sources listed for target '$1' in tools/fuzz.sh" >&2; return 1 ;;
    esac
}

# libFuzzer dictionary of a target (tests/fuzz/*.dict), if it has one.
dict_of() {
    case $1 in
        wire | message | channel | conn) echo "$root/tests/fuzz/handoff.dict" ;;
        *) [ -f "$root/tests/fuzz/$1.dict" ] && echo "$root/tests/fuzz/$1.dict" ;;
    esac
    return 0
}

# libFuzzer options per target: the largest input worth trying.
max_len_of() {
    case $1 in
        conf | channel) echo 16384 ;;
        clienthello) echo 20480 ;;     # several TLS records of up to 16 KiB + 256
        tlsrec) echo 40000 ;;          # records of up to 16 KiB + 256, and data to seal
        *) echo 8192 ;;
    esac
}

if [ -n "${BATON_FUZZ_WORK:-}" ]; then
    work=$BATON_FUZZ_WORK
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/baton-fuzz.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

build=$root/build/fuzz
echo "== baton fuzz: building libFuzzer targets in $build =="
"$root/tools/build.sh" "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBATON_FUZZ=ON

# Runs one target; its exit status goes to $work/$t/rc.
fuzz_target() {
    local t=$1 dir=$work/$1 dict rc=0
    local opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
                -max_len="$(max_len_of "$t")" -print_final_stats=1
                -artifact_prefix="$dir/artifacts/")

    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/"
    dict=$(dict_of "$t")
    [ -n "$dict" ] && opts+=(-dict="$dict")
    # -runs=0 only replays the corpus (libFuzzer still reports its coverage).
    [ "$secs" -eq 0 ] && opts+=(-runs=0)
    "$build/tests/fuzz/fuzz_$t" "${opts[@]}" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
    echo "$rc" >"$dir/rc"
}

echo "== baton fuzz: ${targets[*]}: ${secs}s each, $(nproc) at a time =="
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$(nproc)" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_target "$t" &
    running=$((running + 1))
done
wait

status=0
for t in "${targets[@]}"; do
    dir=$work/$t
    rc=$(cat "$dir/rc")
    # A target that crashed at once has printed neither.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$dir/log" | tail -1 || true)
    printf '%-12s exit %s, %s runs, %s\n' "$t" "$rc" "${execs:-?}" "${cov:-no coverage line}"
    if [ "$rc" -ne 0 ]; then
        status=1
        keep=$build/artifacts/$t
        mkdir -p "$keep"
        echo "---- $t: fuzzer output (end) ----"
        tail -n 60 "$dir/log"
        for f in "$dir"/artifacts/*; do
            [ -f "$f" ] || continue
            cp "$f" "$keep/"
            echo "---- $t: reproducer $(basename "$f") ($(stat -c %s "$f") bytes), base64:"
            base64 -w 76 "$f"
            echo "---- reproduce: $build/tests/fuzz/fuzz_$t $keep/$(basename "$f")"
            echo "---- once fixed, keep it: cp $keep/$(basename "$f") tests/fuzz/corpus/$t/crash-WHAT"
        done
    fi
done

echo "== baton fuzz: line coverage reached by the corpora =="
cov=$root/build/fuzz-cov
"$root/tools/build.sh" "$cov" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DBATON_FUZZ_COVERAGE=ON
profdata=$(command -v llvm-profdata || command -v "llvm-profdata-$(clang -dumpversion | cut -d. -f1)")
llvmcov=$(command -v llvm-cov || command -v "llvm-cov-$(clang -dumpversion | cut -d. -f1)")
for t in "${targets[@]}"; do
    dir=$work/$t
    srcs=()
    for s in $(sources_of "$t"); do
        srcs+=("$root/$s")
    done
    rm -f "$dir"/*.profraw
    # A crashing input was reported above; measure what the rest reaches.
    if ! LLVM_PROFILE_FILE="$dir/cov-%p.profraw" "$cov/tests/fuzz/fuzz_replay_$t" \
            "$dir/corpus" >/dev/null 2>"$dir/replay.log"; then
        echo "$t: replay of the grown corpus failed:" >&2
        tail -n 20 "$dir/replay.log" >&2
        status=1
        continue
    fi
    "$profdata" merge -sparse "$dir"/cov-*.profraw -o "$dir/cov.profdata"
    # Columns: file, regions, missed, cover, functions, missed, executed,
    # lines, missed, cover, branches, missed, cover.
    "$llvmcov" report "$cov/tests/fuzz/fuzz_replay_$t" -instr-profile="$dir/cov.profdata" \
        "${srcs[@]}" | awk -v t="$t" -v srcs="$(sources_of "$t")" \
            -v n="$(find "$dir/corpus" -type f | wc -l)" '
        # llvm-cov shortens the names; print them as sources_of lists them.
        $1 ~ /\.c$/ {
            k = split(srcs, s, " ")
            for (i = 1; i <= k; i++) {
                b = s[i]; sub(".*/", "", b)
                f = $1; sub(".*/", "", f)
                if (b == f)
                    printf "%-12s %-20s lines %7s of %5s, branches %7s (%d inputs)\n",
                           t, s[i], $10, $8, $13, n
            }
        }'
done

if [ $status -ne 0 ]; then
    echo "baton fuzz: FAILED (see the reproducers above; docs/fuzzing.md says what to do)" >&2
fi
exit $status
