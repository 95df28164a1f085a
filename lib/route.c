/*
 * route - the shared address resolver (see route.h): parameters and
 * tables, trace events, domain lists, address classes, transport_maps,
 * canonical maps, masquerading, virtual alias expansion and the RCPT
 * verdict.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "route.h"
#include "table.h"

#define ROUTE_MAX_DEPTH 20       /* virtual alias nesting */
#define ROUTE_MAX_EXPANSION 1000 /* addresses one recipient may become */
#define ROUTE_MAX_CANONICAL 10   /* canonical mapping rounds */
#define ROUTE_MAX_DERIVED 100000 /* domains remembered from a virtual table */

/* a list of tables, opened at first use */
struct route_maps {
    const char *param;
    char *const *specs;
    size_t count;
    int flags;
    char *const *alias_specs; /* tables also listed here use alias syntax */
    struct table **v;         /* entries NULL until opened */
    unsigned char *warned;
};

/* the domains named by the keys of one virtual table (derived on demand) */
struct route_derived {
    struct table *t;
    unsigned long generation;
    int valid;
    char **domains; /* sorted, lower case */
    size_t count;
};

/* mydestination, relay_domains, virtual_alias_domains */
struct route_domains {
    const char *param;
    char **names; /* literal names, lower case, no trailing dot */
    size_t name_count;
    struct route_maps tables;
    struct netaddr_net *nets; /* network items (relay_domains: clients) */
    size_t net_count;
    int parents;                   /* a name also matches its subdomains */
    int derive;                    /* tables also name the domains of their address keys */
    struct route_derived *derived; /* one per table when derive */
};

struct route {
    const char *myorigin;
    const char *myhostname;
    const char *mydomain;
    const char *relayhost;
    const char *delimiter;
    const char *default_transport;
    const char *relay_transport;
    const char *local_transport;
    const char *luser_relay;
    int append_at_myorigin;
    int append_dot_mydomain;
    int canonical_classes;
    int masquerade_classes;
    char *const *masquerade_domains;
    char *const *masquerade_exceptions;
    struct route_domains mydestination, relay_domains, virtual_domains;
    struct route_maps transport, virtual, canonical, sender_canonical, recipient_canonical,
        local_recipients, aliases, generic;
    route_trace_fn trace;
    void *trace_ctx;
};

/* ---- replies */

void route_reply_init(struct route_reply *rp)
{
    memset(rp, 0, sizeof(*rp));
    buf_init(&rp->text);
}

void route_reply_free(struct route_reply *rp)
{
    buf_free(&rp->text);
}

void route_reply_set(struct route_reply *rp, const char *code, const char *dsn, const char *text)
{
    snprintf(rp->code, sizeof(rp->code), "%s", code);
    snprintf(rp->dsn, sizeof(rp->dsn), "%s", dsn);
    buf_set(&rp->text, text);
}

