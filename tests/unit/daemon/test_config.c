/*
 * test_config.c — unit tests for daemon/config.c: defaults, every flag, the
 * INI file (every key, flags on top, and a "FILE:LINE:" refusal for each kind
 * of mistake), --check-config's printout read back, and the example
 * systemd/forqd.conf. Files live in a mkdtemp directory removed at the end.
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
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "forq.h"
#include "log.h"
#include "store.h"

#define TEST_ARGS_MAX 40
#define TEST_PATH_MAX 256

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
    assert_int_equal(cfg.max_watch_ids, 1000000);
    assert_int_equal(cfg.max_name, FORQ_NAME_MAX);
    assert_int_equal(cfg.max_name, 64);
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
                                "--max-queues", "1920", "--workers", "1", NULL),
                     0);
    assert_int_equal(cfg.max_queued, (size_t)1 << 32);
    assert_int_equal(cfg.max_queues, 1920);
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
    static const char *flags[] = {"--listen",
                                  "--workers",
                                  "--max-frame",
                                  "--max-payload",
                                  "--max-result",
                                  "--max-queued",
                                  "--max-queues",
                                  "--max-inflight",
                                  "--max-connections",
                                  "--max-watch-ids",
                                  "--max-name",
                                  "--result-ttl",
                                  "--log-level",
                                  "--help",
                                  "--version",
                                  "--data",
                                  "--durability",
                                  "--max-db-size",
                                  "--result-cache",
                                  "--config",
                                  "--check-config",
                                  "--retry-backoff-ms",
                                  "--retry-backoff-max-ms",
                                  "--max-jobs-per-worker",
                                  "--memory-limit",
                                  "--plugin",
                                  "--task",
                                  "--task-max-output",
                                  "--queue-limit",
                                  "--queue-order",
                                  "--queue-paused",
                                  "--auth-token-file",
                                  "--allow-uids",
                                  "--allow-gids",
                                  "--handshake-timeout-ms",
                                  "--idle-timeout-ms",
                                  "--frame-timeout-ms",
                                  "-c,",
                                  "flags, which win"};
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

/* ------------------------------------------------------------------ config files */

static char test_dir[TEST_PATH_MAX]; /* made by test_group_setup, emptied and removed after */

static int
test_group_setup(void **state)
{
    /* The defaults follow systemd's directories when set: not from the caller's shell. */
    unsetenv("STATE_DIRECTORY");
    unsetenv("RUNTIME_DIRECTORY");
    snprintf(test_dir, sizeof(test_dir), "/tmp/forq-test-config-XXXXXX");
    return mkdtemp(test_dir) != NULL ? 0 : -1;
}

static int
test_group_teardown(void **state)
{
    DIR *d = opendir(test_dir);
    struct dirent *de;
    char path[2 * TEST_PATH_MAX];

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", test_dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(test_dir);
}

