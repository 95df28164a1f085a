/*
 * trace - tern trace, sendmail -bt and sendmail -bv (see trace.h).
 *
 * One explanation engine: trace_recipient() follows an address through
 * what smtpd would answer (with --client), cleanup's rewriting and virtual
 * aliases, qmgr's route, local expansion (aliases, .forward; forwarded
 * addresses are followed again as the re-injected mail would be), and the
 * MX list smtp would try.  Each step is printed as it happens (lib/route's
 * trace events, lib/table's probe during local expansion); each final
 * destination is handed to a callback that prints the summary line the
 * front-end wants.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "addr.h"
#include "config.h"
#include "dns.h"
#include "local.h"
#include "netaddr.h"
#include "nexthop.h"
#include "policy.h"
#include "route.h"
#include "table.h"
#include "tern_build.h"
#include "trace.h"

#define TRACE_MAX_DEPTH 6 /* re-injections followed */

/* one final destination */
struct trace_final {
    const char *display; /* the address it is for, as the admin knows it */
    const char *mailer;  /* local, prog, *file*, smtp, relay, lmtp, error, ... */
    const char *host;    /* next hop, or NULL */
    const char *user;    /* user, path, command or address */
    const char *error;   /* why it is refused, or NULL */
    int temporary;       /* the refusal is a temporary failure */
};

struct trace;
typedef void (*trace_final_fn)(struct trace *t, const struct trace_final *f);

struct trace {
    const struct config *cfg;
    struct route *route;
    struct local_env env;
    int local_ok;
    buf_t local_err;
    int json;
    int quiet; /* no step lines (sendmail -bv) */
    int no_dns;
    int depth;
    const char *rcpt; /* the address being explained */
    const char *sender;
    struct event_base *base;
    struct dns_ctx *dns;
    trace_final_fn on_final;
    int refused;   /* finals that are permanent failures, refused RCPTs */
    int tempfails; /* and temporary ones */
};

/* ---- output */

/* trace_json_str - a JSON string */
static void trace_json_str(buf_t *out, const char *s)
{
    buf_putc(out, '"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            buf_printf(out, "\\u%04x", c);
        else
            buf_putc(out, c);
    }
    buf_putc(out, '"');
}

/* trace_json_field - ,"name":"value" when value is set */
static void trace_json_field(buf_t *out, const char *name, const char *value)
{
    if (value == NULL)
        return;
    buf_printf(out, ",\"%s\":", name);
    trace_json_str(out, value);
}

/* trace_emit - one step: a text line, or a JSON object */
static void trace_emit(struct trace *t, const struct route_event *ev)
{
    buf_t out = BUF_INIT;

    if (t->quiet)
        return;
    if (t->json) {
        buf_puts(&out, "{\"rcpt\":");
        trace_json_str(&out, t->rcpt);
        buf_printf(&out, ",\"depth\":%d", t->depth);
        trace_json_field(&out, "step", ev->step);
        trace_json_field(&out, "table", ev->table);
        trace_json_field(&out, "key", ev->key);
        trace_json_field(&out, "result", ev->result);
        trace_json_field(&out, "value", ev->value);
        trace_json_field(&out, "before", ev->before);
        trace_json_field(&out, "after", ev->after);
        trace_json_field(&out, "note", ev->note);
        printf("%s}\n", out.data);
    } else {
        printf("%*s[%s] ", 2 + 2 * t->depth, "", ev->step);
        if (ev->table)
            printf("%s: %s -> %s%s%s\n", ev->table, ev->key ? ev->key : "", ev->result,
                   ev->value ? ": " : "", ev->value ? ev->value : "");
        else if (ev->before)
            printf("%s -> %s%s%s%s\n", ev->before, ev->after, ev->note ? " (" : "",
                   ev->note ? ev->note : "", ev->note ? ")" : "");
        else
            printf("%s\n", ev->note ? ev->note : "");
    }
    buf_free(&out);
}

