/*
 * jobs.h — the job table and the life of a job: submit, queue, hand to a
 * worker, finish, wait, cancel, expire.
 *
 * jobs owns every job (by id), the queues, the schedule, the task table, the
 * worker pool and the store. Jobs move
 *   [scheduled ->] queued -> running -> succeeded | failed | cancelled
 * and back from running to scheduled when a failed attempt has retries left
 * (exponential backoff with jitter); queued and scheduled jobs may be
 * cancelled, running ones on explicit request (their worker is killed).
 * Finished jobs stay retrievable by id for result_ttl. Callers
 * (the ops) see jobs read-only. It is the one place that changes job state,
 * so it is also the one place that records it (store.h). Loop thread only.
 *
 * With a store (durability full or normal):
 *  - a submission is answered (hooks.submitted) only once its row is
 *    committed, and becomes runnable only then; until that moment the job is
 *    invisible, as if its id did not exist yet;
 *  - a job's final state is settled once its row says so: waits on it end
 *    only then, so an outcome a client has seen survives a crash;
 *  - finished jobs beyond result_cache leave memory oldest first and are
 *    read back from the store on demand (jobs_lookup, hooks.found).
 * Without a store everything is in memory and answered at once.
 */
#ifndef FORQ_JOBS_H
#define FORQ_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "msg.h"

struct config;
struct event;
struct queue;
struct event_base;
struct job;
struct jobs;
struct jobs_put;
struct jobs_waiter;
struct metrics;

/* Where a deferred answer goes: the connection (by id, it may be gone), the request. */
struct jobs_origin {
    uint64_t conn;
    uint64_t rid;
    int op; /* MSG_OP_* of the request */
    uint64_t wait_ms; /* a SUBMIT's wait_ms: answer when the job finishes (ops.c) */
};

struct jobs_hooks {
    /*
     * A submission was stored (code 0, its id) or refused (code, why).
     * duplicate: id is an unfinished job submitted earlier with the same
     * unique_key, and nothing new was created.
     */
    void (*submitted)(void *arg, const struct jobs_origin *o, int code, uint64_t id,
                      int duplicate, const char *why);
    /*
     * A job read back from the store (jobs_lookup): job is NULL when there is
     * no such id. job and its strings are valid during the call only.
     */
    void (*found)(void *arg, const struct jobs_origin *o, uint64_t id, const struct msg_job *job);
    void *arg;
};

struct jobs_config {
    unsigned workers;
    size_t max_payload;     /* SUBMIT payloads above this are refused (too_big) */
    size_t max_result;      /* results above this fail the job (too_big) */
    size_t max_queued;      /* jobs queued per queue before queue_full */
    size_t max_queues;      /* distinct queue names */
    size_t max_name;        /* longest task or queue name a request may use; 0: FORQ_NAME_MAX */
    uint64_t result_ttl_ms; /* how long finished jobs stay retrievable */
    size_t purge_batch;     /* expired jobs freed per loop turn; 0 = default (10000) */
    int durability;         /* enum store_durability; STORE_OFF: no store */
    const char *data_dir;   /* the store's directory; read by jobs_new only */
    uint64_t max_db_bytes;  /* 0: no limit */
    size_t result_cache;    /* with a store: finished jobs kept in memory */
    uint64_t retry_backoff_ms;     /* first retry's delay; doubles per attempt; 0: 1000 */
    uint64_t retry_backoff_max_ms; /* cap on a retry's delay; 0: 300000 */
    uint64_t max_jobs_per_worker;  /* see pool.h */
    uint64_t memory_limit;         /* see pool.h */
    unsigned worker_batch;         /* pool.h's batch_max; 0 or 1: one job per wake-up */
    /*
     * Plugins, exec tasks and queue settings; NULL: built-in tasks only. Must
     * outlive the jobs (task names and argv are borrowed).
     */
    const struct config *conf;
    struct jobs_hooks hooks;
    struct metrics *metrics; /* job wait and run times go here; NULL: nowhere */
};

/* The jobs settings of a config (conf = cfg); hooks and metrics are left empty. */
void jobs_config_from(const struct config *cfg, struct jobs_config *out);

/*
 * Called once when a waited-for job is settled (code 0), its outcome could not
 * be stored (FORQ_ERR_STORAGE), or the wait times out (FORQ_ERR_TIMEOUT). The waiter is freed right after the
 * call returns; the callback must not cancel it.
 */
typedef void (*jobs_wait_fn)(void *arg, struct jobs_waiter *w, const struct job *job,
                              int code);

