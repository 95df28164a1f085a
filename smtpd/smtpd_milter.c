/*
 * smtpd_milter - smtpd_milters in a session (smtpd_milter.h).
 *
 * lib/milter calls a chain's done from the event loop, after it is done
 * with the step: the session goes on from there (the next pipelined
 * command may start the next step at once).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "attr.h"
#include "log.h"
#include "netaddr.h"
#include "qid.h"
#include "session.h"
#include "stats.h"
#include "smtpd_milter.h"
#include "smtpd_tls.h"
#include "tern_build.h"

/* the packet header milter_proto_* writes before the data: length, command */
#define SMTPD_MILTER_HEADER 5

struct smtpd_milter {
    struct milter_chain *chain;
    struct milter_facts facts;
    buf_t verdict; /* a connect or HELO refusal: the reply every MAIL gets */
    char queue_id[QID_LEN + 1];
    int tx_open; /* MAIL was sent and the transaction did not end: abort first */

    /* the step in progress */
    buf_t packet; /* the whole packet (lib/milter gets the data part) */
    const char *stage;
    buf_t to; /* RCPT: the recipient for the log */
    smtpd_milter_done_fn done;
    enum session_state resume_state;

    buf_t mail_args; /* the ESMTP arguments of MAIL and RCPT as given */
    buf_t rcpt_args;

    /* the conversations cleanup has (from DATA until its answer) */
    struct milter *exported[MILTER_MAX];
    size_t exported_count;
};

/* ---- replies and logs */

void smtpd_milter_reply(struct session *s, const char *reply)
{
    while (*reply != '\0') {
        const char *eol = strstr(reply, "\r\n");
        size_t n = eol != NULL ? (size_t)(eol - reply) : strlen(reply);

        session_reply(s, "%.*s", (int)n, reply);
        reply += n + (eol != NULL ? 2 : 0);
    }
}

/* smtpd_milter_log - "NOQUEUE: milter-reject: STAGE from ...": a
 * multi-line reply on one line */
static void smtpd_milter_log(struct session *s, const char *kind, const char *stage,
                             const char *reply, const char *to)
{
    buf_t text = BUF_INIT;

    for (const char *p = reply; *p != '\0'; p++)
        buf_putc(&text, *p == '\r' ? ' ' : *p == '\n' ? ' ' : *p);
    session_log_event(s, (int)strlen(kind), kind, stage, buf_cstr(&text), to);
    if (strcmp(kind, "milter-reject") == 0)
        stats_count_reject("milter");
    buf_free(&text);
}

/* ---- facts */

