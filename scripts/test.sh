#!/bin/sh
# Quick start, command 2: install what is missing, build, and run the whole
# test suite with ctest.
#   ./scripts/test.sh              normal build in ./build
#   ./scripts/test.sh --sanitize   AddressSanitizer + UBSan build in ./build-asan
#   ./scripts/test.sh --tsan       ThreadSanitizer build in ./build-tsan; runs only
#                                  the tests labelled `threads` (ctest -L threads)
#   ./scripts/test.sh --valgrind   Debug build in ./build-valgrind; runs the tests
#                                  labelled `integration` (and `valgrind`) under
#                                  valgrind memcheck, every forqd they start too
#   ./scripts/test.sh --fuzz       clang build with -DFORQ_FUZZ=ON in ./build-fuzz;
#                                  runs the tests labelled `fuzz`: every libFuzzer
#                                  target for a bounded number of inputs
# FORQ_BUILD_DIR=DIR builds in DIR instead of the mode's directory.
# Warnings are errors when CI is set in the environment (.ci/run sets it).
set -eu
cd "$(dirname "$0")/.."

# Whether one valgrind log (--valgrind) is free of errors and leaks. Its
# ERROR SUMMARY counts one context per error and per leak; a process killed
# by SIGKILL has no summary, so then its errors are counted by their first
# lines. A forked worker (its parent's log is in the same directory) also
# "loses" blocks it inherited from forqd: those only forqd's other threads
# pointed to (the store thread's batch in flight; threads do not survive
# fork), and a page of forqd's open SQLite connection (which a worker must not
# touch, nor close), which SQLite holds only by a pointer into its middle. A
# leak is the worker's only if it was allocated there (worker_run on its
# stack); the rest is forqd's, checked when forqd itself exits.
valgrind_clean() {
    parent=$(sed -n 's/^==[0-9]*== Parent PID: \([0-9]*\)$/\1/p' "$1")
    forked=0
    if [ -n "$parent" ] && [ -e "${1%.*}.$parent" ]; then
        forked=1
    fi
    awk -v forked=$forked '
        function record_end() {
            if (head ~ /lost in loss record/) {
                if (forked && !own)
                    inherited++
                else
                    errors++
            } else if (head ~ /^(Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Argument .* of function|Jump to the invalid|Access not within mapped|Bad permissions for mapped)/) {
                errors++
            }
            head = ""
            own = 0
        }
        { sub(/^==[0-9]+== ?/, "") }
        /^ERROR SUMMARY: / { summary = 1; contexts = $6 }
        /^ *$/ { record_end(); next }
        head == "" { head = $0; next }
        /worker_run/ { own = 1 }
        END {
            record_end()
            exit !(summary ? contexts - inherited <= 0 : errors == 0)
        }' "$1"
}

dir=build
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
select=""
run=""
timeout=600
launcher=""
case "${1:-}" in
--sanitize)
    dir=build-asan
    flags="-DCMAKE_BUILD_TYPE=Debug -DFORQ_SANITIZE=ON"
    ;;
--tsan)
    # Optimised (TSan's own advice: -O1 or more keeps the tests of thousands
    # of jobs fast enough) but with debug info, so reports name file:line.
    dir=build-tsan
    flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORQ_TSAN=ON"
    select="-L threads"
    # gcc 12's TSan runtime places its shadow memory at fixed addresses that
    # assume the kernel's usual 28 bits of mmap randomisation; kernels set to
    # more (vm.mmap_rnd_bits=32, common on 6.x) can put a library in the way
    # and every test dies with "FATAL: ThreadSanitizer: unexpected memory
    # mapping". Running without address randomisation (setarch -R, for this
    # process tree only) avoids it without touching a system setting; the
    # tests do not depend on ASLR. Where setarch -R is not allowed (some
    # containers), run as is.
    if setarch "$(uname -m)" -R true 2>/dev/null; then
        run="setarch $(uname -m) -R"
    fi
    # Every process writes its reports to a file: forqd and the echo server
    # are children whose stderr the tests do not show. exitcode makes a
    # process with a report fail its test too (forqd's teardown expects 0).
    reports="$PWD/$dir/tsan-reports"
    rm -rf "$reports"
    mkdir -p "$reports"
    TSAN_OPTIONS="log_path=$reports/tsan exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
    export TSAN_OPTIONS
    ;;
