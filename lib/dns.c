/*
 * dns - c-ares on the libevent loop; next-hop resolution for SMTP clients
 * (MX, then A/AAAA) and the SMTP server's policy lookups (one query, domain
 * existence, forward-confirmed reverse DNS).  Contract in dns.h.
 *
 * Every lookup starts with a struct dns_pending (the bookkeeping they share:
 * the context's list, outstanding ares queries, cancellation, deferred
 * delivery) and adds its own state after it.
 */
#include <ares.h>
#include <ares_dns.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "buf.h"
#include "dns.h"
#include "log.h"

#define DNS_MAX_NAME 253
#define DNS_MAX_MX_RECORDS 100 /* read at most this many before sorting */
#define DNS_TRIES 2
#define DNS_HEADER_AD 0x20 /* "authentic data": in the 4th header byte (RFC 4035 3.2.3) */

/* one socket c-ares wants watched */
struct dns_watch {
    ares_socket_t fd;
    struct event *ev;
    struct dns_watch *next;
};

struct dns_ctx {
    struct event_base *base;
    ares_channel channel;
    struct event *timer;
    struct dns_watch *watches;
    struct dns_pending *lookups; /* every undelivered lookup, for dns_free */
    int destroying;
    unsigned char ids_in_use[65536 / 8]; /* query ids of outstanding ares_send queries */
};

/* one host whose addresses are being looked up */
struct dns_mxhost {
    char *host;
    int preference;
    struct in_addr v4[DNS_MAX_ADDRS];
    size_t v4_count;
    struct in6_addr v6[DNS_MAX_ADDRS];
    size_t v6_count;
    int a_status; /* ares status of the A query, -1 while pending */
    int aaaa_status;
    int a_secure; /* the A answer had the AD bit */
    int aaaa_secure;
};

/* what a lookup hands to its caller */
enum dns_kind { DNS_KIND_NEXTHOP, DNS_KIND_ANSWER, DNS_KIND_CLIENT_NAME };

union dns_callback {
    dns_result_cb nexthop;
    dns_answer_cb answer;
    dns_client_name_cb client_name;
};

union dns_outcome {
    struct dns_result *nexthop;
    struct dns_answer *answer;
    struct dns_client_name *client_name;
};

/* the bookkeeping of every lookup: the first member of each kind's struct,
 * so that a struct dns_pending * also points to the whole lookup */
struct dns_pending {
    struct dns_ctx *ctx;
    struct dns_pending *prev, *next; /* on ctx->lookups */
    enum dns_kind kind;
    union dns_callback cb;
    void *arg;
    union dns_outcome result;               /* set when finished */
    void (*release)(struct dns_pending *p); /* frees the kind's state and p */
    int queries;                            /* outstanding ares queries (+1 while launching) */
    int cancelled;                          /* dns_cancel came while queries were outstanding */
    struct event *deliver;
};

/* the argument of one ares query */
struct dns_sent {
    struct dns_pending *p;
    size_t index;       /* the host or name of the lookup it is for */
    int type;           /* ns_t_* */
    ares_callback done; /* gets the answer as ares_query would hand it */
    unsigned short id;  /* the query id, marked in ctx->ids_in_use while sent */
};

/* dns_resolve_nexthop */
struct dns_lookup {
    struct dns_pending p;
    char *name;
    int port;
    struct dns_mxhost mx[DNS_MAX_MX];
    size_t mx_count;
    int name_is_host; /* no MX (NODATA, or a [bracketed] hop): the name stands for itself */
    int mx_secure;    /* the MX answer had the AD bit; 1 without an MX query */
};

/* dns_query and dns_domain_check: the types are asked in turn while the
 * answer is NODATA */
struct dns_ask {
    struct dns_pending p;
    char *name;
    const enum dns_qtype *types;
    size_t type_count, step;
};

/* dns_client_name */
struct dns_rdns {
    struct dns_pending p;
    char reverse[80];               /* the in-addr.arpa or ip6.arpa name */
    enum dns_qtype type;            /* of the forward queries: DNS_QA or DNS_QAAAA */
    char addr[INET6_ADDRSTRLEN];    /* the client, as inet_ntop prints it */
    enum dns_status reverse_status; /* of the PTR query */
    char *names[DNS_MAX_PTR_NAMES]; /* valid PTR names, lower-case */
    size_t name_count;
    enum dns_status confirmed[DNS_MAX_PTR_NAMES]; /* DNS_OK: names[i] has addr */
};

static void dns_timer_update(struct dns_ctx *ctx);

/* dns_status_name - printable status */
const char *dns_status_name(enum dns_status status)
{
    switch (status) {
    case DNS_OK:
        return "ok";
    case DNS_NOTFOUND:
        return "notfound";
    case DNS_TEMPFAIL:
        return "tempfail";
    }
    return "unknown";
}

/* dns_watch_event - a watched socket is ready: let c-ares process it */
static void dns_watch_event(evutil_socket_t fd, short what, void *arg)
{
    struct dns_ctx *ctx = arg;

    ares_process_fd(ctx->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_timer_update(ctx);
}

/* dns_timer_event - a c-ares timeout may have expired */
static void dns_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct dns_ctx *ctx = arg;

    ares_process_fd(ctx->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_timer_update(ctx);
}

/* dns_timer_update - arm the timer for c-ares' next timeout, if any */
static void dns_timer_update(struct dns_ctx *ctx)
{
    struct timeval tvbuf, *tv;

    if (ctx->destroying)
        return;
    tv = ares_timeout(ctx->channel, NULL, &tvbuf);
    if (tv)
        evtimer_add(ctx->timer, tv);
    else
        evtimer_del(ctx->timer);
}

/* dns_watch_remove - stop watching fd */
static void dns_watch_remove(struct dns_ctx *ctx, ares_socket_t fd)
{
    struct dns_watch **pp, *w;

    for (pp = &ctx->watches; (w = *pp) != NULL; pp = &w->next) {
        if (w->fd == fd) {
            *pp = w->next;
            event_free(w->ev);
            free(w);
            return;
        }
    }
}

/* dns_sock_state - c-ares callback: (re)watch fd for reading and/or writing */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_ctx *ctx = data;
    struct dns_watch *w;
    short what = EV_PERSIST;

    dns_watch_remove(ctx, fd);
    if (!readable && !writable)
        return;
    if (readable)
        what |= EV_READ;
    if (writable)
        what |= EV_WRITE;
    w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->ev = event_new(ctx->base, fd, what, dns_watch_event, ctx);
    if (w->ev == NULL)
        log_panic("dns: event_new failed");
    event_add(w->ev, NULL);
    w->next = ctx->watches;
    ctx->watches = w;
}

