/*
 * test_idmap.c — unit tests for daemon/idmap.c, the open-addressing map from
 * 64-bit keys to pointers.
 *
 * The delicate part is backward-shift deletion: after a delete, every other
 * key must still be reachable from its home slot. So the churn tests run
 * thousands of random puts and deletes against a plain reference array and
 * look up every key of the domain after each step, with keys chosen to crowd
 * the same slots: multiples of large powers of two, and keys whose home slots
 * (computed with a copy of the map's mixer) pile up at the end of the table
 * and wrap around to its start.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"

#include "idmap.h"

#define TEST_DOMAIN 600 /* distinct keys in the churn test */

/*
 * A copy of idmap.c's slot mixer, used only to pick keys that share home
 * slots. If the map's hash changes, these keys merely stop colliding: the
 * assertions stay correct, the test just gets weaker.
 */
static uint64_t
test_mix(uint64_t key)
{
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return key;
}

/* The reference: which keys of the domain are in the map, and with what value. */
struct test_ref {
    uint64_t keys[TEST_DOMAIN];
    int present[TEST_DOMAIN];
    int vals[TEST_DOMAIN]; /* the map stores &vals[i] */
    size_t n, len;
};

/* Every key of the domain is found with its value, or absent; len agrees. */
static void
test_ref_check(const struct idmap *m, const struct test_ref *r)
{
    for (size_t i = 0; i < r->n; i++) {
        void *got = idmap_get(m, r->keys[i]);

        if (r->present[i])
            assert_ptr_equal(got, &r->vals[i]);
        else
            assert_null(got);
    }
    assert_int_equal(idmap_len(m), r->len);
}

/* Random puts (new and replacing) and deletes (present and absent). */
static void
test_churn(struct test_ref *r, int rounds, int check_every)
{
    struct idmap m;

    idmap_init(&m);
    for (int round = 0; round < rounds; round++) {
        size_t i = test_rng() % r->n;
        uint32_t op = test_rng() % 8;

        if (op < 4) {
            if (r->present[i]) {
                /* Replace with another pointer, then put the expected one back. */
                assert_int_equal(idmap_put(&m, r->keys[i], &r->len), 0);
                assert_ptr_equal(idmap_get(&m, r->keys[i]), &r->len);
                assert_int_equal(idmap_len(&m), r->len);
            } else {
                r->present[i] = 1;
                r->len++;
            }
            assert_int_equal(idmap_put(&m, r->keys[i], &r->vals[i]), 0);
        } else {
            void *got = idmap_del(&m, r->keys[i]);

            if (r->present[i]) {
                assert_ptr_equal(got, &r->vals[i]);
                r->present[i] = 0;
                r->len--;
            } else {
                assert_null(got);
            }
        }
        assert_ptr_equal(idmap_get(&m, r->keys[i]), r->present[i] ? &r->vals[i] : NULL);
        if (round % check_every == 0)
            test_ref_check(&m, r);
    }
    test_ref_check(&m, r);
    /* Empty it completely, checking the others after each delete. */
    for (size_t i = 0; i < r->n; i++) {
        if (!r->present[i])
            continue;
        assert_ptr_equal(idmap_del(&m, r->keys[i]), &r->vals[i]);
        r->present[i] = 0;
        r->len--;
        test_ref_check(&m, r);
    }
    assert_int_equal(idmap_len(&m), 0);
    idmap_fini(&m);
}

static void
test_idmap_empty(void **state)
{
    struct idmap m;
    size_t pos = 0;

    idmap_init(&m);
    assert_int_equal(idmap_len(&m), 0);
    assert_null(idmap_get(&m, 0));
    assert_null(idmap_get(&m, 12345));
    assert_null(idmap_del(&m, 12345));
    assert_null(idmap_next(&m, &pos, NULL));
    idmap_fini(&m);
    idmap_fini(&m); /* twice is harmless */
}

