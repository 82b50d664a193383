/*
 * idmap.c — open-addressing hash map keyed by uint64_t.
 */
#include <stdlib.h>

#include "forq.h"
#include "idmap.h"

#define IDMAP_MIN_CAP 64

/* splitmix64's finaliser: sequential ids spread over the whole table. */
static size_t
idmap_slot_of(const struct idmap *m, uint64_t key)
{
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return (size_t)key & (m->cap - 1);
}

void
idmap_init(struct idmap *m)
{
    m->slots = NULL;
    m->cap = m->len = 0;
}

void
idmap_fini(struct idmap *m)
{
    free(m->slots);
    idmap_init(m);
}

void *
idmap_get(const struct idmap *m, uint64_t key)
{
    size_t i;

    if (m->cap == 0)
        return NULL;
    for (i = idmap_slot_of(m, key); m->slots[i].val != NULL; i = (i + 1) & (m->cap - 1))
        if (m->slots[i].key == key)
            return m->slots[i].val;
    return NULL;
}

static void
idmap_insert(struct idmap *m, uint64_t key, void *val)
{
    size_t i;

    for (i = idmap_slot_of(m, key); m->slots[i].val != NULL; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key) {
            m->slots[i].val = val;
            return;
        }
    }
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->len++;
}

static int
idmap_grow(struct idmap *m)
{
    struct idmap old = *m;
    size_t cap = m->cap ? m->cap * 2 : IDMAP_MIN_CAP;
    size_t i;

    if ((m->slots = calloc(cap, sizeof(*m->slots))) == NULL) {
        *m = old;
        return FORQ_ERR_NOMEM;
    }
    m->cap = cap;
    m->len = 0;
    for (i = 0; i < old.cap; i++)
        if (old.slots[i].val != NULL)
            idmap_insert(m, old.slots[i].key, old.slots[i].val);
    free(old.slots);
    return 0;
}

int
idmap_put(struct idmap *m, uint64_t key, void *val)
{
    size_t i;
    int e;

    /* Replacing never grows the table, so it cannot fail. */
    for (i = m->cap ? idmap_slot_of(m, key) : 0; m->cap && m->slots[i].val != NULL;
         i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key) {
            m->slots[i].val = val;
            return 0;
        }
    }
    /* Keep the load under 5/8 so probe runs stay short. */
    if ((m->len + 1) * 8 > m->cap * 5 && (e = idmap_grow(m)) != 0)
        return e;
    idmap_insert(m, key, val);
    return 0;
}

void *
idmap_del(struct idmap *m, uint64_t key)
{
    size_t i, j, home, mask = m->cap - 1;
    void *val;

    if (m->cap == 0)
        return NULL;
    for (i = idmap_slot_of(m, key); m->slots[i].val != NULL; i = (i + 1) & mask)
        if (m->slots[i].key == key)
            break;
    if ((val = m->slots[i].val) == NULL)
        return NULL;
    /* Backward shift: pull later members of the probe run into the hole. */
    for (j = (i + 1) & mask; m->slots[j].val != NULL; j = (j + 1) & mask) {
        home = idmap_slot_of(m, m->slots[j].key);
        /* Move j into i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].val = NULL;
    m->slots[i].key = 0;
    m->len--;
    return val;
}

void *
idmap_next(const struct idmap *m, size_t *pos, uint64_t *key)
{
    while (*pos < m->cap) {
        const struct idmap_slot *s = &m->slots[(*pos)++];

        if (s->val != NULL) {
            if (key != NULL)
                *key = s->key;
            return s->val;
        }
    }
    return NULL;
}

uint64_t
idmap_hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;

    while (n-- > 0) {
        h ^= *b++;
        h *= 0x100000001b3ULL;
    }
    return h;
}
