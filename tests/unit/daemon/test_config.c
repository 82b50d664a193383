/*
 * test_config.c — unit tests for daemon/config.c: defaults, every flag, and a
 * clear refusal (FORQ_ERR_INVALID plus a message naming the flag) for each
 * kind of bad value.
 *
 * config_parse_args runs getopt_long many times in this one process, so these
 * tests also check that each call starts from a clean getopt state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "forq.h"
#include "log.h"

#define TEST_ARGS_MAX 40

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)

/*
 * Parse "forqd" followed by the NULL-terminated arguments into a fresh
 * config. getopt permutes argv, so the arguments are copied into writable
 * storage first. The caller calls config_fini.
 */
static int
test_parse(struct config *cfg, char *err, size_t errlen, ...)
{
    static char storage[TEST_ARGS_MAX][128];
    char *argv[TEST_ARGS_MAX + 1];
    const char *a;
    va_list ap;
    int argc = 0;

    snprintf(storage[argc], sizeof(storage[argc]), "forqd");
    argv[argc] = storage[argc];
    argc++;
    va_start(ap, errlen);
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(argc < TEST_ARGS_MAX);
        assert_true(strlen(a) < sizeof(storage[argc]));
        snprintf(storage[argc], sizeof(storage[argc]), "%s", a);
        argv[argc] = storage[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    config_init(cfg);
    memset(err, 'E', errlen); /* the parser must leave a terminated string */
    err[errlen - 1] = '\0';
    return config_parse_args(cfg, argc, argv, err, errlen);
}

static void
test_config_defaults(void **state)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct config cfg;
    char err[256];

    config_init(&cfg);
    assert_int_equal(cfg.workers, cpus > 0 ? (unsigned)cpus : 1);
    assert_int_equal(cfg.max_payload, 1 * MIB);
    assert_int_equal(cfg.max_result, 1 * MIB);
    assert_int_equal(cfg.max_frame, 1 * MIB + 64 * KIB);
    assert_true(cfg.max_frame >= cfg.max_payload + 1024);
    assert_int_equal(cfg.max_queued, 1000000);
    assert_int_equal(cfg.max_queues, 1024);
    assert_int_equal(cfg.max_inflight, 4096);
    assert_int_equal(cfg.max_connections, 16384);
    assert_int_equal(cfg.result_ttl_ms, 24ULL * 3600 * 1000);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_int_equal(cfg.show_help, 0);
    assert_int_equal(cfg.show_version, 0);
    assert_int_equal(cfg.nlisten, 0);
    config_fini(&cfg);

    /* No flags: the defaults stand and the default address is added. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), NULL), 0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0], CONFIG_DEFAULT_LISTEN);
    assert_string_equal(cfg.listen[0], "tcp://127.0.0.1:7340");
    assert_int_equal(cfg.max_payload, 1 * MIB);
    config_fini(&cfg);
    assert_int_equal(cfg.nlisten, 0);
}

static void
test_config_every_flag(void **state)
{
    struct config cfg;
    char err[256];

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--listen", "tcp://0.0.0.0:0", "--workers",
                                "3", "--max-frame", "4M", "--max-payload", "512K", "--max-result",
                                "3m", "--max-queued", "10", "--max-queues", "7", "--max-inflight",
                                "9", "--max-connections", "11", "--result-ttl", "60", "--log-level",
                                "debug", NULL),
                     0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0], "tcp://0.0.0.0:0");
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.max_frame, 4 * MIB);
    assert_int_equal(cfg.max_payload, 512 * KIB);
    assert_int_equal(cfg.max_result, 3 * MIB);
    assert_int_equal(cfg.max_queued, 10);
    assert_int_equal(cfg.max_queues, 7);
    assert_int_equal(cfg.max_inflight, 9);
    assert_int_equal(cfg.max_connections, 11);
    assert_int_equal(cfg.result_ttl_ms, 60000);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.show_help, 0);
    assert_int_equal(cfg.show_version, 0);
    config_fini(&cfg);

    /* --flag=value works too, and so do the other log levels. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers=5", "--max-payload=100k",
                                "--max-result=100k", "--max-frame=200K", "--log-level=warn", NULL),
                     0);
    assert_int_equal(cfg.workers, 5);
    assert_int_equal(cfg.max_payload, 100 * KIB);
    assert_int_equal(cfg.max_frame, 200 * KIB);
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--log-level", "err", NULL), 0);
    assert_int_equal(cfg.log_level, LOG_LEVEL_ERR);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--log-level", "info", NULL), 0);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    config_fini(&cfg);
}

static void
test_config_sizes_and_bounds(void **state)
{
    struct config cfg;
    char err[256];

    /* Plain bytes, K, M and G, either case; the bounds themselves are accepted. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "1000", "--max-result",
                                "0G", "--max-frame", "512M", "--workers", "1024", NULL),
                     0);
    assert_int_equal(cfg.max_payload, 1000);
    assert_int_equal(cfg.max_result, 0);
    assert_int_equal(cfg.max_frame, 512 * MIB);
    assert_int_equal(cfg.workers, 1024);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "256M", "--max-result",
                                "0g", "--max-frame", "1024", "--max-payload", "0", NULL),
                     0);
    assert_int_equal(cfg.max_frame, 1024);
    assert_int_equal(cfg.max_payload, 0); /* the last one wins */
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-queued", "4294967296",
                                "--max-queues", "2048", "--workers", "1", NULL),
                     0);
    assert_int_equal(cfg.max_queued, (size_t)1 << 32);
    assert_int_equal(cfg.max_queues, 2048);
    assert_int_equal(cfg.workers, 1);
    config_fini(&cfg);

    /* One past a bound, and G on a size whose limit is below 1G. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-queues", "2049", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-queues"));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "1G", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-payload"));
    assert_non_null(strstr(err, "'1G'"));
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-frame", "1023", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-frame"));
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers", "1025", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--workers"));
    config_fini(&cfg);
    /* Counts take no suffix. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers", "1K", NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--workers"));
    config_fini(&cfg);
    /* A number too long for 64 bits is refused, not wrapped. */
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--max-queued", "18446744073709551617", NULL),
        FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-queued"));
    config_fini(&cfg);
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--max-payload", "18014398509481984K", NULL),
        FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-payload"));
    config_fini(&cfg);
}