/* route_reply_printf - fill code and dsn, text from a format */
static void route_reply_printf(struct route_reply *rp, const char *code, const char *dsn,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void route_reply_printf(struct route_reply *rp, const char *code, const char *dsn,
                               const char *fmt, ...)
{
    va_list ap;

    snprintf(rp->code, sizeof(rp->code), "%s", code);
    snprintf(rp->dsn, sizeof(rp->dsn), "%s", dsn);
    buf_reset(&rp->text);
    va_start(ap, fmt);
    buf_vprintf(&rp->text, fmt, ap);
    va_end(ap);
}

/* ---- trace events */

void route_set_trace(struct route *r, route_trace_fn fn, void *ctx)
{
    r->trace = fn;
    r->trace_ctx = ctx;
}

/* route_note - a free-text step */
static void route_note(struct route *r, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void route_note(struct route *r, const char *step, const char *fmt, ...)
{
    struct route_event ev = {0};
    buf_t text = BUF_INIT;
    va_list ap;

    if (r->trace == NULL)
        return;
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    ev.step = step;
    ev.note = buf_cstr(&text);
    r->trace(&ev, r->trace_ctx);
    buf_free(&text);
}

/* route_rewrote - a before -> after step */
static void route_rewrote(struct route *r, const char *step, const char *before, const char *after,
                          const char *note)
{
    struct route_event ev = {0};

    if (r->trace == NULL)
        return;
    ev.step = step;
    ev.before = before;
    ev.after = after;
    ev.note = note;
    r->trace(&ev, r->trace_ctx);
}

/* ---- lazily opened table lists */

static void route_maps_init(struct route_maps *m, const struct config *cfg, const char *param,
                            int flags)
{
    m->param = param;
    m->specs = config_list(cfg, param, &m->count);
    m->flags = flags;
    m->v = xcalloc(m->count ? m->count : 1, sizeof(*m->v));
    m->warned = xcalloc(m->count ? m->count : 1, 1);
}

static void route_maps_free(struct route_maps *m)
{
    for (size_t i = 0; i < m->count; i++)
        table_close(m->v[i]);
    free(m->v);
    free(m->warned);
    m->v = NULL;
}

/* route_maps_table - table i, opened now if needed; NULL (logged) on failure */
static struct table *route_maps_table(struct route_maps *m, size_t i)
{
    buf_t err = BUF_INIT;

    if (m->v[i] == NULL) {
        int flags = m->flags;
        for (char *const *a = m->alias_specs; a && *a; a++)
            if (strcmp(*a, m->specs[i]) == 0)
                flags |= TABLE_ALIASES;
        m->v[i] = table_open(m->specs[i], flags, &err);
        if (m->v[i] == NULL && !m->warned[i])
            log_warn("%s: %s", m->param, buf_cstr(&err));
        m->warned[i] = m->v[i] == NULL;
    }
    buf_free(&err);
    return m->v[i];
}

/* route_probe - one table asked about one key, told to the trace */
static void route_probe(struct route *r, const char *step, const char *table, const char *key,
                        enum table_result res, const char *value)
{
    struct route_event ev = {0};

    if (r->trace == NULL)
        return;
    ev.step = step;
    ev.table = table;
    ev.key = key;
    ev.result = res == TABLE_FOUND ? "found" : res == TABLE_NOTFOUND ? "not found" : "failed";
    ev.value = res == TABLE_FOUND ? value : NULL;
    r->trace(&ev, r->trace_ctx);
}

/* route_maps_find - key in each table in order (pattern tables only when
 * full); the first answer wins */
static enum table_result route_maps_find(struct route *r, struct route_maps *m, const char *step,
                                         const char *key, int full, buf_t *value)
{
    for (size_t i = 0; i < m->count; i++) {
        struct table *t = route_maps_table(m, i);
        enum table_result res;

        if (t == NULL) {
            route_probe(r, step, m->specs[i], key, TABLE_TEMPFAIL, NULL);
            return TABLE_TEMPFAIL;
        }
        if (!full && table_is_pattern(t))
            continue;
        res = table_lookup(t, key, value);
        route_probe(r, step, m->specs[i], key, res, buf_cstr(value));
        if (res != TABLE_NOTFOUND)
            return res;
    }
    return TABLE_NOTFOUND;
}

/* ---- address forms */

/* the parts of an address for lookups */
struct route_parts {
    buf_t local;  /* local part as written */
    buf_t base;   /* without +ext */
    buf_t ext;    /* the extension, "" when none */
    buf_t domain; /* lower case, no trailing dot; "" when unqualified */
};

static void route_parts_init(struct route_parts *p)
{
    memset(p, 0, sizeof(*p));
}

static void route_parts_free(struct route_parts *p)
{
    buf_free(&p->local);
    buf_free(&p->base);
    buf_free(&p->ext);
    buf_free(&p->domain);
}

/* route_domain_norm - lower case, without a trailing dot */
static void route_domain_norm(const char *domain, buf_t *out)
{
    buf_reset(out);
    for (const char *p = domain ? domain : ""; *p; p++)
        buf_putc(out, tolower((unsigned char)*p));
    if (out->len > 1 && out->data[out->len - 1] == '.')
        buf_truncate(out, out->len - 1);
}

static void route_parts_split(struct route *r, const char *addr, struct route_parts *p)
{
    size_t base;

    addr_local_part(addr, &p->local);
    base = addr_base_length(p->local.data, p->local.len, r->delimiter);
    buf_reset(&p->base);
    buf_append(&p->base, p->local.data, base);
    buf_reset(&p->ext);
    if (base < p->local.len)
        buf_puts(&p->ext, p->local.data + base + 1);
    route_domain_norm(addr_domain(addr), &p->domain);
}

/* ---- domain lists */

static int route_is_network(const char *item)
{
    struct netaddr_net net;
    int dots = 0;

    if (netaddr_parse_net(item, &net) == 0)
        return 1;
    for (const char *p = item; *p; p++) { /* sendmail's partial quads: 10.1.1 */
        if (*p == '.')
            dots++;
        else if (!isdigit((unsigned char)*p))
            return 0;
    }
    return *item && dots < 3;
}

/* route_network_parse - a network item; partial quads "10.1" mean 10.1/16 */
static int route_network_parse(const char *item, struct netaddr_net *out)
{
    buf_t cidr = BUF_INIT;
    int dots = 0, rc;

    if (netaddr_parse_net(item, out) == 0)
        return 0;
    for (const char *p = item; *p; p++)
        dots += *p == '.';
    buf_puts(&cidr, item);
    for (int i = dots; i < 3; i++)
        buf_puts(&cidr, ".0");
    buf_printf(&cidr, "/%d", 8 * (dots + 1));
    rc = netaddr_parse_net(cidr.data, out);
    buf_free(&cidr);
    return rc;
}

static int route_domains_init(struct route_domains *d, const struct config *cfg, const char *param,
                              int networks, buf_t *err)
{
    size_t n, tables = 0;
    char *const *items = config_list(cfg, param, &n);
    char *const *parents = config_list(cfg, "parent_domain_matches_subdomains", NULL);
    static char *none[] = {NULL};

    memset(d, 0, sizeof(*d));
    d->param = param;
    d->names = xcalloc(n + 1, sizeof(char *));
    d->nets = xcalloc(n + 1, sizeof(*d->nets));
    d->tables.param = param;
    d->tables.specs = (char *const *)xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if (table_spec_known(items[i])) {
            ((char **)d->tables.specs)[tables++] = items[i];
        } else if (networks && route_is_network(items[i])) {
            if (route_network_parse(items[i], &d->nets[d->net_count]) < 0) {
                buf_printf(err, "%s: %s: bad network '%s'", config_origin(cfg, param), param,
                           items[i]);
                return -1;
            }
            d->net_count++;
        } else {
            buf_t name = BUF_INIT;
            route_domain_norm(items[i], &name);
            d->names[d->name_count++] = buf_steal(&name);
        }
    }
    d->tables.count = tables;
    d->tables.flags = 0;
    d->tables.v = xcalloc(tables ? tables : 1, sizeof(*d->tables.v));
    d->tables.warned = xcalloc(tables ? tables : 1, 1);
    d->parents = addr_domain_in_list(param, parents ? parents : none);
    return 0;
}

static void route_derived_clear(struct route_derived *dv)
{
    for (size_t i = 0; i < dv->count; i++)
        free(dv->domains[i]);
    free(dv->domains);
    dv->domains = NULL;
    dv->count = 0;
    dv->valid = 0;
}

static void route_domains_free(struct route_domains *d)
{
    for (size_t i = 0; i < d->name_count; i++)
        free(d->names[i]);
    free(d->names);
    free(d->nets);
    if (d->derived) {
        for (size_t i = 0; i < d->tables.count; i++)
            route_derived_clear(&d->derived[i]);
        free(d->derived);
    }
    route_maps_free(&d->tables);
    free((void *)d->tables.specs);
}

/* route_name_matches - a literal list name covers domain */
static int route_name_matches(const char *name, const char *domain, int parents)
{
    size_t n = strlen(name), dn = strlen(domain);

    if (name[0] == '.') /* ".example.com": its subdomains */
        return dn > n && strcmp(domain + dn - n, name) == 0;
    if (strcmp(name, domain) == 0)
        return 1;
    return parents && dn > n && domain[dn - n - 1] == '.' && strcmp(domain + dn - n, name) == 0;
}

static int route_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* route_derive_key - collect the domain of an address key */
static int route_derive_key(const char *key, const char *value, void *ctx)
{
    struct route_derived *dv = ctx;
    const char *at = strrchr(key, '@');
    buf_t d = BUF_INIT;

    (void)value;
    if (at == NULL || at[1] == 0 || dv->count >= ROUTE_MAX_DERIVED)
        return 0;
    route_domain_norm(at + 1, &d);
    if (dv->count == 0 || strcmp(dv->domains[dv->count - 1], d.data) != 0) {
        dv->domains = xrealloc(dv->domains, (dv->count + 1) * sizeof(char *));
        dv->domains[dv->count++] = buf_steal(&d);
    }
    buf_free(&d);
    return 0;
}

/* route_derived_has - the domain is one a walkable table's keys name;
 * -1 when the table cannot be read */
static int route_derived_has(struct route *r, struct route_derived *dv, struct table *t,
                             const char *domain)
{
    unsigned long gen = table_generation(t);
    buf_t err = BUF_INIT;
    const char *key = domain;

    if (!dv->valid || dv->t != t || dv->generation != gen) {
        route_derived_clear(dv);
        dv->t = t;
        dv->generation = gen;
        if (table_walk(t, route_derive_key, dv, &err) < 0) {
            route_derived_clear(dv);
            buf_free(&err);
            return 0; /* not listable (regexp, ...): only its domain keys count */
        }
        if (dv->count > 1)
            qsort(dv->domains, dv->count, sizeof(char *), route_cmp_str);
        dv->valid = 1;
    }
    buf_free(&err);
    (void)r;
    return dv->count > 0 &&
           bsearch(&key, dv->domains, dv->count, sizeof(char *), route_cmp_str) != NULL;
}

/* route_domains_tables - the domain as a key of the list's tables:
 * domain, ".parent" forms, and with derive "@domain" and key domains */
static int route_domains_tables(struct route *r, struct route_domains *d, const char *domain)
{
    buf_t value = BUF_INIT, key = BUF_INIT;
    enum table_result res = route_maps_find(r, &d->tables, d->param, domain, 1, &value);

    for (const char *dot = strchr(domain, '.'); res == TABLE_NOTFOUND && dot;
         dot = strchr(dot + 1, '.')) {
        res = route_maps_find(r, &d->tables, d->param, dot, 0, &value);
        if (res == TABLE_NOTFOUND && d->parents)
            res = route_maps_find(r, &d->tables, d->param, dot + 1, 0, &value);
    }
    if (res == TABLE_NOTFOUND && d->derive) {
        buf_printf(&key, "@%s", domain);
        res = route_maps_find(r, &d->tables, d->param, key.data, 0, &value);
    }
    for (size_t i = 0; res == TABLE_NOTFOUND && d->derive && i < d->tables.count; i++) {
        struct table *t = route_maps_table(&d->tables, i);
        if (t != NULL && route_derived_has(r, &d->derived[i], t, domain) == 1) {
            route_note(r, d->param, "%s names addresses in %s", d->tables.specs[i], domain);
            res = TABLE_FOUND;
        }
    }
    buf_free(&value);
    buf_free(&key);
    return res == TABLE_TEMPFAIL ? -1 : res == TABLE_FOUND;
}

/* route_domains_match - 1 listed, 0 not, -1 a table failed */
static int route_domains_match(struct route *r, struct route_domains *d, const char *domain)
{
    buf_t norm = BUF_INIT;
    int rc = 0;

    route_domain_norm(domain, &norm);
    for (size_t i = 0; i < d->name_count && rc == 0; i++) {
        if (route_name_matches(d->names[i], norm.data, d->parents)) {
            route_note(r, d->param, "%s is listed (%s)", norm.data, d->names[i]);
            rc = 1;
        }
    }
    if (rc == 0 && d->tables.count > 0 && norm.len > 0)
        rc = route_domains_tables(r, d, norm.data);
    buf_free(&norm);
    return rc;
}

/* ---- set-up */

/* route_classes_parse - a canonical_classes / masquerade_classes value */
static int route_classes_parse(const struct config *cfg, const char *param, int *out, buf_t *err)
{
    static const char *names[] = {"envelope_sender", "envelope_recipient", "header_sender",
                                  "header_recipient", NULL};
    size_t n;
    char *const *items = config_list(cfg, param, &n);

    *out = 0;
    for (size_t i = 0; i < n; i++) {
        int k;
        for (k = 0; names[k] && strcasecmp(items[i], names[k]) != 0; k++)
            ;
        if (names[k] == NULL) {
            buf_printf(err,
                       "%s: %s: unknown address class '%s' (known: envelope_sender, "
                       "envelope_recipient, header_sender, header_recipient)",
                       config_origin(cfg, param), param, items[i]);
            return -1;
        }
        *out |= 1 << k;
    }
    if (strcmp(param, "masquerade_classes") == 0 && (*out & ROUTE_ENVELOPE_RECIPIENT)) {
        buf_printf(err, "%s: %s: envelope recipients are never masqueraded",
                   config_origin(cfg, param), param);
        return -1;
    }
    return 0;
}

/* route_transport_check - a *_transport parameter names a known transport */
static int route_transport_check(const struct config *cfg, const char *param, buf_t *err)
{
    const char *v = config_str(cfg, param);
    size_t n = strcspn(v, ":");
    char name[16];

    snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), v);
    if (n == 0 || n >= sizeof(name) || route_service(name) == NULL) {
        buf_printf(err,
                   "%s: %s: unknown transport '%.*s' (known: smtp, esmtp, smtp8, relay, lmtp, "
                   "local, error, discard, retry)",
                   config_origin(cfg, param), param, (int)n, v);
        return -1;
    }
    return 0;
}

