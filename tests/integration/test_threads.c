/*
 * test_threads.c — one forq_client shared by 16 threads, 1,000 submissions each,
 * many requests in flight on one connection: every answer reaches the thread
 * that asked, with the right bytes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define THREADS 16
#define PER_THREAD 1000

struct worker_arg {
    forq_client *c;
    int t;
    int ok;        /* answers that matched */
    int first_err; /* first failure code, 0 if none */
};

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", NULL};

    return harness_fixture_setup(state, args);
}

static void
note_err(struct worker_arg *a, int e)
{
    if (a->first_err == 0)
        a->first_err = e;
}

/* Submit-and-wait one job at a time (cmocka asserts are not thread-safe: count instead). */
static void *
thread_seq(void *arg)
{
    struct worker_arg *a = arg;

    for (int i = 0; i < PER_THREAD; i++) {
        char in[48], want[48];
        forq_future *f;
        const void *data;
        size_t len;
        int e;

        snprintf(in, sizeof(in), "thread-%d-job-%d", a->t, i);
        snprintf(want, sizeof(want), "THREAD-%d-JOB-%d", a->t, i);
        if ((e = forq_submit(a->c, "upper", in, strlen(in), NULL, &f)) != 0) {
            note_err(a, e);
            continue;
        }
        if ((e = forq_future_result(f, HARNESS_GUARD_MS, &data, &len)) != 0)
            note_err(a, e);
        else if (len == strlen(want) && memcmp(data, want, len) == 0)
            a->ok++;
        else
            note_err(a, FORQ_ERR_PROTOCOL);
        forq_future_free(f);
    }
    return NULL;
}

/* Submit all first, then resolve all: up to 1,000 jobs in flight per thread. */
static void *
thread_batch(void *arg)
{
    struct worker_arg *a = arg;
    forq_future *f[PER_THREAD] = {0};
    char in[48], want[48];

    for (int i = 0; i < PER_THREAD; i++) {
        int e;

        snprintf(in, sizeof(in), "b%d-%d", a->t, i);
        if ((e = forq_submit(a->c, "echo", in, strlen(in), NULL, &f[i])) != 0)
            note_err(a, e);
    }
    for (int i = 0; i < PER_THREAD; i++) {
        const void *data;
        size_t len;
        int e;

        if (f[i] == NULL)
            continue;
        snprintf(want, sizeof(want), "b%d-%d", a->t, i);
        if ((e = forq_future_result(f[i], HARNESS_GUARD_MS, &data, &len)) != 0)
            note_err(a, e);
        else if (len == strlen(want) && memcmp(data, want, len) == 0)
            a->ok++;
        else
            note_err(a, FORQ_ERR_PROTOCOL);
        forq_future_free(f[i]);
    }
    return NULL;
}

static void
run_threads(struct harness_fixture *x, void *(*fn)(void *))
{
    struct worker_arg args[THREADS];
    pthread_t th[THREADS];
    int total = 0;

    for (int t = 0; t < THREADS; t++) {
        args[t] = (struct worker_arg){.c = x->c, .t = t};
        assert_int_equal(pthread_create(&th[t], NULL, fn, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        if (args[t].first_err != 0)
            fail_msg("thread %d: %s (%s)", t, forq_strerror(args[t].first_err),
                     forq_errname(args[t].first_err));
        total += args[t].ok;
    }
    assert_int_equal(total, THREADS * PER_THREAD);
}

static void
test_16_threads_x_1000_sequential(void **state)
{
    run_threads(*state, thread_seq);
}

static void
test_16_threads_x_1000_in_flight(void **state)
{
    run_threads(*state, thread_batch);
}

/* The daemon counted every one of them. */
static void
test_stats_count_them(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_stats *st;

    assert_int_equal(forq_stats(x->c, &st), 0);
    assert_int_equal(st->submitted, 2 * THREADS * PER_THREAD);
    assert_int_equal(st->succeeded, 2 * THREADS * PER_THREAD);
    assert_int_equal(st->failed, 0);
    assert_int_equal(st->queued, 0);
    assert_int_equal(st->nworkers, 2);
    forq_stats_free(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_16_threads_x_1000_sequential),
        cmocka_unit_test(test_16_threads_x_1000_in_flight),
        cmocka_unit_test(test_stats_count_them),
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
