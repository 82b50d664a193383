/*
 * msg.h — forq's messages: typed C structs for every request and response,
 * their msgpack encoding and a strict decoder. PROTOCOL.md is the prose
 * version of this file.
 *
 * One table per message (in msg.c) lists its keys, their types, limits and
 * whether they are required; the same table drives encoding and decoding, so
 * the two cannot drift apart. Decoding checks structure first (mpscan), then
 * unpacks with msgpack-c into a reusable zone and copies typed values out.
 *
 * Pure functions; no I/O and no globals. A decoder is not thread-safe: use one
 * per thread.
 */
#ifndef FORQ_MSG_H
#define FORQ_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/*
 * Protocol version, exchanged in HELLO. Bump it only for changes that break
 * existing peers: a removed or retyped field, a new required field, a changed
 * meaning. New ops and new optional fields do not bump it: unknown keys are
 * ignored and unknown ops are answered with unknown_op.
 */
#define MSG_PROTO_VERSION 1

#define MSG_MAX_DEPTH      8     /* containers nested deeper are a protocol error */
#define MSG_MAX_ITEMS      65536 /* elements per message, all containers together */
/*
 * STATS lists every queue (up to 27 elements each: 13 keys, 13 values, the
 * map) and every worker (13) in one message of at most MSG_MAX_ITEMS
 * elements: 1920 × 27 + 1024 × 13 = 65152, with room for the totals. A
 * server has at most this many of each (its max_queues and workers ceilings);
 * a new queue or worker field needs these looked at again
 * (tests/unit/proto/test_msg.c encodes a full STATS).
 */
#define MSG_STATS_QUEUES_MAX  1920
#define MSG_STATS_WORKERS_MAX 1024
#define MSG_KEY_MAX        256   /* unique_key, token, client name: bytes */
#define MSG_MS_MAX         ((uint64_t)1 << 40) /* ~35 years: delays and timeouts */
#define MSG_WATCH_MAX      10000 /* ids in one WATCH */
#define MSG_RETRIES_MAX    1000  /* max_retries of a job */
#define MSG_QUEUE_LIMIT_MAX 1000000 /* a queue's concurrency limit */

enum msg_op {
    MSG_OP_HELLO = 0,
    MSG_OP_PING,
    MSG_OP_SUBMIT,
    MSG_OP_WAIT,
    MSG_OP_STATUS,
    MSG_OP_CANCEL,
    MSG_OP_STATS,
    MSG_OP_WATCH,
    MSG_OP_UNWATCH,
    MSG_OP_QUEUE,
    MSG_OP_JOIN,
    MSG_OP__COUNT
};

/* Wire name of an op ("submit"), or NULL when out of range. */
const char *msg_op_name(int op);

/* A borrowed byte string: not NUL-terminated, owned by whoever owns the frame. */
struct msg_str {
    const char *ptr;
    size_t len;
};

/* ------------------------------------------------------------------ requests */

struct msg_hello {
    uint32_t version;     /* required: the client's MSG_PROTO_VERSION */
    struct msg_str token; /* optional */
    struct msg_str client;/* optional: a name for logs */
};

struct msg_submit {
    struct msg_str task;       /* required name */
    struct msg_str payload;    /* required bytes (bin or str on the wire) */
    struct msg_str queue;      /* name; empty = "default" */
    int32_t priority;          /* lower first; default 0 */
    uint64_t delay_ms;         /* default 0 */
    uint64_t timeout_ms;       /* default 0 = none */
    uint32_t max_retries;      /* default 0 */
    struct msg_str unique_key; /* empty = none */
    uint64_t block_ms;         /* a full queue: wait this long for room; 0 = answer at once */
    uint64_t wait_ms;          /* answer once the job finishes (then with its snapshot in
                                  the response's job), or after this long; 0 = at once */
};

struct msg_wait {
    uint64_t id;
    int64_t timeout_ms; /* -1 (absent on the wire) = no limit; 0 = answer now */
};

struct msg_jobref {
    uint64_t id;
};

struct msg_cancel {
    uint64_t id;
    int running; /* 1: also cancel a running job, killing its worker */
};

