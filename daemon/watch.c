/*
 * watch.c — WATCH and UNWATCH (see watch.h). Loop thread only.
 *
 * Ownership: a watch is created by watch_start and owned by its connection's
 * list; it frees itself when its last frame is sent (every id reported, the
 * timer fired, or an UNWATCH), or is freed silently by watch_drop_all. Its
 * jobs_waiters are jobs.c's, tracked here through owner_link so they can be
 * withdrawn. Store lookups carry (connection id, the watch's serial) only, so
 * an answer that comes back after the watch is over finds nothing and is
 * dropped, even if the client reuses the rid.
 *
 * Flow control. A job that is settled (or only in the store) goes on the
 * watch's todo list; watch_flush sends events from it only while the
 * connection's output is under its high-water mark, and asks the store for at
 * most WATCH_LOOKUPS_MAX jobs at a time, so one small WATCH cannot make forqd
 * queue 10,000 results for a client that does not read. The connection calls
 * watch_flush_all when its output has drained.
 *
 * A watch holds its request slot (max_inflight) only until it has started:
 * many watches may stay open on one connection. What bounds them instead is
 * max_watch_ids, the ids watched at once per connection. It is read from the
 * running config at each WATCH, so a reload applies it to the next one; the
 * watches already open are kept, even past a lowered limit.
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

#define WATCH_LOOKUPS_MAX 16 /* store lookups in flight per watch */

struct watch {
    struct conn *c;
    uint64_t rid;
    uint64_t serial;     /* names the watch in store lookups */
    size_t total;        /* ids asked for */
    size_t left;         /* ids not reported yet */
    uint64_t *todo;      /* ids to report (settled, or to look up): todo[head..len), len <= total */
    size_t todo_head, todo_len;
    size_t lookups;      /* store lookups in flight */
    int timed_out;       /* the timer fired: end once todo and lookups are done */
    struct event *timer; /* NULL without a time limit */
    LIST_HEAD(, jobs_waiter) waiters;
    LIST_ENTRY(watch) link; /* in c->watches */
};

static uint64_t watch_serial; /* loop thread only */

static int watch_flush(struct watch *w);

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
    w->c->watched -= w->total;
    LIST_REMOVE(w, link);
    free(w->todo);
    free(w);
}

/* Send the last frame (ok when code is 0) and free the watch. */
static void
watch_end(struct watch *w, int code, const char *why)
{
    struct conn *c = w->c;
    struct msg_response resp = {0};

    resp.rid = w->rid;
    resp.err.code = code;
    resp.err.msg = msg_str_c(code != 0 && why == NULL ? forq_strerror(code) : why);
    watch_free(w);
    (void)conn_event(c, MSG_OP_WATCH, &resp); /* the request's slot was given back at start */
}

/*
 * The report functions send one event and count the id as reported. They
 * return 0, or -1 when the watch is gone: it ended with this id, or the
 * connection failed while the event was queued (and freed it).
 */

/* One id has been reported; the watch ends with its last one. */
static int
watch_reported(struct watch *w)
{
    if (--w->left > 0)
        return 0;
    watch_end(w, 0, NULL);
    return -1;
}

/* Report that id cannot be watched (not_found, storage...). */
static int
watch_report_err(struct watch *w, uint64_t id, int code, const char *why)
{
    struct msg_response resp = {0};

    resp.rid = w->rid;
    resp.more = 1;
    resp.id = id;
    resp.err.code = code;
    resp.err.msg = msg_str_c(why);
    if (conn_event(w->c, MSG_OP_WATCH, &resp) != 0)
        return -1;
    return watch_reported(w);
}

/* Report a finished job, with its result. */
static int
watch_report_job(struct watch *w, const struct msg_job *job)
{
    struct msg_response resp = {0};

    resp.rid = w->rid;
    resp.more = 1;
    resp.job = *job;
    if (conn_event(w->c, MSG_OP_WATCH, &resp) != 0)
        return -1;
    return watch_reported(w);
}

static int
watch_report_settled(struct watch *w, const struct job *job)
{
    struct msg_job mj;

    jobs_snapshot(w->c->srv->jobs, job, 1, &mj);
    return watch_report_job(w, &mj);
}

