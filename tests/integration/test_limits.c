/*
 * test_limits.c — limits a client can run into, each crossed for real: a full
 * queue, too many queues, too many connections, and a client that sends
 * requests but does not read the answers. Each time the client gets the
 * exact error (or is paused), and everyone else keeps being served.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define BIG_RESULT (256 * 1024)
#define NOT_READ   400 /* WAITs whose answers (100 MB in all) are left unread */

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=1", "--max-queued=2", "--max-queues=8",
                                       "--max-connections=4", NULL};

    return harness_fixture_setup(state, args);
}

static forq_future *
submit_to(forq_client *c, const char *task, const char *payload, size_t len, const char *queue,
          int expect)
{
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    forq_future *f = NULL;

    o.queue = queue;
    assert_int_equal(forq_submit(c, task, payload, len, &o, &f), expect);
    return f;
}

static uint64_t
queue_submitted(forq_client *c, const char *queue)
{
    struct forq_stats *st;
    uint64_t n = 0;

    assert_int_equal(forq_stats(c, &st), 0);
    for (size_t i = 0; i < st->nqueues; i++)
        if (strcmp(st->queues[i].name, queue) == 0)
            n = st->queues[i].submitted;
    forq_stats_free(st);
    return n;
}

static void
test_queue_full(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *busy, *q[2];
    pid_t worker;

    busy = submit_to(x->c, "sleep", "100000", 6, "busy", 0);
    assert_true((worker = harness_wait_running(x->c, forq_future_id(busy))) > 0);
    q[0] = submit_to(x->c, "echo", "1", 1, "full", 0);
    q[1] = submit_to(x->c, "echo", "2", 1, "full", 0);
    submit_to(x->c, "echo", "3", 1, "full", FORQ_ERR_QUEUE_FULL);
    assert_non_null(strstr(forq_errmsg(), "full"));
    /* Other queues are not affected, and nothing accepted was lost. */
    forq_future_free(submit_to(x->c, "echo", "ok", 2, "other", 0));
    assert_int_equal(queue_submitted(x->c, "full"), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(forq_future_cancel(q[i]), 0);
        forq_future_free(q[i]);
    }
    assert_int_equal(forq_future_cancel(busy), FORQ_ERR_STATE); /* it runs */
    /* Free the only worker for the next tests. */
    assert_int_equal(kill(worker, SIGKILL), 0);
    assert_int_equal(forq_future_result(busy, HARNESS_GUARD_MS, NULL, NULL), FORQ_ERR_WORKER_LOST);
    forq_future_free(busy);
}

static void
test_too_many_queues(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_stats *st;
    size_t have;
    char name[32];

    assert_int_equal(forq_stats(x->c, &st), 0);
    have = st->nqueues;
    forq_stats_free(st);
    assert_true(have < 8);
    /* New names fit up to --max-queues=8, then no more; existing names still work. */
    for (size_t i = have; i < 8; i++) {
        snprintf(name, sizeof(name), "extra-%zu", i);
        forq_future_free(submit_to(x->c, "echo", "x", 1, name, 0));
    }
    submit_to(x->c, "echo", "x", 1, "one-too-many", FORQ_ERR_LIMIT);
    assert_non_null(strstr(forq_errmsg(), "queues"));
    forq_future_free(submit_to(x->c, "echo", "x", 1, name, 0));
}

