/*
 * reload.h — SIGHUP: read the settings again (the same command line, the
 * config file as it is now) and apply what can change while forqd runs.
 *
 * Applied at once: log_level, max_connections, max_inflight, max_queued,
 * max_queues, max_watch_ids (to the next WATCH; watches already open are
 * kept, even past a lowered limit), max_name, result_ttl, result_cache,
 * retry_backoff_ms, retry_backoff_max_ms, drain_timeout_ms, and the
 * [queue.NAME] sections.
 * Applied to the jobs handed out from now on: worker_batch.
 * Applied to workers started from now on: max_jobs_per_worker, memory_limit.
 * Tasks (plugins and [task.NAME]): when they changed, the table is rebuilt
 * and every worker is replaced between jobs (jobs_reconfigure); connections
 * and jobs are not touched. Needing a restart, and so kept at their running
 * value with a warning: listen, workers, data, durability, max_db_size,
 * max_frame, max_payload, max_result, metrics_listen.
 *
 * A file with an error changes nothing: the error is logged with its
 * file:line and forqd goes on with the settings it has. Loop thread only.
 */
#ifndef FORQ_RELOAD_H
#define FORQ_RELOAD_H

struct server;

/* Returns 0 when the new settings are in effect, else the FORQ_ERR_* of the failure. */
int reload_run(struct server *srv);

#endif /* FORQ_RELOAD_H */