/* trace_note - a step of our own */
static void trace_note(struct trace *t, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trace_note(struct trace *t, const char *step, const char *fmt, ...)
{
    struct route_event ev = {0};
    buf_t text = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    ev.step = step;
    ev.note = text.data;
    trace_emit(t, &ev);
    buf_free(&text);
}

/* trace_route_event - lib/route's steps */
static void trace_route_event(const struct route_event *ev, void *ctx)
{
    trace_emit(ctx, ev);
}

/* trace_table_probe - lib/table's lookups during local expansion */
static void trace_table_probe(const char *spec, const char *key, enum table_result res,
                              const char *value, void *ctx)
{
    struct route_event ev = {0};

    ev.step = "local";
    ev.table = spec;
    ev.key = key;
    ev.result = res == TABLE_FOUND ? "found" : res == TABLE_NOTFOUND ? "not found" : "failed";
    ev.value = value;
    trace_emit(ctx, &ev);
}

/* trace_final - a final destination: counted, then the front-end's line */
static void trace_final(struct trace *t, const struct trace_final *f)
{
    if (f->error && f->temporary)
        t->tempfails++;
    else if (f->error)
        t->refused++;
    t->on_final(t, f);
}

/* trace_final_error - a refused or failed destination */
static void trace_final_error(struct trace *t, const char *display, const char *dsn,
                              const char *text)
{
    struct trace_final f = {display, "error", NULL, display, text, dsn[0] == '4'};
    trace_final(t, &f);
}

/* ---- DNS */

struct trace_dns_wait {
    struct trace *t;
    int done;
};

/* trace_dns_answer - print the hosts smtp would try, in order */
static void trace_dns_answer(struct dns_result *res, void *arg)
{
    struct trace_dns_wait *w = arg;

    w->done = 1;
    if (res->status != DNS_OK) {
        trace_note(w->t, "dns", "%s (%s)", res->reason, dns_status_name(res->status));
    } else {
        for (size_t i = 0; i < res->count; i++) {
            char addr[64];
            const struct sockaddr *sa = (const struct sockaddr *)&res->hosts[i].addr;
            int port =
                ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                : ((const struct sockaddr_in *)sa)->sin_port);
            netaddr_format(sa, addr, sizeof(addr));
            trace_note(w->t, "dns", "try %zu: preference %d, %s[%s]:%d", i + 1,
                       res->hosts[i].preference, res->hosts[i].hostname, addr, port);
        }
    }
    dns_result_free(res);
}

/* trace_dns_open - the resolver, made on first use */
static int trace_dns_open(struct trace *t)
{
    buf_t err = BUF_INIT;

    if (t->dns != NULL)
        return 0;
    if (t->base == NULL)
        t->base = event_base_new();
    t->dns = dns_create(t->base, config_list(t->cfg, "dns_servers", NULL),
                        config_time(t->cfg, "dns_timeout"), &err);
    if (t->dns == NULL)
        trace_note(t, "dns", "no resolver: %s", err.data);
    buf_free(&err);
    return t->dns ? 0 : -1;
}

/* trace_dns - the addresses smtp or lmtp would connect to (the next hop
 * parsed by smtp's own parser, smtp/nexthop.c) */
static void trace_dns(struct trace *t, const struct route_dest *d)
{
    int lmtp = strcmp(d->transport, "lmtp") == 0;
    int port = (int)config_int(t->cfg, lmtp ? "lmtp_tcp_port" : "smtp_default_port");
    struct smtp_nexthop hop;
    struct trace_dns_wait w = {t, 0};

    if (t->no_dns || t->quiet)
        return;
    if (smtp_nexthop_parse(buf_cstr(&d->nexthop), lmtp, port, &hop) < 0) {
        trace_note(t, "dns", "bad next hop \"%s\"", buf_cstr(&d->nexthop));
        return;
    }
    if (hop.kind == SMTP_NEXTHOP_UNIX) {
        trace_note(t, "dns", "%s: a UNIX socket, no DNS", hop.host);
        return;
    }
    if (trace_dns_open(t) < 0)
        return;
    trace_note(t, "dns", "%s: %s", hop.host,
               hop.use_mx ? "MX lookup" : "address records only (no MX lookup)");
    dns_resolve_nexthop(t->dns, hop.host, hop.use_mx, hop.port, trace_dns_answer, &w);
    while (!w.done && event_base_loop(t->base, EVLOOP_ONCE) == 0)
        ;
}

/* trace_generic - the envelope sender as tern-smtp sends it
 * (smtp_generic_maps), when --from named one */
static void trace_generic(struct trace *t)
{
    struct route_reply why;
    buf_t out = BUF_INIT;

    if (t->sender == NULL || *t->sender == 0 || !route_has_generic(t->route))
        return;
    route_reply_init(&why);
    if (route_rewrite_generic(t->route, t->sender, &out, &why) > 0)
        trace_note(t, "smtp", "MAIL FROM:<%s> (smtp_generic_maps)", out.data);
    route_reply_free(&why);
    buf_free(&out);
}

