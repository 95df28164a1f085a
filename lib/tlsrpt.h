/*
 * tlsrpt - TLS-RPT (RFC 8460) session outcomes counted per UTC day, policy
 * domain, policy type, result and MX host, kept in data_directory/tlsrpt/
 * (an LMDB environment: data.mdb, lock.mdb) for `tern tlsrpt`.
 *
 * Writer: tern-smtp opens the store with tlsrpt_open before it drops its
 * privileges (the directory and files are then given to the owner of
 * data_directory, the mail_owner, so a later start as that user can open
 * them too), counts each session's outcome in memory with tlsrpt_count and
 * writes the counts with tlsrpt_flush: one LMDB write transaction that adds
 * them to the stored counts and drops every day older than TLSRPT_KEEP_DAYS.
 * Open the store in the process that uses it: an LMDB environment must not
 * cross a fork, nor be opened twice in one process.
 *
 * Reader: tlsrpt_walk opens the store read-only in its own process (the
 * `tern` command) while a writer runs: LMDB readers see the last committed
 * flush and never block the writer.
 *
 * Stored entries: key "YYYY-MM-DD\0domain\0type\0result\0mx\0" (so the keys
 * sort by day), value a native-endian uint64_t count.  Every string is
 * checked before it is counted: a domain or MX host is lower-cased, loses a
 * trailing dot and must be a printable word of at most TLSRPT_MAX_NAME
 * bytes; policy_type and result must be one of RFC 8460's words (section
 * 4.3, and "success").  Anything else is not counted.  At most
 * TLSRPT_MAX_PENDING distinct entries wait in memory; one more flushes
 * first (a failure is logged and the pending counts are dropped).
 *
 * Functions return 0 on success and -1 with the reason appended to err.
 */
#ifndef TERN_TLSRPT_H
#define TERN_TLSRPT_H

#include <stdint.h>
#include <time.h>

#include "buf.h"

#define TLSRPT_KEEP_DAYS 30 /* days kept, today included */
#define TLSRPT_MAX_NAME 255 /* a domain or MX host name */
#define TLSRPT_MAX_PENDING 4096

struct tlsrpt;

/* one stored count, as tlsrpt_walk gives it */
struct tlsrpt_entry {
    const char *day;         /* "YYYY-MM-DD" (UTC) */
    const char *domain;      /* the policy domain */
    const char *policy_type; /* "sts", "tlsa" or "no-policy-found" */
    const char *result;      /* "success" or an RFC 8460 result type */
    const char *mx_host;     /* "" when not known */
    uint64_t count;
};

/* tlsrpt_walk_fn - called once per entry in key order (day, domain, type,
 * result, mx); return 0 to go on, anything else stops the walk */
typedef int (*tlsrpt_walk_fn)(const struct tlsrpt_entry *e, void *ctx);

/* tlsrpt_open - open data_directory/tlsrpt/, creating it (and a missing
 * data_directory, mode 0700) as needed; NULL with err */
struct tlsrpt *tlsrpt_open(const char *data_directory, buf_t *err);
/* tlsrpt_count - one more session outcome for policy_domain, counted in
 * memory for today (UTC); policy_type "sts", "tlsa" or "no-policy-found";
 * result "success" or an RFC 8460 result type; mx_host may be "" */
void tlsrpt_count(struct tlsrpt *t, const char *policy_domain, const char *policy_type,
                  const char *result, const char *mx_host);
/* tlsrpt_count_at - the same for the UTC day of when */
void tlsrpt_count_at(struct tlsrpt *t, time_t when, const char *policy_domain,
                     const char *policy_type, const char *result, const char *mx_host);
/* tlsrpt_flush - add what was counted since the last flush to the store and
 * drop the days older than TLSRPT_KEEP_DAYS; 0 ok (the pending counts are
 * gone), -1 with err (they are kept for the next try) */
int tlsrpt_flush(struct tlsrpt *t, buf_t *err);
/* tlsrpt_flush_at - the same with now as the current time (tests) */
int tlsrpt_flush_at(struct tlsrpt *t, time_t now, buf_t *err);
/* tlsrpt_close - flush (a failure is logged) and close; NULL is ignored */
void tlsrpt_close(struct tlsrpt *t);

/* tlsrpt_walk - every stored count of data_directory/tlsrpt/, read-only;
 * a store that does not exist has no entries.  0 ok (also when fn stopped
 * the walk), -1 with err */
int tlsrpt_walk(const char *data_directory, tlsrpt_walk_fn fn, void *ctx, buf_t *err);

/* tlsrpt_result_valid - "success" or one of RFC 8460's result types */
int tlsrpt_result_valid(const char *result);
/* tlsrpt_policy_type_valid - "sts", "tlsa" or "no-policy-found" */
int tlsrpt_policy_type_valid(const char *policy_type);

#endif
