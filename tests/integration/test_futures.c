/*
 * test_futures.c — libforq's futures API against a real forqd: result with
 * timeouts, done / running / cancelled / cancel (also racing with start),
 * done callbacks (already finished, pending, freed early, client closed),
 * futures rebuilt from an id by a second client, forq_wait in its three
 * modes, forq_as_completed and forq_wait over 1,000 futures, forq_map with a
 * bounded window, a wait cut by a killed daemon, and connect options.
 *
 * forqd runs with 2 workers. Jobs that must stay unfinished are `sleep`
 * jobs long enough never to end during the test; nothing here asserts speed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define MANY       1000
#define LONG_SLEEP "600000" /* ms: never ends while a test looks */

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", NULL};

    return harness_fixture_setup(state, args);
}

static forq_future *
submit(forq_client *c, const char *task, const char *payload)
{
    forq_future *f = NULL;
    int e = forq_submit(c, task, payload, strlen(payload), NULL, &f);

    if (e != 0)
        fail_msg("submit %s %s: %s", task, payload, forq_errmsg());
    return f;
}

static void
expect_result(forq_future *f, const char *want)
{
    const void *data;
    size_t len;
    int e = forq_future_result(f, HARNESS_GUARD_MS, &data, &len);

    if (e != 0)
        fail_msg("job %llu: %s: %s", (unsigned long long)forq_future_id(f), forq_errname(e),
                 forq_errmsg());
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
}

/* Occupy both workers with sleeps that outlast the test; returns them running. */
static void
fill_workers(forq_client *c, forq_future *busy[2])
{
    for (int i = 0; i < 2; i++) {
        busy[i] = submit(c, "sleep", LONG_SLEEP);
        assert_true(harness_wait_running(c, forq_future_id(busy[i])) > 0);
    }
}

/* Restart the fixture's daemon so that long sleeps do not hold the workers. */
static void
restart_daemon(struct harness_fixture *x)
{
    static const char *const args[] = {"--workers=2", NULL};

    forq_client_free(x->c);
    assert_int_equal(harness_stop(&x->h), 0);
    assert_int_equal(harness_start(&x->h, args), 0);
    assert_int_equal(forq_connect(x->h.addr, &x->c), 0);
}

/* ------------------------------------------------------------------ single futures */

static void
test_result_timeout_then_result(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f = submit(x->c, "sleep", "300");
    const void *data = "x";
    size_t len = 9;

    assert_int_equal(forq_future_result(f, 0, &data, &len), FORQ_ERR_TIMEOUT);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(forq_future_result(f, 1, NULL, NULL), FORQ_ERR_TIMEOUT);
    assert_int_equal(forq_future_done(f), 0);
    assert_null(forq_future_error(f));
    /* The timeout left the job running: it still finishes. */
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(forq_future_done(f), 1);
    assert_int_equal(forq_future_running(f), 0);
    assert_int_equal(forq_future_cancelled(f), 0);
    forq_future_free(f);
}

static void
test_failed_job_outcome(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f = submit(x->c, "fail", "boom");

    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, NULL, NULL), FORQ_ERR_TASK_FAILED);
    assert_non_null(forq_future_error(f));
    assert_non_null(strstr(forq_errmsg(), forq_future_error(f)));
    assert_int_equal(forq_future_done(f), 1);
    assert_int_equal(forq_future_cancelled(f), 0);
    assert_int_equal(forq_future_cancel(f), FORQ_ERR_STATE);
    forq_future_free(f);
}

static void
test_running_queued_cancelled(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *busy[2], *q;

    fill_workers(x->c, busy);
    assert_int_equal(forq_future_running(busy[0]), 1);
    assert_int_equal(forq_future_done(busy[0]), 0);
    q = submit(x->c, "upper", "queued");
    assert_int_equal(forq_future_running(q), 0);
    assert_int_equal(forq_future_cancelled(q), 0);
    assert_int_equal(forq_future_cancel(q), 0);
    assert_int_equal(forq_future_cancelled(q), 1);
    assert_int_equal(forq_future_cancel(q), 0); /* again: still cancelled */
    assert_int_equal(forq_future_result(q, 0, NULL, NULL), FORQ_ERR_CANCELLED);
    assert_int_equal(forq_future_cancel(busy[1]), FORQ_ERR_STATE); /* running */
    forq_future_free(q);
    forq_future_free(busy[0]);
    forq_future_free(busy[1]);
    restart_daemon(x);
}

