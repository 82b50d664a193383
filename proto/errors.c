/*
 * errors.c — names and descriptions of forq's status codes and job states.
 *
 * Shared by forqd and libforq (exported from libforq). Constant tables only.
 */
#include <string.h>

#include "forq.h"

struct errors_entry {
    const char *name;
    const char *text;
};

/* Indexed by -code. */
static const struct errors_entry errors_table[] = {
    [0] = {"ok", "success"},
    [-FORQ_ERR_SYSTEM] = {"system", "system error"},
    [-FORQ_ERR_NOMEM] = {"nomem", "out of memory"},
    [-FORQ_ERR_INVALID] = {"invalid", "invalid argument"},
    [-FORQ_ERR_PROTOCOL] = {"protocol", "malformed frame"},
    [-FORQ_ERR_TOO_BIG] = {"too_big", "over the size limit"},
    [-FORQ_ERR_BAD_REQUEST] = {"bad_request", "bad request"},
    [-FORQ_ERR_UNKNOWN_OP] = {"unknown_op", "unknown operation"},
    [-FORQ_ERR_UNKNOWN_TASK] = {"unknown_task", "unknown task"},
    [-FORQ_ERR_NOT_FOUND] = {"not_found", "no such job"},
    [-FORQ_ERR_QUEUE_FULL] = {"queue_full", "queue is full"},
    [-FORQ_ERR_TIMEOUT] = {"timeout", "timed out"},
    [-FORQ_ERR_CANCELLED] = {"cancelled", "job was cancelled"},
    [-FORQ_ERR_TASK_FAILED] = {"task_failed", "task failed"},
    [-FORQ_ERR_WORKER_LOST] = {"worker_lost", "worker died while running the job"},
    [-FORQ_ERR_DISCONNECTED] = {"disconnected", "connection to forqd lost"},
    [-FORQ_ERR_AUTH] = {"auth", "authentication failed"},
    [-FORQ_ERR_STORAGE] = {"storage", "job store failed"},
    [-FORQ_ERR_STATE] = {"state", "not allowed in the job's current state"},
    [-FORQ_ERR_SHUTDOWN] = {"shutdown", "server is shutting down"},
    [-FORQ_ERR_VERSION] = {"version", "protocol version not supported"},
    [-FORQ_ERR_LIMIT] = {"limit", "server limit reached"},
    [-FORQ_ERR_JOB_TIMEOUT] = {"job_timeout", "job exceeded its timeout"},
    [-FORQ_ERR_MEMORY_LIMIT] = {"memory_limit", "job exceeded the worker memory limit"},
    [-FORQ_ERR_CONNECT] = {"connect", "cannot connect to forqd"},
};

static const char *const errors_states[FORQ_STATE__COUNT] = {
    [FORQ_STATE_SCHEDULED] = "scheduled", [FORQ_STATE_QUEUED] = "queued",
    [FORQ_STATE_RUNNING] = "running",     [FORQ_STATE_SUCCEEDED] = "succeeded",
    [FORQ_STATE_FAILED] = "failed",       [FORQ_STATE_CANCELLED] = "cancelled",
};

static const struct errors_entry *
errors_lookup(int code)
{
    if (code > 0 || code < FORQ_ERR__LAST)
        return NULL;
    return &errors_table[-code];
}

const char *
forq_errname(int code)
{
    const struct errors_entry *e = errors_lookup(code);

    return e ? e->name : "unknown";
}

const char *
forq_strerror(int code)
{
    const struct errors_entry *e = errors_lookup(code);

    return e ? e->text : "unknown error";
}

const char *
forq_state_name(int state)
{
    if (state < 0 || state >= FORQ_STATE__COUNT)
        return "unknown";
    return errors_states[state];
}

int
forq_state_parse(const char *name, size_t len)
{
    int i;

    for (i = 0; i < FORQ_STATE__COUNT; i++)
        if (strlen(errors_states[i]) == len && memcmp(errors_states[i], name, len) == 0)
            return i;
    return -1;
}

int
forq_state_is_final(int state)
{
    return state == FORQ_STATE_SUCCEEDED || state == FORQ_STATE_FAILED ||
           state == FORQ_STATE_CANCELLED;
}
