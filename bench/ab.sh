#!/bin/sh
# A/B of two forqd builds, interleaved, 3 rounds: 16 threads sharing one client,
# `upper` on 16 bytes, durability off (or $DURABILITY), 2 workers, modes seq and batch.
#   [DURABILITY=full] [JOBS=N] bench/ab.sh OLD_BUILD_DIR NEW_BUILD_DIR
# Each build dir holds a Release build (-DFORQ_TESTS=OFF); the client is NEW's
# forq-bench, so only forqd differs. Used in BENCHMARKS.md (issue 5).
set -u
old=$1
new=$2
run() { # $1 = build dir, $2 = label
  d=$(mktemp -d /var/tmp/forq-ab.XXXXXX)
  "$1/forqd" --listen tcp://127.0.0.1:7392 --workers 2 --durability "${DURABILITY:-off}" --data "$d/data" \
      --log-level warn 2>"$d/log" &
  pid=$!
  for i in $(seq 50); do "$new/forq" -s tcp://127.0.0.1:7392 ping >/dev/null 2>&1 && break; sleep 0.1; done
  for mode in seq batch; do
    printf "%s %s: " "$2" $mode
    "$new/bench/forq-bench" -s tcp://127.0.0.1:7392 -n "${JOBS:-48000}" --task upper --size 16 -t 16 \
        --mode $mode | awk '/^rate|^errors/{printf "%s ", $0} END{print ""}'
  done
  kill $pid
  wait $pid 2>/dev/null
  rm -rf "$d"
}
for r in 1 2 3; do
  run "$old" before
  run "$new" after
done
