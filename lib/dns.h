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
 * The callback always runs later from the event loop (never from inside
 * dns_resolve_nexthop), exactly once, and owns the result: it must call
 * dns_result_free.  dns_free cancels pending lookups without calling their
 * callbacks; it must not be called from inside a dns callback.
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
};

struct dns_result {
    enum dns_status status;
    char *reason; /* human-readable; "" for DNS_OK */
    struct dns_host *hosts;
    size_t count;
    int best_preference; /* of the best MX, with or without addresses; 0 without MX */
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
/* dns_status_name - "ok", "notfound", "tempfail" */
const char *dns_status_name(enum dns_status status);

/* TEMP(issue 10): declarations until the dns branch lands */
enum dns_qtype { DNS_QA, DNS_QAAAA, DNS_QTXT, DNS_QPTR, DNS_QMX };
struct dns_answer {
    enum dns_status status;
    char *reason;
    char **v;
    size_t count;
};
struct dns_client_name {
    enum dns_status status;
    char *name;
    char *reverse_name;
    enum dns_status reverse_status;
};
struct dns_pending;
typedef void (*dns_answer_cb)(struct dns_answer *ans, void *arg);
typedef void (*dns_client_name_cb)(struct dns_client_name *cn, void *arg);
struct dns_pending *dns_query(struct dns_ctx *ctx, const char *name, enum dns_qtype type,
                              dns_answer_cb cb, void *arg);
struct dns_pending *dns_domain_check(struct dns_ctx *ctx, const char *domain, dns_answer_cb cb,
                                     void *arg);
struct dns_pending *dns_client_name(struct dns_ctx *ctx, const struct sockaddr *addr,
                                    dns_client_name_cb cb, void *arg);
void dns_client_name_free(struct dns_client_name *cn);
void dns_answer_free(struct dns_answer *ans);
void dns_cancel(struct dns_pending *p);

#endif
