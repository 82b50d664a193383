/*
 * forq_pipe.c — durable submits/s with N in flight, without a client library.
 *
 * One thread, one connection, the wire protocol straight from proto/: it
 * sends N SUBMITs, and for every answer that comes back sends one more, so
 * exactly N are in flight until JOBS have been acknowledged. New requests are
 * written once per batch of answers read. This is the counterpart of
 * beanstalk-put (which also speaks its server's protocol directly): it
 * measures what forqd sustains rather than what libforq's thread-per-request
 * model costs the client (forq-bench --mode submit measures that).
 *
 * Latency is from the write that carried a SUBMIT to the read that carried
 * its answer. Every answer must be an id (an error counts and is reported).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "addr.h"
#include "forq.h"
#include "frame.h"
#include "lat.h"
#include "msg.h"

#define PIPE_MAX_INFLIGHT 4096

struct pipe_bench {
    const char *addr, *task, *payload;
    uint64_t jobs;
    unsigned inflight;
    int fd;
    msgpack_sbuffer out; /* requests waiting to be written */
    uint64_t next_rid;   /* rids are 1.., and rid % inflight is a slot of sent_ns */
    uint64_t sent_ns[PIPE_MAX_INFLIGHT];
    uint64_t *lat;
    uint64_t acked, errors;
    char first_error[256];
};

static int
pipe_connect(const char *s)
{
    struct addr a;
    struct addrinfo hints = {0}, *res = NULL;
    struct sockaddr_un sun = {0};
    const char *why;
    int fd = -1, one = 1;

    if (addr_parse(s, 0, &a, &why) != 0) {
        fprintf(stderr, "forq-pipe: %s: %s\n", s, why);
        return -1;
    }
    if (a.kind == ADDR_UNIX) {
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, a.path, sizeof(sun.sun_path));
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            goto fail;
        return fd;
    }
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(a.host, a.port, &hints, &res) != 0 || res == NULL)
        goto fail;
    if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0 ||
        connect(fd, res->ai_addr, res->ai_addrlen) != 0)
        goto fail;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(res);
    return fd;
fail:
    fprintf(stderr, "forq-pipe: cannot connect to %s: %s\n", s, strerror(errno));
    if (res != NULL)
        freeaddrinfo(res);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Queue one SUBMIT. */
static int
pipe_queue_submit(struct pipe_bench *p)
{
    struct msg_request req;

    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_SUBMIT;
    req.rid = ++p->next_rid;
    req.u.submit.task = msg_str_c(p->task);
    req.u.submit.payload = msg_str_c(p->payload);
    return msg_encode_request(&p->out, &req);
}

