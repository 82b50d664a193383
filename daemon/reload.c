/*
 * reload.c — SIGHUP's reload: parse, keep the restart-only settings, apply
 * the rest, swap the server's config.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "forq.h"
#include "jobs.h"
#include "log.h"
#include "reload.h"
#include "server.h"

/* Swap a restart-only setting back to its running value, saying so if it changed. */
#define RELOAD_KEEP(name, field)                                                                   \
    do {                                                                                           \
        if (next->field != cur->field) {                                                           \
            log_warn("reload: %s changed; it takes effect at the next start", name);               \
            next->field = cur->field;                                                              \
        }                                                                                          \
    } while (0)

static int
reload_str_equal(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
reload_warn_str(const char *name, const char *cur, const char *next)
{
    if (!reload_str_equal(cur, next))
        log_warn("reload: %s changed; it takes effect at the next start", name);
}

/* Swap owned string fields so that next carries cur's value (and cur frees next's). */
static void
reload_swap_str(char **cur, char **next)
{
    char *t = *cur;

    *cur = *next;
    *next = t;
}

static int
reload_listen_equal(const struct config *a, const struct config *b)
{
    if (a->nlisten != b->nlisten)
        return 0;
    for (size_t i = 0; i < a->nlisten; i++)
        if (strcmp(a->listen[i], b->listen[i]) != 0)
            return 0;
    return 1;
}

/*
 * Settings the running daemon cannot change (sockets, the store, the size
 * of the workers' shared slots): next gets the running values back, so that
 * srv->cfg always describes what is in effect. The numbers are copied now;
 * the strings move by reload_keep_strings, once the reload is sure to be
 * applied (cur must stay whole if it is not).
 */
static void
reload_keep_restart_only(const struct config *cur, struct config *next)
{
    if (!reload_listen_equal(cur, next))
        log_warn("reload: listen changed; it takes effect at the next start");
    reload_warn_str("data", cur->data_dir, next->data_dir);
    reload_warn_str("metrics_listen", cur->metrics_listen, next->metrics_listen);
    RELOAD_KEEP("workers", workers);
    RELOAD_KEEP("durability", durability);
    RELOAD_KEEP("max_db_size", max_db_bytes);
    RELOAD_KEEP("max_frame", max_frame);
    RELOAD_KEEP("max_payload", max_payload);
    RELOAD_KEEP("max_result", max_result);
}

/* next takes cur's restart-only strings (and cur, about to be freed, next's). */
static void
reload_keep_strings(struct config *cur, struct config *next)
{
    char *t[CONFIG_LISTEN_MAX];
    size_t n = cur->nlisten;

    memcpy(t, cur->listen, sizeof(t));
    memcpy(cur->listen, next->listen, sizeof(t));
    memcpy(next->listen, t, sizeof(t));
    cur->nlisten = next->nlisten;
    next->nlisten = n;
    reload_swap_str(&cur->data_dir, &next->data_dir);
    reload_swap_str(&cur->metrics_listen, &next->metrics_listen);
}

int
reload_run(struct server *srv)
{
    struct config *next = malloc(sizeof(*next)), *old = srv->cfg;
    struct jobs_config jc;
    char why[512];
    int e;

    if (next == NULL) {
        log_err("reload: out of memory; keeping the running configuration");
        return FORQ_ERR_NOMEM;
    }
    config_init(next);
    if ((e = config_parse_args(next, srv->argc, srv->argv, why, sizeof(why))) != 0) {
        log_err("reload: %s; keeping the running configuration", why);
        goto fail;
    }
    reload_keep_restart_only(old, next);
    jobs_config_from(next, &jc);
    if ((e = jobs_reconfigure(srv->jobs, &jc, why, sizeof(why))) != 0) {
        log_err("reload: %s; keeping the running configuration", why);
        goto fail;
    }
    reload_keep_strings(old, next);
    log_set_level(next->log_level);
    srv->cfg = next; /* the jobs borrow from next now; old is nobody's */
    config_fini(old);
    free(old);
    log_info("reloaded the configuration (%s)",
             next->config_file != NULL ? next->config_file : "no config file; flags only");
    return 0;
fail:
    config_fini(next);
    free(next);
    return e;
}
