/*
 * test_metrics.c — daemon/metrics.c: histogram bucket placement at and
 * around every bound, exact totals under concurrent observers (with a
 * reader checking each snapshot meanwhile), the text exposition of a
 * hand-built STATS snapshot (specific lines, plus a validator of the format
 * run over every line), and the HTTP listener over real sockets: status
 * codes, headers, limits, close-on-exec, the pause after a failed accept,
 * and refused addresses.
 *
 * The HTTP tests run the event loop on a thread and talk to it with plain
 * blocking sockets. No assertion depends on timing; receive timeouts only
 * keep a broken listener from hanging the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "forq.h"
#include "metrics.h"
#include "msg.h"

/* ------------------------------------------------------------------ helpers */

/* The rendered text as a NUL-terminated string; the caller frees it. */
static char *
test_text(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);

    assert_non_null(s);
    assert_int_equal(evbuffer_remove(b, s, n), (int)n);
    s[n] = '\0';
    return s;
}

/* text holds line as a whole line. */
static void
test_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("missing line: %s", line);
}

/* ------------------------------------------------------------------ exposition validator */

#define TEST_MAX_FAMILIES 128

struct test_family {
    char name[128];
    char type[16];
    int helped;
};

/* State while checking one histogram family's samples. */
struct test_hist_state {
    double last_le;
    uint64_t last_bucket, inf;
    int nbuckets, has_inf, has_sum, has_count;
};

struct test_validator {
    struct test_family fam[TEST_MAX_FAMILIES];
    size_t nfam;
    struct test_family *cur; /* the family whose TYPE came last */
    struct test_hist_state h;
    size_t nsamples;
};

static int
test_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int
test_name_char(char c)
{
    return test_name_start(c) || (c >= '0' && c <= '9');
}

/* Length of the metric name at s, 0 when there is none. */
static size_t
test_name_len(const char *s)
{
    size_t n = 0;

    if (!test_name_start(s[0]))
        return 0;
    while (test_name_char(s[n]))
        n++;
    return n;
}

static struct test_family *
test_find_family(struct test_validator *v, const char *name, size_t n)
{
    for (size_t i = 0; i < v->nfam; i++)
        if (strlen(v->fam[i].name) == n && memcmp(v->fam[i].name, name, n) == 0)
            return &v->fam[i];
    return NULL;
}

static void
test_end_family(struct test_validator *v)
{
    struct test_family *f = v->cur;

    if (f == NULL || strcmp(f->type, "histogram") != 0)
        return;
    if (!v->h.has_inf || !v->h.has_sum || !v->h.has_count || v->h.nbuckets < 2)
        fail_msg("histogram %s lacks +Inf, _sum or _count", f->name);
}

/* "# HELP name text" or "# TYPE name type"; other comments pass. */
static void
test_check_comment(struct test_validator *v, const char *line)
{
    const char *p = line + 2;
    size_t n;
    struct test_family *f;
    int is_type = strncmp(line, "# TYPE ", 7) == 0;

    if (!is_type && strncmp(line, "# HELP ", 7) != 0)
        return;
    p = line + 7;
    if ((n = test_name_len(p)) == 0 || p[n] != ' ')
        fail_msg("bad comment line: %s", line);
    f = test_find_family(v, p, n);
    if (f == NULL) {
        assert_true(v->nfam < TEST_MAX_FAMILIES && n < sizeof(f->name));
        f = &v->fam[v->nfam++];
        memcpy(f->name, p, n);
    }
    if (!is_type) {
        if (f->helped++)
            fail_msg("second HELP: %s", line);
        return;
    }
    if (f->type[0] != '\0')
        fail_msg("second TYPE for one family: %s", line);
    p += n + 1;
    if (strcmp(p, "counter") && strcmp(p, "gauge") && strcmp(p, "histogram") &&
        strcmp(p, "summary") && strcmp(p, "untyped"))
        fail_msg("unknown type: %s", line);
    if (strcmp(p, "counter") == 0 && (n < 6 || memcmp(f->name + n - 6, "_total", 6) != 0))
        fail_msg("a counter not named *_total: %s", line);
    test_end_family(v);
    snprintf(f->type, sizeof(f->type), "%s", p);
    v->cur = f;
    memset(&v->h, 0, sizeof(v->h));
    v->h.last_le = -1e300;
}

/*
 * Parse {name="value",...} at *pp into the value of le (if present). Label
 * values may hold only \\, \" and \n escapes and no raw newline.
 */
