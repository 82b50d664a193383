/*
 * test_jobs.c — the job lifecycle (jobs.c) with a real event loop and a real
 * worker pool: submissions and their refusals, waits that finish or time out,
 * cancel with a parked wait, and the expiry of finished jobs — including the
 * case that once stopped expiry for good (a purge pass that hit its batch
 * limit replaced the periodic timer).
 *
 * test_turn() runs the loop one iteration at a time until a condition holds;
 * a guard of many iterations (the loop always has a timer pending, so an
 * iteration never blocks long) only keeps a broken build from hanging.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "forq.h"
#include "job.h"
#include "jobs.h"
#include "msg.h"

#define TEST_GUARD_TURNS 30000 /* about 30 s: the tick fires every ms */

struct test_fx {
    struct event_base *base;
    struct event *tick; /* keeps every loop turn short */
    struct jobs *jobs;
    uint64_t submitted_id; /* what hooks.submitted last reported */
    int submitted_code;
};

/* Without a store, jobs answers a submission before jobs_submit returns. */
static void
test_submitted_cb(void *arg, const struct jobs_origin *o, int code, uint64_t id, int dup,
                  const char *why)
{
    struct test_fx *fx = arg;

    (void)o;
    (void)why;
    fx->submitted_code = code;
    fx->submitted_id = id;
}

/* What a wait callback saw. */
struct test_waited {
    int calls;
    int code;
    int state;
    uint64_t id;
};

static void
test_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int
test_setup_cfg(void **state, const struct jobs_config *cfg_in)
{
    struct timeval ms = {0, 1000};
    struct test_fx *fx = calloc(1, sizeof(*fx));
    struct jobs_config cfg = *cfg_in;
    char why[256];

    *state = fx;
    alarm(120); /* a wedged loop ends the binary instead of the CI run */
    if (fx == NULL || (fx->base = event_base_new()) == NULL)
        return -1;
    fx->tick = event_new(fx->base, -1, EV_PERSIST, test_tick_cb, NULL);
    if (fx->tick == NULL || event_add(fx->tick, &ms) != 0)
        return -1;
    cfg.hooks.submitted = test_submitted_cb;
    cfg.hooks.arg = fx;
    return jobs_new(fx->base, &cfg, &fx->jobs, why, sizeof(why)) == 0 ? 0 : -1;
}

static int
test_setup(void **state)
{
    struct jobs_config cfg = {
        .workers = 1,
        .max_payload = 1024,
        .max_result = 1024,
        .max_queued = 3,
        .max_queues = 2,
        .result_ttl_ms = 3600 * 1000,
    };

    return test_setup_cfg(state, &cfg);
}

/* Finished jobs expire at once, five per purge pass. */
static int
test_setup_expiring(void **state)
{
    struct jobs_config cfg = {
        .workers = 2,
        .max_payload = 1024,
        .max_result = 1024,
        .max_queued = 1000,
        .max_queues = 4,
        .result_ttl_ms = 0,
        .purge_batch = 5,
    };

    return test_setup_cfg(state, &cfg);
}

static int
test_teardown(void **state)
{
    struct test_fx *fx = *state;

    if (fx != NULL) {
        jobs_free(fx->jobs);
        if (fx->tick != NULL)
            event_free(fx->tick);
        if (fx->base != NULL)
            event_base_free(fx->base);
        free(fx);
    }
    alarm(0);
    return 0;
}

static int
test_submit(struct test_fx *fx, const char *task, const char *payload, const char *queue,
            uint64_t *id)
{
    struct msg_submit m = {0};
    struct jobs_origin o = {1, 2, MSG_OP_SUBMIT, 0};
    char why[256] = "";
    int e;

    m.task = msg_str_c(task);
    m.payload = msg_str_c(payload);
    if (queue != NULL)
        m.queue = msg_str_c(queue);
    fx->submitted_id = 0;
    e = jobs_submit(fx->jobs, &m, &o, why, sizeof(why));
    if (e != 0)
        assert_true(why[0] != '\0'); /* every refusal says why */
    else
        assert_int_equal(fx->submitted_code, 0);
    *id = fx->submitted_id;
    return e;
}

