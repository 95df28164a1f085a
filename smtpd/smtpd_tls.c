/*
 * smtpd_tls - STARTTLS and SMTPS in tern-smtpd (see smtpd_tls.h and docs/tls.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "milter.h"
#include "service.h"
#include "session.h"
#include "table.h"
#include "smtpd_tls.h"
#include "stats.h"
#include "tls.h"

/* what a listener's TLS needs besides the SSL_CTX */
struct smtpd_tls {
    SSL_CTX *ctx;
    struct table_list clientcerts; /* relay_clientcerts */
};

/* the ticket keys of this worker: the ratchet's current state and the keys
 * of its period and the previous one (see tls.h) */
static struct tls_ticket_ring smtpd_tls_ring;
static long long smtpd_tls_ticket_period = 3600;
/* how many periods old tern-master's state may be (it sends the last one's) */
#define SMTPD_TLS_RATCHET_MAX_AGE 16

void smtpd_tls_global_init(struct service *svc)
{
    char *text = getenv(SMTPD_TLS_TICKET_ENV);
    struct tls_ratchet chain;
    long long now;
    int ok = 0;

    SSL_load_error_strings();
    smtpd_tls_ticket_period = config_time(svc->cfg, "smtpd_tls_session_cache_timeout");
    if (smtpd_tls_ticket_period < TLS_TICKET_MIN_PERIOD)
        smtpd_tls_ticket_period = TLS_TICKET_MIN_PERIOD;
    now = (long long)time(NULL) / smtpd_tls_ticket_period;
    if (text != NULL) {
        ok = tls_ratchet_parse(text, &chain) == 0;
        memset(text, 'x', strlen(text)); /* gone from /proc/PID/environ too */
        if (!ok)
            log_warn("%s is malformed; TLS sessions resume on this worker only",
                     SMTPD_TLS_TICKET_ENV);
        else if (chain.period > now || chain.period < now - SMTPD_TLS_RATCHET_MAX_AGE) {
            /* another period length than tern-master's (main.cf changed
             * without a reload?): the chains would not meet */
            log_warn("%s is for ticket period %lld, not near %lld; TLS sessions resume on "
                     "this worker only",
                     SMTPD_TLS_TICKET_ENV, chain.period, now);
            ok = 0;
        }
    }
    unsetenv(SMTPD_TLS_TICKET_ENV);
    if (!ok) {
        /* started without tern-master: tickets resume on this worker only */
        chain.period = now;
        if (RAND_bytes(chain.state, sizeof(chain.state)) != 1)
            log_fatal("cannot get random bytes for the TLS ticket keys");
    }
    tls_ticket_ring_init(&smtpd_tls_ring, &chain);
    OPENSSL_cleanse(&chain, sizeof(chain));
    tls_ticket_ring_advance(&smtpd_tls_ring, now);
}

/* smtpd_tls_ticket_mac - set the ticket HMAC key */
static int smtpd_tls_ticket_mac(EVP_MAC_CTX *hctx, const unsigned char mac[32])
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)mac, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* smtpd_tls_ticket_cb - encrypt a new ticket with this period's keys;
 * decrypt one of this period (1) or the last (2: issue a fresh one).  A new
 * period first ratchets the keys forward, wiping the older ones. */
static int smtpd_tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                               EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_ticket_keys *k = &smtpd_tls_ring.cur;
    int rc;

    tls_ticket_ring_advance(&smtpd_tls_ring, (long long)time(NULL) / smtpd_tls_ticket_period);
    if (enc) {
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
            smtpd_tls_ticket_mac(hctx, k->mac) != 1)
            return -1;
        memcpy(key_name, k->name, 16);
        return 1;
    }
    rc = tls_ticket_ring_find(&smtpd_tls_ring, key_name, &k);
    if (rc == 0)
        return 0; /* unknown or too old: a full handshake */
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
        smtpd_tls_ticket_mac(hctx, k->mac) != 1)
        return -1;
    return rc;
}

