/*
 * config.c — forqd's settings: defaults, the INI file (inih), command-line
 * flags, validation and printing (start-up only, main thread).
 *
 * One table, config_keys, lists the keys of [forqd]; each is also a flag
 * ('_' becomes '-'), so a key and its flag share one parser and one error
 * message ("workers: ..." in a file, "--workers: ..." on the command line).
 * The file is read line by line through our own inih reader, which counts
 * lines and reads the section headers itself: inih calls back only for keys,
 * and every message must name FILE:LINE, including a section's header.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "exec.h"
#include "forq.h"
#include "log.h"
#include "msg.h"
#include "slot.h"
#include "store.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define CONFIG_LINE_MAX    4096       /* longest line of a config file, newline included */
#define CONFIG_MEMORY_MIN  (16 * MIB) /* smallest memory_limit but 0 */
#define CONFIG_WORKER_BATCH 8         /* default worker_batch */
#define CONFIG_QUEUE_LIMIT 1000000
#define CONFIG_FLAG_MAX    32 /* longest "--flag-name" plus NUL */

/* How a key's value is read. */
enum config_kind {
    CONFIG_COUNT,      /* decimal number */
    CONFIG_SIZE,       /* decimal number with an optional K, M or G suffix */
    CONFIG_LISTEN,     /* address; repeatable */
    CONFIG_PLUGIN,     /* absolute path; repeatable */
    CONFIG_DATA,       /* directory */
    CONFIG_DURABILITY, /* full | normal | off */
    CONFIG_LOG_LEVEL,  /* err | warn | info | debug */
    CONFIG_METRICS,    /* tcp:// address, or "" / "off" for none */
    CONFIG_TOKEN,      /* the auth token itself: config file only */
    CONFIG_TOKEN_FILE, /* absolute path of a file holding the auth token */
    CONFIG_UIDS,       /* users, by name or number, separated by commas or blanks */
    CONFIG_GIDS,       /* groups, likewise */
};

/* The keys of [forqd], in config_keys order; a key's getopt code is OPT_KEY + id. */
enum config_key_id {
    KEY_LISTEN,
    KEY_WORKERS,
    KEY_MAX_FRAME,
    KEY_MAX_PAYLOAD,
    KEY_MAX_RESULT,
    KEY_MAX_QUEUED,
    KEY_MAX_QUEUES,
    KEY_MAX_INFLIGHT,
    KEY_MAX_CONNECTIONS,
    KEY_MAX_WATCH_IDS,
    KEY_MAX_NAME,
    KEY_RESULT_TTL,
    KEY_DATA,
    KEY_DURABILITY,
    KEY_MAX_DB_SIZE,
    KEY_RESULT_CACHE,
    KEY_LOG_LEVEL,
    KEY_RETRY_BACKOFF_MS,
    KEY_RETRY_BACKOFF_MAX_MS,
    KEY_MAX_JOBS_PER_WORKER,
    KEY_MEMORY_LIMIT,
    KEY_WORKER_BATCH,
    KEY_PLUGIN,
    KEY_DRAIN_TIMEOUT_MS,
    KEY_METRICS_LISTEN,
    KEY_AUTH_TOKEN,
    KEY_AUTH_TOKEN_FILE,
    KEY_ALLOW_UIDS,
    KEY_ALLOW_GIDS,
    KEY_HANDSHAKE_TIMEOUT_MS,
    KEY_IDLE_TIMEOUT_MS,
    KEY_FRAME_TIMEOUT_MS,
    KEY__COUNT
};

struct config_key {
    const char *key;   /* name in [forqd]; the flag is "--" + key with '_' -> '-' */
    int kind;          /* enum config_kind */
    uint64_t min, max; /* CONFIG_COUNT and CONFIG_SIZE only, as are the rest */
    size_t off, size;  /* the field in struct config: unsigned, size_t or uint64_t */
    uint64_t scale;    /* field = value * scale; 0 means 1 */
    int file_only;     /* no flag: a secret must not show in ps(1) or shell history */
};

/*
 * The table names every field it sets: a positional entry that stops early
 * (a key with no number field, or no scale) is what clang's
 * -Wmissing-field-initializers warns about, and a field added to struct
 * config_key later would silently shift the ones after it.
 */
#define CONFIG_FIELD(f) .off = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)
/* A number key: its kind (CONFIG_COUNT or CONFIG_SIZE), its range, its field. */
#define CONFIG_NUMBER(k, lo, hi, f) .kind = (k), .min = (lo), .max = (hi), CONFIG_FIELD(f)

static const struct config_key config_keys[KEY__COUNT] = {
    [KEY_LISTEN] = {.key = "listen", .kind = CONFIG_LISTEN},
    [KEY_WORKERS] = {.key = "workers",
                     CONFIG_NUMBER(CONFIG_COUNT, 1, MSG_STATS_WORKERS_MAX, workers)},
    [KEY_MAX_FRAME] = {.key = "max_frame", CONFIG_NUMBER(CONFIG_SIZE, 1024, 512 * MIB, max_frame)},
    [KEY_MAX_PAYLOAD] = {.key = "max_payload",
                         CONFIG_NUMBER(CONFIG_SIZE, 0, 256 * MIB, max_payload)},
    [KEY_MAX_RESULT] = {.key = "max_result", CONFIG_NUMBER(CONFIG_SIZE, 0, 256 * MIB, max_result)},
    [KEY_MAX_QUEUED] = {.key = "max_queued",
                        CONFIG_NUMBER(CONFIG_COUNT, 1, (uint64_t)1 << 32, max_queued)},
    /* One STATS lists every queue: see MSG_STATS_QUEUES_MAX. */
    [KEY_MAX_QUEUES] = {.key = "max_queues",
                        CONFIG_NUMBER(CONFIG_COUNT, 1, MSG_STATS_QUEUES_MAX, max_queues)},
    [KEY_MAX_INFLIGHT] = {.key = "max_inflight",
                          CONFIG_NUMBER(CONFIG_COUNT, 1, 1 << 20, max_inflight)},
    [KEY_MAX_CONNECTIONS] = {.key = "max_connections",
                             CONFIG_NUMBER(CONFIG_COUNT, 1, 1 << 20, max_connections)},
    /*
     * Each id watched costs a slot in its watch's list and, while its job is
     * unfinished, a parked waiter. The ceiling is max_queued's: a client may
     * want to watch every job one queue can hold, and the sum of a
     * connection's watches stays far from overflowing.
     */
    [KEY_MAX_WATCH_IDS] = {.key = "max_watch_ids",
                           CONFIG_NUMBER(CONFIG_COUNT, 1, (uint64_t)1 << 32, max_watch_ids)},
    /* Names are at most FORQ_NAME_MAX bytes on the wire; an operator may allow fewer. */
    [KEY_MAX_NAME] = {.key = "max_name", CONFIG_NUMBER(CONFIG_COUNT, 1, FORQ_NAME_MAX, max_name)},
    [KEY_RESULT_TTL] = {.key = "result_ttl",
                        CONFIG_NUMBER(CONFIG_COUNT, 1, 10 * 365 * 24 * 3600, result_ttl_ms),
                        .scale = 1000},
    [KEY_DATA] = {.key = "data", .kind = CONFIG_DATA},
    [KEY_DURABILITY] = {.key = "durability", .kind = CONFIG_DURABILITY},
    [KEY_MAX_DB_SIZE] = {.key = "max_db_size",
                         CONFIG_NUMBER(CONFIG_SIZE, 0, 1024 * GIB, max_db_bytes)},
    [KEY_RESULT_CACHE] = {.key = "result_cache",
                          CONFIG_NUMBER(CONFIG_COUNT, 0, (uint64_t)1 << 32, result_cache)},
    [KEY_LOG_LEVEL] = {.key = "log_level", .kind = CONFIG_LOG_LEVEL},
    [KEY_RETRY_BACKOFF_MS] = {.key = "retry_backoff_ms",
                              CONFIG_NUMBER(CONFIG_COUNT, 1, 86400000, retry_backoff_ms)},
    [KEY_RETRY_BACKOFF_MAX_MS] = {.key = "retry_backoff_max_ms",
                                  CONFIG_NUMBER(CONFIG_COUNT, 1, 86400000, retry_backoff_max_ms)},
    [KEY_MAX_JOBS_PER_WORKER] = {.key = "max_jobs_per_worker",
                                 CONFIG_NUMBER(CONFIG_COUNT, 0, (uint64_t)1 << 32,
                                               max_jobs_per_worker)},
    /* 0, or at least CONFIG_MEMORY_MIN: below that a worker cannot even start. */
    [KEY_MEMORY_LIMIT] = {.key = "memory_limit",
                          CONFIG_NUMBER(CONFIG_SIZE, 0, 1024 * GIB, memory_limit)},
    [KEY_WORKER_BATCH] = {.key = "worker_batch",
                          CONFIG_NUMBER(CONFIG_COUNT, 1, SLOT_BATCH_MAX, worker_batch)},
    [KEY_PLUGIN] = {.key = "plugin", .kind = CONFIG_PLUGIN},
    [KEY_DRAIN_TIMEOUT_MS] = {.key = "drain_timeout_ms",
                              CONFIG_NUMBER(CONFIG_COUNT, 0, 86400000, drain_timeout_ms)},
    [KEY_METRICS_LISTEN] = {.key = "metrics_listen", .kind = CONFIG_METRICS},
    [KEY_AUTH_TOKEN] = {.key = "auth_token", .kind = CONFIG_TOKEN, .file_only = 1},
    [KEY_AUTH_TOKEN_FILE] = {.key = "auth_token_file", .kind = CONFIG_TOKEN_FILE},
    [KEY_ALLOW_UIDS] = {.key = "allow_uids", .kind = CONFIG_UIDS},
    [KEY_ALLOW_GIDS] = {.key = "allow_gids", .kind = CONFIG_GIDS},
    [KEY_HANDSHAKE_TIMEOUT_MS] = {.key = "handshake_timeout_ms",
                                  CONFIG_NUMBER(CONFIG_COUNT, 1, 3600000, handshake_timeout_ms)},
    [KEY_IDLE_TIMEOUT_MS] = {.key = "idle_timeout_ms",
                             CONFIG_NUMBER(CONFIG_COUNT, 0, 7 * 86400000ULL, idle_timeout_ms)},
    [KEY_FRAME_TIMEOUT_MS] = {.key = "frame_timeout_ms",
                              CONFIG_NUMBER(CONFIG_COUNT, 0, 3600000, frame_timeout_ms)},
};

