/*
 * policy_impl - what lib/policy's files share (not for other modules).
 *
 * policy.c        parsing the lists, the evaluation loop, the restrictions
 * policy_access.c access table values, key orders, sendmail's access file,
 *                 reply templates
 * policy_cache.c  the per-session answers and pending requests
 */
#ifndef TERN_POLICY_IMPL_H
#define TERN_POLICY_IMPL_H

#include "policy.h"
#include "table.h"

/* the state of one cached answer */
#define POLICY_CACHE_INFLIGHT 2

/* policy_cache_get - the answer of key: 0 found, 1 not found, -1 failed,
 * POLICY_CACHE_INFLIGHT while asked, 3 never asked; *value points into
 * the cache */
int policy_cache_get(struct policy_cache *c, const char *key, const char **value);
/* policy_cache_need - ask for a fact (once per key) */
void policy_cache_need(struct policy_cache *c, enum policy_need_kind kind, const char *key,
                       const char *target, const buf_t *request, long long seconds);

/* the key forms of an address (access maps): user+ext@domain,
 * user@domain, domain and its parents, user+ext@, user@ */
struct policy_keys {
    char **v;
    size_t count;
};
void policy_keys_address(const char *addr, const char *delimiters, struct policy_keys *k);
/* policy_keys_domain - domain, then its parents (a.b.c, b.c, c) */
void policy_keys_domain(const char *domain, struct policy_keys *k);
/* policy_keys_ip - 1.2.3.4, 1.2.3, 1.2, 1 (IPv6 likewise at ':') */
void policy_keys_ip(const char *ip, struct policy_keys *k);
void policy_keys_free(struct policy_keys *k);

/* policy_table_find - the first key of k found in the tables (each key
 * tried tagged with tag first when tag is non-NULL, then untagged when
 * untagged is set); pattern tables (regexp, cidr) get the first key
 * only.  *matched gets the key that matched (with its tag). */
enum table_result policy_table_find(struct table_list *l, const struct policy_keys *k,
                                    const char *tag, int untagged, buf_t *value, buf_t *matched);

/* policy_reply_sendmail - "CODE DSN ECHO... text" */
void policy_reply_sendmail(buf_t *out, const char *code, const char *dsn, const char *echo,
                           const char *text);

#endif
