/*
 * exec.c — exec tasks: the operator's commands, run once per job.
 *
 * exec_split and exec_task_add run in forqd at start-up, before the workers
 * fork: the command line is split into argv, the program is resolved to a
 * path once ($PATH is not searched again per job), and the task goes into the
 * table with a struct exec_task as its ctx (kept for the life of the process).
 *
 * exec_run runs in a worker process, one job at a time: it forks the command
 * with pipes on its stdin, stdout and stderr, feeds it the payload while
 * collecting stdout (the result) and the tail of stderr (for a failure
 * message) in one poll() loop, so neither side can block the other, and
 * reaps it. It leaves no child, fd or signal disposition behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"

#define EXEC_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin" /* when $PATH is unset */
#define EXEC_READ_CHUNK   4096
#define EXEC_EXIT_POLL_MS 20 /* without a pidfd: how often to ask whether it exited */

extern char **environ;

/* The ctx of an exec task; allocated at start-up, freed with the task table. */
struct exec_task {
    const char *name;  /* borrowed from the config */
    char *const *argv; /* borrowed; argv[0] as the operator wrote it */
    char *path;        /* owned: argv[0] resolved at start-up */
    size_t max_output; /* bytes of stdout kept; <= the max_result it was built with */
};

/* One run, parent side. An fd is -1 once closed. */
struct exec_proc {
    pid_t pid;
    int in, out, err;
    size_t in_off;               /* payload bytes written to stdin */
    size_t out_len, out_max;     /* stdout bytes in io->result; the most kept */
    int too_big;                 /* stdout went past out_max; the command was killed */
    char tail[EXEC_STDERR_TAIL]; /* the last tail_len bytes of stderr */
    size_t tail_len;
    int tail_cut; /* stderr had more than the tail */
};

/* ---------------------------------------------------------------- split */

static int
exec_split_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Append a copy of the len-byte word to *v (count words, room for the NULL). */
static int
exec_split_push(char ***v, size_t *count, size_t *cap, const char *word, size_t len)
{
    char **nv;
    char *w;

    if (*count + 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;

        if ((nv = realloc(*v, ncap * sizeof(*nv))) == NULL)
            return FORQ_ERR_NOMEM;
        *v = nv;
        *cap = ncap;
    }
    if ((w = strndup(word, len)) == NULL)
        return FORQ_ERR_NOMEM;
    (*v)[(*count)++] = w;
    (*v)[*count] = NULL;
    return 0;
}

static void
exec_split_free(char **v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(v[i]);
    free(v);
}

int
exec_split(const char *line, char ***argv, size_t *argc, char *why, size_t whylen)
{
    const char *p = line, *open;
    char **v = NULL, *word;
    size_t count = 0, cap = 0, wlen = 0;
    int in_word = 0, r;

    *argv = NULL;
    *argc = 0;
    /* No word is longer than the line: one scratch buffer serves them all. */
    if ((word = malloc(strlen(line) + 1)) == NULL)
        return FORQ_ERR_NOMEM;
    for (;;) {
        if (*p == '\0' || exec_split_is_blank(*p)) {
            if (in_word && (r = exec_split_push(&v, &count, &cap, word, wlen)) != 0)
                goto fail;
            in_word = 0;
            wlen = 0;
            if (*p++ == '\0')
                break;
            continue;
        }
        in_word = 1; /* even '' makes a (empty) word */
        open = p;
        if (*p == '\'') {
            const char *end = strchr(p + 1, '\'');

            if (end == NULL)
                goto unterminated;
            memcpy(word + wlen, p + 1, (size_t)(end - p - 1));
            wlen += (size_t)(end - p - 1);
            p = end + 1;
        } else if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    goto unterminated;
                /* Inside "...", a backslash escapes only " and \ (as in sh). */
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                word[wlen++] = *p;
            }
            p++;
        } else if (*p == '\\') {
            if (p[1] == '\0') {
                snprintf(why, whylen, "trailing backslash at the end of the command");
                r = FORQ_ERR_INVALID;
                goto fail;
            }
            word[wlen++] = p[1];
            p += 2;
        } else {
            word[wlen++] = *p++;
        }
    }
    if (count == 0) {
        snprintf(why, whylen, "empty command");
        r = FORQ_ERR_INVALID;
        goto fail;
    }
    free(word);
    *argv = v;
    *argc = count;
    return 0;

