/*
 * session - one delivery: resolve the next hop, try its addresses in order,
 * and hold the SMTP conversation (RFC 5321, PIPELINING per RFC 2920) until
 * every recipient has a final status; then QUIT, or hand the connection to
 * the cache of idle connections (cache.c) when the transaction ended
 * cleanly.
 *
 * LMTP (RFC 2033, env->lmtp) differs in three places only: the next hop may
 * be a UNIX socket and is never looked up by MX (nexthop.h); the greeting
 * is answered with LHLO and there is no HELO fallback; after the final dot
 * every accepted recipient gets its own reply, in RCPT order, and that
 * reply alone decides it (session_on_lmtp_final).  An SMTP MX list is cut
 * where it reaches this host (self.h, SPEC ROUTE-09) before anything
 * connects.
 *
 * States: REUSE -> [RESOLVE -> CONNECT -> GREETING -> EHLO/LHLO [-> HELO] ->]
 * [CONVERT ->] TRANSACTION (MAIL, RCPT..., DATA replies in order) -> CONTENT -> DOT ->
 * QUIT -> DONE.  REUSE looks for a cached connection to the next hop and
 * starts with MAIL on it; if that connection turns out dead before the
 * first reply (EOF, error, timeout, garbage, 421 to MAIL) the delivery
 * falls back to RESOLVE on a fresh connection: nothing was decided and no
 * content was sent on it.  A failure before MAIL moves on to the next
 * address; after it, the outcome is final for this attempt.  One timer
 * serves every stage; it is re-armed whenever the server answers or the
 * data transfer makes progress.
 *
 * How the content goes is chosen before MAIL (smtp_body.h): the queue file
 * as it is, or a 7-bit copy for a server without 8BITMIME (made on a thread
 * while in CONVERT), after DATA; or, for binary mail to a server with
 * CHUNKING and BINARYMIME, BDAT chunks after the RCPT replies, each chunk's
 * reply read in CONTENT/DOT (session_on_bdat_reply).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dns.h"
#include "proctitle.h"
#include "route.h"
#include "addr.h"
#include "dane.h"
#include "log.h"
#include "maillog.h"
#include "netaddr.h"
#include "reply.h"
#include "nexthop.h"
#include "safefile.h"
#include "self.h"
#include "smtp.h"
#include "smtp_body.h"
#include "smtp_mtasts.h"
#include "smtp_sasl.h"
#include "smtp_tls.h"
#include "smtp_utf8.h"
#include "stats.h"
#include "table_proxy.h"
#include "tlsrpt.h"
#include "timeutil.h"

#define SESSION_CHUNK 65536
#define SESSION_OUT_HIGH (256 * 1024) /* refill the output below this */
#define SESSION_OUT_LOW 65536         /* write callback below this */

enum session_state {
    S_REUSE,
    S_STS, /* waiting for the MTA-STS policy of the next hop's domain */
    S_RESOLVE,
    S_TLSA, /* waiting for the TLSA records of the next address's host */
    S_CONNECT,
    S_GREETING,
    S_EHLO,
    S_HELO,
    S_STARTTLS, /* waiting for the reply to STARTTLS */
    S_TLS,      /* the handshake */
    S_AUTH,     /* SMTP AUTH: waiting for 334 or the final reply */
    S_CONVERT,  /* the 7-bit copy is being made (smtp_body_job.c), before MAIL */
    S_TRANSACTION,
    S_CONTENT,
    S_DOT,
    S_QUIT,
    S_DONE,
};

struct smtp_session {
    const struct smtp_env *env;
    struct delivery_request *req;
    struct smtp_session_cbs cbs;
    enum session_state state;
    int depth;    /* callbacks on the stack */
    int dead;     /* freed once depth drops to 0 */
    unsigned gen; /* bumped when the connection goes away */
    /* where */
    struct smtp_nexthop hop;
    int port;  /* of the current connection (0 for a UNIX socket) */
    buf_t key; /* of the connection cache: "smtp|nexthop|port" or "lmtp|..." */
    struct dns_result *hosts;
    size_t host_next;
    buf_t peer;            /* "host[addr]" */
    const char *host_name; /* of the current connection: the MX host, or the next hop's */
    buf_t relay;           /* "host[addr]:port" of the last connection, or "none" */
    /* connection */
    int fd;
    struct event *connect_ev;
    struct bufferevent *bev;
    struct event *timer;
    const char *doing; /* for timeout and lost-connection texts */
    struct smtp_reply reply;
    struct smtp_ehlo ehlo;
    long long uses; /* transactions on this connection, this one included */
    int reused;     /* the connection came from the cache */
    /* TLS */
    struct smtp_tls_policy policy; /* of the next hop */
    struct smtp_tls_policy cur;    /* for the current connection (DANE, MTA-STS applied) */
    enum smtp_tls_level level;     /* cur.level */
    struct dane_tlsa *tlsa;        /* the usable TLSA records of the current host */
    size_t tlsa_count;
    struct dns_pending *tlsa_query;
    struct smtp_mtasts_pending *sts_query;
    struct mtasts_policy sts; /* the domain's MTA-STS policy (mode NONE: none) */
    int sts_testing;          /* cur follows a policy in testing mode: report, don't enforce */
    int tls_active;
    int tls_verified;        /* the certificate passed the checks of the connection's level */
    int tls_policy_ok;       /* ... and those came from DANE, MTA-STS enforce or a verify/secure
                                level: what REQUIRETLS accepts */
    int tls_fallback;        /* this address again, without STARTTLS (level may) */
    char tls_note[64];       /* "TLSv1.3/verified", "no" */
    const char *policy_type; /* for TLS-RPT: "tlsa", "sts", "no-policy-found" */
    /* AUTH */
    struct smtp_sasl_client *sasl;
    int authenticated;
    /* remote tables (lib/table_proxy.h): the generic and SASL password maps'
     * answers for this delivery; a credentials lookup out for connection gen */
    struct table_proxy_scope *tables;
    int auth_lookup;
    unsigned auth_lookup_gen;
    /* transaction */
    size_t cmd_sent, cmd_replied;
    int mail_failed;
    int smtputf8;            /* MAIL carries SMTPUTF8, the addresses go as they are (smtp_utf8.h) */
    buf_t utf8_lacking;      /* the addresses found without SMTPUTF8 in this delivery */
    buf_t utf8_lacking_peer; /* the first of them, "host[addr]": what a 5.6.7 bounce names */
    size_t accepted;
    size_t final_next; /* LMTP: where to look for the next recipient owed a final reply */
    /* content */
    int qfd;
    long long data_pos;
    int at_line_start;
    char tail[2];
    char *chunk;
    struct smtp_body body;          /* how the content goes: DATA as it is, a 7-bit copy, BDAT */
    struct smtp_body_job *body_job; /* making the copy */
    long long bdat_end;             /* BDAT: where the chunk being sent ends */
    size_t bdat_sent;               /* BDAT commands sent */
    size_t bdat_replied;            /* ... and answered */
    /* why the last address failed */
    buf_t last_reason;
    char last_dsn[16];
    enum delivery_status last_status;
    int reported;
};

static void session_try_next(struct smtp_session *s);
static void session_close(struct smtp_session *s);
static void session_quit(struct smtp_session *s);
static void session_send_quit(struct smtp_session *s);
static void session_resolve(struct smtp_session *s);
static void session_reuse_or_resolve(struct smtp_session *s);
static void session_connect(struct smtp_session *s, const struct dns_host *h);
static void session_prepare_host(struct smtp_session *s, const struct dns_host *h);
static void session_sts_or_resolve(struct smtp_session *s);
static void session_start_content(struct smtp_session *s);
static int session_generic_headers(struct smtp_session *s, buf_t *hdrs, size_t *n);

/* session_enter - a callback starts using s */
static void session_enter(struct smtp_session *s)
{
    s->depth++;
}

/* session_free - release s (after on_closed); never inlined: gcc -O3 then
 * loses track of depth and sees a use after free that cannot happen */
__attribute__((noinline)) static void session_free(struct smtp_session *s)
{
    smtp_reply_free(&s->reply);
    buf_free(&s->peer);
    buf_free(&s->relay);
    buf_free(&s->key);
    buf_free(&s->last_reason);
    buf_free(&s->utf8_lacking);
    buf_free(&s->utf8_lacking_peer);
    dns_result_free(s->hosts);
    smtp_sasl_client_free(s->sasl);
    dane_tlsa_free(s->tlsa, s->tlsa_count);
    mtasts_policy_free(&s->sts);
    free(s->chunk);
    smtp_body_free(&s->body);
    event_free(s->timer);
    table_proxy_scope_free(s->tables); /* a wait out is cancelled */
    free(s);
}

/* session_leave - the callback is done; 1 when s is gone */
static int session_leave(struct smtp_session *s)
{
    if (--s->depth > 0 || !s->dead)
        return 0;
    session_free(s);
    return 1;
}

/* session_arm - (re)start the one timer: seconds for what we are doing */
static void session_arm(struct smtp_session *s, long long seconds, const char *doing)
{
    struct timeval tv = {(time_t)(seconds > 0 ? seconds : 1), 0};

    s->doing = doing;
    evtimer_add(s->timer, &tv);
}

/* session_log_rcpt - the one log line per recipient */
static void session_log_rcpt(struct smtp_session *s, const struct delivery_rcpt *r)
{
    static const char *words[] = {"deferred", "sent", "deferred", "bounced"};
    buf_t use = BUF_INIT;
    double now = time_now_double();
    struct maillog_delivery ev = {
        .queue_id = s->req->queue_id,
        .rcpt = r->address,
        .relay = buf_cstr(&s->relay),
        .mailer = s->env->lmtp ? "lmtp" : "esmtp",
        .delay = now - (double)s->req->arrival,
        .xdelay = now - s->req->started,
        .size = s->req->size,
        .nrcpts = s->req->rcpt_count,
        .dsn = r->result.dsn,
        .status = words[r->result.status],
        .reason = buf_cstr(&r->result.reason),
    };

    if (s->uses > 1)
        buf_printf(&use, ", conn_use=%lld", s->uses);
    if (!s->env->lmtp && strcmp(buf_cstr(&s->relay), "none") != 0)
        buf_printf(&use, ", tls=%s", s->tls_note);
    ev.extra = buf_cstr(&use);
    maillog_log_delivery(&ev);
    buf_free(&use);
}

/* session_fail_pending - give every undecided recipient (only the accepted
 * ones with only_accepted) the same outcome */
static void session_fail_pending(struct smtp_session *s, enum delivery_status status,
                                 const char *dsn, const char *reason, int only_accepted)
{
    for (size_t i = 0; i < s->req->rcpt_count; i++) {
        struct delivery_rcpt *r = &s->req->rcpts[i];
        if (!only_accepted || r->accepted)
            delivery_rcpt_set(r, status, dsn, reason);
    }
}

/* session_report - every recipient is decided: log and tell the caller */
static void session_report(struct smtp_session *s)
{
    if (s->reported)
        return;
    s->reported = 1;
    session_fail_pending(s, DELIVERY_DEFER, "4.3.0", "delivery was not completed", 0);
    for (size_t i = 0; i < s->req->rcpt_count; i++)
        session_log_rcpt(s, &s->req->rcpts[i]);
    if (s->cbs.on_result)
        s->cbs.on_result(s->req, s->cbs.arg);
}

