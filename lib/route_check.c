/*
 * route_check - the RCPT verdict smtpd gives (see route.h): relay control,
 * the recipient's expansion, error: routes, unknown virtual users and
 * local_recipient_maps.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "route_impl.h"

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

int route_destination_authorized(struct route *r, const char *addr, const struct sockaddr *client)
{
    buf_t canonical = BUF_INIT;
    struct route_reply why;
    enum route_class cls;
    int rc;

    route_reply_init(&why);
    if (route_canonical_recipient(r, addr, &canonical, &why) < 0 ||
        route_class_of(r, addr_domain(canonical.data), &cls) < 0)
        rc = -1;
    else
        rc = cls != ROUTE_CLASS_DEFAULT || route_relay_client(r, client);
    route_reply_free(&why);
    buf_free(&canonical);
    return rc;
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

/* ---- the sender's owners */

enum table_result route_sender_logins(struct route *r, const char *addr, buf_t *logins)
{
    struct route_parts p;
    buf_t full = BUF_INIT;
    enum table_result res;
    int stripped;

    route_qualify(r, addr, &full);
    route_parts_init(&p);
    route_parts_split(r, buf_cstr(&full), &p);
    res = route_map_forms(r, &r->sender_logins, "smtpd_sender_login_maps", &p,
                          route_is_local_domain(r, buf_cstr(&p.domain)), 0, logins, &stripped);
    route_parts_free(&p);
    buf_free(&full);
    return res;
}