/* Write text to test_dir/name; returns the path (static: valid until the next call). */
static const char *
test_write(const char *name, const char *text)
{
    static char path[2 * TEST_PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* config_init plus config_load_file of text written to a file; path gets the file's name. */
static int
test_load(struct config *cfg, const char *text, char *path, size_t pathlen, char *err,
          size_t errlen)
{
    snprintf(path, pathlen, "%s", test_write("test.conf", text));
    config_init(cfg);
    memset(err, 'E', errlen);
    err[errlen - 1] = '\0';
    return config_load_file(cfg, path, err, errlen);
}

/* The whole of config_print's output (the caller frees it). */
static char *
test_print(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    config_print(cfg, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

static const char test_full_file[] = "# every key, with values that differ from the defaults\n"
                                     "[forqd]\n"
                                     "listen = tcp://127.0.0.1:7001      ; the key may repeat\n"
                                     "listen = unix:///run/forq/forq.sock\n"
                                     "workers = 3\n"
                                     "max_frame = 4M\n"
                                     "max_payload = 512K\n"
                                     "max_result = 2m\n"
                                     "max_queued = 10\n"
                                     "max_queues = 7\n"
                                     "max_inflight = 9\n"
                                     "max_connections = 11\n"
                                     "max_watch_ids = 13\n"
                                     "max_name = 32\n"
                                     "result_ttl = 60\n"
                                     "data = /var/lib/forq\n"
                                     "durability = normal\n"
                                     "max_db_size = 1G\n"
                                     "result_cache = 12\n"
                                     "log_level = debug\n"
                                     "retry_backoff_ms = 250\n"
                                     "retry_backoff_max_ms = 5000\n"
                                     "max_jobs_per_worker = 100\n"
                                     "memory_limit = 64M\n"
                                     "worker_batch = 3\n"
                                     "plugin = /usr/lib/forq/a.so\n"
                                     "plugin = /usr/lib/forq/b.so\n"
                                     "\n"
                                     "[task.resize]\n"
                                     "exec = /usr/bin/convert - -resize 50% png:-\n"
                                     "max_output = 1M\n"
                                     "\n"
                                     "[task.hello]\n"
                                     "exec = /bin/echo 'hello world' \"a b\" c\\ d\n"
                                     "\n"
                                     "[queue.emails]\n"
                                     "limit = 2\n"
                                     "order = lifo\n"
                                     "paused = yes\n"
                                     "[queue.reports]\n"
                                     "paused = off\n";

static void
test_config_file_every_key(void **state)
{
    char err[512], path[2 * TEST_PATH_MAX];
    struct config cfg;

    assert_int_equal(test_load(&cfg, test_full_file, path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.config_file, path);
    assert_int_equal(cfg.nlisten, 2);
    assert_string_equal(cfg.listen[0], "tcp://127.0.0.1:7001");
    assert_string_equal(cfg.listen[1], "unix:///run/forq/forq.sock");
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.max_frame, 4 * MIB);
    assert_int_equal(cfg.max_payload, 512 * KIB);
    assert_int_equal(cfg.max_result, 2 * MIB);
    assert_int_equal(cfg.max_queued, 10);
    assert_int_equal(cfg.max_queues, 7);
    assert_int_equal(cfg.max_inflight, 9);
    assert_int_equal(cfg.max_connections, 11);
    assert_int_equal(cfg.max_watch_ids, 13);
    assert_int_equal(cfg.max_name, 32);
    assert_int_equal(cfg.result_ttl_ms, 60000);
    assert_string_equal(cfg.data_dir, "/var/lib/forq");
    assert_int_equal(cfg.durability, STORE_NORMAL);
    assert_int_equal(cfg.max_db_bytes, 1024 * MIB);
    assert_int_equal(cfg.result_cache, 12);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.retry_backoff_ms, 250);
    assert_int_equal(cfg.retry_backoff_max_ms, 5000);
    assert_int_equal(cfg.max_jobs_per_worker, 100);
    assert_int_equal(cfg.memory_limit, 64 * MIB);
    assert_int_equal(cfg.worker_batch, 3);
    assert_int_equal(cfg.nplugins, 2);
    assert_string_equal(cfg.plugins[0], "/usr/lib/forq/a.so");
    assert_string_equal(cfg.plugins[1], "/usr/lib/forq/b.so");

    assert_int_equal(cfg.ntasks, 2);
    assert_string_equal(cfg.tasks[0].name, "resize");
    assert_int_equal(cfg.tasks[0].argc, 5);
    assert_string_equal(cfg.tasks[0].argv[0], "/usr/bin/convert");
    assert_string_equal(cfg.tasks[0].argv[3], "50%");
    assert_string_equal(cfg.tasks[0].argv[4], "png:-");
    assert_null(cfg.tasks[0].argv[5]);
    assert_int_equal(cfg.tasks[0].max_output, 1 * MIB);
    assert_string_equal(cfg.tasks[1].name, "hello");
    assert_int_equal(cfg.tasks[1].argc, 4);
    assert_string_equal(cfg.tasks[1].argv[1], "hello world");
    assert_string_equal(cfg.tasks[1].argv[2], "a b");
    assert_string_equal(cfg.tasks[1].argv[3], "c d");
    assert_int_equal(cfg.tasks[1].max_output, 0);

    assert_int_equal(cfg.nqueues, 2);
    assert_string_equal(cfg.queues[0].name, "emails");
    assert_int_equal(cfg.queues[0].limit, 2);
    assert_int_equal(cfg.queues[0].lifo, 1);
    assert_int_equal(cfg.queues[0].paused, 1);
    assert_string_equal(cfg.queues[1].name, "reports");
    assert_int_equal(cfg.queues[1].limit, 0);
    assert_int_equal(cfg.queues[1].lifo, 0);
    assert_int_equal(cfg.queues[1].paused, 0);
    config_fini(&cfg);
    assert_null(cfg.config_file);
    assert_null(cfg.tasks);
    assert_null(cfg.queues);
    assert_int_equal(cfg.nplugins, 0);
}

/* Blank lines, comments, indentation, CRLF, a BOM and "key: value" are all fine. */
static void
test_config_file_layout(void **state)
{
    char err[512], path[2 * TEST_PATH_MAX];
    struct config cfg;

    assert_int_equal(test_load(&cfg,
                               "\xEF\xBB\xBF; comment\r\n"
                               "# another\r\n"
                               "\r\n"
                               "  [ forqd ]   ; trailing comment\r\n"
                               "    workers = 5\r\n"
                               "\tmax_queues: 9\r\n"
                               "log_level=warn;not a comment: no blank before it\r\n",
                               path, sizeof(path), err, sizeof(err)),
                     FORQ_ERR_INVALID);
    /* A ';' without a blank before it is part of the value, so this one is refused. */
    assert_non_null(strstr(err, ":7: log_level"));
    config_fini(&cfg);

    assert_int_equal(test_load(&cfg,
                               "\xEF\xBB\xBF; comment\r\n"
                               "# another\r\n"
                               "\r\n"
                               "  [ forqd ]   ; trailing comment\r\n"
                               "    workers = 5\r\n"
                               "\tmax_queues: 9\r\n"
                               "log_level = warn ; a comment\r\n",
                               path, sizeof(path), err, sizeof(err)),
                     0);
    assert_int_equal(cfg.workers, 5);
    assert_int_equal(cfg.max_queues, 9);
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
    config_fini(&cfg);

    /* An empty file is fine, and so is a long exec line. */
    assert_int_equal(test_load(&cfg, "", path, sizeof(path), err, sizeof(err)), 0);
    config_fini(&cfg);
}

struct test_bad_file {
    const char *text;
    int line;          /* the message starts with "PATH:LINE: " */
    const char *names; /* and contains this */
};

/* Each file is refused with "PATH:LINE: " and a message that names what is wrong. */
static void
test_expect_bad_files(const struct test_bad_file *bad, size_t n)
{
    char err[512], path[2 * TEST_PATH_MAX], prefix[2 * TEST_PATH_MAX + 32];
    struct config cfg;

    for (size_t i = 0; i < n; i++) {
        int r = test_load(&cfg, bad[i].text, path, sizeof(path), err, sizeof(err));

        snprintf(prefix, sizeof(prefix), "%s:%d: ", path, bad[i].line);
        if (r != FORQ_ERR_INVALID || strncmp(err, prefix, strlen(prefix)) != 0 ||
            strstr(err, bad[i].names) == NULL)
            fail_msg("case %zu: got %d, message '%s'; wanted line %d and '%s'", i, r, err,
                     bad[i].line, bad[i].names);
        assert_null(strchr(err, '\n'));
        config_fini(&cfg);
    }
}

static void
test_config_file_errors_name_file_and_line(void **state)
{
    static const struct test_bad_file bad[] = {
        {"[forqd]\nworkers = 2\nbogus = 1\n", 3, "unknown key 'bogus' in [forqd]"},
        {"[forqd]\nmax-payload = 1M\n", 2, "unknown key 'max-payload'"},
        {"# hi\n\n[server]\nworkers = 2\n", 3, "unknown section [server]"},
        {"[forqd]\n[tasks.x]\n", 2, "unknown section [tasks.x]"},
        {"[forqd]\nworkers = abc\n", 2, "workers: expected a number in 1..1024, got 'abc'"},
        {"[forqd]\nworkers = 4 cpus\n", 2, "workers: expected a number in 1..1024, got '4 cpus'"},
        {"[forqd]\nworkers =\n", 2, "workers: expected a number"},
        {"[forqd]\n\nmax_queues = 4000\n", 3, "max_queues: expected a number in 1..1920"},
        {"[forqd]\nmax_payload = 1KB\n", 2, "max_payload: expected a size"},
        {"[forqd]\nretry_backoff_ms = 0\n", 2,
         "retry_backoff_ms: expected a number in 1..86400000"},
        {"[forqd]\nretry_backoff_max_ms = 86400001\n", 2, "retry_backoff_max_ms"},
        {"[forqd]\nmax_jobs_per_worker = 4294967297\n", 2, "max_jobs_per_worker"},
        {"[forqd]\nworker_batch = 0\n", 2, "worker_batch: expected a number in 1..16, got '0'"},
        {"[forqd]\nworker_batch = 17\n", 2, "worker_batch: expected a number in 1..16"},
        {"[forqd]\nmemory_limit = 1M\n", 2, "memory_limit: expected 0 (no limit) or a size"},
        {"[forqd]\nmemory_limit = 1X\n", 2, "memory_limit"},
        {"[forqd]\ndurability = always\n", 2, "durability: expected full, normal or off"},
        {"[forqd]\nlog_level = loud\n", 2, "log_level: expected err, warn, info or debug"},
        {"[forqd]\ndata =\n", 2, "data: expected a directory"},
        {"[forqd]\nlisten = tcp://nohostport\n", 2, "listen: expected tcp://HOST:PORT"},
        {"[forqd]\nlisten = unix://relative\n", 2, "listen: expected"},
        {"[forqd]\nplugin = plugins/x.so\n", 2, "plugin: expected an absolute path"},
        {"[forqd]\nworkers = 2\nworkers = 3\n", 3, "workers: given twice (first at line 2)"},
        {"[forqd]\nlog_level = info\n[queue.q]\n[forqd]\n", 4,
         "duplicate section [forqd] (first at line 1)"},
        {"workers = 2\n", 1, "workers: key outside a section; put it under [forqd]"},
        {"; top\n\nlisten = tcp://127.0.0.1:1\n[forqd]\n", 3, "key outside a section"},
        {"[forqd]\n[queue.q]\npaused = yes!\n", 3, "paused: expected true or false"},
        {"[forqd]\n[queue.q]\npaused = truex\n", 3, "paused: expected true or false"},
        {"[forqd]\n[queue.q]\npaused = \n", 3, "paused: expected true or false"},
        {"[queue.q]\nlimit = 1000001\n", 2, "limit: expected a number in 0..1000000"},
        {"[queue.q]\nlimit = -1\n", 2, "limit: expected a number"},
        {"[queue.q]\norder = random\n", 2, "order: expected fifo or lifo, got 'random'"},
        {"[queue.q]\norder = fifo\norder = lifo\n", 3, "order: given twice (first at line 2)"},
        {"[queue.q]\nlimt = 1\n", 2, "unknown key 'limt' in a [queue.NAME] section"},
        {"[queue.q]\n[queue.r]\n[queue.q]\n", 3, "duplicate section [queue.q]"},
        {"[queue.bad name]\n", 1, "expected a queue name of 1..64 characters"},
        {"[queue.]\n", 1, "queue name"},
        {"[task.t]\nmax_output = 1M\n\n[forqd]\n", 1, "[task.t]: missing exec = COMMAND"},
        {"[forqd]\n\n[task.t]\n", 3, "[task.t]: missing exec = COMMAND"},
        {"[task.t]\nexec = /bin/cat\nexecute = x\n", 3, "unknown key 'execute' in a [task.NAME]"},
        {"[task.t]\nexec = /bin/cat\nmax_output = 300M\n", 3, "max_output: expected a size"},
        {"[task.t]\nexec = /bin/cat\nexec = /bin/cat\n", 3, "exec: given twice"},
        {"[task.t]\nexec = /bin/cat\n[task.u]\nexec = /bin/cat\n[task.t]\n", 5,
         "duplicate section [task.t]"},
        {"[task.a/b]\nexec = /bin/cat\n", 1, "expected a task name"},
        {"[task.x]\nexec = /bin/cat\n[queue.x]\n[bogus]\n", 4, "unknown section [bogus]"},
        {"[forqd]\nworkers 2\n", 2, "syntax error"},
        {"[forqd\nworkers = 2\n", 1, "missing ']'"},
        {"[forqd] workers = 2\n", 1, "unexpected text after the section header"},
    };
    test_expect_bad_files(bad, sizeof(bad) / sizeof(bad[0]));
}

/* These reach exec_split (daemon/exec.c) for their message. */
static void
test_config_file_exec_errors(void **state)
{
    static const struct test_bad_file bad[] = {
        {"[task.t]\nexec = /bin/echo 'oops\n", 2, "exec: task 't': unterminated"},
        {"[task.t]\nexec = \n", 2, "exec: task 't'"},
        {"[task.t]\nexec = ;only a comment\n", 2, "exec: task 't'"},
    };
    test_expect_bad_files(bad, sizeof(bad) / sizeof(bad[0]));
}

static void
test_config_file_line_too_long(void **state)
{
    char err[512], path[2 * TEST_PATH_MAX], text[10000];
    struct config cfg;
    size_t n;

    n = (size_t)snprintf(text, sizeof(text), "[forqd]\n; fine\n[task.long]\nexec = /bin/echo");
    /* 4000 bytes of arguments fit on one line. */
    while (n < 4000)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " word");
    snprintf(text + n, sizeof(text) - n, "\n");
    assert_int_equal(test_load(&cfg, text, path, sizeof(path), err, sizeof(err)), 0);
    assert_true(cfg.tasks[0].argc > 700);
    config_fini(&cfg);
    /* 8000 do not; the line is named rather than cut in two. */
    while (n < 8000)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " word");
    snprintf(text + n, sizeof(text) - n, "\n");
    assert_int_equal(test_load(&cfg, text, path, sizeof(path), err, sizeof(err)), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, ":4: line too long"));
    config_fini(&cfg);
}

