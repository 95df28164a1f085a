/*
 * tern-qmgr - the queue manager: exactly one runs (docs/queue.md).
 *
 * master execs `tern-qmgr -c DIR` with private/qmgr as fd 3, public/qmgr as
 * fd 4 and the queue directory as cwd.  This file holds start-up, the
 * sockets (private/qmgr: qmgr.trigger, qmgr.flush, qmgr.control; public/qmgr:
 * qmgr.flush only, refused under restrict_queue_run unless the peer is root
 * or mail_owner; at most QMGR_PUBLIC_CLIENT_LIMIT clients, apart from
 * private/qmgr's QMGR_CLIENT_LIMIT), the timers (incoming/ safety-net scan, deferred/ queue
 * runs) and drain (SIGHUP: take nothing new, let in-flight requests and
 * notices finish, exit).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "config.h"
#include "privacy.h"
#include "log.h"
#include "route.h"
#include "service.h"
#include "qmgr.h"

/* qmgr requests are tiny; a bigger one is garbage */
#define QMGR_CLIENT_MAX_REQUEST (64 * 1024)

/* a connected client of private/qmgr or public/qmgr */
struct qmgr_client {
    struct qmgr *qm;
    struct bufferevent *bev;
    int is_public;        /* public/qmgr: qmgr.flush only */
    int may_run;          /* the peer may flush (restrict_queue_run) */
    int may_list;         /* the peer may see queue IDs (restrict_queue_listing) */
    struct qmgr_run *run; /* the queue run it waits for (run.c), or NULL */
};

/* client_close - drop a client */
static void client_close(struct qmgr_client *c)
{
    if (c->is_public)
        c->qm->public_client_count--;
    else
        c->qm->client_count--;
    if (c->run != NULL)
        qmgr_run_detach(c->run);
    bufferevent_free(c->bev);
    free(c);
}

/* client_control - qmgr.flush / qmgr.control: act, then answer */
static void client_control(struct qmgr_client *c, const struct attr_msg *am, int trusted)
{
    buf_t out = BUF_INIT;

    qmgr_control_handle(c->qm, am, trusted, &out);
    bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
}

/* client_etrn - qmgr.etrn (tern-smtpd's ETRN, private/qmgr only) */
static void client_etrn(struct qmgr_client *c, const struct attr_msg *am)
{
    buf_t out = BUF_INIT;

    qmgr_etrn_handle(c->qm, am, &out);
    bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
}

/* client_wait_run - qmgr.flush wait=yes: a run that answers as it goes,
 * however long it takes (no idle timeout; the write timeout stays) */
static void client_wait_run(struct qmgr_client *c, const struct attr_msg *am)
{
    struct timeval write_timeout = {QMGR_CLIENT_TIMEOUT_SECONDS, 0};
    buf_t err = BUF_INIT, out = BUF_INIT;

    c->run = qmgr_run_start(c->qm, am, c->bev, c->may_list, &err);
    if (c->run != NULL) {
        bufferevent_set_timeouts(c->bev, NULL, &write_timeout);
    } else {
        attr_begin(&out, "qmgr.reply");
        attr_add_str(&out, "status", "error");
        attr_add_str(&out, "text", buf_cstr(&err));
        attr_end(&out);
        bufferevent_write(c->bev, out.data, out.len);
    }
    buf_free(&err);
    buf_free(&out);
}

/* client_handle - act on one request; -1 drops the client */
static int client_handle(struct qmgr_client *c, const struct attr_msg *am)
{
    const char *proto = attr_proto(am);
    const char *where = c->is_public ? "public/qmgr" : "private/qmgr";

    if (!c->is_public && strcmp(proto, "qmgr.trigger") == 0) {
        event_active(c->qm->incoming_ev, EV_TIMEOUT, 0);
        return 0;
    }
    if (strcmp(proto, "qmgr.flush") == 0 && c->may_run && c->run == NULL &&
        attr_get(am, "wait", NULL) != NULL) {
        client_wait_run(c, am);
        return 0;
    }
    if (strcmp(proto, "qmgr.flush") == 0) {
        client_control(c, am, c->may_run);
        return 0;
    }
    if (!c->is_public && strcmp(proto, "qmgr.control") == 0) {
        client_control(c, am, 1);
        return 0;
    }
    if (!c->is_public && strcmp(proto, "qmgr.etrn") == 0) {
        client_etrn(c, am);
        return 0;
    }
    log_warn("%s: unknown request \"%.64s\", client dropped", where, proto);
    return -1;
}

