/*
 * test_msg.c — unit tests for proto/msg.c: every request and response makes
 * the round trip encode -> frame header -> decode with every field intact,
 * and malformed messages are refused with their exact error code, a reason
 * in d->why and, when the rid was readable, that rid.
 *
 * Malformed bodies are built by hand with msgpack-c's packer (or as raw
 * bytes), never by the encoder under test.
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
#include "msg.h"

#define TEST_MAX_BODY 1114112 /* the daemon's default: 1 MiB + 64 KiB */

struct test_ctx {
    struct msg_decoder d;
    msgpack_sbuffer sb;  /* what the encoder wrote */
    msgpack_sbuffer raw; /* hand-built bodies */
    msgpack_packer pk;   /* writes into raw */
};

static int
test_setup(void **state)
{
    struct test_ctx *t = calloc(1, sizeof(*t));

    if (t == NULL || msg_decoder_init(&t->d) != 0)
        return -1;
    msgpack_sbuffer_init(&t->sb);
    msgpack_sbuffer_init(&t->raw);
    msgpack_packer_init(&t->pk, &t->raw, msgpack_sbuffer_write);
    *state = t;
    return 0;
}

static int
test_teardown(void **state)
{
    struct test_ctx *t = *state;

    msg_decoder_fini(&t->d);
    msgpack_sbuffer_destroy(&t->sb);
    msgpack_sbuffer_destroy(&t->raw);
    free(t);
    return 0;
}

/* ------------------------------------------------------------------ helpers */

static void
test_str_eq(struct msg_str got, struct msg_str want)
{
    assert_int_equal(got.len, want.len);
    if (want.len > 0)
        assert_memory_equal(got.ptr, want.ptr, want.len);
}

/* Check that sb holds exactly one frame whose header is right; return its body. */
static const uint8_t *
test_one_frame(const msgpack_sbuffer *sb, size_t *len)
{
    uint32_t n;

    assert_true(sb->size > FRAME_HDR_LEN);
    assert_int_equal(frame_hdr_decode((const uint8_t *)sb->data, TEST_MAX_BODY, &n), 0);
    assert_int_equal((size_t)n, sb->size - FRAME_HDR_LEN);
    *len = n;
    return (const uint8_t *)sb->data + FRAME_HDR_LEN;
}

static void
test_rt_request(struct test_ctx *t, const struct msg_request *in, struct msg_request *out)
{
    const uint8_t *body;
    size_t len;
    int e;

    msgpack_sbuffer_clear(&t->sb);
    assert_int_equal(msg_encode_request(&t->sb, in), 0);
    body = test_one_frame(&t->sb, &len);
    if ((e = msg_decode_request(&t->d, body, len, out)) != 0)
        fail_msg("decode: %d (%s)", e, t->d.why);
    assert_int_equal(out->op, in->op);
    assert_true(out->rid == in->rid);
}

static void
test_rt_response(struct test_ctx *t, int op, const struct msg_response *in,
                 struct msg_response *out)
{
    const uint8_t *body;
    size_t len;
    int e;

    msgpack_sbuffer_clear(&t->sb);
    assert_int_equal(msg_encode_response(&t->sb, op, in), 0);
    body = test_one_frame(&t->sb, &len);
    if ((e = msg_decode_response(&t->d, op, body, len, out)) != 0)
        fail_msg("decode: %d (%s)", e, t->d.why);
    assert_true(out->rid == in->rid);
}

/* Start a hand-built body: a map of n entries. */
static void
test_map(struct test_ctx *t, uint32_t n)
{
    msgpack_sbuffer_clear(&t->raw);
    msgpack_pack_map(&t->pk, n);
}

static void
test_key(struct test_ctx *t, const char *k)
{
    msgpack_pack_str_with_body(&t->pk, k, strlen(k));
}

static void
test_kv_str(struct test_ctx *t, const char *k, const char *v)
{
    test_key(t, k);
    msgpack_pack_str_with_body(&t->pk, v, strlen(v));
}

static void
test_kv_uint(struct test_ctx *t, const char *k, uint64_t v)
{
    test_key(t, k);
    msgpack_pack_uint64(&t->pk, v);
}

static void
test_kv_int(struct test_ctx *t, const char *k, int64_t v)
{
    test_key(t, k);
    msgpack_pack_int64(&t->pk, v);
}

/* The usual head of a request: {op: op, rid: rid, ...n more entries}. */
static void
test_req(struct test_ctx *t, const char *op, uint64_t rid, uint32_t more)
{
    test_map(t, 2 + more);
    test_kv_str(t, "op", op);
    test_kv_uint(t, "rid", rid);
}

/* Decode raw as a request and check the outcome; line is the caller's. */
static void
test_expect_req_at(struct test_ctx *t, const void *body, size_t len, int code, uint64_t rid,
                   int line)
{
    struct msg_request req;
    int e;

    t->d.why[0] = '\0';
    e = msg_decode_request(&t->d, body, len, &req);
    if (e != code)
        fail_msg("line %d: got %d (%s), want %d", line, e, t->d.why, code);
    if (code != 0 && t->d.why[0] == '\0')
        fail_msg("line %d: no reason given", line);
    if (req.rid != rid)
        fail_msg("line %d: rid %llu, want %llu", line, (unsigned long long)req.rid,
                 (unsigned long long)rid);
}

#define EXPECT_RAW(t, code, rid)                                                                   \
    test_expect_req_at((t), (t)->raw.data, (t)->raw.size, (code), (rid), __LINE__)
#define EXPECT_BYTES(t, b, code, rid)                                                              \
    test_expect_req_at((t), (b), sizeof(b), (code), (rid), __LINE__)

static void
test_expect_resp_at(struct test_ctx *t, int op, int code, int line)
{
    struct msg_response resp;
    int e;

    t->d.why[0] = '\0';
    e = msg_decode_response(&t->d, op, (const uint8_t *)t->raw.data, t->raw.size, &resp);
    if (e != code)
        fail_msg("line %d: got %d (%s), want %d", line, e, t->d.why, code);
    if (code != 0 && t->d.why[0] == '\0')
        fail_msg("line %d: no reason given", line);
}

#define EXPECT_RESP(t, op, code) test_expect_resp_at((t), (op), (code), __LINE__)

/* ------------------------------------------------------------------ request round trips */

static void
test_rt_hello(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request in, out;

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_HELLO;
    in.rid = 1;
    in.u.hello.version = MSG_PROTO_VERSION;
    in.u.hello.token = msg_str_c("s3cr\xc3\xa9t");
    in.u.hello.client = msg_str_c("forq-cli/0.1 \xe6\x97\xa5\xe6\x9c\xac");
    test_rt_request(t, &in, &out);
    assert_int_equal(out.u.hello.version, MSG_PROTO_VERSION);
    test_str_eq(out.u.hello.token, in.u.hello.token);
    test_str_eq(out.u.hello.client, in.u.hello.client);

    /* Only the version: the optional strings come back empty. */
    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_HELLO;
    in.rid = 2;
    in.u.hello.version = UINT32_MAX;
    test_rt_request(t, &in, &out);
    assert_int_equal(out.u.hello.version, UINT32_MAX);
    assert_int_equal(out.u.hello.token.len, 0);
    assert_int_equal(out.u.hello.client.len, 0);
}

static void
test_rt_ping_and_stats(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request in, out;

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_PING;
    in.rid = UINT64_MAX;
    test_rt_request(t, &in, &out);
    in.op = MSG_OP_STATS;
    in.rid = 0;
    test_rt_request(t, &in, &out);
}

static void
test_rt_submit_full(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request in, out;
    char payload[300];
    char name64[FORQ_NAME_MAX + 1];

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (char)i; /* every byte value, NULs included */
    memset(name64, 'q', FORQ_NAME_MAX);
    name64[FORQ_NAME_MAX] = '\0';
    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_SUBMIT;
    in.rid = 0x123456789abcull;
    in.u.submit.task = msg_str_c("Upper_case.v2:x-1");
    in.u.submit.payload.ptr = payload;
    in.u.submit.payload.len = sizeof(payload);
    in.u.submit.queue = msg_str_c(name64);
    in.u.submit.priority = -5;
    in.u.submit.delay_ms = 1500;
    in.u.submit.timeout_ms = MSG_MS_MAX;
    in.u.submit.max_retries = 1000;
    in.u.submit.unique_key = msg_str_c("order:42/\xc3\xa9");
    test_rt_request(t, &in, &out);
    test_str_eq(out.u.submit.task, in.u.submit.task);
    test_str_eq(out.u.submit.payload, in.u.submit.payload);
    test_str_eq(out.u.submit.queue, in.u.submit.queue);
    assert_int_equal(out.u.submit.priority, -5);
    assert_true(out.u.submit.delay_ms == 1500);
    assert_true(out.u.submit.timeout_ms == MSG_MS_MAX);
    assert_int_equal(out.u.submit.max_retries, 1000);
    test_str_eq(out.u.submit.unique_key, in.u.submit.unique_key);

    in.u.submit.priority = INT32_MIN;
    test_rt_request(t, &in, &out);
    assert_int_equal(out.u.submit.priority, INT32_MIN);
    in.u.submit.priority = INT32_MAX;
    test_rt_request(t, &in, &out);
    assert_int_equal(out.u.submit.priority, INT32_MAX);
}

