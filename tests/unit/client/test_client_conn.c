/*
 * test_client_conn.c — libforq against a real socket: a tiny server thread
 * in this file listens on 127.0.0.1:0, speaks the wire format through proto/
 * and behaves as each test needs (answer, hold, answer out of order, close).
 * Covers the handshake, routing by rid, many threads on one client, cached
 * futures, failed jobs, disconnects failing pending calls promptly,
 * reconnects, close, and the local grace deadline of WAIT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "forq.h"
#include "frame.h"
#include "msg.h"
#include "test_tsrv.h"

/* ------------------------------------------------------------------ the test server */

/* cmocka's asserts may only fail on the test's own thread; the server aborts. */
struct tsrv;
/* Handle one request; return 1 to close the connection at once. */
typedef int (*tsrv_handler)(struct tsrv *s, int fd, const struct msg_request *req);

struct tsrv {
    int lfd;
    char addr[64];
    pthread_t thread;
    tsrv_handler handle;
    atomic_int conns;  /* connections accepted so far */
    atomic_int cur_fd; /* connection being served, or -1 */
    atomic_int stop;
    atomic_int ops[MSG_OP__COUNT]; /* requests seen, per op */
    /* scenario state: server thread only */
    struct {
        uint64_t rid, id;
    } held[16];
    int nheld;
    uint64_t next_id;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answer a WAIT for id: succeeded with result "r<id>". */
static void
tsrv_reply_job(int fd, uint64_t rid, uint64_t id)
{
    struct msg_response r;
    char res[32];

    memset(&r, 0, sizeof(r));
    snprintf(res, sizeof(res), "r%llu", (unsigned long long)id);
    r.rid = rid;
    r.job.id = id;
    r.job.state = FORQ_STATE_SUCCEEDED;
    r.job.task = msg_str_c("upper");
    r.job.queue = msg_str_c("default");
    r.job.result = msg_str_c(res);
    r.job.result_size = strlen(res);
    tsrv_reply(fd, MSG_OP_WAIT, &r);
}

/* The well-behaved server most tests start from. */
static int
tsrv_default(struct tsrv *s, int fd, const struct msg_request *req)
{
    struct msg_response r;

    memset(&r, 0, sizeof(r));
    r.rid = req->rid;
    switch (req->op) {
    case MSG_OP_HELLO:
        r.hello.version = MSG_PROTO_VERSION;
        r.hello.server = msg_str_c("test-server");
        r.hello.max_frame = 1 << 20;
        break;
    case MSG_OP_SUBMIT:
        r.id = ++s->next_id;
        break;
    case MSG_OP_WAIT:
        tsrv_reply_job(fd, req->rid, req->u.wait.id);
        return 0;
    case MSG_OP_STATUS:
    case MSG_OP_CANCEL:
        r.job.id = req->u.status.id;
        r.job.state = req->op == MSG_OP_STATUS ? FORQ_STATE_QUEUED : FORQ_STATE_CANCELLED;
        r.job.task = msg_str_c("upper");
        r.job.queue = msg_str_c("a-queue-name-that-is-much-longer-than-sixty-four-bytes-"
                                "to-check-truncation");
        r.job.priority = -3;
        r.job.created_us = 1700000000000000;
        break;
    default:
        break;
    }
    tsrv_reply(fd, req->op, &r);
    return 0;
}

static void
tsrv_serve(struct tsrv *s, int fd)
{
    struct frame_reader rd;
    struct msg_decoder dec;
    struct msg_request req;
    const uint8_t *body;
    uint8_t *space;
    size_t len, room;
    ssize_t n;

    frame_reader_init(&rd, 1 << 20);
    TSRV_CHECK(msg_decoder_init(&dec) == 0);
    for (;;) {
        if (frame_reader_space(&rd, 4096, &space, &room) != 0)
            break;
        if ((n = read(fd, space, room)) <= 0)
            break;
        frame_reader_commit(&rd, (size_t)n);
        while (frame_reader_next(&rd, &body, &len) == 0 && body != NULL) {
            TSRV_CHECK(msg_decode_request(&dec, body, len, &req) == 0);
            atomic_fetch_add(&s->ops[req.op], 1);
            if (s->handle(s, fd, &req) != 0)
                goto out;
        }
    }
out:
    msg_decoder_fini(&dec);
    frame_reader_fini(&rd);
}

static void *
tsrv_main(void *arg)
{
    struct tsrv *s = arg;
    int fd;

    while (!atomic_load(&s->stop)) {
        if ((fd = accept(s->lfd, NULL, NULL)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        atomic_fetch_add(&s->conns, 1);
        atomic_store(&s->cur_fd, fd);
        tsrv_serve(s, fd);
        atomic_store(&s->cur_fd, -1);
        close(fd);
    }
    return NULL;
}

static struct tsrv *
tsrv_start(tsrv_handler handle)
{
    struct tsrv *s = calloc(1, sizeof(*s));
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int one = 1;

    assert_non_null(s);
    s->handle = handle;
    atomic_init(&s->cur_fd, -1);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(s->addr, sizeof(s->addr), "tcp://127.0.0.1:%d", ntohs(sin.sin_port));
    assert_int_equal(pthread_create(&s->thread, NULL, tsrv_main, s), 0);
    return s;
}

/* Stop accepting and drop the current connection, as a killed daemon would. */
static void
tsrv_kill(struct tsrv *s)
{
    int fd;

    if (atomic_exchange(&s->stop, 1))
        return;
    shutdown(s->lfd, SHUT_RDWR);
    if ((fd = atomic_load(&s->cur_fd)) >= 0)
        shutdown(fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

static void
tsrv_free(struct tsrv *s)
{
    tsrv_kill(s);
    free(s);
}

/* ------------------------------------------------------------------ helpers */

struct waiter {
    forq_future *f;
    int64_t timeout_ms;
    int r;
    char data[64];
    int64_t done_ms; /* when the call returned */
    pthread_t t;
};

static void *
waiter_main(void *arg)
{
    struct waiter *w = arg;
    const void *data;
    size_t len;

    w->r = forq_future_result(w->f, w->timeout_ms, &data, &len);
    if (w->r == 0)
        snprintf(w->data, sizeof(w->data), "%.*s", (int)len, (const char *)data);
    w->done_ms = now_ms();
    return NULL;
}

static void
waiter_start(struct waiter *w, forq_client *c, uint64_t id, int64_t timeout_ms)
{
    memset(w, 0, sizeof(*w));
    assert_int_equal(forq_future_from_id(c, id, &w->f), 0);
    w->timeout_ms = timeout_ms;
    assert_int_equal(pthread_create(&w->t, NULL, waiter_main, w), 0);
}

/* Wait until the server has seen n requests of op (or fail after 5 s). */
static void
await_ops(struct tsrv *s, int op, int n)
{
    int64_t end = now_ms() + 5000;

    while (atomic_load(&s->ops[op]) < n) {
        assert_true(now_ms() < end);
        usleep(1000);
    }
}

/* ------------------------------------------------------------------ tests */

static void
test_roundtrip(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_default);
    struct forq_job_info ji;
    struct forq_stats *st;
    forq_client *c;
    forq_future *f;
    const void *data;
    size_t len;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_ping(c), 0);
    assert_int_equal(forq_submit(c, "upper", "hello", 5, NULL, &f), 0);
    assert_int_equal(forq_future_id(f), 1);
    assert_int_equal(forq_future_result(f, -1, &data, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(data, "r1", 2);
    assert_null(forq_future_error(f));
    forq_future_free(f);

    assert_int_equal(forq_status(c, 7, &ji), 0);
    assert_int_equal(ji.id, 7);
    assert_int_equal(ji.state, FORQ_STATE_QUEUED);
    assert_string_equal(ji.task, "upper");
    assert_int_equal(strlen(ji.queue), FORQ_NAME_MAX); /* truncated, terminated */
    assert_int_equal(ji.priority, -3);
    assert_true(ji.created_us == 1700000000000000);
    assert_null(ji.error_msg);
    forq_job_info_clear(&ji);

    assert_int_equal(forq_cancel(c, 7), 0);
    assert_int_equal(forq_stats(c, &st), 0);
    assert_int_equal(st->nqueues, 0);
    forq_stats_free(st);
    forq_client_free(c);
    tsrv_free(s);
}

#define CONC_THREADS 8
#define CONC_JOBS    200

static void *
conc_main(void *arg)
{
    forq_client *c = arg;
    forq_future *f;
    const void *data;
    size_t len;
    char want[32];
    long bad = 0;

    for (int i = 0; i < CONC_JOBS; i++) {
        if (forq_submit(c, "upper", "x", 1, NULL, &f) != 0) {
            bad++;
            continue;
        }
        snprintf(want, sizeof(want), "r%llu", (unsigned long long)forq_future_id(f));
        if (forq_future_result(f, 10000, &data, &len) != 0 || len != strlen(want) ||
            memcmp(data, want, len) != 0)
            bad++;
        forq_future_free(f);
    }
    return (void *)bad;
}

static void
test_many_threads_one_client(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_default);
    pthread_t t[CONC_THREADS];
    forq_client *c;
    void *bad;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, conc_main, c), 0);
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], &bad);
        assert_int_equal((long)bad, 0);
    }
    assert_int_equal(atomic_load(&s->ops[MSG_OP_SUBMIT]), CONC_THREADS * CONC_JOBS);
    assert_int_equal(atomic_load(&s->conns), 1); /* one connection for everyone */
    forq_client_free(c);
    tsrv_free(s);
}

