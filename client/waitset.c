/*
 * waitset.c — waiting for many futures with WATCH (see waitset.h).
 *
 * Entries live in one array, reused through a free list, and are found by
 * job id through a chained hash (one id may belong to several entries: the
 * same future twice, or two futures for one job). Each open WATCH is a
 * stream call posted to the waitset's inbox with its own tag; frames of a
 * stream that has been closed meanwhile carry a tag no stream has any more
 * and are dropped.
 *
 * Entry states: pending (outcome unknown; watched by stream `stream`, or
 * unarmed when stream is -1), done (the future holds its outcome), failed
 * (the server could not report on the id: not_found, storage...). An entry
 * is put on the ready FIFO once, when it leaves pending.
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "waitset.h"

#define WAITSET_NONE UINT32_MAX

enum { WS_FREE, WS_PENDING, WS_DONE, WS_FAILED };

struct waitset_entry {
    forq_future *f;
    uint64_t id;
    int state;
    int32_t stream;  /* index in ws->streams watching it; -1: unarmed */
    uint32_t next;   /* hash chain (in use) or free list (free) */
};

struct waitset_stream {
    struct conn_call call; /* rid and tag identify it */
    struct client_conn *conn;
    forq_client *c;
};

/* ------------------------------------------------------------------ entries */

static size_t
waitset_bucket(const struct waitset *ws, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (ws->nbuckets - 1);
}

static int
waitset_rehash(struct waitset *ws, size_t nbuckets)
{
    uint32_t *b;

    if ((b = calloc(nbuckets, sizeof(*b))) == NULL)
        return FORQ_ERR_NOMEM;
    free(ws->buckets);
    ws->buckets = b;
    ws->nbuckets = nbuckets;
    for (size_t i = 0; i < ws->cap; i++) {
        struct waitset_entry *e = &ws->e[i];
        size_t k;

        if (e->state == WS_FREE)
            continue;
        k = waitset_bucket(ws, e->id);
        e->next = b[k] ? b[k] - 1 : WAITSET_NONE;
        b[k] = (uint32_t)i + 1;
    }
    return 0;
}

/* Make room for one more entry. */
static int
waitset_grow(struct waitset *ws)
{
    size_t cap = ws->cap ? ws->cap * 2 : 64, i;
    struct waitset_entry *e;

    if (ws->free_head != WAITSET_NONE)
        return 0;
    if (cap >= WAITSET_NONE || (e = realloc(ws->e, cap * sizeof(*e))) == NULL)
        return FORQ_ERR_NOMEM;
    ws->e = e;
    for (i = ws->cap; i < cap; i++) {
        e[i].state = WS_FREE;
        e[i].next = i + 1 < cap ? (uint32_t)i + 1 : WAITSET_NONE;
    }
    ws->free_head = (uint32_t)ws->cap;
    ws->cap = cap;
    return waitset_rehash(ws, cap * 2);
}

/* Grow the ready ring to hold every entry, so that resolving never allocates. */
static int
waitset_reserve_ready(struct waitset *ws)
{
    uint32_t *r;

    if (ws->ready_cap >= ws->cap)
        return 0;
    if ((r = malloc(ws->cap * sizeof(*r))) == NULL)
        return FORQ_ERR_NOMEM;
    for (size_t i = 0; i < ws->ready_len; i++)
        r[i] = ws->ready[(ws->ready_head + i) % ws->ready_cap];
    free(ws->ready);
    ws->ready = r;
    ws->ready_head = 0;
    ws->ready_cap = ws->cap;
    return 0;
}

static void
waitset_push_ready(struct waitset *ws, size_t idx)
{
    ws->ready[(ws->ready_head + ws->ready_len++) % ws->ready_cap] = (uint32_t)idx;
}

/* An entry leaves pending for state. */
static void
waitset_resolve(struct waitset *ws, size_t idx, int state)
{
    struct waitset_entry *e = &ws->e[idx];

    if (e->stream < 0)
        ws->unarmed--;
    e->state = state;
    e->stream = -1;
    waitset_push_ready(ws, idx); /* the ring has room for every entry */
}

