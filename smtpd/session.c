/*
 * session - one SMTP session: socket I/O, the input loop, replies, timeouts,
 * and the connect/disconnect log lines.
 *
 * Input is processed strictly in order from the bufferevent's input buffer:
 * command lines in SESSION_CMD, content bytes in SESSION_DATA.  Replies go to
 * the output buffer, which libevent flushes when the callback returns, so a
 * pipelined batch of commands gets one batch of replies.  While a reply must
 * wait (cleanup's answer after DATA, or a full cleanup buffer) reading stops
 * and the pipelined input stays in the buffer until session_resume_input.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "anvil_client.h"
#include "smtpd_tables.h"
#include "auth.h"
#include "cleanup_stream.h"
#include "etrn.h"
#include "greet.h"
#include "ident.h"
#include "log.h"
#include "maillog.h"
#include "netaddr.h"
#include "reject_reason.h"
#include "session.h"
#include "smtputf8.h"
#include "stats.h"
#include "table.h"
#include "timeutil.h"
#include "tern_build.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"
#include "smtpd_tls.h"
#include "xclient.h"

/* the order of the counters in the disconnect line (Postfix's order) */
static const enum proto_cmd session_log_order[] = {
    PROTO_CMD_HELO, PROTO_CMD_EHLO,    PROTO_CMD_STARTTLS, PROTO_CMD_AUTH, PROTO_CMD_MAIL,
    PROTO_CMD_RCPT, PROTO_CMD_DATA,    PROTO_CMD_BDAT,     PROTO_CMD_RSET, PROTO_CMD_NOOP,
    PROTO_CMD_VRFY, PROTO_CMD_EXPN,    PROTO_CMD_VERB,     PROTO_CMD_ETRN, PROTO_CMD_HELP,
    PROTO_CMD_QUIT, PROTO_CMD_UNKNOWN,
};

/* read up to this much per callback: fewer, larger cleanup.data messages */
#define SESSION_MAX_READ (64 * 1024)
/* a client that pipelines without reading its replies: stop reading it when
 * this much output waits */
#define SESSION_OUTPUT_HIGH (256 * 1024)

static void session_process(struct session *s);

/* session_protocol - SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA (RFC 3848) */
const char *session_protocol(const struct session *s)
{
    static const char *names[] = {"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"};

    if (!s->esmtp)
        return "SMTP";
    return names[(s->tls_active ? 1 : 0) + (s->sasl_username != NULL ? 2 : 0)];
}

/* session_auth_forget - no authenticated identity any more */
void session_auth_forget(struct session *s)
{
    free(s->sasl_method);
    free(s->sasl_username);
    s->sasl_method = s->sasl_username = NULL;
    if (s->state == SESSION_AUTH || s->state == SESSION_AUTH_WAIT)
        s->state = SESSION_CMD;
}

/* session_write_line - raw reply line, no accounting */
static void session_write_line(struct session *s, const char *text, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);

    evbuffer_add(out, text, len);
    evbuffer_add(out, "\r\n", 2);
}

/* session_count_reply - success/failure of the command being answered;
 * 354 (DATA) and 334 (AUTH) are not its final reply */
static void session_count_reply(struct session *s, int code, int final)
{
    int intermediate = code == 354 || code == 334;

    if (s->cur_cmd != SESSION_NO_CMD && !intermediate && code < 400)
        s->cmd_ok[s->cur_cmd]++;
    if (!intermediate)
        s->cur_cmd = SESSION_NO_CMD;
    if (code >= 400 && final)
        s->errors++;
}

/* session_too_many_errors - 421 and close at smtpd_hard_error_limit */
static void session_too_many_errors(struct session *s)
{
    buf_t text = BUF_INIT;

    log_info("too many errors after %s from %s", s->stage, s->client);
    buf_printf(&text, "421 4.7.0 %s Error: too many errors", s->cfg->myhostname);
    session_write_line(s, text.data, text.len);
    buf_free(&text);
    session_close_after_flush(s);
}

/* session_reply - formatted reply line with accounting */
void session_reply(struct session *s, const char *fmt, ...)
{
    buf_t text = BUF_INIT;
    va_list ap;
    int code;

    if (s->state == SESSION_CLOSING)
        return;
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    session_write_line(s, text.data, text.len);
    code = atoi(buf_cstr(&text));
    session_count_reply(s, code, text.len < 4 || text.data[3] != '-');
    buf_free(&text);
    if (s->errors >= s->cfg->hard_error_limit)
        session_too_many_errors(s);
}