static void
test_config_file_flags_win(void **state)
{
    const char *file = test_write("flags.conf", "[forqd]\n"
                                                "listen = tcp://127.0.0.1:7001\n"
                                                "listen = tcp://127.0.0.1:7002\n"
                                                "workers = 3\n"
                                                "max_queues = 7\n"
                                                "log_level = debug\n"
                                                "plugin = /a.so\n"
                                                "plugin = /b.so\n"
                                                "memory_limit = 32M\n");
    char f[2 * TEST_PATH_MAX], arg[2 * TEST_PATH_MAX + 16];
    struct config cfg;
    char err[512];

    snprintf(f, sizeof(f), "%s", file);
    /* No flags: the file's values, and its path recorded. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, NULL), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.config_file, f);
    assert_int_equal(cfg.nlisten, 2);
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.nplugins, 2);
    assert_int_equal(cfg.memory_limit, 32 * MIB);
    config_fini(&cfg);

    /* Flags win whatever their place, and one --listen replaces the file's list. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--workers", "5", "--listen",
                                "tcp://127.0.0.1:9", "--config", f, "--plugin", "/c.so",
                                "--memory-limit", "0", NULL),
                     0);
    assert_int_equal(cfg.workers, 5);
    assert_int_equal(cfg.max_queues, 7);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0], "tcp://127.0.0.1:9");
    assert_int_equal(cfg.nplugins, 1);
    assert_string_equal(cfg.plugins[0], "/c.so");
    assert_int_equal(cfg.memory_limit, 0);
    config_fini(&cfg);

    /* --config=FILE, and several --listen flags make the new list. */
    snprintf(arg, sizeof(arg), "--config=%s", f);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), arg, "--listen", "tcp://127.0.0.1:9",
                                "--listen", "tcp://127.0.0.1:10", NULL),
                     0);
    assert_int_equal(cfg.nlisten, 2);
    assert_string_equal(cfg.listen[1], "tcp://127.0.0.1:10");
    assert_int_equal(cfg.workers, 3);
    config_fini(&cfg);

    /* A flag is checked like the key, and a file error is reported before it. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, "--workers", "0", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--workers: expected a number in 1..1024, got '0'"));
    config_fini(&cfg);
    test_write("broken.conf", "[forqd]\nworkers = 0\n");
    snprintf(f, sizeof(f), "%s/broken.conf", test_dir);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, "--workers", "2", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "broken.conf:2: workers: expected a number in 1..1024, got '0'"));
    config_fini(&cfg);
    /* --help still wins over a broken file. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, "--help", NULL), 0);
    assert_int_equal(cfg.show_help, 1);
    config_fini(&cfg);
}

static void
test_config_file_missing(void **state)
{
    char f[2 * TEST_PATH_MAX + 16], expect[3 * TEST_PATH_MAX];
    struct config cfg;
    char err[512];

    snprintf(f, sizeof(f), "%s/no-such.conf", test_dir);
    snprintf(expect, sizeof(expect), "%s: cannot open: ", f);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, NULL), FORQ_ERR_INVALID);
    assert_int_equal(strncmp(err, expect, strlen(expect)), 0);
    assert_null(cfg.config_file);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--config", f, NULL), FORQ_ERR_INVALID);
    assert_int_equal(strncmp(err, expect, strlen(expect)), 0);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--config", NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--config: needs a value"));
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "needs a value"));
    config_fini(&cfg);
    /* A directory opens but cannot be read. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", test_dir, NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "cannot read"));
    config_fini(&cfg);
    /* config_load_file says the same. */
    config_init(&cfg);
    assert_int_equal(config_load_file(&cfg, f, err, sizeof(err)), FORQ_ERR_INVALID);
    assert_int_equal(strncmp(err, expect, strlen(expect)), 0);
    config_fini(&cfg);
}

