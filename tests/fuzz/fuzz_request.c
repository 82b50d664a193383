/*
 * fuzz_request.c — libFuzzer target for the daemon's request path: the real
 * forqd_core (server, conn, ops, jobs, watch, the SQLite store on a temp dir,
 * one forked worker) fed one client connection per input.
 *
 * Process-wide servers are started on first use (small limits, 1 worker,
 * durability normal unless FORQ_FUZZ_DURABILITY says otherwise, data under a
 * mkdtemp directory in /tmp, listening on a unix socket there). The harness
 * drives its event loop itself (the daemon's own signal events are removed,
 * so that the fuzzer keeps SIGINT and friends).
 *
 * Input: byte 0 holds flags, the rest is what the client sends.
 *   0x01 RAW       the rest is the byte stream as is (headers included);
 *                  otherwise it is a list of frame bodies separated by the
 *                  two bytes c1 c1 (0xc1 is never valid msgpack), and the
 *                  harness writes each with its 4-byte length; c1 c2
 *                  separates too, and is a sync point: the client waits for
 *                  the answers to everything before it (bounded) before it
 *                  writes on. After a sync point, a job id 1..64 in WAIT,
 *                  STATUS, CANCEL or WATCH is relative: k names the k-th job
 *                  a SUBMIT of this input was answered with (the frame is
 *                  re-encoded), so inputs can work on their own jobs in a
 *                  long-lived server; in a fresh one the k-th job is job k;
 *   0x02 AUTH      the server requires a token ("fuzz-token") for this
 *                  connection, as a reload that sets auth_token would;
 *   0x04 LISTENER  connect to the server's unix socket (the accept path)
 *                  instead of handing one end of a socketpair to conn_new;
 *   0x08 TRICKLE   write the stream in small pieces (sizes drawn from a hash
 *                  of the input) with loop turns in between;
 *   0x10 HANGUP    shutdown(SHUT_WR) once everything is written;
 *   0x20 LINGER    do not hang up once every frame is answered: wait for the
 *                  daemon to close (frame, handshake, idle timeouts) or go quiet;
 *   0x40 SMALLDB   talk to a second server whose store holds only ~4 KiB of
 *                  job rows (max_db_size FZ_SMALL_DB): submissions and
 *                  outcomes fail to be stored at times (storage errors,
 *                  unstored jobs).
 * Before writing, every complete frame is decoded as the daemon will (proto/),
 * to know which rids and ops were asked; a SUBMIT of the built-in task
 * "alloc" is rewritten to "upper" (same length) so that no input makes a
 * worker touch up to 1 TiB of memory.
 *
 * Per input the harness then runs the loop (bounded: until the daemon has
 * closed, or answered every frame, or been quiet for FZ_IDLE_MS, at most
 * FZ_TOTAL_MS), reads the replies and checks, aborting on any violation:
 *  - every reply is a whole frame that decodes as a response (proto/) to an
 *    op that was asked with its rid, or else is an error response;
 *  - error codes are negative codes that travel on the wire;
 *  - WATCH events (more) answer a WATCH; no rid gets more last answers than
 *    requests were sent with it, and there are no more last answers in all
 *    than complete frames (+1: a notice about the stream itself);
 *  - what a success carries is consistent: a WAIT, STATUS or CANCEL answers
 *    about the job it named; WAIT and WATCH give final jobs only, with the
 *    result bytes of a succeeded one, STATUS and CANCEL without; CANCEL
 *    gives a cancelled job; failed and cancelled jobs have an error; new
 *    job ids grow; STATS and QUEUE figures fit one worker;
 *  - once the client has closed, the daemon lets go of the connection;
 *  - a fresh connection still gets its PING answered.
 * Jobs running longer than FZ_RUN_MAX_MS (sleep, fib) are cancelled after
 * the input, so that one input does not hold the only worker for an hour.
 * FORQ_FUZZ_RESET_EVERY=N starts a fresh server (and data directory) every N
 * inputs (default 1000; 1: every input, as the corpus replay test does).
 * FORQ_FUZZ_LOG=err|warn|info|debug sets the daemon's log level (err);
 * FORQ_FUZZ_VERBOSE=1 prints one line per input (what was sent and answered);
 * FORQ_FUZZ_STRICT=0 tolerates the two findings fixed in conn.c (see
 * fz_deaf_conn and fz_frame_limit), to fuzz a daemon from before the fix;
 * by default they abort like any other.
 *
 * The same file is linked into fuzz_request_replay (replay.c), which runs
 * the corpus as a regression test under any compiler.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "forq.h"
#include "frame.h"
#include "job.h"
#include "jobs.h"
#include "log.h"
#include "msg.h"
#include "fuzz_util.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_RAW      0x01
#define FZ_AUTH     0x02
#define FZ_LISTENER 0x04
#define FZ_TRICKLE  0x08
#define FZ_HANGUP   0x10
#define FZ_LINGER   0x20
#define FZ_SMALLDB  0x40

#define FZ_SEP0     0xc1 /* framed mode: c1 c1 ends a body, c1 c2 ends one and syncs */
#define FZ_SEP1     0xc1
#define FZ_SYNC     0xc2
#define FZ_JOBS_MAX 64 /* relative job ids: 1..FZ_JOBS_MAX */

