/*
 * test_queue_wait.c — a SUBMIT that asks to block (block_ms) on a full queue,
 * like Python's Queue.put(timeout): it waits for room, gets in first come
 * first served, gives up with queue_full when its time is over, is refused
 * with shutdown when forqd drains, and leaves nothing behind when its client
 * goes away. Meanwhile the same connection and everyone else keep being
 * served.
 *
 * Each test fills its own paused queue (--max-queued=2), so the two jobs in
 * it stay queued until the test makes room: by cancelling one, or by
 * resuming the queue. Blocked SUBMITs are seen through the queue's `blocked`
 * figure (STATS/QUEUE), never through timing.
 */
#include <poll.h>
#include <pthread.h>
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

#define MAX_QUEUED 2
#define LONG_BLOCK 600000 /* ms: never reached in a passing test */

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-queued=2", NULL};

    return harness_fixture_setup(state, args);
}

/* Pause queue and fill it to the limit; the futures of the two jobs go to f. */
static void
fill_paused(forq_client *c, const char *queue, forq_future *f[MAX_QUEUED])
{
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;

    assert_int_equal(forq_queue_pause(c, queue, NULL), 0);
    o.queue = queue;
    for (int i = 0; i < MAX_QUEUED; i++)
        assert_int_equal(forq_submit(c, "echo", "filler", 6, &o, &f[i]), 0);
}

static struct forq_queue_stats
queue_info(forq_client *c, const char *queue)
{
    struct forq_queue_stats q;

    assert_int_equal(forq_queue_info(c, queue, &q), 0);
    return q;
}

/* Poll the queue until n SUBMITs are blocked on it (a guard turns a hang into a failure). */
static void
wait_blocked(forq_client *c, const char *queue, uint64_t n)
{
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    while (queue_info(c, queue).blocked != n) {
        if (harness_now_ms() > deadline)
            fail_msg("queue %s never had %llu blocked submits", queue, (unsigned long long)n);
        harness_sleep_ms(2);
    }
}

/* Send a SUBMIT of echo(payload) to queue on a raw connection, blocking up to block_ms. */
static void
send_blocking_submit(int fd, uint64_t rid, const char *queue, const char *payload,
                     uint64_t block_ms)
{
    struct msg_request req = {0};

    req.op = MSG_OP_SUBMIT;
    req.rid = rid;
    req.u.submit.task = msg_str_c("echo");
    req.u.submit.payload = msg_str_c(payload);
    req.u.submit.queue = msg_str_c(queue);
    req.u.submit.block_ms = block_ms;
    assert_int_equal(harness_send_request(fd, &req), 0);
}

/* Read the next frame on fd as a SUBMIT answer for rid. Returns its error code; *id the id. */
static int
recv_submit_answer(int fd, uint64_t rid, uint64_t *id, char *msg, size_t msglen)
{
    struct msg_decoder d;
    struct msg_response resp;
    uint8_t *body;
    size_t len;
    int code;

    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(harness_recv_frame(fd, &body, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_SUBMIT, body, len, &resp), 0);
    assert_int_equal(resp.rid, rid);
    code = resp.err.code;
    *id = resp.id;
    if (msg != NULL)
        snprintf(msg, msglen, "%.*s", (int)resp.err.msg.len, resp.err.msg.ptr);
    free(body);
    msg_decoder_fini(&d);
    return code;
}

/* 1 if fd has bytes to read (or EOF) right now: an answer that should not have come. */
static int
has_input(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0) > 0;
}

static void
ping_on(int fd, uint64_t rid)
{
    struct msg_decoder d;
    struct msg_request req = {.op = MSG_OP_PING, .rid = rid};
    struct msg_response resp;
    uint8_t *buf;

    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(harness_call(fd, &d, &req, &resp, &buf), 0);
    assert_int_equal(resp.rid, rid);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    msg_decoder_fini(&d);
}

/* Resume queue and collect the fillers that were not cancelled. */
static void
release(forq_client *c, const char *queue, forq_future *f[MAX_QUEUED])
{
    assert_int_equal(forq_queue_resume(c, queue, NULL), 0);
    for (int i = 0; i < MAX_QUEUED; i++) {
        if (f[i] == NULL)
            continue;
        assert_int_equal(forq_future_result(f[i], HARNESS_GUARD_MS, NULL, NULL), 0);
        forq_future_free(f[i]);
        f[i] = NULL;
    }
}

