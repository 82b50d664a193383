/*
 * test_protocol.c — forqd over raw sockets: every op, the built-in tasks,
 * refused requests, malformed frames, pipelining. Speaks bytes through
 * proto/ only, so it tests the daemon independently of libforq.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"

#define MAX_PAYLOAD 4096

struct ctx {
    struct harness h;
    struct msg_decoder d;
    int fd; /* a well-behaved client, used across tests */
    uint64_t rid;
};

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", "--max-payload=4096", "--max-result=4096",
                                       "--max-frame=16384", NULL};
    struct ctx *c = calloc(1, sizeof(*c));

    *state = c;
    if (c == NULL)
        return -1;
    c->fd = -1;
    if (msg_decoder_init(&c->d) != 0 || harness_start(&c->h, args) != 0)
        return -1;
    if ((c->fd = harness_connect(&c->h)) < 0)
        return -1;
    return 0;
}

static int
group_teardown(void **state)
{
    struct ctx *c = *state;

    if (c == NULL)
        return 0;
    if (c->fd >= 0)
        close(c->fd);
    msg_decoder_fini(&c->d);
    /* A clean SIGTERM shutdown exits 0. */
    assert_int_equal(harness_stop(&c->h), 0);
    free(c);
    return 0;
}

/* Submit on fd and return the job id (the request must succeed). */
static uint64_t
submit(struct ctx *c, int fd, const char *task, const char *payload, int32_t prio)
{
    struct msg_request req = {.op = MSG_OP_SUBMIT, .rid = ++c->rid};
    struct msg_response resp;
    uint8_t *buf;
    uint64_t id;

    req.u.submit.task = msg_str_c(task);
    req.u.submit.payload = msg_str_c(payload);
    req.u.submit.priority = prio;
    assert_int_equal(harness_call(fd, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.rid, req.rid);
    assert_int_equal(resp.err.code, 0);
    assert_true(resp.id > 0);
    id = resp.id;
    free(buf);
    return id;
}

/* WAIT without limit; the caller frees *buf, which backs resp. */
static void
wait_job(struct ctx *c, int fd, uint64_t id, struct msg_response *resp, uint8_t **buf)
{
    struct msg_request req = {.op = MSG_OP_WAIT, .rid = ++c->rid};

    req.u.wait.id = id;
    req.u.wait.timeout_ms = -1;
    assert_int_equal(harness_call(fd, &c->d, &req, resp, buf), 0);
    assert_int_equal(resp->rid, req.rid);
}

/* Submit on fd, wait, and compare the result with want. */
static void
expect_result_on(struct ctx *c, int fd, const char *task, const char *payload, const char *want)
{
    uint64_t id = submit(c, fd, task, payload, 0);
    struct msg_response resp;
    uint8_t *buf;

    wait_job(c, fd, id, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(resp.job.id, id);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(resp.job.result.len, strlen(want));
    assert_memory_equal(resp.job.result.ptr, want, strlen(want));
    assert_true(msg_str_eq(resp.job.task, task));
    assert_true(resp.job.attempts == 1 && resp.job.worker_pid > 0);
    free(buf);
}

/* expect_result_on the well-behaved connection. */
static void
expect_result(struct ctx *c, const char *task, const char *payload, const char *want)
{
    expect_result_on(c, c->fd, task, payload, want);
}

/*
 * Send a request that must be refused with code (and, unless what is NULL,
 * a message naming what), on a connection that stays usable.
 */
static void
expect_refused_with(struct ctx *c, int fd, const struct msg_request *req, int code,
                    const char *what)
{
    struct msg_request ping = {.op = MSG_OP_PING, .rid = ++c->rid};
    struct msg_response resp;
    uint8_t *buf;

    assert_int_equal(harness_call(fd, &c->d, req, &resp, &buf), 0);
    assert_int_equal(resp.rid, req->rid);
    assert_int_equal(resp.err.code, code);
    assert_true(resp.err.msg.len > 0);
    if (what != NULL && memmem(resp.err.msg.ptr, resp.err.msg.len, what, strlen(what)) == NULL)
        fail_msg("'%s' not in '%.*s'", what, (int)resp.err.msg.len, resp.err.msg.ptr);
    free(buf);
    assert_int_equal(harness_call(fd, &c->d, &ping, &resp, &buf), 0);
    assert_int_equal(resp.rid, ping.rid);
    assert_int_equal(resp.err.code, 0);
    free(buf);
}

static void
expect_refused(struct ctx *c, int fd, const struct msg_request *req, int code)
{
    expect_refused_with(c, fd, req, code, NULL);
}

/*
 * Another client, on a connection of its own opened now, gets a job done
 * (while the offending connection is still open).
 */
static void
other_served(struct ctx *c)
{
    int fd = harness_connect(&c->h);

    assert_true(fd >= 0);
    expect_result_on(c, fd, "upper", "another client", "ANOTHER CLIENT");
    close(fd);
}

static void
test_hello_and_ping(void **state)
{
    struct ctx *c = *state;
    struct msg_request req = {.op = MSG_OP_HELLO, .rid = 77};
    struct msg_response resp;
    uint8_t *buf;

    req.u.hello.version = MSG_PROTO_VERSION;
    assert_int_equal(harness_call(c->fd, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.rid, 77);
    assert_int_equal(resp.hello.version, MSG_PROTO_VERSION);
    assert_int_equal(resp.hello.max_frame, 16384);
    assert_true(resp.hello.server.len > 5 && memcmp(resp.hello.server.ptr, "forqd", 5) == 0);
    free(buf);

    req.u.hello.version = 99; /* a version this server does not speak */
    req.rid = 78;
    expect_refused(c, c->fd, &req, FORQ_ERR_VERSION);
}

static void
test_builtin_tasks(void **state)
{
    struct ctx *c = *state;

    expect_result(c, "upper", "hello, World 42", "HELLO, WORLD 42");
    expect_result(c, "echo", "as is", "as is");
    expect_result(c, "echo", "", "");
    expect_result(c, "sleep", "1", "");
}

static void
test_fib_25_to_30(void **state)
{
    static const char *const want[] = {"75025", "121393", "196418", "317811", "514229", "832040"};
    struct ctx *c = *state;
    char n[8];

    for (int i = 0; i < 6; i++) {
        snprintf(n, sizeof(n), "%d", 25 + i);
        expect_result(c, "fib", n, want[i]);
    }
}

static void
test_failing_task(void **state)
{
    struct ctx *c = *state;
    uint64_t id = submit(c, c->fd, "fail", "it broke", 0);
    struct msg_response resp;
    uint8_t *buf;

    wait_job(c, c->fd, id, &resp, &buf);
    assert_int_equal(resp.err.code, 0); /* the WAIT succeeded ... */
    assert_int_equal(resp.job.state, FORQ_STATE_FAILED); /* ... on a job that failed */
    assert_int_equal(resp.job.error.code, FORQ_ERR_TASK_FAILED);
    assert_true(msg_str_eq(resp.job.error.msg, "it broke"));
    assert_null(resp.job.result.ptr);
    free(buf);

    /* A message that is not UTF-8 still travels as a valid str: bad bytes become '?'. */
    id = submit(c, c->fd, "fail", "bad\xff\xfe end", 0);
    wait_job(c, c->fd, id, &resp, &buf); /* decoding checks the str is valid UTF-8 */
    assert_int_equal(resp.job.state, FORQ_STATE_FAILED);
    assert_true(msg_str_eq(resp.job.error.msg, "bad?? end"));
    free(buf);

    /* A task's own input check fails the job too, with a reason. */
    id = submit(c, c->fd, "fib", "not a number", 0);
    wait_job(c, c->fd, id, &resp, &buf);
    assert_int_equal(resp.job.state, FORQ_STATE_FAILED);
    assert_int_equal(resp.job.error.code, FORQ_ERR_TASK_FAILED);
    assert_true(resp.job.error.msg.len > 0);
    free(buf);
}

static void
test_refused_submissions(void **state)
{
    struct ctx *c = *state;
    struct msg_request req = {.op = MSG_OP_SUBMIT};
    char *big = malloc(MAX_PAYLOAD + 2);

    assert_non_null(big);
    req.rid = ++c->rid;
    req.u.submit.task = msg_str_c("no-such-task");
    req.u.submit.payload = msg_str_c("x");
    expect_refused(c, c->fd, &req, FORQ_ERR_UNKNOWN_TASK);

    memset(big, 'a', MAX_PAYLOAD + 1);
    big[MAX_PAYLOAD + 1] = '\0';
    req.rid = ++c->rid;
    req.u.submit.task = msg_str_c("upper");
    req.u.submit.payload = msg_str_c(big);
    expect_refused_with(c, c->fd, &req, FORQ_ERR_TOO_BIG, "exceeds the limit of 4096");
    other_served(c);
    free(big);

    /* Exactly at the limit is accepted. */
    big = calloc(1, MAX_PAYLOAD + 1);
    assert_non_null(big);
    memset(big, 'b', MAX_PAYLOAD);
    assert_true(submit(c, c->fd, "echo", big, 0) > 0);
    free(big);
}

static void
test_unknown_ids_and_states(void **state)
{
    struct ctx *c = *state;
    struct msg_request req = {.op = MSG_OP_STATUS, .rid = ++c->rid};
    struct msg_response resp;
    uint64_t id;
    uint8_t *buf;

    req.u.status.id = 999999999;
    expect_refused(c, c->fd, &req, FORQ_ERR_NOT_FOUND);
    req.op = MSG_OP_WAIT;
    req.rid = ++c->rid;
    req.u.wait.id = 999999999;
    req.u.wait.timeout_ms = -1;
    expect_refused(c, c->fd, &req, FORQ_ERR_NOT_FOUND);
    req.op = MSG_OP_CANCEL;
    req.rid = ++c->rid;
    req.u.cancel.id = 999999999;
    expect_refused(c, c->fd, &req, FORQ_ERR_NOT_FOUND);

    /* A finished job cannot be cancelled; its STATUS has no result bytes. */
    id = submit(c, c->fd, "echo", "done", 0);
    wait_job(c, c->fd, id, &resp, &buf);
    free(buf);
    req.op = MSG_OP_CANCEL;
    req.rid = ++c->rid;
    req.u.cancel.id = id;
    expect_refused(c, c->fd, &req, FORQ_ERR_STATE);
    req.op = MSG_OP_STATUS;
    req.rid = ++c->rid;
    req.u.status.id = id;
    assert_int_equal(harness_call(c->fd, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(resp.job.result_size, 4);
    assert_null(resp.job.result.ptr);
    assert_true(resp.job.finished_us >= resp.job.started_us &&
                resp.job.started_us >= resp.job.created_us && resp.job.created_us > 0);
    free(buf);
}

/* STATUS of id on fd; returns the worker pid (the job must exist). */
static pid_t
status_pid(struct ctx *c, uint64_t id, int *state_out)
{
    struct msg_request req = {.op = MSG_OP_STATUS, .rid = ++c->rid};
    struct msg_response resp;
    uint8_t *buf;
    pid_t pid;

    req.u.status.id = id;
    assert_int_equal(harness_call(c->fd, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.err.code, 0);
    pid = resp.job.worker_pid;
    *state_out = resp.job.state;
    free(buf);
    return pid;
}

/*
 * Keep both workers busy with long sleeps until release_workers kills them,
 * so that jobs queued meanwhile stay queued however slow the machine is.
 */
static void
hold_workers(struct ctx *c, uint64_t busy[2], pid_t pids[2])
{
    int st;

    for (int i = 0; i < 2; i++) {
        busy[i] = submit(c, c->fd, "sleep", "100000", 0);
        do
            pids[i] = status_pid(c, busy[i], &st);
        while (st != FORQ_STATE_RUNNING);
        assert_int_equal(harness_wait_sleeping(pids[i]), 0); /* really started */
    }
}

static void
release_workers(struct ctx *c, const uint64_t busy[2], const pid_t pids[2])
{
    struct msg_response resp;
    uint8_t *buf;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(kill(pids[i], SIGKILL), 0);
        wait_job(c, c->fd, busy[i], &resp, &buf);
        assert_int_equal(resp.job.error.code, FORQ_ERR_WORKER_LOST);
        free(buf);
    }
}

static void
test_wait_timeout_and_cancel(void **state)
{
    struct ctx *c = *state;
    struct msg_request req = {.op = MSG_OP_WAIT};
    struct msg_response resp;
    uint64_t busy[2], queued;
    pid_t pids[2];
    uint8_t *buf;

    /* Occupy both workers (until the test kills them), then queue one more job. */
    hold_workers(c, busy, pids);
    queued = submit(c, c->fd, "echo", "never runs", 0);

    req.rid = ++c->rid;
    req.u.wait.id = queued;
    req.u.wait.timeout_ms = 0; /* answer now */
    expect_refused(c, c->fd, &req, FORQ_ERR_TIMEOUT);
    req.rid = ++c->rid;
    req.u.wait.timeout_ms = 20; /* a parked wait that times out */
    expect_refused(c, c->fd, &req, FORQ_ERR_TIMEOUT);

    memset(&req, 0, sizeof(req)); /* cancel.running must not inherit wait.timeout_ms */
    req.op = MSG_OP_CANCEL;
    req.rid = ++c->rid;
    req.u.cancel.id = queued;
    assert_int_equal(harness_call(c->fd, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(resp.job.state, FORQ_STATE_CANCELLED);
    free(buf);
    /* Cancelling again is fine; a running job cannot be cancelled. */
    req.rid = ++c->rid;
    assert_int_equal(harness_call(c->fd, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.job.state, FORQ_STATE_CANCELLED);
    free(buf);
    req.rid = ++c->rid;
    req.u.cancel.id = busy[0];
    expect_refused(c, c->fd, &req, FORQ_ERR_STATE);

    wait_job(c, c->fd, queued, &resp, &buf);
    assert_int_equal(resp.job.state, FORQ_STATE_CANCELLED);
    assert_int_equal(resp.job.error.code, FORQ_ERR_CANCELLED);
    assert_int_equal(resp.job.attempts, 0);
    free(buf);
    release_workers(c, busy, pids);
}

/*
 * Many requests in flight on one connection, answered out of order and
 * matched by rid. The waited-for job cannot finish before the test cancels
 * it (both workers are busy), so the order does not depend on timing.
 */
static void
test_pipelined_out_of_order(void **state)
{
    struct ctx *c = *state;
    struct msg_request req = {.op = MSG_OP_WAIT, .rid = 5000};
    struct msg_response resp;
    uint64_t busy[2], queued;
    pid_t pids[2];
    uint8_t *buf;
    size_t len;

    hold_workers(c, busy, pids);
    queued = submit(c, c->fd, "echo", "waits", 0);
    /* WAIT on it, 50 SUBMITs, then a CANCEL of it: all in one burst. */
    req.u.wait.id = queued;
    req.u.wait.timeout_ms = -1;
    assert_int_equal(harness_send_request(c->fd, &req), 0);
    for (int i = 0; i < 50; i++) {
        struct msg_request s = {.op = MSG_OP_SUBMIT, .rid = 6000 + (uint64_t)i};

        s.u.submit.task = msg_str_c("echo");
        s.u.submit.payload = msg_str_c("p");
        assert_int_equal(harness_send_request(c->fd, &s), 0);
    }
    req.op = MSG_OP_CANCEL;
    req.rid = 7000;
    req.u.cancel.id = queued;
    assert_int_equal(harness_send_request(c->fd, &req), 0);

    /* The SUBMIT answers come first, in order ... */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(harness_recv_frame(c->fd, &buf, &len), 0);
        assert_int_equal(msg_decode_response(&c->d, MSG_OP_SUBMIT, buf, len, &resp), 0);
        assert_int_equal(resp.rid, 6000 + (uint64_t)i);
        assert_true(resp.id > 0);
        free(buf);
    }
    /* ... then the WAIT (answered by the cancel) and the CANCEL, in either order. */
    for (int i = 0; i < 2; i++) {
        uint64_t rid;

        assert_int_equal(harness_recv_frame(c->fd, &buf, &len), 0);
        assert_int_equal(msg_peek_rid(buf, len, &rid), 0);
        assert_true(rid == 5000 || rid == 7000);
        assert_int_equal(msg_decode_response(&c->d, MSG_OP_WAIT, buf, len, &resp), 0);
        assert_int_equal(resp.job.id, queued);
        assert_int_equal(resp.job.state, FORQ_STATE_CANCELLED);
        free(buf);
    }
    /* Free the workers for the tests that follow. */
    release_workers(c, busy, pids);
}

/* A bad frame from one client: error + close for it, service for the others. */
static void
expect_closed_with(struct ctx *c, const void *bytes, size_t n, int code)
{
    struct msg_response resp;
    uint8_t *buf;
    size_t len;
    int bad = harness_connect(&c->h);

    assert_true(bad >= 0);
    assert_int_equal(harness_send(bad, bytes, n), 0);
    assert_int_equal(harness_recv_frame(bad, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&c->d, MSG_OP_PING, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, code);
    assert_true(resp.err.msg.len > 0);
    free(buf);
    assert_true(harness_wait_closed(bad));
    close(bad);
}

static void
test_malformed_frames_others_served(void **state)
{
    static const uint8_t not_msgpack[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
    static const uint8_t oversize[] = {0x00, 0x10, 0x00, 0x00, 0x81};
    static const uint8_t zero_len[] = {0, 0, 0, 0};
    static const uint8_t top_array[] = {0, 0, 0, 3, 0x92, 0x01, 0x02};
    static const uint8_t huge_count[] = {0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t trailing[] = {0, 0, 0, 3, 0x80, 0x80, 0x80};
    struct ctx *c = *state;
    struct msg_response resp;
    uint64_t before, after;
    uint8_t *buf;

    /* Work in flight on the good connection while the bad ones misbehave. */
    before = submit(c, c->fd, "sleep", "100", 0);
    expect_closed_with(c, not_msgpack, sizeof(not_msgpack), FORQ_ERR_PROTOCOL);
    expect_closed_with(c, oversize, sizeof(oversize), FORQ_ERR_TOO_BIG);
    expect_closed_with(c, zero_len, sizeof(zero_len), FORQ_ERR_PROTOCOL);
    expect_closed_with(c, top_array, sizeof(top_array), FORQ_ERR_PROTOCOL);
    expect_closed_with(c, huge_count, sizeof(huge_count), FORQ_ERR_PROTOCOL);
    expect_closed_with(c, trailing, sizeof(trailing), FORQ_ERR_PROTOCOL);

    /* A client that sends half a frame and vanishes. */
    {
        int half = harness_connect(&c->h);

        assert_int_equal(harness_send(half, "\0\0\0\x20\x82", 5), 0);
        close(half);
    }
    after = submit(c, c->fd, "upper", "still here", 0);
    wait_job(c, c->fd, before, &resp, &buf);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED); /* nothing lost */
    free(buf);
    wait_job(c, c->fd, after, &resp, &buf);
    assert_true(msg_str_eq(resp.job.result, "STILL HERE"));
    free(buf);
}

/*
 * max_frame (16384 here) is exact: a PING padded (under a key forqd ignores)
 * to a body of exactly 16384 bytes is answered; a header announcing one byte
 * more, or 4 GiB, is refused as soon as it arrives, with too_big and rid 0,
 * and the connection is closed. A job in flight on the well-behaved
 * connection meanwhile finishes, and that connection goes on.
 */
static void
test_max_frame_exact(void **state)
{
    static const uint8_t over_by_one[] = {0x00, 0x00, 0x40, 0x01};
    static const uint8_t four_gib[] = {0xff, 0xff, 0xff, 0xff};
    static uint8_t zeros[16384];
    struct ctx *c = *state;
    uint64_t before = submit(c, c->fd, "sleep", "100", 0);
    struct msg_response resp;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint8_t hdr[FRAME_HDR_LEN], *buf;
    size_t len, pad;
    int fd = harness_connect(&c->h);

    assert_true(fd >= 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "ping", 4);
    msgpack_pack_str_with_body(&pk, "rid", 3);
    msgpack_pack_uint64(&pk, 4321);
    msgpack_pack_str_with_body(&pk, "pad", 3);
    pad = 16384 - sb.size - 3; /* bin16: a 3-byte head */
    msgpack_pack_bin(&pk, pad);
    msgpack_pack_bin_body(&pk, zeros, pad);
    assert_int_equal(sb.size, 16384);
    frame_hdr_encode(hdr, (uint32_t)sb.size);
    assert_int_equal(harness_send(fd, hdr, sizeof(hdr)), 0);
    assert_int_equal(harness_send(fd, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&c->d, MSG_OP_PING, buf, len, &resp), 0);
    assert_true(resp.rid == 4321);
    assert_int_equal(resp.err.code, 0);
    free(buf);

    /* One byte more, on the same connection: refused from the header alone. */
    assert_int_equal(harness_send(fd, over_by_one, sizeof(over_by_one)), 0);
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&c->d, MSG_OP_PING, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_TOO_BIG);
    assert_non_null(memmem(resp.err.msg.ptr, resp.err.msg.len, "max_frame", 9));
    free(buf);
    assert_true(harness_wait_closed(fd));
    close(fd);
    expect_closed_with(c, four_gib, sizeof(four_gib), FORQ_ERR_TOO_BIG);

    wait_job(c, c->fd, before, &resp, &buf);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    free(buf);
    expect_result(c, "upper", "frames", "FRAMES");
}

/* A name of n copies of ch (n < 128). */
static const char *
name_of(char *buf, char ch, size_t n)
{
    memset(buf, ch, n);
    buf[n] = '\0';
    return buf;
}

/*
 * Task and queue names are 1..64 bytes, unique keys and client names at
 * most 256: one byte over is refused by the decoder with bad_request naming
 * the field, whichever op carries it, on a connection that stays open. At
 * the limit each passes (a 64-byte task that does not exist is
 * unknown_task, not bad_request). A job in flight on another connection
 * meanwhile finishes, and another client is served.
 */
static void
test_name_and_key_limits(void **state)
{
    struct ctx *c = *state;
    uint64_t before = submit(c, c->fd, "sleep", "100", 0);
    struct msg_request req;
    struct msg_response resp;
    char name[FORQ_NAME_MAX + 2], key[MSG_KEY_MAX + 2];
    uint8_t *buf;
    int bad = harness_connect(&c->h);

    assert_true(bad >= 0);
    /* SUBMIT: task, queue and unique_key. */
    req = (struct msg_request){.op = MSG_OP_SUBMIT, .rid = ++c->rid};
    req.u.submit.task = msg_str_c(name_of(name, 't', FORQ_NAME_MAX + 1));
    req.u.submit.payload = msg_str_c("x");
    expect_refused_with(c, bad, &req, FORQ_ERR_BAD_REQUEST, "task: expected a name");
    req.rid = ++c->rid;
    req.u.submit.task = msg_str_c(name_of(name, 't', FORQ_NAME_MAX));
    expect_refused_with(c, bad, &req, FORQ_ERR_UNKNOWN_TASK, "no task named");
    req.rid = ++c->rid;
    req.u.submit.task = msg_str_c("upper");
    req.u.submit.queue = msg_str_c(name_of(name, 'q', FORQ_NAME_MAX + 1));
    expect_refused_with(c, bad, &req, FORQ_ERR_BAD_REQUEST, "queue: expected a name");
    req.rid = ++c->rid;
    req.u.submit.queue = msg_str_c("");
    req.u.submit.unique_key = msg_str_c(name_of(key, 'k', MSG_KEY_MAX + 1));
    expect_refused_with(c, bad, &req, FORQ_ERR_BAD_REQUEST, "unique_key: longer than 256");
    expect_result(c, "upper", "between", "BETWEEN"); /* the other connection meanwhile */

    /* QUEUE and JOIN name a queue too. */
    req = (struct msg_request){.op = MSG_OP_QUEUE, .rid = ++c->rid};
    req.u.queue.queue = msg_str_c(name_of(name, 'q', FORQ_NAME_MAX + 1));
    req.u.queue.action = msg_str_c("info");
    req.u.queue.limit = -1;
    expect_refused_with(c, bad, &req, FORQ_ERR_BAD_REQUEST, "queue: expected a name");
    req = (struct msg_request){.op = MSG_OP_JOIN, .rid = ++c->rid};
    req.u.join.queue = msg_str_c(name_of(name, 'q', FORQ_NAME_MAX + 1));
    req.u.join.timeout_ms = -1;
    expect_refused_with(c, bad, &req, FORQ_ERR_BAD_REQUEST, "queue: expected a name");

    /* HELLO: the client's name. */
    req = (struct msg_request){.op = MSG_OP_HELLO, .rid = ++c->rid};
    req.u.hello.version = MSG_PROTO_VERSION;
    req.u.hello.client = msg_str_c(name_of(key, 'c', MSG_KEY_MAX + 1));
    expect_refused_with(c, bad, &req, FORQ_ERR_BAD_REQUEST, "client: longer than 256");
    other_served(c);

    /* At the limits, all pass. */
    req.rid = ++c->rid;
    req.u.hello.client = msg_str_c(name_of(key, 'c', MSG_KEY_MAX));
    assert_int_equal(harness_call(bad, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    req = (struct msg_request){.op = MSG_OP_SUBMIT, .rid = ++c->rid};
    req.u.submit.task = msg_str_c("upper");
    req.u.submit.payload = msg_str_c("at the limits");
    req.u.submit.queue = msg_str_c(name_of(name, 'q', FORQ_NAME_MAX));
    req.u.submit.unique_key = msg_str_c(name_of(key, 'k', MSG_KEY_MAX));
    assert_int_equal(harness_call(bad, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.err.code, 0);
    req = (struct msg_request){.op = MSG_OP_WAIT, .rid = ++c->rid};
    req.u.wait.id = resp.id;
    req.u.wait.timeout_ms = -1;
    free(buf);
    assert_int_equal(harness_call(bad, &c->d, &req, &resp, &buf), 0);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_true(msg_str_eq(resp.job.result, "AT THE LIMITS"));
    assert_true(msg_str_eq(resp.job.queue, name_of(name, 'q', FORQ_NAME_MAX)));
    free(buf);
    close(bad);

    wait_job(c, c->fd, before, &resp, &buf);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    free(buf);
}

/* Send a hand-made body with its frame header. */
static void
send_body(int fd, const uint8_t *body, size_t n)
{
    uint8_t hdr[FRAME_HDR_LEN];

    frame_hdr_encode(hdr, (uint32_t)n);
    assert_int_equal(harness_send(fd, hdr, sizeof(hdr)), 0);
    assert_int_equal(harness_send(fd, body, n), 0);
}

/* Valid msgpack, bad request: an error with the rid, and the connection stays. */
static void
test_bad_requests_keep_connection(void **state)
{
    /* {"op":"frobnicate","rid":9} */
    static const uint8_t unknown_op[] = {0x82, 0xa2, 'o', 'p', 0xaa, 'f', 'r', 'o', 'b', 'n',
                                         'i', 'c', 'a', 't', 'e', 0xa3, 'r', 'i', 'd', 0x09};
    /* {"op":"submit","rid":10,"task":7,"payload":"x"} */
    static const uint8_t wrong_type[] = {0x84, 0xa2, 'o', 'p', 0xa6, 's', 'u', 'b', 'm', 'i',
                                         't', 0xa3, 'r', 'i', 'd', 0x0a, 0xa4, 't', 'a', 's',
                                         'k', 0x07, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd',
                                         0xa1, 'x'};
    /* {"op":"wait","rid":11} (id missing) */
    static const uint8_t missing[] = {0x82, 0xa2, 'o', 'p', 0xa4, 'w', 'a', 'i', 't',
                                      0xa3, 'r', 'i', 'd', 0x0b};
    /* {"rid":12} (op missing) */
    static const uint8_t no_op[] = {0x81, 0xa3, 'r', 'i', 'd', 0x0c};
    static const struct {
        const uint8_t *bytes;
        size_t n;
        uint64_t rid;
        int code;
    } cases[] = {
        {unknown_op, sizeof(unknown_op), 9, FORQ_ERR_UNKNOWN_OP},
        {wrong_type, sizeof(wrong_type), 10, FORQ_ERR_BAD_REQUEST},
        {missing, sizeof(missing), 11, FORQ_ERR_BAD_REQUEST},
        {no_op, sizeof(no_op), 12, FORQ_ERR_BAD_REQUEST},
    };
    struct ctx *c = *state;
    struct msg_response resp;
    uint8_t *buf;
    size_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        send_body(c->fd, cases[i].bytes, cases[i].n);
        assert_int_equal(harness_recv_frame(c->fd, &buf, &len), 0);
        assert_int_equal(msg_decode_response(&c->d, MSG_OP_PING, buf, len, &resp), 0);
        assert_int_equal(resp.rid, cases[i].rid);
        assert_int_equal(resp.err.code, cases[i].code);
        assert_true(resp.err.msg.len > 0);
        free(buf);
    }
    expect_result(c, "upper", "ok", "OK"); /* same connection, still served */
}

/* Read one frame for rid on fd and decode it as a WATCH answer into resp (buf backs it). */
static void
recv_watch(struct ctx *c, int fd, uint64_t rid, struct msg_response *resp, uint8_t **buf)
{
    size_t len;

    assert_int_equal(harness_recv_frame(fd, buf, &len), 0);
    assert_int_equal(msg_decode_response(&c->d, MSG_OP_WATCH, *buf, len, resp), 0);
    assert_true(resp->rid == rid);
}

/*
 * WATCH: an event per id as it settles (a finished job with its result, an
 * unknown id with not_found), then the last frame; a second watch ended
 * early by UNWATCH; bad watches refused while the connection goes on.
 */
static void
test_watch_events_and_unwatch(void **state)
{
    struct ctx *c = *state;
    uint64_t done = submit(c, c->fd, "upper", "seen", 0), later, ids[3], rid;
    struct msg_request req = {.op = MSG_OP_WATCH};
    struct msg_response resp;
    uint8_t *buf;
    int fd = harness_connect(&c->h), got_done = 0, got_unknown = 0, got_later = 0;

    assert_true(fd >= 0);
    wait_job(c, c->fd, done, &resp, &buf);
    free(buf);
    later = submit(c, fd, "sleep", "200", 0);
    ids[0] = done;
    ids[1] = 1ull << 50; /* never handed out */
    ids[2] = later;
    req.rid = rid = ++c->rid;
    req.u.watch.ids = ids;
    req.u.watch.nids = 3;
    req.u.watch.timeout_ms = -1;
    assert_int_equal(harness_send_request(fd, &req), 0);
    for (int i = 0; i < 3; i++) {
        recv_watch(c, fd, rid, &resp, &buf);
        assert_int_equal(resp.more, 1);
        if (resp.err.code == FORQ_ERR_NOT_FOUND && resp.id == ids[1]) {
            got_unknown++;
        } else if (resp.job.id == done) {
            assert_true(msg_str_eq(resp.job.result, "SEEN"));
            got_done++;
        } else {
            assert_true(resp.job.id == later);
            assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
            assert_int_equal(got_done + got_unknown, 2); /* the unfinished one comes last */
            got_later++;
        }
        free(buf);
    }
    assert_int_equal(got_done + got_unknown + got_later, 3);
    recv_watch(c, fd, rid, &resp, &buf); /* the last frame */
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);

    /* A watch on a job that will not finish soon, ended by UNWATCH. */
    later = submit(c, fd, "sleep", "600000", 0);
    req.rid = rid = ++c->rid;
    req.u.watch.ids = &later;
    req.u.watch.nids = 1;
    assert_int_equal(harness_send_request(fd, &req), 0);
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_UNWATCH;
    req.rid = ++c->rid;
    req.u.unwatch.watch = rid;
    assert_int_equal(harness_send_request(fd, &req), 0);
    recv_watch(c, fd, rid, &resp, &buf); /* the watch ends first... */
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    recv_watch(c, fd, req.rid, &resp, &buf); /* ...then UNWATCH is answered */
    assert_int_equal(resp.err.code, 0);
    free(buf);

    /* A time limit: the last frame says timeout. */
    req.op = MSG_OP_WATCH;
    req.rid = rid = ++c->rid;
    req.u.watch.ids = &later;
    req.u.watch.nids = 1;
    req.u.watch.timeout_ms = 0;
    assert_int_equal(harness_send_request(fd, &req), 0);
    recv_watch(c, fd, rid, &resp, &buf);
    assert_int_equal(resp.err.code, FORQ_ERR_TIMEOUT);
    assert_int_equal(resp.more, 0);
    free(buf);
    close(fd);
    expect_result(c, "upper", "still", "STILL"); /* the others are served */
}

/*
 * Open watches do not hold request slots: with --max-inflight=4, ten watches
 * on a job that will not finish leave the connection readable (a PING behind
 * them is answered), and UNWATCH ends each.
 */
static void
test_many_watches_keep_the_connection_open(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-inflight=4", NULL};
    struct ctx *c = *state;
    struct harness h;
    struct msg_request req = {.op = MSG_OP_WATCH};
    struct msg_response resp;
    uint64_t id;
    uint8_t *buf;
    int fd;

    assert_int_equal(harness_start(&h, args), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    id = submit(c, fd, "sleep", "600000", 0);
    req.u.watch.ids = &id;
    req.u.watch.nids = 1;
    req.u.watch.timeout_ms = -1;
    for (uint64_t i = 0; i < 10; i++) {
        req.rid = 500 + i;
        assert_int_equal(harness_send_request(fd, &req), 0);
    }
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_PING;
    req.rid = 600;
    assert_int_equal(harness_call(fd, &c->d, &req, &resp, &buf), 0);
    assert_true(resp.rid == 600);
    free(buf);
    for (uint64_t i = 0; i < 10; i++) {
        memset(&req, 0, sizeof(req));
        req.op = MSG_OP_UNWATCH;
        req.rid = 700 + i;
        req.u.unwatch.watch = 500 + i;
        assert_int_equal(harness_send_request(fd, &req), 0);
        recv_watch(c, fd, 500 + i, &resp, &buf);
        assert_int_equal(resp.more, 0);
        free(buf);
        recv_watch(c, fd, 700 + i, &resp, &buf);
        assert_int_equal(resp.err.code, 0);
        free(buf);
    }
    close(fd);
    assert_int_equal(harness_stop(&h), 0);
}

/*
 * A WATCH of 10001 ids is refused with bad_request (naming ids) and its rid,
 * on a connection that stays open; the well-behaved connection is served
 * while that one is still open. (10000 ids, exactly the limit, are taken in:
 * test_limits_more's test_watch_ids_per_connection sends a hundred such.)
 */
static void
test_watch_bad_requests(void **state)
{
    struct ctx *c = *state;
    struct msg_request ping = {.op = MSG_OP_PING, .rid = 4243};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct msg_response resp;
    uint8_t *buf;
    size_t len;
    int bad = harness_connect(&c->h);

    /* One id over the limit, built by hand; ids of one byte each fit this server's frame. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "watch", 5);
    msgpack_pack_str_with_body(&pk, "rid", 3);
    msgpack_pack_uint64(&pk, 4242);
    msgpack_pack_str_with_body(&pk, "ids", 3);
    msgpack_pack_array(&pk, MSG_WATCH_MAX + 1);
    for (size_t i = 0; i <= MSG_WATCH_MAX; i++)
        msgpack_pack_uint64(&pk, i % 100);
    {
        uint8_t hdr[4] = {(uint8_t)(sb.size >> 24), (uint8_t)(sb.size >> 16),
                          (uint8_t)(sb.size >> 8), (uint8_t)sb.size};

        assert_true(bad >= 0);
        assert_int_equal(harness_send(bad, hdr, 4), 0);
        assert_int_equal(harness_send(bad, sb.data, sb.size), 0);
    }
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(harness_recv_frame(bad, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&c->d, MSG_OP_WATCH, buf, len, &resp), 0);
    assert_true(resp.rid == 4242);
    assert_int_equal(resp.err.code, FORQ_ERR_BAD_REQUEST);
    assert_int_equal(resp.more, 0);
    assert_non_null(memmem(resp.err.msg.ptr, resp.err.msg.len, "ids", 3));
    free(buf);
    expect_result(c, "upper", "after", "AFTER"); /* another client, while bad is open */
    assert_int_equal(harness_call(bad, &c->d, &ping, &resp, &buf), 0);
    assert_true(resp.rid == 4243);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    close(bad);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_and_ping),
        cmocka_unit_test(test_builtin_tasks),
        cmocka_unit_test(test_fib_25_to_30),
        cmocka_unit_test(test_failing_task),
        cmocka_unit_test(test_refused_submissions),
        cmocka_unit_test(test_unknown_ids_and_states),
        cmocka_unit_test(test_wait_timeout_and_cancel),
        cmocka_unit_test(test_pipelined_out_of_order),
        cmocka_unit_test(test_malformed_frames_others_served),
        cmocka_unit_test(test_max_frame_exact),
        cmocka_unit_test(test_name_and_key_limits),
        cmocka_unit_test(test_bad_requests_keep_connection),
        cmocka_unit_test(test_watch_events_and_unwatch),
        cmocka_unit_test(test_watch_bad_requests),
        cmocka_unit_test(test_many_watches_keep_the_connection_open),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
