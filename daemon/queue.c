/*
 * queue.c — per-queue heaps of jobs and the heap of queue heads (loop thread).
 */
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "queue.h"

static int
queue_job_less(const void *a, const void *b)
{
    const struct job *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority < y->priority;
    return x->seq < y->seq;
}

static int
queue_job_less_lifo(const void *a, const void *b)
{
    const struct job *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority < y->priority;
    return x->seq > y->seq;
}

static void
queue_job_pos(void *item, size_t pos)
{
    ((struct job *)item)->heap_pos = pos;
}

/* Queues compare by their head jobs; only non-empty queues are in the heap. */
static int
queue_head_less(const void *a, const void *b)
{
    const struct queue *x = a, *y = b;

    return queue_job_less(heap_peek(&x->jobs), heap_peek(&y->jobs));
}

static void
queue_head_pos(void *item, size_t pos)
{
    ((struct queue *)item)->ready_pos = pos;
}

void
queue_set_init(struct queue_set *set, size_t max_queues)
{
    memset(set, 0, sizeof(*set));
    idmap_init(&set->by_hash);
    heap_init(&set->ready, queue_head_less, queue_head_pos);
    set->max_queues = max_queues;
}

void
queue_set_fini(struct queue_set *set)
{
    for (size_t i = 0; i < set->nqueues; i++) {
        heap_fini(&set->all[i]->jobs);
        free(set->all[i]);
    }
    free(set->all);
    heap_fini(&set->ready);
    idmap_fini(&set->by_hash);
    memset(set, 0, sizeof(*set));
}

static int
queue_add(struct queue_set *set, const char *name, size_t len, uint64_t hash, struct queue **out)
{
    struct queue *q, *first;
    int e;

    if (set->nqueues == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        struct queue **all = realloc(set->all, cap * sizeof(*all));

        if (all == NULL)
            return FORQ_ERR_NOMEM;
        set->all = all;
        set->cap = cap;
    }
    /* Room in the ready heap for every queue: repositioning can then never fail. */
    if (heap_reserve(&set->ready, set->nqueues + 1) != 0)
        return FORQ_ERR_NOMEM;
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return FORQ_ERR_NOMEM;
    memcpy(q->name, name, len);
    q->hash = hash;
    q->ready_pos = HEAP_NONE;
    LIST_INIT(&q->joiners);
    TAILQ_INIT(&q->putters);
    heap_init(&q->jobs, queue_job_less, queue_job_pos);
    first = idmap_get(&set->by_hash, hash);
    q->hash_next = first;
    if ((e = idmap_put(&set->by_hash, hash, q)) != 0) {
        free(q);
        return e;
    }
    set->all[set->nqueues++] = q;
    *out = q;
    return 0;
}

int
queue_get(struct queue_set *set, const char *name, size_t len, int create, struct queue **out)
{
    uint64_t hash = idmap_hash_bytes(name, len);
    struct queue *q;

    *out = NULL;
    if (len == 0 || len > FORQ_NAME_MAX)
        return FORQ_ERR_INVALID;
    for (q = idmap_get(&set->by_hash, hash); q != NULL; q = q->hash_next) {
        if (strlen(q->name) == len && memcmp(q->name, name, len) == 0) {
            *out = q;
            return 0;
        }
    }
    if (!create)
        return FORQ_ERR_NOT_FOUND;
    if (set->nqueues >= set->max_queues)
        return FORQ_ERR_LIMIT;
    return queue_add(set, name, len, hash, out);
}

size_t
queue_len(const struct queue *q)
{
    return heap_len(&q->jobs);
}

/* 1 when q may start its head job now. */
static int
queue_runnable(const struct queue *q)
{
    return heap_len(&q->jobs) > 0 && !q->paused && (q->limit == 0 || q->running < q->limit);
}

/*
 * Put q where it belongs in the ready heap after its head, its running count
 * or its settings changed. Only adding q to the heap can fail (ENOMEM).
 */
static int
queue_reposition(struct queue_set *set, struct queue *q)
{
    if (!queue_runnable(q)) {
        if (q->ready_pos != HEAP_NONE)
            heap_remove(&set->ready, q->ready_pos);
        return 0;
    }
    if (q->ready_pos == HEAP_NONE)
        return heap_push(&set->ready, q);
    heap_update(&set->ready, q->ready_pos);
    return 0;
}

int
queue_push(struct queue_set *set, struct job *job)
{
    struct queue *q = job->queue;
    int e;

    if ((e = heap_push(&q->jobs, job)) != 0)
        return e;
    if ((e = queue_reposition(set, q)) != 0) {
        heap_remove(&q->jobs, job->heap_pos);
        return e;
    }
    set->queued++;
    return 0;
}

struct job *
queue_pop(struct queue_set *set)
{
    struct queue *q = heap_peek(&set->ready);
    struct job *job;

    if (q == NULL)
        return NULL;
    job = heap_pop(&q->jobs);
    /* Shrinking or emptying a queue never allocates, so this cannot fail. */
    (void)queue_reposition(set, q);
    set->queued--;
    return job;
}

struct job *
queue_peek(const struct queue_set *set)
{
    struct queue *q = heap_peek(&set->ready);

    return q == NULL ? NULL : heap_peek(&q->jobs);
}

void
queue_remove(struct queue_set *set, struct job *job)
{
    struct queue *q = job->queue;

    if (job->heap_pos == HEAP_NONE)
        return;
    heap_remove(&q->jobs, job->heap_pos);
    (void)queue_reposition(set, q);
    set->queued--;
}

/* The ready heap has room for every queue (queue_add): this cannot fail. */
static void
queue_refresh(struct queue_set *set, struct queue *q)
{
    (void)queue_reposition(set, q);
}

void
queue_started(struct queue_set *set, struct queue *q)
{
    q->running++;
    queue_refresh(set, q);
}

void
queue_stopped(struct queue_set *set, struct queue *q)
{
    q->running--;
    queue_refresh(set, q);
}

void
queue_pause(struct queue_set *set, struct queue *q, int paused)
{
    q->paused = paused != 0;
    queue_refresh(set, q);
}

void
queue_set_limit(struct queue_set *set, struct queue *q, uint32_t limit)
{
    q->limit = limit;
    queue_refresh(set, q);
}

int
queue_set_order(struct queue_set *set, struct queue *q, int lifo)
{
    struct heap h;
    struct job *job;
    size_t n = heap_len(&q->jobs);

    if ((lifo != 0) == q->lifo)
        return 0;
    /* Rebuild the heap under the new order: reserve first, so nothing can fail halfway. */
    heap_init(&h, lifo ? queue_job_less_lifo : queue_job_less, queue_job_pos);
    if (n > 0 && heap_reserve(&h, n) != 0)
        return FORQ_ERR_NOMEM;
    while ((job = heap_pop(&q->jobs)) != NULL)
        (void)heap_push(&h, job);
    heap_fini(&q->jobs);
    q->jobs = h;
    q->lifo = lifo != 0;
    queue_refresh(set, q);
    return 0;
}

uint64_t
queue_unfinished(const struct queue *q)
{
    return q->storing + q->scheduled + heap_len(&q->jobs) + q->running;
}
