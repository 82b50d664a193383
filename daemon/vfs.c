/*
 * vfs.c — an SQLite VFS that delegates to another one and reports syncs.
 *
 * Each file opened through it is a struct vfs_file, with the wrapped VFS's
 * own file right behind it (sqlite allocates szOsFile bytes for both). The
 * io methods forward every call; xSync asks the hook first.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "forq.h"
#include "vfs.h"

struct vfs {
    sqlite3_vfs vfs; /* first: sqlite hands this pointer back to us */
    sqlite3_vfs *base;
    vfs_sync_fn fn;
    void *arg;
    char *name;
};

struct vfs_file {
    sqlite3_file file; /* first; its pMethods is vfs_io */
    struct vfs *v;
    sqlite3_file *real; /* the wrapped VFS's file, right after this struct */
};

#define VFS_REAL(f) (((struct vfs_file *)(f))->real)

static int
vfs_close(sqlite3_file *f)
{
    return VFS_REAL(f)->pMethods->xClose(VFS_REAL(f));
}

static int
vfs_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return VFS_REAL(f)->pMethods->xRead(VFS_REAL(f), buf, n, off);
}

static int
vfs_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    return VFS_REAL(f)->pMethods->xWrite(VFS_REAL(f), buf, n, off);
}

static int
vfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return VFS_REAL(f)->pMethods->xTruncate(VFS_REAL(f), size);
}

static int
vfs_sync(sqlite3_file *f, int flags)
{
    struct vfs *v = ((struct vfs_file *)f)->v;
    int rc;

    if (v->fn != NULL && (rc = v->fn(v->arg)) != SQLITE_OK)
        return rc;
    return VFS_REAL(f)->pMethods->xSync(VFS_REAL(f), flags);
}

static int
vfs_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return VFS_REAL(f)->pMethods->xFileSize(VFS_REAL(f), size);
}

static int
vfs_lock(sqlite3_file *f, int level)
{
    return VFS_REAL(f)->pMethods->xLock(VFS_REAL(f), level);
}

static int
vfs_unlock(sqlite3_file *f, int level)
{
    return VFS_REAL(f)->pMethods->xUnlock(VFS_REAL(f), level);
}

static int
vfs_check_reserved(sqlite3_file *f, int *out)
{
    return VFS_REAL(f)->pMethods->xCheckReservedLock(VFS_REAL(f), out);
}

static int
vfs_file_control(sqlite3_file *f, int op, void *arg)
{
    return VFS_REAL(f)->pMethods->xFileControl(VFS_REAL(f), op, arg);
}

static int
vfs_sector_size(sqlite3_file *f)
{
    return VFS_REAL(f)->pMethods->xSectorSize(VFS_REAL(f));
}

static int
vfs_device_chars(sqlite3_file *f)
{
    return VFS_REAL(f)->pMethods->xDeviceCharacteristics(VFS_REAL(f));
}

/* Version 2 and 3 methods exist only when the wrapped file has them. */
static int
vfs_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **pp)
{
    const sqlite3_io_methods *m = VFS_REAL(f)->pMethods;

    if (m->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    return m->xShmMap(VFS_REAL(f), page, size, extend, pp);
}

static int
vfs_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    const sqlite3_io_methods *m = VFS_REAL(f)->pMethods;

    return m->iVersion < 2 ? SQLITE_IOERR_SHMLOCK : m->xShmLock(VFS_REAL(f), off, n, flags);
}

static void
vfs_shm_barrier(sqlite3_file *f)
{
    const sqlite3_io_methods *m = VFS_REAL(f)->pMethods;

    if (m->iVersion >= 2)
        m->xShmBarrier(VFS_REAL(f));
}

static int
vfs_shm_unmap(sqlite3_file *f, int del)
{
    const sqlite3_io_methods *m = VFS_REAL(f)->pMethods;

    return m->iVersion < 2 ? SQLITE_OK : m->xShmUnmap(VFS_REAL(f), del);
}

static int
vfs_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    const sqlite3_io_methods *m = VFS_REAL(f)->pMethods;

    if (m->iVersion < 3) {
        *pp = NULL; /* "no mapping": sqlite reads instead */
        return SQLITE_OK;
    }
    return m->xFetch(VFS_REAL(f), off, n, pp);
}