/* dns_servers_csv - join the server list for ares_set_servers_ports_csv */
static void dns_servers_csv(char *const *servers, buf_t *out)
{
    for (size_t i = 0; servers[i] != NULL; i++) {
        if (out->len > 0)
            buf_putc(out, ',');
        buf_puts(out, servers[i]);
    }
}

/* dns_set_servers - apply an explicit server list; 0 ok, -1 bad */
static int dns_set_servers(struct dns_ctx *ctx, char *const *servers, buf_t *err)
{
    buf_t csv = BUF_INIT;
    int rc;

    dns_servers_csv(servers, &csv);
    if (csv.len == 0) {
        buf_free(&csv);
        return 0;
    }
    rc = ares_set_servers_ports_csv(ctx->channel, buf_cstr(&csv));
    if (rc != ARES_SUCCESS)
        buf_printf(err, "bad dns_servers \"%s\": %s", buf_cstr(&csv), ares_strerror(rc));
    buf_free(&csv);
    return rc == ARES_SUCCESS ? 0 : -1;
}

/* dns_create - see dns.h */
struct dns_ctx *dns_create(struct event_base *base, char *const *servers, long long timeout_sec,
                           buf_t *err)
{
    struct ares_options opts;
    struct dns_ctx *ctx;
    int rc;

    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        buf_printf(err, "c-ares init: %s", ares_strerror(rc));
        return NULL;
    }
    ctx = xcalloc(1, sizeof(*ctx));
    ctx->base = base;
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = dns_sock_state;
    opts.sock_state_cb_data = ctx;
    opts.timeout = (int)(timeout_sec > 0 && timeout_sec < 3600 ? timeout_sec * 1000 : 5000);
    opts.tries = DNS_TRIES;
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    rc = ares_init_options(&ctx->channel, &opts,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                               ARES_OPT_FLAGS);
    if (rc != ARES_SUCCESS) {
        buf_printf(err, "c-ares channel: %s", ares_strerror(rc));
        free(ctx);
        return NULL;
    }
    ctx->timer = evtimer_new(base, dns_timer_event, ctx);
    if (ctx->timer == NULL)
        log_panic("dns: evtimer_new failed");
    if (servers != NULL && dns_set_servers(ctx, servers, err) < 0) {
        dns_free(ctx);
        return NULL;
    }
    return ctx;
}

/* dns_pending_start - put p, a new lookup of kind, on the context's list */
static void dns_pending_start(struct dns_ctx *ctx, struct dns_pending *p, enum dns_kind kind,
                              void (*release)(struct dns_pending *), union dns_callback cb,
                              void *arg)
{
    p->ctx = ctx;
    p->kind = kind;
    p->release = release;
    p->cb = cb;
    p->arg = arg;
    p->next = ctx->lookups;
    if (ctx->lookups)
        ctx->lookups->prev = p;
    ctx->lookups = p;
}

/* dns_pending_unlink - take p off the context's list */
static void dns_pending_unlink(struct dns_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->ctx->lookups = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* dns_pending_free - free an unlinked lookup with its undelivered result */
static void dns_pending_free(struct dns_pending *p)
{
    switch (p->kind) {
    case DNS_KIND_NEXTHOP:
        dns_result_free(p->result.nexthop);
        break;
    case DNS_KIND_ANSWER:
        dns_answer_free(p->result.answer);
        break;
    case DNS_KIND_CLIENT_NAME:
        dns_client_name_free(p->result.client_name);
        break;
    }
    if (p->deliver)
        event_free(p->deliver);
    p->release(p);
}

/* dns_deliver_event - hand the finished result to the caller */
static void dns_deliver_event(evutil_socket_t fd, short what, void *arg)
{
    struct dns_pending *p = arg;
    enum dns_kind kind = p->kind;
    union dns_callback cb = p->cb;
    union dns_outcome result = p->result;
    void *cb_arg = p->arg;

    memset(&p->result, 0, sizeof(p->result));
    dns_pending_unlink(p);
    dns_pending_free(p);
    if (kind == DNS_KIND_NEXTHOP)
        cb.nexthop(result.nexthop, cb_arg);
    else if (kind == DNS_KIND_ANSWER)
        cb.answer(result.answer, cb_arg);
    else
        cb.client_name(result.client_name, cb_arg);
}

/* dns_pending_finish - the result is set: schedule the callback */
static void dns_pending_finish(struct dns_pending *p)
{
    struct timeval zero = {0, 0};

    p->deliver = evtimer_new(p->ctx->base, dns_deliver_event, p);
    if (p->deliver == NULL)
        log_panic("dns: evtimer_new failed");
    evtimer_add(p->deliver, &zero);
}

/* dns_header_ad - 1 when the answer abuf has the AD bit (the resolver
 * validated it); 0 for no answer */
static int dns_header_ad(const unsigned char *abuf, int alen)
{
    return abuf != NULL && alen >= HFIXEDSZ && (abuf[3] & DNS_HEADER_AD) != 0;
}

/* dns_rcode_status - the ares status ares_query would give an answer that
 * ares_send accepted (SERVFAIL, NOTIMP and REFUSED already failed there) */
static int dns_rcode_status(const unsigned char *abuf, int alen)
{
    if (alen < HFIXEDSZ)
        return ARES_EBADRESP;
    switch (abuf[3] & 0x0f) {
    case ns_r_noerror:
        return (abuf[6] | abuf[7]) != 0 ? ARES_SUCCESS : ARES_ENODATA;
    case ns_r_nxdomain:
        return ARES_ENOTFOUND;
    case ns_r_formerr:
        return ARES_EFORMERR;
    default:
        return ARES_ESERVFAIL;
    }
}

/* dns_query_id - a random query id that no outstanding query of ctx has,
 * marked in use: ares_send (1.18) sends the id it is given and matches an
 * answer to the first query with its id, so two queries sharing one would
 * cost one of them a timeout.  ARES_ENOMEM when getrandom fails. */
static int dns_query_id(struct dns_ctx *ctx, unsigned short *id)
{
    for (int i = 0; i < 32; i++) {
        if (getrandom(id, sizeof(*id), 0) != (ssize_t)sizeof(*id))
            return ARES_ENOMEM;
        if ((ctx->ids_in_use[*id / 8] & (1u << (*id % 8))) == 0) {
            ctx->ids_in_use[*id / 8] |= (unsigned char)(1u << (*id % 8));
            return ARES_SUCCESS;
        }
    }
    return ARES_ENOMEM; /* thousands outstanding: not a state tern gets into */
}

/* dns_query_id_release - the query with id is done */
static void dns_query_id_release(struct dns_ctx *ctx, unsigned short id)
{
    ctx->ids_in_use[id / 8] &= (unsigned char)~(1u << (id % 8));
}

/* dns_sent_callback - ares_send's answer: map the rcode as ares_query does,
 * hand it on */
static void dns_sent_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_sent *q = arg;

    dns_query_id_release(q->p->ctx, q->id);
    if (status == ARES_SUCCESS)
        status = dns_rcode_status(abuf, alen);
    q->done(arg, status, timeouts, abuf, alen);
}