static void
test_rt_submit_minimal(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request in, out;

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_SUBMIT;
    in.rid = 9;
    in.u.submit.task = msg_str_c("t");
    in.u.submit.payload = msg_str_c(""); /* present but empty */
    test_rt_request(t, &in, &out);
    test_str_eq(out.u.submit.task, in.u.submit.task);
    /* An empty payload is present (non-NULL), and everything else has its default. */
    assert_non_null(out.u.submit.payload.ptr);
    assert_int_equal(out.u.submit.payload.len, 0);
    assert_int_equal(out.u.submit.queue.len, 0);
    assert_int_equal(out.u.submit.priority, 0);
    assert_true(out.u.submit.delay_ms == 0);
    assert_true(out.u.submit.timeout_ms == 0);
    assert_int_equal(out.u.submit.max_retries, 0);
    assert_int_equal(out.u.submit.unique_key.len, 0);
}

static void
test_rt_wait(void **state)
{
    static const int64_t timeouts[] = {-1, 0, 1, 30000, (int64_t)MSG_MS_MAX};
    struct test_ctx *t = *state;
    struct msg_request in, out;

    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        memset(&in, 0, sizeof(in));
        in.op = MSG_OP_WAIT;
        in.rid = 100 + i;
        in.u.wait.id = 1ull << 40;
        in.u.wait.timeout_ms = timeouts[i];
        test_rt_request(t, &in, &out);
        assert_true(out.u.wait.id == in.u.wait.id);
        assert_true(out.u.wait.timeout_ms == timeouts[i]);
    }
    /* Absent is not on the wire at all. */
    in.u.wait.timeout_ms = -1;
    test_rt_request(t, &in, &out);
    assert_null(memmem(t->sb.data, t->sb.size, "timeout_ms", 10));
}

static void
test_rt_status_cancel(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request in, out;

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_STATUS;
    in.rid = 5;
    in.u.status.id = 0;
    test_rt_request(t, &in, &out);
    assert_true(out.u.status.id == 0);
    in.u.status.id = 12345;
    test_rt_request(t, &in, &out);
    assert_true(out.u.status.id == 12345);

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_CANCEL;
    in.rid = 6;
    in.u.cancel.id = UINT64_MAX;
    test_rt_request(t, &in, &out);
    assert_true(out.u.cancel.id == UINT64_MAX);
}

static void
test_rt_watch_unwatch(void **state)
{
    static uint64_t ids[MSG_WATCH_MAX];
    struct test_ctx *t = *state;
    struct msg_request in, out;

    for (size_t i = 0; i < MSG_WATCH_MAX; i++)
        ids[i] = i * 7919 + (i == 3 ? UINT64_MAX - 30000 : 1);
    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_WATCH;
    in.rid = 77;
    in.u.watch.ids = ids;
    for (size_t n = 1; n <= MSG_WATCH_MAX; n = n < 10 ? n + 3 : MSG_WATCH_MAX + (n == MSG_WATCH_MAX)) {
        in.u.watch.nids = n;
        in.u.watch.timeout_ms = n == 1 ? -1 : 2500;
        test_rt_request(t, &in, &out);
        assert_int_equal(out.u.watch.nids, n);
        assert_memory_equal(out.u.watch.ids, ids, n * sizeof(ids[0]));
        assert_true(out.u.watch.timeout_ms == in.u.watch.timeout_ms);
    }

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_UNWATCH;
    in.rid = 78;
    in.u.unwatch.watch = 77;
    test_rt_request(t, &in, &out);
    assert_true(out.u.unwatch.watch == 77);
}

static void test_job_eq(const struct msg_job *got, const struct msg_job *want);

static void
test_rt_job_control(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request in, out;

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_CANCEL;
    in.rid = 5;
    in.u.cancel.id = 99;
    in.u.cancel.running = 1;
    test_rt_request(t, &in, &out);
    assert_true(out.u.cancel.id == 99);
    assert_int_equal(out.u.cancel.running, 1);
    in.u.cancel.running = 0;
    test_rt_request(t, &in, &out);
    assert_int_equal(out.u.cancel.running, 0);

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_QUEUE;
    in.rid = 6;
    in.u.queue.queue = msg_str_c("emails");
    in.u.queue.action = msg_str_c("set");
    in.u.queue.limit = 0; /* 0 is a value (no limit), not "unchanged" */
    in.u.queue.order = msg_str_c("lifo");
    test_rt_request(t, &in, &out);
    test_str_eq(out.u.queue.queue, in.u.queue.queue);
    test_str_eq(out.u.queue.action, in.u.queue.action);
    assert_true(out.u.queue.limit == 0);
    test_str_eq(out.u.queue.order, in.u.queue.order);
    in.u.queue.action = msg_str_c("pause");
    in.u.queue.limit = -1;
    in.u.queue.order = msg_str_c(NULL);
    test_rt_request(t, &in, &out);
    assert_true(out.u.queue.limit == -1); /* absent */
    assert_int_equal(out.u.queue.order.len, 0);

    memset(&in, 0, sizeof(in));
    in.op = MSG_OP_JOIN;
    in.rid = 7;
    in.u.join.queue = msg_str_c("default");
    in.u.join.timeout_ms = -1;
    test_rt_request(t, &in, &out);
    test_str_eq(out.u.join.queue, in.u.join.queue);
    assert_true(out.u.join.timeout_ms == -1);
    in.u.join.timeout_ms = 0;
    test_rt_request(t, &in, &out);
    assert_true(out.u.join.timeout_ms == 0);
}

static void
test_bad_job_control(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "queue", 3, 1); /* no action */
    test_kv_str(t, "queue", "q");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 3);
    test_req(t, "queue", 3, 2); /* a bad queue name */
    test_kv_str(t, "queue", "no spaces");
    test_kv_str(t, "action", "info");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 3);
    test_req(t, "queue", 3, 3); /* a limit out of range */
    test_kv_str(t, "queue", "q");
    test_kv_str(t, "action", "set");
    test_kv_uint(t, "limit", MSG_QUEUE_LIMIT_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 3);
    assert_non_null(strstr(t->d.why, "limit"));
    test_req(t, "queue", 3, 3); /* a negative limit */
    test_kv_str(t, "queue", "q");
    test_kv_str(t, "action", "set");
    test_kv_int(t, "limit", -1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 3);
    test_req(t, "join", 4, 0); /* no queue */
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 4);
    test_req(t, "join", 4, 2); /* a timeout of the wrong type */
    test_kv_str(t, "queue", "q");
    test_kv_str(t, "timeout_ms", "soon");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 4);
    test_req(t, "cancel", 5, 2); /* running must be a boolean */
    test_kv_uint(t, "id", 1);
    test_kv_uint(t, "running", 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 5);
    test_req(t, "submit", 6, 3); /* too many retries */
    test_kv_str(t, "task", "echo");
    test_kv_str(t, "payload", "");
    test_kv_uint(t, "max_retries", MSG_RETRIES_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 6);
}

static void
test_rt_resp_job_control(void **state)
{
    struct test_ctx *t = *state;
    struct msg_response in, out;

    memset(&in, 0, sizeof(in));
    in.rid = 8;
    in.id = 41;
    in.duplicate = 1;
    test_rt_response(t, MSG_OP_SUBMIT, &in, &out);
    assert_true(out.id == 41);
    assert_int_equal(out.duplicate, 1);

    memset(&in, 0, sizeof(in));
    in.rid = 9;
    in.queue = (struct msg_queue_stats){
        .name = msg_str_c("emails"), .queued = 3, .running = 1, .scheduled = 2, .retried = 4,
        .paused = 1, .limit = 2, .order = msg_str_c("lifo")};
    test_rt_response(t, MSG_OP_QUEUE, &in, &out);
    test_str_eq(out.queue.name, in.queue.name);
    assert_true(out.queue.queued == 3 && out.queue.running == 1);
    assert_true(out.queue.scheduled == 2 && out.queue.retried == 4);
    assert_int_equal(out.queue.paused, 1);
    assert_int_equal(out.queue.limit, 2);
    test_str_eq(out.queue.order, in.queue.order);

    memset(&in, 0, sizeof(in));
    in.rid = 10;
    test_rt_response(t, MSG_OP_JOIN, &in, &out);
    assert_int_equal(out.err.code, 0);

    /* A job waiting for its next attempt. */
    memset(&in, 0, sizeof(in));
    in.rid = 11;
    in.job = (struct msg_job){.id = 5, .state = 0, .attempts = 2, .max_retries = 3,
                              .timeout_ms = 1500, .run_at_us = 1700000000000000ULL,
                              .unique_key = msg_str_c("nightly-report")};
    in.job.last_error.code = FORQ_ERR_JOB_TIMEOUT;
    in.job.last_error.msg = msg_str_c("ran past its timeout of 1500 ms");
    test_rt_response(t, MSG_OP_STATUS, &in, &out);
    test_job_eq(&out.job, &in.job);
}

