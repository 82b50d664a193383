#!/usr/bin/env bash
# durable.sh — durable submit throughput: forq against beanstalkd.
#
# For each configuration (beanstalkd -b DIR -f 0; forqd --durability full,
# normal, off) and each number of submits in flight (1, 8, 64), RUNS times:
# start the server on a free loopback port in a fresh data dir, load it with
# submits nobody consumes, stop it (by the pid started here). forq is loaded
# with `sleep 3600000` jobs (two workers take the first two; the rest stay
# queued) by forq-pipe, which speaks the wire protocol on one connection as
# beanstalk-put does for beanstalkd; the row "forq full, libforq" loads it
# through the client library instead (forq-bench --mode submit, one thread
# per submit in flight). Runs are
# interleaved (run 1 of every cell, then run 2, ...) so that drift on a shared
# machine spreads over all cells. For forq runs, store commits and fsyncs per
# second come from `forq stats --json` before and after the load (n/a when
# forqd does not report them).
#
# Prints one markdown table on stdout (median of the runs; min-max beside
# it); progress, one line per run, goes to stderr.
#
#   bench/durable.sh [-r RUNS] [-n JOBS] [-1 JOBS] [-i "1 8 64"] [--no-build]
#
# Environment: FORQ_MODES (default "full normal off"), BEANSTALKD (path,
# default from PATH; "none" leaves it out), FORQD (another forqd binary to
# measure; default build-bench/forqd), FORQD_ARGS (more forqd flags),
# DURABLE_TMPDIR (where data dirs go; default /var/tmp, which is a real disk
# on most systems where /tmp may be tmpfs and make fsync free).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
RUNS=3
JOBS=20000   # per run, 8 and more in flight
JOBS1=3000   # per run, 1 in flight
INFLIGHT="1 8 64"
DO_BUILD=1
FORQ_MODES=${FORQ_MODES-full normal off}
BEANSTALKD=${BEANSTALKD-}
FORQD_ARGS=${FORQD_ARGS-}
FORQD=${FORQD:-}
TMPBASE=${DURABLE_TMPDIR:-/var/tmp}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

while (($#)); do
    case $1 in
    -r | --runs) RUNS=${2-}; shift 2 || usage 2 ;;
    -n | --jobs) JOBS=${2-}; shift 2 || usage 2 ;;
    -1 | --jobs1) JOBS1=${2-}; shift 2 || usage 2 ;;
    -i | --inflight) INFLIGHT=${2-}; shift 2 || usage 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h | --help) usage 0 ;;
    *) say "durable.sh: unknown argument: $1"; usage 2 ;;
    esac
done
for v in "$RUNS" "$JOBS" "$JOBS1" $INFLIGHT; do
    is_count "$v" || die "expected a positive count, got '$v'"
done
for m in $FORQ_MODES; do
    [[ $m == full || $m == normal || $m == off ]] || die "FORQ_MODES: unknown mode '$m'"
done

# ------------------------------------------------------------------ build, tools

if ((DO_BUILD)); then
    say "building in $BUILD ..."
    bench_configure "$BUILD"
    bench_make "$BUILD" forqd forq_cli forq-bench forq-pipe beanstalk-put
fi
FORQD=${FORQD:-$BUILD/forqd}
FORQ=$BUILD/forq
FORQ_BENCH=$BUILD/bench/forq-bench
FORQ_PIPE=$BUILD/bench/forq-pipe
BEANSTALK_PUT=$BUILD/bench/beanstalk-put
need_tools "$FORQD" "$FORQ" "$FORQ_BENCH" "$FORQ_PIPE" "$BEANSTALK_PUT"

if [[ $BEANSTALKD != none ]]; then
    if [[ -z $BEANSTALKD ]] && ! find_server "" beanstalkd >/dev/null; then
        apt_install beanstalkd
    fi
    BEANSTALKD=$(find_server "$BEANSTALKD" beanstalkd) || die "beanstalkd is not installed"
    [[ -x $BEANSTALKD ]] || die "BEANSTALKD=$BEANSTALKD is not executable"
fi

