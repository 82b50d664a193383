/*
 * metrics.c — Prometheus metrics (see metrics.h): lock-free histograms fed by
 * the loop and store threads, the text exposition of a STATS snapshot, and
 * the evhttp listener that serves it. The listener runs on the loop thread;
 * the histograms are observed from any thread with relaxed atomics.
 *
 * Numbers are printed from integers only: counters as integers, seconds as
 * exact decimals of microseconds ("0.0005", "60"), so nothing depends on how
 * a double happens to round.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "addr.h"
#include "forq.h"
#include "log.h"
#include "metrics.h"

/* ------------------------------------------------------------------ histograms */

/* Bounds in microseconds (store_batch: records), each table in ascending order. */

/* Queue wait, 0.5 ms .. 60 s: from an idle pool to a real backlog. */
static const uint64_t metrics_job_wait_bounds[] = {
    500,    1000,   2500,   5000,    10000,   25000,    50000,
    100000, 250000, 500000, 1000000, 5000000, 15000000, 60000000,
};

/* Run time, 1 ms .. 300 s: from quick tasks to batch jobs. */
static const uint64_t metrics_job_run_bounds[] = {
    1000,    5000,    10000,   25000,    50000,    100000,   250000,    500000,
    1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 300000000,
};

/* Commit time, 0.1 ms .. 10 s: from no fsync to a struggling disk. */
static const uint64_t metrics_store_commit_bounds[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 10000000,
};

/* Records per group commit, powers of two. */
static const uint64_t metrics_store_batch_bounds[] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
};

#define METRICS_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const uint64_t metrics_pow10[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

int
metrics_hist_init(struct metrics_hist *h, const char *name, const char *help,
                  const uint64_t *bounds, size_t nbounds, unsigned decimals)
{
    if (nbounds == 0 || nbounds > METRICS_HIST_MAX || decimals >= METRICS_NELEM(metrics_pow10))
        return FORQ_ERR_INVALID;
    for (size_t i = 1; i < nbounds; i++)
        if (bounds[i] <= bounds[i - 1])
            return FORQ_ERR_INVALID;
    h->name = name;
    h->help = help;
    h->bounds = bounds;
    h->nbounds = nbounds;
    h->decimals = decimals;
    for (size_t i = 0; i <= METRICS_HIST_MAX; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum, 0);
    return 0;
}

void
metrics_hist_observe(struct metrics_hist *h, uint64_t v)
{
    size_t i = 0;

    /* At most 16 bounds: a linear scan beats a binary search's branches. */
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void
metrics_hist_observe_span(struct metrics_hist *h, uint64_t from_us, uint64_t to_us)
{
    metrics_hist_observe(h, to_us > from_us ? to_us - from_us : 0);
}

void
metrics_hist_read(const struct metrics_hist *h, struct metrics_hist_snap *out)
{
    uint64_t total = 0;

    memset(out, 0, sizeof(*out));
    /* Each bucket is read once and summed here, so the cumulative series
     * cannot decrease and +Inf is exactly the count, whatever races. */
    for (size_t i = 0; i <= h->nbounds; i++) {
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        out->cumulative[i] = total;
    }
    out->count = total;
    out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

void
metrics_init(struct metrics *m)
{
    /* The tables above are valid by construction; a failure here is a typo in them. */
    if (metrics_hist_init(&m->job_wait, "forq_job_wait_seconds",
                          "Time jobs waited from runnable to started in a worker.",
                          metrics_job_wait_bounds, METRICS_NELEM(metrics_job_wait_bounds),
                          6) != 0 ||
        metrics_hist_init(&m->job_run, "forq_job_run_seconds",
                          "Time jobs ran in a worker, from start to finish.",
                          metrics_job_run_bounds, METRICS_NELEM(metrics_job_run_bounds), 6) != 0 ||
        metrics_hist_init(&m->store_commit, "forq_store_commit_seconds",
                          "Time per store transaction, fsync included.",
                          metrics_store_commit_bounds, METRICS_NELEM(metrics_store_commit_bounds),
                          6) != 0 ||
        metrics_hist_init(&m->store_batch, "forq_store_batch_size",
                          "Records written per store transaction.", metrics_store_batch_bounds,
                          METRICS_NELEM(metrics_store_batch_bounds), 0) != 0)
        abort();
}

/* ------------------------------------------------------------------ rendering */

/* The output being built; after the first failure every write is skipped. */
struct metrics_out {
    struct evbuffer *buf;
    int err; /* 0 or FORQ_ERR_NOMEM */
};

static void
metrics_add(struct metrics_out *o, const char *s, size_t n)
{
    if (o->err == 0 && n > 0 && evbuffer_add(o->buf, s, n) != 0)
        o->err = FORQ_ERR_NOMEM;
}

static void
metrics_puts(struct metrics_out *o, const char *s)
{
    metrics_add(o, s, strlen(s));
}

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
    va_list ap;

    if (o->err != 0)
        return;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(o->buf, fmt, ap) < 0)
        o->err = FORQ_ERR_NOMEM;
    va_end(ap);
}

