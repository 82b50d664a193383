/*
 * forq.h — libforq, the client library of the forq task queue.
 *
 * The model is Python's concurrent.futures, over the network: submit a job to
 * forqd, get a future back, resolve it later (from this process or any other,
 * by job id). One forq_client may be shared by any number of threads; every
 * call is thread-safe unless its contract says otherwise, and many requests
 * travel in flight on the one connection, matched by request id.
 *
 * Conventions
 *  - Every call that can fail returns int: 0 (FORQ_OK) on success or a
 *    negative FORQ_ERR_* code. The same codes travel on the wire (PROTOCOL.md).
 *  - forq_errmsg() gives a readable message for the last failed call made by
 *    the calling thread (like dlerror()); forq_strerror() names a code.
 *  - Out-parameters are cleared on entry. On failure the caller still owns
 *    whatever it passed in. Every *_free(NULL) is a no-op.
 *  - The library never exits, aborts or prints.
 *  - timeout_ms arguments: < 0 waits without limit, 0 polls, > 0 waits at most
 *    that many milliseconds.
 */
#ifndef FORQ_H
#define FORQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything else in libforq is built with -fvisibility=hidden. */
#define FORQ_API __attribute__((visibility("default")))

#define FORQ_DEFAULT_ADDR "tcp://127.0.0.1:7340"
#define FORQ_NAME_MAX     64 /* longest task or queue name, in bytes */

/*
 * Status codes. Never renumber: the values are part of the wire protocol.
 * The snake_case name in the comment is what forq_errname() returns and what
 * PROTOCOL.md lists.
 */
enum forq_err {
    FORQ_OK = 0,
    FORQ_ERR_SYSTEM = -1,        /* system: a system call failed; see errno */
    FORQ_ERR_NOMEM = -2,         /* nomem: out of memory */
    FORQ_ERR_INVALID = -3,       /* invalid: invalid argument to a library call */
    FORQ_ERR_PROTOCOL = -4,      /* protocol: malformed frame; the connection closes */
    FORQ_ERR_TOO_BIG = -5,       /* too_big: frame, payload or result over its limit */
    FORQ_ERR_BAD_REQUEST = -6,   /* bad_request: missing field, wrong type, bad value */
    FORQ_ERR_UNKNOWN_OP = -7,    /* unknown_op: the op is not known to this server */
    FORQ_ERR_UNKNOWN_TASK = -8,  /* unknown_task: no task of that name is declared */
    FORQ_ERR_NOT_FOUND = -9,     /* not_found: no job with that id */
    FORQ_ERR_QUEUE_FULL = -10,   /* queue_full: the queue holds its maximum of jobs */
    FORQ_ERR_TIMEOUT = -11,      /* timeout: the wait ended before the job did */
    FORQ_ERR_CANCELLED = -12,    /* cancelled: the job was cancelled */
    FORQ_ERR_TASK_FAILED = -13,  /* task_failed: the task reported a failure */
    FORQ_ERR_WORKER_LOST = -14,  /* worker_lost: the worker died running the job */
    FORQ_ERR_DISCONNECTED = -15, /* disconnected: the connection to forqd was lost */
    FORQ_ERR_AUTH = -16,         /* auth: authentication required or refused */
    FORQ_ERR_STORAGE = -17,      /* storage: the job store failed */
    FORQ_ERR_STATE = -18,        /* state: not allowed in the job's current state */
    FORQ_ERR_SHUTDOWN = -19,     /* shutdown: the server is shutting down */
    FORQ_ERR_VERSION = -20,      /* version: protocol version not supported */
    FORQ_ERR_LIMIT = -21,        /* limit: a server limit was reached */
    FORQ_ERR_JOB_TIMEOUT = -22,  /* job_timeout: the job ran past its timeout_ms */
    FORQ_ERR_MEMORY_LIMIT = -23, /* memory_limit: the job exceeded the worker memory limit */
    FORQ_ERR_CONNECT = -24,      /* connect: could not connect to forqd */
    FORQ_ERR__LAST = -24
};

