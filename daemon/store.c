/*
 * store.c — the job store: SQLite in WAL mode, one connection, one thread.
 *
 * The main thread opens, migrates and loads at start-up; after store_start
 * only the store thread touches the connection. The loop queues records
 * (pending), the thread takes all of them at once, runs them in one
 * transaction and hands the batch back (done) through an eventfd. Counters
 * are atomics so STATS can read them from the loop at any time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "forq.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "vfs.h"

#define STORE_DB_FILE     "forq.db"
#define STORE_LOCK_FILE   "forq.lock"
#define STORE_PURGE_CHUNK 5000 /* finished jobs deleted per transaction */

/* The WAL's layout (sqlite.org/fileformat2.html#walformat), for store_reserve_wal. */
#define STORE_WAL_HEADER         32
#define STORE_WAL_FRAME_HEADER   24
#define STORE_WAL_FRAMES_DEFAULT 1000 /* SQLite's wal_autocheckpoint default */
#define STORE_WAL_SLACK          100  /* frames past the checkpoint: the commit that crosses it */

STAILQ_HEAD(store_list, store_rec);

enum store_stmt {
    STORE_SQL_BEGIN,
    STORE_SQL_COMMIT,
    STORE_SQL_ROLLBACK,
    STORE_SQL_INSERT,
    STORE_SQL_PROGRESS,
    STORE_SQL_FINISH,
    STORE_SQL_RETRY,
    STORE_SQL_LOOKUP,
    STORE_SQL_PURGE,
    STORE_SQL_NEXT_ID,
    STORE_SQL__COUNT
};

/* Columns of a job, in the order STORE_SQL_INSERT binds and store_load reads them. */
#define STORE_JOB_COLUMNS                                                                      \
    "id, state, task, queue, priority, delay_ms, timeout_ms, max_retries, unique_key, "        \
    "attempts, worker_pid, created_us, started_us, finished_us, payload, run_at_us, "        \
    "err_code, err_msg"

static const char *const store_sql[STORE_SQL__COUNT] = {
    [STORE_SQL_BEGIN] = "BEGIN",
    [STORE_SQL_COMMIT] = "COMMIT",
    [STORE_SQL_ROLLBACK] = "ROLLBACK",
    [STORE_SQL_INSERT] = "INSERT INTO jobs (" STORE_JOB_COLUMNS ") "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                         "?16, ?17, ?18)",
    [STORE_SQL_PROGRESS] = "UPDATE jobs SET state = ?2, attempts = ?3, worker_pid = ?4, "
                           "started_us = ?5 WHERE id = ?1",
    [STORE_SQL_FINISH] = "UPDATE jobs SET state = ?2, attempts = ?3, worker_pid = ?4, "
                         "started_us = ?5, finished_us = ?6, result = ?7, err_code = ?8, "
                         "err_msg = ?9, payload = NULL WHERE id = ?1",
    [STORE_SQL_RETRY] = "UPDATE jobs SET state = ?2, attempts = ?3, worker_pid = ?4, "
                        "started_us = ?5, run_at_us = ?6, err_code = ?7, err_msg = ?8 WHERE id = ?1",
    [STORE_SQL_LOOKUP] = "SELECT state, task, queue, priority, delay_ms, timeout_ms, "
                         "max_retries, unique_key, attempts, worker_pid, created_us, "
                         "started_us, finished_us, result, err_code, err_msg "
                         "FROM jobs WHERE id = ?1",
    [STORE_SQL_PURGE] = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs "
                        "WHERE finished_us > 0 AND finished_us <= ?1 "
                        "ORDER BY finished_us LIMIT ?2)",
    /*
     * The purge may delete the newest rows too: first it saves the next id,
     * so ids are never reused. (Inserts leave meta alone: one page fewer per
     * commit, and recovery takes the larger of meta and MAX(id) + 1.)
     */
    [STORE_SQL_NEXT_ID] = "UPDATE meta SET value = (SELECT MAX(id) + 1 FROM jobs) "
                          "WHERE key = 'next_id' AND value < (SELECT MAX(id) + 1 FROM jobs)",
};

/*
 * Migrations: migration[v] takes a database from user_version v to v + 1.
 * Append, never edit: a database in the field may be at any version.
 */
