/*
 * main.c — forqd's entry point: flags, logging, then the server. Nothing else.
 *
 * Exit status: 0 after a clean shutdown, 1 when start-up or the loop failed,
 * 2 for a bad command line.
 */
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "server.h"

int
main(int argc, char **argv)
{
    struct server *srv = NULL;
    struct config cfg;
    char err[256];
    int r;

    config_init(&cfg);
    if (config_parse_args(&cfg, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "forqd: %s\n", err);
        config_fini(&cfg);
        return 2;
    }
    if (cfg.show_help || cfg.show_version) {
        if (cfg.show_help)
            config_usage(stdout);
        else
            printf("forqd %s\n", FORQ_VERSION_STRING);
        config_fini(&cfg);
        return 0;
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
