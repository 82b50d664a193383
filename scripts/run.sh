#!/bin/sh
# Quick start, command 1: install what is missing, build, and run forqd in
# the foreground on its defaults (tcp://127.0.0.1:7340, state in ./forq-data).
# Extra arguments go to forqd, e.g. ./scripts/run.sh --workers 4
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
exec ./build/forqd "$@"
