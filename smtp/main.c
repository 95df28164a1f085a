/*
 * tern-smtp - the outbound SMTP client (DESIGN §3, docs/internals.md "smtp
 * protocol").
 *
 * master execs `tern-smtp -c DIR` with the UNIX socket private/smtp as fd 3.
 * qmgr connects once per delivery, sends one smtp.deliver request and gets one
 * smtp.result answer, then the connection is closed.  Many deliveries run at
 * once on one event loop; at most smtp_connection_limit of them are active
 * (resolving or connected), the rest wait in arrival order.  SIGHUP: stop
 * accepting, finish what is in flight, exit.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "config.h"
#include "dns.h"
#include "log.h"
#include "service.h"
#include "smtp.h"

#define CLIENT_TIMEOUT 60 /* seconds for qmgr to send its request / take the answer */

struct smtp_server;

/* one connection from qmgr, carrying one delivery */
struct smtp_client {
    struct smtp_server *srv;
    struct bufferevent *bev; /* NULL once the qmgr side is closed */
    struct smtp_request req;
    int running; /* a session owns req */
    int waiting; /* in the queue for a connection slot */
    struct smtp_client *next;
};

struct smtp_server {
    struct service svc;
    struct smtp_env env;
    struct evconnlistener *listeners[SERVICE_MAX_LISTEN];
    size_t listener_count;
    long long limit;
    size_t active;  /* sessions running */
    size_t clients; /* client objects alive */
    struct smtp_client *wait_head, *wait_tail;
};

static void smtp_server_start_waiting(struct smtp_server *srv);

/* smtp_server_check_exit - when draining and idle, leave the loop */
static void smtp_server_check_exit(struct smtp_server *srv)
{
    if (srv->svc.draining && srv->clients == 0)
        service_stop(&srv->svc);
}

/* smtp_client_maybe_free - free c once neither qmgr nor a session needs it */
static void smtp_client_maybe_free(struct smtp_client *c)
{
    struct smtp_server *srv = c->srv;

    if (c->bev != NULL || c->running || c->waiting)
        return;
    smtp_request_free(&c->req);
    free(c);
    srv->clients--;
    smtp_server_check_exit(srv);
}

/* smtp_client_close - drop the qmgr side of c */
static void smtp_client_close(struct smtp_client *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    smtp_client_maybe_free(c);
}

/* smtp_client_flushed - the answer is out: close */
static void smtp_client_flushed(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        smtp_client_close(c);
}

/* smtp_client_event - qmgr went away, or a timeout */
static void smtp_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;

    if (what & BEV_EVENT_TIMEOUT)
        log_warn("qmgr connection timed out");
    smtp_client_close(c);
}

/* smtp_on_result - the session decided every recipient: answer qmgr */
static void smtp_on_result(struct smtp_request *req, void *arg)
{
    struct smtp_client *c = arg;
    buf_t out = BUF_INIT;
    struct timeval tv = {CLIENT_TIMEOUT, 0};

    if (c->bev == NULL)
        return; /* qmgr gave up; it defers on its own */
    smtp_result_encode(req, &out);
    bufferevent_setcb(c->bev, NULL, smtp_client_flushed, smtp_client_event, c);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    bufferevent_enable(c->bev, EV_WRITE);
    bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
}

/* smtp_on_closed - the session is gone: free its slot */
static void smtp_on_closed(struct smtp_request *req, void *arg)
{
    struct smtp_client *c = arg;
    struct smtp_server *srv = c->srv;

    c->running = 0;
    srv->active--;
    smtp_client_maybe_free(c);
    smtp_server_start_waiting(srv);
}

/* smtp_client_start - run the delivery of c now */
static void smtp_client_start(struct smtp_client *c)
{
    struct smtp_session_cbs cbs = {smtp_on_result, smtp_on_closed, c};

    c->running = 1;
    c->srv->active++;
    smtp_session_start(&c->srv->env, &c->req, &cbs);
}

/* smtp_server_start_waiting - fill free connection slots from the queue */
static void smtp_server_start_waiting(struct smtp_server *srv)
{
    while (srv->wait_head != NULL && (long long)srv->active < srv->limit) {
        struct smtp_client *c = srv->wait_head;
        srv->wait_head = c->next;
        if (srv->wait_head == NULL)
            srv->wait_tail = NULL;
        c->waiting = 0;
        if (c->bev == NULL) /* qmgr gave up while it waited */
            smtp_client_maybe_free(c);
        else
            smtp_client_start(c);
    }
}

/* smtp_client_enqueue - a valid request: run it or let it wait */
static void smtp_client_enqueue(struct smtp_client *c)
{
    struct smtp_server *srv = c->srv;

    bufferevent_disable(c->bev, EV_READ);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    c->waiting = 1;
    c->next = NULL;
    if (srv->wait_tail)
        srv->wait_tail->next = c;
    else
        srv->wait_head = c;
    srv->wait_tail = c;
    smtp_server_start_waiting(srv);
}

