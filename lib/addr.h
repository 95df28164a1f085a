/*
 * addr - mail addresses as they appear in SMTP (RFC 5321) paths.
 *
 * addr_parse_path parses the argument of MAIL FROM: / RCPT TO: after the
 * colon: optional white space, then "<path>" or (leniently, like sendmail) a
 * bare address, then optional ESMTP parameters.  Source routes
 * (<@a,@b:user@dom>) are accepted and dropped.  Quoted local parts are kept
 * quoted as given ("a b"@dom).  The null path <> gives an empty address.
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stddef.h>
#include "buf.h"

#define ADDR_MAX_LENGTH 512

/* addr_parse_path - 0 ok: addr holds the address (may be empty), *params
 * points into arg at the ESMTP parameters (may be ""); -1 bad syntax, *err set
 * to a static description */
int addr_parse_path(const char *arg, buf_t *addr, const char **params, const char **err);
/* addr_domain - pointer to the domain part after the last '@' outside
 * quotes, or NULL when there is none */
const char *addr_domain(const char *addr);
/* addr_local_part - copy the local part into out */
void addr_local_part(const char *addr, buf_t *out);
/* addr_is_qualified - 1 when addr has a non-empty domain part */
int addr_is_qualified(const char *addr);
/* addr_qualify - append "@domain" to an unqualified, non-empty address */
void addr_qualify(buf_t *addr, const char *domain);
/* addr_base_length - the length of the user part of a local part of n
 * bytes: up to the first character of delimiters (recipient_delimiter) that
 * is not the first byte; n when there is no extension ("" = none) */
size_t addr_base_length(const char *local, size_t n, const char *delimiters);
/* addr_domain_match - 1 when domain equals one of list (case-insensitive) */
int addr_domain_in_list(const char *domain, char *const *list);
/* xtext_decode - RFC 3461 xtext to bytes; -1 when malformed */
int xtext_decode(const char *in, buf_t *out);
/* xtext_encode - bytes to RFC 3461 xtext */
void xtext_encode(const char *in, buf_t *out);

#endif
