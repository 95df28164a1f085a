/*
 * tern-qmgr - the queue manager: exactly one runs (docs/queue.md).
 *
 * master execs `tern-qmgr -c DIR` with private/qmgr as fd 3 and the queue
 * directory as cwd.  This file holds start-up, the private/qmgr protocol
 * (qmgr.trigger: scan incoming/ now; qmgr.flush: retry every deferred
 * message now), the timers (incoming/ safety-net scan, deferred/ queue runs)
 * and drain (SIGHUP: take nothing new, let in-flight requests finish, exit).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "service.h"
#include "qmgr.h"

/* qmgr requests are tiny; a bigger one is garbage */
#define QMGR_CLIENT_MAX_REQUEST (64 * 1024)

/* a connected client of private/qmgr */
struct qmgr_client {
    struct qmgr *qm;
    struct bufferevent *bev;
};

/* client_close - drop a client */
static void client_close(struct qmgr_client *c)
{
    c->qm->client_count--;
    bufferevent_free(c->bev);
    free(c);
}

/* client_flush - retry every deferred message now, then answer ok */
static void client_flush(struct qmgr_client *c)
{
    buf_t out = BUF_INIT;

    qmgr_scan_deferred(c->qm, 1);
    attr_begin(&out, "qmgr.reply");
    attr_add_str(&out, "status", "ok");
    attr_end(&out);
    bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
}

/* client_handle - act on one request; -1 drops the client */
static int client_handle(struct qmgr_client *c, const struct attr_msg *am)
{
    const char *proto = attr_proto(am);

    if (strcmp(proto, "qmgr.trigger") == 0) {
        event_active(c->qm->incoming_ev, EV_TIMEOUT, 0);
        return 0;
    }
    if (strcmp(proto, "qmgr.flush") == 0) {
        client_flush(c);
        return 0;
    }
    log_warn("private/qmgr: unknown request \"%.64s\", client dropped", proto);
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
            log_warn("private/qmgr: malformed request, client dropped");
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

/* client_event_cb - EOF, error or idle timeout */
static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    client_close(arg);
}

/* qmgr_accept_cb - a new client of private/qmgr */
static void qmgr_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    struct qmgr *qm = arg;
    struct timeval timeout = {QMGR_CLIENT_TIMEOUT_SECONDS, 0};
    struct qmgr_client *c;

    if (qm->client_count >= QMGR_CLIENT_LIMIT) {
        log_warn("private/qmgr: too many clients, connection refused");
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->qm = qm;
    c->bev = bufferevent_socket_new(qm->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    qm->client_count++;
    bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, QMGR_CLIENT_MAX_REQUEST);
    bufferevent_set_timeouts(c->bev, &timeout, &timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* qmgr_check_drained - when draining and nothing is in flight, stop */
void qmgr_check_drained(struct qmgr *qm)
{
    if (qm->draining && qm->inflight == 0) {
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

/* qmgr_read_params - the parameters qmgr uses */
static void qmgr_read_params(struct qmgr *qm, const struct config *cfg)
{
    long long dest_limit = config_int(cfg, "default_destination_concurrency_limit");
    long long total_limit = config_int(cfg, "qmgr_delivery_limit");
    long long rcpt_limit = config_int(cfg, "default_destination_recipient_limit");

    qm->mydestination = config_list(cfg, "mydestination", NULL);
    qm->relayhost = config_str(cfg, "relayhost");
    qm->min_backoff = config_time(cfg, "minimal_backoff_time");
    qm->max_backoff = config_time(cfg, "maximal_backoff_time");
    qm->lifetime = config_time(cfg, "maximal_queue_lifetime");
    qm->run_delay = config_time(cfg, "queue_run_delay");
    if (dest_limit < 1 || total_limit < 1 || rcpt_limit < 1)
        log_fatal("default_destination_concurrency_limit, qmgr_delivery_limit and "
                  "default_destination_recipient_limit must be at least 1");
    if (qm->max_backoff < qm->min_backoff)
        qm->max_backoff = qm->min_backoff;
    if (qm->run_delay < 1)
        qm->run_delay = 1;
    qm->dest_limit = (size_t)dest_limit;
    qm->total_limit = (size_t)total_limit;
    qm->rcpt_limit = (size_t)rcpt_limit;
}

/* qmgr_make_events - the listener, timers and deferred-work events */
static void qmgr_make_events(struct qmgr *qm, int listen_fd)
{
    struct timeval incoming = {QMGR_INCOMING_SCAN_SECONDS, 0};
    struct timeval deferred = {(time_t)qm->run_delay, 0};

    if (set_nonblock(listen_fd) < 0)
        log_fatal("private/qmgr: cannot make the socket non-blocking: %m");
    qm->listener = evconnlistener_new(qm->base, qmgr_accept_cb, qm,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, listen_fd);
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
    qmgr_dest_init(&qm);
    svc.ctx = &qm;
    svc.on_drain = qmgr_on_drain;
    service_drop_privileges(&svc);
    qmgr_make_events(&qm, svc.listen_fds[0]);
    qmgr_recover_list(&qm);
    event_active(qm.incoming_ev, EV_TIMEOUT, 0);
    event_active(qm.deferred_ev, EV_TIMEOUT, 0);
    rc = service_run(&svc);
    qmgr_free_events(&qm);
    qmgr_dest_free_all(&qm);
    qmgr_message_free_all(&qm);
    qmgr_recover_free(&qm);
    config_free(svc.cfg);
    return rc;
}