/* smtp_client_request - one whole message from qmgr: validate it */
static void smtp_client_request(struct smtp_client *c, const struct attr_msg *m)
{
    buf_t err = BUF_INIT;

    if (smtp_request_parse(m, &c->req, &err) < 0) {
        log_warn("malformed smtp.deliver request from qmgr: %s", buf_cstr(&err));
        buf_free(&err);
        smtp_request_free(&c->req);
        smtp_client_close(c);
        return;
    }
    buf_free(&err);
    smtp_client_enqueue(c);
}

/* smtp_client_read - bytes from qmgr: wait for one complete request */
static void smtp_client_read(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used = 0;
    const char *data = (const char *)evbuffer_pullup(in, -1);
    struct attr_msg m;
    int rc;

    attr_msg_init(&m);
    rc = attr_decode(data, len, &used, &m);
    if (rc < 0) {
        log_warn("malformed request from qmgr: dropping the connection");
        smtp_client_close(c);
    } else if (rc > 0) {
        evbuffer_drain(in, used);
        smtp_client_request(c, &m);
    }
    attr_msg_free(&m);
}

/* smtp_server_accept - qmgr connected */
static void smtp_server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                               int socklen, void *arg)
{
    struct smtp_server *srv = arg;
    struct smtp_client *c = xcalloc(1, sizeof(*c));
    struct timeval tv = {CLIENT_TIMEOUT, 0};

    c->srv = srv;
    smtp_request_init(&c->req);
    c->bev = bufferevent_socket_new(srv->svc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        log_panic("bufferevent_socket_new failed");
    srv->clients++;
    bufferevent_setcb(c->bev, smtp_client_read, NULL, smtp_client_event, c);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ);
}

/* smtp_server_drain - SIGHUP: stop accepting, finish in-flight work */
static void smtp_server_drain(void *ctx)
{
    struct smtp_server *srv = ctx;

    for (size_t i = 0; i < srv->listener_count; i++)
        evconnlistener_disable(srv->listeners[i]);
    log_info("draining: %zu deliveries in flight", srv->clients);
    smtp_server_check_exit(srv);
}

/* smtp_helo_name - smtp_helo_name, else this host's name */
static const char *smtp_helo_name(const struct config *cfg)
{
    static char host[256];
    const char *name = config_str(cfg, "smtp_helo_name");

    if (name[0])
        return name;
    if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
        return host;
    return "localhost";
}

/* smtp_server_configure - settings and the resolver (before the drop) */
static void smtp_server_configure(struct smtp_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    buf_t err = BUF_INIT;
    long long port = config_int(cfg, "smtp_default_port");

    srv->env.base = srv->svc.base;
    srv->env.connect_timeout = config_time(cfg, "smtp_connect_timeout");
    srv->env.helo_timeout = config_time(cfg, "smtp_helo_timeout");
    srv->env.command_timeout = config_time(cfg, "smtp_command_timeout");
    srv->env.data_timeout = config_time(cfg, "smtp_data_timeout");
    srv->env.helo_name = smtp_helo_name(cfg);
    if (port < 1 || port > 65535)
        log_fatal("smtp_default_port = %lld is not a TCP port", port);
    srv->env.default_port = (int)port;
    srv->limit = config_int(cfg, "smtp_connection_limit");
    if (srv->limit < 1)
        log_fatal("smtp_connection_limit must be at least 1");
    srv->env.dns = dns_create(srv->svc.base, config_list(cfg, "dns_servers", NULL),
                              config_time(cfg, "dns_timeout"), &err);
    if (srv->env.dns == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
}

/* smtp_server_listen - accept on every inherited socket */
static void smtp_server_listen(struct smtp_server *srv)
{
    if (srv->svc.listen_count == 0)
        log_fatal("no listening socket (TERN_LISTEN_FDS); tern-smtp is started by master");
    for (size_t i = 0; i < srv->svc.listen_count; i++) {
        struct evconnlistener *l =
            evconnlistener_new(srv->svc.base, smtp_server_accept, srv, LEV_OPT_CLOSE_ON_FREE, 0,
                               srv->svc.listen_fds[i]);
        if (l == NULL)
            log_fatal("cannot listen on fd %d", srv->svc.listen_fds[i]);
        srv->listeners[srv->listener_count++] = l;
    }
}

int main(int argc, char **argv)
{
    static struct smtp_server srv;
    int status;

    service_init(&srv.svc, "smtp", argc, argv);
    srv.svc.ctx = &srv;
    srv.svc.on_drain = smtp_server_drain;
    smtp_server_configure(&srv);
    smtp_server_listen(&srv);
    service_drop_privileges(&srv.svc);
    status = service_run(&srv.svc);
    for (size_t i = 0; i < srv.listener_count; i++)
        evconnlistener_free(srv.listeners[i]);
    dns_free(srv.env.dns);
    return status;
}
