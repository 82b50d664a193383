/* args.c — see args.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int
args_num(const char *tool, const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || *v < min || *v > max) {
        fprintf(stderr, "%s: %s: expected a number in %" PRIu64 "..%" PRIu64 "\n", tool, opt, min,
                max);
        return -1;
    }
    return 0;
}

int
args_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    size_t hlen;

    if (strncmp(s, "tcp://", 6) == 0)
        s += 6;
    if ((colon = strrchr(s, ':')) == NULL || colon[1] == '\0')
        return -1;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostlen || strlen(colon + 1) >= portlen)
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

const char *const args_mode_names[] = {"", "worker", "throughput", "latency"};

int
args_load_parse(const char *tool, int argc, char **argv, uint64_t jobs_max, uint64_t size_max,
                void (*usage)(FILE *fp), struct args_load *a)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"mode", required_argument, NULL, 'm'},
        {"jobs", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, has_jobs = 0, has_inflight = 0, has_size = 0;

    a->mode = ARGS_MODE_NONE;
    while ((ch = getopt_long(argc, argv, "s:m:n:k:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            a->addr = optarg;
            break;
        case 'm':
            for (a->mode = ARGS_MODE_LATENCY; a->mode > ARGS_MODE_NONE; a->mode--)
                if (strcmp(optarg, args_mode_names[a->mode]) == 0)
                    break;
            if (a->mode == ARGS_MODE_NONE) {
                fprintf(stderr, "%s: --mode: worker, throughput or latency\n", tool);
                return 2;
            }
            break;
        case 'n':
            if (args_num(tool, "--jobs", optarg, 1, jobs_max, &a->jobs) != 0)
                return 2;
            has_jobs = 1;
            break;
        case 'k':
            if (args_num(tool, "--inflight", optarg, 1, 1000000, &a->inflight) != 0)
                return 2;
            has_inflight = 1;
            break;
        case 'S':
            if (args_num(tool, "--size", optarg, 0, size_max, &a->size) != 0)
                return 2;
            has_size = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (a->mode == ARGS_MODE_NONE) {
        fprintf(stderr, "%s: --mode is required: worker, throughput or latency\n", tool);
        return 2;
    }
    if (a->mode == ARGS_MODE_WORKER && (has_jobs || has_inflight || has_size)) {
        fprintf(stderr, "%s: --jobs, --inflight and --size are for the producer modes, not "
                        "--mode worker\n", tool);
        return 2;
    }
    if (a->mode == ARGS_MODE_LATENCY && has_inflight) {
        fprintf(stderr, "%s: --inflight is for --mode throughput (latency runs one job at a "
                        "time)\n", tool);
        return 2;
    }
    if (!has_jobs)
        a->jobs = a->mode == ARGS_MODE_LATENCY ? 5000 : 100000;
    return -1;
}
