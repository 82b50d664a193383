/*
 * test_client_addr.c — client_addr_parse(): the address forms libforq takes
 * and the ones it refuses (FORQ_ERR_INVALID with a reason in forq_errmsg()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client.h" /* internal header, on the unit tests' include path */

static void
test_addr_tcp(void **state)
{
    struct addr a;

    (void)state;
    assert_int_equal(client_addr_parse("tcp://127.0.0.1:7340", &a), 0);
    assert_int_equal(a.kind, ADDR_TCP);
    assert_string_equal(a.host, "127.0.0.1");
    assert_string_equal(a.port, "7340");

    assert_int_equal(client_addr_parse("tcp://localhost:1", &a), 0);
    assert_string_equal(a.host, "localhost");
    assert_string_equal(a.port, "1");

    assert_int_equal(client_addr_parse("tcp://queue.example.com:65535", &a), 0);
    assert_string_equal(a.host, "queue.example.com");
    assert_string_equal(a.port, "65535");
}

static void
test_addr_tcp6(void **state)
{
    struct addr a;

    (void)state;
    assert_int_equal(client_addr_parse("tcp://[::1]:7340", &a), 0);
    assert_int_equal(a.kind, ADDR_TCP);
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.port, "7340");

    assert_int_equal(client_addr_parse("tcp://[fe80::1%eth0]:80", &a), 0);
    assert_string_equal(a.host, "fe80::1%eth0");
}

static void
test_addr_unix(void **state)
{
    struct addr a;

    (void)state;
    assert_int_equal(client_addr_parse("unix:///run/forq/forq.sock", &a), 0);
    assert_int_equal(a.kind, ADDR_UNIX);
    assert_string_equal(a.path, "/run/forq/forq.sock");

    assert_int_equal(client_addr_parse("unix://relative.sock", &a), 0);
    assert_string_equal(a.path, "relative.sock");
}

static void
test_addr_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:7340",
        "http://127.0.0.1:7340",
        "tcp://",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:",
        "tcp://:7340",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:65536",
        "tcp://127.0.0.1:-1",
        "tcp://127.0.0.1:+80",
        "tcp://127.0.0.1:80x",
        "tcp://127.0.0.1:99999999999999999999",
        "tcp://::1:7340",
        "tcp://[::1]7340",
        "tcp://[::1",
        "tcp://[]:80",
        "tcp://host/path:80",
        "unix://",
        "TCP://127.0.0.1:7340",
    };
    struct addr a;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&a, 0x55, sizeof(a));
        if (client_addr_parse(bad[i], &a) != FORQ_ERR_INVALID)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(a.kind, 0); /* cleared on failure */
        assert_non_null(strstr(forq_errmsg(), "invalid address"));
    }
    assert_int_equal(client_addr_parse(NULL, &a), FORQ_ERR_INVALID);
}

static void
test_addr_too_long(void **state)
{
    char buf[ADDR_STR_MAX + 16];
    struct addr a;

    (void)state;
    /* A unix path longer than sun_path. */
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "unix:///", 8);
    buf[8 + sizeof(a.path)] = '\0';
    assert_int_equal(client_addr_parse(buf, &a), FORQ_ERR_INVALID);
    /* The longest path that fits. */
    buf[7 + sizeof(a.path) - 1] = '\0';
    assert_int_equal(client_addr_parse(buf, &a), 0);
    assert_int_equal(strlen(a.path), sizeof(a.path) - 1);
    /* A whole address over the limit. */
    memset(buf, 'h', sizeof(buf));
    memcpy(buf, "tcp://", 6);
    memcpy(buf + sizeof(buf) - 6, ":7340", 6);
    assert_int_equal(client_addr_parse(buf, &a), FORQ_ERR_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_tcp),      cmocka_unit_test(test_addr_tcp6),
        cmocka_unit_test(test_addr_unix),     cmocka_unit_test(test_addr_invalid),
        cmocka_unit_test(test_addr_too_long),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
