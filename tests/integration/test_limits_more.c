/*
 * test_limits_more.c — limits that need a forqd of their own: a small
 * max_inflight, a max_result below max_payload, and the WATCH budget of a
 * connection (1,000,000 ids at once). Each is crossed for real; the client
 * gets the exact error (or is paused), and another client, on its own
 * connection, is served while the offending connection is still open.
 *
 * Nothing here measures time: a pause is proved by the order in which one
 * read callback of forqd's handles the frames of a single send, never by
 * waiting for something not to happen.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_INFLIGHT 4
#define MAX_RESULT   2048
#define WATCH_CONN   1000000 /* ids watched at once per connection (daemon/watch.c) */

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-inflight=4", "--max-result=2048",
                                       NULL};

    return harness_fixture_setup(state, args);
}

static forq_client *
connect_other(const struct harness_fixture *x)
{
    forq_client *c = NULL;

    assert_int_equal(forq_connect(x->h.addr, &c), 0);
    return c;
}

/* Submit and wait on c: the job succeeds with payload upper-cased. */
static void
served(forq_client *c, const char *payload)
{
    char want[64];
    forq_future *f;
    const void *data;
    size_t len, n = strlen(payload);

    assert_true(n < sizeof(want));
    for (size_t i = 0; i <= n; i++)
        want[i] = (char)toupper((unsigned char)payload[i]);
    assert_int_equal(forq_ping(c), 0);
    assert_int_equal(forq_submit(c, "upper", payload, n, NULL, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(data, want, n);
    forq_future_free(f);
}

/* A job that stays `scheduled` (no worker) until the test cancels it. */
static uint64_t
submit_held(forq_client *c)
{
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    forq_future *f;
    uint64_t id;

    o.delay_ms = 3600000;
    assert_int_equal(forq_submit(c, "echo", "held", 4, &o, &f), 0);
    id = forq_future_id(f);
    forq_future_free(f);
    return id;
}

/* Append one request frame to sb. */
static void
add_request(msgpack_sbuffer *sb, const struct msg_request *req)
{
    assert_int_equal(msg_encode_request(sb, req), 0);
}

/* Read one frame on fd and decode it as an answer to op; buf backs resp. */
static void
recv_answer(int fd, struct msg_decoder *d, int op, struct msg_response *resp, uint8_t **buf)
{
    size_t len;

    assert_int_equal(harness_recv_frame(fd, buf, &len), 0);
    if (msg_decode_response(d, op, *buf, len, resp) != 0)
        fail_msg("undecodable answer: %s", d->why);
}

/* ------------------------------------------------------------------ max_result */

/*
 * A result over max_result fails the job with too_big, at once (it is not
 * worth a retry) and with the sizes in its message; a result of exactly
 * max_result is delivered whole. The worker goes on, and another client is
 * served while the failing job's WAIT is still open.
 */
static void
test_result_over_max_result(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    struct forq_job_info ji;
    char *big = malloc(MAX_RESULT + 1);
    forq_client *other = connect_other(x);
    forq_future *f;
    const void *data;
    size_t len;

    assert_non_null(big);
    memset(big, 'r', MAX_RESULT + 1);
    /* The payload may be larger (max_payload is 1M): echo makes it the result. */
    o.max_retries = 3;
    assert_int_equal(forq_submit(x->c, "echo", big, MAX_RESULT + 1, &o, &f), 0);
    served(other, "while it runs");
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), FORQ_ERR_TOO_BIG);
    assert_non_null(strstr(forq_future_error(f), "exceeds the limit of 2048"));
    assert_int_equal(forq_status(x->c, forq_future_id(f), &ji), 0);
    assert_int_equal(ji.state, FORQ_STATE_FAILED);
    assert_int_equal(ji.attempts, 1); /* not retried: the same input gives the same result */
    forq_job_info_clear(&ji);
    forq_future_free(f);

    /* Exactly max_result is fine. */
    assert_int_equal(forq_submit(x->c, "echo", big, MAX_RESULT, NULL, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, MAX_RESULT);
    assert_memory_equal(data, big, MAX_RESULT);
    forq_future_free(f);

    served(other, "and after");
    served(x->c, "the offender too");
    forq_client_free(other);
    free(big);
}

/* ------------------------------------------------------------------ max_inflight */

/*
 * --max-inflight=4: a connection with four requests unanswered is not read
 * any further. One send carries three WAITs on a job that does not finish, a
 * PING, a fourth WAIT and a SUBMIT to a new queue; forqd's read of it answers
 * the PING and then, at four in flight, stops before the SUBMIT: once the
 * PING's answer is here the queue would exist if forqd had gone on. Another
 * client is served meanwhile; when the WAITs are answered (the job is
 * cancelled), the SUBMIT is taken in and answered.
 */
static void
test_inflight_limit_stops_reading(void **state)
{
    struct harness_fixture *x = *state;
    struct msg_request req = {.op = MSG_OP_WAIT};
    struct msg_response resp;
    struct msg_decoder d;
    msgpack_sbuffer sb;
    forq_client *other = connect_other(x);
    uint64_t held = submit_held(x->c);
    int fd, waits = 0, submitted = 0;
    uint8_t *buf;

    assert_int_equal(msg_decoder_init(&d), 0);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    msgpack_sbuffer_init(&sb);
    req.u.wait.id = held;
    req.u.wait.timeout_ms = -1;
    for (uint64_t i = 1; i < MAX_INFLIGHT; i++) {
        req.rid = i;
        add_request(&sb, &req);
    }
    req = (struct msg_request){.op = MSG_OP_PING, .rid = 100};
    add_request(&sb, &req);
    req = (struct msg_request){.op = MSG_OP_WAIT, .rid = MAX_INFLIGHT};
    req.u.wait.id = held;
    req.u.wait.timeout_ms = -1;
    add_request(&sb, &req);
    req = (struct msg_request){.op = MSG_OP_SUBMIT, .rid = 200};
    req.u.submit.task = msg_str_c("echo");
    req.u.submit.payload = msg_str_c("marker");
    req.u.submit.queue = msg_str_c("inflight-marker");
    add_request(&sb, &req);
    assert_int_equal(harness_send(fd, sb.data, sb.size), 0); /* one send: one read */
    msgpack_sbuffer_destroy(&sb);

    /* Three in flight leave room: the PING is answered first ... */
    recv_answer(fd, &d, MSG_OP_PING, &resp, &buf);
    assert_int_equal(resp.rid, 100);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    /* ... but at four forqd stopped reading: the SUBMIT was not taken in, */
    assert_false(harness_queue_find(other, "inflight-marker", NULL));
    /* while another client is served. */
    served(other, "not blocked");
    assert_false(harness_queue_find(other, "inflight-marker", NULL));

    /* The WAITs end; the connection is read again and the SUBMIT answered. */
    assert_int_equal(forq_cancel(other, held), 0);
    while (waits + submitted < MAX_INFLIGHT + 1) {
        uint64_t rid;
        size_t len;

        assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
        assert_int_equal(msg_peek_rid(buf, len, &rid), 0);
        if (rid == 200) {
            assert_int_equal(msg_decode_response(&d, MSG_OP_SUBMIT, buf, len, &resp), 0);
            assert_int_equal(resp.err.code, 0);
            assert_true(resp.id > held);
            assert_int_equal(waits, MAX_INFLIGHT); /* taken in only once they were answered */
            submitted++;
        } else {
            assert_int_equal(msg_decode_response(&d, MSG_OP_WAIT, buf, len, &resp), 0);
            assert_true(rid >= 1 && rid <= MAX_INFLIGHT);
            assert_int_equal(resp.job.id, held);
            assert_int_equal(resp.job.state, FORQ_STATE_CANCELLED);
            waits++;
        }
        free(buf);
    }
    assert_true(harness_queue_find(other, "inflight-marker", NULL));
    close(fd);
    msg_decoder_fini(&d);
    forq_client_free(other);
}

/* ------------------------------------------------------------------ WATCH ids per connection */

/* Send a WATCH of n copies of id (n <= MSG_WATCH_MAX) with no time limit. */
static void
send_watch(int fd, uint64_t rid, uint64_t id, size_t n)
{
    static uint64_t ids[MSG_WATCH_MAX];
    struct msg_request req = {.op = MSG_OP_WATCH};

    for (size_t i = 0; i < n; i++)
        ids[i] = id;
    req.rid = rid;
    req.u.watch.ids = ids;
    req.u.watch.nids = n;
    req.u.watch.timeout_ms = -1;
    assert_int_equal(harness_send_request(fd, &req), 0);
}

/*
 * The next answer on fd is the PING's: every WATCH sent before it was taken
 * in (a refused one would have been answered with an error first).
 */
static void
expect_ping_next(int fd, struct msg_decoder *d, uint64_t rid)
{
    struct msg_request ping = {.op = MSG_OP_PING};
    struct msg_response resp;
    uint8_t *buf;

    ping.rid = rid;
    assert_int_equal(harness_send_request(fd, &ping), 0);
    recv_answer(fd, d, MSG_OP_PING, &resp, &buf);
    if (resp.rid != rid || resp.err.code != 0)
        fail_msg("expected the PING's answer, got rid %llu code %d: %.*s",
                 (unsigned long long)resp.rid, resp.err.code, (int)resp.err.msg.len,
                 resp.err.msg.ptr);
    free(buf);
}

/* A WATCH of one id is refused with limit: the connection watches all it may. */
static void
expect_watch_limit(int fd, struct msg_decoder *d, uint64_t rid, uint64_t id)
{
    struct msg_response resp;
    uint8_t *buf;

    send_watch(fd, rid, id, 1);
    recv_answer(fd, d, MSG_OP_WATCH, &resp, &buf);
    assert_int_equal(resp.rid, rid);
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_LIMIT);
    if (memmem(resp.err.msg.ptr, resp.err.msg.len, "1000000", 7) == NULL)
        fail_msg("no limit in '%.*s'", (int)resp.err.msg.len, resp.err.msg.ptr);
    free(buf);
}

