/*
 * xclient - XCLIENT and XFORWARD applied to a session (xclient.h; the
 * argument parser is xclient_proto.c).
 *
 * XCLIENT follows Postfix: refused in a transaction (503) and to clients
 * outside smtpd_authorized_xclient_hosts (550; checked against the current
 * client, so a session that became an outside client cannot go on), then
 * the given attributes replace the session's, the HELO, the login and what
 * the restrictions learnt are forgotten, and the session starts again at
 * the greeting: tern-anvil counts the new client instead of the old one,
 * the milters are closed and opened again, "connect from" is logged for
 * the new client, the client restrictions run for it, and the 220
 * follows.  TLS stays as it is.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "anvil_client.h"
#include "attr.h"
#include "ident.h"
#include "log.h"
#include "netaddr.h"
#include "session.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"
#include "xclient.h"

#define XCLIENT_EHLO "XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT"
#define XFORWARD_EHLO "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE"

/* xclient_allowed - the current client is in nets */
static int xclient_allowed(const struct session *s, const struct netaddr_net *nets, size_t count)
{
    return count > 0 && netaddr_match((const struct sockaddr *)&s->sa, nets, count);
}

void smtpd_xclient_ehlo(struct session *s)
{
    if (xclient_allowed(s, s->cfg->xclient_hosts, s->cfg->xclient_hosts_count))
        session_reply(s, "250-" XCLIENT_EHLO);
    if (xclient_allowed(s, s->cfg->xforward_hosts, s->cfg->xforward_hosts_count))
        session_reply(s, "250-" XFORWARD_EHLO);
}

/* xclient_refused - the checks before the attributes; 1 when refused */
static int xclient_refused(struct session *s, const char *arg, const struct netaddr_net *nets,
                           size_t count, int xforward, struct smtpd_xclient_args *a)
{
    buf_t reply = BUF_INIT;

    if (s->have_mail) {
        buf_set(&reply, "503 5.5.1 Error: MAIL transaction in progress");
    } else if (*arg == '\0') {
        smtpd_xclient_parse(arg, xforward, a, &reply);
    } else if (!xclient_allowed(s, nets, count)) {
        buf_set(&reply, "550 5.7.0 Error: insufficient authorization");
        session_log_reject(s, xforward ? "XFORWARD" : "XCLIENT", buf_cstr(&reply), NULL);
    } else if (smtpd_xclient_parse(arg, xforward, a, &reply) == 0) {
        buf_free(&reply);
        return 0;
    }
    session_reply(s, "%s", buf_cstr(&reply));
    buf_free(&reply);
    return 1;
}

