/*
 * conn.c — libforq's connection layer: connecting a socket, the I/O thread,
 * the table of pending calls, the output queue, one send-and-wait exchange.
 *
 * Threads. Each live connection (struct client_conn) has one background I/O
 * thread that reads frames, routes each answer by rid to its pending call and
 * writes whatever output is queued. A caller registers a call (on its own
 * stack) in the pending table and either sends its frame itself with one
 * non-blocking send() (when the output queue is empty and nobody else is
 * sending) or queues it for the I/O thread. It then sleeps on the call's own
 * condition variable, so an answer wakes exactly one thread. A call may also
 * be posted (conn_post): its frames are then queued into an inbox that one
 * consumer waits on, and a stream call stays registered for every frame of
 * its rid (WATCH) until it is unposted.
 *
 * Lock rules.
 *  - conn->mu guards the pending table, the output queue and the flags of a
 *    connection; every call's cond waits on it. It is never held across a
 *    blocking system call: sends are MSG_DONTWAIT and done outside it by
 *    whoever holds the `writing` token.
 *  - A connection is reference-counted (client + each caller using it); its
 *    fd is closed only when the last reference goes, so nobody ever sends on
 *    a reused descriptor. Its I/O thread is joined by conn_stop, called by
 *    whoever takes it out of the client (reconnect or close).
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

#include "client.h"
#include "conn.h"
#include "frame.h"

#define CLIENT_TAB_MIN         64
#define CLIENT_IOV_MAX         64
#define CLIENT_READ_CHUNK      65536
#define CLIENT_READS_MAX       16 /* reads per wakeup before looking at output again */
#define CLIENT_BATCH_MAX       64 /* answers handed over per lock */
#define CLIENT_KEEPALIVE_IDLE  60 /* s of silence before TCP keepalive probes */
#define CLIENT_KEEPALIVE_INTVL 10 /* s between probes; 3 unanswered = dead */

/* Output not yet sent: one frame, or what is left of it. */
struct client_chunk {
    struct client_chunk *next;
    char *buf;  /* the frame: the caller's encode buffer, handed over (owned) */
    size_t len; /* bytes in buf */
    size_t off; /* bytes of buf already sent */
};

struct client_conn {
    pthread_mutex_t mu;
    atomic_uint refs;
    int fd;
    int efd; /* eventfd: wakes the I/O thread */
    pthread_t thread;
    int has_thread;           /* thread started and not joined yet */
    atomic_int dead;          /* set once, under mu; readable without it */
    int stopping;             /* under mu: close requested, the I/O thread exits */
    char why[256];            /* under mu: why the connection died */
    char last_err[200];       /* I/O thread: text of a connection-level error (rid 0) */
    struct conn_call **tab;   /* under mu: pending calls, chained by rid */
    size_t tab_size, tab_count;
    struct client_chunk *out_head, *out_tail; /* under mu */
    int writing;                              /* under mu: someone holds the right to send */
    int kicked;                               /* under mu: a wakeup is pending on efd */
    uint64_t max_frame;                       /* server's limit; set before the conn is shared */
    atomic_size_t max_in;                     /* limit on answer frames, read by the I/O thread */
    char addr[ADDR_STR_MAX];
};


static pthread_once_t conn_once = PTHREAD_ONCE_INIT;
static pthread_condattr_t conn_condattr; /* CLOCK_MONOTONIC; set once, then read-only */

static void
conn_once_init(void)
{
    pthread_condattr_init(&conn_condattr);
    pthread_condattr_setclock(&conn_condattr, CLOCK_MONOTONIC);
}

static void
conn_deadline_ts(int64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(deadline_ms / 1000);
    ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000;
}

/* ------------------------------------------------------------------ sockets */

