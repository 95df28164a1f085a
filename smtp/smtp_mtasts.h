/*
 * smtp_mtasts - MTA-STS (RFC 8461) for tern-smtp: a recipient domain's
 * policy, discovered, fetched and cached without ever blocking the event
 * loop.  The session asks before it resolves the MX; the parsing and the MX
 * matching are lib/mtasts.h.
 *
 * A lookup of DOMAIN (lower-cased here) asks lib/dns for the TXT record
 * "_mta-sts.DOMAIN" (RFC 8461 3.1: records not starting "v=STSv1" are
 * ignored; none, several or an invalid one mean no record).  A cached,
 * unexpired policy with the record's id answers without a fetch.  Otherwise
 * "https://mta-sts.DOMAIN/.well-known/mta-sts.txt" is fetched (RFC 8461 3.3)
 * with libcurl's multi interface on the event loop: mta-sts.DOMAIN resolved
 * by lib/dns (A, else AAAA) and handed to curl (CURLOPT_RESOLVE, so curl
 * never resolves), https only, port smtp_mta_sts_https_port, no redirects,
 * no proxy, the certificate verified against smtp_tls_CAfile /
 * smtp_tls_CApath (read at start-up, before the privilege drop; both empty:
 * the system store) for the name mta-sts.DOMAIN, status 200 only,
 * Content-Type text/plain, at most MTASTS_MAX_POLICY bytes, everything
 * within smtp_mta_sts_fetch_timeout.  A policy that parses is stored in
 * LMDB (data_directory/mta-sts.lmdb, key DOMAIN) and lives max_age seconds
 * from its fetch; at most smtp_mta_sts_cache_size policies are kept (the
 * oldest fetch is evicted).
 *
 * An unexpired cached policy also answers when the TXT lookup fails or
 * finds nothing (RFC 8461 5.1) and when a fetch fails.  A cached policy in
 * the last quarter of its max_age, or older than a day, is answered at once
 * and refreshed in the background.  Lookups of one domain at the same time
 * share one TXT query and one fetch.
 *
 * Log lines: "mta-sts: DOMAIN: policy id X mode enforce max_age N fetched"
 * and "mta-sts: DOMAIN: policy fetch failed: REASON".
 */
#ifndef TERN_SMTP_MTASTS_H
#define TERN_SMTP_MTASTS_H

#include "buf.h"
#include "mtasts.h"

struct event_base;
struct dns_ctx;
struct config;
struct smtp_mtasts;
struct smtp_mtasts_pending;

/* smtp_mtasts_create - NULL when smtp_mta_sts = no (err left empty) or on
 * error (err says why: the caller exits).  Opens the cache (creating it
 * owned by mail_owner when run as root) and reads the trust store: call it
 * before the privilege drop and chroot. */
struct smtp_mtasts *smtp_mtasts_create(struct event_base *base, struct dns_ctx *dns,
                                       const struct config *cfg, buf_t *err);
/* smtp_mtasts_free - stop every lookup (no callback is called), close the
 * cache; not from inside a smtp_mtasts_cb; NULL is fine */
void smtp_mtasts_free(struct smtp_mtasts *m);

/* the answer: policy NULL when the domain has no usable policy (no TXT
 * record and nothing cached, or the fetch failed with nothing cached).
 * fetch_error is "" except when a TXT record existed, nothing usable was
 * cached and the policy could not be fetched or parsed; then it is
 * "RESULT-TYPE: reason" with the RFC 8460 result type first
 * ("sts-policy-fetch-error", "sts-policy-invalid" or "sts-webpki-invalid")
 * for TLS-RPT, and the mail goes as without a policy (RFC 8461 5).  policy
 * belongs to the module and is valid during the callback only. */
typedef void (*smtp_mtasts_cb)(const struct mtasts_policy *policy, const char *fetch_error,
                               void *arg);

/* smtp_mtasts_lookup - the policy of domain, answered later from the event
 * loop (never from inside this call), exactly once unless cancelled; never
 * NULL.  The handle is valid until its callback starts or
 * smtp_mtasts_cancel. */
struct smtp_mtasts_pending *smtp_mtasts_lookup(struct smtp_mtasts *m, const char *domain,
                                               smtp_mtasts_cb cb, void *arg);
/* smtp_mtasts_cancel - the callback of p will not be called (a fetch in
 * progress still completes and fills the cache); not from p's own callback */
void smtp_mtasts_cancel(struct smtp_mtasts_pending *p);

#endif