struct jobs_waiter {
    struct job *job;                          /* NULL for a JOIN or a blocked SUBMIT */
    struct queue *queue;                      /* the queue a JOIN or blocked SUBMIT waits on */
    struct jobs_put *put;                     /* a blocked SUBMIT's own copy; else NULL */
    struct event *timer; /* NULL when the wait has no limit */
    jobs_wait_fn fn;
    void *arg;
    uint64_t rid;                             /* the caller's request id */
    LIST_ENTRY(jobs_waiter) job_link;        /* jobs.c's: waiters of one job, joiners */
    TAILQ_ENTRY(jobs_waiter) put_link;       /* jobs.c's: a queue's blocked SUBMITs */
    LIST_ENTRY(jobs_waiter) owner_link;      /* free for the caller's own list */
};

/*
 * Create the scheduler: task table, queues, the store (lock, open, recover
 * the unfinished jobs) and the worker pool (this forks the workers). Returns
 * 0 with *out, or FORQ_ERR_STORAGE, FORQ_ERR_SYSTEM, FORQ_ERR_NOMEM with a
 * one-line reason in why.
 */
int jobs_new(struct event_base *base, const struct jobs_config *cfg, struct jobs **out,
             char *why, size_t whylen);

/*
 * Stop the workers, write out what the store still has queued, and free every
 * job and waiter (callbacks are not called). Jobs still running are put back
 * in their queue first, their attempt not counted, so the next start runs
 * them again (at-least-once).
 */
void jobs_free(struct jobs *s);

/*
 * Accept a submission. Returns 0 when it is taken: the answer (its id, or a
 * storage error) goes to hooks.submitted, maybe before this returns. Or
 * refuses it at once with FORQ_ERR_UNKNOWN_TASK, FORQ_ERR_TOO_BIG,
 * FORQ_ERR_QUEUE_FULL, FORQ_ERR_LIMIT (too many queues), FORQ_ERR_BAD_REQUEST (a
 * name over max_name) or FORQ_ERR_NOMEM,
 * with a message for the client in why. Nothing of req is kept.
 */
int jobs_submit(struct jobs *s, const struct msg_submit *req, const struct jobs_origin *o,
                char *why, size_t whylen);

/*
 * A SUBMIT that jobs_submit refused with FORQ_ERR_QUEUE_FULL and that asks
 * to block (req->block_ms > 0), like Python's Queue.put(timeout): park a
 * copy of it, behind any SUBMIT already blocked on that queue, until the
 * queue has room; then it is submitted as jobs_submit would. Its answer (an
 * id, or any refusal: queue_full once block_ms has passed, shutdown when
 * forqd starts to drain, unknown_task if a reload removed the task...) goes
 * to hooks.submitted with o. Just before that, fn(arg, w, NULL, 0) tells the
 * owner that w is gone (freed once fn returns). While SUBMITs are blocked on
 * a queue, jobs_submit refuses new ones there (they queue up behind, first
 * come, first served). Returns 0 with *out (jobs_wait_cancel withdraws it:
 * nothing is answered), or FORQ_ERR_NOMEM.
 */
int jobs_submit_block(struct jobs *s, const struct msg_submit *req, const struct jobs_origin *o,
                      jobs_wait_fn fn, void *arg, struct jobs_waiter **out);

/*
 * The job with this id, or NULL (never existed, expired, not stored yet, or
 * only in the store: see jobs_lookup). The pointer is
 * valid until the job finishes (finishing may move it) or expires: use it
 * within the current callback only.
 */
const struct job *jobs_job(struct jobs *s, uint64_t id);

/*
 * Cancel a job that has not started (scheduled or queued), or with running
 * set also a running one: its worker is killed, and the job ends cancelled
 * once the worker is dead (wait for it to settle). Returns 0 (it is cancelled
 * or being cancelled, or was already), FORQ_ERR_NOT_FOUND, or FORQ_ERR_STATE
 * (running without running set, or finished) with a message in why. *out is
 * the job on 0 and FORQ_ERR_STATE, valid for the current callback only (see
 * jobs_job).
 */
int jobs_cancel(struct jobs *s, uint64_t id, int running, const struct job **out, char *why,
                size_t whylen);

/*
 * Read a job that is not in memory back from the store. Returns 0 when the
 * answer will come through hooks.found, or FORQ_ERR_NOT_FOUND when the id
 * cannot exist (no store, never handed out, or not stored yet).
 */
int jobs_lookup(struct jobs *s, uint64_t id, const struct jobs_origin *o);

