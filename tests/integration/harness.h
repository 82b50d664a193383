/*
 * harness.h — start a real forqd for a test, talk to it over real sockets,
 * and always clean up.
 *
 * harness_start runs the forqd built by this tree on tcp://127.0.0.1:0 and
 * unix://<tmpdir>/forq.sock with its store in <tmpdir>/data and no drain on
 * SIGTERM (--drain-timeout-ms=0; extra arguments come after and win), in a
 * fresh temp dir, waits for its "ready" log
 * line and learns the port the kernel picked from its "listening on" line.
 * If FORQ_TEST_ADDR is set, no forqd is started and that address is used (to
 * debug against a daemon running under gdb). FORQ_TEST_WRAPPER, a command
 * prefix split on spaces, goes in front of every forqd started here
 * (harness_run_forqd's too) and of test_echo_server's echo server, e.g.
 * valgrind with --log-file (./scripts/test.sh --valgrind). The wrapper's
 * process must be forqd's (valgrind's is: h->pid gets the signals), exit
 * with its status and write nothing to stderr (forqd's log).
 *
 * The waits below have generous guards (tens of seconds) so that a broken
 * daemon fails the test instead of hanging it; they are never used to assert
 * speed.
 */
#ifndef FORQ_HARNESS_H
#define FORQ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "forq.h"
#include "msg.h"

#define HARNESS_GUARD_MS 30000

/* CLOCK_MONOTONIC in ms (for guards: never for asserting speed); a sleep. */
int64_t harness_now_ms(void);
void harness_sleep_ms(int ms);

struct harness {
    pid_t pid;           /* 0 when FORQ_TEST_ADDR is used */
    char dir[256];       /* temp dir, removed by harness_stop */
    char log[300];       /* forqd's stderr */
    char addr[128];      /* tcp://127.0.0.1:PORT */
    char unix_addr[300]; /* unix://DIR/forq.sock */
    int port;
};

/*
 * Start forqd with the default test listeners plus the extra arguments
 * (NULL-terminated, may be NULL). Returns 0, or -1 after printing why.
 */
int harness_start(struct harness *h, const char *const *extra);

/*
 * Make a fresh temp dir and start forqd there with the default test
 * arguments plus extra, through wrapper (argv of a program that runs forqd,
 * e.g. {"systemd-socket-activate", "-l", PATH, NULL}; or NULL), and return
 * at once: h->dir, h->log and h->pid are set. harness_wait_ready waits for
 * it. 0 or -1.
 */
int harness_spawn_wrapped(struct harness *h, const char *const *wrapper, const char *const *extra);

/* Wait for forqd's "ready" log line and learn its TCP port. 0 or -1 (forqd stopped). */
int harness_wait_ready(struct harness *h);

/*
 * Send forqd sig (e.g. SIGKILL) and reap it; the temp dir and its data stay.
 * Returns the wait status, or -1.
 */
int harness_kill(struct harness *h, int sig);

/*
 * Start forqd again on the same temp dir, hence the same data (after
 * harness_kill). It listens on a new port: h->addr changes. 0 or -1.
 */
int harness_restart(struct harness *h, const char *const *extra);

/* SIGTERM forqd and wait for it; the temp dir stays. Returns its exit status (or -1). */
int harness_stop_keep(struct harness *h);

/* SIGTERM forqd, wait for it, remove the temp dir. Returns its exit status (or -1). */
int harness_stop(struct harness *h);

/*
 * Append the words of FORQ_TEST_WRAPPER (split on spaces) to argv[n..max)
 * and return the new count, for a test that starts a program of this tree
 * itself (argv[0] is then looked up in PATH). The words live in a static
 * buffer until the next call: exec before that.
 */
int harness_wrap(const char **argv, int n, int max);

/* Run forqd with these arguments only; capture stdout + stderr and the exit status. */
int harness_run_forqd(const char *const *args, char *out, size_t outlen);

/* Run the forq CLI with these arguments; capture stdout and the exit status. */
int harness_run_cli(const char *const *args, const char *stdin_data, char *out, size_t outlen);

/* The log so far (NUL-terminated, truncated to len). */
void harness_read_log(const struct harness *h, char *buf, size_t len);
/* How often text occurs in the log so far (its first 64 KiB). */
int harness_log_count(const struct harness *h, const char *text);

/* Write text to path (a config file); fails the test if it cannot. */
void harness_write_file(const char *path, const char *text);
/*
 * SIGHUP forqd and wait until its log shows the nth reload outcome since it
 * started ("reloaded the configuration" or "keeping the running
 * configuration"): the new settings are in effect, or were refused. Fails
 * the test after the guard time.
 */
void harness_reload(struct harness *h, int nth);
/* Wait (up to the guard) for the nth reload outcome, without sending SIGHUP. */
void harness_reload_wait(const struct harness *h, int nth);

/*
 * The usual test group: a forqd started with extra args and one libforq
 * client connected to it. Use from cmocka group setup and teardown; the
 * teardown asserts that forqd exited cleanly (status 0) on SIGTERM.
 */
struct harness_fixture {
    struct harness h;
    forq_client *c;
};

int harness_fixture_setup(void **state, const char *const *extra);
int harness_fixture_teardown(void **state);

/* ------------------------------------------------------------------ raw sockets */

/* Connect a plain socket to the daemon's TCP port. Returns the fd or -1. */
int harness_connect(const struct harness *h);
/* Send all bytes. 0 or -1. */
int harness_send(int fd, const void *data, size_t len);
/* Encode and send one request frame. 0 or -1. */
int harness_send_request(int fd, const struct msg_request *req);
/*
 * Read one whole frame body (malloc'd into *body). Returns 0, 1 on a clean
 * EOF before any byte, -1 on error or after the guard time.
 */
int harness_recv_frame(int fd, uint8_t **body, size_t *len);
/*
 * Send req and read the reply into resp, decoded for req's op with d. The
 * body stays valid in *buf (free it). Returns 0 or -1.
 */
int harness_call(int fd, struct msg_decoder *d, const struct msg_request *req,
                 struct msg_response *resp, uint8_t **buf);
/* 1 when the peer has closed the connection (after draining what it sent). */
int harness_wait_closed(int fd);

/* ------------------------------------------------------------------ jobs via libforq */

/* STATS' figures of one queue into *out (may be NULL). 1: found, 0: no such queue. */
int harness_queue_find(forq_client *c, const char *queue, struct forq_queue_stats *out);

/* Worker pids as reported by STATS, in slot order. Returns the count or -1. */
int harness_worker_pids(forq_client *c, pid_t *pids, int max);
/*
 * Poll STATUS until the job is running, then wait until its worker is really
 * inside the `sleep` task (see harness_wait_sleeping); returns the worker pid
 * or -1. Only for jobs of the built-in sleep task.
 */
pid_t harness_wait_running(forq_client *c, uint64_t id);

/*
 * Wait until process pid is blocked in nanosleep/clock_nanosleep, read from
 * /proc/PID/syscall. forqd reports a job `running` once it is in a worker's
 * slot, a moment before the worker picks it up; a worker killed in that
 * moment has its job requeued (it never ran), so tests that kill a worker to
 * fail its job must first know the task has started. 0, or -1 after the guard.
 */
int harness_wait_sleeping(pid_t pid);

#endif /* FORQ_HARNESS_H */