static void
test_config_new_flags(void **state)
{
    struct config cfg;
    char err[512];

    config_init(&cfg);
    assert_int_equal(cfg.retry_backoff_ms, 1000);
    assert_int_equal(cfg.retry_backoff_max_ms, 300000);
    assert_int_equal(cfg.max_jobs_per_worker, 0);
    assert_int_equal(cfg.memory_limit, 0);
    assert_int_equal(cfg.worker_batch, 8);
    assert_int_equal(cfg.check_config, 0);
    config_fini(&cfg);

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--retry-backoff-ms", "10",
                                "--retry-backoff-max-ms=10", "--max-jobs-per-worker", "4294967296",
                                "--memory-limit", "16M", "--worker-batch=1", "--check-config",
                                "--plugin", "/x.so",
                                "--plugin", "/y.so", NULL),
                     0);
    assert_int_equal(cfg.retry_backoff_ms, 10);
    assert_int_equal(cfg.retry_backoff_max_ms, 10);
    assert_int_equal(cfg.max_jobs_per_worker, (uint64_t)1 << 32);
    assert_int_equal(cfg.memory_limit, 16 * MIB);
    assert_int_equal(cfg.worker_batch, 1);
    assert_int_equal(cfg.check_config, 1);
    assert_int_equal(cfg.nplugins, 2);
    assert_string_equal(cfg.plugins[1], "/y.so");
    config_fini(&cfg);

    static const struct test_bad bad[] = {
        {{"--retry-backoff-ms", "0"}, "--retry-backoff-ms: expected a number in 1..86400000"},
        {{"--retry-backoff-ms", "2000"}, "--retry-backoff-max-ms"}, /* ok alone, not with max */
        {{"--retry-backoff-max-ms", "999"}, "must be at least --retry-backoff-ms (1000)"},
        {{"--max-jobs-per-worker", "1k"}, "--max-jobs-per-worker: expected a number"},
        {{"--memory-limit", "15M"}, "--memory-limit: expected 0 (no limit) or a size"},
        {{"--memory-limit", "1T"}, "--memory-limit"},
        {{"--plugin", "x.so"}, "--plugin: expected an absolute path"},
        {{"--plugin"}, "--plugin: needs a value"},
        {{"--check-config=1"}, "--check-config: takes no value"},
        {{"--help=1"}, "--help: takes no value"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const *a = bad[i].args;
        int r;

        if (strcmp(a[0], "--retry-backoff-ms") == 0 && strcmp(a[1], "2000") == 0)
            r = test_parse(&cfg, err, sizeof(err), a[0], a[1], "--retry-backoff-max-ms", "1999",
                           NULL);
        else
            r = test_parse(&cfg, err, sizeof(err), a[0], a[1], NULL);
        if (r != FORQ_ERR_INVALID || strstr(err, bad[i].names) == NULL)
            fail_msg("case %zu (%s): got %d, message '%s'", i, a[0], r, err);
        config_fini(&cfg);
    }
}

static void
test_config_plugin_limit(void **state)
{
    static char paths[CONFIG_PLUGIN_MAX + 1][32];
    char *argv[2 * (CONFIG_PLUGIN_MAX + 1) + 2];
    struct config cfg;
    char err[256];
    int argc = 0;

    argv[argc++] = "forqd";
    for (int i = 0; i <= CONFIG_PLUGIN_MAX; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/p%d.so", i);
        argv[argc++] = "--plugin";
        argv[argc++] = paths[i];
    }
    argv[argc] = NULL;
    config_init(&cfg);
    assert_int_equal(config_parse_args(&cfg, argc - 2, argv, err, sizeof(err)), 0);
    assert_int_equal(cfg.nplugins, CONFIG_PLUGIN_MAX);
    config_fini(&cfg);
    config_init(&cfg);
    assert_int_equal(config_parse_args(&cfg, argc, argv, err, sizeof(err)), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "--plugin: at most"));
    config_fini(&cfg);
}