/* Job states. The wire carries the lower-case name (forq_state_name()). */
enum forq_state {
    FORQ_STATE_SCHEDULED = 0, /* waiting for its delay to pass */
    FORQ_STATE_QUEUED,        /* runnable, waiting for a worker */
    FORQ_STATE_RUNNING,       /* in a worker */
    FORQ_STATE_SUCCEEDED,     /* finished with a result */
    FORQ_STATE_FAILED,        /* finished with an error code and message */
    FORQ_STATE_CANCELLED,     /* cancelled before it ran */
    FORQ_STATE__COUNT
};

/* Name of a code, e.g. "unknown_task"; "unknown" for codes not listed. Never NULL. */
FORQ_API const char *forq_errname(int code);
/* One-line English description of a code. Never NULL. */
FORQ_API const char *forq_strerror(int code);
/* Lower-case state name ("queued"...), "unknown" when out of range. Never NULL. */
FORQ_API const char *forq_state_name(int state);
/* Parse a state name; returns the state or -1. */
FORQ_API int forq_state_parse(const char *name, size_t len);
/* 1 if the state is final (succeeded, failed, cancelled), else 0. */
FORQ_API int forq_state_is_final(int state);

/*
 * Detailed message for the last call of this thread that failed, e.g.
 * "connect tcp://127.0.0.1:7340: Connection refused" or the server's text for
 * a refused request. Valid until the thread's next libforq call. Never NULL.
 */
FORQ_API const char *forq_errmsg(void);

/* ------------------------------------------------------------------ client */

typedef struct forq_client forq_client;
typedef struct forq_future forq_future;

/*
 * Connect to forqd at addr: "tcp://HOST:PORT" or "unix:///path/to/socket"
 * (NULL means FORQ_DEFAULT_ADDR). Performs the HELLO handshake.
 * Returns 0 and sets *out, or FORQ_ERR_INVALID (bad address), FORQ_ERR_CONNECT,
 * FORQ_ERR_VERSION, FORQ_ERR_NOMEM. The caller frees *out with forq_client_free().
 * If the connection drops later, calls in progress fail with
 * FORQ_ERR_DISCONNECTED and the next call reconnects.
 */
FORQ_API int forq_connect(const char *addr, forq_client **out);

/* Options of forq_connect_opts(). Start from FORQ_CONNECT_OPTS_INIT. */
struct forq_connect_opts {
    /*
     * Shared secret presented in HELLO (at most 256 bytes, UTF-8), on the
     * first connection and every reconnect; NULL: none. Copied. A forqd
     * without a configured token accepts and ignores it; see SECURITY.md
     * once token auth is configured (a refused token fails with FORQ_ERR_AUTH).
     */
    const char *token;
    int64_t connect_timeout_ms; /* TCP connect + HELLO; <= 0: 10000 */
};
#define FORQ_CONNECT_OPTS_INIT {NULL, 0}

/*
 * forq_connect() with options (opts NULL: the defaults). Same returns, plus
 * FORQ_ERR_INVALID for a token that is too long, and FORQ_ERR_AUTH when the
 * server refuses the token. (A later reconnect that fails, for whatever
 * reason, shows as FORQ_ERR_DISCONNECTED with the reason in forq_errmsg().)
 */
FORQ_API int forq_connect_opts(const char *addr, const struct forq_connect_opts *opts,
                               forq_client **out);

/*
 * Close the connection. Calls in progress on other threads fail promptly with
 * FORQ_ERR_DISCONNECTED; later calls on the client fail with FORQ_ERR_INVALID.
 * Futures stay valid (and keep what they already resolved) until freed.
 * If done callbacks were added, this waits for the callback thread to stop:
 * the callback running now and every pending one (called with its future not
 * done) run first, so do not call it while holding a lock a callback takes.
 * Called from a callback, it does not wait.
 */
FORQ_API void forq_client_close(forq_client *c);

/*
 * Close (if needed) and release the caller's reference. Futures made from this
 * client keep the memory alive until they are freed, so freeing the client
 * before its futures is safe. No other thread may use c after this call.
 */