static void
test_connection_limit(void **state)
{
    struct harness_fixture *x = *state;
    struct msg_decoder d;
    struct msg_response resp;
    int fds[3], extra;
    uint8_t *buf;
    size_t len;

    assert_int_equal(msg_decoder_init(&d), 0);
    /* The fixture's client holds one connection: three more reach the limit of 4. */
    for (int i = 0; i < 3; i++)
        assert_true((fds[i] = harness_connect(&x->h)) >= 0);
    assert_int_equal(forq_ping(x->c), 0); /* make sure all were accepted */
    assert_true((extra = harness_connect(&x->h)) >= 0);
    assert_int_equal(harness_recv_frame(extra, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_PING, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_LIMIT);
    free(buf);
    assert_true(harness_wait_closed(extra));
    close(extra);

    /* Once one goes away, a new connection is served again. */
    close(fds[0]);
    for (int i = 0; i < 200; i++) {
        struct msg_request ping = {.op = MSG_OP_PING, .rid = 5};

        extra = harness_connect(&x->h);
        if (harness_call(extra, &d, &ping, &resp, &buf) == 0 && resp.err.code == 0) {
            free(buf);
            break;
        }
        free(buf);
        close(extra);
        extra = -1;
        usleep(10000); /* the server notices the close on its next loop turn */
    }
    assert_true(extra >= 0);
    close(extra);
    close(fds[1]);
    close(fds[2]);
    msg_decoder_fini(&d);
}

/*
 * A client that asks for a large result again and again without reading the
 * answers: forqd stops reading from it (instead of queueing 100 MB of
 * replies), serves everyone else meanwhile, and answers everything once the
 * client reads.
 */
static void
test_unread_answers_pause_the_reader(void **state)
{
    struct harness_fixture *x = *state;
    struct msg_request req = {.op = MSG_OP_WAIT};
    struct msg_decoder d;
    struct msg_response resp;
    char *big = malloc(BIG_RESULT);
    forq_future *f;
    const void *data;
    uint8_t *buf;
    size_t len;
    int fd;

    assert_non_null(big);
    memset(big, 'r', BIG_RESULT);
    f = submit_to(x->c, "echo", big, BIG_RESULT, "bp-result", 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, BIG_RESULT);

    assert_int_equal(msg_decoder_init(&d), 0);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    req.u.wait.id = forq_future_id(f);
    req.u.wait.timeout_ms = -1;
    for (int i = 0; i < NOT_READ; i++) {
        req.rid = 1000 + (uint64_t)i;
        assert_int_equal(harness_send_request(fd, &req), 0);
    }
    {
        struct msg_request s = {.op = MSG_OP_SUBMIT, .rid = 99999};

        s.u.submit.task = msg_str_c("echo");
        s.u.submit.payload = msg_str_c("marker");
        s.u.submit.queue = msg_str_c("bp-marker");
        assert_int_equal(harness_send_request(fd, &s), 0);
    }
    /* The first answer proves forqd is working on that connection ... */
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    free(buf);
    /* ... yet the SUBMIT behind the unread answers has not been taken in, */
    assert_int_equal(queue_submitted(x->c, "bp-marker"), 0);
    /* while other clients are served. */
    assert_int_equal(forq_ping(x->c), 0);

    /* Reading everything releases the rest, in order, with nothing lost. */
    for (int i = 1; i < NOT_READ; i++) {
        assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
        assert_int_equal(msg_decode_response(&d, MSG_OP_WAIT, buf, len, &resp), 0);
        assert_int_equal(resp.rid, 1000 + (uint64_t)i);
        assert_int_equal(resp.job.result.len, BIG_RESULT);
        free(buf);
    }
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_SUBMIT, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 99999);
    assert_true(resp.id > 0);
    free(buf);
    assert_int_equal(queue_submitted(x->c, "bp-marker"), 1);

    close(fd);
    msg_decoder_fini(&d);
    forq_future_free(f);
    free(big);
}

/* forqd's resident memory in KiB, from /proc. */
static long
daemon_rss_kib(const struct harness *h)
{
    char path[64], line[256];
    long kib = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)h->pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(fp);
    return kib;
}

/*
 * One WATCH naming a large result WATCHED times, from a client that does not
 * read: forqd holds the events back at the output's high-water mark instead
 * of queueing WATCHED results (256 MB; it may grow by 64 MB here), serves
 * others meanwhile, and sends
 * every event once the client reads.
 */
#define WATCHED 1000
static void
test_unread_watch_events_are_held_back(void **state)
{
    struct harness_fixture *x = *state;
    static uint64_t ids[WATCHED];
    struct msg_request req = {.op = MSG_OP_WATCH, .rid = 7};
    struct msg_decoder d;
    struct msg_response resp;
    char *big = malloc(BIG_RESULT);
    forq_future *f;
    uint8_t *buf;
    size_t len;
    long rss0, rss;
    int fd, events = 0;

    if (x->h.pid == 0)
        skip(); /* FORQ_TEST_ADDR: no pid to look at */
    assert_non_null(big);
    memset(big, 'w', BIG_RESULT);
    f = submit_to(x->c, "echo", big, BIG_RESULT, "watch-big", 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, NULL, NULL), 0);
    for (int i = 0; i < WATCHED; i++)
        ids[i] = forq_future_id(f);
    req.u.watch.ids = ids;
    req.u.watch.nids = WATCHED;
    req.u.watch.timeout_ms = -1;
    assert_int_equal(msg_decoder_init(&d), 0);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    /* Growth is what counts: a sanitizer build keeps freed memory resident. */
    assert_true((rss0 = daemon_rss_kib(&x->h)) > 0);
    assert_int_equal(harness_send_request(fd, &req), 0);
    /* The first event proves the watch has been taken in ... */
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    free(buf);
    events++;
    /* ... yet forqd has not queued the rest (without flow control: ~270 MB). */
    assert_int_equal(forq_ping(x->c), 0);
    rss = daemon_rss_kib(&x->h);
    assert_true(rss > 0);
    if (rss - rss0 > 64 * 1024)
        fail_msg("forqd grew by %ld KiB with the events unread", rss - rss0);
    /* Reading releases every event, then the last frame. */
    for (;;) {
        assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
        assert_int_equal(msg_decode_response(&d, MSG_OP_WATCH, buf, len, &resp), 0);
        assert_int_equal(resp.rid, 7);
        free(buf);
        if (!resp.more)
            break;
        events++;
    }
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(events, WATCHED);
    close(fd);
    msg_decoder_fini(&d);
    forq_future_free(f);
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_unread_answers_pause_the_reader),
        cmocka_unit_test(test_unread_watch_events_are_held_back),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_too_many_queues),
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
