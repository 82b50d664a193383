/*
 * test_durability.c — the store's promise, against a real forqd and real
 * SQLite files: once SUBMIT is acknowledged the job survives kill -9, and so
 * does a result a client has seen.
 *
 *  - kill -9 in the middle of a storm of submissions (16 threads in flight):
 *    after a restart every acknowledged id exists and succeeds with its own
 *    payload, no id was handed out twice, and new ids do not reuse old ones;
 *  - kill -9 while jobs run: they run again (attempt 2) and finish;
 *  - a finished job's result by id after a clean restart and after kill -9,
 *    for durability full and normal, without running it again;
 *  - results read back from the store when they are no longer in memory
 *    (--result-cache 0), and purged after --result-ttl;
 *  - a full database (--max-db-size): SUBMIT gets `storage`, what was acked
 *    stays, and the daemon keeps serving;
 *  - the data-directory lock, an unusable database file, durability off.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include "harness.h"

#define STORM_THREADS  16
#define STORM_JOBS     20000
#define STORM_KILL_AT  5000 /* acknowledged submissions before the kill */

static void
test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static forq_client *
test_connect(const struct harness *h)
{
    forq_client *c = NULL;

    if (forq_connect(h->addr, &c) != 0)
        fail_msg("connect %s: %s", h->addr, forq_errmsg());
    return c;
}

static uint64_t
test_submit(forq_client *c, const char *task, const char *payload)
{
    forq_future *f;
    uint64_t id;
    int e;

    if ((e = forq_submit(c, task, payload, strlen(payload), NULL, &f)) != 0)
        fail_msg("submit %s: %s", task, forq_errmsg());
    id = forq_future_id(f);
    forq_future_free(f);
    return id;
}

/* Wait for job id by id alone and check its result. Returns its attempts. */
static uint32_t
test_expect_result(forq_client *c, uint64_t id, const char *want)
{
    struct forq_job_info ji;
    forq_future *f;
    const void *data;
    size_t len;
    uint32_t attempts;
    int e;

    assert_int_equal(forq_future_from_id(c, id, &f), 0);
    if ((e = forq_future_result(f, HARNESS_GUARD_MS, &data, &len)) != 0)
        fail_msg("job %llu: %s", (unsigned long long)id, forq_errmsg());
    if (len != strlen(want) || memcmp(data, want, len) != 0)
        fail_msg("job %llu: result '%.*s', want '%s'", (unsigned long long)id, (int)len,
                 (const char *)data, want);
    forq_future_free(f);
    assert_int_equal(forq_status(c, id, &ji), 0);
    assert_int_equal(ji.state, FORQ_STATE_SUCCEEDED);
    attempts = ji.attempts;
    forq_job_info_clear(&ji);
    return attempts;
}

/* ------------------------------------------------------------------ kill -9 during a storm */

struct storm {
    forq_client *c;
    _Atomic uint64_t acked;
    struct storm_thread {
        pthread_t tid;
        struct storm *s;
        int t;
        uint64_t ids[STORM_JOBS / STORM_THREADS];
        int n;         /* acknowledged: ids[0..n) got payload "storm-T-I" */
        int last_err;  /* why it stopped */
    } th[STORM_THREADS];
};

static void *
storm_thread(void *arg)
{
    struct storm_thread *st = arg;
    char payload[32];
    forq_future *f;

    for (int i = 0; i < STORM_JOBS / STORM_THREADS; i++) {
        snprintf(payload, sizeof(payload), "storm-%d-%d", st->t, i);
        if ((st->last_err = forq_submit(st->s->c, "echo", payload, strlen(payload), NULL, &f)) !=
            0)
            break; /* forqd is gone */
        st->ids[st->n++] = forq_future_id(f);
        forq_future_free(f);
        atomic_fetch_add(&st->s->acked, 1);
    }
    return NULL;
}

