#!/bin/sh
# Quick start, command 2: install what is missing, build, and run the whole
# test suite with ctest.
#   ./scripts/test.sh              normal build in ./build
#   ./scripts/test.sh --sanitize   AddressSanitizer + UBSan build in ./build-asan
# Warnings are errors when CI is set in the environment (.ci/run sets it).
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh

dir=build
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
if [ "${1:-}" = "--sanitize" ]; then
    dir=build-asan
    flags="-DCMAKE_BUILD_TYPE=Debug -DFORQ_SANITIZE=ON"
fi
if [ -n "${CI:-}" ]; then
    flags="$flags -DFORQ_WERROR=ON"
fi

# shellcheck disable=SC2086
cmake -S . -B "$dir" $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j"$(nproc)" --timeout 600
