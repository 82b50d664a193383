/*
 * client.c — libforq's client: addresses, errors, one request/response
 * exchange (client_rpc_run), reconnects; forq_connect/close/free, ping, stats,
 * and the queue calls (info, pause, resume, set, join).
 * The connection underneath (socket, I/O thread, pending calls) is conn.c.
 *
 * Threads and locks. A forq_client is shared by any number of threads.
 * c->mu guards which connection the client uses and the reconnect state; it
 * is never held while connecting or waiting for an answer, and never together
 * with a connection's own lock (conn.c). One thread reconnects at a time;
 * the others wait on c->cond and share its outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "callbacks.h"
#include "client.h"
#include "conn.h"

#define CLIENT_ERRMSG_MAX 512

struct forq_client {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* a connection attempt finished, or closed */
    atomic_uint refs;    /* the user's, plus one per future */
    atomic_uint_fast64_t next_rid;
    struct client_conn *conn; /* under mu: NULL while connecting or closed */
    int closed;               /* under mu */
    int connecting;           /* under mu: one thread is reconnecting */
    uint64_t attempts;        /* under mu: finished reconnect attempts */
    int attempt_err;          /* under mu: result of the last attempt */
    char attempt_msg[CLIENT_ERRMSG_MAX];
    struct addr addr;
    char addr_str[ADDR_STR_MAX];
    char *token;               /* HELLO's token, or NULL */
    int64_t connect_timeout_ms;
    struct callbacks *cbs;     /* under mu: the callback thread, from the first callback on */
};

static __thread char client_errbuf[CLIENT_ERRMSG_MAX];


/* ------------------------------------------------------------------ errors, helpers */