/* smtpd_tls_ciphers - smtpd_tls_ciphers minus smtpd_tls_exclude_ciphers */
static int smtpd_tls_ciphers(SSL_CTX *ctx, const struct config *conf, buf_t *why)
{
    buf_t reason = BUF_INIT;
    int rc = tls_set_ciphers(ctx, config_str(conf, "smtpd_tls_ciphers"),
                             config_list(conf, "smtpd_tls_exclude_ciphers", NULL), &reason);

    if (rc < 0)
        buf_printf(why, "%s: smtpd_tls_ciphers: %s", config_origin(conf, "smtpd_tls_ciphers"),
                   buf_cstr(&reason));
    buf_free(&reason);
    return rc;
}

/* smtpd_tls_verify_cb - asked (not required): record, never fail here */
static int smtpd_tls_verify_accept(int ok, X509_STORE_CTX *store)
{
    return 1;
}

/* smtpd_tls_load_cas - CAfile, CApath, CRL and the client certificate request */
static int smtpd_tls_load_cas(SSL_CTX *ctx, const struct config *conf, buf_t *why)
{
    const char *cafile = config_str(conf, "smtpd_tls_CAfile");
    const char *capath = config_str(conf, "smtpd_tls_CApath");
    const char *crl = config_str(conf, "smtpd_tls_crl_file");
    int ask = config_bool(conf, "smtpd_tls_ask_ccert");
    int req = config_bool(conf, "smtpd_tls_req_ccert");

    if (tls_load_trust(ctx, "smtpd_tls", cafile, capath, crl, why) < 0)
        return -1;
    if (req)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else if (ask)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, smtpd_tls_verify_accept);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return 0;
}

/* smtpd_tls_level - smtpd_tls_security_level */
static int smtpd_tls_level(struct smtpd_config *cfg, const struct config *conf, int have_cert)
{
    const char *level = config_str(conf, "smtpd_tls_security_level");

    if (*level == '\0')
        cfg->tls_level = have_cert ? SMTPD_TLS_MAY : SMTPD_TLS_NONE;
    else if (strcmp(level, "none") == 0)
        cfg->tls_level = SMTPD_TLS_NONE;
    else if (strcmp(level, "may") == 0)
        cfg->tls_level = SMTPD_TLS_MAY;
    else if (strcmp(level, "encrypt") == 0)
        cfg->tls_level = SMTPD_TLS_ENCRYPT;
    else
        log_fatal("%s: smtpd_tls_security_level = %s: expected none, may or encrypt",
                  config_origin(conf, "smtpd_tls_security_level"), level);
    if (config_bool(conf, "smtpd_tls_req_ccert") && cfg->tls_level == SMTPD_TLS_MAY)
        cfg->tls_level = SMTPD_TLS_ENCRYPT;
    return 0;
}

/* smtpd_tls_context - the SSL_CTX of a listener; NULL with why */
static SSL_CTX *smtpd_tls_context(struct smtpd_config *cfg, const struct config *conf, buf_t *why)
{
    const char *cert = config_str(conf, "smtpd_tls_cert_file");
    const char *key = config_str(conf, "smtpd_tls_key_file");
    long long seclevel = config_int(conf, "tls_openssl_security_level");
    const char *protocols_param = cfg->tls_level == SMTPD_TLS_ENCRYPT || cfg->tls_wrapper
                                      ? "smtpd_tls_mandatory_protocols"
                                      : "smtpd_tls_protocols";
    const char *protocols = config_str(conf, protocols_param);
    buf_t pwhy = BUF_INIT;
    char sid[64];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        tls_errors(why);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (seclevel >= 0)
        SSL_CTX_set_security_level(ctx, (int)seclevel);
    if (tls_set_protocols(ctx, protocols, &pwhy) < 0) {
        buf_printf(why, "%s: %s: %s", config_origin(conf, protocols_param), protocols_param,
                   buf_cstr(&pwhy));
        buf_free(&pwhy);
        SSL_CTX_free(ctx);
        return NULL;
    }
    buf_free(&pwhy);
    if (smtpd_tls_ciphers(ctx, conf, why) < 0 ||
        tls_load_pairs(ctx, "smtpd_tls", cert, key, why) < 0 ||
        smtpd_tls_load_cas(ctx, conf, why) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    snprintf(sid, sizeof(sid), "tern-smtpd-%s", cfg->listener);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid, (unsigned)strlen(sid));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only */
    SSL_CTX_set_timeout(ctx, (long)smtpd_tls_ticket_period);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, smtpd_tls_ticket_cb);
    SSL_CTX_set_num_tickets(ctx, 1);
    return ctx;
}

