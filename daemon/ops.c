/*
 * ops.c — the op table and one handler per op (loop thread).
 *
 * Decoding (proto/msg.c) has already checked every field's presence, type and
 * range by the op's table, so each handler holds only its op's meaning.
 */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "forq.h"
#include "job.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "jobs.h"
#include "queue.h"
#include "server.h"
#include "watch.h"

typedef void (*ops_fn)(struct conn *c, const struct msg_request *req);

struct ops_entry {
    ops_fn fn;
    int before_auth; /* allowed before HELLO has passed the token (HELLO, PING) */
};

static void
ops_reply_job(struct conn *c, int op, uint64_t rid, const struct job *job, int with_result)
{
    struct msg_response resp = {0};

    resp.rid = rid;
    jobs_snapshot(c->srv->jobs, job, with_result, &resp.job);
    conn_reply(c, op, &resp);
}

/*
 * The token against the one configured, in time that depends only on the
 * configured token's length: how far a guess matches is not measurable.
 */
static int
ops_token_equal(const char *want, struct msg_str got)
{
    size_t n = strlen(want);
    volatile unsigned char diff = (unsigned char)(got.len != n);

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < got.len ? got.ptr[i] : 0);
    return diff == 0;
}

static void
ops_hello(struct conn *c, const struct msg_request *req)
{
    const char *token = c->srv->cfg->auth_token;
    struct msg_response resp = {0};
    char why[OPS_WHY_MAX];

    if (req->u.hello.version != MSG_PROTO_VERSION) {
        snprintf(why, sizeof(why), "this server speaks protocol version %d, not %u",
                 MSG_PROTO_VERSION, req->u.hello.version);
        conn_reply_err(c, req->rid, FORQ_ERR_VERSION, why);
        return;
    }
    if (token != NULL && !c->authed) {
        if (!ops_token_equal(token, req->u.hello.token)) {
            /* One guess per connection: a wrong token ends it. */
            log_warn("connection %llu (%s): HELLO with %s; closing it",
                     (unsigned long long)c->id, c->peer,
                     req->u.hello.token.len ? "a wrong token" : "no token");
            conn_reply_err(c, req->rid, FORQ_ERR_AUTH,
                           req->u.hello.token.len ? "wrong token"
                                                  : "this server requires a token in HELLO");
            conn_close(c, "authentication failed");
            return;
        }
        c->authed = 1;
    }
    resp.rid = req->rid;
    resp.hello.version = MSG_PROTO_VERSION;
    resp.hello.server = msg_str_c("forqd " FORQ_VERSION_STRING);
    resp.hello.max_frame = c->srv->cfg->max_frame;
    conn_reply(c, MSG_OP_HELLO, &resp);
}

static void
ops_ping(struct conn *c, const struct msg_request *req)
{
    struct msg_response resp = {0};

    resp.rid = req->rid;
    conn_reply(c, MSG_OP_PING, &resp);
}

static struct jobs_origin
ops_origin(const struct conn *c, const struct msg_request *req)
{
    struct jobs_origin o = {c->id, req->rid, req->op, 0};

    if (req->op == MSG_OP_SUBMIT)
        o.wait_ms = req->u.submit.wait_ms;
    return o;
}

/* A blocked SUBMIT has left its queue's wait: its answer comes through ops_submitted. */
static void
ops_submit_unblocked(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    (void)job;
    (void)code;
    conn_untrack_wait(arg, w);
}

static void
ops_submit(struct conn *c, const struct msg_request *req)
{
    const struct jobs_origin o = ops_origin(c, req);
    char why[OPS_WHY_MAX] = "";
    struct jobs_waiter *w;
    int e;

    /* On success the answer comes through ops_submitted, once the job is stored. */
    e = jobs_submit(c->srv->jobs, &req->u.submit, &o, why, sizeof(why));
    if (e == FORQ_ERR_QUEUE_FULL && req->u.submit.block_ms > 0) {
        /* Like Queue.put(timeout): wait for room; it counts as a request in flight. */
        if ((e = jobs_submit_block(c->srv->jobs, &req->u.submit, &o, ops_submit_unblocked, c,
                                   &w)) == 0) {
            conn_track_wait(c, w);
            return;
        }
        why[0] = '\0';
    }
    if (e != 0)
        conn_reply_err(c, req->rid, e, why[0] ? why : NULL);
}

/*
 * The SUBMIT answer: the id, and with job (settled) its snapshot and result,
 * so that a submit-and-wait costs one request.
 */
static void
ops_reply_submit(struct conn *c, uint64_t rid, uint64_t id, int duplicate, const struct job *job)
{
    struct msg_response resp = {0};

    resp.rid = rid;
    resp.id = id;
    resp.duplicate = duplicate;
    if (job != NULL)
        jobs_snapshot(c->srv->jobs, job, 1, &resp.job);
    conn_reply(c, MSG_OP_SUBMIT, &resp);
}