/* dns_pending_query - send one ares query for p with the AD bit set (RFC
 * 6840 5.7: a validating resolver then says whether it validated the answer;
 * ares_query cannot set it, nor EDNS DO per query); callback gets a struct
 * dns_sent to free */
static void dns_pending_query(struct dns_pending *p, const char *name, int type, size_t index,
                              ares_callback callback)
{
    struct dns_sent *q = xcalloc(1, sizeof(*q));
    struct dns_ctx *ctx = p->ctx;
    unsigned char *qbuf = NULL;
    int qlen = 0, rc;

    q->p = p;
    q->index = index;
    q->type = type;
    q->done = callback;
    p->queries++;
    rc = dns_query_id(ctx, &q->id);
    if (rc != ARES_SUCCESS) {
        callback(q, rc, 0, NULL, 0);
        return;
    }
    rc = ares_create_query(name, ns_c_in, type, q->id, 1, &qbuf, &qlen, 0);
    if (rc != ARES_SUCCESS) {
        dns_query_id_release(ctx, q->id);
        callback(q, rc, 0, NULL, 0);
        return;
    }
    qbuf[3] |= DNS_HEADER_AD;
    ares_send(ctx->channel, qbuf, qlen, dns_sent_callback, q);
    ares_free_string(qbuf);
    dns_timer_update(ctx);
}

/* dns_pending_settle - one ares query of p returned; 1 when its answer is
 * wanted, 0 when the context is going away or p was cancelled (a cancelled
 * lookup is freed with its last query) */
static int dns_pending_settle(struct dns_pending *p)
{
    p->queries--;
    if (p->ctx->destroying)
        return 0;
    if (!p->cancelled)
        return 1;
    if (p->queries == 0) {
        dns_pending_unlink(p);
        dns_pending_free(p);
    }
    return 0;
}

/* dns_cancel - see dns.h */
void dns_cancel(struct dns_pending *p)
{
    if (p == NULL)
        return;
    if (p->queries > 0) {
        p->cancelled = 1; /* ares still holds pointers to p */
        return;
    }
    dns_pending_unlink(p);
    dns_pending_free(p);
}

/* dns_free - see dns.h */
void dns_free(struct dns_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ctx->destroying = 1;
    ares_destroy(ctx->channel); /* callbacks see ARES_EDESTRUCTION and do nothing */
    while (ctx->lookups) {
        struct dns_pending *p = ctx->lookups;
        dns_pending_unlink(p);
        dns_pending_free(p);
    }
    while (ctx->watches)
        dns_watch_remove(ctx, ctx->watches->fd);
    event_free(ctx->timer);
    free(ctx);
}

/* dns_result_free - see dns.h */
void dns_result_free(struct dns_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->count; i++)
        free(res->hosts[i].hostname);
    free(res->hosts);
    free(res->reason);
    free(res);
}

/* dns_result_new - an empty result with status and reason */
static struct dns_result *dns_result_new(enum dns_status status, const char *reason)
{
    struct dns_result *res = xcalloc(1, sizeof(*res));

    res->status = status;
    res->reason = xstrdup(reason ? reason : "");
    res->hosts = xcalloc(DNS_MAX_ADDRS, sizeof(*res->hosts));
    return res;
}

/* dns_result_add - append one address for host (bounded by DNS_MAX_ADDRS) */
static void dns_result_add(struct dns_result *res, const char *host, int pref, int secure,
                           int family, const void *addr, int port)
{
    struct dns_host *h;

    if (res->count >= DNS_MAX_ADDRS)
        return;
    h = &res->hosts[res->count++];
    h->hostname = xstrdup(host);
    h->preference = pref;
    h->secure = secure;
    memset(&h->addr, 0, sizeof(h->addr));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&h->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)port);
        memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
        h->addrlen = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short)port);
        memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
        h->addrlen = sizeof(*sin6);
    }
}

/* dns_lookup_release - free a next-hop lookup's own state */
static void dns_lookup_release(struct dns_pending *p)
{
    struct dns_lookup *lk = (struct dns_lookup *)p;

    for (size_t i = 0; i < lk->mx_count; i++)
        free(lk->mx[i].host);
    free(lk->name);
    free(lk);
}

/* dns_lookup_finish - store the result and schedule the callback */
static void dns_lookup_finish(struct dns_lookup *lk, struct dns_result *res)
{
    lk->p.result.nexthop = res;
    dns_pending_finish(&lk->p);
}

/* dns_status_text - Postfix-style text for an ares status */
static const char *dns_status_text(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
        return "Host not found";
    case ARES_ENODATA:
        return "Host found but no data record of requested type";
    default:
        return "Host not found, try again";
    }
}

/* dns_status_permanent - 1 when an ares status means "does not exist" */
static int dns_status_permanent(int status)
{
    return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}

/* dns_status_of - the dns_status of an ares status */
static enum dns_status dns_status_of(int status)
{
    if (status == ARES_SUCCESS)
        return DNS_OK;
    return dns_status_permanent(status) ? DNS_NOTFOUND : DNS_TEMPFAIL;
}

/* dns_reason - Postfix-style text for a failed query of type for name */
static void dns_reason(buf_t *out, const char *name, const char *type, int status)
{
    buf_printf(out, "Host or domain name not found. Name service error for name=%s type=%s: %s",
               name, type, dns_status_text(status));
    if (dns_status_of(status) == DNS_TEMPFAIL && status != ARES_ESERVFAIL)
        buf_printf(out, " (%s)", ares_strerror(status));
}

/* dns_fail - finish lk with a failure for name/type */
static void dns_fail(struct dns_lookup *lk, const char *name, const char *type, int status)
{
    buf_t reason = BUF_INIT;

    dns_reason(&reason, name, type, status);
    dns_lookup_finish(lk, dns_result_new(dns_status_of(status), buf_cstr(&reason)));
    buf_free(&reason);
}

