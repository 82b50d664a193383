/*
 * lat.h — latency figures for the bench tools: sort the samples, print the
 * one "latency p50 … p99 … p99.9 …" line that bench/durable.sh parses.
 */
#ifndef FORQ_BENCH_LAT_H
#define FORQ_BENCH_LAT_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns: the clock every latency sample is taken with. */
uint64_t lat_now_ns(void);

/* Sort v (n samples in ns) in place and print its p50, p99 and p99.9 in ms. */
void lat_print(uint64_t *v, uint64_t n);

#endif /* FORQ_BENCH_LAT_H */
