/*
 * test_caps.c — configurable caps against a real forqd: max_watch_ids, the
 * job ids one connection may watch at once, and max_name, the longest task
 * or queue name a request may use.
 *
 * The watches stay open on a job submitted with an hour's delay: it is
 * `scheduled` for the whole test, so a watch on it neither ends nor sends
 * anything. That a watch was accepted is seen without any timing: requests
 * on one connection are answered in order, and a refused WATCH is answered
 * at once, so when a PING sent after the WATCH gets the first answer, the
 * WATCH was taken. Raw frames through proto/ (harness_call), plus the
 * fixture's libforq client as a second, unrelated client.
 */
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

#define CAP         5
#define LATER_MS    3600000 /* a delay that outlasts the test: the job stays scheduled */
#define CAP_WATCHED "this connection already watches %d jobs; at most %d (max_watch_ids)"

/* One raw connection and its rids. */
struct peer {
    int fd;
    uint64_t rid;
};

static struct msg_decoder decoder;

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", "--max-watch-ids=5", "--max-name=12", NULL};

    if (msg_decoder_init(&decoder) != 0)
        return -1;
    return harness_fixture_setup(state, args);
}

static int
group_teardown(void **state)
{
    msg_decoder_fini(&decoder);
    return harness_fixture_teardown(state);
}

static void
peer_open(struct peer *p, const struct harness *h)
{
    p->fd = harness_connect(h);
    assert_true(p->fd >= 0);
    p->rid = 0;
}

/* Submit on p and return the job id; delay_ms 0 runs it at once. */
static uint64_t
peer_submit(struct peer *p, const char *task, const char *payload, uint64_t delay_ms)
{
    struct msg_request req = {.op = MSG_OP_SUBMIT, .rid = ++p->rid};
    struct msg_response resp;
    uint8_t *buf;
    uint64_t id;

    req.u.submit.task = msg_str_c(task);
    req.u.submit.payload = msg_str_c(payload);
    req.u.submit.delay_ms = delay_ms;
    assert_int_equal(harness_call(p->fd, &decoder, &req, &resp, &buf), 0);
    assert_true(resp.rid == req.rid);
    assert_int_equal(resp.err.code, 0);
    id = resp.id;
    free(buf);
    return id;
}

/* Send a WATCH of n copies of id (no time limit) without reading; returns its rid. */
static uint64_t
peer_watch_send(struct peer *p, uint64_t id, size_t n)
{
    struct msg_request req = {.op = MSG_OP_WATCH, .rid = ++p->rid};
    uint64_t ids[CAP + 1];

    assert_true(n <= CAP + 1);
    for (size_t i = 0; i < n; i++)
        ids[i] = id;
    req.u.watch.ids = ids;
    req.u.watch.nids = n;
    req.u.watch.timeout_ms = -1;
    assert_int_equal(harness_send_request(p->fd, &req), 0);
    return req.rid;
}

/* Read p's next frame as a WATCH answer for rid. The caller frees *buf. */
static void
peer_recv_watch(struct peer *p, uint64_t rid, struct msg_response *resp, uint8_t **buf)
{
    size_t len;

    assert_int_equal(harness_recv_frame(p->fd, buf, &len), 0);
    assert_int_equal(msg_decode_response(&decoder, MSG_OP_WATCH, *buf, len, resp), 0);
    assert_true(resp->rid == rid);
}

/* PING on p: its answer must be the next frame (nothing was refused before it). */
static void
peer_ping(struct peer *p)
{
    struct msg_request req = {.op = MSG_OP_PING, .rid = ++p->rid};
    struct msg_response resp;
    uint8_t *buf;

    assert_int_equal(harness_call(p->fd, &decoder, &req, &resp, &buf), 0);
    assert_true(resp.rid == req.rid);
    assert_int_equal(resp.err.code, 0);
    free(buf);
}