/* session_disconnect - drop the current connection, if any */
static void session_disconnect(struct smtp_session *s)
{
    s->gen++;
    smtp_sasl_client_free(s->sasl); /* an exchange cut short: its password copies go */
    s->sasl = NULL;
    smtp_body_job_cancel(s->body_job); /* its thread ends on its own */
    s->body_job = NULL;
    if (s->tlsa_query) {
        dns_cancel(s->tlsa_query);
        s->tlsa_query = NULL;
    }
    if (s->sts_query) {
        smtp_mtasts_cancel(s->sts_query);
        s->sts_query = NULL;
    }
    if (s->connect_ev) {
        event_free(s->connect_ev);
        s->connect_ev = NULL;
    }
    if (s->bev) {
        if (s->state == S_QUIT) /* an orderly end: the TLS session stays resumable */
            smtp_tls_bev_done(s->bev);
        bufferevent_free(s->bev); /* closes fd */
        s->bev = NULL;
        s->fd = -1;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    evtimer_del(s->timer);
}

/* session_close - the end: report if not done yet, release, tell the caller */
static void session_close(struct smtp_session *s)
{
    session_disconnect(s);
    if (s->qfd >= 0) {
        close(s->qfd);
        s->qfd = -1;
    }
    session_report(s);
    s->state = S_DONE;
    s->dead = 1;
    if (s->cbs.on_closed)
        s->cbs.on_closed(s->req, s->cbs.arg);
    if (s->depth == 0)
        session_free(s);
}

/* session_send - queue one command line */
static void session_send(struct smtp_session *s, const buf_t *line)
{
    smtp_trace_commands(s->req, s->state == S_AUTH, line->data, line->len);
    bufferevent_write(s->bev, line->data, line->len);
}

/* session_send_text - queue a fixed command */
static void session_send_text(struct smtp_session *s, const char *text)
{
    smtp_trace_commands(s->req, 0, text, strlen(text));
    bufferevent_write(s->bev, text, strlen(text));
}

/* session_remote_reason - "host H[A] said: 550 ... (in reply to X command)" */
static void session_remote_reason(struct smtp_session *s, const char *command, buf_t *out)
{
    buf_printf(out, "host %s said: %s (in reply to %s command)", buf_cstr(&s->peer),
               buf_cstr(&s->reply.text), command);
}

/* session_reply_status - the recipient status a non-2xx reply means */
static enum delivery_status session_reply_status(const struct smtp_reply *r)
{
    if (r->code >= 200 && r->code < 300)
        return DELIVERY_SENT;
    return r->code >= 500 ? DELIVERY_BOUNCE : DELIVERY_DEFER;
}

/* session_fail_by_reply - recipients get the outcome of the current reply */
static void session_fail_by_reply(struct smtp_session *s, const char *command, int only_accepted)
{
    buf_t reason = BUF_INIT;
    char dsn[16];

    smtp_reply_dsn(&s->reply, dsn, sizeof(dsn));
    session_remote_reason(s, command, &reason);
    session_fail_pending(s, session_reply_status(&s->reply), dsn, buf_cstr(&reason), only_accepted);
    buf_free(&reason);
}

/* session_host_failed - this address did not work out: remember why, go on */
static void session_host_failed(struct smtp_session *s, enum delivery_status status,
                                const char *dsn, const char *reason)
{
    log_info("%s: %s", s->req->queue_id, reason); /* shows every address tried */
    s->last_status = status;
    snprintf(s->last_dsn, sizeof(s->last_dsn), "%s", dsn);
    buf_set(&s->last_reason, reason);
    session_disconnect(s);
    session_try_next(s);
}

/* session_host_failed_by_reply - a reply before MAIL ended this address */
static void session_host_failed_by_reply(struct smtp_session *s, const char *command)
{
    buf_t reason = BUF_INIT;
    char dsn[16];

    smtp_reply_dsn(&s->reply, dsn, sizeof(dsn));
    if (command == NULL)
        buf_printf(&reason, "host %s refused to talk to me: %s", buf_cstr(&s->peer),
                   buf_cstr(&s->reply.text));
    else
        session_remote_reason(s, command, &reason);
    session_host_failed(s, session_reply_status(&s->reply), dsn, buf_cstr(&reason));
    buf_free(&reason);
}

/* session_reconnect - leave the cached connection: resolve the next hop
 * and deliver over a fresh one */
static void session_reconnect(struct smtp_session *s)
{
    session_disconnect(s);
    s->reused = 0;
    s->uses = 0;
    buf_set(&s->relay, "none");
    session_sts_or_resolve(s); /* the policy is asked again: a fresh connection obeys it */
}

/* session_reuse_failed - a cached connection died before its first reply:
 * forget it and deliver over a fresh one; 1 when that is what happens */
static int session_reuse_failed(struct smtp_session *s, const char *reason)
{
    if (!s->reused || (s->state != S_TRANSACTION && s->state != S_CONVERT) || s->cmd_replied > 0)
        return 0;
    log_info("%s: cached connection unusable (%s); connecting again", s->req->queue_id, reason);
    session_reconnect(s);
    return 1;
}

/* session_conversation_failed - timeout, lost connection or garbage: before
 * MAIL try the next address, after it defer what is undecided */
static void session_conversation_failed(struct smtp_session *s, const char *dsn, const char *reason)
{
    if (session_reuse_failed(s, reason))
        return;
    switch (s->state) {
    case S_GREETING:
    case S_EHLO:
    case S_HELO:
    case S_STARTTLS:
    case S_TLS:
    case S_AUTH:
    case S_CONVERT:
        session_host_failed(s, DELIVERY_DEFER, dsn, reason);
        return;
    case S_TRANSACTION:
    case S_CONTENT:
    case S_DOT:
        session_fail_pending(s, DELIVERY_DEFER, dsn, reason, 0);
        session_close(s);
        return;
    default:
        session_close(s);
        return;
    }
}

/* session_protocol_error - the server said something we cannot parse */
static void session_protocol_error(struct smtp_session *s, const char *what)
{
    buf_t reason = BUF_INIT;

    buf_printf(&reason, "conversation with %s failed: %s while %s", buf_cstr(&s->peer), what,
               s->doing ? s->doing : "talking");
    session_conversation_failed(s, "4.5.0", buf_cstr(&reason));
    buf_free(&reason);
}

/* session_timer_event - a stage took too long */
static void session_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    buf_t reason = BUF_INIT;

    session_enter(s);
    if (s->state == S_REUSE) {
        session_reuse_or_resolve(s);
    } else if (s->state == S_RESOLVE) { /* a failure found at start-up, reported from the loop */
        session_close(s);
    } else {
        buf_printf(&reason, "conversation with %s timed out while %s", buf_cstr(&s->peer),
                   s->doing ? s->doing : "talking");
        session_conversation_failed(s, "4.4.2", buf_cstr(&reason));
    }
    buf_free(&reason);
    session_leave(s);
}

/* session_generic_failed - smtp_generic_maps could not answer: the mail
 * is deferred, never sent unrewritten */
static void session_generic_failed(struct smtp_session *s)
{
    session_fail_pending(s, DELIVERY_DEFER, "4.3.0", "smtp_generic_maps lookup failed", 0);
}

/* session_mail_command - "MAIL FROM:<s>" with the parameters the server
 * takes; -1 (out unchanged) when the generic maps failed */
static int session_mail_command(struct smtp_session *s, buf_t *out)
{
    const struct delivery_request *req = s->req;
    buf_t sender = BUF_INIT;
    int rc;

    table_proxy_scope_enter(s->tables); /* the answers fetched before the delivery */
    rc = smtp_generic_sender(s->env, req->sender, &sender);
    table_proxy_scope_leave();
    if (rc == ROUTE_TEMPFAIL) {
        buf_free(&sender);
        return -1;
    }
    buf_puts(out, "MAIL FROM:<");
    if (smtp_utf8_address(buf_cstr(&sender), s->smtputf8, out) < 0)
        buf_puts(out, buf_cstr(&sender)); /* a generic mapping into UTF-8: as it is */
    buf_puts(out, ">");
    buf_free(&sender);
    if (s->ehlo.size)
        buf_printf(out, " SIZE=%lld", smtp_body_size(&s->body, req));
    smtp_body_mail_param(&s->body, req, &s->ehlo, out);
    if (s->ehlo.dsn && req->ret[0])
        buf_printf(out, " RET=%s", req->ret);
    if (s->ehlo.dsn && req->envid[0]) { /* stored decoded: xtext again on the wire */
        buf_puts(out, " ENVID=");
        xtext_encode(req->envid, out);
    }
    if (s->authenticated) { /* RFC 4954 5: only to a server we authenticated to */
        const char *mailbox = req->auth_mailbox ? req->auth_mailbox : "";
        buf_puts(out, " AUTH=");
        if (mailbox[0] == 0 || strcmp(mailbox, "<>") == 0)
            buf_puts(out, "<>");
        else
            xtext_encode(mailbox, out);
    }
    if (req->requiretls && s->ehlo.requiretls) /* SMTP: checked before; LMTP: if offered */
        buf_puts(out, " REQUIRETLS");
    if (s->smtputf8)
        buf_puts(out, " SMTPUTF8");
    buf_puts(out, "\r\n");
    return 0;
}

/* session_rcpt_command - "RCPT TO:<r>" with DSN parameters when offered */
static void session_rcpt_command(struct smtp_session *s, const struct delivery_rcpt *r, buf_t *out)
{
    if (r->result.status != DELIVERY_PENDING) { /* refused before MAIL (smtp_utf8_refuse): a
                                                   NOOP keeps the replies in step */
        buf_puts(out, "NOOP\r\n");
        return;
    }
    buf_puts(out, "RCPT TO:<");
    if (smtp_utf8_address(r->address, s->smtputf8, out) < 0)
        buf_puts(out, r->address); /* not reached: smtp_utf8_refuse decided it */
    buf_puts(out, ">");
    if (s->ehlo.dsn && r->notify[0])
        buf_printf(out, " NOTIFY=%s", r->notify);
    if (s->ehlo.dsn && r->orcpt[0]) { /* "rfc822;addr", addr stored decoded */
        const char *semi = strchr(r->orcpt, ';');
        if (semi) {
            buf_printf(out, " ORCPT=%.*s;", (int)(semi - r->orcpt), r->orcpt);
            xtext_encode(semi + 1, out);
        }
    }
    buf_puts(out, "\r\n");
}

/* session_command - command number i: 1..n RCPT, n+1 DATA (0, MAIL, is
 * session_begin_transaction's) */
static void session_command(struct smtp_session *s, size_t i, buf_t *out)
{
    if (i <= s->req->rcpt_count)
        session_rcpt_command(s, &s->req->rcpts[i - 1], out);
    else
        buf_puts(out, "DATA\r\n");
}

/* session_arm_reply - wait for the reply to command number i */
static void session_arm_reply(struct smtp_session *s, size_t i)
{
    const char *doing = "sending DATA command";

    if (i == 0)
        doing = "sending MAIL FROM";
    else if (i <= s->req->rcpt_count)
        doing = "sending RCPT TO";
    session_arm(s, s->env->command_timeout, doing);
}

/* session_cache_conn - hand the idle connection to the cache; 0 done */
static int session_cache_conn(struct smtp_session *s)
{
    struct smtp_conn conn;

    if (s->env->cache == NULL || s->bev == NULL || s->reply.code == 421)
        return -1;
    if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
        return -1; /* the server said more than we asked for */
    memset(&conn, 0, sizeof(conn));
    conn.bev = s->bev;
    snprintf(conn.peer, sizeof(conn.peer), "%s", buf_cstr(&s->peer));
    snprintf(conn.relay, sizeof(conn.relay), "%s", buf_cstr(&s->relay));
    conn.port = s->port;
    conn.ehlo = s->ehlo;
    conn.uses = s->uses;
    conn.tls = s->tls_active;
    conn.authenticated = s->authenticated;
    conn.verified = s->tls_policy_ok;
    snprintf(conn.tls_note, sizeof(conn.tls_note), "%s", s->tls_note);
    if (smtp_cache_put(s->env->cache, buf_cstr(&s->key), &conn) < 0)
        return -1;
    s->bev = NULL; /* the cache owns it (and the fd) now */
    s->fd = -1;
    return 0;
}

