/*
 * local_rcpt - RCPT TO for a local domain must name a known local user or
 * alias when local_recipient_maps is set (see local_rcpt.h).  The address
 * is looked up in the DESIGN §6 order (user+ext@domain, user@domain,
 * user+ext, user, @domain); not found anywhere is 550 5.1.1, a table that
 * cannot answer is 451 4.3.0 (never a silent miss).
 */
#include <string.h>

#include "addr.h"
#include "config.h"
#include "local_rcpt.h"
#include "log.h"
#include "table.h"

static struct {
    int enabled;
    int opened;
    char *const *specs;
    size_t count;
    char *const *aliases;
    char *const *mydestination;
    const char *delimiter;
    struct table_list tables;
} local_rcpt;

/* local_rcpt_is_alias_map - spec is one of alias_maps */
static int local_rcpt_is_alias_map(const char *spec)
{
    for (char *const *a = local_rcpt.aliases; a && *a; a++)
        if (strcmp(*a, spec) == 0)
            return 1;
    return 0;
}

/* local_rcpt_open - open every table; 0 ok, -1 (logged) */
static int local_rcpt_open(void)
{
    buf_t err = BUF_INIT;
    struct table_list *l = &local_rcpt.tables;

    l->v = xcalloc(local_rcpt.count, sizeof(*l->v));
    for (l->count = 0; l->count < local_rcpt.count; l->count++) {
        const char *spec = local_rcpt.specs[l->count];
        int flags = local_rcpt_is_alias_map(spec) ? TABLE_ALIASES : 0;
        if ((l->v[l->count] = table_open(spec, flags, &err)) == NULL) {
            log_error("local_recipient_maps: %s", buf_cstr(&err));
            table_list_close(l);
            buf_free(&err);
            return -1;
        }
    }
    local_rcpt.opened = 1;
    buf_free(&err);
    return 0;
}

/* local_rcpt_init - see local_rcpt.h */
void local_rcpt_init(const struct config *cfg)
{
    local_rcpt.specs = config_list(cfg, "local_recipient_maps", &local_rcpt.count);
    local_rcpt.aliases = config_list(cfg, "alias_maps", NULL);
    local_rcpt.mydestination = config_list(cfg, "mydestination", NULL);
    local_rcpt.delimiter = config_str(cfg, "recipient_delimiter");
    local_rcpt.enabled = local_rcpt.count > 0;
    if (local_rcpt.enabled)
        (void)local_rcpt_open();
}

/* local_rcpt_check - see local_rcpt.h */
int local_rcpt_check(const char *addr, buf_t *reply)
{
    const char *domain = addr_domain(addr);
    buf_t value = BUF_INIT;
    enum table_result r;

    if (!local_rcpt.enabled || addr[0] == 0)
        return 0;
    if (domain != NULL && *domain && !addr_domain_in_list(domain, local_rcpt.mydestination))
        return 0;
    if (!local_rcpt.opened && local_rcpt_open() < 0)
        r = TABLE_TEMPFAIL;
    else
        r = table_lookup_addr(&local_rcpt.tables, addr, local_rcpt.delimiter, &value, NULL);
    buf_free(&value);
    if (r == TABLE_FOUND)
        return 0;
    if (r == TABLE_TEMPFAIL)
        buf_printf(reply, "451 4.3.0 <%s>: Temporary lookup failure", addr);
    else
        buf_printf(reply,
                   "550 5.1.1 <%s>: Recipient address rejected: User unknown in local "
                   "recipient table",
                   addr);
    return -1;
}
