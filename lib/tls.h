/*
 * tls - what every TLS user of tern shares: certificate and key files,
 * protocol lists, OpenSSL's error texts, certificate fingerprints, and the
 * session ticket key ratchet of tern-master and tern-smtpd (docs/tls.md).
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
/* tls_protocol_range - the same spec as the lowest and highest version
 * (OpenSSL's TLS1_2_VERSION ...) for SSL_set_min/max_proto_version; -1 with why */
int tls_protocol_range(const char *spec, int *min, int *max, buf_t *why);
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
/* tls_describe - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
 * of an established connection, appended to out */
void tls_describe(SSL *ssl, buf_t *out);
/* tls_fingerprint - "AB:CD:..." SHA-256 of the DER certificate; 0 ok */
int tls_fingerprint(X509 *cert, buf_t *out);

/*
 * Session ticket keys come from a one-way chain of states, one per period of
 * smtpd_tls_session_cache_timeout: state(p+1) = SHA-256("tern ratchet" ||
 * state(p)).  tern-master starts the chain with random bytes and hands each
 * smtpd worker the state of the period before the current one
 * (TERN_TLS_TICKET_SECRET, "PERIOD:HEX"); a worker keeps only its current
 * state and the keys of the current and the previous period.  Whoever learns
 * a state can compute the keys of that period and later ones, never earlier
 * ones (forward secrecy for the tickets of past periods).
 */
#define TLS_RATCHET_LEN 32
/* the shortest ticket period (seconds); shorter settings are raised to it */
#define TLS_TICKET_MIN_PERIOD 60
/* "PERIOD:HEX" with room to spare */
#define TLS_RATCHET_TEXT_SIZE (24 + 2 * TLS_RATCHET_LEN)

/* one link of the chain: the state of a period */
struct tls_ratchet {
    long long period;
    unsigned char state[TLS_RATCHET_LEN];
};

/* one period's ticket key name, AES-256 key and HMAC-SHA256 key */
struct tls_ticket_keys {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char mac[32];
};

/* what a worker keeps: its current state and the keys of its period and the
 * one before (have_prev 0 when the chain starts at chain.period) */
struct tls_ticket_ring {
    struct tls_ratchet chain;
    struct tls_ticket_keys cur, prev;
    int have_prev;
};

/* tls_ratchet_step - state(p) to state(p+1), in place */
void tls_ratchet_step(unsigned char state[TLS_RATCHET_LEN]);
/* tls_ratchet_advance - step r forward to period (nothing if not later);
 * the older states are overwritten */
void tls_ratchet_advance(struct tls_ratchet *r, long long period);
/* tls_ratchet_format - "PERIOD:HEX" into out; -1 when it does not fit */
int tls_ratchet_format(const struct tls_ratchet *r, char *out, size_t size);
/* tls_ratchet_parse - "PERIOD:HEX" into r; -1 (r cleared) when malformed */
int tls_ratchet_parse(const char *text, struct tls_ratchet *r);
/* tls_ticket_keys_derive - a period's ticket keys from its state:
 * HMAC-SHA256(state, "tern ticket name|aes|mac"), the name cut to 16 bytes */
void tls_ticket_keys_derive(const unsigned char state[TLS_RATCHET_LEN], struct tls_ticket_keys *k);
/* tls_ticket_ring_init - a ring at from's period (keys of that period only) */
void tls_ticket_ring_init(struct tls_ticket_ring *ring, const struct tls_ratchet *from);
/* tls_ticket_ring_advance - move the ring forward to period (several steps
 * if need be): the keys of period - 1 become the previous ones, everything
 * older is wiped.  Nothing happens when period is not later. */
void tls_ticket_ring_advance(struct tls_ticket_ring *ring, long long period);
/* tls_ticket_ring_find - the keys named name: 1 for the current period's, 2
 * for the previous one's (*keys set), 0 when neither */
int tls_ticket_ring_find(const struct tls_ticket_ring *ring, const unsigned char name[16],
                         const struct tls_ticket_keys **keys);
/* tls_ticket_ring_clear - wipe the ring */
void tls_ticket_ring_clear(struct tls_ticket_ring *ring);

#endif