/* v / 10^decimals as an exact, short decimal: "60", "0.0005", "12.5". */
static void
metrics_decimal(struct metrics_out *o, uint64_t v, unsigned decimals)
{
    uint64_t p = metrics_pow10[decimals];
    char buf[48];
    int n;

    n = snprintf(buf, sizeof(buf), "%" PRIu64, v / p);
    if (v % p != 0) {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%0*" PRIu64, (int)decimals, v % p);
        while (buf[n - 1] == '0')
            n--;
    }
    metrics_add(o, buf, (size_t)n);
}

/* The exposition format escapes exactly these three in label values. */
static void
metrics_label_value(struct metrics_out *o, const char *p, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        const char *esc = p[i] == '\\'   ? "\\\\"
                          : p[i] == '"'  ? "\\\""
                          : p[i] == '\n' ? "\\n"
                                         : NULL;

        if (esc == NULL)
            continue;
        metrics_add(o, p + start, i - start);
        metrics_add(o, esc, 2);
        start = i + 1;
    }
    metrics_add(o, p + start, n - start);
}

static void
metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
    metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name v, or name{label="value"} v when label is not NULL. */
static void
metrics_sample(struct metrics_out *o, const char *name, const char *label, struct msg_str value,
               uint64_t v)
{
    metrics_puts(o, name);
    if (label != NULL) {
        metrics_printf(o, "{%s=\"", label);
        metrics_label_value(o, value.ptr, value.len);
        metrics_puts(o, "\"}");
    }
    metrics_printf(o, " %" PRIu64 "\n", v);
}

enum metrics_ftype {
    METRICS_F_U64,
    METRICS_F_U32,
    METRICS_F_INT,
};

/* A family read from one field of struct msg_stats or struct msg_queue_stats. */
struct metrics_field {
    const char *name;
    const char *type; /* "gauge" or "counter" */
    const char *help;
    size_t off;
    int ftype; /* enum metrics_ftype */
};

/* The offset and type of a field, for the tables below. */
#define METRICS_ST(f)        offsetof(struct msg_stats, f), METRICS_F_U64
#define METRICS_QS(f)        offsetof(struct msg_queue_stats, f), METRICS_F_U64
#define METRICS_QS_AS(f, ft) offsetof(struct msg_queue_stats, f), ft

static const struct metrics_field metrics_server_fields[] = {
    {"forq_connections", "gauge", "Client connections open.", METRICS_ST(connections)},
    {"forq_jobs_queued", "gauge", "Jobs runnable, waiting for a worker.", METRICS_ST(queued)},
    {"forq_jobs_running", "gauge", "Jobs running in a worker.", METRICS_ST(running)},
    {"forq_jobs_scheduled", "gauge", "Jobs waiting for their delay or retry backoff to pass.",
     METRICS_ST(scheduled)},
    {"forq_jobs_submitted_total", "counter", "Jobs submitted.", METRICS_ST(submitted)},
    {"forq_jobs_succeeded_total", "counter", "Jobs that finished with a result.",
     METRICS_ST(succeeded)},
    {"forq_jobs_failed_total", "counter", "Jobs that finished failed.", METRICS_ST(failed)},
    {"forq_jobs_cancelled_total", "counter", "Jobs cancelled.", METRICS_ST(cancelled)},
    {"forq_jobs_retried_total", "counter", "Failed attempts scheduled to be retried.",
     METRICS_ST(retried)},
    {"forq_store_commits_total", "counter", "Store transactions committed.",
     METRICS_ST(store_commits)},
    {"forq_store_fsyncs_total", "counter", "fsync and fdatasync calls made by the store.",
     METRICS_ST(store_fsyncs)},
    {"forq_store_records_total", "counter", "Records written by the store.",
     METRICS_ST(store_records)},
    {"forq_store_failures_total", "counter", "Store records that failed to be written.",
     METRICS_ST(store_failures)},
    {"forq_store_purged_total", "counter",
     "Finished jobs deleted from the store after their result TTL.", METRICS_ST(store_purged)},
};

