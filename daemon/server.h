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
#include "msg.h"

struct conn;
struct event;
struct event_base;
struct evconnlistener;
struct jobs;

struct server_listener {
    struct evconnlistener *lev;
    char name[300];  /* the bound address, e.g. tcp://127.0.0.1:40123 */
    char *unix_path; /* owned; unlinked at exit */
};

struct server {
    struct event_base *base;
    const struct config *cfg;
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
};

/*
 * Build everything: event base, scheduler (forks the workers), listeners,
 * signal handlers. cfg must outlive the server. Returns 0 with *out, or a
 * FORQ_ERR_* after logging the reason; nothing is left running on failure.
 */
int server_new(const struct config *cfg, struct server **out);

/* Run the loop until SIGINT or SIGTERM. Returns 0 or FORQ_ERR_SYSTEM. */
int server_run(struct server *srv);

/* Close every connection, stop the workers, free everything. NULL is a no-op. */
void server_free(struct server *srv);

/*
 * The open connection with this id, or NULL once it is closing or gone: how
 * answers that come later (from the store) find their way back.
 */
struct conn *server_conn(struct server *srv, uint64_t id);

/* Move a closed connection to the reap list; it is freed on the next loop turn. */
void server_reap_later(struct server *srv, struct conn *c);

#endif /* FORQ_SERVER_H */
