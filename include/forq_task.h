/*
 * forq_task.h — the task ABI of forqd.
 *
 * A task is a function that runs inside a forqd worker process: it reads the
 * job's payload and writes its result straight into the worker's shared-memory
 * slot (no copy on the way back). The built-in tasks use this ABI, and task
 * plugins (shared objects loaded by forqd before it forks its workers) will
 * export their tables through it.
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
#include <stdio.h>
#include <string.h>

#include "forq.h"

#define FORQ_TASK_ABI_VERSION 1

struct forq_task_io {
    const void *payload;  /* the job's bytes; read-only */
    size_t payload_len;
    void *result;         /* write the result here ... */
    size_t result_cap;    /* ... at most this many bytes ... */
    size_t result_len;    /* ... and say how many (0 on entry) */
    char *errmsg;         /* failure message, NUL-terminated */
    size_t errmsg_cap;
};

typedef int (*forq_task_fn)(struct forq_task_io *io);

struct forq_task_def {
    const char *name; /* [A-Za-z0-9_.:-], at most FORQ_NAME_MAX bytes */
    forq_task_fn fn;
};

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

#endif /* FORQ_TASK_H */
