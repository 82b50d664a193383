/*
 * test_pool.c — unit tests for daemon/pool.c with real worker processes: the
 * prefork pool, its shared-memory slots and condition-variable handoff
 * (slot.c, worker.c), driven by a real libevent loop.
 *
 * Each test gets a fresh pool of TEST_WORKERS workers. The pool_ops callbacks
 * record what happened into the fixture and into the job the cookie points
 * at, then break the loop; test_wait() turns the loop with EVLOOP_ONCE until
 * the recorded state is what the test waits for. A 30 s guard timer (and a
 * per-test alarm for a loop thread that is itself stuck) only keeps a broken
 * pool from hanging the suite; nothing here asserts on time.
 *
 * Workers are killed with SIGKILL at chosen moments: while running a job
 * (the job is reported lost, started), while idle on their condition
 * variable (replaced silently), and after a job was handed to a worker that
 * had already died (reported lost, not started).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "forq.h"
#include "pool.h"
#include "slot.h"
#include "task.h"

#define TEST_WORKERS     2
#define TEST_PAYLOAD_CAP 256
#define TEST_RESULT_CAP  128
#define TEST_GUARD_S     30
#define TEST_WATCHDOG_S  120 /* per test; see test_setup */
#define TEST_MARK_TASK   "test.mark_then_sleep"

/* What became of one job; the job's address is its cookie. */
struct test_job {
    int done, lost;
    int status;
    uint8_t result[TEST_RESULT_CAP];
    size_t result_len;
    char errmsg[SLOT_ERRMSG_MAX];
    int started;
    char why[256];
    uint64_t started_us; /* as done reports it */
};

struct test_fx {
    struct event_base *base;
    struct pool *pool;
    struct task_table tasks;
    int ndone, nlost, nidle;
    int timed_out;
};

/*
 * A task that records that it started, in a page shared with the test, then
 * runs the built-in sleep. Tasks run in forked workers, which see only what
 * they inherited, so the page and the table are reached through these two
 * pointers, set before the pool forks.
 */
static volatile uint32_t *test_marks;
static const struct task_table *test_task_table;

static int
test_mark_then_sleep(struct forq_task_io *io)
{
    const struct task_table *t = test_task_table;

    __atomic_add_fetch(test_marks, 1, __ATOMIC_SEQ_CST);
    return task_run(t, task_find(t, "sleep", 5), io);
}

/*
 * A task that records that it started, then waits until the test opens the
 * gate (test_marks[1] != 0), so a test decides when it ends without a clock.
 */
#define TEST_GATE_TASK "test.gate"

static int
test_gate(struct forq_task_io *io)
{
    const struct timespec ms = {0, 1000000};

    (void)io;
    __atomic_add_fetch(test_marks, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&test_marks[1], __ATOMIC_SEQ_CST) == 0)
        nanosleep(&ms, NULL);
    return 0;
}

static void
test_gate_set(int open)
{
    __atomic_store_n(&test_marks[1], open ? 1U : 0U, __ATOMIC_SEQ_CST);
}

static void
test_done_cb(void *arg, void *cookie, int status, const uint8_t *result, size_t len,
             const char *errmsg, uint64_t started_us)
{
    struct test_fx *fx = arg;
    struct test_job *job = cookie;

    job->done++;
    job->status = status;
    job->started_us = started_us;
    job->result_len = len;
    if (len <= sizeof(job->result))
        memcpy(job->result, result, len);
    snprintf(job->errmsg, sizeof(job->errmsg), "%s", errmsg);
    fx->ndone++;
    event_base_loopbreak(fx->base);
}

static void
test_lost_cb(void *arg, void *cookie, int started, int reason, const char *why)
{
    struct test_fx *fx = arg;
    struct test_job *job = cookie;

    job->lost++;
    job->started = started;
    snprintf(job->why, sizeof(job->why), "%s", why);
    fx->nlost++;
    event_base_loopbreak(fx->base);
}

static void
test_idle_cb(void *arg)
{
    struct test_fx *fx = arg;

    fx->nidle++;
    event_base_loopbreak(fx->base);
}

static const struct pool_ops test_ops = {test_done_cb, test_lost_cb, test_idle_cb};

static const struct pool_config test_cfg = {
    TEST_WORKERS, TEST_PAYLOAD_CAP, TEST_RESULT_CAP, 0, 0, 1, 0, 0};
/*
 * Batches of up to 4 jobs, of any task seen once, and pool_give prefers a
 * batch with room to an idle worker: no clock decides what is quick.
 */
#define TEST_BATCH 4
static const struct pool_config test_batch_cfg = {
    TEST_WORKERS, TEST_PAYLOAD_CAP, TEST_RESULT_CAP, 0, 0, TEST_BATCH, UINT32_MAX, UINT32_MAX};

