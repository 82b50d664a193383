/*
 * test_frame.c — unit tests for proto/frame.c: the 4-byte length header and
 * the streaming frame reader.
 *
 * The reader is fed the same multi-frame stream cut in every way we can
 * think of (one piece, byte by byte, every two-way split, pseudo-random
 * splits from a fixed seed, the space/commit path) and must yield the same
 * frames each time. Bad headers must be refused as soon as their 4 bytes are
 * in, before the buffer grows toward the announced size, and the error must
 * stick.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forq.h"
#include "frame.h"

#define TEST_MAX_BODY  (64 * 1024)
#define TEST_NFRAMES   6
#define TEST_SMALL_CAP 4096 /* the reader's first allocation; never more for a bad header */

/* The bodies of the test stream; sizes chosen to cross the reader's first allocation. */
static const size_t test_sizes[TEST_NFRAMES] = {1, 2, 300, 4093, 5000, 17};

struct test_stream {
    uint8_t *bytes; /* all frames, headers included */
    size_t len;
    size_t off[TEST_NFRAMES]; /* where each body starts in bytes */
};

/* Frames collected from a reader, copied out. */
struct test_got {
    size_t n;
    size_t len[TEST_NFRAMES + 1];
    uint8_t *body[TEST_NFRAMES + 1];
};

static void
test_stream_build(struct test_stream *s)
{
    size_t i, j, pos = 0;

    s->len = 0;
    for (i = 0; i < TEST_NFRAMES; i++)
        s->len += FRAME_HDR_LEN + test_sizes[i];
    s->bytes = malloc(s->len);
    assert_non_null(s->bytes);
    for (i = 0; i < TEST_NFRAMES; i++) {
        frame_hdr_encode(s->bytes + pos, (uint32_t)test_sizes[i]);
        pos += FRAME_HDR_LEN;
        s->off[i] = pos;
        /* Distinct content per frame, so a mix-up between frames shows. */
        for (j = 0; j < test_sizes[i]; j++)
            s->bytes[pos + j] = (uint8_t)(i * 31 + j * 7);
        pos += test_sizes[i];
    }
    assert_int_equal(pos, s->len);
}

static void
test_got_clear(struct test_got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->body[i]);
    memset(g, 0, sizeof(*g));
}

/* Take every complete frame out of the reader. */
static void
test_drain(struct frame_reader *r, struct test_got *g)
{
    const uint8_t *body;
    size_t len;

    for (;;) {
        assert_int_equal(frame_reader_next(r, &body, &len), 0);
        if (body == NULL) {
            assert_int_equal(len, 0);
            return;
        }
        assert_true(g->n < TEST_NFRAMES);
        g->body[g->n] = malloc(len);
        assert_non_null(g->body[g->n]);
        memcpy(g->body[g->n], body, len);
        g->len[g->n] = len;
        g->n++;
    }
}

static void
test_got_check(const struct test_stream *s, const struct test_got *g)
{
    assert_int_equal(g->n, TEST_NFRAMES);
    for (size_t i = 0; i < TEST_NFRAMES; i++) {
        assert_int_equal(g->len[i], test_sizes[i]);
        assert_memory_equal(g->body[i], s->bytes + s->off[i], test_sizes[i]);
    }
}

/* Feed the stream in pieces ending at cuts[0..ncuts) (increasing), then the rest. */
static void
test_feed_cuts(const struct test_stream *s, const size_t *cuts, size_t ncuts)
{
    struct frame_reader r;
    struct test_got g;
    size_t i, from = 0;

    memset(&g, 0, sizeof(g));
    frame_reader_init(&r, TEST_MAX_BODY);
    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : s->len;

        assert_true(to >= from);
        assert_int_equal(frame_reader_feed(&r, s->bytes + from, to - from), 0);
        test_drain(&r, &g);
        from = to;
    }
    test_got_check(s, &g);
    /* Nothing may be left over once the whole stream is consumed. */
    assert_int_equal(r.len - r.off, 0);
    test_got_clear(&g);
    frame_reader_fini(&r);
}

/* ------------------------------------------------------------------ header */

static void
test_hdr_encode_is_big_endian(void **state)
{
    uint8_t h[FRAME_HDR_LEN];

    frame_hdr_encode(h, 0x01020304u);
    assert_int_equal(h[0], 0x01);
    assert_int_equal(h[1], 0x02);
    assert_int_equal(h[2], 0x03);
    assert_int_equal(h[3], 0x04);
    frame_hdr_encode(h, 0xfffffffeu);
    assert_int_equal(h[0], 0xff);
    assert_int_equal(h[3], 0xfe);
    frame_hdr_encode(h, 5);
    assert_int_equal(h[0] | h[1] | h[2], 0);
    assert_int_equal(h[3], 5);
}