static void
test_bad_watch(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "watch", 9, 0); /* no ids */
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 9);
    test_req(t, "watch", 9, 1); /* empty array */
    test_key(t, "ids");
    msgpack_pack_array(&t->pk, 0);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 9);
    test_req(t, "watch", 9, 1); /* not an array */
    test_kv_uint(t, "ids", 5);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 9);
    test_req(t, "watch", 9, 1); /* a negative id */
    test_key(t, "ids");
    msgpack_pack_array(&t->pk, 2);
    msgpack_pack_uint64(&t->pk, 1);
    msgpack_pack_int64(&t->pk, -2);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 9);
    assert_non_null(strstr(t->d.why, "ids[1]"));
    test_req(t, "watch", 9, 1); /* a string id */
    test_key(t, "ids");
    msgpack_pack_array(&t->pk, 1);
    msgpack_pack_str_with_body(&t->pk, "1", 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 9);
    test_req(t, "watch", 9, 1); /* one id too many */
    test_key(t, "ids");
    msgpack_pack_array(&t->pk, MSG_WATCH_MAX + 1);
    for (int i = 0; i <= MSG_WATCH_MAX; i++)
        msgpack_pack_uint64(&t->pk, (uint64_t)i + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 9);
    test_req(t, "unwatch", 10, 1); /* watch is a rid */
    test_kv_str(t, "watch", "x");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 10);
}

/* Encoders append whole frames and leave sb alone when they fail. */
static void
test_encode_appends_and_rolls_back(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request req, out;
    struct msg_response resp;
    const uint8_t *p;
    uint32_t n;
    size_t before;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_PING;
    req.rid = 1;
    msgpack_sbuffer_clear(&t->sb);
    assert_int_equal(msg_encode_request(&t->sb, &req), 0);
    req.rid = 2;
    assert_int_equal(msg_encode_request(&t->sb, &req), 0);
    before = t->sb.size;

    req.op = MSG_OP__COUNT;
    assert_int_equal(msg_encode_request(&t->sb, &req), FORQ_ERR_INVALID);
    req.op = -1;
    assert_int_equal(msg_encode_request(&t->sb, &req), FORQ_ERR_INVALID);
    memset(&resp, 0, sizeof(resp));
    assert_int_equal(msg_encode_response(&t->sb, MSG_OP__COUNT, &resp), FORQ_ERR_INVALID);
    assert_int_equal(msg_encode_error(&t->sb, 1, 0, "not an error"), FORQ_ERR_INVALID);
    assert_int_equal(msg_encode_error(&t->sb, 1, 5, "not an error"), FORQ_ERR_INVALID);
    /* A job state out of range cannot be carried. */
    resp.job.state = FORQ_STATE__COUNT;
    assert_int_equal(msg_encode_response(&t->sb, MSG_OP_STATUS, &resp), FORQ_ERR_INVALID);
    assert_int_equal(t->sb.size, before);

    /* Two frames, back to back, rids 1 and 2. */
    p = (const uint8_t *)t->sb.data;
    for (uint64_t rid = 1; rid <= 2; rid++) {
        assert_int_equal(frame_hdr_decode(p, TEST_MAX_BODY, &n), 0);
        assert_int_equal(msg_decode_request(&t->d, p + FRAME_HDR_LEN, n, &out), 0);
        assert_int_equal(out.op, MSG_OP_PING);
        assert_true(out.rid == rid);
        p += FRAME_HDR_LEN + n;
    }
    assert_ptr_equal(p, (const uint8_t *)t->sb.data + t->sb.size);
}

/* ------------------------------------------------------------------ response round trips */

static void
test_job_eq(const struct msg_job *got, const struct msg_job *want)
{
    assert_true(got->id == want->id);
    assert_int_equal(got->state, want->state);
    test_str_eq(got->task, want->task);
    test_str_eq(got->queue, want->queue);
    assert_int_equal(got->priority, want->priority);
    assert_int_equal(got->attempts, want->attempts);
    assert_true(got->created_us == want->created_us);
    assert_true(got->started_us == want->started_us);
    assert_true(got->finished_us == want->finished_us);
    assert_int_equal(got->worker_pid, want->worker_pid);
    assert_true(got->result_size == want->result_size);
    test_str_eq(got->result, want->result);
    assert_int_equal(got->error.code, want->error.code);
    test_str_eq(got->error.msg, want->error.msg);
    assert_int_equal(got->max_retries, want->max_retries);
    assert_true(got->timeout_ms == want->timeout_ms);
    assert_true(got->run_at_us == want->run_at_us);
    test_str_eq(got->unique_key, want->unique_key);
    assert_int_equal(got->last_error.code, want->last_error.code);
    test_str_eq(got->last_error.msg, want->last_error.msg);
}

static void
test_rt_resp_hello_ping_submit(void **state)
{
    struct test_ctx *t = *state;
    struct msg_response in, out;

    memset(&in, 0, sizeof(in));
    in.rid = 1;
    in.hello.version = MSG_PROTO_VERSION;
    in.hello.server = msg_str_c("forqd 0.1.0");
    in.hello.max_frame = TEST_MAX_BODY;
    test_rt_response(t, MSG_OP_HELLO, &in, &out);
    assert_int_equal(out.err.code, 0);
    assert_int_equal(out.hello.version, MSG_PROTO_VERSION);
    test_str_eq(out.hello.server, in.hello.server);
    assert_true(out.hello.max_frame == TEST_MAX_BODY);

    memset(&in, 0, sizeof(in));
    in.rid = 2;
    test_rt_response(t, MSG_OP_PING, &in, &out);
    assert_int_equal(out.err.code, 0);

    memset(&in, 0, sizeof(in));
    in.rid = 3;
    in.id = 77;
    test_rt_response(t, MSG_OP_SUBMIT, &in, &out);
    assert_int_equal(out.err.code, 0);
    assert_true(out.id == 77);
}

static void
test_rt_resp_job_with_result(void **state)
{
    static const char result[] = "HELLO\0WORLD";
    struct test_ctx *t = *state;
    struct msg_response in, out;

    memset(&in, 0, sizeof(in));
    in.rid = 10;
    in.job.id = 42;
    in.job.state = FORQ_STATE_SUCCEEDED;
    in.job.task = msg_str_c("upper");
    in.job.queue = msg_str_c("default");
    in.job.priority = -3;
    in.job.attempts = 1;
    in.job.created_us = 1700000000000000ull;
    in.job.started_us = 1700000000000100ull;
    in.job.finished_us = 1700000000000200ull;
    in.job.worker_pid = 4242;
    in.job.result_size = sizeof(result);
    in.job.result.ptr = result;
    in.job.result.len = sizeof(result);
    test_rt_response(t, MSG_OP_WAIT, &in, &out);
    assert_int_equal(out.err.code, 0);
    test_job_eq(&out.job, &in.job);

    /* STATUS carries result_size but no result. */
    in.job.result.ptr = NULL;
    in.job.result.len = 0;
    test_rt_response(t, MSG_OP_STATUS, &in, &out);
    test_job_eq(&out.job, &in.job);
    assert_null(out.job.result.ptr);
    assert_null(memmem(t->sb.data, t->sb.size, "\xa6result", 7));

    /* An empty result is still a result. */
    in.job.result = msg_str_c("");
    in.job.result_size = 0;
    test_rt_response(t, MSG_OP_WAIT, &in, &out);
    assert_non_null(out.job.result.ptr);
    assert_int_equal(out.job.result.len, 0);
}

static void
test_rt_resp_job_with_error(void **state)
{
    static const int states[] = {FORQ_STATE_FAILED, FORQ_STATE_CANCELLED};
    static const int codes[] = {FORQ_ERR_TASK_FAILED, FORQ_ERR_CANCELLED};
    struct test_ctx *t = *state;
    struct msg_response in, out;

    for (size_t i = 0; i < 2; i++) {
        memset(&in, 0, sizeof(in));
        in.rid = 20 + i;
        in.job.id = 43;
        in.job.state = states[i];
        in.job.task = msg_str_c("upper");
        in.job.queue = msg_str_c("q1");
        in.job.attempts = 3;
        in.job.created_us = 1;
        in.job.finished_us = 2;
        in.job.error.code = codes[i];
        in.job.error.msg = msg_str_c("boom: \xe2\x9c\x97 input was empty");
        test_rt_response(t, i == 0 ? MSG_OP_WAIT : MSG_OP_CANCEL, &in, &out);
        assert_int_equal(out.err.code, 0);
        test_job_eq(&out.job, &in.job);
    }

    /* Every state makes the round trip by name; worker_lost with no message. */
    for (int st = 0; st < FORQ_STATE__COUNT; st++) {
        memset(&in, 0, sizeof(in));
        in.rid = 30;
        in.job.id = 1;
        in.job.state = st;
        if (st == FORQ_STATE_FAILED)
            in.job.error.code = FORQ_ERR_WORKER_LOST;
        test_rt_response(t, MSG_OP_STATUS, &in, &out);
        test_job_eq(&out.job, &in.job);
        assert_non_null(
            memmem(t->sb.data, t->sb.size, forq_state_name(st), strlen(forq_state_name(st))));
    }
}

