/*
 * table_proxy - proxy tables through tern-proxymap (placeholder until issue
 * 14 lands it; see table_proxy.h).
 */
#include "table_impl.h"
#include "table_proxy.h"

static int table_proxy_on;

void table_proxy_default(int on)
{
    table_proxy_on = on;
}

int table_proxy_is_default(void)
{
    return table_proxy_on;
}

int table_open_proxy(struct table *t, const char *name, buf_t *err)
{
    buf_printf(err, "proxy: tables are not built yet");
    return -1;
}