/*
 * Cancel right after submit, while a worker may be taking the job: every
 * job ends one way, and cancel's answer agrees with it.
 */
static void
test_cancel_racing_with_start(void **state)
{
    struct harness_fixture *x = *state;
    int cancelled = 0, ran = 0;

    for (int i = 0; i < 200; i++) {
        forq_future *f = submit(x->c, "upper", "race");
        int c = forq_future_cancel(f), r = forq_future_result(f, HARNESS_GUARD_MS, NULL, NULL);

        if (c == 0) {
            assert_int_equal(r, FORQ_ERR_CANCELLED);
            assert_int_equal(forq_future_cancelled(f), 1);
            cancelled++;
        } else {
            assert_int_equal(c, FORQ_ERR_STATE);
            assert_int_equal(r, 0);
            assert_int_equal(forq_future_cancelled(f), 0);
            ran++;
        }
        forq_future_free(f);
    }
    assert_int_equal(cancelled + ran, 200);
}

static void
test_future_from_id_second_client(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f = submit(x->c, "upper", "shared"), *g = NULL;
    forq_client *c2 = NULL;

    assert_int_equal(forq_connect(x->h.unix_addr, &c2), 0);
    assert_int_equal(forq_future_for_id(c2, forq_future_id(f), &g), 0);
    assert_true(forq_future_id(g) == forq_future_id(f));
    expect_result(g, "SHARED");
    expect_result(f, "SHARED");
    forq_future_free(g);
    /* An id that never existed fails on first use, not before. */
    assert_int_equal(forq_future_from_id(c2, 1ull << 50, &g), 0);
    assert_int_equal(forq_future_result(g, 0, NULL, NULL), FORQ_ERR_NOT_FOUND);
    assert_int_equal(forq_future_done(g), FORQ_ERR_NOT_FOUND);
    forq_future_free(g);
    forq_client_free(c2);
    forq_future_free(f);
}

/* ------------------------------------------------------------------ callbacks */

struct cb_log {
    atomic_int calls;
    atomic_int done_at_call; /* forq_future_done() said 1 inside the callback */
    atomic_int ok_results;   /* the result was the expected bytes */
    pthread_t thread;        /* the thread of the last call */
    const char *want;
};

static void
cb_record(forq_future *f, void *arg)
{
    struct cb_log *log = arg;
    const void *data;
    size_t len;

    log->thread = pthread_self();
    if (forq_future_done(f) == 1)
        atomic_fetch_add(&log->done_at_call, 1);
    if (log->want != NULL && forq_future_result(f, 0, &data, &len) == 0 &&
        len == strlen(log->want) && memcmp(data, log->want, len) == 0)
        atomic_fetch_add(&log->ok_results, 1);
    atomic_fetch_add(&log->calls, 1);
}

static void
test_callback_on_finished_future_runs_at_once(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f = submit(x->c, "upper", "now");
    struct cb_log log = {.want = "NOW"};

    expect_result(f, "NOW");
    assert_int_equal(forq_future_add_done_callback(f, cb_record, &log), 0);
    assert_int_equal(atomic_load(&log.calls), 1); /* before add returned */
    assert_true(pthread_equal(log.thread, pthread_self()));
    assert_int_equal(atomic_load(&log.ok_results), 1);
    assert_int_equal(forq_future_add_done_callback(f, NULL, NULL), FORQ_ERR_INVALID);
    forq_future_free(f);
}

static void
wait_calls(struct cb_log *log, int n)
{
    for (int i = 0; i < HARNESS_GUARD_MS / 10 && atomic_load(&log->calls) < n; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&log->calls), n);
}

static void
test_callbacks_on_pending_futures(void **state)
{
    struct harness_fixture *x = *state;
    struct cb_log log = {.want = "LATER"};
    forq_future *f[50];

    for (int i = 0; i < 50; i++) {
        f[i] = submit(x->c, "upper", "later");
        assert_int_equal(forq_future_add_done_callback(f[i], cb_record, &log), 0);
        if (i % 2 == 0) /* freed early: the callback still runs, with a live future */
            forq_future_free(f[i]);
    }
    wait_calls(&log, 50);
    assert_int_equal(atomic_load(&log.done_at_call), 50);
    assert_int_equal(atomic_load(&log.ok_results), 50);
    for (int i = 1; i < 50; i += 2)
        forq_future_free(f[i]);
}

