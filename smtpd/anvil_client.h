/*
 * anvil_client - smtpd's side of the per-client connection and rate limits
 * (smtpd_client_*_limit; docs/smtpd.md, "Connection and rate limits").
 *
 * tern-anvil counts for every worker (docs/internals.md, "anvil
 * protocol"); this file compares its counts with the listener's limits.
 * Each worker keeps one connection to private/anvil, opened on first use
 * and again after a failure, non-blocking on the worker's event loop;
 * requests are pipelined and the replies matched in order.
 *
 * The session waits for the answer: at connect the greeting is held
 * (session_greet_hold); before MAIL, RCPT and AUTH the session reads
 * nothing (SESSION_ANVIL_WAIT) and the command, kept as it came, runs (or
 * gets 450 4.7.1) when the answer is there, so pipelined commands stay in
 * order.  Clients in smtpd_client_event_limit_exceptions never ask.
 *
 * Limits fail open, as in Postfix: when tern-anvil cannot be reached or
 * does not answer within SMTPD_ANVIL_TIMEOUT seconds, the session goes on
 * as if under every limit, and a warning is logged at most once a minute.
 */
#ifndef TERN_SMTPD_ANVIL_CLIENT_H
#define TERN_SMTPD_ANVIL_CLIENT_H

#include <stddef.h>

#include "proto.h"

struct session;

/* how long a question to tern-anvil may take (seconds) */
#define SMTPD_ANVIL_TIMEOUT 2

/* smtpd_anvil_session_start - at connect: count the connection and hold
 * the greeting until the verdict (421 4.7.0, or the greeting) */
void smtpd_anvil_session_start(struct session *s);
/* smtpd_anvil_command - before command cmd (the whole line): 1 when it
 * waits for tern-anvil (it runs, or is refused, when the answer comes),
 * 0 when it runs now */
int smtpd_anvil_command(struct session *s, enum proto_cmd cmd, const char *line, size_t len);
/* smtpd_anvil_client_changed - XCLIENT made the session another client's:
 * the old client's disconnect (the ident its connect counted), then the
 * new client's connect, holding the greeting as at connect */
void smtpd_anvil_client_changed(struct session *s);
/* smtpd_anvil_session_end - the session ends: report the disconnect,
 * stop waiting */
void smtpd_anvil_session_end(struct session *s);

#endif
