/*
 * smtpd_milter - smtpd_milters in a session (docs/milter.md): the chain of
 * milter conversations (lib/milter.h) opened when the client's name is
 * known, and each SMTP step run through it after smtpd's own restrictions
 * accepted the command.
 *
 * A session whose listener has no milters has s->milter == NULL and every
 * function here goes on at once.  Otherwise a step stops reading the client
 * (SESSION_MILTER) until the chain answered; done is then called from the
 * event loop with ok = 1 (go on) or ok = 0 (the milter refused: the reply
 * was sent and logged as "milter-reject").  A SHUTDOWN answer (421) is sent
 * and closes the session; done is not called.  A refusal at connect or HELO
 * is remembered: every MAIL of the session gets it.
 *
 * At DATA the live conversations are handed to cleanup with the message
 * (smtpd_milter_export) and taken back from cleanup's answer
 * (smtpd_milter_cleanup_done); while cleanup has them, nothing here reads
 * or writes their sockets.
 */
#ifndef TERN_SMTPD_SMTPD_MILTER_H
#define TERN_SMTPD_SMTPD_MILTER_H

#include <stddef.h>

#include "buf.h"
#include "milter.h"

struct session;
struct attr_msg;

typedef void (*smtpd_milter_done_fn)(struct session *s, int ok);

/* smtpd_milter_connect - the client's name is known: open the chain and
 * run the connect step, holding the greeting until it is done */
void smtpd_milter_connect(struct session *s);
/* smtpd_milter_helo - HELO/EHLO accepted by smtpd */
void smtpd_milter_helo(struct session *s, smtpd_milter_done_fn done);
/* smtpd_milter_mail_args / _rcpt_args - keep the ESMTP arguments of the
 * MAIL or RCPT command being handled, as the client gave them */
void smtpd_milter_mail_args(struct session *s, const char *arg);
void smtpd_milter_rcpt_args(struct session *s, const char *arg);
/* smtpd_milter_mail - MAIL accepted by smtpd: a new transaction (the
 * remembered connect/HELO refusal answers here) */
void smtpd_milter_mail(struct session *s, smtpd_milter_done_fn done);
/* smtpd_milter_rcpt - RCPT accepted by smtpd */
void smtpd_milter_rcpt(struct session *s, smtpd_milter_done_fn done);
/* smtpd_milter_data - DATA accepted by smtpd, before 354 */
void smtpd_milter_data(struct session *s, smtpd_milter_done_fn done);
/* smtpd_milter_unknown - an unknown command line; ok = 1: smtpd's own 500 */
void smtpd_milter_unknown(struct session *s, const char *line, size_t len,
                          smtpd_milter_done_fn done);
/* smtpd_milter_abort - the transaction ends without a message (RSET, HELO,
 * a new MAIL, a refused or discarded message) */
void smtpd_milter_abort(struct session *s);
/* smtpd_milter_end - the session ends: QUIT to each milter (or just free
 * when cleanup has the sockets) */
void smtpd_milter_end(struct session *s);

/* smtpd_milter_queue_id - the queue ID made at MAIL, or NULL */
const char *smtpd_milter_queue_id(const struct session *s);
/* smtpd_milter_quarantine - the hold reason of a failed milter whose
 * default_action is quarantine, or NULL */
const char *smtpd_milter_quarantine(const struct session *s);
/* smtpd_milter_export - append each live conversation and the macro facts
 * to cleanup.submit being built; fds gets the sockets to pass (at most
 * MILTER_MAX), *timeout the seconds cleanup may need for them; returns
 * how many */
size_t smtpd_milter_export(struct session *s, buf_t *submit, int *fds, long long *timeout);
/* smtpd_milter_cleanup_done - cleanup is finished with the sockets: msg is
 * its cleanup.reply (milter_failed attributes), NULL when the stream broke
 * (every exported conversation failed); ended = cleanup.end was sent (a
 * stream dropped before it: cleanup never used them) */
void smtpd_milter_cleanup_done(struct session *s, const struct attr_msg *msg, int ended);
/* smtpd_milter_reply - send a reply of one or more lines ("\r\n" between) */
void smtpd_milter_reply(struct session *s, const char *reply);

#endif