FORQ_API void forq_client_free(forq_client *c);

/* Round trip to the server. 0, FORQ_ERR_DISCONNECTED, FORQ_ERR_INVALID. */
FORQ_API int forq_ping(forq_client *c);

/* ------------------------------------------------------------------ submit */

/*
 * Options of one submission. Start from FORQ_SUBMIT_OPTS_INIT (or pass NULL for
 * all defaults). Every field is sent and validated by forqd (names, ranges:
 * max_retries <= 1000, delays and timeouts < 2^40 ms, unique_key <= 256
 * bytes); see README "Job options".
 */
struct forq_submit_opts {
    const char *queue;    /* NULL: "default" */
    int32_t priority;     /* lower runs first; default 0 */
    uint64_t delay_ms;    /* the job is `scheduled` until now + delay, then queued */
    uint64_t timeout_ms;  /* 0: no limit; past it the worker is killed and the
                             attempt fails with FORQ_ERR_JOB_TIMEOUT */
    uint32_t max_retries; /* failed attempts retried up to this many times, with
                             exponential backoff; default 0 */
    /*
     * NULL: none. While a job submitted with this key is unfinished, another
     * submission with the same key gets that job's id instead of a new job;
     * once it has finished, the key is free again.
     */
    const char *unique_key;
    /*
     * 0: a full queue refuses the job at once (FORQ_ERR_QUEUE_FULL). N > 0:
     * forq_submit blocks until the queue has room, for up to N ms, like
     * Python's Queue.put(timeout=N/1000), then fails with FORQ_ERR_QUEUE_FULL.
     * Blocked submissions to one queue get in first come, first served.
     */
    uint64_t block_ms;
    /*
     * 0: forq_submit returns once forqd has accepted the job. N > 0: it
     * returns once the job has finished or N ms have passed, whichever comes
     * first, and when the job finished the future already holds its outcome
     * (forq_future_done() is 1, forq_future_result() makes no request).
     * Submit-and-wait in one round trip: Executor.submit(...).result()
     * without a second request. A job still running after N ms goes on as
     * usual: forq_future_result() asks for it.
     */
    uint64_t wait_ms;
};
#define FORQ_SUBMIT_OPTS_INIT {NULL, 0, 0, 0, 0, NULL, 0, 0}

/*
 * Submit a job: the task's registered name and its payload (copied; may be
 * NULL when len is 0). Returns once forqd has accepted the job, with *out set
 * to its future (free with forq_future_free()).
 * Errors: FORQ_ERR_UNKNOWN_TASK, FORQ_ERR_TOO_BIG, FORQ_ERR_BAD_REQUEST,
 * FORQ_ERR_QUEUE_FULL, FORQ_ERR_LIMIT, FORQ_ERR_DISCONNECTED, FORQ_ERR_INVALID.
 */
FORQ_API int forq_submit(forq_client *c, const char *task, const void *payload, size_t len,
                         const struct forq_submit_opts *opts, forq_future **out);

/* ------------------------------------------------------------------ futures */

/*
 * A future for an existing job id, e.g. one printed by another process. No
 * request is made; an unknown id shows up as FORQ_ERR_NOT_FOUND on first use.
 */
FORQ_API int forq_future_from_id(forq_client *c, uint64_t id, forq_future **out);
/* The same call under the name the design notes use. */
FORQ_API int forq_future_for_id(forq_client *c, uint64_t id, forq_future **out);

/* The job id. Never fails. */
FORQ_API uint64_t forq_future_id(const forq_future *f);

/*
 * Wait up to timeout_ms for the job to finish and return its outcome:
 *  0                      succeeded; *data and *len (either may be NULL) give the
 *                         result, owned by the future, valid until it is freed.
 *  FORQ_ERR_TASK_FAILED, FORQ_ERR_WORKER_LOST, FORQ_ERR_CANCELLED,
 *  FORQ_ERR_JOB_TIMEOUT, FORQ_ERR_MEMORY_LIMIT ...
 *                         the job ended without a result; the job's own
 *                         message is forq_future_error(f) (also forq_errmsg()).
 *  FORQ_ERR_TIMEOUT       not finished yet; the job keeps running.
 *  FORQ_ERR_NOT_FOUND, FORQ_ERR_DISCONNECTED, FORQ_ERR_INVALID.
 * Once the job has finished, the outcome is cached and later calls make no request.
 * Thread-safe; several threads may wait on one future.
 */
