/*
 * tls - what every TLS user of tern shares (smtpd now, the smtp client and
 * tern check too): certificate and key files, protocol lists, OpenSSL's
 * error texts, certificate fingerprints, the session ticket key ratchet
 * (tls.h).  docs/tls.md describes the parameters.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "tls.h"

/* tls_errors - OpenSSL's queued errors as one text */
void tls_errors(buf_t *out)
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

/* tls_version_number - "TLSv1.2" to its number; 0 when unknown */
static int tls_version_number(const char *name)
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

/* tls_protocol_range - see tls.h */
int tls_protocol_range(const char *spec, int *min_out, int *max_out, buf_t *why)
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
        int v = tls_version_number(name);

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
    *min_out = min;
    *max_out = max;
    return 0;
}

/* tls_set_protocols - see tls.h */
int tls_set_protocols(SSL_CTX *ctx, const char *spec, buf_t *why)
{
    int min = 0, max = 0;

    if (tls_protocol_range(spec, &min, &max, why) < 0)
        return -1;
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    return 0;
}

/* tls_key_mode_check - a private key file readable by group or others is
 * refused (the key is read as root, the file need not be readable by anyone
 * else) */
int tls_key_mode_check(const char *param, const char *path, buf_t *why)
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

/* tls_pem_group - the keys and certificates of one PEM file: each
 * private key starts a group, the certificates after it are its leaf and
 * chain (Postfix's smtpd_tls_chain_files order) */
struct tls_pair {
    EVP_PKEY *key;
    STACK_OF(X509) * certs;
};

/* tls_read_pem - every key and certificate of path, grouped; pairs
 * without a key get key_fallback's key later.  -1 with why. */
/* tls_no_passphrase - an encrypted key: say so instead of prompting on a
 * terminal (OpenSSL's default) */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *encrypted)
{
    *(int *)encrypted = 1;
    return -1;
}

