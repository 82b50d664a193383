/*
 * test_store.c — the job store (store.c) on real SQLite files in temp dirs:
 * migration from an empty file, reopen and recovery, lookups, purge and the
 * id counter, group commit (one transaction for everything queued), the
 * durability modes' fsyncs, the data-directory lock, unusable files, a full
 * database (PRAGMA max_page_count), a failed fsync (a VFS that fails
 * syncs on demand, stacked under the store's own), and the write-ahead log
 * that full durability writes out at open (its size, recovery after a crash
 * through it, a disk that cannot take it).
 *
 * The store thread answers through the event loop; test_collect() turns the
 * loop until the expected number of records came back. An eventfd wakes it,
 * so each turn blocks only until the store answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "forq.h"
#include "store.h"
#include "vfs.h"

#define TEST_MAX_RECS 4096

/* What the WAL holds at SQLite's checkpoint threshold: 1000 frames of 4 KiB pages. */
#define TEST_WAL_AT_CHECKPOINT (32 + 1000 * (24 + 4096))

struct test_fx {
    char dir[64];
    struct event_base *base;
    struct store *st;
    struct store_rec *got[TEST_MAX_RECS]; /* records handed back, in order */
    size_t ngot;
};

static void
test_done_cb(void *arg, struct store_rec *rec)
{
    struct test_fx *fx = arg;

    assert_true(fx->ngot < TEST_MAX_RECS);
    fx->got[fx->ngot++] = rec;
}

static void
test_forget(struct test_fx *fx)
{
    for (size_t i = 0; i < fx->ngot; i++)
        store_rec_free(fx->got[i]);
    fx->ngot = 0;
}

static int
test_setup(void **state)
{
    struct test_fx *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/forq-store-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_non_null(fx->base = event_base_new());
    *state = fx;
    return 0;
}