/* route_read_params - everything but the domain lists; -1 with err */
static int route_read_params(struct route *r, const struct config *cfg, buf_t *err)
{
    static const char *transports[] = {"default_transport", "relay_transport", "local_transport",
                                       NULL};

    r->myorigin = config_str(cfg, "myorigin");
    r->myhostname = config_str(cfg, "myhostname");
    r->mydomain = config_str(cfg, "mydomain");
    r->relayhost = config_str(cfg, "relayhost");
    r->delimiter = config_str(cfg, "recipient_delimiter");
    r->default_transport = config_str(cfg, "default_transport");
    r->relay_transport = config_str(cfg, "relay_transport");
    r->local_transport = config_str(cfg, "local_transport");
    r->luser_relay = config_str(cfg, "luser_relay");
    r->append_at_myorigin = config_bool(cfg, "append_at_myorigin");
    r->append_dot_mydomain = config_bool(cfg, "append_dot_mydomain");
    r->masquerade_domains = config_list(cfg, "masquerade_domains", NULL);
    r->masquerade_exceptions = config_list(cfg, "masquerade_exceptions", NULL);
    for (int i = 0; transports[i]; i++)
        if (route_transport_check(cfg, transports[i], err) < 0)
            return -1;
    if (route_classes_parse(cfg, "canonical_classes", &r->canonical_classes, err) < 0 ||
        route_classes_parse(cfg, "masquerade_classes", &r->masquerade_classes, err) < 0)
        return -1;
    return 0;
}

/* route_open_maps - the table lists */
static void route_open_maps(struct route *r, const struct config *cfg)
{
    route_maps_init(&r->transport, cfg, "transport_maps", 0);
    route_maps_init(&r->virtual, cfg, "virtual_alias_maps", 0);
    route_maps_init(&r->canonical, cfg, "canonical_maps", 0);
    route_maps_init(&r->sender_canonical, cfg, "sender_canonical_maps", 0);
    route_maps_init(&r->recipient_canonical, cfg, "recipient_canonical_maps", 0);
    route_maps_init(&r->aliases, cfg, "alias_maps", TABLE_ALIASES);
    route_maps_init(&r->local_recipients, cfg, "local_recipient_maps", 0);
    route_maps_init(&r->generic, cfg, "smtp_generic_maps", 0);
    r->local_recipients.alias_specs = config_list(cfg, "alias_maps", NULL);
}

struct route *route_open(const struct config *cfg, buf_t *err)
{
    struct route *r = xcalloc(1, sizeof(*r));

    if (route_read_params(r, cfg, err) < 0 ||
        route_domains_init(&r->mydestination, cfg, "mydestination", 0, err) < 0 ||
        route_domains_init(&r->relay_domains, cfg, "relay_domains", 1, err) < 0 ||
        route_domains_init(&r->virtual_domains, cfg, "virtual_alias_domains", 0, err) < 0) {
        route_close(r);
        return NULL;
    }
    r->virtual_domains.derive = 1;
    r->virtual_domains.derived =
        xcalloc(r->virtual_domains.tables.count + 1, sizeof(struct route_derived));
    route_open_maps(r, cfg);
    return r;
}

void route_close(struct route *r)
{
    if (r == NULL)
        return;
    route_domains_free(&r->mydestination);
    route_domains_free(&r->relay_domains);
    route_domains_free(&r->virtual_domains);
    route_maps_free(&r->transport);
    route_maps_free(&r->virtual);
    route_maps_free(&r->canonical);
    route_maps_free(&r->sender_canonical);
    route_maps_free(&r->recipient_canonical);
    route_maps_free(&r->aliases);
    route_maps_free(&r->local_recipients);
    route_maps_free(&r->generic);
    free(r);
}

void route_preload(struct route *r, const char *param)
{
    struct route_maps *lists[] = {&r->transport,
                                  &r->virtual,
                                  &r->canonical,
                                  &r->sender_canonical,
                                  &r->recipient_canonical,
                                  &r->aliases,
                                  &r->local_recipients,
                                  &r->generic,
                                  &r->mydestination.tables,
                                  &r->relay_domains.tables,
                                  &r->virtual_domains.tables,
                                  NULL};

    for (int k = 0; lists[k]; k++)
        for (size_t i = 0; (!param || strcmp(param, lists[k]->param) == 0) && i < lists[k]->count;
             i++)
            (void)route_maps_table(lists[k], i);
}

/* ---- classes */

const char *route_class_name(enum route_class cls)
{
    static const char *names[] = {"local", "virtual", "relay", "default"};
    return names[cls];
}

