/*
 * etrn - ETRN for tern-smtpd (etrn.h): the checks, smtpd_etrn_restrictions,
 * and the one request to tern-qmgr per command.
 *
 * Replies (RFC 1985 and sendmail's / Postfix's texts):
 *   250 2.0.0 Queuing for node <d> started          deferred mail was taken
 *   251 2.0.0 OK, no messages waiting for node <d>  none was deferred
 *   458 4.3.0 Unable to queue messages for node <d> qmgr unreachable, slow
 *                                                   or stopping
 *   458 4.7.1 ... (repeated too soon)               etrn_min_interval
 *   459 4.3.0 Node #q not allowed: ...              no named queues
 *   501 5.5.4 Syntax: ...                           lib/smtp_ext.h
 *   502 5.7.0 Sorry, we do not allow this operation smtpd_disable_etrn_command
 *                                                   or noetrn
 *   503 5.5.1 ...                                   before HELO/EHLO, in MAIL
 *   554 5.7.1 <name[ip]>: Client host rejected: ... smtpd_etrn_restrictions
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "etrn.h"
#include "log.h"
#include "service.h"
#include "session.h"
#include "smtp_ext.h"
#include "smtpd_policy.h"

/* a reply of qmgr is a few attributes */
#define SMTPD_ETRN_REPLY_MAX 4096

/* one ETRN in progress (s->etrn_state) */
struct smtpd_etrn {
    enum smtp_ext_etrn_form form;
    buf_t name; /* the domain (lower case) or the queue */
    buf_t node; /* the node as replies show it: "d", "@d" or "#q" */
    struct bufferevent *bev;
};

int smtpd_etrn_offered(const struct session *s)
{
    return !s->cfg->disable_etrn;
}

/* smtpd_etrn_free - forget the request (the connection to qmgr too) */
static void smtpd_etrn_free(struct session *s)
{
    struct smtpd_etrn *e = s->etrn_state;

    if (e == NULL)
        return;
    if (e->bev != NULL)
        bufferevent_free(e->bev);
    buf_free(&e->name);
    buf_free(&e->node);
    free(e);
    s->etrn_state = NULL;
}

void smtpd_etrn_session_end(struct session *s)
{
    smtpd_etrn_free(s);
}

/* smtpd_etrn_finish - the answer is known: reply; a session that waited
 * for qmgr reads the client again */
static void smtpd_etrn_finish(struct session *s, const char *reply)
{
    struct smtpd_etrn *e = s->etrn_state;
    int waited = s->state == SESSION_ETRN_WAIT;

    log_info("%s: ETRN %s: %s", s->client, buf_cstr(&e->node), reply);
    smtpd_etrn_free(s);
    if (waited)
        s->state = SESSION_CMD;
    session_reply(s, "%s", reply);
    if (waited)
        session_resume_input(s);
}

/* smtpd_etrn_fail - qmgr did not answer as it should: 458 */
static void smtpd_etrn_fail(struct session *s, const char *why)
{
    struct smtpd_etrn *e = s->etrn_state;
    buf_t reply = BUF_INIT;

    log_warn("ETRN: tern-qmgr (private/qmgr): %s", why);
    buf_printf(&reply, "458 4.3.0 Unable to queue messages for node %s", buf_cstr(&e->node));
    smtpd_etrn_finish(s, buf_cstr(&reply));
    buf_free(&reply);
}

/* smtpd_etrn_answer - qmgr's reply into the SMTP reply */
static void smtpd_etrn_answer(struct session *s, const struct attr_msg *m)
{
    struct smtpd_etrn *e = s->etrn_state;
    const char *status = attr_get(m, "status", NULL);
    const char *count = attr_get(m, "count", NULL);
    const char *node = buf_cstr(&e->node);
    buf_t reply = BUF_INIT;

    if (strcmp(attr_proto(m), "qmgr.reply") != 0 || status == NULL)
        status = "error";
    if (strcmp(status, "ok") == 0 && count != NULL && strcmp(count, "0") == 0)
        buf_printf(&reply, "251 2.0.0 OK, no messages waiting for node %s", node);
    else if (strcmp(status, "ok") == 0)
        buf_printf(&reply, "250 2.0.0 Queuing for node %s started", node);
    else if (strcmp(status, "busy") == 0)
        buf_printf(&reply,
                   "458 4.7.1 Unable to queue messages for node %s: ETRN repeated too soon, "
                   "try again later",
                   node);
    else if (strcmp(status, "building") == 0)
        buf_printf(&reply,
                   "458 4.3.0 Unable to queue messages for node %s: the queue index is being "
                   "built, try again later",
                   node);
    else
        buf_printf(&reply, "458 4.3.0 Unable to queue messages for node %s", node);
    smtpd_etrn_finish(s, buf_cstr(&reply));
    buf_free(&reply);
}

