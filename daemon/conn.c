/*
 * conn.c — a client connection on the loop thread: reads whole frames,
 * dispatches them, queues replies, applies backpressure, closes safely.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "forq.h"
#include "frame.h"
#include "job.h"
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

int
conn_unread(const struct conn *c)
{
    int pending = 0;

    if (c->closing || c->paused)
        return 0;
    return ioctl(bufferevent_getfd(c->bev), FIONREAD, &pending) == 0 && pending > 0;
}

/* Stop reading: too many requests unanswered, or too many replies unsent. */
static int
conn_should_pause(const struct conn *c)
{
    return c->inflight >= c->srv->cfg->max_inflight || conn_out_len(c) >= conn_out_high(c);
}

/*
 * While reads are stopped nothing would notice the peer hanging up: a client
 * that fills its in-flight slots with WAITs that never end and goes away
 * would hold its connection (and a max_connections slot) forever. hup_ev
 * watches for the hangup alone (EV_CLOSED: EPOLLRDHUP) meanwhile.
 */
static void
conn_pause(struct conn *c)
{
    bufferevent_disable(c->bev, EV_READ);
    c->paused = 1;
    if (c->hup_ev != NULL)
        event_add(c->hup_ev, NULL);
}

/* Lift backpressure once both causes are well below their limits. */
static void
conn_maybe_resume(struct conn *c)
{
    if (!c->paused || c->closing || c->inflight > c->srv->cfg->max_inflight / 2 ||
        conn_out_len(c) > conn_out_low(c))
        return;
    c->paused = 0;
    if (c->hup_ev != NULL)
        event_del(c->hup_ev);
    bufferevent_enable(c->bev, EV_READ);
    event_active(c->resume_ev, 0, 0); /* frames may already be buffered */
}

int
conn_unauthenticated(const struct conn *c)
{
    return c->srv->cfg->auth_token != NULL && !c->authed;
}

/* ------------------------------------------------------------------ deadlines */

/*
 * One timer per connection serves three deadlines, checked lazily: it fires
 * at the earliest one it was armed for, and conn_timer_cb works out which
 * (if any) has really passed and arms it again for the next. Reads only
 * move the idle deadline later, so they never touch the timer.
 */
static int
conn_busy(const struct conn *c)
{
    return c->inflight > 0 || !LIST_EMPTY(&c->watches);
}

/* The three deadlines, in job_now_us time; 0 where one does not apply now. */
enum { CONN_HELLO_DUE, CONN_FRAME_DUE, CONN_IDLE_DUE, CONN_NDUE };

static void
conn_deadlines(const struct conn *c, uint64_t due[CONN_NDUE])
{
    const struct config *cfg = c->srv->cfg;

    due[CONN_HELLO_DUE] =
        conn_unauthenticated(c) ? c->opened_us + cfg->handshake_timeout_ms * 1000 : 0;
    due[CONN_FRAME_DUE] = cfg->frame_timeout_ms > 0 && c->frame_us != 0
                              ? c->frame_us + cfg->frame_timeout_ms * 1000
                              : 0;
    due[CONN_IDLE_DUE] = cfg->idle_timeout_ms > 0 ? c->active_us + cfg->idle_timeout_ms * 1000 : 0;
}

/* The earliest deadline that applies now; 0: none. */
static uint64_t
conn_deadline(const struct conn *c)
{
    uint64_t due[CONN_NDUE], d = 0;

    conn_deadlines(c, due);
    for (int i = 0; i < CONN_NDUE; i++)
        if (due[i] != 0 && (d == 0 || due[i] < d))
            d = due[i];
    return d;
}

/* Arm the timer for the earliest deadline, unless it already fires by then. */
static void
conn_timer_arm(struct conn *c, uint64_t now)
{
    uint64_t d = conn_deadline(c), wait;
    struct timeval tv;

    if (d == 0 || c->closing || (evtimer_pending(c->timer_ev, NULL) && c->timer_at_us <= d))
        return;
    wait = d > now ? d - now : 0;
    tv.tv_sec = (time_t)(wait / 1000000);
    tv.tv_usec = (suseconds_t)(wait % 1000000);
    c->timer_at_us = d;
    evtimer_add(c->timer_ev, &tv);
}

/* Tell the client why (an error with rid 0), then close. */
static void
conn_expire(struct conn *c, int code, const char *why)
{
    log_info("connection %llu (%s): %s; closing it", (unsigned long long)c->id, c->peer, why);
    c->inflight++; /* conn_reply_err answers "a request": this notice */
    conn_reply_err(c, 0, code, why);
    conn_close(c, why);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    const struct config *cfg = c->srv->cfg;
    uint64_t now = job_now_us(), due[CONN_NDUE];
    char why[128];

    (void)fd;
    (void)what;
    if (c->closing)
        return;
    conn_deadlines(c, due);
    if (due[CONN_HELLO_DUE] != 0 && now >= due[CONN_HELLO_DUE]) {
        snprintf(why, sizeof(why), "no HELLO with the token within handshake_timeout_ms (%llu)",
                 (unsigned long long)cfg->handshake_timeout_ms);
        conn_expire(c, FORQ_ERR_AUTH, why);
        return;
    }
    if (due[CONN_FRAME_DUE] != 0 && now >= due[CONN_FRAME_DUE]) {
        snprintf(why, sizeof(why), "a frame took longer than frame_timeout_ms (%llu) to arrive",
                 (unsigned long long)cfg->frame_timeout_ms);
        conn_expire(c, FORQ_ERR_TIMEOUT, why);
        return;
    }
    if (due[CONN_IDLE_DUE] != 0 && now >= due[CONN_IDLE_DUE]) {
        if (!conn_busy(c)) {
            snprintf(why, sizeof(why), "idle for idle_timeout_ms (%llu)",
                     (unsigned long long)cfg->idle_timeout_ms);
            conn_expire(c, FORQ_ERR_TIMEOUT, why);
            return;
        }
        c->active_us = now; /* waiting for a job or watching is not idle */
    }
    conn_timer_arm(c, now);
}

