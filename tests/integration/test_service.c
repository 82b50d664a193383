/*
 * test_service.c — forqd as a systemd service, on a real forqd: the notify
 * protocol played by the test (READY=1 only once the socket answers,
 * WATCHDOG=1, RELOADING=1, STOPPING=1), socket activation through
 * systemd-socket-activate, the SIGTERM drain (running jobs finish, queued ones
 * survive a restart, submissions in flight are answered, exit 0; past the
 * drain timeout running jobs go back to their queue uncharged), SIGHUP
 * reloads (a new exec task, a removed one, a bad file, a restart-only
 * setting; connections kept; reloads amid submissions), the log format, and
 * the metrics endpoint scraped and parsed.
 *
 * No assertion depends on speed; waits have only generous guards.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* Wait (guarded) until forqd's log contains text. */
static void
wait_log(const struct harness *h, const char *text)
{
    static char log[65536];
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    for (;;) {
        harness_read_log(h, log, sizeof(log));
        if (strstr(log, text) != NULL)
            return;
        if (harness_now_ms() > deadline)
            fail_msg("no '%s' in the log:\n%s", text, log);
        harness_sleep_ms(10);
    }
}

static int
log_has(const struct harness *h, const char *text)
{
    static char log[65536];

    harness_read_log(h, log, sizeof(log));
    return strstr(log, text) != NULL;
}

/* Submit and wait for the outcome; returns the code, the result copied into out. */
static int
run_job(forq_client *c, const char *task, const char *payload, char *out, size_t outlen)
{
    forq_future *f;
    const void *data;
    size_t len;
    int e;

    if ((e = forq_submit(c, task, payload, strlen(payload), NULL, &f)) != 0)
        return e;
    e = forq_future_result(f, HARNESS_GUARD_MS, &data, &len);
    if (e == 0 && out != NULL)
        snprintf(out, outlen, "%.*s", (int)len, (const char *)data);
    else if (e != 0 && out != NULL)
        snprintf(out, outlen, "%s", forq_future_error(f) ? forq_future_error(f) : "");
    forq_future_free(f);
    return e;
}

/* Poll STATUS until the job is in state (guarded). */
static void
wait_state(forq_client *c, uint64_t id, int state)
{
    struct forq_job_info info;
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    for (;;) {
        int now;

        assert_int_equal(forq_status(c, id, &info), 0);
        now = info.state;
        forq_job_info_clear(&info);
        if (now == state)
            return;
        assert_true(harness_now_ms() < deadline);
        harness_sleep_ms(10);
    }
}

/*
 * The gate task: an exec task that runs until the test creates a file, so a
 * job is certainly still running when the test needs it to be, and ends
 * when the test says (no race with a sleep's length).
 */
static char gate_script[128], gate_file[128];

/* Write the gate's script; returns the command for --task gate=... or exec =. */
static const char *
gate_setup(void)
{
    static char cmd[160];
    FILE *f;

    snprintf(gate_script, sizeof(gate_script), "/tmp/forq-gate-%d.sh", (int)getpid());
    snprintf(gate_file, sizeof(gate_file), "/tmp/forq-gate-%d.open", (int)getpid());
    unlink(gate_file);
    assert_non_null(f = fopen(gate_script, "w"));
    fprintf(f, "while [ ! -e %s ]; do sleep 0.01; done\necho through\n", gate_file);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof(cmd), "/bin/sh %s", gate_script);
    return cmd;
}