FORQ_API int forq_future_result(forq_future *f, int64_t timeout_ms, const void **data,
                                size_t *len);

/* The job's error message once it has failed, else NULL. Owned by the future. */
FORQ_API const char *forq_future_error(const forq_future *f);

/*
 * Like Future.done(): 1 if the job has finished (any final state), 0 if not,
 * or a negative code when the server could not be asked.
 */
FORQ_API int forq_future_done(forq_future *f);

/*
 * Like Future.cancel(): cancel the job if it has not started. 0 if it is now
 * cancelled (also if it already was), FORQ_ERR_STATE if it is running or has
 * finished, or another code.
 */
FORQ_API int forq_future_cancel(forq_future *f);

/*
 * Like Future.running(): 1 if the job is running in a worker now, 0 if not
 * (queued, or finished), or a negative code. Asks the server (STATUS) unless
 * the future already knows the job has finished.
 */
FORQ_API int forq_future_running(forq_future *f);

/*
 * Like Future.cancelled(): 1 if the job was cancelled, 0 if not (yet), or a
 * negative code. Asks the server (like forq_future_done) unless the outcome is
 * already known.
 */
FORQ_API int forq_future_cancelled(forq_future *f);

/*
 * Called once per forq_future_add_done_callback(). f is the future the
 * callback was added to; when the job has finished, forq_future_result(f, 0,
 * ...) gives the outcome without a request. The callback is also called once,
 * with f not done, when the outcome can no longer be learnt through the
 * callback thread: the client was closed first (forq_future_done() then
 * returns FORQ_ERR_INVALID), the server cannot report on the id
 * (forq_future_result() asks again and returns e.g. FORQ_ERR_NOT_FOUND), the
 * server refuses to watch (an old forqd), or memory ran out. So arg can
 * always be released in the callback.
 */
typedef void (*forq_done_fn)(forq_future *f, void *arg);

/*
 * Like Future.add_done_callback(): call fn(f, arg) once, when the job has
 * finished (any final state).
 *  - If the future already holds its outcome, fn runs at once, on the calling
 *    thread, before this returns.
 *  - Otherwise fn runs later on the client's callback thread (one per client,
 *    started by the first such call and owned by the library), in the order
 *    the jobs finish. A callback may call any libforq function, including
 *    forq_future_free(f); it must not block for long, since it holds up the
 *    callbacks behind it. The future stays valid until its callbacks have
 *    run, even if the caller frees it first.
 *  - The callback thread watches every pending future with WATCH requests,
 *    one per batch of additions; after a lost connection it reconnects and
 *    watches again, so callbacks are not lost with the connection.
 * Returns 0, FORQ_ERR_INVALID (no future or fn, or the client is closed),
 * FORQ_ERR_NOMEM, FORQ_ERR_SYSTEM (the thread could not start).
 */
FORQ_API int forq_future_add_done_callback(forq_future *f, forq_done_fn fn, void *arg);

/*
 * Release the caller's reference. The job itself is not affected; callbacks
 * still pending keep the future alive until they have run.
 */
FORQ_API void forq_future_free(forq_future *f);

/* ------------------------------------------------------------------ many futures */

/* When forq_wait() returns, as in concurrent.futures.wait(). */
enum forq_wait_mode {
    FORQ_ALL_COMPLETED = 0, /* every future has finished */
    FORQ_FIRST_COMPLETED,   /* any future has finished */
    FORQ_FIRST_EXCEPTION    /* any future has failed (not cancelled), else all finished */
};

