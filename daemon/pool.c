/*
 * pool.c — forks workers, hands jobs to their slots, harvests outcomes and
 * replaces dead workers. Runs on the loop thread; the children run worker.c.
 *
 * A worker's death is seen through its pidfd. Where pidfd_open does not
 * exist (kernels before 5.3, and valgrind before 3.20, which fails the call
 * with ENOSYS: ./scripts/test.sh --valgrind runs forqd under Debian 12's
 * 3.19), SIGCHLD on the loop stands in for every worker's pidfd.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "forq.h"
#include "log.h"
#include "pool.h"
#include "slot.h"
#include "worker.h"

#define POOL_QUICK_DEATH_US   1000000 /* a worker dying sooner than this ... */
#define POOL_RESPAWN_BASE_MS  100     /* ... is replaced after a growing delay */
#define POOL_RESPAWN_MAX_MS   10000
#define POOL_STOP_GRACE_MS    2000    /* how long pool_free waits before SIGKILL */

/* A job in a worker's batch, as the loop knows it (the slot is the worker's to scribble on). */
struct pool_entry {
    void *cookie;
    uint64_t job_id;
    int task;
    int skip; /* cancelled before it started: the worker passes it over */
};

/* How long a task's jobs run, for deciding whether they may be appended to a batch. */
struct pool_task_stat {
    uint32_t runs; /* 0: never seen run */
    uint32_t avg_us; /* moving average, 1/8 weight to each new run */
};

struct pool_worker {
    struct pool *pool;
    unsigned idx;
    struct slot *slot; /* MAP_SHARED, survives the worker */
    size_t map_len;
    int done_fd;       /* eventfd: worker -> loop "a job is done" */
    struct event *done_ev;

    pid_t pid;             /* 0 when no process is running */
    int pidfd;             /* -1 when pid == 0, or without pidfds (pool.chld_ev) */
    struct event *exit_ev; /* on pidfd; NULL when pidfd is -1 */
    struct event *respawn_ev;
    uint64_t spawned_us;
    uint64_t jobs_at_spawn; /* jobs_done when this process started */
    unsigned quick_deaths;  /* consecutive deaths soon after spawning, with no job done */

    int busy;          /* a batch is in the slot and not harvested */
    struct pool_entry ents[SLOT_BATCH_MAX]; /* the batch: ents[i] is slot->jobs[i] */
    unsigned nent;
    uint32_t payload_used; /* bytes of the payload area the batch takes */
    int sealed;        /* nothing may be appended: its first job is not known to be quick,
                          or has a timeout */
    struct event *deadline_ev; /* that job's timeout */
    int killing;       /* enum pool_lost_reason: the pool killed it; 0 = no */
    int retiring;      /* asked to exit (max_jobs_per_worker, or replaced by a reload) */
    int retire_next;   /* retire after the job it runs (pool_retire_all) */
    uint64_t jobs_done, restarts;
};

struct pool {
    struct event_base *base;
    struct pool_config cfg;
    const struct task_table *tasks;
    const struct pool_ops *ops;
    void *arg;
    struct pool_worker *workers;
    unsigned *idle; /* stack of idle worker indexes; LIFO keeps warm workers busy */
    unsigned nidle;
    int stopping;
    struct event *chld_ev; /* SIGCHLD, only where pidfd_open is missing */
    struct pool_task_stat *stats; /* by task index, grown as tasks are seen */
    size_t nstats;
};

static int pool_spawn(struct pool_worker *w);

/* Monotonic µs: worker ages must not jump with the wall clock. */
static uint64_t
pool_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
pool_idle_push(struct pool *p, struct pool_worker *w)
{
    p->idle[p->nidle++] = w->idx;
}

static void
pool_idle_drop(struct pool *p, struct pool_worker *w)
{
    for (unsigned i = 0; i < p->nidle; i++) {
        if (p->idle[i] == w->idx) {
            p->idle[i] = p->idle[--p->nidle];
            return;
        }
    }
}

