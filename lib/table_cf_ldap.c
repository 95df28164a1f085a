/*
 * table_cf_ldap - the ldap:/PATH.cf view (ldap_table(5)); see table_cf.h
 * for the settings, their defaults and where tern departs from Postfix.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "table_cf.h"
#include "table_cf_impl.h"

#define LDAP_FIELD(name, kind, init, min, max, words)                                              \
    {                                                                                              \
#name, kind, offsetof(struct table_ldap_cf, name), init, min, max, words                   \
    }
#define LDAP_REFUSED(name, why)                                                                    \
    {                                                                                              \
        name, TABLE_CF_REFUSED, 0, NULL, 0, 0, why                                                 \
    }

static const struct table_cf_field ldap_fields[] = {
    {"server_host", TABLE_CF_OWN, 0, NULL, 0, 0, NULL},
    LDAP_FIELD(server_port, TABLE_CF_INT, "389", 1, 65535, NULL),
    LDAP_FIELD(search_base, TABLE_CF_EXPAND, "", 0, 0, NULL),
    LDAP_FIELD(query_filter, TABLE_CF_EXPAND, "(mailacceptinggeneralid=%s)", 0, 0, NULL),
    LDAP_FIELD(result_format, TABLE_CF_EXPAND_RESULT, "%s", 0, 0, NULL),
    LDAP_FIELD(result_attribute, TABLE_CF_LIST, "maildrop", 0, 0, NULL),
    LDAP_FIELD(special_result_attribute, TABLE_CF_LIST, "", 0, 0, NULL),
    LDAP_FIELD(leaf_result_attribute, TABLE_CF_LIST, "", 0, 0, NULL),
    LDAP_FIELD(scope, TABLE_CF_WORD, "sub", 0, 0, "sub one base"),
    LDAP_FIELD(bind, TABLE_CF_WORD, "yes", 0, 0, "no yes sasl"),
    LDAP_FIELD(bind_dn, TABLE_CF_STR, "", 0, 0, NULL),
    LDAP_FIELD(bind_pw, TABLE_CF_STR, "", 0, 0, NULL),
    LDAP_FIELD(start_tls, TABLE_CF_WORD, "no", 0, 0, "no yes"),
    LDAP_FIELD(tls_ca_cert_file, TABLE_CF_STR, "", 0, 0, NULL),
    LDAP_FIELD(tls_require_cert, TABLE_CF_WORD, "no", 0, 0, "no yes"),
    LDAP_FIELD(timeout, TABLE_CF_INT, "10", 1, 3600, NULL),
    LDAP_FIELD(size_limit, TABLE_CF_INT, "0", 0, 1000000, NULL),
    LDAP_FIELD(domain, TABLE_CF_DOMAINS, "", 0, 0, NULL),
    LDAP_FIELD(dereference, TABLE_CF_INT, "0", 0, 3, NULL),
    LDAP_FIELD(version, TABLE_CF_INT, "3", 2, 3, NULL),
    LDAP_FIELD(expansion_limit, TABLE_CF_INT, "0", 0, 100000, NULL),
    LDAP_FIELD(recursion_limit, TABLE_CF_INT, "1000", 1, 100000, NULL),
    LDAP_REFUSED("terminal_result_attribute", "not implemented yet; use result_attribute"),
    LDAP_REFUSED("chase_referrals", "referrals are not followed (a lookup stays on the servers "
                                    "in server_host)"),
    LDAP_REFUSED("debuglevel", "use tern's own logging (`tern trace` shows remote lookups)"),
    LDAP_REFUSED("tls_ca_cert_dir", "not implemented yet; use tls_ca_cert_file"),
    LDAP_REFUSED("tls_cert", "client certificates are not implemented yet; use bind_dn/bind_pw"),
    LDAP_REFUSED("tls_key", "client certificates are not implemented yet; use bind_dn/bind_pw"),
    LDAP_REFUSED("tls_random_file", "OpenSSL seeds itself"),
    LDAP_REFUSED("tls_cipher_suite", "tern uses the system's OpenSSL defaults"),
    LDAP_REFUSED("sasl_mechs", "bind = sasl is not supported yet"),
    LDAP_REFUSED("sasl_realm", "bind = sasl is not supported yet"),
    LDAP_REFUSED("sasl_authz_id", "bind = sasl is not supported yet"),
    LDAP_REFUSED("sasl_minssf", "bind = sasl is not supported yet"),
    LDAP_REFUSED("cache", "the lookup service (tern-proxymap) caches; see docs/remote-tables.md"),
    LDAP_REFUSED("cache_expiry", "the lookup service (tern-proxymap) caches"),
    LDAP_REFUSED("cache_size", "the lookup service (tern-proxymap) caches"),
};

#define LDAP_NFIELDS (sizeof(ldap_fields) / sizeof(ldap_fields[0]))

static const struct {
    const char *prefix;
    enum table_ldap_scheme scheme;
    unsigned port;
} ldap_schemes[] = {
    {"ldap://", TABLE_LDAP_LDAP, 389},
    {"ldaps://", TABLE_LDAP_LDAPS, 636},
    {"ldapi://", TABLE_LDAP_LDAPI, 0},
};

/* ldap_socket_path - decode ldapi://'s %2F-encoded socket path */
static int ldap_socket_path(const char *s, struct table_ldap_server *srv)
{
    buf_t path = BUF_INIT, url = BUF_INIT;
    size_t n = strlen(s);

    if (n > 0 && s[n - 1] == '/')
        n--;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            c = (int)strtol(hex, NULL, 16);
            i += 2;
        } else if (c == '%' || c == '/' || c == '?') {
            c = 0;
        }
        if (c <= ' ' || c >= 127) {
            buf_free(&path);
            return -1;
        }
        buf_putc(&path, c);
    }
    srv->host = xstrdup(buf_cstr(&path));
    buf_free(&path);
    buf_printf(&url, "ldapi://%.*s/", (int)n, s);
    srv->url = buf_steal(&url);
    return 0;
}