static int
vfs_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    const sqlite3_io_methods *m = VFS_REAL(f)->pMethods;

    return m->iVersion < 3 ? SQLITE_OK : m->xUnfetch(VFS_REAL(f), off, p);
}

static const sqlite3_io_methods vfs_io = {
    3,
    vfs_close,
    vfs_read,
    vfs_write,
    vfs_truncate,
    vfs_sync,
    vfs_file_size,
    vfs_lock,
    vfs_unlock,
    vfs_check_reserved,
    vfs_file_control,
    vfs_sector_size,
    vfs_device_chars,
    vfs_shm_map,
    vfs_shm_lock,
    vfs_shm_barrier,
    vfs_shm_unmap,
    vfs_fetch,
    vfs_unfetch,
};

static int
vfs_open(sqlite3_vfs *sv, sqlite3_filename name, sqlite3_file *f, int flags, int *out_flags)
{
    struct vfs *v = (struct vfs *)sv;
    struct vfs_file *vf = (struct vfs_file *)f;
    int rc;

    vf->v = v;
    vf->real = (sqlite3_file *)(vf + 1);
    rc = v->base->xOpen(v->base, name, vf->real, flags, out_flags);
    /* sqlite calls xClose only when pMethods is set, so set it only on success. */
    vf->file.pMethods = vf->real->pMethods != NULL ? &vfs_io : NULL;
    return rc;
}

static int
vfs_delete(sqlite3_vfs *sv, const char *name, int sync_dir)
{
    sqlite3_vfs *b = ((struct vfs *)sv)->base;

    return b->xDelete(b, name, sync_dir);
}

static int
vfs_access(sqlite3_vfs *sv, const char *name, int flags, int *out)
{
    sqlite3_vfs *b = ((struct vfs *)sv)->base;

    return b->xAccess(b, name, flags, out);
}

static int
vfs_full_pathname(sqlite3_vfs *sv, const char *name, int n, char *out)
{
    sqlite3_vfs *b = ((struct vfs *)sv)->base;

    return b->xFullPathname(b, name, n, out);
}

int
vfs_new(const char *base, const char *name, vfs_sync_fn fn, void *arg, struct vfs **out)
{
    sqlite3_vfs *b;
    struct vfs *v;

    *out = NULL;
    if (sqlite3_initialize() != SQLITE_OK)
        return FORQ_ERR_NOMEM;
    if ((b = sqlite3_vfs_find(base)) == NULL || sqlite3_vfs_find(name) != NULL)
        return FORQ_ERR_INVALID;
    if ((v = calloc(1, sizeof(*v))) == NULL || (v->name = strdup(name)) == NULL) {
        free(v);
        return FORQ_ERR_NOMEM;
    }
    /*
     * Start from a copy of the base, so the methods we do not wrap (dlopen,
     * randomness, time, system calls) are the base's own and take the base as
     * their first argument: they ignore it or use only its pAppData, which
     * the copy keeps.
     */
    v->vfs = *b;
    v->vfs.iVersion = b->iVersion < 3 ? b->iVersion : 3;
    v->vfs.szOsFile = (int)sizeof(struct vfs_file) + b->szOsFile;
    v->vfs.pNext = NULL;
    v->vfs.zName = v->name;
    v->vfs.xOpen = vfs_open;
    v->vfs.xDelete = vfs_delete;
    v->vfs.xAccess = vfs_access;
    v->vfs.xFullPathname = vfs_full_pathname;
    v->base = b;
    v->fn = fn;
    v->arg = arg;
    if (sqlite3_vfs_register(&v->vfs, 0) != SQLITE_OK) {
        vfs_free(v);
        return FORQ_ERR_NOMEM;
    }
    *out = v;
    return 0;
}

const char *
vfs_name(const struct vfs *v)
{
    return v->name;
}

void
vfs_free(struct vfs *v)
{
    if (v == NULL)
        return;
    sqlite3_vfs_unregister(&v->vfs);
    free(v->name);
    free(v);
}
