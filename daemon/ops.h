/*
 * ops.h — the protocol's operations: a table from op to handler, with the
 * checks every op shares run before the handler. Loop thread only.
 */
#ifndef FORQ_OPS_H
#define FORQ_OPS_H

#include <stddef.h>
#include <stdint.h>

struct conn;
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
                   const char *why);
void ops_found(void *arg, const struct jobs_origin *o, uint64_t id, const struct msg_job *job);

#endif /* FORQ_OPS_H */
