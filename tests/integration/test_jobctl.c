/*
 * test_jobctl.c — job control on a real forqd: killing timeouts, retries
 * with their attempt counts, cancel while running, per-queue limits, LIFO,
 * pause/resume, drain (JOIN), unique keys, delays and retries across a
 * restart, worker recycling, the memory limit, and 100 SIGKILLs of busy
 * workers under load.
 *
 * The new ops (QUEUE, JOIN, CANCEL running) and the new job fields are driven
 * over a raw socket, so this file checks the wire as PROTOCOL.md describes it.
 * No assertion depends on speed: order is checked through the timestamps the
 * daemon records, and waits have only generous guards.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

struct ctx {
    struct harness_fixture *x;
    int fd;
    struct msg_decoder d;
    uint64_t rid;
};

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static int
ctx_setup(void **state, const char *const *args)
{
    struct ctx *c = calloc(1, sizeof(*c));
    void *xs = NULL;

    if (c == NULL || harness_fixture_setup(&xs, args) != 0)
        return -1;
    c->x = xs;
    if ((c->fd = harness_connect(&c->x->h)) < 0 || msg_decoder_init(&c->d) != 0)
        return -1;
    *state = c;
    return 0;
}

static int
ctx_teardown(void **state)
{
    struct ctx *c = *state;
    void *xs = c->x;
    int r;

    close(c->fd);
    msg_decoder_fini(&c->d);
    r = harness_fixture_teardown(&xs);
    free(c);
    return r;
}

/* Reconnect the raw socket (after a restart). */
static void
ctx_reconnect(struct ctx *c)
{
    close(c->fd);
    assert_true((c->fd = harness_connect(&c->x->h)) >= 0);
}

/* One request, one answer (the body stays in *buf: free it). */
static void
call(struct ctx *c, struct msg_request *req, struct msg_response *resp, uint8_t **buf)
{
    req->rid = ++c->rid;
    assert_int_equal(harness_call(c->fd, &c->d, req, resp, buf), 0);
    assert_true(resp->rid == req->rid);
}

static uint64_t
submit(struct ctx *c, const char *task, const char *payload, const char *queue,
       const struct msg_submit *opts, int *duplicate)
{
    struct msg_request req = {.op = MSG_OP_SUBMIT};
    struct msg_response resp;
    uint8_t *buf;
    uint64_t id;

    if (opts != NULL)
        req.u.submit = *opts;
    req.u.submit.task = msg_str_c(task);
    req.u.submit.payload = msg_str_c(payload);
    req.u.submit.queue = msg_str_c(queue);
    call(c, &req, &resp, &buf);
    if (resp.err.code != 0)
        fail_msg("submit %s: %s", task, resp.err.msg.ptr ? resp.err.msg.ptr : "?");
    id = resp.id;
    if (duplicate != NULL)
        *duplicate = resp.duplicate;
    free(buf);
    return id;
}

/* STATUS of a job; the strings in *job live in *buf. */
static void
status(struct ctx *c, uint64_t id, struct msg_job *job, uint8_t **buf)
{
    struct msg_request req = {.op = MSG_OP_STATUS};
    struct msg_response resp;

    req.u.status.id = id;
    call(c, &req, &resp, buf);
    if (resp.err.code != 0)
        fail_msg("status %llu: %d", (unsigned long long)id, resp.err.code);
    *job = resp.job;
}

/* WAIT without a time limit (the guard catches a hang): the finished job. */
static void
wait_job(struct ctx *c, uint64_t id, struct msg_job *job, uint8_t **buf)
{
    struct msg_request req = {.op = MSG_OP_WAIT};
    struct msg_response resp;

    req.u.wait.id = id;
    req.u.wait.timeout_ms = HARNESS_GUARD_MS;
    call(c, &req, &resp, buf);
    if (resp.err.code != 0)
        fail_msg("wait %llu: %d", (unsigned long long)id, resp.err.code);
    *job = resp.job;
}

/* QUEUE op: returns the error code; the queue's figures in *qs (strings in *buf). */
static int
queue_op(struct ctx *c, const char *name, const char *action, int64_t limit, const char *order,
         struct msg_queue_stats *qs, uint8_t **buf)
{
    struct msg_request req = {.op = MSG_OP_QUEUE};
    struct msg_response resp;

    req.u.queue.queue = msg_str_c(name);
    req.u.queue.action = msg_str_c(action);
    req.u.queue.limit = limit;
    req.u.queue.order = msg_str_c(order);
    call(c, &req, &resp, buf);
    if (qs != NULL)
        *qs = resp.queue;
    return resp.err.code;
}

static void
queue_do(struct ctx *c, const char *name, const char *action, int64_t limit, const char *order)
{
    uint8_t *buf;

    assert_int_equal(queue_op(c, name, action, limit, order, NULL, &buf), 0);
    free(buf);
}

/* JOIN op: 0 or the error code. */
static int
join(struct ctx *c, const char *name, int64_t timeout_ms)
{
    struct msg_request req = {.op = MSG_OP_JOIN};
    struct msg_response resp;
    uint8_t *buf;
    int code;

    req.u.join.queue = msg_str_c(name);
    req.u.join.timeout_ms = timeout_ms;
    call(c, &req, &resp, &buf);
    code = resp.err.code;
    free(buf);
    return code;
}

