/*
 * smtp_tls - the TLS side of tern-smtp (docs/smtp-tls.md): the client
 * context made from smtp_tls_* before the privilege drop, the security
 * level of a next hop (smtp_tls_security_level, overridden by
 * smtp_tls_policy_maps), one SSL object per handshake with its server name,
 * reference names and DANE records, the verdict on a finished handshake,
 * and the cache of TLS sessions for resumption.
 *
 * The handshake itself runs on the event loop (session.c, bufferevent_openssl):
 * nothing here blocks.  Verification never stops a handshake: the verify
 * callback notes what failed and lets it finish, and the caller decides from
 * the level whether the connection may carry mail (smtp_tls_check).
 */
#ifndef TERN_SMTP_SMTP_TLS_H
#define TERN_SMTP_SMTP_TLS_H

#include <openssl/ssl.h>

#include "buf.h"
#include "dane.h"

struct config;
struct smtp_tls;

/* from weakest to strongest; DANE levels verify by TLSA records when there
 * are usable ones, and fall back as RFC 7672 says when there are none */
enum smtp_tls_level {
    SMTP_TLS_NONE,
    SMTP_TLS_MAY,
    SMTP_TLS_ENCRYPT,
    SMTP_TLS_DANE,
    SMTP_TLS_DANE_ONLY,
    SMTP_TLS_VERIFY,
    SMTP_TLS_SECURE,
};

#define SMTP_TLS_MATCH_MAX 512
#define SMTP_TLS_OPTION_MAX 256

/* a next hop's policy */
struct smtp_tls_policy {
    enum smtp_tls_level level;
    int from_map;                        /* smtp_tls_policy_maps said so */
    int check_names;                     /* verify the names below whatever the level (to
                                            report: MTA-STS testing mode) */
    char match[SMTP_TLS_MATCH_MAX];      /* "hostname:nexthop:.example.com", "" = the default */
    char protocols[SMTP_TLS_OPTION_MAX]; /* "" = smtp_tls_protocols */
    char ciphers[SMTP_TLS_OPTION_MAX];   /* "" = smtp_tls_ciphers */
};

/* the trust a finished handshake earned (the first word of the log line) */
enum smtp_tls_trust {
    SMTP_TLS_ANONYMOUS, /* no certificate */
    SMTP_TLS_UNTRUSTED, /* the chain did not verify */
    SMTP_TLS_TRUSTED,   /* the chain verified, no name asked for or matched */
    SMTP_TLS_VERIFIED,  /* chain and name verified, or a DANE record matched */
};

/* what one handshake needs to know (smtp_tls_ssl_new) */
struct smtp_tls_peer {
    const struct smtp_tls_policy *policy;
    const char *hostname; /* the server's name: the MX host, or the next hop's host */
    const char *nexthop;  /* the next hop's domain or host, for "nexthop" matches */
    const char *relay;    /* "host[addr]:port": the session cache key starts with it */
    /* DANE: the usable TLSA records (count 0: no DANE) */
    const struct dane_tlsa *tlsa;
    size_t tlsa_count;
};

/* smtp_tls_open - the client context from cfg; *out NULL when TLS can
 * never be used (smtp_tls_security_level = none and no policy maps).  -1
 * with err naming the parameter. */
int smtp_tls_open(const struct config *cfg, struct smtp_tls **out, buf_t *err);
void smtp_tls_close(struct smtp_tls *t);
/* smtp_tls_level_parse - "may" into *level; -1 unknown */
int smtp_tls_level_parse(const char *word, enum smtp_tls_level *level);
/* smtp_tls_level_name - "may" */
const char *smtp_tls_level_name(enum smtp_tls_level level);
enum smtp_tls_policy_status {
    SMTP_TLS_POLICY_OK = 0,
    SMTP_TLS_POLICY_BAD = -1,      /* a malformed entry: 4.7.5 */
    SMTP_TLS_POLICY_TEMPFAIL = -2, /* a table failed (or its answer is not in yet): 4.3.0 */
};
/* smtp_tls_policy_find - the policy for the next hop nexthop (as the
 * transport wrote it) whose host is host: smtp_tls_policy_maps by nexthop,
 * host, then ".parent" domains, else smtp_tls_security_level.  t may be NULL
 * (level none).  SMTP_TLS_POLICY_BAD or _TEMPFAIL with err: the mail is
 * deferred, never sent at a weaker level by accident.  No side effect but
 * p and err: run again in a lookup scope (lib/table_proxy.h). */
int smtp_tls_policy_find(struct smtp_tls *t, const char *nexthop, const char *host,
                         struct smtp_tls_policy *p, buf_t *err);
/* smtp_tls_ssl_new - an SSL object for a handshake with peer: SNI,
 * protocols and ciphers of the policy, reference names for verify/secure,
 * DANE records, a cached session to resume.  NULL with err. */
SSL *smtp_tls_ssl_new(struct smtp_tls *t, const struct smtp_tls_peer *peer, buf_t *err);
/* smtp_tls_result - after the handshake: the trust earned, and in why
 * (when not verified) OpenSSL's reason */
enum smtp_tls_trust smtp_tls_result(SSL *ssl, buf_t *why);
/* smtp_tls_expired - the certificate failed because it has expired */
int smtp_tls_expired(SSL *ssl);
/* smtp_tls_trust_name - "Verified" ... ; lower case with lower = 1 */
const char *smtp_tls_trust_name(enum smtp_tls_trust trust, int lower);
/* smtp_tls_log_handshake - the "Verified TLS connection established to
 * relay: ..." line (smtp_tls_loglevel >= 1), certificate details at 2 */
void smtp_tls_log_handshake(struct smtp_tls *t, SSL *ssl, enum smtp_tls_trust trust,
                            const char *relay);
/* smtp_tls_bev_done - the connection of bev (a TLS bufferevent, or not) ends
 * in order: mark its TLS session shut down, so that freeing it does not
 * make the cached session unresumable (libevent never calls SSL_shutdown) */
struct bufferevent;
void smtp_tls_bev_done(struct bufferevent *bev);
/* smtp_tls_ssf - the cipher's secret bits, for SASL */
unsigned smtp_tls_ssf(SSL *ssl);

#endif
