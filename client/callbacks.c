/*
 * callbacks.c — a client's callback thread (see callbacks.h).
 *
 * Ownership. An item (future + fn + arg) is made by callbacks_add, which
 * takes a reference to the future, and handed to the thread through the
 * `adds` list; the thread owns it from then on and frees it after its
 * callback ran. The thread holds a reference to the client for its whole
 * life and drops it as its very last action, so the state here (freed with
 * the client's last reference) outlives the thread even when the thread was
 * detached (a callback that closed its own client).
 *
 * Locks. cbs->mu guards adds and stopping only; no callback runs under it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callbacks.h"
#include "client.h"
#include "waitset.h"

#define CALLBACKS_BACKOFF_MIN_MS 50
#define CALLBACKS_BACKOFF_MAX_MS 1000

struct callbacks_item {
    struct callbacks_item *next;
    forq_future *f; /* holds a reference */
    forq_done_fn fn;
    void *arg;
};

struct callbacks {
    forq_client *c; /* the thread's reference */
    pthread_mutex_t mu;
    pthread_t thread;
    struct callbacks_item *adds; /* under mu: added, not yet watched */
    int stopping;                /* under mu */
    struct waitset ws;           /* the thread's (waitset_wake from anywhere) */
    struct callbacks_item **by_idx; /* the thread's: waitset index -> item */
    size_t by_cap;
};

/* Run an item's callback and free it. */
static void
callbacks_run(struct callbacks_item *it)
{
    it->fn(it->f, it->arg);
    forq_future_free(it->f);
    free(it);
}

/* Room in by_idx for any index the waitset may hand out on its next add. */
static int
callbacks_reserve(struct callbacks *cbs)
{
    size_t cap = cbs->ws.cap ? cbs->ws.cap * 2 : 64;
    struct callbacks_item **p;

    if (cbs->by_cap >= cap)
        return 0;
    if ((p = realloc(cbs->by_idx, cap * sizeof(*p))) == NULL)
        return FORQ_ERR_NOMEM;
    memset(p + cbs->by_cap, 0, (cap - cbs->by_cap) * sizeof(*p));
    cbs->by_idx = p;
    cbs->by_cap = cap;
    return 0;
}

/*
 * Move what was added into the waitset. An item that cannot be kept (no
 * memory) runs at once, its future not done: it is never dropped.
 */
static void
callbacks_take_adds(struct callbacks *cbs, struct callbacks_item *list)
{
    struct callbacks_item *it;
    size_t idx;

    while ((it = list) != NULL) {
        list = it->next;
        it->next = NULL;
        if (callbacks_reserve(cbs) != 0 || waitset_add(&cbs->ws, it->f, &idx) != 0) {
            callbacks_run(it);
            continue;
        }
        cbs->by_idx[idx] = it;
    }
}

/* Run the callback of entry idx (reported by the waitset) and forget the entry. */
static void
callbacks_run_idx(struct callbacks *cbs, size_t idx)
{
    struct callbacks_item *it = cbs->by_idx[idx];

    cbs->by_idx[idx] = NULL;
    waitset_remove(&cbs->ws, idx);
    if (it != NULL)
        callbacks_run(it);
}

/*
 * Run every callback still waiting (stop, or a permanent error): first those
 * whose jobs are done, then the others, their futures not done. The ready
 * ring is emptied first, so no index in it outlives its entry.
 */
static void
callbacks_run_pending(struct callbacks *cbs)
{
    size_t idx;

    while (waitset_pop_ready(&cbs->ws, &idx))
        callbacks_run_idx(cbs, idx);
    for (size_t i = 0; i < cbs->by_cap; i++) {
        if (cbs->by_idx[i] != NULL) {
            struct callbacks_item *it = cbs->by_idx[i];

            cbs->by_idx[i] = NULL;
            waitset_remove(&cbs->ws, i);
            callbacks_run(it);
        }
    }
}

/* Is a waitset error worth retrying (a lost connection, a limit, memory)? */
static int
callbacks_transient(int r)
{
    return r == FORQ_ERR_DISCONNECTED || r == FORQ_ERR_NOMEM || r == FORQ_ERR_LIMIT ||
           r == FORQ_ERR_TIMEOUT || r == FORQ_ERR_SHUTDOWN || r == FORQ_ERR_SYSTEM;
}

