/*
 * watch.c — WATCH and UNWATCH (see watch.h). Loop thread only.
 *
 * Ownership: a watch is created by watch_start and owned by its connection's
 * list; it frees itself when its last frame is sent (every id reported, the
 * timer fired, or an UNWATCH), or is freed silently by watch_drop_all. Its
 * jobs_waiters are jobs.c's, tracked here through owner_link so they can be
 * withdrawn. Store lookups carry (connection id, rid) only, so an answer that
 * comes back after the watch is over finds nothing and is dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conn.h"
#include "forq.h"
#include "job.h"
#include "jobs.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "server.h"
#include "watch.h"

struct watch {
    struct conn *c;
    uint64_t rid;
    size_t total;        /* ids asked for */
    size_t left;         /* ids not reported yet: parked waits plus store lookups */
    struct event *timer; /* NULL without a time limit */
    LIST_HEAD(, jobs_waiter) waiters;
    LIST_ENTRY(watch) link; /* in c->watches */
};

/* Withdraw what is parked and free the watch; no frame is sent. */
static void
watch_free(struct watch *w)
{
    struct jobs_waiter *jw;

    while ((jw = LIST_FIRST(&w->waiters)) != NULL) {
        LIST_REMOVE(jw, owner_link);
        jobs_wait_cancel(jw);
    }
    if (w->timer != NULL)
        event_free(w->timer);
    LIST_REMOVE(w, link);
    free(w);
}

/* Send the last frame (ok when code is 0) and free the watch. */
static void
watch_end(struct watch *w, int code, const char *why)
{
    struct conn *c = w->c;
    struct msg_response resp = {0};
    uint64_t rid = w->rid;

    watch_free(w);
    if (code != 0) {
        conn_reply_err(c, rid, code, why);
        return;
    }
    resp.rid = rid;
    conn_reply(c, MSG_OP_WATCH, &resp);
}

/* One id has been reported; the watch ends with its last one. */
static void
watch_reported(struct watch *w)
{
    if (--w->left == 0)
        watch_end(w, 0, NULL);
}

/*
 * The report functions send one event and count the id as reported. If the
 * connection fails while the event is queued, it has freed the watch: they
 * then return without touching w.
 */

/* Report that id cannot be watched (not_found, storage...). */
static void
watch_report_err(struct watch *w, uint64_t id, int code, const char *why)
{
    struct msg_response resp = {0};

    resp.rid = w->rid;
    resp.more = 1;
    resp.id = id;
    resp.err.code = code;
    resp.err.msg = msg_str_c(why);
    if (conn_event(w->c, MSG_OP_WATCH, &resp) == 0)
        watch_reported(w);
}

/* Report a finished job, with its result. */
static void
watch_report_job(struct watch *w, const struct msg_job *job)
{
    struct msg_response resp = {0};

    resp.rid = w->rid;
    resp.more = 1;
    resp.job = *job;
    if (conn_event(w->c, MSG_OP_WATCH, &resp) == 0)
        watch_reported(w);
}

static void
watch_report_settled(struct watch *w, const struct job *job)
{
    struct msg_job mj;

    jobs_snapshot(w->c->srv->jobs, job, 1, &mj);
    watch_report_job(w, &mj);
}

static void
watch_report_unstored(struct watch *w, const struct job *job)
{
    char why[OPS_WHY_MAX];

    ops_why_unsettled(job, FORQ_ERR_STORAGE, why, sizeof(why));
    watch_report_err(w, job->id, FORQ_ERR_STORAGE, why);
}

/* A parked wait ended: the job is settled, or its outcome could not be stored. */
static void
watch_job_done(void *arg, struct jobs_waiter *jw, const struct job *job, int code)
{
    struct watch *w = arg;

    LIST_REMOVE(jw, owner_link);
    if (code == 0)
        watch_report_settled(w, job);
    else
        watch_report_unstored(w, job);
}

