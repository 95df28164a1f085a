/*
 * tern-auth - runs the SASL exchanges of SMTP AUTH outside smtpd's event
 * loop (auth.h, docs/auth.md).
 *
 * master execs `tern-auth -c DIR` as root with private/auth (0600,
 * mail_owner) as fd 3.  Set-up as root: the SASL policy of every listener
 * with smtpd_sasl_auth_enable = yes, and Cyrus SASL itself; then the drop
 * to mail_owner, keeping its supplementary groups (never a chroot).  The
 * event loop only accepts: each connection from smtpd is one exchange, run
 * by a forked process (exchange.c), at most auth_process_limit at once (the
 * listener pauses while they are all busy).  SIGHUP drains: stop accepting, let the
 * exchanges finish, exit.  SIGTERM ends the exchanges too.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "privs.h"
#include "service.h"

#define AUTH_MAX_POLICIES 8

struct auth_server {
    struct service svc;
    struct auth_policy policies[AUTH_MAX_POLICIES];
    struct config *views[AUTH_MAX_POLICIES];
    struct auth_exchange_env env;
    struct evconnlistener *listener;
    struct event *sigchld;
    pid_t *children; /* exchange processes not yet reaped */
    size_t child_count;
    long long child_limit;
};

/* auth_server_accepting - run the listener while there is room */
static void auth_server_accepting(struct auth_server *srv)
{
    if (srv->listener == NULL)
        return;
    if ((long long)srv->child_count < srv->child_limit)
        evconnlistener_enable(srv->listener);
    else
        evconnlistener_disable(srv->listener);
}

/* auth_child_main - the exchange process */
static void auth_child_main(struct auth_server *srv, int fd)
{
    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_IGN); /* a drain lets running exchanges finish */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    close(srv->svc.listen_fds[0]);
    auth_exchange_run(&srv->env, fd);
    _exit(0);
}

/* auth_on_accept - one exchange: fork its process */
static void auth_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct auth_server *srv = arg;
    pid_t pid;

    if (auth_peer_gone(fd)) { /* queued while every process was busy; smtpd gave up */
        log_info("dropping a connection from smtpd that is already closed (its client left "
                 "or waited too long)");
        close(fd);
        return;
    }
    pid = fork();
    if (pid == 0)
        auth_child_main(srv, fd);
    close(fd);
    if (pid < 0) {
        log_warn("cannot fork an exchange process: %s (the client gets 454)", strerror(errno));
        return;
    }
    srv->children[srv->child_count++] = pid;
    auth_server_accepting(srv);
}

/* auth_child_reaped - forget pid; say why it ended when that is news */
static void auth_child_reaped(struct auth_server *srv, pid_t pid, int status)
{
    for (size_t i = 0; i < srv->child_count; i++) {
        if (srv->children[i] == pid) {
            srv->children[i] = srv->children[--srv->child_count];
            break;
        }
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        log_warn("exchange process %ld stopped: a SASL step took longer than auth_time_limit "
                 "(%llds); the client got 454 4.7.0",
                 (long)pid, srv->env.time_limit);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        log_warn("exchange process %ld ended abnormally (status 0x%x)", (long)pid, status);
}

/* auth_on_sigchld - reap exchange processes, accept again, end a drain */
static void auth_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct auth_server *srv = arg;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        auth_child_reaped(srv, pid, status);
    auth_server_accepting(srv);
    if (srv->svc.draining && srv->child_count == 0)
        service_stop(&srv->svc);
}

/* auth_on_drain - SIGHUP: no new exchanges; exit when the last one ends */
static void auth_on_drain(void *ctx)
{
    struct auth_server *srv = ctx;

    if (srv->listener != NULL)
        evconnlistener_free(srv->listener);
    srv->listener = NULL;
    if (srv->child_count == 0)
        service_stop(&srv->svc);
}

/* auth_on_stop - SIGTERM: end every exchange now */
static void auth_on_stop(void *ctx)
{
    struct auth_server *srv = ctx;

    for (size_t i = 0; i < srv->child_count; i++)
        kill(srv->children[i], SIGTERM);
    service_stop(&srv->svc);
}

