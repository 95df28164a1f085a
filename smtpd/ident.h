/*
 * ident - RFC 1413 lookups of the client, off by default (ident.c).
 */
#ifndef TERN_SMTPD_IDENT_H
#define TERN_SMTPD_IDENT_H

struct session;

/* smtpd_ident_start - ask the client's identd, holding the greeting at
 * most timeout seconds; s->ident_user is set when it answers */
void smtpd_ident_start(struct session *s, long long timeout);
/* smtpd_ident_end - drop a lookup in progress and the answer */
void smtpd_ident_end(struct session *s);

#endif