/* Report id now if its job is settled; else park a wait or ask the store. */
static void
watch_add(struct watch *w, uint64_t id)
{
    struct jobs *jobs = w->c->srv->jobs;
    const struct jobs_origin o = {w->c->id, w->rid, MSG_OP_WATCH};
    const struct job *job = jobs_job(jobs, id);
    struct jobs_waiter *jw;
    char why[OPS_WHY_MAX];
    int e;

    if (job == NULL) {
        if ((e = jobs_lookup(jobs, id, &o)) == FORQ_ERR_NOT_FOUND) {
            ops_why_not_found(id, why, sizeof(why));
            watch_report_err(w, id, e, why);
        } else if (e != 0) {
            watch_report_err(w, id, e, NULL);
        }
        return;
    }
    if (jobs_settled(job)) {
        watch_report_settled(w, job);
        return;
    }
    if (jobs_unstored(job)) {
        watch_report_unstored(w, job);
        return;
    }
    if ((e = jobs_wait(jobs, id, -1, watch_job_done, w, w->rid, &jw)) != 0) {
        watch_report_err(w, id, e, NULL);
        return;
    }
    LIST_INSERT_HEAD(&w->waiters, jw, owner_link);
}

static void
watch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    char why[OPS_WHY_MAX];

    (void)fd;
    (void)what;
    snprintf(why, sizeof(why), "%zu of %zu jobs still unfinished", w->left, w->total);
    watch_end(w, FORQ_ERR_TIMEOUT, why);
}

static struct watch *
watch_find(struct conn *c, uint64_t rid)
{
    struct watch *w;

    LIST_FOREACH(w, &c->watches, link)
        if (w->rid == rid)
            return w;
    return NULL;
}

void
watch_start(struct conn *c, const struct msg_request *req)
{
    const struct msg_watch *m = &req->u.watch;
    struct watch *w;
    struct timeval tv;
    size_t i;

    if ((w = calloc(1, sizeof(*w))) == NULL) {
        conn_reply_err(c, req->rid, FORQ_ERR_NOMEM, NULL);
        return;
    }
    w->c = c;
    w->rid = req->rid;
    w->total = w->left = m->nids;
    LIST_INIT(&w->waiters);
    LIST_INSERT_HEAD(&c->watches, w, link);
    if (m->timeout_ms >= 0) {
        tv.tv_sec = (time_t)(m->timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(m->timeout_ms % 1000) * 1000;
        if ((w->timer = evtimer_new(c->srv->base, watch_timeout_cb, w)) == NULL ||
            evtimer_add(w->timer, &tv) != 0) {
            watch_free(w);
            conn_reply_err(c, req->rid, FORQ_ERR_NOMEM, NULL);
            return;
        }
    }
    /*
     * left reaches 0 only with the last id, which may end (and free) the
     * watch; a connection that closes while events are queued frees it too.
     */
    for (i = 0; i < m->nids && !c->closing; i++)
        watch_add(w, m->ids[i]);
}

void
watch_unwatch(struct conn *c, const struct msg_request *req)
{
    struct msg_response resp = {0};
    struct watch *w = watch_find(c, req->u.unwatch.watch);

    /* A watch that has already ended is not an error: the two may cross on the wire. */
    if (w != NULL)
        watch_end(w, 0, NULL);
    resp.rid = req->rid;
    conn_reply(c, MSG_OP_UNWATCH, &resp);
}

void
watch_found(struct conn *c, uint64_t rid, uint64_t id, const struct msg_job *job)
{
    struct watch *w = watch_find(c, rid);
    char why[OPS_WHY_MAX];

    if (w == NULL)
        return; /* the watch is over */
    if (job == NULL) {
        ops_why_not_found(id, why, sizeof(why));
        watch_report_err(w, id, FORQ_ERR_NOT_FOUND, why);
    } else if (!forq_state_is_final(job->state)) {
        ops_why_stale(job, why, sizeof(why));
        watch_report_err(w, id, FORQ_ERR_STORAGE, why);
    } else {
        watch_report_job(w, job);
    }
}

size_t
watch_drop_all(struct conn *c)
{
    struct watch *w;
    size_t n = 0;

    while ((w = LIST_FIRST(&c->watches)) != NULL) {
        watch_free(w);
        n++;
    }
    return n;
}
