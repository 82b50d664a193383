/*
 * service.h — forqd and its service manager (systemd): readiness and status
 * notifications, the watchdog, and the sockets of socket activation.
 *
 * Outside systemd (no NOTIFY_SOCKET, no LISTEN_FDS) every call does nothing,
 * so the rest of forqd calls them unconditionally. The notifications go to
 * $NOTIFY_SOCKET as sd_notify(3) datagrams:
 *   READY=1      once the listeners accept and every worker is forked;
 *   STATUS=...   a one-line summary (jobs queued, running, connections), sent
 *                with READY=1 and then on every tick;
 *   RELOADING=1  while SIGHUP's reload runs (READY=1 again after it);
 *   STOPPING=1   when a drain starts;
 *   WATCHDOG=1   on every tick when the unit sets WatchdogSec=: the tick is a
 *                loop timer at half the watchdog period, so a wedged loop
 *                stops the pings and systemd restarts forqd.
 * Loop thread only.
 */
#ifndef FORQ_SERVICE_H
#define FORQ_SERVICE_H

#include <stddef.h>

struct event_base;
struct service;

/* Write the current one-line status into buf (NUL-terminated). */
typedef void (*service_status_fn)(void *arg, char *buf, size_t len);

/*
 * Take the listening sockets systemd passed (LISTEN_FDS): their fds go into
 * fds (up to max), marked close-on-exec and non-blocking, and the LISTEN_*
 * variables are unset so no child sees them. Returns how many (0 when forqd
 * was not socket-activated), or -1 with why when a passed descriptor is not
 * a listening stream socket or there are more than max.
 */
int service_listen_fds(int *fds, int max, char *why, size_t whylen);

/*
 * Set up notifications; status is asked for the STATUS= line. The tick
 * starts with service_ready. Returns 0 with *out, or FORQ_ERR_NOMEM.
 */
int service_new(struct event_base *base, service_status_fn status, void *arg, struct service **out);
/* Stop the tick and free. NULL is a no-op. */
void service_free(struct service *sv);

/* READY=1 with the status, and start the tick. */
void service_ready(struct service *sv);
/* RELOADING=1 (SIGHUP); service_ready ends it. */
void service_reloading(struct service *sv);
/* STOPPING=1 with status text why (e.g. "draining: 3 jobs running"). */
void service_stopping(struct service *sv, const char *why);
/* STATUS= now, with the status callback's text. */
void service_status(struct service *sv);

#endif /* FORQ_SERVICE_H */