enum route_status route_class_of(struct route *r, const char *domain, enum route_class *out)
{
    int rc;

    *out = ROUTE_CLASS_LOCAL;
    if (domain == NULL || *domain == 0)
        return ROUTE_OK;
    if ((rc = route_domains_match(r, &r->mydestination, domain)) != 0)
        return rc < 0 ? ROUTE_TEMPFAIL : ROUTE_OK;
    *out = ROUTE_CLASS_RELAY;
    if ((rc = route_domains_match(r, &r->relay_domains, domain)) != 0)
        return rc < 0 ? ROUTE_TEMPFAIL : ROUTE_OK;
    *out = ROUTE_CLASS_VIRTUAL;
    if ((rc = route_domains_match(r, &r->virtual_domains, domain)) != 0)
        return rc < 0 ? ROUTE_TEMPFAIL : ROUTE_OK;
    *out = ROUTE_CLASS_DEFAULT;
    return ROUTE_OK;
}

int route_relay_client(struct route *r, const struct sockaddr *client)
{
    (void)r;
    return client != NULL && r->relay_domains.net_count > 0 &&
           netaddr_match(client, r->relay_domains.nets, r->relay_domains.net_count);
}

/* ---- qualification */

void route_qualify(struct route *r, const char *addr, buf_t *out)
{
    buf_set(out, addr);
    addr_qualify(out, r->myorigin);
}

/* ---- errors */

/* sendmail's error mailer host names (sysexits) */
static const struct {
    const char *name;
    const char *code;
    const char *dsn;
} route_sysexits[] = {
    {"nouser", "550", "5.0.0"},   {"nohost", "550", "5.0.0"},    {"unavailable", "550", "5.0.0"},
    {"usage", "550", "5.0.0"},    {"dataerr", "550", "5.0.0"},   {"noinput", "550", "5.0.0"},
    {"software", "550", "5.0.0"}, {"protocol", "550", "5.0.0"},  {"noperm", "550", "5.0.0"},
    {"config", "550", "5.0.0"},   {"tempfail", "451", "4.0.0"},  {"oserr", "451", "4.0.0"},
    {"ioerr", "451", "4.0.0"},    {"cantcreat", "451", "4.0.0"}, {NULL, NULL, NULL},
};

/* route_dsn_len - length of a D.S.N at p (class 2, 4 or 5), 0 if none */
static size_t route_dsn_len(const char *p, char cls_wanted)
{
    const char *q = p;
    int digits;

    if ((*q != '4' && *q != '5' && *q != '2') || q[1] != '.' ||
        (cls_wanted && *q != cls_wanted && cls_wanted != '*'))
        return 0;
    q += 2;
    for (int part = 0; part < 2; part++) {
        for (digits = 0; isdigit((unsigned char)*q) && digits < 4; q++)
            digits++;
        if (digits < 1 || digits > 3)
            return 0;
        if (part == 0) {
            if (*q != '.')
                return 0;
            q++;
        }
    }
    return (size_t)(q - p);
}

/* route_code_len - 3 digits 4xx/5xx followed by white space or the end */
static int route_code_at(const char *p)
{
    return (p[0] == '4' || p[0] == '5') && isdigit((unsigned char)p[1]) &&
           isdigit((unsigned char)p[2]) && (p[3] == 0 || p[3] == ' ' || p[3] == '\t');
}

void route_error_parse(const char *value, int kind, struct route_reply *out)
{
    const char *p = value;
    char code[4] = "", dsn[16] = "";
    size_t n;

    while (*p == ' ' || *p == '\t')
        p++;
    if ((n = route_dsn_len(p, '*')) > 0 && (p[n] == 0 || p[n] == ':' || p[n] == ' ')) {
        snprintf(dsn, sizeof(dsn), "%.*s", (int)n, p);
        p += n + (p[n] == ':');
        while (*p == ' ' || *p == '\t')
            p++;
    }
    if (route_code_at(p)) {
        snprintf(code, sizeof(code), "%.3s", p);
        p += 3;
    } else if (dsn[0] == 0) {
        for (int i = 0; route_sysexits[i].name; i++) {
            size_t k = strlen(route_sysexits[i].name);
            if (strncasecmp(p, route_sysexits[i].name, k) == 0 && (p[k] == 0 || p[k] == ' ')) {
                snprintf(code, sizeof(code), "%s", route_sysexits[i].code);
                snprintf(dsn, sizeof(dsn), "%s", route_sysexits[i].dsn);
                p += k;
                break;
            }
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (dsn[0] == 0 || (kind == 'r' && dsn[0] != '4') || dsn[0] == '2')
        snprintf(dsn, sizeof(dsn), "%s", code[0] == '4' || kind == 'r' ? "4.0.0" : "5.0.0");
    if (code[0] == 0 || code[0] != dsn[0])
        snprintf(code, sizeof(code), "%s", dsn[0] == '4' ? "451" : "550");
    route_reply_set(out, code, dsn,
                    *p            ? p
                    : kind == 'r' ? "delivery temporarily suspended"
                                  : "Address rejected");
}

/* ---- transports */

const char *route_service(const char *transport)
{
    static const char *const smtp[] = {"smtp", "esmtp", "smtp8", "relay", NULL};
    static const char *const others[] = {"lmtp", "local", "error", "discard", "retry", NULL};

    for (int i = 0; smtp[i]; i++)
        if (strcasecmp(transport, smtp[i]) == 0)
            return "smtp";
    for (int i = 0; others[i]; i++)
        if (strcasecmp(transport, others[i]) == 0)
            return others[i];
    return NULL;
}

void route_dest_init(struct route_dest *d)
{
    memset(d, 0, sizeof(*d));
    route_reply_init(&d->reply);
}

void route_dest_free(struct route_dest *d)
{
    buf_free(&d->mailer);
    buf_free(&d->nexthop);
    route_reply_free(&d->reply);
}

/* route_dest_set - transport "name" (a known one) and next hop */
static void route_dest_set(struct route_dest *d, const char *name, size_t n, const char *nexthop)
{
    buf_reset(&d->mailer);
    buf_append(&d->mailer, name, n);
    for (size_t i = 0; i < d->mailer.len; i++)
        d->mailer.data[i] = (char)tolower((unsigned char)d->mailer.data[i]);
    snprintf(d->transport, sizeof(d->transport), "%s", route_service(d->mailer.data));
    buf_set(&d->nexthop, nexthop);
}

/* route_dest_finish - error, retry and discard carry their text */
static void route_dest_finish(struct route_dest *d, const char *addr)
{
    if (strcmp(d->transport, "error") == 0) {
        route_error_parse(d->nexthop.data, 'e', &d->reply);
    } else if (strcmp(d->transport, "retry") == 0) {
        route_error_parse(d->nexthop.data, 'r', &d->reply);
    } else if (strcmp(d->transport, "discard") == 0) {
        route_reply_set(&d->reply, "250", "2.0.0", d->nexthop.len ? d->nexthop.data : "discarded");
    }
    (void)addr;
}

/* route_class_default - the class's transport and next hop into d */
static void route_class_default(struct route *r, const struct route_parts *p, struct route_dest *d)
{
    const char *spec, *colon;
    const char *domain = p->domain.len ? p->domain.data : r->myhostname;

    switch (d->cls) {
    case ROUTE_CLASS_LOCAL:
        spec = r->local_transport;
        d->by = "local_transport";
        break;
    case ROUTE_CLASS_VIRTUAL:
        route_dest_set(d, "error", 5, "5.1.1 User unknown in virtual alias table");
        d->by = "virtual_alias_domains";
        return;
    case ROUTE_CLASS_RELAY:
        spec = r->relay_transport;
        d->by = "relay_transport";
        break;
    default:
        spec = r->default_transport;
        d->by = "default_transport";
        break;
    }
    colon = strchr(spec, ':');
    if (colon && colon[1])
        domain = colon + 1;
    else if (d->cls != ROUTE_CLASS_LOCAL && *r->relayhost) {
        domain = r->relayhost;
        d->by = d->cls == ROUTE_CLASS_RELAY ? "relay_transport, relayhost"
                                            : "default_transport, relayhost";
    }
    route_dest_set(d, spec, colon ? (size_t)(colon - spec) : strlen(spec), domain);
}

/* route_transport_find - transport_maps: user+ext@domain, user@domain,
 * domain, then (not for local domains: sendmail's mailertable routes
 * other hosts) .parent..., "." and "*"; matched gets the key that matched */
static enum table_result route_transport_find(struct route *r, const struct route_parts *p,
                                              int local, buf_t *value, buf_t *matched)
{
    buf_t key = BUF_INIT;
    enum table_result res = TABLE_NOTFOUND;
    const char *d = p->domain.data;

    if (p->domain.len) {
        buf_printf(&key, "%s@%s", p->local.data, d);
        res = route_maps_find(r, &r->transport, "transport_maps", key.data, 1, value);
        if (res == TABLE_NOTFOUND && p->ext.len) {
            buf_reset(&key);
            buf_printf(&key, "%s@%s", p->base.data, d);
            res = route_maps_find(r, &r->transport, "transport_maps", key.data, 0, value);
        }
        if (res == TABLE_NOTFOUND) {
            buf_set(&key, d);
            res = route_maps_find(r, &r->transport, "transport_maps", d, 0, value);
        }
        for (const char *dot = strchr(d, '.'); res == TABLE_NOTFOUND && !local && dot;
             dot = strchr(dot + 1, '.')) {
            buf_set(&key, dot);
            res = route_maps_find(r, &r->transport, "transport_maps", dot, 0, value);
        }
    }
    for (const char *dflt = "."; res == TABLE_NOTFOUND && !local && dflt;
         dflt = *dflt == '.' ? "*" : NULL) {
        buf_set(&key, dflt);
        res = route_maps_find(r, &r->transport, "transport_maps", dflt, 0, value);
    }
    if (res == TABLE_FOUND)
        buf_set(matched, key.data);
    buf_free(&key);
    return res;
}

/* route_transport_apply - a transport_maps value over the class default */
static enum route_status route_transport_apply(struct route *r, const char *value,
                                               const struct route_parts *p, struct route_dest *d)
{
    const char *colon = strchr(value, ':');
    size_t n = colon ? (size_t)(colon - value) : strlen(value);
    const char *nexthop = colon ? colon + 1 : "";
    char name[16];

    while (n > 0 && isspace((unsigned char)value[n - 1]))
        n--;
    snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : 0), value);
    if (n > 0 && (n >= sizeof(name) || route_service(name) == NULL)) {
        log_warn("transport_maps: unknown transport in \"%s\"", value);
        route_reply_printf(&d->reply, "451", "4.3.5",
                           "unknown transport \"%.*s\" in transport_maps", (int)(n > 64 ? 64 : n),
                           value);
        return ROUTE_TEMPFAIL;
    }
    while (*nexthop == ' ' || *nexthop == '\t')
        nexthop++;
    d->by = "transport_maps";
    if (n == 0 && *nexthop == 0) /* ":" keeps the class default */
        return ROUTE_OK;
    if (n == 0) { /* ":nexthop" keeps the transport */
        buf_set(&d->nexthop, nexthop);
        return ROUTE_OK;
    }
    /* "transport:" delivers to the recipient domain */
    route_dest_set(d, name, n, *nexthop ? nexthop : p->domain.len ? p->domain.data : r->myhostname);
    return ROUTE_OK;
}

