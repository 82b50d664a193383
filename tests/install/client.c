/*
 * client.c — the smallest libforq program: connect to the forqd at argv[1],
 * submit an "echo" job with the payload "hello", wait for the result and
 * print it. tests/install/install_test.sh builds it against an installed
 * forq only (pkg-config, pkg-config --static, CMake's find_package), so it
 * uses nothing but <forq.h>.
 */
#include <stdio.h>

#include <forq.h>

int
main(int argc, char **argv)
{
    forq_client *c = NULL;
    forq_future *f = NULL;
    const void *out;
    size_t len;
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: %s ADDR\n", argv[0]);
        return 2;
    }
    if ((r = forq_connect(argv[1], &c)) != 0 ||
        (r = forq_submit(c, "echo", "hello", 5, NULL, &f)) != 0 ||
        (r = forq_future_result(f, 10000, &out, &len)) != 0)
        fprintf(stderr, "client: %s: %s\n", forq_errname(r), forq_errmsg());
    else
        printf("%.*s\n", (int)len, (const char *)out);
    forq_future_free(f);
    forq_client_free(c);
    return r == 0 && fflush(stdout) == 0 ? 0 : 1;
}
