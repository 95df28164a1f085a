/*
 * policy - the restriction lists and the sendmail access file (policy.h,
 * docs/policy.md).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "policy_impl.h"
#include "route.h"
#include "table_proxy.h"

/* the restrictions */
enum policy_kind {
    PK_PERMIT,
    PK_REJECT,
    PK_DEFER,
    PK_DUNNO,
    PK_PERMIT_MYNETWORKS,
    PK_PERMIT_SASL,
    PK_PERMIT_CLIENTCERTS,
    PK_PERMIT_AUTH_DESTINATION,
    PK_PERMIT_MX_BACKUP,
    PK_REJECT_UNAUTH_DESTINATION,
    PK_DEFER_UNAUTH_DESTINATION,
    PK_CHECK_CLIENT,
    PK_CHECK_REVERSE_CLIENT,
    PK_CHECK_HELO,
    PK_CHECK_SENDER,
    PK_CHECK_RECIPIENT,
    PK_CHECK_CCERT,
    PK_RBL_CLIENT,
    PK_DNSWL_CLIENT,
    PK_RHSBL_CLIENT,
    PK_RHSBL_REVERSE_CLIENT,
    PK_RHSBL_SENDER,
    PK_RHSBL_HELO,
    PK_RHSBL_RECIPIENT,
    PK_UNKNOWN_CLIENT,
    PK_UNKNOWN_REVERSE_CLIENT,
    PK_UNKNOWN_SENDER_DOMAIN,
    PK_UNKNOWN_RECIPIENT_DOMAIN,
    PK_NON_FQDN_SENDER,
    PK_NON_FQDN_RECIPIENT,
    PK_NON_FQDN_HELO,
    PK_INVALID_HELO,
    PK_UNLISTED_RECIPIENT,
    PK_UNAUTH_PIPELINING,
    PK_SENDER_LOGIN_MISMATCH,
    PK_POLICY_SERVICE,
    PK_SLEEP,
    PK_WARN_IF_REJECT,
};

/* argument: 0 none, 1 a table, 2 a DNS zone (with an optional =filter), 3
 * an endpoint, 4 seconds */
static const struct {
    const char *name;
    enum policy_kind kind;
    int arg;
} policy_names[] = {
    {"permit", PK_PERMIT, 0},
    {"reject", PK_REJECT, 0},
    {"defer", PK_DEFER, 0},
    {"dunno", PK_DUNNO, 0},
    {"permit_mynetworks", PK_PERMIT_MYNETWORKS, 0},
    {"permit_sasl_authenticated", PK_PERMIT_SASL, 0},
    {"permit_tls_clientcerts", PK_PERMIT_CLIENTCERTS, 0},
    {"permit_auth_destination", PK_PERMIT_AUTH_DESTINATION, 0},
    {"permit_mx_backup", PK_PERMIT_MX_BACKUP, 0},
    {"reject_unauth_destination", PK_REJECT_UNAUTH_DESTINATION, 0},
    {"defer_unauth_destination", PK_DEFER_UNAUTH_DESTINATION, 0},
    {"check_client_access", PK_CHECK_CLIENT, 1},
    {"check_reverse_client_hostname_access", PK_CHECK_REVERSE_CLIENT, 1},
    {"check_helo_access", PK_CHECK_HELO, 1},
    {"check_sender_access", PK_CHECK_SENDER, 1},
    {"check_recipient_access", PK_CHECK_RECIPIENT, 1},
    {"check_ccert_access", PK_CHECK_CCERT, 1},
    {"reject_rbl_client", PK_RBL_CLIENT, 2},
    {"permit_dnswl_client", PK_DNSWL_CLIENT, 2},
    {"reject_rhsbl_client", PK_RHSBL_CLIENT, 2},
    {"reject_rhsbl_reverse_client", PK_RHSBL_REVERSE_CLIENT, 2},
    {"reject_rhsbl_sender", PK_RHSBL_SENDER, 2},
    {"reject_rhsbl_helo", PK_RHSBL_HELO, 2},
    {"reject_rhsbl_recipient", PK_RHSBL_RECIPIENT, 2},
    {"reject_unknown_client_hostname", PK_UNKNOWN_CLIENT, 0},
    {"reject_unknown_client", PK_UNKNOWN_CLIENT, 0},
    {"reject_unknown_reverse_client_hostname", PK_UNKNOWN_REVERSE_CLIENT, 0},
    {"reject_unknown_sender_domain", PK_UNKNOWN_SENDER_DOMAIN, 0},
    {"reject_unknown_recipient_domain", PK_UNKNOWN_RECIPIENT_DOMAIN, 0},
    {"reject_non_fqdn_sender", PK_NON_FQDN_SENDER, 0},
    {"reject_non_fqdn_recipient", PK_NON_FQDN_RECIPIENT, 0},
    {"reject_non_fqdn_helo_hostname", PK_NON_FQDN_HELO, 0},
    {"reject_non_fqdn_hostname", PK_NON_FQDN_HELO, 0},
    {"reject_invalid_helo_hostname", PK_INVALID_HELO, 0},
    {"reject_invalid_hostname", PK_INVALID_HELO, 0},
    {"reject_unlisted_recipient", PK_UNLISTED_RECIPIENT, 0},
    {"reject_unauth_pipelining", PK_UNAUTH_PIPELINING, 0},
    {"reject_sender_login_mismatch", PK_SENDER_LOGIN_MISMATCH, 0},
    {"check_policy_service", PK_POLICY_SERVICE, 3},
    {"sleep", PK_SLEEP, 4},
    {"warn_if_reject", PK_WARN_IF_REJECT, 0},
};
#define POLICY_NAME_COUNT (sizeof(policy_names) / sizeof(policy_names[0]))

/* an answer filter of a DNS list: zone=127.0.0.2, =127.0.0.[2..11],
 * =127.0.0.[2;4;6] */
struct policy_rbl_filter {
    int set;
    char prefix[16]; /* "127.0.0." */
    int lo, hi;      /* last octet range */
    int list[16];    /* or a list */
    size_t list_count;
};

struct policy_item {
    enum policy_kind kind;
    const char *name; /* as written */
    char *arg;        /* zone, table spec, endpoint */
    struct table_list table;
    struct policy_rbl_filter filter;
    long long seconds;
    int warn_only; /* preceded by warn_if_reject */
};

struct policy_list {
    const char *param;
    struct policy_item *v;
    size_t count;
};

enum policy_list_id {
    PL_CLIENT,
    PL_HELO,
    PL_SENDER,
    PL_RELAY,
    PL_RECIPIENT,
    PL_DATA,
    PL_EOD,
    PL_ETRN,
    PL_COUNT
};

static const char *const policy_list_params[PL_COUNT] = {
    "smtpd_client_restrictions",      "smtpd_helo_restrictions",      "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",       "smtpd_recipient_restrictions", "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions",
};

/* sendmail's Spam: modes */
enum policy_spam_mode { POLICY_SPAM_FRIEND, POLICY_SPAM_HATER };

struct policy {
    struct policy_list lists[PL_COUNT];
    struct route *route;
    int delay_reject;
    struct table_list access; /* access_maps: sendmail's file */
    enum policy_spam_mode spam_mode;
    int blocklist_recipients;
    int accept_unresolvable;
    int promiscuous; /* promiscuous_relay */
    struct table_list rbl_reply;
    char **tempfail_zones;
    size_t tempfail_count;
    char *default_rbl_reply;
    char *service_default_action;
    char *delimiters;
    char *myhostname;
    long long dnsbl_limit;
    policy_trace_fn trace;
    void *trace_ctx;
};

/* one evaluation */
struct policy_eval {
    struct policy *p;
    const struct policy_facts *f;
    struct policy_cache *c;
    struct policy_result *r;
    enum policy_stage stage;
    enum policy_list_id list;
    int access_client_relay; /* sendmail Connect:/untagged RELAY */
    /* DEFER_IF_PERMIT / DEFER_IF_REJECT: the reply given if the evaluation
     * ends in an accept / a reject ("" none) */
    buf_t defer_if_permit;
    buf_t defer_if_reject;
};

/* ---- results */

void policy_result_init(struct policy_result *r)
{
    memset(r, 0, sizeof(*r));
    r->greet_pause_ms = -1;
}

void policy_result_reset(struct policy_result *r)
{
    r->verdict = POLICY_DUNNO;
    buf_reset(&r->reply);
    buf_reset(&r->log);
    r->discard = 0;
    r->hold = 0;
    buf_reset(&r->hold_reason);
    buf_reset(&r->prepend);
    buf_reset(&r->redirect);
    buf_reset(&r->warnings);
    r->relay = 0;
}

void policy_result_free(struct policy_result *r)
{
    buf_free(&r->reply);
    buf_free(&r->log);
    buf_free(&r->hold_reason);
    buf_free(&r->prepend);
    buf_free(&r->redirect);
    buf_free(&r->warnings);
}