int
waitset_add(struct waitset *ws, forq_future *f, size_t *idx)
{
    struct waitset_entry *e;
    size_t i, k;

    if (waitset_grow(ws) != 0 || waitset_reserve_ready(ws) != 0)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    i = ws->free_head;
    e = &ws->e[i];
    ws->free_head = e->next;
    e->f = f;
    e->id = forq_future_id(f);
    e->state = WS_PENDING;
    e->stream = -1;
    k = waitset_bucket(ws, e->id);
    e->next = ws->buckets[k] ? ws->buckets[k] - 1 : WAITSET_NONE;
    ws->buckets[k] = (uint32_t)i + 1;
    ws->unarmed++;
    if (future_known(f))
        waitset_resolve(ws, i, WS_DONE);
    *idx = i;
    return 0;
}

void
waitset_remove(struct waitset *ws, size_t idx)
{
    struct waitset_entry *e = &ws->e[idx];
    size_t k = waitset_bucket(ws, e->id);
    uint32_t cur = ws->buckets[k] ? ws->buckets[k] - 1 : WAITSET_NONE, prev = WAITSET_NONE;

    if (e->state == WS_PENDING && e->stream < 0)
        ws->unarmed--;
    while (cur != WAITSET_NONE && cur != idx) {
        prev = cur;
        cur = ws->e[cur].next;
    }
    if (cur == idx && prev == WAITSET_NONE)
        ws->buckets[k] = e->next == WAITSET_NONE ? 0 : e->next + 1;
    else if (cur == idx)
        ws->e[prev].next = e->next;
    e->state = WS_FREE;
    e->f = NULL;
    e->next = ws->free_head;
    ws->free_head = (uint32_t)idx;
}

forq_future *
waitset_future(const struct waitset *ws, size_t idx)
{
    return ws->e[idx].f;
}

int
waitset_failed(const struct waitset *ws, size_t idx)
{
    const struct waitset_entry *e = &ws->e[idx];
    int code;

    if (e->state == WS_FAILED)
        return 1;
    if (e->state != WS_DONE)
        return 0;
    code = future_code(e->f);
    return code != 0 && code != FORQ_ERR_CANCELLED;
}

/* ------------------------------------------------------------------ streams */

static struct waitset_stream *
waitset_stream_by_tag(struct waitset *ws, uint64_t tag, size_t *si)
{
    for (size_t i = 0; i < ws->nstreams; i++) {
        if (ws->streams[i]->call.tag == tag) {
            *si = i;
            return ws->streams[i];
        }
    }
    return NULL;
}

/*
 * Close stream si: unpost it (and tell the server, when it is still open),
 * and put its pending entries back to unarmed.
 */
static void
waitset_stream_close(struct waitset *ws, size_t si, int unwatch)
{
    struct waitset_stream *st = ws->streams[si];
    struct msg_request req;
    msgpack_sbuffer sb;
    size_t last = ws->nstreams - 1;

    conn_unpost(st->conn, &st->call);
    if (unwatch) {
        memset(&req, 0, sizeof(req));
        req.op = MSG_OP_UNWATCH;
        req.u.unwatch.watch = st->call.rid;
        if (client_encode(st->c, &req, &sb) == 0)
            (void)conn_send_only(st->conn, &sb);
        msgpack_sbuffer_destroy(&sb);
    }
    conn_release(st->conn);
    for (size_t i = 0; i < ws->cap; i++) {
        struct waitset_entry *e = &ws->e[i];

        if (e->state == WS_PENDING && e->stream == (int32_t)si) {
            e->stream = -1;
            ws->unarmed++;
        } else if (e->state == WS_PENDING && e->stream == (int32_t)last) {
            e->stream = (int32_t)si; /* the last stream moves into si's place */
        }
    }
    free(st);
    ws->streams[si] = ws->streams[last];
    ws->nstreams--;
}

/*
 * Post one WATCH for the unarmed entries of client c (at most MSG_WATCH_MAX
 * ids), for at most timeout_ms (< 0: no limit).
 */
