/*
 * waitset.h — waiting for many futures at once (internal).
 *
 * A waitset holds futures (borrowed) and reports each as it becomes done.
 * Futures whose outcome is unknown are watched with WATCH requests (one per
 * client per MSG_WATCH_MAX ids) posted to the waitset's inbox, so every
 * completion arrives as it happens with its result and settles the future;
 * no request is made per future. It is the engine of forq_wait,
 * forq_as_completed, forq_map and the callback thread.
 *
 * One thread uses a waitset at a time, except waitset_wake(), which any
 * thread may call.
 */
#ifndef FORQ_CLIENT_WAITSET_H
#define FORQ_CLIENT_WAITSET_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "forq.h"
#include "msg.h"

struct waitset_entry;
struct waitset_stream;

struct waitset {
    struct conn_inbox ib;
    struct msg_decoder dec;
    struct waitset_entry *e; /* entries; free ones chained from free_head */
    size_t cap;              /* entries allocated */
    uint32_t free_head;
    uint32_t *buckets; /* id hash -> first entry index + 1 (0: none) */
    size_t nbuckets;
    size_t unarmed; /* pending entries no open WATCH covers */
    uint32_t *ready; /* entries done and not reported yet: a ring, as big as e */
    size_t ready_head, ready_len, ready_cap;
    struct waitset_stream **streams; /* open WATCHes (each allocated: the calls are linked in conn tables) */
    size_t nstreams, streams_cap;
    uint64_t next_tag;
    int idle_wait; /* set by the owner: with nothing to report, wait for a wake-up */
};

/* What waitset_next() returns besides 0 and the FORQ_ERR_* codes. */
#define WAITSET_WOKEN 1 /* waitset_wake() was called */
#define WAITSET_EMPTY 2 /* nothing left to report (never with idle_wait set) */

int waitset_init(struct waitset *ws);
/* Stop watching (UNWATCH what is open) and free everything; futures are untouched. */
void waitset_fini(struct waitset *ws);

/*
 * Add a future (borrowed until it is removed or the waitset freed). A future
 * already done is ready at once. Returns 0 with *idx, or FORQ_ERR_NOMEM.
 * Until something is removed, entries get the indices 0, 1, 2... in order.
 */
int waitset_add(struct waitset *ws, forq_future *f, size_t *idx);
/* Forget an entry (its index may be reused). */
void waitset_remove(struct waitset *ws, size_t idx);
forq_future *waitset_future(const struct waitset *ws, size_t idx);
/*
 * 1 if the entry ended badly: its job failed (not cancelled), or the server
 * could not report on it (its error is then in forq_errmsg() of the thread
 * that called waitset_next).
 */
int waitset_failed(const struct waitset *ws, size_t idx);

/*
 * Report the next entry that has become done, in the order they did: 0 with
 * *idx. Waits until deadline (monotonic ms; < 0: no limit), watching what is
 * not watched yet (which reconnects a lost connection). The server is given
 * the time left, so that it reports every job already finished before it
 * answers `timeout` (a deadline already past still polls the server once);
 * locally the wait gives up CLIENT_WAIT_GRACE_MS after the deadline. Returns also
 * WAITSET_EMPTY, WAITSET_WOKEN, FORQ_ERR_TIMEOUT, FORQ_ERR_DISCONNECTED (the
 * next call watches again), FORQ_ERR_INVALID (a client is closed),
 * FORQ_ERR_PROTOCOL, FORQ_ERR_NOMEM.
 */
int waitset_next(struct waitset *ws, int64_t deadline, size_t *idx);

/* Take an entry that is done and not reported yet, without waiting: 1 with *idx, or 0. */
int waitset_pop_ready(struct waitset *ws, size_t *idx);

/* Make a waitset_next() in progress (or the next one) return WAITSET_WOKEN. */
int waitset_wake(struct waitset *ws);

#endif /* FORQ_CLIENT_WAITSET_H */
