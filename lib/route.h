/*
 * route - where an address goes and how it is rewritten on the way: the
 * one resolver that smtpd (RCPT checks, the SASL logins that own a
 * sender: smtpd_sender_login_maps), cleanup (rewriting), qmgr
 * (transport and next hop), tern trace and sendmail -bv/-bt share, so what
 * trace explains is what the services do (Postfix's trivial-rewrite and
 * cleanup maps; sendmail's rulesets 3 and 0, virtusertable, mailertable).
 *
 * Address classes, by the recipient domain (first match wins):
 *   local    mydestination (local_transport)
 *   relay    relay_domains: accepted from anyone, relayed (relay_transport)
 *   virtual  virtual_alias_domains: every address must have a
 *            virtual_alias_maps entry, else "User unknown in virtual alias
 *            table" -- unless transport_maps names the domain itself, then
 *            unmatched addresses follow that route (sendmail's virtusertable
 *            falling through to mailertable)
 *   default  anything else: relayed for trusted clients only
 *            (default_transport)
 * virtual_alias_maps applies to the addresses of every class; a domain that
 * is local or relayed keeps that class even when the table names it.
 *
 * Resolution of a final recipient: transport_maps (keys user+ext@domain,
 * user@domain, domain, .parent ... , then "." or "*"; value
 * "transport:nexthop", either part may be empty = the class default), then
 * the class's transport.  Transports: smtp (also esmtp, smtp8, relay:
 * sendmail's mailer names), lmtp, local, error, discard, retry.
 *
 * Rewriting (cleanup): addresses are qualified (@myorigin), mapped by
 * sender_/recipient_canonical_maps then canonical_maps, masqueraded
 * (masquerade_domains; never the envelope recipient), and recipients are
 * expanded through virtual_alias_maps (recursive, %1 %2 %3 of sendmail,
 * error: entries refuse the address).  Which of these apply to envelope
 * and header addresses is canonical_classes / masquerade_classes.
 *
 * route_open reads the parameters once and opens the tables lazily at
 * first use (so a service opens them before it drops privileges when it
 * calls route_preload); lmdb tables notice rebuilds by themselves.  Any
 * table that cannot answer makes the answer ROUTE_TEMPFAIL, never a "not
 * found".  route_set_trace registers a callback that hears every step
 * (tables and keys tried, what matched, rewrites), for tern trace.
 * Not thread-safe; one route per process.
 */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "table.h"

struct config;
struct route;

enum route_status { ROUTE_OK = 0, ROUTE_REJECT = 1, ROUTE_TEMPFAIL = -1 };

enum route_class { ROUTE_CLASS_LOCAL, ROUTE_CLASS_VIRTUAL, ROUTE_CLASS_RELAY, ROUTE_CLASS_DEFAULT };

/* the address classes of canonical_classes and masquerade_classes */
enum route_addr_class {
    ROUTE_ENVELOPE_SENDER = 1,
    ROUTE_ENVELOPE_RECIPIENT = 2,
    ROUTE_HEADER_SENDER = 4,
    ROUTE_HEADER_RECIPIENT = 8,
};

/* an SMTP-style refusal: code, enhanced status code, text */
struct route_reply {
    char code[4];
    char dsn[16];
    buf_t text;
};

/* where a final recipient is delivered */
struct route_dest {
    enum route_class cls;
    char transport[16];       /* service: smtp lmtp local error discard retry */
    buf_t mailer;             /* the transport as configured: esmtp, relay, ... */
    buf_t nexthop;            /* smtp/lmtp: next hop; local: the domain */
    const char *by;           /* what decided: transport_maps, local_transport, ... */
    struct route_reply reply; /* error, retry, discard: code, dsn, text */
};

/* a recipient after canonical mapping and virtual alias expansion */
struct route_expansion {
    buf_t canonical; /* the address after qualification and canonical maps */
    char **v;        /* final addresses (malloc'ed) */
    size_t count;
    size_t cap;
};

/* one step, for tern trace: step names what is being done ("transport",
 * "virtual", "canonical", "masquerade", "class", ...); a table probe has
 * table, key and result ("found", "not found", "failed") and on a match
 * the value; a rewrite has before and after; note is free text */
struct route_event {
    const char *step;
    const char *table;
    const char *key;
    const char *result;
    const char *value;
    const char *before;
    const char *after;
    const char *note;
};
typedef void (*route_trace_fn)(const struct route_event *ev, void *ctx);

/* route_open - read the parameters; NULL with err naming a bad value */
struct route *route_open(const struct config *cfg, buf_t *err);
/* route_close - release everything */
void route_close(struct route *r);
/* route_preload - open every table now (before a privilege drop), or only
 * those of one parameter (param non-NULL); a table that fails is logged
 * and retried at its next use */
void route_preload(struct route *r, const char *param);
/* route_set_trace - hear every step (NULL: stop) */
void route_set_trace(struct route *r, route_trace_fn fn, void *ctx);

