/*
 * commands - one handler per SMTP command of tern-smtpd.
 *
 * Parsing is in proto.c; this file applies the session state and policy
 * (HELO requirement, unqualified senders, closed relaying, recipient limit,
 * VRFY) and sends the replies documented in docs/smtpd.md.
 */
#include <string.h>

#include "addr.h"
#include "anvil_client.h"
#include "attr.h"
#include "auth.h"
#include "etrn.h"
#include "greet.h"
#include "help.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "table.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"
#include "smtpd_tables.h"
#include "smtpd_tls.h"
#include "xclient.h"

/* room kept free in the envelope message for the sender and the rest */
#define COMMANDS_ENVELOPE_RESERVE (64 * 1024)

/* commands_hello_name - "name [ip]" of the HELO reply: the verified name */
static void commands_hello_name(const struct session *s, buf_t *out)
{
    if (s->ident_user != NULL) /* SMTP-25: what the client's identd said */
        buf_printf(out, "IDENT:%s@", s->ident_user);
    if (s->client_name != NULL && s->name_status == 0)
        buf_printf(out, "%s [%s]", s->client_name, s->ip);
    else
        buf_printf(out, "[%s]", s->ip);
}

/* commands_requiretls_offered - REQUIRETLS (RFC 8689) is listed in EHLO only
 * on a TLS session: a client must not ask for it over a cleartext hop */
static int commands_requiretls_offered(const struct session *s)
{
    return s->cfg->requiretls && s->tls_active;
}

/* commands_mail_requiretls - may this MAIL carry REQUIRETLS?  0 yes (or it
 * has none); -1 with the reply.  RFC 8689 section 2 lets a client give the
 * option only on a session that itself uses TLS and leaves the server's
 * refusal open; without TLS we answer as RFC 3207 does for a command that
 * needs TLS first (530) with RFC 5248's X.7.10 "Encryption Needed".  With
 * smtpd_requiretls = no the extension does not exist here: the parameter is
 * unknown (555 5.5.4, RFC 5321 section 4.1.1.11). */
static int commands_mail_requiretls(const struct session *s, buf_t *reply)
{
    if (!s->mail.requiretls)
        return 0;
    if (!s->cfg->requiretls)
        buf_set(reply, "555 5.5.4 REQUIRETLS parameter unrecognized");
    else if (!s->tls_active)
        buf_set(reply, "530 5.7.10 REQUIRETLS needs a TLS session");
    else
        return 0;
    return -1;
}

/* commands_mail_smtputf8 - SMTPUTF8 on MAIL (RFC 6531) and the sender
 * address it allows: 0 ok; -1 with the reply.  With smtputf8_enable = no
 * the parameter is unknown (555 5.5.4), as REQUIRETLS's is. */
static int commands_mail_smtputf8(const struct session *s, buf_t *reply)
{
    if (s->mail.smtputf8 && !s->cfg->smtputf8) {
        buf_set(reply, "555 5.5.4 SMTPUTF8 parameter unrecognized");
        return -1;
    }
    return proto_address_check(buf_cstr(&s->mail.addr), 1, s->mail.smtputf8, reply);
}

/* commands_helo_reply - the 250 reply and the EHLO extensions */
static void commands_helo_reply(struct session *s)
{
    const char *host = s->cfg->myhostname;
    buf_t who = BUF_INIT;

    commands_hello_name(s, &who);
    if (!s->esmtp) {
        session_reply(s, "250 %s Hello %s, pleased to meet you", host, buf_cstr(&who));
        buf_free(&who);
        return;
    }
    session_reply(s, "250-%s Hello %s, pleased to meet you", host, buf_cstr(&who));
    buf_free(&who);
    session_reply(s, "250-ENHANCEDSTATUSCODES");
    session_reply(s, "250-PIPELINING");
    session_reply(s, "250-8BITMIME");
    session_reply(s, "250-BINARYMIME");
    session_reply(s, "250-CHUNKING");
    if (s->cfg->size_limit > 0)
        session_reply(s, "250-SIZE %lld", s->cfg->size_limit);
    else
        session_reply(s, "250-SIZE");
    session_reply(s, "250-DSN");
    if (s->cfg->smtputf8)
        session_reply(s, "250-SMTPUTF8");
    if (smtpd_expn_offered(s))
        session_reply(s, "250-EXPN");
    if (smtpd_etrn_offered(s))
        session_reply(s, "250-ETRN");
    if (smtpd_tls_offer(s))
        session_reply(s, "250-STARTTLS");
    if (commands_requiretls_offered(s))
        session_reply(s, "250-REQUIRETLS");
    buf_t auth = BUF_INIT;
    if (smtpd_auth_ehlo(s, &auth))
        session_reply(s, "250-%s", buf_cstr(&auth));
    buf_free(&auth);
    smtpd_xclient_ehlo(s);
    session_reply(s, "250 HELP");
}