/* A WATCH event carries more and the job; the last frame carries neither. */
static void
test_rt_resp_watch(void **state)
{
    struct test_ctx *t = *state;
    struct msg_response in, out;

    memset(&in, 0, sizeof(in));
    in.rid = 31;
    in.more = 1;
    in.job.id = 9;
    in.job.state = FORQ_STATE_SUCCEEDED;
    in.job.result = msg_str_c("DONE");
    in.job.result_size = 4;
    test_rt_response(t, MSG_OP_WATCH, &in, &out);
    assert_int_equal(out.more, 1);
    test_job_eq(&out.job, &in.job);

    memset(&in, 0, sizeof(in));
    in.rid = 31;
    test_rt_response(t, MSG_OP_WATCH, &in, &out);
    assert_int_equal(out.more, 0);
    assert_true(out.job.id == 0);
    assert_null(memmem(t->sb.data, t->sb.size, "more", 4));

    /* more must be a boolean */
    test_map(t, 2);
    test_kv_uint(t, "rid", 31);
    test_kv_uint(t, "more", 1);
    EXPECT_RESP(t, MSG_OP_WATCH, FORQ_ERR_BAD_REQUEST);
}

/*
 * The biggest STATS a server can send: MSG_STATS_QUEUES_MAX queues and
 * MSG_STATS_WORKERS_MAX workers, every field set, so none is left out. It
 * must stay within MSG_MAX_ITEMS: a field added without lowering the maxima
 * fails here.
 */
static void
test_rt_resp_stats_full(void **state)
{
    struct test_ctx *t = *state;
    struct msg_queue_stats *qs = calloc(MSG_STATS_QUEUES_MAX, sizeof(*qs));
    struct msg_worker_stats *ws = calloc(MSG_STATS_WORKERS_MAX, sizeof(*ws));
    struct msg_response in, out;

    assert_non_null(qs);
    assert_non_null(ws);
    for (size_t i = 0; i < MSG_STATS_QUEUES_MAX; i++)
        qs[i] = (struct msg_queue_stats){
            .name = msg_str_c("q"), .queued = 1, .running = 1, .submitted = 1,
            .succeeded = 1, .failed = 1, .cancelled = 1, .scheduled = 1, .retried = 1,
            .blocked = 1, .paused = 1, .limit = 1, .order = msg_str_c("lifo")};
    for (size_t i = 0; i < MSG_STATS_WORKERS_MAX; i++)
        ws[i] = (struct msg_worker_stats){(uint32_t)i, 1, msg_str_c("busy"), 1, 1, 1};
    memset(&in, 0, sizeof(in));
    in.rid = 1;
    in.stats = (struct msg_stats){
        .server = msg_str_c("forqd"), .uptime_ms = 1, .connections = 1, .queued = 1,
        .running = 1, .submitted = 1, .succeeded = 1, .failed = 1, .cancelled = 1,
        .scheduled = 1, .retried = 1, .durability = msg_str_c("full"), .store_commits = 1,
        .store_fsyncs = 1, .store_records = 1, .store_failures = 1, .store_max_batch = 1,
        .store_commit_us = 1, .store_purged = 1, .nqueues = MSG_STATS_QUEUES_MAX,
        .queues = qs, .nworkers = MSG_STATS_WORKERS_MAX, .workers = ws};
    test_rt_response(t, MSG_OP_STATS, &in, &out);
    assert_int_equal(out.err.code, 0);
    assert_int_equal(out.stats.nqueues, MSG_STATS_QUEUES_MAX);
    assert_int_equal(out.stats.nworkers, MSG_STATS_WORKERS_MAX);
    assert_true(out.stats.queues[MSG_STATS_QUEUES_MAX - 1].blocked == 1);
    free(qs);
    free(ws);
}

static void
test_rt_resp_stats(void **state)
{
    struct test_ctx *t = *state;
    struct msg_queue_stats qs[3];
    struct msg_worker_stats ws[2];
    struct msg_response in, out;
    size_t i;

    memset(qs, 0, sizeof(qs));
    memset(ws, 0, sizeof(ws));
    for (i = 0; i < 2; i++) { /* qs[2] keeps all-zero counters */
        qs[i].queued = 10 * i + 1;
        qs[i].running = 10 * i + 2;
        qs[i].submitted = 10 * i + 3;
        qs[i].succeeded = 10 * i + 4;
        qs[i].failed = 10 * i + 5;
        qs[i].cancelled = 10 * i + 6;
    }
    qs[0].name = msg_str_c("default");
    qs[1].name = msg_str_c("emails");
    qs[2].name = msg_str_c("idle");
    ws[0] = (struct msg_worker_stats){0, 1001, msg_str_c("busy"), 42, 7, 0};
    ws[1] = (struct msg_worker_stats){1, 1002, msg_str_c("idle"), 0, 9, 2};

    memset(&in, 0, sizeof(in));
    in.rid = 50;
    in.stats = (struct msg_stats){
        .server = msg_str_c("forqd 0.1.0"), .uptime_ms = 123456, .connections = 3,
        .queued = 11, .running = 2, .submitted = 100, .succeeded = 80, .failed = 5,
        .cancelled = 2, .durability = msg_str_c("full"), .store_commits = 7,
        .store_fsyncs = 8, .store_records = 90, .store_failures = 1, .store_max_batch = 64,
        .store_commit_us = 5000, .store_purged = 4, .nqueues = 3, .queues = qs,
        .nworkers = 2, .workers = ws};
    test_rt_response(t, MSG_OP_STATS, &in, &out);
    assert_int_equal(out.err.code, 0);
    test_str_eq(out.stats.server, in.stats.server);
    assert_true(out.stats.uptime_ms == 123456);
    assert_true(out.stats.connections == 3);
    assert_true(out.stats.queued == 11);
    assert_true(out.stats.running == 2);
    assert_true(out.stats.submitted == 100);
    assert_true(out.stats.succeeded == 80);
    assert_true(out.stats.failed == 5);
    assert_true(out.stats.cancelled == 2);
    test_str_eq(out.stats.durability, in.stats.durability);
    assert_true(out.stats.store_commits == 7);
    assert_true(out.stats.store_fsyncs == 8);
    assert_true(out.stats.store_records == 90);
    assert_true(out.stats.store_failures == 1);
    assert_true(out.stats.store_max_batch == 64);
    assert_true(out.stats.store_commit_us == 5000);
    assert_true(out.stats.store_purged == 4);
    assert_int_equal(out.stats.nqueues, 3);
    assert_non_null(out.stats.queues);
    for (i = 0; i < 3; i++) {
        test_str_eq(out.stats.queues[i].name, qs[i].name);
        assert_true(out.stats.queues[i].queued == qs[i].queued);
        assert_true(out.stats.queues[i].running == qs[i].running);
        assert_true(out.stats.queues[i].submitted == qs[i].submitted);
        assert_true(out.stats.queues[i].succeeded == qs[i].succeeded);
        assert_true(out.stats.queues[i].failed == qs[i].failed);
        assert_true(out.stats.queues[i].cancelled == qs[i].cancelled);
    }
    assert_int_equal(out.stats.nworkers, 2);
    for (i = 0; i < 2; i++) {
        assert_int_equal(out.stats.workers[i].slot, ws[i].slot);
        assert_int_equal(out.stats.workers[i].pid, ws[i].pid);
        test_str_eq(out.stats.workers[i].state, ws[i].state);
        assert_true(out.stats.workers[i].job == ws[i].job);
        assert_true(out.stats.workers[i].jobs_done == ws[i].jobs_done);
        assert_true(out.stats.workers[i].restarts == ws[i].restarts);
    }

    /* No queues and no workers: empty lists. */
    memset(&in.stats, 0, sizeof(in.stats));
    test_rt_response(t, MSG_OP_STATS, &in, &out);
    assert_int_equal(out.stats.nqueues, 0);
    assert_int_equal(out.stats.nworkers, 0);
}

/* An error response decodes the same whatever op it answers. */
static void
test_rt_resp_errors_every_op(void **state)
{
    struct test_ctx *t = *state;
    struct msg_response in, out;
    const uint8_t *body;
    size_t len;

    for (int op = 0; op < MSG_OP__COUNT; op++) {
        /* through msg_encode_error */
        msgpack_sbuffer_clear(&t->sb);
        assert_int_equal(msg_encode_error(&t->sb, 1000 + op, FORQ_ERR_NOT_FOUND, "no job 7"), 0);
        body = test_one_frame(&t->sb, &len);
        assert_int_equal(msg_decode_response(&t->d, op, body, len, &out), 0);
        assert_true(out.rid == (uint64_t)(1000 + op));
        assert_int_equal(out.err.code, FORQ_ERR_NOT_FOUND);
        test_str_eq(out.err.msg, msg_str_c("no job 7"));

        /* through msg_encode_response with err set */
        memset(&in, 0, sizeof(in));
        in.rid = 2000 + op;
        in.err.code = FORQ_ERR__LAST;
        in.err.msg = msg_str_c("last");
        in.id = 5; /* carried with err (a WATCH event names its job), like more */
        in.more = op == MSG_OP_WATCH;
        test_rt_response(t, op, &in, &out);
        assert_int_equal(out.err.code, FORQ_ERR__LAST);
        test_str_eq(out.err.msg, in.err.msg);
        assert_true(out.id == 5);
        assert_int_equal(out.more, in.more);
    }

    /* No text (NULL or empty): the code's description is sent. */
    for (int i = 0; i < 2; i++) {
        msgpack_sbuffer_clear(&t->sb);
        assert_int_equal(msg_encode_error(&t->sb, 0, FORQ_ERR_PROTOCOL, i ? "" : NULL), 0);
        body = test_one_frame(&t->sb, &len);
        assert_int_equal(msg_decode_response(&t->d, MSG_OP_PING, body, len, &out), 0);
        assert_true(out.rid == 0);
        assert_int_equal(out.err.code, FORQ_ERR_PROTOCOL);
        test_str_eq(out.err.msg, msg_str_c(forq_strerror(FORQ_ERR_PROTOCOL)));
    }
    memset(&in, 0, sizeof(in));
    in.rid = 3;
    in.err.code = FORQ_ERR_QUEUE_FULL;
    test_rt_response(t, MSG_OP_SUBMIT, &in, &out);
    test_str_eq(out.err.msg, msg_str_c(forq_strerror(FORQ_ERR_QUEUE_FULL)));
    in.err.msg = msg_str_c("");
    test_rt_response(t, MSG_OP_SUBMIT, &in, &out);
    test_str_eq(out.err.msg, msg_str_c(forq_strerror(FORQ_ERR_QUEUE_FULL)));
}