static int
test_teardown(void **state)
{
    struct test_fx *fx = *state;
    char cmd[128];

    test_forget(fx);
    store_close(fx->st);
    event_base_free(fx->base);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static struct store_config
test_cfg(const struct test_fx *fx)
{
    struct store_config cfg = {fx->dir, STORE_FULL, 0, NULL, NULL};

    return cfg;
}

static void
test_open(struct test_fx *fx, const struct store_config *cfg)
{
    char why[512] = "";

    if (store_open(cfg, &fx->st, why, sizeof(why)) != 0)
        fail_msg("store_open: %s", why);
}

static void
test_start(struct test_fx *fx)
{
    assert_int_equal(store_start(fx->st, fx->base, test_done_cb, fx), 0);
}

static void
test_reopen(struct test_fx *fx, const struct store_config *cfg)
{
    test_forget(fx);
    store_close(fx->st);
    fx->st = NULL;
    test_open(fx, cfg);
}

/* Turn the loop until n records have come back in all. */
static void
test_collect(struct test_fx *fx, size_t n)
{
    while (fx->ngot < n)
        assert_int_equal(event_base_loop(fx->base, EVLOOP_ONCE), 0);
}

static struct store_rec *
test_insert(uint64_t id, const char *task, const char *payload, int priority)
{
    struct store_rec *rec = store_rec_new(STORE_INSERT);

    assert_non_null(rec);
    rec->job.id = id;
    rec->job.state = FORQ_STATE_QUEUED;
    rec->job.task = task;
    rec->job.queue = "q";
    rec->job.priority = priority;
    rec->job.timeout_ms = 1234;
    rec->job.max_retries = 3;
    rec->job.created_us = 1000 + id;
    rec->job.payload = (const uint8_t *)payload;
    rec->job.payload_len = strlen(payload);
    return rec;
}

static struct store_rec *
test_finish(uint64_t id, int state, const char *result, uint64_t finished_us)
{
    struct store_rec *rec = store_rec_new(STORE_FINISH);

    assert_non_null(rec);
    rec->job.id = id;
    rec->job.state = state;
    rec->job.attempts = 1;
    rec->job.worker_pid = 4242;
    rec->job.started_us = finished_us - 10;
    rec->job.finished_us = finished_us;
    if (state == FORQ_STATE_SUCCEEDED) {
        rec->job.result = (const uint8_t *)result;
        rec->job.result_len = strlen(result);
    } else {
        rec->job.err_code = FORQ_ERR_TASK_FAILED;
        rec->job.err_msg = result;
    }
    return rec;
}

static struct store_rec *
test_lookup(uint64_t id)
{
    struct store_rec *rec = store_rec_new(STORE_LOOKUP);

    assert_non_null(rec);
    rec->job.id = id;
    return rec;
}

/* What store_load saw. */
struct test_loaded {
    size_t n;
    uint64_t ids[16];
    int states[16];
    uint32_t attempts[16];
    char payloads[16][32];
};

static int
test_load_cb(void *arg, const struct store_job *job)
{
    struct test_loaded *l = arg;

    if (l->n >= 16) { /* count the rest, keep the first 16 */
        l->n++;
        return 0;
    }
    l->ids[l->n] = job->id;
    l->states[l->n] = job->state;
    l->attempts[l->n] = job->attempts;
    if (job->payload_len > 0 && job->payload_len < sizeof(l->payloads[0])) {
        memcpy(l->payloads[l->n], job->payload, job->payload_len);
        l->payloads[l->n][job->payload_len] = '\0';
    }
    assert_string_equal(job->queue, "q");
    assert_int_equal(job->timeout_ms, 1234);
    assert_int_equal(job->max_retries, 3);
    l->n++;
    return 0;
}

static uint64_t
test_load(struct test_fx *fx, struct test_loaded *l)
{
    char why[256] = "";
    uint64_t next = 0;

    memset(l, 0, sizeof(*l));
    if (store_load(fx->st, test_load_cb, l, &next, why, sizeof(why)) != 0)
        fail_msg("store_load: %s", why);
    return next;
}

/* Read PRAGMA user_version with a connection of our own. */
static int
test_user_version(const struct test_fx *fx)
{
    char path[128];
    sqlite3 *db;
    sqlite3_stmt *s;
    int v;

    snprintf(path, sizeof(path), "%s/forq.db", fx->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* ------------------------------------------------------------------ tests */

static void
test_migrates_an_empty_directory(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct test_loaded l;

    test_open(fx, &cfg);
    assert_int_equal(test_load(fx, &l), 1); /* ids start at 1 */
    assert_int_equal(l.n, 0);
    store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(test_user_version(fx), STORE_SCHEMA_VERSION);
    test_open(fx, &cfg); /* opening a current database migrates nothing */
    assert_int_equal(test_load(fx, &l), 1);
}

static void
test_recovers_unfinished_jobs_after_reopen(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct store_rec *run;
    struct test_loaded l;

    test_open(fx, &cfg);
    test_start(fx);
    store_put(fx->st, test_insert(1, "echo", "one", 0));
    store_put(fx->st, test_insert(2, "echo", "two", 5));
    store_put(fx->st, test_insert(3, "echo", "", 0));
    store_put(fx->st, test_insert(4, "echo", "four", 0));
    run = store_rec_new(STORE_RUNNING);
    run->job.id = 2;
    run->job.state = FORQ_STATE_RUNNING;
    run->job.attempts = 1;
    run->job.worker_pid = 99;
    run->job.started_us = 5000;
    store_put(fx->st, run);
    store_put(fx->st, test_finish(4, FORQ_STATE_SUCCEEDED, "FOUR", 6000));
    test_collect(fx, 6);
    for (size_t i = 0; i < fx->ngot; i++)
        assert_int_equal(fx->got[i]->status, 0);
    assert_int_equal(fx->got[5]->op, STORE_FINISH); /* handed back in put order */

    test_reopen(fx, &cfg);
    assert_int_equal(test_load(fx, &l), 5);
    assert_int_equal(l.n, 3); /* 4 finished */
    assert_int_equal(l.ids[0], 1);
    assert_int_equal(l.ids[1], 2);
    assert_int_equal(l.ids[2], 3);
    assert_string_equal(l.payloads[0], "one");
    assert_string_equal(l.payloads[2], "");
    assert_int_equal(l.states[1], FORQ_STATE_RUNNING);
    assert_int_equal(l.attempts[1], 1);
    assert_int_equal(l.states[0], FORQ_STATE_QUEUED);
}

static void
test_lookup_finds_finished_jobs(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    const struct store_job *j;

    test_open(fx, &cfg);
    test_start(fx);
    store_put(fx->st, test_insert(7, "upper", "abc", 2));
    store_put(fx->st, test_insert(8, "fail", "x", 0));
    store_put(fx->st, test_finish(7, FORQ_STATE_SUCCEEDED, "ABC", 9000));
    store_put(fx->st, test_finish(8, FORQ_STATE_FAILED, "it broke", 9001));
    test_collect(fx, 4);
    test_reopen(fx, &cfg); /* the lookup reads the file, not a cache */
    test_start(fx);
    store_put(fx->st, test_lookup(7));
    store_put(fx->st, test_lookup(8));
    store_put(fx->st, test_lookup(9));
    test_collect(fx, 3);

    assert_int_equal(fx->got[0]->status, 0);
    assert_true(fx->got[0]->found);
    j = &fx->got[0]->job;
    assert_int_equal(j->state, FORQ_STATE_SUCCEEDED);
    assert_string_equal(j->task, "upper");
    assert_string_equal(j->queue, "q");
    assert_int_equal(j->priority, 2);
    assert_int_equal(j->attempts, 1);
    assert_int_equal(j->worker_pid, 4242);
    assert_int_equal(j->finished_us, 9000);
    assert_int_equal(j->result_len, 3);
    assert_memory_equal(j->result, "ABC", 3);
    assert_null(j->err_msg);

    j = &fx->got[1]->job;
    assert_true(fx->got[1]->found);
    assert_int_equal(j->state, FORQ_STATE_FAILED);
    assert_int_equal(j->err_code, FORQ_ERR_TASK_FAILED);
    assert_string_equal(j->err_msg, "it broke");
    assert_null(j->result);

    assert_int_equal(fx->got[2]->status, 0);
    assert_false(fx->got[2]->found);
}

static void
test_purge_deletes_old_results_and_ids_stay_unique(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct store_stats ss;
    struct test_loaded l;

    test_open(fx, &cfg);
    test_start(fx);
    store_put(fx->st, test_insert(1, "echo", "a", 0));
    store_put(fx->st, test_insert(2, "echo", "b", 0));
    store_put(fx->st, test_insert(3, "echo", "c", 0));
    store_put(fx->st, test_finish(1, FORQ_STATE_SUCCEEDED, "A", 100));
    store_put(fx->st, test_finish(2, FORQ_STATE_SUCCEEDED, "B", 200));
    store_put(fx->st, test_finish(3, FORQ_STATE_SUCCEEDED, "C", 300));
    test_collect(fx, 6);
    store_purge(fx->st, 200); /* 1 and 2 are due, 3 is not */
    /* The purge runs at the start of the next transaction, before this lookup. */
    store_put(fx->st, test_lookup(1));
    test_collect(fx, 7);
    store_put(fx->st, test_lookup(2));
    store_put(fx->st, test_lookup(3));
    test_collect(fx, 9);
    assert_false(fx->got[6]->found);
    assert_false(fx->got[7]->found);
    assert_true(fx->got[8]->found);
    store_stats(fx->st, &ss);
    assert_int_equal(ss.purged, 2);

    store_purge(fx->st, 1000); /* every job is gone now ... */
    store_put(fx->st, test_lookup(3));
    test_collect(fx, 10);
    assert_false(fx->got[9]->found);
    test_reopen(fx, &cfg);
    assert_int_equal(test_load(fx, &l), 4); /* ... and still no id is handed out twice */
}

static void
test_group_commit_writes_a_batch_in_one_transaction(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    static char payloads[1000][16];
    struct store_stats ss;

    test_open(fx, &cfg);
    /* Queued before the thread starts, so it finds all of them at once. */
    for (int i = 0; i < 1000; i++) {
        snprintf(payloads[i], sizeof(payloads[i]), "job-%d", i);
        store_put(fx->st, test_insert((uint64_t)i + 1, "echo", payloads[i], 0));
    }
    test_start(fx);
    test_collect(fx, 1000);
    store_stats(fx->st, &ss);
    assert_int_equal(ss.commits, 1);
    assert_int_equal(ss.records, 1000);
    assert_int_equal(ss.max_batch, 1000);
    assert_true(ss.fsyncs >= 1); /* full: the commit reached the disk */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fx->got[i]->status, 0);
}

/*
 * Records put in one loop turn reach the store thread together, at the end of
 * the turn: one commit, even though the thread is already running and asleep
 * when the first one is put (waking it on each put let it commit the first
 * record alone while the rest were still being put).
 */
static void
test_records_of_one_loop_turn_share_a_commit(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    static char payloads[64][16];
    struct store_stats ss;

    test_open(fx, &cfg);
    test_start(fx);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 64; i++) {
            snprintf(payloads[i], sizeof(payloads[i]), "r%d-%d", round, i);
            store_put(fx->st, test_insert((uint64_t)round * 64 + (uint64_t)i + 1, "echo",
                                          payloads[i], 0));
            if (i == 0) /* a loop slow to decode the rest: time for a woken thread to act */
                nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
        }
        test_collect(fx, (size_t)(round + 1) * 64);
        store_stats(fx->st, &ss);
        assert_int_equal(ss.commits, (uint64_t)round + 1);
        assert_int_equal(ss.max_batch, 64);
    }
    for (size_t i = 0; i < fx->ngot; i++)
        assert_int_equal(fx->got[i]->status, 0);
}