/* Two callbacks on one future, one of which frees it. */
static void
cb_free(forq_future *f, void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    forq_future_free(f);
}

static void
test_callback_may_free_its_future(void **state)
{
    struct harness_fixture *x = *state;
    struct cb_log log = {.want = "TWO"};
    forq_future *f = submit(x->c, "upper", "two");
    atomic_int freed = 0;

    assert_int_equal(forq_future_add_done_callback(f, cb_record, &log), 0);
    assert_int_equal(forq_future_add_done_callback(f, cb_free, &freed), 0);
    wait_calls(&log, 1);
    for (int i = 0; i < HARNESS_GUARD_MS / 10 && atomic_load(&freed) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&freed), 1);
}

/* A client closed with callbacks pending runs each once, its future not done. */
static void
test_callbacks_run_once_when_client_closes(void **state)
{
    struct harness_fixture *x = *state;
    struct cb_log log = {0};
    forq_client *c2 = NULL;
    forq_future *f[3];

    assert_int_equal(forq_connect(x->h.addr, &c2), 0);
    for (int i = 0; i < 3; i++) {
        f[i] = submit(c2, "sleep", LONG_SLEEP);
        assert_int_equal(forq_future_add_done_callback(f[i], cb_record, &log), 0);
    }
    forq_client_close(c2);
    assert_int_equal(atomic_load(&log.calls), 3); /* close waited for them */
    assert_int_equal(atomic_load(&log.done_at_call), 0);
    assert_int_equal(forq_future_add_done_callback(f[0], cb_record, &log), FORQ_ERR_INVALID);
    for (int i = 0; i < 3; i++)
        forq_future_free(f[i]);
    forq_client_free(c2);
    restart_daemon(x);
}

/* ------------------------------------------------------------------ many futures */

static void
test_wait_all_over_1000(void **state)
{
    struct harness_fixture *x = *state;
    static forq_future *f[MANY];
    static uint8_t done[MANY];
    char in[32], want[32];

    for (int i = 0; i < MANY; i++) {
        snprintf(in, sizeof(in), "w%d", i);
        f[i] = submit(x->c, "upper", in);
    }
    assert_int_equal(forq_wait(f, MANY, FORQ_ALL_COMPLETED, HARNESS_GUARD_MS, done), 0);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(done[i], 1);
        snprintf(want, sizeof(want), "W%d", i);
        expect_result(f[i], want); /* cached: no request */
        forq_future_free(f[i]);
    }
    assert_int_equal(forq_wait(NULL, 0, FORQ_ALL_COMPLETED, 0, NULL), 0);
    assert_int_equal(forq_wait(f, 1, 17, 0, NULL), FORQ_ERR_INVALID);
}

static void
test_wait_first_completed_and_timeout(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[3];
    uint8_t done[3];

    f[0] = submit(x->c, "sleep", LONG_SLEEP);
    f[1] = submit(x->c, "sleep", LONG_SLEEP);
    assert_true(harness_wait_running(x->c, forq_future_id(f[1])) > 0);
    /* Nothing finishes: the time runs out, nothing is done, the jobs go on. */
    assert_int_equal(forq_wait(f, 2, FORQ_ALL_COMPLETED, 200, done), FORQ_ERR_TIMEOUT);
    assert_int_equal(done[0] + done[1], 0);
    assert_int_equal(forq_wait(f, 2, FORQ_FIRST_COMPLETED, 0, done), FORQ_ERR_TIMEOUT);
    assert_int_equal(forq_future_running(f[0]), 1);
    f[2] = submit(x->c, "upper", "first"); /* queued behind the sleeps */
    assert_int_equal(forq_future_cancel(f[2]), 0);
    assert_int_equal(forq_wait(f, 3, FORQ_FIRST_COMPLETED, HARNESS_GUARD_MS, done), 0);
    assert_int_equal(done[0], 0);
    assert_int_equal(done[1], 0);
    assert_int_equal(done[2], 1);
    /* A cancelled future is not an exception: FIRST_EXCEPTION waits on. */
    assert_int_equal(forq_wait(f, 3, FORQ_FIRST_EXCEPTION, 100, done), FORQ_ERR_TIMEOUT);
    for (int i = 0; i < 3; i++)
        forq_future_free(f[i]);
    restart_daemon(x);
}