/* ---- the explanation */

static void trace_recipient(struct trace *t, const char *display, const char *addr, int flags);

/* trace_local - aliases, :include:, .forward, users, as tern-local would */
static void trace_local(struct trace *t, const char *display, const char *addr)
{
    struct local_expansion x = {0};
    struct delivery_outcome res;

    if (!t->local_ok) {
        trace_note(t, "local", "local expansion not shown: %s", t->local_err.data);
        struct trace_final f = {display, "local", NULL, addr, NULL, 0};
        trace_final(t, &f);
        return;
    }
    memset(&res, 0, sizeof(res));
    table_set_probe(trace_table_probe, t);
    int rc = local_expand(&t->env, addr, t->sender ? t->sender : "", &x, &res);
    table_set_probe(NULL, NULL);
    if (rc < 0) {
        trace_final_error(t, display, res.dsn, buf_cstr(&res.reason));
    } else {
        for (size_t i = 0; i < x.count; i++) {
            const struct local_target *tg = &x.v[i];
            const char *who = strcasecmp(tg->address, addr) == 0 ? display : tg->address;
            static const char *mailers[] = {"local", "*file*", "prog", NULL};

            if (tg->kind == TARGET_FORWARD) {
                trace_note(t, "local", "%s is forwarded to %s (queued again)", who, tg->what);
                t->depth++;
                trace_recipient(t, tg->what, tg->what, ROUTE_ALIASES_DONE);
                t->depth--;
            } else {
                struct trace_final f = {who, mailers[tg->kind], NULL, tg->what, NULL, 0};
                trace_final(t, &f);
            }
        }
    }
    local_expansion_free(&x);
    buf_free(&res.reason);
}

/* trace_final_route - one final address: its route, then local expansion
 * or the next hop */
static void trace_final_route(struct trace *t, const char *display, const char *addr, int flags)
{
    struct route_dest d;

    route_dest_init(&d);
    if (route_resolve(t->route, addr, flags, &d) < 0) {
        trace_final_error(t, display, "4.3.0", buf_cstr(&d.reply.text));
    } else if (strcmp(d.transport, "error") == 0 || strcmp(d.transport, "retry") == 0) {
        buf_t text = BUF_INIT;
        buf_printf(&text, "%s %s %s", d.reply.code, d.reply.dsn, buf_cstr(&d.reply.text));
        trace_final_error(t, display, d.reply.dsn, text.data);
        buf_free(&text);
    } else if (strcmp(d.transport, "local") == 0) {
        trace_local(t, display, addr);
    } else {
        struct trace_final f = {display, buf_cstr(&d.mailer), buf_cstr(&d.nexthop), addr, NULL, 0};
        if (strcmp(d.transport, "discard") == 0)
            f.host = NULL;
        else
            trace_dns(t, &d);
        if (strcmp(d.transport, "smtp") == 0)
            trace_generic(t);
        trace_final(t, &f);
    }
    route_dest_free(&d);
}

/* trace_recipient - canonical maps and virtual aliases, then each final
 * address's route */
static void trace_recipient(struct trace *t, const char *display, const char *addr, int flags)
{
    struct route_expansion x;
    struct route_reply why;
    enum route_status st;

    if (t->depth > TRACE_MAX_DEPTH) {
        trace_note(t, "local", "%s: expansion goes deeper than %d re-injections (not shown)", addr,
                   TRACE_MAX_DEPTH);
        return;
    }
    route_expansion_init(&x);
    route_reply_init(&why);
    st = route_expand_recipient(t->route, addr, &x, &why);
    if (st != ROUTE_OK) {
        buf_t text = BUF_INIT;
        buf_printf(&text, "%s %s %s", why.code, why.dsn, buf_cstr(&why.text));
        trace_final_error(t, display, why.dsn, text.data);
        buf_free(&text);
    }
    for (size_t i = 0; st == ROUTE_OK && i < x.count; i++) {
        /* not rewritten: the address as the admin typed it */
        int same = strcasecmp(x.v[i], buf_cstr(&x.canonical)) == 0;
        trace_final_route(t, same ? display : x.v[i], x.v[i], flags);
    }
    route_expansion_free(&x);
    route_reply_free(&why);
}

/* ---- set-up */