/* smtpd_milter_port - the port of an address, as text */
static void smtpd_milter_port(const struct sockaddr_storage *sa, char out[8])
{
    unsigned port = 0;

    if (sa->ss_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->ss_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    snprintf(out, 8, "%u", port);
}

/* smtpd_milter_connect_facts - what is known when the client's name is */
static void smtpd_milter_connect_facts(struct session *s, struct milter_facts *f)
{
    struct sockaddr_storage local;
    char daemon_addr[64] = "";
    char port[8];
    buf_t text = BUF_INIT;

    if (session_local_address(s, &local) == 0)
        netaddr_format((const struct sockaddr *)&local, daemon_addr, sizeof(daemon_addr));
    milter_facts_set(f, MILTER_FACT_J, s->cfg->myhostname);
    milter_facts_set(f, MILTER_FACT_DAEMON_NAME, s->cfg->listener);
    milter_facts_set(f, MILTER_FACT_DAEMON_ADDR, daemon_addr[0] ? daemon_addr : NULL);
    milter_facts_set(f, MILTER_FACT_IF_ADDR, daemon_addr[0] ? daemon_addr : NULL);
    milter_facts_set(f, MILTER_FACT_IF_NAME, s->cfg->myhostname);
    milter_facts_set(f, MILTER_FACT_V, "tern " TERN_VERSION);
    buf_printf(&text, "%s [%s]", s->client_name ? s->client_name : "unknown", s->ip);
    milter_facts_set(f, MILTER_FACT_UNDERSCORE, buf_cstr(&text));
    buf_free(&text);
    milter_facts_set(f, MILTER_FACT_CLIENT_ADDR, s->ip);
    milter_facts_set(f, MILTER_FACT_CLIENT_NAME, s->client_name ? s->client_name : "unknown");
    milter_facts_set(f, MILTER_FACT_CLIENT_PTR, s->reverse_name ? s->reverse_name : "unknown");
    smtpd_milter_port(&s->sa, port);
    milter_facts_set(f, MILTER_FACT_CLIENT_PORT, port);
}

/* smtpd_milter_session_facts - TLS and AUTH as they are now */
static void smtpd_milter_session_facts(struct session *s, struct milter_facts *f)
{
    char ssf[32];
    int bits = 0;

    if (s->tls_active && f->v[MILTER_FACT_TLS_VERSION] == NULL)
        smtpd_tls_milter_facts(s, f);
    if (f->v[MILTER_FACT_CIPHER_BITS] != NULL)
        bits = atoi(f->v[MILTER_FACT_CIPHER_BITS]);
    milter_facts_set(f, MILTER_FACT_AUTH_TYPE, s->sasl_method);
    milter_facts_set(f, MILTER_FACT_AUTH_AUTHEN, s->sasl_username);
    snprintf(ssf, sizeof(ssf), "%d", bits);
    milter_facts_set(f, MILTER_FACT_AUTH_SSF, s->sasl_username != NULL && bits > 0 ? ssf : NULL);
    milter_facts_set(f, MILTER_FACT_AUTH_AUTHOR,
                     s->sasl_username != NULL && s->mail.auth.len > 0 ? buf_cstr(&s->mail.auth)
                                                                      : NULL);
}

/* smtpd_milter_address_facts - {mail_*} or {rcpt_*} of an address */
static void smtpd_milter_address_facts(struct milter_facts *f, enum milter_fact addr_fact,
                                       enum milter_fact host_fact, enum milter_fact mailer_fact,
                                       const char *addr)
{
    milter_facts_set(f, addr_fact, addr);
    milter_facts_set(f, host_fact, addr[0] ? addr_domain(addr) : NULL);
    milter_facts_set(f, mailer_fact, "smtp");
}

/* ---- one step through the chain */

/* smtpd_milter_verdict - what the chain's answer means for the session:
 * 1 go on, 0 refused (answered) or closing */
static int smtpd_milter_verdict(struct session *s, enum milter_outcome outcome, const char *reply)
{
    struct smtpd_milter *m = s->milter;
    const char *stage = m->stage;
    const char *to = m->to.len > 0 ? buf_cstr(&m->to) : NULL;
    int session_wide = strcmp(stage, "CONNECT") == 0 || strcmp(stage, "HELO") == 0;

    switch (outcome) {
    case MILTER_SHUTDOWN:
        smtpd_milter_log(s, "milter-reject", stage, reply, to);
        if (!s->greeted) {
            session_refuse(s, reply);
            return 0;
        }
        smtpd_milter_reply(s, reply);
        session_close_after_flush(s);
        return 0;
    case MILTER_REJECT:
    case MILTER_TEMPFAIL:
        smtpd_milter_log(s, "milter-reject", stage, reply, to);
        if (session_wide) {
            buf_set(&m->verdict, reply);
            return 1;
        }
        smtpd_milter_reply(s, reply);
        return 0;
    case MILTER_DISCARD:
        smtpd_milter_log(s, "milter-discard", stage, "milter triggers DISCARD action", to);
        *(session_wide ? &s->conn_discard : &s->tx_discard) = 1;
        return 1;
    default:
        return 1;
    }
}

/* smtpd_milter_on_step - the chain answered: the session goes on */
static void smtpd_milter_on_step(void *arg, struct milter_chain *c, const struct milter_result *r)
{
    struct session *s = arg;
    struct smtpd_milter *m = s->milter;
    smtpd_milter_done_fn done = m->done;
    int ok;

    (void)c;
    m->done = NULL;
    if (s->state == SESSION_MILTER)
        s->state = m->resume_state;
    ok = smtpd_milter_verdict(s, r->outcome, buf_cstr(&r->reply));
    buf_reset(&m->to);
    if (s->state == SESSION_CLOSING)
        return;
    done(s, ok);
    if (s->state == SESSION_CMD || s->state == SESSION_AUTH ||
        (s->state == SESSION_DATA && !s->flow_paused))
        session_resume_input(s);
}

/* smtpd_milter_begin - the session's milters with an empty packet, or NULL
 * after done(s, 1) when there are none to ask */
static struct smtpd_milter *smtpd_milter_begin(struct session *s, smtpd_milter_done_fn done)
{
    if (s->milter == NULL || s->milter->chain == NULL) {
        done(s, 1);
        return NULL;
    }
    buf_reset(&s->milter->packet);
    return s->milter;
}

/* smtpd_milter_step - run the packet in m->packet through the chain (or go
 * on at once when there is nothing to ask).  Between BDAT chunks cleanup
 * has the sockets: a command then (an unknown one) goes on as if they said
 * continue, as no command comes during DATA */
static void smtpd_milter_step(struct session *s, const char *stage, int macro_stage,
                              smtpd_milter_done_fn done)
{
    struct smtpd_milter *m = s->milter;

    if (m->verdict.len > 0 || m->exported_count > 0 || s->state == SESSION_CLOSING) {
        done(s, 1);
        return;
    }
    smtpd_milter_session_facts(s, &m->facts);
    m->stage = stage;
    m->done = done;
    if (s->greeted) { /* before the greeting nothing is read anyway */
        m->resume_state = s->state;
        s->state = SESSION_MILTER;
        session_pause_input(s);
    }
    milter_chain_step(m->chain, macro_stage, m->packet.data[SMTPD_MILTER_HEADER - 1],
                      m->packet.data + SMTPD_MILTER_HEADER, m->packet.len - SMTPD_MILTER_HEADER,
                      smtpd_milter_on_step, s);
}

/* ---- connect */

/* smtpd_milter_connected - the connect step is done: the greeting may go */
static void smtpd_milter_connected(struct session *s, int ok)
{
    (void)ok;
    session_greet_release(s);
}

/* smtpd_milter_connect_step - every milter is open (or failed): connect */
static void smtpd_milter_connect_step(struct session *s)
{
    struct smtpd_milter *m = s->milter;
    char port[8];
    char family = strchr(s->ip, ':') != NULL ? SMFIA_INET6 : SMFIA_INET;

    if (s->sa.ss_family != AF_INET && s->sa.ss_family != AF_INET6)
        family = SMFIA_UNKNOWN;
    smtpd_milter_port(&s->sa, port);
    buf_reset(&m->packet);
    milter_proto_connect(&m->packet, s->client_name ? s->client_name : "unknown", family,
                         (uint16_t)atoi(port), s->ip);
    smtpd_milter_step(s, "CONNECT", SMFIM_CONNECT, smtpd_milter_connected);
}

/* smtpd_milter_on_open - the chain is open; a milter that could not be
 * reached with default_action tempfail or reject refuses the session's
 * mail (not the session) */
static void smtpd_milter_on_open(void *arg, struct milter_chain *c, const struct milter_result *r)
{
    struct session *s = arg;
    struct smtpd_milter *m = s->milter;

    (void)c;
    m->stage = "CONNECT";
    smtpd_milter_verdict(s, r->outcome, buf_cstr(&r->reply));
    if (s->state == SESSION_CLOSING)
        return;
    if (m->verdict.len > 0) { /* refused already: no connect step */
        session_greet_release(s);
        return;
    }
    smtpd_milter_connect_step(s);
}

void smtpd_milter_connect(struct session *s)
{
    struct smtpd_milter *m;

    if (s->cfg->milters.count == 0 || s->milter != NULL)
        return;
    m = xcalloc(1, sizeof(*m));
    s->milter = m;
    milter_facts_init(&m->facts);
    smtpd_milter_connect_facts(s, &m->facts);
    session_greet_hold(s);
    m->chain = milter_chain_open(s->server->svc.base, &s->cfg->milters, s->client,
                                 milter_facts_macro, &m->facts, smtpd_milter_on_open, s);
}

/* ---- SMTP commands */

void smtpd_milter_helo(struct session *s, smtpd_milter_done_fn done)
{
    struct smtpd_milter *m = smtpd_milter_begin(s, done);

    if (m == NULL)
        return;
    milter_proto_helo(&m->packet, buf_cstr(&s->helo));
    smtpd_milter_step(s, "HELO", SMFIM_HELO, done);
}

/* smtpd_milter_args - split the arguments as given into a NULL-free vector
 * of strings pointing into copy */
static size_t smtpd_milter_args(const buf_t *given, buf_t *copy, const char ***argv)
{
    size_t n = 0;
    char *p;

    buf_set(copy, buf_cstr(given));
    *argv = xcalloc(copy->len / 2 + 1, sizeof(**argv));
    p = copy->data;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (*p == '\0')
            break;
        (*argv)[n++] = p;
        p += strcspn(p, " \t");
    }
    return n;
}