/* The job the blocked SUBMIT created: its echo result is payload. */
static void
expect_job_result(forq_client *c, uint64_t id, const char *payload)
{
    forq_future *f;
    const void *data;
    size_t len;

    assert_int_equal(forq_future_from_id(c, id, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, strlen(payload));
    assert_memory_equal(data, payload, len);
    forq_future_free(f);
}

static void
test_block_until_room(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    forq_future *f[MAX_QUEUED], *other;
    const void *data;
    size_t len;
    uint64_t id;
    int fd;

    fill_paused(x->c, "wq1", f);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    send_blocking_submit(fd, 7, "wq1", "third", LONG_BLOCK);
    wait_blocked(x->c, "wq1", 1);

    /* The blocked client's connection still answers its other requests. */
    ping_on(fd, 8);
    /* A non-blocking SUBMIT is refused at once, as without blocked ones. */
    o.queue = "wq1";
    assert_int_equal(forq_submit(x->c, "echo", "jump", 4, &o, &other), FORQ_ERR_QUEUE_FULL);
    assert_non_null(strstr(forq_errmsg(), "holds its limit of 2 jobs"));
    /* Everyone else is served meanwhile: another queue runs a job to its end. */
    o.queue = "wq1-other";
    assert_int_equal(forq_submit(x->c, "echo", "ok", 2, &o, &other), 0);
    assert_int_equal(forq_future_result(other, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 2);
    forq_future_free(other);
    assert_false(has_input(fd));

    /* Room: the blocked SUBMIT gets in, and only now is it answered. */
    assert_int_equal(forq_future_cancel(f[0]), 0);
    forq_future_free(f[0]);
    f[0] = NULL;
    assert_int_equal(recv_submit_answer(fd, 7, &id, NULL, 0), 0);
    assert_true(id > 0);
    assert_int_equal(queue_info(x->c, "wq1").blocked, 0);
    assert_int_equal(queue_info(x->c, "wq1").queued, MAX_QUEUED);
    release(x->c, "wq1", f);
    expect_job_result(x->c, id, "third");
    close(fd);
}

static void
test_block_times_out(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[MAX_QUEUED];
    char msg[256];
    uint64_t id;
    int fd;

    fill_paused(x->c, "wq2", f);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    send_blocking_submit(fd, 1, "wq2", "late", 50);
    assert_int_equal(recv_submit_answer(fd, 1, &id, msg, sizeof(msg)), FORQ_ERR_QUEUE_FULL);
    if (strstr(msg, "stayed full") == NULL || strstr(msg, "50 ms") == NULL)
        fail_msg("unexpected message '%s'", msg);
    /* Nothing was added, nobody is left blocked, and the connection goes on. */
    assert_int_equal(queue_info(x->c, "wq2").submitted, MAX_QUEUED);
    assert_int_equal(queue_info(x->c, "wq2").blocked, 0);
    ping_on(fd, 2);
    /* block_ms is bounded like every other time in the protocol. */
    send_blocking_submit(fd, 3, "wq2", "x", ((uint64_t)1 << 40) + 1);
    assert_int_equal(recv_submit_answer(fd, 3, &id, msg, sizeof(msg)), FORQ_ERR_BAD_REQUEST);
    if (strstr(msg, "block_ms") == NULL)
        fail_msg("unexpected message '%s'", msg);
    release(x->c, "wq2", f);
    close(fd);
}

static void
test_block_first_come_first_served(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[MAX_QUEUED];
    uint64_t first, second;
    int a, b;

    fill_paused(x->c, "wq3", f);
    assert_true((a = harness_connect(&x->h)) >= 0);
    assert_true((b = harness_connect(&x->h)) >= 0);
    send_blocking_submit(a, 1, "wq3", "A", LONG_BLOCK);
    wait_blocked(x->c, "wq3", 1);
    send_blocking_submit(b, 1, "wq3", "B", LONG_BLOCK);
    wait_blocked(x->c, "wq3", 2);

    /* One place: the first to block takes it; the second still waits. */
    assert_int_equal(forq_future_cancel(f[0]), 0);
    forq_future_free(f[0]);
    f[0] = NULL;
    assert_int_equal(recv_submit_answer(a, 1, &first, NULL, 0), 0);
    wait_blocked(x->c, "wq3", 1);
    assert_false(has_input(b));
    assert_int_equal(forq_future_cancel(f[1]), 0);
    forq_future_free(f[1]);
    f[1] = NULL;
    assert_int_equal(recv_submit_answer(b, 1, &second, NULL, 0), 0);
    assert_true(first < second);
    release(x->c, "wq3", f);
    expect_job_result(x->c, first, "A");
    expect_job_result(x->c, second, "B");
    close(a);
    close(b);
}

static void
test_block_client_leaves(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[MAX_QUEUED];
    int fd;

    fill_paused(x->c, "wq4", f);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    send_blocking_submit(fd, 1, "wq4", "gone", LONG_BLOCK);
    wait_blocked(x->c, "wq4", 1);
    close(fd);
    wait_blocked(x->c, "wq4", 0);
    /* Room opens: nobody is waiting for it any more, so nothing new comes in. */
    assert_int_equal(forq_future_cancel(f[0]), 0);
    forq_future_free(f[0]);
    f[0] = NULL;
    assert_int_equal(queue_info(x->c, "wq4").queued, MAX_QUEUED - 1);
    assert_int_equal(queue_info(x->c, "wq4").submitted, MAX_QUEUED);
    release(x->c, "wq4", f);
}

struct blocked_submit {
    const char *addr;
    int rc;
    uint64_t id;
};

static void *
blocked_submit_thread(void *arg)
{
    struct blocked_submit *b = arg;
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    forq_client *c;
    forq_future *f = NULL;

    if ((b->rc = forq_connect(b->addr, &c)) != 0)
        return NULL;
    o.queue = "wq5";
    o.block_ms = LONG_BLOCK;
    b->rc = forq_submit(c, "echo", "from libforq", 12, &o, &f);
    b->id = forq_future_id(f);
    forq_future_free(f);
    forq_client_free(c);
    return NULL;
}

/* libforq's forq_submit blocks in its caller's thread until resuming the queue makes room. */
static void
test_block_libforq(void **state)
{
    struct harness_fixture *x = *state;
    struct blocked_submit b = {x->h.addr, -1, 0};
    forq_future *f[MAX_QUEUED];
    pthread_t t;

    fill_paused(x->c, "wq5", f);
    assert_int_equal(pthread_create(&t, NULL, blocked_submit_thread, &b), 0);
    wait_blocked(x->c, "wq5", 1);
    release(x->c, "wq5", f); /* the fillers run: room */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(b.rc, 0);
    assert_true(b.id > 0);
    expect_job_result(x->c, b.id, "from libforq");
}

/* `forq submit --block MS` gives up with the queue_full exit status. */
static void
test_block_cli(void **state)
{
    struct harness_fixture *x = *state;
    const char *args[] = {"-s",      x->h.addr, "submit", "-q", "wq6",
                          "--block", "20",      "echo",   "x",  NULL};
    const char *bad[] = {"-s", x->h.addr, "submit", "--block", "soon", "echo", "x", NULL};
    forq_future *f[MAX_QUEUED];
    char out[256];

    fill_paused(x->c, "wq6", f);
    assert_int_equal(harness_run_cli(args, NULL, out, sizeof(out)), 5);
    assert_int_equal(queue_info(x->c, "wq6").submitted, MAX_QUEUED);
    assert_int_equal(harness_run_cli(bad, NULL, out, sizeof(out)), 2);
    release(x->c, "wq6", f);
}

/* SIGTERM answers a blocked SUBMIT with shutdown before forqd exits. */
static void
test_block_drain(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-queued=1", NULL};
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    struct harness h;
    forq_client *c;
    forq_future *f;
    char msg[256];
    uint64_t id;
    int fd;

    (void)state;
    if (getenv("FORQ_TEST_ADDR") != NULL)
        skip(); /* it stops forqd: forqd must be ours */
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_queue_pause(c, "wq7", NULL), 0);
    o.queue = "wq7";
    assert_int_equal(forq_submit(c, "echo", "x", 1, &o, &f), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    send_blocking_submit(fd, 1, "wq7", "y", LONG_BLOCK);
    wait_blocked(c, "wq7", 1);
    assert_int_equal(kill(h.pid, SIGTERM), 0);
    assert_int_equal(recv_submit_answer(fd, 1, &id, msg, sizeof(msg)), FORQ_ERR_SHUTDOWN);
    assert_non_null(strstr(msg, "shutting down"));
    close(fd);
    forq_future_free(f);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

static void
write_config(const char *path, int max_queued)
{
    char text[64];

    snprintf(text, sizeof(text), "[forqd]\nworkers = 1\nmax_queued = %d\n", max_queued);
    harness_write_file(path, text);
}

/* A reload that raises max_queued lets a blocked SUBMIT in. */
static void
test_block_reload_raises_limit(void **state)
{
    char path[64], opt[80];
    const char *args[] = {opt, NULL};
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    struct harness h;
    forq_client *c;
    forq_future *f;
    uint64_t id;
    int fd;

    (void)state;
    if (getenv("FORQ_TEST_ADDR") != NULL)
        skip(); /* it sends forqd SIGHUP: forqd must be ours */
    snprintf(path, sizeof(path), "/tmp/forq-qwait-%d.conf", (int)getpid());
    snprintf(opt, sizeof(opt), "--config=%s", path);
    write_config(path, 1);
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_queue_pause(c, "wq8", NULL), 0);
    o.queue = "wq8";
    assert_int_equal(forq_submit(c, "echo", "x", 1, &o, &f), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    send_blocking_submit(fd, 1, "wq8", "y", LONG_BLOCK);
    wait_blocked(c, "wq8", 1);
    write_config(path, 2);
    assert_int_equal(kill(h.pid, SIGHUP), 0);
    assert_int_equal(recv_submit_answer(fd, 1, &id, NULL, 0), 0);
    assert_true(id > forq_future_id(f));
    assert_int_equal(queue_info(c, "wq8").queued, 2);
    close(fd);
    forq_future_free(f);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_until_room),
        cmocka_unit_test(test_block_times_out),
        cmocka_unit_test(test_block_first_come_first_served),
        cmocka_unit_test(test_block_client_leaves),
        cmocka_unit_test(test_block_libforq),
        cmocka_unit_test(test_block_cli),
        cmocka_unit_test(test_block_drain),
        cmocka_unit_test(test_block_reload_raises_limit),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
