/*
 * tls - STARTTLS and SMTPS in tern-smtpd (see tls.h and docs/tls.md).
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
#include "service.h"
#include "session.h"
#include "table.h"
#include "tls.h"

#define SMTPD_TLS_SECRET_LEN 32

/* what a listener's TLS needs besides the SSL_CTX */
struct smtpd_tls {
    SSL_CTX *ctx;
    struct table_list clientcerts; /* relay_clientcerts */
};

/* the ticket secret shared by every worker (see tls.h) */
static unsigned char smtpd_tls_secret[SMTPD_TLS_SECRET_LEN];
static long long smtpd_tls_ticket_period = 3600;

/* smtpd_tls_hex_byte - one byte from two hex digits; -1 when bad */
static int smtpd_tls_hex_byte(const char *p)
{
    unsigned v;

    if (sscanf(p, "%2x", &v) != 1)
        return -1;
    return (int)v;
}

void smtpd_tls_global_init(struct service *svc)
{
    char *hex = getenv(SMTPD_TLS_TICKET_ENV);
    size_t i = 0;

    SSL_load_error_strings();
    smtpd_tls_ticket_period = config_time(svc->cfg, "smtpd_tls_session_cache_timeout");
    if (smtpd_tls_ticket_period < 60)
        smtpd_tls_ticket_period = 60;
    if (hex != NULL && strlen(hex) == 2 * SMTPD_TLS_SECRET_LEN) {
        for (i = 0; i < SMTPD_TLS_SECRET_LEN; i++) {
            int b = smtpd_tls_hex_byte(hex + 2 * i);
            if (b < 0)
                break;
            smtpd_tls_secret[i] = (unsigned char)b;
        }
    }
    if (hex != NULL)
        memset(hex, 'x', strlen(hex)); /* gone from /proc/PID/environ too */
    unsetenv(SMTPD_TLS_TICKET_ENV);
    if (i != SMTPD_TLS_SECRET_LEN) {
        /* started without tern-master: tickets resume on this worker only */
        if (RAND_bytes(smtpd_tls_secret, sizeof(smtpd_tls_secret)) != 1)
            log_fatal("cannot get random bytes for the TLS ticket keys");
    }
}

/* smtpd_tls_derive - HMAC-SHA256(secret, "label period") */
static void smtpd_tls_derive(const char *label, long long period, unsigned char out[32])
{
    char data[64];
    unsigned int len = 32;
    int n = snprintf(data, sizeof(data), "tern ticket %s %lld", label, period);

    HMAC(EVP_sha256(), smtpd_tls_secret, sizeof(smtpd_tls_secret), (unsigned char *)data, (size_t)n,
         out, &len);
}

/* smtpd_tls_ticket_keys - the ticket's key name, cipher key and MAC key of a period */
static void smtpd_tls_ticket_keys(long long period, unsigned char name[16], unsigned char aes[32],
                                  unsigned char mac[32])
{
    unsigned char n[32];

    smtpd_tls_derive("name", period, n);
    memcpy(name, n, 16);
    smtpd_tls_derive("aes", period, aes);
    smtpd_tls_derive("mac", period, mac);
}

/* smtpd_tls_ticket_mac - set the ticket HMAC key */
static int smtpd_tls_ticket_mac(EVP_MAC_CTX *hctx, unsigned char mac[32])
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, mac, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* smtpd_tls_ticket_cb - encrypt a new ticket with this period's keys;
 * decrypt one of this period (1) or the last (2: issue a fresh one) */
static int smtpd_tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                               EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    long long now = (long long)time(NULL) / smtpd_tls_ticket_period;
    unsigned char name[16], aes[32], mac[32];
    int rc = 0;

    if (enc) {
        smtpd_tls_ticket_keys(now, name, aes, mac);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1 &&
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv) == 1 &&
            smtpd_tls_ticket_mac(hctx, mac) == 1) {
            memcpy(key_name, name, 16);
            rc = 1;
        } else {
            rc = -1;
        }
    } else {
        for (long long p = now; p >= now - 1 && rc == 0; p--) {
            smtpd_tls_ticket_keys(p, name, aes, mac);
            if (memcmp(key_name, name, 16) != 0)
                continue;
            if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv) != 1 ||
                smtpd_tls_ticket_mac(hctx, mac) != 1)
                rc = -1;
            else
                rc = p == now ? 1 : 2;
        }
    }
    OPENSSL_cleanse(aes, sizeof(aes));
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

/* smtpd_tls_errors - OpenSSL's queued errors as one text */
static void smtpd_tls_errors(buf_t *out)
{
    unsigned long e;
    char text[256];
    int first = 1;

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, text, sizeof(text));
        buf_printf(out, "%s%s", first ? "" : "; ", text);
        first = 0;
    }
    if (first)
        buf_puts(out, "no details from OpenSSL");
}