static int
test_setup_with(void **state, const struct pool_config *cfg)
{
    struct test_fx *fx = calloc(1, sizeof(*fx));
    void *page;

    if (fx == NULL || (fx->base = event_base_new()) == NULL)
        return -1;
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -1;
    test_marks = page;
    task_table_init(&fx->tasks);
    if (task_table_add(&fx->tasks, TEST_MARK_TASK, test_mark_then_sleep) != 0 ||
        task_table_add(&fx->tasks, TEST_GATE_TASK, test_gate) != 0)
        return -1;
    test_task_table = &fx->tasks;
    if (pool_new(fx->base, cfg, &fx->tasks, &test_ops, fx, &fx->pool) != 0)
        return -1;
    /*
     * A broken slot can block the loop thread itself (pthread_cond_signal on
     * a condition variable whose waiter was killed and never rebuilt waits
     * forever), where no loop timer can help: end the test binary instead.
     */
    alarm(TEST_WATCHDOG_S);
    *state = fx;
    return 0;
}

static int
test_setup(void **state)
{
    return test_setup_with(state, &test_cfg);
}

static int
test_setup_batch(void **state)
{
    return test_setup_with(state, &test_batch_cfg);
}

static int
test_teardown(void **state)
{
    struct test_fx *fx = *state;

    alarm(0);
    pool_free(fx->pool);
    event_base_free(fx->base);
    munmap((void *)test_marks, 4096);
    test_marks = NULL;
    test_task_table = NULL;
    free(fx);
    return 0;
}

static int
test_task(struct test_fx *fx, const char *name)
{
    int idx = task_find(&fx->tasks, name, strlen(name));

    assert_true(idx >= 0);
    return idx;
}

/* Hand a job to the pool; returns the worker's pid. */
static pid_t
test_run(struct test_fx *fx, const char *task, const char *payload, struct test_job *job)
{
    pid_t pid = -1;

    memset(job, 0, sizeof(*job));
    assert_int_equal(
        pool_run(fx->pool, 1, test_task(fx, task), payload, strlen(payload), 0, job, &pid), 0);
    assert_true(pid > 0);
    return pid;
}

static void
test_guard_cb(evutil_socket_t fd, short what, void *arg)
{
    struct test_fx *fx = arg;

    fx->timed_out = 1;
    event_base_loopbreak(fx->base);
}

enum test_until {
    UNTIL_DONE,      /* n jobs done in all */
    UNTIL_LOST,      /* n jobs lost in all */
    UNTIL_ALL_IDLE,  /* every worker alive and waiting for work */
    UNTIL_RESTARTED, /* that, and the worker of slot n was replaced */
};

static int
test_reached(struct test_fx *fx, enum test_until until, int n)
{
    struct pool_worker_info info;

    switch (until) {
    case UNTIL_DONE:
        return fx->ndone >= n;
    case UNTIL_LOST:
        return fx->nlost >= n;
    case UNTIL_ALL_IDLE:
    case UNTIL_RESTARTED:
        if (pool_idle(fx->pool) != TEST_WORKERS)
            return 0;
        for (size_t i = 0; i < pool_size(fx->pool); i++) {
            pool_info(fx->pool, i, &info);
            if (info.pid == 0)
                return 0;
        }
        if (until == UNTIL_ALL_IDLE)
            return 1;
        pool_info(fx->pool, (size_t)n, &info);
        return info.restarts > 0;
    }
    return 0;
}

/* Turn the loop until the condition holds, or the guard fires. */
static int
test_wait(struct test_fx *fx, enum test_until until, int n)
{
    struct timeval tv = {TEST_GUARD_S, 0};
    struct event *guard = evtimer_new(fx->base, test_guard_cb, fx);

    assert_non_null(guard);
    fx->timed_out = 0;
    evtimer_add(guard, &tv);
    while (!test_reached(fx, until, n) && !fx->timed_out)
        event_base_loop(fx->base, EVLOOP_ONCE);
    event_free(guard);
    return test_reached(fx, until, n);
}

static void
test_pause_1ms(void)
{
    struct timespec ts = {0, 1000000};

    nanosleep(&ts, NULL);
}

/* Wait until the mark task has started at least n times (in a worker). */
static int
test_wait_marks(uint32_t n)
{
    for (int i = 0; i < TEST_GUARD_S * 1000; i++) {
        if (__atomic_load_n(test_marks, __ATOMIC_SEQ_CST) >= n)
            return 1;
        test_pause_1ms();
    }
    return 0;
}

/*
 * Wait until pid is blocked in the kernel (state S). An idle worker blocks
 * only in pthread_cond_wait on its slot, so this is "waiting on its
 * condition variable".
 */
static int
test_wait_blocked(pid_t pid)
{
    char path[64], buf[512];

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    for (int i = 0; i < TEST_GUARD_S * 1000; i++) {
        FILE *f = fopen(path, "r");
        size_t n = 0;
        char *paren;

        if (f != NULL) {
            n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
        }
        buf[n] = '\0';
        /* "pid (comm) S ...": the state follows the last ')'. */
        if ((paren = strrchr(buf, ')')) != NULL && paren[1] == ' ' && paren[2] == 'S')
            return 1;
        test_pause_1ms();
    }
    return 0;
}

static pid_t
test_worker_pid(struct test_fx *fx, size_t i)
{
    struct pool_worker_info info;

    pool_info(fx->pool, i, &info);
    return info.pid;
}