/* route_hub_alias - with local_transport = smtp:[hub], a local part with an
 * alias is expanded here first (tern-local), as sendmail does with MAIL_HUB */
static enum route_status route_hub_alias(struct route *r, const struct route_parts *p,
                                         struct route_dest *d)
{
    buf_t value = BUF_INIT, key = BUF_INIT;
    enum table_result res;

    for (size_t i = 0; i < p->local.len; i++)
        buf_putc(&key, tolower((unsigned char)p->local.data[i]));
    res = route_maps_find(r, &r->aliases, "alias_maps", key.data, 1, &value);
    if (res == TABLE_NOTFOUND && p->ext.len) {
        buf_reset(&key);
        for (size_t i = 0; i < p->base.len; i++)
            buf_putc(&key, tolower((unsigned char)p->base.data[i]));
        res = route_maps_find(r, &r->aliases, "alias_maps", key.data, 1, &value);
    }
    buf_free(&value);
    buf_free(&key);
    if (res == TABLE_TEMPFAIL)
        return ROUTE_TEMPFAIL;
    if (res == TABLE_FOUND) {
        route_dest_set(d, "local", 5, p->domain.data);
        d->by = "alias_maps (aliases first, then local_transport)";
    }
    return ROUTE_OK;
}

int route_transport_is_hub(const char *transport)
{
    size_t n = strcspn(transport, ":");
    char name[16];
    const char *svc;

    snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : 0), transport);
    svc = route_service(name);
    return svc && (strcmp(svc, "smtp") == 0 || strcmp(svc, "lmtp") == 0);
}

enum route_status route_resolve(struct route *r, const char *addr, int flags,
                                struct route_dest *dest)
{
    struct route_parts p;
    buf_t value = BUF_INIT, matched = BUF_INIT;
    enum route_status st = ROUTE_OK;
    enum table_result res;

    route_parts_init(&p);
    route_parts_split(r, addr, &p);
    if (route_class_of(r, p.domain.data, &dest->cls) < 0) {
        route_reply_set(&dest->reply, "451", "4.3.0", "domain list lookup failure");
        st = ROUTE_TEMPFAIL;
        goto done;
    }
    route_class_default(r, &p, dest);
    res = route_transport_find(r, &p, dest->cls == ROUTE_CLASS_LOCAL, &value, &matched);
    if (res == TABLE_TEMPFAIL) {
        route_reply_set(&dest->reply, "451", "4.3.0", "transport_maps lookup failure");
        st = ROUTE_TEMPFAIL;
    } else if (res == TABLE_FOUND) {
        st = route_transport_apply(r, value.data, &p, dest);
    } else if (dest->cls == ROUTE_CLASS_LOCAL && route_transport_is_hub(r->local_transport) &&
               !(flags & ROUTE_ALIASES_DONE)) {
        st = route_hub_alias(r, &p, dest);
        if (st < 0)
            route_reply_set(&dest->reply, "451", "4.3.0", "alias_maps lookup failure");
    }
    if (st == ROUTE_OK)
        route_dest_finish(dest, addr);
done:
    if (st == ROUTE_OK)
        route_note(r, "route", "%s: class %s, transport %s (%s), nexthop %s, by %s", addr,
                   route_class_name(dest->cls), dest->transport, dest->mailer.data,
                   dest->nexthop.data, dest->by);
    route_parts_free(&p);
    buf_free(&value);
    buf_free(&matched);
    return st;
}

/* route_domain_routed - transport_maps names this domain itself (sendmail:
 * unmatched virtusertable addresses fall through to mailertable) */
