/*
 * service.c — sd_notify(3) messages, the watchdog tick, and the sockets of
 * socket activation (sd_listen_fds(3)), through libsystemd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "forq.h"
#include "log.h"
#include "service.h"

#define SERVICE_STATUS_MAX     256
#define SERVICE_STATUS_TICK_US 5000000 /* STATUS= refresh without a watchdog */

struct service {
    struct event *tick;
    uint64_t tick_us; /* 0: no tick (not under systemd) */
    int watchdog;     /* WatchdogSec= is set: ping on every tick */
    int notify;       /* NOTIFY_SOCKET is set */
    service_status_fn status;
    void *arg;
};

int
service_listen_fds(int *fds, int max, char *why, size_t whylen)
{
    int n = sd_listen_fds(1); /* 1: unset LISTEN_*, so no child sees them */

    if (n < 0) {
        snprintf(why, whylen, "cannot read the sockets passed by systemd: %s", strerror(-n));
        return -1;
    }
    if (n > max) {
        snprintf(why, whylen, "systemd passed %d sockets; forqd takes at most %d", n, max);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i, fl;

        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            snprintf(why, whylen,
                     "passed descriptor %d is not a listening stream socket "
                     "(forqd.socket must use ListenStream=)",
                     fd);
            return -1;
        }
        if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            snprintf(why, whylen, "passed descriptor %d: %s", fd, strerror(errno));
            return -1;
        }
        fds[i] = fd;
    }
    return n;
}

/* Send one notification; a failure is logged, never fatal (systemd may be gone). */
static void
service_send(const struct service *sv, const char *msg)
{
    int r;

    if (!sv->notify)
        return;
    if ((r = sd_notify(0, msg)) < 0)
        log_warn("cannot notify systemd (%.20s...): %s", msg, strerror(-r));
}

static void
service_send_status(const struct service *sv, const char *prefix)
{
    char status[SERVICE_STATUS_MAX], msg[SERVICE_STATUS_MAX + 64];

    if (!sv->notify)
        return;
    sv->status(sv->arg, status, sizeof(status));
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, status);
    service_send(sv, msg);
}

static void
service_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct service *sv = arg;

    (void)fd;
    (void)what;
    service_send_status(sv, sv->watchdog ? "WATCHDOG=1\n" : "");
}

int
service_new(struct event_base *base, service_status_fn status, void *arg, struct service **out)
{
    struct service *sv = calloc(1, sizeof(*sv));
    uint64_t wd_us = 0;
    int r;

    *out = NULL;
    if (sv == NULL)
        return FORQ_ERR_NOMEM;
    sv->status = status;
    sv->arg = arg;
    sv->notify = getenv("NOTIFY_SOCKET") != NULL;
    /* 1: unset WATCHDOG_*, which are meant for forqd, not for the commands it runs. */
    if ((r = sd_watchdog_enabled(1, &wd_us)) < 0)
        log_warn("ignoring WATCHDOG_USEC: %s", strerror(-r));
    sv->watchdog = r > 0 && wd_us > 0;
    if (sv->watchdog)
        sv->tick_us = wd_us / 2; /* systemd's advice: ping at half the period */
    else if (sv->notify)
        sv->tick_us = SERVICE_STATUS_TICK_US;
    if (sv->tick_us > 0 &&
        (sv->tick = event_new(base, -1, EV_PERSIST, service_tick_cb, sv)) == NULL) {
        free(sv);
        return FORQ_ERR_NOMEM;
    }
    if (sv->watchdog)
        log_info("systemd watchdog: pinging every %llu ms",
                 (unsigned long long)(sv->tick_us / 1000));
    *out = sv;
    return 0;
}

void
service_free(struct service *sv)
{
    if (sv == NULL)
        return;
    if (sv->tick != NULL)
        event_free(sv->tick);
    free(sv);
}

void
service_ready(struct service *sv)
{
    struct timeval tv;

    service_send_status(sv, "READY=1\n");
    if (sv->tick != NULL && !evtimer_pending(sv->tick, NULL)) {
        tv.tv_sec = (time_t)(sv->tick_us / 1000000);
        tv.tv_usec = (suseconds_t)(sv->tick_us % 1000000);
        evtimer_add(sv->tick, &tv);
    }
}

void
service_reloading(struct service *sv)
{
    char msg[128];
    struct timespec ts;

    /* sd_notify(3): RELOADING=1 comes with the CLOCK_MONOTONIC time it began. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg),
             "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    service_send(sv, msg);
}

void
service_stopping(struct service *sv, const char *why)
{
    char msg[SERVICE_STATUS_MAX + 32];

    snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=%s", why);
    service_send(sv, msg);
}

void
service_status(struct service *sv)
{
    service_send_status(sv, "");
}