/* The slot whose worker has pid, or pool_size when none has. */
static size_t
test_slot_of(struct test_fx *fx, pid_t pid)
{
    size_t i;

    for (i = 0; i < pool_size(fx->pool); i++)
        if (test_worker_pid(fx, i) == pid)
            break;
    return i;
}

/* Fill every worker with an upper job and check each result; pids gets their workers. */
static void
test_run_on_all(struct test_fx *fx, pid_t *pids)
{
    static const char *in[TEST_WORKERS] = {"first job", "Second Job"};
    static const char *out[TEST_WORKERS] = {"FIRST JOB", "SECOND JOB"};
    struct test_job jobs[TEST_WORKERS];
    int before = fx->ndone;

    for (size_t i = 0; i < TEST_WORKERS; i++)
        pids[i] = test_run(fx, "upper", in[i], &jobs[i]);
    assert_int_not_equal(pids[0], pids[1]);
    assert_int_equal(pool_idle(fx->pool), 0);
    assert_true(test_wait(fx, UNTIL_DONE, before + TEST_WORKERS));
    for (size_t i = 0; i < TEST_WORKERS; i++) {
        assert_int_equal(jobs[i].done, 1);
        assert_int_equal(jobs[i].lost, 0);
        assert_int_equal(jobs[i].status, 0);
        assert_int_equal(jobs[i].result_len, strlen(out[i]));
        assert_memory_equal(jobs[i].result, out[i], strlen(out[i]));
    }
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
}

static void
test_pool_starts_all_workers(void **state)
{
    struct test_fx *fx = *state;

    assert_int_equal(pool_size(fx->pool), TEST_WORKERS);
    assert_int_equal(pool_idle(fx->pool), TEST_WORKERS);
    for (size_t i = 0; i < TEST_WORKERS; i++) {
        struct pool_worker_info info;

        pool_info(fx->pool, i, &info);
        assert_int_equal(info.slot, i);
        assert_true(info.pid > 0);
        assert_int_equal(kill(info.pid, 0), 0); /* a live process */
        assert_string_equal(info.state, "idle");
        assert_int_equal(info.job, 0);
        assert_int_equal(info.jobs_done, 0);
        assert_int_equal(info.restarts, 0);
    }
    assert_int_not_equal(test_worker_pid(fx, 0), test_worker_pid(fx, 1));
}

static void
test_pool_new_rejects_zero_workers(void **state)
{
    struct test_fx *fx = *state;
    struct pool_config cfg = {0, 16, 16, 0, 0, 1, 0, 0};
    struct pool *p = (struct pool *)fx; /* must be cleared */

    assert_int_equal(pool_new(fx->base, &cfg, &fx->tasks, &test_ops, fx, &p), FORQ_ERR_INVALID);
    assert_null(p);
}

static void
test_pool_upper_result_and_cookie(void **state)
{
    struct test_fx *fx = *state;
    struct test_job job, other;
    struct pool_worker_info info;
    pid_t pid;
    size_t slot;

    memset(&other, 0, sizeof(other));
    pid = test_run(fx, "upper", "Hello, pool \xc3\xa9!", &job);
    slot = test_slot_of(fx, pid);
    assert_true(slot < TEST_WORKERS);
    pool_info(fx->pool, slot, &info);
    assert_string_equal(info.state, "busy");
    assert_int_equal(info.job, 1);

    assert_true(test_wait(fx, UNTIL_DONE, 1));
    assert_int_equal(job.done, 1);
    assert_int_equal(other.done, 0);
    assert_int_equal(job.status, 0);
    assert_int_equal(job.result_len, 15);
    assert_memory_equal(job.result, "HELLO, POOL \xc3\xa9!", 15);
    assert_int_equal(fx->nlost, 0);

    pool_info(fx->pool, slot, &info);
    assert_string_equal(info.state, "idle");
    assert_int_equal(info.job, 0);
    assert_int_equal(info.jobs_done, 1);
    assert_int_equal(info.pid, pid);
    assert_int_equal(pool_idle(fx->pool), TEST_WORKERS);
}

static void
test_pool_failing_task_reports_message(void **state)
{
    struct test_fx *fx = *state;
    struct test_job job, bad;
    pid_t pid = 0;

    (void)test_run(fx, "fail", "the disk is on fire", &job);
    assert_true(test_wait(fx, UNTIL_DONE, 1));
    assert_int_equal(job.done, 1);
    assert_int_equal(job.status, FORQ_ERR_TASK_FAILED);
    assert_string_equal(job.errmsg, "the disk is on fire");
    assert_int_equal(job.result_len, 0);

    /* A bad argument and a task index nobody knows fail the same way. */
    (void)test_run(fx, "fib", "51", &job);
    memset(&bad, 0, sizeof(bad));
    assert_int_equal(pool_run(fx->pool, 2, 999, "", 0, 0, &bad, &pid), 0);
    assert_true(test_wait(fx, UNTIL_DONE, 3));
    assert_int_equal(job.done, 1);
    assert_int_equal(job.status, FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(job.errmsg, "0..50"));
    assert_int_equal(bad.done, 1);
    assert_int_equal(bad.status, FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(bad.errmsg, "no task with index 999"));
    assert_int_equal(fx->nlost, 0);
}

