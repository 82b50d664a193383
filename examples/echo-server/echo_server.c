/*
 * echo_server.c — forq-echo-server: a threaded TCP server that answers every
 * line it reads with the same line upper-cased, the upper-casing being done
 * by an `upper` job on forqd. An example of libforq used from many threads.
 *
 * It is the classic Python threading exercise, with the work moved to forqd:
 *
 *     class Handler(socketserver.StreamRequestHandler):
 *         def handle(self):
 *             for line in self.rfile:
 *                 self.wfile.write(line.upper())
 *
 *     srv = socketserver.ThreadingTCPServer(("127.0.0.1", 7341), Handler)
 *     srv.serve_forever()
 *
 *   ThreadingTCPServer(...)   echo_listen(): bind, listen, print the address
 *   serve_forever()           echo_serve(): poll the listener and a signalfd,
 *                             accept, one thread per connection
 *   Handler.handle()          echo_conn_main(): read lines, answer each in turn
 *   line.upper()              echo_answer(): forq_submit("upper") on the one
 *                             forq_client every thread shares, then wait for
 *                             the future's result
 *   srv.shutdown()            echo_stop(): on SIGINT/SIGTERM
 *
 * libforq is thread-safe and multiplexes every thread's requests on one
 * connection to forqd, so the handler threads need no lock of their own
 * around it; the only shared state here is the list of open connections,
 * kept so that a stop can end them (srv->mu).
 *
 * What a client sees: one answer line per line sent, in order. A line is the
 * bytes before '\n' (a '\r' is kept, like any other byte); a last line
 * without '\n' is answered too. When a line cannot be answered the answer is
 * "error: <forq_errname>: <message>" and the connection goes on: a failed job,
 * a lost forqd (libforq reconnects on the next line), a line longer than
 * ECHO_LINE_MAX ("error: too_big: ...", the rest of that line is skipped).
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "forq.h"

#define ECHO_NAME           "forq-echo-server"
#define ECHO_DEFAULT_LISTEN "127.0.0.1:7341"
#define ECHO_LINE_MAX       65536 /* longest line answered, in bytes, without its '\n' */
#define ECHO_ERRLINE_MAX    768
#define ECHO_EXIT_USAGE     2

struct echo_opts {
    const char *listen; /* as given, for messages */
    char host[256];     /* "" = every local address */
    char port[24];      /* decimal, 0..65535 */
    const char *server; /* forqd's address */
};

struct echo_conn;

struct echo_server {
    forq_client *c; /* shared by every connection thread */
    int lfd;        /* listening socket */
    int sfd;        /* signalfd for SIGINT and SIGTERM */
    pthread_mutex_t mu;
    pthread_cond_t idle;     /* nconns dropped to 0 */
    struct echo_conn *head;  /* under mu: open connections */
    struct echo_conn *ended; /* under mu: connections whose thread is leaving, to join */
    int nconns;              /* under mu: open connections */
};

struct echo_conn {
    struct echo_server *srv;
    pthread_t th;
    int fd;
    struct echo_conn *prev, *next; /* under srv->mu */
    int skipping;                  /* inside an over-long line: drop bytes up to '\n' */
    size_t used;                   /* bytes of buf holding a line not yet complete */
    char buf[ECHO_LINE_MAX + 1];   /* the longest line plus its '\n' */
};

/* ------------------------------------------------------------------ arguments */

static void
echo_usage(FILE *fp)
{
    fputs("usage: " ECHO_NAME " [--listen HOST:PORT] [-s ADDR]\n"
          "\n"
          "Answers each line received over TCP with the line upper-cased, the\n"
          "work done by an `upper` job on forqd.\n"
          "\n"
          "  --listen HOST:PORT   where to accept clients (default " ECHO_DEFAULT_LISTEN ";\n"
          "                       port 0 picks a free port; IPv6 as [::1]:PORT)\n"
          "  -s, --server ADDR    forqd: tcp://HOST:PORT or unix:///PATH; default\n"
          "                       $FORQ_SERVER, else " FORQ_DEFAULT_ADDR "\n"
          "  -h, --help           show this help\n",
          fp);
}