static void
test_wait_first_exception(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[3];
    uint8_t done[3];

    f[0] = submit(x->c, "sleep", LONG_SLEEP);
    f[1] = submit(x->c, "fail", "bad");
    f[2] = submit(x->c, "upper", "fine");
    assert_int_equal(forq_wait(f, 3, FORQ_FIRST_EXCEPTION, HARNESS_GUARD_MS, done), 0);
    assert_int_equal(done[0], 0);
    assert_int_equal(done[1], 1);
    assert_int_equal(forq_future_result(f[1], 0, NULL, NULL), FORQ_ERR_TASK_FAILED);
    for (int i = 0; i < 3; i++)
        forq_future_free(f[i]);
    restart_daemon(x);
}

/* When the condition holds, done[] still marks every future known to be done. */
static void
test_wait_reports_every_done_future(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[3];
    uint8_t done[3];

    f[0] = submit(x->c, "upper", "a");
    f[1] = submit(x->c, "upper", "b");
    f[2] = submit(x->c, "fail", "c");
    for (int i = 0; i < 3; i++)
        (void)forq_future_result(f[i], HARNESS_GUARD_MS, NULL, NULL);
    assert_int_equal(forq_wait(f, 3, FORQ_FIRST_COMPLETED, 0, done), 0);
    assert_int_equal(done[0] + done[1] + done[2], 3);
    assert_int_equal(forq_wait(f, 3, FORQ_FIRST_EXCEPTION, 0, done), 0);
    assert_int_equal(done[0] + done[1] + done[2], 3);
    for (int i = 0; i < 3; i++)
        forq_future_free(f[i]);
}

/*
 * A poll (timeout 0) on jobs whose results are only in the store (the result
 * cache holds none): the server reads them back before it answers timeout,
 * so every finished one is reported.
 */
