/*
 * forq_bench.c — a simple load generator on libforq.
 *
 * THREADS threads share one forq_client (one connection, many requests in
 * flight) and run JOBS jobs between them:
 *   seq    each thread loops: submit, wait for the result (two requests:
 *          SUBMIT, then WAIT);
 *   call   each thread loops: submit-and-wait in one request (SUBMIT with
 *          wait_ms: the answer carries the result);
 *   batch  each thread submits up to 256 jobs, then collects their results,
 *          and repeats;
 *   submit each thread loops: submit, drop the future. Results are never
 *          collected, so THREADS is the number of submits in flight; with
 *          `--task sleep --payload 3600000` the workers take the first jobs
 *          and the rest stay queued, which measures the submit path alone
 *          (bench/durable.sh uses it so);
 *   map    each thread runs forq_map over its share, --window jobs in flight
 *          (default 256): submit-and-wait requests sent a window at a time,
 *          results handed back in input order.
 * Every result is checked (upper: the payload in upper case; echo: the
 * payload). Latency of a job is from the start of its submit to the moment
 * its result is in hand, or in submit mode to the moment forqd's answer to the
 * submit is. Prints jobs, threads, elapsed time, jobs/s (submits/s), latency
 * percentiles and the number of errors; exits non-zero if there were any.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forq.h"
#include "args.h"
#include "lat.h"

#define BENCH_BATCH 256

enum bench_mode { BENCH_SEQ, BENCH_BATCH_MODE, BENCH_SUBMIT, BENCH_MAP, BENCH_CALL };

static const char *const bench_mode_names[] = {"seq", "batch", "submit", "map", "call"};

/* call mode: the longest wait the protocol takes (MS_MAX): wait as long as it takes. */
#define BENCH_CALL_WAIT_MS ((uint64_t)1 << 40)

struct bench {
    const char *addr;
    const char *task;
    uint64_t jobs;
    unsigned threads;
    size_t size;       /* payload bytes; strlen(fixed) when that is set */
    int mode;          /* enum bench_mode */
    const char *fixed; /* --payload: the same payload for every job, or NULL */
    size_t window;     /* map: jobs in flight per thread */
    forq_client *client;
};

struct bench_thread {
    const struct bench *b;
    pthread_t tid;
    unsigned index;
    uint64_t jobs; /* this thread's share */
    uint64_t *lat; /* per-job latency, ns */
    uint64_t nlat;
    uint64_t errors;
    char first_error[256];
};

/* Count an error; keep the first one's text. */
static void
bench_error(struct bench_thread *t, const char *what, const char *detail)
{
    if (t->errors++ == 0)
        snprintf(t->first_error, sizeof(t->first_error), "%s: %s", what, detail);
}

/*
 * A lowercase payload that differs per job, so results cannot be mixed up;
 * or the --payload text, the same for every job.
 */
static void
bench_payload(const struct bench *b, char *buf, unsigned thread, uint64_t seq)
{
    uint64_t x = (uint64_t)thread * 0x9e3779b97f4a7c15u ^ (seq + 1) * 0xbf58476d1ce4e5b9u;

    if (b->fixed != NULL) {
        memcpy(buf, b->fixed, b->size);
        return;
    }
    for (size_t i = 0; i < b->size; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebu;
        buf[i] = (char)('a' + (x >> 59) % 26);
    }
}

/* Is data the right result for payload? */
static int
bench_check(const struct bench *b, const char *payload, const void *data, size_t len)
{
    const char *d = data;

    if (strcmp(b->task, "upper") == 0) {
        if (len != b->size)
            return 0;
        for (size_t i = 0; i < len; i++)
            if (d[i] != (char)toupper((unsigned char)payload[i]))
                return 0;
        return 1;
    }
    if (strcmp(b->task, "echo") == 0)
        return len == b->size && memcmp(d, payload, len) == 0;
    return 1; /* other tasks: success is all we can check */
}

