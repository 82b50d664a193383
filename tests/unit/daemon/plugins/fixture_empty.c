/*
 * fixture_empty.c — test plugin (test_plugin.c): right ABI, but no tasks.
 */
#include "forq_task.h"

static const struct forq_plugin fixture_empty_plugin = {
    .abi_version = FORQ_TASK_ABI_VERSION,
    .name = "fixture-empty",
    .tasks = NULL,
    .ntasks = 0,
};

const struct forq_plugin *
forq_plugin_register(void)
{
    return &fixture_empty_plugin;
}
