/*
 * message - the DATA phase of a session: hand the envelope to cleanup, stream
 * the decoded content to it as it arrives, and give the client cleanup's
 * verdict.  "250 ... queued as ID" is sent only after cleanup answered ok,
 * i.e. after the queue file is durable (DESIGN §4).
 *
 * Size: the stored (decoded) bytes are counted against message_size_limit;
 * past it the cleanup stream is dropped (nothing is queued), the rest of the
 * data is read and thrown away, and the client gets 552 at the end.
 * Bare LF / bare CR: see proto.h and docs/smtpd.md.
 */
#include <string.h>

#include <event2/bufferevent.h>

#include "attr.h"
#include "cleanup_stream.h"
#include "log.h"
#include "session.h"
#include "stats.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"
#include "xclient.h"

/* above this much unwritten output to cleanup, stop reading the client */
#define MESSAGE_HIGH_WATER (256 * 1024)

/* message_auth_mailbox - the AUTH= mailbox the message carries on (RFC 4954
 * section 5): from an authenticated client the AUTH= it gave, else its
 * sender; from anyone else (and for a value that is no mailbox) "<>" */
static const char *message_auth_mailbox(const struct session *s)
{
    const struct proto_mail *m = &s->mail;
    const char *given = buf_cstr(&m->auth);

    if (s->sasl_username == NULL)
        return "<>";
    if (m->auth.len == 0)
        return m->addr.len > 0 ? buf_cstr(&m->addr) : "<>";
    if (strpbrk(given, "<>") != NULL) /* "<>" itself, or not an address */
        return "<>";
    return given;
}

/* message_build_submit - the cleanup.submit request; with milters their
 * conversations (sockets in fds, *nfds of them) and the macro facts, and
 * in *milter_timeout the seconds cleanup may spend on them */
static void message_build_submit(struct session *s, buf_t *out, int *fds, size_t *nfds,
                                 long long *milter_timeout)
{
    const struct proto_mail *m = &s->mail;
    const char *queue_id = smtpd_milter_queue_id(s);
    const char *quarantine = smtpd_milter_quarantine(s);

    attr_begin(out, "cleanup.submit");
    attr_add_str(out, "sender", buf_cstr(&m->addr));
    smtpd_xforward_submit(s, out); /* the client, or what XFORWARD said */
    attr_add_str(out, "listener", s->cfg->listener);
    if (s->tls_active && s->cfg->tls_received_header)
        attr_add_str(out, "tls", buf_cstr(&s->tls_info));
    if (s->sasl_username != NULL) {
        attr_add_str(out, "sasl_method", s->sasl_method);
        attr_add_str(out, "sasl_username", s->sasl_username);
        if (s->cfg->sasl_header)
            attr_add_str(out, "sasl_header", "yes");
        if (m->auth.len > 0) /* AUTH= counts only from an authenticated client */
            attr_add_str(out, "auth", buf_cstr(&m->auth));
    }
    attr_add_str(out, "auth_mailbox", message_auth_mailbox(s));
    if (m->requiretls)
        attr_add_str(out, "requiretls", "yes");
    if (m->smtputf8)
        attr_add_str(out, "smtputf8", "yes");
    if (m->envid.len > 0)
        attr_add_str(out, "envid", buf_cstr(&m->envid));
    if (m->ret[0] != '\0')
        attr_add_str(out, "ret", m->ret);
    if (m->size >= 0)
        attr_add_int(out, "size", m->size);
    if (m->body[0] != '\0')
        attr_add_str(out, "body", m->body);
    if (queue_id != NULL)
        attr_add_str(out, "queue_id", queue_id);
    if (s->tx_hold)
        attr_add_str(out, "hold", buf_cstr(&s->tx_hold_reason));
    else if (quarantine != NULL) /* a failed milter's default_action */
        attr_add_str(out, "hold", quarantine);
    if (s->tx_prepend.len > 0)
        attr_add_str(out, "prepend", buf_cstr(&s->tx_prepend));
    if (s->tx_redirect.len > 0) { /* REDIRECT: the one recipient */
        attr_add_str(out, "rcpt", buf_cstr(&s->tx_redirect));
        attr_add_str(out, "orig_rcpt", buf_cstr(&s->tx_redirect));
        attr_add_str(out, "notify", "");
        attr_add_str(out, "orcpt", "");
    } else {
        buf_append(out, s->rcpts.data, s->rcpts.len);
    }
    *nfds = smtpd_milter_export(s, out, fds, milter_timeout);
    attr_end(out);
}

/* message_drop_cleanup - close the cleanup stream (the message is not
 * queued); the milters come back unless the session ends (then
 * smtpd_milter_end lets them go without a word) */
static void message_drop_cleanup(struct session *s)
{
    if (s->state != SESSION_CLOSING)
        smtpd_milter_cleanup_done(s, NULL, cleanup_stream_ended(s->cleanup));
    cleanup_stream_close(s->cleanup);
    s->cleanup = NULL;
    if (s->flow_paused) {
        s->flow_paused = 0;
        session_enable_input(s);
    }
}