/* --task, --task-max-output and --queue-*; --task needs exec_split. */
static void
test_config_task_and_queue_flags(void **state)
{
    const char *file = test_write("tq.conf", "[task.resize]\n"
                                             "exec = /usr/bin/convert - png:-\n"
                                             "max_output = 512K\n"
                                             "[task.keep]\n"
                                             "exec = /bin/cat\n"
                                             "[queue.emails]\n"
                                             "limit = 2\n"
                                             "order = lifo\n");
    char f[2 * TEST_PATH_MAX];
    struct config cfg;
    char err[512];

    snprintf(f, sizeof(f), "%s", file);
    /* --task-max-output may come before the --task it refers to. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--task-max-output", "up=64K", "--task",
                                "up=tr a-z 'A-Z'", "--queue-limit", "fast=7", "--queue-paused",
                                "fast", "--queue-order", "slow=lifo", NULL),
                     0);
    assert_int_equal(cfg.ntasks, 1);
    assert_string_equal(cfg.tasks[0].name, "up");
    assert_int_equal(cfg.tasks[0].argc, 3);
    assert_string_equal(cfg.tasks[0].argv[0], "tr");
    assert_string_equal(cfg.tasks[0].argv[2], "A-Z");
    assert_int_equal(cfg.tasks[0].max_output, 64 * KIB);
    assert_int_equal(cfg.nqueues, 2);
    assert_string_equal(cfg.queues[0].name, "fast");
    assert_int_equal(cfg.queues[0].limit, 7);
    assert_int_equal(cfg.queues[0].paused, 1);
    assert_int_equal(cfg.queues[0].lifo, 0);
    assert_string_equal(cfg.queues[1].name, "slow");
    assert_int_equal(cfg.queues[1].lifo, 1);
    config_fini(&cfg);

    /* A --task replaces the file's task of that name, max_output included. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, "--task", "resize=/bin/cat -",
                                "--queue-paused", "emails=yes", "--queue-limit", "emails=0",
                                "--task-max-output", "keep=1K", NULL),
                     0);
    assert_int_equal(cfg.ntasks, 2);
    assert_string_equal(cfg.tasks[0].name, "keep");
    assert_int_equal(cfg.tasks[0].max_output, 1 * KIB);
    assert_string_equal(cfg.tasks[1].name, "resize");
    assert_string_equal(cfg.tasks[1].argv[0], "/bin/cat");
    assert_int_equal(cfg.tasks[1].argc, 2);
    assert_int_equal(cfg.tasks[1].max_output, 0);
    assert_int_equal(cfg.nqueues, 1);
    assert_int_equal(cfg.queues[0].limit, 0);
    assert_int_equal(cfg.queues[0].lifo, 1);
    assert_int_equal(cfg.queues[0].paused, 1);
    config_fini(&cfg);

    /* --task-max-output applies to a file task too. */
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--task-max-output", "resize=2K", "-c", f, NULL), 0);
    assert_int_equal(cfg.tasks[0].max_output, 2 * KIB);
    config_fini(&cfg);

    static const struct test_bad bad[] = {
        {{"--task", "up"}, "--task: expected NAME=COMMAND, got 'up'"},
        {{"--task", "bad name=/bin/cat"}, "--task: expected NAME=COMMAND with NAME"},
        {{"--task", "=/bin/cat"}, "--task"},
        {{"--task", "up="}, "--task: task 'up'"},
        {{"--task", "up=/bin/echo 'x"}, "--task: task 'up': unterminated"},
        {{"--task", "up=/bin/cat", "--task", "up=/bin/cat"}, "task 'up' is declared twice"},
        {{"--task-max-output", "up=1K"}, "--task-max-output: no task 'up'"},
        {{"--task", "up=/bin/cat", "--task-max-output", "up=1T"},
         "--task-max-output: expected a size"},
        {{"--task", "up=/bin/cat", "--task-max-output", "up=2M"}, "must not exceed --max-result"},
        {{"--queue-limit", "q"}, "--queue-limit: expected NAME=K, got 'q'"},
        {{"--queue-limit", "q=1000001"}, "--queue-limit: expected a number in 0..1000000"},
        {{"--queue-limit", "q q=1"}, "--queue-limit"},
        {{"--queue-order", "q=random"}, "--queue-order: expected fifo or lifo, got 'random'"},
        {{"--queue-paused", "q=maybe"}, "--queue-paused: expected true or false"},
        {{"--queue-paused", "a/b"}, "--queue-paused"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const *a = bad[i].args;
        int r = test_parse(&cfg, err, sizeof(err), a[0], a[1], a[2], a[3], NULL);

        if (r != FORQ_ERR_INVALID || strstr(err, bad[i].names) == NULL)
            fail_msg("case %zu (%s %s): got %d, message '%s'", i, a[0], a[1], r, err);
        assert_null(strchr(err, '\n'));
        config_fini(&cfg);
    }
}

/* --check-config's printout, read back, prints the same (but for its first line). */
static void
test_config_print_round_trip(void **state)
{
    const char *file = test_write("rt.conf", test_full_file);
    char f[2 * TEST_PATH_MAX], printed[2 * TEST_PATH_MAX];
    char *text1, *text2;
    struct config cfg;
    char err[512];

    snprintf(f, sizeof(f), "%s", file);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, "--task",
                                "odd=/bin/printf '%s x;y\\n' \"it's\" '' a\\\"b ' ;' '\t'",
                                "--queue-order", "q=lifo", "--max-db-size", "1000", "--max-frame",
                                "3073K", NULL),
                     0);
    assert_int_equal(cfg.ntasks, 3);
    assert_int_equal(cfg.tasks[2].argc, 7);
    assert_string_equal(cfg.tasks[2].argv[1], "%s x;y\\n");
    assert_string_equal(cfg.tasks[2].argv[2], "it's");
    assert_string_equal(cfg.tasks[2].argv[3], "");
    assert_string_equal(cfg.tasks[2].argv[4], "a\"b");
    assert_string_equal(cfg.tasks[2].argv[5], " ;");
    assert_string_equal(cfg.tasks[2].argv[6], "\t");
    text1 = test_print(&cfg);
    config_fini(&cfg);
    assert_non_null(strstr(text1, f));
    assert_non_null(strstr(text1, "\nmax_frame = 3073K\n"));
    assert_non_null(strstr(text1, "\nmax_db_size = 1000\n"));
    assert_non_null(strstr(text1, "\nretry_backoff_max_ms = 5000\n"));
    assert_non_null(strstr(text1, "\n[queue.q]\n"));

    snprintf(printed, sizeof(printed), "%s", test_write("printed.conf", text1));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", printed, NULL), 0);
    text2 = test_print(&cfg);
    assert_int_equal(cfg.ntasks, 3);
    assert_string_equal(cfg.tasks[2].argv[5], " ;");
    config_fini(&cfg);
    assert_string_equal(strchr(text1, '\n'), strchr(text2, '\n'));
    free(text1);
    free(text2);

    /* The defaults print, and read back, too; the file named is "none". */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), NULL), 0);
    text1 = test_print(&cfg);
    config_fini(&cfg);
    assert_non_null(strstr(text1, "none"));
    assert_non_null(strstr(text1, "\nmemory_limit = 0\n"));
    assert_non_null(strstr(text1, "\nmax_watch_ids = 1000000\n"));
    assert_non_null(strstr(text1, "\nmax_name = 64\n"));
    snprintf(printed, sizeof(printed), "%s", test_write("printed.conf", text1));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", printed, NULL), 0);
    text2 = test_print(&cfg);
    config_fini(&cfg);
    assert_string_equal(strchr(text1, '\n'), strchr(text2, '\n'));
    free(text1);
    free(text2);
}