void smtpd_tls_init(struct smtpd_config *cfg, const struct config *conf)
{
    const char *cert = config_str(conf, "smtpd_tls_cert_file");
    buf_t why = BUF_INIT;
    SSL_CTX *ctx;
    size_t n = 0;
    char *const *specs;

    cfg->tls_wrapper = config_bool(conf, "smtpd_tls_wrappermode");
    if (config_bool(conf, "smtpd_tls_req_ccert") &&
        (*cert == '\0' || strcmp(config_str(conf, "smtpd_tls_security_level"), "none") == 0))
        log_warn("%s: listener %s: smtpd_tls_req_ccert = yes has no effect without TLS",
                 config_origin(conf, "smtpd_tls_req_ccert"), cfg->listener);
    cfg->tls_received_header = config_bool(conf, "smtpd_tls_received_header");
    cfg->tls_loglevel = config_int(conf, "smtpd_tls_loglevel");
    smtpd_tls_level(cfg, conf, *cert != '\0');
    if (*cert == '\0') {
        if (cfg->tls_level != SMTPD_TLS_NONE || cfg->tls_wrapper)
            cfg->tls_problem = "no smtpd_tls_cert_file";
        if (cfg->tls_wrapper)
            log_error("listener %s: SMTPS needs smtpd_tls_cert_file and smtpd_tls_key_file; "
                      "its clients are disconnected",
                      cfg->listener);
        return;
    }
    if (cfg->tls_level == SMTPD_TLS_NONE && !cfg->tls_wrapper)
        return;
    ctx = smtpd_tls_context(cfg, conf, &why);
    if (ctx == NULL) {
        log_error("listener %s: TLS is not available: %s", cfg->listener, buf_cstr(&why));
        cfg->tls_problem = "server key or certificate problem";
        buf_free(&why);
        return;
    }
    cfg->tls = xcalloc(1, sizeof(*cfg->tls));
    cfg->tls->ctx = ctx;
    specs = config_list(conf, "relay_clientcerts", &n);
    if (table_list_open(&cfg->tls->clientcerts, specs, n, 0, &why) < 0)
        log_fatal("%s: relay_clientcerts: %s", config_origin(conf, "relay_clientcerts"),
                  buf_cstr(&why));
    buf_free(&why);
}

void smtpd_tls_free(struct smtpd_config *cfg)
{
    if (cfg->tls == NULL)
        return;
    SSL_CTX_free(cfg->tls->ctx);
    table_list_close(&cfg->tls->clientcerts);
    free(cfg->tls);
    cfg->tls = NULL;
}

int smtpd_tls_offer(const struct session *s)
{
    return s->cfg->tls != NULL && !s->tls_active && !s->cfg->tls_wrapper &&
           s->cfg->tls_level != SMTPD_TLS_NONE;
}

int smtpd_tls_required(const struct session *s)
{
    return s->cfg->tls_level == SMTPD_TLS_ENCRYPT && !s->tls_active;
}

