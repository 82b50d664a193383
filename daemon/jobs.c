/*
 * jobs.c — job lifecycle on the loop thread: the job table, dispatch from
 * the queues to idle workers, outcomes from the pool, waits and expiry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "forq.h"
#include "idmap.h"
#include "job.h"
#include "log.h"
#include "pool.h"
#include "queue.h"
#include "jobs.h"
#include "task.h"

#define JOBS_PURGE_EVERY_MS_MAX 10000 /* look for expired results at least this often */
#define JOBS_PURGE_EVERY_MS_MIN 100
#define JOBS_PURGE_BATCH        10000 /* default jobs freed per purge turn */

struct jobs {
    struct event_base *base;
    struct jobs_config cfg;
    struct task_table tasks; /* built before the fork; workers hold a copy */
    struct queue_set queues;
    struct pool *pool;
    struct idmap jobs;       /* id -> job, every state */
    uint64_t next_id;        /* ids start at 1 and are never reused */
    TAILQ_HEAD(, job) finished; /* oldest first: expiry pops from the head */
    struct event *purge_ev;

    uint64_t running;
    uint64_t submitted, succeeded, failed, cancelled;
};

static void jobs_pump(struct jobs *s);

/* ------------------------------------------------------------------ finishing */

static void
jobs_waiter_free(struct jobs_waiter *w)
{
    if (w->timer != NULL)
        event_free(w->timer);
    free(w);
}

/*
 * Move a job to a final state and answer everyone waiting for it. Its payload
 * is dropped, which may move it: returns its address from now on.
 */
static struct job *
jobs_finish(struct jobs *s, struct job *job, int state)
{
    struct jobs_waiter *w;
    struct queue *q = job->queue;
    struct job *moved;

    if (job->state == FORQ_STATE_RUNNING) {
        q->running--;
        s->running--;
    }
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
    while ((w = LIST_FIRST(&job->waiters)) != NULL) {
        LIST_REMOVE(w, job_link);
        w->fn(w->arg, w, job, 0);
        jobs_waiter_free(w);
    }
    /* Only the id map points at it now (the pool and the queue let go of it). */
    moved = job_shrink(job);
    if (moved != job)
        idmap_put(&s->jobs, moved->id, moved); /* replaces: cannot fail */
    TAILQ_INSERT_TAIL(&s->finished, moved, fin_link);
    return moved;
}

static void
jobs_fail(struct jobs *s, struct job *job, int code, const char *msg)
{
    job_set_error(job, code, msg);
    (void)jobs_finish(s, job, FORQ_STATE_FAILED);
}

/* ------------------------------------------------------------------ pool callbacks */

static void
jobs_done_cb(void *arg, void *cookie, int status, const uint8_t *result, size_t len,
              const char *errmsg)
{
    struct jobs *s = arg;
    struct job *job = cookie;

    if (status != 0) {
        jobs_fail(s, job, status, errmsg[0] ? errmsg : NULL);
        return;
    }
    if (job_set_result(job, result, len) != 0) {
        jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory storing the result");
        return;
    }
    (void)jobs_finish(s, job, FORQ_STATE_SUCCEEDED);
}

static void
jobs_lost_cb(void *arg, void *cookie, int started, const char *why)
{
    struct jobs *s = arg;
    struct job *job = cookie;
    char msg[256];

    if (!started) {
        /* It never ran: put it back where it was (its seq keeps its place). */
        job->queue->running--;
        s->running--;
        job->attempts--;
        job->started_us = 0;
        job->worker_pid = 0;
        job->state = FORQ_STATE_QUEUED;
        if (queue_push(&s->queues, job) != 0)
            jobs_fail(s, job, FORQ_ERR_NOMEM, "out of memory requeueing the job");
        jobs_pump(s); /* another idle worker may take it */
        return;
    }
    snprintf(msg, sizeof(msg), "worker %d %s while running the job", (int)job->worker_pid, why);
    jobs_fail(s, job, FORQ_ERR_WORKER_LOST, msg);
}

