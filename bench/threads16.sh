#!/bin/sh
# 16 threads sharing one forq_client against forqd --workers 2, durability off
# and full, modes seq / batch / map, 3 runs each (BENCHMARKS.md, issue 4).
# Build first: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DFORQ_TESTS=OFF &&
#              cmake --build build-rel -j2
set -eu
B=${B:-./build-rel}
for dur in off full; do
  d=$(mktemp -d /var/tmp/forq-b16.XXXXXX)
  $B/forqd --listen tcp://127.0.0.1:7391 --workers 2 --durability $dur --data $d/data --log-level warn 2>$d/log &
  pid=$!
  for i in $(seq 50); do $B/forq -s tcp://127.0.0.1:7391 ping >/dev/null 2>&1 && break; sleep 0.1; done
  for run in 1 2 3; do
    for mode in seq batch map; do
      printf "%s %s run%s: " $dur $mode $run
      $B/bench/forq-bench -s tcp://127.0.0.1:7391 -n 48000 --task upper --size 16 -t 16 --mode $mode | awk '/^rate|^p50|^p99 |^errors|latency/{printf "%s ", $0} END{print ""}'
    done
  done
  kill $pid; wait $pid || true
  rm -rf $d
done
