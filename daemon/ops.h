/*
 * ops.h — the protocol's operations: a table from op to handler, with the
 * checks every op shares run before the handler. Loop thread only.
 */
#ifndef FORQ_OPS_H
#define FORQ_OPS_H

#include <stddef.h>
#include <stdint.h>

#define OPS_WHY_MAX 256 /* longest message given with a refusal */

struct conn;
struct job;
struct jobs_origin;
struct msg_job;

/*
 * Decode one frame body and run its op. Every request gets exactly one
 * reply, now or later (WAIT); a body that is not a well-formed msgpack map
 * gets an error and closes the connection.
 */
void ops_dispatch(struct conn *c, const uint8_t *body, size_t len);

/*
 * jobs' hooks (struct jobs_hooks; arg is the struct server): answer a
 * SUBMIT once the job is stored, and a WAIT / STATUS / CANCEL whose job was
 * read back from the store. A connection that has gone is skipped.
 */
void ops_submitted(void *arg, const struct jobs_origin *o, int code, uint64_t id,
                   int duplicate, const char *why);
void ops_found(void *arg, const struct jobs_origin *o, uint64_t id, const struct msg_job *job);

/*
 * The messages shared by the ops and watch.c, written into why[len]: no such
 * job; a job finished whose outcome is not given out (code FORQ_ERR_STORAGE)
 * or not finished yet (FORQ_ERR_TIMEOUT); a stored row that is not final.
 */
void ops_why_not_found(uint64_t id, char *why, size_t len);
void ops_why_unsettled(const struct job *job, int code, char *why, size_t len);
void ops_why_stale(const struct msg_job *job, char *why, size_t len);

#endif /* FORQ_OPS_H */
