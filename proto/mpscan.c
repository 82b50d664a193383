/*
 * mpscan.c — allocation-free structural check of msgpack bytes.
 *
 * See mpscan.h for why this exists. The walk keeps an explicit stack of
 * "elements still to read" per open container, so hostile nesting costs no C
 * stack and the depth limit is exact.
 */
#include <string.h>

#include "forq.h"
#include "mpscan.h"

#define MPSCAN_DEPTH_LIMIT 64 /* hard ceiling on max_depth */

/* One element's head: how many bytes to skip, and how many children follow. */
struct mpscan_head {
    size_t skip;    /* bytes of this element excluding children */
    uint64_t items; /* children to read (2 per map entry); 0 for scalars */
    int is_map, is_container;
};

static uint64_t
mpscan_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | *p++;
    return v;
}

/*
 * Decode the head at p (avail bytes available). Returns 0 or
 * FORQ_ERR_PROTOCOL with *why set.
 */
static int
mpscan_head(const uint8_t *p, size_t avail, struct mpscan_head *h, const char **why)
{
    uint8_t b = p[0];
    unsigned lenbytes = 0; /* size of an explicit length field */
    size_t fixed = 1;      /* bytes before the variable data */
    uint64_t n = 0;

    memset(h, 0, sizeof(*h));
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        h->skip = 1;
        return 0;
    }
    if (b >= 0x80 && b <= 0x9f) {
        h->is_container = 1;
        h->is_map = b <= 0x8f;
        h->items = (uint64_t)(b & 0x0f) * (h->is_map ? 2 : 1);
        h->skip = 1;
        return 0;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
        goto data;
    }
    switch (b) {
    case 0xca: case 0xce: case 0xd2: h->skip = 5; goto fixed;
    case 0xcb: case 0xcf: case 0xd3: h->skip = 9; goto fixed;
    case 0xcc: case 0xd0: h->skip = 2; goto fixed;
    case 0xcd: case 0xd1: h->skip = 3; goto fixed;
    case 0xd4: h->skip = 3; goto fixed;
    case 0xd5: h->skip = 4; goto fixed;
    case 0xd6: h->skip = 6; goto fixed;
    case 0xd7: h->skip = 10; goto fixed;
    case 0xd8: h->skip = 18; goto fixed;
    case 0xc4: case 0xd9: lenbytes = 1; break;
    case 0xc5: case 0xda: lenbytes = 2; break;
    case 0xc6: case 0xdb: lenbytes = 4; break;
    case 0xc7: lenbytes = 1; fixed = 2; break; /* ext: length, then a type byte */
    case 0xc8: lenbytes = 2; fixed = 2; break;
    case 0xc9: lenbytes = 4; fixed = 2; break;
    case 0xdc: case 0xde: lenbytes = 2; h->is_container = 1; break;
    case 0xdd: case 0xdf: lenbytes = 4; h->is_container = 1; break;
    default:
        *why = "invalid msgpack type byte 0xc1";
        return FORQ_ERR_PROTOCOL;
    }
    if (avail < 1 + (size_t)lenbytes) {
        *why = "truncated msgpack length";
        return FORQ_ERR_PROTOCOL;
    }
    n = mpscan_be(p + 1, lenbytes);
    if (h->is_container) {
        h->is_map = b == 0xde || b == 0xdf;
        h->items = n * (h->is_map ? 2 : 1);
        h->skip = 1 + lenbytes;
        return 0;
    }
    fixed += lenbytes;
    h->skip = fixed;
data:
    if (n > avail || fixed + n > avail) {
        *why = "msgpack string or binary runs past the end";
        return FORQ_ERR_PROTOCOL;
    }
    h->skip = fixed + (size_t)n;
    return 0;
fixed:
    if (h->skip > avail) {
        *why = "truncated msgpack number";
        return FORQ_ERR_PROTOCOL;
    }
    return 0;
}

