/*
 * dns - asynchronous DNS (c-ares) on a libevent event_base (DESIGN §7).
 *
 * One dns_ctx per event loop.  c-ares tells us which sockets it wants watched
 * (ARES_OPT_SOCK_STATE_CB); each gets one struct event, and one timer follows
 * ares_timeout().  Nothing blocks.
 *
 * Servers come from the dns_servers list ("127.0.0.1", "127.0.0.1:5353",
 * "[::1]:53"); an empty list means /etc/resolv.conf.  timeout_sec is the time
 * allowed for one query before it is retried (two tries per server, c-ares
 * doubles the timeout on the retry, so one lookup takes at most about
 * 3 x timeout_sec per server).
 *
 * dns_resolve_nexthop answers the question an SMTP client asks: which
 * addresses, in which order, do I try for this next hop?  With use_mx the MX
 * records are looked up and sorted by preference (stable: equal preferences
 * keep the server's order), each MX host expanded to its A then AAAA
 * addresses; a name without MX records (NODATA) stands for itself with
 * preference 0 (RFC 5321 5.1).  use_mx = 0 (a [bracketed] next hop) looks up
 * A/AAAA only.  An IP literal needs no DNS at all.  At most DNS_MAX_MX MX hosts
 * and DNS_MAX_ADDRS addresses are returned.
 *
 * The policy engine of the SMTP server asks three more questions, each
 * answered by one callback and cancellable through the struct dns_pending
 * returned: dns_query (one query of one type, for DNS blocklists and
 * the like: names are absolute, no search list), dns_domain_check (does a
 * mail domain exist: MX, else A, else AAAA) and dns_client_name
 * (forward-confirmed reverse DNS).  NXDOMAIN and "no record of the type"
 * (NODATA) are both DNS_NOTFOUND; a timeout, SERVFAIL, a refused query or an
 * unparsable answer is DNS_TEMPFAIL.  A name over 253 bytes or with
 * spaces/control characters is DNS_NOTFOUND without a query.  An answer keeps
 * at most DNS_MAX_ANSWERS records, a TXT record at most DNS_MAX_TXT bytes (as
 * received: a NUL byte ends it), and dns_client_name confirms at most
 * DNS_MAX_PTR_NAMES PTR names (valid host names only: letters, digits, '-',
 * '_', '.').
 *
 * DNSSEC: tern does not validate.  Every query carries the AD bit (RFC 6840
 * 5.7: "tell me whether you validated this"; c-ares 1.18 cannot set EDNS DO
 * per query, so the query is built with ares_create_query, AD set in the
 * header, and sent with ares_send, with a random id no other outstanding
 * query has), and dns_query / dns_domain_check report the AD bit of the
 * answer in dns_answer.secure; dns_resolve_nexthop reports it for the MX
 * answer (dns_result.mx_secure) and for each address (dns_host.secure), what
 * DANE (RFC 7672 2.2) needs.  A validating resolver (unbound) answers a bogus
 * name with SERVFAIL: DNS_TEMPFAIL.  The AD bit is only as trustworthy as
 * the path to the resolver (docs/dnssec.md): use one on loopback.
 *
 * Every callback runs later from the event loop (never from inside the call
 * that started the lookup), exactly once unless the lookup is cancelled, and
 * owns its result: dns_result_free, dns_answer_free or dns_client_name_free.
 * A struct dns_pending is valid until its callback starts or dns_cancel; do
 * not cancel it from its own callback.  dns_free cancels pending lookups
 * without calling their callbacks; it must not be called from inside a dns
 * callback.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <sys/socket.h>
#include <stddef.h>
#include "buf.h"

struct event_base;
struct dns_ctx;

#define DNS_MAX_MX 10
#define DNS_MAX_ADDRS 20
#define DNS_MAX_ANSWERS 20  /* records kept in one struct dns_answer */
#define DNS_MAX_TXT 1024    /* bytes kept of one TXT record */
#define DNS_MAX_PTR_NAMES 5 /* PTR names dns_client_name tries to confirm */

enum dns_status {
    DNS_OK,       /* at least one address */
    DNS_NOTFOUND, /* permanent: NXDOMAIN, no address record, or null MX */
    DNS_TEMPFAIL, /* try later: timeout, SERVFAIL, refused, ... */
};

struct dns_host {
    char *hostname;               /* the MX host (or the name itself), as looked up */
    int preference;               /* MX preference, 0 without MX */
    struct sockaddr_storage addr; /* with the port filled in */
    socklen_t addrlen;
    int secure; /* the A (or AAAA, for an IPv6 address) answer that gave addr had the AD bit:
                   DANE may look up TLSA for hostname (RFC 7672 2.2.2); 0 for an IP literal */
};

