/*
 * smtpd_policy - lib/policy on smtpd's event loop: the client's name
 * (reverse DNS before the greeting), the DNS list queries started at
 * connect, and running a stage's restrictions without blocking.
 *
 * smtpd_policy_run evaluates a stage; when outside facts are needed (DNS
 * answers, a policy service, a sleep) the session stops reading
 * (SESSION_POLICY), the lookups run on the worker's loop, and the stage is
 * evaluated again as answers arrive.  done is called exactly once with the
 * verdict -- directly from smtpd_policy_run when nothing had to be waited
 * for -- and input is read again after it returns.  Answers are kept for
 * the session (a DNS list is asked once per connection).
 */
#ifndef TERN_SMTPD_SMTPD_POLICY_H
#define TERN_SMTPD_SMTPD_POLICY_H

#include "policy.h"

struct session;
struct smtpd_server;
struct config;

typedef void (*smtpd_policy_done_fn)(struct session *s, struct policy_result *r);

/* smtpd_policy_server_init - the worker's resolver (dns_servers,
 * dns_timeout) and policy service connections; fatal on a bad setting */
void smtpd_policy_server_init(struct smtpd_server *server, const struct config *cfg);
void smtpd_policy_server_free(struct smtpd_server *server);

/* smtpd_policy_connect - a new session: the reverse DNS lookup (holding the
 * greeting), DNS list prefetch, and with smtpd_delay_reject = no the
 * client restrictions (their refusal answers every later command) */
void smtpd_policy_connect(struct session *s);
/* smtpd_policy_named - the client's name is known (or given by XCLIENT): log
 * the connection, start the DNS lists, check the client; the greeting
 * waits for the verdict */
void smtpd_policy_named(struct session *s);
/* smtpd_policy_run - evaluate stage, then done(s, verdict) */
void smtpd_policy_run(struct session *s, enum policy_stage stage, smtpd_policy_done_fn done);
/* smtpd_policy_tables_answered - the remote tables' answers are in: a stage
 * that waited for them is evaluated again (smtpd_tables.c) */
void smtpd_policy_tables_answered(struct session *s);
/* smtpd_policy_facts - what the session knows, for lib/policy; without the
 * client certificate's relay_clientcerts lookup (ccert_verified is
 * POLICY_CCERT_NO): that is looked up only in the session's scope, when a
 * policy stage is evaluated */
void smtpd_policy_facts(const struct session *s, struct policy_facts *f);
/* smtpd_policy_merge - at DATA: the session's connect and HELO side
 * effects join the transaction's */
void smtpd_policy_merge(struct session *s);
/* smtpd_policy_cancel - forget the stage being evaluated (its continuation
 * will not run; lookups in flight still fill the cache) */
void smtpd_policy_cancel(struct session *s);
/* smtpd_policy_end - cancel lookups and free the session's policy state */
void smtpd_policy_end(struct session *s);
/* smtpd_policy_log_reject - the NOQUEUE line, and sendmail's
 * "ruleset=check_*" line for a verdict of the access file */
void smtpd_policy_log_reject(struct session *s, const char *stage, const struct policy_result *r,
                             const char *to);
/* smtpd_policy_keep - remember a verdict's side effects (DISCARD, HOLD,
 * PREPEND, REDIRECT) for the transaction and log its warnings (stage
 * "RCPT", ...; to: the recipient or NULL) */
void smtpd_policy_keep(struct session *s, const struct policy_result *r, const char *stage,
                       const char *to);

#endif