/* Wait for a non-blocking connect to finish; 0 or an errno value. */
static int
conn_sock_wait(int fd, int64_t deadline)
{
    struct pollfd pfd = {fd, POLLOUT, 0};
    socklen_t sl = sizeof(int);
    int64_t left;
    int n, soerr = 0;

    for (;;) {
        if ((left = deadline - client_now_ms()) <= 0)
            return ETIMEDOUT;
        n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            return errno;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return errno;
    return soerr;
}

/*
 * TCP options: no Nagle delay for small requests, and keepalive probes so that
 * a server host that vanishes without a FIN or RST still fails pending calls
 * (after about CLIENT_KEEPALIVE_IDLE + 3 * CLIENT_KEEPALIVE_INTVL seconds).
 */
static void
conn_sock_tune(int fd)
{
    int one = 1, idle = CLIENT_KEEPALIVE_IDLE, intvl = CLIENT_KEEPALIVE_INTVL, cnt = 3;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Open a non-blocking socket and connect it to sa; 0 or an errno value. */
static int
conn_sock_try(int family, const struct sockaddr *sa, socklen_t salen, int64_t deadline, int *fdp)
{
    int fd, e;

    *fdp = -1;
    if ((fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return errno;
    if (connect(fd, sa, salen) == 0)
        e = 0;
    else if (errno == EINPROGRESS || errno == EAGAIN)
        e = conn_sock_wait(fd, deadline);
    else
        e = errno;
    if (e != 0) {
        close(fd);
        return e;
    }
    if (family != AF_UNIX)
        conn_sock_tune(fd);
    *fdp = fd;
    return 0;
}

/* Connect to the parsed address within timeout_ms. */
static int
conn_sock_connect(const struct addr *a, const char *name, int64_t timeout_ms, int *fdp)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct sockaddr_un sun;
    int64_t deadline = client_now_ms() + timeout_ms;
    int e = ECONNREFUSED, g;

    *fdp = -1;
    if (a->kind == ADDR_UNIX) {
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, a->path, sizeof(sun.sun_path));
        e = conn_sock_try(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), deadline, fdp);
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    if ((g = getaddrinfo(a->host, a->port, &hints, &res)) != 0)
        return client_seterr(FORQ_ERR_CONNECT, "connect %s: %s", name,
                             g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        e = conn_sock_try(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline, fdp);
        if (e == 0 || e == ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
out:
    if (e != 0)
        return client_seterr(FORQ_ERR_CONNECT, "connect %s: %s", name, strerror(e));
    return 0;
}

/* ------------------------------------------------------------------ pending table */

static int
conn_tab_grow(struct client_conn *conn)
{
    size_t n = conn->tab_size ? conn->tab_size * 2 : CLIENT_TAB_MIN;
    struct conn_call **t, *call, *next;

    if ((t = calloc(n, sizeof(*t))) == NULL)
        return FORQ_ERR_NOMEM;
    for (size_t i = 0; i < conn->tab_size; i++) {
        for (call = conn->tab[i]; call != NULL; call = next) {
            next = call->next;
            call->next = t[call->rid & (n - 1)];
            t[call->rid & (n - 1)] = call;
        }
    }
    free(conn->tab);
    conn->tab = t;
    conn->tab_size = n;
    return 0;
}

static int
conn_tab_add(struct client_conn *conn, struct conn_call *call)
{
    struct conn_call **b;

    if (conn->tab_count >= conn->tab_size && conn_tab_grow(conn) != 0 && conn->tab_size == 0)
        return FORQ_ERR_NOMEM;
    b = &conn->tab[call->rid & (conn->tab_size - 1)];
    call->next = *b;
    *b = call;
    conn->tab_count++;
    return 0;
}

/*
 * Return the call waiting for rid, or NULL (abandoned or unknown). It is
 * unlinked unless keep is set and it is a stream call.
 */
static struct conn_call *
conn_tab_find(struct client_conn *conn, uint64_t rid, int keep)
{
    struct conn_call **pp, *call;

    if (conn->tab_size == 0)
        return NULL;
    for (pp = &conn->tab[rid & (conn->tab_size - 1)]; (call = *pp) != NULL; pp = &call->next) {
        if (call->rid == rid) {
            if (keep && call->stream)
                return call;
            *pp = call->next;
            call->next = NULL;
            call->posted = 0;
            conn->tab_count--;
            return call;
        }
    }
    return NULL;
}

static struct conn_call *
conn_tab_take(struct client_conn *conn, uint64_t rid)
{
    return conn_tab_find(conn, rid, 0);
}

/* ------------------------------------------------------------------ connections */

static void
conn_kick(struct client_conn *conn)
{
    uint64_t one = 1;

    (void)!write(conn->efd, &one, sizeof(one));
}

/*
 * Mark the connection dead (once) and fail every pending call with
 * FORQ_ERR_DISCONNECTED. Called with conn->mu held.
 */
static void conn_fail_locked(struct client_conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Push fr to its inbox and wake the consumer. Under conn->mu (then ib->mu). */
static void
conn_inbox_push(struct conn_inbox *ib, struct conn_frame *fr)
{
    fr->next = NULL;
    pthread_mutex_lock(&ib->mu);
    if (ib->tail != NULL)
        ib->tail->next = fr;
    else
        ib->head = fr;
    ib->tail = fr;
    pthread_cond_signal(&ib->cond);
    pthread_mutex_unlock(&ib->mu);
}

/*
 * A call leaves the table without an answer: wake it with err (synchronous)
 * or deliver its `lost` notice. Under conn->mu.
 */
static void
conn_call_lost(struct conn_call *call, int err)
{
    call->next = NULL;
    call->posted = 0;
    if (call->inbox == NULL) {
        call->err = err;
        call->done = 1;
        pthread_cond_signal(&call->cond);
        return;
    }
    call->lost->tag = call->tag;
    call->lost->err = err;
    conn_inbox_push(call->inbox, call->lost);
    call->lost = NULL;
}

static void
conn_fail_locked(struct client_conn *conn, const char *fmt, ...)
{
    struct conn_call *call;
    va_list ap;

    if (atomic_load(&conn->dead))
        return;
    va_start(ap, fmt);
    vsnprintf(conn->why, sizeof(conn->why), fmt, ap);
    va_end(ap);
    atomic_store(&conn->dead, 1);
    for (size_t i = 0; i < conn->tab_size; i++) {
        while ((call = conn->tab[i]) != NULL) {
            conn->tab[i] = call->next;
            conn_call_lost(call, FORQ_ERR_DISCONNECTED);
        }
    }
    conn->tab_count = 0;
}

static int
conn_new(const char *addr, struct client_conn **out)
{
    struct client_conn *conn;

    *out = NULL;
    if ((conn = calloc(1, sizeof(*conn))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    conn->fd = -1;
    if ((conn->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        free(conn);
        return client_seterr(FORQ_ERR_SYSTEM, "eventfd: %s", strerror(errno));
    }
    pthread_mutex_init(&conn->mu, NULL);
    atomic_init(&conn->refs, 1);
    atomic_init(&conn->dead, 0);
    atomic_init(&conn->max_in, CLIENT_MIN_IN_FRAME);
    conn->max_frame = UINT32_MAX;
    snprintf(conn->addr, sizeof(conn->addr), "%s", addr);
    *out = conn;
    return 0;
}

void
conn_ref(struct client_conn *conn)
{
    atomic_fetch_add(&conn->refs, 1);
}

void
conn_release(struct client_conn *conn)
{
    struct client_chunk *ch;

    if (conn == NULL || atomic_fetch_sub(&conn->refs, 1) != 1)
        return;
    while ((ch = conn->out_head) != NULL) {
        conn->out_head = ch->next;
        free(ch->buf);
        free(ch);
    }
    free(conn->tab);
    if (conn->fd >= 0)
        close(conn->fd);
    close(conn->efd);
    pthread_mutex_destroy(&conn->mu);
    free(conn);
}

void
conn_stop(struct client_conn *conn, const char *why)
{
    pthread_mutex_lock(&conn->mu);
    conn->stopping = 1;
    conn_fail_locked(conn, "%s", why);
    pthread_mutex_unlock(&conn->mu);
    if (conn->has_thread) {
        conn_kick(conn);
        pthread_join(conn->thread, NULL);
        conn->has_thread = 0;
    }
}

/* ------------------------------------------------------------------ the I/O thread */

/* The I/O thread found the stream broken: fail the connection. Returns -1. */
static int
conn_io_fail(struct client_conn *conn, int e, const char *text)
{
    if (text == NULL)
        text = e == FORQ_ERR_NOMEM     ? "out of memory"
               : e == FORQ_ERR_TOO_BIG ? "answer frame over the size limit"
                                       : "malformed frame from the server";
    pthread_mutex_lock(&conn->mu);
    conn_fail_locked(conn, "connection to %s lost: %s", conn->addr, text);
    pthread_mutex_unlock(&conn->mu);
    return -1;
}

/*
 * An answer with rid 0 is the server's word on the connection itself (a frame
 * it could not trust), sent just before it hangs up: keep its text as the
 * reason the connection was lost.
 */
static void
conn_io_conn_error(struct client_conn *conn, const uint8_t *body, size_t len)
{
    struct msg_decoder dec;
    struct msg_response resp;

    if (msg_decoder_init(&dec) != 0)
        return;
    if (msg_decode_response(&dec, MSG_OP_PING, body, len, &resp) == 0 && resp.err.code != 0)
        snprintf(conn->last_err, sizeof(conn->last_err), "%s: %.*s", forq_errname(resp.err.code),
                 (int)(resp.err.msg.len > 150 ? 150 : resp.err.msg.len),
                 resp.err.msg.ptr ? resp.err.msg.ptr : "");
    msg_decoder_fini(&dec);
}

/* Answers copied out of the read buffer, handed over under one lock. */
struct conn_io_batch {
    size_t n;
    struct {
        uint64_t rid;
        uint8_t *body;
        size_t len;
    } a[CLIENT_BATCH_MAX];
};

/*
 * Deliver a frame to a posted call's inbox (taking body). Under conn->mu.
 * Without memory for the frame, the call is ended with FORQ_ERR_NOMEM
 * instead (through its preallocated notice) and -1 returned.
 */
static int
conn_io_post_frame(struct client_conn *conn, struct conn_call *call, uint8_t *body, size_t len)
{
    struct conn_frame *fr;

    if ((fr = malloc(sizeof(*fr))) == NULL) {
        if (call->posted)
            (void)conn_tab_take(conn, call->rid);
        conn_call_lost(call, FORQ_ERR_NOMEM);
        return -1;
    }
    fr->tag = call->tag;
    fr->err = 0;
    fr->body = body;
    fr->len = len;
    if (!call->posted) { /* a one-shot call is over: its notice is not needed */
        free(call->lost);
        call->lost = NULL;
    }
    conn_inbox_push(call->inbox, fr);
    return 0;
}

/* Give each answer of the batch to its call; drop answers nobody waits for. */
static void
conn_io_hand_over(struct client_conn *conn, struct conn_io_batch *b)
{
    struct conn_call *call;
    size_t i;

    if (b->n == 0)
        return;
    pthread_mutex_lock(&conn->mu);
    for (i = 0; i < b->n; i++) {
        if ((call = conn_tab_find(conn, b->a[i].rid, 1)) == NULL)
            continue; /* abandoned (timed out) */
        if (call->inbox == NULL) {
            call->body = b->a[i].body;
            call->len = b->a[i].len;
            call->done = 1;
            pthread_cond_signal(&call->cond);
        } else if (conn_io_post_frame(conn, call, b->a[i].body, b->a[i].len) != 0) {
            continue; /* the body is freed below */
        }
        b->a[i].body = NULL;
    }
    pthread_mutex_unlock(&conn->mu);
    for (i = 0; i < b->n; i++)
        free(b->a[i].body);
    b->n = 0;
}

/*
 * Take the complete frames out of the reader into the batch. Returns 0, or
 * the error that makes the stream unusable.
 */
static int
conn_io_collect(struct client_conn *conn, struct frame_reader *rd, struct conn_io_batch *b)
{
    const uint8_t *body;
    uint8_t *copy;
    size_t len;
    uint64_t rid;
    int e;

    while (b->n < CLIENT_BATCH_MAX) {
        if ((e = frame_reader_next(rd, &body, &len)) != 0)
            return e;
        if (body == NULL)
            return 0;
        if ((e = msg_peek_rid(body, len, &rid)) == FORQ_ERR_NOT_FOUND)
            continue; /* not an answer to anything we sent */
        if (e != 0)
            return e;
        if (rid == 0) { /* our rids start at 1 */
            conn_io_conn_error(conn, body, len);
            continue;
        }
        if ((copy = malloc(len)) == NULL)
            return FORQ_ERR_NOMEM;
        memcpy(copy, body, len);
        b->a[b->n].rid = rid;
        b->a[b->n].body = copy;
        b->a[b->n++].len = len;
    }
    return 0;
}

/* Hand each complete frame to its call. Returns 0, or -1 when the stream broke. */
static int
conn_io_deliver(struct client_conn *conn, struct frame_reader *rd)
{
    struct conn_io_batch b;
    int e, full;

    b.n = 0;
    do {
        e = conn_io_collect(conn, rd, &b);
        full = b.n == CLIENT_BATCH_MAX;
        conn_io_hand_over(conn, &b); /* answers before a broken frame still count */
    } while (e == 0 && full);
    return e != 0 ? conn_io_fail(conn, e, NULL) : 0;
}

static int
conn_io_read(struct client_conn *conn, struct frame_reader *rd)
{
    uint8_t *space;
    size_t room;
    ssize_t n;
    int i, e;

    for (i = 0; i < CLIENT_READS_MAX; i++) {
        rd->max_body = atomic_load(&conn->max_in);
        if ((e = frame_reader_space(rd, CLIENT_READ_CHUNK, &space, &room)) != 0)
            return conn_io_fail(conn, e, NULL);
        n = recv(conn->fd, space, room, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (n < 0)
            return conn_io_fail(conn, 0, strerror(errno));
        if (n == 0 && conn->last_err[0] != '\0') {
            char text[256];

            snprintf(text, sizeof(text), "closed by the server (%s)", conn->last_err);
            return conn_io_fail(conn, 0, text);
        }
        if (n == 0)
            return conn_io_fail(conn, 0, "connection closed by the server");
        frame_reader_commit(rd, (size_t)n);
        if (conn_io_deliver(conn, rd) != 0)
            return -1;
        if ((size_t)n < room)
            return 0;
    }
    return 0;
}

/* Drop n sent bytes from the head of the output queue. Under conn->mu. */
static void
conn_out_consume(struct client_conn *conn, size_t n)
{
    struct client_chunk *ch;

    while (n > 0 && (ch = conn->out_head) != NULL) {
        size_t left = ch->len - ch->off;

        if (n < left) {
            ch->off += n;
            return;
        }
        n -= left;
        conn->out_head = ch->next;
        if (conn->out_head == NULL)
            conn->out_tail = NULL;
        free(ch->buf);
        free(ch);
    }
}

/* Send what the output queue holds, as far as the socket takes it. */
static int
conn_io_flush(struct client_conn *conn)
{
    struct iovec iov[CLIENT_IOV_MAX];
    struct msghdr mh;
    struct client_chunk *ch;
    ssize_t n;
    int niov = 0, e;

    pthread_mutex_lock(&conn->mu);
    if (conn->writing || conn->out_head == NULL) {
        pthread_mutex_unlock(&conn->mu);
        return 0;
    }
    conn->writing = 1;
    for (ch = conn->out_head; ch != NULL && niov < CLIENT_IOV_MAX; ch = ch->next, niov++) {
        iov[niov].iov_base = ch->buf + ch->off;
        iov[niov].iov_len = ch->len - ch->off;
    }
    pthread_mutex_unlock(&conn->mu);

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)niov;
    n = sendmsg(conn->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    e = errno;

    pthread_mutex_lock(&conn->mu);
    conn->writing = 0;
    if (n > 0)
        conn_out_consume(conn, (size_t)n);
    else if (n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
        conn_fail_locked(conn, "connection to %s lost: %s", conn->addr, strerror(e));
    n = atomic_load(&conn->dead) ? -1 : 0;
    pthread_mutex_unlock(&conn->mu);
    return (int)n;
}

static void
conn_io_drain_efd(struct client_conn *conn)
{
    uint64_t v;

    (void)!read(conn->efd, &v, sizeof(v));
    pthread_mutex_lock(&conn->mu);
    conn->kicked = 0;
    pthread_mutex_unlock(&conn->mu);
}

static void *
conn_io_main(void *arg)
{
    struct client_conn *conn = arg;
    struct frame_reader rd;
    struct pollfd pfd[2];
    int want_out, stop;

    frame_reader_init(&rd, atomic_load(&conn->max_in));
    for (;;) {
        pthread_mutex_lock(&conn->mu);
        stop = conn->stopping || atomic_load(&conn->dead);
        want_out = conn->out_head != NULL && !conn->writing;
        pthread_mutex_unlock(&conn->mu);
        if (stop)
            break;
        pfd[0].fd = conn->fd;
        pfd[0].events = POLLIN | (want_out ? POLLOUT : 0);
        pfd[1].fd = conn->efd;
        pfd[1].events = POLLIN;
        pfd[0].revents = pfd[1].revents = 0;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            conn_io_fail(conn, 0, strerror(errno));
            break;
        }
        if (pfd[1].revents)
            conn_io_drain_efd(conn);
        if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && conn_io_read(conn, &rd) != 0)
            break;
        if ((pfd[0].revents & POLLOUT) && conn_io_flush(conn) != 0)
            break;
    }
    frame_reader_fini(&rd);
    return NULL;
}

/* Start the I/O thread with every signal blocked, so signals go to the application. */
static int
conn_start(struct client_conn *conn)
{
    sigset_t all, old;
    int e;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&conn->thread, NULL, conn_io_main, conn);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0)
        return client_seterr(FORQ_ERR_SYSTEM, "cannot start the I/O thread: %s", strerror(e));
    conn->has_thread = 1;
    return 0;
}

/* ------------------------------------------------------------------ calls */

/*
 * Queue the frame in sb, from byte off on, at the head or the tail; the queue
 * takes sb's buffer (no copy) and leaves sb empty. Under conn->mu.
 */
static int
conn_out_push(struct client_conn *conn, msgpack_sbuffer *sb, size_t off, int head)
{
    struct client_chunk *ch;

    if ((ch = malloc(sizeof(*ch))) == NULL)
        return FORQ_ERR_NOMEM;
    ch->len = sb->size;
    ch->off = off;
    ch->buf = msgpack_sbuffer_release(sb);
    ch->next = NULL;
    if (head) {
        ch->next = conn->out_head;
        conn->out_head = ch;
        if (conn->out_tail == NULL)
            conn->out_tail = ch;
    } else {
        if (conn->out_tail != NULL)
            conn->out_tail->next = ch;
        else
            conn->out_head = ch;
        conn->out_tail = ch;
    }
    return 0;
}

/*
 * The caller holds the writing token and the queue was empty: try to send the
 * frame at once; queue what the socket did not take and wake the I/O thread.
 */
static void
conn_send_direct(struct client_conn *conn, msgpack_sbuffer *sb)
{
    size_t len = sb->size;
    ssize_t n;
    int e, kick = 0;

    n = send(conn->fd, sb->data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    e = errno;
    pthread_mutex_lock(&conn->mu);
    conn->writing = 0;
    if (n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
        conn_fail_locked(conn, "connection to %s lost: %s", conn->addr, strerror(e));
        kick = 1;
    } else if ((size_t)(n < 0 ? 0 : n) < len &&
               conn_out_push(conn, sb, n < 0 ? 0 : (size_t)n, 1) != 0) {
        /* Part of a frame is on the wire and the rest cannot be kept. */
        conn_fail_locked(conn, "connection to %s lost: out of memory", conn->addr);
        kick = 1;
    }
    if (!kick && conn->out_head != NULL && !conn->kicked)
        kick = conn->kicked = 1;
    pthread_mutex_unlock(&conn->mu);
    if (kick)
        conn_kick(conn);
}

/*
 * Register the n calls (none: nobody waits for the answer) and send (or
 * queue) their frames, the content of sb, in one piece (the output queue may
 * take sb over). Returns 0 once the calls are registered (their outcomes then
 * come through conn_wait or their inboxes), FORQ_ERR_DISCONNECTED when the
 * connection was already dead (nothing was sent and sb is intact: safe to
 * retry elsewhere), or FORQ_ERR_NOMEM (nothing registered, nothing sent).
 */
static int
conn_send_calls(struct client_conn *conn, struct conn_call *const *calls, size_t n,
                msgpack_sbuffer *sb)
{
    int direct = 0;
    size_t i;

    pthread_mutex_lock(&conn->mu);
    if (atomic_load(&conn->dead)) {
        pthread_mutex_unlock(&conn->mu);
        return FORQ_ERR_DISCONNECTED;
    }
    for (i = 0; i < n && conn_tab_add(conn, calls[i]) == 0; i++)
        calls[i]->posted = 1;
    if (i == n && conn->out_head == NULL && !conn->writing) {
        conn->writing = direct = 1;
    } else if (i < n || conn_out_push(conn, sb, 0, 0) != 0) {
        while (i-- > 0) {
            (void)conn_tab_take(conn, calls[i]->rid);
            calls[i]->posted = 0;
        }
        pthread_mutex_unlock(&conn->mu);
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&conn->mu);
    if (direct)
        conn_send_direct(conn, sb);
    return 0;
}

static int
conn_send(struct client_conn *conn, struct conn_call *call, msgpack_sbuffer *sb)
{
    return conn_send_calls(conn, &call, call != NULL, sb);
}

/*
 * Wait for a registered call until deadline (monotonic ms; < 0: no limit).
 * Returns 0 with call->body set, FORQ_ERR_DISCONNECTED or FORQ_ERR_TIMEOUT
 * (the call is then unregistered, so a late answer is dropped).
 */
static int
conn_wait(struct client_conn *conn, struct conn_call *call, int64_t deadline)
{
    struct timespec ts;
    int r = 0;

    conn_deadline_ts(deadline, &ts);
    pthread_mutex_lock(&conn->mu);
    while (!call->done) {
        if (deadline < 0) {
            pthread_cond_wait(&call->cond, &conn->mu);
        } else if (pthread_cond_timedwait(&call->cond, &conn->mu, &ts) == ETIMEDOUT &&
                   !call->done) {
            (void)conn_tab_take(conn, call->rid);
            r = client_seterr(FORQ_ERR_TIMEOUT, "no answer from %s in time", conn->addr);
            break;
        }
    }
    if (r == 0 && call->err != 0)
        r = client_seterr(call->err, "%s", conn->why);
    pthread_mutex_unlock(&conn->mu);
    return r;
}

int
conn_check_frame(struct client_conn *conn, size_t frame_len)
{
    if (frame_len - FRAME_HDR_LEN > conn->max_frame)
        return client_seterr(FORQ_ERR_TOO_BIG,
                             "request of %zu bytes is over the server's "
                             "limit of %llu bytes",
                             frame_len - FRAME_HDR_LEN, (unsigned long long)conn->max_frame);
    return 0;
}

/* Is the request in sb over the server's frame limit? */
static int
conn_check_size(struct client_conn *conn, const msgpack_sbuffer *sb)
{
    return conn_check_frame(conn, sb->size);
}

int
conn_post(struct client_conn *conn, msgpack_sbuffer *sb, struct conn_call *call)
{
    int r;

    call->next = NULL;
    call->posted = 0;
    if ((r = conn_check_size(conn, sb)) != 0)
        return r;
    if ((call->lost = calloc(1, sizeof(*call->lost))) == NULL)
        return client_seterr(FORQ_ERR_NOMEM, "out of memory");
    if ((r = conn_send(conn, call, sb)) != 0) {
        free(call->lost);
        call->lost = NULL;
    }
    return r;
}

int
conn_post_many(struct client_conn *conn, msgpack_sbuffer *sb, struct conn_call *const *calls,
               size_t n)
{
    size_t i;
    int r = 0;

    for (i = 0; i < n; i++) {
        calls[i]->next = NULL;
        calls[i]->posted = 0;
        if ((calls[i]->lost = calloc(1, sizeof(*calls[i]->lost))) == NULL) {
            r = client_seterr(FORQ_ERR_NOMEM, "out of memory");
            break;
        }
    }
    if (r == 0)
        r = conn_send_calls(conn, calls, n, sb);
    if (r != 0)
        while (i-- > 0) {
            free(calls[i]->lost);
            calls[i]->lost = NULL;
        }
    return r;
}

void
conn_unpost(struct client_conn *conn, struct conn_call *call)
{
    pthread_mutex_lock(&conn->mu);
    if (call->posted)
        (void)conn_tab_take(conn, call->rid);
    pthread_mutex_unlock(&conn->mu);
    /* Delivered, it belongs to the inbox; otherwise it is still ours. */
    free(call->lost);
    call->lost = NULL;
}

int
conn_send_only(struct client_conn *conn, msgpack_sbuffer *sb)
{
    int r;

    if ((r = conn_check_size(conn, sb)) != 0)
        return r;
    return conn_send(conn, NULL, sb);
}

/* ------------------------------------------------------------------ inboxes */

int
conn_inbox_init(struct conn_inbox *ib)
{
    pthread_once(&conn_once, conn_once_init);
    memset(ib, 0, sizeof(*ib));
    if (pthread_mutex_init(&ib->mu, NULL) != 0)
        return client_seterr(FORQ_ERR_SYSTEM, "cannot create a mutex");
    if (pthread_cond_init(&ib->cond, &conn_condattr) != 0) {
        pthread_mutex_destroy(&ib->mu);
        return client_seterr(FORQ_ERR_SYSTEM, "cannot create a condition variable");
    }
    return 0;
}

void
conn_inbox_fini(struct conn_inbox *ib)
{
    struct conn_frame *fr;

    while ((fr = ib->head) != NULL) {
        ib->head = fr->next;
        conn_frame_free(fr);
    }
    pthread_cond_destroy(&ib->cond);
    pthread_mutex_destroy(&ib->mu);
}

/* Wait for a frame until deadline, then take the first one or (all) every one. */
static int
conn_inbox_take(struct conn_inbox *ib, int64_t deadline, struct conn_frame **fr, int all)
{
    struct timespec ts;
    int r = 0;

    *fr = NULL;
    conn_deadline_ts(deadline, &ts);
    pthread_mutex_lock(&ib->mu);
    while (ib->head == NULL && r == 0) {
        if (deadline < 0)
            pthread_cond_wait(&ib->cond, &ib->mu);
        else if (pthread_cond_timedwait(&ib->cond, &ib->mu, &ts) == ETIMEDOUT &&
                 ib->head == NULL)
            r = FORQ_ERR_TIMEOUT;
    }
    if (r == 0) {
        *fr = ib->head;
        if (all || (ib->head = (*fr)->next) == NULL)
            ib->head = ib->tail = NULL;
        if (!all)
            (*fr)->next = NULL;
    }
    pthread_mutex_unlock(&ib->mu);
    return r;
}

int
conn_inbox_next(struct conn_inbox *ib, int64_t deadline, struct conn_frame **fr)
{
    return conn_inbox_take(ib, deadline, fr, 0);
}

int
conn_inbox_next_all(struct conn_inbox *ib, int64_t deadline, struct conn_frame **list)
{
    return conn_inbox_take(ib, deadline, list, 1);
}

int
conn_inbox_wake(struct conn_inbox *ib)
{
    struct conn_frame *fr;

    if ((fr = calloc(1, sizeof(*fr))) == NULL)
        return FORQ_ERR_NOMEM;
    conn_inbox_push(ib, fr);
    return 0;
}

void
conn_frame_free(struct conn_frame *fr)
{
    if (fr == NULL)
        return;
    free(fr->body);
    free(fr);
}

int
conn_exchange(struct client_conn *conn, msgpack_sbuffer *sb, uint64_t rid, int64_t deadline,
              uint8_t **body, size_t *len, int *sent)
{
    struct conn_call call;
    int r;

    *sent = 0;
    *body = NULL;
    *len = 0;
    pthread_once(&conn_once, conn_once_init);
    memset(&call, 0, sizeof(call));
    call.rid = rid;
    if ((r = conn_check_size(conn, sb)) != 0)
        return r;
    pthread_cond_init(&call.cond, &conn_condattr);
    if ((r = conn_send(conn, &call, sb)) == 0) {
        *sent = 1;
        r = conn_wait(conn, &call, deadline);
    }
    pthread_cond_destroy(&call.cond);
    if (r == 0) {
        *body = call.body;
        *len = call.len;
    } else {
        free(call.body);
    }
    return r;
}

int
conn_open(const struct addr *a, const char *name, int64_t timeout_ms, struct client_conn **out)
{
    struct client_conn *conn = NULL;
    int fd = -1, r;

    *out = NULL;
    if ((r = conn_sock_connect(a, name, timeout_ms, &fd)) != 0)
        return r;
    if ((r = conn_new(name, &conn)) != 0) {
        close(fd);
        return r;
    }
    conn->fd = fd;
    if ((r = conn_start(conn)) != 0) {
        conn_release(conn);
        return r;
    }
    *out = conn;
    return 0;
}

int
conn_is_dead(struct client_conn *conn)
{
    return atomic_load(&conn->dead);
}

uint64_t
conn_max_frame(const struct client_conn *conn)
{
    return conn->max_frame;
}

void
conn_set_max_frame(struct client_conn *conn, uint64_t max_frame)
{
    if (max_frame == 0)
        return;
    conn->max_frame = max_frame;
    /* Answers carry results that may be larger than requests: leave room. */
    if (max_frame < SIZE_MAX / 2 && max_frame + (1u << 20) > CLIENT_MIN_IN_FRAME)
        atomic_store(&conn->max_in, (size_t)max_frame + (1u << 20));
}

int
conn_seterr_why(struct client_conn *conn, int code)
{
    pthread_mutex_lock(&conn->mu);
    code = client_seterr(code, "%s", conn->why);
    pthread_mutex_unlock(&conn->mu);
    return code;
}