static int trace_open(struct trace *t, const struct config *cfg, trace_final_fn fn)
{
    buf_t err = BUF_INIT;
    size_t n;
    char *const *aliases = config_list(cfg, "alias_maps", &n);

    memset(t, 0, sizeof(*t));
    t->cfg = cfg;
    t->on_final = fn;
    if ((t->route = route_open(cfg, &err)) == NULL) {
        fprintf(stderr, "%s\n", err.data);
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    t->local_ok = local_env_read(&t->env, cfg, &t->local_err) == 0 &&
                  table_list_open(&t->env.aliases, aliases, n, TABLE_ALIASES, &t->local_err) == 0;
    route_set_trace(t->route, trace_route_event, t);
    return 0;
}

static void trace_close(struct trace *t)
{
    if (t->local_ok)
        table_list_close(&t->env.aliases);
    buf_free(&t->local_err);
    route_close(t->route);
    if (t->dns)
        dns_free(t->dns);
    if (t->base)
        event_base_free(t->base);
}

/* ---- tern trace */

struct trace_opts {
    const char *from;
    const char *client;
    const char *helo;
    const char *auth;     /* --auth USER: an authenticated client */
    int tls;              /* --tls */
    const char *listener; /* --listener NAME (smtpd, submission, smtps) */
};

/* trace_print_final - tern trace's summary line */
static void trace_print_final(struct trace *t, const struct trace_final *f)
{
    buf_t out = BUF_INIT;

    if (t->json) {
        buf_puts(&out, "{\"rcpt\":");
        trace_json_str(&out, t->rcpt);
        buf_printf(&out, ",\"depth\":%d,\"step\":\"final\"", t->depth);
        trace_json_field(&out, "address", f->display);
        trace_json_field(&out, "mailer", f->mailer);
        trace_json_field(&out, "host", f->host);
        trace_json_field(&out, "user", f->user);
        trace_json_field(&out, "error", f->error);
        printf("%s}\n", out.data);
    } else if (f->error) {
        printf("%*s=> %s: %s\n", 2 + 2 * t->depth, "", f->display, f->error);
    } else {
        printf("%*s=> %s: mailer %s%s%s, user %s\n", 2 + 2 * t->depth, "", f->display, f->mailer,
               f->host ? ", host " : "", f->host ? f->host : "", f->user);
    }
    buf_free(&out);
}

/* ---- smtpd's restrictions (lib/policy) for --client */

/* one outstanding lookup of trace_policy_answer */
struct trace_policy_wait {
    struct policy_cache *cache;
    char *key;
    int *left;
};

/* trace_policy_on_dns - store a DNS answer for the policy evaluation */
static void trace_policy_on_dns(struct dns_answer *ans, void *arg)
{
    struct trace_policy_wait *w = arg;
    buf_t value = BUF_INIT;
    int st = ans->status == DNS_OK ? 0 : ans->status == DNS_NOTFOUND ? 1 : -1;

    for (size_t i = 0; i < ans->count; i++)
        buf_printf(&value, "%s%s", i ? " " : "", ans->v[i]);
    policy_cache_put(w->cache, w->key, st, st < 0 ? ans->reason : buf_cstr(&value));
    dns_answer_free(ans);
    buf_free(&value);
    (*w->left)--;
    free(w->key);
    free(w);
}

/* trace_policy_answer - answer every pending request: DNS on the trace's
 * own loop; policy services are not asked (they keep state, e.g. a
 * greylist) and count as DUNNO; sleeps are not slept */
static void trace_policy_answer(struct trace *t, struct policy_cache *c)
{
    struct policy_need *n = policy_cache_take(c);
    int left = 0;

    while (n != NULL) {
        struct policy_need *next = n->next;
        if (n->kind == POLICY_NEED_SERVICE) {
            trace_note(t, "policy", "check_policy_service %s: not asked by tern trace (DUNNO)",
                       n->target);
            policy_cache_put(c, n->key, 0, "DUNNO");
        } else if (n->kind == POLICY_NEED_SLEEP) {
            policy_cache_put(c, n->key, 0, "");
        } else if (t->no_dns || trace_dns_open(t) < 0) {
            trace_note(t, "policy", "%s: not looked up (--no-dns): not found", n->target);
            policy_cache_put(c, n->key, 1, "");
        } else {
            struct trace_policy_wait *w = xcalloc(1, sizeof(*w));
            w->cache = c;
            w->key = xstrdup(n->key);
            w->left = &left;
            left++;
            if (n->kind == POLICY_NEED_DOMAIN)
                dns_domain_check(t->dns, n->target, trace_policy_on_dns, w);
            else
                dns_query(t->dns, n->target,
                          n->kind == POLICY_NEED_A    ? DNS_QA
                          : n->kind == POLICY_NEED_MX ? DNS_QMX
                                                      : DNS_QTXT,
                          trace_policy_on_dns, w);
        }
        policy_need_free(n);
        n = next;
    }
    while (left > 0 && event_base_loop(t->base, EVLOOP_ONCE) == 0)
        ;
}

/* trace_policy_note - lib/policy's steps */
static void trace_policy_note(const char *list, const char *item, const char *detail, void *ctx)
{
    trace_note(ctx, "policy", "%s: %s: %s", list, item, detail);
}

/* trace_client_name_done - the reverse DNS answer */
static void trace_client_name_done(struct dns_client_name *cn, void *arg)
{
    struct dns_client_name **out = arg;

    *out = cn;
}

/* trace_stage - one stage until it is decided */
static enum policy_verdict trace_stage(struct trace *t, struct policy *p, enum policy_stage stage,
                                       const struct policy_facts *f, struct policy_cache *c,
                                       struct policy_result *r)
{
    enum policy_verdict v;
    int rounds = 0;

    while ((v = policy_check(p, stage, f, c, r)) == POLICY_WAIT && rounds++ < 64)
        trace_policy_answer(t, c);
    return v;
}

/* trace_client_check - smtpd's verdicts for this client, stage by stage,
 * with the listener's restriction lists */
static void trace_client_check(struct trace *t, const struct trace_opts *o,
                               const struct sockaddr_storage *ss, const char *rcpt)
{
    static const struct {
        enum policy_stage stage;
        const char *name;
    } stages[] = {{POLICY_CONNECT, "CONNECT"},
                  {POLICY_HELO, "HELO"},
                  {POLICY_MAIL, "MAIL"},
                  {POLICY_RCPT, "RCPT"}};
    struct config *view = NULL;
    const struct config *cfg = t->cfg;
    struct policy *p;
    struct policy_cache *c = policy_cache_new();
    struct policy_result r;
    struct policy_facts f;
    struct dns_client_name *cn = NULL;
    buf_t err = BUF_INIT, echo = BUF_INIT, secho = BUF_INIT;
    size_t n;
    char *const *list = config_list(t->cfg, "mynetworks", &n);
    struct netaddr_net *nets = xcalloc(n + 1, sizeof(*nets));
    size_t count = 0;
    enum policy_verdict v = POLICY_DUNNO;
    int discard = 0, hold = 0, redirect = 0;

    if (o->listener && strcmp(o->listener, "smtpd") != 0 &&
        (view = config_listener(t->cfg, o->listener, &err)) == NULL) {
        trace_note(t, "smtpd", "listener %s: %s", o->listener, buf_cstr(&err));
        t->refused++;
        goto out;
    }
    if (view)
        cfg = view;
    if ((p = policy_open(cfg, t->route, &err)) == NULL) {
        trace_note(t, "smtpd", "%s", buf_cstr(&err));
        t->tempfails++;
        goto out;
    }
    policy_set_trace(p, trace_policy_note, t);
    for (size_t i = 0; i < n; i++)
        if (netaddr_parse_net(list[i], &nets[count]) == 0)
            count++;
    memset(&f, 0, sizeof(f));
    f.addr = (const struct sockaddr *)ss;
    f.ip = o->client;
    f.name = f.reverse_name = "unknown";
    f.name_status = f.reverse_status = 1;
    if (!t->no_dns && config_bool(cfg, "smtpd_peername_lookup") && trace_dns_open(t) == 0) {
        dns_client_name(t->dns, f.addr, trace_client_name_done, &cn);
        while (cn == NULL && event_base_loop(t->base, EVLOOP_ONCE) == 0)
            ;
        if (cn != NULL) {
            f.name = cn->name;
            f.reverse_name = cn->reverse_name;
            f.name_status = cn->status == DNS_OK ? 0 : cn->status == DNS_NOTFOUND ? 1 : -1;
            f.reverse_status = cn->reverse_status == DNS_OK         ? 0
                               : cn->reverse_status == DNS_NOTFOUND ? 1
                                                                    : -1;
        }
    }
    f.listener = o->listener ? o->listener : "smtpd";
    f.in_mynetworks = netaddr_match(f.addr, nets, count);
    f.sasl_username = o->auth;
    f.sasl_method = o->auth ? "PLAIN" : NULL;
    f.tls = o->tls;
    f.protocol = o->auth ? (o->tls ? "ESMTPSA" : "ESMTPA") : o->tls ? "ESMTPS" : "ESMTP";
    f.size = -1;
    trace_note(t, "smtpd", "client %s[%s]%s%s, helo %s", f.name, o->client,
               f.in_mynetworks ? " (mynetworks)" : "", o->auth ? " (authenticated)" : "",
               o->helo ? o->helo : "(none)");
    policy_result_init(&r);
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        if (stages[i].stage >= POLICY_HELO)
            f.helo = o->helo;
        if (stages[i].stage >= POLICY_MAIL) {
            f.sender = o->from ? o->from : "";
            buf_reset(&echo);
            buf_printf(&echo, "<%s>", f.sender);
            f.echo = buf_cstr(&echo);
            buf_set(&secho, buf_cstr(&echo));
            f.sender_echo = buf_cstr(&secho);
        }
        if (stages[i].stage == POLICY_RCPT) {
            f.recipient = rcpt;
            buf_reset(&echo);
            buf_printf(&echo, "<%s>", rcpt);
            f.echo = buf_cstr(&echo);
        }
        v = trace_stage(t, p, stages[i].stage, &f, c, &r);
        discard |= r.discard; /* the side effects of every stage count */
        hold |= r.hold;
        redirect |= r.redirect.len > 0;
        if (v == POLICY_REJECT || v == POLICY_DEFER || v == POLICY_WAIT) {
            trace_note(t, "smtpd", "%s%s%s -> %s", stages[i].name,
                       stages[i].stage == POLICY_RCPT ? " TO:" : "",
                       stages[i].stage == POLICY_RCPT ? buf_cstr(&echo) : "",
                       v == POLICY_WAIT ? "no answer" : buf_cstr(&r.reply));
            break;
        }
    }
    if (v != POLICY_REJECT && v != POLICY_DEFER && v != POLICY_WAIT) {
        struct route_client client = {f.addr, r.relay};
        struct route_reply why;
        enum route_status st;
        route_reply_init(&why);
        route_set_trace(t->route, NULL, NULL); /* the steps follow below */
        st = route_check_recipient(t->route, rcpt, &client, &why);
        route_set_trace(t->route, trace_route_event, t);
        if (st == ROUTE_OK)
            trace_note(t, "smtpd", "RCPT TO:<%s> -> 250 2.1.5 accepted%s%s%s", rcpt,
                       discard ? " (DISCARD)" : "", hold ? " (HOLD)" : "",
                       redirect ? " (REDIRECT)" : "");
        else
            trace_note(t, "smtpd", "RCPT TO:<%s> -> %s %s %s", rcpt, why.code, why.dsn,
                       buf_cstr(&why.text));
        if (st == ROUTE_TEMPFAIL)
            t->tempfails++;
        else if (st == ROUTE_REJECT)
            t->refused++;
        route_reply_free(&why);
    } else if (v == POLICY_REJECT) {
        t->refused++;
    } else {
        t->tempfails++;
    }
    policy_result_free(&r);
    policy_close(p);
out:
    if (cn)
        dns_client_name_free(cn);
    policy_cache_free(c);
    config_free(view);
    buf_free(&err);
    buf_free(&echo);
    buf_free(&secho);
    free(nets);
}