static enum route_status route_domain_routed(struct route *r, const char *domain, int *routed)
{
    buf_t value = BUF_INIT;
    enum table_result res = TABLE_NOTFOUND;

    *routed = 0;
    if (r->transport.count > 0 && domain && *domain)
        res = route_maps_find(r, &r->transport, "transport_maps", domain, 0, &value);
    buf_free(&value);
    *routed = res == TABLE_FOUND;
    return res == TABLE_TEMPFAIL ? ROUTE_TEMPFAIL : ROUTE_OK;
}

/* ---- canonical maps and masquerading */

/* route_map_forms - the lookup keys of an address: user+ext@domain,
 * (ext_star: sendmail's user+*@domain), user@domain, (local domains:
 * user+ext, user), @domain; *stripped when the extension was left out of
 * the key that matched */
static enum table_result route_map_forms(struct route *r, struct route_maps *m, const char *step,
                                         const struct route_parts *p, int local, int ext_star,
                                         buf_t *value, int *stripped)
{
    buf_t key = BUF_INIT;
    enum table_result res;

    *stripped = 0;
    buf_printf(&key, "%s%s%s", p->local.data, p->domain.len ? "@" : "", p->domain.data);
    res = route_maps_find(r, m, step, key.data, 1, value);
    if (res == TABLE_NOTFOUND && ext_star && p->ext.len && p->domain.len) {
        buf_reset(&key);
        buf_printf(&key, "%s%c*@%s", p->base.data, p->local.data[p->base.len], p->domain.data);
        res = route_maps_find(r, m, step, key.data, 0, value);
        *stripped = res == TABLE_FOUND;
    }
    if (res == TABLE_NOTFOUND && p->ext.len && p->domain.len) {
        buf_reset(&key);
        buf_printf(&key, "%s@%s", p->base.data, p->domain.data);
        res = route_maps_find(r, m, step, key.data, 0, value);
        *stripped = res == TABLE_FOUND;
    }
    if (res == TABLE_NOTFOUND && local && p->domain.len) {
        res = route_maps_find(r, m, step, p->local.data, 0, value);
        if (res == TABLE_NOTFOUND && p->ext.len) {
            res = route_maps_find(r, m, step, p->base.data, 0, value);
            *stripped = res == TABLE_FOUND;
        }
    }
    if (res == TABLE_NOTFOUND && p->domain.len) {
        buf_reset(&key);
        buf_printf(&key, "@%s", p->domain.data);
        res = route_maps_find(r, m, step, key.data, 0, value);
    }
    buf_free(&key);
    return res;
}

/* route_is_local_domain - for the bare-user lookup forms */
static int route_is_local_domain(struct route *r, const char *domain)
{
    return route_domains_match(r, &r->mydestination, domain) == 1;
}

/* route_add_extension - user@d -> user+ext@d (Postfix's propagation of an
 * extension the key did not name) */
static void route_add_extension(struct route *r, const char *ext, buf_t *addr)
{
    const char *domain = addr_domain(addr->data);
    buf_t out = BUF_INIT;

    if (!*ext || !*r->delimiter)
        return;
    if (domain)
        buf_printf(&out, "%.*s%c%s@%s", (int)(domain - 1 - addr->data), addr->data, r->delimiter[0],
                   ext, domain);
    else
        buf_printf(&out, "%s%c%s", addr->data, r->delimiter[0], ext);
    buf_set(addr, out.data);
    buf_free(&out);
}

/* route_canonical_once - one round of one table list; 1 changed */
static int route_canonical_once(struct route *r, struct route_maps *m, const char *step,
                                buf_t *addr, int *failed)
{
    struct route_parts p;
    buf_t value = BUF_INIT, out = BUF_INIT;
    int stripped, changed = 0;
    enum table_result res;

    route_parts_init(&p);
    route_parts_split(r, addr->data, &p);
    res = route_map_forms(r, m, step, &p, p.domain.len && route_is_local_domain(r, p.domain.data),
                          0, &value, &stripped);
    if (res == TABLE_TEMPFAIL)
        *failed = 1;
    if (res == TABLE_FOUND && value.len > 0) {
        if (value.data[0] == '@') /* @new.domain: keep the local part */
            buf_printf(&out, "%s%s", p.local.data, value.data);
        else
            route_qualify(r, value.data, &out);
        if (stripped)
            route_add_extension(r, p.ext.data, &out);
        changed = strcasecmp(out.data, addr->data) != 0;
        if (changed) {
            route_rewrote(r, step, addr->data, out.data, NULL);
            buf_set(addr, out.data);
        }
    }
    route_parts_free(&p);
    buf_free(&value);
    buf_free(&out);
    return changed;
}

/* route_canonical - the specific list (sender_/recipient_canonical_maps)
 * then canonical_maps when cls is in canonical_classes; -1 on a table
 * failure; each list is applied until the address stops changing */
static int route_canonical(struct route *r, enum route_addr_class cls, buf_t *addr)
{
    int sender = cls == ROUTE_ENVELOPE_SENDER || cls == ROUTE_HEADER_SENDER;
    struct route_maps *lists[2] = {sender ? &r->sender_canonical : &r->recipient_canonical,
                                   (r->canonical_classes & (int)cls) ? &r->canonical : NULL};
    int failed = 0;

    for (int k = 0; k < 2; k++) {
        if (lists[k] == NULL || lists[k]->count == 0 || addr->len == 0)
            continue;
        for (int round = 0; round < ROUTE_MAX_CANONICAL && !failed; round++)
            if (!route_canonical_once(r, lists[k], lists[k]->param, addr, &failed))
                break;
    }
    return failed ? -1 : 0;
}

int route_rewrite_generic(struct route *r, const char *addr, buf_t *out, struct route_reply *why)
{
    int failed = 0;

    buf_set(out, addr);
    for (int round = 0; round < ROUTE_MAX_CANONICAL && out->len > 0 && !failed; round++)
        if (!route_canonical_once(r, &r->generic, "smtp_generic_maps", out, &failed))
            break;
    if (failed) {
        route_reply_set(why, "451", "4.3.0", "smtp_generic_maps lookup failure");
        return ROUTE_TEMPFAIL;
    }
    return strcmp(out->data, addr) != 0;
}

int route_has_generic(const struct route *r)
{
    return r->generic.count > 0;
}

/* route_masquerade - Postfix's masquerade_domains rule on addr (in place):
 * the first listed domain that is a parent of the address's domain
 * replaces it; a listed domain equal to it, or a "!name" match, stops */
static void route_masquerade(struct route *r, enum route_addr_class cls, buf_t *addr)
{
    buf_t local = BUF_INIT, domain = BUF_INIT, before = BUF_INIT;
    const char *at = addr_domain(addr->data);

    if (!(r->masquerade_classes & (int)cls) || r->masquerade_domains == NULL || at == NULL)
        return;
    addr_local_part(addr->data, &local);
    if (addr_domain_in_list(local.data, r->masquerade_exceptions)) {
        route_note(r, "masquerade", "%s: %s is in masquerade_exceptions", addr->data, local.data);
        buf_free(&local);
        return;
    }
    route_domain_norm(at, &domain);
    for (char *const *m = r->masquerade_domains; *m; m++) {
        const char *name = *m;
        int truncate = 1;
        size_t n, dn = domain.len;

        for (; *name == '!'; name++)
            truncate = !truncate;
        n = strlen(name);
        if (n == 0)
            continue;
        if (n == dn && strcasecmp(name, domain.data) == 0)
            break;
        if (n < dn && domain.data[dn - n - 1] == '.' &&
            strcasecmp(domain.data + dn - n, name) == 0) {
            if (truncate) {
                buf_set(&before, addr->data);
                buf_truncate(addr, local.len + 1);
                buf_puts(addr, name);
                route_rewrote(r, "masquerade", before.data, addr->data, *m);
            }
            break;
        }
    }
    buf_free(&local);
    buf_free(&domain);
    buf_free(&before);
}

