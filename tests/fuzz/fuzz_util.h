/*
 * fuzz_util.h — small pieces the fuzz targets share.
 */
#ifndef FORQ_FUZZ_UTIL_H
#define FORQ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a of the input: a target's choices derive from it, so a finding replays. */
static inline uint64_t
fuzz_fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    while (n-- > 0)
        h = (h ^ *p++) * 0x100000001b3ull;
    return h;
}

#endif /* FORQ_FUZZ_UTIL_H */
