/*
 * smtpd_policy - restrictions on smtpd's event loop (smtpd_policy.h).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "dns_cache.h"
#include "greet.h"
#include "log.h"
#include "policy_client.h"
#include "session.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"
#include "smtpd_tables.h"
#include "smtpd_tls.h"

/* PREPEND header lines kept for one message (bytes) */
#define SMTPD_POLICY_PREPEND_MAX (16 * 1024)

/* one outside lookup in flight for a session */
struct smtpd_policy_wait {
    struct session *s;
    struct policy_need *need;
    struct smtpd_dns_waiter *dns; /* a DNS question (dns_cache.h) */
    struct smtpd_policy_query *query;
    struct event *timer;
    struct smtpd_policy_wait *next;
};

/* the stage being evaluated */
struct smtpd_policy_stage {
    enum policy_stage stage;
    smtpd_policy_done_fn done;
    struct policy_result result;
};

void smtpd_policy_server_init(struct smtpd_server *server, const struct config *cfg)
{
    size_t count = 0;
    char *const *servers = config_list(cfg, "dns_servers", &count);
    buf_t err = BUF_INIT;

    server->dns =
        dns_create(server->svc.base, count ? servers : NULL, config_time(cfg, "dns_timeout"), &err);
    if (server->dns == NULL)
        log_fatal("%s: dns_servers: %s", config_origin(cfg, "dns_servers"), buf_cstr(&err));
    buf_free(&err);
    server->dns_cache = smtpd_dns_cache_new(server->dns);
    server->policy_clients =
        smtpd_policy_clients_new(server->svc.base, config_time(cfg, "smtpd_policy_service_timeout"),
                                 config_time(cfg, "smtpd_policy_service_max_idle"),
                                 config_time(cfg, "smtpd_policy_service_max_ttl"));
}

void smtpd_policy_server_free(struct smtpd_server *server)
{
    smtpd_dns_cache_free(server->dns_cache);
    server->dns_cache = NULL;
    dns_free(server->dns);
    server->dns = NULL;
    smtpd_policy_clients_free(server->policy_clients);
    server->policy_clients = NULL;
}

void smtpd_policy_facts(const struct session *s, struct policy_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->addr = (const struct sockaddr *)&s->sa;
    f->ip = s->ip;
    f->name = s->client_name ? s->client_name : "unknown";
    f->reverse_name = s->reverse_name ? s->reverse_name : "unknown";
    f->name_status = s->name_status;
    f->reverse_status = s->reverse_status;
    f->listener = s->cfg->listener;
    f->protocol = session_protocol(s);
    f->helo = s->seen_helo ? buf_cstr(&s->helo) : NULL;
    f->sender = s->have_mail || s->mail.echo.len ? buf_cstr(&s->mail.addr) : NULL;
    f->sender_echo = f->sender ? buf_cstr(&s->mail.echo) : NULL;
    f->sasl_method = s->sasl_method;
    f->sasl_username = s->sasl_username;
    f->tls = s->tls_active;
    f->ccert_fingerprint = s->tls_ccert_fp[0] ? s->tls_ccert_fp : NULL;
    f->ccert_verified = POLICY_CCERT_NO; /* a lookup: smtpd_policy_stage_facts */
    f->size = s->mail.size;
    f->rcpt_count = s->rcpt_count;
    f->in_mynetworks = s->in_mynetworks;
    f->pipelined = s->pipelined;
    for (int i = 0; i < PROTO_CMD_COUNT; i++)
        f->command_seq += s->cmd_total[i];
}

/* ---- the stage being evaluated */

static int smtpd_policy_start_needs(struct session *s);

/* smtpd_policy_stage_facts - the facts of the stage being evaluated (in
 * the session's scope: relay_clientcerts may be remote) */
static void smtpd_policy_stage_facts(struct session *s, struct policy_facts *f)
{
    const struct smtpd_policy_stage *st = s->policy_stage;

    smtpd_policy_facts(s, f);
    f->ccert_verified = smtpd_tls_clientcert_status(s);
    if (st->stage == POLICY_RCPT || st->stage == POLICY_MAIL) {
        f->recipient = st->stage == POLICY_RCPT ? buf_cstr(&s->rcpt.addr) : NULL;
        f->echo = st->stage == POLICY_RCPT ? buf_cstr(&s->rcpt.echo) : buf_cstr(&s->mail.echo);
    }
    if (st->stage == POLICY_EOD)
        f->size = s->data_size;
}