/* Ask an idle worker to exit; pool_exit_cb forks its successor at once. */
static void
pool_retire(struct pool_worker *w)
{
    w->retiring = 1;
    w->retire_next = 0;
    if (slot_set_state(w->slot, SLOT_EXIT) != 0)
        kill(w->pid, SIGKILL);
}

/* Fold one run of task into its average (loop side; allocation failure only forgets). */
static void
pool_observe(struct pool *p, int task, uint32_t run_us)
{
    struct pool_task_stat *st;

    if (task < 0)
        return;
    if ((size_t)task >= p->nstats) {
        size_t n = (size_t)task + 8;

        if ((st = realloc(p->stats, n * sizeof(*st))) == NULL)
            return;
        memset(st + p->nstats, 0, (n - p->nstats) * sizeof(*st));
        p->stats = st;
        p->nstats = n;
    }
    st = &p->stats[task];
    if (st->runs++ == 0)
        st->avg_us = run_us;
    else
        st->avg_us = (uint32_t)(((uint64_t)st->avg_us * 7 + run_us) / 8);
}

/* 1 when task's jobs have been quick enough to wait behind each other in a batch. */
static int
pool_task_quick(const struct pool *p, int task)
{
    return task >= 0 && (size_t)task < p->nstats && p->stats[task].runs > 0 &&
           p->stats[task].avg_us <= p->cfg.batch_quick_us;
}

/*
 * The job busy worker w took last and has not finished, as the slot's
 * counters c say; the last of its batch when it is through all of them.
 */
static uint64_t
pool_current_job(const struct pool_worker *w, const struct slot_counts *c)
{
    return w->ents[c->done < w->nent ? c->done : w->nent - 1].job_id;
}

/*
 * Take the batch out of worker w and report every job in it, as the slot's
 * counters c say: an outcome for each of the first c->done (a job cancelled
 * before it started comes back lost, not started, POOL_LOST_KILLED), lost and
 * started for the one it was running, lost and not started for the rest.
 * reason and why are for the lost ones. The worker's bookkeeping is cleared
 * before the first callback, which may hand out jobs (not to w: it is neither
 * idle nor busy until the caller says so). Results point into the slot, which
 * nobody writes meanwhile.
 */
static void
pool_settle(struct pool_worker *w, const struct slot_counts *c, int reason, const char *why)
{
    struct pool *p = w->pool;
    struct slot *s = w->slot;
    struct pool_entry ents[SLOT_BATCH_MAX];
    unsigned n = w->nent, done = c->done < n ? c->done : n, next = c->next < n ? c->next : n;
    size_t area = 2 * (size_t)s->result_cap;

    memcpy(ents, w->ents, n * sizeof(ents[0]));
    event_del(w->deadline_ev);
    w->busy = 0;
    w->nent = 0;
    w->payload_used = 0;
    w->sealed = 0;
    for (unsigned i = 0; i < n; i++) {
        struct slot_job *j = &s->jobs[i];

        if (ents[i].skip) { /* the worker passes it over, or has */
            p->ops->lost(p->arg, ents[i].cookie, 0, POOL_LOST_KILLED,
                         "cancelled before it started");
        } else if (i < done) {
            /* The worker wrote these; a task may have scribbled on them: clamp. */
            size_t off = j->result_off <= area ? j->result_off : area;
            size_t len = j->result_len;

            if (len > s->result_cap || len > area - off)
                len = 0;
            j->errmsg[sizeof(j->errmsg) - 1] = '\0';
            w->jobs_done++;
            pool_observe(p, ents[i].task, j->run_us);
            p->ops->done(p->arg, ents[i].cookie, j->status, slot_result(s) + off, len, j->errmsg,
                         j->started_us);
        } else {
            p->ops->lost(p->arg, ents[i].cookie, i < next, reason, why);
        }
    }
}

/*
 * Take the outcomes of a worker whose slot says DONE, then give it the next
 * batch: idle again, or told to exit when it has done its share of jobs.
 */