/* dns_addr_worst - the status that explains why host got no address:
 * a temporary failure wins over "not found" */
static int dns_addr_worst(const struct dns_mxhost *h, const char **type)
{
    if (!dns_status_permanent(h->a_status) && h->a_status != ARES_SUCCESS) {
        *type = "A";
        return h->a_status;
    }
    if (!dns_status_permanent(h->aaaa_status) && h->aaaa_status != ARES_SUCCESS) {
        *type = "AAAA";
        return h->aaaa_status;
    }
    *type = "A";
    return h->a_status == ARES_SUCCESS ? ARES_ENODATA : h->a_status;
}

/* dns_result_all_secure - 1 when every address of res came with the AD bit */
static int dns_result_all_secure(const struct dns_result *res)
{
    for (size_t i = 0; i < res->count; i++)
        if (!res->hosts[i].secure)
            return 0;
    return 1;
}

/* dns_lookup_assemble - all address queries done: build the result */
static void dns_lookup_assemble(struct dns_lookup *lk)
{
    struct dns_result *res = dns_result_new(DNS_OK, "");
    const char *fail_type = "A", *type;
    const char *fail_name = lk->name;
    int fail_status = 0, st;

    res->best_preference = lk->mx_count > 0 ? lk->mx[0].preference : 0; /* mx is sorted */

    for (size_t i = 0; i < lk->mx_count; i++) {
        struct dns_mxhost *h = &lk->mx[i];
        for (size_t j = 0; j < h->v4_count; j++)
            dns_result_add(res, h->host, h->preference, h->a_secure, AF_INET, &h->v4[j], lk->port);
        for (size_t j = 0; j < h->v6_count; j++)
            dns_result_add(res, h->host, h->preference, h->aaaa_secure, AF_INET6, &h->v6[j],
                           lk->port);
        if (h->v4_count + h->v6_count > 0)
            continue;
        st = dns_addr_worst(h, &type);
        if (fail_status == 0 || (dns_status_permanent(fail_status) && !dns_status_permanent(st))) {
            fail_status = st;
            fail_type = type;
            fail_name = h->host;
        }
    }
    if (res->count > 0) {
        res->mx_secure = lk->mx_secure && (!lk->name_is_host || dns_result_all_secure(res));
        dns_lookup_finish(lk, res);
        return;
    }
    dns_result_free(res);
    dns_fail(lk, fail_name, fail_type, fail_status ? fail_status : ARES_ENODATA);
}

/* dns_lookup_done - one query finished; assemble when it was the last */
static void dns_lookup_done(struct dns_lookup *lk)
{
    if (dns_pending_settle(&lk->p) && lk->p.queries == 0)
        dns_lookup_assemble(lk);
}

/* dns_parse_a - store the A records of abuf into h */
static int dns_parse_a(struct dns_mxhost *h, unsigned char *abuf, int alen)
{
    struct ares_addrttl ttls[DNS_MAX_ADDRS];
    int n = DNS_MAX_ADDRS;
    int rc = ares_parse_a_reply(abuf, alen, NULL, ttls, &n);

    if (rc != ARES_SUCCESS)
        return rc;
    for (int i = 0; i < n && h->v4_count < DNS_MAX_ADDRS; i++)
        h->v4[h->v4_count++] = ttls[i].ipaddr;
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

/* dns_parse_aaaa - store the AAAA records of abuf into h */
static int dns_parse_aaaa(struct dns_mxhost *h, unsigned char *abuf, int alen)
{
    struct ares_addr6ttl ttls[DNS_MAX_ADDRS];
    int n = DNS_MAX_ADDRS;
    int rc = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n);

    if (rc != ARES_SUCCESS)
        return rc;
    for (int i = 0; i < n && h->v6_count < DNS_MAX_ADDRS; i++)
        memcpy(&h->v6[h->v6_count++], &ttls[i].ip6addr, sizeof(struct in6_addr));
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

/* dns_addr_callback - an A or AAAA answer for one host */
static void dns_addr_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_sent *q = arg;
    struct dns_lookup *lk = (struct dns_lookup *)q->p;
    struct dns_mxhost *h = &lk->mx[q->index];
    int type = q->type;

    free(q);
    if (status == ARES_SUCCESS)
        status = (type == ns_t_a) ? dns_parse_a(h, abuf, alen) : dns_parse_aaaa(h, abuf, alen);
    if (type == ns_t_a) {
        h->a_status = status;
        h->a_secure = dns_header_ad(abuf, alen);
    } else {
        h->aaaa_status = status;
        h->aaaa_secure = dns_header_ad(abuf, alen);
    }
    dns_lookup_done(lk);
}

/* dns_lookup_query_hosts - look up A and AAAA for every host in lk->mx */
static void dns_lookup_query_hosts(struct dns_lookup *lk)
{
    lk->p.queries++; /* keep a synchronous failure from finishing early */
    for (size_t i = 0; i < lk->mx_count; i++) {
        lk->mx[i].a_status = -1;
        lk->mx[i].aaaa_status = -1;
        dns_pending_query(&lk->p, lk->mx[i].host, ns_t_a, i, dns_addr_callback);
        dns_pending_query(&lk->p, lk->mx[i].host, ns_t_aaaa, i, dns_addr_callback);
    }
    dns_lookup_done(lk);
}

/* dns_add_host - append a host to look up */
static void dns_add_host(struct dns_lookup *lk, const char *host, int pref)
{
    if (lk->mx_count >= DNS_MAX_MX)
        return;
    lk->mx[lk->mx_count].host = xstrdup(host);
    lk->mx[lk->mx_count].preference = pref;
    lk->mx_count++;
}

/* dns_mx_is_null - 1 for the null MX "." (RFC 7505) */
static int dns_mx_is_null(const struct ares_mx_reply *mx)
{
    return mx->host == NULL || mx->host[0] == 0 || strcmp(mx->host, ".") == 0;
}

/* dns_mx_sort - stable insertion sort of v[0..n) by priority */
static void dns_mx_sort(struct ares_mx_reply **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct ares_mx_reply *x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1]->priority > x->priority) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* dns_mx_sorted - the MX records of list with a bounded host name (null MX
 * included), at most DNS_MAX_MX_RECORDS, into v sorted by preference; the
 * count */
