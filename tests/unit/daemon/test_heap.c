/*
 * test_heap.c — unit tests for daemon/heap.c, the binary min-heap that tells
 * each item its position.
 *
 * Every test checks two things after each change: the items come out in the
 * order of a sorted reference, and the position each item was told through
 * set_pos is where the item really is (queue cancel relies on it). Keys come
 * from a fixed-seed generator, so a failure reproduces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"

#include "heap.h"

#define TEST_NITEMS 3000

struct test_item {
    int key;
    size_t pos; /* as reported by the heap */
};

static int
test_item_less(const void *a, const void *b)
{
    return ((const struct test_item *)a)->key < ((const struct test_item *)b)->key;
}

static void
test_item_pos(void *item, size_t pos)
{
    ((struct test_item *)item)->pos = pos;
}

static int
test_int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

/* Every item sits where set_pos said, and no child goes before its parent. */
static void
test_check(const struct heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const struct test_item *it = h->items[i];

        assert_int_equal(it->pos, i);
        if (i > 0)
            assert_false(test_item_less(h->items[i], h->items[(i - 1) / 2]));
    }
}

/* Fill items with random keys in [0, range) and push them all. */
static void
test_fill(struct heap *h, struct test_item *items, size_t n, uint32_t range)
{
    for (size_t i = 0; i < n; i++) {
        items[i].key = (int)(test_rng() % range);
        items[i].pos = HEAP_NONE;
        assert_int_equal(heap_push(h, &items[i]), 0);
        assert_int_not_equal(items[i].pos, HEAP_NONE);
    }
    assert_int_equal(heap_len(h), n);
    test_check(h);
}

/* Pop everything; the keys must match want (sorted) and every item leaves once. */
static void
test_drain_sorted(struct heap *h, const int *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct test_item *it = heap_pop(h);

        assert_non_null(it);
        assert_int_equal(it->key, want[i]);
        assert_int_equal(it->pos, HEAP_NONE);
        assert_int_equal(heap_len(h), n - i - 1);
        if ((i & 63) == 0)
            test_check(h);
    }
    assert_null(heap_pop(h));
    assert_null(heap_peek(h));
}

static void
test_heap_empty_pop_returns_null(void **state)
{
    struct test_item it = {42, HEAP_NONE};
    struct heap h;

    heap_init(&h, test_item_less, test_item_pos);
    assert_int_equal(heap_len(&h), 0);
    assert_null(heap_peek(&h));
    assert_null(heap_pop(&h));

    /* And again once something went in and out. */
    assert_int_equal(heap_push(&h, &it), 0);
    assert_int_equal(it.pos, 0);
    assert_ptr_equal(heap_peek(&h), &it);
    assert_ptr_equal(heap_pop(&h), &it);
    assert_int_equal(it.pos, HEAP_NONE);
    assert_null(heap_pop(&h));
    assert_int_equal(heap_len(&h), 0);
    heap_fini(&h);
    assert_null(h.items);
    assert_int_equal(heap_len(&h), 0);
}

static void
test_heap_pop_order_matches_sort(void **state)
{
    struct test_item *items = calloc(TEST_NITEMS, sizeof(*items));
    int *want = calloc(TEST_NITEMS, sizeof(*want));
    struct heap h;

    assert_non_null(items);
    assert_non_null(want);
    test_rng_seed(0x5eed0001);
    heap_init(&h, test_item_less, test_item_pos);
    /* A small key range, so there are many equal keys too. */
    for (size_t i = 0; i < TEST_NITEMS; i++) {
        items[i].key = (int)(test_rng() % 1000) - 500;
        assert_int_equal(heap_push(&h, &items[i]), 0);
        test_check(&h);
        want[i] = items[i].key;
    }
    qsort(want, TEST_NITEMS, sizeof(*want), test_int_cmp);
    assert_int_equal(((struct test_item *)heap_peek(&h))->key, want[0]);
    test_drain_sorted(&h, want, TEST_NITEMS);
    for (size_t i = 0; i < TEST_NITEMS; i++)
        assert_int_equal(items[i].pos, HEAP_NONE);
    heap_fini(&h);
    free(want);
    free(items);
}