void policy_set_trace(struct policy *p, policy_trace_fn fn, void *ctx)
{
    p->trace = fn;
    p->trace_ctx = ctx;
}

int policy_delay_reject(const struct policy *p)
{
    return p->delay_reject;
}

/* policy_note - tell tern trace */
static void policy_note(struct policy_eval *e, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void policy_note(struct policy_eval *e, const char *item, const char *fmt, ...)
{
    buf_t text = BUF_INIT;
    va_list ap;

    if (e->p->trace == NULL)
        return;
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    e->p->trace(e->list < PL_COUNT ? policy_list_params[e->list] : "access_maps", item,
                buf_cstr(&text), e->p->trace_ctx);
    buf_free(&text);
}

/* ---- parsing */

/* policy_filter_parse - "127.0.0.2", "127.0.0.[2..11]", "127.0.0.[2;4]" */
static int policy_filter_parse(const char *s, struct policy_rbl_filter *f)
{
    const char *br = strchr(s, '[');
    size_t plen = br ? (size_t)(br - s) : 0;
    struct in_addr a;

    memset(f, 0, sizeof(*f));
    f->set = 1;
    if (br == NULL) {
        const char *dot = strrchr(s, '.');
        if (inet_pton(AF_INET, s, &a) != 1 || dot == NULL)
            return -1;
        snprintf(f->prefix, sizeof(f->prefix), "%.*s", (int)(dot - s + 1), s);
        f->lo = f->hi = atoi(dot + 1);
        return 0;
    }
    if (plen == 0 || plen >= sizeof(f->prefix) || s[plen - 1] != '.' || s[strlen(s) - 1] != ']')
        return -1;
    snprintf(f->prefix, sizeof(f->prefix), "%.*s", (int)plen, s);
    if (strstr(br, "..")) {
        if (sscanf(br, "[%d..%d]", &f->lo, &f->hi) != 2 || f->lo < 0 || f->hi > 255 ||
            f->lo > f->hi)
            return -1;
        return 0;
    }
    for (const char *p = br + 1; *p && *p != ']';) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 255 || f->list_count == 16)
            return -1;
        f->list[f->list_count++] = (int)v;
        p = *end == ';' ? end + 1 : end;
        if (*end != ';' && *end != ']')
            return -1;
    }
    f->lo = 1;
    f->hi = 0; /* the list decides */
    return f->list_count ? 0 : -1;
}

/* policy_filter_match - does one answer address pass the filter? */
static int policy_filter_match(const struct policy_rbl_filter *f, const char *addr)
{
    size_t n = strlen(f->prefix);
    int last;

    if (!f->set)
        return 1;
    if (strncmp(addr, f->prefix, n) != 0 || !isdigit((unsigned char)addr[n]))
        return 0;
    last = atoi(addr + n);
    if (f->list_count) {
        for (size_t i = 0; i < f->list_count; i++)
            if (f->list[i] == last)
                return 1;
        return 0;
    }
    return last >= f->lo && last <= f->hi;
}

/* policy_item_free - release one item */
static void policy_item_free(struct policy_item *it)
{
    free(it->arg);
    table_list_close(&it->table);
}

/* policy_parse_list - one parameter into l; -1 with err */
static int policy_parse_list(struct policy *p, const struct config *cfg, enum policy_list_id id,
                             buf_t *err)
{
    struct policy_list *l = &p->lists[id];
    size_t count = 0;
    char *const *words = config_list(cfg, policy_list_params[id], &count);
    int warn = 0;

    l->param = policy_list_params[id];
    l->v = xcalloc(count ? count : 1, sizeof(*l->v));
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        struct policy_item *it;
        while (k < POLICY_NAME_COUNT && strcmp(policy_names[k].name, words[i]) != 0)
            k++;
        if (k == POLICY_NAME_COUNT) {
            buf_printf(err, "%s: %s: unknown restriction '%s'", config_origin(cfg, l->param),
                       l->param, words[i]);
            return -1;
        }
        if (policy_names[k].kind == PK_WARN_IF_REJECT) {
            warn = 1;
            continue;
        }
        it = &l->v[l->count++];
        it->kind = policy_names[k].kind;
        it->name = policy_names[k].name;
        it->warn_only = warn;
        warn = 0;
        if (policy_names[k].arg == 0)
            continue;
        if (i + 1 == count) {
            buf_printf(err, "%s: %s: '%s' needs an argument", config_origin(cfg, l->param),
                       l->param, words[i]);
            return -1;
        }
        it->arg = xstrdup(words[++i]);
        switch (policy_names[k].arg) {
        case 1: {
            buf_t terr = BUF_INIT;
            char *specs[1] = {it->arg};
            if (table_list_open(&it->table, specs, 1, 0, &terr) < 0) {
                buf_printf(err, "%s: %s: %s %s: %s", config_origin(cfg, l->param), l->param,
                           it->name, it->arg, buf_cstr(&terr));
                buf_free(&terr);
                return -1;
            }
            buf_free(&terr);
            break;
        }
        case 2: {
            char *eq = strchr(it->arg, '=');
            if (eq != NULL) {
                *eq = 0;
                if (policy_filter_parse(eq + 1, &it->filter) < 0) {
                    buf_printf(err,
                               "%s: %s: %s %s: bad answer filter '%s' (e.g. 127.0.0.2 or "
                               "127.0.0.[2..11])",
                               config_origin(cfg, l->param), l->param, it->name, it->arg, eq + 1);
                    return -1;
                }
            }
            if (it->arg[0] == 0 || strchr(it->arg, '.') == NULL) {
                buf_printf(err, "%s: %s: %s: '%s' is not a DNS zone", config_origin(cfg, l->param),
                           l->param, it->name, it->arg);
                return -1;
            }
            break;
        }
        case 3:
            if (strncmp(it->arg, "inet:", 5) != 0 && strncmp(it->arg, "unix:", 5) != 0 &&
                strchr(it->arg, '/') == NULL) {
                buf_printf(err,
                           "%s: %s: check_policy_service %s: expected inet:host:port or "
                           "unix:/path",
                           config_origin(cfg, l->param), l->param, it->arg);
                return -1;
            }
            break;
        case 4:
            if (config_parse_time(it->arg, &it->seconds) < 0 || it->seconds < 0 ||
                it->seconds > 3600) {
                buf_printf(err, "%s: %s: sleep %s: expected a time up to 1h",
                           config_origin(cfg, l->param), l->param, it->arg);
                return -1;
            }
            break;
        }
    }
    if (warn) {
        buf_printf(err, "%s: %s: warn_if_reject must be followed by a restriction",
                   config_origin(cfg, l->param), l->param);
        return -1;
    }
    return 0;
}

/* policy_open_tables - a table list parameter */
static int policy_open_tables(const struct config *cfg, const char *param, struct table_list *l,
                              buf_t *err)
{
    size_t count = 0;
    char *const *specs = config_list(cfg, param, &count);
    buf_t terr = BUF_INIT;

    if (table_list_open(l, specs, count, 0, &terr) < 0) {
        buf_printf(err, "%s: %s: %s", config_origin(cfg, param), param, buf_cstr(&terr));
        buf_free(&terr);
        return -1;
    }
    buf_free(&terr);
    return 0;
}

struct policy *policy_open(const struct config *cfg, struct route *route, buf_t *err)
{
    struct policy *p = xcalloc(1, sizeof(*p));
    const char *mode = config_str(cfg, "access_spam_mode");
    size_t n = 0;
    char *const *zones;

    p->route = route;
    p->delay_reject = config_bool(cfg, "smtpd_delay_reject");
    p->blocklist_recipients = config_bool(cfg, "access_blocklist_recipients");
    p->accept_unresolvable = config_bool(cfg, "accept_unresolvable_domains");
    p->promiscuous = config_bool(cfg, "promiscuous_relay");
    p->default_rbl_reply = xstrdup(config_str(cfg, "default_rbl_reply"));
    p->service_default_action = xstrdup(config_str(cfg, "smtpd_policy_service_default_action"));
    p->delimiters = xstrdup(config_str(cfg, "recipient_delimiter"));
    p->myhostname = xstrdup(config_str(cfg, "myhostname"));
    if (*p->myhostname == 0) { /* as smtpd names itself */
        char host[256] = "";
        free(p->myhostname);
        if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == 0)
            snprintf(host, sizeof(host), "localhost");
        p->myhostname = xstrdup(host);
    }
    p->dnsbl_limit = config_int(cfg, "smtpd_dnsbl_limit");
    zones = config_list(cfg, "rbl_tempfail_zones", &n);
    p->tempfail_zones = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        p->tempfail_zones[i] = xstrdup(zones[i]);
    p->tempfail_count = n;
    if (strcasecmp(mode, "friend") == 0) {
        p->spam_mode = POLICY_SPAM_FRIEND;
    } else if (strcasecmp(mode, "hater") == 0) {
        p->spam_mode = POLICY_SPAM_HATER;
    } else {
        buf_printf(err, "%s: access_spam_mode = %s: expected friend or hater",
                   config_origin(cfg, "access_spam_mode"), mode);
        goto fail;
    }
    for (int i = 0; i < PL_COUNT; i++)
        if (policy_parse_list(p, cfg, (enum policy_list_id)i, err) < 0)
            goto fail;
    if (policy_open_tables(cfg, "access_maps", &p->access, err) < 0 ||
        policy_open_tables(cfg, "rbl_reply_maps", &p->rbl_reply, err) < 0)
        goto fail;
    return p;
