/*
 * test_exec.c — unit tests for daemon/exec.c: splitting command lines,
 * resolving programs at start-up, and running real commands (cat, sh, true,
 * yes, sleep) through task_run() in this process, which stands in for a
 * worker.
 *
 * Every run checks that it left no fd open and no child behind, and that
 * SIGPIPE's disposition is back to what it was. The PR_SET_PDEATHSIG test
 * forks a stand-in worker and SIGKILLs it mid-job.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec.h"
#include "forq.h"
#include "task.h"
#include "test_rng.h"

#define TEST_MAX_RESULT (2u << 20)
#define TEST_ERRMSG_CAP 1024 /* as a slot's */
#define TEST_TASKS_MAX  64

/* One task invocation: the io and the buffers behind it. */
struct test_run {
    struct forq_task_io io;
    uint8_t *result; /* TEST_MAX_RESULT bytes */
    char errmsg[TEST_ERRMSG_CAP];
};

/*
 * The table and the config tasks behind it: exec tasks borrow their names and
 * argv for the life of the process, so both are static.
 */
static struct task_table test_table;
static struct config_task test_cts[TEST_TASKS_MAX];
static size_t test_ncts;

static int
test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Split line into a config task called name; NULL argv on a split error. */
static struct config_task *
test_ct(const char *name, const char *line, size_t max_output)
{
    struct config_task *ct;
    char why[256];

    assert_true(test_ncts < TEST_TASKS_MAX);
    ct = &test_cts[test_ncts++];
    ct->name = strdup(name);
    assert_non_null(ct->name);
    assert_int_equal(exec_split(line, &ct->argv, &ct->argc, why, sizeof(why)), 0);
    ct->max_output = max_output;
    return ct;
}

/* Declare the exec task name = line; it must be accepted. */
static void
test_add(const char *name, const char *line, size_t max_output, size_t max_result)
{
    struct config_task *ct = test_ct(name, line, max_output);
    char why[256] = "";
    int r;

    r = exec_task_add(&test_table, ct, max_result, why, sizeof(why));
    if (r != 0)
        fail_msg("exec_task_add(%s): %d %s", name, r, why);
}

/*
 * Run task name on len bytes of payload as job job_id; checks that the run
 * leaves no fd, child or SIGPIPE disposition behind.
 */
