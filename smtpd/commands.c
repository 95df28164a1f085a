/*
 * commands - one handler per SMTP command of tern-smtpd.
 *
 * Parsing is in proto.c; this file applies the session state and policy
 * (HELO requirement, unqualified senders, closed relaying, recipient limit,
 * VRFY) and sends the replies documented in docs/smtpd.md.
 */
#include <pwd.h>
#include <string.h>

#include "addr.h"
#include "anvil_client.h"
#include "attr.h"
#include "auth.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "tern_build.h"
#include "smtpd_tls.h"

/* room kept free in the envelope message for the sender and the rest */
#define COMMANDS_ENVELOPE_RESERVE (64 * 1024)

/* commands_helo - HELO and EHLO */
static void commands_helo(struct session *s, const char *arg, int esmtp)
{
    const char *verb = esmtp ? "EHLO" : "HELO";
    const char *host = s->cfg->myhostname;

    if (*arg == '\0') {
        session_reply(s, "501 5.0.0 %s requires domain address", verb);
        return;
    }
    session_reset_transaction(s);
    buf_reset(&s->helo);
    proto_printable(arg, strlen(arg), 255, &s->helo);
    s->seen_helo = 1;
    s->esmtp = esmtp;
    if (!esmtp) {
        session_reply(s, "250 %s Hello [%s], pleased to meet you", host, s->ip);
        return;
    }
    session_reply(s, "250-%s Hello [%s], pleased to meet you", host, s->ip);
    session_reply(s, "250-ENHANCEDSTATUSCODES");
    session_reply(s, "250-PIPELINING");
    session_reply(s, "250-8BITMIME");
    if (s->cfg->size_limit > 0)
        session_reply(s, "250-SIZE %lld", s->cfg->size_limit);
    else
        session_reply(s, "250-SIZE");
    session_reply(s, "250-DSN");
    if (smtpd_tls_offer(s))
        session_reply(s, "250-STARTTLS");
    buf_t auth = BUF_INIT;
    if (smtpd_auth_ehlo(s, &auth))
        session_reply(s, "250-%s", buf_cstr(&auth));
    buf_free(&auth);
    session_reply(s, "250 HELP");
}

/* commands_mail_reject - reply, and log a policy refusal */
static void commands_mail_reject(struct session *s, const char *reply)
{
    session_log_reject(s, "MAIL", reply, NULL);
    session_reply(s, "%s", reply);
    proto_mail_free(&s->mail);
}

/* commands_mail - MAIL FROM: */
static void commands_mail(struct session *s, const char *arg)
{
    buf_t reply = BUF_INIT;

    if (s->cfg->helo_required && !s->seen_helo) {
        session_reply(s, "503 5.0.0 Polite people say HELO first");
    } else if (s->have_mail) {
        session_reply(s, "503 5.5.0 Sender already specified");
    } else if (s->cfg->auth_required && s->sasl_username == NULL) {
        session_reply(s, "530 5.7.0 Authentication required");
    } else if (proto_mail_parse(arg, s->cfg->size_limit, &s->mail, &reply) < 0) {
        if (strncmp(buf_cstr(&reply), "552 ", 4) == 0)
            commands_mail_reject(s, buf_cstr(&reply));
        else
            session_reply(s, "%s", buf_cstr(&reply));
        proto_mail_free(&s->mail);
    } else if (s->mail.addr.len > 0 && !addr_is_qualified(buf_cstr(&s->mail.addr)) &&
               !s->in_mynetworks) {
        buf_printf(&reply, "553 5.5.4 %s... Domain name required for sender address %s",
                   buf_cstr(&s->mail.echo), buf_cstr(&s->mail.addr));
        commands_mail_reject(s, buf_cstr(&reply));
    } else if (smtpd_auth_sender_check(s, buf_cstr(&s->mail.addr), &reply) < 0) {
        commands_mail_reject(s, buf_cstr(&reply));
    } else {
        s->have_mail = 1;
        session_reply(s, "250 2.1.0 %s... Sender ok", buf_cstr(&s->mail.echo));
    }
    buf_free(&reply);
}

/* commands_rcpt_local - unqualified, or a domain of the local class */
static int commands_rcpt_local(const struct session *s, const char *addr)
{
    enum route_class cls;

    return route_class_of(s->cfg->route, addr_domain(addr), &cls) == ROUTE_OK &&
           cls == ROUTE_CLASS_LOCAL;
}

/* commands_rcpt_accept - remember the recipient for cleanup */
static void commands_rcpt_accept(struct session *s)
{
    const char *addr = buf_cstr(&s->rcpt.addr);

    attr_add_str(&s->rcpts, "rcpt", addr);
    attr_add_str(&s->rcpts, "orig_rcpt", addr);
    attr_add_str(&s->rcpts, "notify", buf_cstr(&s->rcpt.notify));
    attr_add_str(&s->rcpts, "orcpt", buf_cstr(&s->rcpt.orcpt));
    s->rcpt_count++;
    session_reply(s, "250 2.1.5 %s... Recipient ok", buf_cstr(&s->rcpt.echo));
}

