/*
 * test_mpscan.c — unit tests for proto/mpscan.c, the allocation-free
 * structural check that runs before msgpack-c sees a message.
 *
 * Every msgpack type must be accepted whole and refused when cut short; the
 * depth and item limits must hold at their exact boundaries; counts that
 * cannot fit in the remaining bytes must be refused without reading further;
 * mpscan_map_uint must find only top-level keys and only integer values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forq.h"
#include "mpscan.h"

#define TEST_DEPTH 8
#define TEST_ITEMS 1000

struct test_value {
    const char *what;
    uint8_t bytes[32];
    size_t len;
};

#define V(w, ...)                                                                                  \
    {                                                                                              \
        w, {__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})                                   \
    }

/* One of each msgpack format, well formed. */
static const struct test_value test_values[] = {
    V("positive fixint", 0x05),
    V("negative fixint", 0xe0),
    V("nil", 0xc0),
    V("false", 0xc2),
    V("true", 0xc3),
    V("uint8", 0xcc, 0xff),
    V("uint16", 0xcd, 0x01, 0x00),
    V("uint32", 0xce, 0, 0, 1, 0),
    V("uint64", 0xcf, 0, 0, 0, 0, 0, 0, 1, 0),
    V("int8", 0xd0, 0x80),
    V("int16", 0xd1, 0x80, 0x00),
    V("int32", 0xd2, 0x80, 0, 0, 0),
    V("int64", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0),
    V("float32", 0xca, 0x3f, 0x80, 0, 0),
    V("float64", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0),
    V("fixstr", 0xa3, 'a', 'b', 'c'),
    V("empty fixstr", 0xa0),
    V("str8", 0xd9, 2, 'h', 'i'),
    V("str16", 0xda, 0, 2, 'h', 'i'),
    V("str32", 0xdb, 0, 0, 0, 2, 'h', 'i'),
    V("bin8", 0xc4, 3, 1, 2, 3),
    V("bin16", 0xc5, 0, 1, 9),
    V("bin32", 0xc6, 0, 0, 0, 1, 9),
    V("fixext1", 0xd4, 0x01, 0xaa),
    V("fixext2", 0xd5, 0x01, 0xaa, 0xbb),
    V("fixext4", 0xd6, 0xff, 1, 2, 3, 4),
    V("fixext8", 0xd7, 0x02, 1, 2, 3, 4, 5, 6, 7, 8),
    V("fixext16", 0xd8, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
    V("ext8", 0xc7, 2, 0x05, 0xaa, 0xbb),
    V("ext8 empty", 0xc7, 0, 0x05),
    V("ext16", 0xc8, 0, 1, 0x05, 0xaa),
    V("ext32", 0xc9, 0, 0, 0, 1, 0x05, 0xaa),
    V("fixarray", 0x92, 0x01, 0xc0),
    V("empty fixarray", 0x90),
    V("array16", 0xdc, 0, 2, 0x01, 0x02),
    V("array32", 0xdd, 0, 0, 0, 1, 0xc3),
    V("fixmap", 0x81, 0xa1, 'k', 0x01),
    V("empty fixmap", 0x80),
    V("map16", 0xde, 0, 1, 0xa1, 'k', 0x90),
    V("map32", 0xdf, 0, 0, 0, 1, 0x01, 0x02),
    V("map with ext values", 0x82, 0xa1, 'a', 0xd4, 1, 2, 0xa1, 'b', 0xc7, 1, 9, 0xff),
};
#define TEST_NVALUES (sizeof(test_values) / sizeof(test_values[0]))

static int
test_check(const uint8_t *b, size_t n, unsigned depth, size_t items)
{
    const char *why = "unset";
    int e;

    e = mpscan_check(b, n, depth, items, &why);
    if (e == 0)
        assert_null(why);
    else
        assert_true(why != NULL && why[0] != '\0');
    return e;
}

/* ------------------------------------------------------------------ formats */

static void
test_every_format_accepted(void **state)
{
    for (size_t i = 0; i < TEST_NVALUES; i++) {
        const struct test_value *v = &test_values[i];

        if (test_check(v->bytes, v->len, TEST_DEPTH, TEST_ITEMS) != 0)
            fail_msg("%s refused", v->what);
    }
}

static void
test_every_prefix_refused(void **state)
{
    for (size_t i = 0; i < TEST_NVALUES; i++) {
        const struct test_value *v = &test_values[i];

        for (size_t n = 0; n < v->len; n++)
            if (test_check(v->bytes, n, TEST_DEPTH, TEST_ITEMS) != FORQ_ERR_PROTOCOL)
                fail_msg("%s cut to %zu bytes accepted", v->what, n);
    }
}

static void
test_trailing_byte_refused(void **state)
{
    uint8_t buf[64];

    for (size_t i = 0; i < TEST_NVALUES; i++) {
        const struct test_value *v = &test_values[i];

        memcpy(buf, v->bytes, v->len);
        buf[v->len] = 0xc0;
        if (test_check(buf, v->len + 1, TEST_DEPTH, TEST_ITEMS) != FORQ_ERR_PROTOCOL)
            fail_msg("%s with a trailing byte accepted", v->what);
    }
}

static void
test_reserved_c1_refused(void **state)
{
    static const uint8_t alone[] = {0xc1};
    static const uint8_t in_map[] = {0x81, 0xa1, 'k', 0xc1};
    const char *why;

    assert_int_equal(mpscan_check(alone, sizeof(alone), TEST_DEPTH, TEST_ITEMS, &why),
                     FORQ_ERR_PROTOCOL);
    assert_non_null(strstr(why, "0xc1"));
    assert_int_equal(test_check(in_map, sizeof(in_map), TEST_DEPTH, TEST_ITEMS), FORQ_ERR_PROTOCOL);
}

static void
test_lengths_past_the_end_refused(void **state)
{
    static const uint8_t str8[] = {0xd9, 5, 'a', 'b'};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t bin32[] = {0xc6, 0x80, 0, 0, 0};
    static const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t fixstr[] = {0xbf, 'a'};

    assert_int_equal(test_check(str8, sizeof(str8), 8, 8), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check(str32, sizeof(str32), 8, 8), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check(bin32, sizeof(bin32), 8, 8), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check(ext32, sizeof(ext32), 8, 8), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check(fixstr, sizeof(fixstr), 8, 8), FORQ_ERR_PROTOCOL);
}

static void
test_empty_input_refused(void **state)
{
    assert_int_equal(test_check((const uint8_t *)"", 0, TEST_DEPTH, TEST_ITEMS), FORQ_ERR_PROTOCOL);
}

/* ------------------------------------------------------------------ limits */

/* n nested one-element arrays around a nil: depth n. */
static uint8_t *
test_nested(size_t n, size_t *len)
{
    uint8_t *b = malloc(n + 1);

    assert_non_null(b);
    memset(b, 0x91, n);
    b[n] = 0xc0;
    *len = n + 1;
    return b;
}

static void
test_max_depth_boundary(void **state)
{
    size_t len;
    uint8_t *b;

    for (unsigned d = 1; d <= 20; d++) {
        b = test_nested(d, &len);
        assert_int_equal(test_check(b, len, d, TEST_ITEMS), 0);
        assert_int_equal(test_check(b, len, d - 1, TEST_ITEMS), FORQ_ERR_PROTOCOL);
        free(b);
    }
    /* Depth 0 allows scalars only; an empty container still counts as a level. */
    assert_int_equal(test_check((const uint8_t[]){0x01}, 1, 0, TEST_ITEMS), 0);
    assert_int_equal(test_check((const uint8_t[]){0x90}, 1, 0, TEST_ITEMS), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check((const uint8_t[]){0x80}, 1, 0, TEST_ITEMS), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check((const uint8_t[]){0x91, 0x90}, 2, 1, TEST_ITEMS),
                     FORQ_ERR_PROTOCOL);
}

/* Depth is counted per branch: siblings do not add up. */
static void
test_depth_is_per_branch(void **state)
{
    /* [[1], [2], {a: [3]}]: depth 3 */
    static const uint8_t b[] = {0x93, 0x91, 0x01, 0x91, 0x02, 0x81, 0xa1, 'a', 0x91, 0x03};

    assert_int_equal(test_check(b, sizeof(b), 3, TEST_ITEMS), 0);
    assert_int_equal(test_check(b, sizeof(b), 2, TEST_ITEMS), FORQ_ERR_PROTOCOL);
}

/* Whatever max_depth the caller asks for, 64 is the ceiling (the stack is fixed). */
static void
test_depth_hard_ceiling(void **state)
{
    size_t len;
    uint8_t *b;

    b = test_nested(64, &len);
    assert_int_equal(test_check(b, len, 1000, TEST_ITEMS), 0);
    free(b);
    b = test_nested(65, &len);
    assert_int_equal(test_check(b, len, 1000, TEST_ITEMS), FORQ_ERR_PROTOCOL);
    free(b);
    b = test_nested(100000, &len);
    assert_int_equal(test_check(b, len, 1000, 1000000), FORQ_ERR_PROTOCOL);
    free(b);
}

static void
test_max_items_boundary(void **state)
{
    uint8_t arr[3 + 100], map[3 + 200];
    size_t i;

    /* array16 of 100 nils: 100 items */
    arr[0] = 0xdc;
    arr[1] = 0;
    arr[2] = 100;
    memset(arr + 3, 0xc0, 100);
    assert_int_equal(test_check(arr, sizeof(arr), 1, 100), 0);
    assert_int_equal(test_check(arr, sizeof(arr), 1, 99), FORQ_ERR_PROTOCOL);

    /* map16 of 100 entries: 200 items (a key and a value each) */
    map[0] = 0xde;
    map[1] = 0;
    map[2] = 100;
    for (i = 0; i < 100; i++) {
        map[3 + 2 * i] = (uint8_t)i; /* fixint keys 0..99 */
        map[4 + 2 * i] = 0xc0;
    }
    assert_int_equal(test_check(map, sizeof(map), 1, 200), 0);
    assert_int_equal(test_check(map, sizeof(map), 1, 199), FORQ_ERR_PROTOCOL);
}

/* Items are totalled over every container in the message, not per container. */
static void
test_max_items_counts_all_containers(void **state)
{
    /* [[1,2],[3,4]]: 2 + 2 + 2 = 6 items */
    static const uint8_t b[] = {0x92, 0x92, 0x01, 0x02, 0x92, 0x03, 0x04};

    assert_int_equal(test_check(b, sizeof(b), 4, 6), 0);
    assert_int_equal(test_check(b, sizeof(b), 4, 5), FORQ_ERR_PROTOCOL);
}

static void
test_huge_counts_without_data(void **state)
{
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0x01, 0x02};
    static const uint8_t map16[] = {0xde, 0x00, 0x02, 0x01, 0x02, 0x03};
    /* {k: array32 of 2^32-1} */
    static const uint8_t nested[] = {0x81, 0xa1, 'k', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    const char *why;

    assert_int_equal(mpscan_check(arr32, sizeof(arr32), 8, (size_t)-1, &why), FORQ_ERR_PROTOCOL);
    assert_non_null(strstr(why, "count"));
    assert_int_equal(test_check(map32, sizeof(map32), 8, (size_t)-1), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check(arr16, sizeof(arr16), 8, (size_t)-1), FORQ_ERR_PROTOCOL);
    /* two map entries need 4 elements; only 3 bytes follow */
    assert_int_equal(test_check(map16, sizeof(map16), 8, (size_t)-1), FORQ_ERR_PROTOCOL);
    assert_int_equal(test_check(nested, sizeof(nested), 8, (size_t)-1), FORQ_ERR_PROTOCOL);
}

/* ------------------------------------------------------------------ mpscan_map_uint */

static int
test_map_uint(const uint8_t *b, size_t n, const char *key, uint64_t *v)
{
    const char *why;

    /* The contract requires a checked buffer; make sure the fixtures are. */
    assert_int_equal(mpscan_check(b, n, 8, 1000, &why), 0);
    *v = 0xdeadbeef;
    return mpscan_map_uint(b, n, key, v);
}

static void
test_map_uint_found(void **state)
{
    static const struct test_value cases[] = {
        V("fixint", 0x82, 0xa2, 'o', 'p', 0xa1, 'x', 0xa3, 'r', 'i', 'd', 0x07),
        V("uint8", 0x81, 0xa3, 'r', 'i', 'd', 0xcc, 0xc8),
        V("uint16", 0x81, 0xa3, 'r', 'i', 'd', 0xcd, 0x12, 0x34),
        V("uint32", 0x81, 0xa3, 'r', 'i', 'd', 0xce, 0x12, 0x34, 0x56, 0x78),
        V("uint64", 0x81, 0xa3, 'r', 'i', 'd', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff),
        /* msgpack-c reads non-negative signed integers as unsigned; so must we. */
        V("int8", 0x81, 0xa3, 'r', 'i', 'd', 0xd0, 0x05),
        V("int64", 0x81, 0xa3, 'r', 'i', 'd', 0xd3, 0, 0, 0, 0, 0, 0, 0x01, 0x00),
        V("str8 key", 0x81, 0xd9, 3, 'r', 'i', 'd', 0x09),
    };
    static const uint64_t want[] = {7, 200, 0x1234, 0x12345678, UINT64_MAX, 5, 256, 9};
    uint64_t v;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (test_map_uint(cases[i].bytes, cases[i].len, "rid", &v) != 0)
            fail_msg("%s: rid not found", cases[i].what);
        if (v != want[i])
            fail_msg("%s: got %llu", cases[i].what, (unsigned long long)v);
    }
}