/*
 * A SUBMIT with wait_ms ends its wait. On time, with the job; otherwise (the
 * time ran out, the outcome is not stored yet) with the id alone: the job
 * goes on and a WAIT tells the rest. One function per value of duplicate,
 * since the waiter has no room for it.
 */
static void
ops_submit_wait_end(struct conn *c, struct jobs_waiter *w, const struct job *job, int code,
                    int duplicate)
{
    conn_untrack_wait(c, w);
    ops_reply_submit(c, w->rid, job->id, duplicate, code == 0 ? job : NULL);
}

static void
ops_submit_wait_done(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    ops_submit_wait_end(arg, w, job, code, 0);
}

static void
ops_submit_wait_done_dup(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    ops_submit_wait_end(arg, w, job, code, 1);
}

void
ops_submitted(void *arg, const struct jobs_origin *o, int code, uint64_t id, int duplicate,
              const char *why)
{
    struct conn *c = server_conn(arg, o->conn);
    const struct job *job;
    struct jobs_waiter *w;

    if (c == NULL)
        return; /* the submitter left; the job is stored and runs all the same */
    if (code != 0) {
        conn_reply_err(c, o->rid, code, why);
        return;
    }
    job = o->wait_ms > 0 ? jobs_job(c->srv->jobs, id) : NULL;
    if (job != NULL && jobs_settled(job)) { /* a duplicate of a finished job */
        ops_reply_submit(c, o->rid, id, duplicate, job);
        return;
    }
    if (job != NULL && !jobs_unstored(job) &&
        jobs_wait(c->srv->jobs, id, (int64_t)o->wait_ms,
                  duplicate ? ops_submit_wait_done_dup : ops_submit_wait_done, c, o->rid,
                  &w) == 0) {
        conn_track_wait(c, w);
        return;
    }
    ops_reply_submit(c, o->rid, id, duplicate, NULL);
}

void
ops_why_not_found(uint64_t id, char *why, size_t len)
{
    snprintf(why, len, "no job %llu (never submitted, or its result expired)",
             (unsigned long long)id);
}

void
ops_why_stale(const struct msg_job *job, char *why, size_t len)
{
    /* Every unfinished job is in memory; a stored row that says otherwise is stale. */
    snprintf(why, len, "job %llu is recorded as %s but is not known to this server",
             (unsigned long long)job->id, forq_state_name(job->state));
}

static void
ops_not_found(struct conn *c, uint64_t rid, uint64_t id)
{
    char why[OPS_WHY_MAX];

    ops_why_not_found(id, why, sizeof(why));
    conn_reply_err(c, rid, FORQ_ERR_NOT_FOUND, why);
}

/* The job is not in memory: ask the store (ops_found answers), or answer not_found. */
static void
ops_lookup_or_reply(struct conn *c, const struct msg_request *req, uint64_t id)
{
    const struct jobs_origin o = ops_origin(c, req);
    int e = jobs_lookup(c->srv->jobs, id, &o);

    if (e == FORQ_ERR_NOT_FOUND)
        ops_not_found(c, req->rid, id);
    else if (e != 0)
        conn_reply_err(c, req->rid, e, NULL);
}

/* A settled job read back from the store, for a WAIT, STATUS or CANCEL. */
void
ops_found(void *arg, const struct jobs_origin *o, uint64_t id, const struct msg_job *job)
{
    struct conn *c = server_conn(arg, o->conn);
    struct msg_response resp = {0};
    char why[OPS_WHY_MAX];

    if (c == NULL)
        return;
    if (o->op == MSG_OP_WATCH) {
        watch_found(c, o->rid, id, job);
        return;
    }
    if (job == NULL) {
        ops_not_found(c, o->rid, id);
        return;
    }
    if (!forq_state_is_final(job->state)) {
        ops_why_stale(job, why, sizeof(why));
        conn_reply_err(c, o->rid, FORQ_ERR_STORAGE, why);
        return;
    }
    if (o->op == MSG_OP_CANCEL && job->state != FORQ_STATE_CANCELLED) {
        snprintf(why, sizeof(why),
                 "job %llu is %s; only a job that has not started can be cancelled",
                 (unsigned long long)job->id, forq_state_name(job->state));
        conn_reply_err(c, o->rid, FORQ_ERR_STATE, why);
        return;
    }
    resp.rid = o->rid;
    resp.job = *job;
    if (o->op != MSG_OP_WAIT) { /* only WAIT carries the result bytes */
        resp.job.result.ptr = NULL;
        resp.job.result.len = 0;
    }
    conn_reply(c, o->op, &resp);
}

