/*
 * jobs.c — job lifecycle on the loop thread: the job table, dispatch from
 * the queues to idle workers, outcomes from the pool, waits and expiry.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "forq.h"
#include "idmap.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "queue.h"
#include "jobs.h"
#include "delay.h"
#include "store.h"
#include "task.h"

#define JOBS_PURGE_EVERY_MS_MAX 10000 /* look for expired results at least this often */
#define JOBS_PURGE_EVERY_MS_MIN 100
#define JOBS_PURGE_BATCH        10000 /* default jobs freed per purge turn */
#define JOBS_BACKOFF_MS         1000   /* default first retry delay */
#define JOBS_BACKOFF_MAX_MS     300000 /* default cap on a retry delay */
/*
 * Jobs of a task whose runs average at most this may wait in a worker's batch
 * (pool_append). A job may wait behind worker_batch - 1 of them: 3.5 ms at
 * the default 8. Above it, the wake-up a batch saves (tens of µs) is small
 * beside the job itself.
 */
#define JOBS_QUICK_US 500
/*
 * What waking a sleeping worker costs until it runs a job: about a quarter of
 * a sequential round trip (client, loop, worker, loop, client: 0.19 ms in
 * BENCHMARKS.md's B). A busy worker with less quick work than this ahead of a
 * job starts it sooner, and the loop saves the wake-up (pool_give).
 */
#define JOBS_WAKE_US 50

struct jobs {
    struct event_base *base;
    struct jobs_config cfg;
    struct task_table tasks; /* built before the fork; workers hold a copy */
    struct queue_set queues;
    struct delay delayed;      /* scheduled jobs: delays and retry backoff */
    struct idmap unique;     /* hash of a unique_key -> an unfinished job with it (chained) */
    struct pool *pool;
    struct idmap jobs;       /* id -> job, every state */
    uint64_t next_id;        /* ids start at 1 and are never reused */
    TAILQ_HEAD(, job) finished; /* oldest first: expiry pops from the head */
    size_t nfinished;
    struct event *purge_ev;
    struct store *store;        /* NULL: durability off */
    uint64_t store_failures;    /* records that could not even be allocated */
    uint64_t transition_failures; /* records the store refused (for the log) */
    uint64_t finish_failed;     /* jobs whose FINISH waits to be written again */
    uint64_t in_store;          /* records put to the store, not answered yet */

    uint64_t running;
    uint64_t submitted, succeeded, failed, cancelled, retried;

    struct event *room_ev;     /* a queue with blocked SUBMITs may have room: admit them */

    int draining;              /* jobs_drain: start nothing new, refuse SUBMIT */
    void (*drained)(void *arg); /* called once nothing runs any more while draining */
    void *drained_arg;
    uint64_t rng;            /* xorshift state for the backoff jitter */
};

static void jobs_pump(struct jobs *s);
static void jobs_room(struct jobs *s, const struct queue *q);
static void jobs_room_cb(evutil_socket_t fd, short what, void *arg);
static void jobs_waiter_free(struct jobs_waiter *w);

/* ------------------------------------------------------------------ unique keys */

/* The unfinished job holding this unique_key, or NULL. */
static struct job *
jobs_unique_find(const struct jobs *s, const char *key, size_t len)
{
    struct job *job;

    for (job = idmap_get(&s->unique, idmap_hash_bytes(key, len)); job != NULL;
         job = job->unique_next)
        if (strlen(job->unique_key) == len && memcmp(job->unique_key, key, len) == 0)
            return job;
    return NULL;
}

/* Make job the holder of its key. 0 or FORQ_ERR_NOMEM. */
static int
jobs_unique_add(struct jobs *s, struct job *job)
{
    uint64_t h = idmap_hash_bytes(job->unique_key, strlen(job->unique_key));
    struct job *first = idmap_get(&s->unique, h);
    int e;

    if ((e = idmap_put(&s->unique, h, job)) != 0)
        return e;
    job->unique_next = first;
    return 0;
}

/* The job finished (or was never stored): its key is free again. */
static void
jobs_unique_del(struct jobs *s, struct job *job)
{
    uint64_t h;
    struct job **pp, *first;

    if (job->unique_key == NULL)
        return;
    h = idmap_hash_bytes(job->unique_key, strlen(job->unique_key));
    if ((first = idmap_get(&s->unique, h)) == job) {
        if (job->unique_next != NULL)
            (void)idmap_put(&s->unique, h, job->unique_next); /* replaces: cannot fail */
        else
            idmap_del(&s->unique, h);
    } else {
        for (pp = &first; *pp != NULL && *pp != job; pp = &(*pp)->unique_next)
            ;
        if (*pp == job)
            *pp = job->unique_next;
    }
    job->unique_next = NULL;
}

/* ------------------------------------------------------------------ joins */

/* Answer the JOINs of q once nothing of it is left unfinished. */
static void
jobs_check_drained(struct queue *q)
{
    struct jobs_waiter *w;

    if (queue_unfinished(q) > 0)
        return;
    while ((w = LIST_FIRST(&q->joiners)) != NULL) {
        LIST_REMOVE(w, job_link);
        w->fn(w->arg, w, NULL, 0);
        jobs_waiter_free(w);
    }
}

/* Can q take one more job: fewer than max_queued being stored, scheduled or queued? */
static int
jobs_has_room(const struct jobs *s, const struct queue *q)
{
    return queue_len(q) + q->storing + q->scheduled < s->cfg.max_queued;
}

/*
 * A job has left q's count (started, finished, not stored) or the limit has
 * risen: if SUBMITs are blocked on q, admit them from the loop's next turn
 * (jobs_room_cb), not from inside whatever freed the room.
 */