static size_t dns_mx_sorted(struct ares_mx_reply *list, struct ares_mx_reply **v)
{
    size_t n = 0;

    for (struct ares_mx_reply *mx = list; mx != NULL && n < DNS_MAX_MX_RECORDS; mx = mx->next) {
        if (dns_mx_is_null(mx) || strlen(mx->host) <= DNS_MAX_NAME)
            v[n++] = mx;
    }
    dns_mx_sort(v, n);
    return n;
}

/* dns_mx_collect - usable MX records of list into lk, sorted; returns the
 * number of null MX records seen */
static int dns_mx_collect(struct dns_lookup *lk, struct ares_mx_reply *list)
{
    struct ares_mx_reply *v[DNS_MAX_MX_RECORDS];
    size_t n = dns_mx_sorted(list, v);
    int nulls = 0;

    for (size_t i = 0; i < n; i++) {
        if (dns_mx_is_null(v[i]))
            nulls++;
        else
            dns_add_host(lk, v[i]->host, v[i]->priority);
    }
    return nulls;
}

/* dns_null_mx - the domain says it accepts no mail */
static void dns_null_mx(struct dns_lookup *lk)
{
    buf_t reason = BUF_INIT;

    buf_printf(&reason, "Domain %s does not accept mail (nullMX)", lk->name);
    dns_lookup_finish(lk, dns_result_new(DNS_NOTFOUND, buf_cstr(&reason)));
    buf_free(&reason);
}

/* dns_mx_callback - the MX answer: expand hosts, or fall back to the name */
static void dns_mx_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_lookup *lk = (struct dns_lookup *)((struct dns_sent *)arg)->p;
    struct ares_mx_reply *list = NULL;
    int nulls;

    free(arg);
    if (!dns_pending_settle(&lk->p))
        return;
    lk->mx_secure = dns_header_ad(abuf, alen); /* a secure NODATA too (RFC 7672 2.2.1) */
    if (status == ARES_SUCCESS)
        status = ares_parse_mx_reply(abuf, alen, &list);
    if (status == ARES_ENODATA) {
        lk->name_is_host = 1;
        dns_add_host(lk, lk->name, 0);
        dns_lookup_query_hosts(lk);
        return;
    }
    if (status != ARES_SUCCESS) {
        dns_fail(lk, lk->name, "MX", status);
        return;
    }
    nulls = dns_mx_collect(lk, list);
    ares_free_data(list);
    if (lk->mx_count == 0) {
        if (nulls > 0)
            dns_null_mx(lk);
        else
            dns_fail(lk, lk->name, "MX", ARES_ENODATA);
        return;
    }
    dns_lookup_query_hosts(lk);
}

/* dns_ip_literal - an address literal needs no DNS; 1 when name was one */
static int dns_ip_literal(struct dns_lookup *lk)
{
    struct in_addr v4;
    struct in6_addr v6;
    struct dns_result *res;

    if (inet_pton(AF_INET, lk->name, &v4) == 1) {
        res = dns_result_new(DNS_OK, "");
        dns_result_add(res, lk->name, 0, 0, AF_INET, &v4, lk->port);
    } else if (inet_pton(AF_INET6, lk->name, &v6) == 1) {
        res = dns_result_new(DNS_OK, "");
        dns_result_add(res, lk->name, 0, 0, AF_INET6, &v6, lk->port);
    } else {
        return 0;
    }
    dns_lookup_finish(lk, res);
    return 1;
}

/* dns_name_valid - a plausible host name: bounded, printable, no spaces */
static int dns_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > DNS_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 127)
            return 0;
    }
    return 1;
}

/* dns_resolve_nexthop - see dns.h */
void dns_resolve_nexthop(struct dns_ctx *ctx, const char *name, int use_mx, int default_port,
                         dns_result_cb cb, void *arg)
{
    struct dns_lookup *lk = xcalloc(1, sizeof(*lk));

    dns_pending_start(ctx, &lk->p, DNS_KIND_NEXTHOP, dns_lookup_release,
                      (union dns_callback){.nexthop = cb}, arg);
    lk->name = xstrdup(name);
    lk->port = default_port;
    if (dns_ip_literal(lk))
        return;
    if (!dns_name_valid(name)) {
        dns_fail(lk, name, use_mx ? "MX" : "A", ARES_ENOTFOUND);
        return;
    }
    if (!use_mx) {
        lk->name_is_host = 1;
        lk->mx_secure = 1; /* no MX asked: the addresses alone decide */
        dns_add_host(lk, name, 0);
        dns_lookup_query_hosts(lk);
        return;
    }
    dns_pending_query(&lk->p, name, ns_t_mx, 0, dns_mx_callback);
}

/* dns_answer_free - see dns.h */
void dns_answer_free(struct dns_answer *ans)
{
    if (ans == NULL)
        return;
    for (size_t i = 0; i < ans->count; i++)
        free(ans->v[i]);
    free(ans->v);
    free(ans->reason);
    free(ans);
}

/* dns_answer_new - an empty answer (status and reason come later) */
static struct dns_answer *dns_answer_new(void)
{
    struct dns_answer *ans = xcalloc(1, sizeof(*ans));

    ans->v = xcalloc(DNS_MAX_ANSWERS + 1, sizeof(*ans->v));
    return ans;
}

/* dns_answer_add - append one record (bounded by DNS_MAX_ANSWERS) */
static void dns_answer_add(struct dns_answer *ans, const char *text)
{
    if (ans->count < DNS_MAX_ANSWERS)
        ans->v[ans->count++] = xstrdup(text);
}

/* dns_answer_conclude - set status and reason from the ares status of the
 * query of type for name */
static void dns_answer_conclude(struct dns_answer *ans, const char *name, const char *type,
                                int status)
{
    buf_t reason = BUF_INIT;

    ans->status = dns_status_of(status);
    if (status != ARES_SUCCESS)
        dns_reason(&reason, name, type, status);
    free(ans->reason);
    ans->reason = xstrdup(buf_cstr(&reason));
    buf_free(&reason);
}

/* dns_answer_parse_a - the A records of abuf as text */
static int dns_answer_parse_a(struct dns_answer *ans, unsigned char *abuf, int alen)
{
    struct ares_addrttl ttls[DNS_MAX_ANSWERS];
    char text[INET_ADDRSTRLEN];
    int n = DNS_MAX_ANSWERS;
    int rc = ares_parse_a_reply(abuf, alen, NULL, ttls, &n);

    for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
        dns_answer_add(ans, inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof(text)));
    return rc;
}