/* session_log_address - the first ADDR_LOG_MAX bytes of an address, log
 * safe: UTF-8 as it is, anything else escaped (lib/smtputf8.h) */
static void session_log_address(const char *addr, size_t len, buf_t *out)
{
    smtputf8_log_safe(addr, len < ADDR_LOG_MAX ? len : ADDR_LOG_MAX, out);
}

void session_log_event(struct session *s, int kind_len, const char *kind, const char *stage,
                       const char *text, const char *to)
{
    buf_t kind_copy = BUF_INIT, from = BUF_INIT, rcpt = BUF_INIT;
    struct maillog_reject ev = {
        .stage = stage,
        .client = s->client,
        .text = text,
        .proto = session_protocol(s),
        .helo = buf_cstr(&s->helo),
    };

    buf_append(&kind_copy, kind, (size_t)kind_len);
    ev.kind = buf_cstr(&kind_copy);
    session_log_address(s->mail.addr.data, s->mail.addr.len, &from);
    ev.from = buf_cstr(&from);
    if (to != NULL) {
        session_log_address(to, strlen(to), &rcpt);
        ev.to = buf_cstr(&rcpt);
    }
    maillog_log_reject(&ev);
    buf_free(&kind_copy);
    buf_free(&from);
    buf_free(&rcpt);
}

/* session_log_reject - one line per refused MAIL/RCPT/message */
void session_log_reject(struct session *s, const char *stage, const char *reply, const char *to)
{
    session_log_reject_by(s, stage, reply, to, NULL);
}

/* session_log_reject_by - the same, naming the restriction that decided
 * (policy_log) for the count of refusals by reason (lib/stats.h) */
void session_log_reject_by(struct session *s, const char *stage, const char *reply, const char *to,
                           const char *policy_log)
{
    char reason[STATS_LABEL_MAX];

    session_log_event(s, 6, "reject", stage, reply, to);
    smtpd_reject_reason(policy_log, reply, reason, sizeof(reason));
    stats_count_reject(reason);
}

/* session_reset_transaction - back to "no MAIL yet" */
void session_reset_transaction(struct session *s)
{
    message_discard(s);
    smtpd_milter_abort(s);
    s->have_mail = 0;
    bdat_state_reset(&s->bdat);
    proto_mail_free(&s->mail);
    buf_reset(&s->rcpts);
    s->rcpt_count = 0;
    s->tx_discard = s->tx_hold = 0;
    buf_reset(&s->tx_hold_reason);
    buf_reset(&s->tx_prepend);
    buf_reset(&s->tx_redirect);
    smtpd_xforward_reset(s);
}

/* session_set_read_timeout - idle limit for the client; writes use smtpd_timeout */
void session_set_read_timeout(struct session *s, long long seconds)
{
    struct timeval rtv = {(time_t)seconds, 0};
    struct timeval wtv = {(time_t)s->cfg->timeout, 0};

    bufferevent_set_timeouts(s->bev, &rtv, &wtv);
}

/* session_close_after_flush - the last reply is queued; stop reading */
void session_close_after_flush(struct session *s)
{
    s->state = SESSION_CLOSING;
    message_discard(s);
    bufferevent_disable(s->bev, EV_READ);
    bufferevent_enable(s->bev, EV_WRITE);
}

/* session_pause_input - stop reading the client */
void session_pause_input(struct session *s)
{
    bufferevent_disable(s->bev, EV_READ);
}

/* session_enable_input - read again unless the client owes us a read */
void session_enable_input(struct session *s)
{
    if (s->state != SESSION_CLOSING && !s->output_paused)
        bufferevent_enable(s->bev, EV_READ);
}

/* session_resume_input - read again, starting with what is buffered */
void session_resume_input(struct session *s)
{
    if (s->state == SESSION_CLOSING || s->output_paused)
        return;
    bufferevent_enable(s->bev, EV_READ);
    session_process(s);
}

