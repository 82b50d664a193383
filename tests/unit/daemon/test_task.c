/*
 * test_task.c — unit tests for daemon/task.c: the task table and the built-in
 * tasks, run in-process through task_run() with stack buffers standing in for
 * a worker's slot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "forq.h"
#include "task.h"

#define TEST_RESULT_CAP 256
#define TEST_ERRMSG_CAP 128
#define TEST_BUILTINS   6 /* echo upper sleep fib fail alloc */

/*
 * Under AddressSanitizer, a refused allocation must come back as NULL (as
 * from glibc) rather than end the process: the alloc test needs to see it.
 * Without ASan nothing reads this.
 */
const char *__asan_default_options(void) __attribute__((visibility("default"), used));

const char *
__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* One task invocation: the io and the buffers behind it. */
struct test_run {
    struct forq_task_io io;
    uint8_t result[TEST_RESULT_CAP + 16]; /* slack to catch writes past the cap */
    char errmsg[TEST_ERRMSG_CAP];
};

static const struct task_table *
test_table(void)
{
    static struct task_table t;
    static int done;

    if (!done) {
        task_table_init(&t);
        done = 1;
    }
    return &t;
}

/*
 * Run the built-in called name on len bytes of payload with result_cap bytes
 * of room. The result and message buffers start dirty, as a reused slot would.
 */
static int
test_run(struct test_run *r, const char *name, const void *payload, size_t len, size_t result_cap)
{
    const struct task_table *t = test_table();
    int idx = task_find(t, name, strlen(name));

    assert_true(idx >= 0);
    assert_true(result_cap <= TEST_RESULT_CAP);
    memset(r, 0xa5, sizeof(*r));
    r->io.payload = payload;
    r->io.payload_len = len;
    r->io.result = r->result;
    r->io.result_cap = result_cap;
    r->io.result_len = 12345; /* task_run must reset it */
    r->io.errmsg = r->errmsg;
    r->io.errmsg_cap = sizeof(r->errmsg);
    return task_run(t, idx, &r->io);
}

/* The result bytes; also checks nothing was written past result_cap. */
static void
test_expect_result(const struct test_run *r, const void *want, size_t len)
{
    assert_int_equal(r->io.result_len, len);
    if (len > 0)
        assert_memory_equal(r->result, want, len);
    for (size_t i = r->io.result_cap; i < sizeof(r->result); i++)
        assert_int_equal(r->result[i], 0xa5);
}

static void
test_expect_text(const struct test_run *r, const char *want)
{
    test_expect_result(r, want, strlen(want));
}

static void
test_task_echo(void **state)
{
    static const uint8_t bin[] = {'h', 'i', 0, 0xff, '\n', 0x80, 'Z'};
    struct test_run r;

    assert_int_equal(test_run(&r, "echo", "hello", 5, TEST_RESULT_CAP), 0);
    test_expect_text(&r, "hello");
    assert_int_equal(test_run(&r, "echo", bin, sizeof(bin), TEST_RESULT_CAP), 0);
    test_expect_result(&r, bin, sizeof(bin));
    /* Empty in, empty out. */
    assert_int_equal(test_run(&r, "echo", "", 0, TEST_RESULT_CAP), 0);
    test_expect_result(&r, "", 0);
    /* Exactly at the cap is fine. */
    assert_int_equal(test_run(&r, "echo", "abcd", 4, 4), 0);
    test_expect_text(&r, "abcd");
}

static void
test_task_upper(void **state)
{
    static const char in[] = "Hello, wOrld! 123 `az{ \xc3\xa9\xe4\xff@[_";
    static const char want[] = "HELLO, WORLD! 123 `AZ{ \xc3\xa9\xe4\xff@[_";
    uint8_t all[256], all_want[256];
    struct test_run r;

    assert_int_equal(test_run(&r, "upper", in, sizeof(in) - 1, TEST_RESULT_CAP), 0);
    test_expect_result(&r, want, sizeof(want) - 1);

    /* Every byte value: only a..z change. */
    for (size_t i = 0; i < 256; i++) {
        all[i] = (uint8_t)i;
        all_want[i] = i >= 'a' && i <= 'z' ? (uint8_t)(i - 32) : (uint8_t)i;
    }
    assert_int_equal(test_run(&r, "upper", all, 256, TEST_RESULT_CAP), 0);
    test_expect_result(&r, all_want, 256);

    assert_int_equal(test_run(&r, "upper", "", 0, TEST_RESULT_CAP), 0);
    test_expect_result(&r, "", 0);
}

