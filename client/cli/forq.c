/*
 * forq.c — the forq command-line client, a thin layer over libforq.
 *
 * One thread: parse the arguments, connect, run one command, print, exit with
 * a status that says what happened (see cli_usage). Results go to stdout
 * byte for byte; every failure is one line on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forq.h"
#include "msg.h"

#define CLI_DEFAULT_ADDR FORQ_DEFAULT_ADDR

enum cli_exit {
    CLI_OK = 0,
    CLI_JOB_FAILED = 1,
    CLI_USAGE = 2,
    CLI_CONNECT = 3,
    CLI_TIMEOUT = 4,
    CLI_REFUSED = 5,
};

/* Long-only options. */
enum {
    CLI_OPT_DELAY = 256,
    CLI_OPT_JOB_TIMEOUT,
    CLI_OPT_RETRIES,
    CLI_OPT_UNIQUE,
    CLI_OPT_BLOCK,
    CLI_OPT_RUNNING,
    CLI_OPT_LIMIT,
    CLI_OPT_ORDER,
};

/* Command options, as given; `given` records which, to reject misplaced ones. */
#define CLI_GIVEN_SUBMIT  0x1 /* an option that only submit takes */
#define CLI_GIVEN_TIMEOUT 0x2
#define CLI_GIVEN_RUNNING 0x4 /* cancel --running */
#define CLI_GIVEN_QSET    0x8 /* queue set --limit / --order */

struct cli {
    const char *addr;
    int json;
    struct forq_submit_opts opts;
    int wait;
    int64_t timeout_ms; /* -1: none */
    int running;        /* cancel --running */
    int64_t limit;      /* queue set --limit; -1: unchanged */
    const char *order;  /* queue set --order; NULL: unchanged */
    unsigned given;
    const char *cmd;
    char **args; /* positional arguments after the command */
    int nargs;
    forq_client *client;
};

/* ------------------------------------------------------------------ messages */

static void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
cli_err(const char *fmt, ...)
{
    va_list ap;

    fputs("forq: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("forq: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see 'forq --help')\n", stderr);
    return CLI_USAGE;
}

static void
cli_usage(FILE *fp)
{
    fputs("usage: forq [-s ADDR] [--json] COMMAND [ARGS...]\n"
          "\n"
          "Commands:\n"
          "  submit TASK [PAYLOAD|-]  submit a job and print its id; '-' reads the\n"
          "                           payload from stdin; no payload sends an empty one\n"
          "    -q, --queue Q          queue (default \"default\")\n"
          "    -p, --priority N       lower runs first (default 0)\n"
          "    -w, --wait             wait for the job and print its result instead\n"
          "    -t, --timeout MS       with --wait: stop waiting after MS milliseconds\n"
          "        --delay MS         keep the job scheduled for MS milliseconds\n"
          "        --job-timeout MS   kill the job's worker after MS milliseconds of\n"
          "                           running (the attempt fails with job_timeout)\n"
          "        --retries N        retry a failed attempt up to N times (0..1000),\n"
          "                           with exponential backoff\n"
          "        --unique KEY       while a job submitted with KEY is unfinished,\n"
          "                           print its id instead of submitting another\n"
          "        --block MS         if the queue is full, wait up to MS milliseconds\n"
          "                           for room instead of failing at once\n"
          "  wait ID [ID...]          wait for jobs (one WATCH for all of them) and\n"
          "                           print each result, in the order given\n"
          "    -t, --timeout MS       stop waiting after MS milliseconds (all IDs)\n"
          "  status ID                show a job's state, attempts, errors and options\n"
          "  cancel ID                cancel a job that has not started\n"
          "        --running          also cancel a running job (its worker is killed)\n"
          "  queue info Q             show a queue: one line, or --json\n"
          "  queue pause Q            start no more jobs of Q (it still accepts jobs)\n"
          "  queue resume Q           start Q's jobs again\n"
          "  queue set Q              change Q (give at least one of):\n"
          "        --limit K          at most K of its jobs run at once (0: no limit)\n"
          "        --order fifo|lifo  oldest or newest first within a priority\n"
          "  queue join Q             wait until Q has no job queued, scheduled or\n"
          "                           running; prints nothing\n"
          "    -t, --timeout MS       stop waiting after MS milliseconds (exit 4)\n"
          "  stats                    show totals, queues and workers\n"
          "  ping                     check that the server answers\n"
          "\n"
          "Options (anywhere on the line; put -- before a payload starting with '-'):\n"
          "  -s, --server ADDR        tcp://HOST:PORT or unix:///PATH; default\n"
          "                           $FORQ_SERVER, else " CLI_DEFAULT_ADDR "\n"
          "                           (a token for HELLO is read from $FORQ_TOKEN)\n"
          "  -j, --json               print one JSON object per line\n"
          "  -h, --help               show this help\n"
          "  -V, --version            show the version\n"
          "\n"
          "Results are written to stdout exactly, plus a newline unless they end\n"
          "with one. With --json, a result that is not UTF-8 is given as\n"
          "\"result_base64\".\n"
          "\n"
          "Exit status:\n"
          "  0  success\n"
          "  1  the job failed (whatever its error code) or was cancelled\n"
          "  2  usage error\n"
          "  3  cannot connect, or the connection was lost\n"
          "  4  timeout (wait, submit --wait, queue join)\n"
          "  5  the server refused the request (not_found, unknown_task, bad_request,\n"
          "     too_big, queue_full, state, limit, ...)\n",
          fp);
}

