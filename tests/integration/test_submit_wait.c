/*
 * test_submit_wait.c — SUBMIT with wait_ms: submit-and-wait in one request.
 * The answer comes once the job has finished and carries its snapshot and
 * result; if wait_ms passes first it carries the id alone and the job goes
 * on. A bad wait_ms is refused while everyone else is served, a client that
 * leaves mid-wait loses nothing, and libforq's forq_submit (wait_ms) and
 * forq_map (which relies on it) hand back outcomes without a second request.
 *
 * Jobs that must not finish yet sit in a paused queue; no assertion depends
 * on timing.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define LONG_WAIT 600000 /* ms: never reached in a passing test */

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", NULL};

    return harness_fixture_setup(state, args);
}

/* A raw SUBMIT of task(payload) to queue with wait_ms; the answer in *resp (body in *buf). */
static void
raw_submit(int fd, struct msg_decoder *d, uint64_t rid, const char *task, const char *payload,
           const char *queue, const char *key, uint64_t wait_ms, struct msg_response *resp,
           uint8_t **buf)
{
    struct msg_request req = {0};

    req.op = MSG_OP_SUBMIT;
    req.rid = rid;
    req.u.submit.task = msg_str_c(task);
    req.u.submit.payload = msg_str_c(payload);
    req.u.submit.queue = msg_str_c(queue);
    req.u.submit.unique_key = msg_str_c(key);
    req.u.submit.wait_ms = wait_ms;
    assert_int_equal(harness_call(fd, d, &req, resp, buf), 0);
    assert_int_equal(resp->rid, rid);
}

static void
expect_ping(forq_client *c)
{
    assert_int_equal(forq_ping(c), 0);
}

