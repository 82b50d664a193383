/*
 * conn.c — a client connection on the loop thread: reads whole frames,
 * dispatches them, queues replies, applies backpressure, closes safely.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "forq.h"
#include "frame.h"
#include "log.h"
#include "ops.h"
#include "server.h"

#define CONN_FLUSH_TIMEOUT_S 5 /* a closing peer that does not read is dropped */
#define CONN_OUT_HIGH_MIN    ((size_t)4 << 20)

/*
 * Replies queued for a peer that does not read would grow without bound (a
 * 22-byte WAIT can fetch a 1 MiB result), so reading also stops while the
 * output holds more than the high-water mark, and resumes below the low one.
 */
static size_t
conn_out_high(const struct conn *c)
{
    size_t two_results = 2 * c->srv->cfg->max_result + 65536;

    return two_results > CONN_OUT_HIGH_MIN ? two_results : CONN_OUT_HIGH_MIN;
}

static size_t
conn_out_low(const struct conn *c)
{
    return conn_out_high(c) / 4;
}

size_t
conn_out_len(const struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Stop reading: too many requests unanswered, or too many replies unsent. */
static int
conn_should_pause(const struct conn *c)
{
    return c->inflight >= c->srv->cfg->max_inflight || conn_out_len(c) >= conn_out_high(c);
}

static void
conn_pause(struct conn *c)
{
    bufferevent_disable(c->bev, EV_READ);
    c->paused = 1;
}

/* Lift backpressure once both causes are well below their limits. */
static void
conn_maybe_resume(struct conn *c)
{
    if (!c->paused || c->closing || c->inflight > c->srv->cfg->max_inflight / 2 ||
        conn_out_len(c) > conn_out_low(c))
        return;
    c->paused = 0;
    bufferevent_enable(c->bev, EV_READ);
    event_active(c->resume_ev, 0, 0); /* frames may already be buffered */
}

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

/* Withdraw every parked WAIT and WATCH: nobody is left to answer. */
static void
conn_drop_waits(struct conn *c)
{
    struct jobs_waiter *w;

    while ((w = LIST_FIRST(&c->waiters)) != NULL) {
        LIST_REMOVE(w, owner_link);
        jobs_wait_cancel(w);
        c->inflight--;
    }
    watch_drop_all(c);
}

/* Process as many whole frames as the input holds, within the in-flight limit. */
static void
conn_read_frames(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max_frame = c->srv->cfg->max_frame;
    uint8_t hdr[FRAME_HDR_LEN];
    uint32_t n;
    uint8_t *p;
    int e;

    while (!c->closing) {
        if (conn_should_pause(c)) {
            /* Backpressure: let the kernel's buffers fill until replies drain. */
            conn_pause(c);
            return;
        }
        if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
            return;
        if ((e = frame_hdr_decode(hdr, max_frame, &n)) != 0) {
            c->inflight++;
            conn_reply_err(c, 0, e,
                           e == FORQ_ERR_TOO_BIG ? "frame exceeds the server's max_frame"
                                                 : "frame of length 0");
            conn_close(c, "bad frame header");
            return;
        }
        if (evbuffer_get_length(in) < FRAME_HDR_LEN + (size_t)n)
            return;
        if ((p = evbuffer_pullup(in, FRAME_HDR_LEN + (ev_ssize_t)n)) == NULL) {
            conn_close(c, "out of memory reading a frame");
            return;
        }
        c->inflight++;
        ops_dispatch(c, p + FRAME_HDR_LEN, n);
        evbuffer_drain(in, FRAME_HDR_LEN + (size_t)n);
    }
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_read_frames(arg);
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (!c->closing && !c->paused)
        conn_read_frames(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    /* Called when the output has drained to the low-water mark (see conn_new). */
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        server_reap_later(c->srv, c);
        return;
    }
    watch_flush_all(c);
    if (!c->closing)
        conn_maybe_resume(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_TIMEOUT)
        log_info("connection %llu (%s): peer does not read; dropping it",
                 (unsigned long long)c->id, c->peer);
    else if ((what & BEV_EVENT_ERROR) && !c->closing)
        log_debug("connection %llu (%s): %s", (unsigned long long)c->id, c->peer,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    c->closing = 1;
    conn_drop_waits(c);
    server_reap_later(c->srv, c);
}

int
conn_new(struct server *srv, evutil_socket_t fd, const char *peer, struct conn **out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct conn *c;
    int one = 1;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return FORQ_ERR_NOMEM;
    }
    c->srv = srv;
    c->id = ++srv->next_conn_id;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    LIST_INIT(&c->waiters);
    LIST_INIT(&c->watches);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->resume_ev = event_new(srv->base, -1, 0, conn_resume_cb, c);
    if (c->bev == NULL || c->resume_ev == NULL) {
        if (c->bev == NULL)
            close(fd);
        conn_free(c);
        return FORQ_ERR_NOMEM;
    }
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, conn_out_low(c), 0);
    if (idmap_put(&srv->conn_ids, c->id, c) != 0) {
        conn_free(c);
        return FORQ_ERR_NOMEM;
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&srv->conns, c, link);
    srv->nconns++;
    log_debug("connection %llu from %s", (unsigned long long)c->id, c->peer);
    *out = c;
    return 0;
}

