/*
 * config.c — defaults and command-line flags of forqd (start-up only).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "forq.h"
#include "log.h"
#include "store.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)

enum config_opt {
    OPT_LISTEN = 256,
    OPT_WORKERS,
    OPT_MAX_FRAME,
    OPT_MAX_PAYLOAD,
    OPT_MAX_RESULT,
    OPT_MAX_QUEUED,
    OPT_MAX_QUEUES,
    OPT_MAX_INFLIGHT,
    OPT_MAX_CONNECTIONS,
    OPT_RESULT_TTL,
    OPT_LOG_LEVEL,
    OPT_DATA,
    OPT_DURABILITY,
    OPT_MAX_DB_SIZE,
    OPT_RESULT_CACHE,
};

static const struct option config_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"max-payload", required_argument, NULL, OPT_MAX_PAYLOAD},
    {"max-result", required_argument, NULL, OPT_MAX_RESULT},
    {"max-queued", required_argument, NULL, OPT_MAX_QUEUED},
    {"max-queues", required_argument, NULL, OPT_MAX_QUEUES},
    {"max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"result-ttl", required_argument, NULL, OPT_RESULT_TTL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"max-db-size", required_argument, NULL, OPT_MAX_DB_SIZE},
    {"result-cache", required_argument, NULL, OPT_RESULT_CACHE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

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
    cfg->result_ttl_ms = 24 * 3600 * 1000;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->durability = STORE_FULL;
    cfg->result_cache = 100000;
}

void
config_fini(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i]);
    cfg->nlisten = 0;
    free(cfg->data_dir);
    cfg->data_dir = NULL;
}

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
            mult = 1024 * MIB, p++;
    }
    if (*p != '\0' || v > UINT64_MAX / mult)
        return FORQ_ERR_INVALID;
    v *= mult;
    if (v < min || v > max)
        return FORQ_ERR_INVALID;
    *out = v;
    return 0;
}

struct config_limit {
    int opt;
    const char *name;
    int sizes;
    uint64_t min, max;
};

static const struct config_limit config_limits[] = {
    {OPT_WORKERS, "--workers", 0, 1, 1024},
    {OPT_MAX_FRAME, "--max-frame", 1, 1024, 512 * MIB},
    {OPT_MAX_PAYLOAD, "--max-payload", 1, 0, 256 * MIB},
    {OPT_MAX_RESULT, "--max-result", 1, 0, 256 * MIB},
    {OPT_MAX_QUEUED, "--max-queued", 0, 1, (uint64_t)1 << 32},
    /*
     * STATS lists every queue (15 elements each) and worker (13 each) in one
     * message of at most MSG_MAX_ITEMS (65536) elements: 2048 + 1024 fit.
     */
    {OPT_MAX_QUEUES, "--max-queues", 0, 1, 2048},
    {OPT_MAX_INFLIGHT, "--max-inflight", 0, 1, 1 << 20},
    {OPT_MAX_CONNECTIONS, "--max-connections", 0, 1, 1 << 20},
    {OPT_RESULT_TTL, "--result-ttl", 0, 1, 10 * 365 * 24 * 3600},
    {OPT_MAX_DB_SIZE, "--max-db-size", 1, 0, 1024 * 1024 * MIB},
    {OPT_RESULT_CACHE, "--result-cache", 0, 0, (uint64_t)1 << 32},
};

static int
config_set_number(struct config *cfg, int opt, const char *arg, char *err, size_t errlen)
{
    const struct config_limit *l = NULL;
    uint64_t v;

    for (size_t i = 0; i < sizeof(config_limits) / sizeof(config_limits[0]); i++)
        if (config_limits[i].opt == opt)
            l = &config_limits[i];
    if (l == NULL)
        return FORQ_ERR_INVALID;
    if (config_number(arg, l->sizes, l->min, l->max, &v) != 0) {
        snprintf(err, errlen, "%s: expected %s in %" PRIu64 "..%" PRIu64 "%s, got '%s'", l->name,
                 l->sizes ? "a size" : "a number", l->min, l->max,
                 l->sizes ? " (suffix K, M or G allowed)" : "", arg);
        return FORQ_ERR_INVALID;
    }
    switch (opt) {
    case OPT_WORKERS: cfg->workers = (unsigned)v; break;
    case OPT_MAX_FRAME: cfg->max_frame = v; break;
    case OPT_MAX_PAYLOAD: cfg->max_payload = v; break;
    case OPT_MAX_RESULT: cfg->max_result = v; break;
    case OPT_MAX_QUEUED: cfg->max_queued = v; break;
    case OPT_MAX_QUEUES: cfg->max_queues = v; break;
    case OPT_MAX_INFLIGHT: cfg->max_inflight = v; break;
    case OPT_MAX_CONNECTIONS: cfg->max_connections = v; break;
    case OPT_RESULT_TTL: cfg->result_ttl_ms = v * 1000; break;
    case OPT_MAX_DB_SIZE: cfg->max_db_bytes = v; break;
    case OPT_RESULT_CACHE: cfg->result_cache = v; break;
    }
    return 0;
}