/*
 * Wait for the n futures fs[0..n) until the mode's condition holds or
 * timeout_ms passes. Futures may come from different clients; the same
 * future may appear more than once. Futures already known to be done cost
 * nothing; the others are watched with one WATCH request per client (per
 * 10,000 ids), and each completion arrives as it happens, result included,
 * so no request is made per future.
 *
 * A future counts as done once its outcome is cached (then forq_future_done()
 * and forq_future_result() make no request), or when the server cannot report
 * on its id (e.g. FORQ_ERR_NOT_FOUND: an unknown or expired id); such a future
 * also counts as failed for FORQ_FIRST_EXCEPTION, and forq_future_result()
 * asks again and returns the error.
 *
 * If done is not NULL, done[i] is set to 1 for each future counted as done and
 * 0 for the others, whatever the return. Returns 0 when the condition holds,
 * FORQ_ERR_TIMEOUT when the time ran out first (the jobs keep running),
 * FORQ_ERR_DISCONNECTED (promptly, when a connection drops mid-wait; call
 * again to reconnect and go on), FORQ_ERR_INVALID (a NULL future, a bad
 * mode, or a closed client), FORQ_ERR_NOMEM. n == 0 returns 0 at once.
 */
FORQ_API int forq_wait(forq_future *const *fs, size_t n, int mode, int64_t timeout_ms,
                       uint8_t *done);

/*
 * as_completed: an iterator over futures, yielding each as it finishes (the
 * ones already done first, in input order). timeout_ms bounds the whole
 * iteration, as in Python: it is measured from forq_as_completed_new().
 * The futures are borrowed: keep them alive until the iterator is freed.
 */
typedef struct forq_as_completed forq_as_completed;

/* Returns 0 with *out, FORQ_ERR_INVALID (a NULL future or closed client), FORQ_ERR_NOMEM. */
FORQ_API int forq_as_completed_new(forq_future *const *fs, size_t n, int64_t timeout_ms,
                                   forq_as_completed **out);

/*
 * Yield the next finished future: 1 with *f set (each input entry is
 * yielded exactly once), 0 when every future has been yielded (*f NULL), or
 * FORQ_ERR_TIMEOUT (the iteration's time is up), FORQ_ERR_DISCONNECTED (call
 * again to reconnect and go on), FORQ_ERR_NOMEM. Not thread-safe: one
 * iterator belongs to one thread at a time.
 */
FORQ_API int forq_as_completed_next(forq_as_completed *it, forq_future **f);

/* Free the iterator and stop watching what it has not yielded; the futures are untouched. */
FORQ_API void forq_as_completed_free(forq_as_completed *it);

/*
 * map: run task over many payloads and hand the outcomes back in input
 * order, like Executor.map(), with at most max_inflight jobs submitted and
 * not yet handed back at any time, so memory stays bounded however many
 * inputs there are (Python's map submitted everything at once until 3.14).
 *
 * Inputs are pulled: next(arg, i, &payload, &len) gives input i (i = 0, 1, ...)
 * and returns 1, or 0 when there are no more inputs, or a negative code to
 * stop the map with that code. The payload must stay valid until the next
 * call of next() (it is sent before).
 *
 * Outcomes are pushed, in input order: done(arg, i, code, result, len, errmsg)
 * with code 0 and the result bytes, or the job's FORQ_ERR_* and its message
 * (result NULL); for a job the server could not report on, the code is the
 * server's (FORQ_ERR_NOT_FOUND, FORQ_ERR_STORAGE). The bytes are valid during
 * the call only. done returns 0 to
 * go on or a negative code to stop the map with that code.
 *
 * timeout_ms bounds the whole map (measured from the call). Submissions are
 * pipelined (up to max_inflight on the wire at once, the ones that fill the
 * window sent together) and each is a submit-and-wait (wait_ms), so a map
 * costs one request per input, whose answer carries the result. opts apply
 * to every job (NULL: defaults; their wait_ms is replaced); max_inflight 0
 * means 64. forqd counts each job in flight as one of the connection's
 * requests in flight (its max_inflight, default 4096).
 *
 * Returns 0 once every input has been handed back; a submission refused by
 * the server stops the map with its code (e.g. FORQ_ERR_UNKNOWN_TASK;
 * FORQ_ERR_QUEUE_FULL), and so do FORQ_ERR_TIMEOUT, FORQ_ERR_DISCONNECTED and
 * a code returned by next or done. Jobs already submitted keep running when
 * the map stops early.
 */