/* trace_sender - the envelope sender as cleanup rewrites it */
static void trace_sender(struct trace *t, const char *from)
{
    struct route_reply why;
    buf_t out = BUF_INIT;

    t->rcpt = from;
    route_reply_init(&why);
    if (route_rewrite_sender(t->route, from, &out, &why) < 0)
        trace_note(t, "sender", "%s: %s", from, buf_cstr(&why.text));
    else
        trace_note(t, "sender", "<%s> is sent as <%s>", from, out.data);
    t->sender = xstrdup(out.data);
    route_reply_free(&why);
    buf_free(&out);
}

static void trace_usage(FILE *fp)
{
    fprintf(fp, "usage: tern trace [--from ADDR] [--client IP [--helo NAME] [--auth USER] [--tls]\n"
                "                  [--listener NAME]] [--no-dns] [-j] ADDR...\n"
                "  explain every decision tern takes for each recipient ADDR: smtpd's\n"
                "  restrictions and RCPT verdict (with --client; DNS lists and the client's\n"
                "  name are looked up, policy services are not asked), rewriting, virtual\n"
                "  aliases, the route, local expansion and the MX list; -j prints JSON lines;\n"
                "  nothing is delivered\n");
}

/* trace_parse - options; index of the first address, -1 on bad usage */
static int trace_parse(int argc, char **argv, struct trace *t, struct trace_opts *o)
{
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0)
            t->json = 1;
        else if (strcmp(a, "--no-dns") == 0)
            t->no_dns = 1;
        else if (strcmp(a, "--from") == 0 && more)
            o->from = argv[++i];
        else if (strcmp(a, "--client") == 0 && more)
            o->client = argv[++i];
        else if (strcmp(a, "--helo") == 0 && more)
            o->helo = argv[++i];
        else if (strcmp(a, "--auth") == 0 && more)
            o->auth = argv[++i];
        else if (strcmp(a, "--listener") == 0 && more)
            o->listener = argv[++i];
        else if (strcmp(a, "--tls") == 0)
            o->tls = 1;
        else if (strcmp(a, "--") == 0)
            return i + 1;
        else
            return -1;
    }
    return i < argc ? i : -1;
}

