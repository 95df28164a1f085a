/*
 * check_tls - the TLS part of `tern check`: for every listener that offers
 * TLS, the certificate and key files load as smtpd would load them (key
 * mode, key matches certificate, key size for the OpenSSL security level),
 * the certificates are within their validity period, the chain verifies
 * against the system's CAs and smtpd_tls_CAfile/CApath, the CA and CRL
 * files load, and the protocol and cipher lists parse.  A chain that does not verify (a self-signed
 * certificate) is a warning only: opportunistic TLS works with it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "check_tls.h"
#include "config.h"
#include "tls.h"

/* the string settings check_tls_listener reads */
static const char *check_tls_params[] = {"smtpd_tls_cert_file",
                                         "smtpd_tls_key_file",
                                         "smtpd_tls_CAfile",
                                         "smtpd_tls_CApath",
                                         "smtpd_tls_crl_file",
                                         "smtpd_tls_protocols",
                                         "smtpd_tls_mandatory_protocols",
                                         "smtpd_tls_ciphers",
                                         NULL};

/* certificates expiring sooner than this get a warning */
#define CHECK_TLS_EXPIRY_WARN (30 * 86400)

/* check_tls_when - a certificate time as text */
static void check_tls_when(const ASN1_TIME *t, char *out, size_t len)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(out, len, "(unreadable date)");
}

/* check_tls_dates - not yet valid or expired: a problem; expiring soon: a warning */
static int check_tls_dates(const char *what, X509 *cert)
{
    time_t soon = time(NULL) + CHECK_TLS_EXPIRY_WARN;
    char when[64];

    if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
        check_tls_when(X509_get0_notBefore(cert), when, sizeof(when));
        printf("%s: the certificate is not valid before %s\n", what, when);
        return 1;
    }
    check_tls_when(X509_get0_notAfter(cert), when, sizeof(when));
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        printf("%s: the certificate expired on %s\n", what, when);
        return 1;
    }
    if (X509_cmp_time(X509_get0_notAfter(cert), &soon) < 0)
        printf("warning: %s: the certificate expires on %s\n", what, when);
    return 0;
}

/* check_tls_chain - does leaf + chain verify against the trusted CAs? */
static void check_tls_chain(const char *what, const struct config *view, X509 *leaf,
                            STACK_OF(X509) * chain)
{
    const char *cafile = config_str(view, "smtpd_tls_CAfile");
    const char *capath = config_str(view, "smtpd_tls_CApath");
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    X509_STORE_set_default_paths(store);
    if (*cafile || *capath)
        X509_STORE_load_locations(store, *cafile ? cafile : NULL, *capath ? capath : NULL);
    if (X509_STORE_CTX_init(ctx, store, leaf, chain) == 1 && X509_verify_cert(ctx) != 1)
        printf("warning: %s: the certificate chain does not verify (%s): fine for "
               "opportunistic TLS, but clients that verify will refuse it\n",
               what, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* check_tls_policy - the protocol lists and the cipher list parse */
static int check_tls_policy(const char *listener, const struct config *view, SSL_CTX *ctx)
{
    static const char *params[] = {"smtpd_tls_protocols", "smtpd_tls_mandatory_protocols", NULL};
    buf_t why = BUF_INIT;
    int problems = 0;

    for (int i = 0; params[i] != NULL; i++) {
        if (tls_set_protocols(ctx, config_str(view, params[i]), &why) < 0) {
            printf("%s: listener %s: %s: %s\n", config_origin(view, params[i]), listener, params[i],
                   buf_cstr(&why));
            problems++;
        }
        buf_reset(&why);
    }
    if (tls_set_ciphers(ctx, config_str(view, "smtpd_tls_ciphers"),
                        config_list(view, "smtpd_tls_exclude_ciphers", NULL), &why) < 0) {
        printf("%s: listener %s: smtpd_tls_ciphers: %s\n", config_origin(view, "smtpd_tls_ciphers"),
               listener, buf_cstr(&why));
        problems++;
    }
    buf_free(&why);
    return problems;
}

/* check_tls_listener - one listener's policy, certificate, key, CAs and CRL */
static int check_tls_listener(const char *listener, const struct config *view)
{
    const char *cert = config_str(view, "smtpd_tls_cert_file");
    const char *key = config_str(view, "smtpd_tls_key_file");
    long long seclevel = config_int(view, "tls_openssl_security_level");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    buf_t why = BUF_INIT, what = BUF_INIT;
    int problems = 0;

    buf_printf(&what, "listener %s: smtpd_tls_cert_file %s", listener, cert);
    if (seclevel >= 0)
        SSL_CTX_set_security_level(ctx, (int)seclevel);
    problems += check_tls_policy(listener, view, ctx);
    if (tls_load_pairs(ctx, "smtpd_tls", cert, key, &why) < 0) {
        printf("listener %s: %s\n", listener, buf_cstr(&why));
        problems++;
    } else {
        int more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
        while (more == 1) {
            X509 *leaf = SSL_CTX_get0_certificate(ctx);
            STACK_OF(X509) *chain = NULL;
            SSL_CTX_get0_chain_certs(ctx, &chain);
            problems += check_tls_dates(buf_cstr(&what), leaf);
            check_tls_chain(buf_cstr(&what), view, leaf, chain);
            more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT);
        }
    }
    buf_reset(&why);
    if (tls_load_trust(ctx, "smtpd_tls", config_str(view, "smtpd_tls_CAfile"),
                       config_str(view, "smtpd_tls_CApath"), config_str(view, "smtpd_tls_crl_file"),
                       &why) < 0) {
        printf("listener %s: %s\n", listener, buf_cstr(&why));
        problems++;
    }
    buf_free(&why);
    buf_free(&what);
    SSL_CTX_free(ctx);
    return problems;
}

int check_tls(const struct config *cfg)
{
    int problems = 0;
    buf_t seen = BUF_INIT; /* "cert\nkey\n" of the listeners checked */

    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        buf_t err = BUF_INIT, pair = BUF_INIT;
        struct config *view;

        if (*config_list(cfg, l->param, NULL) == NULL)
            continue; /* the listener is off */
        if ((view = config_listener(cfg, l->name, &err)) == NULL) {
            printf("%s\n", buf_cstr(&err));
            problems++;
        } else if (*config_str(view, "smtpd_tls_cert_file") == '\0') {
            if (config_bool(view, "smtpd_tls_wrappermode")) {
                printf("listener %s: SMTPS needs smtpd_tls_cert_file and smtpd_tls_key_file\n",
                       l->name);
                problems++;
            }
        } else {
            /* listeners that share every TLS setting are checked once */
            for (const char **p = check_tls_params; *p != NULL; p++)
                buf_printf(&pair, "\n%s", config_str(view, *p));
            buf_printf(&pair, "\n%s\n", config_raw(view, "smtpd_tls_exclude_ciphers"));
            if (strstr(buf_cstr(&seen), buf_cstr(&pair)) == NULL) {
                problems += check_tls_listener(l->name, view);
                buf_append(&seen, pair.data, pair.len);
            }
        }
        config_free(view);
        buf_free(&err);
        buf_free(&pair);
    }
    buf_free(&seen);
    return problems;
}
