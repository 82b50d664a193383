/*
 * test_client_errors.c — what libforq reports without a server: code names
 * and texts, forq_errmsg() (thread-local, never NULL), bad arguments, bad
 * addresses, and connecting to a port or socket nobody listens on.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "forq.h"

static void
test_strerror_names(void **state)
{
    (void)state;
    for (int code = 0; code >= FORQ_ERR__LAST; code--) {
        assert_non_null(forq_errname(code));
        assert_non_null(forq_strerror(code));
        assert_string_not_equal(forq_errname(code), "unknown");
    }
    assert_string_equal(forq_errname(FORQ_ERR_UNKNOWN_TASK), "unknown_task");
    assert_string_equal(forq_errname(FORQ_ERR_DISCONNECTED), "disconnected");
    assert_string_equal(forq_errname(FORQ_ERR__LAST - 1), "unknown");
    assert_string_equal(forq_errname(1), "unknown");
    assert_non_null(forq_strerror(-1000));
}

static void
test_errmsg_never_null(void **state)
{
    (void)state;
    assert_non_null(forq_errmsg());
}

static void
test_null_arguments(void **state)
{
    forq_future *f = (forq_future *)&f;
    struct forq_job_info ji;
    struct forq_stats *st = (struct forq_stats *)&st;
    const void *data = &data;
    size_t len = 7;

    (void)state;
    assert_int_equal(forq_connect(NULL, NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_ping(NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_submit(NULL, "upper", "x", 1, NULL, &f), FORQ_ERR_INVALID);
    assert_null(f); /* out-params are cleared on entry */
    assert_int_equal(forq_future_from_id(NULL, 1, &f), FORQ_ERR_INVALID);
    assert_null(f);
    assert_int_equal(forq_future_result(NULL, 0, &data, &len), FORQ_ERR_INVALID);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(forq_future_done(NULL), FORQ_ERR_INVALID);
    assert_int_equal(forq_future_cancel(NULL), FORQ_ERR_INVALID);
    assert_null(forq_future_error(NULL));
    assert_int_equal(forq_future_id(NULL), 0);
    assert_int_equal(forq_status(NULL, 1, &ji), FORQ_ERR_INVALID);
    assert_null(ji.error_msg);
    assert_int_equal(forq_cancel(NULL, 1), FORQ_ERR_INVALID);
    assert_int_equal(forq_stats(NULL, &st), FORQ_ERR_INVALID);
    assert_null(st);
    /* Every _free(NULL) is a no-op. */
    forq_client_close(NULL);
    forq_client_free(NULL);
    forq_future_free(NULL);
    forq_stats_free(NULL);
    forq_job_info_clear(NULL);
}

static void
test_connect_bad_address(void **state)
{
    forq_client *c = (forq_client *)&c;

    (void)state;
    assert_int_equal(forq_connect("127.0.0.1:7340", &c), FORQ_ERR_INVALID);
    assert_null(c);
    assert_string_equal(forq_errmsg(), "invalid address '127.0.0.1:7340': expected "
                                       "tcp://HOST:PORT or unix:///PATH");
    assert_int_equal(forq_connect("tcp://localhost:http", &c), FORQ_ERR_INVALID);
    assert_int_equal(forq_connect("tcp://localhost:0", &c), FORQ_ERR_INVALID);
    assert_int_equal(forq_connect("unix://", &c), FORQ_ERR_INVALID);
}

/* A local TCP port with nobody listening on it (bound, then released). */
static int
closed_port(void)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void
test_connect_refused(void **state)
{
    forq_client *c = (forq_client *)&c;
    char addr[64], want[128];

    (void)state;
    snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", closed_port());
    assert_int_equal(forq_connect(addr, &c), FORQ_ERR_CONNECT);
    assert_null(c);
    snprintf(want, sizeof(want), "connect %s: Connection refused", addr);
    assert_string_equal(forq_errmsg(), want);
}

static void
test_connect_unix_missing(void **state)
{
    forq_client *c = (forq_client *)&c;

    (void)state;
    assert_int_equal(forq_connect("unix:///nonexistent/forq-test.sock", &c), FORQ_ERR_CONNECT);
    assert_null(c);
    assert_string_equal(forq_errmsg(),
                        "connect unix:///nonexistent/forq-test.sock: No such file or directory");
}

static void *
errmsg_thread(void *arg)
{
    forq_client *c;

    (void)arg;
    (void)forq_connect("bogus", &c);
    return NULL;
}

static void
test_errmsg_thread_local(void **state)
{
    forq_client *c;
    pthread_t t;
    char mine[256];

    (void)state;
    assert_int_equal(forq_connect("unix://", &c), FORQ_ERR_INVALID);
    snprintf(mine, sizeof(mine), "%s", forq_errmsg());
    assert_int_equal(pthread_create(&t, NULL, errmsg_thread, NULL), 0);
    pthread_join(t, NULL);
    assert_string_equal(forq_errmsg(), mine);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names),      cmocka_unit_test(test_errmsg_never_null),
        cmocka_unit_test(test_null_arguments),      cmocka_unit_test(test_connect_bad_address),
        cmocka_unit_test(test_connect_refused),     cmocka_unit_test(test_connect_unix_missing),
        cmocka_unit_test(test_errmsg_thread_local),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