static int
pipe_flush(struct pipe_bench *p, uint64_t first_rid)
{
    uint64_t now = lat_now_ns();
    size_t off = 0;
    ssize_t n;

    for (uint64_t rid = first_rid; rid <= p->next_rid; rid++)
        p->sent_ns[rid % p->inflight] = now;
    while (off < p->out.size) {
        if ((n = write(p->fd, p->out.data + off, p->out.size - off)) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "forq-pipe: write: %s\n", strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    p->out.size = 0;
    return 0;
}

static void
pipe_answer(struct pipe_bench *p, struct msg_decoder *d, const uint8_t *body, size_t len,
            uint64_t now)
{
    struct msg_response resp;
    int e = msg_decode_response(d, MSG_OP_SUBMIT, body, len, &resp);

    if (e != 0 || resp.err.code != 0 || resp.id == 0) {
        if (p->errors++ == 0)
            snprintf(p->first_error, sizeof(p->first_error), "%s: %.*s",
                     forq_strerror(e ? e : resp.err.code), (int)resp.err.msg.len,
                     resp.err.msg.ptr ? resp.err.msg.ptr : "");
        return;
    }
    p->lat[p->acked++] = now - p->sent_ns[resp.rid % p->inflight];
}

static int
pipe_run(struct pipe_bench *p)
{
    struct frame_reader r;
    struct msg_decoder d;
    const uint8_t *body;
    size_t blen, room;
    uint8_t *space;
    uint64_t first, now, answered = 0;
    ssize_t n;
    int rc = -1;

    frame_reader_init(&r, 1 << 20);
    if (msg_decoder_init(&d) != 0)
        return -1;
    for (unsigned i = 0; i < p->inflight && i < p->jobs; i++)
        if (pipe_queue_submit(p) != 0)
            goto out;
    if (pipe_flush(p, 1) != 0)
        goto out;
    while (answered < p->jobs) {
        if (frame_reader_space(&r, 65536, &space, &room) != 0)
            goto out;
        if ((n = read(p->fd, space, room)) <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            fprintf(stderr, "forq-pipe: the server closed the connection\n");
            goto out;
        }
        frame_reader_commit(&r, (size_t)n);
        now = lat_now_ns();
        first = p->next_rid + 1;
        while (frame_reader_next(&r, &body, &blen) == 0 && body != NULL) {
            pipe_answer(p, &d, body, blen, now);
            if (p->next_rid < p->jobs && pipe_queue_submit(p) != 0)
                goto out;
            answered++;
        }
        if (r.err != 0 || (p->out.size > 0 && pipe_flush(p, first) != 0))
            goto out;
    }
    rc = 0;
out:
    frame_reader_fini(&r);
    msg_decoder_fini(&d);
    return rc;
}



static void
pipe_usage(FILE *fp)
{
    fputs("usage: forq-pipe [-s ADDR] [-n JOBS] [-c INFLIGHT] [--task NAME] [--payload STR]\n"
          "  -s ADDR        default $FORQ_SERVER, else " FORQ_DEFAULT_ADDR "\n"
          "  -n JOBS        submissions in all (default 20000)\n"
          "  -c INFLIGHT    submissions in flight on the one connection, 1..4096 (default 64)\n"
          "  --task NAME    default sleep\n"
          "  --payload STR  default 3600000 (with sleep: the jobs stay queued)\n",
          fp);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"task", required_argument, NULL, 'T'},
        {"payload", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pipe_bench p = {0};
    uint64_t t0, t1;
    double secs;
    int ch;

    p.task = "sleep";
    p.payload = "3600000";
    p.jobs = 20000;
    p.inflight = 64;
    while ((ch = getopt_long(argc, argv, "s:n:c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': p.addr = optarg; break;
        case 'n': p.jobs = strtoull(optarg, NULL, 10); break;
        case 'c': p.inflight = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'T': p.task = optarg; break;
        case 'P': p.payload = optarg; break;
        case 'h': pipe_usage(stdout); return 0;
        default: pipe_usage(stderr); return 2;
        }
    }
    if (optind != argc || p.jobs == 0 || p.inflight == 0 || p.inflight > PIPE_MAX_INFLIGHT) {
        pipe_usage(stderr);
        return 2;
    }
    if (p.addr == NULL && ((p.addr = getenv("FORQ_SERVER")) == NULL || p.addr[0] == '\0'))
        p.addr = FORQ_DEFAULT_ADDR;
    if ((p.lat = calloc(p.jobs, sizeof(*p.lat))) == NULL || (p.fd = pipe_connect(p.addr)) < 0)
        return 3;
    msgpack_sbuffer_init(&p.out);
    t0 = lat_now_ns();
    if (pipe_run(&p) != 0)
        return 1;
    t1 = lat_now_ns();
    secs = (double)(t1 - t0) / 1e9;
    printf("server    %s\n", p.addr);
    printf("task      %s, payload '%s', %u in flight on one connection\n", p.task, p.payload,
           p.inflight);
    printf("jobs      %" PRIu64 "\n", p.jobs);
    printf("elapsed   %.3f s\n", secs);
    printf("rate      %.0f submits/s\n", secs > 0 ? (double)p.acked / secs : 0.0);
    lat_print(p.lat, p.acked);
    printf("errors    %" PRIu64 "\n", p.errors);
    if (p.errors)
        fprintf(stderr, "forq-pipe: first error: %s\n", p.first_error);
    msgpack_sbuffer_destroy(&p.out);
    close(p.fd);
    free(p.lat);
    return p.errors ? 1 : 0;
}