static const char *const store_migrations[STORE_SCHEMA_VERSION] = {
    /* 0 -> 1: jobs and the id counter. */
    "CREATE TABLE jobs ("
    "  id          INTEGER PRIMARY KEY,"
    "  state       INTEGER NOT NULL,"
    "  task        TEXT    NOT NULL,"
    "  queue       TEXT    NOT NULL,"
    "  priority    INTEGER NOT NULL,"
    "  delay_ms    INTEGER NOT NULL,"
    "  timeout_ms  INTEGER NOT NULL,"
    "  max_retries INTEGER NOT NULL,"
    "  unique_key  TEXT,"
    "  attempts    INTEGER NOT NULL DEFAULT 0,"
    "  worker_pid  INTEGER NOT NULL DEFAULT 0,"
    "  created_us  INTEGER NOT NULL,"
    "  started_us  INTEGER NOT NULL DEFAULT 0,"
    "  finished_us INTEGER NOT NULL DEFAULT 0,"
    "  payload     BLOB,"
    "  result      BLOB,"
    "  err_code    INTEGER NOT NULL DEFAULT 0,"
    "  err_msg     TEXT"
    ");"
    /*
     * The purge walks finished jobs by age. Recovery scans the table instead
     * of keeping an index of unfinished jobs: that index cost every submit
     * and every finish a write (BENCHMARKS.md), to save a scan at start-up.
     */
    "CREATE INDEX jobs_finished ON jobs (finished_us) WHERE finished_us > 0;"
    /* Ids are never reused, even once every job that had them is purged. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('next_id', 1);",
    /*
     * 1 -> 2: delays and retries. A scheduled job's time (its delay, or its
     * backoff before the next attempt) is wall-clock µs, so it keeps its
     * meaning across a restart. err_code/err_msg of an unfinished job hold
     * its last failed attempt.
     */
    "ALTER TABLE jobs ADD COLUMN run_at_us INTEGER NOT NULL DEFAULT 0;",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[STORE_SQL__COUNT];
    struct vfs *vfs;
    char *path; /* DIR/forq.db, for messages */
    int lock_fd;
    int broken; /* store thread: a write failed in a way that cannot be trusted again */

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct store_list staged;  /* loop only: put this turn, handed over at its end */
    struct event *flush_ev;    /* loop only: active while staged is not empty */
    struct store_list pending; /* mu: put by the loop, taken by the thread */
    struct store_list done;    /* mu: put by the thread, taken by the loop */
    int sleeping;              /* mu: the thread waits on cond */
    int stopping;              /* mu */
    uint64_t purge_cutoff;     /* mu: 0 = nothing to purge */

    int efd; /* the thread -> loop wakeup */
    struct event *ev;
    store_done_fn done_fn;
    void *done_arg;

    _Atomic uint64_t commits, fsyncs, records, failures, purged, max_batch, commit_us;
    struct metrics *metrics; /* or NULL; its histograms take any thread */
};

/* ------------------------------------------------------------------ helpers */

const char *
store_durability_name(int durability)
{
    switch (durability) {
    case STORE_FULL:
        return "full";
    case STORE_NORMAL:
        return "normal";
    default:
        return "off";
    }
}

int
store_durability_parse(const char *s)
{
    if (strcmp(s, "full") == 0)
        return STORE_FULL;
    if (strcmp(s, "normal") == 0)
        return STORE_NORMAL;
    if (strcmp(s, "off") == 0)
        return STORE_OFF;
    return -1;
}

const char *
store_strerror(int rc)
{
    return sqlite3_errstr(rc);
}

static uint64_t
store_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int
store_sync_cb(void *arg)
{
    struct store *st = arg;

    atomic_fetch_add_explicit(&st->fsyncs, 1, memory_order_relaxed);
    return SQLITE_OK;
}

/* Errors after which the database cannot be trusted to have what we wrote. */
static int
store_rc_is_fatal(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return 1;
    default:
        return 0;
    }
}