static void
test_wait_poll_sees_results_only_on_disk(void **state)
{
    static const char *const args[] = {"--workers=2", "--result-cache=0", NULL};
    struct harness h;
    forq_client *c = NULL;
    forq_future *f[4], *g[5];
    uint8_t done[5];

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    for (int i = 0; i < 4; i++) {
        f[i] = submit(c, "upper", "disk");
        (void)forq_future_result(f[i], HARNESS_GUARD_MS, NULL, NULL);
        assert_int_equal(forq_future_for_id(c, forq_future_id(f[i]), &g[i]), 0);
    }
    g[4] = submit(c, "sleep", LONG_SLEEP);
    assert_int_equal(forq_wait(g, 5, FORQ_ALL_COMPLETED, 0, done), FORQ_ERR_TIMEOUT);
    for (int i = 0; i < 4; i++)
        assert_int_equal(done[i], 1);
    assert_int_equal(done[4], 0);
    expect_result(g[3], "DISK");
    for (int i = 0; i < 4; i++) {
        forq_future_free(f[i]);
        forq_future_free(g[i]);
    }
    forq_future_free(g[4]);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

static void
test_as_completed_over_1000(void **state)
{
    struct harness_fixture *x = *state;
    static forq_future *f[MANY + 1];
    static uint8_t seen[MANY + 1];
    forq_as_completed *it = NULL;
    forq_future *g;
    char in[32];
    int n = 0, r;

    for (int i = 0; i < MANY; i++) {
        snprintf(in, sizeof(in), "a%d", i);
        f[i] = submit(x->c, i % 100 == 7 ? "fail" : "upper", in);
    }
    /* An id the server never handed out is reported too (as failed). */
    assert_int_equal(forq_future_from_id(x->c, 1ull << 50, &f[MANY]), 0);
    assert_int_equal(forq_as_completed_new(f, MANY + 1, HARNESS_GUARD_MS, &it), 0);
    while ((r = forq_as_completed_next(it, &g)) == 1) {
        size_t i;

        for (i = 0; i <= MANY && f[i] != g; i++)
            ;
        assert_true(i <= MANY);
        i = i > MANY ? 0 : i; /* (for the compiler: the assert stopped that) */
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        n++;
        if (i < MANY)
            assert_int_equal(forq_future_done(g), 1);
    }
    assert_int_equal(r, 0);
    assert_null(g);
    assert_int_equal(n, MANY + 1);
    assert_int_equal(forq_as_completed_next(it, &g), 0);
    forq_as_completed_free(it);
    assert_int_equal(forq_future_result(f[MANY], 0, NULL, NULL), FORQ_ERR_NOT_FOUND);
    for (int i = 0; i <= MANY; i++)
        forq_future_free(f[i]);
}

static void
test_as_completed_timeout(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *f[2];
    forq_as_completed *it = NULL;
    forq_future *g;

    f[0] = submit(x->c, "upper", "quick");
    f[1] = submit(x->c, "sleep", LONG_SLEEP);
    expect_result(f[0], "QUICK");
    assert_int_equal(forq_as_completed_new(f, 2, 300, &it), 0);
    assert_int_equal(forq_as_completed_next(it, &g), 1);
    assert_ptr_equal(g, f[0]);
    assert_int_equal(forq_as_completed_next(it, &g), FORQ_ERR_TIMEOUT);
    assert_null(g);
    forq_future_free(f[1]);
    forq_as_completed_free(it);
    /* Bad arguments are refused, nothing is allocated. */
    it = (forq_as_completed *)f;
    assert_int_equal(forq_as_completed_new(NULL, 2, 0, &it), FORQ_ERR_INVALID);
    assert_null(it);
    f[1] = NULL;
    assert_int_equal(forq_as_completed_new(f, 2, 0, &it), FORQ_ERR_INVALID);
    assert_null(it);
    assert_int_equal(forq_as_completed_next(NULL, &g), FORQ_ERR_INVALID);
    assert_int_equal(forq_as_completed_new(f, 0, 0, &it), 0); /* empty: over at once */
    assert_int_equal(forq_as_completed_next(it, &g), 0);
    forq_as_completed_free(it);
    forq_future_free(f[0]);
    restart_daemon(x);
}

/* ------------------------------------------------------------------ map */

struct map_ctx {
    size_t n;
    size_t stop_at;  /* done returns -1 at this input; SIZE_MAX: never */
    size_t window;   /* max_inflight given */
    size_t pulled;   /* inputs handed to the map */
    size_t pushed;   /* outcomes handed back */
    size_t max_gap;  /* most pulled - pushed seen */
    int bad;         /* outcomes out of order or wrong */
    int failures;    /* outcomes with a failure code */
    char buf[32];
};

static int
map_next(void *arg, size_t i, const void **payload, size_t *len)
{
    struct map_ctx *m = arg;

    if (i != m->pulled)
        m->bad++;
    if (i >= m->n)
        return 0;
    snprintf(m->buf, sizeof(m->buf), "m%zu", i);
    *payload = m->buf;
    *len = strlen(m->buf);
    m->pulled++;
    if (m->pulled - m->pushed > m->max_gap)
        m->max_gap = m->pulled - m->pushed;
    return 1;
}

/* Gives two inputs, then fails (the code is arbitrary, to be seen again). */
static int
map_next_fails(void *arg, size_t i, const void **payload, size_t *len)
{
    return i < 2 ? map_next(arg, i, payload, len) : FORQ_ERR_LIMIT;
}

static int
map_done(void *arg, size_t i, int code, const void *result, size_t len, const char *errmsg)
{
    struct map_ctx *m = arg;
    char want[32];

    snprintf(want, sizeof(want), "M%zu", i);
    if (i != m->pushed)
        m->bad++;
    if (code == 0 && (len != strlen(want) || memcmp(result, want, len) != 0))
        m->bad++;
    if (code != 0 && errmsg == NULL)
        m->bad++;
    m->failures += code != 0;
    m->pushed++;
    return i == m->stop_at ? -1 : 0;
}

static void
test_map_in_order_with_a_bounded_window(void **state)
{
    struct harness_fixture *x = *state;
    struct map_ctx m = {.n = MANY, .stop_at = SIZE_MAX, .window = 16};

    assert_int_equal(forq_map(x->c, "upper", NULL, m.window, HARNESS_GUARD_MS, map_next, map_done,
                              &m),
                     0);
    assert_int_equal(m.bad, 0);
    assert_int_equal(m.failures, 0);
    assert_int_equal(m.pushed, MANY);
    assert_true(m.max_gap <= m.window);
    assert_true(m.max_gap > 1); /* it did pipeline */
}

/* forq_map's input with per-input tasks: sleep payloads (ms), results are the same bytes. */
struct map_sleep {
    const char *const *ms;
    size_t n, pushed;
    int bad;
};

static int
map_sleep_next(void *arg, size_t i, const void **payload, size_t *len)
{
    struct map_sleep *m = arg;

    if (i >= m->n)
        return 0;
    *payload = m->ms[i];
    *len = strlen(m->ms[i]);
    return 1;
}

static int
map_sleep_done(void *arg, size_t i, int code, const void *result, size_t len, const char *errmsg)
{
    struct map_sleep *m = arg;

    (void)result;
    (void)len;
    (void)errmsg;
    m->bad += i != m->pushed || code != 0;
    m->pushed++;
    return 0;
}

/*
 * The window drains completely (a window of 1; a first job that finishes
 * last): the map must top it up again, not stop.
 */
static void
test_map_window_that_drains(void **state)
{
    static const char *const ms[] = {"300", "1", "1", "1", "1"};
    struct harness_fixture *x = *state;
    struct map_ctx m = {.n = 5, .stop_at = SIZE_MAX, .window = 1};
    struct map_sleep sl = {ms, 5, 0, 0};

    assert_int_equal(forq_map(x->c, "upper", NULL, 1, HARNESS_GUARD_MS, map_next, map_done, &m),
                     0);
    assert_int_equal(m.pushed, 5);
    assert_int_equal(m.bad, 0);
    assert_int_equal(m.max_gap, 1);
    for (size_t w = 2; w <= 5; w++) {
        sl.pushed = 0;
        assert_int_equal(forq_map(x->c, "sleep", NULL, w, HARNESS_GUARD_MS, map_sleep_next,
                                  map_sleep_done, &sl),
                         0);
        assert_int_equal(sl.pushed, 5);
        assert_int_equal(sl.bad, 0);
    }
}

static void
test_map_failures_and_stops(void **state)
{
    struct harness_fixture *x = *state;
    struct map_ctx m = {.n = 40, .stop_at = SIZE_MAX};

    /* Job failures are outcomes, in order: the map goes on. */
    assert_int_equal(forq_map(x->c, "fail", NULL, 8, HARNESS_GUARD_MS, map_next, map_done, &m), 0);
    assert_int_equal(m.failures, 40);
    assert_int_equal(m.pushed, 40);
    /* A refused submission stops it with the server's code. */
    memset(&m, 0, sizeof(m));
    m.n = 10;
    m.stop_at = SIZE_MAX;
    assert_int_equal(forq_map(x->c, "no-such-task", NULL, 4, HARNESS_GUARD_MS, map_next,
                              map_done, &m),
                     FORQ_ERR_UNKNOWN_TASK);
    assert_int_equal(m.pushed, 0);
    /* The consumer stops it. */
    memset(&m, 0, sizeof(m));
    m.n = 100;
    m.stop_at = 5;
    assert_int_equal(forq_map(x->c, "upper", NULL, 4, HARNESS_GUARD_MS, map_next, map_done, &m),
                     -1);
    assert_int_equal(m.pushed, 6);
    assert_int_equal(m.bad, 0);
    /* The input stops it with its own code. */
    memset(&m, 0, sizeof(m));
    m.n = 3;
    m.stop_at = SIZE_MAX;
    assert_int_equal(forq_map(x->c, "upper", NULL, 4, HARNESS_GUARD_MS, map_next_fails, map_done,
                              &m),
                     FORQ_ERR_LIMIT);
    /* Bad arguments. */
    assert_int_equal(forq_map(x->c, NULL, NULL, 4, 0, map_next, map_done, &m), FORQ_ERR_INVALID);
    assert_int_equal(forq_ping(x->c), 0); /* the connection is fine */
}

/* ------------------------------------------------------------------ disconnects */

struct wait_thread {
    forq_future **f;
    size_t n;
    int rc;
};

static void *
wait_thread_main(void *arg)
{
    struct wait_thread *w = arg;

    w->rc = forq_wait(w->f, w->n, FORQ_ALL_COMPLETED, -1, NULL);
    return NULL;
}

/*
 * forqd is killed while a thread waits on jobs: the wait fails at once with
 * `disconnected`. The next wait reconnects (through the unix socket, whose
 * path survives the restart) and sees the recovered jobs finish.
 */
static void
test_disconnect_in_the_middle_of_a_wait(void **state)
{
    struct harness_fixture *x = *state;
    forq_client *c = NULL;
    forq_future *f[2];
    struct wait_thread w;
    pthread_t th;

    assert_int_equal(forq_connect(x->h.unix_addr, &c), 0);
    f[0] = submit(c, "sleep", "200");
    f[1] = submit(c, "sleep", LONG_SLEEP);
    assert_true(harness_wait_running(c, forq_future_id(f[1])) > 0);
    w = (struct wait_thread){f, 2, 1};
    assert_int_equal(pthread_create(&th, NULL, wait_thread_main, &w), 0);
    /* Let the WATCH reach the server, then kill it. */
    for (int i = 0; i < 100 && forq_future_done(f[0]) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    assert_true(harness_kill(&x->h, SIGKILL) >= 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, FORQ_ERR_DISCONNECTED);
    /* Nobody listens: the next wait tries to reconnect, and says so. */
    assert_int_equal(forq_wait(&f[1], 1, FORQ_ALL_COMPLETED, 0, NULL), FORQ_ERR_DISCONNECTED);

    /* Back up (same socket path): the next wait reconnects and watches again. */
    assert_int_equal(harness_restart(&x->h, NULL), 0);
    assert_int_equal(forq_wait(f, 2, FORQ_FIRST_COMPLETED, HARNESS_GUARD_MS, NULL), 0);
    assert_int_equal(forq_wait(&f[1], 1, FORQ_ALL_COMPLETED, 100, NULL), FORQ_ERR_TIMEOUT);
    assert_int_equal(forq_future_result(f[0], HARNESS_GUARD_MS, NULL, NULL), 0);
    assert_true(harness_wait_running(c, forq_future_id(f[1])) > 0); /* recovered, run again */
    forq_future_free(f[0]);
    forq_future_free(f[1]);
    forq_client_free(c);
    forq_client_free(x->c);
    assert_int_equal(forq_connect(x->h.addr, &x->c), 0);
    restart_daemon(x);
}

/* ------------------------------------------------------------------ connect */

static void
test_connect_opts(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_connect_opts o = FORQ_CONNECT_OPTS_INIT;
    char big[300];
    forq_client *c = NULL;

    o.token = "s3cret"; /* forqd without a token accepts and ignores it */
    o.connect_timeout_ms = 5000;
    assert_int_equal(forq_connect_opts(x->h.addr, &o, &c), 0);
    assert_int_equal(forq_ping(c), 0);
    forq_client_free(c);
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    o.token = big;
    assert_int_equal(forq_connect_opts(x->h.addr, &o, &c), FORQ_ERR_INVALID);
    assert_null(c);
    o.token = "\xff";
    assert_int_equal(forq_connect_opts(x->h.addr, &o, &c), FORQ_ERR_INVALID);
    assert_int_equal(forq_connect_opts(x->h.addr, NULL, &c), 0);
    forq_client_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_timeout_then_result),
        cmocka_unit_test(test_failed_job_outcome),
        cmocka_unit_test(test_running_queued_cancelled),
        cmocka_unit_test(test_cancel_racing_with_start),
        cmocka_unit_test(test_future_from_id_second_client),
        cmocka_unit_test(test_callback_on_finished_future_runs_at_once),
        cmocka_unit_test(test_callbacks_on_pending_futures),
        cmocka_unit_test(test_callback_may_free_its_future),
        cmocka_unit_test(test_callbacks_run_once_when_client_closes),
        cmocka_unit_test(test_wait_all_over_1000),
        cmocka_unit_test(test_wait_first_completed_and_timeout),
        cmocka_unit_test(test_wait_first_exception),
        cmocka_unit_test(test_as_completed_over_1000),
        cmocka_unit_test(test_as_completed_timeout),
        cmocka_unit_test(test_map_in_order_with_a_bounded_window),
        cmocka_unit_test(test_map_window_that_drains),
        cmocka_unit_test(test_map_failures_and_stops),
        cmocka_unit_test(test_wait_reports_every_done_future),
        cmocka_unit_test(test_wait_poll_sees_results_only_on_disk),
        cmocka_unit_test(test_disconnect_in_the_middle_of_a_wait),
        cmocka_unit_test(test_connect_opts),
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
