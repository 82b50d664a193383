/*
 * addr.h — forq's address strings, "tcp://HOST:PORT", "tcp://[V6ADDR]:PORT"
 * and "unix://PATH", parsed the same way by the client (where to connect)
 * and the daemon (where to listen). Pure: no I/O, no name lookup.
 */
#ifndef FORQ_ADDR_H
#define FORQ_ADDR_H

#include <sys/un.h>

#define ADDR_STR_MAX 320 /* longest address string accepted */

enum addr_kind {
    ADDR_TCP = 1,
    ADDR_UNIX,
};

struct addr {
    int kind;       /* enum addr_kind; 0 after a failed parse */
    char host[256]; /* tcp: name or literal address, without the [] of IPv6 */
    char port[6];   /* tcp: decimal 0..65535 */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix: everything after unix:// */
};

#define ADDR_PORT_ZERO 0x1 /* accept port 0 (a listener: the kernel picks a port) */

/*
 * Parse s into *out (cleared first). The port must be 1..65535 (0..65535
 * with ADDR_PORT_ZERO); an IPv6 literal must be written in brackets; a host
 * may not contain '/'. Returns 0, or FORQ_ERR_INVALID with *why pointing to
 * a static description.
 */
int addr_parse(const char *s, unsigned flags, struct addr *out, const char **why);

#endif /* FORQ_ADDR_H */
