/*
 * test_echo_server.c — examples/echo-server against a real forqd: 50 clients
 * at once, each answered line for line and in order through the server's one
 * shared forq_client; over-long lines, a last line without '\n', clients that
 * leave without reading, a forqd that goes away and comes back, bad flags,
 * and a clean exit on SIGTERM and SIGINT.
 *
 * The echo server runs as a child process with --listen 127.0.0.1:0; its
 * first stdout line says which port it got. Reads wait at most
 * HARNESS_GUARD_MS, only so that a broken server fails instead of hanging.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"

#define CLIENTS       50
#define LINES         100
#define LINE_MAX_ECHO 65536 /* the server's ECHO_LINE_MAX */

/* A running forq-echo-server. */
struct echo_proc {
    pid_t pid;
    int out; /* its stdout, kept open until it exits */
    int port;
};

struct ctx {
    struct harness h;
    struct echo_proc echo; /* talks to forqd over TCP */
};

/* Buffered line reader over a socket, with the guard time on every wait. */
struct echo_reader {
    int fd;
    size_t start, end;
    char buf[8192];
};

static int64_t
echo_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to the guard time for fd to be readable; 1, or 0 on timeout/error. */
static int
echo_wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - echo_now_ms();
        int n;

        if (left <= 0)
            return 0;
        if ((n = poll(&pfd, 1, (int)left)) > 0)
            return 1;
        if (n == 0 || errno != EINTR)
            return 0;
    }
}

/* ------------------------------------------------------------------ the server process */

/*
 * fork + exec the echo server with args (through FORQ_TEST_WRAPPER, as forqd);
 * its stdout (and stderr if err_too) into a pipe.
 */
