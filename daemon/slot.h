/*
 * slot.h — the shared-memory handoff between the event loop and one worker.
 *
 * A slot is mapped MAP_SHARED before the worker forks. It holds a
 * process-shared, robust mutex, a process-shared condition variable, the
 * slot's state, one job's header, and the payload and result buffers. This is
 * multiprocessing.Condition's producer/consumer across two processes:
 *
 *   loop (producer)                       worker (consumer)
 *   write payload + header                lock; while state != ASSIGNED: wait(cv)
 *   lock; state = ASSIGNED; signal; unlock  state = RUNNING; unlock
 *                                         run the task into the result buffer
 *   (eventfd readable)   <-------------   lock; state = DONE; unlock; eventfd += 1
 *   read outcome; lock; state = IDLE; unlock
 *
 * Ownership of the data areas follows the state: in IDLE and DONE only the
 * loop touches them, in ASSIGNED and RUNNING only the worker does. The mutex
 * is held for a few instructions; it is robust, so a worker that dies holding
 * it cannot wedge the loop (slot_lock reports it and the slot is rebuilt).
 */
#ifndef FORQ_SLOT_H
#define FORQ_SLOT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SLOT_ERRMSG_MAX 1024

enum slot_state {
    SLOT_IDLE = 0, /* no job; the worker waits */
    SLOT_ASSIGNED, /* a job is in the slot, not yet picked up */
    SLOT_RUNNING,  /* the worker runs it */
    SLOT_DONE,     /* the outcome is in the slot */
    SLOT_EXIT      /* the worker should exit */
};

struct slot {
    pthread_mutex_t mu; /* process-shared, robust */
    pthread_cond_t cv;  /* process-shared; signalled on ASSIGNED and EXIT */
    uint32_t state;     /* enum slot_state; changed under mu */

    /* Job header: written by the loop before ASSIGNED. */
    uint64_t job_id;
    int32_t task;
    uint32_t payload_len;

    /* Outcome: written by the worker before DONE. */
    int32_t status; /* 0 or FORQ_ERR_* */
    uint32_t result_len;
    char errmsg[SLOT_ERRMSG_MAX];

    uint64_t jobs_done; /* by this worker process */
    uint32_t payload_cap, result_cap;
    /* Then, 64-byte aligned: payload[payload_cap], result[result_cap]. */
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
/* Read the state under the lock (loop side). */
int slot_get_state(struct slot *s, enum slot_state *state);

#endif /* FORQ_SLOT_H */