/*
 * An error without text (msg absent, NULL or empty) is sent with
 * forq_strerror(code), however the empty text is represented, so that
 * encoding what was decoded gives the same bytes twice. fuzz_frame found the
 * absent and the empty case encoded differently.
 */
static void
test_error_without_text_is_stable(void **state)
{
    struct test_ctx *t = *state;
    struct msg_response out;
    msgpack_sbuffer first;
    const uint8_t *body;
    size_t len;

    /* {rid: 9, err: {code: -8, msg: ""}} */
    test_map(t, 2);
    test_kv_uint(t, "rid", 9);
    test_key(t, "err");
    msgpack_pack_map(&t->pk, 2);
    test_kv_int(t, "code", FORQ_ERR_UNKNOWN_TASK);
    test_kv_str(t, "msg", "");
    assert_int_equal(
        msg_decode_response(&t->d, MSG_OP_SUBMIT, (const uint8_t *)t->raw.data, t->raw.size, &out),
        0);
    msgpack_sbuffer_init(&first);
    assert_int_equal(msg_encode_response(&first, MSG_OP_SUBMIT, &out), 0);
    body = test_one_frame(&first, &len);
    assert_int_equal(msg_decode_response(&t->d, MSG_OP_SUBMIT, body, len, &out), 0);
    test_str_eq(out.err.msg, msg_str_c(forq_strerror(FORQ_ERR_UNKNOWN_TASK)));
    msgpack_sbuffer_clear(&t->sb);
    assert_int_equal(msg_encode_response(&t->sb, MSG_OP_SUBMIT, &out), 0);
    assert_int_equal(t->sb.size, first.size);
    assert_memory_equal(t->sb.data, first.data, first.size);
    msgpack_sbuffer_destroy(&first);
}

/*
 * Bug: msg_encode_response() passed err.msg.ptr to msg_encode_error() as a C
 * string, ignoring err.msg.len, so a message decoded from a frame (not
 * NUL-terminated) was sent with whatever bytes followed it.
 */
static void
test_encode_response_error_msg_uses_len(void **state)
{
    static const char text[] = "boom and the rest of the buffer";
    struct test_ctx *t = *state;
    struct msg_response in, out;

    memset(&in, 0, sizeof(in));
    in.rid = 4;
    in.err.code = FORQ_ERR_TASK_FAILED;
    in.err.msg.ptr = text;
    in.err.msg.len = 4;
    test_rt_response(t, MSG_OP_WAIT, &in, &out);
    test_str_eq(out.err.msg, msg_str_c("boom"));
}

/* ------------------------------------------------------------------ malformed requests */

static void
test_bad_truncated(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request req;
    struct frame_reader r;
    const uint8_t *body;
    size_t len, blen;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_SUBMIT;
    req.rid = 3;
    req.u.submit.task = msg_str_c("upper");
    req.u.submit.payload = msg_str_c("hello");
    msgpack_sbuffer_clear(&t->sb);
    assert_int_equal(msg_encode_request(&t->sb, &req), 0);
    body = test_one_frame(&t->sb, &blen);

    /* Every cut of the body is a protocol error, and the rid is not trusted. */
    for (len = 0; len < blen; len++)
        test_expect_req_at(t, body, len, FORQ_ERR_PROTOCOL, 0, __LINE__);

    /* A frame missing its last byte is not handed out at all. */
    frame_reader_init(&r, TEST_MAX_BODY);
    assert_int_equal(frame_reader_feed(&r, t->sb.data, t->sb.size - 1), 0);
    assert_int_equal(frame_reader_next(&r, &body, &len), 0);
    assert_null(body);
    frame_reader_fini(&r);
}

static void
test_bad_over_limit(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request req;
    struct frame_reader r;
    const uint8_t *body;
    static char big[2000];
    size_t len;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_SUBMIT;
    req.rid = 3;
    req.u.submit.task = msg_str_c("upper");
    req.u.submit.payload.ptr = big;
    req.u.submit.payload.len = sizeof(big);
    msgpack_sbuffer_clear(&t->sb);
    assert_int_equal(msg_encode_request(&t->sb, &req), 0);
    frame_reader_init(&r, 1024);
    assert_int_equal(frame_reader_feed(&r, t->sb.data, FRAME_HDR_LEN), FORQ_ERR_TOO_BIG);
    assert_int_equal(frame_reader_next(&r, &body, &len), FORQ_ERR_TOO_BIG);
    frame_reader_fini(&r);
}

static void
test_bad_top_not_a_map(void **state)
{
    static const uint8_t arr[] = {0x92, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'};
    static const uint8_t num[] = {0x05};
    static const uint8_t str[] = {0xa4, 'p', 'i', 'n', 'g'};
    static const uint8_t nil[] = {0xc0};
    struct test_ctx *t = *state;

    EXPECT_BYTES(t, arr, FORQ_ERR_PROTOCOL, 0);
    EXPECT_BYTES(t, num, FORQ_ERR_PROTOCOL, 0);
    EXPECT_BYTES(t, str, FORQ_ERR_PROTOCOL, 0);
    EXPECT_BYTES(t, nil, FORQ_ERR_PROTOCOL, 0);
}

static void
test_bad_rid(void **state)
{
    struct test_ctx *t = *state;

    test_map(t, 2);
    test_kv_str(t, "op", "ping");
    test_kv_str(t, "rid", "7");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);

    test_map(t, 1);
    test_kv_str(t, "op", "ping");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);

    test_map(t, 2);
    test_kv_str(t, "op", "ping");
    test_kv_int(t, "rid", -1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);

    test_map(t, 2);
    test_kv_str(t, "op", "ping");
    test_key(t, "rid");
    msgpack_pack_double(&t->pk, 1.0);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);

    test_map(t, 2);
    test_kv_str(t, "op", "ping");
    test_key(t, "rid");
    msgpack_pack_nil(&t->pk);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);

    test_map(t, 0);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);
}

/* A rid sent as a signed type with a non-negative value is still a rid. */
static void
test_rid_as_signed_int(void **state)
{
    /* {op: "ping", rid: int8 5} */
    static const uint8_t b[] = {0x82, 0xa2, 'o', 'p', 0xa4, 'p',  'i', 'n',
                                'g',  0xa3, 'r', 'i', 'd',  0xd0, 0x05};
    struct test_ctx *t = *state;
    uint64_t rid;

    EXPECT_BYTES(t, b, 0, 5);
    assert_int_equal(msg_peek_rid(b, sizeof(b), &rid), 0);
    assert_true(rid == 5);
}

static void
test_bad_op(void **state)
{
    struct test_ctx *t = *state;

    test_map(t, 1);
    test_kv_uint(t, "rid", 11);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 11);

    test_map(t, 2);
    test_kv_uint(t, "rid", 12);
    test_kv_uint(t, "op", 3);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 12);

    test_map(t, 2);
    test_kv_uint(t, "rid", 13);
    test_key(t, "op");
    msgpack_pack_bin_with_body(&t->pk, "ping", 4);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 13);

    test_map(t, 2);
    test_kv_uint(t, "rid", 14);
    test_key(t, "op");
    msgpack_pack_nil(&t->pk);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 14);
}

static void
test_bad_unknown_op(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "frobnicate", 15, 1);
    test_kv_uint(t, "id", 1);
    EXPECT_RAW(t, FORQ_ERR_UNKNOWN_OP, 15);
    assert_non_null(strstr(t->d.why, "frobnicate"));

    /* Op names are exact: no case folding, no prefixes. */
    test_req(t, "PING", 16, 0);
    EXPECT_RAW(t, FORQ_ERR_UNKNOWN_OP, 16);
    test_req(t, "pin", 17, 0);
    EXPECT_RAW(t, FORQ_ERR_UNKNOWN_OP, 17);
    test_req(t, "pingx", 18, 0);
    EXPECT_RAW(t, FORQ_ERR_UNKNOWN_OP, 18);
    test_req(t, "", 19, 0);
    EXPECT_RAW(t, FORQ_ERR_UNKNOWN_OP, 19);
    /* An op that is not even a name is not echoed back into the message. */
    test_req(t, "\xff\xfe%s", 20, 0);
    EXPECT_RAW(t, FORQ_ERR_UNKNOWN_OP, 20);
    assert_null(strstr(t->d.why, "%s"));
}