static int tls_read_pem(const char *path, struct tls_pair *pairs, size_t max, size_t *count,
                        buf_t *why)
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
            int encrypted = 0;

            PEM_write_bio(mem, name, header, data, len);
            key = PEM_read_bio_PrivateKey(mem, NULL, tls_no_passphrase, &encrypted);
            BIO_free_all(mem);
            OPENSSL_cleanse(data, (size_t)len);
            if (key == NULL && encrypted) {
                buf_printf(why,
                           "%s: the private key is encrypted with a passphrase, which tern cannot "
                           "ask for; store it decrypted (openssl pkey -in KEY -out NEW; chmod 600 "
                           "NEW)",
                           path);
                goto fail;
            }
            if (key == NULL || *count == max) {
                EVP_PKEY_free(key);
                buf_printf(why, "%s: %s", path,
                           key == NULL ? "unreadable private key" : "too many keys");
                goto fail;
            }
            pairs[(*count)++] = (struct tls_pair){key, sk_X509_new_null()};
        } else if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "TRUSTED CERTIFICATE") == 0) {
            X509 *cert = d2i_X509(NULL, &p, len);
            if (cert == NULL) {
                buf_printf(why, "%s: unreadable certificate", path);
                goto fail;
            }
            if (*count == 0)
                pairs[(*count)++] = (struct tls_pair){NULL, sk_X509_new_null()};
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

/* tls_use_pair - one key with its leaf and chain */
static int tls_use_pair(SSL_CTX *ctx, struct tls_pair *pair, const char *path, buf_t *why)
{
    int n = sk_X509_num(pair->certs);

    if (n == 0) {
        buf_printf(why, "%s: a private key without a certificate after it", path);
        return -1;
    }
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(pair->certs, 0)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pair->key) != 1) {
        buf_t ssl = BUF_INIT;
        tls_errors(&ssl);
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

int tls_load_pairs(SSL_CTX *ctx, const char *prefix, const char *cert, const char *key, buf_t *why)
{
    buf_t param = BUF_INIT;

    struct tls_pair pairs[4], keys[4];
    size_t count = 0, key_count = 0;
    int rc = -1, cert_has_key = 0;

    buf_printf(&param, "%s_key_file", prefix);
    if (tls_key_mode_check(buf_cstr(&param), key, why) < 0) {
        buf_free(&param);
        return -1;
    }
    buf_free(&param);
    if (tls_read_pem(cert, pairs, 4, &count, why) < 0)
        goto out;
    for (size_t i = 0; i < count; i++)
        cert_has_key |= pairs[i].key != NULL;
    if (cert_has_key && strcmp(cert, key) != 0) {
        /* the certificate file holds keys of its own: the same rule */
        buf_printf(&param, "%s_cert_file", prefix);
        rc = tls_key_mode_check(buf_cstr(&param), cert, why);
        buf_free(&param);
        if (rc < 0)
            goto out;
        rc = -1;
    }
    if (strcmp(cert, key) != 0) {
        if (tls_read_pem(key, keys, 4, &key_count, why) < 0)
            goto out;
        if (key_count == 0 || keys[0].key == NULL) {
            buf_printf(why, "%s_key_file %s: no private key in it", prefix, key);
            goto out;
        }
        if (count > 0 && pairs[0].key == NULL) {
            pairs[0].key = keys[0].key;
            keys[0].key = NULL;
        }
    }
    if (count == 0) {
        buf_printf(why, "%s_cert_file %s: no certificate in it", prefix, cert);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (pairs[i].key == NULL) {
            buf_printf(why, "%s: no private key for the certificate", cert);
            rc = -1;
        } else {
            rc = tls_use_pair(ctx, &pairs[i], cert, why);
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

int tls_fingerprint(X509 *cert, buf_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (X509_digest(cert, EVP_sha256(), md, &len) != 1)
        return -1;
    for (unsigned i = 0; i < len; i++)
        buf_printf(out, "%s%02X", i ? ":" : "", md[i]);
    return 0;
}

int tls_set_ciphers(SSL_CTX *ctx, const char *ciphers, char *const *exclude, buf_t *why)
{
    buf_t list = BUF_INIT;
    int rc = 0;

    buf_puts(&list, ciphers);
    for (; exclude != NULL && *exclude != NULL; exclude++)
        buf_printf(&list, ":!%s", *exclude);
    if (SSL_CTX_set_cipher_list(ctx, buf_cstr(&list)) != 1) {
        buf_printf(why, "OpenSSL accepts no cipher of \"%s\"", buf_cstr(&list));
        ERR_clear_error();
        rc = -1;
    }
    buf_free(&list);
    return rc;
}

int tls_load_trust(SSL_CTX *ctx, const char *prefix, const char *cafile, const char *capath,
                   const char *crl, buf_t *why)
{
    if ((*cafile || *capath) &&
        SSL_CTX_load_verify_locations(ctx, *cafile ? cafile : NULL, *capath ? capath : NULL) != 1) {
        buf_printf(why, "%s_CAfile/%s_CApath: cannot load %s%s%s: ", prefix, prefix, cafile,
                   *cafile && *capath ? " and " : "", capath);
        tls_errors(why);
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
            buf_printf(why, "%s_crl_file %s: no CRL could be read: ", prefix, crl);
            tls_errors(why);
            return -1;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    return 0;
}

void tls_ratchet_step(unsigned char state[TLS_RATCHET_LEN])
{
    static const char label[] = "tern ratchet";
    unsigned char in[sizeof(label) - 1 + TLS_RATCHET_LEN];
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    memcpy(in, label, sizeof(label) - 1);
    memcpy(in + sizeof(label) - 1, state, TLS_RATCHET_LEN);
    if (EVP_Digest(in, sizeof(in), out, &len, EVP_sha256(), NULL) != 1 || len != TLS_RATCHET_LEN)
        abort(); /* SHA-256 cannot fail; never keep the old state */
    memcpy(state, out, TLS_RATCHET_LEN);
    OPENSSL_cleanse(in, sizeof(in));
    OPENSSL_cleanse(out, sizeof(out));
}

void tls_ratchet_advance(struct tls_ratchet *r, long long period)
{
    while (r->period < period) {
        tls_ratchet_step(r->state);
        r->period++;
    }
}

int tls_ratchet_format(const struct tls_ratchet *r, char *out, size_t size)
{
    int n = snprintf(out, size, "%lld:", r->period);

    if (n < 0 || (size_t)n + 2 * TLS_RATCHET_LEN >= size)
        return -1;
    for (size_t i = 0; i < TLS_RATCHET_LEN; i++)
        snprintf(out + n + 2 * i, 3, "%02x", r->state[i]);
    return 0;
}

/* tls_hex_digit - a hex digit's value, or -1 */
static int tls_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tls_ratchet_parse(const char *text, struct tls_ratchet *r)
{
    const char *p = text;
    long long period = 0;

    memset(r, 0, sizeof(*r));
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (period > (LLONG_MAX - (*p - '0')) / 10)
            return -1;
        period = period * 10 + (*p - '0');
    }
    if (*p++ != ':' || strlen(p) != 2 * TLS_RATCHET_LEN)
        return -1;
    for (size_t i = 0; i < TLS_RATCHET_LEN; i++) {
        int hi = tls_hex_digit(p[2 * i]), lo = tls_hex_digit(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(r, sizeof(*r));
            return -1;
        }
        r->state[i] = (unsigned char)(hi << 4 | lo);
    }
    r->period = period;
    return 0;
}

/* tls_ticket_derive - HMAC-SHA256(state, "tern ticket " label) */
static void tls_ticket_derive(const unsigned char state[TLS_RATCHET_LEN], const char *label,
                              unsigned char out[32])
{
    char data[32];
    unsigned int len = 32;
    int n = snprintf(data, sizeof(data), "tern ticket %s", label);

    if (HMAC(EVP_sha256(), state, TLS_RATCHET_LEN, (unsigned char *)data, (size_t)n, out, &len) ==
            NULL ||
        len != 32)
        abort();
}

void tls_ticket_keys_derive(const unsigned char state[TLS_RATCHET_LEN], struct tls_ticket_keys *k)
{
    unsigned char name[32];

    tls_ticket_derive(state, "name", name);
    memcpy(k->name, name, sizeof(k->name));
    tls_ticket_derive(state, "aes", k->aes);
    tls_ticket_derive(state, "mac", k->mac);
    OPENSSL_cleanse(name, sizeof(name));
}

void tls_ticket_ring_init(struct tls_ticket_ring *ring, const struct tls_ratchet *from)
{
    OPENSSL_cleanse(ring, sizeof(*ring));
    ring->chain = *from;
    tls_ticket_keys_derive(ring->chain.state, &ring->cur);
}

void tls_ticket_ring_advance(struct tls_ticket_ring *ring, long long period)
{
    if (period <= ring->chain.period)
        return;
    if (period - 1 == ring->chain.period) {
        ring->prev = ring->cur;
    } else {
        tls_ratchet_advance(&ring->chain, period - 1);
        tls_ticket_keys_derive(ring->chain.state, &ring->prev);
    }
    ring->have_prev = 1;
    tls_ratchet_step(ring->chain.state);
    ring->chain.period = period;
    tls_ticket_keys_derive(ring->chain.state, &ring->cur);
}

int tls_ticket_ring_find(const struct tls_ticket_ring *ring, const unsigned char name[16],
                         const struct tls_ticket_keys **keys)
{
    if (CRYPTO_memcmp(name, ring->cur.name, sizeof(ring->cur.name)) == 0) {
        *keys = &ring->cur;
        return 1;
    }
    if (ring->have_prev && CRYPTO_memcmp(name, ring->prev.name, sizeof(ring->prev.name)) == 0) {
        *keys = &ring->prev;
        return 2;
    }
    return 0;
}

void tls_ticket_ring_clear(struct tls_ticket_ring *ring)
{
    OPENSSL_cleanse(ring, sizeof(*ring));
}

/* tls_describe - see tls.h */
void tls_describe(SSL *ssl, buf_t *out)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int bits = SSL_CIPHER_get_bits(cipher, &alg_bits);

    buf_printf(out, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
               SSL_CIPHER_get_name(cipher), bits, alg_bits);
}
