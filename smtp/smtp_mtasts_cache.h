/*
 * smtp_mtasts_cache - the MTA-STS policies tern-smtp has fetched, in one
 * LMDB file (data_directory/mta-sts.lmdb and its -lock file), so they
 * survive a restart (RFC 8461 5.1: a cached policy outlives its TXT record).
 * Used by smtp_mtasts.c only.
 *
 * Key: the domain, lower-case.  Value: "FETCHED MAX_AGE ID\n" then the
 * policy text as served (FETCHED in seconds since the epoch).  A record that
 * does not read back like this is removed as if it had expired.  At most
 * size_limit records: storing a new domain into a full cache evicts the
 * oldest fetch.  The file is opened once, before the privilege drop; when
 * run as root it is made owned by the owner user, who writes it afterwards.
 * Nothing read back is trusted further than the format: the caller parses
 * the policy text again.
 */
#ifndef TERN_SMTP_MTASTS_CACHE_H
#define TERN_SMTP_MTASTS_CACHE_H

#include "buf.h"

struct smtp_mtasts_cache;

/* one cached policy */
struct smtp_mtasts_cache_entry {
    buf_t id;   /* the TXT record's id it was fetched for */
    buf_t text; /* the policy file */
    long long fetched;
    long long max_age;
};

/* smtp_mtasts_cache_open - open or create path; owner: the user to own a
 * new file when running as root; NULL with err set on error */
struct smtp_mtasts_cache *smtp_mtasts_cache_open(const char *path, long long size_limit,
                                                 const char *owner, buf_t *err);
/* smtp_mtasts_cache_close - NULL is fine */
void smtp_mtasts_cache_close(struct smtp_mtasts_cache *c);
/* smtp_mtasts_cache_get - 0 and e filled (replacing its contents) when
 * domain has a policy unexpired at now; -1 otherwise (an expired or
 * unreadable record is removed) */
int smtp_mtasts_cache_get(struct smtp_mtasts_cache *c, const char *domain, long long now,
                          struct smtp_mtasts_cache_entry *e);
/* smtp_mtasts_cache_put - store e for domain; 0, or -1 logged */
int smtp_mtasts_cache_put(struct smtp_mtasts_cache *c, const char *domain,
                          const struct smtp_mtasts_cache_entry *e);
/* smtp_mtasts_cache_entry_free - release e's buffers */
void smtp_mtasts_cache_entry_free(struct smtp_mtasts_cache_entry *e);

#endif