int
mpscan_check(const uint8_t *buf, size_t len, unsigned max_depth, size_t max_items,
             const char **why)
{
    uint64_t left[MPSCAN_DEPTH_LIMIT + 1]; /* elements still due per level */
    uint64_t total = 0;
    struct mpscan_head h;
    unsigned depth = 0;
    size_t pos = 0;
    int e;

    *why = NULL;
    if (max_depth > MPSCAN_DEPTH_LIMIT)
        max_depth = MPSCAN_DEPTH_LIMIT;
    left[0] = 1; /* exactly one top-level value */
    for (;;) {
        while (left[depth] == 0) {
            if (depth == 0)
                goto done;
            depth--;
        }
        left[depth]--;
        if (pos >= len) {
            *why = "truncated msgpack value";
            return FORQ_ERR_PROTOCOL;
        }
        if ((e = mpscan_head(buf + pos, len - pos, &h, why)) != 0)
            return e;
        pos += h.skip;
        if (!h.is_container)
            continue;
        if (h.items > len - pos) {
            *why = "msgpack container count exceeds the bytes that follow";
            return FORQ_ERR_PROTOCOL;
        }
        total += h.items;
        if (total > max_items) {
            *why = "too many msgpack elements";
            return FORQ_ERR_PROTOCOL;
        }
        if (depth + 1 > max_depth) {
            *why = "msgpack nested too deep";
            return FORQ_ERR_PROTOCOL;
        }
        left[++depth] = h.items;
    }
done:
    if (pos != len) {
        *why = "trailing bytes after the msgpack value";
        return FORQ_ERR_PROTOCOL;
    }
    return 0;
}

/* Skip one whole value (with children) starting at pos; input already checked. */
static size_t
mpscan_skip(const uint8_t *buf, size_t len, size_t pos)
{
    uint64_t pending = 1;
    struct mpscan_head h;
    const char *why;

    while (pending > 0 && pos < len) {
        if (mpscan_head(buf + pos, len - pos, &h, &why) != 0)
            return len;
        pending = pending - 1 + h.items;
        pos += h.skip;
    }
    return pos;
}

/* Read a str element at pos; returns 1 and sets *s and *n when it is one. */
static int
mpscan_str(const uint8_t *buf, size_t len, size_t pos, const uint8_t **s, size_t *n)
{
    struct mpscan_head h;
    const char *why;
    uint8_t b = buf[pos];
    size_t hdr;

    if (mpscan_head(buf + pos, len - pos, &h, &why) != 0)
        return 0;
    if (b >= 0xa0 && b <= 0xbf)
        hdr = 1;
    else if (b == 0xd9)
        hdr = 2;
    else if (b == 0xda)
        hdr = 3;
    else if (b == 0xdb)
        hdr = 5;
    else
        return 0;
    *s = buf + pos + hdr;
    *n = h.skip - hdr;
    return 1;
}

int
mpscan_map_uint(const uint8_t *buf, size_t len, const char *key, uint64_t *val)
{
    struct mpscan_head h;
    const uint8_t *s, *p;
    const char *why;
    size_t pos, klen = strlen(key), n;
    uint64_t entries, i;

    *val = 0;
    if (len == 0 || mpscan_head(buf, len, &h, &why) != 0 || !h.is_map)
        return FORQ_ERR_BAD_REQUEST;
    entries = h.items / 2;
    pos = h.skip;
    for (i = 0; i < entries && pos < len; i++) {
        int match = mpscan_str(buf, len, pos, &s, &n) && n == klen && memcmp(s, key, n) == 0;

        pos = mpscan_skip(buf, len, pos);
        if (!match) {
            pos = mpscan_skip(buf, len, pos);
            continue;
        }
        if (pos >= len)
            return FORQ_ERR_BAD_REQUEST;
        p = buf + pos;
        if (*p <= 0x7f)
            *val = *p;
        else if (*p >= 0xcc && *p <= 0xcf && mpscan_head(p, len - pos, &h, &why) == 0)
            *val = mpscan_be(p + 1, (unsigned)h.skip - 1);
        else if (*p >= 0xd0 && *p <= 0xd3 && mpscan_head(p, len - pos, &h, &why) == 0 &&
                 (p[1] & 0x80) == 0)
            /* A non-negative signed int: msgpack-c (and so msg_decode_*) reads it as a uint. */
            *val = mpscan_be(p + 1, (unsigned)h.skip - 1);
        else
            return FORQ_ERR_BAD_REQUEST;
        return 0;
    }
    return FORQ_ERR_NOT_FOUND;
}