static void
test_pool_idle_count_and_limit(void **state)
{
    struct test_fx *fx = *state;
    struct test_job a, b, c;
    pid_t pa, pb, pid = 123;

    memset(&c, 0, sizeof(c));
    assert_int_equal(pool_idle(fx->pool), 2);
    pa = test_run(fx, "sleep", "20", &a);
    assert_int_equal(pool_idle(fx->pool), 1);
    pb = test_run(fx, "fib", "20", &b);
    assert_int_equal(pool_idle(fx->pool), 0);
    assert_int_not_equal(pa, pb);

    /* No worker free: refused, nothing taken. */
    assert_int_equal(pool_run(fx->pool, 3, test_task(fx, "echo"), "x", 1, 0, &c, &pid),
                     FORQ_ERR_LIMIT);
    assert_int_equal(pid, 0);
    assert_int_equal(pool_idle(fx->pool), 0);
    /* A payload no slot can hold says so, busy workers or not. */
    {
        static char big[TEST_PAYLOAD_CAP + 1];

        assert_int_equal(pool_run(fx->pool, 4, test_task(fx, "echo"), big, sizeof(big), 0, &c, &pid),
                         FORQ_ERR_TOO_BIG);
    }

    assert_true(test_wait(fx, UNTIL_DONE, 2));
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    assert_int_equal(pool_idle(fx->pool), 2);
    assert_true(fx->nidle >= 2); /* ops->idle told us each time */
    assert_int_equal(a.done, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.status, 0);
    assert_memory_equal(b.result, "6765", 4);
    assert_int_equal(c.done + c.lost, 0);
}

static void
test_pool_payload_and_result_caps(void **state)
{
    struct test_fx *fx = *state;
    uint8_t big[TEST_PAYLOAD_CAP + 1];
    struct test_job job;
    pid_t pid = 123;

    memset(big, 'p', sizeof(big));
    memset(&job, 0, sizeof(job));
    assert_int_equal(pool_run(fx->pool, 1, test_task(fx, "echo"), big, sizeof(big), 0, &job, &pid),
                     FORQ_ERR_TOO_BIG);
    assert_int_equal(pid, 0);
    assert_int_equal(pool_idle(fx->pool), TEST_WORKERS);

    /* A full payload travels; its echo is over the result cap and fails in the worker. */
    assert_int_equal(
        pool_run(fx->pool, 1, test_task(fx, "echo"), big, TEST_PAYLOAD_CAP, 0, &job, &pid), 0);
    assert_true(test_wait(fx, UNTIL_DONE, 1));
    assert_int_equal(job.status, FORQ_ERR_TOO_BIG);
    assert_non_null(strstr(job.errmsg, "exceeds the limit of 128"));
    assert_int_equal(job.result_len, 0);

    /* Exactly the result cap comes back whole. */
    memset(&job, 0, sizeof(job));
    assert_int_equal(
        pool_run(fx->pool, 2, test_task(fx, "upper"), big, TEST_RESULT_CAP, 0, &job, &pid), 0);
    assert_true(test_wait(fx, UNTIL_DONE, 2));
    assert_int_equal(job.status, 0);
    assert_int_equal(job.result_len, TEST_RESULT_CAP);
    for (size_t i = 0; i < TEST_RESULT_CAP; i++)
        assert_int_equal(job.result[i], 'P');
}

/* Many jobs through few workers: each outcome reaches its own cookie. */
static void
test_pool_many_jobs(void **state)
{
    enum { N = 200 };
    struct test_fx *fx = *state;
    static struct test_job jobs[N];
    static char payloads[N][16];
    uint64_t done = 0;
    size_t next = 0;

    while (fx->ndone < N) {
        while (next < N && pool_idle(fx->pool) > 0) {
            snprintf(payloads[next], sizeof(payloads[next]), "%zu", next % 20);
            (void)test_run(fx, "fib", payloads[next], &jobs[next]);
            next++;
        }
        assert_true(test_wait(fx, UNTIL_DONE, fx->ndone + 1));
    }
    for (size_t i = 0; i < N; i++) {
        static const char *fib[20] = {"0",   "1",   "1",   "2",    "3",    "5",   "8",
                                      "13",  "21",  "34",  "55",   "89",   "144", "233",
                                      "377", "610", "987", "1597", "2584", "4181"};

        assert_int_equal(jobs[i].done, 1);
        assert_int_equal(jobs[i].status, 0);
        assert_int_equal(jobs[i].result_len, strlen(fib[i % 20]));
        assert_memory_equal(jobs[i].result, fib[i % 20], strlen(fib[i % 20]));
    }
    for (size_t i = 0; i < TEST_WORKERS; i++) {
        struct pool_worker_info info;

        pool_info(fx->pool, i, &info);
        done += info.jobs_done;
        assert_int_equal(info.restarts, 0);
    }
    assert_int_equal(done, N);
    assert_int_equal(fx->nlost, 0);
}