/*
 * The auth token: from the file (auth_token) or a file it names
 * (auth_token_file, or its flag), never from a flag; a token file others
 * can read is refused; the token never shows in config_print. Peer
 * allow-lists take names and numbers.
 */
static void
test_config_auth_and_peers(void **state)
{
    char path[2 * TEST_PATH_MAX], flag[2 * TEST_PATH_MAX + 32], err[512];
    struct config cfg;
    char *text;

    (void)state;
    /* Never on the command line, whichever spelling. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--auth-token=x", NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "not taken on the command line"));
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--auth-token", "x", NULL),
                     FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "not taken on the command line"));
    config_fini(&cfg);

    /* In the config file: taken, and printed only as "set". */
    snprintf(path, sizeof(path), "%s",
             test_write("auth.conf", "[forqd]\nauth_token = pa55 word\nallow_uids = root, 4242\n"
                                     "allow_gids = 0\nidle_timeout_ms = 60000\n"));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", path, NULL), 0);
    assert_string_equal(cfg.auth_token, "pa55 word");
    assert_int_equal(cfg.nallow_uids, 2);
    assert_int_equal(cfg.allow_uids[0], 0);
    assert_int_equal(cfg.allow_uids[1], 4242);
    assert_int_equal(cfg.nallow_gids, 1);
    assert_int_equal(cfg.idle_timeout_ms, 60000);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.frame_timeout_ms, 30000);
    text = test_print(&cfg);
    assert_null(strstr(text, "pa55"));
    assert_non_null(strstr(text, "; auth_token = (set, not shown)\n"));
    assert_non_null(strstr(text, "\nallow_uids = 0, 4242\n"));
    free(text);
    config_fini(&cfg);

    /* A token file: one line, the newline dropped; mode 0600 is fine, 0604 is not. */
    snprintf(path, sizeof(path), "%s", test_write("token", "from-a-file\r\n"));
    snprintf(flag, sizeof(flag), "--auth-token-file=%s", path);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), flag, NULL), 0);
    assert_string_equal(cfg.auth_token, "from-a-file");
    text = test_print(&cfg);
    assert_null(strstr(text, "from-a-file"));
    free(text);
    config_fini(&cfg);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), flag, NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "others may read or write it (mode 0604)"));
    config_fini(&cfg);
    assert_int_equal(chmod(path, 0600), 0);

    /* Bad tokens and lists: each names the setting. */
    {
        static const struct {
            const char *text, *want;
        } bad[] = {
            {"[forqd]\nauth_token =\n", "auth_token: expected 1..256 bytes"},
            {"[forqd]\nauth_token_file = relative\n", "expected an absolute path"},
            {"[forqd]\nauth_token_file = /nonexistent/forq-token\n", "No such file"},
            {"[forqd]\nauth_token_file = /tmp\n", "not a regular file"},
            {"[forqd]\nallow_uids = nosuchuser-forq\n", "allow_uids: no user 'nosuchuser-forq'"},
            {"[forqd]\nallow_gids = 1, nosuchgroup-forq\n", "no group 'nosuchgroup-forq'"},
            {"[forqd]\nidle_timeout_ms = -1\n", "idle_timeout_ms"},
            {"[forqd]\nhandshake_timeout_ms = 0\n", "handshake_timeout_ms"},
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(path, sizeof(path), "%s", test_write("bad.conf", bad[i].text));
            assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", path, NULL),
                             FORQ_ERR_INVALID);
            if (strstr(err, bad[i].want) == NULL)
                fail_msg("'%s' not in '%s'", bad[i].want, err);
            config_fini(&cfg);
        }
    }
    /* A token file of two lines, and a token one byte too long. */
    snprintf(path, sizeof(path), "%s", test_write("token2", "one\ntwo\n"));
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(flag, sizeof(flag), "--auth-token-file=%s", path);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), flag, NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "expected one line of 1..256 bytes"));
    config_fini(&cfg);
    {
        char big[400] = "[forqd]\nauth_token = ";

        memset(big + strlen(big), 'x', 257);
        strcpy(big + strlen("[forqd]\nauth_token = ") + 257, "\n");
        snprintf(path, sizeof(path), "%s", test_write("long.conf", big));
        assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", path, NULL), FORQ_ERR_INVALID);
        assert_non_null(strstr(err, "auth_token: expected 1..256 bytes"));
        assert_null(strstr(err, "xxxx")); /* the value is not shown */
        config_fini(&cfg);
    }
    snprintf(path, sizeof(path), "%s", test_write("token", "from-a-file\r\n"));
    snprintf(flag, sizeof(flag), "--auth-token-file=%s", path);
    /* Both the token and a file: which would win is a guess, so neither. */
    snprintf(path, sizeof(path), "%s", test_write("both.conf", "[forqd]\nauth_token = a\n"));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", path, flag, NULL), FORQ_ERR_INVALID);
    assert_non_null(strstr(err, "both set"));
    config_fini(&cfg);
    /* A list longer than CONFIG_IDS_MAX. */
    {
        char list[CONFIG_IDS_MAX * 8 + 64] = "--allow-uids=";

        for (int i = 0; i <= CONFIG_IDS_MAX; i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%d,", 1000 + i);
        assert_true(strlen(list) < 128 * 8);
        config_init(&cfg);
        {
            char *argv[] = {"forqd", list, NULL};

            assert_int_equal(config_parse_args(&cfg, 2, argv, err, sizeof(err)), FORQ_ERR_INVALID);
        }
        assert_non_null(strstr(err, "at most 64 entries"));
        config_fini(&cfg);
    }
}

/* The source tree's systemd/forqd.conf, found from this file's (absolute) path. */
static void
test_example_path(char *path, size_t len)
{
    const char *me = __FILE__, *tail = strstr(me, "tests/unit/daemon/test_config.c");

    assert_non_null(tail);
    assert_true(me[0] == '/');
    snprintf(path, len, "%.*ssystemd/forqd.conf", (int)(tail - me), me);
}

