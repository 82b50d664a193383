/*
 * test_conn.c — one connection (conn.c + ops.c) on a real server with no
 * listeners: the test hands one end of a socketpair to conn_new and speaks
 * bytes on the other. Frames split anywhere, frames coalesced, a bad frame
 * (error, then close), the in-flight limit (reading pauses, then resumes),
 * and a peer that vanishes with a parked WAIT.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "forq.h"
#include "frame.h"
#include "job.h"
#include "jobs.h"
#include "msg.h"
#include "server.h"
#include "store.h"

#define TEST_GUARD_TURNS 30000 /* loop turns; the tick below makes each about 1 ms */

struct test_fx {
    struct server *srv;
    struct event *tick;
    struct conn *conn;
    int peer; /* the test's end of the socketpair */
    struct msg_decoder d;
    uint8_t in[1 << 16];
    size_t inlen;
};

static void
test_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int
test_setup(void **state)
{
    struct test_fx *fx = calloc(1, sizeof(*fx));
    struct config *cfg;
    struct timeval ms = {0, 1000};
    int sv[2];

    *state = fx;
    alarm(120);
    if (fx == NULL)
        return -1;
    if ((cfg = malloc(sizeof(*cfg))) == NULL)
        return -1;
    config_init(cfg);
    cfg->workers = 1;
    cfg->max_inflight = 2;
    cfg->max_frame = 4096;
    cfg->max_payload = 1024;
    cfg->max_result = 1024;
    cfg->durability = STORE_OFF; /* framing only: no store */
    /* No --listen: the test makes the connection itself. The server owns cfg. */
    if (msg_decoder_init(&fx->d) != 0 || server_new(cfg, 0, NULL, &fx->srv) != 0)
        return -1;
    fx->tick = event_new(fx->srv->base, -1, EV_PERSIST, test_tick_cb, NULL);
    if (fx->tick == NULL || event_add(fx->tick, &ms) != 0)
        return -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    fx->peer = sv[1];
    return conn_new(fx->srv, sv[0], "test", &fx->conn) == 0 ? 0 : -1;
}

static int
test_teardown(void **state)
{
    struct test_fx *fx = *state;

    if (fx != NULL) {
        if (fx->tick != NULL)
            event_free(fx->tick);
        server_free(fx->srv); /* frees the connection too */
        if (fx->peer > 0)
            close(fx->peer);
        msg_decoder_fini(&fx->d);
        free(fx);
    }
    alarm(0);
    return 0;
}

static void
test_turn(struct test_fx *fx)
{
    event_base_loop(fx->srv->base, EVLOOP_ONCE);
}

static void
test_send(struct test_fx *fx, const void *p, size_t n)
{
    assert_int_equal(write(fx->peer, p, n), (ssize_t)n);
}