static void
test_heap_interleaved_push_pop(void **state)
{
    struct test_item *items = calloc(TEST_NITEMS, sizeof(*items));
    int *ref = calloc(TEST_NITEMS, sizeof(*ref));
    size_t nref = 0, next = 0;
    struct heap h;

    assert_non_null(items);
    assert_non_null(ref);
    test_rng_seed(0x5eed0002);
    heap_init(&h, test_item_less, test_item_pos);
    while (next < TEST_NITEMS || nref > 0) {
        if (next < TEST_NITEMS && (nref == 0 || test_rng() % 3 != 0)) {
            items[next].key = (int)(test_rng() % 5000);
            assert_int_equal(heap_push(&h, &items[next]), 0);
            ref[nref++] = items[next].key;
            next++;
        } else {
            struct test_item *it = heap_pop(&h);
            size_t min = 0;

            for (size_t i = 1; i < nref; i++)
                if (ref[i] < ref[min])
                    min = i;
            assert_non_null(it);
            assert_int_equal(it->key, ref[min]);
            assert_int_equal(it->pos, HEAP_NONE);
            ref[min] = ref[--nref];
        }
        assert_int_equal(heap_len(&h), nref);
        test_check(&h);
    }
    assert_null(heap_pop(&h));
    heap_fini(&h);
    free(ref);
    free(items);
}

/* Remove the item at pos; the rest must still come out sorted. */
static void
test_remove_at(size_t which)
{
    struct test_item items[300];
    int want[300];
    struct test_item *victim;
    size_t n = sizeof(items) / sizeof(items[0]), k = 0, pos;
    struct heap h;

    test_rng_seed(0x5eed0003 + which);
    heap_init(&h, test_item_less, test_item_pos);
    test_fill(&h, items, n, 100);
    pos = which == 0 ? 0 : which == 1 ? n / 2 : n - 1;
    victim = h.items[pos];
    assert_int_equal(victim->pos, pos);
    heap_remove(&h, victim->pos);
    assert_int_equal(victim->pos, HEAP_NONE);
    assert_int_equal(heap_len(&h), n - 1);
    test_check(&h);
    for (size_t i = 0; i < n; i++) {
        assert_true(&items[i] == victim || items[i].pos != HEAP_NONE);
        assert_true(&items[i] == victim || h.items[items[i].pos] == &items[i]);
        if (&items[i] != victim)
            want[k++] = items[i].key;
    }
    qsort(want, k, sizeof(*want), test_int_cmp);
    test_drain_sorted(&h, want, k);
    heap_fini(&h);
}

static void
test_heap_remove_first(void **state)
{
    test_remove_at(0);
}

static void
test_heap_remove_middle(void **state)
{
    test_remove_at(1);
}

static void
test_heap_remove_last(void **state)
{
    test_remove_at(2);
}

/* Remove random items by their reported position until the heap is empty. */
static void
test_heap_remove_random_until_empty(void **state)
{
    struct test_item *items = calloc(TEST_NITEMS, sizeof(*items));
    struct heap h;
    size_t left = TEST_NITEMS;

    assert_non_null(items);
    test_rng_seed(0x5eed0004);
    heap_init(&h, test_item_less, test_item_pos);
    test_fill(&h, items, TEST_NITEMS, 100000);
    while (left > 0) {
        struct test_item *it = &items[test_rng() % TEST_NITEMS];

        if (it->pos == HEAP_NONE)
            continue;
        heap_remove(&h, it->pos);
        assert_int_equal(it->pos, HEAP_NONE);
        assert_int_equal(heap_len(&h), --left);
        if ((left & 31) == 0)
            test_check(&h);
    }
    for (size_t i = 0; i < TEST_NITEMS; i++)
        assert_int_equal(items[i].pos, HEAP_NONE);
    assert_null(heap_pop(&h));
    heap_fini(&h);
    free(items);
}