void smtpd_tls_starttls(struct session *s, const char *arg)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);

    if (*arg != '\0') {
        session_reply(s, "501 5.5.4 Syntax error (no parameters allowed)");
    } else if (s->tls_active) {
        session_reply(s, "503 5.5.1 Error: TLS already active");
    } else if (s->have_mail) {
        session_reply(s, "503 5.5.0 TLS not permitted during a mail transaction");
    } else if (s->cfg->tls == NULL || s->cfg->tls_level == SMTPD_TLS_NONE) {
        if (s->cfg->tls_problem != NULL)
            session_reply(s, "454 4.3.3 TLS not available after start");
        else
            session_reply(s, "454 4.7.0 TLS not available");
    } else {
        session_reply(s, "220 2.0.0 Ready to start TLS");
        /* RFC 3207 5: nothing the client sent before the handshake counts
         * (CVE-2011-0411); the rest of this read is thrown away and reading
         * stops until the TLS bufferevent takes over the socket */
        evbuffer_drain(in, evbuffer_get_length(in));
        s->state = SESSION_TLS;
        s->tls_starting = 1;
        session_pause_input(s);
    }
}

void smtpd_tls_start(struct session *s)
{
    struct event_base *base = s->server->svc.base;
    SSL *ssl = SSL_new(s->cfg->tls->ctx);
    evutil_socket_t fd = dup(bufferevent_getfd(s->bev));
    struct bufferevent *bev;

    s->tls_starting = 0;
    s->state = SESSION_TLS;
    if (ssl == NULL || fd < 0) {
        log_warn("cannot start TLS for %s: %s", s->client,
                 fd < 0 ? strerror(errno) : "SSL_new failed");
        if (fd >= 0)
            close(fd);
        SSL_free(ssl);
        session_close_after_flush(s);
        return;
    }
    bufferevent_free(s->bev); /* closes the old descriptor; its unread input is gone */
    bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        log_panic("bufferevent_openssl_socket_new failed");
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    s->bev = bev;
    s->tls_handshake = 1;
    session_attach_bev(s);
}

/* smtpd_tls_peer - the client certificate: verified?, fingerprint, log */
static const char *smtpd_tls_peer(struct session *s, SSL *ssl)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    buf_t fp = BUF_INIT;
    char subject[256], issuer[256];
    long verify;

    if (peer == NULL)
        return "NO";
    verify = SSL_get_verify_result(ssl);
    s->tls_ccert_verified = verify == X509_V_OK;
    if (tls_fingerprint(peer, &fp) == 0)
        snprintf(s->tls_ccert_fp, sizeof(s->tls_ccert_fp), "%s", buf_cstr(&fp));
    if (s->cfg->tls_loglevel >= 1) {
        X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
        X509_NAME_oneline(X509_get_issuer_name(peer), issuer, sizeof(issuer));
        log_info("client certificate from %s: subject=%s, issuer=%s, "
                 "fingerprint=sha256:%s, verify=%s%s%s",
                 s->client, subject, issuer, buf_cstr(&fp), s->tls_ccert_verified ? "OK" : "FAIL",
                 s->tls_ccert_verified ? "" : ", reason=",
                 s->tls_ccert_verified ? "" : X509_verify_cert_error_string(verify));
    }
    buf_free(&fp);
    X509_free(peer);
    return s->tls_ccert_verified ? "OK" : "FAIL";
}

void smtpd_tls_handshake_done(struct session *s)
{
    stats_count_result(STATS_TLS, "smtpd", 1);
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
    const char *version = SSL_get_version(ssl);
    const char *name = SSL_CIPHER_get_name(cipher);
    const char *verify = smtpd_tls_peer(s, ssl);
    int wrapper = !s->tls_active && s->cfg->tls_wrapper;

    s->tls_handshake = 0;
    s->tls_active = 1;
    buf_reset(&s->tls_info);
    buf_printf(&s->tls_info, "version=%s cipher=%s bits=%d/%d verify=%s", version, name, bits,
               alg_bits, verify);
    if (s->cfg->tls_loglevel >= 1) {
        log_info("%s TLS connection established from %s: %s with cipher %s "
                 "(%d/%d bits)%s",
                 strcmp(verify, "OK") == 0     ? "Trusted"
                 : strcmp(verify, "FAIL") == 0 ? "Untrusted"
                                               : "Anonymous",
                 s->client, version, name, bits, alg_bits,
                 SSL_session_reused(ssl) ? ", resumed" : "");
        log_info("STARTTLS=server, relay=%s, version=%s, verify=%s, cipher=%s, "
                 "bits=%d/%d",
                 s->client, version, verify, name, bits, alg_bits);
    }
    /* RFC 3207 4.2: forget everything learnt before the handshake */
    session_reset_transaction(s);
    buf_reset(&s->helo);
    s->seen_helo = 0;
    s->esmtp = 0;
    session_auth_forget(s);
    s->state = SESSION_CMD;
    session_set_read_timeout(s, s->cfg->timeout);
    if (wrapper)
        session_greet(s);
    session_resume_input(s);
}

