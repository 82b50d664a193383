#!/bin/sh
# Quick start, command 2: install what is missing, build, and run the whole
# test suite with ctest.
#   ./scripts/test.sh              normal build in ./build
#   ./scripts/test.sh --sanitize   AddressSanitizer + UBSan build in ./build-asan
#   ./scripts/test.sh --tsan       ThreadSanitizer build in ./build-tsan; runs only
#                                  the tests labelled `threads` (ctest -L threads)
# Warnings are errors when CI is set in the environment (.ci/run sets it).
set -eu
cd "$(dirname "$0")/.."

dir=build
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
select=""
run=""
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
"") ;;
*)
    echo "usage: $0 [--sanitize | --tsan]" >&2
    exit 2
    ;;
esac
./scripts/deps.sh
if [ -n "${CI:-}" ]; then
    flags="$flags -DFORQ_WERROR=ON"
fi

# shellcheck disable=SC2086
cmake -S . -B "$dir" $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
status=0
# shellcheck disable=SC2086
$run ctest --output-on-failure -j"$(nproc)" --timeout 600 $select || status=$?
if [ -n "${reports:-}" ] && [ -n "$(ls -A "$reports")" ]; then
    echo "test.sh: ThreadSanitizer reports:" >&2
    cat "$reports"/* >&2
    status=1
fi
exit $status