/* Exit status for a libforq code. */
static int
cli_exit_code(int code)
{
    switch (code) {
    case FORQ_OK:
        return CLI_OK;
    case FORQ_ERR_TASK_FAILED:
    case FORQ_ERR_WORKER_LOST:
    case FORQ_ERR_CANCELLED:
    case FORQ_ERR_JOB_TIMEOUT:
    case FORQ_ERR_MEMORY_LIMIT:
        return CLI_JOB_FAILED;
    case FORQ_ERR_INVALID:
        return CLI_USAGE;
    case FORQ_ERR_CONNECT:
    case FORQ_ERR_DISCONNECTED:
    case FORQ_ERR_VERSION:
    case FORQ_ERR_PROTOCOL:
    case FORQ_ERR_SYSTEM:
    case FORQ_ERR_NOMEM:
        return CLI_CONNECT;
    case FORQ_ERR_TIMEOUT:
        return CLI_TIMEOUT;
    default:
        return CLI_REFUSED;
    }
}

/*
 * Report a failed call made about `what` ("submit", "job 12") and return the
 * exit status.
 */
static int
cli_fail(const char *what, int code)
{
    switch (code) {
    case FORQ_ERR_DISCONNECTED:
    case FORQ_ERR_PROTOCOL:
        cli_err("%s", forq_errmsg());
        break;
    case FORQ_ERR_TIMEOUT:
        cli_err("%s: timed out", what);
        break;
    default:
        cli_err("%s: %s (%s)", what, forq_errmsg(), forq_errname(code));
        break;
    }
    return cli_exit_code(code);
}

/* ------------------------------------------------------------------ JSON */

/* The inside of a JSON string; s must be valid UTF-8. */
static void
cli_json_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
}

static void
cli_json_str(const char *s, size_t n)
{
    putchar('"');
    cli_json_chars(s, n);
    putchar('"');
}

/* A JSON string of text we did not produce: bytes that are not UTF-8 become U+FFFD. */
static void
cli_json_text(const char *s)
{
    size_t n = strlen(s);

    if (msg_utf8_valid((const uint8_t *)s, n)) {
        cli_json_str(s, n);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80)
            fputs("\\ufffd", stdout);
        else
            cli_json_chars(s + i, 1);
    }
    putchar('"');
}

static void
cli_base64(const uint8_t *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;

    putchar('"');
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

        putchar(tab[v >> 18]), putchar(tab[(v >> 12) & 63]);
        putchar(tab[(v >> 6) & 63]), putchar(tab[v & 63]);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;

        putchar(tab[v >> 18]), putchar(tab[(v >> 12) & 63]), fputs("==", stdout);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

        putchar(tab[v >> 18]), putchar(tab[(v >> 12) & 63]);
        putchar(tab[(v >> 6) & 63]), putchar('=');
    }
    putchar('"');
}

/* ------------------------------------------------------------------ job outcomes */

/* Print the outcome of waiting for job id; return the exit status. */
static int
cli_print_outcome(const struct cli *cli, uint64_t id, int r, const forq_future *f, const void *data,
                  size_t len)
{
    /* The job itself ended badly (whatever its code), as opposed to the call failing. */
    int job_failed = r != 0 && forq_future_error(f) != NULL;
    const char *msg = job_failed ? forq_future_error(f) : r != 0 ? forq_errmsg() : NULL;
    char what[64];

    snprintf(what, sizeof(what), "job %" PRIu64, id);
    if (r == 0 && !cli->json) {
        fwrite(data, 1, len, stdout);
        if (len == 0 || ((const char *)data)[len - 1] != '\n')
            putchar('\n');
        return CLI_OK;
    }
    if (cli->json && (r == 0 || job_failed)) {
        printf("{\"id\":%" PRIu64 ",\"state\":\"%s\"", id,
               r == 0                    ? "succeeded"
               : r == FORQ_ERR_CANCELLED ? "cancelled"
                                         : "failed");
        if (r == 0 && msg_utf8_valid(data, len)) {
            fputs(",\"result\":", stdout);
            cli_json_str(data, len);
        } else if (r == 0) {
            fputs(",\"result_base64\":", stdout);
            cli_base64(data, len);
        } else {
            printf(",\"error\":{\"code\":\"%s\",\"message\":", forq_errname(r));
            cli_json_text(msg);
            putchar('}');
        }
        fputs("}\n", stdout);
    }
    if (r == 0)
        return CLI_OK;
    if (!job_failed) {
        if (r == FORQ_ERR_TIMEOUT) {
            cli_err("timed out waiting for job %" PRIu64, id);
            return CLI_TIMEOUT;
        }
        return cli_fail(what, r);
    }
    if (r == FORQ_ERR_CANCELLED)
        cli_err("job %" PRIu64 " cancelled: %s", id, msg);
    else
        cli_err("job %" PRIu64 " failed (%s): %s", id, forq_errname(r), msg);
    return CLI_JOB_FAILED;
}