/* Number fields are unsigned or 64 bits wide (size_t is, where forqd runs). */
_Static_assert(sizeof(size_t) == sizeof(uint64_t), "size_t fields are stored as uint64_t");
_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "unsigned fields are stored as uint32_t");

/* getopt codes of the flags that are not keys of [forqd]. */
enum config_opt {
    OPT_CHECK_CONFIG = 256,
    OPT_TASK,
    OPT_TASK_MAX_OUTPUT,
    OPT_QUEUE_LIMIT,
    OPT_QUEUE_ORDER,
    OPT_QUEUE_PAUSED,
    OPT_KEY = 512, /* + enum config_key_id */
};

static const struct option config_flag_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"task", required_argument, NULL, OPT_TASK},
    {"task-max-output", required_argument, NULL, OPT_TASK_MAX_OUTPUT},
    {"queue-limit", required_argument, NULL, OPT_QUEUE_LIMIT},
    {"queue-order", required_argument, NULL, OPT_QUEUE_ORDER},
    {"queue-paused", required_argument, NULL, OPT_QUEUE_PAUSED},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};

#define CONFIG_NFLAGS (sizeof(config_flag_options) / sizeof(config_flag_options[0]))

/* The getopt table: every key as a flag, then the flag-only options. */
struct config_opts {
    struct option opts[KEY__COUNT + CONFIG_NFLAGS + 1];
    char names[KEY__COUNT][CONFIG_FLAG_MAX]; /* "max-payload", ... */
};

/* ------------------------------------------------------------------ lifetime */

void
config_init(struct config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = cpus > 0 ? (unsigned)cpus : 1;
    cfg->max_payload = 1 * MIB;
    cfg->max_result = 1 * MIB;
    cfg->max_frame = 1 * MIB + 64 * KIB;
    cfg->max_queued = 1000000;
    cfg->max_queues = 1024;
    cfg->max_inflight = 4096;
    cfg->max_connections = 16384;
    cfg->max_watch_ids = 1000000;
    cfg->max_name = FORQ_NAME_MAX;
    cfg->result_ttl_ms = 24 * 3600 * 1000;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->durability = STORE_FULL;
    cfg->result_cache = 100000;
    cfg->retry_backoff_ms = 1000;
    cfg->retry_backoff_max_ms = 300000;
    cfg->worker_batch = CONFIG_WORKER_BATCH;
    cfg->drain_timeout_ms = 30000;
    cfg->handshake_timeout_ms = 10000;
    cfg->frame_timeout_ms = 30000;
}

static void
config_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (size_t i = 0; argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

static void
config_task_fini(struct config_task *t)
{
    free(t->name);
    config_argv_free(t->argv);
    memset(t, 0, sizeof(*t));
}

static void
config_listen_clear(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i]);
    cfg->nlisten = 0;
}

static void
config_plugins_clear(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nplugins; i++)
        free(cfg->plugins[i]);
    cfg->nplugins = 0;
}

/* Forget the token, wiping it first: a freed secret should not linger in the heap. */
static void
config_token_clear(struct config *cfg)
{
    if (cfg->auth_token != NULL) {
        explicit_bzero(cfg->auth_token, strlen(cfg->auth_token));
        free(cfg->auth_token);
        cfg->auth_token = NULL;
    }
}

void
config_fini(struct config *cfg)
{
    config_listen_clear(cfg);
    config_plugins_clear(cfg);
    for (size_t i = 0; i < cfg->ntasks; i++)
        config_task_fini(&cfg->tasks[i]);
    free(cfg->tasks);
    cfg->tasks = NULL;
    cfg->ntasks = 0;
    for (size_t i = 0; i < cfg->nqueues; i++)
        free(cfg->queues[i].name);
    free(cfg->queues);
    cfg->queues = NULL;
    cfg->nqueues = 0;
    free(cfg->data_dir);
    cfg->data_dir = NULL;
    free(cfg->metrics_listen);
    cfg->metrics_listen = NULL;
    free(cfg->config_file);
    cfg->config_file = NULL;
    config_token_clear(cfg);
    free(cfg->auth_token_file);
    cfg->auth_token_file = NULL;
}

/* ------------------------------------------------------------------ values */

/*
 * Parse a count or a size: decimal digits with an optional K, M or G suffix
 * (powers of 1024) when sizes is set. The value must lie in [min, max].
 */
static int
config_number(const char *s, int sizes, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0, mult = 1;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return FORQ_ERR_INVALID;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return FORQ_ERR_INVALID;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (sizes && *p != '\0' && p[1] == '\0') {
        if (*p == 'k' || *p == 'K')
            mult = KIB, p++;
        else if (*p == 'm' || *p == 'M')
            mult = MIB, p++;
        else if (*p == 'g' || *p == 'G')
            mult = GIB, p++;
    }
    if (*p != '\0' || v > UINT64_MAX / mult)
        return FORQ_ERR_INVALID;
    v *= mult;
    if (v < min || v > max)
        return FORQ_ERR_INVALID;
    *out = v;
    return 0;
}

/* config_number, with the message "WHAT: expected a number in MIN..MAX, got 'S'". */
static int
config_number_or_err(const char *what, const char *s, int sizes, uint64_t min, uint64_t max,
                     uint64_t *out, char *err, size_t errlen)
{
    if (config_number(s, sizes, min, max, out) == 0)
        return 0;
    snprintf(err, errlen, "%s: expected %s in %" PRIu64 "..%" PRIu64 "%s, got '%s'", what,
             sizes ? "a size" : "a number", min, max, sizes ? " (suffix K, M or G allowed)" : "",
             s);
    return FORQ_ERR_INVALID;
}

/* true/false, yes/no, on/off, 1/0, in any case; nothing else. */
static int
config_bool(const char *what, const char *s, int *out, char *err, size_t errlen)
{
    static const char *const words[][2] = {
        {"true", "false"}, {"yes", "no"}, {"on", "off"}, {"1", "0"}};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        for (int v = 0; v < 2; v++)
            if (strcasecmp(s, words[i][v]) == 0) {
                *out = !v;
                return 0;
            }
    snprintf(err, errlen, "%s: expected true or false (or yes/no, on/off, 1/0), got '%s'", what, s);
    return FORQ_ERR_INVALID;
}

static int
config_name(const char *what, const char *kind, const char *s, size_t n, char *err, size_t errlen)
{
    if (msg_name_valid(s, n))
        return 0;
    snprintf(err, errlen,
             "%s: expected a %s name of 1..%d characters from [A-Za-z0-9_.:-], got '%.*s'", what,
             kind, FORQ_NAME_MAX, (int)n, s);
    return FORQ_ERR_INVALID;
}

static int
config_add_listen(struct config *cfg, const char *what, const char *arg, char *err, size_t errlen)
{
    struct addr a;
    const char *why;

    /* A relative socket path would depend on the directory forqd happens to start in. */
    if (addr_parse(arg, ADDR_PORT_ZERO, &a, &why) != 0 ||
        (a.kind == ADDR_UNIX && a.path[0] != '/' && (why = "the socket path must be absolute"))) {
        snprintf(err, errlen,
                 "%s: expected tcp://HOST:PORT or unix:///absolute/path, got '%s' (%s)", what, arg,
                 why);
        return FORQ_ERR_INVALID;
    }
    if (cfg->nlisten == CONFIG_LISTEN_MAX) {
        snprintf(err, errlen, "%s: at most %d addresses", what, CONFIG_LISTEN_MAX);
        return FORQ_ERR_INVALID;
    }
    if ((cfg->listen[cfg->nlisten] = strdup(arg)) == NULL)
        return FORQ_ERR_NOMEM;
    cfg->nlisten++;
    return 0;
}

