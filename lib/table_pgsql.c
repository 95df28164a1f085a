/*
 * table_pgsql - the pgsql: table type (placeholder until issue 14 lands it).
 */
#include "table_impl.h"

int table_open_pgsql(struct table *t, const char *name, buf_t *err)
{
    buf_printf(err, "pgsql: tables are not built yet");
    return -1;
}
