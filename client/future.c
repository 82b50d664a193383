/*
 * future.c — libforq's futures and job calls: submit, future result / done /
 * cancel, status and cancel by id (also of a running job).
 *
 * A future is the job id plus, once the job has finished, its cached outcome
 * (result bytes, or error code and message). The outcome is written once,
 * under f->mu, and published through f->done (release/acquire), so readers
 * of a finished future take no lock and make no request. Waiting threads do
 * not hold f->mu while a request is in flight: each sends its own WAIT, and
 * the first final answer is the one cached. Every call runs on the caller's
 * thread through client_rpc_run().
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callbacks.h"
#include "client.h"

struct forq_future {
    forq_client *c; /* holds a reference */
    uint64_t id;
    atomic_uint refs;    /* the user's, plus one per pending callback */
    pthread_mutex_t mu;  /* serialises writers of the outcome */
    atomic_int done;     /* 1 once the outcome below is set; never changes after */
    int code;            /* 0 (succeeded) or the job's FORQ_ERR_* */
    uint8_t *mem;        /* owned: the WAIT answer's body (or a copy of the result) */
    const uint8_t *data; /* result when code == 0, inside mem (NULL when empty) */
    size_t len;
    char *error; /* job's message when code != 0 */
};

/* ------------------------------------------------------------------ outcome */

/* The code a finished job ends with (0: succeeded), from its snapshot. */
static int
future_job_code(const struct msg_job *job)
{
    if (job->state == FORQ_STATE_SUCCEEDED)
        return 0;
    if (job->error.code < 0)
        return job->error.code;
    return job->state == FORQ_STATE_CANCELLED ? FORQ_ERR_CANCELLED : FORQ_ERR_TASK_FAILED;
}

/* Is [p, p + n) inside body[0..len)? */
static int
future_in_body(const uint8_t *body, size_t len, const char *p, size_t n)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)body;

    return body != NULL && a >= b && n <= len && a - b <= len - n;
}

int
future_settle(forq_future *f, const struct msg_job *job, uint8_t **body, size_t blen)
{
    int code = future_job_code(job);
    size_t len = code == 0 ? job->result.len : 0;
    const uint8_t *data = NULL;
    uint8_t *mem = NULL;
    char *error = NULL;
    int taken = 0;

    if (len > 0 && future_in_body(*body, blen, job->result.ptr, len)) {
        mem = *body;
        data = (const uint8_t *)job->result.ptr;
        taken = 1;
    } else if (len > 0) {
        if ((mem = malloc(len)) == NULL)
            return client_seterr(FORQ_ERR_NOMEM, "out of memory");
        memcpy(mem, job->result.ptr, len);
        data = mem;
    }
    if (code != 0) {
        const char *text = job->error.msg.len ? job->error.msg.ptr : forq_strerror(code);

        error = strndup(text, job->error.msg.len ? job->error.msg.len : strlen(text));
        if (error == NULL)
            return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&f->mu);
    if (!atomic_load_explicit(&f->done, memory_order_relaxed)) {
        f->code = code;
        f->mem = mem;
        f->data = data;
        f->len = len;
        f->error = error;
        if (taken)
            *body = NULL;
        mem = NULL;
        error = NULL;
        atomic_store_explicit(&f->done, 1, memory_order_release);
    }
    pthread_mutex_unlock(&f->mu);
    if (!taken)
        free(mem);
    free(error);
    return 0;
}

/* Report the cached outcome. The future must be done. */
static int
future_outcome(const forq_future *f, const void **data, size_t *len)
{
    if (f->code != 0)
        return client_seterr(f->code, "%s", f->error);
    if (data != NULL)
        *data = f->data != NULL ? (const void *)f->data : (const void *)"";
    if (len != NULL)
        *len = f->len;
    return 0;
}

static int
future_is_done(const forq_future *f)
{
    return atomic_load_explicit(&f->done, memory_order_acquire);
}

int
future_known(const forq_future *f)
{
    return future_is_done(f);
}

int
future_code(const forq_future *f)
{
    return f->code;
}

forq_client *
future_client(const forq_future *f)
{
    return f->c;
}

void
future_ref(forq_future *f)
{
    atomic_fetch_add(&f->refs, 1);
}

