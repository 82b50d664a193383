/*
 * queue.h — named job queues and the order in which jobs leave them.
 *
 * Each queue keeps its queued jobs in a min-heap keyed by (priority, arrival):
 * the lowest priority number first, FIFO among equals (Python's
 * PriorityQueue, beanstalkd). Across queues the next job is the one with the
 * lowest (priority, arrival) among the queues' heads: the set keeps a second
 * heap of non-empty queues keyed by their head job, so enqueue, dequeue and
 * removal from the middle (cancel) are O(log n + log q).
 *
 * Queues are created on first use, up to a limit, and live as long as the
 * set. Jobs are borrowed: the set never frees them. Loop thread only.
 */
#ifndef FORQ_QUEUE_H
#define FORQ_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "forq.h"
#include "heap.h"
#include "idmap.h"

struct job;

struct queue {
    char name[FORQ_NAME_MAX + 1];
    uint64_t hash;           /* idmap_hash_bytes(name) */
    struct queue *hash_next; /* next queue whose name has the same hash */
    struct heap jobs;        /* queued jobs by (priority, seq) */
    size_t ready_pos;        /* position in the set's ready heap, or HEAP_NONE */

    uint64_t running; /* jobs of this queue in workers now */
    uint64_t storing; /* submitted, waiting for the store to commit them */
    uint64_t submitted, succeeded, failed, cancelled;
};

struct queue_set {
    struct idmap by_hash;  /* name hash -> first queue with that hash */
    struct queue **all;    /* in creation order, for stats */
    size_t nqueues, cap;
    size_t max_queues;     /* queue_get refuses to create more */
    struct heap ready;     /* non-empty queues by their head job */
    uint64_t queued;       /* jobs queued in all queues */
};

void queue_set_init(struct queue_set *set, size_t max_queues);
/* Free the queues (not the jobs still in them). */
void queue_set_fini(struct queue_set *set);

/*
 * Find the queue called name (len bytes, a valid name). When it does not exist
 * and create is set, create it. Returns 0 with *out, FORQ_ERR_NOT_FOUND,
 * FORQ_ERR_LIMIT (max_queues reached) or FORQ_ERR_NOMEM.
 */
int queue_get(struct queue_set *set, const char *name, size_t len, int create,
              struct queue **out);

/* Number of jobs queued in q. */
size_t queue_len(const struct queue *q);

/* Queue job in job->queue. 0 or FORQ_ERR_NOMEM (nothing changed). */
int queue_push(struct queue_set *set, struct job *job);

/* Remove and return the globally next job, or NULL when nothing is queued. */
struct job *queue_pop(struct queue_set *set);

/* Remove a queued job from wherever it is in its queue (cancel). */
void queue_remove(struct queue_set *set, struct job *job);

#endif /* FORQ_QUEUE_H */
