/*
 * test_limits.c — limits a client can run into, each crossed for real: a full
 * queue, too many queues, too many connections, a client that sends
 * requests but does not read the answers, and msgpack bodies nested too deep
 * or holding too many elements. Each time the client gets the exact error
 * (or is paused), and everyone else, on connections of their own, keeps
 * being served.
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

#include "frame.h"
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
    struct forq_queue_stats q;

    return harness_queue_find(c, queue, &q) ? q.submitted : 0;
}

/* 1 when STATS lists a queue of that name (forqd creates it as it takes a SUBMIT in). */
static int
queue_exists(forq_client *c, const char *queue)
{
    return harness_queue_find(c, queue, NULL);
}

/*
 * Poll STATS until forqd counts at most n connections: the closes of earlier
 * tests have been seen, so this one's connections fit in --max-connections.
 */
static void
wait_connections(forq_client *c, uint64_t n)
{
    int64_t end = harness_now_ms() + HARNESS_GUARD_MS;
    struct forq_stats *st;
    uint64_t have;

    for (;;) {
        assert_int_equal(forq_stats(c, &st), 0);
        have = st->connections;
        forq_stats_free(st);
        if (have <= n)
            return;
        assert_true(harness_now_ms() < end);
        harness_sleep_ms(5);
    }
}

/* An echo job on c, in an existing queue, runs to its result. */
static void
echo_served(forq_client *c, const char *queue, const char *payload)
{
    forq_future *f = submit_to(c, "echo", payload, strlen(payload), queue, 0);
    const void *data;
    size_t len;

    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, strlen(payload));
    assert_memory_equal(data, payload, len);
    forq_future_free(f);
}

