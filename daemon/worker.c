/*
 * worker.c — a worker process: waits on its slot's condition variable, runs
 * the batch of jobs it finds there (including any the loop appends while it
 * runs), writes each outcome into the slot and wakes the loop through an
 * eventfd when it is through the batch. Runs only in forked children.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "forq.h"
#include "log.h"
#include "worker.h"

#define WORKER_DONE_FD 3 /* where done_fd ends up in the child */

/* Leave only stdin (/dev/null), stdout, stderr and the eventfd open. */
static void
worker_prepare(int done_fd, pid_t parent)
{
    static const int sigs[] = {SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2};
    struct sigaction sa = {0};
    sigset_t all;
    int fd;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    /* A terminal's Ctrl-C reaches the whole process group; the loop decides. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    if (done_fd != WORKER_DONE_FD && dup2(done_fd, WORKER_DONE_FD) < 0)
        _exit(1);
    if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
    close_range(WORKER_DONE_FD + 1, ~0U, 0);
}

/* Lock the slot; a loop that died holding the lock leaves nobody to work for. */
static void
worker_lock(struct slot *s)
{
    int died;

    if (slot_lock(s, &died) != 0 || died)
        _exit(1);
}

/* Wait, locked, for a batch or an exit request; exit on the latter. */
static void
worker_wait(struct slot *s)
{
    int e;

    worker_lock(s);
    while (s->state != SLOT_ASSIGNED && s->state != SLOT_EXIT) {
        e = pthread_cond_wait(&s->cv, &s->mu);
        if (e == EOWNERDEAD || (e != 0 && e != EINTR))
            _exit(1);
    }
    if (s->state == SLOT_EXIT)
        _exit(0);
    s->state = SLOT_RUNNING;
}

static uint64_t
worker_now_us(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Run job j (unlocked: the worker owns its outcome), its result at *used.
 * *last_start is the previous job's start: two jobs of a batch may start in
 * the same microsecond, and the later one is then stamped one later, so that
 * start times keep the order the jobs started in.
 */
static void
worker_run_job(struct slot *s, struct slot_job *j, const struct task_table *tasks, int limited,
               uint32_t *used, uint64_t *last_start)
{
    struct forq_task_io io;
    uint64_t t0 = worker_now_us(CLOCK_MONOTONIC), wall = worker_now_us(CLOCK_REALTIME);
    int status;
    uint32_t off = j->payload_off, len = j->payload_len;

    if (off > s->payload_cap || len > s->payload_cap - off)
        off = len = 0; /* a header the loop cannot have written */
    io.payload = slot_payload(s) + off;
    io.payload_len = len;
    io.result = slot_result(s) + *used;
    io.result_cap = s->result_cap; /* the batch stops before less than this is left */
    io.result_len = 0;
    io.errmsg = j->errmsg;
    io.errmsg_cap = sizeof(j->errmsg);
    io.job_id = j->job_id;
    j->errmsg[0] = '\0';
    status = task_run(tasks, j->task, &io);
    /* Under RLIMIT_AS, running out of memory means the job hit the worker's limit. */
    if (status == FORQ_ERR_NOMEM && limited)
        status = FORQ_ERR_MEMORY_LIMIT;
    j->status = status;
    j->result_off = *used;
    j->result_len = status == 0 && io.result_len <= s->result_cap ? (uint32_t)io.result_len : 0;
    t0 = worker_now_us(CLOCK_MONOTONIC) - t0;
    j->run_us = t0 < UINT32_MAX ? (uint32_t)t0 : UINT32_MAX; /* 71 minutes and more: long */
    /* (A clock set back by more than a moment is taken as it is.) */
    j->started_us = *last_start =
        wall > *last_start || *last_start - wall > 1000 ? wall : *last_start + 1;
    *used += (j->result_len + 7) & ~7U;
}

void
worker_run(struct slot *s, int done_fd, pid_t parent, const struct task_table *tasks)
{
    struct rlimit rl;
    uint64_t last_start = 0;
    uint32_t used, i;
    int limited, skip;

    worker_prepare(done_fd, parent);
    limited = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    log_debug("worker %d ready", (int)getpid());
    for (;;) {
        worker_wait(s);
        /* Locked from here to each job's start and again after it. */
        used = 0;
        while (s->next < s->n && s->n <= SLOT_BATCH_MAX && used <= s->result_cap) {
            i = s->next++;
            skip = s->jobs[i].skip != 0;
            slot_unlock(s);
            if (skip) {
                s->jobs[i].status = FORQ_ERR_CANCELLED;
                s->jobs[i].result_len = s->jobs[i].run_us = 0;
                s->jobs[i].started_us = 0;
            } else {
                worker_run_job(s, &s->jobs[i], tasks, limited, &used, &last_start);
            }
            worker_lock(s);
            s->done = i + 1;
            s->jobs_done += !skip;
        }
        s->state = SLOT_DONE;
        slot_unlock(s);
        if (eventfd_write(WORKER_DONE_FD, 1) != 0)
            _exit(1);
    }
}
