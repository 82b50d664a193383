/*
 * msg.c — forq's message tables, encoder and strict decoder.
 *
 * Every message is described once, as a table of fields (key, type, limits,
 * required). msg_pack_map() writes a struct by its table and msg_unpack_map()
 * reads one back, checking each value's type and range. Nothing here does I/O
 * or keeps state between calls beyond the decoder's zone.
 *
 * Field rules:
 *  - Keys are msgpack str. Unknown keys are ignored; a known key given twice is
 *    a bad request. nil counts as absent for optional fields.
 *  - On encode, optional fields holding their default (0, empty) are omitted.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "forq.h"
#include "frame.h"
#include "mpscan.h"
#include "msg.h"

enum msg_ftype {
    MSG_F_U64,     /* non-negative integer <= max (0 = no extra limit) */
    MSG_F_U32,     /* non-negative integer <= UINT32_MAX and <= max */
    MSG_F_I32,     /* integer in int32 range */
    MSG_F_NAME,    /* str: 1..FORQ_NAME_MAX bytes of [A-Za-z0-9_.:-] */
    MSG_F_STR,     /* str: valid UTF-8, <= max bytes when max != 0 */
    MSG_F_BYTES,   /* bin (or str): raw bytes */
    MSG_F_TIMEOUT, /* non-negative integer <= max into int64; absent = -1 */
    MSG_F_STATE,   /* str naming a job state, into int32 */
    MSG_F_MAP,     /* a nested map described by sub */
    MSG_F_LIST,    /* an array of maps described by sub: pointer at off, count at count_off */
    MSG_F_IDS,     /* an array of 1..max integers: uint64_t pointer at off, count at count_off */
    MSG_F_BOOL,    /* true or false, into int; false is the default */
};

#define MSG_REQUIRED 0x1

struct msg_spec;

struct msg_field {
    const char *key;
    uint8_t type;  /* enum msg_ftype */
    uint8_t flags; /* MSG_REQUIRED */
    uint32_t off;  /* offset of the value in the struct */
    uint64_t max;  /* limit, per type */
    const struct msg_spec *sub;
    uint32_t count_off; /* MSG_F_LIST: offset of the size_t count */
};

struct msg_spec {
    const struct msg_field *fields;
    size_t nfields;
    size_t size; /* sizeof the struct the table describes */
};

#define F(st, k, t, fl, member, mx) {k, t, fl, offsetof(st, member), mx, NULL, 0}
#define FMAP(st, k, fl, member, spec) {k, MSG_F_MAP, fl, offsetof(st, member), 0, &spec, 0}
#define FLIST(st, k, member, cnt, spec)                                                        \
    {k, MSG_F_LIST, 0, offsetof(st, member), 0, &spec, offsetof(st, cnt)}
#define FIDS(st, k, fl, member, cnt, mx)                                                        \
    {k, MSG_F_IDS, fl, offsetof(st, member), mx, NULL, offsetof(st, cnt)}
#define SPEC(st, arr) {arr, sizeof(arr) / sizeof(arr[0]), sizeof(st)}
#define SPEC_EMPTY(st) {NULL, 0, sizeof(st)}

/* ------------------------------------------------------------------ tables */

static const struct msg_field msg_hello_fields[] = {
    F(struct msg_hello, "version", MSG_F_U32, MSG_REQUIRED, version, 0),
    F(struct msg_hello, "token", MSG_F_STR, 0, token, MSG_KEY_MAX),
    F(struct msg_hello, "client", MSG_F_STR, 0, client, MSG_KEY_MAX),
};
static const struct msg_field msg_submit_fields[] = {
    F(struct msg_submit, "task", MSG_F_NAME, MSG_REQUIRED, task, 0),
    F(struct msg_submit, "payload", MSG_F_BYTES, MSG_REQUIRED, payload, 0),
    F(struct msg_submit, "queue", MSG_F_NAME, 0, queue, 0),
    F(struct msg_submit, "priority", MSG_F_I32, 0, priority, 0),
    F(struct msg_submit, "delay_ms", MSG_F_U64, 0, delay_ms, MSG_MS_MAX),
    F(struct msg_submit, "timeout_ms", MSG_F_U64, 0, timeout_ms, MSG_MS_MAX),
    F(struct msg_submit, "max_retries", MSG_F_U32, 0, max_retries, MSG_RETRIES_MAX),
    F(struct msg_submit, "unique_key", MSG_F_STR, 0, unique_key, MSG_KEY_MAX),
    F(struct msg_submit, "block_ms", MSG_F_U64, 0, block_ms, MSG_MS_MAX),
    F(struct msg_submit, "wait_ms", MSG_F_U64, 0, wait_ms, MSG_MS_MAX),
};
static const struct msg_field msg_wait_fields[] = {
    F(struct msg_wait, "id", MSG_F_U64, MSG_REQUIRED, id, 0),
    F(struct msg_wait, "timeout_ms", MSG_F_TIMEOUT, 0, timeout_ms, MSG_MS_MAX),
};
static const struct msg_field msg_jobref_fields[] = {
    F(struct msg_jobref, "id", MSG_F_U64, MSG_REQUIRED, id, 0),
};
static const struct msg_field msg_cancel_fields[] = {
    F(struct msg_cancel, "id", MSG_F_U64, MSG_REQUIRED, id, 0),
    F(struct msg_cancel, "running", MSG_F_BOOL, 0, running, 0),
};
static const struct msg_field msg_queue_req_fields[] = {
    F(struct msg_queue_req, "queue", MSG_F_NAME, MSG_REQUIRED, queue, 0),
    F(struct msg_queue_req, "action", MSG_F_STR, MSG_REQUIRED, action, 16),
    F(struct msg_queue_req, "limit", MSG_F_TIMEOUT, 0, limit, MSG_QUEUE_LIMIT_MAX),
    F(struct msg_queue_req, "order", MSG_F_STR, 0, order, 16),
};
static const struct msg_field msg_join_fields[] = {
    F(struct msg_join, "queue", MSG_F_NAME, MSG_REQUIRED, queue, 0),
    F(struct msg_join, "timeout_ms", MSG_F_TIMEOUT, 0, timeout_ms, MSG_MS_MAX),
};
static const struct msg_field msg_watch_fields[] = {
    FIDS(struct msg_watch, "ids", MSG_REQUIRED, ids, nids, MSG_WATCH_MAX),
    F(struct msg_watch, "timeout_ms", MSG_F_TIMEOUT, 0, timeout_ms, MSG_MS_MAX),
};
static const struct msg_field msg_unwatch_fields[] = {
    F(struct msg_unwatch, "watch", MSG_F_U64, MSG_REQUIRED, watch, 0),
};

