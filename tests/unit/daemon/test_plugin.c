/*
 * test_plugin.c — unit tests for daemon/plugin.c: loading the example plugin
 * (examples/plugin/wordcount.c) and running its tasks through task_run(),
 * and refusing the broken fixtures of tests/unit/daemon/plugins/ with a
 * clear reason and the table left exactly as it was.
 *
 * Where the plugins are, first found wins:
 *  - the environment: FORQ_TEST_PLUGIN (libforq_wordcount.so) and
 *    FORQ_TEST_FIXTURE_DIR (the directory of libforq_fixture_*.so);
 *  - the same names as compile-time definitions (tests/CMakeLists.txt);
 *  - next to this binary's build tree: ../examples/plugin/ and
 *    ../examples/plugin-fixtures/.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "forq.h"
#include "plugin.h"
#include "task.h"

#define TEST_RESULT_CAP 256

/* The build tree this binary runs from (the parent of its directory). */
static const char *
test_build_dir(void)
{
    static char dir[PATH_MAX];
    ssize_t n;
    char *slash;

    if (dir[0] == '\0') {
        n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
        assert_true(n > 0);
        dir[n] = '\0';
        for (int i = 0; i < 2; i++) { /* strip the file, then its directory */
            assert_non_null(slash = strrchr(dir, '/'));
            *slash = '\0';
        }
    }
    return dir;
}

static const char *
test_wordcount_path(void)
{
    static char path[PATH_MAX + 64];
    const char *env = getenv("FORQ_TEST_PLUGIN");

    if (env != NULL && *env != '\0')
        return env;
#ifdef FORQ_TEST_PLUGIN
    if (FORQ_TEST_PLUGIN[0] != '\0')
        return FORQ_TEST_PLUGIN;
#endif
    snprintf(path, sizeof(path), "%s/examples/plugin/libforq_wordcount.so", test_build_dir());
    return path;
}

/* Path of fixture libforq_fixture_<name>.so; valid until the next call. */
static const char *
test_fixture_path(const char *name)
{
    static char path[PATH_MAX + 128];
    const char *dir = getenv("FORQ_TEST_FIXTURE_DIR");

#ifdef FORQ_TEST_FIXTURE_DIR
    if (dir == NULL || *dir == '\0')
        dir = FORQ_TEST_FIXTURE_DIR;
#endif
    if (dir != NULL && *dir != '\0')
        snprintf(path, sizeof(path), "%s/libforq_fixture_%s.so", dir, name);
    else
        snprintf(path, sizeof(path), "%s/examples/plugin-fixtures/libforq_fixture_%s.so",
                 test_build_dir(), name);
    return path;
}

/* Run task name on a text payload with cap bytes of room; the result as text in out. */
static int
test_run(const struct task_table *t, const char *name, const void *payload, size_t len, size_t cap,
         char *out, size_t outlen)
{
    uint8_t result[TEST_RESULT_CAP];
    char errmsg[TEST_RESULT_CAP];
    struct forq_task_io io = {.payload = payload,
                              .payload_len = len,
                              .result = result,
                              .result_cap = cap,
                              .errmsg = errmsg,
                              .errmsg_cap = sizeof(errmsg)};
    int idx = task_find(t, name, strlen(name)), r;

    assert_true(idx >= 0);
    assert_true(cap <= sizeof(result) && outlen > 0);
    r = task_run(t, idx, &io);
    if (r == 0)
        snprintf(out, outlen, "%.*s", (int)io.result_len, (const char *)result);
    else
        snprintf(out, outlen, "%s", errmsg);
    return r;
}

