/*
 * server.c — the event loop's set-up and teardown: event base, listeners
 * (TCP and unix), accepting, signals, and the deferred freeing of closed
 * connections. Runs on the main thread, which is the loop thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "addr.h"
#include "conn.h"
#include "forq.h"
#include "job.h"
#include "log.h"
#include "jobs.h"
#include "ops.h"
#include "reload.h"
#include "server.h"
#include "service.h"

#define SERVER_BACKLOG  1024
#define SERVER_FLUSH_MS 2000 /* stopping: longest wait for queued replies to go out */

/* ------------------------------------------------------------------ connections */

static void
server_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    struct conn *c;

    (void)fd;
    (void)what;
    while ((c = TAILQ_FIRST(&srv->reap)) != NULL) {
        TAILQ_REMOVE(&srv->reap, c, link);
        conn_free(c);
    }
}

void
server_reap_later(struct server *srv, struct conn *c)
{
    if (c->reaped)
        return;
    c->reaped = 1;
    idmap_del(&srv->conn_ids, c->id);
    TAILQ_REMOVE(&srv->conns, c, link);
    srv->nconns--;
    TAILQ_INSERT_TAIL(&srv->reap, c, link);
    event_active(srv->reap_ev, 0, 0);
}

struct conn *
server_conn(struct server *srv, uint64_t id)
{
    struct conn *c = idmap_get(&srv->conn_ids, id);

    return c != NULL && !c->closing ? c : NULL;
}

static void
server_peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "unix");
    }
}

/* Refuse a connection with a readable error frame, then close it. */
static void
server_refuse(struct server *srv, evutil_socket_t fd, int code, const char *why)
{
    msgpack_sbuffer *sb = &srv->out;

    if (msg_encode_error(sb, 0, code, why) == 0)
        (void)!send(fd, sb->data, sb->size, MSG_NOSIGNAL | MSG_DONTWAIT);
    sb->size = 0;
    close(fd);
}

/*
 * A unix socket peer, by SO_PEERCRED: its name for the logs ("unix uid U
 * pid P"), and whether allow_uids / allow_gids admit it (both empty: every
 * peer; else its uid in the one or its gid, the primary group of the
 * connecting process, in the other). 1: admitted; 0 with why.
 */
static int
server_unix_peer(const struct server *srv, evutil_socket_t fd, char *peer, size_t len, char *why,
                 size_t whylen)
{
    const struct config *cfg = srv->cfg;
    struct ucred uc;
    socklen_t ul = sizeof(uc);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0) {
        snprintf(peer, len, "unix");
        snprintf(why, whylen, "cannot read the peer's credentials: %s", strerror(errno));
        return cfg->nallow_uids == 0 && cfg->nallow_gids == 0;
    }
    snprintf(peer, len, "unix uid %u pid %d", (unsigned)uc.uid, (int)uc.pid);
    if (cfg->nallow_uids == 0 && cfg->nallow_gids == 0)
        return 1;
    for (size_t i = 0; i < cfg->nallow_uids; i++)
        if (cfg->allow_uids[i] == (uint32_t)uc.uid)
            return 1;
    for (size_t i = 0; i < cfg->nallow_gids; i++)
        if (cfg->allow_gids[i] == (uint32_t)uc.gid)
            return 1;
    snprintf(why, whylen, "uid %u gid %u (pid %d) is not in allow_uids or allow_gids",
             (unsigned)uc.uid, (unsigned)uc.gid, (int)uc.pid);
    return 0;
}

static void
server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
                 void *arg)
{
    struct server *srv = arg;
    struct conn *c;
    char peer[96];

    (void)lev;
    (void)len;
    if (srv->nconns >= srv->cfg->max_connections) {
        log_warn("refusing a connection: %zu connections open (max-connections)", srv->nconns);
        server_refuse(srv, fd, FORQ_ERR_LIMIT, "too many connections");
        return;
    }
    if (sa->sa_family == AF_UNIX) {
        char why[128];

        if (!server_unix_peer(srv, fd, peer, sizeof(peer), why, sizeof(why))) {
            log_warn("refusing a unix socket peer: %s", why);
            server_refuse(srv, fd, FORQ_ERR_AUTH, why);
            return;
        }
    } else {
        server_peer_name(sa, peer, sizeof(peer));
    }
    if (conn_new(srv, fd, peer, &c) != 0)
        log_err("cannot set up a connection from %s: out of memory", peer);
}