static void
jobs_room(struct jobs *s, const struct queue *q)
{
    if (q->nputters > 0 && jobs_has_room(s, q))
        event_active(s->room_ev, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------------ finishing */

static void
jobs_waiter_free(struct jobs_waiter *w)
{
    if (w->timer != NULL)
        event_free(w->timer);
    free(w->put);
    free(w);
}

/* Answer everyone waiting for a job: settled (code 0), or its outcome unstored. */
static void
jobs_wake_waiters(struct job *job, int code)
{
    struct jobs_waiter *w;

    while ((w = LIST_FIRST(&job->waiters)) != NULL) {
        LIST_REMOVE(w, job_link);
        w->fn(w->arg, w, job, code);
        jobs_waiter_free(w);
    }
}

static void
jobs_forget(struct jobs *s, struct job *job)
{
    TAILQ_REMOVE(&s->finished, job, fin_link);
    s->nfinished--;
    idmap_del(&s->jobs, job->id);
    job_free(job);
}

/* With a store, finished jobs beyond the cache live on in the store only. */
static void
jobs_evict(struct jobs *s)
{
    struct job *job;

    while (s->store != NULL && s->nfinished > s->cfg.result_cache &&
           (job = TAILQ_FIRST(&s->finished)) != NULL && !job->unsynced)
        jobs_forget(s, job);
}

/* Copy what the store needs of a job into rec->job (pointers borrow the job's memory). */
static void
jobs_store_view(const struct jobs *s, const struct job *job, struct store_job *v)
{
    v->id = job->id;
    v->state = job->state;
    v->task = task_name(&s->tasks, job->task);
    v->queue = job->queue->name;
    v->priority = job->priority;
    v->delay_ms = job->delay_ms;
    v->timeout_ms = job->timeout_ms;
    v->max_retries = job->max_retries;
    v->attempts = job->attempts;
    v->worker_pid = job->worker_pid;
    v->created_us = job->created_us;
    v->started_us = job->started_us;
    v->finished_us = job->finished_us;
    v->run_at_us = job->run_at_us;
    v->payload = job->payload;
    v->payload_len = job->payload_len;
    v->unique_key = job->unique_key;
    v->result = job->result;
    v->result_len = job->result_len;
    v->err_code = job->err_code;
    v->err_msg = job->err_msg;
}

/* Who asked travels with the record, in its cookie. */
static void
jobs_origin_put(struct store_rec *rec, const struct jobs_origin *o)
{
    rec->cookie[0] = o->conn;
    rec->cookie[1] = o->rid;
    rec->cookie[2] = (uint64_t)o->op;
    rec->cookie[3] = o->wait_ms;
}

static struct jobs_origin
jobs_origin_get(const struct store_rec *rec)
{
    struct jobs_origin o = {rec->cookie[0], rec->cookie[1], (int)rec->cookie[2], rec->cookie[3]};

    return o;
}

/* Hand rec to the store; its answer comes to jobs_store_done_cb. */
static void
jobs_store_put(struct jobs *s, struct store_rec *rec)
{
    s->in_store++;
    store_put(s->store, rec);
}

/*
 * Record a transition. Returns 1 when a record is on its way, 0 when there is
 * no store or no memory for the record (the transition is then not durable:
 * logged, counted, and treated as settled).
 */
static int
jobs_record(struct jobs *s, int op, const struct job *job, const struct jobs_origin *o)
{
    struct store_rec *rec;

    if (s->store == NULL)
        return 0;
    if ((rec = store_rec_new(op)) == NULL) {
        s->store_failures++;
        log_err("out of memory recording job %llu", (unsigned long long)job->id);
        return 0;
    }
    jobs_store_view(s, job, &rec->job);
    /*
     * The task's name belongs to the configuration, which a reload frees
     * while the store thread may still be reading the record: an INSERT (the
     * only record that writes the name) carries its own copy.
     */
    if (op == STORE_INSERT) {
        snprintf(rec->task, sizeof(rec->task), "%s", rec->job.task);
        rec->job.task = rec->task;
    }
    if (op != STORE_INSERT) { /* the payload may move (job_shrink) before the store reads */
        rec->job.payload = NULL;
        rec->job.payload_len = 0;
        rec->job.unique_key = NULL;
    }
    /*
     * A job waiting for a retry may replace its last error (its next attempt
     * fails, succeeds, or it is cancelled) before the store thread reads it:
     * the RETRY record carries its own copy. A final error never changes.
     */
    if (op == STORE_RETRY && rec->job.err_msg != NULL) {
        if ((rec->owned = strdup(rec->job.err_msg)) == NULL) {
            store_rec_free(rec);
            s->store_failures++;
            return 0;
        }
        rec->job.err_msg = rec->owned;
    } else if (op != STORE_FINISH) {
        rec->job.err_msg = NULL;
    }
    if (o != NULL)
        jobs_origin_put(rec, o);
    jobs_store_put(s, rec);
    return 1;
}

/*
 * Move a job to a final state. Waiters are answered once it is settled: now
 * without a store, when the store has committed it otherwise. Its payload is
 * dropped, which may move it: returns its address from now on.
 */
static struct job *
jobs_finish(struct jobs *s, struct job *job, int state)
{
    struct queue *q = job->queue;
    struct job *moved;

    if (job->state == FORQ_STATE_RUNNING) {
        queue_stopped(&s->queues, q);
        s->running--;
    } else if (job->state == FORQ_STATE_SCHEDULED) {
        q->scheduled--;
    }
    jobs_unique_del(s, job); /* before job_shrink may move it */
    job->state = state;
    job->finished_us = job_now_us();
    if (state == FORQ_STATE_SUCCEEDED) {
        q->succeeded++;
        s->succeeded++;
    } else if (state == FORQ_STATE_FAILED) {
        q->failed++;
        s->failed++;
    } else {
        q->cancelled++;
        s->cancelled++;
    }
    job->unsynced = (uint8_t)jobs_record(s, STORE_FINISH, job, NULL);
    if (!job->unsynced)
        jobs_wake_waiters(job, 0);
    /* Only the id map points at it now (the pool and the queue let go of it). */
    moved = job_shrink(job);
    if (moved != job) {
        struct jobs_waiter *w;

        idmap_put(&s->jobs, moved->id, moved); /* replaces: cannot fail */
        /* Waiters of an unsettled job stay: re-point them and their list head. */
        if ((w = LIST_FIRST(&moved->waiters)) != NULL)
            w->job_link.le_prev = &LIST_FIRST(&moved->waiters);
        LIST_FOREACH(w, &moved->waiters, job_link)
            w->job = moved;
    }
    jobs_evict(s); /* first: the caller still holds the job it finished */
    TAILQ_INSERT_TAIL(&s->finished, moved, fin_link);
    s->nfinished++;
    jobs_check_drained(q);
    jobs_room(s, q);
    return moved;
}

static void
jobs_fail(struct jobs *s, struct job *job, int code, const char *msg)
{
    job_set_error(job, code, msg);
    (void)jobs_finish(s, job, FORQ_STATE_FAILED);
}

/* ------------------------------------------------------------------ pool callbacks */

/* A small PRNG for the jitter (no need for quality, only for spread). */
static uint64_t
jobs_rand(struct jobs *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/*
 * Delay before attempt n + 1 (n >= 1 attempts failed): base * 2^(n-1), capped,
 * with "equal jitter": half of it fixed, half random, so a burst of failures
 * does not come back as a burst.
 */
static uint64_t
jobs_backoff_ms(struct jobs *s, uint32_t failed)
{
    uint64_t d = s->cfg.retry_backoff_ms, cap = s->cfg.retry_backoff_max_ms;

    for (uint32_t i = 1; i < failed && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    return d - d / 2 + (d / 2 > 0 ? jobs_rand(s) % (d / 2 + 1) : 0);
}

/* The outcome of an attempt that is not worth another try. */
static int
jobs_retryable(int code)
{
    return code != FORQ_ERR_TOO_BIG && code != FORQ_ERR_CANCELLED &&
           code != FORQ_ERR_UNKNOWN_TASK;
}

/* Into its queue's ready heap; the wait metric counts from now. 0 or FORQ_ERR_NOMEM. */
static int
jobs_push(struct jobs *s, struct job *job)
{
    job->ready_us = job_now_us();
    return queue_push(&s->queues, job);
}

/*
 * Put a job in the schedule for run_at_us. On ENOMEM it is queued now
 * instead, or, failing that too, fails. Returns 1 when it is scheduled or
 * queued, 0 when it has finished (and may have moved: do not touch it).
 */
static int
jobs_schedule(struct jobs *s, struct job *job)
{
    job->state = FORQ_STATE_SCHEDULED;
    job->queue->scheduled++;
    if (delay_add(&s->delayed, job) == 0)
        return 1;
    job->run_at_us = 0;
    job->queue->scheduled--;
    job->state = FORQ_STATE_QUEUED;
    if (jobs_push(s, job) == 0)
        return 1;
    jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory scheduling the job");
    return 0;
}

/* A new or recovered job goes to the schedule (its time is ahead) or its queue. */
static void
jobs_enqueue(struct jobs *s, struct job *job)
{
    if (job->run_at_us > job_now_us()) {
        (void)jobs_schedule(s, job);
        return;
    }
    job->state = FORQ_STATE_QUEUED;
    if (jobs_push(s, job) != 0)
        jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory queueing the job"); /* job may move */
}

/* A scheduled job's time has come: it joins its queue. */
static void
jobs_delay_fire(void *arg, struct job *job)
{
    struct jobs *s = arg;

    job->queue->scheduled--;
    job->run_at_us = 0;
    job->state = FORQ_STATE_QUEUED;
    if (jobs_push(s, job) != 0)
        jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory queueing the job");
    jobs_pump(s);
}

/*
 * An attempt failed with code: try again after a backoff while retries
 * remain, else the job ends failed with this error.
 */
static void
jobs_attempt_failed(struct jobs *s, struct job *job, int code, const char *msg)
{
    if (job->attempts > job->max_retries || !jobs_retryable(code)) {
        jobs_fail(s, job, code, msg);
        return;
    }
    job_set_error(job, code, msg); /* the last error, shown by STATUS */
    if (job->state == FORQ_STATE_RUNNING) {
        queue_stopped(&s->queues, job->queue);
        s->running--;
    }
    job->run_at_us = job_now_us() + jobs_backoff_ms(s, job->attempts) * 1000;
    job->queue->retried++;
    s->retried++;
    log_debug("job %llu: attempt %u failed (%s); retry %u of %u in %llu ms",
              (unsigned long long)job->id, job->attempts, forq_errname(code), job->attempts,
              job->max_retries,
              (unsigned long long)((job->run_at_us - job_now_us()) / 1000));
    if (jobs_schedule(s, job))
        (void)jobs_record(s, STORE_RETRY, job, NULL);
}

static void
jobs_done_cb(void *arg, void *cookie, int status, const uint8_t *result, size_t len,
              const char *errmsg)
{
    struct jobs *s = arg;
    struct job *job = cookie;

    if (status != 0) {
        jobs_attempt_failed(s, job, status, errmsg[0] ? errmsg : NULL);
        return;
    }
    if (job_set_result(job, result, len) != 0) {
        jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory storing the result");
        return;
    }
    job_clear_error(job); /* an earlier attempt's error is history now */
    (void)jobs_finish(s, job, FORQ_STATE_SUCCEEDED);
}

/*
 * A running job that did not get to run (its worker died before picking it
 * up, or forqd is stopping): queued again where it was (its seq keeps its
 * place), and the attempt does not count.
 */
static void
jobs_put_back(struct jobs *s, struct job *job)
{
    queue_stopped(&s->queues, job->queue);
    s->running--;
    job->attempts--;
    job->started_us = 0;
    job->worker_pid = 0;
    job->state = FORQ_STATE_QUEUED;
    (void)jobs_record(s, STORE_REQUEUE, job, NULL);
    if (jobs_push(s, job) != 0)
        jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory requeueing the job");
}

/*
 * While draining: the last running job has ended and the store has answered
 * every record (outcomes are settled and their waiters told; submissions
 * accepted or refused; lookups answered), so nothing a client waits for is
 * left behind.
 */
static void
jobs_drain_check(struct jobs *s)
{
    void (*done)(void *arg) = s->drained;

    if (!s->draining || s->running > 0 || s->in_store > 0 || done == NULL)
        return;
    s->drained = NULL;
    done(s->drained_arg);
}

static void
jobs_lost_cb(void *arg, void *cookie, int started, int reason, const char *why)
{
    struct jobs *s = arg;
    struct job *job = cookie;
    char msg[256];

    if (job->kill_cancel) {
        if (started)
            snprintf(msg, sizeof(msg), "cancelled while running; worker %d was killed",
                     (int)job->worker_pid);
        else
            snprintf(msg, sizeof(msg), "cancelled before worker %d started it",
                     (int)job->worker_pid);
        job_set_error(job, FORQ_ERR_CANCELLED, msg);
        (void)jobs_finish(s, job, FORQ_STATE_CANCELLED);
        jobs_pump(s);
        return;
    }
    if (reason == POOL_LOST_TIMEOUT) {
        snprintf(msg, sizeof(msg), "ran past its timeout of %llu ms; worker %d was killed",
                 (unsigned long long)job->timeout_ms, (int)job->worker_pid);
        jobs_attempt_failed(s, job, FORQ_ERR_JOB_TIMEOUT, msg);
        return;
    }
    if (!started) {
        jobs_put_back(s, job);
        jobs_pump(s); /* another idle worker may take it */
        return;
    }
    snprintf(msg, sizeof(msg), "worker %d %s while running the job", (int)job->worker_pid, why);
    jobs_attempt_failed(s, job, FORQ_ERR_WORKER_LOST, msg);
}

static void
jobs_idle_cb(void *arg)
{
    jobs_pump(arg);
}

/* The pool's callbacks: an outcome, then (while draining) perhaps the end of the drain. */
/* An attempt ended: how long it ran. */
static void
jobs_observe_run(const struct jobs *s, const struct job *job)
{
    uint64_t now = job_now_us();

    if (s->cfg.metrics != NULL && job->started_us != 0 && now >= job->started_us)
        metrics_hist_observe(&s->cfg.metrics->job_run, now - job->started_us);
}

static void
jobs_pool_done(void *arg, void *cookie, int status, const uint8_t *result, size_t len,
               const char *errmsg, uint64_t started_us)
{
    struct job *job = cookie;

    /* It was handed over at job->started_us; in a batch it started later. */
    if (started_us > job->started_us)
        job->started_us = started_us;
    jobs_observe_run(arg, cookie);
    jobs_done_cb(arg, cookie, status, result, len, errmsg);
    jobs_drain_check(arg);
}

static void
jobs_pool_lost(void *arg, void *cookie, int started, int reason, const char *why)
{
    if (started)
        jobs_observe_run(arg, cookie);
    jobs_lost_cb(arg, cookie, started, reason, why);
    jobs_drain_check(arg);
}

static const struct pool_ops jobs_pool_ops = {
    .done = jobs_pool_done,
    .lost = jobs_pool_lost,
    .idle = jobs_idle_cb,
};

/* A job starts: how long it waited in its queue's ready heap (jobs_push). */
static void
jobs_observe_wait(const struct jobs *s, const struct job *job)
{
    if (s->cfg.metrics != NULL && job->started_us >= job->ready_us)
        metrics_hist_observe(&s->cfg.metrics->job_wait, job->started_us - job->ready_us);
}

/*
 * Hand queued jobs to workers, in (priority, arrival) order: each to the
 * worker that starts it soonest (pool_give: an idle one, or the batch of a
 * busy one for quick jobs). Stops at the first job no worker can take, so the
 * order holds.
 */
static void
jobs_pump(struct jobs *s)
{
    struct job *job;
    pid_t pid;
    int e;

    if (s->draining)
        return; /* queued jobs stay queued: the store has them for the next start */
    while ((job = queue_peek(&s->queues)) != NULL) {
        if (task_removed(&s->tasks, job->task)) {
            char msg[FORQ_NAME_MAX + 64];

            (void)queue_pop(&s->queues);
            snprintf(msg, sizeof(msg), "task '%s' was removed by a reload",
                     task_name(&s->tasks, job->task));
            jobs_fail(s, job, FORQ_ERR_UNKNOWN_TASK, msg);
            continue;
        }
        e = pool_give(s->pool, job->id, job->task, job->payload, job->payload_len,
                      job->timeout_ms, job, &pid);
        if (e == FORQ_ERR_LIMIT)
            break; /* it waits for a worker to be free */
        (void)queue_pop(&s->queues); /* job */
        if (e != 0) {
            log_err("cannot hand job %llu to a worker: %s", (unsigned long long)job->id,
                    forq_strerror(e));
            jobs_fail(s, job, e, "cannot hand the job to a worker");
            continue;
        }
        job->state = FORQ_STATE_RUNNING;
        job->attempts++;
        job->started_us = job_now_us();
        jobs_observe_wait(s, job);
        job->worker_pid = pid;
        queue_started(&s->queues, job->queue);
        s->running++;
        (void)jobs_record(s, STORE_RUNNING, job, NULL);
        jobs_room(s, job->queue);
    }
}

/* ------------------------------------------------------------------ the store's answers */

/* A submission's row is committed (it may run now), or it could not be. */
static void
jobs_inserted(struct jobs *s, struct store_rec *rec)
{
    const struct jobs_origin o = jobs_origin_get(rec);
    struct job *job = idmap_get(&s->jobs, rec->job.id);
    char why[256];

    if (job == NULL || !job->storing) { /* cannot happen: storing jobs stay put */
        log_err("the store answered for job %llu, which is not waiting for it",
                (unsigned long long)rec->job.id);
        return;
    }
    job->storing = 0;
    job->queue->storing--;
    if (rec->status != 0) {
        struct queue *q = job->queue;

        snprintf(why, sizeof(why), "the job could not be stored: %s",
                 store_strerror(rec->why_rc));
        jobs_unique_del(s, job);
        idmap_del(&s->jobs, job->id);
        job_free(job);
        s->cfg.hooks.submitted(s->cfg.hooks.arg, &o, FORQ_ERR_STORAGE, 0, 0, why);
        jobs_check_drained(q);
        jobs_room(s, q);
        return;
    }
    job->queue->submitted++;
    s->submitted++;
    /* It is stored, so it is accepted, whatever happens to it next. */
    s->cfg.hooks.submitted(s->cfg.hooks.arg, &o, 0, rec->job.id, 0, NULL);
    jobs_enqueue(s, job);
    jobs_pump(s);
}

/*
 * A SUBMIT named the unique_key of a job whose own INSERT was not committed
 * yet: its lookup, put after that INSERT, comes back after it. The first job
 * is stored (the duplicate gets its id) or it is not (neither is stored).
 */
static void
jobs_dup_answered(struct jobs *s, struct store_rec *rec)
{
    const struct jobs_origin o = jobs_origin_get(rec);

    if (rec->status == 0 && rec->found)
        s->cfg.hooks.submitted(s->cfg.hooks.arg, &o, 0, rec->job.id, 1, NULL);
    else
        s->cfg.hooks.submitted(s->cfg.hooks.arg, &o, FORQ_ERR_STORAGE, 0, 0,
                               "the job holding this unique_key could not be stored");
}

/*
 * A final state is on disk: the job is settled, its waiters hear now. If it
 * could not be written, the outcome is not given out as if it were: waiters
 * get `storage`, the job stays in memory (unsynced: never evicted or purged)
 * and the purge timer writes its FINISH again (jobs_retry_finishes).
 */
static void
jobs_settle(struct jobs *s, struct store_rec *rec)
{
    struct job *job = idmap_get(&s->jobs, rec->job.id);

    if (job == NULL || !job->unsynced)
        return;
    if (rec->status != 0) {
        job->finish_failed = 1;
        s->finish_failed++;
        jobs_wake_waiters(job, FORQ_ERR_STORAGE);
    } else {
        job->unsynced = 0;
        jobs_wake_waiters(job, 0);
        jobs_evict(s);
    }
}

/* Write again the FINISH records the store refused (from the purge timer). */
static void
jobs_retry_finishes(struct jobs *s)
{
    struct job *job;

    TAILQ_FOREACH(job, &s->finished, fin_link) {
        if (s->finish_failed == 0)
            break;
        if (job->finish_failed && jobs_record(s, STORE_FINISH, job, NULL)) {
            job->finish_failed = 0;
            s->finish_failed--;
        }
    }
}

static void
jobs_found(struct jobs *s, struct store_rec *rec)
{
    const struct jobs_origin o = jobs_origin_get(rec);
    const struct store_job *j = &rec->job;
    struct msg_job mj;

    if (rec->status != 0 || !rec->found) {
        if (rec->status != 0)
            log_warn("cannot read job %llu from the store: %s", (unsigned long long)j->id,
                     store_strerror(rec->why_rc));
        s->cfg.hooks.found(s->cfg.hooks.arg, &o, j->id, NULL);
        return;
    }
    memset(&mj, 0, sizeof(mj));
    mj.id = j->id;
    mj.state = j->state;
    mj.task = msg_str_c(j->task);
    mj.queue = msg_str_c(j->queue);
    mj.priority = j->priority;
    mj.attempts = j->attempts;
    mj.created_us = j->created_us;
    mj.started_us = j->started_us;
    mj.finished_us = j->finished_us;
    mj.worker_pid = j->worker_pid;
    if (j->state == FORQ_STATE_SUCCEEDED) {
        mj.result_size = j->result_len;
        mj.result.ptr = (const char *)j->result;
        mj.result.len = j->result_len;
    }
    if (j->err_code != 0) {
        mj.error.code = j->err_code;
        mj.error.msg = msg_str_c(j->err_msg ? j->err_msg : "");
    }
    s->cfg.hooks.found(s->cfg.hooks.arg, &o, j->id, &mj);
}

static void
jobs_store_done_cb(void *arg, struct store_rec *rec)
{
    struct jobs *s = arg;

    s->in_store--;
    switch (rec->op) {
    case STORE_INSERT:
        jobs_inserted(s, rec);
        break;
    case STORE_FINISH:
        jobs_settle(s, rec);
        break;
    case STORE_LOOKUP:
        if (rec->cookie[2] == MSG_OP_SUBMIT)
            jobs_dup_answered(s, rec);
        else
            jobs_found(s, rec);
        break;
    default:
        break;
    }
    if (rec->status != 0 && rec->op != STORE_INSERT && rec->op != STORE_LOOKUP) {
        /* Not durable: after a crash the job may run again (at-least-once). */
        if (s->transition_failures++ % 1000 == 0)
            log_err("cannot record job %llu's transition: %s (%llu such failures)",
                    (unsigned long long)rec->job.id, store_strerror(rec->why_rc),
                    (unsigned long long)s->transition_failures);
    }
    store_rec_free(rec);
    jobs_drain_check(s);
}

/* ------------------------------------------------------------------ recovery */

/* One unfinished job from the store: back into memory, queued. */
static int
jobs_recover_cb(void *arg, const struct store_job *sj)
{
    struct jobs *s = arg;
    const char *key = sj->unique_key;
    struct queue *q;
    struct job *job;
    int task, e;

    task = task_find(&s->tasks, sj->task, strlen(sj->task));
    if ((e = queue_get(&s->queues, sj->queue, strlen(sj->queue), 1, &q)) != 0)
        return e;
    if ((job = job_new(sj->payload, sj->payload_len, key, key ? strlen(key) : 0)) == NULL)
        return FORQ_ERR_NOMEM;
    job->id = job->seq = sj->id;
    job->task = (uint16_t)(task >= 0 ? task : 0);
    job->queue = q;
    job->priority = sj->priority;
    job->delay_ms = sj->delay_ms;
    job->timeout_ms = sj->timeout_ms;
    job->max_retries = sj->max_retries;
    job->attempts = sj->attempts; /* a run cut short by the crash stays counted */
    job->created_us = sj->created_us;
    job->run_at_us = sj->state == FORQ_STATE_SCHEDULED ? sj->run_at_us : 0;
    job->state = FORQ_STATE_QUEUED;
    if (sj->err_code != 0)
        job_set_error(job, sj->err_code, sj->err_msg); /* its last failed attempt */
    if ((e = idmap_put(&s->jobs, job->id, job)) != 0) {
        job_free(job);
        return e;
    }
    if (key != NULL && jobs_unique_add(s, job) != 0) {
        idmap_del(&s->jobs, job->id);
        job_free(job);
        return FORQ_ERR_NOMEM;
    }
    if (task < 0) {
        /* The task was removed from the configuration while the job waited. */
        char msg[FORQ_NAME_MAX + 64];

        snprintf(msg, sizeof(msg), "no task named '%s' any more", sj->task);
        jobs_fail(s, job, FORQ_ERR_UNKNOWN_TASK, msg);
        return 0;
    }
    if (sj->state == FORQ_STATE_RUNNING)
        (void)jobs_record(s, STORE_REQUEUE, job, NULL);
    /* A time that passed while forqd was down: runnable at once. */
    jobs_enqueue(s, job);
    return 0;
}

static int
jobs_open_store(struct jobs *s, char *why, size_t whylen)
{
    struct store_config sc = {s->cfg.data_dir, s->cfg.durability, s->cfg.max_db_bytes, NULL,
                              s->cfg.metrics};
    uint64_t next_id;
    int e;

    if ((e = store_open(&sc, &s->store, why, whylen)) != 0)
        return e;
    /* Every stored job comes back, even if max_queues was lowered since. */
    s->queues.max_queues = SIZE_MAX;
    e = store_load(s->store, jobs_recover_cb, s, &next_id, why, whylen);
    s->queues.max_queues = s->cfg.max_queues;
    if (e != 0) {
        if (why[0] == '\0')
            snprintf(why, whylen, "cannot recover the jobs in %s: %s", s->cfg.data_dir,
                     forq_strerror(e));
        return e;
    }
    s->next_id = next_id > s->next_id ? next_id : s->next_id;
    log_info("store %s/forq.db (durability %s): %llu unfinished job%s recovered, next id %llu",
             s->cfg.data_dir, store_durability_name(s->cfg.durability),
             (unsigned long long)s->queues.queued, s->queues.queued == 1 ? "" : "s",
             (unsigned long long)s->next_id);
    return 0;
}

/* ------------------------------------------------------------------ expiry */

static void
jobs_purge_cb(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *s = arg;
    uint64_t now = job_now_us(), ttl_us = s->cfg.result_ttl_ms * 1000;
    struct job *job;
    size_t n = 0;

    (void)fd;
    (void)what;
    if (s->store != NULL && now > ttl_us)
        store_purge(s->store, now - ttl_us);
    if (s->finish_failed > 0)
        jobs_retry_finishes(s);
    while ((job = TAILQ_FIRST(&s->finished)) != NULL && job->finished_us + ttl_us <= now &&
           !job->unsynced) {
        if (n++ == s->cfg.purge_batch) {
            /*
             * More to do: come back on the next loop turn instead of stalling
             * this one. event_active runs the callback without touching the
             * periodic timeout (event_add would replace it for good).
             */
            event_active(s->purge_ev, EV_TIMEOUT, 0);
            return;
        }
        jobs_forget(s, job);
    }
}

/* ------------------------------------------------------------------ public */

/* The [queue.NAME] sections: queues that exist from the start, with their settings. */
static int
jobs_configure_queues(struct jobs *s, const struct config *conf, char *why, size_t whylen)
{
    struct queue *q;
    int e;

    for (size_t i = 0; i < conf->nqueues; i++) {
        const struct config_queue *cq = &conf->queues[i];

        if ((e = queue_get(&s->queues, cq->name, strlen(cq->name), 1, &q)) != 0) {
            snprintf(why, whylen, "queue '%s': %s", cq->name, forq_strerror(e));
            return e;
        }
        queue_set_limit(&s->queues, q, cq->limit);
        queue_pause(&s->queues, q, cq->paused);
        if ((e = queue_set_order(&s->queues, q, cq->lifo)) != 0)
            return e;
    }
    return 0;
}

void
jobs_config_from(const struct config *cfg, struct jobs_config *out)
{
    *out = (struct jobs_config){
        .workers = cfg->workers,
        .max_payload = cfg->max_payload,
        .max_result = cfg->max_result,
        .max_queued = cfg->max_queued,
        .max_queues = cfg->max_queues,
        .max_name = cfg->max_name,
        .result_ttl_ms = cfg->result_ttl_ms,
        .durability = cfg->durability,
        .data_dir = cfg->data_dir,
        .max_db_bytes = cfg->max_db_bytes,
        .result_cache = cfg->result_cache,
        .retry_backoff_ms = cfg->retry_backoff_ms,
        .retry_backoff_max_ms = cfg->retry_backoff_max_ms,
        .max_jobs_per_worker = cfg->max_jobs_per_worker,
        .memory_limit = cfg->memory_limit,
        .worker_batch = cfg->worker_batch,
        .conf = cfg,
    };
}

int
jobs_new(struct event_base *base, const struct jobs_config *cfg, struct jobs **out, char *why,
         size_t whylen)
{
    struct pool_config pc = {cfg->workers,
                             cfg->max_payload,
                             cfg->max_result,
                             cfg->max_jobs_per_worker,
                             cfg->memory_limit,
                             cfg->worker_batch,
                             JOBS_QUICK_US,
                             JOBS_WAKE_US};
    uint64_t every_ms = cfg->result_ttl_ms;
    struct timeval every;
    struct jobs *s;
    int e;

    *out = NULL;
    why[0] = '\0';
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return FORQ_ERR_NOMEM;
    s->base = base;
    s->cfg = *cfg;
    if (s->cfg.purge_batch == 0)
        s->cfg.purge_batch = JOBS_PURGE_BATCH;
    if (s->cfg.retry_backoff_ms == 0)
        s->cfg.retry_backoff_ms = JOBS_BACKOFF_MS;
    if (s->cfg.retry_backoff_max_ms == 0)
        s->cfg.retry_backoff_max_ms = JOBS_BACKOFF_MAX_MS;
    s->rng = job_now_us() | 1;
    /* Expire results within about a TTL of their due time, but wake rarely. */
    if (every_ms > JOBS_PURGE_EVERY_MS_MAX)
        every_ms = JOBS_PURGE_EVERY_MS_MAX;
    if (every_ms < JOBS_PURGE_EVERY_MS_MIN)
        every_ms = JOBS_PURGE_EVERY_MS_MIN;
    every.tv_sec = (time_t)(every_ms / 1000);
    every.tv_usec = (suseconds_t)(every_ms % 1000) * 1000;
    s->next_id = 1;
    queue_set_init(&s->queues, cfg->max_queues);
    idmap_init(&s->jobs);
    idmap_init(&s->unique);
    TAILQ_INIT(&s->finished);
    if ((s->purge_ev = event_new(base, -1, EV_PERSIST, jobs_purge_cb, s)) == NULL ||
        event_add(s->purge_ev, &every) != 0 ||
        (s->room_ev = event_new(base, -1, 0, jobs_room_cb, s)) == NULL ||
        delay_init(&s->delayed, base, jobs_delay_fire, s) != 0) {
        e = FORQ_ERR_NOMEM;
        goto fail;
    }
    if (cfg->conf != NULL) {
        if ((e = task_table_build(&s->tasks, cfg->conf, why, whylen)) != 0 ||
            (e = jobs_configure_queues(s, cfg->conf, why, whylen)) != 0)
            goto fail;
    } else {
        task_table_init(&s->tasks);
    }
    /* Recover before the fork, so the workers start with the queues known. */
    if (cfg->durability != STORE_OFF && (e = jobs_open_store(s, why, whylen)) != 0)
        goto fail;
    s->cfg.data_dir = NULL; /* borrowed for the start only: a reload frees the config */
    if ((e = pool_new(base, &pc, &s->tasks, &jobs_pool_ops, s, &s->pool)) != 0) {
        snprintf(why, whylen, "cannot start %u workers: %s (%s)", cfg->workers,
                 forq_strerror(e), strerror(errno));
        goto fail;
    }
    /*
     * After the first fork, so the first workers never inherit a running
     * store thread. A worker respawned later is forked while it runs (see
     * DECISIONS.md: tasks must not rely on locks another thread may hold).
     */
    if (s->store != NULL && (e = store_start(s->store, base, jobs_store_done_cb, s)) != 0) {
        snprintf(why, whylen, "cannot start the store thread: %s", forq_strerror(e));
        goto fail;
    }
    jobs_pump(s);
    *out = s;
    return 0;
fail:
    if (why[0] == '\0')
        snprintf(why, whylen, "%s", forq_strerror(e));
    jobs_free(s);
    return e;
}

void
jobs_free(struct jobs *s)
{
    struct job *job;
    size_t pos = 0;

    if (s == NULL)
        return;
    /*
     * Jobs still running (a drain that timed out, or none was allowed) go
     * back to the queue uncharged, so the store starts them again next time.
     * Their workers are killed next, before any outcome can come back.
     */
    while (s->running > 0 && (job = idmap_next(&s->jobs, &pos, NULL)) != NULL)
        if (job->state == FORQ_STATE_RUNNING) {
            log_info("job %llu was still running; queued again for the next start",
                     (unsigned long long)job->id);
            jobs_put_back(s, job);
        }
    pos = 0;
    pool_free(s->pool); /* no more callbacks */
    store_close(s->store); /* writes out what is queued; jobs still own what it reads */
    while ((job = idmap_next(&s->jobs, &pos, NULL)) != NULL) {
        struct jobs_waiter *w;

        while ((w = LIST_FIRST(&job->waiters)) != NULL) {
            LIST_REMOVE(w, job_link);
            jobs_waiter_free(w);
        }
        job_free(job);
    }
    for (size_t i = 0; i < s->queues.nqueues; i++) {
        struct jobs_waiter *w;

        while ((w = LIST_FIRST(&s->queues.all[i]->joiners)) != NULL) {
            LIST_REMOVE(w, job_link);
            jobs_waiter_free(w);
        }
        while ((w = TAILQ_FIRST(&s->queues.all[i]->putters)) != NULL)
            jobs_wait_cancel(w);
    }
    if (s->room_ev != NULL)
        event_free(s->room_ev);
    idmap_fini(&s->jobs);
    idmap_fini(&s->unique);
    task_table_fini(&s->tasks);
    delay_fini(&s->delayed);
    queue_set_fini(&s->queues);
    if (s->purge_ev != NULL)
        event_free(s->purge_ev);
    free(s);
}

/*
 * A SUBMIT whose unique_key an unfinished job holds: answer with that job's
 * id. If the first job's INSERT is still on its way, the answer follows it
 * through the store (jobs_dup_answered), so a duplicate never names a job
 * that could not be stored.
 */
static int
jobs_submit_dup(struct jobs *s, const struct job *dup, const struct jobs_origin *o)
{
    struct store_rec *rec;

    if (!dup->storing) {
        s->cfg.hooks.submitted(s->cfg.hooks.arg, o, 0, dup->id, 1, NULL);
        return 0;
    }
    if ((rec = store_rec_new(STORE_LOOKUP)) == NULL)
        return FORQ_ERR_NOMEM;
    rec->job.id = dup->id;
    jobs_origin_put(rec, o);
    jobs_store_put(s, rec);
    return 0;
}

/* A name a request uses is within max_name (the protocol caps it at FORQ_NAME_MAX already). */
static int
jobs_name_ok(const struct jobs *s, const char *what, struct msg_str name, char *why, size_t whylen)
{
    size_t max = s->cfg.max_name ? s->cfg.max_name : FORQ_NAME_MAX;

    if (name.len <= max)
        return 1;
    snprintf(why, whylen, "%s name of %zu bytes is longer than this server's max_name (%zu)",
             what, name.len, max);
    return 0;
}

/* The queue a SUBMIT names. */
static struct msg_str
jobs_queue_name(const struct msg_submit *req)
{
    return req->queue.len ? req->queue : msg_str_c("default");
}

/* jobs_submit; admitted: req is a blocked SUBMIT whose turn has come (jobs_room_cb). */
static int
jobs_submit_req(struct jobs *s, const struct msg_submit *req, const struct jobs_origin *o,
                int admitted, char *why, size_t whylen)
{
    struct msg_str qname = jobs_queue_name(req);
    struct queue *q;
    struct job *job, *dup;
    int task, e;

    if (s->draining) {
        snprintf(why, whylen, "forqd is shutting down; submit again once it is back");
        return FORQ_ERR_SHUTDOWN;
    }
    if (!jobs_name_ok(s, "task", req->task, why, whylen) ||
        !jobs_name_ok(s, "queue", qname, why, whylen))
        return FORQ_ERR_BAD_REQUEST;
    if ((task = task_find(&s->tasks, req->task.ptr, req->task.len)) < 0) {
        snprintf(why, whylen, "no task named '%.*s'", (int)req->task.len, req->task.ptr);
        return FORQ_ERR_UNKNOWN_TASK;
    }
    if (req->payload.len > s->cfg.max_payload) {
        snprintf(why, whylen, "payload of %zu bytes exceeds the limit of %zu", req->payload.len,
                 s->cfg.max_payload);
        return FORQ_ERR_TOO_BIG;
    }
    if ((e = queue_get(&s->queues, qname.ptr, qname.len, 1, &q)) != 0) {
        if (e == FORQ_ERR_LIMIT)
            snprintf(why, whylen, "too many queues (limit %zu)", s->cfg.max_queues);
        return e;
    }
    if (req->unique_key.len > 0 &&
        memchr(req->unique_key.ptr, '\0', req->unique_key.len) != NULL) {
        snprintf(why, whylen, "unique_key must not contain a NUL character");
        return FORQ_ERR_BAD_REQUEST;
    }
    if (req->unique_key.len > 0 &&
        (dup = jobs_unique_find(s, req->unique_key.ptr, req->unique_key.len)) != NULL)
        return jobs_submit_dup(s, dup, o);
    if (!jobs_has_room(s, q)) {
        snprintf(why, whylen, "queue '%s' holds its limit of %zu jobs", q->name,
                 s->cfg.max_queued);
        return FORQ_ERR_QUEUE_FULL;
    }
    if (q->nputters > 0 && !admitted) { /* first come, first served */
        snprintf(why, whylen, "queue '%s' is full: %zu blocked submission%s ahead", q->name,
                 q->nputters, q->nputters == 1 ? "" : "s");
        return FORQ_ERR_QUEUE_FULL;
    }
    if ((job = job_new(req->payload.ptr, req->payload.len, req->unique_key.ptr,
                       req->unique_key.len)) == NULL)
        return FORQ_ERR_NOMEM;
    job->id = s->next_id;
    job->seq = job->id; /* ids are handed out in arrival order */
    job->task = (uint16_t)task;
    job->queue = q;
    job->priority = req->priority;
    job->delay_ms = req->delay_ms;
    job->timeout_ms = req->timeout_ms;
    job->max_retries = req->max_retries;
    job->created_us = job_now_us();
    job->run_at_us = req->delay_ms > 0 ? job->created_us + req->delay_ms * 1000 : 0;
    job->state = req->delay_ms > 0 ? FORQ_STATE_SCHEDULED : FORQ_STATE_QUEUED;
    if ((e = idmap_put(&s->jobs, job->id, job)) != 0) {
        job_free(job);
        return e;
    }
    if (job->unique_key != NULL && (e = jobs_unique_add(s, job)) != 0) {
        idmap_del(&s->jobs, job->id);
        job_free(job);
        return e;
    }
    if (s->store != NULL) {
        /* It runs, and its submitter hears, once the store has it (jobs_inserted). */
        job->storing = 1;
        if (!jobs_record(s, STORE_INSERT, job, o)) {
            jobs_unique_del(s, job);
            idmap_del(&s->jobs, job->id);
            job_free(job);
            return FORQ_ERR_NOMEM;
        }
        q->storing++;
        s->next_id++;
        return 0;
    }
    s->next_id++;
    q->submitted++;
    s->submitted++;
    s->cfg.hooks.submitted(s->cfg.hooks.arg, o, 0, job->id, 0, NULL);
    jobs_enqueue(s, job);
    jobs_pump(s);
    return 0;
}

int
jobs_submit(struct jobs *s, const struct msg_submit *req, const struct jobs_origin *o,
            char *why, size_t whylen)
{
    return jobs_submit_req(s, req, o, 0, why, whylen);
}

const struct job *
jobs_job(struct jobs *s, uint64_t id)
{
    struct job *job = idmap_get(&s->jobs, id);

    return job != NULL && !job->storing ? job : NULL;
}

int
jobs_lookup(struct jobs *s, uint64_t id, const struct jobs_origin *o)
{
    struct store_rec *rec;

    if (s->store == NULL || id == 0 || id >= s->next_id || idmap_get(&s->jobs, id) != NULL)
        return FORQ_ERR_NOT_FOUND;
    if ((rec = store_rec_new(STORE_LOOKUP)) == NULL)
        return FORQ_ERR_NOMEM;
    rec->job.id = id;
    jobs_origin_put(rec, o);
    jobs_store_put(s, rec);
    return 0;
}

int
jobs_settled(const struct job *job)
{
    return forq_state_is_final(job->state) && !job->unsynced;
}

int
jobs_unstored(const struct job *job)
{
    return job->finish_failed;
}

int
jobs_cancel(struct jobs *s, uint64_t id, int running, const struct job **out, char *why,
            size_t whylen)
{
    struct job *job = (struct job *)jobs_job(s, id);

    *out = job;
    if (job == NULL) {
        snprintf(why, whylen, "no job %llu", (unsigned long long)id);
        return FORQ_ERR_NOT_FOUND;
    }
    switch (job->state) {
    case FORQ_STATE_CANCELLED:
        return 0;
    case FORQ_STATE_QUEUED:
    case FORQ_STATE_SCHEDULED:
        queue_remove(&s->queues, job);
        delay_remove(&s->delayed, job);
        job_set_error(job, FORQ_ERR_CANCELLED, "cancelled by request");
        *out = jobs_finish(s, job, FORQ_STATE_CANCELLED);
        return 0;
    case FORQ_STATE_RUNNING:
        if (!running)
            break;
        /*
         * It ends cancelled once its worker is dead (jobs_lost_cb). A job
         * that has just finished is not killed: its outcome stands, and the
         * caller, waiting for it to settle, answers `state`.
         */
        if (!job->kill_cancel && pool_kill(s->pool, job->id) == 0)
            job->kill_cancel = 1;
        return 0;
    default:
        break;
    }
    {
        snprintf(why, whylen, "job %llu is %s; only a job that has not started can be cancelled%s",
                 (unsigned long long)id, forq_state_name(job->state),
                 job->state == FORQ_STATE_RUNNING ? " (ask with running to kill it)" : "");
        return FORQ_ERR_STATE;
    }
}

static void
jobs_wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct jobs_waiter *w = arg;

    (void)fd;
    (void)what;
    LIST_REMOVE(w, job_link);
    w->fn(w->arg, w, w->job, FORQ_ERR_TIMEOUT);
    jobs_waiter_free(w);
}

/* A waiter with its timer armed (timeout_ms < 0: none); NULL on ENOMEM. */
static struct jobs_waiter *
jobs_waiter_new(struct jobs *s, int64_t timeout_ms, jobs_wait_fn fn, void *arg, uint64_t rid)
{
    struct jobs_waiter *w;

    if ((w = calloc(1, sizeof(*w))) == NULL)
        return NULL;
    w->fn = fn;
    w->arg = arg;
    w->rid = rid;
    if (timeout_ms >= 0) {
        struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};

        if ((w->timer = evtimer_new(s->base, jobs_wait_timeout_cb, w)) == NULL ||
            evtimer_add(w->timer, &tv) != 0) {
            jobs_waiter_free(w);
            return NULL;
        }
    }
    return w;
}

int
jobs_wait(struct jobs *s, uint64_t id, int64_t timeout_ms, jobs_wait_fn fn, void *arg,
           uint64_t rid, struct jobs_waiter **out)
{
    struct job *job = (struct job *)jobs_job(s, id);
    struct jobs_waiter *w;

    *out = NULL;
    if (job == NULL)
        return FORQ_ERR_NOT_FOUND;
    if (jobs_settled(job))
        return FORQ_ERR_STATE;
    if ((w = jobs_waiter_new(s, timeout_ms, fn, arg, rid)) == NULL)
        return FORQ_ERR_NOMEM;
    w->job = job;
    LIST_INSERT_HEAD(&job->waiters, w, job_link);
    *out = w;
    return 0;
}

int
jobs_join(struct jobs *s, struct msg_str name, int64_t timeout_ms, jobs_wait_fn fn, void *arg,
          uint64_t rid, struct jobs_waiter **out)
{
    struct queue *q;
    struct jobs_waiter *w;

    *out = NULL;
    if (queue_get(&s->queues, name.ptr, name.len, 0, &q) != 0 || queue_unfinished(q) == 0)
        return FORQ_ERR_STATE;
    if ((w = jobs_waiter_new(s, timeout_ms, fn, arg, rid)) == NULL)
        return FORQ_ERR_NOMEM;
    w->queue = q;
    LIST_INSERT_HEAD(&q->joiners, w, job_link);
    *out = w;
    return 0;
}

/* ------------------------------------------------------------------ blocked SUBMITs */

/* A blocked SUBMIT's own copy of its request: the strings live in bytes[]. */
struct jobs_put {
    struct jobs *s;
    struct msg_submit req;
    struct jobs_origin o;
    char bytes[];
};

/* Copy src into *dst, at *at; *at moves past it. */
static void
jobs_put_str(struct msg_str *dst, struct msg_str src, char **at)
{
    if (src.len > 0)
        memcpy(*at, src.ptr, src.len);
    dst->ptr = *at;
    dst->len = src.len;
    *at += src.len;
}

static struct jobs_put *
jobs_put_new(struct jobs *s, const struct msg_submit *req, const struct jobs_origin *o)
{
    size_t n = req->task.len + req->payload.len + req->queue.len + req->unique_key.len;
    struct jobs_put *p;
    char *at;

    if ((p = malloc(sizeof(*p) + n)) == NULL)
        return NULL;
    p->s = s;
    p->req = *req;
    p->o = *o;
    at = p->bytes;
    jobs_put_str(&p->req.task, req->task, &at);
    jobs_put_str(&p->req.payload, req->payload, &at);
    jobs_put_str(&p->req.queue, req->queue, &at);
    jobs_put_str(&p->req.unique_key, req->unique_key, &at);
    return p;
}

/* Take a blocked SUBMIT off its queue's list. */
static void
jobs_put_remove(struct jobs_waiter *w)
{
    TAILQ_REMOVE(&w->queue->putters, w, put_link);
    w->queue->nputters--;
}

/* Take w off its queue's list and tell its owner it is gone. */
static void
jobs_put_unlink(struct jobs_waiter *w)
{
    jobs_put_remove(w);
    w->fn(w->arg, w, NULL, 0);
}

/* Answer a blocked SUBMIT with an error and free it. */
static void
jobs_put_refuse(struct jobs *s, struct jobs_waiter *w, int code, const char *why)
{
    jobs_put_unlink(w);
    s->cfg.hooks.submitted(s->cfg.hooks.arg, &w->put->o, code, 0, 0, why);
    jobs_waiter_free(w);
}

static void
jobs_put_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct jobs_waiter *w = arg;
    struct jobs *s = w->put->s;
    char why[FORQ_NAME_MAX + 96];

    (void)fd;
    (void)what;
    snprintf(why, sizeof(why), "queue '%s' stayed full (limit %zu jobs) for %llu ms",
             w->queue->name, s->cfg.max_queued, (unsigned long long)w->put->req.block_ms);
    jobs_put_refuse(s, w, FORQ_ERR_QUEUE_FULL, why);
}

/* Queues have room: blocked SUBMITs take it, oldest first. */
static void
jobs_room_cb(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *s = arg;
    char why[256];
    int e;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < s->queues.nqueues; i++) {
        struct queue *q = s->queues.all[i];
        struct jobs_waiter *w;

        while (!s->draining && (w = TAILQ_FIRST(&q->putters)) != NULL && jobs_has_room(s, q)) {
            jobs_put_unlink(w);
            why[0] = '\0';
            e = jobs_submit_req(s, &w->put->req, &w->put->o, 1, why, sizeof(why));
            if (e != 0) /* e.g. its task was removed by a reload meanwhile */
                s->cfg.hooks.submitted(s->cfg.hooks.arg, &w->put->o, e, 0, 0,
                                       why[0] ? why : NULL);
            jobs_waiter_free(w);
        }
    }
}