/* dns_answer_parse_aaaa - the AAAA records of abuf as text */
static int dns_answer_parse_aaaa(struct dns_answer *ans, unsigned char *abuf, int alen)
{
    struct ares_addr6ttl ttls[DNS_MAX_ANSWERS];
    char text[INET6_ADDRSTRLEN];
    int n = DNS_MAX_ANSWERS;
    int rc = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n);

    for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
        dns_answer_add(ans, inet_ntop(AF_INET6, &ttls[i].ip6addr, text, sizeof(text)));
    return rc;
}

/* dns_answer_parse_txt - one string per TXT record of abuf: c-ares lists
 * character-strings, record_start marks the first of each record */
static int dns_answer_parse_txt(struct dns_answer *ans, unsigned char *abuf, int alen)
{
    struct ares_txt_ext *list = NULL;
    buf_t text = BUF_INIT;
    int open = 0;
    int rc = ares_parse_txt_reply_ext(abuf, alen, &list);

    for (struct ares_txt_ext *t = rc == ARES_SUCCESS ? list : NULL; t != NULL; t = t->next) {
        if (t->record_start && open) {
            dns_answer_add(ans, buf_cstr(&text));
            buf_reset(&text);
        }
        open = 1;
        if (text.len < DNS_MAX_TXT)
            buf_append(&text, t->txt,
                       t->length < DNS_MAX_TXT - text.len ? t->length : DNS_MAX_TXT - text.len);
    }
    if (open)
        dns_answer_add(ans, buf_cstr(&text));
    buf_free(&text);
    ares_free_data(list);
    return rc;
}

/* dns_answer_parse_ptr - the PTR names of abuf: c-ares 1.18 puts the last in
 * h_name and all of them, in order, in h_aliases */
static int dns_answer_parse_ptr(struct dns_answer *ans, unsigned char *abuf, int alen)
{
    struct in_addr unused = {0}; /* ares copies an address into the hostent */
    struct hostent *he = NULL;
    int rc = ares_parse_ptr_reply(abuf, alen, &unused, sizeof(unused), AF_INET, &he);

    if (rc != ARES_SUCCESS)
        return rc;
    for (size_t i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL; i++)
        dns_answer_add(ans, he->h_aliases[i]);
    if (ans->count == 0 && he->h_name != NULL)
        dns_answer_add(ans, he->h_name);
    ares_free_hostent(he);
    return rc;
}

/* dns_answer_parse_mx - the MX host names of abuf by preference, "." for a
 * null MX */
static int dns_answer_parse_mx(struct dns_answer *ans, unsigned char *abuf, int alen)
{
    struct ares_mx_reply *list = NULL, *v[DNS_MAX_MX_RECORDS];
    int rc = ares_parse_mx_reply(abuf, alen, &list);
    size_t n = rc == ARES_SUCCESS ? dns_mx_sorted(list, v) : 0;

    for (size_t i = 0; i < n; i++)
        dns_answer_add(ans, dns_mx_is_null(v[i]) ? "." : v[i]->host);
    ares_free_data(list);
    return rc;
}

/* dns_skip_name - the offset after the (compressed) name at off in abuf, -1
 * when it is malformed */
static int dns_skip_name(const unsigned char *abuf, int alen, int off)
{
    char *name = NULL;
    long len = 0;

    if (off >= alen || ares_expand_name(abuf + off, abuf, alen, &name, &len) != ARES_SUCCESS)
        return -1;
    ares_free_string(name);
    return off + (int)len;
}

/* dns_tlsa_text - one TLSA RDATA (usage, selector, matching type, data) as
 * "u s m hex" */
static void dns_tlsa_text(buf_t *out, const unsigned char *rdata, int rdlen)
{
    static const char hex[] = "0123456789abcdef";

    buf_printf(out, "%u %u %u ", rdata[0], rdata[1], rdata[2]);
    for (int i = 3; i < rdlen; i++) {
        buf_putc(out, hex[rdata[i] >> 4]);
        buf_putc(out, hex[rdata[i] & 15]);
    }
}

/* dns_tlsa_record - the resource record at off in abuf: its text into ans
 * when it is a TLSA record; the offset after it, or -1 when it is malformed
 * (truncated, or TLSA RDATA shorter than the 3 octets of usage, selector and
 * matching type).  A record without data is passed on ("3 1 1 "): a malformed
 * TLSA record is unusable (RFC 7672 2.2), which lib/dane decides, not a
 * failure of the whole answer. */
static int dns_tlsa_record(struct dns_answer *ans, const unsigned char *abuf, int alen, int off)
{
    buf_t text = BUF_INIT;
    int type, rdlen;

    off = dns_skip_name(abuf, alen, off);
    if (off < 0 || off + RRFIXEDSZ > alen)
        return -1;
    type = DNS_RR_TYPE(abuf + off);
    rdlen = DNS_RR_LEN(abuf + off);
    off += RRFIXEDSZ;
    if (off + rdlen > alen || (type == ns_t_tlsa && rdlen < 3))
        return -1;
    if (type == ns_t_tlsa) {
        dns_tlsa_text(&text, abuf + off, rdlen);
        dns_answer_add(ans, buf_cstr(&text));
        buf_free(&text);
    }
    return off + rdlen;
}

/* dns_answer_parse_tlsa - the TLSA records of the answer section of abuf
 * (c-ares 1.18 has no TLSA parser); other types (a CNAME) are skipped */
static int dns_answer_parse_tlsa(struct dns_answer *ans, unsigned char *abuf, int alen)
{
    int off = HFIXEDSZ;

    if (alen < HFIXEDSZ)
        return ARES_EBADRESP;
    for (int i = 0; i < DNS_HEADER_QDCOUNT(abuf) && off >= 0; i++) {
        off = dns_skip_name(abuf, alen, off);
        off = off < 0 ? -1 : off + QFIXEDSZ;
    }
    for (int i = 0; i < DNS_HEADER_ANCOUNT(abuf) && off >= 0; i++)
        off = dns_tlsa_record(ans, abuf, alen, off);
    return off < 0 ? ARES_EBADRESP : ARES_SUCCESS;
}

/* how each enum dns_qtype is asked and read */
static const struct dns_qtype_info {
    int ns_type;
    const char *name;
    int (*parse)(struct dns_answer *ans, unsigned char *abuf, int alen);
} dns_qtypes[] = {
    [DNS_QA] = {ns_t_a, "A", dns_answer_parse_a},
    [DNS_QAAAA] = {ns_t_aaaa, "AAAA", dns_answer_parse_aaaa},
    [DNS_QTXT] = {ns_t_txt, "TXT", dns_answer_parse_txt},
    [DNS_QPTR] = {ns_t_ptr, "PTR", dns_answer_parse_ptr},
    [DNS_QMX] = {ns_t_mx, "MX", dns_answer_parse_mx},
    [DNS_QTLSA] = {ns_t_tlsa, "TLSA", dns_answer_parse_tlsa},
};