/* normal durability commits without syncing; full syncs every commit. */
static void
test_durability_modes_differ_in_fsyncs(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct store_stats before, after;

    cfg.durability = STORE_NORMAL;
    test_open(fx, &cfg);
    test_start(fx);
    store_put(fx->st, test_insert(1, "echo", "x", 0));
    test_collect(fx, 1); /* the first commit may sync a new WAL's header */
    store_stats(fx->st, &before);
    for (uint64_t i = 2; i <= 6; i++) {
        store_put(fx->st, test_insert(i, "echo", "x", 0));
        test_collect(fx, i); /* one commit each */
    }
    store_stats(fx->st, &after);
    assert_int_equal(after.commits - before.commits, 5);
    assert_int_equal(after.fsyncs - before.fsyncs, 0);

    cfg.durability = STORE_FULL;
    test_reopen(fx, &cfg);
    test_start(fx);
    store_stats(fx->st, &before);
    for (uint64_t i = 1; i <= 5; i++) {
        store_put(fx->st, test_insert(10 + i, "echo", "x", 0));
        test_collect(fx, i);
    }
    store_stats(fx->st, &after);
    assert_int_equal(after.commits - before.commits, 5);
    assert_true(after.fsyncs - before.fsyncs >= 5);
}

static void
test_second_open_of_a_directory_is_refused(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct store *other = NULL;
    char why[512] = "", pid[32];

    test_open(fx, &cfg);
    assert_int_equal(store_open(&cfg, &other, why, sizeof(why)), FORQ_ERR_STORAGE);
    assert_null(other);
    assert_non_null(strstr(why, "another forqd"));
    assert_non_null(strstr(why, fx->dir));
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    assert_non_null(strstr(why, pid));
    store_close(fx->st); /* the lock goes with the store */
    fx->st = NULL;
    test_open(fx, &cfg);
}