int
client_seterr(int code, const char *fmt, ...)
{
    char tmp[CLIENT_ERRMSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    memcpy(client_errbuf, tmp, sizeof(tmp));
    return code;
}

const char *
forq_errmsg(void)
{
    return client_errbuf[0] ? client_errbuf : forq_strerror(FORQ_OK);
}

void
client_strlcpy(char *dst, size_t size, struct msg_str s)
{
    size_t n = s.len;

    if (size == 0)
        return;
    if (n > size - 1) {
        n = size - 1;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((uint8_t)s.ptr[n] & 0xc0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

int64_t
client_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ addresses */

int
client_addr_parse(const char *s, struct addr *out)
{
    const char *why;

    if (addr_parse(s, 0, out, &why) != 0)
        return client_seterr(FORQ_ERR_INVALID, "invalid address '%.*s': %s", 200,
                             s != NULL ? s : "", why);
    return 0;
}

/* ------------------------------------------------------------------ one exchange */

/* Decode the answer in rpc; a refusal becomes its code with the server's text. */
static int
client_rpc_decode(struct client_rpc *rpc, int op)
{
    const struct msg_error *err = &rpc->resp.err;
    int r;

    r = msg_decode_response(&rpc->dec, op, rpc->body, rpc->len, &rpc->resp);
    if (r == FORQ_ERR_NOMEM)
        return client_seterr(r, "out of memory");
    if (r != 0)
        return client_seterr(FORQ_ERR_PROTOCOL, "unreadable answer from the server: %s",
                             rpc->dec.why);
    if (err->code != 0) {
        if (err->msg.len == 0)
            return client_seterr(err->code, "%s", forq_strerror(err->code));
        return client_seterr(err->code, "%.*s", (int)(err->msg.len > 400 ? 400 : err->msg.len),
                             err->msg.ptr);
    }
    return 0;
}

int
client_encode(forq_client *c, struct msg_request *req, msgpack_sbuffer *sb)
{
    int r;

    msgpack_sbuffer_init(sb);
    if (req->op == MSG_OP_SUBMIT) {
        /* Size the buffer for the payload at once rather than growing it by doubling. */
        sb->alloc = req->u.submit.payload.len + req->u.submit.unique_key.len + 512;
        if ((sb->data = malloc(sb->alloc)) == NULL) {
            sb->alloc = 0;
            return client_seterr(FORQ_ERR_NOMEM, "out of memory");
        }
    }
    req->rid = atomic_fetch_add(&c->next_rid, 1);
    if ((r = msg_encode_request(sb, req)) != 0)
        return client_seterr(r, "cannot encode the %s request: %s", msg_op_name(req->op),
                             forq_strerror(r));
    return 0;
}

static int
client_rpc_begin(forq_client *c, struct client_rpc *rpc, msgpack_sbuffer *sb,
                 struct msg_request *req)
{
    memset(rpc, 0, sizeof(*rpc));
    msgpack_sbuffer_init(sb);
    if (msg_decoder_init(&rpc->dec) != 0)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    rpc->dec_ok = 1;
    return client_encode(c, req, sb);
}

void
client_rpc_fini(struct client_rpc *rpc)
{
    if (rpc->dec_ok)
        msg_decoder_fini(&rpc->dec);
    free(rpc->body);
    memset(rpc, 0, sizeof(*rpc));
}

/* ------------------------------------------------------------------ the client's connection */

/* HELLO on a fresh connection; errors are reported as connect errors. */
static int
client_hello(forq_client *c, struct client_conn *conn)
{
    struct msg_request req;
    struct client_rpc rpc;
    msgpack_sbuffer sb;
    int r, sent;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_HELLO;
    req.u.hello.version = MSG_PROTO_VERSION;
    req.u.hello.client = msg_str_c("libforq " FORQ_VERSION_STRING);
    req.u.hello.token = msg_str_c(c->token);
    if ((r = client_rpc_begin(c, &rpc, &sb, &req)) != 0)
        goto out;
    r = conn_exchange(conn, &sb, req.rid, client_now_ms() + c->connect_timeout_ms, &rpc.body,
                      &rpc.len, &sent);
    if (r == FORQ_ERR_TIMEOUT || r == FORQ_ERR_DISCONNECTED) {
        r = client_seterr(FORQ_ERR_CONNECT, "connect %s: %s", c->addr_str,
                          r == FORQ_ERR_TIMEOUT ? "no answer to HELLO"
                                                : "connection closed during the handshake");
        goto out;
    }
    if (r != 0 || (r = client_rpc_decode(&rpc, MSG_OP_HELLO)) != 0)
        goto out;
    if (rpc.resp.hello.version != MSG_PROTO_VERSION) {
        r = client_seterr(FORQ_ERR_VERSION,
                          "connect %s: server speaks protocol version %u, "
                          "this client %u",
                          c->addr_str, rpc.resp.hello.version, MSG_PROTO_VERSION);
        goto out;
    }
    conn_set_max_frame(conn, rpc.resp.hello.max_frame);
    r = 0;
out:
    msgpack_sbuffer_destroy(&sb);
    client_rpc_fini(&rpc);
    return r;
}

/* Connect, start the I/O thread and shake hands. */
static int
client_conn_open(forq_client *c, struct client_conn **out)
{
    struct client_conn *conn = NULL;
    int r;

    *out = NULL;
    if ((r = conn_open(&c->addr, c->addr_str, c->connect_timeout_ms, &conn)) != 0)
        return r;
    if ((r = client_hello(c, conn)) != 0) {
        conn_stop(conn, "handshake failed");
        conn_release(conn);
        return r;
    }
    *out = conn;
    return 0;
}

/* Wait for the reconnect another thread is making; its failure is ours too. */
static int
client_conn_await_locked(forq_client *c)
{
    uint64_t seen = c->attempts;

    while (c->connecting && !c->closed)
        pthread_cond_wait(&c->cond, &c->mu);
    if (!c->closed && c->attempts != seen && c->attempt_err != 0)
        return client_seterr(c->attempt_err, "%s", c->attempt_msg);
    return 0;
}

/* Reconnect (this thread won the right to); returns with c->mu held. */
static int
client_conn_reopen(forq_client *c, struct client_conn **out)
{
    struct client_conn *old = c->conn, *conn = NULL;
    int r;

    c->connecting = 1;
    c->conn = NULL;
    pthread_mutex_unlock(&c->mu);
    if (old != NULL) {
        conn_stop(old, "connection replaced");
        conn_release(old);
    }
    r = client_conn_open(c, &conn);
    if (r != 0 && r != FORQ_ERR_NOMEM)
        r = FORQ_ERR_DISCONNECTED; /* a later call sees the connection as lost */
    pthread_mutex_lock(&c->mu);
    c->connecting = 0;
    c->attempts++;
    c->attempt_err = r;
    if (r != 0)
        snprintf(c->attempt_msg, sizeof(c->attempt_msg), "%s", forq_errmsg());
    pthread_cond_broadcast(&c->cond);
    if (r == 0 && c->closed) {
        pthread_mutex_unlock(&c->mu);
        conn_stop(conn, "client closed");
        conn_release(conn);
        pthread_mutex_lock(&c->mu);
        return client_seterr(FORQ_ERR_INVALID, "the client is closed");
    }
    if (r == 0) {
        c->conn = conn;
        conn_ref(conn);
        *out = conn;
    }
    return r;
}

int
client_conn_get(forq_client *c, struct client_conn **out)
{
    int r;

    *out = NULL;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->closed) {
            r = client_seterr(FORQ_ERR_INVALID, "the client is closed");
            break;
        }
        if (c->conn != NULL && !conn_is_dead(c->conn)) {
            conn_ref(c->conn);
            *out = c->conn;
            r = 0;
            break;
        }
        if (!c->connecting) {
            r = client_conn_reopen(c, out);
            break;
        }
        if ((r = client_conn_await_locked(c)) != 0)
            break;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

int
client_rpc_run(forq_client *c, struct msg_request *req, int64_t wait_ms, struct client_rpc *rpc)
{
    struct client_conn *conn = NULL;
    msgpack_sbuffer sb;
    int64_t deadline = wait_ms < 0 ? -1 : client_now_ms() + wait_ms;
    int r, sent = 0, tries;

    if ((r = client_rpc_begin(c, rpc, &sb, req)) != 0)
        goto out;
    /* A request never sent (the connection was found dead) is retried once. */
    for (tries = 0; tries < 2 && !sent; tries++) {
        conn_release(conn);
        conn = NULL;
        if ((r = client_conn_get(c, &conn)) != 0)
            goto out;
        r = conn_exchange(conn, &sb, req->rid, deadline, &rpc->body, &rpc->len, &sent);
        if (r != FORQ_ERR_DISCONNECTED)
            break;
    }
    if (r == FORQ_ERR_DISCONNECTED && !sent)
        r = conn_seterr_why(conn, r);
    if (r == 0)
        r = client_rpc_decode(rpc, req->op);
out:
    conn_release(conn);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

/* ------------------------------------------------------------------ public: lifecycle */

int
client_check_open(forq_client *c)
{
    int closed;

    if (c == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no client");
    pthread_mutex_lock(&c->mu);
    closed = c->closed;
    pthread_mutex_unlock(&c->mu);
    return closed ? client_seterr(FORQ_ERR_INVALID, "the client is closed") : 0;
}

void
client_ref(forq_client *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void
client_unref(forq_client *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    free(c->token);
    callbacks_free(c->cbs);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int
forq_connect_opts(const char *addr, const struct forq_connect_opts *opts, forq_client **out)
{
    forq_client *c;
    int r;

    if (out == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no place for the client");
    *out = NULL;
    if (addr == NULL)
        addr = FORQ_DEFAULT_ADDR;
    if (opts != NULL && opts->token != NULL &&
        (strlen(opts->token) > MSG_KEY_MAX ||
         !msg_utf8_valid((const uint8_t *)opts->token, strlen(opts->token))))
        return client_seterr(FORQ_ERR_INVALID, "the token must be UTF-8 of at most %d bytes",
                             MSG_KEY_MAX);
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    if ((r = client_addr_parse(addr, &c->addr)) != 0) {
        free(c);
        return r;
    }
    snprintf(c->addr_str, sizeof(c->addr_str), "%s", addr);
    c->connect_timeout_ms = opts != NULL && opts->connect_timeout_ms > 0
                                ? opts->connect_timeout_ms
                                : CLIENT_CONNECT_TIMEOUT_MS;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    atomic_init(&c->refs, 1);
    atomic_init(&c->next_rid, 1);
    if (opts != NULL && opts->token != NULL && (c->token = strdup(opts->token)) == NULL) {
        client_unref(c);
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    }
    if ((r = client_conn_open(c, &c->conn)) != 0) {
        client_unref(c);
        return r;
    }
    *out = c;
    return 0;
}

int
forq_connect(const char *addr, forq_client **out)
{
    return forq_connect_opts(addr, NULL, out);
}

int
client_callbacks(forq_client *c, struct callbacks **out)
{
    int r = 0;

    *out = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->closed)
        r = client_seterr(FORQ_ERR_INVALID, "the client is closed");
    else if (c->cbs == NULL)
        r = callbacks_new(c, &c->cbs);
    *out = c->cbs;
    pthread_mutex_unlock(&c->mu);
    return r;
}

void
forq_client_close(forq_client *c)
{
    struct client_conn *conn;
    struct callbacks *cbs;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->closed = 1;
    conn = c->conn;
    c->conn = NULL;
    cbs = c->cbs;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    if (conn != NULL) {
        conn_stop(conn, "the client was closed");
        conn_release(conn);
    }
    /* After the connection: the thread's watches fail, and it runs what is left. */
    if (cbs != NULL)
        callbacks_stop(cbs);
}

void
forq_client_free(forq_client *c)
{
    if (c == NULL)
        return;
    forq_client_close(c);
    client_unref(c);
}

/* ------------------------------------------------------------------ public: ping, stats */

int
forq_ping(forq_client *c)
{
    struct msg_request req;
    struct client_rpc rpc;
    int r;

    if ((r = client_check_open(c)) != 0)
        return r;
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_PING;
    r = client_rpc_run(c, &req, -1, &rpc);
    client_rpc_fini(&rpc);
    return r;
}

static void
client_queue_stats_copy(struct forq_queue_stats *q, const struct msg_queue_stats *mq)
{
    client_strlcpy(q->name, sizeof(q->name), mq->name);
    q->queued = mq->queued;
    q->running = mq->running;
    q->submitted = mq->submitted;
    q->succeeded = mq->succeeded;
    q->failed = mq->failed;
    q->cancelled = mq->cancelled;
    q->scheduled = mq->scheduled;
    q->retried = mq->retried;
    q->blocked = mq->blocked;
    q->paused = mq->paused != 0;
    q->limit = mq->limit;
    /* An older forqd sends no order: its queues are all FIFO. */
    if (mq->order.len > 0)
        client_strlcpy(q->order, sizeof(q->order), mq->order);
    else
        snprintf(q->order, sizeof(q->order), "fifo");
}

static void
client_stats_copy(struct forq_stats *s, const struct msg_stats *m)
{
    client_strlcpy(s->server, sizeof(s->server), m->server);
    s->uptime_ms = m->uptime_ms;
    s->connections = m->connections;
    s->queued = m->queued;
    s->running = m->running;
    s->submitted = m->submitted;
    s->succeeded = m->succeeded;
    s->failed = m->failed;
    s->cancelled = m->cancelled;
    client_strlcpy(s->durability, sizeof(s->durability), m->durability);
    s->store_commits = m->store_commits;
    s->store_fsyncs = m->store_fsyncs;
    s->store_records = m->store_records;
    s->store_failures = m->store_failures;
    s->store_max_batch = m->store_max_batch;
    s->store_commit_us = m->store_commit_us;
    s->store_purged = m->store_purged;
    s->scheduled = m->scheduled;
    s->retried = m->retried;
    for (size_t i = 0; i < m->nqueues; i++)
        client_queue_stats_copy(&s->queues[i], &m->queues[i]);
    for (size_t i = 0; i < m->nworkers; i++) {
        struct forq_worker_stats *w = &s->workers[i];
        const struct msg_worker_stats *mw = &m->workers[i];

        w->slot = mw->slot;
        w->pid = mw->pid;
        client_strlcpy(w->state, sizeof(w->state), mw->state);
        w->job = mw->job;
        w->jobs_done = mw->jobs_done;
        w->restarts = mw->restarts;
    }
    s->nqueues = m->nqueues;
    s->nworkers = m->nworkers;
}

int
forq_stats(forq_client *c, struct forq_stats **out)
{
    struct forq_stats *s = NULL;
    struct msg_request req;
    struct client_rpc rpc;
    const struct msg_stats *m;
    int r;

    if (out == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no place for the stats");
    *out = NULL;
    memset(&rpc, 0, sizeof(rpc));
    if ((r = client_check_open(c)) != 0)
        return r;
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_STATS;
    if ((r = client_rpc_run(c, &req, -1, &rpc)) != 0)
        goto out;
    m = &rpc.resp.stats;
    if ((s = calloc(1, sizeof(*s))) == NULL ||
        (m->nqueues && (s->queues = calloc(m->nqueues, sizeof(*s->queues))) == NULL) ||
        (m->nworkers && (s->workers = calloc(m->nworkers, sizeof(*s->workers))) == NULL)) {
        r = client_seterr(FORQ_ERR_NOMEM, "out of memory");
        goto out;
    }
    client_stats_copy(s, m);
    *out = s;
    s = NULL;
out:
    forq_stats_free(s);
    client_rpc_fini(&rpc);
    return r;
}

void
forq_stats_free(struct forq_stats *s)
{
    if (s == NULL)
        return;
    free(s->queues);
    free(s->workers);
    free(s);
}

/* ------------------------------------------------------------------ public: queues */

/* Check the client and the queue name before anything is sent. */
static int
client_queue_check(forq_client *c, const char *queue)
{
    int r;

    if ((r = client_check_open(c)) != 0)
        return r;
    if (queue == NULL)
        return client_seterr(FORQ_ERR_INVALID, "no queue name");
    if (!msg_name_valid(queue, strlen(queue)))
        return client_seterr(FORQ_ERR_INVALID,
                             "invalid queue name '%.*s': 1 to %d bytes of A-Z a-z 0-9 _ . : -", 100,
                             queue, FORQ_NAME_MAX);
    return 0;
}

/* One QUEUE request; limit < 0 and order NULL leave those unchanged. */
static int
client_queue_op(forq_client *c, const char *queue, const char *action, int64_t limit,
                const char *order, struct forq_queue_stats *out)
{
    struct msg_request req;
    struct client_rpc rpc;
    int r;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if ((r = client_queue_check(c, queue)) != 0)
        return r;
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_QUEUE;
    req.u.queue.queue = msg_str_c(queue);
    req.u.queue.action = msg_str_c(action);
    req.u.queue.limit = limit < 0 ? -1 : limit;
    req.u.queue.order = msg_str_c(order);
    if ((r = client_rpc_run(c, &req, -1, &rpc)) == 0 && out != NULL)
        client_queue_stats_copy(out, &rpc.resp.queue);
    client_rpc_fini(&rpc);
    return r;
}

int
forq_queue_info(forq_client *c, const char *queue, struct forq_queue_stats *out)
{
    return client_queue_op(c, queue, "info", -1, NULL, out);
}

int
forq_queue_pause(forq_client *c, const char *queue, struct forq_queue_stats *out)
{
    return client_queue_op(c, queue, "pause", -1, NULL, out);
}

int
forq_queue_resume(forq_client *c, const char *queue, struct forq_queue_stats *out)
{
    return client_queue_op(c, queue, "resume", -1, NULL, out);
}

int
forq_queue_set(forq_client *c, const char *queue, int64_t limit, const char *order,
               struct forq_queue_stats *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (limit < 0 && order == NULL)
        return client_seterr(FORQ_ERR_INVALID, "queue set: give a limit, an order or both");
    if (limit > (int64_t)MSG_QUEUE_LIMIT_MAX)
        return client_seterr(FORQ_ERR_INVALID, "queue limit %lld is over the maximum of %d",
                             (long long)limit, MSG_QUEUE_LIMIT_MAX);
    if (order != NULL && strcmp(order, "fifo") != 0 && strcmp(order, "lifo") != 0)
        return client_seterr(FORQ_ERR_INVALID, "queue order must be 'fifo' or 'lifo', not '%.*s'",
                             100, order);
    return client_queue_op(c, queue, "set", limit, order, out);
}

int
forq_queue_join(forq_client *c, const char *queue, int64_t timeout_ms)
{
    struct msg_request req;
    struct client_rpc rpc;
    int64_t t = timeout_ms < 0                     ? -1
                : timeout_ms > (int64_t)MSG_MS_MAX ? (int64_t)MSG_MS_MAX
                                                   : timeout_ms;
    int r;

    if ((r = client_queue_check(c, queue)) != 0)
        return r;
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_JOIN;
    req.u.join.queue = msg_str_c(queue);
    req.u.join.timeout_ms = t;
    /* The server answers timeout itself; the local deadline only guards a silent one. */
    r = client_rpc_run(c, &req, t < 0 ? -1 : t + CLIENT_WAIT_GRACE_MS, &rpc);
    if (r == FORQ_ERR_TIMEOUT)
        r = client_seterr(r, "queue %s still has unfinished jobs", queue);
    client_rpc_fini(&rpc);
    return r;
}
