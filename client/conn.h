/*
 * conn.h — one live connection of libforq to forqd (internal).
 *
 * A connection owns a socket and the I/O thread that reads answers and routes
 * them by rid to the calls waiting for them. Calls are made with
 * conn_exchange from any thread. A connection is reference-counted; it dies
 * once (EOF, error, conn_stop), failing every pending call with
 * FORQ_ERR_DISCONNECTED, and is never revived: the client opens a new one.
 * All functions are thread-safe.
 */
#ifndef FORQ_CLIENT_CONN_H
#define FORQ_CLIENT_CONN_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include <msgpack.h>

#include "client.h"

struct client_conn;

/*
 * An inbox collects the frames of calls posted with conn_post(), from any
 * number of connections, for one consumer that waits on it. The I/O threads
 * push into it under conn->mu then inbox->mu (in that order; the consumer
 * never takes a conn->mu while holding inbox->mu).
 */
struct conn_frame {
    struct conn_frame *next;
    uint64_t tag;  /* the call's tag; 0 for a wake-up (conn_inbox_wake) */
    int err;       /* 0, or FORQ_ERR_DISCONNECTED (body NULL: the call is over) */
    uint8_t *body; /* the frame's body, owned by the frame */
    size_t len;
};

struct conn_inbox {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct conn_frame *head, *tail;
};

/*
 * A call whose frames go to an inbox. The consumer owns the struct and keeps
 * it alive while it is posted: until a one-shot call has delivered its frame,
 * a stream call has been conn_unpost()ed, or either has delivered its
 * FORQ_ERR_DISCONNECTED frame. The fields are conn.c's.
 */
struct conn_call {
    struct conn_call *next; /* chain in the pending table; under conn->mu */
    uint64_t rid;
    struct conn_inbox *inbox;
    uint64_t tag;
    int stream; /* 1: stays posted for every frame of rid; 0: one frame */
    int posted; /* under conn->mu */
    struct conn_frame *lost; /* allocated when posted: the FORQ_ERR_DISCONNECTED notice */
    /* Synchronous calls (conn_exchange) only: inbox is NULL. */
    pthread_cond_t cond; /* signalled once, when done is set */
    int done;            /* under conn->mu: answered, or failed (err) */
    int err;             /* 0, or FORQ_ERR_DISCONNECTED */
    uint8_t *body;       /* the answer's body, malloc'd by the I/O thread */
    size_t len;
};

/*
 * Connect to a (name is the address as the user wrote it, for messages)
 * within timeout_ms and start the I/O thread. Returns 0 with
 * *out holding one reference, or FORQ_ERR_CONNECT, FORQ_ERR_SYSTEM,
 * FORQ_ERR_NOMEM with forq_errmsg() set.
 */
int conn_open(const struct addr *a, const char *name, int64_t timeout_ms,
              struct client_conn **out);

/* Take / drop a reference; the last one closes the socket and frees. */
void conn_ref(struct client_conn *conn);
void conn_release(struct client_conn *conn);

/*
 * Take a connection out of service: fail what is pending with why (unless it
 * died already), stop its I/O thread and join it. Call once, from the thread
 * that removed it from its client.
 */
void conn_stop(struct client_conn *conn, const char *why);

/* 1 once the connection has died. */
int conn_is_dead(struct client_conn *conn);

/* The server's max_frame (UINT32_MAX until HELLO said). */
uint64_t conn_max_frame(const struct client_conn *conn);

/* Record the server's max_frame (from HELLO); 0 leaves the defaults. */
void conn_set_max_frame(struct client_conn *conn, uint64_t max_frame);

/* Set forq_errmsg() to why the connection died and return code. */
int conn_seterr_why(struct client_conn *conn, int code);

/*
 * Send the encoded frame in sb (request rid) and wait for its answer until
 * deadline (monotonic ms; < 0: no limit). The output queue may take over sb's
 * buffer. Returns 0 with *body (malloc'd, the caller frees) and *len, or
 * FORQ_ERR_DISCONNECTED, FORQ_ERR_TIMEOUT (a late answer is dropped),
 * FORQ_ERR_TOO_BIG (over the server's max_frame), FORQ_ERR_NOMEM. *sent says
 * whether the request went out: if not, it may be retried on another
 * connection.
 */
int conn_exchange(struct client_conn *conn, msgpack_sbuffer *sb, uint64_t rid, int64_t deadline,
                  uint8_t **body, size_t *len, int *sent);

/* Returns 0 or FORQ_ERR_SYSTEM. */
int conn_inbox_init(struct conn_inbox *ib);
/* Free the frames not taken. No call may still be posted to it. */
void conn_inbox_fini(struct conn_inbox *ib);
/*
 * Take the next frame, waiting until deadline (monotonic ms; < 0: no limit).
 * Returns 0 with *fr (free with conn_frame_free) or FORQ_ERR_TIMEOUT.
 */
int conn_inbox_next(struct conn_inbox *ib, int64_t deadline, struct conn_frame **fr);
/* Like conn_inbox_next, but take every frame there is: *list, chained by next, in order. */
int conn_inbox_next_all(struct conn_inbox *ib, int64_t deadline, struct conn_frame **list);
/* Push a frame with tag 0 and no body, to wake the consumer. 0 or FORQ_ERR_NOMEM. */
int conn_inbox_wake(struct conn_inbox *ib);
void conn_frame_free(struct conn_frame *fr);

/*
 * Send the frame in sb (taken over, like conn_exchange) for call, whose rid,
 * inbox, tag and stream the caller has set. Returns 0 once posted,
 * FORQ_ERR_DISCONNECTED (the connection is dead; nothing was sent),
 * FORQ_ERR_TOO_BIG, FORQ_ERR_NOMEM.
 */
int conn_post(struct client_conn *conn, msgpack_sbuffer *sb, struct conn_call *call);

/*
 * conn_post for n calls whose frames lie back to back in sb, sent in one
 * piece (one system call where conn_post would make n). The caller has
 * checked each frame with conn_check_frame. All or nothing: 0 once every call
 * is posted, else FORQ_ERR_DISCONNECTED or FORQ_ERR_NOMEM and none is.
 */
int conn_post_many(struct client_conn *conn, msgpack_sbuffer *sb, struct conn_call *const *calls,
                   size_t n);

/* 0 when a frame of frame_len bytes (header included) is within the server's limit, else FORQ_ERR_TOO_BIG. */
int conn_check_frame(struct client_conn *conn, size_t frame_len);

/* Take call out of the pending table (frames already in the inbox stay there). */
void conn_unpost(struct client_conn *conn, struct conn_call *call);

/*
 * Send a frame whose answer nobody waits for (UNWATCH). Best effort: 0, or
 * the reason it was not sent.
 */
int conn_send_only(struct client_conn *conn, msgpack_sbuffer *sb);

#endif /* FORQ_CLIENT_CONN_H */