/* Refuse every blocked SUBMIT (forqd is draining). */
static void
jobs_put_refuse_all(struct jobs *s, int code, const char *why)
{
    for (size_t i = 0; i < s->queues.nqueues; i++) {
        struct jobs_waiter *w;

        while ((w = TAILQ_FIRST(&s->queues.all[i]->putters)) != NULL)
            jobs_put_refuse(s, w, code, why);
    }
}

int
jobs_submit_block(struct jobs *s, const struct msg_submit *req, const struct jobs_origin *o,
                  jobs_wait_fn fn, void *arg, struct jobs_waiter **out)
{
    struct msg_str qname = jobs_queue_name(req);
    struct timeval tv = {(time_t)(req->block_ms / 1000),
                         (suseconds_t)(req->block_ms % 1000) * 1000};
    struct jobs_waiter *w;
    struct queue *q;

    *out = NULL;
    /* jobs_submit found it full, so it exists. */
    if (queue_get(&s->queues, qname.ptr, qname.len, 0, &q) != 0)
        return FORQ_ERR_NOT_FOUND;
    if ((w = jobs_waiter_new(s, -1, fn, arg, o->rid)) == NULL)
        return FORQ_ERR_NOMEM;
    w->queue = q;
    if ((w->put = jobs_put_new(s, req, o)) == NULL ||
        (w->timer = evtimer_new(s->base, jobs_put_timeout_cb, w)) == NULL ||
        evtimer_add(w->timer, &tv) != 0) {
        jobs_waiter_free(w);
        return FORQ_ERR_NOMEM;
    }
    TAILQ_INSERT_TAIL(&q->putters, w, put_link);
    q->nputters++;
    *out = w;
    return 0;
}