static void
pool_finish(struct pool_worker *w, const struct slot_counts *c)
{
    struct pool *p = w->pool;

    /* Jobs it did not take (no result room left) go back; they never ran. */
    pool_settle(w, c, POOL_LOST_RETURNED, "handed back before it started");
    if (w->retire_next || (p->cfg.max_jobs_per_worker > 0 &&
                           w->jobs_done - w->jobs_at_spawn >= p->cfg.max_jobs_per_worker)) {
        pool_retire(w);
        return;
    }
    if (slot_set_state(w->slot, SLOT_IDLE) != 0)
        return;
    pool_idle_push(p, w);
    p->ops->idle(p->arg);
}

static void
pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool_worker *w = arg;
    struct slot_counts c;
    eventfd_t n;

    (void)what;
    if (eventfd_read(fd, &n) != 0 || !w->busy || w->pid == 0 || w->killing)
        return;
    if (slot_get_counts(w->slot, &c) != 0 || c.state != SLOT_DONE)
        return; /* a dead worker: the pidfd callback deals with it */
    pool_finish(w, &c);
}

/* Kill worker w and everything in its process group (an exec task's command). */
static void
pool_kill_worker(struct pool_worker *w, int reason)
{
    w->killing = reason;
    event_del(w->deadline_ev);
    kill(-w->pid, SIGKILL);
    kill(w->pid, SIGKILL); /* in case it left its group */
}

static void
pool_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool_worker *w = arg;
    struct slot_counts c;

    (void)fd;
    (void)what;
    if (!w->busy || w->pid == 0 || w->killing)
        return;
    /* It may have finished just now, its eventfd not read yet: then it made it. */
    if (slot_get_counts(w->slot, &c) == 0 && c.state == SLOT_DONE) {
        pool_finish(w, &c);
        return;
    }
    /* A job with a timeout is the only one in its batch (the batch is sealed). */
    log_info("job %llu ran past its timeout; killing worker %d",
             (unsigned long long)w->ents[0].job_id, (int)w->pid);
    pool_kill_worker(w, POOL_LOST_TIMEOUT);
}

/* Describe how a process ended, e.g. "killed by signal 9 (Killed)". */
static void
pool_describe_exit(pid_t pid, char *buf, size_t len)
{
    int status;

    if (waitpid(pid, &status, WNOHANG) != pid)
        snprintf(buf, len, "exited (status unknown)");
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, len, "stopped unexpectedly");
}

static void
pool_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool_worker *w = arg;

    (void)fd;
    (void)what;
    if (w->pool->stopping || w->pid != 0)
        return;
    if (pool_spawn(w) != 0) {
        struct timeval tv = {1, 0};

        log_err("cannot replace worker %u: %s; retrying in 1 s", w->idx, strerror(errno));
        evtimer_add(w->respawn_ev, &tv);
        return;
    }
    w->pool->ops->idle(w->pool->arg);
}

/* Schedule a replacement: at once, or later when workers keep dying young. */
static void
pool_schedule_respawn(struct pool_worker *w, int died_young)
{
    struct timeval tv = {0, 0};
    unsigned ms;

    w->quick_deaths = died_young ? w->quick_deaths + 1 : 0;
    if (w->quick_deaths > 0) {
        ms = POOL_RESPAWN_BASE_MS << (w->quick_deaths < 8 ? w->quick_deaths - 1 : 7);
        if (ms > POOL_RESPAWN_MAX_MS)
            ms = POOL_RESPAWN_MAX_MS;
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        log_warn("worker slot %u keeps dying right after start; next try in %u ms", w->idx, ms);
    }
    evtimer_add(w->respawn_ev, &tv);
}

