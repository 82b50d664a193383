/*
 * worker.c — a worker process: waits on its slot's condition variable, runs
 * the job it finds there, writes the outcome into the slot and wakes the loop
 * through an eventfd. Runs only in forked children.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

/* Wait for a job or an exit request. Returns the state seen, with the lock released. */
static enum slot_state
worker_wait(struct slot *s, int *task, uint32_t *len)
{
    enum slot_state st;
    int died, e;

    if (slot_lock(s, &died) != 0 || died)
        _exit(1); /* the loop died holding the lock: nobody to work for */
    while (s->state != SLOT_ASSIGNED && s->state != SLOT_EXIT) {
        e = pthread_cond_wait(&s->cv, &s->mu);
        if (e == EOWNERDEAD || (e != 0 && e != EINTR))
            _exit(1);
    }
    st = (enum slot_state)s->state;
    if (st == SLOT_ASSIGNED) {
        s->state = SLOT_RUNNING;
        *task = s->task;
        *len = s->payload_len;
    }
    slot_unlock(s);
    return st;
}

void
worker_run(struct slot *s, int done_fd, pid_t parent, const struct task_table *tasks)
{
    struct forq_task_io io;
    struct rlimit rl;
    uint32_t len;
    int task, status, limited;

    worker_prepare(done_fd, parent);
    limited = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    log_debug("worker %d ready", (int)getpid());
    for (;;) {
        if (worker_wait(s, &task, &len) == SLOT_EXIT)
            _exit(0);
        io.payload = slot_payload(s);
        io.payload_len = len <= s->payload_cap ? len : s->payload_cap;
        io.result = slot_result(s);
        io.result_cap = s->result_cap;
        io.result_len = 0;
        io.errmsg = s->errmsg;
        io.errmsg_cap = sizeof(s->errmsg);
        io.job_id = s->job_id;
        status = task_run(tasks, task, &io);
        /* Under RLIMIT_AS, running out of memory means the job hit the worker's limit. */
        if (status == FORQ_ERR_NOMEM && limited)
            status = FORQ_ERR_MEMORY_LIMIT;
        s->status = status;
        s->result_len = status == 0 ? (uint32_t)io.result_len : 0;
        s->jobs_done++;
        if (slot_set_state(s, SLOT_DONE) != 0)
            _exit(1);
        if (eventfd_write(WORKER_DONE_FD, 1) != 0)
            _exit(1);
    }
}