/* client_read_cb - decode every whole request in the input */
static void client_read_cb(struct bufferevent *bev, void *arg)
{
    struct qmgr_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct attr_msg am;
    size_t used;
    int rc = 1;

    attr_msg_init(&am);
    while (rc == 1 && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in);

        rc = attr_decode((const char *)evbuffer_pullup(in, -1), len, &used, &am);
        if (rc < 0 || (rc == 0 && len >= QMGR_CLIENT_MAX_REQUEST)) {
            log_warn("%s: malformed request, client dropped",
                     c->is_public ? "public/qmgr" : "private/qmgr");
            rc = -1;
        } else if (rc == 1) {
            evbuffer_drain(in, used);
            rc = client_handle(c, &am) < 0 ? -1 : 1;
        }
    }
    attr_msg_free(&am);
    if (rc < 0)
        client_close(c);
}

/* client_write_cb - the output is written: a run's client goes after
 * qmgr.run.done */
static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct qmgr_client *c = arg;

    if (c->run != NULL && qmgr_run_finished(c->run))
        client_close(c);
}

/* client_event_cb - EOF, error or idle timeout */
static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    client_close(arg);
}

/* peer_is_privileged - 1 when the peer (SO_PEERCRED) is root or
 * mail_owner, as showq decides for restrict_queue_listing */
static int peer_is_privileged(const struct qmgr *qm, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    return cred.uid == 0 || cred.uid == qm->owner_uid || cred.uid == geteuid();
}

/* client_accept - a new client on either socket */
static void client_accept(struct qmgr *qm, evutil_socket_t fd, int is_public)
{
    struct timeval timeout = {QMGR_CLIENT_TIMEOUT_SECONDS, 0};
    struct qmgr_client *c;

    if (is_public ? qm->public_client_count >= QMGR_PUBLIC_CLIENT_LIMIT
                  : qm->client_count >= QMGR_CLIENT_LIMIT) {
        log_warn("%s: too many clients, connection refused",
                 is_public ? "public/qmgr" : "private/qmgr");
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->qm = qm;
    c->is_public = is_public;
    c->may_run = !is_public || !qm->restrict_queue_run || peer_is_privileged(qm, fd);
    c->may_list = !is_public || !qm->restrict_queue_listing || peer_is_privileged(qm, fd);
    c->bev = bufferevent_socket_new(qm->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    if (is_public)
        qm->public_client_count++;
    else
        qm->client_count++;
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, QMGR_CLIENT_MAX_REQUEST);
    bufferevent_set_timeouts(c->bev, &timeout, &timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* qmgr_accept_cb - a new client of private/qmgr */
static void qmgr_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    client_accept(arg, fd, 0);
}

/* qmgr_public_accept_cb - a new client of public/qmgr */
static void qmgr_public_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                                  int socklen, void *arg)
{
    client_accept(arg, fd, 1);
}

/* qmgr_check_drained - when draining and nothing is in flight, stop */
void qmgr_check_drained(struct qmgr *qm)
{
    if (qm->draining && qm->inflight == 0 && qm->submit_count == 0) {
        log_info("drained; %zu message%s left in active/ for the next qmgr", qm->active_count,
                 qm->active_count == 1 ? "" : "s");
        service_stop(qm->svc);
    }
}

/* qmgr_on_drain - SIGHUP: take nothing new, finish what is in flight */
static void qmgr_on_drain(void *arg)
{
    struct qmgr *qm = arg;

    if (qm->draining)
        return;
    qm->draining = 1;
    evconnlistener_disable(qm->listener);
    if (qm->public_listener != NULL)
        evconnlistener_disable(qm->public_listener);
    event_del(qm->incoming_timer);
    event_del(qm->deferred_timer);
    log_info("draining: %zu delivery request%s in flight", qm->inflight,
             qm->inflight == 1 ? "" : "s");
    qmgr_check_drained(qm);
}

/* qmgr_incoming_cb - trigger, timer or room freed: scan incoming/ */
static void qmgr_incoming_cb(evutil_socket_t fd, short what, void *arg)
{
    qmgr_scan_incoming(arg);
}

/* qmgr_deferred_cb - queue run (or a flush that ran out of room) */
static void qmgr_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    struct qmgr *qm = arg;
    int force = qm->flush_again;

    qm->flush_again = 0;
    qmgr_scan_deferred(qm, force);
}

