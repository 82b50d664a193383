/*
 * beanstalk_put.c — a put-only load generator for beanstalkd, for comparing
 * its durable submit path with forq's (bench/durable.sh).
 *
 * It speaks the beanstalkd text protocol directly over TCP, with no client
 * library in between: CONNS threads, one connection each, each doing one put
 * at a time (so CONNS puts are in flight), JOBS puts in all:
 *   put <pri> <delay> <ttr> <bytes>\r\n<data>\r\n  ->  INSERTED <id>\r\n
 * Nothing reserves the jobs; they stay ready in the server, as forq-bench's
 * submit mode leaves its jobs queued. Latency of a put is from the start of
 * its send to the moment the whole answer line is in hand. Prints the same
 * report as forq-bench; exits non-zero if there were errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "lat.h"

#define BPUT_DEFAULT_ADDR "127.0.0.1:11300"
#define BPUT_PRI          1024 /* beanstalkd's usual default priority */
#define BPUT_TTR          60
#define BPUT_LINE_MAX     256 /* longest answer line we accept */

struct bput {
    const char *addr;
    char host[256];
    char port[16];
    uint64_t jobs;
    unsigned conns;
    size_t size;
};

struct bput_conn {
    const struct bput *b;
    pthread_t tid;
    unsigned index;
    int fd;
    uint64_t jobs; /* this connection's share */
    uint64_t *lat; /* per-put latency, ns */
    uint64_t nlat;
    uint64_t errors;
    char first_error[BPUT_LINE_MAX + 32]; /* room for a whole answer line */
    char in[BPUT_LINE_MAX];               /* answer bytes not consumed yet */
    size_t nin;
};

/* Count an error; keep the first one's text. */
static void
bput_error(struct bput_conn *c, const char *what, const char *detail)
{
    if (c->errors++ == 0)
        snprintf(c->first_error, sizeof(c->first_error), "%s: %s", what, detail);
}