/* dns_answer_read - the answer to a query of type for name; *status is the
 * ares status (ARES_ENODATA for success with no usable record) */
static struct dns_answer *dns_answer_read(const char *name, enum dns_qtype type, int *status,
                                          unsigned char *abuf, int alen)
{
    struct dns_answer *ans = dns_answer_new();

    if (*status == ARES_SUCCESS)
        *status = dns_qtypes[type].parse(ans, abuf, alen);
    ans->secure = *status == ARES_SUCCESS && dns_header_ad(abuf, alen);
    if (*status == ARES_SUCCESS && ans->count == 0)
        *status = ARES_ENODATA;
    dns_answer_conclude(ans, name, dns_qtypes[type].name, *status);
    return ans;
}

/* dns_ask_release - free a dns_query / dns_domain_check lookup's state */
static void dns_ask_release(struct dns_pending *p)
{
    struct dns_ask *ask = (struct dns_ask *)p;

    free(ask->name);
    free(ask);
}

/* dns_ask_finish - deliver ans */
static void dns_ask_finish(struct dns_ask *ask, struct dns_answer *ans)
{
    ask->p.result.answer = ans;
    dns_pending_finish(&ask->p);
}

static void dns_ask_next(struct dns_ask *ask);

/* dns_ask_callback - the answer of the current type: deliver it, or ask the
 * next type when it was NODATA */
static void dns_ask_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_ask *ask = (struct dns_ask *)((struct dns_sent *)arg)->p;
    struct dns_answer *ans;

    free(arg);
    if (!dns_pending_settle(&ask->p))
        return;
    ans = dns_answer_read(ask->name, ask->types[ask->step], &status, abuf, alen);
    if (status == ARES_ENODATA && ++ask->step < ask->type_count) {
        dns_answer_free(ans);
        dns_ask_next(ask);
        return;
    }
    dns_ask_finish(ask, ans);
}

/* dns_ask_next - send the query of the current type */
static void dns_ask_next(struct dns_ask *ask)
{
    dns_pending_query(&ask->p, ask->name, dns_qtypes[ask->types[ask->step]].ns_type, 0,
                      dns_ask_callback);
}

/* dns_ask_new - a lookup for name, on the context's list */
static struct dns_ask *dns_ask_new(struct dns_ctx *ctx, const char *name, dns_answer_cb cb,
                                   void *arg)
{
    struct dns_ask *ask = xcalloc(1, sizeof(*ask));

    dns_pending_start(ctx, &ask->p, DNS_KIND_ANSWER, dns_ask_release,
                      (union dns_callback){.answer = cb}, arg);
    ask->name = xstrdup(name);
    return ask;
}

/* dns_ask_start - a lookup of name asking types in turn */
static struct dns_ask *dns_ask_start(struct dns_ctx *ctx, const char *name,
                                     const enum dns_qtype *types, size_t type_count,
                                     dns_answer_cb cb, void *arg)
{
    struct dns_ask *ask = dns_ask_new(ctx, name, cb, arg);

    ask->types = types;
    ask->type_count = type_count;
    if (dns_name_valid(name)) {
        dns_ask_next(ask);
    } else {
        struct dns_answer *ans = dns_answer_new();
        dns_answer_conclude(ans, name, dns_qtypes[types[0]].name, ARES_ENOTFOUND);
        dns_ask_finish(ask, ans);
    }
    return ask;
}

/* dns_query - see dns.h */
struct dns_pending *dns_query(struct dns_ctx *ctx, const char *name, enum dns_qtype type,
                              dns_answer_cb cb, void *arg)
{
    /* types[t] == t: a list of one type for each type */
    static const enum dns_qtype types[] = {DNS_QA,   DNS_QAAAA, DNS_QTXT,
                                           DNS_QPTR, DNS_QMX,   DNS_QTLSA};

    if ((unsigned)type >= sizeof(types) / sizeof(types[0]))
        log_panic("dns_query: bad type %d", (int)type);
    return &dns_ask_start(ctx, name, &types[type], 1, cb, arg)->p;
}

/* dns_domain_literal - the address of an address literal "[1.2.3.4]" or
 * "[IPv6:::1]" into out; 1 when domain is a valid one */
static int dns_domain_literal(const char *domain, char *out, size_t outlen)
{
    size_t len = strlen(domain);
    unsigned char bin[sizeof(struct in6_addr)];
    const char *ip = domain + 1;
    int family = AF_INET;

    if (len < 3 || len - 2 >= outlen || domain[0] != '[' || domain[len - 1] != ']')
        return 0;
    if (strncasecmp(ip, "IPv6:", 5) == 0) {
        ip += 5;
        family = AF_INET6;
    }
    snprintf(out, outlen, "%.*s", (int)(domain + len - 1 - ip), ip);
    return inet_pton(family, out, bin) == 1;
}

/* dns_domain_check - see dns.h */
struct dns_pending *dns_domain_check(struct dns_ctx *ctx, const char *domain, dns_answer_cb cb,
                                     void *arg)
{
    static const enum dns_qtype types[] = {DNS_QMX, DNS_QA, DNS_QAAAA};
    char ip[INET6_ADDRSTRLEN + 8];
    struct dns_ask *ask;
    struct dns_answer *ans;

    if (domain[0] != '[')
        return &dns_ask_start(ctx, domain, types, 3, cb, arg)->p;
    ask = dns_ask_new(ctx, domain, cb, arg);
    ans = dns_answer_new();
    if (dns_domain_literal(domain, ip, sizeof(ip)))
        dns_answer_add(ans, ip);
    else
        ans->status = DNS_NOTFOUND;
    ans->reason = xstrdup(ans->count ? "" : "Invalid address literal");
    dns_ask_finish(ask, ans);
    return &ask->p;
}

/* dns_client_name_free - see dns.h */
void dns_client_name_free(struct dns_client_name *cn)
{
    if (cn == NULL)
        return;
    free(cn->name);
    free(cn->reverse_name);
    free(cn);
}

/* dns_rdns_release - free a dns_client_name lookup's state */
static void dns_rdns_release(struct dns_pending *p)
{
    struct dns_rdns *r = (struct dns_rdns *)p;

    for (size_t i = 0; i < r->name_count; i++)
        free(r->names[i]);
    free(r);
}