static void
callbacks_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The thread stops: every callback still pending runs once, its future not done. */
static void
callbacks_drain(struct callbacks *cbs)
{
    struct callbacks_item *list;

    pthread_mutex_lock(&cbs->mu);
    list = cbs->adds;
    cbs->adds = NULL;
    pthread_mutex_unlock(&cbs->mu);
    callbacks_take_adds(cbs, list);
    callbacks_run_pending(cbs);
}

static void *
callbacks_main(void *arg)
{
    struct callbacks *cbs = arg;
    forq_client *c = cbs->c;
    struct callbacks_item *list;
    int64_t backoff = CALLBACKS_BACKOFF_MIN_MS;
    size_t idx;
    int stop, r;

    for (;;) {
        pthread_mutex_lock(&cbs->mu);
        list = cbs->adds;
        cbs->adds = NULL;
        stop = cbs->stopping;
        pthread_mutex_unlock(&cbs->mu);
        callbacks_take_adds(cbs, list);
        if (stop)
            break;
        r = waitset_next(&cbs->ws, -1, &idx);
        if (r == 0) {
            callbacks_run_idx(cbs, idx);
            backoff = CALLBACKS_BACKOFF_MIN_MS;
        } else if (r == FORQ_ERR_INVALID) {
            break; /* the client is closed */
        } else if (r != WAITSET_WOKEN && !callbacks_transient(r)) {
            /* The server refuses to watch (too old, a bad frame...): retrying won't help. */
            callbacks_run_pending(cbs);
        } else if (r != WAITSET_WOKEN) {
            /* Lost connection (or no memory): watch again a little later. */
            callbacks_sleep_ms(backoff);
            backoff = backoff * 2 > CALLBACKS_BACKOFF_MAX_MS ? CALLBACKS_BACKOFF_MAX_MS
                                                               : backoff * 2;
        }
    }
    pthread_mutex_lock(&cbs->mu);
    cbs->stopping = 1; /* no more adds */
    pthread_mutex_unlock(&cbs->mu);
    callbacks_drain(cbs);
    client_unref(c); /* may free cbs: touch nothing after this */
    return NULL;
}

int
callbacks_new(forq_client *c, struct callbacks **out)
{
    struct callbacks *cbs;
    sigset_t all, old;
    int r;

    *out = NULL;
    if ((cbs = calloc(1, sizeof(*cbs))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    if ((r = waitset_init(&cbs->ws)) != 0) {
        free(cbs);
        return r;
    }
    cbs->ws.idle_wait = 1;
    pthread_mutex_init(&cbs->mu, NULL);
    cbs->c = c;
    client_ref(c);
    /* Signals go to the application's threads, not this one. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&cbs->thread, NULL, callbacks_main, cbs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        client_unref(c);
        waitset_fini(&cbs->ws);
        pthread_mutex_destroy(&cbs->mu);
        free(cbs);
        return client_seterr(FORQ_ERR_SYSTEM, "cannot start the callback thread: %s",
                             strerror(r));
    }
    *out = cbs;
    return 0;
}

int
callbacks_add(struct callbacks *cbs, forq_future *f, forq_done_fn fn, void *arg)
{
    struct callbacks_item *it;
    int stopping;

    if ((it = calloc(1, sizeof(*it))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    future_ref(f);
    it->f = f;
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&cbs->mu);
    if (!(stopping = cbs->stopping)) {
        it->next = cbs->adds;
        cbs->adds = it;
    }
    pthread_mutex_unlock(&cbs->mu);
    if (stopping) {
        forq_future_free(f);
        free(it);
        return client_seterr(FORQ_ERR_INVALID, "the client is closed");
    }
    /* Without memory for the wake-up, the item waits for the next one. */
    (void)waitset_wake(&cbs->ws);
    return 0;
}

void
callbacks_stop(struct callbacks *cbs)
{
    pthread_mutex_lock(&cbs->mu);
    cbs->stopping = 1;
    pthread_mutex_unlock(&cbs->mu);
    (void)waitset_wake(&cbs->ws);
    if (pthread_equal(pthread_self(), cbs->thread)) {
        pthread_detach(cbs->thread);
        return;
    }
    pthread_join(cbs->thread, NULL);
}

void
callbacks_free(struct callbacks *cbs)
{
    if (cbs == NULL)
        return;
    waitset_fini(&cbs->ws);
    pthread_mutex_destroy(&cbs->mu);
    free(cbs->by_idx);
    free(cbs);
}