struct dns_result {
    enum dns_status status;
    char *reason; /* human-readable; "" for DNS_OK */
    struct dns_host *hosts;
    size_t count;
    int best_preference; /* of the best MX, with or without addresses; 0 without MX */
    int mx_secure;       /* the MX answer had the AD bit (RFC 7672 2.2); for a name without MX its
                            NODATA answer had it and so did every address of the name; for a
                            [bracketed] hop every address had it; 0 for an IP literal.  Set only
                            with DNS_OK */
};

typedef void (*dns_result_cb)(struct dns_result *res, void *arg);

/* dns_create - a resolver on base; servers is a NULL-terminated list or NULL
 * (resolv.conf); NULL with err filled on a bad server list or c-ares error */
struct dns_ctx *dns_create(struct event_base *base, char *const *servers, long long timeout_sec,
                           buf_t *err);
/* dns_free - cancel pending lookups (their callbacks are not called), release */
void dns_free(struct dns_ctx *ctx);
/* dns_resolve_nexthop - resolve name into hosts to try, see above; the port of
 * every address is default_port */
void dns_resolve_nexthop(struct dns_ctx *ctx, const char *name, int use_mx, int default_port,
                         dns_result_cb cb, void *arg);
/* dns_result_free - release a result handed to a callback */
void dns_result_free(struct dns_result *res);

enum dns_qtype { DNS_QA, DNS_QAAAA, DNS_QTXT, DNS_QPTR, DNS_QMX, DNS_QTLSA };

/* the answer of dns_query / dns_domain_check */
struct dns_answer {
    enum dns_status status; /* DNS_OK: at least one record; DNS_NOTFOUND: NXDOMAIN or no record
                               of the type; DNS_TEMPFAIL */
    char *reason;           /* human-readable, "" for DNS_OK */
    char **v; /* A/AAAA: addresses as text ("127.0.0.2"); TXT: one string per record (its
                 character-strings concatenated); PTR: names (no trailing dot); MX: host names
                 by preference (stable), a null MX as "."; TLSA: "usage selector mtype hex"
                 ("3 1 1 e3b0..."), hex lower-case; NULL-terminated */
    size_t count;
    int secure; /* 1 only when the resolver set the AD bit on this answer (it validated the
                   records with DNSSEC); 0 otherwise and for every status but DNS_OK.  Meaningful
                   only when the dns_servers are a validating resolver reached over a trusted path
                   (loopback): see docs/dnssec.md */
};

/* forward-confirmed reverse DNS of a client */
struct dns_client_name {
    enum dns_status status; /* DNS_OK: name is verified (a PTR name whose A/AAAA records contain
                               the address); DNS_NOTFOUND: no PTR, or no PTR name resolves back;
                               DNS_TEMPFAIL: a query failed temporarily (PTR, or every forward
                               lookup) */
    char *name;             /* the verified name, lower-case, else "unknown" */
    char *reverse_name;     /* the first valid PTR name (unverified), lower-case, else "unknown" */
    enum dns_status reverse_status; /* of the PTR query alone */
};

struct dns_pending; /* one outstanding lookup of the three functions below */
typedef void (*dns_answer_cb)(struct dns_answer *ans, void *arg);
typedef void (*dns_client_name_cb)(struct dns_client_name *cn, void *arg);

/* dns_query - one query of type for name; the callback owns ans (dns_answer_free) */
struct dns_pending *dns_query(struct dns_ctx *ctx, const char *name, enum dns_qtype type,
                              dns_answer_cb cb, void *arg);
/* dns_domain_check - does domain exist as a mail domain: MX records (a null MX "." counts as
 * existing), else A, else AAAA (only while the answer is NODATA: NXDOMAIN ends it); an IP
 * literal "[1.2.3.4]" or "[IPv6:...]" exists without DNS.  DNS_OK / DNS_NOTFOUND /
 * DNS_TEMPFAIL in ans->status (v: what was found) */
struct dns_pending *dns_domain_check(struct dns_ctx *ctx, const char *domain, dns_answer_cb cb,
                                     void *arg);
/* dns_client_name - PTR of addr (IPv4, IPv6, IPv4-mapped IPv6 as IPv4: a PTR query of the
 * in-addr.arpa/ip6.arpa name), then A (or AAAA) of each PTR name (at most DNS_MAX_PTR_NAMES)
 * to confirm; the first confirmed name in PTR order wins */
struct dns_pending *dns_client_name(struct dns_ctx *ctx, const struct sockaddr *addr,
                                    dns_client_name_cb cb, void *arg);
/* dns_client_name_free - release a client name handed to a callback */
void dns_client_name_free(struct dns_client_name *cn);
/* dns_answer_free - release an answer handed to a callback */
void dns_answer_free(struct dns_answer *ans);
/* dns_cancel - the callback of p will not be called (p is freed; NULL is fine).  Safe for a
 * lookup whose callback is already scheduled but not yet run. */
void dns_cancel(struct dns_pending *p);
/* dns_status_name - "ok", "notfound", "tempfail" */
const char *dns_status_name(enum dns_status status);

#endif