/* qmgr_dispatch_cb - start whatever the limits allow */
static void qmgr_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    qmgr_dispatch(arg);
}

/* qmgr_read_bounce_params - bounce_format, double_bounce_sender, mail_owner */
static void qmgr_read_bounce_params(struct qmgr *qm, const struct config *cfg)
{
    const char *format = config_str(cfg, "bounce_format");
    const char *dbs = config_str(cfg, "double_bounce_sender");
    struct passwd *pw = getpwnam(config_str(cfg, "mail_owner"));
    buf_t addr = BUF_INIT;

    if (strcmp(format, "mime") != 0 && strcmp(format, "plain") != 0)
        log_fatal("bounce_format must be mime or plain, not \"%s\"", format);
    qm->bounce_plain = strcmp(format, "plain") == 0;
    if (*qm->bounce_notice_recipient == 0)
        qm->bounce_notice_recipient = "postmaster";
    buf_puts(&addr, *dbs ? dbs : "double-bounce");
    if (strchr(addr.data, '@') == NULL)
        buf_printf(&addr, "@%s", qm->myhostname);
    qm->double_bounce_sender = buf_steal(&addr);
    qm->owner_uid = pw != NULL ? pw->pw_uid : geteuid();
}

/* qmgr_read_load_params - queue_defer_load and the privacy flags qmgr obeys */
static void qmgr_read_load_params(struct qmgr *qm, const struct config *cfg)
{
    const char *limit = config_str(cfg, "queue_defer_load");
    unsigned privacy = 0;
    buf_t err = BUF_INIT;

    if (loadavg_limit_parse(limit, &qm->defer_load) < 0)
        log_fatal("%s: queue_defer_load = %s: expected a load average such as 8 or 8.5 (0: off)",
                  config_origin(cfg, "queue_defer_load"), limit);
    loadavg_open(&qm->load, config_str(cfg, "load_average_file"));
    if (privacy_flags_get(cfg, &privacy, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    qm->restrict_queue_run |= (privacy & PRIVACY_RESTRICTQRUN) != 0;
    qm->restrict_queue_listing |= (privacy & PRIVACY_RESTRICTMAILQ) != 0;
    qm->no_body_return = (privacy & PRIVACY_NOBODYRETURN) != 0;
}

/* qmgr_read_params - the parameters qmgr uses */
static void qmgr_read_params(struct qmgr *qm, const struct config *cfg)
{
    long long dest_limit = config_int(cfg, "default_destination_concurrency_limit");
    long long total_limit = config_int(cfg, "qmgr_delivery_limit");
    long long rcpt_limit = config_int(cfg, "default_destination_recipient_limit");

    buf_t err = BUF_INIT;

    if ((qm->route = route_open(cfg, &err)) == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    qm->min_backoff = config_time(cfg, "minimal_backoff_time");
    qm->max_backoff = config_time(cfg, "maximal_backoff_time");
    qm->lifetime = config_time(cfg, "maximal_queue_lifetime");
    qm->run_delay = config_time(cfg, "queue_run_delay");
    qm->etrn_interval = config_time(cfg, "etrn_min_interval");
    qm->etrn_build_rate = config_int(cfg, "etrn_index_build_rate");
    if (qm->etrn_build_rate < 0)
        log_fatal("etrn_index_build_rate must be 0 or more");
    if (dest_limit < 1 || total_limit < 1 || rcpt_limit < 1)
        log_fatal("default_destination_concurrency_limit, qmgr_delivery_limit and "
                  "default_destination_recipient_limit must be at least 1");
    qm->delay_warning = config_time(cfg, "delay_warning_time");
    qm->myhostname = config_str(cfg, "myhostname");
    qm->bounce_notice_recipient = config_str(cfg, "2bounce_notice_recipient");
    qm->restrict_queue_run = config_bool(cfg, "restrict_queue_run");
    qm->restrict_queue_listing = config_bool(cfg, "restrict_queue_listing");
    qmgr_read_load_params(qm, cfg);
    qmgr_read_bounce_params(qm, cfg);
    if (qm->max_backoff < qm->min_backoff)
        qm->max_backoff = qm->min_backoff;
    if (qm->run_delay < 1)
        qm->run_delay = 1;
    qm->dest_limit = (size_t)dest_limit;
    qm->total_limit = (size_t)total_limit;
    qm->rcpt_limit = (size_t)rcpt_limit;
}

/* qmgr_make_events - the listener, timers and deferred-work events */
static void qmgr_make_events(struct qmgr *qm, int listen_fd, int public_fd)
{
    struct timeval incoming = {QMGR_INCOMING_SCAN_SECONDS, 0};
    struct timeval deferred = {(time_t)qm->run_delay, 0};

    if (set_nonblock(listen_fd) < 0)
        log_fatal("private/qmgr: cannot make the socket non-blocking: %m");
    qm->listener = evconnlistener_new(qm->base, qmgr_accept_cb, qm,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, listen_fd);
    if (public_fd >= 0) {
        if (set_nonblock(public_fd) < 0)
            log_fatal("public/qmgr: cannot make the socket non-blocking: %m");
        qm->public_listener =
            evconnlistener_new(qm->base, qmgr_public_accept_cb, qm,
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, public_fd);
        if (qm->public_listener == NULL)
            log_fatal("public/qmgr: cannot listen");
    }
    qm->dispatch_ev = event_new(qm->base, -1, 0, qmgr_dispatch_cb, qm);
    qm->incoming_ev = event_new(qm->base, -1, 0, qmgr_incoming_cb, qm);
    qm->deferred_ev = event_new(qm->base, -1, 0, qmgr_deferred_cb, qm);
    qm->incoming_timer = event_new(qm->base, -1, EV_PERSIST, qmgr_incoming_cb, qm);
    qm->deferred_timer = event_new(qm->base, -1, EV_PERSIST, qmgr_deferred_cb, qm);
    if (qm->listener == NULL || qm->dispatch_ev == NULL || qm->incoming_ev == NULL ||
        qm->deferred_ev == NULL || qm->incoming_timer == NULL || qm->deferred_timer == NULL)
        log_fatal("cannot set up the event loop");
    event_add(qm->incoming_timer, &incoming);
    event_add(qm->deferred_timer, &deferred);
}

/* qmgr_free_events - release what qmgr_make_events made */
static void qmgr_free_events(struct qmgr *qm)
{
    evconnlistener_free(qm->listener);
    if (qm->public_listener != NULL)
        evconnlistener_free(qm->public_listener);
    event_free(qm->dispatch_ev);
    event_free(qm->incoming_ev);
    event_free(qm->deferred_ev);
    event_free(qm->incoming_timer);
    event_free(qm->deferred_timer);
}

int main(int argc, char **argv)
{
    struct service svc;
    struct qmgr qm;
    int rc;

    memset(&qm, 0, sizeof(qm));
    service_init(&svc, "qmgr", argc, argv);
    if (svc.listen_count < 1)
        log_fatal("no listening socket: tern-qmgr expects private/qmgr as fd 3 from master");
    qm.svc = &svc;
    qm.base = svc.base;
    qmgr_read_params(&qm, svc.cfg);
    qmgr_bounce_templates_load(&qm, config_str(svc.cfg, "bounce_template_file"));
    qmgr_dest_init(&qm);
    route_preload(qm.route, NULL);
    svc.ctx = &qm;
    svc.on_drain = qmgr_on_drain;
    service_drop_privileges(&svc);
    qmgr_make_events(&qm, svc.listen_fds[0], svc.listen_count > 1 ? svc.listen_fds[1] : -1);
    qmgr_recover_list(&qm);
    qmgr_etrn_init(&qm);
    event_active(qm.incoming_ev, EV_TIMEOUT, 0);
    event_active(qm.deferred_ev, EV_TIMEOUT, 0);
    rc = service_run(&svc);
    qmgr_submit_free_all(&qm);
    qmgr_free_events(&qm);
    qmgr_dest_free_all(&qm);
    qmgr_message_free_all(&qm);
    qmgr_recover_free(&qm);
    qmgr_etrn_free(&qm);
    for (int k = 0; k < 3; k++) {
        free(qm.templates[k].subject);
        free(qm.templates[k].text);
    }
    free((char *)qm.double_bounce_sender);
    route_close(qm.route);
    loadavg_close(&qm.load);
    config_free(svc.cfg);
    return rc;
}