/* smtpd_milter_keep_args - the parameters after the path, or none */
static void smtpd_milter_keep_args(buf_t *out, const char *arg, const char *keyword)
{
    const char *args = proto_path_args(arg, keyword);

    buf_set(out, args != NULL ? args : "");
}

void smtpd_milter_mail_args(struct session *s, const char *arg)
{
    if (s->milter != NULL)
        smtpd_milter_keep_args(&s->milter->mail_args, arg, "FROM:");
}

void smtpd_milter_rcpt_args(struct session *s, const char *arg)
{
    if (s->milter != NULL)
        smtpd_milter_keep_args(&s->milter->rcpt_args, arg, "TO:");
}

/* smtpd_milter_envelope_packet - SMFIC_MAIL or SMFIC_RCPT: "<addr>" and args */
static void smtpd_milter_envelope_packet(struct smtpd_milter *m, int rcpt, const char *addr,
                                         const buf_t *args)
{
    buf_t path = BUF_INIT, copy = BUF_INIT;
    const char **argv = NULL;
    size_t n = smtpd_milter_args(args, &copy, &argv);

    buf_printf(&path, "<%s>", addr);
    if (rcpt)
        milter_proto_rcpt(&m->packet, buf_cstr(&path), argv, n);
    else
        milter_proto_mail(&m->packet, buf_cstr(&path), argv, n);
    free(argv);
    buf_free(&copy);
    buf_free(&path);
}