/* metrics_listen: a TCP address, or "" / "off" for no metrics listener. */
static int
config_set_metrics(struct config *cfg, const char *what, const char *arg, char *err, size_t errlen)
{
    struct addr a;
    const char *why;

    free(cfg->metrics_listen);
    cfg->metrics_listen = NULL;
    if (arg[0] == '\0' || strcmp(arg, "off") == 0)
        return 0;
    if (addr_parse(arg, ADDR_PORT_ZERO, &a, &why) != 0 ||
        (a.kind != ADDR_TCP && (why = "the metrics listener speaks HTTP over TCP only"))) {
        snprintf(err, errlen, "%s: expected tcp://HOST:PORT or off, got '%s' (%s)", what, arg, why);
        return FORQ_ERR_INVALID;
    }
    return (cfg->metrics_listen = strdup(arg)) == NULL ? FORQ_ERR_NOMEM : 0;
}

static int
config_add_plugin(struct config *cfg, const char *what, const char *arg, char *err, size_t errlen)
{
    /* Like a socket path: what dlopen finds must not depend on the working directory. */
    if (arg[0] != '/') {
        snprintf(err, errlen, "%s: expected an absolute path to a plugin (.so), got '%s'", what,
                 arg);
        return FORQ_ERR_INVALID;
    }
    if (cfg->nplugins == CONFIG_PLUGIN_MAX) {
        snprintf(err, errlen, "%s: at most %d plugins", what, CONFIG_PLUGIN_MAX);
        return FORQ_ERR_INVALID;
    }
    if ((cfg->plugins[cfg->nplugins] = strdup(arg)) == NULL)
        return FORQ_ERR_NOMEM;
    cfg->nplugins++;
    return 0;
}