static int
test_run(struct test_run *r, const char *name, const void *payload, size_t len, uint64_t job_id)
{
    int idx = task_find(&test_table, name, strlen(name));
    struct sigaction before, after;
    int fds, st;

    assert_true(idx >= 0);
    if (r->result == NULL) {
        r->result = malloc(TEST_MAX_RESULT);
        assert_non_null(r->result);
    }
    memset(r->errmsg, 0x5a, sizeof(r->errmsg));
    r->io = (struct forq_task_io){
        .payload = payload,
        .payload_len = len,
        .result = r->result,
        .result_cap = TEST_MAX_RESULT,
        .errmsg = r->errmsg,
        .errmsg_cap = sizeof(r->errmsg),
        .job_id = job_id,
    };
    assert_int_equal(sigaction(SIGPIPE, NULL, &before), 0);
    fds = test_count_fds();
    st = task_run(&test_table, idx, &r->io);
    assert_int_equal(test_count_fds(), fds);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left, zombie or not */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(sigaction(SIGPIPE, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    return st;
}

static void
test_run_free(struct test_run *r)
{
    free(r->result);
    r->result = NULL;
}

static void
test_expect_text(const struct test_run *r, const char *want)
{
    assert_int_equal(r->io.result_len, strlen(want));
    assert_memory_equal(r->result, want, strlen(want));
}

static int
test_setup(void **state)
{
    task_table_init(&test_table);
    return 0;
}

/* ---------------------------------------------------------------- exec_split */

/* Split line and expect the n words of want. */
static void
test_split_ok(const char *line, size_t n, const char *const *want)
{
    char why[128] = "", **argv;
    size_t argc;

    if (exec_split(line, &argv, &argc, why, sizeof(why)) != 0)
        fail_msg("exec_split(%s): %s", line, why);
    assert_int_equal(argc, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[n]);
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
}

#define TEST_SPLIT(line, ...)                                                                      \
    do {                                                                                           \
        static const char *const w_[] = {__VA_ARGS__};                                             \
        test_split_ok(line, sizeof(w_) / sizeof(w_[0]), w_);                                       \
    } while (0)

static void
test_exec_split_words(void **state)
{
    TEST_SPLIT("cat", "cat");
    TEST_SPLIT("  a  b\tc\n", "a", "b", "c");
    TEST_SPLIT("/usr/bin/convert -resize 50% - png:-", "/usr/bin/convert", "-resize", "50%", "-",
               "png:-");
    /* Single quotes: everything literal, backslashes included. */
    TEST_SPLIT("sh -c 'echo oops >&2; exit 3'", "sh", "-c", "echo oops >&2; exit 3");
    TEST_SPLIT("'a\\nb' '\"'", "a\\nb", "\"");
    /* Double quotes: only \" and \\ are escapes. */
    TEST_SPLIT("\"a \\\"b\\\" c\\\\d \\n $x\"", "a \"b\" c\\d \\n $x");
    TEST_SPLIT("\"it's\"", "it's");
    /* Outside quotes a backslash escapes any one character. */
    TEST_SPLIT("a\\ b \\'c \\\\", "a b", "'c", "\\");
    /* Quoted parts join the word they touch; '' and "" are empty words. */
    TEST_SPLIT("x'a b'\"c d\"y", "xa bc dy");
    TEST_SPLIT("printf '' \"\"", "printf", "", "");
    TEST_SPLIT("a ''", "a", "");
}

static void
test_split_bad(const char *line, const char *reason)
{
    char why[128] = "", **argv = (char **)1;
    size_t argc = 99;

    assert_int_equal(exec_split(line, &argv, &argc, why, sizeof(why)), FORQ_ERR_INVALID);
    assert_null(argv);
    assert_int_equal(argc, 0);
    if (strstr(why, reason) == NULL)
        fail_msg("exec_split(%s): '%s' does not say '%s'", line, why, reason);
}

static void
test_exec_split_errors(void **state)
{
    test_split_bad("", "empty command");
    test_split_bad(" \t ", "empty command");
    test_split_bad("sh -c 'echo", "unterminated single quote (opened at column 7)");
    test_split_bad("echo \"a", "unterminated double quote (opened at column 6)");
    test_split_bad("echo \"a\\\"", "unterminated double quote");
    test_split_bad("echo 'a'\"", "unterminated double quote (opened at column 9)");
    test_split_bad("echo a\\", "trailing backslash");
}

/* ---------------------------------------------------------------- exec_task_add */

/* exec_task_add must refuse name = line, saying reason, and leave the table alone. */
static void
test_add_bad(const char *name, const char *line, const char *reason)
{
    struct config_task *ct = test_ct(name, line, 0);
    size_t n = test_table.ntasks;
    char why[512] = "";

    assert_int_equal(exec_task_add(&test_table, ct, 1024, why, sizeof(why)), FORQ_ERR_INVALID);
    if (strstr(why, reason) == NULL)
        fail_msg("'%s': '%s' does not say '%s'", line, why, reason);
    assert_non_null(strstr(why, name));
    assert_int_equal(test_table.ntasks, n);
    assert_int_equal(task_find(&test_table, name, strlen(name)), strcmp(name, "echo") ? -1 : 0);
}

static void
test_exec_add_refuses_bad_programs(void **state)
{
    char plain[] = "/tmp/forq-test-exec-XXXXXX";
    char line[64];
    int fd;

    test_add_bad("missing", "/nonexistent/forq-prog -x", "/nonexistent/forq-prog: No such file");
    test_add_bad("notinpath", "forq-no-such-program-anywhere", "not found as an executable file");
    test_add_bad("relative", "bin/sh -c true", "must be an absolute path or a name found in $PATH");
    test_add_bad("dir", "/tmp", "/tmp: not a regular file");
    /* A plain file, even to root (access(X_OK) alone would let root pass). */
    assert_true((fd = mkstemp(plain)) >= 0);
    close(fd);
    assert_int_equal(chmod(plain, 0644), 0);
    snprintf(line, sizeof(line), "%s arg", plain);
    test_add_bad("plain", line, "not executable");
    unlink(plain);
    /* Taken and invalid names. */
    test_add_bad("echo", "cat", "task 'echo': invalid name or already defined");
    test_add_bad("bad name", "cat", "invalid name or already defined");
}

static void
test_exec_add_resolves_path_once(void **state)
{
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    struct test_run r = {0};

    /* Relative and empty $PATH entries would mean forqd's cwd: skipped. */
    assert_int_equal(setenv("PATH", ".::relative:/bin:/usr/bin", 1), 0);
    test_add("p.cat", "cat", 0, 1024);
    /* The path found at start-up is used, whatever $PATH says later. */
    assert_int_equal(setenv("PATH", "/nonexistent", 1), 0);
    assert_int_equal(test_run(&r, "p.cat", "x", 1, 1), 0);
    test_expect_text(&r, "x");
    if (saved != NULL)
        setenv("PATH", saved, 1);
    else
        unsetenv("PATH");
    free(saved);
    test_run_free(&r);
}

/* ---------------------------------------------------------------- exec_run */

static void
test_exec_cat_echoes_payload(void **state)
{
    static const uint8_t bin[] = {'a', 0, 0xff, '\n', 0x80, 'z'};
    struct test_run r = {0};
    uint8_t *big = malloc(1u << 20);

    assert_non_null(big);
    test_add("cat", "cat", 0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "cat", "hello", 5, 1), 0);
    test_expect_text(&r, "hello");
    assert_int_equal(test_run(&r, "cat", bin, sizeof(bin), 2), 0);
    assert_int_equal(r.io.result_len, sizeof(bin));
    assert_memory_equal(r.result, bin, sizeof(bin));
    assert_int_equal(test_run(&r, "cat", "", 0, 3), 0);
    assert_int_equal(r.io.result_len, 0);
    /* 1 MiB each way, far more than a pipe holds: no deadlock. */
    test_rng_seed(42);
    for (size_t i = 0; i < (1u << 20); i++)
        big[i] = (uint8_t)test_rng();
    assert_int_equal(test_run(&r, "cat", big, 1u << 20, 4), 0);
    assert_int_equal(r.io.result_len, 1u << 20);
    assert_memory_equal(r.result, big, 1u << 20);
    free(big);
    test_run_free(&r);
}

static void
test_exec_exit_status_and_stderr(void **state)
{
    struct test_run r = {0};

    test_add("oops", "sh -c 'echo partial; echo oops >&2; exit 3'", 0, TEST_MAX_RESULT);
    test_add("quiet", "sh -c 'exit 4'", 0, TEST_MAX_RESULT);
    test_add("ok.noisy", "sh -c 'echo warning >&2; printf done'", 0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "oops", "", 0, 1), FORQ_ERR_TASK_FAILED);
    assert_string_equal(r.errmsg, "command exited with status 3: oops");
    assert_int_equal(r.io.result_len, 0);
    assert_int_equal(test_run(&r, "quiet", "", 0, 1), FORQ_ERR_TASK_FAILED);
    assert_string_equal(r.errmsg, "command exited with status 4: (no stderr)");
    /* Exit 0 succeeds whatever went to stderr. */
    assert_int_equal(test_run(&r, "ok.noisy", "", 0, 1), 0);
    test_expect_text(&r, "done");
    test_run_free(&r);
}