#define FZ_TOKEN      "fuzz-token"
#define FZ_SMALL_DB   "12K" /* FZ_SMALLDB's max_db_size: 4 pages, the schema's and ~4 KiB of rows */
#define FZ_MAX_FRAME  2048  /* the server's max_frame */
#define FZ_IDLE_MS    30    /* quiet this long with answers missing: stop waiting */
#define FZ_TOTAL_MS   500   /* longest wait for one input's answers */
#define FZ_REAP_MS    2000  /* longest wait for the daemon to let go of a closed connection */
#define FZ_PROBE_MS   2000  /* longest wait for the PING of the fresh connection */
#define FZ_DEAF_MS    20    /* unless strict, close a deaf connection (fz_deaf_conn) after this */
#define FZ_RUN_MAX_MS 200   /* jobs running longer are cancelled between inputs */
#define FZ_BATCH      "4"   /* --worker-batch: with 1 worker, at most 4 jobs are running */
#define FZ_RUNNING    4
#define FZ_REPLY_MAX  (1u << 24)
#define FZ_PROBE_RID  0x70726f6265ull /* "probe" */

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FUZZ_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: fuzz check failed: ", __FILE__, __LINE__);                         \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ------------------------------------------------------------------ process-wide state */

/* One daemon: the usual one, or one whose store is nearly full (FZ_SMALLDB). */
struct fz_server {
    int small_db;      /* max_db_size FZ_SMALL_DB: inserts and finishes fail at times */
    char data_dir[96]; /* dir/data-K-N, N = generation */
    char sock[96];     /* dir/sock-K */
    char *argv[40];    /* the server keeps argv for SIGHUP: static */
    char args[40][128];
    int argc;
    unsigned generation;
    unsigned long inputs; /* since the server started */
    uint64_t max_id;      /* the newest job id SUBMIT answered since the server started */
    struct server *srv;
    struct event *tick; /* bounds one loop turn */
};

struct fz_state {
    int ready;
    char dir[64];  /* mkdtemp: /tmp/forq-fuzz-XXXXXX */
    char conf[96]; /* dir/forqd.conf (empty: no /etc/forq/forqd.conf either) */
    unsigned long reset_every;
    int log_level;
    int verbose;                 /* FORQ_FUZZ_VERBOSE: one line per input on stderr */
    int strict;                  /* unless FORQ_FUZZ_STRICT=0: the fixed findings abort too */
    unsigned long deaf;          /* paused connections closed for the daemon (fz_deaf_conn) */
    struct fz_server servers[2]; /* started on first use */
    struct msg_decoder dec;      /* requests (pre-scan) and replies */
    msgpack_sbuffer probe;       /* a PING frame */
};

static struct fz_state fz;
static struct fz_server *sv; /* the one this input talks to */

static uint64_t
fz_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
fz_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* One bounded turn of the daemon's loop: whatever is ready, or at most ~1 ms of waiting. */
static void
fz_turn(void)
{
    struct timeval tv = {0, 1000};

    evtimer_add(sv->tick, &tv);
    FUZZ_CHECK(event_base_loop(sv->srv->base, EVLOOP_ONCE) >= 0);
}

