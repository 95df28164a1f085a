/*
 * table_ldap - the ldap: table type, opened directly (tern-proxymap and
 * the tools; see table_proxy.h): ldap:/PATH.cf as Postfix's ldap_table(5)
 * describes it (settings: table_cf.h, docs/remote-tables.md).
 *
 * A lookup is one synchronous search with OpenLDAP's libldap, bounded by the
 * file's timeout.  The connection is made at the first lookup, trying the
 * server_host entries in the order written, and kept; a server or
 * connection error during a search drops it and retries once, starting at
 * the next server.  The filter is expanded with RFC 4515 escaping and the
 * base with RFC 4514 escaping, so no byte of a key changes the question.
 *
 * Results follow Postfix: the values of result_attribute, each expanded
 * through result_format, joined with ","; special_result_attribute values
 * are DNs searched in turn (base scope, up to recursion_limit deep);
 * leaf_result_attribute values count only in entries without special
 * attributes.  More results than expansion_limit, more entries than
 * size_limit, a server that cannot be reached: TABLE_TEMPFAIL, with one
 * log line naming the table (never the bind password).
 *
 * No static mutable state: each struct table holds its own connection and
 * is used by one thread at a time.
 */
#include <ldap.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "table_cf.h"
#include "table_expand.h"
#include "table_impl.h"

struct ldap_table {
    struct table_ldap_cf cf;
    char **attrs;          /* leaf, result, then special attributes; NULL-terminated */
    size_t num_leaf;       /* attrs[0..num_leaf) are leaf_result_attribute */
    size_t num_attributes; /* attrs[0..num_attributes) are leaf + result */
    LDAP *ld;              /* NULL until the first lookup, or after an error */
    size_t server;         /* the index of the server ld talks to */
};

/* the state of one lookup */
struct ldap_lookup {
    struct ldap_table *lt;
    const char *key;
    buf_t *value;
    size_t expansions;
    int failed; /* a temporary failure: the lookup is TABLE_TEMPFAIL */
    int lost;   /* the connection failed: drop it when the lookup is done */
    buf_t *why; /* the reason, when failed */
};

static const int ldap_table_scopes[] = {
    [TABLE_LDAP_SCOPE_SUB] = LDAP_SCOPE_SUBTREE,
    [TABLE_LDAP_SCOPE_ONE] = LDAP_SCOPE_ONELEVEL,
    [TABLE_LDAP_SCOPE_BASE] = LDAP_SCOPE_BASE,
};

/* ldap_table_drop - forget the connection */
static void ldap_table_drop(struct ldap_table *lt)
{
    if (lt->ld != NULL)
        ldap_unbind_ext_s(lt->ld, NULL, NULL);
    lt->ld = NULL;
}

/* ldap_table_set_options - the per-connection options; -1 names the one
 * libldap refused */
static int ldap_table_set_options(const struct table_ldap_cf *c, LDAP *ld, int tls, buf_t *why)
{
    struct timeval tv = {c->timeout, 0};
    int require = c->tls_require_cert ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
    int zero = 0;
    const char *failed = NULL;

    if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &c->version) != LDAP_OPT_SUCCESS)
        failed = "protocol version";
    else if (ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
             ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS)
        failed = "timeout";
    else if (ldap_set_option(ld, LDAP_OPT_DEREF, &c->dereference) != LDAP_OPT_SUCCESS ||
             ldap_set_option(ld, LDAP_OPT_SIZELIMIT, &c->size_limit) != LDAP_OPT_SUCCESS ||
             ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS)
        failed = "search options";
    else if (tls &&
             ((c->tls_ca_cert_file[0] != '\0' &&
               ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->tls_ca_cert_file) !=
                   LDAP_OPT_SUCCESS) ||
              ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS ||
              ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS))
        failed = "TLS options";
    if (failed != NULL)
        buf_printf(why, "cannot set the %s", failed);
    return failed ? -1 : 0;
}