static void
test_idmap_put_get_replace_del(void **state)
{
    int a, b, c;
    struct idmap m;

    idmap_init(&m);
    assert_int_equal(idmap_put(&m, 7, &a), 0);
    assert_ptr_equal(idmap_get(&m, 7), &a);
    assert_null(idmap_get(&m, 8));
    assert_int_equal(idmap_len(&m), 1);

    /* Replace: same key, new value, no new entry. */
    assert_int_equal(idmap_put(&m, 7, &b), 0);
    assert_ptr_equal(idmap_get(&m, 7), &b);
    assert_int_equal(idmap_len(&m), 1);

    /* 0 and UINT64_MAX are ordinary keys. */
    assert_int_equal(idmap_put(&m, 0, &c), 0);
    assert_int_equal(idmap_put(&m, UINT64_MAX, &a), 0);
    assert_ptr_equal(idmap_get(&m, 0), &c);
    assert_ptr_equal(idmap_get(&m, UINT64_MAX), &a);
    assert_int_equal(idmap_len(&m), 3);

    assert_ptr_equal(idmap_del(&m, 7), &b);
    assert_null(idmap_get(&m, 7));
    assert_null(idmap_del(&m, 7));
    assert_int_equal(idmap_len(&m), 2);
    assert_ptr_equal(idmap_del(&m, 0), &c);
    assert_null(idmap_get(&m, 0));
    assert_ptr_equal(idmap_get(&m, UINT64_MAX), &a);
    assert_ptr_equal(idmap_del(&m, UINT64_MAX), &a);
    assert_int_equal(idmap_len(&m), 0);

    /* Usable again after it emptied. */
    assert_int_equal(idmap_put(&m, 7, &c), 0);
    assert_ptr_equal(idmap_get(&m, 7), &c);
    idmap_fini(&m);
    assert_null(idmap_get(&m, 7));
    assert_int_equal(idmap_len(&m), 0);
}

/* Keys that differ only in high bits: k << 32 and k << 48, plus small ones. */
static void
test_idmap_churn_high_bit_keys(void **state)
{
    static struct test_ref r;

    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < TEST_DOMAIN; i++) {
        if (i % 3 == 0)
            r.keys[i] = (uint64_t)(i / 3 + 1) << 32;
        else if (i % 3 == 1)
            r.keys[i] = (uint64_t)(i / 3 + 1) << 48;
        else
            r.keys[i] = i / 3;
    }
    r.n = TEST_DOMAIN;
    test_rng_seed(0x1d0001);
    test_churn(&r, 20000, 37);
}

/*
 * Keys whose home slots in a 64-slot table are 61, 62, 63, 0 and 1: one long
 * probe run that wraps around the end of the table. At most 39 keys, so the
 * table stays at 64 slots (it grows past a load of 5/8).
 */
static void
test_idmap_churn_wrapping_cluster(void **state)
{
    static const size_t homes[] = {61, 62, 63, 0, 1};
    static struct test_ref r;
    size_t per_home[5] = {0};
    uint64_t k;

    memset(&r, 0, sizeof(r));
    for (k = 1; r.n < 36; k++) {
        size_t home = (size_t)(test_mix(k) & 63);

        for (size_t h = 0; h < 5; h++) {
            if (home == homes[h] && per_home[h] < 8) {
                per_home[h]++;
                r.keys[r.n++] = k;
            }
        }
    }
    test_rng_seed(0x1d0002);
    test_churn(&r, 20000, 1);
}

/* A full wrap-around cluster; delete each key in turn from a fresh copy. */
static void
test_idmap_delete_each_from_full_cluster(void **state)
{
    uint64_t keys[36];
    int vals[36];
    size_t n = 0;
    uint64_t k;

    for (k = 1; n < 36; k++) {
        size_t home = (size_t)(test_mix(k) & 63);

        if (home >= 60 || home <= 2)
            keys[n++] = k;
    }
    for (size_t victim = 0; victim < n; victim++) {
        struct idmap m;

        idmap_init(&m);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(idmap_put(&m, keys[i], &vals[i]), 0);
        assert_int_equal(m.cap, 64);
        assert_ptr_equal(idmap_del(&m, keys[victim]), &vals[victim]);
        for (size_t i = 0; i < n; i++)
            assert_ptr_equal(idmap_get(&m, keys[i]), i == victim ? NULL : &vals[i]);
        assert_int_equal(idmap_len(&m), n - 1);
        idmap_fini(&m);
    }
}

