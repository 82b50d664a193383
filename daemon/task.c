/*
 * task.c — the task table and the built-in tasks (tasks run in workers).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "msg.h"
#include "plugin.h"
#include "task.h"

/*
 * Parse the whole payload as a decimal number in [0, max]. Returns 0 or
 * FORQ_ERR_TASK_FAILED with a message.
 */
static int
task_parse_uint(struct forq_task_io *io, uint64_t max, uint64_t *out)
{
    const char *p = io->payload;
    size_t n = io->payload_len;
    uint64_t v = 0;

    /* Tolerate one trailing newline: `echo 25 | forq submit fib -` sends it. */
    if (n > 0 && p[n - 1] == '\n')
        n--;
    if (n == 0 || n > 20)
        return forq_task_fail(io, "expected a decimal number in 0..%" PRIu64, max);
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return forq_task_fail(io, "expected a decimal number in 0..%" PRIu64, max);
        if (v > (UINT64_MAX - 9) / 10)
            return forq_task_fail(io, "number out of range 0..%" PRIu64, max);
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > max)
        return forq_task_fail(io, "number out of range 0..%" PRIu64, max);
    *out = v;
    return 0;
}

static int
task_echo(struct forq_task_io *io)
{
    return forq_task_set_result(io, io->payload, io->payload_len);
}

static int
task_upper(struct forq_task_io *io)
{
    const unsigned char *in = io->payload;
    unsigned char *out = io->result;

    if (io->payload_len > io->result_cap)
        return forq_task_set_result(io, in, io->payload_len); /* reports too_big */
    for (size_t i = 0; i < io->payload_len; i++)
        out[i] = in[i] >= 'a' && in[i] <= 'z' ? in[i] - ('a' - 'A') : in[i];
    io->result_len = io->payload_len;
    return 0;
}