static void
test_send_request(struct test_fx *fx, const struct msg_request *req)
{
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    assert_int_equal(msg_encode_request(&sb, req), 0);
    test_send(fx, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/*
 * Turn the loop until a whole answer has arrived (or, with turns > 0, at most
 * that many turns: returns 0 when none came). Decodes it for op into resp.
 */
static int
test_answer(struct test_fx *fx, int op, struct msg_response *resp, int turns)
{
    int limit = turns > 0 ? turns : TEST_GUARD_TURNS;

    for (int i = 0; i < limit; i++) {
        uint32_t n;
        ssize_t k;

        if (fx->inlen >= FRAME_HDR_LEN &&
            frame_hdr_decode(fx->in, sizeof(fx->in), &n) == 0 &&
            fx->inlen >= FRAME_HDR_LEN + n) {
            assert_int_equal(msg_decode_response(&fx->d, op, fx->in + FRAME_HDR_LEN, n, resp), 0);
            /* resp points into in: keep the frame until the next call. */
            memmove(fx->in, fx->in + FRAME_HDR_LEN + n, fx->inlen - FRAME_HDR_LEN - n);
            fx->inlen -= FRAME_HDR_LEN + n;
            return 1;
        }
        k = read(fx->peer, fx->in + fx->inlen, sizeof(fx->in) - fx->inlen);
        if (k > 0) {
            fx->inlen += (size_t)k;
            continue;
        }
        test_turn(fx);
    }
    if (turns == 0)
        fail_msg("no answer");
    return 0;
}

/* Turn the loop until the server has closed its end. */
static void
test_expect_closed(struct test_fx *fx)
{
    char buf[256];

    for (int i = 0; i < TEST_GUARD_TURNS; i++) {
        ssize_t k = read(fx->peer, buf, sizeof(buf));

        if (k == 0)
            return;
        test_turn(fx);
    }
    fail_msg("the connection stayed open");
}

static uint64_t
test_submit(struct test_fx *fx, uint64_t rid, const char *task, const char *payload)
{
    struct msg_request req = {.op = MSG_OP_SUBMIT, .rid = rid};
    struct msg_response resp;

    req.u.submit.task = msg_str_c(task);
    req.u.submit.payload = msg_str_c(payload);
    test_send_request(fx, &req);
    assert_int_equal(test_answer(fx, MSG_OP_SUBMIT, &resp, 0), 1);
    assert_int_equal(resp.rid, rid);
    assert_int_equal(resp.err.code, 0);
    return resp.id;
}

/* A frame that arrives one byte at a time is answered once, when it is whole. */
static void
test_conn_frame_split_anywhere(void **state)
{
    struct test_fx *fx = *state;
    struct msg_request req = {.op = MSG_OP_PING, .rid = 41};
    struct msg_response resp;
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    assert_int_equal(msg_encode_request(&sb, &req), 0);
    for (size_t i = 0; i + 1 < sb.size; i++) {
        test_send(fx, sb.data + i, 1);
        assert_int_equal(test_answer(fx, MSG_OP_PING, &resp, 3), 0); /* not yet */
    }
    test_send(fx, sb.data + sb.size - 1, 1);
    assert_int_equal(test_answer(fx, MSG_OP_PING, &resp, 0), 1);
    assert_int_equal(resp.rid, 41);
    msgpack_sbuffer_destroy(&sb);
}

/* Several frames in one write are all answered, in order. */
static void
test_conn_frames_coalesced(void **state)
{
    struct test_fx *fx = *state;
    struct msg_response resp;
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    for (uint64_t rid = 1; rid <= 5; rid++) {
        struct msg_request req = {.op = MSG_OP_PING, .rid = rid};

        assert_int_equal(msg_encode_request(&sb, &req), 0);
    }
    test_send(fx, sb.data, sb.size);
    for (uint64_t rid = 1; rid <= 5; rid++) {
        assert_int_equal(test_answer(fx, MSG_OP_PING, &resp, 0), 1);
        assert_int_equal(resp.rid, rid);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* An oversize length: one error answer, then the server hangs up and frees the conn. */
static void
test_conn_oversize_frame_closes(void **state)
{
    struct test_fx *fx = *state;
    uint8_t hdr[FRAME_HDR_LEN];
    struct msg_response resp;

    frame_hdr_encode(hdr, 4097);
    test_send(fx, hdr, sizeof(hdr));
    assert_int_equal(test_answer(fx, MSG_OP_PING, &resp, 0), 1);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_TOO_BIG);
    test_expect_closed(fx);
    for (int i = 0; i < 100 && fx->srv->nconns > 0; i++)
        test_turn(fx);
    assert_int_equal(fx->srv->nconns, 0);
    assert_true(TAILQ_EMPTY(&fx->srv->reap)); /* freed, not just closed */
}

/* At max_inflight unanswered requests reading stops; answers let it resume. */
static void
test_conn_inflight_limit_pauses_reading(void **state)
{
    struct test_fx *fx = *state;
    struct msg_request req = {.op = MSG_OP_WAIT};
    struct msg_response resp;
    const struct job *job;
    uint64_t busy, queued;
    char why[128];

    busy = test_submit(fx, 1, "sleep", "100000"); /* holds the one worker */
    queued = test_submit(fx, 2, "echo", "q");
    (void)busy;
    req.u.wait.id = queued;
    req.u.wait.timeout_ms = -1;
    for (uint64_t rid = 10; rid < 12; rid++) {
        req.rid = rid;
        test_send_request(fx, &req); /* two parked WAITs: the limit */
    }
    req.op = MSG_OP_PING;
    req.rid = 20;
    test_send_request(fx, &req);
    assert_int_equal(test_answer(fx, MSG_OP_PING, &resp, 200), 0); /* not read */
    assert_true(fx->conn->paused);
    assert_int_equal(fx->conn->inflight, 2);

    /* Cancelling the job answers both WAITs; then the PING is read and answered. */
    assert_int_equal(jobs_cancel(fx->srv->jobs, queued, 0, &job, why, sizeof(why)), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(test_answer(fx, MSG_OP_WAIT, &resp, 0), 1);
        assert_true(resp.rid == 10 || resp.rid == 11);
        assert_int_equal(resp.job.state, FORQ_STATE_CANCELLED);
    }
    assert_int_equal(test_answer(fx, MSG_OP_PING, &resp, 0), 1);
    assert_int_equal(resp.rid, 20);
    assert_false(fx->conn->paused);
}

/* A peer that goes away with a WAIT parked: the wait is withdrawn, the conn freed. */
static void
test_conn_peer_gone_with_parked_wait(void **state)
{
    struct test_fx *fx = *state;
    struct msg_request req = {.op = MSG_OP_WAIT, .rid = 3};
    uint64_t busy;

    busy = test_submit(fx, 1, "sleep", "100000");
    req.u.wait.id = busy;
    req.u.wait.timeout_ms = -1;
    test_send_request(fx, &req);
    for (int i = 0; i < 200 && LIST_EMPTY(&fx->conn->waiters); i++)
        test_turn(fx);
    assert_false(LIST_EMPTY(&fx->conn->waiters));
    close(fx->peer);
    fx->peer = -1;
    for (int i = 0; i < TEST_GUARD_TURNS && fx->srv->nconns > 0; i++)
        test_turn(fx);
    assert_int_equal(fx->srv->nconns, 0);
    /* The job is unaffected and still waitable by others. */
    assert_int_equal(jobs_job(fx->srv->jobs, busy)->state, FORQ_STATE_RUNNING);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conn_frame_split_anywhere, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_conn_frames_coalesced, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_conn_oversize_frame_closes, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_conn_inflight_limit_pauses_reading, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_conn_peer_gone_with_parked_wait, test_setup,
                                        test_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
