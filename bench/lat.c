/*
 * lat.c — latency percentiles for the bench tools.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lat.h"

static int
lat_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The p-th percentile of sorted v, in ms (0 without samples). */
static double
lat_pct_ms(const uint64_t *v, uint64_t n, double p)
{
    uint64_t i;

    if (n == 0)
        return 0;
    i = (uint64_t)(p / 100.0 * (double)n);
    return (double)v[i >= n ? n - 1 : i] / 1e6;
}

uint64_t
lat_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
lat_print(uint64_t *v, uint64_t n)
{
    qsort(v, n, sizeof(*v), lat_cmp);
    printf("latency   p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms\n", lat_pct_ms(v, n, 50),
           lat_pct_ms(v, n, 99), lat_pct_ms(v, n, 99.9));
}
