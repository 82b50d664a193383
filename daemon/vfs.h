/*
 * vfs.h — a thin SQLite VFS that wraps another one and sees every sync.
 *
 * The store uses it to count the fsyncs its commits cost (the figure that
 * shows group commit working); tests stack one more on top that fails syncs
 * on demand, so "a failed fsync is never reported as success" is checked
 * against real SQLite rather than a mock. Every other file operation goes
 * straight to the wrapped VFS.
 */
#ifndef FORQ_VFS_H
#define FORQ_VFS_H

struct vfs;

/*
 * Called before each xSync on any file opened through the VFS (database,
 * WAL, journal), on whatever thread runs sqlite. Return 0 to let the sync
 * run, or an SQLite error code (e.g. SQLITE_IOERR_FSYNC) to report instead.
 */
typedef int (*vfs_sync_fn)(void *arg);

/*
 * Register a VFS named name (copied) that wraps base (NULL: the default VFS).
 * It is not made the default. Returns 0 with *out, FORQ_ERR_INVALID (no such
 * base, or the name is taken) or FORQ_ERR_NOMEM. Not thread-safe against
 * other registrations; forqd registers at start-up.
 */
int vfs_new(const char *base, const char *name, vfs_sync_fn fn, void *arg, struct vfs **out);

/* Its registered name, for sqlite3_open_v2. */
const char *vfs_name(const struct vfs *v);

/* Unregister and free. Every connection using it must be closed. NULL is a no-op. */
void vfs_free(struct vfs *v);

#endif /* FORQ_VFS_H */