/* session_finish - the transaction is over and the connection is clean:
 * report, then cache the connection or QUIT */
static void session_finish(struct smtp_session *s)
{
    if (s->req->trace) { /* sendmail -v shows the QUIT: no cache, report at its reply */
        session_send_quit(s);
        return;
    }
    session_report(s);
    if (s->dead)
        return;
    if (session_cache_conn(s) == 0)
        session_close(s);
    else
        session_quit(s);
}

static void session_begin_transaction(struct smtp_session *s);

/* session_smtputf8_lacking - this server does not offer SMTPUTF8 and a
 * recipient needs it: remember its address (skipped after a new resolve)
 * and, the first time, its name (for the 5.6.7 bounce at the end) */
static void session_smtputf8_lacking(struct smtp_session *s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (s->utf8_lacking_peer.len == 0)
        buf_set(&s->utf8_lacking_peer, buf_cstr(&s->peer));
    if (getpeername(s->fd, (struct sockaddr *)&ss, &len) == 0)
        smtp_utf8_lacking_add(&s->utf8_lacking, (const struct sockaddr *)&ss);
}

/* session_smtputf8_skip - h is known to lack SMTPUTF8 and is not the last
 * address: not worth a connection (the last one gets it, for the ASCII
 * recipients); 1 when skipped */
static int session_smtputf8_skip(struct smtp_session *s, const struct dns_host *h)
{
    if (s->host_next >= s->hosts->count ||
        !smtp_utf8_lacking_has(&s->utf8_lacking, (const struct sockaddr *)&h->addr))
        return 0;
    log_info("%s: skipping %s: SMTPUTF8 was not offered there", s->req->queue_id, h->hostname);
    return 1;
}

/* session_smtputf8_give_up - the end of the address list, with SMTPUTF8
 * refused at some host: the recipients that need it bounce 5.6.7 naming
 * that host (as Postfix, even when a later host was unreachable) */
static void session_smtputf8_give_up(struct smtp_session *s)
{
    if (s->utf8_lacking_peer.len > 0)
        (void)smtp_utf8_refuse(s->req, 0, buf_cstr(&s->utf8_lacking_peer));
}

/* session_smtputf8_next_host - this server cannot take recipients that
 * need SMTPUTF8: while the next hop has another address, go there as
 * after a 4xx (a cached connection is dropped, not cached again, and the
 * next hop is resolved afresh); 0 when this is the last one */
static int session_smtputf8_next_host(struct smtp_session *s)
{
    buf_t reason = BUF_INIT;

    session_smtputf8_lacking(s);
    if (!s->reused && (s->hosts == NULL || s->host_next >= s->hosts->count))
        return 0;
    smtp_utf8_reason(buf_cstr(&s->peer), &reason);
    if (s->reused) {
        log_info("%s: %s on a cached connection; connecting again", s->req->queue_id,
                 buf_cstr(&reason));
        session_reconnect(s);
    } else {
        buf_puts(&reason, "; trying another host");
        session_host_failed(s, DELIVERY_DEFER, "4.6.7", buf_cstr(&reason));
    }
    buf_free(&reason);
    return 1;
}

/* session_smtputf8_refused - RFC 6531 3.2: the recipients that need
 * SMTPUTF8 this server does not offer try the next address of the next
 * hop; at the last one they bounce (smtp_utf8.h).  1 when nothing is left
 * to send here */
static int session_smtputf8_refused(struct smtp_session *s)
{
    s->smtputf8 = smtp_utf8_use(s->req, s->ehlo.smtputf8);
    if (smtp_utf8_unsendable(s->req, s->smtputf8) > 0 && session_smtputf8_next_host(s))
        return 1;
    if (smtp_utf8_refuse(s->req, s->smtputf8, buf_cstr(&s->peer)) > 0)
        return 0;
    session_finish(s);
    return 1;
}

/* session_begin_delivery - the transaction, unless no recipient is left
 * once SMTPUTF8 has been settled with this server */
static void session_begin_delivery(struct smtp_session *s)
{
    if (!session_smtputf8_refused(s))
        session_begin_transaction(s);
}

/* session_size_refused - the server announced a limit the message exceeds */
static int session_size_refused(struct smtp_session *s)
{
    buf_t reason = BUF_INIT;

    if (!s->ehlo.size || s->ehlo.size_limit <= 0 || s->req->size <= s->ehlo.size_limit)
        return 0;
    buf_printf(&reason, "message size %lld exceeds size limit %lld of server %s", s->req->size,
               s->ehlo.size_limit, buf_cstr(&s->peer));
    session_fail_pending(s, DELIVERY_BOUNCE, "5.3.4", buf_cstr(&reason), 0);
    buf_free(&reason);
    session_finish(s);
    return 1;
}

/* session_body_failed - the content cannot go: every recipient gets err */
static void session_body_failed(struct smtp_session *s, const struct smtp_body_error *err)
{
    buf_t reason = BUF_INIT;

    buf_printf(&reason, "delivery to host %s: %s", buf_cstr(&s->peer), err->reason);
    log_info("%s: %s", s->req->queue_id, buf_cstr(&reason));
    session_fail_pending(s, err->status, err->dsn, buf_cstr(&reason), 0);
    buf_free(&reason);
    session_finish(s);
}

static void session_send_transaction(struct smtp_session *s);

/* session_body_converted - the 7-bit copy is ready, or cannot be made */
static void session_body_converted(void *arg, int rc, const struct smtp_body_error *err)
{
    struct smtp_session *s = arg;

    session_enter(s);
    s->body_job = NULL;
    if (rc < 0)
        session_body_failed(s, err);
    else
        session_send_transaction(s);
    session_leave(s);
}

/* session_body_convert - start the 7-bit copy on its thread
 * (smtp_body_job.c); the transaction begins when it is ready */
static void session_body_convert(struct smtp_session *s)
{
    buf_t hdrs = BUF_INIT;
    size_t replaced = 0;

    if (session_generic_headers(s, &hdrs, &replaced) < 0) {
        buf_free(&hdrs);
        session_generic_failed(s);
        session_quit(s);
        return;
    }
    s->state = S_CONVERT;
    session_arm(s, s->env->data_timeout, "converting the message to 7-bit");
    s->body_job = smtp_body_job_start(s->env->base, &s->body, &s->env->body_policy, s->req, s->qfd,
                                      &hdrs, replaced, session_body_converted, s);
    buf_free(&hdrs);
}

/* session_begin_transaction - choose how the content goes (smtp_body.h),
 * make the 7-bit copy first if needed, then MAIL */
static void session_begin_transaction(struct smtp_session *s)
{
    static const struct smtp_body_error bounce = {
        DELIVERY_BOUNCE, "5.6.3",
        "8-bit message and a server without 8BITMIME (smtp_8bit_downgrade = bounce)", ""};

    if (session_size_refused(s))
        return;
    smtp_body_free(&s->body);
    s->body.mode = smtp_body_choose(&s->env->body_policy, s->req, &s->ehlo);
    if (s->body.mode == SMTP_BODY_BOUNCE)
        session_body_failed(s, &bounce);
    else if (s->body.mode == SMTP_BODY_CONVERT)
        session_body_convert(s);
    else
        session_send_transaction(s);
}

/* session_send_transaction - MAIL, RCPT..., DATA: all at once with
 * PIPELINING, else the first one */
static void session_send_transaction(struct smtp_session *s)
{
    size_t total = s->req->rcpt_count + 2;
    buf_t out = BUF_INIT;

    if (s->body.mode == SMTP_BODY_BDAT) /* BDAT waits for the RCPT replies */
        total--;
    if (session_mail_command(s, &out) < 0) {
        buf_free(&out);
        session_generic_failed(s);
        session_quit(s);
        return;
    }
    s->state = S_TRANSACTION;
    s->uses++;
    proctitle_set("%s to %s", s->req->queue_id, buf_cstr(&s->peer)); /* host[ip] (OPS-04) */
    s->cmd_sent = 1;                                                 /* MAIL, in out */
    s->cmd_replied = 0;
    s->mail_failed = 0;
    s->accepted = 0;
    s->final_next = 0;
    while (s->ehlo.pipelining && s->cmd_sent < total)
        session_command(s, s->cmd_sent++, &out);
    session_send(s, &out);
    buf_free(&out);
    session_arm_reply(s, 0);
}

/* session_send_next - lockstep: send the next command after a reply */
static void session_send_next(struct smtp_session *s)
{
    buf_t out = BUF_INIT;
    size_t n = s->req->rcpt_count;

    if (s->mail_failed || (s->cmd_sent == n + 1 && s->accepted == 0)) {
        session_quit(s);
        return;
    }
    if (s->cmd_sent == n + 1 && s->body.mode == SMTP_BODY_BDAT) {
        s->cmd_sent++;
        session_start_content(s);
        return;
    }
    session_command(s, s->cmd_sent++, &out);
    session_send(s, &out);
    buf_free(&out);
    session_arm_reply(s, s->cmd_replied);
}

/* session_on_mail - the reply to MAIL FROM */
static void session_on_mail(struct smtp_session *s)
{
    if (s->reply.code >= 200 && s->reply.code < 300)
        return;
    s->mail_failed = 1;
    session_fail_by_reply(s, "MAIL FROM", 0);
}

/* session_rcpt_by_reply - r's outcome is the current reply to command:
 * 2xx sent (the reply is the reason), else defer or bounce saying who said what */
static void session_rcpt_by_reply(struct smtp_session *s, struct delivery_rcpt *r,
                                  const char *command)
{
    enum delivery_status status = session_reply_status(&s->reply);
    buf_t reason = BUF_INIT;
    char dsn[16];

    smtp_reply_dsn(&s->reply, dsn, sizeof(dsn));
    if (status == DELIVERY_SENT)
        buf_set(&reason, buf_cstr(&s->reply.text));
    else
        session_remote_reason(s, command, &reason);
    delivery_rcpt_set(r, status, dsn, buf_cstr(&reason));
    buf_free(&reason);
}

/* session_on_rcpt - the reply to RCPT TO for r */
static void session_on_rcpt(struct smtp_session *s, struct delivery_rcpt *r)
{
    if (s->mail_failed || r->result.status != DELIVERY_PENDING)
        return;
    if (s->reply.code >= 200 && s->reply.code < 300) {
        r->accepted = 1;
        s->accepted++;
        return;
    }
    session_rcpt_by_reply(s, r, "RCPT TO");
}

/* session_fill_content - top up the output with dot-stuffed content */
static void session_fill_content(struct smtp_session *s);

static void session_stuff(struct smtp_session *s, const char *p, size_t n, struct evbuffer *out);

/* session_generic_headers - with smtp_generic_maps, the rewritten header
 * section into hdrs, *n the content bytes it replaces (0: none); -1 when the
 * maps failed */
static int session_generic_headers(struct smtp_session *s, buf_t *hdrs, size_t *n)
{
    int rc;

    *n = 0;
    if (s->env->lmtp)
        return 0;
    table_proxy_scope_enter(s->tables);
    rc = smtp_generic_headers(s->env, s->qfd, s->req->content_offset, s->req->content_length, hdrs,
                              n);
    table_proxy_scope_leave();
    return rc == ROUTE_TEMPFAIL ? -1 : 0;
}