static int
config_add_listen(struct config *cfg, const char *arg, char *err, size_t errlen)
{
    struct addr a;
    const char *why;

    /* A relative socket path would depend on the directory forqd happens to start in. */
    if (addr_parse(arg, ADDR_PORT_ZERO, &a, &why) != 0 ||
        (a.kind == ADDR_UNIX && a.path[0] != '/' && (why = "the socket path must be absolute"))) {
        snprintf(err, errlen,
                 "--listen: expected tcp://HOST:PORT or unix:///absolute/path, got '%s' (%s)",
                 arg, why);
        return FORQ_ERR_INVALID;
    }
    if (cfg->nlisten == CONFIG_LISTEN_MAX) {
        snprintf(err, errlen, "--listen: at most %d addresses", CONFIG_LISTEN_MAX);
        return FORQ_ERR_INVALID;
    }
    if ((cfg->listen[cfg->nlisten] = strdup(arg)) == NULL)
        return FORQ_ERR_NOMEM;
    cfg->nlisten++;
    return 0;
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
    if (cfg->data_dir == NULL && (cfg->data_dir = strdup(CONFIG_DEFAULT_DATA)) == NULL)
        return FORQ_ERR_NOMEM;
    if (cfg->nlisten == 0 && (cfg->listen[0] = strdup(CONFIG_DEFAULT_LISTEN)) != NULL)
        cfg->nlisten = 1;
    return cfg->nlisten ? 0 : FORQ_ERR_NOMEM;
}

int
config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    int c, e, level;

    err[0] = '\0';
    /*
     * 0, not 1: glibc and musl then also forget their position inside the
     * previous argv (a cluster like "-hV" left half read), so a second parse
     * starts clean instead of reading stale or freed memory.
     */
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", config_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            cfg->show_help = 1;
            return 0;
        case 'V':
            cfg->show_version = 1;
            return 0;
        case OPT_LISTEN:
            if ((e = config_add_listen(cfg, optarg, err, errlen)) != 0)
                return e;
            break;
        case OPT_LOG_LEVEL:
            if ((level = log_level_parse(optarg)) < 0) {
                snprintf(err, errlen, "--log-level: expected err, warn, info or debug, got '%s'",
                         optarg);
                return FORQ_ERR_INVALID;
            }
            cfg->log_level = level;
            break;
        case OPT_DATA:
            if (optarg[0] == '\0') {
                snprintf(err, errlen, "--data: expected a directory, got ''");
                return FORQ_ERR_INVALID;
            }
            free(cfg->data_dir);
            if ((cfg->data_dir = strdup(optarg)) == NULL)
                return FORQ_ERR_NOMEM;
            break;
        case OPT_DURABILITY:
            if ((cfg->durability = store_durability_parse(optarg)) < 0) {
                snprintf(err, errlen, "--durability: expected full, normal or off, got '%s'",
                         optarg);
                return FORQ_ERR_INVALID;
            }
            break;
        case ':':
            snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
            return FORQ_ERR_INVALID;
        case '?':
            if (optopt != 0)
                snprintf(err, errlen, "unknown option '-%c' (see --help)", optopt);
            else
                snprintf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
            return FORQ_ERR_INVALID;
        default:
            if ((e = config_set_number(cfg, c, optarg, err, errlen)) != 0)
                return e;
            break;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return FORQ_ERR_INVALID;
    }
    return config_check(cfg, err, errlen);
}

void
config_usage(FILE *out)
{
    fprintf(out,
            "usage: forqd [options]\n"
            "\n"
            "  --listen ADDR          listen on tcp://HOST:PORT or unix:///path; repeatable\n"
            "                         (default " CONFIG_DEFAULT_LISTEN "; port 0 picks a free port)\n"
            "  --workers N            worker processes (default: number of CPUs)\n"
            "  --max-frame SIZE       largest frame body; must exceed --max-payload and\n"
            "                         --max-result by 1K (default 1088K)\n"
            "  --max-payload SIZE     largest job payload (default 1M)\n"
            "  --max-result SIZE      largest job result (default 1M)\n"
            "  --max-queued N         jobs queued per queue before queue_full (default 1000000)\n"
            "  --max-queues N         distinct queue names, at most 2048 (default 1024)\n"
            "  --max-inflight N       requests in flight per connection before forqd\n"
            "                         stops reading from it (default 4096)\n"
            "  --max-connections N    client connections at once (default 16384)\n"
            "  --result-ttl SECONDS   how long finished jobs stay retrievable (default 86400)\n"
            "  --data DIR             where the job store lives (default " CONFIG_DEFAULT_DATA ")\n"
            "  --durability MODE      full: a SUBMIT is acked once committed and fsynced\n"
            "                         (default); normal: once committed, which survives a\n"
            "                         killed forqd but not a power cut; off: memory only\n"
            "  --max-db-size SIZE     refuse new jobs (storage error) once the database\n"
            "                         would grow past SIZE (default 0: no limit)\n"
            "  --result-cache N       finished jobs kept in memory; older ones are read\n"
            "                         back from the store (default 100000)\n"
            "  --log-level LEVEL      err, warn, info or debug (default info)\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "SIZE takes an optional K, M or G suffix (powers of 1024).\n");
}