static int echo_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A message (when fmt is not NULL), the usage on stderr, and the exit status. */
static int
echo_usage_error(const char *fmt, ...)
{
    va_list ap;

    if (fmt != NULL) {
        fputs(ECHO_NAME ": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    echo_usage(stderr);
    return ECHO_EXIT_USAGE;
}

/*
 * Split "HOST:PORT" or "[V6]:PORT" into o->host and o->port. The port must be
 * a number in 0..65535; an IPv6 host needs its brackets, or the split would be
 * ambiguous. 0 or -1.
 */
static int
echo_split_hostport(const char *s, struct echo_opts *o)
{
    const char *colon = strrchr(s, ':'), *h = s, *he;
    char *end;
    long port;

    if (colon == NULL)
        return -1;
    he = colon;
    if (s[0] == '[') {
        h = s + 1;
        he = colon - 1;
        if (he < h || *he != ']')
            return -1;
    } else if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        return -1;
    }
    if ((size_t)(he - h) >= sizeof(o->host) || colon[1] < '0' || colon[1] > '9')
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535 || end - (colon + 1) > 5)
        return -1;
    memcpy(o->host, h, (size_t)(he - h));
    o->host[he - h] = '\0';
    snprintf(o->port, sizeof(o->port), "%ld", port);
    return 0;
}

/* The server address, by the forq command's rule: -s, $FORQ_SERVER, default. */
static void
echo_default_server(struct echo_opts *o)
{
    if (o->server == NULL && (o->server = getenv("FORQ_SERVER")) != NULL && o->server[0] == '\0')
        o->server = NULL;
    if (o->server == NULL)
        o->server = FORQ_DEFAULT_ADDR;
}

/* Parse argv into o. Returns -1 to go on, else the exit status (0 after --help). */
static int
echo_parse(int argc, char **argv, struct echo_opts *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"server", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof(*o));
    o->listen = ECHO_DEFAULT_LISTEN;
    while ((ch = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
        if (ch == 'l')
            o->listen = optarg;
        else if (ch == 's')
            o->server = optarg;
        else if (ch == 'h') {
            echo_usage(stdout);
            return 0;
        } else { /* getopt_long has said what is wrong */
            return echo_usage_error(NULL);
        }
    }
    if (optind < argc)
        return echo_usage_error("unexpected argument '%s'", argv[optind]);
    if (echo_split_hostport(o->listen, o) != 0)
        return echo_usage_error("--listen '%s': want HOST:PORT", o->listen);
    echo_default_server(o);
    return -1;
}

/* ------------------------------------------------------------------ listener */

/* Print the address the kernel bound (port 0 picks one) and flush it for scripts. */
static void
echo_print_bound(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return;
    if (ss.ss_family == AF_INET6)
        printf("listening on [%s]:%s\n", host, port);
    else
        printf("listening on %s:%s\n", host, port);
    fflush(stdout);
}

/* A listening socket on the first address of ai that accepts one. fd or -1. */
static int
echo_bind_first(const struct addrinfo *ai)
{
    int fd = -1, one = 1;

    for (; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            return fd;
        close(fd);
        fd = -1;
    }
    return -1;
}

/*
 * Open the listener. Non-blocking, so that a client that leaves between poll()
 * and accept() cannot block the accept loop. 0, or -1 after saying why.
 */
static int
echo_listen(struct echo_server *srv, const struct echo_opts *o)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    int e;

    if ((e = getaddrinfo(o->host[0] ? o->host : NULL, o->port, &hints, &ai)) != 0) {
        fprintf(stderr, ECHO_NAME ": --listen %s: %s\n", o->listen, gai_strerror(e));
        return -1;
    }
    srv->lfd = echo_bind_first(ai);
    e = errno;
    freeaddrinfo(ai);
    if (srv->lfd < 0) {
        fprintf(stderr, ECHO_NAME ": --listen %s: %s\n", o->listen, strerror(e));
        return -1;
    }
    echo_print_bound(srv->lfd);
    return 0;
}

/* ------------------------------------------------------------------ answers */

