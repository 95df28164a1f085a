/*
 * smtp_tls - see smtp_tls.h.
 *
 * The session cache: OpenSSL hands every new client session (TLS 1.3 sends
 * them as tickets after the handshake) to smtp_tls_new_session, which keeps
 * it under the key of the connection it came from: the server's
 * "host[addr]:port", the SNI name, the level, the reference names and the
 * DANE records.  A session is only offered back to a server under the same
 * key, so a session verified under one policy is never resumed under a
 * stricter one.  The cache is a small array searched linearly (at most
 * SMTP_TLS_CACHE_MAX entries), expired by smtp_tls_session_cache_timeout.
 * tern-smtp is one process, so every delivery shares it.
 */
#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "smtp_tls.h"
#include "table.h"
#include "tls.h"

#define SMTP_TLS_CACHE_MAX 1000
#define SMTP_TLS_NAMES_MAX 16

struct smtp_tls_cached {
    char *key;
    SSL_SESSION *sess;
    time_t expires;
};

struct smtp_tls {
    SSL_CTX *ctx;
    enum smtp_tls_level level; /* smtp_tls_security_level */
    struct table_list maps;    /* smtp_tls_policy_maps */
    int have_maps;
    char *servername;   /* smtp_tls_servername */
    char *verify_match; /* smtp_tls_verify_cert_match, ':' separated */
    char *secure_match; /* smtp_tls_secure_cert_match */
    long long loglevel;
    long long cache_timeout;
    struct smtp_tls_cached cache[SMTP_TLS_CACHE_MAX];
    size_t cached;
};

/* what a handshake in progress carries (SSL ex_data) */
struct smtp_tls_conn {
    struct smtp_tls *t;
    char *key;
    int names;     /* reference names were set */
    int chain_bad; /* the verify callback saw an error other than the name */
    int name_bad;  /* ... the name did not match */
    int first_err;
};

static int smtp_tls_conn_index = -1;

static const char *const smtp_tls_level_names[] = {
    [SMTP_TLS_NONE] = "none",           [SMTP_TLS_MAY] = "may",
    [SMTP_TLS_ENCRYPT] = "encrypt",     [SMTP_TLS_DANE] = "dane",
    [SMTP_TLS_DANE_ONLY] = "dane-only", [SMTP_TLS_VERIFY] = "verify",
    [SMTP_TLS_SECURE] = "secure",
};

/* smtp_tls_level_parse - see smtp_tls.h */
int smtp_tls_level_parse(const char *word, enum smtp_tls_level *level)
{
    for (size_t i = 0; i < sizeof(smtp_tls_level_names) / sizeof(smtp_tls_level_names[0]); i++) {
        if (strcasecmp(word, smtp_tls_level_names[i]) == 0) {
            *level = (enum smtp_tls_level)i;
            return 0;
        }
    }
    return -1;
}

/* smtp_tls_level_name - see smtp_tls.h */
const char *smtp_tls_level_name(enum smtp_tls_level level)
{
    return smtp_tls_level_names[level];
}

/* smtp_tls_conn_free - OpenSSL frees an SSL: its ex_data too */
static void smtp_tls_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                               void *argp)
{
    struct smtp_tls_conn *c = ptr;

    if (c == NULL)
        return;
    free(c->key);
    free(c);
}

/* smtp_tls_verify_cb - note what failed, never stop the handshake: the
 * level decides later (smtp_tls_result) */
static int smtp_tls_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct smtp_tls_conn *c = ssl ? SSL_get_ex_data(ssl, smtp_tls_conn_index) : NULL;
    int err = X509_STORE_CTX_get_error(x);

    if (ok || c == NULL)
        return 1;
    if (err == X509_V_ERR_HOSTNAME_MISMATCH) {
        c->name_bad = 1;
    } else {
        if (!c->chain_bad)
            c->first_err = err;
        c->chain_bad = 1;
    }
    return 1;
}

/* smtp_tls_cache_drop - forget cache entry i */
static void smtp_tls_cache_drop(struct smtp_tls *t, size_t i)
{
    free(t->cache[i].key);
    SSL_SESSION_free(t->cache[i].sess);
    t->cache[i] = t->cache[--t->cached];
}