static void
test_check_labels(const char **pp, const char *line, char *le, size_t lelen)
{
    const char *p = *pp;

    le[0] = '\0';
    if (*p != '{')
        return;
    p++;
    while (*p != '}') {
        size_t n = 0, k = 0;
        int is_le;
        char val[512];

        if (!((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z') || p[0] == '_'))
            fail_msg("bad label name: %s", line);
        while (test_name_char(p[n]) && p[n] != ':')
            n++;
        is_le = n == 2 && memcmp(p, "le", 2) == 0;
        p += n;
        if (p[0] != '=' || p[1] != '"')
            fail_msg("expected =\" after a label name: %s", line);
        for (p += 2; *p != '"'; p++) {
            if (*p == '\0')
                fail_msg("unterminated label value: %s", line);
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    fail_msg("bad escape in a label value: %s", line);
            }
            if (k + 1 < sizeof(val))
                val[k++] = *p;
        }
        val[k] = '\0';
        if (is_le) {
            assert_true(k < lelen);
            memcpy(le, val, k + 1);
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            fail_msg("expected , or } after a label: %s", line);
    }
    *pp = p + 1;
}

/* A histogram family's samples: buckets by rising le, never decreasing, +Inf == _count. */
static void
test_check_hist_sample(struct test_validator *v, const char *suffix, const char *le, double val,
                       const char *line)
{
    struct test_hist_state *h = &v->h;

    if (strcmp(suffix, "_bucket") == 0) {
        double b;
        char *end;

        if (le[0] == '\0' || h->has_inf)
            fail_msg("bucket without le or after +Inf: %s", line);
        b = strtod(le, &end);
        if (*end != '\0' || b <= h->last_le)
            fail_msg("le does not parse or does not rise: %s", line);
        if ((uint64_t)val < h->last_bucket)
            fail_msg("cumulative bucket decreased: %s", line);
        h->last_le = b;
        h->last_bucket = (uint64_t)val;
        h->nbuckets++;
        if (strcmp(le, "+Inf") == 0) {
            h->has_inf = 1;
            h->inf = (uint64_t)val;
        }
    } else if (strcmp(suffix, "_sum") == 0) {
        h->has_sum = 1;
    } else if (strcmp(suffix, "_count") == 0) {
        if (!h->has_inf || (uint64_t)val != h->inf)
            fail_msg("_count differs from the +Inf bucket: %s", line);
        h->has_count = 1;
    } else {
        fail_msg("unexpected histogram sample: %s", line);
    }
}

static void
test_check_sample(struct test_validator *v, const char *line)
{
    const char *p = line, *suffix = "";
    size_t n = test_name_len(line);
    char le[64], *end;
    double val;
    struct test_family *f;

    if (n == 0)
        fail_msg("bad metric name: %s", line);
    p += n;
    test_check_labels(&p, line, le, sizeof(le));
    if (*p != ' ' || p[1] == '\0')
        fail_msg("expected ' value' after the name and labels: %s", line);
    val = strtod(p + 1, &end);
    if (*end != '\0')
        fail_msg("value does not parse as a float (or a timestamp follows): %s", line);
    /* Which family: the name itself, or a histogram's name plus a suffix. */
    f = test_find_family(v, line, n);
    if (f == NULL || strcmp(f->type, "histogram") == 0) {
        static const char *const sfx[] = {"_bucket", "_sum", "_count"};

        f = NULL;
        for (size_t i = 0; i < 3 && f == NULL; i++) {
            size_t k = strlen(sfx[i]);

            if (n > k && memcmp(line + n - k, sfx[i], k) == 0 &&
                (f = test_find_family(v, line, n - k)) != NULL && strcmp(f->type, "histogram") == 0)
                suffix = sfx[i];
            else
                f = NULL;
        }
    }
    if (f == NULL || f->type[0] == '\0')
        fail_msg("sample without a TYPE line before it: %s", line);
    if (f != v->cur)
        fail_msg("sample away from its family's block: %s", line);
    if (strcmp(f->type, "histogram") == 0)
        test_check_hist_sample(v, suffix, le, val, line);
    v->nsamples++;
}

/* Check every line of text; returns how many samples it holds. */
static size_t
test_check_exposition(const char *text)
{
    struct test_validator *v = calloc(1, sizeof(*v));
    size_t nsamples;
    char line[1024];

    assert_non_null(v);
    assert_true(text[0] != '\0' && text[strlen(text) - 1] == '\n');
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p);

        assert_true(n > 0 && n < sizeof(line));
        memcpy(line, p, n);
        line[n] = '\0';
        if (line[0] == '#')
            test_check_comment(v, line);
        else
            test_check_sample(v, line);
        p = nl + 1;
    }
    test_end_family(v);
    for (size_t i = 0; i < v->nfam; i++)
        if (v->fam[i].type[0] == '\0' || !v->fam[i].helped)
            fail_msg("family %s lacks TYPE or HELP", v->fam[i].name);
    nsamples = v->nsamples;
    free(v);
    return nsamples;
}

/* ------------------------------------------------------------------ histograms */

static const uint64_t test_bounds[] = {10, 11, 100, 1000};

/* How many observations landed in bucket i alone (not cumulative). */
static uint64_t
test_bucket(const struct metrics_hist *h, size_t i)
{
    struct metrics_hist_snap s;

    metrics_hist_read(h, &s);
    return s.cumulative[i] - (i > 0 ? s.cumulative[i - 1] : 0);
}

/* One value into a fresh copy of h's layout lands in bucket want. */
static void
test_place(const struct metrics_hist *layout, uint64_t v, size_t want)
{
    struct metrics_hist h;
    struct metrics_hist_snap s;

    assert_int_equal(metrics_hist_init(&h, layout->name, layout->help, layout->bounds,
                                       layout->nbounds, layout->decimals),
                     0);
    metrics_hist_observe(&h, v);
    metrics_hist_read(&h, &s);
    for (size_t i = 0; i <= h.nbounds; i++) {
        if (test_bucket(&h, i) != (i == want)) {
            fail_msg("%s: after observing %" PRIu64 ", bucket %zu holds %" PRIu64
                     "; only bucket %zu should hold it",
                     h.name, v, i, test_bucket(&h, i), want);
        }
        assert_int_equal(s.cumulative[i], i >= want);
    }
    assert_int_equal(s.count, 1);
    assert_int_equal(s.sum, v);
}

/* Each bound is inclusive (le): b goes in its own bucket, b + 1 in the next. */
static void
test_hist_bucket_at_bounds(void **state)
{
    struct metrics m;
    const struct metrics_hist *all[] = {&m.job_wait, &m.job_run, &m.store_commit, &m.store_batch};

    (void)state;
    metrics_init(&m);
    for (size_t k = 0; k < 4; k++) {
        const struct metrics_hist *h = all[k];

        assert_true(h->nbounds >= 10 && h->nbounds <= METRICS_HIST_MAX);
        test_place(h, 0, 0);
        test_place(h, UINT64_MAX, h->nbounds);
        for (size_t i = 0; i < h->nbounds; i++) {
            uint64_t b = h->bounds[i];

            test_place(h, b, i);
            test_place(h, b + 1, i + 1);
            if (b - 1 > (i > 0 ? h->bounds[i - 1] : 0) || (i == 0 && b > 0))
                test_place(h, b - 1, i);
        }
    }
    /* Adjacent bounds: 10 and 11 own one value each. */
    {
        struct metrics_hist h;

        assert_int_equal(metrics_hist_init(&h, "t", "t", test_bounds, 4, 0), 0);
        test_place(&h, 9, 0);
        test_place(&h, 10, 0);
        test_place(&h, 11, 1);
        test_place(&h, 12, 2);
        test_place(&h, 1000, 3);
        test_place(&h, 1001, 4);
    }
}

static void
test_hist_sum_count(void **state)
{
    struct metrics_hist h;
    struct metrics_hist_snap s;
    /* 0, 5, 10 and the backward span in le=10; 11 in le=11; 50, 100; 1000; 5000 above. */
    static const uint64_t want[5] = {4, 1, 2, 1, 1};

    (void)state;
    assert_int_equal(metrics_hist_init(&h, "t", "t", test_bounds, 4, 0), 0);
    metrics_hist_observe(&h, 0);
    metrics_hist_observe(&h, 5);
    metrics_hist_observe(&h, 10);
    metrics_hist_observe(&h, 11);
    metrics_hist_observe(&h, 50);
    metrics_hist_observe(&h, 100);
    metrics_hist_observe(&h, 5000);
    metrics_hist_observe_span(&h, 100, 1100); /* 1000 */
    metrics_hist_observe_span(&h, 200, 100);  /* clock stepped back: 0 */
    metrics_hist_read(&h, &s);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(test_bucket(&h, i), want[i]);
    assert_int_equal(s.count, 9);
    assert_int_equal(s.cumulative[4], 9);
    assert_int_equal(s.sum, 0 + 5 + 10 + 11 + 50 + 100 + 5000 + 1000 + 0);
}

static void
test_hist_init_rejects(void **state)
{
    static const uint64_t flat[] = {1, 2, 2}, down[] = {5, 4};
    static const uint64_t many[METRICS_HIST_MAX + 1] = {1,  2,  3,  4,  5,  6,  7,  8, 9,
                                                        10, 11, 12, 13, 14, 15, 16, 17};
    struct metrics_hist h;

    (void)state;
    assert_int_equal(metrics_hist_init(&h, "t", "t", flat, 3, 0), FORQ_ERR_INVALID);
    assert_int_equal(metrics_hist_init(&h, "t", "t", down, 2, 0), FORQ_ERR_INVALID);
    assert_int_equal(metrics_hist_init(&h, "t", "t", many, 0, 0), FORQ_ERR_INVALID);
    assert_int_equal(metrics_hist_init(&h, "t", "t", many, METRICS_HIST_MAX + 1, 0),
                     FORQ_ERR_INVALID);
    assert_int_equal(metrics_hist_init(&h, "t", "t", many, METRICS_HIST_MAX, 0), 0);
    assert_int_equal(metrics_hist_init(&h, "t", "t", many, 2, 10), FORQ_ERR_INVALID);
}

#define TEST_THREADS    4
#define TEST_PER_THREAD 100000

struct test_conc {
    struct metrics_hist h;
    atomic_int done; /* observers finished */
    atomic_int bad;  /* inconsistent snapshots the reader saw */
    atomic_long reads;
};

struct test_observer {
    struct test_conc *c;
    int t;
};

/* Observer t: values spread over every bucket, including above the last bound. */
static uint64_t
test_conc_value(int t, int i)
{
    return (uint64_t)((i * 7 + t) % 1500);
}

static void *
test_conc_observer(void *arg)
{
    struct test_observer *o = arg;

    for (int i = 0; i < TEST_PER_THREAD; i++)
        metrics_hist_observe(&o->c->h, test_conc_value(o->t, i));
    atomic_fetch_add(&o->c->done, 1);
    return NULL;
}

/* Snapshots taken mid-flight must still be cumulative, with count == +Inf, never shrinking. */
static void *
test_conc_reader(void *arg)
{
    struct test_conc *c = arg;
    uint64_t last = 0;

    while (atomic_load(&c->done) < TEST_THREADS) {
        struct metrics_hist_snap s;

        metrics_hist_read(&c->h, &s);
        for (size_t i = 1; i <= c->h.nbounds; i++)
            if (s.cumulative[i] < s.cumulative[i - 1])
                atomic_fetch_add(&c->bad, 1);
        if (s.count != s.cumulative[c->h.nbounds] || s.count < last)
            atomic_fetch_add(&c->bad, 1);
        last = s.count;
        atomic_fetch_add(&c->reads, 1);
    }
    return NULL;
}

static void
test_hist_concurrent_exact(void **state)
{
    struct test_conc *c = calloc(1, sizeof(*c));
    pthread_t obs[TEST_THREADS], rd;
    struct test_observer o[TEST_THREADS];
    struct metrics_hist ref;
    struct metrics_hist_snap got, want;

    (void)state;
    assert_non_null(c);
    assert_int_equal(metrics_hist_init(&c->h, "t", "t", test_bounds, 4, 0), 0);
    assert_int_equal(metrics_hist_init(&ref, "t", "t", test_bounds, 4, 0), 0);
    for (int t = 0; t < TEST_THREADS; t++)
        for (int i = 0; i < TEST_PER_THREAD; i++)
            metrics_hist_observe(&ref, test_conc_value(t, i));
    assert_int_equal(pthread_create(&rd, NULL, test_conc_reader, c), 0);
    for (int t = 0; t < TEST_THREADS; t++) {
        o[t] = (struct test_observer){c, t};
        assert_int_equal(pthread_create(&obs[t], NULL, test_conc_observer, &o[t]), 0);
    }
    for (int t = 0; t < TEST_THREADS; t++)
        assert_int_equal(pthread_join(obs[t], NULL), 0);
    assert_int_equal(pthread_join(rd, NULL), 0);
    metrics_hist_read(&c->h, &got);
    metrics_hist_read(&ref, &want);
    assert_int_equal(got.count, (uint64_t)TEST_THREADS * TEST_PER_THREAD);
    assert_int_equal(got.sum, want.sum);
    for (size_t i = 0; i <= 4; i++)
        assert_int_equal(got.cumulative[i], want.cumulative[i]);
    assert_true(test_bucket(&c->h, 4) > 0); /* the values did reach +Inf */
    assert_int_equal(atomic_load(&c->bad), 0);
    assert_true(atomic_load(&c->reads) > 0);
    free(c);
}

/* ------------------------------------------------------------------ rendering */

/* A queue name that needs every escape (the wire does not allow it; the renderer must cope). */
#define TEST_ODD_QUEUE "we\"ird\\na\nme"
#define TEST_ODD_LABEL "we\\\"ird\\\\na\\nme"

struct test_stats {
    struct msg_stats st;
    struct msg_queue_stats q[2];
    struct msg_worker_stats w[3];
};

static void
test_stats_fill(struct test_stats *ts)
{
    memset(ts, 0, sizeof(*ts));
    ts->st.server = msg_str_c("forqd 9.9.9");
    ts->st.durability = msg_str_c("full");
    ts->st.uptime_ms = 12345;
    ts->st.connections = 3;
    ts->st.queued = 5;
    ts->st.running = 2;
    ts->st.scheduled = 4;
    ts->st.submitted = 100;
    ts->st.succeeded = 80;
    ts->st.failed = 7;
    ts->st.cancelled = 6;
    ts->st.retried = 9;
    ts->st.store_commits = 40;
    ts->st.store_fsyncs = 41;
    ts->st.store_records = 200;
    ts->st.store_failures = 1;
    ts->st.store_purged = 50;
    ts->q[0] = (struct msg_queue_stats){.name = msg_str_c("default"),
                                        .queued = 2,
                                        .running = 1,
                                        .submitted = 60,
                                        .succeeded = 50,
                                        .failed = 3,
                                        .cancelled = 2,
                                        .scheduled = 1,
                                        .retried = 4,
                                        .paused = 0,
                                        .limit = 0,
                                        .order = msg_str_c("fifo")};
    ts->q[1] = (struct msg_queue_stats){.name = msg_str_c(TEST_ODD_QUEUE),
                                        .queued = 3,
                                        .running = 1,
                                        .submitted = 40,
                                        .succeeded = 30,
                                        .failed = 4,
                                        .cancelled = 4,
                                        .scheduled = 3,
                                        .retried = 5,
                                        .paused = 1,
                                        .limit = 8,
                                        .order = msg_str_c("lifo")};
    ts->w[0] =
        (struct msg_worker_stats){.slot = 0, .pid = 10, .state = msg_str_c("idle"), .restarts = 1};
    ts->w[1] = (struct msg_worker_stats){
        .slot = 1, .pid = 11, .state = msg_str_c("busy"), .job = 42, .restarts = 2};
    ts->w[2] =
        (struct msg_worker_stats){.slot = 2, .pid = 12, .state = msg_str_c("idle"), .restarts = 3};
    ts->st.nqueues = 2;
    ts->st.queues = ts->q;
    ts->st.nworkers = 3;
    ts->st.workers = ts->w;
}

static char *
test_render(const struct metrics *m, const struct msg_stats *st)
{
    struct evbuffer *b = evbuffer_new();
    char *text;

    assert_non_null(b);
    assert_int_equal(metrics_render(m, st, b), 0);
    text = test_text(b);
    evbuffer_free(b);
    return text;
}

static void
test_render_lines(void **state)
{
    static const char *const want[] = {
        "# TYPE forq_up gauge",
        "forq_up 1",
        "forq_info{server=\"forqd 9.9.9\",durability=\"full\"} 1",
        "forq_uptime_seconds 12.345",
        "forq_connections 3",
        "forq_jobs_queued 5",
        "forq_jobs_running 2",
        "forq_jobs_scheduled 4",
        "# TYPE forq_jobs_submitted_total counter",
        "forq_jobs_submitted_total 100",
        "forq_jobs_succeeded_total 80",
        "forq_jobs_failed_total 7",
        "forq_jobs_cancelled_total 6",
        "forq_jobs_retried_total 9",
        "forq_store_commits_total 40",
        "forq_store_fsyncs_total 41",
        "forq_store_records_total 200",
        "forq_store_failures_total 1",
        "forq_store_purged_total 50",
        "forq_queue_depth{queue=\"default\"} 2",
        "forq_queue_depth{queue=\"" TEST_ODD_LABEL "\"} 3",
        "forq_queue_running{queue=\"default\"} 1",
        "forq_queue_scheduled{queue=\"" TEST_ODD_LABEL "\"} 3",
        "forq_queue_paused{queue=\"default\"} 0",
        "forq_queue_paused{queue=\"" TEST_ODD_LABEL "\"} 1",
        "forq_queue_limit{queue=\"default\"} 0",
        "forq_queue_limit{queue=\"" TEST_ODD_LABEL "\"} 8",
        "forq_queue_jobs_submitted_total{queue=\"default\"} 60",
        "forq_queue_jobs_succeeded_total{queue=\"" TEST_ODD_LABEL "\"} 30",
        "forq_queue_jobs_failed_total{queue=\"default\"} 3",
        "forq_queue_jobs_cancelled_total{queue=\"" TEST_ODD_LABEL "\"} 4",
        "forq_queue_jobs_retried_total{queue=\"default\"} 4",
        "# TYPE forq_workers gauge",
        "forq_workers{state=\"idle\"} 2",
        "forq_workers{state=\"busy\"} 1",
        "forq_workers{state=\"starting\"} 0",
        "forq_workers{state=\"retiring\"} 0",
        "forq_worker_restarts_total 6",
        "# TYPE forq_job_wait_seconds histogram",
        "forq_job_wait_seconds_bucket{le=\"0.0005\"} 1",
        "forq_job_wait_seconds_bucket{le=\"0.001\"} 2",
        "forq_job_wait_seconds_bucket{le=\"0.0025\"} 2",
        "forq_job_wait_seconds_bucket{le=\"60\"} 3",
        "forq_job_wait_seconds_bucket{le=\"+Inf\"} 4",
        "forq_job_wait_seconds_sum 3600.001501",
        "forq_job_wait_seconds_count 4",
        "forq_job_run_seconds_bucket{le=\"0.001\"} 0",
        "forq_job_run_seconds_bucket{le=\"2.5\"} 1",
        "forq_job_run_seconds_bucket{le=\"300\"} 1",
        "forq_job_run_seconds_sum 2.5",
        "forq_job_run_seconds_count 1",
        "forq_store_commit_seconds_bucket{le=\"0.0001\"} 0",
        "forq_store_commit_seconds_bucket{le=\"10\"} 0",
        "forq_store_commit_seconds_bucket{le=\"+Inf\"} 0",
        "forq_store_commit_seconds_sum 0",
        "forq_store_commit_seconds_count 0",
        "# TYPE forq_store_batch_size histogram",
        "forq_store_batch_size_bucket{le=\"1\"} 1",
        "forq_store_batch_size_bucket{le=\"4\"} 2",
        "forq_store_batch_size_bucket{le=\"1024\"} 3",
        "forq_store_batch_size_bucket{le=\"4096\"} 3",
        "forq_store_batch_size_bucket{le=\"+Inf\"} 4",
        "forq_store_batch_size_sum 6004",
        "forq_store_batch_size_count 4",
    };
    struct test_stats ts;
    struct metrics m;
    char *text;

    (void)state;
    test_stats_fill(&ts);
    metrics_init(&m);
    metrics_hist_observe(&m.job_wait, 500);        /* le 0.0005 exactly */
    metrics_hist_observe(&m.job_wait, 1000);       /* le 0.001 */
    metrics_hist_observe(&m.job_wait, 60000000);   /* le 60 */
    metrics_hist_observe(&m.job_wait, 3540000001); /* above the last bound */
    metrics_hist_observe(&m.job_run, 2500000);
    metrics_hist_observe(&m.store_batch, 1);
    metrics_hist_observe(&m.store_batch, 3);
    metrics_hist_observe(&m.store_batch, 1000);
    metrics_hist_observe(&m.store_batch, 5000); /* above 4096 */
    text = test_render(&m, &ts.st);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        test_has_line(text, want[i]);
    assert_true(test_check_exposition(text) > 100);
    free(text);
}

/* Every line passes the validator, also with no queues, no workers and odd worker states. */
static void
test_render_valid_and_edge_cases(void **state)
{
    struct test_stats ts;
    struct metrics m;
    char *text;

    (void)state;
    metrics_init(&m);
    test_stats_fill(&ts);
    ts.w[1].state = msg_str_c("zom\"bie");
    ts.w[2].state = msg_str_c("zom\"bie");
    text = test_render(&m, &ts.st);
    test_check_exposition(text);
    test_has_line(text, "forq_workers{state=\"zom\\\"bie\"} 2");
    test_has_line(text, "forq_workers{state=\"idle\"} 1");
    test_has_line(text, "forq_workers{state=\"busy\"} 0");
    free(text);

    memset(&ts.st, 0, sizeof(ts.st)); /* nothing at all: empty strings, no arrays */
    text = test_render(&m, &ts.st);
    test_check_exposition(text);
    test_has_line(text, "forq_up 1");
    test_has_line(text, "# TYPE forq_queue_depth gauge");
    test_has_line(text, "forq_workers{state=\"idle\"} 0");
    test_has_line(text, "forq_worker_restarts_total 0");
    test_has_line(text, "forq_info{server=\"\",durability=\"\"} 1");
    free(text);
}

/* The validator itself catches what it is there for. */
static void
test_render_validator_self_check(void **state)
{
    (void)state;
    assert_int_equal(test_check_exposition("# HELP a_total x\n# TYPE a_total counter\na_total 1\n"
                                           "# HELP h x\n# TYPE h histogram\n"
                                           "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                                           "h_sum 3.5\nh_count 2\n"),
                     5);
}

/* Appends to what out holds already. */
static void
test_render_appends(void **state)
{
    struct evbuffer *b = evbuffer_new();
    struct test_stats ts;
    struct metrics m;
    char *text;

    (void)state;
    metrics_init(&m);
    test_stats_fill(&ts);
    assert_non_null(b);
    assert_int_equal(evbuffer_add(b, "# before\n", 9), 0);
    assert_int_equal(metrics_render(&m, &ts.st, b), 0);
    text = test_text(b);
    assert_int_equal(strncmp(text, "# before\n# HELP forq_up ", 24), 0);
    test_check_exposition(text);
    free(text);
    evbuffer_free(b);
}

/* ------------------------------------------------------------------ HTTP */

struct test_http {
    struct event_base *base;
    struct metrics_http *mh;
    pthread_t loop;
    unsigned port;
    struct metrics m;
    struct test_stats ts;
    atomic_int fail; /* the next fills fail with this code */
    atomic_int fills;
};

static int
test_fill(void *arg, struct evbuffer *out)
{
    struct test_http *fx = arg;
    int e = atomic_load(&fx->fail);

    atomic_fetch_add(&fx->fills, 1);
    if (e != 0) {
        evbuffer_add(out, "partial", 7); /* must not reach the client */
        return e;
    }
    return metrics_render(&fx->m, &fx->ts.st, out);
}

static void *
test_loop(void *arg)
{
    struct test_http *fx = arg;

    event_base_dispatch(fx->base);
    return NULL;
}

static int
test_http_setup(void **state)
{
    struct test_http *fx = calloc(1, sizeof(*fx));
    char why[256];

    assert_non_null(fx);
    assert_non_null(fx->base = event_base_new());
    metrics_init(&fx->m);
    test_stats_fill(&fx->ts);
    assert_int_equal(
        metrics_http_new(fx->base, "tcp://127.0.0.1:0", test_fill, fx, &fx->mh, why, sizeof(why)),
        0);
    assert_int_equal(sscanf(metrics_http_name(fx->mh), "http://127.0.0.1:%u/metrics", &fx->port),
                     1);
    assert_true(fx->port > 0 && fx->port < 65536);
    assert_int_equal(pthread_create(&fx->loop, NULL, test_loop, fx), 0);
    *state = fx;
    return 0;
}

static int
test_http_teardown(void **state)
{
    struct test_http *fx = *state;

    event_base_loopbreak(fx->base);
    pthread_join(fx->loop, NULL);
    metrics_http_free(fx->mh);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* A client socket, not connected yet. */
static int
test_socket(void)
{
    struct timeval tv = {10, 0}; /* a guard against hanging, never a measurement */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

static void
test_connect_fd(int fd, unsigned port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
}

static int
test_connect(unsigned port)
{
    int fd = test_socket();

    test_connect_fd(fd, port);
    return fd;
}

static void
test_send_all(int fd, const char *req, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, req, n, MSG_NOSIGNAL);

        if (k <= 0)
            return; /* the server may close early (limits); the answer tells */
        req += k;
        n -= (size_t)k;
    }
}

/* A response as read: status, the header block, the body. */
struct test_resp {
    char *raw; /* malloc'd, NUL-terminated */
    size_t len;
    int status; /* 0: no status line came */
    char *body; /* into raw */
    size_t bodylen;
};

/* Read until the peer closes or, with want_len, until Content-Length bytes of body came. */
static void
test_read_resp(int fd, int want_len, struct test_resp *r)
{
    size_t cap = 1 << 16;

    memset(r, 0, sizeof(*r));
    assert_non_null(r->raw = malloc(cap + 1));
    for (;;) {
        ssize_t k;
        char *hdr_end;

        if (r->len == cap)
            assert_non_null(r->raw = realloc(r->raw, (cap *= 2) + 1));
        k = recv(fd, r->raw + r->len, cap - r->len, 0);
        if (k <= 0)
            break;
        r->len += (size_t)k;
        r->raw[r->len] = '\0';
        if (want_len && (hdr_end = strstr(r->raw, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(r->raw, "\r\nContent-Length: ");

            if (cl != NULL && cl < hdr_end &&
                r->len >= (size_t)(hdr_end + 4 - r->raw) + strtoul(cl + 18, NULL, 10))
                break;
        }
    }
    r->raw[r->len] = '\0';
    if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = 0;
    if ((r->body = strstr(r->raw, "\r\n\r\n")) != NULL) {
        r->body += 4;
        r->bodylen = r->len - (size_t)(r->body - r->raw);
    }
}

/* One request on a fresh connection, HTTP/1.0 style: the server closes after answering. */
static void
test_request(struct test_http *fx, const char *req, struct test_resp *r)
{
    int fd = test_connect(fx->port);

    test_send_all(fd, req, strlen(req));
    test_read_resp(fd, 0, r);
    close(fd);
}

/* The value of header name (case-insensitive), copied into buf; NULL if absent. */
static const char *
test_header(const struct test_resp *r, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);

    assert_non_null(r->body);
    for (const char *p = strstr(r->raw, "\r\n"); p != NULL && p < r->body - 2;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 2 + n + 1, *e = strstr(v, "\r\n");

            while (*v == ' ')
                v++;
            snprintf(buf, len, "%.*s", (int)(e - v), v);
            return buf;
        }
    }
    return NULL;
}

static void
test_http_get_metrics(void **state)
{
    struct test_http *fx = *state;
    struct test_resp r;
    char ct[128];

    test_request(fx, "GET /metrics HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(test_header(&r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "\nforq_up 1\n"));
    test_has_line(r.body, "forq_queue_depth{queue=\"default\"} 2");
    test_check_exposition(r.body);
    free(r.raw);

    /* A query string does not change the resource. */
    test_request(fx, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    free(r.raw);
}

/* HEAD: the headers of the GET answer, Content-Length included, and no body. */
static void
test_http_head(void **state)
{
    struct test_http *fx = *state;
    struct test_resp r;
    char buf[128];

    test_request(fx, "HEAD /metrics HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(test_header(&r, "Content-Type", buf, sizeof(buf)));
    assert_string_equal(buf, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(test_header(&r, "Content-Length", buf, sizeof(buf)));
    assert_true(strtoul(buf, NULL, 10) > 1000);
    assert_non_null(r.body);
    assert_int_equal(r.bodylen, 0);
    free(r.raw);
}

static void
test_http_not_found(void **state)
{
    struct test_http *fx = *state;
    static const char *const reqs[] = {
        "GET /nope HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET /metrics/ HTTP/1.0\r\n\r\n",
        "POST /nope HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    };
    struct test_resp r;
    char ct[128];

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        test_request(fx, reqs[i], &r);
        assert_int_equal(r.status, 404);
        assert_non_null(test_header(&r, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "text/plain; charset=utf-8");
        /* One line of text. */
        assert_non_null(r.body);
        assert_true(r.bodylen > 1 && r.body[r.bodylen - 1] == '\n');
        assert_ptr_equal(strchr(r.body, '\n'), r.body + r.bodylen - 1);
        free(r.raw);
    }
}

static void
test_http_method_not_allowed(void **state)
{
    struct test_http *fx = *state;
    static const char *const reqs[] = {
        "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        "PUT /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        "DELETE /metrics HTTP/1.0\r\n\r\n",
        "OPTIONS /metrics HTTP/1.0\r\n\r\n",
        "PATCH /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    };
    struct test_resp r;
    char allow[64];

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        test_request(fx, reqs[i], &r);
        assert_int_equal(r.status, 405);
        assert_non_null(test_header(&r, "Allow", allow, sizeof(allow)));
        assert_string_equal(allow, "GET, HEAD");
        free(r.raw);
    }
    assert_int_equal(atomic_load(&fx->fills), 0); /* nothing was rendered for them */
}

static void
test_http_fill_fails(void **state)
{
    struct test_http *fx = *state;
    struct test_resp r;

    atomic_store(&fx->fail, FORQ_ERR_NOMEM);
    test_request(fx, "GET /metrics HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    assert_non_null(r.body);
    assert_null(strstr(r.body, "partial"));
    free(r.raw);
    atomic_store(&fx->fail, 0);
    test_request(fx, "GET /metrics HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    free(r.raw);
}

/* Headers over the limit are refused: an error status or a closed connection, never 200. */
static void
test_http_headers_too_big(void **state)
{
    struct test_http *fx = *state;
    static const char head[] = "GET /metrics HTTP/1.0\r\nX-Big: ";
    size_t n = 64 * 1024;
    char *req = malloc(sizeof(head) + n + 8);
    struct test_resp r;
    int fd;

    assert_non_null(req);
    memcpy(req, head, sizeof(head) - 1);
    memset(req + sizeof(head) - 1, 'a', n);
    strcpy(req + sizeof(head) - 1 + n, "\r\n\r\n");
    fd = test_connect(fx->port);
    test_send_all(fd, req, strlen(req));
    test_read_resp(fd, 0, &r);
    close(fd);
    assert_int_not_equal(r.status, 200);
    free(r.raw);

    /* A body over the limit is refused as soon as its length is known. */
    fd = test_connect(fx->port);
    snprintf(req, 64, "POST /metrics HTTP/1.0\r\nContent-Length: %zu\r\n\r\n", n);
    test_send_all(fd, req, strlen(req));
    test_read_resp(fd, 0, &r);
    close(fd);
    assert_int_equal(r.status, 413); /* refused on its Content-Length, before any body */
    free(r.raw);
    free(req);
}

/* Keep-alive works, and every socket the listener holds is close-on-exec. */
static void
test_http_keepalive_cloexec(void **state)
{
    struct test_http *fx = *state;
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    struct test_resp r;
    struct dirent *de;
    DIR *d;
    int fd = test_connect(fx->port), nsock = 0;

    for (int i = 0; i < 2; i++) {
        test_send_all(fd, req, sizeof(req) - 1);
        test_read_resp(fd, 1, &r);
        assert_int_equal(r.status, 200);
        test_check_exposition(r.body);
        free(r.raw);
    }
    /* The connection is open on both ends now: listener, accepted socket, ours. */
    assert_non_null(d = opendir("/proc/self/fd"));
    while ((de = readdir(d)) != NULL) {
        char path[300], link[64];
        ssize_t n;
        int f;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
            continue;
        link[n] = '\0';
        if (strncmp(link, "socket:", 7) != 0)
            continue;
        f = atoi(de->d_name);
        if (f == dirfd(d))
            continue;
        nsock++;
        if (!(fcntl(f, F_GETFD) & FD_CLOEXEC))
            fail_msg("socket fd %d is inheritable", f);
    }
    closedir(d);
    assert_true(nsock >= 3);
    close(fd);
}

/* Does the file at fd (read from its start, no new descriptor) contain s? */
static int
test_fd_has(int fd, const char *s)
{
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, s) != NULL;
}

/*
 * accept(2) failing with EMFILE pauses the listener (logged, no spinning)
 * and it comes back by itself: the waiting connection is answered once
 * descriptors are available again. The descriptor limit is lowered to the
 * lowest free descriptor, so the next accept fails and nothing else here
 * needs a new one until it is restored. stderr goes to a file meanwhile to
 * see the listener's warning.
 */
static void
test_http_accept_error_pauses(void **state)
{
    struct test_http *fx = *state;
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char logname[] = "/tmp/forq-metrics-log-XXXXXX";
    int logfd = mkstemp(logname), saved = dup(2), fd = test_socket(), lowest;
    struct rlimit rl, low;
    struct test_resp r;

    assert_true(logfd >= 0 && saved >= 0);
    unlink(logname);
    assert_true((lowest = fcntl(saved, F_DUPFD, 0)) >= 0);
    close(lowest);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    low = rl;
    low.rlim_cur = (rlim_t)lowest;
    assert_int_equal(dup2(logfd, 2), 2);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    test_connect_fd(fd, fx->port); /* queued in the backlog; accepting it fails */
    for (int i = 0; i < 10000 && !test_fd_has(logfd, "pausing"); i++)
        usleep(1000); /* a guard, not a measurement: the loop thread logs soon */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    assert_true(test_fd_has(logfd, "metrics listener: accept: "));
    close(logfd);
    test_send_all(fd, req, sizeof(req) - 1);
    test_read_resp(fd, 0, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    free(r.raw);
}

static void
test_http_bad_addresses(void **state)
{
    static const char *const bad[] = {
        "unix:///tmp/forq-metrics.sock", "tcp://256.1.1.1:1", "garbage",
        "tcp://127.0.0.1:99999",         "tcp://127.0.0.1",   "",
    };
    struct event_base *base = event_base_new();
    struct metrics_http *mh = (struct metrics_http *)1, *mh2;
    char why[256], name[128];
    unsigned port;

    (void)state;
    assert_non_null(base);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(metrics_http_new(base, bad[i], test_fill, NULL, &mh, why, sizeof(why)),
                         FORQ_ERR_INVALID);
        assert_null(mh);
        assert_true(strlen(why) > 10);
    }
    assert_int_equal(
        metrics_http_new(base, "unix:///tmp/x", test_fill, NULL, &mh, why, sizeof(why)),
        FORQ_ERR_INVALID);
    assert_non_null(strstr(why, "TCP"));

    /* A port in use: the system's reason comes back. */
    assert_int_equal(
        metrics_http_new(base, "tcp://127.0.0.1:0", test_fill, NULL, &mh, why, sizeof(why)), 0);
    assert_int_equal(sscanf(metrics_http_name(mh), "http://127.0.0.1:%u/metrics", &port), 1);
    snprintf(name, sizeof(name), "tcp://127.0.0.1:%u", port);
    assert_int_equal(metrics_http_new(base, name, test_fill, NULL, &mh2, why, sizeof(why)),
                     FORQ_ERR_SYSTEM);
    assert_null(mh2);
    assert_non_null(strstr(why, name));
    metrics_http_free(mh);
    metrics_http_free(NULL);
    event_base_free(base);
}

/* IPv6 literals bind and name themselves in brackets (skipped without IPv6). */
static void
test_http_ipv6_name(void **state)
{
    struct event_base *base = event_base_new();
    struct metrics_http *mh;
    char why[256];
    int e;

    (void)state;
    assert_non_null(base);
    e = metrics_http_new(base, "tcp://[::1]:0", test_fill, NULL, &mh, why, sizeof(why));
    if (e == FORQ_ERR_SYSTEM || e == FORQ_ERR_INVALID) {
        event_base_free(base);
        skip(); /* no IPv6 loopback here */
    }
    assert_int_equal(e, 0);
    assert_int_equal(strncmp(metrics_http_name(mh), "http://[::1]:", 13), 0);
    assert_non_null(strstr(metrics_http_name(mh), "]:"));
    assert_null(strstr(metrics_http_name(mh), "]:0/"));
    metrics_http_free(mh);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_bucket_at_bounds),
        cmocka_unit_test(test_hist_sum_count),
        cmocka_unit_test(test_hist_init_rejects),
        cmocka_unit_test(test_hist_concurrent_exact),
        cmocka_unit_test(test_render_validator_self_check),
        cmocka_unit_test(test_render_lines),
        cmocka_unit_test(test_render_valid_and_edge_cases),
        cmocka_unit_test(test_render_appends),
        cmocka_unit_test_setup_teardown(test_http_get_metrics, test_http_setup, test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_head, test_http_setup, test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_not_found, test_http_setup, test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_method_not_allowed, test_http_setup,
                                        test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_fill_fails, test_http_setup, test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_headers_too_big, test_http_setup,
                                        test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_keepalive_cloexec, test_http_setup,
                                        test_http_teardown),
        cmocka_unit_test_setup_teardown(test_http_accept_error_pauses, test_http_setup,
                                        test_http_teardown),
        cmocka_unit_test(test_http_bad_addresses),
        cmocka_unit_test(test_http_ipv6_name),
    };

    /* The HTTP tests stop the loop thread from the test thread. */
    if (evthread_use_pthreads() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