struct test_bad {
    const char *args[4]; /* NULL-terminated */
    const char *names;   /* must appear in the message */
};

static void
test_config_bad_values_name_the_flag(void **state)
{
    static const struct test_bad bad[] = {
        {{"--workers", "0"}, "--workers"},
        {{"--workers", "abc"}, "--workers"},
        {{"--workers", "99999"}, "--workers"},
        {{"--workers", "-1"}, "--workers"},
        {{"--workers", ""}, "--workers"},
        {{"--workers", "3 "}, "--workers"},
        {{"--max-payload", "1X"}, "--max-payload"},
        {{"--max-payload", "1KB"}, "--max-payload"},
        {{"--max-payload", "K"}, "--max-payload"},
        {{"--max-result", "1T"}, "--max-result"},
        {{"--max-queued", "0"}, "--max-queued"},
        {{"--max-queues", "x"}, "--max-queues"},
        {{"--max-inflight", "0"}, "--max-inflight"},
        {{"--max-connections", "2000000"}, "--max-connections"},
        {{"--result-ttl", "0"}, "--result-ttl"},
        {{"--listen", "foo://x"}, "--listen"},
        {{"--listen", "tcp://nohostport"}, "--listen"},
        {{"--listen", "tcp://:7340"}, "--listen"},
        {{"--listen", "tcp://host:"}, "--listen"},
        {{"--listen", "tcp://host:65536"}, "--listen"},
        {{"--listen", "tcp://host:http"}, "--listen"},
        {{"--listen", "unix://relative"}, "--listen"},
        {{"--listen", "unix://"}, "--listen"},
        {{"--listen", "127.0.0.1:7340"}, "--listen"},
        {{"--listen", "tcp://::1:7340"}, "--listen"}, /* IPv6 needs brackets */
        {{"--log-level", "loud"}, "--log-level"},
        {{"--log-level", ""}, "--log-level"},
        {{"--bogus"}, "--bogus"},
        {{"--bogus=1"}, "--bogus"},
        {{"-x"}, "-x"},
        {{"-xh"}, "'-x'"}, /* the unknown letter inside a cluster is the one named */
        {{"--max-queues", "2049"}, "--max-queues"},
        {{"stray"}, "stray"},
        {{"--workers", "2", "stray"}, "stray"},
        {{"--workers"}, "--workers"},
        {{"--workers", "2", "--listen"}, "--listen"},
        {{"--max-payload", "1M", "--max-frame", "1M"}, "--max-frame"},
        {{"--max-result", "2M"}, "--max-result"}, /* over the default --max-frame */
    };
    struct config cfg;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const *a = bad[i].args;
        int r = test_parse(&cfg, err, sizeof(err), a[0], a[1], a[2], a[3], NULL);

        if (r != FORQ_ERR_INVALID || strstr(err, bad[i].names) == NULL)
            fail_msg("case %zu (%s %s): got %d, message '%s'", i, a[0], a[1] ? a[1] : "", r, err);
        /* The message is one line that also carries the offending value. */
        assert_null(strchr(err, '\n'));
        if (a[1] != NULL && a[1][0] != '\0' && strstr(err, "must exceed") == NULL &&
            strcmp(bad[i].names, "stray") != 0 && strcmp(bad[i].names, "--listen") != 0)
            assert_non_null(strstr(err, a[1]));
        config_fini(&cfg);
    }
}

static void
test_config_value_shown_for_listen(void **state)
{
    struct config cfg;
    char err[256];

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--listen", "unix://relative", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--listen"));
    assert_non_null(strstr(err, "'unix://relative'"));
    config_fini(&cfg);
}

