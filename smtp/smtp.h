/*
 * smtp.h - types shared by the modules of tern-smtp, the outbound SMTP
 * client, which also runs as tern-lmtp, the LMTP client (RFC 2033): the
 * conversation (session.c) and the service loop (main.c); the request from
 * qmgr and its result are lib/delivery.h, next hops nexthop.h, "this host"
 * self.h.
 */
#ifndef TERN_SMTP_SMTP_H
#define TERN_SMTP_SMTP_H

#include <stddef.h>
#include "buf.h"
#include "delivery.h"
#include "reply.h"
#include "smtp_body.h"

struct event_base;
struct bufferevent;
struct dns_ctx;
struct smtp_cache;
struct route;
struct smtp_self;
struct smtp_tls;
struct smtp_sasl;
struct tlsrpt;
struct smtp_mtasts;

#define SMTP_PEER_MAX 320 /* "host[addr]" */

/* settings every session reads (from tern.conf) */
struct smtp_env {
    struct event_base *base;
    struct dns_ctx *dns;
    int lmtp; /* the program runs as tern-lmtp: LHLO, one reply per recipient after DATA */
    long long connect_timeout;
    long long helo_timeout;
    long long command_timeout;
    long long data_timeout;
    const char *helo_name;
    int default_port;             /* smtp_default_port, or lmtp_tcp_port */
    const struct smtp_self *self; /* this host, for MX loops (self.h); NULL for LMTP */
    struct smtp_cache *cache;     /* idle connections; NULL: caching off */
    struct route *generic;        /* smtp_generic_maps (generic.c); NULL: none */
    struct smtp_tls *tls;         /* smtp_tls.h; NULL: TLS never (and always for LMTP) */
    struct smtp_sasl *sasl;       /* smtp_sasl.h; NULL: no AUTH (and always for LMTP) */
    int sasl_by_sender;           /* smtp_sender_dependent_authentication */
    struct tlsrpt *tlsrpt;        /* TLS-RPT counters (lib/tlsrpt.h); NULL: none */
    struct smtp_mtasts *mtasts;   /* smtp_mtasts.h; NULL: smtp_mta_sts = no */
    int dnssec;                   /* smtp_dns_support_level = dnssec: the AD bit counts */
    /* 8-bit content for a next hop without 8BITMIME (smtp_body.h) */
    struct smtp_body_policy body_policy;
};

/* cache.c: idle SMTP connections between two deliveries to one next hop
 * (Postfix's smtp_connection_cache_on_demand).  A cached connection has
 * finished a transaction cleanly and waits for the next MAIL FROM; it is
 * QUIT and closed when idle longer than smtp_connection_cache_time_limit,
 * on drain and at exit, and dropped without QUIT when the server speaks or
 * closes first. */
struct smtp_conn {
    struct bufferevent *bev; /* owned by whoever holds the struct */
    char peer[SMTP_PEER_MAX];
    char relay[SMTP_PEER_MAX + 8]; /* "host[addr]:port" */
    int port;
    struct smtp_ehlo ehlo; /* what EHLO said when the connection was opened */
    long long uses;        /* transactions done on it */
    int tls;               /* under TLS (bev is an OpenSSL bufferevent) */
    int verified;          /* ... and the server's certificate was verified */
    int authenticated;     /* SMTP AUTH succeeded on it */
    char tls_note[64];     /* "TLSv1.3/verified" or "no", for the delivery lines */
};
struct smtp_cache_limits {
    long long time_limit;  /* seconds a connection may stay idle (>= 1) */
    long long reuse_limit; /* transactions per connection, 0: no limit */
    long long size_limit;  /* idle connections in total (>= 1) */
};
/* smtp_cache_create - an empty cache on base */
struct smtp_cache *smtp_cache_create(struct event_base *base, const struct smtp_cache_limits *lim);
/* smtp_cache_put - keep conn idle under key: 0 the cache owns conn->bev now,
 * -1 refused (reuse or size limit, draining): the caller still owns it */
int smtp_cache_put(struct smtp_cache *c, const char *key, const struct smtp_conn *conn);
/* smtp_cache_take - 0: *conn is the most recently cached idle connection
 * for key, removed from the cache (the caller sets the bev callbacks);
 * -1: none */
int smtp_cache_take(struct smtp_cache *c, const char *key, struct smtp_conn *conn);
/* smtp_cache_drain - QUIT every idle connection, cache nothing from now on */
void smtp_cache_drain(struct smtp_cache *c);
/* smtp_cache_free - at exit: QUIT what is idle, close everything, free */
void smtp_cache_free(struct smtp_cache *c);

/* generic.c: smtp_generic_maps, the sender addresses as mail leaves */
/* smtp_generic_sender - the envelope sender for MAIL FROM into out; 1 when
 * it was rewritten, 0 unchanged, ROUTE_TEMPFAIL (-1) when a table failed
 * (the mail is deferred: never sent unrewritten) */
int smtp_generic_sender(const struct smtp_env *env, const char *sender, buf_t *out);
/* smtp_generic_headers - the content's header section with its sender
 * header addresses rewritten into out: 1 with *replaced the number of
 * content bytes out replaces, 0 when nothing changes (out empty,
 * *replaced 0), ROUTE_TEMPFAIL (-1) when a table failed (out empty) */
int smtp_generic_headers(const struct smtp_env *env, int qfd, long long offset, long long length,
                         buf_t *out, size_t *replaced);

/* session.c: one delivery from DNS lookup to QUIT */
struct smtp_session;
/* on_result: every recipient has its final status (called once);
 * on_closed: the session is gone, req may be freed (called once, last) */
struct smtp_session_cbs {
    void (*on_result)(struct delivery_request *req, void *arg);
    void (*on_closed)(struct delivery_request *req, void *arg);
    void *arg;
};
/* smtp_session_start - begin delivering req; callbacks never run before it returns */
void smtp_session_start(const struct smtp_env *env, struct delivery_request *req,
                        const struct smtp_session_cbs *cbs);

/* smtp_trace.c: the dialogue of a request with trace=yes (else nothing) */
/* smtp_trace_commands - data holds whole command lines (CRLF-terminated)
 * just sent; while authenticating they are recorded as <hidden> */
void smtp_trace_commands(struct delivery_request *req, int authenticating, const char *data,
                         size_t len);
/* smtp_trace_connecting - "Connecting to host[addr] port N via esmtp..." */
void smtp_trace_connecting(struct delivery_request *req, const char *peer, int port, int lmtp);
/* smtp_trace_closing - "Closing connection to host[addr]" */
void smtp_trace_closing(struct delivery_request *req, const char *peer);

#endif