unterminated:
    snprintf(why, whylen, "unterminated %s quote (opened at column %zu)",
             *open == '"' ? "double" : "single", (size_t)(open - line) + 1);
    r = FORQ_ERR_INVALID;
fail:
    free(word);
    exec_split_free(v, count);
    return r;
}

/* ---------------------------------------------------------------- start-up */

/* NULL when path is a regular file we may execute, else why not. */
static const char *
exec_check_file(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return strerror(errno);
    if (!S_ISREG(st.st_mode))
        return "not a regular file";
    /* access() alone passes any file for root; the mode bits do not. */
    if ((st.st_mode & 0111) == 0 || access(path, X_OK) != 0)
        return "not executable";
    return NULL;
}

/*
 * Resolve prog (argv[0]) into *out (malloc'd): an absolute path as it is, a
 * bare name through the absolute directories of $PATH. A relative path with
 * a '/' is refused: it would depend on forqd's working directory.
 */
static int
exec_resolve(const char *task, const char *prog, char **out, char *why, size_t whylen)
{
    const char *dirs = getenv("PATH"), *d, *end, *reason;
    size_t plen = strlen(prog);
    char *cand;

    *out = NULL;
    if (strchr(prog, '/') != NULL) {
        if (prog[0] != '/') {
            snprintf(why, whylen,
                     "task '%s': program '%s' must be an absolute path or a name found in $PATH",
                     task, prog);
            return FORQ_ERR_INVALID;
        }
        if ((reason = exec_check_file(prog)) != NULL) {
            snprintf(why, whylen, "task '%s': %s: %s", task, prog, reason);
            return FORQ_ERR_INVALID;
        }
        return (*out = strdup(prog)) != NULL ? 0 : FORQ_ERR_NOMEM;
    }
    if (dirs == NULL || *dirs == '\0')
        dirs = EXEC_DEFAULT_PATH;
    for (d = dirs; *d != '\0'; d = *end == ':' ? end + 1 : end) {
        size_t dlen;

        end = strchrnul(d, ':');
        dlen = (size_t)(end - d);
        if (dlen == 0 || d[0] != '/') /* "" and relative entries mean the cwd */
            continue;
        if ((cand = malloc(dlen + 1 + plen + 1)) == NULL)
            return FORQ_ERR_NOMEM;
        memcpy(cand, d, dlen);
        cand[dlen] = '/';
        memcpy(cand + dlen + 1, prog, plen + 1);
        if (exec_check_file(cand) == NULL) {
            *out = cand;
            return 0;
        }
        free(cand);
    }
    snprintf(why, whylen, "task '%s': program '%s' not found as an executable file in $PATH (%s)",
             task, prog, dirs);
    return FORQ_ERR_INVALID;
}

static int exec_run(struct forq_task_io *io);

static void
exec_task_free(void *ctx)
{
    struct exec_task *et = ctx;

    free(et->path);
    free(et);
}

int
exec_task_add(struct task_table *t, const struct config_task *ct, size_t max_result, char *why,
              size_t whylen)
{
    struct exec_task *et;
    char *path;
    int r;

    if (ct->argc == 0 || ct->argv == NULL || ct->argv[0] == NULL || ct->argv[0][0] == '\0') {
        snprintf(why, whylen, "task '%s': no command to run", ct->name);
        return FORQ_ERR_INVALID;
    }
    if ((r = exec_resolve(ct->name, ct->argv[0], &path, why, whylen)) != 0) {
        if (r == FORQ_ERR_NOMEM)
            snprintf(why, whylen, "task '%s': out of memory", ct->name);
        return r;
    }
    if ((et = calloc(1, sizeof(*et))) == NULL) {
        free(path);
        snprintf(why, whylen, "task '%s': out of memory", ct->name);
        return FORQ_ERR_NOMEM;
    }
    et->name = ct->name;
    et->argv = ct->argv;
    et->path = path;
    /* The result lands in the slot's result buffer: never more than it holds. */
    et->max_output =
        ct->max_output != 0 && ct->max_output < max_result ? ct->max_output : max_result;
    if ((r = task_table_add_owned(t, ct->name, exec_run, et, exec_task_free)) != 0) {
        if (r == FORQ_ERR_LIMIT)
            snprintf(why, whylen, "task '%s': the task table is full (%d tasks)", ct->name,
                     TASK_MAX);
        else
            snprintf(why, whylen, "task '%s': invalid name or already defined", ct->name);
        free(path);
        free(et);
        return r;
    }
    return 0;
}

