/*
 * test_daemon.c — what an operator can get wrong or rely on: bad flags give
 * a clear error and exit 2; listener problems a clear error and exit 1; the
 * unix socket listener works, refuses to steal a live socket and replaces a
 * stale one; SIGTERM exits 0 and removes the socket file.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

struct ctx {
    struct harness h; /* a running daemon, for conflicts and the unix listener */
    char tmp[64];     /* scratch directory */
};

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=1", NULL};
    struct ctx *x = calloc(1, sizeof(*x));

    if (x == NULL || harness_start(&x->h, args) != 0)
        return -1;
    snprintf(x->tmp, sizeof(x->tmp), "/tmp/forq-daemon-XXXXXX");
    if (mkdtemp(x->tmp) == NULL)
        return -1;
    *state = x;
    return 0;
}

static int
group_teardown(void **state)
{
    struct ctx *x = *state;
    char path[128];

    snprintf(path, sizeof(path), "%s/file", x->tmp);
    unlink(path);
    snprintf(path, sizeof(path), "%s/stale.sock", x->tmp);
    unlink(path);
    rmdir(x->tmp);
    assert_int_equal(harness_stop(&x->h), 0);
    free(x);
    return 0;
}

/* forqd ARGS must exit with status and say something containing needle. */
static void
expect_exit(const char *const *args, int status, const char *needle)
{
    char out[8192];
    int r = harness_run_forqd(args, out, sizeof(out));

    if (r != status || strstr(out, needle) == NULL)
        fail_msg("expected exit %d mentioning '%s', got %d:\n%s", status, needle, r, out);
}

static void
test_bad_flags(void **state)
{
    static const struct {
        const char *args[4];
        const char *needle;
    } cases[] = {
        {{"--workers=0"}, "--workers"},
        {{"--workers", "many"}, "--workers"},
        {{"--max-payload=12Q"}, "--max-payload"},
        {{"--listen=http://x:1"}, "--listen"},
        {{"--listen=tcp://nohostport"}, "--listen"},
        {{"--listen=unix://relative.sock"}, "--listen"},
        {{"--log-level=loud"}, "--log-level"},
        {{"--max-frame=2048", "--max-payload=4096"}, "--max-frame"},
        {{"--no-such-flag"}, "--no-such-flag"},
        {{"stray"}, "stray"},
        {{"--workers"}, "needs a value"},
        {{"--durability=sometimes"}, "--durability"},
        {{"--data="}, "--data"},
        {{"--max-db-size=lots"}, "--max-db-size"},
        {{"--result-cache=-1"}, "--result-cache"},
        {{"--drain-timeout-ms=soon"}, "--drain-timeout-ms"},
        {{"--drain-timeout-ms=86400001"}, "--drain-timeout-ms"},
        {{"--metrics-listen=unix:///tmp/m.sock"}, "--metrics-listen: expected tcp://HOST:PORT or off"},
        {{"--metrics-listen=9340"}, "--metrics-listen"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_exit(cases[i].args, 2, cases[i].needle);
}

static void
test_help_and_version(void **state)
{
    static const char *const help[] = {"--help", NULL};
    static const char *const version[] = {"--version", NULL};
    char out[8192];

    (void)state;
    assert_int_equal(harness_run_forqd(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--listen"));
    assert_int_equal(harness_run_forqd(version, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "forqd 0."));
}

static void
test_listener_errors(void **state)
{
    struct ctx *x = *state;
    char busy[160], file[128], sock[400];
    const char *args[3] = {"--workers=1", NULL, NULL};
    int fd;

    /* The TCP port the running daemon holds. */
    snprintf(busy, sizeof(busy), "--listen=%s", x->h.addr);
    args[1] = busy;
    expect_exit(args, 1, "cannot listen on");

    /* A regular file where the socket should go is never deleted. */
    snprintf(file, sizeof(file), "%s/file", x->tmp);
    assert_true((fd = open(file, O_CREAT | O_WRONLY, 0600)) >= 0);
    close(fd);
    snprintf(sock, sizeof(sock), "--listen=unix://%s", file);
    args[1] = sock;
    expect_exit(args, 1, "not a socket");
    assert_int_equal(access(file, F_OK), 0);

    /* The running daemon's unix socket is live: refuse to steal it. */
    snprintf(sock, sizeof(sock), "--listen=%s", x->h.unix_addr);
    expect_exit(args, 1, "another server");
}

/* SIGHUP must not kill forqd (its default action would): it reloads, connections stay. */
static void
test_sighup_is_survived(void **state)
{
    struct ctx *x = *state;
    char log[16384];
    forq_client *c;

    assert_int_equal(forq_connect(x->h.addr, &c), 0);
    assert_int_equal(kill(x->h.pid, SIGHUP), 0);
    for (int i = 0; i < 3000; i++) {
        harness_read_log(&x->h, log, sizeof(log));
        if (strstr(log, "reloaded the configuration") != NULL)
            break;
        usleep(10000);
    }
    /* Without a config file a reload reads the same flags again: nothing changes. */
    assert_non_null(strstr(log, "reloaded the configuration"));
    assert_int_equal(forq_ping(c), 0);
    forq_client_free(c);
}

static void
test_unix_socket_serves_jobs(void **state)
{
    struct ctx *x = *state;
    forq_client *c;
    forq_future *f;
    const void *data;
    size_t len;

    assert_int_equal(forq_connect(x->h.unix_addr, &c), 0);
    assert_int_equal(forq_submit(c, "upper", "via unix", 8, NULL, &f), 0);
    assert_int_equal(forq_future_result(f, HARNESS_GUARD_MS, &data, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(data, "VIA UNIX", 8);
    forq_future_free(f);
    forq_client_free(c);
}

/* A socket file left by a dead process is replaced; SIGTERM removes it again. */
static void
test_stale_socket_replaced_and_removed(void **state)
{
    struct ctx *x = *state;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct harness h2;
    char path[100], listen[160];
    const char *args[3] = {"--workers=1", listen, NULL};
    int fd;

    snprintf(path, sizeof(path), "%s/stale.sock", x->tmp);
    assert_true(strlen(path) < sizeof(sun.sun_path));
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd); /* bound, never listened, owner gone: stale */
    snprintf(listen, sizeof(listen), "--listen=unix://%s", path);
    assert_int_equal(harness_start(&h2, args), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(harness_stop(&h2), 0);
    assert_int_equal(access(path, F_OK), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_listener_errors),
        cmocka_unit_test(test_sighup_is_survived),
        cmocka_unit_test(test_unix_socket_serves_jobs),
        cmocka_unit_test(test_stale_socket_replaced_and_removed),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