/* session_log_disconnect - "disconnect from unknown[ip] ehlo=1 ... commands=N" */
static void session_log_disconnect(struct session *s)
{
    buf_t line = BUF_INIT;
    unsigned ok = 0;
    unsigned total = 0;

    buf_printf(&line, "disconnect from %s", s->client);
    for (size_t i = 0; i < sizeof(session_log_order) / sizeof(session_log_order[0]); i++) {
        enum proto_cmd c = session_log_order[i];
        if (s->cmd_total[c] == 0)
            continue;
        buf_printf(&line, " %s=%u", proto_cmd_name(c), s->cmd_ok[c]);
        if (s->cmd_ok[c] != s->cmd_total[c])
            buf_printf(&line, "/%u", s->cmd_total[c]);
        ok += s->cmd_ok[c];
        total += s->cmd_total[c];
    }
    buf_printf(&line, " commands=%u", ok);
    if (ok != total)
        buf_printf(&line, "/%u", total);
    log_info("%s", buf_cstr(&line));
    buf_free(&line);
}

/* session_free - the end of a session */
static void session_free(struct session *s)
{
    struct smtpd_server *server = s->server;

    session_log_disconnect(s);
    stats_count_session(0);
    smtpd_policy_end(s);
    smtpd_ident_end(s);
    smtpd_greet_session_end(s);
    smtpd_anvil_session_end(s);
    smtpd_etrn_session_end(s);
    smtpd_tables_session_end(s);
    smtpd_milter_end(s); /* first: cleanup may still have the milters' sockets */
    message_discard(s);
    smtpd_auth_session_end(s);
    session_auth_forget(s);
    smtpd_tls_session_free(s);
    smtpd_xforward_reset(s);
    bufferevent_free(s->bev);
    proto_mail_free(&s->mail);
    proto_rcpt_free(&s->rcpt);
    buf_free(&s->rcpts);
    buf_free(&s->helo);
    buf_free(&s->line);
    buf_free(&s->content);
    buf_free(&s->data_reply);
    bdat_state_free(&s->bdat);
    buf_free(&s->client_verdict);
    buf_free(&s->tx_hold_reason);
    buf_free(&s->tx_prepend);
    buf_free(&s->tx_redirect);
    buf_free(&s->refusal);
    free(s);
    smtpd_session_ended(server);
}

/* session_bdat_line - does the line starting at p (n bytes) look like a
 * BDAT command?  Then it may be over-long, but its chunk follows */
static int session_bdat_line(const char *p, size_t n)
{
    char head[8];
    const char *arg;

    if (n > sizeof(head) - 1)
        n = sizeof(head) - 1;
    memcpy(head, p, n);
    head[n] = '\0';
    return proto_cmd_parse(head, &arg) == PROTO_CMD_BDAT;
}

/* session_bdat_input - session_bdat_line on the start of the input */
static int session_bdat_input(struct evbuffer *in)
{
    char head[8];
    ev_ssize_t n = evbuffer_copyout(in, head, sizeof(head));

    return n > 0 && session_bdat_line(head, (size_t)n);
}

/* session_line_too_long - the rest of an over-long line was discarded
 * (discarding is 2 for a BDAT line: its chunk cannot be found) */
static void session_line_too_long(struct session *s)
{
    int bdat = s->discarding == 2;

    s->discarding = 0;
    if (s->state == SESSION_AUTH) {
        smtpd_auth_line_too_long(s);
        return;
    }
    if (bdat) {
        s->stage = "BDAT";
        smtpd_bdat_unreadable(s);
        return;
    }
    s->stage = "UNKNOWN";
    s->cur_cmd = SESSION_NO_CMD;
    session_reply(s, "500 5.5.2 Line too long");
}

/* session_read_command - take one command line from in; 0 when incomplete */
static int session_read_command(struct session *s, struct evbuffer *in)
{
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
    size_t limit = (size_t)s->cfg->line_limit;
    size_t len;
    int secret;

    if (eol.pos < 0) {
        if (evbuffer_get_length(in) > limit + 1) {
            if (!s->discarding)
                s->discarding = session_bdat_input(in) ? 2 : 1;
            evbuffer_drain(in, evbuffer_get_length(in));
        }
        return 0;
    }
    len = (size_t)eol.pos;
    if (s->discarding || len > limit + 1) {
        if (!s->discarding)
            s->discarding = session_bdat_input(in) ? 2 : 1;
        evbuffer_drain(in, len + 1);
        session_line_too_long(s);
        return 1;
    }
    buf_reset(&s->line);
    buf_reserve(&s->line, len + 1);
    evbuffer_remove(in, s->line.data, len + 1);
    s->line.len = len;
    if (len > 0 && s->line.data[len - 1] == '\r')
        s->line.len--;
    while (s->line.len > 0 &&
           (s->line.data[s->line.len - 1] == ' ' || s->line.data[s->line.len - 1] == '\t'))
        s->line.len--;
    s->line.data[s->line.len] = '\0';
    if (s->line.len > limit) {
        s->discarding = session_bdat_line(s->line.data, s->line.len) ? 2 : 1;
        session_line_too_long(s);
        return 1;
    }
    secret = s->state == SESSION_AUTH ||
             (s->line.len >= 4 && strncasecmp(s->line.data, "AUTH", 4) == 0 &&
              (s->line.len == 4 || s->line.data[4] == ' '));
    /* improper pipelining (reject_unauth_pipelining): more commands behind
     * this one before the client could know PIPELINING, or behind DATA */
    if (evbuffer_get_length(in) > 0 && s->state == SESSION_CMD &&
        (!s->esmtp || (s->line.len >= 4 && strncasecmp(s->line.data, "DATA", 4) == 0)))
        s->pipelined = 1;
    if (s->state == SESSION_AUTH)
        smtpd_auth_input(s, s->line.data, s->line.len);
    else
        session_command(s, s->line.data, s->line.len);
    if (secret) /* a response or an initial response: the whole buffer */
        buf_wipe(&s->line);
    return 1;
}