/* Hold WAITs until two have come, then answer them newest first. */
static int
tsrv_reverse(struct tsrv *s, int fd, const struct msg_request *req)
{
    if (req->op != MSG_OP_WAIT)
        return tsrv_default(s, fd, req);
    s->held[s->nheld].rid = req->rid;
    s->held[s->nheld++].id = req->u.wait.id;
    if (s->nheld == 2) {
        tsrv_reply_job(fd, s->held[1].rid, s->held[1].id);
        tsrv_reply_job(fd, s->held[0].rid, s->held[0].id);
        s->nheld = 0;
    }
    return 0;
}

static void
test_out_of_order_answers(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_reverse);
    struct waiter a, b;
    forq_client *c;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    waiter_start(&a, c, 10, -1);
    await_ops(s, MSG_OP_WAIT, 1);
    waiter_start(&b, c, 20, -1);
    pthread_join(a.t, NULL);
    pthread_join(b.t, NULL);
    assert_int_equal(a.r, 0);
    assert_string_equal(a.data, "r10");
    assert_int_equal(b.r, 0);
    assert_string_equal(b.data, "r20");
    forq_future_free(a.f);
    forq_future_free(b.f);
    forq_client_free(c);
    tsrv_free(s);
}

static void
test_future_outcome_cached(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_default);
    forq_client *c;
    forq_future *f;
    const void *d1, *d2;
    size_t len;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_future_from_id(c, 5, &f), 0);
    assert_int_equal(atomic_load(&s->ops[MSG_OP_WAIT]), 0); /* from_id makes no request */
    assert_int_equal(forq_future_done(f), 1);
    assert_int_equal(forq_future_result(f, -1, &d1, &len), 0);
    assert_int_equal(forq_future_result(f, 0, &d2, NULL), 0);
    assert_ptr_equal(d1, d2);
    assert_int_equal(forq_future_done(f), 1);
    assert_int_equal(forq_future_cancel(f), FORQ_ERR_STATE);
    assert_int_equal(atomic_load(&s->ops[MSG_OP_WAIT]), 1);
    assert_int_equal(atomic_load(&s->ops[MSG_OP_CANCEL]), 0);
    forq_future_free(f);
    forq_client_free(c);
    tsrv_free(s);
}