static void
test_config_example_file_loads(void **state)
{
    static const char *keys[] = {"listen",
                                 "workers",
                                 "max_frame",
                                 "max_payload",
                                 "max_result",
                                 "max_queued",
                                 "max_queues",
                                 "max_inflight",
                                 "max_connections",
                                 "max_watch_ids",
                                 "max_name",
                                 "result_ttl",
                                 "data",
                                 "durability",
                                 "max_db_size",
                                 "result_cache",
                                 "log_level",
                                 "retry_backoff_ms",
                                 "retry_backoff_max_ms",
                                 "max_jobs_per_worker",
                                 "memory_limit",
                                 "worker_batch",
                                 "drain_timeout_ms",
                                 "metrics_listen",
                                 "auth_token_file",
                                 "auth_token",
                                 "allow_uids",
                                 "allow_gids",
                                 "handshake_timeout_ms",
                                 "idle_timeout_ms",
                                 "frame_timeout_ms",
                                 "plugin",
                                 "[task.",
                                 "exec",
                                 "max_output",
                                 "[queue.",
                                 "limit",
                                 "order",
                                 "paused"};
    char path[1024], line[1024], err[512];
    char *text = NULL;
    size_t len = 0;
    struct config cfg;
    FILE *in, *out;

    test_example_path(path, sizeof(path));
    config_init(&cfg);
    if (config_load_file(&cfg, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", path, NULL), 0);
    /* Its values are the defaults. */
    assert_int_equal(cfg.max_frame, 1 * MIB + 64 * KIB);
    assert_int_equal(cfg.retry_backoff_max_ms, 300000);
    assert_int_equal(cfg.nplugins, 0);
    assert_int_equal(cfg.drain_timeout_ms, 30000);
    /* It sets no address or directory: the defaults (and systemd's) stand. */
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0], CONFIG_DEFAULT_LISTEN);
    assert_string_equal(cfg.data_dir, CONFIG_DEFAULT_DATA);
    config_fini(&cfg);

    /*
     * Every key is shown, and the settings left out (";key = ...") are valid
     * too: remove the ';' of each and load the result (exec needs exec_split).
     */
    assert_non_null(in = fopen(path, "r"));
    assert_non_null(out = open_memstream(&text, &len));
    while (fgets(line, sizeof(line), in) != NULL)
        fputs(line[0] == ';' && line[1] != ' ' ? line + 1 : line, out);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char want[64];

        snprintf(want, sizeof(want), "\n%s", keys[i]);
        if (strstr(text, want) == NULL)
            fail_msg("the example does not show '%s'", keys[i]);
    }
    config_init(&cfg);
    if (config_load_file(&cfg, test_write("example.conf", text), err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg.nplugins, 1);
    assert_int_equal(cfg.nlisten, 2);
    assert_int_equal(cfg.ntasks, 1);
    assert_int_equal(cfg.nqueues, 1);
    config_fini(&cfg);
    free(text);
}

/* Issue 6: drain_timeout_ms, metrics_listen, and the defaults under systemd. */
static void
test_config_service_settings(void **state)
{
    struct config cfg;
    char err[512];

    (void)state;
    config_init(&cfg);
    assert_int_equal(cfg.drain_timeout_ms, 30000);
    assert_null(cfg.metrics_listen);
    config_fini(&cfg);

    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--drain-timeout-ms=0", "--metrics-listen",
                                "tcp://127.0.0.1:0", NULL),
                     0);
    assert_int_equal(cfg.drain_timeout_ms, 0);
    assert_string_equal(cfg.metrics_listen, "tcp://127.0.0.1:0");
    config_fini(&cfg);
    /* "off" undoes an earlier value (a file's, say). */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--metrics-listen=tcp://[::1]:9340",
                                "--metrics-listen=off", NULL),
                     0);
    assert_null(cfg.metrics_listen);
    config_fini(&cfg);

    static const struct test_bad bad[] = {
        {{"--metrics-listen=unix:///tmp/m.sock"},
         "--metrics-listen: expected tcp://HOST:PORT or off"},
        {{"--metrics-listen=9340"}, "--metrics-listen: expected tcp://HOST:PORT or off"},
        {{"--drain-timeout-ms=-1"}, "--drain-timeout-ms: expected a number in 0..86400000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = test_parse(&cfg, err, sizeof(err), bad[i].args[0], NULL);

        if (r != FORQ_ERR_INVALID || strstr(err, bad[i].names) == NULL)
            fail_msg("case %zu (%s): got %d, message '%s'", i, bad[i].args[0], r, err);
        config_fini(&cfg);
    }
}

static void
test_config_systemd_directories(void **state)
{
    struct config cfg;
    char err[512];

    (void)state;
    setenv("STATE_DIRECTORY", "/var/lib/forq:/var/lib/other", 1);
    setenv("RUNTIME_DIRECTORY", "/run/forq", 1);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), NULL), 0);
    assert_string_equal(cfg.data_dir, "/var/lib/forq");
    assert_int_equal(cfg.nlisten, 2);
    assert_string_equal(cfg.listen[0], CONFIG_DEFAULT_LISTEN);
    assert_string_equal(cfg.listen[1], "unix:///run/forq/forq.sock");
    config_fini(&cfg);

    /* What the operator sets wins over what systemd suggests. */
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--data=/srv/q", "--listen=tcp://127.0.0.1:1", NULL), 0);
    assert_string_equal(cfg.data_dir, "/srv/q");
    assert_int_equal(cfg.nlisten, 1);
    config_fini(&cfg);

    /* Not absolute: not a directory systemd made; ignored. */
    setenv("STATE_DIRECTORY", "relative", 1);
    setenv("RUNTIME_DIRECTORY", "", 1);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), NULL), 0);
    assert_string_equal(cfg.data_dir, CONFIG_DEFAULT_DATA);
    assert_int_equal(cfg.nlisten, 1);
    config_fini(&cfg);
    unsetenv("STATE_DIRECTORY");
    unsetenv("RUNTIME_DIRECTORY");
}

static void
test_config_tasks_equal(void **state)
{
    struct config a, b;
    char err[512];

    (void)state;
    assert_int_equal(test_parse(&a, err, sizeof(err), "--task=t=/bin/echo 1", "--plugin=/a.so",
                                "--plugin=/b.so", NULL),
                     0);
    assert_int_equal(test_parse(&b, err, sizeof(err), "--task=t=/bin/echo 1", "--plugin=/a.so",
                                "--plugin=/b.so", "--workers=3", NULL),
                     0);
    assert_true(config_tasks_equal(&a, &b)); /* other settings do not matter */
    config_fini(&b);
    assert_int_equal(test_parse(&b, err, sizeof(err), "--task=t=/bin/echo 2", "--plugin=/a.so",
                                "--plugin=/b.so", NULL),
                     0);
    assert_false(config_tasks_equal(&a, &b)); /* an argument */
    config_fini(&b);
    assert_int_equal(test_parse(&b, err, sizeof(err), "--task=t=/bin/echo 1", "--plugin=/b.so",
                                "--plugin=/a.so", NULL),
                     0);
    assert_false(config_tasks_equal(&a, &b)); /* plugin order decides name clashes */
    config_fini(&b);
    assert_int_equal(test_parse(&b, err, sizeof(err), "--task=t=/bin/echo 1",
                                "--task-max-output=t=1K", "--plugin=/a.so", "--plugin=/b.so", NULL),
                     0);
    assert_false(config_tasks_equal(&a, &b)); /* max_output */
    config_fini(&b);
    config_fini(&a);
}

