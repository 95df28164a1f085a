/*
 * tern-smtpd - the inbound SMTP server: one event-driven worker.
 *
 * master execs "tern-smtpd -c DIR" with the listening TCP sockets as fds 3..
 * (TERN_LISTEN_FDS); several workers share them.  Each accepted connection
 * becomes a session (session.c).  At most smtpd_client_limit sessions run at
 * once: the listeners are disabled while the worker is full, and the
 * connections over it wait in the kernel's listen queue.  Under
 * smtpd_connection_rate_throttle a listener's sockets also rest after each
 * accept for as long as this worker's share of the rate says (throttle.h).
 * SIGHUP drains: the listeners close, live sessions finish, then the worker
 * exits.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <stdlib.h>

#include "auth.h"
#include "config.h"
#include "greet.h"
#include "log.h"
#include "netaddr.h"
#include "proctitle.h"
#include "route.h"
#include "service.h"
#include "smtpd.h"
#include "smtpd_policy.h"
#include "smtpd_tls.h"
#include "upstream_proxy.h"

/* smtpd_listeners_update - accept on each socket unless the worker is full,
 * rests after an accept error, or the socket's listener is throttled */
static void smtpd_listeners_update(struct smtpd_server *server)
{
    int full = (long long)server->session_count >= server->client_limit;

    for (size_t i = 0; i < server->listener_count; i++) {
        const struct smtpd_listener *listener = server->listener_conf[i];

        if (server->listeners[i] == NULL)
            continue;
        if (full || server->accept_failed || listener->throttled || listener->throttle.closed)
            evconnlistener_disable(server->listeners[i]);
        else
            evconnlistener_enable(server->listeners[i]);
    }
}

/* smtpd_clock - seconds on CLOCK_MONOTONIC */
static double smtpd_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* smtpd_throttle_arm - the listener's throttle timer, seconds from now */
static void smtpd_throttle_arm(struct smtpd_listener *listener, double seconds)
{
    long long us = (long long)(seconds * 1e6);
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

    evtimer_add(listener->throttle_timer, &tv);
}

/* smtpd_throttle_accepted - one connection more on listener: under
 * smtpd_connection_rate_throttle its sockets rest until the next may come */
static void smtpd_throttle_accepted(struct smtpd_listener *listener)
{
    double wait = smtpd_throttle_take(&listener->throttle, smtpd_clock());

    if (wait <= 0)
        return;
    listener->throttled = 1;
    smtpd_throttle_arm(listener, wait);
}

/* smtpd_throttle_waiting - a connection waits in a listen queue of listener */
static int smtpd_throttle_waiting(const struct smtpd_listener *listener)
{
    const struct smtpd_server *server = listener->server;
    struct pollfd fds[SERVICE_MAX_LISTEN];
    nfds_t n = 0;

    for (size_t i = 0; i < server->listener_count; i++)
        if (server->listeners[i] != NULL && server->listener_conf[i] == listener)
            fds[n++] = (struct pollfd){evconnlistener_get_fd(server->listeners[i]), POLLIN, 0};
    return n > 0 && poll(fds, n, 0) > 0;
}

/* smtpd_on_throttle_timer - a rest is over: accept again, and log (as
 * sendmail) when connections had to wait; a rest's length later without a
 * new rest, they no longer do */
static void smtpd_on_throttle_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_listener *listener = arg;
    const char *daemon = smtpd_daemon_name(&listener->cfg);

    if (listener->server->svc.draining)
        return;
    if (!listener->throttled) {
        if (listener->deferring)
            log_info("accepting connections again for daemon %s", daemon);
        listener->deferring = 0;
        return;
    }
    listener->throttled = 0;
    if (!listener->deferring && smtpd_throttle_waiting(listener)) {
        log_info("deferring connections on daemon %s: %lld per second", daemon,
                 listener->cfg.connection_rate_throttle);
        listener->deferring = 1;
    }
    if (listener->deferring)
        smtpd_throttle_arm(listener, listener->throttle.interval);
    smtpd_listeners_update(listener->server);
}

/* smtpd_title - "tern-smtpd: N sessions, last [ip]" in ps (OPS-04); set
 * when a session starts or ends only */
static void smtpd_title(const struct smtpd_server *server)
{
    proctitle_set("%zu session%s%s%s%s", server->session_count,
                  server->session_count == 1 ? "" : "s", *server->last_client ? ", last [" : "",
                  server->last_client, *server->last_client ? "]" : "");
}

