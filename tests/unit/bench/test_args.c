/*
 * test_args.c — the bench tools' shared command-line parsing (bench/args.c):
 * numbers in a range, HOST:PORT, and the anchors' load options, each with
 * the message an operator sees when a value is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "args.h"

#define TEST_ARGV_MAX 16

static void
test_usage(FILE *fp)
{
    fputs("usage: tool ...\n", fp);
}

/*
 * Run args_load_parse on "tool" and the NULL-terminated arguments, with
 * defaults addr "h:1", inflight 1000, size 16; what it wrote on stderr goes
 * to err. Returns its return value.
 */
static int
test_load(struct args_load *a, char *err, size_t errlen, ...)
{
    char *argv[TEST_ARGV_MAX + 1] = {"tool"};
    FILE *tmp = tmpfile();
    int argc = 1, saved, rc;
    size_t n;
    va_list ap;

    assert_non_null(tmp);
    va_start(ap, errlen);
    while (argc < TEST_ARGV_MAX && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    *a = (struct args_load){.addr = "h:1", .inflight = 1000, .size = 16};
    optind = 0; /* glibc: start over, as for a new program */
    opterr = 0;
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    rc = args_load_parse("tool", argc, argv, 1000000, 4096, test_usage, a);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    n = fread(err, 1, errlen - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return rc;
}

static void
test_num_in_range_and_out(void **state)
{
    uint64_t v = 7;

    (void)state;
    assert_int_equal(args_num("t", "--n", "42", 1, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(args_num("t", "--n", "0", 0, 0, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(args_num("t", "--n", "101", 1, 100, &v), -1);
    assert_int_equal(args_num("t", "--n", "0", 1, 100, &v), -1);
    assert_int_equal(args_num("t", "--n", "-1", 0, 100, &v), -1);
    assert_int_equal(args_num("t", "--n", "+1", 0, 100, &v), -1);
    assert_int_equal(args_num("t", "--n", "", 0, 100, &v), -1);
    assert_int_equal(args_num("t", "--n", "12x", 0, 100, &v), -1);
    assert_int_equal(args_num("t", "--n", "99999999999999999999", 0, UINT64_MAX, &v), -1);
}

static void
test_hostport_forms(void **state)
{
    char host[16], port[8];

    (void)state;
    assert_int_equal(args_hostport("127.0.0.1:7340", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "7340");
    assert_int_equal(args_hostport("tcp://h:1", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "h");
    assert_string_equal(port, "1");
    assert_int_equal(args_hostport("[::1]:80", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "80");

    assert_int_equal(args_hostport("nope", host, sizeof(host), port, sizeof(port)), -1);
    assert_int_equal(args_hostport("h:", host, sizeof(host), port, sizeof(port)), -1);
    assert_int_equal(args_hostport(":80", host, sizeof(host), port, sizeof(port)), -1);
    assert_int_equal(args_hostport("a-host-name-too-long:80", host, sizeof(host), port,
                                   sizeof(port)),
                     -1);
    assert_int_equal(args_hostport("h:123456789", host, sizeof(host), port, sizeof(port)), -1);
}

static void
test_load_modes_and_defaults(void **state)
{
    struct args_load a;
    char err[512];

    (void)state;
    assert_int_equal(test_load(&a, err, sizeof(err), "--mode", "throughput", NULL), -1);
    assert_int_equal(a.mode, ARGS_MODE_THROUGHPUT);
    assert_int_equal(a.jobs, 100000);
    assert_int_equal(a.inflight, 1000);
    assert_int_equal(a.size, 16);
    assert_string_equal(a.addr, "h:1");
    assert_string_equal(err, "");

    assert_int_equal(test_load(&a, err, sizeof(err), "-m", "latency", "-s", "x:2", "--size",
                               "0", NULL),
                     -1);
    assert_int_equal(a.mode, ARGS_MODE_LATENCY);
    assert_int_equal(a.jobs, 5000);
    assert_int_equal(a.size, 0);
    assert_string_equal(a.addr, "x:2");

    assert_int_equal(test_load(&a, err, sizeof(err), "--mode=worker", NULL), -1);
    assert_int_equal(a.mode, ARGS_MODE_WORKER);
    assert_string_equal(args_mode_names[a.mode], "worker");

    assert_int_equal(test_load(&a, err, sizeof(err), "--mode", "throughput", "-n", "7", "-k",
                               "3", NULL),
                     -1);
    assert_int_equal(a.jobs, 7);
    assert_int_equal(a.inflight, 3);

    assert_int_equal(test_load(&a, err, sizeof(err), "--help", NULL), 0);
}

static void
test_load_refuses_bad_options(void **state)
{
    static const struct {
        const char *args[4];
        const char *err;
    } cases[] = {
        {{NULL}, "tool: --mode is required: worker, throughput or latency\n"},
        {{"--mode", "fast"}, "tool: --mode: worker, throughput or latency\n"},
        {{"--mode", "worker", "--size", "8"},
         "tool: --jobs, --inflight and --size are for the producer modes, not --mode worker\n"},
        {{"--mode", "worker", "-n", "5"}, "tool: --jobs, --inflight and --size are for"},
        {{"--mode", "latency", "-k", "5"},
         "tool: --inflight is for --mode throughput (latency runs one job at a time)\n"},
        {{"--mode", "throughput", "-n", "0"}, "tool: --jobs: expected a number in 1..1000000\n"},
        {{"--mode", "throughput", "-k", "1000001"},
         "tool: --inflight: expected a number in 1..1000000\n"},
        {{"--mode", "throughput", "--size", "4097"},
         "tool: --size: expected a number in 0..4096\n"},
        {{"--mode", "throughput", "extra"}, "usage: tool"},
        {{"--mode", "throughput", "--bogus"}, "usage: tool"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct args_load a;
        char err[512];
        const char *const *v = cases[i].args;

        assert_int_equal(test_load(&a, err, sizeof(err), v[0], v[1], v[2], v[3], NULL), 2);
        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: stderr '%s', expected it to start with '%s'", i, err,
                     cases[i].err);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_num_in_range_and_out),
        cmocka_unit_test(test_hostport_forms),
        cmocka_unit_test(test_load_modes_and_defaults),
        cmocka_unit_test(test_load_refuses_bad_options),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
