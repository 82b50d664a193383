/*
 * metrics.h — forqd's Prometheus metrics: histograms that any thread can
 * feed, the text exposition format (version 0.0.4) built from a STATS
 * snapshot plus those histograms, and a small HTTP listener (libevent's
 * evhttp) that serves it at /metrics.
 *
 * Threads. A histogram is a set of C11 atomics updated and read with relaxed
 * ordering, so whichever thread sees an event observes it without a lock:
 * the loop thread observes job_wait and job_run (jobs start and finish
 * there), the store thread observes store_commit and store_batch (once per
 * transaction). Nothing is published through these counters, so no stronger
 * ordering is needed. A scrape that races an observation may see a bucket a
 * moment ahead of the sum (or behind it); that is acceptable for monitoring.
 * The rendering keeps each histogram self-consistent anyway: +Inf and _count
 * are computed from the buckets it read, never from a separate counter, so
 * cumulative buckets never decrease and +Inf always equals _count.
 * metrics_render may run on any thread; the HTTP listener and its callback
 * run on the loop thread and never block.
 *
 * Ownership. struct metrics is embedded in its owner (no allocation, nothing
 * to free); it must be initialised before any thread observes into it and
 * outlive them all. A struct metrics_http comes from metrics_http_new and
 * goes back through metrics_http_free.
 */
#ifndef FORQ_METRICS_H
#define FORQ_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct event_base;
struct evbuffer;
struct metrics_http;

#define METRICS_HIST_MAX 16 /* most bounds in one histogram */

/*
 * A cumulative histogram in the Prometheus sense, kept per bucket. Values
 * are integers in the histogram's own unit (microseconds, records); the
 * rendering divides them by 10^decimals (6: microseconds shown as seconds).
 */
struct metrics_hist {
    const char *name;       /* family name, e.g. "forq_job_wait_seconds"; static */
    const char *help;       /* one line for # HELP; static */
    const uint64_t *bounds; /* nbounds strictly ascending upper bounds (le, inclusive); static */
    size_t nbounds;         /* 1..METRICS_HIST_MAX */
    unsigned decimals;      /* 0..9: rendered value = value / 10^decimals */
    /* Observations per bucket, not cumulative: [i] holds bounds[i-1] < v <= bounds[i],
     * [nbounds] holds v > bounds[nbounds-1]. The count is their sum. */
    _Atomic uint64_t buckets[METRICS_HIST_MAX + 1];
    _Atomic uint64_t sum; /* of the observed values, in the histogram's unit */
};

/* A consistent-looking copy of a histogram, as the rendering prints it. */
struct metrics_hist_snap {
    uint64_t cumulative[METRICS_HIST_MAX + 1]; /* [i]: observations <= bounds[i];
                                                * [nbounds]: all of them (+Inf) */
    uint64_t count;                            /* == cumulative[nbounds] */
    uint64_t sum;
};

/* forqd's histograms. Which thread observes each is in the comment above. */
struct metrics {
    struct metrics_hist job_wait;     /* µs from queued (runnable) to started in a worker */
    struct metrics_hist job_run;      /* µs from started to finished */
    struct metrics_hist store_commit; /* µs per store transaction, fsync included */
    struct metrics_hist store_batch;  /* records per store transaction */
};

/*
 * Set up h with the given static bounds, all counters zero. Returns 0, or
 * FORQ_ERR_INVALID when nbounds is 0 or over METRICS_HIST_MAX, the bounds
 * do not strictly ascend, or decimals is over 9. Not thread-safe: call it
 * before any thread can observe into h.
 */
int metrics_hist_init(struct metrics_hist *h, const char *name, const char *help,
                      const uint64_t *bounds, size_t nbounds, unsigned decimals);

/*
 * Count one value: a linear search over the bounds plus two relaxed atomic
 * adds; no lock, no allocation. Any thread.
 */
void metrics_hist_observe(struct metrics_hist *h, uint64_t v);

/*
 * Observe to_us - from_us, or 0 when the clock stepped back in between (job
 * times are wall-clock microseconds). Any thread.
 */
void metrics_hist_observe_span(struct metrics_hist *h, uint64_t from_us, uint64_t to_us);

/*
 * Read h into *out with relaxed loads. The cumulative counts never decrease
 * and count is the +Inf bucket, even while other threads observe; sum may
 * be a moment ahead of or behind the buckets. Any thread.
 */
void metrics_hist_read(const struct metrics_hist *h, struct metrics_hist_snap *out);

/* Set up forqd's four histograms, all zero. Cannot fail; no allocation. */
void metrics_init(struct metrics *m);

/*
 * Append the Prometheus text exposition (version 0.0.4) of the snapshot st
 * and the histograms of m to out: every family with # HELP and # TYPE,
 * label values escaped. st is only read (its strings need no NUL). Returns
 * 0, or FORQ_ERR_NOMEM with out unchanged. Any thread; m may be observed
 * into meanwhile.
 */
int metrics_render(const struct metrics *m, const struct msg_stats *st, struct evbuffer *out);

/*
 * Produce the body of one scrape into out: forqd calls jobs_stats and
 * metrics_render here. Returns 0 or a FORQ_ERR_* code (the scrape is then
 * answered 500 and whatever was appended to out is dropped). Runs on the
 * loop thread and must not block.
 */
typedef int (*metrics_fill_fn)(void *arg, struct evbuffer *out);

#define METRICS_HTTP_PATH "/metrics"

/*
 * Listen for HTTP on listen, a "tcp://HOST:PORT" address (port 0: the kernel
 * picks one), on base. GET or HEAD /metrics is answered 200 with the body
 * fill(arg, ...) produces, as text/plain; version=0.0.4; other paths get
 * 404, other methods on /metrics get 405 with "Allow: GET, HEAD", a failed
 * fill gets 500. Request headers and bodies are capped small, an idle or
 * slow connection is closed after a timeout, and the listening and accepted
 * sockets are close-on-exec (forqd forks and execs).
 *
 * A host name is resolved here, which may block: call it during start-up,
 * before the loop runs. Returns 0 with *out, or FORQ_ERR_INVALID (a bad or
 * unix:// address, an unknown host), FORQ_ERR_SYSTEM (socket, bind or
 * listen failed; errno) or FORQ_ERR_NOMEM, with a readable reason in
 * why[whylen]. arg is borrowed and must outlive the listener. Loop thread.
 */
int metrics_http_new(struct event_base *base, const char *listen, metrics_fill_fn fill, void *arg,
                     struct metrics_http **out, char *why, size_t whylen);

/* The URL scrapers reach, with the real port: "http://127.0.0.1:40123/metrics". */
const char *metrics_http_name(const struct metrics_http *mh);

/*
 * Close the listener and its connections; NULL is a no-op. Call it once the
 * loop no longer runs (at shutdown, before event_base_free): a pause after
 * an accept error may still hold a pending retry that refers to the
 * listener.
 */
void metrics_http_free(struct metrics_http *mh);

#endif /* FORQ_METRICS_H */