/* A token as HELLO carries it: 1..MSG_KEY_MAX bytes of UTF-8, no control characters. */
static int
config_token_valid(const char *s, size_t n)
{
    if (n == 0 || n > MSG_KEY_MAX || !msg_utf8_valid((const uint8_t *)s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int
config_set_token(struct config *cfg, const char *what, const char *arg, char *err, size_t errlen)
{
    if (!config_token_valid(arg, strlen(arg))) {
        snprintf(err, errlen,
                 "%s: expected 1..%d bytes of UTF-8 without control characters (the value is "
                 "not shown)",
                 what, MSG_KEY_MAX);
        return FORQ_ERR_INVALID;
    }
    config_token_clear(cfg);
    return (cfg->auth_token = strdup(arg)) == NULL ? FORQ_ERR_NOMEM : 0;
}

static int
config_set_token_file(struct config *cfg, const char *what, const char *arg, char *err,
                      size_t errlen)
{
    free(cfg->auth_token_file);
    cfg->auth_token_file = NULL;
    if (arg[0] == '\0')
        return 0;
    if (arg[0] != '/') {
        snprintf(err, errlen, "%s: expected an absolute path, got '%s'", what, arg);
        return FORQ_ERR_INVALID;
    }
    return (cfg->auth_token_file = strdup(arg)) == NULL ? FORQ_ERR_NOMEM : 0;
}

/* One user or group, by number or by name, into *id. */
static int
config_id(int groups, const char *word, uint32_t *id)
{
    char buf[4096];
    uint64_t v;

    if (config_number(word, 0, 0, UINT32_MAX - 1, &v) == 0) {
        *id = (uint32_t)v;
        return 0;
    }
    if (groups) {
        struct group gr, *g = NULL;

        if (getgrnam_r(word, &gr, buf, sizeof(buf), &g) != 0 || g == NULL)
            return -1;
        *id = (uint32_t)g->gr_gid;
    } else {
        struct passwd pw, *p = NULL;

        if (getpwnam_r(word, &pw, buf, sizeof(buf), &p) != 0 || p == NULL)
            return -1;
        *id = (uint32_t)p->pw_uid;
    }
    return 0;
}

/* allow_uids / allow_gids: the whole list, replacing the one before ("" empties it). */
static int
config_set_ids(struct config *cfg, int groups, const char *what, const char *arg, char *err,
               size_t errlen)
{
    uint32_t *ids = groups ? cfg->allow_gids : cfg->allow_uids;
    size_t *n = groups ? &cfg->nallow_gids : &cfg->nallow_uids;
    const char *p = arg;

    *n = 0;
    while (*(p += strspn(p, ", \t")) != '\0') {
        size_t len = strcspn(p, ", \t");
        char word[256];

        snprintf(word, sizeof(word), "%.*s", (int)len, p);
        if (*n == CONFIG_IDS_MAX) {
            snprintf(err, errlen, "%s: at most %d entries", what, CONFIG_IDS_MAX);
            return FORQ_ERR_INVALID;
        }
        if (len >= sizeof(word) || config_id(groups, word, &ids[*n]) != 0) {
            snprintf(err, errlen, "%s: no %s '%.*s' (a name or a number)", what,
                     groups ? "group" : "user", (int)len, p);
            return FORQ_ERR_INVALID;
        }
        (*n)++;
        p += len;
    }
    return 0;
}

/* The number field of key k, in the key's unit (result_ttl in seconds). */
static uint64_t
config_field_get(const struct config *cfg, const struct config_key *k)
{
    const char *p = (const char *)cfg + k->off;
    uint64_t v;
    uint32_t u;

    if (k->size == sizeof(u)) {
        memcpy(&u, p, sizeof(u));
        v = u;
    } else {
        memcpy(&v, p, sizeof(v));
    }
    return v / (k->scale ? k->scale : 1);
}

static int
config_set_number(struct config *cfg, enum config_key_id id, const char *what, const char *arg,
                  char *err, size_t errlen)
{
    const struct config_key *k = &config_keys[id];
    char *p = (char *)cfg + k->off;
    uint64_t v;
    uint32_t u;
    int e;

    if ((e = config_number_or_err(what, arg, k->kind == CONFIG_SIZE, k->min, k->max, &v, err,
                                  errlen)) != 0)
        return e;
    if (id == KEY_MEMORY_LIMIT && v != 0 && v < CONFIG_MEMORY_MIN) {
        snprintf(err, errlen,
                 "%s: expected 0 (no limit) or a size in %" PRIu64 "..%" PRIu64
                 " (suffix K, M or G allowed), got '%s'",
                 what, CONFIG_MEMORY_MIN, k->max, arg);
        return FORQ_ERR_INVALID;
    }
    v *= k->scale ? k->scale : 1; /* max is small enough not to overflow */
    if (k->size == sizeof(u)) {
        u = (uint32_t)v;
        memcpy(p, &u, sizeof(u));
    } else {
        memcpy(p, &v, sizeof(v));
    }
    return 0;
}

/*
 * Set the [forqd] key id from its text; what names it in messages ("workers"
 * in a file, "--workers" on the command line). Repeatable keys add a value.
 */
static int
config_set_key(struct config *cfg, enum config_key_id id, const char *what, const char *arg,
               char *err, size_t errlen)
{
    int v;

    switch (config_keys[id].kind) {
    case CONFIG_LISTEN:
        return config_add_listen(cfg, what, arg, err, errlen);
    case CONFIG_PLUGIN:
        return config_add_plugin(cfg, what, arg, err, errlen);
    case CONFIG_DATA:
        if (arg[0] == '\0') {
            snprintf(err, errlen, "%s: expected a directory, got ''", what);
            return FORQ_ERR_INVALID;
        }
        free(cfg->data_dir);
        return (cfg->data_dir = strdup(arg)) == NULL ? FORQ_ERR_NOMEM : 0;
    case CONFIG_DURABILITY:
        if ((v = store_durability_parse(arg)) < 0) {
            snprintf(err, errlen, "%s: expected full, normal or off, got '%s'", what, arg);
            return FORQ_ERR_INVALID;
        }
        cfg->durability = v;
        return 0;
    case CONFIG_LOG_LEVEL:
        if ((v = log_level_parse(arg)) < 0) {
            snprintf(err, errlen, "%s: expected err, warn, info or debug, got '%s'", what, arg);
            return FORQ_ERR_INVALID;
        }
        cfg->log_level = v;
        return 0;
    case CONFIG_METRICS:
        return config_set_metrics(cfg, what, arg, err, errlen);
    case CONFIG_TOKEN:
        return config_set_token(cfg, what, arg, err, errlen);
    case CONFIG_TOKEN_FILE:
        return config_set_token_file(cfg, what, arg, err, errlen);
    case CONFIG_UIDS:
    case CONFIG_GIDS:
        return config_set_ids(cfg, config_keys[id].kind == CONFIG_GIDS, what, arg, err, errlen);
    default:
        return config_set_number(cfg, id, what, arg, err, errlen);
    }
}

/* ------------------------------------------------------------------ tasks and queues */

static struct config_task *
config_task_find(struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ntasks; i++)
        if (strcmp(cfg->tasks[i].name, name) == 0)
            return &cfg->tasks[i];
    return NULL;
}

/* Append a task without a command; NULL when out of memory. */
static struct config_task *
config_task_add(struct config *cfg, const char *name)
{
    struct config_task *tasks = realloc(cfg->tasks, (cfg->ntasks + 1) * sizeof(*tasks));
    struct config_task *t;

    if (tasks == NULL)
        return NULL;
    cfg->tasks = tasks;
    t = &tasks[cfg->ntasks];
    memset(t, 0, sizeof(*t));
    if ((t->name = strdup(name)) == NULL)
        return NULL;
    cfg->ntasks++;
    return t;
}

/* Split a command line into t's argv (replacing any previous one). */
static int
config_task_set_exec(struct config_task *t, const char *what, const char *line, char *err,
                     size_t errlen)
{
    char why[256] = "";
    char **argv = NULL;
    size_t argc = 0;
    int e;

    /* A newline could not be written back into a config file (config_print). */
    if (strpbrk(line, "\r\n") != NULL) {
        snprintf(err, errlen, "%s: task '%s': the command must be a single line", what, t->name);
        return FORQ_ERR_INVALID;
    }
    if ((e = exec_split(line, &argv, &argc, why, sizeof(why))) != 0) {
        config_argv_free(argv);
        if (e == FORQ_ERR_NOMEM)
            return e;
        snprintf(err, errlen, "%s: task '%s': %s, got '%s'", what, t->name, why, line);
        return FORQ_ERR_INVALID;
    }
    config_argv_free(t->argv);
    t->argv = argv;
    t->argc = argc;
    return 0;
}

static int
config_task_max_output(struct config_task *t, const char *what, const char *arg, char *err,
                       size_t errlen)
{
    uint64_t v;
    int e;

    if ((e = config_number_or_err(what, arg, 1, 0, config_keys[KEY_MAX_RESULT].max, &v, err,
                                  errlen)) != 0)
        return e;
    t->max_output = v;
    return 0;
}

static struct config_queue *
config_queue_find(struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nqueues; i++)
        if (strcmp(cfg->queues[i].name, name) == 0)
            return &cfg->queues[i];
    return NULL;
}

/* Append the settings of a queue, at their defaults; NULL when out of memory. */
static struct config_queue *
config_queue_add(struct config *cfg, const char *name)
{
    struct config_queue *queues = realloc(cfg->queues, (cfg->nqueues + 1) * sizeof(*queues));
    struct config_queue *q;

    if (queues == NULL)
        return NULL;
    cfg->queues = queues;
    q = &queues[cfg->nqueues];
    memset(q, 0, sizeof(*q));
    if ((q->name = strdup(name)) == NULL)
        return NULL;
    cfg->nqueues++;
    return q;
}

/* Set the queue key name ("limit", "order" or "paused"); what names it in messages. */
static int
config_queue_set(struct config_queue *q, const char *name, const char *what, const char *arg,
                 char *err, size_t errlen)
{
    uint64_t v;
    int e;

    if (strcmp(name, "limit") == 0) {
        if ((e = config_number_or_err(what, arg, 0, 0, CONFIG_QUEUE_LIMIT, &v, err, errlen)) != 0)
            return e;
        q->limit = (uint32_t)v;
        return 0;
    }
    if (strcmp(name, "order") == 0) {
        if (strcmp(arg, "fifo") != 0 && strcmp(arg, "lifo") != 0) {
            snprintf(err, errlen, "%s: expected fifo or lifo, got '%s'", what, arg);
            return FORQ_ERR_INVALID;
        }
        q->lifo = strcmp(arg, "lifo") == 0;
        return 0;
    }
    return config_bool(what, arg, &q->paused, err, errlen);
}

/* ------------------------------------------------------------------ the file */

enum config_section {
    SECTION_NONE,
    SECTION_FORQD,
    SECTION_TASK,
    SECTION_QUEUE,
};

/* Sub-keys of [task.NAME] and [queue.NAME], for the "given twice" check. */
static const char *const config_task_keys[] = {"exec", "max_output"};
static const char *const config_queue_keys[] = {"limit", "order", "paused"};

/* State of one config_load_file: the inih reader and handler share it. */
struct config_file {
    struct config *cfg;
    const char *path;
    FILE *f;
    char *line; /* getline's buffer */
    size_t linecap;
    int lineno;  /* of the line inih is handling */
    int section; /* enum config_section being read */
    int section_line;
    size_t index;             /* the task or queue of that section */
    int forqd_line;           /* where [forqd] began; 0: not yet */
    int key_line[KEY__COUNT]; /* where each [forqd] key was set; 0: not yet */
    int sub_line[3];          /* the same for the task or queue section being read */
    int e;                    /* the first error; its message is in err */
    char *err;
    size_t errlen;
};

static int config_file_fail(struct config_file *cf, int line, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the first error as "FILE:LINE: message"; returns e. */
static int
config_file_fail(struct config_file *cf, int line, int e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (cf->e != 0)
        return cf->e;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (e == FORQ_ERR_NOMEM)
        snprintf(msg, sizeof(msg), "out of memory");
    snprintf(cf->err, cf->errlen, "%s:%d: %s", cf->path, line, msg);
    cf->e = e;
    return e;
}

/* The section being read ends: a task section must have had its command. */
static int
config_file_section_end(struct config_file *cf)
{
    if (cf->section == SECTION_TASK && cf->cfg->tasks[cf->index].argv == NULL)
        return config_file_fail(cf, cf->section_line, FORQ_ERR_INVALID,
                                "[task.%s]: missing exec = COMMAND",
                                cf->cfg->tasks[cf->index].name);
    return 0;
}

/* Start the section named name (the text between the brackets, trimmed). */
static int
config_file_section_begin(struct config_file *cf, const char *name)
{
    struct config *cfg = cf->cfg;
    const char *dot = strchr(name, '.');
    size_t kind = dot != NULL ? (size_t)(dot - name) : strlen(name);
    char why[256];

    memset(cf->sub_line, 0, sizeof(cf->sub_line));
    cf->section_line = cf->lineno;
    if (strcmp(name, "forqd") == 0) {
        if (cf->forqd_line != 0)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                                    "duplicate section [forqd] (first at line %d)", cf->forqd_line);
        cf->forqd_line = cf->lineno;
        cf->section = SECTION_FORQD;
        return 0;
    }
    if (dot != NULL && kind == 4 && strncmp(name, "task", 4) == 0) {
        if (config_name("[task.NAME]", "task", dot + 1, strlen(dot + 1), why, sizeof(why)) != 0)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "%s", why);
        if (config_task_find(cfg, dot + 1) != NULL)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "duplicate section [%s]",
                                    name);
        if (config_task_add(cfg, dot + 1) == NULL)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_NOMEM, "out of memory");
        cf->section = SECTION_TASK;
        cf->index = cfg->ntasks - 1;
        return 0;
    }
    if (dot != NULL && kind == 5 && strncmp(name, "queue", 5) == 0) {
        if (config_name("[queue.NAME]", "queue", dot + 1, strlen(dot + 1), why, sizeof(why)) != 0)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "%s", why);
        if (config_queue_find(cfg, dot + 1) != NULL)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "duplicate section [%s]",
                                    name);
        if (config_queue_add(cfg, dot + 1) == NULL)
            return config_file_fail(cf, cf->lineno, FORQ_ERR_NOMEM, "out of memory");
        cf->section = SECTION_QUEUE;
        cf->index = cfg->nqueues - 1;
        return 0;
    }
    return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                            "unknown section [%s]; expected [forqd], [task.NAME] or [queue.NAME]",
                            name);
}

/* A "[section]" line (s starts at '['). */
static int
config_file_section_line(struct config_file *cf, char *s)
{
    char *end = strchr(s, ']'), *rest, *name;

    if (end == NULL)
        return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                                "expected [section], missing ']'");
    /* Only blanks or a comment may follow; inih would ignore anything else. */
    for (rest = end + 1; *rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n'; rest++)
        ;
    if (*rest != '\0' && *rest != ';' && *rest != '#') {
        rest[strcspn(rest, "\r\n")] = '\0';
        return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                                "unexpected text after the section header: '%s'", rest);
    }
    *end = '\0';
    for (name = s + 1; *name == ' ' || *name == '\t'; name++)
        ;
    while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    if (config_file_section_end(cf) != 0)
        return cf->e;
    return config_file_section_begin(cf, name);
}

/*
 * inih's reader: one line per call, so lineno is the line inih is about to
 * handle. Leading blanks are dropped, which also keeps inih from reading an
 * indented line as the continuation of the previous value. Section headers
 * are handled here; returning NULL ends the parse (at the end of the file or
 * at the first error).
 */
