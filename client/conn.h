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
#include <stdint.h>

#include <msgpack.h>

#include "client.h"

struct client_conn;

/*
 * Connect to a (name is the address as the user wrote it, for messages)
 * within CLIENT_CONNECT_TIMEOUT_MS and start the I/O thread. Returns 0 with
 * *out holding one reference, or FORQ_ERR_CONNECT, FORQ_ERR_SYSTEM,
 * FORQ_ERR_NOMEM with forq_errmsg() set.
 */
int conn_open(const struct addr *a, const char *name, struct client_conn **out);

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

#endif /* FORQ_CLIENT_CONN_H */