static void
server_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i].lev);
}

/* accept(2) failed, e.g. out of descriptors: pause accepting instead of spinning. */
static void
server_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct server *srv = arg;
    struct timeval tv = {0, 100000};
    int err = EVUTIL_SOCKET_ERROR();

    (void)lev;
    log_warn("accept: %s; pausing for 100 ms", evutil_socket_error_to_string(err));
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_disable(srv->listeners[i].lev);
    evtimer_add(srv->accept_retry_ev, &tv);
}

/* ------------------------------------------------------------------ listeners */

static struct evconnlistener *
server_bind(struct server *srv, const struct sockaddr *sa, socklen_t len)
{
    struct evconnlistener *lev;

    lev = evconnlistener_new_bind(srv->base, server_accept_cb, srv,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                      LEV_OPT_CLOSE_ON_EXEC,
                                  SERVER_BACKLOG, sa, (int)len);
    if (lev != NULL)
        evconnlistener_set_error_cb(lev, server_accept_error_cb);
    return lev;
}

static int
server_listen_tcp(struct server *srv, const struct addr *a, struct server_listener *l)
{
    struct addrinfo hints = {0}, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char name[sizeof(a->host) + sizeof(a->port) + 2];
    int e;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((e = getaddrinfo(a->host, a->port, &hints, &ai)) != 0) {
        log_err("cannot listen on tcp://%s:%s: %s", a->host, a->port, gai_strerror(e));
        return FORQ_ERR_INVALID;
    }
    l->lev = server_bind(srv, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (l->lev == NULL) {
        log_err("cannot listen on tcp://%s:%s: %s", a->host, a->port, strerror(errno));
        return FORQ_ERR_SYSTEM;
    }
    /* Report the real port: with port 0 the kernel picked one. */
    if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&ss, &sl) == 0)
        server_peer_name((struct sockaddr *)&ss, name, sizeof(name));
    else
        snprintf(name, sizeof(name), "%s:%s", a->host, a->port);
    snprintf(l->name, sizeof(l->name), "tcp://%s", name);
    return 0;
}

/* Is something already accepting on this unix socket path? */
static int
server_unix_in_use(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), in_use;

    if (fd < 0)
        return 0;
    in_use = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    close(fd);
    return in_use;
}

static int
server_listen_unix(struct server *srv, const char *path, struct server_listener *l)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_err("cannot listen on unix://%s: the file exists and is not a socket", path);
            return FORQ_ERR_INVALID;
        }
        if (server_unix_in_use(&sun)) {
            log_err("cannot listen on unix://%s: another server is accepting there", path);
            return FORQ_ERR_INVALID;
        }
        unlink(path); /* a stale socket left by a process that died */
    }
    if ((l->lev = server_bind(srv, (struct sockaddr *)&sun, sizeof(sun))) == NULL) {
        log_err("cannot listen on unix://%s: %s", path, strerror(errno));
        return FORQ_ERR_SYSTEM;
    }
    if ((l->unix_path = strdup(path)) == NULL)
        return FORQ_ERR_NOMEM;
    snprintf(l->name, sizeof(l->name), "unix://%s", path);
    return 0;
}

/* A socket systemd passed: already bound and listening. */
static int
server_listen_passed(struct server *srv, int fd, struct server_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char name[sizeof(l->name) - 8];

    /* Backlog 0: do not call listen(2) again; systemd did, with the unit's Backlog=. */
    l->lev = evconnlistener_new(srv->base, server_accept_cb, srv,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (l->lev == NULL) {
        log_err("cannot accept on the socket systemd passed (fd %d): %s", fd, strerror(errno));
        close(fd);
        return FORQ_ERR_SYSTEM;
    }
    evconnlistener_set_error_cb(l->lev, server_accept_error_cb);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(l->name, sizeof(l->name), "fd %d", fd);
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;

        snprintf(l->name, sizeof(l->name), "unix://%.*s", (int)sizeof(sun->sun_path),
                 sun->sun_path);
    } else {
        server_peer_name((struct sockaddr *)&ss, name, sizeof(name));
        snprintf(l->name, sizeof(l->name), "tcp://%s", name);
    }
    return 0;
}