static char *
config_file_reader_cb(char *str, int num, void *stream)
{
    struct config_file *cf = stream;
    ssize_t n;
    char *p;
    char copy[CONFIG_LINE_MAX];

    if (cf->e != 0)
        return NULL;
    if ((n = getline(&cf->line, &cf->linecap, cf->f)) < 0) {
        if (ferror(cf->f)) {
            snprintf(cf->err, cf->errlen, "%s: cannot read: %s", cf->path, strerror(errno));
            cf->e = FORQ_ERR_INVALID;
        } else
            (void)config_file_section_end(cf);
        return NULL;
    }
    cf->lineno++;
    p = cf->line;
    if (cf->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* a UTF-8 byte order mark */
    if (memchr(cf->line, '\0', (size_t)n) != NULL) {
        (void)config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "unexpected NUL byte");
        return NULL;
    }
    if ((size_t)n >= sizeof(copy) || (size_t)n >= (size_t)num) {
        (void)config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "line too long (at most %d bytes)",
                               CONFIG_LINE_MAX - 2);
        return NULL;
    }
    p += strspn(p, " \t\r\f\v");
    if (*p == '[') {
        memcpy(copy, p, strlen(p) + 1);
        if (config_file_section_line(cf, copy) != 0)
            return NULL;
    }
    memcpy(str, p, strlen(p) + 1);
    return str;
}

/* "given twice" check of a key in the section being read; *seen is its line. */
static int
config_file_once(struct config_file *cf, int *seen, const char *name)
{
    if (*seen != 0)
        return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                                "%s: given twice (first at line %d)", name, *seen);
    *seen = cf->lineno;
    return 0;
}

static int
config_file_forqd_key(struct config_file *cf, const char *name, const char *value)
{
    char why[512];
    int e;

    for (int id = 0; id < KEY__COUNT; id++) {
        int kind = config_keys[id].kind;

        if (strcmp(name, config_keys[id].key) != 0)
            continue;
        if (kind != CONFIG_LISTEN && kind != CONFIG_PLUGIN &&
            config_file_once(cf, &cf->key_line[id], name) != 0)
            return cf->e;
        if ((e = config_set_key(cf->cfg, id, name, value, why, sizeof(why))) != 0)
            return config_file_fail(cf, cf->lineno, e, "%s", why);
        return 0;
    }
    return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID, "unknown key '%s' in [forqd]", name);
}

static int
config_file_sub_key(struct config_file *cf, const char *name, const char *value)
{
    int task = cf->section == SECTION_TASK;
    const char *const *keys = task ? config_task_keys : config_queue_keys;
    size_t nkeys = task ? 2 : 3;
    char why[512];
    int e;

    for (size_t i = 0; i < nkeys; i++) {
        if (strcmp(name, keys[i]) != 0)
            continue;
        if (config_file_once(cf, &cf->sub_line[i], name) != 0)
            return cf->e;
        if (!task)
            e = config_queue_set(&cf->cfg->queues[cf->index], name, name, value, why, sizeof(why));
        else if (i == 0)
            e = config_task_set_exec(&cf->cfg->tasks[cf->index], name, value, why, sizeof(why));
        else
            e = config_task_max_output(&cf->cfg->tasks[cf->index], name, value, why, sizeof(why));
        return e != 0 ? config_file_fail(cf, cf->lineno, e, "%s", why) : 0;
    }
    return config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                            task ? "unknown key '%s' in a [task.NAME] section; expected exec or "
                                   "max_output"
                                 : "unknown key '%s' in a [queue.NAME] section; expected "
                                   "limit, order or paused",
                            name);
}

/* inih's handler: one key = value of the section the reader saw last. */
static int
config_file_key_cb(void *user, const char *section, const char *name, const char *value)
{
    struct config_file *cf = user;

    (void)section; /* inih cuts section names at 49 bytes; the reader tracks them */
    if (cf->e != 0)
        return 0;
    switch (cf->section) {
    case SECTION_FORQD:
        return config_file_forqd_key(cf, name, value) == 0;
    case SECTION_TASK:
    case SECTION_QUEUE:
        return config_file_sub_key(cf, name, value) == 0;
    default:
        config_file_fail(cf, cf->lineno, FORQ_ERR_INVALID,
                         "%s: key outside a section; put it under [forqd]", name);
        return 0;
    }
}

/* Read path; *absent is set (and 0 returned) when it does not exist and absent is not NULL. */
static int
config_file_read(struct config *cfg, const char *path, int *absent, char *err, size_t errlen)
{
    struct config_file cf = {.cfg = cfg, .path = path, .err = err, .errlen = errlen};
    char *copy;
    int r;

    err[0] = '\0';
    if ((cf.f = fopen(path, "re")) == NULL) {
        if (absent != NULL && errno == ENOENT) {
            *absent = 1;
            return 0;
        }
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return FORQ_ERR_INVALID;
    }
    if ((copy = strdup(path)) == NULL) {
        fclose(cf.f);
        return FORQ_ERR_NOMEM;
    }
    free(cfg->config_file);
    cfg->config_file = copy;
    /*
     * Debian's inih exposes its build options as variables: allow long
     * command lines, stop at the first error, and never join lines.
     */
    ini_max_line = CONFIG_LINE_MAX;
    ini_stop_on_first_error = true;
    ini_allow_multiline = false;
    r = ini_parse_stream(config_file_reader_cb, &cf, config_file_key_cb, &cf);
    fclose(cf.f);
    free(cf.line);
    if (r > 0 && (cf.e == 0 || r < cf.lineno)) {
        cf.e = 0;
        return config_file_fail(&cf, r, FORQ_ERR_INVALID,
                                "syntax error: expected [section], key = value or a comment");
    }
    if (cf.e == 0 && r == -2)
        return FORQ_ERR_NOMEM;
    return cf.e;
}

int
config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    return config_file_read(cfg, path, NULL, err, errlen);
}

/* ------------------------------------------------------------------ flags */

/* "--" + key with '_' -> '-'. */
static void
config_flag_name(enum config_key_id id, char *buf, size_t len)
{
    snprintf(buf, len, "--%s", config_keys[id].key);
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '_')
            *p = '-';
}

static void
config_opts_build(struct config_opts *o)
{
    size_t n = 0;

    for (int id = 0; id < KEY__COUNT; id++) {
        char flag[CONFIG_FLAG_MAX];

        if (config_keys[id].file_only)
            continue;
        config_flag_name(id, flag, sizeof(flag));
        snprintf(o->names[id], sizeof(o->names[id]), "%s", flag + 2);
        o->opts[n++] = (struct option){o->names[id], required_argument, NULL, OPT_KEY + id};
    }
    for (size_t i = 0; i < CONFIG_NFLAGS; i++)
        o->opts[n++] = config_flag_options[i];
    o->opts[n] = (struct option){NULL, 0, NULL, 0};
}

/* What the flags collect before they are applied together. */
struct config_flags {
    int listen_seen, plugin_seen; /* a flag replaces the file's whole list */
    size_t nfile_tasks;           /* tasks [0, nfile_tasks) came from the file */
    const char **max_outputs;     /* --task-max-output arguments, applied last */
    size_t nmax_outputs;
};

/*
 * Split "NAME=VALUE" of flag what. NAME (a valid name) is copied into name;
 * *value is NULL when there is no '=' and value_optional is set.
 */