/* smtpd_policy_evaluate - run the stage; 1 when it is decided (done called) */
static int smtpd_policy_evaluate(struct session *s)
{
    struct smtpd_policy_stage *st = s->policy_stage;
    struct policy_facts f;
    enum policy_verdict v;
    smtpd_policy_done_fn done;
    int was_waiting = s->state == SESSION_POLICY;
    int tables;

    /* again while the worker's DNS cache answers what the stage asks; a
     * remote table's answer not in yet voids the verdict (smtpd_tables.h) */
    do {
        smtpd_tables_enter(s);
        smtpd_policy_stage_facts(s, &f);
        v = policy_check(s->cfg->policy, st->stage, &f, s->policy_cache, &st->result);
        tables = smtpd_tables_leave(s, SMTPD_TABLES_POLICY);
    } while (v == POLICY_WAIT && s->state != SESSION_CLOSING && smtpd_policy_start_needs(s) > 0);
    if (tables)
        v = POLICY_WAIT;
    if (v == POLICY_WAIT && s->state == SESSION_CLOSING) {
        smtpd_policy_cancel(s);
        return 1;
    }
    if (v == POLICY_WAIT) {
        if (!was_waiting) {
            s->policy_resume_state = s->state;
            s->state = SESSION_POLICY;
            session_pause_input(s);
        }
        return 0;
    }
    done = st->done;
    s->policy_stage = NULL;
    if (was_waiting)
        s->state = s->policy_resume_state;
    done(s, &st->result);
    policy_result_free(&st->result);
    free(st);
    if (was_waiting && (s->state == SESSION_CMD || s->state == SESSION_AUTH ||
                        (s->state == SESSION_DATA && !s->flow_paused)))
        session_resume_input(s);
    return 1;
}

void smtpd_policy_run(struct session *s, enum policy_stage stage, smtpd_policy_done_fn done)
{
    struct smtpd_policy_stage *st;

    if (s->state == SESSION_CLOSING)
        return;                  /* nobody waits for the answer any more */
    if (s->policy_stage != NULL) /* an end-of-data stage that cleanup overtook */
        smtpd_policy_cancel(s);
    st = xcalloc(1, sizeof(*st));

    if (s->policy_cache == NULL)
        s->policy_cache = policy_cache_new();
    st->stage = stage;
    st->done = done;
    policy_result_init(&st->result);
    s->policy_stage = st;
    smtpd_policy_evaluate(s);
}

void smtpd_policy_tables_answered(struct session *s)
{
    if (s->policy_stage != NULL && s->state == SESSION_POLICY)
        smtpd_policy_evaluate(s);
}

/* ---- outside lookups */

/* smtpd_policy_wait_done - an answer arrived: store it, and evaluate again
 * when a stage waits */
static void smtpd_policy_wait_done(struct smtpd_policy_wait *w, int status, const char *value)
{
    struct session *s = w->s;
    struct smtpd_policy_wait **pp = &s->policy_waits;

    while (*pp != NULL && *pp != w)
        pp = &(*pp)->next;
    if (*pp == w)
        *pp = w->next;
    policy_cache_put(s->policy_cache, w->need->key, status, value);
    if (w->timer != NULL)
        event_free(w->timer);
    policy_need_free(w->need);
    free(w);
    if (s->policy_stage != NULL && s->state == SESSION_POLICY)
        smtpd_policy_evaluate(s);
}

/* smtpd_policy_on_dns - a DNS list, TXT, MX or domain answer */
static void smtpd_policy_on_dns(void *ctx, int status, const char *value)
{
    struct smtpd_policy_wait *w = ctx;

    w->dns = NULL;
    smtpd_policy_wait_done(w, status, value);
}

/* smtpd_policy_on_timer - a sleep ended */
static void smtpd_policy_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpd_policy_wait_done(arg, 0, "");
}

/* smtpd_policy_on_service - a policy service's action (or its failure) */
static void smtpd_policy_on_service(void *ctx, int status, const char *action)
{
    struct smtpd_policy_wait *w = ctx;

    w->query = NULL;
    smtpd_policy_wait_done(w, status < 0 ? -1 : 0, action);
}

/* smtpd_policy_start_needs - start every pending request; returns how many
 * were answered at once (from the worker's DNS cache) */