typedef int (*forq_map_next_fn)(void *arg, size_t i, const void **payload, size_t *len);
typedef int (*forq_map_done_fn)(void *arg, size_t i, int code, const void *result, size_t len,
                                const char *errmsg);
FORQ_API int forq_map(forq_client *c, const char *task, const struct forq_submit_opts *opts,
                      size_t max_inflight, int64_t timeout_ms, forq_map_next_fn next,
                      forq_map_done_fn done, void *arg);

/* ------------------------------------------------------------------ status */

/* A snapshot of a job (STATUS). Strings are owned; clear with forq_job_info_clear(). */
struct forq_job_info {
    uint64_t id;
    int state; /* enum forq_state */
    char task[FORQ_NAME_MAX + 1];
    char queue[FORQ_NAME_MAX + 1];
    int32_t priority;
    uint32_t attempts;
    uint64_t created_us, started_us, finished_us; /* unix time in µs; 0 = not yet */
    int32_t worker_pid;                           /* last worker; 0 = none yet */
    uint64_t result_size;                         /* bytes of result, when succeeded */
    int error_code;                               /* FORQ_ERR_* when failed/cancelled */
    char *error_msg;                              /* NULL unless error_code != 0 */
    uint32_t max_retries;                         /* as submitted; attempts <= max_retries + 1 */
    uint64_t timeout_ms;                          /* as submitted; 0 = no limit */
    uint64_t run_at_us;                           /* unix µs it becomes runnable; 0 unless
                                                     scheduled (delayed or awaiting a retry) */
    char *unique_key;                             /* NULL: none */
    int last_error_code;  /* FORQ_ERR_* of the last failed attempt, reported while the
                             job waits for a retry; 0: none */
    char *last_error_msg; /* NULL unless last_error_code != 0 */
};

/*
 * Fetch a job's snapshot into *info (cleared first). 0, FORQ_ERR_NOT_FOUND,
 * FORQ_ERR_DISCONNECTED, FORQ_ERR_INVALID, FORQ_ERR_NOMEM. On success the
 * strings inside info are the caller's: free them with forq_job_info_clear().
 */
FORQ_API int forq_status(forq_client *c, uint64_t id, struct forq_job_info *info);
/* Free what forq_status() allocated inside info (error_msg, unique_key, last_error_msg). */
FORQ_API void forq_job_info_clear(struct forq_job_info *info);

/* Cancel a job by id; same outcomes as forq_future_cancel(). */
FORQ_API int forq_cancel(forq_client *c, uint64_t id);

/*
 * Cancel a job by id even if it is running: a queued or scheduled job is
 * cancelled as by forq_cancel(); a running one has its worker killed (forqd
 * starts a replacement) and ends cancelled. Returns 0 once the job is
 * cancelled (also if it already was), FORQ_ERR_STATE when it had already
 * succeeded or failed, FORQ_ERR_NOT_FOUND, FORQ_ERR_DISCONNECTED,
 * FORQ_ERR_INVALID. Futures of the job see FORQ_ERR_CANCELLED. Thread-safe.
 */
FORQ_API int forq_cancel_running(forq_client *c, uint64_t id);

/* ------------------------------------------------------------------ stats */

struct forq_queue_stats {
    char name[FORQ_NAME_MAX + 1];
    uint64_t queued, running;
    uint64_t submitted, succeeded, failed, cancelled;
    uint64_t scheduled; /* waiting for a delay or a retry's backoff */
    uint64_t retried;   /* attempts retried since start */
    uint64_t blocked;   /* submissions waiting for room (forq_submit_opts.block_ms) */
    int paused;         /* 1: accepts jobs but starts none (forq_queue_pause()) */
    uint32_t limit;     /* most jobs of the queue running at once; 0 = no limit */
    char order[8];      /* "fifo" or "lifo": order within a priority */
};

