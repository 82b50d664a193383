/*
 * idmap.h — a hash map from 64-bit keys to non-NULL pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so lookups stay short under churn). Used for job ids, request
 * ids and name hashes. Values are borrowed: the map never frees them.
 * Not thread-safe.
 */
#ifndef FORQ_IDMAP_H
#define FORQ_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
    uint64_t key;
    void *val; /* NULL marks an empty slot */
};

struct idmap {
    struct idmap_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t len;
};

void idmap_init(struct idmap *m);
/* Free the table (not the values). */
void idmap_fini(struct idmap *m);

/* The value stored under key, or NULL. */
void *idmap_get(const struct idmap *m, uint64_t key);
/*
 * Store val (non-NULL) under key, replacing any previous value. 0 or
 * FORQ_ERR_NOMEM; replacing an existing key never fails.
 */
int idmap_put(struct idmap *m, uint64_t key, void *val);
/* Remove key; returns its value or NULL when absent. */
void *idmap_del(struct idmap *m, uint64_t key);

static inline size_t
idmap_len(const struct idmap *m)
{
    return m->len;
}

/*
 * Iterate: start with *pos = 0; each call returns the next value (and its key
 * when key is not NULL) or NULL at the end. The map must not change during
 * the iteration: collect first, then delete.
 */
void *idmap_next(const struct idmap *m, size_t *pos, uint64_t *key);

/* 64-bit FNV-1a, for keying by name. */
uint64_t idmap_hash_bytes(const void *p, size_t n);

#endif /* FORQ_IDMAP_H */