static void
test_bad_field_types(void **state)
{
    struct test_ctx *t = *state;

    /* task as int */
    test_req(t, "submit", 21, 2);
    test_kv_uint(t, "task", 1);
    test_kv_str(t, "payload", "x");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 21);
    assert_non_null(strstr(t->d.why, "task"));

    /* payload as int */
    test_req(t, "submit", 22, 2);
    test_kv_str(t, "task", "upper");
    test_kv_uint(t, "payload", 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 22);
    assert_non_null(strstr(t->d.why, "payload"));

    /* priority as string */
    test_req(t, "submit", 23, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_str(t, "priority", "1");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 23);
    assert_non_null(strstr(t->d.why, "priority"));

    /* id negative */
    test_req(t, "status", 24, 1);
    test_kv_int(t, "id", -1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 24);
    assert_non_null(strstr(t->d.why, "id"));

    /* id as float, even a whole one */
    test_req(t, "wait", 25, 1);
    test_key(t, "id");
    msgpack_pack_double(&t->pk, 7.0);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 25);

    /* id as ext */
    test_req(t, "cancel", 26, 1);
    test_key(t, "id");
    msgpack_pack_ext_with_body(&t->pk, "\x01", 1, 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 26);

    /* queue as bin: names must be str */
    test_req(t, "submit", 27, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_key(t, "queue");
    msgpack_pack_bin_with_body(&t->pk, "q", 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 27);

    /* version as bool */
    test_req(t, "hello", 28, 1);
    test_key(t, "version");
    msgpack_pack_true(&t->pk);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 28);
}

static void
test_bad_missing_required(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "submit", 31, 1);
    test_kv_str(t, "task", "upper");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 31);
    assert_non_null(strstr(t->d.why, "payload: missing"));

    test_req(t, "submit", 32, 1);
    test_kv_str(t, "payload", "x");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 32);
    assert_non_null(strstr(t->d.why, "task: missing"));

    test_req(t, "wait", 33, 1);
    test_kv_uint(t, "timeout_ms", 5);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 33);

    test_req(t, "status", 34, 0);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 34);

    test_req(t, "hello", 35, 0);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 35);

    /* nil does not satisfy a required field */
    test_req(t, "cancel", 36, 1);
    test_key(t, "id");
    msgpack_pack_nil(&t->pk);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 36);
}

static void
test_bad_numbers_out_of_range(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "submit", 41, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_int(t, "priority", (int64_t)INT32_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 41);

    test_req(t, "submit", 42, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_int(t, "priority", (int64_t)INT32_MIN - 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 42);

    test_req(t, "submit", 43, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_uint(t, "max_retries", 1001);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 43);

    test_req(t, "submit", 44, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_uint(t, "delay_ms", MSG_MS_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 44);

    test_req(t, "submit", 45, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_uint(t, "timeout_ms", UINT64_MAX);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 45);

    test_req(t, "submit", 46, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_int(t, "delay_ms", -1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 46);

    test_req(t, "submit", 47, 3);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_key(t, "priority");
    msgpack_pack_float(&t->pk, 1.5f);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 47);

    test_req(t, "wait", 48, 2);
    test_kv_uint(t, "id", 1);
    test_kv_uint(t, "timeout_ms", MSG_MS_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 48);

    test_req(t, "wait", 49, 2);
    test_kv_uint(t, "id", 1);
    test_kv_int(t, "timeout_ms", -1); /* -1 is the C default, not a wire value */
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 49);

    test_req(t, "hello", 50, 1);
    test_kv_uint(t, "version", (uint64_t)UINT32_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 50);

    /* The boundaries themselves are fine. */
    test_req(t, "submit", 51, 5);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_uint(t, "max_retries", 1000);
    test_kv_uint(t, "delay_ms", MSG_MS_MAX);
    test_kv_int(t, "priority", INT32_MIN);
    EXPECT_RAW(t, 0, 51);
}

/* n nested one-element arrays as the value of an unknown key "x". */
static void
test_req_nested(struct test_ctx *t, uint64_t rid, size_t n)
{
    test_req(t, "ping", rid, 1);
    test_key(t, "x");
    for (size_t i = 0; i < n; i++)
        msgpack_pack_array(&t->pk, 1);
    msgpack_pack_nil(&t->pk);
}

static void
test_bad_deep_nesting(void **state)
{
    struct test_ctx *t = *state;

    test_req_nested(t, 61, 100);
    EXPECT_RAW(t, FORQ_ERR_PROTOCOL, 0);
    test_req_nested(t, 62, 100000);
    EXPECT_RAW(t, FORQ_ERR_PROTOCOL, 0);
    /* The top map is level 1: MSG_MAX_DEPTH - 1 arrays fit, one more does not. */
    test_req_nested(t, 63, MSG_MAX_DEPTH - 1);
    EXPECT_RAW(t, 0, 63);
    test_req_nested(t, 64, MSG_MAX_DEPTH);
    EXPECT_RAW(t, FORQ_ERR_PROTOCOL, 0);
    assert_non_null(strstr(t->d.why, "deep"));
}

/* Counts that the bytes cannot hold are refused before anything is allocated. */
static void
test_bad_huge_counts(void **state)
{
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    struct test_ctx *t = *state;

    EXPECT_BYTES(t, arr32, FORQ_ERR_PROTOCOL, 0);
    assert_non_null(strstr(t->d.why, "count"));
    EXPECT_BYTES(t, map32, FORQ_ERR_PROTOCOL, 0);
    assert_non_null(strstr(t->d.why, "count"));

    /* inside an otherwise fine request */
    test_req(t, "ping", 71, 1);
    test_key(t, "x");
    msgpack_pack_array(&t->pk, 0xffffffffu);
    EXPECT_RAW(t, FORQ_ERR_PROTOCOL, 0);
    test_req(t, "ping", 72, 1);
    test_key(t, "x");
    msgpack_pack_map(&t->pk, 0xffffffffu);
    EXPECT_RAW(t, FORQ_ERR_PROTOCOL, 0);
    /* the top map itself announcing more entries than there are */
    test_map(t, 0xffffffffu);
    test_kv_str(t, "op", "ping");
    test_kv_uint(t, "rid", 73);
    EXPECT_RAW(t, FORQ_ERR_PROTOCOL, 0);
}

/* A submit with one string field replaced; tests names and UTF-8 checks. */
static void
test_submit_with(struct test_ctx *t, uint64_t rid, const char *key, const char *val, size_t n)
{
    test_req(t, "submit", rid, strcmp(key, "task") == 0 ? 2 : 3);
    if (strcmp(key, "task") != 0)
        test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_key(t, key);
    msgpack_pack_str_with_body(&t->pk, val, n);
}

static void
test_bad_names(void **state)
{
    static const char *const bad[] = {
        "up per", "upper\n", "up/per", "\xc3\xa9t\xc3\xa9", "\xff", "a\0b", "",
    };
    static const size_t badlen[] = {6, 6, 6, 6, 1, 3, 0};
    struct test_ctx *t = *state;
    char name[FORQ_NAME_MAX + 2];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_submit_with(t, 80, "task", bad[i], badlen[i]);
        EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 80);
        test_submit_with(t, 81, "queue", bad[i], badlen[i]);
        EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 81);
    }
    memset(name, 'a', sizeof(name));
    test_submit_with(t, 82, "task", name, FORQ_NAME_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 82);
    test_submit_with(t, 83, "task", name, FORQ_NAME_MAX);
    EXPECT_RAW(t, 0, 83);
    test_submit_with(t, 84, "queue", "A-z_0.9:x", 9);
    EXPECT_RAW(t, 0, 84);
}

static void
test_bad_utf8(void **state)
{
    static const char *const bad[] = {
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xe2\x82",         /* cut short */
        "ok\xe2",           /* cut short at the end */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\x80",             /* stray continuation byte */
        "\xf8\x88\x80\x80\x80",
    };
    static const char *const good[] = {
        "", "plain", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\x7f",
    };
    struct test_ctx *t = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_submit_with(t, 90, "unique_key", bad[i], strlen(bad[i]));
        EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 90);
        assert_non_null(strstr(t->d.why, "UTF-8"));
        test_req(t, "hello", 91, 2);
        test_kv_uint(t, "version", 1);
        test_kv_str(t, "client", bad[i]);
        EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 91);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        test_submit_with(t, 92, "unique_key", good[i], strlen(good[i]));
        EXPECT_RAW(t, 0, 92);
    }
}

static void
test_bad_string_lengths(void **state)
{
    struct test_ctx *t = *state;
    char key[MSG_KEY_MAX + 1];

    memset(key, 'k', sizeof(key));
    test_submit_with(t, 93, "unique_key", key, MSG_KEY_MAX);
    EXPECT_RAW(t, 0, 93);
    test_submit_with(t, 94, "unique_key", key, MSG_KEY_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 94);
    test_req(t, "hello", 95, 2);
    test_kv_uint(t, "version", 1);
    test_key(t, "token");
    msgpack_pack_str_with_body(&t->pk, key, MSG_KEY_MAX + 1);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 95);
}