/* Wait for f until deadline (monotonic ms, < 0: none) and print the outcome. */
static int
cli_wait_future(const struct cli *cli, forq_future *f, int64_t deadline)
{
    const void *data;
    size_t len;
    int64_t left = -1;
    struct timespec ts;
    int r;

    if (deadline >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        left = deadline - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left < 0)
            left = 0;
    }
    r = forq_future_result(f, left, &data, &len);
    return cli_print_outcome(cli, forq_future_id(f), r, f, data, len);
}

static int64_t
cli_deadline(int64_t timeout_ms)
{
    struct timespec ts;

    if (timeout_ms < 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

/* ------------------------------------------------------------------ argument values */

static int
cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;

    *out = 0;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int
cli_parse_id(const char *s, uint64_t *id)
{
    if (cli_parse_u64(s, UINT64_MAX, id) != 0 || *id == 0)
        return cli_usage_error("'%s' is not a job id", s);
    return 0;
}

/* Read all of stdin into a malloc'd buffer. */
static int
cli_read_stdin(char **out, size_t *len)
{
    size_t cap = 65536, n = 0, got;
    char *buf = malloc(cap), *p;

    *out = NULL;
    *len = 0;
    if (buf == NULL)
        return -1;
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            if ((p = realloc(buf, cap * 2)) == NULL) {
                free(buf);
                return -1;
            }
            buf = p;
            cap *= 2;
        }
    }
    if (ferror(stdin)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------ commands */

static int
cli_cmd_submit(struct cli *cli)
{
    forq_future *f = NULL;
    const char *payload = "";
    char *input = NULL;
    size_t len = 0;
    int64_t deadline;
    int r, ex = CLI_OK;

    if (cli->nargs == 2 && strcmp(cli->args[1], "-") == 0) {
        if (cli_read_stdin(&input, &len) != 0) {
            cli_err("cannot read the payload from stdin: %s", strerror(errno));
            return CLI_USAGE;
        }
        payload = input;
    } else if (cli->nargs == 2) {
        payload = cli->args[1];
        len = strlen(payload);
    }
    deadline = cli_deadline(cli->timeout_ms);
    if (cli->wait) /* one request: forqd answers with the result (or after the timeout) */
        cli->opts.wait_ms = cli->timeout_ms < 0 ? MSG_MS_MAX : (uint64_t)cli->timeout_ms;
    r = forq_submit(cli->client, cli->args[0], payload, len, &cli->opts, &f);
    free(input);
    if (r != 0)
        return cli_fail("submit", r);
    if (cli->wait)
        ex = cli_wait_future(cli, f, deadline);
    else if (cli->json)
        printf("{\"id\":%" PRIu64 "}\n", forq_future_id(f));
    else
        printf("%" PRIu64 "\n", forq_future_id(f));
    forq_future_free(f);
    return ex;
}

/*
 * Wait for every id with one WATCH (forq_wait), then print each outcome in
 * the order given; the futures hold the results, so printing asks nothing.
 */
static int
cli_cmd_wait(struct cli *cli)
{
    int64_t deadline = cli_deadline(cli->timeout_ms);
    forq_future **fs;
    uint64_t id;
    int i, r, ex = CLI_OK, e;

    if ((fs = calloc((size_t)cli->nargs, sizeof(*fs))) == NULL) {
        cli_err("out of memory");
        return CLI_CONNECT;
    }
    for (i = 0; i < cli->nargs; i++) {
        (void)cli_parse_id(cli->args[i], &id); /* checked before connecting */
        if ((r = forq_future_from_id(cli->client, id, &fs[i])) != 0) {
            ex = cli_fail("wait", r);
            goto out;
        }
    }
    r = forq_wait(fs, (size_t)cli->nargs, FORQ_ALL_COMPLETED, cli->timeout_ms, NULL);
    if (r != 0 && r != FORQ_ERR_TIMEOUT) {
        ex = cli_fail("wait", r);
        goto out;
    }
    for (i = 0; i < cli->nargs; i++) {
        e = cli_wait_future(cli, fs[i], deadline);
        fflush(stdout);
        if (ex == CLI_OK)
            ex = e;
        if (e == CLI_CONNECT)
            break;
    }
out:
    for (i = 0; i < cli->nargs; i++)
        forq_future_free(fs[i]);
    free(fs);
    return ex;
}

static void
cli_print_time(const char *label, uint64_t us)
{
    struct tm tm;
    time_t t = (time_t)(us / 1000000);
    char buf[64];

    if (us == 0) {
        printf("%-12s -\n", label);
        return;
    }
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%-12s %s.%03uZ\n", label, buf, (unsigned)(us % 1000000 / 1000));
}

static void
cli_status_json(const struct forq_job_info *ji)
{
    printf("{\"id\":%" PRIu64 ",\"state\":\"%s\",\"task\":", ji->id, forq_state_name(ji->state));
    cli_json_text(ji->task);
    fputs(",\"queue\":", stdout);
    cli_json_text(ji->queue);
    printf(",\"priority\":%" PRId32 ",\"attempts\":%" PRIu32 ",\"created_us\":%" PRIu64
           ",\"started_us\":%" PRIu64 ",\"finished_us\":%" PRIu64 ",\"worker_pid\":%" PRId32
           ",\"result_size\":%" PRIu64,
           ji->priority, ji->attempts, ji->created_us, ji->started_us, ji->finished_us,
           ji->worker_pid, ji->result_size);
    printf(",\"max_retries\":%" PRIu32 ",\"timeout_ms\":%" PRIu64 ",\"run_at_us\":%" PRIu64,
           ji->max_retries, ji->timeout_ms, ji->run_at_us);
    if (ji->unique_key != NULL) {
        fputs(",\"unique_key\":", stdout);
        cli_json_text(ji->unique_key);
    }
    if (ji->error_code != 0) {
        printf(",\"error\":{\"code\":\"%s\",\"message\":", forq_errname(ji->error_code));
        cli_json_text(ji->error_msg ? ji->error_msg : "");
        putchar('}');
    }
    if (ji->last_error_code != 0) {
        printf(",\"last_error\":{\"code\":\"%s\",\"message\":", forq_errname(ji->last_error_code));
        cli_json_text(ji->last_error_msg ? ji->last_error_msg : "");
        putchar('}');
    }
    fputs("}\n", stdout);
}

static void
cli_status_table(const struct forq_job_info *ji)
{
    printf("%-12s %" PRIu64 "\n%-12s %s\n%-12s %s\n%-12s %s\n", "id", ji->id, "state",
           forq_state_name(ji->state), "task", ji->task, "queue", ji->queue);
    printf("%-12s %" PRId32 "\n", "priority", ji->priority);
    if (ji->max_retries > 0)
        printf("%-12s %" PRIu32 " of %" PRIu64 "\n", "attempts", ji->attempts,
               (uint64_t)ji->max_retries + 1);
    else
        printf("%-12s %" PRIu32 "\n", "attempts", ji->attempts);
    if (ji->unique_key != NULL)
        printf("%-12s %s\n", "unique_key", ji->unique_key);
    if (ji->timeout_ms != 0)
        printf("%-12s %" PRIu64 " ms\n", "timeout", ji->timeout_ms);
    cli_print_time("created", ji->created_us);
    if (ji->run_at_us != 0)
        cli_print_time("run_at", ji->run_at_us);
    cli_print_time("started", ji->started_us);
    cli_print_time("finished", ji->finished_us);
    if (ji->worker_pid != 0)
        printf("%-12s %" PRId32 "\n", "worker_pid", ji->worker_pid);
    if (ji->state == FORQ_STATE_SUCCEEDED)
        printf("%-12s %" PRIu64 " bytes\n", "result", ji->result_size);
    if (ji->error_code != 0)
        printf("%-12s %s: %s\n", "error", forq_errname(ji->error_code),
               ji->error_msg ? ji->error_msg : "");
    if (ji->last_error_code != 0)
        printf("%-12s %s: %s\n", "last_error", forq_errname(ji->last_error_code),
               ji->last_error_msg ? ji->last_error_msg : "");
}

static int
cli_cmd_status(struct cli *cli)
{
    struct forq_job_info ji;
    char what[64];
    uint64_t id;
    int r;

    (void)cli_parse_id(cli->args[0], &id);
    snprintf(what, sizeof(what), "job %" PRIu64, id);
    if ((r = forq_status(cli->client, id, &ji)) != 0)
        return cli_fail(what, r);
    if (cli->json)
        cli_status_json(&ji);
    else
        cli_status_table(&ji);
    forq_job_info_clear(&ji);
    return CLI_OK;
}

static int
cli_cmd_cancel(struct cli *cli)
{
    char what[64];
    uint64_t id;
    int r;

    (void)cli_parse_id(cli->args[0], &id);
    snprintf(what, sizeof(what), "cannot cancel job %" PRIu64, id);
    r = cli->running ? forq_cancel_running(cli->client, id) : forq_cancel(cli->client, id);
    if (r != 0)
        return cli_fail(what, r);
    if (cli->json)
        printf("{\"id\":%" PRIu64 ",\"state\":\"cancelled\"}\n", id);
    else
        printf("job %" PRIu64 " cancelled\n", id);
    return CLI_OK;
}

static void
cli_json_stats_store(const struct forq_stats *s)
{
    fputs(",\"durability\":", stdout);
    cli_json_text(s->durability);
    printf(",\"store_commits\":%" PRIu64 ",\"store_fsyncs\":%" PRIu64
           ",\"store_records\":%" PRIu64 ",\"store_failures\":%" PRIu64
           ",\"store_max_batch\":%" PRIu64 ",\"store_commit_us\":%" PRIu64
           ",\"store_purged\":%" PRIu64,
           s->store_commits, s->store_fsyncs, s->store_records, s->store_failures,
           s->store_max_batch, s->store_commit_us, s->store_purged);
}

/* One queue's fields, inside a JSON object (no braces). */
static void
cli_json_queue(const struct forq_queue_stats *q)
{
    fputs("\"name\":", stdout);
    cli_json_text(q->name);
    printf(",\"queued\":%" PRIu64 ",\"scheduled\":%" PRIu64 ",\"running\":%" PRIu64
           ",\"submitted\":%" PRIu64 ",\"succeeded\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"cancelled\":%" PRIu64 ",\"retried\":%" PRIu64 ",\"blocked\":%" PRIu64
           ",\"limit\":%" PRIu32 ",\"order\":",
           q->queued, q->scheduled, q->running, q->submitted, q->succeeded, q->failed, q->cancelled,
           q->retried, q->blocked, q->limit);
    cli_json_text(q->order);
    printf(",\"paused\":%s", q->paused ? "true" : "false");
}

static void
cli_stats_json(const struct forq_stats *s)
{
    fputs("{\"server\":", stdout);
    cli_json_text(s->server);
    printf(",\"uptime_ms\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"queued\":%" PRIu64
           ",\"running\":%" PRIu64 ",\"submitted\":%" PRIu64 ",\"succeeded\":%" PRIu64
           ",\"failed\":%" PRIu64 ",\"cancelled\":%" PRIu64,
           s->uptime_ms, s->connections, s->queued, s->running, s->submitted, s->succeeded,
           s->failed, s->cancelled);
    printf(",\"scheduled\":%" PRIu64 ",\"retried\":%" PRIu64, s->scheduled, s->retried);
    cli_json_stats_store(s);
    fputs(",\"queues\":[", stdout);
    for (size_t i = 0; i < s->nqueues; i++) {
        fputs(i ? ",{" : "{", stdout);
        cli_json_queue(&s->queues[i]);
        putchar('}');
    }
    fputs("],\"workers\":[", stdout);
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct forq_worker_stats *w = &s->workers[i];

        printf("%s{\"slot\":%" PRIu32 ",\"pid\":%" PRId32 ",\"state\":", i ? "," : "", w->slot,
               w->pid);
        cli_json_text(w->state);
        printf(",\"job\":%" PRIu64 ",\"jobs_done\":%" PRIu64 ",\"restarts\":%" PRIu64 "}", w->job,
               w->jobs_done, w->restarts);
    }
    fputs("]}\n", stdout);
}

static void
cli_stats_table(const struct forq_stats *s)
{
    uint64_t up = s->uptime_ms / 1000;

    printf("server       %s\n", s->server);
    printf("uptime       %" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 "\n", up / 86400,
           up / 3600 % 24, up / 60 % 60, up % 60);
    printf("connections  %" PRIu64 "\n", s->connections);
    printf("durability   %s", s->durability);
    if (s->store_commits > 0)
        printf(" (%" PRIu64 " records in %" PRIu64 " commits, %" PRIu64 " fsyncs, largest batch %"
               PRIu64 ", %" PRIu64 " failed)",
               s->store_records, s->store_commits, s->store_fsyncs, s->store_max_batch,
               s->store_failures);
    printf("\n\n");
    printf("%-20s %9s %9s %9s %10s %10s %9s %9s %9s %7s %5s %s\n", "QUEUE", "QUEUED", "SCHEDULED",
           "RUNNING", "SUBMITTED", "SUCCEEDED", "FAILED", "CANCELLED", "RETRIED", "LIMIT", "ORDER",
           "PAUSED");
    for (size_t i = 0; i < s->nqueues; i++) {
        const struct forq_queue_stats *q = &s->queues[i];
        char limit[16] = "-";

        if (q->limit != 0)
            snprintf(limit, sizeof(limit), "%" PRIu32, q->limit);
        printf("%-20s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64
               " %9" PRIu64 " %9" PRIu64 " %7s %5s %s\n",
               q->name, q->queued, q->scheduled, q->running, q->submitted, q->succeeded, q->failed,
               q->cancelled, q->retried, limit, q->order, q->paused ? "yes" : "no");
    }
    printf("%-20s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64
           " %9" PRIu64 " %9" PRIu64 "\n\n",
           "(total)", s->queued, s->scheduled, s->running, s->submitted, s->succeeded, s->failed,
           s->cancelled, s->retried);
    printf("%-6s %8s %-9s %10s %10s %9s\n", "WORKER", "PID", "STATE", "JOB", "DONE", "RESTARTS");
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct forq_worker_stats *w = &s->workers[i];

        printf("%-6" PRIu32 " %8" PRId32 " %-9s ", w->slot, w->pid, w->state);
        if (w->job != 0)
            printf("%10" PRIu64, w->job);
        else
            printf("%10s", "-");
        printf(" %10" PRIu64 " %9" PRIu64 "\n", w->jobs_done, w->restarts);
    }
}