static const struct metrics_field metrics_queue_fields[] = {
    {"forq_queue_depth", "gauge", "Jobs runnable in the queue.", METRICS_QS(queued)},
    {"forq_queue_running", "gauge", "Jobs of the queue running.", METRICS_QS(running)},
    {"forq_queue_scheduled", "gauge", "Jobs of the queue waiting for their delay or retry backoff.",
     METRICS_QS(scheduled)},
    {"forq_queue_blocked_submits", "gauge",
     "SUBMITs waiting for room in the full queue (block_ms).", METRICS_QS(blocked)},
    {"forq_queue_paused", "gauge", "1 if the queue is paused, else 0.",
     METRICS_QS_AS(paused, METRICS_F_INT)},
    {"forq_queue_limit", "gauge", "Most jobs of the queue running at once; 0 means no limit.",
     METRICS_QS_AS(limit, METRICS_F_U32)},
    {"forq_queue_jobs_submitted_total", "counter", "Jobs submitted to the queue.",
     METRICS_QS(submitted)},
    {"forq_queue_jobs_succeeded_total", "counter", "Jobs of the queue that finished with a result.",
     METRICS_QS(succeeded)},
    {"forq_queue_jobs_failed_total", "counter", "Jobs of the queue that finished failed.",
     METRICS_QS(failed)},
    {"forq_queue_jobs_cancelled_total", "counter", "Jobs of the queue cancelled.",
     METRICS_QS(cancelled)},
    {"forq_queue_jobs_retried_total", "counter",
     "Failed attempts of the queue's jobs scheduled to be retried.", METRICS_QS(retried)},
};

static uint64_t
metrics_field_get(const void *base, const struct metrics_field *f)
{
    const char *p = (const char *)base + f->off;

    switch (f->ftype) {
    case METRICS_F_U32:
        return *(const uint32_t *)(const void *)p;
    case METRICS_F_INT:
        return *(const int *)(const void *)p != 0;
    default:
        return *(const uint64_t *)(const void *)p;
    }
}

static const struct msg_str metrics_nolabel = {"", 0};

static void
metrics_render_server(struct metrics_out *o, const struct msg_stats *st)
{
    metrics_family(o, "forq_up", "gauge", "1: forqd answered this scrape.");
    metrics_puts(o, "forq_up 1\n");
    metrics_family(o, "forq_info", "gauge",
                   "Always 1; the labels name the server version and the store's durability.");
    metrics_puts(o, "forq_info{server=\"");
    metrics_label_value(o, st->server.ptr, st->server.len);
    metrics_puts(o, "\",durability=\"");
    metrics_label_value(o, st->durability.ptr, st->durability.len);
    metrics_puts(o, "\"} 1\n");
    metrics_family(o, "forq_uptime_seconds", "gauge", "Seconds since forqd started.");
    metrics_puts(o, "forq_uptime_seconds ");
    metrics_decimal(o, st->uptime_ms, 3);
    metrics_puts(o, "\n");
    for (size_t i = 0; i < METRICS_NELEM(metrics_server_fields); i++) {
        const struct metrics_field *f = &metrics_server_fields[i];

        metrics_family(o, f->name, f->type, f->help);
        metrics_sample(o, f->name, NULL, metrics_nolabel, metrics_field_get(st, f));
    }
}

static void
metrics_render_queues(struct metrics_out *o, const struct msg_stats *st)
{
    /* A family's samples must be contiguous: one family at a time, every queue in it. */
    for (size_t i = 0; i < METRICS_NELEM(metrics_queue_fields); i++) {
        const struct metrics_field *f = &metrics_queue_fields[i];

        metrics_family(o, f->name, f->type, f->help);
        for (size_t q = 0; q < st->nqueues; q++)
            metrics_sample(o, f->name, "queue", st->queues[q].name,
                           metrics_field_get(&st->queues[q], f));
    }
}