static int
config_flag_split(const char *what, const char *form, const char *arg, int value_optional,
                  char name[FORQ_NAME_MAX + 1], const char **value, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    size_t n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

    if (eq == NULL && !value_optional) {
        snprintf(err, errlen, "%s: expected %s, got '%s'", what, form, arg);
        return FORQ_ERR_INVALID;
    }
    if (!msg_name_valid(arg, n)) {
        snprintf(err, errlen,
                 "%s: expected %s with NAME of 1..%d characters from "
                 "[A-Za-z0-9_.:-], got '%s'",
                 what, form, FORQ_NAME_MAX, arg);
        return FORQ_ERR_INVALID;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    *value = eq != NULL ? eq + 1 : NULL;
    return 0;
}

/* --task NAME=COMMAND: a task of the file with that name is replaced. */
static int
config_flag_task(struct config *cfg, struct config_flags *fl, const char *arg, char *err,
                 size_t errlen)
{
    struct config_task t = {0};
    char name[FORQ_NAME_MAX + 1];
    const char *cmd;
    int e;

    if ((e = config_flag_split("--task", "NAME=COMMAND", arg, 0, name, &cmd, err, errlen)) != 0)
        return e;
    t.name = name;
    if ((e = config_task_set_exec(&t, "--task", cmd, err, errlen)) != 0)
        return e;
    for (size_t i = 0; i < fl->nfile_tasks; i++) {
        if (strcmp(cfg->tasks[i].name, name) != 0)
            continue;
        config_task_fini(&cfg->tasks[i]);
        memmove(&cfg->tasks[i], &cfg->tasks[i + 1], (cfg->ntasks - i - 1) * sizeof(t));
        cfg->ntasks--;
        fl->nfile_tasks--;
        break;
    }
    /* A second --task of one name is left in place for config_check to refuse. */
    if (config_task_add(cfg, name) == NULL) {
        config_argv_free(t.argv);
        return FORQ_ERR_NOMEM;
    }
    cfg->tasks[cfg->ntasks - 1].argv = t.argv;
    cfg->tasks[cfg->ntasks - 1].argc = t.argc;
    return 0;
}

/* --task-max-output NAME=SIZE, after every --task. */
static int
config_flag_max_output(struct config *cfg, const char *arg, char *err, size_t errlen)
{
    char name[FORQ_NAME_MAX + 1];
    struct config_task *t;
    const char *size;
    int e;

    if ((e = config_flag_split("--task-max-output", "NAME=SIZE", arg, 0, name, &size, err,
                               errlen)) != 0)
        return e;
    if ((t = config_task_find(cfg, name)) == NULL) {
        snprintf(err, errlen,
                 "--task-max-output: no task '%s' (declare it with [task.%s] or --task)", name,
                 name);
        return FORQ_ERR_INVALID;
    }
    return config_task_max_output(t, "--task-max-output", size, err, errlen);
}

/* --queue-limit NAME=K, --queue-order NAME=fifo|lifo, --queue-paused NAME[=BOOL]. */
static int
config_flag_queue(struct config *cfg, int opt, const char *arg, char *err, size_t errlen)
{
    static const struct {
        int opt;
        const char *flag, *form, *key;
    } qf[] = {
        {OPT_QUEUE_LIMIT, "--queue-limit", "NAME=K", "limit"},
        {OPT_QUEUE_ORDER, "--queue-order", "NAME=fifo|lifo", "order"},
        {OPT_QUEUE_PAUSED, "--queue-paused", "NAME or NAME=BOOL", "paused"},
    };
    char name[FORQ_NAME_MAX + 1];
    struct config_queue *q;
    const char *value;
    size_t i = 0;
    int e;

    while (qf[i].opt != opt)
        i++;
    if ((e = config_flag_split(qf[i].flag, qf[i].form, arg, opt == OPT_QUEUE_PAUSED, name, &value,
                               err, errlen)) != 0)
        return e;
    if ((q = config_queue_find(cfg, name)) == NULL && (q = config_queue_add(cfg, name)) == NULL)
        return FORQ_ERR_NOMEM;
    return config_queue_set(q, qf[i].key, qf[i].flag, value != NULL ? value : "true", err, errlen);
}

static int
config_flag_key(struct config *cfg, struct config_flags *fl, enum config_key_id id, const char *arg,
                char *err, size_t errlen)
{
    char flag[CONFIG_FLAG_MAX];

    /* The first --listen (--plugin) replaces the list the file gave. */
    if (id == KEY_LISTEN && !fl->listen_seen++)
        config_listen_clear(cfg);
    if (id == KEY_PLUGIN && !fl->plugin_seen++)
        config_plugins_clear(cfg);
    config_flag_name(id, flag, sizeof(flag));
    return config_set_key(cfg, id, flag, arg, err, errlen);
}

/* One flag of the second pass (-c, -h and -V were seen in the first). */
static int
config_flag(struct config *cfg, struct config_flags *fl, int c, char **argv, char *err,
            size_t errlen)
{
    switch (c) {
    case 'c':
    case 'h':
    case 'V':
        return 0;
    case OPT_CHECK_CONFIG:
        cfg->check_config = 1;
        return 0;
    case OPT_TASK:
        return config_flag_task(cfg, fl, optarg, err, errlen);
    case OPT_TASK_MAX_OUTPUT:
        fl->max_outputs[fl->nmax_outputs++] = optarg;
        return 0;
    case OPT_QUEUE_LIMIT:
    case OPT_QUEUE_ORDER:
    case OPT_QUEUE_PAUSED:
        return config_flag_queue(cfg, c, optarg, err, errlen);
    case ':':
        snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
        return FORQ_ERR_INVALID;
    case '?':
        /* A flag without a value given one: optopt is the flag's code. */
        if (optopt >= 256 || ((optopt == 'h' || optopt == 'V') && argv[optind - 1][1] == '-'))
            snprintf(err, errlen, "%.*s: takes no value", (int)strcspn(argv[optind - 1], "="),
                     argv[optind - 1]);
        else if (optopt != 0)
            snprintf(err, errlen, "unknown option '-%c' (see --help)", optopt);
        else
            snprintf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
        return FORQ_ERR_INVALID;
    default:
        if (c < OPT_KEY || c >= OPT_KEY + KEY__COUNT)
            return FORQ_ERR_INVALID;
        return config_flag_key(cfg, fl, c - OPT_KEY, optarg, err, errlen);
    }
}

/*
 * First pass over argv: unknown flags and missing values, -h and -V (which
 * win over the rest) and the last -c FILE. Values are checked in the second.
 */
static int
config_scan_args(struct config *cfg, const struct config_opts *o, int argc, char **argv,
                 const char **file, char *err, size_t errlen)
{
    int c;

    /*
     * 0, not 1: glibc and musl then also forget their position inside the
     * previous argv (a cluster like "-hV" left half read), so a second parse
     * starts clean instead of reading stale or freed memory.
     */
    /* Before getopt, which would take "--auth-token" for --auth-token-file. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strncmp(argv[i], "--auth-token", 12) == 0 &&
            (argv[i][12] == '\0' || argv[i][12] == '=')) {
            snprintf(err, errlen,
                     "--auth-token: the token is not taken on the command line, where ps(1) "
                     "shows it; name a file with --auth-token-file or set auth_token in the "
                     "config file");
            return FORQ_ERR_INVALID;
        }
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hVc:", o->opts, NULL)) != -1) {
        if (c == 'h' || c == 'V') {
            cfg->show_help = c == 'h';
            cfg->show_version = c == 'V';
            return 0;
        }
        if (c == 'c')
            *file = optarg;
        if (c == '?' || c == ':')
            return config_flag(cfg, NULL, c, argv, err, errlen);
    }
    return 0;
}

/* Second pass: apply every flag on top of what the file set. */
static int
config_apply_args(struct config *cfg, const struct config_opts *o, int argc, char **argv, char *err,
                  size_t errlen)
{
    struct config_flags fl = {.nfile_tasks = cfg->ntasks};
    int c, e = 0;

    if ((fl.max_outputs = calloc((size_t)argc + 1, sizeof(*fl.max_outputs))) == NULL)
        return FORQ_ERR_NOMEM;
    optind = 0;
    opterr = 0;
    while (e == 0 && (c = getopt_long(argc, argv, ":hVc:", o->opts, NULL)) != -1)
        e = config_flag(cfg, &fl, c, argv, err, errlen);
    if (e == 0 && optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        e = FORQ_ERR_INVALID;
    }
    for (size_t i = 0; e == 0 && i < fl.nmax_outputs; i++)
        e = config_flag_max_output(cfg, fl.max_outputs[i], err, errlen);
    free(fl.max_outputs);
    return e;
}

/*
 * The first directory of a systemd directory list ($STATE_DIRECTORY is
 * "/var/lib/forq", or several paths joined by ':'), into buf; NULL when the
 * variable is unset, empty or not an absolute path.
 */
static const char *
config_env_dir(const char *var, char *buf, size_t len)
{
    const char *v = getenv(var);
    size_t n;

    if (v == NULL || v[0] != '/')
        return NULL;
    n = strcspn(v, ":");
    if (n >= len)
        return NULL;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

/*
 * Defaults that depend on where forqd runs. By hand: ./forq-data and
 * CONFIG_DEFAULT_LISTEN. Under systemd (StateDirectory=, RuntimeDirectory=):
 * $STATE_DIRECTORY, and a unix socket at $RUNTIME_DIRECTORY/forq.sock next
 * to the TCP default. 0 or FORQ_ERR_NOMEM.
 */
static int
config_defaults(struct config *cfg)
{
    char dir[PATH_MAX], sock[PATH_MAX + 32];
    const char *d;

    if (cfg->data_dir == NULL) {
        d = config_env_dir("STATE_DIRECTORY", dir, sizeof(dir));
        if ((cfg->data_dir = strdup(d != NULL ? d : CONFIG_DEFAULT_DATA)) == NULL)
            return FORQ_ERR_NOMEM;
    }
    if (cfg->nlisten > 0)
        return 0;
    if ((cfg->listen[0] = strdup(CONFIG_DEFAULT_LISTEN)) == NULL)
        return FORQ_ERR_NOMEM;
    cfg->nlisten = 1;
    d = config_env_dir("RUNTIME_DIRECTORY", dir, sizeof(dir));
    if (d != NULL && strlen(d) + sizeof("/forq.sock") <= sizeof(((struct addr *)0)->path)) {
        snprintf(sock, sizeof(sock), "unix://%s/forq.sock", d);
        if ((cfg->listen[1] = strdup(sock)) == NULL)
            return FORQ_ERR_NOMEM;
        cfg->nlisten = 2;
    }
    return 0;
}

/*
 * A task or queue the operator declared must have a name of at most
 * max_name characters: clients could never name it otherwise. 0 or
 * FORQ_ERR_INVALID.
 */
static int
config_name_fits(const char *kind, const char *name, size_t max_name, char *err, size_t errlen)
{
    size_t n = strlen(name);

    if (n <= max_name)
        return 0;
    snprintf(err, errlen, "%s '%s': the name has %zu characters, more than max_name (%zu)", kind,
             name, n, max_name);
    return FORQ_ERR_INVALID;
}

/* Checks that involve several settings. */
static int
config_check(struct config *cfg, char *err, size_t errlen)
{
    /* A SUBMIT carries the payload and a WAIT answer the result, each plus a few fields. */
    if (cfg->max_frame < cfg->max_payload + 1024) {
        snprintf(err, errlen,
                 "--max-frame (%zu) must exceed --max-payload (%zu) by at least 1024 bytes",
                 cfg->max_frame, cfg->max_payload);
        return FORQ_ERR_INVALID;
    }
    if (cfg->max_frame < cfg->max_result + 1024) {
        snprintf(err, errlen,
                 "--max-frame (%zu) must exceed --max-result (%zu) by at least 1024 bytes",
                 cfg->max_frame, cfg->max_result);
        return FORQ_ERR_INVALID;
    }
    if (cfg->retry_backoff_max_ms < cfg->retry_backoff_ms) {
        snprintf(err, errlen,
                 "--retry-backoff-max-ms (%" PRIu64 ") must be at least --retry-backoff-ms "
                 "(%" PRIu64 ")",
                 cfg->retry_backoff_max_ms, cfg->retry_backoff_ms);
        return FORQ_ERR_INVALID;
    }
    if (cfg->memory_limit != 0 && cfg->memory_limit < CONFIG_MEMORY_MIN) {
        snprintf(err, errlen, "--memory-limit (%" PRIu64 ") must be 0 or at least 16M",
                 cfg->memory_limit);
        return FORQ_ERR_INVALID;
    }
    for (size_t i = 0; i < cfg->ntasks; i++) {
        const struct config_task *t = &cfg->tasks[i];

        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->tasks[j].name, t->name) == 0) {
                snprintf(err, errlen, "--task: task '%s' is declared twice", t->name);
                return FORQ_ERR_INVALID;
            }
        if (t->max_output > cfg->max_result) {
            snprintf(err, errlen, "task '%s': max_output (%zu) must not exceed --max-result (%zu)",
                     t->name, t->max_output, cfg->max_result);
            return FORQ_ERR_INVALID;
        }
        /* Here, not at [task.NAME]: max_name may come later in the file, or as a flag. */
        if (config_name_fits("task", t->name, cfg->max_name, err, errlen) != 0)
            return FORQ_ERR_INVALID;
    }
    for (size_t i = 0; i < cfg->nqueues; i++) {
        if (!msg_name_valid(cfg->queues[i].name, strlen(cfg->queues[i].name))) {
            snprintf(err, errlen, "queue '%s': not a valid queue name", cfg->queues[i].name);
            return FORQ_ERR_INVALID;
        }
        if (config_name_fits("queue", cfg->queues[i].name, cfg->max_name, err, errlen) != 0)
            return FORQ_ERR_INVALID;
    }
    return config_defaults(cfg);
}

/*
 * auth_token_file: the token is the file's one line (a final newline is
 * dropped). The file must be a regular file that others cannot read or
 * write. Both auth_token and auth_token_file set is an error: which one wins
 * would be a guess. 0 or FORQ_ERR_INVALID / FORQ_ERR_NOMEM.
 */
static int
config_load_token(struct config *cfg, char *err, size_t errlen)
{
    const char *path = cfg->auth_token_file;
    char buf[MSG_KEY_MAX + 3];
    struct stat st;
    ssize_t n;
    int fd, e = FORQ_ERR_INVALID;

    if (path == NULL)
        return 0;
    if (cfg->auth_token != NULL) {
        snprintf(err, errlen, "auth_token and auth_token_file are both set; keep one");
        return FORQ_ERR_INVALID;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "auth_token_file %s: %s", path, strerror(errno));
        return FORQ_ERR_INVALID;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "auth_token_file %s: not a regular file", path);
    } else if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(err, errlen,
                 "auth_token_file %s: others may read or write it (mode %04o); "
                 "chmod o-rwx it",
                 path, (unsigned)(st.st_mode & 07777));
    } else if ((n = read(fd, buf, sizeof(buf) - 1)) < 0) {
        snprintf(err, errlen, "auth_token_file %s: %s", path, strerror(errno));
    } else {
        buf[n] = '\0';
        if (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '\r')
            buf[--n] = '\0';
        if (!config_token_valid(buf, (size_t)n))
            snprintf(err, errlen,
                     "auth_token_file %s: expected one line of 1..%d bytes of UTF-8 without "
                     "control characters",
                     path, MSG_KEY_MAX);
        else
            e = (cfg->auth_token = strdup(buf)) == NULL ? FORQ_ERR_NOMEM : 0;
    }
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return e;
}