/* smtp_tls_cache_find - the index of key's entry (expired ones dropped), or -1 */
static long smtp_tls_cache_find(struct smtp_tls *t, const char *key)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < t->cached; i++) {
        if (t->cache[i].expires <= now) {
            smtp_tls_cache_drop(t, i--);
            continue;
        }
        if (strcmp(t->cache[i].key, key) == 0)
            return (long)i;
    }
    return -1;
}

/* smtp_tls_new_session - OpenSSL has a session for the connection: keep it
 * (1: we own it now) */
static int smtp_tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct smtp_tls_conn *c = SSL_get_ex_data(ssl, smtp_tls_conn_index);
    struct smtp_tls *t = c ? c->t : NULL;
    long i;

    if (t == NULL || t->cache_timeout <= 0 || !SSL_SESSION_is_resumable(sess))
        return 0;
    i = smtp_tls_cache_find(t, c->key);
    if (i >= 0) {
        SSL_SESSION_free(t->cache[i].sess);
    } else {
        if (t->cached == SMTP_TLS_CACHE_MAX) { /* full: drop the one expiring first */
            size_t oldest = 0;
            for (size_t k = 1; k < t->cached; k++)
                if (t->cache[k].expires < t->cache[oldest].expires)
                    oldest = k;
            smtp_tls_cache_drop(t, oldest);
        }
        i = (long)t->cached++;
        t->cache[i].key = xstrdup(c->key);
    }
    t->cache[i].sess = sess;
    t->cache[i].expires = time(NULL) + (time_t)t->cache_timeout;
    return 1;
}

/* smtp_tls_match_param - a match list parameter as "a:b:c" */
static char *smtp_tls_match_param(const struct config *cfg, const char *name)
{
    size_t n;
    char *const *v = config_list(cfg, name, &n);
    buf_t out = BUF_INIT;
    char *s;

    for (size_t i = 0; i < n; i++)
        buf_printf(&out, "%s%s", i ? ":" : "", v[i]);
    s = xstrdup(buf_cstr(&out));
    buf_free(&out);
    return s;
}

/* smtp_tls_context - the SSL_CTX from smtp_tls_*; NULL with err */
static SSL_CTX *smtp_tls_context(const struct config *cfg, buf_t *err)
{
    const char *cafile = config_str(cfg, "smtp_tls_CAfile");
    const char *capath = config_str(cfg, "smtp_tls_CApath");
    const char *cert = config_str(cfg, "smtp_tls_cert_file");
    const char *key = config_str(cfg, "smtp_tls_key_file");
    long long seclevel = config_int(cfg, "tls_openssl_security_level");
    buf_t why = BUF_INIT;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int rc = 0;

    if (ctx == NULL) {
        tls_errors(&why);
        buf_printf(err, "cannot create the TLS client context: %s", buf_cstr(&why));
        buf_free(&why);
        return NULL;
    }
    if (seclevel >= 0)
        SSL_CTX_set_security_level(ctx, (int)seclevel);
    if (tls_set_protocols(ctx, config_str(cfg, "smtp_tls_protocols"), &why) < 0) {
        buf_printf(err, "smtp_tls_protocols: %s", buf_cstr(&why));
        rc = -1;
    } else if (tls_set_ciphers(ctx, config_str(cfg, "smtp_tls_ciphers"),
                               config_list(cfg, "smtp_tls_exclude_ciphers", NULL), &why) < 0) {
        buf_printf(err, "smtp_tls_ciphers: %s", buf_cstr(&why));
        rc = -1;
    } else if (cafile[0] == 0 && capath[0] == 0) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            log_warn("smtp_tls: the system's trust store cannot be read; no server certificate "
                     "will verify unless smtp_tls_CAfile is set");
    } else if (tls_load_trust(ctx, "smtp_tls", cafile, capath, "", &why) < 0) {
        buf_puts(err, buf_cstr(&why));
        rc = -1;
    }
    if (rc == 0 && cert[0] && tls_load_pairs(ctx, "smtp_tls", cert, key, &why) < 0) {
        buf_puts(err, buf_cstr(&why));
        rc = -1;
    }
    if (rc == 0 && SSL_CTX_dane_enable(ctx) <= 0) {
        buf_puts(err, "cannot enable DANE in the TLS client context");
        rc = -1;
    }
    buf_free(&why);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, smtp_tls_verify_cb);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, smtp_tls_new_session);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