static void
test_write_file(const struct test_fx *fx, const char *name, const char *text)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static void
test_not_a_database_is_refused_by_name(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    char why[512] = "", path[128];

    test_write_file(fx, "forq.db", "this is not an SQLite file, it is a shopping list\n"
                                   "eggs, milk, a better disk\n");
    assert_int_equal(store_open(&cfg, &fx->st, why, sizeof(why)), FORQ_ERR_STORAGE);
    assert_null(fx->st);
    snprintf(path, sizeof(path), "%s/forq.db", fx->dir);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "not a database"));
}

static void
test_newer_schema_is_refused(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    char why[512] = "", path[128];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/forq.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(&cfg, &fx->st, why, sizeof(why)), FORQ_ERR_STORAGE);
    assert_non_null(strstr(why, "schema version 99"));
    assert_non_null(strstr(why, path));
}

static void
test_unwritable_directory_is_refused(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    char why[512] = "", path[128];

    /* A data dir path that runs through a regular file cannot be created. */
    test_write_file(fx, "plain", "x");
    snprintf(path, sizeof(path), "%s/plain/data", fx->dir);
    cfg.dir = path;
    assert_int_equal(store_open(&cfg, &fx->st, why, sizeof(why)), FORQ_ERR_STORAGE);
    assert_non_null(strstr(why, path));
}