/* smtpd_on_accept - a new client */
static void smtpd_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    struct smtpd_listener *listener = arg;
    struct smtpd_server *server = listener->server;
    int on = 1;

    /* replies go out as soon as they are complete: a pipelined batch is one
     * write anyway, and the TLS session ticket and the next reply must not
     * wait for the client's delayed ACK (40 ms per handshake, bench/README.md) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    smtpd_throttle_accepted(listener);
    if (smtpd_load_refuse(listener, fd)) { /* smtpd_refuse_load: 421 already written */
        evutil_closesocket(fd);
        smtpd_listeners_update(server);
        return;
    }
    server->session_count++;
    if ((long long)server->session_count == server->client_limit)
        log_info("%zu sessions: smtpd_client_limit reached, not accepting for now",
                 server->session_count);
    smtpd_listeners_update(server);
    netaddr_format(sa, server->last_client, sizeof(server->last_client));
    smtpd_title(server);
    if (listener->cfg.upstream_proxy)
        smtpd_upstream_proxy_start(listener, fd, sa, salen);
    else
        session_start(listener, fd, sa, salen);
}

/* smtpd_on_accept_retry - a second after an accept error: accept again */
static void smtpd_on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_server *server = arg;

    server->accept_failed = 0;
    if (!server->svc.draining)
        smtpd_listeners_update(server);
}

/* smtpd_on_accept_error - e.g. out of file descriptors: pause for a second
 * instead of spinning on a socket that stays readable */
static void smtpd_on_accept_error(struct evconnlistener *evl, void *arg)
{
    struct smtpd_server *server = ((struct smtpd_listener *)arg)->server;
    struct timeval tv = {1, 0};
    int err = EVUTIL_SOCKET_ERROR();

    log_warn("accept: %s; pausing for a second", evutil_socket_error_to_string(err));
    server->accept_failed = 1;
    smtpd_listeners_update(server);
    if (server->retry == NULL)
        server->retry = evtimer_new(server->svc.base, smtpd_on_accept_retry, server);
    evtimer_add(server->retry, &tv);
}

/* smtpd_session_ended - one session fewer */
void smtpd_session_ended(struct smtpd_server *server)
{
    if (server->session_count > 0)
        server->session_count--;
    smtpd_title(server);
    if (server->svc.draining) {
        if (server->session_count == 0)
            service_stop(&server->svc);
        return;
    }
    smtpd_listeners_update(server);
}

/* smtpd_listeners_free - close every listening socket */
static void smtpd_listeners_free(struct smtpd_server *server)
{
    for (size_t i = 0; i < server->listener_count; i++) {
        if (server->listeners[i] != NULL)
            evconnlistener_free(server->listeners[i]);
        server->listeners[i] = NULL;
    }
}

/* smtpd_on_drain - SIGHUP: stop accepting, finish the live sessions */
static void smtpd_on_drain(void *ctx)
{
    struct smtpd_server *server = ctx;

    log_info("draining: %zu sessions left", server->session_count);
    smtpd_listeners_free(server);
    if (server->session_count == 0)
        service_stop(&server->svc);
}

/* smtpd_listener_conf - the config of listener name, loaded on first use:
 * its view of tern.conf, its TLS context and SASL set-up (as root) */
static struct smtpd_listener *smtpd_listener_conf(struct smtpd_server *server, const char *name)
{
    struct smtpd_listener *l;
    buf_t err = BUF_INIT;

