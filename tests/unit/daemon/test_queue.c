/*
 * test_queue.c — unit tests for daemon/queue.c: named queues and the order in
 * which jobs leave them.
 *
 * Jobs are built the way daemon/jobs.c builds them (job_new, then queue,
 * priority and a global arrival seq set by hand). The order under test is
 * (priority, seq): lowest priority number first, arrival order among equals,
 * across all queues of the set. The many-queue tests compare every pop with a
 * linear scan over a reference list, with pushes, pops and cancels mixed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"

#include "forq.h"
#include "job.h"
#include "queue.h"

#define TEST_NQUEUES 10
#define TEST_NJOBS   3000

/* A queued job as jobs_submit makes one. */
static struct job *
test_job(struct queue *q, int32_t priority, uint64_t seq)
{
    struct job *job = job_new("x", 1, NULL, 0);

    assert_non_null(job);
    job->id = seq + 1;
    job->seq = seq;
    job->queue = q;
    job->priority = priority;
    return job;
}

static struct queue *
test_queue(struct queue_set *set, const char *name)
{
    struct queue *q = NULL;

    assert_int_equal(queue_get(set, name, strlen(name), 1, &q), 0);
    assert_non_null(q);
    return q;
}

/* A fresh set holding TEST_NQUEUES queues named prefix0, prefix1, ... */
static void
test_make_queues(struct queue_set *set, struct queue **qs, const char *prefix)
{
    queue_set_init(set, TEST_NQUEUES);
    for (size_t i = 0; i < TEST_NQUEUES; i++) {
        char name[24];

        snprintf(name, sizeof(name), "%s%zu", prefix, i);
        qs[i] = test_queue(set, name);
    }
}

/* (priority, seq) order, as the design states it. */
static int
test_job_before(const struct job *a, const struct job *b)
{
    if (a->priority != b->priority)
        return a->priority < b->priority;
    return a->seq < b->seq;
}

/* Index of the job that should leave next among ref[0..n). */
static size_t
test_ref_min(struct job **ref, size_t n)
{
    size_t min = 0;

    for (size_t i = 1; i < n; i++)
        if (test_job_before(ref[i], ref[min]))
            min = i;
    return min;
}

static void
test_queue_priority_then_fifo(void **state)
{
    static const int32_t prio[] = {5, 1, 5, -3, 1, 0, 5, -3, INT32_MAX, INT32_MIN};
    /* Indexes into prio (= seq) in the order they must leave. */
    static const size_t order[] = {9, 3, 7, 5, 1, 4, 0, 2, 6, 8};
    enum { N = sizeof(prio) / sizeof(prio[0]) };
    struct job *jobs[N];
    struct queue_set set;
    struct queue *q;

    queue_set_init(&set, 16);
    q = test_queue(&set, "default");
    for (size_t i = 0; i < N; i++) {
        jobs[i] = test_job(q, prio[i], i);
        assert_int_equal(queue_push(&set, jobs[i]), 0);
        assert_int_equal(queue_len(q), i + 1);
        assert_int_equal(set.queued, i + 1);
    }
    for (size_t i = 0; i < N; i++) {
        struct job *job = queue_pop(&set);

        assert_ptr_equal(job, jobs[order[i]]);
        assert_int_equal(job->heap_pos, HEAP_NONE);
        assert_int_equal(queue_len(q), N - i - 1);
        assert_int_equal(set.queued, N - i - 1);
    }
    assert_null(queue_pop(&set));
    assert_int_equal(set.queued, 0);
    for (size_t i = 0; i < N; i++)
        job_free(jobs[i]);
    queue_set_fini(&set);
}

/* Equal priorities leave in arrival order even when seq is far from push order. */
static void
test_queue_fifo_follows_seq_not_push_order(void **state)
{
    struct job *jobs[4];
    struct queue_set set;
    struct queue *q;

    queue_set_init(&set, 16);
    q = test_queue(&set, "default");
    /* A job that went back to its queue (worker lost) keeps its old seq. */
    jobs[0] = test_job(q, 2, 10);
    jobs[1] = test_job(q, 2, 11);
    jobs[2] = test_job(q, 2, 3);
    jobs[3] = test_job(q, 2, 12);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(queue_push(&set, jobs[i]), 0);
    assert_ptr_equal(queue_pop(&set), jobs[2]);
    assert_ptr_equal(queue_pop(&set), jobs[0]);
    assert_ptr_equal(queue_pop(&set), jobs[1]);
    assert_ptr_equal(queue_pop(&set), jobs[3]);
    assert_null(queue_pop(&set));
    for (size_t i = 0; i < 4; i++)
        job_free(jobs[i]);
    queue_set_fini(&set);
}

