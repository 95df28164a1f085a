/*
 * fuzz_table_cf - libFuzzer target for lib/table_cf: a remote table's
 * NAME.cf file (written by admins, often converted by scripts).  Byte 0
 * chooses the view (even: ldap, odd: pgsql), the rest is the file.  An
 * accepted file has unique keys of [A-Za-z0-9_], values without line breaks
 * within the bounds; a loaded view has at least one server/host, each with
 * a host or socket path and a port in range; every refusal has a message
 * naming the file, and no message shows a password of 8 bytes or more.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "table_cf.h"

/* fuzz_cf_check_entries - the promises of table_cf_parse */
static void fuzz_cf_check_entries(const struct table_cf *cf)
{
    if (cf->count > TABLE_CF_ENTRIES_MAX)
        abort();
    for (size_t i = 0; i < cf->count; i++) {
        const char *k = cf->v[i].key, *v = cf->v[i].value;
        if (k[0] == '\0' || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789_") != strlen(k))
            abort();
        if (v == NULL || strchr(v, '\n') || strlen(v) >= TABLE_CF_VALUE_MAX)
            abort();
        if (table_cf_get(cf, k) != &cf->v[i])
            abort();
    }
}

/* fuzz_cf_elsewhere - s is also part of a key or of another value */
static int fuzz_cf_elsewhere(const struct table_cf *cf, const struct table_cf_entry *secret,
                             const char *s)
{
    for (size_t i = 0; i < cf->count; i++)
        if (strstr(cf->v[i].key, s) || (&cf->v[i] != secret && strstr(cf->v[i].value, s)))
            return 1;
    return 0;
}

/* fuzz_cf_check_err - a refusal names the file and hides the password
 * (unless the same text is also written in a setting the message quotes) */
static void fuzz_cf_check_err(const struct table_cf *cf, const buf_t *err)
{
    static const char *const secrets[] = {"bind_pw", "password"};

    if (strncmp(buf_cstr(err), "fuzz.cf", 7) != 0)
        abort();
    for (size_t i = 0; i < 2; i++) {
        const struct table_cf_entry *e = table_cf_get(cf, secrets[i]);
        if (e != NULL && strlen(e->value) >= 8 && strstr(buf_cstr(err), e->value) != NULL &&
            !fuzz_cf_elsewhere(cf, e, e->value))
            abort();
    }
}

/* fuzz_cf_ldap - load the ldap view and check it */
static void fuzz_cf_ldap(const struct table_cf *cf, buf_t *err)
{
    struct table_ldap_cf c;

    if (table_ldap_cf_load(&c, cf, err) < 0) {
        fuzz_cf_check_err(cf, err);
        return;
    }
    if (c.servers.count == 0 || c.timeout < 1 || c.version < 2 || c.version > 3)
        abort();
    for (size_t i = 0; i < c.servers.count; i++) {
        const struct table_ldap_server *s = &c.servers.v[i];
        if (strncmp(s->url, "ldap", 4) != 0 || s->port > 65535 ||
            (s->scheme != TABLE_LDAP_LDAPI && (s->host[0] == '\0' || s->port == 0)))
            abort();
    }
    table_ldap_cf_free(&c);
}

/* fuzz_cf_pgsql - load the pgsql view and check it */
static void fuzz_cf_pgsql(const struct table_cf *cf, buf_t *err)
{
    struct table_pgsql_cf c;

    if (table_pgsql_cf_load(&c, cf, err) < 0) {
        fuzz_cf_check_err(cf, err);
        return;
    }
    if (c.hosts.count == 0 || c.dbname[0] == '\0' || c.query[0] == '\0')
        abort();
    for (size_t i = 0; i < c.hosts.count; i++) {
        const struct table_pgsql_host *h = &c.hosts.v[i];
        if (h->host[0] == '\0' || h->port > 65535 || (h->is_unix ? h->host[0] != '/' : !h->port))
            abort();
    }
    table_pgsql_cf_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;

    if (size == 0)
        return 0;
    if (table_cf_parse(&cf, "fuzz.cf", (const char *)data + 1, size - 1, &err) < 0) {
        if (err.len == 0)
            abort();
    } else {
        fuzz_cf_check_entries(&cf);
        buf_reset(&err);
        if (table_cf_check_mode(&cf, 0644, &err) < 0)
            fuzz_cf_check_err(&cf, &err);
        buf_reset(&err);
        if (data[0] & 1)
            fuzz_cf_pgsql(&cf, &err);
        else
            fuzz_cf_ldap(&cf, &err);
    }
    table_cf_free(&cf);
    buf_free(&err);
    return 0;
}