fail:
    policy_close(p);
    return NULL;
}

int policy_check_listeners(const struct config *cfg, buf_t *err)
{
    int rc = 0;

    for (const struct listener_def *l = listener_table; rc == 0 && l->name != NULL; l++) {
        struct config *view;
        struct policy *p;

        if (*config_list(cfg, l->param, NULL) == NULL)
            continue; /* the listener is off */
        if ((view = config_listener(cfg, l->name, err)) == NULL)
            return -1;
        if ((p = policy_open(view, NULL, err)) == NULL)
            rc = -1;
        policy_close(p);
        config_free(view);
    }
    return rc;
}

void policy_close(struct policy *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < PL_COUNT; i++) {
        for (size_t k = 0; k < p->lists[i].count; k++)
            policy_item_free(&p->lists[i].v[k]);
        free(p->lists[i].v);
    }
    table_list_close(&p->access);
    table_list_close(&p->rbl_reply);
    for (size_t i = 0; i < p->tempfail_count; i++)
        free(p->tempfail_zones[i]);
    free(p->tempfail_zones);
    free(p->default_rbl_reply);
    free(p->service_default_action);
    free(p->delimiters);
    free(p->myhostname);
    free(p);
}

/* policy_domain - the domain of an address, "" without one */
static const char *policy_domain(const char *addr)
{
    const char *d = addr ? addr_domain(addr) : NULL;

    return d ? d : "";
}

/* ---- verdicts */

/* policy_set - the evaluation's verdict with its reply */
static enum policy_verdict policy_set(struct policy_eval *e, enum policy_verdict v,
                                      const char *item, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum policy_verdict policy_set(struct policy_eval *e, enum policy_verdict v,
                                      const char *item, const char *fmt, ...)
{
    va_list ap;

    buf_reset(&e->r->reply);
    va_start(ap, fmt);
    buf_vprintf(&e->r->reply, fmt, ap);
    va_end(ap);
    buf_reset(&e->r->log);
    buf_puts(&e->r->log, item);
    e->r->verdict = v;
    return v;
}

/* policy_tempfail - a table or a value that cannot be used: 451, never OK.
 * Not logged while a remote answer is not in yet: the verdict is void and
 * the evaluation runs again (lib/table_proxy.h) */
static enum policy_verdict policy_tempfail(struct policy_eval *e, const char *item, const char *why)
{
    if (!table_proxy_scope_pending_now())
        log_warn("%s: %s", item, why);
    policy_note(e, item, "lookup failed: %s", why);
    return policy_set(e, POLICY_DEFER, item,
                      "451 4.3.0 Temporary system failure. Please try again later.");
}

/* the "what" of a Postfix reply: <client_name[ip]>, <helo>, <addr> */
struct policy_what {
    const char *cls; /* "Client host", "Helo command", "Sender address", "Recipient address" */
    buf_t text;
};

/* policy_what_of - the subject of list's restrictions */
static void policy_what_of(struct policy_eval *e, enum policy_list_id list, struct policy_what *w)
{
    const struct policy_facts *f = e->f;

    buf_init(&w->text);
    switch (list) {
    case PL_HELO:
        w->cls = "Helo command";
        buf_puts(&w->text, f->helo ? f->helo : "");
        break;
    case PL_SENDER:
        w->cls = "Sender address";
        buf_puts(&w->text, f->sender ? f->sender : "");
        break;
    case PL_RELAY:
    case PL_RECIPIENT:
        w->cls = "Recipient address";
        buf_puts(&w->text, f->recipient ? f->recipient : "");
        break;
    case PL_DATA:
    case PL_EOD:
        w->cls = "Data command";
        buf_puts(&w->text, "");
        break;
    default:
        w->cls = "Client host";
        buf_printf(&w->text, "%s[%s]", f->name ? f->name : "unknown", f->ip ? f->ip : "");
        break;
    }
}

/* policy_postfix_reply - "CODE DSN <what>: Class rejected: text" */
static enum policy_verdict policy_postfix_reply(struct policy_eval *e, enum policy_list_id list,
                                                enum policy_verdict v, const char *item,
                                                const char *code, const char *dsn, const char *text)
{
    struct policy_what w;

    policy_what_of(e, list, &w);
    if (list == PL_DATA || list == PL_EOD)
        policy_set(e, v, item, "%s %s %s", code, dsn, text);
    else
        policy_set(e, v, item, "%s %s <%s>: %s rejected: %s", code, dsn, buf_cstr(&w.text), w.cls,
                   text);
    buf_free(&w.text);
    return v;
}

/* ---- access table values */

static enum policy_verdict policy_item_eval(struct policy_eval *e, const struct policy_item *it,
                                            enum policy_list_id list);

/* policy_apply_value - act on an access table value found for key in a
 * Postfix check_*_access table */
static enum policy_verdict policy_apply_value(struct policy_eval *e, enum policy_list_id list,
                                              const char *item, const char *key, const char *value)
{
    struct policy_access_value v;
    buf_t err = BUF_INIT;
    enum policy_verdict res = POLICY_DUNNO;
    const char *text;

    policy_access_value_init(&v);
    if (policy_access_parse(value, &v, &err) < 0) {
        buf_t why = BUF_INIT;
        buf_printf(&why, "%s: key %s: %s", item, key, buf_cstr(&err));
        res = policy_tempfail(e, item, buf_cstr(&why));
        buf_free(&why);
        goto done;
    }
    text = v.text.len ? buf_cstr(&v.text) : "Access denied";
    policy_note(e, item, "%s -> %s", key, value);
    switch (v.action) {
    case POLICY_ACT_OK:
    case POLICY_ACT_RELAY:
        res = POLICY_PERMIT;
        break;
    case POLICY_ACT_REJECT:
        res = policy_postfix_reply(e, list, POLICY_REJECT, item, v.code[0] ? v.code : "554",
                                   v.dsn[0] ? v.dsn : "5.7.1", text);
        break;
    case POLICY_ACT_DEFER:
        res = policy_postfix_reply(e, list, POLICY_DEFER, item, v.code[0] ? v.code : "450",
                                   v.dsn[0] ? v.dsn : "4.7.1", text);
        break;
    case POLICY_ACT_DEFER_IF_PERMIT:
    case POLICY_ACT_DEFER_IF_REJECT: {
        /* Postfix: defer only if the evaluation would end in an accept
         * (a reject); remember the reply and go on */
        buf_t *keep =
            v.action == POLICY_ACT_DEFER_IF_PERMIT ? &e->defer_if_permit : &e->defer_if_reject;
        buf_t saved = BUF_INIT;
        if (keep->len > 0)
            break;
        buf_set(&saved, buf_cstr(&e->r->reply));
        policy_postfix_reply(e, list, POLICY_DEFER, item, "450", "4.7.1", text);
        buf_set(keep, buf_cstr(&e->r->reply));
        buf_set(&e->r->reply, buf_cstr(&saved));
        buf_free(&saved);
        e->r->verdict = POLICY_DUNNO;
        policy_note(e, item, "%s pending: %s",
                    v.action == POLICY_ACT_DEFER_IF_PERMIT ? "DEFER_IF_PERMIT" : "DEFER_IF_REJECT",
                    buf_cstr(keep));
        break;
    }
    case POLICY_ACT_DISCARD:
        e->r->discard = 1;
        res = POLICY_PERMIT;
        break;
    case POLICY_ACT_HOLD:
        e->r->hold = 1;
        buf_set(&e->r->hold_reason, v.text.len ? buf_cstr(&v.text) : key);
        break;
    case POLICY_ACT_PREPEND:
        buf_printf(&e->r->prepend, "%s\n", buf_cstr(&v.text));
        break;
    case POLICY_ACT_REDIRECT:
        buf_set(&e->r->redirect, buf_cstr(&v.text));
        break;
    case POLICY_ACT_WARN:
        buf_printf(&e->r->warnings, "warn\t%s: %s\n", key, buf_cstr(&v.text));
        break;
    case POLICY_ACT_DUNNO:
    case POLICY_ACT_FRIEND:
    case POLICY_ACT_HATER:
        break;
    case POLICY_ACT_RESTRICTION: {
        struct policy_item sub;
        size_t k = 0;
        while (k < POLICY_NAME_COUNT && strcmp(policy_names[k].name, buf_cstr(&v.text)) != 0)
            k++;
        if (k == POLICY_NAME_COUNT || policy_names[k].arg != 0 ||
            policy_names[k].kind == PK_WARN_IF_REJECT) {
            buf_t why = BUF_INIT;
            buf_printf(&why, "%s: key %s: '%s' is not a restriction without arguments", item, key,
                       buf_cstr(&v.text));
            res = policy_tempfail(e, item, buf_cstr(&why));
            buf_free(&why);
            break;
        }
        memset(&sub, 0, sizeof(sub));
        sub.kind = policy_names[k].kind;
        sub.name = policy_names[k].name;
        res = policy_item_eval(e, &sub, list);
        break;
    }
    }
done:
    policy_access_value_free(&v);
    buf_free(&err);
    return res;
}

/* policy_check_table - one check_*_access restriction over keys; *found
 * (when found is non-NULL) is set when a key matched, whatever its value */
static enum policy_verdict policy_check_table(struct policy_eval *e, const struct policy_item *it,
                                              enum policy_list_id list,
                                              const struct policy_keys *keys, int *found)
{
    buf_t value = BUF_INIT, matched = BUF_INIT;
    enum table_result res;
    enum policy_verdict v = POLICY_DUNNO;

    if (keys->count == 0)
        return POLICY_DUNNO;
    res = policy_table_find((struct table_list *)&it->table, keys, NULL, 0, &value, &matched);
    if (found != NULL)
        *found = res == TABLE_FOUND;
    if (res == TABLE_TEMPFAIL)
        v = policy_tempfail(e, it->name, it->arg);
    else if (res == TABLE_FOUND)
        v = policy_apply_value(e, list, it->name, buf_cstr(&matched), buf_cstr(&value));
    else
        policy_note(e, it->name, "%s: no match for %s", it->arg, keys->v[0]);
    buf_free(&value);
    buf_free(&matched);
    return v;
}

/* ---- DNS lists */

/* policy_rbl_query - the DNS name of a client address in zone */
static int policy_rbl_query(const char *ip, const char *zone, buf_t *out)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, ip, &a4) == 1) {
        const unsigned char *b = (const unsigned char *)&a4;
        buf_printf(out, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0], zone);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        for (int i = 15; i >= 0; i--)
            buf_printf(out, "%x.%x.", a6.s6_addr[i] & 0xf, a6.s6_addr[i] >> 4);
        buf_puts(out, zone);
        return 0;
    }
    return -1;
}