    for (size_t i = 0; i < server->conf_count; i++)
        if (strcmp(server->conf[i].cfg.listener, name) == 0)
            return &server->conf[i];
    if (config_listener_find(name) == NULL ||
        server->conf_count == sizeof(server->conf) / sizeof(server->conf[0]))
        log_fatal("TERN_LISTEN_NAMES: unknown listener '%s'", name);
    l = &server->conf[server->conf_count++];
    l->server = server;
    if ((l->view = config_listener(server->svc.cfg, name, &err)) == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    smtpd_config_load(&l->cfg, l->view, server->route);
    smtpd_tls_init(&l->cfg, l->view);
    smtpd_auth_init(&l->cfg, l->view);
    return l;
}

/* smtpd_listeners_conf - the listener of each inherited socket, from
 * TERN_LISTEN_NAMES ("smtpd submission smtps"); all "smtpd" without it */
static void smtpd_listeners_conf(struct smtpd_server *server)
{
    const char *env = getenv("TERN_LISTEN_NAMES");
    char *names = xstrdup(env != NULL ? env : "");
    char *save = NULL;
    char *name = strtok_r(names, " ", &save);

    for (size_t i = 0; i < server->svc.listen_count; i++) {
        server->listener_conf[i] = smtpd_listener_conf(server, name != NULL ? name : "smtpd");
        if (name != NULL)
            name = strtok_r(NULL, " ", &save);
    }
    free(names);
}

/* smtpd_throttle_open - each listener's share of its
 * smtpd_connection_rate_throttle, by this worker's place (TERN_SMTPD_WORKER) */
static void smtpd_throttle_open(struct smtpd_server *server)
{
    const char *env = getenv("TERN_SMTPD_WORKER");

    server->worker_index = 0;
    server->worker_count = 1;
    if (env != NULL &&
        smtpd_throttle_worker_parse(env, &server->worker_index, &server->worker_count) < 0) {
        log_warn("TERN_SMTPD_WORKER = %s: expected INDEX/COUNT; taking 0/1", env);
        server->worker_index = 0;
        server->worker_count = 1;
    }
    for (size_t i = 0; i < server->conf_count; i++) {
        struct smtpd_listener *l = &server->conf[i];
        long long rate = l->cfg.connection_rate_throttle;

        smtpd_throttle_init(&l->throttle, rate, server->worker_index, server->worker_count);
        if (rate > 0)
            l->throttle_timer = evtimer_new(server->svc.base, smtpd_on_throttle_timer, l);
        if (l->throttle.closed)
            log_info("daemon %s: smtpd_connection_rate_throttle = %lld is below smtpd_workers "
                     "= %lld: worker %lld does not accept there",
                     smtpd_daemon_name(&l->cfg), rate, server->worker_count, server->worker_index);
    }
}

/* smtpd_listeners_open - wrap the inherited sockets */
static void smtpd_listeners_open(struct smtpd_server *server)
{
    struct service *svc = &server->svc;

    for (size_t i = 0; i < svc->listen_count; i++) {
        int fd = svc->listen_fds[i];
        struct evconnlistener *l;

        if (set_nonblock(fd) < 0)
            log_fatal("listening socket fd %d: %s", fd, strerror(errno));
        l = evconnlistener_new(svc->base, smtpd_on_accept, server->listener_conf[i],
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1, fd);
        if (l == NULL)
            log_fatal("cannot listen on fd %d", fd);
        evconnlistener_set_error_cb(l, smtpd_on_accept_error);
        server->listeners[server->listener_count++] = l;
    }
    smtpd_listeners_update(server); /* a worker without a share stays shut */
}

/* smtpd_server_setup - everything that needs root: tables, keys, SASL */
static void smtpd_server_setup(struct smtpd_server *server)
{
    struct service *svc = &server->svc;
    buf_t err = BUF_INIT;

    if (svc->listen_count == 0)
        log_fatal("no listening sockets (TERN_LISTEN_FDS): tern-smtpd is started by tern-master");
    if ((server->route = route_open(svc->cfg, &err)) == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    route_preload(server->route, NULL); /* before the privilege drop */
    server->client_limit = config_int(svc->cfg, "smtpd_client_limit");
    if (server->client_limit < 1)
        log_fatal("%s: smtpd_client_limit = %lld: must be at least 1",
                  config_origin(svc->cfg, "smtpd_client_limit"), server->client_limit);
    smtpd_tls_global_init(svc);
    smtpd_policy_server_init(server, svc->cfg);
    smtpd_listeners_conf(server);
    smtpd_throttle_open(server);
    smtpd_auth_setup_end();
    smtpd_load_open(server);
    smtpd_expn_open(server);
}

/* smtpd_server_free - what smtpd_server_setup made */
static void smtpd_server_free(struct smtpd_server *server)
{
    for (size_t i = 0; i < server->conf_count; i++) {
        if (server->conf[i].throttle_timer != NULL)
            event_free(server->conf[i].throttle_timer);
        smtpd_auth_free(&server->conf[i].cfg);
        smtpd_tls_free(&server->conf[i].cfg);
        smtpd_config_free(&server->conf[i].cfg);
        config_free(server->conf[i].view);
    }
    smtpd_policy_server_free(server);
    route_close(server->route);
    smtpd_expn_close(server);
    loadavg_close(&server->load);
}

/* main - set up, drop privileges, accept until drained or stopped */
int main(int argc, char **argv)
{
    static struct smtpd_server server;
    int status;

    service_init(&server.svc, "smtpd", argc, argv);
    server.svc.ctx = &server;
    server.svc.on_drain = smtpd_on_drain;
    smtpd_server_setup(&server);
    service_drop_privileges(&server.svc);
    smtpd_listeners_open(&server);
    smtpd_title(&server);
    status = service_run(&server.svc);
    smtpd_listeners_free(&server);
    if (server.retry != NULL)
        event_free(server.retry);
    smtpd_server_free(&server);
    return status;
}
