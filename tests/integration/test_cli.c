/*
 * test_cli.c — the forq command against a real forqd: the README's first
 * example, results, failures and their exit codes, stdin payloads, --json,
 * `forq wait` on several ids, and a token from $FORQ_TOKEN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

struct ctx {
    struct harness h;
};

static int
group_setup(void **state)
{
    static const char *const args[] = {"--workers=2", "--max-result=2048", NULL};
    struct ctx *x = calloc(1, sizeof(*x));

    if (x == NULL || harness_start(&x->h, args) != 0)
        return -1;
    /* The CLI takes its address from the environment when -s is absent. */
    setenv("FORQ_SERVER", x->h.addr, 1);
    *state = x;
    return 0;
}

static int
group_teardown(void **state)
{
    struct ctx *x = *state;

    assert_int_equal(harness_stop(&x->h), 0);
    free(x);
    return 0;
}

/* Run forq ARGS (stdin from in, may be NULL); expect exit status and stdout. */
static void
expect_cli(const char *const *args, const char *in, int status, const char *out_has)
{
    char out[8192];
    int r = harness_run_cli(args, in, out, sizeof(out));

    if (r != status || (out_has != NULL && strstr(out, out_has) == NULL))
        fail_msg("forq %s ...: expected exit %d and '%s', got %d and '%s'", args[0], status,
                 out_has ? out_has : "", r, out);
}

static void
test_readme_example(void **state)
{
    static const char *const args[] = {"submit", "upper", "hello", "--wait", NULL};
    char out[256];

    (void)state;
    assert_int_equal(harness_run_cli(args, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "HELLO\n");
}

static void
test_submit_then_wait_status(void **state)
{
    static const char *const submit[] = {"submit", "echo", "-", NULL};
    char out[256], id[32];
    const char *wait[] = {"wait", id, NULL};
    const char *status[] = {"status", id, NULL};
    const char *cancel[] = {"cancel", id, NULL};

    (void)state;
    /* The payload comes from stdin; the id is printed. */
    assert_int_equal(harness_run_cli(submit, "from stdin", out, sizeof(out)), 0);
    assert_true(strtoull(out, NULL, 10) > 0);
    snprintf(id, sizeof(id), "%llu", strtoull(out, NULL, 10));
    expect_cli(wait, NULL, 0, "from stdin");
    expect_cli(status, NULL, 0, "succeeded");
    expect_cli(cancel, NULL, 5, NULL); /* finished: refused (state) */
}

static void
test_failures_and_exit_codes(void **state)
{
    static const char *const failed[] = {"submit", "fail", "boom", "--wait", NULL};
    static const char *const too_big_result[] = {"submit", "echo", "-", "--wait", NULL};
    char big[4096];
    static const char *const unknown[] = {"submit", "no-such-task", "x", NULL};
    static const char *const not_found[] = {"status", "987654321", NULL};
    static const char *const timeout[] = {"submit", "sleep", "2000", "--wait", "--timeout", "10",
                                          NULL};
    static const char *const usage[] = {"frobnicate", NULL};
    static const char *const refused[] = {"-s", "tcp://127.0.0.1:1", "ping", NULL};
    static const char *const bad_addr[] = {"-s", "http://x", "ping", NULL};

    (void)state;
    expect_cli(failed, NULL, 1, NULL);
    /* The job fails with too_big (its result is over --max-result): still exit 1. */
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_cli(too_big_result, big, 1, NULL);
    expect_cli(unknown, NULL, 5, NULL);
    expect_cli(not_found, NULL, 5, NULL);
    expect_cli(timeout, NULL, 4, NULL);
    expect_cli(usage, NULL, 2, NULL);
    expect_cli(refused, NULL, 3, NULL);
    expect_cli(bad_addr, NULL, 2, NULL);
}

static void
test_json_and_stats(void **state)
{
    static const char *const json[] = {"--json", "submit", "upper", "hi", "--wait", NULL};
    static const char *const ping[] = {"ping", NULL};
    static const char *const stats[] = {"stats", NULL};
    static const char *const fib[] = {"submit", "fib", "30", "--wait", NULL};

    (void)state;
    expect_cli(json, NULL, 0, "\"result\":\"HI\"");
    expect_cli(json, NULL, 0, "\"state\":\"succeeded\"");
    expect_cli(ping, NULL, 0, NULL);
    expect_cli(stats, NULL, 0, "default");
    expect_cli(fib, NULL, 0, "832040");
}

/* Submit TASK PAYLOAD and return the printed id in buf. */
static void
submit_id(const char *task, const char *payload, char *buf, size_t len)
{
    const char *args[] = {"submit", task, payload, NULL};
    char out[256];

    assert_int_equal(harness_run_cli(args, NULL, out, sizeof(out)), 0);
    out[strcspn(out, "\n")] = '\0';
    assert_true(strlen(out) < len);
    memcpy(buf, out, strlen(out) + 1);
}

/*
 * forq wait on several ids: each outcome printed in the order given, the
 * exit status of the worst one (a failed job: 1), and --json lines.
 */
static void
test_wait_several_ids(void **state)
{
    char a[32], b[32], c[32], out[8192];
    const char *ok[] = {"wait", a, b, NULL};
    const char *mixed[] = {"wait", a, c, b, NULL};
    const char *json[] = {"--json", "wait", a, c, NULL};
    const char *missing[] = {"wait", a, "987654321", NULL};
    const char *bad_id[] = {"wait", a, "x12", NULL};
    const char *slow[] = {"wait", a, NULL, "--timeout", "50", NULL};
    char s[32];

    (void)state;
    submit_id("upper", "first", a, sizeof(a));
    submit_id("upper", "second", b, sizeof(b));
    submit_id("fail", "nope", c, sizeof(c));
    assert_int_equal(harness_run_cli(ok, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "FIRST\nSECOND\n");
    assert_int_equal(harness_run_cli(mixed, NULL, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FIRST\n"));
    assert_true(strstr(out, "FIRST") < strstr(out, "SECOND"));
    expect_cli(json, NULL, 1, "\"result\":\"FIRST\"");
    expect_cli(json, NULL, 1, "\"state\":\"failed\"");
    expect_cli(missing, NULL, 5, "FIRST");
    expect_cli(bad_id, NULL, 2, NULL);
    /* A job that does not finish in time: exit 4, the finished one still printed. */
    submit_id("sleep", "5000", s, sizeof(s));
    slow[2] = s;
    expect_cli(slow, NULL, 4, "FIRST");
}

/* The token comes from the environment (forqd without auth ignores it). */
static void
test_token_from_env(void **state)
{
    static const char *const ping[] = {"ping", NULL};
    char big[400];

    (void)state;
    setenv("FORQ_TOKEN", "s3cret", 1);
    expect_cli(ping, NULL, 0, NULL);
    memset(big, 't', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    setenv("FORQ_TOKEN", big, 1);
    expect_cli(ping, NULL, 2, NULL); /* over 256 bytes: a usage error */
    unsetenv("FORQ_TOKEN");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_example),
        cmocka_unit_test(test_submit_then_wait_status),
        cmocka_unit_test(test_failures_and_exit_codes),
        cmocka_unit_test(test_json_and_stats),
        cmocka_unit_test(test_wait_several_ids),
        cmocka_unit_test(test_token_from_env),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
