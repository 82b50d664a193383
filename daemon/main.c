/*
 * main.c — forqd's entry point: settings, logging, then the server. Nothing else.
 *
 * Exit status: 0 after a clean shutdown (or a good --check-config), 1 when
 * start-up or the loop failed, 2 for a bad command line or config file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "task.h"

/* --check-config: build the task table as start-up would, then print the settings. */
static int
main_check_config(const struct config *cfg)
{
    static struct task_table table; /* large: TASK_MAX entries */
    char why[512];

    int r;

    r = task_table_build(&table, cfg, why, sizeof(why));
    task_table_fini(&table);
    if (r != 0) {
        fprintf(stderr, "forqd: %s\n", why);
        return 2;
    }
    config_print(cfg, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct server *srv = NULL;
    struct config *cfg = malloc(sizeof(*cfg));
    char err[512];
    int r;

    if (cfg == NULL) {
        fprintf(stderr, "forqd: out of memory\n");
        return 1;
    }
    config_init(cfg);
    if (config_parse_args(cfg, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "forqd: %s\n", err);
        r = 2;
        goto out;
    }
    if (cfg->show_help || cfg->show_version || cfg->check_config) {
        r = 0;
        if (cfg->show_help)
            config_usage(stdout);
        else if (cfg->show_version)
            printf("forqd %s\n", FORQ_VERSION_STRING);
        else
            r = main_check_config(cfg);
        goto out;
    }
    log_init(cfg->log_level);
    /* The server owns cfg from here on, and argv for SIGHUP. */
    if (server_new(cfg, argc, argv, &srv) != 0)
        return 1;
    r = server_run(srv);
    server_free(srv);
    log_info("stopped");
    return r == 0 ? 0 : 1;
out:
    config_fini(cfg);
    free(cfg);
    return r;
}
