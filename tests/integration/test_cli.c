/*
 * test_cli.c — the forq command against a real forqd: the README's first
 * example, results, failures and their exit codes, stdin payloads, --json,
 * `forq wait` on several ids, and a token from $FORQ_TOKEN; then, against a
 * second forqd with fast retries, job control: --delay, --retries,
 * --unique, --job-timeout, cancel --running, and the queue commands.
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

/* ------------------------------------------------------------------ job control */

/*
 * A forqd whose retries come 1 ms apart (so a retried job ends fast), and a
 * libforq client to see when a job is really running.
 */
struct jc_ctx {
    struct harness h;
    forq_client *c;
};

static int
jc_setup(void **state)
{
    static const char *const args[] = {"--workers=2", "--retry-backoff-ms=1", NULL};
    struct jc_ctx *x = calloc(1, sizeof(*x));

    if (x == NULL || harness_start(&x->h, args) != 0)
        return -1;
    if (forq_connect(x->h.addr, &x->c) != 0) {
        fprintf(stderr, "connect %s: %s\n", x->h.addr, forq_errmsg());
        harness_stop(&x->h);
        return -1;
    }
    setenv("FORQ_SERVER", x->h.addr, 1);
    *state = x;
    return 0;
}

static int
jc_teardown(void **state)
{
    struct jc_ctx *x = *state;

    forq_client_free(x->c);
    assert_int_equal(harness_stop(&x->h), 0);
    free(x);
    return 0;
}

/* Run forq ARGS; return its exit status, with its stderr in err. */
static int
cli_stderr(const char *const *args, char *err, size_t errlen)
{
    char out[4096], tmpl[] = "/tmp/forq-cli-err-XXXXXX";
    int fd = mkstemp(tmpl), saved, r;
    ssize_t n;

    assert_true(fd >= 0);
    unlink(tmpl);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    dup2(fd, STDERR_FILENO); /* the child inherits it */
    r = harness_run_cli(args, NULL, out, sizeof(out));
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, err, errlen - 1, 0);
    err[n > 0 ? n : 0] = '\0';
    close(fd);
    return r;
}