static int
watch_report_unstored(struct watch *w, const struct job *job)
{
    char why[OPS_WHY_MAX];

    ops_why_unsettled(job, FORQ_ERR_STORAGE, why, sizeof(why));
    return watch_report_err(w, job->id, FORQ_ERR_STORAGE, why);
}

/*
 * Put id on the todo list. At most total ids are on it at once: each id is
 * there, parked, or reported. (An id may come back: one that was not visible
 * yet at the start and is parked by watch_flush returns when it settles.)
 */
static void
watch_todo(struct watch *w, uint64_t id)
{
    if (w->todo_len == w->total) {
        memmove(w->todo, w->todo + w->todo_head, (w->todo_len - w->todo_head) * sizeof(*w->todo));
        w->todo_len -= w->todo_head;
        w->todo_head = 0;
    }
    w->todo[w->todo_len++] = id;
}

/* A parked wait ended: the job is settled, or its outcome could not be stored. */
static void
watch_job_done(void *arg, struct jobs_waiter *jw, const struct job *job, int code)
{
    struct watch *w = arg;

    LIST_REMOVE(jw, owner_link);
    if (code != 0) {
        (void)watch_report_unstored(w, job);
        return;
    }
    watch_todo(w, job->id);
    (void)watch_flush(w);
}

/* Park a wait on an unfinished job. 0, or -1 when the watch is gone. */
static int
watch_park(struct watch *w, uint64_t id)
{
    struct jobs_waiter *jw;
    int e;

    if ((e = jobs_wait(w->c->srv->jobs, id, -1, watch_job_done, w, w->rid, &jw)) != 0)
        return watch_report_err(w, id, e, NULL);
    LIST_INSERT_HEAD(&w->waiters, jw, owner_link);
    return 0;
}

/* An id that is not in memory: ask the store, or report it unknown. */
static int
watch_lookup(struct watch *w, uint64_t id)
{
    const struct jobs_origin o = {w->c->id, w->serial, MSG_OP_WATCH, 0};
    char why[OPS_WHY_MAX];
    int e = jobs_lookup(w->c->srv->jobs, id, &o);

    if (e == FORQ_ERR_NOT_FOUND) {
        ops_why_not_found(id, why, sizeof(why));
        return watch_report_err(w, id, e, why);
    }
    if (e != 0)
        return watch_report_err(w, id, e, NULL);
    w->lookups++;
    return 0;
}

/*
 * Report what the todo list holds, while the connection's output has room
 * and the store lookups are within their budget. 0, or -1 when the watch is
 * gone.
 */
static int
watch_flush(struct watch *w)
{
    struct jobs *jobs = w->c->srv->jobs;
    char why[OPS_WHY_MAX];
    int r = 0;

    while (r == 0 && w->todo_head < w->todo_len) {
        uint64_t id = w->todo[w->todo_head];
        const struct job *job = jobs_job(jobs, id);

        if (conn_out_full(w->c)) {
            w->c->watches_blocked = 1; /* watch_flush_all goes on */
            return 0;
        }
        if (job == NULL && w->lookups >= WATCH_LOOKUPS_MAX)
            return 0; /* watch_found goes on */
        w->todo_head++;
        if (job == NULL)
            r = watch_lookup(w, id);
        else if (jobs_settled(job))
            r = watch_report_settled(w, job);
        else if (jobs_unstored(job))
            r = watch_report_unstored(w, job);
        else
            r = watch_park(w, id);
    }
    if (r == 0 && w->timed_out && w->lookups == 0) {
        snprintf(why, sizeof(why), "%zu of %zu jobs still unfinished", w->left, w->total);
        watch_end(w, FORQ_ERR_TIMEOUT, why);
        r = -1;
    }
    return r;
}

/* Time is up: end now, or once what is known to be finished has been reported. */
static void
watch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;

    (void)fd;
    (void)what;
    w->timed_out = 1;
    (void)watch_flush(w);
}

static struct watch *
watch_find(struct conn *c, uint64_t rid, int by_serial)
{
    struct watch *w;

    LIST_FOREACH(w, &c->watches, link)
        if ((by_serial ? w->serial : w->rid) == rid)
            return w;
    return NULL;
}