/* Job 1 failed, job 2 was cancelled, job 3 does not exist, job 4 still runs. */
static int
tsrv_outcomes(struct tsrv *s, int fd, const struct msg_request *req)
{
    struct msg_response r;

    if (req->op != MSG_OP_WAIT)
        return tsrv_default(s, fd, req);
    memset(&r, 0, sizeof(r));
    r.rid = req->rid;
    r.job.id = req->u.wait.id;
    switch (req->u.wait.id) {
    case 1:
        r.job.state = FORQ_STATE_FAILED;
        r.job.error.code = FORQ_ERR_TASK_FAILED;
        r.job.error.msg = msg_str_c("boom");
        break;
    case 2:
        r.job.state = FORQ_STATE_CANCELLED;
        break;
    case 3:
        tsrv_error(fd, req->rid, FORQ_ERR_NOT_FOUND, "no job 3");
        return 0;
    default:
        tsrv_error(fd, req->rid, FORQ_ERR_TIMEOUT, "job 4 is still running");
        return 0;
    }
    tsrv_reply(fd, MSG_OP_WAIT, &r);
    return 0;
}

static void
test_job_outcomes(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_outcomes);
    forq_client *c;
    forq_future *f;
    const void *data = &data;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);

    assert_int_equal(forq_future_from_id(c, 1, &f), 0);
    assert_int_equal(forq_future_result(f, -1, &data, NULL), FORQ_ERR_TASK_FAILED);
    assert_null(data);
    assert_string_equal(forq_future_error(f), "boom");
    assert_string_equal(forq_errmsg(), "boom");
    assert_int_equal(forq_future_done(f), 1);
    forq_future_free(f);

    assert_int_equal(forq_future_from_id(c, 2, &f), 0);
    assert_int_equal(forq_future_result(f, -1, NULL, NULL), FORQ_ERR_CANCELLED);
    assert_string_equal(forq_future_error(f), forq_strerror(FORQ_ERR_CANCELLED));
    assert_int_equal(forq_future_cancel(f), 0); /* already cancelled counts */
    forq_future_free(f);

    assert_int_equal(forq_future_from_id(c, 3, &f), 0);
    assert_int_equal(forq_future_result(f, -1, NULL, NULL), FORQ_ERR_NOT_FOUND);
    assert_string_equal(forq_errmsg(), "no job 3");
    assert_null(forq_future_error(f));
    forq_future_free(f);

    assert_int_equal(forq_future_from_id(c, 4, &f), 0);
    assert_int_equal(forq_future_result(f, 50, NULL, NULL), FORQ_ERR_TIMEOUT);
    assert_int_equal(forq_future_done(f), 0);
    forq_future_free(f);
    forq_client_free(c);
    tsrv_free(s);
}

