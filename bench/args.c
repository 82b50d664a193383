/* args.c — see args.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int
args_num(const char *tool, const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || *v < min || *v > max) {
        fprintf(stderr, "%s: %s: expected a number in %" PRIu64 "..%" PRIu64 "\n", tool, opt, min,
                max);
        return -1;
    }
    return 0;
}

int
args_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    size_t hlen;

    if (strncmp(s, "tcp://", 6) == 0)
        s += 6;
    if ((colon = strrchr(s, ':')) == NULL || colon[1] == '\0')
        return -1;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostlen || strlen(colon + 1) >= portlen)
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}