static void
test_pool_sigkill_busy_worker(void **state)
{
    struct test_fx *fx = *state;
    struct pool_worker_info info, other;
    struct test_job job;
    pid_t pid, pids[TEST_WORKERS];
    size_t slot;

    pid = test_run(fx, TEST_MARK_TASK, "10000", &job);
    slot = test_slot_of(fx, pid);
    assert_true(slot < TEST_WORKERS);
    assert_true(test_wait_marks(1)); /* it is inside the task now */
    assert_int_equal(kill(pid, SIGKILL), 0);

    assert_true(test_wait(fx, UNTIL_LOST, 1));
    assert_int_equal(job.lost, 1);
    assert_int_equal(job.done, 0);
    assert_int_equal(job.started, 1);
    assert_non_null(strstr(job.why, "killed by signal 9"));
    assert_int_equal(fx->ndone, 0);

    /* A replacement comes up in the same slot; the other worker is untouched. */
    assert_true(test_wait(fx, UNTIL_RESTARTED, (int)slot));
    pool_info(fx->pool, slot, &info);
    assert_true(info.pid > 0);
    assert_int_not_equal(info.pid, pid);
    assert_int_equal(info.restarts, 1);
    assert_int_equal(info.job, 0);
    assert_string_equal(info.state, "idle");
    pool_info(fx->pool, 1 - slot, &other);
    assert_int_equal(other.restarts, 0);
    assert_int_not_equal(other.pid, pid);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* the pool reaped it */

    /* And the new worker runs jobs. */
    test_run_on_all(fx, pids);
    assert_true(pids[0] == info.pid || pids[1] == info.pid);
    assert_int_equal(fx->nlost, 1);
}

static void
test_pool_sigkill_idle_worker(void **state)
{
    struct test_fx *fx = *state;
    struct pool_worker_info info, other;
    pid_t old, survivor, pids[TEST_WORKERS];

    /* Each worker takes a job first, so both are back in their wait loop afterwards. */
    test_run_on_all(fx, pids);
    old = test_worker_pid(fx, 0);
    survivor = test_worker_pid(fx, 1);
    assert_true(test_wait_blocked(old));
    assert_int_equal(kill(old, SIGKILL), 0);

    assert_true(test_wait(fx, UNTIL_RESTARTED, 0));
    pool_info(fx->pool, 0, &info);
    assert_true(info.pid > 0);
    assert_int_not_equal(info.pid, old);
    assert_int_equal(info.restarts, 1);
    pool_info(fx->pool, 1, &other);
    assert_int_equal(other.pid, survivor);
    assert_int_equal(other.restarts, 0);
    assert_int_equal(fx->nlost, 0); /* it held no job */
    assert_int_equal(waitpid(old, NULL, WNOHANG), -1);

    /* Jobs still run, on the replacement too (its slot was rebuilt). */
    test_run_on_all(fx, pids);
    assert_true(pids[0] == info.pid || pids[1] == info.pid);
    test_run_on_all(fx, pids);
    assert_int_equal(fx->nlost, 0);
}

/*
 * A worker dies while idle and, before the loop notices, is handed a job:
 * the job is reported lost and not started (so it can run elsewhere).
 */