/* Never answer WAIT; close the first connection when a PING comes. */
static int
tsrv_hold_then_close(struct tsrv *s, int fd, const struct msg_request *req)
{
    if (req->op == MSG_OP_WAIT)
        return 0;
    if (req->op == MSG_OP_PING && atomic_load(&s->conns) == 1)
        return 1;
    return tsrv_default(s, fd, req);
}

static void
test_disconnect_fails_pending_then_reconnects(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_hold_then_close);
    struct waiter w[3];
    forq_client *c;
    int64_t t0;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    for (int i = 0; i < 3; i++)
        waiter_start(&w[i], c, (uint64_t)i + 1, -1);
    await_ops(s, MSG_OP_WAIT, 3);
    t0 = now_ms();
    assert_int_equal(forq_ping(c), FORQ_ERR_DISCONNECTED); /* the server hangs up on it */
    assert_non_null(strstr(forq_errmsg(), "lost"));
    for (int i = 0; i < 3; i++) {
        pthread_join(w[i].t, NULL);
        assert_int_equal(w[i].r, FORQ_ERR_DISCONNECTED);
        assert_true(w[i].done_ms - t0 < 1000); /* promptly, not at some timeout */
        forq_future_free(w[i].f);
    }
    /* The next call reconnects by itself. */
    assert_int_equal(forq_ping(c), 0);
    assert_int_equal(atomic_load(&s->conns), 2);
    forq_client_free(c);
    tsrv_free(s);
}

static void
test_server_gone(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_hold_then_close);
    struct waiter w;
    forq_client *c;
    int64_t t0;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    waiter_start(&w, c, 1, -1);
    await_ops(s, MSG_OP_WAIT, 1);
    t0 = now_ms();
    tsrv_kill(s);
    pthread_join(w.t, NULL);
    assert_int_equal(w.r, FORQ_ERR_DISCONNECTED);
    assert_true(w.done_ms - t0 < 1000);
    /* Reconnecting fails: the call says so, and nothing hangs. */
    assert_int_equal(forq_ping(c), FORQ_ERR_DISCONNECTED);
    assert_non_null(strstr(forq_errmsg(), "Connection refused"));
    assert_int_equal(forq_future_result(w.f, 0, NULL, NULL), FORQ_ERR_DISCONNECTED);
    forq_client_free(c);
    forq_future_free(w.f); /* futures may outlive the client */
    tsrv_free(s);
}

static void
test_close_fails_pending(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_hold_then_close);
    struct waiter w;
    forq_client *c;
    forq_future *done, *f;
    int64_t t0;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_submit(c, "upper", NULL, 0, NULL, &done), 0);
    waiter_start(&w, c, 1, -1);
    await_ops(s, MSG_OP_WAIT, 1);
    t0 = now_ms();
    forq_client_close(c);
    pthread_join(w.t, NULL);
    assert_int_equal(w.r, FORQ_ERR_DISCONNECTED);
    assert_true(w.done_ms - t0 < 1000);
    /* Later calls: invalid. */
    assert_int_equal(forq_ping(c), FORQ_ERR_INVALID);
    assert_int_equal(forq_future_result(w.f, 0, NULL, NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_future_from_id(c, 1, &f), FORQ_ERR_INVALID);
    assert_null(f);
    forq_client_close(c); /* twice is fine */
    forq_client_free(c);
    forq_future_free(w.f);
    forq_future_free(done);
    tsrv_free(s);
}