static int
storm_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void
test_kill9_during_submit_storm(void **state)
{
    static struct storm s;
    static uint64_t all[STORM_JOBS];
    static const char *const args[] = {"--workers=2", NULL};
    struct harness h;
    forq_client *c;
    char want[32];
    size_t n = 0;
    uint64_t fresh;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(harness_start(&h, args), 0);
    s.c = test_connect(&h);
    for (int t = 0; t < STORM_THREADS; t++) {
        s.th[t].s = &s;
        s.th[t].t = t;
        assert_int_equal(pthread_create(&s.th[t].tid, NULL, storm_thread, &s.th[t]), 0);
    }
    for (int waited = 0; atomic_load(&s.acked) < STORM_KILL_AT && waited < HARNESS_GUARD_MS;
         waited++)
        test_sleep_ms(1);
    assert_true(WIFSIGNALED(harness_kill(&h, SIGKILL)));
    for (int t = 0; t < STORM_THREADS; t++)
        pthread_join(s.th[t].tid, NULL);
    forq_client_free(s.c);
    print_message("storm: %llu submissions acknowledged before kill -9\n",
                  (unsigned long long)atomic_load(&s.acked));
    assert_true(atomic_load(&s.acked) >= STORM_KILL_AT);

    assert_int_equal(harness_restart(&h, args), 0);
    c = test_connect(&h);
    for (int t = 0; t < STORM_THREADS; t++) {
        for (int i = 0; i < s.th[t].n; i++) {
            snprintf(want, sizeof(want), "storm-%d-%d", t, i);
            (void)test_expect_result(c, s.th[t].ids[i], want);
            all[n++] = s.th[t].ids[i];
        }
    }
    qsort(all, n, sizeof(all[0]), storm_cmp);
    for (size_t i = 1; i < n; i++)
        if (all[i] == all[i - 1])
            fail_msg("id %llu was acknowledged twice", (unsigned long long)all[i]);
    fresh = test_submit(c, "echo", "after");
    assert_true(fresh > all[n - 1]); /* ids are never reused */
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

/* ------------------------------------------------------------------ kill -9 while running */

static void
test_kill9_while_running_reruns(void **state)
{
    static const char *const args[] = {"--workers=2", NULL};
    struct harness h;
    forq_client *c;
    uint64_t a, b, q;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    a = test_submit(c, "sleep", "300");
    b = test_submit(c, "sleep", "300");
    q = test_submit(c, "upper", "queued behind");
    assert_true(harness_wait_running(c, a) > 0);
    assert_true(harness_wait_running(c, b) > 0);
    forq_client_free(c);
    assert_true(WIFSIGNALED(harness_kill(&h, SIGKILL)));

    assert_int_equal(harness_restart(&h, args), 0);
    c = test_connect(&h);
    assert_int_equal(test_expect_result(c, a, ""), 2); /* at-least-once: it ran again */
    assert_int_equal(test_expect_result(c, b, ""), 2);
    assert_int_equal(test_expect_result(c, q, "QUEUED BEHIND"), 1);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

/* ------------------------------------------------------------------ results survive restarts */

static void
test_result_survives_restart(const char *durability, int sig)
{
    const char *const args[] = {"--workers=1", durability, NULL};
    struct harness h;
    forq_client *c;
    uint64_t ok, bad;
    forq_future *f;
    const void *data;
    size_t len;

    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    ok = test_submit(c, "upper", "keep me");
    assert_int_equal(test_expect_result(c, ok, "KEEP ME"), 1);
    bad = test_submit(c, "fail", "on purpose");
    assert_int_equal(forq_future_from_id(c, bad, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), FORQ_ERR_TASK_FAILED);
    forq_future_free(f);
    forq_client_free(c);
    if (sig == SIGTERM)
        assert_int_equal(harness_stop_keep(&h), 0);
    else
        assert_true(WIFSIGNALED(harness_kill(&h, sig)));

    assert_int_equal(harness_restart(&h, args), 0);
    c = test_connect(&h);
    /* Seen before the kill, so on disk: the same result, and it did not run again. */
    assert_int_equal(test_expect_result(c, ok, "KEEP ME"), 1);
    assert_int_equal(forq_future_from_id(c, bad, &f), 0);
    assert_int_equal(forq_future_result(f, 0, &data, &len), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(forq_future_error(f), "on purpose"));
    forq_future_free(f);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

static void
test_result_after_clean_restart(void **state)
{
    (void)state;
    test_result_survives_restart("--durability=full", SIGTERM);
}

static void
test_result_after_kill9_full(void **state)
{
    (void)state;
    test_result_survives_restart("--durability=full", SIGKILL);
}

static void
test_result_after_kill9_normal(void **state)
{
    (void)state;
    test_result_survives_restart("--durability=normal", SIGKILL);
}

/* ------------------------------------------------------------------ lookups and purge */

static void
test_results_read_back_from_the_store(void **state)
{
    static const char *const args[] = {"--workers=1", "--result-cache=0", NULL};
    struct harness h;
    struct forq_job_info ji;
    forq_client *c;
    uint64_t id;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    id = test_submit(c, "upper", "from disk");
    /* Nothing finished stays in memory: every read below goes to the store. */
    assert_int_equal(test_expect_result(c, id, "FROM DISK"), 1);
    assert_int_equal(test_expect_result(c, id, "FROM DISK"), 1);
    assert_int_equal(forq_status(c, id, &ji), 0);
    assert_string_equal(ji.task, "upper");
    assert_string_equal(ji.queue, "default");
    assert_int_equal(ji.result_size, 9);
    assert_true(ji.finished_us >= ji.started_us && ji.started_us > 0);
    forq_job_info_clear(&ji);
    assert_int_equal(forq_cancel(c, id), FORQ_ERR_STATE); /* finished: cannot cancel */
    assert_non_null(strstr(forq_errmsg(), "succeeded"));
    assert_int_equal(forq_status(c, id + 1000, &ji), FORQ_ERR_NOT_FOUND);
    assert_int_equal(forq_ping(c), 0);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

static void
test_purged_results_are_not_found(void **state)
{
    static const char *const args[] = {"--workers=1", "--result-cache=0", "--result-ttl=1",
                                       NULL};
    struct harness h;
    struct forq_job_info ji;
    forq_client *c;
    uint64_t id, next;
    int e = 0;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    id = test_submit(c, "upper", "short-lived");
    assert_int_equal(test_expect_result(c, id, "SHORT-LIVED"), 1);
    for (int waited = 0; waited < HARNESS_GUARD_MS; waited += 20) {
        if ((e = forq_status(c, id, &ji)) != 0)
            break;
        forq_job_info_clear(&ji);
        test_sleep_ms(20);
    }
    assert_int_equal(e, FORQ_ERR_NOT_FOUND);
    assert_non_null(strstr(forq_errmsg(), "expired"));
    forq_client_free(c);
    assert_int_equal(harness_stop_keep(&h), 0);

    assert_int_equal(harness_restart(&h, args), 0);
    c = test_connect(&h);
    assert_int_equal(forq_status(c, id, &ji), FORQ_ERR_NOT_FOUND);
    next = test_submit(c, "echo", "x");
    assert_true(next > id); /* the purge took the row, not the id */
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

/* ------------------------------------------------------------------ a full database */

static void
test_full_database(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-db-size=96K", NULL};
    struct harness h;
    struct forq_job_info ji;
    forq_client *c, *other;
    uint64_t sleeper, acked[256];
    char payload[3001];
    forq_future *f;
    int n = 0, e = 0;

    (void)state;
    memset(payload, 'p', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    other = test_connect(&h);
    sleeper = test_submit(c, "sleep", "600000"); /* holds the worker: the rest stay queued */
    assert_true(harness_wait_running(c, sleeper) > 0);
    while (n < 256) {
        if ((e = forq_submit(c, "echo", payload, strlen(payload), NULL, &f)) != 0)
            break;
        acked[n++] = forq_future_id(f);
        forq_future_free(f);
    }
    assert_int_equal(e, FORQ_ERR_STORAGE);
    assert_non_null(strstr(forq_errmsg(), "full"));
    assert_true(n > 0);
    print_message("full database: %d jobs stored before SUBMIT got storage\n", n);

    /* Reads go on, for this client and the others; so does a second refusal. */
    assert_int_equal(forq_status(c, acked[0], &ji), 0);
    assert_int_equal(ji.state, FORQ_STATE_QUEUED);
    forq_job_info_clear(&ji);
    assert_int_equal(forq_ping(other), 0);
    assert_int_equal(forq_status(other, sleeper, &ji), 0);
    assert_int_equal(ji.state, FORQ_STATE_RUNNING);
    forq_job_info_clear(&ji);
    assert_int_equal(forq_submit(other, "echo", payload, strlen(payload), NULL, &f),
                     FORQ_ERR_STORAGE);
    forq_client_free(other);
    forq_client_free(c);

    /* Everything acknowledged is on disk, and nothing else was. */
    assert_true(WIFSIGNALED(harness_kill(&h, SIGKILL)));
    assert_int_equal(harness_restart(&h, args), 0);
    c = test_connect(&h);
    for (int i = 0; i < n; i++) {
        assert_int_equal(forq_status(c, acked[i], &ji), 0);
        forq_job_info_clear(&ji);
    }
    assert_int_equal(forq_status(c, acked[n - 1] + 1, &ji), FORQ_ERR_NOT_FOUND);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

/*
 * The database fills up while jobs finish, and each outcome (a failure whose
 * message is longer than the job's payload) needs more room than the job
 * did: an outcome whose FINISH could not be written is not given out (WAIT
 * answers `storage`), and every outcome that was given out is on disk: after
 * kill -9 it reads back the same, from the first attempt.
 */
static void
test_full_database_never_gives_out_unstored_outcomes(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-db-size=40K", "--result-cache=0",
                                       NULL};
    static const char *const roomy[] = {"--workers=1", "--result-cache=0", NULL};
    static uint64_t seen[600];
    struct forq_job_info ji;
    struct harness h;
    forq_client *c;
    forq_future *f;
    const void *data;
    size_t len;
    int nseen = 0, unstored = 0, refused = 0, e;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    for (int i = 0; i < 600 && refused < 50; i++) {
        /* "x" is not a number of milliseconds: the job fails with a message. */
        if ((e = forq_submit(c, "sleep", "x", 1, NULL, &f)) != 0) {
            assert_int_equal(e, FORQ_ERR_STORAGE);
            refused++;
            continue;
        }
        e = forq_future_result(f, HARNESS_GUARD_MS, &data, &len);
        if (e == FORQ_ERR_TASK_FAILED) {
            seen[nseen++] = forq_future_id(f);
        } else {
            assert_int_equal(e, FORQ_ERR_STORAGE); /* never an outcome that is not on disk */
            assert_non_null(strstr(forq_errmsg(), "could not be stored"));
            unstored++;
        }
        forq_future_free(f);
    }
    print_message("full database: %d outcomes given out, %d held back, %d submits refused\n",
                  nseen, unstored, refused);
    assert_true(nseen > 0);
    assert_true(unstored + refused > 0); /* it did fill up */
    forq_client_free(c);
    assert_true(WIFSIGNALED(harness_kill(&h, SIGKILL)));

    assert_int_equal(harness_restart(&h, roomy), 0);
    c = test_connect(&h);
    for (int i = 0; i < nseen; i++) {
        assert_int_equal(forq_status(c, seen[i], &ji), 0);
        assert_int_equal(ji.state, FORQ_STATE_FAILED);
        assert_int_equal(ji.attempts, 1); /* given out once, never run again */
        forq_job_info_clear(&ji);
    }
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

/* ------------------------------------------------------------------ start-up refusals */

static void
expect_exit(const char *const *args, const char *needle1, const char *needle2)
{
    char out[8192];
    int r = harness_run_forqd(args, out, sizeof(out));

    if (r == 0 || strstr(out, needle1) == NULL || strstr(out, needle2) == NULL)
        fail_msg("expected a failure mentioning '%s' and '%s', got %d:\n%s", needle1, needle2, r,
                 out);
}

static void
test_second_instance_is_refused(void **state)
{
    static const char *const args[] = {"--workers=1", NULL};
    struct harness h;
    char data[320], pid[32];
    const char *second[] = {"--listen=tcp://127.0.0.1:0", data, "--workers=1", NULL};

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    snprintf(data, sizeof(data), "--data=%s/data", h.dir);
    snprintf(pid, sizeof(pid), "pid %d", (int)h.pid);
    expect_exit(second, "another forqd", pid);
    assert_int_equal(harness_stop(&h), 0);
}

static void
test_unusable_database_is_refused(void **state)
{
    char dir[] = "/tmp/forq-test-db-XXXXXX", path[128], data[160];
    const char *args[] = {"--listen=tcp://127.0.0.1:0", data, "--workers=1", NULL};
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/forq.db", dir);
    snprintf(data, sizeof(data), "--data=%s", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("not a database, just some text that is long enough to have a header\n", f);
    fclose(f);
    expect_exit(args, path, "not a database");

    /* A data directory that cannot be made: its parent is a regular file. */
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/file", dir);
    assert_non_null(f = fopen(path, "w"));
    fclose(f);
    snprintf(data, sizeof(data), "--data=%s/file/below", dir);
    expect_exit(args, "cannot create the data directory", "file/below");

    unlink(path);
    rmdir(dir);
}

static void
test_durability_off_writes_nothing(void **state)
{
    static const char *const args[] = {"--workers=1", "--durability=off", NULL};
    struct harness h;
    struct stat st;
    forq_client *c;
    char data[320];
    uint64_t id;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    c = test_connect(&h);
    id = test_submit(c, "upper", "in memory");
    assert_int_equal(test_expect_result(c, id, "IN MEMORY"), 1);
    snprintf(data, sizeof(data), "%s/data", h.dir);
    assert_int_equal(stat(data, &st), -1); /* no store: not even its directory */
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_during_submit_storm),
        cmocka_unit_test(test_kill9_while_running_reruns),
        cmocka_unit_test(test_result_after_clean_restart),
        cmocka_unit_test(test_result_after_kill9_full),
        cmocka_unit_test(test_result_after_kill9_normal),
        cmocka_unit_test(test_results_read_back_from_the_store),
        cmocka_unit_test(test_purged_results_are_not_found),
        cmocka_unit_test(test_full_database),
        cmocka_unit_test(test_full_database_never_gives_out_unstored_outcomes),
        cmocka_unit_test(test_second_instance_is_refused),
        cmocka_unit_test(test_unusable_database_is_refused),
        cmocka_unit_test(test_durability_off_writes_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
