/*
 * fsync_cost.c — what one write + fdatasync costs on this disk, by how the
 * written blocks came to be.
 *
 *   fsync-cost [-n COUNT] [-s BYTES] [-d DIR] append|overwrite|fallocate
 *
 * Each of COUNT rounds writes BYTES at the next offset of a file in DIR
 * (default /var/tmp, a real disk where /tmp may be tmpfs) and calls
 * fdatasync, as a commit of a write-ahead log does:
 *   append     the file is empty: every write grows it.
 *   overwrite  the file was written out (real blocks) and synced first.
 *   fallocate  posix_fallocate reserved the range first (unwritten extents).
 * Prints the mean µs per round. This is the figure behind store.c's writing
 * the WAL out at open (BENCHMARKS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

static uint64_t
cost_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cost_usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: fsync-cost [-n COUNT] [-s BYTES] [-d DIR] append|overwrite|fallocate\n");
    return rc;
}

/* Write len bytes of buf at off, all of them. Returns 0 or -1 with errno. */
static int
cost_pwrite(int fd, const char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t count = 2000, size = 4096, t0, t1;
    const char *dir = "/var/tmp", *mode;
    char path[4096], *buf;
    int c, fd, rc = 1;
    off_t total;

    while ((c = getopt(argc, argv, "n:s:d:h")) != -1) {
        switch (c) {
        case 'n':
            if (args_num("fsync-cost", "-n", optarg, 1, 1000000, &count) != 0)
                return 2;
            break;
        case 's':
            if (args_num("fsync-cost", "-s", optarg, 1, 1 << 20, &size) != 0)
                return 2;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            return cost_usage(0);
        default:
            return cost_usage(2);
        }
    }
    if (optind + 1 != argc)
        return cost_usage(2);
    mode = argv[optind];
    if (strcmp(mode, "append") != 0 && strcmp(mode, "overwrite") != 0 &&
        strcmp(mode, "fallocate") != 0)
        return cost_usage(2);
    total = (off_t)(count * size);
    if ((buf = malloc(size)) == NULL) {
        fprintf(stderr, "fsync-cost: out of memory\n");
        return 1;
    }
    memset(buf, 'x', size);
    snprintf(path, sizeof(path), "%s/fsync_cost.XXXXXX", dir);
    if ((fd = mkstemp(path)) < 0) {
        fprintf(stderr, "fsync-cost: cannot create a file in %s: %s\n", dir, strerror(errno));
        free(buf);
        return 1;
    }
    unlink(path); /* gone when we exit, however we exit */
    if (strcmp(mode, "overwrite") == 0) {
        for (off_t off = 0; off < total; off += (off_t)size)
            if (cost_pwrite(fd, buf, size, off) != 0)
                goto io_fail;
        if (fsync(fd) != 0)
            goto io_fail;
    } else if (strcmp(mode, "fallocate") == 0) {
        if ((errno = posix_fallocate(fd, 0, total)) != 0 || fsync(fd) != 0)
            goto io_fail;
    }
    t0 = cost_now_ns();
    for (uint64_t i = 0; i < count; i++)
        if (cost_pwrite(fd, buf, size, (off_t)(i * size)) != 0 || fdatasync(fd) != 0)
            goto io_fail;
    t1 = cost_now_ns();
    printf("%s %" PRIu64 " B: %.1f us per write + fdatasync (%" PRIu64 " rounds)\n", mode, size,
           (double)(t1 - t0) / 1000.0 / (double)count, count);
    rc = 0;
    goto out;
io_fail:
    fprintf(stderr, "fsync-cost: %s: %s\n", path, strerror(errno));
out:
    close(fd);
    free(buf);
    return rc;
}