struct forq_worker_stats {
    uint32_t slot;
    int32_t pid;
    char state[16]; /* "idle", "busy", "starting" or "retiring" */
    uint64_t job;   /* id of the job it runs; 0 when idle */
    uint64_t jobs_done;
    uint64_t restarts;
};

struct forq_stats {
    char server[64]; /* "forqd 0.1.0" */
    uint64_t uptime_ms;
    uint64_t connections;
    uint64_t queued, running;
    uint64_t submitted, succeeded, failed, cancelled;
    size_t nqueues;
    struct forq_queue_stats *queues;
    size_t nworkers;
    struct forq_worker_stats *workers;
    /* The job store (all 0 with durability off). */
    char durability[8];       /* "full", "normal" or "off" */
    uint64_t store_commits;   /* transactions committed since start */
    uint64_t store_fsyncs;    /* fsyncs they cost (group commit: far fewer than records) */
    uint64_t store_records;   /* job records written */
    uint64_t store_failures;  /* records the store could not write */
    uint64_t store_max_batch; /* most records in one transaction */
    uint64_t store_commit_us; /* total time spent committing */
    uint64_t store_purged;    /* expired results deleted */
    uint64_t scheduled;       /* jobs waiting for a delay or a retry's backoff */
    uint64_t retried;         /* attempts retried since start */
};

/* Fetch server statistics into *out (free with forq_stats_free()). */
FORQ_API int forq_stats(forq_client *c, struct forq_stats **out);
FORQ_API void forq_stats_free(struct forq_stats *s);

/* ------------------------------------------------------------------ queues */

/*
 * Queue control. queue is a queue name (1..FORQ_NAME_MAX bytes of
 * [A-Za-z0-9_.:-]); forqd creates a queue it does not know yet. Each call
 * answers with the queue's stats after the change, copied into *out when out
 * is not NULL (cleared first). Errors: FORQ_ERR_INVALID (a bad name or
 * argument, checked before anything is sent, or a closed client),
 * FORQ_ERR_BAD_REQUEST, FORQ_ERR_UNKNOWN_OP (a forqd without queue control),
 * FORQ_ERR_DISCONNECTED, FORQ_ERR_NOMEM. Thread-safe.
 */

/* The queue's stats, changing nothing. */
FORQ_API int forq_queue_info(forq_client *c, const char *queue, struct forq_queue_stats *out);

/*
 * Pause the queue: it keeps accepting jobs but starts none until resumed.
 * Jobs already running go on. Pausing a paused queue is not an error.
 */
FORQ_API int forq_queue_pause(forq_client *c, const char *queue, struct forq_queue_stats *out);

/* Resume a paused queue (a queue that is not paused: no change, no error). */
FORQ_API int forq_queue_resume(forq_client *c, const char *queue, struct forq_queue_stats *out);

/*
 * Configure the queue. limit: at most that many of its jobs run at once
 * (0: no limit; < 0: unchanged; at most 1,000,000). order: "fifo" (oldest
 * first within a priority, the default) or "lifo" (newest first); NULL:
 * unchanged. Both unchanged is FORQ_ERR_INVALID, as are an order other than
 * "fifo"/"lifo" and a limit over the maximum; nothing is sent then.
 */
FORQ_API int forq_queue_set(forq_client *c, const char *queue, int64_t limit, const char *order,
                            struct forq_queue_stats *out);

/*
 * Like JoinableQueue.join(): wait until the queue has no job queued,
 * scheduled or running (at once for an idle or unknown queue). Jobs
 * submitted meanwhile count too, so a queue that never drains never joins.
 * timeout_ms as everywhere (< 0: no limit, 0: check now). Returns 0, or
 * FORQ_ERR_TIMEOUT when timeout_ms passed first (the jobs go on), and the
 * codes above. The one request stays in flight for the whole wait; the
 * client adds a grace period to timeout_ms before it gives up on the answer
 * itself, and with no limit it waits as long as the server does.
 */
FORQ_API int forq_queue_join(forq_client *c, const char *queue, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* FORQ_H */