static int
cli_cmd_stats(struct cli *cli)
{
    struct forq_stats *s;
    int r;

    if ((r = forq_stats(cli->client, &s)) != 0)
        return cli_fail("stats", r);
    if (cli->json)
        cli_stats_json(s);
    else
        cli_stats_table(s);
    forq_stats_free(s);
    return CLI_OK;
}

/* The queue commands: `queue info|pause|resume|set|join Q`. */
static const char *const cli_queue_actions[] = {"info", "pause", "resume", "set", "join"};

static int
cli_is_queue_action(const char *s)
{
    for (size_t i = 0; i < sizeof(cli_queue_actions) / sizeof(cli_queue_actions[0]); i++)
        if (strcmp(s, cli_queue_actions[i]) == 0)
            return 1;
    return 0;
}

static void
cli_print_queue(const struct cli *cli, const struct forq_queue_stats *q)
{
    if (cli->json) {
        putchar('{');
        cli_json_queue(q);
        fputs("}\n", stdout);
        return;
    }
    printf("%s: queued %" PRIu64 ", scheduled %" PRIu64 ", running %" PRIu64 ", limit ", q->name,
           q->queued, q->scheduled, q->running);
    if (q->limit != 0)
        printf("%" PRIu32, q->limit);
    else
        fputs("none", stdout);
    printf(", order %s, paused %s", q->order, q->paused ? "yes" : "no");
    if (q->blocked > 0) /* only then: the line stays as it was for everyone else */
        printf(", blocked submits %" PRIu64, q->blocked);
    putchar('\n');
}

