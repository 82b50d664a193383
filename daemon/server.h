/*
 * server.h — forqd's event loop: listeners, signals, the set of connections,
 * and the shared state every callback reaches through one struct server.
 *
 * One thread (the loop) runs every callback; nothing here is locked.
 */
#ifndef FORQ_SERVER_H
#define FORQ_SERVER_H

#include <stdint.h>
#include <sys/queue.h>

#include <msgpack.h>

#include "config.h"
#include "idmap.h"
#include "metrics.h"
#include "msg.h"

struct conn;
struct event;
struct event_base;
struct evconnlistener;
struct jobs;
struct metrics_http;
struct service;

struct server_listener {
    struct evconnlistener *lev;
    char name[300];  /* the bound address, e.g. tcp://127.0.0.1:40123 */
    char *unix_path; /* owned; unlinked at exit (NULL for a socket systemd passed) */
};

struct server {
    struct event_base *base;
    struct config *cfg;         /* owned; a reload replaces it (reload.h) */
    int argc;                   /* the command line, read again by a reload */
    char **argv;
    struct jobs *jobs;
    struct msg_decoder decoder; /* the loop's decoder: one request at a time */
    msgpack_sbuffer out;        /* scratch for encoding one reply */

    TAILQ_HEAD(, conn) conns;   /* open connections */
    struct idmap conn_ids;      /* conn id -> open connection (deferred answers) */
    TAILQ_HEAD(, conn) reap;    /* closed, waiting to be freed at a safe point */
    struct event *reap_ev;
    size_t nconns;
    uint64_t next_conn_id;
    uint64_t started_us;

    struct server_listener listeners[CONFIG_LISTEN_MAX];
    size_t nlisteners;
    struct event *accept_retry_ev;
    struct event *sig_ev[3]; /* SIGINT, SIGTERM, SIGHUP */

    struct service *service;    /* systemd notifications */
    struct metrics metrics;     /* histograms the jobs and the store fill */
    struct metrics_http *metrics_http; /* NULL: no metrics_listen */
    int draining;               /* SIGTERM seen: listeners closed, no job starts */
    struct event *drain_ev;     /* the drain timeout */
    struct event *flush_ev;     /* stopping: waits for the last replies to go out */
    uint64_t flush_until_us;
};

/*
 * Build everything: event base, scheduler (forks the workers), listeners
 * (the sockets systemd passed, else cfg's), the metrics listener, signal
 * handlers; then tell systemd READY=1. The server takes cfg (heap-allocated,
 * from config_parse_args on argc/argv) in every case, and keeps argv (which
 * must outlive it) to read the settings again on SIGHUP. Returns 0 with
 * *out, or a FORQ_ERR_* after logging the reason; nothing is left running
 * on failure.
 */
int server_new(struct config *cfg, int argc, char **argv, struct server **out);

/*
 * Run the loop until it is told to stop: SIGTERM or SIGINT drain (stop
 * accepting, start no job, wait up to drain_timeout_ms for the running ones),
 * a second one stops at once; SIGHUP reloads. Returns 0 or FORQ_ERR_SYSTEM.
 */
int server_run(struct server *srv);

/*
 * Close every connection, stop the workers (jobs still running go back to
 * their queues), free everything. NULL is a no-op.
 */
void server_free(struct server *srv);

/*
 * The open connection with this id, or NULL once it is closing or gone: how
 * answers that come later (from the store) find their way back.
 */
struct conn *server_conn(struct server *srv, uint64_t id);

/*
 * The STATS numbers (jobs_stats plus the server's own). Free with
 * jobs_stats_free. 0 or FORQ_ERR_NOMEM.
 */
int server_stats(struct server *srv, struct msg_stats *st);

/* Move a closed connection to the reap list; it is freed on the next loop turn. */
void server_reap_later(struct server *srv, struct conn *c);

#endif /* FORQ_SERVER_H */
