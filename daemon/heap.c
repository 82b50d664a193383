/*
 * heap.c — array-backed binary min-heap with position callbacks.
 */
#include <stdint.h>
#include <stdlib.h>

#include "forq.h"
#include "heap.h"

void
heap_init(struct heap *h, heap_less_fn less, heap_pos_fn set_pos)
{
    h->items = NULL;
    h->len = h->cap = 0;
    h->less = less;
    h->set_pos = set_pos;
}

void
heap_fini(struct heap *h)
{
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

static void
heap_place(struct heap *h, size_t pos, void *item)
{
    h->items[pos] = item;
    h->set_pos(item, pos);
}

static void
heap_sift_up(struct heap *h, size_t pos)
{
    void *item = h->items[pos];

    while (pos > 0) {
        size_t parent = (pos - 1) / 2;

        if (!h->less(item, h->items[parent]))
            break;
        heap_place(h, pos, h->items[parent]);
        pos = parent;
    }
    heap_place(h, pos, item);
}

static void
heap_sift_down(struct heap *h, size_t pos)
{
    void *item = h->items[pos];

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->less(h->items[child + 1], h->items[child]))
            child++;
        if (!h->less(h->items[child], item))
            break;
        heap_place(h, pos, h->items[child]);
        pos = child;
    }
    heap_place(h, pos, item);
}

int
heap_reserve(struct heap *h, size_t n)
{
    void **p;

    if (n <= h->cap)
        return 0;
    if (n > SIZE_MAX / sizeof(*p) || (p = realloc(h->items, n * sizeof(*p))) == NULL)
        return FORQ_ERR_NOMEM;
    h->items = p;
    h->cap = n;
    return 0;
}

int
heap_push(struct heap *h, void *item)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        void **p;

        if (cap > SIZE_MAX / sizeof(*p) || (p = realloc(h->items, cap * sizeof(*p))) == NULL)
            return FORQ_ERR_NOMEM;
        h->items = p;
        h->cap = cap;
    }
    h->items[h->len++] = item;
    heap_sift_up(h, h->len - 1);
    return 0;
}

void
heap_remove(struct heap *h, size_t pos)
{
    void *item, *last;

    if (pos >= h->len)
        return;
    item = h->items[pos];
    last = h->items[--h->len];
    h->set_pos(item, HEAP_NONE);
    if (pos == h->len)
        return;
    h->items[pos] = last;
    heap_update(h, pos);
}

void *
heap_pop(struct heap *h)
{
    void *item = heap_peek(h);

    if (item != NULL)
        heap_remove(h, 0);
    return item;
}

void
heap_update(struct heap *h, size_t pos)
{
    if (pos >= h->len)
        return;
    if (pos > 0 && h->less(h->items[pos], h->items[(pos - 1) / 2]))
        heap_sift_up(h, pos);
    else
        heap_sift_down(h, pos);
}