/* smtp_tls_open - see smtp_tls.h */
int smtp_tls_open(const struct config *cfg, struct smtp_tls **out, buf_t *err)
{
    struct smtp_tls *t;
    enum smtp_tls_level level;
    size_t nmaps;
    char *const *maps = config_list(cfg, "smtp_tls_policy_maps", &nmaps);

    *out = NULL;
    if (smtp_tls_level_parse(config_str(cfg, "smtp_tls_security_level"), &level) < 0) {
        buf_printf(err,
                   "smtp_tls_security_level = %s: not one of none, may, encrypt, dane, "
                   "dane-only, verify, secure",
                   config_str(cfg, "smtp_tls_security_level"));
        return -1;
    }
    if (level == SMTP_TLS_NONE && nmaps == 0)
        return 0;
    if (smtp_tls_conn_index < 0)
        smtp_tls_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, smtp_tls_conn_free);
    t = xcalloc(1, sizeof(*t));
    t->level = level;
    t->loglevel = config_int(cfg, "smtp_tls_loglevel");
    t->cache_timeout = config_time(cfg, "smtp_tls_session_cache_timeout");
    t->servername = xstrdup(config_str(cfg, "smtp_tls_servername"));
    t->verify_match = smtp_tls_match_param(cfg, "smtp_tls_verify_cert_match");
    t->secure_match = smtp_tls_match_param(cfg, "smtp_tls_secure_cert_match");
    if ((t->ctx = smtp_tls_context(cfg, err)) == NULL) {
        smtp_tls_close(t);
        return -1;
    }
    if (nmaps > 0) {
        if (table_list_open(&t->maps, maps, nmaps, 0, err) < 0) {
            smtp_tls_close(t);
            return -1;
        }
        t->have_maps = 1;
    }
    *out = t;
    return 0;
}

/* smtp_tls_close - see smtp_tls.h */
void smtp_tls_close(struct smtp_tls *t)
{
    if (t == NULL)
        return;
    while (t->cached > 0)
        smtp_tls_cache_drop(t, 0);
    if (t->have_maps)
        table_list_close(&t->maps);
    SSL_CTX_free(t->ctx);
    free(t->servername);
    free(t->verify_match);
    free(t->secure_match);
    free(t);
}

/* smtp_tls_policy_value - "LEVEL [match=a:b] [protocols=x] [ciphers=y]" into p */
static int smtp_tls_policy_value(const char *value, struct smtp_tls_policy *p, buf_t *err)
{
    char *copy = xstrdup(value);
    char *save = NULL;
    int rc = 0, first = 1;

    for (char *w = strtok_r(copy, " \t", &save); w && rc == 0; w = strtok_r(NULL, " \t", &save)) {
        const char *eq = strchr(w, '=');
        char *dst = NULL;
        size_t size = 0;
        if (first) {
            first = 0;
            if (smtp_tls_level_parse(w, &p->level) < 0) {
                buf_printf(err, "unknown security level \"%s\"", w);
                rc = -1;
            }
            continue;
        }
        if (eq && strncasecmp(w, "match=", 6) == 0)
            dst = p->match, size = sizeof(p->match);
        else if (eq && strncasecmp(w, "protocols=", 10) == 0)
            dst = p->protocols, size = sizeof(p->protocols);
        else if (eq && strncasecmp(w, "ciphers=", 8) == 0)
            dst = p->ciphers, size = sizeof(p->ciphers);
        if (dst == NULL || eq[1] == 0 || (size_t)snprintf(dst, size, "%s", eq + 1) >= size) {
            buf_printf(err, "unknown or bad attribute \"%s\"", w);
            rc = -1;
        }
    }
    if (rc == 0 && first) {
        buf_puts(err, "empty entry");
        rc = -1;
    }
    free(copy);
    return rc;
}