static int
store_exec(struct store *st, const char *sql, char *why, size_t whylen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK)
        snprintf(why, whylen, "%s: %s", st->path, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* ------------------------------------------------------------------ open */

/* Take DIR/forq.lock, or say who holds it. */
static int
store_lock(struct store *st, const char *dir, char *why, size_t whylen)
{
    char path[4096], pid[32] = "";
    ssize_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK_FILE);
    if ((st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        return FORQ_ERR_STORAGE;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;

        if (err == EWOULDBLOCK) {
            n = pread(st->lock_fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            snprintf(why, whylen,
                     "another forqd (pid %s) is using the data directory %s (it holds %s)",
                     pid[0] ? pid : "unknown", dir, path);
        } else {
            snprintf(why, whylen, "cannot lock %s: %s", path, strerror(err));
        }
        return FORQ_ERR_STORAGE;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(st->lock_fd, 0) != 0 || pwrite(st->lock_fd, pid, (size_t)n, 0) != n)
        log_warn("cannot write the pid into %s: %s", path, strerror(errno));
    return 0;
}

static int
store_migrate(struct store *st, char *why, size_t whylen)
{
    sqlite3_stmt *s;
    int version, rc;
    char sql[64];

    if ((rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL)) != SQLITE_OK ||
        (rc = sqlite3_step(s)) != SQLITE_ROW) {
        snprintf(why, whylen, "cannot read %s: %s", st->path, sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        return FORQ_ERR_STORAGE;
    }
    version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > STORE_SCHEMA_VERSION || version < 0) {
        snprintf(why, whylen, "%s has schema version %d; this forqd knows up to %d", st->path,
                 version, STORE_SCHEMA_VERSION);
        return FORQ_ERR_STORAGE;
    }
    for (; version < STORE_SCHEMA_VERSION; version++) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
        if (store_exec(st, "BEGIN", why, whylen) != SQLITE_OK ||
            store_exec(st, store_migrations[version], why, whylen) != SQLITE_OK ||
            store_exec(st, sql, why, whylen) != SQLITE_OK ||
            store_exec(st, "COMMIT", why, whylen) != SQLITE_OK) {
            (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return FORQ_ERR_STORAGE;
        }
        log_info("%s: schema migrated to version %d", st->path, version + 1);
    }
    return 0;
}

/* *out = the value of PRAGMA name (an integer pragma). */
static int
store_pragma_int(struct store *st, const char *name, int *out, char *why, size_t whylen)
{
    char sql[64];
    sqlite3_stmt *s = NULL;

    snprintf(sql, sizeof(sql), "PRAGMA %s", name);
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        snprintf(why, whylen, "cannot read %s: %s", st->path, sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        return FORQ_ERR_STORAGE;
    }
    *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return 0;
}

static int
store_configure(struct store *st, const struct store_config *cfg, char *why, size_t whylen)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    int rc, page_size;

    sqlite3_extended_result_codes(st->db, 1);
    /* The first statement reads the header: a file that is not a database fails here. */
    if ((rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL)) != SQLITE_OK ||
        (rc = sqlite3_step(s)) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
        snprintf(why, whylen, "cannot use %s: %s", st->path,
                 rc == SQLITE_ROW ? "it cannot be put in WAL mode" : sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        return FORQ_ERR_STORAGE;
    }
    sqlite3_finalize(s);
    snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s",
             cfg->durability == STORE_FULL ? "FULL" : "NORMAL");
    if (store_exec(st, sql, why, whylen) != SQLITE_OK)
        return FORQ_ERR_STORAGE;
    if (cfg->max_db_bytes > 0) {
        if (store_pragma_int(st, "page_size", &page_size, why, whylen) != 0)
            return FORQ_ERR_STORAGE;
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %" PRIu64,
                 cfg->max_db_bytes / (uint64_t)(page_size > 0 ? page_size : 4096) + 1);
        if (store_exec(st, sql, why, whylen) != SQLITE_OK)
            return FORQ_ERR_STORAGE;
    }
    return 0;
}

/*
 * Full durability: give the WAL the size it will reach, as written zeros,
 * before the first commit that has to sync it. An fdatasync after a write
 * that grows a file also commits the file system's journal (the new size,
 * the new blocks); one that only overwrites blocks does not, and on ext4 it
 * costs about half (BENCHMARKS.md). SQLite rewinds the WAL after each
 * checkpoint and never shrinks it (journal_size_limit is left at -1), so
 * once it holds wal_autocheckpoint frames every later commit overwrites; this
 * only makes that true from the first commit rather than from the first
 * checkpoint. Zeros past the last frame are not frames (a frame's page number
 * is never 0), so recovery stops at them. The write lock (BEGIN IMMEDIATE)
 * keeps any other writer from appending while the zeros go in.
 */
static int
store_reserve_wal(struct store *st, char *why, size_t whylen)
{
    static const char zeros[64 * 1024];
    sqlite3_file *wal = NULL;
    sqlite3_int64 size = 0, want, off;
    int page_size, frames, n, rc;

    if (store_pragma_int(st, "page_size", &page_size, why, whylen) != 0 ||
        store_pragma_int(st, "wal_autocheckpoint", &frames, why, whylen) != 0)
        return FORQ_ERR_STORAGE;
    if (frames <= 0)
        frames = STORE_WAL_FRAMES_DEFAULT;
    want = STORE_WAL_HEADER + (sqlite3_int64)(frames + STORE_WAL_SLACK) *
                                  (STORE_WAL_FRAME_HEADER + page_size);
    if (store_exec(st, "BEGIN IMMEDIATE", why, whylen) != SQLITE_OK)
        return FORQ_ERR_STORAGE;
    if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        wal == NULL || wal->pMethods == NULL)
        rc = SQLITE_CANTOPEN; /* in WAL mode a write transaction has the log open */
    else
        rc = wal->pMethods->xFileSize(wal, &size);
    for (off = size; rc == SQLITE_OK && off < want; off += n) {
        n = want - off < (sqlite3_int64)sizeof(zeros) ? (int)(want - off) : (int)sizeof(zeros);
        rc = wal->pMethods->xWrite(wal, zeros, n, off);
    }
    if (rc == SQLITE_OK && size < want)
        rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "%s: cannot size the write-ahead log: %s", st->path,
                 sqlite3_errstr(rc));
        (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return FORQ_ERR_STORAGE;
    }
    return store_exec(st, "COMMIT", why, whylen) == SQLITE_OK ? 0 : FORQ_ERR_STORAGE;
}