static int
test_state(struct test_fx *fx, uint64_t id)
{
    const struct job *job = jobs_job(fx->jobs, id);

    return job != NULL ? job->state : -1;
}

/* Turn the loop until job id is final (want_gone: until it has expired). */
static void
test_turn_until(struct test_fx *fx, uint64_t id, int want_gone)
{
    for (int i = 0; i < TEST_GUARD_TURNS; i++) {
        int st = test_state(fx, id);

        if (want_gone ? st == -1 : forq_state_is_final(st))
            return;
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
    fail_msg("job %llu never %s", (unsigned long long)id, want_gone ? "expired" : "finished");
}

static void
test_waited_cb(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    struct test_waited *r = arg;

    r->calls++;
    r->code = code;
    r->state = job->state;
    r->id = w->job->id;
}

static void
test_jobs_run_and_result(void **state)
{
    struct test_fx *fx = *state;
    struct msg_job snap;
    const struct job *job;
    uint64_t id;

    assert_int_equal(test_submit(fx, "upper", "abc", NULL, &id), 0);
    assert_true(id > 0);
    test_turn_until(fx, id, 0);
    job = jobs_job(fx->jobs, id);
    assert_int_equal(job->state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(job->result_len, 3);
    assert_memory_equal(job->result, "ABC", 3);
    assert_int_equal(job->attempts, 1);
    assert_int_equal(job->payload_len, 0); /* dropped once finished */
    jobs_snapshot(fx->jobs, job, 1, &snap);
    assert_int_equal(snap.task.len, 5);
    assert_memory_equal(snap.task.ptr, "upper", 5);
    assert_int_equal(snap.queue.len, 7);
    assert_memory_equal(snap.queue.ptr, "default", 7);
    assert_int_equal(snap.result.len, 3);
    assert_memory_equal(snap.result.ptr, "ABC", 3);
    jobs_snapshot(fx->jobs, job, 0, &snap); /* STATUS: the size, not the bytes */
    assert_int_equal(snap.result_size, 3);
    assert_int_equal(snap.result.len, 0);
}

static void
test_jobs_refusals(void **state)
{
    struct test_fx *fx = *state;
    char big[1100];
    uint64_t busy, id[3], extra;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(test_submit(fx, "nope", "", NULL, &extra), FORQ_ERR_UNKNOWN_TASK);
    assert_int_equal(extra, 0);
    assert_int_equal(test_submit(fx, "echo", big, NULL, &extra), FORQ_ERR_TOO_BIG);

    /* The one worker is busy, so jobs stay queued: three fit, the fourth does not. */
    assert_int_equal(test_submit(fx, "sleep", "60000", "slow", &busy), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(test_submit(fx, "echo", "q", NULL, &id[i]), 0);
    assert_int_equal(test_submit(fx, "echo", "q", NULL, &extra), FORQ_ERR_QUEUE_FULL);
    /* Two queues exist ("slow", "default"): a third name is over max_queues. */
    assert_int_equal(test_submit(fx, "echo", "q", "third", &extra), FORQ_ERR_LIMIT);
}

static void
test_jobs_wait_timeout_and_cancel(void **state)
{
    struct test_fx *fx = *state;
    struct test_waited timed = {0}, parked = {0};
    struct jobs_waiter *w;
    const struct job *job;
    uint64_t busy, queued;
    char why[256];

    assert_int_equal(test_submit(fx, "sleep", "60000", NULL, &busy), 0);
    assert_int_equal(test_submit(fx, "echo", "later", NULL, &queued), 0);
    assert_int_equal(test_state(fx, queued), FORQ_STATE_QUEUED);

    /* A wait with a limit ends with FORQ_ERR_TIMEOUT; the job is unaffected. */
    assert_int_equal(jobs_wait(fx->jobs, queued, 1, test_waited_cb, &timed, 7, &w), 0);
    for (int i = 0; i < TEST_GUARD_TURNS && timed.calls == 0; i++)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(timed.calls, 1);
    assert_int_equal(timed.code, FORQ_ERR_TIMEOUT);
    assert_int_equal(timed.state, FORQ_STATE_QUEUED);

    /* Cancelling answers a parked wait at once, with the cancelled job. */
    assert_int_equal(jobs_wait(fx->jobs, queued, -1, test_waited_cb, &parked, 8, &w), 0);
    assert_int_equal(jobs_cancel(fx->jobs, queued, 0, &job, why, sizeof(why)), 0);
    assert_int_equal(parked.calls, 1);
    assert_int_equal(parked.code, 0);
    assert_int_equal(parked.state, FORQ_STATE_CANCELLED);
    assert_int_equal(parked.id, queued);
    assert_int_equal(job->state, FORQ_STATE_CANCELLED);
    assert_int_equal(job->err_code, FORQ_ERR_CANCELLED);
    /* Waiting on a finished job is the caller's to answer; a running one cannot be cancelled. */
    assert_int_equal(jobs_wait(fx->jobs, queued, -1, test_waited_cb, &parked, 9, &w),
                     FORQ_ERR_STATE);
    assert_int_equal(jobs_cancel(fx->jobs, busy, 0, &job, why, sizeof(why)), FORQ_ERR_STATE);
    assert_int_equal(jobs_cancel(fx->jobs, 999999, 0, &job, why, sizeof(why)), FORQ_ERR_NOT_FOUND);

    /* A withdrawn wait is never called. */
    assert_int_equal(jobs_wait(fx->jobs, busy, 1, test_waited_cb, &timed, 10, &w), 0);
    jobs_wait_cancel(w);
    for (int i = 0; i < 1000; i++)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(timed.calls, 1);
}

static void
test_unblocked_cb(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    int *calls = arg;

    (void)w;
    assert_null(job);
    assert_int_equal(code, 0);
    (*calls)++;
}

/*
 * A blocked SUBMIT keeps its place: room that opens goes to it even when a
 * new SUBMIT arrives before the loop has let it in; it is answered through
 * hooks.submitted with its own origin, and its owner hears once that it left.
 */
static void
test_jobs_blocked_submit_keeps_its_place(void **state)
{
    struct test_fx *fx = *state;
    struct msg_submit m = {0};
    struct jobs_origin o = {1, 42, MSG_OP_SUBMIT, 0};
    struct jobs_waiter *w;
    const struct job *job;
    uint64_t busy, id[3], extra;
    char why[256] = "";
    int left = 0;

    assert_int_equal(test_submit(fx, "sleep", "60000", "slow", &busy), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(test_submit(fx, "echo", "q", NULL, &id[i]), 0);
    m.task = msg_str_c("echo");
    m.payload = msg_str_c("blocked");
    m.block_ms = 600000;
    assert_int_equal(jobs_submit(fx->jobs, &m, &o, why, sizeof(why)), FORQ_ERR_QUEUE_FULL);
    fx->submitted_id = 0;
    assert_int_equal(jobs_submit_block(fx->jobs, &m, &o, test_unblocked_cb, &left, &w), 0);
    m.payload = msg_str_c("overwritten: jobs keeps its own copy");

    /* Room, but the blocked SUBMIT has not been let in yet: a newcomer waits behind it. */
    assert_int_equal(jobs_cancel(fx->jobs, id[0], 0, &job, why, sizeof(why)), 0);
    assert_int_equal(test_submit(fx, "echo", "q", NULL, &extra), FORQ_ERR_QUEUE_FULL);
    assert_int_equal(left, 0);
    for (int i = 0; i < TEST_GUARD_TURNS && fx->submitted_id == 0; i++)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(left, 1);
    assert_int_equal(fx->submitted_code, 0);
    assert_true(fx->submitted_id > id[2]);
    assert_non_null(job = jobs_job(fx->jobs, fx->submitted_id));
    assert_int_equal(job->payload_len, 7);
    assert_memory_equal(job->payload, "blocked", 7);

    /* A withdrawn blocked SUBMIT is never answered, and its room stays free. */
    assert_int_equal(jobs_submit_block(fx->jobs, &m, &o, test_unblocked_cb, &left, &w), 0);
    jobs_wait_cancel(w);
    fx->submitted_id = 0;
    assert_int_equal(jobs_cancel(fx->jobs, id[1], 0, &job, why, sizeof(why)), 0);
    for (int i = 0; i < 100; i++)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(left, 1);
    assert_int_equal(fx->submitted_id, 0);
    assert_int_equal(test_submit(fx, "echo", "q", NULL, &extra), 0);
}

/* Bug: a purge pass that hit its batch limit stopped all later expiry. */
static void
test_jobs_expiry_continues_after_a_full_batch(void **state)
{
    struct test_fx *fx = *state;
    uint64_t ids[23];

    /* 20 jobs finish together: the first pass can free only five of them. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(test_submit(fx, "echo", "e", NULL, &ids[i]), 0);
    for (int i = 0; i < 20; i++)
        test_turn_until(fx, ids[i], 1);
    /* Jobs finishing later must expire as well. */
    for (int i = 20; i < 23; i++)
        assert_int_equal(test_submit(fx, "echo", "late", NULL, &ids[i]), 0);
    for (int i = 20; i < 23; i++)
        test_turn_until(fx, ids[i], 1);
}

/*
 * A job handed to a worker that died before picking it up never ran: it goes
 * back to its queue with no attempt counted and no trace of that worker, then
 * runs on the replacement.
 */
static void
test_jobs_never_started_job_is_requeued(void **state)
{
    struct test_fx *fx = *state;
    struct msg_stats st = {0};
    const struct job *job;
    siginfo_t si;
    pid_t dead;
    uint64_t id;
    int i;

    assert_int_equal(jobs_stats(fx->jobs, &st), 0);
    dead = st.workers[0].pid;
    jobs_stats_free(&st);
    assert_true(dead > 0);
    assert_int_equal(kill(dead, SIGKILL), 0);
    /* Dead, but not reaped: the loop has not heard of it yet. */
    assert_int_equal(waitid(P_PID, (id_t)dead, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(test_submit(fx, "echo", "again", NULL, &id), 0);
    assert_int_equal(test_state(fx, id), FORQ_STATE_RUNNING); /* placed in the dead slot */

    for (i = 0; i < TEST_GUARD_TURNS && test_state(fx, id) == FORQ_STATE_RUNNING; i++)
        event_base_loop(fx->base, EVLOOP_ONCE);
    job = jobs_job(fx->jobs, id);
    assert_int_equal(job->state, FORQ_STATE_QUEUED);
    assert_int_equal(job->attempts, 0);
    assert_int_equal(job->started_us, 0);
    assert_int_equal(job->worker_pid, 0);

    test_turn_until(fx, id, 0);
    job = jobs_job(fx->jobs, id);
    assert_int_equal(job->state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(job->attempts, 1);
    assert_true(job->worker_pid > 0 && job->worker_pid != dead);
}

static void
test_jobs_stats(void **state)
{
    struct test_fx *fx = *state;
    struct msg_stats st = {0};
    uint64_t id;

    assert_int_equal(test_submit(fx, "fail", "x", NULL, &id), 0);
    test_turn_until(fx, id, 0);
    assert_int_equal(jobs_stats(fx->jobs, &st), 0);
    assert_int_equal(st.submitted, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.nqueues, 1);
    assert_true(msg_str_eq(st.queues[0].name, "default"));
    assert_int_equal(st.queues[0].failed, 1);
    assert_int_equal(st.nworkers, 1);
    assert_true(st.workers[0].pid > 0);
    jobs_stats_free(&st);
    assert_null(st.queues);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_run_and_result, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_refusals, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_blocked_submit_keeps_its_place, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_wait_timeout_and_cancel, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_expiry_continues_after_a_full_batch,
                                        test_setup_expiring, test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_never_started_job_is_requeued, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_stats, test_setup, test_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