static void
test_answer_carries_the_result(void **state)
{
    struct harness_fixture *fx = *state;
    int fd = harness_connect(&fx->h);
    struct msg_decoder d;
    struct msg_response resp;
    uint8_t *buf;

    assert_true(fd >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    raw_submit(fd, &d, 7, "upper", "hello", NULL, NULL, LONG_WAIT, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    assert_true(resp.id > 0);
    assert_int_equal(resp.job.id, resp.id);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(resp.job.result.len, 5);
    assert_memory_equal(resp.job.result.ptr, "HELLO", 5);
    free(buf);

    /* A failing job: the answer is still a successful SUBMIT, with the failure inside. */
    raw_submit(fd, &d, 8, "fail", "boom", NULL, NULL, LONG_WAIT, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(resp.job.id, resp.id);
    assert_int_equal(resp.job.state, FORQ_STATE_FAILED);
    assert_int_equal(resp.job.result.len, 0);
    free(buf);

    /* Without wait_ms the answer is the id alone, as before. */
    raw_submit(fd, &d, 9, "upper", "x", NULL, NULL, 0, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    assert_true(resp.id > 0);
    assert_int_equal(resp.job.id, 0);
    free(buf);
    msg_decoder_fini(&d);
    close(fd);
}

static void
test_wait_ends_first(void **state)
{
    struct harness_fixture *fx = *state;
    int fd = harness_connect(&fx->h);
    struct msg_decoder d;
    struct msg_response resp;
    forq_future *f;
    const void *data;
    size_t len;
    uint8_t *buf;
    uint64_t id;

    assert_true(fd >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(forq_queue_pause(fx->c, "sw-paused", NULL), 0);
    raw_submit(fd, &d, 1, "upper", "later", "sw-paused", NULL, 20, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    id = resp.id;
    assert_true(id > 0);
    assert_int_equal(resp.job.id, 0); /* still queued: no snapshot */
    free(buf);

    /* The job goes on: once the queue resumes, WAIT has its result. */
    assert_int_equal(forq_queue_resume(fx->c, "sw-paused", NULL), 0);
    assert_int_equal(forq_future_from_id(fx->c, id, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "LATER", 5);
    forq_future_free(f);
    msg_decoder_fini(&d);
    close(fd);
}

static void
test_bad_wait_ms(void **state)
{
    struct harness_fixture *fx = *state;
    int fd = harness_connect(&fx->h);
    struct msg_decoder d;
    struct msg_response resp;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint8_t *buf;
    size_t blen;

    assert_true(fd >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    /* Over MS_MAX. */
    raw_submit(fd, &d, 3, "upper", "x", NULL, NULL, MSG_MS_MAX + 1, &resp, &buf);
    assert_int_equal(resp.err.code, FORQ_ERR_BAD_REQUEST);
    assert_non_null(strstr(resp.err.msg.ptr, "wait_ms"));
    free(buf);

    /* A string where a number belongs. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "submit", 6);
    msgpack_pack_str_with_body(&pk, "rid", 3);
    msgpack_pack_uint64(&pk, 4);
    msgpack_pack_str_with_body(&pk, "task", 4);
    msgpack_pack_str_with_body(&pk, "upper", 5);
    msgpack_pack_str_with_body(&pk, "payload", 7);
    msgpack_pack_bin_with_body(&pk, "x", 1);
    msgpack_pack_str_with_body(&pk, "wait_ms", 7);
    msgpack_pack_str_with_body(&pk, "soon", 4);
    {
        uint8_t hdr[4] = {(uint8_t)(sb.size >> 24), (uint8_t)(sb.size >> 16),
                          (uint8_t)(sb.size >> 8), (uint8_t)sb.size};

        assert_int_equal(harness_send(fd, hdr, sizeof(hdr)), 0);
        assert_int_equal(harness_send(fd, sb.data, sb.size), 0);
    }
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(harness_recv_frame(fd, &buf, &blen), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_SUBMIT, buf, blen, &resp), 0);
    assert_int_equal(resp.rid, 4);
    assert_int_equal(resp.err.code, FORQ_ERR_BAD_REQUEST);
    free(buf);

    /* The same connection and everyone else are still served. */
    raw_submit(fd, &d, 5, "upper", "ok", NULL, NULL, LONG_WAIT, &resp, &buf);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_memory_equal(resp.job.result.ptr, "OK", 2);
    free(buf);
    expect_ping(fx->c);
    msg_decoder_fini(&d);
    close(fd);
}

static void
test_client_leaves_mid_wait(void **state)
{
    struct harness_fixture *fx = *state;
    int fd = harness_connect(&fx->h);
    struct msg_request req = {0};
    struct forq_queue_stats q;
    forq_future *f;
    const void *data;
    size_t len;

    assert_true(fd >= 0);
    assert_int_equal(forq_queue_pause(fx->c, "sw-leave", NULL), 0);
    req.op = MSG_OP_SUBMIT;
    req.rid = 1;
    req.u.submit.task = msg_str_c("upper");
    req.u.submit.payload = msg_str_c("kept");
    req.u.submit.queue = msg_str_c("sw-leave");
    req.u.submit.unique_key = msg_str_c("sw-leave-key");
    req.u.submit.wait_ms = LONG_WAIT;
    assert_int_equal(harness_send_request(fd, &req), 0);
    /* The job is in once the queue counts it; then the client goes. */
    for (int64_t end = harness_now_ms() + HARNESS_GUARD_MS;;) {
        assert_int_equal(forq_queue_info(fx->c, "sw-leave", &q), 0);
        if (q.queued == 1)
            break;
        assert_true(harness_now_ms() < end);
        harness_sleep_ms(2);
    }
    close(fd);

    /* The job was not lost with its submitter: the same key finds it, and it runs. */
    {
        struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;

        o.queue = "sw-leave";
        o.unique_key = "sw-leave-key";
        assert_int_equal(forq_submit(fx->c, "upper", "other", 5, &o, &f), 0);
    }
    assert_int_equal(forq_queue_resume(fx->c, "sw-leave", NULL), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "KEPT", 4);
    forq_future_free(f);
    expect_ping(fx->c);
}

static void
test_duplicate_waits_for_the_first(void **state)
{
    struct harness_fixture *fx = *state;
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    int fd = harness_connect(&fx->h);
    struct msg_decoder d;
    struct msg_response resp;
    forq_future *first;
    uint8_t *buf;

    assert_true(fd >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    o.queue = "sw-dup";
    o.unique_key = "sw-dup-key";
    assert_int_equal(forq_queue_pause(fx->c, "sw-dup", NULL), 0);
    assert_int_equal(forq_submit(fx->c, "upper", "one", 3, &o, &first), 0);
    raw_submit(fd, &d, 2, "upper", "two", "sw-dup", "sw-dup-key", 30, &resp, &buf);
    /* Timed out: the first job's id, flagged as a duplicate, no snapshot. */
    assert_int_equal(resp.id, forq_future_id(first));
    assert_int_equal(resp.duplicate, 1);
    assert_int_equal(resp.job.id, 0);
    free(buf);
    assert_int_equal(forq_queue_resume(fx->c, "sw-dup", NULL), 0);
    assert_int_equal(forq_future_result(first, HARNESS_GUARD_MS, NULL, NULL), 0);
    forq_future_free(first);
    msg_decoder_fini(&d);
    close(fd);
}

/* forq_submit with wait_ms caches the outcome: it stays readable with forqd gone. */
static void
test_libforq_caches_the_outcome(void **state)
{
    struct harness h;
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    forq_client *c;
    forq_future *ok, *bad;
    const void *data;
    size_t len;

    (void)state;
    assert_int_equal(harness_start(&h, NULL), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    o.wait_ms = LONG_WAIT;
    assert_int_equal(forq_submit(c, "upper", "cached", 6, &o, &ok), 0);
    assert_int_equal(forq_submit(c, "fail", "no", 2, &o, &bad), 0);
    assert_int_equal(harness_stop(&h), 0);

    assert_int_equal(forq_future_result(ok, 0, &data, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(data, "CACHED", 6);
    assert_int_equal(forq_future_result(bad, 0, NULL, NULL), FORQ_ERR_TASK_FAILED);
    assert_non_null(forq_future_error(bad));
    forq_future_free(ok);
    forq_future_free(bad);
    forq_client_free(c);
}

/* forq_map over a window smaller than its input, with a failure in the middle. */
struct map_in {
    const char *in[5];
    int codes[5];
    char out[5][8];
    size_t seen;
};

static int
map_next(void *arg, size_t i, const void **payload, size_t *len)
{
    struct map_in *m = arg;

    if (i >= 5)
        return 0;
    *payload = m->in[i];
    *len = strlen(m->in[i]);
    return 1;
}

static int
map_done(void *arg, size_t i, int code, const void *result, size_t len, const char *msg)
{
    struct map_in *m = arg;

    (void)msg;
    assert_int_equal(i, m->seen); /* in input order */
    m->seen++;
    m->codes[i] = code;
    if (code == 0 && len < sizeof(m->out[i]))
        memcpy(m->out[i], result, len);
    return 0;
}

static void
test_map_hands_back_in_order(void **state)
{
    struct harness_fixture *fx = *state;
    struct map_in m = {.in = {"a", "bb", "ccc", "dddd", "eeeee"}};

    assert_int_equal(forq_map(fx->c, "upper", NULL, 2, -1, map_next, map_done, &m), 0);
    assert_int_equal(m.seen, 5);
    assert_string_equal(m.out[0], "A");
    assert_string_equal(m.out[4], "EEEEE");
    memset(&m, 0, sizeof(m));
    m.in[0] = "1";
    m.in[1] = "2";
    m.in[2] = "3";
    m.in[3] = "4";
    m.in[4] = "5";
    assert_int_equal(forq_map(fx->c, "fail", NULL, 3, -1, map_next, map_done, &m), 0);
    assert_int_equal(m.seen, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(m.codes[i], FORQ_ERR_TASK_FAILED);
    expect_ping(fx->c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_carries_the_result),
        cmocka_unit_test(test_wait_ends_first),
        cmocka_unit_test(test_bad_wait_ms),
        cmocka_unit_test(test_client_leaves_mid_wait),
        cmocka_unit_test(test_duplicate_waits_for_the_first),
        cmocka_unit_test(test_libforq_caches_the_outcome),
        cmocka_unit_test(test_map_hands_back_in_order),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