/*
 * After a read: a frame left incomplete in the input began now if a whole
 * one was taken before it, or earlier if not (it is the same frame). While
 * reading is paused the delay is forqd's, not the client's: not counted.
 */
static void
conn_frame_track(struct conn *c, int took_frames)
{
    uint64_t now;

    if (c->closing || c->paused || evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
        c->frame_us = 0;
        return;
    }
    if (c->frame_us != 0 && !took_frames)
        return;
    now = job_now_us();
    c->frame_us = now;
    conn_timer_arm(c, now);
}

/* ------------------------------------------------------------------ reading */

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
    uint8_t hdr[FRAME_HDR_LEN];
    int took = 0, e;
    size_t max_frame;
    uint32_t n;
    uint8_t *p;

    while (!c->closing) {
        if (conn_should_pause(c)) {
            /* Backpressure: let the kernel's buffers fill until replies drain. */
            conn_pause(c);
            break;
        }
        if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
            break;
        /* Before HELLO, nothing bigger than a HELLO: a stranger cannot make forqd buffer MiBs. */
        max_frame = c->srv->cfg->max_frame;
        if (conn_unauthenticated(c) && max_frame > CONN_HELLO_FRAME_MAX)
            max_frame = CONN_HELLO_FRAME_MAX;
        if ((e = frame_hdr_decode(hdr, max_frame, &n)) != 0) {
            c->inflight++;
            conn_reply_err(c, 0, e,
                           e != FORQ_ERR_TOO_BIG     ? "frame of length 0"
                           : conn_unauthenticated(c) ? "frame too big before authentication"
                                                     : "frame exceeds the server's max_frame");
            conn_close(c, "bad frame header");
            return;
        }
        if (evbuffer_get_length(in) < FRAME_HDR_LEN + (size_t)n)
            break;
        if ((p = evbuffer_pullup(in, FRAME_HDR_LEN + (ev_ssize_t)n)) == NULL) {
            conn_close(c, "out of memory reading a frame");
            return;
        }
        c->inflight++;
        took = 1;
        ops_dispatch(c, p + FRAME_HDR_LEN, n);
        evbuffer_drain(in, FRAME_HDR_LEN + (size_t)n);
    }
    conn_frame_track(c, took);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    c->active_us = job_now_us();
    conn_read_frames(c);
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
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->closing) {
        /*
         * The peer will send nothing more, but it may still read: let the
         * answers already queued go out whole (conn_close flushes, and drops
         * it if the peer has gone for good), rather than cut one mid-frame.
         */
        conn_close(c, "the peer closed its side");
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        log_info("connection %llu (%s): peer does not read; dropping it", (unsigned long long)c->id,
                 c->peer);
    else if ((what & BEV_EVENT_ERROR) && !c->closing)
        log_debug("connection %llu (%s): %s", (unsigned long long)c->id, c->peer,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    c->closing = 1;
    conn_drop_waits(c);
    server_reap_later(c->srv, c);
}

/* The peer hung up while reads were paused: as for EOF, nobody is left to answer. */
static void
conn_hup_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    event_del(c->hup_ev);
    conn_event_cb(c->bev, BEV_EVENT_EOF, c);
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
    c->timer_ev = evtimer_new(srv->base, conn_timer_cb, c);
    /* Without EV_CLOSED (not epoll) a paused connection learns of a hangup when it writes. */
    if (event_base_get_features(srv->base) & EV_FEATURE_EARLY_CLOSE)
        c->hup_ev = event_new(srv->base, fd, EV_CLOSED, conn_hup_cb, c);
    c->opened_us = c->active_us = job_now_us();
    c->authed = srv->cfg->auth_token == NULL; /* a token a reload adds is for new connections */
    if (c->bev == NULL || c->resume_ev == NULL || c->timer_ev == NULL) {
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
    conn_timer_arm(c, c->opened_us);
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
    if (c->hup_ev != NULL) /* before its descriptor goes with the bufferevent */
        event_free(c->hup_ev);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->resume_ev != NULL)
        event_free(c->resume_ev);
    if (c->timer_ev != NULL)
        event_free(c->timer_ev);
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
    /* Idle counts from the last answer too: a slow one must not make the next request late. */
    if (c->inflight == 0 && c->srv->cfg->idle_timeout_ms > 0)
        c->active_us = job_now_us();
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
