/*
 * table_socketmap - the socketmap: table type (placeholder until issue 14 lands it).
 */
#include "table_impl.h"

int table_open_socketmap(struct table *t, const char *name, buf_t *err)
{
    buf_printf(err, "socketmap: tables are not built yet");
    return -1;
}