/* ---------------------------------------------------------------- run: child */

static void exec_child_fail(const char *path, int err) __attribute__((noreturn));
static void exec_child(const struct exec_task *et, const int fds[3], char *const *envp,
                       pid_t worker) __attribute__((noreturn));

/* Say on fd 2 why the command cannot run, and exit as sh does (127). */
static void
exec_child_fail(const char *path, int err)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "cannot run %s: %s\n", path, strerror(err));

    if (n > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    _exit(127);
}

/*
 * The forked child: a clean signal state, death with the worker, the three
 * pipe ends (fds: stdin, stdout, stderr) as 0, 1, 2 and nothing else open,
 * then the program. Never returns.
 */
static void
exec_child(const struct exec_task *et, const int fds[3], char *const *envp, pid_t worker)
{
    struct sigaction sa;
    sigset_t none;
    int moved[3];

    /* Ignored signals stay ignored across execve (the worker ignores SIGPIPE now). */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL); /* SIGKILL, SIGSTOP, libc's own: refused, fine */
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    /* Dies with the worker, even when the worker is SIGKILLed alone. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != worker)
        _exit(127);
    /* Lift the ends above 2 first, so that no dup2 below closes another. */
    for (int i = 0; i < 3; i++)
        if ((moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
            exec_child_fail(et->path, errno);
    for (int i = 0; i < 3; i++)
        if (dup2(moved[i], i) < 0)
            exec_child_fail(et->path, errno);
    (void)close_range(3, ~0U, 0);
    execve(et->path, et->argv, envp);
    exec_child_fail(et->path, errno);
}

/* ---------------------------------------------------------------- run: parent */

/*
 * forqd's environment plus FORQ_JOB_ID and FORQ_TASK, built before the fork
 * so that the child allocates nothing. The two strings live in the caller's
 * buffers; free only the array. NULL: out of memory.
 */
static char **
exec_envp(const struct exec_task *et, uint64_t job_id, char *idvar, size_t idlen, char *taskvar,
          size_t tasklen)
{
    size_t n = 0, k = 0;
    char **envp;

    snprintf(idvar, idlen, "FORQ_JOB_ID=%" PRIu64, job_id);
    snprintf(taskvar, tasklen, "FORQ_TASK=%s", et->name);
    while (environ != NULL && environ[n] != NULL)
        n++;
    if ((envp = malloc((n + 3) * sizeof(*envp))) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "FORQ_JOB_ID=", 12) != 0 &&
            strncmp(environ[i], "FORQ_TASK=", 10) != 0)
            envp[k++] = environ[i];
    envp[k++] = idvar;
    envp[k++] = taskvar;
    envp[k] = NULL;
    return envp;
}

static void
exec_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void
exec_close_pair(int p[2])
{
    exec_close(&p[0]);
    exec_close(&p[1]);
}

static int
exec_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Wait for pid to end (status in *status). -1 with errno only if it cannot be waited for. */
static int
exec_reap(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* Start the command with pipes on its stdio; fills pr. 0, or a failure reported in io. */
static int
exec_spawn(const struct exec_task *et, struct forq_task_io *io, struct exec_proc *pr)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, e;
    char idvar[40], taskvar[16 + FORQ_NAME_MAX];
    const char *what;
    char **envp;
    pid_t worker = getpid();

    what = "pipe";
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        goto fail;
    /* Only our ends: the command gets ordinary blocking stdio. */
    what = "fcntl";
    if (exec_nonblock(in[1]) != 0 || exec_nonblock(out[0]) != 0 || exec_nonblock(err[0]) != 0)
        goto fail;
    what = "environment";
    errno = ENOMEM;
    if ((envp = exec_envp(et, io->job_id, idvar, sizeof(idvar), taskvar, sizeof(taskvar))) == NULL)
        goto fail;
    what = "fork";
    pr->pid = fork();
    if (pr->pid == 0)
        exec_child(et, (const int[3]){in[0], out[1], err[1]}, envp, worker);
    e = errno;
    free(envp);
    exec_close(&in[0]);
    exec_close(&out[1]);
    exec_close(&err[1]);
    if (pr->pid < 0) {
        errno = e;
        goto fail;
    }
    pr->in = in[1];
    pr->out = out[0];
    pr->err = err[0];
    if (io->payload_len == 0)
        exec_close(&pr->in); /* EOF at once */
    return 0;

fail:
    e = errno;
    exec_close_pair(in);
    exec_close_pair(out);
    exec_close_pair(err);
    return forq_task_fail(io, "cannot run task '%s': %s: %s", et->name, what, strerror(e));
}

