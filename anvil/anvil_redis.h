/*
 * anvil_redis - tern-anvil's rates shared in Redis (anvil_backend =
 * redis:HOST:PORT or redis:unix:/PATH), so that the tern hosts pointing at
 * one Redis share one budget per client and rate.
 *
 * A fixed window of anvil_rate_time_unit seconds, aligned on the epoch:
 * each event is one EVAL of a three-line script that INCRs the key
 * "tern:anvil:RATE:IDENT:WINDOW" (RATE "connection", "message", ...;
 * IDENT "smtp:192.0.2.1"; WINDOW now / unit) and sets it to expire after
 * two units on its first INCR; the reply is the count of every host in
 * this window.  The concurrent-connection count stays local.
 *
 * Never blocks: hiredis's async connection runs on anvil's event base.
 * anvil_redis_incr refuses (-1) at once while Redis is not connected, and
 * the caller counts locally.  Down (refused, closed, or a command or a
 * connect unanswered for ANVIL_REDIS_STALL_MS) logs one warning, and a new
 * connection is tried every ANVIL_REDIS_RETRY seconds; up again logs one
 * line.  Each accepted request's callback is called exactly once, never
 * from inside anvil_redis_incr: with the shared count, or -1 (an error
 * reply, a dropped connection, anvil_redis_free).
 */
#ifndef TERN_ANVIL_REDIS_H
#define TERN_ANVIL_REDIS_H

#include <stddef.h>
#include <time.h>

#include <event2/event.h>

#include "anvil_table.h"

/* a command or a connect pending this long means Redis is down */
#define ANVIL_REDIS_STALL_MS 1000
/* seconds between two connection attempts while Redis is down */
#define ANVIL_REDIS_RETRY 2

/* where Redis listens, from anvil_redis_parse */
struct anvil_redis_addr {
    char host[256]; /* "" when path is set */
    int port;
    char path[256]; /* a UNIX socket; "" when host is set */
};

struct anvil_redis;

/* anvil_redis_parse - "redis:HOST:PORT", "redis:[IPV6]:PORT" or
 * "redis:unix:/PATH" into *addr: 0, or -1 with a reason in *why */
int anvil_redis_parse(const char *spec, struct anvil_redis_addr *addr, const char **why);

/* anvil_redis_new - start connecting.  HOST is resolved here, once, so
 * that no reconnect waits for DNS; a name that does not resolve at start
 * leaves anvil counting locally until it restarts (prefer an address) */
struct anvil_redis *anvil_redis_new(struct event_base *base, const struct anvil_redis_addr *addr,
                                    long long time_unit);
/* anvil_redis_free - close; every pending callback gets -1 first */
void anvil_redis_free(struct anvil_redis *r);

/* anvil_redis_incr - one event of kind what for ident at now: 0 and
 * cb(arg, count) later, or -1 (Redis is down) and cb is never called */
int anvil_redis_incr(struct anvil_redis *r, enum anvil_rate what, const char *ident, time_t now,
                     void (*cb)(void *arg, long long count), void *arg);

#endif