uint64_t
jobs_queue_unfinished(struct jobs *s, struct msg_str name)
{
    struct queue *q;

    return queue_get(&s->queues, name.ptr, name.len, 0, &q) == 0 ? queue_unfinished(q) : 0;
}

/* Fill out with q's figures; strings point into q. */
static void
jobs_queue_stats(const struct queue *q, struct msg_queue_stats *qs)
{
    memset(qs, 0, sizeof(*qs));
    qs->name = msg_str_c(q->name);
    qs->queued = queue_len(q);
    qs->running = q->running;
    qs->scheduled = q->scheduled;
    qs->submitted = q->submitted;
    qs->succeeded = q->succeeded;
    qs->failed = q->failed;
    qs->cancelled = q->cancelled;
    qs->retried = q->retried;
    qs->blocked = q->nputters;
    qs->paused = q->paused;
    qs->limit = q->limit;
    qs->order = msg_str_c(q->lifo ? "lifo" : "fifo");
}

int
jobs_queue(struct jobs *s, const struct msg_queue_req *req, struct msg_queue_stats *out,
           char *why, size_t whylen)
{
    const struct msg_str *a = &req->action;
    int lifo = -1, e;
    struct queue *q;

    if (msg_str_eq(req->order, "lifo"))
        lifo = 1;
    else if (msg_str_eq(req->order, "fifo"))
        lifo = 0;
    else if (req->order.len > 0) {
        snprintf(why, whylen, "order: expected fifo or lifo, got '%.*s'", (int)req->order.len,
                 req->order.ptr);
        return FORQ_ERR_BAD_REQUEST;
    }
    if (!msg_str_eq(*a, "info") && !msg_str_eq(*a, "pause") && !msg_str_eq(*a, "resume") &&
        !msg_str_eq(*a, "set")) {
        snprintf(why, whylen, "action: expected info, pause, resume or set, got '%.*s'",
                 (int)a->len, a->ptr);
        return FORQ_ERR_BAD_REQUEST;
    }
    if (msg_str_eq(*a, "set") && req->limit < 0 && lifo < 0) {
        snprintf(why, whylen, "set: give a limit, an order or both");
        return FORQ_ERR_BAD_REQUEST;
    }
    if (!jobs_name_ok(s, "queue", req->queue, why, whylen))
        return FORQ_ERR_BAD_REQUEST;
    if ((e = queue_get(&s->queues, req->queue.ptr, req->queue.len, 1, &q)) != 0) {
        if (e == FORQ_ERR_LIMIT)
            snprintf(why, whylen, "too many queues (limit %zu)", s->cfg.max_queues);
        return e;
    }
    if (msg_str_eq(*a, "pause") || msg_str_eq(*a, "resume"))
        queue_pause(&s->queues, q, msg_str_eq(*a, "pause"));
    if (msg_str_eq(*a, "set")) {
        if (lifo >= 0 && (e = queue_set_order(&s->queues, q, lifo)) != 0)
            return e;
        if (req->limit >= 0)
            queue_set_limit(&s->queues, q, (uint32_t)req->limit);
    }
    jobs_pump(s); /* a resumed queue or a raised limit may start jobs now */
    jobs_queue_stats(q, out);
    return 0;
}