static int
waitset_arm_client(struct waitset *ws, forq_client *c, uint64_t *ids, int64_t timeout_ms)
{
    struct waitset_stream *st;
    struct msg_request req;
    msgpack_sbuffer sb;
    size_t i, nids = 0, max;
    int r;

    if (ws->nstreams == ws->streams_cap) {
        size_t cap = ws->streams_cap ? ws->streams_cap * 2 : 4;
        struct waitset_stream **s = realloc(ws->streams, cap * sizeof(*s));

        if (s == NULL)
            return client_seterr(FORQ_ERR_NOMEM, "out of memory");
        ws->streams = s;
        ws->streams_cap = cap;
    }
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    if ((r = client_conn_get(c, &st->conn)) != 0) {
        free(st);
        return r;
    }
    /* An id takes at most 9 bytes on the wire: stay within the server's frame. */
    max = (conn_max_frame(st->conn) - 64) / 9;
    max = max > MSG_WATCH_MAX ? MSG_WATCH_MAX : max < 1 ? 1 : max;
    for (i = 0; i < ws->cap && nids < max; i++) {
        struct waitset_entry *e = &ws->e[i];

        if (e->state == WS_PENDING && e->stream < 0 && future_client(e->f) == c)
            ids[nids++] = e->id;
    }
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_WATCH;
    req.u.watch.ids = ids;
    req.u.watch.nids = nids;
    req.u.watch.timeout_ms = timeout_ms;
    if ((r = client_encode(c, &req, &sb)) == 0) {
        st->c = c;
        st->call.rid = req.rid;
        st->call.inbox = &ws->ib;
        st->call.tag = ++ws->next_tag;
        st->call.stream = 1;
        if ((r = conn_post(st->conn, &sb, &st->call)) == FORQ_ERR_DISCONNECTED)
            r = conn_seterr_why(st->conn, r);
    }
    msgpack_sbuffer_destroy(&sb);
    if (r != 0) {
        conn_release(st->conn);
        free(st);
        return r;
    }
    /* Mark what this stream covers: the same scan, the same first nids entries. */
    for (i = 0, nids = 0; i < ws->cap && nids < max; i++) {
        struct waitset_entry *e = &ws->e[i];

        if (e->state == WS_PENDING && e->stream < 0 && future_client(e->f) == c) {
            e->stream = (int32_t)ws->nstreams;
            ws->unarmed--;
            nids++;
        }
    }
    ws->streams[ws->nstreams++] = st;
    return 0;
}

