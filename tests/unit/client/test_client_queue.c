/*
 * test_client_queue.c — libforq's job-control calls: queue info / pause /
 * resume / set / join, cancel of a running job, and the new job fields in a
 * STATUS snapshot. Bad arguments are refused locally, without a server; the
 * rest talks to a tiny server thread in this file (127.0.0.1:0) that records
 * what each request carried and answers from it.
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
#include <unistd.h>

#include <cmocka.h>

#include "forq.h"
#include "frame.h"
#include "msg.h"
#include "test_tsrv.h"

/* ------------------------------------------------------------------ without a server */

static void
test_queue_set_needs_a_change(void **state)
{
    struct forq_queue_stats q;

    (void)state;
    memset(&q, 0xa5, sizeof(q));
    assert_int_equal(forq_queue_set(NULL, "jobs", -1, NULL, &q), FORQ_ERR_INVALID);
    assert_non_null(strstr(forq_errmsg(), "limit"));
    assert_string_equal(q.name, ""); /* out is cleared on entry */
    assert_int_equal(forq_queue_set(NULL, "jobs", -1, "random", NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(forq_errmsg(), "fifo"));
    assert_int_equal(forq_queue_set(NULL, "jobs", MSG_QUEUE_LIMIT_MAX + 1, NULL, NULL),
                     FORQ_ERR_INVALID);
}

static void
test_queue_calls_without_client(void **state)
{
    struct forq_queue_stats q;

    (void)state;
    memset(&q, 0xa5, sizeof(q));
    assert_int_equal(forq_queue_info(NULL, "jobs", &q), FORQ_ERR_INVALID);
    assert_int_equal(q.queued, 0);
    assert_int_equal(forq_queue_pause(NULL, "jobs", NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_resume(NULL, "jobs", NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_set(NULL, "jobs", 2, "lifo", NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_join(NULL, "jobs", 0), FORQ_ERR_INVALID);
    assert_int_equal(forq_cancel_running(NULL, 1), FORQ_ERR_INVALID);
}

/* ------------------------------------------------------------------ the test server */

/* What the last requests carried; under mu (the server writes, the test reads). */
struct tsrv_seen {
    char action[32];
    int64_t limit;
    char order[32];
    int64_t join_timeout;
    int cancel_running;
    int queue_ops; /* QUEUE and JOIN requests received */
};

struct tsrv {
    int lfd;
    char addr[64];
    pthread_t thread;
    pthread_mutex_t mu;
    struct tsrv_seen seen;
    /* the queue's state, server thread only */
    int paused;
    uint32_t limit;
    char order[8];
};

static void
tsrv_queue(struct tsrv *s, int fd, const struct msg_request *req)
{
    const struct msg_queue_req *q = &req->u.queue;
    struct msg_response r;

    pthread_mutex_lock(&s->mu);
    snprintf(s->seen.action, sizeof(s->seen.action), "%.*s", (int)q->action.len, q->action.ptr);
    snprintf(s->seen.order, sizeof(s->seen.order), "%.*s", (int)q->order.len, q->order.ptr);
    s->seen.limit = q->limit;
    s->seen.queue_ops++;
    pthread_mutex_unlock(&s->mu);
    if (msg_str_eq(q->action, "pause"))
        s->paused = 1;
    else if (msg_str_eq(q->action, "resume"))
        s->paused = 0;
    else if (msg_str_eq(q->action, "set")) {
        if (q->limit >= 0)
            s->limit = (uint32_t)q->limit;
        if (q->order.len > 0)
            snprintf(s->order, sizeof(s->order), "%.*s", (int)q->order.len, q->order.ptr);
    } else if (!msg_str_eq(q->action, "info")) {
        tsrv_error(fd, req->rid, FORQ_ERR_BAD_REQUEST, "unknown action");
        return;
    }
    memset(&r, 0, sizeof(r));
    r.rid = req->rid;
    r.queue.name = q->queue;
    r.queue.queued = 3;
    r.queue.scheduled = 2;
    r.queue.running = 1;
    r.queue.retried = 7;
    r.queue.paused = s->paused;
    r.queue.limit = s->limit;
    r.queue.order = msg_str_c(s->order);
    tsrv_reply(fd, MSG_OP_QUEUE, &r);
}

static void
tsrv_status(int fd, const struct msg_request *req, int state)
{
    struct msg_response r;

    memset(&r, 0, sizeof(r));
    r.rid = req->rid;
    r.job.id = req->u.status.id;
    r.job.state = state;
    r.job.task = msg_str_c("fail");
    r.job.queue = msg_str_c("default");
    r.job.attempts = 2;
    r.job.max_retries = 3;
    r.job.timeout_ms = 200;
    r.job.run_at_us = 1700000000123000;
    r.job.unique_key = msg_str_c("nightly-report");
    r.job.last_error.code = FORQ_ERR_JOB_TIMEOUT;
    r.job.last_error.msg = msg_str_c("ran past 200 ms");
    if (state == FORQ_STATE_CANCELLED) {
        r.job.error.code = FORQ_ERR_CANCELLED;
        r.job.error.msg = msg_str_c("cancelled while running");
    }
    tsrv_reply(fd, req->op, &r);
}

/* Handle one request. */
static void
tsrv_handle(struct tsrv *s, int fd, const struct msg_request *req)
{
    struct msg_response r;

    memset(&r, 0, sizeof(r));
    r.rid = req->rid;
    switch (req->op) {
    case MSG_OP_HELLO:
        r.hello.version = MSG_PROTO_VERSION;
        r.hello.server = msg_str_c("test-server");
        r.hello.max_frame = 1 << 20;
        tsrv_reply(fd, req->op, &r);
        break;
    case MSG_OP_QUEUE:
        tsrv_queue(s, fd, req);
        break;
    case MSG_OP_JOIN:
        pthread_mutex_lock(&s->mu);
        s->seen.join_timeout = req->u.join.timeout_ms;
        s->seen.queue_ops++;
        pthread_mutex_unlock(&s->mu);
        /* The queue "drains" only for a join without limit. */
        if (req->u.join.timeout_ms >= 0)
            tsrv_error(fd, req->rid, FORQ_ERR_TIMEOUT, "queue still busy");
        else
            tsrv_reply(fd, req->op, &r);
        break;
    case MSG_OP_CANCEL:
        pthread_mutex_lock(&s->mu);
        s->seen.cancel_running = req->u.cancel.running;
        pthread_mutex_unlock(&s->mu);
        /* Job 1 is running: only a cancel with running set may take it. */
        if (req->u.cancel.id == 1 && !req->u.cancel.running)
            tsrv_error(fd, req->rid, FORQ_ERR_STATE, "the job is running");
        else if (req->u.cancel.id == 2)
            tsrv_error(fd, req->rid, FORQ_ERR_STATE, "the job has finished");
        else
            tsrv_status(fd, req, FORQ_STATE_CANCELLED);
        break;
    case MSG_OP_STATUS:
        tsrv_status(fd, req,
                    req->u.status.id == 1   ? FORQ_STATE_RUNNING
                    : req->u.status.id == 2 ? FORQ_STATE_SUCCEEDED
                                            : FORQ_STATE_SCHEDULED);
        break;
    default:
        tsrv_error(fd, req->rid, FORQ_ERR_UNKNOWN_OP, "not in this test");
        break;
    }
}

static void *
tsrv_main(void *arg)
{
    struct tsrv *s = arg;
    struct frame_reader rd;
    struct msg_decoder dec;
    struct msg_request req;
    const uint8_t *body;
    uint8_t *space;
    size_t len, room;
    ssize_t n;
    int fd;

    while ((fd = accept(s->lfd, NULL, NULL)) < 0 && errno == EINTR)
        ;
    if (fd < 0)
        return NULL;
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
            tsrv_handle(s, fd, &req);
        }
    }
    msg_decoder_fini(&dec);
    frame_reader_fini(&rd);
    close(fd);
    return NULL;
}

static struct tsrv *
tsrv_start(void)
{
    struct tsrv *s = calloc(1, sizeof(*s));
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->order, sizeof(s->order), "fifo");
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(s->addr, sizeof(s->addr), "tcp://127.0.0.1:%d", ntohs(sin.sin_port));
    assert_int_equal(pthread_create(&s->thread, NULL, tsrv_main, s), 0);
    return s;
}

/* Free after the client: closing it ends the server's one connection. */
static void
tsrv_free(struct tsrv *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static struct tsrv_seen
tsrv_seen(struct tsrv *s)
{
    struct tsrv_seen v;

    pthread_mutex_lock(&s->mu);
    v = s->seen;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ------------------------------------------------------------------ with a server */

static void
test_queue_round_trips(void **state)
{
    struct tsrv *s = tsrv_start();
    struct forq_queue_stats q;
    struct tsrv_seen seen;
    forq_client *c;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);

    assert_int_equal(forq_queue_info(c, "jobs", &q), 0);
    seen = tsrv_seen(s);
    assert_string_equal(seen.action, "info");
    assert_true(seen.limit < 0); /* not sent */
    assert_string_equal(seen.order, "");
    assert_string_equal(q.name, "jobs");
    assert_int_equal(q.queued, 3);
    assert_int_equal(q.scheduled, 2);
    assert_int_equal(q.running, 1);
    assert_int_equal(q.retried, 7);
    assert_int_equal(q.paused, 0);
    assert_int_equal(q.limit, 0);
    assert_string_equal(q.order, "fifo");

    assert_int_equal(forq_queue_pause(c, "jobs", &q), 0);
    assert_string_equal(tsrv_seen(s).action, "pause");
    assert_int_equal(q.paused, 1);
    assert_int_equal(forq_queue_resume(c, "jobs", NULL), 0); /* out may be NULL */
    assert_string_equal(tsrv_seen(s).action, "resume");

    /* Only what is given is sent: limit 0 means "no limit", not "unchanged". */
    assert_int_equal(forq_queue_set(c, "jobs", 4, NULL, &q), 0);
    seen = tsrv_seen(s);
    assert_string_equal(seen.action, "set");
    assert_int_equal(seen.limit, 4);
    assert_string_equal(seen.order, "");
    assert_int_equal(q.limit, 4);
    assert_int_equal(forq_queue_set(c, "jobs", -1, "lifo", &q), 0);
    seen = tsrv_seen(s);
    assert_true(seen.limit < 0);
    assert_string_equal(seen.order, "lifo");
    assert_int_equal(q.limit, 4);
    assert_string_equal(q.order, "lifo");
    assert_int_equal(forq_queue_set(c, "jobs", 0, "fifo", &q), 0);
    assert_int_equal(tsrv_seen(s).limit, 0);
    assert_int_equal(q.limit, 0);

    forq_client_free(c);
    tsrv_free(s);
}

/* Bad names and arguments never reach the server, even with a live client. */
static void
test_queue_refused_locally(void **state)
{
    struct tsrv *s = tsrv_start();
    char long_name[FORQ_NAME_MAX + 2];
    forq_client *c;

    (void)state;
    memset(long_name, 'q', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_queue_info(c, "no spaces", NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(forq_errmsg(), "queue name"));
    assert_int_equal(forq_queue_info(c, "", NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_info(c, NULL, NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_pause(c, long_name, NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_join(c, "a/b", -1), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_set(c, "jobs", -1, NULL, NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_queue_set(c, "jobs", 1, "LIFO", NULL), FORQ_ERR_INVALID);
    assert_int_equal(tsrv_seen(s).queue_ops, 0);
    forq_client_free(c);
    tsrv_free(s);
}

static void
test_queue_join(void **state)
{
    struct tsrv *s = tsrv_start();
    forq_client *c;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    /* No limit: nothing on the wire, and no local deadline either. */
    assert_int_equal(forq_queue_join(c, "jobs", -1), 0);
    assert_true(tsrv_seen(s).join_timeout < 0);
    /* The server's timeout is ours. */
    assert_int_equal(forq_queue_join(c, "jobs", 0), FORQ_ERR_TIMEOUT);
    assert_int_equal(tsrv_seen(s).join_timeout, 0);
    assert_int_equal(forq_queue_join(c, "jobs", 250), FORQ_ERR_TIMEOUT);
    assert_int_equal(tsrv_seen(s).join_timeout, 250);
    assert_non_null(strstr(forq_errmsg(), "jobs"));
    /* A timeout longer than the wire carries is clamped, not refused. */
    assert_int_equal(forq_queue_join(c, "jobs", INT64_MAX), FORQ_ERR_TIMEOUT);
    assert_int_equal(tsrv_seen(s).join_timeout, (int64_t)MSG_MS_MAX);
    forq_client_free(c);
    tsrv_free(s);
}

static void
test_cancel_running(void **state)
{
    struct tsrv *s = tsrv_start();
    forq_client *c;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    /* Job 1 runs: a plain cancel is refused, cancel_running takes it. */
    assert_int_equal(forq_cancel(c, 1), FORQ_ERR_STATE);
    assert_int_equal(tsrv_seen(s).cancel_running, 0);
    assert_int_equal(forq_cancel_running(c, 1), 0);
    assert_int_equal(tsrv_seen(s).cancel_running, 1);
    /* Job 2 has succeeded: state, whichever cancel. */
    assert_int_equal(forq_cancel_running(c, 2), FORQ_ERR_STATE);
    assert_non_null(strstr(forq_errmsg(), "succeeded"));
    forq_client_free(c);
    tsrv_free(s);
}

static void
test_status_job_control_fields(void **state)
{
    struct tsrv *s = tsrv_start();
    struct forq_job_info ji;
    forq_client *c;

    (void)state;
    assert_int_equal(forq_connect(s->addr, &c), 0);
    assert_int_equal(forq_status(c, 3, &ji), 0);
    assert_int_equal(ji.state, FORQ_STATE_SCHEDULED);
    assert_int_equal(ji.attempts, 2);
    assert_int_equal(ji.max_retries, 3);
    assert_int_equal(ji.timeout_ms, 200);
    assert_int_equal(ji.run_at_us, 1700000000123000);
    assert_string_equal(ji.unique_key, "nightly-report");
    assert_int_equal(ji.last_error_code, FORQ_ERR_JOB_TIMEOUT);
    assert_string_equal(ji.last_error_msg, "ran past 200 ms");
    assert_int_equal(ji.error_code, 0);
    assert_null(ji.error_msg);
    forq_job_info_clear(&ji);
    assert_null(ji.unique_key);
    assert_null(ji.last_error_msg);
    /* run_at is only meaningful while scheduled. */
    assert_int_equal(forq_status(c, 1, &ji), 0);
    assert_int_equal(ji.state, FORQ_STATE_RUNNING);
    assert_int_equal(ji.run_at_us, 0);
    forq_job_info_clear(&ji);
    forq_client_free(c);
    tsrv_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_set_needs_a_change),
        cmocka_unit_test(test_queue_calls_without_client),
        cmocka_unit_test(test_queue_round_trips),
        cmocka_unit_test(test_queue_refused_locally),
        cmocka_unit_test(test_queue_join),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_status_job_control_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
