/*
 * fuzz_frame.c — libFuzzer target for the wire format: the frame reader and
 * the request and response decoders (proto/).
 *
 * The input is a byte stream as a peer would send it. It goes through a
 * frame_reader twice: once in one piece (the reference) and once cut in
 * pieces derived from the input itself (byte by byte, pseudo-random sizes,
 * or through frame_reader_space/commit); both must yield the same frames and
 * the same final error. Every frame body is then decoded as a request and as
 * a response to each op. What decodes is encoded again, decoded again and
 * compared field by field, and encoded a third time to check that the second
 * encoding is byte-identical to the first. Any difference aborts: that is a
 * finding.
 *
 * The same file is linked into fuzz_frame_replay (replay.c), which runs the
 * corpus as a regression test under any compiler.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forq.h"
#include "frame.h"
#include "msg.h"
#include "fuzz_util.h"

#define FUZZ_MAX_BODY 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Decoders live across inputs, as they do in a connection. */
struct fuzz_state {
    int ready;
    struct msg_decoder d1, d2, d3; /* first decode, re-decode, scratch */
    msgpack_sbuffer sb1, sb2;
};

static struct fuzz_state fuzz;

static void
fuzz_init(void)
{
    if (fuzz.ready)
        return;
    FUZZ_CHECK(msg_decoder_init(&fuzz.d1) == 0);
    FUZZ_CHECK(msg_decoder_init(&fuzz.d2) == 0);
    FUZZ_CHECK(msg_decoder_init(&fuzz.d3) == 0);
    msgpack_sbuffer_init(&fuzz.sb1);
    msgpack_sbuffer_init(&fuzz.sb2);
    fuzz.ready = 1;
}

static uint32_t
fuzz_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

/* ------------------------------------------------------------------ comparisons */