/* WATCH n copies of id on p; it must be taken and stay open (id never finishes). */
static uint64_t
peer_watch_open(struct peer *p, uint64_t id, size_t n)
{
    uint64_t rid = peer_watch_send(p, id, n);

    peer_ping(p);
    return rid;
}

/* WATCH n copies of id on p; it must be refused with limit, p watching `watched` ids of `cap`. */
static void
peer_watch_refused(struct peer *p, uint64_t id, size_t n, int watched, int cap)
{
    uint64_t rid = peer_watch_send(p, id, n);
    struct msg_response resp;
    char want[128];
    uint8_t *buf;

    snprintf(want, sizeof(want), CAP_WATCHED, watched, cap);
    peer_recv_watch(p, rid, &resp, &buf);
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_LIMIT);
    if (!msg_str_eq(resp.err.msg, want))
        fail_msg("limit message '%.*s', wanted '%s'", (int)resp.err.msg.len, resp.err.msg.ptr,
                 want);
    free(buf);
}

/* UNWATCH the open watch rid on p: its last frame (ok), then the UNWATCH answer. */
static void
peer_unwatch(struct peer *p, uint64_t rid)
{
    struct msg_request req = {.op = MSG_OP_UNWATCH, .rid = ++p->rid};
    struct msg_response resp;
    uint8_t *buf;

    req.u.unwatch.watch = rid;
    assert_int_equal(harness_send_request(p->fd, &req), 0);
    peer_recv_watch(p, rid, &resp, &buf);
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    peer_recv_watch(p, req.rid, &resp, &buf);
    assert_int_equal(resp.err.code, 0);
    free(buf);
}

/* WATCH n copies of a finished job on p: n events with its result, then the last frame. */
static void
peer_watch_finished(struct peer *p, uint64_t id, size_t n, const char *result)
{
    uint64_t rid = peer_watch_send(p, id, n);
    struct msg_response resp;
    uint8_t *buf;

    for (size_t i = 0; i < n; i++) {
        peer_recv_watch(p, rid, &resp, &buf);
        assert_int_equal(resp.more, 1);
        assert_int_equal(resp.err.code, 0);
        assert_true(resp.job.id == id);
        assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
        assert_true(msg_str_eq(resp.job.result, result));
        free(buf);
    }
    peer_recv_watch(p, rid, &resp, &buf);
    assert_int_equal(resp.more, 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);
}

/* Submit on p, WAIT for the job and compare its result with want. Returns its id. */
static uint64_t
peer_run(struct peer *p, const char *task, const char *payload, const char *want)
{
    uint64_t id = peer_submit(p, task, payload, 0);
    struct msg_request req = {.op = MSG_OP_WAIT, .rid = ++p->rid};
    struct msg_response resp;
    uint8_t *buf;

    req.u.wait.id = id;
    req.u.wait.timeout_ms = -1;
    assert_int_equal(harness_call(p->fd, &decoder, &req, &resp, &buf), 0);
    assert_true(resp.rid == req.rid);
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_true(msg_str_eq(resp.job.result, want));
    free(buf);
    return id;
}

/* The libforq client submits CAP jobs and waits for them all with one WATCH of CAP ids. */
static void
libforq_wait_cap(forq_client *c)
{
    forq_future *fs[CAP];
    char payload[16], want[16];

    for (int i = 0; i < CAP; i++) {
        snprintf(payload, sizeof(payload), "job%d", i);
        if (forq_submit(c, "upper", payload, strlen(payload), NULL, &fs[i]) != 0)
            fail_msg("submit: %s", forq_errmsg());
    }
    if (forq_wait(fs, CAP, FORQ_ALL_COMPLETED, -1, NULL) != 0)
        fail_msg("forq_wait: %s", forq_errmsg());
    for (int i = 0; i < CAP; i++) {
        const void *data;
        size_t len;

        snprintf(want, sizeof(want), "JOB%d", i);
        assert_int_equal(forq_future_result(fs[i], 0, &data, &len), 0);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(data, want, len);
        forq_future_free(fs[i]);
    }
}

