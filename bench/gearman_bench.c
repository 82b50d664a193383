/*
 * gearman_bench.c — the gearmand anchor for forq-bench: the same `upper` job
 * (a random lowercase payload, returned in upper case) run through gearmand
 * with libgearman, the C library gearmand ships.
 *
 * One binary, three modes, each a process of its own:
 *   worker      registers "upper" with gearman_worker_add_function (the
 *               result rides in WORK_COMPLETE, one packet) and runs jobs
 *               until SIGTERM or SIGINT, then exits 0. Start as many as forqd
 *               gets workers (the comparison uses 2).
 *   throughput  one client connection: add K tasks (gearman_client_add_task),
 *               run them (gearman_client_run_tasks: the K SUBMIT_JOBs leave
 *               in a few writes, results come back as workers finish them),
 *               repeat until JOBS are done. K is the number of jobs in flight.
 *   latency     one job at a time, JOBS times: add one task, run it. That is
 *               what gearman_client_do does inside; measured side by side the
 *               two cost the same (p50 within 10 us).
 * Every result is checked against the payload in upper case; a missing,
 * failed or wrong result is an error. Each task gets its own unique id (pid
 * and a counter): libgearman then skips its UUID per task, and gearmand
 * never coalesces two jobs. Tasks free themselves (GEARMAN_CLIENT_FREE_TASKS).
 *
 * Latency of a job is from its add_task to its completion callback, or in
 * latency mode to the return of run_tasks. Nothing is sent before run_tasks,
 * so in throughput mode it includes building the rest of the batch.
 *
 * gearmand on 2 cores is fastest with --threads 0 (one thread does the I/O
 * and the queue; the default 4 I/O threads hand every packet over to the
 * processing thread): e.g.
 *   gearmand --port 7501 --listen 127.0.0.1 --threads 0 --log-file none
 *
 * Prints the same report as forq-bench; exits 1 if there were errors, 2 on
 * usage errors, 3 if the server cannot be reached.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>

#include "args.h"
#include "lat.h"

#define GB_FUNCTION   "upper"
#define GB_UNIQUE_MAX 32 /* "<pid hex>-<seq hex>" and its NUL */

struct gb {
    const char *addr;
    char host[256];
    in_port_t port;
    int mode; /* enum args_mode */
    uint64_t jobs;
    unsigned inflight;
    size_t size;
    gearman_client_st *client;
    uint64_t *lat; /* per-job latency, ns */
    uint64_t nlat;
    uint64_t errors;
    uint64_t seq; /* jobs added so far: payload seed and unique id */
    unsigned pid; /* in the unique ids, so two clients never share one */
    char first_error[256];
};

/* One task in flight: what it was sent, when, and whether it came back. */
struct gb_slot {
    struct gb *b;
    uint64_t t0;
    int done; /* the task came back, right or wrong */
    int ok;   /* and its result was right */
    char unique[GB_UNIQUE_MAX];
    char *payload; /* b->size bytes */
};

static volatile sig_atomic_t gb_stop;

/* Count an error; keep the first one's text. */
static void
gb_error(struct gb *b, uint64_t n, const char *what, const char *detail)
{
    if (b->errors == 0)
        snprintf(b->first_error, sizeof(b->first_error), "%s: %s", what, detail);
    b->errors += n;
}

/* A lowercase payload that differs per job, as forq-bench makes them. */
static void
gb_payload(char *buf, size_t size, uint64_t seq)
{
    uint64_t x = (seq + 1) * 0xbf58476d1ce4e5b9u;

    for (size_t i = 0; i < size; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebu;
        buf[i] = (char)('a' + (x >> 59) % 26);
    }
}

