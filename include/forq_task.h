/*
 * forq_task.h — the task ABI of forqd.
 *
 * A task is a function that runs inside a forqd worker process: it reads the
 * job's payload and writes its result straight into the worker's shared-memory
 * slot (no copy on the way back). The built-in tasks use this ABI, and task
 * plugins (shared objects loaded by forqd before it forks its workers) export
 * their tables through it.
 *
 * A plugin exports one function, named FORQ_PLUGIN_SYMBOL and declared below
 * (with default visibility, so -fvisibility=hidden builds export it too):
 *
 *     const struct forq_plugin *forq_plugin_register(void);
 *
 * forqd dlopen()s every plugin listed in its config (`plugin = PATH`), calls
 * the function once, in the daemon before any worker forks, and refuses to
 * start when abi_version is not the FORQ_TASK_ABI_VERSION it was built with,
 * or when a task name is invalid or taken. The tables must stay valid for the
 * life of the process (plugins are never unloaded). examples/plugin builds one.
 *
 * Rules for a task function:
 *  - It runs in a worker process, one job at a time; it may block, allocate
 *    and use the CPU as it likes. The worker is recycled or killed by forqd
 *    (timeouts, cancel), so a task should not rely on running to completion.
 *  - On success it returns 0 with io->result_len bytes in io->result.
 *  - On failure it returns a negative FORQ_ERR_* code (normally
 *    FORQ_ERR_TASK_FAILED) with a NUL-terminated message in io->errmsg.
 *  - It never writes beyond io->result_cap or io->errmsg_cap.
 */
#ifndef FORQ_TASK_H
#define FORQ_TASK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "forq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on any change to the structs below or to the rules of a task. */
#define FORQ_TASK_ABI_VERSION 1

struct forq_task_io {
    const void *payload;  /* the job's bytes; read-only */
    size_t payload_len;
    void *result;         /* write the result here ... */
    size_t result_cap;    /* ... at most this many bytes ... */
    size_t result_len;    /* ... and say how many (0 on entry) */
    char *errmsg;         /* failure message, NUL-terminated */
    size_t errmsg_cap;
    uint64_t job_id;      /* the job being run */
    void *ctx;            /* the ctx of the task's forq_task_def */
};

typedef int (*forq_task_fn)(struct forq_task_io *io);

struct forq_task_def {
    const char *name; /* [A-Za-z0-9_.:-], at most FORQ_NAME_MAX bytes */
    forq_task_fn fn;
    void *ctx;        /* handed to fn as io->ctx; may be NULL */
};

/* What a plugin's registration function returns. */
struct forq_plugin {
    uint32_t abi_version;              /* FORQ_TASK_ABI_VERSION; first, so it can always be read */
    const char *name;                  /* for forqd's log */
    const struct forq_task_def *tasks; /* ntasks entries */
    size_t ntasks;
};

#define FORQ_PLUGIN_SYMBOL "forq_plugin_register"
typedef const struct forq_plugin *(*forq_plugin_register_fn)(void);

/*
 * Defined by each plugin, called once by forqd. The answer (and the task
 * names, functions and ctx it points to) must stay valid for the life of the
 * process; returning NULL refuses to load.
 */
FORQ_API const struct forq_plugin *forq_plugin_register(void);

/* Set the result to len bytes of data. FORQ_ERR_TOO_BIG if over result_cap. */
static inline int
forq_task_set_result(struct forq_task_io *io, const void *data, size_t len)
{
    if (len > io->result_cap) {
        snprintf(io->errmsg, io->errmsg_cap, "result of %zu bytes exceeds the limit of %zu", len,
                 io->result_cap);
        return FORQ_ERR_TOO_BIG;
    }
    if (len > 0)
        memcpy(io->result, data, len);
    io->result_len = len;
    return 0;
}

/* Record a failure message (printf-style) and return FORQ_ERR_TASK_FAILED. */
static inline int forq_task_fail(struct forq_task_io *io, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int
forq_task_fail(struct forq_task_io *io, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(io->errmsg, io->errmsg_cap, fmt, ap);
    va_end(ap);
    return FORQ_ERR_TASK_FAILED;
}

#ifdef __cplusplus
}
#endif

#endif /* FORQ_TASK_H */
