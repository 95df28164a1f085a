/*
 * table_ldap - the ldap: table type (placeholder until issue 14 lands it).
 */
#include "table_impl.h"

int table_open_ldap(struct table *t, const char *name, buf_t *err)
{
    buf_printf(err, "ldap: tables are not built yet");
    return -1;
}
