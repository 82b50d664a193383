/*
 * fixture_nosym.c — test plugin (test_plugin.c): a shared object without
 * forq_plugin_register (here misspelt), as a library that is not a plugin.
 */
#include "forq_task.h"

FORQ_API const struct forq_plugin *forq_plugin_regster(void);

const struct forq_plugin *
forq_plugin_regster(void)
{
    return NULL;
}
