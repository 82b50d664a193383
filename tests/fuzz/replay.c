/*
 * replay.c — run a fuzz target over saved inputs without libFuzzer, so the
 * corpus (seeds and every past finding) is a regression test under any
 * compiler, sanitizers or not.
 *
 * usage: fuzz_<target>_replay DIR|FILE...
 * Each regular file in each directory (not recursive) is read whole and passed
 * to LLVMFuzzerTestOneInput. A finding aborts, as under libFuzzer. Exits 1 when
 * an argument cannot be read or names no input at all, so that a mistyped
 * corpus path does not pass silently.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read a whole file; returns 0, or -1 with errno set. */
static int
replay_read(const char *path, uint8_t **data, size_t *size)
{
    uint8_t *buf = NULL, *p;
    size_t len = 0, cap = 0, n;
    FILE *f;

    *data = NULL;
    *size = 0;
    if ((f = fopen(path, "rb")) == NULL)
        return -1;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            if ((p = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = p;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        errno = EIO;
        return -1;
    }
    fclose(f);
    /* Exactly len bytes, so that ASan sees a read past the end of the input. */
    if ((p = realloc(buf, len ? len : 1)) == NULL) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    *data = p;
    *size = len;
    return 0;
}

static int
replay_file(const char *path)
{
    uint8_t *data;
    size_t size;

    if (replay_read(path, &data, &size) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int
replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every regular file of dir, in name order; returns the count or -1. */
static long
replay_dir(const char *dir)
{
    char **names = NULL, **p, path[4096];
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    struct stat st;
    long count = 0;
    DIR *d;

    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            if ((p = realloc(names, cap * sizeof(*names))) == NULL)
                goto fail;
            names = p;
        }
        if ((names[n] = strdup(de->d_name)) == NULL)
            goto fail;
        n++;
    }
    closedir(d);
    d = NULL;
    qsort(names, n, sizeof(*names), replay_cmp);
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (replay_file(path) != 0) {
            count = -1;
            break;
        }
        count++;
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return count;
fail:
    fprintf(stderr, "replay: %s: out of memory\n", dir);
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d != NULL)
        closedir(d);
    return -1;
}

int
main(int argc, char **argv)
{
    struct stat st;
    long n, total = 0;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode))
            n = replay_dir(argv[i]);
        else
            n = replay_file(argv[i]) == 0 ? 1 : -1;
        if (n < 0)
            return 1;
        if (n == 0) {
            fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
            return 1;
        }
        printf("replay: %s: %ld inputs\n", argv[i], n);
        total += n;
    }
    printf("replay: %ld inputs, no findings\n", total);
    return 0;
}