/* policy_tempfail_zone - a DNS error in zone gives 451 (enhdnsbl's t) */
static int policy_tempfail_zone(const struct policy *p, const char *zone)
{
    for (size_t i = 0; i < p->tempfail_count; i++)
        if (strcasecmp(p->tempfail_zones[i], zone) == 0)
            return 1;
    return 0;
}

/* policy_dns_answer - the cached answer of a DNS question, or ask it:
 * 0 listed/found (value = the answer), 1 not, -1 failed, 2 asked */
static int policy_dns_answer(struct policy_eval *e, enum policy_need_kind kind, const char *name,
                             const char **value)
{
    buf_t key = BUF_INIT;
    int st;

    buf_printf(&key, "%c:%s",
               kind == POLICY_NEED_A     ? 'A'
               : kind == POLICY_NEED_TXT ? 'T'
                                         : 'D',
               name);
    st = policy_cache_get(e->c, buf_cstr(&key), value);
    if (st != 0 && st != 1 && st != -1) {
        policy_cache_need(e->c, kind, buf_cstr(&key), name, NULL, 0);
        st = POLICY_CACHE_INFLIGHT;
    }
    buf_free(&key);
    return st;
}

/* policy_rbl_listed - the first answer address that passes the filter:
 * 1 listed (*hit set), 0 not, -1 DNS failed, 2 wait */