static int
task_sleep(struct forq_task_io *io)
{
    struct timespec ts;
    uint64_t ms;
    int e;

    if ((e = task_parse_uint(io, 3600000, &ms)) != 0)
        return e;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

static uint64_t
task_fib_rec(uint64_t n)
{
    return n < 2 ? n : task_fib_rec(n - 1) + task_fib_rec(n - 2);
}

static int
task_fib(struct forq_task_io *io)
{
    char buf[24];
    uint64_t n;
    int e, len;

    if ((e = task_parse_uint(io, 50, &n)) != 0)
        return e;
    len = snprintf(buf, sizeof(buf), "%" PRIu64, task_fib_rec(n));
    return forq_task_set_result(io, buf, (size_t)len);
}

static int
task_fail(struct forq_task_io *io)
{
    size_t n = io->payload_len;

    if (io->errmsg_cap == 0)
        return FORQ_ERR_TASK_FAILED;
    if (n == 0)
        return forq_task_fail(io, "failed on request");
    if (n >= io->errmsg_cap)
        n = io->errmsg_cap - 1;
    memcpy(io->errmsg, io->payload, n);
    io->errmsg[n] = '\0';
    return FORQ_ERR_TASK_FAILED;
}

/*
 * Allocate the payload's MiB and write every byte, so that the pages are
 * really there, then free them: a way to see the workers' memory_limit work.
 */
static int
task_alloc(struct forq_task_io *io)
{
    uint64_t mib;
    size_t n;
    void *p;
    int e;

    if ((e = task_parse_uint(io, 1048576, &mib)) != 0)
        return e;
    n = (size_t)mib << 20;
    if (n > 0) {
        if ((p = malloc(n)) == NULL) {
            snprintf(io->errmsg, io->errmsg_cap,
                     "cannot allocate %" PRIu64 " MiB: the worker's memory limit (memory_limit) "
                     "or the system refused",
                     mib);
            return FORQ_ERR_MEMORY_LIMIT;
        }
        memset(p, 0x5a, n);
        /* Stop the compiler from proving the block unused and dropping malloc and all. */
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    return forq_task_set_result(io, "ok", 2);
}

int
task_table_add_ctx(struct task_table *t, const char *name, forq_task_fn fn, void *ctx)
{
    size_t n = strlen(name);

    if (!msg_name_valid(name, n) || fn == NULL || task_find(t, name, n) >= 0)
        return FORQ_ERR_INVALID;
    if (t->ntasks >= TASK_MAX)
        return FORQ_ERR_LIMIT;
    t->defs[t->ntasks].name = name;
    t->defs[t->ntasks].fn = fn;
    t->defs[t->ntasks].ctx = ctx;
    t->ctx_free[t->ntasks] = NULL;
    t->ntasks++;
    return 0;
}

int
task_table_add_owned(struct task_table *t, const char *name, forq_task_fn fn, void *ctx,
                     void (*ctx_free)(void *ctx))
{
    int e = task_table_add_ctx(t, name, fn, ctx);

    if (e == 0)
        t->ctx_free[t->ntasks - 1] = ctx_free;
    return e;
}

void
task_table_fini(struct task_table *t)
{
    for (size_t i = 0; i < t->ntasks; i++) {
        if (t->ctx_free[i] != NULL)
            t->ctx_free[i](t->defs[i].ctx);
        t->ctx_free[i] = NULL;
        free(t->name_copy[i]);
        t->name_copy[i] = NULL;
    }
    t->ntasks = 0;
}

/* Move entry j of from into entry i of to (to takes over its context). */
static void
task_table_move(struct task_table *to, size_t i, struct task_table *from, size_t j)
{
    to->defs[i] = from->defs[j];
    to->ctx_free[i] = from->ctx_free[j];
    from->ctx_free[j] = NULL;
}

/*
 * Fill merged (zeroed) from t's names and next's definitions, as
 * task_table_rebuild describes; taken marks the entries of next used.
 */
static int
task_table_merge(struct task_table *merged, const struct task_table *t, struct task_table *next,
                 unsigned char *taken)
{
    for (size_t i = 0; i < t->ntasks; i++) {
        const char *name = t->defs[i].name;
        int j = task_find(next, name, strlen(name));

        merged->ntasks = i + 1;
        if (j >= 0) {
            task_table_move(merged, i, next, (size_t)j);
            taken[j] = 1;
        } else if ((merged->name_copy[i] = strdup(name)) == NULL) {
            return FORQ_ERR_NOMEM;
        } else {
            merged->defs[i] = (struct forq_task_def){merged->name_copy[i], NULL, NULL};
        }
    }
    for (size_t j = 0; j < next->ntasks; j++) {
        if (taken[j])
            continue;
        if (merged->ntasks == TASK_MAX)
            return FORQ_ERR_LIMIT;
        task_table_move(merged, merged->ntasks++, next, j);
    }
    return 0;
}

int
task_table_rebuild(struct task_table *t, const struct config *cfg, char *why, size_t whylen)
{
    struct task_table *next = malloc(sizeof(*next)), *merged = calloc(1, sizeof(*merged));
    unsigned char *taken = calloc(TASK_MAX, 1);
    int e = FORQ_ERR_NOMEM;

    if (next == NULL || merged == NULL || taken == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if ((e = task_table_build(next, cfg, why, whylen)) != 0)
        goto out;
    if ((e = task_table_merge(merged, t, next, taken)) != 0) {
        if (e == FORQ_ERR_LIMIT)
            snprintf(why, whylen, "more than %d tasks, counting removed ones", TASK_MAX);
        else
            snprintf(why, whylen, "out of memory");
        goto out;
    }
    task_table_fini(t);
    memcpy(t, merged, sizeof(*t));
    merged->ntasks = 0; /* t owns it all now */
out:
    if (merged != NULL)
        task_table_fini(merged);
    if (next != NULL)
        task_table_fini(next);
    free(next);
    free(merged);
    free(taken);
    return e;
}

int
task_table_add(struct task_table *t, const char *name, forq_task_fn fn)
{
    return task_table_add_ctx(t, name, fn, NULL);
}

int
task_table_build(struct task_table *t, const struct config *cfg, char *why, size_t whylen)
{
    int e;

    task_table_init(t);
    for (size_t i = 0; i < cfg->nplugins; i++)
        if ((e = plugin_load(t, cfg->plugins[i], why, whylen)) != 0)
            return e;
    for (size_t i = 0; i < cfg->ntasks; i++)
        if ((e = exec_task_add(t, &cfg->tasks[i], cfg->max_result, why, whylen)) != 0)
            return e;
    return 0;
}

void
task_table_init(struct task_table *t)
{
    memset(t, 0, sizeof(*t));
    (void)task_table_add(t, "echo", task_echo);
    (void)task_table_add(t, "upper", task_upper);
    (void)task_table_add(t, "sleep", task_sleep);
    (void)task_table_add(t, "fib", task_fib);
    (void)task_table_add(t, "fail", task_fail);
    (void)task_table_add(t, "alloc", task_alloc);
}

int
task_find(const struct task_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->ntasks; i++)
        if (t->defs[i].fn != NULL && strlen(t->defs[i].name) == len &&
            memcmp(t->defs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int
task_removed(const struct task_table *t, int idx)
{
    return idx < 0 || (size_t)idx >= t->ntasks || t->defs[idx].fn == NULL;
}

const char *
task_name(const struct task_table *t, int idx)
{
    if (idx < 0 || (size_t)idx >= t->ntasks)
        return "?";
    return t->defs[idx].name;
}

int
task_run(const struct task_table *t, int idx, struct forq_task_io *io)
{
    int r;

    io->result_len = 0;
    if (io->errmsg_cap == 0)
        return FORQ_ERR_INVALID; /* no room even for the message saying why */
    io->errmsg[0] = '\0';
    if (idx < 0 || (size_t)idx >= t->ntasks)
        return forq_task_fail(io, "no task with index %d", idx);
    if (t->defs[idx].fn == NULL) {
        snprintf(io->errmsg, io->errmsg_cap, "task '%s' was removed by a reload",
                 t->defs[idx].name);
        return FORQ_ERR_UNKNOWN_TASK;
    }
    io->ctx = t->defs[idx].ctx;
    r = t->defs[idx].fn(io);
    if (r > 0 || r < FORQ_ERR__LAST)
        r = FORQ_ERR_TASK_FAILED;
    if (r != 0 && io->errmsg[0] == '\0')
        snprintf(io->errmsg, io->errmsg_cap, "%s", forq_strerror(r));
    if (r == 0 && io->result_len > io->result_cap)
        return forq_task_fail(io, "task reported %zu bytes of result, over the limit of %zu",
                              io->result_len, io->result_cap);
    return r;
}