/*
 * --max-watch-ids=5: a connection watching 5 ids gets limit, with the
 * message naming the key, for one more; it keeps being served (PING,
 * SUBMIT, WAIT, a WATCH that fits once an UNWATCH made room). Meanwhile
 * other connections have their own 5: a raw one watches up to its limit
 * (and is refused past it, counting only its own ids), and the libforq
 * client waits for 5 jobs with one WATCH.
 */
static void
test_watch_ids_cap_per_connection(void **state)
{
    struct harness_fixture *x = *state;
    struct peer a, b;
    uint64_t later, done, a3, a2, b4;

    peer_open(&a, &x->h);
    peer_open(&b, &x->h);
    later = peer_submit(&a, "echo", "later", LATER_MS);

    /* a fills its cap in two watches, then one more id is refused. */
    a3 = peer_watch_open(&a, later, 3);
    a2 = peer_watch_open(&a, later, 2);
    peer_watch_refused(&a, later, 1, CAP, CAP);
    peer_watch_refused(&a, later, CAP + 1, CAP, CAP);

    /* While a is at its cap, b watches up to its own and gets its job's result. */
    b4 = peer_watch_open(&b, later, 4);
    done = peer_run(&b, "upper", "hi", "HI");
    peer_watch_finished(&b, done, 1, "HI");
    peer_watch_refused(&b, later, 2, 4, CAP);
    libforq_wait_cap(x->c);

    /* a is still served, and an UNWATCH makes room for as many ids as it freed. */
    peer_ping(&a);
    done = peer_run(&a, "upper", "still", "STILL");
    peer_unwatch(&a, a2);
    peer_watch_finished(&a, done, 2, "STILL");
    peer_watch_refused(&a, later, 3, 3, CAP);
    peer_unwatch(&a, a3);
    peer_unwatch(&b, b4);
    close(a.fd);
    close(b.fd);
}

/*
 * Rewrite the config file, SIGHUP, and wait for the nth reload's outcome in
 * the log (the loop logs it once the new settings are in effect, or kept).
 */
static void
reload_conf(struct harness *h, const char *path, const char *text, int nth)
{
    harness_write_file(path, text);
    harness_reload(h, nth);
}

/*
 * max_watch_ids from the config file, changed by SIGHUP: a raised limit
 * takes the next WATCH; a lowered one refuses new watches but keeps the open
 * ones (they still end normally); a bad value is refused and changes nothing.
 */
static void
test_watch_ids_cap_reload(void **state)
{
    char dir[] = "/tmp/forq-test-caps-XXXXXX", path[64], arg[80];
    const char *args[] = {arg, NULL};
    struct harness h;
    struct peer a;
    uint64_t later, w1, w2;

    (void)state;
    if (getenv("FORQ_TEST_ADDR") != NULL)
        skip(); /* forqd must be ours: it is started with a config file and sent SIGHUP */
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/forqd.conf", dir);
    snprintf(arg, sizeof(arg), "--config=%s", path);
    harness_write_file(path, "[forqd]\nmax_watch_ids = 2\n");
    assert_int_equal(harness_start(&h, args), 0);
    peer_open(&a, &h);
    later = peer_submit(&a, "echo", "later", LATER_MS);

    w1 = peer_watch_open(&a, later, 2);
    peer_watch_refused(&a, later, 1, 2, 2);

    /* Raised: the next WATCH fits. */
    reload_conf(&h, path, "[forqd]\nmax_watch_ids = 3\n", 1);
    assert_int_equal(harness_log_count(&h, "reloaded the configuration"), 1);
    w2 = peer_watch_open(&a, later, 1);
    peer_watch_refused(&a, later, 1, 3, 3);

    /* Lowered below what is watched: new watches are refused, the open ones stay. */
    reload_conf(&h, path, "[forqd]\nmax_watch_ids = 1\n", 2);
    assert_int_equal(harness_log_count(&h, "reloaded the configuration"), 2);
    peer_watch_refused(&a, later, 1, 3, 1);

    /* Out of range: the reload is refused and the running limit stays. */
    reload_conf(&h, path, "[forqd]\nmax_watch_ids = 0\n", 3);
    assert_int_equal(
        harness_log_count(&h, "max_watch_ids: expected a number in 1..4294967296, got '0'"), 1);
    peer_unwatch(&a, w1);
    peer_unwatch(&a, w2);
    w1 = peer_watch_open(&a, later, 1);
    peer_watch_refused(&a, later, 1, 1, 1);
    peer_unwatch(&a, w1);

    close(a.fd);
    assert_int_equal(harness_stop(&h), 0);
    unlink(path);
    rmdir(dir);
}