void
jobs_wait_cancel(struct jobs_waiter *w)
{
    if (w->put != NULL)
        jobs_put_remove(w);
    else
        LIST_REMOVE(w, job_link);
    jobs_waiter_free(w);
}

void
jobs_snapshot(const struct jobs *s, const struct job *job, int with_result, struct msg_job *out)
{
    memset(out, 0, sizeof(*out));
    out->id = job->id;
    out->state = job->state;
    out->task = msg_str_c(task_name(&s->tasks, job->task));
    out->queue = msg_str_c(job->queue->name);
    out->priority = job->priority;
    out->attempts = job->attempts;
    out->created_us = job->created_us;
    out->started_us = job->started_us;
    out->finished_us = job->finished_us;
    out->worker_pid = job->worker_pid;
    if (job->state == FORQ_STATE_SUCCEEDED) {
        out->result_size = job->result_len;
        if (with_result) {
            out->result.ptr = (const char *)job->result;
            out->result.len = job->result_len;
        }
    }
    out->max_retries = job->max_retries;
    out->timeout_ms = job->timeout_ms;
    out->run_at_us = job->state == FORQ_STATE_SCHEDULED ? job->run_at_us : 0;
    out->unique_key = msg_str_c(job->unique_key);
    if (job->err_code != 0) {
        /* A final error, or the last failed attempt of a job that will run again. */
        struct msg_error *e = forq_state_is_final(job->state) ? &out->error : &out->last_error;

        e->code = job->err_code;
        e->msg = msg_str_c(job->err_msg);
    }
}

