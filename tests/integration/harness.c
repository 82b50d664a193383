/*
 * harness.c — a real forqd per test group: start, find its port, stop,
 * clean up; raw socket helpers for tests that must speak bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"

#define HARNESS_ARGS_MAX 96

int64_t
harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

void
harness_read_log(const struct harness *h, char *buf, size_t len)
{
    FILE *f = fopen(h->log, "r");
    size_t n = 0;

    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

int
harness_log_count(const struct harness *h, const char *text)
{
    static char log[1 << 16];
    int n = 0;

    harness_read_log(h, log, sizeof(log));
    for (const char *p = log; (p = strstr(p, text)) != NULL; p += strlen(text))
        n++;
    return n;
}

void
harness_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

void
harness_reload_wait(const struct harness *h, int nth)
{
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    while (harness_log_count(h, "reloaded the configuration") +
               harness_log_count(h, "keeping the running configuration") <
           nth) {
        assert_true(harness_now_ms() < deadline);
        harness_sleep_ms(10);
    }
}

void
harness_reload(struct harness *h, int nth)
{
    assert_int_equal(kill(h->pid, SIGHUP), 0);
    harness_reload_wait(h, nth);
}

/* Find "listening on tcp://127.0.0.1:PORT" in the log. */
static int
harness_parse_port(const char *log)
{
    const char *p = strstr(log, "listening on tcp://");

    if (p == NULL || (p = strchr(p + strlen("listening on tcp://"), ':')) == NULL)
        return -1;
    return atoi(p + 1);
}

int
harness_wrap(const char **argv, int n, int max)
{
    static char words[4096];
    const char *env = getenv("FORQ_TEST_WRAPPER");
    char *save = NULL;

    if (env == NULL)
        return n;
    snprintf(words, sizeof(words), "%s", env);
    for (char *w = strtok_r(words, " ", &save); w != NULL && n < max;
         w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    return n;
}

/* fork + exec argv (argv[0] is looked up in PATH when it has no slash). */
static pid_t
harness_spawn(const char *const *argv, int out_fd, int err_fd, int in_fd)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* If the test process dies, the daemon must not outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (in_fd >= 0)
        dup2(in_fd, STDIN_FILENO);
    if (out_fd >= 0)
        dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0)
        dup2(err_fd, STDERR_FILENO);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* Start forqd in h->dir (which exists), through wrapper (or NULL), without waiting. */
static int
harness_exec(struct harness *h, const char *const *wrapper, const char *const *extra)
{
    const char *argv[HARNESS_ARGS_MAX];
    char listen_unix[320], data[300];
    int n = 0, fd;

    snprintf(h->log, sizeof(h->log), "%s/forqd.log", h->dir);
    snprintf(h->unix_addr, sizeof(h->unix_addr), "unix://%s/forq.sock", h->dir);
    snprintf(listen_unix, sizeof(listen_unix), "--listen=%s", h->unix_addr);
    snprintf(data, sizeof(data), "--data=%s/data", h->dir);
    for (int i = 0; wrapper != NULL && wrapper[i] != NULL && n < HARNESS_ARGS_MAX - 8; i++)
        argv[n++] = wrapper[i];
    n = harness_wrap(argv, n, HARNESS_ARGS_MAX - 8);
    argv[n++] = FORQD_PATH;
    argv[n++] = "--listen=tcp://127.0.0.1:0";
    argv[n++] = listen_unix;
    argv[n++] = data; /* before extra: a later --data wins */
    /* A teardown must not wait for a test's long jobs; drain tests set their own. */
    argv[n++] = "--drain-timeout-ms=0";
    for (int i = 0; extra != NULL && extra[i] != NULL && n < HARNESS_ARGS_MAX - 1; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if ((fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        perror("harness: open log");
        return -1;
    }
    h->pid = harness_spawn(argv, -1, fd, -1);
    close(fd);
    return h->pid > 0 ? 0 : -1;
}

int
harness_wait_ready(struct harness *h)
{
    char log[16384];
    int status;
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    while (harness_now_ms() < deadline) {
        harness_read_log(h, log, sizeof(log));
        if (strstr(log, " ready: ") != NULL && (h->port = harness_parse_port(log)) > 0) {
            snprintf(h->addr, sizeof(h->addr), "tcp://127.0.0.1:%d", h->port);
            return 0;
        }
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            fprintf(stderr, "harness: forqd exited during start-up:\n%s\n", log);
            h->pid = 0;
            return -1;
        }
        harness_sleep_ms(10);
    }
    fprintf(stderr, "harness: forqd not ready after %d ms:\n%s\n", HARNESS_GUARD_MS, log);
    harness_stop(h);
    return -1;
}

/* Start forqd in h->dir (which exists) and wait until it is ready. */
static int
harness_launch(struct harness *h, const char *const *extra)
{
    if (harness_exec(h, NULL, extra) != 0)
        return -1;
    return harness_wait_ready(h);
}

static int
harness_mkdir(struct harness *h)
{
    snprintf(h->dir, sizeof(h->dir), "/tmp/forq-test-XXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        perror("harness: mkdtemp");
        return -1;
    }
    return 0;
}

int
harness_spawn_wrapped(struct harness *h, const char *const *wrapper, const char *const *extra)
{
    memset(h, 0, sizeof(*h));
    if (harness_mkdir(h) != 0)
        return -1;
    return harness_exec(h, wrapper, extra);
}

int
harness_start(struct harness *h, const char *const *extra)
{
    const char *env = getenv("FORQ_TEST_ADDR");

    memset(h, 0, sizeof(*h));
    if (env != NULL) {
        snprintf(h->addr, sizeof(h->addr), "%s", env);
        return 0;
    }
    if (harness_mkdir(h) != 0)
        return -1;
    return harness_launch(h, extra);
}

int
harness_kill(struct harness *h, int sig)
{
    int status = -1;

    if (h->pid <= 0)
        return -1;
    kill(h->pid, sig);
    if (waitpid(h->pid, &status, 0) != h->pid)
        status = -1;
    h->pid = 0;
    return status;
}

int
harness_restart(struct harness *h, const char *const *extra)
{
    if (h->pid > 0 || h->dir[0] == '\0')
        return -1;
    return harness_launch(h, extra);
}

static int
harness_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
harness_stop_keep(struct harness *h)
{
    int status = -1, r = -1;
    int64_t deadline;

    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGTERM);
    deadline = harness_now_ms() + HARNESS_GUARD_MS;
    while (waitpid(h->pid, &status, WNOHANG) == 0) {
        if (harness_now_ms() > deadline) {
            fprintf(stderr, "harness: forqd ignored SIGTERM; killing it\n");
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &status, 0);
            break;
        }
        harness_sleep_ms(5);
    }
    if (WIFEXITED(status))
        r = WEXITSTATUS(status);
    h->pid = 0;
    return r;
}

