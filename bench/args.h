/*
 * args.h — command-line values the bench tools share: a number in a range,
 * a HOST:PORT server address, and the options of the anchors' load tools,
 * each with one clear message on failure.
 */
#ifndef FORQ_BENCH_ARGS_H
#define FORQ_BENCH_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Parse s (option opt of tool) as a decimal in min..max into *v. Returns 0,
 * or -1 after printing "tool: opt: expected a number in min..max" on stderr.
 */
int args_num(const char *tool, const char *opt, const char *s, uint64_t min, uint64_t max,
             uint64_t *v);

/*
 * Split "tcp://HOST:PORT", "HOST:PORT" or "[V6]:PORT" into host (hostlen
 * bytes) and port (portlen bytes). Returns 0, or -1 when s is not such an
 * address or a part does not fit.
 */
int args_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

/* What an anchor's load tool (gearman-bench, beanstalk-bench) is run as. */
enum args_mode { ARGS_MODE_NONE, ARGS_MODE_WORKER, ARGS_MODE_THROUGHPUT, ARGS_MODE_LATENCY };

extern const char *const args_mode_names[]; /* by enum args_mode; NONE is "" */

struct args_load {
    const char *addr;  /* -s/--server; in: the default */
    int mode;          /* --mode worker|throughput|latency (enum args_mode), required */
    uint64_t jobs;     /* -n/--jobs; default 100000, or 5000 with --mode latency */
    uint64_t inflight; /* -k/--inflight; in: the default */
    uint64_t size;     /* --size BYTES; in: the default */
};

/*
 * Parse the options of tool into *a (addr, inflight and size set to their
 * defaults beforehand): -s/--server, -m/--mode, -n/--jobs (1..jobs_max),
 * -k/--inflight (1..1000000), --size (0..size_max), -h/--help. The producer
 * options are refused with --mode worker, and --inflight with --mode latency.
 * Returns -1 to go on, or the exit status: 0 after usage(stdout) for --help,
 * 2 after a message (or usage(stderr)) on stderr.
 */
int args_load_parse(const char *tool, int argc, char **argv, uint64_t jobs_max, uint64_t size_max,
                    void (*usage)(FILE *fp), struct args_load *a);

#endif /* FORQ_BENCH_ARGS_H */