/* Across queues: a later, better job in another queue goes first. */
static void
test_queue_global_order_two_queues(void **state)
{
    struct queue_set set;
    struct queue *a, *b;
    struct job *a0, *a1, *b0, *b1;

    queue_set_init(&set, 16);
    a = test_queue(&set, "a");
    b = test_queue(&set, "b");
    a0 = test_job(a, 0, 0);
    a1 = test_job(a, 0, 1);
    b0 = test_job(b, -1, 2);
    b1 = test_job(b, 0, 3);
    assert_int_equal(queue_push(&set, a0), 0);
    assert_int_equal(queue_push(&set, a1), 0);
    assert_int_equal(queue_push(&set, b0), 0);
    assert_int_equal(queue_push(&set, b1), 0);
    assert_int_equal(queue_len(a), 2);
    assert_int_equal(queue_len(b), 2);
    assert_ptr_equal(queue_pop(&set), b0); /* better priority, later arrival */
    assert_ptr_equal(queue_pop(&set), a0); /* then priority 0 by arrival: a0, a1, b1 */
    assert_ptr_equal(queue_pop(&set), a1);
    assert_ptr_equal(queue_pop(&set), b1);
    assert_null(queue_pop(&set));
    job_free(a0);
    job_free(a1);
    job_free(b0);
    job_free(b1);
    queue_set_fini(&set);
}

/*
 * A random mix of pushes, pops and cancels over TEST_NQUEUES queues; every
 * pop must be the reference's minimum, and the counters must agree.
 */
static void
test_queue_global_order_many_queues(void **state)
{
    struct job **all = calloc(TEST_NJOBS, sizeof(*all));
    struct job **ref = calloc(TEST_NJOBS, sizeof(*ref));
    struct queue *qs[TEST_NQUEUES];
    size_t nref = 0, next = 0, popped = 0, cancelled = 0;
    struct queue_set set;

    assert_non_null(all);
    assert_non_null(ref);
    test_rng_seed(0xc0ffee);
    test_make_queues(&set, qs, "q");
    while (next < TEST_NJOBS || nref > 0) {
        uint32_t op = test_rng() % 10;

        if (next < TEST_NJOBS && (nref == 0 || op < 5)) {
            struct job *job =
                test_job(qs[test_rng() % TEST_NQUEUES], (int32_t)(test_rng() % 7) - 3, next);

            all[next++] = job;
            assert_int_equal(queue_push(&set, job), 0);
            ref[nref++] = job;
        } else if (op < 9 || next == TEST_NJOBS) {
            size_t min = test_ref_min(ref, nref);
            struct job *job = queue_pop(&set);

            assert_ptr_equal(job, ref[min]);
            assert_int_equal(job->heap_pos, HEAP_NONE);
            ref[min] = ref[--nref];
            popped++;
        } else {
            size_t k = test_rng() % nref;

            queue_remove(&set, ref[k]);
            assert_int_equal(ref[k]->heap_pos, HEAP_NONE);
            ref[k] = ref[--nref];
            cancelled++;
        }
        assert_int_equal(set.queued, nref);
        if (nref % 16 == 0) {
            size_t sum = 0;

            for (size_t i = 0; i < TEST_NQUEUES; i++)
                sum += queue_len(qs[i]);
            assert_int_equal(sum, nref);
        }
    }
    assert_null(queue_pop(&set));
    assert_int_equal(popped + cancelled, TEST_NJOBS);
    assert_true(cancelled > 0);
    for (size_t i = 0; i < TEST_NJOBS; i++)
        job_free(all[i]);
    queue_set_fini(&set);
    free(ref);
    free(all);
}

/* Fill the queues first, then drain: the whole sequence equals a sort. */
static int
test_job_cmp(const void *a, const void *b)
{
    const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

    return test_job_before(x, y) ? -1 : test_job_before(y, x) ? 1 : 0;
}

static void
test_queue_drain_equals_sort(void **state)
{
    struct job **all = calloc(TEST_NJOBS, sizeof(*all));
    struct job **want = calloc(TEST_NJOBS, sizeof(*want));
    struct queue *qs[TEST_NQUEUES];
    struct queue_set set;

    assert_non_null(all);
    assert_non_null(want);
    test_rng_seed(0xbadcafe);
    test_make_queues(&set, qs, "queue-");
    for (size_t i = 0; i < TEST_NJOBS; i++) {
        all[i] = test_job(qs[test_rng() % TEST_NQUEUES], (int32_t)(test_rng() % 5), i);
        assert_int_equal(queue_push(&set, all[i]), 0);
        want[i] = all[i];
    }
    assert_int_equal(set.queued, TEST_NJOBS);
    qsort(want, TEST_NJOBS, sizeof(*want), test_job_cmp);
    for (size_t i = 0; i < TEST_NJOBS; i++)
        assert_ptr_equal(queue_pop(&set), want[i]);
    assert_null(queue_pop(&set));
    assert_int_equal(set.queued, 0);
    for (size_t i = 0; i < TEST_NJOBS; i++)
        job_free(all[i]);
    queue_set_fini(&set);
    free(want);
    free(all);
}

