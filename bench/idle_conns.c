/*
 * idle_conns.c — hold many idle protocol clients open on forqd.
 *
 *   idle-conns [-s ADDR] [-c N]
 *
 * Opens N connections to forqd (default 10000), sends each a HELLO straight
 * from proto/ (as forq-pipe encodes its SUBMITs) and reads the answer, so
 * every connection is a real client that has passed the handshake. Then it
 * prints "ready N" on stdout and holds them, doing nothing, until SIGTERM or
 * SIGINT; then it closes them (with a reset, so that no client port is left
 * in TIME_WAIT) and exits 0. bench/compare.sh runs the
 * end-to-end workload while they are held (workload E).
 *
 * RLIMIT_NOFILE is raised to what N needs when the hard limit allows it;
 * otherwise it stops at once and says so. A connection the server closes
 * while held is reported on stderr, and then the exit status is 1, so a
 * figure made while some of them were gone is not taken for one made with all
 * N. A token for HELLO, if forqd wants one, comes from $FORQ_TOKEN.
 *
 * Exit status: 0 fine, 1 a connection failed or was lost, 2 usage, 3 the
 * descriptor limit is too low.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>

#include "addr.h"
#include "forq.h"
#include "frame.h"
#include "msg.h"

#define IDLE_MAX_CONNS  1000000
#define IDLE_SPARE_FDS  32     /* stdio, the decoder, whatever libc opens */
#define IDLE_BATCH      256    /* connections handshaking at once */
#define IDLE_MAX_ANSWER 65536  /* a HELLO answer is a few dozen bytes */
#define IDLE_TIMEOUT_S  30     /* per connect / answer */

static volatile sig_atomic_t idle_stop;

static void
idle_on_signal(int sig)
{
    (void)sig;
    idle_stop = 1;
}

/* Where to connect: resolved once. */
struct idle_target {
    struct sockaddr_storage sa;
    socklen_t salen;
    int family;
};

static int
idle_resolve(const char *s, struct idle_target *t)
{
    struct addr a;
    struct addrinfo hints = {0}, *res = NULL;
    const char *why;
    int e;

    if (addr_parse(s, 0, &a, &why) != 0) {
        fprintf(stderr, "idle-conns: %s: %s\n", s, why);
        return -1;
    }
    memset(t, 0, sizeof(*t));
    if (a.kind == ADDR_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&t->sa;

        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, a.path, sizeof(sun->sun_path));
        t->salen = sizeof(*sun);
        t->family = AF_UNIX;
        return 0;
    }
    hints.ai_socktype = SOCK_STREAM;
    if ((e = getaddrinfo(a.host, a.port, &hints, &res)) != 0 || res == NULL) {
        fprintf(stderr, "idle-conns: %s: %s\n", s, gai_strerror(e));
        return -1;
    }
    memcpy(&t->sa, res->ai_addr, res->ai_addrlen);
    t->salen = res->ai_addrlen;
    t->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

/* Make room for need descriptors. Returns 0, or -1 having said why. */
static int
idle_nofile(rlim_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "idle-conns: getrlimit: %s\n", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_cur == RLIM_INFINITY)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr,
                "idle-conns: need %ju file descriptors but the hard limit is %ju "
                "(raise it first, e.g. as root: ulimit -Hn %ju)\n",
                (uintmax_t)need, (uintmax_t)rl.rlim_max, (uintmax_t)need);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "idle-conns: cannot raise the descriptor limit to %ju: %s\n",
                (uintmax_t)need, strerror(errno));
        return -1;
    }
    return 0;
}