void smtpd_tls_log_failure(struct session *s)
{
    stats_count_result(STATS_TLS, "smtpd", 0);
    buf_t why = BUF_INIT;
    unsigned long e;
    char text[256];

    /* libevent moves OpenSSL's error queue into the bufferevent, along
     * with SSL_get_error() codes (library 0), which say nothing more */
    while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
        if (ERR_GET_LIB(e) == 0)
            continue;
        ERR_error_string_n(e, text, sizeof(text));
        buf_printf(&why, "%s%s", why.len ? "; " : "", text);
    }
    if (why.len == 0 && ERR_peek_error() != 0)
        tls_errors(&why);
    if (why.len == 0)
        buf_puts(&why, "lost connection");
    log_info("SSL_accept error from %s: %s", s->client, buf_cstr(&why));
    buf_free(&why);
}

void smtpd_tls_shutdown(struct session *s)
{
    SSL *ssl;

    if (!s->tls_active || (ssl = bufferevent_openssl_get_ssl(s->bev)) == NULL)
        return;
    /* the close_notify alert; the client's answer is not waited for */
    if (!(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl);
    ERR_clear_error();
}

enum policy_ccert smtpd_tls_clientcert_status(struct session *s)
{
    buf_t value = BUF_INIT;
    enum table_result res;

    if (!s->tls_active || !s->tls_ccert_verified || s->tls_ccert_fp[0] == '\0' ||
        s->cfg->tls == NULL)
        return POLICY_CCERT_NO;
    res = table_list_lookup(&s->cfg->tls->clientcerts, s->tls_ccert_fp, &value);
    buf_free(&value);
    if (res == TABLE_TEMPFAIL)
        return POLICY_CCERT_TEMPFAIL;
    return res == TABLE_FOUND ? POLICY_CCERT_LISTED : POLICY_CCERT_NO;
}

void smtpd_tls_session_free(struct session *s)
{
    buf_free(&s->tls_info);
}

/* smtpd_tls_name_text - an X509 name in OpenSSL's one-line form */
static void smtpd_tls_name_text(X509_NAME *name, struct milter_facts *f, enum milter_fact fact)
{
    char text[512];

    if (name != NULL && X509_NAME_oneline(name, text, sizeof(text)) != NULL)
        milter_facts_set(f, fact, text);
}

void smtpd_tls_milter_facts(struct session *s, struct milter_facts *f)
{
    SSL *ssl = s->tls_active ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    X509 *peer;
    char bits[32];

    if (ssl == NULL)
        return;
    milter_facts_set(f, MILTER_FACT_TLS_VERSION, SSL_get_version(ssl));
    milter_facts_set(f, MILTER_FACT_CIPHER, SSL_get_cipher_name(ssl));
    snprintf(bits, sizeof(bits), "%d", SSL_get_cipher_bits(ssl, NULL));
    milter_facts_set(f, MILTER_FACT_CIPHER_BITS, bits);
    peer = SSL_get1_peer_certificate(ssl);
    if (peer == NULL)
        return;
    smtpd_tls_name_text(X509_get_subject_name(peer), f, MILTER_FACT_CERT_SUBJECT);
    smtpd_tls_name_text(X509_get_issuer_name(peer), f, MILTER_FACT_CERT_ISSUER);
    X509_free(peer);
}