static int
store_prepare(struct store *st, char *why, size_t whylen)
{
    for (int i = 0; i < STORE_SQL__COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(why, whylen, "%s: cannot prepare a statement: %s", st->path,
                     sqlite3_errmsg(st->db));
            return FORQ_ERR_STORAGE;
        }
    }
    return 0;
}

int
store_open(const struct store_config *cfg, struct store **out, char *why, size_t whylen)
{
    static _Atomic unsigned serial;
    char name[64];
    struct store *st;
    int e, rc;

    *out = NULL;
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create the data directory %s: %s", cfg->dir,
                 strerror(errno));
        return FORQ_ERR_STORAGE;
    }
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return FORQ_ERR_NOMEM;
    st->lock_fd = st->efd = -1;
    st->metrics = cfg->metrics;
    STAILQ_INIT(&st->staged);
    STAILQ_INIT(&st->pending);
    STAILQ_INIT(&st->done);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cond, NULL);
    if (asprintf(&st->path, "%s/%s", cfg->dir, STORE_DB_FILE) < 0) {
        st->path = NULL;
        e = FORQ_ERR_NOMEM;
        goto fail;
    }
    if ((e = store_lock(st, cfg->dir, why, whylen)) != 0)
        goto fail;
    snprintf(name, sizeof(name), "forq-%ld-%u", (long)getpid(), atomic_fetch_add(&serial, 1));
    if ((e = vfs_new(cfg->vfs, name, store_sync_cb, st, &st->vfs)) != 0) {
        snprintf(why, whylen, "cannot set up sqlite's file layer%s%s",
                 cfg->vfs ? " on " : "", cfg->vfs ? cfg->vfs : "");
        goto fail;
    }
    /* One thread at a time uses the connection (main, then the store thread). */
    rc = sqlite3_open_v2(st->path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         vfs_name(st->vfs));
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "cannot open %s: %s", st->path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        e = rc == SQLITE_NOMEM ? FORQ_ERR_NOMEM : FORQ_ERR_STORAGE;
        goto fail;
    }
    if ((e = store_configure(st, cfg, why, whylen)) != 0 ||
        (e = store_migrate(st, why, whylen)) != 0 ||
        (cfg->durability == STORE_FULL && (e = store_reserve_wal(st, why, whylen)) != 0) ||
        (e = store_prepare(st, why, whylen)) != 0)
        goto fail;
    *out = st;
    return 0;
fail:
    store_close(st);
    return e;
}

/* ------------------------------------------------------------------ load */

static const char *
store_col_text(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);

    return t != NULL ? (const char *)t : "";
}

int
store_load(struct store *st, store_load_fn fn, void *arg, uint64_t *next_id, char *why,
           size_t whylen)
{
    sqlite3_stmt *s = NULL;
    struct store_job job;
    uint64_t next = 1;
    int rc, e = 0;

    *next_id = 0;
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT MAX((SELECT value FROM meta WHERE key = 'next_id'), "
                            "COALESCE((SELECT MAX(id) FROM jobs), 0) + 1)",
                            -1, &s, NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_step(s)) != SQLITE_ROW)
        goto db_fail;
    next = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT " STORE_JOB_COLUMNS " FROM jobs WHERE finished_us = 0 "
                            "ORDER BY id",
                            -1, &s, NULL);
    if (rc != SQLITE_OK)
        goto db_fail;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&job, 0, sizeof(job));
        job.id = (uint64_t)sqlite3_column_int64(s, 0);
        job.state = sqlite3_column_int(s, 1);
        job.task = store_col_text(s, 2);
        job.queue = store_col_text(s, 3);
        job.priority = sqlite3_column_int(s, 4);
        job.delay_ms = (uint64_t)sqlite3_column_int64(s, 5);
        job.timeout_ms = (uint64_t)sqlite3_column_int64(s, 6);
        job.max_retries = (uint32_t)sqlite3_column_int64(s, 7);
        job.unique_key = (const char *)sqlite3_column_text(s, 8);
        job.attempts = (uint32_t)sqlite3_column_int64(s, 9);
        job.worker_pid = sqlite3_column_int(s, 10);
        job.created_us = (uint64_t)sqlite3_column_int64(s, 11);
        job.started_us = (uint64_t)sqlite3_column_int64(s, 12);
        job.finished_us = (uint64_t)sqlite3_column_int64(s, 13);
        job.payload = sqlite3_column_blob(s, 14);
        job.payload_len = (size_t)sqlite3_column_bytes(s, 14);
        job.run_at_us = (uint64_t)sqlite3_column_int64(s, 15);
        job.err_code = sqlite3_column_int(s, 16);
        job.err_msg = (const char *)sqlite3_column_text(s, 17);
        if ((e = fn(arg, &job)) != 0)
            break;
    }
    if (e == 0 && rc != SQLITE_DONE)
        goto db_fail;
    sqlite3_finalize(s);
    *next_id = next;
    return e;
