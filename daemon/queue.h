/*
 * queue.h — named job queues and the order in which jobs leave them.
 *
 * Each queue keeps its queued jobs in a min-heap keyed by (priority, arrival):
 * the lowest priority number first, FIFO among equals (Python's
 * PriorityQueue, beanstalkd), or newest first among equals for a LIFO queue
 * (LifoQueue). Across queues the next job is the one with the lowest
 * (priority, arrival) among the heads of the queues that may start a job:
 * the set keeps a second heap of those queues keyed by their head job, so
 * enqueue, dequeue and removal from the middle (cancel) are O(log n + log q).
 *
 * A queue may start a job when it has one, is not paused, and runs fewer
 * jobs than its limit (a Semaphore(k); 0 = no limit). queue_started and
 * queue_stopped keep the running count, so a queue at its limit leaves the
 * ready heap and comes back the moment one of its jobs ends.
 *
 * Queues are created on first use, up to a limit, and live as long as the
 * set. Jobs are borrowed: the set never frees them. Loop thread only.
 */
#ifndef FORQ_QUEUE_H
#define FORQ_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "forq.h"
#include "heap.h"
#include "idmap.h"

struct job;
struct jobs_waiter;

struct queue {
    char name[FORQ_NAME_MAX + 1];
    uint64_t hash;           /* idmap_hash_bytes(name) */
    struct queue *hash_next; /* next queue whose name has the same hash */
    struct heap jobs;        /* queued jobs by (priority, seq) */
    size_t ready_pos;        /* position in the set's ready heap, or HEAP_NONE */

    uint64_t running; /* jobs of this queue in workers now */
    uint64_t storing; /* submitted, waiting for the store to commit them */
    uint64_t scheduled; /* waiting for their delay or their next attempt */
    uint64_t submitted, succeeded, failed, cancelled, retried;
    uint32_t limit;   /* jobs of this queue running at once; 0 = no limit */
    uint8_t paused;   /* start none of its jobs */
    uint8_t lifo;     /* newest first within a priority */
    LIST_HEAD(, jobs_waiter) joiners; /* JOINs waiting for it to drain (jobs.c's) */
    TAILQ_HEAD(, jobs_waiter) putters; /* SUBMITs waiting for room, oldest first (jobs.c's) */
    size_t nputters;
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
/* The job queue_pop would return, left in place; NULL when nothing is queued. */
struct job *queue_peek(const struct queue_set *set);

/* Remove a queued job from wherever it is in its queue (cancel). */
void queue_remove(struct queue_set *set, struct job *job);

/* A job of q went to a worker / came back from one. */
void queue_started(struct queue_set *set, struct queue *q);
void queue_stopped(struct queue_set *set, struct queue *q);

/* Pause or resume q. */
void queue_pause(struct queue_set *set, struct queue *q, int paused);
/* Set q's concurrency limit (0: none). */
void queue_set_limit(struct queue_set *set, struct queue *q, uint32_t limit);
/*
 * Make q FIFO (lifo 0) or LIFO within a priority; its queued jobs are
 * reordered. 0 or FORQ_ERR_NOMEM (q unchanged).
 */
int queue_set_order(struct queue_set *set, struct queue *q, int lifo);

/* Jobs of q not finished yet: being stored, scheduled, queued or running. */
uint64_t queue_unfinished(const struct queue *q);

#endif /* FORQ_QUEUE_H */
