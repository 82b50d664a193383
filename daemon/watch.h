/*
 * watch.h — WATCH: one request that reports each of a set of jobs as it
 * finishes (loop thread).
 *
 * A watch answers its request with one event frame per id (more: true; the
 * finished job with its result, or the id with the error that stops it from
 * being watched) as soon as that job is settled, then one last frame: ok once
 * every id has been reported, `timeout` when its time limit passes first, or
 * ok after an UNWATCH. It parks one jobs_waiter per unfinished id and asks the
 * store for ids that are no longer in memory. Events are sent only while the
 * connection's output has room (watch_flush_all resumes them). The watch
 * belongs to its connection and dies with it; it gives its request slot back
 * once started: what bounds watches instead is max_watch_ids, the ids one
 * connection watches at once (a WATCH past it is refused with limit).
 */
#ifndef FORQ_WATCH_H
#define FORQ_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct conn;
struct msg_job;
struct msg_request;
struct watch;

LIST_HEAD(watch_list, watch);

/* Start the watch asked for by req (a decoded WATCH), answering what it can at once. */
void watch_start(struct conn *c, const struct msg_request *req);

/* UNWATCH: end the connection's watch with that rid (if any is left), then answer. */
void watch_unwatch(struct conn *c, const struct msg_request *req);

/*
 * A job of a watch read back from the store (ops_found for a WATCH origin;
 * the origin's rid is the watch's serial): job is NULL when there is no such
 * id. Dropped when the watch is over.
 */
void watch_found(struct conn *c, uint64_t serial, uint64_t id, const struct msg_job *job);

/* The connection's output has drained: send what the watches have waiting. */
void watch_flush_all(struct conn *c);

/* The connection is going away: free its watches without answering. */
void watch_drop_all(struct conn *c);

#endif /* FORQ_WATCH_H */
