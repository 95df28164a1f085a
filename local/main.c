/*
 * tern-local - the local delivery agent (DESIGN §3, docs/local.md).
 *
 * master execs `tern-local -c DIR` as root with private/local as fd 3.  qmgr
 * connects once per delivery request, sends one local.deliver and gets one
 * local.result.  The event loop only accepts and reads requests; each valid
 * request is delivered by a forked worker (at most
 * local_destination_concurrency_limit at once, the rest wait in arrival
 * order) that answers qmgr on the same socket and exits, so a slow mailbox
 * lock or a long-running command never stalls the loop.  The accept / read
 * one request loop is lib/delivery_server.c; a worker's job holds its slot
 * until the worker is reaped.
 *
 * This is the one service that keeps root: workers write mailboxes and
 * files with the recipient's effective ids and run commands in children
 * that drop root for good (runas.c, command.c).  The group databases and
 * the time zone are looked up once at start so that the NSS modules
 * initgroups needs are loaded before the fork, not by every worker.  The
 * alias tables are opened in each worker (an LMDB handle must not cross a
 * fork) and once at start, to report a bad alias_maps early; while they
 * cannot be opened, deliveries are deferred.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "delivery.h"
#include "local.h"
#include "log.h"
#include "privs.h"
#include "service.h"

/* a forked worker: its job keeps a delivery slot until it is reaped */
struct local_worker {
    pid_t pid;
    struct delivery_job *job;
    struct local_worker *next;
};

struct local_server {
    struct service svc;
    struct local_env env;
    char *const *alias_specs;
    size_t alias_count;
    struct delivery_server *delivery;
    struct event *sigchld;
    long long limit;
    struct local_worker *workers; /* forked, not yet reaped */
};

/* local_worker_main - the forked worker: deliver, answer, exit */
static void local_worker_main(struct local_server *srv, struct delivery_job *job)
{
    struct delivery_request *req = delivery_job_request(job);
    int fd = delivery_job_fd(job);
    buf_t out = BUF_INIT, err = BUF_INIT;
    struct local_env env = srv->env;

    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    delivery_server_close_listeners(srv->delivery);
    if (table_list_open(&env.aliases, srv->alias_specs, srv->alias_count, TABLE_ALIASES, &err) <
        0) {
        log_warn("%s: alias_maps: %s", req->queue_id, buf_cstr(&err));
        for (size_t i = 0; i < req->rcpt_count; i++)
            local_result_set(&req->rcpts[i].result, DELIVERY_DEFER, "4.3.0",
                             "alias database unavailable");
    } else {
        local_deliver_request(&env, req);
        table_list_close(&env.aliases);
    }
    delivery_result_encode(req, "local", &out);
    if (fcntl(fd, F_SETFL, 0) < 0 || attr_write_fd(fd, &out) < 0)
        log_warn("%s: cannot send the result to qmgr: %s", req->queue_id, strerror(errno));
    _exit(0);
}

/* local_on_request - a slot is free: run the request in a worker; the
 * parent lets go of the connection (qmgr defers when it sees no result) */
static void local_on_request(struct delivery_job *job, void *ctx)
{
    struct local_server *srv = ctx;
    struct local_worker *w;
    pid_t pid = fork();

    if (pid == 0)
        local_worker_main(srv, job);
    delivery_job_close(job);
    if (pid < 0) {
        log_warn("%s: cannot fork a delivery worker: %s", delivery_job_request(job)->queue_id,
                 strerror(errno));
        delivery_job_done(job);
        return;
    }
    w = xcalloc(1, sizeof(*w));
    w->pid = pid;
    w->job = job;
    w->next = srv->workers;
    srv->workers = w;
}

/* local_worker_reaped - pid is gone: free its delivery slot */
static void local_worker_reaped(struct local_server *srv, pid_t pid)
{
    for (struct local_worker **p = &srv->workers; *p != NULL; p = &(*p)->next) {
        struct local_worker *w = *p;
        if (w->pid == pid) {
            *p = w->next;
            delivery_job_done(w->job);
            free(w);
            return;
        }
    }
}

/* local_server_sigchld - reap workers; freed slots start waiting requests */
static void local_server_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct local_server *srv = arg;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            log_warn("delivery worker %ld ended abnormally (status 0x%x)", (long)pid, status);
        local_worker_reaped(srv, pid);
    }
}

/* local_server_preload - load the group NSS modules (e.g. systemd) and
 * the time zone once, here, so that workers inherit them instead of
 * loading them for every delivery; the group list itself is not used */
static void local_server_preload(const struct local_env *env)
{
    gid_t groups[16];
    int n = 16;

    (void)getgrouplist(env->default_user, env->default_gid, groups, &n);
    tzset();
}

/* local_server_configure - settings; the alias tables must open */
static void local_server_configure(struct local_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    struct local_env *env = &srv->env;
    struct table_list probe = {NULL, 0};
    buf_t err = BUF_INIT;

    if (local_env_read(env, cfg, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    local_server_preload(env);
    srv->limit = config_int(cfg, "local_destination_concurrency_limit");
    if (srv->limit < 1)
        log_fatal("local_destination_concurrency_limit must be at least 1");
    srv->alias_specs = config_list(cfg, "alias_maps", &srv->alias_count);
    if (table_list_open(&probe, srv->alias_specs, srv->alias_count, TABLE_ALIASES, &err) < 0)
        log_error("alias_maps: %s; local deliveries are deferred until it can be opened",
                  buf_cstr(&err));
    else
        table_list_close(&probe);
    buf_free(&err);
}

/* local_server_listen - accept on every inherited socket, reap children */
static void local_server_listen(struct local_server *srv)
{
    struct delivery_server_cbs cbs = {NULL, local_on_request, srv};

    srv->delivery = delivery_server_start(&srv->svc, "local", srv->limit, &cbs);
    srv->sigchld = evsignal_new(srv->svc.base, SIGCHLD, local_server_sigchld, srv);
    if (srv->sigchld == NULL || evsignal_add(srv->sigchld, NULL) < 0)
        log_fatal("cannot watch SIGCHLD");
}

int main(int argc, char **argv)
{
    static struct local_server srv;
    int status;

    service_init(&srv.svc, "local", argc, argv);
    signal(SIGPIPE, SIG_IGN);
    local_server_configure(&srv);
    local_server_listen(&srv);
    /* no service_drop_privileges: local keeps root (DESIGN §3) */
    status = service_run(&srv.svc);
    delivery_server_free(srv.delivery);
    event_free(srv.sigchld);
    return status;
}