static void
test_pool_job_for_dead_worker_is_lost_unstarted(void **state)
{
    struct test_fx *fx = *state;
    struct test_job jobs[TEST_WORKERS], *on_dead, *on_live;
    pid_t dead, pids[TEST_WORKERS];
    siginfo_t si;

    dead = test_worker_pid(fx, 0);
    assert_true(test_wait_blocked(dead));
    assert_int_equal(kill(dead, SIGKILL), 0);
    /* Wait for the death without reaping it: the pool must still see it. */
    memset(&si, 0, sizeof(si));
    assert_int_equal(waitid(P_PID, (id_t)dead, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(si.si_pid, dead);

    pids[0] = test_run(fx, "echo", "zero", &jobs[0]);
    pids[1] = test_run(fx, "echo", "one", &jobs[1]);
    assert_true(pids[0] == dead || pids[1] == dead);
    on_dead = pids[0] == dead ? &jobs[0] : &jobs[1];
    on_live = pids[0] == dead ? &jobs[1] : &jobs[0];

    assert_true(test_wait(fx, UNTIL_LOST, 1));
    assert_true(test_wait(fx, UNTIL_DONE, 1));
    assert_int_equal(on_dead->lost, 1);
    assert_int_equal(on_dead->done, 0);
    assert_int_equal(on_dead->started, 0);
    assert_non_null(strstr(on_dead->why, "killed by signal 9"));
    assert_int_equal(on_live->done, 1);
    assert_int_equal(on_live->lost, 0);
    assert_int_equal(on_live->status, 0);

    assert_true(test_wait(fx, UNTIL_RESTARTED, 0));
    assert_int_not_equal(test_worker_pid(fx, 0), dead);
    test_run_on_all(fx, pids);
    assert_int_equal(fx->nlost, 1);
}

/* pool_free stops busy workers too, reaps them and reports nothing. */
static void
test_pool_free_stops_busy_workers(void **state)
{
    struct test_fx *fx = *state;
    struct test_job jobs[TEST_WORKERS];
    pid_t pids[TEST_WORKERS];

    for (size_t i = 0; i < TEST_WORKERS; i++)
        pids[i] = test_run(fx, TEST_MARK_TASK, "3600000", &jobs[i]);
    assert_true(test_wait_marks(TEST_WORKERS));
    pool_free(fx->pool);
    fx->pool = NULL;
    for (size_t i = 0; i < TEST_WORKERS; i++) {
        assert_int_equal(waitpid(pids[i], NULL, WNOHANG), -1); /* gone and reaped */
        assert_int_equal(kill(pids[i], 0), -1);
        assert_int_equal(jobs[i].done + jobs[i].lost, 0);
    }
    assert_int_equal(fx->ndone + fx->nlost, 0);
    /* Nothing of the pool is left on the loop. */
    assert_int_equal(event_base_loop(fx->base, EVLOOP_NONBLOCK), 1);
}

/* pool_free with every worker idle: they exit on request. */
static void
test_pool_free_idle(void **state)
{
    struct test_fx *fx = *state;
    pid_t pids[TEST_WORKERS];

    for (size_t i = 0; i < TEST_WORKERS; i++)
        pids[i] = test_worker_pid(fx, i);
    pool_free(fx->pool);
    fx->pool = NULL;
    for (size_t i = 0; i < TEST_WORKERS; i++)
        assert_int_equal(waitpid(pids[i], NULL, WNOHANG), -1);
    pool_free(NULL);
}


/* ------------------------------------------------------------------ batches */

/* Append a job; returns its worker's pid, or 0 when the pool refused it. */
static pid_t
test_append(struct test_fx *fx, uint64_t id, const char *task, const char *payload,
            uint64_t timeout_ms, struct test_job *job)
{
    pid_t pid = -1;
    int e;

    memset(job, 0, sizeof(*job));
    e = pool_append(fx->pool, id, test_task(fx, task), payload, strlen(payload), timeout_ms, job,
                    &pid);
    assert_true(e == 0 || e == FORQ_ERR_LIMIT);
    assert_true(e == 0 ? pid > 0 : pid == 0);
    return e == 0 ? pid : 0;
}

/*
 * Run the gate and upper tasks once each, so that the pool has seen them:
 * with batch_quick_us at its largest, that makes them quick. Leaves every
 * worker idle and the gate closed.
 */
static void
test_warm_up(struct test_fx *fx)
{
    struct test_job warm[2];
    int before = fx->ndone;

    test_gate_set(1);
    (void)test_run(fx, TEST_GATE_TASK, "", &warm[0]);
    (void)test_run(fx, "upper", "warm", &warm[1]);
    assert_true(test_wait(fx, UNTIL_DONE, before + 2));
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    test_gate_set(0);
}

/*
 * Start a gate job, id 1000 + i, on n workers and wait until all n run;
 * pids gets their workers. The gate stays closed.
 */
static void
test_hold(struct test_fx *fx, size_t n, struct test_job *held, pid_t *pids)
{
    __atomic_store_n(test_marks, 0U, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < n; i++) {
        memset(&held[i], 0, sizeof(held[i]));
        assert_int_equal(pool_run(fx->pool, 1000 + i, test_task(fx, TEST_GATE_TASK), "", 0, 0,
                                  &held[i], &pids[i]),
                         0);
    }
    assert_true(test_wait_marks((uint32_t)n));
}

/*
 * Jobs appended to busy workers run in order after the job ahead of them,
 * each outcome to its own cookie, with start times that keep that order; the
 * batches stay even, and stop at batch_max.
 */
static void
test_batch_appended_jobs_run_in_order(void **state)
{
    enum { N = TEST_WORKERS * (TEST_BATCH - 1) };
    struct test_fx *fx = *state;
    struct test_job held[TEST_WORKERS], jobs[N], extra;
    static const char *in[N] = {"a", "bb", "ccc", "dddd", "eeeee", "ffffff"};
    static const char *out[N] = {"A", "BB", "CCC", "DDDD", "EEEEE", "FFFFFF"};
    pid_t pids[TEST_WORKERS], on[N];
    struct pool_worker_info info;
    uint64_t done = 0;
    int before;

    test_warm_up(fx);
    test_hold(fx, TEST_WORKERS, held, pids);
    before = fx->ndone;
    for (size_t i = 0; i < N; i++) {
        on[i] = test_append(fx, 100 + i, "upper", in[i], 0, &jobs[i]);
        assert_true(on[i] == pids[0] || on[i] == pids[1]);
    }
    /* Shortest batch first: the workers took turns. */
    for (size_t i = 1; i < N; i++)
        assert_int_not_equal(on[i], on[i - 1]);
    for (size_t i = 0; i < TEST_WORKERS; i++) {
        pool_info(fx->pool, i, &info);
        assert_int_equal(info.batched, TEST_BATCH);
        assert_string_equal(info.state, "busy");
        assert_true(info.job == 1000 || info.job == 1001); /* the gate job it runs */
    }
    /* Every batch is full. */
    assert_int_equal(test_append(fx, 999, "upper", "x", 0, &extra), 0);

    test_gate_set(1);
    assert_true(test_wait(fx, UNTIL_DONE, before + TEST_WORKERS + N));
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(jobs[i].done, 1);
        assert_int_equal(jobs[i].status, 0);
        assert_int_equal(jobs[i].result_len, strlen(out[i]));
        assert_memory_equal(jobs[i].result, out[i], strlen(out[i]));
        /* After the gate job of its worker, and after the job appended there before it. */
        for (size_t k = 0; k < TEST_WORKERS; k++)
            if (on[i] == pids[k])
                assert_true(jobs[i].started_us > held[k].started_us);
        if (i >= TEST_WORKERS)
            assert_true(jobs[i].started_us > jobs[i - TEST_WORKERS].started_us);
    }
    assert_int_equal(extra.done + extra.lost, 0);
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    for (size_t i = 0; i < TEST_WORKERS; i++) {
        pool_info(fx->pool, i, &info);
        done += info.jobs_done;
        assert_int_equal(info.batched, 0);
    }
    assert_int_equal(done, 2 + TEST_WORKERS + N); /* with the two warm-up jobs */
    assert_int_equal(fx->nlost, 0);
}

/*
 * What is never appended: a task not seen run yet, a job with a timeout,
 * anything when no worker is busy, a payload past the batch's room, anything
 * behind a job with a timeout.
 */
static void
test_batch_refuses_what_may_not_wait(void **state)
{
    struct test_fx *fx = *state;
    struct test_job held[TEST_WORKERS], job, big_job;
    pid_t pids[TEST_WORKERS];
    char big[TEST_PAYLOAD_CAP + 1];
    int before;

    assert_int_equal(test_append(fx, 1, "upper", "x", 0, &job), 0); /* never seen run */
    test_warm_up(fx);
    assert_int_equal(test_append(fx, 2, "upper", "x", 0, &job), 0); /* no worker busy */

    test_hold(fx, 1, held, pids);
    before = fx->ndone;
    assert_int_equal(test_append(fx, 3, "upper", "x", 5000, &job), 0); /* a timeout */
    assert_int_equal(test_append(fx, 4, "echo", "x", 0, &job), 0);     /* never seen run */
    /* A payload that fills the payload area fits; after it, not a byte does. */
    memset(big, 'b', TEST_PAYLOAD_CAP);
    big[TEST_PAYLOAD_CAP] = '\0';
    assert_int_equal(test_append(fx, 5, "upper", big, 0, &big_job), pids[0]);
    assert_int_equal(test_append(fx, 6, "upper", "x", 0, &job), 0);
    test_gate_set(1);
    assert_true(test_wait(fx, UNTIL_DONE, before + 2));
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    assert_int_equal(held[0].done, 1);
    assert_int_equal(big_job.done, 1);
    assert_int_equal(big_job.status, FORQ_ERR_TOO_BIG); /* its result is over result_cap */
    assert_int_equal(job.done + job.lost, 0);

    /* A batch whose first job has a timeout takes nothing more. */
    test_gate_set(0);
    __atomic_store_n(test_marks, 0U, __ATOMIC_SEQ_CST);
    memset(&held[0], 0, sizeof(held[0]));
    assert_int_equal(pool_run(fx->pool, 10, test_task(fx, TEST_GATE_TASK), "", 0, 60000, &held[0],
                              &pids[0]),
                     0);
    assert_true(test_wait_marks(1));
    assert_int_equal(test_append(fx, 11, "upper", "x", 0, &job), 0);
    test_gate_set(1);
    assert_true(test_wait(fx, UNTIL_DONE, before + 3));
    assert_int_equal(held[0].done, 1);
    assert_int_equal(fx->nlost, 0);
}

/*
 * pool_kill on a job waiting in a batch: the worker passes it over (it comes
 * back lost, not started) and runs the rest; no worker is killed. pool_kill
 * on the job a worker runs kills that worker: the job comes back started, the
 * jobs behind it not started, to run elsewhere.
 */
static void
test_batch_kill_waiting_and_running(void **state)
{
    struct test_fx *fx = *state;
    struct test_job held[TEST_WORKERS], a, b, c;
    pid_t pids[TEST_WORKERS], pa, pb, pc;
    struct pool_worker_info info;
    size_t kb;

    test_warm_up(fx);
    test_hold(fx, TEST_WORKERS, held, pids);
    pa = test_append(fx, 201, "upper", "a", 0, &a);
    pb = test_append(fx, 202, "upper", "b", 0, &b);
    pc = test_append(fx, 203, "upper", "c", 0, &c);
    assert_true(pa > 0 && pb > 0);
    assert_int_equal(pa, pc); /* a and c wait on one worker, b on the other */
    assert_int_not_equal(pa, pb);
    kb = pb == pids[0] ? 0 : 1;

    assert_int_equal(pool_kill(fx->pool, 201), 0);
    assert_int_equal(pool_kill(fx->pool, 201), 0); /* asked already */
    assert_int_equal(pool_kill(fx->pool, 1000 + kb), 0); /* b's worker runs it */
    assert_true(test_wait(fx, UNTIL_LOST, 2));
    assert_int_equal(held[kb].lost, 1);
    assert_int_equal(held[kb].started, 1);
    assert_int_equal(b.lost, 1);
    assert_int_equal(b.started, 0);
    assert_non_null(strstr(b.why, "killed by signal 9"));

    test_gate_set(1);
    assert_true(test_wait(fx, UNTIL_LOST, 3));
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    assert_int_equal(a.lost, 1);
    assert_int_equal(a.started, 0);
    assert_int_equal(a.done, 0);
    assert_string_equal(a.why, "cancelled before it started");
    assert_int_equal(held[1 - kb].done, 1);
    assert_int_equal(c.done, 1);
    assert_memory_equal(c.result, "C", 1);
    assert_int_equal(pool_kill(fx->pool, 203), FORQ_ERR_NOT_FOUND);
    pool_info(fx->pool, test_slot_of(fx, pa), &info);
    assert_int_equal(info.restarts, 0); /* the passed-over job killed nobody */
}

/*
 * pool_give: a job goes to a busy worker's batch while it has room and the
 * work ahead is cheaper than a wake-up (with this fixture: always), and to
 * the idle worker once that batch is full. A job with a timeout runs alone on
 * the idle worker; after it, with no worker idle and no batch open, nobody
 * takes a job.
 */
static void
test_batch_give_prefers_a_running_batch(void **state)
{
    enum { N = TEST_BATCH + 1 };
    struct test_fx *fx = *state;
    struct test_job held[1], j[N];
    pid_t pids[1], on[N];
    int before;

    test_warm_up(fx);
    test_hold(fx, 1, held, pids);
    before = fx->ndone;
    for (size_t i = 0; i < N; i++) {
        memset(&j[i], 0, sizeof(j[i]));
        on[i] = 0;
        assert_int_equal(pool_give(fx->pool, 400 + i, test_task(fx, "upper"), "g", 1,
                                   i == TEST_BATCH - 1 ? 5000 : 0, &j[i], &on[i]),
                         i < TEST_BATCH ? 0 : FORQ_ERR_LIMIT);
    }
    for (size_t i = 0; i < TEST_BATCH - 1; i++)
        assert_int_equal(on[i], pids[0]); /* behind the gate job, filling its batch */
    assert_true(on[TEST_BATCH - 1] > 0 && on[TEST_BATCH - 1] != pids[0]); /* the idle one */
    assert_int_equal(on[TEST_BATCH], 0);
    assert_int_equal(pool_idle(fx->pool), 0);

    test_gate_set(1);
    assert_true(test_wait(fx, UNTIL_DONE, before + 1 + TEST_BATCH));
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    for (size_t i = 0; i < TEST_BATCH; i++) {
        assert_int_equal(j[i].done, 1);
        assert_int_equal(j[i].status, 0);
        assert_memory_equal(j[i].result, "G", 1);
    }
    assert_int_equal(j[TEST_BATCH].done + j[TEST_BATCH].lost, 0);
    assert_int_equal(fx->nlost, 0);
}

/*
 * A worker starts a job only while a whole result_cap of result room is
 * left: behind 80 + 80 bytes of results, the third job comes back lost, not
 * started, and the two results are whole.
 */
static void
test_batch_result_room(void **state)
{
    struct test_fx *fx = *state;
    struct test_job held[1], j[3];
    pid_t pids[1];
    char in[81];

    test_warm_up(fx);
    test_hold(fx, 1, held, pids);
    memset(in, 'r', 80);
    in[80] = '\0';
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(test_append(fx, 300 + i, "upper", in, 0, &j[i]), pids[0]);
    test_gate_set(1);
    assert_true(test_wait(fx, UNTIL_LOST, 1));
    assert_true(test_wait(fx, UNTIL_ALL_IDLE, 0));
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(j[i].done, 1);
        assert_int_equal(j[i].status, 0);
        assert_int_equal(j[i].result_len, 80);
        for (size_t k = 0; k < 80; k++)
            assert_int_equal(j[i].result[k], 'R');
    }
    assert_int_equal(j[2].done, 0);
    assert_int_equal(j[2].lost, 1);
    assert_int_equal(j[2].started, 0);
    assert_string_equal(j[2].why, "handed back before it started");
}

#define TEST(fn)       cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
#define TESTB(fn)      cmocka_unit_test_setup_teardown(fn, test_setup_batch, test_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_pool_starts_all_workers),
        TEST(test_pool_new_rejects_zero_workers),
        TEST(test_pool_upper_result_and_cookie),
        TEST(test_pool_failing_task_reports_message),
        TEST(test_pool_idle_count_and_limit),
        TEST(test_pool_payload_and_result_caps),
        TEST(test_pool_many_jobs),
        TEST(test_pool_sigkill_busy_worker),
        TEST(test_pool_sigkill_idle_worker),
        TEST(test_pool_job_for_dead_worker_is_lost_unstarted),
        TEST(test_pool_free_stops_busy_workers),
        TEST(test_pool_free_idle),
        TESTB(test_batch_appended_jobs_run_in_order),
        TESTB(test_batch_refuses_what_may_not_wait),
        TESTB(test_batch_kill_waiting_and_running),
        TESTB(test_batch_result_room),
        TESTB(test_batch_give_prefers_a_running_batch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