/* ------------------------------------------------------------------ requests by id */

/* Clamp a user timeout to what the wire carries; < 0 means no limit. */
static int64_t
future_wire_timeout(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    return timeout_ms > (int64_t)MSG_MS_MAX ? (int64_t)MSG_MS_MAX : timeout_ms;
}

/* WAIT for the job; on a final answer, cache it. */
static int
future_wait(forq_future *f, int64_t timeout_ms)
{
    struct msg_request req;
    struct client_rpc rpc;
    int64_t t = future_wire_timeout(timeout_ms);
    int r;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_WAIT;
    req.u.wait.id = f->id;
    req.u.wait.timeout_ms = t;
    r = client_rpc_run(f->c, &req, t < 0 ? -1 : t + CLIENT_WAIT_GRACE_MS, &rpc);
    if (r == 0 && !forq_state_is_final(rpc.resp.job.state))
        r = client_seterr(FORQ_ERR_TIMEOUT, "job %llu is still %s", (unsigned long long)f->id,
                          forq_state_name(rpc.resp.job.state));
    if (r == 0)
        r = future_settle(f, &rpc.resp.job, &rpc.body, rpc.len);
    client_rpc_fini(&rpc);
    return r;
}

static int
future_not_cancellable(int state)
{
    if (state == FORQ_STATE_RUNNING)
        return client_seterr(FORQ_ERR_STATE, "the job is already running");
    return client_seterr(FORQ_ERR_STATE, "the job has already %s", forq_state_name(state));
}

/* The job is not cancellable: say why, using its current state when known. */
static int
future_cancel_refused(forq_client *c, uint64_t id, struct client_rpc *rpc)
{
    char why[256];
    struct msg_request req;

    snprintf(why, sizeof(why), "%s", forq_errmsg());
    client_rpc_fini(rpc);
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_STATUS;
    req.u.status.id = id;
    if (client_rpc_run(c, &req, -1, rpc) != 0)
        return client_seterr(FORQ_ERR_STATE, "%s", why);
    if (rpc->resp.job.state == FORQ_STATE_CANCELLED)
        return 0; /* it already was */
    return future_not_cancellable(rpc->resp.job.state);
}

/*
 * A CANCEL with running = 1 answered with the job not final yet: forqd has
 * killed the worker and reports the job once the kill lands. WAIT for the
 * final state, so the caller learns how it really ended.
 */
static int
future_cancel_settle(forq_client *c, uint64_t id, struct client_rpc *rpc)
{
    struct msg_request req;
    int r;

    client_rpc_fini(rpc);
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_WAIT;
    req.u.wait.id = id;
    req.u.wait.timeout_ms = -1;
    if ((r = client_rpc_run(c, &req, -1, rpc)) != 0)
        return r;
    if (rpc->resp.job.state != FORQ_STATE_CANCELLED)
        return future_not_cancellable(rpc->resp.job.state);
    return 0;
}

/*
 * CANCEL a job by id (running: also a running one, killing its worker).
 * Returns 0 when it is cancelled now or already was, and then caches the
 * outcome in f (when given); else the error.
 */
static int
future_cancel_id(forq_client *c, uint64_t id, int running, forq_future *f)
{
    struct msg_request req;
    struct client_rpc rpc;
    int r;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_CANCEL;
    req.u.cancel.id = id;
    req.u.cancel.running = running != 0;
    r = client_rpc_run(c, &req, -1, &rpc);
    if (r == FORQ_ERR_STATE)
        r = future_cancel_refused(c, id, &rpc);
    else if (r == 0 && running && !forq_state_is_final(rpc.resp.job.state))
        r = future_cancel_settle(c, id, &rpc);
    else if (r == 0 && rpc.resp.job.state != FORQ_STATE_CANCELLED)
        r = future_not_cancellable(rpc.resp.job.state);
    if (r == 0 && f != NULL)
        (void)future_settle(f, &rpc.resp.job, &rpc.body, rpc.len);
    client_rpc_fini(&rpc);
    return r;
}

/* ------------------------------------------------------------------ public: futures */