/* smtpd_tls_version - "TLSv1.2" to its number; 0 when unknown */
static int smtpd_tls_version(const char *name)
{
    static const struct {
        const char *name;
        int version;
    } v[] = {{"SSLv3", SSL3_VERSION},
             {"TLSv1", TLS1_VERSION},
             {"TLSv1.1", TLS1_1_VERSION},
             {"TLSv1.2", TLS1_2_VERSION},
             {"TLSv1.3", TLS1_3_VERSION}};

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (strcasecmp(v[i].name, name) == 0)
            return v[i].version;
    return 0;
}

/* smtpd_tls_protocols - ">=TLSv1.2", "<=TLSv1.3", or Postfix's list
 * "!SSLv2, !SSLv3, !TLSv1, TLSv1.2"; sets the context's minimum and maximum.
 * SSLv2 is accepted in lists and never offered.  -1 with why on error. */
static int smtpd_tls_protocols(SSL_CTX *ctx, const char *spec, buf_t *why)
{
    static const int all[] = {SSL3_VERSION, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION,
                              TLS1_3_VERSION};
    int on[5] = {0, 1, 1, 1, 1}; /* SSLv3 never unless listed */
    int any_positive = 0, min = 0, max = 0;
    char *copy = xstrdup(spec);
    char *save = NULL;

    for (char *tok = strtok_r(copy, ", \t:", &save); tok; tok = strtok_r(NULL, ", \t:", &save)) {
        int neg = tok[0] == '!';
        int ge = strncmp(tok, ">=", 2) == 0, le = strncmp(tok, "<=", 2) == 0;
        const char *name = tok + (neg ? 1 : (ge || le) ? 2 : 0);
        int v = smtpd_tls_version(name);

        if (v == 0 && strcasecmp(name, "SSLv2") == 0)
            continue;
        if (v == 0) {
            buf_printf(why,
                       "unknown protocol '%s' (known: SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
                       name);
            free(copy);
            return -1;
        }
        for (int i = 0; i < 5; i++) {
            if (neg && all[i] == v)
                on[i] = 0;
            else if (ge && all[i] < v)
                on[i] = 0;
            else if (le && all[i] > v)
                on[i] = 0;
        }
        if (!neg && !ge && !le) {
            if (!any_positive)
                memset(on, 0, sizeof(on));
            any_positive = 1;
            for (int i = 0; i < 5; i++)
                if (all[i] == v)
                    on[i] = 1;
        }
    }
    free(copy);
    /* the highest contiguous run of enabled versions: a version disabled
     * between two enabled ones ("!TLSv1.2") must not be let in by a plain
     * minimum and maximum; OpenSSL, too, uses only the top run */
    for (int i = 4; i >= 0; i--) {
        if (on[i] && max == 0)
            max = min = all[i];
        else if (on[i] && min == all[i + 1])
            min = all[i];
    }
    if (min == 0) {
        buf_printf(why, "\"%s\" leaves no protocol version", spec);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    return 0;
}

/* smtpd_tls_ciphers - smtpd_tls_ciphers minus smtpd_tls_exclude_ciphers */
static int smtpd_tls_ciphers(SSL_CTX *ctx, const struct config *conf, buf_t *why)
{
    buf_t list = BUF_INIT;
    int rc = 0;

    buf_puts(&list, config_str(conf, "smtpd_tls_ciphers"));
    for (char *const *x = config_list(conf, "smtpd_tls_exclude_ciphers", NULL); *x; x++)
        buf_printf(&list, ":!%s", *x);
    if (SSL_CTX_set_cipher_list(ctx, buf_cstr(&list)) != 1) {
        buf_printf(why, "smtpd_tls_ciphers: OpenSSL accepts no cipher of \"%s\"", buf_cstr(&list));
        rc = -1;
    }
    buf_free(&list);
    return rc;
}

/* smtpd_tls_key_mode - a private key file readable by group or others is
 * refused (the key is read as root, the file need not be readable by anyone
 * else) */
static int smtpd_tls_key_mode(const char *param, const char *path, buf_t *why)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        buf_printf(why, "%s %s: %s", param, path, strerror(errno));
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        buf_printf(why,
                   "%s %s: mode %04o: a private key must not be readable by group or others; "
                   "fix it with: chmod 600 %s",
                   param, path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    return 0;
}

/* smtpd_tls_pem_group - the keys and certificates of one PEM file: each
 * private key starts a group, the certificates after it are its leaf and
 * chain (Postfix's smtpd_tls_chain_files order) */
struct smtpd_tls_pair {
    EVP_PKEY *key;
    STACK_OF(X509) * certs;
};

/* smtpd_tls_read_pem - every key and certificate of path, grouped; pairs
 * without a key get key_fallback's key later.  -1 with why. */
static int smtpd_tls_read_pem(const char *path, struct smtpd_tls_pair *pairs, size_t max,
                              size_t *count, buf_t *why)
{
    BIO *bio = BIO_new_file(path, "r");
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;

    if (bio == NULL) {
        buf_printf(why, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
        const unsigned char *p = data;
        if (strstr(name, "PRIVATE KEY") != NULL) {
            EVP_PKEY *key = NULL;
            BIO *mem = BIO_new(BIO_s_mem()); /* the block again, for OpenSSL's key decoder */

            PEM_write_bio(mem, name, header, data, len);
            key = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
            BIO_free(mem);
            if (key == NULL || *count == max) {
                EVP_PKEY_free(key);
                buf_printf(why, "%s: %s", path,
                           key == NULL ? "unreadable private key" : "too many keys");
                goto fail;
            }
            pairs[(*count)++] = (struct smtpd_tls_pair){key, sk_X509_new_null()};
        } else if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "TRUSTED CERTIFICATE") == 0) {
            X509 *cert = d2i_X509(NULL, &p, len);
            if (cert == NULL) {
                buf_printf(why, "%s: unreadable certificate", path);
                goto fail;
            }
            if (*count == 0)
                pairs[(*count)++] = (struct smtpd_tls_pair){NULL, sk_X509_new_null()};
            sk_X509_push(pairs[*count - 1].certs, cert);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ERR_clear_error(); /* the end of the file */
    BIO_free(bio);
    return 0;
fail:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return -1;
}

/* smtpd_tls_use_pair - one key with its leaf and chain */
static int smtpd_tls_use_pair(SSL_CTX *ctx, struct smtpd_tls_pair *pair, const char *path,
                              buf_t *why)
{
    int n = sk_X509_num(pair->certs);

    if (n == 0) {
        buf_printf(why, "%s: a private key without a certificate after it", path);
        return -1;
    }
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(pair->certs, 0)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pair->key) != 1) {
        buf_t ssl = BUF_INIT;
        smtpd_tls_errors(&ssl);
        if (strstr(buf_cstr(&ssl), "too small") != NULL)
            buf_printf(why,
                       "%s: the key is too small for OpenSSL security level %d (%s); make a "
                       "2048-bit key (openssl genrsa -out key.pem 2048), or admit old keys "
                       "with tls_openssl_security_level = 1",
                       path, SSL_CTX_get_security_level(ctx), buf_cstr(&ssl));
        else
            buf_printf(why, "%s: %s", path, buf_cstr(&ssl));
        buf_free(&ssl);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        buf_printf(why, "%s: the private key does not match the certificate", path);
        return -1;
    }
    for (int i = 1; i < n; i++)
        SSL_CTX_add1_chain_cert(ctx, sk_X509_value(pair->certs, i));
    return 0;
}

