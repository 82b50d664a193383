#!/usr/bin/env bash
# compare.sh — forq side by side with gearmand and beanstalkd, and forq alone
# under load: one driver for the comparison figures in BENCHMARKS.md.
#
#   bench/compare.sh [-r RUNS] [--only "A B C D E"] [--quick | -n DIV] [--no-build]
#
# Workloads (2 workers everywhere; `upper` jobs: a 16-byte lowercase payload
# returned in upper case; every result is checked by the load generator):
#   A  end to end: A_JOBS jobs (100,000) with many in flight, every result
#      collected. forqd --durability off with forq-bench $FORQ_A_CMD_ARGS;
#      gearmand and beanstalkd (in memory) with gearman-bench / beanstalk-bench
#      --mode throughput --inflight 1000 and two --mode worker processes.
#   B  round-trip latency, p50/p99/p99.9 of B_JOBS (5,000) sequential
#      submit-and-wait calls: forq durability off and full ($FORQ_B_CMD_ARGS),
#      gearmand, beanstalkd without binlog and with -b DIR -f 0.
#   C  durable submits/s at 1, 8, 64 in flight: bench/durable.sh, whose table
#      is printed as it is, plus forq full@64 / beanstalkd@64 in the main table.
#   D  forq alone: N (1,000 / 100,000 / 1,000,000) `upper` jobs queued in a
#      paused queue by forq-pipe (durability off, max_queued raised in a config
#      file); forqd's RSS per queued job (/proc/PID/status VmRSS before and
#      after); then the queue resumed and drained: N / the time until
#      `forq queue join` returns; and forqd's peak RSS (VmHWM).
#   E  forq alone: workload A's forq run with E_IDLE (10,000) idle connections
#      held open (bench/idle_conns.c: each sent HELLO and got its answer), and
#      without, on the same forqd after a warm-up load, the order alternating
#      from run to run; also forqd's RSS per idle connection.
#
# Every server is started here on a free loopback port in 7600-7699 (C:
# durable.sh picks its own, in 20000-60000; it gets FORQD_ARGS
# "--drain-timeout-ms 0" so that its forqds, stopped with `sleep` jobs
# running, exit at once), with a fresh data dir under $COMPARE_TMPDIR
# (/var/tmp: a real disk, where /tmp may be tmpfs), and stopped by its pid;
# on exit, INT or TERM every process started here (and whatever those
# started) is stopped and the temporary files removed.
# Runs are interleaved: run 1 of every cell, then run 2, ... (C runs as one
# block: durable.sh interleaves its own cells). A run whose tool exits
# non-zero or reports errors is not a figure: its cell says FAILED and the
# script exits 1. Progress goes to stderr; the report (markdown) to stdout.
#
# Options:
#   -r, --runs N     runs per cell (default 3); the table gives the median (min-max)
#   --only "A C"     run these workloads only (default "A B C D E")
#   -n, --scale DIV  divide every job count by DIV (a smoke run)
#   --quick          -n 10, and D without its largest count (1,000,000)
#   --no-build       use the binaries already in build-bench/
#
# Environment: FORQD (another forqd binary to measure; default
# build-bench/forqd; C passes it to durable.sh), FORQ_A_CMD_ARGS and
# FORQ_B_CMD_ARGS (forq-bench flags for A/E and B, see below), FORQD_ARGS
# (more forqd flags), GEARMAND, BEANSTALKD (server binaries; default from
# PATH), GEARMAND_ARGS (gearmand flags; default "--threads 0"), COMPARE_TMPDIR.
set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in the tools' figures

# ------------------------------------------------------------------ the forq clients
# forq-bench flags for forq's side of A (and E) and of B. The script adds
# -s ADDR and -n JOBS (A_JOBS, B_JOBS below), so the job count stays the same
# for every server: leave those two out.
# A: one forq_map with as many jobs in flight as the anchors have (A_INFLIGHT);
# B: submit-and-wait in one request (SUBMIT with wait_ms), as gearmand's
# SUBMIT_JOB is; `--mode seq` (SUBMIT, then WAIT) is the two-request variant.
FORQ_A_CMD_ARGS=${FORQ_A_CMD_ARGS-"--mode map -t 1 --window 1000 --task upper --size 16"}
FORQ_B_CMD_ARGS=${FORQ_B_CMD_ARGS-"--mode call -t 1 --task upper --size 16"}

# ------------------------------------------------------------------ settings
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
RUNS=3
ONLY="A B C D E"
SCALE=1
QUICK=0
DO_BUILD=1
WORKERS=2              # forqd --workers, and worker processes for the anchors
SIZE=16                # payload bytes
A_JOBS=100000
A_INFLIGHT=1000        # anchors' jobs in flight in A
B_JOBS=5000
C_JOBS=20000           # durable.sh -n (8 and 64 in flight)
C_JOBS1=3000           # durable.sh -1 (1 in flight)
D_COUNTS="1000 100000 1000000"
D_INFLIGHT=256         # forq-pipe -c: submits in flight while D fills the queue
D_PAYLOAD=abcdefghijklmnop
E_IDLE=10000
PORT_LO=7600
PORT_HI=7699
CLIENT_TIMEOUT=1200    # seconds any one load may take before it counts as hung
FORQD=${FORQD:-}
FORQD_ARGS=${FORQD_ARGS-}
GEARMAND=${GEARMAND-}
# --threads 0: one thread does I/O and the queue. On 2 cores it beat 1, 2 and
# the default 4 in every interleaved comparison (handoffs between threads cost
# futex and pipe wake-ups); see BENCHMARKS.md.
GEARMAND_ARGS=${GEARMAND_ARGS---threads 0}
BEANSTALKD=${BEANSTALKD-}
TMPBASE=${COMPARE_TMPDIR:-/var/tmp}
CMDLINE=$(printf '%q ' "$0" "$@")
CMDLINE=${CMDLINE% }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

while (($#)); do
    case $1 in
    -r | --runs) RUNS=${2-}; shift 2 || usage 2 ;;
    --only) ONLY=${2-}; shift 2 || usage 2 ;;
    -n | --scale) SCALE=${2-}; shift 2 || usage 2 ;;
    --quick) QUICK=1; SCALE=10; shift ;;
    --no-build) DO_BUILD=0; shift ;;
    -h | --help) usage 0 ;;
    *) say "compare.sh: unknown argument: $1"; usage 2 ;;
    esac