/* ------------------------------------------------------------------ service */

void
jobs_drain(struct jobs *s, void (*done)(void *arg), void *arg)
{
    s->draining = 1;
    s->drained = done;
    s->drained_arg = arg;
    jobs_put_refuse_all(s, FORQ_ERR_SHUTDOWN, "forqd is shutting down; submit again once it is back");
    log_info("draining: %llu job%s running, %llu queued (they stay queued)",
             (unsigned long long)s->running, s->running == 1 ? "" : "s",
             (unsigned long long)s->queues.queued);
    jobs_drain_check(s);
}

uint64_t
jobs_store_pending(const struct jobs *s)
{
    return s->in_store;
}

void
jobs_counts(const struct jobs *s, uint64_t *queued, uint64_t *running, uint64_t *scheduled)
{
    *queued = s->queues.queued;
    *running = s->running;
    *scheduled = delay_len(&s->delayed);
}

int
jobs_reconfigure(struct jobs *s, const struct jobs_config *cfg, char *why, size_t whylen)
{
    int tasks_changed = cfg->conf != NULL && s->cfg.conf != NULL &&
                        !config_tasks_equal(cfg->conf, s->cfg.conf);
    int e;

    /*
     * Rebuilt even when unchanged: the table borrows names and argv from the
     * config, and the caller frees the old one. Indexes stay put either way.
     */
    if (cfg->conf != NULL && (e = task_table_rebuild(&s->tasks, cfg->conf, why, whylen)) != 0)
        return e;
    /* Nothing below can fail in a way that leaves half a reload behind. */
    s->cfg.max_queued = cfg->max_queued;
    s->cfg.max_queues = s->queues.max_queues = cfg->max_queues;
    s->cfg.max_name = cfg->max_name;
    s->cfg.result_ttl_ms = cfg->result_ttl_ms;
    s->cfg.result_cache = cfg->result_cache;
    s->cfg.retry_backoff_ms = cfg->retry_backoff_ms ? cfg->retry_backoff_ms : JOBS_BACKOFF_MS;
    s->cfg.retry_backoff_max_ms =
        cfg->retry_backoff_max_ms ? cfg->retry_backoff_max_ms : JOBS_BACKOFF_MAX_MS;
    s->cfg.max_jobs_per_worker = cfg->max_jobs_per_worker;
    s->cfg.memory_limit = cfg->memory_limit;
    s->cfg.worker_batch = cfg->worker_batch;
    s->cfg.conf = cfg->conf;
    pool_set_limits(s->pool, cfg->max_jobs_per_worker, cfg->memory_limit, cfg->worker_batch);
    if (tasks_changed) {
        log_info("task definitions changed: %zu tasks; replacing the workers", s->tasks.ntasks);
        pool_retire_all(s->pool);
    }
    if (cfg->conf != NULL && (e = jobs_configure_queues(s, cfg->conf, why, whylen)) != 0)
        log_warn("reload: %s", why); /* e.g. too many queues: the others are set */
    for (size_t i = 0; i < s->queues.nqueues; i++)
        jobs_room(s, s->queues.all[i]); /* a raised max_queued lets blocked SUBMITs in */
    jobs_pump(s); /* a resumed queue or a raised limit may start jobs now */
    return 0;
}