static int
idle_connect(const struct idle_target *t)
{
    struct timeval tv = {IDLE_TIMEOUT_S, 0};
    int fd, one = 1;

    if ((fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&t->sa, t->salen) != 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    if (t->family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int
idle_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes. Returns 0, or -1 (errno; 0 at end of stream). */
static int
idle_read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n == 0) {
            errno = 0;
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR && !idle_stop)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read and check the answer to the HELLO sent on fd. Returns 0 or -1 (said why). */
static int
idle_answer(int fd, unsigned i, struct msg_decoder *d, uint8_t *body)
{
    uint8_t hdr[FRAME_HDR_LEN];
    struct msg_response resp;
    uint32_t blen;
    int e;

    if (idle_read_all(fd, hdr, sizeof(hdr)) != 0 ||
        (e = frame_hdr_decode(hdr, IDLE_MAX_ANSWER, &blen)) != 0 ||
        idle_read_all(fd, body, blen) != 0) {
        fprintf(stderr, "idle-conns: connection %u: no answer to HELLO: %s\n", i,
                errno ? strerror(errno) : "the server closed the connection");
        return -1;
    }
    if ((e = msg_decode_response(d, MSG_OP_HELLO, body, blen, &resp)) != 0) {
        fprintf(stderr, "idle-conns: connection %u: bad answer to HELLO: %s (%s)\n", i,
                forq_strerror(e), d->why);
        return -1;
    }
    if (resp.err.code != 0) {
        fprintf(stderr, "idle-conns: connection %u: HELLO refused: %s: %.*s\n", i,
                forq_strerror(resp.err.code), (int)resp.err.msg.len,
                resp.err.msg.ptr ? resp.err.msg.ptr : "");
        return -1;
    }
    if (resp.rid != 1 || resp.hello.version != MSG_PROTO_VERSION) {
        fprintf(stderr, "idle-conns: connection %u: unexpected HELLO answer (rid %" PRIu64
                        ", version %" PRIu32 ")\n",
                i, resp.rid, resp.hello.version);
        return -1;
    }
    return 0;
}

/*
 * Hold the connections until a signal. Returns how many the server closed
 * (or wrote to: an idle client expects nothing) meanwhile.
 */
static unsigned
idle_hold(struct pollfd *pfds, unsigned n, const sigset_t *waitmask)
{
    unsigned lost = 0;
    char buf[256];

    while (!idle_stop) {
        int r = ppoll(pfds, n, NULL, waitmask);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "idle-conns: poll: %s\n", strerror(errno));
            break;
        }
        for (unsigned i = 0; i < n && r > 0; i++) {
            ssize_t got;

            if (pfds[i].fd < 0 || pfds[i].revents == 0)
                continue;
            r--;
            got = read(pfds[i].fd, buf, sizeof(buf));
            if (got > 0) {
                fprintf(stderr, "idle-conns: connection %u: unexpected %zd bytes from the server\n",
                        i, got);
                continue;
            }
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (lost++ < 5)
                fprintf(stderr, "idle-conns: connection %u closed by the server%s%s\n", i,
                        got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
            close(pfds[i].fd);
            pfds[i].fd = -1;
        }
    }
    return lost;
}

static void
idle_usage(FILE *fp)
{
    fputs("usage: idle-conns [-s ADDR] [-c N]\n"
          "  -s ADDR  default $FORQ_SERVER, else " FORQ_DEFAULT_ADDR "\n"
          "  -c N     connections to open, each with a HELLO answered (default 10000)\n"
          "Prints \"ready N\" once all are open, holds them until SIGTERM or SIGINT,\n"
          "then closes them and exits 0 (1 if one failed or the server closed one).\n",
          fp);
}

int
main(int argc, char **argv)
{
    const char *addr = NULL, *token;
    struct idle_target target;
    struct msg_request req;
    struct msg_decoder d;
    struct sigaction sa;
    sigset_t block, waitmask;
    struct pollfd *pfds;
    msgpack_sbuffer hello;
    uint8_t *body;
    unsigned long n = 10000;
    unsigned opened = 0, lost;
    char *end;
    int ch, rc = 1;

    while ((ch = getopt(argc, argv, "s:c:h")) != -1) {
        switch (ch) {
        case 's':
            addr = optarg;
            break;
        case 'c':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 || n == 0 ||
                n > IDLE_MAX_CONNS) {
                fprintf(stderr, "idle-conns: -c: expected a number in 1..%d\n", IDLE_MAX_CONNS);
                return 2;
            }
            break;
        case 'h':
            idle_usage(stdout);
            return 0;
        default:
            idle_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        idle_usage(stderr);
        return 2;
    }
    if (addr == NULL && ((addr = getenv("FORQ_SERVER")) == NULL || addr[0] == '\0'))
        addr = FORQ_DEFAULT_ADDR;
    if (idle_nofile((rlim_t)n + IDLE_SPARE_FDS) != 0)
        return 3;
    if (idle_resolve(addr, &target) != 0)
        return 1;

    /*
     * SIGTERM and SIGINT set idle_stop (without SA_RESTART, so a blocking
     * connect or read returns EINTR); while the connections are held they
     * are blocked except inside ppoll, so none is missed.
     */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = idle_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* One HELLO, the same bytes for every connection. */
    memset(&req, 0, sizeof(req));
    req.op = MSG_OP_HELLO;
    req.rid = 1;
    req.u.hello.version = MSG_PROTO_VERSION;
    req.u.hello.client = msg_str_c("idle-conns");
    if ((token = getenv("FORQ_TOKEN")) != NULL && token[0] != '\0')
        req.u.hello.token = msg_str_c(token);
    msgpack_sbuffer_init(&hello);
    if (msg_encode_request(&hello, &req) != 0) {
        fprintf(stderr, "idle-conns: cannot encode HELLO\n");
        return 1;
    }
    if ((pfds = calloc(n, sizeof(*pfds))) == NULL || (body = malloc(IDLE_MAX_ANSWER)) == NULL ||
        msg_decoder_init(&d) != 0) {
        fprintf(stderr, "idle-conns: out of memory\n");
        return 1;
    }

    /* Connect and send HELLO to a batch, then read the batch's answers. */
    while (opened < n && !idle_stop) {
        unsigned first = opened, last = opened;

        for (; last < n && last - first < IDLE_BATCH; last++) {
            int fd = idle_connect(&target);

            if (fd < 0) {
                if (idle_stop)
                    break;
                fprintf(stderr, "idle-conns: connection %u: cannot connect to %s: %s\n", last,
                        addr, strerror(errno));
                goto out;
            }
            pfds[last].fd = fd;
            pfds[last].events = POLLIN;
            opened = last + 1;
            if (idle_write_all(fd, hello.data, hello.size) != 0) {
                fprintf(stderr, "idle-conns: connection %u: cannot send HELLO: %s\n", last,
                        strerror(errno));
                goto out;
            }
        }
        for (unsigned i = first; i < last; i++)
            if (idle_stop || idle_answer(pfds[i].fd, i, &d, body) != 0)
                goto out;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    if (idle_stop) {
        fprintf(stderr, "idle-conns: stopped after %u connections\n", opened);
        goto out;
    }
    printf("ready %u\n", opened);
    fflush(stdout);

    lost = idle_hold(pfds, opened, &waitmask);
    if (lost > 0)
        fprintf(stderr, "idle-conns: the server closed %u of the %u connections while they were "
                        "held\n",
                lost, opened);
    else
        rc = 0;
out:
    /*
     * Close with a reset (SO_LINGER 0), not a FIN: a FIN from this side
     * would leave N local ports in TIME_WAIT for a minute, and with them a
     * quarter of the ephemeral range that other programs here bind
     * listeners in (a listening socket cannot take a port that a client
     * socket holds in TIME_WAIT).
     */
    for (unsigned i = 0; i < opened; i++)
        if (pfds[i].fd >= 0) {
            struct linger lg = {1, 0};

            setsockopt(pfds[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(pfds[i].fd);
        }
    printf("closed %u\n", opened);
    msg_decoder_fini(&d);
    msgpack_sbuffer_destroy(&hello);
    free(body);
    free(pfds);
    return rc;
}
