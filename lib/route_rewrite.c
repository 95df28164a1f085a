/*
 * route_rewrite - address rewriting (see route.h): canonical maps,
 * masquerading, smtp_generic_maps, header addresses and virtual alias
 * expansion.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "route_impl.h"

/* ---- canonical maps and masquerading */

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
    route_rewrote(e->r, "virtual_alias_maps", addr, subst.data, NULL);
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
        e->chain[e->depth++] = addr;
        route_vexp_value(e, addr, value.data, &p, stripped);
        e->depth--;
    }
    route_parts_free(&p);
    buf_free(&value);
}

/* route_canonical_recipient - qualification and the recipient canonical maps */
enum route_status route_canonical_recipient(struct route *r, const char *addr, buf_t *out,
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