static const struct msg_spec msg_request_specs[MSG_OP__COUNT] = {
    [MSG_OP_HELLO] = SPEC(struct msg_hello, msg_hello_fields),
    [MSG_OP_PING] = SPEC_EMPTY(struct msg_jobref),
    [MSG_OP_SUBMIT] = SPEC(struct msg_submit, msg_submit_fields),
    [MSG_OP_WAIT] = SPEC(struct msg_wait, msg_wait_fields),
    [MSG_OP_STATUS] = SPEC(struct msg_jobref, msg_jobref_fields),
    [MSG_OP_CANCEL] = SPEC(struct msg_cancel, msg_cancel_fields),
    [MSG_OP_STATS] = SPEC_EMPTY(struct msg_jobref),
    [MSG_OP_WATCH] = SPEC(struct msg_watch, msg_watch_fields),
    [MSG_OP_UNWATCH] = SPEC(struct msg_unwatch, msg_unwatch_fields),
    [MSG_OP_QUEUE] = SPEC(struct msg_queue_req, msg_queue_req_fields),
    [MSG_OP_JOIN] = SPEC(struct msg_join, msg_join_fields),
};

static const char *const msg_op_names[MSG_OP__COUNT] = {
    [MSG_OP_HELLO] = "hello",   [MSG_OP_PING] = "ping",     [MSG_OP_SUBMIT] = "submit",
    [MSG_OP_WAIT] = "wait",     [MSG_OP_STATUS] = "status", [MSG_OP_CANCEL] = "cancel",
    [MSG_OP_STATS] = "stats",   [MSG_OP_WATCH] = "watch",   [MSG_OP_UNWATCH] = "unwatch",
    [MSG_OP_QUEUE] = "queue",   [MSG_OP_JOIN] = "join",
};

static const struct msg_field msg_error_fields[] = {
    F(struct msg_error, "code", MSG_F_I32, MSG_REQUIRED, code, 0),
    F(struct msg_error, "msg", MSG_F_STR, 0, msg, 0),
};
static const struct msg_spec msg_error_spec = SPEC(struct msg_error, msg_error_fields);

static const struct msg_field msg_job_fields[] = {
    F(struct msg_job, "id", MSG_F_U64, MSG_REQUIRED, id, 0),
    F(struct msg_job, "state", MSG_F_STATE, MSG_REQUIRED, state, 0),
    F(struct msg_job, "task", MSG_F_STR, 0, task, 0),
    F(struct msg_job, "queue", MSG_F_STR, 0, queue, 0),
    F(struct msg_job, "priority", MSG_F_I32, 0, priority, 0),
    F(struct msg_job, "attempts", MSG_F_U32, 0, attempts, 0),
    F(struct msg_job, "created_us", MSG_F_U64, 0, created_us, 0),
    F(struct msg_job, "started_us", MSG_F_U64, 0, started_us, 0),
    F(struct msg_job, "finished_us", MSG_F_U64, 0, finished_us, 0),
    F(struct msg_job, "worker_pid", MSG_F_I32, 0, worker_pid, 0),
    F(struct msg_job, "result_size", MSG_F_U64, 0, result_size, 0),
    F(struct msg_job, "result", MSG_F_BYTES, 0, result, 0),
    FMAP(struct msg_job, "error", 0, error, msg_error_spec),
    F(struct msg_job, "max_retries", MSG_F_U32, 0, max_retries, 0),
    F(struct msg_job, "timeout_ms", MSG_F_U64, 0, timeout_ms, 0),
    F(struct msg_job, "run_at_us", MSG_F_U64, 0, run_at_us, 0),
    F(struct msg_job, "unique_key", MSG_F_STR, 0, unique_key, 0),
    FMAP(struct msg_job, "last_error", 0, last_error, msg_error_spec),
};
static const struct msg_spec msg_job_spec = SPEC(struct msg_job, msg_job_fields);