/* A request naming task and queue on p: its error code, the message in msg. */
static int
peer_named(struct peer *p, int op, const char *task, const char *queue, char *msg, size_t len)
{
    struct msg_request req = {.op = op, .rid = ++p->rid};
    struct msg_response resp;
    uint8_t *buf;
    int code;

    if (op == MSG_OP_SUBMIT) {
        req.u.submit.task = msg_str_c(task);
        req.u.submit.payload = msg_str_c("x");
        req.u.submit.queue = msg_str_c(queue);
    } else {
        req.u.queue.queue = msg_str_c(queue);
        req.u.queue.action = msg_str_c("info");
        req.u.queue.limit = -1;
    }
    assert_int_equal(harness_call(p->fd, &decoder, &req, &resp, &buf), 0);
    assert_true(resp.rid == req.rid);
    code = resp.err.code;
    snprintf(msg, len, "%.*s", (int)resp.err.msg.len, resp.err.msg.ptr);
    free(buf);
    return code;
}

/*
 * --max-name=12: a 13-byte queue or task name is bad_request with a message
 * naming the key; 12 bytes are fine, for this client and, at the same time,
 * for another one.
 */
static void
test_max_name_in_requests(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_submit_opts o = FORQ_SUBMIT_OPTS_INIT;
    struct peer a;
    forq_future *f;
    const void *data;
    size_t len;
    char msg[256];

    peer_open(&a, &x->h);
    assert_int_equal(peer_named(&a, MSG_OP_SUBMIT, "echo", "thirteen-byte", msg, sizeof(msg)),
                     FORQ_ERR_BAD_REQUEST);
    assert_string_equal(msg, "queue name of 13 bytes is longer than this server's max_name (12)");
    assert_int_equal(peer_named(&a, MSG_OP_SUBMIT, "thirteen-byte", "q", msg, sizeof(msg)),
                     FORQ_ERR_BAD_REQUEST);
    assert_string_equal(msg, "task name of 13 bytes is longer than this server's max_name (12)");
    assert_int_equal(peer_named(&a, MSG_OP_QUEUE, NULL, "thirteen-byte", msg, sizeof(msg)),
                     FORQ_ERR_BAD_REQUEST);
    assert_non_null(strstr(msg, "max_name (12)"));

    /* Another client, meanwhile: a name of exactly max_name works end to end. */
    o.queue = "twelve-bytes";
    assert_int_equal(forq_submit(x->c, "echo", "ok", 2, &o, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 2);
    forq_future_free(f);
    /* The refused client goes on too, and nothing was created under the long name. */
    assert_int_equal(peer_named(&a, MSG_OP_SUBMIT, "echo", "twelve-bytes", msg, sizeof(msg)), 0);
    assert_int_equal(peer_named(&a, MSG_OP_QUEUE, NULL, "twelve-bytes", msg, sizeof(msg)), 0);
    assert_int_equal(forq_queue_info(x->c, "thirteen-byte", NULL), FORQ_ERR_BAD_REQUEST);
    assert_false(harness_queue_find(x->c, "thirteen-byte", NULL));
    close(a.fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_ids_cap_per_connection),
        cmocka_unit_test(test_watch_ids_cap_reload),
        cmocka_unit_test(test_max_name_in_requests),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
