/*
 * plugin.c — task plugins: dlopen() a shared object, ask it for its task
 * table through FORQ_PLUGIN_SYMBOL and add the tasks to forqd's table.
 *
 * Main thread, start-up only, before the workers fork. A plugin that fails
 * any check is closed again and leaves the table as it found it; one that
 * loads stays for the life of the process.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "plugin.h"

/* dlerror() text without the leading "PATH: " (the caller names the file itself). */
static const char *
plugin_dlerror(const char *path)
{
    const char *e = dlerror();
    size_t n = strlen(path);

    if (e == NULL)
        return "unknown error";
    if (strncmp(e, path, n) == 0 && e[n] == ':' && e[n + 1] == ' ')
        return e + n + 2;
    return e;
}

/* Check the plugin's answer and add its tasks; on failure t is as it was. */
static int
plugin_add(struct task_table *t, const char *path, const struct forq_plugin *p, char *why,
           size_t whylen)
{
    size_t before = t->ntasks;
    const char *name;
    int r;

    if (p == NULL) {
        snprintf(why, whylen, "%s: %s() returned NULL", path, FORQ_PLUGIN_SYMBOL);
        return FORQ_ERR_INVALID;
    }
    if (p->abi_version != FORQ_TASK_ABI_VERSION) {
        snprintf(why, whylen, "%s: built for task ABI version %u; this forqd loads version %d",
                 path, (unsigned)p->abi_version, FORQ_TASK_ABI_VERSION);
        return FORQ_ERR_INVALID;
    }
    if (p->ntasks == 0 || p->tasks == NULL) {
        snprintf(why, whylen, "%s: declares no tasks", path);
        return FORQ_ERR_INVALID;
    }
    for (size_t i = 0; i < p->ntasks; i++) {
        name = p->tasks[i].name != NULL ? p->tasks[i].name : "(null)";
        if (p->tasks[i].name == NULL || p->tasks[i].fn == NULL)
            r = FORQ_ERR_INVALID;
        else
            r = task_table_add_ctx(t, p->tasks[i].name, p->tasks[i].fn, p->tasks[i].ctx);
        if (r == 0)
            continue;
        if (r == FORQ_ERR_LIMIT)
            snprintf(why, whylen, "%s: task '%s': the task table is full (%d tasks)", path, name,
                     TASK_MAX);
        else if (p->tasks[i].name != NULL && p->tasks[i].fn == NULL)
            snprintf(why, whylen, "%s: task '%s': no function", path, name);
        else
            snprintf(why, whylen, "%s: task '%.*s': invalid name or already defined", path,
                     FORQ_NAME_MAX + 1, name);
        memset(&t->defs[before], 0, (t->ntasks - before) * sizeof(t->defs[0]));
        t->ntasks = before;
        return r;
    }
    return 0;
}

int
plugin_load(struct task_table *t, const char *path, char *why, size_t whylen)
{
    forq_plugin_register_fn reg;
    const struct forq_plugin *p;
    void *h, *sym;
    int r;

    /* Without a '/', dlopen would search the library path: never what was meant. */
    if (strchr(path, '/') == NULL) {
        snprintf(why, whylen, "%s: a plugin must be given as a path (e.g. ./%s)", path, path);
        return FORQ_ERR_INVALID;
    }
    if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        snprintf(why, whylen, "%s: cannot load: %s", path, plugin_dlerror(path));
        return FORQ_ERR_INVALID;
    }
    (void)dlerror();
    if ((sym = dlsym(h, FORQ_PLUGIN_SYMBOL)) == NULL) {
        snprintf(why, whylen, "%s: no function %s(): not a forq task plugin", path,
                 FORQ_PLUGIN_SYMBOL);
        dlclose(h);
        return FORQ_ERR_INVALID;
    }
    /* POSIX's way from a dlsym() result to a function pointer. */
    memcpy(&reg, &sym, sizeof(reg));
    p = reg();
    if ((r = plugin_add(t, path, p, why, whylen)) != 0) {
        dlclose(h);
        return r;
    }
    log_info("plugin %s (%s): %zu task%s", p->name != NULL ? p->name : "(unnamed)", path, p->ntasks,
             p->ntasks == 1 ? "" : "s");
    return 0;
}