# What this forqd can do. Without --durability there is no store: only "off"
# can run, as forqd in memory (the row says so).
FORQD_HELP=$("$FORQD" --help 2>&1 || true)
HAS_DURABILITY=0
HAS_DATA=0
grep -q -- '--durability' <<<"$FORQD_HELP" && HAS_DURABILITY=1
grep -q -- '--data' <<<"$FORQD_HELP" && HAS_DATA=1

# ------------------------------------------------------------------ temp dirs, servers

WORK=$(mktemp -d "$TMPBASE/forq-durable.XXXXXX")
SERVER_PID=
SERVER_PORT=

stop_server() {
    local pid=$SERVER_PID i

    [[ -n $pid ]] || return 0
    SERVER_PID=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

FSTYPE=$(stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
[[ $FSTYPE != tmpfs ]] ||
    say "warning: $WORK is on tmpfs, where fsync costs nothing; set DURABLE_TMPDIR"

# A loopback port nothing listens on now (bash's /dev/tcp: refused = free).
free_port() {
    local p i

    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Is the server started by start_one ready? 0 yes, 1 not yet, 2 it died.
server_ready() {
    local kind=$1 port=$2 log=$3

    kill -0 "$SERVER_PID" 2>/dev/null || return 2
    if [[ $kind == beanstalkd ]]; then
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    else
        grep -q ' ready: ' "$log" && return 0
        "$FORQ" -s "tcp://127.0.0.1:$port" ping >/dev/null 2>&1 && return 0
    fi
    return 1
}

# start_one KIND MODE DIR LOG: start a server, wait until it is ready. Sets
# SERVER_PID and SERVER_PORT. Returns 0, 1 (it did not start; LOG says why)
# or 2 (forqd refused its flags: exit status 2).
start_one() {
    local kind=$1 mode=$2 dir=$3 log=$4 port i r rc

    port=$(free_port) || return 1
    mkdir -p "$dir"
    if [[ $kind == beanstalkd ]]; then
        "$BEANSTALKD" -l 127.0.0.1 -p "$port" -b "$dir" -f 0 >"$log" 2>&1 &
    else
        local args=(--workers 2 --listen "tcp://127.0.0.1:$port")
        ((HAS_DURABILITY)) && args+=(--durability "$mode")
        ((HAS_DATA)) && args+=(--data "$dir")
        # shellcheck disable=SC2086 # FORQD_ARGS is a list of flags
        "$FORQD" "${args[@]}" $FORQD_ARGS >"$log" 2>&1 &
    fi
    SERVER_PID=$!
    SERVER_PORT=$port
    for ((i = 0; i < 300; i++)); do
        r=0
        server_ready "$kind" "$port" "$log" || r=$?
        if ((r == 0)); then
            return 0
        elif ((r == 2)); then
            rc=0
            wait "$SERVER_PID" || rc=$?
            SERVER_PID=
            ((rc == 2)) && return 2
            return 1
        fi
        sleep 0.1
    done
    stop_server
    echo "durable.sh: not ready after 30 s" >>"$log"
    return 1
}

# start_server KIND MODE DIR LOG: start_one, with a few tries on other ports
# in case another process took the port in between.
start_server() {
    local try r

    for ((try = 0; try < 3; try++)); do
        r=0
        start_one "$@" || r=$?
        ((r != 1)) && return $r
        rm -rf "$3"
    done
    return 1
}

# ------------------------------------------------------------------ numbers

# A stats counter (top-level JSON key) from forqd, or nothing.
forq_counter() {
    local json=$1 key=$2

    sed -n "s/.*\"$key\":\([0-9][0-9]*\).*/\1/p" <<<"$json" | head -n 1
}

forq_stats() {
    "$FORQ" -s "tcp://127.0.0.1:$SERVER_PORT" --json stats 2>/dev/null || true
}

# per_sec BEFORE AFTER SECONDS: the rate, or n/a when a counter is missing.
per_sec() {
    if [[ -z $1 || -z $2 || -z $3 ]]; then
        echo n/a
    else
        awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { printf "%.0f\n", (s > 0 ? (b - a) / s : 0) }'
    fi
}

# median of the numbers given (n/a when there are none or one is not a number).
median() {
    (($#)) || { echo n/a; return; }
    printf '%s\n' "$@" | sort -g | awk '
        !/^[0-9.]+$/ { bad = 1 }
        { v[NR] = $1 }
        END {
            if (bad) { print "n/a"; exit }
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f\n", m
        }'
}

# min-max of the numbers given, or nothing.
spread() {
    (($# > 1)) || return 0
    printf '%s\n' "$@" | sort -g | awk '
        !/^[0-9.]+$/ { bad = 1 }
        { v[NR] = $1 }
        END { if (!bad) printf "%d-%d\n", v[1], v[NR] }'
}

# ------------------------------------------------------------------ the runs

CONFIGS=(beanstalkd full normal off full-libforq)
declare -A RATE COMMITS FSYNCS STATE LAT
for c in "${CONFIGS[@]}"; do
    STATE[$c]=run
    if [[ $c == beanstalkd ]]; then
        [[ $BEANSTALKD == none ]] && STATE[$c]="not run (BEANSTALKD=none)"
    elif [[ " $FORQ_MODES " != *" ${c%-libforq} "* ]]; then
        STATE[$c]="not run (FORQ_MODES)"
    elif ((!HAS_DURABILITY)) && [[ $c != off ]]; then
        STATE[$c]="skipped: forqd has no --durability"
    fi
done
((HAS_DURABILITY)) || say "note: this forqd has no --durability: 'forq off' runs in memory"

FAILED=0

# run_one CONFIG INFLIGHT RUN: one server, one load, one stop.
run_one() {
    local c=$1 n=$2 run=$3 jobs=$JOBS kind=forq dir log out rate elapsed lat r
    local before after commits=n/a fsyncs=n/a

    ((n == 1)) && jobs=$JOBS1
    [[ $c == beanstalkd ]] && kind=beanstalkd
    dir=$WORK/$c-$n-$run
    log=$WORK/$c-$n-$run.log
    r=0
    start_server "$kind" "${c%-libforq}" "$dir" "$log" || r=$?
    if ((r != 0)); then
        if ((r == 2)) && [[ $kind == forq ]]; then
            STATE[$c]="forqd refused: $(head -n 1 "$log")"
            say "forq $c: forqd refused its flags, skipping: $(head -n 1 "$log")"
        else
            say "$c: the server did not start:"
            tail -5 "$log" >&2
            RATE[$c,$n]+=" error"
            FAILED=1
        fi
        rm -rf "$dir"
        return 0
    fi
    if [[ $kind == beanstalkd ]]; then
        out=$("$BEANSTALK_PUT" -s "127.0.0.1:$SERVER_PORT" -n "$jobs" -c "$n" 2>&1) || r=$?
    else
        before=$(forq_stats)
        if [[ $c == *-libforq ]]; then
            out=$("$FORQ_BENCH" -s "tcp://127.0.0.1:$SERVER_PORT" -n "$jobs" -t "$n" \
                --mode submit --task sleep --payload 3600000 2>&1) || r=$?
        else
            out=$("$FORQ_PIPE" -s "tcp://127.0.0.1:$SERVER_PORT" -n "$jobs" -c "$n" \
                --task sleep --payload 3600000 2>&1) || r=$?
        fi
        after=$(forq_stats)
    fi
    stop_server
    rm -rf "$dir"
    rate=$(awk '$1 == "rate" { print $2 }' <<<"$out")
    elapsed=$(awk '$1 == "elapsed" { print $2 }' <<<"$out")
    lat=$(awk '$1 == "latency" { printf "p50 %s p99 %s p99.9 %s ms", $3, $6, $9 }' <<<"$out")
    if ((r != 0)) || [[ -z $rate ]]; then
        say "$c, $n in flight, run $run: the load failed:"
        say "$out"
        RATE[$c,$n]+=" error"
        FAILED=1
        return 0
    fi
    if [[ $kind == forq ]]; then
        commits=$(per_sec "$(forq_counter "$before" store_commits)" \
            "$(forq_counter "$after" store_commits)" "$elapsed")
        fsyncs=$(per_sec "$(forq_counter "$before" store_fsyncs)" \
            "$(forq_counter "$after" store_fsyncs)" "$elapsed")
        COMMITS[$c,$n]+=" $commits"
        FSYNCS[$c,$n]+=" $fsyncs"
    fi
    RATE[$c,$n]+=" $rate"
    LAT[$c,$n]+="; $lat"
    say "$(printf '[run %d/%d] %-10s %2d in flight: %7s submits/s  %s' "$run" "$RUNS" "$c" "$n" \
        "$(commas "$rate")" "$lat")$([[ $kind == forq ]] &&
        echo "  commits $(commas "$commits")/s  fsyncs $(commas "$fsyncs")/s")"
}

say "data dirs in $WORK ($FSTYPE); $RUNS runs; $JOBS1 jobs per run at 1 in flight, $JOBS above"
for ((run = 1; run <= RUNS; run++)); do
    for n in $INFLIGHT; do
        for c in "${CONFIGS[@]}"; do
            [[ ${STATE[$c]} == run ]] && run_one "$c" "$n" "$run"
        done
    done
done

# ------------------------------------------------------------------ the table

# shellcheck disable=SC2016 # the backquotes are markdown
label() {
    case $1 in
    beanstalkd) echo '`beanstalkd -b DIR -f 0`' ;;
    off)
        if ((HAS_DURABILITY)); then
            echo '`forq off`'
        else
            echo '`forq off` (no store in this forqd: in memory)'
        fi
        ;;
    *-libforq) echo "\`forq ${1%-libforq}\`, libforq client" ;;
    *) echo "\`forq $1\`" ;;
    esac
}

# cell CONFIG INFLIGHT: "median (min-max)", "error", or the reason it did not run.
cell() {
    local c=$1 n=$2 m s

    if [[ ${STATE[$c]} != run && -z ${RATE[$c,$n]-} ]]; then
        echo "${STATE[$c]}"
        return
    fi
    # shellcheck disable=SC2086 # the runs, space-separated
    m=$(median ${RATE[$c,$n]-})
    # shellcheck disable=SC2086
    s=$(spread ${RATE[$c,$n]-})
    if [[ $m == n/a ]]; then
        [[ ${RATE[$c,$n]-} == *error* ]] && echo error || echo n/a
        return
    fi
    echo "**$(commas "$m")**${s:+ ($(commas "$s"))}"
}

# counters CONFIG MAP: the median commits or fsyncs per second, "a / b / c".
counters() {
    local c=$1 n out='' v
    local -n ref=$2

    [[ $c == beanstalkd ]] && { echo "—"; return; }
    [[ ${STATE[$c]} != run ]] && { echo "—"; return; }
    for n in $INFLIGHT; do
        # shellcheck disable=SC2086
        v=$(median ${ref[$c,$n]-})
        out+="${out:+ / }$(commas "$v")"
    done
    echo "$out"
}

ratio() {
    local n=$1 a b

    # shellcheck disable=SC2086
    a=$(median ${RATE[full,$n]-})
    # shellcheck disable=SC2086
    b=$(median ${RATE[beanstalkd,$n]-})
    if [[ $a == n/a || $b == n/a ]]; then
        echo n/a
    else
        awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f×\n", a / b }'
    fi
}

head_row="| server / config |"
rule="|---|"
for n in $INFLIGHT; do
    head_row+=" $n in flight |"
    rule+="--:|"
done
slash=${INFLIGHT// / \/ }
head_row+=" commits/s ($slash) | fsyncs/s ($slash) |"
rule+="--:|--:|"

bversion='no beanstalkd'
[[ $BEANSTALKD == none ]] || bversion=$("$BEANSTALKD" -v 2>&1 | head -n 1)
echo
echo "Durable submits per second, median of $RUNS runs (min-max); $JOBS1 jobs per run at 1 in"
echo "flight, $JOBS above; $(date -u +%F), $(nproc) CPUs, data dirs on $FSTYPE;"
echo "forq $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') with 2 workers, $bversion."
echo
echo "$head_row"
echo "$rule"
for c in "${CONFIGS[@]}"; do
    row="| $(label "$c") |"
    for n in $INFLIGHT; do
        row+=" $(cell "$c" "$n") |"
    done
    row+=" $(counters "$c" COMMITS) | $(counters "$c" FSYNCS) |"
    echo "$row"
done
row="| \`forq full\` / beanstalkd |"
for n in $INFLIGHT; do
    row+=" $(ratio "$n") |"
done
echo "$row | |"
exit $FAILED