static void
test_exec_command_ignoring_stdin_is_no_harm(void **state)
{
    struct test_run r = {0};
    size_t len = 4u << 20;
    char *big = malloc(len);

    assert_non_null(big);
    memset(big, 'x', len);
    test_add("true", "true", 0, TEST_MAX_RESULT);
    test_add("head1", "head -c 1", 0, TEST_MAX_RESULT);
    /* The pipe breaks under our writes: EPIPE, and this process lives on. */
    assert_int_equal(test_run(&r, "true", big, len, 1), 0);
    assert_int_equal(r.io.result_len, 0);
    assert_int_equal(test_run(&r, "head1", big, len, 2), 0);
    test_expect_text(&r, "x");
    free(big);
    test_run_free(&r);
}

static void
test_exec_output_over_max_output_is_too_big(void **state)
{
    struct test_run r = {0};

    test_add("yes", "yes", 1000, TEST_MAX_RESULT);
    test_add("z1000", "head -c 1000 /dev/zero", 1000, TEST_MAX_RESULT);
    test_add("z1001", "head -c 1001 /dev/zero", 1000, TEST_MAX_RESULT);
    /* max_output above max_result is capped at max_result; 0 means max_result. */
    test_add("z101", "head -c 101 /dev/zero", 1u << 20, 100);
    test_add("z100", "head -c 100 /dev/zero", 0, 100);

    /* Endless output: killed as soon as it is over. */
    assert_int_equal(test_run(&r, "yes", "", 0, 1), FORQ_ERR_TOO_BIG);
    assert_string_equal(r.errmsg, "output of task 'yes' exceeds 1000 bytes");
    assert_int_equal(r.io.result_len, 0);
    assert_int_equal(test_run(&r, "z1000", "", 0, 2), 0);
    assert_int_equal(r.io.result_len, 1000);
    assert_int_equal(test_run(&r, "z1001", "", 0, 3), FORQ_ERR_TOO_BIG);
    assert_int_equal(test_run(&r, "z101", "", 0, 4), FORQ_ERR_TOO_BIG);
    assert_string_equal(r.errmsg, "output of task 'z101' exceeds 100 bytes");
    assert_int_equal(test_run(&r, "z100", "", 0, 5), 0);
    assert_int_equal(r.io.result_len, 100);
    test_run_free(&r);
}