static int
cli_cmd_queue(struct cli *cli)
{
    struct forq_queue_stats q;
    const char *action = cli->args[0], *name = cli->args[1];
    char what[128];
    int r;

    snprintf(what, sizeof(what), "queue %s %.*s", action, FORQ_NAME_MAX, name);
    if (strcmp(action, "join") == 0) {
        if ((r = forq_queue_join(cli->client, name, cli->timeout_ms)) != 0)
            return cli_fail(what, r);
        return CLI_OK;
    }
    if (strcmp(action, "pause") == 0)
        r = forq_queue_pause(cli->client, name, &q);
    else if (strcmp(action, "resume") == 0)
        r = forq_queue_resume(cli->client, name, &q);
    else if (strcmp(action, "set") == 0)
        r = forq_queue_set(cli->client, name, cli->limit, cli->order, &q);
    else
        r = forq_queue_info(cli->client, name, &q);
    if (r != 0)
        return cli_fail(what, r);
    cli_print_queue(cli, &q);
    return CLI_OK;
}

/* Options and arguments of `queue`, checked before connecting. */
static int
cli_check_queue_args(const struct cli *cli)
{
    const char *action = cli->args[0];

    if (!cli_is_queue_action(action))
        return cli_usage_error("queue: unknown action '%s' (info, pause, resume, set or join)",
                               action);
    if ((cli->given & CLI_GIVEN_TIMEOUT) && strcmp(action, "join") != 0)
        return cli_usage_error("--timeout is only for 'queue join'");
    if ((cli->given & CLI_GIVEN_QSET) && strcmp(action, "set") != 0)
        return cli_usage_error("--limit and --order are only for 'queue set'");
    if (strcmp(action, "set") == 0 && cli->limit < 0 && cli->order == NULL)
        return cli_usage_error("queue set needs --limit K, --order fifo|lifo or both");
    if (!msg_name_valid(cli->args[1], strlen(cli->args[1])))
        return cli_usage_error("'%s' is not a queue name (1 to %d bytes of A-Z a-z 0-9 _ . : -)",
                               cli->args[1], FORQ_NAME_MAX);
    return 0;
}