static void
gate_open(void)
{
    int fd = open(gate_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    close(fd);
}

static void
gate_cleanup(void)
{
    unlink(gate_file);
    unlink(gate_script);
}

/* ------------------------------------------------------------------ the notify socket */

struct notify {
    char dir[64];
    char path[128];
    int fd;
};

/* A datagram socket playing systemd's notify socket; NOTIFY_SOCKET points at it. */
static void
notify_open(struct notify *n)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    snprintf(n->dir, sizeof(n->dir), "/tmp/forq-notify-XXXXXX");
    assert_non_null(mkdtemp(n->dir));
    snprintf(n->path, sizeof(n->path), "%s/notify", n->dir);
    assert_true(strlen(n->path) < sizeof(sun.sun_path));
    memcpy(sun.sun_path, n->path, strlen(n->path) + 1);
    assert_true((n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
    assert_int_equal(bind(n->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", n->path, 1), 0);
}

static void
notify_close(struct notify *n)
{
    unsetenv("NOTIFY_SOCKET");
    close(n->fd);
    unlink(n->path);
    rmdir(n->dir);
}

/* The next datagram (NUL-terminated), or fail after the guard. */
static void
notify_recv(struct notify *n, char *buf, size_t len)
{
    struct pollfd p = {.fd = n->fd, .events = POLLIN};
    ssize_t k;

    assert_int_equal(poll(&p, 1, HARNESS_GUARD_MS), 1);
    k = recv(n->fd, buf, len - 1, 0);
    assert_true(k > 0);
    buf[k] = '\0';
}

/* Read datagrams until one contains what; fail after the guard. */
static void
notify_expect(struct notify *n, const char *what, char *buf, size_t len)
{
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    do {
        notify_recv(n, buf, len);
        if (strstr(buf, what) != NULL)
            return;
    } while (harness_now_ms() < deadline);
    fail_msg("no %s from forqd", what);
}

static int
unix_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

    assert_true(strlen(path) < sizeof(sun.sun_path));
    memcpy(sun.sun_path, path, strlen(path) + 1);
    r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    return r;
}

/*
 * READY=1 comes only when the listeners accept: the moment it arrives, a
 * connect to the unix socket must succeed (forqd has not even been waited
 * for otherwise). Then the watchdog pings, and STOPPING=1 on SIGTERM.
 */
static void
test_notify(void **state)
{
    static const char *const args[] = {"--workers=2", "--task=env=/usr/bin/env", NULL};
    struct notify n;
    struct harness h;
    forq_client *c;
    char msg[1024];
    static char env[65536];

    (void)state;
    notify_open(&n);
    setenv("WATCHDOG_USEC", "200000", 1);
    assert_int_equal(harness_spawn_wrapped(&h, NULL, args), 0);
    unsetenv("WATCHDOG_USEC");
    notify_recv(&n, msg, sizeof(msg));
    assert_non_null(strstr(msg, "READY=1"));
    assert_int_equal(unix_connect(h.unix_addr + strlen("unix://")), 0);
    assert_non_null(strstr(msg, "STATUS=0 queued, 0 running"));

    assert_int_equal(harness_wait_ready(&h), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_ping(c), 0);
    /* Tasks do not inherit forqd's line to systemd. */
    assert_int_equal(run_job(c, "env", "", env, sizeof(env)), 0);
    assert_non_null(strstr(env, "PATH="));
    assert_null(strstr(env, "NOTIFY_SOCKET="));
    assert_null(strstr(env, "WATCHDOG_USEC="));
    notify_expect(&n, "WATCHDOG=1", msg, sizeof(msg));
    assert_true(log_has(&h, "systemd watchdog: pinging every 100 ms"));

    kill(h.pid, SIGHUP); /* a reload: RELOADING=1 with its start time, then READY=1 */
    notify_expect(&n, "RELOADING=1", msg, sizeof(msg));
    assert_non_null(strstr(msg, "MONOTONIC_USEC="));
    notify_expect(&n, "READY=1", msg, sizeof(msg));

    kill(h.pid, SIGTERM);
    notify_expect(&n, "STOPPING=1", msg, sizeof(msg));
    assert_non_null(strstr(msg, "STATUS=draining"));
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
    notify_close(&n);
}

/* A malformed watchdog setting is not fatal: forqd runs without pinging. */
static void
test_notify_bad_watchdog(void **state)
{
    static const char *const args[] = {"--workers=1", NULL};
    struct notify n;
    struct harness h;
    char msg[1024];

    (void)state;
    notify_open(&n);
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_int_equal(harness_spawn_wrapped(&h, NULL, args), 0);
    unsetenv("WATCHDOG_USEC");
    notify_recv(&n, msg, sizeof(msg));
    assert_non_null(strstr(msg, "READY=1"));
    assert_int_equal(harness_wait_ready(&h), 0);
    assert_true(log_has(&h, "ignoring WATCHDOG_USEC"));
    assert_false(log_has(&h, "systemd watchdog: pinging"));
    assert_int_equal(harness_stop(&h), 0);
    notify_close(&n);
}

/* ------------------------------------------------------------------ socket activation */

/*
 * systemd-socket-activate binds the socket and starts forqd only once a
 * client connects: the client's connection waits in the backlog and is
 * served by forqd over the passed socket. forqd's own --listen is unused.
 */
static void
test_socket_activation(void **state)
{
    char sock[300], addr[320], wrapper_l[310], out[64];
    const char *wrapper[] = {FORQ_SOCKET_ACTIVATE_PATH, wrapper_l, NULL};
    static const char *const args[] = {"--workers=1", NULL};
    struct harness h;
    forq_client *c = NULL;
    struct stat st;
    int64_t deadline;

    (void)state;
    /* The dir comes from harness_spawn_wrapped; name the socket inside it after. */
    snprintf(sock, sizeof(sock), "/tmp/forq-act-%d.sock", (int)getpid());
    snprintf(wrapper_l, sizeof(wrapper_l), "-l%s", sock);
    unlink(sock);
    assert_int_equal(harness_spawn_wrapped(&h, wrapper, args), 0);
    deadline = harness_now_ms() + HARNESS_GUARD_MS;
    while (stat(sock, &st) != 0) {
        assert_true(harness_now_ms() < deadline);
        harness_sleep_ms(10);
    }
    snprintf(addr, sizeof(addr), "unix://%s", sock);
    assert_int_equal(forq_connect(addr, &c), 0); /* this connection starts forqd */
    assert_int_equal(run_job(c, "echo", "activated", out, sizeof(out)), 0);
    assert_string_equal(out, "activated");
    wait_log(&h, "(passed by systemd)");
    assert_false(log_has(&h, "listening on tcp://"));
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
    /* The socket belongs to whoever created it: forqd does not unlink it. */
    assert_int_equal(stat(sock, &st), 0);
    unlink(sock);
}

/* ------------------------------------------------------------------ drain */

/*
 * SIGTERM with one job running and three queued: the connection stays up,
 * the running job finishes and the WAIT sent before the signal gets its
 * result, a new SUBMIT is refused with `shutdown`, new connections are
 * refused, forqd exits 0; after a restart the three queued jobs run.
 */
static void
test_drain(void **state)
{
    char task[200];
    const char *args[] = {"--workers=1", "--drain-timeout-ms=60000", task, NULL};
    struct harness h;
    forq_client *c;
    forq_future *run, *queued[3], *f;
    struct msg_decoder d;
    struct msg_request req = {.op = MSG_OP_WAIT, .rid = 7};
    struct msg_response resp;
    const void *data;
    uint8_t *body;
    size_t len;
    uint64_t ids[3];
    char out[64];
    int fd;

    (void)state;
    snprintf(task, sizeof(task), "--task=gate=%s", gate_setup());
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(forq_submit(c, "gate", "", 0, NULL, &run), 0);
    wait_state(c, forq_future_id(run), FORQ_STATE_RUNNING);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(forq_submit(c, "echo", "later", 5, NULL, &queued[i]), 0);
        ids[i] = forq_future_id(queued[i]);
    }
    req.u.wait.id = forq_future_id(run);
    req.u.wait.timeout_ms = -1;
    assert_int_equal(harness_send_request(fd, &req), 0);

    kill(h.pid, SIGTERM);
    wait_log(&h, "draining (timeout 60000 ms)");
    assert_int_equal(forq_submit(c, "echo", "x", 1, NULL, &f), FORQ_ERR_SHUTDOWN);
    assert_true(harness_connect(&h) < 0); /* the listener is closed */
    assert_true(kill(h.pid, 0) == 0);     /* still there: the gate job runs */
    gate_open();
    /* The reply to the WAIT made before the signal arrives before forqd exits. */
    assert_int_equal(harness_recv_frame(fd, &body, &len), 0);
    assert_int_equal(msg_decode_response(&d, MSG_OP_WAIT, body, len, &resp), 0);
    assert_int_equal(resp.err.code, 0);
    assert_int_equal(resp.job.state, FORQ_STATE_SUCCEEDED);
    assert_int_equal(resp.job.result.len, 8);
    assert_memory_equal(resp.job.result.ptr, "through\n", 8);
    free(body);
    assert_int_equal(harness_stop_keep(&h), 0);
    assert_true(log_has(&h, "drained: no job is running"));
    forq_future_free(run);
    for (int i = 0; i < 3; i++)
        forq_future_free(queued[i]);
    forq_client_free(c);
    msg_decoder_fini(&d);
    close(fd);

    assert_int_equal(harness_restart(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(forq_future_from_id(c, ids[i], &f), 0);
        assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
        assert_int_equal(len, 5);
        forq_future_free(f);
    }
    assert_int_equal(run_job(c, "echo", "new", out, sizeof(out)), 0);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
    gate_cleanup();
}

/*
 * Past the drain timeout the running job is stopped and queued again, its
 * attempt not counted: after the restart it runs as attempt 1 of 1.
 */
static void
test_drain_timeout(void **state)
{
    static const char *const args[] = {"--workers=1", "--drain-timeout-ms=200", NULL};
    struct harness h;
    struct forq_job_info info;
    forq_client *c;
    forq_future *f;
    uint64_t id;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_submit(c, "sleep", "600000", 6, NULL, &f), 0);
    id = forq_future_id(f);
    assert_true(harness_wait_running(c, id) > 0);
    forq_future_free(f);
    forq_client_free(c);
    assert_int_equal(harness_stop_keep(&h), 0);
    assert_true(log_has(&h, "drain timeout (200 ms)"));
    assert_true(log_has(&h, "was still running; queued again"));

    assert_int_equal(harness_restart(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_true(harness_wait_running(c, id) > 0);
    assert_int_equal(forq_status(c, id, &info), 0);
    assert_int_equal(info.attempts, 1);
    forq_job_info_clear(&info);
    assert_int_equal(forq_cancel_running(c, id), 0);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

/* A second SIGTERM ends the drain at once; the job still goes back to its queue. */
static void
test_drain_twice(void **state)
{
    static const char *const args[] = {"--workers=1", "--drain-timeout-ms=600000", NULL};
    struct harness h;
    forq_client *c;
    forq_future *f;
    int status;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_submit(c, "sleep", "600000", 6, NULL, &f), 0);
    assert_true(harness_wait_running(c, forq_future_id(f)) > 0);
    kill(h.pid, SIGTERM);
    wait_log(&h, "draining (timeout 600000 ms)");
    kill(h.pid, SIGTERM);
    assert_int_equal(waitpid(h.pid, &status, 0), h.pid);
    h.pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(log_has(&h, "again: stopping now"));
    assert_true(log_has(&h, "was still running; queued again"));
    forq_future_free(f);
    forq_client_free(c);
    (void)harness_stop(&h); /* reaped above: this removes the temp dir */
}

/* Pipeline n SUBMITs of task (empty payload) on fd, rids rid0 and up. */
static void
submit_burst(int fd, const char *task, int n, uint64_t rid0)
{
    struct msg_request req = {.op = MSG_OP_SUBMIT};

    req.u.submit.task = msg_str_c(task);
    req.u.submit.payload = msg_str_c("");
    for (int i = 0; i < n; i++) {
        req.rid = rid0 + (uint64_t)i;
        assert_int_equal(harness_send_request(fd, &req), 0);
    }
}

/*
 * Read the n SUBMIT replies of a burst: the ids accepted go to ids (*nids of
 * them); returns how many were refused with shutdown (any other error fails).
 */
static int
submit_replies(int fd, struct msg_decoder *d, int n, uint64_t *ids, int *nids)
{
    struct msg_response resp;
    uint8_t *body;
    size_t len;
    int refused = 0;

    *nids = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(harness_recv_frame(fd, &body, &len), 0);
        assert_int_equal(msg_decode_response(d, MSG_OP_SUBMIT, body, len, &resp), 0);
        if (resp.err.code == 0)
            ids[(*nids)++] = resp.id;
        else if (resp.err.code == FORQ_ERR_SHUTDOWN)
            refused++;
        else
            fail_msg("SUBMIT refused: %s", forq_strerror(resp.err.code));
        free(body);
    }
    return refused;
}

/* Restart forqd on its data and check that every id is stored as a job of task. */
static void
restart_expect_stored(struct harness *h, const char *const *args, const uint64_t *ids, int n,
                      const char *task)
{
    struct forq_job_info info;
    forq_client *c;

    assert_int_equal(harness_restart(h, args), 0);
    assert_int_equal(forq_connect(h->addr, &c), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(forq_status(c, ids[i], &info), 0);
        assert_string_equal(info.task, task);
        forq_job_info_clear(&info);
    }
    forq_client_free(c);
    assert_int_equal(harness_stop(h), 0);
}

/*
 * SIGTERM right behind a burst of submissions: forqd answers every one
 * before it exits (accepted, or refused with shutdown), and every accepted
 * job is there after the restart. The drain waits for the store's answers,
 * not only for running jobs; with no drain (timeout 0) the stop still does.
 */
static void
drain_inflight(const char *timeout)
{
    enum { BURST = 300 };
    const char *const args[] = {"--workers=1", timeout, NULL};
    struct msg_decoder d;
    struct harness h;
    uint64_t ids[BURST];
    int fd, nids, refused;

    assert_int_equal(harness_start(&h, args), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    submit_burst(fd, "echo", BURST, 1);
    kill(h.pid, SIGTERM);
    refused = submit_replies(fd, &d, BURST, ids, &nids);
    assert_int_equal(nids + refused, BURST);
    msg_decoder_fini(&d);
    close(fd);
    assert_int_equal(harness_stop_keep(&h), 0);
    restart_expect_stored(&h, args, ids, nids, "echo");
}

static void
test_drain_inflight(void **state)
{
    (void)state;
    drain_inflight("--drain-timeout-ms=600000");
}

static void
test_stop_inflight(void **state)
{
    (void)state;
    drain_inflight("--drain-timeout-ms=0");
}

/* ------------------------------------------------------------------ reload */

#define HELLO_TASK "\n[task.hello]\nexec = /bin/echo hi\n"

/* The reload test's file: the [forqd] lines, the gate task, then more sections. */
static void
write_gate_conf(const char *path, const char *forqd, const char *gate, const char *more)
{
    char text[1024];

    snprintf(text, sizeof(text), "[forqd]\n%s\n[task.gate]\nexec = %s\n%s", forqd, gate, more);
    harness_write_file(path, text);
}

/* Worker pids from STATS; all different from old's (the workers were replaced)? */
static int
all_replaced(forq_client *c, const pid_t *old, int n)
{
    pid_t now[16];
    int k = harness_worker_pids(c, now, 16);

    if (k != n)
        return 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < n; j++)
            if (now[i] == old[j] || now[i] <= 0)
                return 0;
    return 1;
}

/*
 * A task added to the config file is usable after SIGHUP, on connections
 * opened before it; the workers are replaced. A bad file changes nothing,
 * and a restart-only setting is kept with a warning. Removing the task makes
 * a queued job of it fail with unknown_task.
 */
static void
test_reload(void **state)
{
    char conf[300], arg[320], out[256];
    const char *gate = gate_setup();
    const char *args[] = {arg, "--workers=2", NULL};
    struct harness h;
    forq_client *c;
    struct msg_decoder d;
    struct msg_request req = {.op = MSG_OP_PING, .rid = 1};
    struct msg_response resp;
    forq_future *sleeper, *queued;
    const void *data;
    size_t len;
    uint8_t *buf;
    pid_t old[16];
    int64_t deadline;
    int fd, nold;

    (void)state;
    snprintf(conf, sizeof(conf), "/tmp/forq-reload-%d.conf", (int)getpid());
    snprintf(arg, sizeof(arg), "--config=%s", conf);
    write_gate_conf(conf, "log_level = info\n", gate, "");
    assert_int_equal(harness_start(&h, args), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    assert_int_equal(run_job(c, "hello", "", out, sizeof(out)), FORQ_ERR_UNKNOWN_TASK);
    assert_true((nold = harness_worker_pids(c, old, 16)) == 2);

    /* A new exec task. */
    write_gate_conf(conf, "log_level = info\n", gate, HELLO_TASK);
    harness_reload(&h, 1);
    assert_int_equal(run_job(c, "hello", "", out, sizeof(out)), 0);
    assert_string_equal(out, "hi\n");
    assert_true(log_has(&h, "task definitions changed"));
    deadline = harness_now_ms() + HARNESS_GUARD_MS;
    while (!all_replaced(c, old, nold)) {
        assert_true(harness_now_ms() < deadline);
        harness_sleep_ms(10);
    }
    /* The raw connection opened before the reload still answers. */
    assert_int_equal(harness_call(fd, &d, &req, &resp, &buf), 0);
    assert_int_equal(resp.err.code, 0);
    free(buf);

    /* A file with an error: nothing changes, forqd keeps serving. */
    harness_write_file(conf, "[forqd]\nworkers = many\n");
    harness_reload(&h, 2);
    assert_true(log_has(&h, "workers: expected a number"));
    assert_int_equal(run_job(c, "hello", "", out, sizeof(out)), 0);
    assert_string_equal(out, "hi\n");

    /*
     * A file that parses but cannot be applied (a task whose program does
     * not exist) changes nothing either, not even the restart-only settings
     * it names: the next reload, back to the old file, does not see them as
     * changed.
     */
    write_gate_conf(conf, "metrics_listen = tcp://127.0.0.1:1\n", gate,
                    "\n[task.broken]\nexec = /nonexistent/forq-no-such-program\n");
    harness_reload(&h, 3);
    assert_int_equal(harness_log_count(&h, "keeping the running configuration"), 2);
    assert_true(log_has(&h, "forq-no-such-program"));
    assert_int_equal(harness_log_count(&h, "reload: metrics_listen changed"), 1);
    assert_int_equal(run_job(c, "hello", "", out, sizeof(out)), 0);

    /* A restart-only setting is kept; the rest applies. */
    assert_false(log_has(&h, " from 127.0.0.1:")); /* info: no connection lines */
    write_gate_conf(conf, "durability = normal\nlog_level = debug\n", gate, HELLO_TASK);
    harness_reload(&h, 4);
    assert_true(log_has(&h, "reload: durability changed; it takes effect at the next start"));
    assert_int_equal(harness_log_count(&h, "reload: metrics_listen changed"), 1);
    assert_int_equal(harness_worker_pids(c, old, 16), 2);
    assert_int_equal(harness_log_count(&h, "task definitions changed"), 1); /* tasks unchanged */
    {
        int fd2 = harness_connect(&h); /* debug now: forqd logs the connection */

        assert_true(fd2 >= 0);
        wait_log(&h, " from 127.0.0.1:");
        close(fd2);
    }

    /* Remove the task while a job of it waits behind two gate jobs. */
    assert_int_equal(forq_submit(c, "gate", "", 0, NULL, &sleeper), 0);
    {
        forq_future *second;

        assert_int_equal(forq_submit(c, "gate", "", 0, NULL, &second), 0);
        wait_state(c, forq_future_id(second), FORQ_STATE_RUNNING);
        wait_state(c, forq_future_id(sleeper), FORQ_STATE_RUNNING);
        assert_int_equal(forq_submit(c, "hello", "", 0, NULL, &queued), 0);
        write_gate_conf(conf, "log_level = info\n", gate, "");
        harness_reload(&h, 5);
        gate_open();
        assert_int_equal(forq_future_result(second, HARNESS_GUARD_MS, &data, &len), 0);
        forq_future_free(second);
    }
    assert_int_equal(forq_future_result(sleeper, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(forq_future_result(queued, HARNESS_GUARD_MS, &data, &len),
                     FORQ_ERR_UNKNOWN_TASK);
    assert_non_null(strstr(forq_future_error(queued), "removed by a reload"));
    wait_state(c, forq_future_id(queued), FORQ_STATE_FAILED);
    assert_int_equal(harness_log_count(&h, "task definitions changed"), 2);
    assert_int_equal(run_job(c, "hello", "", out, sizeof(out)), FORQ_ERR_UNKNOWN_TASK);
    assert_int_equal(run_job(c, "echo", "still", out, sizeof(out)), 0);
    forq_future_free(sleeper);
    forq_future_free(queued);

    msg_decoder_fini(&d);
    close(fd);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
    unlink(conf);
    gate_cleanup();
}

/*
 * SIGHUP while submissions are on their way to the store: every one is
 * accepted, and stored under its task's name (an INSERT record must not
 * borrow the name from the configuration the reload frees; the sanitizer
 * build catches it reading freed memory, the restart a wrong name).
 */
static void
test_reload_under_load(void **state)
{
    enum { ROUNDS = 5, BURST = 100 };
    static const char text[] = "[forqd]\n\n[task.hello]\nexec = /bin/echo hi\n";
    char conf[300], arg[320];
    const char *args[] = {arg, "--workers=1", NULL};
    struct msg_decoder d;
    struct harness h;
    uint64_t ids[ROUNDS * BURST];
    int fd, n;

    (void)state;
    snprintf(conf, sizeof(conf), "/tmp/forq-reload-load-%d.conf", (int)getpid());
    snprintf(arg, sizeof(arg), "--config=%s", conf);
    harness_write_file(conf, text);
    assert_int_equal(harness_start(&h, args), 0);
    assert_true((fd = harness_connect(&h)) >= 0);
    assert_int_equal(msg_decoder_init(&d), 0);
    for (int r = 0; r < ROUNDS; r++) {
        submit_burst(fd, "hello", BURST, (uint64_t)(r * BURST) + 1);
        kill(h.pid, SIGHUP); /* while some of the burst waits for the store */
        assert_int_equal(submit_replies(fd, &d, BURST, ids + r * BURST, &n), 0);
        assert_int_equal(n, BURST);
        harness_reload_wait(&h, r + 1);
    }
    assert_int_equal(harness_log_count(&h, "reloaded the configuration"), ROUNDS);
    msg_decoder_fini(&d);
    close(fd);
    assert_int_equal(harness_stop_keep(&h), 0);
    restart_expect_stored(&h, args, ids, ROUNDS * BURST, "hello");
    unlink(conf);
}

/* ------------------------------------------------------------------ logs */

/* Each line of forqd's log passes ok(line); returns how many lines there are. */
static int
log_lines(const struct harness *h, int (*ok)(const char *line))
{
    static char log[65536];
    int n = 0;

    harness_read_log(h, log, sizeof(log));
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n"), n++)
        if (!ok(line))
            fail_msg("unexpected log line: %s", line);
    return n;
}

/* Under journald: "<P>function: text", P a syslog priority; no timestamp. */
static int
journal_line(const char *line)
{
    return line[0] == '<' && line[1] != '\0' && strchr("3467", line[1]) != NULL && line[2] == '>' &&
           (isalpha((unsigned char)line[3]) || line[3] == '_') && strchr(line, ':') != NULL;
}

/* Otherwise: "YYYY-MM-DD HH:MM:SS.mmm forqd[PID] LEVEL function: text". */
static int
plain_line(const char *line)
{
    int y, mo, d, hh, mm, ss, ms, pid, end = 0;
    char level[8];

    return sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d.%3d forqd[%d] %7s %*[^:]:%n", &y, &mo, &d, &hh,
                  &mm, &ss, &ms, &pid, level, &end) == 9 &&
           end > 0 && pid > 0 &&
           (strcmp(level, "info") == 0 || strcmp(level, "warn") == 0 ||
            strcmp(level, "error") == 0);
}

/*
 * Logs: with JOURNAL_STREAM set (as systemd sets it for a service whose
 * stderr is the journal) each line starts with its syslog priority and has
 * no timestamp; --log-level=debug lets <7> lines through. Without it, lines
 * carry a timestamp, the pid and the level, and info hides debug.
 */
static void
test_logs(void **state)
{
    static const char *const debug[] = {"--log-level=debug", NULL};
    struct harness h;
    forq_client *c;

    (void)state;
    setenv("JOURNAL_STREAM", "8:12345", 1);
    assert_int_equal(harness_spawn_wrapped(&h, NULL, debug), 0);
    unsetenv("JOURNAL_STREAM");
    assert_int_equal(harness_wait_ready(&h), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_ping(c), 0);
    wait_log(&h, "<7>conn_new: connection "); /* a debug line, with its priority */
    assert_true(log_has(&h, "<6>server_new: forqd "));
    forq_client_free(c);
    assert_true(log_lines(&h, journal_line) > 3);
    assert_int_equal(harness_stop(&h), 0);

    unsetenv("JOURNAL_STREAM"); /* the tests may run under systemd themselves */
    assert_int_equal(harness_start(&h, NULL), 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    assert_int_equal(forq_ping(c), 0);
    forq_client_free(c);
    assert_true(log_lines(&h, plain_line) > 3); /* and no debug line among them */
    assert_true(log_has(&h, " info server_new: forqd "));
    assert_int_equal(harness_stop(&h), 0);
}

/* ------------------------------------------------------------------ metrics */

/* GET path from the metrics port; the whole response into buf. Returns its length. */
static size_t
http_get(int port, const char *path, char *buf, size_t len)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256];
    size_t n = 0;
    ssize_t k;
    int fd;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    assert_true(harness_send(fd, req, strlen(req)) == 0);
    while (n < len - 1 && (k = read(fd, buf + n, len - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fd);
    return n;
}

/* The value of the sample line starting with "name " (exact series), or -1. */
static double
sample(const char *body, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = body; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static void
test_metrics(void **state)
{
    static const char *const args[] = {"--workers=2", "--metrics-listen=tcp://127.0.0.1:0", NULL};
    static char body[1 << 16];
    struct harness h;
    forq_client *c;
    char log[16384], out[64];
    const char *p;
    int port;

    (void)state;
    assert_int_equal(harness_start(&h, args), 0);
    harness_read_log(&h, log, sizeof(log));
    assert_non_null(p = strstr(log, "metrics on http://127.0.0.1:"));
    port = atoi(p + strlen("metrics on http://127.0.0.1:"));
    assert_true(port > 0);
    assert_int_equal(forq_connect(h.addr, &c), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(run_job(c, "echo", "m", out, sizeof(out)), 0);
    assert_int_equal(run_job(c, "fail", "no", out, sizeof(out)), FORQ_ERR_TASK_FAILED);

    http_get(port, "/metrics", body, sizeof(body));
    assert_non_null(strstr(body, "HTTP/1.0 200") ? body : strstr(body, "HTTP/1.1 200"));
    assert_non_null(strstr(body, "text/plain; version=0.0.4"));
    assert_non_null(p = strstr(body, "\r\n\r\n"));
    p += 4;
    assert_true(sample(p, "forq_up") == 1);
    assert_true(sample(p, "forq_jobs_submitted_total") == 6);
    assert_true(sample(p, "forq_jobs_succeeded_total") == 5);
    assert_true(sample(p, "forq_jobs_failed_total") == 1);
    assert_true(sample(p, "forq_queue_depth{queue=\"default\"}") == 0);
    assert_true(sample(p, "forq_job_run_seconds_count") == 6);
    assert_true(sample(p, "forq_job_run_seconds_bucket{le=\"+Inf\"}") == 6);
    assert_true(sample(p, "forq_job_wait_seconds_count") == 6);
    assert_true(sample(p, "forq_store_commit_seconds_count") >= 1);
    assert_true(sample(p, "forq_store_batch_size_count") >= 1);
    assert_true(sample(p, "forq_workers{state=\"idle\"}") == 2);
    assert_true(sample(p, "forq_worker_restarts_total") == 0);

    http_get(port, "/nope", body, sizeof(body));
    assert_non_null(strstr(body, " 404 "));
    /* The daemon kept serving through the scrapes. */
    assert_int_equal(run_job(c, "echo", "after", out, sizeof(out)), 0);
    forq_client_free(c);
    assert_int_equal(harness_stop(&h), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_notify_bad_watchdog),
        cmocka_unit_test(test_socket_activation),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_drain_timeout),
        cmocka_unit_test(test_drain_twice),
        cmocka_unit_test(test_drain_inflight),
        cmocka_unit_test(test_stop_inflight),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_reload_under_load),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_metrics),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
