/*
 * args.h — command-line values the bench tools share: a number in a range
 * and a HOST:PORT server address, each with one clear message on failure.
 */
#ifndef FORQ_BENCH_ARGS_H
#define FORQ_BENCH_ARGS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse s (option opt of tool) as a decimal in min..max into *v. Returns 0,
 * or -1 after printing "tool: opt: expected a number in min..max" on stderr.
 */
int args_num(const char *tool, const char *opt, const char *s, uint64_t min, uint64_t max,
             uint64_t *v);

/*
 * Split "tcp://HOST:PORT", "HOST:PORT" or "[V6]:PORT" into host (hostlen
 * bytes) and port (portlen bytes). Returns 0, or -1 when s is not such an
 * address or a part does not fit.
 */
int args_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

#endif /* FORQ_BENCH_ARGS_H */