static void
pool_exit_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool_worker *w = arg;
    struct pool *p = w->pool;
    pid_t pid = w->pid;
    char why[128];
    int died_young;

    (void)fd;
    (void)what;
    /*
     * Whatever it started is gone with it: clean up its group (an exec task's
     * command) while the dead worker is not reaped yet, so its pid, hence the
     * group id, cannot have been reused.
     */
    kill(-pid, SIGKILL);
    pool_describe_exit(pid, why, sizeof(why));
    if (w->exit_ev != NULL)
        event_free(w->exit_ev);
    w->exit_ev = NULL;
    if (w->pidfd >= 0)
        close(w->pidfd);
    w->pidfd = -1;
    w->pid = 0;
    w->restarts++;
    died_young = pool_now_us() - w->spawned_us < POOL_QUICK_DEATH_US &&
                 w->jobs_done == w->jobs_at_spawn;
    pool_idle_drop(p, w);
    event_del(w->deadline_ev);

    if (w->busy) {
        struct slot_counts c = {0};
        int reason = w->killing;

        /* The owner may have died holding the lock: the counters are read all the same. */
        (void)slot_get_counts(w->slot, &c);
        if (c.state == SLOT_DONE && !w->killing) {
            pool_settle(w, &c, POOL_LOST_RETURNED, "handed back before it started");
        } else {
            /* A job killed it, not its start-up; unless it never even took one. */
            if (c.next > 0 || reason != POOL_LOST_DIED)
                died_young = 0;
            if (reason == POOL_LOST_DIED)
                log_warn("worker %d (slot %u) %s %s job %llu; replacing it", (int)pid, w->idx,
                         why, c.next > c.done ? "while running" : "before it started",
                         (unsigned long long)pool_current_job(w, &c));
            pool_settle(w, &c, reason, why);
        }
    } else if (w->retiring) {
        died_young = 0;
        log_debug("worker %d (slot %u) retired after %llu jobs", (int)pid, w->idx,
                  (unsigned long long)(w->jobs_done - w->jobs_at_spawn));
    } else if (!p->stopping) {
        log_warn("worker %d (slot %u) %s while idle; replacing it", (int)pid, w->idx, why);
    }
    w->killing = 0;
    w->retiring = 0;
    w->retire_next = 0;
    /* The dead process may have left the mutex, the condition or a count behind. */
    (void)slot_init(w->slot, p->cfg.payload_cap, p->cfg.result_cap);
    {
        eventfd_t n;

        (void)eventfd_read(w->done_fd, &n);
    }
    if (!p->stopping)
        pool_schedule_respawn(w, died_young);
}

/* 1 when process pid has exited; it stays a zombie (WNOWAIT) for pool_exit_cb to reap. */
static int
pool_has_exited(pid_t pid)
{
    siginfo_t si = {0};

    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Without pidfds: a child changed state; find the workers that exited. */
static void
pool_chld_cb(evutil_socket_t sig, short what, void *arg)
{
    struct pool *p = arg;

    (void)sig;
    (void)what;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        struct pool_worker *w = &p->workers[i];

        if (w->pid != 0 && w->pidfd < 0 && pool_has_exited(w->pid))
            pool_exit_cb(-1, EV_READ, w);
    }
}

/*
 * Before the first fork: probe pidfd_open on ourselves. Where it is missing,
 * watch SIGCHLD instead, from now on, so no worker's death goes unseen (one
 * that dies before pool_spawn has set w->pid is found when the loop runs the
 * callback, after pool_spawn has returned). 0 or FORQ_ERR_SYSTEM / FORQ_ERR_NOMEM.
 */
static int
pool_watch_init(struct pool *p)
{
    int fd = pidfd_open(getpid(), 0);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOSYS)
        return FORQ_ERR_SYSTEM;
    log_info("no pidfd_open (ENOSYS): watching the workers through SIGCHLD");
    if ((p->chld_ev = evsignal_new(p->base, SIGCHLD, pool_chld_cb, p)) == NULL ||
        event_add(p->chld_ev, NULL) != 0)
        return FORQ_ERR_NOMEM;
    return 0;
}