/* Look at or change a queue (PROTOCOL.md, "queue"). */
struct msg_queue_req {
    struct msg_str queue;  /* required name */
    struct msg_str action; /* required: "info", "pause", "resume" or "set" */
    int64_t limit;         /* set: concurrency limit, 0 = none; -1 (absent) = unchanged */
    struct msg_str order;  /* set: "fifo" or "lifo"; empty (absent) = unchanged */
};

/* Answer once the queue has no unfinished job (PROTOCOL.md, "join"). */
struct msg_join {
    struct msg_str queue; /* required name */
    int64_t timeout_ms;   /* -1 (absent on the wire) = no limit; 0 = answer now */
};

/* Report each of these jobs as it finishes (PROTOCOL.md, "watch"). */
struct msg_watch {
    const uint64_t *ids; /* required: 1..MSG_WATCH_MAX ids, in the decoder's zone */
    size_t nids;
    int64_t timeout_ms; /* -1 (absent on the wire) = no limit */
};

/* End a watch early: the rid of the WATCH request. */
struct msg_unwatch {
    uint64_t watch;
};

struct msg_request {
    int op; /* enum msg_op */
    uint64_t rid;
    union {
        struct msg_hello hello;
        struct msg_submit submit;
        struct msg_wait wait;
        struct msg_jobref status;
        struct msg_cancel cancel;
        struct msg_watch watch;
        struct msg_unwatch unwatch;
        struct msg_queue_req queue;
        struct msg_join join;
    } u;
};

/* ------------------------------------------------------------------ responses */

struct msg_error {
    int32_t code; /* FORQ_ERR_*; 0 = no error */
    struct msg_str msg;
};

struct msg_hello_ok {
    uint32_t version;
    struct msg_str server;
    uint64_t max_frame; /* largest frame body the server accepts */
};

/* A job snapshot: the answer to WAIT, STATUS and CANCEL. */
struct msg_job {
    uint64_t id;
    int32_t state; /* enum forq_state */
    struct msg_str task, queue;
    int32_t priority;
    uint32_t attempts;
    uint64_t created_us, started_us, finished_us;
    int32_t worker_pid;
    uint64_t result_size;
    struct msg_str result;  /* WAIT answers only, when succeeded */
    struct msg_error error; /* when failed or cancelled */
    uint32_t max_retries;
    uint64_t timeout_ms;      /* 0 = none */
    uint64_t run_at_us;       /* scheduled: when it becomes runnable (unix µs) */
    struct msg_str unique_key;
    struct msg_error last_error; /* the last failed attempt, while retries remain */
};

struct msg_queue_stats {
    struct msg_str name;
    uint64_t queued, running, submitted, succeeded, failed, cancelled;
    uint64_t scheduled, retried;
    uint64_t blocked;     /* SUBMITs waiting for room (block_ms) */
    int paused;
    uint32_t limit;       /* 0 = none */
    struct msg_str order; /* "fifo" or "lifo" */
};

struct msg_worker_stats {
    uint32_t slot;
    int32_t pid;
    struct msg_str state;
    uint64_t job, jobs_done, restarts;
};

struct msg_stats {
    struct msg_str server;
    uint64_t uptime_ms, connections;
    uint64_t queued, running, submitted, succeeded, failed, cancelled;
    uint64_t scheduled, retried;
    struct msg_str durability; /* "full", "normal" or "off" */
    uint64_t store_commits, store_fsyncs, store_records, store_failures;
    uint64_t store_max_batch, store_commit_us, store_purged;
    size_t nqueues;
    struct msg_queue_stats *queues;
    size_t nworkers;
    struct msg_worker_stats *workers;
};

/*
 * A response. Exactly one of the parts is meaningful: err when err.code != 0,
 * otherwise the part that belongs to the request's op (none for PING).
 *
 * WATCH is answered by several frames: one event per id, each with more = 1
 * and either job (the finished job, with its result) or id + err (that job
 * cannot be watched), then one last frame without more (ok, or err).
 */