static int
metrics_str_eq(struct msg_str a, struct msg_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static uint64_t
metrics_workers_in(const struct msg_stats *st, size_t from, struct msg_str state)
{
    uint64_t n = 0;

    for (size_t i = from; i < st->nworkers; i++)
        n += metrics_str_eq(st->workers[i].state, state);
    return n;
}

static void
metrics_render_workers(struct metrics_out *o, const struct msg_stats *st)
{
    /* pool.c's states, always present so a state's series drops to 0 rather than vanish. */
    static const char *const known[] = {"idle", "busy", "starting", "retiring"};
    uint64_t restarts = 0;

    metrics_family(o, "forq_workers", "gauge", "Worker processes by state.");
    for (size_t k = 0; k < METRICS_NELEM(known); k++)
        metrics_sample(o, "forq_workers", "state", msg_str_c(known[k]),
                       metrics_workers_in(st, 0, msg_str_c(known[k])));
    /* Any other state once, at its first worker. */
    for (size_t i = 0; i < st->nworkers; i++) {
        struct msg_str s = st->workers[i].state;
        int seen = 0;

        for (size_t k = 0; k < METRICS_NELEM(known) && !seen; k++)
            seen = msg_str_eq(s, known[k]);
        for (size_t j = 0; j < i && !seen; j++)
            seen = metrics_str_eq(st->workers[j].state, s);
        if (!seen)
            metrics_sample(o, "forq_workers", "state", s, metrics_workers_in(st, i, s));
    }
    for (size_t i = 0; i < st->nworkers; i++)
        restarts += st->workers[i].restarts;
    metrics_family(o, "forq_worker_restarts_total", "counter",
                   "Worker processes started again after one exited or was replaced.");
    metrics_sample(o, "forq_worker_restarts_total", NULL, metrics_nolabel, restarts);
}

static void
metrics_render_hist(struct metrics_out *o, const struct metrics_hist *h)
{
    struct metrics_hist_snap s;

    metrics_hist_read(h, &s);
    metrics_family(o, h->name, "histogram", h->help);
    for (size_t i = 0; i < h->nbounds; i++) {
        metrics_printf(o, "%s_bucket{le=\"", h->name);
        metrics_decimal(o, h->bounds[i], h->decimals);
        metrics_printf(o, "\"} %" PRIu64 "\n", s.cumulative[i]);
    }
    metrics_printf(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h->name, s.count);
    metrics_printf(o, "%s_sum ", h->name);
    metrics_decimal(o, s.sum, h->decimals);
    metrics_printf(o, "\n%s_count %" PRIu64 "\n", h->name, s.count);
}

int
metrics_render(const struct metrics *m, const struct msg_stats *st, struct evbuffer *out)
{
    struct metrics_out o = {.buf = evbuffer_new()};

    /* Built aside and moved in whole, so a failure leaves out as it was. */
    if (o.buf == NULL)
        return FORQ_ERR_NOMEM;
    metrics_render_server(&o, st);
    metrics_render_queues(&o, st);
    metrics_render_workers(&o, st);
    metrics_render_hist(&o, &m->job_wait);
    metrics_render_hist(&o, &m->job_run);
    metrics_render_hist(&o, &m->store_commit);
    metrics_render_hist(&o, &m->store_batch);
    if (o.err == 0 && evbuffer_add_buffer(out, o.buf) != 0)
        o.err = FORQ_ERR_NOMEM;
    evbuffer_free(o.buf);
    return o.err;
}

/* ------------------------------------------------------------------ HTTP */

#define METRICS_HTTP_BACKLOG     64
#define METRICS_HTTP_MAX_HEADERS 8192 /* Prometheus sends well under 1 KiB */
#define METRICS_HTTP_MAX_BODY    1024 /* nothing we serve takes a body */
#define METRICS_HTTP_TIMEOUT_S   10   /* a scrape reads and writes well within this */
#define METRICS_HTTP_RETRY_MS    100  /* pause after accept(2) failed, e.g. out of fds */
#define METRICS_CONTENT_TYPE     "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_TEXT_TYPE        "text/plain; charset=utf-8"

struct metrics_http {
    struct evhttp *http;        /* owns lev and every connection */
    struct evconnlistener *lev; /* the listening socket, close-on-exec */
    metrics_fill_fn fill;
    void *arg;                    /* borrowed */
    char name[ADDR_STR_MAX + 32]; /* http://HOST:PORT/metrics with the bound port */
};

/* Answer req. HEAD gets the headers of the answer, Content-Length included, without the body. */
static void
metrics_http_reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                   struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char len[24];

    evhttp_add_header(h, "Content-Type", ctype);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* evhttp would send the body after a HEAD's headers; it adds no length either. */
        snprintf(len, sizeof(len), "%zu", body != NULL ? evbuffer_get_length(body) : (size_t)0);
        evhttp_add_header(h, "Content-Length", len);
        body = NULL;
    }
    evhttp_send_reply(req, code, reason, body);
}

