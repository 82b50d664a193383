/*
 * fixture_abi999.c — test plugin (test_plugin.c): well formed, but built for
 * a task ABI that does not exist; forqd must refuse it.
 */
#include "forq_task.h"

static int
fixture_abi999_ok(struct forq_task_io *io)
{
    return forq_task_set_result(io, "ok", 2);
}

static const struct forq_task_def fixture_abi999_tasks[] = {
    {.name = "fx_abi999", .fn = fixture_abi999_ok, .ctx = NULL},
};

static const struct forq_plugin fixture_abi999_plugin = {
    .abi_version = 999,
    .name = "fixture-abi999",
    .tasks = fixture_abi999_tasks,
    .ntasks = 1,
};

const struct forq_plugin *
forq_plugin_register(void)
{
    return &fixture_abi999_plugin;
}
