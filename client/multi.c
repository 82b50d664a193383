/*
 * multi.c — many futures at once: forq_wait, forq_as_completed, forq_map.
 * The first two are thin loops over a waitset (waitset.c), which watches the
 * unfinished jobs with WATCH and settles each future as its job finishes.
 * forq_map needs no WATCH: each of its SUBMITs asks forqd to answer once the
 * job has finished (wait_ms), result included, and the SUBMITs that fill its
 * window go out in one piece.
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "conn.h"
#include "waitset.h"

#define MULTI_MAP_DEFAULT_INFLIGHT 64

static int64_t
multi_deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    if (timeout_ms > (int64_t)MSG_MS_MAX)
        timeout_ms = (int64_t)MSG_MS_MAX;
    return client_now_ms() + timeout_ms;
}

/* Add fs[0..n) to a fresh waitset: entry i is fs[i]. */
static int
multi_add_all(struct waitset *ws, forq_future *const *fs, size_t n)
{
    size_t idx;
    int r;

    for (size_t i = 0; i < n; i++) {
        if (fs[i] == NULL || (r = client_check_open(future_client(fs[i]))) != 0)
            return fs[i] == NULL ? client_seterr(FORQ_ERR_INVALID, "future %zu is NULL", i) : r;
        if ((r = waitset_add(ws, fs[i], &idx)) != 0)
            return r;
    }
    return 0;
}

/* ------------------------------------------------------------------ wait */

static int
multi_wait_met(int mode, size_t n, size_t ndone, size_t nfailed)
{
    switch (mode) {
    case FORQ_FIRST_COMPLETED:
        return ndone > 0;
    case FORQ_FIRST_EXCEPTION:
        return nfailed > 0 || ndone == n;
    default:
        return ndone == n;
    }
}

