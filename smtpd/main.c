/*
 * tern-smtpd - the inbound SMTP server: one event-driven worker.
 *
 * master execs "tern-smtpd -c DIR" with the listening TCP sockets as fds 3..
 * (TERN_LISTEN_FDS); several workers share them.  Each accepted connection
 * becomes a session (session.c).  At most smtpd_client_limit sessions run at
 * once: the listeners are disabled while the worker is full.  SIGHUP drains:
 * the listeners close, live sessions finish, then the worker exits.
 */
#include <errno.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "log.h"
#include "service.h"
#include "smtpd.h"

/* smtpd_listeners_enable - accept again, or stop accepting */
static void smtpd_listeners_enable(struct smtpd_server *server, int on)
{
    for (size_t i = 0; i < server->listener_count; i++) {
        if (server->listeners[i] == NULL)
            continue;
        if (on)
            evconnlistener_enable(server->listeners[i]);
        else
            evconnlistener_disable(server->listeners[i]);
    }
    server->paused = !on;
}

/* smtpd_on_accept - a new client */
static void smtpd_on_accept(struct evconnlistener *listener, evutil_socket_t fd,
                            struct sockaddr *sa, int salen, void *arg)
{
    struct smtpd_server *server = arg;

    server->session_count++;
    if ((long long)server->session_count >= server->cfg.client_limit && !server->paused) {
        log_info("%zu sessions: smtpd_client_limit reached, not accepting for now",
                 server->session_count);
        smtpd_listeners_enable(server, 0);
    }
    session_start(server, fd, sa, salen);
}

/* smtpd_on_accept_retry - a second after an accept error: accept again */
static void smtpd_on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_server *server = arg;

    if (!server->svc.draining && (long long)server->session_count < server->cfg.client_limit)
        smtpd_listeners_enable(server, 1);
}

/* smtpd_on_accept_error - e.g. out of file descriptors: pause for a second
 * instead of spinning on a socket that stays readable */
static void smtpd_on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct smtpd_server *server = arg;
    struct timeval tv = {1, 0};
    int err = EVUTIL_SOCKET_ERROR();

    log_warn("accept: %s; pausing for a second", evutil_socket_error_to_string(err));
    smtpd_listeners_enable(server, 0);
    if (server->retry == NULL)
        server->retry = evtimer_new(server->svc.base, smtpd_on_accept_retry, server);
    evtimer_add(server->retry, &tv);
}

/* smtpd_session_ended - one session fewer */
void smtpd_session_ended(struct smtpd_server *server)
{
    if (server->session_count > 0)
        server->session_count--;
    if (server->svc.draining) {
        if (server->session_count == 0)
            service_stop(&server->svc);
        return;
    }
    if (server->paused && (long long)server->session_count < server->cfg.client_limit)
        smtpd_listeners_enable(server, 1);
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

/* smtpd_listeners_open - wrap the inherited sockets */
static void smtpd_listeners_open(struct smtpd_server *server)
{
    struct service *svc = &server->svc;

    if (svc->listen_count == 0)
        log_fatal("no listening sockets (TERN_LISTEN_FDS): tern-smtpd is started by tern-master");
    for (size_t i = 0; i < svc->listen_count; i++) {
        int fd = svc->listen_fds[i];
        struct evconnlistener *l;

        if (set_nonblock(fd) < 0)
            log_fatal("listening socket fd %d: %s", fd, strerror(errno));
        l = evconnlistener_new(svc->base, smtpd_on_accept, server,
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1, fd);
        if (l == NULL)
            log_fatal("cannot listen on fd %d", fd);
        evconnlistener_set_error_cb(l, smtpd_on_accept_error);
        server->listeners[server->listener_count++] = l;
    }
}

/* main - set up, drop privileges, accept until drained or stopped */
int main(int argc, char **argv)
{
    static struct smtpd_server server;
    int status;

    service_init(&server.svc, "smtpd", argc, argv);
    smtpd_config_load(&server.cfg, server.svc.cfg);
    server.svc.ctx = &server;
    server.svc.on_drain = smtpd_on_drain;
    service_drop_privileges(&server.svc);
    smtpd_listeners_open(&server);
    status = service_run(&server.svc);
    smtpd_listeners_free(&server);
    if (server.retry != NULL)
        event_free(server.retry);
    smtpd_config_free(&server.cfg);
    return status;
}