static void
test_plugin_wordcount_runs(void **state)
{
    static struct task_table t;
    const char *path = test_wordcount_path();
    char why[512] = "", out[TEST_RESULT_CAP + 1];
    size_t n;

    task_table_init(&t);
    n = t.ntasks;
    if (plugin_load(&t, path, why, sizeof(why)) != 0)
        fail_msg("plugin_load: %s", why);
    assert_int_equal(t.ntasks, n + 2);
    assert_int_equal(task_find(&t, "wc", 2), (int)n);
    assert_int_equal(task_find(&t, "rev", 3), (int)n + 1);

    assert_int_equal(test_run(&t, "wc", "hello world\nfoo\n", 16, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "2 3 16");
    assert_int_equal(test_run(&t, "wc", "", 0, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "0 0 0");
    assert_int_equal(test_run(&t, "wc", " a\tb  c", 7, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "0 3 7");
    assert_int_equal(test_run(&t, "wc", "abc", 3, 3, out, sizeof(out)), FORQ_ERR_TOO_BIG);

    assert_int_equal(test_run(&t, "rev", "abc", 3, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "cba");
    assert_int_equal(test_run(&t, "rev", "", 0, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* UTF-8 characters move whole; a stray byte moves alone. */
    assert_int_equal(test_run(&t, "rev", "h\xc3\xa9llo \xe2\x82\xac!", 11, 64, out, sizeof(out)),
                     0);
    assert_string_equal(out, "!\xe2\x82\xac oll\xc3\xa9h");
    assert_int_equal(test_run(&t, "rev", "a\xc3z\x80", 4, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "\x80z\xc3"
                             "a");
    assert_int_equal(test_run(&t, "rev", "abcd", 4, 3, out, sizeof(out)), FORQ_ERR_TOO_BIG);
    assert_non_null(strstr(out, "exceeds the limit of 3"));

    /* Twice: every name is taken now, and the table does not change. */
    n = t.ntasks;
    assert_int_equal(plugin_load(&t, path, why, sizeof(why)), FORQ_ERR_INVALID);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "task 'wc': invalid name or already defined"));
    assert_int_equal(t.ntasks, n);
    assert_int_equal(test_run(&t, "rev", "ab", 2, 64, out, sizeof(out)), 0);
    assert_string_equal(out, "ba");
}

/* plugin_load(path) must fail with code, name path, say reason, and leave t as it was. */
static void
test_refused(const char *path, int code, const char *reason)
{
    static struct task_table t, before;
    char why[512] = "";

    task_table_init(&t);
    memcpy(&before, &t, sizeof(t));
    assert_int_equal(plugin_load(&t, path, why, sizeof(why)), code);
    if (strstr(why, reason) == NULL)
        fail_msg("%s: '%s' does not say '%s'", path, why, reason);
    if (strncmp(why, path, strlen(path)) != 0)
        fail_msg("'%s' does not start with the path %s", why, path);
    assert_memory_equal(&t, &before, sizeof(t));
}

static void
test_plugin_refuses_wrong_abi(void **state)
{
    test_refused(test_fixture_path("abi999"), FORQ_ERR_INVALID,
                 ": built for task ABI version 999; this forqd loads version 1");
}

static void
test_plugin_refuses_missing_symbol(void **state)
{
    test_refused(test_fixture_path("nosym"), FORQ_ERR_INVALID,
                 ": no function forq_plugin_register(): not a forq task plugin");
}

static void
test_plugin_refuses_null_answer(void **state)
{
    test_refused(test_fixture_path("null"), FORQ_ERR_INVALID,
                 ": forq_plugin_register() returned NULL");
}

static void
test_plugin_refuses_bad_name_and_takes_back_the_rest(void **state)
{
    /* Its first task, fx_good, was added before "bad name" was seen. */
    test_refused(test_fixture_path("badname"), FORQ_ERR_INVALID,
                 ": task 'bad name': invalid name or already defined");
}

static void
test_plugin_refuses_no_tasks(void **state)
{
    test_refused(test_fixture_path("empty"), FORQ_ERR_INVALID, ": declares no tasks");
}

static void
test_plugin_refuses_unloadable_files(void **state)
{
    test_refused("/nonexistent/libforq_nothing.so", FORQ_ERR_INVALID,
                 "/nonexistent/libforq_nothing.so: cannot load: cannot open shared object file: "
                 "No such file or directory");
    /* Not a shared object at all. */
    test_refused("/dev/null", FORQ_ERR_INVALID, "/dev/null: cannot load: ");
    /* A bare name would go through the library search path: refused. */
    test_refused("libforq_wordcount.so", FORQ_ERR_INVALID, "must be given as a path");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_wordcount_runs),
        cmocka_unit_test(test_plugin_refuses_wrong_abi),
        cmocka_unit_test(test_plugin_refuses_missing_symbol),
        cmocka_unit_test(test_plugin_refuses_null_answer),
        cmocka_unit_test(test_plugin_refuses_bad_name_and_takes_back_the_rest),
        cmocka_unit_test(test_plugin_refuses_no_tasks),
        cmocka_unit_test(test_plugin_refuses_unloadable_files),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