/* xclient_set_port - the port of sa (host byte order) */
static void xclient_set_port(struct sockaddr_storage *sa, int port)
{
    if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((unsigned short)port);
    else if (sa->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((unsigned short)port);
}

/* xclient_address - ADDR and PORT into the session */
static void xclient_address(struct session *s, const struct smtpd_xclient_args *a)
{
    if (smtpd_xclient_has(a, SMTPD_XATTR_ADDR)) {
        s->sa = a->addr;
        netaddr_format((const struct sockaddr *)&s->sa, s->ip, sizeof(s->ip));
    } else if (a->given & (1u << SMTPD_XATTR_ADDR)) { /* [UNAVAILABLE] */
        memset(&s->sa, 0, sizeof(s->sa));
        snprintf(s->ip, sizeof(s->ip), "unknown");
    }
    if (smtpd_xclient_has(a, SMTPD_XATTR_PORT))
        xclient_set_port(&s->sa, atoi(buf_cstr(&a->value[SMTPD_XATTR_PORT])));
    s->in_mynetworks = netaddr_match((const struct sockaddr *)&s->sa, s->cfg->mynetworks,
                                     s->cfg->mynetworks_count);
}

/* xclient_destination - DESTADDR and DESTPORT into the address the
 * client connected to (the milters' {daemon_addr}), as a PROXY header's
 * destination is */
static void xclient_destination(struct session *s, const struct smtpd_xclient_args *a)
{
    struct sockaddr_storage local;
    int port = -1;
    int addr_given = (a->given & (1u << SMTPD_XATTR_DESTADDR)) != 0;

    if (!addr_given && !smtpd_xclient_has(a, SMTPD_XATTR_DESTPORT))
        return;
    if (session_local_address(s, &local) < 0)
        memset(&local, 0, sizeof(local));
    if (local.ss_family == AF_INET)
        port = ntohs(((struct sockaddr_in *)&local)->sin_port);
    else if (local.ss_family == AF_INET6)
        port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
    if (smtpd_xclient_has(a, SMTPD_XATTR_DESTADDR))
        local = a->destaddr;
    else if (addr_given) /* [UNAVAILABLE]: unknown, as Postfix has it */
        memset(&local, 0, sizeof(local));
    if (smtpd_xclient_has(a, SMTPD_XATTR_DESTPORT))
        port = atoi(buf_cstr(&a->value[SMTPD_XATTR_DESTPORT]));
    if (port >= 0)
        xclient_set_port(&local, port);
    s->local_sa = local;
    s->proxied = 1;
}

/* xclient_name - NAME into the session (a known name is taken as verified,
 * as Postfix does) */
static void xclient_name(struct session *s, const struct smtpd_xclient_args *a)
{
    const char *name = buf_cstr(&a->value[SMTPD_XATTR_NAME]);

    if ((a->given & (1u << SMTPD_XATTR_NAME)) == 0)
        return;
    if (!smtpd_xclient_has(a, SMTPD_XATTR_NAME))
        name = "unknown";
    free(s->client_name);
    free(s->reverse_name);
    s->client_name = xstrdup(name);
    s->reverse_name = xstrdup(name);
    s->name_status = smtpd_xclient_has(a, SMTPD_XATTR_NAME) ? 0 : a->name_tempfail ? -1 : 1;
    s->reverse_status = s->name_status;
}

/* xclient_helo_login - HELO, PROTO and LOGIN: what is not given is
 * forgotten (the client must say HELO again, its login is gone) */
static void xclient_helo_login(struct session *s, const struct smtpd_xclient_args *a)
{
    buf_reset(&s->helo);
    s->seen_helo = smtpd_xclient_has(a, SMTPD_XATTR_HELO);
    if (s->seen_helo)
        buf_set(&s->helo, buf_cstr(&a->value[SMTPD_XATTR_HELO]));
    s->esmtp = smtpd_xclient_has(a, SMTPD_XATTR_PROTO) &&
               strcasecmp(buf_cstr(&a->value[SMTPD_XATTR_PROTO]), "ESMTP") == 0;
    session_auth_forget(s);
    if (smtpd_xclient_has(a, SMTPD_XATTR_LOGIN)) {
        s->sasl_method = xstrdup("XCLIENT");
        s->sasl_username = xstrdup(buf_cstr(&a->value[SMTPD_XATTR_LOGIN]));
    }
}

/* xclient_forget_verdicts - what the restrictions said of the old client */
static void xclient_forget_verdicts(struct session *s)
{
    char *name = s->client_name, *reverse = s->reverse_name;

    s->client_name = s->reverse_name = NULL; /* kept: smtpd_policy_end frees them */
    smtpd_policy_end(s);
    s->client_name = name;
    s->reverse_name = reverse;
    smtpd_ident_end(s);
    buf_reset(&s->client_verdict);
    s->conn_discard = s->conn_hold = 0;
    buf_reset(&s->conn_hold_reason);
    buf_reset(&s->conn_prepend);
    buf_reset(&s->conn_redirect);
}

void smtpd_xclient_command(struct session *s, const char *arg)
{
    struct smtpd_xclient_args a;
    char was[sizeof(s->client)];

    smtpd_xclient_args_init(&a);
    if (xclient_refused(s, arg, s->cfg->xclient_hosts, s->cfg->xclient_hosts_count, 0, &a)) {
        smtpd_xclient_args_free(&a);
        return;
    }
    snprintf(was, sizeof(was), "%s", s->client);
    session_reset_transaction(s);
    xclient_forget_verdicts(s);
    xclient_address(s, &a);
    xclient_destination(s, &a);
    xclient_name(s, &a);
    xclient_helo_login(s, &a);
    smtpd_xclient_args_free(&a);
    log_info("xclient: %s is now client %s[%s]", was, s->client_name, s->ip);
    s->cur_cmd = SESSION_NO_CMD;
    s->greeted = 0; /* the new client's checks, then the 220 again */
    smtpd_anvil_client_changed(s);
    smtpd_milter_end(s); /* as in Postfix: the milters meet the new client */
    smtpd_policy_named(s);
    session_greet(s);
}

/* xforward_value - the XFORWARD value of x, else dflt ("unknown" for a
 * value given as [UNAVAILABLE]) */
static const char *xforward_value(const struct session *s, enum smtpd_xattr x, const char *dflt)
{
    const struct smtpd_xclient_args *a = s->xforward;

    if (a == NULL || (a->given & (1u << x)) == 0)
        return dflt;
    return smtpd_xclient_has(a, x) ? buf_cstr(&a->value[x]) : "unknown";
}

void smtpd_xforward_command(struct session *s, const char *arg)
{
    struct smtpd_xclient_args *a = s->xforward;

    if (a == NULL) {
        a = xcalloc(1, sizeof(*a));
        smtpd_xclient_args_init(a);
    }
    if (xclient_refused(s, arg, s->cfg->xforward_hosts, s->cfg->xforward_hosts_count, 1, a)) {
        if (a != s->xforward) {
            smtpd_xclient_args_free(a);
            free(a);
        }
        return;
    }
    s->xforward = a;
    log_info("xforward from %s: name=%s addr=%s helo=%s ident=%s", s->client,
             xforward_value(s, SMTPD_XATTR_NAME, "-"), xforward_value(s, SMTPD_XATTR_ADDR, "-"),
             xforward_value(s, SMTPD_XATTR_HELO, "-"), xforward_value(s, SMTPD_XATTR_IDENT, "-"));
    session_reply(s, "250 2.0.0 Ok");
}

void smtpd_xforward_submit(const struct session *s, buf_t *out)
{
    char ip[sizeof(s->ip)];
    const char *name = s->client_name ? s->client_name : "unknown";

    snprintf(ip, sizeof(ip), "%s", xforward_value(s, SMTPD_XATTR_ADDR, s->ip));
    if (s->xforward != NULL && smtpd_xclient_has(s->xforward, SMTPD_XATTR_ADDR))
        netaddr_format((const struct sockaddr *)&s->xforward->addr, ip, sizeof(ip));
    attr_add_str(out, "client_name", xforward_value(s, SMTPD_XATTR_NAME, name));
    attr_add_str(out, "client_addr", ip);
    if (s->ident_user != NULL) /* XFORWARD's IDENT is a queue ID: logged only */
        attr_add_str(out, "ident", s->ident_user);
    attr_add_str(out, "helo", xforward_value(s, SMTPD_XATTR_HELO, buf_cstr(&s->helo)));
    attr_add_str(out, "protocol", xforward_value(s, SMTPD_XATTR_PROTO, session_protocol(s)));
}

void smtpd_xforward_reset(struct session *s)
{
    if (s->xforward == NULL)
        return;
    smtpd_xclient_args_free(s->xforward);
    free(s->xforward);
    s->xforward = NULL;
}