/* CANCEL: the error code; the job (strings in *buf) on success. */
static int
cancel(struct ctx *c, uint64_t id, int running, struct msg_job *job, uint8_t **buf)
{
    struct msg_request req = {.op = MSG_OP_CANCEL};
    struct msg_response resp;

    req.u.cancel.id = id;
    req.u.cancel.running = running;
    call(c, &req, &resp, buf);
    *job = resp.job;
    return resp.err.code;
}

/* The connection still answers a PING. */
static void
ping(struct ctx *c)
{
    struct msg_request req = {.op = MSG_OP_PING};
    struct msg_response resp;
    uint8_t *buf;

    call(c, &req, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    free(buf);
}

/* Wait until the pool has n live workers, none of them in gone[0..ngone). */
static void
wait_pool_full(struct ctx *c, int n, const pid_t *gone, int ngone)
{
    pid_t pids[64];

    for (int guard = 0; guard < HARNESS_GUARD_MS / 5; guard++) {
        int k = harness_worker_pids(c->x->c, pids, 64), ok = k == n;

        for (int i = 0; ok && i < k; i++) {
            ok = pids[i] > 0 && kill(pids[i], 0) == 0;
            for (int j = 0; ok && j < ngone; j++)
                ok = pids[i] != gone[j];
        }
        if (ok)
            return;
        sleep_ms(5);
    }
    fail_msg("the pool did not come back to %d live workers", n);
}

/* ------------------------------------------------------------------ group: job control */

#define WORKERS 2

static int
group_setup(void **state)
{
    /* Retries 1..5 ms apart: the tests see every attempt without waiting. */
    static const char *const args[] = {"--workers=2", "--retry-backoff-ms=1",
                                       "--retry-backoff-max-ms=5", NULL};

    return ctx_setup(state, args);
}

/* A sleeping job past its timeout is killed; the other worker goes on meanwhile. */
static void
test_timeout_kills_the_job_not_the_pool(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.timeout_ms = 300};
    struct msg_job job;
    uint64_t slow, quick[20];
    uint8_t *buf;
    pid_t pid;

    slow = submit(c, "sleep", "600000", NULL, &o, NULL);
    assert_true((pid = harness_wait_running(c->x->c, slow)) > 0);
    for (int i = 0; i < 20; i++)
        quick[i] = submit(c, "echo", "still served", NULL, NULL, NULL);
    for (int i = 0; i < 20; i++) {
        wait_job(c, quick[i], &job, &buf);
        assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
        free(buf);
    }
    wait_job(c, slow, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_FAILED);
    assert_int_equal(job.error.code, FORQ_ERR_JOB_TIMEOUT);
    assert_non_null(strstr(job.error.msg.ptr, "timeout of 300 ms"));
    assert_int_equal(job.attempts, 1);
    assert_true(job.timeout_ms == 300);
    free(buf);
    wait_pool_full(c, WORKERS, &pid, 1);
    assert_int_equal(kill(pid, 0), -1); /* really gone */
}

/* A timed-out attempt is retried; every attempt is counted. */
static void
test_timeout_then_retries(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.timeout_ms = 50, .max_retries = 2};
    struct msg_job job;
    uint8_t *buf;
    uint64_t id;

    id = submit(c, "sleep", "600000", NULL, &o, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_FAILED);
    assert_int_equal(job.error.code, FORQ_ERR_JOB_TIMEOUT);
    assert_int_equal(job.attempts, 3);
    assert_int_equal(job.max_retries, 2);
    free(buf);
    wait_pool_full(c, WORKERS, NULL, 0);
}

/* A failing task runs 1 + max_retries times, then fails with its own error. */
static void
test_retries_count_attempts(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.max_retries = 3};
    struct msg_job job;
    uint8_t *buf;
    uint64_t id, once;

    id = submit(c, "fail", "flaky dependency", NULL, &o, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_FAILED);
    assert_int_equal(job.error.code, FORQ_ERR_TASK_FAILED);
    assert_true(msg_str_eq(job.error.msg, "flaky dependency"));
    assert_int_equal(job.attempts, 4);
    assert_int_equal(job.last_error.code, 0); /* final: the error is in `error` */
    free(buf);

    /* No retries asked: one attempt. A success is never retried. */
    once = submit(c, "fail", "once", NULL, NULL, NULL);
    wait_job(c, once, &job, &buf);
    assert_int_equal(job.attempts, 1);
    free(buf);
    o.max_retries = 5;
    id = submit(c, "echo", "fine", NULL, &o, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.error.code, 0);
    free(buf);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(job.attempts, 1);
    free(buf);
}

/*
 * Many jobs failing and retrying at once: each RETRY record carries the last
 * error to the store while the next attempt may already replace it (a
 * use-after-free here once; the ASan pass of this test is what catches it).
 */