static void
test_hdr_roundtrip(void **state)
{
    static const uint32_t lens[] = {1, 0x7f, 0x80, 0xff, 0x100, 0x10000, 0x1110000, 0xffffffffu};
    uint8_t h[FRAME_HDR_LEN];
    uint32_t n;

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        frame_hdr_encode(h, lens[i]);
        n = 12345;
        assert_int_equal(frame_hdr_decode(h, 0xffffffffu, &n), 0);
        assert_int_equal(n, lens[i]);
    }
}

static void
test_hdr_zero_is_protocol(void **state)
{
    static const uint8_t h[FRAME_HDR_LEN] = {0, 0, 0, 0};
    uint32_t n = 99;

    assert_int_equal(frame_hdr_decode(h, TEST_MAX_BODY, &n), FORQ_ERR_PROTOCOL);
    assert_int_equal(n, 0);
}

static void
test_hdr_limit_boundary(void **state)
{
    uint8_t h[FRAME_HDR_LEN];
    uint32_t n;

    frame_hdr_encode(h, TEST_MAX_BODY);
    assert_int_equal(frame_hdr_decode(h, TEST_MAX_BODY, &n), 0);
    assert_int_equal(n, TEST_MAX_BODY);

    frame_hdr_encode(h, TEST_MAX_BODY + 1);
    n = 99;
    assert_int_equal(frame_hdr_decode(h, TEST_MAX_BODY, &n), FORQ_ERR_TOO_BIG);
    assert_int_equal(n, 0);

    frame_hdr_encode(h, 0xffffffffu);
    assert_int_equal(frame_hdr_decode(h, TEST_MAX_BODY, &n), FORQ_ERR_TOO_BIG);
    /* The daemon's default: 1 MiB + 64 KiB of body. */
    frame_hdr_encode(h, 1114112);
    assert_int_equal(frame_hdr_decode(h, 1114112, &n), 0);
    frame_hdr_encode(h, 1114113);
    assert_int_equal(frame_hdr_decode(h, 1114112, &n), FORQ_ERR_TOO_BIG);
}

/* ------------------------------------------------------------------ reader splits */

static void
test_reader_one_piece(void **state)
{
    struct test_stream s;

    test_stream_build(&s);
    test_feed_cuts(&s, NULL, 0);
    free(s.bytes);
}

static void
test_reader_byte_by_byte(void **state)
{
    struct test_stream s;
    size_t *cuts, i;

    test_stream_build(&s);
    cuts = malloc(s.len * sizeof(*cuts));
    assert_non_null(cuts);
    for (i = 0; i + 1 < s.len; i++)
        cuts[i] = i + 1;
    test_feed_cuts(&s, cuts, s.len - 1);
    free(cuts);
    free(s.bytes);
}

static void
test_reader_every_two_way_split(void **state)
{
    struct test_stream s;
    size_t cut;

    test_stream_build(&s);
    for (cut = 0; cut <= s.len; cut++)
        test_feed_cuts(&s, &cut, 1);
    free(s.bytes);
}