void
conn_free(struct conn *c)
{
    if (c == NULL)
        return;
    conn_drop_waits(c);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->resume_ev != NULL)
        event_free(c->resume_ev);
    free(c);
}

void
conn_close(struct conn *c, const char *why)
{
    struct timeval flush = {CONN_FLUSH_TIMEOUT_S, 0};

    if (c->closing)
        return;
    log_debug("closing connection %llu (%s): %s", (unsigned long long)c->id, c->peer, why);
    c->closing = 1;
    conn_drop_waits(c);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        server_reap_later(c->srv, c);
        return;
    }
    /* conn_write_cb reaps it once the reply is out; the timeout if never. */
    bufferevent_set_timeouts(c->bev, NULL, &flush);
}

/* One request has been answered: maybe lift backpressure. */
static void
conn_answered(struct conn *c)
{
    if (c->inflight > 0)
        c->inflight--;
    conn_maybe_resume(c);
}

void
conn_request_done(struct conn *c)
{
    conn_answered(c);
}

int
conn_out_full(const struct conn *c)
{
    return conn_out_len(c) >= conn_out_high(c);
}

/* Move the encoded frame from the scratch buffer to the connection. */
static void
conn_flush_scratch(struct conn *c)
{
    msgpack_sbuffer *sb = &c->srv->out;

    if (!c->reaped && evbuffer_add(bufferevent_get_output(c->bev), sb->data, sb->size) != 0)
        conn_close(c, "out of memory queueing a reply");
    sb->size = 0;
}

void
conn_reply_err(struct conn *c, uint64_t rid, int code, const char *msg)
{
    if (msg_encode_error(&c->srv->out, rid, code, msg) == 0)
        conn_flush_scratch(c);
    else
        conn_close(c, "cannot encode an error reply");
    conn_answered(c);
}

int
conn_event(struct conn *c, int op, const struct msg_response *resp)
{
    int e;

    if ((e = msg_encode_response(&c->srv->out, op, resp)) != 0) {
        log_warn("cannot encode a %s event: %s", msg_op_name(op), forq_strerror(e));
        conn_close(c, "cannot encode an event");
        return -1;
    }
    conn_flush_scratch(c);
    return c->closing ? -1 : 0;
}

void
conn_reply(struct conn *c, int op, const struct msg_response *resp)
{
    int e;

    if ((e = msg_encode_response(&c->srv->out, op, resp)) != 0) {
        log_warn("cannot encode a %s reply: %s", msg_op_name(op), forq_strerror(e));
        conn_reply_err(c, resp->rid, e, "the reply could not be encoded");
        return;
    }
    conn_flush_scratch(c);
    conn_answered(c);
}

void
conn_track_wait(struct conn *c, struct jobs_waiter *w)
{
    LIST_INSERT_HEAD(&c->waiters, w, owner_link);
}

void
conn_untrack_wait(struct conn *c, struct jobs_waiter *w)
{
    LIST_REMOVE(w, owner_link);
}