static void
test_task_sleep(void **state)
{
    struct test_run r;

    assert_int_equal(test_run(&r, "sleep", "0", 1, TEST_RESULT_CAP), 0);
    test_expect_result(&r, "", 0);
    assert_int_equal(test_run(&r, "sleep", "5", 1, TEST_RESULT_CAP), 0);
    test_expect_result(&r, "", 0);
    assert_int_equal(test_run(&r, "sleep", "1\n", 2, TEST_RESULT_CAP), 0);

    assert_int_equal(test_run(&r, "sleep", "x", 1, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(r.errmsg, "decimal number in 0..3600000"));
    assert_int_equal(r.io.result_len, 0);
    assert_int_equal(test_run(&r, "sleep", "3600001", 7, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(r.errmsg, "out of range 0..3600000"));
    assert_int_equal(test_run(&r, "sleep", "99999999999999999999", 20, TEST_RESULT_CAP),
                     FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(r.errmsg, "0..3600000"));
    assert_int_equal(test_run(&r, "sleep", "123456789012345678901", 21, TEST_RESULT_CAP),
                     FORQ_ERR_TASK_FAILED);
    assert_int_equal(test_run(&r, "sleep", "", 0, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_int_equal(test_run(&r, "sleep", "-1", 2, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_int_equal(test_run(&r, "sleep", " 5", 2, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_int_equal(test_run(&r, "sleep", "5ms", 3, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_int_equal(test_run(&r, "sleep", "\n", 1, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
}

static void
test_task_fib(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } ok[] = {
        {"0", "0"},      {"1", "1"},      {"2", "1"},    {"10", "55"},
        {"25", "75025"}, {"12\n", "144"}, {"007", "13"},
    };
    static const char *bad[] = {"51", "",    "\n",     "x",
                                "-1", "1 2", "12\n\n", "99999999999999999999999"};
    struct test_run r;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(test_run(&r, "fib", ok[i].in, strlen(ok[i].in), TEST_RESULT_CAP), 0);
        test_expect_text(&r, ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(test_run(&r, "fib", bad[i], strlen(bad[i]), TEST_RESULT_CAP),
                         FORQ_ERR_TASK_FAILED);
        assert_int_equal(r.io.result_len, 0);
        assert_non_null(strstr(r.errmsg, "0..50"));
    }
}

static void
test_task_fail(void **state)
{
    char big[TEST_ERRMSG_CAP * 2];
    struct test_run r;

    assert_int_equal(test_run(&r, "fail", "disk on fire", 12, TEST_RESULT_CAP),
                     FORQ_ERR_TASK_FAILED);
    assert_string_equal(r.errmsg, "disk on fire");
    assert_int_equal(r.io.result_len, 0);

    assert_int_equal(test_run(&r, "fail", "", 0, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_string_equal(r.errmsg, "failed on request");

    /* A message longer than the buffer is cut, and still terminated. */
    memset(big, 'm', sizeof(big));
    assert_int_equal(test_run(&r, "fail", big, sizeof(big), TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_int_equal(strlen(r.errmsg), TEST_ERRMSG_CAP - 1);
    assert_memory_equal(r.errmsg, big, TEST_ERRMSG_CAP - 1);
}

static void
test_task_alloc(void **state)
{
    struct test_run r;

    assert_int_equal(test_run(&r, "alloc", "1", 1, TEST_RESULT_CAP), 0);
    test_expect_text(&r, "ok");
    assert_int_equal(test_run(&r, "alloc", "0", 1, TEST_RESULT_CAP), 0);
    test_expect_text(&r, "ok");
    assert_int_equal(test_run(&r, "alloc", "16\n", 3, TEST_RESULT_CAP), 0);
    test_expect_text(&r, "ok");
    assert_int_equal(test_run(&r, "alloc", "1048577", 7, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(r.errmsg, "out of range 0..1048576"));
    assert_int_equal(test_run(&r, "alloc", "1M", 2, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
    assert_int_equal(test_run(&r, "alloc", "", 0, TEST_RESULT_CAP), FORQ_ERR_TASK_FAILED);
}

/* This process's address space, in bytes (the first field of statm, in pages). */
static size_t
test_vm_size(void)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL || fscanf(f, "%lu", &pages) != 1)
        _exit(10);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * In a child (a worker's RLIMIT_AS applies to the whole process): 256 MiB of
 * room beyond what the process already maps, as forqd's memory_limit would
 * give, then 4 GiB must fail with memory_limit while 1 MiB still fits. Exit
 * code 0 when all was as expected.
 */
static int
test_alloc_under_limit(void)
{
    struct rlimit rl;
    struct test_run r;

    rl.rlim_cur = rl.rlim_max = test_vm_size() + (256u << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 11;
    if (test_run(&r, "alloc", "4096", 4, TEST_RESULT_CAP) != FORQ_ERR_MEMORY_LIMIT)
        return 12;
    if (strcmp(r.errmsg, "cannot allocate 4096 MiB: the worker's memory limit (memory_limit) "
                         "or the system refused") != 0)
        return 13;
    if (r.io.result_len != 0)
        return 14;
    if (test_run(&r, "alloc", "1048576", 7, TEST_RESULT_CAP) != FORQ_ERR_MEMORY_LIMIT)
        return 15;
    if (test_run(&r, "alloc", "1", 1, TEST_RESULT_CAP) != 0 || r.io.result_len != 2)
        return 16;
    return 0;
}

static void
test_task_alloc_over_memory_limit(void **state)
{
    pid_t pid;
    int st;

    (void)test_table(); /* build it before the fork, as forqd does */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(test_alloc_under_limit());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_task_result_over_cap_is_too_big(void **state)
{
    struct test_run r;

    assert_int_equal(test_run(&r, "echo", "hello", 5, 4), FORQ_ERR_TOO_BIG);
    assert_non_null(strstr(r.errmsg, "exceeds the limit of 4"));
    test_expect_result(&r, "", 0);
    assert_int_equal(test_run(&r, "upper", "hello", 5, 4), FORQ_ERR_TOO_BIG);
    assert_non_null(strstr(r.errmsg, "exceeds the limit of 4"));
    test_expect_result(&r, "", 0);
    assert_int_equal(test_run(&r, "fib", "25", 2, 4), FORQ_ERR_TOO_BIG); /* "75025" */
    test_expect_result(&r, "", 0);
    assert_int_equal(test_run(&r, "echo", "x", 1, 0), FORQ_ERR_TOO_BIG);
    /* An empty result fits in no room at all. */
    assert_int_equal(test_run(&r, "echo", "", 0, 0), 0);
}

/* Plugin-style tasks that break the rules, to see task_run contain them. */
static int
test_fn_lies_about_len(struct forq_task_io *io)
{
    io->result_len = io->result_cap + 1;
    return 0;
}

static int
test_fn_positive(struct forq_task_io *io)
{
    return 7;
}

static int
test_fn_below_last(struct forq_task_io *io)
{
    return FORQ_ERR__LAST - 1;
}

static int
test_fn_code_no_message(struct forq_task_io *io)
{
    return FORQ_ERR_TIMEOUT;
}

static int
test_fn_ok(struct forq_task_io *io)
{
    return forq_task_set_result(io, "ok", 2);
}

static void
test_task_run_contains_misbehaving_tasks(void **state)
{
    static struct task_table t;
    uint8_t result[8];
    char errmsg[128];
    struct forq_task_io io = {.payload = "",
                              .result = result,
                              .result_cap = sizeof(result),
                              .errmsg = errmsg,
                              .errmsg_cap = sizeof(errmsg)};
    int base;

    task_table_init(&t);
    base = (int)t.ntasks;
    assert_int_equal(task_table_add(&t, "lies", test_fn_lies_about_len), 0);
    assert_int_equal(task_table_add(&t, "positive", test_fn_positive), 0);
    assert_int_equal(task_table_add(&t, "below", test_fn_below_last), 0);
    assert_int_equal(task_table_add(&t, "nomsg", test_fn_code_no_message), 0);
    assert_int_equal(task_table_add(&t, "ok", test_fn_ok), 0);

    assert_int_equal(task_run(&t, base, &io), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(errmsg, "over the limit of 8"));
    assert_int_equal(task_run(&t, base + 1, &io), FORQ_ERR_TASK_FAILED);
    assert_string_equal(errmsg, forq_strerror(FORQ_ERR_TASK_FAILED));
    assert_int_equal(task_run(&t, base + 2, &io), FORQ_ERR_TASK_FAILED);
    assert_int_equal(task_run(&t, base + 3, &io), FORQ_ERR_TIMEOUT);
    assert_string_equal(errmsg, forq_strerror(FORQ_ERR_TIMEOUT));
    /* A success after failures: the old message is gone. */
    assert_int_equal(task_run(&t, base + 4, &io), 0);
    assert_int_equal(io.result_len, 2);
    assert_memory_equal(result, "ok", 2);
    assert_string_equal(errmsg, "");

    /* Indexes outside the table fail cleanly. */
    assert_int_equal(task_run(&t, -1, &io), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(errmsg, "no task with index -1"));
    assert_int_equal(task_run(&t, (int)t.ntasks, &io), FORQ_ERR_TASK_FAILED);
    assert_int_equal(io.result_len, 0);
}

static void
test_task_find_and_name(void **state)
{
    static const char *builtins[TEST_BUILTINS] = {"echo", "upper", "sleep", "fib", "fail", "alloc"};
    const struct task_table *t = test_table();

    assert_int_equal(t->ntasks, TEST_BUILTINS);
    for (size_t i = 0; i < TEST_BUILTINS; i++) {
        int idx = task_find(t, builtins[i], strlen(builtins[i]));

        assert_true(idx >= 0);
        assert_string_equal(task_name(t, idx), builtins[i]);
    }
    /* Exact length: prefixes and extensions are other names. */
    assert_int_equal(task_find(t, "echoes", 4), task_find(t, "echo", 4));
    assert_int_equal(task_find(t, "ech", 3), -1);
    assert_int_equal(task_find(t, "echoo", 5), -1);
    assert_int_equal(task_find(t, "ECHO", 4), -1);
    assert_int_equal(task_find(t, "", 0), -1);
    assert_string_equal(task_name(t, -1), "?");
    assert_string_equal(task_name(t, (int)t->ntasks), "?");
    assert_string_equal(task_name(t, 100000), "?");
}

static void
test_task_table_add_rejects_bad_names(void **state)
{
    static struct task_table t;
    char longest[FORQ_NAME_MAX + 2];
    size_t n;

    task_table_init(&t);
    n = t.ntasks;
    assert_int_equal(task_table_add(&t, "", test_fn_ok), FORQ_ERR_INVALID);
    assert_int_equal(task_table_add(&t, "has space", test_fn_ok), FORQ_ERR_INVALID);
    assert_int_equal(task_table_add(&t, "a/b", test_fn_ok), FORQ_ERR_INVALID);
    assert_int_equal(task_table_add(&t, "caf\xc3\xa9", test_fn_ok), FORQ_ERR_INVALID);
    assert_int_equal(task_table_add(&t, "new\n", test_fn_ok), FORQ_ERR_INVALID);
    memset(longest, 'x', sizeof(longest));
    longest[FORQ_NAME_MAX + 1] = '\0';
    assert_int_equal(task_table_add(&t, longest, test_fn_ok), FORQ_ERR_INVALID);
    /* Duplicates, built-in or not, and a missing function. */
    assert_int_equal(task_table_add(&t, "echo", test_fn_ok), FORQ_ERR_INVALID);
    assert_int_equal(task_table_add(&t, "fine", NULL), FORQ_ERR_INVALID);
    assert_int_equal(t.ntasks, n);

    longest[FORQ_NAME_MAX] = '\0';
    assert_int_equal(task_table_add(&t, longest, test_fn_ok), 0);
    assert_int_equal(task_find(&t, longest, FORQ_NAME_MAX), (int)n);
    assert_int_equal(task_table_add(&t, "img.resize:v2_x-y", test_fn_ok), 0);
    assert_int_equal(task_find(&t, "img.resize:v2_x-y", 17), (int)n + 1);
    assert_int_equal(task_table_add(&t, "img.resize:v2_x-y", test_fn_ok), FORQ_ERR_INVALID);
    assert_int_equal(t.ntasks, n + 2);
    /* The built-ins kept their places. */
    assert_int_equal(task_find(&t, "echo", 4), 0);
}

static void
test_task_table_full(void **state)
{
    static struct task_table t;
    static char names[TASK_MAX][24];
    size_t n;

    task_table_init(&t);
    for (n = 0; t.ntasks < TASK_MAX; n++) {
        snprintf(names[n], sizeof(names[n]), "t%zu", n);
        assert_int_equal(task_table_add(&t, names[n], test_fn_ok), 0);
    }
    assert_int_equal(task_table_add(&t, "one-more", test_fn_ok), FORQ_ERR_LIMIT);
    assert_int_equal(t.ntasks, TASK_MAX);
    assert_int_equal(task_find(&t, "t0", 2), TEST_BUILTINS);
    assert_int_equal(task_find(&t, names[n - 1], strlen(names[n - 1])), TASK_MAX - 1);
}

/* A config from flags only (no config file). The caller calls config_fini. */
static void
test_config(struct config *cfg, const char *const *flags)
{
    char *argv[16] = {"forqd", "-c", "/dev/null"};
    char err[512];
    int argc = 3;

    for (; *flags != NULL && argc < 15; flags++)
        argv[argc++] = (char *)*flags;
    argv[argc] = NULL;
    config_init(cfg);
    if (config_parse_args(cfg, argc, argv, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
}

/*
 * A reload keeps every name at its index: a changed task keeps its place, a
 * removed one stays as a removed entry (not found, fails with unknown_task
 * when a queued job of it runs), a new one is appended. A rebuild that fails
 * leaves the table as it was.
 */
static void
test_task_rebuild(void **state)
{
    static const char *const first[] = {"--task=one=/bin/echo 1", "--task=two=/bin/echo 2",
                                        NULL};
    static const char *const second[] = {"--task=two=/bin/echo 22", "--task=three=/bin/cat",
                                         NULL};
    static const char *const broken[] = {"--plugin=/nonexistent/forq-plugin.so", NULL};
    static struct task_table t;
    struct config a, b, c;
    struct test_run r = {0};
    char why[256];
    int one, two;

    (void)state;
    test_config(&a, first);
    assert_int_equal(task_table_build(&t, &a, why, sizeof(why)), 0);
    one = task_find(&t, "one", 3);
    two = task_find(&t, "two", 3);
    assert_true(one >= 0 && two > one);
    assert_int_equal(t.ntasks, (size_t)two + 1);

    test_config(&b, second);
    assert_int_equal(task_table_rebuild(&t, &b, why, sizeof(why)), 0);
    config_fini(&a); /* nothing borrows from it any more */
    assert_int_equal(task_find(&t, "two", 3), two);
    assert_int_equal(task_find(&t, "three", 5), two + 1);
    assert_int_equal(task_find(&t, "one", 3), -1);
    assert_true(task_removed(&t, one));
    assert_false(task_removed(&t, two));
    assert_string_equal(task_name(&t, one), "one");
    assert_int_equal(task_find(&t, "echo", 4), 0); /* built-ins keep their places */

    r.io.payload = "";
    r.io.result = r.result;
    r.io.result_cap = TEST_RESULT_CAP;
    r.io.errmsg = r.errmsg;
    r.io.errmsg_cap = sizeof(r.errmsg);
    assert_int_equal(task_run(&t, one, &r.io), FORQ_ERR_UNKNOWN_TASK);
    assert_string_equal(r.errmsg, "task 'one' was removed by a reload");

    /* A plugin that cannot load: refused with the reason, the table untouched. */
    test_config(&c, broken);
    assert_int_equal(task_table_rebuild(&t, &c, why, sizeof(why)) != 0, 1);
    assert_non_null(strstr(why, "/nonexistent/forq-plugin.so"));
    assert_int_equal(task_find(&t, "three", 5), two + 1);
    assert_true(task_removed(&t, one));
    config_fini(&c);

    /* A removed name that comes back gets its old index again. */
    test_config(&c, first);
    assert_int_equal(task_table_rebuild(&t, &c, why, sizeof(why)), 0);
    config_fini(&b);
    assert_int_equal(task_find(&t, "one", 3), one);
    assert_true(task_removed(&t, two + 1)); /* three */
    task_table_fini(&t);
    config_fini(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_echo),
        cmocka_unit_test(test_task_upper),
        cmocka_unit_test(test_task_sleep),
        cmocka_unit_test(test_task_fib),
        cmocka_unit_test(test_task_fail),
        cmocka_unit_test(test_task_alloc),
        cmocka_unit_test(test_task_alloc_over_memory_limit),
        cmocka_unit_test(test_task_result_over_cap_is_too_big),
        cmocka_unit_test(test_task_run_contains_misbehaving_tasks),
        cmocka_unit_test(test_task_find_and_name),
        cmocka_unit_test(test_task_table_add_rejects_bad_names),
        cmocka_unit_test(test_task_table_full),
        cmocka_unit_test(test_task_rebuild),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