void
ops_why_unsettled(const struct job *job, int code, char *why, size_t len)
{
    if (code == FORQ_ERR_STORAGE)
        snprintf(why, len,
                 "job %llu has finished, but its outcome could not be stored yet (see the "
                 "server log); ask again later",
                 (unsigned long long)job->id);
    else
        snprintf(why, len, "job %llu is still %s", (unsigned long long)job->id,
                 forq_state_name(job->state));
}

/* A parked WAIT ends: the job settled, or the wait's time ran out. */
static void
ops_wait_done(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    struct conn *c = arg;
    char why[OPS_WHY_MAX];

    conn_untrack_wait(c, w);
    if (code != 0) {
        ops_why_unsettled(job, code, why, sizeof(why));
        conn_reply_err(c, w->rid, code, why);
        return;
    }
    ops_reply_job(c, MSG_OP_WAIT, w->rid, job, 1);
}

/* A CANCEL is answered once the cancellation is recorded. */
static void
ops_cancel_done(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    struct conn *c = arg;
    char why[OPS_WHY_MAX];

    conn_untrack_wait(c, w);
    if (code != 0) { /* no time limit: the cancellation could not be stored */
        ops_why_unsettled(job, code, why, sizeof(why));
        conn_reply_err(c, w->rid, code, why);
        return;
    }
    if (job->state != FORQ_STATE_CANCELLED) {
        /* A running job that finished before its worker could be killed. */
        snprintf(why, sizeof(why), "job %llu %s before it could be cancelled",
                 (unsigned long long)job->id, forq_state_name(job->state));
        conn_reply_err(c, w->rid, FORQ_ERR_STATE, why);
        return;
    }
    ops_reply_job(c, MSG_OP_CANCEL, w->rid, job, 0);
}

/* Answer when the job settles; fn replies. */
static void
ops_park(struct conn *c, uint64_t rid, uint64_t id, int64_t timeout_ms, jobs_wait_fn fn)
{
    struct jobs_waiter *w;
    int e;

    if ((e = jobs_wait(c->srv->jobs, id, timeout_ms, fn, c, rid, &w)) != 0) {
        conn_reply_err(c, rid, e, NULL);
        return;
    }
    conn_track_wait(c, w);
}

static void
ops_wait(struct conn *c, const struct msg_request *req)
{
    const struct msg_wait *m = &req->u.wait;
    const struct job *job = jobs_job(c->srv->jobs, m->id);
    char why[OPS_WHY_MAX];

    if (job == NULL) {
        ops_lookup_or_reply(c, req, m->id);
        return;
    }
    if (jobs_settled(job)) {
        ops_reply_job(c, MSG_OP_WAIT, req->rid, job, 1);
        return;
    }
    if (jobs_unstored(job) || m->timeout_ms == 0) {
        int code = jobs_unstored(job) ? FORQ_ERR_STORAGE : FORQ_ERR_TIMEOUT;

        ops_why_unsettled(job, code, why, sizeof(why));
        conn_reply_err(c, req->rid, code, why);
        return;
    }
    ops_park(c, req->rid, m->id, m->timeout_ms, ops_wait_done);
}

static void
ops_status(struct conn *c, const struct msg_request *req)
{
    const struct job *job = jobs_job(c->srv->jobs, req->u.status.id);

    if (job == NULL) {
        ops_lookup_or_reply(c, req, req->u.status.id);
        return;
    }
    ops_reply_job(c, MSG_OP_STATUS, req->rid, job, 0);
}

static void
ops_cancel(struct conn *c, const struct msg_request *req)
{
    const struct job *job;
    char why[OPS_WHY_MAX] = "";
    int e;

    e = jobs_cancel(c->srv->jobs, req->u.cancel.id, req->u.cancel.running, &job, why,
                    sizeof(why));
    if (e == FORQ_ERR_NOT_FOUND) {
        ops_lookup_or_reply(c, req, req->u.cancel.id);
        return;
    }
    if (e != 0) {
        conn_reply_err(c, req->rid, e, why[0] ? why : NULL);
        return;
    }
    if (jobs_unstored(job)) {
        ops_why_unsettled(job, FORQ_ERR_STORAGE, why, sizeof(why));
        conn_reply_err(c, req->rid, FORQ_ERR_STORAGE, why);
        return;
    }
    if (!jobs_settled(job)) {
        ops_park(c, req->rid, job->id, -1, ops_cancel_done);
        return;
    }
    ops_reply_job(c, MSG_OP_CANCEL, req->rid, job, 0);
}

