/*
 * mpscan.h — a structural check of msgpack bytes, run before msgpack-c sees
 * them.
 *
 * msgpack-c's unpacker allocates an array for a container's declared element
 * count before it reads the elements, so a 5-byte message announcing four
 * billion elements asks for ~100 GB. mpscan walks the bytes without
 * allocating and refuses such input: every declared count must fit in the
 * bytes that remain (each element takes at least one byte), the total number
 * of elements is capped, nesting is capped, and the value must end exactly at
 * the end of the buffer. After a successful check, msgpack-c's memory use is
 * bounded by max_items * sizeof(msgpack_object).
 *
 * Pure functions; no allocation, no globals.
 */
#ifndef FORQ_MPSCAN_H
#define FORQ_MPSCAN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Check that buf[0..len) holds exactly one well-formed msgpack value whose
 * containers nest at most max_depth deep and hold at most max_items elements
 * in all (a map entry counts as two). Returns 0, or FORQ_ERR_PROTOCOL with *why
 * pointing to a static description.
 */
int mpscan_check(const uint8_t *buf, size_t len, unsigned max_depth, size_t max_items,
                 const char **why);

/*
 * In a buffer that passed mpscan_check and holds a map, find the top-level key
 * `key` (a str) and read its value as an unsigned integer. Returns 0 with *val
 * set, FORQ_ERR_NOT_FOUND (no such key), or FORQ_ERR_BAD_REQUEST (the value is
 * not a non-negative integer, or the top level is not a map).
 */
int mpscan_map_uint(const uint8_t *buf, size_t len, const char *key, uint64_t *val);

#endif /* FORQ_MPSCAN_H */
