/*
 * test_workers.c — workers die, the pool goes on: SIGKILL a worker in the
 * middle of a job and one idle on its condition variable; the job fails with
 * worker_lost (never lost silently, never hanging), the worker is replaced,
 * and the next jobs succeed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define WORKERS 2

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", NULL};

    return harness_fixture_setup(state, args);
}

/* Poll STATS until both slots run live workers and none of them is `gone`. */
static void
wait_replaced(forq_client *c, pid_t gone, pid_t *now)
{
    struct timespec pause = {0, 5000000};

    for (int guard = 0; guard < 6000; guard++) {
        int n = harness_worker_pids(c, now, WORKERS), ok = n == WORKERS;

        for (int i = 0; ok && i < n; i++)
            ok = now[i] > 0 && now[i] != gone;
        if (ok)
            return;
        nanosleep(&pause, NULL);
    }
    fail_msg("worker %d was not replaced", (int)gone);
}

/* Every one of n upper jobs comes back right. */
static void
run_jobs(forq_client *c, int n)
{
    for (int i = 0; i < n; i++) {
        char in[32], want[32];
        forq_future *f;
        const void *data;
        size_t len;

        snprintf(in, sizeof(in), "job-%d", i);
        snprintf(want, sizeof(want), "JOB-%d", i);
        assert_int_equal(forq_submit(c, "upper", in, strlen(in), NULL, &f), 0);
        assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(data, want, len);
        forq_future_free(f);
    }
}

static uint64_t
total_restarts(forq_client *c)
{
    struct forq_stats *st;
    uint64_t r = 0;

    assert_int_equal(forq_stats(c, &st), 0);
    for (size_t i = 0; i < st->nworkers; i++)
        r += st->workers[i].restarts;
    forq_stats_free(st);
    return r;
}

static void
test_kill_busy_worker(void **state)
{
    struct harness_fixture *x = *state;
    uint64_t restarts = total_restarts(x->c);
    forq_future *f;
    pid_t pid, now[WORKERS];
    const void *data;
    size_t len;

    assert_int_equal(forq_submit(x->c, "sleep", "100000", 6, NULL, &f), 0);
    pid = harness_wait_running(x->c, forq_future_id(f));
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);

    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), FORQ_ERR_WORKER_LOST);
    assert_non_null(forq_future_error(f));
    assert_non_null(strstr(forq_future_error(f), "killed by signal 9"));
    forq_future_free(f);

    wait_replaced(x->c, pid, now);
    assert_int_equal(total_restarts(x->c), restarts + 1);
    run_jobs(x->c, 20);
}

static void
test_kill_idle_worker(void **state)
{
    struct harness_fixture *x = *state;
    pid_t pids[WORKERS], now[WORKERS];

    /* Both workers idle: each waits on its slot's condition variable. */
    assert_int_equal(harness_worker_pids(x->c, pids, WORKERS), WORKERS);
    assert_true(pids[0] > 0); /* kill(0, ...) would hit this test's own group */
    assert_int_equal(kill(pids[0], SIGKILL), 0);
    wait_replaced(x->c, pids[0], now);
    run_jobs(x->c, 20);
}

static void
test_kill_all_workers_at_once(void **state)
{
    struct harness_fixture *x = *state;
    pid_t pids[WORKERS], now[WORKERS];

    assert_int_equal(harness_worker_pids(x->c, pids, WORKERS), WORKERS);
    for (int i = 0; i < WORKERS; i++) {
        assert_true(pids[i] > 0);
        assert_int_equal(kill(pids[i], SIGKILL), 0);
    }
    for (int i = 0; i < WORKERS; i++)
        wait_replaced(x->c, pids[i], now);
    run_jobs(x->c, 20);
}

/* Jobs queued behind a worker that dies are not lost: they run on its replacement. */
static void
test_queued_jobs_survive_worker_death(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *busy[WORKERS], *queued[10];
    pid_t pid;

    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(forq_submit(x->c, "sleep", "100000", 6, NULL, &busy[i]), 0);
        assert_true(harness_wait_running(x->c, forq_future_id(busy[i])) > 0);
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(forq_submit(x->c, "echo", "q", 1, NULL, &queued[i]), 0);
    for (int i = 0; i < WORKERS; i++) {
        pid = harness_wait_running(x->c, forq_future_id(busy[i]));
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(forq_future_result(busy[i], HARNESS_GUARD_MS, NULL, NULL), FORQ_ERR_WORKER_LOST);
        forq_future_free(busy[i]);
    }
    for (int i = 0; i < 10; i++) {
        const void *data;
        size_t len;

        assert_int_equal(forq_future_result(queued[i], HARNESS_GUARD_MS, &data, &len), 0);
        assert_int_equal(len, 1);
        forq_future_free(queued[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_busy_worker),
        cmocka_unit_test(test_kill_idle_worker),
        cmocka_unit_test(test_kill_all_workers_at_once),
        cmocka_unit_test(test_queued_jobs_survive_worker_death),
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
