/*
 * conn.h — one client connection: framing, requests in flight, replies,
 * backpressure and a safe close.
 *
 * The read callback takes whole frames off the socket (a length over the
 * limit is refused before anything is allocated), hands each to the ops, and
 * stops reading while max_inflight requests are unanswered. A connection is
 * never freed inside its own callback: conn_close marks it, flushes what is
 * queued for it and lets the server free it at a safe point. Loop thread only.
 */
#ifndef FORQ_CONN_H
#define FORQ_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/util.h>

#include "jobs.h"
#include "watch.h"

struct bufferevent;
struct event;
struct server;
struct msg_response;

struct conn {
    struct server *srv;
    struct bufferevent *bev;
    struct event *resume_ev; /* re-runs the frame loop after backpressure ends */
    struct event *hup_ev;    /* while paused: notices the peer hanging up (EV_CLOSED) */
    uint64_t id;             /* for logs */
    char peer[96];
    size_t inflight;         /* requests read and not yet answered */
    int closing;             /* reads stopped; freed once the output is flushed */
    int paused;              /* reads stopped by backpressure */
    int reaped;              /* on the server's reap list */
    LIST_HEAD(, jobs_waiter) waiters; /* WAITs parked for this connection */
    struct watch_list watches;        /* its WATCHes (watch.c) */
    size_t watched;                   /* ids those watch, in all */
    int watches_blocked;              /* a watch held events back: output was full */
    int authed;                       /* passed HELLO with the token, or none was set at accept */
    uint64_t opened_us;               /* accepted at (job_now_us): the handshake deadline */
    uint64_t active_us;               /* last read; the idle timeout counts from it */
    uint64_t frame_us;                /* the frame now arriving began; 0: none is */
    struct event *timer_ev;           /* handshake, frame and idle deadlines (conn_timer_cb) */
    uint64_t timer_at_us;             /* when timer_ev fires, if pending */
    TAILQ_ENTRY(conn) link;
};

/*
 * Wrap an accepted socket (non-blocking, close-on-exec). The connection is
 * added to srv->conns. Returns 0 with *out or FORQ_ERR_NOMEM (fd is closed).
 */
int conn_new(struct server *srv, evutil_socket_t fd, const char *peer, struct conn **out);

/* Free a connection and withdraw its waits. Only the server calls this. */
void conn_free(struct conn *c);

/* Stop reading, flush what is queued, then let the server free it. */
void conn_close(struct conn *c, const char *why);

/*
 * With an auth token configured, 1 until the connection has passed HELLO
 * with it: it may then only HELLO and PING, its frames are kept small
 * (CONN_HELLO_FRAME_MAX), and it is closed at handshake_timeout_ms.
 */
int conn_unauthenticated(const struct conn *c);

#define CONN_HELLO_FRAME_MAX 4096 /* HELLO with the longest token and name fits */

/*
 * Answer one request: encode resp (for a request of this op) and queue it.
 * If encoding fails, the client gets an error reply instead. Counts the
 * request as answered.
 */
void conn_reply(struct conn *c, int op, const struct msg_response *resp);

/*
 * Send one frame that is not the last answer to its request (a WATCH event):
 * like conn_reply, but the request stays in flight. Returns 0, or -1 when the
 * frame could not be queued and the connection is closing (its waits and
 * watches are withdrawn).
 */
int conn_event(struct conn *c, int op, const struct msg_response *resp);

/*
 * A request gives its slot back without being answered yet (a WATCH, once
 * started: its frames come through conn_event).
 */
void conn_request_done(struct conn *c);

/* 1 when the output is at its high-water mark: hold back what can wait (WATCH events). */
int conn_out_full(const struct conn *c);
/* Bytes of replies not yet written to the socket. */
size_t conn_out_len(const struct conn *c);
/*
 * 1 when bytes wait in the socket that the read callback will take (reads
 * are on): requests received but not seen yet. What is already buffered has
 * been looked at (an incomplete frame waits for bytes that may never come).
 */
int conn_unread(const struct conn *c);

/* Answer one request with {rid, err: {code, msg}} (msg NULL: the code's text). */
void conn_reply_err(struct conn *c, uint64_t rid, int code, const char *msg);

/* Keep / forget a wait parked on behalf of this connection. */
void conn_track_wait(struct conn *c, struct jobs_waiter *w);
void conn_untrack_wait(struct conn *c, struct jobs_waiter *w);

#endif /* FORQ_CONN_H */
