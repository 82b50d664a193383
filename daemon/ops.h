/*
 * ops.h — the protocol's operations: a table from op to handler, with the
 * checks every op shares run before the handler. Loop thread only.
 */
#ifndef FORQ_OPS_H
#define FORQ_OPS_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/*
 * Decode one frame body and run its op. Every request gets exactly one
 * reply, now or later (WAIT); a body that is not a well-formed msgpack map
 * gets an error and closes the connection.
 */
void ops_dispatch(struct conn *c, const uint8_t *body, size_t len);

#endif /* FORQ_OPS_H */
