/*
 * etrn_index - qmgr's per-domain index of the deferred queue, for ETRN
 * (RFC 1985; docs/queue.md "The ETRN index").
 *
 * For each recipient domain (lower case) the queue IDs of the deferred
 * messages that have a pending recipient there, so that "ETRN domain"
 * finds its messages without reading the deferred queue.  qmgr fills it at
 * start from deferred/ and whenever it defers a message, and forgets an ID
 * as soon as the message is loaded again (a queue run, a flush, ETRN).  An
 * ID whose file went away behind qmgr's back (tern queue delete, hold) is
 * simply not found when ETRN tries to take it.
 *
 * Callers: qmgr/etrn.c only.  Pure data structure: no I/O, no global state;
 * strings are copied.  Adding, forgetting and asking for one domain cost
 * O(1) on average plus the answer; asking for a domain and its subdomains
 * ("@domain") walks the domains, not the messages.
 */
#ifndef TERN_QMGR_ETRN_INDEX_H
#define TERN_QMGR_ETRN_INDEX_H

#include <stddef.h>

#include "buf.h"

struct etrn_index;

/* qmgr_etrn_index_new - an empty index (never NULL: allocation failure is fatal) */
struct etrn_index *qmgr_etrn_index_new(void);
void qmgr_etrn_index_free(struct etrn_index *x);
/* qmgr_etrn_index_add - message id has a pending recipient in domain (case
 * ignored); adding the same pair again changes nothing */
void qmgr_etrn_index_add(struct etrn_index *x, const char *domain, const char *id);
/* qmgr_etrn_index_forget - id leaves the deferred queue: every domain forgets it */
void qmgr_etrn_index_forget(struct etrn_index *x, const char *id);
/* qmgr_etrn_index_find - append the IDs for domain (and, with subdomains,
 * for every domain below it) to ids, each once, NUL-terminated one after
 * another; returns how many */
size_t qmgr_etrn_index_find(struct etrn_index *x, const char *domain, int subdomains, buf_t *ids);
/* qmgr_etrn_index_counts - how many domains and messages it holds */
void qmgr_etrn_index_counts(const struct etrn_index *x, size_t *domains, size_t *messages);

#endif