/* session_send_bdat - "BDAT n[ LAST]" for the chunk at data_pos of the
 * content, or of hdrs (the rewritten header section) when not NULL */
static void session_send_bdat(struct smtp_session *s, const buf_t *hdrs)
{
    buf_t cmd = BUF_INIT;
    long long len = s->req->content_length, n;

    if (hdrs != NULL) /* a chunk of its own; LAST only when nothing follows */
        n = smtp_body_bdat_command(0, hdrs->len + (s->data_pos < len ? 1 : 0), (long long)hdrs->len,
                                   &cmd);
    else
        n = smtp_body_bdat_command(s->data_pos, len, SMTP_BODY_BDAT_CHUNK, &cmd);
    session_send(s, &cmd);
    buf_free(&cmd);
    s->bdat_sent++;
    if (hdrs == NULL)
        s->bdat_end = s->data_pos + n;
}

/* session_send_generic_headers - with smtp_generic_maps, the header section
 * goes out rewritten and the copy from the queue file starts after it; -1
 * when the maps failed */
static int session_send_generic_headers(struct smtp_session *s)
{
    buf_t hdrs = BUF_INIT;
    size_t n = 0;
    int rc;

    if (s->body.mode == SMTP_BODY_CONVERT) /* the copy has them already */
        return 0;
    rc = session_generic_headers(s, &hdrs, &n);
    if (n > 0) {
        s->data_pos = (long long)n;
        s->bdat_end = s->data_pos;
        if (s->body.mode == SMTP_BODY_BDAT) {
            session_send_bdat(s, &hdrs);
            bufferevent_write(s->bev, hdrs.data, hdrs.len);
        } else {
            session_stuff(s, hdrs.data, hdrs.len, bufferevent_get_output(s->bev));
        }
    }
    buf_free(&hdrs);
    return rc;
}

/* session_start_content - 354: send the message */
static void session_start_content(struct smtp_session *s)
{
    s->state = S_CONTENT;
    s->data_pos = 0;
    s->bdat_end = 0;
    s->bdat_sent = s->bdat_replied = 0;
    s->at_line_start = 1;
    s->tail[0] = s->tail[1] = 0;
    if (s->chunk == NULL)
        s->chunk = xmalloc(SESSION_CHUNK);
    bufferevent_setwatermark(s->bev, EV_WRITE, SESSION_OUT_LOW, 0);
    if (session_send_generic_headers(s) < 0) {
        session_generic_failed(s);
        session_close(s); /* no "." : the server must not take the message */
        return;
    }
    session_fill_content(s);
}

/* session_on_data - the reply to DATA */
static void session_on_data(struct smtp_session *s)
{
    int ready = !s->mail_failed && s->accepted > 0;

    if (s->reply.code == 354 && ready) {
        session_start_content(s);
        return;
    }
    if (s->reply.code == 354) { /* a server that opened DATA with no recipient */
        session_close(s);
        return;
    }
    if (ready)
        session_fail_by_reply(s, "DATA", 1);
    session_quit(s);
}

/* session_mail_421 - a cached connection the server is closing says 421
 * to MAIL: 1 when the delivery moved to a fresh connection */
static int session_mail_421(struct smtp_session *s)
{
    buf_t reason = BUF_INIT;
    int fell_back;

    if (s->reply.code != 421)
        return 0;
    buf_printf(&reason, "421 reply to MAIL FROM: %s", buf_cstr(&s->reply.text));
    fell_back = session_reuse_failed(s, buf_cstr(&reason));
    buf_free(&reason);
    return fell_back;
}

/* session_on_transaction_reply - replies to MAIL, RCPT..., DATA in order */
static void session_on_transaction_reply(struct smtp_session *s)
{
    size_t i = s->cmd_replied;
    size_t n = s->req->rcpt_count;

    if (i == 0 && session_mail_421(s))
        return;
    s->cmd_replied++;
    if (i == 0)
        session_on_mail(s);
    else if (i <= n)
        session_on_rcpt(s, &s->req->rcpts[i - 1]);
    else {
        session_on_data(s);
        return;
    }
    if (s->cmd_replied < s->cmd_sent) { /* pipelined: more replies to come */
        session_arm_reply(s, s->cmd_replied);
        return;
    }
    session_send_next(s);
}

/* session_next_accepted - the first accepted recipient at or after i, or
 * rcpt_count */
static size_t session_next_accepted(const struct smtp_session *s, size_t i)
{
    while (i < s->req->rcpt_count && !s->req->rcpts[i].accepted)
        i++;
    return i;
}

/* session_on_lmtp_final - RFC 2033 4.2: after the dot one reply per
 * accepted recipient, in RCPT order; each decides its own recipient only */
static void session_on_lmtp_final(struct smtp_session *s)
{
    struct delivery_rcpt *r;

    s->final_next = session_next_accepted(s, s->final_next);
    if (s->final_next >= s->req->rcpt_count) { /* a reply no recipient is owed */
        session_protocol_error(s, "unexpected reply");
        return;
    }
    r = &s->req->rcpts[s->final_next++];
    session_rcpt_by_reply(s, r, "end of DATA");
    r->dsn_passed = s->ehlo.dsn && r->notify[0] && r->result.status == DELIVERY_SENT;
    if (session_next_accepted(s, s->final_next) < s->req->rcpt_count) {
        session_arm(s, s->env->data_timeout, s->doing); /* more replies to come */
        return;
    }
    session_finish(s);
}

/* session_on_final - the reply after the end of data (LMTP: the next one) */
static void session_on_final(struct smtp_session *s)
{
    char dsn[16];

    if (s->env->lmtp) {
        session_on_lmtp_final(s);
        return;
    }
    if (s->reply.code >= 200 && s->reply.code < 300) {
        smtp_reply_dsn(&s->reply, dsn, sizeof(dsn));
        session_fail_pending(s, DELIVERY_SENT, dsn, buf_cstr(&s->reply.text), 1);
        for (size_t i = 0; s->ehlo.dsn && i < s->req->rcpt_count; i++) {
            struct delivery_rcpt *r = &s->req->rcpts[i];
            r->dsn_passed = r->accepted && r->notify[0] && r->result.status == DELIVERY_SENT;
        }
    } else {
        session_fail_by_reply(s, "end of DATA", 1);
    }
    session_finish(s);
}

/* session_on_bdat_reply - a reply to a BDAT chunk: the one to LAST (and
 * LMTP's after it) decides as the reply after the dot does; one before it
 * must be 250, else the transaction is over (the server drops the rest) */
static void session_on_bdat_reply(struct smtp_session *s)
{
    int last_sent = s->state == S_DOT;

    if (last_sent && s->bdat_replied + 1 >= s->bdat_sent) {
        s->bdat_replied = s->bdat_sent;
        session_on_final(s);
        return;
    }
    s->bdat_replied++;
    if (s->reply.code < 200 || s->reply.code >= 300) {
        session_fail_by_reply(s, "BDAT", 1);
        session_report(s);
        session_close(s); /* chunks still on the way: no clean QUIT */
        return;
    }
    session_arm(s, s->env->data_timeout, "sending message body");
    if (s->state == S_CONTENT)
        session_fill_content(s);
}

/* session_send_hello - EHLO, HELO or LHLO with smtp_helo_name */
static void session_send_hello(struct smtp_session *s, const char *verb)
{
    buf_t out = BUF_INIT;
    const char *doing = "performing the EHLO handshake";

    if (verb[0] == 'H')
        doing = "performing the HELO handshake";
    else if (verb[0] == 'L')
        doing = "performing the LHLO handshake";
    buf_printf(&out, "%s %s\r\n", verb, s->env->helo_name);
    session_send(s, &out);
    buf_free(&out);
    session_arm(s, s->env->helo_timeout, doing);
}

/* session_on_greeting - 220 or go elsewhere */
static void session_on_greeting(struct smtp_session *s)
{
    if (s->reply.code < 200 || s->reply.code >= 300) {
        session_host_failed_by_reply(s, NULL);
        return;
    }
    s->state = S_EHLO;
    session_send_hello(s, s->env->lmtp ? "LHLO" : "EHLO");
}

/* session_tlsrpt - count this connection's TLS outcome (RFC 8460) */
static void session_tlsrpt(struct smtp_session *s, const char *result)
{
    if (s->env->tlsrpt && s->level != SMTP_TLS_NONE)
        tlsrpt_count(s->env->tlsrpt, s->hop.host, s->policy_type, result,
                     s->host_name ? s->host_name : "");
}

/* session_tls_required - the level of this connection demands TLS */
static int session_tls_required(const struct smtp_session *s)
{
    return s->level >= SMTP_TLS_ENCRYPT;
}

/* session_tls_verify_required - ... and a verified server certificate */
static int session_tls_verify_required(const struct smtp_session *s)
{
    return s->level >= SMTP_TLS_DANE;
}

/* session_auth_failed - AUTH did not work out: this address is out, the
 * mail deferred (never bounced: RFC 4954 gives 535 for a bad password,
 * which is ours to fix) */
static void session_auth_failed(struct smtp_session *s, const char *why)
{
    buf_t reason = BUF_INIT;
    char dsn[16];

    stats_count_result(STATS_AUTH, "smtp", 0);
    if (why) {
        buf_printf(&reason, "SASL authentication failed; cannot authenticate to server %s: %s",
                   buf_cstr(&s->peer), why);
        snprintf(dsn, sizeof(dsn), "4.7.0");
    } else {
        buf_printf(&reason, "SASL authentication failed; server %s said: %s", buf_cstr(&s->peer),
                   buf_cstr(&s->reply.text));
        smtp_reply_dsn(&s->reply, dsn, sizeof(dsn));
        dsn[0] = '4';
    }
    smtp_sasl_client_free(s->sasl);
    s->sasl = NULL;
    session_host_failed(s, DELIVERY_DEFER, dsn, buf_cstr(&reason));
    buf_free(&reason);
}

static void session_after_hello(struct smtp_session *s);

/* session_on_credentials - the SASL password maps answered: AUTH (or
 * not), then the transaction -- on the connection that asked */
static void session_on_credentials(void *arg)
{
    struct smtp_session *s = arg;

    session_enter(s);
    if (s->auth_lookup) {
        int mine = s->auth_lookup_gen == s->gen;
        s->auth_lookup = 0; /* before: session_after_hello may start the next round */
        if (mine)
            session_after_hello(s);
    }
    session_leave(s);
}

/* session_auth_lookup_wait - the credentials wait for tern-proxymap: the
 * connection idles (under the command timeout) until they are in.  A wait
 * still out for a connection that went away is joined: its answer runs
 * the evaluation again for this one.  -1 with err when no wait is out */
static int session_auth_lookup_wait(struct smtp_session *s, buf_t *err)
{
    if (table_proxy_scope_wait(s->tables, s->env->base, session_on_credentials, s) < 0 &&
        !table_proxy_scope_waiting(s->tables)) {
        buf_reset(err);
        buf_puts(err, "smtp_sasl_password_maps: lookup failed");
        return -1;
    }
    s->auth_lookup = 1;
    s->auth_lookup_gen = s->gen;
    session_arm(s, s->env->command_timeout, "looking up SASL credentials");
    return 0;
}

/* session_auth_start - AUTH with the credentials for this server, if any:
 * 1 when the exchange started (or failed), 0 when there is nothing to do */