/* Lower a deep item's key below all others: it must come out first. */
static void
test_heap_update_key_decreased(void **state)
{
    struct test_item items[500];
    int want[500];
    size_t n = sizeof(items) / sizeof(items[0]);
    struct test_item *it;
    struct heap h;

    test_rng_seed(0x5eed0005);
    heap_init(&h, test_item_less, test_item_pos);
    test_fill(&h, items, n, 1000);
    it = h.items[n - 1]; /* a leaf */
    it->key = -1;
    heap_update(&h, it->pos);
    test_check(&h);
    assert_int_equal(it->pos, 0);
    assert_ptr_equal(heap_peek(&h), it);
    for (size_t i = 0; i < n; i++)
        want[i] = items[i].key;
    qsort(want, n, sizeof(*want), test_int_cmp);
    test_drain_sorted(&h, want, n);
    heap_fini(&h);
}

/* Raise the first item's key above all others: it must come out last. */
static void
test_heap_update_key_increased(void **state)
{
    struct test_item items[500];
    int want[500];
    size_t n = sizeof(items) / sizeof(items[0]);
    struct test_item *it, *last = NULL;
    struct heap h;

    test_rng_seed(0x5eed0006);
    heap_init(&h, test_item_less, test_item_pos);
    test_fill(&h, items, n, 1000);
    it = heap_peek(&h);
    it->key = 1000000;
    heap_update(&h, it->pos);
    test_check(&h);
    assert_int_not_equal(it->pos, 0);
    assert_ptr_not_equal(heap_peek(&h), it);
    for (size_t i = 0; i < n; i++)
        want[i] = items[i].key;
    qsort(want, n, sizeof(*want), test_int_cmp);
    for (size_t i = 0; i < n; i++) {
        last = heap_pop(&h);
        assert_non_null(last);
        assert_int_equal(last->key, want[i]);
    }
    assert_ptr_equal(last, it);
    heap_fini(&h);
}

/* Many random re-keys in both directions, from any position. */
static void
test_heap_update_random(void **state)
{
    struct test_item *items = calloc(TEST_NITEMS, sizeof(*items));
    int *want = calloc(TEST_NITEMS, sizeof(*want));
    struct heap h;

    assert_non_null(items);
    assert_non_null(want);
    test_rng_seed(0x5eed0007);
    heap_init(&h, test_item_less, test_item_pos);
    test_fill(&h, items, TEST_NITEMS, 10000);
    for (int round = 0; round < 5000; round++) {
        struct test_item *it = &items[test_rng() % TEST_NITEMS];

        it->key = (int)(test_rng() % 20000) - 5000;
        heap_update(&h, it->pos);
        if ((round & 63) == 0)
            test_check(&h);
    }
    test_check(&h);
    for (size_t i = 0; i < TEST_NITEMS; i++)
        want[i] = items[i].key;
    qsort(want, TEST_NITEMS, sizeof(*want), test_int_cmp);
    test_drain_sorted(&h, want, TEST_NITEMS);
    heap_fini(&h);
    free(want);
    free(items);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_empty_pop_returns_null),
        cmocka_unit_test(test_heap_pop_order_matches_sort),
        cmocka_unit_test(test_heap_interleaved_push_pop),
        cmocka_unit_test(test_heap_remove_first),
        cmocka_unit_test(test_heap_remove_middle),
        cmocka_unit_test(test_heap_remove_last),
        cmocka_unit_test(test_heap_remove_random_until_empty),
        cmocka_unit_test(test_heap_update_key_decreased),
        cmocka_unit_test(test_heap_update_key_increased),
        cmocka_unit_test(test_heap_update_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