/* A short text/plain answer (errors). */
static void
metrics_http_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();

    /* Out of memory: the status line alone still tells the scraper. */
    if (body != NULL && evbuffer_add(body, text, strlen(text)) != 0) {
        evbuffer_free(body);
        body = NULL;
    }
    metrics_http_reply(req, code, reason, METRICS_TEXT_TYPE, body);
    if (body != NULL)
        evbuffer_free(body);
}

static void
metrics_http_scrape(struct metrics_http *mh, struct evhttp_request *req)
{
    struct evbuffer *body = evbuffer_new();
    int e;

    if (body == NULL) {
        metrics_http_text(req, HTTP_INTERNAL, "Internal Server Error", "out of memory\n");
        return;
    }
    if ((e = mh->fill(mh->arg, body)) != 0) {
        char text[128];

        log_warn("cannot answer a metrics scrape: %s", forq_strerror(e));
        snprintf(text, sizeof(text), "cannot collect metrics: %s\n", forq_strerror(e));
        metrics_http_text(req, HTTP_INTERNAL, "Internal Server Error", text);
    } else {
        metrics_http_reply(req, HTTP_OK, "OK", METRICS_CONTENT_TYPE, body);
    }
    evbuffer_free(body);
}

static void
metrics_http_request_cb(struct evhttp_request *req, void *arg)
{
    struct metrics_http *mh = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    /* The path first: a method is "not allowed" only on something that exists. */
    if (path == NULL || strcmp(path, METRICS_HTTP_PATH) != 0) {
        metrics_http_text(req, HTTP_NOTFOUND, "Not Found",
                          "not found: metrics are at " METRICS_HTTP_PATH "\n");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        metrics_http_text(req, HTTP_BADMETHOD, "Method Not Allowed",
                          "method not allowed: use GET or HEAD\n");
        return;
    }
    metrics_http_scrape(mh, req);
}

static void
metrics_http_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/*
 * accept(2) failed for a reason other than a retriable one, e.g. out of
 * descriptors: the socket stays readable, so pause accepting instead of
 * spinning. evhttp owns the listener's callback argument, so the retry is a
 * one-shot event carrying the listener itself.
 */
static void
metrics_http_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct timeval tv = {0, METRICS_HTTP_RETRY_MS * 1000};
    int err = EVUTIL_SOCKET_ERROR();

    (void)arg;
    log_warn("metrics listener: accept: %s; pausing for %d ms", evutil_socket_error_to_string(err),
             METRICS_HTTP_RETRY_MS);
    evconnlistener_disable(lev);
    if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, metrics_http_retry_cb, lev,
                        &tv) != 0)
        evconnlistener_enable(lev); /* no timer: spinning beats going deaf */
}

/* "http://HOST:PORT/metrics" from the bound address. */
static void
metrics_http_set_name(struct metrics_http *mh, const struct addr *a)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "";

    if (getsockname(evconnlistener_get_fd(mh->lev), (struct sockaddr *)&ss, &sl) != 0)
        ss.ss_family = AF_UNSPEC; /* fall back to the configured address */
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(mh->name, sizeof(mh->name), "http://%s:%u%s", host, ntohs(in->sin_port),
                 METRICS_HTTP_PATH);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(mh->name, sizeof(mh->name), "http://[%s]:%u%s", host, ntohs(in6->sin6_port),
                 METRICS_HTTP_PATH);
    } else {
        snprintf(mh->name, sizeof(mh->name), "http://%s:%s%s", a->host, a->port, METRICS_HTTP_PATH);
    }
}

