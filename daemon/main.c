/*
 * main.c — forqd's entry point: settings, logging, then the server. Nothing else.
 *
 * Exit status: 0 after a clean shutdown (or a good --check-config), 1 when
 * start-up or the loop failed, 2 for a bad command line or config file.
 */
#include <stdio.h>

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
    struct config cfg;
    char err[512];
    int r;

    config_init(&cfg);
    if (config_parse_args(&cfg, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "forqd: %s\n", err);
        config_fini(&cfg);
        return 2;
    }
    if (cfg.show_help || cfg.show_version || cfg.check_config) {
        r = 0;
        if (cfg.show_help)
            config_usage(stdout);
        else if (cfg.show_version)
            printf("forqd %s\n", FORQ_VERSION_STRING);
        else
            r = main_check_config(&cfg);
        config_fini(&cfg);
        return r;
    }
    log_init(cfg.log_level);
    if (server_new(&cfg, &srv) != 0) {
        config_fini(&cfg);
        return 1;
    }
    r = server_run(srv);
    server_free(srv);
    log_info("stopped");
    config_fini(&cfg);
    return r == 0 ? 0 : 1;
}
