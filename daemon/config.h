/*
 * config.h — forqd's settings: defaults, command-line flags, validation.
 *
 * Every setting has a safe default; config_parse_args applies flags on top
 * and checks each value, so a bad setting is reported before anything starts.
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

struct config {
    char *listen[CONFIG_LISTEN_MAX]; /* owned strings; default CONFIG_DEFAULT_LISTEN */
    size_t nlisten;
    unsigned workers;                /* default: online CPUs */
    size_t max_frame;                /* largest request body */
    size_t max_payload, max_result;
    size_t max_queued;               /* per queue */
    size_t max_queues;
    size_t max_inflight;             /* requests per connection before reading pauses */
    size_t max_connections;
    uint64_t result_ttl_ms;
    char *data_dir;                  /* owned; default CONFIG_DEFAULT_DATA */
    int durability;                  /* enum store_durability; default full */
    uint64_t max_db_bytes;           /* 0: no limit */
    size_t result_cache;             /* finished jobs kept in memory with a store */
    int log_level;                   /* enum log_level */
    int show_help, show_version;
};

/* Fill in the defaults. */
void config_init(struct config *cfg);
/* Free what config owns. */
void config_fini(struct config *cfg);

/*
 * Apply argv (getopt_long; argv[0] is the program). Returns 0, or
 * FORQ_ERR_INVALID with a one-line reason in err (e.g. "--workers: expected
 * a number in 1..1024, got 'x'"). Unknown flags and stray arguments are errors.
 */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Print the flags and their defaults. */
void config_usage(FILE *out);

#endif /* FORQ_CONFIG_H */
