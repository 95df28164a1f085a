/*
 * smtpd_tls - STARTTLS and SMTPS in tern-smtpd (docs/tls.md).
 *
 * Each listener has its own SSL_CTX, made as root before the privilege drop
 * (smtpd_tls_init): certificates and keys (a key readable by group or others
 * is refused), CAs and CRLs, protocol and cipher policy.  A session's
 * plaintext bufferevent is replaced by an OpenSSL one on the same socket
 * once "220 Ready to start TLS" has been flushed (or at once for SMTPS);
 * every byte the client sent after STARTTLS and before the handshake is
 * discarded.  The handshake runs on the event loop like any other I/O.
 *
 * Session tickets: the ticket keys of a period of
 * smtpd_tls_session_cache_timeout come from that period's state in a one-way
 * chain (lib/tls.h).  tern-master hands every worker the state of the
 * previous period (TERN_TLS_TICKET_SECRET, wiped from the environment once
 * read); the worker ratchets it forward as periods pass, keeping only the
 * current state and the keys of the current and previous periods.  So a
 * client resumes on any worker, the keys rotate each period with no messages
 * between processes, and a leaked state reveals no earlier period's keys.
 */
#ifndef TERN_SMTPD_SMTPD_TLS_H
#define TERN_SMTPD_SMTPD_TLS_H

#include "buf.h"
#include "policy.h"

struct config;
struct service;
struct session;
struct smtpd_config;
struct milter_facts;

/* the environment variable that carries the ratchet state ("PERIOD:HEX") */
#define SMTPD_TLS_TICKET_ENV "TERN_TLS_TICKET_SECRET"

/* smtpd_tls_global_init - the ticket keys; once per process */
void smtpd_tls_global_init(struct service *svc);
/* smtpd_tls_init - the listener's TLS context (cfg->tls), or cfg->tls NULL
 * with cfg->tls_problem set and an error logged */
void smtpd_tls_init(struct smtpd_config *cfg, const struct config *conf);
/* smtpd_tls_free - release cfg->tls */
void smtpd_tls_free(struct smtpd_config *cfg);

/* smtpd_tls_offer - 1 when EHLO should list STARTTLS for this session */
int smtpd_tls_offer(const struct session *s);
/* smtpd_tls_required - 1 when this command must wait for TLS (level encrypt) */
int smtpd_tls_required(const struct session *s);
/* smtpd_tls_starttls - the STARTTLS command */
void smtpd_tls_starttls(struct session *s, const char *arg);
/* smtpd_tls_start - replace the plaintext bufferevent by a TLS one and
 * start the handshake (after STARTTLS's 220 is flushed; at once for SMTPS) */
void smtpd_tls_start(struct session *s);
/* smtpd_tls_handshake_done - BEV_EVENT_CONNECTED: log, reset the SMTP
 * state (RFC 3207 4.2), greet an SMTPS client */
void smtpd_tls_handshake_done(struct session *s);
/* smtpd_tls_log_failure - a failed handshake: one log line with OpenSSL's reason */
void smtpd_tls_log_failure(struct session *s);
/* smtpd_tls_shutdown - a session ends in order after TLS: send close_notify */
void smtpd_tls_shutdown(struct session *s);
/* smtpd_tls_clientcert_status - a verified client certificate listed in
 * relay_clientcerts (permit_tls_clientcerts), or the lookup failed; call it
 * only in the session's scope (relay_clientcerts may be remote) */
enum policy_ccert smtpd_tls_clientcert_status(struct session *s);
/* smtpd_tls_milter_facts - the TLS macros (tls_version, cipher,
 * cipher_bits, cert_subject, cert_issuer) of a session under TLS */
void smtpd_tls_milter_facts(struct session *s, struct milter_facts *f);
/* smtpd_tls_session_free - what a session's TLS state holds */
void smtpd_tls_session_free(struct session *s);

#endif
