/*
 * delay.h — jobs waiting for their time: delayed jobs (delay_ms) and jobs
 * waiting to be retried (backoff), driven by one timer on the loop.
 *
 * The jobs sit in a min-heap keyed by (run_at_us, seq); the loop's timer is
 * armed for the head only, so nothing polls, and each job costs O(log n) to
 * add, remove (cancel) or fire. run_at_us is wall-clock time, so it means the
 * same after a restart (a time that passed while forqd was down fires at
 * once). Jobs are borrowed, never freed. Loop thread only.
 */
#ifndef FORQ_DELAY_H
#define FORQ_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"

struct event;
struct event_base;
struct job;

/* A job's time has come; it has left the schedule. */
typedef void (*delay_fire_fn)(void *arg, struct job *job);

struct delay {
    struct heap jobs;    /* by (run_at_us, seq) */
    struct event *timer; /* armed for the head's time */
    delay_fire_fn fire;
    void *arg;
};

/* 0 or FORQ_ERR_NOMEM. */
int delay_init(struct delay *s, struct event_base *base, delay_fire_fn fire, void *arg);
/* Free the heap and the timer (not the jobs). */
void delay_fini(struct delay *s);

/* Schedule job for job->run_at_us. 0 or FORQ_ERR_NOMEM (nothing changed). */
int delay_add(struct delay *s, struct job *job);
/* Take a scheduled job out (cancel). No-op when it is not scheduled. */
void delay_remove(struct delay *s, struct job *job);
/* Jobs waiting. */
size_t delay_len(const struct delay *s);

#endif /* FORQ_DELAY_H */
