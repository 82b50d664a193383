/*
 * worker.h — the main loop of a worker process (the consumer side of slot.h).
 */
#ifndef FORQ_WORKER_H
#define FORQ_WORKER_H

#include "slot.h"
#include "task.h"

/*
 * Turn the freshly forked child into a worker and run jobs from slot s until
 * the slot says SLOT_EXIT or the parent dies; never returns. done_fd is the
 * eventfd that wakes the loop when a job is done. parent is the loop's pid.
 * Prepares the process first: dies with its parent, resets signal handling,
 * keeps only stdio and done_fd open.
 *
 * Runs in a child forked from a process that may have threads: it only takes
 * locks that fork leaves usable (glibc resets malloc's in the child).
 */
void worker_run(struct slot *s, int done_fd, pid_t parent, const struct task_table *tasks)
    __attribute__((noreturn));

#endif /* FORQ_WORKER_H */