/* The worker's function: the workload in upper case, freed by libgearman. */
static void *
gb_upper(gearman_job_st *job, void *context, size_t *result_size, gearman_return_t *ret_ptr)
{
    const char *in = gearman_job_workload(job);
    size_t len = gearman_job_workload_size(job);
    char *out = malloc(len ? len : 1);

    (void)context;
    if (out == NULL) {
        *result_size = 0;
        *ret_ptr = GEARMAN_WORK_FAIL;
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = (char)toupper((unsigned char)in[i]);
    *result_size = len;
    *ret_ptr = GEARMAN_SUCCESS;
    return out;
}

static void
gb_on_signal(int sig)
{
    gb_stop = sig;
}

/*
 * Worker mode. The timeout makes gearman_worker_work come back when idle, so
 * the loop sees the stop flag within a second; with work queued it never
 * fires. Exits 0 on a signal, 1 if gearmand went away or on another error.
 */
static int
gb_worker(struct gb *b)
{
    struct sigaction sa = {0};
    gearman_worker_st *w;
    gearman_return_t r;
    int status = 0;

    sa.sa_handler = gb_on_signal; /* no SA_RESTART: a signal cuts the poll short */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if ((w = gearman_worker_create(NULL)) == NULL) {
        fprintf(stderr, "gearman-bench: out of memory\n");
        return 1;
    }
    gearman_worker_set_timeout(w, 500);
    if (gearman_worker_add_server(w, b->host, b->port) != GEARMAN_SUCCESS ||
        gearman_worker_add_function(w, GB_FUNCTION, 0, gb_upper, NULL) != GEARMAN_SUCCESS) {
        fprintf(stderr, "gearman-bench: worker: %s\n", gearman_worker_error(w));
        gearman_worker_free(w);
        return 1;
    }
    while (!gb_stop) {
        r = gearman_worker_work(w);
        if (r == GEARMAN_SUCCESS || r == GEARMAN_TIMEOUT || r == GEARMAN_NO_JOBS ||
            r == GEARMAN_IO_WAIT)
            continue;
        if (!gb_stop) {
            fprintf(stderr, "gearman-bench: worker: %s\n", gearman_worker_error(w));
            status = 1;
        }
        break;
    }
    gearman_worker_free(w);
    return status;
}

/* The completion callback: check the result, take the job's latency. */
static gearman_return_t
gb_complete(gearman_task_st *task)
{
    struct gb_slot *s = gearman_task_context(task);
    struct gb *b = s->b;
    const char *d = gearman_task_data(task);
    size_t len = gearman_task_data_size(task);
    uint64_t t1 = lat_now_ns();

    s->done = 1;
    if (len != b->size) {
        gb_error(b, 1, "result", "wrong size");
        return GEARMAN_SUCCESS;
    }
    for (size_t i = 0; i < len; i++)
        if (d[i] != (char)toupper((unsigned char)s->payload[i])) {
            gb_error(b, 1, "result", "wrong bytes");
            return GEARMAN_SUCCESS;
        }
    s->ok = 1;
    if (b->mode == ARGS_MODE_THROUGHPUT)
        b->lat[b->nlat++] = t1 - s->t0;
    return GEARMAN_SUCCESS;
}

/*
 * Add n tasks from the slots, run them all, count those that did not come
 * back. In latency mode the latency is the whole round trip, taken here.
 */
static void
gb_batch(struct gb *b, struct gb_slot *slots, unsigned n)
{
    gearman_return_t r;
    unsigned added = 0;
    uint64_t t1;

    for (struct gb_slot *s = slots; s < slots + n; s++) {
        gb_payload(s->payload, b->size, b->seq);
        snprintf(s->unique, sizeof(s->unique), "%x-%" PRIx64, b->pid, b->seq++);
        s->done = s->ok = 0;
        s->t0 = lat_now_ns();
        if (gearman_client_add_task(b->client, NULL, s, GB_FUNCTION, s->unique,
                                    b->size ? s->payload : NULL, b->size, &r) == NULL) {
            gb_error(b, 1, "add_task", gearman_client_error(b->client));
            s->done = 1; /* counted */
            continue;
        }
        added++;
    }
    if (added > 0 && (r = gearman_client_run_tasks(b->client)) != GEARMAN_SUCCESS)
        gb_error(b, 0, "run_tasks", gearman_client_error(b->client));
    t1 = lat_now_ns();
    for (struct gb_slot *s = slots; s < slots + n; s++) {
        if (!s->done)
            gb_error(b, 1, "result", "job failed or never came back");
        else if (s->ok && b->mode == ARGS_MODE_LATENCY)
            b->lat[b->nlat++] = t1 - s->t0;
    }
    /* A run that failed may leave tasks behind; start the next one clean. */
    gearman_client_task_free_all(b->client);
}

/* Throughput and latency modes. Returns the exit status. */
static int
gb_client(struct gb *b)
{
    unsigned k = b->mode == ARGS_MODE_LATENCY ? 1 : b->inflight;
    struct gb_slot *slots;
    char *payloads;
    uint64_t t0;
    double secs;

    if ((b->client = gearman_client_create(NULL)) == NULL ||
        (b->lat = calloc(b->jobs, sizeof(uint64_t))) == NULL ||
        (slots = calloc(k, sizeof(*slots))) == NULL ||
        (payloads = malloc((size_t)k * b->size + 1)) == NULL) {
        fprintf(stderr, "gearman-bench: out of memory\n");
        return 1;
    }
    b->pid = (unsigned)getpid();
    for (unsigned i = 0; i < k; i++) {
        slots[i].b = b;
        slots[i].payload = payloads + (size_t)i * b->size;
    }
    /* Tasks free themselves on completion: no list of finished tasks grows. */
    gearman_client_add_options(b->client, GEARMAN_CLIENT_FREE_TASKS);
    gearman_client_set_complete_fn(b->client, gb_complete);
    /* Connect (one ECHO round trip) before the clock starts. */
    if (gearman_client_add_server(b->client, b->host, b->port) != GEARMAN_SUCCESS ||
        gearman_client_echo(b->client, "ping", 4) != GEARMAN_SUCCESS) {
        fprintf(stderr, "gearman-bench: cannot reach %s: %s\n", b->addr,
                gearman_client_error(b->client));
        return 3;
    }
    t0 = lat_now_ns();
    for (uint64_t done = 0, n; done < b->jobs; done += n) {
        n = b->jobs - done < k ? b->jobs - done : k;
        gb_batch(b, slots, (unsigned)n);
    }
    secs = (double)(lat_now_ns() - t0) / 1e9;

    if (b->errors)
        fprintf(stderr, "gearman-bench: %" PRIu64 " errors, first: %s\n", b->errors,
                b->first_error);
    printf("server    %s\n", b->addr);
    printf("task      %s, %zu-byte payloads, mode %s\n", GB_FUNCTION, b->size,
           args_mode_names[b->mode]);
    printf("jobs      %" PRIu64 "\n", b->jobs);
    printf("inflight  %u\n", k);
    printf("elapsed   %.3f s\n", secs);
    printf("rate      %.0f jobs/s\n", secs > 0 ? (double)b->nlat / secs : 0.0);
    lat_print(b->lat, b->nlat);
    printf("errors    %" PRIu64 "\n", b->errors);
    free(payloads);
    free(slots);
    free(b->lat);
    gearman_client_free(b->client);
    return b->errors ? 1 : 0;
}

static void
gb_usage(FILE *fp)
{
    fputs("usage: gearman-bench [-s HOST:PORT] --mode worker|throughput|latency\n"
          "                     [-n JOBS] [--inflight K] [--size BYTES]\n"
          "  -s, --server ADDR  gearmand's HOST:PORT (default 127.0.0.1:4730)\n"
          "  -m, --mode MODE    worker: run \"upper\" jobs until SIGTERM/SIGINT;\n"
          "                     throughput: add K tasks, run them, repeat;\n"
          "                     latency: one job at a time\n"
          "  -n, --jobs N       jobs in all (default 100000, latency 5000)\n"
          "  -k, --inflight K   tasks per run in throughput mode (default 1000)\n"
          "      --size BYTES   random lowercase payload of this size (default 16)\n",
          fp);
}

/* Returns -1 to go on, or an exit status. */
static int
gb_parse(struct gb *b, int argc, char **argv)
{
    struct args_load a = {.addr = "127.0.0.1:4730", .inflight = 1000, .size = 16};
    char port[8], *end;
    unsigned long p;
    int rc;

    if ((rc = args_load_parse("gearman-bench", argc, argv, UINT64_MAX / 16, (uint64_t)1 << 26,
                              gb_usage, &a)) >= 0)
        return rc;
    b->addr = a.addr;
    b->mode = a.mode;
    b->jobs = a.jobs;
    b->inflight = (unsigned)a.inflight;
    b->size = (size_t)a.size;
    if (args_hostport(b->addr, b->host, sizeof(b->host), port, sizeof(port)) != 0 ||
        (p = strtoul(port, &end, 10)) == 0 || p > 65535 || *end != '\0' || port[0] < '0' ||
        port[0] > '9') {
        fprintf(stderr, "gearman-bench: --server: expected HOST:PORT, got %s\n", b->addr);
        return 2;
    }
    b->port = (in_port_t)p;
    return -1;
}

int
main(int argc, char **argv)
{
    struct gb b = {0};
    int r;

    if ((r = gb_parse(&b, argc, argv)) >= 0)
        return r;
    return b.mode == ARGS_MODE_WORKER ? gb_worker(&b) : gb_client(&b);
}