db_fail:
    snprintf(why, whylen, "cannot read the jobs in %s: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    return FORQ_ERR_STORAGE;
}

/* ------------------------------------------------------------------ records */

struct store_rec *
store_rec_new(int op)
{
    struct store_rec *rec = calloc(1, sizeof(*rec));

    if (rec != NULL)
        rec->op = op;
    return rec;
}

void
store_rec_free(struct store_rec *rec)
{
    if (rec == NULL)
        return;
    free(rec->owned);
    free(rec);
}

/* Step a write statement to its end and reset it. */
static int
store_step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
store_bind_text(sqlite3_stmt *s, int col, const char *t)
{
    return t != NULL ? sqlite3_bind_text(s, col, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, col);
}

static int
store_bind_blob(sqlite3_stmt *s, int col, const void *p, size_t len)
{
    /* A zero-length blob is still a blob (not NULL): "" and nothing differ. */
    return sqlite3_bind_blob64(s, col, p != NULL ? p : "", len, SQLITE_STATIC);
}

static int
store_do_insert(struct store *st, const struct store_job *j)
{
    sqlite3_stmt *s = st->stmt[STORE_SQL_INSERT];

    sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
    sqlite3_bind_int(s, 2, j->state);
    store_bind_text(s, 3, j->task);
    store_bind_text(s, 4, j->queue);
    sqlite3_bind_int(s, 5, j->priority);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)j->delay_ms);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)j->timeout_ms);
    sqlite3_bind_int64(s, 8, j->max_retries);
    store_bind_text(s, 9, j->unique_key);
    sqlite3_bind_int64(s, 10, j->attempts);
    sqlite3_bind_int(s, 11, j->worker_pid);
    sqlite3_bind_int64(s, 12, (sqlite3_int64)j->created_us);
    sqlite3_bind_int64(s, 13, (sqlite3_int64)j->started_us);
    sqlite3_bind_int64(s, 14, (sqlite3_int64)j->finished_us);
    store_bind_blob(s, 15, j->payload, j->payload_len);
    sqlite3_bind_int64(s, 16, (sqlite3_int64)j->run_at_us);
    sqlite3_bind_int(s, 17, j->err_code);
    store_bind_text(s, 18, j->err_code != 0 ? j->err_msg : NULL);
    return store_step(s);
}

/* ?1..?5 of PROGRESS and FINISH: which job, and where its latest run stands. */
static void
store_bind_progress(sqlite3_stmt *s, const struct store_job *j)
{
    sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
    sqlite3_bind_int(s, 2, j->state);
    sqlite3_bind_int64(s, 3, j->attempts);
    sqlite3_bind_int(s, 4, j->worker_pid);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)j->started_us);
}

static int
store_do_progress(struct store *st, const struct store_job *j)
{
    sqlite3_stmt *s = st->stmt[STORE_SQL_PROGRESS];

    store_bind_progress(s, j);
    return store_step(s);
}

static int
store_do_finish(struct store *st, const struct store_job *j)
{
    sqlite3_stmt *s = st->stmt[STORE_SQL_FINISH];

    store_bind_progress(s, j);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)j->finished_us);
    if (j->state == FORQ_STATE_SUCCEEDED)
        store_bind_blob(s, 7, j->result, j->result_len);
    else
        sqlite3_bind_null(s, 7);
    sqlite3_bind_int(s, 8, j->err_code);
    store_bind_text(s, 9, j->err_code != 0 ? j->err_msg : NULL);
    return store_step(s);
}

static int
store_do_retry(struct store *st, const struct store_job *j)
{
    sqlite3_stmt *s = st->stmt[STORE_SQL_RETRY];

    store_bind_progress(s, j);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)j->run_at_us);
    sqlite3_bind_int(s, 7, j->err_code);
    store_bind_text(s, 8, j->err_code != 0 ? j->err_msg : NULL);
    return store_step(s);
}

