/*
 * client.h — libforq internals shared by client.c, future.c and the unit
 * tests. Not installed and not exported: everything here has hidden
 * visibility.
 *
 * client.c owns the connection: address parsing, connect, the per-connection
 * I/O thread, the table of pending calls and the output queue, reconnects,
 * and one request/response exchange (client_rpc_run). future.c builds the
 * futures API and the job calls (submit, status, cancel) on top of that.
 */
#ifndef FORQ_CLIENT_H
#define FORQ_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "forq.h"
#include "msg.h"

#define CLIENT_CONNECT_TIMEOUT_MS 10000 /* TCP connect + HELLO answer */
#define CLIENT_WAIT_GRACE_MS      2000  /* local deadline of a WAIT past its timeout_ms */
#define CLIENT_MIN_IN_FRAME       ((size_t)64 << 20) /* smallest limit on answer frames */

/*
 * Parse a server address with addr_parse() (proto/addr.h: "tcp://HOST:PORT",
 * "tcp://[V6ADDR]:PORT", "unix://PATH"; port 0 refused). Returns 0, or
 * FORQ_ERR_INVALID with "invalid address '...': why" in forq_errmsg().
 */
int client_addr_parse(const char *s, struct addr *out);

/*
 * Set this thread's forq_errmsg() text and return code, so that a failing
 * path reads `return client_seterr(FORQ_ERR_X, "...")`. The arguments may
 * point into the current message.
 */
int client_seterr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Copy a wire string into a fixed buffer of size bytes, truncating at a UTF-8
 * character boundary and always NUL-terminating.
 */
void client_strlcpy(char *dst, size_t size, struct msg_str s);

/* Monotonic clock in milliseconds. */
int64_t client_now_ms(void);

/*
 * One request/response exchange, owned by the calling thread. The decoder is
 * the caller's own, so answers are decoded on the caller's thread; strings in
 * resp point into body or dec and live until client_rpc_fini().
 */
struct client_rpc {
    struct msg_decoder dec;
    int dec_ok;               /* dec was initialised */
    struct msg_response resp; /* valid when client_rpc_run returned 0 */
    uint8_t *body;            /* the answer's frame body (malloc'd) */
    size_t len;
};

/*
 * Send req (its rid is assigned here) on c's connection, reconnecting first if
 * the connection was lost, and wait for the answer: without limit when
 * wait_ms < 0, else at most wait_ms (then FORQ_ERR_TIMEOUT; a late answer is
 * dropped). Returns 0 with rpc->resp decoded, the server's err.code (message in
 * forq_errmsg()), FORQ_ERR_DISCONNECTED, FORQ_ERR_INVALID (client closed),
 * FORQ_ERR_TOO_BIG (the frame is over the server's max_frame),
 * FORQ_ERR_PROTOCOL (an answer this client cannot read), FORQ_ERR_NOMEM.
 * rpc is initialised here; call client_rpc_fini() afterwards in every case.
 * Thread-safe.
 */
int client_rpc_run(forq_client *c, struct msg_request *req, int64_t wait_ms,
                   struct client_rpc *rpc);
void client_rpc_fini(struct client_rpc *rpc);

/*
 * Is the client still open? Returns 0, or FORQ_ERR_INVALID (with errmsg) when
 * c is NULL or has been closed.
 */
int client_check_open(forq_client *c);

/*
 * Encode req into sb (initialised here; the caller destroys it) with a fresh
 * rid. Returns 0, FORQ_ERR_NOMEM or FORQ_ERR_INVALID.
 */
int client_encode(forq_client *c, struct msg_request *req, msgpack_sbuffer *sb);

/*
 * A live connection (reconnecting first if the last one was lost), with a
 * reference the caller drops with conn_release(). Returns 0, FORQ_ERR_INVALID
 * (the client is closed), FORQ_ERR_DISCONNECTED (reconnecting failed; why in
 * forq_errmsg()), FORQ_ERR_NOMEM.
 */
struct client_conn;
int client_conn_get(forq_client *c, struct client_conn **out);

/*
 * The client's callback thread and its state (callbacks.c), created by the
 * first call. Returns 0 with *out, FORQ_ERR_INVALID (closed), FORQ_ERR_NOMEM,
 * FORQ_ERR_SYSTEM.
 */
struct callbacks;
int client_callbacks(forq_client *c, struct callbacks **out);

/* ------------------------------------------------------------------ future.c, for the others */

/*
 * Cache a finished job's outcome in f (first writer wins). A result lying in
 * *body (a frame of len bytes) is kept there and *body taken (set to NULL);
 * otherwise it is copied. Returns 0 or FORQ_ERR_NOMEM (nothing cached).
 */
int future_settle(forq_future *f, const struct msg_job *job, uint8_t **body, size_t len);
/* Fill req as the SUBMIT of task and payload with opts (NULL: defaults); req borrows them. */
void future_submit_request(struct msg_request *req, const char *task, const void *payload,
                           size_t len, const struct forq_submit_opts *opts);
/* 1 once the outcome is cached. */
int future_known(const forq_future *f);
/* The cached outcome's code (0: succeeded); the future must be known. */
int future_code(const forq_future *f);
forq_client *future_client(const forq_future *f);
/* Futures are reference-counted: the user's, plus one per pending callback. */
void future_ref(forq_future *f);

/* References that keep c's memory alive (futures take one each). */
void client_ref(forq_client *c);
void client_unref(forq_client *c);

#endif /* FORQ_CLIENT_H */