/* Collect one result and record its latency. */
static void
bench_collect(struct bench_thread *t, forq_future *f, const char *payload, uint64_t t0)
{
    const void *data;
    size_t len;
    int r;

    if ((r = forq_future_result(f, -1, &data, &len)) != 0)
        bench_error(t, "result", forq_errmsg());
    else if (!bench_check(t->b, payload, data, len))
        bench_error(t, "result", "wrong bytes");
    else
        t->lat[t->nlat++] = lat_now_ns() - t0;
}

/*
 * One job at a time. seq: submit, then wait for the result. call: the same
 * in one request (opts->wait_ms). submit: submit and let go, so the latency
 * is the submit's round trip (forqd accepted the job) and the number of
 * threads is the number of submits in flight.
 */
static void
bench_run_one_by_one(struct bench_thread *t, char *payload, int collect,
                     const struct forq_submit_opts *opts)
{
    forq_future *f;

    for (uint64_t i = 0; i < t->jobs; i++) {
        uint64_t t0 = lat_now_ns();

        bench_payload(t->b, payload, t->index, i);
        if (forq_submit(t->b->client, t->b->task, payload, t->b->size, opts, &f) != 0) {
            bench_error(t, "submit", forq_errmsg());
            continue;
        }
        if (collect)
            bench_collect(t, f, payload, t0);
        else
            t->lat[t->nlat++] = lat_now_ns() - t0;
        forq_future_free(f);
    }
}

static void
bench_run_batch(struct bench_thread *t, char *payloads)
{
    forq_future *fs[BENCH_BATCH];
    uint64_t t0s[BENCH_BATCH];
    size_t size = t->b->size;

    for (uint64_t done = 0; done < t->jobs;) {
        unsigned n = t->jobs - done < BENCH_BATCH ? (unsigned)(t->jobs - done) : BENCH_BATCH;

        for (unsigned k = 0; k < n; k++) {
            char *p = payloads + (size_t)k * size;

            t0s[k] = lat_now_ns();
            bench_payload(t->b, p, t->index, done + k);
            if (forq_submit(t->b->client, t->b->task, p, size, NULL, &fs[k]) != 0)
                bench_error(t, "submit", forq_errmsg());
        }
        for (unsigned k = 0; k < n; k++) {
            if (fs[k] != NULL)
                bench_collect(t, fs[k], payloads + (size_t)k * size, t0s[k]);
            forq_future_free(fs[k]);
        }
        done += n;
    }
}

/* forq_map's input: job i's payload, its start time kept for the latency. */
struct bench_map {
    struct bench_thread *t;
    char *payload; /* the current input, then room for the expected result */
    uint64_t *t0;  /* start times, a ring of the window's size */
};

static int
bench_map_next(void *arg, size_t i, const void **payload, size_t *len)
{
    struct bench_map *m = arg;

    if (i >= m->t->jobs)
        return 0;
    m->t0[i % m->t->b->window] = lat_now_ns();
    bench_payload(m->t->b, m->payload, m->t->index, i);
    *payload = m->payload;
    *len = m->t->b->size;
    return 1;
}

static int
bench_map_done(void *arg, size_t i, int code, const void *result, size_t len, const char *msg)
{
    struct bench_map *m = arg;
    char *expect = m->payload + m->t->b->size;

    bench_payload(m->t->b, expect, m->t->index, i);
    if (code != 0)
        bench_error(m->t, "result", msg);
    else if (!bench_check(m->t->b, expect, result, len))
        bench_error(m->t, "result", "wrong bytes");
    else
        m->t->lat[m->t->nlat++] = lat_now_ns() - m->t0[i % m->t->b->window];
    return 0;
}

static void
bench_run_map(struct bench_thread *t, char *payloads)
{
    struct bench_map m = {.t = t, .payload = payloads};
    int r;

    if ((m.t0 = calloc(t->b->window, sizeof(*m.t0))) == NULL) {
        bench_error(t, "map", "out of memory");
        return;
    }
    r = forq_map(t->b->client, t->b->task, NULL, t->b->window, -1, bench_map_next,
                 bench_map_done, &m);
    free(m.t0);
    if (r != 0)
        bench_error(t, "map", forq_errmsg());
}

