/*
 * etrn - ETRN (RFC 1985) in tern-smtpd (docs/smtpd.md "ETRN").
 *
 * "ETRN domain" (or "@domain": the domain and its subdomains) after
 * HELO/EHLO and outside a mail transaction, from a client that
 * smtpd_etrn_restrictions allows, asks tern-qmgr (qmgr.etrn on
 * private/qmgr, qmgr/etrn.c) to deliver the deferred mail for that domain
 * now.  The session reads nothing while it waits (SESSION_ETRN_WAIT); qmgr
 * answers at once from its index, and an answer that does not come within
 * SMTPD_ETRN_TIMEOUT seconds is a temporary failure (458).
 */
#ifndef TERN_SMTPD_ETRN_H
#define TERN_SMTPD_ETRN_H

struct session;

/* how long tern-qmgr may take to answer (seconds) */
#define SMTPD_ETRN_TIMEOUT 10

/* smtpd_etrn_offered - ETRN is answered on this listener (EHLO lists it) */
int smtpd_etrn_offered(const struct session *s);
/* smtpd_etrn_command - ETRN arg */
void smtpd_etrn_command(struct session *s, const char *arg);
/* smtpd_etrn_session_end - the session ends: drop a request in flight */
void smtpd_etrn_session_end(struct session *s);

#endif