static const struct msg_field msg_queue_stats_fields[] = {
    F(struct msg_queue_stats, "name", MSG_F_STR, MSG_REQUIRED, name, 0),
    F(struct msg_queue_stats, "queued", MSG_F_U64, 0, queued, 0),
    F(struct msg_queue_stats, "running", MSG_F_U64, 0, running, 0),
    F(struct msg_queue_stats, "submitted", MSG_F_U64, 0, submitted, 0),
    F(struct msg_queue_stats, "succeeded", MSG_F_U64, 0, succeeded, 0),
    F(struct msg_queue_stats, "failed", MSG_F_U64, 0, failed, 0),
    F(struct msg_queue_stats, "cancelled", MSG_F_U64, 0, cancelled, 0),
    F(struct msg_queue_stats, "scheduled", MSG_F_U64, 0, scheduled, 0),
    F(struct msg_queue_stats, "retried", MSG_F_U64, 0, retried, 0),
    F(struct msg_queue_stats, "blocked", MSG_F_U64, 0, blocked, 0),
    F(struct msg_queue_stats, "paused", MSG_F_BOOL, 0, paused, 0),
    F(struct msg_queue_stats, "limit", MSG_F_U32, 0, limit, 0),
    F(struct msg_queue_stats, "order", MSG_F_STR, 0, order, 0),
};
static const struct msg_spec msg_queue_stats_spec =
    SPEC(struct msg_queue_stats, msg_queue_stats_fields);

static const struct msg_field msg_worker_stats_fields[] = {
    F(struct msg_worker_stats, "slot", MSG_F_U32, MSG_REQUIRED, slot, 0),
    F(struct msg_worker_stats, "pid", MSG_F_I32, 0, pid, 0),
    F(struct msg_worker_stats, "state", MSG_F_STR, 0, state, 0),
    F(struct msg_worker_stats, "job", MSG_F_U64, 0, job, 0),
    F(struct msg_worker_stats, "jobs_done", MSG_F_U64, 0, jobs_done, 0),
    F(struct msg_worker_stats, "restarts", MSG_F_U64, 0, restarts, 0),
};
static const struct msg_spec msg_worker_stats_spec =
    SPEC(struct msg_worker_stats, msg_worker_stats_fields);

static const struct msg_field msg_stats_fields[] = {
    F(struct msg_stats, "server", MSG_F_STR, 0, server, 0),
    F(struct msg_stats, "uptime_ms", MSG_F_U64, 0, uptime_ms, 0),
    F(struct msg_stats, "connections", MSG_F_U64, 0, connections, 0),
    F(struct msg_stats, "queued", MSG_F_U64, 0, queued, 0),
    F(struct msg_stats, "running", MSG_F_U64, 0, running, 0),
    F(struct msg_stats, "submitted", MSG_F_U64, 0, submitted, 0),
    F(struct msg_stats, "succeeded", MSG_F_U64, 0, succeeded, 0),
    F(struct msg_stats, "failed", MSG_F_U64, 0, failed, 0),
    F(struct msg_stats, "cancelled", MSG_F_U64, 0, cancelled, 0),
    F(struct msg_stats, "scheduled", MSG_F_U64, 0, scheduled, 0),
    F(struct msg_stats, "retried", MSG_F_U64, 0, retried, 0),
    F(struct msg_stats, "durability", MSG_F_STR, 0, durability, 0),
    F(struct msg_stats, "store_commits", MSG_F_U64, 0, store_commits, 0),
    F(struct msg_stats, "store_fsyncs", MSG_F_U64, 0, store_fsyncs, 0),
    F(struct msg_stats, "store_records", MSG_F_U64, 0, store_records, 0),
    F(struct msg_stats, "store_failures", MSG_F_U64, 0, store_failures, 0),
    F(struct msg_stats, "store_max_batch", MSG_F_U64, 0, store_max_batch, 0),
    F(struct msg_stats, "store_commit_us", MSG_F_U64, 0, store_commit_us, 0),
    F(struct msg_stats, "store_purged", MSG_F_U64, 0, store_purged, 0),
    FLIST(struct msg_stats, "queues", queues, nqueues, msg_queue_stats_spec),
    FLIST(struct msg_stats, "workers", workers, nworkers, msg_worker_stats_spec),
};
static const struct msg_spec msg_stats_spec = SPEC(struct msg_stats, msg_stats_fields);

static const struct msg_field msg_hello_ok_fields[] = {
    F(struct msg_response, "version", MSG_F_U32, MSG_REQUIRED, hello.version, 0),
    F(struct msg_response, "server", MSG_F_STR, 0, hello.server, 0),
    F(struct msg_response, "max_frame", MSG_F_U64, 0, hello.max_frame, 0),
};
static const struct msg_field msg_submit_ok_fields[] = {
    F(struct msg_response, "id", MSG_F_U64, MSG_REQUIRED, id, 0),
    F(struct msg_response, "duplicate", MSG_F_BOOL, 0, duplicate, 0),
    FMAP(struct msg_response, "job", 0, job, msg_job_spec), /* with wait_ms, when finished */
};
static const struct msg_field msg_queue_ok_fields[] = {
    FMAP(struct msg_response, "queue", MSG_REQUIRED, queue, msg_queue_stats_spec),
};
static const struct msg_field msg_job_ok_fields[] = {
    FMAP(struct msg_response, "job", MSG_REQUIRED, job, msg_job_spec),
};
static const struct msg_field msg_stats_ok_fields[] = {
    FMAP(struct msg_response, "stats", MSG_REQUIRED, stats, msg_stats_spec),
};
/* A WATCH event carries more and job; the last frame carries neither. */
static const struct msg_field msg_watch_ok_fields[] = {
    F(struct msg_response, "more", MSG_F_BOOL, 0, more, 0),
    FMAP(struct msg_response, "job", 0, job, msg_job_spec),
};
/* Beside err: a WATCH event names its job and says more follow. */
static const struct msg_field msg_err_extra_fields[] = {
    F(struct msg_response, "more", MSG_F_BOOL, 0, more, 0),
    F(struct msg_response, "id", MSG_F_U64, 0, id, 0),
};
static const struct msg_spec msg_err_extra_spec = SPEC(struct msg_response, msg_err_extra_fields);