/* Cancel from the middle, the head and the tail of one queue. */
static void
test_queue_remove_keeps_order(void **state)
{
    enum { N = 9 };
    struct job *jobs[N];
    struct queue_set set;
    struct queue *q;

    queue_set_init(&set, 16);
    q = test_queue(&set, "default");
    for (size_t i = 0; i < N; i++) {
        jobs[i] = test_job(q, (int32_t)(i % 3), i); /* order: 0 3 6 1 4 7 2 5 8 */
        assert_int_equal(queue_push(&set, jobs[i]), 0);
    }
    queue_remove(&set, jobs[4]); /* middle */
    assert_int_equal(jobs[4]->heap_pos, HEAP_NONE);
    assert_int_equal(set.queued, N - 1);
    queue_remove(&set, jobs[0]); /* head */
    queue_remove(&set, jobs[8]); /* tail */
    assert_int_equal(set.queued, N - 3);
    assert_int_equal(queue_len(q), N - 3);
    /* Removing a job that is no longer queued changes nothing. */
    queue_remove(&set, jobs[4]);
    assert_int_equal(set.queued, N - 3);
    assert_int_equal(queue_len(q), N - 3);

    assert_ptr_equal(queue_pop(&set), jobs[3]);
    assert_ptr_equal(queue_pop(&set), jobs[6]);
    assert_ptr_equal(queue_pop(&set), jobs[1]);
    assert_ptr_equal(queue_pop(&set), jobs[7]);
    assert_ptr_equal(queue_pop(&set), jobs[2]);
    assert_ptr_equal(queue_pop(&set), jobs[5]);
    assert_null(queue_pop(&set));
    assert_int_equal(set.queued, 0);
    for (size_t i = 0; i < N; i++)
        job_free(jobs[i]);
    queue_set_fini(&set);
}

/* Cancelling a queue's head hands the global lead to another queue. */
static void
test_queue_remove_head_moves_global_lead(void **state)
{
    struct queue_set set;
    struct queue *a, *b;
    struct job *a0, *a1, *b0;

    queue_set_init(&set, 16);
    a = test_queue(&set, "a");
    b = test_queue(&set, "b");
    a0 = test_job(a, 0, 0);
    a1 = test_job(a, 5, 1);
    b0 = test_job(b, 1, 2);
    assert_int_equal(queue_push(&set, a0), 0);
    assert_int_equal(queue_push(&set, a1), 0);
    assert_int_equal(queue_push(&set, b0), 0);
    queue_remove(&set, a0);
    assert_ptr_equal(queue_pop(&set), b0);
    assert_ptr_equal(queue_pop(&set), a1);
    assert_null(queue_pop(&set));

    /* Emptying a queue by cancel leaves the other queues' jobs reachable. */
    assert_int_equal(queue_push(&set, a0), 0);
    assert_int_equal(queue_push(&set, b0), 0);
    queue_remove(&set, a0);
    assert_int_equal(queue_len(a), 0);
    assert_int_equal(set.queued, 1);
    assert_ptr_equal(queue_pop(&set), b0);
    assert_null(queue_pop(&set));
    /* And the emptied queue works again. */
    assert_int_equal(queue_push(&set, a1), 0);
    assert_ptr_equal(queue_pop(&set), a1);
    assert_int_equal(set.queued, 0);
    job_free(a0);
    job_free(a1);
    job_free(b0);
    queue_set_fini(&set);
}

