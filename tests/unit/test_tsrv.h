/*
 * test_tsrv.h — the sending half of the fake forqd that client unit tests
 * run on a thread: encode a response or an error and write it to the
 * client's socket. A failure aborts (the server thread cannot fail a cmocka
 * assertion for the test). Each test keeps its own request handling.
 */
#ifndef FORQ_TEST_TSRV_H
#define FORQ_TEST_TSRV_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <msgpack.h>

#include "msg.h"

#define TSRV_CHECK(x)                                                                              \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "test server: check failed: %s\n", #x);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Write sb's bytes to fd (as far as the peer takes them), then free sb. */
static inline void
tsrv_send(int fd, msgpack_sbuffer *sb)
{
    size_t off = 0;
    ssize_t n;

    while (off < sb->size) {
        if ((n = send(fd, sb->data + off, sb->size - off, MSG_NOSIGNAL)) <= 0)
            break;
        off += (size_t)n;
    }
    msgpack_sbuffer_destroy(sb);
}

static inline void
tsrv_reply(int fd, int op, const struct msg_response *resp)
{
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    TSRV_CHECK(msg_encode_response(&sb, op, resp) == 0);
    tsrv_send(fd, &sb);
}

static inline void
tsrv_error(int fd, uint64_t rid, int code, const char *text)
{
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    TSRV_CHECK(msg_encode_error(&sb, rid, code, text) == 0);
    tsrv_send(fd, &sb);
}

#endif /* FORQ_TEST_TSRV_H */