/* message_on_reply - cleanup's verdict (or the stream broke): the milters
 * come back first; shutdown=yes (a milter's 421) ends the session */
static void message_on_reply(void *ctx, const char *reply, const char *queue_id,
                             const struct attr_msg *msg)
{
    struct session *s = ctx;
    buf_t text = BUF_INIT;
    const char *shutdown = msg != NULL ? attr_get(msg, "shutdown", NULL) : NULL;

    (void)queue_id;
    smtpd_milter_cleanup_done(s, msg, cleanup_stream_ended(s->cleanup));

    if (s->state == SESSION_DATA || s->bdat.open) {
        /* an answer before the end (of DATA, or between BDAT chunks): remember it, discard the rest
         * of the data */
        int was_paused = s->flow_paused;

        buf_set(&s->data_reply, reply);
        message_drop_cleanup(s);
        if (was_paused)
            session_resume_input(s);
        return;
    }
    buf_set(&text, reply);
    if (s->state == SESSION_POLICY) /* an end-of-data stage is overtaken */
        smtpd_policy_cancel(s);
    s->state = SESSION_CMD;
    session_reset_transaction(s);
    smtpd_milter_reply(s, buf_cstr(&text));
    buf_free(&text);
    if (shutdown != NULL && strcmp(shutdown, "yes") == 0) {
        session_close_after_flush(s);
        return;
    }
    session_resume_input(s);
}

/* message_on_drained - cleanup caught up (this comes once): no more
 * pause.  A BDAT chunk that ended while paused leaves the session in
 * SESSION_CMD between chunks, still paused: it reads again here too; in a
 * wait (a pipelined VRFY on a remote table, a restriction) whoever ends the
 * wait reads again, and the next chunk must not find the pause still set */
static void message_on_drained(void *ctx)
{
    struct session *s = ctx;

    if (!s->flow_paused)
        return;
    s->flow_paused = 0;
    if (s->state == SESSION_DATA || s->state == SESSION_CMD)
        session_resume_input(s);
}

/* message_open - open cleanup and send the envelope, ready for content
 * (DATA after its 354, BDAT's first chunk); -1 when cleanup is unreachable */
int message_open(struct session *s)
{
    struct cleanup_stream_callbacks cb = {message_on_reply, message_on_drained, s};
    buf_t submit = BUF_INIT;
    int fds[MILTER_MAX];
    size_t nfds = 0;
    long long milter_timeout = 0;

    smtpd_policy_merge(s);
    if (!s->tx_discard) {
        message_build_submit(s, &submit, fds, &nfds, &milter_timeout);
        s->cleanup = cleanup_stream_open(bufferevent_get_base(s->bev), &submit, fds, nfds, &cb,
                                         s->cfg->data_timeout + milter_timeout);
        buf_free(&submit);
        if (s->cleanup == NULL) {
            smtpd_milter_cleanup_done(s, NULL, 0);
            return -1;
        }
    }
    proto_data_init(&s->decoder);
    buf_reset(&s->content);
    buf_reset(&s->data_reply);
    if (s->tx_discard) /* DISCARD: read the content, queue nothing */
        buf_set(&s->data_reply, "250 2.0.0 Ok: discarded");
    s->data_size = 0;
    s->data_too_big = 0;
    s->data_bare_rejected = 0;
    s->flow_paused = 0;
    return 0;
}

/* message_start - DATA: open cleanup, send the envelope, 354 */
void message_start(struct session *s)
{
    if (message_open(s) < 0) {
        session_reply(s, "%s", CLEANUP_STREAM_FAILURE);
        return;
    }
    s->state = SESSION_DATA;
    session_set_read_timeout(s, s->cfg->data_timeout);
    session_reply(s, "354 Enter mail, end with \".\" on a line by itself");
}

/* message_flush - hand decoded content to cleanup: everything when all is
 * set (end of data), else only whole 64 KiB pieces; pause when cleanup lags */
void message_flush(struct session *s, int all)
{
    size_t n = s->content.len;

    if (s->cleanup == NULL) {
        buf_reset(&s->content);
        return;
    }
    if (!all)
        n -= n % CLEANUP_STREAM_CHUNK;
    if (n > 0) {
        cleanup_stream_data(s->cleanup, s->content.data, n);
        buf_consume(&s->content, n);
    }
    if (s->state == SESSION_DATA && !s->flow_paused &&
        cleanup_stream_pending(s->cleanup) > MESSAGE_HIGH_WATER) {
        s->flow_paused = 1;
        session_pause_input(s);
    }
}

/* message_check_limits - size limit and bare newline policy */
static void message_check_limits(struct session *s)
{
    long long limit = s->cfg->size_limit;

    if (limit > 0 && s->data_size > limit && !s->data_too_big) {
        s->data_too_big = 1;
        message_drop_cleanup(s);
    }
    if (s->cfg->forbid_bare_newline && s->decoder.bare_seen && !s->data_bare_rejected) {
        s->data_bare_rejected = 1;
        message_drop_cleanup(s);
    }
}