/* commands_helo_milter - the milters saw HELO (a refusal is given at MAIL) */
static void commands_helo_milter(struct session *s, int ok)
{
    (void)ok;
    commands_helo_reply(s);
}

/* commands_helo_verdict - smtpd_helo_restrictions (smtpd_delay_reject = no) */
static void commands_helo_verdict(struct session *s, struct policy_result *r)
{
    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        smtpd_policy_log_reject(s, "HELO", r, NULL);
        session_reply(s, "%s", buf_cstr(&r->reply));
        s->seen_helo = 0;
        return;
    }
    smtpd_policy_keep(s, r, "HELO", NULL);
    smtpd_milter_helo(s, commands_helo_milter);
}

/* commands_helo - HELO and EHLO */
static void commands_helo(struct session *s, const char *arg, int esmtp)
{
    const char *verb = esmtp ? "EHLO" : "HELO";

    if (*arg == '\0') {
        session_reply(s, "501 5.0.0 %s requires domain address", verb);
        return;
    }
    session_reset_transaction(s);
    buf_reset(&s->helo);
    proto_printable(arg, strlen(arg), 255, &s->helo);
    s->seen_helo = 1;
    s->esmtp = esmtp;
    if (s->client_verdict.len > 0) {
        session_reply(s, "%s", buf_cstr(&s->client_verdict));
        return;
    }
    smtpd_policy_run(s, POLICY_HELO, commands_helo_verdict);
}

/* commands_mail_reject - reply, and log a policy refusal */
static void commands_mail_reject(struct session *s, const char *reply)
{
    session_log_reject(s, "MAIL", reply, NULL);
    session_reply(s, "%s", reply);
    proto_mail_free(&s->mail);
}

/* commands_mail_milter - the milters' word on MAIL (a refusal was sent) */
static void commands_mail_milter(struct session *s, int ok)
{
    if (!ok) {
        proto_mail_free(&s->mail);
        return;
    }
    s->have_mail = 1;
    session_reply(s, "250 2.1.0 %s... Sender ok", buf_cstr(&s->mail.echo));
}

/* commands_mail_verdict - smtpd_sender_restrictions (smtpd_delay_reject = no) */
static void commands_mail_verdict(struct session *s, struct policy_result *r)
{
    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        smtpd_policy_log_reject(s, "MAIL", r, NULL);
        session_reply(s, "%s", buf_cstr(&r->reply));
        proto_mail_free(&s->mail);
        return;
    }
    smtpd_policy_keep(s, r, "MAIL", NULL);
    smtpd_milter_mail(s, commands_mail_milter);
}

/* commands_mail - MAIL FROM: */
static void commands_mail(struct session *s, const char *arg)
{
    buf_t reply = BUF_INIT;
    int login;

    table_refresh_next(); /* and from this transaction on */
    smtpd_tables_transaction(s);
    if (!s->have_mail)
        s->bdat.failed = 0; /* a new transaction after a failed BDAT chunk */
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
    } else if (commands_mail_requiretls(s, &reply) < 0) {
        session_reply(s, "%s", buf_cstr(&reply));
        proto_mail_free(&s->mail);
    } else if (commands_mail_smtputf8(s, &reply) < 0) {
        commands_mail_reject(s, buf_cstr(&reply));
    } else if (s->mail.addr.len > 0 && !addr_is_qualified(buf_cstr(&s->mail.addr)) &&
               !s->in_mynetworks) {
        buf_printf(&reply, "553 5.5.4 %s... Domain name required for sender address %s",
                   buf_cstr(&s->mail.echo), buf_cstr(&s->mail.addr));
        commands_mail_reject(s, buf_cstr(&reply));
    } else if ((login = smtpd_auth_sender_check(s, buf_cstr(&s->mail.addr), &reply)) != 0) {
        if (login < 0)
            commands_mail_reject(s, buf_cstr(&reply));
        else
            proto_mail_free(&s->mail); /* parsed again when the answer is in */
    } else if (s->client_verdict.len > 0) {
        commands_mail_reject(s, buf_cstr(&s->client_verdict));
    } else {
        smtpd_milter_mail_args(s, arg);
        smtpd_policy_run(s, POLICY_MAIL, commands_mail_verdict);
    }
    buf_free(&reply);
}