static void
test_many_retries_at_once(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.max_retries = 20};
    uint64_t ids[50];

    for (int i = 0; i < 50; i++)
        ids[i] = submit(c, "fail", "try again, with a message long enough to matter", NULL,
                        &o, NULL);
    for (int i = 0; i < 50; i++) {
        struct msg_job job;
        uint8_t *buf;

        wait_job(c, ids[i], &job, &buf);
        assert_int_equal(job.state, FORQ_STATE_FAILED);
        assert_int_equal(job.attempts, 21);
        assert_non_null(strstr(job.error.msg.ptr, "try again"));
        free(buf);
    }
}

/* A job whose worker keeps dying ends worker_lost after its retries; the pool lives. */
static void
test_worker_deaths_are_retried(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.max_retries = 2};
    pid_t killed[3];
    struct msg_job job;
    uint8_t *buf;
    uint64_t id;

    id = submit(c, "sleep", "600000", NULL, &o, NULL);
    for (int i = 0; i < 3; i++) {
        assert_true((killed[i] = harness_wait_running(c->x->c, id)) > 0);
        assert_int_equal(kill(killed[i], SIGKILL), 0);
        if (i < 2) { /* it comes back for another attempt, on another worker */
            for (int guard = 0; guard < HARNESS_GUARD_MS / 5; guard++) {
                status(c, id, &job, &buf);
                int again = job.attempts == (uint32_t)i + 2 && job.state == FORQ_STATE_RUNNING &&
                            job.worker_pid != killed[i];
                if (job.attempts == (uint32_t)i + 2 || job.state != FORQ_STATE_RUNNING)
                    assert_int_equal(job.last_error.code, FORQ_ERR_WORKER_LOST);
                free(buf);
                if (again)
                    break;
                sleep_ms(5);
            }
        }
    }
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_FAILED);
    assert_int_equal(job.error.code, FORQ_ERR_WORKER_LOST);
    assert_int_equal(job.attempts, 3);
    assert_non_null(strstr(job.error.msg.ptr, "signal 9"));
    free(buf);
    wait_pool_full(c, WORKERS, killed, 3);
}

/* CANCEL running kills the worker; the job ends cancelled; others are untouched. */
static void
test_cancel_running(void **state)
{
    struct ctx *c = *state;
    struct msg_job job;
    uint64_t id, other;
    uint8_t *buf;
    pid_t pid;

    id = submit(c, "sleep", "600000", NULL, NULL, NULL);
    assert_true((pid = harness_wait_running(c->x->c, id)) > 0);
    /* Without `running`, a running job is refused, and the connection goes on. */
    assert_int_equal(cancel(c, id, 0, &job, &buf), FORQ_ERR_STATE);
    free(buf);
    ping(c);
    assert_int_equal(cancel(c, id, 1, &job, &buf), 0);
    assert_int_equal(job.state, FORQ_STATE_CANCELLED);
    assert_int_equal(job.error.code, FORQ_ERR_CANCELLED);
    free(buf);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_CANCELLED);
    free(buf);
    wait_pool_full(c, WORKERS, &pid, 1);
    other = submit(c, "upper", "after", NULL, NULL, NULL);
    wait_job(c, other, &job, &buf);
    assert_true(msg_str_eq(job.result, "AFTER"));
    free(buf);
    /* A finished job cannot be cancelled, running or not; an unknown one is not found. */
    assert_int_equal(cancel(c, other, 1, &job, &buf), FORQ_ERR_STATE);
    free(buf);
    assert_int_equal(cancel(c, 999999999, 1, &job, &buf), FORQ_ERR_NOT_FOUND);
    free(buf);
}

/* Sort ids by the time their jobs started. */
static void
started_order(struct ctx *c, uint64_t *ids, int n, uint64_t *start, uint64_t *end)
{
    for (int i = 0; i < n; i++) {
        struct msg_job job;
        uint8_t *buf;

        wait_job(c, ids[i], &job, &buf);
        assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
        start[i] = job.started_us;
        end[i] = job.finished_us;
        free(buf);
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && start[j] < start[j - 1]; j--) {
            uint64_t t;

            t = start[j], start[j] = start[j - 1], start[j - 1] = t;
            t = end[j], end[j] = end[j - 1], end[j - 1] = t;
            t = ids[j], ids[j] = ids[j - 1], ids[j - 1] = t;
        }
}