/* ldap_url_host - "host[:port][/]" after ldap:// or ldaps:// */
static int ldap_url_host(const char *s, struct table_ldap_server *srv)
{
    size_t n = strlen(s);
    char *hp;

    if (n > 0 && s[n - 1] == '/')
        n--;
    hp = xstrndup(s, n);
    int rc = strchr(hp, '/') || strchr(hp, '?')
                 ? -1
                 : table_cf_split_host_port(hp, &srv->host, &srv->port);
    free(hp);
    return rc;
}

/* ldap_server_url - the normalised URL of a host server */
static void ldap_server_url(struct table_ldap_server *srv)
{
    buf_t url = BUF_INIT;
    int v6 = strchr(srv->host, ':') != NULL;

    buf_printf(&url, "%s%s%s%s:%u/", ldap_schemes[srv->scheme].prefix, v6 ? "[" : "", srv->host,
               v6 ? "]" : "", srv->port);
    srv->url = buf_steal(&url);
}

/* ldap_server_parse - one item of server_host */
static int ldap_server_parse(const char *item, unsigned server_port, struct table_ldap_server *srv)
{
    memset(srv, 0, sizeof(*srv));
    srv->scheme = TABLE_LDAP_LDAP;
    srv->port = server_port;
    for (size_t i = 0; i < sizeof(ldap_schemes) / sizeof(ldap_schemes[0]); i++) {
        size_t plen = strlen(ldap_schemes[i].prefix);
        if (strncasecmp(item, ldap_schemes[i].prefix, plen) != 0)
            continue;
        srv->scheme = ldap_schemes[i].scheme;
        srv->port = ldap_schemes[i].port;
        if (srv->scheme == TABLE_LDAP_LDAPI)
            return ldap_socket_path(item + plen, srv);
        if (ldap_url_host(item + plen, srv) < 0)
            return -1;
        ldap_server_url(srv);
        return 0;
    }
    if (strstr(item, "://") != NULL || table_cf_split_host_port(item, &srv->host, &srv->port) < 0)
        return -1;
    ldap_server_url(srv);
    return 0;
}

/* ldap_servers_free - free server_host's list */
static void ldap_servers_free(struct table_ldap_servers *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->v[i].host);
        free(s->v[i].url);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ldap_servers_load - server_host, default localhost */
static int ldap_servers_load(struct table_ldap_cf *c, const struct table_cf *cf, buf_t *err)
{
    struct table_cf_list items = {NULL, 0};
    int rc = table_cf_list_get(cf, "server_host", "localhost", &items, err);

    c->servers.v = xcalloc(items.count + 1, sizeof(*c->servers.v));
    for (size_t i = 0; i < items.count && rc == 0; i++) {
        rc = ldap_server_parse(items.v[i], c->server_port, &c->servers.v[i]);
        c->servers.count = i + 1;
        if (rc < 0) {
            table_cf_where(err, cf, "server_host");
            buf_puts(err, ": server_host: ");
            table_cf_quote(err, items.v[i]);
            buf_puts(err,
                     " is not a host[:port], [v6addr]:port, ldap://, ldaps:// or ldapi:// URL");
        }
    }
    table_cf_list_free(&items);
    return rc;
}

/* ldap_check - the combinations tern refuses */
static int ldap_check(const struct table_ldap_cf *c, const struct table_cf *cf, buf_t *err)
{
    if (c->bind == 2)
        return table_cf_refuse(
            cf, "bind", "bind = sasl is not supported yet; use bind = yes with bind_dn and bind_pw",
            err);
    if (c->start_tls && c->version < 3)
        return table_cf_refuse(cf, "start_tls", "start_tls needs version = 3", err);
    if (c->bind == 1 && c->bind_dn[0] == '\0' && c->bind_pw[0] != '\0')
        return table_cf_refuse(cf, "bind_pw", "bind_pw without bind_dn", err);
    for (size_t i = 0; c->start_tls && i < c->servers.count; i++)
        if (c->servers.v[i].scheme != TABLE_LDAP_LDAP)
            return table_cf_refuse(
                cf, "start_tls",
                "start_tls works on ldap:// servers only (ldaps:// is TLS already)", err);
    return 0;
}

int table_ldap_cf_load(struct table_ldap_cf *c, const struct table_cf *cf, buf_t *err)
{
    memset(c, 0, sizeof(*c));
    if (table_cf_fields_load(c, ldap_fields, LDAP_NFIELDS, cf, "ldap", err) < 0 ||
        ldap_servers_load(c, cf, err) < 0 || ldap_check(c, cf, err) < 0) {
        table_ldap_cf_free(c);
        return -1;
    }
    return 0;
}

void table_ldap_cf_free(struct table_ldap_cf *c)
{
    table_cf_fields_free(c, ldap_fields, LDAP_NFIELDS);
    ldap_servers_free(&c->servers);
}