/* Fork a worker for slot w. Returns 0 or FORQ_ERR_SYSTEM (errno set). */
static int
pool_spawn(struct pool_worker *w)
{
    struct pool *p = w->pool;
    pid_t parent = getpid(), pid;
    int pidfd, saved;

    if ((pid = fork()) < 0)
        return FORQ_ERR_SYSTEM;
    if (pid == 0) {
        /* Its own process group: one kill(-pid) stops it and any command it runs. */
        (void)setpgid(0, 0);
        /* A task is not forqd: it must not speak for it to systemd. */
        (void)unsetenv("NOTIFY_SOCKET");
        (void)unsetenv("WATCHDOG_USEC");
        (void)unsetenv("WATCHDOG_PID");
        /* A task must not be able to scribble on its siblings' slots. */
        for (unsigned i = 0; i < p->cfg.workers; i++)
            if (i != w->idx)
                munmap(p->workers[i].slot, p->workers[i].map_len);
        if (p->cfg.memory_limit > 0) {
            struct rlimit rl = {p->cfg.memory_limit, p->cfg.memory_limit};

            if (setrlimit(RLIMIT_AS, &rl) != 0)
                _exit(1);
        }
        worker_run(w->slot, w->done_fd, parent, p->tasks);
    }
    (void)setpgid(pid, pid); /* both sides: whichever runs first, the group exists */
    pidfd = -1;
    if (p->chld_ev == NULL &&
        ((pidfd = pidfd_open(pid, 0)) < 0 ||
         (w->exit_ev = event_new(p->base, pidfd, EV_READ, pool_exit_cb, w)) == NULL ||
         event_add(w->exit_ev, NULL) != 0)) {
        saved = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (w->exit_ev != NULL)
            event_free(w->exit_ev);
        w->exit_ev = NULL;
        if (pidfd >= 0)
            close(pidfd);
        errno = saved;
        return FORQ_ERR_SYSTEM;
    }
    w->pid = pid;
    w->pidfd = pidfd;
    w->spawned_us = pool_now_us();
    w->jobs_at_spawn = w->jobs_done;
    pool_idle_push(p, w);
    log_debug("worker %d started in slot %u", (int)pid, w->idx);
    return 0;
}