enum route_status route_rewrite_sender(struct route *r, const char *addr, buf_t *out,
                                       struct route_reply *why)
{
    route_qualify(r, addr, out);
    if (out->len == 0)
        return ROUTE_OK;
    if (route_canonical(r, ROUTE_ENVELOPE_SENDER, out) < 0) {
        route_reply_set(why, "451", "4.3.0", "canonical map lookup failure");
        return ROUTE_TEMPFAIL;
    }
    route_masquerade(r, ROUTE_ENVELOPE_SENDER, out);
    return ROUTE_OK;
}

/* route_header_qualify - append_at_myorigin, append_dot_mydomain */
static void route_header_qualify(struct route *r, buf_t *addr)
{
    const char *d = addr_domain(addr->data);

    if (d == NULL && r->append_at_myorigin) {
        addr_qualify(addr, r->myorigin);
    } else if (d && *d && r->append_dot_mydomain && strchr(d, '.') == NULL && d[0] != '[' &&
               *r->mydomain) {
        buf_putc(addr, '.');
        buf_puts(addr, r->mydomain);
    }
}

int route_rewrite_header(struct route *r, enum route_addr_class cls, const char *addr, buf_t *out,
                         struct route_reply *why)
{
    buf_set(out, addr);
    route_header_qualify(r, out);
    if (route_canonical(r, cls, out) < 0) {
        route_reply_set(why, "451", "4.3.0", "canonical map lookup failure");
        return ROUTE_TEMPFAIL;
    }
    route_masquerade(r, cls, out);
    return strcmp(out->data, addr) != 0;
}

/* ---- virtual aliases */

void route_expansion_init(struct route_expansion *x)
{
    memset(x, 0, sizeof(*x));
}

void route_expansion_free(struct route_expansion *x)
{
    for (size_t i = 0; i < x->count; i++)
        free(x->v[i]);
    free(x->v);
    buf_free(&x->canonical);
    memset(x, 0, sizeof(*x));
}

/* route_expansion_add - a final address, duplicates dropped; -1 when full */
static int route_expansion_add(struct route_expansion *x, const char *addr)
{
    for (size_t i = 0; i < x->count; i++)
        if (strcasecmp(x->v[i], addr) == 0)
            return 0;
    if (x->count >= ROUTE_MAX_EXPANSION)
        return -1;
    if (x->count == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 4;
        x->v = xrealloc(x->v, x->cap * sizeof(char *));
    }
    x->v[x->count++] = xstrdup(addr);
    return 0;
}

/* route_virtual_substitute - sendmail's %1 (user), %2 (detail), %3
 * (+detail), %% in a virtusertable value */
static void route_virtual_substitute(struct route *r, const char *value,
                                     const struct route_parts *p, int stripped, buf_t *out)
{
    const char *user = p->base.data;

    (void)stripped;
    buf_reset(out);
    for (const char *v = value; *v; v++) {
        if (*v != '%' || v[1] == 0) {
            buf_putc(out, *v);
            continue;
        }
        v++;
        if (*v == '1')
            buf_puts(out, user);
        else if (*v == '2')
            buf_puts(out, p->ext.data);
        else if (*v == '3' && p->ext.len)
            buf_printf(out, "%c%s", r->delimiter[0] ? r->delimiter[0] : '+', p->ext.data);
        else if (*v != '3')
            buf_putc(out, *v);
    }
}

/* the state of one virtual alias expansion */
struct route_vexp {
    struct route *r;
    struct route_expansion *x;
    struct route_reply *why;
    const char *chain[ROUTE_MAX_DEPTH + 1]; /* the addresses being expanded */
    size_t depth;
    enum route_status st;
};

/* route_vexp_fail - the first failure wins */
static void route_vexp_fail(struct route_vexp *e, enum route_status st, const char *code,
                            const char *dsn, const char *text)
{
    if (e->st != ROUTE_OK)
        return;
    e->st = st;
    route_reply_set(e->why, code, dsn, text);
}

static void route_vexp_address(struct route_vexp *e, const char *addr);

/* route_vexp_value - the targets of one table value */
static void route_vexp_value(struct route_vexp *e, const char *addr, const char *value,
                             const struct route_parts *p, int stripped)
{
    buf_t subst = BUF_INIT, item = BUF_INIT, target = BUF_INIT;
    const char *v;

    if (strncasecmp(value, "error:", 6) == 0) {
        struct route_reply rp;
        route_reply_init(&rp);
        route_error_parse(value + 6, 'e', &rp);
        route_vexp_fail(e, rp.code[0] == '4' ? ROUTE_TEMPFAIL : ROUTE_REJECT, rp.code, rp.dsn,
                        rp.text.data);
        route_reply_free(&rp);
        return;
    }
    route_virtual_substitute(e->r, value, p, stripped, &subst);
    for (v = subst.data; e->st == ROUTE_OK && *v;) {
        size_t n = strcspn(v, ", \t\r\n");
        if (n > 0) {
            buf_reset(&item);
            buf_append(&item, v, n);
            route_qualify(e->r, item.data, &target);
            if (stripped && strchr(value, '%') == NULL && n == subst.len)
                route_add_extension(e->r, p->ext.data, &target);
            if (strcasecmp(target.data, addr) == 0) { /* a@x: a@x, b@x */
                if (route_expansion_add(e->x, addr) < 0)
                    route_vexp_fail(e, ROUTE_TEMPFAIL, "451", "4.3.0",
                                    "virtual alias expansion is too large");
            } else {
                route_vexp_address(e, target.data);
            }
        }
        v += n;
        v += strspn(v, ", \t\r\n");
    }
    buf_free(&subst);
    buf_free(&item);
    buf_free(&target);
}

/* route_vexp_address - one address: looked up, its targets expanded in
 * turn; not found = final */
static void route_vexp_address(struct route_vexp *e, const char *addr)
{
    struct route *r = e->r;
    struct route_parts p;
    buf_t value = BUF_INIT;
    enum table_result res;
    int stripped, local;

    for (size_t i = 0; i < e->depth; i++) {
        if (strcasecmp(e->chain[i], addr) == 0) {
            route_note(r, "virtual_alias_maps", "%s comes back in its own expansion", addr);
            route_vexp_fail(e, ROUTE_TEMPFAIL, "451", "4.4.6", "virtual alias loop");
            return;
        }
    }
    if (e->depth >= ROUTE_MAX_DEPTH) {
        route_vexp_fail(e, ROUTE_TEMPFAIL, "451", "4.4.6", "virtual alias nesting is too deep");
        return;
    }
    route_parts_init(&p);
    route_parts_split(r, addr, &p);
    local = p.domain.len && route_is_local_domain(r, p.domain.data);
    res = route_map_forms(r, &r->virtual, "virtual_alias_maps", &p, local, 1, &value, &stripped);
    if (res == TABLE_TEMPFAIL) {
        route_vexp_fail(e, ROUTE_TEMPFAIL, "451", "4.3.0", "virtual_alias_maps lookup failure");
    } else if (res == TABLE_NOTFOUND) {
        if (route_expansion_add(e->x, addr) < 0)
            route_vexp_fail(e, ROUTE_TEMPFAIL, "451", "4.3.0",
                            "virtual alias expansion is too large");
    } else {
        route_rewrote(r, "virtual_alias_maps", addr, value.data, NULL);
        e->chain[e->depth++] = addr;
        route_vexp_value(e, addr, value.data, &p, stripped);
        e->depth--;
    }
    route_parts_free(&p);
    buf_free(&value);
}