/* limit 1 on a pool of 2: the queue's jobs never overlap; another queue still runs. */
static void
test_limit_one_with_two_workers(void **state)
{
    struct ctx *c = *state;
    uint64_t ids[4], start[4], end[4], free_id;
    struct msg_queue_stats qs;
    struct msg_job job;
    uint8_t *buf;

    assert_int_equal(queue_op(c, "serial", "set", 1, NULL, &qs, &buf), 0);
    assert_int_equal(qs.limit, 1);
    assert_true(msg_str_eq(qs.name, "serial"));
    free(buf);
    for (int i = 0; i < 4; i++)
        ids[i] = submit(c, "sleep", "100", "serial", NULL, NULL);
    /* The second worker is free for other queues all along. */
    free_id = submit(c, "echo", "x", "other", NULL, NULL);
    wait_job(c, free_id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    free(buf);
    assert_int_equal(queue_op(c, "serial", "info", -1, NULL, &qs, &buf), 0);
    assert_true(qs.running <= 1);
    free(buf);
    started_order(c, ids, 4, start, end);
    for (int i = 1; i < 4; i++)
        assert_true(start[i] >= end[i - 1]); /* one at a time */
    queue_do(c, "serial", "set", 0, NULL); /* and back to no limit */
}

/* A LIFO queue starts its newest job first (within a priority). */
static void
test_lifo_order(void **state)
{
    struct ctx *c = *state;
    uint64_t ids[6], want[6], start[6], end[6];
    struct msg_queue_stats qs;
    uint8_t *buf;

    assert_int_equal(queue_op(c, "stack", "set", 1, "lifo", &qs, &buf), 0);
    assert_true(msg_str_eq(qs.order, "lifo"));
    free(buf);
    queue_do(c, "stack", "pause", -1, NULL);
    for (int i = 0; i < 6; i++)
        ids[i] = want[5 - i] = submit(c, "echo", "x", "stack", NULL, NULL);
    queue_do(c, "stack", "resume", -1, NULL);
    started_order(c, ids, 6, start, end);
    for (int i = 0; i < 6; i++)
        assert_true(ids[i] == want[i]);
    /* FIFO again: the oldest first. */
    queue_do(c, "stack", "set", -1, "fifo");
    queue_do(c, "stack", "pause", -1, NULL);
    for (int i = 0; i < 6; i++)
        ids[i] = want[i] = submit(c, "echo", "x", "stack", NULL, NULL);
    queue_do(c, "stack", "resume", -1, NULL);
    started_order(c, ids, 6, start, end);
    for (int i = 0; i < 6; i++)
        assert_true(ids[i] == want[i]);
}

/* Paused: jobs are accepted and wait; JOIN waits for the drain; resume lets them run. */
static void
test_pause_resume_and_join(void **state)
{
    struct ctx *c = *state;
    struct msg_queue_stats qs;
    struct msg_job job;
    uint64_t ids[3];
    uint8_t *buf;

    assert_int_equal(join(c, "never-used", 0), 0); /* nothing there: drained */
    assert_int_equal(join(c, "never-used", -1), 0);
    queue_do(c, "held", "pause", -1, NULL);
    for (int i = 0; i < 3; i++)
        ids[i] = submit(c, "sleep", "20", "held", NULL, NULL);
    assert_int_equal(queue_op(c, "held", "info", -1, NULL, &qs, &buf), 0);
    assert_int_equal(qs.paused, 1);
    assert_true(qs.queued == 3 && qs.running == 0);
    free(buf);
    status(c, ids[0], &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_QUEUED);
    free(buf);
    assert_int_equal(join(c, "held", 0), FORQ_ERR_TIMEOUT);  /* a poll */
    assert_int_equal(join(c, "held", 50), FORQ_ERR_TIMEOUT); /* a wait that runs out */
    ping(c);
    queue_do(c, "held", "resume", -1, NULL);
    assert_int_equal(join(c, "held", -1), 0);
    for (int i = 0; i < 3; i++) { /* drained means every job had finished */
        status(c, ids[i], &job, &buf);
        assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
        free(buf);
    }
}

/* A JOIN also waits for jobs that are scheduled (delays, retries). */
static void
test_join_waits_for_scheduled(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.delay_ms = 200};
    struct msg_job job;
    uint8_t *buf;
    uint64_t id;

    id = submit(c, "echo", "later", "delayed", &o, NULL);
    status(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SCHEDULED);
    assert_true(job.run_at_us >= job.created_us + 200000);
    free(buf);
    assert_int_equal(join(c, "delayed", -1), 0);
    status(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_true(job.started_us >= job.created_us + 200000); /* not before its time */
    free(buf);
    /* A delayed job can be cancelled before its time. */
    o.delay_ms = 600000;
    id = submit(c, "echo", "never", "delayed", &o, NULL);
    assert_int_equal(cancel(c, id, 0, &job, &buf), 0);
    assert_int_equal(job.state, FORQ_STATE_CANCELLED);
    free(buf);
    assert_int_equal(join(c, "delayed", -1), 0);
}

/* A second SUBMIT with the key of an unfinished job gets that job's id. */
static void
test_unique_key(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.unique_key = msg_str_c("report-2026-11-21")};
    struct msg_job job;
    uint64_t a, b, d;
    uint8_t *buf;
    int dup;

    queue_do(c, "uniq", "pause", -1, NULL);
    a = submit(c, "echo", "first", "uniq", &o, &dup);
    assert_int_equal(dup, 0);
    b = submit(c, "echo", "second", "uniq", &o, &dup);
    assert_true(a == b);
    assert_int_equal(dup, 1);
    status(c, a, &job, &buf);
    assert_true(msg_str_eq(job.unique_key, "report-2026-11-21"));
    free(buf);
    queue_do(c, "uniq", "resume", -1, NULL);
    wait_job(c, a, &job, &buf);
    assert_true(msg_str_eq(job.result, "first")); /* the second payload was never used */
    free(buf);
    /* A key with a NUL in it is refused (it could not be stored as text). */
    {
        struct msg_request req = {.op = MSG_OP_SUBMIT};
        struct msg_response resp;

        req.u.submit.task = msg_str_c("echo");
        req.u.submit.payload = msg_str_c("x");
        req.u.submit.unique_key = (struct msg_str){"a\0b", 3};
        call(c, &req, &resp, &buf);
        assert_int_equal(resp.err.code, FORQ_ERR_BAD_REQUEST);
        free(buf);
        ping(c);
    }
    /* Finished: the key is free again. */
    d = submit(c, "echo", "third", "uniq", &o, &dup);
    assert_true(d != a);
    assert_int_equal(dup, 0);
    wait_job(c, d, &job, &buf);
    assert_true(msg_str_eq(job.result, "third"));
    free(buf);
}

