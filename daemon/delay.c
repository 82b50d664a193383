/*
 * delay.c — the schedule of delayed and backing-off jobs (loop thread).
 */
#include <event2/event.h>

#include "forq.h"
#include "job.h"
#include "delay.h"

static int
delay_less(const void *a, const void *b)
{
    const struct job *x = a, *y = b;

    if (x->run_at_us != y->run_at_us)
        return x->run_at_us < y->run_at_us;
    return x->seq < y->seq;
}

static void
delay_pos(void *item, size_t pos)
{
    ((struct job *)item)->delay_pos = pos;
}

/* Arm the timer for the head's time (or disarm it when nothing waits). */
static void
delay_arm(struct delay *s)
{
    const struct job *head = heap_peek(&s->jobs);
    uint64_t now, wait_us;
    struct timeval tv;

    if (head == NULL) {
        event_del(s->timer);
        return;
    }
    now = job_now_us();
    wait_us = head->run_at_us > now ? head->run_at_us - now : 0;
    tv.tv_sec = (time_t)(wait_us / 1000000);
    tv.tv_usec = (suseconds_t)(wait_us % 1000000);
    event_add(s->timer, &tv); /* re-adding replaces the previous timeout */
}

static void
delay_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct delay *s = arg;
    uint64_t now = job_now_us();
    struct job *job;

    (void)fd;
    (void)what;
    while ((job = heap_peek(&s->jobs)) != NULL && job->run_at_us <= now) {
        (void)heap_pop(&s->jobs);
        s->fire(s->arg, job); /* may add jobs: the loop re-reads the head */
    }
    delay_arm(s);
}

int
delay_init(struct delay *s, struct event_base *base, delay_fire_fn fire, void *arg)
{
    heap_init(&s->jobs, delay_less, delay_pos);
    s->fire = fire;
    s->arg = arg;
    if ((s->timer = evtimer_new(base, delay_timer_cb, s)) == NULL)
        return FORQ_ERR_NOMEM;
    return 0;
}

void
delay_fini(struct delay *s)
{
    heap_fini(&s->jobs);
    if (s->timer != NULL)
        event_free(s->timer);
    s->timer = NULL;
}

int
delay_add(struct delay *s, struct job *job)
{
    int e;

    if ((e = heap_push(&s->jobs, job)) != 0)
        return e;
    if (job->delay_pos == 0) /* the new head: the timer must fire sooner */
        delay_arm(s);
    return 0;
}

void
delay_remove(struct delay *s, struct job *job)
{
    int was_head = job->delay_pos == 0;

    if (job->delay_pos == HEAP_NONE)
        return;
    heap_remove(&s->jobs, job->delay_pos);
    if (was_head)
        delay_arm(s);
}

size_t
delay_len(const struct delay *s)
{
    return heap_len(&s->jobs);
}
