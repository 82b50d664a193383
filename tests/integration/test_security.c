/*
 * test_security.c — hostile and careless clients against a real forqd: the
 * shared token (HELLO must present it; before that only HELLO and PING, and
 * small frames; a wrong token ends the connection; a reload changes it),
 * the handshake, frame and idle timeouts, and unix socket peers admitted by
 * SO_PEERCRED. Each case checks the exact error and that a well-behaved
 * client connected at the same time keeps being served.
 *
 * No assertion depends on speed: a timeout is only ever awaited (with the
 * harness's generous guard), never measured.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"

static char token_path[128];

/* Write the token file (mode 0600) and return the flag naming it. */
static const char *
token_file(const char *token)
{
    static char flag[160];
    FILE *f;
    int fd;

    snprintf(token_path, sizeof(token_path), "/tmp/forq-token-%d", (int)getpid());
    unlink(token_path);
    assert_true((fd = open(token_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0);
    assert_non_null(f = fdopen(fd, "w"));
    assert_true(fprintf(f, "%s\n", token) > 0);
    assert_int_equal(fclose(f), 0);
    snprintf(flag, sizeof(flag), "--auth-token-file=%s", token_path);
    return flag;
}

static forq_client *
connect_token(const struct harness *h, const char *addr, const char *token, int *err)
{
    struct forq_connect_opts o = FORQ_CONNECT_OPTS_INIT;
    forq_client *c = NULL;

    o.token = token;
    *err = forq_connect_opts(addr != NULL ? addr : h->addr, &o, &c);
    return c;
}

/* One request on a raw connection; its error code (0: none). */
static int
raw_call(int fd, struct msg_decoder *d, struct msg_request *req)
{
    struct msg_response resp;
    uint8_t *buf;
    int code;

    assert_int_equal(harness_call(fd, d, req, &resp, &buf), 0);
    code = resp.err.code;
    free(buf);
    return code;
}

/*
 * The next frame is an error with rid 0 and this code, naming what in its
 * message; then forqd closes the connection. Closes fd.
 */
static void
expect_closed(int fd, int code, const char *what)
{
    struct msg_decoder d;
    struct msg_response resp;
    uint8_t *body;
    size_t len;

    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(harness_recv_frame(fd, &body, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_PING, body, len, &resp), 0);
    assert_int_equal(resp.rid, 0);
    assert_int_equal(resp.err.code, code);
    if (strstr(resp.err.msg.ptr, what) == NULL)
        fail_msg("'%s' not in '%.*s'", what, (int)resp.err.msg.len, resp.err.msg.ptr);
    free(body);
    msg_decoder_fini(&d);
    assert_int_equal(harness_wait_closed(fd), 1);
    close(fd);
}

/* A libforq client still gets its jobs done. */
static void
still_served(forq_client *c)
{
    forq_future *f;
    const void *data;
    size_t len;

    assert_int_equal(forq_ping(c), 0);
    assert_int_equal(forq_submit(c, "upper", "ok", 2, NULL, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(data, "OK", 2);
    forq_future_free(f);
}

/* A raw socket to a unix:// address. */
static int
unix_connect(const char *addr)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = addr + strlen("unix://");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(strlen(path) < sizeof(sun.sun_path));
    memcpy(sun.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    return fd;
}

static int
log_has(const struct harness *h, const char *text)
{
    static char log[65536];

    harness_read_log(h, log, sizeof(log));
    return strstr(log, text) != NULL;
}

#define HELLO_FRAME_MAX 4096 /* the largest frame before HELLO (daemon/conn.h) */

/* A PING whose body is exactly len bytes (padded under a key forqd ignores). */
static void
send_padded_ping(int fd, uint64_t rid, size_t len)
{
    static uint8_t zeros[HELLO_FRAME_MAX];
    uint8_t hdr[FRAME_HDR_LEN];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t pad;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "ping", 4);
    msgpack_pack_str_with_body(&pk, "rid", 3);
    msgpack_pack_uint64(&pk, rid);
    msgpack_pack_str_with_body(&pk, "pad", 3);
    pad = len - sb.size - 3; /* bin16: a 3-byte head */
    assert_true(pad >= 256 && pad <= sizeof(zeros));
    msgpack_pack_bin(&pk, pad);
    msgpack_pack_bin_body(&pk, zeros, pad);
    assert_int_equal(sb.size, len);
    frame_hdr_encode(hdr, (uint32_t)len);
    assert_int_equal(harness_send(fd, hdr, sizeof(hdr)), 0);
    assert_int_equal(harness_send(fd, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* Read the answer to request rid on fd; its error code (0: none). */
static int
recv_code(int fd, struct msg_decoder *d, uint64_t rid)
{
    struct msg_response resp;
    uint8_t *body;
    size_t len;
    int code;

    assert_int_equal(harness_recv_frame(fd, &body, &len), 0);
    assert_int_equal(msg_decode_response(d, MSG_OP_PING, body, len, &resp), 0);
    assert_int_equal(resp.rid, rid);
    code = resp.err.code;
    free(body);
    return code;
}

/* ------------------------------------------------------------------ the token */

static void
test_token(void **state)
{
    const char *args[] = {token_file("s3cret-token"), NULL};
    struct msg_request req = {.op = MSG_OP_PING, .rid = 1};
    struct msg_decoder d;
    struct harness h;
    forq_client *good, *c;
    uint8_t big[FRAME_HDR_LEN + 5000] = {0};
    int e, fd;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_non_null(good = connect_token(&h, NULL, "s3cret-token", &e));
    assert_int_equal(e, 0);
    still_served(good);

    /* libforq: a wrong token and no token are refused at connect. */
    assert_null(connect_token(&h, NULL, "s3cret-tokeN", &e));
    assert_int_equal(e, FORQ_ERR_AUTH);
    assert_null(connect_token(&h, NULL, NULL, &e));
    assert_int_equal(e, FORQ_ERR_AUTH);
    assert_null(connect_token(&h, NULL, "s3cret-token-and-more", &e));
    assert_int_equal(e, FORQ_ERR_AUTH);
    still_served(good);

    /* Raw: before HELLO, PING works and SUBMIT is refused; the connection stays. */
    assert_true((fd = harness_connect(&h)) >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(raw_call(fd, &d, &req), 0);
    req = (struct msg_request){.op = MSG_OP_SUBMIT, .rid = 2};
    req.u.submit.task = msg_str_c("echo");
    req.u.submit.payload = msg_str_c("x");
    assert_int_equal(raw_call(fd, &d, &req), FORQ_ERR_AUTH);
    req = (struct msg_request){.op = MSG_OP_STATS, .rid = 3};
    assert_int_equal(raw_call(fd, &d, &req), FORQ_ERR_AUTH);
    req = (struct msg_request){.op = MSG_OP_PING, .rid = 4};
    assert_int_equal(raw_call(fd, &d, &req), 0);
    /* The right token opens the rest. */
    req = (struct msg_request){.op = MSG_OP_HELLO, .rid = 5};
    req.u.hello.version = MSG_PROTO_VERSION;
    req.u.hello.token = msg_str_c("s3cret-token");
    assert_int_equal(raw_call(fd, &d, &req), 0);
    req = (struct msg_request){.op = MSG_OP_STATS, .rid = 6};
    assert_int_equal(raw_call(fd, &d, &req), 0);
    close(fd);

    /* A wrong token: refused, and the connection ends (one guess each). */
    assert_true((fd = harness_connect(&h)) >= 0);
    req = (struct msg_request){.op = MSG_OP_HELLO, .rid = 7};
    req.u.hello.version = MSG_PROTO_VERSION;
    req.u.hello.token = msg_str_c("guess");
    assert_int_equal(raw_call(fd, &d, &req), FORQ_ERR_AUTH);
    assert_int_equal(harness_wait_closed(fd), 1);
    close(fd);

    /* Before HELLO a frame may not be big: refused from its header, and closed. */
    assert_true((fd = harness_connect(&h)) >= 0);
    frame_hdr_encode(big, sizeof(big) - FRAME_HDR_LEN);
    assert_int_equal(harness_send(fd, big, FRAME_HDR_LEN), 0);
    expect_closed(fd, FORQ_ERR_TOO_BIG, "before authentication");
    still_served(good);

    /*
     * The limit is 4 KiB exactly: a PING of 4096 bytes is answered; a header
     * announcing 4097 is refused on its own.
     */
    assert_true((fd = harness_connect(&h)) >= 0);
    send_padded_ping(fd, 8, HELLO_FRAME_MAX);
    assert_int_equal(recv_code(fd, &d, 8), 0);
    frame_hdr_encode(big, HELLO_FRAME_MAX + 1);
    assert_int_equal(harness_send(fd, big, FRAME_HDR_LEN), 0);
    expect_closed(fd, FORQ_ERR_TOO_BIG, "before authentication");
    still_served(good);

    /*
     * A token longer than a token may be is a bad request, not a guess: the
     * connection stays, still unauthenticated.
     */
    assert_true((fd = harness_connect(&h)) >= 0);
    {
        char long_token[MSG_KEY_MAX + 2];

        memset(long_token, 't', sizeof(long_token) - 1);
        long_token[sizeof(long_token) - 1] = '\0';
        req = (struct msg_request){.op = MSG_OP_HELLO, .rid = 10};
        req.u.hello.version = MSG_PROTO_VERSION;
        req.u.hello.token = msg_str_c(long_token);
        assert_int_equal(raw_call(fd, &d, &req), FORQ_ERR_BAD_REQUEST);
    }
    req = (struct msg_request){.op = MSG_OP_PING, .rid = 11};
    assert_int_equal(raw_call(fd, &d, &req), 0);
    req = (struct msg_request){.op = MSG_OP_STATS, .rid = 12};
    assert_int_equal(raw_call(fd, &d, &req), FORQ_ERR_AUTH);
    still_served(good);
    close(fd);
    msg_decoder_fini(&d);
    assert_true(log_has(&h, "HELLO with a wrong token; closing it"));

    /* A reload changes the token: new connections need the new one; open ones stay. */
    token_file("the-next-token");
    kill(h.pid, SIGHUP);
    for (int64_t end = harness_now_ms() + HARNESS_GUARD_MS;
         (c = connect_token(&h, NULL, "the-next-token", &e)) == NULL;) {
        assert_int_equal(e, FORQ_ERR_AUTH);
        assert_true(harness_now_ms() < end);
        harness_sleep_ms(10);
    }
    still_served(c);
    forq_client_free(c);
    assert_null(connect_token(&h, NULL, "s3cret-token", &e));
    assert_int_equal(e, FORQ_ERR_AUTH);
    still_served(good);

    forq_client_free(good);
    assert_int_equal(harness_stop(&h), 0);
    unlink(token_path);
}

/*
 * A token added by a reload is for new connections: one opened before keeps
 * working, a new one needs it.
 */
static void
test_token_added_by_reload(void **state)
{
    char conf[128], arg[160];
    const char *args[] = {arg, NULL};
    struct harness h;
    forq_client *before, *c;
    FILE *f;
    int e;

    (void)state;
    snprintf(conf, sizeof(conf), "/tmp/forq-auth-%d.conf", (int)getpid());
    snprintf(arg, sizeof(arg), "--config=%s", conf);
    assert_non_null(f = fopen(conf, "w"));
    fputs("[forqd]\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &before), 0);
    still_served(before);

    assert_non_null(f = fopen(conf, "w"));
    fputs("[forqd]\nauth_token = added-later\n", f);
    assert_int_equal(fclose(f), 0);
    kill(h.pid, SIGHUP);
    for (int64_t end = harness_now_ms() + HARNESS_GUARD_MS;
         (c = connect_token(&h, NULL, NULL, &e)) != NULL;) {
        forq_client_free(c);
        assert_true(harness_now_ms() < end);
        harness_sleep_ms(10);
    }
    assert_int_equal(e, FORQ_ERR_AUTH);
    still_served(before);
    assert_non_null(c = connect_token(&h, NULL, "added-later", &e));
    still_served(c);
    forq_client_free(c);
    forq_client_free(before);
    assert_int_equal(harness_stop(&h), 0);
    unlink(conf);
}

/* ------------------------------------------------------------------ timeouts */

/* A connection that never says HELLO is closed at the handshake timeout. */
static void
test_handshake_timeout(void **state)
{
    const char *args[] = {token_file("tok"), "--handshake-timeout-ms=1000", NULL};
    struct harness h;
    forq_client *good;
    int e, fd;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_non_null(good = connect_token(&h, NULL, "tok", &e));
    assert_true((fd = harness_connect(&h)) >= 0);
    still_served(good); /* while the stranger is connected */
    expect_closed(fd, FORQ_ERR_AUTH, "handshake_timeout_ms");
    /* The authenticated client, quiet meanwhile, was not touched. */
    still_served(good);
    forq_client_free(good);
    assert_int_equal(harness_stop(&h), 0);
    unlink(token_path);
}

/* A client trickling a frame is closed at the frame timeout; the others go on. */
static void
test_frame_timeout(void **state)
{
    static const char *const args[] = {"--frame-timeout-ms=300", NULL};
    struct harness h;
    forq_client *good;
    uint8_t hdr[FRAME_HDR_LEN];
    int fd;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &good), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    frame_hdr_encode(hdr, 100);
    assert_int_equal(harness_send(fd, hdr, sizeof(hdr)), 0);
    assert_int_equal(harness_send(fd, "\x81", 1), 0); /* 1 byte of the 100 */
    still_served(good); /* while the frame is unfinished */
    expect_closed(fd, FORQ_ERR_TIMEOUT, "frame_timeout_ms");
    still_served(good);
    forq_client_free(good);
    assert_int_equal(harness_stop(&h), 0);
}

/*
 * A connection with nothing in flight is closed at the idle timeout; one
 * waiting for a job that runs longer than that is not idle.
 */
static void
test_idle_timeout(void **state)
{
    static const char *const args[] = {"--idle-timeout-ms=1000", NULL};
    struct msg_request req = {.op = MSG_OP_SUBMIT, .rid = 1};
    struct msg_response resp;
    struct msg_decoder d;
    struct harness h;
    uint8_t *buf;
    size_t len;
    int idle, waiting;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_true((idle = harness_connect(&h)) >= 0);
    assert_true((waiting = harness_connect(&h)) >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    req.u.submit.task = msg_str_c("sleep");
    req.u.submit.payload = msg_str_c("4000");
    assert_int_equal(harness_call(waiting, &d, &req, &resp, &buf), 0);
    assert_int_equal(resp.err.code, 0);
    req = (struct msg_request){.op = MSG_OP_WAIT, .rid = 2};
    req.u.wait.id = resp.id;
    req.u.wait.timeout_ms = -1;
    free(buf);
    assert_int_equal(harness_send_request(waiting, &req), 0);
    /* The other connection is served while the idle one is still open. */
    req = (struct msg_request){.op = MSG_OP_PING, .rid = 3};
    assert_int_equal(harness_call(waiting, &d, &req, &resp, &buf), 0);
    assert_int_equal(resp.rid, 3);
    assert_int_equal(resp.err.code, 0);
    free(buf);
    expect_closed(idle, FORQ_ERR_TIMEOUT, "idle_timeout_ms");
    /* Its job takes four idle timeouts; the WAIT holds the connection open. */
    assert_int_equal(harness_recv_frame(waiting, &buf, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_WAIT, buf, len, &resp), 0);
    assert_int_equal(resp.rid, 2);
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    free(buf);
    msg_decoder_fini(&d);
    close(waiting);
    assert_int_equal(harness_stop(&h), 0);
}

/* ------------------------------------------------------------------ peer credentials */

/* allow_uids without the test's uid: a unix peer is refused; TCP is not concerned. */
static void
test_peer_refused(void **state)
{
    char arg[64];
    const char *args[] = {arg, NULL};
    struct harness h;
    forq_client *tcp;
    int fd;

    (void)state;
    snprintf(arg, sizeof(arg), "--allow-uids=%u", (unsigned)getuid() + 4242);
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &tcp), 0);
    fd = unix_connect(h.unix_addr);
    expect_closed(fd, FORQ_ERR_AUTH, "is not in allow_uids or allow_gids");
    assert_true(log_has(&h, "refusing a unix socket peer"));
    still_served(tcp);
    forq_client_free(tcp);
    assert_int_equal(harness_stop(&h), 0);
}

/* The test's uid, or its gid, in the lists: admitted, and named in the log. */
static void
test_peer_admitted(void **state)
{
    char uids[64], gids[64], line[64];
    const char *by_uid[] = {uids, "--log-level=debug", NULL};
    const char *by_gid[] = {"--allow-uids=4242424", gids, "--log-level=debug", NULL};
    const char *const *cases[] = {by_uid, by_gid};
    struct harness h;
    forq_client *c;

    (void)state;
    snprintf(uids, sizeof(uids), "--allow-uids=4242424,%u", (unsigned)getuid());
    snprintf(gids, sizeof(gids), "--allow-gids=%u", (unsigned)getgid());
    snprintf(line, sizeof(line), "from unix uid %u pid %d", (unsigned)getuid(), (int)getpid());
    for (int i = 0; i < 2; i++) {
        assert_int_equal(harness_start(&h, cases[i]), 0);
        assert_int_equal(forq_connect(h.unix_addr, &c), 0);
        still_served(c);
        forq_client_free(c);
        assert_true(log_has(&h, line));
        assert_int_equal(harness_stop(&h), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_token_added_by_reload),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_frame_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_peer_refused),
        cmocka_unit_test(test_peer_admitted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