int
config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct config_opts o;
    const char *file = NULL;
    int absent = 0, e;

    err[0] = '\0';
    config_opts_build(&o);
    if ((e = config_scan_args(cfg, &o, argc, argv, &file, err, errlen)) != 0)
        return e;
    if (cfg->show_help || cfg->show_version)
        return 0;
    /* The default file is optional; one named with -c is not. */
    if (file != NULL)
        e = config_load_file(cfg, file, err, errlen);
    else
        e = config_file_read(cfg, CONFIG_DEFAULT_FILE, &absent, err, errlen);
    if (e != 0 || (e = config_apply_args(cfg, &o, argc, argv, err, errlen)) != 0 ||
        (e = config_check(cfg, err, errlen)) != 0)
        return e;
    return config_load_token(cfg, err, errlen);
}

/* ------------------------------------------------------------------ comparing */

static int
config_task_equal(const struct config_task *a, const struct config_task *b)
{
    if (strcmp(a->name, b->name) != 0 || a->argc != b->argc || a->max_output != b->max_output)
        return 0;
    for (size_t i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], b->argv[i]) != 0)
            return 0;
    return 1;
}

int
config_tasks_equal(const struct config *a, const struct config *b)
{
    if (a->nplugins != b->nplugins || a->ntasks != b->ntasks)
        return 0;
    for (size_t i = 0; i < a->nplugins; i++)
        if (strcmp(a->plugins[i], b->plugins[i]) != 0)
            return 0;
    for (size_t i = 0; i < a->ntasks; i++)
        if (!config_task_equal(&a->tasks[i], &b->tasks[i]))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ output */

/* A size with the largest suffix that keeps it exact: 1114112 is "1088K". */
static void
config_print_size(FILE *out, const char *key, uint64_t v)
{
    static const char suffix[] = "GMK";
    static const uint64_t mult[] = {GIB, MIB, KIB};

    for (size_t i = 0; i < 3; i++)
        if (v != 0 && v % mult[i] == 0) {
            fprintf(out, "%s = %" PRIu64 "%c\n", key, v / mult[i], suffix[i]);
            return;
        }
    fprintf(out, "%s = %" PRIu64 "\n", key, v);
}

/*
 * One word of a command, written so that exec_split gives it back and inih
 * keeps it whole: blanks go inside '...'; quotes, backslashes and ';' (which
 * starts a comment after a blank) are escaped with a backslash outside them.
 */
static void
config_print_word(FILE *out, const char *w)
{
    int quoted = 0;

    if (w[0] == '\0') {
        fputs("''", out);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)w; *p != '\0'; p++) {
        int special = *p == '\'' || *p == '"' || *p == '\\' || *p == ';';
        int blank = *p <= ' ' || *p == 0x7f;

        if ((special || !blank) && quoted) {
            fputc('\'', out);
            quoted = 0;
        }
        if (special)
            fputc('\\', out);
        else if (blank && !quoted) {
            fputc('\'', out);
            quoted = 1;
        }
        fputc(*p, out);
    }
    if (quoted)
        fputc('\'', out);
}

static const char *
config_log_level_name(int level)
{
    switch (level) {
    case LOG_LEVEL_ERR:
        return "err";
    case LOG_LEVEL_WARN:
        return "warn";
    case LOG_LEVEL_DEBUG:
        return "debug";
    default:
        return "info";
    }
}