static int smtpd_policy_start_needs(struct session *s)
{
    struct policy_need *n = policy_cache_take(s->policy_cache);
    int answered = 0;

    while (n != NULL) {
        struct policy_need *next = n->next;
        struct smtpd_policy_wait *w;
        struct timeval tv = {0, 0};
        int status;
        const char *value;

        n->next = NULL;
        if (n->kind != POLICY_NEED_SERVICE && n->kind != POLICY_NEED_SLEEP) {
            struct smtpd_dns_waiter *waiter = NULL;
            w = xcalloc(1, sizeof(*w));
            if (smtpd_dns_cache_ask(s->server->dns_cache, n->kind, n->key, n->target,
                                    smtpd_policy_on_dns, w, &status, &value, &waiter)) {
                policy_cache_put(s->policy_cache, n->key, status, value);
                policy_need_free(n);
                free(w);
                answered++;
                n = next;
                continue;
            }
            w->dns = waiter;
        } else {
            w = xcalloc(1, sizeof(*w));
        }
        w->s = s;
        w->need = n;
        w->next = s->policy_waits;
        s->policy_waits = w;
        switch (n->kind) {
        case POLICY_NEED_SLEEP:
            tv.tv_sec = (time_t)n->seconds;
            w->timer = evtimer_new(s->server->svc.base, smtpd_policy_on_timer, w);
            evtimer_add(w->timer, &tv);
            break;
        case POLICY_NEED_SERVICE:
            w->query = smtpd_policy_client_ask(s->server->policy_clients, n->target, &n->request,
                                               smtpd_policy_on_service, w);
            break;
        default:
            break;
        }
        n = next;
    }
    return answered;
}

/* ---- the client's name */

/* smtpd_policy_set_client - "name[ip]" for the logs */
static void smtpd_policy_set_client(struct session *s)
{
    snprintf(s->client, sizeof(s->client), "%s[%s]", s->client_name ? s->client_name : "unknown",
             s->ip);
}

/* smtpd_policy_client_verdict - smtpd_delay_reject = no: the client
 * restrictions at connect; a refusal answers the commands that follow */
static void smtpd_policy_client_verdict(struct session *s, struct policy_result *r)
{
    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        buf_set(&s->client_verdict, buf_cstr(&r->reply));
        smtpd_policy_log_reject(s, "CONNECT", r, NULL);
    }
    smtpd_policy_keep(s, r, "CONNECT", NULL);
    session_greet_release(s);
}

/* smtpd_policy_named - the name is known: log the connection, start the DNS
 * lists, check the client */
void smtpd_policy_named(struct session *s)
{
    struct policy_facts f;

    if (s->state == SESSION_CLOSING) /* refused meanwhile (connection limits) */
        return;
    smtpd_policy_set_client(s);
    if (strcmp(s->cfg->listener, "smtpd") == 0)
        log_info("connect from %s", s->client);
    else
        log_info("connect from %s to listener %s", s->client, s->cfg->listener);
    if (!s->cfg->tls_wrapper) /* SMTPS: the handshake comes first */
        smtpd_greet_start(s);
    smtpd_milter_connect(s);
    if (s->policy_cache == NULL)
        s->policy_cache = policy_cache_new();
    smtpd_policy_facts(s, &f);
    if (!s->in_mynetworks && policy_prefetch(s->cfg->policy, &f, s->policy_cache))
        smtpd_policy_start_needs(s);
    if (!policy_delay_reject(s->cfg->policy)) {
        session_greet_hold(s);
        smtpd_policy_run(s, POLICY_CONNECT, smtpd_policy_client_verdict);
    }
}

/* smtpd_policy_on_name - the reverse DNS answer */
static void smtpd_policy_on_name(struct dns_client_name *cn, void *arg)
{
    struct session *s = arg;

    s->rdns = NULL;
    s->name_status = cn->status == DNS_OK ? 0 : cn->status == DNS_NOTFOUND ? 1 : -1;
    s->reverse_status = cn->reverse_status == DNS_OK         ? 0
                        : cn->reverse_status == DNS_NOTFOUND ? 1
                                                             : -1;
    free(s->client_name);
    free(s->reverse_name);
    s->client_name = xstrdup(cn->name ? cn->name : "unknown");
    s->reverse_name = xstrdup(cn->reverse_name ? cn->reverse_name : "unknown");
    dns_client_name_free(cn);
    smtpd_policy_named(s);
    session_greet_release(s);
}

void smtpd_policy_connect(struct session *s)
{
    s->client_name = xstrdup("unknown");
    s->reverse_name = xstrdup("unknown");
    s->name_status = s->reverse_status = 1;
    smtpd_policy_set_client(s);
    if (!s->cfg->peername_lookup) {
        smtpd_policy_named(s);
        return;
    }
    session_greet_hold(s);
    s->rdns =
        dns_client_name(s->server->dns, (const struct sockaddr *)&s->sa, smtpd_policy_on_name, s);
}

void smtpd_policy_cancel(struct session *s)
{
    if (s->policy_stage == NULL)
        return;
    if (s->state == SESSION_POLICY)
        s->state = s->policy_resume_state;
    policy_result_free(&s->policy_stage->result);
    free(s->policy_stage);
    s->policy_stage = NULL;
}