/* A small LCG, so that the "random" splits are the same on every run. */
static uint32_t
test_rand(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

static void
test_reader_random_splits(void **state)
{
    struct test_stream s;
    uint32_t seed = 20240601;
    size_t cuts[64], n, pos, round;

    test_stream_build(&s);
    for (round = 0; round < 200; round++) {
        size_t maxstep = 1 + test_rand(&seed) % (round % 2 ? 64 : 4096);

        n = 0;
        pos = 0;
        while (n < 64) {
            pos += test_rand(&seed) % maxstep;
            if (pos >= s.len)
                break;
            cuts[n++] = pos;
        }
        test_feed_cuts(&s, cuts, n);
    }
    free(s.bytes);
}

/* The reader must also take frames through the zero-copy space/commit path. */
static void
test_reader_space_commit(void **state)
{
    struct frame_reader r;
    struct test_stream s;
    struct test_got g;
    uint32_t seed = 7;
    size_t pos = 0;

    test_stream_build(&s);
    memset(&g, 0, sizeof(g));
    frame_reader_init(&r, TEST_MAX_BODY);
    while (pos < s.len) {
        uint8_t *space;
        size_t room, n;

        assert_int_equal(frame_reader_space(&r, 1 + test_rand(&seed) % 100, &space, &room), 0);
        assert_non_null(space);
        assert_true(room >= 1);
        /* Like read(2): take at most what fits and what the "socket" has. */
        n = 1 + test_rand(&seed) % 700;
        if (n > room)
            n = room;
        if (n > s.len - pos)
            n = s.len - pos;
        memcpy(space, s.bytes + pos, n);
        frame_reader_commit(&r, n);
        pos += n;
        test_drain(&r, &g);
    }
    test_got_check(&s, &g);
    test_got_clear(&g);
    frame_reader_fini(&r);
    free(s.bytes);
}

/* Once a header is in, space() offers room for the whole rest of that frame. */
static void
test_reader_space_sizes_whole_frame(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t hdr[FRAME_HDR_LEN], *space;
    size_t room, len;

    frame_reader_init(&r, TEST_MAX_BODY);
    frame_hdr_encode(hdr, 20000);
    assert_int_equal(frame_reader_feed(&r, hdr, sizeof(hdr)), 0);
    assert_int_equal(frame_reader_space(&r, 1, &space, &room), 0);
    assert_true(room >= 20000);
    memset(space, 'x', 20000);
    /* commit clamps to what space() handed out. */
    frame_reader_commit(&r, 20000);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_non_null(body);
    assert_int_equal(len, 20000);
    assert_int_equal(body[0], 'x');
    assert_int_equal(body[19999], 'x');
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_null(body);
    frame_reader_fini(&r);
}

/*
 * Bug: space() with want == 0 on a fresh reader returned NULL + 0 (undefined
 * behaviour; UBSan under clang aborts) and no room at all.
 */
static void
test_reader_space_zero_want(void **state)
{
    struct frame_reader r;
    uint8_t *space;
    size_t room;

    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_space(&r, 0, &space, &room), 0);
    assert_non_null(space);
    assert_true(room > 0);
    frame_reader_commit(&r, 0);
    assert_int_equal(r.len, 0);
    frame_reader_fini(&r);
}

static void
test_reader_commit_clamps_to_room(void **state)
{
    struct frame_reader r;
    uint8_t *space;
    size_t room;

    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_space(&r, 10, &space, &room), 0);
    frame_reader_commit(&r, room + 1000);
    assert_int_equal(r.len, r.cap);
    frame_reader_fini(&r);
}

/* A partial frame is not a frame: nothing comes out until the last byte. */
static void
test_reader_truncated_frame_waits(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t frame[FRAME_HDR_LEN + 10];
    size_t len;

    frame_hdr_encode(frame, 10);
    memset(frame + FRAME_HDR_LEN, 'a', 10);
    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_feed(&r, frame, sizeof(frame) - 1), 0);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_null(body);
    assert_int_equal(len, 0);
    assert_int_equal(frame_reader_feed(&r, frame + sizeof(frame) - 1, 1), 0);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_non_null(body);
    assert_int_equal(len, 10);
    frame_reader_fini(&r);
}

/* ------------------------------------------------------------------ bad headers */

static void
test_reader_oversize_rejected_at_fourth_byte(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t hdr[FRAME_HDR_LEN], *space;
    size_t len, room;
    int i;

    frame_hdr_encode(hdr, 0x7fffffffu);
    frame_reader_init(&r, TEST_MAX_BODY);
    for (i = 0; i < FRAME_HDR_LEN - 1; i++)
        assert_int_equal(frame_reader_feed(&r, hdr + i, 1), 0);
    assert_int_equal(frame_reader_feed(&r, hdr + 3, 1), FORQ_ERR_TOO_BIG);
    assert_true(r.cap <= TEST_SMALL_CAP);
    assert_int_equal(frame_reader_next(&r, &body, &len), FORQ_ERR_TOO_BIG);
    assert_null(body);
    /* space() must not size the buffer for the announced frame either. */
    assert_int_equal(frame_reader_space(&r, 1, &space, &room), FORQ_ERR_TOO_BIG);
    assert_null(space);
    assert_int_equal(room, 0);
    assert_true(r.cap <= TEST_SMALL_CAP);
    frame_reader_fini(&r);
}

static void
test_reader_oversize_via_commit(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t *space;
    size_t len, room;

    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_space(&r, FRAME_HDR_LEN, &space, &room), 0);
    frame_hdr_encode(space, TEST_MAX_BODY + 1);
    frame_reader_commit(&r, FRAME_HDR_LEN);
    assert_int_equal(frame_reader_next(&r, &body, &len), FORQ_ERR_TOO_BIG);
    assert_int_equal(frame_reader_space(&r, 1, &space, &room), FORQ_ERR_TOO_BIG);
    assert_true(r.cap <= TEST_SMALL_CAP);
    frame_reader_fini(&r);
}