/* auth_server_policies - the SASL policy of each listener that offers AUTH */
static void auth_server_policies(struct auth_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    buf_t err = BUF_INIT;

    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        struct config *view = config_listener(cfg, l->name, &err);
        struct auth_policy *p = &srv->policies[srv->env.policy_count];

        if (view == NULL || srv->env.policy_count == AUTH_MAX_POLICIES)
            log_fatal("%s", view == NULL ? buf_cstr(&err) : "too many listeners");
        if (!config_bool(view, "smtpd_sasl_auth_enable")) {
            config_free(view);
            continue;
        }
        if (auth_sasl_settings_load(&p->sasl, view, &err) < 0)
            log_fatal("%s", buf_cstr(&err));
        p->listener = l->name;
        p->response_timeout = config_time(view, "smtpd_sasl_response_timeout");
        if (p->response_timeout > config_time(view, "smtpd_timeout"))
            p->response_timeout = config_time(view, "smtpd_timeout");
        srv->views[srv->env.policy_count++] = view;
    }
    srv->env.policies = srv->policies;
    buf_free(&err);
}

/* auth_server_setup - as root: policies, limits, Cyrus SASL */
static void auth_server_setup(struct auth_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    buf_t err = BUF_INIT;

    if (srv->svc.listen_count < 1)
        log_fatal("no listening socket: tern-auth expects private/auth as fd 3 from tern-master");
    srv->env.time_limit = config_time(cfg, "auth_time_limit");
    srv->child_limit = config_int(cfg, "auth_process_limit");
    if (srv->env.time_limit < 1 || srv->child_limit < 1)
        log_fatal("auth_time_limit and auth_process_limit must be at least 1");
    srv->children = xcalloc((size_t)srv->child_limit, sizeof(*srv->children));
    auth_server_policies(srv);
    if (srv->env.policy_count > 0 && auth_sasl_init(cfg, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
}

/* auth_server_check_files - as mail_owner: can the sasldb be read? */
static void auth_server_check_files(struct auth_server *srv)
{
    buf_t warnings = BUF_INIT;
    char *save = NULL;

    if (srv->env.policy_count > 0 && auth_sasl_sasldb_check(srv->svc.cfg, &warnings) < 0)
        for (char *line = strtok_r(warnings.data, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save))
            log_warn("%s", line);
    buf_free(&warnings);
}

/* auth_server_listen - accept exchanges, reap their processes */
static void auth_server_listen(struct auth_server *srv)
{
    struct service *svc = &srv->svc;

    if (set_nonblock(svc->listen_fds[0]) < 0)
        log_fatal("private/auth: cannot make the socket non-blocking: %s", strerror(errno));
    srv->listener =
        evconnlistener_new(svc->base, auth_on_accept, srv,
                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, svc->listen_fds[0]);
    srv->sigchld = evsignal_new(svc->base, SIGCHLD, auth_on_sigchld, srv);
    if (srv->listener == NULL || srv->sigchld == NULL || evsignal_add(srv->sigchld, NULL) < 0)
        log_fatal("private/auth: cannot set up the listener");
}

/* auth_server_free - what set-up made */
static void auth_server_free(struct auth_server *srv)
{
    if (srv->listener != NULL)
        evconnlistener_free(srv->listener);
    event_free(srv->sigchld);
    for (size_t i = 0; i < srv->env.policy_count; i++) {
        auth_sasl_settings_free(&srv->policies[i].sasl);
        config_free(srv->views[i]);
    }
    auth_sasl_done();
    free(srv->children);
    config_free(srv->svc.cfg);
}

int main(int argc, char **argv)
{
    static struct auth_server srv;
    int status;

    service_init(&srv.svc, "auth", argc, argv);
    srv.svc.ctx = &srv;
    srv.svc.on_drain = auth_on_drain;
    srv.svc.on_stop = auth_on_stop;
    auth_server_setup(&srv);
    /* no chroot: sasldb, saslauthd's socket and PAM are outside the queue;
     * mail_owner's groups stay (adduser tern sasl reaches saslauthd) */
    privs_drop_with_groups(config_str(srv.svc.cfg, "mail_owner"));
    auth_server_check_files(&srv);
    auth_server_listen(&srv);
    status = service_run(&srv.svc);
    auth_server_free(&srv);
    return status;
}