/*
 * max_watch_ids and max_name: flags and keys, their bounds, and the names
 * of the tasks and queues the operator declares checked against max_name
 * wherever it is set (before or after the section, in the file or as a flag).
 */
static void
test_config_watch_ids_and_max_name(void **state)
{
    char f[2 * TEST_PATH_MAX], flag[128], err[512];
    struct config cfg;

    (void)state;
    /* The bounds themselves are accepted. */
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--max-watch-ids", "1", "--max-name", "1", NULL), 0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.max_watch_ids, 1);
    assert_int_equal(cfg.max_name, 1);
    config_fini(&cfg);
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--max-watch-ids=4294967296", "--max-name=64", NULL), 0);
    assert_int_equal(cfg.max_watch_ids, (size_t)1 << 32);
    assert_int_equal(cfg.max_name, 64);
    config_fini(&cfg);

    /* One past each bound, and suffixes: refused with the flag, the range and the value. */
    static const struct test_bad bad[] = {
        {{"--max-watch-ids", "0"}, "--max-watch-ids: expected a number in 1..4294967296, got '0'"},
        {{"--max-watch-ids", "4294967297"},
         "--max-watch-ids: expected a number in 1..4294967296, got '4294967297'"},
        {{"--max-watch-ids", "1K"}, "--max-watch-ids: expected a number in 1..4294967296"},
        {{"--max-watch-ids"}, "--max-watch-ids: needs a value"},
        {{"--max-name", "0"}, "--max-name: expected a number in 1..64, got '0'"},
        {{"--max-name", "65"}, "--max-name: expected a number in 1..64, got '65'"},
        {{"--max-name", "-1"}, "--max-name: expected a number in 1..64, got '-1'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const *a = bad[i].args;
        int r = test_parse(&cfg, err, sizeof(err), a[0], a[1], NULL);

        if (r != FORQ_ERR_INVALID || strstr(err, bad[i].names) == NULL)
            fail_msg("case %zu (%s): got %d, message '%s'", i, a[0], r, err);
        config_fini(&cfg);
    }
    static const struct test_bad_file bad_files[] = {
        {"[forqd]\nmax_watch_ids = 0\n", 2,
         "max_watch_ids: expected a number in 1..4294967296, got '0'"},
        {"[forqd]\nmax_name = 65\n", 2, "max_name: expected a number in 1..64, got '65'"},
        {"[forqd]\nmax_name = 8\nmax_name = 9\n", 3, "max_name: given twice (first at line 2)"},
    };
    test_expect_bad_files(bad_files, sizeof(bad_files) / sizeof(bad_files[0]));

    /* A task name of exactly max_name characters is fine, one more is not. */
    snprintf(f, sizeof(f), "%s",
             test_write("names.conf", "[forqd]\n"
                                      "max_name = 8\n"
                                      "[task.abcdefgh]\n"
                                      "exec = /bin/cat\n"
                                      "[queue.12345678]\n"));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, NULL), 0);
    assert_int_equal(cfg.max_name, 8);
    assert_string_equal(cfg.tasks[0].name, "abcdefgh");
    config_fini(&cfg);
    /* The flag wins over the file, and the file's task is checked against it. */
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, "--max-name", "7", NULL),
                     FORQ_ERR_INVALID);
    assert_string_equal(err, "task 'abcdefgh': the name has 8 characters, more than max_name (7)");
    config_fini(&cfg);
    /* max_name after the section it limits still applies to it. */
    snprintf(f, sizeof(f), "%s",
             test_write("names.conf", "[task.abcdefghi]\n"
                                      "exec = /bin/cat\n"
                                      "[forqd]\n"
                                      "max_name = 8\n"));
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "-c", f, NULL), FORQ_ERR_INVALID);
    assert_string_equal(err, "task 'abcdefghi': the name has 9 characters, more than max_name (8)");
    config_fini(&cfg);
    /* A task or queue declared by a flag, too. */
    assert_int_equal(
        test_parse(&cfg, err, sizeof(err), "--max-name=3", "--task=four=/bin/cat", NULL),
        FORQ_ERR_INVALID);
    assert_string_equal(err, "task 'four': the name has 4 characters, more than max_name (3)");
    config_fini(&cfg);
    assert_int_equal(test_parse(&cfg, err, sizeof(err), "--max-name=3", "--task=two=/bin/cat",
                                "--queue-limit=four=2", NULL),
                     FORQ_ERR_INVALID);
    assert_string_equal(err, "queue 'four': the name has 4 characters, more than max_name (3)");
    config_fini(&cfg);
    /* The default allows what the protocol does: 64 characters. */
    snprintf(flag, sizeof(flag), "--task=%.64s=/bin/cat",
             "0123456789012345678901234567890123456789012345678901234567890123");
    assert_int_equal(test_parse(&cfg, err, sizeof(err), flag, NULL), 0);
    assert_int_equal(strlen(cfg.tasks[0].name), 64);
    config_fini(&cfg);
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
        cmocka_unit_test(test_config_file_every_key),
        cmocka_unit_test(test_config_file_layout),
        cmocka_unit_test(test_config_file_errors_name_file_and_line),
        cmocka_unit_test(test_config_file_exec_errors),
        cmocka_unit_test(test_config_file_line_too_long),
        cmocka_unit_test(test_config_file_flags_win),
        cmocka_unit_test(test_config_file_missing),
        cmocka_unit_test(test_config_new_flags),
        cmocka_unit_test(test_config_plugin_limit),
        cmocka_unit_test(test_config_task_and_queue_flags),
        cmocka_unit_test(test_config_print_round_trip),
        cmocka_unit_test(test_config_auth_and_peers),
        cmocka_unit_test(test_config_example_file_loads),
        cmocka_unit_test(test_config_service_settings),
        cmocka_unit_test(test_config_systemd_directories),
        cmocka_unit_test(test_config_tasks_equal),
        cmocka_unit_test(test_config_watch_ids_and_max_name),
    };

    return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
