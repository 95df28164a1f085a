/*
 * auth - tern-auth, the SASL exchanges of SMTP AUTH (docs/auth.md,
 * docs/internals.md "auth protocol").
 *
 * A password check may block for as long as saslauthd, PAM or a directory
 * behind them takes, so it never runs in smtpd's event loop: smtpd connects
 * to private/auth once per AUTH command and tern-auth forks a process for
 * that exchange (main.c).  The process (exchange.c) runs the exchange with
 * Cyrus SASL, blocking as it likes, each step bounded by auth_time_limit
 * (SIGALRM ends the process), and exits.  A hung check so stalls one
 * exchange, never another client.
 *
 * Cyrus is initialised once in the parent, as root (it reads
 * smtpd_sasl_path.conf and loads its plugins); then the parent drops to
 * mail_owner with its supplementary groups (Debian's sasl group opens
 * saslauthd's socket) and without chroot (the sasldb file, saslauthd's
 * socket and PAM live outside the queue); each exchange inherits the set-up.
 */
#ifndef TERN_AUTH_AUTH_H
#define TERN_AUTH_AUTH_H

#include <stddef.h>

#include "auth_sasl.h"

/* the SASL policy of one listener with smtpd_sasl_auth_enable = yes */
struct auth_policy {
    const char *listener; /* "smtpd", "submission", "smtps" */
    struct auth_sasl_settings sasl;
    /* the client's time to answer a 334: the listener's
     * smtpd_sasl_response_timeout (at most its smtpd_timeout) */
    long long response_timeout;
};

/* what an exchange process needs from the parent */
struct auth_exchange_env {
    const struct auth_policy *policies;
    size_t policy_count;
    long long time_limit; /* auth_time_limit, seconds */
};

/* auth_exchange_run - the forked process: serve the exchange on fd (the
 * connection from smtpd) and return when it is over */
void auth_exchange_run(const struct auth_exchange_env *env, int fd);

/* auth_peer_gone - 1 when smtpd has closed its end of fd (the client left,
 * or smtpd gave up): there is nobody to do the work for */
int auth_peer_gone(int fd);

#endif