static int
server_listen(struct server *srv)
{
    int fds[CONFIG_LISTEN_MAX], n;
    char err[256];

    /* Socket activation: systemd's sockets replace the configured ones. */
    if ((n = service_listen_fds(fds, CONFIG_LISTEN_MAX, err, sizeof(err))) < 0) {
        log_err("%s", err);
        return FORQ_ERR_INVALID;
    }
    for (int i = 0; i < n; i++) {
        struct server_listener *l = &srv->listeners[srv->nlisteners];
        int e = server_listen_passed(srv, fds[i], l);

        if (e != 0) {
            while (++i < n)
                close(fds[i]);
            return e;
        }
        srv->nlisteners++;
        log_info("listening on %s (passed by systemd)", l->name);
    }
    if (n > 0)
        return 0;
    for (size_t i = 0; i < srv->cfg->nlisten; i++) {
        struct server_listener *l = &srv->listeners[srv->nlisteners];
        struct addr a;
        const char *why;
        int e;

        /* config_parse_args has checked it; parse it into its parts. */
        if (addr_parse(srv->cfg->listen[i], ADDR_PORT_ZERO, &a, &why) != 0) {
            log_err("cannot listen on %s: %s", srv->cfg->listen[i], why);
            return FORQ_ERR_INVALID;
        }
        e = a.kind == ADDR_UNIX ? server_listen_unix(srv, a.path, l)
                                : server_listen_tcp(srv, &a, l);
        if (l->lev != NULL)
            srv->nlisteners++;
        if (e != 0)
            return e;
        log_info("listening on %s", l->name);
    }
    return 0;
}

/* ------------------------------------------------------------------ life cycle */

/* Stop accepting: free the listeners (systemd keeps its own copy of passed sockets). */
static void
server_close_listeners(struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        evconnlistener_free(srv->listeners[i].lev);
        if (srv->listeners[i].unix_path != NULL)
            unlink(srv->listeners[i].unix_path);
        free(srv->listeners[i].unix_path);
    }
    srv->nlisteners = 0;
    if (srv->accept_retry_ev != NULL)
        event_del(srv->accept_retry_ev);
}

/* The status line systemd shows (STATUS=) and the drain logs. */
static void
server_status(void *arg, char *buf, size_t len)
{
    struct server *srv = arg;
    uint64_t queued, running, scheduled;

    jobs_counts(srv->jobs, &queued, &running, &scheduled);
    snprintf(buf, len, "%s%llu queued, %llu running, %llu scheduled, %zu connection%s",
             srv->draining ? "draining: " : "", (unsigned long long)queued,
             (unsigned long long)running, (unsigned long long)scheduled, srv->nconns,
             srv->nconns == 1 ? "" : "s");
}

/*
 * 1 when every reply has been handed to the kernel, the store owes no
 * answer that would make another (a submission's, when the drain did not
 * wait for them: drain_timeout_ms 0 or the timeout), and no connection has
 * requests received but not read yet (they get their answers, `shutdown` for
 * a SUBMIT, rather than a reset).
 */
static int
server_flushed(const struct server *srv)
{
    const struct conn *c;

    if (jobs_store_pending(srv->jobs) > 0)
        return 0;
    TAILQ_FOREACH(c, &srv->conns, link)
        if (!c->closing && (conn_out_len(c) > 0 || conn_unread(c)))
            return 0;
    return 1;
}

static void
server_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;

    (void)fd;
    (void)what;
    if (server_flushed(srv) || job_now_us() >= srv->flush_until_us) {
        event_del(srv->flush_ev);
        event_base_loopbreak(srv->base);
    }
}

/*
 * End the loop, but first let the store answer and the replies already
 * queued go out (results of jobs that finished during the drain), for up to
 * SERVER_FLUSH_MS: a client that is not reading does not hold the shutdown up.
 */
