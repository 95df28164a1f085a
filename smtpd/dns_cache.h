/*
 * dns_cache - the answers of one smtpd worker's DNS list, domain and MX
 * queries, shared by its sessions.
 *
 * Many sessions ask the same questions at once (every connection of one
 * client asks the same five DNS lists; every message from one domain asks
 * for that domain): each name is asked once while its query is out, and a
 * found or not-found answer is kept SMTPD_DNS_CACHE_TTL seconds (Postfix's
 * smtpd keeps them for the life of its process).  Temporary failures are
 * not kept.  Fewer queries also means smaller bursts: a DNS server that
 * drops queries under a burst makes the asker wait dns_timeout.
 */
#ifndef TERN_SMTPD_DNS_CACHE_H
#define TERN_SMTPD_DNS_CACHE_H

#include "policy.h"

struct dns_ctx;
struct smtpd_dns_cache;
struct smtpd_dns_waiter;

#define SMTPD_DNS_CACHE_TTL 60    /* seconds an answer is used */
#define SMTPD_DNS_CACHE_MAX 50000 /* answers kept at most */

/* status 0 found (value: the records, space separated), 1 not found, -1
 * failed (value: why) */
typedef void (*smtpd_dns_cache_fn)(void *ctx, int status, const char *value);

struct smtpd_dns_cache *smtpd_dns_cache_new(struct dns_ctx *dns);
/* smtpd_dns_cache_free - cancel the queries, forget the waiters (no callback) */
void smtpd_dns_cache_free(struct smtpd_dns_cache *c);
/* smtpd_dns_cache_ask - a POLICY_NEED_A, _TXT, _DOMAIN or _MX question for
 * target, cached under key.  1: answered from the cache (*status, *value
 * set; no callback).  0: fn(ctx, ...) is called once from the event loop,
 * unless smtpd_dns_cache_forget(*waiter) comes first. */
int smtpd_dns_cache_ask(struct smtpd_dns_cache *c, enum policy_need_kind kind, const char *key,
                        const char *target, smtpd_dns_cache_fn fn, void *ctx, int *status,
                        const char **value, struct smtpd_dns_waiter **waiter);
/* smtpd_dns_cache_forget - the asker is gone: no callback (the query goes
 * on and fills the cache) */
void smtpd_dns_cache_forget(struct smtpd_dns_waiter *w);

#endif
