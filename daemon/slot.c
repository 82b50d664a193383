/*
 * slot.c — set-up and locking of a worker slot (both sides of the fork).
 */
#include <errno.h>
#include <string.h>

#include "forq.h"
#include "slot.h"

size_t
slot_size(size_t payload_cap, size_t result_cap)
{
    size_t hdr = (sizeof(struct slot) + 63) & ~(size_t)63;

    return hdr + ((payload_cap + 63) & ~(size_t)63) + 2 * result_cap;
}

int
slot_init(struct slot *s, size_t payload_cap, size_t result_cap)
{
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    int e = 0;

    memset(s, 0, sizeof(*s));
    s->payload_cap = (uint32_t)payload_cap;
    s->result_cap = (uint32_t)result_cap;
    if (pthread_mutexattr_init(&ma) != 0)
        return FORQ_ERR_SYSTEM;
    if ((e = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) != 0 ||
        (e = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) != 0 ||
        (e = pthread_mutex_init(&s->mu, &ma)) != 0) {
        pthread_mutexattr_destroy(&ma);
        errno = e;
        return FORQ_ERR_SYSTEM;
    }
    pthread_mutexattr_destroy(&ma);
    if (pthread_condattr_init(&ca) != 0)
        return FORQ_ERR_SYSTEM;
    if ((e = pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED)) != 0 ||
        (e = pthread_cond_init(&s->cv, &ca)) != 0) {
        pthread_condattr_destroy(&ca);
        errno = e;
        return FORQ_ERR_SYSTEM;
    }
    pthread_condattr_destroy(&ca);
    s->state = SLOT_IDLE;
    return 0;
}

int
slot_lock(struct slot *s, int *owner_died)
{
    int e;

    *owner_died = 0;
    e = pthread_mutex_lock(&s->mu);
    if (e == EOWNERDEAD) {
        *owner_died = 1;
        e = pthread_mutex_consistent(&s->mu);
    }
    if (e != 0) {
        errno = e;
        return FORQ_ERR_SYSTEM;
    }
    return 0;
}

void
slot_unlock(struct slot *s)
{
    pthread_mutex_unlock(&s->mu);
}

int
slot_set_state(struct slot *s, enum slot_state state)
{
    int died, e;

    if ((e = slot_lock(s, &died)) != 0)
        return e;
    s->state = state;
    slot_unlock(s);
    /*
     * Only these two states are waited for; a signal nobody needs costs a
     * syscall. It is sent after the unlock: a worker woken while the loop
     * still held the mutex would block on it at once and need a second
     * futex wake-up from the unlock (the waiter re-checks the state under
     * the mutex, so the signal may come after it).
     */
    if (state == SLOT_ASSIGNED || state == SLOT_EXIT)
        pthread_cond_signal(&s->cv);
    return died ? FORQ_ERR_WORKER_LOST : 0;
}

int
slot_assign(struct slot *s)
{
    int died, e;

    if ((e = slot_lock(s, &died)) != 0)
        return e;
    s->n = 1;
    s->next = s->done = 0;
    s->state = SLOT_ASSIGNED;
    slot_unlock(s);
    pthread_cond_signal(&s->cv); /* after the unlock: see slot_set_state */
    return died ? FORQ_ERR_WORKER_LOST : 0;
}

int
slot_append(struct slot *s)
{
    int died, e;

    if ((e = slot_lock(s, &died)) != 0)
        return FORQ_ERR_LIMIT;
    e = FORQ_ERR_LIMIT;
    if (!died && (s->state == SLOT_ASSIGNED || s->state == SLOT_RUNNING) && s->n < SLOT_BATCH_MAX) {
        s->n++;
        e = 0; /* the worker, awake, looks at n before it says DONE: no signal */
    }
    slot_unlock(s);
    return e;
}

int
slot_get_counts(struct slot *s, struct slot_counts *out)
{
    int died, e;

    if ((e = slot_lock(s, &died)) != 0)
        return e;
    out->state = (enum slot_state)s->state;
    out->n = s->n;
    out->next = s->next;
    out->done = s->done;
    slot_unlock(s);
    return died ? FORQ_ERR_WORKER_LOST : 0;
}

int
slot_skip(struct slot *s, uint32_t i)
{
    int died, e;

    if ((e = slot_lock(s, &died)) != 0)
        return e;
    if (i >= s->next) {
        s->jobs[i].skip = 1;
        e = 0;
    } else {
        e = i < s->done ? FORQ_ERR_STATE : 1;
    }
    slot_unlock(s);
    return died ? FORQ_ERR_WORKER_LOST : e;
}