static int
fuzz_str_eq(struct msg_str a, struct msg_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Bytes fields also keep "present but empty" apart from "absent". */
static int
fuzz_bytes_eq(struct msg_str a, struct msg_str b)
{
    return (a.ptr == NULL) == (b.ptr == NULL) && fuzz_str_eq(a, b);
}

static int
fuzz_request_eq(const struct msg_request *a, const struct msg_request *b)
{
    if (a->op != b->op || a->rid != b->rid)
        return 0;
    switch (a->op) {
    case MSG_OP_HELLO:
        return a->u.hello.version == b->u.hello.version &&
               fuzz_str_eq(a->u.hello.token, b->u.hello.token) &&
               fuzz_str_eq(a->u.hello.client, b->u.hello.client);
    case MSG_OP_SUBMIT:
        return fuzz_str_eq(a->u.submit.task, b->u.submit.task) &&
               fuzz_bytes_eq(a->u.submit.payload, b->u.submit.payload) &&
               fuzz_str_eq(a->u.submit.queue, b->u.submit.queue) &&
               a->u.submit.priority == b->u.submit.priority &&
               a->u.submit.delay_ms == b->u.submit.delay_ms &&
               a->u.submit.timeout_ms == b->u.submit.timeout_ms &&
               a->u.submit.max_retries == b->u.submit.max_retries &&
               fuzz_str_eq(a->u.submit.unique_key, b->u.submit.unique_key);
    case MSG_OP_WAIT:
        return a->u.wait.id == b->u.wait.id && a->u.wait.timeout_ms == b->u.wait.timeout_ms;
    case MSG_OP_STATUS:
        return a->u.status.id == b->u.status.id;
    case MSG_OP_CANCEL:
        return a->u.cancel.id == b->u.cancel.id;
    case MSG_OP_PING:
    case MSG_OP_STATS:
        return 1;
    }
    return 0;
}

static int
fuzz_error_eq(const struct msg_error *a, const struct msg_error *b)
{
    return a->code == b->code && fuzz_str_eq(a->msg, b->msg);
}

static int
fuzz_job_eq(const struct msg_job *a, const struct msg_job *b)
{
    return a->id == b->id && a->state == b->state && fuzz_str_eq(a->task, b->task) &&
           fuzz_str_eq(a->queue, b->queue) && a->priority == b->priority &&
           a->attempts == b->attempts && a->created_us == b->created_us &&
           a->started_us == b->started_us && a->finished_us == b->finished_us &&
           a->worker_pid == b->worker_pid && a->result_size == b->result_size &&
           fuzz_bytes_eq(a->result, b->result) && fuzz_error_eq(&a->error, &b->error);
}

static int
fuzz_stats_eq(const struct msg_stats *a, const struct msg_stats *b)
{
    size_t i;

    if (!fuzz_str_eq(a->server, b->server) || a->uptime_ms != b->uptime_ms ||
        a->connections != b->connections || a->queued != b->queued || a->running != b->running ||
        a->submitted != b->submitted || a->succeeded != b->succeeded || a->failed != b->failed ||
        a->cancelled != b->cancelled || a->nqueues != b->nqueues || a->nworkers != b->nworkers)
        return 0;
    for (i = 0; i < a->nqueues; i++) {
        const struct msg_queue_stats *x = &a->queues[i], *y = &b->queues[i];

        if (!fuzz_str_eq(x->name, y->name) || x->queued != y->queued || x->running != y->running ||
            x->submitted != y->submitted || x->succeeded != y->succeeded ||
            x->failed != y->failed || x->cancelled != y->cancelled)
            return 0;
    }
    for (i = 0; i < a->nworkers; i++) {
        const struct msg_worker_stats *x = &a->workers[i], *y = &b->workers[i];

        if (x->slot != y->slot || x->pid != y->pid || !fuzz_str_eq(x->state, y->state) ||
            x->job != y->job || x->jobs_done != y->jobs_done || x->restarts != y->restarts)
            return 0;
    }
    return 1;
}

/* Parts that do not belong to the op stay zero on both sides, so compare all. */
static int
fuzz_response_eq(const struct msg_response *a, const struct msg_response *b)
{
    return a->rid == b->rid && fuzz_error_eq(&a->err, &b->err) &&
           a->hello.version == b->hello.version && fuzz_str_eq(a->hello.server, b->hello.server) &&
           a->hello.max_frame == b->hello.max_frame && a->id == b->id &&
           fuzz_job_eq(&a->job, &b->job) && fuzz_stats_eq(&a->stats, &b->stats);
}

/* ------------------------------------------------------------------ decoding */

/* sb must hold exactly one frame; return its body. */
static const uint8_t *
fuzz_frame_body(const msgpack_sbuffer *sb, size_t *len)
{
    uint32_t n;

    FUZZ_CHECK(sb->size > FRAME_HDR_LEN);
    FUZZ_CHECK(frame_hdr_decode((const uint8_t *)sb->data, UINT32_MAX, &n) == 0);
    FUZZ_CHECK((size_t)n == sb->size - FRAME_HDR_LEN);
    *len = n;
    return (const uint8_t *)sb->data + FRAME_HDR_LEN;
}

static int
fuzz_is_decode_error(int e)
{
    return e == FORQ_ERR_PROTOCOL || e == FORQ_ERR_BAD_REQUEST || e == FORQ_ERR_UNKNOWN_OP ||
           e == FORQ_ERR_NOMEM;
}

static void
fuzz_request(const uint8_t *body, size_t len)
{
    struct msg_request r1, r2;
    const uint8_t *b;
    uint64_t rid;
    size_t n;
    int e;

    e = msg_decode_request(&fuzz.d1, body, len, &r1);
    if (e != 0) {
        FUZZ_CHECK(fuzz_is_decode_error(e));
        FUZZ_CHECK(fuzz.d1.why[0] != '\0');
        /* A message that is not trusted has no rid. */
        FUZZ_CHECK(e != FORQ_ERR_PROTOCOL || r1.rid == 0);
        return;
    }
    FUZZ_CHECK(r1.op >= 0 && r1.op < MSG_OP__COUNT);
    FUZZ_CHECK(msg_peek_rid(body, len, &rid) == 0 && rid == r1.rid);

    msgpack_sbuffer_clear(&fuzz.sb1);
    FUZZ_CHECK(msg_encode_request(&fuzz.sb1, &r1) == 0);
    b = fuzz_frame_body(&fuzz.sb1, &n);
    FUZZ_CHECK(msg_decode_request(&fuzz.d2, b, n, &r2) == 0);
    FUZZ_CHECK(fuzz_request_eq(&r1, &r2));

    msgpack_sbuffer_clear(&fuzz.sb2);
    FUZZ_CHECK(msg_encode_request(&fuzz.sb2, &r2) == 0);
    FUZZ_CHECK(fuzz.sb1.size == fuzz.sb2.size &&
               memcmp(fuzz.sb1.data, fuzz.sb2.data, fuzz.sb1.size) == 0);
}

static void
fuzz_response(int op, const uint8_t *body, size_t len)
{
    struct msg_response r1, r2;
    const uint8_t *b;
    size_t n;
    int e;

    e = msg_decode_response(&fuzz.d1, op, body, len, &r1);
    if (e != 0) {
        FUZZ_CHECK(e == FORQ_ERR_PROTOCOL || e == FORQ_ERR_BAD_REQUEST || e == FORQ_ERR_NOMEM);
        FUZZ_CHECK(fuzz.d1.why[0] != '\0');
        return;
    }
    FUZZ_CHECK(r1.err.code <= 0);

    msgpack_sbuffer_clear(&fuzz.sb1);
    FUZZ_CHECK(msg_encode_response(&fuzz.sb1, op, &r1) == 0);
    b = fuzz_frame_body(&fuzz.sb1, &n);
    FUZZ_CHECK(msg_decode_response(&fuzz.d2, op, b, n, &r2) == 0);
    /* The one change the encoder makes on purpose: an error gets a text. */
    if (r1.err.code != 0 && r1.err.msg.len == 0)
        r1.err.msg = msg_str_c(forq_strerror(r1.err.code));
    FUZZ_CHECK(fuzz_response_eq(&r1, &r2));

    msgpack_sbuffer_clear(&fuzz.sb2);
    FUZZ_CHECK(msg_encode_response(&fuzz.sb2, op, &r2) == 0);
    FUZZ_CHECK(fuzz.sb1.size == fuzz.sb2.size &&
               memcmp(fuzz.sb1.data, fuzz.sb2.data, fuzz.sb1.size) == 0);
}

static void
fuzz_body(const uint8_t *body, size_t len)
{
    fuzz_request(body, len);
    for (int op = 0; op < MSG_OP__COUNT; op++)
        fuzz_response(op, body, len);
}

/* ------------------------------------------------------------------ framing */

struct fuzz_frames {
    const uint8_t **body;
    size_t *len;
    size_t n;
    int err; /* the reader's final error */
};

/* Feed data in one piece and collect every frame (the reference). */
static void
fuzz_reference(struct frame_reader *r, const uint8_t *data, size_t size, struct fuzz_frames *f)
{
    const uint8_t *body;
    size_t len;
    int e;

    f->n = 0;
    f->err = frame_reader_feed(r, data, size);
    if (f->err != 0)
        return;
    while ((e = frame_reader_next(r, &body, &len)) == 0 && body != NULL) {
        FUZZ_CHECK(len >= 1 && len <= FUZZ_MAX_BODY);
        f->body[f->n] = body;
        f->len[f->n] = len;
        f->n++;
    }
    f->err = e;
}

/* Take what the split reader has, comparing with the reference as we go. */
static int
fuzz_drain(struct frame_reader *r, const struct fuzz_frames *ref, size_t *got)
{
    const uint8_t *body;
    size_t len;
    int e;

    while ((e = frame_reader_next(r, &body, &len)) == 0 && body != NULL) {
        FUZZ_CHECK(*got < ref->n);
        FUZZ_CHECK(len == ref->len[*got] && memcmp(body, ref->body[*got], len) == 0);
        (*got)++;
    }
    return e;
}

/* Feed the same data in pieces chosen by seed; it must give the reference's frames. */
static void
fuzz_split(const uint8_t *data, size_t size, const struct fuzz_frames *ref, uint64_t seed)
{
    struct frame_reader r;
    unsigned mode = seed & 3;
    size_t pos = 0, got = 0;
    int e = 0;

    frame_reader_init(&r, FUZZ_MAX_BODY);
    while (pos < size && e == 0) {
        size_t n;

        if (mode == 0)
            n = 1;
        else
            n = 1 + fuzz_rand(&seed) % (mode == 1 ? 8 : 300);
        if (n > size - pos)
            n = size - pos;
        if (mode == 3) {
            uint8_t *space;
            size_t room;

            e = frame_reader_space(&r, 1 + fuzz_rand(&seed) % 64, &space, &room);
            if (e != 0)
                break;
            FUZZ_CHECK(space != NULL && room >= 1);
            if (n > room)
                n = room;
            memcpy(space, data + pos, n);
            frame_reader_commit(&r, n);
        } else if ((e = frame_reader_feed(&r, data + pos, n)) != 0) {
            break;
        }
        pos += n;
        e = fuzz_drain(&r, ref, &got);
    }
    if (e == 0)
        e = fuzz_drain(&r, ref, &got);
    FUZZ_CHECK(got == ref->n);
    FUZZ_CHECK(e == ref->err);
    /* Once the error is set it stays. */
    if (e != 0)
        FUZZ_CHECK(frame_reader_feed(&r, "x", 1) == e);
    frame_reader_fini(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct frame_reader r;
    struct fuzz_frames ref;
    size_t i, most = size / (FRAME_HDR_LEN + 1) + 1;

    fuzz_init();
    ref.body = malloc(most * sizeof(*ref.body));
    ref.len = malloc(most * sizeof(*ref.len));
    FUZZ_CHECK(ref.body != NULL && ref.len != NULL);

    frame_reader_init(&r, FUZZ_MAX_BODY);
    fuzz_reference(&r, data, size, &ref);
    FUZZ_CHECK(ref.err == 0 || ref.err == FORQ_ERR_PROTOCOL || ref.err == FORQ_ERR_TOO_BIG);
    fuzz_split(data, size, &ref, fuzz_fnv1a(data, size));
    for (i = 0; i < ref.n; i++)
        fuzz_body(ref.body[i], ref.len[i]);
    /* The whole input as one body, too: most fuzz inputs have no valid header. */
    if (size > 0)
        fuzz_body(data, size);
    frame_reader_fini(&r);
    free(ref.body);
    free(ref.len);
    return 0;
}