/* Watch every unarmed entry until deadline. */
static int
waitset_arm(struct waitset *ws, int64_t deadline)
{
    int64_t timeout_ms = deadline < 0 ? -1 : deadline - client_now_ms();
    uint64_t *ids;
    int r = 0;

    if (ws->unarmed == 0)
        return 0;
    if ((ids = malloc(MSG_WATCH_MAX * sizeof(*ids))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    while (ws->unarmed > 0 && r == 0) {
        forq_client *c = NULL;

        for (size_t i = 0; i < ws->cap && c == NULL; i++)
            if (ws->e[i].state == WS_PENDING && ws->e[i].stream < 0)
                c = future_client(ws->e[i].f);
        if ((r = client_check_open(c)) == 0)
            r = waitset_arm_client(ws, c, ids, deadline < 0 ? -1 : timeout_ms < 0 ? 0 : timeout_ms);
    }
    free(ids);
    return r;
}

/* ------------------------------------------------------------------ frames */

/* A job has finished: settle the pending entries for its id. */
static int
waitset_on_job(struct waitset *ws, const struct msg_job *job, struct conn_frame *fr)
{
    uint32_t i = ws->buckets[waitset_bucket(ws, job->id)];

    for (i = i ? i - 1 : WAITSET_NONE; i != WAITSET_NONE; i = ws->e[i].next) {
        struct waitset_entry *e = &ws->e[i];

        if (e->id != job->id || e->state != WS_PENDING)
            continue;
        if (future_settle(e->f, job, &fr->body, fr->len) != 0)
            return FORQ_ERR_NOMEM;
        waitset_resolve(ws, i, WS_DONE);
    }
    return 0;
}

/* The server cannot report on id: its entries are over, as failed. */
static void
waitset_on_error(struct waitset *ws, uint64_t id, const struct msg_error *err)
{
    uint32_t i = ws->buckets[waitset_bucket(ws, id)];

    for (i = i ? i - 1 : WAITSET_NONE; i != WAITSET_NONE; i = ws->e[i].next)
        if (ws->e[i].id == id && ws->e[i].state == WS_PENDING)
            waitset_resolve(ws, i, WS_FAILED);
    client_seterr(err->code, "job %llu: %.*s", (unsigned long long)id,
                  (int)(err->msg.len > 300 ? 300 : err->msg.len), err->msg.ptr);
}

/* Handle one frame of stream si. Returns 0, or the error that ends the wait. */
static int
waitset_on_frame(struct waitset *ws, size_t si, struct conn_frame *fr)
{
    struct msg_response resp;
    int r;

    if (fr->err == FORQ_ERR_DISCONNECTED) { /* the call is already unposted */
        r = conn_seterr_why(ws->streams[si]->conn, fr->err);
        waitset_stream_close(ws, si, 0);
        return r;
    }
    if (fr->err != 0) { /* no memory for a frame: the server's watch goes on; end it */
        waitset_stream_close(ws, si, 1);
        return client_seterr(fr->err, "out of memory reading WATCH events");
    }
    r = msg_decode_response(&ws->dec, MSG_OP_WATCH, fr->body, fr->len, &resp);
    if (r != 0) {
        waitset_stream_close(ws, si, 1);
        return client_seterr(r == FORQ_ERR_NOMEM ? r : FORQ_ERR_PROTOCOL,
                             "unreadable WATCH answer: %s", ws->dec.why);
    }
    if (resp.more && resp.err.code != 0) {
        waitset_on_error(ws, resp.id, &resp.err);
        return 0;
    }
    if (resp.more)
        return waitset_on_job(ws, &resp.job, fr);
    /* The last frame: every id was reported (ok), or the watch failed as a whole. */
    waitset_stream_close(ws, si, 0);
    if (resp.err.code == FORQ_ERR_TIMEOUT)
        return client_seterr(resp.err.code, "timed out: %.*s",
                             (int)(resp.err.msg.len > 300 ? 300 : resp.err.msg.len),
                             resp.err.msg.ptr);
    if (resp.err.code != 0)
        return client_seterr(resp.err.code, "WATCH refused: %.*s",
                             (int)(resp.err.msg.len > 300 ? 300 : resp.err.msg.len),
                             resp.err.msg.ptr);
    return 0;
}

/* ------------------------------------------------------------------ public */

int
waitset_init(struct waitset *ws)
{
    int r;

    memset(ws, 0, sizeof(*ws));
    ws->free_head = WAITSET_NONE;
    if ((r = conn_inbox_init(&ws->ib)) != 0)
        return r;
    if (msg_decoder_init(&ws->dec) != 0) {
        conn_inbox_fini(&ws->ib);
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    }
    return 0;
}

void
waitset_fini(struct waitset *ws)
{
    while (ws->nstreams > 0)
        waitset_stream_close(ws, ws->nstreams - 1, 1);
    conn_inbox_fini(&ws->ib);
    msg_decoder_fini(&ws->dec);
    free(ws->e);
    free(ws->buckets);
    free(ws->ready);
    free(ws->streams);
    memset(ws, 0, sizeof(*ws));
}

int
waitset_wake(struct waitset *ws)
{
    return conn_inbox_wake(&ws->ib);
}

int
waitset_pop_ready(struct waitset *ws, size_t *idx)
{
    if (ws->ready_len == 0)
        return 0;
    *idx = ws->ready[ws->ready_head];
    ws->ready_head = (ws->ready_head + 1) % ws->ready_cap;
    ws->ready_len--;
    return 1;
}

int
waitset_next(struct waitset *ws, int64_t deadline, size_t *idx)
{
    struct conn_frame *fr;
    size_t si;
    int r;

    for (;;) {
        if (waitset_pop_ready(ws, idx))
            return 0;
        if ((r = waitset_arm(ws, deadline)) != 0)
            return r;
        if (ws->nstreams == 0 && ws->unarmed == 0 && !ws->idle_wait) {
            /* Everything is reported; only a wake-up can bring more. */
            if (conn_inbox_next(&ws->ib, 0, &fr) != 0)
                return WAITSET_EMPTY;
        } else if ((r = conn_inbox_next(&ws->ib, deadline < 0 ? -1 : deadline + CLIENT_WAIT_GRACE_MS,
                                        &fr)) != 0) {
            return client_seterr(r, "no answer from the server in time");
        }
        if (fr->tag == 0) {
            conn_frame_free(fr);
            return WAITSET_WOKEN;
        }
        r = waitset_stream_by_tag(ws, fr->tag, &si) != NULL ? waitset_on_frame(ws, si, fr) : 0;
        conn_frame_free(fr);
        if (r != 0)
            return r;
    }
}