/* smtpd_etrn_read_cb - qmgr's reply, once whole */
static void smtpd_etrn_read_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used = 0;
    struct attr_msg m;
    int rc;

    attr_msg_init(&m);
    rc = attr_decode((const char *)evbuffer_pullup(in, -1), len, &used, &m);
    if (rc == 1)
        smtpd_etrn_answer(s, &m);
    else if (rc < 0 || len > SMTPD_ETRN_REPLY_MAX)
        smtpd_etrn_fail(s, "malformed reply");
    attr_msg_free(&m);
}

/* smtpd_etrn_event_cb - qmgr closed, failed or did not answer in time */
static void smtpd_etrn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    smtpd_etrn_fail(arg, what & BEV_EVENT_TIMEOUT ? "no answer in time"
                         : what & BEV_EVENT_EOF   ? "closed the connection"
                                                  : "connection error");
}

/* smtpd_etrn_ask - send qmgr.etrn; 0 when the answer will come, -1 not */
static int smtpd_etrn_ask(struct session *s, struct smtpd_etrn *e)
{
    struct timeval timeout = {SMTPD_ETRN_TIMEOUT, 0};
    buf_t req = BUF_INIT;
    int fd = unix_connect("private/qmgr", 1);

    if (fd < 0)
        return -1;
    e->bev = bufferevent_socket_new(s->server->svc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (e->bev == NULL) {
        close(fd);
        return -1;
    }
    attr_begin(&req, "qmgr.etrn");
    attr_add_str(&req, "domain", buf_cstr(&e->name));
    if (e->form == SMTP_EXT_ETRN_SUBDOMAINS)
        attr_add_str(&req, "subdomains", "yes");
    attr_end(&req);
    bufferevent_setcb(e->bev, smtpd_etrn_read_cb, NULL, smtpd_etrn_event_cb, s);
    bufferevent_set_timeouts(e->bev, &timeout, &timeout);
    bufferevent_write(e->bev, req.data, req.len);
    bufferevent_enable(e->bev, EV_READ | EV_WRITE);
    buf_free(&req);
    return 0;
}

/* smtpd_etrn_verdict - smtpd_etrn_restrictions said their word */
static void smtpd_etrn_verdict(struct session *s, struct policy_result *r)
{
    struct smtpd_etrn *e = s->etrn_state;
    buf_t reply = BUF_INIT;

    if (r->verdict == POLICY_REJECT || r->verdict == POLICY_DEFER) {
        smtpd_policy_log_reject(s, "ETRN", r, NULL);
        smtpd_etrn_free(s);
        session_reply(s, "%s", buf_cstr(&r->reply));
        return;
    }
    if (e->form == SMTP_EXT_ETRN_QUEUE) {
        buf_printf(&reply, "459 4.3.0 Node %s not allowed: named queues are not supported",
                   buf_cstr(&e->node));
    } else if (smtpd_etrn_ask(s, e) == 0) {
        s->state = SESSION_ETRN_WAIT;
        session_pause_input(s);
        return;
    } else {
        smtpd_etrn_fail(s, "cannot connect");
        return;
    }
    smtpd_etrn_finish(s, buf_cstr(&reply));
    buf_free(&reply);
}

/* smtpd_etrn_refused - a reply before the restrictions; 1 when it replied */
static int smtpd_etrn_refused(struct session *s)
{
    if (!smtpd_etrn_offered(s))
        session_reply(s, "502 5.7.0 Sorry, we do not allow this operation");
    else if (!s->seen_helo)
        session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
    else if (s->have_mail)
        session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
    else
        return 0;
    return 1;
}

void smtpd_etrn_command(struct session *s, const char *arg)
{
    struct smtpd_etrn *e;
    buf_t reply = BUF_INIT;
    static const char prefix[] = {
        [SMTP_EXT_ETRN_DOMAIN] = 0, [SMTP_EXT_ETRN_SUBDOMAINS] = '@', [SMTP_EXT_ETRN_QUEUE] = '#'};

    if (smtpd_etrn_refused(s))
        return;
    smtpd_etrn_free(s); /* none can be left, but never leak one */
    e = s->etrn_state = xcalloc(1, sizeof(*e));
    buf_init(&e->name);
    buf_init(&e->node);
    if (smtp_ext_etrn_parse(arg, &e->form, &e->name, &reply) < 0) {
        session_reply(s, "%s", buf_cstr(&reply));
        smtpd_etrn_free(s);
    } else {
        if (prefix[e->form] != 0)
            buf_putc(&e->node, prefix[e->form]);
        buf_puts(&e->node, buf_cstr(&e->name));
        smtpd_policy_run(s, POLICY_ETRN, smtpd_etrn_verdict);
    }
    buf_free(&reply);
}
