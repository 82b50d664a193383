/*
 * test_job.c — a job's single allocation: payload and unique key copied in,
 * outcome bookkeeping, and the shrink that drops the payload once finished.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forq.h"
#include "heap.h"
#include "job.h"

static void
test_job_new_copies(void **state)
{
    char payload[] = "payload bytes", key[] = "key-1";
    struct job *job = job_new(payload, sizeof(payload), key, strlen(key));

    (void)state;
    assert_non_null(job);
    payload[0] = key[0] = 'X'; /* the job holds copies */
    assert_int_equal(job->payload_len, sizeof(payload));
    assert_memory_equal(job->payload, "payload bytes", sizeof(payload));
    assert_string_equal(job->unique_key, "key-1");
    assert_int_equal(job->state, FORQ_STATE_QUEUED);
    assert_int_equal(job->heap_pos, HEAP_NONE);
    assert_null(LIST_FIRST(&job->waiters));
    job_free(job);

    job = job_new(NULL, 0, NULL, 0);
    assert_non_null(job);
    assert_int_equal(job->payload_len, 0);
    assert_null(job->unique_key);
    job_free(job);
    job_free(NULL);
}

static void
test_job_outcome(void **state)
{
    struct job *job = job_new("x", 1, NULL, 0);

    (void)state;
    assert_int_equal(job_set_result(job, "", 0), 0);
    assert_non_null(job->result); /* empty, but present */
    assert_int_equal(job->result_len, 0);
    assert_int_equal(job_set_result(job, "abc", 3), 0);
    assert_memory_equal(job->result, "abc", 3);
    job_set_error(job, FORQ_ERR_TASK_FAILED, "boom");
    assert_int_equal(job->err_code, FORQ_ERR_TASK_FAILED);
    assert_string_equal(job->err_msg, "boom");
    job_set_error(job, FORQ_ERR_WORKER_LOST, NULL);
    assert_string_equal(job->err_msg, forq_strerror(FORQ_ERR_WORKER_LOST));
    job_free(job);
}

/* A finished job keeps its record and key, not its (possibly large) payload. */
static void
test_job_shrink_drops_payload(void **state)
{
    size_t big = 1 << 20;
    char *payload = malloc(big);
    struct job *job;

    (void)state;
    assert_non_null(payload);
    memset(payload, 'p', big);
    job = job_new(payload, big, "the-key", 7);
    free(payload);
    assert_non_null(job);
    job->id = 42;
    job->priority = -3;
    job->state = FORQ_STATE_SUCCEEDED;
    assert_int_equal(job_set_result(job, "r", 1), 0);

    job = job_shrink(job);
    assert_int_equal(job->payload_len, 0);
    assert_string_equal(job->unique_key, "the-key");
    assert_ptr_equal(job->unique_key, (char *)job->payload); /* moved down */
    assert_int_equal(job->id, 42);
    assert_int_equal(job->priority, -3);
    assert_int_equal(job->state, FORQ_STATE_SUCCEEDED);
    assert_memory_equal(job->result, "r", 1);
    assert_null(LIST_FIRST(&job->waiters));
    assert_ptr_equal(job_shrink(job), job); /* nothing left to drop */
    job_free(job);

    job = job_new("abc", 3, NULL, 0);
    job = job_shrink(job);
    assert_int_equal(job->payload_len, 0);
    assert_null(job->unique_key);
    job_free(job);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_new_copies),
        cmocka_unit_test(test_job_outcome),
        cmocka_unit_test(test_job_shrink_drops_payload),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