static void
test_config_frame_must_exceed_payload(void **state)
{
    struct config cfg;
    char err[256];

    /* 1023 bytes of room is too little, 1024 is enough; for payloads and results. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "10000", "--max-result",
                                "100", "--max-frame", "11023", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-frame"));
    assert_non_null(strstr(err, "--max-payload"));
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "10000", "--max-result",
                                "100", "--max-frame", "11024", NULL),
                     0);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-result", "10000", "--max-payload",
                                "100", "--max-frame", "11023", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-result"));
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-result", "10000", "--max-payload",
                                "100", "--max-frame", "11024", NULL),
                     0);
    config_fini(&cfg);
    /* A bigger payload alone breaks the default frame size. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "2M", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--max-frame"));
    config_fini(&cfg);
}

static void
test_config_help_and_version(void **state)
{
    struct config cfg;
    char err[256];

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--help", NULL), 0);
    assert_int_equal(cfg.show_help, 1);
    assert_int_equal(cfg.show_version, 0);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-h", NULL), 0);
    assert_int_equal(cfg.show_help, 1);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--version", NULL), 0);
    assert_int_equal(cfg.show_version, 1);
    assert_int_equal(cfg.show_help, 0);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-V", NULL), 0);
    assert_int_equal(cfg.show_version, 1);
    config_fini(&cfg);
    /* --help wins over values that would not validate together. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-payload", "2M", "--help", NULL), 0);
    assert_int_equal(cfg.show_help, 1);
    config_fini(&cfg);
}

/*
 * A parse that stops inside a cluster of short options ("-hV" stops at h)
 * must not leak into the next parse: each call starts getopt afresh.
 */
static void
test_config_parse_starts_afresh(void **state)
{
    struct config cfg;
    char err[256];

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-hV", NULL), 0);
    assert_int_equal(cfg.show_help, 1);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers", "2", NULL), 0);
    assert_int_equal(cfg.workers, 2);
    assert_int_equal(cfg.show_version, 0);
    assert_int_equal(cfg.show_help, 0);
    assert_int_equal(cfg.nlisten, 1);
    config_fini(&cfg);

    /* And after an error in the middle of the arguments. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers", "x", "--workers", "3", NULL),
                     FORQ_ERR_INVALID);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers", "4", NULL), 0);
    assert_int_equal(cfg.workers, 4);
    config_fini(&cfg);
}

static void
test_config_listen_accumulates(void **state)
{
    struct config cfg;
    char err[256];

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--listen", "tcp://127.0.0.1:1", "--listen",
                                "unix:///run/forq/forq.sock", "--workers", "2", "--listen",
                                "tcp://[::1]:7340", NULL),
                     0);
    assert_int_equal(cfg.nlisten, 3); /* no default added */
    assert_string_equal(cfg.listen[0], "tcp://127.0.0.1:1");
    assert_string_equal(cfg.listen[1], "unix:///run/forq/forq.sock");
    assert_string_equal(cfg.listen[2], "tcp://[::1]:7340");
    config_fini(&cfg);
    assert_int_equal(cfg.nlisten, 0);
}

static void
test_config_listen_limit(void **state)
{
    static char addrs[CONFIG_LISTEN_MAX + 1][32];
    char *argv[2 * (CONFIG_LISTEN_MAX + 1) + 2];
    struct config cfg;
    char err[256];
    int argc = 0;

    argv[argc++] = "forqd";
    for (int i = 0; i <= CONFIG_LISTEN_MAX; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "tcp://127.0.0.1:%d", 7000 + i);
        argv[argc++] = "--listen";
        argv[argc++] = addrs[i];
    }
    argv[argc] = NULL;

    /* Exactly the maximum is fine. */
    config_init(&cfg);
    assert_int_equal(config_parse_args(&cfg, argc - 2, argv, err, sizeof(err)), 0);
    assert_int_equal(cfg.nlisten, CONFIG_LISTEN_MAX);
    assert_string_equal(cfg.listen[CONFIG_LISTEN_MAX - 1], addrs[CONFIG_LISTEN_MAX - 1]);
    config_fini(&cfg);

    /* One more is refused, and what was collected is still freed by config_fini. */
    config_init(&cfg);
    assert_int_equal(config_parse_args(&cfg, argc, argv, err, sizeof(err)), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--listen"));
    assert_int_equal(cfg.nlisten, CONFIG_LISTEN_MAX);
    config_fini(&cfg);
}

static void
test_config_usage_lists_every_flag(void **state)
{
    static const char *flags[] = {
        "--listen",     "--workers",    "--max-frame",    "--max-payload",     "--max-result",
        "--max-queued", "--max-queues", "--max-inflight", "--max-connections", "--result-ttl",
        "--log-level",  "--help",       "--version"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    config_usage(f);
    assert_int_equal(fclose(f), 0);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        assert_non_null(strstr(text, flags[i]));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_every_flag),
        cmocka_unit_test(test_config_sizes_and_bounds),
        cmocka_unit_test(test_config_bad_values_name_the_flag),
        cmocka_unit_test(test_config_value_shown_for_listen),
        cmocka_unit_test(test_config_frame_must_exceed_payload),
        cmocka_unit_test(test_config_help_and_version),
        cmocka_unit_test(test_config_parse_starts_afresh),
        cmocka_unit_test(test_config_listen_accumulates),
        cmocka_unit_test(test_config_listen_limit),
        cmocka_unit_test(test_config_usage_lists_every_flag),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