/* ldap_table_bind - the simple bind of bind_dn (anonymous when empty) */
static int ldap_table_bind(const struct table_ldap_cf *c, LDAP *ld)
{
    struct berval cred;

    cred.bv_val = c->bind_pw;
    cred.bv_len = strlen(c->bind_pw);
    return ldap_sasl_bind_s(ld, c->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* ldap_table_connect_one - a ready (TLS, bound) connection to server s */
static LDAP *ldap_table_connect_one(const struct table_ldap_cf *c,
                                    const struct table_ldap_server *s, buf_t *why)
{
    int tls = c->start_tls || s->scheme == TABLE_LDAP_LDAPS;
    const char *step = "initialize";
    LDAP *ld = NULL;
    int rc;

    if ((rc = ldap_initialize(&ld, s->url)) != LDAP_SUCCESS)
        goto fail;
    if (ldap_table_set_options(c, ld, tls, why) < 0) {
        ldap_unbind_ext_s(ld, NULL, NULL);
        return NULL;
    }
    step = "connect"; /* now, so that a dead server fails over here, even without a bind */
    if ((rc = ldap_connect(ld)) != LDAP_SUCCESS)
        goto fail;
    step = "start TLS";
    if (c->start_tls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS)
        goto fail;
    step = "bind";
    if (c->bind && (rc = ldap_table_bind(c, ld)) != LDAP_SUCCESS)
        goto fail;
    return ld;
fail:
    buf_printf(why, "%s: cannot %s: %s", s->url, step, ldap_err2string(rc));
    if (ld != NULL)
        ldap_unbind_ext_s(ld, NULL, NULL);
    return NULL;
}

/* ldap_table_connect - connect to the first server, from first on, that
 * answers; -1 with every server's reason in why */
static int ldap_table_connect(struct ldap_table *lt, size_t first, buf_t *why)
{
    size_t n = lt->cf.servers.count;

    for (size_t i = 0; i < n; i++) {
        size_t k = (first + i) % n, mark = why->len;
        if (mark > 0)
            buf_puts(why, "; ");
        if ((lt->ld = ldap_table_connect_one(&lt->cf, &lt->cf.servers.v[k], why)) != NULL) {
            buf_truncate(why, mark);
            lt->server = k;
            return 0;
        }
    }
    return -1;
}

/* ldap_table_server_error - rc says the server or the connection failed */
static int ldap_table_server_error(int rc)
{
    return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR ||
           rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

/* ldap_table_search_once - one search on the current connection */
static int ldap_table_search_once(struct ldap_table *lt, const char *base, int scope,
                                  const char *filter, LDAPMessage **res)
{
    struct timeval tv = {lt->cf.timeout, 0};

    *res = NULL;
    return ldap_search_ext_s(lt->ld, base, scope, filter, lt->attrs, 0, NULL, NULL, &tv,
                             lt->cf.size_limit, res);
}

/* ldap_table_search - the search of a lookup: connect if need be, and on a
 * server error drop the connection and try once more from the next server.
 * The LDAP result code, or -1 (no server could answer: reason in why). */
static int ldap_table_search(struct ldap_table *lt, const char *base, const char *filter,
                             LDAPMessage **res, buf_t *why)
{
    size_t first = 0;
    int rc;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (lt->ld == NULL && ldap_table_connect(lt, first, why) < 0)
            return -1;
        rc = ldap_table_search_once(lt, base, ldap_table_scopes[lt->cf.scope], filter, res);
        if (!ldap_table_server_error(rc))
            return rc;
        ldap_msgfree(*res);
        *res = NULL;
        if (why->len > 0)
            buf_puts(why, "; ");
        buf_printf(why, "%s: search: %s", lt->cf.servers.v[lt->server].url, ldap_err2string(rc));
        first = (lt->server + 1) % lt->cf.servers.count;
        ldap_table_drop(lt);
    }
    return -1;
}

/* ldap_lookup_fail - record a temporary failure (the first reason wins) */
static void ldap_lookup_fail(struct ldap_lookup *q, const char *reason)
{
    if (q->failed)
        return;
    q->failed = 1;
    if (q->why->len > 0) /* after the servers that failed over */
        buf_puts(q->why, "; ");
    buf_puts(q->why, reason);
}

/* ldap_attr_index - the index of attr in attrs (case-insensitive), or the
 * count when absent */
static size_t ldap_attr_index(char **attrs, const char *attr)
{
    size_t i;

    for (i = 0; attrs[i] != NULL; i++)
        if (strcasecmp(attrs[i], attr) == 0)
            break;
    return i;
}

/* ldap_entry_has_values - entry holds a value of one of attrs[from..] */
static int ldap_entry_has_values(LDAP *ld, LDAPMessage *entry, char **attrs, size_t from)
{
    int found = 0;

    for (size_t i = from; attrs[i] != NULL && !found; i++) {
        struct berval **vals = ldap_get_values_len(ld, entry, attrs[i]);
        found = vals != NULL && ldap_count_values_len(vals) > 0;
        ldap_value_free_len(vals);
    }
    return found;
}

/* ldap_lookup_add - one attribute value, through result_format */
static void ldap_lookup_add(struct ldap_lookup *q, const struct berval *bv)
{
    buf_t raw = BUF_INIT;
    size_t mark = q->value->len;
    const char *reason;

    buf_append(&raw, bv->bv_val, bv->bv_len);
    if (mark > 0)
        buf_putc(q->value, ',');
    switch (
        table_expand(q->lt->cf.result_format, buf_cstr(&raw), q->key, NULL, q->value, &reason)) {
    case TABLE_EXPAND_OK:
        q->expansions++;
        break;
    case TABLE_EXPAND_SKIP:
        buf_truncate(q->value, mark);
        break;
    case TABLE_EXPAND_ERROR:
        buf_truncate(q->value, mark);
        ldap_lookup_fail(q, reason);
        break;
    }
    buf_free(&raw);
    if (q->lt->cf.expansion_limit > 0 && q->expansions > (size_t)q->lt->cf.expansion_limit)
        ldap_lookup_fail(q, "expansion limit exceeded");
}

static void ldap_lookup_entries(struct ldap_lookup *q, LDAPMessage *res, int depth);

/* ldap_lookup_follow - search the entry named by dn (a special attribute's
 * value) and collect its results */
static void ldap_lookup_follow(struct ldap_lookup *q, const char *dn, int depth)
{
    LDAPMessage *res = NULL;
    int rc;

    if (ldap_is_ldap_url(dn)) {
        ldap_lookup_fail(q, "LDAP URLs in special_result_attribute are not supported");
        return;
    }
    rc = ldap_table_search_once(q->lt, dn, LDAP_SCOPE_BASE, "(objectClass=*)", &res);
    if (rc == LDAP_SUCCESS)
        ldap_lookup_entries(q, res, depth + 1);
    else if (rc != LDAP_NO_SUCH_OBJECT) /* Postfix: as an entry without results */
        ldap_lookup_fail(q, ldap_err2string(rc));
    q->lost |= ldap_table_server_error(rc);
    ldap_msgfree(res);
}

/* ldap_lookup_attribute - the values of one attribute of an entry; index
 * is attr's place in attrs */
static void ldap_lookup_attribute(struct ldap_lookup *q, LDAPMessage *entry, const char *attr,
                                  size_t index, int leaf, int depth)
{
    struct ldap_table *lt = q->lt;
    struct berval **vals = ldap_get_values_len(lt->ld, entry, attr);
    buf_t dn = BUF_INIT;

    for (size_t i = 0; vals != NULL && vals[i] != NULL && !q->failed; i++) {
        if (index < lt->num_attributes) {
            if (leaf || index >= lt->num_leaf)
                ldap_lookup_add(q, vals[i]);
        } else if (depth >= lt->cf.recursion_limit) {
            ldap_lookup_fail(q, "recursion limit exceeded");
        } else {
            buf_reset(&dn);
            buf_append(&dn, vals[i]->bv_val, vals[i]->bv_len);
            ldap_lookup_follow(q, buf_cstr(&dn), depth);
        }
    }
    buf_free(&dn);
    ldap_value_free_len(vals);
}

/* ldap_lookup_entry - the results of one entry */
static void ldap_lookup_entry(struct ldap_lookup *q, LDAPMessage *entry, int depth)
{
    struct ldap_table *lt = q->lt;
    int leaf =
        lt->num_leaf == 0 || !ldap_entry_has_values(lt->ld, entry, lt->attrs, lt->num_attributes);
    BerElement *ber = NULL;
    char *attr;

    for (attr = ldap_first_attribute(lt->ld, entry, &ber); attr != NULL;
         attr = ldap_next_attribute(lt->ld, entry, ber)) {
        size_t index = ldap_attr_index(lt->attrs, attr);
        if (lt->attrs[index] != NULL && !q->failed)
            ldap_lookup_attribute(q, entry, attr, index, leaf, depth);
        ldap_memfree(attr);
    }
    ber_free(ber, 0);
}

/* ldap_lookup_entries - the results of every entry of res */
static void ldap_lookup_entries(struct ldap_lookup *q, LDAPMessage *res, int depth)
{
    size_t entries = 0;

    for (LDAPMessage *e = ldap_first_entry(q->lt->ld, res); e != NULL && !q->failed;
         e = ldap_next_entry(q->lt->ld, e)) {
        if (q->lt->cf.size_limit > 0 && ++entries > (size_t)q->lt->cf.size_limit)
            ldap_lookup_fail(q, "size limit exceeded");
        else
            ldap_lookup_entry(q, e, depth);
    }
}

/* ldap_table_expand_query - the filter and base of key: 1 ready, 0 the key
 * cannot be asked (not found), -1 with *reason */
static int ldap_table_expand_query(const struct table_ldap_cf *c, const char *key, buf_t *filter,
                                   buf_t *base, const char **reason)
{
    enum table_expand_status fs, bs;

    fs = table_expand(c->query_filter, key, NULL, table_expand_escape_ldap_filter, filter, reason);
    if (fs != TABLE_EXPAND_OK)
        return fs == TABLE_EXPAND_SKIP ? 0 : -1;
    if (c->search_base[0] == '\0')
        return 1;
    bs = table_expand(c->search_base, key, NULL, table_expand_escape_ldap_dn, base, reason);
    return bs == TABLE_EXPAND_OK ? 1 : bs == TABLE_EXPAND_SKIP ? 0 : -1;
}

/* ldap_table_result - the outcome of a search that returned rc */
static enum table_result ldap_table_result(struct ldap_table *lt, struct ldap_lookup *q, int rc,
                                           LDAPMessage *res)
{
    switch (rc) {
    case LDAP_SUCCESS:
        ldap_lookup_entries(q, res, 1);
        if (q->failed)
            return TABLE_TEMPFAIL;
        return q->value->len > 0 ? TABLE_FOUND : TABLE_NOTFOUND;
    case LDAP_NO_SUCH_OBJECT:
        /* a base built from the key that does not exist: not found */
        if (strchr(lt->cf.search_base, '%') != NULL)
            return TABLE_NOTFOUND;
        ldap_lookup_fail(q, "search base does not exist");
        return TABLE_TEMPFAIL;
    case LDAP_SIZELIMIT_EXCEEDED:
        ldap_lookup_fail(q, "size limit exceeded");
        return TABLE_TEMPFAIL;
    default:
        ldap_lookup_fail(q, ldap_err2string(rc));
        return TABLE_TEMPFAIL;
    }
}

static enum table_result ldap_table_lookup(struct table *t, const char *key, buf_t *value)
{
    struct ldap_table *lt = t->impl;
    buf_t folded = BUF_INIT, filter = BUF_INIT, base = BUF_INIT, why = BUF_INIT;
    struct ldap_lookup q = {lt, NULL, value, 0, 0, 0, &why};
    enum table_result r = TABLE_NOTFOUND;
    LDAPMessage *res = NULL;
    const char *reason = NULL;
    int rc;

    q.key = table_key_fold(key, t->flags, &folded);
    buf_reset(value);
    if (!table_expand_domain_allowed((const char *const *)lt->cf.domain.v, lt->cf.domain.count,
                                     q.key))
        goto done;
    if ((rc = ldap_table_expand_query(&lt->cf, q.key, &filter, &base, &reason)) <= 0) {
        if (rc < 0)
            ldap_lookup_fail(&q, reason);
        r = rc < 0 ? TABLE_TEMPFAIL : TABLE_NOTFOUND;
        goto done;
    }
    rc = ldap_table_search(lt, buf_cstr(&base), buf_cstr(&filter), &res, &why);
    if (rc < 0) {
        q.failed = 1;
        r = TABLE_TEMPFAIL;
    } else {
        r = ldap_table_result(lt, &q, rc, res);
    }
    if (q.lost)
        ldap_table_drop(lt);
done:
    if (q.failed)
        log_warn("%s: lookup failed: %s", t->spec, buf_cstr(&why));
    else if (why.len > 0) /* connected, after failing over */
        log_warn("%s: %s; using %s", t->spec, buf_cstr(&why), lt->cf.servers.v[lt->server].url);
    if (r != TABLE_FOUND)
        buf_reset(value);
    ldap_msgfree(res);
    buf_free(&folded);
    buf_free(&filter);
    buf_free(&base);
    buf_free(&why);
    return r;
}

/* ldap_table_attrs - the attribute list: leaf, result, special */
static void ldap_table_attrs(struct ldap_table *lt)
{
    const struct table_cf_list *lists[] = {&lt->cf.leaf_result_attribute, &lt->cf.result_attribute,
                                           &lt->cf.special_result_attribute};
    size_t n = 0;

    for (size_t k = 0; k < 3; k++)
        n += lists[k]->count;
    lt->attrs = xcalloc(n + 1, sizeof(char *));
    n = 0;
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < lists[k]->count; i++)
            lt->attrs[n++] = lists[k]->v[i];
    lt->num_leaf = lt->cf.leaf_result_attribute.count;
    lt->num_attributes = lt->num_leaf + lt->cf.result_attribute.count;
}

static void ldap_table_close(struct table *t)
{
    struct ldap_table *lt = t->impl;

    ldap_table_drop(lt);
    free(lt->attrs);
    table_ldap_cf_free(&lt->cf);
    free(lt);
}

static const struct table_ops ldap_ops = {"ldap",           0,   ldap_table_lookup, NULL,
                                          ldap_table_close, NULL};

int table_open_ldap(struct table *t, const char *name, buf_t *err)
{
    struct table_cf cf;
    struct ldap_table *lt;
    int rc;

    if (table_cf_read(&cf, name, err) < 0) {
        table_cf_free(&cf);
        return -1;
    }
    lt = xcalloc(1, sizeof(*lt));
    rc = table_ldap_cf_load(&lt->cf, &cf, err);
    table_cf_free(&cf);
    if (rc < 0) { /* table_ldap_cf_load freed what it had */
        free(lt);
        return -1;
    }
    ldap_table_attrs(lt);
    t->impl = lt;
    t->ops = &ldap_ops;
    return 0;
}

void table_remote_link(void)
{
    table_pgsql_link(); /* this object and table_pgsql.c's are linked in */
}