/* What a successful response carries besides rid, per op of the request. */
static const struct msg_spec msg_response_specs[MSG_OP__COUNT] = {
    [MSG_OP_HELLO] = SPEC(struct msg_response, msg_hello_ok_fields),
    [MSG_OP_PING] = SPEC_EMPTY(struct msg_response),
    [MSG_OP_SUBMIT] = SPEC(struct msg_response, msg_submit_ok_fields),
    [MSG_OP_WAIT] = SPEC(struct msg_response, msg_job_ok_fields),
    [MSG_OP_STATUS] = SPEC(struct msg_response, msg_job_ok_fields),
    [MSG_OP_CANCEL] = SPEC(struct msg_response, msg_job_ok_fields),
    [MSG_OP_STATS] = SPEC(struct msg_response, msg_stats_ok_fields),
    [MSG_OP_WATCH] = SPEC(struct msg_response, msg_watch_ok_fields),
    [MSG_OP_UNWATCH] = SPEC_EMPTY(struct msg_response),
    [MSG_OP_QUEUE] = SPEC(struct msg_response, msg_queue_ok_fields),
    [MSG_OP_JOIN] = SPEC_EMPTY(struct msg_response),
};

/* ------------------------------------------------------------------ small helpers */

const char *
msg_op_name(int op)
{
    if (op < 0 || op >= MSG_OP__COUNT)
        return NULL;
    return msg_op_names[op];
}

struct msg_str
msg_str_c(const char *s)
{
    struct msg_str r = {s, s ? strlen(s) : 0};

    return r;
}

int
msg_str_eq(struct msg_str s, const char *c)
{
    size_t n = strlen(c);

    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/*
 * Length (1..4) of the valid UTF-8 sequence at s[0..n), or 0 when the bytes
 * there do not start one. Strict: no overlong forms, no surrogates, nothing
 * above U+10FFFF.
 */
static size_t
msg_utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t k;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        k = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        k = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        k = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n <= k)
        return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k + 1;
}

int
msg_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        if ((k = msg_utf8_seq(s + i, n - i)) == 0)
            return 0;
        i += k;
    }
    return 1;
}

size_t
msg_utf8_scrub(char *s)
{
    size_t i = 0, k, n = strlen(s), fixed = 0;

    while (i < n) {
        if ((k = msg_utf8_seq((const uint8_t *)s + i, n - i)) == 0) {
            s[i] = '?';
            fixed++;
            k = 1;
        }
        i += k;
    }
    return fixed;
}

int
msg_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > FORQ_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

#define AT(p, off, type) ((type *)(void *)((char *)(p) + (off)))
#define CAT(p, off, type) ((const type *)(const void *)((const char *)(p) + (off)))

/* ------------------------------------------------------------------ encoding */

/* Is the field at its default, so that encoding can leave it out? */
static int
msg_field_is_default(const struct msg_field *f, const void *p)
{
    switch (f->type) {
    case MSG_F_U64:
        return *CAT(p, f->off, uint64_t) == 0;
    case MSG_F_U32:
        return *CAT(p, f->off, uint32_t) == 0;
    case MSG_F_I32:
    case MSG_F_STATE:
        return *CAT(p, f->off, int32_t) == 0;
    case MSG_F_TIMEOUT:
        return *CAT(p, f->off, int64_t) < 0;
    case MSG_F_NAME:
    case MSG_F_STR:
        return CAT(p, f->off, struct msg_str)->len == 0;
    case MSG_F_BYTES:
        return CAT(p, f->off, struct msg_str)->ptr == NULL;
    case MSG_F_MAP:
        for (size_t i = 0; i < f->sub->nfields; i++)
            if (!msg_field_is_default(&f->sub->fields[i], CAT(p, f->off, char)))
                return 0;
        return 1;
    case MSG_F_LIST:
    case MSG_F_IDS:
        return *CAT(p, f->count_off, size_t) == 0;
    case MSG_F_BOOL:
        return *CAT(p, f->off, int) == 0;
    }
    return 1;
}

static int msg_pack_map(msgpack_packer *pk, const struct msg_spec *spec, const void *p);

static int
msg_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        return FORQ_ERR_INVALID;
    return msgpack_pack_str_with_body(pk, s, n) ? FORQ_ERR_NOMEM : 0;
}