static void *
bench_thread_main(void *arg)
{
    struct bench_thread *t = arg;
    size_t n = t->b->mode == BENCH_BATCH_MODE ? BENCH_BATCH : t->b->mode == BENCH_MAP ? 2 : 1;
    char *payloads = malloc(n * t->b->size + 1);

    if (payloads == NULL) {
        bench_error(t, "payload", "out of memory");
        return NULL;
    }
    struct forq_submit_opts call = FORQ_SUBMIT_OPTS_INIT;

    call.wait_ms = BENCH_CALL_WAIT_MS;
    if (t->b->mode == BENCH_SEQ)
        bench_run_one_by_one(t, payloads, 1, NULL);
    else if (t->b->mode == BENCH_CALL)
        bench_run_one_by_one(t, payloads, 1, &call);
    else if (t->b->mode == BENCH_SUBMIT)
        bench_run_one_by_one(t, payloads, 0, NULL);
    else if (t->b->mode == BENCH_MAP)
        bench_run_map(t, payloads);
    else
        bench_run_batch(t, payloads);
    free(payloads);
    return NULL;
}



/* Merge latencies, print the report. Returns the number of errors. */
static uint64_t
bench_report(const struct bench *b, struct bench_thread *ts, double secs)
{
    uint64_t n = 0, errors = 0, *all;

    for (unsigned i = 0; i < b->threads; i++)
        n += ts[i].nlat;
    if ((all = malloc((n ? n : 1) * sizeof(*all))) == NULL) {
        fprintf(stderr, "forq-bench: out of memory\n");
        return 1;
    }
    n = 0;
    for (unsigned i = 0; i < b->threads; i++) {
        memcpy(all + n, ts[i].lat, ts[i].nlat * sizeof(*all));
        n += ts[i].nlat;
        errors += ts[i].errors;
        if (ts[i].errors)
            fprintf(stderr, "forq-bench: thread %u: %" PRIu64 " errors, first: %s\n", i,
                    ts[i].errors, ts[i].first_error);
    }
    printf("server    %s\n", b->addr);
    printf("task      %s, %zu-byte payloads, mode %s\n", b->task, b->size,
           bench_mode_names[b->mode]);
    printf("jobs      %" PRIu64 "\n", b->jobs);
    printf("threads   %u\n", b->threads);
    printf("elapsed   %.3f s\n", secs);
    printf("rate      %.0f %s/s\n", secs > 0 ? (double)n / secs : 0.0,
           b->mode == BENCH_SUBMIT ? "submits" : "jobs");
    lat_print(all, n);
    printf("errors    %" PRIu64 "\n", errors);
    free(all);
    return errors;
}

static void
bench_usage(FILE *fp)
{
    fputs("usage: forq-bench [-s ADDR] [-n JOBS] [-t THREADS] [--task NAME]\n"
          "                  [--size BYTES | --payload STR] [--mode seq|call|batch|submit|map]\n"
          "  -s, --server ADDR  default $FORQ_SERVER, else " FORQ_DEFAULT_ADDR "\n"
          "  -n, --jobs N       jobs in all (default 10000)\n"
          "  -t, --threads N    threads sharing one client (default 4)\n"
          "      --task NAME    task to run (default upper; upper and echo are checked)\n"
          "      --size BYTES   random lowercase payload of this size (default 16)\n"
          "      --payload STR  this payload for every job instead\n"
          "      --mode MODE    seq: submit + result in a loop; call: the same in one\n"
          "                     request (submit with wait_ms); batch: submit up to 256,\n"
          "                     then collect; submit: submit only, never collect, so\n"
          "                     THREADS submits are in flight; map: forq_map, each\n"
          "                     thread with WINDOW jobs in flight (default seq)\n"
          "      --window N     map: jobs in flight per thread (default 256)\n"
          "Submit throughput without running the jobs, e.g. with two workers:\n"
          "  forq-bench --mode submit -t 8 --task sleep --payload 3600000\n",
          fp);
}