/* Only digits and dots: meant as an IPv4 literal, never a name to look up. */
static int
metrics_is_dotted(const char *host)
{
    return host[strspn(host, "0123456789.")] == '\0';
}

/* Bind and listen on a->host:a->port with a close-on-exec socket. */
static int
metrics_http_bind(struct metrics_http *mh, struct event_base *base, const struct addr *a, char *why,
                  size_t whylen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    int e;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (metrics_is_dotted(a->host))
        hints.ai_flags |= AI_NUMERICHOST; /* "256.1.1.1" is a typo, not a DNS name */
    if ((e = getaddrinfo(a->host, a->port, &hints, &ai)) != 0) {
        snprintf(why, whylen, "cannot listen on tcp://%s:%s: %s", a->host, a->port,
                 e == EAI_NONAME && (hints.ai_flags & AI_NUMERICHOST) ? "not an IPv4 address"
                                                                      : gai_strerror(e));
        return FORQ_ERR_INVALID;
    }
    /* LEV_OPT_CLOSE_ON_EXEC covers the listening socket and every accepted
     * one (accept4 with SOCK_CLOEXEC): workers and task commands inherit
     * neither. evhttp_bind_socket would leave accepted sockets inheritable. */
    mh->lev = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        METRICS_HTTP_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (mh->lev == NULL) {
        snprintf(why, whylen, "cannot listen on tcp://%s:%s: %s", a->host, a->port,
                 strerror(errno));
        return FORQ_ERR_SYSTEM;
    }
    return 0;
}

int
metrics_http_new(struct event_base *base, const char *listen, metrics_fill_fn fill, void *arg,
                 struct metrics_http **out, char *why, size_t whylen)
{
    struct metrics_http *mh;
    struct addr a;
    const char *perr;
    int e;

    *out = NULL;
    if (whylen > 0)
        why[0] = '\0';
    if (addr_parse(listen, ADDR_PORT_ZERO, &a, &perr) != 0) {
        snprintf(why, whylen, "bad metrics address '%s': %s", listen ? listen : "", perr);
        return FORQ_ERR_INVALID;
    }
    if (a.kind != ADDR_TCP) {
        snprintf(why, whylen,
                 "bad metrics address '%s': the metrics listener speaks HTTP over "
                 "TCP only (tcp://HOST:PORT)",
                 listen);
        return FORQ_ERR_INVALID;
    }
    if ((mh = calloc(1, sizeof(*mh))) == NULL || (mh->http = evhttp_new(base)) == NULL) {
        free(mh);
        snprintf(why, whylen, "cannot set up the metrics listener: out of memory");
        return FORQ_ERR_NOMEM;
    }
    mh->fill = fill;
    mh->arg = arg;
    /* Every method reaches our callback, so that the answer is 405, not evhttp's 501. */
    evhttp_set_allowed_methods(mh->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                             EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(mh->http, METRICS_HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(mh->http, METRICS_HTTP_MAX_BODY);
    /* Idle keep-alive and slow clients are dropped: each costs a descriptor. */
    evhttp_set_timeout(mh->http, METRICS_HTTP_TIMEOUT_S);
    evhttp_set_gencb(mh->http, metrics_http_request_cb, mh);
    if ((e = metrics_http_bind(mh, base, &a, why, whylen)) != 0)
        goto fail;
    if (evhttp_bind_listener(mh->http, mh->lev) == NULL) {
        evconnlistener_free(mh->lev); /* not evhttp's yet */
        mh->lev = NULL;
        snprintf(why, whylen, "cannot set up the metrics listener: out of memory");
        e = FORQ_ERR_NOMEM;
        goto fail;
    }
    evconnlistener_set_error_cb(mh->lev, metrics_http_accept_error_cb);
    metrics_http_set_name(mh, &a);
    *out = mh;
    return 0;
fail:
    metrics_http_free(mh);
    return e;
}

const char *
metrics_http_name(const struct metrics_http *mh)
{
    return mh->name;
}

void
metrics_http_free(struct metrics_http *mh)
{
    if (mh == NULL)
        return;
    if (mh->http != NULL)
        evhttp_free(mh->http); /* frees the bound listener and every connection */
    free(mh);
}