static int
fz_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void
fz_rm_rf(const char *path)
{
    (void)nftw(path, fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* One argument: flag followed by v ("--workers=", "1"). */
static void
fz_arg(const char *flag, const char *v)
{
    FUZZ_CHECK(sv->argc < 39);
    snprintf(sv->args[sv->argc], sizeof(sv->args[0]), "%s%s", flag, v);
    sv->argv[sv->argc] = sv->args[sv->argc];
    sv->argc++;
    sv->argv[sv->argc] = NULL;
}

static void
fz_server_start(void)
{
    const char *dur = getenv("FORQ_FUZZ_DURABILITY");
    struct config *cfg = malloc(sizeof(*cfg));
    char err[512];

    FUZZ_CHECK(cfg != NULL);
    sv->generation++;
    snprintf(sv->data_dir, sizeof(sv->data_dir), "%s/data-%d-%u", fz.dir, sv->small_db,
             sv->generation);
    snprintf(sv->sock, sizeof(sv->sock), "%s/sock-%d", fz.dir, sv->small_db);
    sv->argc = 0;
    fz_arg("forqd", "");
    fz_arg("--config=", fz.conf);
    fz_arg("--listen=unix://", sv->sock);
    fz_arg("--data=", sv->data_dir);
    fz_arg("--durability=", dur != NULL && *dur != '\0' ? dur : "normal");
    fz_arg("--workers=", "1");
    fz_arg("--max-frame=", "2048");
    fz_arg("--max-payload=", "1024");
    fz_arg("--max-result=", "512"); /* below max_payload: echo can exceed it */
    fz_arg("--max-queued=", "16");
    fz_arg("--max-queues=", "8");
    fz_arg("--max-inflight=", "8");
    fz_arg("--max-connections=", "16");
    fz_arg("--result-ttl=", "1");
    fz_arg("--result-cache=", "4"); /* older results are read back from the store */
    fz_arg("--retry-backoff-ms=", "1");
    fz_arg("--retry-backoff-max-ms=", "8");
    fz_arg("--max-jobs-per-worker=", "200");
    fz_arg("--worker-batch=", FZ_BATCH);
    fz_arg("--handshake-timeout-ms=", "10"); /* all three below FZ_IDLE_MS */
    fz_arg("--frame-timeout-ms=", "10");
    fz_arg("--idle-timeout-ms=", "25");
    fz_arg("--drain-timeout-ms=", "0");
    fz_arg("--queue-limit=", "one=1");
    fz_arg("--queue-order=", "lifo=lifo");
    fz_arg("--queue-paused=", "paused");
    if (sv->small_db)
        fz_arg("--max-db-size=", FZ_SMALL_DB);

    config_init(cfg);
    if (config_parse_args(cfg, sv->argc, sv->argv, err, sizeof(err)) != 0)
        FUZZ_FAIL("config: %s", err);
    cfg->log_level = fz.log_level;
    log_init((enum log_level)fz.log_level);
    if (server_new(cfg, sv->argc, sv->argv, &sv->srv) != 0) /* takes cfg in every case */
        FUZZ_FAIL("server_new failed (see the log above)");
    /* The harness owns the signals: give SIGINT, SIGTERM and SIGHUP back to the fuzzer. */
    for (int i = 0; i < 3; i++)
        if (sv->srv->sig_ev[i] != NULL)
            event_del(sv->srv->sig_ev[i]);
    sv->tick = evtimer_new(sv->srv->base, fz_tick_cb, NULL);
    FUZZ_CHECK(sv->tick != NULL);
    sv->inputs = 0;
    sv->max_id = 0;
}

static void
fz_server_stop(void)
{
    if (sv->srv == NULL)
        return;
    event_free(sv->tick);
    sv->tick = NULL;
    sv->srv->cfg->auth_token = NULL; /* never owned: see fz_auth */
    server_free(sv->srv);
    sv->srv = NULL;
    fz_rm_rf(sv->data_dir);
}

static void
fz_atexit(void)
{
    if (fz.deaf > 0)
        fprintf(stderr,
                "fuzz_request: %lu connection(s) did not notice their peer leave while "
                "paused (see fz_deaf_conn; FORQ_FUZZ_STRICT=0 tolerated it)\n",
                fz.deaf);
    for (int i = 0; i < 2; i++) {
        sv = &fz.servers[i];
        fz_server_stop();
    }
    msg_decoder_fini(&fz.dec);
    msgpack_sbuffer_destroy(&fz.probe);
    fz_rm_rf(fz.dir);
}

static void
fz_init(void)
{
    const char *s;
    struct msg_request ping = {0};
    FILE *f;

    if (fz.ready)
        return;
    snprintf(fz.dir, sizeof(fz.dir), "/tmp/forq-fuzz-XXXXXX");
    FUZZ_CHECK(mkdtemp(fz.dir) != NULL);
    snprintf(fz.conf, sizeof(fz.conf), "%s/forqd.conf", fz.dir);
    FUZZ_CHECK((f = fopen(fz.conf, "w")) != NULL);
    fclose(f);
    fz.reset_every = (s = getenv("FORQ_FUZZ_RESET_EVERY")) != NULL ? strtoul(s, NULL, 10) : 1000;
    fz.verbose = (s = getenv("FORQ_FUZZ_VERBOSE")) != NULL && *s != '\0' && *s != '0';
    fz.strict = (s = getenv("FORQ_FUZZ_STRICT")) == NULL || strcmp(s, "0") != 0;
    fz.log_level = LOG_LEVEL_ERR;
    if ((s = getenv("FORQ_FUZZ_LOG")) != NULL && log_level_parse(s) >= 0)
        fz.log_level = log_level_parse(s);
    FUZZ_CHECK(msg_decoder_init(&fz.dec) == 0);
    msgpack_sbuffer_init(&fz.probe);
    ping.op = MSG_OP_PING;
    ping.rid = FZ_PROBE_RID;
    FUZZ_CHECK(msg_encode_request(&fz.probe, &ping) == 0);
    fz.servers[1].small_db = 1;
    fz.ready = 1;
    atexit(fz_atexit);
}

/*
 * The token is switched per input, as a reload that sets or clears
 * auth_token would: set before the input's connection is made (conn.c may
 * decide at conn_new whether it must authenticate), cleared once it is gone.
 * The string is the harness's: fz_server_stop takes it back before
 * config_fini could free it.
 */
static void
fz_auth(int on)
{
    static char token[] = FZ_TOKEN;

    sv->srv->cfg->auth_token = on ? token : NULL;
}

/* ------------------------------------------------------------------ client side */

static int
fz_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A connection the daemon serves; returns the client's end. */
static int
fz_connect(int via_listener)
{
    struct conn *c;
    int pair[2];

    if (via_listener) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        uint64_t before = sv->srv->next_conn_id, until = fz_now_ms() + FZ_REAP_MS;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        FUZZ_CHECK(fd >= 0);
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sv->sock);
        FUZZ_CHECK(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
        FUZZ_CHECK(fz_nonblock(fd) == 0);
        /* Accepted before anything else: the reap check below must see this connection. */
        while (sv->srv->next_conn_id == before) {
            if (fz_now_ms() > until)
                FUZZ_FAIL("the daemon did not accept a connection on its unix socket");
            fz_turn();
        }
        return fd;
    }
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    FUZZ_CHECK(fz_nonblock(pair[0]) == 0 && fz_nonblock(pair[1]) == 0);
    /* As server_accept_cb does for an accepted socket. */
    FUZZ_CHECK(conn_new(sv->srv, pair[1], "fuzz", &c) == 0);
    return pair[0];
}

/*
 * A connection whose reads are paused (max_inflight requests in flight) and
 * that has nothing to write: before conn.c watched for the hangup while
 * paused (EV_CLOSED), nothing noticed that its peer had gone, so it stayed
 * until its WAITs ended, which may be never (regress-paused-conn-ignores-hangup).
 */
static struct conn *
fz_deaf_conn(void)
{
    struct conn *c;

    TAILQ_FOREACH(c, &sv->srv->conns, link)
    if (c->paused && !c->closing && conn_out_len(c) == 0)
        return c;
    return NULL;
}

/* After the client closed: the daemon must free its side (bounded wait). */
static void
fz_wait_reaped(const char *what)
{
    uint64_t start = fz_now_ms(), until = start + FZ_REAP_MS;
    struct conn *c;

    while (sv->srv->nconns > 0 || !TAILQ_EMPTY(&sv->srv->reap)) {
        /*
         * Fixed (see fz_deaf_conn); with FORQ_FUZZ_STRICT=0, hang up for the
         * daemon and go on fuzzing. Its WAITs may still end (a timeout) and let it see the
         * hangup, so this is a guess that saves the wait, not a finding.
         */
        if (!fz.strict && fz_now_ms() - start > FZ_DEAF_MS && (c = fz_deaf_conn()) != NULL) {
            fz.deaf++;
            conn_close(c, "fuzz: the peer left while reads were paused");
            continue;
        }
        if (fz_now_ms() > until) {
            if ((c = fz_deaf_conn()) != NULL)
                FUZZ_FAIL("%s: the client closed %d ms ago, but the daemon's side is paused with "
                          "%zu request(s) in flight and has not noticed",
                          what, FZ_REAP_MS, c->inflight);
            FUZZ_FAIL("%s: the client closed, but the daemon still holds %zu connection(s) "
                      "after %d ms",
                      what, sv->srv->nconns, FZ_REAP_MS);
        }
        fz_turn();
    }
}

/* ------------------------------------------------------------------ what was asked */

struct fz_req {
    uint64_t rid;
    int op;     /* enum msg_op, or -1: refused (only an error can answer it) */
    int waits;  /* a SUBMIT with wait_ms: answered when its job ends, or later */
    size_t end; /* where the frame ends in the stream */
};

/* One rid, with what was asked under it and what came back. */
struct fz_rid {
    uint64_t rid;
    unsigned nreq, nlast;
    unsigned ops;     /* bit per op asked with this rid */
    uint64_t subject; /* the job a WAIT, STATUS or CANCEL asked about, as sent */
    int nsubjects;    /* how many of those this rid asked (1: subject is the one) */
    int waits;        /* a SUBMIT under this rid had wait_ms */
};

struct fz_input {
    uint8_t *stream;
    size_t len;
    size_t *syncs; /* stream offsets where the client waits for its answers */
    size_t nsyncs;
    struct fz_req *reqs;
    size_t nreqs; /* complete frames before the first bad header */
    int bad_tail; /* a bad header follows them: the daemon answers it and hangs up */
    struct fz_rid *rids;
    size_t nrids;
    uint64_t jobs[FZ_JOBS_MAX]; /* ids SUBMIT answered, in order: relative id k is jobs[k-1] */
    size_t njobs;
};

/* A SUBMIT of "alloc" becomes one of "upper": its payload could be 1 TiB to touch. */
static void
fz_defuse(const struct msg_request *req, uint8_t *body, size_t len)
{
    const struct msg_str *t = &req->u.submit.task;

    if (req->op != MSG_OP_SUBMIT || !msg_str_eq(*t, "alloc"))
        return;
    if ((const uint8_t *)t->ptr >= body && (const uint8_t *)t->ptr + t->len <= body + len)
        memcpy((uint8_t *)t->ptr, "upper", 5);
}

static int
fz_rid_cmp(const void *a, const void *b)
{
    const struct fz_rid *x = a, *y = b;

    return x->rid < y->rid ? -1 : x->rid > y->rid;
}

static struct fz_rid *
fz_rid_find(struct fz_input *in, uint64_t rid)
{
    struct fz_rid key = {.rid = rid};

    if (in->nrids == 0)
        return NULL;
    return bsearch(&key, in->rids, in->nrids, sizeof(key), fz_rid_cmp);
}

/*
 * The longest body the daemon reads next. PROTOCOL.md promises max_frame,
 * and before the token has passed CONN_HELLO_FRAME_MAX too, so the smaller
 * of the two. conn.c once applied CONN_HELLO_FRAME_MAX alone before the
 * token, so with max_frame below it (2048 here) a stranger's frame of
 * 2049..4096 bytes was read and answered (regress-preauth-frame-over-max-
 * frame); FORQ_FUZZ_STRICT=0 expects that old behaviour.
 */
static size_t
fz_frame_limit(int authed)
{
    if (authed)
        return FZ_MAX_FRAME;
    if (fz.strict && CONN_HELLO_FRAME_MAX > FZ_MAX_FRAME)
        return FZ_MAX_FRAME;
    return CONN_HELLO_FRAME_MAX;
}

/* Walk the frames as the daemon will, decoding each request. */
static void
fz_prescan(struct fz_input *in, int auth)
{
    size_t pos = 0, most = in->len / FRAME_HDR_LEN + 1, i, j;
    int authed = !auth;
    uint32_t n;

    in->reqs = calloc(most, sizeof(*in->reqs));
    in->rids = calloc(most, sizeof(*in->rids));
    FUZZ_CHECK(in->reqs != NULL && in->rids != NULL);
    while (in->len - pos >= FRAME_HDR_LEN) {
        struct msg_request req;
        uint8_t *body = in->stream + pos + FRAME_HDR_LEN;
        int e;

        if (frame_hdr_decode(in->stream + pos, fz_frame_limit(authed), &n) != 0) {
            in->bad_tail = 1;
            break;
        }
        if (in->len - pos - FRAME_HDR_LEN < n)
            break;
        e = msg_decode_request(&fz.dec, body, n, &req);
        if (e == 0)
            fz_defuse(&req, body, n);
        if (e == 0 && req.op == MSG_OP_HELLO && req.u.hello.version == MSG_PROTO_VERSION &&
            msg_str_eq(req.u.hello.token, FZ_TOKEN))
            authed = 1;
        pos += FRAME_HDR_LEN + n;
        if (fz.verbose)
            fprintf(stderr, "fuzz_request:   frame %zu: %u bytes, rid %llu, %s%s%s\n", in->nreqs, n,
                    (unsigned long long)req.rid, e == 0 ? msg_op_name(req.op) : forq_errname(e),
                    e == 0 ? "" : ": ", e == 0 ? "" : fz.dec.why);
        in->reqs[in->nreqs].rid = req.rid;
        in->reqs[in->nreqs].op = e == 0 ? req.op : -1;
        in->reqs[in->nreqs].waits = e == 0 && req.op == MSG_OP_SUBMIT && req.u.submit.wait_ms > 0;
        in->reqs[in->nreqs].end = pos;
        in->nreqs++;
    }
    /* Distinct rids, sorted. */
    for (i = 0; i < in->nreqs; i++) {
        in->rids[i].rid = in->reqs[i].rid;
    }
    qsort(in->rids, in->nreqs, sizeof(*in->rids), fz_rid_cmp);
    for (i = 0, j = 0; i < in->nreqs; i++)
        if (j == 0 || in->rids[j - 1].rid != in->rids[i].rid)
            in->rids[j++].rid = in->rids[i].rid;
    in->nrids = j;
    for (i = 0; i < in->nreqs; i++) {
        struct fz_rid *r = fz_rid_find(in, in->reqs[i].rid);

        r->nreq++;
        if (in->reqs[i].op >= 0)
            r->ops |= 1u << in->reqs[i].op;
        r->waits |= in->reqs[i].waits;
    }
}

/* The client's bytes: as is, or each separated body with its header. */
static void
fz_build(const uint8_t *data, size_t size, int raw, struct fz_input *in)
{
    size_t i, start;

    memset(in, 0, sizeof(*in));
    in->stream = malloc(size * 3 + 8); /* framed: 4 header bytes per body of >= 0 + 2 sep */
    in->syncs = malloc((size / 2 + 1) * sizeof(*in->syncs));
    FUZZ_CHECK(in->stream != NULL && in->syncs != NULL);
    if (raw) {
        memcpy(in->stream, data, size);
        in->len = size;
        return;
    }
    if (size == 0)
        return;
    for (i = 0, start = 0; i <= size; i++) {
        int sep = i + 1 < size && data[i] == FZ_SEP0 &&
                  (data[i + 1] == FZ_SEP1 || data[i + 1] == FZ_SYNC);

        if (i < size && !sep)
            continue;
        frame_hdr_encode(in->stream + in->len, (uint32_t)(i - start));
        memcpy(in->stream + in->len + FRAME_HDR_LEN, data + start, i - start);
        in->len += FRAME_HDR_LEN + (i - start);
        if (sep && data[i + 1] == FZ_SYNC)
            in->syncs[in->nsyncs++] = in->len;
        i++; /* skip the second separator byte */
        start = i + 1;
    }
}

static void
fz_input_free(struct fz_input *in)
{
    free(in->stream);
    free(in->syncs);
    free(in->reqs);
    free(in->rids);
}

/* Relative job ids: k in 1..njobs names the k-th job SUBMIT answered on this connection. */
static int
fz_map_id(const struct fz_input *in, uint64_t *id)
{
    if (*id < 1 || *id > in->njobs)
        return 0;
    *id = in->jobs[*id - 1];
    return 1;
}

/*
 * Append the frame body[0..n) to out, with the job ids it names made
 * absolute (fz_map_id) when it has any: then re-encoded, else as it came.
 * Before a sync point nothing has been answered, so this changes nothing and
 * ids mean what they say; in a fresh server (replay) the k-th job is job k
 * unless a SUBMIT was de-duplicated, so most inputs mean the same in both.
 */
static void
fz_put_frame(struct fz_input *in, const uint8_t *hdr, size_t n, msgpack_sbuffer *out)
{
    const uint8_t *body = hdr + FRAME_HDR_LEN;
    struct msg_request req;
    uint64_t *ids = NULL, *subject = NULL;
    int changed = 0;

    if (msg_decode_request(&fz.dec, body, n, &req) == 0) {
        switch (req.op) {
        case MSG_OP_WAIT:
            changed = fz_map_id(in, subject = &req.u.wait.id);
            break;
        case MSG_OP_STATUS:
            changed = fz_map_id(in, subject = &req.u.status.id);
            break;
        case MSG_OP_CANCEL:
            changed = fz_map_id(in, subject = &req.u.cancel.id);
            break;
        case MSG_OP_WATCH:
            FUZZ_CHECK((ids = malloc(req.u.watch.nids * sizeof(*ids))) != NULL);
            for (size_t i = 0; i < req.u.watch.nids; i++) {
                ids[i] = req.u.watch.ids[i];
                changed |= fz_map_id(in, &ids[i]);
            }
            req.u.watch.ids = ids;
            break;
        }
    }
    if (subject != NULL) {
        struct fz_rid *r = fz_rid_find(in, req.rid);

        if (r != NULL) {
            r->subject = *subject;
            r->nsubjects++;
        }
    }
    if (!changed || msg_encode_request(out, &req) != 0)
        FUZZ_CHECK(msgpack_sbuffer_write(out, (const char *)hdr, FRAME_HDR_LEN + n) == 0);
    free(ids);
}

/* The bytes to write for stream[a..b): its frames through fz_put_frame, the rest as is. */
static void
fz_segment(struct fz_input *in, size_t a, size_t b, msgpack_sbuffer *out)
{
    size_t pos = a;

    msgpack_sbuffer_clear(out);
    for (size_t i = 0; i < in->nreqs; i++) {
        const struct fz_req *r = &in->reqs[i];
        size_t start = i == 0 ? 0 : in->reqs[i - 1].end;

        if (start < a || r->end > b)
            continue;
        fz_put_frame(in, in->stream + start, r->end - start - FRAME_HDR_LEN, out);
        pos = r->end;
    }
    if (pos < b)
        FUZZ_CHECK(msgpack_sbuffer_write(out, (const char *)in->stream + pos, b - pos) == 0);
}

/* Complete frames that end at or before stream offset off. */
static size_t
fz_frames_before(const struct fz_input *in, size_t off)
{
    size_t n = 0;

    while (n < in->nreqs && in->reqs[n].end <= off)
        n++;
    return n;
}

/* ------------------------------------------------------------------ what came back */

struct fz_replies {
    struct frame_reader r;
    size_t nlast; /* frames without more */
    size_t nframes;
    int eof;
};

static int
fz_wire_code(int code)
{
    /* Codes the client library makes up never travel. */
    return code < 0 && code >= FORQ_ERR__LAST && code != FORQ_ERR_INVALID &&
           code != FORQ_ERR_DISCONNECTED && code != FORQ_ERR_CONNECT;
}

static void
fz_check_error(const struct msg_error *e, const char *where)
{
    if (e->code != 0 && !fz_wire_code(e->code))
        FUZZ_FAIL("%s: error code %d (%s) does not travel on the wire", where, (int)e->code,
                  forq_errname(e->code));
}

/*
 * A job snapshot as op answers it (with_result: WAIT and WATCH events carry
 * the result). op -1: the rid asked more than one of WAIT, STATUS and CANCEL,
 * whose answers decode alike, so only what holds for all of them is checked.
 */
static void
fz_check_job(const struct msg_job *job, int op)
{
    const char *name = op >= 0 ? msg_op_name(op) : "wait/status/cancel";

    if (job->id == 0 || job->state < 0 || job->state >= FORQ_STATE__COUNT)
        FUZZ_FAIL("%s: job snapshot with id %llu, state %d", name, (unsigned long long)job->id,
                  (int)job->state);
    if ((op == MSG_OP_WAIT || op == MSG_OP_WATCH) && !forq_state_is_final(job->state))
        FUZZ_FAIL("%s: job %llu answered while %s", name, (unsigned long long)job->id,
                  forq_state_name(job->state));
    if (op == MSG_OP_CANCEL && job->state != FORQ_STATE_CANCELLED)
        FUZZ_FAIL("cancel: job %llu answered as %s", (unsigned long long)job->id,
                  forq_state_name(job->state));
    if ((job->state == FORQ_STATE_FAILED || job->state == FORQ_STATE_CANCELLED) &&
        job->error.code == 0)
        FUZZ_FAIL("%s: job %llu is %s without an error", name, (unsigned long long)job->id,
                  forq_state_name(job->state));
    if (job->state == FORQ_STATE_SUCCEEDED && job->result_size > 512)
        FUZZ_FAIL("%s: job %llu has a result of %llu bytes, over max_result", name,
                  (unsigned long long)job->id, (unsigned long long)job->result_size);
    if (op < 0)
        return;
    if (op == MSG_OP_WAIT || op == MSG_OP_WATCH) {
        if (job->state == FORQ_STATE_SUCCEEDED && job->result.len != job->result_size)
            FUZZ_FAIL("%s: job %llu carries %zu result bytes of %llu", name,
                      (unsigned long long)job->id, job->result.len,
                      (unsigned long long)job->result_size);
    } else if (job->result.ptr != NULL) {
        FUZZ_FAIL("%s: job %llu carries its result", name, (unsigned long long)job->id);
    }
}

/* What a successful answer to op (asked under r) must hold. */
static void
fz_check_success(const struct msg_response *resp, int op, const struct fz_rid *r)
{
    if ((op == MSG_OP_WAIT || op == MSG_OP_STATUS || op == MSG_OP_CANCEL) && r != NULL &&
        r->nsubjects == 1 && resp->job.id != r->subject)
        FUZZ_FAIL("%s about job %llu answered with job %llu", msg_op_name(op),
                  (unsigned long long)r->subject, (unsigned long long)resp->job.id);
    switch (op) {
    case MSG_OP_HELLO:
        if (resp->hello.version != MSG_PROTO_VERSION || resp->hello.max_frame != FZ_MAX_FRAME)
            FUZZ_FAIL("hello: version %u, max_frame %llu", resp->hello.version,
                      (unsigned long long)resp->hello.max_frame);
        break;
    case MSG_OP_SUBMIT:
        /*
         * Ids are handed out in order and never reused. (A duplicate names an
         * older job, but maybe one whose own answer nobody read: not checked.)
         * A submit-and-wait is answered when its job ends or its wait_ms
         * passes, so SUBMITs sent after it may be answered first, with
         * larger ids (regress-fuzz-harness-submit-wait-answered-late).
         */
        if (resp->id == 0 ||
            (!resp->duplicate && resp->id <= sv->max_id && (r == NULL || !r->waits)))
            FUZZ_FAIL("submit: job id %llu%s, after ids up to %llu", (unsigned long long)resp->id,
                      resp->duplicate ? " (duplicate)" : "", (unsigned long long)sv->max_id);
        if (!resp->duplicate && resp->id > sv->max_id)
            sv->max_id = resp->id;
        break;
    case MSG_OP_WAIT:
    case MSG_OP_STATUS:
    case MSG_OP_CANCEL: {
        unsigned jobops = (1u << MSG_OP_WAIT) | (1u << MSG_OP_STATUS) | (1u << MSG_OP_CANCEL);
        unsigned asked = r != NULL ? r->ops & jobops : 0;

        fz_check_job(&resp->job, asked & (asked - 1) ? -1 : op); /* more than one asked: -1 */
        break;
    }
    case MSG_OP_WATCH:
        if (resp->more)
            fz_check_job(&resp->job, op);
        break;
    case MSG_OP_STATS:
        if (resp->stats.nworkers != 1 || resp->stats.running > FZ_RUNNING ||
            resp->stats.connections < 1 ||
            resp->stats.nqueues > 8 + 3)
            FUZZ_FAIL("stats: %zu workers, %llu running, %llu connections, %zu queues",
                      resp->stats.nworkers, (unsigned long long)resp->stats.running,
                      (unsigned long long)resp->stats.connections, resp->stats.nqueues);
        break;
    case MSG_OP_QUEUE:
        if (resp->queue.name.len == 0 || resp->queue.running > FZ_RUNNING)
            FUZZ_FAIL("queue: '%.*s' with %llu running", (int)resp->queue.name.len,
                      resp->queue.name.ptr, (unsigned long long)resp->queue.running);
        break;
    }
}

static void
fz_check_reply(struct fz_input *in, struct fz_replies *rp, const uint8_t *body, size_t len)
{
    struct msg_response resp;
    struct fz_rid *r;
    uint64_t rid;
    int op = -1, e;

    rp->nframes++;
    if (msg_peek_rid(body, len, &rid) != 0)
        FUZZ_FAIL("reply %zu has no readable rid", rp->nframes);
    r = fz_rid_find(in, rid);
    /*
     * Try the ops asked under this rid, WATCH first: only its table knows
     * `more`, and a WATCH event with a job would also decode as a WAIT answer.
     */
    if (r != NULL) {
        int i;

        for (i = 0; i < MSG_OP__COUNT; i++) {
            /* i: 0 -> WATCH, 1..WATCH -> the ops before it, then the ops after it */
            op = i == 0 ? MSG_OP_WATCH : i <= MSG_OP_WATCH ? i - 1 : i;
            if ((r->ops & (1u << op)) && msg_decode_response(&fz.dec, op, body, len, &resp) == 0)
                break;
        }
        if (i == MSG_OP__COUNT)
            op = -1;
    }
    if (op < 0) {
        /* Nothing asked under this rid decodes it: it must be an error. */
        op = MSG_OP_PING;
        if ((e = msg_decode_response(&fz.dec, op, body, len, &resp)) != 0)
            FUZZ_FAIL("reply %zu (rid %llu) does not decode as a response: %s (%s)", rp->nframes,
                      (unsigned long long)rid, forq_errname(e), fz.dec.why);
        if (resp.err.code == 0)
            FUZZ_FAIL("reply %zu: a success for rid %llu, which asked %s", rp->nframes,
                      (unsigned long long)rid, r == NULL ? "nothing" : "nothing it answers");
    }
    if (fz.verbose)
        fprintf(stderr, "fuzz_request:   reply rid %llu as %s%s: %s %s\n", (unsigned long long)rid,
                msg_op_name(op), resp.more ? " (more)" : "",
                resp.err.code ? forq_errname(resp.err.code) : "ok",
                resp.err.code ? ""
                : resp.job.id ? forq_state_name(resp.job.state)
                              : "");
    fz_check_error(&resp.err, "reply");
    if (resp.err.code == 0)
        fz_check_success(&resp, op, r);
    fz_check_error(&resp.job.error, "reply job.error");
    fz_check_error(&resp.job.last_error, "reply job.last_error");
    if (resp.more) {
        if (r == NULL || !(r->ops & (1u << MSG_OP_WATCH)))
            FUZZ_FAIL("reply %zu: an event (more) for rid %llu, which asked no WATCH", rp->nframes,
                      (unsigned long long)rid);
        return;
    }
    if (op == MSG_OP_SUBMIT && resp.err.code == 0 && in->njobs < FZ_JOBS_MAX)
        in->jobs[in->njobs++] = resp.id;
    rp->nlast++;
    if (rid != 0) {
        if (r == NULL)
            FUZZ_FAIL("reply %zu: an answer for rid %llu, never asked", rp->nframes,
                      (unsigned long long)rid);
        if (++r->nlast > r->nreq)
            FUZZ_FAIL("rid %llu: %u last answers for %u request(s)", (unsigned long long)rid,
                      r->nlast, r->nreq);
    }
    if (rp->nlast > in->nreqs + 1)
        FUZZ_FAIL("%zu last answers for %zu complete frames", rp->nlast, in->nreqs);
}

/* Read what the daemon has sent; returns the bytes read (EOF sets rp->eof). */
static size_t
fz_read(int fd, struct fz_input *in, struct fz_replies *rp)
{
    const uint8_t *body;
    size_t len, total = 0;
    uint8_t *space;
    ssize_t n;
    int e;

    while (!rp->eof) {
        FUZZ_CHECK(frame_reader_space(&rp->r, 65536, &space, &len) == 0);
        n = read(fd, space, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == ECONNRESET) {
            rp->eof = 1;
            break;
        }
        FUZZ_CHECK(n >= 0);
        if (n == 0) {
            rp->eof = 1;
            break;
        }
        frame_reader_commit(&rp->r, (size_t)n);
        total += (size_t)n;
    }
    while ((e = frame_reader_next(&rp->r, &body, &len)) == 0 && body != NULL)
        fz_check_reply(in, rp, body, len);
    if (e != 0)
        FUZZ_FAIL("the daemon sent a bad frame header: %s", forq_errname(e));
    /* A daemon that hung up must have done so between frames. */
    if (rp->eof && rp->r.len > rp->r.off)
        FUZZ_FAIL("the daemon closed in the middle of a frame (%zu bytes left over)",
                  rp->r.len - rp->r.off);
    return total;
}

/* ------------------------------------------------------------------ one input */

/* Write up to n bytes; returns how many went (0 when the socket is full). */
static size_t
fz_write(int fd, const uint8_t *p, size_t n)
{
    ssize_t w;

    do
        w = send(fd, p, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EPIPE || errno == ECONNRESET))
        return 0;
    FUZZ_CHECK(w >= 0);
    return (size_t)w;
}

