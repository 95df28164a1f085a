/*
 * bdat - CHUNKING (RFC 3030) in a session: BDAT commands and the octets of
 * their chunks.  The decisions are in bdat_state.c (pure); this file runs
 * them: the first chunk of a transaction goes through
 * smtpd_data_restrictions and the milters' DATA step as DATA does and
 * opens the cleanup stream (message.c) without a 354; the octets of every
 * chunk are read in SESSION_DATA (session.c hands them to message_input,
 * which hands them here), under smtpd_data_timeout and cleanup's flow
 * control, and streamed into the same content buffer as DATA's.  A chunk
 * gets "250 2.0.0 N octets received"; the LAST chunk ends the message like
 * the end of DATA (message_end: end-of-data restrictions, then 250 only
 * once cleanup has made the file durable).
 */
#include <string.h>

#include "cleanup_stream.h"
#include "log.h"
#include "session.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"

/* smtpd_bdat_chunk_done - the chunk's octets are all read: answer it */
static void smtpd_bdat_chunk_done(struct session *s)
{
    struct bdat_state *b = &s->bdat;
    size_t before = s->content.len;
    buf_t reply = BUF_INIT;

    bdat_state_chunk_end(b, b->skipping ? NULL : &s->content);
    s->state = SESSION_CMD;
    session_set_read_timeout(s, s->cfg->timeout);
    if (b->skipping) {
        b->skipping = 0;
        if (b->reply.len > 0) /* none when a milter's refusal was sent already */
            session_reply(s, "%s", buf_cstr(&b->reply));
        return;
    }
    s->decoder.bare_seen = b->bare_seen; /* a CR that ended the LAST chunk */
    message_content_added(s, s->content.len - before);
    if (b->last || s->data_too_big || s->data_bare_rejected ||
        (s->cleanup == NULL && !s->tx_discard)) {
        int failed = !b->last;

        b->open = 0;
        message_end(s); /* the final reply, now or once cleanup answers */
        b->failed = failed;
        return;
    }
    bdat_state_ok_reply(b, &reply);
    session_reply(s, "%s", buf_cstr(&reply));
    buf_free(&reply);
}

/* smtpd_bdat_read - read the chunk's octets (maybe none) */
static void smtpd_bdat_read(struct session *s)
{
    s->state = SESSION_DATA;
    s->stage = "BDAT";
    session_set_read_timeout(s, s->cfg->data_timeout);
    if (s->bdat.left == 0)
        smtpd_bdat_chunk_done(s);
}

/* smtpd_bdat_fail - the transaction ends here; the chunk is still read and
 * dropped, then reply is sent ("" when it was sent already) */
static void smtpd_bdat_fail(struct session *s, const char *reply)
{
    session_reset_transaction(s);
    bdat_state_fail(&s->bdat, reply);
    smtpd_bdat_read(s);
}

/* smtpd_bdat_milter - the milters' word on the first chunk (DATA step) */
static void smtpd_bdat_milter(struct session *s, int ok)
{
    if (!ok)
        smtpd_bdat_fail(s, ""); /* their refusal is the reply */
    else if (message_open(s) < 0)
        smtpd_bdat_fail(s, CLEANUP_STREAM_FAILURE);
    else
        smtpd_bdat_read(s);
}

/* smtpd_bdat_verdict - smtpd_data_restrictions for the first chunk */
static void smtpd_bdat_verdict(struct session *s, struct policy_result *r)
{
    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        smtpd_policy_log_reject(s, "BDAT", r, NULL);
        smtpd_bdat_fail(s, buf_cstr(&r->reply));
        return;
    }
    smtpd_policy_keep(s, r, "BDAT", NULL);
    smtpd_milter_data(s, smtpd_bdat_milter);
}

/* smtpd_bdat_close - the chunk cannot be read (or skipped): reply, close */
static void smtpd_bdat_close(struct session *s, const char *reply)
{
    log_info("BDAT from %s: %s; closing the connection", s->client, reply);
    session_reply(s, "%s", reply);
    session_close_after_flush(s);
}

/* smtpd_bdat_refuse - a BDAT line refused before smtpd_bdat_command: its
 * chunk is dropped, then refusal; close when the chunk's end is unknown */
void smtpd_bdat_refuse(struct session *s, const char *arg, const char *refusal)
{
    buf_t reply = BUF_INIT;

    if (bdat_state_refuse(&s->bdat, arg, refusal, s->cfg->size_limit, &reply) == BDAT_CLOSE)
        smtpd_bdat_close(s, buf_cstr(&reply));
    else
        smtpd_bdat_read(s); /* refusal follows the chunk, as the handler's own */
    buf_free(&reply);
}

/* smtpd_bdat_unreadable - a BDAT line with a NUL or over smtpd_line_limit:
 * its size is unknown, so 421 and close */
void smtpd_bdat_unreadable(struct session *s)
{
    buf_t reply = BUF_INIT;

    buf_printf(&reply, "421 4.5.2 %s Error: unreadable BDAT command", s->cfg->myhostname);
    smtpd_bdat_close(s, buf_cstr(&reply));
    buf_free(&reply);
}

void smtpd_bdat_command(struct session *s, const char *arg)
{
    struct bdat_txn t = {s->have_mail, s->rcpt_count, s->cfg->size_limit,
                         strcmp(s->mail.body, "BINARYMIME") == 0};
    buf_t reply = BUF_INIT;
    int failed = s->bdat.failed;

    if (!s->esmtp) { /* RFC 3030 section 2: CHUNKING is an EHLO extension */
        smtpd_bdat_refuse(s, arg, "503 5.5.1 Error: BDAT needs EHLO");
        return;
    }
    switch (bdat_state_command(&s->bdat, arg, &t, &reply)) {
    case BDAT_CLOSE:
        smtpd_bdat_close(s, buf_cstr(&reply));
        break;
    case BDAT_SKIP:
        if (s->bdat.failed && !failed) { /* this chunk fails the transaction */
            session_log_reject(s, "BDAT", buf_cstr(&reply), NULL);
            session_reset_transaction(s);
            s->bdat.failed = 1;
        }
        smtpd_bdat_read(s);
        break;
    case BDAT_FIRST:
        s->stage = "BDAT";
        smtpd_policy_run(s, POLICY_DATA, smtpd_bdat_verdict);
        break;
    case BDAT_APPEND:
        smtpd_bdat_read(s);
        break;
    }
    buf_free(&reply);
}

size_t smtpd_bdat_input(struct session *s, const char *data, size_t len)
{
    struct bdat_state *b = &s->bdat;
    size_t before = s->content.len;
    size_t used = bdat_state_octets(b, data, len, &s->content);

    if (!b->skipping) {
        s->decoder.bare_seen = b->bare_seen;
        message_content_added(s, s->content.len - before);
    }
    if (b->left == 0)
        smtpd_bdat_chunk_done(s);
    return used;
}

const char *smtpd_bdat_data_refusal(const struct session *s)
{
    if (s->bdat.open)
        return "503 5.5.1 Error: DATA in the middle of a BDAT transaction";
    if (strcmp(s->mail.body, "BINARYMIME") == 0)
        return "503 5.5.1 Error: BODY=BINARYMIME needs BDAT, not DATA";
    return NULL;
}
