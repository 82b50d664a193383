/*
 * log.h — forqd's log: one line per event on stderr.
 *
 * Lines carry a level and the calling function. Under systemd (JOURNAL_STREAM
 * set) each line starts with its syslog priority prefix ("<3>") and carries no
 * timestamp, since journald adds its own; otherwise it starts with a local
 * timestamp. libevent's own messages are routed here too.
 *
 * The level and format are process-wide settings made once at start-up
 * (log_init) before any thread starts: the one piece of global state in forqd,
 * as in every daemon's logger. log_write is thread-safe (one write(2) per line).
 */
#ifndef FORQ_LOG_H
#define FORQ_LOG_H

enum log_level {
    LOG_LEVEL_ERR = 3,  /* syslog LOG_ERR */
    LOG_LEVEL_WARN = 4, /* LOG_WARNING */
    LOG_LEVEL_INFO = 6, /* LOG_INFO */
    LOG_LEVEL_DEBUG = 7 /* LOG_DEBUG */
};

/* Set the threshold and pick the format from the environment. */
void log_init(enum log_level level);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
/* Parse "err", "warn", "info", "debug"; returns the level or -1. */
int log_level_parse(const char *s);
/* Route libevent's messages into this log. */
void log_hook_libevent(void);

void log_write(enum log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_err(...)   log_write(LOG_LEVEL_ERR, __func__, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define log_debug(...)                                                                         \
    do {                                                                                       \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                      \
            log_write(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__);                                 \
    } while (0)

#endif /* FORQ_LOG_H */