int
forq_wait(forq_future *const *fs, size_t n, int mode, int64_t timeout_ms, uint8_t *done)
{
    int64_t deadline = multi_deadline(timeout_ms);
    struct waitset ws;
    size_t ndone = 0, nfailed = 0, idx;
    uint8_t *mark;
    int r;

    if (n == 0)
        return 0;
    if (done != NULL)
        memset(done, 0, n);
    if (mode < FORQ_ALL_COMPLETED || mode > FORQ_FIRST_EXCEPTION)
        return client_seterr(FORQ_ERR_INVALID, "unknown wait mode %d", mode);
    if (fs == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no futures");
    if ((mark = done) == NULL && (mark = calloc(n, 1)) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    if ((r = waitset_init(&ws)) != 0)
        goto out;
    if ((r = multi_add_all(&ws, fs, n)) != 0)
        goto fini;
    while (!multi_wait_met(mode, n, ndone, nfailed)) {
        if ((r = waitset_next(&ws, deadline, &idx)) != 0)
            break;
        mark[idx] = 1;
        ndone++;
        nfailed += waitset_failed(&ws, idx);
    }
    if (r == WAITSET_EMPTY)
        r = 0;
    /* The condition may hold with more futures done than were counted. */
    while (waitset_pop_ready(&ws, &idx))
        mark[idx] = 1;
fini:
    waitset_fini(&ws);
out:
    if (mark != done)
        free(mark);
    return r;
}

/* ------------------------------------------------------------------ as_completed */

struct forq_as_completed {
    struct waitset ws;
    forq_future **fs; /* a copy of the caller's array (the futures are borrowed) */
    size_t n, yielded;
    int64_t deadline;
};

int
forq_as_completed_new(forq_future *const *fs, size_t n, int64_t timeout_ms,
                      forq_as_completed **out)
{
    forq_as_completed *it;
    int r;

    if (out == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no place for the iterator");
    *out = NULL;
    if (n > 0 && fs == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no futures");
    if ((it = calloc(1, sizeof(*it))) == NULL ||
        (n > 0 && (it->fs = malloc(n * sizeof(*fs))) == NULL)) {
        free(it);
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    }
    if ((r = waitset_init(&it->ws)) != 0) {
        free(it->fs);
        free(it);
        return r;
    }
    if (n > 0)
        memcpy(it->fs, fs, n * sizeof(*fs));
    it->n = n;
    it->deadline = multi_deadline(timeout_ms);
    if ((r = multi_add_all(&it->ws, fs, n)) != 0) {
        forq_as_completed_free(it);
        return r;
    }
    *out = it;
    return 0;
}

int
forq_as_completed_next(forq_as_completed *it, forq_future **f)
{
    size_t idx;
    int r;

    if (f != NULL)
        *f = NULL;
    if (it == NULL || f == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no iterator");
    if (it->yielded == it->n)
        return 0;
    r = waitset_next(&it->ws, it->deadline, &idx);
    if (r == WAITSET_EMPTY)
        return 0;
    if (r != 0)
        return r;
    it->yielded++;
    *f = it->fs[idx];
    return 1;
}

void
forq_as_completed_free(forq_as_completed *it)
{
    if (it == NULL)
        return;
    waitset_fini(&it->ws);
    free(it->fs);
    free(it);
}

/* ------------------------------------------------------------------ map */

/* One input in flight: submitted (or being), not handed back yet. */
struct multi_slot {
    struct conn_call call; /* the SUBMIT, until its answer is in */
    forq_future *f;        /* once accepted */
    int answered;          /* its SUBMIT's answer (or loss) has been taken */
};

struct multi_map {
    forq_client *c;
    const char *task;
    struct forq_submit_opts opts; /* the caller's, with wait_ms set */
    forq_map_next_fn next;
    forq_map_done_fn done;
    void *arg;
    size_t w;                 /* window: inputs in flight at most */
    struct multi_slot *slot;  /* ring of w, by input number */
    struct conn_call **calls; /* w: the calls of one batch of posts */
    size_t head, tail;        /* inputs [head, tail) are in flight */
    int more;                 /* next() may give more inputs */
    int64_t deadline;
    struct client_conn *conn; /* every SUBMIT of the map goes on this connection */
    struct conn_inbox sub;    /* SUBMIT answers */
    struct msg_decoder dec;
};

static struct multi_slot *
multi_slot(struct multi_map *m, size_t input)
{
    return &m->slot[input % m->w];
}

/*
 * Encode the SUBMIT of input i, whose payload next() gives, at the end of
 * batch. Returns 0, 1 (no more input) or a code.
 */
static int
multi_map_encode(struct multi_map *m, size_t i, msgpack_sbuffer *batch)
{
    struct multi_slot *s = multi_slot(m, i);
    struct msg_request req;
    msgpack_sbuffer sb;
    const void *payload = NULL;
    size_t len = 0;
    int r;

    if ((r = m->next(m->arg, i, &payload, &len)) <= 0) {
        m->more = 0;
        return r < 0 ? client_seterr(r, "the map's input stopped it") : 1;
    }
    if (payload == NULL && len > 0)
        return client_seterr(FORQ_ERR_INVALID, "input %zu: no payload", i);
    future_submit_request(&req, m->task, payload, len, &m->opts);
    memset(s, 0, sizeof(*s));
    if ((r = client_encode(m->c, &req, &sb)) == 0 &&
        (r = conn_check_frame(m->conn, sb.size)) == 0 &&
        msgpack_sbuffer_write(batch, sb.data, sb.size) != 0)
        r = client_seterr(FORQ_ERR_NOMEM, "out of memory");
    msgpack_sbuffer_destroy(&sb);
    s->call.rid = req.rid;
    s->call.inbox = &m->sub;
    s->call.tag = i + 1;
    return r;
}

/* Fill the window: the SUBMITs of the next inputs, sent in one piece. */
static int
multi_map_fill(struct multi_map *m)
{
    msgpack_sbuffer batch;
    size_t n = 0;
    int r = 0;

    msgpack_sbuffer_init(&batch);
    while (m->more && m->tail + n - m->head < m->w) {
        if ((r = multi_map_encode(m, m->tail + n, &batch)) != 0)
            break;
        m->calls[n] = &multi_slot(m, m->tail + n)->call;
        n++;
    }
    if (r == 1)
        r = 0;
    if (r == 0 && n > 0) {
        if ((r = conn_post_many(m->conn, &batch, m->calls, n)) == FORQ_ERR_DISCONNECTED)
            r = conn_seterr_why(m->conn, r);
        if (r == 0)
            m->tail += n;
    }
    msgpack_sbuffer_destroy(&batch);
    return r;
}

/*
 * The SUBMIT answer of input i. It carries the job's outcome, unless the
 * wait ended first (the map's time ran out, or the outcome is not stored
 * yet): then ask once more with what is left of the time.
 */
static int
multi_map_answer(struct multi_map *m, size_t i, struct conn_frame *fr)
{
    struct multi_slot *s = multi_slot(m, i);
    struct msg_response resp;
    int64_t left;
    int r;

    if (fr->err != 0)
        return client_seterr(fr->err, "input %zu: the connection was lost", i);
    if ((r = msg_decode_response(&m->dec, MSG_OP_SUBMIT, fr->body, fr->len, &resp)) != 0)
        return client_seterr(r == FORQ_ERR_NOMEM ? r : FORQ_ERR_PROTOCOL,
                             "unreadable SUBMIT answer: %s", m->dec.why);
    if (resp.err.code != 0)
        return client_seterr(resp.err.code, "input %zu: %.*s", i,
                             (int)(resp.err.msg.len > 300 ? 300 : resp.err.msg.len),
                             resp.err.msg.ptr);
    if ((r = forq_future_from_id(m->c, resp.id, &s->f)) != 0)
        return r;
    if (resp.job.id == resp.id)
        return future_settle(s->f, &resp.job, &fr->body, fr->len);
    left = m->deadline < 0 ? -1 : m->deadline - client_now_ms();
    r = forq_future_result(s->f, left < 0 && m->deadline >= 0 ? 0 : left, NULL, NULL);
    /* The job's own failure, not_found or storage are its outcome; these stop the map. */
    if (r == FORQ_ERR_TIMEOUT || r == FORQ_ERR_DISCONNECTED || r == FORQ_ERR_NOMEM ||
        r == FORQ_ERR_INVALID)
        return r;
    return 0;
}

/* Take every answer in (waiting for one), in the order they came. */
static int
multi_map_collect(struct multi_map *m)
{
    struct conn_frame *list, *fr;
    int r, e;

    if ((r = conn_inbox_next_all(&m->sub, m->deadline, &list)) != 0)
        return client_seterr(r, "the map ran out of time");
    while ((fr = list) != NULL) {
        list = fr->next;
        multi_slot(m, (size_t)fr->tag - 1)->answered = 1; /* taken, whatever it says */
        e = r == 0 ? multi_map_answer(m, (size_t)fr->tag - 1, fr) : 0;
        r = r ? r : e;
        conn_frame_free(fr);
    }
    return r;
}

/* Hand back the outcomes at the head of the window, in input order. */
static int
multi_map_deliver(struct multi_map *m)
{
    const void *data;
    size_t len;
    int code, r;

    while (m->head < m->tail && multi_slot(m, m->head)->answered) {
        struct multi_slot *s = multi_slot(m, m->head);

        code = forq_future_result(s->f, 0, &data, &len);
        r = m->done(m->arg, m->head, code, code == 0 ? data : NULL, code == 0 ? len : 0,
                    code == 0 ? NULL : forq_errmsg());
        forq_future_free(s->f);
        s->f = NULL;
        m->head++;
        if (r < 0)
            return client_seterr(r, "the map's consumer stopped it");
    }
    return 0;
}

static int
multi_map_run(struct multi_map *m)
{
    int r;

    for (;;) {
        if ((r = multi_map_deliver(m)) != 0 || (r = multi_map_fill(m)) != 0)
            return r;
        if (m->head == m->tail && !m->more)
            return 0;
        if ((r = multi_map_collect(m)) != 0)
            return r;
    }
}

int
forq_map(forq_client *c, const char *task, const struct forq_submit_opts *opts,
         size_t max_inflight, int64_t timeout_ms, forq_map_next_fn next, forq_map_done_fn done,
         void *arg)
{
    static const struct forq_submit_opts defaults = FORQ_SUBMIT_OPTS_INIT;
    struct multi_map m;
    int r;

    if (task == NULL || next == NULL || done == NULL)
        return client_seterr(FORQ_ERR_INVALID, "map needs a task, an input and an output");
    if ((r = client_check_open(c)) != 0)
        return r;
    memset(&m, 0, sizeof(m));
    m.c = c;
    m.task = task;
    m.opts = opts != NULL ? *opts : defaults;
    /* Each SUBMIT is answered when its job finishes, with the result: no WATCH. */
    m.opts.wait_ms = timeout_ms < 0 || (uint64_t)timeout_ms > MSG_MS_MAX ? MSG_MS_MAX
                                                                          : (uint64_t)timeout_ms;
    m.next = next;
    m.done = done;
    m.arg = arg;
    m.w = max_inflight ? max_inflight : MULTI_MAP_DEFAULT_INFLIGHT;
    m.more = 1;
    m.deadline = multi_deadline(timeout_ms);
    if ((m.slot = calloc(m.w, sizeof(*m.slot))) == NULL ||
        (m.calls = calloc(m.w, sizeof(*m.calls))) == NULL) {
        r = client_seterr(FORQ_ERR_NOMEM, "out of memory");
        goto out_slot;
    }
    if ((r = conn_inbox_init(&m.sub)) != 0)
        goto out_slot;
    if (msg_decoder_init(&m.dec) != 0) {
        r = client_seterr(FORQ_ERR_NOMEM, "out of memory");
        goto out_sub;
    }
    if ((r = client_conn_get(c, &m.conn)) == 0) {
        r = multi_map_run(&m);
        for (size_t i = m.head; i < m.tail; i++)
            if (!multi_slot(&m, i)->answered) /* stopped early: stop waiting for the rest */
                conn_unpost(m.conn, &multi_slot(&m, i)->call);
        conn_release(m.conn);
    }
    msg_decoder_fini(&m.dec);
out_sub:
    conn_inbox_fini(&m.sub);
out_slot:
    for (size_t i = m.head; i < m.tail; i++)
        forq_future_free(multi_slot(&m, i)->f);
    free(m.slot);
    free(m.calls);
    return r;
}