static void
fz_session(struct fz_input *in, unsigned flags, uint64_t seed)
{
    struct fz_replies rp;
    msgpack_sbuffer seg;
    uint64_t start = fz_now_ms(), quiet_since = start, now;
    size_t seg_end = 0, seg_pos = 0, next_sync = 0;
    int fd, hung_up = 0, written = 0;

    memset(&rp, 0, sizeof(rp));
    frame_reader_init(&rp.r, FZ_REPLY_MAX);
    msgpack_sbuffer_init(&seg);
    fd = fz_connect(flags & FZ_LISTENER);
    for (;;) {
        size_t want, got;

        /* Next segment: up to the next sync point, once what came before is answered. */
        if (seg_pos == seg.size && !written) {
            if (seg_end == in->len) {
                written = 1;
            } else if (seg_end == 0 || rp.nlast >= fz_frames_before(in, seg_end) ||
                       fz_now_ms() - quiet_since > FZ_IDLE_MS) {
                size_t a = seg_end;

                seg_end = next_sync < in->nsyncs ? in->syncs[next_sync++] : in->len;
                fz_segment(in, a, seg_end, &seg);
                seg_pos = 0;
                quiet_since = fz_now_ms();
            }
        }
        if ((want = seg.size - seg_pos) > 0) {
            if (flags & FZ_TRICKLE) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                want = 1 + (size_t)(seed >> 33) % ((seed >> 20) & 1 ? 3 : 40);
                if (want > seg.size - seg_pos)
                    want = seg.size - seg_pos;
            }
            got = fz_write(fd, (const uint8_t *)seg.data + seg_pos, want);
            seg_pos += got;
            if (got > 0)
                quiet_since = fz_now_ms();
        }
        if (written && (flags & FZ_HANGUP) && !hung_up) {
            (void)shutdown(fd, SHUT_WR);
            hung_up = 1;
        }
        fz_turn();
        if (fz_read(fd, in, &rp) > 0)
            quiet_since = fz_now_ms();
        if (rp.eof)
            break;
        now = fz_now_ms();
        /* Every frame answered: nothing more will come, unless lingering. */
        if (written && !(flags & FZ_LINGER) && !in->bad_tail && rp.nlast >= in->nreqs)
            break;
        if ((written && now - quiet_since > FZ_IDLE_MS) || now - start > FZ_TOTAL_MS)
            break;
    }
    if (fz.verbose)
        fprintf(stderr,
                "fuzz_request: flags %#x, %zu bytes, %zu frames, %zu syncs, %zu replies (%zu "
                "last), %s after %llu ms\n",
                flags, in->len, in->nreqs, in->nsyncs, rp.nframes, rp.nlast,
                rp.eof ? "closed by the daemon" : "hung up",
                (unsigned long long)(fz_now_ms() - start));
    close(fd);
    frame_reader_fini(&rp.r);
    msgpack_sbuffer_destroy(&seg);
    fz_wait_reaped("input");
}