/* smtp_tls_policy_lookup - one key of smtp_tls_policy_maps: 1 found (p
 * set), 0 not, SMTP_TLS_POLICY_BAD or SMTP_TLS_POLICY_TEMPFAIL with err */
static int smtp_tls_policy_lookup(struct smtp_tls *t, const char *key, struct smtp_tls_policy *p,
                                  buf_t *err)
{
    buf_t value = BUF_INIT, why = BUF_INIT;
    enum table_result r = table_list_lookup(&t->maps, key, &value);
    int rc = 0;

    if (r == TABLE_TEMPFAIL) {
        buf_printf(err, "smtp_tls_policy_maps lookup of \"%s\" failed", key);
        rc = SMTP_TLS_POLICY_TEMPFAIL;
    } else if (r == TABLE_FOUND) {
        rc = 1;
        if (smtp_tls_policy_value(buf_cstr(&value), p, &why) < 0) {
            buf_printf(err, "smtp_tls_policy_maps entry for \"%s\": %s", key, buf_cstr(&why));
            rc = SMTP_TLS_POLICY_BAD;
        }
        p->from_map = 1;
    }
    buf_free(&value);
    buf_free(&why);
    return rc;
}

/* smtp_tls_policy_find - see smtp_tls.h */
int smtp_tls_policy_find(struct smtp_tls *t, const char *nexthop, const char *host,
                         struct smtp_tls_policy *p, buf_t *err)
{
    buf_t key = BUF_INIT;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    p->level = t ? t->level : SMTP_TLS_NONE;
    if (t == NULL || !t->have_maps)
        return 0;
    rc = smtp_tls_policy_lookup(t, nexthop, p, err);
    if (rc == 0 && strcmp(nexthop, host) != 0)
        rc = smtp_tls_policy_lookup(t, host, p, err);
    for (const char *dot = strchr(host, '.'); rc == 0 && dot && dot[1];
         dot = strchr(dot + 1, '.')) {
        buf_set(&key, dot);
        rc = smtp_tls_policy_lookup(t, buf_cstr(&key), p, err);
    }
    buf_free(&key);
    if (rc == 0)
        p->from_map = 0;
    return rc < 0 ? rc : SMTP_TLS_POLICY_OK;
}

