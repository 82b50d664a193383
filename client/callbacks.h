/*
 * callbacks.h — the callback thread of a client (internal): runs the
 * callbacks of forq_future_add_done_callback() for futures that were not
 * done when they were added.
 *
 * One thread per client, started by the first such callback. It keeps every
 * pending future in a waitset (so they are watched with WATCH, in batches),
 * runs each callback as its job finishes, and after a lost connection waits
 * a little and watches again. When the client is closed it stops, and runs
 * the callbacks still pending once, with their futures not done.
 */
#ifndef FORQ_CLIENT_CALLBACKS_H
#define FORQ_CLIENT_CALLBACKS_H

#include "forq.h"

struct callbacks;

/* Start the thread for c. Returns 0 with *out, FORQ_ERR_NOMEM, FORQ_ERR_SYSTEM. */
int callbacks_new(forq_client *c, struct callbacks **out);

/*
 * Call fn(f, arg) once f's job finishes (the thread takes a reference to f).
 * Returns 0, or FORQ_ERR_INVALID when the thread is stopping (the client is
 * closed), FORQ_ERR_NOMEM.
 */
int callbacks_add(struct callbacks *cbs, forq_future *f, forq_done_fn fn, void *arg);

/*
 * Stop the thread (the client is closed): it runs what is pending and exits.
 * Waits for it, unless called from a callback (on the thread itself).
 */
void callbacks_stop(struct callbacks *cbs);

/* Free the state once the thread has let go of it (from the client's last reference). */
void callbacks_free(struct callbacks *cbs);

#endif /* FORQ_CLIENT_CALLBACKS_H */
