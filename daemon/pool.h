/*
 * pool.h — the pre-forked worker pool, seen from the event loop.
 *
 * pool_new maps one slot per worker (slot.h), forks the workers and watches
 * each through two descriptors on the loop: an eventfd the worker bumps when
 * a job is done, and a pidfd that becomes readable the moment the worker dies
 * (SIGCHLD where pidfd_open is missing, see pool.c).
 * A dead worker's slot is re-initialised and a new worker forked at once
 * (with a growing delay if workers keep dying right after they start); the job
 * it held is reported through ops->lost, never dropped silently.
 *
 * Each worker leads its own process group, so a command it runs (exec tasks)
 * is killed with it. The pool kills a worker itself when a job runs past its
 * timeout or is cancelled while running (pool_kill), retires a worker after
 * max_jobs_per_worker jobs (it exits between jobs and is replaced at once),
 * and starts every worker under RLIMIT_AS = memory_limit.
 *
 * A worker takes a batch of jobs with one wake-up: pool_run starts a batch on
 * an idle worker, and pool_append adds a job to a busy worker's batch. A job
 * waits behind the others of its batch, so a batch is only for quick jobs:
 * every job in it is of a task whose runs have averaged at most
 * batch_quick_us, and none has a timeout. The worker wakes the loop once,
 * when it is through the batch, and every outcome is delivered then.
 *
 * The pool knows nothing of jobs beyond an id, a task index, a payload and an
 * opaque cookie it hands back. Loop thread only.
 */
#ifndef FORQ_POOL_H
#define FORQ_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "task.h"

struct event_base;
struct pool;

struct pool_config {
    unsigned workers;
    size_t payload_cap; /* largest payload a slot carries */
    size_t result_cap;  /* largest result a task may write */
    uint64_t max_jobs_per_worker; /* retire a worker after this many jobs; 0: never */
    uint64_t memory_limit;        /* RLIMIT_AS of each worker in bytes; 0: none */
    unsigned batch_max;           /* most jobs in a worker's batch (<= SLOT_BATCH_MAX); 0, 1: one */
    uint32_t batch_quick_us;      /* a task whose runs average more is never appended */
    uint32_t batch_wake_us;       /* pool_give: what waking an idle worker costs, in µs */
};

/* Why a job came back through ops->lost. */
enum pool_lost_reason {
    POOL_LOST_DIED = 0, /* the worker died on its own (crash, signal, exit) */
    POOL_LOST_TIMEOUT,  /* the pool killed it: the job ran past its timeout */
    POOL_LOST_KILLED,   /* the pool killed it on request (pool_kill), or the job was
                           cancelled before it started (not started) */
    POOL_LOST_RETURNED, /* not started: the worker stopped its batch before it (no result room) */
};

struct pool_ops {
    /*
     * The job with this cookie finished: status 0 (result/len) or a negative
     * FORQ_ERR_* (errmsg). started_us is when the worker started it (wall
     * clock µs; a job waits in a batch before that). result and errmsg point
     * into the slot and are valid only during the call.
     */
    void (*done)(void *arg, void *cookie, int status, const uint8_t *result, size_t len,
                 const char *errmsg, uint64_t started_us);
    /*
     * The job came back without an outcome (reason: enum pool_lost_reason):
     * the worker holding it died, or the job never started (started 0: it
     * waited in a batch, or the worker died before it picked it up). why
     * describes it. A started job's worker is dead by now, its whole process
     * group killed: the job runs nowhere.
     */
    void (*lost)(void *arg, void *cookie, int started, int reason, const char *why);
    /* A worker became free: a good moment to hand out queued jobs. */
    void (*idle)(void *arg);
};

/*
 * Map the slots and fork cfg->workers workers. The task table must stay valid
 * for the pool's lifetime; workers inherit it at fork, so after changing it
 * (a reload) call pool_retire_all.
 * Returns 0 with *out, FORQ_ERR_SYSTEM (mmap, fork, pidfd...; see errno) or
 * FORQ_ERR_NOMEM; on failure nothing is left running.
 */