static void
server_stop(struct server *srv)
{
    struct timeval tick = {0, 10000};

    event_del(srv->drain_ev);
    if (server_flushed(srv)) {
        event_base_loopbreak(srv->base);
        return;
    }
    srv->flush_until_us = job_now_us() + SERVER_FLUSH_MS * 1000;
    event_add(srv->flush_ev, &tick);
}

static void
server_drained(void *arg)
{
    struct server *srv = arg;

    log_info("drained: no job is running");
    server_stop(srv);
}

static void
server_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;

    (void)fd;
    (void)what;
    log_warn("drain timeout (%llu ms): stopping the jobs still running",
             (unsigned long long)srv->cfg->drain_timeout_ms);
    server_stop(srv);
}

/*
 * SIGTERM or SIGINT: stop accepting and starting jobs; the loop ends when
 * the running jobs have, or at the drain timeout. A second signal ends it now.
 */
static void
server_drain(struct server *srv, int sig)
{
    struct timeval tv;
    char status[256];

    if (srv->draining) {
        log_info("%s again: stopping now", strsignal(sig));
        event_base_loopbreak(srv->base); /* no flushing either */
        return;
    }
    srv->draining = 1;
    log_info("%s: draining (timeout %llu ms); unfinished jobs stay queued", strsignal(sig),
             (unsigned long long)srv->cfg->drain_timeout_ms);
    server_close_listeners(srv);
    server_status(srv, status, sizeof(status));
    service_stopping(srv->service, status);
    if (srv->cfg->drain_timeout_ms == 0) {
        jobs_drain(srv->jobs, NULL, NULL);
        server_stop(srv);
        return;
    }
    tv.tv_sec = (time_t)(srv->cfg->drain_timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(srv->cfg->drain_timeout_ms % 1000) * 1000;
    evtimer_add(srv->drain_ev, &tv);
    jobs_drain(srv->jobs, server_drained, srv); /* may call server_drained now */
}

static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    (void)what;
    if (sig == SIGHUP) {
        if (srv->draining) {
            log_info("SIGHUP while draining: not reloading");
            return;
        }
        service_reloading(srv->service);
        (void)reload_run(srv); /* logs what happened; a bad file changes nothing */
        service_ready(srv->service);
        return;
    }
    server_drain(srv, (int)sig);
}

/* Room for many idle clients: raise the soft descriptor limit to the hard one. */
static void
server_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("cannot raise the open-file limit: %s", strerror(errno));
    }
}

static int
server_events(struct server *srv)
{
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};

    srv->reap_ev = event_new(srv->base, -1, 0, server_reap_cb, srv);
    srv->accept_retry_ev = evtimer_new(srv->base, server_accept_retry_cb, srv);
    srv->drain_ev = evtimer_new(srv->base, server_drain_timeout_cb, srv);
    srv->flush_ev = event_new(srv->base, -1, EV_PERSIST, server_flush_cb, srv);
    if (srv->reap_ev == NULL || srv->accept_retry_ev == NULL || srv->drain_ev == NULL ||
        srv->flush_ev == NULL ||
        service_new(srv->base, server_status, srv, &srv->service) != 0)
        return FORQ_ERR_NOMEM;
    for (int i = 0; i < 3; i++) {
        srv->sig_ev[i] = evsignal_new(srv->base, sigs[i], server_signal_cb, srv);
        if (srv->sig_ev[i] == NULL || event_add(srv->sig_ev[i], NULL) != 0)
            return FORQ_ERR_NOMEM;
    }
    return 0;
}

int
server_stats(struct server *srv, struct msg_stats *st)
{
    int e;

    memset(st, 0, sizeof(*st));
    if ((e = jobs_stats(srv->jobs, st)) != 0)
        return e;
    st->server = msg_str_c("forqd " FORQ_VERSION_STRING);
    st->uptime_ms = (job_now_us() - srv->started_us) / 1000;
    st->connections = srv->nconns;
    return 0;
}

/* GET /metrics: the STATS numbers and the histograms, in Prometheus' text format. */
static int
server_metrics_fill(void *arg, struct evbuffer *out)
{
    struct server *srv = arg;
    struct msg_stats st;
    int e;

    if ((e = server_stats(srv, &st)) != 0)
        return e;
    e = metrics_render(&srv->metrics, &st, out);
    jobs_stats_free(&st);
    return e;
}