/* Register the watch and give its request slot back. 0, or -1 (answered with an error). */
static int
watch_new(struct conn *c, const struct msg_request *req, struct watch **out)
{
    const struct msg_watch *m = &req->u.watch;
    size_t max = c->srv->cfg->max_watch_ids;
    struct watch *w;
    struct timeval tv;
    char why[OPS_WHY_MAX];

    if (c->watched + m->nids > max) {
        snprintf(why, sizeof(why),
                 "this connection already watches %zu jobs; at most %zu (max_watch_ids)",
                 c->watched, max);
        conn_reply_err(c, req->rid, FORQ_ERR_LIMIT, why);
        return -1;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL ||
        (w->todo = malloc(m->nids * sizeof(*w->todo))) == NULL) {
        free(w);
        conn_reply_err(c, req->rid, FORQ_ERR_NOMEM, NULL);
        return -1;
    }
    if (m->timeout_ms >= 0) {
        tv.tv_sec = (time_t)(m->timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(m->timeout_ms % 1000) * 1000;
        if ((w->timer = evtimer_new(c->srv->base, watch_timeout_cb, w)) == NULL ||
            evtimer_add(w->timer, &tv) != 0) {
            if (w->timer != NULL)
                event_free(w->timer);
            free(w->todo);
            free(w);
            conn_reply_err(c, req->rid, FORQ_ERR_NOMEM, NULL);
            return -1;
        }
    }
    w->c = c;
    w->rid = req->rid;
    w->serial = ++watch_serial;
    w->total = w->left = m->nids;
    LIST_INIT(&w->waiters);
    LIST_INSERT_HEAD(&c->watches, w, link);
    c->watched += m->nids;
    conn_request_done(c);
    *out = w;
    return 0;
}

void
watch_start(struct conn *c, const struct msg_request *req)
{
    const struct msg_watch *m = &req->u.watch;
    struct watch *w;
    size_t i;

    if (watch_new(c, req, &w) != 0)
        return;
    /* Settled and stored jobs go to the todo list; the others get a parked wait. */
    for (i = 0; i < m->nids; i++) {
        const struct job *job = jobs_job(c->srv->jobs, m->ids[i]);

        if (job == NULL || jobs_settled(job))
            watch_todo(w, m->ids[i]);
        else if ((jobs_unstored(job) ? watch_report_unstored(w, job)
                                     : watch_park(w, m->ids[i])) != 0)
            return; /* the watch is gone (ended, or its connection failed) */
    }
    (void)watch_flush(w);
}

void
watch_unwatch(struct conn *c, const struct msg_request *req)
{
    struct msg_response resp = {0};
    struct watch *w = watch_find(c, req->u.unwatch.watch, 0);

    /* A watch that has already ended is not an error: the two may cross on the wire. */
    if (w != NULL)
        watch_end(w, 0, NULL);
    resp.rid = req->rid;
    conn_reply(c, MSG_OP_UNWATCH, &resp);
}

void
watch_found(struct conn *c, uint64_t serial, uint64_t id, const struct msg_job *job)
{
    struct watch *w = watch_find(c, serial, 1);
    char why[OPS_WHY_MAX];
    int r;

    if (w == NULL)
        return; /* the watch is over */
    w->lookups--;
    if (job == NULL) {
        ops_why_not_found(id, why, sizeof(why));
        r = watch_report_err(w, id, FORQ_ERR_NOT_FOUND, why);
    } else if (!forq_state_is_final(job->state)) {
        ops_why_stale(job, why, sizeof(why));
        r = watch_report_err(w, id, FORQ_ERR_STORAGE, why);
    } else {
        r = watch_report_job(w, job);
    }
    if (r == 0)
        (void)watch_flush(w);
}

void
watch_flush_all(struct conn *c)
{
    struct watch *w, *next;

    if (!c->watches_blocked)
        return;
    c->watches_blocked = 0;
    for (w = LIST_FIRST(&c->watches); w != NULL && !c->closing; w = next) {
        next = LIST_NEXT(w, link);
        /* Flushing w may end w, but no other watch (a failing connection ends the loop). */
        (void)watch_flush(w);
    }
}

void
watch_drop_all(struct conn *c)
{
    struct watch *w;

    while ((w = LIST_FIRST(&c->watches)) != NULL)
        watch_free(w);
}