void smtpd_policy_end(struct session *s)
{
    dns_cancel(s->rdns);
    s->rdns = NULL;
    while (s->policy_waits != NULL) {
        struct smtpd_policy_wait *w = s->policy_waits;
        s->policy_waits = w->next;
        smtpd_dns_cache_forget(w->dns);
        smtpd_policy_client_cancel(w->query);
        if (w->timer != NULL)
            event_free(w->timer);
        policy_need_free(w->need);
        free(w);
    }
    if (s->policy_stage != NULL) {
        policy_result_free(&s->policy_stage->result);
        free(s->policy_stage);
        s->policy_stage = NULL;
    }
    policy_cache_free(s->policy_cache);
    s->policy_cache = NULL;
    free(s->client_name);
    free(s->reverse_name);
    s->client_name = s->reverse_name = NULL;
}

/* ---- verdicts */

void smtpd_policy_log_reject(struct session *s, const char *stage, const struct policy_result *r,
                             const char *to)
{
    session_log_reject_by(s, stage, buf_cstr(&r->reply), to, buf_cstr(&r->log));
    if (strncmp(buf_cstr(&r->log), "access ", 7) == 0 ||
        strcmp(buf_cstr(&r->log), "accept_unresolvable_domains") == 0) {
        buf_t arg = BUF_INIT;
        const char *ruleset = to != NULL                   ? "check_rcpt"
                              : strcmp(stage, "MAIL") == 0 ? "check_mail"
                                                           : "check_relay";
        proto_printable(to                  ? to
                        : s->mail.addr.data ? buf_cstr(&s->mail.addr)
                                            : s->ip,
                        to                 ? strlen(to)
                        : s->mail.addr.len ? s->mail.addr.len
                                           : strlen(s->ip),
                        ADDR_LOG_MAX, &arg);
        log_info("ruleset=%s, arg1=<%s>, relay=%s [%s], reject=%s", ruleset, buf_cstr(&arg),
                 s->client_name && strcmp(s->client_name, "unknown") ? s->client_name : "", s->ip,
                 buf_cstr(&r->reply));
        buf_free(&arg);
    }
}

void smtpd_policy_keep(struct session *s, const struct policy_result *r, const char *stage,
                       const char *to)
{
    const char *p = buf_cstr(&r->warnings);
    int session_wide = strcmp(stage, "CONNECT") == 0 || strcmp(stage, "HELO") == 0;
    buf_t *prepend = session_wide ? &s->conn_prepend : &s->tx_prepend;

    while (*p) { /* "NOQUEUE: warn: RCPT from host[ip]: text; from=<> to=<> ..." */
        size_t n = strcspn(p, "\n");
        const char *tab = memchr(p, '\t', n);
        buf_t line = BUF_INIT;
        if (tab != NULL) {
            buf_printf(&line, "%.*s", (int)(n - (size_t)(tab + 1 - p)), tab + 1);
            session_log_event(s, (int)(tab - p), p, stage, buf_cstr(&line), to);
        }
        buf_free(&line);
        p += n + (p[n] == '\n');
    }

    if (r->discard)
        *(session_wide ? &s->conn_discard : &s->tx_discard) = 1;
    if (r->hold) {
        *(session_wide ? &s->conn_hold : &s->tx_hold) = 1;
        buf_set(session_wide ? &s->conn_hold_reason : &s->tx_hold_reason,
                buf_cstr(&r->hold_reason));
    }
    /* the delayed lists run again at every RCPT: each header line once */
    for (const char *line = buf_cstr(&r->prepend); *line;) {
        size_t n = strcspn(line, "\n");
        buf_t one = BUF_INIT;
        buf_printf(&one, "%.*s\n", (int)n, line);
        if (strstr(buf_cstr(prepend), buf_cstr(&one)) == NULL &&
            prepend->len + one.len <= SMTPD_POLICY_PREPEND_MAX)
            buf_append(prepend, one.data, one.len);
        buf_free(&one);
        line += n + (line[n] == '\n');
    }
    if (r->redirect.len)
        buf_set(session_wide ? &s->conn_redirect : &s->tx_redirect, buf_cstr(&r->redirect));
}

void smtpd_policy_merge(struct session *s)
{
    if (s->conn_discard)
        s->tx_discard = 1;
    if (s->conn_hold && !s->tx_hold) {
        s->tx_hold = 1;
        buf_set(&s->tx_hold_reason, buf_cstr(&s->conn_hold_reason));
    }
    if (s->conn_prepend.len > 0) {
        buf_t all = BUF_INIT;
        buf_append(&all, s->conn_prepend.data, s->conn_prepend.len);
        buf_append(&all, s->tx_prepend.data, s->tx_prepend.len);
        buf_set(&s->tx_prepend, buf_cstr(&all));
        buf_free(&all);
    }
    if (s->conn_redirect.len > 0 && s->tx_redirect.len == 0)
        buf_set(&s->tx_redirect, buf_cstr(&s->conn_redirect));
}