/* message_final_reply - what the client gets when cleanup is not asked */
static int message_final_reply(struct session *s, buf_t *reply)
{
    if (s->data_too_big) {
        buf_printf(reply, "552 5.2.3 Message exceeds maximum fixed size (%lld)",
                   s->cfg->size_limit);
        session_log_reject(s, "END-OF-MESSAGE", buf_cstr(reply), NULL);
    } else if (s->data_bare_rejected) {
        buf_set(reply, "550 5.5.2 Error: bare <LF> received");
        session_log_reject(s, "END-OF-MESSAGE", buf_cstr(reply), NULL);
    } else if (s->data_reply.len > 0) {
        buf_set(reply, buf_cstr(&s->data_reply));
        stats_add(STATS_DISCARDED, "smtp", s->tx_discard ? 1 : 0);
        if (s->tx_discard)
            log_info("discard: END-OF-MESSAGE from %s: message discarded by policy; from=<%s> "
                     "proto=%s helo=<%s>",
                     s->client, buf_cstr(&s->mail.addr), session_protocol(s), buf_cstr(&s->helo));
    } else if (s->cleanup == NULL) {
        buf_set(reply, CLEANUP_STREAM_FAILURE);
    } else {
        return 0;
    }
    return 1;
}

/* message_eod_verdict - smtpd_end_of_data_restrictions, then cleanup
 * commits (or the message is dropped) */
static void message_eod_verdict(struct session *s, struct policy_result *r)
{
    if (s->cleanup == NULL || s->state != SESSION_WAIT_CLEANUP)
        return; /* cleanup already answered */
    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        message_drop_cleanup(s);
        smtpd_policy_log_reject(s, "END-OF-MESSAGE", r, NULL);
        s->state = SESSION_CMD;
        session_enable_input(s);
        session_reset_transaction(s);
        session_reply(s, "%s", buf_cstr(&r->reply));
        return;
    }
    smtpd_policy_keep(s, r, "END-OF-MESSAGE", NULL);
    if (r->prepend.len > 0 || r->redirect.len > 0)
        log_warn("%s: PREPEND and REDIRECT cannot act after the message content "
                 "(smtpd_end_of_data_restrictions): ignored",
                 s->client);
    if (r->discard) { /* DISCARD after the content: nothing is queued */
        message_drop_cleanup(s);
        stats_add(STATS_DISCARDED, "smtp", 1);
        log_info("discard: END-OF-MESSAGE from %s: message discarded by policy; from=<%s> "
                 "proto=%s helo=<%s>",
                 s->client, buf_cstr(&s->mail.addr), session_protocol(s), buf_cstr(&s->helo));
        s->state = SESSION_CMD;
        session_enable_input(s);
        session_reset_transaction(s);
        session_reply(s, "250 2.0.0 Ok: discarded");
        return;
    }
    cleanup_stream_end(s->cleanup, r->hold ? buf_cstr(&r->hold_reason) : NULL);
}

/* message_end - "." seen (or BDAT LAST): ask cleanup, or answer now */
void message_end(struct session *s)
{
    buf_t reply = BUF_INIT;

    message_flush(s, 1);
    s->flow_paused = 0;
    s->stage = "END-OF-MESSAGE";
    session_set_read_timeout(s, s->cfg->timeout);
    if (message_final_reply(s, &reply)) {
        s->state = SESSION_CMD;
        session_enable_input(s);
        session_reset_transaction(s);
        session_reply(s, "%s", buf_cstr(&reply));
        buf_free(&reply);
        return;
    }
    s->state = SESSION_WAIT_CLEANUP;
    session_pause_input(s);
    smtpd_policy_run(s, POLICY_EOD, message_eod_verdict);
}

/* message_content_added - added bytes of content were appended to
 * s->content: count them, apply the limits, hand full pieces to cleanup */
void message_content_added(struct session *s, size_t added)
{
    s->data_size += (long long)added;
    message_check_limits(s);
    if (s->cleanup == NULL)
        buf_reset(&s->content);
    else if (s->content.len >= CLEANUP_STREAM_CHUNK)
        message_flush(s, 0);
}

/* message_input - decode content (BDAT: a chunk's octets, bdat.c); returns
 * the bytes consumed */
size_t message_input(struct session *s, const char *data, size_t len)
{
    size_t before = s->content.len;
    int done = 0;
    size_t used;

    if (s->bdat.reading)
        return smtpd_bdat_input(s, data, len);
    used = proto_data_decode(&s->decoder, data, len, &s->content, &done);
    message_content_added(s, s->content.len - before);
    if (done)
        message_end(s);
    return used;
}

/* message_discard - forget the DATA state and drop cleanup */
void message_discard(struct session *s)
{
    if (s->cleanup != NULL)
        message_drop_cleanup(s);
    s->flow_paused = 0;
    buf_reset(&s->content);
    buf_reset(&s->data_reply);
    s->data_size = 0;
    s->data_too_big = 0;
    s->data_bare_rejected = 0;
}
