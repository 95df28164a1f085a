/*
 * smtp_utf8 - SMTPUTF8 (RFC 6531) in tern-smtp: which form of the envelope
 * addresses goes to a next hop, and which recipients cannot go at all.
 *
 * A next hop that offers SMTPUTF8 gets "MAIL FROM:<...> SMTPUTF8" and the
 * addresses as they are, when the message came with SMTPUTF8 or one of its
 * addresses is UTF-8.  A next hop that does not offer it gets every address
 * with its domain as A-labels (lib/smtputf8.h: smtputf8_address_to_ascii);
 * an address with a UTF-8 local part cannot be written in ASCII: such a
 * host cannot take the message, and the next host of the next hop (a
 * less preferred MX, another address) is tried instead, as for a 4xx.
 * Only at the last host does its recipient bounce with 5.6.7 before the
 * transaction (RFC 6531 section 3.2); a UTF-8 sender makes every
 * recipient bounce.  When no later host takes the message (unreachable
 * ones too, as Postfix), the bounce names the first host without
 * SMTPUTF8, and its address is skipped after a new resolve (the
 * smtp_utf8_lacking_* list).  UTF-8 in the
 * header section alone needs no SMTPUTF8: it goes as 8-bit content.
 *
 * session.c calls these around its MAIL and RCPT commands; everything here
 * is pure (no I/O) for the unit tests.
 */
#ifndef TERN_SMTP_UTF8_H
#define TERN_SMTP_UTF8_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "delivery.h"

/* smtp_utf8_use - 1 when MAIL carries SMTPUTF8: the next hop offered it
 * (offered) and the message or one of its addresses asks for it */
int smtp_utf8_use(const struct delivery_request *req, int offered);
/* smtp_utf8_address - append the form of addr for this transaction to
 * out: as it is when use, else with an A-label domain.  0 ok; -1 (out
 * unchanged) when the address cannot be written in ASCII */
int smtp_utf8_address(const char *addr, int use, buf_t *out);
/* smtp_utf8_unsendable - how many pending recipients cannot go in this
 * transaction: without SMTPUTF8 (use 0), their address or the sender's has
 * no ASCII form.  session.c then tries the next host of the next hop, if
 * there is one, before smtp_utf8_refuse makes it final */
size_t smtp_utf8_unsendable(const struct delivery_request *req, int use);
/* smtp_utf8_reason - append "SMTPUTF8 is required, but was not offered by
 * host PEER" (Postfix's text) to out */
void smtp_utf8_reason(const char *peer, buf_t *out);
/* smtp_utf8_refuse - before MAIL to host peer, the last host of the next
 * hop: when SMTPUTF8 is not used, every pending recipient whose address (or
 * the sender's) has no ASCII form bounces with 5.6.7.  Returns how many
 * recipients are still pending */
size_t smtp_utf8_refuse(struct delivery_request *req, int use, const char *peer);
/* smtp_utf8_lacking_add - remember the address sa (with its port) in
 * list: a host found without SMTPUTF8 in this delivery (list is a buf_t of
 * " addr port " words, initially empty) */
void smtp_utf8_lacking_add(buf_t *list, const struct sockaddr *sa);
/* smtp_utf8_lacking_has - 1 when sa (address and port) is in list */
int smtp_utf8_lacking_has(const buf_t *list, const struct sockaddr *sa);

#endif