static int
msg_pack_value(msgpack_packer *pk, const struct msg_field *f, const void *p)
{
    const struct msg_str *s;
    int r = 0;

    switch (f->type) {
    case MSG_F_U64:
        r = msgpack_pack_uint64(pk, *CAT(p, f->off, uint64_t));
        break;
    case MSG_F_U32:
        r = msgpack_pack_uint32(pk, *CAT(p, f->off, uint32_t));
        break;
    case MSG_F_I32:
        r = msgpack_pack_int32(pk, *CAT(p, f->off, int32_t));
        break;
    case MSG_F_TIMEOUT:
        r = msgpack_pack_int64(pk, *CAT(p, f->off, int64_t));
        break;
    case MSG_F_STATE: {
        int st = *CAT(p, f->off, int32_t);

        if (st < 0 || st >= FORQ_STATE__COUNT)
            return FORQ_ERR_INVALID;
        return msg_pack_str(pk, forq_state_name(st), strlen(forq_state_name(st)));
    }
    case MSG_F_NAME:
    case MSG_F_STR:
        s = CAT(p, f->off, struct msg_str);
        return msg_pack_str(pk, s->ptr, s->len);
    case MSG_F_BYTES:
        s = CAT(p, f->off, struct msg_str);
        if (s->len > UINT32_MAX)
            return FORQ_ERR_INVALID;
        r = msgpack_pack_bin_with_body(pk, s->ptr, s->len);
        break;
    case MSG_F_MAP:
        return msg_pack_map(pk, f->sub, CAT(p, f->off, char));
    case MSG_F_LIST: {
        size_t n = *CAT(p, f->count_off, size_t);
        const char *elems = *CAT(p, f->off, char *);
        int e;

        if (n > UINT32_MAX)
            return FORQ_ERR_INVALID;
        if (msgpack_pack_array(pk, n))
            return FORQ_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            if ((e = msg_pack_map(pk, f->sub, elems + i * f->sub->size)) != 0)
                return e;
        return 0;
    }
    case MSG_F_IDS: {
        size_t n = *CAT(p, f->count_off, size_t);
        const uint64_t *ids = *CAT(p, f->off, uint64_t *);

        if (n > UINT32_MAX)
            return FORQ_ERR_INVALID;
        if (msgpack_pack_array(pk, n))
            return FORQ_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            if (msgpack_pack_uint64(pk, ids[i]))
                return FORQ_ERR_NOMEM;
        return 0;
    }
    case MSG_F_BOOL:
        r = *CAT(p, f->off, int) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    }
    return r ? FORQ_ERR_NOMEM : 0;
}

/* Number of map entries the struct at p encodes to. */
static size_t
msg_map_count(const struct msg_spec *spec, const void *p)
{
    size_t i, n = 0;

    for (i = 0; i < spec->nfields; i++)
        if ((spec->fields[i].flags & MSG_REQUIRED) || !msg_field_is_default(&spec->fields[i], p))
            n++;
    return n;
}

/* Pack the struct's non-default fields as key/value pairs (no map header). */
static int
msg_pack_fields(msgpack_packer *pk, const struct msg_spec *spec, const void *p)
{
    int e;

    for (size_t i = 0; i < spec->nfields; i++) {
        const struct msg_field *f = &spec->fields[i];

        if (!(f->flags & MSG_REQUIRED) && msg_field_is_default(f, p))
            continue;
        if ((e = msg_pack_str(pk, f->key, strlen(f->key))) != 0 ||
            (e = msg_pack_value(pk, f, p)) != 0)
            return e;
    }
    return 0;
}

/* Pack the struct at p as a map of its non-default fields. */
static int
msg_pack_map(msgpack_packer *pk, const struct msg_spec *spec, const void *p)
{
    if (msgpack_pack_map(pk, msg_map_count(spec, p)))
        return FORQ_ERR_NOMEM;
    return msg_pack_fields(pk, spec, p);
}

static int
msg_frame_begin(msgpack_sbuffer *sb, size_t *start)
{
    static const char zero[FRAME_HDR_LEN];

    *start = sb->size;
    return msgpack_sbuffer_write(sb, zero, sizeof(zero)) ? FORQ_ERR_NOMEM : 0;
}

/* Patch the length of the frame opened at start, or roll back on failure. */
static int
msg_frame_end(msgpack_sbuffer *sb, size_t start, int e)
{
    size_t body = sb->size - start - FRAME_HDR_LEN;

    if (e == 0 && body > UINT32_MAX)
        e = FORQ_ERR_INVALID;
    if (e != 0) {
        sb->size = start;
        return e;
    }
    frame_hdr_encode((uint8_t *)sb->data + start, (uint32_t)body);
    return 0;
}

static int
msg_pack_key(msgpack_packer *pk, const char *key)
{
    return msg_pack_str(pk, key, strlen(key));
}

int
msg_encode_request(msgpack_sbuffer *sb, const struct msg_request *req)
{
    msgpack_packer pk;
    const char *name = msg_op_name(req->op);
    size_t start;
    int e;

    if (name == NULL)
        return FORQ_ERR_INVALID;
    if ((e = msg_frame_begin(sb, &start)) != 0)
        return e;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    /* op and rid first: it makes hex dumps and logs easier to read. */
    if (msgpack_pack_map(&pk, 2 + msg_map_count(&msg_request_specs[req->op], &req->u)) ||
        (e = msg_pack_key(&pk, "op")) != 0 || (e = msg_pack_str(&pk, name, strlen(name))) != 0 ||
        (e = msg_pack_key(&pk, "rid")) != 0 || msgpack_pack_uint64(&pk, req->rid)) {
        e = e ? e : FORQ_ERR_NOMEM;
        goto out;
    }
    e = msg_pack_fields(&pk, &msg_request_specs[req->op], &req->u);
out:
    return msg_frame_end(sb, start, e);
}

/*
 * {rid, err: {code, msg}}, with more and id first when resp sets them (a
 * WATCH event about one job). The text is counted, so it may point into a
 * frame; an empty text is sent as the code's description, so that an error
 * always carries a message and encoding what was decoded gives the same bytes.
 */
