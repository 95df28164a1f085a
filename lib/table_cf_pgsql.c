/*
 * table_cf_pgsql - the pgsql:/PATH.cf view (pgsql_table(5)); see
 * table_cf.h for the settings, their defaults and where tern departs from
 * Postfix.
 */
#include <stdlib.h>
#include <string.h>

#include "table_cf.h"
#include "table_cf_impl.h"

#define PGSQL_FIELD(name, kind, init, min, max)                                                    \
    {                                                                                              \
#name, kind, offsetof(struct table_pgsql_cf, name), init, min, max, NULL                   \
    }
#define PGSQL_REFUSED(name, why)                                                                   \
    {                                                                                              \
        name, TABLE_CF_REFUSED, 0, NULL, 0, 0, why                                                 \
    }
#define PGSQL_LEGACY "the pre-2.2 form is not supported; write the whole statement in query"

static const struct table_cf_field pgsql_fields[] = {
    {"hosts", TABLE_CF_OWN, 0, NULL, 0, 0, NULL},
    PGSQL_FIELD(dbname, TABLE_CF_STR, NULL, 0, 0),
    PGSQL_FIELD(user, TABLE_CF_STR, "", 0, 0),
    PGSQL_FIELD(password, TABLE_CF_STR, "", 0, 0),
    PGSQL_FIELD(query, TABLE_CF_EXPAND, NULL, 0, 0),
    PGSQL_FIELD(result_format, TABLE_CF_EXPAND_RESULT, "%s", 0, 0),
    PGSQL_FIELD(domain, TABLE_CF_DOMAINS, "", 0, 0),
    PGSQL_FIELD(expansion_limit, TABLE_CF_INT, "0", 0, 100000),
    PGSQL_FIELD(timeout, TABLE_CF_INT, "10", 1, 3600),
    PGSQL_FIELD(encoding, TABLE_CF_STR, "UTF8", 0, 0),
    PGSQL_REFUSED("select_field", PGSQL_LEGACY),
    PGSQL_REFUSED("table", PGSQL_LEGACY),
    PGSQL_REFUSED("where_field", PGSQL_LEGACY),
    PGSQL_REFUSED("additional_conditions", PGSQL_LEGACY),
    PGSQL_REFUSED("select_function", "write \"query = SELECT function('%s')\" instead"),
    PGSQL_REFUSED("idle_interval", "the lookup service (tern-proxymap) keeps its own pool"),
    PGSQL_REFUSED("retry_interval", "the lookup service (tern-proxymap) keeps its own pool"),
};

#define PGSQL_NFIELDS (sizeof(pgsql_fields) / sizeof(pgsql_fields[0]))

/* pgsql_host_parse - one item of hosts */
static int pgsql_host_parse(const char *item, struct table_pgsql_host *h)
{
    memset(h, 0, sizeof(*h));
    if (strncmp(item, "unix:", 5) == 0) {
        const char *dir = item + 5;
        if (dir[0] != '/' || strpbrk(dir, "\"'\\=") != NULL)
            return -1;
        h->is_unix = 1;
        h->host = xstrdup(dir);
        return 0;
    }
    if (strncmp(item, "inet:", 5) == 0)
        item += 5;
    if (strstr(item, "://") != NULL)
        return -1;
    h->port = 5432;
    return table_cf_split_host_port(item, &h->host, &h->port);
}

/* pgsql_hosts_free - free hosts' list */
static void pgsql_hosts_free(struct table_pgsql_hosts *hs)
{
    for (size_t i = 0; i < hs->count; i++)
        free(hs->v[i].host);
    free(hs->v);
    memset(hs, 0, sizeof(*hs));
}

/* pgsql_host_error - the message for a bad item of hosts */
static void pgsql_host_error(buf_t *err, const struct table_cf *cf, const char *item)
{
    table_cf_where(err, cf, "hosts");
    buf_puts(err, ": hosts: ");
    table_cf_quote(err, item);
    if (strstr(item, "://") != NULL)
        buf_puts(err, ": postgresql:// URIs are not supported yet; write host:port and dbname");
    else
        buf_puts(err, " is not host, host:port, [v6addr]:port, inet:host:port or unix:/dir");
}

/* pgsql_hosts_load - hosts, default localhost */
static int pgsql_hosts_load(struct table_pgsql_cf *c, const struct table_cf *cf, buf_t *err)
{
    struct table_cf_list items = {NULL, 0};
    int rc = table_cf_list_get(cf, "hosts", "localhost", &items, err);

    c->hosts.v = xcalloc(items.count + 1, sizeof(*c->hosts.v));
    for (size_t i = 0; i < items.count && rc == 0; i++) {
        rc = pgsql_host_parse(items.v[i], &c->hosts.v[i]);
        c->hosts.count = i + 1;
        if (rc < 0)
            pgsql_host_error(err, cf, items.v[i]);
    }
    table_cf_list_free(&items);
    return rc;
}

/* pgsql_check - the combinations tern refuses */
static int pgsql_check(const struct table_pgsql_cf *c, const struct table_cf *cf, buf_t *err)
{
    const char *name_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

    if (c->dbname[0] == '\0')
        return table_cf_refuse(cf, "dbname", "dbname is empty", err);
    if (c->query[0] == '\0')
        return table_cf_refuse(cf, "query", "query is empty", err);
    if (c->encoding[0] == '\0' || strspn(c->encoding, name_chars) != strlen(c->encoding))
        return table_cf_refuse(cf, "encoding", "encoding is not a PostgreSQL encoding name", err);
    return 0;
}

int table_pgsql_cf_load(struct table_pgsql_cf *c, const struct table_cf *cf, buf_t *err)
{
    memset(c, 0, sizeof(*c));
    if (table_cf_fields_load(c, pgsql_fields, PGSQL_NFIELDS, cf, "pgsql", err) < 0 ||
        pgsql_hosts_load(c, cf, err) < 0 || pgsql_check(c, cf, err) < 0) {
        table_pgsql_cf_free(c);
        return -1;
    }
    return 0;
}

void table_pgsql_cf_free(struct table_pgsql_cf *c)
{
    table_cf_fields_free(c, pgsql_fields, PGSQL_NFIELDS);
    pgsql_hosts_free(&c->hosts);
}