/* The key is found after values of every shape, which must be skipped whole. */
static void
test_map_uint_skips_complex_values(void **state)
{
    /* clang-format off */
    static const uint8_t b[] = {
        0x85,
        /* a: [{rid: 1}, "rid"] */
        0xa1, 'a', 0x92, 0x81, 0xa3, 'r', 'i', 'd', 0x01, 0xa3, 'r', 'i', 'd',
        /* b: bin whose bytes look like a key */
        0xa1, 'b', 0xc4, 0x03, 0xa3, 'r', 'i',
        /* c: fixext4 */
        0xa1, 'c', 0xd6, 0x01, 0xa3, 'r', 'i', 'd',
        /* ri: a prefix of the key */
        0xa2, 'r', 'i', 0x05,
        /* rid: 42 */
        0xa3, 'r', 'i', 'd', 0x2a,
    };
    /* clang-format on */
    uint64_t v;

    assert_int_equal(test_map_uint(b, sizeof(b), "rid", &v), 0);
    assert_int_equal(v, 42);
}

static void
test_map_uint_not_found(void **state)
{
    /* {ridx: 1, ri: 2, a: {rid: 3}, 7: 4} — rid only nested, never at the top */
    static const uint8_t b[] = {0x84, 0xa4, 'r',  'i',  'd', 'x', 0x01, 0xa2, 'r',  'i', 0x02,
                                0xa1, 'a',  0x81, 0xa3, 'r', 'i', 'd',  0x03, 0x07, 0x04};
    static const uint8_t empty[] = {0x80};
    uint64_t v;

    assert_int_equal(test_map_uint(b, sizeof(b), "rid", &v), FORQ_ERR_NOT_FOUND);
    assert_int_equal(v, 0);
    assert_int_equal(test_map_uint(empty, sizeof(empty), "rid", &v), FORQ_ERR_NOT_FOUND);
    /* An empty key matches no key of the map. */
    assert_int_equal(test_map_uint(b, sizeof(b), "", &v), FORQ_ERR_NOT_FOUND);
}

