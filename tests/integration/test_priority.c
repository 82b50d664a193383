/*
 * test_priority.c — jobs leave their queues by priority (lowest first), then
 * arrival, across queues, with one worker so the order is observable: each
 * job starts only after the previous one finished, so start times order them.
 * The jobs are queued behind a sleeping job that the test then kills, so
 * nothing depends on how fast the machine is.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=1", NULL};

    return harness_fixture_setup(state, args);
}

static forq_future *
submit(forq_client *c, const char *task, const char *payload, const char *queue, int32_t prio)
{
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    forq_future *f = NULL;

    o.queue = queue;
    o.priority = prio;
    assert_int_equal(forq_submit(c, task, payload, strlen(payload), &o, &f), 0);
    return f;
}

/*
 * Occupy the only worker until the test has queued everything: a long sleep
 * that release_worker ends with SIGKILL, so the order never depends on timing.
 */
static forq_future *
occupy_worker(struct harness_fixture *x, pid_t *pid)
{
    forq_future *f = submit(x->c, "sleep", "100000", NULL, 0);

    assert_true((*pid = harness_wait_running(x->c, forq_future_id(f))) > 0);
    return f;
}

static void
release_worker(forq_future *busy, pid_t pid)
{
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(forq_future_result(busy, HARNESS_GUARD_MS, NULL, NULL), FORQ_ERR_WORKER_LOST);
    forq_future_free(busy);
}

static uint64_t
started_us(forq_client *c, forq_future *f)
{
    struct forq_job_info info;
    uint64_t t;

    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, NULL, NULL), 0);
    assert_int_equal(forq_status(c, forq_future_id(f), &info), 0);
    assert_int_equal(info.state, FORQ_STATE_SUCCEEDED);
    t = info.started_us;
    forq_job_info_clear(&info);
    assert_true(t > 0);
    return t;
}

/* Jobs must have started in exactly this order. */
static void
expect_order(struct harness_fixture *x, forq_future **order, int n)
{
    uint64_t prev = 0;

    for (int i = 0; i < n; i++) {
        uint64_t t = started_us(x->c, order[i]);

        assert_true(t > prev);
        prev = t;
    }
    for (int i = 0; i < n; i++)
        forq_future_free(order[i]);
}

/* The case: priorities 20, 10, 30 queued behind a busy worker run 10, 20, 30. */
static void
test_priority_order_one_worker(void **state)
{
    struct harness_fixture *x = *state;
    pid_t pid;
    forq_future *busy = occupy_worker(x, &pid), *p20, *p10, *p30, *order[3];

    p20 = submit(x->c, "sleep", "20", NULL, 20);
    p10 = submit(x->c, "sleep", "20", NULL, 10);
    p30 = submit(x->c, "sleep", "20", NULL, 30);
    order[0] = p10;
    order[1] = p20;
    order[2] = p30;
    release_worker(busy, pid);
    expect_order(x, order, 3);
}

/* Equal priorities run in arrival order; negative priorities go first. */
static void
test_fifo_among_equals(void **state)
{
    struct harness_fixture *x = *state;
    pid_t pid;
    forq_future *busy = occupy_worker(x, &pid), *order[5];
    forq_future *a = submit(x->c, "echo", "a", NULL, 5);
    forq_future *b = submit(x->c, "echo", "b", NULL, 5);
    forq_future *urgent = submit(x->c, "echo", "u", NULL, -7);
    forq_future *c = submit(x->c, "echo", "c", NULL, 5);
    forq_future *late = submit(x->c, "echo", "l", NULL, 6);

    order[0] = urgent;
    order[1] = a;
    order[2] = b;
    order[3] = c;
    order[4] = late;
    release_worker(busy, pid);
    expect_order(x, order, 5);
}

/* Across queues the order is the same key: (priority, arrival). */
static void
test_order_across_queues(void **state)
{
    struct harness_fixture *x = *state;
    pid_t pid;
    forq_future *busy = occupy_worker(x, &pid), *order[4];
    forq_future *a5 = submit(x->c, "echo", "1", "alpha", 5);
    forq_future *b1 = submit(x->c, "echo", "2", "beta", 1);
    forq_future *a1 = submit(x->c, "echo", "3", "alpha", 1);
    forq_future *g3 = submit(x->c, "echo", "4", "gamma", 3);

    order[0] = b1;
    order[1] = a1;
    order[2] = g3;
    order[3] = a5;
    release_worker(busy, pid);
    expect_order(x, order, 4);
}

/* Cancelling from the middle of a queue leaves the rest in order. */
static void
test_cancel_from_middle(void **state)
{
    struct harness_fixture *x = *state;
    pid_t pid;
    forq_future *busy = occupy_worker(x, &pid), *order[3], *f[4];
    const void *data;
    size_t len;

    for (int i = 0; i < 4; i++)
        f[i] = submit(x->c, "echo", "x", NULL, i);
    assert_int_equal(forq_future_cancel(f[1]), 0);
    assert_int_equal(forq_future_result(f[1], HARNESS_GUARD_MS, &data, &len), FORQ_ERR_CANCELLED);
    order[0] = f[0];
    order[1] = f[2];
    order[2] = f[3];
    release_worker(busy, pid);
    expect_order(x, order, 3);
    forq_future_free(f[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_order_one_worker),
        cmocka_unit_test(test_fifo_among_equals),
        cmocka_unit_test(test_order_across_queues),
        cmocka_unit_test(test_cancel_from_middle),
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
