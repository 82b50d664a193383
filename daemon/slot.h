/*
 * slot.h — the shared-memory handoff between the event loop and one worker.
 *
 * A slot is mapped MAP_SHARED before the worker forks. It holds a
 * process-shared, robust mutex, a process-shared condition variable, the
 * slot's state, a batch of up to SLOT_BATCH_MAX job headers, and the payload
 * and result areas. This is multiprocessing.Condition's producer/consumer
 * across two processes:
 *
 *   loop (producer)                         worker (consumer)
 *   write payload + jobs[0]; lock; n = 1    lock; while state != ASSIGNED: wait(cv)
 *   state = ASSIGNED; unlock; signal        state = RUNNING
 *                                           while next < n:
 *   (while not DONE: write payload +            i = next++; unlock
 *    jobs[n]; lock; n++; unlock)                run job i into the result area
 *                                               lock; done = i + 1
 *                                           state = DONE; unlock; eventfd += 1
 *   (eventfd readable) read every outcome; lock; state = IDLE; unlock
 *
 * One job is handed over with one wake-up of the worker. While the worker is
 * busy the loop may append more jobs to its batch (pool_append): the worker
 * takes them without sleeping, and the loop reads all their outcomes on one
 * wake-up. Appending stops once the worker has said DONE.
 *
 * Ownership follows the counters, all changed under mu: the loop owns
 * jobs[i] (and its payload) until i < n, the worker owns jobs[i]'s outcome
 * from i < next until i < done, and in IDLE and DONE only the loop touches
 * anything. jobs[i].skip may be set by the loop under mu while i >= next: the
 * worker then passes the job over (a cancel before it started).
 *
 * Payloads are packed one after another in the payload area. The result area
 * is 2 * result_cap bytes: each result goes after the previous one, and the
 * worker starts a job only while a whole result_cap is left; the jobs it did
 * not start are left in [next, n) for the loop to take back.
 *
 * The mutex is held for a few instructions; it is robust, so a worker that
 * dies holding it cannot wedge the loop (slot_lock reports it and the slot is
 * rebuilt).
 */
#ifndef FORQ_SLOT_H
#define FORQ_SLOT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SLOT_ERRMSG_MAX 1024
#define SLOT_BATCH_MAX  16 /* jobs in one batch */

enum slot_state {
    SLOT_IDLE = 0, /* no job; the worker waits */
    SLOT_ASSIGNED, /* a batch is in the slot, not yet picked up */
    SLOT_RUNNING,  /* the worker runs its jobs */
    SLOT_DONE,     /* the worker is through the batch: the outcomes are in the slot */
    SLOT_EXIT      /* the worker should exit */
};

struct slot_job {
    /* Written by the loop before it counts the job in n. */
    uint64_t job_id;
    int32_t task;
    uint32_t payload_off, payload_len;
    uint32_t skip; /* set by the loop under mu while the job is not taken: do not run it */

    /* Written by the worker before it counts the job in done. */
    int32_t status; /* 0 or FORQ_ERR_* */
    uint32_t result_off, result_len;
    uint32_t run_us;     /* how long the task ran */
    uint64_t started_us; /* when it started, wall clock; later than the worker's previous job */
    char errmsg[SLOT_ERRMSG_MAX];
};

struct slot {
    pthread_mutex_t mu; /* process-shared, robust */
    pthread_cond_t cv;  /* process-shared; signalled on ASSIGNED and EXIT */
    uint32_t state;     /* enum slot_state; changed under mu */
    uint32_t n;         /* jobs in the batch (loop, under mu) */
    uint32_t next;      /* jobs the worker has taken (worker, under mu) */
    uint32_t done;      /* jobs whose outcome is written (worker, under mu) */

    uint64_t jobs_done; /* by this worker process */
    uint32_t payload_cap, result_cap;
    struct slot_job jobs[SLOT_BATCH_MAX];
    /* Then, 64-byte aligned: payload[payload_cap], result[2 * result_cap]. */
};

/* Bytes to map for a slot with these buffer sizes. */
size_t slot_size(size_t payload_cap, size_t result_cap);

/*
 * Initialise (or re-initialise, after its worker died) the slot in a shared
 * mapping: mutex and condition variable process-shared, state IDLE. Nobody
 * may be using it. Returns 0 or FORQ_ERR_SYSTEM.
 */
int slot_init(struct slot *s, size_t payload_cap, size_t result_cap);

static inline uint8_t *
slot_payload(struct slot *s)
{
    return (uint8_t *)s + ((sizeof(*s) + 63) & ~(size_t)63);
}

static inline uint8_t *
slot_result(struct slot *s)
{
    return slot_payload(s) + ((s->payload_cap + 63) & ~(size_t)63);
}

/*
 * Lock the slot. Sets *owner_died when the previous holder died with the lock
 * held: the mutex is made consistent and is held by the caller, but the
 * slot's contents are suspect. Returns 0 or FORQ_ERR_SYSTEM.
 */
int slot_lock(struct slot *s, int *owner_died);
void slot_unlock(struct slot *s);

/* Set the state under the lock and wake the worker (loop side). */
int slot_set_state(struct slot *s, enum slot_state state);

/*
 * Loop side, on an IDLE slot whose jobs[0] and payload the loop has written:
 * start a batch of that one job (n = 1, state ASSIGNED) and wake the worker.
 * Returns 0, FORQ_ERR_WORKER_LOST (the worker died holding the lock; the
 * batch is in the slot all the same) or FORQ_ERR_SYSTEM.
 */
int slot_assign(struct slot *s);

/*
 * Loop side: count jobs[n], which the loop has written, into the running
 * batch. Returns 0, or FORQ_ERR_LIMIT when the worker is through the batch
 * already (or it is full, or the worker died holding the lock): the job is
 * not in the batch.
 */
int slot_append(struct slot *s);

/* The batch's counters, read under the lock (loop side). */
struct slot_counts {
    enum slot_state state;
    uint32_t n, next, done;
};
int slot_get_counts(struct slot *s, struct slot_counts *out);

/*
 * Loop side: keep the worker from starting jobs[i]. Returns 0 (it will pass
 * it over), 1 (the worker is running it now), FORQ_ERR_STATE (its outcome is
 * written already), or FORQ_ERR_SYSTEM / FORQ_ERR_WORKER_LOST when the lock
 * cannot be had cleanly.
 */
int slot_skip(struct slot *s, uint32_t i);

#endif /* FORQ_SLOT_H */