/* SQLITE_FULL for real: the database may not grow past a few pages. */
static void
test_full_database_fails_writes_and_keeps_reads(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    static char big[2000];
    struct test_loaded l;
    uint64_t id, stored = 0;
    size_t i;

    memset(big, 'z', sizeof(big) - 1);
    cfg.max_db_bytes = 64 * 1024;
    test_open(fx, &cfg);
    test_start(fx);
    for (id = 1; id <= 200; id++) {
        store_put(fx->st, test_insert(id, "echo", big, 0));
        test_collect(fx, (size_t)id);
        if (fx->got[id - 1]->status != 0)
            break;
        stored++;
    }
    assert_true(id <= 200); /* it did fill up */
    assert_true(stored > 3);
    assert_int_equal(fx->got[stored]->status, FORQ_ERR_STORAGE);
    assert_int_equal(fx->got[stored]->why_rc, SQLITE_FULL);
    assert_non_null(strstr(store_strerror(fx->got[stored]->why_rc), "full"));

    /* In one batch: an insert that fails does not take the others with it. */
    i = fx->ngot;
    store_put(fx->st, test_lookup(1));
    store_put(fx->st, test_insert(1000, "echo", big, 0));
    store_put(fx->st, test_finish(2, FORQ_STATE_FAILED, "small", 50));
    test_collect(fx, i + 3);
    assert_int_equal(fx->got[i]->status, 0);
    assert_true(fx->got[i]->found);
    assert_int_equal(fx->got[i + 1]->status, FORQ_ERR_STORAGE);
    assert_int_equal(fx->got[i + 2]->status, 0); /* dropping a payload frees room */

    /* Every acknowledged insert is there (2 finished since); the refused ones are not. */
    test_reopen(fx, &cfg);
    assert_int_equal(test_load(fx, &l), stored + 1);
    assert_int_equal(l.n, stored - 1);
}

/* The WAL's size and bytes on disk (0 and 0 when there is none). */
static void
test_wal_stat(const struct test_fx *fx, off_t *size, off_t *on_disk)
{
    char path[128];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/forq.db-wal", fx->dir);
    *size = *on_disk = 0;
    if (stat(path, &sb) == 0) {
        *size = sb.st_size;
        *on_disk = (off_t)sb.st_blocks * 512;
    }
}

/* Put n inserts, ids from first, in turns of 25, and wait for all of them. */
static int
test_insert_many(struct test_fx *fx, uint64_t first, size_t n)
{
    size_t base = fx->ngot;

    for (size_t i = 0; i < n; i++) {
        store_put(fx->st, test_insert(first + i, "echo", "payload", 0));
        if ((i + 1) % 25 == 0 || i + 1 == n)
            test_collect(fx, base + i + 1);
    }
    for (size_t i = base; i < fx->ngot; i++)
        if (fx->got[i]->status != 0)
            return -1;
    return 0;
}

/*
 * Full durability writes the WAL out to the size it reaches at a checkpoint
 * before the first commit, as real blocks (no hole, no fallocate): commits
 * then overwrite it and never grow it. normal, whose commits do not sync,
 * leaves the WAL to SQLite.
 */
static void
test_full_durability_writes_the_wal_out_at_open(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    off_t size, on_disk, size_after;

    test_open(fx, &cfg);
    test_wal_stat(fx, &size, &on_disk);
    assert_true(size >= TEST_WAL_AT_CHECKPOINT);
    assert_true(on_disk >= size);

    test_start(fx);
    assert_int_equal(test_insert_many(fx, 1, 200), 0); /* 8 commits, well short of 1000 frames */
    test_wal_stat(fx, &size_after, &on_disk);
    assert_int_equal(size_after, size);

    cfg.durability = STORE_NORMAL;
    test_reopen(fx, &cfg); /* the close checkpointed and removed the WAL */
    test_wal_stat(fx, &size, &on_disk);
    assert_true(size < TEST_WAL_AT_CHECKPOINT);
}