/* session_read_data - feed the first contiguous piece of input to DATA */
static int session_read_data(struct session *s, struct evbuffer *in)
{
    struct evbuffer_iovec v;
    size_t used;

    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
        return 0;
    used = message_input(s, v.iov_base, v.iov_len);
    evbuffer_drain(in, used);
    return 1;
}

/* session_process - handle buffered input in order until something waits */
static void session_process(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);

    while (evbuffer_get_length(in) > 0 && s->greeted) {
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_HIGH) {
            s->output_paused = 1;
            session_pause_input(s);
            break;
        }
        if (s->state == SESSION_CMD || s->state == SESSION_AUTH) {
            if (!session_read_command(s, in))
                break;
        } else if (s->state == SESSION_DATA && !s->flow_paused) {
            if (!session_read_data(s, in))
                break;
        } else {
            break;
        }
    }
}

/* session_on_read - new input from the client */
static void session_on_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    if (!s->greeted) { /* the greet pause, or another hold, runs */
        smtpd_greet_early_input(s);
        return;
    }
    session_process(s);
}

/* session_on_write - output flushed: a closing session ends here, a
 * session paused for its unread replies goes on */
static void session_on_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    if (s->state == SESSION_CLOSING) {
        smtpd_tls_shutdown(s); /* an orderly end: close_notify (RFC 8446 6.1) */
        session_free(s);
        return;
    }
    if (s->tls_starting) {
        smtpd_tls_start(s);
        return;
    }
    if (!s->output_paused)
        return;
    s->output_paused = 0;
    if (s->state == SESSION_CMD || s->state == SESSION_AUTH ||
        (s->state == SESSION_DATA && !s->flow_paused))
        session_resume_input(s);
}

/* session_on_timeout - 421 on an idle client, then close */
static void session_on_timeout(struct session *s, short what)
{
    buf_t text = BUF_INIT;

    log_info("timeout after %s from %s", s->stage, s->client);
    if (what & BEV_EVENT_WRITING || s->state == SESSION_CLOSING || s->tls_handshake) {
        session_free(s);
        return;
    }
    buf_printf(&text, "421 4.4.2 %s Error: timeout exceeded", s->cfg->myhostname);
    session_write_line(s, text.data, text.len);
    buf_free(&text);
    session_close_after_flush(s);
}

/* session_on_event - timeout, EOF or error on the client socket */
static void session_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    if (what & BEV_EVENT_CONNECTED) {
        smtpd_tls_handshake_done(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        session_on_timeout(s, what);
        return;
    }
    if (s->tls_handshake) {
        smtpd_tls_log_failure(s);
        session_free(s);
        return;
    }
    if (s->state != SESSION_CLOSING)
        log_info("lost connection after %s from %s", s->stage, s->client);
    if ((what & BEV_EVENT_EOF) && s->state != SESSION_CLOSING &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        session_close_after_flush(s);
        return;
    }
    session_free(s);
}