/* smtp_tls_is_ip - an address literal (no SNI, no name to match) */
static int smtp_tls_is_ip(const char *name)
{
    unsigned char a[16];

    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* smtp_tls_add_names - the reference names of the match list ("hostname",
 * "nexthop", "dot-nexthop" or names) on ssl; the number added */
static int smtp_tls_add_names(SSL *ssl, const char *match, const struct smtp_tls_peer *peer)
{
    char *copy = xstrdup(match);
    char *save = NULL;
    buf_t name = BUF_INIT;
    int n = 0;

    for (char *w = strtok_r(copy, ":, \t", &save); w && n < SMTP_TLS_NAMES_MAX;
         w = strtok_r(NULL, ":, \t", &save)) {
        buf_reset(&name);
        if (strcasecmp(w, "hostname") == 0)
            buf_puts(&name, peer->hostname);
        else if (strcasecmp(w, "nexthop") == 0)
            buf_puts(&name, peer->nexthop);
        else if (strcasecmp(w, "dot-nexthop") == 0)
            buf_printf(&name, ".%s", peer->nexthop);
        else
            buf_puts(&name, w);
        if (name.len > 0 && !smtp_tls_is_ip(buf_cstr(&name)) &&
            SSL_add1_host(ssl, buf_cstr(&name)) == 1)
            n++;
    }
    buf_free(&name);
    free(copy);
    return n;
}

/* smtp_tls_sni - the server name to send, or NULL */
static const char *smtp_tls_sni(const struct smtp_tls *t, const struct smtp_tls_peer *peer)
{
    const char *name = t->servername;

    if (peer->tlsa_count > 0 || strcasecmp(name, "hostname") == 0)
        name = peer->hostname;
    else if (strcasecmp(name, "nexthop") == 0)
        name = peer->nexthop;
    if (name[0] == 0 || smtp_tls_is_ip(name) || name[0] == '/')
        return NULL;
    return name;
}

/* smtp_tls_cache_key - what a resumable session must have in common */
static void smtp_tls_cache_key(const struct smtp_tls_peer *peer, const char *sni, buf_t *out)
{
    const struct smtp_tls_policy *p = peer->policy;
    unsigned long h = 5381;

    for (size_t i = 0; i < peer->tlsa_count; i++) {
        const struct dane_tlsa *r = &peer->tlsa[i];
        h = h * 33 + r->usage * 7u + r->selector * 3u + r->mtype;
        for (size_t k = 0; k < r->len; k++)
            h = h * 33 + r->data[k];
    }
    buf_printf(out, "%s|%s|%s|%s|%s%s|%s|%s|%s|%zu:%lx", peer->relay, sni ? sni : "",
               peer->hostname, peer->nexthop, smtp_tls_level_name(p->level),
               p->check_names ? "+names" : "", p->match, p->protocols, p->ciphers, peer->tlsa_count,
               h);
}

/* smtp_tls_ssl_options - the policy's own protocols and ciphers; -1 with err */
static int smtp_tls_ssl_options(SSL *ssl, const struct smtp_tls_policy *p, buf_t *err)
{
    buf_t why = BUF_INIT;
    int min = 0, max = 0, rc = 0;

    if (p->protocols[0] && tls_protocol_range(p->protocols, &min, &max, &why) < 0) {
        buf_printf(err, "smtp_tls_policy_maps protocols=%s: %s", p->protocols, buf_cstr(&why));
        rc = -1;
    } else if (p->protocols[0]) {
        SSL_set_min_proto_version(ssl, min);
        SSL_set_max_proto_version(ssl, max);
    }
    if (rc == 0 && p->ciphers[0] && SSL_set_cipher_list(ssl, p->ciphers) != 1) {
        buf_printf(err, "smtp_tls_policy_maps ciphers=%s: no cipher OpenSSL knows", p->ciphers);
        rc = -1;
    }
    buf_free(&why);
    return rc;
}

/* smtp_tls_ssl_dane - the TLSA records on ssl (RFC 7672: DANE-EE without
 * name checks); -1 with err */
static int smtp_tls_ssl_dane(SSL *ssl, const struct smtp_tls_peer *peer, buf_t *err)
{
    int added = 0;

    if (SSL_dane_enable(ssl, peer->hostname) <= 0) {
        buf_puts(err, "cannot enable DANE for the connection");
        return -1;
    }
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    if (peer->nexthop[0] && strcasecmp(peer->nexthop, peer->hostname) != 0)
        SSL_add1_host(ssl, peer->nexthop);
    for (size_t i = 0; i < peer->tlsa_count; i++) {
        const struct dane_tlsa *r = &peer->tlsa[i];
        if (SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0)
            added++;
    }
    if (added == 0) {
        buf_puts(err, "no TLSA record could be used");
        return -1;
    }
    return 0;
}

/* smtp_tls_ssl_new - see smtp_tls.h */
SSL *smtp_tls_ssl_new(struct smtp_tls *t, const struct smtp_tls_peer *peer, buf_t *err)
{
    const struct smtp_tls_policy *p = peer->policy;
    SSL *ssl = SSL_new(t->ctx);
    struct smtp_tls_conn *c;
    const char *sni = smtp_tls_sni(t, peer);
    buf_t key = BUF_INIT;
    long i;

    if (ssl == NULL) {
        tls_errors(err);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->t = t;
    SSL_set_ex_data(ssl, smtp_tls_conn_index, c);
    if (smtp_tls_ssl_options(ssl, p, err) < 0 || (sni && SSL_set_tlsext_host_name(ssl, sni) != 1)) {
        SSL_free(ssl);
        return NULL;
    }
    if (peer->tlsa_count > 0) {
        if (smtp_tls_ssl_dane(ssl, peer, err) < 0) {
            SSL_free(ssl);
            return NULL;
        }
        c->names = 1;
    } else if (p->level == SMTP_TLS_VERIFY || p->level == SMTP_TLS_SECURE || p->check_names) {
        const char *match = p->match[0]                   ? p->match
                            : p->level == SMTP_TLS_VERIFY ? t->verify_match
                                                          : t->secure_match;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        c->names = smtp_tls_add_names(ssl, match, peer) > 0;
    }
    smtp_tls_cache_key(peer, sni, &key);
    c->key = xstrdup(buf_cstr(&key));
    buf_free(&key);
    if (t->cache_timeout > 0 && (i = smtp_tls_cache_find(t, c->key)) >= 0)
        SSL_set_session(ssl, t->cache[i].sess);
    return ssl;
}

/* smtp_tls_result - see smtp_tls.h */
enum smtp_tls_trust smtp_tls_result(SSL *ssl, buf_t *why)
{
    struct smtp_tls_conn *c = SSL_get_ex_data(ssl, smtp_tls_conn_index);
    X509 *cert = SSL_get0_peer_certificate(ssl);
    long vr = SSL_get_verify_result(ssl);
    int names = c && c->names;

    if (cert == NULL) {
        buf_puts(why, "the server sent no certificate");
        return SMTP_TLS_ANONYMOUS;
    }
    if (SSL_session_reused(ssl) || c == NULL) { /* no callback ran: the session's result */
        if (vr == X509_V_OK)
            return names ? SMTP_TLS_VERIFIED : SMTP_TLS_TRUSTED;
        buf_puts(why, X509_verify_cert_error_string(vr));
        return vr == X509_V_ERR_HOSTNAME_MISMATCH ? SMTP_TLS_TRUSTED : SMTP_TLS_UNTRUSTED;
    }
    if (c->chain_bad) {
        buf_puts(why, X509_verify_cert_error_string(c->first_err));
        return SMTP_TLS_UNTRUSTED;
    }
    if (c->name_bad) {
        buf_puts(why, X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
        return SMTP_TLS_TRUSTED;
    }
    if (!names)
        buf_puts(why, "no name was asked for");
    return names ? SMTP_TLS_VERIFIED : SMTP_TLS_TRUSTED;
}

/* smtp_tls_expired - see smtp_tls.h */
int smtp_tls_expired(SSL *ssl)
{
    struct smtp_tls_conn *c = SSL_get_ex_data(ssl, smtp_tls_conn_index);
    long err = SSL_session_reused(ssl) || c == NULL ? SSL_get_verify_result(ssl) : c->first_err;

    return err == X509_V_ERR_CERT_HAS_EXPIRED;
}

/* smtp_tls_trust_name - see smtp_tls.h */
const char *smtp_tls_trust_name(enum smtp_tls_trust trust, int lower)
{
    static const char *const upper[] = {"Anonymous", "Untrusted", "Trusted", "Verified"};
    static const char *const low[] = {"anonymous", "untrusted", "trusted", "verified"};

    return lower ? low[trust] : upper[trust];
}

/* smtp_tls_log_handshake - see smtp_tls.h */
void smtp_tls_log_handshake(struct smtp_tls *t, SSL *ssl, enum smtp_tls_trust trust,
                            const char *relay)
{
    buf_t desc = BUF_INIT, fp = BUF_INIT;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    char subject[256], issuer[256];

    if (t->loglevel < 1)
        return;
    tls_describe(ssl, &desc);
    log_info("%s TLS connection established to %s: %s%s", smtp_tls_trust_name(trust, 0), relay,
             buf_cstr(&desc), SSL_session_reused(ssl) ? " (resumed)" : "");
    if (t->loglevel >= 2 && cert) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof(issuer));
        tls_fingerprint(cert, &fp);
        log_info("server certificate of %s: subject=%s, issuer=%s, fingerprint=sha256:%s", relay,
                 subject, issuer, buf_cstr(&fp));
    }
    buf_free(&desc);
    buf_free(&fp);
}

/* smtp_tls_bev_done - see smtp_tls.h */
void smtp_tls_bev_done(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

    if (ssl)
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

/* smtp_tls_ssf - see smtp_tls.h */
unsigned smtp_tls_ssf(SSL *ssl)
{
    int alg = 0;
    int bits = SSL_CIPHER_get_bits(SSL_get_current_cipher(ssl), &alg);

    return bits > 0 ? (unsigned)bits : 0;
}