void smtpd_milter_mail(struct session *s, smtpd_milter_done_fn done)
{
    struct smtpd_milter *m = smtpd_milter_begin(s, done);
    const char *sender = buf_cstr(&s->mail.addr);

    if (m == NULL)
        return;
    if (m->verdict.len > 0) {
        smtpd_milter_log(s, "milter-reject", "MAIL", buf_cstr(&m->verdict), NULL);
        smtpd_milter_reply(s, buf_cstr(&m->verdict));
        done(s, 0);
        return;
    }
    smtpd_milter_abort(s);
    qid_new(m->queue_id);
    milter_facts_set(&m->facts, MILTER_FACT_QUEUE_ID, m->queue_id);
    smtpd_milter_address_facts(&m->facts, MILTER_FACT_MAIL_ADDR, MILTER_FACT_MAIL_HOST,
                               MILTER_FACT_MAIL_MAILER, sender);
    smtpd_milter_envelope_packet(m, 0, sender, &m->mail_args);
    m->tx_open = 1;
    smtpd_milter_step(s, "MAIL", SMFIM_ENVFROM, done);
}

void smtpd_milter_rcpt(struct session *s, smtpd_milter_done_fn done)
{
    struct smtpd_milter *m = smtpd_milter_begin(s, done);
    const char *rcpt = buf_cstr(&s->rcpt.addr);

    if (m == NULL)
        return;
    smtpd_milter_address_facts(&m->facts, MILTER_FACT_RCPT_ADDR, MILTER_FACT_RCPT_HOST,
                               MILTER_FACT_RCPT_MAILER, rcpt);
    smtpd_milter_envelope_packet(m, 1, rcpt, &m->rcpt_args);
    buf_set(&m->to, rcpt);
    smtpd_milter_step(s, "RCPT", SMFIM_ENVRCPT, done);
}

void smtpd_milter_data(struct session *s, smtpd_milter_done_fn done)
{
    struct smtpd_milter *m = smtpd_milter_begin(s, done);

    if (m == NULL)
        return;
    milter_proto_data(&m->packet);
    smtpd_milter_step(s, "DATA", SMFIM_DATA, done);
}

void smtpd_milter_unknown(struct session *s, const char *line, size_t len,
                          smtpd_milter_done_fn done)
{
    struct smtpd_milter *m = smtpd_milter_begin(s, done);
    char *copy;

    if (m == NULL)
        return;
    copy = xstrndup(line, len);
    milter_proto_unknown(&m->packet, copy);
    free(copy);
    smtpd_milter_step(s, "UNKNOWN", MILTER_STAGE_UNKNOWN, done);
}

