/*
 * addr.c — parsing of address strings (see addr.h). Shared by libforq and
 * forqd so that both accept exactly the same forms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "forq.h"

static int
addr_fail(struct addr *out, const char **why, const char *text)
{
    memset(out, 0, sizeof(*out));
    *why = text;
    return FORQ_ERR_INVALID;
}

static int
addr_parse_tcp(const char *s, unsigned flags, struct addr *out, const char **why)
{
    const char *host = s, *colon, *end;
    size_t hlen;
    char *ep;
    long port;

    if (*s == '[') {
        if ((end = strchr(s, ']')) == NULL || end[1] != ':')
            return addr_fail(out, why, "expected [ADDRESS]:PORT after tcp://");
        host = s + 1;
        hlen = (size_t)(end - host);
        colon = end + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL)
            return addr_fail(out, why, "expected HOST:PORT after tcp://");
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            return addr_fail(out, why, "an IPv6 address must be written [ADDR]:PORT");
    }
    if (hlen == 0 || hlen >= sizeof(out->host))
        return addr_fail(out, why, "missing or overlong host name");
    if (memchr(host, '/', hlen) != NULL)
        return addr_fail(out, why, "a host name cannot contain '/'");
    errno = 0;
    port = strtol(colon + 1, &ep, 10);
    if (colon[1] < '0' || colon[1] > '9' || *ep != '\0' || errno != 0 || port > 65535 ||
        port < ((flags & ADDR_PORT_ZERO) ? 0 : 1))
        return addr_fail(out, why,
                         (flags & ADDR_PORT_ZERO) ? "the port must be a number in 0..65535"
                                                  : "the port must be a number in 1..65535");
    out->kind = ADDR_TCP;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    snprintf(out->port, sizeof(out->port), "%hu", (unsigned short)port); /* "0080" is "80" */
    return 0;
}

int
addr_parse(const char *s, unsigned flags, struct addr *out, const char **why)
{
    size_t n;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (s == NULL)
        return addr_fail(out, why, "no address");
    if (strlen(s) >= ADDR_STR_MAX)
        return addr_fail(out, why, "address too long");
    if (strncmp(s, "tcp://", 6) == 0)
        return addr_parse_tcp(s + 6, flags, out, why);
    if (strncmp(s, "unix://", 7) != 0)
        return addr_fail(out, why, "expected tcp://HOST:PORT or unix:///PATH");
    n = strlen(s + 7);
    if (n == 0 || n >= sizeof(out->path))
        return addr_fail(out, why, "the socket path must be 1..107 bytes");
    out->kind = ADDR_UNIX;
    memcpy(out->path, s + 7, n + 1);
    return 0;
}