/* Bad QUEUE and JOIN requests get clear errors; the connection keeps serving. */
static void
test_bad_queue_requests(void **state)
{
    struct ctx *c = *state;
    struct msg_queue_stats qs;
    uint8_t *buf;

    assert_int_equal(queue_op(c, "q", "explode", -1, NULL, &qs, &buf), FORQ_ERR_BAD_REQUEST);
    free(buf);
    assert_int_equal(queue_op(c, "q", "set", -1, NULL, &qs, &buf), FORQ_ERR_BAD_REQUEST);
    free(buf);
    assert_int_equal(queue_op(c, "q", "set", -1, "random", &qs, &buf), FORQ_ERR_BAD_REQUEST);
    free(buf);
    ping(c);
    /* A well-formed request still works on the same connection. */
    assert_int_equal(queue_op(c, "q", "info", -1, NULL, &qs, &buf), 0);
    assert_true(msg_str_eq(qs.order, "fifo"));
    free(buf);
}

/* The pids of the workers running a job now; returns how many. */
static int
busy_worker(struct ctx *c, pid_t *pids, int max)
{
    struct forq_stats *st;
    int n = 0;

    assert_int_equal(forq_stats(c->x->c, &st), 0);
    for (size_t i = 0; i < st->nworkers && n < max; i++)
        if (strcmp(st->workers[i].state, "busy") == 0 && st->workers[i].pid > 0)
            pids[n++] = st->workers[i].pid;
    forq_stats_free(st);
    return n;
}

/*
 * 100 SIGKILLs of random busy workers while jobs keep coming: every job ends
 * succeeded or worker_lost (never lost, never hanging), and the pool ends at
 * full size.
 */
static void
test_hundred_kills_under_load(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.max_retries = 2};
    static uint64_t ids[2000];
    pid_t pids[WORKERS];
    int n = 0, kills = 0, ok = 0, lost = 0, k;
    unsigned seed = 12345;

    while (kills < 100) {
        for (int i = 0; i < 10 && n < 2000; i++)
            ids[n++] = submit(c, "sleep", "5", "load", &o, NULL);
        k = busy_worker(c, pids, WORKERS);
        if (k > 0 && kill(pids[rand_r(&seed) % (unsigned)k], SIGKILL) == 0)
            kills++;
        sleep_ms(2);
    }
    for (int i = 0; i < n; i++) {
        struct msg_job job;
        uint8_t *buf;

        wait_job(c, ids[i], &job, &buf);
        if (job.state == FORQ_STATE_SUCCEEDED) {
            ok++;
        } else {
            assert_int_equal(job.state, FORQ_STATE_FAILED);
            assert_int_equal(job.error.code, FORQ_ERR_WORKER_LOST);
            assert_int_equal(job.attempts, 3);
            lost++;
        }
        free(buf);
    }
    assert_int_equal(ok + lost, n);
    assert_true(ok > 0);
    print_message("100 kills: %d jobs, %d succeeded, %d worker_lost after 3 attempts\n", n, ok,
                  lost);
    wait_pool_full(c, WORKERS, NULL, 0);
    assert_int_equal(join(c, "load", -1), 0);
}

/* ------------------------------------------------------------------ group: restarts */

/* Retries an hour apart: a failed attempt waits, scheduled, across the restart. */
static const char *const restart_args[] = {"--workers=2", "--retry-backoff-ms=3600000",
                                           "--retry-backoff-max-ms=3600000", NULL};

static int
restart_setup(void **state)
{
    return ctx_setup(state, restart_args);
}

static void
kill_and_restart(struct ctx *c)
{
    forq_client_free(c->x->c);
    c->x->c = NULL;
    assert_true(harness_kill(&c->x->h, SIGKILL) >= 0);
    assert_int_equal(harness_restart(&c->x->h, restart_args), 0);
    assert_int_equal(forq_connect(c->x->h.addr, &c->x->c), 0);
    ctx_reconnect(c);
}

/*
 * A delay that expires while forqd is down runs right after the restart; a
 * failed attempt waiting for its retry keeps its count and last error; a
 * unique key still names its unfinished job.
 */