static int session_auth_start(struct smtp_session *s)
{
    buf_t hostport = BUF_INIT, user = BUF_INIT, pass = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
    const char *keys[5];
    SSL *ssl = s->tls_active ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    int rc, waiting = 0;

    buf_printf(&hostport, "[%s]:%d", s->hop.host, s->port);
    keys[0] = s->req->nexthop;
    keys[1] = s->hop.host;
    keys[2] = buf_cstr(&hostport);
    keys[3] = s->host_name;
    keys[4] = NULL;
    table_proxy_scope_enter(s->tables);
    rc = smtp_sasl_credentials(s->env->sasl, s->req->sender, keys, &user, &pass, &err);
    table_proxy_scope_leave();
    if (table_proxy_scope_pending(s->tables)) {
        rc = session_auth_lookup_wait(s, &err);
        waiting = rc == 0;
    }
    if (rc > 0)
        s->sasl = smtp_sasl_client_start(s->env->sasl, s->host_name, s->ehlo.auth, s->tls_active,
                                         ssl ? smtp_tls_ssf(ssl) : 0, buf_cstr(&user),
                                         buf_cstr(&pass), &out, &err);
    buf_wipe(&user);
    buf_wipe(&pass);
    if (rc < 0 || (rc > 0 && s->sasl == NULL)) {
        session_auth_failed(s, buf_cstr(&err));
    } else if (rc > 0) {
        s->state = S_AUTH;
        session_send(s, &out);
        session_arm(s, s->env->command_timeout, "performing SASL authentication");
    }
    buf_wipe(&out);
    buf_free(&user);
    buf_free(&pass);
    buf_free(&out);
    buf_free(&err);
    buf_free(&hostport);
    return rc != 0 || waiting; /* waiting: session_on_credentials goes on */
}

/* session_on_auth - 334: the next step; 2xx: in; else: out */
static void session_on_auth(struct smtp_session *s)
{
    buf_t out = BUF_INIT, err = BUF_INIT;
    buf_t challenge = BUF_INIT;

    if (s->reply.code == 334) {
        smtp_reply_last_text(&s->reply, &challenge); /* as sent: not the cleaned-up text */
        if (smtp_sasl_client_step(s->sasl, buf_cstr(&challenge), &out, &err) < 0) {
            session_auth_failed(s, buf_cstr(&err));
        } else {
            session_send(s, &out);
            session_arm(s, s->env->command_timeout, "performing SASL authentication");
        }
    } else if (s->reply.code >= 200 && s->reply.code < 300) {
        log_info("%s: authenticated to %s with %s", s->req->queue_id, buf_cstr(&s->relay),
                 smtp_sasl_client_mech(s->sasl));
        smtp_sasl_client_free(s->sasl);
        s->sasl = NULL;
        s->authenticated = 1;
        stats_count_result(STATS_AUTH, "smtp", 1);
        session_begin_delivery(s);
    } else {
        session_auth_failed(s, NULL);
    }
    buf_wipe(&out);
    buf_free(&out);
    buf_free(&err);
    buf_free(&challenge);
}

/* session_requiretls_refused - RFC 8689 4.2.1: a REQUIRETLS message goes
 * only to a server that offers REQUIRETLS, over verified TLS: else this
 * address fails, and the message bounces with 5.7.30 when none is left */
static int session_requiretls_refused(struct smtp_session *s)
{
    buf_t reason = BUF_INIT;

    if (!s->req->requiretls || s->env->lmtp)
        return 0;
    if (!s->tls_policy_ok)
        buf_printf(&reason, "REQUIRETLS: no verified TLS connection to host %s",
                   buf_cstr(&s->peer));
    else if (!s->ehlo.requiretls && s->req->sender[0]) /* RFC 8689 5: a notice (MAIL FROM:<>)
                                                         is not lost for want of the keyword */
        buf_printf(&reason, "REQUIRETLS support required, but not offered by host %s",
                   buf_cstr(&s->peer));
    else
        return 0;
    session_host_failed(s, DELIVERY_BOUNCE, "5.7.30", buf_cstr(&reason));
    buf_free(&reason);
    return 1;
}

/* session_after_hello - the server is known (and under TLS if it will
 * be): AUTH if we have credentials for it, then the transaction */
static void session_after_hello(struct smtp_session *s)
{
    if (session_requiretls_refused(s))
        return;
    if (s->env->sasl && !s->authenticated && s->ehlo.auth[0] && session_auth_start(s))
        return;
    session_begin_delivery(s);
}

/* session_send_starttls - ask for TLS (never pipelined: RFC 3207 4.2) */
static void session_send_starttls(struct smtp_session *s)
{
    s->state = S_STARTTLS;
    session_send_text(s, "STARTTLS\r\n");
    session_arm(s, s->env->helo_timeout, "sending STARTTLS");
}

/* session_tls_not_offered - the server said no STARTTLS: fine at level
 * may, else this address cannot take the mail */
static void session_tls_not_offered(struct smtp_session *s, const char *how)
{
    buf_t reason = BUF_INIT;

    if (!session_tls_required(s)) {
        if (s->ehlo.starttls == 0)
            session_tlsrpt(s, "starttls-not-supported");
        session_after_hello(s);
        return;
    }
    session_tlsrpt(s, "starttls-not-supported");
    buf_printf(&reason, "TLS is required, but %s host %s", how, buf_cstr(&s->peer));
    session_host_failed(s, DELIVERY_DEFER, "4.7.4", buf_cstr(&reason));
    buf_free(&reason);
}

/* session_on_ehlo - learn the extensions; 5xx: try HELO (not in LMTP) */
static void session_on_ehlo(struct smtp_session *s)
{
    if (s->reply.code >= 200 && s->reply.code < 300) {
        smtp_ehlo_parse(&s->reply, &s->ehlo);
        if (s->tls_active || s->level == SMTP_TLS_NONE || s->tls_fallback)
            session_after_hello(s);
        else if (s->ehlo.starttls && evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
            session_protocol_error(s, "reply pipelined after the EHLO reply"); /* RFC 3207 */
        else if (s->ehlo.starttls)
            session_send_starttls(s);
        else
            session_tls_not_offered(s, "was not offered by");
    } else if (s->reply.code >= 500 && !s->env->lmtp) {
        s->state = S_HELO;
        session_send_hello(s, "HELO");
    } else {
        session_host_failed_by_reply(s, s->env->lmtp ? "LHLO" : "EHLO");
    }
}

/* session_on_helo - plain SMTP: no extensions */
static void session_on_helo(struct smtp_session *s)
{
    if (s->reply.code < 200 || s->reply.code >= 300) {
        session_host_failed_by_reply(s, "HELO");
        return;
    }
    memset(&s->ehlo, 0, sizeof(s->ehlo));
    if (s->tls_active || s->level == SMTP_TLS_NONE || s->tls_fallback)
        session_after_hello(s);
    else
        session_tls_not_offered(s, "was not offered by"); /* HELO: no extensions */
}

static void session_read_event(struct bufferevent *bev, void *arg);
static void session_write_event(struct bufferevent *bev, void *arg);
static void session_conn_event(struct bufferevent *bev, short what, void *arg);

/* session_tls_peer - what the handshake with the current server needs */
static void session_tls_peer(struct smtp_session *s, struct smtp_tls_peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    peer->policy = &s->cur;
    peer->tlsa = s->tlsa;
    peer->tlsa_count = s->tlsa_count;
    peer->hostname = s->host_name;
    peer->nexthop = s->hop.host;
    peer->relay = buf_cstr(&s->relay);
}

/* session_start_tls - 220 to STARTTLS: the handshake, on a new
 * bufferevent over the same socket */
static void session_start_tls(struct smtp_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    struct smtp_tls_peer peer;
    buf_t err = BUF_INIT, reason = BUF_INIT;
    SSL *ssl;
    int fd;

    if (evbuffer_get_length(in) > 0) { /* RFC 3207 6: bytes before the handshake are an attack */
        log_info("%s: %s sent %zu bytes after its reply to STARTTLS; discarded", s->req->queue_id,
                 buf_cstr(&s->peer), evbuffer_get_length(in));
        evbuffer_drain(in, evbuffer_get_length(in));
    }
    session_tls_peer(s, &peer);
    ssl = smtp_tls_ssl_new(s->env->tls, &peer, &err);
    fd = ssl ? dup(bufferevent_getfd(s->bev)) : -1;
    if (fd < 0) {
        buf_printf(&reason, "cannot start TLS with %s: %s", buf_cstr(&s->peer),
                   ssl ? strerror(errno) : buf_cstr(&err));
        SSL_free(ssl);
        session_host_failed(s, DELIVERY_DEFER, "4.7.5", buf_cstr(&reason));
        buf_free(&err);
        buf_free(&reason);
        return;
    }
    buf_free(&err);
    buf_free(&reason);
    bufferevent_free(s->bev); /* closes the old descriptor */
    s->fd = fd;
    s->bev = bufferevent_openssl_socket_new(s->env->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL)
        log_panic("bufferevent_openssl_socket_new failed");
    bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
    bufferevent_setcb(s->bev, session_read_event, session_write_event, session_conn_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    s->state = S_TLS;
    session_arm(s, s->env->helo_timeout, "performing the TLS handshake");
}

/* session_on_starttls - the reply to STARTTLS */
static void session_on_starttls(struct smtp_session *s)
{
    buf_t how = BUF_INIT;

    if (s->reply.code == 220) {
        session_start_tls(s);
        return;
    }
    buf_printf(&how, "STARTTLS was refused (%s) by", buf_cstr(&s->reply.text));
    session_tls_not_offered(s, buf_cstr(&how));
    buf_free(&how);
}

/* session_tls_done - the handshake finished: is this server good enough
 * for the level?  Then EHLO again (RFC 3207 4.2: forget what it said) */
static void session_tls_done(struct smtp_session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    buf_t why = BUF_INIT, reason = BUF_INIT;
    enum smtp_tls_trust trust = smtp_tls_result(ssl, &why);

    smtp_tls_log_handshake(s->env->tls, ssl, trust, buf_cstr(&s->relay));
    stats_count_result(STATS_TLS, "smtp", 1);
    s->tls_active = 1;
    s->tls_verified = trust == SMTP_TLS_VERIFIED;
    s->tls_policy_ok = s->tls_verified && (s->tlsa_count > 0 || s->level >= SMTP_TLS_VERIFY);
    snprintf(s->tls_note, sizeof(s->tls_note), "%s/%s", SSL_get_version(ssl),
             smtp_tls_trust_name(trust, 1));
    if (session_tls_verify_required(s) && !s->tls_verified) {
        session_tlsrpt(s, trust == SMTP_TLS_TRUSTED ? "certificate-host-mismatch"
                          : smtp_tls_expired(ssl)   ? "certificate-expired"
                          : s->level == SMTP_TLS_DANE || s->level == SMTP_TLS_DANE_ONLY
                              ? "validation-failure"
                              : "certificate-not-trusted");
        buf_printf(&reason, "certificate verification failed for %s: %s", buf_cstr(&s->relay),
                   buf_cstr(&why));
        session_host_failed(s, DELIVERY_DEFER, "4.7.5", buf_cstr(&reason));
    } else {
        if (s->sts_testing && !s->tls_verified)
            log_info("%s: MTA-STS policy of %s (testing): the certificate of %s would not pass: %s",
                     s->req->queue_id, s->hop.host, buf_cstr(&s->relay), buf_cstr(&why));
        session_tlsrpt(s, s->sts_testing && !s->tls_verified
                              ? (trust == SMTP_TLS_TRUSTED ? "certificate-host-mismatch"
                                                           : "certificate-not-trusted")
                              : "success");
        memset(&s->ehlo, 0, sizeof(s->ehlo));
        s->state = S_EHLO;
        session_send_hello(s, "EHLO");
    }
    buf_free(&why);
    buf_free(&reason);
}

/* session_tls_error - OpenSSL's reason for a failed handshake */
static void session_tls_error(struct smtp_session *s, short what, buf_t *out)
{
    unsigned long e;
    char text[256];

    while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
        ERR_error_string_n(e, text, sizeof(text));
        buf_printf(out, "%s%s", out->len ? "; " : "", text);
    }
    if (out->len == 0)
        buf_puts(out, what & BEV_EVENT_EOF ? "the server closed the connection" : "I/O error");
}

/* session_tls_failed - the handshake failed: at level may once more in
 * plaintext to the same address, else this address is out */
static void session_tls_failed(struct smtp_session *s, short what)
{
    buf_t why = BUF_INIT, reason = BUF_INIT;

    session_tls_error(s, what, &why);
    stats_count_result(STATS_TLS, "smtp", 0);
    session_tlsrpt(s, "validation-failure");
    if (!session_tls_required(s) && !s->tls_fallback) {
        log_info("%s: TLS handshake with %s failed (%s); trying again without TLS",
                 s->req->queue_id, buf_cstr(&s->relay), buf_cstr(&why));
        session_disconnect(s);
        s->tls_fallback = 1;
        s->host_next--;
        session_connect(s, &s->hosts->hosts[s->host_next++]);
    } else {
        buf_printf(&reason, "TLS handshake with %s failed: %s", buf_cstr(&s->relay),
                   buf_cstr(&why));
        session_host_failed(s, DELIVERY_DEFER, "4.7.5", buf_cstr(&reason));
    }
    buf_free(&why);
    buf_free(&reason);
}

/* session_on_reply - a complete reply arrived */
static void session_on_reply(struct smtp_session *s)
{
    switch (s->state) {
    case S_GREETING:
        session_on_greeting(s);
        break;
    case S_EHLO:
        session_on_ehlo(s);
        break;
    case S_HELO:
        session_on_helo(s);
        break;
    case S_STARTTLS:
        session_on_starttls(s);
        break;
    case S_AUTH:
        session_on_auth(s);
        break;
    case S_TRANSACTION:
        session_on_transaction_reply(s);
        break;
    case S_CONTENT:
    case S_DOT:
        if (s->body.mode == SMTP_BODY_BDAT)
            session_on_bdat_reply(s);
        else if (s->state == S_DOT)
            session_on_final(s);
        else
            session_protocol_error(s, "unexpected reply");
        break;
    case S_QUIT:
        session_close(s);
        break;
    default: /* a reply while we send content: the server broke the protocol */
        session_protocol_error(s, "unexpected reply");
        break;
    }
}

/* session_read_line - one line from input into the reply; -1 garbage,
 * 0 need more bytes, 1 line consumed */
static int session_read_line(struct smtp_session *s, struct evbuffer *in, int *complete)
{
    size_t eol_len = 0, n = 0;
    struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    char *line;
    int rc;

    if (pos.pos < 0)
        return evbuffer_get_length(in) > SMTP_REPLY_MAX_LINE + 2 ? -1 : 0;
    if ((size_t)pos.pos > SMTP_REPLY_MAX_LINE)
        return -1;
    line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    if (line == NULL)
        return 0;
    if (s->reply.code != 0)
        smtp_reply_reset(&s->reply);
    rc = smtp_reply_feed(&s->reply, line, n);
    delivery_trace(s->req, "", line, n);
    free(line);
    *complete = rc == 1;
    return rc < 0 ? -1 : 1;
}

/* session_read_event - the server sent something */
static void session_read_event(struct bufferevent *bev, void *arg)
{
    struct smtp_session *s = arg;
    unsigned gen = s->gen;

    session_enter(s);
    while (!s->dead && s->gen == gen && s->bev == bev) {
        int complete = 0;
        int rc = session_read_line(s, bufferevent_get_input(bev), &complete);
        if (rc == 0)
            break;
        if (rc < 0) {
            session_protocol_error(s, "malformed or too long reply");
            break;
        }
        if (complete)
            session_on_reply(s);
    }
    session_leave(s);
}

/* session_write_event - output drained below the low mark */
static void session_write_event(struct bufferevent *bev, void *arg)
{
    struct smtp_session *s = arg;

    if (s->state != S_CONTENT)
        return;
    session_enter(s);
    session_fill_content(s);
    session_leave(s);
}

/* session_conn_event - EOF or error on the connection */
static void session_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_session *s = arg;
    buf_t reason = BUF_INIT;

    if (s->state == S_TLS && (what & BEV_EVENT_CONNECTED)) {
        session_enter(s);
        session_tls_done(s);
        session_leave(s);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    session_enter(s);
    if (s->state == S_TLS) {
        session_tls_failed(s, what);
        session_leave(s);
        return;
    }
    buf_printf(&reason, "lost connection with %s while %s", buf_cstr(&s->peer),
               s->doing ? s->doing : "talking");
    session_conversation_failed(s, "4.4.2", buf_cstr(&reason));
    buf_free(&reason);
    session_leave(s);
}

/* session_quit - report, then say goodbye (best effort) */
static void session_quit(struct smtp_session *s)
{
    session_report(s);
    session_send_quit(s);
}

/* session_send_quit - QUIT; the session closes at its reply */
static void session_send_quit(struct smtp_session *s)
{
    if (s->req->trace)
        smtp_trace_closing(s->req, buf_cstr(&s->peer));
    s->state = S_QUIT;
    session_send_text(s, "QUIT\r\n");
    session_arm(s, s->env->command_timeout, "sending QUIT");
}

/* session_stuff - append p[0..n) dot-stuffed to out */
static void session_stuff(struct smtp_session *s, const char *p, size_t n, struct evbuffer *out)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (s->at_line_start && p[i] == '.') {
            evbuffer_add(out, p + start, i - start);
            evbuffer_add(out, ".", 1);
            start = i;
        }
        s->at_line_start = p[i] == '\n';
    }
    evbuffer_add(out, p + start, n - start);
    if (n >= 2) {
        s->tail[0] = p[n - 2];
        s->tail[1] = p[n - 1];
    } else if (n == 1) {
        s->tail[0] = s->tail[1];
        s->tail[1] = p[0];
    }
}