static void
test_exec_killed_by_signal(void **state)
{
    struct test_run r = {0};

    test_add("term", "sh -c 'echo dying >&2; kill -TERM $$'", 0, TEST_MAX_RESULT);
    test_add("kill9", "sh -c 'kill -KILL $$'", 0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "term", "", 0, 1), FORQ_ERR_TASK_FAILED);
    assert_string_equal(r.errmsg, "command killed by signal 15 (SIGTERM): dying");
    assert_int_equal(test_run(&r, "kill9", "", 0, 1), FORQ_ERR_TASK_FAILED);
    assert_string_equal(r.errmsg, "command killed by signal 9 (SIGKILL): (no stderr)");
    test_run_free(&r);
}

static void
test_exec_environment(void **state)
{
    struct test_run r = {0};

    test_add("jobid", "sh -c 'printf %s \"$FORQ_JOB_ID\"'", 0, TEST_MAX_RESULT);
    test_add("taskname", "sh -c 'printf %s:%s \"$FORQ_TASK\" \"$FORQ_TEST_KEPT\"'", 0,
             TEST_MAX_RESULT);
    /* Stale values in forqd's own environment are replaced, the rest kept. */
    assert_int_equal(setenv("FORQ_JOB_ID", "stale", 1), 0);
    assert_int_equal(setenv("FORQ_TASK", "stale", 1), 0);
    assert_int_equal(setenv("FORQ_TEST_KEPT", "kept", 1), 0);
    assert_int_equal(test_run(&r, "jobid", "", 0, UINT64_MAX), 0);
    test_expect_text(&r, "18446744073709551615");
    assert_int_equal(test_run(&r, "jobid", "", 0, 7), 0);
    test_expect_text(&r, "7");
    assert_int_equal(test_run(&r, "taskname", "", 0, 7), 0);
    test_expect_text(&r, "taskname:kept");
    unsetenv("FORQ_JOB_ID");
    unsetenv("FORQ_TASK");
    unsetenv("FORQ_TEST_KEPT");
    test_run_free(&r);
}