static int
cli_cmd_ping(struct cli *cli)
{
    struct timespec t0, t1;
    double ms;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((r = forq_ping(cli->client)) != 0)
        return cli_fail("ping", r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (cli->json)
        printf("{\"ok\":true,\"rtt_ms\":%.3f}\n", ms);
    else
        printf("pong from %s in %.3f ms\n", cli->addr, ms);
    return CLI_OK;
}

/* ------------------------------------------------------------------ main */

struct cli_cmd {
    const char *name;
    int (*run)(struct cli *);
    unsigned allowed; /* CLI_GIVEN_* options it accepts */
    int min_args, max_args;
    int ids;           /* the arguments are job ids */
    const char *usage; /* its arguments, for messages */
};

static const struct cli_cmd cli_cmds[] = {
    {"submit", cli_cmd_submit, CLI_GIVEN_SUBMIT | CLI_GIVEN_TIMEOUT, 1, 2, 0, "TASK [PAYLOAD|-]"},
    {"wait", cli_cmd_wait, CLI_GIVEN_TIMEOUT, 1, INT32_MAX, 1, "ID [ID...]"},
    {"status", cli_cmd_status, 0, 1, 1, 1, "ID"},
    {"cancel", cli_cmd_cancel, CLI_GIVEN_RUNNING, 1, 1, 1, "ID"},
    {"queue", cli_cmd_queue, CLI_GIVEN_QSET | CLI_GIVEN_TIMEOUT, 2, 2, 0,
     "info|pause|resume|set|join QUEUE"},
    {"stats", cli_cmd_stats, 0, 0, 0, 0, "no arguments"},
    {"ping", cli_cmd_ping, 0, 0, 0, 0, "no arguments"},
};

/* Check the command's arguments and options before connecting. */
static int
cli_check_args(const struct cli *cli, const struct cli_cmd *cmd)
{
    uint64_t id;
    int r;

    if (cli->given & ~cmd->allowed)
        return cli_usage_error("option not valid for '%s'", cmd->name);
    if (cli->nargs < cmd->min_args || cli->nargs > cmd->max_args)
        return cli_usage_error("%s takes %s", cmd->name, cmd->usage);
    if ((cli->given & CLI_GIVEN_TIMEOUT) && cmd->run == cli_cmd_submit && !cli->wait)
        return cli_usage_error("--timeout needs --wait");
    if (cmd->run == cli_cmd_queue)
        return cli_check_queue_args(cli);
    for (int i = 0; cmd->ids && i < cli->nargs; i++)
        if ((r = cli_parse_id(cli->args[i], &id)) != 0)
            return r;
    return 0;
}

static int
cli_opt_num(const char *name, const char *arg, uint64_t max, uint64_t *v)
{
    if (cli_parse_u64(arg, max, v) != 0)
        return cli_usage_error("%s: '%s' is not a number in 0..%" PRIu64, name, arg, max);
    return 0;
}

/* One option of a command; returns 0 or an exit status. */
static int
cli_parse_cmd_opt(struct cli *cli, int ch, const char *arg)
{
    uint64_t v;
    long long p;
    char *end;
    int r = 0;

    switch (ch) {
    case 't':
        cli->given |= CLI_GIVEN_TIMEOUT;
        break;
    case CLI_OPT_RUNNING:
        cli->given |= CLI_GIVEN_RUNNING;
        break;
    case CLI_OPT_LIMIT:
    case CLI_OPT_ORDER:
        cli->given |= CLI_GIVEN_QSET;
        break;
    default:
        cli->given |= CLI_GIVEN_SUBMIT;
        break;
    }
    switch (ch) {
    case 'q':
        cli->opts.queue = arg;
        break;
    case 'p':
        errno = 0;
        p = strtoll(arg, &end, 10);
        if (errno != 0 || *end != '\0' || end == arg || p < INT32_MIN || p > INT32_MAX)
            return cli_usage_error("--priority: '%s' is not a 32-bit integer", arg);
        cli->opts.priority = (int32_t)p;
        break;
    case 'w':
        cli->wait = 1;
        break;
    case 't':
        if ((r = cli_opt_num("--timeout", arg, INT64_MAX, &v)) == 0)
            cli->timeout_ms = (int64_t)v;
        break;
    case CLI_OPT_DELAY:
        r = cli_opt_num("--delay", arg, MSG_MS_MAX, &cli->opts.delay_ms);
        break;
    case CLI_OPT_JOB_TIMEOUT:
        r = cli_opt_num("--job-timeout", arg, MSG_MS_MAX, &cli->opts.timeout_ms);
        break;
    case CLI_OPT_RETRIES:
        if ((r = cli_opt_num("--retries", arg, MSG_RETRIES_MAX, &v)) == 0)
            cli->opts.max_retries = (uint32_t)v;
        break;
    case CLI_OPT_UNIQUE:
        cli->opts.unique_key = arg;
        break;
    case CLI_OPT_BLOCK:
        r = cli_opt_num("--block", arg, MSG_MS_MAX, &cli->opts.block_ms);
        break;
    case CLI_OPT_RUNNING:
        cli->running = 1;
        break;
    case CLI_OPT_LIMIT:
        if ((r = cli_opt_num("--limit", arg, MSG_QUEUE_LIMIT_MAX, &v)) == 0)
            cli->limit = (int64_t)v;
        break;
    case CLI_OPT_ORDER:
        if (strcmp(arg, "fifo") != 0 && strcmp(arg, "lifo") != 0)
            return cli_usage_error("--order: '%s' is not 'fifo' or 'lifo'", arg);
        cli->order = arg;
        break;
    }
    return r;
}

/* Parse argv into cli. Returns -1 to go on, or an exit status. */
static int
cli_parse(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"queue", required_argument, NULL, 'q'},
        {"priority", required_argument, NULL, 'p'},
        {"wait", no_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"delay", required_argument, NULL, CLI_OPT_DELAY},
        {"job-timeout", required_argument, NULL, CLI_OPT_JOB_TIMEOUT},
        {"retries", required_argument, NULL, CLI_OPT_RETRIES},
        {"unique", required_argument, NULL, CLI_OPT_UNIQUE},
        {"block", required_argument, NULL, CLI_OPT_BLOCK},
        {"running", no_argument, NULL, CLI_OPT_RUNNING},
        {"limit", required_argument, NULL, CLI_OPT_LIMIT},
        {"order", required_argument, NULL, CLI_OPT_ORDER},
        {NULL, 0, NULL, 0},
    };
    int ch, r;

    while ((ch = getopt_long(argc, argv, "s:jhVq:p:wt:", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            cli->addr = optarg;
            break;
        case 'j':
            cli->json = 1;
            break;
        case 'h':
            cli_usage(stdout);
            return CLI_OK;
        case 'V':
            printf("forq %s\n", FORQ_VERSION_STRING);
            return CLI_OK;
        case '?': /* getopt_long has said what is wrong */
            return CLI_USAGE;
        default:
            if ((r = cli_parse_cmd_opt(cli, ch, optarg)) != 0)
                return r;
            break;
        }
    }
    if (optind >= argc)
        return cli_usage_error("no command given");
    cli->cmd = argv[optind];
    cli->args = argv + optind + 1;
    cli->nargs = argc - optind - 1;
    return -1;
}

