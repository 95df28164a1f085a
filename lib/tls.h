/*
 * tls - what every TLS user of tern shares: certificate and key files,
 * protocol lists, OpenSSL's error texts, certificate fingerprints
 * (docs/tls.md).
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <openssl/ssl.h>

#include "buf.h"

/* tls_errors - append OpenSSL's queued errors as one text (and clear them) */
void tls_errors(buf_t *out);
/* tls_set_protocols - ">=TLSv1.2", "<=TLSv1.3", or Postfix's list
 * "!SSLv2, !SSLv3, !TLSv1, TLSv1.2": the context's minimum and maximum
 * version.  SSLv2 is accepted in lists and never offered.  -1 with why. */
int tls_set_protocols(SSL_CTX *ctx, const char *spec, buf_t *why);
/* tls_key_mode_check - a private key readable by group or others is refused
 * (param names the setting in the message, which says how to fix it) */
int tls_key_mode_check(const char *param, const char *path, buf_t *why);
/* tls_load_pairs - the key(s) and certificate chain(s) of cert and key into
 * ctx.  A file may hold several pairs (RSA and ECDSA): each private key is
 * followed by its certificate and chain; a certificate file without a key
 * takes the key file's.  Checks the key's mode and that it matches.  prefix
 * ("smtpd_tls") names the parameters in messages.  -1 with why. */
int tls_load_pairs(SSL_CTX *ctx, const char *prefix, const char *cert, const char *key, buf_t *why);
/* tls_set_ciphers - an OpenSSL cipher list for TLS 1.2 and older, minus
 * each pattern of the NULL-terminated exclude list (may be NULL); -1 with
 * why */
int tls_set_ciphers(SSL_CTX *ctx, const char *ciphers, char *const *exclude, buf_t *why);
/* tls_load_trust - the CAs that verify peer certificates (cafile: read
 * now, its names also sent in a CertificateRequest; capath: a c_rehash
 * directory OpenSSL reads during each verification) and the CRLs in crl,
 * checked for leaf certificates ("" = none for each); prefix ("smtpd_tls")
 * names the parameters in messages; -1 with why */
int tls_load_trust(SSL_CTX *ctx, const char *prefix, const char *cafile, const char *capath,
                   const char *crl, buf_t *why);
/* tls_fingerprint - "AB:CD:..." SHA-256 of the DER certificate; 0 ok */
int tls_fingerprint(X509 *cert, buf_t *out);

#endif