static void
jobs_idle_cb(void *arg)
{
    jobs_pump(arg);
}

static const struct pool_ops jobs_pool_ops = {
    .done = jobs_done_cb,
    .lost = jobs_lost_cb,
    .idle = jobs_idle_cb,
};

/* Hand queued jobs to idle workers, in (priority, arrival) order. */
static void
jobs_pump(struct jobs *s)
{
    struct job *job;
    pid_t pid;
    int e;

    while (pool_idle(s->pool) > 0 && (job = queue_pop(&s->queues)) != NULL) {
        e = pool_run(s->pool, job->id, job->task, job->payload, job->payload_len, job, &pid);
        if (e != 0) {
            log_err("cannot hand job %llu to a worker: %s", (unsigned long long)job->id,
                    forq_strerror(e));
            jobs_fail(s, job, e, "cannot hand the job to a worker");
            continue;
        }
        job->state = FORQ_STATE_RUNNING;
        job->attempts++;
        job->started_us = job_now_us();
        job->worker_pid = pid;
        job->queue->running++;
        s->running++;
    }
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
    while ((job = TAILQ_FIRST(&s->finished)) != NULL && job->finished_us + ttl_us <= now) {
        if (n++ == s->cfg.purge_batch) {
            /*
             * More to do: come back on the next loop turn instead of stalling
             * this one. event_active runs the callback without touching the
             * periodic timeout (event_add would replace it for good).
             */
            event_active(s->purge_ev, EV_TIMEOUT, 0);
            return;
        }
        TAILQ_REMOVE(&s->finished, job, fin_link);
        idmap_del(&s->jobs, job->id);
        job_free(job);
    }
}

/* ------------------------------------------------------------------ public */

