/*
 * table_proxy - remote tables (ldap:, pgsql:, socketmap:) and proxy:TYPE:NAME
 * tables, looked up through the lookup service tern-proxymap (private/proxymap).
 *
 * Which process talks to the directory:
 *   - A service (smtpd, cleanup, qmgr, local, smtp, ...) calls
 *     table_proxy_default(1) once at start.  From then on table_open of
 *     ldap:, pgsql: or socketmap: opens a proxy table: the lookups are asked of
 *     tern-proxymap, which keeps the connections (a small pool per table) and
 *     a TTL cache (proxymap_cache_ttl) shared by every process of the instance.
 *     proxy:TYPE:NAME always goes through tern-proxymap, for any TYPE.
 *   - tern-proxymap itself and the tools (tern map -q, tern check, tern trace,
 *     sendmail -bv) open ldap:/pgsql:/socketmap: directly (lib/table_ldap.c,
 *     table_pgsql.c, table_socketmap.c): blocking lookups bounded by the
 *     table's timeout.  A tool opens proxy:TYPE:NAME directly as TYPE:NAME too.
 *
 * Synchronous mode (no scope entered): a proxy lookup is one blocking round
 * trip to tern-proxymap (connected at first use, kept open), bounded by
 * proxymap_client_timeout.  For processes that do one thing at a time
 * (local's delivery workers, tools).
 *
 * Asynchronous mode, for processes that serve many sessions on one event
 * loop (smtpd, cleanup, qmgr, smtp).  The consumer's code that looks tables
 * up (lib/policy, lib/route) stays synchronous and deterministic; it is run
 * inside a scope and run again when the answers are in:
 *
 *     table_proxy_scope_enter(scope);
 *     verdict = evaluate(...);          // lookups consult the scope
 *     table_proxy_scope_leave();
 *     if (table_proxy_scope_pending(scope)) {
 *         // a remote table did not know the answer yet: the lookup gave
 *         // TABLE_TEMPFAIL, so verdict is a temporary failure -- ignore it
 *         table_proxy_scope_wait(scope, base, again_cb, ctx);
 *         return;                       // again_cb runs evaluate() again
 *     }
 *
 * Inside a scope a proxy lookup returns the scope's answer for (table, key)
 * when it has one, else records the request in the scope and returns
 * TABLE_TEMPFAIL.  table_proxy_scope_wait sends every recorded request at
 * once over one non-blocking connection per process and calls done(ctx)
 * once, from the event loop, when every one of them is answered; an answer
 * that fails (service down, timeout, table error) is stored as
 * TABLE_TEMPFAIL, so the evaluation run again ends in a temporary failure
 * (451 4.3.0, deferral): never "not found", never an accept.  Answers stay
 * in the scope until table_proxy_scope_reset (smtpd: each new transaction,
 * each VRFY or EXPN outside one, and a scope of SMTPD_TABLES_MAX_ANSWERS;
 * cleanup: each message; qmgr: each routing pass), so an evaluation that
 * needs a chain of lookups (virtual alias recursion) makes progress one
 * round trip at a time and never loops.  A scope has at most one wait out
 * at a time; table_proxy_scope_free cancels it (done is not called).
 * Not thread-safe: one event loop per process.
 */
#ifndef TERN_TABLE_PROXY_H
#define TERN_TABLE_PROXY_H

#include "buf.h"
#include "table.h"

struct event_base;
struct config;

/* table_proxy_default - on: ldap:/pgsql:/socketmap: open as proxy tables
 * (services); off: directly (tools, tern-proxymap) -- the default */
void table_proxy_default(int on);
/* table_proxy_configure - the socket path (default "private/proxymap",
 * relative to the queue directory) and proxymap_client_timeout from cfg */
void table_proxy_configure(const struct config *cfg);

struct table_proxy_scope;

struct table_proxy_scope *table_proxy_scope_new(void);
void table_proxy_scope_free(struct table_proxy_scope *s);
/* table_proxy_scope_reset - forget the answers (a new transaction); a wait
 * that is out stays out */
void table_proxy_scope_reset(struct table_proxy_scope *s);
/* table_proxy_scope_size - how many answers (and requests) s holds */
size_t table_proxy_scope_size(const struct table_proxy_scope *s);
/* table_proxy_scope_enter - proxy lookups from now on consult s (NULL:
 * synchronous mode) */
void table_proxy_scope_enter(struct table_proxy_scope *s);
void table_proxy_scope_leave(void);
/* table_proxy_scope_pending - 1 when the last evaluation in s asked for an
 * answer s does not hold yet */
int table_proxy_scope_pending(const struct table_proxy_scope *s);
/* table_proxy_scope_pending_now - 1 when a scope is entered and the
 * evaluation running in it has asked for an answer not held yet: its
 * TABLE_TEMPFAIL means "not answered yet", the evaluation will be run again,
 * and a failure it meets now is not to be logged (a re-run is side-effect
 * free; the final pass logs) */
int table_proxy_scope_pending_now(void);
/* table_proxy_scope_wait - send the pending requests; done(ctx) once all are
 * answered.  -1 when nothing is pending or a wait is already out. */
int table_proxy_scope_wait(struct table_proxy_scope *s, struct event_base *base,
                           void (*done)(void *ctx), void *ctx);
/* table_proxy_scope_waiting - 1 while a wait is out */
int table_proxy_scope_waiting(const struct table_proxy_scope *s);

/* A lookup order (an address's forms, a domain and its parents, an IP
 * address and its networks) asks its keys one by one until one answers.
 * Inside a scope, a key whose answer is not in yet makes the order go on
 * asking the keys after it, so they all travel in the same round trip
 * instead of one round trip each; the order's result is still the
 * temporary failure that voids the evaluation.  Outside a scope (and after
 * a real failure with nothing pending) an order stops at the failure, as
 * before.  The loops use these two:
 *   table_order_next(res)        1 when the order asks its next key
 *   table_order_result(res, now) the order's result once the next key
 *                                answered now */
int table_order_next(enum table_result res);
enum table_result table_order_result(enum table_result res, enum table_result now);

/* table_is_remote - 1 for a table whose lookups go through tern-proxymap */
int table_is_remote(const struct table *t);

#endif