int tern_trace_main(int argc, char **argv, const struct config *cfg)
{
    struct trace t;
    struct trace_opts o = {0};
    struct sockaddr_storage ss;
    int first, rc;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        trace_usage(stdout);
        return 0;
    }
    if (trace_open(&t, cfg, trace_print_final) < 0)
        return EX_CONFIG;
    if ((first = trace_parse(argc, argv, &t, &o)) < 0 ||
        (o.client && netaddr_parse_addr(o.client, &ss) < 0)) {
        trace_usage(stderr);
        trace_close(&t);
        return 2;
    }
    if (o.from)
        trace_sender(&t, o.from);
    for (int i = first; i < argc; i++) {
        t.rcpt = argv[i];
        if (!t.json)
            printf("recipient <%s>\n", argv[i]);
        if (o.client)
            trace_client_check(&t, &o, &ss, argv[i]);
        trace_recipient(&t, argv[i], argv[i], 0);
    }
    rc = t.tempfails ? EX_TEMPFAIL : t.refused ? 1 : 0;
    free((char *)t.sender);
    trace_close(&t);
    return rc;
}

/* ---- sendmail -bv */

/* trace_verify_final - "ADDR... deliverable: mailer M, host H, user U" */
static void trace_verify_final(struct trace *t, const struct trace_final *f)
{
    if (f->error && strstr(f->error, "unknown user") != NULL)
        printf("%s... User unknown\n", f->display);
    else if (f->error)
        printf("%s... %s\n", f->display, f->error);
    else if (f->host)
        printf("%s... deliverable: mailer %s, host %s, user %s\n", f->display, f->mailer, f->host,
               f->user);
    else
        printf("%s... deliverable: mailer %s, user %s\n", f->display, f->mailer, f->user);
}