/* Send every byte of iov, across partial writes and EINTR. 0, or -1 (client gone). */
static int
echo_send_iov(int fd, struct iovec *iov, int cnt)
{
    struct msghdr mh = {0};
    ssize_t k;

    while (cnt > 0) {
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)cnt;
        /* MSG_NOSIGNAL: a client that left is an error here, not a SIGPIPE. */
        if ((k = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (; cnt > 0 && (size_t)k >= iov->iov_len; iov++, cnt--)
            k -= (ssize_t)iov->iov_len;
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

/* One answer line: data, then '\n', in one sendmsg (no Nagle wait between them). */
static int
echo_reply(int fd, const void *data, size_t len)
{
    struct iovec iov[2] = {{(void *)data, len}, {"\n", 1}};

    return echo_send_iov(fd, iov, 2);
}

static int echo_reply_error(int fd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * "error: <forq_errname(code)>: <message>". Line breaks inside the message
 * (a task's failure text is free-form) become spaces, so that one line asked
 * is still one line answered.
 */
static int
echo_reply_error(int fd, int code, const char *fmt, ...)
{
    char line[ECHO_ERRLINE_MAX];
    va_list ap;
    int n;

    n = snprintf(line, sizeof(line), "error: %s: ", forq_errname(code));
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *p = line; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return echo_reply(fd, line, strlen(line));
}

/*
 * Answer one line: an `upper` job on the shared client, waited for without
 * limit (a job that fails, or a forqd that goes away, ends the wait with an
 * error code). 0, or -1 when the client can no longer be written to.
 */
static int
echo_answer(struct echo_conn *ec, const char *line, size_t len)
{
    forq_future *f = NULL;
    const void *data;
    size_t n;
    int r;

    if ((r = forq_submit(ec->srv->c, "upper", line, len, NULL, &f)) == 0)
        r = forq_future_result(f, -1, &data, &n);
    if (r == 0)
        r = echo_reply(ec->fd, data, n);
    else
        r = echo_reply_error(ec->fd, r, "%s", forq_errmsg());
    forq_future_free(f);
    return r;
}

/* ------------------------------------------------------------------ connections */

/*
 * Answer every complete line in ec->buf and keep the incomplete rest. A buffer
 * full without a '\n' holds a line over ECHO_LINE_MAX: answer it with an error
 * at once and drop its bytes up to the next '\n'. 0, or -1 (client gone).
 */
static int
echo_conn_lines(struct echo_conn *ec)
{
    char *p = ec->buf, *end = ec->buf + ec->used, *nl;

    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (!ec->skipping && echo_answer(ec, p, (size_t)(nl - p)) != 0)
            return -1;
        ec->skipping = 0;
        p = nl + 1;
    }
    ec->used = (size_t)(end - p);
    memmove(ec->buf, p, ec->used);
    if (ec->used < sizeof(ec->buf))
        return 0;
    ec->used = 0;
    if (ec->skipping)
        return 0;
    ec->skipping = 1;
    return echo_reply_error(ec->fd, FORQ_ERR_TOO_BIG, "line longer than %d bytes", ECHO_LINE_MAX);
}

/* recv into the free end of ec->buf, retrying EINTR. As recv(). */
static ssize_t
echo_conn_recv(struct echo_conn *ec)
{
    ssize_t k;

    do
        k = recv(ec->fd, ec->buf + ec->used, sizeof(ec->buf) - ec->used, 0);
    while (k < 0 && errno == EINTR);
    if (k > 0)
        ec->used += (size_t)k;
    return k;
}

/*
 * Leave the open list for the ended one (whoever joins the thread frees ec),
 * close, and wake echo_stop when the last one goes. The thread touches
 * nothing after this.
 */
static void
echo_conn_end(struct echo_conn *ec)
{
    struct echo_server *srv = ec->srv;

    pthread_mutex_lock(&srv->mu);
    if (ec->prev != NULL)
        ec->prev->next = ec->next;
    else
        srv->head = ec->next;
    if (ec->next != NULL)
        ec->next->prev = ec->prev;
    /* Closed under mu: echo_stop must never shut down an fd number reused since. */
    close(ec->fd);
    ec->next = srv->ended;
    srv->ended = ec;
    if (--srv->nconns == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mu);
}

/*
 * Join the threads of the connections that have ended and free them. A
 * thread is joined rather than detached so that echo_stop returns only once
 * every handler thread is gone, not just past its last use of the server.
 */
static void
echo_reap(struct echo_server *srv)
{
    struct echo_conn *ec, *next;

    pthread_mutex_lock(&srv->mu);
    ec = srv->ended;
    srv->ended = NULL;
    pthread_mutex_unlock(&srv->mu);
    for (; ec != NULL; ec = next) {
        next = ec->next;
        pthread_join(ec->th, NULL);
        free(ec);
    }
}

/* The handler thread: Handler.handle() of the Python exercise. */
static void *
echo_conn_main(void *arg)
{
    struct echo_conn *ec = arg;
    ssize_t k;

    while ((k = echo_conn_recv(ec)) > 0)
        if (echo_conn_lines(ec) != 0)
            break;
    /* Like a file's last line, a last line without '\n' gets its answer. */
    if (k == 0 && ec->used > 0 && !ec->skipping)
        (void)echo_answer(ec, ec->buf, ec->used);
    echo_conn_end(ec);
    return NULL;
}

/*
 * Give an accepted socket its own thread. The connection joins the list
 * here, on the accepting thread, so that echo_stop sees every one.
 */
static void
echo_conn_start(struct echo_server *srv, int fd)
{
    struct echo_conn *ec = malloc(sizeof(*ec));

    if (ec == NULL) {
        close(fd);
        return;
    }
    *ec = (struct echo_conn){.srv = srv, .fd = fd};
    pthread_mutex_lock(&srv->mu);
    if (pthread_create(&ec->th, NULL, echo_conn_main, ec) == 0) {
        ec->next = srv->head;
        if (srv->head != NULL)
            srv->head->prev = ec;
        srv->head = ec;
        srv->nconns++;
        ec = NULL;
    }
    pthread_mutex_unlock(&srv->mu);
    if (ec != NULL) {
        fprintf(stderr, ECHO_NAME ": cannot start a thread; closing the connection\n");
        close(fd);
        free(ec);
    }
}

/* ------------------------------------------------------------------ serving */

/*
 * Accept one client. Out of descriptors or memory, pause briefly instead of
 * spinning on a listener that stays readable.
 */
static void
echo_accept(struct echo_server *srv)
{
    int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);

    echo_reap(srv); /* the threads of connections gone since the last accept */
    if (fd >= 0) {
        echo_conn_start(srv, fd);
        return;
    }
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        fprintf(stderr, ECHO_NAME ": accept: %s\n", strerror(errno));
        poll(NULL, 0, 100);
    }
}

/* serve_forever(): accept until SIGINT or SIGTERM arrives on the signalfd. */
static void
echo_serve(struct echo_server *srv)
{
    struct pollfd pfd[2] = {{.fd = srv->lfd, .events = POLLIN}, {.fd = srv->sfd, .events = POLLIN}};

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, ECHO_NAME ": poll: %s\n", strerror(errno));
            return;
        }
        if (pfd[1].revents != 0)
            return;
        if (pfd[0].revents != 0)
            echo_accept(srv);
    }
}

