/*
 * policy_client - smtpd's client of Postfix's SMTP access policy delegation
 * protocol (check_policy_service; Postfix's SMTPD_POLICY_README).
 *
 * Wire format.  The request is "name=value\n" lines ended by an empty line;
 * the reply is "action=TEXT\n" (other attributes are skipped) ended by an
 * empty line.  One connection carries many requests, strictly one after the
 * other: a request is written only when the reply to the previous one has
 * been read whole.
 *
 * Who calls it.  smtpd asks for each POLICY_NEED_SERVICE request the
 * restriction-list evaluator leaves pending; the module itself knows
 * nothing of the evaluator.  One struct smtpd_policy_clients per worker
 * holds a pool per endpoint: up to SMTPD_POLICY_CLIENT_MAX_CONNS
 * connections, each with one request in flight, further requests queued in
 * order.  An idle connection is closed after max_idle seconds, and any
 * connection is retired once it is older than max_ttl (at its next idle
 * point), so a restarted or reconfigured policy server is picked up.
 *
 * Endpoints: "inet:HOST:PORT" where HOST is a numeric IPv4 address, an
 * IPv6 address in brackets ("inet:[::1]:10023") or "localhost" (=
 * 127.0.0.1) -- a name would need a blocking getaddrinfo, so other names
 * are refused by smtpd_policy_endpoint_check; "unix:PATH"; or a bare PATH,
 * a UNIX socket ("private/policy": relative paths are relative to the
 * queue directory, where every service runs).
 *
 * Promises.  Nothing blocks: connects are non-blocking, on the caller's
 * event loop.  The callback of a query is called exactly once, never from
 * inside smtpd_policy_client_ask, unless the query is cancelled (or the
 * pool freed) first.  A query that has no complete reply within timeout
 * seconds of smtpd_policy_client_ask fails, and its connection is closed.
 * A connection that breaks before any byte of the reply came (a server
 * that closed an idle connection as the request went out) is retried once
 * on a new connection.  A reply is trusted for nothing: at most
 * SMTPD_POLICY_REPLY_LINES lines of at most SMTPD_POLICY_REPLY_LINE_MAX
 * bytes, exactly one non-empty action=; bytes that nobody asked for close
 * the connection.  The caller ignores SIGPIPE (service_init does).
 */
#ifndef TERN_SMTPD_POLICY_CLIENT_H
#define TERN_SMTPD_POLICY_CLIENT_H

#include <stddef.h>

#include "buf.h"

struct event_base;

#define SMTPD_POLICY_CLIENT_MAX_CONNS 8  /* connections per endpoint */
#define SMTPD_POLICY_REPLY_LINE_MAX 4096 /* bytes of one reply line, without the newline */
#define SMTPD_POLICY_REPLY_LINES 16      /* attribute lines in one reply */

struct smtpd_policy_clients; /* per worker: one pool of connections per endpoint */
struct smtpd_policy_query;   /* one outstanding request */

/* status 0: action is the value of action= ("DUNNO", "defer_if_permit
 * Greylisted ..."); -1: the service failed (connect refused, timeout,
 * malformed or over-long reply, EOF) and action is a short reason for the
 * log.  action is valid during the call only; the query is gone after it. */
typedef void (*smtpd_policy_client_fn)(void *ctx, int status, const char *action);

/* smtpd_policy_clients_new - an empty pool; times in seconds
 * (smtpd_policy_service_timeout, _max_idle, _max_ttl) */
struct smtpd_policy_clients *smtpd_policy_clients_new(struct event_base *base, long long timeout,
                                                      long long max_idle, long long max_ttl);
/* smtpd_policy_clients_free - close every connection and forget every
 * query (no callbacks); NULL is fine */
void smtpd_policy_clients_free(struct smtpd_policy_clients *c);

/* smtpd_policy_client_ask - send request ("name=value\n" lines and the
 * empty line; copied) to endpoint; fn is called later with the answer */
struct smtpd_policy_query *smtpd_policy_client_ask(struct smtpd_policy_clients *c,
                                                   const char *endpoint, const buf_t *request,
                                                   smtpd_policy_client_fn fn, void *ctx);
/* smtpd_policy_client_cancel - forget a query: fn is not called; the
 * connection is closed when its reply is still due, so a late reply cannot
 * be taken for the next request's */
void smtpd_policy_client_cancel(struct smtpd_policy_query *q);

/* smtpd_policy_endpoint_check - validate an endpoint at config time: 0 ok,
 * -1 with err ("inet:mail.example:10023: the host must be a numeric
 * address or localhost") */
int smtpd_policy_endpoint_check(const char *endpoint, buf_t *err);

/* smtpd_policy_reply_parse - pure parser of one reply in data[0..len):
 * 1 complete (*used bytes, action set), 0 more bytes needed, -1 malformed
 * (err says why) */
int smtpd_policy_reply_parse(const char *data, size_t len, size_t *used, buf_t *action, buf_t *err);

#endif