int trace_verify(const struct config *cfg, char *const *addrs, size_t count)
{
    struct trace t;
    int rc;

    if (trace_open(&t, cfg, trace_verify_final) < 0)
        return EX_CONFIG;
    t.quiet = 1;
    for (size_t i = 0; i < count; i++) {
        t.rcpt = addrs[i];
        trace_recipient(&t, addrs[i], addrs[i], 0);
    }
    fflush(stdout);
    rc = t.refused ? EX_NOUSER : t.tempfails ? EX_TEMPFAIL : 0;
    trace_close(&t);
    return rc;
}

/* ---- sendmail -bt */

/* trace_bt_final - the line that ends a /parse */
static void trace_bt_final(struct trace *t, const struct trace_final *f)
{
    if (f->error)
        printf("mailer error, user %s: %s\n", f->display, f->error);
    else if (f->host)
        printf("mailer %s, host %s, user %s\n", f->mailer, f->host, f->user);
    else
        printf("mailer %s, user %s\n", f->mailer, f->user);
}

/* sendmail's map names for tern's table parameters */
static const struct {
    const char *sendmail;
    const char *param;
} trace_map_names[] = {
    {"mailertable", "transport_maps"},       {"virtuser", "virtual_alias_maps"},
    {"virtusertable", "virtual_alias_maps"}, {"aliases", "alias_maps"},
    {"domaintable", "canonical_maps"},       {"generics", "smtp_generic_maps"},
    {"genericstable", "smtp_generic_maps"},  {NULL, NULL},
};