/* A fresh connection must still be served. */
static void
fz_probe(void)
{
    struct fz_input in = {0};
    struct fz_req req = {.rid = FZ_PROBE_RID, .op = MSG_OP_PING};
    struct fz_rid rid = {.rid = FZ_PROBE_RID, .nreq = 1, .ops = 1u << MSG_OP_PING};
    struct fz_replies rp;
    uint64_t until = fz_now_ms() + FZ_PROBE_MS;
    int fd = fz_connect(0);

    in.reqs = &req;
    in.nreqs = 1;
    in.rids = &rid;
    in.nrids = 1;
    memset(&rp, 0, sizeof(rp));
    frame_reader_init(&rp.r, FZ_REPLY_MAX);
    FUZZ_CHECK(fz_write(fd, (const uint8_t *)fz.probe.data, fz.probe.size) == fz.probe.size);
    while (rid.nlast == 0) {
        if (rp.eof || fz_now_ms() > until)
            FUZZ_FAIL("a fresh connection got no answer to PING (%s)",
                      rp.eof ? "closed" : "timed out");
        fz_turn();
        fz_read(fd, &in, &rp);
    }
    FUZZ_CHECK(rp.nframes == 1);
    close(fd);
    frame_reader_fini(&rp.r);
    fz_wait_reaped("probe");
}