/* session_read_failed - the queue file could not be read: abort, defer */
static void session_read_failed(struct smtp_session *s, const char *why)
{
    buf_t reason = BUF_INIT;

    buf_printf(&reason, "error reading queue file %s: %s", s->req->path, why);
    log_warn("%s: %s", s->req->queue_id, buf_cstr(&reason));
    session_fail_pending(s, DELIVERY_DEFER, "4.3.0", buf_cstr(&reason), 0);
    buf_free(&reason);
    session_close(s); /* no "." : the server must not take a partial message */
}

/* session_content_length - of what goes out: the queue file's content or the copy */
static long long session_content_length(const struct smtp_session *s)
{
    if (s->body.mode == SMTP_BODY_CONVERT)
        return (long long)s->body.copy.len;
    return s->req->content_length;
}

/* session_read_content - up to want bytes at data_pos: from the copy, or
 * read from the queue file into s->chunk; NULL with *n -1 on error */
static const char *session_read_content(struct smtp_session *s, size_t want, ssize_t *n)
{
    if (s->body.mode == SMTP_BODY_CONVERT) {
        *n = (ssize_t)want;
        return s->body.copy.data + s->data_pos;
    }
    do
        *n = pread(s->qfd, s->chunk, want, (off_t)(s->req->content_offset + s->data_pos));
    while (*n < 0 && errno == EINTR);
    return s->chunk;
}

/* session_end_content - the terminating ".", with a CRLF first if needed */
static void session_end_content(struct smtp_session *s, struct evbuffer *out)
{
    int ends_crlf = s->tail[0] == '\r' && s->tail[1] == '\n';

    if (s->body.mode == SMTP_BODY_BDAT) { /* the LAST chunk is out: wait for the replies */
        s->state = S_DOT;
        session_arm(s, s->env->data_timeout,
                    "sending end of data -- message may be sent more than once");
        return;
    }
    if (session_content_length(s) == 0 || ends_crlf)
        evbuffer_add(out, ".\r\n", 3);
    else
        evbuffer_add(out, "\r\n.\r\n", 5);
    s->state = S_DOT;
    session_arm(s, s->env->data_timeout,
                "sending end of data -- message may be sent more than once");
}

/* session_bdat_boundary - BDAT: at the end of a chunk, start the next
 * one; 0 when the content may go on, -1 to wait (without PIPELINING a
 * chunk waits for the reply to the one before) */
static int session_bdat_boundary(struct smtp_session *s, long long len)
{
    if (s->body.mode != SMTP_BODY_BDAT || s->data_pos < s->bdat_end ||
        (s->bdat_sent > 0 && s->data_pos >= len))
        return 0;
    if (!s->ehlo.pipelining && s->bdat_replied < s->bdat_sent)
        return -1;
    session_send_bdat(s, NULL);
    return 0;
}

/* session_fill_content - see above */
static void session_fill_content(struct smtp_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    long long len = session_content_length(s);
    long long end;

    session_arm(s, s->env->data_timeout, "sending message body");
    while (evbuffer_get_length(out) < SESSION_OUT_HIGH && session_bdat_boundary(s, len) == 0) {
        end = s->body.mode == SMTP_BODY_BDAT ? s->bdat_end : len;
        if (s->data_pos >= end)
            break;
        size_t want =
            (size_t)(end - s->data_pos < SESSION_CHUNK ? end - s->data_pos : SESSION_CHUNK);
        ssize_t n;
        const char *p = session_read_content(s, want, &n);
        if (n <= 0) {
            session_read_failed(s, n < 0 ? strerror(errno) : "unexpected end of file");
            return;
        }
        if (s->body.mode == SMTP_BODY_BDAT)
            evbuffer_add(out, p, (size_t)n); /* no dot-stuffing in a chunk */
        else
            session_stuff(s, p, (size_t)n, out);
        s->data_pos += n;
    }
    if (s->data_pos >= len && (s->body.mode != SMTP_BODY_BDAT || s->bdat_end >= len))
        session_end_content(s, out);
}

/* session_connected - TCP is up: wait for the greeting */
static void session_connected(struct smtp_session *s)
{
    s->bev = bufferevent_socket_new(s->env->base, s->fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL)
        log_panic("bufferevent_socket_new failed");
    bufferevent_setcb(s->bev, session_read_event, session_write_event, session_conn_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    buf_reset(&s->relay);
    if (s->hop.kind == SMTP_NEXTHOP_UNIX)
        buf_puts(&s->relay, buf_cstr(&s->peer)); /* relay=/path, as Postfix's lmtp says it */
    else
        buf_printf(&s->relay, "%s:%d", buf_cstr(&s->peer), s->port);
    smtp_reply_reset(&s->reply);
    memset(&s->ehlo, 0, sizeof(s->ehlo));
    s->uses = 0;
    s->reused = 0;
    s->tls_active = 0;
    s->tls_verified = 0;
    s->tls_policy_ok = 0;
    s->authenticated = 0;
    snprintf(s->tls_note, sizeof(s->tls_note), "no");
    s->state = S_GREETING;
    session_arm(s, s->env->helo_timeout, "receiving the initial server greeting");
}

/* session_connect_failed - remember "connect to H[A]:P: error" (or
 * "connect to /path: error"), go on */
static void session_connect_failed(struct smtp_session *s, int err)
{
    buf_t reason = BUF_INIT;

    if (s->hop.kind == SMTP_NEXTHOP_UNIX)
        buf_printf(&reason, "connect to %s: %s", buf_cstr(&s->peer), strerror(err));
    else
        buf_printf(&reason, "connect to %s:%d: %s", buf_cstr(&s->peer), s->port, strerror(err));
    session_host_failed(s, DELIVERY_DEFER, "4.4.1", buf_cstr(&reason));
    buf_free(&reason);
}

/* session_connect_event - the non-blocking connect finished or timed out */
static void session_connect_event(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    session_enter(s);
    event_free(s->connect_ev);
    s->connect_ev = NULL;
    if (what & EV_TIMEOUT)
        err = ETIMEDOUT;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err)
        session_connect_failed(s, err);
    else
        session_connected(s);
    session_leave(s);
}