static int
future_new(forq_client *c, uint64_t id, forq_future **out)
{
    forq_future *f;

    *out = NULL;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->done, 0);
    atomic_init(&f->refs, 1);
    client_ref(c);
    f->c = c;
    f->id = id;
    *out = f;
    return 0;
}

void
future_submit_request(struct msg_request *req, const char *task, const void *payload,
                      size_t len, const struct forq_submit_opts *opts)
{
    static const struct forq_submit_opts defaults = FORQ_SUBMIT_OPTS_INIT;

    if (opts == NULL)
        opts = &defaults;
    memset(req, 0, sizeof(*req));
    req->op = MSG_OP_SUBMIT;
    req->u.submit.task = msg_str_c(task);
    req->u.submit.payload.ptr = payload != NULL ? payload : "";
    req->u.submit.payload.len = len;
    req->u.submit.queue = msg_str_c(opts->queue);
    req->u.submit.priority = opts->priority;
    req->u.submit.delay_ms = opts->delay_ms;
    req->u.submit.timeout_ms = opts->timeout_ms;
    req->u.submit.max_retries = opts->max_retries;
    req->u.submit.unique_key = msg_str_c(opts->unique_key);
    req->u.submit.block_ms = opts->block_ms;
    req->u.submit.wait_ms = opts->wait_ms;
}