static pid_t
echo_spawn(const char *const *args, int err_too, int *out)
{
    const char *argv[64];
    int p[2], n;
    pid_t pid;

    n = harness_wrap(argv, 0, 32);
    argv[n++] = FORQ_ECHO_PATH;
    for (int i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (pipe2(p, O_CLOEXEC) != 0 || (pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        /* If the test dies, the server must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], STDOUT_FILENO);
        if (err_too)
            dup2(p[1], STDERR_FILENO);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    *out = p[0];
    return pid;
}

/* Read the "listening on 127.0.0.1:PORT" line from the server's stdout. */
static int
echo_read_port(int fd)
{
    int64_t deadline = echo_now_ms() + HARNESS_GUARD_MS;
    char line[256];
    size_t n = 0;
    int port = -1;

    while (n < sizeof(line) - 1 && echo_wait_readable(fd, deadline)) {
        if (read(fd, line + n, 1) != 1)
            break;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1)
        fprintf(stderr, "echo server said '%s', not its port\n", line);
    return port;
}

/* Start the server for forqd at addr, listening on a port of the kernel's choice. */
static int
echo_start(struct echo_proc *e, const char *addr)
{
    const char *args[] = {"--listen", "127.0.0.1:0", "-s", addr, NULL};

    if ((e->pid = echo_spawn(args, 0, &e->out)) < 0)
        return -1;
    if ((e->port = echo_read_port(e->out)) <= 0)
        return -1;
    return 0;
}

/* Send sig, reap the server within the guard time; its exit status, or -1. */
static int
echo_stop(struct echo_proc *e, int sig)
{
    int64_t deadline = echo_now_ms() + HARNESS_GUARD_MS;
    int status = -1;

    if (e->pid <= 0)
        return -1;
    kill(e->pid, sig);
    while (waitpid(e->pid, &status, WNOHANG) == 0) {
        if (echo_now_ms() > deadline) {
            fprintf(stderr, "echo server ignored signal %d; killing it\n", sig);
            kill(e->pid, SIGKILL);
            waitpid(e->pid, &status, 0);
            status = -1;
            break;
        }
        poll(NULL, 0, 5);
    }
    close(e->out);
    e->pid = 0;
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Run the server to completion with args; stdout + stderr into out; exit status. */
static int
echo_run(const char *const *args, char *out, size_t outlen)
{
    int64_t deadline = echo_now_ms() + HARNESS_GUARD_MS;
    size_t got = 0;
    ssize_t k = 1;
    int fd, status = -1;
    pid_t pid = echo_spawn(args, 1, &fd);

    if (pid < 0)
        return -1;
    while (k > 0 && got < outlen - 1 && echo_wait_readable(fd, deadline))
        if ((k = read(fd, out + got, outlen - 1 - got)) > 0)
            got += (size_t)k;
    out[got] = '\0';
    close(fd);
    if (k != 0)
        kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ------------------------------------------------------------------ clients */

static int
echo_dial(int port)
{
    struct harness h = {.port = port};

    return harness_connect(&h);
}

/*
 * The next line (without its '\n') into out, NUL-terminated. Returns its
 * length, -2 on a clean EOF before any byte, -1 on error, overflow or timeout.
 */
static long
echo_read_line(struct echo_reader *r, char *out, size_t cap)
{
    int64_t deadline = echo_now_ms() + HARNESS_GUARD_MS;
    size_t n = 0;
    ssize_t k;

    for (;;) {
        for (; r->start < r->end; r->start++) {
            char ch = r->buf[r->start];

            if (ch == '\n') {
                r->start++;
                out[n] = '\0';
                return (long)n;
            }
            if (n + 1 >= cap)
                return -1;
            out[n++] = ch;
        }
        if (!echo_wait_readable(r->fd, deadline) ||
            (k = recv(r->fd, r->buf, sizeof(r->buf), 0)) < 0)
            return -1;
        if (k == 0)
            return n == 0 ? -2 : -1;
        r->start = 0;
        r->end = (size_t)k;
    }
}

static void
echo_upper(char *dst, const char *src)
{
    while ((*dst++ = (char)toupper((unsigned char)*src++)) != '\0')
        ;
}

/* ------------------------------------------------------------------ setup */

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=4", NULL};
    struct ctx *x = calloc(1, sizeof(*x));

    *state = x;
    if (x == NULL || harness_start(&x->h, args) != 0)
        return -1;
    return echo_start(&x->echo, x->h.addr);
}

static int
group_teardown(void **state)
{
    struct ctx *x = *state;

    if (x == NULL)
        return 0;
    /* SIGTERM ends the server cleanly: exit status 0. */
    assert_int_equal(echo_stop(&x->echo, SIGTERM), 0);
    assert_int_equal(harness_stop(&x->h), 0);
    free(x);
    return 0;
}

/* ------------------------------------------------------------------ 50 clients */

struct client_arg {
    int port;
    int id;
    int pipelined; /* send all lines first, then read all answers */
    int ok;        /* answers that matched */
    char err[320]; /* first mismatch (cmocka asserts are not thread-safe) */
};

static void
client_line(const struct client_arg *a, int i, char *line, size_t cap)
{
    snprintf(line, cap, "conn %d line %d abc-xyz_%d!", a->id, i, a->id * LINES + i);
}

/* Read answer i and compare it with the upper-cased line i. */
static void
client_check(struct client_arg *a, struct echo_reader *r, int i)
{
    char line[128], want[128], got[256];
    long n;

    client_line(a, i, line, sizeof(line));
    echo_upper(want, line);
    n = echo_read_line(r, got, sizeof(got));
    if (n >= 0 && strcmp(got, want) == 0)
        a->ok++;
    else if (a->err[0] == '\0')
        snprintf(a->err, sizeof(a->err), "conn %d answer %d: got '%.100s' (%ld), want '%.100s'",
                 a->id, i, n >= 0 ? got : "", n, want);
}

static int
client_send(const struct client_arg *a, int fd, int i)
{
    char line[128];

    client_line(a, i, line, sizeof(line));
    strcat(line, "\n");
    return harness_send(fd, line, strlen(line));
}

static void *
client_main(void *arg)
{
    struct client_arg *a = arg;
    struct echo_reader *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->fd = echo_dial(a->port)) < 0) {
        snprintf(a->err, sizeof(a->err), "conn %d: cannot connect", a->id);
        free(r);
        return NULL;
    }
    for (int i = 0; i < LINES && a->pipelined; i++)
        if (client_send(a, r->fd, i) != 0)
            snprintf(a->err, sizeof(a->err), "conn %d: send %d failed", a->id, i);
    for (int i = 0; i < LINES; i++) {
        if (!a->pipelined && client_send(a, r->fd, i) != 0)
            snprintf(a->err, sizeof(a->err), "conn %d: send %d failed", a->id, i);
        client_check(a, r, i);
    }
    close(r->fd);
    free(r);
    return NULL;
}

/*
 * 50 connections at once, 100 distinct lines each: half send a line and wait
 * for its answer, half send all 100 first. Every answer is its own line
 * upper-cased, in order.
 */
static void
test_50_clients_x_100_lines(void **state)
{
    struct ctx *x = *state;
    struct client_arg *args = calloc(CLIENTS, sizeof(*args));
    pthread_t th[CLIENTS];
    int total = 0;

    assert_non_null(args);
    for (int t = 0; t < CLIENTS; t++) {
        args[t].port = x->echo.port;
        args[t].id = t;
        args[t].pipelined = t % 2;
        assert_int_equal(pthread_create(&th[t], NULL, client_main, &args[t]), 0);
    }
    for (int t = 0; t < CLIENTS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        if (args[t].err[0] != '\0')
            fail_msg("%s", args[t].err);
        total += args[t].ok;
    }
    free(args);
    assert_int_equal(total, CLIENTS * LINES);
}

/* ------------------------------------------------------------------ one connection */

/* Send text on a fresh connection and expect these answer lines, in order. */
static void
expect_answers(int fd, struct echo_reader *r, const char *text, const char *const *want)
{
    static char got[LINE_MAX_ECHO + 64];

    assert_int_equal(harness_send(fd, text, strlen(text)), 0);
    for (int i = 0; want[i] != NULL; i++) {
        long n = echo_read_line(r, got, sizeof(got));

        if (n < 0 || strcmp(got, want[i]) != 0)
            fail_msg("answer %d: got '%.200s' (%ld), want '%.200s'", i, n >= 0 ? got : "", n,
                     want[i]);
    }
}

static void
test_empty_and_odd_lines(void **state)
{
    static const char *const want[] = {"", "HELLO", "MIXED 123 \xc3\xa9T\xc3\xa9\r", "  ", NULL};
    struct ctx *x = *state;
    struct echo_reader r = {.fd = echo_dial(x->echo.port)};

    /* ASCII only is upper-cased; a '\r' before '\n' is part of the line. */
    assert_true(r.fd >= 0);
    expect_answers(r.fd, &r, "\nhello\nMixed 123 \xc3\xa9t\xc3\xa9\r\n  \n", want);
    close(r.fd);
}

/* An over-long line gets one error line; the connection goes on. */
static void
test_overlong_line(void **state)
{
    static const char *const want_err[] = {"error: too_big: line longer than 65536 bytes", "AFTER",
                                           NULL};
    struct ctx *x = *state;
    struct echo_reader r = {.fd = echo_dial(x->echo.port)};
    char *big = malloc(3 * LINE_MAX_ECHO + 16), *want = malloc(LINE_MAX_ECHO + 1);
    const char *want_max[] = {want, "NEXT", NULL};

    assert_true(r.fd >= 0);
    assert_non_null(big);
    assert_non_null(want);
    /* Three times the limit, so that the server sees it over several reads. */
    memset(big, 'x', 3 * LINE_MAX_ECHO);
    strcpy(big + 3 * LINE_MAX_ECHO, "\nafter\n");
    expect_answers(r.fd, &r, big, want_err);
    /* Just over the limit, then exactly at it: the first refused, the second answered. */
    memset(big, 'y', LINE_MAX_ECHO + 1);
    strcpy(big + LINE_MAX_ECHO + 1, "\nafter\n");
    expect_answers(r.fd, &r, big, want_err);
    memset(big, 'z', LINE_MAX_ECHO);
    strcpy(big + LINE_MAX_ECHO, "\nnext\n");
    memset(want, 'Z', LINE_MAX_ECHO);
    want[LINE_MAX_ECHO] = '\0';
    expect_answers(r.fd, &r, big, want_max);
    free(big);
    free(want);
    close(r.fd);
}

/* A last line without '\n' is answered before the server closes its side. */
static void
test_last_line_without_newline(void **state)
{
    static const char *const want[] = {"ONE", "TAIL", NULL};
    struct ctx *x = *state;
    struct echo_reader r = {.fd = echo_dial(x->echo.port)};
    char got[64];

    assert_true(r.fd >= 0);
    assert_int_equal(harness_send(r.fd, "one\ntail", 8), 0);
    assert_int_equal(shutdown(r.fd, SHUT_WR), 0);
    expect_answers(r.fd, &r, "", want);
    assert_int_equal(echo_read_line(&r, got, sizeof(got)), -2);
    close(r.fd);
}

/* Clients that leave without reading their answers do not hurt the server. */
static void
test_clients_leave_early(void **state)
{
    static const char *const want[] = {"STILL HERE", NULL};
    struct ctx *x = *state;
    char lines[1024];
    struct echo_reader r;
    size_t n = 0;

    for (; n + 8 < sizeof(lines); n += 8)
        memcpy(lines + n, "gone-x\n\n", 8);
    lines[n] = '\0'; /* not at the end: the bytes between would go out unset */
    for (int i = 0; i < 20; i++) {
        int fd = echo_dial(x->echo.port);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        assert_true(fd >= 0);
        assert_int_equal(harness_send(fd, lines, strlen(lines)), 0);
        /* Every other one with a reset rather than a FIN. */
        if (i % 2)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    r = (struct echo_reader){.fd = echo_dial(x->echo.port)};
    assert_true(r.fd >= 0);
    expect_answers(r.fd, &r, "still here\n", want);
    close(r.fd);
}

/*
 * forqd killed: a line is answered with an error line, not dropped and not a
 * hang; once forqd is back (same unix socket path) the same connection is
 * served again, libforq having reconnected. Ends the server with SIGINT.
 */
static void
test_forqd_down_and_back(void **state)
{
    static const char *const before[] = {"BEFORE", NULL}, *const after[] = {"AFTER", NULL};
    struct ctx *x = *state;
    struct echo_proc e;
    struct echo_reader r;
    char got[1024];

    if (x->h.pid <= 0)
        skip(); /* FORQ_TEST_ADDR: not our forqd to kill */
    assert_int_equal(echo_start(&e, x->h.unix_addr), 0);
    r = (struct echo_reader){.fd = echo_dial(e.port)};
    assert_true(r.fd >= 0);
    expect_answers(r.fd, &r, "before\n", before);
    assert_true(WIFSIGNALED(harness_kill(&x->h, SIGKILL)));
    assert_int_equal(harness_send(r.fd, "during\n", 7), 0);
    assert_true(echo_read_line(&r, got, sizeof(got)) > 0);
    if (strncmp(got, "error: disconnected: ", 21) != 0 && strncmp(got, "error: connect: ", 16) != 0)
        fail_msg("while forqd is down: '%s'", got);
    assert_int_equal(harness_restart(&x->h, NULL), 0);
    expect_answers(r.fd, &r, "after\n", after);
    close(r.fd);
    assert_int_equal(echo_stop(&e, SIGINT), 0);
}

/* ------------------------------------------------------------------ flags */

static void
expect_run(const char *const *args, int status, const char *out_has)
{
    char out[8192];
    int r = echo_run(args, out, sizeof(out));

    if (r != status || strstr(out, out_has) == NULL)
        fail_msg("forq-echo-server %s: expected exit %d and '%s', got %d and '%s'", args[0], status,
                 out_has, r, out);
}

static void
test_bad_flags(void **state)
{
    static const char *const bogus[] = {"--bogus", NULL};
    static const char *const extra[] = {"extra", NULL};
    static const char *const nolisten[] = {"--listen", NULL};
    static const char *const noport[] = {"--listen", "127.0.0.1", NULL};
    static const char *const bigport[] = {"--listen", "127.0.0.1:65536", NULL};
    static const char *const v6[] = {"--listen", "::1:80", NULL};
    static const char *const badsrv[] = {"-s", "nonsense", "--listen", "127.0.0.1:0", NULL};
    static const char *const help[] = {"--help", NULL};

    (void)state;
    expect_run(bogus, 2, "usage: forq-echo-server");
    expect_run(extra, 2, "unexpected argument 'extra'");
    expect_run(nolisten, 2, "usage: forq-echo-server");
    expect_run(noport, 2, "--listen '127.0.0.1': want HOST:PORT");
    expect_run(bigport, 2, "want HOST:PORT");
    expect_run(v6, 2, "want HOST:PORT");
    expect_run(badsrv, 2, "-s: invalid address 'nonsense'");
    expect_run(help, 0, "--listen HOST:PORT");
}

/* No forqd to connect to, or a port already taken: exit 1 with the reason. */
static void
test_start_failures(void **state)
{
    static const char *const noforqd[] = {"-s", "unix:///nonexistent/forq.sock", "--listen",
                                          "127.0.0.1:0", NULL};
    struct ctx *x = *state;
    char listen[32], out[1024];
    const char *inuse[] = {"--listen", listen, "-s", x->h.addr, NULL};

    expect_run(noforqd, 1, "cannot connect to unix:///nonexistent/forq.sock: ");
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", x->echo.port);
    assert_int_equal(echo_run(inuse, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "Address already in use"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_50_clients_x_100_lines),
        cmocka_unit_test(test_empty_and_odd_lines),
        cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_last_line_without_newline),
        cmocka_unit_test(test_clients_leave_early),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_start_failures),
        /* Last: it kills and restarts forqd (the group's server then has a new port). */
        cmocka_unit_test(test_forqd_down_and_back),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