static void
test_queue_full(void **state)
{
    struct harness_fixture *x = *state;
    forq_future *busy, *q[2], *mine, *room;
    forq_client *other;
    const void *data;
    size_t len;
    pid_t worker;

    wait_connections(x->c, 1);
    assert_int_equal(forq_connect(x->h.addr, &other), 0);
    busy = submit_to(x->c, "sleep", "100000", 6, "busy", 0);
    assert_true((worker = harness_wait_running(x->c, forq_future_id(busy))) > 0);
    q[0] = submit_to(x->c, "echo", "1", 1, "full", 0);
    q[1] = submit_to(x->c, "echo", "2", 1, "full", 0);
    submit_to(x->c, "echo", "3", 1, "full", FORQ_ERR_QUEUE_FULL);
    assert_non_null(strstr(forq_errmsg(), "full"));
    /* The limit is the queue's: another client, on its own connection, gets it too ... */
    submit_to(other, "echo", "4", 1, "full", FORQ_ERR_QUEUE_FULL);
    assert_non_null(strstr(forq_errmsg(), "full"));
    /* ... and both are served on other queues meanwhile; nothing accepted was lost. */
    forq_future_free(submit_to(x->c, "echo", "ok", 2, "other", 0));
    mine = submit_to(other, "echo", "mine", 4, "other", 0);
    assert_int_equal(forq_ping(other), 0);
    assert_int_equal(queue_submitted(x->c, "full"), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(forq_future_cancel(q[i]), 0);
        forq_future_free(q[i]);
    }
    /* Room again: two more fit (from either client), the next is refused. */
    room = submit_to(other, "echo", "5", 1, "full", 0);
    forq_future_free(submit_to(x->c, "echo", "6", 1, "full", 0));
    submit_to(other, "echo", "7", 1, "full", FORQ_ERR_QUEUE_FULL);
    assert_int_equal(queue_submitted(other, "full"), 4);
    assert_int_equal(forq_future_cancel(busy), FORQ_ERR_STATE); /* it runs */
    /* Free the only worker for the next tests; what was queued runs. */
    assert_int_equal(kill(worker, SIGKILL), 0);
    assert_int_equal(forq_future_result(busy, HARNESS_GUARD_MS, NULL, NULL), FORQ_ERR_WORKER_LOST);
    forq_future_free(busy);
    assert_int_equal(forq_future_result(mine, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "mine", 4);
    forq_future_free(mine);
    assert_int_equal(forq_future_result(room, HARNESS_GUARD_MS, &data, &len), 0);
    assert_memory_equal(data, "5", 1);
    forq_future_free(room);
    forq_client_free(other);
}

static void
test_too_many_queues(void **state)
{
    struct harness_fixture *x = *state;
    struct forq_stats *st;
    forq_client *other;
    size_t have;
    char name[32];

    wait_connections(x->c, 1);
    assert_int_equal(forq_connect(x->h.addr, &other), 0);
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
    /* The limit is forqd's: another client gets it too, and is served on the queues there are. */
    submit_to(other, "echo", "y", 1, "another-one", FORQ_ERR_LIMIT);
    assert_non_null(strstr(forq_errmsg(), "too many queues (limit 8)"));
    echo_served(other, name, "still served");
    assert_int_equal(forq_stats(other, &st), 0);
    assert_int_equal(st->nqueues, 8);
    forq_stats_free(st);
    assert_false(queue_exists(other, "one-too-many"));
    assert_false(queue_exists(other, "another-one"));
    forq_client_free(other);
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
    wait_connections(x->c, 1);
    /* The fixture's client holds one connection: three more reach the limit of 4. */
    for (int i = 0; i < 3; i++)
        assert_true((fds[i] = harness_connect(&x->h)) >= 0);
    assert_int_equal(forq_ping(x->c), 0); /* make sure all were accepted */
    assert_true((extra = harness_connect(&x->h)) >= 0);
    assert_int_equal(harness_recv_frame(extra, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_PING, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_LIMIT);
    assert_non_null(memmem(resp.err.msg.ptr, resp.err.msg.len, "too many connections", 20));
    free(buf);
    /* At the limit, the connections already open are all served. */
    for (int i = 0; i < 3; i++) {
        struct msg_request ping = {.op = MSG_OP_PING};

        ping.rid = 10 + (uint64_t)i;
        assert_int_equal(harness_call(fds[i], &d, &ping, &resp, &buf), 0);
        assert_int_equal(resp.rid, ping.rid);
        assert_int_equal(resp.err.code, 0);
        free(buf);
    }
    echo_served(x->c, "other", "at the limit");
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
 * client reads. The requests go in one send, so forqd's first read holds
 * them all: once the first answer is here, forqd has either stopped at the
 * high-water mark or taken the SUBMIT at the end in (and made its queue).
 */
static void
test_unread_answers_pause_the_reader(void **state)
{
    struct harness_fixture *x = *state;
    struct msg_request req = {.op = MSG_OP_WAIT};
    struct msg_decoder d;
    struct msg_response resp;
    char *big = malloc(BIG_RESULT);
    msgpack_sbuffer sb;
    forq_future *f;
    const void *data;
    uint8_t *buf;
    size_t len;
    int fd;

    wait_connections(x->c, 1);
    assert_non_null(big);
    memset(big, 'r', BIG_RESULT);
    f = submit_to(x->c, "echo", big, BIG_RESULT, "bp-result", 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, BIG_RESULT);

    assert_int_equal(msg_decoder_init(&d), 0);
    assert_true((fd = harness_connect(&x->h)) >= 0);
    req.u.wait.id = forq_future_id(f);
    req.u.wait.timeout_ms = -1;
    msgpack_sbuffer_init(&sb);
    for (int i = 0; i < NOT_READ; i++) {
        req.rid = 1000 + (uint64_t)i;
        assert_int_equal(msg_encode_request(&sb, &req), 0);
    }
    {
        struct msg_request s = {.op = MSG_OP_SUBMIT, .rid = 99999};

        s.u.submit.task = msg_str_c("echo");
        s.u.submit.payload = msg_str_c("marker");
        s.u.submit.queue = msg_str_c("bp-marker");
        assert_int_equal(msg_encode_request(&sb, &s), 0);
    }
    assert_true(sb.size < 16384); /* libevent reads up to 16 KiB at once: one read takes all */
    assert_int_equal(harness_send(fd, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    /* The first answer proves forqd is working on that connection ... */
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    free(buf);
    /* ... yet the SUBMIT behind the unread answers has not been taken in, */
    assert_false(queue_exists(x->c, "bp-marker"));
    /* while other clients are served. */
    assert_int_equal(forq_ping(x->c), 0);
    echo_served(x->c, "bp-result", "served");
    assert_false(queue_exists(x->c, "bp-marker"));

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

/* ------------------------------------------------------------------ msgpack structure */

/*
 * A PING with extra keys, as one frame (header included) in sb: {op, rid,
 * pad0: ..., pad1: ...}. Unknown keys are ignored, but counted against the
 * structural limits. With depth > 0, pad0 is that many arrays nested in one
 * another (the innermost empty) and there is no pad1; else pad0 and pad1 are
 * arrays of n0 and n1 nils.
 */
static void
pack_padded_ping(msgpack_sbuffer *sb, uint64_t rid, int depth, size_t n0, size_t n1)
{
    static const char zero[FRAME_HDR_LEN];
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_sbuffer_write(sb, zero, sizeof(zero));
    msgpack_pack_map(&pk, depth > 0 ? 3 : 4);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "ping", 4);
    msgpack_pack_str_with_body(&pk, "rid", 3);
    msgpack_pack_uint64(&pk, rid);
    msgpack_pack_str_with_body(&pk, "pad0", 4);
    if (depth > 0) {
        for (int i = 0; i < depth; i++)
            msgpack_pack_array(&pk, i + 1 < depth ? 1 : 0);
    } else {
        msgpack_pack_array(&pk, n0);
        for (size_t i = 0; i < n0; i++)
            msgpack_pack_nil(&pk);
        msgpack_pack_str_with_body(&pk, "pad1", 4);
        msgpack_pack_array(&pk, n1);
        for (size_t i = 0; i < n1; i++)
            msgpack_pack_nil(&pk);
    }
    frame_hdr_encode((uint8_t *)sb->data, (uint32_t)(sb->size - FRAME_HDR_LEN));
}

/* Send the frame in sb (and free it); the PING is answered and the connection stays. */
static void
expect_pong(int fd, struct msg_decoder *d, msgpack_sbuffer *sb, uint64_t rid)
{
    struct msg_response resp;
    uint8_t *buf;
    size_t len;

    assert_int_equal(harness_send(fd, sb->data, sb->size), 0);
    msgpack_sbuffer_destroy(sb);
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    assert_int_equal(msg_decode_response(d, MSG_OP_PING, buf, len, &resp), 0);
    assert_int_equal(resp.rid, rid);
    assert_int_equal(resp.err.code, 0);
    free(buf);
}

/*
 * Send the frame in sb (and free it) but its last byte; check that another
 * client is served while the frame is half there; send the byte: protocol
 * error with rid 0 and what in its message, and the connection is closed.
 */
static void
expect_protocol_close(struct harness_fixture *x, int fd, struct msg_decoder *d,
                      msgpack_sbuffer *sb, const char *what)
{
    struct msg_response resp;
    uint8_t *buf;
    size_t len;

    assert_int_equal(harness_send(fd, sb->data, sb->size - 1), 0);
    echo_served(x->c, "other", "meanwhile");
    assert_int_equal(harness_send(fd, sb->data + sb->size - 1, 1), 0);
    msgpack_sbuffer_destroy(sb);
    assert_int_equal(harness_recv_frame(fd, &buf, &len), 0);
    assert_int_equal(msg_decode_response(d, MSG_OP_PING, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, FORQ_ERR_PROTOCOL);
    if (memmem(resp.err.msg.ptr, resp.err.msg.len, what, strlen(what)) == NULL)
        fail_msg("'%s' not in '%.*s'", what, (int)resp.err.msg.len, resp.err.msg.ptr);
    free(buf);
    assert_true(harness_wait_closed(fd));
    close(fd);
}

/*
 * Containers may nest 8 deep (the top-level map is level 1) and hold 65536
 * elements in all (a map entry counts as two), whatever key they sit under:
 * at the limits a PING is answered, one more level or element is a protocol
 * error that closes the connection. Another client is served while the
 * offending frame is half sent, and after.
 */
static void
test_msgpack_structure_limits(void **state)
{
    struct harness_fixture *x = *state;
    struct msg_decoder d;
    msgpack_sbuffer sb;
    int fd;

    assert_int_equal(msg_decoder_init(&d), 0);
    wait_connections(x->c, 1);

    /* Depth: the map, then 7 arrays is 8 levels; 8 arrays is 9. */
    assert_true((fd = harness_connect(&x->h)) >= 0);
    pack_padded_ping(&sb, 1, MSG_MAX_DEPTH - 1, 0, 0);
    expect_pong(fd, &d, &sb, 1);
    pack_padded_ping(&sb, 2, MSG_MAX_DEPTH, 0, 0);
    expect_protocol_close(x, fd, &d, &sb, "nested too deep");

    /*
     * Elements, in two arrays together: the map's 4 entries count 8, the
     * arrays 65528 (the limit) or 65529.
     */
    assert_true((fd = harness_connect(&x->h)) >= 0);
    pack_padded_ping(&sb, 3, 0, 32764, MSG_MAX_ITEMS - 8 - 32764);
    expect_pong(fd, &d, &sb, 3);
    pack_padded_ping(&sb, 4, 0, 32764, MSG_MAX_ITEMS - 8 - 32764 + 1);
    expect_protocol_close(x, fd, &d, &sb, "too many msgpack elements");

    assert_int_equal(forq_ping(x->c), 0);
    echo_served(x->c, "other", "after");
    msg_decoder_fini(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_unread_answers_pause_the_reader),
        cmocka_unit_test(test_unread_watch_events_are_held_back),
        cmocka_unit_test(test_msgpack_structure_limits),
        cmocka_unit_test(test_too_many_queues),
        cmocka_unit_test(test_connection_limit), /* last: its closes may still be pending */
    };

    return cmocka_run_group_tests(tests, group_setup, harness_fixture_teardown);
}