/* Cancel jobs that have held a worker for long (sleep, fib): the next inputs need it. */
static void
fz_unhog(void)
{
    struct msg_stats st;
    uint64_t now = job_now_us();

    if (jobs_stats(sv->srv->jobs, &st) != 0)
        return;
    for (size_t i = 0; i < st.nworkers; i++) {
        const struct job *job =
            st.workers[i].job ? jobs_job(sv->srv->jobs, st.workers[i].job) : NULL;
        char why[256];

        if (job != NULL && job->state == FORQ_STATE_RUNNING && job->started_us != 0 &&
            now - job->started_us > FZ_RUN_MAX_MS * 1000ull)
            (void)jobs_cancel(sv->srv->jobs, job->id, 1, &job, why, sizeof(why));
    }
    jobs_stats_free(&st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in;
    unsigned flags = size > 0 ? data[0] : 0;

    fz_init();
    sv = &fz.servers[(flags & FZ_SMALLDB) != 0];
    if (sv->srv != NULL && fz.reset_every > 0 && sv->inputs >= fz.reset_every)
        fz_server_stop();
    if (sv->srv == NULL)
        fz_server_start();
    sv->inputs++;
    fz_build(size > 0 ? data + 1 : data, size > 0 ? size - 1 : 0, flags & FZ_RAW, &in);
    fz_prescan(&in, flags & FZ_AUTH);
    fz_auth(flags & FZ_AUTH);
    fz_session(&in, flags, fuzz_fnv1a(data, size));
    fz_auth(0);
    fz_input_free(&in);
    fz_probe();
    fz_unhog();
    return 0;
}
