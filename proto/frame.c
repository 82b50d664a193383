/*
 * frame.c — length-prefixed framing and a streaming frame reader.
 *
 * Pure byte manipulation; safe to call from any thread on distinct readers.
 * The reader never trusts a length before checking it against max_body, and it
 * grows its buffer only for bytes that have arrived or for a frame whose
 * length has been checked.
 */
#include <stdlib.h>
#include <string.h>

#include "forq.h"
#include "frame.h"

#define FRAME_READER_MIN_CAP 4096

int
frame_hdr_decode(const uint8_t hdr[FRAME_HDR_LEN], size_t max_body, uint32_t *body_len)
{
    uint32_t n;

    n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    *body_len = 0;
    if (n == 0)
        return FORQ_ERR_PROTOCOL;
    if (n > max_body)
        return FORQ_ERR_TOO_BIG;
    *body_len = n;
    return 0;
}

void
frame_hdr_encode(uint8_t hdr[FRAME_HDR_LEN], uint32_t body_len)
{
    hdr[0] = (uint8_t)(body_len >> 24);
    hdr[1] = (uint8_t)(body_len >> 16);
    hdr[2] = (uint8_t)(body_len >> 8);
    hdr[3] = (uint8_t)body_len;
}

void
frame_reader_init(struct frame_reader *r, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    r->max_body = max_body;
}

void
frame_reader_fini(struct frame_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

/* Check the header of the first unconsumed frame, if it has arrived. */
static int
frame_reader_check(struct frame_reader *r, uint32_t *body_len)
{
    int e;

    *body_len = 0;
    if (r->err != 0)
        return r->err;
    if (r->len - r->off < FRAME_HDR_LEN)
        return 0;
    if ((e = frame_hdr_decode(r->buf + r->off, r->max_body, body_len)) != 0)
        r->err = e;
    return e;
}

/* Make room for want more bytes after len: compact first, then grow. */
static int
frame_reader_reserve(struct frame_reader *r, size_t want)
{
    size_t need, cap;
    uint8_t *p;

    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (want > SIZE_MAX - r->len)
        return FORQ_ERR_NOMEM;
    need = r->len + want;
    /* Allocate even for want == 0: callers add len to buf, and NULL + 0 is undefined. */
    if (need <= r->cap && r->buf != NULL)
        return 0;
    cap = r->cap ? r->cap : FRAME_READER_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if ((p = realloc(r->buf, cap)) == NULL)
        return FORQ_ERR_NOMEM;
    r->buf = p;
    r->cap = cap;
    return 0;
}

int
frame_reader_feed(struct frame_reader *r, const void *data, size_t len)
{
    uint32_t body_len;
    int e;

    if (r->err != 0)
        return r->err;
    if (len == 0)
        return 0;
    if ((e = frame_reader_reserve(r, len)) != 0)
        return e;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return frame_reader_check(r, &body_len);
}

int
frame_reader_next(struct frame_reader *r, const uint8_t **body, size_t *body_len)
{
    uint32_t n;
    int e;

    *body = NULL;
    *body_len = 0;
    if ((e = frame_reader_check(r, &n)) != 0)
        return e;
    if (n == 0 || r->len - r->off < FRAME_HDR_LEN + (size_t)n)
        return 0;
    *body = r->buf + r->off + FRAME_HDR_LEN;
    *body_len = n;
    r->off += FRAME_HDR_LEN + (size_t)n;
    return 0;
}

int
frame_reader_space(struct frame_reader *r, size_t want, uint8_t **space, size_t *room)
{
    uint32_t n;
    size_t have;
    int e;

    *space = NULL;
    *room = 0;
    if ((e = frame_reader_check(r, &n)) != 0)
        return e;
    /* A checked header lets us size the buffer for the whole frame at once. */
    have = r->len - r->off;
    if (n > 0 && have < FRAME_HDR_LEN + (size_t)n && FRAME_HDR_LEN + (size_t)n - have > want)
        want = FRAME_HDR_LEN + (size_t)n - have;
    if ((e = frame_reader_reserve(r, want)) != 0)
        return e;
    *space = r->buf + r->len;
    *room = r->cap - r->len;
    return 0;
}

void
frame_reader_commit(struct frame_reader *r, size_t n)
{
    uint32_t body_len;

    if (n > r->cap - r->len)
        n = r->cap - r->len;
    r->len += n;
    (void)frame_reader_check(r, &body_len);
}
