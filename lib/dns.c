/*
 * dns - c-ares on the libevent loop, and next-hop resolution for SMTP
 * clients (MX, then A/AAAA).  Contract in dns.h.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dns.h"
#include "log.h"

#define DNS_MAX_NAME 253
#define DNS_MAX_MX_RECORDS 100 /* read at most this many before sorting */
#define DNS_TRIES 2

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
    struct dns_lookup *lookups; /* every unfinished lookup, for dns_free */
    int destroying;
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
};

struct dns_lookup {
    struct dns_ctx *ctx;
    struct dns_lookup *prev, *next;
    char *name;
    int port;
    dns_result_cb cb;
    void *arg;
    int pending; /* outstanding ares queries (+1 while launching) */
    struct dns_mxhost mx[DNS_MAX_MX];
    size_t mx_count;
    struct dns_result *result; /* set when finished */
    struct event *deliver;
};

/* the argument of one address query */
struct dns_query {
    struct dns_lookup *lookup;
    size_t mx_index;
    int type; /* ns_t_a or ns_t_aaaa */
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

/* dns_lookup_release - free a lookup's own state (not the result) */
static void dns_lookup_release(struct dns_lookup *lk)
{
    for (size_t i = 0; i < lk->mx_count; i++)
        free(lk->mx[i].host);
    if (lk->deliver)
        event_free(lk->deliver);
    free(lk->name);
    free(lk);
}

/* dns_lookup_unlink - take lk off the context's list */
static void dns_lookup_unlink(struct dns_lookup *lk)
{
    if (lk->prev)
        lk->prev->next = lk->next;
    else
        lk->ctx->lookups = lk->next;
    if (lk->next)
        lk->next->prev = lk->prev;
}

/* dns_free - see dns.h */
void dns_free(struct dns_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ctx->destroying = 1;
    ares_destroy(ctx->channel); /* callbacks see ARES_EDESTRUCTION and do nothing */
    while (ctx->lookups) {
        struct dns_lookup *lk = ctx->lookups;
        dns_lookup_unlink(lk);
        dns_result_free(lk->result);
        dns_lookup_release(lk);
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
static void dns_result_add(struct dns_result *res, const char *host, int pref, int family,
                           const void *addr, int port)
{
    struct dns_host *h;

    if (res->count >= DNS_MAX_ADDRS)
        return;
    h = &res->hosts[res->count++];
    h->hostname = xstrdup(host);
    h->preference = pref;
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

/* dns_deliver_event - hand the finished result to the caller */
static void dns_deliver_event(evutil_socket_t fd, short what, void *arg)
{
    struct dns_lookup *lk = arg;
    struct dns_result *res = lk->result;
    dns_result_cb cb = lk->cb;
    void *cb_arg = lk->arg;

    lk->result = NULL;
    dns_lookup_unlink(lk);
    dns_lookup_release(lk);
    cb(res, cb_arg);
}

/* dns_lookup_finish - store the result and schedule the callback */
static void dns_lookup_finish(struct dns_lookup *lk, struct dns_result *res)
{
    struct timeval zero = {0, 0};

    lk->result = res;
    lk->deliver = evtimer_new(lk->ctx->base, dns_deliver_event, lk);
    if (lk->deliver == NULL)
        log_panic("dns: evtimer_new failed");
    evtimer_add(lk->deliver, &zero);
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

/* dns_fail - finish lk with a failure for name/type */
static void dns_fail(struct dns_lookup *lk, const char *name, const char *type, int status)
{
    buf_t reason = BUF_INIT;
    enum dns_status st = dns_status_permanent(status) ? DNS_NOTFOUND : DNS_TEMPFAIL;

    buf_printf(&reason, "Host or domain name not found. Name service error for name=%s type=%s: %s",
               name, type, dns_status_text(status));
    if (st == DNS_TEMPFAIL && status != ARES_ESERVFAIL)
        buf_printf(&reason, " (%s)", ares_strerror(status));
    dns_lookup_finish(lk, dns_result_new(st, buf_cstr(&reason)));
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
            dns_result_add(res, h->host, h->preference, AF_INET, &h->v4[j], lk->port);
        for (size_t j = 0; j < h->v6_count; j++)
            dns_result_add(res, h->host, h->preference, AF_INET6, &h->v6[j], lk->port);
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
        dns_lookup_finish(lk, res);
        return;
    }
    dns_result_free(res);
    dns_fail(lk, fail_name, fail_type, fail_status ? fail_status : ARES_ENODATA);
}

/* dns_query_done - one query finished; assemble when it was the last */
static void dns_query_done(struct dns_lookup *lk)
{
    if (--lk->pending > 0 || lk->ctx->destroying)
        return;
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
    struct dns_query *q = arg;
    struct dns_lookup *lk = q->lookup;
    struct dns_mxhost *h = &lk->mx[q->mx_index];
    int type = q->type;

    free(q);
    if (status == ARES_SUCCESS)
        status = (type == ns_t_a) ? dns_parse_a(h, abuf, alen) : dns_parse_aaaa(h, abuf, alen);
    if (type == ns_t_a)
        h->a_status = status;
    else
        h->aaaa_status = status;
    dns_query_done(lk);
}

/* dns_query_addr - start the A or AAAA query for host i */
static void dns_query_addr(struct dns_lookup *lk, size_t i, int type)
{
    struct dns_query *q = xcalloc(1, sizeof(*q));

    q->lookup = lk;
    q->mx_index = i;
    q->type = type;
    lk->pending++;
    ares_query(lk->ctx->channel, lk->mx[i].host, ns_c_in, type, dns_addr_callback, q);
}

/* dns_query_hosts - look up A and AAAA for every host in lk->mx */
static void dns_query_hosts(struct dns_lookup *lk)
{
    lk->pending++; /* keep a synchronous failure from finishing early */
    for (size_t i = 0; i < lk->mx_count; i++) {
        lk->mx[i].a_status = -1;
        lk->mx[i].aaaa_status = -1;
        dns_query_addr(lk, i, ns_t_a);
        dns_query_addr(lk, i, ns_t_aaaa);
    }
    dns_query_done(lk);
    dns_timer_update(lk->ctx);
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

/* dns_mx_collect - usable MX records of list into lk, sorted; returns the
 * number of null MX records seen */
static int dns_mx_collect(struct dns_lookup *lk, struct ares_mx_reply *list)
{
    struct ares_mx_reply *v[DNS_MAX_MX_RECORDS];
    size_t n = 0;
    int nulls = 0;

    for (struct ares_mx_reply *mx = list; mx != NULL && n < DNS_MAX_MX_RECORDS; mx = mx->next) {
        if (dns_mx_is_null(mx))
            nulls++;
        else if (strlen(mx->host) <= DNS_MAX_NAME)
            v[n++] = mx;
    }
    dns_mx_sort(v, n);
    for (size_t i = 0; i < n; i++)
        dns_add_host(lk, v[i]->host, v[i]->priority);
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
    struct dns_lookup *lk = arg;
    struct ares_mx_reply *list = NULL;
    int nulls;

    lk->pending--;
    if (status == ARES_EDESTRUCTION || lk->ctx->destroying)
        return;
    if (status == ARES_SUCCESS)
        status = ares_parse_mx_reply(abuf, alen, &list);
    if (status == ARES_ENODATA) {
        dns_add_host(lk, lk->name, 0);
        dns_query_hosts(lk);
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
    dns_query_hosts(lk);
}

/* dns_ip_literal - an address literal needs no DNS; 1 when name was one */
static int dns_ip_literal(struct dns_lookup *lk)
{
    struct in_addr v4;
    struct in6_addr v6;
    struct dns_result *res;

    if (inet_pton(AF_INET, lk->name, &v4) == 1) {
        res = dns_result_new(DNS_OK, "");
        dns_result_add(res, lk->name, 0, AF_INET, &v4, lk->port);
    } else if (inet_pton(AF_INET6, lk->name, &v6) == 1) {
        res = dns_result_new(DNS_OK, "");
        dns_result_add(res, lk->name, 0, AF_INET6, &v6, lk->port);
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

    lk->ctx = ctx;
    lk->name = xstrdup(name);
    lk->port = default_port;
    lk->cb = cb;
    lk->arg = arg;
    lk->next = ctx->lookups;
    if (ctx->lookups)
        ctx->lookups->prev = lk;
    ctx->lookups = lk;
    if (dns_ip_literal(lk))
        return;
    if (!dns_name_valid(name)) {
        dns_fail(lk, name, use_mx ? "MX" : "A", ARES_ENOTFOUND);
        return;
    }
    if (!use_mx) {
        dns_add_host(lk, name, 0);
        dns_query_hosts(lk);
        return;
    }
    lk->pending++;
    ares_query(ctx->channel, name, ns_c_in, ns_t_mx, dns_mx_callback, lk);
    dns_timer_update(ctx);
}
