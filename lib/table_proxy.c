/*
 * table_proxy - proxy tables through tern-proxymap (placeholder until issue
 * 14 lands it; see table_proxy.h).
 */
#include <stdlib.h>

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

/* ---- placeholder scope: nothing is ever pending (issue 14, i14-proxy) */

struct table_proxy_scope {
    int unused;
};

void table_proxy_configure(const struct config *cfg)
{
    (void)cfg;
}

struct table_proxy_scope *table_proxy_scope_new(void)
{
    return xcalloc(1, sizeof(struct table_proxy_scope));
}

void table_proxy_scope_free(struct table_proxy_scope *s)
{
    free(s);
}

void table_proxy_scope_reset(struct table_proxy_scope *s)
{
    (void)s;
}

void table_proxy_scope_enter(struct table_proxy_scope *s)
{
    (void)s;
}

void table_proxy_scope_leave(void)
{
}

int table_proxy_scope_pending(const struct table_proxy_scope *s)
{
    (void)s;
    return 0;
}

int table_proxy_scope_wait(struct table_proxy_scope *s, struct event_base *base,
                           void (*done)(void *ctx), void *ctx)
{
    (void)s;
    (void)base;
    (void)done;
    (void)ctx;
    return -1;
}

int table_proxy_scope_waiting(const struct table_proxy_scope *s)
{
    (void)s;
    return 0;
}

int table_is_remote(const struct table *t)
{
    (void)t;
    return 0;
}