static int
msg_encode_err(msgpack_sbuffer *sb, const struct msg_response *resp)
{
    struct msg_error err = resp->err;
    msgpack_packer pk;
    size_t start;
    int e;

    if (err.code >= 0)
        return FORQ_ERR_INVALID;
    if (err.msg.len == 0)
        err.msg = msg_str_c(forq_strerror(err.code));
    if ((e = msg_frame_begin(sb, &start)) != 0)
        return e;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 2 + msg_map_count(&msg_err_extra_spec, resp)) ||
        (e = msg_pack_key(&pk, "rid")) != 0 || msgpack_pack_uint64(&pk, resp->rid) ||
        (e = msg_pack_fields(&pk, &msg_err_extra_spec, resp)) != 0 ||
        (e = msg_pack_key(&pk, "err")) != 0) {
        e = e ? e : FORQ_ERR_NOMEM;
        goto out;
    }
    e = msg_pack_map(&pk, &msg_error_spec, &err);
out:
    return msg_frame_end(sb, start, e);
}

int
msg_encode_response(msgpack_sbuffer *sb, int op, const struct msg_response *resp)
{
    msgpack_packer pk;
    size_t start;
    int e;

    if (op < 0 || op >= MSG_OP__COUNT)
        return FORQ_ERR_INVALID;
    if (resp->err.code != 0)
        return msg_encode_err(sb, resp);
    if ((e = msg_frame_begin(sb, &start)) != 0)
        return e;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 1 + msg_map_count(&msg_response_specs[op], resp)) ||
        (e = msg_pack_key(&pk, "rid")) != 0 || msgpack_pack_uint64(&pk, resp->rid)) {
        e = e ? e : FORQ_ERR_NOMEM;
        goto out;
    }
    e = msg_pack_fields(&pk, &msg_response_specs[op], resp);
out:
    return msg_frame_end(sb, start, e);
}

int
msg_encode_error(msgpack_sbuffer *sb, uint64_t rid, int code, const char *text)
{
    struct msg_response resp;

    memset(&resp, 0, sizeof(resp));
    resp.rid = rid;
    resp.err.code = code;
    resp.err.msg = msg_str_c(text);
    return msg_encode_err(sb, &resp);
}

/* ------------------------------------------------------------------ decoding */

int
msg_decoder_init(struct msg_decoder *d)
{
    memset(d, 0, sizeof(*d));
    return msgpack_zone_init(&d->zone, 4096) ? 0 : FORQ_ERR_NOMEM;
}

void
msg_decoder_fini(struct msg_decoder *d)
{
    msgpack_zone_destroy(&d->zone);
}

static int msg_why(struct msg_decoder *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
msg_why(struct msg_decoder *d, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
    return code;
}

static int
msg_obj_str(const msgpack_object *o, struct msg_str *s)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        s->ptr = o->via.str.ptr;
        s->len = o->via.str.size;
        return 1;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        s->ptr = o->via.bin.ptr;
        s->len = o->via.bin.size;
        return 1;
    }
    return 0;
}

static int msg_unpack_map(struct msg_decoder *d, const msgpack_object *map,
                          const struct msg_spec *spec, void *p, const char *where);

static int
msg_unpack_int(struct msg_decoder *d, const struct msg_field *f, const msgpack_object *o, void *p,
               const char *where)
{
    uint64_t max;

    switch (f->type) {
    case MSG_F_I32:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
            *AT(p, f->off, int32_t) = (int32_t)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
            *AT(p, f->off, int32_t) = (int32_t)o->via.i64;
        else
            return msg_why(d, FORQ_ERR_BAD_REQUEST,
                           "%s%s: expected an integer in [-2147483648, 2147483647]", where, f->key);
        return 0;
    case MSG_F_U32:
        max = f->max ? f->max : UINT32_MAX;
        break;
    case MSG_F_TIMEOUT:
    case MSG_F_U64:
    default:
        max = f->max ? f->max : UINT64_MAX;
        break;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected an integer in [0, %llu]", where,
                       f->key, (unsigned long long)max);
    if (f->type == MSG_F_U32)
        *AT(p, f->off, uint32_t) = (uint32_t)o->via.u64;
    else if (f->type == MSG_F_TIMEOUT)
        *AT(p, f->off, int64_t) = (int64_t)o->via.u64;
    else
        *AT(p, f->off, uint64_t) = o->via.u64;
    return 0;
}

static int
msg_unpack_list(struct msg_decoder *d, const struct msg_field *f, const msgpack_object *o,
                void *p, const char *where)
{
    char sub[64];
    char *elems;
    size_t n, i;
    int e;

    if (o->type != MSGPACK_OBJECT_ARRAY)
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected an array", where, f->key);
    n = o->via.array.size;
    elems = n ? msgpack_zone_malloc(&d->zone, n * f->sub->size) : NULL;
    if (n && elems == NULL)
        return FORQ_ERR_NOMEM;
    if (n)
        memset(elems, 0, n * f->sub->size);
    for (i = 0; i < n; i++) {
        snprintf(sub, sizeof(sub), "%s%s[%zu].", where, f->key, i);
        if ((e = msg_unpack_map(d, &o->via.array.ptr[i], f->sub, elems + i * f->sub->size,
                                sub)) != 0)
            return e;
    }
    *AT(p, f->off, char *) = elems;
    *AT(p, f->count_off, size_t) = n;
    return 0;
}