static void
ops_stats(struct conn *c, const struct msg_request *req)
{
    struct msg_response resp = {0};
    int e;

    if ((e = server_stats(c->srv, &resp.stats)) != 0) {
        conn_reply_err(c, req->rid, e, NULL);
        return;
    }
    resp.rid = req->rid;
    conn_reply(c, MSG_OP_STATS, &resp);
    jobs_stats_free(&resp.stats);
}

static void
ops_queue(struct conn *c, const struct msg_request *req)
{
    struct msg_response resp = {0};
    char why[OPS_WHY_MAX] = "";
    int e;

    if ((e = jobs_queue(c->srv->jobs, &req->u.queue, &resp.queue, why, sizeof(why))) != 0) {
        conn_reply_err(c, req->rid, e, why[0] ? why : NULL);
        return;
    }
    resp.rid = req->rid;
    conn_reply(c, MSG_OP_QUEUE, &resp);
}

static void
ops_why_not_drained(const char *name, size_t len, uint64_t left, char *why, size_t whylen)
{
    snprintf(why, whylen, "queue '%.*s' still has %llu unfinished job%s", (int)len, name,
             (unsigned long long)left, left == 1 ? "" : "s");
}

/* A parked JOIN ends: the queue drained, or the time ran out. */
static void
ops_join_done(void *arg, struct jobs_waiter *w, const struct job *job, int code)
{
    struct conn *c = arg;
    struct msg_response resp = {0};
    const char *name = w->queue->name;
    char why[OPS_WHY_MAX];

    (void)job;
    conn_untrack_wait(c, w);
    if (code != 0) {
        ops_why_not_drained(name, strlen(name),
                            jobs_queue_unfinished(c->srv->jobs, msg_str_c(name)), why,
                            sizeof(why));
        conn_reply_err(c, w->rid, code, why);
        return;
    }
    resp.rid = w->rid;
    conn_reply(c, MSG_OP_JOIN, &resp);
}

static void
ops_join(struct conn *c, const struct msg_request *req)
{
    const struct msg_join *m = &req->u.join;
    uint64_t left = jobs_queue_unfinished(c->srv->jobs, m->queue);
    struct msg_response resp = {0};
    struct jobs_waiter *w;
    char why[OPS_WHY_MAX];
    int e;

    if (left == 0) { /* drained already, or no such queue */
        resp.rid = req->rid;
        conn_reply(c, MSG_OP_JOIN, &resp);
        return;
    }
    if (m->timeout_ms == 0) { /* a poll */
        ops_why_not_drained(m->queue.ptr, m->queue.len, left, why, sizeof(why));
        conn_reply_err(c, req->rid, FORQ_ERR_TIMEOUT, why);
        return;
    }
    if ((e = jobs_join(c->srv->jobs, m->queue, m->timeout_ms, ops_join_done, c, req->rid,
                       &w)) != 0) {
        conn_reply_err(c, req->rid, e, NULL);
        return;
    }
    conn_track_wait(c, w);
}

static const struct ops_entry ops_table[MSG_OP__COUNT] = {
    [MSG_OP_HELLO] = {ops_hello, 1},
    [MSG_OP_PING] = {ops_ping, 1},
    [MSG_OP_SUBMIT] = {ops_submit, 0},
    [MSG_OP_WAIT] = {ops_wait, 0},
    [MSG_OP_STATUS] = {ops_status, 0},
    [MSG_OP_CANCEL] = {ops_cancel, 0},
    [MSG_OP_STATS] = {ops_stats, 0},
    [MSG_OP_WATCH] = {watch_start, 0},
    [MSG_OP_UNWATCH] = {watch_unwatch, 0},
    [MSG_OP_QUEUE] = {ops_queue, 0},
    [MSG_OP_JOIN] = {ops_join, 0},
};

void
ops_dispatch(struct conn *c, const uint8_t *body, size_t len)
{
    struct msg_decoder *d = &c->srv->decoder;
    struct msg_request req;
    int e;

    e = msg_decode_request(d, body, len, &req);
    if (e == FORQ_ERR_PROTOCOL || e == FORQ_ERR_NOMEM) {
        /* The stream cannot be trusted any more: answer, then hang up. */
        log_info("connection %llu (%s): %s; closing it", (unsigned long long)c->id, c->peer,
                 d->why);
        conn_reply_err(c, 0, e, d->why);
        conn_close(c, d->why);
        return;
    }
    if (e != 0) {
        log_debug("connection %llu: refused request %llu: %s", (unsigned long long)c->id,
                  (unsigned long long)req.rid, d->why);
        conn_reply_err(c, req.rid, e, d->why);
        return;
    }
    if (!ops_table[req.op].before_auth && conn_unauthenticated(c)) {
        conn_reply_err(c, req.rid, FORQ_ERR_AUTH,
                       "authenticate first: HELLO with the server's token");
        return;
    }
    ops_table[req.op].fn(c, &req);
}
