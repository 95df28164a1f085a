/*
 * route_transport - where a final recipient goes: transport_maps, the
 * *_transport parameters and relayhost, the mail hub's alias check, and
 * the texts of error: and retry: routes (see route.h).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "route_impl.h"
#include "table_proxy.h"

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
        if (table_order_next(res) && p->ext.len) {
            buf_reset(&key);
            buf_printf(&key, "%s@%s", p->base.data, d);
            res = table_order_result(
                res, route_maps_find(r, &r->transport, "transport_maps", key.data, 0, value));
        }
        if (table_order_next(res)) {
            buf_set(&key, d);
            res = table_order_result(
                res, route_maps_find(r, &r->transport, "transport_maps", d, 0, value));
        }
        for (const char *dot = strchr(d, '.'); table_order_next(res) && !local && dot;
             dot = strchr(dot + 1, '.')) {
            buf_set(&key, dot);
            res = table_order_result(
                res, route_maps_find(r, &r->transport, "transport_maps", dot, 0, value));
        }
    }
    for (const char *dflt = "."; table_order_next(res) && !local && dflt;
         dflt = *dflt == '.' ? "*" : NULL) {
        buf_set(&key, dflt);
        res = table_order_result(
            res, route_maps_find(r, &r->transport, "transport_maps", dflt, 0, value));
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
enum route_status route_domain_routed(struct route *r, const char *domain, int *routed)
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