static int
msg_unpack_ids(struct msg_decoder *d, const struct msg_field *f, const msgpack_object *o,
               void *p, const char *where)
{
    uint64_t *ids;
    size_t n, i;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 || o->via.array.size > f->max)
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected an array of 1..%llu ids", where,
                       f->key, (unsigned long long)f->max);
    n = o->via.array.size;
    if ((ids = msgpack_zone_malloc(&d->zone, n * sizeof(*ids))) == NULL)
        return FORQ_ERR_NOMEM;
    for (i = 0; i < n; i++) {
        if (o->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s[%zu]: expected an unsigned integer",
                           where, f->key, i);
        ids[i] = o->via.array.ptr[i].via.u64;
    }
    *AT(p, f->off, const uint64_t *) = ids;
    *AT(p, f->count_off, size_t) = n;
    return 0;
}

static int
msg_unpack_value(struct msg_decoder *d, const struct msg_field *f, const msgpack_object *o,
                 void *p, const char *where)
{
    struct msg_str s;
    char sub[64];
    int st;

    switch (f->type) {
    case MSG_F_U64:
    case MSG_F_U32:
    case MSG_F_I32:
    case MSG_F_TIMEOUT:
        return msg_unpack_int(d, f, o, p, where);
    case MSG_F_NAME:
        if (o->type != MSGPACK_OBJECT_STR || !msg_obj_str(o, &s) || !msg_name_valid(s.ptr, s.len))
            return msg_why(d, FORQ_ERR_BAD_REQUEST,
                           "%s%s: expected a name of 1..%d characters from [A-Za-z0-9_.:-]", where,
                           f->key, FORQ_NAME_MAX);
        *AT(p, f->off, struct msg_str) = s;
        return 0;
    case MSG_F_STR:
        if (o->type != MSGPACK_OBJECT_STR || !msg_obj_str(o, &s))
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected a string", where, f->key);
        if (f->max && s.len > f->max)
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: longer than %llu bytes", where,
                           f->key, (unsigned long long)f->max);
        if (!msg_utf8_valid((const uint8_t *)s.ptr, s.len))
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: not valid UTF-8", where, f->key);
        *AT(p, f->off, struct msg_str) = s;
        return 0;
    case MSG_F_BYTES:
        if (!msg_obj_str(o, &s))
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected bin or str", where, f->key);
        if (s.ptr == NULL)
            s.ptr = ""; /* present but empty: keep it distinguishable from absent */
        *AT(p, f->off, struct msg_str) = s;
        return 0;
    case MSG_F_STATE:
        if (o->type != MSGPACK_OBJECT_STR || !msg_obj_str(o, &s) ||
            (st = forq_state_parse(s.ptr, s.len)) < 0)
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected a job state", where, f->key);
        *AT(p, f->off, int32_t) = st;
        return 0;
    case MSG_F_MAP:
        snprintf(sub, sizeof(sub), "%s%s.", where, f->key);
        return msg_unpack_map(d, o, f->sub, AT(p, f->off, char), sub);
    case MSG_F_LIST:
        return msg_unpack_list(d, f, o, p, where);
    case MSG_F_IDS:
        return msg_unpack_ids(d, f, o, p, where);
    case MSG_F_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: expected true or false", where,
                           f->key);
        *AT(p, f->off, int) = o->via.boolean ? 1 : 0;
        return 0;
    }
    return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: unsupported field type", where, f->key);
}

/* Apply defaults that are not zero. */
static void
msg_defaults(const struct msg_spec *spec, void *p)
{
    for (size_t i = 0; i < spec->nfields; i++)
        if (spec->fields[i].type == MSG_F_TIMEOUT)
            *AT(p, spec->fields[i].off, int64_t) = -1;
}

/*
 * Fill the struct at p from a msgpack map by its table. where prefixes field
 * names in messages ("job.error.").
 */
static int
msg_unpack_map(struct msg_decoder *d, const msgpack_object *map, const struct msg_spec *spec,
               void *p, const char *where)
{
    uint32_t seen = 0; /* tables have at most 32 fields */
    size_t i, k;
    int e;

    if (map->type != MSGPACK_OBJECT_MAP) {
        size_t n = strlen(where);

        if (n == 0)
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "message: expected a map");
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "%.*s: expected a map", (int)n - 1, where);
    }
    msg_defaults(spec, p);
    for (k = 0; k < map->via.map.size; k++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[k];
        struct msg_str key;

        if (kv->key.type != MSGPACK_OBJECT_STR || !msg_obj_str(&kv->key, &key))
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%smap keys must be strings", where);
        for (i = 0; i < spec->nfields; i++)
            if (msg_str_eq(key, spec->fields[i].key))
                break;
        if (i == spec->nfields)
            continue; /* unknown keys are ignored */
        if (seen & (1u << i))
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: given twice", where,
                           spec->fields[i].key);
        seen |= 1u << i;
        if (kv->val.type == MSGPACK_OBJECT_NIL && !(spec->fields[i].flags & MSG_REQUIRED))
            continue;
        if ((e = msg_unpack_value(d, &spec->fields[i], &kv->val, p, where)) != 0)
            return e;
    }
    for (i = 0; i < spec->nfields; i++)
        if ((spec->fields[i].flags & MSG_REQUIRED) && !(seen & (1u << i)))
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s%s: missing", where,
                           spec->fields[i].key);
    return 0;
}