static void
test_queue_get_create_and_find(void **state)
{
    struct queue_set set;
    struct queue *q1, *q2, *q3, *q;
    const char buf[] = "emails-and-more";

    queue_set_init(&set, 16);
    q = (struct queue *)&set; /* must be cleared */
    assert_int_equal(queue_get(&set, "emails", 6, 0, &q), FORQ_ERR_NOT_FOUND);
    assert_null(q);
    assert_int_equal(set.nqueues, 0);

    assert_int_equal(queue_get(&set, "emails", 6, 1, &q1), 0);
    assert_non_null(q1);
    assert_string_equal(q1->name, "emails");
    assert_int_equal(set.nqueues, 1);
    /* Found again, with or without create, also from a non-terminated name. */
    assert_int_equal(queue_get(&set, "emails", 6, 0, &q), 0);
    assert_ptr_equal(q, q1);
    assert_int_equal(queue_get(&set, buf, 6, 1, &q), 0);
    assert_ptr_equal(q, q1);
    assert_int_equal(set.nqueues, 1);

    /* A longer name with the same prefix is another queue. */
    assert_int_equal(queue_get(&set, buf, strlen(buf), 0, &q), FORQ_ERR_NOT_FOUND);
    assert_int_equal(queue_get(&set, buf, strlen(buf), 1, &q2), 0);
    assert_ptr_not_equal(q2, q1);
    assert_string_equal(q2->name, buf);
    assert_int_equal(queue_get(&set, "email", 5, 1, &q3), 0);
    assert_ptr_not_equal(q3, q1);
    assert_ptr_not_equal(q3, q2);
    assert_int_equal(set.nqueues, 3);
    assert_ptr_equal(set.all[0], q1);
    assert_ptr_equal(set.all[1], q2);
    assert_ptr_equal(set.all[2], q3);
    queue_set_fini(&set);
}

static void
test_queue_get_name_limit(void **state)
{
    char name[FORQ_NAME_MAX + 2];
    struct queue_set set;
    struct queue *q;

    memset(name, 'n', sizeof(name));
    queue_set_init(&set, 16);
    assert_int_equal(queue_get(&set, name, 0, 1, &q), FORQ_ERR_INVALID);
    assert_null(q);
    assert_int_equal(queue_get(&set, name, FORQ_NAME_MAX + 1, 1, &q), FORQ_ERR_INVALID);
    assert_null(q);
    assert_int_equal(set.nqueues, 0);
    assert_int_equal(queue_get(&set, name, FORQ_NAME_MAX, 1, &q), 0);
    assert_non_null(q);
    assert_int_equal(strlen(q->name), FORQ_NAME_MAX);
    assert_memory_equal(q->name, name, FORQ_NAME_MAX);
    queue_set_fini(&set);
}

static void
test_queue_get_limit_at_max_queues(void **state)
{
    struct queue_set set;
    struct queue *q, *first;
    struct job *job;

    queue_set_init(&set, 3);
    first = test_queue(&set, "one");
    (void)test_queue(&set, "two");
    (void)test_queue(&set, "three");
    assert_int_equal(queue_get(&set, "four", 4, 1, &q), FORQ_ERR_LIMIT);
    assert_null(q);
    assert_int_equal(set.nqueues, 3);
    /* Existing queues are still found and usable at the limit. */
    assert_int_equal(queue_get(&set, "one", 3, 1, &q), 0);
    assert_ptr_equal(q, first);
    job = test_job(q, 0, 0);
    assert_int_equal(queue_push(&set, job), 0);
    assert_ptr_equal(queue_pop(&set), job);
    /* Without create, an unknown name is not found rather than over the limit. */
    assert_int_equal(queue_get(&set, "four", 4, 0, &q), FORQ_ERR_NOT_FOUND);
    job_free(job);
    queue_set_fini(&set);
}

/* More queues than the set's first allocation; all findable afterwards. */
static void
test_queue_get_many(void **state)
{
    enum { N = 300 };
    struct queue *made[N];
    struct queue_set set;
    char name[32];
    struct queue *q;

    queue_set_init(&set, N);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "queue.%zu", i);
        made[i] = test_queue(&set, name);
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "queue.%zu", i);
        assert_int_equal(queue_get(&set, name, strlen(name), 0, &q), 0);
        assert_ptr_equal(q, made[i]);
        assert_ptr_equal(set.all[i], made[i]);
    }
    assert_int_equal(queue_get(&set, "extra", 5, 1, &q), FORQ_ERR_LIMIT);
    queue_set_fini(&set);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_priority_then_fifo),
        cmocka_unit_test(test_queue_fifo_follows_seq_not_push_order),
        cmocka_unit_test(test_queue_global_order_two_queues),
        cmocka_unit_test(test_queue_global_order_many_queues),
        cmocka_unit_test(test_queue_drain_equals_sort),
        cmocka_unit_test(test_queue_remove_keeps_order),
        cmocka_unit_test(test_queue_remove_head_moves_global_lead),
        cmocka_unit_test(test_queue_get_create_and_find),
        cmocka_unit_test(test_queue_get_name_limit),
        cmocka_unit_test(test_queue_get_limit_at_max_queues),
        cmocka_unit_test(test_queue_get_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