static void
test_bad_duplicate_keys(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "submit", 101, 4);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_kv_uint(t, "priority", 1);
    test_kv_uint(t, "priority", 2);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 101);
    assert_non_null(strstr(t->d.why, "twice"));

    /* twice, even when one of them is nil */
    test_req(t, "wait", 102, 3);
    test_kv_uint(t, "id", 1);
    test_key(t, "timeout_ms");
    msgpack_pack_nil(&t->pk);
    test_kv_uint(t, "timeout_ms", 5);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 102);

    /* op twice: the rid is still readable */
    test_req(t, "ping", 103, 1);
    test_kv_str(t, "op", "stats");
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 103);
    assert_non_null(strstr(t->d.why, "twice"));

    /* rid twice: which one? neither is trusted */
    test_req(t, "ping", 104, 1);
    test_kv_uint(t, "rid", 105);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 0);
    assert_non_null(strstr(t->d.why, "twice"));

    /* Unknown keys may repeat: they are ignored. */
    test_req(t, "ping", 106, 2);
    test_kv_uint(t, "x", 1);
    test_kv_uint(t, "x", 2);
    EXPECT_RAW(t, 0, 106);
}

static void
test_bad_key_types(void **state)
{
    struct test_ctx *t = *state;

    test_req(t, "ping", 111, 1);
    msgpack_pack_uint8(&t->pk, 1);
    msgpack_pack_uint8(&t->pk, 2);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 111);
    assert_non_null(strstr(t->d.why, "keys"));

    test_req(t, "status", 112, 1);
    msgpack_pack_bin_with_body(&t->pk, "id", 2);
    msgpack_pack_uint8(&t->pk, 2);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 112);

    test_req(t, "ping", 113, 1);
    msgpack_pack_nil(&t->pk);
    msgpack_pack_nil(&t->pk);
    EXPECT_RAW(t, FORQ_ERR_BAD_REQUEST, 113);
}

static void
test_bad_bytes(void **state)
{
    /* {op: "ping", rid: 1} followed by one more byte */
    static const uint8_t trailing[] = {0x82, 0xa2, 'o', 'p', 0xa4, 'p',  'i', 'n',
                                       'g',  0xa3, 'r', 'i', 'd',  0x01, 0xc0};
    /* {op: "ping", rid: 1, x: 0xc1} */
    static const uint8_t c1[] = {0x83, 0xa2, 'o', 'p', 0xa4, 'p',  'i', 'n', 'g',
                                 0xa3, 'r',  'i', 'd', 0x01, 0xa1, 'x', 0xc1};
    /* {op: "ping", rid: 1, x: str8 of 200 bytes (3 there)} */
    static const uint8_t str[] = {0x83, 0xa2, 'o',  'p',  0xa4, 'p',  'i', 'n', 'g', 0xa3, 'r',
                                  'i',  'd',  0x01, 0xa1, 'x',  0xd9, 200, 'a', 'b', 'c'};
    /* {op: "submit", rid: 1, task: "t", payload: bin32 of 2^32-1 bytes (1 there)} */
    static const uint8_t bin[] = {0x84, 0xa2, 'o',  'p',  0xa6, 's',  'u',  'b', 'm', 'i',
                                  't',  0xa3, 'r',  'i',  'd',  0x01, 0xa4, 't', 'a', 's',
                                  'k',  0xa1, 't',  0xa7, 'p',  'a',  'y',  'l', 'o', 'a',
                                  'd',  0xc6, 0xff, 0xff, 0xff, 0xff, 'x'};
    /* the key of the op runs past the end */
    static const uint8_t key[] = {0x81, 0xa5, 'o', 'p'};
    struct test_ctx *t = *state;

    EXPECT_BYTES(t, trailing, FORQ_ERR_PROTOCOL, 0);
    assert_non_null(strstr(t->d.why, "trailing"));
    EXPECT_BYTES(t, c1, FORQ_ERR_PROTOCOL, 0);
    EXPECT_BYTES(t, str, FORQ_ERR_PROTOCOL, 0);
    EXPECT_BYTES(t, bin, FORQ_ERR_PROTOCOL, 0);
    EXPECT_BYTES(t, key, FORQ_ERR_PROTOCOL, 0);
    /* Without the trailing byte the first one is fine. */
    test_expect_req_at(t, trailing, sizeof(trailing) - 1, 0, 1, __LINE__);
}

/* ------------------------------------------------------------------ lenient parts */

static void
test_unknown_keys_ignored(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request req;

    test_req(t, "status", 121, 5);
    test_kv_str(t, "future_field", "x");
    test_key(t, "nested");
    msgpack_pack_map(&t->pk, 1);
    test_kv_uint(t, "id", 999); /* not the top-level id */
    test_key(t, "ext");
    msgpack_pack_ext_with_body(&t->pk, "abcd", 4, 7);
    test_kv_uint(t, "id", 8);
    test_key(t, "list");
    msgpack_pack_array(&t->pk, 2);
    msgpack_pack_float(&t->pk, 1.5f);
    msgpack_pack_nil(&t->pk);
    assert_int_equal(msg_decode_request(&t->d, (const uint8_t *)t->raw.data, t->raw.size, &req), 0);
    assert_int_equal(req.op, MSG_OP_STATUS);
    assert_true(req.rid == 121);
    assert_true(req.u.status.id == 8);
}

static void
test_nil_is_absent(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request req;

    test_req(t, "wait", 122, 2);
    test_kv_uint(t, "id", 4);
    test_key(t, "timeout_ms");
    msgpack_pack_nil(&t->pk);
    assert_int_equal(msg_decode_request(&t->d, (const uint8_t *)t->raw.data, t->raw.size, &req), 0);
    assert_true(req.u.wait.timeout_ms == -1);

    test_req(t, "submit", 123, 8);
    test_kv_str(t, "task", "upper");
    test_kv_str(t, "payload", "x");
    test_key(t, "queue");
    msgpack_pack_nil(&t->pk);
    test_key(t, "priority");
    msgpack_pack_nil(&t->pk);
    test_key(t, "delay_ms");
    msgpack_pack_nil(&t->pk);
    test_key(t, "timeout_ms");
    msgpack_pack_nil(&t->pk);
    test_key(t, "max_retries");
    msgpack_pack_nil(&t->pk);
    test_key(t, "unique_key");
    msgpack_pack_nil(&t->pk);
    assert_int_equal(msg_decode_request(&t->d, (const uint8_t *)t->raw.data, t->raw.size, &req), 0);
    assert_int_equal(req.u.submit.queue.len, 0);
    assert_int_equal(req.u.submit.priority, 0);
    assert_true(req.u.submit.delay_ms == 0);
    assert_true(req.u.submit.timeout_ms == 0);
    assert_int_equal(req.u.submit.max_retries, 0);
    assert_int_equal(req.u.submit.unique_key.len, 0);
}

/* Field order is not significant; payload may be a str. */
static void
test_any_order_and_str_payload(void **state)
{
    struct test_ctx *t = *state;
    struct msg_request req;

    test_map(t, 5);
    test_kv_int(t, "priority", -7);
    test_kv_str(t, "payload", "hello");
    test_kv_str(t, "task", "upper");
    test_kv_uint(t, "rid", 124);
    test_kv_str(t, "op", "submit");
    assert_int_equal(msg_decode_request(&t->d, (const uint8_t *)t->raw.data, t->raw.size, &req), 0);
    assert_int_equal(req.op, MSG_OP_SUBMIT);
    assert_true(req.rid == 124);
    assert_int_equal(req.u.submit.priority, -7);
    test_str_eq(req.u.submit.payload, msg_str_c("hello"));
    test_str_eq(req.u.submit.task, msg_str_c("upper"));
}

/* ------------------------------------------------------------------ malformed responses */