struct msg_response {
    uint64_t rid;
    int more;                  /* 1: another frame for this rid follows (WATCH events) */
    struct msg_error err;
    struct msg_hello_ok hello; /* HELLO */
    uint64_t id;               /* SUBMIT; the job of a WATCH event with err */
    int duplicate;             /* SUBMIT: id is a job submitted earlier with the same unique_key */
    struct msg_job job;        /* WAIT, STATUS, CANCEL; a WATCH event; a SUBMIT with wait_ms
                                  whose job finished in time (job.id == 0: absent) */
    struct msg_stats stats;    /* STATS */
    struct msg_queue_stats queue; /* QUEUE */
};

/* ------------------------------------------------------------------ decoding */

struct msg_decoder {
    msgpack_zone zone; /* holds msgpack objects and decoded arrays; reset per decode */
    char why[256];     /* what was wrong with the last message that failed */
};

/* Returns 0 or FORQ_ERR_NOMEM. */
int msg_decoder_init(struct msg_decoder *d);
void msg_decoder_fini(struct msg_decoder *d);

/*
 * Decode one frame body into *req (cleared first). Strings in *req point into
 * body or into d, valid until the next decode on d or until body is freed.
 * Returns:
 *   0                     a valid request;
 *   FORQ_ERR_PROTOCOL     not one well-formed msgpack map within the limits:
 *                         the stream cannot be trusted, close the connection;
 *   FORQ_ERR_UNKNOWN_OP   a map with an op this version does not know;
 *   FORQ_ERR_BAD_REQUEST  a missing field, a wrong type or a value out of range.
 * On failure d->why says what was wrong, and req->rid is set when the message
 * carried a readable rid (so the error can be matched to the request).
 */
int msg_decode_request(struct msg_decoder *d, const uint8_t *body, size_t len,
                       struct msg_request *req);

/*
 * Decode the body of a response to a request of the given op. Same rules and
 * codes as msg_decode_request (FORQ_ERR_BAD_REQUEST here means the server sent
 * something this client cannot read).
 */
int msg_decode_response(struct msg_decoder *d, int op, const uint8_t *body, size_t len,
                        struct msg_response *resp);

/*
 * Read a message's rid without decoding the rest. Returns 0, FORQ_ERR_PROTOCOL
 * (malformed) or FORQ_ERR_NOT_FOUND (no rid).
 */
int msg_peek_rid(const uint8_t *body, size_t len, uint64_t *rid);

/* ------------------------------------------------------------------ encoding */

/*
 * Each encoder appends one complete frame (4-byte length + body) to sb.
 * Returns 0, FORQ_ERR_NOMEM, or FORQ_ERR_INVALID (an op out of range or a
 * value the protocol cannot carry). On failure sb keeps its previous content.
 */
int msg_encode_request(msgpack_sbuffer *sb, const struct msg_request *req);
int msg_encode_response(msgpack_sbuffer *sb, int op, const struct msg_response *resp);
/*
 * Shorthand for an error response: {rid, err: {code, msg}}. msg_encode_response
 * writes the same (plus more and id when set) when resp->err.code != 0. A NULL
 * or empty text is sent as forq_strerror(code).
 */
int msg_encode_error(msgpack_sbuffer *sb, uint64_t rid, int code, const char *msg);

/*
 * 1 if s[0..n) is valid UTF-8 by the protocol's strict rule: no overlong
 * forms, no surrogates, nothing above U+10FFFF. Else 0.
 */
int msg_utf8_valid(const uint8_t *s, size_t n);

/*
 * Make the NUL-terminated string s valid UTF-8 in place: each byte that does
 * not start a valid sequence becomes '?'. Returns how many were replaced.
 */
size_t msg_utf8_scrub(char *s);

/* 1 if s[0..n) is a task or queue name: 1..FORQ_NAME_MAX bytes of [A-Za-z0-9_.:-]. */
int msg_name_valid(const char *s, size_t n);

/* Helpers: wrap a C string; compare a msg_str with a C string. */
struct msg_str msg_str_c(const char *s);
int msg_str_eq(struct msg_str s, const char *c);

#endif /* FORQ_MSG_H */