/* Copy a column's bytes to *p (NUL-terminated), advancing *p. */
static const char *
store_copy_col(sqlite3_stmt *s, int col, char **p, size_t *len)
{
    const void *src = sqlite3_column_blob(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    char *dst = *p;

    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    *p += n + 1;
    if (len != NULL)
        *len = n;
    return dst;
}

static int
store_do_lookup(struct store *st, struct store_rec *rec)
{
    sqlite3_stmt *s = st->stmt[STORE_SQL_LOOKUP];
    struct store_job *j = &rec->job;
    static const int vars[] = {1, 2, 7, 13, 15}; /* task, queue, key, result, msg */
    size_t need = 0;
    char *p;
    int rc;

    free(rec->owned);
    rec->owned = NULL;
    rec->found = 0;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        need += (size_t)sqlite3_column_bytes(s, vars[i]) + 1;
    if ((p = rec->owned = malloc(need)) == NULL) {
        sqlite3_reset(s);
        return SQLITE_NOMEM;
    }
    j->state = sqlite3_column_int(s, 0);
    j->task = store_copy_col(s, 1, &p, NULL);
    j->queue = store_copy_col(s, 2, &p, NULL);
    j->priority = sqlite3_column_int(s, 3);
    j->delay_ms = (uint64_t)sqlite3_column_int64(s, 4);
    j->timeout_ms = (uint64_t)sqlite3_column_int64(s, 5);
    j->max_retries = (uint32_t)sqlite3_column_int64(s, 6);
    j->unique_key = store_copy_col(s, 7, &p, NULL);
    j->attempts = (uint32_t)sqlite3_column_int64(s, 8);
    j->worker_pid = sqlite3_column_int(s, 9);
    j->created_us = (uint64_t)sqlite3_column_int64(s, 10);
    j->started_us = (uint64_t)sqlite3_column_int64(s, 11);
    j->finished_us = (uint64_t)sqlite3_column_int64(s, 12);
    j->result = (const uint8_t *)store_copy_col(s, 13, &p, &j->result_len);
    j->err_code = sqlite3_column_int(s, 14);
    j->err_msg = store_copy_col(s, 15, &p, NULL);
    if (j->task == NULL)
        j->task = "";
    if (j->queue == NULL)
        j->queue = "";
    sqlite3_reset(s);
    rec->found = 1;
    return SQLITE_OK;
}

static int
store_do(struct store *st, struct store_rec *rec)
{
    switch (rec->op) {
    case STORE_INSERT:
        return store_do_insert(st, &rec->job);
    case STORE_RUNNING:
    case STORE_REQUEUE:
        return store_do_progress(st, &rec->job);
    case STORE_FINISH:
        return store_do_finish(st, &rec->job);
    case STORE_RETRY:
        return store_do_retry(st, &rec->job);
    case STORE_LOOKUP:
        return store_do_lookup(st, rec);
    default:
        return SQLITE_MISUSE;
    }
}

/* ------------------------------------------------------------------ the thread */

/* Delete one chunk of expired rows; *n of them (counted once committed). */
static int
store_purge_chunk(struct store *st, uint64_t cutoff, int *more, uint64_t *n)
{
    sqlite3_stmt *s = st->stmt[STORE_SQL_PURGE];
    int rc;

    if ((rc = store_step(st->stmt[STORE_SQL_NEXT_ID])) != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)cutoff);
    sqlite3_bind_int(s, 2, STORE_PURGE_CHUNK);
    if ((rc = store_step(s)) != SQLITE_OK)
        return rc;
    *n = (uint64_t)sqlite3_changes(st->db);
    *more = *n == STORE_PURGE_CHUNK;
    return SQLITE_OK;
}

static int
store_commit(struct store *st)
{
    uint64_t t0 = store_mono_us(), dt;
    int rc = store_step(st->stmt[STORE_SQL_COMMIT]);

    dt = store_mono_us() - t0;
    atomic_fetch_add_explicit(&st->commit_us, dt, memory_order_relaxed);
    if (st->metrics != NULL)
        metrics_hist_observe(&st->metrics->store_commit, dt);
    if (rc == SQLITE_OK)
        atomic_fetch_add_explicit(&st->commits, 1, memory_order_relaxed);
    return rc;
}

static void
store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)store_step(st->stmt[STORE_SQL_ROLLBACK]);
}

/*
 * Run a purge chunk and recs (from first, up to and excluding stop) in one
 * transaction. Returns the first failure, having rolled back.
 */
