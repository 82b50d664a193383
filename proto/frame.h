/*
 * frame.h — forq's framing: a 4-byte big-endian body length, then the body
 * (one msgpack map). Pure functions over bytes: no I/O, no globals, usable by
 * the daemon, the client and the fuzzers alike.
 */
#ifndef FORQ_FRAME_H
#define FORQ_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_LEN 4

/*
 * Read a frame header. Returns 0 and sets *body_len when the 4 bytes announce
 * a body of 1..max_body bytes; FORQ_ERR_TOO_BIG when it is over max_body;
 * FORQ_ERR_PROTOCOL when it is 0 (an empty body is never a valid message).
 */
int frame_hdr_decode(const uint8_t hdr[FRAME_HDR_LEN], size_t max_body, uint32_t *body_len);

/* Write the header for a body of body_len bytes (body_len <= UINT32_MAX). */
void frame_hdr_encode(uint8_t hdr[FRAME_HDR_LEN], uint32_t body_len);

/*
 * A streaming frame reader for byte streams that arrive in arbitrary pieces
 * (the client's socket, fuzzers). It owns one growable buffer; the length of a
 * frame is checked against max_body as soon as its 4 header bytes are in, so
 * an oversize frame never causes an allocation.
 *
 * Not thread-safe: one reader per stream.
 */
struct frame_reader {
    uint8_t *buf;    /* bytes received and not yet consumed */
    size_t len;      /* valid bytes in buf */
    size_t off;      /* start of the first unconsumed frame */
    size_t cap;      /* allocated size of buf */
    size_t max_body; /* largest body accepted */
    int err;         /* sticky error: once set, the stream is unusable */
};

void frame_reader_init(struct frame_reader *r, size_t max_body);
/* Free the buffer. The reader may be initialised again afterwards. */
void frame_reader_fini(struct frame_reader *r);

/*
 * Append len bytes received from the stream. Returns 0, FORQ_ERR_NOMEM, or the
 * reader's sticky error. The bytes are copied.
 */
int frame_reader_feed(struct frame_reader *r, const void *data, size_t len);

/*
 * Take the next complete frame. Returns 0 with *body and *body_len set to the
 * frame's body (or *body = NULL when no whole frame is buffered yet), or
 * FORQ_ERR_TOO_BIG / FORQ_ERR_PROTOCOL for a bad header (sticky: the stream
 * cannot be resynchronised). *body points into the reader and stays valid
 * until the next call of frame_reader_feed, _space or _fini.
 */
int frame_reader_next(struct frame_reader *r, const uint8_t **body, size_t *body_len);

/*
 * Reserve room for at least want bytes at the end of the buffer so that the
 * caller can read(2) into it directly. Returns 0 with *space / *room set, or
 * FORQ_ERR_NOMEM. Follow with frame_reader_commit(r, n) for the n bytes
 * actually written.
 */
int frame_reader_space(struct frame_reader *r, size_t want, uint8_t **space, size_t *room);
void frame_reader_commit(struct frame_reader *r, size_t n);

#endif /* FORQ_FRAME_H */
