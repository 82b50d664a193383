/*
 * wordcount.c — libforq_wordcount.so, an example forqd task plugin with two
 * tasks:
 *
 *   wc   counts the payload's lines, words and bytes, like wc(1), and answers
 *        "LINES WORDS BYTES" (lines = newline characters; words = runs of
 *        bytes other than ASCII blanks)
 *   rev  the payload reversed character by character: a well-formed UTF-8
 *        sequence moves as one character, any other byte moves on its own
 *
 * A plugin needs nothing but include/forq_task.h (header-only) and links
 * nothing from forqd. forqd dlopen()s it at start-up, calls
 * forq_plugin_register() once, and every worker it forks can then run "wc"
 * and "rev". See README.md in this directory.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "forq_task.h"

static int
wordcount_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* wc: "LINES WORDS BYTES" of the payload. */
static int
wordcount_wc(struct forq_task_io *io)
{
    const unsigned char *p = io->payload;
    size_t lines = 0, words = 0;
    int in_word = 0;
    char buf[64];
    int len;

    for (size_t i = 0; i < io->payload_len; i++) {
        if (p[i] == '\n')
            lines++;
        if (wordcount_is_blank(p[i])) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    len = snprintf(buf, sizeof(buf), "%zu %zu %zu", lines, words, io->payload_len);
    /* forq_task_set_result checks result_cap and reports too_big itself. */
    return forq_task_set_result(io, buf, (size_t)len);
}

/*
 * Length of the UTF-8 character at p (n bytes left): 2..4 for a well-formed
 * multi-byte sequence, else 1 (ASCII, or a stray byte moved on its own).
 */
static size_t
wordcount_char_len(const unsigned char *p, size_t n)
{
    size_t len;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 1;
    if (len > n)
        return 1;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 1;
    return len;
}

/* rev: the payload, last character first, written straight into the result. */
static int
wordcount_rev(struct forq_task_io *io)
{
    const unsigned char *in = io->payload;
    unsigned char *out = io->result;
    size_t n = io->payload_len, i = 0, len;

    /* The result is as long as the payload: check the room before writing. */
    if (n > io->result_cap)
        return forq_task_set_result(io, in, n); /* fails with too_big and says why */
    while (i < n) {
        len = wordcount_char_len(in + i, n - i);
        memcpy(out + n - i - len, in + i, len);
        i += len;
    }
    io->result_len = n;
    return 0;
}

/*
 * The plugin's table. forqd keeps pointers into it for the life of the
 * process, so it is static. ctx is handed to the task as io->ctx; these two
 * tasks need none.
 */
static const struct forq_task_def wordcount_tasks[] = {
    {.name = "wc", .fn = wordcount_wc, .ctx = NULL},
    {.name = "rev", .fn = wordcount_rev, .ctx = NULL},
};

static const struct forq_plugin wordcount_plugin = {
    .abi_version = FORQ_TASK_ABI_VERSION, /* forqd refuses any other version */
    .name = "wordcount",
    .tasks = wordcount_tasks,
    .ntasks = sizeof(wordcount_tasks) / sizeof(wordcount_tasks[0]),
};

/* Declared (and exported) by forq_task.h; forqd calls it once, before forking. */
const struct forq_plugin *
forq_plugin_register(void)
{
    return &wordcount_plugin;
}