int
forq_submit(forq_client *c, const char *task, const void *payload, size_t len,
            const struct forq_submit_opts *opts, forq_future **out)
{
    struct msg_request req;
    struct client_rpc rpc;
    int r;

    if (out == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no place for the future");
    *out = NULL;
    if (task == NULL || (payload == NULL && len > 0))
        return client_seterr(FORQ_ERR_INVALID, "submit needs a task name and a payload");
    if ((r = client_check_open(c)) != 0)
        return r;
    future_submit_request(&req, task, payload, len, opts);
    if ((r = client_rpc_run(c, &req, -1, &rpc)) == 0 && (r = future_new(c, rpc.resp.id, out)) == 0 &&
        rpc.resp.job.id == rpc.resp.id && rpc.resp.id != 0 &&
        (r = future_settle(*out, &rpc.resp.job, &rpc.body, rpc.len)) != 0) {
        forq_future_free(*out); /* out of memory caching the outcome */
        *out = NULL;
    }
    client_rpc_fini(&rpc);
    return r;
}

int
forq_future_from_id(forq_client *c, uint64_t id, forq_future **out)
{
    int r;

    if (out == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no place for the future");
    *out = NULL;
    if ((r = client_check_open(c)) != 0)
        return r;
    return future_new(c, id, out);
}

int
forq_future_for_id(forq_client *c, uint64_t id, forq_future **out)
{
    return forq_future_from_id(c, id, out);
}

uint64_t
forq_future_id(const forq_future *f)
{
    return f != NULL ? f->id : 0;
}

int
forq_future_result(forq_future *f, int64_t timeout_ms, const void **data, size_t *len)
{
    int r;

    if (data != NULL)
        *data = NULL;
    if (len != NULL)
        *len = 0;
    if (f == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no future");
    if (!future_is_done(f) && (r = future_wait(f, timeout_ms)) != 0)
        return r;
    return future_outcome(f, data, len);
}

const char *
forq_future_error(const forq_future *f)
{
    if (f == NULL || !future_is_done(f))
        return NULL;
    return f->error;
}

int
forq_future_done(forq_future *f)
{
    int r;

    if (f == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no future");
    if (future_is_done(f))
        return 1;
    /* WAIT with timeout 0 answers at once, and a finished job's outcome is kept. */
    r = future_wait(f, 0);
    if (r == FORQ_ERR_TIMEOUT)
        return 0;
    return r == 0 ? 1 : r;
}

int
forq_future_cancel(forq_future *f)
{
    if (f == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no future");
    if (future_is_done(f)) {
        if (f->code == FORQ_ERR_CANCELLED)
            return 0;
        return future_not_cancellable(f->code == 0 ? FORQ_STATE_SUCCEEDED : FORQ_STATE_FAILED);
    }
    return future_cancel_id(f->c, f->id, 0, f);
}

int
forq_future_cancelled(forq_future *f)
{
    int r;

    if ((r = forq_future_done(f)) != 1)
        return r;
    return f->code == FORQ_ERR_CANCELLED;
}

int
forq_future_running(forq_future *f)
{
    struct forq_job_info info;
    int r;

    if (f == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no future");
    if (future_is_done(f))
        return 0;
    if ((r = forq_status(f->c, f->id, &info)) != 0)
        return r;
    r = info.state == FORQ_STATE_RUNNING;
    forq_job_info_clear(&info);
    return r;
}

int
forq_future_add_done_callback(forq_future *f, forq_done_fn fn, void *arg)
{
    struct callbacks *cbs;
    int r;

    if (f == NULL || fn == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no future or no callback");
    if (future_is_done(f)) {
        fn(f, arg);
        return 0;
    }
    if ((r = client_callbacks(f->c, &cbs)) != 0)
        return r;
    return callbacks_add(cbs, f, fn, arg);
}

void
forq_future_free(forq_future *f)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    client_unref(f->c);
    pthread_mutex_destroy(&f->mu);
    free(f->mem);
    free(f->error);
    free(f);
}

/* ------------------------------------------------------------------ public: by id */

/* A malloc'd copy of an error's text, or of the code's description when it has none. */
static char *
future_error_text(int code, struct msg_str msg)
{
    const char *text = msg.len ? msg.ptr : forq_strerror(code);

    return strndup(text, msg.len ? msg.len : strlen(text));
}

static int
future_info_copy(struct forq_job_info *info, const struct msg_job *job)
{
    int code = job->state == FORQ_STATE_FAILED || job->state == FORQ_STATE_CANCELLED
                   ? future_job_code(job)
                   : 0;
    const struct msg_error *last = &job->last_error;

    info->id = job->id;
    info->state = job->state;
    client_strlcpy(info->task, sizeof(info->task), job->task);
    client_strlcpy(info->queue, sizeof(info->queue), job->queue);
    info->priority = job->priority;
    info->attempts = job->attempts;
    info->created_us = job->created_us;
    info->started_us = job->started_us;
    info->finished_us = job->finished_us;
    info->worker_pid = job->worker_pid;
    info->result_size = job->result_size;
    info->max_retries = job->max_retries;
    info->timeout_ms = job->timeout_ms;
    info->run_at_us = job->state == FORQ_STATE_SCHEDULED ? job->run_at_us : 0;
    if (code != 0) {
        info->error_code = code;
        if ((info->error_msg = future_error_text(code, job->error.msg)) == NULL)
            goto nomem;
    }
    if (last->code < 0) {
        info->last_error_code = last->code;
        if ((info->last_error_msg = future_error_text(last->code, last->msg)) == NULL)
            goto nomem;
    }
    if (job->unique_key.len > 0 &&
        (info->unique_key = strndup(job->unique_key.ptr, job->unique_key.len)) == NULL)
        goto nomem;
    return 0;
nomem:
    forq_job_info_clear(info);
    return client_seterr(FORQ_ERR_NOMEM, "out of memory");
}

int
forq_status(forq_client *c, uint64_t id, struct forq_job_info *info)
{
    struct msg_request req;
    struct client_rpc rpc;
    int r;

    if (info == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no place for the job info");
    memset(info, 0, sizeof(*info));
    if ((r = client_check_open(c)) != 0)
        return r;
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_STATUS;
    req.u.status.id = id;
    if ((r = client_rpc_run(c, &req, -1, &rpc)) == 0)
        r = future_info_copy(info, &rpc.resp.job);
    client_rpc_fini(&rpc);
    return r;
}

void
forq_job_info_clear(struct forq_job_info *info)
{
    if (info == NULL)
        return;
    free(info->error_msg);
    free(info->unique_key);
    free(info->last_error_msg);
    memset(info, 0, sizeof(*info));
}

int
forq_cancel(forq_client *c, uint64_t id)
{
    int r;

    if ((r = client_check_open(c)) != 0)
        return r;
    return future_cancel_id(c, id, 0, NULL);
}

int
forq_cancel_running(forq_client *c, uint64_t id)
{
    int r;

    if ((r = client_check_open(c)) != 0)
        return r;
    return future_cancel_id(c, id, 1, NULL);
}
