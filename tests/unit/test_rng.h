/*
 * test_rng.h — a small deterministic PRNG for unit tests (xorshift64*), so
 * that randomised tests replay the same sequence on every run.
 * One generator per test binary; not thread-safe.
 */
#ifndef FORQ_TEST_RNG_H
#define FORQ_TEST_RNG_H

#include <stdint.h>

static uint64_t test_rng_state = 1;

static inline void
test_rng_seed(uint64_t seed)
{
    test_rng_state = seed ? seed : 1; /* xorshift never leaves 0 */
}

static inline uint32_t
test_rng(void)
{
    test_rng_state ^= test_rng_state >> 12;
    test_rng_state ^= test_rng_state << 25;
    test_rng_state ^= test_rng_state >> 27;
    return (uint32_t)((test_rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

#endif /* FORQ_TEST_RNG_H */