static void
test_state_survives_restart(void **state)
{
    struct ctx *c = *state;
    struct msg_submit delayed = {.delay_ms = 300};
    struct msg_submit retry = {.max_retries = 3};
    struct msg_submit uniq = {.delay_ms = 3600000, .unique_key = msg_str_c("nightly")};
    uint64_t d, r, u, u2;
    struct msg_job job;
    uint8_t *buf;
    int dup;

    d = submit(c, "upper", "delayed", NULL, &delayed, NULL);
    r = submit(c, "fail", "boom", NULL, &retry, NULL);
    u = submit(c, "echo", "once", NULL, &uniq, NULL);
    /* The failed attempt is recorded, and the job waits an hour for the next. */
    for (int guard = 0; guard < HARNESS_GUARD_MS / 5; guard++) {
        status(c, r, &job, &buf);
        int waiting = job.state == FORQ_STATE_SCHEDULED && job.attempts == 1;
        free(buf);
        if (waiting)
            break;
        sleep_ms(5);
    }
    status(c, d, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SCHEDULED);
    free(buf);

    /*
     * A clean stop: every record reaches the store (after a kill -9 the
     * RETRY record may not have been committed yet; the attempt would then
     * count as cut short by the crash and run again — at-least-once).
     */
    forq_client_free(c->x->c);
    c->x->c = NULL;
    assert_int_equal(harness_stop_keep(&c->x->h), 0);
    sleep_ms(400); /* let the delay expire while forqd is down (not an assertion) */
    assert_int_equal(harness_restart(&c->x->h, restart_args), 0);
    assert_int_equal(forq_connect(c->x->h.addr, &c->x->c), 0);
    ctx_reconnect(c);

    wait_job(c, d, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_true(msg_str_eq(job.result, "DELAYED"));
    assert_true(job.started_us >= job.created_us + 300000);
    free(buf);

    status(c, r, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SCHEDULED);
    assert_int_equal(job.attempts, 1);
    assert_int_equal(job.max_retries, 3);
    assert_int_equal(job.last_error.code, FORQ_ERR_TASK_FAILED);
    assert_true(msg_str_eq(job.last_error.msg, "boom"));
    assert_true(job.run_at_us > job.created_us);
    free(buf);

    u2 = submit(c, "echo", "twice", NULL, &uniq, &dup);
    assert_true(u2 == u);
    assert_int_equal(dup, 1);
    /* Once it is cancelled (finished), the key is free again, also after a restart. */
    assert_int_equal(cancel(c, u, 0, &job, &buf), 0);
    free(buf);
    kill_and_restart(c);
    u2 = submit(c, "echo", "thrice", NULL, &uniq, &dup);
    assert_true(u2 != u);
    assert_int_equal(dup, 0);
    assert_int_equal(cancel(c, u2, 0, &job, &buf), 0);
    free(buf);
    assert_int_equal(cancel(c, r, 0, &job, &buf), 0);
    assert_int_equal(job.state, FORQ_STATE_CANCELLED);
    free(buf);
}

/* ------------------------------------------------------------------ group: worker hygiene */

static int
hygiene_setup(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-jobs-per-worker=3",
                                       "--memory-limit=512M", NULL};

    return ctx_setup(state, args);
}

/* One worker, recycled after every 3 jobs: pids change every 3 jobs, nothing fails. */
static void
test_recycling(void **state)
{
    struct ctx *c = *state;
    pid_t pid[10];

    for (int i = 0; i < 10; i++) {
        struct msg_job job;
        uint64_t id = submit(c, "echo", "x", NULL, NULL, NULL);
        uint8_t *buf;

        wait_job(c, id, &job, &buf);
        assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
        pid[i] = job.worker_pid;
        free(buf);
    }
    /* The job count of the very first worker includes nothing else. */
    for (int i = 0; i < 10; i++) {
        if (i % 3 != 0)
            assert_int_equal(pid[i], pid[i - 1]);
        else if (i > 0)
            assert_int_not_equal(pid[i], pid[i - 1]);
    }
    wait_pool_full(c, 1, NULL, 0);
}