/* session_peer_name - "host[addr]" of h, or the path of a UNIX socket */
static void session_peer_name(struct smtp_session *s, const struct dns_host *h)
{
    const struct sockaddr *sa = (const struct sockaddr *)&h->addr;
    char addr[64];

    buf_reset(&s->peer);
    if (sa->sa_family == AF_UNIX) {
        buf_puts(&s->peer, h->hostname);
        return;
    }
    netaddr_format(sa, addr, sizeof(addr));
    buf_printf(&s->peer, "%s[%s]", h->hostname, addr);
}

/* session_connect - start a non-blocking connect to host h */
static void session_connect(struct smtp_session *s, const struct dns_host *h)
{
    const struct sockaddr *sa = (const struct sockaddr *)&h->addr;
    struct timeval tv = {(time_t)s->env->connect_timeout, 0};

    session_peer_name(s, h);
    s->host_name = h->hostname;
    s->state = S_CONNECT;
    s->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        session_connect_failed(s, errno);
        return;
    }
    smtp_trace_connecting(s->req, buf_cstr(&s->peer), s->port, s->env->lmtp);
    if (connect(s->fd, sa, h->addrlen) == 0) {
        session_connected(s);
        return;
    }
    if (errno != EINPROGRESS) {
        session_connect_failed(s, errno);
        return;
    }
    s->connect_ev = event_new(s->env->base, s->fd, EV_WRITE, session_connect_event, s);
    if (s->connect_ev == NULL)
        log_panic("event_new failed");
    event_add(s->connect_ev, &tv);
}

/* session_port_of - the port in a resolved address (0: a UNIX socket) */
static int session_port_of(const struct dns_host *h)
{
    const struct sockaddr *sa = (const struct sockaddr *)&h->addr;

    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return 0;
}

/* session_set_level - the level of the connection about to be made */
static void session_set_level(struct smtp_session *s, enum smtp_tls_level level)
{
    s->cur.level = level;
    s->level = level;
}

/* session_host_refused - this address cannot be used under the policy */
static void session_host_refused(struct smtp_session *s, const struct dns_host *h, const char *dsn,
                                 const char *why)
{
    buf_t reason = BUF_INIT;

    session_peer_name(s, h);
    buf_printf(&reason, "%s: %s", buf_cstr(&s->peer), why);
    session_host_failed(s, DELIVERY_DEFER, dsn, buf_cstr(&reason));
    buf_free(&reason);
}

/* session_apply_sts - RFC 8461 4.1/4.2: under a policy in enforce mode
 * only an MX host the policy names, over TLS verified for that name; in
 * testing mode the same is checked and reported only.  0 go on, -1 the
 * host is out.  DANE, where it has records, comes first (RFC 8461 2). */
static int session_apply_sts(struct smtp_session *s, const struct dns_host *h)
{
    int match;

    if (s->sts.mode == MTASTS_MODE_NONE || s->tlsa_count > 0 || s->cur.from_map)
        return 0;
    match = mtasts_mx_match(&s->sts, h->hostname);
    s->policy_type = "sts";
    if (s->sts.mode == MTASTS_MODE_TESTING) {
        if (!match)
            log_info("%s: MTA-STS policy of %s (testing): MX host %s is not in the policy",
                     s->req->queue_id, s->hop.host, h->hostname);
        if (s->level < SMTP_TLS_VERIFY) { /* report what enforce would see; never replace
                                              the names a configured level checks */
            s->sts_testing = 1;
            s->cur.check_names = 1;
            snprintf(s->cur.match, sizeof(s->cur.match), "hostname");
        }
        return 0;
    }
    if (!match) {
        buf_t why = BUF_INIT;
        buf_printf(&why, "MX host %s is not in the MTA-STS policy of %s", h->hostname, s->hop.host);
        if (s->env->tlsrpt)
            tlsrpt_count(s->env->tlsrpt, s->hop.host, "sts", "validation-failure", h->hostname);
        session_host_refused(s, h, "4.7.5", buf_cstr(&why));
        buf_free(&why);
        return -1;
    }
    if (s->level < SMTP_TLS_VERIFY) {
        session_set_level(s, SMTP_TLS_VERIFY);
        snprintf(s->cur.match, sizeof(s->cur.match), "hostname");
    }
    return 0;
}

/* session_dane_fallback - no usable TLSA: dane becomes may, dane-only
 * fails this host (why says what was missing); 0 go on, -1 out */
static int session_dane_fallback(struct smtp_session *s, const struct dns_host *h, const char *why)
{
    if (s->level == SMTP_TLS_DANE_ONLY) {
        buf_t reason = BUF_INIT;
        if (s->env->tlsrpt) /* RFC 8460 4.3.2: DANE required, no validated TLSA */
            tlsrpt_count(s->env->tlsrpt, s->hop.host, "tlsa", "dane-required", h->hostname);
        buf_printf(&reason, "no usable DANE TLSA records: %s", why);
        session_host_refused(s, h, "4.7.5", buf_cstr(&reason));
        buf_free(&reason);
        return -1;
    }
    session_set_level(s, SMTP_TLS_MAY);
    return 0;
}

/* session_host_ready - the policy of this address is complete: connect */
static void session_host_ready(struct smtp_session *s, const struct dns_host *h)
{
    if (session_apply_sts(s, h) < 0)
        return;
    session_connect(s, h);
}

/* session_tlsa_answer - the TLSA records of the host (RFC 7672 2.2) */
static void session_tlsa_answer(struct dns_answer *ans, void *arg)
{
    struct smtp_session *s = arg;
    const struct dns_host *h = &s->hosts->hosts[s->host_next - 1];
    buf_t why = BUF_INIT;
    size_t unusable;
    int rc = 0;

    session_enter(s);
    s->tlsa_query = NULL;
    if (ans->status == DNS_TEMPFAIL) { /* bogus, or no answer: this host cannot be used */
        buf_printf(&why, "TLSA lookup error for %s: %s", h->hostname, ans->reason);
        if (s->env->tlsrpt)
            tlsrpt_count(s->env->tlsrpt, s->hop.host, "tlsa", "dnssec-invalid", h->hostname);
        session_host_refused(s, h, "4.7.5", buf_cstr(&why));
        rc = -1;
    } else if (ans->status != DNS_OK || !ans->secure) {
        buf_printf(&why, "%s TLSA records for %s", ans->status == DNS_OK ? "insecure" : "no",
                   h->hostname);
        rc = session_dane_fallback(s, h, buf_cstr(&why));
    } else {
        unusable = dane_tlsa_set(ans->v, &s->tlsa, &s->tlsa_count);
        s->policy_type = "tlsa";
        if (s->tlsa_count == 0 && s->level == SMTP_TLS_DANE_ONLY) {
            if (s->env->tlsrpt) /* RFC 8460 4.3.2: none of the records is valid */
                tlsrpt_count(s->env->tlsrpt, s->hop.host, "tlsa", "tlsa-invalid", h->hostname);
            buf_printf(&why, "no usable DANE TLSA records: the %zu TLSA records of %s are unusable",
                       unusable, h->hostname);
            session_host_refused(s, h, "4.7.5", buf_cstr(&why));
            rc = -1;
        } else if (s->tlsa_count == 0) { /* RFC 7672 2.2: records, none usable: TLS,
                                            unauthenticated */
            log_info("%s: %zu TLSA records of %s are unusable; TLS without authentication",
                     s->req->queue_id, unusable, h->hostname);
            session_set_level(s, SMTP_TLS_ENCRYPT);
        }
    }
    dns_answer_free(ans);
    buf_free(&why);
    if (rc == 0 && !s->dead)
        session_host_ready(s, h);
    session_leave(s);
}

/* session_prepare_host - the TLS policy of the address h: DANE's TLSA
 * lookup when the level asks for it and DNSSEC vouches for the MX and the
 * address, MTA-STS, then connect */
static void session_prepare_host(struct smtp_session *s, const struct dns_host *h)
{
    buf_t name = BUF_INIT;

    s->cur = s->policy;
    s->level = s->policy.level;
    s->policy_type = "no-policy-found";
    s->sts_testing = 0;
    dane_tlsa_free(s->tlsa, s->tlsa_count);
    s->tlsa = NULL;
    s->tlsa_count = 0;
    if (s->req->tls_required_no && (s->level == SMTP_TLS_DANE || s->level == SMTP_TLS_DANE_ONLY))
        session_set_level(s, SMTP_TLS_MAY); /* RFC 8689 5: the sender waived DANE */
    if (s->level != SMTP_TLS_DANE && s->level != SMTP_TLS_DANE_ONLY) {
        session_host_ready(s, h);
        return;
    }
    if (!s->env->dnssec) {
        if (session_dane_fallback(s, h, "smtp_dns_support_level is not dnssec") == 0)
            session_host_ready(s, h);
        return;
    }
    if ((s->hop.use_mx && !s->hosts->mx_secure) || !h->secure) {
        if (session_dane_fallback(s, h, "the MX or address records are not DNSSEC-signed") == 0)
            session_host_ready(s, h);
        return;
    }
    dane_tlsa_name(h->hostname, s->port, &name);
    s->state = S_TLSA;
    s->tlsa_query = dns_query(s->env->dns, buf_cstr(&name), DNS_QTLSA, session_tlsa_answer, s);
    buf_free(&name);
}

/* session_try_next - the next address, or give up with the last error */
static void session_try_next(struct smtp_session *s)
{
    const struct dns_host *h;

    if (s->host_next >= s->hosts->count) {
        session_smtputf8_give_up(s);
        session_fail_pending(s, s->last_status, s->last_dsn, buf_cstr(&s->last_reason), 0);
        session_close(s);
        return;
    }
    h = &s->hosts->hosts[s->host_next++];
    while (session_smtputf8_skip(s, h))
        h = &s->hosts->hosts[s->host_next++];
    s->port = session_port_of(h);
    s->tls_fallback = 0;
    session_prepare_host(s, h);
}

/* session_open_queue_file - the content comes from here; 0 ok */
static int session_open_queue_file(struct smtp_session *s)
{
    buf_t reason = BUF_INIT;

    if (s->qfd >= 0) /* opened for a cached connection that then failed */
        return 0;
    s->qfd = safe_open_regular(s->req->path, O_RDONLY);
    if (s->qfd >= 0)
        return 0;
    buf_printf(&reason, "cannot open queue file %s: %s", s->req->path, strerror(errno));
    log_warn("%s: %s", s->req->queue_id, buf_cstr(&reason));
    session_fail_pending(s, DELIVERY_DEFER, "4.3.0", buf_cstr(&reason), 0);
    buf_free(&reason);
    return -1;
}

/* session_mx_loop - ROUTE-09: cut the MX list where it reaches this host;
 * 1 when nothing is left (every recipient then has its outcome) */
