/*
 * beanstalk_bench.c — the beanstalkd anchor for forq-bench's `upper` job: the
 * same work, end to end, through beanstalkd, so the two can be compared.
 *
 * It speaks beanstalkd's text protocol directly over TCP, with no client
 * library. A job is `upper`: a payload of --size random lowercase bytes that
 * a worker returns in upper case. Its path:
 *   producer  put "<results tube> <seq> <payload>" into tube "jobs";
 *   worker    reserve it (watching "jobs" only), put "<seq> <PAYLOAD>" into
 *             the results tube named in the body, delete the job;
 *   producer  reserve the result on a second connection that watches only its
 *             own results tube "res-<pid>", check it, delete it.
 * Modes:
 *   worker      one worker, one job at a time, until SIGTERM or SIGINT (then
 *               exit 0). It sends the result's put, the job's delete and its
 *               next reserve in one write, `use`s a results tube only when
 *               it changes, and wakes once per job (see struct bb_conn).
 *   throughput  JOBS jobs with up to INFLIGHT in flight (put, result not yet
 *               received), one thread, poll() on both connections: puts go
 *               out many to a write; a reserve is queued for every INSERTED
 *               answer and a delete for every result, each batch in one
 *               write; it wakes when a quarter of the results in flight are
 *               back rather than for every answer.
 *   latency     JOBS round trips one after the other: put, wait for its
 *               result. The previous result's delete and this result's
 *               reserve go out right behind the put, so that beanstalkd wakes
 *               once for the three.
 * beanstalkd answers every command in its own write, one command per
 * connection per turn of its event loop, so what a client can save is its own
 * work and wakeups: it pipelines, and sleeps until a batch of answers is in.
 *
 * Latency of a job is from the send of its put to the moment the RESERVED
 * answer carrying its result is in hand. Every result is checked. Prints the
 * same report as forq-bench; exits 1 if there were errors, 2 on bad usage, 3
 * if the server cannot be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "lat.h"

#define BB_DEFAULT_ADDR "127.0.0.1:11300"
#define BB_JOBS_TUBE    "jobs"
#define BB_PRI          1024 /* beanstalkd's usual default priority */
#define BB_TTR          60
#define BB_TUBE_MAX     200          /* beanstalkd's longest tube name */
#define BB_LINE_MAX     256          /* longest answer line we accept */
#define BB_SIZE_MAX     65000        /* payload; beanstalkd's default max-job-size is 65535 */
#define BB_IN_CAP       (128 * 1024) /* a whole RESERVED answer always fits */
#define BB_OUT_HIGH     (256 * 1024) /* add no more puts to a send buffer past this */
#define BB_STALL_S      10           /* give up after this long without an answer */
/* The shortest answers, for bb_conn.owed. */
#define BB_MIN_INSERTED 11 /* "INSERTED \r\n" and the id's digits */
#define BB_MIN_DELETED  9  /* "DELETED\r\n" */
#define BB_MIN_WATCHING 12 /* "WATCHING 1\r\n" */
#define BB_MIN_RESERVE  15 /* "DEADLINE_SOON\r\n"; "RESERVED 1 0\r\n\r\n" is 16 */
#define BB_MIN_BURIED   8  /* "BURIED\r\n" */
#define BB_BATCH_DIV    4  /* throughput: wake for results when 1/4 of those in flight are in */
#define BB_XSTR(x)      BB_STR(x)
#define BB_STR(x)       #x
#define BB_STALL_MSG    "no answer for " BB_XSTR(BB_STALL_S) " s (are the workers running?)"

struct bb {
    const char *addr;
    char host[256];
    char port[16];
    int mode; /* enum args_mode */
    uint64_t jobs;
    uint64_t inflight;
    size_t size;
    char tube[32]; /* the producer's results tube */
    uint64_t *lat; /* per-job latency, ns */
    uint64_t nlat;
    uint64_t errors;
    char first_error[BB_LINE_MAX + 64];
};

/*
 * One connection: bytes read and not consumed yet, bytes not sent yet.
 *
 * owed is a lower bound on the answer bytes still to come for the requests
 * sent: each request adds its shortest possible answer, each read takes off
 * what it got. The socket's SO_RCVLOWAT follows it (capped by batch, if set),
 * so that the kernel wakes us once per batch of answers rather than once per
 * answer: beanstalkd writes every answer separately, and on a small machine
 * each needless wakeup of a client also preempts the server.
 */
