/*
 * jobs.h — the job table and the life of a job: submit, queue, hand to a
 * worker, finish, wait, cancel, expire.
 *
 * jobs owns every job (by id), the queues, the task table and the worker
 * pool. Jobs move queued -> running -> succeeded | failed, or queued ->
 * cancelled; finished jobs stay retrievable by id for result_ttl. Callers
 * (the ops) see jobs read-only. Persistence will sit behind this module: it
 * is the one place that changes job state. Loop thread only.
 */
#ifndef FORQ_JOBS_H
#define FORQ_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "msg.h"

struct event;
struct event_base;
struct job;
struct jobs;
struct jobs_waiter;

struct jobs_config {
    unsigned workers;
    size_t max_payload;     /* SUBMIT payloads above this are refused (too_big) */
    size_t max_result;      /* results above this fail the job (too_big) */
    size_t max_queued;      /* jobs queued per queue before queue_full */
    size_t max_queues;      /* distinct queue names */
    uint64_t result_ttl_ms; /* how long finished jobs stay retrievable */
    size_t purge_batch;     /* expired jobs freed per loop turn; 0 = default (10000) */
};

/*
 * Called once when a waited-for job reaches a final state (code 0) or the
 * wait times out (code FORQ_ERR_TIMEOUT). The waiter is freed right after the
 * call returns; the callback must not cancel it.
 */
typedef void (*jobs_wait_fn)(void *arg, struct jobs_waiter *w, const struct job *job,
                              int code);

struct jobs_waiter {
    struct job *job;
    struct event *timer; /* NULL when the wait has no limit */
    jobs_wait_fn fn;
    void *arg;
    uint64_t rid;                             /* the caller's request id */
    LIST_ENTRY(jobs_waiter) job_link;        /* jobs.c's: waiters of one job */
    LIST_ENTRY(jobs_waiter) owner_link;      /* free for the caller's own list */
};

/*
 * Create the scheduler: task table, queues and the worker pool (this forks
 * the workers). Returns 0 with *out, FORQ_ERR_SYSTEM, FORQ_ERR_NOMEM or
 * FORQ_ERR_INVALID.
 */
int jobs_new(struct event_base *base, const struct jobs_config *cfg, struct jobs **out);

/* Stop the workers and free every job and waiter (callbacks are not called). */
void jobs_free(struct jobs *s);

/*
 * Accept a submission and queue it. Returns 0 with *id, or
 * FORQ_ERR_UNKNOWN_TASK, FORQ_ERR_TOO_BIG, FORQ_ERR_QUEUE_FULL, FORQ_ERR_LIMIT
 * (too many queues), FORQ_ERR_NOMEM, with a message for the client in why.
 * Nothing of req is kept.
 */
int jobs_submit(struct jobs *s, const struct msg_submit *req, uint64_t *id, char *why,
                 size_t whylen);

/*
 * The job with this id, or NULL (never existed, or expired). The pointer is
 * valid until the job finishes (finishing may move it) or expires: use it
 * within the current callback only.
 */
const struct job *jobs_job(struct jobs *s, uint64_t id);

/*
 * Cancel a job that has not started. Returns 0 (it is cancelled now, or was
 * already), FORQ_ERR_NOT_FOUND, or FORQ_ERR_STATE (running or finished) with
 * a message in why. *out is the job on 0 and FORQ_ERR_STATE, valid for the
 * current callback only (see jobs_job).
 */
int jobs_cancel(struct jobs *s, uint64_t id, const struct job **out, char *why,
                 size_t whylen);

/*
 * Park a wait on an unfinished job, with a time limit in ms (< 0: none).
 * Returns 0 with *out (freed by jobs.c after fn runs, or by jobs_wait_cancel),
 * FORQ_ERR_STATE when the job has already finished, or FORQ_ERR_NOMEM.
 */
int jobs_wait(struct jobs *s, uint64_t id, int64_t timeout_ms, jobs_wait_fn fn, void *arg,
               uint64_t rid, struct jobs_waiter **out);

/* Withdraw a parked wait (its owner is going away) and free it; fn is not called. */
void jobs_wait_cancel(struct jobs_waiter *w);

/* The name of a job's task and queue. */
const char *jobs_task_name(const struct jobs *s, const struct job *job);
const char *jobs_queue_name(const struct job *job);

/*
 * Fill st with totals, per-queue and per-worker figures. The queue and worker
 * arrays are allocated (strings point into jobs and stay valid until the
 * next loop turn); free them with jobs_stats_free. 0 or FORQ_ERR_NOMEM.
 */
int jobs_stats(struct jobs *s, struct msg_stats *st);
void jobs_stats_free(struct msg_stats *st);

#endif /* FORQ_JOBS_H */