/* Connect, with the failure message the user needs. */
static int
cli_connect(struct cli *cli)
{
    const char *msg;
    size_t n;
    int r;

    struct forq_connect_opts o = FORQ_CONNECT_OPTS_INIT;

    /* A token never goes on the command line, where ps shows it. */
    if ((o.token = getenv("FORQ_TOKEN")) != NULL && o.token[0] == '\0')
        o.token = NULL;
    if ((r = forq_connect_opts(cli->addr, &o, &cli->client)) == 0)
        return CLI_OK;
    if (r == FORQ_ERR_INVALID) {
        cli_err("%s", forq_errmsg());
        return CLI_USAGE;
    }
    /* libforq says "connect ADDR: why"; keep only the why. */
    msg = forq_errmsg();
    n = strlen(cli->addr);
    if (strncmp(msg, "connect ", 8) == 0 && strncmp(msg + 8, cli->addr, n) == 0 &&
        strncmp(msg + 8 + n, ": ", 2) == 0)
        msg += 8 + n + 2;
    cli_err("cannot connect to %s: %s", cli->addr, msg);
    return cli_exit_code(r);
}

int
main(int argc, char **argv)
{
    struct cli cli;
    size_t i;
    int r;

    memset(&cli, 0, sizeof(cli));
    cli.timeout_ms = -1;
    cli.limit = -1;
    if ((r = cli_parse(&cli, argc, argv)) >= 0)
        return r;
    for (i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
        if (strcmp(cli.cmd, cli_cmds[i].name) == 0)
            break;
    if (i == sizeof(cli_cmds) / sizeof(cli_cmds[0]))
        return cli_usage_error("unknown command '%s'", cli.cmd);
    if ((r = cli_check_args(&cli, &cli_cmds[i])) != 0)
        return r;
    if (cli.addr == NULL && (cli.addr = getenv("FORQ_SERVER")) != NULL && cli.addr[0] == '\0')
        cli.addr = NULL;
    if (cli.addr == NULL)
        cli.addr = CLI_DEFAULT_ADDR;
    if ((r = cli_connect(&cli)) != CLI_OK)
        return r;
    r = cli_cmds[i].run(&cli);
    forq_client_free(cli.client);
    if (fflush(stdout) != 0 && r == CLI_OK) {
        cli_err("cannot write the output: %s", strerror(errno));
        r = CLI_CONNECT;
    }
    return r;
}
