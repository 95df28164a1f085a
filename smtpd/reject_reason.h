/*
 * reject_reason - the label of tern_smtpd_rejects (lib/stats.h) for one
 * refusal: which check refused, in a few words an operator alerts on
 * ("relay", "rbl", "access", "unknown_user", "milter", "protocol", "auth",
 * ...), or the restriction's own name when it has no family
 * ("reject_non_fqdn_sender").  Pure: no I/O, so a unit test calls it.
 */
#ifndef TERN_SMTPD_REJECT_REASON_H
#define TERN_SMTPD_REJECT_REASON_H

#include <stddef.h>

/* smtpd_reject_reason - the reason of a refusal into out (size n):
 * policy_log is what decided (struct policy_result's log: "reject_rbl_client
 * bl.test", "access From:x"), or NULL when no restriction did; reply is the
 * reply line sent ("550 5.1.1 ..."), read for its codes when policy_log is
 * NULL */
void smtpd_reject_reason(const char *policy_log, const char *reply, char *out, size_t n);

#endif