static int policy_rbl_listed(struct policy_eval *e, const struct policy_item *it, const char *query,
                             buf_t *hit)
{
    const char *answer;
    int st = policy_dns_answer(e, POLICY_NEED_A, query, &answer);
    const char *p;

    if (st == POLICY_CACHE_INFLIGHT)
        return 2;
    if (st < 0)
        return -1;
    if (st == 1)
        return 0;
    for (p = answer; *p;) {
        size_t n = strcspn(p, " ");
        buf_reset(hit);
        buf_append(hit, p, n);
        if (policy_filter_match(&it->filter, buf_cstr(hit)))
            return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* policy_rbl_reject - the reply for a listed client or domain */
static enum policy_verdict policy_rbl_reject(struct policy_eval *e, const struct policy_item *it,
                                             const char *query, const char *cls, const char *what,
                                             const char *hit)
{
    const char *txt = "";
    buf_t tmpl = BUF_INIT, text = BUF_INIT, reply = BUF_INIT, safe_txt = BUF_INIT;
    int st = policy_dns_answer(e, POLICY_NEED_TXT, query, &txt);
    enum table_result res;
    const char *vars[40];
    size_t n = 0;

    if (st == POLICY_CACHE_INFLIGHT)
        return POLICY_WAIT;
    if (st != 0)
        txt = "";
    /* a TXT record is outside text: one printable line in the reply */
    for (const char *q = txt; *q && safe_txt.len < 512; q++)
        buf_putc(&safe_txt, (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f ? *q : '?');
    txt = buf_cstr(&safe_txt);
    res = table_list_lookup(&e->p->rbl_reply, it->arg, &tmpl);
    if (res == TABLE_TEMPFAIL) {
        buf_free(&tmpl);
        buf_free(&safe_txt);
        return policy_tempfail(e, it->name, "rbl_reply_maps");
    }
    if (res != TABLE_FOUND)
        buf_set(&tmpl, e->p->default_rbl_reply);
#define POLICY_VAR(k, v)                                                                           \
    do {                                                                                           \
        vars[n++] = (k);                                                                           \
        vars[n++] = (v) ? (v) : "";                                                                \
    } while (0)
    POLICY_VAR("rbl_code", "554");
    POLICY_VAR("rbl_domain", it->arg);
    POLICY_VAR("rbl_reason", txt);
    POLICY_VAR("rbl_txt", txt);
    POLICY_VAR("rbl_what", what);
    POLICY_VAR("rbl_class", cls);
    POLICY_VAR("rbl_result", hit);
    POLICY_VAR("client_address", e->f->ip);
    POLICY_VAR("client_addr", e->f->ip);
    POLICY_VAR("client_name", e->f->name);
    POLICY_VAR("reverse_client_name", e->f->reverse_name);
    POLICY_VAR("helo_name", e->f->helo);
    POLICY_VAR("sender", e->f->sender);
    POLICY_VAR("recipient", e->f->recipient);
    vars[n] = NULL;
#undef POLICY_VAR
    policy_expand_reply(buf_cstr(&tmpl), vars, &text);
    /* "554 text" gets the enhanced status code Postfix inserts */
    if (text.len >= 4 && (text.data[0] == '4' || text.data[0] == '5') && text.data[3] == ' ' &&
        !(isdigit((unsigned char)text.data[4]) && text.data[5] == '.'))
        buf_printf(&reply, "%.3s %c.7.1 %s", text.data, text.data[0], text.data + 4);
    else
        buf_set(&reply, buf_cstr(&text));
    policy_note(e, it->name, "%s: listed (%s)%s%s", query, hit, *txt ? ": " : "", txt);
    policy_set(e, reply.data[0] == '4' ? POLICY_DEFER : POLICY_REJECT, it->name, "%s",
               buf_cstr(&reply));
    buf_printf(&e->r->log, " %s", it->arg);
    buf_free(&tmpl);
    buf_free(&text);
    buf_free(&reply);
    buf_free(&safe_txt);
    return e->r->verdict;
}

/* policy_dnsbl - reject_rbl_client, permit_dnswl_client and the RHSBLs */
static enum policy_verdict policy_dnsbl(struct policy_eval *e, const struct policy_item *it,
                                        const char *subject, int by_ip, const char *cls,
                                        const char *what)
{
    buf_t query = BUF_INIT, hit = BUF_INIT;
    enum policy_verdict v = POLICY_DUNNO;
    int listed;

    if (subject == NULL || *subject == 0 || strcmp(subject, "unknown") == 0)
        return POLICY_DUNNO;
    if (by_ip ? policy_rbl_query(subject, it->arg, &query) < 0
              : (buf_printf(&query, "%s.%s", subject, it->arg), 0))
        goto done;
    listed = policy_rbl_listed(e, it, buf_cstr(&query), &hit);
    if (listed == 2) {
        v = POLICY_WAIT;
    } else if (listed < 0) {
        if (it->kind != PK_DNSWL_CLIENT && policy_tempfail_zone(e->p, it->arg)) {
            v = policy_set(e, POLICY_DEFER, it->name,
                           "451 4.7.1 Temporary lookup failure of %s at %s", subject, it->arg);
        } else {
            log_warn("%s: DNS lookup of %s failed: passed", it->name, buf_cstr(&query));
            policy_note(e, it->name, "%s: DNS failed: passed", buf_cstr(&query));
        }
    } else if (listed == 0) {
        policy_note(e, it->name, "%s: not listed", buf_cstr(&query));
    } else if (it->kind == PK_DNSWL_CLIENT) {
        policy_note(e, it->name, "%s: listed (%s): permit", buf_cstr(&query), buf_cstr(&hit));
        v = POLICY_PERMIT;
    } else {
        v = policy_rbl_reject(e, it, buf_cstr(&query), cls, what, buf_cstr(&hit));
    }
done:
    buf_free(&query);
    buf_free(&hit);
    return v;
}

/* ---- names and domains */

/* policy_fqdn - a dotted name (not an address literal) */
static int policy_fqdn(const char *name)
{
    size_t len = strlen(name);

    return name[0] == '[' || (strchr(name, '.') != NULL && name[0] != '.' && len > 0);
}

/* policy_valid_hostname - RFC 1123 letters, digits, '-', '.', or an
 * address literal */
static int policy_valid_hostname(const char *name)
{
    size_t len = strlen(name);
    struct sockaddr_storage ss;

    if (len == 0 || len > 255)
        return 0;
    if (name[0] == '[' && name[len - 1] == ']') {
        buf_t inner = BUF_INIT;
        int ok;
        buf_append(&inner, name + 1, len - 2);
        ok =
            netaddr_parse_addr(strncasecmp(buf_cstr(&inner), "IPv6:", 5) == 0 ? buf_cstr(&inner) + 5
                                                                              : buf_cstr(&inner),
                               &ss) == 0;
        buf_free(&inner);
        return ok;
    }
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return 0;
    return name[0] != '.' && strstr(name, "..") == NULL;
}

/* policy_domain_exists - a domain's DNS: 0 exists, 1 not, -1 failed, 2 wait;
 * the site's own domains always exist */
static int policy_domain_exists(struct policy_eval *e, const char *domain)
{
    const char *v;
    enum route_class cls;

    if (domain == NULL || *domain == 0 || domain[0] == '[')
        return 0;
    if (e->p->route != NULL && route_class_of(e->p->route, domain, &cls) == ROUTE_OK &&
        cls != ROUTE_CLASS_DEFAULT)
        return 0;
    return policy_dns_answer(e, POLICY_NEED_DOMAIN, domain, &v);
}

/* policy_mx_backup - permit_mx_backup (sendmail's relay_based_on_MX): the
 * recipient domain's MX hosts include this host (myhostname, or a name in
 * mydestination); 1 yes, 0 no, 2 wait */
static int policy_mx_backup(struct policy_eval *e)
{
    const char *domain = policy_domain(e->f->recipient);
    const char *answer, *p;
    enum route_class cls;
    buf_t host = BUF_INIT;
    int st, found = 0;

    if (*domain == 0 || domain[0] == '[')
        return 0;
    st = policy_dns_answer(e, POLICY_NEED_MX, domain, &answer);
    if (st == POLICY_CACHE_INFLIGHT)
        return 2;
    if (st != 0)
        return 0;
    for (p = answer; *p && !found;) {
        size_t n = strcspn(p, " ");
        buf_reset(&host);
        buf_append(&host, p, n);
        found = strcasecmp(buf_cstr(&host), e->p->myhostname) == 0 ||
                (e->p->route != NULL &&
                 route_class_of(e->p->route, buf_cstr(&host), &cls) == ROUTE_OK &&
                 cls == ROUTE_CLASS_LOCAL);
        p += n;
        while (*p == ' ')
            p++;
    }
    policy_note(e, "permit_mx_backup", "%s: MX %s%s", domain, *answer ? answer : "(none)",
                found ? ": this host is an MX" : "");
    buf_free(&host);
    return found;
}

/* policy_authorized_destination - a recipient this host accepts from anyone */
static int policy_authorized_destination(struct policy_eval *e, int *tempfail)
{
    int rc;

    *tempfail = 0;
    if (e->p->route == NULL || e->f->recipient == NULL)
        return 0;
    rc = route_destination_authorized(e->p->route, e->f->recipient, e->f->addr);
    *tempfail = rc < 0;
    return rc > 0;
}

/* ---- check_policy_service */

/* policy_service_request - Postfix's policy delegation attributes */
static void policy_service_request(struct policy_eval *e, buf_t *req)
{
    static const char *const states[] = {"CONNECT", "HELO",           "MAIL", "RCPT",
                                         "DATA",    "END-OF-MESSAGE", "ETRN"};
    const struct policy_facts *f = e->f;

#define POLICY_ATTR(k, v) buf_printf(req, "%s=%s\n", (k), (v) ? (v) : "")
    POLICY_ATTR("request", "smtpd_access_policy");
    POLICY_ATTR("protocol_state", states[e->stage]);
    POLICY_ATTR("protocol_name", f->protocol);
    POLICY_ATTR("helo_name", f->helo);
    POLICY_ATTR("queue_id", f->queue_id);
    POLICY_ATTR("sender", f->sender);
    POLICY_ATTR("recipient", f->recipient);
    buf_printf(req, "recipient_count=%lld\n", f->rcpt_count);
    POLICY_ATTR("client_address", f->ip);
    POLICY_ATTR("client_name", f->name);
    POLICY_ATTR("reverse_client_name", f->reverse_name);
    POLICY_ATTR("instance", f->listener);
    POLICY_ATTR("sasl_method", f->sasl_method);
    POLICY_ATTR("sasl_username", f->sasl_username);
    POLICY_ATTR("sasl_sender", f->sasl_sender);
    POLICY_ATTR("ccert_fingerprint", f->ccert_fingerprint);
    POLICY_ATTR("encryption_protocol", f->tls ? "TLS" : "");
    if (f->size >= 0)
        buf_printf(req, "size=%lld\n", f->size);
    else
        POLICY_ATTR("size", "0");
#undef POLICY_ATTR
    buf_puts(req, "\n");
}

/* policy_service - check_policy_service */
static enum policy_verdict policy_service(struct policy_eval *e, const struct policy_item *it,
                                          enum policy_list_id list)
{
    buf_t req = BUF_INIT, key = BUF_INIT;
    const char *action;
    int st;
    enum policy_verdict v;

    policy_service_request(e, &req);
    /* one answer per distinct request: the same RCPT asked twice is asked once */
    buf_printf(&key, "S:%s:%s", it->arg, buf_cstr(&req));
    st = policy_cache_get(e->c, buf_cstr(&key), &action);
    if (st != 0 && st != 1 && st != -1) {
        if (st != POLICY_CACHE_INFLIGHT)
            policy_cache_need(e->c, POLICY_NEED_SERVICE, buf_cstr(&key), it->arg, &req, 0);
        v = POLICY_WAIT;
    } else if (st != 0) { /* 1 (no answer) fails too: it is never asked again */
        log_warn("check_policy_service %s: %s", it->arg, action);
        policy_note(e, it->name, "%s: failed (%s)", it->arg, action);
        v = policy_apply_value(e, list, it->name, it->arg, e->p->service_default_action);
    } else {
        v = policy_apply_value(e, list, it->name, it->arg, action);
    }
    buf_free(&req);
    buf_free(&key);
    return v;
}

/* ---- one restriction */

static enum policy_verdict policy_item_eval(struct policy_eval *e, const struct policy_item *it,
                                            enum policy_list_id list)
{
    const struct policy_facts *f = e->f;
    struct policy_keys keys = {NULL, 0};
    enum policy_verdict v = POLICY_DUNNO;
    int tempfail = 0, st;
    buf_t what = BUF_INIT;

    switch (it->kind) {
    case PK_PERMIT:
        v = POLICY_PERMIT;
        break;
    case PK_REJECT:
        v = policy_postfix_reply(e, list, POLICY_REJECT, it->name, "554", "5.7.1", "Access denied");
        break;
    case PK_DEFER:
        v = policy_postfix_reply(e, list, POLICY_DEFER, it->name, "450", "4.7.1",
                                 "Try again later");
        break;
    case PK_DUNNO:
        break;
    case PK_PERMIT_MYNETWORKS:
        v = f->in_mynetworks ? POLICY_PERMIT : POLICY_DUNNO;
        break;
    case PK_PERMIT_SASL:
        v = f->sasl_username != NULL ? POLICY_PERMIT : POLICY_DUNNO;
        break;
    case PK_PERMIT_CLIENTCERTS:
        if (f->ccert_verified == POLICY_CCERT_TEMPFAIL)
            v = policy_tempfail(e, it->name, "relay_clientcerts");
        else
            v = f->ccert_verified == POLICY_CCERT_LISTED ? POLICY_PERMIT : POLICY_DUNNO;
        break;
    case PK_PERMIT_AUTH_DESTINATION:
        v = policy_authorized_destination(e, &tempfail) ? POLICY_PERMIT : POLICY_DUNNO;
        if (tempfail)
            v = policy_tempfail(e, it->name, "route");
        break;
    case PK_PERMIT_MX_BACKUP:
        if (f->recipient == NULL || policy_authorized_destination(e, &tempfail))
            break;
        st = policy_mx_backup(e);
        v = st == 2 ? POLICY_WAIT : st ? POLICY_PERMIT : POLICY_DUNNO;
        break;
    case PK_REJECT_UNAUTH_DESTINATION:
    case PK_DEFER_UNAUTH_DESTINATION:
        if (f->recipient == NULL || policy_authorized_destination(e, &tempfail))
            break;
        if (tempfail)
            v = policy_tempfail(e, it->name, "route");
        else if (it->kind == PK_DEFER_UNAUTH_DESTINATION)
            v = policy_set(e, POLICY_DEFER, it->name, "450 4.7.1 <%s>: Relay access denied",
                           f->recipient);
        else
            v = policy_set(e, POLICY_REJECT, it->name, "554 5.7.1 <%s>: Relay access denied",
                           f->recipient);
        break;
    case PK_CHECK_CLIENT: {
        /* the name, then the address, as two lookups (Postfix): a pattern
         * table sees the full name and then the full address */
        int found = 0;
        if (f->name && f->name_status == 0) {
            policy_keys_domain(f->name, &keys);
            v = policy_check_table(e, it, PL_CLIENT, &keys, &found);
            policy_keys_free(&keys);
        }
        if (!found && v == POLICY_DUNNO) {
            policy_keys_ip(f->ip ? f->ip : "", &keys);
            v = policy_check_table(e, it, PL_CLIENT, &keys, NULL);
        }
        break;
    }
    case PK_CHECK_REVERSE_CLIENT:
        if (f->reverse_name && strcmp(f->reverse_name, "unknown") != 0)
            policy_keys_domain(f->reverse_name, &keys);
        v = policy_check_table(e, it, PL_CLIENT, &keys, NULL);
        break;
    case PK_CHECK_HELO:
        if (f->helo && *f->helo)
            policy_keys_domain(f->helo, &keys);
        v = policy_check_table(e, it, PL_HELO, &keys, NULL);
        break;
    case PK_CHECK_SENDER:
        if (f->sender != NULL)
            policy_keys_address(*f->sender ? f->sender : "<>", e->p->delimiters, &keys);
        v = policy_check_table(e, it, PL_SENDER, &keys, NULL);
        break;
    case PK_CHECK_RECIPIENT:
        if (f->recipient != NULL)
            policy_keys_address(f->recipient, e->p->delimiters, &keys);
        v = policy_check_table(e, it, PL_RECIPIENT, &keys, NULL);
        break;
    case PK_CHECK_CCERT:
        if (f->ccert_fingerprint && *f->ccert_fingerprint)
            policy_keys_domain(f->ccert_fingerprint, &keys);
        v = policy_check_table(e, it, PL_CLIENT, &keys, NULL);
        break;
    case PK_RBL_CLIENT:
    case PK_DNSWL_CLIENT:
        buf_printf(&what, "%s", f->ip ? f->ip : "");
        v = policy_dnsbl(e, it, f->ip, 1, "Client host", buf_cstr(&what));
        break;
    case PK_RHSBL_CLIENT:
        v = policy_dnsbl(e, it, f->name_status == 0 ? f->name : NULL, 0, "Client host", f->name);
        break;
    case PK_RHSBL_REVERSE_CLIENT:
        v = policy_dnsbl(e, it, f->reverse_status == 0 ? f->reverse_name : NULL, 0, "Client host",
                         f->reverse_name);
        break;
    case PK_RHSBL_SENDER:
        if (f->sender && *f->sender)
            v = policy_dnsbl(e, it, policy_domain(f->sender), 0, "Sender address", f->sender);
        break;
    case PK_RHSBL_HELO:
        v = policy_dnsbl(e, it, f->helo, 0, "Helo command", f->helo);
        break;
    case PK_RHSBL_RECIPIENT:
        if (f->recipient)
            v = policy_dnsbl(e, it, policy_domain(f->recipient), 0, "Recipient address",
                             f->recipient);
        break;
    case PK_UNKNOWN_CLIENT:
        if (f->name_status != 0)
            v = policy_set(e, POLICY_DEFER, it->name,
                           "450 4.7.25 Client host rejected: cannot find your hostname, [%s]",
                           f->ip ? f->ip : "");
        break;
    case PK_UNKNOWN_REVERSE_CLIENT:
        if (f->reverse_status != 0)
            v = policy_set(e, POLICY_DEFER, it->name,
                           "450 4.7.25 Client host rejected: cannot find your reverse hostname, "
                           "[%s]",
                           f->ip ? f->ip : "");
        break;
    case PK_UNKNOWN_SENDER_DOMAIN:
    case PK_UNKNOWN_RECIPIENT_DOMAIN: {
        int sender = it->kind == PK_UNKNOWN_SENDER_DOMAIN;
        const char *a = sender ? f->sender : f->recipient;
        if (a == NULL || *a == 0 || !addr_is_qualified(a))
            break;
        st = policy_domain_exists(e, policy_domain(a));
        if (st == POLICY_CACHE_INFLIGHT)
            v = POLICY_WAIT;
        else if (st != 0)
            v = policy_postfix_reply(e, sender ? PL_SENDER : PL_RECIPIENT, POLICY_DEFER, it->name,
                                     st < 0 ? "451" : "450", sender ? "4.1.8" : "4.1.2",
                                     st < 0 ? "Domain not found (temporary DNS failure)"
                                            : "Domain not found");
        break;
    }
    case PK_NON_FQDN_SENDER:
        if (f->sender && *f->sender && !policy_fqdn(policy_domain(f->sender)))
            v = policy_postfix_reply(e, PL_SENDER, POLICY_REJECT, it->name, "504", "5.5.2",
                                     "need fully-qualified address");
        break;
    case PK_NON_FQDN_RECIPIENT:
        if (f->recipient && !policy_fqdn(policy_domain(f->recipient)))
            v = policy_postfix_reply(e, PL_RECIPIENT, POLICY_REJECT, it->name, "504", "5.5.2",
                                     "need fully-qualified address");
        break;
    case PK_NON_FQDN_HELO:
        if (f->helo && *f->helo && !policy_fqdn(f->helo))
            v = policy_postfix_reply(e, PL_HELO, POLICY_REJECT, it->name, "504", "5.5.2",
                                     "need fully-qualified hostname");
        break;
    case PK_INVALID_HELO:
        if (f->helo && *f->helo && !policy_valid_hostname(f->helo))
            v = policy_postfix_reply(e, PL_HELO, POLICY_REJECT, it->name, "501", "5.5.2",
                                     "Invalid name");
        break;
    case PK_UNLISTED_RECIPIENT:
        if (f->recipient && e->p->route) {
            struct route_client client = {f->addr, 1};
            struct route_reply why;
            enum route_status rs;
            route_reply_init(&why);
            rs = route_check_recipient(e->p->route, f->recipient, &client, &why);
            if (rs != ROUTE_OK)
                v = policy_set(e, rs == ROUTE_TEMPFAIL ? POLICY_DEFER : POLICY_REJECT, it->name,
                               "%s %s %s", why.code, why.dsn, buf_cstr(&why.text));
            route_reply_free(&why);
        }
        break;
    case PK_UNAUTH_PIPELINING:
        if (f->pipelined)
            v = policy_set(e, POLICY_REJECT, it->name,
                           "554 5.5.0 Error: improper use of SMTP command pipelining");
        break;
    case PK_SENDER_LOGIN_MISMATCH: /* smtpd checks it at MAIL (smtpd/auth.c) */
        break;
    case PK_POLICY_SERVICE:
        v = policy_service(e, it, list);
        break;
    case PK_SLEEP: {
        const char *ignored;
        buf_printf(&what, "Z:%d:%s:%lld", (int)list, it->arg, f->command_seq);
        st = policy_cache_get(e->c, buf_cstr(&what), &ignored);
        if (st == POLICY_CACHE_INFLIGHT || (st != 0 && st != 1 && st != -1)) {
            policy_cache_need(e->c, POLICY_NEED_SLEEP, buf_cstr(&what), "", NULL, it->seconds);
            v = POLICY_WAIT;
        }
        break;
    }
    case PK_WARN_IF_REJECT:
        break;
    }
    policy_keys_free(&keys);
    buf_free(&what);
    return v;
}

/* policy_run_list - one list: the first item that decides ends it */
static enum policy_verdict policy_run_list(struct policy_eval *e, enum policy_list_id id)
{
    const struct policy_list *l = &e->p->lists[id];

    e->list = id;
    for (size_t i = 0; i < l->count; i++) {
        const struct policy_item *it = &l->v[i];
        enum policy_verdict v = policy_item_eval(e, it, id);
        if (v == POLICY_DUNNO)
            continue;
        if (v == POLICY_WAIT)
            return v;
        if (it->warn_only && (v == POLICY_REJECT || v == POLICY_DEFER)) {
            buf_printf(&e->r->warnings, "reject_warning\t%s\n", buf_cstr(&e->r->reply));
            policy_note(e, it->name, "would %s: %s (warn_if_reject)",
                        v == POLICY_REJECT ? "reject" : "defer", buf_cstr(&e->r->reply));
            buf_reset(&e->r->reply);
            e->r->verdict = POLICY_DUNNO;
            continue;
        }
        if (v == POLICY_PERMIT)
            policy_note(e, it->name, "permit");
        else
            policy_note(e, it->name, "%s: %s", v == POLICY_REJECT ? "reject" : "defer",
                        buf_cstr(&e->r->reply));
        return v;
    }
    return POLICY_DUNNO;
}

/* ---- sendmail's access file */

/* policy_access_lookup - sendmail lookup of keys with tag: 1 found (value,
 * matched), 0 not, -1 table failed (the verdict is set) */
static int policy_access_lookup(struct policy_eval *e, const struct policy_keys *k, const char *tag,
                                int untagged, buf_t *value, buf_t *matched)
{
    enum table_result res;

    if (e->p->access.count == 0 || k->count == 0)
        return 0;
    res = policy_table_find(&e->p->access, k, tag, untagged, value, matched);
    if (res == TABLE_TEMPFAIL) {
        policy_tempfail(e, "access_maps", "the access table cannot be read");
        return -1;
    }
    if (res == TABLE_FOUND)
        policy_note(e, "access_maps", "%s -> %s", buf_cstr(matched), buf_cstr(value));
    return res == TABLE_FOUND;
}

/* policy_access_client_keys - Connect: keys: the address and its prefixes,
 * then the verified name and its parents */
static void policy_access_client_keys(const struct policy_facts *f, struct policy_keys *k)
{
    if (f->ip && strchr(f->ip, ':')) {
        buf_t v6 = BUF_INIT;
        struct policy_keys tmp = {NULL, 0};
        policy_keys_ip(f->ip, &tmp);
        for (size_t i = 0; i < tmp.count; i++) {
            buf_reset(&v6);
            buf_printf(&v6, "ipv6:%s", tmp.v[i]);
            k->v = xrealloc(k->v, (k->count + 1) * sizeof(*k->v));
            k->v[k->count++] = buf_steal(&v6);
        }
        policy_keys_free(&tmp);
        buf_free(&v6);
    } else if (f->ip) {
        policy_keys_ip(f->ip, k);
    }
    if (f->name && f->name_status == 0)
        policy_keys_domain(f->name, k);
}

/* policy_access_act - a sendmail access action at a stage: echo is the
 * path to quote in the reply (the MAIL or RCPT argument) */
static enum policy_verdict policy_access_act(struct policy_eval *e, const char *value,
                                             const char *key, int recipient_tag)
{
    struct policy_access_value v;
    buf_t err = BUF_INIT;
    enum policy_verdict res = POLICY_DUNNO;
    const char *echo = e->f->echo ? e->f->echo : "";

    policy_access_value_init(&v);
    if (policy_access_parse(value, &v, &err) < 0) {
        buf_t why = BUF_INIT;
        buf_printf(&why, "access_maps: key %s: %s", key, buf_cstr(&err));
        res = policy_tempfail(e, "access_maps", buf_cstr(&why));
        buf_free(&why);
        goto done;
    }
    switch (v.action) {
    case POLICY_ACT_OK:
    case POLICY_ACT_RELAY:
        res = POLICY_PERMIT;
        break;
    case POLICY_ACT_REJECT:
    case POLICY_ACT_DEFER:
        buf_reset(&e->r->log);
        buf_printf(&e->r->log, "access %s", key);
        e->r->verdict = v.action == POLICY_ACT_REJECT ? POLICY_REJECT : POLICY_DEFER;
        if (v.code[0] && v.text.len)
            policy_reply_sendmail(&e->r->reply, v.code,
                                  v.dsn[0]           ? v.dsn
                                  : v.code[0] == '4' ? "4.0.0"
                                                     : "5.0.0",
                                  echo, buf_cstr(&v.text));
        else if (recipient_tag)
            policy_reply_sendmail(&e->r->reply, "550", "5.2.1", echo,
                                  "Mailbox disabled for this recipient");
        else if (v.action == POLICY_ACT_DEFER)
            policy_reply_sendmail(&e->r->reply, "451", "4.7.1", echo, "Access temporarily denied");
        else
            policy_reply_sendmail(&e->r->reply, "550", "5.7.1", echo, "Access denied");
        res = e->r->verdict;
        break;
    case POLICY_ACT_DISCARD:
        e->r->discard = 1;
        res = POLICY_PERMIT;
        break;
    case POLICY_ACT_HOLD:
        e->r->hold = 1;
        buf_set(&e->r->hold_reason, v.text.len ? buf_cstr(&v.text) : key);
        break;
    default: /* SKIP, FRIEND, HATER, and Postfix-only values: no decision here */
        break;
    }
done:
    policy_access_value_free(&v);
    buf_free(&err);
    return res;
}

/* policy_access_stage - sendmail's lookups of one stage (before its list) */
static enum policy_verdict policy_access_stage(struct policy_eval *e, enum policy_list_id id)
{
    struct policy_keys keys = {NULL, 0};
    buf_t value = BUF_INIT, matched = BUF_INIT;
    const char *tag = NULL;
    int found;
    enum policy_verdict v = POLICY_DUNNO;

    if (e->p->access.count == 0)
        return POLICY_DUNNO;
    e->list = PL_COUNT;
    switch (id) {
    case PL_CLIENT:
        policy_access_client_keys(e->f, &keys);
        tag = "connect:";
        break;
    case PL_SENDER:
        if (e->f->sender == NULL)
            break;
        policy_keys_address(*e->f->sender ? e->f->sender : "<>", e->p->delimiters, &keys);
        tag = "from:";
        break;
    case PL_RECIPIENT:
        if (e->f->recipient == NULL)
            break;
        policy_keys_address(e->f->recipient, e->p->delimiters, &keys);
        tag = "to:";
        break;
    default:
        break;
    }
    if (tag == NULL || keys.count == 0)
        goto done;
    found = policy_access_lookup(e, &keys, tag, 1, &value, &matched);
    if (found < 0) {
        v = POLICY_DEFER;
    } else if (found) {
        struct policy_access_value pv;
        buf_t err = BUF_INIT;
        int is_reject;
        policy_access_value_init(&pv);
        is_reject = policy_access_parse(buf_cstr(&value), &pv, &err) == 0 &&
                    pv.action == POLICY_ACT_REJECT && pv.code[0] == 0;
        policy_access_value_free(&pv);
        buf_free(&err);
        /* To: REJECT refuses the recipient only under blocklist_recipients;
         * untagged entries act on the recipient only for RELAY */
        if (id == PL_RECIPIENT && is_reject && !e->p->blocklist_recipients)
            goto done;
        if (id == PL_RECIPIENT && strncasecmp(buf_cstr(&matched), "to:", 3) != 0 &&
            strcasecmp(buf_cstr(&value), "RELAY") != 0)
            goto done;
        v = policy_access_act(e, buf_cstr(&value), buf_cstr(&matched), id == PL_RECIPIENT);
    }
done:
    policy_keys_free(&keys);
    buf_free(&value);
    buf_free(&matched);
    return v;
}

/* policy_access_relay - sendmail's relaying by Connect: or To: RELAY */
static int policy_access_relay(struct policy_eval *e, int *failed)
{
    struct policy_keys keys = {NULL, 0};
    buf_t value = BUF_INIT, matched = BUF_INIT;
    int relay = 0, found;

    *failed = 0;
    if (e->p->access.count == 0)
        return 0;
    e->list = PL_COUNT;
    policy_access_client_keys(e->f, &keys);
    found = policy_access_lookup(e, &keys, "connect:", 1, &value, &matched);
    if (found > 0 && strcasecmp(buf_cstr(&value), "RELAY") == 0)
        relay = 1;
    policy_keys_free(&keys);
    if (!relay && found >= 0 && e->f->recipient) {
        const char *domain = policy_domain(e->f->recipient);
        policy_keys_address(e->f->recipient, e->p->delimiters, &keys);
        if (*domain)
            policy_keys_domain(domain, &keys);
        found = policy_access_lookup(e, &keys, "to:", 1, &value, &matched);
        if (found > 0 && strcasecmp(buf_cstr(&value), "RELAY") == 0)
            relay = 1;
    }
    *failed = found < 0;
    policy_keys_free(&keys);
    buf_free(&value);
    buf_free(&matched);
    return relay;
}

/* policy_spam_exempt - sendmail's Spam: FRIEND / HATER for a recipient:
 * 1 when the delayed client and sender checks are skipped for it */
static int policy_spam_exempt(struct policy_eval *e, int *failed)
{
    struct policy_keys keys = {NULL, 0};
    buf_t value = BUF_INIT, matched = BUF_INIT;
    int found, exempt;

    *failed = 0;
    if (e->p->access.count == 0 || e->f->recipient == NULL)
        return 0;
    e->list = PL_COUNT;
    policy_keys_address(e->f->recipient, e->p->delimiters, &keys);
    found = policy_access_lookup(e, &keys, "spam:", 0, &value, &matched);
    if (found < 0)
        *failed = 1;
    if (e->p->spam_mode == POLICY_SPAM_FRIEND)
        exempt = found > 0 && strcasecmp(buf_cstr(&value), "FRIEND") == 0;
    else
        exempt = !(found > 0 && strcasecmp(buf_cstr(&value), "HATER") == 0);
    if (exempt)
        policy_note(e, "access_maps", "%s: %s: client, HELO and sender checks skipped",
                    e->f->recipient,
                    e->p->spam_mode == POLICY_SPAM_FRIEND ? "FRIEND" : "not a HATER");
    policy_keys_free(&keys);
    buf_free(&value);
    buf_free(&matched);
    return exempt;
}

/* ---- sendmail's built-in sender domain check */

/* policy_sender_domain - accept_unresolvable_domains = no: a sender whose
 * domain does not exist is refused (sendmail's check_mail) */
static enum policy_verdict policy_sender_domain(struct policy_eval *e)
{
    const struct policy_facts *f = e->f;
    const char *domain;
    int st;

    if (e->p->accept_unresolvable || f->sender == NULL || *f->sender == 0 || f->in_mynetworks ||
        f->sasl_username != NULL || !addr_is_qualified(f->sender))
        return POLICY_DUNNO;
    domain = policy_domain(f->sender);
    e->list = PL_SENDER;
    st = policy_domain_exists(e, domain);
    if (st == POLICY_CACHE_INFLIGHT)
        return POLICY_WAIT;
    if (st == 0)
        return POLICY_DUNNO;
    policy_note(e, "accept_unresolvable_domains", "%s: %s", domain,
                st < 0 ? "DNS failed" : "does not exist");
    if (st < 0)
        return policy_set(e, POLICY_DEFER, "accept_unresolvable_domains",
                          "451 4.1.8 Domain of sender address %s does not resolve", f->sender);
    buf_reset(&e->r->reply);
    policy_set(e, POLICY_REJECT, "accept_unresolvable_domains",
               "553 5.1.8 %s... Domain of sender address %s does not exist",
               f->sender_echo                       ? f->sender_echo
               : e->stage == POLICY_MAIL && f->echo ? f->echo
                                                    : f->sender,
               f->sender);
    return POLICY_REJECT;
}

/* ---- stages */

/* policy_stage_run - sendmail's lookups, then the Postfix list */
static enum policy_verdict policy_stage_run(struct policy_eval *e, enum policy_list_id id)
{
    enum policy_verdict v = policy_access_stage(e, id);

    if (v == POLICY_PERMIT)
        return POLICY_DUNNO; /* OK ends this stage only */
    if (v != POLICY_DUNNO)
        return v;
    v = policy_run_list(e, id);
    if (v == POLICY_DUNNO && id == PL_SENDER)
        v = policy_sender_domain(e);
    return v == POLICY_PERMIT ? POLICY_DUNNO : v;
}

/* policy_rcpt - the RCPT stage */
static enum policy_verdict policy_rcpt(struct policy_eval *e)
{
    enum policy_verdict v;
    int failed = 0, relay;

    if (e->p->delay_reject) {
        int exempt = policy_spam_exempt(e, &failed);
        if (failed)
            return POLICY_DEFER;
        if (!exempt) {
            for (enum policy_list_id id = PL_CLIENT; id <= PL_SENDER; id++) {
                v = policy_stage_run(e, id);
                if (v != POLICY_DUNNO)
                    return v;
            }
        }
    }
    /* relaying: sendmail's RELAY entries, then smtpd_relay_restrictions,
     * which end in reject_unauth_destination */
    relay = policy_access_relay(e, &failed);
    if (failed)
        return POLICY_DEFER;
    if (!relay && e->p->promiscuous) {
        policy_note(e, "promiscuous_relay", "every client may relay");
        relay = 1;
    }
    if (relay) {
        e->r->relay = 1;
    } else {
        v = policy_run_list(e, PL_RELAY);
        if (v == POLICY_WAIT || v == POLICY_REJECT || v == POLICY_DEFER)
            return v;
        if (v == POLICY_PERMIT) {
            e->r->relay = 1;
        } else {
            struct policy_item end = {.kind = PK_REJECT_UNAUTH_DESTINATION,
                                      .name = "reject_unauth_destination"};
            v = policy_item_eval(e, &end, PL_RELAY);
            if (v != POLICY_DUNNO)
                return v;
        }
    }
    v = policy_stage_run(e, PL_RECIPIENT);
    return v;
}

enum policy_verdict policy_check(struct policy *p, enum policy_stage stage,
                                 const struct policy_facts *f, struct policy_cache *c,
                                 struct policy_result *r)
{
    struct policy_eval e = {p, f, c, r, stage, PL_CLIENT, 0, BUF_INIT, BUF_INIT};
    enum policy_verdict v = POLICY_DUNNO;

    policy_result_reset(r);
    switch (stage) {
    case POLICY_CONNECT:
        if (!p->delay_reject)
            v = policy_stage_run(&e, PL_CLIENT);
        break;
    case POLICY_HELO:
        if (!p->delay_reject)
            v = policy_stage_run(&e, PL_HELO);
        break;
    case POLICY_MAIL:
        if (!p->delay_reject)
            v = policy_stage_run(&e, PL_SENDER);
        break;
    case POLICY_RCPT:
        v = policy_rcpt(&e);
        break;
    case POLICY_DATA:
        v = policy_stage_run(&e, PL_DATA);
        break;
    case POLICY_EOD:
        v = policy_stage_run(&e, PL_EOD);
        break;
    case POLICY_ETRN:
        v = policy_stage_run(&e, PL_ETRN);
        break;
    }
    if (v == POLICY_REJECT && e.defer_if_reject.len > 0) {
        buf_set(&r->reply, buf_cstr(&e.defer_if_reject));
        v = POLICY_DEFER;
    } else if ((v == POLICY_DUNNO || v == POLICY_PERMIT) && e.defer_if_permit.len > 0) {
        buf_set(&r->reply, buf_cstr(&e.defer_if_permit));
        buf_set(&r->log, "DEFER_IF_PERMIT");
        v = POLICY_DEFER;
    }
    buf_free(&e.defer_if_permit);
    buf_free(&e.defer_if_reject);
    if (v == POLICY_WAIT)
        buf_reset(&r->reply);
    r->verdict = v;
    return v;
}

int policy_prefetch(struct policy *p, const struct policy_facts *f, struct policy_cache *c)
{
    struct policy_result r;
    struct policy_eval e = {p, f, c, &r, POLICY_CONNECT, PL_CLIENT, 0, BUF_INIT, BUF_INIT};
    long long asked = 0;

    policy_result_init(&r);
    for (int id = 0; id < PL_COUNT; id++) {
        for (size_t i = 0; i < p->lists[id].count; i++) {
            const struct policy_item *it = &p->lists[id].v[i];
            buf_t query = BUF_INIT;
            const char *ignored;
            if ((it->kind == PK_RBL_CLIENT || it->kind == PK_DNSWL_CLIENT) && f->ip &&
                asked < p->dnsbl_limit && policy_rbl_query(f->ip, it->arg, &query) == 0) {
                policy_dns_answer(&e, POLICY_NEED_A, buf_cstr(&query), &ignored);
                asked++;
            }
            buf_free(&query);
        }
    }
    policy_result_free(&r);
    return policy_cache_pending(c) != NULL;
}

long long policy_greet_pause(struct policy *p, const struct policy_facts *f, long long default_ms)
{
    struct policy_keys keys = {NULL, 0};
    buf_t value = BUF_INIT, matched = BUF_INIT;
    enum table_result res = TABLE_NOTFOUND;
    long long ms = f->in_mynetworks ? 0 : default_ms;

    if (p->access.count > 0) {
        policy_access_client_keys(f, &keys);
        res = policy_table_find(&p->access, &keys, "greetpause:", 0, &value, &matched);
    }
    if (res == TABLE_TEMPFAIL && table_proxy_scope_pending_now()) {
        /* not answered yet: decided again when it is */
    } else if (res == TABLE_TEMPFAIL) {
        log_warn("access_maps: GreetPause: lookup failed for %s: the default pause applies", f->ip);
    } else if (res == TABLE_FOUND) {
        char *end;
        long long v = strtoll(buf_cstr(&value), &end, 10);
        if (end != buf_cstr(&value) && *end == 0 && v >= 0 && v <= 600000)
            ms = v;
        else
            log_warn("access_maps: %s: bad GreetPause value \"%s\" (milliseconds expected)",
                     buf_cstr(&matched), buf_cstr(&value));
    }
    policy_keys_free(&keys);
    buf_free(&value);
    buf_free(&matched);
    return ms;
}