/* A connected TCP socket with Nagle off, or -1 with the reason in *err. */
static int
bput_connect(const struct bput *b, const char **err)
{
    struct addrinfo hints = {0}, *res, *ai;
    int fd = -1, one = 1, r;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((r = getaddrinfo(b->host, b->port, &hints, &res)) != 0) {
        *err = gai_strerror(r);
        return -1;
    }
    *err = "no address";
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        *err = strerror(errno);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int
bput_send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Read one answer line into line (without its \r\n). Bytes after it are kept
 * for the next call. 0, or -1 with the reason in *err.
 */
static int
bput_read_line(struct bput_conn *c, char *line, size_t size, const char **err)
{
    for (;;) {
        char *crlf = c->nin >= 2 ? memmem(c->in, c->nin, "\r\n", 2) : NULL;
        ssize_t n;

        if (crlf != NULL) {
            size_t len = (size_t)(crlf - c->in);

            if (len >= size)
                len = size - 1;
            memcpy(line, c->in, len);
            line[len] = '\0';
            c->nin -= (size_t)(crlf + 2 - c->in);
            memmove(c->in, crlf + 2, c->nin);
            return 0;
        }
        if (c->nin == sizeof(c->in)) {
            *err = "answer line too long";
            return -1;
        }
        n = recv(c->fd, c->in + c->nin, sizeof(c->in) - c->nin, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err = n == 0 ? "connection closed by the server" : strerror(errno);
            return -1;
        }
        c->nin += (size_t)n;
    }
}

/* A lowercase body; beanstalkd does not care what is in it. */
static void
bput_body(char *buf, size_t size, unsigned conn)
{
    uint64_t x = (uint64_t)(conn + 1) * 0x9e3779b97f4a7c15u;

    for (size_t i = 0; i < size; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebu;
        buf[i] = (char)('a' + (x >> 59) % 26);
    }
}

static void *
bput_thread_main(void *arg)
{
    struct bput_conn *c = arg;
    size_t size = c->b->size, hlen;
    char head[64], line[BPUT_LINE_MAX], *req;
    const char *err;

    /* The whole request in one buffer, so each put is one send(). */
    hlen = (size_t)snprintf(head, sizeof(head), "put %d 0 %d %zu\r\n", BPUT_PRI, BPUT_TTR, size);
    if ((req = malloc(hlen + size + 2)) == NULL) {
        bput_error(c, "request", "out of memory");
        return NULL;
    }
    memcpy(req, head, hlen);
    bput_body(req + hlen, size, c->index);
    memcpy(req + hlen + size, "\r\n", 2);
    for (uint64_t i = 0; i < c->jobs; i++) {
        uint64_t t0 = lat_now_ns();

        if (bput_send_all(c->fd, req, hlen + size + 2) != 0) {
            bput_error(c, "send", strerror(errno));
            break; /* the connection is gone: the rest of its puts cannot run */
        }
        if (bput_read_line(c, line, sizeof(line), &err) != 0) {
            bput_error(c, "answer", err);
            break;
        }
        if (strncmp(line, "INSERTED ", 9) != 0) {
            bput_error(c, "put", line); /* BURIED, JOB_TOO_BIG, DRAINING, ... */
            continue;
        }
        c->lat[c->nlat++] = lat_now_ns() - t0;
    }
    c->errors = c->jobs - c->nlat; /* puts never made after a break count too */
    free(req);
    return NULL;
}



/* Merge latencies, print the report. Returns the number of errors. */
static uint64_t
bput_report(const struct bput *b, struct bput_conn *cs, double secs)
{
    uint64_t n = 0, errors = 0, *all;

    for (unsigned i = 0; i < b->conns; i++)
        n += cs[i].nlat;
    if ((all = malloc((n ? n : 1) * sizeof(*all))) == NULL) {
        fprintf(stderr, "beanstalk-put: out of memory\n");
        return 1;
    }
    n = 0;
    for (unsigned i = 0; i < b->conns; i++) {
        memcpy(all + n, cs[i].lat, cs[i].nlat * sizeof(*all));
        n += cs[i].nlat;
        errors += cs[i].errors;
        if (cs[i].errors)
            fprintf(stderr, "beanstalk-put: connection %u: %" PRIu64 " errors, first: %s\n", i,
                    cs[i].errors, cs[i].first_error);
    }
    printf("server    %s\n", b->addr);
    printf("command   put, %zu-byte bodies, one at a time per connection\n", b->size);
    printf("jobs      %" PRIu64 "\n", b->jobs);
    printf("conns     %u\n", b->conns);
    printf("elapsed   %.3f s\n", secs);
    printf("rate      %.0f puts/s\n", secs > 0 ? (double)n / secs : 0.0);
    lat_print(all, n);
    printf("errors    %" PRIu64 "\n", errors);
    free(all);
    return errors;
}

static void
bput_usage(FILE *fp)
{
    fputs("usage: beanstalk-put [-s ADDR] [-n JOBS] [-c CONNS] [--size BYTES]\n"
          "  -s, --server ADDR  HOST:PORT (default " BPUT_DEFAULT_ADDR ")\n"
          "  -n, --jobs N       puts in all (default 10000)\n"
          "  -c, --conns N      connections, one thread and one put in flight each\n"
          "                     (default 1)\n"
          "      --size BYTES   job body size (default 16)\n",
          fp);
}

/* Returns -1 to go on, or an exit status. */
static int
bput_parse(struct bput *b, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'}, {"jobs", required_argument, NULL, 'n'},
        {"conns", required_argument, NULL, 'c'},  {"size", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int ch;

    while ((ch = getopt_long(argc, argv, "s:n:c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            b->addr = optarg;
            break;
        case 'n':
            if (args_num("beanstalk-put", "--jobs", optarg, 1, UINT64_MAX / 2, &b->jobs) != 0)
                return 2;
            break;
        case 'c':
            if (args_num("beanstalk-put", "--conns", optarg, 1, 1024, &v) != 0)
                return 2;
            b->conns = (unsigned)v;
            break;
        case 'S':
            /* beanstalkd's default max-job-size is 65535 */
            if (args_num("beanstalk-put", "--size", optarg, 0, (uint64_t)1 << 30, &v) != 0)
                return 2;
            b->size = (size_t)v;
            break;
        case 'h':
            bput_usage(stdout);
            return 0;
        default:
            bput_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        bput_usage(stderr);
        return 2;
    }
    if (args_hostport(b->addr, b->host, sizeof(b->host), b->port, sizeof(b->port)) != 0) {
        fprintf(stderr, "beanstalk-put: --server: expected HOST:PORT, got %s\n", b->addr);
        return 2;
    }
    return -1;
}

int
main(int argc, char **argv)
{
    struct bput b = {BPUT_DEFAULT_ADDR, "", "", 10000, 1, 16};
    struct bput_conn *cs;
    const char *err;
    uint64_t t0, errors;
    int r;

    if ((r = bput_parse(&b, argc, argv)) >= 0)
        return r;
    if ((cs = calloc(b.conns, sizeof(*cs))) == NULL)
        return 1;
    /* Connect them all before the clock starts, as forq-bench does. */
    for (unsigned i = 0; i < b.conns; i++) {
        cs[i].b = &b;
        cs[i].index = i;
        cs[i].jobs = b.jobs / b.conns + (i < b.jobs % b.conns);
        if ((cs[i].lat = calloc(cs[i].jobs ? cs[i].jobs : 1, sizeof(uint64_t))) == NULL)
            return 1;
        if ((cs[i].fd = bput_connect(&b, &err)) < 0) {
            fprintf(stderr, "beanstalk-put: cannot connect to %s: %s\n", b.addr, err);
            return 3;
        }
    }
    t0 = lat_now_ns();
    for (unsigned i = 0; i < b.conns; i++)
        if (pthread_create(&cs[i].tid, NULL, bput_thread_main, &cs[i]) != 0) {
            fprintf(stderr, "beanstalk-put: cannot start thread %u\n", i);
            return 1;
        }
    for (unsigned i = 0; i < b.conns; i++)
        pthread_join(cs[i].tid, NULL);
    errors = bput_report(&b, cs, (double)(lat_now_ns() - t0) / 1e9);
    for (unsigned i = 0; i < b.conns; i++) {
        close(cs[i].fd);
        free(cs[i].lat);
    }
    free(cs);
    return errors ? 1 : 0;
}