/* trace_bt_map - "/map NAME KEY": NAME is a sendmail map name, a *_maps
 * parameter or a table spec */
static void trace_bt_map(struct trace *t, const char *name, const char *key)
{
    const char *param = name;
    const struct param_def *p;
    char *const *specs = NULL;
    char *one[2] = {(char *)name, NULL};
    buf_t value = BUF_INIT, err = BUF_INIT;
    enum table_result r = TABLE_NOTFOUND;

    for (int i = 0; trace_map_names[i].sendmail; i++)
        if (strcasecmp(name, trace_map_names[i].sendmail) == 0)
            param = trace_map_names[i].param;
    p = config_find_param(param);
    if (p && p->type == PARAM_LIST && strstr(param, "_maps"))
        specs = config_list(t->cfg, param, NULL);
    else if (table_spec_known(name))
        specs = one;
    if (specs == NULL) {
        printf("map_lookup: %s: no such map (a *_maps parameter or type:name)\n", name);
        return;
    }
    for (; r == TABLE_NOTFOUND && *specs; specs++) {
        struct table *tb =
            table_open(*specs, strcmp(param, "alias_maps") ? 0 : TABLE_ALIASES, &err);
        if (tb == NULL) {
            printf("map_lookup: %s\n", err.data);
            r = TABLE_TEMPFAIL;
            break;
        }
        r = table_lookup(tb, key, &value);
        table_close(tb);
    }
    if (r == TABLE_FOUND)
        printf("map_lookup: %s (%s) returns %s (0)\n", name, key, value.data);
    else if (r == TABLE_NOTFOUND)
        printf("map_lookup: %s (%s) no match (%d)\n", name, key, EX_NOHOST);
    else
        printf("map_lookup: %s (%s) temporary failure (%d)\n", name, key, EX_TEMPFAIL);
    buf_free(&value);
    buf_free(&err);
}

/* trace_bt_class_w - "$=w": the local host names */
static void trace_bt_class_w(struct trace *t)
{
    for (char *const *d = config_list(t->cfg, "mydestination", NULL); d && *d; d++)
        printf("%s\n", *d);
}

/* trace_bt_parse - "/parse ADDR": the steps, then mailer/host/user */
static void trace_bt_parse(struct trace *t, const char *addr)
{
    t->rcpt = addr;
    printf("Parsing envelope recipient address\n");
    trace_recipient(t, addr, addr, 0);
}

/* trace_bt_line - one test line */
static void trace_bt_line(struct trace *t, char *line)
{
    char *p = line + strspn(line, " \t");

    if (*p == 0 || *p == '#')
        return;
    if (strncmp(p, "/parse", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
        trace_bt_parse(t, p + 6 + strspn(p + 6, " \t"));
    } else if (strncmp(p, "/map", 4) == 0 && (p[4] == ' ' || p[4] == '\t')) {
        char *name = p + 4 + strspn(p + 4, " \t");
        char *key = name + strcspn(name, " \t");
        if (*key)
            *key++ = 0;
        key += strspn(key, " \t");
        if (*name && *key)
            trace_bt_map(t, name, key);
        else
            printf("Usage: /map mapname key\n");
    } else if (strcmp(p, "$=w") == 0) {
        trace_bt_class_w(t);
    } else if (p[0] == '/' || p[0] == '$') {
        printf("Unknown \"%s\" command (tern knows /parse ADDR, /map NAME KEY, $=w)\n", p);
    } else {
        /* "3,0 addr": a ruleset list, accepted and ignored */
        if (isdigit((unsigned char)*p)) {
            p += strspn(p, "0123456789,");
            p += strspn(p, " \t");
        }
        if (*p)
            trace_bt_parse(t, p);
    }
}

int trace_address_test(const struct config *cfg)
{
    struct trace t;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (trace_open(&t, cfg, trace_bt_final) < 0)
        return EX_CONFIG;
    t.no_dns = 1;
    printf("ADDRESS TEST MODE (ruleset 3 NOT automatically invoked)\n");
    printf("Enter <ruleset> <address>\n");
    for (;;) {
        printf("> ");
        fflush(stdout);
        if ((n = getline(&line, &cap, stdin)) < 0)
            break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (strcmp(line, "/quit") == 0)
            break;
        trace_bt_line(&t, line);
    }
    printf("\n");
    free(line);
    trace_close(&t);
    return 0;
}