/* Write what stdin takes now; close it when all is written or the command stopped reading. */
static void
exec_feed(struct exec_proc *pr, const struct forq_task_io *io)
{
    const char *p = io->payload;
    ssize_t n;

    while (pr->in_off < io->payload_len) {
        n = write(pr->in, p + pr->in_off, io->payload_len - pr->in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break; /* EPIPE: the command does not read its stdin, which is its right */
        pr->in_off += (size_t)n;
    }
    exec_close(&pr->in);
}

/* Read what stdout has into the result. Sets too_big past out_max. */
static void
exec_drain_out(struct exec_proc *pr, struct forq_task_io *io)
{
    char extra;
    ssize_t n;

    for (;;) {
        if (pr->out_len < pr->out_max)
            n = read(pr->out, (char *)io->result + pr->out_len, pr->out_max - pr->out_len);
        else
            n = read(pr->out, &extra, 1); /* full: one byte more is too much */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break; /* EOF (or a read error, which ends the output all the same) */
        if (pr->out_len == pr->out_max) {
            pr->too_big = 1;
            return;
        }
        pr->out_len += (size_t)n;
    }
    exec_close(&pr->out);
}

/* Keep the last EXEC_STDERR_TAIL bytes of n more bytes of stderr. */
static void
exec_tail_add(struct exec_proc *pr, const char *buf, size_t n)
{
    size_t cap = sizeof(pr->tail), drop;

    if (n >= cap) {
        memcpy(pr->tail, buf + n - cap, cap);
        pr->tail_cut |= n > cap || pr->tail_len > 0;
        pr->tail_len = cap;
        return;
    }
    if (pr->tail_len + n > cap) {
        drop = pr->tail_len + n - cap;
        memmove(pr->tail, pr->tail + drop, pr->tail_len - drop);
        pr->tail_len -= drop;
        pr->tail_cut = 1;
    }
    memcpy(pr->tail + pr->tail_len, buf, n);
    pr->tail_len += n;
}

static void
exec_drain_err(struct exec_proc *pr)
{
    char buf[EXEC_READ_CHUNK];
    ssize_t n;

    for (;;) {
        n = read(pr->err, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;
        exec_tail_add(pr, buf, (size_t)n);
    }
    exec_close(&pr->err);
}

/* 1 when process pid has exited; it stays a zombie (WNOWAIT) for exec_reap. */
static int
exec_has_exited(pid_t pid)
{
    siginfo_t si = {0};

    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/*
 * Move bytes until the command has exited or closed all three pipes, or
 * stdout goes over the limit. Once the command has exited, what it wrote is
 * in the pipes: read that and stop, so a background process it left holding
 * stdout cannot hold the job (and the worker) open. The exit is seen on its
 * pidfd, or, where pidfd_open is missing (kernels before 5.3; valgrind before
 * 3.20), by asking waitid every EXEC_EXIT_POLL_MS. 0, or -1 with errno when
 * poll fails.
 */
static int
exec_pump(struct exec_proc *pr, struct forq_task_io *io, int pidfd)
{
    struct pollfd pfd[4];
    int iin, iout, ierr, ipid, exited;
    nfds_t n;

    while ((pr->in >= 0 || pr->out >= 0 || pr->err >= 0) && !pr->too_big) {
        n = 0;
        iin = iout = ierr = ipid = -1;
        if (pidfd >= 0)
            pfd[ipid = (int)n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (pr->in >= 0)
            pfd[iin = (int)n++] = (struct pollfd){.fd = pr->in, .events = POLLOUT};
        if (pr->out >= 0)
            pfd[iout = (int)n++] = (struct pollfd){.fd = pr->out, .events = POLLIN};
        if (pr->err >= 0)
            pfd[ierr = (int)n++] = (struct pollfd){.fd = pr->err, .events = POLLIN};
        /* No deadline here (forqd kills the worker's group on the job's): a tick at most. */
        if (poll(pfd, n, pidfd >= 0 ? -1 : EXEC_EXIT_POLL_MS) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (iin >= 0 && pfd[iin].revents != 0)
            exec_feed(pr, io);
        if (iout >= 0 && pfd[iout].revents != 0)
            exec_drain_out(pr, io);
        if (ierr >= 0 && pfd[ierr].revents != 0)
            exec_drain_err(pr);
        exited = ipid >= 0 ? pfd[ipid].revents != 0 : exec_has_exited(pr->pid);
        if (exited) {
            /* Exited: drain what it left in the pipes (both non-blocking), then stop. */
            if (pr->out >= 0 && !pr->too_big)
                exec_drain_out(pr, io);
            if (pr->err >= 0)
                exec_drain_err(pr);
            break;
        }
    }
    return 0;
}

/*
 * The failure message for wait status st: what happened, then the end of
 * stderr, cut at the front if need be so that the message fits errmsg.
 */
static int
exec_report(struct forq_task_io *io, struct exec_proc *pr, int st)
{
    char head[96];
    const char *abbrev, *s = pr->tail;
    size_t len = pr->tail_len, room;
    int cut = pr->tail_cut;

    if (WIFEXITED(st)) {
        snprintf(head, sizeof(head), "command exited with status %d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        abbrev = sigabbrev_np(WTERMSIG(st));
        snprintf(head, sizeof(head), "command killed by signal %d (%s%s)", WTERMSIG(st),
                 abbrev != NULL ? "SIG" : "", abbrev != NULL ? abbrev : "unknown");
    } else {
        snprintf(head, sizeof(head), "command ended with wait status %d", st);
    }
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len; i++)
        if (pr->tail[i] == '\0')
            pr->tail[i] = '?'; /* a NUL would end the message early */
    /* Room for the tail: errmsg_cap less the head, ": ", "..." and the NUL. */
    room = io->errmsg_cap > strlen(head) + 6 ? io->errmsg_cap - strlen(head) - 6 : 0;
    if (len > room) {
        s += len - room;
        len = room;
        cut = 1;
    }
    /* After a cut, skip the rest of a split UTF-8 character. */
    while (cut && len > 0 && ((unsigned char)*s & 0xc0) == 0x80) {
        s++;
        len--;
    }
    if (len == 0)
        return forq_task_fail(io, "%s: (no stderr)", head);
    return forq_task_fail(io, "%s: %s%.*s", head, cut ? "..." : "", (int)len, s);
}

/* The task function of every exec task (worker process). */
static int
exec_run(struct forq_task_io *io)
{
    const struct exec_task *et = io->ctx;
    struct exec_proc pr = {.pid = -1, .in = -1, .out = -1, .err = -1};
    struct sigaction ign, old_pipe, old_chld;
    int r, st, e = 0, pidfd = -1;

    pr.out_max = et->max_output < io->result_cap ? et->max_output : io->result_cap;
    /* A command that stops reading must cost an EPIPE, not the worker. */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe);
    /* With SIGCHLD ignored, children reap themselves and waitpid cannot report. */
    sigaction(SIGCHLD, NULL, &old_chld);
    if (old_chld.sa_handler == SIG_IGN) {
        struct sigaction dfl = ign;

        dfl.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &dfl, NULL);
    }

    if ((r = exec_spawn(et, io, &pr)) != 0)
        goto out;
    pidfd = pidfd_open(pr.pid, 0); /* -1 on old kernels: exec_pump polls waitid */
    if (exec_pump(&pr, io, pidfd) != 0) {
        e = errno;
        kill(pr.pid, SIGKILL);
    } else if (pr.too_big) {
        kill(pr.pid, SIGKILL);
    }
    exec_close(&pr.in);
    exec_close(&pr.out);
    exec_close(&pr.err);
    exec_close(&pidfd);
    if (exec_reap(pr.pid, &st) != 0) {
        r = forq_task_fail(io, "task '%s': waitpid: %s", et->name, strerror(errno));
        goto out;
    }
    if (e != 0) {
        r = forq_task_fail(io, "task '%s': poll: %s", et->name, strerror(e));
    } else if (pr.too_big) {
        snprintf(io->errmsg, io->errmsg_cap, "output of task '%s' exceeds %zu bytes", et->name,
                 pr.out_max);
        r = FORQ_ERR_TOO_BIG;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        io->result_len = pr.out_len;
        r = 0;
    } else {
        r = exec_report(io, &pr, st);
    }
out:
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    return r;
}
