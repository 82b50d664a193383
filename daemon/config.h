/*
 * config.h — forqd's settings: defaults, the INI file, command-line flags,
 * validation.
 *
 * Every setting has a safe default. config_parse_args reads the config file
 * (-c FILE, else /etc/forq/forqd.conf when it exists) and then applies the
 * flags on top (flags win), checking each value, so a bad setting is reported
 * with its file:line or its flag before anything starts. Every key of the
 * file is also a flag: key `max_payload` is `--max-payload`.
 * Main thread, start-up only.
 */
#ifndef FORQ_CONFIG_H
#define FORQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_LISTEN "tcp://127.0.0.1:7340"
#define CONFIG_LISTEN_MAX     16
#define CONFIG_DEFAULT_DATA   "./forq-data"
#define CONFIG_DEFAULT_FILE   "/etc/forq/forqd.conf"
#define CONFIG_PLUGIN_MAX     32
#define CONFIG_IDS_MAX        64 /* uids, and gids, admitted on unix sockets */

/* An exec task: section [task.NAME] with `exec = argv...` (flag --task NAME=COMMAND). */
struct config_task {
    char *name;  /* owned; a valid task name */
    char **argv; /* owned, NULL-terminated; argv[0] is the program */
    size_t argc;
    size_t max_output; /* bytes of stdout kept as the result; 0: max_result */
};

/* Settings of one queue at start: section [queue.NAME]. */
struct config_queue {
    char *name;     /* owned; a valid queue name */
    uint32_t limit; /* jobs of this queue running at once; 0: no limit */
    int lifo;       /* 1: newest first within a priority */
    int paused;     /* 1: starts paused */
};

struct config {
    char *listen[CONFIG_LISTEN_MAX]; /* owned strings; default CONFIG_DEFAULT_LISTEN */
    size_t nlisten;
    unsigned workers; /* default: online CPUs */
    size_t max_frame; /* largest request body */
    size_t max_payload, max_result;
    size_t max_queued; /* per queue */
    size_t max_queues;
    size_t max_inflight; /* requests per connection before reading pauses */
    size_t max_connections;
    size_t max_watch_ids; /* job ids watched at once per connection (WATCH); 1..2^32 */
    size_t max_name;      /* longest task or queue name, 1..FORQ_NAME_MAX */
    uint64_t result_ttl_ms;
    char *data_dir;        /* owned; default CONFIG_DEFAULT_DATA */
    int durability;        /* enum store_durability; default full */
    uint64_t max_db_bytes; /* 0: no limit */
    size_t result_cache;   /* finished jobs kept in memory with a store */
    int log_level;         /* enum log_level */

    /* Job control (issue 5). */
    uint64_t retry_backoff_ms;     /* first retry delay; doubles per attempt (default 1000) */
    uint64_t retry_backoff_max_ms; /* cap on a retry delay (default 300000) */
    uint64_t max_jobs_per_worker;  /* recycle a worker after N jobs; 0: never */
    uint64_t memory_limit;         /* RLIMIT_AS of each worker, bytes; 0: none */
    unsigned worker_batch;         /* jobs one worker wake-up may carry, 1..16 (default 8) */

    /* Running as a service (issue 6). */
    uint64_t drain_timeout_ms; /* SIGTERM: how long running jobs may finish (30000) */
    char *metrics_listen;      /* owned tcp:// address of the metrics listener; NULL: off */

    /* Hostile clients (issue 7). */
    char *auth_token;                    /* owned secret HELLO must present; NULL: no auth */
    char *auth_token_file;               /* owned path auth_token was read from; NULL: none */
    uint32_t allow_uids[CONFIG_IDS_MAX]; /* unix socket peers admitted by uid ... */
    size_t nallow_uids;
    uint32_t allow_gids[CONFIG_IDS_MAX]; /* ... or by gid; both empty: every peer */
    size_t nallow_gids;
    uint64_t handshake_timeout_ms; /* with a token: HELLO must pass within (10000) */
    uint64_t idle_timeout_ms;      /* close a connection with nothing to do this long; 0: never */
    uint64_t frame_timeout_ms;     /* a frame, once begun, must arrive within (30000); 0: never */

    /* Tasks beyond the built-ins. */
    char *plugins[CONFIG_PLUGIN_MAX]; /* owned paths of task plugins (.so) */
    size_t nplugins;
    struct config_task *tasks; /* owned array of exec tasks */
    size_t ntasks;
    struct config_queue *queues; /* owned array of queue settings */
    size_t nqueues;

    char *config_file; /* owned; the file that was read, NULL: none */
    int show_help, show_version;
    int check_config; /* --check-config: print the settings, exit */
};

/* Fill in the defaults. */
void config_init(struct config *cfg);
/* Free what config owns. */
void config_fini(struct config *cfg);

/*
 * Read the config file named by -c/--config in argv (else CONFIG_DEFAULT_FILE
 * if it exists), then apply argv (getopt_long; argv[0] is the program).
 * Returns 0, or FORQ_ERR_INVALID with a one-line reason in err, e.g.
 * "--workers: expected a number in 1..1024, got 'x'" or
 * "/etc/forq/forqd.conf:12: workers: expected a number in 1..1024, got 'x'".
 * Unknown flags, unknown keys or sections, and stray arguments are errors.
 */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Read one INI file into cfg (what config_parse_args does before the flags).
 * Returns 0, or FORQ_ERR_INVALID with "FILE:LINE: reason" in err (or
 * "FILE: reason" when it cannot be opened).
 */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Write the effective configuration as an INI file that forqd reads back (--check-config). */
void config_print(const struct config *cfg, FILE *out);

/*
 * 1 when a and b declare the same tasks: the same plugins in the same order
 * and the same exec tasks (name, argv, max_output). A reload replaces the
 * workers only when they differ.
 */
int config_tasks_equal(const struct config *a, const struct config *b);

/* Print the flags and their defaults. */
void config_usage(FILE *out);

#endif /* FORQ_CONFIG_H */