/* dns_rdns_verdict - the status of the client name; *found the confirmed
 * name (the first in PTR order) or "unknown" */
static enum dns_status dns_rdns_verdict(const struct dns_rdns *r, const char **found)
{
    size_t tempfails = 0;

    *found = "unknown";
    if (r->reverse_status != DNS_OK)
        return r->reverse_status;
    for (size_t i = 0; i < r->name_count; i++) {
        if (r->confirmed[i] == DNS_OK) {
            *found = r->names[i];
            return DNS_OK;
        }
        tempfails += r->confirmed[i] == DNS_TEMPFAIL;
    }
    return r->name_count > 0 && tempfails == r->name_count ? DNS_TEMPFAIL : DNS_NOTFOUND;
}

/* dns_rdns_finish - deliver the client name */
static void dns_rdns_finish(struct dns_rdns *r)
{
    struct dns_client_name *cn = xcalloc(1, sizeof(*cn));
    const char *found;

    cn->status = dns_rdns_verdict(r, &found);
    cn->name = xstrdup(found);
    cn->reverse_name = xstrdup(r->name_count > 0 ? r->names[0] : "unknown");
    cn->reverse_status = r->reverse_status;
    r->p.result.client_name = cn;
    dns_pending_finish(&r->p);
}

/* dns_rdns_addr_callback - the A/AAAA answer for PTR name i: does it hold
 * the client's address? */
static void dns_rdns_addr_callback(void *arg, int status, int timeouts, unsigned char *abuf,
                                   int alen)
{
    struct dns_rdns *r = (struct dns_rdns *)((struct dns_sent *)arg)->p;
    size_t i = ((struct dns_sent *)arg)->index;
    struct dns_answer *ans;

    free(arg);
    if (!dns_pending_settle(&r->p))
        return;
    ans = dns_answer_read(r->names[i], r->type, &status, abuf, alen);
    r->confirmed[i] = ans->status == DNS_OK ? DNS_NOTFOUND : ans->status;
    for (size_t j = 0; j < ans->count; j++) {
        if (strcmp(ans->v[j], r->addr) == 0)
            r->confirmed[i] = DNS_OK;
    }
    dns_answer_free(ans);
    if (r->p.queries == 0)
        dns_rdns_finish(r);
}

/* dns_hostname_valid - a name fit to be a client's name: letters, digits,
 * '-', '_', '.', and not an IPv4 address */
static int dns_hostname_valid(const char *name)
{
    struct in_addr v4;

    if (!dns_name_valid(name) || inet_pton(AF_INET, name, &v4) == 1)
        return 0;
    for (const char *c = name; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return 0;
    }
    return 1;
}

/* dns_rdns_keep_names - the valid PTR names of ans, lower-case, into r */
static void dns_rdns_keep_names(struct dns_rdns *r, const struct dns_answer *ans)
{
    for (size_t i = 0; i < ans->count && r->name_count < DNS_MAX_PTR_NAMES; i++) {
        char *name;
        if (!dns_hostname_valid(ans->v[i]))
            continue;
        name = xstrdup(ans->v[i]);
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        r->names[r->name_count++] = name;
    }
}

/* dns_rdns_ptr_callback - the PTR answer: confirm each name */
static void dns_rdns_ptr_callback(void *arg, int status, int timeouts, unsigned char *abuf,
                                  int alen)
{
    struct dns_rdns *r = (struct dns_rdns *)((struct dns_sent *)arg)->p;
    struct dns_answer *ans;

    free(arg);
    if (!dns_pending_settle(&r->p))
        return;
    ans = dns_answer_read(r->reverse, DNS_QPTR, &status, abuf, alen);
    r->reverse_status = ans->status;
    dns_rdns_keep_names(r, ans);
    dns_answer_free(ans);
    r->p.queries++; /* keep a synchronous failure from finishing early */
    for (size_t i = 0; i < r->name_count; i++)
        dns_pending_query(&r->p, r->names[i], dns_qtypes[r->type].ns_type, i,
                          dns_rdns_addr_callback);
    if (--r->p.queries == 0)
        dns_rdns_finish(r);
}

/* dns_rdns_reverse6 - the ip6.arpa name and the text of a6 into r */
static void dns_rdns_reverse6(struct dns_rdns *r, const struct in6_addr *a6)
{
    static const char hex[] = "0123456789abcdef";
    char *out = r->reverse;

    for (int i = 15; i >= 0; i--) {
        *out++ = hex[a6->s6_addr[i] & 15];
        *out++ = '.';
        *out++ = hex[a6->s6_addr[i] >> 4];
        *out++ = '.';
    }
    snprintf(out, sizeof(r->reverse) - (size_t)(out - r->reverse), "ip6.arpa");
    inet_ntop(AF_INET6, a6, r->addr, sizeof(r->addr));
    r->type = DNS_QAAAA;
}

/* dns_rdns_address - the reverse name and the text of sa into r (an
 * IPv4-mapped IPv6 address as IPv4); -1 for another family */
static int dns_rdns_address(struct dns_rdns *r, const struct sockaddr *sa)
{
    unsigned char v4[4];

    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(a6)) {
            dns_rdns_reverse6(r, a6);
            return 0;
        }
        memcpy(v4, &a6->s6_addr[12], sizeof(v4));
    } else if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, sizeof(v4));
    } else {
        return -1;
    }
    snprintf(r->reverse, sizeof(r->reverse), "%u.%u.%u.%u.in-addr.arpa", v4[3], v4[2], v4[1],
             v4[0]);
    inet_ntop(AF_INET, v4, r->addr, sizeof(r->addr));
    r->type = DNS_QA;
    return 0;
}

/* dns_client_name - see dns.h */
struct dns_pending *dns_client_name(struct dns_ctx *ctx, const struct sockaddr *addr,
                                    dns_client_name_cb cb, void *arg)
{
    struct dns_rdns *r = xcalloc(1, sizeof(*r));

    dns_pending_start(ctx, &r->p, DNS_KIND_CLIENT_NAME, dns_rdns_release,
                      (union dns_callback){.client_name = cb}, arg);
    if (dns_rdns_address(r, addr) == 0) {
        dns_pending_query(&r->p, r->reverse, ns_t_ptr, 0, dns_rdns_ptr_callback);
    } else {
        r->reverse_status = DNS_NOTFOUND;
        dns_rdns_finish(r);
    }
    return &r->p;
}