/* Submit with extra options (NULL-terminated, at most 8); the printed id in buf. */
static void
submit_opts(char *buf, size_t len, const char *task, const char *payload, ...)
{
    const char *args[16] = {"submit", task, payload};
    char out[256];
    va_list ap;
    int n = 3;

    va_start(ap, payload);
    while (n < 14 && (args[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    args[n] = NULL;
    assert_int_equal(harness_run_cli(args, NULL, out, sizeof(out)), 0);
    out[strcspn(out, "\n")] = '\0';
    assert_true(strtoull(out, NULL, 10) > 0);
    assert_true(strlen(out) < len);
    memcpy(buf, out, strlen(out) + 1);
}

/* A delayed job is scheduled, with its run_at, then runs. */
static void
test_submit_delay(void **state)
{
    char id[32];
    const char *status[] = {"status", id, NULL};
    const char *json[] = {"--json", "status", id, NULL};
    const char *wait[] = {"wait", id, NULL};

    (void)state;
    /* Long enough that the status below, a moment later, sees it still waiting. */
    submit_opts(id, sizeof(id), "upper", "later", "--delay", "3000", NULL);
    expect_cli(status, NULL, 0, "scheduled");
    expect_cli(status, NULL, 0, "run_at ");
    expect_cli(json, NULL, 0, "\"state\":\"scheduled\"");
    expect_cli(wait, NULL, 0, "LATER");
    expect_cli(status, NULL, 0, "succeeded");
    expect_cli(json, NULL, 0, "\"run_at_us\":0");
}

/* A failing job with one retry runs twice, then ends failed with the task's error. */
static void
test_submit_retries(void **state)
{
    char id[32];
    const char *status[] = {"status", id, NULL};
    const char *json[] = {"--json", "status", id, NULL};
    const char *wait[] = {"wait", id, NULL};
    const char *stats[] = {"--json", "stats", NULL};
    const char *too_many[] = {"submit", "fail", "x", "--retries", "1001", NULL};

    (void)state;
    submit_opts(id, sizeof(id), "fail", "boom", "--retries", "1", NULL);
    expect_cli(wait, NULL, 1, NULL);
    expect_cli(status, NULL, 0, "failed");
    expect_cli(status, NULL, 0, "2 of 2");
    expect_cli(status, NULL, 0, "task_failed: boom");
    expect_cli(json, NULL, 0, "\"attempts\":2");
    expect_cli(json, NULL, 0, "\"max_retries\":1");
    expect_cli(stats, NULL, 0, "\"retried\":");
    expect_cli(too_many, NULL, 2, NULL);
}

/*
 * --unique on a paused queue (so the first job surely is unfinished): the
 * same id twice; once the job has finished, the key is free again.
 */
static void
test_submit_unique(void **state)
{
    char a[32], b[32], c[32];
    static const char *const pause[] = {"queue", "pause", "uniq", NULL};
    static const char *const resume[] = {"queue", "resume", "uniq", NULL};
    const char *status[] = {"status", a, NULL};
    const char *wait[] = {"wait", a, NULL};

    (void)state;
    expect_cli(pause, NULL, 0, "paused yes");
    submit_opts(a, sizeof(a), "upper", "one", "-q", "uniq", "--unique", "k1", NULL);
    submit_opts(b, sizeof(b), "upper", "two", "-q", "uniq", "--unique", "k1", NULL);
    assert_string_equal(a, b);
    expect_cli(status, NULL, 0, "unique_key   k1");
    expect_cli(resume, NULL, 0, "paused no");
    expect_cli(wait, NULL, 0, "ONE");
    submit_opts(c, sizeof(c), "upper", "three", "-q", "uniq", "--unique", "k1", NULL);
    assert_string_not_equal(a, c);
}

/* A job past its --job-timeout has its worker killed and ends failed (job_timeout). */
static void
test_submit_job_timeout(void **state)
{
    char id[32];
    const char *status[] = {"status", id, NULL};
    const char *wait[] = {"--json", "wait", id, NULL};

    (void)state;
    submit_opts(id, sizeof(id), "sleep", "10000", "--job-timeout", "200", NULL);
    expect_cli(wait, NULL, 1, "\"code\":\"job_timeout\"");
    expect_cli(status, NULL, 0, "failed");
    expect_cli(status, NULL, 0, "job_timeout");
    expect_cli(status, NULL, 0, "200 ms");
}

/* cancel refuses a running job; cancel --running kills it and it ends cancelled. */
static void
test_cancel_running(void **state)
{
    struct jc_ctx *x = *state;
    char id[32], done[32];
    const char *cancel[] = {"cancel", id, NULL};
    const char *cancel_running[] = {"cancel", id, "--running", NULL};
    const char *status[] = {"status", id, NULL};
    const char *wait[] = {"wait", id, NULL};
    const char *finished[] = {"cancel", "--running", done, NULL};
    const char *wait_done[] = {"wait", done, NULL};

    submit_opts(id, sizeof(id), "sleep", "10000", "-q", "cancelq", NULL);
    assert_true(harness_wait_running(x->c, strtoull(id, NULL, 10)) > 0);
    expect_cli(cancel, NULL, 5, NULL); /* state: it is running */
    expect_cli(cancel_running, NULL, 0, "cancelled");
    expect_cli(status, NULL, 0, "cancelled");
    expect_cli(wait, NULL, 1, NULL);
    /* A finished job cannot be cancelled, running or not. */
    submit_opts(done, sizeof(done), "upper", "x", NULL);
    expect_cli(wait_done, NULL, 0, "X");
    expect_cli(finished, NULL, 5, NULL);
}

/* pause / info / set / resume / join, in the one-line and the JSON forms. */
static void
test_queue_round_trip(void **state)
{
    char id[32], out[8192];
    static const char *const pause[] = {"queue", "pause", "rt", NULL};
    static const char *const info[] = {"queue", "info", "rt", NULL};
    static const char *const info_json[] = {"--json", "queue", "info", "rt", NULL};
    static const char *const set[] = {"queue", "set", "rt", "--limit", "1", "--order", "lifo",
                                      NULL};
    static const char *const unset[] = {"queue", "set", "rt", "--limit", "0", NULL};
    static const char *const resume[] = {"queue", "resume", "rt", NULL};
    static const char *const join[] = {"queue", "join", "rt", NULL};
    static const char *const join_idle[] = {"queue", "join", "never-used", NULL};
    static const char *const stats[] = {"stats", NULL};
    static const char *const stats_json[] = {"--json", "stats", NULL};
    const char *status[] = {"status", id, NULL};
    const char *wait[] = {"wait", id, NULL};

    (void)state;
    expect_cli(pause, NULL, 0, "rt: queued 0, scheduled 0, running 0, limit none");
    expect_cli(pause, NULL, 0, "paused yes"); /* again: no error */
    submit_opts(id, sizeof(id), "upper", "held", "-q", "rt", NULL);
    expect_cli(status, NULL, 0, "queued");
    expect_cli(info, NULL, 0, "queued 1");
    expect_cli(info, NULL, 0, "paused yes");
    expect_cli(info_json, NULL, 0, "\"paused\":true");
    expect_cli(info_json, NULL, 0, "\"name\":\"rt\"");
    expect_cli(set, NULL, 0, "limit 1, order lifo, paused yes");
    expect_cli(stats, NULL, 0, "lifo");
    expect_cli(stats_json, NULL, 0, "\"limit\":1,\"order\":\"lifo\",\"paused\":true");
    expect_cli(stats_json, NULL, 0, "\"scheduled\":");
    expect_cli(status, NULL, 0, "queued"); /* still held */
    expect_cli(resume, NULL, 0, "paused no");
    assert_int_equal(harness_run_cli(join, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, ""); /* join prints nothing */
    expect_cli(status, NULL, 0, "succeeded");
    expect_cli(wait, NULL, 0, "HELD");
    expect_cli(unset, NULL, 0, "limit none, order lifo");
    expect_cli(join_idle, NULL, 0, NULL); /* an idle (even unknown) queue joins at once */
}

/* join --timeout on a paused queue holding a job: the timeout exit status. */
static void
test_queue_join_timeout(void **state)
{
    char id[32];
    static const char *const pause[] = {"queue", "pause", "jt", NULL};
    static const char *const resume[] = {"queue", "resume", "jt", NULL};
    static const char *const join[] = {"queue", "join", "jt", "--timeout", "100", NULL};
    static const char *const join_now[] = {"queue", "join", "jt", "-t", "0", NULL};
    static const char *const join_all[] = {"queue", "join", "jt", NULL};
    const char *wait[] = {"wait", id, NULL};

    (void)state;
    expect_cli(pause, NULL, 0, NULL);
    submit_opts(id, sizeof(id), "upper", "j", "-q", "jt", NULL);
    expect_cli(join, NULL, 4, NULL);
    expect_cli(join_now, NULL, 4, NULL);
    expect_cli(resume, NULL, 0, NULL);
    expect_cli(join_all, NULL, 0, NULL);
    expect_cli(wait, NULL, 0, "J");
}

/* Bad queue commands are usage errors (exit 2) with a message that says why. */
static void
test_queue_usage_errors(void **state)
{
    static const char *const set_nothing[] = {"queue", "set", "q", NULL};
    static const char *const bad_order[] = {"queue", "set", "q", "--order", "random", NULL};
    static const char *const bad_limit[] = {"queue", "set", "q", "--limit", "-3", NULL};
    static const char *const limit_on_info[] = {"queue", "info", "q", "--limit", "3", NULL};
    static const char *const timeout_on_pause[] = {"queue", "pause", "q", "-t", "5", NULL};
    static const char *const bad_action[] = {"queue", "drain", "q", NULL};
    static const char *const bad_name[] = {"queue", "info", "no/slash", NULL};
    static const char *const no_name[] = {"queue", "info", NULL};
    static const char *const running_on_status[] = {"status", "1", "--running", NULL};
    char err[4096];

    (void)state;
    assert_int_equal(cli_stderr(set_nothing, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "--limit"));
    assert_int_equal(cli_stderr(bad_order, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "'random' is not 'fifo' or 'lifo'"));
    assert_int_equal(cli_stderr(bad_limit, err, sizeof(err)), 2);
    assert_int_equal(cli_stderr(limit_on_info, err, sizeof(err)), 2);
    assert_int_equal(cli_stderr(timeout_on_pause, err, sizeof(err)), 2);
    assert_int_equal(cli_stderr(bad_action, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "drain"));
    assert_int_equal(cli_stderr(bad_name, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "queue name"));
    assert_int_equal(cli_stderr(no_name, err, sizeof(err)), 2);
    assert_int_equal(cli_stderr(running_on_status, err, sizeof(err)), 2);
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
    const struct CMUnitTest job_control[] = {
        cmocka_unit_test(test_queue_usage_errors),
        cmocka_unit_test(test_submit_delay),
        cmocka_unit_test(test_submit_retries),
        cmocka_unit_test(test_submit_unique),
        cmocka_unit_test(test_submit_job_timeout),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_queue_round_trip),
        cmocka_unit_test(test_queue_join_timeout),
    };
    int failed;

    failed = cmocka_run_group_tests_name("cli", tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("cli_job_control", job_control, jc_setup, jc_teardown);
    return failed;
}