static void
test_idmap_iteration_visits_each_once(void **state)
{
    enum { N = 1000 };
    static int seen[N];
    struct idmap m;
    size_t pos = 0, count = 0;
    uint64_t key;
    int *v;

    memset(seen, 0, sizeof(seen));
    idmap_init(&m);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(idmap_put(&m, (uint64_t)i * 0x10000 + 3, &seen[i]), 0);
    /* Replacing and deleting before iterating must not leave ghosts. */
    assert_int_equal(idmap_put(&m, 3, &seen[0]), 0);
    for (size_t i = 0; i < N; i += 10)
        assert_ptr_equal(idmap_del(&m, (uint64_t)i * 0x10000 + 3), &seen[i]);
    while ((v = idmap_next(&m, &pos, &key)) != NULL) {
        size_t i = (size_t)(v - seen);

        assert_true(i < N);
        assert_int_not_equal(i % 10, 0);
        assert_int_equal(key, (uint64_t)i * 0x10000 + 3);
        seen[i]++;
        count++;
    }
    assert_int_equal(count, idmap_len(&m));
    assert_int_equal(count, N - N / 10);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(seen[i], i % 10 == 0 ? 0 : 1);
    /* At the end it stays at the end; a NULL key pointer is allowed. */
    assert_null(idmap_next(&m, &pos, &key));
    pos = 0;
    count = 0;
    while (idmap_next(&m, &pos, NULL) != NULL)
        count++;
    assert_int_equal(count, N - N / 10);
    idmap_fini(&m);
}

static void
test_idmap_growth(void **state)
{
    enum { N = 100000 };
    static char vals[N];
    struct idmap m;

    idmap_init(&m);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(idmap_put(&m, i + 1, &vals[i]), 0);
        assert_int_equal(idmap_len(&m), i + 1);
        /* The table is a power of two and never full. */
        assert_int_equal(m.cap & (m.cap - 1), 0);
        assert_true(m.len < m.cap);
    }
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(idmap_get(&m, i + 1), &vals[i]);
    assert_null(idmap_get(&m, 0));
    assert_null(idmap_get(&m, N + 1));
    for (size_t i = 0; i < N; i += 2)
        assert_ptr_equal(idmap_del(&m, i + 1), &vals[i]);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(idmap_get(&m, i + 1), i % 2 ? &vals[i] : NULL);
    assert_int_equal(idmap_len(&m), N / 2);
    idmap_fini(&m);
}

static void
test_idmap_hash_bytes(void **state)
{
    static const char *names[] = {"",        "a",       "b",        "ab",     "ba",
                                  "default", "Default", "default ", "queue1", "queue2",
                                  "q",       "emails",  "emails2"};
    size_t n = sizeof(names) / sizeof(names[0]);

    /* 64-bit FNV-1a reference values. */
    assert_true(idmap_hash_bytes("", 0) == 0xcbf29ce484222325ULL);
    assert_true(idmap_hash_bytes("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(idmap_hash_bytes("foobar", 6) == 0x85944171f73967e8ULL);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = idmap_hash_bytes(names[i], strlen(names[i]));
        char copy[16];

        /* Deterministic, and it depends on the bytes, not the pointer. */
        memcpy(copy, names[i], strlen(names[i]));
        assert_true(h == idmap_hash_bytes(copy, strlen(names[i])));
        for (size_t j = i + 1; j < n; j++)
            assert_true(h != idmap_hash_bytes(names[j], strlen(names[j])));
    }
    /* Only len bytes count. */
    assert_true(idmap_hash_bytes("default", 3) == idmap_hash_bytes("def", 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_empty),
        cmocka_unit_test(test_idmap_put_get_replace_del),
        cmocka_unit_test(test_idmap_churn_high_bit_keys),
        cmocka_unit_test(test_idmap_churn_wrapping_cluster),
        cmocka_unit_test(test_idmap_delete_each_from_full_cluster),
        cmocka_unit_test(test_idmap_iteration_visits_each_once),
        cmocka_unit_test(test_idmap_growth),
        cmocka_unit_test(test_idmap_hash_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