int
jobs_stats(struct jobs *s, struct msg_stats *st)
{
    size_t i, nw = pool_size(s->pool);

    st->queued = s->queues.queued;
    st->running = s->running;
    st->submitted = s->submitted;
    st->succeeded = s->succeeded;
    st->failed = s->failed;
    st->cancelled = s->cancelled;
    st->scheduled = delay_len(&s->delayed);
    st->retried = s->retried;
    st->durability = msg_str_c(store_durability_name(s->cfg.durability));
    if (s->store != NULL) {
        struct store_stats ss;

        store_stats(s->store, &ss);
        st->store_commits = ss.commits;
        st->store_fsyncs = ss.fsyncs;
        st->store_records = ss.records;
        st->store_failures = ss.failures + s->store_failures;
        st->store_max_batch = ss.max_batch;
        st->store_commit_us = ss.commit_us;
        st->store_purged = ss.purged;
    }
    st->queues = calloc(s->queues.nqueues ? s->queues.nqueues : 1, sizeof(*st->queues));
    st->workers = calloc(nw, sizeof(*st->workers));
    if (st->queues == NULL || st->workers == NULL) {
        jobs_stats_free(st);
        return FORQ_ERR_NOMEM;
    }
    st->nqueues = s->queues.nqueues;
    for (i = 0; i < st->nqueues; i++)
        jobs_queue_stats(s->queues.all[i], &st->queues[i]);
    st->nworkers = nw;
    for (i = 0; i < nw; i++) {
        struct pool_worker_info wi;

        pool_info(s->pool, i, &wi);
        st->workers[i].slot = wi.slot;
        st->workers[i].pid = wi.pid;
        st->workers[i].state = msg_str_c(wi.state);
        st->workers[i].job = wi.job;
        st->workers[i].jobs_done = wi.jobs_done;
        st->workers[i].restarts = wi.restarts;
    }
    return 0;
}

void
jobs_stats_free(struct msg_stats *st)
{
    free(st->queues);
    free(st->workers);
    st->queues = NULL;
    st->workers = NULL;
    st->nqueues = st->nworkers = 0;
}