int
jobs_new(struct event_base *base, const struct jobs_config *cfg, struct jobs **out)
{
    struct pool_config pc = {cfg->workers, cfg->max_payload, cfg->max_result};
    uint64_t every_ms = cfg->result_ttl_ms;
    struct timeval every;
    struct jobs *s;
    int e;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return FORQ_ERR_NOMEM;
    s->base = base;
    s->cfg = *cfg;
    if (s->cfg.purge_batch == 0)
        s->cfg.purge_batch = JOBS_PURGE_BATCH;
    /* Expire results within about a TTL of their due time, but wake rarely. */
    if (every_ms > JOBS_PURGE_EVERY_MS_MAX)
        every_ms = JOBS_PURGE_EVERY_MS_MAX;
    if (every_ms < JOBS_PURGE_EVERY_MS_MIN)
        every_ms = JOBS_PURGE_EVERY_MS_MIN;
    every.tv_sec = (time_t)(every_ms / 1000);
    every.tv_usec = (suseconds_t)(every_ms % 1000) * 1000;
    s->next_id = 1;
    task_table_init(&s->tasks);
    queue_set_init(&s->queues, cfg->max_queues);
    idmap_init(&s->jobs);
    TAILQ_INIT(&s->finished);
    if ((s->purge_ev = event_new(base, -1, EV_PERSIST, jobs_purge_cb, s)) == NULL ||
        event_add(s->purge_ev, &every) != 0) {
        e = FORQ_ERR_NOMEM;
        goto fail;
    }
    if ((e = pool_new(base, &pc, &s->tasks, &jobs_pool_ops, s, &s->pool)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
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
    pool_free(s->pool); /* first: no more callbacks */
    while ((job = idmap_next(&s->jobs, &pos, NULL)) != NULL) {
        struct jobs_waiter *w;

        while ((w = LIST_FIRST(&job->waiters)) != NULL) {
            LIST_REMOVE(w, job_link);
            jobs_waiter_free(w);
        }
        job_free(job);
    }
    idmap_fini(&s->jobs);
    queue_set_fini(&s->queues);
    if (s->purge_ev != NULL)
        event_free(s->purge_ev);
    free(s);
}

int
jobs_submit(struct jobs *s, const struct msg_submit *req, uint64_t *id, char *why,
             size_t whylen)
{
    struct msg_str qname = req->queue.len ? req->queue : msg_str_c("default");
    struct queue *q;
    struct job *job;
    int task, e;

    *id = 0;
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
    if (queue_len(q) >= s->cfg.max_queued) {
        snprintf(why, whylen, "queue '%s' holds its limit of %zu jobs", q->name,
                 s->cfg.max_queued);
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
    if ((e = idmap_put(&s->jobs, job->id, job)) != 0 ||
        (e = queue_push(&s->queues, job)) != 0) {
        idmap_del(&s->jobs, job->id);
        job_free(job);
        return e;
    }
    s->next_id++;
    q->submitted++;
    s->submitted++;
    *id = job->id;
    jobs_pump(s);
    return 0;
}

const struct job *
jobs_job(struct jobs *s, uint64_t id)
{
    return idmap_get(&s->jobs, id);
}

int
jobs_cancel(struct jobs *s, uint64_t id, const struct job **out, char *why, size_t whylen)
{
    struct job *job = idmap_get(&s->jobs, id);

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
        job_set_error(job, FORQ_ERR_CANCELLED, "cancelled by request");
        *out = jobs_finish(s, job, FORQ_STATE_CANCELLED);
        return 0;
    default:
        snprintf(why, whylen, "job %llu is %s; only a job that has not started can be cancelled",
                 (unsigned long long)id, forq_state_name(job->state));
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

int
jobs_wait(struct jobs *s, uint64_t id, int64_t timeout_ms, jobs_wait_fn fn, void *arg,
           uint64_t rid, struct jobs_waiter **out)
{
    struct job *job = idmap_get(&s->jobs, id);
    struct jobs_waiter *w;

    *out = NULL;
    if (job == NULL)
        return FORQ_ERR_NOT_FOUND;
    if (forq_state_is_final(job->state))
        return FORQ_ERR_STATE;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return FORQ_ERR_NOMEM;
    w->job = job;
    w->fn = fn;
    w->arg = arg;
    w->rid = rid;
    if (timeout_ms >= 0) {
        struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};

        if ((w->timer = evtimer_new(s->base, jobs_wait_timeout_cb, w)) == NULL ||
            evtimer_add(w->timer, &tv) != 0) {
            jobs_waiter_free(w);
            return FORQ_ERR_NOMEM;
        }
    }
    LIST_INSERT_HEAD(&job->waiters, w, job_link);
    *out = w;
    return 0;
}

void
jobs_wait_cancel(struct jobs_waiter *w)
{
    LIST_REMOVE(w, job_link);
    jobs_waiter_free(w);
}

const char *
jobs_task_name(const struct jobs *s, const struct job *job)
{
    return task_name(&s->tasks, job->task);
}

const char *
jobs_queue_name(const struct job *job)
{
    return job->queue->name;
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
    st->queues = calloc(s->queues.nqueues ? s->queues.nqueues : 1, sizeof(*st->queues));
    st->workers = calloc(nw, sizeof(*st->workers));
    if (st->queues == NULL || st->workers == NULL) {
        jobs_stats_free(st);
        return FORQ_ERR_NOMEM;
    }
    st->nqueues = s->queues.nqueues;
    for (i = 0; i < st->nqueues; i++) {
        const struct queue *q = s->queues.all[i];
        struct msg_queue_stats *qs = &st->queues[i];

        qs->name = msg_str_c(q->name);
        qs->queued = queue_len(q);
        qs->running = q->running;
        qs->submitted = q->submitted;
        qs->succeeded = q->succeeded;
        qs->failed = q->failed;
        qs->cancelled = q->cancelled;
    }
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