static void
config_print_key(const struct config *cfg, enum config_key_id id, FILE *out)
{
    const struct config_key *k = &config_keys[id];

    switch (k->kind) {
    case CONFIG_LISTEN:
        for (size_t i = 0; i < cfg->nlisten; i++)
            fprintf(out, "%s = %s\n", k->key, cfg->listen[i]);
        if (cfg->nlisten == 0)
            fprintf(out, "%s = %s\n", k->key, CONFIG_DEFAULT_LISTEN);
        break;
    case CONFIG_PLUGIN:
        for (size_t i = 0; i < cfg->nplugins; i++)
            fprintf(out, "%s = %s\n", k->key, cfg->plugins[i]);
        if (cfg->nplugins == 0)
            fprintf(out, "; %s = (none)\n", k->key);
        break;
    case CONFIG_DATA:
        fprintf(out, "%s = %s\n", k->key, cfg->data_dir ? cfg->data_dir : CONFIG_DEFAULT_DATA);
        break;
    case CONFIG_DURABILITY:
        fprintf(out, "%s = %s\n", k->key, store_durability_name(cfg->durability));
        break;
    case CONFIG_LOG_LEVEL:
        fprintf(out, "%s = %s\n", k->key, config_log_level_name(cfg->log_level));
        break;
    case CONFIG_METRICS:
        fprintf(out, "%s = %s\n", k->key, cfg->metrics_listen ? cfg->metrics_listen : "off");
        break;
    case CONFIG_TOKEN: /* never the secret itself */
        fprintf(out, "; %s = %s\n", k->key,
                cfg->auth_token != NULL ? "(set, not shown)" : "(none)");
        break;
    case CONFIG_TOKEN_FILE:
        if (cfg->auth_token_file != NULL)
            fprintf(out, "%s = %s\n", k->key, cfg->auth_token_file);
        else
            fprintf(out, "; %s = (none)\n", k->key);
        break;
    case CONFIG_UIDS:
    case CONFIG_GIDS: {
        const uint32_t *ids = k->kind == CONFIG_GIDS ? cfg->allow_gids : cfg->allow_uids;
        size_t n = k->kind == CONFIG_GIDS ? cfg->nallow_gids : cfg->nallow_uids;

        fprintf(out, "%s%s =", n == 0 ? "; " : "", k->key);
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s %" PRIu32, i ? "," : "", ids[i]);
        fprintf(out, "%s\n", n == 0 ? " (every peer)" : "");
        break;
    }
    case CONFIG_SIZE:
        config_print_size(out, k->key, config_field_get(cfg, k));
        break;
    default:
        fprintf(out, "%s = %" PRIu64 "\n", k->key, config_field_get(cfg, k));
        break;
    }
}

void
config_print(const struct config *cfg, FILE *out)
{
    fprintf(out, "; forqd settings in effect; config file: %s\n",
            cfg->config_file != NULL ? cfg->config_file : "none");
    fprintf(out, "[forqd]\n");
    for (int id = 0; id < KEY__COUNT; id++)
        config_print_key(cfg, id, out);
    for (size_t i = 0; i < cfg->ntasks; i++) {
        const struct config_task *t = &cfg->tasks[i];

        fprintf(out, "\n[task.%s]\nexec =", t->name);
        for (size_t j = 0; t->argv != NULL && t->argv[j] != NULL; j++) {
            fputc(' ', out);
            config_print_word(out, t->argv[j]);
        }
        fputc('\n', out);
        config_print_size(out, "max_output", t->max_output);
    }
    for (size_t i = 0; i < cfg->nqueues; i++) {
        const struct config_queue *q = &cfg->queues[i];

        fprintf(out, "\n[queue.%s]\nlimit = %" PRIu32 "\norder = %s\npaused = %s\n", q->name,
                q->limit, q->lifo ? "lifo" : "fifo", q->paused ? "true" : "false");
    }
}

void
config_usage(FILE *out)
{
    fprintf(out,
            "usage: forqd [options]\n"
            "\n"
            "The config file (-c FILE, else " CONFIG_DEFAULT_FILE " if it exists) is read\n"
            "first, then the flags, which win. Every key of its [forqd] section is also a\n"
            "flag: key max_payload is --max-payload. See systemd/forqd.conf for an example.\n"
            "\n"
            "  -c, --config FILE      read settings from FILE (INI: [forqd], [task.NAME],\n"
            "                         [queue.NAME])\n"
            "  --check-config         check the settings (plugins and tasks included), print\n"
            "                         them as a config file and exit\n"
            "  --listen ADDR          listen on tcp://HOST:PORT or unix:///path; repeatable;\n"
            "                         replaces the file's list\n"
            "                         (default " CONFIG_DEFAULT_LISTEN
            "; port 0 picks a free port;\n"
            "                         under systemd also unix://$RUNTIME_DIRECTORY/forq.sock;\n"
            "                         sockets passed by systemd replace the list)\n"
            "  --workers N            worker processes (default: number of CPUs)\n"
            "  --max-frame SIZE       largest frame body; must exceed --max-payload and\n"
            "                         --max-result by 1K (default 1088K)\n"
            "  --max-payload SIZE     largest job payload (default 1M)\n"
            "  --max-result SIZE      largest job result (default 1M)\n"
            "  --max-queued N         jobs queued per queue before queue_full (default 1000000)\n"
            "  --max-queues N         distinct queue names, at most 1920 (default 1024)\n"
            "  --max-inflight N       requests in flight per connection before forqd\n"
            "                         stops reading from it (default 4096)\n"
            "  --max-connections N    client connections at once (default 16384)\n"
            "  --max-watch-ids N      job ids one connection may watch at once with WATCH\n"
            "                         (1..4294967296, default 1000000)\n"
            "  --max-name N           longest task or queue name, 1..%d (default %d)\n"
            "  --result-ttl SECONDS   how long finished jobs stay retrievable (default 86400)\n"
            "  --data DIR             where the job store lives (default " CONFIG_DEFAULT_DATA ",\n"
            "                         under systemd $STATE_DIRECTORY)\n"
            "  --durability MODE      full: a SUBMIT is acked once committed and fsynced\n"
            "                         (default); normal: once committed, which survives a\n"
            "                         killed forqd but not a power cut; off: memory only\n"
            "  --max-db-size SIZE     refuse new jobs (storage error) once the database\n"
            "                         would grow past SIZE (default 0: no limit)\n"
            "  --result-cache N       finished jobs kept in memory; older ones are read\n"
            "                         back from the store (default 100000)\n"
            "  --log-level LEVEL      err, warn, info or debug (default info)\n"
            "  --retry-backoff-ms MS  delay before a job's first retry; it doubles with each\n"
            "                         attempt (1..86400000, default 1000)\n"
            "  --retry-backoff-max-ms MS\n"
            "                         longest retry delay, at least --retry-backoff-ms\n"
            "                         (default 300000)\n"
            "  --max-jobs-per-worker N\n"
            "                         replace a worker after N jobs (default 0: never)\n"
            "  --memory-limit SIZE    address-space limit of each worker, 0 or at least 16M\n"
            "                         (default 0: none)\n"
            "  --worker-batch N       quick jobs one worker wake-up may carry while every\n"
            "                         worker is busy (1..16, default 8; 1: one job each)\n"
            "  --plugin PATH          load the task plugin at absolute PATH; repeatable, at\n"
            "                         most %d; replaces the file's list\n"
            "  --drain-timeout-ms MS  on SIGTERM, how long running jobs may take to finish\n"
            "                         before they are stopped and requeued (default 30000;\n"
            "                         0: at once)\n"
            "  --metrics-listen ADDR  serve Prometheus metrics at http://ADDR/metrics;\n"
            "                         tcp://HOST:PORT or off (default off)\n"
            "  --auth-token-file PATH clients must present the token in this file (one\n"
            "                         line, not readable by others) in HELLO; the token\n"
            "                         itself is set only in the file (auth_token)\n"
            "  --allow-uids LIST      unix socket peers admitted by user (names or numbers,\n"
            "  --allow-gids LIST      comma-separated) or by group; default: every peer\n"
            "  --handshake-timeout-ms MS\n"
            "                         with a token, time to pass HELLO (default 10000)\n"
            "  --idle-timeout-ms MS   close a connection with nothing in flight after MS\n"
            "                         of silence (default 0: never)\n"
            "  --frame-timeout-ms MS  close a connection whose frame does not arrive\n"
            "                         whole within MS (default 30000; 0: never)\n"
            "  --task NAME=COMMAND    declare exec task NAME: COMMAND is split into words\n"
            "                         ('...', \"...\" and \\ quote; no shell); repeatable;\n"
            "                         replaces a [task.NAME] of the file\n"
            "  --task-max-output NAME=SIZE\n"
            "                         bytes of task NAME's stdout kept as its result\n"
            "                         (default 0: --max-result)\n"
            "  --queue-limit NAME=K   at most K jobs of queue NAME run at once (0: no limit)\n"
            "  --queue-order NAME=fifo|lifo\n"
            "                         order within a priority of queue NAME (default fifo)\n"
            "  --queue-paused NAME[=BOOL]\n"
            "                         queue NAME starts paused\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "SIZE takes an optional K, M or G suffix (powers of 1024). The --queue-* and\n"
            "--task* flags are repeatable.\n",
            FORQ_NAME_MAX, FORQ_NAME_MAX, CONFIG_PLUGIN_MAX);
}
