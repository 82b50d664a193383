/*
 * job.c — allocation and outcome bookkeeping of a job (loop thread).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forq.h"
#include "heap.h"
#include "job.h"
#include "msg.h"

struct job *
job_new(const void *payload, size_t payload_len, const char *unique_key, size_t key_len)
{
    size_t size = sizeof(struct job) + payload_len;
    struct job *job;

    if (key_len > 0)
        size += key_len + 1;
    if ((job = malloc(size)) == NULL)
        return NULL;
    memset(job, 0, sizeof(*job));
    job->state = FORQ_STATE_QUEUED;
    job->heap_pos = HEAP_NONE;
    job->delay_pos = HEAP_NONE;
    LIST_INIT(&job->waiters);
    job->payload_len = payload_len;
    if (payload_len > 0)
        memcpy(job->payload, payload, payload_len);
    if (key_len > 0) {
        job->unique_key = (char *)job->payload + payload_len;
        memcpy(job->unique_key, unique_key, key_len);
        job->unique_key[key_len] = '\0';
    }
    return job;
}

void
job_free(struct job *job)
{
    if (job == NULL)
        return;
    free(job->result);
    free(job->err_msg);
    free(job);
}

struct job *
job_shrink(struct job *job)
{
    size_t keylen = job->unique_key != NULL ? strlen(job->unique_key) + 1 : 0;
    struct job *j;

    if (job->payload_len == 0)
        return job;
    if (keylen > 0) {
        memmove(job->payload, job->unique_key, keylen);
        job->unique_key = (char *)job->payload;
    }
    job->payload_len = 0;
    if ((j = realloc(job, sizeof(*job) + keylen)) == NULL)
        return job;
    if (j->unique_key != NULL)
        j->unique_key = (char *)j->payload;
    return j;
}

int
job_set_result(struct job *job, const void *data, size_t len)
{
    uint8_t *p;

    /* malloc(0) may return NULL; keep a real pointer for "empty result". */
    if ((p = malloc(len ? len : 1)) == NULL)
        return FORQ_ERR_NOMEM;
    if (len > 0)
        memcpy(p, data, len);
    free(job->result);
    job->result = p;
    job->result_len = len;
    return 0;
}

void
job_set_error(struct job *job, int code, const char *msg)
{
    free(job->err_msg);
    job->err_code = code;
    /* On ENOMEM the code still tells what happened. */
    if ((job->err_msg = strdup(msg ? msg : forq_strerror(code))) != NULL)
        msg_utf8_scrub(job->err_msg); /* tasks may say anything; the wire carries UTF-8 */
}

void
job_clear_error(struct job *job)
{
    free(job->err_msg);
    job->err_msg = NULL;
    job->err_code = 0;
}

uint64_t
job_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