/* commands_rcpt_accept - remember the recipient for cleanup */
static void commands_rcpt_accept(struct session *s)
{
    const char *addr = buf_cstr(&s->rcpt.addr);

    attr_add_str(&s->rcpts, "rcpt", addr);
    attr_add_str(&s->rcpts, "orig_rcpt", addr);
    smtpd_privacy_notify(s, &s->rcpt.notify);
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

/* commands_rcpt_milter - the milters' word on RCPT (a refusal was sent) */
static void commands_rcpt_milter(struct session *s, int ok)
{
    if (ok)
        commands_rcpt_accept(s);
}

/* commands_rcpt_verdict - the restrictions said their word; then the
 * recipient itself (lib/route: unknown users, error: routes) */
static void commands_rcpt_verdict(struct session *s, struct policy_result *r)
{
    struct route_client client = {(const struct sockaddr *)&s->sa, r->relay};
    struct route_reply why;
    buf_t reply = BUF_INIT;
    enum route_status st;
    int waiting;

    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        smtpd_policy_log_reject(s, "RCPT", r, buf_cstr(&s->rcpt.addr));
        session_reply(s, "%s", buf_cstr(&r->reply));
        return;
    }
    route_reply_init(&why);
    smtpd_tables_enter(s);
    st = route_check_recipient(s->cfg->route, buf_cstr(&s->rcpt.addr), &client, &why);
    waiting = smtpd_tables_leave(s, SMTPD_TABLES_COMMAND); /* RCPT runs again */
    if (!waiting && st != ROUTE_OK) {
        buf_printf(&reply, "%s %s %s", why.code, why.dsn, buf_cstr(&why.text));
        commands_rcpt_reject(s, buf_cstr(&reply));
    } else if (!waiting) {
        smtpd_policy_keep(s, r, "RCPT", buf_cstr(&s->rcpt.addr));
        smtpd_milter_rcpt(s, commands_rcpt_milter);
    }
    route_reply_free(&why);
    buf_free(&reply);
}

/* commands_rcpt - RCPT TO: */
static void commands_rcpt(struct session *s, const char *arg)
{
    buf_t reply = BUF_INIT;

    if (!s->have_mail) {
        session_reply(s, "503 5.0.0 Need MAIL before RCPT");
    } else if (s->bdat.open) {
        session_reply(s, "503 5.5.1 Error: RCPT in the middle of a BDAT transaction");
    } else if (proto_rcpt_parse(arg, &s->rcpt, &reply) < 0) {
        session_reply(s, "%s", buf_cstr(&reply));
    } else if (proto_address_check(buf_cstr(&s->rcpt.addr), 0, s->mail.smtputf8, &reply) < 0) {
        commands_rcpt_reject(s, buf_cstr(&reply));
    } else if (commands_rcpt_full(s)) {
        commands_rcpt_reject(s, "452 4.5.3 Too many recipients");
    } else if (s->client_verdict.len > 0) {
        commands_rcpt_reject(s, buf_cstr(&s->client_verdict));
    } else {
        smtpd_milter_rcpt_args(s, arg);
        smtpd_policy_run(s, POLICY_RCPT, commands_rcpt_verdict);
    }
    buf_free(&reply);
}

/* commands_data_milter - the milters' word on DATA (a refusal was sent) */
static void commands_data_milter(struct session *s, int ok)
{
    if (ok)
        message_start(s);
}

/* commands_data_verdict - smtpd_data_restrictions */
static void commands_data_verdict(struct session *s, struct policy_result *r)
{
    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        smtpd_policy_log_reject(s, "DATA", r, NULL);
        session_reply(s, "%s", buf_cstr(&r->reply));
        return;
    }
    smtpd_policy_keep(s, r, "DATA", NULL);
    smtpd_milter_data(s, commands_data_milter);
}