/*
 * One connection watches 1,000,000 ids at once (100 WATCHes of the 10,000
 * a request may name, all on a job that does not finish): all are taken in,
 * and one id more is refused with limit, the connection staying open.
 * Meanwhile another client is served. The budget is of ids watched at once:
 * after an UNWATCH, 10,000 fit again, and no more.
 */
static void
test_watch_ids_per_connection(void **state)
{
    struct harness_fixture *x = *state;
    struct msg_request req = {.op = MSG_OP_UNWATCH, .rid = 3000};
    struct msg_response resp;
    struct msg_decoder d;
    forq_client *other = connect_other(x);
    uint64_t held = submit_held(x->c), nwatches = WATCH_CONN / MSG_WATCH_MAX;
    uint8_t *buf;
    int fd;

    assert_int_equal(WATCH_CONN % MSG_WATCH_MAX, 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    for (uint64_t i = 0; i < nwatches; i++)
        send_watch(fd, 1000 + i, held, MSG_WATCH_MAX);
    expect_ping_next(fd, &d, 1);
    expect_watch_limit(fd, &d, 2000, held);
    /* The connection is still served, and so is everyone else. */
    expect_ping_next(fd, &d, 2);
    served(other, "while one connection watches a million");

    /* Ending one watch makes room for as many ids again, and no more. */
    req.u.unwatch.watch = 1000;
    assert_int_equal(harness_send_request(fd, &req), 0);
    recv_answer(fd, &d, MSG_OP_WATCH, &resp, &buf);
    assert_int_equal(resp.rid, 1000);
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    recv_answer(fd, &d, MSG_OP_UNWATCH, &resp, &buf);
    assert_int_equal(resp.rid, 3000);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    send_watch(fd, 2001, held, MSG_WATCH_MAX);
    expect_ping_next(fd, &d, 3);
    expect_watch_limit(fd, &d, 2002, held);
    served(other, "still");

    /* Closing the connection drops its watches (the job stays scheduled). */
    close(fd);
    served(x->c, "done");
    msg_decoder_fini(&d);
    forq_client_free(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_over_max_result),
        cmocka_unit_test(test_inflight_limit_stops_reading),
        cmocka_unit_test(test_watch_ids_per_connection),
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
