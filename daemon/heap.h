/*
 * heap.h — a binary min-heap of pointers that tells each item where it is.
 *
 * The heap calls set_pos(item, pos) whenever an item moves, so the item can
 * keep its own index and be removed or re-keyed in O(log n) (cancel, timeout)
 * without a search. Items are borrowed: the heap never frees them.
 * Not thread-safe.
 */
#ifndef FORQ_HEAP_H
#define FORQ_HEAP_H

#include <stddef.h>

#define HEAP_NONE ((size_t)-1) /* position of an item that is in no heap */

typedef int (*heap_less_fn)(const void *a, const void *b);
typedef void (*heap_pos_fn)(void *item, size_t pos);

struct heap {
    void **items;
    size_t len, cap;
    heap_less_fn less;  /* strict order: less(a, b) != 0 when a goes first */
    heap_pos_fn set_pos;
};

void heap_init(struct heap *h, heap_less_fn less, heap_pos_fn set_pos);
/* Free the array (not the items); the heap is empty afterwards. */
void heap_fini(struct heap *h);

static inline size_t
heap_len(const struct heap *h)
{
    return h->len;
}

/* The first item, or NULL when empty. */
static inline void *
heap_peek(const struct heap *h)
{
    return h->len ? h->items[0] : NULL;
}

/* Make room for n items in all, so the next pushes up to n cannot fail. 0 or FORQ_ERR_NOMEM. */
int heap_reserve(struct heap *h, size_t n);
/* Add an item. Returns 0 or FORQ_ERR_NOMEM (the heap is unchanged). */
int heap_push(struct heap *h, void *item);
/* Remove and return the first item (NULL when empty); its position becomes HEAP_NONE. */
void *heap_pop(struct heap *h);
/* Remove the item at pos (as reported through set_pos). */
void heap_remove(struct heap *h, size_t pos);
/* Restore order after the key of the item at pos changed. */
void heap_update(struct heap *h, size_t pos);

#endif /* FORQ_HEAP_H */