/* The enum bench_mode of a --mode name, or -1. */
static int
bench_mode_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(bench_mode_names) / sizeof(bench_mode_names[0]); i++)
        if (strcmp(name, bench_mode_names[i]) == 0)
            return (int)i;
    return -1;
}

/* Returns -1 to go on, or an exit status. */
static int
bench_parse(struct bench *b, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"jobs", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"task", required_argument, NULL, 'T'},
        {"size", required_argument, NULL, 'S'},
        {"mode", required_argument, NULL, 'm'},
        {"payload", required_argument, NULL, 'P'},
        {"window", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int ch, has_size = 0;

    while ((ch = getopt_long(argc, argv, "s:n:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            b->addr = optarg;
            break;
        case 'n':
            if (args_num("forq-bench", "--jobs", optarg, 1, UINT64_MAX / 2, &b->jobs) != 0)
                return 2;
            break;
        case 't':
            if (args_num("forq-bench", "--threads", optarg, 1, 1024, &v) != 0)
                return 2;
            b->threads = (unsigned)v;
            break;
        case 'T':
            b->task = optarg;
            break;
        case 'S':
            if (args_num("forq-bench", "--size", optarg, 0, (uint64_t)1 << 30, &v) != 0)
                return 2;
            b->size = (size_t)v;
            has_size = 1;
            break;
        case 'P':
            b->fixed = optarg;
            break;
        case 'w':
            if (args_num("forq-bench", "--window", optarg, 1, 1 << 20, &v) != 0)
                return 2;
            b->window = (size_t)v;
            break;
        case 'm':
            if ((b->mode = bench_mode_parse(optarg)) < 0) {
                fprintf(stderr, "forq-bench: --mode: seq, call, batch, submit or map\n");
                return 2;
            }
            break;
        case 'h':
            bench_usage(stdout);
            return 0;
        default:
            bench_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        bench_usage(stderr);
        return 2;
    }
    if (b->fixed != NULL && has_size) {
        fprintf(stderr, "forq-bench: --size and --payload exclude each other\n");
        return 2;
    }
    if (b->fixed != NULL)
        b->size = strlen(b->fixed);
    return -1;
}

int
main(int argc, char **argv)
{
    struct bench b = {.task = "upper", .jobs = 10000, .threads = 4, .size = 16, .mode = BENCH_SEQ,
                      .window = BENCH_BATCH};
    struct bench_thread *ts;
    uint64_t t0, errors;
    int r;

    if ((r = bench_parse(&b, argc, argv)) >= 0)
        return r;
    if (b.addr == NULL && ((b.addr = getenv("FORQ_SERVER")) == NULL || b.addr[0] == '\0'))
        b.addr = FORQ_DEFAULT_ADDR;
    if (forq_connect(b.addr, &b.client) != 0) {
        fprintf(stderr, "forq-bench: %s\n", forq_errmsg());
        return 3;
    }
    if ((ts = calloc(b.threads, sizeof(*ts))) == NULL)
        return 1;
    for (unsigned i = 0; i < b.threads; i++) {
        ts[i].b = &b;
        ts[i].index = i;
        ts[i].jobs = b.jobs / b.threads + (i < b.jobs % b.threads);
        if ((ts[i].lat = calloc(ts[i].jobs ? ts[i].jobs : 1, sizeof(uint64_t))) == NULL)
            return 1;
    }
    t0 = lat_now_ns();
    for (unsigned i = 0; i < b.threads; i++)
        if (pthread_create(&ts[i].tid, NULL, bench_thread_main, &ts[i]) != 0) {
            fprintf(stderr, "forq-bench: cannot start thread %u\n", i);
            return 1;
        }
    for (unsigned i = 0; i < b.threads; i++)
        pthread_join(ts[i].tid, NULL);
    errors = bench_report(&b, ts, (double)(lat_now_ns() - t0) / 1e9);
    for (unsigned i = 0; i < b.threads; i++)
        free(ts[i].lat);
    free(ts);
    forq_client_free(b.client);
    return errors ? 1 : 0;
}