/* commands_data - DATA */
static void commands_data(struct session *s, const char *arg)
{
    if (!s->have_mail)
        session_reply(s, "503 5.0.0 Need MAIL command");
    else if (smtpd_bdat_data_refusal(s) != NULL)
        session_reply(s, "%s", smtpd_bdat_data_refusal(s));
    else if (s->rcpt_count == 0)
        session_reply(s, "503 5.0.0 Need RCPT (recipient)");
    else if (*arg != '\0')
        session_reply(s, "501 5.5.4 Syntax error in parameters");
    else
        smtpd_policy_run(s, POLICY_DATA, commands_data_verdict);
}

/* commands_unknown_milter - 500 quoting the line (still in s->line: the
 * client is not read meanwhile), unless a milter refused it with its own
 * reply */
static void commands_unknown_milter(struct session *s, int ok)
{
    buf_t echo = BUF_INIT;

    if (!ok)
        return;
    proto_printable(s->line.data, s->line.len, PROTO_ECHO_MAX, &echo);
    session_reply(s, "500 5.5.1 Command unrecognized: \"%s\"", buf_cstr(&echo));
    buf_free(&echo);
}

/* commands_unknown - the milters see it, then 500 */
static void commands_unknown(struct session *s, const char *line, size_t len)
{
    smtpd_milter_unknown(s, line, len, commands_unknown_milter);
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
    case PROTO_CMD_BDAT:
        smtpd_bdat_command(s, arg);
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
        smtpd_help_command(s, arg);
        break;
    case PROTO_CMD_VRFY:
        smtpd_vrfy_command(s, arg);
        break;
    case PROTO_CMD_STARTTLS:
        smtpd_tls_starttls(s, arg);
        break;
    case PROTO_CMD_AUTH:
        smtpd_auth_command(s, arg);
        break;
    case PROTO_CMD_EXPN:
        smtpd_expn_command(s, arg);
        break;
    case PROTO_CMD_XCLIENT:
        smtpd_xclient_command(s, arg);
        break;
    case PROTO_CMD_XFORWARD:
        smtpd_xforward_command(s, arg);
        break;
    case PROTO_CMD_ETRN:
        smtpd_etrn_command(s, arg);
        break;
    case PROTO_CMD_VERB:
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

/* commands_refuse - reply to a command refused before its handler; a
 * BDAT's chunk is still read and dropped first (smtpd_bdat_refuse) */
static void commands_refuse(struct session *s, enum proto_cmd cmd, const char *arg,
                            const char *reply)
{
    if (cmd == PROTO_CMD_BDAT)
        smtpd_bdat_refuse(s, arg, reply);
    else
        session_reply(s, "%s", reply);
}

/* session_command - one command line.  Every refusal before dispatch of a
 * BDAT goes through smtpd_bdat_refuse (or smtpd_bdat_unreadable), so its
 * chunk is never read as commands; smtpd_privacy_refuse and
 * smtpd_anvil_command never refuse BDAT. */
void session_command(struct session *s, const char *line, size_t len)
{
    const char *arg = "";
    enum proto_cmd cmd = proto_cmd_parse(line, &arg);
    int unreadable = memchr(line, '\0', len) != NULL;

    if (unreadable && cmd != PROTO_CMD_BDAT)
        cmd = PROTO_CMD_UNKNOWN;
    s->cmd_total[cmd]++;
    s->cur_cmd = (int)cmd;
    s->stage = cmd == PROTO_CMD_UNKNOWN ? "UNKNOWN" : proto_cmd_upper(cmd);
    if (unreadable && cmd == PROTO_CMD_BDAT) {
        smtpd_bdat_unreadable(s); /* where its chunk ends is unknown */
        return;
    }
    if (s->greet_rejecting) /* an early talker: nothing is done (greet.c) */
        cmd = smtpd_greet_rejecting(s, cmd, arg);
    if (cmd == SMTPD_GREET_ANSWERED)
        return;
    if (cmd == PROTO_CMD_UNKNOWN)
        commands_unknown(s, line, len);
    else if (smtpd_tls_required(s) && !commands_before_tls(cmd))
        commands_refuse(s, cmd, arg, "530 5.7.0 Must issue a STARTTLS command first");
    else if (!smtpd_privacy_refuse(s, cmd) && !smtpd_anvil_command(s, cmd, line, len))
        commands_dispatch(s, cmd, arg);
}

/* session_command_run - a command that waited for tern-anvil */
void session_command_run(struct session *s, const char *line, size_t len)
{
    const char *arg = "";
    enum proto_cmd cmd = proto_cmd_parse(line, &arg);

    commands_dispatch(s, cmd, arg);
}