/* A job over the memory limit fails with memory_limit; the pool goes on. */
static void
test_memory_limit(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizers reserve terabytes of address space: RLIMIT_AS cannot apply. */
    (void)state;
    skip();
#else
    struct ctx *c = *state;
    struct msg_job job;
    uint8_t *buf;
    uint64_t id;

    id = submit(c, "alloc", "16", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    free(buf);
    id = submit(c, "alloc", "2048", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_FAILED);
    assert_int_equal(job.error.code, FORQ_ERR_MEMORY_LIMIT);
    free(buf);
    id = submit(c, "upper", "goes on", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_true(msg_str_eq(job.result, "GOES ON"));
    free(buf);
#endif
}

/* ------------------------------------------------------------------ group: exec and plugin tasks */

static char pidfile[128];

static int
tasks_setup(void **state)
{
    static char slow[512], cancelme[512], flaky[512], bg[512];
    static char flagfile[128];
    const char *args[32];
    int n = 0;

    snprintf(pidfile, sizeof(pidfile), "/tmp/forq-test-jobctl-%d.pid", (int)getpid());
    snprintf(flagfile, sizeof(flagfile), "/tmp/forq-test-jobctl-%d.flag", (int)getpid());
    unlink(flagfile);
    /* The command writes its own pid, then becomes `sleep`: the test can see it die. */
    snprintf(slow, sizeof(slow), "slow=sh -c 'echo $$ > %s; exec sleep 600'", pidfile);
    snprintf(cancelme, sizeof(cancelme), "cancelme=sh -c 'echo $$ > %s.2; exec sleep 600'",
             pidfile);
    /* Fails the first time (no flag file yet), succeeds the second. */
    snprintf(flaky, sizeof(flaky),
             "flaky=sh -c 'if [ -e %s ]; then cat; else : > %s; echo not yet >&2; exit 1; fi'",
             flagfile, flagfile);
    args[n++] = "--workers=2";
    args[n++] = "--retry-backoff-ms=1";
    args[n++] = "--retry-backoff-max-ms=5";
    args[n++] = "--plugin=" FORQ_PLUGIN_PATH;
    args[n++] = "--task";
    args[n++] = "shout=tr a-z A-Z";
    args[n++] = "--task";
    args[n++] = "crash=sh -c 'echo boom >&2; exit 3'";
    args[n++] = "--task";
    args[n++] = slow;
    args[n++] = "--task";
    args[n++] = cancelme;
    args[n++] = "--task";
    args[n++] = flaky;
    /* Leaves a process behind that holds stdout open, and says which. */
    snprintf(bg, sizeof(bg), "bg=sh -c 'sleep 600 & echo $! > %s.bg; echo hi'", pidfile);
    args[n++] = "--task";
    args[n++] = bg;
    args[n] = NULL;
    return ctx_setup(state, args);
}

static int
tasks_teardown(void **state)
{
    char path[160];

    unlink(pidfile);
    snprintf(path, sizeof(path), "%s.2", pidfile);
    unlink(path);
    snprintf(path, sizeof(path), "%s.bg", pidfile);
    unlink(path);
    snprintf(path, sizeof(path), "%.*s.flag", (int)(strlen(pidfile) - 4), pidfile);
    unlink(path);
    return ctx_teardown(state);
}

/* The pid an exec command wrote into path (polls until it is there). */
static pid_t
read_pid(const char *path)
{
    for (int guard = 0; guard < HARNESS_GUARD_MS / 5; guard++) {
        FILE *f = fopen(path, "r");
        int pid = 0;

        if (f != NULL) {
            if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (pid > 0)
            return pid;
        sleep_ms(5);
    }
    fail_msg("no pid in %s", path);
    return -1;
}

/* Wait until process pid no longer exists (killed with its worker's group). */
static void
wait_gone(pid_t pid)
{
    for (int guard = 0; guard < HARNESS_GUARD_MS / 5; guard++) {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return;
        sleep_ms(5);
    }
    fail_msg("process %d outlived its job", (int)pid);
}

static void
test_exec_tasks(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.max_retries = 2};
    struct msg_job job;
    uint8_t *buf;
    uint64_t id;

    id = submit(c, "shout", "payload on stdin", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_true(msg_str_eq(job.result, "PAYLOAD ON STDIN"));
    free(buf);

    id = submit(c, "crash", "", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_FAILED);
    assert_int_equal(job.error.code, FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(job.error.msg.ptr, "status 3"));
    assert_non_null(strstr(job.error.msg.ptr, "boom"));
    free(buf);

    /* Fails once, then succeeds: retried, and no error is left on it. */
    id = submit(c, "flaky", "second time lucky", NULL, &o, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(job.attempts, 2);
    assert_int_equal(job.error.code, 0);
    assert_int_equal(job.last_error.code, 0);
    assert_true(msg_str_eq(job.result, "second time lucky"));
    free(buf);
}

/*
 * A command that exits leaving a background process with its stdout open
 * finishes when it exits (the job does not wait for the stray process).
 */
static void
test_exec_background_child(void **state)
{
    struct ctx *c = *state;
    struct msg_job job;
    char path[160];
    uint8_t *buf;
    uint64_t id;

    snprintf(path, sizeof(path), "%s.bg", pidfile);
    unlink(path);
    id = submit(c, "bg", "", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf); /* the guard (30 s) is far below the stray's 600 s */
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_true(msg_str_eq(job.result, "hi\n"));
    free(buf);
    kill(read_pid(path), SIGKILL);
}

/* A timeout or a cancel kills the command too, not only the worker. */
static void
test_exec_killed_with_its_worker(void **state)
{
    struct ctx *c = *state;
    struct msg_submit o = {.timeout_ms = 300};
    struct msg_job job;
    char path[160];
    uint8_t *buf;
    uint64_t id;
    pid_t cmd;

    unlink(pidfile);
    id = submit(c, "slow", "", NULL, &o, NULL);
    cmd = read_pid(pidfile);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.error.code, FORQ_ERR_JOB_TIMEOUT);
    free(buf);
    wait_gone(cmd);

    snprintf(path, sizeof(path), "%s.2", pidfile);
    unlink(path);
    id = submit(c, "cancelme", "", NULL, NULL, NULL);
    cmd = read_pid(path);
    assert_int_equal(cancel(c, id, 1, &job, &buf), 0);
    assert_int_equal(job.state, FORQ_STATE_CANCELLED);
    free(buf);
    wait_gone(cmd);
    wait_pool_full(c, 2, NULL, 0);
}

static void
test_plugin_tasks(void **state)
{
    struct ctx *c = *state;
    struct msg_job job;
    uint8_t *buf;
    uint64_t id;

    id = submit(c, "rev", "forq", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_true(msg_str_eq(job.result, "qrof"));
    free(buf);
    id = submit(c, "wc", "one two\nthree\n", NULL, NULL, NULL);
    wait_job(c, id, &job, &buf);
    assert_int_equal(job.state, FORQ_STATE_SUCCEEDED);
    assert_true(msg_str_eq(job.result, "2 3 14"));
    free(buf);
}

/* ------------------------------------------------------------------ start-up refusals */

/* forqd refuses to start on a bad setting, naming it; out gets its output. */
static int
run_forqd(const char *const *args, char *out, size_t len)
{
    int st = harness_run_forqd(args, out, len);

    print_message("forqd said: %s", out);
    return st;
}

static void
test_wrong_abi_plugin_refused(void **state)
{
    static const char *const check[] = {"--check-config", "--plugin",
                                        FORQ_FIXTURE_DIR "/libforq_fixture_abi999.so", NULL};
    static const char *const start[] = {
        "--listen", "tcp://127.0.0.1:0", "--durability", "off", "--plugin",
        FORQ_FIXTURE_DIR "/libforq_fixture_abi999.so", NULL};
    static char out[4096];

    (void)state;
    assert_int_equal(run_forqd(check, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "libforq_fixture_abi999.so"));
    assert_non_null(strstr(out, "ABI version 999"));
    assert_int_not_equal(run_forqd(start, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "ABI version 999"));
}

static void
test_bad_config_names_file_and_line(void **state)
{
    static const char *const bad[] = {
        "[forqd]\nworkers = 2\nmax_jobs_per_worker = lots\n",       /* wrong type: line 3 */
        "[forqd]\nworkers = 2\nwokers = 2\n",                       /* unknown key: line 3 */
        "[forqd]\n\nworkers = 5000\n",                              /* out of range: line 3 */
        "[forqd]\nworkers = 2\n[queue.q]\norder = sideways\n",     /* bad value: line 4 */
        "[forqd]\n[task.t]\nexec = /no/such/program --flag\n",      /* missing program */
    };
    static const char *const where[] = {":3:", ":3:", ":3:", ":4:", "/no/such/program"};
    char path[128], out[4096];

    (void)state;
    snprintf(path, sizeof(path), "/tmp/forq-test-jobctl-%d.conf", (int)getpid());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {"-c", path, "--check-config", NULL};
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(run_forqd(args, out, sizeof(out)), 2);
        assert_non_null(strstr(out, where[i]));
        if (strchr(where[i], ':') != NULL)
            assert_non_null(strstr(out, path));
    }
    /* A good file prints the effective configuration, flags winning. */
    {
        const char *args[] = {"-c", path, "--check-config", "--workers", "3", NULL};
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs("[forqd]\nworkers = 2\nretry_backoff_ms = 250\n[task.up]\nexec = tr a-z A-Z\n"
              "[queue.mail]\nlimit = 2\norder = lifo\n",
              f);
        fclose(f);
        assert_int_equal(run_forqd(args, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "workers = 3"));
        assert_non_null(strstr(out, "retry_backoff_ms = 250"));
        assert_non_null(strstr(out, "[task.up]"));
        assert_non_null(strstr(out, "[queue.mail]"));
    }
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest jobctl[] = {
        cmocka_unit_test(test_timeout_kills_the_job_not_the_pool),
        cmocka_unit_test(test_timeout_then_retries),
        cmocka_unit_test(test_retries_count_attempts),
        cmocka_unit_test(test_many_retries_at_once),
        cmocka_unit_test(test_worker_deaths_are_retried),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_limit_one_with_two_workers),
        cmocka_unit_test(test_lifo_order),
        cmocka_unit_test(test_pause_resume_and_join),
        cmocka_unit_test(test_join_waits_for_scheduled),
        cmocka_unit_test(test_unique_key),
        cmocka_unit_test(test_bad_queue_requests),
        cmocka_unit_test(test_hundred_kills_under_load),
    };
    const struct CMUnitTest restarts[] = {
        cmocka_unit_test(test_state_survives_restart),
    };
    const struct CMUnitTest hygiene[] = {
        cmocka_unit_test(test_recycling),
        cmocka_unit_test(test_memory_limit),
    };
    const struct CMUnitTest tasks[] = {
        cmocka_unit_test(test_exec_tasks),
        cmocka_unit_test(test_exec_killed_with_its_worker),
        cmocka_unit_test(test_exec_background_child),
        cmocka_unit_test(test_plugin_tasks),
    };
    const struct CMUnitTest refusals[] = {
        cmocka_unit_test(test_wrong_abi_plugin_refused),
        cmocka_unit_test(test_bad_config_names_file_and_line),
    };
    int r = 0;

    r |= cmocka_run_group_tests_name("jobctl", jobctl, group_setup, ctx_teardown);
    r |= cmocka_run_group_tests_name("tasks", tasks, tasks_setup, tasks_teardown);
    r |= cmocka_run_group_tests_name("refusals", refusals, NULL, NULL);
    r |= cmocka_run_group_tests_name("restarts", restarts, restart_setup, ctx_teardown);
    r |= cmocka_run_group_tests_name("hygiene", hygiene, hygiene_setup, ctx_teardown);
    return r;
}