int
harness_stop(struct harness *h)
{
    int r = harness_stop_keep(h);

    if (h->dir[0] != '\0') {
        if (getenv("FORQ_TEST_KEEP") == NULL)
            nftw(h->dir, harness_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
        h->dir[0] = '\0';
    }
    return r;
}

int
harness_fixture_setup(void **state, const char *const *extra)
{
    struct harness_fixture *x = calloc(1, sizeof(*x));

    *state = x;
    if (x == NULL || harness_start(&x->h, extra) != 0)
        return -1;
    if (forq_connect(x->h.addr, &x->c) != 0) {
        fprintf(stderr, "harness: %s\n", forq_errmsg());
        return -1;
    }
    return 0;
}

/* See harness_fixture_teardown. */
static void
harness_teardown_failed_cb(void)
{
    fflush(NULL);
    _exit(1);
}

int
harness_fixture_teardown(void **state)
{
    struct harness_fixture *x = *state;
    static int failed;
    int r;

    if (x == NULL)
        return 0;
    forq_client_free(x->c);
    r = harness_stop(&x->h);
    free(x);
    /*
     * cmocka 1.1 prints a failed group teardown but leaves it out of what
     * cmocka_run_group_tests returns, so the test would still exit 0. A
     * forqd that did not exit cleanly (or that valgrind found errors in:
     * --error-exitcode) must fail it: end the process with 1 at exit.
     */
    if (r != 0 && !failed++)
        atexit(harness_teardown_failed_cb);
    assert_int_equal(r, 0);
    return 0;
}

/*
 * Run a program to completion (through FORQ_TEST_WRAPPER if wrap), capturing
 * stdout (and stderr if both) into out.
 */
static int
harness_run(const char *path, int wrap, const char *const *args, const char *stdin_data, int both,
            char *out, size_t outlen)
{
    const char *argv[HARNESS_ARGS_MAX];
    int outp[2], inp[2] = {-1, -1}, n = 0, status = -1;
    size_t got = 0;
    ssize_t k;
    pid_t pid;

    if (wrap)
        n = harness_wrap(argv, n, HARNESS_ARGS_MAX - 8);
    argv[n++] = path;
    for (int i = 0; args[i] != NULL && n < HARNESS_ARGS_MAX - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (pipe2(outp, O_CLOEXEC) != 0 || (stdin_data != NULL && pipe2(inp, O_CLOEXEC) != 0))
        return -1;
    pid = harness_spawn(argv, outp[1], both ? outp[1] : -1, inp[0]);
    close(outp[1]);
    if (inp[0] >= 0) {
        close(inp[0]);
        (void)!write(inp[1], stdin_data, strlen(stdin_data));
        close(inp[1]);
    }
    while ((k = read(outp[0], out + got, outlen - 1 - got)) > 0)
        got += (size_t)k;
    out[got] = '\0';
    close(outp[0]);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
harness_run_forqd(const char *const *args, char *out, size_t outlen)
{
    return harness_run(FORQD_PATH, 1, args, NULL, 1, out, outlen);
}

int
harness_run_cli(const char *const *args, const char *stdin_data, char *out, size_t outlen)
{
    /*
     * Not through FORQ_TEST_WRAPPER: valgrind's second or so per start would
     * break tests that make several calls within a job's delay.
     */
    return harness_run(FORQ_CLI_PATH, 0, args, stdin_data, 0, out, outlen);
}

/* ------------------------------------------------------------------ raw sockets */

int
harness_connect(const struct harness *h)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("harness: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int
harness_send(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int
harness_send_request(int fd, const struct msg_request *req)
{
    msgpack_sbuffer sb;
    int r;

    msgpack_sbuffer_init(&sb);
    r = msg_encode_request(&sb, req) == 0 ? harness_send(fd, sb.data, sb.size) : -1;
    msgpack_sbuffer_destroy(&sb);
    return r;
}

/* Read exactly len bytes, within the guard time. 0, 1 (EOF at start) or -1. */
static int
harness_recv_all(int fd, uint8_t *buf, size_t len, int eof_ok)
{
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - harness_now_ms();
        ssize_t k;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        k = recv(fd, buf + got, len - got, 0);
        if (k == 0)
            return got == 0 && eof_ok ? 1 : -1;
        if (k < 0 && errno != EINTR)
            return -1;
        if (k > 0)
            got += (size_t)k;
    }
    return 0;
}

int
harness_recv_frame(int fd, uint8_t **body, size_t *len)
{
    uint8_t hdr[FRAME_HDR_LEN];
    uint32_t n;
    int r;

    *body = NULL;
    *len = 0;
    if ((r = harness_recv_all(fd, hdr, sizeof(hdr), 1)) != 0)
        return r;
    if (frame_hdr_decode(hdr, (size_t)1 << 30, &n) != 0 || (*body = malloc(n)) == NULL)
        return -1;
    if (harness_recv_all(fd, *body, n, 0) != 0) {
        free(*body);
        *body = NULL;
        return -1;
    }
    *len = n;
    return 0;
}

int
harness_call(int fd, struct msg_decoder *d, const struct msg_request *req,
             struct msg_response *resp, uint8_t **buf)
{
    size_t len;

    *buf = NULL;
    if (harness_send_request(fd, req) != 0 || harness_recv_frame(fd, buf, &len) != 0)
        return -1;
    if (msg_decode_response(d, req->op, *buf, len, resp) != 0) {
        fprintf(stderr, "harness: undecodable reply: %s\n", d->why);
        return -1;
    }
    return 0;
}

int
harness_wait_closed(int fd)
{
    uint8_t buf[4096];
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - harness_now_ms();
        ssize_t k;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return 0;
        k = recv(fd, buf, sizeof(buf), 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return 1;
        if (k < 0 && errno != EINTR)
            return 0;
    }
}

/* ------------------------------------------------------------------ jobs via libforq */

int
harness_queue_find(forq_client *c, const char *queue, struct forq_queue_stats *out)
{
    struct forq_stats *st;
    int found = 0;

    assert_int_equal(forq_stats(c, &st), 0);
    for (size_t i = 0; i < st->nqueues && !found; i++) {
        if (strcmp(st->queues[i].name, queue) == 0) {
            found = 1;
            if (out != NULL)
                *out = st->queues[i];
        }
    }
    forq_stats_free(st);
    return found;
}

int
harness_worker_pids(forq_client *c, pid_t *pids, int max)
{
    struct forq_stats *st;
    int n = 0;

    if (forq_stats(c, &st) != 0)
        return -1;
    for (size_t i = 0; i < st->nworkers && n < max; i++)
        pids[n++] = st->workers[i].pid;
    forq_stats_free(st);
    return n;
}

int
harness_wait_sleeping(pid_t pid)
{
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;
    char path[64], buf[64];

    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    while (harness_now_ms() < deadline) {
        FILE *f = fopen(path, "r");
        long nr = -1;

        if (f != NULL) {
            if (fgets(buf, sizeof(buf), f) != NULL)
                nr = strtol(buf, NULL, 10);
            fclose(f);
        }
        if (nr == SYS_nanosleep || nr == SYS_clock_nanosleep)
            return 0;
        harness_sleep_ms(2);
    }
    fprintf(stderr, "harness: process %d never entered nanosleep\n", (int)pid);
    return -1;
}

pid_t
harness_wait_running(forq_client *c, uint64_t id)
{
    int64_t deadline = harness_now_ms() + HARNESS_GUARD_MS;

    while (harness_now_ms() < deadline) {
        struct forq_job_info info;
        pid_t pid;
        int st;

        if (forq_status(c, id, &info) != 0)
            return -1;
        pid = info.worker_pid;
        st = info.state;
        forq_job_info_clear(&info);
        if (st == FORQ_STATE_RUNNING)
            return harness_wait_sleeping(pid) == 0 ? pid : -1;
        if (forq_state_is_final(st))
            return -1;
        harness_sleep_ms(5);
    }
    return -1;
}