done
is_count "$RUNS" || die "-r: expected a positive count, got '$RUNS'"
is_count "$SCALE" || die "-n: expected a positive divisor, got '$SCALE'"
ONLY=$(tr 'a-z,' 'A-Z ' <<<"$ONLY")
for w in $ONLY; do
    [[ $w == [ABCDE] ]] || die "--only: unknown workload '$w' (A, B, C, D or E)"
done
[[ -n ${ONLY// /} ]] || die "--only: no workload given"
for v in FORQ_A_CMD_ARGS FORQ_B_CMD_ARGS; do
    [[ " ${!v} " =~ \ (-n|--jobs|-s|--server)[\ =] ]] &&
        die "$v: leave out -n and -s (the script sets them): '${!v}'"
done

want() {
    [[ " $ONLY " == *" $1 "* ]]
}

# Scale the job counts (never below 1); --quick also drops D's largest count.
scaled() {
    local v=$(($1 / SCALE))
    echo $((v > 0 ? v : 1))
}
A_JOBS=$(scaled $A_JOBS)
B_JOBS=$(scaled $B_JOBS)
C_JOBS=$(scaled $C_JOBS)
C_JOBS1=$(scaled $C_JOBS1)
if ((QUICK)); then
    D_COUNTS=${D_COUNTS% *}
fi
d=
for n in $D_COUNTS; do
    d+=" $(scaled "$n")"
done
D_COUNTS=${d# }
D_MAX=0
for n in $D_COUNTS; do
    if ((n > D_MAX)); then D_MAX=$n; fi
done
D_SMALL=${D_COUNTS%% *}
D_LARGE=${D_COUNTS##* }

say "compare.sh: $CMDLINE"
say "workloads $ONLY; $RUNS runs; A $A_JOBS jobs, B $B_JOBS, C $C_JOBS1/$C_JOBS, D $D_COUNTS, E $E_IDLE idle connections"

# ------------------------------------------------------------------ packages, build

NEED_BEANSTALKD=0
NEED_GEARMAND=0
if want A || want B; then
    NEED_BEANSTALKD=1
    NEED_GEARMAND=1
fi
want C && NEED_BEANSTALKD=1
missing=()
if ((NEED_BEANSTALKD)) && [[ -z $BEANSTALKD ]] && ! find_server "" beanstalkd >/dev/null; then
    missing+=(beanstalkd)
fi
if ((NEED_GEARMAND)); then
    [[ -z $GEARMAND ]] && ! find_server "" gearmand >/dev/null && missing+=(gearman-job-server)
    ((DO_BUILD)) && ! pkg_installed libgearman-dev && missing+=(libgearman-dev)
fi
((${#missing[@]} == 0)) || apt_install "${missing[@]}"
if ((NEED_BEANSTALKD)); then
    BEANSTALKD=$(find_server "$BEANSTALKD" beanstalkd) || die "beanstalkd is not installed"
    [[ -x $BEANSTALKD ]] || die "BEANSTALKD=$BEANSTALKD is not executable"
fi
if ((NEED_GEARMAND)); then
    GEARMAND=$(find_server "$GEARMAND" gearmand) || die "gearmand is not installed"
    [[ -x $GEARMAND ]] || die "GEARMAND=$GEARMAND is not executable"
fi

if ((DO_BUILD)); then
    say "building in $BUILD ..."
    targets=(forqd forq_cli forq-bench forq-pipe beanstalk-put idle-conns)
    bench_configure "$BUILD"
    # The anchors' load generators exist once their sources do (and libgearman).
    known=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
    for t in beanstalk-bench gearman-bench; do
        if grep -q -w -- "$t" <<<"$known"; then
            targets+=("$t")
        elif ((NEED_GEARMAND)); then
            say "warning: no target $t in this tree (see the cmake messages): its cells will not run"
        fi
    done
    bench_make "$BUILD" "${targets[@]}"
fi
FORQD=${FORQD:-$BUILD/forqd}
FORQ=$BUILD/forq
FORQ_BENCH=$BUILD/bench/forq-bench
FORQ_PIPE=$BUILD/bench/forq-pipe
IDLE_CONNS=$BUILD/bench/idle-conns
GEARMAN_BENCH=$BUILD/bench/gearman-bench
BEANSTALK_BENCH=$BUILD/bench/beanstalk-bench
need_tools "$FORQD" "$FORQ" "$FORQ_BENCH" "$FORQ_PIPE" "$IDLE_CONNS"
want C && need_tools "$BUILD/bench/beanstalk-put"

# An anchor tool that is not built leaves its cells out (said in the table).
declare -A TOOL_MISSING=()
if ((NEED_GEARMAND)); then
    [[ -x $GEARMAN_BENCH ]] ||
        TOOL_MISSING[gearmand]="not run: no gearman-bench (bench/gearman_bench.c, libgearman-dev)"
    [[ -x $BEANSTALK_BENCH ]] ||
        TOOL_MISSING[beanstalkd]="not run: no beanstalk-bench (bench/beanstalk_bench.c)"
fi

# Does a tool take --size? (The anchors default to 16 bytes, as SIZE is.)
size_flag() {
    if "$1" --help 2>&1 | grep -q -- '--size'; then
        printf '%s\n' --size "$SIZE"
    fi
}

FORQD_HELP=$("$FORQD" --help 2>&1 || true)
for flag in --durability --data --config --max-queued; do
    grep -q -- "$flag" <<<"$FORQD_HELP" || die "$FORQD has no $flag flag: cannot measure it here"
done
FORQD_VERSION=$("$FORQD" --version 2>&1 | head -n 1)

# ------------------------------------------------------------------ descriptor limit (E)

# forqd raises its soft limit to the hard one itself; idle-conns raises its
# own soft limit. Both need a hard limit with room for E_IDLE connections.
NOFILE_NEED=$((E_IDLE + 1024))
if want E; then
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < NOFILE_NEED)); then
        ulimit -n "$NOFILE_NEED" 2>/dev/null ||
            die "E needs $NOFILE_NEED open files but the hard limit is $hard and cannot be raised (run as root, or raise it)"
    fi
    soft=$(ulimit -Sn)
    if [[ $soft != unlimited ]] && ((soft < NOFILE_NEED)); then
        ulimit -Sn "$NOFILE_NEED" || die "cannot raise the open-file limit to $NOFILE_NEED"
    fi
fi

# ------------------------------------------------------------------ processes, cleanup

mkdir -p "$TMPBASE"
WORK=$(mktemp -d "$TMPBASE/forq-compare.XXXXXX")
declare -A PIDS=()   # every process started here and not yet reaped: pid -> name
SPAWNED=

# spawn NAME LOG CMD...: start CMD in the background, output to LOG.
spawn() {
    local name=$1 log=$2

    shift 2
    "$@" >"$log" 2>&1 &
    SPAWNED=$!
    PIDS[$SPAWNED]=$name
}

# reap PID: wait for it (it has exited or was told to); sets REAPED_RC.
reap() {
    REAPED_RC=0
    wait "$1" 2>/dev/null || REAPED_RC=$?
    unset "PIDS[$1]"
}

# stop_pid PID: SIGTERM, up to 30 s to go, then SIGKILL; sets REAPED_RC.
stop_pid() {
    local pid=$1 i

    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "warning: ${PIDS[$pid]-pid $pid} did not stop within 30 s of SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    reap "$pid"
}

# A process's start time (clock ticks since boot), to tell it from a later
# process that got the same pid.
# shellcheck disable=SC2317 # called by cleanup
proc_start() {
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }' || true
}

# "PID START" of every descendant of PID (a server durable.sh started, the
# load generator under timeout, ...).
# shellcheck disable=SC2317 # called by cleanup
descendants() {
    local c

    for c in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
        echo "$c $(proc_start "$c")"
        descendants "$c"
    done
}

# Still the process recorded as "PID START"?
# shellcheck disable=SC2317 # called by cleanup
same_proc() {
    [[ -n $2 && $(proc_start "$1") == "$2" ]]
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local pid start i left tree=()

    trap - INT TERM
    # What each process started, before it is told to stop: anything of
    # that which outlives it (e.g. a server of durable.sh's that was still
    # draining) is stopped here too.
    for pid in "${!PIDS[@]}"; do
        mapfile -t -O "${#tree[@]}" tree < <(descendants "$pid")
    done
    for pid in "${!PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 300; i++)); do
        for pid in "${!PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || unset "PIDS[$pid]"
        done
        ((${#PIDS[@]} == 0)) && break
        sleep 0.1
    done
    for pid in "${!PIDS[@]}"; do
        say "compare.sh: ${PIDS[$pid]} ($pid) ignored SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        left=0
        for pid in "${tree[@]}"; do
            read -r pid start <<<"$pid"
            if same_proc "$pid" "$start"; then
                ((i > 0)) || kill -TERM "$pid" 2>/dev/null || true
                left=1
            fi
        done
        ((left)) || break
        sleep 0.1
    done
    for pid in "${tree[@]}"; do
        read -r pid start <<<"$pid"
        if same_proc "$pid" "$start"; then
            say "compare.sh: pid $pid (started under this script) ignored SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_fg LOG CMD...: run CMD to its end (at most CLIENT_TIMEOUT s), output in
# LOG; sets RC. In the background with a wait, so that a signal to this
# script is handled at once (and the cleanup stops CMD too).
run_fg() {
    local log=$1

    shift
    spawn "$(basename "$1")" "$log" timeout -k 10 "$CLIENT_TIMEOUT" "$@"
    reap "$SPAWNED"
    RC=$REAPED_RC
    ((RC != 124)) || echo "compare.sh: timed out after $CLIENT_TIMEOUT s" >>"$log"
}

# ------------------------------------------------------------------ servers

SRV_PID=
SRV_PORT=
SRV_KIND=
declare -A PORT_USED=()   # ports this script listened on, tried last

# A loopback port in PORT_LO..PORT_HI nothing listens on now.
free_port() {
    local p i pass

    for pass in fresh any; do
        for ((i = 0; i < 200; i++)); do
            p=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO + 1)))
            [[ $pass == fresh && -n ${PORT_USED[$p]-} ]] && continue
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                echo "$p"
                return 0
            fi
        done
    done
    return 1
}

HAVE_SS=0
command -v ss >/dev/null && HAVE_SS=1

# Is PID listening on 127.0.0.1:PORT? (Without ss: does anything answer there.)
listening() {
    local pid=$1 port=$2

    if ((HAVE_SS)); then
        ss -ltnpH "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

forq_cli() {
    "$FORQ" -s "tcp://127.0.0.1:$SRV_PORT" "$@"
}

# start_one KIND LOG DATADIR ARGS...: one try on one port. Returns 0 (ready),
# 1 (did not start: LOG says why), 2 (forqd refused its flags).
start_one() {
    local kind=$1 log=$2 dir=$3 port i rc

    shift 3
    port=$(free_port) || { echo "no free port in $PORT_LO-$PORT_HI" >"$log"; return 1; }
    PORT_USED[$port]=1
    case $kind in
    forqd)
        mkdir -p "$dir"
        # shellcheck disable=SC2086 # FORQD_ARGS is a list of flags
        spawn forqd "$log" "$FORQD" -c "$WORK/forqd.conf" --listen "tcp://127.0.0.1:$port" \
            --workers "$WORKERS" --data "$dir" "$@" $FORQD_ARGS
        ;;
    gearmand)
        # shellcheck disable=SC2086 # GEARMAND_ARGS is a list of flags
        spawn gearmand "$log" "$GEARMAND" -L 127.0.0.1 -p "$port" -l stderr \
            -P "$WORK/gearmand.$port.pid" --config-file /dev/null "$@" $GEARMAND_ARGS
        ;;
    beanstalkd)
        spawn beanstalkd "$log" "$BEANSTALKD" -l 127.0.0.1 -p "$port" "$@"
        ;;
    esac
    SRV_PID=$SPAWNED
    SRV_PORT=$port
    SRV_KIND=$kind
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            reap "$SRV_PID"
            rc=$REAPED_RC
            SRV_PID=
            ((rc == 2)) && [[ $kind == forqd ]] && return 2
            return 1
        fi
        if listening "$SRV_PID" "$port" &&
            { [[ $kind != forqd ]] || forq_cli ping >/dev/null 2>&1; }; then
            return 0
        fi
        sleep 0.1
    done
    echo "compare.sh: not ready after 30 s" >>"$log"
    stop_server
    return 1
}

# start_server KIND LOG DATADIR ARGS...: start_one, up to 3 tries (another
# process may take the port in between). Sets SRV_PID, SRV_PORT.
start_server() {
    local try r

    for ((try = 0; try < 3; try++)); do
        r=0
        start_one "$@" || r=$?
        ((r != 1)) && return $r
        [[ $1 == forqd ]] && rm -rf "$3"
    done
    return 1
}

# Is the server still running (it must be, at the end of a load)?
server_alive() {
    [[ -n $SRV_PID ]] && kill -0 "$SRV_PID" 2>/dev/null
}

stop_server() {
    [[ -n $SRV_PID ]] || return 0
    stop_pid "$SRV_PID"
    SRV_PID=
}

# forqd's memory (kB) from /proc: VmRSS or VmHWM.
proc_kb() {
    awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# A top-level number from forq's JSON output.
json_num() {
    sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p" <<<"$1" | head -n 1
}

# ------------------------------------------------------------------ figures, rows

# VALS[key]: the figures of the runs, space-separated; "FAIL" for a failed run.
declare -A VALS=() FMT=() WL=() CFG=() NOTE=()
ROWS=()
FAILURES=()

# row KEY FORMAT WORKLOAD CONFIG: a row of the table, in this order.
row() {
    ROWS+=("$1")
    FMT[$1]=$2
    WL[$1]=$3
    CFG[$1]=$4
}

put() {
    VALS[$1]+=" $2"
}

# fail RUN CELL WHY LOG KEY...: a run that gives no figure.
fail() {
    local run=$1 cell=$2 why=$3 log=$4 k

    shift 4
    for k in "$@"; do
        put "$k" FAIL
    done
    FAILURES+=("run $run, $cell: $why")
    say "FAILED: run $run, $cell: $why"
    if [[ -n $log && -s $log ]]; then
        tail -n 15 "$log" | sed 's/^/    | /' >&2
    fi
}

# field OUTFILE WHAT: "rate" -> N, "errors" -> N, "p50"/"p99"/"p999" -> ms,
# from the report every load generator prints (see bench/lat.c).
field() {
    case $2 in
    rate) awk '$1 == "rate" { print $2; exit }' "$1" ;;
    errors) awk '$1 == "errors" { print $2; exit }' "$1" ;;
    p50 | p99 | p999)
        awk -v l="${2/p999/p99.9}" '
            $1 == "latency" { for (i = 2; i < NF; i++) if ($i == l) { print $(i + 1); exit } }' "$1" ;;
    esac
}

is_num() {
    [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]
}

# check_load LOG: did the load end well? rc 0, "errors 0", a rate. Sets WHY.
check_load() {
    local log=$1 errors rate

    errors=$(field "$log" errors)
    rate=$(field "$log" rate)
    if ((RC != 0)); then
        WHY="the load generator exited $RC${errors:+ (errors $errors)}"
    elif [[ $errors != 0 ]]; then
        WHY="errors ${errors:-(no errors line)}"
    elif ! is_num "$rate"; then
        WHY="no rate line"
    else
        return 0
    fi
    return 1
}

# fmtv FORMAT VALUE: the number as the table shows it; unit FORMAT: its unit.
fmtv() {
    case $1 in
    int) commas "$(printf '%.0f' "$2")" ;;
    ms) printf '%.3f' "$2" ;;
    mib) awk -v v="$2" 'BEGIN { printf "%.1f", v / 1048576 }' ;;
    *) printf '%s' "$2" ;;
    esac
}