static void
test_bad_responses(void **state)
{
    struct test_ctx *t = *state;
    struct msg_response resp;

    /* err.code must be negative */
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "err");
    msgpack_pack_map(&t->pk, 1);
    test_kv_uint(t, "code", 3);
    EXPECT_RESP(t, MSG_OP_PING, FORQ_ERR_BAD_REQUEST);

    /* err without a code */
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "err");
    msgpack_pack_map(&t->pk, 1);
    test_kv_str(t, "msg", "x");
    EXPECT_RESP(t, MSG_OP_PING, FORQ_ERR_BAD_REQUEST);
    assert_non_null(strstr(t->d.why, "err.code: missing"));

    /* err twice */
    test_map(t, 3);
    test_kv_uint(t, "rid", 1);
    test_key(t, "err");
    msgpack_pack_nil(&t->pk);
    test_key(t, "err");
    msgpack_pack_map(&t->pk, 1);
    test_kv_int(t, "code", -4);
    EXPECT_RESP(t, MSG_OP_PING, FORQ_ERR_BAD_REQUEST);
    assert_non_null(strstr(t->d.why, "err: given twice"));

    /* err not a map */
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_kv_int(t, "err", -4);
    EXPECT_RESP(t, MSG_OP_PING, FORQ_ERR_BAD_REQUEST);

    /* err: nil is no error */
    test_map(t, 3);
    test_kv_uint(t, "rid", 1);
    test_key(t, "err");
    msgpack_pack_nil(&t->pk);
    test_kv_uint(t, "id", 9);
    EXPECT_RESP(t, MSG_OP_SUBMIT, 0);

    /* job missing; job without a state; job with a bad state */
    test_map(t, 1);
    test_kv_uint(t, "rid", 1);
    EXPECT_RESP(t, MSG_OP_WAIT, FORQ_ERR_BAD_REQUEST);
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "job");
    msgpack_pack_map(&t->pk, 1);
    test_kv_uint(t, "id", 1);
    EXPECT_RESP(t, MSG_OP_STATUS, FORQ_ERR_BAD_REQUEST);
    assert_non_null(strstr(t->d.why, "job.state: missing"));
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "job");
    msgpack_pack_map(&t->pk, 2);
    test_kv_uint(t, "id", 1);
    test_kv_str(t, "state", "exploded");
    EXPECT_RESP(t, MSG_OP_STATUS, FORQ_ERR_BAD_REQUEST);
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "job");
    msgpack_pack_map(&t->pk, 2);
    test_kv_uint(t, "id", 1);
    test_kv_uint(t, "state", 1);
    EXPECT_RESP(t, MSG_OP_CANCEL, FORQ_ERR_BAD_REQUEST);

    /* stats.queues not an array; an element without a name */
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "stats");
    msgpack_pack_map(&t->pk, 1);
    test_kv_uint(t, "queues", 1);
    EXPECT_RESP(t, MSG_OP_STATS, FORQ_ERR_BAD_REQUEST);
    test_map(t, 2);
    test_kv_uint(t, "rid", 1);
    test_key(t, "stats");
    msgpack_pack_map(&t->pk, 1);
    test_key(t, "queues");
    msgpack_pack_array(&t->pk, 2);
    msgpack_pack_map(&t->pk, 1);
    test_kv_str(t, "name", "a");
    msgpack_pack_map(&t->pk, 1);
    test_kv_uint(t, "queued", 1);
    EXPECT_RESP(t, MSG_OP_STATS, FORQ_ERR_BAD_REQUEST);
    assert_non_null(strstr(t->d.why, "stats.queues[1].name: missing"));

    /* hello without version; a response that is not a map; no rid */
    test_map(t, 1);
    test_kv_uint(t, "rid", 1);
    EXPECT_RESP(t, MSG_OP_HELLO, FORQ_ERR_BAD_REQUEST);
    msgpack_sbuffer_clear(&t->raw);
    msgpack_pack_array(&t->pk, 0);
    EXPECT_RESP(t, MSG_OP_PING, FORQ_ERR_PROTOCOL);
    test_map(t, 1);
    test_kv_uint(t, "id", 1);
    EXPECT_RESP(t, MSG_OP_SUBMIT, FORQ_ERR_BAD_REQUEST);

    /* op out of range */
    test_map(t, 1);
    test_kv_uint(t, "rid", 1);
    assert_int_equal(
        msg_decode_response(&t->d, MSG_OP__COUNT, (const uint8_t *)t->raw.data, t->raw.size, &resp),
        FORQ_ERR_INVALID);
    assert_int_equal(
        msg_decode_response(&t->d, -1, (const uint8_t *)t->raw.data, t->raw.size, &resp),
        FORQ_ERR_INVALID);
}

/* ------------------------------------------------------------------ small API */

static void
test_peek_rid(void **state)
{
    static const uint8_t bad[] = {0x81, 0xa3, 'r', 'i'};
    struct test_ctx *t = *state;
    uint64_t rid;

    test_req(t, "nonsense", 131, 0);
    assert_int_equal(msg_peek_rid((const uint8_t *)t->raw.data, t->raw.size, &rid), 0);
    assert_true(rid == 131);
    test_map(t, 1);
    test_kv_str(t, "op", "ping");
    assert_int_equal(msg_peek_rid((const uint8_t *)t->raw.data, t->raw.size, &rid),
                     FORQ_ERR_NOT_FOUND);
    test_map(t, 1);
    test_kv_str(t, "rid", "1");
    assert_int_equal(msg_peek_rid((const uint8_t *)t->raw.data, t->raw.size, &rid),
                     FORQ_ERR_PROTOCOL);
    assert_int_equal(msg_peek_rid(bad, sizeof(bad), &rid), FORQ_ERR_PROTOCOL);
    assert_true(rid == 0);
}

static void
test_op_names_and_strings(void **state)
{
    static const char *const names[MSG_OP__COUNT] = {
        "hello", "ping", "submit", "wait", "status", "cancel", "stats", "watch", "unwatch",
        "queue", "join"};
    struct msg_str s;

    for (int op = 0; op < MSG_OP__COUNT; op++)
        assert_string_equal(msg_op_name(op), names[op]);
    assert_null(msg_op_name(-1));
    assert_null(msg_op_name(MSG_OP__COUNT));
    s = msg_str_c("abc");
    assert_int_equal(s.len, 3);
    assert_true(msg_str_eq(s, "abc"));
    assert_false(msg_str_eq(s, "ab"));
    assert_false(msg_str_eq(s, "abcd"));
    s = msg_str_c(NULL);
    assert_int_equal(s.len, 0);
    assert_true(msg_str_eq(s, ""));
}

static void
test_error_names(void **state)
{
    assert_string_equal(forq_errname(FORQ_OK), "ok");
    assert_string_equal(forq_errname(FORQ_ERR_PROTOCOL), "protocol");
    assert_string_equal(forq_errname(FORQ_ERR_UNKNOWN_TASK), "unknown_task");
    assert_string_equal(forq_errname(FORQ_ERR__LAST), "connect");
    assert_string_equal(forq_errname(FORQ_ERR__LAST - 1), "unknown");
    assert_string_equal(forq_errname(1), "unknown");
    for (int c = 0; c >= FORQ_ERR__LAST; c--) {
        assert_non_null(forq_errname(c));
        assert_string_not_equal(forq_errname(c), "unknown");
        assert_string_not_equal(forq_strerror(c), "unknown error");
    }
    for (int st = 0; st < FORQ_STATE__COUNT; st++)
        assert_int_equal(forq_state_parse(forq_state_name(st), strlen(forq_state_name(st))), st);
    assert_int_equal(forq_state_parse("queue", 5), -1);
    assert_string_equal(forq_state_name(FORQ_STATE__COUNT), "unknown");
    assert_true(forq_state_is_final(FORQ_STATE_CANCELLED));
    assert_false(forq_state_is_final(FORQ_STATE_RUNNING));
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

/* Task messages may hold any bytes; scrubbing makes them a valid str. */
static void
test_utf8_scrub(void **state)
{
    char ok[] = "plain ascii, caf\xc3\xa9, \xf0\x9f\x98\x80";
    char bad[] = "a\xff" "b\xc3" "c\xed\xa0\x80" "d\xc0\xaf" "e";
    char empty[] = "";

    (void)state;
    assert_int_equal(msg_utf8_scrub(ok), 0);
    assert_string_equal(ok, "plain ascii, caf\xc3\xa9, \xf0\x9f\x98\x80");
    /* A stray byte, a cut sequence, a surrogate, an overlong form. */
    assert_int_equal(msg_utf8_scrub(bad), 7);
    assert_string_equal(bad, "a?b?c???d??e");
    assert_true(msg_utf8_valid((const uint8_t *)bad, strlen(bad)));
    assert_int_equal(msg_utf8_scrub(empty), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_scrub),
        T(test_rt_hello),
        T(test_rt_ping_and_stats),
        T(test_rt_submit_full),
        T(test_rt_submit_minimal),
        T(test_rt_wait),
        T(test_rt_status_cancel),
        T(test_encode_appends_and_rolls_back),
        T(test_rt_resp_hello_ping_submit),
        T(test_rt_resp_job_with_result),
        T(test_rt_resp_job_with_error),
        T(test_rt_resp_stats),
        T(test_rt_resp_stats_full),
        T(test_rt_resp_errors_every_op),
        T(test_encode_response_error_msg_uses_len),
        T(test_error_without_text_is_stable),
        T(test_bad_truncated),
        T(test_bad_over_limit),
        T(test_bad_top_not_a_map),
        T(test_bad_rid),
        T(test_rid_as_signed_int),
        T(test_bad_op),
        T(test_bad_unknown_op),
        T(test_bad_field_types),
        T(test_bad_missing_required),
        T(test_bad_numbers_out_of_range),
        T(test_bad_deep_nesting),
        T(test_bad_huge_counts),
        T(test_bad_names),
        T(test_bad_utf8),
        T(test_bad_string_lengths),
        T(test_bad_duplicate_keys),
        T(test_bad_key_types),
        T(test_bad_bytes),
        T(test_unknown_keys_ignored),
        T(test_nil_is_absent),
        T(test_any_order_and_str_payload),
        T(test_bad_responses),
        T(test_peek_rid),
        T(test_op_names_and_strings),
        T(test_rt_watch_unwatch),
        T(test_bad_watch),
        T(test_rt_job_control),
        T(test_bad_job_control),
        T(test_rt_resp_job_control),
        T(test_rt_resp_watch),
        T(test_error_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