void smtpd_milter_abort(struct session *s)
{
    struct smtpd_milter *m = s->milter;

    if (m == NULL || !m->tx_open || m->chain == NULL || m->exported_count > 0)
        return;
    milter_chain_abort(m->chain);
    m->tx_open = 0;
}

void smtpd_milter_end(struct session *s)
{
    struct smtpd_milter *m = s->milter;

    if (m == NULL)
        return;
    if (m->chain != NULL && m->exported_count > 0) /* cleanup has the sockets */
        milter_chain_close_silent(m->chain);
    else if (m->chain != NULL)
        milter_chain_close(m->chain);
    milter_facts_free(&m->facts);
    buf_free(&m->verdict);
    buf_free(&m->packet);
    buf_free(&m->to);
    buf_free(&m->mail_args);
    buf_free(&m->rcpt_args);
    free(m);
    s->milter = NULL;
}

/* ---- the message: the sockets travel to cleanup and back */

const char *smtpd_milter_queue_id(const struct session *s)
{
    return s->milter != NULL && s->milter->queue_id[0] ? s->milter->queue_id : NULL;
}

const char *smtpd_milter_quarantine(const struct session *s)
{
    return s->milter != NULL && s->milter->chain != NULL ? milter_chain_quarantine(s->milter->chain)
                                                         : NULL;
}

size_t smtpd_milter_export(struct session *s, buf_t *submit, int *fds, long long *timeout)
{
    struct smtpd_milter *m = s->milter;
    size_t count;

    *timeout = 0;
    if (m == NULL || m->chain == NULL)
        return 0;
    smtpd_milter_session_facts(s, &m->facts);
    count = milter_chain_count(m->chain);
    m->exported_count = 0;
    for (size_t i = 0; i < count && m->exported_count < MILTER_MAX; i++) {
        struct milter *one = milter_chain_get(m->chain, i);
        const struct milter_spec *spec = milter_spec_of(one);
        int fd = milter_export(one, submit);

        if (fd < 0)
            continue;
        fds[m->exported_count] = fd;
        m->exported[m->exported_count++] = one;
        *timeout += spec->content_timeout + spec->command_timeout;
    }
    milter_facts_export(&m->facts, submit);
    return m->exported_count;
}

/* smtpd_milter_failed_in - cleanup's milter_failed attributes: failed[k]
 * set for the k-th exported conversation */
static void smtpd_milter_failed_in(const struct attr_msg *msg, size_t count, int *failed)
{
    for (size_t i = 0; i < msg->count; i++) {
        char *end;
        unsigned long k;

        if (strcmp(msg->v[i].name, "milter_failed") != 0)
            continue;
        k = strtoul(msg->v[i].value, &end, 10);
        if (end != msg->v[i].value && *end == '\0' && k < count)
            failed[k] = 1;
        else
            log_warn("cleanup sent a bad milter_failed attribute: ignored");
    }
}

/* smtpd_milter_end_unexported - the transaction ended in cleanup: the
 * milters that stayed behind (they accepted it at MAIL, RCPT or DATA) get
 * SMFIC_ABORT, which also ends their accept, so they see the next one */
static void smtpd_milter_end_unexported(struct smtpd_milter *m)
{
    for (size_t i = 0; i < milter_chain_count(m->chain); i++) {
        struct milter *one = milter_chain_get(m->chain, i);
        size_t k = 0;

        while (k < m->exported_count && m->exported[k] != one)
            k++;
        if (k == m->exported_count)
            milter_abort(one);
    }
}

void smtpd_milter_cleanup_done(struct session *s, const struct attr_msg *msg, int ended)
{
    struct smtpd_milter *m = s->milter;
    int failed[MILTER_MAX] = {0};

    if (m == NULL || m->exported_count == 0)
        return;
    if (msg != NULL)
        smtpd_milter_failed_in(msg, m->exported_count, failed);
    if (ended && msg != NULL) { /* the end of message finished the transaction */
        smtpd_milter_end_unexported(m);
        m->tx_open = 0;
    }
    for (size_t k = 0; k < m->exported_count; k++)
        milter_resume(m->exported[k], failed[k] || (msg == NULL && ended));
    m->exported_count = 0;
}