static void
test_map_uint_wrong_type(void **state)
{
    static const struct test_value cases[] = {
        V("negative fixint", 0x81, 0xa3, 'r', 'i', 'd', 0xff),
        V("negative int8", 0x81, 0xa3, 'r', 'i', 'd', 0xd0, 0x80),
        V("negative int64", 0x81, 0xa3, 'r', 'i', 'd', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0),
        V("str", 0x81, 0xa3, 'r', 'i', 'd', 0xa1, '1'),
        V("nil", 0x81, 0xa3, 'r', 'i', 'd', 0xc0),
        V("float", 0x81, 0xa3, 'r', 'i', 'd', 0xca, 0x3f, 0x80, 0, 0),
        V("array", 0x81, 0xa3, 'r', 'i', 'd', 0x91, 0x01),
        V("top-level array", 0x92, 0xa3, 'r', 'i', 'd', 0x01),
        V("top-level int", 0x01),
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (test_map_uint(cases[i].bytes, cases[i].len, "rid", &v) != FORQ_ERR_BAD_REQUEST)
            fail_msg("%s: accepted", cases[i].what);
    assert_int_equal(mpscan_map_uint((const uint8_t *)"", 0, "rid", &v), FORQ_ERR_BAD_REQUEST);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format_accepted),
        cmocka_unit_test(test_every_prefix_refused),
        cmocka_unit_test(test_trailing_byte_refused),
        cmocka_unit_test(test_reserved_c1_refused),
        cmocka_unit_test(test_lengths_past_the_end_refused),
        cmocka_unit_test(test_empty_input_refused),
        cmocka_unit_test(test_max_depth_boundary),
        cmocka_unit_test(test_depth_is_per_branch),
        cmocka_unit_test(test_depth_hard_ceiling),
        cmocka_unit_test(test_max_items_boundary),
        cmocka_unit_test(test_max_items_counts_all_containers),
        cmocka_unit_test(test_huge_counts_without_data),
        cmocka_unit_test(test_map_uint_found),
        cmocka_unit_test(test_map_uint_skips_complex_values),
        cmocka_unit_test(test_map_uint_not_found),
        cmocka_unit_test(test_map_uint_wrong_type),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