/* smtpd_tls_load_pairs - certificate and key files into the context */
static int smtpd_tls_load_pairs(SSL_CTX *ctx, const char *cert, const char *key, buf_t *why)
{
    struct smtpd_tls_pair pairs[4], keys[4];
    size_t count = 0, key_count = 0;
    int rc = -1;

    if (smtpd_tls_key_mode("smtpd_tls_key_file", key, why) < 0)
        return -1;
    if (smtpd_tls_read_pem(cert, pairs, 4, &count, why) < 0)
        goto out;
    if (strcmp(cert, key) != 0) {
        if (smtpd_tls_read_pem(key, keys, 4, &key_count, why) < 0)
            goto out;
        if (key_count == 0 || keys[0].key == NULL) {
            buf_printf(why, "smtpd_tls_key_file %s: no private key in it", key);
            goto out;
        }
        if (count > 0 && pairs[0].key == NULL) {
            pairs[0].key = keys[0].key;
            keys[0].key = NULL;
        }
    }
    if (count == 0) {
        buf_printf(why, "smtpd_tls_cert_file %s: no certificate in it", cert);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (pairs[i].key == NULL) {
            buf_printf(why, "%s: no private key for the certificate", cert);
            rc = -1;
        } else {
            rc = smtpd_tls_use_pair(ctx, &pairs[i], cert, why);
        }
    }
out:
    for (size_t i = 0; i < count; i++) {
        EVP_PKEY_free(pairs[i].key);
        sk_X509_pop_free(pairs[i].certs, X509_free);
    }
    for (size_t i = 0; i < key_count; i++) {
        EVP_PKEY_free(keys[i].key);
        sk_X509_pop_free(keys[i].certs, X509_free);
    }
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

    if ((*cafile || *capath) &&
        SSL_CTX_load_verify_locations(ctx, *cafile ? cafile : NULL, *capath ? capath : NULL) != 1) {
        buf_printf(why, "smtpd_tls_CAfile/smtpd_tls_CApath: cannot load %s%s%s: ", cafile,
                   *cafile && *capath ? " and " : "", capath);
        smtpd_tls_errors(why);
        return -1;
    }
    if (*cafile) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cafile);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (*crl) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (lookup == NULL || X509_load_crl_file(lookup, crl, X509_FILETYPE_PEM) < 1) {
            buf_printf(why, "smtpd_tls_crl_file %s: no CRL could be read: ", crl);
            smtpd_tls_errors(why);
            return -1;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
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
    const char *protocols = config_str(conf, cfg->tls_level == SMTPD_TLS_ENCRYPT || cfg->tls_wrapper
                                                 ? "smtpd_tls_mandatory_protocols"
                                                 : "smtpd_tls_protocols");
    buf_t pwhy = BUF_INIT;
    char sid[64];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        smtpd_tls_errors(why);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (seclevel >= 0)
        SSL_CTX_set_security_level(ctx, (int)seclevel);
    if (smtpd_tls_protocols(ctx, protocols, &pwhy) < 0) {
        buf_printf(why, "%s: %s",
                   cfg->tls_level == SMTPD_TLS_ENCRYPT || cfg->tls_wrapper
                       ? "smtpd_tls_mandatory_protocols"
                       : "smtpd_tls_protocols",
                   buf_cstr(&pwhy));
        buf_free(&pwhy);
        SSL_CTX_free(ctx);
        return NULL;
    }
    buf_free(&pwhy);
    if (smtpd_tls_ciphers(ctx, conf, why) < 0 || smtpd_tls_load_pairs(ctx, cert, key, why) < 0 ||
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
        log_warn("cannot start TLS for unknown[%s]: %s", s->ip,
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
    if (smtpd_tls_fingerprint(peer, &fp) == 0)
        snprintf(s->tls_ccert_fp, sizeof(s->tls_ccert_fp), "%s", buf_cstr(&fp));
    if (s->cfg->tls_loglevel >= 1) {
        X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
        X509_NAME_oneline(X509_get_issuer_name(peer), issuer, sizeof(issuer));
        log_info("client certificate from unknown[%s]: subject=%s, issuer=%s, "
                 "fingerprint=sha256:%s, verify=%s%s%s",
                 s->ip, subject, issuer, buf_cstr(&fp), s->tls_ccert_verified ? "OK" : "FAIL",
                 s->tls_ccert_verified ? "" : ", reason=",
                 s->tls_ccert_verified ? "" : X509_verify_cert_error_string(verify));
    }
    buf_free(&fp);
    X509_free(peer);
    return s->tls_ccert_verified ? "OK" : "FAIL";
}

void smtpd_tls_handshake_done(struct session *s)
{
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
        log_info("%s TLS connection established from unknown[%s]: %s with cipher %s "
                 "(%d/%d bits)%s",
                 strcmp(verify, "OK") == 0     ? "Trusted"
                 : strcmp(verify, "FAIL") == 0 ? "Untrusted"
                                               : "Anonymous",
                 s->ip, version, name, bits, alg_bits, SSL_session_reused(ssl) ? ", resumed" : "");
        log_info("STARTTLS=server, relay=unknown[%s], version=%s, verify=%s, cipher=%s, "
                 "bits=%d/%d",
                 s->ip, version, verify, name, bits, alg_bits);
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
        smtpd_tls_errors(&why);
    if (why.len == 0)
        buf_puts(&why, "lost connection");
    log_info("SSL_accept error from unknown[%s]: %s", s->ip, buf_cstr(&why));
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

int smtpd_tls_fingerprint(void *cert, buf_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (X509_digest(cert, EVP_sha256(), md, &len) != 1)
        return -1;
    for (unsigned i = 0; i < len; i++)
        buf_printf(out, "%s%02X", i ? ":" : "", md[i]);
    return 0;
}

int smtpd_tls_clientcert_ok(struct session *s)
{
    buf_t value = BUF_INIT;
    enum table_result res;

    if (!s->tls_active || !s->tls_ccert_verified || s->tls_ccert_fp[0] == '\0' ||
        s->cfg->tls == NULL)
        return 0;
    res = table_list_lookup(&s->cfg->tls->clientcerts, s->tls_ccert_fp, &value);
    buf_free(&value);
    return res == TABLE_FOUND;
}

void smtpd_tls_session_free(struct session *s)
{
    buf_free(&s->tls_info);
}