/* Map the slot and create the eventfd and events of worker i. */
static int
pool_worker_init(struct pool *p, unsigned i)
{
    struct pool_worker *w = &p->workers[i];
    void *m;

    w->pool = p;
    w->idx = i;
    w->map_len = slot_size(p->cfg.payload_cap, p->cfg.result_cap);
    m = mmap(NULL, w->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return FORQ_ERR_SYSTEM;
    w->slot = m;
    if (slot_init(w->slot, p->cfg.payload_cap, p->cfg.result_cap) != 0 ||
        (w->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FORQ_ERR_SYSTEM;
    w->done_ev = event_new(p->base, w->done_fd, EV_READ | EV_PERSIST, pool_done_cb, w);
    w->respawn_ev = evtimer_new(p->base, pool_respawn_cb, w);
    w->deadline_ev = evtimer_new(p->base, pool_deadline_cb, w);
    if (w->done_ev == NULL || w->respawn_ev == NULL || w->deadline_ev == NULL ||
        event_add(w->done_ev, NULL) != 0)
        return FORQ_ERR_NOMEM;
    return 0;
}

int
pool_new(struct event_base *base, const struct pool_config *cfg,
         const struct task_table *tasks, const struct pool_ops *ops, void *arg,
         struct pool **out)
{
    struct pool *p;
    unsigned i;
    int e;

    *out = NULL;
    if (cfg->workers == 0 || cfg->payload_cap > UINT32_MAX || cfg->result_cap > UINT32_MAX / 2 ||
        cfg->batch_max > SLOT_BATCH_MAX)
        return FORQ_ERR_INVALID;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return FORQ_ERR_NOMEM;
    p->base = base;
    p->cfg = *cfg;
    p->tasks = tasks;
    p->ops = ops;
    p->arg = arg;
    p->workers = calloc(cfg->workers, sizeof(*p->workers));
    p->idle = calloc(cfg->workers, sizeof(*p->idle));
    if (p->workers == NULL || p->idle == NULL) {
        e = FORQ_ERR_NOMEM;
        goto fail;
    }
    for (i = 0; i < cfg->workers; i++)
        p->workers[i].pidfd = p->workers[i].done_fd = -1; /* pool_free may see any of them */
    for (i = 0; i < cfg->workers; i++)
        if ((e = pool_worker_init(p, i)) != 0)
            goto fail;
    if ((e = pool_watch_init(p)) != 0)
        goto fail;
    /* All slots exist before the first fork, so every child can unmap the others. */
    for (i = 0; i < cfg->workers; i++)
        if ((e = pool_spawn(&p->workers[i])) != 0)
            goto fail;
    *out = p;
    return 0;
fail:
    pool_free(p);
    return e;
}

unsigned
pool_idle(const struct pool *p)
{
    return p->nidle;
}

/* Write job i of w's batch (payload at off) into the slot; the loop owns jobs[i] now. */
static void
pool_put(struct pool_worker *w, unsigned i, uint32_t off, uint64_t job_id, int task,
         const void *payload, size_t len, void *cookie)
{
    struct slot_job *j = &w->slot->jobs[i];

    if (len > 0)
        memcpy(slot_payload(w->slot) + off, payload, len);
    j->job_id = job_id;
    j->task = task;
    j->payload_off = off;
    j->payload_len = (uint32_t)len;
    j->skip = 0;
    w->ents[i] = (struct pool_entry){cookie, job_id, task, 0};
}

int
pool_run(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
         uint64_t timeout_ms, void *cookie, pid_t *pid)
{
    struct pool_worker *w;
    int e;

    *pid = 0;
    if (len > p->cfg.payload_cap)
        return FORQ_ERR_TOO_BIG;
    if (p->nidle == 0)
        return FORQ_ERR_LIMIT;
    w = &p->workers[p->idle[p->nidle - 1]];
    if (timeout_ms > 0) {
        struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};

        if (event_add(w->deadline_ev, &tv) != 0)
            return FORQ_ERR_NOMEM;
    }
    pool_put(w, 0, 0, job_id, task, payload, len, cookie);
    e = slot_assign(w->slot);
    if (e == FORQ_ERR_SYSTEM) {
        event_del(w->deadline_ev);
        return e;
    }
    /*
     * FORQ_ERR_WORKER_LOST means the worker died holding the lock; its pidfd
     * fires soon and reports this job as never started, so it runs elsewhere.
     */
    p->nidle--;
    w->busy = 1;
    w->nent = 1;
    w->payload_used = (uint32_t)len;
    /* Jobs appended behind a slow one would wait for it while other workers idle. */
    w->sealed = timeout_ms > 0 || !pool_task_quick(p, task);
    *pid = w->pid;
    return 0;
}

/* 1 when w's running batch may take one more job of len bytes, at *off. */
static int
pool_may_append(const struct pool *p, const struct pool_worker *w, size_t len, uint32_t *off)
{
    const struct pool_config *cfg = &p->cfg;

    if (!w->busy || w->pid == 0 || w->killing || w->sealed || w->retire_next ||
        w->nent >= cfg->batch_max || w->nent >= SLOT_BATCH_MAX)
        return 0;
    /* Not past the jobs it may still do before it is retired. */
    if (cfg->max_jobs_per_worker > 0 &&
        w->jobs_done - w->jobs_at_spawn + w->nent >= cfg->max_jobs_per_worker)
        return 0;
    *off = (w->payload_used + 7) & ~7U;
    return *off <= cfg->payload_cap && len <= cfg->payload_cap - *off;
}

/* Expected µs of work in w's batch: the average run of each job's task. */
static uint64_t
pool_batch_us(const struct pool *p, const struct pool_worker *w)
{
    uint64_t us = 0;

    for (unsigned i = 0; i < w->nent; i++) {
        int t = w->ents[i].task;

        us += t >= 0 && (size_t)t < p->nstats ? p->stats[t].avg_us : p->cfg.batch_quick_us;
    }
    return us;
}

/*
 * The busy worker whose batch may take a job of len bytes (at *off) and has
 * the least work ahead, with that work in *us; NULL when no batch can. On
 * equal work the batch with fewer jobs wins: a task quicker than the clock's
 * microsecond averages 0 us, and its jobs must still spread over the batches.
 */
static struct pool_worker *
pool_shortest_batch(struct pool *p, size_t len, uint32_t *off, uint64_t *us)
{
    struct pool_worker *best = NULL;
    uint32_t o;
    uint64_t u;

    for (unsigned i = 0; i < p->cfg.workers; i++) {
        struct pool_worker *w = &p->workers[i];

        if (!pool_may_append(p, w, len, &o))
            continue;
        u = pool_batch_us(p, w);
        if (best == NULL || u < *us || (u == *us && w->nent < best->nent)) {
            best = w;
            *off = o;
            *us = u;
        }
    }
    return best;
}

/* Append the job to w's batch at payload offset off. 0 or FORQ_ERR_LIMIT. */
static int
pool_append_to(struct pool_worker *w, uint32_t off, uint64_t job_id, int task,
               const void *payload, size_t len, void *cookie, pid_t *pid)
{
    pool_put(w, w->nent, off, job_id, task, payload, len, cookie);
    if (slot_append(w->slot) != 0)
        return FORQ_ERR_LIMIT; /* through its batch already: its eventfd says so soon */
    w->nent++;
    w->payload_used = off + (uint32_t)len;
    *pid = w->pid;
    return 0;
}

/* 1 when the job may wait in a batch at all. */
static int
pool_may_wait(const struct pool *p, int task, uint64_t timeout_ms)
{
    return timeout_ms == 0 && p->cfg.batch_max > 1 && pool_task_quick(p, task);
}

/*
 * Append the job to the shortest batch whose work ahead is below max_us.
 * 0, or FORQ_ERR_LIMIT when the job may not wait or no batch fits.
 */
static int
pool_append_within(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
                   uint64_t timeout_ms, uint64_t max_us, void *cookie, pid_t *pid)
{
    struct pool_worker *w;
    uint32_t off = 0;
    uint64_t us = 0;

    *pid = 0;
    if (!pool_may_wait(p, task, timeout_ms) ||
        (w = pool_shortest_batch(p, len, &off, &us)) == NULL || us >= max_us)
        return FORQ_ERR_LIMIT;
    return pool_append_to(w, off, job_id, task, payload, len, cookie, pid);
}

int
pool_append(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
            uint64_t timeout_ms, void *cookie, pid_t *pid)
{
    return pool_append_within(p, job_id, task, payload, len, timeout_ms, UINT64_MAX, cookie,
                              pid);
}

int
pool_give(struct pool *p, uint64_t job_id, int task, const void *payload, size_t len,
          uint64_t timeout_ms, void *cookie, pid_t *pid)
{
    if (p->nidle == 0)
        return pool_append(p, job_id, task, payload, len, timeout_ms, cookie, pid);
    /* A worker is idle: a batch only when its work ahead is shorter than waking it. */
    if (pool_append_within(p, job_id, task, payload, len, timeout_ms, p->cfg.batch_wake_us,
                           cookie, pid) == 0)
        return 0;
    return pool_run(p, job_id, task, payload, len, timeout_ms, cookie, pid);
}

int
pool_kill(struct pool *p, uint64_t job_id)
{
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        struct pool_worker *w = &p->workers[i];

        if (!w->busy || w->pid == 0)
            continue;
        for (unsigned k = 0; k < w->nent; k++) {
            if (w->ents[k].job_id != job_id)
                continue;
            if (w->killing || w->ents[k].skip)
                return 0;
            switch (slot_skip(w->slot, k)) {
            case 0: /* not started: the worker passes it over, the others run */
                w->ents[k].skip = 1;
                return 0;
            case FORQ_ERR_STATE: /* finished, not harvested yet: the outcome comes through done */
                return FORQ_ERR_STATE;
            default: /* running now (or the slot is broken): stop the worker */
                pool_kill_worker(w, POOL_LOST_KILLED);
                return 0;
            }
        }
    }
    return FORQ_ERR_NOT_FOUND;
}

size_t
pool_size(const struct pool *p)
{
    return p->cfg.workers;
}

void
pool_info(const struct pool *p, size_t i, struct pool_worker_info *out)
{
    const struct pool_worker *w = &p->workers[i];

    out->slot = w->idx;
    out->pid = w->pid;
    out->state = w->pid == 0 ? "starting" : w->busy ? "busy" : w->retiring ? "retiring" : "idle";
    out->job = 0;
    out->batched = w->busy ? w->nent : 0;
    if (w->busy) {
        struct slot_counts c = {0};

        (void)slot_get_counts(w->slot, &c);
        out->job = pool_current_job(w, &c);
    }
    out->jobs_done = w->jobs_done;
    out->restarts = w->restarts;
}

/* Without pidfds: wait up to ms for the workers to exit, looking every 10 ms. */
static void
pool_wait_exits_slow(struct pool *p, int ms)
{
    for (int waited = 0;; waited += 10) {
        unsigned left = 0;

        for (unsigned i = 0; i < p->cfg.workers; i++)
            if (p->workers[i].pid != 0 && !pool_has_exited(p->workers[i].pid))
                left++;
        if (left == 0 || waited >= ms)
            return;
        usleep(10000);
    }
}

/* Wait up to ms for the workers' pidfds to become readable (exited). */
static void
pool_wait_exits(struct pool *p, int ms)
{
    struct pollfd *fds;
    unsigned i, n = 0;

    if (p->chld_ev != NULL) {
        pool_wait_exits_slow(p, ms);
        return;
    }
    if ((fds = calloc(p->cfg.workers, sizeof(*fds))) == NULL)
        return;
    for (i = 0; i < p->cfg.workers; i++)
        if (p->workers[i].pidfd >= 0)
            fds[n++] = (struct pollfd){.fd = p->workers[i].pidfd, .events = POLLIN};
    while (n > 0 && poll(fds, n, ms) > 0) {
        unsigned k = 0;

        for (i = 0; i < n; i++)
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                fds[k++] = fds[i];
        n = k;
    }
    free(fds);
}

void
pool_set_limits(struct pool *p, uint64_t max_jobs_per_worker, uint64_t memory_limit,
                unsigned batch_max)
{
    p->cfg.max_jobs_per_worker = max_jobs_per_worker;
    p->cfg.memory_limit = memory_limit;
    /* Batches running now keep what they hold; the next appends see the new bound. */
    p->cfg.batch_max = batch_max <= SLOT_BATCH_MAX ? batch_max : SLOT_BATCH_MAX;
}

void
pool_retire_all(struct pool *p)
{
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        struct pool_worker *w = &p->workers[i];

        if (w->pid == 0 || w->retiring)
            continue; /* its successor will be forked from the new table anyway */
        if (w->busy) {
            w->retire_next = 1;
        } else {
            pool_idle_drop(p, w);
            pool_retire(w);
        }
    }
}

