/*
 * test_addr.c — addr_parse(), the one parser of address strings used by
 * libforq (where to connect) and forqd (where to listen).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "forq.h"

static void
test_addr_forms(void **state)
{
    struct addr a;
    const char *why;

    (void)state;
    assert_int_equal(addr_parse("tcp://127.0.0.1:7340", 0, &a, &why), 0);
    assert_int_equal(a.kind, ADDR_TCP);
    assert_string_equal(a.host, "127.0.0.1");
    assert_string_equal(a.port, "7340");
    assert_int_equal(addr_parse("tcp://[::1]:80", 0, &a, &why), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(addr_parse("unix:///run/forq.sock", 0, &a, &why), 0);
    assert_int_equal(a.kind, ADDR_UNIX);
    assert_string_equal(a.path, "/run/forq.sock");
    /* Leading zeros are read as the number, and cannot overflow the port field. */
    assert_int_equal(addr_parse("tcp://h:000000080", 0, &a, &why), 0);
    assert_string_equal(a.port, "80");
}

/* Port 0 is for listeners only: the kernel picks the port. */
static void
test_addr_port_zero(void **state)
{
    struct addr a;
    const char *why;

    (void)state;
    assert_int_equal(addr_parse("tcp://127.0.0.1:0", 0, &a, &why), FORQ_ERR_INVALID);
    assert_non_null(strstr(why, "1..65535"));
    assert_int_equal(a.kind, 0);
    assert_int_equal(addr_parse("tcp://127.0.0.1:0", ADDR_PORT_ZERO, &a, &why), 0);
    assert_string_equal(a.port, "0");
    assert_int_equal(addr_parse("tcp://[::]:0", ADDR_PORT_ZERO, &a, &why), 0);
    assert_string_equal(a.host, "::");
}

static void
test_addr_refused(void **state)
{
    static const char *const bad[] = {
        "", "tcp://", "tcp://:80", "tcp://h:", "tcp://h:65536", "tcp://h:-1", "tcp://h:8x",
        "tcp://::1:7340", /* IPv6 needs brackets, or the port is ambiguous */
        "tcp://[::1]80", "tcp://h/p:80", "unix://", "udp://h:1", "TCP://h:1",
    };
    struct addr a;
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (addr_parse(bad[i], ADDR_PORT_ZERO, &a, &why) != FORQ_ERR_INVALID)
            fail_msg("accepted '%s'", bad[i]);
        assert_non_null(why);
        assert_int_equal(a.kind, 0);
    }
    assert_int_equal(addr_parse(NULL, 0, &a, &why), FORQ_ERR_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_forms),
        cmocka_unit_test(test_addr_port_zero),
        cmocka_unit_test(test_addr_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
