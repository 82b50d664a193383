/*
 * fixture_badname.c — test plugin (test_plugin.c): a valid task followed by
 * one with an invalid name, so that a refusal must also take back the task
 * already added.
 */
#include "forq_task.h"

static int
fixture_badname_ok(struct forq_task_io *io)
{
    return forq_task_set_result(io, "ok", 2);
}

static const struct forq_task_def fixture_badname_tasks[] = {
    {.name = "fx_good", .fn = fixture_badname_ok, .ctx = NULL},
    {.name = "bad name", .fn = fixture_badname_ok, .ctx = NULL},
};

static const struct forq_plugin fixture_badname_plugin = {
    .abi_version = FORQ_TASK_ABI_VERSION,
    .name = "fixture-badname",
    .tasks = fixture_badname_tasks,
    .ntasks = 2,
};

const struct forq_plugin *
forq_plugin_register(void)
{
    return &fixture_badname_plugin;
}
