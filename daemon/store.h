/*
 * store.h — durable job records in SQLite, written by one store thread with
 * group commit.
 *
 * The store owns the one sqlite3 connection to DIR/forq.db (WAL mode) and a
 * lock on DIR/forq.lock that keeps a second forqd off the same directory.
 * store_open runs on the main thread at start-up (lock, open, migrate); then
 * store_load reads back the unfinished jobs; then store_start hands the
 * connection to the store thread for good.
 *
 * The loop talks to the thread in records (struct store_rec): it queues them
 * with store_put and never waits; what one loop turn puts is handed over at
 * the end of the turn. The thread takes everything queued, runs it
 * in one transaction and commits (one fsync for the whole batch with
 * STORE_FULL), then hands the batch back; the loop gets each record in its
 * done callback, in the order it was put, with rec->status set. So a batch is
 * whatever arrived while the previous commit ran: fsyncs grow with batches,
 * not jobs.
 *
 * This is the whole interface between forqd and its database: SQL stays in
 * store.c, so another backend can replace it (DESIGN.md, "Beyond one
 * machine").
 */
#ifndef FORQ_STORE_H
#define FORQ_STORE_H

struct metrics;

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "forq.h"

struct event_base;
struct store;

enum store_durability {
    STORE_OFF = 0, /* no store at all: jobs live in memory only */
    STORE_NORMAL,  /* committed before the ack; survives a killed process, not a power cut */
    STORE_FULL,    /* committed and fsynced before the ack */
};

#define STORE_SCHEMA_VERSION 2 /* PRAGMA user_version after the last migration */

struct store_config {
    const char *dir;       /* data directory; created (0700) if missing */
    int durability;        /* STORE_NORMAL or STORE_FULL */
    uint64_t max_db_bytes; /* 0: no limit; else writes beyond it fail (SQLITE_FULL) */
    const char *vfs;       /* sqlite VFS to build on; NULL: the default (tests inject faults) */
    struct metrics *metrics; /* commit latency and batch size go here (store thread); or NULL */
};

/*
 * A job as the store sees it. Going in (STORE_INSERT, STORE_RUNNING,
 * STORE_FINISH) the pointers borrow the caller's memory, which must stay put
 * until the record comes back. Coming out (store_load rows, STORE_LOOKUP) they
 * point into memory the store owns: valid during the callback, or until the
 * record is freed.
 */
struct store_job {
    uint64_t id;
    int state; /* enum forq_state */
    const char *task, *queue; /* NUL-terminated */
    int32_t priority;
    uint64_t delay_ms, timeout_ms;
    uint32_t max_retries, attempts;
    int32_t worker_pid;
    uint64_t created_us, started_us, finished_us;
    uint64_t run_at_us; /* scheduled: when it becomes runnable */
    const uint8_t *payload;
    size_t payload_len;
    const char *unique_key; /* NULL: none */
    const uint8_t *result;
    size_t result_len;
    int err_code;        /* final error, or the last failed attempt's */
    const char *err_msg; /* NULL: none */
};

enum store_op {
    STORE_INSERT,  /* a new job; every field */
    STORE_RUNNING, /* id, state, attempts, worker_pid, started_us */
    STORE_REQUEUE, /* id, state, attempts: handed back before it ran */
    STORE_RETRY,   /* id, state, attempts, run_at_us, err_code + err_msg: waits for a retry */
    STORE_FINISH,  /* id, state, finished_us, result or err_code + err_msg; drops the payload */
    STORE_LOOKUP,  /* id in; job out (found = 1) */
};

struct store_rec {
    int op;              /* enum store_op */
    int status;          /* set by the store: 0 or FORQ_ERR_STORAGE */
    int why_rc;          /* the SQLite code behind a failure (store_strerror) */
    int found;           /* STORE_LOOKUP: 1 when the id exists */
    struct store_job job;
    uint64_t cookie[4];  /* the caller's, untouched (e.g. who asked) */
    void *owned;         /* the store's: lookup data; freed by store_rec_free */
    char task[FORQ_NAME_MAX + 1]; /* the caller's: room for job.task to point at */
    STAILQ_ENTRY(store_rec) link;
};

/*
 * Called on the loop thread for each finished record, in put order. The
 * callee owns rec from then on and frees it with store_rec_free.
 */
typedef void (*store_done_fn)(void *arg, struct store_rec *rec);

/*
 * Called by store_load for each unfinished job (queued, scheduled or
 * running; with run_at_us and the last attempt's error), in id order. Return 0 to go on, or a FORQ_ERR_* to stop the load
 * with that code.
 */
typedef int (*store_load_fn)(void *arg, const struct store_job *job);

/*
 * Lock the data directory, open or create forq.db and bring its schema up to
 * STORE_SCHEMA_VERSION. Returns 0 with *out, or FORQ_ERR_STORAGE (another
 * forqd holds the lock, the file is not a database or is newer than this
 * forqd, the disk refuses) or FORQ_ERR_NOMEM, with a one-line reason naming
 * the file in why. Main thread, start-up only.
 */
int store_open(const struct store_config *cfg, struct store **out, char *why, size_t whylen);

/*
 * Feed every unfinished job to fn and set *next_id to the first id never
 * handed out (ids are never reused, even after a purge). Before store_start
 * only. 0, fn's code, or FORQ_ERR_STORAGE with a reason in why.
 */
int store_load(struct store *st, store_load_fn fn, void *arg, uint64_t *next_id, char *why,
               size_t whylen);

/*
 * Start the store thread; from now on only it touches the database. Finished
 * records come back through done(arg, rec) on base's loop. 0 or
 * FORQ_ERR_SYSTEM / FORQ_ERR_NOMEM.
 */
int store_start(struct store *st, struct event_base *base, store_done_fn done, void *arg);

/*
 * Write out what is queued, stop the thread, close the database and release
 * the lock. Records not yet handed back are freed without a callback. NULL is
 * a no-op. Loop thread (or main thread after the loop ended).
 */
void store_close(struct store *st);

/* A zeroed record for op, or NULL on ENOMEM. */
struct store_rec *store_rec_new(int op);
/* Free a record and what the store allocated for it. NULL is a no-op. */
void store_rec_free(struct store_rec *rec);

/*
 * Queue a record for the next transaction. The store owns rec until it hands
 * it back through done. Never blocks on the database. The records of one loop
 * turn reach the store thread together, at the end of the turn, so they share
 * a commit. Loop thread (or the main thread before store_start: those
 * records wait for the thread and make its first batch).
 */
void store_put(struct store *st, struct store_rec *rec);

/*
 * Ask the thread to delete finished jobs that finished at or before
 * cutoff_us, a bounded number per transaction so acks are never held up.
 * Loop thread.
 */
void store_purge(struct store *st, uint64_t cutoff_us);

struct store_stats {
    uint64_t commits;     /* transactions committed */
    uint64_t fsyncs;      /* fsync/fdatasync calls sqlite made */
    uint64_t records;     /* records written */
    uint64_t failures;    /* records that came back with an error */
    uint64_t purged;      /* finished jobs deleted by the purge */
    uint64_t max_batch;   /* most records in one transaction */
    uint64_t commit_us;   /* total time spent in COMMIT */
};

/* A consistent copy of the counters. Any thread. */
void store_stats(struct store *st, struct store_stats *out);

/* What an SQLite code (rec->why_rc) means, e.g. "database or disk is full". */
const char *store_strerror(int rc);

/* "full", "normal" or "off"; and back (-1 when s names none). */
const char *store_durability_name(int durability);
int store_durability_parse(const char *s);

#endif /* FORQ_STORE_H */