/*
 * shutdown(): stop accepting, end every connection (shutdown() makes its
 * blocked recv return 0; forq_client_close() makes its pending wait fail),
 * and wait for their threads to leave before the client is freed.
 */
static void
echo_stop(struct echo_server *srv)
{
    close(srv->lfd);
    pthread_mutex_lock(&srv->mu);
    for (struct echo_conn *ec = srv->head; ec != NULL; ec = ec->next)
        shutdown(ec->fd, SHUT_RDWR);
    pthread_mutex_unlock(&srv->mu);
    forq_client_close(srv->c);
    pthread_mutex_lock(&srv->mu);
    while (srv->nconns > 0)
        pthread_cond_wait(&srv->idle, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
    echo_reap(srv);
    forq_client_free(srv->c);
}

/*
 * SIGINT and SIGTERM are blocked in every thread (the mask is inherited, so
 * this runs before any thread exists, libforq's own included) and read from a
 * signalfd by the accept loop: no handler, no async-signal-safety to mind.
 * Their disposition is reset first: a shell starts background jobs with
 * SIGINT ignored, and an ignored signal never reaches a signalfd. SIGPIPE is
 * ignored as a second guard beside MSG_NOSIGNAL (stdout may be a pipe whose
 * reader left).
 */
static int
echo_signals(struct echo_server *srv)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
        (srv->sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        fprintf(stderr, ECHO_NAME ": signalfd: %s\n", strerror(errno));
        return -1;
    }
    /* Blocked first, so that a signal arriving now waits for the signalfd. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/*
 * Connect the shared client; a bad address is a usage error, as in forq(1).
 * libforq says "connect ADDR: why"; the message keeps only the why.
 */
static int
echo_connect(struct echo_server *srv, const struct echo_opts *o)
{
    int r = forq_connect(o->server, &srv->c);
    const char *msg = forq_errmsg();
    size_t n = strlen(o->server);

    if (r == 0)
        return 0;
    if (r == FORQ_ERR_INVALID) {
        fprintf(stderr, ECHO_NAME ": -s: %s\n", msg);
        return ECHO_EXIT_USAGE;
    }
    if (strncmp(msg, "connect ", 8) == 0 && strncmp(msg + 8, o->server, n) == 0 &&
        strncmp(msg + 8 + n, ": ", 2) == 0)
        msg += 8 + n + 2;
    fprintf(stderr, ECHO_NAME ": cannot connect to %s: %s\n", o->server, msg);
    return 1;
}

int
main(int argc, char **argv)
{
    struct echo_server srv = {.lfd = -1, .sfd = -1};
    struct echo_opts o;
    int r;

    if ((r = echo_parse(argc, argv, &o)) >= 0)
        return r;
    if (echo_signals(&srv) != 0)
        return 1;
    if ((r = echo_connect(&srv, &o)) != 0)
        return r;
    if (echo_listen(&srv, &o) != 0) {
        forq_client_free(srv.c);
        return 1;
    }
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.idle, NULL);
    echo_serve(&srv);
    echo_stop(&srv);
    pthread_cond_destroy(&srv.idle);
    pthread_mutex_destroy(&srv.mu);
    close(srv.sfd);
    return 0;
}