/* commands_rcpt_reject - reply and log a policy refusal */
static void commands_rcpt_reject(struct session *s, const char *reply)
{
    session_log_reject(s, "RCPT", reply, buf_cstr(&s->rcpt.addr));
    session_reply(s, "%s", reply);
}

/* commands_rcpt_full - recipient limit, or no room left in the envelope */
static int commands_rcpt_full(const struct session *s)
{
    return s->rcpt_count >= s->cfg->recipient_limit ||
           s->rcpts.len > ATTR_MAX_MESSAGE - COMMANDS_ENVELOPE_RESERVE;
}

/* commands_relay_rules - smtpd_relay_restrictions: 1 when the client may
 * relay, 0 when only the site's own destinations are open to it, -1 for a
 * "reject" */
static int commands_relay_rules(struct session *s)
{
    for (size_t i = 0; i < s->cfg->relay_rule_count; i++) {
        switch (s->cfg->relay_rules[i]) {
        case SMTPD_RELAY_PERMIT_MYNETWORKS:
            if (s->in_mynetworks)
                return 1;
            break;
        case SMTPD_RELAY_PERMIT_SASL:
            if (s->sasl_username != NULL)
                return 1;
            break;
        case SMTPD_RELAY_PERMIT_CLIENTCERTS:
            if (smtpd_tls_clientcert_ok(s))
                return 1;
            break;
        case SMTPD_RELAY_REJECT_UNAUTH:
            return 0;
        case SMTPD_RELAY_PERMIT:
            return 1;
        case SMTPD_RELAY_REJECT:
            return -1;
        }
    }
    return 0;
}

/* commands_rcpt_check - relay control and the recipient itself
 * (lib/route.h); on a refusal reply gets the whole reply line */
static enum route_status commands_rcpt_check(struct session *s, buf_t *reply)
{
    int relay = commands_relay_rules(s);
    struct route_client client = {(const struct sockaddr *)&s->sa, relay > 0};
    struct route_reply why;
    enum route_status st;

    if (relay < 0) {
        buf_printf(reply, "554 5.7.1 <%s>: Recipient address rejected: Access denied",
                   buf_cstr(&s->rcpt.echo));
        return ROUTE_REJECT;
    }
    route_reply_init(&why);
    st = route_check_recipient(s->cfg->route, buf_cstr(&s->rcpt.addr), &client, &why);
    if (st != ROUTE_OK)
        buf_printf(reply, "%s %s %s", why.code, why.dsn, buf_cstr(&why.text));
    route_reply_free(&why);
    return st;
}

/* commands_rcpt - RCPT TO: */
static void commands_rcpt(struct session *s, const char *arg)
{
    buf_t reply = BUF_INIT;

    if (!s->have_mail) {
        session_reply(s, "503 5.0.0 Need MAIL before RCPT");
    } else if (proto_rcpt_parse(arg, &s->rcpt, &reply) < 0) {
        session_reply(s, "%s", buf_cstr(&reply));
    } else if (commands_rcpt_full(s)) {
        commands_rcpt_reject(s, "452 4.5.3 Too many recipients");
    } else if (commands_rcpt_check(s, &reply) != ROUTE_OK) {
        commands_rcpt_reject(s, buf_cstr(&reply));
    } else {
        commands_rcpt_accept(s);
    }
    buf_free(&reply);
}

/* commands_data - DATA */
static void commands_data(struct session *s, const char *arg)
{
    if (!s->have_mail)
        session_reply(s, "503 5.0.0 Need MAIL command");
    else if (s->rcpt_count == 0)
        session_reply(s, "503 5.0.0 Need RCPT (recipient)");
    else if (*arg != '\0')
        session_reply(s, "501 5.5.4 Syntax error in parameters");
    else
        message_start(s);
}

/* commands_help - the built-in HELP text */
static void commands_help(struct session *s)
{
    session_reply(s, "214-2.0.0 This is tern %s", TERN_VERSION);
    session_reply(s, "214-2.0.0 Topics:");
    session_reply(s, "214-2.0.0     HELO EHLO MAIL RCPT DATA");
    session_reply(s, "214-2.0.0     RSET NOOP QUIT HELP VRFY");
    session_reply(s, "214 2.0.0 End of HELP info");
}

/* commands_vrfy_lookup - a local address: does the user exist? */
static void commands_vrfy_lookup(struct session *s, const char *arg, const char *addr)
{
    buf_t local = BUF_INIT;
    buf_t echo = BUF_INIT;

    addr_local_part(addr, &local);
    if (local.len > 0 && getpwnam(buf_cstr(&local)) != NULL) {
        proto_printable(local.data, local.len, ADDR_MAX_LENGTH, &echo);
        session_reply(s, "250 2.1.5 <%s@%s>", buf_cstr(&echo), s->cfg->myhostname);
    } else {
        proto_printable(arg, strlen(arg), ADDR_MAX_LENGTH, &echo);
        session_reply(s, "550 5.1.1 %s... User unknown", buf_cstr(&echo));
    }
    buf_free(&local);
    buf_free(&echo);
}

