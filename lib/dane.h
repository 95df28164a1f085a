/*
 * dane - the TLSA records of DANE for SMTP (RFC 7672, RFC 6698): parse the
 * text lib/dns gives for a DNS_QTLSA answer ("usage selector mtype hex"),
 * decide which records SMTP may use, and name the TLSA RRset of a host.
 * Pure: text in, records out, no DNS, no TLS.  The caller (tern-smtp) looks
 * up dane_tlsa_name() only when the MX and address answers were secure
 * (dns_result.mx_secure, dns_host.secure), keeps a TLSA answer only when it
 * is secure too (dns_answer.secure), and hands the usable records to
 * OpenSSL (SSL_dane_tlsa_add).  Nothing here is trusted: every text may be
 * hostile and is bounded.
 *
 * Text (as lib/dns prints it, hex in either case accepted):
 *   "3 1 1 e3b0c442...b855"
 * three decimal numbers 0-255 (1 to 3 digits) and the certificate
 * association data in hex, separated by single spaces, nothing after.
 * Malformed: a bad number, odd length or a non-hex digit, no data, data over
 * DANE_TLSA_MAX_DATA bytes, or data whose length does not fit the matching
 * type (32 bytes for SHA2-256, 64 for SHA2-512).
 *
 * Usable (RFC 7672 3.1): usage DANE-TA(2) or DANE-EE(3), selector Cert(0)
 * or SPKI(1), matching type Full(0), SHA2-256(1) or SHA2-512(2).  PKIX-TA(0)
 * and PKIX-EE(1) are not for SMTP; unknown values are unusable.  A TLSA
 * RRset with records but none usable still obliges the client to use TLS
 * (RFC 7672 2.2), so dane_tlsa_set says how many it dropped.
 *
 * Errors: 0 / -1; on -1 nothing is allocated.
 */
#ifndef TERN_DANE_H
#define TERN_DANE_H

#include <stddef.h>

#include "buf.h"

#define DANE_TLSA_MAX_DATA                                                                         \
    8192 /* bytes of certificate association data: a whole certificate fits */

enum dane_usage { DANE_USAGE_PKIX_TA, DANE_USAGE_PKIX_EE, DANE_USAGE_DANE_TA, DANE_USAGE_DANE_EE };
enum dane_selector { DANE_SELECTOR_CERT, DANE_SELECTOR_SPKI };
enum dane_mtype { DANE_MTYPE_FULL, DANE_MTYPE_SHA256, DANE_MTYPE_SHA512 };

struct dane_tlsa {
    unsigned char usage, selector, mtype;
    unsigned char *data; /* malloc'ed, len bytes */
    size_t len;
};

/* dane_tlsa_parse - one DNS_QTLSA text into r (data malloc'ed: free(r->data));
 * -1 when it is malformed, r then empty */
int dane_tlsa_parse(const char *text, struct dane_tlsa *r);

/* dane_tlsa_usable - 1 when SMTP may use r (RFC 7672 3.1), else 0 */
int dane_tlsa_usable(const struct dane_tlsa *r);

/* dane_tlsa_set - parse every text of texts (NULL-terminated, NULL for
 * none) and keep the usable ones, in order: *out (dane_tlsa_free; NULL when
 * *count is 0) and *count.  Returns how many were present but unusable or
 * malformed (for the log; > 0 with *count == 0 means "TLS, unauthenticated") */
size_t dane_tlsa_set(char *const *texts, struct dane_tlsa **out, size_t *count);

/* dane_tlsa_free - release a set from dane_tlsa_set (NULL is fine) */
void dane_tlsa_free(struct dane_tlsa *set, size_t count);

/* dane_tlsa_name - the TLSA owner name of host at port, "_25._tcp.mx.example.com"
 * (one trailing dot of host dropped), replacing the contents of out */
void dane_tlsa_name(const char *host, int port, buf_t *out);

#endif
