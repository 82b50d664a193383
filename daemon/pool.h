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
};

/* Why a job came back through ops->lost. */
enum pool_lost_reason {
    POOL_LOST_DIED = 0, /* the worker died on its own (crash, signal, exit) */
    POOL_LOST_TIMEOUT,  /* the pool killed it: the job ran past its timeout */
    POOL_LOST_KILLED,   /* the pool killed it on request (pool_kill) */
};

struct pool_ops {
    /*
     * The job with this cookie finished: status 0 (result/len) or a negative
     * FORQ_ERR_* (errmsg). result and errmsg point into the slot and are valid
     * only during the call.
     */
    void (*done)(void *arg, void *cookie, int status, const uint8_t *result, size_t len,
                 const char *errmsg);
    /*
     * The worker holding the job died (reason: enum pool_lost_reason).
     * started is 0 when it died before it picked the job up (the job never
     * ran). why describes the death. The worker is dead by now, its whole
     * process group killed: the job runs nowhere.
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
 * memory limit is set when it starts; the jobs limit counts from then too).
 */
void pool_set_limits(struct pool *p, uint64_t max_jobs_per_worker, uint64_t memory_limit);

/*
 * Replace every worker with one forked now, from the task table as it is
 * now: idle workers exit at once, busy ones after their job (its outcome is
 * delivered as usual). Replacements start as soon as each one exits.
 */
void pool_retire_all(struct pool *p);

/* Number of workers that can take a job right now. */
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
 * Kill the worker running job_id (and its process group). The job comes back
 * through ops->lost with POOL_LOST_KILLED once the worker is dead. Returns 0,
 * FORQ_ERR_STATE when the job has finished already (nothing is killed; its
 * outcome comes through ops->done), or FORQ_ERR_NOT_FOUND when no worker
 * holds that job.
 */
int pool_kill(struct pool *p, uint64_t job_id);

struct pool_worker_info {
    unsigned slot;
    pid_t pid;         /* 0 while being replaced */
    const char *state; /* "idle", "busy", "starting" or "retiring" */
    uint64_t job;      /* job id in the slot, 0 when none */
    uint64_t jobs_done, restarts;
};

/* Number of worker slots. */
size_t pool_size(const struct pool *p);
/* Describe worker i (< pool_size). */
void pool_info(const struct pool *p, size_t i, struct pool_worker_info *out);

#endif /* FORQ_POOL_H */