int pool_new(struct event_base *base, const struct pool_config *cfg,
             const struct task_table *tasks, const struct pool_ops *ops, void *arg,
             struct pool **out);

/*
 * Stop every worker (idle ones are asked to exit, busy ones are killed; jobs
 * in flight are not reported) and free the pool. NULL is a no-op.
 */
void pool_free(struct pool *p);

/*
 * A reload: new limits for the workers forked from now on (a worker's
 * memory limit is set when it starts; the jobs limit counts from then too),
 * and a new batch_max for the jobs appended from now on.
 */
void pool_set_limits(struct pool *p, uint64_t max_jobs_per_worker, uint64_t memory_limit,
                     unsigned batch_max);

/*
 * Replace every worker with one forked now, from the task table as it is
 * now: idle workers exit at once, busy ones after their job (its outcome is
 * delivered as usual). Replacements start as soon as each one exits.
 */
void pool_retire_all(struct pool *p);

/* Number of idle workers: pool_run can start that many batches right now. */
unsigned pool_idle(const struct pool *p);

/*
 * Hand a job to an idle worker: the payload is copied into its slot (the
 * only copy on the way to the task). With timeout_ms > 0 the worker is killed
 * if the job has not finished that long after (ops->lost, POOL_LOST_TIMEOUT).
 * Returns 0 with *pid set to the worker's pid, FORQ_ERR_LIMIT when no worker
 * is idle, FORQ_ERR_TOO_BIG when the payload exceeds the slot, or
 * FORQ_ERR_SYSTEM / FORQ_ERR_NOMEM.
 */
int pool_run(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
             uint64_t timeout_ms, void *cookie, pid_t *pid);

/*
 * Append a job to the batch of a busy worker (the one with the least work
 * ahead, by its jobs' tasks' average runs), to run after the jobs before it,
 * without a wake-up. Only a quick job
 * without a timeout, to a batch of such jobs that has room (batch_max jobs,
 * the payload area, the worker's max_jobs_per_worker) and that the worker is
 * not through yet. Returns 0 with *pid, or FORQ_ERR_LIMIT (nothing changed:
 * the job stays the caller's).
 */
int pool_append(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
                uint64_t timeout_ms, void *cookie, pid_t *pid);

/*
 * Hand a job to whichever worker will start it soonest: a busy worker's
 * batch (as pool_append) when the jobs ahead of it there are expected (by
 * their tasks' average runs) to take less than batch_wake_us, what waking an
 * idle worker costs; else an idle worker (pool_run), else a busy
 * worker's batch. For tiny jobs this keeps one worker busy rather than paying
 * a wake-up per job. Returns as pool_run (FORQ_ERR_LIMIT: nobody can take it).
 */
int pool_give(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
              uint64_t timeout_ms, void *cookie, pid_t *pid);

/*
 * Stop job_id: kill the worker running it (and its process group), or, when
 * the job waits in a batch, have the worker pass it over. The job comes back
 * through ops->lost with POOL_LOST_KILLED once the worker is dead, or through
 * ops->lost (not started) when the batch ends; the rest of the killed
 * worker's batch comes back not started. Returns 0,
 * FORQ_ERR_STATE when the job has finished already (nothing is killed; its
 * outcome comes through ops->done), or FORQ_ERR_NOT_FOUND when no worker
 * holds that job.
 */
int pool_kill(struct pool *p, uint64_t job_id);

struct pool_worker_info {
    unsigned slot;
    pid_t pid;         /* 0 while being replaced */
    const char *state; /* "idle", "busy", "starting" or "retiring" */
    uint64_t job;      /* the job it runs (or will run next), 0 when none */
    unsigned batched;  /* jobs in its batch, done or not, until the batch is harvested */
    uint64_t jobs_done, restarts;
};

/* Number of worker slots. */
size_t pool_size(const struct pool *p);
/* Describe worker i (< pool_size). */
void pool_info(const struct pool *p, size_t i, struct pool_worker_info *out);

#endif /* FORQ_POOL_H */
