/*
 * route_impl - what the parts of lib/route share; private to them.
 *
 * route.c         parameters, tables opened at first use, trace events,
 *                 address forms and lookup orders, domain lists, classes
 * route_transport.c  transport_maps, the *_transport parameters, error:
 *                 texts: where a final recipient goes
 * route_rewrite.c canonical maps, masquerading, smtp_generic_maps, header
 *                 addresses, virtual alias expansion
 * route_check.c   the RCPT verdict
 */
#ifndef TERN_ROUTE_IMPL_H
#define TERN_ROUTE_IMPL_H

#include "buf.h"
#include "netaddr.h"
#include "route.h"
#include "table.h"

#define ROUTE_MAX_DEPTH 20       /* virtual alias nesting */
#define ROUTE_MAX_EXPANSION 1000 /* addresses one recipient may become */
#define ROUTE_MAX_CANONICAL 10   /* canonical mapping rounds */
#define ROUTE_MAX_DERIVED 100000 /* domains remembered from a virtual table */

/* a list of tables, opened at first use */
struct route_maps {
    const char *param;
    char *const *specs;
    size_t count;
    int flags;
    char *const *alias_specs; /* tables also listed here use alias syntax */
    struct table **v;         /* entries NULL until opened */
    unsigned char *warned;
};

/* the domains named by the keys of one virtual table (derived on demand) */
struct route_derived {
    struct table *t;
    unsigned long generation;
    int valid;
    char **domains; /* sorted, lower case */
    size_t count;
};

/* mydestination, relay_domains, virtual_alias_domains */
struct route_domains {
    const char *param;
    char **names; /* literal names, lower case, no trailing dot */
    size_t name_count;
    struct route_maps tables;
    struct netaddr_net *nets; /* network items (relay_domains: clients) */
    size_t net_count;
    int parents;                   /* a name also matches its subdomains */
    int derive;                    /* tables also name the domains of their address keys */
    struct route_derived *derived; /* one per table when derive */
};

struct route {
    const char *myorigin;
    const char *myhostname;
    const char *mydomain;
    const char *relayhost;
    const char *delimiter;
    const char *default_transport;
    const char *relay_transport;
    const char *local_transport;
    const char *luser_relay;
    int append_at_myorigin;
    int append_dot_mydomain;
    int canonical_classes;
    int masquerade_classes;
    char *const *masquerade_domains;
    char *const *masquerade_exceptions;
    struct route_domains mydestination, relay_domains, virtual_domains;
    struct route_maps transport, virtual, canonical, sender_canonical, recipient_canonical,
        local_recipients, aliases, generic, sender_logins;
    route_trace_fn trace;
    void *trace_ctx;
};

/* the parts of an address for lookups */
struct route_parts {
    buf_t local;  /* local part as written */
    buf_t base;   /* without +ext */
    buf_t ext;    /* the extension, "" when none */
    buf_t domain; /* lower case, no trailing dot; "" when unqualified */
};

/* route.c */
/* route_reply_printf - fill code and dsn, text from a format */
void route_reply_printf(struct route_reply *rp, const char *code, const char *dsn, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
/* route_note - a free-text step for the trace */
void route_note(struct route *r, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* route_rewrote - a before -> after step for the trace */
void route_rewrote(struct route *r, const char *step, const char *before, const char *after,
                   const char *note);
/* route_maps_find - key in each table of m in order (pattern tables only
 * when full); the first answer wins; every probe goes to the trace */
enum table_result route_maps_find(struct route *r, struct route_maps *m, const char *step,
                                  const char *key, int full, buf_t *value);
void route_parts_init(struct route_parts *p);
void route_parts_free(struct route_parts *p);
/* route_parts_split - local part, user, extension and domain of addr */
void route_parts_split(struct route *r, const char *addr, struct route_parts *p);
/* route_domain_norm - lower case, without a trailing dot, A-labels for an
 * international domain (the one key form of every domain lookup) */
void route_domain_norm(const char *domain, buf_t *out);
/* route_map_forms - the keys of an address in order: user+ext@domain,
 * (ext_star: user+*@domain), user@domain, (local: user+ext, user),
 * @domain; *stripped when the key that matched left out the extension */
enum table_result route_map_forms(struct route *r, struct route_maps *m, const char *step,
                                  const struct route_parts *p, int local, int ext_star,
                                  buf_t *value, int *stripped);
/* route_is_local_domain - the domain is in mydestination */
int route_is_local_domain(struct route *r, const char *domain);

/* route_transport.c */
/* route_domain_routed - transport_maps names this domain itself */
enum route_status route_domain_routed(struct route *r, const char *domain, int *routed);

/* route_rewrite.c */
/* route_canonical_recipient - qualification and the recipient canonical maps */
enum route_status route_canonical_recipient(struct route *r, const char *addr, buf_t *out,
                                            struct route_reply *why);

#endif
