/*
 * fixture_null.c — test plugin (test_plugin.c): its registration function
 * declines by returning NULL.
 */
#include "forq_task.h"

const struct forq_plugin *
forq_plugin_register(void)
{
    return NULL;
}
