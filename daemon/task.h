/*
 * task.h — the table of tasks forqd can run, and the built-in tasks.
 *
 * The table is built at start-up, before the workers fork, so a task's index
 * means the same thing in the loop and in every worker: jobs carry the index,
 * not the name. Built-ins:
 *   echo   the payload, unchanged
 *   upper  the payload with ASCII letters upper-cased
 *   sleep  sleeps for the payload's milliseconds (decimal text, 0..3600000)
 *   fib    fib(n) for the payload's n (decimal text, 0..50), computed
 *          recursively so that it is CPU-bound; result as decimal text
 *   fail   always fails; the payload is the error message
 *   alloc  allocates and touches the payload's MiB of memory (decimal text,
 *          0..1048576), frees it and answers "ok"; fails with memory_limit
 *          when the allocation is refused (the worker's RLIMIT_AS)
 * Plugin tasks (plugin.h) and exec tasks (exec.h) are added by
 * task_table_build. Only a reload changes the table (task_table_rebuild),
 * on the loop thread, and only in ways that keep every index meaning the
 * task of the same name; workers forked before it keep their own copy.
 */
#ifndef FORQ_TASK_H_INTERNAL
#define FORQ_TASK_H_INTERNAL

#include <stddef.h>

#include "config.h"
#include "forq_task.h"

#define TASK_MAX 1024

struct task_table {
    struct forq_task_def defs[TASK_MAX]; /* fn NULL: removed by a reload (task_table_rebuild) */
    void (*ctx_free[TASK_MAX])(void *ctx); /* frees defs[i].ctx at task_table_fini; or NULL */
    char *name_copy[TASK_MAX]; /* owned name of a removed task, freed at task_table_fini */
    size_t ntasks;
};

/* Fill the table with the built-in tasks. */
void task_table_init(struct task_table *t);

/*
 * Add a task; name and ctx must outlive the table. Returns 0,
 * FORQ_ERR_INVALID (bad name, or the name is taken) or FORQ_ERR_LIMIT (table
 * full).
 */
int task_table_add(struct task_table *t, const char *name, forq_task_fn fn);
int task_table_add_ctx(struct task_table *t, const char *name, forq_task_fn fn, void *ctx);
/* The same, and the table owns ctx: ctx_free(ctx) at task_table_fini. */
int task_table_add_owned(struct task_table *t, const char *name, forq_task_fn fn, void *ctx,
                         void (*ctx_free)(void *ctx));
/* Free the contexts the table owns (the table itself is the caller's). */
void task_table_fini(struct task_table *t);

/*
 * The whole table forqd runs with: the built-ins, then every plugin (in
 * order), then the exec tasks. Returns 0, or FORQ_ERR_INVALID / FORQ_ERR_LIMIT /
 * FORQ_ERR_NOMEM with a one-line reason naming the plugin or task in why.
 * The config must outlive the table (names and argv are borrowed).
 */
int task_table_build(struct task_table *t, const struct config *cfg, char *why, size_t whylen);

/*
 * A reload: make t the table cfg declares, keeping every name t has at its
 * index (jobs carry indexes). A name cfg no longer declares stays as a
 * removed entry: task_find skips it and running it fails with unknown_task,
 * so a queued job of a removed task fails clearly instead of running
 * another one. New names are appended. Returns 0, or as task_table_build
 * (plus FORQ_ERR_LIMIT when removed and new names overflow the table), with
 * t unchanged. The config must outlive the table, as for task_table_build.
 */
int task_table_rebuild(struct task_table *t, const struct config *cfg, char *why, size_t whylen);

/* Index of the task called name (len bytes), or -1 (removed tasks too). */
int task_find(const struct task_table *t, const char *name, size_t len);

/* 1 when task idx was removed by a reload (or idx is out of range). */
int task_removed(const struct task_table *t, int idx);

/* Name of task idx; "?" when out of range. */
const char *task_name(const struct task_table *t, int idx);

/*
 * Run task idx on io (worker process); io->ctx is set from the table. Returns the task's status: 0 or a
 * negative FORQ_ERR_* with io->errmsg set; a task returning anything else is
 * reported as FORQ_ERR_TASK_FAILED.
 */
int task_run(const struct task_table *t, int idx, struct forq_task_io *io);

#endif /* FORQ_TASK_H_INTERNAL */