struct bb_conn {
    int fd;
    char *in; /* answers: in[pos, nin) not parsed yet */
    size_t pos, nin;
    char *out; /* requests: out[sent, nout) not sent yet */
    size_t sent, nout, outcap;
    size_t owed;  /* answer bytes surely still to come */
    size_t batch; /* wake for at most this many bytes; 0: for all owed */
    int lowat;    /* the socket's SO_RCVLOWAT now */
};

/* One answer. */
struct bb_reply {
    char line[BB_LINE_MAX]; /* the answer line, without its \r\n */
    uint64_t id;            /* RESERVED: the job id */
    const char *body;       /* RESERVED: the body, in the connection's buffer */
    size_t len;             /* RESERVED: its length */
};

/* Count an error; keep the first one's text. */
static void
bb_error(struct bb *b, const char *what, const char *detail)
{
    if (b->errors++ == 0)
        snprintf(b->first_error, sizeof(b->first_error), "%s: %s", what, detail);
}

/* Connect c (Nagle off, buffers allocated); 0, or -1 with the reason in *err. */
static int
bb_conn_open(const struct bb *b, struct bb_conn *c, const char **err)
{
    struct addrinfo hints = {0}, *res, *ai;
    int one = 1, r;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((r = getaddrinfo(b->host, b->port, &hints, &res)) != 0) {
        *err = gai_strerror(r);
        return -1;
    }
    *err = "no address";
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((c->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0)
            continue;
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        *err = strerror(errno);
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->lowat = 1; /* the default */
    c->outcap = 64 * 1024;
    if ((c->in = malloc(BB_IN_CAP)) == NULL || (c->out = malloc(c->outcap)) == NULL) {
        *err = "out of memory";
        return -1;
    }
    return 0;
}

static void
bb_conn_close(struct bb_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    c->fd = -1;
    c->in = c->out = NULL;
}

/* Room for len more bytes at the end of the send buffer; NULL if out of memory. */
static char *
bb_out_room(struct bb_conn *c, size_t len)
{
    if (c->sent == c->nout) {
        c->sent = c->nout = 0;
    } else if (c->sent > c->outcap / 2) {
        memmove(c->out, c->out + c->sent, c->nout - c->sent);
        c->nout -= c->sent;
        c->sent = 0;
    }
    if (c->nout + len > c->outcap) {
        size_t cap = c->outcap;
        char *p;

        while (c->nout + len > cap)
            cap *= 2;
        if ((p = realloc(c->out, cap)) == NULL)
            return NULL;
        c->out = p;
        c->outcap = cap;
    }
    return c->out + c->nout;
}

/* Append bytes to the send buffer. */
static int
bb_out_add(struct bb_conn *c, const char *s, size_t len)
{
    char *p = bb_out_room(c, len);

    if (p == NULL)
        return -1;
    memcpy(p, s, len);
    c->nout += len;
    return 0;
}

/* Append a formatted request line (at most BB_LINE_MAX bytes). */
static int bb_out_fmt(struct bb_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bb_out_fmt(struct bb_conn *c, const char *fmt, ...)
{
    char *p = bb_out_room(c, BB_LINE_MAX);
    va_list ap;
    int n;

    if (p == NULL)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(p, BB_LINE_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= BB_LINE_MAX)
        return -1;
    c->nout += (size_t)n;
    return 0;
}

/* Decimal digits of v at p; returns how many. */
static size_t
bb_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Append "put <pri> 0 <ttr> <len>\r\n<head><seq> <data>\r\n", seq in decimal. */
static int
bb_out_put(struct bb_conn *c, const char *head, size_t hlen, uint64_t seq, const char *data,
           size_t dlen)
{
    char digits[20], *p;
    size_t ndig = bb_u64(digits, seq), len = hlen + ndig + 1 + dlen;
    int n;

    if ((p = bb_out_room(c, 64 + len)) == NULL)
        return -1;
    n = snprintf(p, 64, "put %d 0 %d %zu\r\n", BB_PRI, BB_TTR, len);
    p += n;
    memcpy(p, head, hlen);
    p += hlen;
    memcpy(p, digits, ndig);
    p += ndig;
    *p++ = ' ';
    memcpy(p, data, dlen);
    p += dlen;
    *p++ = '\r';
    *p++ = '\n';
    c->nout = (size_t)(p - c->out);
    return 0;
}

/*
 * Send what is waiting. On a blocking socket, all of it; on a non-blocking
 * one, what the socket takes now. 0, or -1 with errno set.
 */
static int
bb_flush(struct bb_conn *c)
{
    while (c->sent < c->nout) {
        ssize_t n = send(c->fd, c->out + c->sent, c->nout - c->sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        c->sent += (size_t)n;
    }
    return 0;
}

/* Digits in v's decimal form. */
static size_t
bb_ndigits(uint64_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Set SO_RCVLOWAT from owed and batch (a syscall only when it changes). */
static void
bb_lowat(struct bb_conn *c)
{
    size_t want = c->owed;
    int v;

    if (c->batch != 0 && want > c->batch)
        want = c->batch;
    v = want < 1 ? 1 : want > BB_IN_CAP / 2 ? BB_IN_CAP / 2 : (int)want;
    if (v != c->lowat && setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
        c->lowat = v;
}

/*
 * Read what has come. With wait_ms 0, only what is there now; otherwise wait
 * first (-1: for ever) until SO_RCVLOWAT bytes are there, in poll(): a
 * blocking recv() could take part of them and then sleep until the low mark
 * is reached by new bytes alone, which may never happen. Returns the number
 * of bytes read (0: none yet); -1 with the reason in *err on EOF, an error,
 * or when wait_ms passes with nothing.
 */
static ssize_t
bb_fill(struct bb_conn *c, int wait_ms, const char **err)
{
    ssize_t n;

    if (c->pos > 0) {
        memmove(c->in, c->in + c->pos, c->nin - c->pos);
        c->nin -= c->pos;
        c->pos = 0;
    }
    if (c->nin == BB_IN_CAP) {
        *err = "answer too long";
        return -1;
    }
    bb_lowat(c);
    if (wait_ms != 0) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int k;

        while ((k = poll(&pf, 1, wait_ms)) < 0 && errno == EINTR)
            ;
        if (k == 0) {
            *err = BB_STALL_MSG;
            return -1;
        }
    }
    for (;;) {
        n = recv(c->fd, c->in + c->nin, BB_IN_CAP - c->nin, MSG_DONTWAIT);
        if (n > 0) {
            c->nin += (size_t)n;
            c->owed -= (size_t)n < c->owed ? (size_t)n : c->owed;
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        *err = n == 0 ? "connection closed by the server" : strerror(errno);
        return -1;
    }
}

/*
 * Take the next whole answer out of c's buffer. 1 if r holds one; 0 if more
 * bytes are needed; -1 if the answer is malformed (reason in r->line). A
 * RESERVED answer's body stays valid until the next bb_fill.
 */
static int
bb_parse(struct bb_conn *c, struct bb_reply *r)
{
    char *s = c->in + c->pos, *lf, *crlf, *end;
    size_t avail = c->nin - c->pos, llen;
    unsigned long long id, bytes = 0;

    if ((lf = memchr(s, '\n', avail < BB_LINE_MAX ? avail : BB_LINE_MAX)) == NULL) {
        if (avail < BB_LINE_MAX)
            return 0;
        snprintf(r->line, sizeof(r->line), "answer line too long");
        return -1;
    }
    if (lf == s || lf[-1] != '\r') {
        snprintf(r->line, sizeof(r->line), "answer line not ended by \\r\\n");
        return -1;
    }
    crlf = lf - 1;
    llen = (size_t)(crlf - s);
    memcpy(r->line, s, llen);
    r->line[llen] = '\0';
    r->body = NULL;
    r->len = 0;
    if (strncmp(r->line, "RESERVED ", 9) != 0) {
        c->pos += llen + 2;
        return 1;
    }
    errno = 0;
    id = strtoull(r->line + 9, &end, 10);
    if (*end != ' ' || (bytes = strtoull(end + 1, &end, 10), *end != '\0') || errno != 0 ||
        bytes > BB_IN_CAP - BB_LINE_MAX - 4) {
        snprintf(r->line, sizeof(r->line), "malformed RESERVED answer");
        return -1;
    }
    if (avail < llen + 2 + bytes + 2)
        return 0;
    if (crlf[2 + bytes] != '\r' || crlf[3 + bytes] != '\n') {
        snprintf(r->line, sizeof(r->line), "job body not followed by \\r\\n");
        return -1;
    }
    r->id = id;
    r->body = crlf + 2;
    r->len = bytes;
    c->pos += llen + 2 + bytes + 2;
    return 1;
}

/*
 * The next answer, waiting up to wait_ms (-1: for ever) for each read; 0, or
 * -1 with the reason in *err.
 */
static int
bb_reply_wait(struct bb_conn *c, struct bb_reply *r, int wait_ms, const char **err)
{
    for (;;) {
        int k = bb_parse(c, r);

        if (k > 0)
            return 0;
        if (k < 0) {
            *err = r->line;
            return -1;
        }
        if (bb_fill(c, wait_ms, err) < 0)
            return -1;
    }
}

/* Wait for an answer that starts with want; 0, or -1 with the reason in *err. */
static int
bb_expect(struct bb_conn *c, const char *want, const char **err)
{
    static char msg[BB_LINE_MAX + 64];
    struct bb_reply r;

    if (bb_reply_wait(c, &r, BB_STALL_S * 1000, err) != 0) {
        if (*err == r.line) { /* r goes away on return */
            snprintf(msg, sizeof(msg), "%s", r.line);
            *err = msg;
        }
        return -1;
    }
    if (strncmp(r.line, want, strlen(want)) != 0) {
        snprintf(msg, sizeof(msg), "expected %s, got %s", want, r.line);
        *err = msg;
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- worker */

static volatile sig_atomic_t bb_stop;
static int bb_worker_fd = -1;

/* Stop: shut the socket so that a blocked recv() or send() returns at once. */
static void
bb_on_signal(int sig)
{
    (void)sig;
    bb_stop = 1;
    if (bb_worker_fd >= 0)
        shutdown(bb_worker_fd, SHUT_RDWR);
}

/*
 * Handle one reserved job: queue the result's put (and a `use` first if the
 * results tube changed), the job's delete and the next reserve. The answers
 * to expect, in order, go to want[]; returns how many, or -1 if the send
 * buffer cannot grow.
 */
static int
bb_worker_job(struct bb_conn *c, const struct bb_reply *r, char *cur, size_t *ncur,
              const char **want, struct bb *w)
{
    const char *body = r->body, *sp1, *sp2;
    size_t tlen;
    int nwant = 0;

    sp1 = memchr(body, ' ', r->len);
    sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', r->len - (size_t)(sp1 + 1 - body)) : NULL;
    tlen = sp1 != NULL ? (size_t)(sp1 - body) : 0;
    if (sp2 == NULL || tlen == 0 || tlen > BB_TUBE_MAX || sp2 == sp1 + 1) {
        /* Not ours: bury it, so it neither loops nor blocks the others. */
        bb_error(w, "job", "malformed body (buried)");
        if (bb_out_fmt(c, "bury %" PRIu64 " %d\r\nreserve\r\n", r->id, BB_PRI) != 0)
            return -1;
        c->owed += BB_MIN_BURIED + BB_MIN_RESERVE;
        want[nwant++] = "BURIED";
        return nwant;
    }
    if (tlen != *ncur || memcmp(body, cur, tlen) != 0) {
        if (bb_out_add(c, "use ", 4) != 0 || bb_out_add(c, body, tlen) != 0 ||
            bb_out_add(c, "\r\n", 2) != 0)
            return -1;
        memcpy(cur, body, tlen);
        *ncur = tlen;
        c->owed += 6 + tlen + 2; /* "USING <tube>\r\n" */
        want[nwant++] = "USING";
    }
    /* The result is "<seq> <PAYLOAD>": the body after the tube, upcased. */
    {
        const char *seq = sp1 + 1, *data = sp2 + 1;
        size_t slen = (size_t)(sp2 - seq), dlen = r->len - (size_t)(data - body);
        char *p = bb_out_room(c, 64 + slen + 1 + dlen);
        int n;

        if (p == NULL)
            return -1;
        n = snprintf(p, 64, "put %d 0 %d %zu\r\n", BB_PRI, BB_TTR, slen + 1 + dlen);
        p += n;
        memcpy(p, seq, slen + 1);
        p += slen + 1;
        for (size_t i = 0; i < dlen; i++)
            p[i] = data[i] >= 'a' && data[i] <= 'z' ? (char)(data[i] - 'a' + 'A') : data[i];
        p += dlen;
        *p++ = '\r';
        *p++ = '\n';
        c->nout = (size_t)(p - c->out);
    }
    want[nwant++] = "INSERTED";
    if (bb_out_fmt(c, "delete %" PRIu64 "\r\nreserve\r\n", r->id) != 0)
        return -1;
    want[nwant++] = "DELETED";
    /* The result's id comes after the job's, so it has at least as many digits. */
    c->owed += BB_MIN_INSERTED + bb_ndigits(r->id) + BB_MIN_DELETED + BB_MIN_RESERVE;
    return nwant;
}

static int
bb_worker(struct bb *w)
{
    struct bb_conn c;
    struct bb_reply r;
    struct sigaction sa;
    char cur[BB_TUBE_MAX + 1] = "default"; /* the tube we `use` now */
    size_t ncur = 7;
    const char *err, *want[4];
    uint64_t done = 0;
    int nwant;

    if (bb_conn_open(w, &c, &err) != 0) {
        fprintf(stderr, "beanstalk-bench: cannot connect to %s: %s\n", w->addr, err);
        return 3;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bb_on_signal;
    sigemptyset(&sa.sa_mask);
    bb_worker_fd = c.fd;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    bb_out_fmt(&c, "watch " BB_JOBS_TUBE "\r\nignore default\r\nreserve\r\n");
    c.owed = 2 * BB_MIN_WATCHING; /* the reserve's answer may take long: not yet */
    if (bb_flush(&c) != 0 || bb_expect(&c, "WATCHING", &err) != 0 ||
        bb_expect(&c, "WATCHING", &err) != 0)
        goto fail;
    c.owed += BB_MIN_RESERVE;
    for (;;) {
        if (bb_reply_wait(&c, &r, -1, &err) != 0)
            goto fail;
        if (strcmp(r.line, "DEADLINE_SOON") == 0) { /* cannot be: we hold no job */
            bb_out_fmt(&c, "reserve\r\n");
            c.owed += BB_MIN_RESERVE;
            nwant = 0;
        } else if (r.body == NULL) {
            err = r.line;
            goto fail;
        } else if ((nwant = bb_worker_job(&c, &r, cur, &ncur, want, w)) < 0) {
            err = "out of memory";
            goto fail;
        }
        if (bb_flush(&c) != 0) {
            err = strerror(errno);
            goto fail;
        }
        for (int i = 0; i < nwant; i++) {
            if (bb_reply_wait(&c, &r, -1, &err) != 0)
                goto fail;
            if (strncmp(r.line, want[i], strlen(want[i])) != 0)
                bb_error(w, want[i], r.line);
        }
        done++;
    }
fail:
    bb_conn_close(&c);
    if (w->errors)
        fprintf(stderr, "beanstalk-bench: worker: %" PRIu64 " errors, first: %s\n", w->errors,
                w->first_error);
    if (bb_stop)
        return 0;
    fprintf(stderr, "beanstalk-bench: worker: %s (after %" PRIu64 " jobs)\n", err, done);
    return 1;
}

/* -------------------------------------------------------------- producer */

/* Job seq's payload: lowercase bytes that differ per job. */
static void
bb_payload(char *buf, size_t size, uint64_t seq)
{
    uint64_t x = (seq + 1) * 0xbf58476d1ce4e5b9u;

    for (size_t i = 0; i < size; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebu;
        buf[i] = (char)('a' + (x >> 59) % 26);
    }
}

/*
 * Check a result body "<seq> <PAYLOAD>"; its seq goes to *seq. 1 if right,
 * 0 if not (reason in *why). scratch holds b->size bytes.
 */
static int
bb_check(const struct bb *b, const char *body, size_t len, char *scratch, uint64_t *seq,
         const char **why)
{
    size_t i = 0;
    uint64_t v = 0;

    *seq = UINT64_MAX;
    while (i < len && body[i] >= '0' && body[i] <= '9' && i < 19)
        v = v * 10 + (uint64_t)(body[i++] - '0');
    if (i == 0 || i >= len || body[i] != ' ') {
        *why = "malformed result";
        return 0;
    }
    *seq = v;
    if (v >= b->jobs) {
        *why = "result for an unknown job";
        return 0;
    }
    body += i + 1;
    len -= i + 1;
    if (len != b->size) {
        *why = "result of the wrong size";
        return 0;
    }
    bb_payload(scratch, b->size, v);
    for (i = 0; i < len; i++)
        if (body[i] != (char)(scratch[i] - 'a' + 'A')) {
            *why = "wrong bytes";
            return 0;
        }
    return 1;
}

/*
 * The two connections, set up before the clock starts: p puts into "jobs",
 * r watches only this producer's results tube. 0, or an exit status.
 */
static int
bb_producer_open(struct bb *b, struct bb_conn *p, struct bb_conn *r)
{
    const char *err;

    if (bb_conn_open(b, p, &err) != 0 || bb_conn_open(b, r, &err) != 0) {
        fprintf(stderr, "beanstalk-bench: cannot connect to %s: %s\n", b->addr, err);
        return 3;
    }
    snprintf(b->tube, sizeof(b->tube), "res-%ld", (long)getpid());
    bb_out_fmt(p, "use " BB_JOBS_TUBE "\r\n");
    bb_out_fmt(r, "watch %s\r\nignore default\r\n", b->tube);
    if (bb_flush(p) != 0 || bb_flush(r) != 0) {
        err = strerror(errno);
        goto fail;
    }
    if (bb_expect(p, "USING", &err) != 0 || bb_expect(r, "WATCHING", &err) != 0 ||
        bb_expect(r, "WATCHING", &err) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "beanstalk-bench: setting up: %s\n", err);
    return 1;
}

/* B: one job at a time, put then its result. */
static void
bb_latency(struct bb *b, struct bb_conn *p, struct bb_conn *r)
{
    char head[BB_TUBE_MAX + 2], *payload = malloc(b->size + 1);
    size_t hlen = (size_t)snprintf(head, sizeof(head), "%s ", b->tube);
    const char *err = NULL, *why;
    struct bb_reply a;
    uint64_t seq, got, done = 0;

    if (payload == NULL) {
        bb_error(b, "payload", "out of memory");
        return;
    }
    /* The first result's reserve goes before its put. */
    bb_out_fmt(r, "reserve\r\n");
    r->owed += BB_MIN_RESERVE;
    if (bb_flush(r) != 0)
        goto io_error;
    for (seq = 0; seq < b->jobs; seq++) {
        uint64_t t0;

        bb_payload(payload, b->size, seq);
        if (bb_out_put(p, head, hlen, seq, payload, b->size) != 0) {
            err = "out of memory";
            goto fail;
        }
        p->owed += BB_MIN_INSERTED + 1;
        t0 = lat_now_ns();
        /* The put, then the last result's delete and the next reserve: one wakeup. */
        if (bb_flush(p) != 0 || bb_flush(r) != 0)
            goto io_error;
        /*
         * The result first (the previous one's DELETED comes before it); the
         * put's INSERTED is in by then, and waiting for it apart would cost
         * a wakeup. If the put failed, no result comes: say why.
         */
        do {
            if (bb_reply_wait(r, &a, BB_STALL_S * 1000, &err) != 0) {
                struct bb_reply pa;
                const char *e2;

                if (bb_fill(p, 0, &e2) >= 0 && bb_parse(p, &pa) > 0 &&
                    strncmp(pa.line, "INSERTED ", 9) != 0) {
                    bb_error(b, "put", pa.line);
                    done++;
                }
                goto fail;
            }
            if (a.body == NULL && strcmp(a.line, "DELETED") != 0)
                bb_error(b, "delete", a.line);
        } while (a.body == NULL);
        if (!bb_check(b, a.body, a.len, payload, &got, &why))
            bb_error(b, "result", why);
        else if (got != seq)
            bb_error(b, "result", "for another job");
        else
            b->lat[b->nlat++] = lat_now_ns() - t0;
        done++;
        bb_out_fmt(r, "delete %" PRIu64 "\r\n", a.id);
        r->owed += BB_MIN_DELETED;
        if (seq + 1 < b->jobs) {
            bb_out_fmt(r, "reserve\r\n");
            r->owed += BB_MIN_RESERVE;
        } else if (bb_flush(r) != 0) {
            goto io_error;
        }
        if (bb_reply_wait(p, &a, BB_STALL_S * 1000, &err) != 0)
            goto fail;
        if (strncmp(a.line, "INSERTED ", 9) != 0)
            bb_error(b, "put", a.line);
    }
    if (bb_expect(r, "DELETED", &err) != 0)
        bb_error(b, "delete", err);
    free(payload);
    return;
io_error:
    err = strerror(errno);
fail:
    fprintf(stderr, "beanstalk-bench: %s\n", err);
    bb_error(b, "connection", err);
    if (b->jobs - done > 1)
        b->errors += b->jobs - done - 1; /* the jobs never finished count too */
    free(payload);
}

/* Per-job state in throughput mode. */
enum { BB_JOB_NEW, BB_JOB_SENT, BB_JOB_DONE, BB_JOB_FAILED };

/* A: up to b->inflight jobs in flight, pipelined on both connections. */
static void
bb_throughput(struct bb *b, struct bb_conn *p, struct bb_conn *r)
{
    uint64_t n = b->jobs, sent = 0, acked = 0, inserted = 0, results = 0, received = 0;
    uint64_t failed = 0, reserving = 0, deleting = 0, last_id = 0;
    uint64_t *t0 = calloc(n, sizeof(*t0));
    unsigned char *state = calloc(n, 1);
    char head[BB_TUBE_MAX + 2], *payload = malloc(b->size + 1);
    size_t hlen = (size_t)snprintf(head, sizeof(head), "%s ", b->tube);
    const char *err = NULL, *why;
    struct bb_reply a;
    uint64_t last = lat_now_ns();

    if (t0 == NULL || state == NULL || payload == NULL) {
        err = "out of memory";
        goto fail;
    }
    fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
    /* Wake for results once a share of those in flight is back (or all owed). */
    r->batch = (b->inflight / BB_BATCH_DIV > 0 ? b->inflight / BB_BATCH_DIV : 1) *
               (BB_MIN_RESERVE + 3 + b->size);
    while (received + failed < n || deleting > 0) {
        struct pollfd pf[2];
        int k, timeout;
        uint64_t now;

        /* New puts, once the last batch is out, up to the in-flight limit. */
        if (p->sent == p->nout && sent < n && sent - received - failed < b->inflight) {
            p->sent = p->nout = 0;
            now = lat_now_ns();
            while (sent < n && sent - received - failed < b->inflight && p->nout < BB_OUT_HIGH) {
                bb_payload(payload, b->size, sent);
                if (bb_out_put(p, head, hlen, sent, payload, b->size) != 0) {
                    err = "out of memory";
                    goto fail;
                }
                /* Ids only grow: this one has at least as many digits as the last. */
                p->owed += BB_MIN_INSERTED + bb_ndigits(last_id);
                t0[sent] = now;
                state[sent++] = BB_JOB_SENT;
            }
        }
        /* A reserve for every job in the server that has none yet. */
        for (; results + reserving < inserted; reserving++) {
            if (bb_out_add(r, "reserve\r\n", 9) != 0) {
                err = "out of memory";
                goto fail;
            }
            r->owed += BB_MIN_RESERVE;
        }
        if (bb_flush(p) != 0 || bb_flush(r) != 0) {
            err = strerror(errno);
            goto fail;
        }
        bb_lowat(p);
        bb_lowat(r);
        pf[0].fd = p->fd;
        pf[0].events = POLLIN | (p->sent < p->nout ? POLLOUT : 0);
        pf[1].fd = r->fd;
        pf[1].events = POLLIN | (r->sent < r->nout ? POLLOUT : 0);
        now = lat_now_ns();
        timeout = (int)(((int64_t)BB_STALL_S * 1000000000 - (int64_t)(now - last)) / 1000000);
        if (timeout <= 0 || (k = poll(pf, 2, timeout)) == 0) {
            err = BB_STALL_MSG;
            goto fail;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            err = strerror(errno);
            goto fail;
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (bb_fill(p, 0, &err) < 0)
                goto fail;
            while ((k = bb_parse(p, &a)) > 0) {
                uint64_t seq = acked++; /* answers come in the order of the puts */

                last = lat_now_ns();
                if (strncmp(a.line, "INSERTED ", 9) == 0) {
                    inserted++;
                    last_id = strtoull(a.line + 9, NULL, 10);
                } else {
                    bb_error(b, "put", a.line);
                    if (state[seq] == BB_JOB_SENT) {
                        state[seq] = BB_JOB_FAILED;
                        failed++;
                    }
                }
            }
            if (k < 0) {
                err = a.line;
                goto fail;
            }
        }
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (bb_fill(r, 0, &err) < 0)
                goto fail;
            now = lat_now_ns();
            while ((k = bb_parse(r, &a)) > 0) {
                uint64_t seq;

                last = now;
                if (a.body != NULL) {
                    reserving--;
                    results++;
                    if (!bb_check(b, a.body, a.len, payload, &seq, &why)) {
                        bb_error(b, "result", why);
                        if (seq < n && state[seq] == BB_JOB_SENT) { /* no other will come */
                            state[seq] = BB_JOB_FAILED;
                            failed++;
                        }
                    } else if (state[seq] != BB_JOB_SENT) {
                        bb_error(b, "result", "a second result for a job");
                    } else {
                        state[seq] = BB_JOB_DONE;
                        received++;
                        b->lat[b->nlat++] = now - t0[seq];
                    }
                    if (bb_out_fmt(r, "delete %" PRIu64 "\r\n", a.id) != 0) {
                        err = "out of memory";
                        goto fail;
                    }
                    r->owed += BB_MIN_DELETED;
                    deleting++;
                } else if (strcmp(a.line, "DELETED") == 0 && deleting > 0) {
                    deleting--;
                } else if (strcmp(a.line, "DEADLINE_SOON") == 0 && reserving > 0) {
                    reserving--; /* that reserve got nothing; another is sent */
                } else {
                    err = a.line;
                    goto fail;
                }
            }
            if (k < 0) {
                err = a.line;
                goto fail;
            }
        }
    }
    free(t0);
    free(state);
    free(payload);
    return;
fail:
    fprintf(stderr, "beanstalk-bench: %s\n", err);
    bb_error(b, "connection", err);
    if (n - received - failed > 1)
        b->errors += n - received - failed - 1; /* the jobs never finished count too */
    free(t0);
    free(state);
    free(payload);
}

/* ---------------------------------------------------------------- report */

/* Print the report. Returns the number of errors. */
static uint64_t
bb_report(struct bb *b, double secs)
{
    if (b->errors)
        fprintf(stderr, "beanstalk-bench: %" PRIu64 " errors, first: %s\n", b->errors,
                b->first_error);
    printf("server    %s\n", b->addr);
    printf("task      upper, %zu-byte payloads, mode %s\n", b->size, args_mode_names[b->mode]);
    printf("jobs      %" PRIu64 "\n", b->jobs);
    printf("inflight  %" PRIu64 "\n", b->mode == ARGS_MODE_LATENCY ? 1 : b->inflight);
    printf("elapsed   %.3f s\n", secs);
    printf("rate      %.0f jobs/s\n", secs > 0 ? (double)b->nlat / secs : 0.0);
    lat_print(b->lat, b->nlat);
    printf("errors    %" PRIu64 "\n", b->errors);
    return b->errors;
}

static void
bb_usage(FILE *fp)
{
    fputs("usage: beanstalk-bench [-s ADDR] --mode worker\n"
          "       beanstalk-bench [-s ADDR] --mode throughput [-n JOBS] [--inflight K]\n"
          "                       [--size BYTES]\n"
          "       beanstalk-bench [-s ADDR] --mode latency [-n JOBS] [--size BYTES]\n"
          "  -s, --server ADDR  beanstalkd's HOST:PORT (default " BB_DEFAULT_ADDR ")\n"
          "  -m, --mode MODE    worker: run jobs until SIGTERM/SIGINT;\n"
          "                     throughput: jobs/s with up to K jobs in flight;\n"
          "                     latency: one job at a time, put then its result\n"
          "  -n, --jobs N       jobs in all (default 100000 throughput, 5000 latency)\n"
          "  -k, --inflight K   throughput: jobs put and not yet answered (default 1000)\n"
          "      --size BYTES   random lowercase payload of this size (default 16)\n"
          "Jobs go through tube \"" BB_JOBS_TUBE "\"; results through \"res-<pid>\". Start the\n"
          "workers first, e.g. two: beanstalk-bench -s ADDR --mode worker &\n",
          fp);
}

/* Returns -1 to go on, or an exit status. */
static int
bb_parse_args(struct bb *b, int argc, char **argv)
{
    struct args_load a = {.addr = BB_DEFAULT_ADDR, .inflight = 1000, .size = 16};
    int rc;

    if ((rc = args_load_parse("beanstalk-bench", argc, argv, UINT64_MAX / 32, BB_SIZE_MAX, bb_usage,
                              &a)) >= 0)
        return rc;
    b->addr = a.addr;
    b->mode = a.mode;
    b->jobs = a.jobs;
    b->inflight = a.inflight;
    b->size = (size_t)a.size;
    if (args_hostport(b->addr, b->host, sizeof(b->host), b->port, sizeof(b->port)) != 0) {
        fprintf(stderr, "beanstalk-bench: --server: expected HOST:PORT, got %s\n", b->addr);
        return 2;
    }
    return -1;
}

int
main(int argc, char **argv)
{
    struct bb b = {0};
    struct bb_conn p, r;
    uint64_t t0, errors;
    int rc;

    if ((rc = bb_parse_args(&b, argc, argv)) >= 0)
        return rc;
    if (b.mode == ARGS_MODE_WORKER)
        return bb_worker(&b);
    if ((b.lat = calloc(b.jobs, sizeof(*b.lat))) == NULL) {
        fprintf(stderr, "beanstalk-bench: out of memory for %" PRIu64 " jobs\n", b.jobs);
        return 1;
    }
    if ((rc = bb_producer_open(&b, &p, &r)) != 0)
        return rc;
    t0 = lat_now_ns();
    if (b.mode == ARGS_MODE_LATENCY)
        bb_latency(&b, &p, &r);
    else
        bb_throughput(&b, &p, &r);
    errors = bb_report(&b, (double)(lat_now_ns() - t0) / 1e9);
    bb_conn_close(&p);
    bb_conn_close(&r);
    free(b.lat);
    return errors ? 1 : 0;
}