static int
store_txn(struct store *st, struct store_rec *first, struct store_rec *stop, uint64_t purge,
          int *purge_more)
{
    struct store_rec *rec;
    uint64_t purged = 0;
    int rc;

    if ((rc = store_step(st->stmt[STORE_SQL_BEGIN])) != SQLITE_OK)
        return rc;
    /* First, so a lookup queued after store_purge sees the rows gone. */
    if (purge > 0 && (rc = store_purge_chunk(st, purge, purge_more, &purged)) != SQLITE_OK)
        goto fail;
    for (rec = first; rec != stop; rec = STAILQ_NEXT(rec, link))
        if ((rc = store_do(st, rec)) != SQLITE_OK)
            goto fail;
    if ((rc = store_commit(st)) != SQLITE_OK)
        goto fail;
    atomic_fetch_add_explicit(&st->purged, purged, memory_order_relaxed);
    return SQLITE_OK;
fail:
    store_rollback(st);
    if (purge > 0)
        *purge_more = 0; /* no busy loop on a failing purge: the next tick tries again */
    return rc;
}

static void
store_set_status(struct store *st, struct store_rec *rec, int rc)
{
    rec->status = rc == SQLITE_OK ? 0 : FORQ_ERR_STORAGE;
    rec->why_rc = rc;
    if (rc != SQLITE_OK)
        atomic_fetch_add_explicit(&st->failures, 1, memory_order_relaxed);
}

static void
store_mark_broken(struct store *st, int rc)
{
    if (st->broken)
        return;
    st->broken = rc;
    log_err("the job store %s failed (%s): no more writes are accepted; restart forqd once "
             "the disk is healthy",
             st->path, sqlite3_errstr(rc));
}

/*
 * Run one batch. The fast path is one transaction for everything. If it
 * fails for a reason that may be one record's (the database is full, say),
 * each record gets its own transaction so only the ones that cannot be
 * written fail. After an I/O error nothing is written again: what sqlite
 * reports after a failed fsync cannot be trusted (PostgreSQL's lesson).
 */
static void
store_run_batch(struct store *st, struct store_list *batch, uint64_t purge, int *purge_more)
{
    struct store_rec *rec;
    uint64_t n = 0, max;
    int rc = SQLITE_OK;

    STAILQ_FOREACH(rec, batch, link)
        n += rec->op != STORE_LOOKUP; /* reads are not records written */
    max = atomic_load_explicit(&st->max_batch, memory_order_relaxed);
    if (n > max)
        atomic_store_explicit(&st->max_batch, n, memory_order_relaxed);
    if (n > 0 && st->metrics != NULL)
        metrics_hist_observe(&st->metrics->store_batch, n);
    *purge_more = 0;
    if (!st->broken) {
        rc = store_txn(st, STAILQ_FIRST(batch), NULL, purge, purge_more);
        if (rc == SQLITE_OK) {
            STAILQ_FOREACH(rec, batch, link)
                store_set_status(st, rec, SQLITE_OK);
            atomic_fetch_add_explicit(&st->records, n, memory_order_relaxed);
            return;
        }
        if (store_rc_is_fatal(rc))
            store_mark_broken(st, rc);
    }
    STAILQ_FOREACH(rec, batch, link) {
        if (rec->op == STORE_LOOKUP)
            rc = store_do_lookup(st, rec); /* reads still work */
        else if (st->broken)
            rc = st->broken;
        else if ((rc = store_txn(st, rec, STAILQ_NEXT(rec, link), 0, NULL)) == SQLITE_OK)
            atomic_fetch_add_explicit(&st->records, 1, memory_order_relaxed);
        else if (store_rc_is_fatal(rc))
            store_mark_broken(st, rc);
        store_set_status(st, rec, rc);
    }
    if (purge > 0 && !st->broken) /* deleting is how a full database gets room again */
        (void)store_txn(st, NULL, NULL, purge, purge_more);
}

