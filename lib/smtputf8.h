/*
 * smtputf8 - the address checks of SMTPUTF8 (RFC 6531/6532): is an address
 * plain ASCII, is it well-formed UTF-8, can it travel to a next hop that
 * does not offer SMTPUTF8, and what may be written of it to a log.
 *
 * Callers: tern-smtpd (an address with UTF-8 needs SMTPUTF8 on MAIL, else
 * 553 5.6.7), tern-smtp (a next hop without SMTPUTF8 gets the A-label form
 * of the domain, or the message bounces with 5.6.7), and every log line that
 * quotes an address.
 *
 * "Valid UTF-8" here is RFC 3629 UTF-8 without overlong forms, without
 * UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, and no control
 * character (C0 including NUL, DEL, C1 U+0080..U+009F): an address never
 * needs one and a log or a queue file must never see one.  Domains go to
 * A-labels with libidn2, IDNA2008 with the UTS #46 non-transitional mapping
 * (the mapping browsers and Postfix use).
 *
 * Trust: none; every function takes bytes with a length or a C string and
 * reads nothing beyond them.  Output goes to a caller's buf_t (appended);
 * nothing else is allocated that the caller must free.  No I/O, no global
 * state: safe from any thread.
 */
#ifndef TERN_SMTPUTF8_H
#define TERN_SMTPUTF8_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* what an address (or any text) is made of */
enum smtputf8_form {
    SMTPUTF8_INVALID = -1, /* not UTF-8, or a control character */
    SMTPUTF8_ASCII = 0,    /* printable ASCII only: needs no SMTPUTF8 */
    SMTPUTF8_UTF8 = 1      /* valid UTF-8 with at least one non-ASCII character */
};

/* smtputf8_decode - the code point at the front of s[0..len) into *cp;
 * returns its length in bytes (1..4), 0 for a malformed, overlong,
 * surrogate or out-of-range sequence, or for len 0 */
size_t smtputf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
/* smtputf8_is_control - 1 for C0 (with NUL), DEL and C1 code points */
int smtputf8_is_control(uint32_t cp);
/* smtputf8_is_ascii - 1 when every byte of s[0..len) is below 0x80 */
int smtputf8_is_ascii(const char *s, size_t len);
/* smtputf8_form - what s[0..len) is: ASCII, UTF-8 or invalid (see above) */
enum smtputf8_form smtputf8_form(const char *s, size_t len);

/* smtputf8_domain_to_ascii - append the A-label form of domain to out: an
 * ASCII domain (or address literal) as it is, a UTF-8 one through
 * idn2_to_ascii_8z (IDN2_NONTRANSITIONAL).  0 ok; -1 (out unchanged) when
 * the domain is empty, invalid UTF-8 or not a valid IDNA2008 name */
int smtputf8_domain_to_ascii(const char *domain, buf_t *out);
/* smtputf8_address_to_ascii - "can this address reach a next hop without
 * SMTPUTF8": append the form that can (the local part unchanged, the domain
 * after the last '@' as A-labels) to out and return 0; -1 (out unchanged)
 * when the local part is not ASCII or the domain cannot be converted (the
 * message then bounces with 5.6.7).  "" (the null sender) and an address
 * without '@' need only be ASCII */
int smtputf8_address_to_ascii(const char *addr, buf_t *out);

/* smtputf8_log_safe - append a log-safe form of s[0..len) to out: printable
 * ASCII and printable UTF-8 as they are; '\' as "\\"; a control or
 * invisible formatting character (zero-width, bidi overrides, line and
 * paragraph separators, BOM) as "\u{XXXX}"; every byte of malformed UTF-8
 * as "\xNN".  The result is valid UTF-8 with no control character, and
 * different inputs give different outputs */
void smtputf8_log_safe(const char *s, size_t len, buf_t *out);

#endif