/* route_canonical_recipient - qualification and the recipient canonical maps */
static enum route_status route_canonical_recipient(struct route *r, const char *addr, buf_t *out,
                                                   struct route_reply *why)
{
    route_qualify(r, addr, out);
    if (route_canonical(r, ROUTE_ENVELOPE_RECIPIENT, out) < 0) {
        route_reply_set(why, "451", "4.3.0", "canonical map lookup failure");
        return ROUTE_TEMPFAIL;
    }
    return ROUTE_OK;
}

enum route_status route_expand_recipient(struct route *r, const char *addr,
                                         struct route_expansion *x, struct route_reply *why)
{
    struct route_vexp e;

    if (route_canonical_recipient(r, addr, &x->canonical, why) < 0)
        return ROUTE_TEMPFAIL;
    memset(&e, 0, sizeof(e));
    e.r = r;
    e.x = x;
    e.why = why;
    if (r->virtual.count == 0) {
        route_expansion_add(x, x->canonical.data);
        return ROUTE_OK;
    }
    route_vexp_address(&e, x->canonical.data);
    return e.st;
}

/* ---- the RCPT verdict */

/* route_local_recipient - local_recipient_maps knows a local address
 * (user+ext@domain, user@domain, user+ext, user, @domain); 1 yes, 0 no,
 * -1 a table failed */
static int route_local_recipient(struct route *r, const char *addr)
{
    struct route_parts p;
    buf_t value = BUF_INIT, key = BUF_INIT;
    enum table_result res;
    int stripped;

    route_parts_init(&p);
    route_parts_split(r, addr, &p);
    res = route_map_forms(r, &r->local_recipients, "local_recipient_maps", &p, 1, 0, &value,
                          &stripped);
    route_parts_free(&p);
    buf_free(&value);
    buf_free(&key);
    return res == TABLE_TEMPFAIL ? -1 : res == TABLE_FOUND;
}

/* route_local_check_wanted - local_recipient_maps decides for local
 * delivery only: not when luser_relay takes unknown users, nor when a hub
 * or an error transport receives local mail */
static int route_local_check_wanted(const struct route *r, const struct route_dest *d)
{
    return r->local_recipients.count > 0 && !*r->luser_relay && strcmp(d->transport, "local") == 0;
}

/* route_check_final - one final address of an expansion: its route, and
 * for local delivery local_recipient_maps */
static enum route_status route_check_final(struct route *r, const char *orig, const char *addr,
                                           struct route_reply *why)
{
    struct route_dest d;
    enum route_status st = ROUTE_OK;
    int known;

    route_dest_init(&d);
    if (route_resolve(r, addr, 0, &d) < 0) {
        route_reply_printf(why, "451", "4.3.0", "<%s>: Temporary lookup failure", orig);
        st = ROUTE_TEMPFAIL;
    } else if (strcmp(d.transport, "error") == 0) {
        route_reply_printf(why, d.reply.code, d.reply.dsn, "<%s>... %s", orig, d.reply.text.data);
        st = d.reply.code[0] == '4' ? ROUTE_TEMPFAIL : ROUTE_REJECT;
    } else if (route_local_check_wanted(r, &d) && (known = route_local_recipient(r, addr)) <= 0) {
        if (known < 0)
            route_reply_printf(why, "451", "4.3.0", "<%s>: Temporary lookup failure", orig);
        else
            route_reply_printf(why, "550", "5.1.1",
                               "<%s>: Recipient address rejected: User unknown in local "
                               "recipient table",
                               orig);
        st = known < 0 ? ROUTE_TEMPFAIL : ROUTE_REJECT;
    }
    route_dest_free(&d);
    return st;
}

/* route_relay_allowed - the domain class and the client permit relaying */
static enum route_status route_relay_allowed(struct route *r, const char *orig, const char *domain,
                                             const struct route_client *client,
                                             enum route_class *cls, struct route_reply *why)
{
    if (route_class_of(r, domain, cls) < 0) {
        route_reply_printf(why, "451", "4.3.0", "<%s>: Temporary lookup failure", orig);
        return ROUTE_TEMPFAIL;
    }
    if (*cls != ROUTE_CLASS_DEFAULT || client->trusted || route_relay_client(r, client->addr)) {
        route_note(r, "relay", "%s: %s", orig,
                   *cls != ROUTE_CLASS_DEFAULT ? "a domain this host accepts mail for"
                                               : "the client may relay");
        return ROUTE_OK;
    }
    route_note(r, "relay", "%s: not our domain and the client may not relay", orig);
    route_reply_printf(why, "554", "5.7.1", "<%s>: Relay access denied", orig);
    return ROUTE_REJECT;
}

enum route_status route_check_recipient(struct route *r, const char *addr,
                                        const struct route_client *client, struct route_reply *why)
{
    struct route_expansion x;
    enum route_class cls;
    enum route_status st;
    int routed = 0, refused = 0;

    route_expansion_init(&x);
    if (route_canonical_recipient(r, addr, &x.canonical, why) < 0) {
        route_reply_printf(why, "451", "4.3.0", "<%s>: Temporary lookup failure", addr);
        st = ROUTE_TEMPFAIL;
        goto done;
    }
    st = route_relay_allowed(r, addr, addr_domain(x.canonical.data), client, &cls, why);
    if (st != ROUTE_OK)
        goto done;
    route_expansion_free(&x);
    st = route_expand_recipient(r, addr, &x, why);
    if (st != ROUTE_OK) {
        buf_t text = BUF_INIT;
        buf_printf(&text, "<%s>... %s", addr, why->text.data);
        buf_set(&why->text, text.data);
        buf_free(&text);
        goto done;
    }
    if (cls == ROUTE_CLASS_VIRTUAL && x.count == 1 && strcasecmp(x.v[0], x.canonical.data) == 0) {
        st = route_domain_routed(r, addr_domain(x.canonical.data), &routed);
        if (st == ROUTE_OK && !routed) {
            route_reply_printf(why, "550", "5.1.1",
                               "<%s>: Recipient address rejected: User unknown in virtual alias "
                               "table",
                               addr);
            st = ROUTE_REJECT;
        } else if (st != ROUTE_OK) {
            route_reply_printf(why, "451", "4.3.0", "<%s>: Temporary lookup failure", addr);
        }
        if (st != ROUTE_OK)
            goto done;
    }
    /* refused only when every final address is (one bad member of a
     * list bounces later, it does not refuse the list) */
    for (size_t i = 0; i < x.count; i++) {
        struct route_reply one;
        route_reply_init(&one);
        st = route_check_final(r, addr, x.v[i], &one);
        if (st == ROUTE_TEMPFAIL || (st == ROUTE_REJECT && refused++ == 0)) {
            route_reply_set(why, one.code, one.dsn, one.text.data);
        }
        route_reply_free(&one);
        if (st == ROUTE_TEMPFAIL)
            goto done;
    }
    st = refused == (int)x.count && refused > 0 ? ROUTE_REJECT : ROUTE_OK;
done:
    route_expansion_free(&x);
    return st;
}