/*
 * Look up a top-level key in a map object: 0 with *val set (NULL when absent),
 * or FORQ_ERR_BAD_REQUEST when the key is there twice. rid, op and err are
 * read here rather than through a table, and a peer that keeps the first copy
 * and one that keeps the last would read different messages.
 */
static int
msg_map_get(struct msg_decoder *d, const msgpack_object *map, const char *key,
            const msgpack_object **val)
{
    *val = NULL;
    for (uint32_t k = 0; k < map->via.map.size; k++) {
        struct msg_str s;

        if (!msg_obj_str(&map->via.map.ptr[k].key, &s) ||
            map->via.map.ptr[k].key.type != MSGPACK_OBJECT_STR || !msg_str_eq(s, key))
            continue;
        if (*val != NULL) {
            *val = NULL;
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "%s: given twice", key);
        }
        *val = &map->via.map.ptr[k].val;
    }
    return 0;
}

/* Check and unpack a body into a top-level map object. */
static int
msg_unpack_top(struct msg_decoder *d, const uint8_t *body, size_t len, msgpack_object *top)
{
    const char *why;
    size_t off = 0;
    int r;

    d->why[0] = '\0';
    if (mpscan_check(body, len, MSG_MAX_DEPTH, MSG_MAX_ITEMS, &why) != 0)
        return msg_why(d, FORQ_ERR_PROTOCOL, "%s", why);
    msgpack_zone_clear(&d->zone);
    r = msgpack_unpack((const char *)body, len, &off, &d->zone, top);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return msg_why(d, FORQ_ERR_NOMEM, "out of memory decoding a message");
    if (r != MSGPACK_UNPACK_SUCCESS)
        return msg_why(d, FORQ_ERR_PROTOCOL, "msgpack-c rejected the message");
    if (top->type != MSGPACK_OBJECT_MAP)
        return msg_why(d, FORQ_ERR_PROTOCOL, "top level is not a map");
    return 0;
}

static int
msg_unpack_rid(struct msg_decoder *d, const msgpack_object *top, uint64_t *rid)
{
    const msgpack_object *o;
    int e;

    if ((e = msg_map_get(d, top, "rid", &o)) != 0)
        return e;
    if (o == NULL)
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "rid: missing");
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "rid: expected an unsigned integer");
    *rid = o->via.u64;
    return 0;
}

int
msg_decode_request(struct msg_decoder *d, const uint8_t *body, size_t len,
                   struct msg_request *req)
{
    const msgpack_object *op;
    msgpack_object top;
    struct msg_str name;
    int e, i;

    memset(req, 0, sizeof(*req));
    req->op = -1;
    if ((e = msg_unpack_top(d, body, len, &top)) != 0 ||
        (e = msg_unpack_rid(d, &top, &req->rid)) != 0)
        return e;
    if ((e = msg_map_get(d, &top, "op", &op)) != 0)
        return e;
    if (op == NULL)
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "op: missing");
    if (op->type != MSGPACK_OBJECT_STR || !msg_obj_str(op, &name))
        return msg_why(d, FORQ_ERR_BAD_REQUEST, "op: expected a string");
    for (i = 0; i < MSG_OP__COUNT; i++)
        if (msg_str_eq(name, msg_op_names[i]))
            break;
    if (i == MSG_OP__COUNT) {
        if (name.len <= FORQ_NAME_MAX && msg_name_valid(name.ptr, name.len))
            return msg_why(d, FORQ_ERR_UNKNOWN_OP, "unknown op '%.*s'", (int)name.len, name.ptr);
        return msg_why(d, FORQ_ERR_UNKNOWN_OP, "unknown op");
    }
    req->op = i;
    return msg_unpack_map(d, &top, &msg_request_specs[i], &req->u, "");
}

int
msg_decode_response(struct msg_decoder *d, int op, const uint8_t *body, size_t len,
                    struct msg_response *resp)
{
    const msgpack_object *err;
    msgpack_object top;
    int e;

    memset(resp, 0, sizeof(*resp));
    if (op < 0 || op >= MSG_OP__COUNT)
        return msg_why(d, FORQ_ERR_INVALID, "op out of range");
    if ((e = msg_unpack_top(d, body, len, &top)) != 0 ||
        (e = msg_unpack_rid(d, &top, &resp->rid)) != 0)
        return e;
    if ((e = msg_map_get(d, &top, "err", &err)) != 0)
        return e;
    if (err != NULL && err->type != MSGPACK_OBJECT_NIL) {
        if ((e = msg_unpack_map(d, err, &msg_error_spec, &resp->err, "err.")) != 0)
            return e;
        if (resp->err.code >= 0)
            return msg_why(d, FORQ_ERR_BAD_REQUEST, "err.code: expected a negative code");
        return msg_unpack_map(d, &top, &msg_err_extra_spec, resp, "");
    }
    return msg_unpack_map(d, &top, &msg_response_specs[op], resp, "");
}

int
msg_peek_rid(const uint8_t *body, size_t len, uint64_t *rid)
{
    const char *why;
    int e;

    *rid = 0;
    if (mpscan_check(body, len, MSG_MAX_DEPTH, (size_t)-1, &why) != 0)
        return FORQ_ERR_PROTOCOL;
    e = mpscan_map_uint(body, len, "rid", rid);
    return e == FORQ_ERR_NOT_FOUND ? e : e ? FORQ_ERR_PROTOCOL : 0;
}
