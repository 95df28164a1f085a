/*
 * auth_stream - smtpd's end of one AUTH exchange with tern-auth
 * (docs/internals.md, "auth protocol"): connect to private/auth without
 * blocking, send the exchange's requests (auth.start, then auth.step) and
 * hand each auth.reply to the session.  Non-blocking, on the session's
 * event loop.
 *
 * on_reply is called once per request sent, with the decoded reply, or
 * with NULL when the connection broke, tern-auth sent something that is
 * not a message or that nobody asked for (bytes while no request is
 * outstanding, a second reply), or no reply came within timeout seconds;
 * after a NULL the
 * stream is finished and must be closed.  Closing (also from on_reply)
 * drops the connection, which ends the exchange in tern-auth.
 */
#ifndef TERN_SMTPD_AUTH_STREAM_H
#define TERN_SMTPD_AUTH_STREAM_H

#include "attr.h"
#include "buf.h"

struct event_base;
struct smtpd_auth_stream;

typedef void (*smtpd_auth_stream_fn)(void *ctx, const struct attr_msg *reply);

/* smtpd_auth_stream_open - connect; NULL (logged) when tern-auth cannot be reached */
struct smtpd_auth_stream *smtpd_auth_stream_open(struct event_base *base, long long timeout,
                                                 smtpd_auth_stream_fn on_reply, void *ctx);
/* smtpd_auth_stream_send - send one request (a complete attr message) */
void smtpd_auth_stream_send(struct smtpd_auth_stream *st, const buf_t *msg);
/* smtpd_auth_stream_close - drop the connection and free (NULL is fine) */
void smtpd_auth_stream_close(struct smtpd_auth_stream *st);

#endif