static void
test_exec_stderr_tail_keeps_the_end(void **state)
{
    struct test_run r = {0};
    const char *m;

    test_add("chatty",
             "sh -c 'i=0; while [ $i -lt 300 ]; do echo line$i >&2; i=$((i+1)); done; "
             "echo last words >&2; exit 1'",
             0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "chatty", "", 0, 1), FORQ_ERR_TASK_FAILED);
    m = r.errmsg;
    assert_true(strncmp(m, "command exited with status 1: ...", 33) == 0);
    assert_non_null(strstr(m, "line299\nlast words"));
    assert_null(strstr(m, "line0\n"));
    assert_true(strlen(m) <= 33 + EXEC_STDERR_TAIL);
    assert_int_equal(m[strlen(m) - 1], 's'); /* the final newline trimmed */

    /* A small errmsg buffer keeps the end too. */
    {
        char small[64];
        int idx = task_find(&test_table, "chatty", 6);

        r.io = (struct forq_task_io){.payload = "",
                                     .result = r.result,
                                     .result_cap = 10,
                                     .errmsg = small,
                                     .errmsg_cap = sizeof(small)};
        assert_int_equal(task_run(&test_table, idx, &r.io), FORQ_ERR_TASK_FAILED);
        assert_int_equal(strlen(small), sizeof(small) - 1);
        assert_non_null(strstr(small, "command exited with status 1: ..."));
        assert_non_null(strstr(small, "last words"));
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    }
    test_run_free(&r);
}

static void
test_exec_program_gone_after_start_up(void **state)
{
    char dir[] = "/tmp/forq-test-exec-XXXXXX", path[64], line[80], want[160];
    struct test_run r = {0};
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/prog", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("#!/bin/sh\necho hi\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(line, sizeof(line), "%s --flag", path);
    test_add("gone", line, 0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "gone", "", 0, 1), 0);
    test_expect_text(&r, "hi\n");
    unlink(path);
    rmdir(dir);
    assert_int_equal(test_run(&r, "gone", "", 0, 2), FORQ_ERR_TASK_FAILED);
    snprintf(want, sizeof(want),
             "command exited with status 127: cannot run %s: No such file or directory", path);
    assert_string_equal(r.errmsg, want);
    test_run_free(&r);
}

/* The command starts clean: only fds 0-2, default signals, none blocked, our process group. */
static void
test_exec_child_starts_clean(void **state)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_usr1;
    sigset_t block, old_mask;
    struct test_run r = {0};
    char want[32];
    int stray;

    /*
     * An fd this process leaked without O_CLOEXEC must not reach the command.
     * ls lists its own fds: 0-2 and the directory it reads (3).
     */
    assert_int_equal((stray = dup2(STDERR_FILENO, 100)), 100);
    test_add("fds", "ls -1 /proc/self/fd", 0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "fds", "", 0, 1), 0);
    test_expect_text(&r, "0\n1\n2\n3\n");
    close(stray);

    /* Ignored and blocked signals in the worker: the command sees defaults. */
    sigaction(SIGUSR1, &ign, &old_usr1);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    test_add("usr1", "sh -c 'kill -USR1 $$; echo survived'", 0, TEST_MAX_RESULT);
    test_add("term2", "sh -c 'kill -TERM $$; echo survived'", 0, TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "usr1", "", 0, 1), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(r.errmsg, "killed by signal 10 (SIGUSR1)"));
    assert_int_equal(test_run(&r, "term2", "", 0, 1), FORQ_ERR_TASK_FAILED);
    assert_non_null(strstr(r.errmsg, "killed by signal 15 (SIGTERM)"));
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);

    /* In the worker's process group, so that forqd's kill(-pgid) reaches it. */
    test_add("pgrp", "sh -c 'read -r a b c d pgrp rest < /proc/$$/stat; printf %s $pgrp'", 0,
             TEST_MAX_RESULT);
    assert_int_equal(test_run(&r, "pgrp", "", 0, 1), 0);
    snprintf(want, sizeof(want), "%d", (int)getpgrp());
    test_expect_text(&r, want);
    test_run_free(&r);
}