static int
server_metrics_listen(struct server *srv)
{
    char why[512];
    int e;

    if (srv->cfg->metrics_listen == NULL)
        return 0;
    if ((e = metrics_http_new(srv->base, srv->cfg->metrics_listen, server_metrics_fill, srv,
                              &srv->metrics_http, why, sizeof(why))) != 0) {
        log_err("cannot serve metrics: %s", why);
        return e;
    }
    log_info("metrics on %s", metrics_http_name(srv->metrics_http));
    return 0;
}

int
server_new(struct config *cfg, int argc, char **argv, struct server **out)
{
    struct jobs_config sc;
    char why[512];
    struct server *srv;
    int e;

    *out = NULL;
    if ((srv = calloc(1, sizeof(*srv))) == NULL) {
        config_fini(cfg);
        free(cfg);
        return FORQ_ERR_NOMEM;
    }
    srv->cfg = cfg;
    srv->argc = argc;
    srv->argv = argv;
    srv->started_us = job_now_us();
    metrics_init(&srv->metrics);
    jobs_config_from(cfg, &sc);
    sc.hooks = (struct jobs_hooks){ops_submitted, ops_found, srv};
    sc.metrics = &srv->metrics;
    idmap_init(&srv->conn_ids);
    TAILQ_INIT(&srv->conns);
    TAILQ_INIT(&srv->reap);
    msgpack_sbuffer_init(&srv->out);
    signal(SIGPIPE, SIG_IGN);
    server_raise_nofile();
    log_hook_libevent();
    if (evthread_use_pthreads() != 0 || (srv->base = event_base_new()) == NULL ||
        msg_decoder_init(&srv->decoder) != 0) {
        log_err("cannot create the event loop");
        e = FORQ_ERR_NOMEM;
        goto fail;
    }
    if ((e = server_events(srv)) != 0) {
        log_err("cannot set up events: %s", forq_strerror(e));
        goto fail;
    }
    /* Workers fork before the listeners exist, so they never hold a listening socket. */
    if ((e = jobs_new(srv->base, &sc, &srv->jobs, why, sizeof(why))) != 0) {
        log_err("%s", why);
        goto fail;
    }
    if ((e = server_listen(srv)) != 0 || (e = server_metrics_listen(srv)) != 0)
        goto fail;
    log_info("forqd %s ready: %u workers, %zu listener%s", FORQ_VERSION_STRING, cfg->workers,
             srv->nlisteners, srv->nlisteners == 1 ? "" : "s");
    service_ready(srv->service);
    *out = srv;
    return 0;
fail:
    server_free(srv);
    return e;
}

int
server_run(struct server *srv)
{
    if (event_base_dispatch(srv->base) < 0) {
        log_err("the event loop failed");
        return FORQ_ERR_SYSTEM;
    }
    return 0;
}

void
server_free(struct server *srv)
{
    struct conn *c;

    if (srv == NULL)
        return;
    server_close_listeners(srv);
    metrics_http_free(srv->metrics_http);
    while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
        server_reap_later(srv, c);
    while ((c = TAILQ_FIRST(&srv->reap)) != NULL) {
        TAILQ_REMOVE(&srv->reap, c, link);
        conn_free(c);
    }
    jobs_free(srv->jobs); /* after the connections: their waits are gone */
    for (int i = 0; i < 3; i++)
        if (srv->sig_ev[i] != NULL)
            event_free(srv->sig_ev[i]);
    if (srv->reap_ev != NULL)
        event_free(srv->reap_ev);
    if (srv->accept_retry_ev != NULL)
        event_free(srv->accept_retry_ev);
    if (srv->drain_ev != NULL)
        event_free(srv->drain_ev);
    if (srv->flush_ev != NULL)
        event_free(srv->flush_ev);
    service_free(srv->service);
    if (srv->base != NULL)
        event_base_free(srv->base);
    msg_decoder_fini(&srv->decoder);
    msgpack_sbuffer_destroy(&srv->out);
    idmap_fini(&srv->conn_ids);
    config_fini(srv->cfg);
    free(srv->cfg);
    free(srv);
}
