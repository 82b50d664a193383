/*
 * log.c — formatting and writing of log lines (any thread).
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from the loop, the store thread and libevent never interleave.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static atomic_int log_threshold = LOG_LEVEL_INFO;
static int log_journal; /* set once in log_init, read-only afterwards */

void
log_init(enum log_level level)
{
    log_journal = getenv("JOURNAL_STREAM") != NULL;
    log_set_level(level);
}

void
log_set_level(enum log_level level)
{
    atomic_store(&log_threshold, (int)level);
}

int
log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_threshold);
}

int
log_level_parse(const char *s)
{
    if (strcmp(s, "err") == 0 || strcmp(s, "error") == 0)
        return LOG_LEVEL_ERR;
    if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0)
        return LOG_LEVEL_WARN;
    if (strcmp(s, "info") == 0)
        return LOG_LEVEL_INFO;
    if (strcmp(s, "debug") == 0)
        return LOG_LEVEL_DEBUG;
    return -1;
}

static const char *
log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERR:
        return "error";
    case LOG_LEVEL_WARN:
        return "warn";
    case LOG_LEVEL_INFO:
        return "info";
    case LOG_LEVEL_DEBUG:
        return "debug";
    }
    return "?";
}

void
log_write(enum log_level level, const char *func, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t n = 0;
    va_list ap;
    int k;

    if (!log_enabled(level))
        return;
    if (log_journal) {
        k = snprintf(line, sizeof(line), "<%d>%s: ", (int)level, func);
    } else {
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        k = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03ld forqd[%d] %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(), log_level_name(level), func);
    }
    if (k > 0)
        n = (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
    /* One line per event: fold embedded newlines. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

static void
log_libevent_cb(int severity, const char *msg)
{
    enum log_level level = LOG_LEVEL_DEBUG;

    if (severity == EVENT_LOG_ERR)
        level = LOG_LEVEL_ERR;
    else if (severity == EVENT_LOG_WARN)
        level = LOG_LEVEL_WARN;
    else if (severity == EVENT_LOG_MSG)
        level = LOG_LEVEL_INFO;
    log_write(level, "libevent", "%s", msg);
}

void
log_hook_libevent(void)
{
    event_set_log_callback(log_libevent_cb);
}