/* 1 when the job has finished and its outcome is recorded: waits end then. */
int jobs_settled(const struct job *job);

/*
 * 1 when the job has finished but the store refused its outcome: it is not
 * given out (WAIT answers `storage`) until a retry has written it.
 */
int jobs_unstored(const struct job *job);

/*
 * Park a wait on a job that is not settled, with a time limit in ms (< 0:
 * none). Returns 0 with *out (freed by jobs.c after fn runs, or by
 * jobs_wait_cancel), FORQ_ERR_STATE when the job is already settled,
 * FORQ_ERR_NOT_FOUND, or FORQ_ERR_NOMEM.
 */
int jobs_wait(struct jobs *s, uint64_t id, int64_t timeout_ms, jobs_wait_fn fn, void *arg,
               uint64_t rid, struct jobs_waiter **out);

/* Withdraw a parked wait, join or blocked SUBMIT (its owner is going away) and free it; fn is not called. */
void jobs_wait_cancel(struct jobs_waiter *w);

/* Unfinished jobs (being stored, scheduled, queued or running) of queue name; 0 if no such queue. */
uint64_t jobs_queue_unfinished(struct jobs *s, struct msg_str name);

/*
 * Park a JOIN on the queue called name: fn(arg, w, NULL, 0) once it has no
 * unfinished job, or FORQ_ERR_TIMEOUT after timeout_ms (< 0: none). Returns 0
 * with *out (freed as for jobs_wait), FORQ_ERR_STATE when the queue is
 * drained already (or does not exist), or FORQ_ERR_NOMEM.
 */
int jobs_join(struct jobs *s, struct msg_str name, int64_t timeout_ms, jobs_wait_fn fn,
              void *arg, uint64_t rid, struct jobs_waiter **out);

/*
 * Look at or change a queue (the QUEUE op): action info, pause, resume or set
 * (limit >= 0 and/or a non-empty order). The queue is created if need be.
 * Fills out (strings valid for the current callback). Returns 0, or
 * FORQ_ERR_BAD_REQUEST / FORQ_ERR_LIMIT / FORQ_ERR_NOMEM with a reason in why.
 */
int jobs_queue(struct jobs *s, const struct msg_queue_req *req, struct msg_queue_stats *out,
               char *why, size_t whylen);

/*
 * A snapshot of job for a reply; the result bytes only when with_result.
 * Strings and bytes point into the job: valid for the current callback.
 */
void jobs_snapshot(const struct jobs *s, const struct job *job, int with_result,
                   struct msg_job *out);

/*
 * Fill st with totals, per-queue and per-worker figures. The queue and worker
 * arrays are allocated (strings point into jobs and stay valid until the
 * next loop turn); free them with jobs_stats_free. 0 or FORQ_ERR_NOMEM.
 */
int jobs_stats(struct jobs *s, struct msg_stats *st);
void jobs_stats_free(struct msg_stats *st);

/*
 * SIGTERM: start no more jobs (queued and scheduled ones stay put, and stay
 * in the store) and refuse SUBMIT with FORQ_ERR_SHUTDOWN; call done(arg)
 * once no job is running and the store has answered every record (so every
 * submitter and waiter has its answer), at once if that is so already.
 * Everything else (WAIT, STATUS, CANCEL...) keeps working. Call once.
 */
void jobs_drain(struct jobs *s, void (*done)(void *arg), void *arg);

/* Records handed to the store and not answered yet (their answers may be replies). */
uint64_t jobs_store_pending(const struct jobs *s);

/* Jobs queued (ready), running and scheduled right now: for status lines. */
void jobs_counts(const struct jobs *s, uint64_t *queued, uint64_t *running, uint64_t *scheduled);

/*
 * SIGHUP: apply the settings of cfg that can change while forqd runs:
 * max_queued, max_queues, result_ttl_ms, result_cache, the retry backoff,
 * worker_batch (for jobs handed out from now on), max_jobs_per_worker and
 * memory_limit (for workers started from now on),
 * the queue sections of cfg->conf, and its tasks: the table is rebuilt from
 * cfg->conf (task_table_rebuild), and when the tasks differ from the running
 * ones every worker is replaced between jobs. The rest of cfg is ignored (it needs a restart).
 * cfg->conf must outlive the jobs, as for jobs_new; the previous one may be
 * freed after this returns 0. Returns 0, or FORQ_ERR_* with why when the new
 * tasks cannot be loaded, and then nothing has changed.
 */
int jobs_reconfigure(struct jobs *s, const struct jobs_config *cfg, char *why, size_t whylen);

#endif /* FORQ_JOBS_H */
