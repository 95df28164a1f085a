/*
 * reject_reason - the label of a refusal (see reject_reason.h).
 */
#include <stdio.h>
#include <string.h>

#include "reject_reason.h"

/* a restriction name and the family it counts in */
static const struct {
    const char *prefix;
    const char *reason;
} reject_families[] = {
    {"reject_unauth_destination", "relay"},
    {"defer_unauth_destination", "relay"},
    {"reject_rbl_client", "rbl"},
    {"reject_rhsbl_", "rbl"},
    {"reject_dnsbl", "rbl"},
    {"access", "access"},
    {"check_", "access"}, /* check_*_access; check_policy_service is matched first */
    {"reject_unlisted_recipient", "unknown_user"},
    {"reject_unverified_recipient", "unknown_user"},
    {"reject_sender_login_mismatch", "auth"},
    {"reject_unauth_pipelining", "protocol"},
};

/* reject_reason_of_log - the family of the restriction that decided */
static void reject_reason_of_log(const char *log, char *out, size_t n)
{
    size_t word = strcspn(log, " ");

    if (strncmp(log, "check_policy_service", word) == 0 && word == 20) {
        snprintf(out, n, "policy");
        return;
    }
    for (size_t i = 0; i < sizeof(reject_families) / sizeof(reject_families[0]); i++) {
        size_t len = strlen(reject_families[i].prefix);
        if (word >= len && strncmp(log, reject_families[i].prefix, len) == 0) {
            snprintf(out, n, "%s", reject_families[i].reason);
            return;
        }
    }
    if (word == 0)
        snprintf(out, n, "policy");
    else
        snprintf(out, n, "%.*s", (int)word, log);
}

/* reject_reason_of_reply - the family by the enhanced status code
 * (RFC 3463) of a refusal no restriction made */
static const char *reject_reason_of_reply(const char *reply)
{
    const char *code = strchr(reply, ' ');
    const char *rest = ""; /* the enhanced code after its class: ".1.1 ..." */

    if (code != NULL && code[1] != 0 && code[2] != 0) /* "550 " ends at code[1] */
        rest = code + 2;
    if (strncmp(rest, ".1.1 ", 5) == 0 || strncmp(rest, ".1.0 ", 5) == 0)
        return "unknown_user";
    if (strncmp(rest, ".2.3 ", 5) == 0 || strncmp(reply, "552 ", 4) == 0)
        return "size";
    if (strncmp(rest, ".5.3 ", 5) == 0)
        return "too_many_recipients";
    if (strncmp(rest, ".7.0 ", 5) == 0 || strncmp(rest, ".7.8 ", 5) == 0)
        return "auth";
    if (strncmp(rest, ".7.1 ", 5) == 0)
        return "relay";
    if (strncmp(rest, ".5.", 3) == 0)
        return "protocol";
    if (strncmp(rest, ".1.", 3) == 0)
        return "address";
    return "other";
}

void smtpd_reject_reason(const char *policy_log, const char *reply, char *out, size_t n)
{
    if (policy_log != NULL && *policy_log != 0)
        reject_reason_of_log(policy_log, out, n);
    else
        snprintf(out, n, "%s", reject_reason_of_reply(reply ? reply : ""));
}
