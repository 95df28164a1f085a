/*
 * auth - SMTP AUTH (RFC 4954) in tern-smtpd through Cyrus SASL (docs/auth.md).
 *
 * The SASL exchanges themselves run in tern-auth, outside smtpd's event loop
 * (a password check through saslauthd or PAM may block); this file speaks
 * to it asynchronously and owns the AUTH command, its replies and the
 * session's authenticated identity (s->sasl_username, s->sasl_method).
 */
#ifndef TERN_SMTPD_AUTH_H
#define TERN_SMTPD_AUTH_H

#include "buf.h"

struct config;
struct session;
struct smtpd_config;

/* smtpd_auth_init - as root, before the privilege drop: cfg->auth for a
 * listener with smtpd_sasl_auth_enable = yes (NULL otherwise) */
void smtpd_auth_init(struct smtpd_config *cfg, const struct config *conf);
/* smtpd_auth_setup_end - every listener is set up: let go of Cyrus SASL
 * (smtpd never runs an exchange itself) */
void smtpd_auth_setup_end(void);
/* smtpd_auth_free - release cfg->auth */
void smtpd_auth_free(struct smtpd_config *cfg);
/* smtpd_auth_ehlo - the EHLO keyword for this session now ("AUTH PLAIN
 * LOGIN"); 0 when AUTH is not offered */
int smtpd_auth_ehlo(const struct session *s, buf_t *out);
/* smtpd_auth_command - the AUTH command */
void smtpd_auth_command(struct session *s, const char *arg);
/* smtpd_auth_input - a line from the client while an exchange waits for
 * its response (s->state == SESSION_AUTH) */
void smtpd_auth_input(struct session *s, const char *line, size_t len);
/* smtpd_auth_line_too_long - a response line over smtpd_line_limit (was
 * discarded): end the exchange with 500 5.5.6 */
void smtpd_auth_line_too_long(struct session *s);
/* smtpd_auth_session_end - the session ends: drop an exchange in progress */
void smtpd_auth_session_end(struct session *s);
/* smtpd_auth_sender_check - MAIL FROM:<sender> against smtpd_sender_login_maps
 * (reject_sender_login_mismatch); 0 ok, -1 with the whole reply line, 1
 * when the maps' remote answer is not in yet (the command runs again,
 * smtpd_tables.h) */
int smtpd_auth_sender_check(struct session *s, const char *sender, buf_t *reply);

#endif
