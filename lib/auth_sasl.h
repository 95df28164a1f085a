/*
 * auth_sasl - tern's one way of running Cyrus SASL 2 as a server
 * (docs/auth.md).
 *
 * Three programs use it: tern-auth runs the SASL exchanges of SMTP AUTH;
 * tern-smtpd computes, once and as root, the mechanism list that EHLO
 * shows; `tern auth-test` checks a password exactly as tern-auth would.
 * Each calls auth_sasl_init once per process (as root, before dropping
 * privileges: it reads the application's config, smtpd_sasl_path.conf in
 * cyrus_sasl_config_path, and loads the plugins), then makes one
 * connection per exchange with auth_sasl_conn_new.
 *
 * Every connection gets the same policy: service "smtp", the server name
 * myhostname, the realm smtpd_sasl_local_domain (none when empty), no SASL
 * security layer (max_ssf 0), the security flags of
 * smtpd_sasl_security_options without TLS (plus noplaintext when
 * smtpd_tls_auth_only = yes: sendmail's AuthOptions p, so CRAM-MD5 stays
 * on offer and PLAIN/LOGIN wait for TLS) or smtpd_sasl_tls_security_options
 * with TLS (and the cipher's bits as SASL_SSF_EXTERNAL).  An authorization
 * identity other than the authentication identity is refused.
 *
 * Cyrus' own messages go to tern's log (warnings and errors, notices as
 * info; debug only with -v; never the levels that may show passwords).
 * Nothing here logs a password or a SASL blob.  Not thread-safe (neither is
 * the way tern uses Cyrus: one exchange per process at a time).
 */
#ifndef TERN_AUTH_SASL_H
#define TERN_AUTH_SASL_H

#include <sasl/sasl.h>

#include "buf.h"

struct config;

/* the SASL service name of SMTP (RFC 4954) */
#define AUTH_SASL_SERVICE "smtp"
/* the external SSF that stands for "TLS" where no real cipher is known yet */
#define AUTH_SASL_TLS_SSF 128

/* what became of one SASL step */
enum auth_sasl_status {
    AUTH_SASL_OK,       /* authenticated */
    AUTH_SASL_CONTINUE, /* send the challenge, wait for the next response */
    AUTH_SASL_FAIL,     /* refused: 535 */
    AUTH_SASL_TEMPFAIL, /* the check could not be made: 454 */
    AUTH_SASL_NOMECH,   /* no such mechanism here and now: 504 */
    AUTH_SASL_ENCRYPT,  /* the mechanism needs TLS: 538 */
};

/* one listener's SASL policy (see above) */
struct auth_sasl_settings {
    char *hostname;
    char *realm;          /* NULL: none */
    unsigned plain_flags; /* SASL_SEC_* without TLS */
    unsigned tls_flags;   /* SASL_SEC_* with TLS */
};

/* auth_sasl_init - sasl_server_init with tern's callbacks for the
 * application cfg names (smtpd_sasl_path, cyrus_sasl_config_path); once per
 * process.  -1 with err. */
int auth_sasl_init(const struct config *cfg, buf_t *err);
/* auth_sasl_done - release Cyrus (after the last connection is disposed) */
void auth_sasl_done(void);
/* auth_sasl_set_log_client - prefix Cyrus' log lines with "unknown[IP]: "
 * (NULL: no prefix) */
void auth_sasl_set_log_client(const char *ip);

/* auth_sasl_settings_load - the policy of one listener's view of the
 * config; -1 with err for an unknown security option */
int auth_sasl_settings_load(struct auth_sasl_settings *st, const struct config *view, buf_t *err);
void auth_sasl_settings_free(struct auth_sasl_settings *st);

/* auth_sasl_conn_new - a server connection with the policy for tls_ssf (0:
 * no TLS); client is "IP;PORT" or NULL.  NULL with err. */
sasl_conn_t *auth_sasl_conn_new(const struct auth_sasl_settings *st, unsigned tls_ssf,
                                const char *client, buf_t *err);
/* auth_sasl_mechanisms - the mechanisms a client may use with tls_ssf,
 * upper case, separated by spaces ("" when none); -1 with err */
int auth_sasl_mechanisms(const struct auth_sasl_settings *st, unsigned tls_ssf, buf_t *out,
                         buf_t *err);
/* auth_sasl_outcome - classify a result of sasl_server_start/step; for a
 * failure, reason gets the short text a client may see (never whether the
 * user exists) */
enum auth_sasl_status auth_sasl_outcome(int result, buf_t *reason);
/* auth_sasl_username - the authenticated (authorization) identity of conn,
 * non-printable bytes replaced by '?'; -1 when there is none */
int auth_sasl_username(sasl_conn_t *conn, buf_t *out);

/* auth_sasl_sasldb_check - after the privilege drop: when the SASL
 * application config uses sasldb (found by auth_sasl_init, as root), say
 * what is wrong with its file (world readable: AUTH-10; not readable by
 * this process) as one warning line per problem in warnings; 0 when
 * nothing is */
int auth_sasl_sasldb_check(const struct config *cfg, buf_t *warnings);

/* Shared with the SMTP client's SASL (smtp/smtp_sasl.c), so that both sides
 * read security options and pass Cyrus' messages on alike. */
/* auth_sasl_security_flags - the security options list param of view
 * (noanonymous, noplaintext, noactive, nodictionary, mutual_auth,
 * forward_secrecy) as SASL_SEC_* flags; -1 with err naming the parameter
 * and the unknown word */
int auth_sasl_security_flags(const struct config *view, const char *param, unsigned *out,
                             buf_t *err);
/* auth_sasl_log - a SASL_CB_LOG callback: Cyrus' messages into tern's log,
 * printable and bounded; the trace and password levels never */
int auth_sasl_log(void *context, int level, const char *message);

#endif