/* Never answer WAIT until a PING comes; then answer the held WAIT late. */
static int
tsrv_late(struct tsrv *s, int fd, const struct msg_request *req)
{
    if (req->op == MSG_OP_WAIT) {
        s->held[0].rid = req->rid;
        s->held[0].id = req->u.wait.id;
        s->nheld = 1;
        return 0;
    }
    if (req->op == MSG_OP_PING && s->nheld == 1)
        tsrv_reply_job(fd, s->held[0].rid, s->held[0].id);
    return tsrv_default(s, fd, req);
}

static void
test_wait_local_grace(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_late);
    forq_client *c;
    forq_future *f;
    int64_t t0, dt;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_future_from_id(c, 9, &f), 0);
    t0 = now_ms();
    assert_int_equal(forq_future_result(f, 100, NULL, NULL), FORQ_ERR_TIMEOUT);
    dt = now_ms() - t0;
    assert_true(dt >= 2000 && dt < 4000); /* timeout + the 2 s grace */
    /* The late answer is dropped; the connection goes on. */
    assert_int_equal(forq_ping(c), 0);
    assert_int_equal(forq_ping(c), 0);
    assert_int_equal(atomic_load(&s->conns), 1);
    forq_future_free(f);
    forq_client_free(c);
    tsrv_free(s);
}

static int
tsrv_bad_hello(struct tsrv *s, int fd, const struct msg_request *req)
{
    if (req->op != MSG_OP_HELLO)
        return tsrv_default(s, fd, req);
    if (atomic_load(&s->conns) == 1) {
        tsrv_error(fd, req->rid, FORQ_ERR_VERSION, "version 1 is not supported");
        return 0;
    }
    return 1; /* second try: hang up during the handshake */
}

static void
test_handshake_refused(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_bad_hello);
    forq_client *c = (forq_client *)&c;
    char want[128];

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), FORQ_ERR_VERSION);
    assert_null(c);
    assert_string_equal(forq_errmsg(), "version 1 is not supported");
    assert_int_equal(forq_connect(s->addr, &c), FORQ_ERR_CONNECT);
    assert_null(c);
    snprintf(want, sizeof(want), "connect %s: connection closed during the handshake", s->addr);
    assert_string_equal(forq_errmsg(), want);
    tsrv_free(s);
}

static void
test_too_big_for_server(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_default);
    size_t n = (1 << 20) + 1;
    char *big = calloc(1, n);
    forq_client *c;
    forq_future *f;

    (void)state;
    assert_non_null(big);
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_submit(c, "upper", big, n, NULL, &f), FORQ_ERR_TOO_BIG);
    assert_null(f);
    assert_int_equal(atomic_load(&s->ops[MSG_OP_SUBMIT]), 0); /* refused locally */
    assert_int_equal(forq_ping(c), 0);
    free(big);
    forq_client_free(c);
    tsrv_free(s);
}

/* On PING: say the connection is broken (rid 0, as for an untrusted frame), hang up. */
static int
tsrv_rid0(struct tsrv *s, int fd, const struct msg_request *req)
{
    if (req->op != MSG_OP_PING)
        return tsrv_default(s, fd, req);
    tsrv_error(fd, 0, FORQ_ERR_PROTOCOL, "frame too strange");
    return 1;
}

static void
test_server_reason_kept(void **state)
{
    struct tsrv *s = tsrv_start(tsrv_rid0);
    forq_client *c;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_ping(c), FORQ_ERR_DISCONNECTED);
    assert_non_null(
        strstr(forq_errmsg(), "lost: closed by the server (protocol: frame too strange)"));
    forq_client_free(c);
    tsrv_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_many_threads_one_client),
        cmocka_unit_test(test_out_of_order_answers),
        cmocka_unit_test(test_future_outcome_cached),
        cmocka_unit_test(test_job_outcomes),
        cmocka_unit_test(test_disconnect_fails_pending_then_reconnects),
        cmocka_unit_test(test_server_gone),
        cmocka_unit_test(test_close_fails_pending),
        cmocka_unit_test(test_wait_local_grace),
        cmocka_unit_test(test_handshake_refused),
        cmocka_unit_test(test_too_big_for_server),
        cmocka_unit_test(test_server_reason_kept),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
