/*
 * exec.h — exec tasks: commands the operator declares in the config
 * ([task.NAME] exec = PROGRAM ARGS...), run by a worker for each job.
 *
 * The job's payload goes to the command's stdin; its stdout, up to
 * max_output bytes, is the result (more fails the job with too_big and kills
 * the command); a non-zero exit (or a signal) fails the job with task_failed
 * and a message that ends with the tail of its stderr ("command exited with
 * status 3: ..."; exit 127 with "cannot run PATH: ..." when execve failed).
 * The command runs in the worker's process group (each worker leads its own),
 * so forqd kills both with one kill(-pgid) on a timeout or a cancel, and it
 * dies with its worker (PR_SET_PDEATHSIG). It inherits the worker's resource
 * limits (memory_limit is its own RLIMIT_AS too), forqd's working directory,
 * default signal handling and only fds 0-2. No shell is involved: clients
 * name the task, never a command line. Environment: forqd's, plus
 * FORQ_JOB_ID (decimal) and FORQ_TASK (the task's name).
 *
 * The task function runs in a worker process, which must be single-threaded:
 * it ignores SIGPIPE for the length of a run (a command that does not read
 * its stdin costs an EPIPE, not the worker) and forks.
 */
#ifndef FORQ_EXEC_H
#define FORQ_EXEC_H

#include <stddef.h>

#include "config.h"
#include "task.h"

#define EXEC_STDERR_TAIL 512 /* bytes of stderr quoted in a failure message */

/*
 * Add the exec task described by ct to t. The program must be an absolute
 * path, or a bare name found in the absolute directories of $PATH, and be an
 * executable regular file; it is resolved here, once, and that path is run
 * for every job (a program missing later fails its jobs with status 127).
 * At most min(ct->max_output or max_result, max_result) bytes of stdout are
 * kept: the result must fit the slot. Returns 0, or FORQ_ERR_INVALID /
 * FORQ_ERR_LIMIT / FORQ_ERR_NOMEM with a reason naming the task in why. ct
 * must outlive t (its name and argv are borrowed); the task's ctx is
 * allocated here and kept for the life of the process. Start-up only,
 * before the workers fork.
 */
int exec_task_add(struct task_table *t, const struct config_task *ct, size_t max_result,
                  char *why, size_t whylen);

/*
 * Split a command line into a NULL-terminated argv: words separated by
 * blanks (ASCII whitespace), with sh's quoting and nothing else of sh (no
 * variables, globs, redirections or operators): '...' is literal; inside
 * "..." a backslash escapes only " and \; elsewhere it escapes any one
 * character; quoted parts join the word they touch, and '' is an empty word.
 * Returns 0 with *argv (free each word, then the array) and *argc, or
 * FORQ_ERR_INVALID (empty, an unterminated quote, a trailing backslash) with
 * a reason in why and *argv NULL, or FORQ_ERR_NOMEM. Any thread.
 */
int exec_split(const char *line, char ***argv, size_t *argc, char *why, size_t whylen);

#endif /* FORQ_EXEC_H */