/* route_class_of - the class of a domain ("" or NULL: local) */
enum route_status route_class_of(struct route *r, const char *domain, enum route_class *out);
/* route_class_name - "local", "virtual", "relay", "default" */
const char *route_class_name(enum route_class cls);

/* route_resolve - transport and next hop of a final recipient.  flags:
 * ROUTE_ALIASES_DONE = local aliases were already expanded (mail that
 * tern-local re-injected), so a mail hub gets the address directly.
 * ROUTE_OK with dest filled (also for error/discard/retry), or
 * ROUTE_TEMPFAIL (a table failed, or a malformed transport_maps value) with
 * dest->reply saying why. */
#define ROUTE_ALIASES_DONE 0x1
void route_dest_init(struct route_dest *d);
void route_dest_free(struct route_dest *d);
enum route_status route_resolve(struct route *r, const char *addr, int flags,
                                struct route_dest *dest);
/* route_service - the delivery service of a transport name (smtp for
 * esmtp, smtp8, relay; NULL for an unknown name) */
const char *route_service(const char *transport);

/* route_transport_is_hub - a local_transport value that hands local users
 * to another host (smtp:[hub], lmtp:...): sendmail's MAIL_HUB; aliases are
 * still expanded here first */
int route_transport_is_hub(const char *transport);
/* route_qualify - addr with @myorigin when unqualified (into out) */
void route_qualify(struct route *r, const char *addr, buf_t *out);
/* route_rewrite_sender - the envelope sender after qualification,
 * canonical maps and masquerading (empty stays empty) */
enum route_status route_rewrite_sender(struct route *r, const char *addr, buf_t *out,
                                       struct route_reply *why);
/* route_rewrite_header - one header address of cls (ROUTE_HEADER_SENDER or
 * ROUTE_HEADER_RECIPIENT): qualification, canonical maps, masquerading;
 * 1 when out differs from addr, 0 unchanged, ROUTE_TEMPFAIL */
int route_rewrite_header(struct route *r, enum route_addr_class cls, const char *addr, buf_t *out,
                         struct route_reply *why);
/* route_rewrite_generic - a sender address as it leaves by SMTP
 * (smtp_generic_maps, sendmail's genericstable; the canonical maps' keys
 * and value forms): 1 when out differs from addr, 0 unchanged,
 * ROUTE_TEMPFAIL */
int route_rewrite_generic(struct route *r, const char *addr, buf_t *out, struct route_reply *why);
/* route_has_generic - smtp_generic_maps is set */
int route_has_generic(const struct route *r);
/* route_expand_recipient - canonical maps, then virtual alias expansion.
 * ROUTE_OK: x holds the final addresses; ROUTE_REJECT (an error: entry, a
 * loop) or ROUTE_TEMPFAIL with why filled */
void route_expansion_init(struct route_expansion *x);
void route_expansion_free(struct route_expansion *x);
enum route_status route_expand_recipient(struct route *r, const char *addr,
                                         struct route_expansion *x, struct route_reply *why);

/* the client facts an RCPT check needs */
struct route_client {
    const struct sockaddr *addr; /* NULL: a local submission */
    int trusted;                 /* mynetworks (later: SASL, certificates) */
};
/* route_check_recipient - may this recipient be accepted from this client?
 * Relay control (local, virtual and relay domains from anyone, the rest
 * from trusted clients), then the recipient itself: error: routes, unknown
 * virtual users, local_recipient_maps.  ROUTE_OK, or ROUTE_REJECT /
 * ROUTE_TEMPFAIL with why (code, dsn, text for "CODE DSN <addr>: text") */
enum route_status route_check_recipient(struct route *r, const char *addr,
                                        const struct route_client *client, struct route_reply *why);
/* route_destination_authorized - relay control alone: 1 when addr (after
 * canonical mapping: domaintable) is a local, virtual or relay domain, or
 * relay_domains lists the client's network; 0 not; -1 a table failed */
int route_destination_authorized(struct route *r, const char *addr, const struct sockaddr *client);
/* route_sender_logins - smtpd_sender_login_maps: the SASL logins that own
 * the sender addr (qualified with myorigin first), looked up as
 * user+ext@domain, user@domain, (a local domain: user+ext, user), @domain;
 * on TABLE_FOUND logins gets the value (a comma or space separated list) */
enum table_result route_sender_logins(struct route *r, const char *addr, buf_t *logins);
/* route_relay_client - 1 when relay_domains lists the client's network
 * (sendmail's relay-domains file holds client networks too) */
int route_relay_client(struct route *r, const struct sockaddr *client);

void route_reply_init(struct route_reply *rp);
void route_reply_free(struct route_reply *rp);
/* route_reply_set - fill code, dsn and text */
void route_reply_set(struct route_reply *rp, const char *code, const char *dsn, const char *text);

/* route_error_parse - sendmail's and Postfix's error text after "error:":
 * "5.1.1 text", "5.7.1:550 text", "550 text", "nouser text", "text";
 * kind 'e' error (default 550 5.0.0), 'r' retry (default 451 4.0.0) */
void route_error_parse(const char *value, int kind, struct route_reply *out);

#endif