/* Gone, or a zombie waiting for its new parent. */
static int
test_is_dead(pid_t pid)
{
    char path[64], buf[256], *p;
    FILE *f;
    int dead;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 1;
    dead = fgets(buf, sizeof(buf), f) == NULL || (p = strrchr(buf, ')')) == NULL || p[2] == 'Z' ||
           p[2] == 'X';
    fclose(f);
    return dead;
}

static void
test_exec_command_dies_with_its_worker(void **state)
{
    char dir[] = "/tmp/forq-test-exec-XXXXXX", pidfile[64], line[256];
    struct timespec tick = {0, 10 * 1000 * 1000};
    pid_t worker, cmd = 0;
    FILE *f;
    int st;

    assert_non_null(mkdtemp(dir));
    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    snprintf(line, sizeof(line), "sh -c 'echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 60'",
             pidfile, pidfile, pidfile);
    test_add("orphan", line, 0, TEST_MAX_RESULT);

    /* A stand-in worker, killed mid-job the way forqd kills a stuck one. */
    worker = fork();
    assert_true(worker >= 0);
    if (worker == 0) {
        struct test_run r = {0};

        r.result = malloc(64);
        r.io = (struct forq_task_io){.payload = "",
                                     .result = r.result,
                                     .result_cap = 64,
                                     .errmsg = r.errmsg,
                                     .errmsg_cap = sizeof(r.errmsg)};
        task_run(&test_table, task_find(&test_table, "orphan", 6), &r.io);
        _exit(0);
    }
    for (int i = 0; i < 1000 && cmd == 0; i++) {
        if ((f = fopen(pidfile, "r")) != NULL) {
            if (fscanf(f, "%d", &cmd) != 1)
                cmd = 0;
            fclose(f);
        }
        if (cmd == 0)
            nanosleep(&tick, NULL);
    }
    assert_true(cmd > 0);
    assert_false(test_is_dead(cmd));
    assert_int_equal(kill(worker, SIGKILL), 0);
    assert_int_equal(waitpid(worker, &st, 0), worker);
    for (int i = 0; i < 500 && !test_is_dead(cmd); i++)
        nanosleep(&tick, NULL);
    if (!test_is_dead(cmd)) {
        kill(cmd, SIGKILL);
        fail_msg("the command outlived its worker");
    }
    unlink(pidfile);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_split_words),
        cmocka_unit_test(test_exec_split_errors),
        cmocka_unit_test(test_exec_add_refuses_bad_programs),
        cmocka_unit_test(test_exec_add_resolves_path_once),
        cmocka_unit_test(test_exec_cat_echoes_payload),
        cmocka_unit_test(test_exec_exit_status_and_stderr),
        cmocka_unit_test(test_exec_command_ignoring_stdin_is_no_harm),
        cmocka_unit_test(test_exec_output_over_max_output_is_too_big),
        cmocka_unit_test(test_exec_killed_by_signal),
        cmocka_unit_test(test_exec_environment),
        cmocka_unit_test(test_exec_stderr_tail_keeps_the_end),
        cmocka_unit_test(test_exec_program_gone_after_start_up),
        cmocka_unit_test(test_exec_child_starts_clean),
        cmocka_unit_test(test_exec_command_dies_with_its_worker),
    };

    return cmocka_run_group_tests(tests, test_setup, NULL);
}