--valgrind)
    # Debug (-O0): no inlining, so every frame of a report names its own
    # file:line, and none of the rare false "uninitialised value" reports
    # that -O2 code can draw. forqd spends its time waiting, not computing.
    dir=build-valgrind
    flags="-DCMAKE_BUILD_TYPE=Debug"
    select="-L integration|valgrind"
    deps=--valgrind
    ;;
--fuzz)
    # libFuzzer comes with clang only (deps.sh --fuzz installs it). Each
    # target runs a fixed number of inputs (tests/fuzz/CMakeLists.txt); the
    # timeout caps each at 3 minutes all the same. Under CI clang's warnings
    # are errors too, as gcc's are in the other passes.
    dir=build-fuzz
    flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DFORQ_FUZZ=ON"
    select="-L fuzz"
    deps=--fuzz
    timeout=180
    ;;
"") ;;
*)
    echo "usage: $0 [--sanitize | --tsan | --valgrind | --fuzz]" >&2
    exit 2
    ;;
esac
dir="${FORQ_BUILD_DIR:-$dir}"

# shellcheck disable=SC2086
./scripts/deps.sh ${deps:-}
if [ -n "${CI:-}" ]; then
    flags="$flags -DFORQ_WERROR=ON"
fi

if [ "${deps:-}" = --valgrind ]; then
    # The harness puts FORQ_TEST_WRAPPER in front of every forqd it starts
    # (split on spaces: no path in it may have one), and ctest runs each test
    # binary under FORQ_TEST_LAUNCHER, the same but for the log name. Valgrind
    # follows fork, so the workers are checked too; commands run by exec
    # tasks are not (no --trace-children). Each process logs to its own file,
    # read below: the exit code fails forqd's test when forqd has an error,
    # but a worker's is seen only in its log.
    case "$dir" in
    /*) logs="$dir/valgrind-logs" ;;
    *) logs="$PWD/$dir/valgrind-logs" ;;
    esac
    case "$logs$PWD" in
    *" "*)
        echo "test.sh: --valgrind needs paths without spaces: $logs" >&2
        exit 2
        ;;
    esac
    rm -rf "$logs"
    mkdir -p "$logs"
    w="valgrind --tool=memcheck --error-exitcode=97 --num-callers=50 --track-fds=no"
    w="$w --leak-check=full --show-leak-kinds=definite,indirect,possible"
    w="$w --errors-for-leak-kinds=definite,indirect,possible"
    w="$w --suppressions=$PWD/tests/valgrind.supp"
    FORQ_TEST_WRAPPER="$w --log-file=$logs/vg.%p"
    export FORQ_TEST_WRAPPER
    launcher=$(echo "$w --log-file=$logs/test.%p" | tr ' ' ';')
fi

# shellcheck disable=SC2086
cmake -S . -B "$dir" $flags "-DFORQ_TEST_LAUNCHER=$launcher" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
status=0
# shellcheck disable=SC2086
$run ctest --output-on-failure -j"$(nproc)" --timeout $timeout $select || status=$?
if [ -n "${reports:-}" ] && [ -n "$(ls -A "$reports")" ]; then
    echo "test.sh: ThreadSanitizer reports:" >&2
    cat "$reports"/* >&2
    status=1
fi
if [ -n "${logs:-}" ]; then
    bad=""
    for f in "$logs"/*; do
        if [ -e "$f" ] && ! valgrind_clean "$f"; then
            bad="$bad $f"
        fi
    done
    if [ -n "$bad" ]; then
        echo "test.sh: valgrind found errors:" >&2
        for f in $bad; do
            echo "---- $f" >&2
            cat "$f" >&2
        done
        status=1
    fi
fi
exit $status