/* A bad header behind a good frame: the good frame still comes out first. */
static void
test_reader_bad_header_after_good_frame(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t buf[FRAME_HDR_LEN + 3 + FRAME_HDR_LEN];
    size_t len;

    frame_hdr_encode(buf, 3);
    memcpy(buf + FRAME_HDR_LEN, "abc", 3);
    frame_hdr_encode(buf + FRAME_HDR_LEN + 3, 0xffffffffu);
    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_feed(&r, buf, sizeof(buf)), 0);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_non_null(body);
    assert_int_equal(len, 3);
    assert_memory_equal(body, "abc", 3);
    assert_int_equal(frame_reader_next(&r, &body, &len), FORQ_ERR_TOO_BIG);
    assert_null(body);
    assert_int_equal(frame_reader_feed(&r, "x", 1), FORQ_ERR_TOO_BIG);
    frame_reader_fini(&r);
}

static void
test_reader_zero_length_is_sticky(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t zero[FRAME_HDR_LEN] = {0, 0, 0, 0}, good[FRAME_HDR_LEN + 1];
    uint8_t *space;
    size_t len, room;

    frame_hdr_encode(good, 1);
    good[FRAME_HDR_LEN] = 0x80;
    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_feed(&r, zero, sizeof(zero)), FORQ_ERR_PROTOCOL);
    assert_int_equal(r.err, FORQ_ERR_PROTOCOL);
    /* Nothing resynchronises the stream: every later call reports the error. */
    assert_int_equal(frame_reader_feed(&r, good, sizeof(good)), FORQ_ERR_PROTOCOL);
    assert_int_equal(frame_reader_next(&r, &body, &len), FORQ_ERR_PROTOCOL);
    assert_null(body);
    assert_int_equal(frame_reader_next(&r, &body, &len), FORQ_ERR_PROTOCOL);
    assert_int_equal(frame_reader_space(&r, 16, &space, &room), FORQ_ERR_PROTOCOL);
    assert_null(space);
    frame_reader_fini(&r);
}

static void
test_reader_fini_then_reinit(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    uint8_t frame[FRAME_HDR_LEN + 2];
    size_t len;

    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_feed(&r, "\0\0\0\0", 4), FORQ_ERR_PROTOCOL);
    frame_reader_fini(&r);
    assert_null(r.buf);
    assert_int_equal(r.err, 0);
    frame_reader_fini(&r); /* twice is harmless */

    frame_reader_init(&r, TEST_MAX_BODY);
    frame_hdr_encode(frame, 2);
    frame[4] = 0x80;
    frame[5] = 0x80;
    assert_int_equal(frame_reader_feed(&r, frame, sizeof(frame)), 0);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_int_equal(len, 2);
    frame_reader_fini(&r);
}

/* Feeding nothing is allowed and changes nothing. */
static void
test_reader_feed_empty(void **state)
{
    struct frame_reader r;
    const uint8_t *body;
    size_t len;

    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_feed(&r, NULL, 0), 0);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_null(body);
    frame_reader_fini(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_encode_is_big_endian),
        cmocka_unit_test(test_hdr_roundtrip),
        cmocka_unit_test(test_hdr_zero_is_protocol),
        cmocka_unit_test(test_hdr_limit_boundary),
        cmocka_unit_test(test_reader_one_piece),
        cmocka_unit_test(test_reader_byte_by_byte),
        cmocka_unit_test(test_reader_every_two_way_split),
        cmocka_unit_test(test_reader_random_splits),
        cmocka_unit_test(test_reader_space_commit),
        cmocka_unit_test(test_reader_space_sizes_whole_frame),
        cmocka_unit_test(test_reader_space_zero_want),
        cmocka_unit_test(test_reader_commit_clamps_to_room),
        cmocka_unit_test(test_reader_truncated_frame_waits),
        cmocka_unit_test(test_reader_oversize_rejected_at_fourth_byte),
        cmocka_unit_test(test_reader_oversize_via_commit),
        cmocka_unit_test(test_reader_bad_header_after_good_frame),
        cmocka_unit_test(test_reader_zero_length_is_sticky),
        cmocka_unit_test(test_reader_fini_then_reinit),
        cmocka_unit_test(test_reader_feed_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