/* session_greet - "220 banner" once nothing holds it */
void session_greet(struct session *s)
{
    buf_t date = BUF_INIT;
    buf_t text = BUF_INIT;

    if (s->refusal.len > 0 && s->tls_active) {
        session_refuse(s, buf_cstr(&s->refusal));
        return;
    }
    if (s->greet_holds > 0 || s->greeted || s->state == SESSION_CLOSING)
        return;
    s->greeted = 1;
    time_rfc2822(time(NULL), &date);
    buf_puts(&text, "220 ");
    proto_banner_format(s->cfg->banner, s->cfg->myhostname, TERN_VERSION, buf_cstr(&date), &text);
    if (s->greet_rejecting) /* an early talker: 554 instead (greet.c) */
        smtpd_greet_refusal(s, &text);
    session_write_line(s, text.data, text.len);
    buf_free(&date);
    buf_free(&text);
    session_resume_input(s); /* what came before the greeting */
}

void session_greet_hold(struct session *s)
{
    s->greet_holds++;
}

void session_greet_release(struct session *s)
{
    if (s->greet_holds > 0 && --s->greet_holds == 0 && s->bev != NULL && !s->tls_handshake &&
        (!s->cfg->tls_wrapper || s->tls_active))
        session_greet(s);
}

void session_refuse(struct session *s, const char *reply)
{
    if (s->state == SESSION_CLOSING)
        return;
    if (s->cfg->tls_wrapper && !s->tls_active) { /* SMTPS: after the handshake */
        buf_set(&s->refusal, reply);
        return;
    }
    s->greeted = 1;
    session_write_line(s, reply, strlen(reply));
    session_close_after_flush(s);
}

/* session_new - allocate and fill in the client's address */
static struct session *session_new(struct smtpd_listener *listener, const struct sockaddr *sa,
                                   int salen)
{
    struct session *s = xcalloc(1, sizeof(*s));

    s->server = listener->server;
    s->cfg = &listener->cfg;
    if (salen > 0 && (size_t)salen <= sizeof(s->sa))
        memcpy(&s->sa, sa, (size_t)salen);
    netaddr_format((const struct sockaddr *)&s->sa, s->ip, sizeof(s->ip));
    s->in_mynetworks = netaddr_match((const struct sockaddr *)&s->sa, s->cfg->mynetworks,
                                     s->cfg->mynetworks_count);
    s->state = SESSION_CMD;
    s->cur_cmd = SESSION_NO_CMD;
    s->stage = "CONNECT";
    proto_mail_init(&s->mail);
    proto_rcpt_init(&s->rcpt);
    bdat_state_init(&s->bdat);
    stats_count_session(1);
    return s;
}

void session_attach_bev(struct session *s)
{
    bufferevent_setcb(s->bev, session_on_read, session_on_write, session_on_event, s);
    bufferevent_set_max_single_read(s->bev, SESSION_MAX_READ);
    session_set_read_timeout(s, s->cfg->timeout);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* session_run - greet (SMTPS: after the handshake) and start reading */
static void session_run(struct session *s, int fd)
{
    s->bev = bufferevent_socket_new(s->server->svc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL)
        log_panic("bufferevent_socket_new failed");
    table_refresh_next();         /* a rebuilt map counts from this session on */
    smtpd_anvil_session_start(s); /* holds the greeting first */
    smtpd_policy_connect(s);
    /* identd is asked from the local address: not behind a proxy */
    if (s->cfg->ident_lookup && !s->proxied && s->state != SESSION_CLOSING)
        smtpd_ident_start(s, s->cfg->ident_timeout);
    if (s->cfg->tls_wrapper) {
        if (s->cfg->tls == NULL) {
            log_warn("SMTPS connection from %s closed: TLS is not available (%s)", s->client,
                     s->cfg->tls_problem ? s->cfg->tls_problem : "not configured");
            s->state = SESSION_CLOSING;
            session_free(s);
            return;
        }
        s->stage = "TLS";
        smtpd_tls_start(s);
        return;
    }
    session_attach_bev(s);
    session_greet(s);
}

void session_start(struct smtpd_listener *listener, int fd, const struct sockaddr *sa, int salen)
{
    session_run(session_new(listener, sa, salen), fd);
}

void session_start_proxied(struct smtpd_listener *listener, int fd,
                           const struct sockaddr_storage *client,
                           const struct sockaddr_storage *local)
{
    struct session *s = session_new(listener, (const struct sockaddr *)client, sizeof(*client));

    s->proxied = 1;
    s->local_sa = *local;
    session_run(s, fd);
}

int session_local_address(const struct session *s, struct sockaddr_storage *local)
{
    socklen_t len = sizeof(*local);

    if (s->proxied) {
        *local = s->local_sa;
        return 0;
    }
    return getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)local, &len);
}
