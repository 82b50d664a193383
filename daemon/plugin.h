/*
 * plugin.h — task plugins: shared objects that add tasks through the ABI of
 * include/forq_task.h.
 *
 * plugin_load dlopen()s a plugin, calls its FORQ_PLUGIN_SYMBOL function once
 * and adds its tasks to the table. It runs in forqd before the workers fork,
 * so every worker inherits the loaded code. Plugins are never unloaded.
 */
#ifndef FORQ_PLUGIN_H
#define FORQ_PLUGIN_H

#include <stddef.h>

#include "task.h"

/*
 * Load the plugin at path and add its tasks to t. Returns 0, or
 * FORQ_ERR_INVALID with a one-line reason naming the file in why: it cannot be
 * loaded (dlerror), has no registration function, returns NULL, was built for
 * another FORQ_TASK_ABI_VERSION ("built for task ABI version 7; this forqd
 * loads version 1"), or declares a bad or duplicate task name; or
 * FORQ_ERR_LIMIT (task table full).
 */
int plugin_load(struct task_table *t, const char *path, char *why, size_t whylen);

#endif /* FORQ_PLUGIN_H */