/* A process that opens the store, commits n inserts from id first, and dies without closing it. */
static void
test_crash_after_inserts(struct test_fx *fx, int durability, uint64_t first, size_t n)
{
    int status = -1;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct store_config cfg = test_cfg(fx);
        char why[256];

        cfg.durability = durability;
        fx->ngot = 0; /* the parent's records are the parent's to free */
        fx->base = event_base_new(); /* the parent's shares its epoll instance with us */
        if (fx->base == NULL || store_open(&cfg, &fx->st, why, sizeof(why)) != 0 ||
            store_start(fx->st, fx->base, test_done_cb, fx) != 0 ||
            test_insert_many(fx, first, n) != 0)
            _exit(1);
        _exit(0); /* no store_close: the WAL keeps its frames, not checkpointed */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * The zeros go after the frames already in the WAL and are never read as
 * frames: jobs committed before a crash come back, whether the WAL they are
 * in was written out at open (full) or not (normal), and the next full open
 * that writes it out keeps them.
 */
static void
test_jobs_in_a_written_out_wal_survive_a_crash(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct test_loaded l;
    off_t size, on_disk;

    test_crash_after_inserts(fx, STORE_NORMAL, 1, 100); /* a short WAL, frames to the end */
    test_wal_stat(fx, &size, &on_disk);
    assert_true(size > 0 && size < TEST_WAL_AT_CHECKPOINT);
    test_crash_after_inserts(fx, STORE_FULL, 101, 50); /* recovers, writes out, commits after */
    test_wal_stat(fx, &size, &on_disk);
    assert_true(size >= TEST_WAL_AT_CHECKPOINT);

    test_open(fx, &cfg);
    assert_int_equal(test_load(fx, &l), 151);
    assert_int_equal(l.n, 150);
    assert_int_equal(l.ids[0], 1);
    assert_string_equal(l.payloads[0], "payload");
}

static int test_fail_syncs; /* the failing VFS's switch */

static int
test_failing_sync_cb(void *arg)
{
    (void)arg;
    return test_fail_syncs ? SQLITE_IOERR_FSYNC : SQLITE_OK;
}

static void
test_failed_fsync_is_never_success(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct vfs *failing;

    assert_int_equal(vfs_new(NULL, "forq-test-failsync", test_failing_sync_cb, NULL, &failing), 0);
    cfg.vfs = "forq-test-failsync";
    test_open(fx, &cfg);
    test_start(fx);
    store_put(fx->st, test_insert(1, "echo", "a", 0));
    test_collect(fx, 1);
    assert_int_equal(fx->got[0]->status, 0);

    test_fail_syncs = 1;
    store_put(fx->st, test_insert(2, "echo", "b", 0));
    test_collect(fx, 2);
    assert_int_equal(fx->got[1]->status, FORQ_ERR_STORAGE);
    assert_int_equal(fx->got[1]->why_rc & 0xff, SQLITE_IOERR);

    /* The disk "recovers", but a store that saw a failed fsync writes no more ... */
    test_fail_syncs = 0;
    store_put(fx->st, test_insert(3, "echo", "c", 0));
    store_put(fx->st, test_lookup(1));
    test_collect(fx, 4);
    assert_int_equal(fx->got[2]->status, FORQ_ERR_STORAGE);
    /* ... while reads go on. */
    assert_int_equal(fx->got[3]->status, 0);
    assert_true(fx->got[3]->found);

    test_forget(fx);
    store_close(fx->st);
    fx->st = NULL;
    vfs_free(failing);
}

/* A disk that cannot take the written-out WAL: the store refuses to open, and says why. */
static void
test_wal_that_cannot_be_written_out_refuses_the_open(void **state)
{
    struct test_fx *fx = *state;
    struct store_config cfg = test_cfg(fx);
    struct vfs *failing;
    char why[512] = "";

    assert_int_equal(vfs_new(NULL, "forq-test-failsync-wal", test_failing_sync_cb, NULL, &failing),
                     0);
    cfg.vfs = "forq-test-failsync-wal";
    test_open(fx, &cfg); /* creates and migrates the database */
    store_close(fx->st);
    fx->st = NULL; /* the close removed the WAL: the next open writes it out again */

    test_fail_syncs = 1;
    assert_int_equal(store_open(&cfg, &fx->st, why, sizeof(why)), FORQ_ERR_STORAGE);
    test_fail_syncs = 0;
    assert_null(fx->st);
    assert_non_null(strstr(why, "cannot size the write-ahead log"));

    test_open(fx, &cfg); /* and opens once the disk is back */
    store_close(fx->st);
    fx->st = NULL;
    vfs_free(failing);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrates_an_empty_directory, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_recovers_unfinished_jobs_after_reopen, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_finds_finished_jobs, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_purge_deletes_old_results_and_ids_stay_unique,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_records_of_one_loop_turn_share_a_commit, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_writes_a_batch_in_one_transaction,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_durability_modes_differ_in_fsyncs, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_a_directory_is_refused, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database_is_refused_by_name, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_directory_is_refused, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_full_database_fails_writes_and_keeps_reads,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_is_never_success, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_full_durability_writes_the_wal_out_at_open,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_in_a_written_out_wal_survive_a_crash,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_wal_that_cannot_be_written_out_refuses_the_open,
                                        test_setup, test_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
