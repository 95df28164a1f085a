/*
 * vrfy - VRFY (RFC 5321 3.5.1) for tern-smtpd (docs/smtpd.md "VRFY and
 * EXPN").  Only what this host is sure of is confirmed:
 *
 *   a local domain (or no domain): an alias of alias_maps or a user of the
 *       system → "250 2.1.5 <name@myhostname>", else "550 5.1.1 arg... User
 *       unknown"; an alias table that fails → 451 4.3.0 (a failed lookup
 *       is a temporary failure)
 *   a virtual domain: route_check_recipient, the check RCPT makes (virtual
 *       users, virtual_alias_maps) → "250 2.1.5 <addr>", or its refusal
 *   anything else, and disable_vrfy_command / novrfy → 252
 */
#include <ctype.h>
#include <pwd.h>
#include <string.h>

#include "addr.h"
#include "greet.h"
#include "route.h"
#include "session.h"
#include "smtpd_tables.h"
#include "table.h"

#define VRFY_UNSURE "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)"

/* vrfy_local - an alias or a user of a local domain */
static void vrfy_local(struct session *s, const char *addr, const char *echo, buf_t *reply)
{
    buf_t name = BUF_INIT, value = BUF_INIT, shown = BUF_INIT;
    enum table_result r = TABLE_NOTFOUND;

    addr_local_part(addr, &name);
    proto_printable(name.data, name.len, ADDR_MAX_LENGTH, &shown);
    for (size_t i = 0; i < name.len; i++)
        name.data[i] = (char)tolower((unsigned char)name.data[i]);
    if (name.len > 0 && s->cfg->aliases != NULL)
        r = table_list_lookup(s->cfg->aliases, buf_cstr(&name), &value);
    if (r == TABLE_TEMPFAIL)
        buf_printf(reply, "451 4.3.0 %s... Alias database unavailable", echo);
    else if (name.len > 0 && (r == TABLE_FOUND || getpwnam(buf_cstr(&shown)) != NULL))
        buf_printf(reply, "250 2.1.5 <%s@%s>", buf_cstr(&shown), s->cfg->myhostname);
    else
        buf_printf(reply, "550 5.1.1 %s... User unknown", echo);
    buf_free(&name);
    buf_free(&value);
    buf_free(&shown);
}

/* vrfy_virtual - a virtual domain: what RCPT would say */
static void vrfy_virtual(struct session *s, const char *addr, buf_t *reply)
{
    struct route_client client = {(const struct sockaddr *)&s->sa, s->in_mynetworks};
    struct route_reply why;
    buf_t shown = BUF_INIT;

    route_reply_init(&why);
    proto_printable(addr, strlen(addr), ADDR_MAX_LENGTH, &shown);
    if (route_check_recipient(s->cfg->route, addr, &client, &why) == ROUTE_OK)
        buf_printf(reply, "250 2.1.5 <%s>", buf_cstr(&shown));
    else
        buf_printf(reply, "%s %s %s", why.code, why.dsn, buf_cstr(&why.text));
    route_reply_free(&why);
    buf_free(&shown);
}

/* vrfy_answer - the reply into reply, looked up in the session's table
 * scope; 1 when a remote table has not answered yet (VRFY runs again) */
static int vrfy_answer(struct session *s, const char *addr, const char *echo, buf_t *reply)
{
    enum route_class cls = ROUTE_CLASS_DEFAULT;
    int waiting;

    smtpd_tables_enter(s);
    if (route_class_of(s->cfg->route, addr_domain(addr), &cls) != ROUTE_OK)
        cls = ROUTE_CLASS_DEFAULT;
    if (cls == ROUTE_CLASS_LOCAL)
        vrfy_local(s, addr, echo, reply);
    else if (cls == ROUTE_CLASS_VIRTUAL)
        vrfy_virtual(s, addr, reply);
    else
        buf_set(reply, VRFY_UNSURE);
    waiting = smtpd_tables_leave(s, SMTPD_TABLES_COMMAND);
    if (!waiting)
        smtpd_tables_forget(s);
    return waiting;
}

void smtpd_vrfy_command(struct session *s, const char *arg)
{
    buf_t addr = BUF_INIT, echo = BUF_INIT, reply = BUF_INIT;

    proto_unbracket(arg, &addr);
    proto_printable(arg, strlen(arg), ADDR_MAX_LENGTH, &echo);
    if (*arg == '\0')
        session_reply(s, "501 5.5.2 Argument required");
    else if (s->cfg->disable_vrfy || addr.len == 0)
        session_reply(s, VRFY_UNSURE);
    else if (!vrfy_answer(s, buf_cstr(&addr), buf_cstr(&echo), &reply))
        session_reply(s, "%s", buf_cstr(&reply));
    buf_free(&addr);
    buf_free(&echo);
    buf_free(&reply);
}