void
pool_free(struct pool *p)
{
    unsigned i;

    if (p == NULL)
        return;
    p->stopping = 1;
    for (i = 0; p->workers != NULL && i < p->cfg.workers; i++) {
        struct pool_worker *w = &p->workers[i];

        if (w->pid == 0)
            continue;
        if (w->busy || slot_set_state(w->slot, SLOT_EXIT) != 0) {
            kill(-w->pid, SIGKILL);
            kill(w->pid, SIGKILL);
        }
    }
    if (p->workers != NULL)
        pool_wait_exits(p, POOL_STOP_GRACE_MS);
    for (i = 0; p->workers != NULL && i < p->cfg.workers; i++) {
        struct pool_worker *w = &p->workers[i];

        if (w->pid != 0) {
            kill(w->pid, SIGKILL); /* no-op for those that already exited */
            waitpid(w->pid, NULL, 0);
        }
        if (w->exit_ev != NULL)
            event_free(w->exit_ev);
        if (w->done_ev != NULL)
            event_free(w->done_ev);
        if (w->respawn_ev != NULL)
            event_free(w->respawn_ev);
        if (w->deadline_ev != NULL)
            event_free(w->deadline_ev);
        if (w->pidfd >= 0)
            close(w->pidfd);
        if (w->done_fd >= 0)
            close(w->done_fd);
        if (w->slot != NULL)
            munmap(w->slot, w->map_len);
    }
    if (p->chld_ev != NULL)
        event_free(p->chld_ev);
    free(p->workers);
    free(p->idle);
    free(p->stats);
    free(p);
}