static void *
store_thread(void *arg)
{
    struct store *st = arg;
    struct store_list batch;
    uint64_t purge, one = 1;
    int more;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (STAILQ_EMPTY(&st->pending) && st->purge_cutoff == 0 && !st->stopping) {
            st->sleeping = 1;
            pthread_cond_wait(&st->cond, &st->mu);
            st->sleeping = 0;
        }
        if (STAILQ_EMPTY(&st->pending) && st->stopping)
            break;
        STAILQ_INIT(&batch);
        STAILQ_CONCAT(&batch, &st->pending);
        purge = st->stopping ? 0 : st->purge_cutoff;
        st->purge_cutoff = 0;
        pthread_mutex_unlock(&st->mu);

        store_run_batch(st, &batch, purge, &more);

        pthread_mutex_lock(&st->mu);
        if (more && st->purge_cutoff < purge)
            st->purge_cutoff = purge; /* more rows are due: another chunk next round */
        if (!STAILQ_EMPTY(&batch)) {
            STAILQ_CONCAT(&st->done, &batch);
            /* Unlocked, as in store_flush_cb: the loop takes mu as soon as it wakes. */
            pthread_mutex_unlock(&st->mu);
            if (write(st->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_err("cannot wake the loop: %s", strerror(errno));
            pthread_mutex_lock(&st->mu);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/*
 * Loop thread, once per loop turn that put records: hand them to the store
 * thread in one go. store_put only stages a record and activates this event,
 * which libevent runs after the callbacks already due in the same turn, so a
 * burst of SUBMITs read at once goes into one commit. Waking the thread on
 * the first put instead let it start a commit of one record while the loop
 * was still decoding the rest of the burst (a quarter of the commits at 64
 * in flight held 16 records or fewer; BENCHMARKS.md, issue 8).
 */
static void
store_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct store *st = arg;
    int wake;

    (void)fd;
    (void)what;
    if (STAILQ_EMPTY(&st->staged))
        return;
    pthread_mutex_lock(&st->mu);
    STAILQ_CONCAT(&st->pending, &st->staged);
    wake = st->sleeping;
    pthread_mutex_unlock(&st->mu);
    /*
     * After the unlock: a thread woken while mu is still held would only
     * block on mu, and the unlock would have to wake it a second time.
     */
    if (wake)
        pthread_cond_signal(&st->cond);
}

/* Loop thread: hand finished records to their owner, in order. */
static void
store_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct store *st = arg;
    struct store_list done;
    struct store_rec *rec;
    uint64_t n;

    (void)what;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_err("cannot read the store's wakeup: %s", strerror(errno));
    STAILQ_INIT(&done);
    pthread_mutex_lock(&st->mu);
    STAILQ_CONCAT(&done, &st->done);
    pthread_mutex_unlock(&st->mu);
    while ((rec = STAILQ_FIRST(&done)) != NULL) {
        STAILQ_REMOVE_HEAD(&done, link);
        st->done_fn(st->done_arg, rec);
    }
}

int
store_start(struct store *st, struct event_base *base, store_done_fn done, void *arg)
{
    int e;

    st->done_fn = done;
    st->done_arg = arg;
    if ((st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FORQ_ERR_SYSTEM;
    if ((st->ev = event_new(base, st->efd, EV_READ | EV_PERSIST, store_done_cb, st)) == NULL ||
        event_add(st->ev, NULL) != 0 ||
        (st->flush_ev = event_new(base, -1, 0, store_flush_cb, st)) == NULL)
        return FORQ_ERR_NOMEM;
    STAILQ_CONCAT(&st->pending, &st->staged); /* put before the start: the first batch */
    if ((e = pthread_create(&st->thread, NULL, store_thread, st)) != 0) {
        errno = e;
        return FORQ_ERR_SYSTEM;
    }
    st->started = 1;
    return 0;
}

void
store_put(struct store *st, struct store_rec *rec)
{
    if (STAILQ_EMPTY(&st->staged) && st->flush_ev != NULL) /* NULL: store_start hands it over */
        event_active(st->flush_ev, EV_TIMEOUT, 0);
    STAILQ_INSERT_TAIL(&st->staged, rec, link);
}

void
store_purge(struct store *st, uint64_t cutoff_us)
{
    pthread_mutex_lock(&st->mu);
    if (cutoff_us > st->purge_cutoff)
        st->purge_cutoff = cutoff_us;
    if (st->sleeping)
        pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mu);
}

void
store_stats(struct store *st, struct store_stats *out)
{
    out->commits = atomic_load(&st->commits);
    out->fsyncs = atomic_load(&st->fsyncs);
    out->records = atomic_load(&st->records);
    out->failures = atomic_load(&st->failures);
    out->purged = atomic_load(&st->purged);
    out->max_batch = atomic_load(&st->max_batch);
    out->commit_us = atomic_load(&st->commit_us);
}

static void
store_free_list(struct store_list *l)
{
    struct store_rec *rec;

    while ((rec = STAILQ_FIRST(l)) != NULL) {
        STAILQ_REMOVE_HEAD(l, link);
        store_rec_free(rec);
    }
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->started) {
        store_flush_cb(-1, 0, st); /* what this turn put goes out too */
        pthread_mutex_lock(&st->mu);
        st->stopping = 1; /* the thread writes out what is pending first */
        pthread_cond_signal(&st->cond);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
    }
    store_free_list(&st->staged);
    store_free_list(&st->pending);
    store_free_list(&st->done);
    if (st->flush_ev != NULL)
        event_free(st->flush_ev);
    if (st->ev != NULL)
        event_free(st->ev);
    if (st->efd >= 0)
        close(st->efd);
    for (int i = 0; i < STORE_SQL__COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        log_err("closing %s: %s", st->path, sqlite3_errmsg(st->db));
    vfs_free(st->vfs);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the lock */
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cond);
    free(st->path);
    free(st);
}
