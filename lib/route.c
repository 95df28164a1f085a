/*
 * route - the shared address resolver (see route.h, and route_impl.h for
 * how its files divide the work): parameters and tables, trace events,
 * address forms, domain lists and address classes.
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
#include "route_impl.h"
#include "smtputf8.h"
#include "table_proxy.h"

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
void route_reply_printf(struct route_reply *rp, const char *code, const char *dsn, const char *fmt,
                        ...)
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
void route_note(struct route *r, const char *step, const char *fmt, ...)
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
void route_rewrote(struct route *r, const char *step, const char *before, const char *after,
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
enum table_result route_maps_find(struct route *r, struct route_maps *m, const char *step,
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

void route_parts_init(struct route_parts *p)
{
    memset(p, 0, sizeof(*p));
}

void route_parts_free(struct route_parts *p)
{
    buf_free(&p->local);
    buf_free(&p->base);
    buf_free(&p->ext);
    buf_free(&p->domain);
}

/* route_domain_norm - lower case, without a trailing dot; an
 * international domain as A-labels (SMTPUTF8: "bücher.example" and
 * "xn--bcher-kva.example" are one domain), as it is when it has none */
void route_domain_norm(const char *domain, buf_t *out)
{
    buf_t alabel = BUF_INIT;

    buf_reset(out);
    for (const char *p = domain ? domain : ""; *p; p++)
        buf_putc(out, tolower((unsigned char)*p));
    if (out->len > 1 && out->data[out->len - 1] == '.')
        buf_truncate(out, out->len - 1);
    if (!smtputf8_is_ascii(out->data, out->len) &&
        smtputf8_domain_to_ascii(buf_cstr(out), &alabel) == 0)
        buf_set(out, buf_cstr(&alabel));
    buf_free(&alabel);
}

void route_parts_split(struct route *r, const char *addr, struct route_parts *p)
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

/* route_map_forms - the lookup keys of an address: user+ext@domain,
 * (ext_star: sendmail's user+*@domain), user@domain, (local domains:
 * user+ext, user), @domain; *stripped when the extension was left out of
 * the key that matched */
enum table_result route_map_forms(struct route *r, struct route_maps *m, const char *step,
                                  const struct route_parts *p, int local, int ext_star,
                                  buf_t *value, int *stripped)
{
    buf_t key = BUF_INIT;
    enum table_result res;

    *stripped = 0;
    buf_printf(&key, "%s%s%s", p->local.data, p->domain.len ? "@" : "", p->domain.data);
    res = route_maps_find(r, m, step, key.data, 1, value);
    if (table_order_next(res) && ext_star && p->ext.len && p->domain.len) {
        buf_reset(&key);
        buf_printf(&key, "%s%c*@%s", p->base.data, p->local.data[p->base.len], p->domain.data);
        res = table_order_result(res, route_maps_find(r, m, step, key.data, 0, value));
        *stripped = res == TABLE_FOUND;
    }
    if (table_order_next(res) && p->ext.len && p->domain.len) {
        buf_reset(&key);
        buf_printf(&key, "%s@%s", p->base.data, p->domain.data);
        res = table_order_result(res, route_maps_find(r, m, step, key.data, 0, value));
        *stripped = res == TABLE_FOUND;
    }
    if (table_order_next(res) && local && p->domain.len) {
        res = table_order_result(res, route_maps_find(r, m, step, p->local.data, 0, value));
        if (table_order_next(res) && p->ext.len) {
            res = table_order_result(res, route_maps_find(r, m, step, p->base.data, 0, value));
            *stripped = res == TABLE_FOUND;
        }
    }
    if (table_order_next(res) && p->domain.len) {
        buf_reset(&key);
        buf_printf(&key, "@%s", p->domain.data);
        res = table_order_result(res, route_maps_find(r, m, step, key.data, 0, value));
    }
    buf_free(&key);
    return res;
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

/* route_domains_tables - the domain as a key of the list's tables: the
 * domain, then ".parent" forms (parent forms too with d->parents); for
 * virtual_alias_domains (derive) instead "@domain" and the domains of the
 * tables' address keys */
static int route_domains_tables(struct route *r, struct route_domains *d, const char *domain)
{
    buf_t value = BUF_INIT, key = BUF_INIT;
    enum table_result res = route_maps_find(r, &d->tables, d->param, domain, 1, &value);

    for (const char *dot = strchr(domain, '.'); table_order_next(res) && !d->derive && dot;
         dot = strchr(dot + 1, '.')) {
        res = table_order_result(res, route_maps_find(r, &d->tables, d->param, dot, 0, &value));
        if (table_order_next(res) && d->parents)
            res = table_order_result(res,
                                     route_maps_find(r, &d->tables, d->param, dot + 1, 0, &value));
    }
    if (table_order_next(res) && d->derive) {
        buf_printf(&key, "@%s", domain);
        res =
            table_order_result(res, route_maps_find(r, &d->tables, d->param, key.data, 0, &value));
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

/* route_is_local_domain - for the bare-user lookup forms */
int route_is_local_domain(struct route *r, const char *domain)
{
    return route_domains_match(r, &r->mydestination, domain) == 1;
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
    route_maps_init(&r->sender_logins, cfg, "smtpd_sender_login_maps", 0);
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
    route_maps_free(&r->sender_logins);
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
                                  &r->sender_logins,
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
