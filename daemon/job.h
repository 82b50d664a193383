/*
 * job.h — one job: its identity, options, state, payload and outcome.
 *
 * A job is one allocation: the struct, then its payload, then its unique key
 * (beanstalkd's layout), so a queued job costs one malloc. The result and the
 * error message arrive later and are separate allocations owned by the job.
 * Jobs are created, changed and freed by jobs.c on the loop thread only.
 */
#ifndef FORQ_JOB_H
#define FORQ_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

struct queue;
struct jobs_waiter;

struct job {
    uint64_t id;         /* daemon-assigned, never reused */
    uint64_t seq;        /* arrival order: FIFO among equal priorities */
    int state;           /* enum forq_state */
    uint8_t storing;     /* its INSERT is not committed yet: invisible, not queued */
    uint8_t unsynced;    /* final, but its FINISH is not committed yet: waits go on */
    uint8_t finish_failed; /* the store refused its FINISH; the purge timer retries */
    uint8_t kill_cancel; /* a CANCEL killed its worker: it ends cancelled */
    uint16_t task;       /* index in the task table */
    int32_t priority;    /* lower runs first */
    struct queue *queue; /* the queue it was submitted to; outlives the job */
    size_t heap_pos;     /* position in queue->jobs, HEAP_NONE when not queued */
    size_t delay_pos;    /* position in the schedule (delay.h), HEAP_NONE when not scheduled */

    uint64_t delay_ms, timeout_ms; /* timeout_ms: its worker is killed past it; 0 = none */
    uint64_t run_at_us;            /* scheduled: when it becomes runnable (unix µs) */
    uint64_t ready_us;             /* when it last entered its queue (for the wait metric) */
    uint32_t max_retries;
    uint32_t attempts;             /* times it was handed to a worker */
    struct job *unique_next;       /* next unfinished job whose key has the same hash */

    uint64_t created_us, started_us, finished_us; /* unix time, µs; 0 = not yet */

    uint8_t *result;   /* owned; set when succeeded */
    size_t result_len;
    pid_t worker_pid;  /* last worker that ran it (here: it fills err_code's padding) */
    int err_code;      /* FORQ_ERR_* when failed or cancelled, or of the last failed
                          attempt while it waits for a retry; else 0 */
    char *err_msg;     /* owned; NULL when err_code == 0 */

    LIST_HEAD(, jobs_waiter) waiters; /* WAIT requests parked on this job */
    TAILQ_ENTRY(job) fin_link;         /* finished jobs, oldest first (purge) */

    size_t payload_len;
    char *unique_key; /* points into this allocation, NUL-terminated; NULL = none */
    uint8_t payload[];
};

/*
 * Allocate a queued job with a copy of payload and unique_key (key_len 0 =
 * none). Timestamps and ids are the caller's to set. Returns NULL on ENOMEM.
 * Free with job_free().
 */
struct job *job_new(const void *payload, size_t payload_len, const char *unique_key,
                    size_t key_len);
/* Free the job and what it owns. NULL is a no-op. The job must be in no list. */
void job_free(struct job *job);

/*
 * Drop the payload of a finished job (it will not run again), keeping the
 * record and its unique key: the allocation shrinks and may move. Returns the
 * job's address, new or old (if realloc failed, the job is just not smaller).
 * The caller must re-point whatever refers to the job; it may be in no list.
 */
struct job *job_shrink(struct job *job);

/* Store a copy of the result. 0 or FORQ_ERR_NOMEM (job unchanged). */
int job_set_result(struct job *job, const void *data, size_t len);
/*
 * Record an error code and a copy of msg (NULL: the code's description). Bytes
 * that are not valid UTF-8 become '?', since the message travels as a str.
 */
void job_set_error(struct job *job, int code, const char *msg);

/* Forget the error (a retried job that then succeeded). */
void job_clear_error(struct job *job);

/* Current unix time in microseconds. */
uint64_t job_now_us(void);

#endif /* FORQ_JOB_H */
