/*
 * smtp_sasl - tern-smtp's SMTP AUTH client (RFC 4954) over Cyrus SASL 2
 * (docs/smtp-tls.md, "Authenticating to a smart host").
 *
 * tern-smtp calls smtp_sasl_open once at start-up, as root (it opens
 * smtp_sasl_password_maps before the privilege drop and runs
 * sasl_client_init); per delivery it finds the credentials with
 * smtp_sasl_credentials, and per connection that offers AUTH runs one
 * exchange: smtp_sasl_client_start gives the AUTH command line,
 * smtp_sasl_client_step answers each "334" challenge, smtp_sasl_client_free
 * ends it whatever the outcome.  The server's final reply (235, 535, ...)
 * is the session's to judge; this module never sees it.
 *
 * Policy: the mechanisms the server offers, cut by
 * smtp_sasl_mechanism_filter, are handed to Cyrus, which picks the
 * strongest that meets smtp_sasl_security_options (without TLS) or
 * smtp_sasl_tls_security_options (with TLS; the cipher's bits are the
 * external SSF, but 1 when those options say noplaintext, since Cyrus
 * waives noplaintext above 1 and Postfix users expect PLAIN refused then).
 * No SASL security layer is negotiated (max_ssf 0): TLS is the one.  Cyrus never prompts: the user
 * name and the password are given by callbacks, the realm is the first the server proposes.
 *
 * Secrets: the password never appears in a log line or in err.  The
 * module's own copies are wiped (explicit_bzero) when the exchange ends;
 * the caller's user/pass buffers and the command lines in out hold the
 * password (in the clear or base64) and are the caller's to wipe
 * (buf_wipe).  Every out buffer is wiped before it is filled.
 *
 * Nothing here blocks: the PLAIN, LOGIN, CRAM-MD5 and DIGEST-MD5 client
 * mechanisms are computation only.  Not thread-safe (Cyrus is not).
 */
#ifndef TERN_SMTP_SASL_H
#define TERN_SMTP_SASL_H

#include "buf.h"

struct config;
struct smtp_sasl;        /* the settings and the opened password tables */
struct smtp_sasl_client; /* one authentication exchange */

/* smtp_sasl_open - *out = NULL when smtp_sasl_auth_enable = no; else the
 * settings with smtp_sasl_password_maps opened now (before the privilege
 * drop) and sasl_client_init done once per process.  -1 with err on a
 * config error (an unknown security option word, no password maps, a table
 * that cannot be opened, Cyrus failing to start). */
int smtp_sasl_open(const struct config *cfg, struct smtp_sasl **out, buf_t *err);
/* smtp_sasl_close - close the tables; the last one open ends Cyrus' client */
void smtp_sasl_close(struct smtp_sasl *sasl);

/* smtp_sasl_credentials - the credentials for one delivery.  With
 * smtp_sender_dependent_authentication the sender address, then "@domain"
 * of the sender are looked up first (not for the null sender, "" or NULL);
 * then each key of the NULL-terminated keys in order (empty keys skipped).
 * Every table is asked for a key before the next key.  1 found: user and
 * pass set from the value "user:password" (the password is everything
 * after the first colon; no colon: an empty password); 0 none (user and
 * pass emptied); -1 a table lookup failed (err names the table and the key,
 * never a value). */
int smtp_sasl_credentials(struct smtp_sasl *sasl, const char *sender, const char *const *keys,
                          buf_t *user, buf_t *pass, buf_t *err);

/* smtp_sasl_client_start - choose a mechanism among server_mechs (the EHLO
 * AUTH line's words, space separated, any case; words that are not
 * mechanism names are ignored) that passes smtp_sasl_mechanism_filter and
 * the security options (tls ? the _tls_ ones : the plain ones; with tls the
 * SASL external SSF is tls_ssf), start it, and put the whole first command
 * line into out (replacing what was there): "AUTH MECH[
 * initial-response-base64]\r\n" ("=" for an empty initial response).  NULL
 * with err when no mechanism fits (err says what the server offered and
 * which options and filter left none) or SASL fails.  server_host is the
 * server's name for SASL (service "smtp"); user and pass are copied. */
struct smtp_sasl_client *smtp_sasl_client_start(struct smtp_sasl *sasl, const char *server_host,
                                                const char *server_mechs, int tls, unsigned tls_ssf,
                                                const char *user, const char *pass, buf_t *out,
                                                buf_t *err);
/* smtp_sasl_client_step - the server said "334 TEXT": TEXT (base64, may be
 * empty) in challenge; the response line (base64 + CRLF; just CRLF for an
 * empty response) into out (replacing what was there).  0 ok; -1 with err
 * (bad base64, SASL error): the caller then sends "*\r\n" and defers. */
int smtp_sasl_client_step(struct smtp_sasl_client *c, const char *challenge, buf_t *out,
                          buf_t *err);
/* smtp_sasl_client_mech - the mechanism chosen, upper case ("PLAIN") */
const char *smtp_sasl_client_mech(const struct smtp_sasl_client *c);
/* smtp_sasl_client_free - end the exchange; the copies of the password are
 * wiped.  NULL is ignored. */
void smtp_sasl_client_free(struct smtp_sasl_client *c);

#endif