unit() {
    [[ $1 != mib ]] || printf ' MiB'
}

# stat KEY median|min|max: of the figures, or nothing if there are none.
stat_of() {
    # shellcheck disable=SC2086 # the runs, space-separated
    printf '%s\n' ${VALS[$1]-} | grep -v '^FAIL$' | sort -g | awk -v w="$2" '
        { v[NR] = $1 }
        END {
            if (NR == 0) exit
            if (w == "min") print v[1]
            else if (w == "max") print v[NR]
            else if (NR % 2) print v[(NR + 1) / 2]
            else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

cell() {
    local k=$1 vals=${VALS[$1]-} nfail nall m lo hi v

    if [[ -z $vals ]]; then
        echo "${NOTE[$k]:-not run}"
        return
    fi
    nall=0
    nfail=0
    for v in $vals; do
        nall=$((nall + 1))
        [[ $v != FAIL ]] || nfail=$((nfail + 1))
    done
    if ((nfail > 0)); then
        echo "**FAILED** ($nfail of $nall runs)"
        return
    fi
    m=$(stat_of "$k" median)
    lo=$(stat_of "$k" min)
    hi=$(stat_of "$k" max)
    if ((nall > 1)); then
        echo "**$(fmtv "${FMT[$k]}" "$m")$(unit "${FMT[$k]}")** ($(fmtv "${FMT[$k]}" "$lo")-$(fmtv "${FMT[$k]}" "$hi")$(unit "${FMT[$k]}"))"
    else
        echo "**$(fmtv "${FMT[$k]}" "$m")$(unit "${FMT[$k]}")**"
    fi
}

# The median of KEY, only if every run gave a figure.
good_median() {
    local vals=${VALS[$1]-}

    [[ -n $vals && $vals != *FAIL* ]] || return 1
    stat_of "$1" median
}

# ratio NUMKEY DENKEY LABEL: "1.23× LABEL", or nothing.
ratio() {
    local a b

    a=$(good_median "$1") || return 0
    b=$(good_median "$2") || return 0
    awk -v a="$a" -v b="$b" -v l="$3" 'BEGIN { if (b > 0) printf "%.2f× %s\n", a / b, l }'
}

# ------------------------------------------------------------------ workloads

GEARMAND_VERSION=
BEANSTALKD_VERSION=
[[ -n $GEARMAND ]] && GEARMAND_VERSION=$("$GEARMAND" --version 2>&1 | grep -m1 . | sed 's/ - .*//')
[[ -n $BEANSTALKD ]] && BEANSTALKD_VERSION=$("$BEANSTALKD" -v 2>&1 | head -n 1)

# The rows, in table order.
# shellcheck disable=SC2016 # backquotes are markdown
{
    A_WL="A: end to end, jobs/s ($(commas "$A_JOBS") \`upper\`, results collected)"
    row A.forq int "$A_WL" "forq: \`forqd --durability off\`; \`forq-bench $FORQ_A_CMD_ARGS\`"
    row A.gearmand int "$A_WL" "$GEARMAND_VERSION: \`gearman-bench --mode throughput --inflight $A_INFLIGHT\`"
    row A.beanstalkd int "$A_WL" "$BEANSTALKD_VERSION in memory: \`beanstalk-bench --mode throughput --inflight $A_INFLIGHT\`"
    for p in p50 p99 p999; do
        pl=${p/p999/p99.9}
        B_WL="B: round trip $pl, ms ($(commas "$B_JOBS") sequential)"
        row "B.forq-off.$p" ms "$B_WL" "forq off: \`forq-bench $FORQ_B_CMD_ARGS\`"
        row "B.forq-full.$p" ms "$B_WL" "forq full"
        row "B.gearmand.$p" ms "$B_WL" "$GEARMAND_VERSION: \`gearman-bench --mode latency\`"
        row "B.beanstalkd.$p" ms "$B_WL" "$BEANSTALKD_VERSION, no binlog: \`beanstalk-bench --mode latency\`"
        row "B.beanstalkd-b.$p" ms "$B_WL" "$BEANSTALKD_VERSION \`-b DIR -f 0\`"
    done
    C_WL="C: durable submits/s, 64 in flight (bench/durable.sh)"
    row C.beanstalkd int "$C_WL" "\`beanstalkd -b DIR -f 0\`, beanstalk-put"
    row C.full int "$C_WL" "\`forq full\`, forq-pipe"
    for n in $D_COUNTS; do
        D_WL="D: $(commas "$n") jobs queued (paused), then drained"
        row "D.$n.rate" int "$D_WL" "drain, jobs/s (N / time to \`forq queue join\`)"
        row "D.$n.bytes" int "$D_WL" "forqd RSS per queued job, bytes"
        row "D.$n.net" int "$D_WL" "the same minus the $SIZE-byte payload"
        row "D.$n.hwm" mib "$D_WL" "forqd peak RSS (VmHWM)"
    done
    E_WL="E: A's forq run, jobs/s, with $(commas "$E_IDLE") idle connections"
    row E.without int "$E_WL" "without idle connections"
    row E.with int "$E_WL" "with $(commas "$E_IDLE") idle connections (idle-conns, HELLO done)"
    row E.connbytes int "$E_WL" "forqd RSS per idle connection, bytes"
}
for k in A.gearmand A.beanstalkd B.gearmand.p50 B.gearmand.p99 B.gearmand.p999 \
    B.beanstalkd.p50 B.beanstalkd.p99 B.beanstalkd.p999 \
    B.beanstalkd-b.p50 B.beanstalkd-b.p99 B.beanstalkd-b.p999; do
    kind=${k#*.}
    kind=${kind%%.*}
    kind=${kind%-b}
    [[ -n ${TOOL_MISSING[$kind]-} ]] && NOTE[$k]=${TOOL_MISSING[$kind]}
done

# forqd's config file: max_queued raised for D (every forqd reads it, so that
# no /etc/forq/forqd.conf is read instead).
D_MAX_QUEUED=$((D_MAX * 2 > 1000000 ? D_MAX * 2 : 1000000))
cat >"$WORK/forqd.conf" <<EOF
[forqd]
max_queued = $D_MAX_QUEUED
log_level = warn
EOF

# A server for one cell; on failure the cell fails. KIND LOG DIR ARGS...
cell_server() {
    local r=0

    start_server "$@" || r=$?
    ((r == 0)) && return 0
    if ((r == 2)); then
        WHY="forqd refused its flags: $(head -n 1 "$2")"
    else
        WHY="$1 did not start"
    fi
    return 1
}

# End of a cell's load: is the server still there? Then stop it.
cell_end() {
    local ok=0

    server_alive || { WHY="$SRV_KIND died during the load"; ok=1; }
    stop_server
    return $ok
}

# forq, end to end (A and E's "without"). Adds the rate to KEY.
forq_a_load() {
    local out=$1

    # shellcheck disable=SC2086 # FORQ_A_CMD_ARGS is a list of flags
    run_fg "$out" "$FORQ_BENCH" -s "tcp://127.0.0.1:$SRV_PORT" -n "$A_JOBS" $FORQ_A_CMD_ARGS
    check_load "$out"
}

# run_a_forq RUN KEY: A's forq cell.
run_a_forq() {
    local run=$1 key=$2 base=$WORK/$2.$1 rate

    WHY=
    if ! cell_server forqd "$base.srv.log" "$base.data" --durability off; then
        fail "$run" "$key" "$WHY" "$base.srv.log" "$key"
        return 0
    fi
    if ! forq_a_load "$base.out"; then
        stop_server
        fail "$run" "$key" "$WHY" "$base.out" "$key"
        return 0
    fi
    if ! cell_end; then
        fail "$run" "$key" "$WHY" "$base.srv.log" "$key"
        return 0
    fi
    rate=$(field "$base.out" rate)
    put "$key" "$rate"
    say "$(printf '[run %d/%d] %-14s %9s jobs/s  %s' "$run" "$RUNS" "$key" "$(commas "$rate")" \
        "$(awk '$1 == "latency"' "$base.out")")"
    rm -rf "$base.data"
}

# start_workers TOOL: WORKERS worker processes on the current server.
WORKER_PIDS=()
start_workers() {
    local tool=$1 base=$2 i

    WORKER_PIDS=()
    for ((i = 0; i < WORKERS; i++)); do
        spawn "$(basename "$tool") worker" "$base.worker$i.log" \
            "$tool" -s "127.0.0.1:$SRV_PORT" --mode worker
        WORKER_PIDS+=("$SPAWNED")
    done
    sleep 0.3 # let them connect and register, so that the load is not timed waiting for them
    for i in "${WORKER_PIDS[@]}"; do
        kill -0 "$i" 2>/dev/null || { WHY="a worker exited at start"; return 1; }
    done
}

# stop_workers: each must still be running, then end on SIGTERM (0 or 143).
stop_workers() {
    local pid ok=0 alive

    for pid in "${WORKER_PIDS[@]}"; do
        alive=1
        kill -0 "$pid" 2>/dev/null || alive=0
        stop_pid "$pid"
        if ((!alive)); then
            WHY="a worker died during the load (exit $REAPED_RC)"
            ok=1
        elif ((REAPED_RC != 0 && REAPED_RC != 143)); then
            WHY="a worker exited $REAPED_RC on SIGTERM"
            ok=1
        fi
    done
    WORKER_PIDS=()
    return $ok
}

# run_anchor RUN KIND MODE KEYS...: gearmand or beanstalkd, --mode throughput
# (KEYS: the rate) or latency (KEYS: p50 p99 p999). beanstalkd with binlog
# when KIND is beanstalkd-b.
run_anchor() {
    local run=$1 kind=$2 mode=$3 server tool base args=() load=() k wlog why

    shift 3
    base=$WORK/$1.$run
    server=${kind%-b}
    [[ -n ${TOOL_MISSING[$server]-} ]] && return 0
    tool=$GEARMAN_BENCH
    [[ $server == beanstalkd ]] && tool=$BEANSTALK_BENCH
    [[ $kind == beanstalkd-b ]] && { mkdir -p "$base.binlog"; args=(-b "$base.binlog" -f 0); }
    WHY=
    if ! cell_server "$server" "$base.srv.log" "" "${args[@]}"; then
        fail "$run" "$1" "$WHY" "$base.srv.log" "$@"
        rm -rf "$base.binlog"
        return 0
    fi
    if ! start_workers "$tool" "$base"; then
        why=$WHY
        stop_workers || true
        WHY=$why
        stop_server
        fail "$run" "$1" "$WHY" "$base.worker0.log" "$@"
        rm -rf "$base.binlog"
        return 0
    fi
    mapfile -t load < <(size_flag "$tool")
    if [[ $mode == throughput ]]; then
        load+=(--inflight "$A_INFLIGHT" -n "$A_JOBS")
    else
        load+=(-n "$B_JOBS")
    fi
    run_fg "$base.out" "$tool" -s "127.0.0.1:$SRV_PORT" --mode "$mode" "${load[@]}"
    WHY=
    wlog=$base.out
    if ! check_load "$base.out"; then
        :
    elif ! stop_workers; then
        wlog=$base.worker0.log
    elif ! cell_end; then
        wlog=$base.srv.log
    fi
    if ((${#WORKER_PIDS[@]})); then
        why=$WHY
        stop_workers || true
        WHY=$why
    fi
    stop_server
    rm -rf "$base.binlog"
    if [[ -n $WHY ]]; then
        fail "$run" "$1" "$WHY" "$wlog" "$@"
        return 0
    fi
    if [[ $mode == throughput ]]; then
        put "$1" "$(field "$base.out" rate)"
        say "$(printf '[run %d/%d] %-14s %9s jobs/s  %s' "$run" "$RUNS" "$1" \
            "$(commas "$(field "$base.out" rate)")" "$(awk '$1 == "latency"' "$base.out")")"
    else
        for k in "$@"; do
            put "$k" "$(field "$base.out" "${k##*.}")"
        done
        say "$(printf '[run %d/%d] %-14s %s' "$run" "$RUNS" "${1%.p50}" \
            "$(awk '$1 == "latency"' "$base.out")")"
    fi
}

# B for forq: MODE off or full.
run_b_forq() {
    local run=$1 mode=$2 key=B.forq-$2 base k

    base=$WORK/$key.$run
    WHY=
    if ! cell_server forqd "$base.srv.log" "$base.data" --durability "$mode"; then
        fail "$run" "$key" "$WHY" "$base.srv.log" "$key.p50" "$key.p99" "$key.p999"
        return 0
    fi
    # shellcheck disable=SC2086 # FORQ_B_CMD_ARGS is a list of flags
    run_fg "$base.out" "$FORQ_BENCH" -s "tcp://127.0.0.1:$SRV_PORT" -n "$B_JOBS" $FORQ_B_CMD_ARGS
    WHY=
    if check_load "$base.out"; then
        cell_end || true
    fi
    stop_server
    rm -rf "$base.data"
    if [[ -n $WHY ]]; then
        fail "$run" "$key" "$WHY" "$base.out" "$key.p50" "$key.p99" "$key.p999"
        return 0
    fi
    for k in p50 p99 p999; do
        put "$key.$k" "$(field "$base.out" "$k")"
    done
    say "$(printf '[run %d/%d] %-14s %s' "$run" "$RUNS" "$key" "$(awk '$1 == "latency"' "$base.out")")"
}

# D: N jobs queued in a paused queue, RSS, then drained.
run_d() {
    local run=$1 n=$2 base=$WORK/D.$2.$1 keys rss0 rss1 hwm json queued t0 t1 join_pid
    local succeeded failed rate bytes net

    keys=("D.$n.rate" "D.$n.bytes" "D.$n.net" "D.$n.hwm")
    WHY=
    if ! cell_server forqd "$base.srv.log" "$base.data" --durability off; then
        fail "$run" "D, $n jobs" "$WHY" "$base.srv.log" "${keys[@]}"
        return 0
    fi
    # Pausing creates the queue; nothing queued in it will start until resumed.
    if ! forq_cli queue pause default >"$base.cli" 2>&1; then
        stop_server
        fail "$run" "D, $n jobs" "forq queue pause failed" "$base.cli" "${keys[@]}"
        return 0
    fi
    rss0=$(proc_kb "$SRV_PID" VmRSS)
    run_fg "$base.pipe" "$FORQ_PIPE" -s "tcp://127.0.0.1:$SRV_PORT" -n "$n" -c "$D_INFLIGHT" \
        --task upper --payload "$D_PAYLOAD"
    rss1=$(proc_kb "$SRV_PID" VmRSS)
    json=$(forq_cli --json queue info default 2>&1) || true
    queued=$(json_num "$json" queued)
    if ! check_load "$base.pipe"; then
        stop_server
        fail "$run" "D, $n jobs" "submitting: $WHY" "$base.pipe" "${keys[@]}"
        return 0
    fi
    if [[ $queued != "$n" ]]; then
        stop_server
        fail "$run" "D, $n jobs" "expected $n jobs queued, forq queue info says: $json" "" "${keys[@]}"
        return 0
    fi
    # JOIN is sent first (it waits: the queue holds jobs), then the queue is
    # resumed; the drain is timed from just before the resume to JOIN's return.
    spawn "forq queue join" "$base.join" "$FORQ" -s "tcp://127.0.0.1:$SRV_PORT" queue join default
    join_pid=$SPAWNED
    sleep 0.3
    t0=$EPOCHREALTIME
    if ! forq_cli queue resume default >"$base.cli" 2>&1; then
        stop_pid "$join_pid"
        stop_server
        fail "$run" "D, $n jobs" "forq queue resume failed" "$base.cli" "${keys[@]}"
        return 0
    fi
    reap "$join_pid"
    t1=$EPOCHREALTIME
    hwm=$(proc_kb "$SRV_PID" VmHWM)
    json=$(forq_cli --json stats 2>&1) || true
    succeeded=$(json_num "$json" succeeded)
    failed=$(json_num "$json" failed)
    WHY=
    if ((REAPED_RC != 0)); then
        WHY="forq queue join exited $REAPED_RC"
    elif [[ $succeeded != "$n" || $failed != 0 ]]; then
        WHY="after the drain: succeeded ${succeeded:-?}, failed ${failed:-?} (expected $n, 0)"
    elif ! is_num "$rss0" || ! is_num "$rss1" || ! is_num "$hwm"; then
        WHY="cannot read forqd's memory from /proc/$SRV_PID/status"
    else
        cell_end || true
    fi
    stop_server
    rm -rf "$base.data"
    if [[ -n $WHY ]]; then
        fail "$run" "D, $n jobs" "$WHY" "$base.join" "${keys[@]}"
        return 0
    fi
    rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
    bytes=$(awk -v n="$n" -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
    net=$(awk -v x="$bytes" -v s="$SIZE" 'BEGIN { print x - s }')
    put "D.$n.rate" "$rate"
    put "D.$n.bytes" "$bytes"
    put "D.$n.net" "$net"
    put "D.$n.hwm" $((hwm * 1024))
    say "$(printf '[run %d/%d] D %-12s submitted at %s/s; RSS %s -> %s kB (%s B/job); drained at %s jobs/s; peak RSS %s kB' \
        "$run" "$RUNS" "$n" "$(commas "$(field "$base.pipe" rate)")" "$rss0" "$rss1" "$bytes" \
        "$(commas "$rate")" "$hwm")"
}

# e_idle_open BASE: open E_IDLE idle connections to the current server
# (IDLE_PID) and add forqd's RSS per connection to E.connbytes. 1 with WHY.
IDLE_PID=
e_idle_open() {
    local base=$1 rss0 rss1 json conns i

    rss0=$(proc_kb "$SRV_PID" VmRSS)
    spawn idle-conns "$base.idle" "$IDLE_CONNS" -s "tcp://127.0.0.1:$SRV_PORT" -c "$E_IDLE"
    IDLE_PID=$SPAWNED
    for ((i = 0; i < 1200; i++)); do
        grep -qs '^ready ' "$base.idle" && break
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qs "^ready $E_IDLE\$" "$base.idle"; then
        stop_pid "$IDLE_PID"
        IDLE_PID=
        WHY="idle-conns did not get its $E_IDLE connections ready (exit $REAPED_RC)"
        return 1
    fi
    rss1=$(proc_kb "$SRV_PID" VmRSS)
    json=$(forq_cli --json stats 2>&1) || true
    conns=$(json_num "$json" connections)
    if [[ $conns != $((E_IDLE + 1)) ]]; then
        WHY="forqd counts ${conns:-?} connections, expected $((E_IDLE + 1)) (the idle ones and forq stats)"
        return 1
    fi
    put E.connbytes "$(awk -v a="$rss0" -v b="$rss1" -v n="$E_IDLE" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')"
    say "$(printf '[run %d/%d] E              forqd RSS %s -> %s kB with the idle connections' \
        "$run" "$RUNS" "$rss0" "$rss1")"
}

# e_idle_close: close them, and wait until forqd has let go of every one, so
# that the next load runs without them. 1 with WHY.
e_idle_close() {
    local json i

    if kill -0 "$IDLE_PID" 2>/dev/null; then
        stop_pid "$IDLE_PID"
        ((REAPED_RC == 0)) || WHY=${WHY:-"idle-conns exited $REAPED_RC (a connection was closed while held?)"}
    else
        reap "$IDLE_PID"
        WHY=${WHY:-"idle-conns died during the load (exit $REAPED_RC)"}
    fi
    IDLE_PID=
    for ((i = 0; i < 300; i++)); do
        json=$(forq_cli --json stats 2>&1) || true
        [[ $(json_num "$json" connections) == 1 ]] && break
        sleep 0.1
    done
    [[ -z $WHY ]]
}

# E: one forqd per run. A warm-up load first (forqd learns the task's run
# time, which decides batching), then A without and A with E_IDLE idle
# connections held open, the order alternating from run to run (odd runs
# without first), so neither side always gets the later minute. Pairs on one
# server: a fresh server per side added its own start-to-start spread.
run_e() {
    local run=$1 base=$WORK/E.$1 side sides rate

    WHY=
    if ! cell_server forqd "$base.srv.log" "$base.data" --durability off; then
        fail "$run" E "$WHY" "$base.srv.log" E.without E.with E.connbytes
        return 0
    fi
    sides="without with"
    ((run % 2)) || sides="with without"
    # shellcheck disable=SC2086 # FORQ_A_CMD_ARGS is a list of flags
    run_fg "$base.warm" "$FORQ_BENCH" -s "tcp://127.0.0.1:$SRV_PORT" -n $((A_JOBS / 10)) \
        $FORQ_A_CMD_ARGS
    if ! check_load "$base.warm"; then
        stop_server
        fail "$run" "E warm-up" "$WHY" "$base.warm" E.without E.with E.connbytes
        return 0
    fi
    for side in $sides; do
        if [[ $side == with ]] && ! e_idle_open "$base"; then
            [[ -n $IDLE_PID ]] && e_idle_close
            stop_server
            fail "$run" E.with "$WHY" "$base.idle" E.with E.connbytes
            return 0
        fi
        WHY=
        forq_a_load "$base.$side.out" || true
        if [[ $side == with ]]; then
            e_idle_close || true
        fi
        server_alive || WHY=${WHY:-"forqd died during the load"}
        if [[ -n $WHY ]]; then
            stop_server
            fail "$run" "E.$side" "$WHY" "$base.$side.out" "E.$side"
            [[ $side == with ]] && put E.connbytes FAIL
            [[ -s $base.idle && $side == with ]] && tail -n 5 "$base.idle" | sed 's/^/    | idle-conns: /' >&2
            return 0
        fi
        rate=$(field "$base.$side.out" rate)
        put "E.$side" "$rate"
        say "$(printf '[run %d/%d] E.%-12s %9s jobs/s  %s' "$run" "$RUNS" "$side" "$(commas "$rate")" \
            "$(awk '$1 == "latency"' "$base.$side.out")")"
    done
    stop_server
    rm -rf "$base.data"
}

# ------------------------------------------------------------------ the runs

START=$SECONDS
say "work dir $WORK ($(stat -f -c %T "$WORK" 2>/dev/null || echo unknown))"
# C: durable.sh, as one block (its cells are interleaved inside it), first:
# it picks its ports in 20000-60000, where client sockets left in TIME_WAIT
# by the other workloads could keep its servers from listening.
C_TABLE=
if want C; then
    say "C: bench/durable.sh -r $RUNS -n $C_JOBS -1 $C_JOBS1 --no-build ..."
    # --drain-timeout-ms 0: durable.sh stops each forqd with `sleep` jobs
    # running; without it forqd waits 30 s for them and durable.sh kills it
    # after 10 s. The flag changes nothing before the stop.
    spawn durable.sh "$WORK/C.out" env FORQD="$FORQD" DURABLE_TMPDIR="$TMPBASE" BEANSTALKD="$BEANSTALKD" \
        FORQD_ARGS="--drain-timeout-ms 0${FORQD_ARGS:+ $FORQD_ARGS}" \
        "$ROOT/bench/durable.sh" -r "$RUNS" -n "$C_JOBS" -1 "$C_JOBS1" -i "1 8 64" --no-build
    c_pid=$SPAWNED
    # Its progress (stderr) is shown as it comes; its table is on stdout.
    tail -f --pid="$c_pid" "$WORK/C.out" >&2 &
    tail_pid=$!
    PIDS[$tail_pid]="tail -f"
    reap "$c_pid"
    c_rc=$REAPED_RC
    reap "$tail_pid"
    C_TABLE=$(sed -n '/^Durable submits per second/,$p' "$WORK/C.out")
    # A durable.sh row's 64-in-flight cell (the 4th column): "MEDIAN MIN-MAX".
    c_cell() {
        awk -F'|' -v l="$1" '$2 ~ l { print $5; exit }' <<<"$C_TABLE" | tr -d ',*()' |
            awk '$1 ~ /^[0-9]+$/ { print $1, $2 }'
    }
    for c in beanstalkd full; do
        pat='beanstalkd -b DIR'
        # shellcheck disable=SC2016 # backquotes are markdown
        [[ $c == full ]] && pat='`forq full` *$'
        v=
        spread=
        read -r v spread < <(c_cell "$pat") || true
        if is_num "$v"; then # (a cell with a failed run says "error")
            VALS[C.$c]=" $v"
            if [[ $spread =~ ^([0-9]+)-([0-9]+)$ ]]; then
                NOTE[C.$c]="$(commas "${BASH_REMATCH[1]}")-$(commas "${BASH_REMATCH[2]}")"
            fi
        else
            VALS[C.$c]=" FAIL"
        fi
    done
    if ((c_rc != 0)) || [[ -z $C_TABLE ]]; then
        FAILURES+=("C: bench/durable.sh exited $c_rc")
        say "FAILED: C: bench/durable.sh exited $c_rc"
    fi
fi
for ((run = 1; run <= RUNS; run++)); do
    if want A; then
        run_a_forq "$run" A.forq
        run_anchor "$run" gearmand throughput A.gearmand
        run_anchor "$run" beanstalkd throughput A.beanstalkd
    fi
    if want B; then
        run_b_forq "$run" off
        run_b_forq "$run" full
        for kind in gearmand beanstalkd beanstalkd-b; do
            run_anchor "$run" "$kind" latency "B.$kind.p50" "B.$kind.p99" "B.$kind.p999"
        done
    fi
    if want D; then
        for n in $D_COUNTS; do
            run_d "$run" "$n"
        done
    fi
    if want E; then
        run_e "$run"
    fi
done

say "done in $((SECONDS - START)) s"

# ------------------------------------------------------------------ the report

# shellcheck disable=SC2016 # backquotes are markdown
ratio_for() {
    local k=$1 out=() r

    case $k in
    A.forq)
        out+=("$(ratio A.forq A.gearmand gearmand)" "$(ratio A.forq A.beanstalkd beanstalkd)") ;;
    B.forq-off.*)
        out+=("$(ratio "$k" "B.beanstalkd.${k##*.}" 'beanstalkd (no binlog)')"
            "$(ratio "$k" "B.gearmand.${k##*.}" gearmand)") ;;
    B.forq-full.*)
        out+=("$(ratio "$k" "B.beanstalkd-b.${k##*.}" 'beanstalkd `-b -f 0`')") ;;
    C.full)
        out+=("$(ratio C.full C.beanstalkd 'beanstalkd `-b -f 0`')") ;;
    "D.$D_LARGE.rate")
        [[ $D_LARGE != "$D_SMALL" ]] &&
            out+=("$(ratio "$k" "D.$D_SMALL.rate" "the $(commas "$D_SMALL")-job drain")") ;;
    E.with)
        out+=("$(ratio E.with E.without 'without')") ;;
    esac
    r=
    for x in "${out[@]}"; do
        [[ -n $x ]] && r+="${r:+; }$x"
    done
    echo "$r"
}

c_cell_text() {
    local k=$1 m

    m=$(good_median "$k") || { cell "$k"; return; }
    echo "**$(commas "$m")**${NOTE[$k]:+ (${NOTE[$k]})}"
}

model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
echo "## forq compared: gearmand, beanstalkd (bench/compare.sh)"
echo
echo "- command: \`$CMDLINE\`"
echo "- date: $(date -u '+%F %H:%M UTC'); took $((SECONDS - START)) s"
echo "- machine: $(nproc) CPUs, ${model:-unknown CPU}, Linux $(uname -r)"
echo "- forq: commit $commit, $FORQD_VERSION ($FORQD), \`--workers $WORKERS\`"
[[ -n $GEARMAND_VERSION ]] && echo "- anchors: $GEARMAND_VERSION${GEARMAND_ARGS:+ ($GEARMAND_ARGS)}, $BEANSTALKD_VERSION; $WORKERS worker processes each"
echo "- $RUNS runs per cell, interleaved; median, (min-max) when there are several runs;" \
    "$SIZE-byte \`upper\` jobs; data dirs in $TMPBASE"
((SCALE > 1)) && echo "- **smoke run: job counts divided by $SCALE**$( ((QUICK)) && echo ', D without its largest count')"
echo "- ratio: forq / the anchor named, from the medians (throughput: above 1 is forq faster;" \
    "latency: below 1 is forq faster)"
echo
echo "| workload | server / config | median (min-max) | ratio |"
echo "|---|---|--:|---|"
for k in "${ROWS[@]}"; do
    w=${k%%.*}
    want "$w" || continue
    if [[ $w == C ]]; then
        v=$(c_cell_text "$k")
    else
        v=$(cell "$k")
    fi
    echo "| ${WL[$k]} | ${CFG[$k]} | $v | $(ratio_for "$k") |"
done
if want D; then
    echo
    echo "D: forqd's VmRSS is read from /proc before and after the queue is filled; per job" \
        "= the difference / N. The drain is timed from just before \`forq queue resume\`" \
        "(a process start, a few ms) to the return of a \`forq queue join\` sent before it."
fi
if [[ -n $C_TABLE ]]; then
    echo
    echo "### C in full (bench/durable.sh)"
    echo
    echo "$C_TABLE"
fi
if ((${#FAILURES[@]})); then
    echo
    echo "**Failed runs (no figure reported for their cells):**"
    echo
    for f in "${FAILURES[@]}"; do
        echo "- $f"
    done
    say "compare.sh: ${#FAILURES[@]} failed run(s):"
    printf '  %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
exit 0