/* commands_vrfy - VRFY: only local users are ever confirmed */
static void commands_vrfy(struct session *s, const char *arg)
{
    buf_t addr = BUF_INIT;
    size_t len = strlen(arg);

    if (len == 0) {
        session_reply(s, "501 5.5.2 Argument required");
        return;
    }
    if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>')
        buf_append(&addr, arg + 1, len - 2);
    else
        buf_append(&addr, arg, len);
    if (s->cfg->disable_vrfy || addr.len == 0 || !commands_rcpt_local(s, buf_cstr(&addr)))
        session_reply(s, "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery "
                         "(or try finger)");
    else
        commands_vrfy_lookup(s, arg, buf_cstr(&addr));
    buf_free(&addr);
}

/* commands_unknown - 500 quoting the line */
static void commands_unknown(struct session *s, const char *line, size_t len)
{
    buf_t echo = BUF_INIT;

    proto_printable(line, len, PROTO_ECHO_MAX, &echo);
    session_reply(s, "500 5.5.1 Command unrecognized: \"%s\"", buf_cstr(&echo));
    buf_free(&echo);
}

/* commands_quit - 221 and close */
static void commands_quit(struct session *s)
{
    session_reply(s, "221 2.0.0 %s closing connection", s->cfg->myhostname);
    session_close_after_flush(s);
}

/* commands_dispatch - the command table */
static void commands_dispatch(struct session *s, enum proto_cmd cmd, const char *arg)
{
    switch (cmd) {
    case PROTO_CMD_HELO:
    case PROTO_CMD_EHLO:
        commands_helo(s, arg, cmd == PROTO_CMD_EHLO);
        break;
    case PROTO_CMD_MAIL:
        commands_mail(s, arg);
        break;
    case PROTO_CMD_RCPT:
        commands_rcpt(s, arg);
        break;
    case PROTO_CMD_DATA:
        commands_data(s, arg);
        break;
    case PROTO_CMD_RSET:
        session_reset_transaction(s);
        session_reply(s, "250 2.0.0 Reset state");
        break;
    case PROTO_CMD_NOOP:
        session_reply(s, "250 2.0.0 OK");
        break;
    case PROTO_CMD_QUIT:
        commands_quit(s);
        break;
    case PROTO_CMD_HELP:
        commands_help(s);
        break;
    case PROTO_CMD_VRFY:
        commands_vrfy(s, arg);
        break;
    case PROTO_CMD_STARTTLS:
        smtpd_tls_starttls(s, arg);
        break;
    case PROTO_CMD_AUTH:
        smtpd_auth_command(s, arg);
        break;
    case PROTO_CMD_EXPN:
    case PROTO_CMD_VERB:
    case PROTO_CMD_ETRN:
        session_reply(s, "502 5.7.0 Sorry, we do not allow this operation");
        break;
    default:
        session_reply(s, "502 5.5.1 Error: command not implemented");
        break;
    }
}

/* commands_before_tls - what a client may do before STARTTLS where TLS is
 * required (smtpd_tls_security_level = encrypt) */
static int commands_before_tls(enum proto_cmd cmd)
{
    return cmd == PROTO_CMD_EHLO || cmd == PROTO_CMD_HELO || cmd == PROTO_CMD_STARTTLS ||
           cmd == PROTO_CMD_NOOP || cmd == PROTO_CMD_RSET || cmd == PROTO_CMD_QUIT ||
           cmd == PROTO_CMD_HELP;
}

/* session_command - one command line */
void session_command(struct session *s, const char *line, size_t len)
{
    const char *arg = "";
    enum proto_cmd cmd = PROTO_CMD_UNKNOWN;

    if (memchr(line, '\0', len) == NULL)
        cmd = proto_cmd_parse(line, &arg);
    s->cmd_total[cmd]++;
    s->cur_cmd = (int)cmd;
    s->stage = cmd == PROTO_CMD_UNKNOWN ? "UNKNOWN" : proto_cmd_upper(cmd);
    if (cmd == PROTO_CMD_UNKNOWN)
        commands_unknown(s, line, len);
    else if (smtpd_tls_required(s) && !commands_before_tls(cmd))
        session_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
    else if (!smtpd_anvil_command(s, cmd, line, len)) /* 1: runs when tern-anvil answers */
        commands_dispatch(s, cmd, arg);
}

/* session_command_run - a command that waited for tern-anvil */
void session_command_run(struct session *s, const char *line, size_t len)
{
    const char *arg = "";
    enum proto_cmd cmd = proto_cmd_parse(line, &arg);

    commands_dispatch(s, cmd, arg);
}