static int session_mx_loop(struct smtp_session *s)
{
    enum smtp_self_verdict v;
    buf_t host = BUF_INIT, reason = BUF_INIT;
    int pref = 0;

    if (s->env->self == NULL || !s->hop.use_mx)
        return 0;
    v = smtp_self_mx_cut(s->env->self, s->hosts, &pref, &host);
    if (v != SMTP_SELF_NONE)
        log_info("%s: MX list for %s cut at preference %d: %s is this host", s->req->queue_id,
                 s->hop.host, pref, buf_cstr(&host));
    if (v == SMTP_SELF_LOOP) {
        buf_printf(&reason, "mail for %s loops back to myself", s->hop.host);
        session_fail_pending(s, DELIVERY_BOUNCE, "5.4.6", buf_cstr(&reason), 0);
    } else if (v == SMTP_SELF_NO_PRIMARY) {
        buf_printf(&reason, "unable to find primary relay for %s", s->hop.host);
        session_fail_pending(s, DELIVERY_DEFER, "4.4.4", buf_cstr(&reason), 0);
    }
    buf_free(&host);
    buf_free(&reason);
    return v == SMTP_SELF_LOOP || v == SMTP_SELF_NO_PRIMARY;
}

/* session_resolved - the DNS answer: addresses to try, or a final failure */
static void session_resolved(struct dns_result *res, void *arg)
{
    struct smtp_session *s = arg;

    session_enter(s);
    s->hosts = res;
    if (res->status != DNS_OK) {
        int perm = res->status == DNS_NOTFOUND;
        session_fail_pending(s, perm ? DELIVERY_BOUNCE : DELIVERY_DEFER, perm ? "5.4.4" : "4.4.3",
                             res->reason, 0);
        session_close(s);
    } else if (session_mx_loop(s) || session_open_queue_file(s) < 0) {
        session_close(s);
    } else {
        s->last_status = DELIVERY_DEFER;
        snprintf(s->last_dsn, sizeof(s->last_dsn), "4.4.1");
        buf_set(&s->last_reason, "no address to connect to");
        session_try_next(s);
    }
    session_leave(s);
}

/* session_unix_result - the one "address" of a UNIX-socket next hop, shaped
 * like a DNS answer (allocated as lib/dns does, for dns_result_free) */
static struct dns_result *session_unix_result(const char *path)
{
    struct dns_result *res = xcalloc(1, sizeof(*res));
    struct sockaddr_un *sun;
    size_t len;

    res->status = DNS_OK;
    res->reason = xstrdup("");
    res->hosts = xcalloc(1, sizeof(*res->hosts));
    res->count = 1;
    res->hosts[0].hostname = xstrdup(path);
    sun = (struct sockaddr_un *)&res->hosts[0].addr;
    sun->sun_family = AF_UNIX;
    len = strlen(path); /* nexthop.c bounds it; truncating here only guards that */
    if (len >= sizeof(sun->sun_path))
        len = sizeof(sun->sun_path) - 1;
    memcpy(sun->sun_path, path, len);
    res->hosts[0].addrlen = (socklen_t)sizeof(*sun);
    return res;
}

/* session_resolve - look up the addresses of the next hop (a UNIX socket
 * needs no lookup: it is "resolved" at once; the caller is on the loop) */
static void session_resolve(struct smtp_session *s)
{
    s->state = S_RESOLVE;
    dns_result_free(s->hosts);
    s->hosts = NULL;
    s->host_next = 0;
    if (s->hop.kind == SMTP_NEXTHOP_UNIX) {
        session_resolved(session_unix_result(s->hop.host), s);
        return;
    }
    dns_resolve_nexthop(s->env->dns, s->hop.host, s->hop.use_mx, s->hop.port, session_resolved, s);
}

/* session_take_conn - continue on the cached connection conn */
static void session_take_conn(struct smtp_session *s, const struct smtp_conn *conn)
{
    s->bev = conn->bev;
    s->fd = bufferevent_getfd(s->bev);
    bufferevent_setcb(s->bev, session_read_event, session_write_event, session_conn_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    buf_set(&s->peer, conn->peer);
    buf_set(&s->relay, conn->relay);
    s->port = conn->port;
    s->ehlo = conn->ehlo;
    s->uses = conn->uses;
    s->reused = 1;
    s->tls_active = conn->tls;
    s->authenticated = conn->authenticated;
    s->tls_verified = conn->verified;
    s->tls_policy_ok = conn->verified;
    snprintf(s->tls_note, sizeof(s->tls_note), "%s", conn->tls_note);
    smtp_reply_reset(&s->reply);
}

/* session_sts_answer - the MTA-STS policy of the domain (or none) */
static void session_sts_answer(const struct mtasts_policy *policy, const char *fetch_error,
                               void *arg)
{
    struct smtp_session *s = arg;

    session_enter(s);
    s->sts_query = NULL;
    if (policy)
        mtasts_policy_copy(&s->sts, policy);
    if (fetch_error[0]) {
        char result[64];
        size_t n = strcspn(fetch_error, ":");
        snprintf(result, sizeof(result), "%.*s", (int)(n < sizeof(result) ? n : 0), fetch_error);
        log_info("%s: MTA-STS policy of %s not available (%s); delivering as without one",
                 s->req->queue_id, s->hop.host, fetch_error);
        if (s->env->tlsrpt && result[0])
            tlsrpt_count(s->env->tlsrpt, s->hop.host, "sts", result, "");
    }
    session_resolve(s);
    session_leave(s);
}

/* session_sts_or_resolve - with MTA-STS on, a domain next hop (not
 * [bracketed], no smtp_tls_policy_maps entry) is asked for its policy
 * before the MX lookup */
static void session_sts_or_resolve(struct smtp_session *s)
{
    if (s->env->mtasts == NULL || !s->hop.use_mx || s->policy.from_map || s->req->tls_required_no ||
        s->policy.level == SMTP_TLS_NONE) {
        session_resolve(s);
        return;
    }
    s->state = S_STS;
    s->sts_query = smtp_mtasts_lookup(s->env->mtasts, s->hop.host, session_sts_answer, s);
}

/* session_reuse_or_resolve - from the loop: a cached connection to the
 * next hop, else the usual way */
static void session_reuse_or_resolve(struct smtp_session *s)
{
    struct smtp_conn conn;

    if (s->env->cache == NULL || s->req->trace || /* traced: the whole dialogue */
        smtp_cache_take(s->env->cache, buf_cstr(&s->key), &conn) < 0) {
        session_sts_or_resolve(s);
        return;
    }
    session_take_conn(s, &conn);
    if (session_open_queue_file(s) < 0) {
        session_close(s);
        return;
    }
    session_begin_delivery(s);
}

/* session_generic_dry - the generic maps' lookups of this delivery (the
 * envelope sender, the sender headers) into throwaway results, in the
 * session's scope: MAIL and the content then find the answers there.
 * ROUTE_TEMPFAIL when a lookup failed (or is not answered yet) */
static int session_generic_dry(struct smtp_session *s)
{
    buf_t out = BUF_INIT;
    size_t n;
    int fd, rc = 0;

    if (s->env->generic == NULL)
        return 0;
    if (smtp_generic_sender(s->env, s->req->sender, &out) == ROUTE_TEMPFAIL)
        rc = ROUTE_TEMPFAIL;
    if (!s->env->lmtp && (fd = safe_open_regular(s->req->path, O_RDONLY)) >= 0) {
        if (smtp_generic_headers(s->env, fd, s->req->content_offset, s->req->content_length, &out,
                                 &n) == ROUTE_TEMPFAIL)
            rc = ROUTE_TEMPFAIL;
        close(fd);
    }
    buf_free(&out);
    return rc;
}

/* session_tables_failed - a lookup of the delivery's start failed: every
 * recipient deferred, reported from the loop */
static void session_tables_failed(struct smtp_session *s, const char *dsn, const char *reason)
{
    struct timeval now = {0, 0};

    session_fail_pending(s, DELIVERY_DEFER, dsn, reason, 0);
    s->state = S_RESOLVE; /* the timer closes the session */
    evtimer_add(s->timer, &now);
}

static void session_tables_start(struct smtp_session *s);

/* session_on_tables - the tables answered: ask again (a chain of
 * lookups), else go */
static void session_on_tables(void *arg)
{
    struct smtp_session *s = arg;

    session_enter(s);
    session_tables_start(s);
    session_leave(s);
}

/* session_tables_start - the delivery starts (a cached connection, or the
 * DNS lookup, from the loop) once the answers of the tables it needs first
 * are in: smtp_tls_policy_maps (the next hop's policy) and smtp_generic_maps.
 * Run in the session's scope, again after each wait: never a blocking
 * lookup on the loop; a lookup that failed defers the delivery */
static void session_tables_start(struct smtp_session *s)
{
    struct timeval now = {0, 0};
    int generic, tls = SMTP_TLS_POLICY_OK;

    buf_reset(&s->last_reason);
    table_proxy_scope_enter(s->tables);
    generic = session_generic_dry(s);
    if (!s->env->lmtp)
        tls = smtp_tls_policy_find(s->env->tls, s->req->nexthop, s->hop.host, &s->policy,
                                   &s->last_reason);
    table_proxy_scope_leave();
    if (table_proxy_scope_pending(s->tables) &&
        table_proxy_scope_wait(s->tables, s->env->base, session_on_tables, s) == 0)
        return;
    if (tls == SMTP_TLS_POLICY_TEMPFAIL)
        session_tables_failed(s, "4.3.0", buf_cstr(&s->last_reason));
    else if (tls == SMTP_TLS_POLICY_BAD)
        session_tables_failed(s, "4.7.5", buf_cstr(&s->last_reason));
    else if (generic == ROUTE_TEMPFAIL)
        session_tables_failed(s, "4.3.0", "smtp_generic_maps lookup failed");
    else
        evtimer_add(s->timer, &now);
}

/* smtp_session_start - see smtp.h */

void smtp_session_start(const struct smtp_env *env, struct delivery_request *req,
                        const struct smtp_session_cbs *cbs)
{
    struct smtp_session *s = xcalloc(1, sizeof(*s));
    struct timeval now = {0, 0};

    s->env = env;
    s->req = req;
    s->cbs = *cbs;
    s->fd = -1;
    s->qfd = -1;
    s->state = S_RESOLVE;
    s->tables = table_proxy_scope_new();
    smtp_reply_init(&s->reply);
    buf_set(&s->relay, "none");
    s->timer = evtimer_new(env->base, session_timer_event, s);
    if (s->timer == NULL)
        log_panic("evtimer_new failed");
    if (smtp_nexthop_parse(req->nexthop, env->lmtp, env->default_port, &s->hop) < 0) {
        buf_t reason = BUF_INIT;
        buf_printf(&reason, "bad next hop \"%s\"", req->nexthop);
        session_fail_pending(s, DELIVERY_DEFER, "4.3.5", buf_cstr(&reason), 0);
        buf_free(&reason);
        evtimer_add(s->timer, &now); /* report from the loop, not from here */
        return;
    }
    s->port = s->hop.port;
    s->host_name = s->hop.host;
    buf_printf(&s->key, "%s|%s|%d", env->lmtp ? "lmtp" : "smtp", req->nexthop, s->port);
    if (req->requiretls) /* only connections that passed its checks */
        buf_puts(&s->key, "|requiretls");
    if (req->tls_required_no) /* made without DANE or MTA-STS: never for other mail */
        buf_puts(&s->key, "|tls-required-no");
    if (env->sasl && env->sasl_by_sender) /* authenticated as this sender */
        buf_printf(&s->key, "|%s", req->sender);
    s->state = S_REUSE;
    session_tables_start(s);
}
